"""Drives a kazoo LockingQueue for the queue package's interoperability tests
(engine/queue/kazoo_test.go).

    kazoo_queue.py consume HOSTS PATH   get() and consume() until the queue is empty
    kazoo_queue.py serve   HOSTS PATH   answer commands read from stdin

Both modes print "ready" once connected. consume then waits for a line on
stdin (so that several consumers start together), prints each item it
consumed, one per line, and exits when get() times out with len(queue) == 0,
or after printing "LOST <item>" when consume() returned False. serve answers
each line of stdin with one line:

    get SECONDS    "item <value>" or "none"
    consume        "True" or "False"
    release        "True" or "False"
    holds          holds_lock(), "True" or "False"
    len            len(queue)
    id             the queue's taker id
    put PRIORITY ITEM
                   put(), "ok"
    putall PRIORITY ITEM...
                   put_all() in one transaction, "ok"

An exception inside a command is answered with "error <type>: <message>".
Items are ASCII text in these tests.
"""

import sys

from kazoo.client import KazooClient
from kazoo.recipe.queue import LockingQueue


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def consume(q):
    sys.stdin.readline()
    while True:
        value = q.get(timeout=0.2)
        if value is None:
            if len(q) == 0:
                return
            continue
        item = value.decode()
        if not q.consume():
            # get() would return this entry again forever.
            say("LOST " + item)
            return
        say(item)


def serve(q):
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        cmd, rest = words[0], words[1:]
        try:
            if cmd == "get":
                value = q.get(timeout=float(rest[0]))
                say("none" if value is None else "item " + value.decode())
            elif cmd == "consume":
                say(str(q.consume()))
            elif cmd == "release":
                say(str(q.release()))
            elif cmd == "holds":
                say(str(q.holds_lock()))
            elif cmd == "len":
                say(str(len(q)))
            elif cmd == "id":
                say(q.id.decode())
            elif cmd == "put":
                q.put(rest[1].encode(), int(rest[0]))
                say("ok")
            elif cmd == "putall":
                q.put_all([r.encode() for r in rest[1:]], int(rest[0]))
                say("ok")
            else:
                say("error ValueError: unknown command " + cmd)
        except Exception as e:  # reported to the test, which fails on it
            say("error %s: %s" % (type(e).__name__, e))


def main():
    mode, hosts, path = sys.argv[1:4]
    run = {"consume": consume, "serve": serve}[mode]
    # A short session, so a killed process lets go of its entries quickly.
    zk = KazooClient(hosts=hosts, timeout=3.0)
    zk.start(timeout=15)
    try:
        q = LockingQueue(zk, path)
        say("ready")
        run(q)
    finally:
        zk.stop()
        zk.close()


if __name__ == "__main__":
    main()

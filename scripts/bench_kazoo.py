#!/usr/bin/python3
"""The queue workload of `jobengine bench queue`, through Python kazoo's
LockingQueue (the queue of the reference engine), for a side-by-side on the
same ZooKeeper. Prints one JSON object.

Usage: bench_kazoo.py HOST:PORT [--jobs N] [--depth D] [--procs P] [--threads T]

PROCS processes, each with one ZooKeeper session (as one reference engine
executor has) and THREADS threads, take and consume JOBS entries of a
LockingQueue holding JOBS + DEPTH; then PROBES single entries are put one at
a time on the idle queue and timed from put to get (claim latency).
"""

import argparse
import json
import multiprocessing
import os
import threading
import time

from kazoo.client import KazooClient
from kazoo.recipe.queue import LockingQueue


def consume(hosts, path, quota, counter, lock, threads, out):
    """One process: a session and its threads, consuming until the shared
    count reaches quota."""
    zk = KazooClient(hosts=hosts, timeout=10)
    zk.start()
    done = [0]

    def worker():
        q = LockingQueue(zk, path)
        while True:
            with lock:
                if counter.value >= quota:
                    return
                counter.value += 1
            while q.get(timeout=1) is None:
                pass
            q.consume()
            done[0] += 1

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    zk.stop()
    out.put(done[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hosts")
    ap.add_argument("--jobs", type=int, default=5000)
    ap.add_argument("--depth", type=int, default=1000)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--probes", type=int, default=100)
    a = ap.parse_args()
    path = "/bench-kazoo-%d" % time.time_ns()
    zk = KazooClient(hosts=a.hosts, timeout=10)
    zk.start()
    q = LockingQueue(zk, path)
    start = time.monotonic()
    n = a.jobs + a.depth
    for i in range(0, n, 1000):
        q.put_all([b"job/bench-%09d" % k for k in range(i, min(n, i + 1000))], priority=100)
    fill = n / (time.monotonic() - start)

    counter = multiprocessing.Value("i", 0)
    lock = multiprocessing.Lock()
    out = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=consume, args=(a.hosts, path, a.jobs, counter, lock, a.threads, out))
             for _ in range(a.procs)]
    start = time.monotonic()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    secs = time.monotonic() - start
    taken = sum(out.get() for _ in procs)

    # Claim latency on an idle queue: drain what is left, then one probe at
    # a time, a consumer waiting on the other session.
    q2 = LockingQueue(zk, path)
    while q2.get(timeout=0.2) is not None:
        q2.consume()
    zk2 = KazooClient(hosts=a.hosts, timeout=10)
    zk2.start()
    qc = LockingQueue(zk2, path)
    lat = []
    got = threading.Event()

    def taker():
        for _ in range(a.probes):
            v = qc.get(timeout=10)
            if v is None:
                break
            lat.append(time.monotonic_ns() - int(v.split(b"/")[1]))
            qc.consume()
            got.set()

    t = threading.Thread(target=taker)
    t.start()
    for _ in range(a.probes):
        got.clear()
        q.put(b"lat/%d" % time.monotonic_ns(), priority=100)
        got.wait(10)
    t.join()
    zk2.stop()
    zk.stop()
    lat.sort()

    def pct(p):
        return round(lat[min(len(lat) - 1, len(lat) * p // 100)] / 1e6, 3) if lat else 0

    print(json.dumps({
        "client": "kazoo LockingQueue",
        "jobs": taken, "depth": a.depth, "procs": a.procs, "threads": a.threads,
        "seconds": round(secs, 3), "jobs_per_s": round(taken / secs, 1),
        "fill_per_s": round(fill, 1),
        "claim_idle_p50_ms": pct(50), "claim_idle_p99_ms": pct(99),
        "load_average": os.getloadavg()[0],
    }, indent=2))


if __name__ == "__main__":
    main()

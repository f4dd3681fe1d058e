#!/usr/bin/python3
"""Prints the results of `make bench` (bench-results/*.json) as one table."""

import json
import os
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else "bench-results"


def load(name):
    try:
        with open(os.path.join(OUT, name + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def f(v, nd=0):
    return "-" if v is None else ("{:,.%df}" % nd).format(v)


rows = []
for name in sorted(os.listdir(OUT)):
    if not name.endswith(".json"):
        continue
    name = name[:-5]
    r = load(name)
    if r is None:
        continue
    if name.startswith("queue-"):
        rows.append((name, f(r.get("zk_multi_txn_per_s")), f(r.get("jobs_per_s")),
                     "%s / %s" % (f(r.get("p50_ms"), 1), f(r.get("p99_ms"), 1)), f(r.get("rss_mb_after_takes"), 1),
                     "depth %s, batch %s" % (f(r.get("depth")), r.get("batch"))))
    elif name.startswith("kazoo"):
        rows.append((name, "-", f(r.get("jobs_per_s")),
                     "%s / %s (idle)" % (f(r.get("claim_idle_p50_ms"), 1), f(r.get("claim_idle_p99_ms"), 1)), "-",
                     "depth %s, %s procs x %s threads" % (f(r.get("depth")), r.get("procs"), r.get("threads"))))
    elif "drains" in r:
        for d in r["drains"]:
            c = d.get("cost", {})
            rows.append(("%s, %d executors" % (name, d["executors"]), f(r.get("zk_multi_txn_per_s")), f(d.get("jobs_per_s")),
                         "idle %s / %s, busy %s / %s" % (f(r.get("claim_idle_p50_ms"), 1), f(r.get("claim_idle_p99_ms"), 1),
                                                         f(r.get("claim_busy_p50_ms"), 1), f(r.get("claim_busy_p99_ms"), 1)),
                         ", ".join(f(x, 1) for x in d.get("rss_mb_after_load", [])),
                         "txn/job %s, req/job %s, cpu us/job exec %s zk %s, load %s" % (
                             f(c.get("zk_txn_per_job"), 2), f(c.get("zk_requests_per_job"), 2),
                             f(c.get("executor_cpu_us_per_job")), f(c.get("zk_cpu_us_per_job")), f(c.get("load_average"), 1))))
    elif "seconds" in r and "jobs" in r:
        rows.append((name, "-", f(r["jobs"] / r["seconds"]), "-", "-", "%s jobs in %s s" % (f(r["jobs"]), f(r["seconds"], 2))))

head = ("run", "zk multi/s", "jobs/s", "latency p50 / p99 ms", "rss MB", "notes")
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for row in rows:
    print("| " + " | ".join(row) + " |")

#!/usr/bin/env python3
"""Compaction benchmark: bytes on disk and query times before and after `quarry compact`.

usage: python3 bench/compact_bench.py BUILD_DIR DATA_DIR NEEDLE [ZSTD3_BYTES]

DATA_DIR is an ingested data directory (e.g. from bench/ingest_bench.py); it is copied, never
changed. NEEDLE is a token present once in the corpus. ZSTD3_BYTES (optional) is the size of
`zstd -3` of the NDJSON the directory was loaded from, for the ratio. Prints the bytes per
event by column before and after, compaction time (wall and CPU), and the best of 5 `took_ms`
of each query (`quarry query --format json`) on both copies.
"""
import json
import os
import resource
import shutil
import subprocess
import sys
import time


def check(qbin, data):
    out = subprocess.run([qbin, "check", "--data", data, "--json"], stdout=subprocess.PIPE,
                         check=True).stdout
    return json.loads(out)


def took(qbin, data, sql, runs=5):
    best = None
    answer = None
    for _ in range(runs + 1):  # one unmeasured warm-up run
        out = subprocess.run([qbin, "query", "--data", data, "--format", "json", sql],
                             stdout=subprocess.PIPE, check=True).stdout
        r = json.loads(out)
        answer = r["rows"]
        if best is not None or _ > 0:
            best = r["took_ms"] if best is None else min(best, r["took_ms"])
    return best, answer


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        sys.exit(2)
    build, src, needle = sys.argv[1], sys.argv[2], sys.argv[3]
    zstd3 = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    qbin = os.path.join(build, "quarry")
    work = src.rstrip("/") + ".compact-bench"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(src, work)
    if os.path.exists(os.path.join(work, "LOCK")):
        os.remove(os.path.join(work, "LOCK"))
    queries = [
        ("needle", "SELECT ts, service, msg FROM logs WHERE msg MATCH '%s'" % needle),
        ("phrase", "SELECT count(*) FROM logs WHERE msg MATCH '\"connection refused\"'"),
        ("word per service",
         "SELECT service, count(*) FROM logs WHERE msg MATCH 'request' GROUP BY service"),
        ("prefix", "SELECT count(*) FROM logs WHERE msg MATCH 'refus*'"),
        ("service x level", "SELECT service, level, count(*) FROM logs GROUP BY service, level"),
    ]
    before = check(qbin, work)
    q_before = {name: took(qbin, work, sql) for name, sql in queries}
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    out = subprocess.run([qbin, "compact", "--data", work], stdout=subprocess.PIPE,
                         check=True).stdout.decode().strip()
    wall = time.time() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    after = check(qbin, work)
    q_after = {name: took(qbin, work, sql) for name, sql in queries}
    events = after["events"]
    print("load average %.1f" % os.getloadavg()[0])
    print(out)
    print("compaction: %.1f s wall, %.1f s CPU (%.2f us/event), %d -> %d segments" % (
        wall, cpu, cpu * 1e6 / events, before["segments"], after["segments"]))
    print("| | before | after |")
    print("|---|---|---|")
    print("| bytes | %d (%.2f B/event) | %d (%.2f B/event) |" % (
        before["bytes"], before["bytes"] / events, after["bytes"], after["bytes"] / events))
    if zstd3:
        print("| / zstd -3 | %.3f | %.3f |" % (before["bytes"] / zstd3, after["bytes"] / zstd3))
    cols = before.get("columns", {})
    for col in cols:
        print("| %s | %.2f | %.2f |" % (col, cols[col]["bytes"] / events,
                                         after["columns"][col]["bytes"] / events))
    for name, _ in queries:
        (tb, ab), (ta, aa) = q_before[name], q_after[name]
        same = "same answer" if ab == aa else "ANSWERS DIFFER"
        print("| %s took_ms | %.2f | %.2f (%s) |" % (name, tb, ta, same))
    shutil.rmtree(work, ignore_errors=True)


main()

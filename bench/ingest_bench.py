#!/usr/bin/env python3
"""Embedded ingest benchmark (issue: storage foundation).

Generates a corpus with `quarry gen` (cached in bench/out/), ingests it with
`quarry ingest --fsync always --batch 1000` into a fresh data directory, and prints
events/s, MB/s, peak RSS, and disk bytes per event per column next to `zstd -3` and
`gzip -6` of the same NDJSON. Usage: bench/ingest_bench.py BUILD_DIR [EVENTS ...]
"""
import json
import os
import shutil
import subprocess
import sys
import time

build = sys.argv[1] if len(sys.argv) > 1 else "build"
counts = [int(x) for x in sys.argv[2:]] or [10_000_000]
quarry = os.path.join(build, "quarry")
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
os.makedirs(out, exist_ok=True)


def run_measured(argv, stdin=None):
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - t0
    err = proc.stderr.read().decode()
    return os.waitstatus_to_exitcode(status), elapsed, ru, err


def compressed_size(path, argv):
    with open(path, "rb") as f:
        p = subprocess.run(argv, stdin=f, stdout=subprocess.PIPE, check=True)
    return len(p.stdout)


for n in counts:
    corpus = os.path.join(out, "corpus-%d.ndjson" % n)
    if not os.path.exists(corpus):
        with open(corpus + ".tmp", "wb") as f:
            subprocess.run([quarry, "gen", "--events", str(n), "--seed", "42"], stdout=f, check=True)
        os.rename(corpus + ".tmp", corpus)
    raw = os.path.getsize(corpus)
    zst = os.path.join(corpus + ".zst3.size")
    if not os.path.exists(zst):
        with open(zst, "w") as f:
            f.write("%d %d" % (compressed_size(corpus, ["zstd", "-3", "-T1", "-c"]),
                               compressed_size(corpus, ["gzip", "-6", "-c"])))
    zstd3, gzip6 = map(int, open(zst).read().split())
    data = os.path.join(out, "data-%d" % n)
    shutil.rmtree(data, ignore_errors=True)
    rc, secs, ru, err = run_measured([quarry, "ingest", "--data", data, "--no-compact",
                                      "--fsync", "always", "--batch", "1000", "--quiet", corpus])
    if rc != 0:
        print(err)
        sys.exit(1)
    chk = json.loads(subprocess.run([quarry, "check", "--data", data, "--json"],
                                    capture_output=True).stdout)
    cpu = ru.ru_utime + ru.ru_stime
    print("== %s events, %.1f MB NDJSON (%.0f B/event)" % (f"{n:,}", raw / 1e6, raw / n))
    print("ingest (fsync=always, batches of 1000, incl. final flush): %.2f s wall, %.2f s CPU"
          % (secs, cpu))
    print("  %s events/s, %.1f MB/s, peak RSS %.0f MB" % (f"{n / secs:,.0f}", raw / secs / 1e6,
                                                         ru.ru_maxrss / 1024))
    print("  %s" % err.strip().splitlines()[-1])
    total = chk["bytes"]
    print("disk: quarry %.1f MB (%.1f B/event)  zstd -3 %.1f MB (%.1f B/event)  gzip -6 %.1f MB"
          % (total / 1e6, total / n, zstd3 / 1e6, zstd3 / n, gzip6 / 1e6))
    print("  quarry / zstd -3 = %.2f  (goal <= 0.80)" % (total / zstd3))
    for name, c in chk["columns"].items():
        print("    %-10s %8.2f B/event" % (name, c["bytes_per_event"]))
    print("  check ok: %s, events %d, segments %d" % (chk["ok"], chk["events"], chk["segments"]))

"""Crash test for compaction: `quarry compact` killed with SIGKILL at random moments.

Each round ingests a fresh generated file in small segments (so there is something to merge),
then starts `quarry compact --rows 4000` (small merges, many publish points) and kills it
after a random delay. After every kill `quarry check` must pass, every event ever ingested must
come back exactly once (`quarry export`), and once a process has opened the directory only the
segment files the catalog names may remain (a merge cut short leaves a .tmp or an unlisted
file; the old segments stay published until the catalog names the new one).
"""
import collections
import os
import random
import shutil
import signal
import subprocess
import sys
import time

BIN = os.environ["QR_BIN"]
TMP = os.environ.get("QR_TMP", "/tmp")
SANITIZED = bool(os.environ.get("QR_SANITIZED"))
ROUNDS = 3 if SANITIZED else 5
EVENTS = 6000
PARTS = 4


def export_lines(data):
    out = subprocess.run([BIN, "export", "--data", data], stdout=subprocess.PIPE, check=True).stdout
    return collections.Counter(out.decode().splitlines())


def catalog_files(tdir):
    with open(os.path.join(tdir, "CATALOG")) as f:
        return {line.split()[2] for line in f if line.startswith("segment ")}


def main():
    work = os.path.join(TMP, "compact_crash.%d" % os.getpid())
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    data = os.path.join(work, "data")
    tdir = os.path.join(data, "tenants", "default")
    rng = random.Random(20251122)
    expect = collections.Counter()
    failures = 0
    killed_mid_merge = 0
    for rnd in range(ROUNDS):
        for part in range(PARTS):  # one segment per ingest (each close flushes)
            src = os.path.join(work, "in%d.ndjson" % rnd)
            with open(src, "wb") as f:
                subprocess.run([BIN, "gen", "--events", str(EVENTS // PARTS), "--seed",
                                str(500 + rnd * PARTS + part), "--start",
                                "2025-06-%02dT%02d:00:00Z" % (10 + rnd, part)],
                               stdout=f, check=True)
            subprocess.run([BIN, "ingest", "--data", data, "--no-compact", "--quiet", src],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        expect.update(export_lines(data) - expect)  # what this round added
        before = set(os.listdir(tdir))
        proc = subprocess.Popen([BIN, "compact", "--data", data, "--rows", "4000"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.0, 0.15 if not SANITIZED else 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        after = set(os.listdir(tdir))
        if proc.returncode == -signal.SIGKILL and after != before:
            killed_mid_merge += 1
        chk = subprocess.run([BIN, "check", "--data", data], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        if chk.returncode != 0:
            print("round %d: check failed after the kill:\n%s" % (rnd, chk.stdout.decode()))
            failures += 1
        got = export_lines(data)  # opens the directory: leftovers are deleted
        if got != expect:
            print("round %d: %d events expected, %d exported; missing %d, extra %d" % (
                rnd, sum(expect.values()), sum(got.values()), sum((expect - got).values()),
                sum((got - expect).values())))
            failures += 1
        files = {n for n in os.listdir(tdir) if n != "CATALOG"}
        if files != catalog_files(tdir):
            print("round %d: files %s, catalog names %s" % (rnd, sorted(files),
                                                           sorted(catalog_files(tdir))))
            failures += 1
    # a compaction that runs to the end leaves one segment per 4000 rows or so, all checked
    subprocess.run([BIN, "compact", "--data", data, "--rows", "4000"], stdout=subprocess.DEVNULL,
                   check=True)
    chk = subprocess.run([BIN, "check", "--data", data, "--json"], stdout=subprocess.PIPE)
    if chk.returncode != 0 or export_lines(data) != expect:
        print("final compaction: check rc %d or events differ" % chk.returncode)
        failures += 1
    print("# %d rounds, %d killed with a merge in progress, %d events" % (
        ROUNDS, killed_mid_merge, sum(expect.values())))
    shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("FAILED: %d problems" % failures)
        sys.exit(1)
    print("ok")


main()

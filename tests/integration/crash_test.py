"""Crash test: a real `quarry ingest` killed with SIGKILL at random moments, many times.

Each round ingests a fresh generated file (different seed) with --acks, so the test knows
which lines were acknowledged (durable) before the kill. After every round `quarry check`
must find no corruption. At the end every acknowledged event must be present exactly as
often as it was acknowledged (no loss, no double replay), and nothing unacknowledged appears
more often than it was sent.
"""
import collections
import datetime
import json
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
ROUNDS = 5 if SANITIZED else 10
EVENTS = 20000 if SANITIZED else 40000


def ts_ns(s):
    """RFC 3339 (as quarry gen writes and quarry export writes) -> int ns."""
    main, _, frac = s.rstrip("Z").partition(".")
    dt = datetime.datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    frac = (frac + "000000000")[:9]
    return int(dt.timestamp()) * 1_000_000_000 + int(frac)


def key(ev):
    return (ts_ns(ev["ts"]), ev.get("service", ""), ev.get("msg", ""))


def main():
    work = os.path.join(TMP, "crash.%d" % os.getpid())
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    data = os.path.join(work, "data")
    rng = random.Random(20251121)
    sent = collections.Counter()
    acked = collections.Counter()
    failures = 0
    for rnd in range(ROUNDS):
        src = os.path.join(work, "in%d.ndjson" % rnd)
        with open(src, "wb") as f:
            subprocess.run([BIN, "gen", "--events", str(EVENTS), "--seed", str(1000 + rnd)],
                           stdout=f, check=True)
        with open(src) as f:
            lines = [json.loads(line) for line in f]
        acks = os.path.join(work, "acks%d" % rnd)
        proc = subprocess.Popen([BIN, "ingest", "--data", data, "--acks", acks, "--batch", "300",
                                 "--flush-rows", "4000", "--quiet", src],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.05, 1.2 if not SANITIZED else 2.5))
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
        if proc.returncode not in (-signal.SIGKILL, 0):
            print("round %d: ingest failed (%d): %s" % (rnd, proc.returncode, err.decode()))
            failures += 1
        for ev in lines:
            sent[key(ev)] += 1
        if os.path.exists(acks):
            with open(acks) as f:
                for line in f:
                    first, last = map(int, line.split())
                    for n in range(first, last + 1):
                        acked[key(lines[n - 1])] += 1
        chk = subprocess.run([BIN, "check", "--data", data, "--json"], capture_output=True)
        rep = json.loads(chk.stdout or b"{}")
        if chk.returncode != 0 or not rep.get("ok"):
            print("round %d: check failed: %s %s" % (rnd, chk.stdout.decode(), chk.stderr.decode()))
            failures += 1
        print("round %d: killed after %s acked events so far" % (rnd, sum(acked.values())))

    out = subprocess.run([BIN, "export", "--data", data], capture_output=True)
    if out.returncode != 0:
        print("export failed: %s" % out.stderr.decode())
        return 1
    present = collections.Counter(key(json.loads(l)) for l in out.stdout.decode().splitlines())
    lost = [k for k, n in acked.items() if present[k] < n]
    extra = [k for k, n in present.items() if n > sent[k]]
    print("acknowledged %d, present %d, sent %d" % (sum(acked.values()), sum(present.values()),
                                                     sum(sent.values())))
    if not acked:
        print("no batch was acknowledged in any round: the test proved nothing")
        failures += 1
    if lost:
        print("LOST %d acknowledged events, e.g. %r" % (len(lost), lost[:3]))
        failures += 1
    if extra:
        print("DUPLICATED %d events, e.g. %r" % (len(extra), extra[:3]))
        failures += 1
    chk = subprocess.run([BIN, "check", "--data", data, "--json"], capture_output=True)
    rep = json.loads(chk.stdout or b"{}")
    if not rep.get("ok") or rep.get("events") != sum(present.values()):
        print("final check disagrees: %s" % chk.stdout.decode())
        failures += 1
    if failures == 0:
        shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (1 if failures == 0 else 0, 1 if failures else 0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

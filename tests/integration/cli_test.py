"""The quarry CLI as a user drives it: gen, ingest (NDJSON, text, .gz, .zst, stdin, rejected
lines), check (text and --json, corruption found, exit codes), export (round trip)."""
import gzip
import json
import os
import shutil
import subprocess
import sys

BIN = os.environ["QR_BIN"]
TMP = os.environ.get("QR_TMP", "/tmp")
work = os.path.join(TMP, "cli.%d" % os.getpid())
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok - %s" % name)
    else:
        failed += 1
        print("not ok - %s %s" % (name, detail))


def run(*argv, stdin=None, input_bytes=None):
    return subprocess.run([BIN] + list(argv), input=input_bytes, stdin=stdin,
                          capture_output=True)


def check_json(data):
    p = run("check", "--data", data, "--json")
    try:
        return p.returncode, json.loads(p.stdout)
    except ValueError:
        return p.returncode, {"raw": p.stdout.decode(), "err": p.stderr.decode()}


shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)

# gen: deterministic, the requested count, valid JSON lines
a = run("gen", "--events", "3000", "--seed", "11").stdout
b = run("gen", "--events", "3000", "--seed", "11").stdout
c = run("gen", "--events", "3000", "--seed", "12").stdout
lines = a.decode().splitlines()
check("gen is deterministic per seed", a == b and a != c)
check("gen writes N JSON lines", len(lines) == 3000 and all(json.loads(l)["msg"] for l in lines))
p = run("gen", "--events", "x")
check("gen rejects a bad count with exit 2", p.returncode == 2 and b"--events" in p.stderr)

src = os.path.join(work, "a.ndjson")
open(src, "wb").write(a)
gz = os.path.join(work, "b.ndjson.gz")
with gzip.open(gz, "wb") as f:
    f.write(c)
zst = os.path.join(work, "c.ndjson.zst")
d2 = run("gen", "--events", "2000", "--seed", "13").stdout
subprocess.run(["zstd", "-q", "-o", zst], input=d2, check=True)

data = os.path.join(work, "data")
p = run("ingest", "--data", data, src, gz, zst)
check("ingest of ndjson + .gz + .zst succeeds", p.returncode == 0, p.stderr.decode())
check("ingest reports what it accepted", b"accepted 8,000 events, rejected 0" in p.stderr,
      p.stderr.decode())
rc, rep = check_json(data)
check("check --json after ingest", rc == 0 and rep.get("ok") is True and rep.get("events") == 8000
      and rep.get("segments", 0) >= 1 and rep.get("bytes", 0) > 0, str(rep))
check("check --json has bytes per column", "msg" in rep.get("columns", {}) and
      rep["columns"]["msg"]["bytes"] > 0, str(rep))
p = run("check", "--data", data)
check("check prints a report", p.returncode == 0 and b"ok" in p.stdout and b"per column" in p.stdout)

# stdin, text format, rejected lines with line numbers
text = b"2025-06-15T10:00:00Z ERROR payment declined card 4242\nplain info line\n\n[WARN] disk 91% full\n"
p = run("ingest", "--data", data, "--tenant", "web", "--format", "text", "--service", "nginx", "-",
        input_bytes=text)
check("text lines from stdin", p.returncode == 0 and b"accepted 3 events" in p.stderr,
      p.stderr.decode())
bad = b'{"msg": "ok one"}\n{"msg": broken\n{"msg": "ok two", "level": "warning"}\nnot json\n'
p = run("ingest", "--data", data, "--tenant", "web", input_bytes=bad)
err = p.stderr.decode()
check("rejected lines: exit 1, counts, line numbers and reasons",
      p.returncode == 1 and "accepted 2 events, rejected 2" in err and "line 2:" in err
      and "line 4:" in err, err)
p = run("ingest", "--data", data, "--tenant", "../x", input_bytes=b"{}\n")
check("bad tenant name is a usage error", p.returncode == 2 and b"tenant" in p.stderr)
p = run("ingest", "--data", data, os.path.join(work, "missing.ndjson"))
check("missing file is reported", p.returncode == 1 and b"missing.ndjson" in p.stderr)

# export round trip: same events back, in the native shape
p = run("export", "--data", data, "--tenant", "web")
out = [json.loads(l) for l in p.stdout.decode().splitlines()]
check("export of a tenant", p.returncode == 0 and len(out) == 5, p.stderr.decode())
levels = sorted(e["level"] for e in out)
check("levels normalized (warning→WARN, guessed from text)",
      levels.count("WARN") == 2 and "ERROR" in levels, str(levels))
check("text service applied", sum(1 for e in out if e["service"] == "nginx") == 3)
p = run("export", "--data", data)
exported = p.stdout
data2 = os.path.join(work, "data2")
p2 = run("ingest", "--data", data2, input_bytes=exported)
p3 = run("export", "--data", data2)
norm = lambda blob: sorted(blob.decode().splitlines())
check("export → ingest → export is lossless", p2.returncode == 0 and
      norm(p3.stdout) == norm(exported) and len(norm(exported)) == 8000,
      "%d vs %d" % (len(norm(p3.stdout)), len(norm(exported))))

# a second writer is refused while one holds the directory
holder = subprocess.Popen([BIN, "ingest", "--data", data, "-"], stdin=subprocess.PIPE,
                          stderr=subprocess.PIPE)
holder.stdin.write(b'{"msg": "hold"}\n')
holder.stdin.flush()
import time
for _ in range(100):
    if os.path.exists(os.path.join(data, "wal")):
        break
    time.sleep(0.05)
time.sleep(0.3)
p = run("ingest", "--data", data, input_bytes=b'{"msg": "second"}\n')
check("second writer refused while the directory is held",
      p.returncode == 1 and b"in use by another process" in p.stderr, p.stderr.decode())
rc, rep = check_json(data)
check("check works while another process holds the directory", rc == 0 and rep.get("ok"),
      str(rep))
holder.stdin.close()
holder.wait()

# corruption: a flipped byte in a segment is found; exit 1
seg_dir = os.path.join(data, "tenants", "default")
segs = sorted(f for f in os.listdir(seg_dir) if f.endswith(".qseg"))
victim = os.path.join(seg_dir, segs[0])
raw = bytearray(open(victim, "rb").read())
raw[len(raw) // 2] ^= 0x5A
open(victim, "wb").write(raw)
rc, rep = check_json(data)
check("check finds a flipped segment byte", rc == 1 and rep.get("ok") is False and
      any(segs[0] in pr for pr in rep.get("problems", [])), str(rep))
p = run("check", "--data", data)
check("text check says CORRUPT and names the file", p.returncode == 1 and b"CORRUPT" in p.stdout
      and segs[0].encode() in p.stdout, p.stdout.decode())
p = run("check", "--data", os.path.join(work, "nope"))
check("check of a missing directory fails clearly", p.returncode == 1 and b"nope" in p.stderr)

if failed == 0:
    shutil.rmtree(work, ignore_errors=True)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)

"""quarry query: JSON output shape, table output, and query errors (exit 2, caret)."""
import json
import os
import shutil
import subprocess
import sys

BIN = os.environ.get("QR_BIN", "build/quarry")
TMP = os.environ.get("QR_TMP", "/tmp")
data = os.path.join(TMP, "query_cli.%d" % os.getpid())
shutil.rmtree(data, ignore_errors=True)


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True)


def fail(msg):
    print("FAIL:", msg)
    shutil.rmtree(data, ignore_errors=True)
    sys.exit(1)


gen = run("gen", "--events", "3000", "--seed", "5")
ndjson = os.path.join(TMP, "query_cli.%d.ndjson" % os.getpid())
with open(ndjson, "w") as f:
    f.write(gen.stdout)
if run("ingest", "--data", data, ndjson).returncode != 0:
    fail("ingest")
os.unlink(ndjson)

r = run("query", "--data", data, "--format", "json",
        "SELECT service, count(*) AS n FROM logs GROUP BY service ORDER BY n DESC LIMIT 3")
if r.returncode != 0:
    fail("json query: " + r.stderr)
doc = json.loads(r.stdout)
for key in ("columns", "rows", "hits", "scanned", "took_ms", "next_cursor", "partial"):
    if key not in doc:
        fail("missing " + key)
if [c["name"] for c in doc["columns"]] != ["service", "n"] or len(doc["rows"]) != 3:
    fail("bad json result: " + r.stdout)
if doc["hits"] != 3000 or doc["partial"] is not False:
    fail("hits/partial: " + r.stdout)
counts = [row[1] for row in doc["rows"]]
if counts != sorted(counts, reverse=True):
    fail("not ordered: " + r.stdout)

r = run("query", "--data", data, "SHOW TABLES")
if r.returncode != 0 or "logs" not in r.stdout or "3000" not in r.stdout:
    fail("table: " + r.stdout + r.stderr)

r = run("query", "--data", data, "SELECT ts FROM logs WHERE latnecy_ms > 3")
if r.returncode != 2:
    fail("error exit status %d" % r.returncode)
lines = r.stderr.splitlines()
want = 'quarry: line 1, column 27: unknown field "latnecy_ms" (did you mean latency_ms?)'
if len(lines) < 3 or lines[0] != want or lines[2] != "  " + " " * 26 + "^":
    fail("error output:\n" + r.stderr)

r = run("query", "--data", data, "--format", "csv", "{service=\"auth\"} |= \"logged in\"")
if r.returncode != 0 or not r.stdout.startswith("ts,service,level,host,msg\n"):
    fail("logql csv: " + r.stdout[:200] + r.stderr)

shutil.rmtree(data, ignore_errors=True)
print("ok")

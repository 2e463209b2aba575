#!/usr/bin/env python3
"""Alert rules benchmark (issue 5): two figures.

1. latency: from the 202 of the event that crosses a threshold to the webhook request arriving
   at a receiver on loopback. `quarry serve`, one rule
   `SELECT service, count(*) ... GROUP BY service WINDOW 2s EVERY 1s WHEN count(*) >= 1`:
   each sample ingests one event of a new service (a new instance crossing the threshold)
   and waits for its webhook. Goal: p99 <= 1 s.
2. ingest cost: `quarry ingest --fsync never` of the same generated corpus (ts near now, so
   every event lands in the rules' windows) into a fresh directory with 0, 10 and 100 alert
   rules defined (a mix: label filters with level, GROUP BY service, p99 of a field, MATCH on
   the message; thresholds never reached). Goal: 100 rules cost <= 10 %. Rules with the same
   WHERE share one filter evaluation per batch; --distinct makes every WHERE different
   (`AND latency_ms < 1000000000 + i`), the worst case.

usage: python3 bench/alert_bench.py [--bin build/quarry] [--events 500000] [--samples 50]
       [--runs 3]
Standard library only."""
import argparse
import http.client
import http.server
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--bin", default="build/quarry")
ap.add_argument("--events", type=int, default=500000)
ap.add_argument("--samples", type=int, default=50)
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--rules", default="0,10,100")
ap.add_argument("--mixed", action="store_true",
                help="half of each count are rollups (issue 5 counts rules + rollups together)")
ap.add_argument("--print-definitions", action="store_true",
                help="print the statements of the largest count and exit")
ap.add_argument("--distinct", action="store_true",
                help="give every rule its own WHERE (no two rules share a filter)")
ap.add_argument("--skip-latency", action="store_true")
ap.add_argument("--no-match", action="store_true",
                help="leave out the MATCH rules (their own cost: one tokenization per filter)")
args = ap.parse_args()
BIN = os.path.abspath(args.bin)
work = tempfile.mkdtemp(prefix="alert_bench.")


def pct(xs, p):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


# ---- 1. latency ----------------------------------------------------------------------------
if not args.skip_latency:
    arrivals = {}
    lock = threading.Lock()


    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            doc = json.loads(self.rfile.read(n))
            t = time.monotonic()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            if doc.get("state") == "firing":
                with lock:
                    arrivals.setdefault(doc["group"].get("service"), t)

        def log_message(self, *a):
            pass


    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    hook = "http://127.0.0.1:%d/hook" % httpd.server_address[1]

    data = os.path.join(work, "serve")
    log = open(os.path.join(work, "serve.log"), "wb")
    srv = subprocess.Popen([BIN, "serve", "--data", data, "--listen", "127.0.0.1:0"], stdout=log,
                           stderr=log)
    addr = None
    for _ in range(1000):
        try:
            addr = open(os.path.join(data, "server.addr")).read().strip()
            if addr:
                break
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    host, port = addr.rsplit(":", 1)


    def post(path, body):
        c = http.client.HTTPConnection(host, int(port), timeout=30)
        c.request("POST", path, body=body if isinstance(body, bytes) else json.dumps(body).encode())
        r = c.getresponse()
        r.read()
        c.close()
        return r.status


    st = post("/v1/alerts", ("CREATE ALERT lat AS SELECT service, count(*) FROM logs GROUP BY "
                             "service WINDOW 2s EVERY 1s WHEN count(*) >= 1 NOTIFY WEBHOOK '%s'"
                             % hook).encode())
    assert st == 201, st
    lat = []
    for i in range(args.samples):
        svc = "svc-%d" % i
        c = http.client.HTTPConnection(host, int(port), timeout=30)
        c.request("POST", "/v1/ingest",
                  body=json.dumps({"source": {"service": svc}, "logs": [{"msg": "x"}]}).encode())
        r = c.getresponse()
        r.read()
        t202 = time.monotonic()
        c.close()
        assert r.status == 202
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with lock:
                t = arrivals.get(svc)
            if t is not None:
                lat.append(max(0.0, t - t202))
                break
            time.sleep(0.002)
        time.sleep(0.05)
    srv.send_signal(signal.SIGTERM)
    srv.wait()
    httpd.shutdown()
    if lat:
        print("latency 202 -> webhook (EVERY 1s), %d samples: p50 %.0f ms, p90 %.0f ms, "
              "p99 %.0f ms, max %.0f ms" % (len(lat), 1000 * pct(lat, 50), 1000 * pct(lat, 90),
                                            1000 * pct(lat, 99), 1000 * max(lat)))
    sys.stdout.flush()

# ---- 2. ingest throughput with 0 / 10 / 100 rules ----------------------------------------------
corpus = os.path.join(work, "corpus.ndjson")
start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 30))
with open(corpus, "wb") as f:
    subprocess.run([BIN, "gen", "--events", str(args.events), "--seed", "42", "--start", start,
                    "--rate", "100000"], stdout=f, check=True)
services = ["auth", "search", "api-gateway", "payment", "checkout", "inventory", "user",
            "notification", "shipping", "catalog"]


def rule(i):
    svc = services[i % len(services)]
    kind = i % 3 if args.no_match else i % 4
    if kind == 0:
        sel = ("SELECT count(*) FROM logs WHERE service = '%s' AND level >= ERROR" % svc)
        when = "count(*) > 1000000000"
    elif kind == 1:
        sel = "SELECT service, count(*) FROM logs WHERE level = 'WARN' GROUP BY service"
        when = "count(*) > 1000000000"
    elif kind == 2:
        sel = "SELECT p99(latency_ms) FROM logs WHERE service = '%s'" % svc
        when = "p99(latency_ms) > 1000000000"
    else:
        sel = "SELECT count(*) FROM logs WHERE msg MATCH 'timeout'"
        when = "count(*) > 1000000000"
    if args.distinct:
        sel = sel.replace(" FROM logs WHERE ", " FROM logs WHERE latency_ms < %d AND " %
                          (1000000000 + i))
    return ("CREATE ALERT r%d AS %s WINDOW 5m EVERY 30s WHEN %s NOTIFY WEBHOOK "
            "'http://127.0.0.1:9/hook'" % (i, sel, when))


def rollup(i):
    svc = services[i % len(services)]
    kind = i % 4
    if kind == 0:
        return ("CREATE ROLLUP ru%d AS SELECT bucket(ts, 5m) AS t, service, level, count(*) AS n "
                "FROM logs GROUP BY t, service, level" % i)
    if kind == 1:
        return ("CREATE ROLLUP ru%d AS SELECT bucket(ts, 1m) AS t, host, count(*) AS n, "
                "p99(latency_ms) AS p FROM logs WHERE service = '%s' GROUP BY t, host" % (i, svc))
    if kind == 2:
        return ("CREATE ROLLUP ru%d AS SELECT bucket(ts, 5m) AS t, service, count(*) AS n, "
                "avg(latency_ms) AS a FROM logs WHERE level >= WARN GROUP BY t, service" % i)
    return ("CREATE ROLLUP ru%d AS SELECT bucket(ts, 1h) AS t, service, count(*) AS n FROM logs "
            "WHERE msg MATCH 'timeout' GROUP BY t, service" % i)


def definition(i):
    """--mixed: even i the alert rule i/2, odd i the rollup i/2, so every kind of each
    appears (rules 0..n/2-1, rollups 0..n/2-1, kinds cycling with the index)."""
    if not args.mixed:
        return rule(i)
    return rollup(i // 2) if i % 2 else rule(i // 2)


if args.print_definitions:
    for i in range(max(int(x) for x in args.rules.split(","))):
        print(definition(i))
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(0)

counts = [int(x) for x in args.rules.split(",")]
results = {n: ([], []) for n in counts}
# runs interleave the counts (0, 10, 100, 0, 10, 100, ...): a changing load on a shared machine
# then weighs on every count alike
for run in range(args.runs):
    for n_rules in counts:
        rates, cpus = results[n_rules]
        d = os.path.join(work, "ing-%d-%d" % (n_rules, run))
        for i in range(n_rules):
            p = subprocess.run([BIN, "query", "--data", d, definition(i)], capture_output=True)
            assert p.returncode == 0, p.stderr
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.monotonic()
        p = subprocess.run([BIN, "ingest", "--data", d, "--fsync", "never", "--quiet", corpus],
                           capture_output=True)
        secs = time.monotonic() - t
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert p.returncode == 0, p.stderr
        rates.append(args.events / secs)
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        cpus.append(1e6 * cpu / args.events)
        shutil.rmtree(d, ignore_errors=True)
for n_rules in counts:
    rates, cpus = results[n_rules]
    print("ingest %d events, %3d %s: %s events/s (best %.0f K/s); CPU %s us/event (best %.2f, "
          "median %.2f)"
          % (args.events, n_rules, "rules+rollups" if args.mixed else "rules",
             ", ".join("%.0f K" % (r / 1000) for r in rates), max(rates) / 1000,
             ", ".join("%.2f" % c for c in cpus), min(cpus), statistics.median(cpus)))
    sys.stdout.flush()
if 0 in results:
    base_rate = max(results[0][0]) or 1
    base_cpu = min(results[0][1]) or 1
    base_med = statistics.median(results[0][1]) or 1
    for n_rules, (rates, cpus) in results.items():
        if n_rules:
            print("  %3d rules: best-of-%d throughput cost %.1f %%, CPU per event cost %.1f %% "
                  "(best), %.1f %% (median) vs 0 rules"
                  % (n_rules, args.runs, 100.0 * (1 - max(rates) / base_rate),
                     100.0 * (min(cpus) / base_cpu - 1),
                     100.0 * (statistics.median(cpus) / base_med - 1)))
shutil.rmtree(work, ignore_errors=True)

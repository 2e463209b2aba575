"""Rollups through `quarry serve`: /v1/rollups (create with backfill, list, describe, drop, every
documented error), live windows closing by wall clock (1 s buckets, no lateness), queries over
the rollup table, the rewrite of /v1/query and /v1/aggregate proven by EXPLAIN and by the
numbers, and a restart. Standard library only; the server listens on 127.0.0.1 port 0."""
import json
import os
import random
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import BIN, TMP, check  # noqa: E402,F401

work = os.path.join(TMP, "rollup_it.%d" % os.getpid())


class Server(harness.Server):
    def query(self, sql):
        st, _, doc = self.request("POST", "/v1/query", {"query": sql, "format": "json"})
        return st, doc



def ingest(srv, events):
    """events: (ts_ms, service, level, latency)"""
    by_svc = {}
    for ts, svc, lvl, lat in events:
        by_svc.setdefault(svc, []).append({"ts": ts, "level": lvl, "msg": "req done",
                                            "meta": {"latency_ms": lat}})
    for svc, logs in by_svc.items():
        st, _, doc = srv.request("POST", "/v1/ingest", {"source": {"service": svc, "host": "h1"},
                                                        "logs": logs})
        if st != 202 or doc.get("failed"):
            raise RuntimeError("ingest failed: %s %s" % (st, doc))


def rows_of(doc):
    return doc.get("rows", []) if isinstance(doc, dict) else []


def main():
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    rnd = random.Random(5)
    srv = Server(os.path.join(work, "d"))
    now_ms = int(time.time() * 1000)
    svcs = ["api", "db", "web"]
    history = [(now_ms - rnd.randint(2000, 60000), rnd.choice(svcs), rnd.choice(["info", "error"]),
                rnd.randint(1, 900)) for _ in range(600)]
    ingest(srv, history)

    create = ("CREATE ROLLUP errs_1s AS SELECT bucket(ts, 1s) AS t, service, level, count(*) AS n, "
              "p99(latency_ms) AS p, sum(latency_ms) AS s FROM logs GROUP BY t, service, level "
              "WITH (lateness = 0s, retention = 1d)")
    st, _, doc = srv.request("POST", "/v1/rollups", {"sql": create})
    check("POST /v1/rollups creates and backfills", st == 201 and doc.get("state") == "live"
          and doc.get("backfill_events") == 600 and doc.get("interval") == "1s", (st, doc))
    check("the created rollup describes its columns",
          [c["name"] for c in doc.get("columns", [])] == ["t", "service", "level", "n", "p", "s"],
          doc)

    st, _, doc = srv.request("POST", "/v1/rollups", {"sql": create})
    check("a duplicate name is 409 already_exists", st == 409 and
          doc["error"]["code"] == "already_exists" and doc["error"].get("column") == 15, (st, doc))
    bad = "CREATE ROLLUP b AS SELECT bucket(ts, 1s) AS t, host, count(*) FROM logs GROUP BY t"
    st, _, doc = srv.request("POST", "/v1/rollups", {"sql": bad})
    check("a bad definition is 400 with its position", st == 400 and
          doc["error"]["code"] == "syntax" and doc["error"]["line"] == 1 and
          doc["error"]["column"] == 48 and "GROUP BY" in doc["error"]["message"], (st, doc))
    st, _, doc = srv.request("POST", "/v1/rollups", {"sql": bad.replace("host", "nofield") +
                                                     ", nofield"})
    check("an unknown field is 400 with its position", st == 400 and
          "unknown field" in doc["error"]["message"], (st, doc))
    st, _, doc = srv.request("POST", "/v1/rollups", {"statement": "x"})
    check("a body without sql is 400 invalid_request", st == 400 and
          doc["error"]["code"] == "invalid_request", (st, doc))
    st, _, doc = srv.request("POST", "/v1/rollups", {"sql": "SELECT 1"})
    check("a statement that is not CREATE ROLLUP is 400", st == 400, (st, doc))
    st, hdr, doc = srv.request("PUT", "/v1/rollups")
    check("PUT /v1/rollups is 405 with Allow", st == 405 and "POST" in hdr.get("allow", ""),
          (st, hdr, doc))
    st, _, doc = srv.request("GET", "/v1/rollups/nope")
    check("an unknown rollup is 404 not_found", st == 404 and doc["error"]["code"] == "not_found",
          (st, doc))
    st, _, doc = srv.request("GET", "/v1/rollups")
    check("GET /v1/rollups lists it", st == 200 and
          [r["name"] for r in doc.get("rollups", [])] == ["errs_1s"], (st, doc))

    # live: events of the current seconds, then the windows close by the wall clock
    live = []
    for _ in range(3):
        t = int(time.time() * 1000)
        batch = [(t + rnd.randint(0, 300), rnd.choice(svcs), rnd.choice(["info", "error"]),
                  rnd.randint(1, 900)) for _ in range(100)]
        ingest(srv, batch)
        live += batch
        time.sleep(0.3)
    everything = history + live
    end_s = max(e[0] for e in everything) // 1000 + 1
    # windows close when the wall clock passes their end (lateness 0s; ticks every 500 ms)
    while time.time() < end_s + 1.5:
        time.sleep(0.1)
    st, doc = srv.query("SELECT sum(n), sum(s) FROM errs_1s")
    want = [len(everything), sum(e[3] for e in everything)]
    check("sum over the rollup equals what was ingested", st == 200 and rows_of(doc) == [want],
          (st, doc, want))
    st, doc = srv.query("SHOW ROLLUPS")
    row = rows_of(doc)[0]
    check("SHOW ROLLUPS: live, windows closed, nothing late", row[1] == "live" and row[9]
          and row[7] == 0 and row[10] >= 1, row)

    lo_s = min(e[0] for e in everything) // 1000
    lo = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(lo_s))
    hi = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end_s))
    sql = ("SELECT service, count(*), p99(latency_ms) FROM logs WHERE ts >= '%s' AND ts < '%s' "
           "GROUP BY service" % (lo, hi))
    st, doc = srv.query("EXPLAIN " + sql)
    plan = "\n".join(r[0] for r in rows_of(doc))
    check("EXPLAIN shows the rewrite", "rollup: errs_1s" in plan, plan)
    st, doc = srv.query(sql)
    counts = {}
    for e in everything:
        counts[e[1]] = counts.get(e[1], 0) + 1
    check("the rewritten answer is the raw count", st == 200 and
          {r[0]: r[1] for r in rows_of(doc)} == counts, (doc, counts))
    st, doc = srv.query("SELECT bucket(t, 1m) AS m, sum(n) FROM errs_1s GROUP BY m")
    check("coarser buckets over the rollup", st == 200 and
          sum(r[1] for r in rows_of(doc)) == len(everything), doc)

    body = {"time_range": {"from": lo, "to": hi}, "interval": "2s", "metric": "count",
            "group_by": ["level"]}
    st, _, agg = srv.request("POST", "/v1/aggregate", body)
    check("/v1/aggregate answers", st == 200 and
          sum(b["value"] for b in agg.get("buckets", [])) == len(everything), (st, agg))

    # restart: the definition, closed windows and answers survive
    check("server stops cleanly", srv.stop() == 0)
    srv = Server(os.path.join(work, "d"))
    st, _, doc = srv.request("GET", "/v1/rollups/errs_1s")
    check("the rollup survives a restart", st == 200 and doc.get("state") == "live", (st, doc))
    st, doc = srv.query("SELECT sum(n) FROM errs_1s")
    check("and its rows", rows_of(doc) == [[len(everything)]], doc)

    # the same directory through `quarry query --data` (the CLI opens the rollups too)
    check("server stops again", srv.stop() == 0)
    p = subprocess.run([BIN, "query", "--data", os.path.join(work, "d"), "--format", "csv",
                        "SELECT sum(n) FROM errs_1s"], capture_output=True, timeout=60)
    check("quarry query --data reads the rollup", p.returncode == 0 and
          p.stdout.decode().splitlines()[-1].strip() == str(len(everything)),
          (p.returncode, p.stdout, p.stderr))
    p = subprocess.run([BIN, "query", "--data", os.path.join(work, "d"), "--format", "csv",
                        "EXPLAIN SELECT level, count(*) FROM logs WHERE ts >= '%s' AND ts < '%s' "
                        "GROUP BY level" % (lo, hi)], capture_output=True, timeout=60)
    check("and rewrites with it", b"rollup: errs_1s" in p.stdout, (p.stdout, p.stderr))
    srv = Server(os.path.join(work, "d"))

    st, _, doc = srv.request("DELETE", "/v1/rollups/errs_1s")
    check("DELETE drops it", st == 200 and doc == {"dropped": "errs_1s"}, (st, doc))
    st, _, doc = srv.request("DELETE", "/v1/rollups/errs_1s")
    check("DELETE again is 404", st == 404, (st, doc))
    check("its directory is gone",
          not os.path.exists(os.path.join(work, "d", "cq", "default", "rollups", "errs_1s")))
    srv.stop()
    shutil.rmtree(work, ignore_errors=True)
    return harness.summary()


if __name__ == "__main__":
    sys.exit(main())

"""`quarry serve` query side as clients see it: POST /v1/query (JSON, NDJSON streaming, syntax
errors with line/column), /v1/search (filters, time range, sort, limit, cursor paging),
/v1/aggregate (buckets equal to the same SQL through /v1/query, 400 naming a bad metric or
group_by), GET /v1/tail (SSE delivery of events ingested after subscribing, Last-Event-ID
resume with exactly the missed events, slow subscriber disconnected with a notice while the
server stays healthy), and `quarry query --connect` printing what `--data` prints.
Standard library only; the server listens on 127.0.0.1 port 0 with a temp data dir."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import BIN, SLOW, TMP, check  # noqa: E402,F401

work = os.path.join(TMP, "server_query.%d" % os.getpid())


class Server(harness.Server):
    def __init__(self, name, config):
        path = os.path.join(work, name + ".conf")
        os.makedirs(work, exist_ok=True)
        with open(path, "w") as f:
            f.write(config)
        super().__init__(os.path.join(work, name), os.path.join(work, name + ".log"),
                         ["--config", path])


def ingest(srv, service, logs, host="h1"):
    st, _, doc = srv.request("POST", "/v1/ingest",
                             {"source": {"service": service, "host": host}, "logs": logs})
    assert st == 202 and doc["failed"] == 0, (st, doc)
    return doc


class Sse:
    """A raw-socket SSE reader (bounded waits)."""

    def __init__(self, srv, params, last_id=None, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect((srv.host, srv.port))
        hdr = "GET /v1/tail?%s HTTP/1.1\r\nHost: x\r\n" % urllib.parse.urlencode(params)
        if last_id is not None:
            hdr += "Last-Event-ID: %s\r\n" % last_id
        self.sock.sendall((hdr + "\r\n").encode())
        self.buf = b""
        self.status = None
        self.eof = False

    def _fill(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _body_text(self):
        # de-chunk what is complete
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        if self.status is None:
            self.status = int(self.buf.split(b" ", 2)[1])
        rest, out = self.buf[head_end + 4:], b""
        while True:
            eol = rest.find(b"\r\n")
            if eol < 0:
                break
            size = int(rest[:eol], 16)
            if len(rest) < eol + 2 + size + 2:
                break
            out += rest[eol + 2:eol + 2 + size]
            rest = rest[eol + 2 + size + 2:]
            if size == 0:
                break
        return out.decode(errors="replace")

    def events(self):
        """Complete SSE blocks so far: dicts with id/event/data/comment."""
        text = self._body_text() or ""
        out = []
        for block in text.split("\n\n")[:-1]:
            ev = {}
            for line in block.split("\n"):
                if line.startswith(":"):
                    ev["comment"] = line[1:].strip()
                elif ":" in line:
                    k, v = line.split(":", 1)
                    ev[k] = v[1:] if v.startswith(" ") else v
            out.append(ev)
        return out

    def wait(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            evs = self.events()
            if pred(evs):
                return evs
            if self.eof:
                break
            self._fill(deadline)
        return self.events()

    def data_events(self):
        return [json.loads(e["data"]) for e in self.events() if "data" in e and "event" not in e]

    def close(self):
        self.sock.close()


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))] if s else float("nan")


shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
CONF = ("[storage]\nfsync = never\n[tail]\nsubscriber_bytes = 64KiB\nheartbeat_ms = 500\n"
        "ring_bytes = 8MiB\n[limits]\nstream_buffer_bytes = 256KiB\n")
srv = Server("q", CONF)

# ---------------------------------------------------------------- known events
BASE = 1750000000  # 2025-06-15T15:06:40Z
svc_logs = {"payment": [], "auth": []}
for i in range(60):
    svc = "payment" if i % 3 else "auth"
    lvl = ["info", "warn", "error"][i % 3 if svc == "payment" else 0]
    svc_logs[svc].append({"ts": BASE + i, "level": lvl,
                          "msg": "request %d %s" % (i, "timeout upstream" if i % 5 == 0 else "ok"),
                          "meta": {"latency_ms": 10 * i, "region": "eu" if i % 2 else "us"}})
for svc, logs in svc_logs.items():
    ingest(srv, svc, logs)

# ---------------------------------------------------------------- /v1/query
st, hd, doc = srv.request("POST", "/v1/query",
                          {"query": "SELECT service, count(*) FROM logs GROUP BY 1 ORDER BY 1"})
check("query: 200 JSON with columns/rows/hits", st == 200 and doc["rows"] == [["auth", 20],
      ["payment", 40]] and doc["hits"] == 60 and "took_ms" in doc and doc["partial"] is False
      and "next_cursor" in doc, doc)
st, hd, doc = srv.request("POST", "/v1/query", {"query": '{service="payment"} |= "timeout"'},
                          headers={"Accept": "application/x-ndjson"})
rows = [json.loads(l) for l in doc.splitlines()] if isinstance(doc, str) else None
want = sorted(l["msg"] for l in svc_logs["payment"] if "timeout" in l["msg"])
check("query: NDJSON streamed chunked, one row per line",
      st == 200 and hd.get("transfer-encoding") == "chunked" and
      hd.get("content-type") == "application/x-ndjson" and rows is not None and
      sorted(r["msg"] for r in rows) == want, (st, hd, doc))
st, _, doc = srv.request("POST", "/v1/query", {"query": "SELECT ts FROM logs WHERE level = "})
err = doc.get("error", {}) if isinstance(doc, dict) else {}
check("query: syntax error 400 with line and column",
      st == 400 and err.get("code") == "syntax" and err.get("line") == 1 and
      err.get("column") == 35 and err.get("message", "").startswith("line 1, column 35:"), doc)
st, _, doc = srv.request("POST", "/v1/query", {"query": "SELECT latnecy_ms FROM logs"})
check("query: unknown field 400 names it", st == 400 and
      "latency_ms" in doc["error"]["message"], doc)
st, _, doc = srv.request("POST", "/v1/query", {"nope": 1})
check("query: missing query member 400 invalid_request",
      st == 400 and doc["error"]["code"] == "invalid_request", doc)
st, _, doc = srv.request("POST", "/v1/query", '{"query": ')
check("query: malformed JSON 400 with offset", st == 400 and
      doc["error"]["code"] == "malformed_json" and "offset" in doc["error"], doc)
st, hd, _ = srv.request("GET", "/v1/query")
check("query: GET is 405", st == 405 and hd.get("allow") == "POST")

# ---------------------------------------------------------------- /v1/search
all_logs = [dict(l, service=s) for s, ls in svc_logs.items() for l in ls]
st, _, doc = srv.request("POST", "/v1/search", {
    "query": "timeout", "filters": {"service": ["payment"], "level": ["error", "warn"]},
    "time_range": {"from": BASE + 10, "to": BASE + 50}, "sort": "asc", "limit": 100})
want = sorted((l for l in all_logs if l["service"] == "payment" and "timeout" in l["msg"] and
               l["level"] in ("error", "warn") and BASE + 10 <= l["ts"] < BASE + 50),
              key=lambda l: l["ts"])
check("search: filters + time range + asc", st == 200 and [g["msg"] for g in doc["logs"]] ==
      [l["msg"] for l in want] and doc["hits"] == len(want) and doc["next_cursor"] is None, doc)
lg = doc["logs"][0] if st == 200 and doc["logs"] else {}
check("search: log shape ts/service/level/host/msg/meta",
      set(lg) == {"ts", "service", "level", "host", "msg", "meta"} and lg["host"] == "h1" and
      lg["meta"].get("latency_ms") == want[0]["meta"]["latency_ms"], lg)
st, _, doc = srv.request("POST", "/v1/search", {"filters": {"region": "eu"}, "limit": 5})
check("search: field filter, newest first", st == 200 and len(doc["logs"]) == 5 and
      all(g["meta"]["region"] == "eu" for g in doc["logs"]) and
      [g["ts"] for g in doc["logs"]] == sorted([g["ts"] for g in doc["logs"]], reverse=True), doc)
# paging through everything with a cursor, both orders
for order in ("desc", "asc"):
    seen, cursor, pages = [], None, 0
    while pages < 50:
        body = {"sort": order, "limit": 7, "filters": {"service": "payment"}}
        if cursor:
            body["cursor"] = cursor
        st, _, doc = srv.request("POST", "/v1/search", body)
        if st != 200:
            break
        seen += [g["msg"] for g in doc["logs"]]
        pages += 1
        cursor = doc["next_cursor"]
        if not cursor:
            break
    want = [l["msg"] for l in sorted(svc_logs["payment"], key=lambda l: l["ts"],
                                     reverse=order == "desc")]
    check("search: cursor paging %s returns every row once, in order" % order,
          seen == want and pages == 6, (pages, len(seen)))
st, _, doc = srv.request("POST", "/v1/search", {"filters": {"a b": "x"}})
check("search: invalid field name 400", st == 400 and "a b" in doc["error"]["message"], doc)
st, _, doc = srv.request("POST", "/v1/search", {"filters": {"service": "x' OR '1'='1"}})
check("search: quotes in values stay literal", st == 200 and doc["logs"] == [], doc)
st, _, doc = srv.request("POST", "/v1/search", {"filters": {"level": ["loud"]}})
check("search: bad level 400", st == 400 and doc["error"]["code"] == "invalid_request", doc)
st, _, doc = srv.request("POST", "/v1/search", {"cursor": "s1:1:0:abc"})
check("search: foreign cursor refused", st == 400 and "cursor" in doc["error"]["message"], doc)

# ---------------------------------------------------------------- /v1/aggregate
st, _, agg = srv.request("POST", "/v1/aggregate", {
    "time_range": {"from": BASE, "to": BASE + 3600}, "filters": {"region": ["eu", "us"]},
    "group_by": ["service", "level"], "interval": "15s", "metric": "p99(latency_ms)"})
st2, _, q = srv.request("POST", "/v1/query", {"query": agg.get("sql", "") if st == 200 else ""})
check("aggregate: buckets equal the same SQL through /v1/query",
      st == 200 and st2 == 200 and len(agg["buckets"]) == len(q["rows"]) > 0 and
      [[b["t"], b["service"], b["level"], b["value"]] for b in agg["buckets"]] == q["rows"],
      (agg, q))
st, _, agg = srv.request("POST", "/v1/aggregate", {"group_by": ["service"], "metric": "count"})
check("aggregate: count by service", st == 200 and
      {b["service"]: b["value"] for b in agg["buckets"]} == {"auth": 20, "payment": 40}, agg)
st, _, doc = srv.request("POST", "/v1/aggregate", {"metric": "median(latency_ms)"})
check("aggregate: invalid metric 400 names it", st == 400 and
      "median(latency_ms)" in doc["error"]["message"], doc)
st, _, doc = srv.request("POST", "/v1/aggregate", {"group_by": ["service; DROP"]})
check("aggregate: invalid group_by 400 names it", st == 400 and
      "service; DROP" in doc["error"]["message"], doc)
st, _, doc = srv.request("POST", "/v1/aggregate", {"interval": "soon"})
check("aggregate: invalid interval 400", st == 400 and "interval" in doc["error"]["message"], doc)

# ---------------------------------------------------------------- /v1/tail
sub = Sse(srv, {"query": '{service="tailsvc"} |= "hit" | n >= 2'})
evs = sub.wait(lambda e: any("subscribed" in x.get("comment", "") for x in e), 10)
check("tail: 200 text/event-stream, subscribed comment", sub.status == 200 and evs, evs)
delays = []
for i in range(30):
    t0 = time.monotonic()
    ingest(srv, "tailsvc", [{"msg": "hit %d" % i, "meta": {"n": i}}, {"msg": "miss %d" % i}])
    n_before = len([e for e in sub.events() if "id" in e])
    sub.wait(lambda e: len([x for x in e if "id" in x]) > n_before or i < 2, 10)
    if i >= 2:
        delays.append((time.monotonic() - t0) * 1000)
got = sub.data_events()
check("tail: exactly the matching events, in order, with ids",
      [g["msg"] for g in got] == ["hit %d" % i for i in range(2, 30)] and
      all(str(g["id"]) == e["id"] for g, e in zip(got, [x for x in sub.events() if "id" in x])),
      [g["msg"] for g in got][:5])
print("# tail delay ingest request -> event received: p50 %.2f ms, p99 %.2f ms (n=%d)" %
      (pct(delays, 0.5), pct(delays, 0.99), len(delays)))
hb = sub.wait(lambda e: any(x.get("comment") == "heartbeat" for x in e), 5)
check("tail: heartbeat comments", any(x.get("comment") == "heartbeat" for x in hb))

# resume: disconnect, ingest more, reconnect with Last-Event-ID → exactly the missed ones
last_id = [x for x in sub.events() if "id" in x][-1]["id"]
sub.close()
ingest(srv, "tailsvc", [{"msg": "hit late %d" % i, "meta": {"n": 5}} for i in range(5)] +
       [{"msg": "hit low", "meta": {"n": 0}}])
sub2 = Sse(srv, {"query": '{service="tailsvc"} |= "hit" | n >= 2'}, last_id=last_id)
sub2.wait(lambda e: len([x for x in e if "id" in x]) >= 5, 10)
ingest(srv, "tailsvc", [{"msg": "hit after", "meta": {"n": 9}}])
sub2.wait(lambda e: len([x for x in e if "id" in x]) >= 6, 10)
check("tail: Last-Event-ID resume gets exactly the missed events, then live ones",
      [g["msg"] for g in sub2.data_events()] == ["hit late %d" % i for i in range(5)] +
      ["hit after"] and not any(x.get("event") == "notice" for x in sub2.events()),
      sub2.events())
sub2.close()
sub3 = Sse(srv, {"service": "tailsvc"}, last_id="12")
evs = sub3.wait(lambda e: any(x.get("event") == "notice" for x in e), 10)
check("tail: resume from an id no longer held says gap",
      any(x.get("event") == "notice" and json.loads(x["data"])["notice"] == "gap" for x in evs),
      evs)
sub3.close()
st, _, doc = srv.request("GET", "/v1/tail?query=" + urllib.parse.quote('{service="x"} | json'))
check("tail: unsupported stage 400 with position", st == 400 and doc["error"]["code"] ==
      "syntax" and doc["error"]["column"] == 15, doc)
st, _, doc = srv.request("GET", "/v1/tail?level=loud")
check("tail: bad level 400", st == 400, doc)

# slow subscriber: never reads; the server drops it with a notice and stays healthy
slow = Sse(srv, {"service": "bulk"}, rcvbuf=4096)
fast = Sse(srv, {"service": "bulk", "q": "needle"})
slow.wait(lambda e: len(e) > 0, 5)
fast.wait(lambda e: len(e) > 0, 5)
slow.sock.settimeout(0)
dropped = False
for round_ in range(40):
    ingest(srv, "bulk", [{"msg": "bulk %d %s %s" % (i, "needle" if i == 0 else "", "x" * 900)}
                         for i in range(500)])
    st, _, m = srv.request("GET", "/metrics")
    if "quarry_tail_subscribers_dropped_total 1" in m:
        dropped = True
        break
check("tail: slow subscriber dropped (metrics)", dropped, round_)
st, _, doc = srv.request("GET", "/healthz")
check("tail: server healthy after dropping", st == 200)
evs = slow.wait(lambda e: slow.eof, 30)
notices = [json.loads(x["data"]) for x in evs if x.get("event") == "notice"]
check("tail: slow subscriber reads a final notice then EOF",
      slow.eof and notices and notices[-1]["notice"] == "slow_subscriber", notices)
fast.wait(lambda e: len([x for x in e if "id" in x]) >= round_ + 1, 10)
check("tail: a reading subscriber of the same stream keeps going",
      len(fast.data_events()) == round_ + 1 and not fast.eof, len(fast.data_events()))
fast.close()
rss = 0
with open("/proc/%d/status" % srv.proc.pid) as f:
    for line in f:
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) // 1024
print("# server RSS after slow-subscriber run: %d MiB" % rss)
st, _, m = srv.request("GET", "/metrics")
check("metrics: query latency histogram and tail series",
      'quarry_query_duration_seconds_count{route="search"}' in m and
      "quarry_tail_subscribers " in m, "")

# query latency figure
lat = []
for i in range(50):
    t0 = time.monotonic()
    srv.request("POST", "/v1/search", {"query": "timeout", "limit": 20})
    lat.append((time.monotonic() - t0) * 1000)
print("# /v1/search latency (HTTP round trip, %d events): p50 %.2f ms, p99 %.2f ms" %
      (60 + 30 * 2 + 12 + 20000, pct(lat, 0.5), pct(lat, 0.99)))

# ---------------------------------------------------------------- quarry query --connect
# ---------------------------------------------------------------- streamed results
# /v1/query with Accept: application/x-ndjson runs page by page: a result bigger than a page
# (10,000 rows) arrives whole, the query's LIMIT holds across pages, an error before the first
# row is a normal JSON error, and a client that leaves mid-stream stops the query.
for k in range(5):
    ingest(srv, "streambulk", [{"ts": BASE + 100000 + k * 5000 + i, "msg": "bulk %d" % (k * 5000 + i)}
                         for i in range(5000)])
st, hd, doc = srv.request("POST", "/v1/query", {"query": "SELECT ts, msg FROM logs WHERE "
                          "service = 'streambulk'"}, headers={"Accept": "application/x-ndjson"})
rows = [json.loads(l) for l in doc.splitlines()] if isinstance(doc, str) else []
check("stream: 25,000 rows over pages, each once, newest first",
      st == 200 and "x-quarry-streamed" in hd and len(rows) == 25000 and
      [r["msg"] for r in rows] == ["bulk %d" % i for i in range(24999, -1, -1)],
      (st, hd, len(rows)))
st, hd, doc = srv.request("POST", "/v1/query", {"query": "SELECT ts FROM logs WHERE service = "
                          "'streambulk' ORDER BY ts ASC LIMIT 12345", "format": "ndjson"})
rows = doc.splitlines() if isinstance(doc, str) else []
check("stream: LIMIT across pages (format: ndjson in the body)", st == 200 and len(rows) == 12345,
      (st, len(rows)))
st, hd, doc = srv.request("POST", "/v1/query", {"query": "SELECT ts FROM logz"},
                          headers={"Accept": "application/x-ndjson"})
check("stream: error before the first row is a JSON error",
      st == 400 and isinstance(doc, dict) and doc["error"]["column"] == 16, (st, doc))
# a reader that stops reading holds the query (bounded buffers), and leaving ends it
big = "x" * 400
for k in range(5):
    ingest(srv, "streamwide", [{"ts": BASE + 200000 + k * 5000 + i, "msg": "w %d %s" % (i, big)}
                              for i in range(5000)])


def metric(name):
    _, _, text = srv.request("GET", "/metrics")
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[-1]))
    return None


sk = socket.socket()
sk.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
sk.settimeout(10)
sk.connect((srv.host, srv.port))
body = json.dumps({"query": "SELECT msg FROM logs WHERE service = 'streamwide'"}).encode()
sk.sendall(b"POST /v1/query HTTP/1.1\r\nHost: x\r\nAccept: application/x-ndjson\r\n"
           b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
first = sk.recv(4096)
time.sleep(1.0)
held = metric("quarry_queries_running")
sk.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
sk.close()  # with unread data: a reset
deadline = time.time() + 10
while time.time() < deadline and metric("quarry_queries_running") != 0:
    time.sleep(0.05)
check("stream: a reader that stops holds the query; leaving ends it",
      first.startswith(b"HTTP/1.1 200") and held == 1 and
      metric("quarry_queries_running") == 0 and
      metric("quarry_query_streams_abandoned_total") == 1,
      (first[:40], held, metric("quarry_queries_running"),
       metric("quarry_query_streams_abandoned_total")))

# the deadline covers the whole stream: a reader too slow for it gets the rows sent so far and
# a last line naming the error (the status line went out with the first page)
# the message cache of result rows: on by default, off with [limits] msg_cache_bytes = 0
check("metrics: the message cache reports its bytes, hits and misses",
      metric("quarry_msg_cache_bytes") is not None and
      metric("quarry_msg_cache_hits_total") is not None, metric("quarry_msg_cache_bytes"))
slow_srv = Server("qdeadline", "[storage]\nfsync = never\n[limits]\nquery_timeout_ms = 1500\n"
                  "stream_buffer_bytes = 64KiB\nmsg_cache_bytes = 0\n")
_, _, slow_metrics = slow_srv.request("GET", "/metrics")
check("metrics: msg_cache_bytes = 0 turns the message cache off",
      "quarry_queries_running" in slow_metrics and "quarry_msg_cache_bytes" not in slow_metrics)
for k in range(5):
    ingest(slow_srv, "streamwide", [{"ts": BASE + k * 5000 + i, "msg": "w %d %s" % (i, big)}
                                    for i in range(5000)])
sk = socket.socket()
sk.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
sk.settimeout(30)
sk.connect((slow_srv.host, slow_srv.port))
body = json.dumps({"query": "SELECT msg FROM logs"}).encode()
sk.sendall(b"POST /v1/query HTTP/1.1\r\nHost: x\r\nAccept: application/x-ndjson\r\n"
           b"Connection: close\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body) + body)
got = sk.recv(4096)
time.sleep(2.5)  # past the deadline while the server waits for this reader
while True:
    chunk = sk.recv(1 << 16)
    if not chunk:
        break
    got += chunk
sk.close()
head, _, rest = got.partition(b"\r\n\r\n")
body = b""
while rest:  # undo the chunked framing
    size_line, _, rest = rest.partition(b"\r\n")
    size = int(size_line, 16) if size_line.strip() else 0
    if size == 0:
        break
    body, rest = body + rest[:size], rest[size + 2:]
tail_lines = [l for l in body.split(b"\n") if l]
last = json.loads(tail_lines[-1]) if tail_lines else {}
check("stream: past the deadline the stream ends with an error line",
      got.startswith(b"HTTP/1.1 200") and "error" in last and
      last["error"]["code"] == "limit_exceeded" and "timed out" in last["error"]["message"] and
      len(tail_lines) < 25000, (got[:40], last, len(tail_lines)))
check("stream: the deadline server stops cleanly", slow_srv.stop() == 0)

queries = ["SELECT service, level, count(*) FROM logs GROUP BY 1, 2",
           '{service="payment"} |= "timeout"',
           "SELECT ts, msg, latency_ms FROM logs WHERE service = 'auth' ORDER BY ts LIMIT 5"]
url = "http://" + srv.addr
remote = []
for fmt in ("table", "csv", "ndjson"):
    for q in queries:
        p = subprocess.run([BIN, "query", "--connect", url, "--format", fmt, q],
                           capture_output=True, timeout=60)
        remote.append((p.returncode, p.stdout))
p = subprocess.run([BIN, "query", "--connect", url, "SELECT FROM"], capture_output=True,
                   timeout=60)
check("connect: query error exit 2 with caret", p.returncode == 2 and
      b"line 1, column 8" in p.stderr and b"^" in p.stderr, p.stderr)
check("server stops cleanly", srv.stop() == 0)
local = []
for fmt in ("table", "csv", "ndjson"):
    for q in queries:
        p = subprocess.run([BIN, "query", "--data", srv.data, "--format", fmt, q],
                           capture_output=True, timeout=60)
        local.append((p.returncode, p.stdout))
check("connect: --connect output equals --data output",
      remote == local and all(r[0] == 0 and r[1] for r in remote),
      [(a[1][:200], b[1][:200]) for a, b in zip(remote, local) if a != b][:2])
p = subprocess.run([BIN, "query", "--connect", url, "SELECT 1"], capture_output=True, timeout=60)
check("connect: server gone → exit 1 with a message", p.returncode == 1 and
      b"cannot connect" in p.stderr, p.stderr)

shutil.rmtree(work, ignore_errors=True)
sys.exit(harness.summary())

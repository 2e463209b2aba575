"""`quarry serve` as clients see it: every route and documented error (400 with position, 401,
403, 404, 405, 413 without reading the body, 415, 429 with Retry-After), partial acceptance,
tenant isolation, gzip/zstd bodies, keep-alive + pipelining, concurrent clients, graceful
shutdown with an in-flight request, and durability across SIGKILL under concurrent ingest.
Standard library only; servers listen on 127.0.0.1 port 0 (free port) with temp data dirs."""
import gzip
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

BIN = os.environ["QR_BIN"]
TMP = os.environ.get("QR_TMP", "/tmp")
SLOW = os.environ.get("QR_SANITIZED") == "1"
work = os.path.join(TMP, "server.%d" % os.getpid())
passed = failed = 0
T0 = time.monotonic()


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok - %s" % name)
    else:
        failed += 1
        print("not ok - %s %s" % (name, str(detail)[:600]))
    sys.stdout.flush()


class Server:
    def __init__(self, name, config=None, args=()):
        self.data = os.path.join(work, name)
        os.makedirs(self.data, exist_ok=True)
        argv = [BIN, "serve", "--data", self.data, "--listen", "127.0.0.1:0"] + list(args)
        if config is not None:
            path = os.path.join(work, name + ".conf")
            with open(path, "w") as f:
                f.write(config)
            argv += ["--config", path]
        self.log = open(os.path.join(work, name + ".log"), "ab")
        addr_file = os.path.join(self.data, "server.addr")
        if os.path.exists(addr_file):  # left by a killed server: the new one rewrites it when ready
            os.unlink(addr_file)
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log)
        addr_file = os.path.join(self.data, "server.addr")
        deadline = time.monotonic() + (60 if SLOW else 20)
        self.addr = None
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with open(addr_file) as f:
                    text = f.read().strip()
                if text:
                    self.addr = text
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        if not self.addr:
            raise RuntimeError("server %s did not start: %s" % (name, self.logtext()))
        self.host, port = self.addr.rsplit(":", 1)
        self.port = int(port)

    def logtext(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log.name, "rb") as f:
            return f.read().decode(errors="replace")

    def request(self, method, path, body=None, headers=None, key=None, timeout=30):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        h = dict(headers or {})
        if key:
            h["Authorization"] = "Bearer " + key
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = data.decode(errors="replace")
        return r.status, {k.lower(): v for k, v in r.getheaders()}, doc

    def stop(self, sig=signal.SIGTERM, timeout=60):
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc


def export(data, tenant=None):
    argv = [BIN, "export", "--data", data] + (["--tenant", tenant] if tenant else [])
    p = subprocess.run(argv, capture_output=True, timeout=120)
    return p.returncode, [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]


def err_code(doc):
    return doc.get("error", {}).get("code") if isinstance(doc, dict) else None


def services(srv, key=None):
    st, _, doc = srv.request("GET", "/v1/services", key=key)
    return st, {s["service"]: s for s in doc.get("services", [])} if st == 200 else doc


shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)

# ---------------------------------------------------------------- open (no keys) server
LIMITS = "[limits]\nbody_bytes = 256KiB\ndecoded_bytes = 1MiB\nbatch_events = 5000\n"
srv = Server("open", config=LIMITS)
st, _, doc = srv.request("GET", "/healthz")
check("healthz 200", st == 200 and doc == {"status": "ok"}, doc)
st, _, doc = srv.request("GET", "/readyz")
check("readyz 200 once recovered", st == 200 and doc == {"status": "ready"}, doc)
check("start message says open single-tenant mode", "single-tenant open mode" in srv.logtext())

# partial acceptance: valid events kept, invalid ones reported with index and reason
logs = [
    {"ts": "2025-06-15T14:23:01.123Z", "level": "error", "msg": "card declined", "meta": {"amount": 12}},
    42,
    {"level": "info", "msg": "x" * (300 * 1024)},  # over the 256 KiB message limit
    {"msg": "has own env", "env": "dev"},
    None,
    "WARN plain text line from an agent",
    {"msg": "third valid", "meta": {"k%d" % i: i for i in range(300)}},  # > 256 fields
]
body = {"source": {"service": "payment", "host": "ip-1", "env": "prod", "team": {"name": "core"}},
        "logs": logs}
st, _, doc = srv.request("POST", "/v1/ingest",
                         body=json.dumps({"source": body["source"], "logs": logs[:2] + logs[3:]}))
check("partial acceptance: 202", st == 202, doc)
if st == 202:
    idx = {e["index"]: e["reason"] for e in doc["errors"]}
    check("partial acceptance: counts", doc["accepted"] == 3 and doc["failed"] == 3, doc)
    check("partial acceptance: indexes and reasons",
          sorted(idx) == [1, 3, 5] and "number" in idx[1] and "null" in idx[3] and
          "fields" in idx[5], idx)
    check("lag_hint present", doc.get("lag_hint") in ("normal", "elevated", "critical"), doc)
# a message over 256 KiB is rejected on its own (gzip carries it under the 256 KiB body limit)
big = gzip.compress(json.dumps({"source": {"service": "limits"}, "logs": [logs[2], {"msg": "small"}]}).encode())
st, _, doc = srv.request("POST", "/v1/ingest", body=big, headers={"Content-Encoding": "gzip"})
check("event over the msg limit rejected alone", st == 202 and doc["accepted"] == 1 and
      doc["errors"][0]["index"] == 0 and "limit" in doc["errors"][0]["reason"], doc)
st, _, doc = srv.request("POST", "/v1/ingest/ndjson",
                         body=b'{"msg":"ok line"}\n{"msg": broken\n\n{"service":"svc2","msg":"b"}\n[1]\n')
check("ndjson: 202 with line numbers", st == 202 and doc["accepted"] == 2 and doc["failed"] == 2 and
      [e["line"] for e in doc["errors"]] == [2, 5], doc)
st, svcs = services(srv)
check("services: counts of accepted events", st == 200 and svcs.get("payment", {}).get("rows") == 3
      and svcs.get("svc2", {}).get("rows") == 1 and svcs.get("unknown", {}).get("rows") == 1, svcs)
if st == 200 and "payment" in svcs:
    p = svcs["payment"]
    check("services: levels and first/last seen", p["levels"].get("ERROR") == 1 and
          p["levels"].get("WARN") == 1 and p["first_seen"].startswith("2025-06-15T14:23:01") and
          p["last_seen"] >= p["first_seen"], p)
st, _, doc = srv.request("GET", "/v1/fields")
fields = {(f["name"], f["type"]): f for f in doc["fields"]} if st == 200 else {}
check("fields: source keys and meta with types", st == 200 and ("env", "string") in fields and
      ("team.name", "string") in fields and ("amount", "int") in fields and
      fields[("env", "string")]["rows"] == 3 and ("msg", "text") in fields, doc)

# malformed and wrongly shaped bodies
st, _, doc = srv.request("POST", "/v1/ingest", body='{"logs": [{"msg": "a"},\n  {"msg": }]}')
e = doc.get("error", {}) if isinstance(doc, dict) else {}
check("400 malformed JSON with position", st == 400 and e.get("code") == "malformed_json" and
      e.get("offset") == 34 and e.get("line") == 2 and e.get("column") == 11 and
      "offset" in e.get("message", ""), doc)
st, _, doc = srv.request("POST", "/v1/ingest", body='{"source": {}, "events": []}')
check("400 when logs is missing", st == 400 and err_code(doc) == "invalid_body" and
      "logs" in doc["error"]["message"], doc)
st, _, doc = srv.request("POST", "/v1/ingest", body='{"source": "x", "logs": []}')
check("400 when source is not an object", st == 400 and "source" in doc["error"]["message"], doc)
st, _, doc = srv.request("GET", "/v1/nothing")
check("404 JSON error", st == 404 and err_code(doc) == "not_found", doc)
st, hdrs, doc = srv.request("GET", "/v1/ingest")
check("405 with Allow", st == 405 and err_code(doc) == "method_not_allowed" and
      hdrs.get("allow") == "POST", (st, hdrs, doc))
st, _, doc = srv.request("POST", "/v1/ingest", body=b"xx", headers={"Content-Encoding": "br"})
check("415 unsupported Content-Encoding", st == 415 and err_code(doc) == "unsupported_encoding", doc)
st, _, doc = srv.request("POST", "/v1/ingest", body=json.dumps({"logs": [{}] * 5001}))
check("413 too many events", st == 413 and err_code(doc) == "too_many_events", doc)

# gzip and zstd bodies
gz = gzip.compress(json.dumps({"source": {"service": "gz"}, "logs": [{"msg": "g%d" % i}
                                                                      for i in range(50)]}).encode())
st, _, doc = srv.request("POST", "/v1/ingest", body=gz, headers={"Content-Encoding": "gzip"})
check("gzip body", st == 202 and doc["accepted"] == 50, doc)
nd = "".join(json.dumps({"service": "zs", "msg": "z%d" % i}) + "\n" for i in range(40)).encode()
zs = subprocess.run(["zstd", "-q", "-c"], input=nd, capture_output=True).stdout
st, _, doc = srv.request("POST", "/v1/ingest/ndjson", body=zs, headers={"Content-Encoding": "zstd"})
check("zstd body", st == 202 and doc["accepted"] == 40, doc)
st, _, doc = srv.request("POST", "/v1/ingest", body=gz[: len(gz) // 2],
                         headers={"Content-Encoding": "gzip"})
check("400 truncated gzip", st == 400 and err_code(doc) == "bad_encoding", doc)
bomb = gzip.compress(b'{"logs":["' + b"a" * (4 * 1024 * 1024) + b'"]}')
st, _, doc = srv.request("POST", "/v1/ingest", body=bomb, headers={"Content-Encoding": "gzip"})
check("413 when the decompressed body passes decoded_bytes", st == 413 and
      err_code(doc) == "body_too_large" and len(bomb) < 256 * 1024, (st, doc, len(bomb)))


# 413 without reading the body: announce 64 MiB, send a little, get the answer, and find the
# connection closed long before the whole body could be sent
def oversized(chunked):
    s = socket.create_connection((srv.host, srv.port), timeout=10)
    if chunked:
        s.sendall(b"POST /v1/ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    else:
        s.sendall(b"POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 67108864\r\n\r\n")
    sent = 0
    chunk = b"x" * 65536
    frame = (b"10000\r\n" + chunk + b"\r\n") if chunked else chunk
    resp = b""
    s.settimeout(0.05)
    closed = False
    deadline = time.monotonic() + 20
    while sent < 64 * 1024 * 1024 and time.monotonic() < deadline:
        try:
            s.sendall(frame)
            sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        except socket.timeout:
            pass
        try:
            got = s.recv(65536)
            if not got:
                closed = True
                break
            resp += got
        except socket.timeout:
            pass
        except ConnectionResetError:
            closed = True
            break
    s.settimeout(2)
    try:
        while True:
            got = s.recv(65536)
            if not got:
                break
            resp += got
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return resp, sent, closed


resp, sent, closed = oversized(False)
check("413 for an announced oversized body, connection closed early",
      resp.startswith(b"HTTP/1.1 413") and b'"body_too_large"' in resp and closed and
      sent < 16 * 1024 * 1024, (resp[:200], sent, closed))
resp, sent, closed = oversized(True)
check("413 for a chunked body past the limit, connection closed early",
      resp.startswith(b"HTTP/1.1 413") and closed and sent < 16 * 1024 * 1024,
      (resp[:200], sent, closed))
# Expect: 100-continue with an oversized body: the answer comes before any body byte
s = socket.create_connection((srv.host, srv.port), timeout=10)
s.sendall(b"POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n")
resp = s.recv(4096)
s.close()
check("413 answers Expect: 100-continue", resp.startswith(b"HTTP/1.1 413"), resp[:100])
s = socket.create_connection((srv.host, srv.port), timeout=10)
s.sendall(b"GARBAGE\x01 / HTTP/1.1\r\n\r\n")
resp = s.recv(4096)
s.close()
check("400 for a malformed request line", resp.startswith(b"HTTP/1.1 400") and
      b'"bad_request"' in resp, resp[:200])
s = socket.create_connection((srv.host, srv.port), timeout=10)
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
resp = s.recv(4096)
s.close()
check("431 for headers over the limit", resp.startswith(b"HTTP/1.1 431"), resp[:100])


# keep-alive + pipelining: three requests in one write, answers in order on one socket
def read_responses(sock, count, timeout=20):
    sock.settimeout(timeout)
    buf = b""
    out = []
    while len(out) < count:
        while b"\r\n\r\n" not in buf:
            got = sock.recv(65536)
            if not got:
                return out
            buf += got
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        hd = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
        n = int(hd.get("content-length", "0"))
        while len(buf) < n:
            got = sock.recv(65536)
            if not got:
                return out
            buf += got
        out.append((status, hd, buf[:n]))
        buf = buf[n:]
    return out


body1 = json.dumps({"source": {"service": "pipe"}, "logs": [{"msg": "p1"}, {"msg": "p2"}]}).encode()
pipelined = (b"POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body1) + body1 +
             b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" +
             b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n" +
             b"POST /v1/ingest/ndjson HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"d\r\n{\"msg\":\"p3\"}\n\r\n0\r\n\r\n" +
             b"GET /v1/services HTTP/1.1\r\nHost: x\r\n\r\n")
s = socket.create_connection((srv.host, srv.port), timeout=10)
s.sendall(pipelined)
rs = read_responses(s, 5)
check("pipelined requests answered in order", [r[0] for r in rs] == [202, 200, 404, 202, 200],
      [(r[0], r[2][:80]) for r in rs])
if len(rs) == 5:
    svc = {x["service"]: x["rows"] for x in json.loads(rs[4][2])["services"]}
    check("pipelined: later request sees earlier writes", svc.get("pipe") == 2, svc)
# the same socket keeps working (keep-alive)
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
rs = read_responses(s, 1)
check("keep-alive: socket reused", len(rs) == 1 and rs[0][0] == 200 and
      rs[0][1].get("connection") == "keep-alive", rs)
s.close()

# concurrent clients, each on its own keep-alive connection
THREADS, REQS, PER = (4, 8, 50) if SLOW else (8, 20, 50)
results = []
lock = threading.Lock()


def client(tid):
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=60)
    ok = 0
    for r in range(REQS):
        b = json.dumps({"source": {"service": "conc"},
                        "logs": [{"msg": "t%d r%d e%d" % (tid, r, e)} for e in range(PER)]})
        conn.request("POST", "/v1/ingest", body=b)
        resp = conn.getresponse()
        d = json.loads(resp.read())
        if resp.status == 202 and d["accepted"] == PER:
            ok += 1
    conn.close()
    with lock:
        results.append(ok)


ts = [threading.Thread(target=client, args=(t,)) for t in range(THREADS)]
for t in ts:
    t.start()
for t in ts:
    t.join(120)
st, svcs = services(srv)
check("concurrent clients: every request 202", sum(results) == THREADS * REQS, results)
check("concurrent clients: every event counted", svcs.get("conc", {}).get("rows") == THREADS * REQS * PER,
      svcs.get("conc"))

st, hdrs, text = srv.request("GET", "/metrics")
text = text if isinstance(text, str) else ""
check("metrics: Prometheus text with the documented series",
      st == 200 and hdrs.get("content-type", "").startswith("text/plain") and
      'quarry_ingest_events_total{tenant="default"}' in text and
      "quarry_wal_fsyncs_total" in text and 'quarry_wal_fsync_seconds_bucket{le="+Inf"}' in text and
      'quarry_http_requests_total{route="ingest",status="202"}' in text and
      "quarry_http_connections_open" in text and "quarry_memtable_rows" in text and
      "quarry_segments" in text, text[:500])
m = {l.split(" ")[0]: float(l.split(" ")[1]) for l in text.splitlines() if l and l[0] != "#"}
check("metrics: rejected events counted", m.get('quarry_ingest_rejected_events_total{tenant="default"}') == 6,
      m.get('quarry_ingest_rejected_events_total{tenant="default"}'))
ingest_202 = m.get('quarry_http_requests_total{route="ingest",status="202"}', 0) + \
    m.get('quarry_http_requests_total{route="ingest_ndjson",status="202"}', 0)
check("metrics: every accepted ingest request timed by stage (queue, decode, commit)",
      ingest_202 > 0 and all(m.get('quarry_ingest_stage_seconds_count{stage="%s"}' % st_name, 0)
                             >= ingest_202 for st_name in ("queue", "decode", "commit")),
      [(k, v) for k, v in m.items() if "stage" in k and "_count" in k])

# graceful shutdown: a request in flight when SIGTERM arrives still completes
s = socket.create_connection((srv.host, srv.port), timeout=20)
late = json.dumps({"source": {"service": "late"}, "logs": [{"msg": "in flight"}]}).encode()
s.sendall(b"POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(late) + late[:10])
time.sleep(0.2)
srv.proc.send_signal(signal.SIGTERM)
time.sleep(0.3)
s.sendall(late[10:])
rs = read_responses(s, 1)
s.close()
check("SIGTERM: the in-flight request completes", len(rs) == 1 and rs[0][0] == 202 and
      rs[0][1].get("connection") == "close", rs)
try:
    rc = srv.proc.wait(timeout=60)
except subprocess.TimeoutExpired:
    srv.proc.kill()
    rc = srv.proc.wait()
check("SIGTERM: exit 0 and server.addr removed", rc == 0 and
      not os.path.exists(os.path.join(srv.data, "server.addr")), (rc, srv.logtext()[-500:]))
rc, evs = export(srv.data)
msgs = [e["msg"] for e in evs]
check("after restart (export): accepted events present, rejected absent",
      rc == 0 and "card declined" in msgs and "in flight" in msgs and "third valid" not in msgs and
      len(evs) == 3 + 1 + 2 + 50 + 40 + 3 + THREADS * REQS * PER + 1, (rc, len(evs)))
pay = [e for e in evs if e["service"] == "payment"]
check("source fields apply to every log; the event's own field wins",
      all(e["host"] == "ip-1" and e["meta"].get("team.name") == "core" for e in pay) and
      sorted(e["meta"].get("env") for e in pay) == ["dev", "prod", "prod"], pay)

# ---------------------------------------------------------------- keys, scopes, quotas
def hash_key(k):
    p = subprocess.run([BIN, "serve", "--hash-key", k], capture_output=True)
    line = p.stdout.decode().strip()
    return line.split("=", 1)[1].split()[0]


p = subprocess.run([BIN, "serve", "--hash-key", "abc"], capture_output=True)
check("--hash-key prints a config line", p.returncode == 0 and
      p.stdout.decode().startswith("key = sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
      p.stdout)
conf = """# tenants
[tenant acme]
key = %s ingest,query
key = %s admin
[tenant beta]
key = %s ingest
key = %s query
[tenant slow]
key = %s ingest
events_per_sec = 100
burst_seconds = 1
""" % (hash_key("acme-key"), hash_key("admin-key"), hash_key("beta-ingest"), hash_key("beta-query"),
       hash_key("slow-key"))
ksrv = Server("keys", config=conf)
check("start message counts tenants and keys", "3 tenants, 5 API keys" in ksrv.logtext())
st, hdrs, doc = ksrv.request("POST", "/v1/ingest", body={"logs": [{"msg": "x"}]})
check("401 without a key", st == 401 and err_code(doc) == "unauthorized" and
      hdrs.get("www-authenticate") == "Bearer", (st, doc))
st, _, doc = ksrv.request("POST", "/v1/ingest", body={"logs": [{"msg": "x"}]}, key="nope")
check("401 with an unknown key", st == 401 and "unknown" in doc["error"]["message"], doc)
st, _, doc = ksrv.request("GET", "/v1/services", key="beta-ingest")
check("403 for a key without the scope", st == 403 and err_code(doc) == "forbidden" and
      "query" in doc["error"]["message"], doc)
st, _, doc = ksrv.request("GET", "/healthz")
check("healthz needs no key", st == 200, doc)
st, _, doc = ksrv.request("GET", "/metrics", key="acme-key")
check("metrics need the admin scope", st == 403, doc)
st, _, doc = ksrv.request("GET", "/metrics", key="admin-key")
check("metrics with an admin key", st == 200 and 'tenant="acme"' in doc, str(doc)[:200])
st, _, doc = ksrv.request("POST", "/v1/ingest", key="acme-key",
                          body={"source": {"service": "acme-svc"}, "logs": [{"msg": "acme secret"}] * 3})
st2, _, doc2 = ksrv.request("POST", "/v1/ingest/ndjson", key="beta-ingest",
                            body='{"service":"beta-svc","msg":"beta secret"}\n')
check("ingest with tenant keys", st == 202 and st2 == 202, (doc, doc2))
st, sa = services(ksrv, key="acme-key")
st2, sb = services(ksrv, key="beta-query")
check("tenants are isolated", set(sa) == {"acme-svc"} and set(sb) == {"beta-svc"} and
      sa["acme-svc"]["rows"] == 3, (sa, sb))
st, _, doc = ksrv.request("POST", "/v1/ingest", key="slow-key",
                          body={"logs": [{"msg": "q%d" % i} for i in range(150)]})
st2, hdrs2, doc2 = ksrv.request("POST", "/v1/ingest", key="slow-key", body={"logs": [{"msg": "more"}]})
check("429 with Retry-After once the quota is spent", st == 202 and st2 == 429 and
      err_code(doc2) == "quota_exceeded" and int(hdrs2.get("retry-after", "0")) >= 1,
      (st, st2, hdrs2, doc2))
st3, _, _ = ksrv.request("POST", "/v1/ingest", key="acme-key", body={"logs": [{"msg": "fine"}]})
check("another tenant is not throttled", st3 == 202)
rc = ksrv.stop()
check("keyed server exits 0", rc == 0, ksrv.logtext()[-300:])
rc, ea = export(ksrv.data, "acme")
rc2, eb = export(ksrv.data, "beta")
check("tenant data stored apart", {e["msg"] for e in ea} == {"acme secret", "fine"} and
      {e["msg"] for e in eb} == {"beta secret"}, (len(ea), len(eb)))

# refusals at start
p = subprocess.run([BIN, "serve", "--data", os.path.join(work, "x"), "--listen", "0.0.0.0:0"],
                   capture_output=True, timeout=30)
check("no keys + non-loopback address: refused", p.returncode == 1 and b"loopback" in p.stderr,
      p.stderr)
bad = os.path.join(work, "bad.conf")
with open(bad, "w") as f:
    f.write("[limits]\nbody_bytes = 1MiB\nbody_bytez = 2\n")
p = subprocess.run([BIN, "serve", "--data", os.path.join(work, "x"), "--config", bad],
                   capture_output=True, timeout=30)
check("config typo: exit 2 naming file and line", p.returncode == 2 and b"bad.conf:3" in p.stderr and
      b"body_bytez" in p.stderr, p.stderr)

# ---------------------------------------------------------------- durability across SIGKILL
dsrv = Server("kill", args=["--workers", "4"])
acked = set()
stop = threading.Event()
CLIENTS, BATCH = (3, 100) if SLOW else (6, 200)
sent_batches = [0]


def ingest_client(cid):
    seq = 0
    conn = None
    end = time.monotonic() + 30
    while not stop.is_set() and time.monotonic() < end and seq < 2000:
        ids = ["c%d-%d" % (cid, seq + i) for i in range(BATCH)]
        seq += BATCH
        body = json.dumps({"source": {"service": "dur"},
                           "logs": [{"msg": "event " + i, "meta": {"id": i}} for i in ids]})
        try:
            if conn is None:
                conn = http.client.HTTPConnection(dsrv.host, dsrv.port, timeout=30)
            conn.request("POST", "/v1/ingest", body=body)
            r = conn.getresponse()
            d = json.loads(r.read())
            if r.status == 202 and d["accepted"] == BATCH:
                with lock:
                    acked.update(ids)
                    sent_batches[0] += 1
        except (OSError, http.client.HTTPException, ValueError):
            break


ts = [threading.Thread(target=ingest_client, args=(c,)) for c in range(CLIENTS)]
for t in ts:
    t.start()
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    with lock:
        if sent_batches[0] >= (10 if SLOW else 30):
            break
    time.sleep(0.02)
dsrv.proc.send_signal(signal.SIGKILL)
dsrv.proc.wait()
stop.set()
for t in ts:
    t.join(60)
rc, evs = export(dsrv.data)
present = {e["meta"]["id"] for e in evs if "id" in e.get("meta", {})}
missing = acked - present
check("SIGKILL under concurrent ingest: every acknowledged event survives",
      rc == 0 and len(acked) >= (10 if SLOW else 30) * BATCH and not missing,
      (rc, len(acked), len(present), sorted(missing)[:5]))
# and the directory opens again as a server
dsrv2 = Server("kill")
st, svcs = services(dsrv2)
check("restart after SIGKILL: server ready and counts at least the acked events",
      st == 200 and svcs.get("dur", {}).get("rows", 0) >= len(acked), svcs)
check("restarted server exits 0", dsrv2.stop() == 0, dsrv2.logtext()[-300:])

# ---------------------------------------------------------------- --demo
demo = Server("demo", args=["--demo", "--demo-rate", "1000"])
n_services = 0
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    st, svcs = demo.request("GET", "/v1/services")[0], services(demo)[1]
    n_services = len(svcs) if isinstance(svcs, dict) else 0
    if n_services >= 3 and sum(s["rows"] for s in svcs.values()) >= 300:
        break
    time.sleep(0.1)
check("--demo: generated events of several services arrive", n_services >= 3, svcs)
rc = demo.stop(signal.SIGINT)
check("--demo: Ctrl-C exits 0 and prints how to use it", rc == 0 and "/v1/services" in demo.logtext() and
      "REPL" in demo.logtext(), demo.logtext()[-400:])

print("elapsed %.1f s" % (time.monotonic() - T0))
print("%d passed, %d failed" % (passed, failed))
if failed == 0:
    shutil.rmtree(work, ignore_errors=True)
sys.exit(1 if failed else 0)

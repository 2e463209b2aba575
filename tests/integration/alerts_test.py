"""Alert rules through `quarry serve` as users see them: a real receiver (http.server on
127.0.0.1, free port) gets webhook, Slack, PagerDuty- and Alertmanager-shaped payloads; firing
only after FOR; resolved; cooldown; mute; one instance per group; a receiver that is down and
then recovers (the retries deliver); a restart in the middle of a window (no duplicate, no lost
notification); bad definitions rejected with positions; the REST routes, /v1/alerts/state and
the alert metrics. Standard library only; EVERY 1s and small windows keep it short."""
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import BIN, SLOW, TMP, check  # noqa: E402,F401

work = os.path.join(TMP, "alerts.%d" % os.getpid())


class Receiver:
    """Records every POST (path, JSON body, monotonic arrival time); answers 200."""

    def __init__(self, port=0):
        self.got = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                try:
                    doc = json.loads(raw)
                except ValueError:
                    doc = raw.decode(errors="replace")
                with outer.lock:
                    outer.got.append((self.path, doc, time.monotonic()))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def on(self, path):
        with self.lock:
            return [(d, t) for (p, d, t) in self.got if p == path]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Server(harness.Server):
    def __init__(self, name):
        super().__init__(os.path.join(work, name), os.path.join(work, name + ".log"))

    def request(self, method, path, body=None, timeout=30):
        st, _, doc = super().request(method, path, body, timeout=timeout)
        return st, doc

    def ingest(self, service, level, n):
        logs = [{"level": level, "msg": "payment %d declined" % i, "meta": {"latency_ms": 10 * i}}
                for i in range(n)]
        st, doc = self.request("POST", "/v1/ingest", {"source": {"service": service}, "logs": logs})
        return st

    def query(self, sql):
        st, doc = self.request("POST", "/v1/query", {"query": sql})
        return st, doc



def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout * (3 if SLOW else 1)
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return pred()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
rcv = Receiver()
srv = Server("a")

# ---- definitions ----------------------------------------------------------------------------
create = ("CREATE ALERT errs AS SELECT service, count(*) FROM logs WHERE level = 'ERROR' "
          "GROUP BY service WINDOW 5s EVERY 1s WHEN count(*) >= 3 FOR 1s COOLDOWN 1m "
          "LABELS (severity = 'critical', team = 'pay') ANNOTATIONS (summary = 'too many errors') "
          "NOTIFY WEBHOOK '%s', SLACK '%s', PAGERDUTY 'rk-123' URL '%s', ALERTMANAGER '%s'"
          % (rcv.url("/hook"), rcv.url("/slack"), rcv.url("/pd"), rcv.url("/am")))
st, doc = srv.request("POST", "/v1/alerts", {"sql": create})
check("POST /v1/alerts creates: 201", st == 201, (st, doc))
st, doc = srv.request("POST", "/v1/alerts", create)
check("same name again: 409", st == 409 and "already exists" in json.dumps(doc), (st, doc))
bad = ("CREATE ALERT bad AS SELECT count(*) FROM logs WINDOW 1s EVERY 5s WHEN count(*) > 1 "
       "NOTIFY WEBHOOK '%s'" % rcv.url("/x"))
st, doc = srv.request("POST", "/v1/alerts", bad)
check("WINDOW < EVERY: 400 with line/column", st == 400 and doc["error"].get("column") == 54, (st, doc))
bad2 = ("CREATE ALERT bad AS SELECT count(*) FROM logs WINDOW 1m EVERY 5s WHEN count(*) > 1 "
        "NOTIFY SLACK 'hooks.slack.com'")
st, doc = srv.request("POST", "/v1/alerts", bad2)
check("bad URL: 400", st == 400 and "bad URL" in json.dumps(doc), (st, doc))
st, doc = srv.request("GET", "/v1/alerts/bad")
check("rejected definitions leave nothing: 404", st == 404, (st, doc))
st, doc = srv.request("GET", "/v1/alerts/errs")
check("GET /v1/alerts/{name} describes", st == 200 and "WINDOW 5s" in json.dumps(doc), (st, doc))
st, doc = srv.request("PATCH", "/v1/alerts/errs")
check("PATCH: 405", st == 405, (st, doc))

# ---- firing after FOR, per group, four payload shapes -----------------------------------------
t0 = time.monotonic()
check("ingest 202", srv.ingest("pay", "ERROR", 3) == 202)
srv.ingest("api", "ERROR", 1)
srv.ingest("pay", "INFO", 5)
wait_for(lambda: rcv.on("/hook"), 10)
# while it fires (the window is 5 s): the Prometheus view
st, text = srv.request("GET", "/v1/alerts/state")
check("/v1/alerts/state: Prometheus ALERTS", st == 200 and
      'ALERTS{alertname="errs",alertstate="firing",tenant="default",service="pay",'
      'severity="critical",team="pay"} 1' in text, text)
got = wait_for(lambda: len(rcv.on("/hook")) >= 1 and len(rcv.on("/am/api/v2/alerts")) >= 1
               and len(rcv.on("/pd")) >= 1 and len(rcv.on("/slack")) >= 1, 10)
check("firing reaches all four channels", got, rcv.got)
hook = rcv.on("/hook")
if hook:
    doc, t = hook[0]
    check("fired only after FOR 1s", t - t0 >= 1.0, t - t0)
    check("webhook payload", doc.get("rule") == "errs" and doc.get("state") == "firing" and
          doc.get("group") == {"service": "pay"} and doc.get("value") == 3 and
          doc.get("condition") == "count(*) >= 3" and doc.get("window") == "5s" and
          len(doc.get("samples", [])) >= 1 and "declined" in doc["samples"][0]["msg"] and
          doc.get("query_url", "").startswith("http://%s/v1/query?q=SELECT" % srv.addr), doc)
slack = rcv.on("/slack")
if slack:
    d = slack[0][0]
    check("slack payload", isinstance(d.get("text"), str) and "errs" in d["text"] and
          isinstance(d.get("blocks"), list) and d["blocks"][0]["type"] == "section", d)
pd = rcv.on("/pd")
if pd:
    d = pd[0][0]
    check("pagerduty payload", d.get("routing_key") == "rk-123" and
          d.get("event_action") == "trigger" and d.get("dedup_key") == "errs/service=pay" and
          d["payload"]["severity"] == "critical" and d["payload"]["summary"], d)
am = rcv.on("/am/api/v2/alerts")
if am:
    d = am[0][0]
    check("alertmanager payload", isinstance(d, list) and
          d[0]["labels"] == {"alertname": "errs", "service": "pay", "severity": "critical",
                             "team": "pay"} and "startsAt" in d[0] and "endsAt" not in d[0]
          and d[0]["generatorURL"].startswith("http://"), d)
check("only the pay group fired", all(x[0]["group"] == {"service": "pay"}
                                      for x in rcv.on("/hook")), rcv.on("/hook"))

# ---- resolved ---------------------------------------------------------------------------------
got = wait_for(lambda: len(rcv.on("/hook")) >= 2 and len(rcv.on("/pd")) >= 2
               and len(rcv.on("/am/api/v2/alerts")) >= 2, 10)
check("resolved after the window", got, rcv.on("/hook"))
if got:
    check("webhook resolved", rcv.on("/hook")[1][0]["state"] == "resolved")
    check("pagerduty resolve", rcv.on("/pd")[1][0]["event_action"] == "resolve")
    check("alertmanager endsAt", "endsAt" in rcv.on("/am/api/v2/alerts")[1][0][0])

# ---- cooldown: firing again within COOLDOWN 1m is not notified --------------------------------
srv.ingest("pay", "ERROR", 3)
got = wait_for(lambda: srv.query("SELECT * FROM alert_events WHERE error = 'cooldown'")[1]
               .get("rows"), 10)
check("cooldown recorded in alert_events", got)
check("cooldown: no new notification", len(rcv.on("/hook")) == 2, len(rcv.on("/hook")))

# ---- mute --------------------------------------------------------------------------------------
st, doc = srv.request("POST", "/v1/alerts/errs/mute", {"for": "1h"})
check("mute: 200", st == 200, (st, doc))
srv.ingest("api", "ERROR", 3)
got = wait_for(lambda: srv.query("SELECT * FROM alert_events WHERE error = 'muted'")[1]
               .get("rows"), 10)
check("muted firing recorded", got)
check("mute: no notification", len(rcv.on("/hook")) == 2, len(rcv.on("/hook")))
st, doc = srv.request("GET", "/v1/alerts")
rows = doc.get("rows", []) if isinstance(doc, dict) else []
cols = [c["name"] for c in doc.get("columns", [])] if isinstance(doc, dict) else []
check("GET /v1/alerts lists instances with muted_until",
      any(r[cols.index("group")] == "service=api" and r[cols.index("state")] == "firing" and
          r[cols.index("muted_until")] for r in rows), doc)

# ---- a receiver that is down, then recovers ---------------------------------------------------
down_port = free_port()
st, doc = srv.request("POST", "/v1/alerts",
                      "CREATE ALERT flaky AS SELECT count(*) FROM logs WHERE service = 'flaky' "
                      "WINDOW 30s EVERY 1s WHEN count(*) >= 1 NOTIFY WEBHOOK "
                      "'http://127.0.0.1:%d/late'" % down_port)
check("flaky rule created", st == 201, (st, doc))
srv.ingest("flaky", "INFO", 1)
time.sleep(1.5)  # the first attempt fails: nothing listens
late = Receiver(down_port)
got = wait_for(lambda: late.on("/late"), 12)
check("down receiver gets the notification once it is back", len(got or []) == 1, late.got)
st, text = srv.request("GET", "/metrics")
check("metrics: retries counted", st == 200 and
      "quarry_alert_notification_retries_total" in text and
      "quarry_alert_notifications_sent_total" in text, text[-400:] if isinstance(text, str) else text)

# ---- restart in the middle of a window ----------------------------------------------------------
st, doc = srv.request("POST", "/v1/alerts",
                      "CREATE ALERT rs AS SELECT count(*) FROM logs WHERE service = 'rs' "
                      "WINDOW 30s EVERY 1s WHEN count(*) >= 2 NOTIFY WEBHOOK '%s'"
                      % rcv.url("/rs"))
check("rs rule created", st == 201, (st, doc))
srv.ingest("rs", "INFO", 1)
time.sleep(1.2)
check("one event: not firing", len(rcv.on("/rs")) == 0)
check("SIGTERM: exit 0", srv.stop() == 0)
srv = Server("a")
srv.ingest("rs", "INFO", 1)  # the window holds the event from before the restart too
got = wait_for(lambda: rcv.on("/rs"), 10)
check("fires after restart: window rebuilt from stored events", len(got or []) == 1, rcv.got)
check("SIGTERM while firing: exit 0", srv.stop() == 0)
srv = Server("a")
time.sleep(2.5)
check("no duplicate after a restart while firing", len(rcv.on("/rs")) == 1, rcv.on("/rs"))
st, doc = srv.query("SELECT alert, to_state FROM alert_events WHERE alert = 'rs'")
check("history survives restarts", st == 200 and doc.get("rows") == [["rs", "firing"]], doc)
st, doc = srv.request("DELETE", "/v1/alerts/rs")
check("DELETE: 200", st == 200, (st, doc))
st, doc = srv.request("DELETE", "/v1/alerts/rs")
check("DELETE again: 404", st == 404, (st, doc))

check("SIGTERM: exit 0", srv.stop() == 0)
late.stop()
rcv.stop()
if harness.failed == 0:
    shutil.rmtree(work, ignore_errors=True)
sys.exit(harness.summary())

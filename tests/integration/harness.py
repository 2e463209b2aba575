"""Shared pieces of the Python integration tests (standard library only): the TAP-style check
counter and a `quarry serve` on 127.0.0.1 port 0 found through DATA/server.addr, with a JSON
request helper. Tests import it from their own directory."""
import http.client
import json
import os
import signal
import subprocess
import sys
import time

BIN = os.environ.get("QR_BIN", "build/quarry")
TMP = os.environ.get("QR_TMP", "/tmp")
SLOW = os.environ.get("QR_SANITIZED") == "1"

passed = failed = 0


def check(name, cond, detail=""):
    """Prints ok / not ok (with the detail, cut) and counts it."""
    global passed, failed
    if cond:
        passed += 1
        print("ok - %s" % name)
    else:
        failed += 1
        print("not ok - %s %s" % (name, str(detail)[:800]))
    sys.stdout.flush()


def summary():
    """Prints the counts; returns the exit status."""
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


class Server:
    """`quarry serve --data DATA --listen 127.0.0.1:0 [ARGS]`, its output appended to LOG."""

    def __init__(self, data, log_path=None, args=()):
        self.data = data
        os.makedirs(data, exist_ok=True)
        addr_file = os.path.join(data, "server.addr")
        if os.path.exists(addr_file):
            os.unlink(addr_file)
        self.log = open(log_path or data + ".log", "ab")
        argv = [BIN, "serve", "--data", data, "--listen", "127.0.0.1:0"] + list(args)
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + (60 if SLOW else 20)
        self.addr = None
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with open(addr_file) as f:
                    self.addr = f.read().strip() or None
            except FileNotFoundError:
                pass
            if self.addr:
                break
            time.sleep(0.02)
        if not self.addr:
            raise RuntimeError("server did not start")
        self.host, port = self.addr.rsplit(":", 1)
        self.port = int(port)

    def request(self, method, path, body=None, headers=None, timeout=30):
        """(status, headers with lower-case names, JSON document or text or None)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=dict(headers or {}))
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
        rc = self.proc.wait(timeout=timeout)
        self.log.close()
        return rc

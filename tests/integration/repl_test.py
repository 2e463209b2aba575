"""The REPL driven through a real terminal (tmux): tab completion of keywords, fields and
services, a multi-line statement, an error caret under the position, \\x, \\format, \\tail
stopped by Ctrl-C (the shell survives), \\import with its summary, and history on disk.
Then against a running `quarry serve`: `quarry` alone in a directory whose ./quarry-data the
server holds connects to it (a query, completion from /v1/services, an error caret from the
server's 400, \\tail receiving an event ingested after subscribing, Ctrl-C), and
`quarry repl --connect URL` with statements on stdin."""
import atexit
import os
import shutil
import subprocess
import sys
import time
import urllib.request

BIN = os.environ["QR_BIN"]
TMP = os.environ.get("QR_TMP", "/tmp")
SLOW = 3 if os.environ.get("QR_SANITIZED") else 1
work = os.path.join(TMP, "repl.%d" % os.getpid())
session = "qrrepl%d" % os.getpid()
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok - %s" % name)
    else:
        failed += 1
        print("not ok - %s\n%s" % (name, detail))


def tmux(*args):
    # a private tmux server: other tmux users on the machine neither see nor disturb it
    return subprocess.run(["tmux", "-L", session] + list(args), capture_output=True, text=True)


def screen():
    return tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", session).stdout


def send(keys, enter=True):
    if keys.endswith(";"):
        keys = keys[:-1] + "\\;"  # tmux reads a trailing ';' as its own command separator
    tmux("send-keys", "-t", session, "-l", keys)
    if enter:
        tmux("send-keys", "-t", session, "Enter")


def wait_prompt(timeout=10.0):
    """Waits until the shell shows an empty prompt again (typing earlier could be flushed)."""
    deadline = time.time() + timeout * SLOW
    while time.time() < deadline:
        lines = [l for l in screen().splitlines() if l.strip()]
        if lines and lines[-1].strip() == "quarry>":
            return
        time.sleep(0.1)


def wait_for(text, timeout=10.0):
    deadline = time.time() + timeout * SLOW
    while time.time() < deadline:
        out = screen()
        if text in out:
            return out
        time.sleep(0.1)
    return screen()


if shutil.which("tmux") is None:
    print("tmux is missing (scripts/deps.sh installs it)")
    print("0 passed, 1 failed")
    sys.exit(1)

shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
data = os.path.join(work, "data")
gen = subprocess.run([BIN, "gen", "--events", "5000", "--seed", "21"], capture_output=True).stdout
subprocess.run([BIN, "ingest", "--data", data, "--quiet"], input=gen, check=True,
               capture_output=True)
more = os.path.join(work, "more.ndjson")
open(more, "wb").write(subprocess.run([BIN, "gen", "--events", "3000", "--seed", "22"],
                                      capture_output=True).stdout)
hist = os.path.join(work, "history")
env = "QUARRY_HISTORY=%s COLUMNS=100" % hist
tmux("kill-session", "-t", session)
tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "50",
     "env %s %s repl --data %s" % (env, BIN, data))
try:
    out = wait_for("quarry>")
    check("prompt appears", "quarry>" in out, out)

    send("SEL", enter=False)
    tmux("send-keys", "-t", session, "Tab")
    out = wait_for("SELECT")
    check("tab completes a keyword", "quarry> SELECT" in out, out)
    send(" service, count(*) FROM logs WHERE service = 'paym", enter=False)
    tmux("send-keys", "-t", session, "Tab")
    out = wait_for("'payment")
    check("tab completes a service", "payment" in out.splitlines()[-1] or "'payment" in out, out)
    send("'")
    out = wait_for("...>")
    check("a statement without ';' continues on the next line", "...>" in out, out)
    send("GROUP BY service;")
    out = wait_for("(1 row)")
    check("the multi-line statement runs", "(1 row)" in out and "payment" in out, out)

    send("SELECT latnecy_ms FROM logs;")
    out = wait_for("^")
    lines = out.splitlines()
    idx = next((i for i, l in enumerate(lines) if "unknown field" in l), -1)
    ok = idx >= 0 and idx + 2 < len(lines) and lines[idx + 2].index("^") == lines[idx + 1].index("latnecy_ms")
    check("error names the position with a caret under it", ok and "column 8" in lines[idx], out)

    send("SELECT lat", enter=False)
    tmux("send-keys", "-t", session, "Tab")
    out = wait_for("latency_ms")
    check("tab completes a field", "latency_ms" in out, out)
    tmux("send-keys", "-t", session, "C-u")
    tmux("send-keys", "-t", session, "C-c")
    time.sleep(0.3)

    send("\\x")
    wait_for("expanded display is on")
    send("SELECT service, level FROM logs LIMIT 2;")
    out = wait_for("RECORD 2")
    check("\\x shows one block per record", "-[ RECORD 1 ]" in out and "-[ RECORD 2 ]" in out, out)
    send("\\x")
    send("\\format csv")
    wait_for("format is csv")
    send("SELECT service FROM logs WHERE service = 'auth' LIMIT 1;")
    out = wait_for("service\nauth")
    check("\\format csv", "service\nauth" in out, out)
    send("\\format table")

    send("\\import %s" % more)
    out = wait_for("imported")
    check("\\import loads a file and reports", "imported 3,000 events, rejected 0" in out, out)

    send("\\tail level >= WARN")
    out = wait_for("Ctrl-C stops")
    time.sleep(1.0)
    tmux("send-keys", "-t", session, "C-c")
    wait_prompt()
    send("SELECT count(*) FROM logs;")
    out = wait_for("8000")
    check("Ctrl-C stops \\tail and the shell goes on", "8000" in out, out)

    send("\\q")
    time.sleep(0.5 * SLOW)
    alive = tmux("has-session", "-t", session).returncode == 0
    check("\\q quits", not alive or "quarry>" not in screen().splitlines()[-1], screen())
    hist_text = open(hist).read() if os.path.exists(hist) else ""
    hist_text = hist_text.encode().decode("unicode_escape")  # libedit writes \040 for spaces
    check("history is kept on disk", "GROUP BY service;" in hist_text, hist_text)
finally:
    tmux("kill-session", "-t", session)

# --- against a server --------------------------------------------------------------------------
srv_cwd = os.path.join(work, "srv")
srv_data = os.path.join(srv_cwd, "quarry-data")
os.makedirs(srv_cwd)
subprocess.run([BIN, "ingest", "--data", srv_data, "--quiet"], input=gen, check=True,
               capture_output=True)
# more rows for a query slow enough to interrupt (a backtracking regex: ~0.1 ms per row)
gen_more = subprocess.run([BIN, "gen", "--events", "40000", "--seed", "22"],
                          capture_output=True).stdout
subprocess.run([BIN, "ingest", "--data", srv_data, "--quiet"], input=gen_more, check=True,
               capture_output=True)
srv_log = open(os.path.join(work, "serve.log"), "wb")
server = subprocess.Popen([BIN, "serve", "--data", srv_data, "--listen", "127.0.0.1:0"],
                          stdout=srv_log, stderr=subprocess.STDOUT)
atexit.register(lambda: server.poll() is None and server.kill())
addr_file = os.path.join(srv_data, "server.addr")
deadline = time.time() + 10 * SLOW
while time.time() < deadline and not os.path.exists(addr_file):
    time.sleep(0.05)
addr = open(addr_file).read().strip() if os.path.exists(addr_file) else ""
url = "http://" + addr
check("the server writes its address", addr.startswith("127.0.0.1:"), addr)


def metric(name):
    with urllib.request.urlopen(url + "/metrics", timeout=10 * SLOW) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


def post_ndjson(text):
    req = urllib.request.Request(url + "/v1/ingest/ndjson", data=text.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=10 * SLOW) as resp:
        return resp.status


tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "50", "-c", srv_cwd,
     "env %s %s" % (env, BIN))
try:
    out = wait_for("quarry>")
    check("`quarry` alone connects to the server holding ./quarry-data",
          "connected to %s" % url in out, out)
    send("SELECT count(*) FROM logs WHERE service = 'pay", enter=False)
    tmux("send-keys", "-t", session, "Tab")
    out = wait_for("'payment")
    check("remote: tab completes a service from /v1/services", "'payment" in out, out)
    send("';")
    out = wait_for("(1 row)")
    lines = out.splitlines()
    idx = next((i for i, l in enumerate(lines) if l.startswith("count(*)")), -1)
    check("remote: a query renders as a table", idx >= 0 and idx + 2 < len(lines)
          and lines[idx + 1].startswith("----") and lines[idx + 2].strip().isdigit(), out)

    send("SELECT latnecy_ms FROM logs;")
    out = wait_for("^")
    lines = out.splitlines()
    idx = next((i for i, l in enumerate(lines) if "unknown field" in l), -1)
    ok = (idx >= 0 and idx + 2 < len(lines) and "^" in lines[idx + 2]
          and lines[idx + 2].index("^") == lines[idx + 1].index("latnecy_ms"))
    check("remote: the server's 400 prints with a caret", ok and "column 8" in lines[idx], out)

    send('\\tail {service="tailprobe"}')
    out = wait_for("Ctrl-C stops")
    check("remote: \\tail subscribes", "following" in out, out)
    time.sleep(0.3 * SLOW)
    status = post_ndjson('{"service":"tailprobe","level":"WARN","msg":"probe arrived"}\n')
    out = wait_for("probe arrived")
    check("remote: \\tail prints an event ingested after subscribing",
          status == 202 and "tailprobe WARN" in out and "probe arrived" in out, out)
    tmux("send-keys", "-t", session, "C-c")
    wait_prompt()
    rows_before = screen().count("(1 row)")
    send("SELECT count(*) FROM logs WHERE service = 'tailprobe';")
    deadline = time.time() + 10 * SLOW
    while time.time() < deadline and screen().count("(1 row)") <= rows_before:
        time.sleep(0.1)
    out = screen()
    lines = out.splitlines()
    idx = max((i for i, l in enumerate(lines) if l.startswith("count(*)")), default=-1)
    check("remote: Ctrl-C stops \\tail and the shell goes on",
          idx >= 0 and idx + 2 < len(lines) and lines[idx + 2].strip() == "1", out)

    # Ctrl-C during a (non-streamed) remote query cancels it on the server, not only the wait
    cancelled_before = metric("quarry_queries_cancelled_total")
    send("SELECT count(*) FROM logs WHERE msg ~ '(.*)(.*)(.*)(.*)zq';")
    deadline = time.time() + 10 * SLOW
    while time.time() < deadline and metric("quarry_queries_running") != 1:
        time.sleep(0.05)
    running = metric("quarry_queries_running")
    time.sleep(0.3)
    tmux("send-keys", "-t", session, "C-c")
    out = wait_for("canceled")
    check("remote: Ctrl-C during a query prints that it was canceled",
          running == 1 and "canceled" in out, "running=%s\n%s" % (running, out))
    deadline = time.time() + 15 * SLOW
    while time.time() < deadline and metric("quarry_queries_running") != 0:
        time.sleep(0.05)
    cancelled = metric("quarry_queries_cancelled_total")
    check("remote: the server cancelled the query (quarry_queries_cancelled_total)",
          cancelled_before == 0 and cancelled == 1 and metric("quarry_queries_running") == 0,
          "before=%s after=%s" % (cancelled_before, cancelled))
    wait_prompt()
    rows_before = screen().count("(1 row)")
    send("SELECT count(*) FROM logs WHERE service = 'tailprobe';")
    deadline = time.time() + 10 * SLOW
    while time.time() < deadline and screen().count("(1 row)") <= rows_before:
        time.sleep(0.1)
    check("remote: the shell goes on after a canceled query",
          screen().count("(1 row)") > rows_before, screen())
    send("\\q")
finally:
    tmux("kill-server")

piped = subprocess.run([BIN, "repl", "--connect", url],
                       input=b"SELECT service FROM logs WHERE service = 'auth' LIMIT 1;\n"
                             b"\\format csv\nSELECT level FROM logs WHERE level = ERROR LIMIT 1;\n",
                       capture_output=True, timeout=30 * SLOW)
text = piped.stdout.decode().replace("\r\n", "\n")  # CSV lines end in CRLF
check("`quarry repl --connect URL` runs statements from stdin",
      piped.returncode == 0 and "auth" in text and "(1 row)" in text and "level\nERROR" in text,
      text + piped.stderr.decode())
server.terminate()
check("the server stops cleanly", server.wait(timeout=30 * SLOW) == 0)
srv_log.close()
check("local again once the server is gone",
      b"(1 row)" in subprocess.run([BIN], cwd=srv_cwd, input=b"SELECT count(*) FROM logs;\n",
                                   capture_output=True, timeout=30 * SLOW).stdout)

if failed == 0:
    shutil.rmtree(work, ignore_errors=True)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)

"""The REPL driven through a real terminal (tmux): tab completion of keywords, fields and
services, a multi-line statement, an error caret under the position, \\x, \\format, \\tail
stopped by Ctrl-C (the shell survives), \\import with its summary, and history on disk."""
import os
import shutil
import subprocess
import sys
import time

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
    return subprocess.run(["tmux"] + list(args), capture_output=True, text=True)


def screen():
    return tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", session).stdout


def send(keys, enter=True):
    if keys.endswith(";"):
        keys = keys[:-1] + "\\;"  # tmux reads a trailing ';' as its own command separator
    tmux("send-keys", "-t", session, "-l", keys)
    if enter:
        tmux("send-keys", "-t", session, "Enter")


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

if failed == 0:
    shutil.rmtree(work, ignore_errors=True)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)

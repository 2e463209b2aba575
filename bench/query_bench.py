#!/usr/bin/env python3
"""Query benchmark (issue: query language and execution engine).

Six questions asked of the same generated events, side by side:
  - Quarry:  `quarry query --data DIR --format json "<sql>"` (engine took_ms and process wall);
  - SQLite:  an FTS5 table loaded with the same events (python3's sqlite3 module, in process);
  - ripgrep: `rg` over the NDJSON file (grouping done by counting rg's -o output in Python).
Corpora come from `quarry gen --events N --seed 42` and are cached in bench/out/ (shared with
ingest_bench.py: its data-N directory is reused when it holds N events). Warm cache: one
unmeasured run, then the best of --runs runs (default 5). The answers of the three systems are
compared and a mismatch is printed loudly (exit status 1).

Usage: bench/query_bench.py BUILD_DIR [--runs R] [--out DIR] [--quarry-only] [EVENTS ...]
  (default 10,000,000 events)
  --out DIR       corpora, data directories and SQLite files here (default bench/out)
  --quarry-only   skip SQLite and ripgrep (their figures do not change with Quarry's)
When BUILD_DIR/exec_bench exists (`cmake --build BUILD_DIR --target exec_bench`), each
question is also timed in one process over many runs, as a server runs it (segments and their
indexes stay open): column "q server ms" (best of 20; medians are printed below the table),
and again with a 16 MiB message cache shared by the runs (exec_bench --msg-cache 16, as the
server keeps one: a repeated row query finds its rows' messages there), printed below.
"""
import calendar
import collections
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time

args = sys.argv[1:]
build = args.pop(0) if args and not args[0].startswith("-") else "build"
runs = 5
if "--runs" in args:
    at = args.index("--runs")
    runs = int(args[at + 1])
    del args[at:at + 2]
quarry_only = "--quarry-only" in args
if quarry_only:
    args.remove("--quarry-only")
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
if "--out" in args:
    at = args.index("--out")
    out = os.path.abspath(args[at + 1])
    del args[at:at + 2]
counts = [int(x) for x in args] or [10_000_000]
quarry = os.path.abspath(os.path.join(build, "quarry"))
exec_bench = os.path.abspath(os.path.join(build, "exec_bench"))
# exec_bench is not in the default build target: a stale one would measure old code (it once
# let a background merge run), so bring it up to date with the quarry binary first
if os.path.exists(exec_bench) and shutil.which("cmake"):
    subprocess.run(["cmake", "--build", build, "--target", "exec_bench"], check=True,
                   stdout=subprocess.DEVNULL)
os.makedirs(out, exist_ok=True)

PHRASE = "connection refused"
WORD = "request"
TOP_SERVICE, TOP_LEVEL, TOP_WORD = "payment", "ERROR", "order"
# Goals at 10 M events (issue: query language and execution engine; DESIGN.md §9), in ms.
GOALS = {"needle": 0.3, "phrase": 20, "word per service": 40, "service x level": 5,
         "5-min histogram": 5, "newest 100": 5}
NONALNUM = r'(?:[^"\\A-Za-z0-9]|\\.)'  # a token boundary inside a JSON string (escapes count)
MSG_BODY = r'"msg":"(?:(?:[^"\\]|\\.)*' + NONALNUM + r')?'


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def corpus_path(n):
    corpus = os.path.join(out, "corpus-%d.ndjson" % n)
    if not os.path.exists(corpus):
        print("generating %s" % corpus, flush=True)
        with open(corpus + ".tmp", "wb") as f:
            subprocess.run([quarry, "gen", "--events", str(n), "--seed", "42"], stdout=f,
                           check=True)
        os.rename(corpus + ".tmp", corpus)
    return corpus


def quarry_json(data, sql):
    p = subprocess.run([quarry, "query", "--data", data, "--format", "json", sql],
                       capture_output=True)
    if p.returncode != 0:
        raise RuntimeError("quarry query failed (%d): %s\n  %s" % (p.returncode, sql,
                                                                  p.stderr.decode().strip()))
    return json.loads(p.stdout)


def quarry_data(n, corpus):
    """data-N if it holds N events (ingest_bench.py builds it), else a fresh ingest."""
    data = os.path.join(out, "data-%d" % n)
    if os.path.isdir(data):
        try:
            if quarry_json(data, "SELECT count(*) FROM logs")["rows"][0][0] == n:
                return data
        except (RuntimeError, ValueError, KeyError, IndexError):
            pass
    tmp = data + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    print("ingesting %s into %s" % (corpus, data), flush=True)
    t0 = time.monotonic()
    subprocess.run([quarry, "ingest", "--data", tmp, "--no-compact", "--quiet", corpus], check=True)
    print("  %.1f s" % (time.monotonic() - t0), flush=True)
    shutil.rmtree(data, ignore_errors=True)
    os.rename(tmp, data)
    return data


_sec_cache = {}


def ts_ms(ts):
    """'2025-06-15T00:00:00.123Z' -> epoch ms (the generator's fixed format)."""
    sec = _sec_cache.get(ts[:19])
    if sec is None:
        sec = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S"))
        _sec_cache[ts[:19]] = sec
    frac = ts[20:-1] if len(ts) > 20 else ""
    return sec * 1000 + int((frac + "000")[:3] or 0)


def ms_iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def sqlite_db(n, corpus):
    """An FTS5 table: msg, service and level indexed (unicode61), ts as epoch ms, unindexed."""
    path = os.path.join(out, "fts5-%d.db" % n)
    if os.path.exists(path):
        return path
    print("loading %s into SQLite FTS5 %s" % (corpus, path), flush=True)
    t0 = time.monotonic()
    tmp = path + ".tmp"
    if os.path.exists(tmp):
        os.remove(tmp)
    db = sqlite3.connect(tmp)
    db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
                     "CREATE VIRTUAL TABLE ev USING fts5(msg, service, level, ts UNINDEXED);")

    def rows():
        with open(corpus, "rb") as f:
            for line in f:
                e = json.loads(line)
                yield e["msg"], e["service"], e["level"], ts_ms(e["ts"])

    with db:
        db.executemany("INSERT INTO ev(msg, service, level, ts) VALUES (?, ?, ?, ?)", rows())
    with db:
        db.execute("INSERT INTO ev(ev) VALUES ('optimize')")
    db.close()
    os.rename(tmp, path)
    print("  %.1f s, %.0f MB" % (time.monotonic() - t0, os.path.getsize(path) / 1e6), flush=True)
    return path


def pick_needle(corpus):
    """An order id's random part (10 base36 chars, one token) from the middle of the corpus,
    present exactly once in the file."""
    size = os.path.getsize(corpus)
    with open(corpus, "rb") as f:
        f.seek(size // 2)
        chunk = f.read(1 << 20).decode(errors="replace")
    for m in re.finditer(r'"msg":"[^"\n]*\bord_([0-9a-z]{10})\b', chunk):
        tok = m.group(1)
        p = subprocess.run(["rg", "-c", "-F", tok, corpus], capture_output=True, text=True)
        if p.stdout.strip() == "1":
            return tok
    raise RuntimeError("no unique order id found")


# ---- the questions: (name, quarry SQL, sqlite SQL, rg argv-builder, normalizers) ----


def bucket_key(ms):
    return time.strftime("%Y-%m-%dT%H:%M", time.gmtime(ms // 300000 * 300))


def msg_word(word):
    """rg regex: the token `word` (any case) inside the msg string, tokenizer boundaries."""
    return MSG_BODY + "(?i:%s)(?:[^A-Za-z0-9]|$)" % word


def counter(stdout):
    return collections.Counter(x.decode() for x in stdout.split(b"\n") if x)


def hist_from_rg(stdout):
    """'"ts":"2025-06-15T00:13' lines -> {'2025-06-15T00:10': count}."""
    hist = collections.Counter()
    for key, k in counter(stdout).items():
        minute = key[6:]
        hist[minute[:15] + ("0" if minute[15] < "5" else "5")] += k
    return dict(hist)


def questions(needle):
    """(name, quarry SQL, (sqlite SQL, args), (rg pipeline, rg stdout -> answer), quarry rows ->
    answer). rg captures (-r '$1') are ~20x slower than plain matches, so the pipelines print
    whole matches and Python picks the groups out."""
    top = r'^\{"ts":"[^"]*","service":"%s","level":"%s",.*' % (TOP_SERVICE, TOP_LEVEL)
    return [
        ("needle",
         "SELECT ts, service, msg FROM logs WHERE msg MATCH '%s'" % needle,
         ("SELECT ts FROM ev WHERE ev MATCH ?", ('msg:"%s"' % needle,)),
         ([["-c", "-F", needle]], lambda stdout: int(stdout.strip() or 0)),
         lambda rows: len(rows)),
        ("phrase",
         "SELECT count(*) FROM logs WHERE msg MATCH '\"%s\"'" % PHRASE,
         ("SELECT count(*) FROM ev WHERE ev MATCH ?", ('msg:"%s"' % PHRASE,)),
         ([["-c", "-i", "-F", PHRASE]], lambda stdout: int(stdout.strip() or 0)),
         lambda rows: rows[0][0]),
        ("word per service",
         "SELECT service, count(*) FROM logs WHERE msg MATCH '%s' GROUP BY service" % WORD,
         ("SELECT service, count(*) FROM ev WHERE ev MATCH ? GROUP BY service",
          ("msg:%s" % WORD,)),
         ([[msg_word(WORD)], ["-o", '"service":"[^"]*"']],
          lambda stdout: {k[11:-1]: v for k, v in counter(stdout).items()}),
         lambda rows: {r[0]: r[1] for r in rows}),
        ("service x level",
         "SELECT service, level, count(*) FROM logs GROUP BY service, level",
         ("SELECT service, level, count(*) FROM ev GROUP BY service, level", ()),
         ([["-o", '"service":"[^"]*","level":"[^"]*"']],
          lambda stdout: {tuple(k.split('"')[3:8:4]): v for k, v in counter(stdout).items()}),
         lambda rows: {(r[0], r[1]): r[2] for r in rows}),
        ("5-min histogram",
         "SELECT bucket(ts, 5m) AS b, count(*) FROM logs GROUP BY b ORDER BY b",
         ("SELECT ts / 300000, count(*) FROM ev GROUP BY 1 ORDER BY 1", ()),
         ([["-o", '"ts":"[0-9T:-]{16}']], hist_from_rg),
         lambda rows: {r[0][:16]: r[1] for r in rows}),
        ("newest 100",
         "SELECT ts, host, msg FROM logs WHERE service = '%s' AND level = %s AND msg MATCH "
         "'%s' ORDER BY ts DESC LIMIT 100" % (TOP_SERVICE, TOP_LEVEL, TOP_WORD),
         ("SELECT ts FROM ev WHERE ev MATCH ? AND service = ? AND level = ? "
          "ORDER BY ts DESC LIMIT 100",
          ("msg:%s AND service:%s AND level:%s" % (TOP_WORD, TOP_SERVICE, TOP_LEVEL),
           TOP_SERVICE, TOP_LEVEL)),
         ([[top + msg_word(TOP_WORD)]],
          lambda stdout: sorted((line.split(b'"', 4)[3].decode()
                                 for line in stdout.split(b"\n") if line), reverse=True)[:100]),
         lambda rows: [r[0] for r in rows]),
    ]


def sqlite_norm(name, rows):
    if name == "needle":
        return len(rows)
    if name == "phrase":
        return rows[0][0]
    if name == "word per service":
        return {r[0]: r[1] for r in rows}
    if name == "service x level":
        return {(r[0], r[1]): r[2] for r in rows}
    if name == "5-min histogram":
        return {bucket_key(r[0] * 300000): r[1] for r in rows}
    return [ms_iso(r[0]) for r in rows]


def summary(ans):
    if isinstance(ans, int):
        return str(ans)
    if isinstance(ans, dict):
        return "%d groups, %d events" % (len(ans), sum(ans.values()))
    return "%d rows, oldest %s" % (len(ans), ans[-1] if ans else "-")


def rg_pipeline(stages, corpus):
    """rg STAGE0 corpus | rg STAGE1 | ...; returns the last stage's stdout."""
    procs = []
    prev = None
    for idx, stage in enumerate(stages):
        argv = ["rg", "--no-filename", "--no-line-number"] + stage + ([corpus] if idx == 0 else [])
        procs.append(subprocess.Popen(argv, stdin=prev, stdout=subprocess.PIPE))
        if prev is not None:
            prev.close()
        prev = procs[-1].stdout
    stdout = procs[-1].stdout.read()
    for p in procs:
        if p.wait() not in (0, 1):
            raise RuntimeError("rg failed: %r" % stages)
    return stdout


def ms(v):
    return "%.3f" % v if v < 10 else "%.1f" % v if v < 1000 else "%.0f" % v


def best_of(fn):
    fn()  # warm-up
    return min(fn() for _ in range(runs))


def server_ms(data, sql, cache_mb=0):
    """exec_bench: best and median took_ms over 20 runs in one process (0, 0 without it)."""
    if not os.path.exists(exec_bench):
        return 0.0, 0.0
    p = subprocess.run([exec_bench, data, sql, "--runs", "20", "--msg-cache", str(cache_mb)],
                       capture_output=True, text=True, check=True)
    m = re.search(r"best ([0-9.]+) ms, median ([0-9.]+) ms", p.stdout)
    return float(m.group(1)), float(m.group(2))


def bench(n):
    corpus = corpus_path(n)
    data = quarry_data(n, corpus)
    sdb = None if quarry_only else sqlite3.connect(sqlite_db(n, corpus))
    needle = pick_needle(corpus)
    print("== %s events: corpus %s (%.0f MB), needle %r, best of %d, load average %s"
          % (f"{n:,}", corpus, os.path.getsize(corpus) / 1e6, needle, runs, loadavg()),
          flush=True)
    table = []
    cached = {}  # name -> (best, median) with the message cache
    mismatches = 0
    for name, qsql, (ssql, sargs), (rg_stages, rg_parse), qnorm in questions(needle):
        # Quarry: engine time and process wall time, each the best of the runs.
        q_took, q_wall, q_res = [], [], None
        for run_idx in range(runs + 1):
            t0 = time.monotonic()
            res = quarry_json(data, qsql)
            wall = (time.monotonic() - t0) * 1e3
            if run_idx:
                q_took.append(res["took_ms"])
                q_wall.append(wall)
            q_res = res
        if q_res["partial"]:
            print("!! quarry returned a partial result for %s" % name)
        q_ans = qnorm(q_res["rows"])
        srv_best, srv_median = server_ms(data, qsql)
        cached[name] = server_ms(data, qsql, 16)
        if quarry_only:
            table.append((name, min(q_took), min(q_wall), srv_best, srv_median, 0, 0,
                          GOALS[name], summary(q_ans), "-", q_res["scanned"]))
            print("  %-17s done: %s" % (name, summary(q_ans)), flush=True)
            continue

        # SQLite FTS5, in process.
        s_res = None

        def sqlite_run():
            nonlocal s_res
            t0 = time.monotonic()
            s_res = sdb.execute(ssql, sargs).fetchall()
            return (time.monotonic() - t0) * 1e3

        s_ms = best_of(sqlite_run)
        s_ans = sqlite_norm(name, s_res)

        # ripgrep over the NDJSON file (a pipeline of rg; Python counts the groups).
        r_ans = None

        def rg_run():
            nonlocal r_ans
            t0 = time.monotonic()
            stdout = rg_pipeline(rg_stages, corpus)
            r_ans = rg_parse(stdout)
            return (time.monotonic() - t0) * 1e3

        r_ms = best_of(rg_run)

        ok = q_ans == s_ans == r_ans
        if not ok:
            mismatches += 1
            print("!!!! MISMATCH on %s: quarry %s | sqlite %s | ripgrep %s"
                  % (name, summary(q_ans), summary(s_ans), summary(r_ans)))
            if isinstance(q_ans, dict):
                for key in sorted(set(q_ans) | set(s_ans) | set(r_ans), key=str):
                    a, b, c = q_ans.get(key), s_ans.get(key), r_ans.get(key)
                    if not a == b == c:
                        print("       %-30s quarry %s sqlite %s ripgrep %s" % (key, a, b, c))
        table.append((name, min(q_took), min(q_wall), srv_best, srv_median, s_ms, r_ms,
                      GOALS[name], summary(q_ans), "ok" if ok else "MISMATCH",
                      q_res["scanned"]))
        print("  %-17s done: %s" % (name, summary(q_ans)), flush=True)
    fmt = "%-17s %10s %10s %12s %10s %10s %8s  %-8s %10s  %s"
    print(fmt % ("question", "quarry ms", "q wall ms", "q server ms", "sqlite ms", "rg ms",
                 "goal", "same", "q scanned", "answer"))
    for name, took, wall, srv, _, s_ms, r_ms, goal, ans, ok, scanned in table:
        print(fmt % (name, ms(took), ms(wall), ms(srv) if srv else "-",
                     ms(s_ms) if s_ms else "-", ms(r_ms) if r_ms else "-", "≤ %g" % goal, ok,
                     f"{scanned:,}", ans))
    print("q server median ms: " + ", ".join("%s %s" % (row[0], ms(row[4])) for row in table))
    if any(best for best, _ in cached.values()):
        print("q server with msg cache, best / median ms: " +
              ", ".join("%s %s / %s" % (k, ms(b), ms(m)) for k, (b, m) in cached.items()))
    print("load average after: %s" % loadavg())
    if sdb:
        sdb.close()
    return mismatches


total_mismatches = sum(bench(n) for n in counts)
if total_mismatches:
    print("!!!! %d MISMATCHES between quarry, sqlite and ripgrep" % total_mismatches)
    sys.exit(1)

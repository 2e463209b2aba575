/* rollup_test — rollup tables against the raw aggregation (a model test), across restarts,
 * with late events and after backfill; the query rewrite proven by EXPLAIN; definition
 * errors; retention and file merging.
 *
 * The model: two data directories receive the same random events, except that `ref` only
 * gets the events the rollup must count (those whose window was still open when they came).
 * `SELECT ... FROM r` on the main directory must then print exactly what the raw aggregation
 * prints on `ref`. "Now" is a variable the test moves (rollup_opts.clock_ns). */
#include "common/qr_time.h"
#include "engine/engine.h"
#include "engine/rollup.h"
#include "qr_test.h"
#include "storage/db.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define T0 1749945600000000000LL /* 2025-06-15T00:00:00Z */
#define SEC QR_NS_PER_SEC

static int64_t g_now; /* set before threads: the tests run no background thread */
static int64_t test_clock(void *ctx)
{
    (void)ctx;
    return g_now;
}

typedef struct fixture {
    char dir[512], ref_dir[512];
    db_t *db, *ref;
    rollup_mgr *m;
    uint64_t rng;
    int64_t wm; /* the model's watermark: windows ending at or before it are closed */
} fixture;

/* The rollup's watermark after a tick (or create / restart) at g_now. */
static void model_tick(fixture *f, int64_t iv, int64_t late) { f->wm = (g_now - late) / iv * iv; }

static db_t *open_db(const char *dir)
{
    db_opts o;
    memset(&o, 0, sizeof o);
    o.block_rows = 64;
    o.wal.fsync_policy = WAL_FSYNC_NEVER;
    o.flush_age_ms = 3600 * 1000;
    db_t *db = NULL;
    qr_diag d;
    qr_diag_init(&d);
    if (db_open(dir, &o, &db, NULL, &d)) {
        fprintf(stderr, "db_open %s: %s\n", dir, d.msg);
        return NULL;
    }
    return db;
}

static int open_mgr(fixture *f)
{
    rollup_opts ro = {.clock_ns = test_clock, .no_thread = true};
    qr_diag d;
    qr_diag_init(&d);
    int rc = rollup_mgr_open(f->db, &ro, &f->m, &d);
    if (rc) fprintf(stderr, "rollup_mgr_open: %s\n", d.msg);
    return rc;
}

static bool fixture_open(fixture *f, const char *name)
{
    memset(f, 0, sizeof *f);
    char ref_name[128];
    snprintf(ref_name, sizeof ref_name, "%s_ref", name);
    if (!qr_test_tmpdir(name, f->dir, sizeof f->dir)) return false;
    if (!qr_test_tmpdir(ref_name, f->ref_dir, sizeof f->ref_dir)) return false;
    f->db = open_db(f->dir);
    f->ref = open_db(f->ref_dir);
    f->rng = 7;
    f->wm = INT64_MIN;
    g_now = T0;
    return f->db && f->ref && open_mgr(f) == 0;
}

static void fixture_close(fixture *f)
{
    rollup_mgr_close(f->m);
    db_close(f->db);
    db_close(f->ref);
    qr_test_rmdir(f->dir);
    qr_test_rmdir(f->ref_dir);
}

/* Closes and reopens the main directory and its rollups (a restart). */
static bool restart(fixture *f, bool flush)
{
    rollup_mgr_close(f->m);
    f->m = NULL;
    if (flush) {
        qr_diag d;
        qr_diag_init(&d);
        db_flush(f->db, &d);
    }
    db_close(f->db);
    f->db = open_db(f->dir);
    return f->db && open_mgr(f) == 0;
}

static const char *const services[] = {"api", "db", "web"};

/* n random events with ts in [lo, hi) into b. */
static void events_make(fixture *f, qr_batch *b, size_t n, int64_t lo, int64_t hi)
{
    for (size_t idx = 0; idx < n; idx++) {
        qr_event *e = qr_batch_push(b);
        uint64_t r = qr_test_rand(&f->rng);
        e->ts_ns = lo + (int64_t)(r % (uint64_t)(hi - lo));
        e->ingest_ts_ns = g_now;
        const char *svc = services[(r >> 20) % 3];
        e->service = qr_batch_str(b, svc, strlen(svc));
        e->host = qr_batch_str(b, "h1", 2);
        e->level = (uint8_t)(QR_LEVEL_INFO + (r >> 24) % 3); /* INFO, WARN, ERROR */
        char msg[64];
        int len = snprintf(msg, sizeof msg, "request %llu done", (unsigned long long)(r >> 40));
        e->msg = qr_batch_str(b, msg, (size_t)len);
        qr_field lat = {.key = qr_batch_str(b, "latency_ms", 10), .type = QR_FT_INT};
        lat.v.i = (int64_t)((r >> 28) % 2000);
        if ((r >> 50) % 10) qr_batch_add_field(b, &lat); /* some events have no latency */
        char user[16];
        len = snprintf(user, sizeof user, "u%u", (unsigned)((r >> 33) % 40));
        qr_field u = {.key = qr_batch_str(b, "user", 4), .type = QR_FT_STRING};
        u.v.s = qr_batch_str(b, user, (size_t)len);
        qr_batch_add_field(b, &u);
    }
}

static int ingest(db_t *db, const qr_batch *b)
{
    qr_diag d;
    qr_diag_init(&d);
    int rc = db_ingest(db, NULL, b, &d);
    if (rc) fprintf(stderr, "ingest: %s\n", d.msg);
    return rc;
}

/* Ingests events into main; into ref too unless their window of interval iv had already
 * closed (bucket end <= the model's watermark). */
static void ingest_model(fixture *f, const qr_batch *b, int64_t iv)
{
    REQUIRE(ingest(f->db, b) == 0);
    int64_t wm = f->wm;
    qr_batch keep;
    qr_batch_init(&keep);
    for (size_t idx = 0; idx < b->count; idx++) {
        int64_t t = b->events[idx].ts_ns / iv * iv;
        if (b->events[idx].level >= QR_LEVEL_WARN && t + iv <= wm) continue; /* late */
        qr_batch_copy_event(&keep, b, idx);
    }
    if (keep.count) REQUIRE(ingest(f->ref, &keep) == 0);
    qr_batch_fini(&keep);
}

static void tick(fixture *f)
{
    qr_diag d;
    qr_diag_init(&d);
    int rc = rollup_mgr_tick(f->m, &d);
    if (rc) fprintf(stderr, "tick: %s\n", d.msg);
    CHECK_EQ_INT(rc, 0);
}

/* The rows of a query as CSV without the header line ("" on error, printed). */
static char *run(db_t *db, rollup_mgr *m, const char *sql, qr_diag *d_out)
{
    exec_opts o;
    memset(&o, 0, sizeof o);
    o.rollups = m;
    o.now_ns = g_now;
    exec_result *r = NULL;
    qr_diag d;
    qr_diag_init(&d);
    int rc = exec_run(db, NULL, sql, &o, &r, &d);
    if (d_out) *d_out = d;
    if (rc) {
        if (!d_out) fprintf(stderr, "%s\n  -> %s\n", sql, d.msg);
        return strdup("");
    }
    qr_buf b;
    qr_buf_init(&b);
    exec_result_format(r, EXEC_FORMAT_CSV, &b);
    exec_result_free(r);
    qr_buf_u8(&b, 0);
    const char *body = strchr((const char *)b.data, '\n');
    char *s = strdup(body ? body + 1 : "");
    qr_buf_fini(&b);
    return s;
}

static void check_same(const char *what, char *got, char *want)
{
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "%s differs\n--- rollup\n%s--- raw\n%s", what, got, want);
        CHECK(false);
    }
    CHECK(strlen(want) > 0);
    free(got);
    free(want);
}

#define ROLLUP_SQL                                                                                 \
    "CREATE ROLLUP r1 AS SELECT bucket(ts, 1m) AS t, service, level, count(*) AS n, "              \
    "sum(latency_ms) AS s, min(latency_ms) AS lo, max(latency_ms) AS hi, avg(latency_ms) AS "      \
    "av, p99(latency_ms) AS p, count_distinct(user) AS u, count(latency_ms) AS c FROM logs "       \
    "WHERE level >= WARN GROUP BY t, service, level WITH (lateness = 30s)"
#define RAW_SQL                                                                                    \
    "SELECT bucket(ts, 1m) AS t, service, level, count(*), sum(latency_ms), min(latency_ms), "     \
    "max(latency_ms), avg(latency_ms), p99(latency_ms), count_distinct(user), "                    \
    "count(latency_ms) FROM logs WHERE level >= WARN GROUP BY t, service, level"
#define ROLL_5M                                                                                    \
    "SELECT bucket(t, 5m) AS h, service, sum(n), sum(s), min(lo), max(hi), avg(av), p99(p), "      \
    "count_distinct(u) FROM r1 GROUP BY h, service"
#define RAW_5M                                                                                     \
    "SELECT bucket(ts, 5m) AS h, service, count(*), sum(latency_ms), min(latency_ms), "            \
    "max(latency_ms), avg(latency_ms), p99(latency_ms), count_distinct(user) FROM logs WHERE "     \
    "level >= WARN GROUP BY h, service"

static void compare_all(fixture *f, const char *when)
{
    char what[128];
    snprintf(what, sizeof what, "SELECT * (%s)", when);
    check_same(what, run(f->db, f->m, "SELECT * FROM r1", NULL), run(f->ref, NULL, RAW_SQL, NULL));
    snprintf(what, sizeof what, "5m over the 1m rollup (%s)", when);
    check_same(what, run(f->db, f->m, ROLL_5M, NULL), run(f->ref, NULL, RAW_5M, NULL));
}

TEST(model_backfill_live_late_restart)
{
    fixture f;
    REQUIRE(fixture_open(&f, "rollup_model"));
    int64_t iv = 60 * SEC, late = 30 * SEC;
    /* history before the rollup exists: backfilled from segments and the memtable */
    qr_batch b;
    qr_batch_init(&b);
    events_make(&f, &b, 1500, T0 - 20 * 60 * SEC, T0);
    ingest_model(&f, &b, iv);
    qr_diag d;
    qr_diag_init(&d);
    REQUIRE(db_flush(f.db, &d) == 0);
    qr_batch_reset(&b);
    events_make(&f, &b, 500, T0 - 5 * 60 * SEC, T0 + 10 * SEC);
    ingest_model(&f, &b, iv);
    char *out = run(f.db, f.m, ROLLUP_SQL, NULL);
    CHECK(strstr(out, "r1,live,") != NULL);
    free(out);
    model_tick(&f, iv, late);
    compare_all(&f, "after backfill");

    /* live: time passes, windows close, some events come late */
    for (int step = 0; step < 6; step++) {
        g_now += 40 * SEC;
        qr_batch_reset(&b);
        events_make(&f, &b, 300, g_now - 90 * SEC, g_now + 5 * SEC);
        ingest_model(&f, &b, iv);
        tick(&f);
        model_tick(&f, iv, late);
    }
    out = run(f.db, f.m, "SHOW ROLLUPS", NULL);
    CHECK(strstr(out, "r1,live,1m,30s,,") != NULL);
    if (getenv("QR_TEST_VERBOSE")) fprintf(stderr, "%s", out);
    free(out);
    /* some events came late and were counted, not added */
    out = run(f.db, f.m, "SELECT count(*) FROM logs WHERE level >= WARN", NULL);
    char *ref = run(f.ref, NULL, "SELECT count(*) FROM logs WHERE level >= WARN", NULL);
    CHECK(atol(out) > atol(ref));
    free(out);
    free(ref);
    compare_all(&f, "live with late events");

    /* restart with the memtable in the WAL, then with everything flushed */
    REQUIRE(restart(&f, false));
    compare_all(&f, "after a restart");
    g_now += 5 * 60 * SEC;
    qr_batch_reset(&b);
    events_make(&f, &b, 400, g_now - 2 * 60 * SEC, g_now);
    ingest_model(&f, &b, iv);
    tick(&f);
    model_tick(&f, iv, late);
    REQUIRE(restart(&f, true));
    compare_all(&f, "after a second restart");
    qr_batch_fini(&b);
    fixture_close(&f);
}

TEST(rewrite_proven_by_explain)
{
    fixture f;
    REQUIRE(fixture_open(&f, "rollup_rewrite"));
    int64_t iv = 60 * SEC, late = 30 * SEC;
    qr_batch b;
    qr_batch_init(&b);
    events_make(&f, &b, 1200, T0 - 30 * 60 * SEC, T0);
    ingest_model(&f, &b, iv);
    char *out = run(f.db, f.m, ROLLUP_SQL, NULL);
    free(out);
    g_now += 10 * 60 * SEC;
    tick(&f);
    model_tick(&f, iv, late);
    /* late events into the window starting at T0 - 10m */
    qr_batch_reset(&b);
    events_make(&f, &b, 50, T0 - 10 * 60 * SEC, T0 - 9 * 60 * SEC);
    ingest_model(&f, &b, iv);
    tick(&f);

    const char *q_ok = "SELECT bucket(ts, 5m) AS h, service, count(*), p95(latency_ms), "
                       "sum(latency_ms) FROM logs WHERE level >= WARN AND ts >= "
                       "'2025-06-14T23:30:00Z' AND ts < '2025-06-14T23:50:00Z' GROUP BY h, "
                       "service";
    char sql[1024];
    snprintf(sql, sizeof sql, "EXPLAIN %s", q_ok);
    out = run(f.db, f.m, sql, NULL);
    CHECK(strstr(out, "rollup: r1") != NULL);
    free(out);
    /* the answer is the raw one: compare with the reference directory (no rollups) */
    check_same("rewritten query", run(f.db, f.m, q_ok, NULL), run(f.ref, NULL, q_ok, NULL));

    /* not used, and why */
    struct {
        const char *sql, *why;
    } nots[] = {
        {"EXPLAIN SELECT service, count(*) FROM logs WHERE level >= WARN AND ts >= "
         "'2025-06-14T23:30:00Z' AND ts < '2025-06-14T23:55:00Z' GROUP BY service",
         "late events"},
        {"EXPLAIN SELECT service, count(*) FROM logs WHERE level >= ERROR GROUP BY service",
         "a different filter"},
        {"EXPLAIN SELECT host, count(*) FROM logs WHERE level >= WARN GROUP BY host",
         "host is not one of its labels"},
        {"EXPLAIN SELECT bucket(ts, 90s) AS x, count(*) FROM logs WHERE level >= WARN GROUP BY x",
         "not a multiple"},
        {"EXPLAIN SELECT p99(user) FROM logs WHERE level >= WARN AND ts >= "
         "'2025-06-14T23:30:00Z' AND ts < '2025-06-14T23:40:00Z'",
         "no column holds quantile(user)"},
        {"EXPLAIN SELECT count(*) FROM logs WHERE level >= WARN AND ts >= "
         "'2025-06-14T23:30:30Z' AND ts < '2025-06-14T23:40:00Z'",
         "does not start on a bucket boundary"},
    };
    for (size_t idx = 0; idx < sizeof nots / sizeof nots[0]; idx++) {
        out = run(f.db, f.m, nots[idx].sql, NULL);
        if (!strstr(out, "rollup: not used") || !strstr(out, nots[idx].why)) {
            fprintf(stderr, "%s\n%s\n", nots[idx].sql, out);
            CHECK(false);
        }
        free(out);
    }
    qr_batch_fini(&b);
    fixture_close(&f);
}

TEST(definition_errors_leave_nothing)
{
    fixture f;
    REQUIRE(fixture_open(&f, "rollup_errors"));
    qr_batch b;
    qr_batch_init(&b);
    events_make(&f, &b, 50, T0 - 60 * SEC, T0);
    REQUIRE(ingest(f.db, &b) == 0);
    qr_batch_fini(&b);
    struct {
        const char *sql, *err;
    } cases[] = {
        {"CREATE ROLLUP e1 AS SELECT bucket(ts, 1m) AS t, sum(latency) FROM logs GROUP BY t",
         "line 1, column 53: unknown field \"latency\""},
        {"CREATE ROLLUP e2 AS SELECT bucket(ts, 1m) AS t, region, count(*) FROM logs GROUP BY "
         "t, region",
         "line 1, column 49: unknown field \"region\""},
        {"CREATE ROLLUP e3 AS SELECT bucket(ts, 1m) AS t, count(*) FROM logs WHERE colour = 'x' "
         "GROUP BY t",
         "line 1, column 74: unknown field \"colour\""},
        {"CREATE ROLLUP e4 AS SELECT bucket(ts, 1m) AS t, sum(latency_ms + 1) FROM logs GROUP BY t",
         "line 1, column "},
        {"CREATE ROLLUP logs AS SELECT bucket(ts, 1m) AS t, count(*) FROM logs GROUP BY t",
         "reserved"},
    };
    for (size_t idx = 0; idx < sizeof cases / sizeof cases[0]; idx++) {
        qr_diag d;
        char *out = run(f.db, f.m, cases[idx].sql, &d);
        free(out);
        if (!strstr(d.msg, cases[idx].err)) {
            fprintf(stderr, "%s\n  got: %s\n  want: %s\n", cases[idx].sql, d.msg, cases[idx].err);
            CHECK(false);
        }
    }
    char *out = run(f.db, f.m, "SHOW ROLLUPS", NULL);
    CHECK_EQ_STR(out, "");
    free(out);
    char path[700];
    snprintf(path, sizeof path, "%s/cq/default/rollups/e1", f.dir);
    struct stat sb;
    CHECK(stat(path, &sb) != 0);

    const char *ok =
        "CREATE ROLLUP ok1 AS SELECT bucket(ts, 1m) AS t, count(*) FROM logs GROUP BY t";
    out = run(f.db, f.m, ok, NULL);
    CHECK(strstr(out, "ok1,live,") != NULL);
    free(out);
    qr_diag d;
    out = run(f.db, f.m, ok, &d);
    free(out);
    CHECK_EQ_INT(d.code, QR_EEXIST);
    CHECK_EQ_STR(d.msg, "line 1, column 15: rollup \"ok1\" already exists");
    out = run(f.db, f.m, "DESCRIBE ok1", NULL);
    CHECK(strstr(out, "t,time,\"bucket(ts, 1m)\"") != NULL);
    CHECK(strstr(out, "count(*),aggregate,count(*)") != NULL);
    free(out);
    out = run(f.db, f.m, "SHOW TABLES", NULL);
    CHECK(strstr(out, "logs,") && strstr(out, "ok1,"));
    free(out);
    out = run(f.db, f.m, "SELECT x FROM ok1", &d);
    free(out);
    CHECK_EQ_STR(d.msg, "line 1, column 8: unknown column \"x\" of rollup ok1");
    out = run(f.db, f.m, "DROP ROLLUP ok1", NULL);
    CHECK_EQ_STR(out, "ok1\r\n");
    free(out);
    out = run(f.db, f.m, "DROP ROLLUP ok1", &d);
    free(out);
    CHECK_EQ_INT(d.code, QR_ENOTFOUND);
    snprintf(path, sizeof path, "%s/cq/default/rollups/ok1", f.dir);
    CHECK(stat(path, &sb) != 0);
    /* statements without a manager fail clearly */
    out = run(f.db, NULL, "SHOW ROLLUPS", &d);
    free(out);
    CHECK(strstr(d.msg, "rollups are not open") != NULL);
    fixture_close(&f);
}

TEST(retention_and_file_merging)
{
    fixture f;
    REQUIRE(fixture_open(&f, "rollup_retention"));
    char *out = run(f.db, f.m,
                    "CREATE ROLLUP k AS SELECT bucket(ts, 10s) AS t, count(*) AS n FROM logs "
                    "GROUP BY t WITH (retention = 5m, lateness = 0s)",
                    NULL);
    free(out);
    qr_batch b;
    qr_batch_init(&b);
    /* 40 ticks of 10 s: one file per tick, merged past 16 files; the oldest leave after 5m */
    for (int step = 0; step < 40; step++) {
        qr_batch_reset(&b);
        events_make(&f, &b, 20, g_now, g_now + 10 * SEC);
        REQUIRE(ingest(f.db, &b) == 0);
        g_now += 10 * SEC;
        tick(&f);
    }
    out = run(f.db, f.m, "SELECT count(*), sum(n), min(t) FROM k", NULL);
    /* 5 minutes of 10 s buckets are kept: 30 windows of 20 events */
    CHECK_EQ_STR(out, "30,600,2025-06-15T00:01:40.000Z\r\n");
    free(out);
    out = run(f.db, f.m, "SHOW ROLLUPS", NULL);
    /* files merged: at most RU_MERGE_FILES + 1 remain */
    const char *p = strrchr(out, ',');
    p = p ? p - 1 : out;
    while (p > out && *p != ',') p--;
    CHECK(atoi(p + 1) <= 17);
    free(out);
    REQUIRE(restart(&f, true));
    out = run(f.db, f.m, "SELECT count(*), sum(n) FROM k", NULL);
    CHECK_EQ_STR(out, "30,600\r\n");
    free(out);
    qr_batch_fini(&b);
    fixture_close(&f);
}

/* Labels and filters on fields and host take the per-event path (no event classes): the
 * rollup still prints what the raw aggregation prints, live and across a restart. No event
 * is late here, so the raw aggregation of the same directory is the reference. */
TEST(field_labels_and_filters)
{
    fixture f;
    REQUIRE(fixture_open(&f, "rollup_fields"));
    qr_batch b;
    qr_batch_init(&b);
    events_make(&f, &b, 800, T0 - 5 * 60 * SEC, T0);
    REQUIRE(ingest(f.db, &b) == 0);
    char *out = run(f.db, f.m,
                    "CREATE ROLLUP r2 AS SELECT bucket(ts, 1m) AS t, user, host, count(*) AS n, "
                    "max(latency_ms) AS hi, count_distinct(service) AS ds FROM logs WHERE "
                    "latency_ms > 100 AND msg CONTAINS 'done' GROUP BY t, user, host "
                    "WITH (lateness = 10m)",
                    NULL);
    CHECK(strstr(out, "r2,live,") != NULL);
    free(out);
    const char *raw = "SELECT bucket(ts, 1m) AS t, user, host, count(*), max(latency_ms), "
                      "count_distinct(service) FROM logs WHERE latency_ms > 100 AND msg CONTAINS "
                      "'done' GROUP BY t, user, host";
    check_same("field labels after backfill", run(f.db, f.m, "SELECT * FROM r2", NULL),
               run(f.db, NULL, raw, NULL));
    for (int step = 0; step < 3; step++) {
        g_now += 60 * SEC;
        qr_batch_reset(&b);
        events_make(&f, &b, 300, g_now - 5 * 60 * SEC, g_now);
        REQUIRE(ingest(f.db, &b) == 0);
        tick(&f);
    }
    check_same("field labels live", run(f.db, f.m, "SELECT * FROM r2", NULL),
               run(f.db, NULL, raw, NULL));
    REQUIRE(restart(&f, false));
    check_same("field labels after a restart", run(f.db, f.m, "SELECT * FROM r2", NULL),
               run(f.db, NULL, raw, NULL));
    out = run(f.db, f.m,
              "EXPLAIN SELECT user, count(*) FROM logs WHERE msg CONTAINS 'done' AND latency_ms > "
              "100 GROUP BY user",
              NULL);
    CHECK(strstr(out, "rollup: r2") != NULL);
    free(out);
    check_same("rewrite by a field label",
               run(f.db, f.m,
                   "SELECT user, count(*), max(latency_ms) FROM logs WHERE msg CONTAINS 'done' "
                   "AND latency_ms > 100 GROUP BY user",
                   NULL),
               run(f.db, NULL,
                   "SELECT user, count(*), max(latency_ms) FROM logs WHERE msg CONTAINS 'done' "
                   "AND latency_ms > 100 GROUP BY user",
                   NULL));
    qr_batch_fini(&b);
    fixture_close(&f);
}

/* What a crash leaves: a window file the MANIFEST does not list (written, not published) and
 * a MANIFEST.tmp. The reopen deletes both and answers from the published state plus the
 * stored events; a damaged MANIFEST is refused with a clear error, never a crash. */
TEST(crash_leftovers_and_corruption)
{
    fixture f;
    REQUIRE(fixture_open(&f, "rollup_crash"));
    int64_t iv = 60 * SEC, late = 30 * SEC;
    qr_batch b;
    qr_batch_init(&b);
    events_make(&f, &b, 600, T0 - 10 * 60 * SEC, T0);
    ingest_model(&f, &b, iv);
    char *out = run(f.db, f.m, ROLLUP_SQL, NULL);
    free(out);
    model_tick(&f, iv, late);
    char dir[700], path[800];
    snprintf(dir, sizeof dir, "%s/cq/default/rollups/r1", f.dir);
    snprintf(path, sizeof path, "%s/000000000099.qrw", dir);
    FILE *fp = fopen(path, "wb");
    REQUIRE(fp != NULL);
    fputs("QRRW half-written", fp);
    fclose(fp);
    snprintf(path, sizeof path, "%s/MANIFEST.tmp", dir);
    fp = fopen(path, "wb");
    REQUIRE(fp != NULL);
    fclose(fp);
    REQUIRE(restart(&f, false));
    struct stat sb;
    snprintf(path, sizeof path, "%s/000000000099.qrw", dir);
    CHECK(stat(path, &sb) != 0);
    snprintf(path, sizeof path, "%s/MANIFEST.tmp", dir);
    CHECK(stat(path, &sb) != 0);
    compare_all(&f, "after leftovers of a crash");

    /* a flipped byte in the MANIFEST */
    rollup_mgr_close(f.m);
    f.m = NULL;
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    size_t len = 0;
    char *bytes = qr_test_read_file(path, &len);
    REQUIRE(bytes && len > 8);
    bytes[6] ^= 0x40;
    fp = fopen(path, "wb");
    REQUIRE(fp != NULL);
    fwrite(bytes, 1, len, fp);
    fclose(fp);
    free(bytes);
    rollup_opts ro = {.clock_ns = test_clock, .no_thread = true};
    qr_diag d;
    qr_diag_init(&d);
    CHECK_EQ_INT(rollup_mgr_open(f.db, &ro, &f.m, &d), QR_ECORRUPT);
    CHECK(strstr(d.msg, "MANIFEST") != NULL);
    f.m = NULL;
    qr_batch_fini(&b);
    fixture_close(&f);
}

int main(void)
{
    RUN(model_backfill_live_late_restart);
    RUN(rewrite_proven_by_explain);
    RUN(definition_errors_leave_nothing);
    RUN(retention_and_file_merging);
    RUN(field_labels_and_filters);
    RUN(crash_leftovers_and_corruption);
    QR_TEST_MAIN_END();
}

/* alert_test — alert rules end to end inside one process with an injected clock: the state
 * machine (pending after WHEN, firing after FOR, resolved), cooldown, mute, per-group
 * instances, the history table, rejected definitions, and a restart that neither fires twice
 * nor forgets a firing instance. Notifications go to a real HTTP receiver on loopback. */
#include "common/qr_time.h"
#include "engine/alert.h"
#include "engine/engine.h"
#include "http_receiver.h"
#include "qr_test.h"

typedef struct fixture {
    char dir[512];
    db_t *db;
    alert_mgr *m;
    int64_t now_ns;
    receiver rcv;
    char url[128];
} fixture;

static int64_t fake_clock(void *ctx) { return ((fixture *)ctx)->now_ns; }

static int fx_open_mgr(fixture *f)
{
    alert_mgr_opts o = {0};
    o.no_thread = true;
    o.clock = fake_clock;
    o.clock_ctx = f;
    o.base_url = "http://127.0.0.1:7070";
    o.notify.backoff_base_ms = 20;
    o.notify.backoff_max_ms = 50;
    o.notify.timeout_ms = 2000;
    qr_diag d;
    qr_diag_init(&d);
    int rc = alert_mgr_open(f->db, &o, &f->m, &d);
    if (rc) fprintf(stderr, "alert_mgr_open: %s\n", d.msg);
    return rc;
}

static int fx_open(fixture *f, const char *name, bool fresh)
{
    if (fresh) {
        if (!qr_test_tmpdir(name, f->dir, sizeof f->dir)) return -1;
        /* a whole second: windows line up with the slots */
        f->now_ns = (qr_now_ns() / QR_NS_PER_SEC) * QR_NS_PER_SEC;
        if (receiver_start(&f->rcv, 0, 0, 200) != 0) return -1;
        snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/hook", f->rcv.port);
    }
    qr_diag d;
    qr_diag_init(&d);
    db_opts o = {0};
    o.wal.fsync_policy = WAL_FSYNC_NEVER;
    int rc = db_open(f->dir, &o, &f->db, NULL, &d);
    if (rc) return rc;
    return fx_open_mgr(f);
}

static void fx_close(fixture *f, bool final)
{
    alert_mgr_close(f->m);
    f->m = NULL;
    db_close(f->db);
    f->db = NULL;
    if (final) {
        receiver_stop(&f->rcv);
        qr_test_rmdir(f->dir);
    }
}

/* n events of service/level at the fixture's now. */
static void ingest(fixture *f, const char *service, qr_level level, int n, int64_t latency)
{
    qr_batch b;
    qr_batch_init(&b);
    for (int idx = 0; idx < n; idx++) {
        qr_event *e = qr_batch_push(&b);
        e->ts_ns = f->now_ns;
        e->ingest_ts_ns = f->now_ns;
        e->level = (uint8_t)level;
        e->service = qr_batch_str(&b, service, strlen(service));
        e->host = qr_batch_str(&b, "h1", 2);
        e->msg = qr_batch_str(&b, "card declined", 13);
        qr_field fld = {.key = qr_batch_str(&b, "latency_ms", 10), .type = QR_FT_INT};
        fld.v.i = latency;
        qr_batch_add_field(&b, &fld);
    }
    qr_diag d;
    qr_diag_init(&d);
    int rc = db_ingest(f->db, NULL, &b, &d);
    if (rc) fprintf(stderr, "ingest: %s\n", d.msg);
    qr_batch_fini(&b);
}

/* Runs a statement; returns its code and (optionally) the result. */
static int run(fixture *f, const char *sql, exec_result **out, qr_diag *d)
{
    exec_opts o = {0};
    o.alerts = f->m;
    o.now_ns = f->now_ns;
    exec_result *r = NULL;
    qr_diag local;
    if (!d) d = &local;
    qr_diag_init(d);
    int rc = exec_run(f->db, NULL, sql, &o, &r, d);
    if (out)
        *out = r;
    else
        exec_result_free(r);
    return rc;
}

static void tick(fixture *f, int64_t advance_ns)
{
    f->now_ns += advance_ns;
    alert_mgr_tick(f->m, f->now_ns, true); /* every rule, as its EVERY tick would */
    alert_mgr_wait_idle(f->m, 5000);
}

static int delivered(fixture *f) { return atomic_load(&f->rcv.ok_count); }

static const char *body(fixture *f, int idx) { return idx < f->rcv.kept ? f->rcv.bodies[idx] : ""; }

/* The state column of SHOW ALERTS for group (or the first row when group is NULL). */
static void show_state(fixture *f, const char *group, char *out, size_t cap)
{
    exec_result *r = NULL;
    snprintf(out, cap, "?");
    if (run(f, "SHOW ALERTS", &r, NULL) != 0) return;
    for (uint64_t row = 0; row < r->row_count; row++) {
        const exec_value *c = &r->cells[row * r->col_count];
        if (group && !qr_str_eq_cstr(c[1].v.s, group)) continue;
        snprintf(out, cap, "%.*s", (int)c[2].v.s.len, c[2].v.s.ptr);
        break;
    }
    exec_result_free(r);
}

static int64_t history_rows(fixture *f, const char *where)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT * FROM alert_events%s%s", where ? " WHERE " : "",
             where ? where : "");
    exec_result *r = NULL;
    qr_diag d;
    int rc = run(f, sql, &r, &d);
    if (rc) fprintf(stderr, "%s: %s\n", sql, d.msg);
    int64_t n = rc ? -1 : (int64_t)r->row_count;
    exec_result_free(r);
    return n;
}

#define SEC QR_NS_PER_SEC

TEST(pending_firing_resolved)
{
    fixture f = {0};
    REQUIRE(fx_open(&f, "alert_sm", true) == 0);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "CREATE ALERT errs AS SELECT count(*) FROM logs WHERE level = 'ERROR' "
             "WINDOW 10s EVERY 1s WHEN count(*) > 2 FOR 2s LABELS (severity = 'critical') "
             "ANNOTATIONS (summary = 'errors') NOTIFY WEBHOOK '%s'",
             f.url);
    qr_diag d;
    CHECK_EQ_INT(run(&f, sql, NULL, &d), 0);
    char st[32];
    ingest(&f, "pay", QR_LEVEL_ERROR, 2, 10);
    ingest(&f, "pay", QR_LEVEL_INFO, 5, 10);
    tick(&f, 0);
    show_state(&f, NULL, st, sizeof st);
    CHECK_EQ_STR(st, "ok");
    ingest(&f, "pay", QR_LEVEL_ERROR, 1, 10);
    tick(&f, SEC);
    show_state(&f, NULL, st, sizeof st);
    CHECK_EQ_STR(st, "pending");
    CHECK_EQ_INT(delivered(&f), 0);
    tick(&f, SEC);
    show_state(&f, NULL, st, sizeof st);
    CHECK_EQ_STR(st, "pending");
    tick(&f, SEC); /* FOR 2s has passed */
    show_state(&f, NULL, st, sizeof st);
    CHECK_EQ_STR(st, "firing");
    CHECK_EQ_INT(delivered(&f), 1);
    CHECK(strstr(body(&f, 0), "\"state\":\"firing\"") != NULL);
    CHECK(strstr(body(&f, 0), "\"value\":3") != NULL);
    CHECK(strstr(body(&f, 0), "card declined") != NULL);
    /* each sample is the whole event (captured as bytes at ingest, written at notify time) */
    CHECK(strstr(body(&f, 0), "\"service\":\"pay\",\"host\":\"h1\",\"level\":\"ERROR\","
                              "\"msg\":\"card declined\",\"latency_ms\":10}") != NULL);
    tick(&f, SEC); /* still firing: no repeat */
    CHECK_EQ_INT(delivered(&f), 1);
    tick(&f, 10 * SEC); /* the window moved past the errors */
    show_state(&f, NULL, st, sizeof st);
    CHECK_EQ_STR(st, "ok");
    CHECK_EQ_INT(delivered(&f), 2);
    CHECK(strstr(body(&f, 1), "\"state\":\"resolved\"") != NULL);
    /* history: ok→pending, pending→firing, firing→resolved */
    CHECK_EQ_INT(history_rows(&f, NULL), 3);
    CHECK_EQ_INT(history_rows(&f, "to_state = 'firing' AND notified = true"), 1);
    CHECK_EQ_INT(history_rows(&f, "alert = 'errs' AND value >= 3"), 2);
    fx_close(&f, true);
}

TEST(cooldown_and_mute)
{
    fixture f = {0};
    REQUIRE(fx_open(&f, "alert_cool", true) == 0);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "CREATE ALERT c AS SELECT count(*) FROM logs WINDOW 2s EVERY 1s WHEN count(*) >= 1 "
             "COOLDOWN 1m NOTIFY WEBHOOK '%s'",
             f.url);
    CHECK_EQ_INT(run(&f, sql, NULL, NULL), 0);
    ingest(&f, "a", QR_LEVEL_INFO, 1, 1);
    tick(&f, 0);
    CHECK_EQ_INT(delivered(&f), 1); /* firing */
    tick(&f, 3 * SEC);
    CHECK_EQ_INT(delivered(&f), 2); /* resolved */
    ingest(&f, "a", QR_LEVEL_INFO, 1, 1);
    tick(&f, 0);
    char st[32];
    show_state(&f, NULL, st, sizeof st);
    CHECK_EQ_STR(st, "firing");
    CHECK_EQ_INT(delivered(&f), 2); /* within the cooldown: not notified */
    CHECK_EQ_INT(history_rows(&f, "error = 'cooldown'"), 1);
    tick(&f, 3 * SEC); /* resolves; its firing was not notified, so no resolved either */
    CHECK_EQ_INT(delivered(&f), 2);

    /* mute: a new firing is recorded but not sent */
    CHECK_EQ_INT(run(&f, "MUTE ALERT c FOR 1h", NULL, NULL), 0);
    f.now_ns += 2 * 60 * SEC; /* past the cooldown */
    ingest(&f, "a", QR_LEVEL_INFO, 1, 1);
    tick(&f, 0);
    show_state(&f, NULL, st, sizeof st);
    CHECK_EQ_STR(st, "firing");
    CHECK_EQ_INT(delivered(&f), 2);
    CHECK_EQ_INT(history_rows(&f, "error = 'muted'"), 1);
    /* unmute while still firing: the firing is notified now */
    CHECK_EQ_INT(run(&f, "UNMUTE ALERT c", NULL, NULL), 0);
    ingest(&f, "a", QR_LEVEL_INFO, 1, 1);
    tick(&f, 0);
    CHECK_EQ_INT(delivered(&f), 3);
    CHECK_EQ_INT(run(&f, "MUTE ALERT nosuch FOR 1h", NULL, NULL), QR_ENOTFOUND);
    fx_close(&f, true);
}

TEST(groups_are_instances)
{
    fixture f = {0};
    REQUIRE(fx_open(&f, "alert_groups", true) == 0);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "CREATE ALERT slow AS SELECT service, avg(latency_ms) AS lat FROM logs "
             "GROUP BY service WINDOW 5s EVERY 1s WHEN lat > 100 NOTIFY WEBHOOK '%s', "
             "ALERTMANAGER 'http://127.0.0.1:%d/'",
             f.url, f.rcv.port);
    qr_diag d;
    CHECK_EQ_INT(run(&f, sql, NULL, &d), 0);
    ingest(&f, "api", QR_LEVEL_INFO, 3, 500);
    ingest(&f, "db", QR_LEVEL_INFO, 3, 5);
    tick(&f, 0);
    char st[32];
    show_state(&f, "service=api", st, sizeof st);
    CHECK_EQ_STR(st, "firing");
    show_state(&f, "service=db", st, sizeof st);
    CHECK_EQ_STR(st, "ok");
    CHECK_EQ_INT(delivered(&f), 2); /* webhook + alertmanager for api only */
    bool saw_am = false;
    for (int idx = 0; idx < f.rcv.kept; idx++)
        if (strcmp(f.rcv.paths[idx], "/api/v2/alerts") == 0) {
            saw_am = true;
            CHECK(strstr(f.rcv.bodies[idx], "\"alertname\":\"slow\",\"service\":\"api\"") != NULL);
        }
    CHECK(saw_am);
    qr_buf prom;
    qr_buf_init(&prom);
    CHECK_EQ_INT(alert_mgr_state_prometheus(f.m, &prom), 0);
    qr_buf_u8(&prom, 0);
    CHECK(strstr((char *)prom.data,
                 "ALERTS{alertname=\"slow\",alertstate=\"firing\",tenant=\"default\","
                 "service=\"api\"} 1") != NULL);
    CHECK(strstr((char *)prom.data, "service=\"db\"") == NULL);
    qr_buf_fini(&prom);
    fx_close(&f, true);
}

/* The value column of SHOW ALERTS for (name, group), or -1. */
static int64_t show_value(fixture *f, const char *name, const char *group)
{
    exec_result *r = NULL;
    int64_t v = -1;
    if (run(f, "SHOW ALERTS", &r, NULL) != 0) return v;
    for (uint64_t row = 0; row < r->row_count; row++) {
        const exec_value *c = &r->cells[row * r->col_count];
        if (qr_str_eq_cstr(c[0].v.s, name) && qr_str_eq_cstr(c[1].v.s, group) &&
            c[3].type == EXEC_INT)
            v = c[3].v.i;
    }
    exec_result_free(r);
    return v;
}

/* One batch mixing services and levels: the per-batch service / level prefilters and the
 * shared filter results give the counts the filters alone would. */
TEST(mixed_batch_prefilters)
{
    fixture f = {0};
    REQUIRE(fx_open(&f, "alert_mixed", true) == 0);
    const char *defs[] = {
        "CREATE ALERT a_warn AS SELECT count(*) FROM logs WHERE service = 'a' AND level >= WARN "
        "WINDOW 10s EVERY 1s WHEN count(*) > 100 NOTIFY WEBHOOK 'http://127.0.0.1:9/'",
        "CREATE ALERT a_warn2 AS SELECT count(*) FROM logs WHERE service = 'a' AND level >= WARN "
        "WINDOW 1m EVERY 1s WHEN count(*) > 100 NOTIFY WEBHOOK 'http://127.0.0.1:9/'",
        "CREATE ALERT errs AS SELECT service, count(*) FROM logs WHERE level = 'error' "
        "GROUP BY service WINDOW 10s EVERY 1s WHEN count(*) > 100 "
        "NOTIFY WEBHOOK 'http://127.0.0.1:9/'",
        "CREATE ALERT c_none AS SELECT count(*) FROM logs WHERE service = 'c' "
        "WINDOW 10s EVERY 1s WHEN count(*) > 100 NOTIFY WEBHOOK 'http://127.0.0.1:9/'",
        "CREATE ALERT not_info AS SELECT count(*) FROM logs WHERE level != INFO AND "
        "msg CONTAINS 'declined' WINDOW 10s EVERY 1s WHEN count(*) > 100 "
        "NOTIFY WEBHOOK 'http://127.0.0.1:9/'",
    };
    for (size_t idx = 0; idx < sizeof defs / sizeof defs[0]; idx++)
        CHECK_EQ_INT(run(&f, defs[idx], NULL, NULL), 0);
    static const struct {
        const char *service;
        qr_level level;
    } rows[] = {{"a", QR_LEVEL_INFO},  {"b", QR_LEVEL_ERROR}, {"a", QR_LEVEL_WARN},
                {"a", QR_LEVEL_ERROR}, {"b", QR_LEVEL_ERROR}, {"a", QR_LEVEL_WARN},
                {"b", QR_LEVEL_WARN},  {"a", QR_LEVEL_INFO},  {"b", QR_LEVEL_ERROR},
                {"a", QR_LEVEL_FATAL}, {"b", QR_LEVEL_ERROR}, {"a", QR_LEVEL_WARN}};
    qr_batch b;
    qr_batch_init(&b);
    for (size_t idx = 0; idx < sizeof rows / sizeof rows[0]; idx++) {
        qr_event *e = qr_batch_push(&b);
        e->ts_ns = e->ingest_ts_ns = f.now_ns;
        e->level = (uint8_t)rows[idx].level;
        e->service = qr_batch_str(&b, rows[idx].service, 1);
        e->msg = qr_batch_str(&b, "card declined", 13);
    }
    CHECK_EQ_INT(db_ingest(f.db, NULL, &b, NULL), 0);
    qr_batch_fini(&b);
    tick(&f, 0);
    CHECK_EQ_INT(show_value(&f, "a_warn", ""), 5);  /* a: WARN×3, ERROR, FATAL */
    CHECK_EQ_INT(show_value(&f, "a_warn2", ""), 5); /* same WHERE: shared results */
    CHECK_EQ_INT(show_value(&f, "errs", "service=a"), 1);
    CHECK_EQ_INT(show_value(&f, "errs", "service=b"), 4);
    CHECK_EQ_INT(show_value(&f, "c_none", ""), 0);
    CHECK_EQ_INT(show_value(&f, "not_info", ""), 10);
    fx_close(&f, true);
}

static void expect_error(fixture *f, const char *sql, int code, const char *msg_part, int column)
{
    qr_diag d;
    int rc = run(f, sql, NULL, &d);
    CHECK_EQ_INT(rc, code);
    if (!strstr(d.msg, msg_part)) fprintf(stderr, "  message: %s\n", d.msg);
    CHECK(strstr(d.msg, msg_part) != NULL);
    if (column) CHECK_EQ_INT(d.column, column);
}

TEST(bad_definitions)
{
    fixture f = {0};
    REQUIRE(fx_open(&f, "alert_bad", true) == 0);
    ingest(&f, "a", QR_LEVEL_INFO, 1, 1); /* the tenant has fields: unknown ones are errors */
    expect_error(&f,
                 "CREATE ALERT a AS SELECT count(*) FROM logs WINDOW 1s EVERY 5s "
                 "WHEN count(*) > 1 NOTIFY WEBHOOK 'http://127.0.0.1:1/'",
                 QR_ESYNTAX, "WINDOW 1s is smaller than EVERY 5s", 52);
    expect_error(&f,
                 "CREATE ALERT a AS SELECT count(*) FROM logs WHERE nosuch = 1 WINDOW 1m "
                 "EVERY 5s WHEN count(*) > 1 NOTIFY WEBHOOK 'http://127.0.0.1:1/'",
                 QR_ESYNTAX, "unknown field \"nosuch\"", 51);
    expect_error(&f,
                 "CREATE ALERT a AS SELECT count(*) FROM logs WINDOW 1m EVERY 5s "
                 "WHEN latency_ms > 1 NOTIFY WEBHOOK 'http://127.0.0.1:1/'",
                 QR_ESYNTAX, "must be over the aggregate", 69);
    expect_error(&f,
                 "CREATE ALERT a AS SELECT count(*) FROM logs WINDOW 1m EVERY 5s "
                 "WHEN count(*) > 1 NOTIFY WEBHOOK 'not a url'",
                 QR_ESYNTAX, "bad URL", 89);
    expect_error(&f,
                 "CREATE ALERT a AS SELECT msg FROM logs WINDOW 1m EVERY 5s "
                 "WHEN count(*) > 1 NOTIFY WEBHOOK 'http://127.0.0.1:1/'",
                 QR_ESYNTAX, "one aggregate", 26);
    expect_error(&f,
                 "CREATE ALERT a AS SELECT count(*) FROM other WINDOW 1m EVERY 5s "
                 "WHEN count(*) > 1 NOTIFY WEBHOOK 'http://127.0.0.1:1/'",
                 QR_ESYNTAX, "FROM logs", 40);
    /* none of these left anything behind */
    char path[700];
    snprintf(path, sizeof path, "%s/cq/default/alerts/a.def", f.dir);
    CHECK(access(path, F_OK) != 0);
    exec_result *r = NULL;
    CHECK_EQ_INT(run(&f, "SHOW ALERTS", &r, NULL), 0);
    CHECK_EQ_INT(r ? r->row_count : 99, 0);
    exec_result_free(r);
    /* duplicate name */
    const char *ok = "CREATE ALERT a AS SELECT count(*) FROM logs WINDOW 1m EVERY 5s "
                     "WHEN count(*) > 1 NOTIFY WEBHOOK 'http://127.0.0.1:1/'";
    CHECK_EQ_INT(run(&f, ok, NULL, NULL), 0);
    CHECK(access(path, F_OK) == 0);
    expect_error(&f, ok, QR_EEXIST, "already exists", 14);
    expect_error(&f, "DROP ALERT b", QR_ENOTFOUND, "no alert named \"b\"", 12);
    CHECK_EQ_INT(run(&f, "DROP ALERT a", NULL, NULL), 0);
    CHECK(access(path, F_OK) != 0);
    fx_close(&f, true);
}

TEST(restart_keeps_state)
{
    fixture f = {0};
    REQUIRE(fx_open(&f, "alert_restart", true) == 0);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "CREATE ALERT r AS SELECT count(*) FROM logs WHERE level >= ERROR WINDOW 10s "
             "EVERY 1s WHEN count(*) >= 2 NOTIFY WEBHOOK '%s'",
             f.url);
    CHECK_EQ_INT(run(&f, sql, NULL, NULL), 0);
    ingest(&f, "a", QR_LEVEL_ERROR, 2, 1);
    tick(&f, 0);
    CHECK_EQ_INT(delivered(&f), 1);
    ingest(&f, "a", QR_LEVEL_ERROR, 1, 1); /* in the window, before the restart */
    fx_close(&f, false);

    f.now_ns += 2 * SEC;
    REQUIRE(fx_open(&f, "alert_restart", false) == 0);
    char st[32];
    show_state(&f, NULL, st, sizeof st);
    CHECK_EQ_STR(st, "firing");
    tick(&f, 0);
    show_state(&f, NULL, st, sizeof st);
    CHECK_EQ_STR(st, "firing");
    CHECK_EQ_INT(delivered(&f), 1); /* no second firing notification */
    /* the rebuilt window holds the 3 stored errors */
    exec_result *r = NULL;
    CHECK_EQ_INT(run(&f, "SHOW ALERTS", &r, NULL), 0);
    CHECK(r && r->row_count == 1 && r->cells[3].type == EXEC_INT && r->cells[3].v.i == 3);
    exec_result_free(r);
    tick(&f, 10 * SEC);
    CHECK_EQ_INT(delivered(&f), 2); /* resolved */
    CHECK(strstr(body(&f, 1), "\"state\":\"resolved\"") != NULL);
    fx_close(&f, true);
}

int main(void)
{
    RUN(pending_firing_resolved);
    RUN(cooldown_and_mute);
    RUN(groups_are_instances);
    RUN(mixed_batch_prefilters);
    RUN(bad_definitions);
    RUN(restart_keeps_state);
    QR_TEST_MAIN_END();
}

/* LogQL pipeline stages and metric functions, each compared with the equivalent SQL (or, for
 * vector aggregations across series, with a reference computed here):
 *   | logfmt / | json then label filters, | line_format, | unwrap with *_over_time and
 *   quantile_over_time, avg/count/max by (...) over series, topk/bottomk.
 * The data set stores each value twice: inside the message (logfmt for service api, JSON for
 * service web) under one name, and as a field under another (f_status, ...), so the LogQL side
 * can only see the value by extracting it. */
#include "engine_data.h"

#include <math.h>

#define LQ_EVENTS 3000

static engine_data g_ed;

static int build(void)
{
    memset(&g_ed, 0, sizeof g_ed);
    if (!qr_test_tmpdir("engine_logql", g_ed.dir, sizeof g_ed.dir)) return QR_EIO;
    qr_batch_init(&g_ed.all);
    db_opts o;
    memset(&o, 0, sizeof o);
    o.block_rows = 256;
    o.flush_age_ms = 3600 * 1000;
    o.wal.fsync_policy = WAL_FSYNC_NEVER;
    qr_diag d;
    qr_diag_init(&d);
    int rc = db_open(g_ed.dir, &o, &g_ed.db, NULL, &d);
    if (rc) return rc;
    static const char *const methods[] = {"GET", "POST", "PUT"};
    static const char *const paths[] = {"/a", "/b c", "/d"};
    uint64_t x = 12345;
    for (int k = 0; k < LQ_EVENTS && !rc; k++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        uint32_t r = (uint32_t)(x >> 33);
        qr_event *e = qr_batch_push(&g_ed.all);
        if (!e) return QR_ENOMEM;
        bool api = k % 2 == 0;
        int status = 200 + (int)(r % 4) * 100 + (int)(r >> 8 & 3);
        int lat_ms = (int)(r >> 12 & 1023);
        const char *method = methods[r >> 24 & 1 ? 0 : (r >> 25) % 3];
        const char *path = paths[(r >> 27) % 3];
        char msg[256], host[8];
        int n = api ? snprintf(msg, sizeof msg, "method=%s status=%d latency=%.3f path=\"%s\"",
                               method, status, lat_ms / 1000.0, path)
                    : snprintf(msg, sizeof msg,
                               "{\"method\":\"%s\",\"status\":%d,\"latency\":%.3f,"
                               "\"req\":{\"path\":\"%s\"}}",
                               method, status, lat_ms / 1000.0, path);
        snprintf(host, sizeof host, "h%d", (int)(r >> 29 & 3));
        e->ts_ns = ED_START_NS + (int64_t)k * 100 * QR_NS_PER_MS;
        e->ingest_ts_ns = e->ts_ns;
        e->service = qr_batch_str(&g_ed.all, api ? "api" : "web", 3);
        e->host = qr_batch_str(&g_ed.all, host, strlen(host));
        e->msg = qr_batch_str(&g_ed.all, msg, (size_t)n);
        e->level = status >= 500 ? QR_LEVEL_ERROR : QR_LEVEL_INFO;
        qr_field f = {.key = qr_batch_str(&g_ed.all, "f_status", 8), .type = QR_FT_INT};
        f.v.i = status;
        rc = qr_batch_add_field(&g_ed.all, &f);
        qr_field f2 = {.key = qr_batch_str(&g_ed.all, "f_latency", 9), .type = QR_FT_FLOAT};
        f2.v.f = lat_ms / 1000.0;
        if (!rc) rc = qr_batch_add_field(&g_ed.all, &f2);
        qr_field f3 = {.key = qr_batch_str(&g_ed.all, "f_method", 8), .type = QR_FT_STRING};
        f3.v.s = qr_batch_str(&g_ed.all, method, strlen(method));
        if (!rc) rc = qr_batch_add_field(&g_ed.all, &f3);
        qr_field f4 = {.key = qr_batch_str(&g_ed.all, "f_path", 6), .type = QR_FT_STRING};
        f4.v.s = qr_batch_str(&g_ed.all, path, strlen(path));
        if (!rc) rc = qr_batch_add_field(&g_ed.all, &f4);
    }
    /* half in a segment, half in the memtable */
    if (!rc) rc = engine_data_ingest(&g_ed, 0, LQ_EVENTS / 2);
    if (!rc) rc = db_flush(g_ed.db, &d);
    if (!rc) rc = engine_data_ingest(&g_ed, LQ_EVENTS / 2, LQ_EVENTS);
    return rc;
}

static char *csv(const char *query)
{
    qr_diag d;
    exec_opts o = {.logql_limit = 100000};
    char *s = engine_data_csv(&g_ed, query, &o, NULL, &d);
    if (!s) fprintf(stderr, "%s: %s\n", query, d.msg);
    return s;
}

/* Same rows, ignoring the header line (column names differ between the faces). */
static void same_rows(const char *sql, const char *logql, int min_rows)
{
    char *a = csv(sql), *b = csv(logql);
    CHECK(a && b);
    if (a && b) {
        const char *ra = strchr(a, '\n'), *rb = strchr(b, '\n');
        REQUIRE(ra && rb);
        if (strcmp(ra, rb) != 0)
            fprintf(stderr, "differ:\n%s\n%.300s\n--- vs ---\n%s\n%.300s\n", sql, ra, logql, rb);
        CHECK(strcmp(ra, rb) == 0);
        int rows = 0;
        for (const char *p = ra + 1; *p; p++) rows += *p == '\n';
        if (rows < min_rows) fprintf(stderr, "%s: only %d rows\n", logql, rows);
        CHECK(rows >= min_rows);
    }
    free(a);
    free(b);
}

TEST(parsers_and_label_filters)
{
    same_rows("SELECT ts, service, level, host, msg FROM logs WHERE service = 'api' AND "
              "f_status >= 500 AND f_method = 'GET' ORDER BY ts DESC",
              "{service=\"api\"} | logfmt | status >= 500 and method=\"GET\"", 100);
    same_rows("SELECT ts, service, level, host, msg FROM logs WHERE service = 'web' AND "
              "f_path = '/b c' AND f_latency > 0.5 ORDER BY ts DESC",
              "{service=\"web\"} | json | req_path = \"/b c\" | latency > 0.5", 50);
    /* both parsers: each message is read by the one that understands it */
    same_rows("SELECT ts, service, level, host, msg FROM logs WHERE f_status = 401 ORDER BY ts "
              "DESC",
              "{host=~\"h.*\"} | json | logfmt | status = 401", 100);
    /* regex label filter on an extracted value */
    same_rows("SELECT ts, service, level, host, msg FROM logs WHERE service = 'api' AND "
              "f_method ~ '^P' ORDER BY ts DESC",
              "{service=\"api\"} | logfmt | method =~ \"P.*\"", 100);
}

TEST(line_format)
{
    exec_result *r = NULL;
    qr_diag d;
    qr_diag_init(&d);
    exec_opts o = {.logql_limit = 50};
    REQUIRE(exec_run(g_ed.db, NULL,
                     "{service=\"web\"} | json | line_format \"{{.method}} {{ .req_path }}: "
                     "{{.status}}\"",
                     &o, &r, &d) == 0);
    exec_result *s = NULL;
    REQUIRE(exec_run(g_ed.db, NULL,
                     "SELECT f_method, f_path, f_status FROM logs WHERE service = 'web' LIMIT 50",
                     NULL, &s, &d) == 0);
    REQUIRE(r->row_count == 50 && s->row_count == 50);
    for (uint64_t row = 0; row < 50; row++) {
        char want[128];
        const exec_value *c = &s->cells[row * 3];
        snprintf(want, sizeof want, "%.*s %.*s: %lld", (int)c[0].v.s.len, c[0].v.s.ptr,
                 (int)c[1].v.s.len, c[1].v.s.ptr, (long long)c[2].v.i);
        const exec_value *m = &r->cells[row * 5 + 4];
        CHECK(m->type == EXEC_STRING && m->v.s.len == strlen(want) &&
              memcmp(m->v.s.ptr, want, m->v.s.len) == 0);
    }
    exec_result_free(r);
    exec_result_free(s);
    r = NULL;
    CHECK_EQ_INT(
        exec_run(g_ed.db, NULL, "{service=\"web\"} | line_format \"{{if .x}}\"", NULL, &r, &d),
        QR_ESYNTAX);
    if (!strstr(d.msg, "line 1, column 17: line_format supports only"))
        fprintf(stderr, "%s\n", d.msg);
    CHECK(strstr(d.msg, "line 1, column 17: line_format supports only") != NULL);
}

TEST(unwrap_range_functions)
{
    static const char *const pairs[][2] = {
        {"sum(f_latency)", "sum_over_time"},
        {"avg(f_latency)", "avg_over_time"},
        {"min(f_latency)", "min_over_time"},
        {"max(f_latency)", "max_over_time"},
    };
    for (size_t idx = 0; idx < sizeof pairs / sizeof pairs[0]; idx++) {
        char sql[512], lq[512];
        snprintf(sql, sizeof sql,
                 "SELECT bucket(ts, 1m) AS t, service, level, host, %s AS value FROM logs "
                 "WHERE service = 'api' GROUP BY t, service, level, host",
                 pairs[idx][0]);
        snprintf(lq, sizeof lq, "%s({service=\"api\"} | logfmt | unwrap latency [1m])",
                 pairs[idx][1]);
        same_rows(sql, lq, 20);
    }
    same_rows("SELECT bucket(ts, 1m) AS t, service, level, host, quantile(f_latency, 0.9) AS "
              "value FROM logs WHERE service = 'web' GROUP BY t, service, level, host",
              "quantile_over_time(0.9, {service=\"web\"} | json | unwrap latency [1m])", 20);
    /* a vector aggregation that merges the range states: one aggregation */
    same_rows("SELECT bucket(ts, 1m) AS t, service, max(f_latency) AS value FROM logs GROUP BY "
              "t, service",
              "max by (service) (max_over_time({host=~\".+\"} | json | logfmt | unwrap latency "
              "[1m]))",
              10);
    same_rows("SELECT bucket(ts, 1m) AS t, level, sum(f_status) AS value FROM logs WHERE "
              "service = 'api' GROUP BY t, level",
              "sum by (level) (sum_over_time({service=\"api\"} | logfmt | unwrap status [1m]))",
              10);
}

/* Reference for avg/count by (level) (count_over_time(...[1m])): series are (service, level,
 * host); per (minute, level) the average (or number) of the series' counts. */
static void check_vector(const char *fn)
{
    enum { MINUTES = 5, SERIES = 2 * 2 * 4 };
    int64_t counts[MINUTES][2][SERIES];
    memset(counts, 0, sizeof counts);
    for (size_t idx = 0; idx < g_ed.all.count; idx++) {
        const qr_event *e = &g_ed.all.events[idx];
        int minute = (int)((e->ts_ns - ED_START_NS) / (60 * QR_NS_PER_SEC));
        int lvl = e->level == QR_LEVEL_ERROR;
        int series = (e->service.ptr[0] == 'a') * 8 + lvl * 4 + (e->host.ptr[1] - '0');
        counts[minute][lvl][series]++;
    }
    char q[256];
    snprintf(q, sizeof q, "%s by (level) (count_over_time({service=~\".+\"} [1m]))", fn);
    exec_result *r = NULL;
    qr_diag d;
    qr_diag_init(&d);
    REQUIRE(exec_run(g_ed.db, NULL, q, NULL, &r, &d) == 0);
    CHECK_EQ_INT(r->col_count, 3);
    CHECK_EQ_INT(r->row_count, MINUTES * 2);
    for (uint64_t row = 0; row < r->row_count && row < MINUTES * 2; row++) {
        const exec_value *c = &r->cells[row * 3];
        int minute = (int)((c[0].v.i - ED_START_NS) / (60 * QR_NS_PER_SEC));
        int lvl = c[1].v.i == QR_LEVEL_ERROR;
        int64_t sum = 0, n = 0;
        for (int s = 0; s < SERIES; s++) {
            sum += counts[minute][lvl][s];
            n += counts[minute][lvl][s] > 0;
        }
        if (!strcmp(fn, "avg"))
            CHECK(c[2].type == EXEC_FLOAT && fabs(c[2].v.f - (double)sum / (double)n) < 1e-9);
        else
            CHECK(c[2].type == EXEC_INT && c[2].v.i == n);
    }
    exec_result_free(r);
}

TEST(vector_aggregations)
{
    check_vector("avg");
    check_vector("count");
}

TEST(topk)
{
    /* per minute, the two hosts with the most events, against the SQL counts per host */
    exec_result *r = NULL, *s = NULL;
    qr_diag d;
    qr_diag_init(&d);
    REQUIRE(exec_run(g_ed.db, NULL,
                     "topk(2, sum by (host) (count_over_time({service=~\".+\"} [1m])))", NULL, &r,
                     &d) == 0);
    REQUIRE(exec_run(g_ed.db, NULL,
                     "SELECT bucket(ts, 1m) AS t, host, count(*) FROM logs GROUP BY t, host "
                     "ORDER BY t, 3 DESC, host",
                     NULL, &s, &d) == 0);
    /* the SQL rows, two per minute */
    uint64_t want = 0;
    for (uint64_t row = 0; row < s->row_count; row++) {
        const exec_value *c = &s->cells[row * 3];
        bool first = row == 0 || s->cells[(row - 1) * 3].v.i != c[0].v.i;
        bool second = !first && (row < 2 || s->cells[(row - 2) * 3].v.i != c[0].v.i);
        if (!first && !second) continue;
        REQUIRE(want < r->row_count);
        const exec_value *o = &r->cells[want * 3];
        CHECK_EQ_INT(o[0].v.i, c[0].v.i);
        CHECK(qr_str_eq(o[1].v.s, c[1].v.s));
        CHECK_EQ_INT(o[2].v.i, c[2].v.i);
        want++;
    }
    CHECK_EQ_INT(r->row_count, want);
    CHECK(want >= 10);
    exec_result_free(r);
    exec_result_free(s);
    /* bottomk over series directly */
    REQUIRE(exec_run(g_ed.db, NULL, "bottomk(1, count_over_time({service=\"api\"} [1m]))", NULL, &r,
                     &d) == 0);
    CHECK_EQ_INT(r->col_count, 5);
    CHECK_EQ_INT(r->row_count, 5); /* 5 minutes of api events (3000 x 100 ms = 5 min) */
    exec_result_free(r);
}

int main(void)
{
    int rc = build();
    if (rc) {
        fprintf(stderr, "cannot build the data set: %s\n", qr_strerror(rc));
        return 1;
    }
    RUN(parsers_and_label_filters);
    RUN(line_format);
    RUN(unwrap_range_functions);
    RUN(vector_aggregations);
    RUN(topk);
    engine_data_close(&g_ed);
    QR_TEST_MAIN_END();
}

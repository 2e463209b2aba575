/* Engine tests over the deterministic data set (engine_data.h):
 *   - golden files tests/golden/query/NAME.txt: each case is
 *       -- query          the query (lines up to the next "-- ")
 *       -- rows           the expected result as CSV (header first), up to a blank line
 *       -- error          or the expected QR_ESYNTAX/QR_ELIMIT message, positioned
 *     QR_BLESS=1 rewrites the files with what the engine returns (review the diff!);
 *   - EXPLAIN counters proving parts and blocks are pruned, skipped or answered from metadata;
 *   - the SQL and LogQL forms of the same question give the same rows;
 *   - limits: memory budget errors and partial results; result formats. */
#include "engine_data.h"

#include <dirent.h>
#include <math.h>

static engine_data g_ed;



/* The actual outcome of a query in golden form: "-- rows\n<csv>" or "-- error\n<msg>\n". */
static void outcome(const char *query, qr_buf *out)
{
    qr_diag d;
    exec_opts o = {.now_ns = ED_START_NS + 3600 * QR_NS_PER_SEC};
    char *csv = engine_data_csv(&g_ed, query, &o, NULL, &d);
    if (csv) {
        qr_buf_append(out, "-- rows\n", 8);
        qr_buf_append(out, csv, strlen(csv));
        free(csv);
    } else {
        qr_buf_append(out, "-- error\n", 9);
        qr_buf_append(out, d.msg, strlen(d.msg));
        qr_buf_u8(out, '\n');
    }
}

static int run_golden_file(const char *path, const char *name, bool bless)
{
    size_t len;
    char *text = qr_test_read_file(path, &len);
    if (!text) {
        fprintf(stderr, "cannot read %s\n", path);
        qr_test_cur_failures++;
        return 0;
    }
    qr_buf blessed;
    qr_buf_init(&blessed);
    int cases = 0;
    char *p = text;
    while (*p) {
        char *eol = strchr(p, '\n');
        size_t line_len = eol ? (size_t)(eol - p) : strlen(p);
        char *next = eol ? eol + 1 : p + line_len;
        if (line_len == 8 && strncmp(p, "-- query", 8) == 0) {
            /* the query: lines up to the next directive */
            char *q = next, *q_end = next;
            while (*next && strncmp(next, "-- ", 3) != 0) {
                char *e2 = strchr(next, '\n');
                q_end = e2 ? e2 : next + strlen(next);
                next = e2 ? e2 + 1 : q_end;
            }
            /* the expectation: the directive line and lines up to a blank line */
            char *exp = next;
            while (*next && *next != '\n') {
                char *e2 = strchr(next, '\n');
                next = e2 ? e2 + 1 : next + strlen(next);
            }
            size_t exp_len = (size_t)(next - exp);
            char saved = *q_end;
            *q_end = '\0';
            qr_buf actual;
            qr_buf_init(&actual);
            outcome(q, &actual);
            if (bless) {
                qr_buf_append(&blessed, "-- query\n", 9);
                qr_buf_append(&blessed, q, strlen(q));
                qr_buf_u8(&blessed, '\n');
                qr_buf_append(&blessed, actual.data, actual.len);
            } else if (actual.len != exp_len || memcmp(actual.data, exp, exp_len) != 0) {
                fprintf(stderr, "%s: query:\n%s\nexpected:\n%.*s\nactual:\n%.*s\n", name, q,
                        (int)exp_len, exp, (int)actual.len, (const char *)actual.data);
                qr_test_cur_failures++;
            }
            qr_buf_fini(&actual);
            *q_end = saved;
            cases++;
            p = next;
            continue;
        }
        if (bless) {
            qr_buf_append(&blessed, p, line_len);
            if (eol) qr_buf_u8(&blessed, '\n');
        }
        p = next;
    }
    if (bless) {
        FILE *f = fopen(path, "wb");
        if (f) {
            fwrite(blessed.data, 1, blessed.len, f);
            fclose(f);
        }
    }
    qr_buf_fini(&blessed);
    free(text);
    return cases;
}

TEST(golden_files)
{
    char dir[1024];
    qr_test_golden_dir("query", dir, sizeof dir);
    DIR *dh = opendir(dir);
    REQUIRE(dh);
    bool bless = getenv("QR_BLESS") && *getenv("QR_BLESS") == '1';
    int files = 0, cases = 0;
    struct dirent *de;
    while ((de = readdir(dh))) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".txt") != 0) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        cases += run_golden_file(path, de->d_name, bless);
        files++;
    }
    closedir(dh);
    printf("# %d golden files, %d cases\n", files, cases);
    CHECK(files >= 3);
    CHECK(cases >= 40);
}

/* ---- EXPLAIN counters -------------------------------------------------------------------------
 */

static exec_result *run(const char *query)
{
    exec_result *r = NULL;
    qr_diag d;
    qr_diag_init(&d);
    int rc = exec_run(g_ed.db, NULL, query, NULL, &r, &d);
    if (rc) fprintf(stderr, "%s: %s\n", query, d.msg);
    return r;
}

static int64_t count_of(exec_result *r)
{
    return r && r->row_count == 1 && r->cells[0].type == EXEC_INT ? r->cells[0].v.i : -1;
}

static int64_t ref_count(bool (*pred)(const qr_batch *, const qr_event *, void *), void *ctx)
{
    int64_t n = 0;
    for (size_t idx = 0; idx < g_ed.all.count; idx++)
        n += pred(&g_ed.all, &g_ed.all.events[idx], ctx);
    return n;
}

static bool in_window(const qr_batch *b, const qr_event *e, void *ctx)
{
    (void)b;
    const int64_t *w = ctx;
    return e->ts_ns >= w[0] && e->ts_ns < w[1];
}

TEST(prune_by_time)
{
    /* one minute out of ten: most blocks lie outside */
    int64_t w[2] = {ED_START_NS + 120 * QR_NS_PER_SEC, ED_START_NS + 180 * QR_NS_PER_SEC};
    exec_result *r = run("SELECT count(*) FROM logs WHERE ts >= '2025-06-15T00:02:00Z' AND "
                         "ts < '2025-06-15T00:03:00Z' AND latency_ms >= 0");
    REQUIRE(r);
    CHECK_EQ_INT(count_of(r), ref_count(in_window, w));
    CHECK(r->stats.blocks_pruned_time > r->stats.blocks_total / 2);
    CHECK(r->stats.blocks_scanned < r->stats.blocks_total / 3);
    CHECK(r->stats.blocks_total >= 20);
    exec_result_free(r);
}

static bool svc_fatal(const qr_batch *b, const qr_event *e, void *ctx)
{
    (void)b;
    return qr_str_eq_cstr(e->service, ctx) && e->level == QR_LEVEL_FATAL;
}

TEST(prune_by_labels)
{
    exec_result *r = run("SELECT count(*) FROM logs WHERE service = 'payment' AND level = FATAL "
                         "AND msg CONTAINS 'e'");
    REQUIRE(r);
    int64_t want = 0;
    for (size_t idx = 0; idx < g_ed.all.count; idx++) {
        const qr_event *e = &g_ed.all.events[idx];
        want += svc_fatal(&g_ed.all, e, "payment") && memchr(e->msg.ptr, 'e', e->msg.len);
    }
    CHECK_EQ_INT(count_of(r), want);
    CHECK(r->stats.blocks_pruned_labels > 0);
    CHECK(r->stats.blocks_pruned_labels + r->stats.blocks_pruned_time > r->stats.blocks_total / 2);
    exec_result_free(r);
}

TEST(prune_by_index)
{
    /* a needle: the trace id of one event is unique; its msg has a unique order id too */
    exec_result *r = run("SELECT ts, msg FROM logs WHERE msg MATCH 'declined' LIMIT 1000");
    REQUIRE(r);
    CHECK(r->row_count > 0);
    CHECK(r->stats.blocks_pruned_index > 0);
    exec_result_free(r);
    r = run("SELECT count(*) FROM logs WHERE msg MATCH 'zzzznotthere'");
    REQUIRE(r);
    CHECK_EQ_INT(count_of(r), 0);
    CHECK_EQ_INT(r->stats.blocks_scanned, 0);
    CHECK(r->stats.blocks_pruned_index == r->stats.blocks_total);
    CHECK_EQ_INT(r->stats.rows_verified, 0);
    exec_result_free(r);
}

TEST(newest_first_stops_early)
{
    exec_result *r = run("SELECT ts, msg FROM logs ORDER BY ts DESC LIMIT 5");
    REQUIRE(r);
    CHECK_EQ_INT(r->row_count, 5);
    CHECK(r->stats.blocks_skipped > r->stats.blocks_total / 2);
    /* the newest five, by the reference */
    int64_t best[5] = {INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN};
    for (size_t idx = 0; idx < g_ed.all.count; idx++) {
        int64_t t = g_ed.all.events[idx].ts_ns;
        for (int k = 0; k < 5; k++) {
            if (t > best[k]) {
                memmove(&best[k + 1], &best[k], (size_t)(4 - k) * sizeof best[0]);
                best[k] = t;
                break;
            }
        }
    }
    for (int k = 0; k < 5; k++) CHECK_EQ_INT(r->cells[k * 2].v.i, best[k]);
    exec_result_free(r);
    r = run("SELECT ts FROM logs ORDER BY ts LIMIT 3");
    REQUIRE(r);
    CHECK(r->stats.blocks_skipped > 0);
    exec_result_free(r);
}

TEST(counts_from_metadata)
{
    exec_result *r = run("SELECT service, level, count(*) FROM logs GROUP BY service, level");
    REQUIRE(r);
    CHECK_EQ_INT(r->stats.blocks_scanned, 0);
    CHECK(r->stats.blocks_meta == r->stats.blocks_total);
    int64_t total = 0;
    for (uint64_t row = 0; row < r->row_count; row++) total += r->cells[row * 3 + 2].v.i;
    CHECK_EQ_INT(total, ED_EVENTS);
    CHECK_EQ_INT(r->hits, ED_EVENTS);
    exec_result_free(r);
    /* 1m buckets: blocks inside one bucket come from metadata, the others from rows */
    r = run("SELECT bucket(ts, 1m) AS t, count(*) FROM logs WHERE service IN ('api-gateway', "
            "'frontend') GROUP BY t");
    REQUIRE(r);
    CHECK(r->stats.blocks_meta > 0);
    CHECK(r->stats.blocks_scanned > 0);
    total = 0;
    for (uint64_t row = 0; row < r->row_count; row++) total += r->cells[row * 2 + 1].v.i;
    int64_t want = 0;
    for (size_t idx = 0; idx < g_ed.all.count; idx++)
        want += qr_str_eq_cstr(g_ed.all.events[idx].service, "api-gateway") ||
                qr_str_eq_cstr(g_ed.all.events[idx].service, "frontend");
    CHECK_EQ_INT(total, want);
    exec_result_free(r);
}

/* Every group of a metadata answer against the events: (service, level) pairs over all parts,
 * and (1m bucket, level) under a service filter, where blocks inside one bucket come from
 * metadata and the others from rows. */
TEST(counts_from_metadata_per_group)
{
    exec_result *r = run("SELECT service, level, count(*) FROM logs GROUP BY service, level");
    REQUIRE(r);
    CHECK(r->stats.blocks_meta == r->stats.blocks_total);
    CHECK(r->row_count > 10);
    for (uint64_t row = 0; row < r->row_count; row++) {
        const exec_value *c = &r->cells[row * 3];
        REQUIRE(c[0].type == EXEC_STRING && c[1].type == EXEC_LEVEL);
        int64_t want = 0;
        for (size_t idx = 0; idx < g_ed.all.count; idx++) {
            const qr_event *ev = &g_ed.all.events[idx];
            want += ev->service.len == c[0].v.s.len &&
                    memcmp(ev->service.ptr, c[0].v.s.ptr, c[0].v.s.len) == 0 &&
                    ev->level == c[1].v.i;
        }
        CHECK_EQ_INT(c[2].v.i, want);
    }
    exec_result_free(r);
    r = run("SELECT bucket(ts, 1m) AS t, level, count(*) FROM logs WHERE service IN "
            "('api-gateway', 'payment') AND level != DEBUG GROUP BY t, level");
    REQUIRE(r);
    CHECK(r->stats.blocks_meta > 0);
    CHECK(r->stats.blocks_scanned > 0);
    CHECK(r->row_count > 10);
    int64_t total = 0, want_total = 0;
    for (uint64_t row = 0; row < r->row_count; row++) {
        const exec_value *c = &r->cells[row * 3];
        int64_t want = 0;
        for (size_t idx = 0; idx < g_ed.all.count; idx++) {
            const qr_event *ev = &g_ed.all.events[idx];
            bool svc = qr_str_eq_cstr(ev->service, "api-gateway") ||
                       qr_str_eq_cstr(ev->service, "payment");
            int64_t bucket = ev->ts_ns - ev->ts_ns % (60 * QR_NS_PER_SEC);
            want +=
                svc && ev->level != QR_LEVEL_DEBUG && ev->level == c[1].v.i && bucket == c[0].v.i;
        }
        CHECK_EQ_INT(c[2].v.i, want);
        total += c[2].v.i;
    }
    for (size_t idx = 0; idx < g_ed.all.count; idx++) {
        const qr_event *ev = &g_ed.all.events[idx];
        want_total += (qr_str_eq_cstr(ev->service, "api-gateway") ||
                       qr_str_eq_cstr(ev->service, "payment")) &&
                      ev->level != QR_LEVEL_DEBUG;
    }
    CHECK(want_total > 0);
    CHECK_EQ_INT(total, want_total);
    exec_result_free(r);
}

/* ---- SQL and LogQL -------------------------------------------------------------------------- */

static void same_answer(const char *sql, const char *logql)
{
    qr_diag d1, d2;
    char *a = engine_data_csv(&g_ed, sql, NULL, NULL, &d1);
    char *b = engine_data_csv(&g_ed, logql, NULL, NULL, &d2);
    if (!a) fprintf(stderr, "%s: %s\n", sql, d1.msg);
    if (!b) fprintf(stderr, "%s: %s\n", logql, d2.msg);
    CHECK(a && b);
    if (a && b) {
        if (strcmp(a, b) != 0) fprintf(stderr, "differ:\n%s\n--- vs ---\n%s\n", sql, logql);
        CHECK_EQ_INT(strcmp(a, b), 0);
        CHECK(strchr(a, '\n') && strchr(a, '\n')[1] != '\0'); /* some rows */
    }
    free(a);
    free(b);
}

TEST(sql_and_logql_agree)
{
    same_answer("SELECT ts, service, level, host, msg FROM logs WHERE service = 'payment' AND "
                "msg CONTAINS 'declined' ORDER BY ts DESC LIMIT 100",
                "{service=\"payment\"} |= \"declined\"");
    same_answer("SELECT ts, service, level, host, msg FROM logs WHERE level ~ '^(?:ERROR|WARN)$' "
                "AND msg NOT CONTAINS 'timeout' AND latency_ms > 30 ORDER BY ts DESC LIMIT 100",
                "{level=~\"ERROR|WARN\"} != \"timeout\" | latency_ms > 30");
    same_answer("SELECT bucket(ts, 1m) AS t, service, count(*) AS value FROM logs WHERE level = "
                "ERROR GROUP BY t, service",
                "sum by (service) (count_over_time({level=\"ERROR\"} [1m]))");
    same_answer("SELECT bucket(ts, 5m) AS t, count(*) AS value FROM logs WHERE msg ~ 'order' "
                "GROUP BY t",
                "sum(count_over_time({service=~\".+\"} |~ \"order\" [5m]))");
    same_answer("SELECT bucket(ts, 1m) AS t, service, level, host, rate() AS value FROM logs "
                "WHERE service = 'auth' GROUP BY t, service, level, host",
                "rate({service=\"auth\"} [1m])");
}

/* ---- limits and formats ---------------------------------------------------------------------- */

TEST(memory_budget)
{
    exec_opts o = {.mem_budget_bytes = 1024 * 1024};
    exec_result *r = NULL;
    qr_diag d;
    qr_diag_init(&d);
    int rc = exec_run(g_ed.db, NULL, "SELECT msg, count(*) FROM logs GROUP BY msg", &o, &r, &d);
    CHECK_EQ_INT(rc, QR_ELIMIT);
    if (!strstr(d.msg, "query memory budget exceeded")) fprintf(stderr, "msg: %s\n", d.msg);
    CHECK(strstr(d.msg, "query memory budget exceeded") != NULL);
    CHECK(r == NULL);
    o.mem_budget_bytes = 1024 * 1024;
    o.allow_partial = true;
    qr_diag_init(&d);
    rc = exec_run(g_ed.db, NULL, "SELECT msg, count(*) FROM logs GROUP BY msg", &o, &r, &d);
    CHECK_EQ_INT(rc, 0);
    if (r) {
        CHECK(r->partial);
        CHECK(r->partial_reason && strstr(r->partial_reason, "budget"));
        CHECK(r->row_count > 0 && r->row_count < ED_EVENTS);
    }
    exec_result_free(r);
}

static int str_cmp(const void *a, const void *b)
{
    const qr_str *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->ptr, y->ptr, n) : 0;
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

TEST(count_distinct_sketch)
{
    /* exact below 1,024 distinct values, HyperLogLog (0.81 % standard error) above */
    qr_str *msgs = malloc(g_ed.all.count * sizeof *msgs);
    REQUIRE(msgs);
    for (size_t idx = 0; idx < g_ed.all.count; idx++) msgs[idx] = g_ed.all.events[idx].msg;
    qsort(msgs, g_ed.all.count, sizeof *msgs, str_cmp);
    int64_t distinct = 0;
    for (size_t idx = 0; idx < g_ed.all.count; idx++)
        distinct += idx == 0 || str_cmp(&msgs[idx], &msgs[idx - 1]) != 0;
    free(msgs);
    exec_result *r = run("SELECT count_distinct(msg) FROM logs");
    REQUIRE(r);
    CHECK(distinct > 5000);
    double err = fabs((double)r->cells[0].v.i - (double)distinct) / (double)distinct;
    if (err > 4 * 0.0081)
        fprintf(stderr, "count_distinct %lld vs %lld\n", (long long)r->cells[0].v.i,
                (long long)distinct);
    CHECK(err <= 4 * 0.0081);
    exec_result_free(r);
}

TEST(regex_match_limit)
{
    /* nested repetition on ordinary messages: exponential backtracking, stopped by the match
     * limit with an error, or a partial result when the caller allows one */
    const char *q = "SELECT count(*) FROM logs WHERE msg ~ '^(\\w+\\s?)*$'";
    exec_result *r = NULL;
    qr_diag d;
    qr_diag_init(&d);
    int rc = exec_run(g_ed.db, NULL, q, NULL, &r, &d);
    CHECK_EQ_INT(rc, QR_ELIMIT);
    CHECK(strstr(d.msg, "match limit") != NULL);
    CHECK(r == NULL);
    exec_opts o = {.allow_partial = true};
    qr_diag_init(&d);
    rc = exec_run(g_ed.db, NULL, q, &o, &r, &d);
    CHECK_EQ_INT(rc, 0);
    if (r) {
        CHECK(r->partial);
        CHECK(r->partial_reason && strstr(r->partial_reason, "match limit"));
    }
    exec_result_free(r);
}

TEST(formats)
{
    exec_result *r = run("SELECT service, count(*) AS n, avg(latency_ms) FROM logs WHERE "
                         "service = 'auth' GROUP BY service");
    REQUIRE(r);
    qr_buf out;
    qr_buf_init(&out);
    CHECK_EQ_INT(exec_result_format(r, EXEC_FORMAT_JSON, &out), 0);
    qr_buf_u8(&out, 0);
    const char *json = (const char *)out.data;
    CHECK(strncmp(json,
                  "{\"columns\": [{\"name\": \"service\", \"type\": \"string\"}, "
                  "{\"name\": \"n\", \"type\": \"int\"}",
                  strlen("{\"columns\": [{\"name\": \"service\", \"type\": \"string\"}, "
                         "{\"name\": \"n\", \"type\": \"int\"}")) == 0);
    CHECK(strstr(json, "\"rows\": [[\"auth\", ") != NULL);
    CHECK(strstr(json, "\"next_cursor\": null, \"partial\": false}") != NULL);
    qr_buf_clear(&out);
    CHECK_EQ_INT(exec_result_format(r, EXEC_FORMAT_NDJSON, &out), 0);
    CHECK(out.len > 10 &&
          strncmp((const char *)out.data, "{\"service\": \"auth\", \"n\": ", 25) == 0);
    qr_buf_clear(&out);
    CHECK_EQ_INT(exec_result_format(r, EXEC_FORMAT_TABLE, &out), 0);
    CHECK(out.len > 10 && strncmp((const char *)out.data, "service  n ", 11) == 0);
    qr_buf_fini(&out);
    exec_result_free(r);
}

int main(void)
{
    int rc = engine_data_open(&g_ed, "engine_exec");
    if (rc) {
        fprintf(stderr, "cannot build the data set: %s\n", qr_strerror(rc));
        return 1;
    }
    RUN(golden_files);
    RUN(prune_by_time);
    RUN(prune_by_labels);
    RUN(prune_by_index);
    RUN(newest_first_stops_early);
    RUN(counts_from_metadata);
    RUN(counts_from_metadata_per_group);
    RUN(sql_and_logql_agree);
    RUN(memory_budget);
    RUN(count_distinct_sketch);
    RUN(regex_match_limit);
    RUN(formats);
    engine_data_close(&g_ed);
    QR_TEST_MAIN_END();
}

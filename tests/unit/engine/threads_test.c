/* Threads test: the scan splits parts and blocks among worker threads (exec_opts.threads);
 * every answer must be the same as with one thread — rows, their order, group values (float
 * sums, quantiles, distinct counts included), cursors and pruning counters — for random
 * filters over the engine data set (two segments of 512-row blocks and the memtable). */
#include "engine_data.h"

#include <ctype.h>
#include <math.h>

/* now() of every run: cursors carry it */
#define ED_NOW_NS (ED_START_NS + 3600 * QR_NS_PER_SEC)

static engine_data g_ed;
static uint64_t g_rng = 7919;

static const char *const preds[] = {
    "service = 'auth'",
    "service IN ('api-gateway', 'checkout', 'cart')",
    "level >= WARN",
    "level = INFO",
    "host = 'web-1'",
    "msg MATCH 'order'",
    "msg MATCH 'failed OR timeout'",
    "msg MATCH '\"connection refused\"'",
    "msg MATCH 'pay*'",
    "msg CONTAINS 'user'",
    "latency_ms > 100",
    "http.status >= 400",
    "ts >= '2025-06-15T00:03:00Z'",
    "ts < '2025-06-15T00:07:30Z'",
    "ts BETWEEN '2025-06-15T00:01:10Z' AND '2025-06-15T00:08:50Z'",
    "NOT service = 'frontend'",
    "latency_ms IS NULL",
};

static const char *const shapes[] = {
    "SELECT count(*) FROM logs WHERE %s",
    "SELECT service, level, count(*) FROM logs WHERE %s GROUP BY service, level",
    "SELECT bucket(ts, 1m) AS t, count(*) FROM logs WHERE %s GROUP BY t",
    "SELECT bucket(ts, 30s) AS t, service, count(*) FROM logs WHERE %s GROUP BY t, service",
    ("SELECT service, count(*), sum(latency_ms), avg(latency_ms), min(latency_ms), "
     "max(latency_ms), p90(latency_ms), count_distinct(host) FROM logs WHERE %s GROUP BY "
     "service"),
    "SELECT host, count(*) FROM logs WHERE %s GROUP BY host ORDER BY 2 DESC LIMIT 3",
    "SELECT msg, count(*) FROM logs WHERE %s GROUP BY msg ORDER BY 2 DESC, 1 LIMIT 5",
    "SELECT count_distinct(msg), sum(http.status), avg(http.status) FROM logs WHERE %s",
    "SELECT ts, service, host, msg FROM logs WHERE %s ORDER BY ts DESC LIMIT 9",
    "SELECT ts, level FROM logs WHERE %s ORDER BY ts LIMIT 5 OFFSET 3",
    "SELECT service, ts FROM logs WHERE %s ORDER BY service, ts DESC LIMIT 20",
    "SELECT ts, latency_ms FROM logs WHERE %s ORDER BY latency_ms DESC LIMIT 7",
};

static void where_make(char *out, size_t cap)
{
    int n = 1 + (int)(qr_test_rand(&g_rng) % 3);
    size_t len = 0;
    for (int k = 0; k < n; k++) {
        const char *p = preds[qr_test_rand(&g_rng) % (sizeof preds / sizeof *preds)];
        const char *op = k == 0 ? "" : qr_test_rand(&g_rng) % 4 == 0 ? " OR " : " AND ";
        len += (size_t)snprintf(out + len, cap - len, "%s%s", op, p);
    }
}

static void same_for_threads(const char *query, int *nonempty)
{
    exec_opts one = {.threads = 1, .now_ns = ED_NOW_NS};
    qr_diag d;
    exec_result *r1 = NULL;
    char *want = engine_data_csv(&g_ed, query, &one, &r1, &d);
    if (!want) fprintf(stderr, "%s\n  error: %s\n", query, d.msg);
    CHECK(want != NULL);
    if (!want) return;
    *nonempty += r1->row_count > 0 && strcmp(want, "count(*)\n0\n") != 0;
    static const uint32_t counts[] = {2, 5};
    for (size_t ti = 0; ti < sizeof counts / sizeof *counts; ti++) {
        exec_opts o = {.threads = counts[ti], .now_ns = ED_NOW_NS};
        exec_result *r = NULL;
        char *got = engine_data_csv(&g_ed, query, &o, &r, &d);
        CHECK(got != NULL);
        if (got && strcmp(got, want) != 0) {
            fprintf(stderr, "MISMATCH (%u threads): %s\n--- got:\n%s--- one thread:\n%s\n",
                    counts[ti], query, got, want);
            qr_test_cur_failures++;
        }
        if (r) {
            /* the pruning figures do not depend on the split (a top-k's early stop may visit
             * a few more blocks with more threads: the blocks in flight when it stops) */
            CHECK_EQ_INT(r->stats.parts_total, r1->stats.parts_total);
            CHECK_EQ_INT(r->stats.blocks_total, r1->stats.blocks_total);
            CHECK_EQ_INT(r->stats.blocks_pruned_time, r1->stats.blocks_pruned_time);
            CHECK_EQ_INT(r->stats.blocks_pruned_labels, r1->stats.blocks_pruned_labels);
            CHECK_EQ_INT(r->stats.blocks_meta, r1->stats.blocks_meta);
            /* blocks a top-k reaches may be pruned by a posting list made then (scan.c) */
            CHECK_EQ_INT(r->stats.blocks_pruned_index + r->stats.blocks_scanned +
                             r->stats.blocks_skipped,
                         r1->stats.blocks_pruned_index + r1->stats.blocks_scanned +
                             r1->stats.blocks_skipped);
            if (r1->stats.blocks_skipped == 0)
                CHECK_EQ_INT(r->stats.blocks_pruned_index, r1->stats.blocks_pruned_index);
            if (r1->stats.blocks_skipped == 0) CHECK_EQ_INT(r->hits, r1->hits);
            CHECK((r->next_cursor == NULL) == (r1->next_cursor == NULL));
            if (r->next_cursor && r1->next_cursor)
                CHECK(strcmp(r->next_cursor, r1->next_cursor) == 0);
        }
        exec_result_free(r);
        free(got);
    }
    exec_result_free(r1);
    free(want);
}

TEST(random_queries_same_for_any_thread_count)
{
    int nonempty = 0, runs = 0;
    for (int iter = 0; iter < 8; iter++) {
        char where[600];
        where_make(where, sizeof where);
        for (size_t shape = 0; shape < sizeof shapes / sizeof *shapes; shape++) {
            char query[1200];
            snprintf(query, sizeof query, shapes[shape], where);
            same_for_threads(query, &nonempty);
            runs++;
        }
    }
    printf("# %d queries, %d with rows\n", runs, nonempty);
    CHECK(nonempty > runs / 3);
}

TEST(whole_table_shapes)
{
    int nonempty = 0;
    same_for_threads("SELECT service, level, count(*) FROM logs GROUP BY service, level",
                     &nonempty);
    same_for_threads("SELECT bucket(ts, 5m) AS t, count(*) FROM logs GROUP BY t", &nonempty);
    same_for_threads("SELECT bucket(ts, 7s) AS t, level, count(*) FROM logs GROUP BY t, level",
                     &nonempty);
    same_for_threads("SELECT sum(latency_ms), avg(latency_ms), p99(latency_ms) FROM logs",
                     &nonempty);
    same_for_threads("SELECT ts, msg FROM logs ORDER BY ts DESC LIMIT 100", &nonempty);
    same_for_threads("SELECT ts, msg FROM logs", &nonempty);
    same_for_threads(
        "sum by (service) (count_over_time({level=~\"ERROR|WARN\"} |~ \"order|fail\" [1m]))",
        &nonempty);
    same_for_threads("{service=\"auth\"} |= \"failed\"", &nonempty);
    CHECK_EQ_INT(nonempty, 8);
}

TEST(cursor_pages_same_for_any_thread_count)
{
    /* page through the newest rows with 1 and with 3 threads: the same pages */
    const char *q = "SELECT ts, service FROM logs WHERE level >= WARN ORDER BY ts DESC LIMIT 50";
    char *cur1 = NULL, *cur3 = NULL;
    for (int page = 0; page < 4; page++) {
        exec_opts o1 = {.threads = 1, .now_ns = ED_NOW_NS, .cursor = cur1},
                  o3 = {.threads = 3, .now_ns = ED_NOW_NS, .cursor = cur3};
        exec_result *r1 = NULL, *r3 = NULL;
        qr_diag d;
        char *a = engine_data_csv(&g_ed, q, &o1, &r1, &d);
        char *b = engine_data_csv(&g_ed, q, &o3, &r3, &d);
        REQUIRE(a && b && r1 && r3);
        CHECK(strcmp(a, b) == 0);
        CHECK_EQ_INT(r1->row_count, 50);
        free(cur1);
        free(cur3);
        cur1 = r1->next_cursor ? strdup(r1->next_cursor) : NULL;
        cur3 = r3->next_cursor ? strdup(r3->next_cursor) : NULL;
        CHECK(cur1 && cur3 && strcmp(cur1, cur3) == 0);
        exec_result_free(r1);
        exec_result_free(r3);
        free(a);
        free(b);
    }
    free(cur1);
    free(cur3);
}

TEST(exact_float_sums)
{
    /* sum and avg do not depend on the order rows are visited in: rounded once at the end */
    exec_opts o = {.threads = 1};
    qr_diag d;
    char *got =
        engine_data_csv(&g_ed, "SELECT sum(latency_ms), avg(latency_ms) FROM logs", &o, NULL, &d);
    REQUIRE(got);
    /* the reference: a compensated (Neumaier) sum of the values, good to the 15 digits
     * printed; a plain left-to-right double sum is not (the golden avg differs from it) */
    double s_fwd = 0, c_fwd = 0;
    int64_t n = 0;
    for (size_t idx = 0; idx < g_ed.all.count; idx++) {
        const qr_event *e = &g_ed.all.events[idx];
        const qr_field *f = qr_event_fields(&g_ed.all, e);
        for (uint32_t k = 0; k < e->field_count; k++) {
            if (!qr_str_eq_cstr(f[k].key, "latency_ms")) continue;
            double v = f[k].type == QR_FT_FLOAT ? f[k].v.f
                       : f[k].type == QR_FT_INT ? (double)f[k].v.i
                                                : 0;
            if (f[k].type != QR_FT_FLOAT && f[k].type != QR_FT_INT) continue;
            double t = s_fwd + v;
            c_fwd += fabs(s_fwd) >= fabs(v) ? (s_fwd - t) + v : (v - t) + s_fwd;
            s_fwd = t;
            n++;
        }
    }
    char want[200];
    snprintf(want, sizeof want, "sum(latency_ms),avg(latency_ms)\n%.15g,%.15g\n", s_fwd + c_fwd,
             (s_fwd + c_fwd) / (double)n);
    if (strcmp(got, want) != 0) fprintf(stderr, "got:\n%swant:\n%s", got, want);
    CHECK(strcmp(got, want) == 0);
    free(got);
}

TEST(default_threads_start_late)
{
    /* threads = 0: helpers start once the scan has run 1 ms (in the parts or the blocks
     * phase, whichever it is in then); these queries run longer than that */
    static const char *const queries[] = {
        "SELECT msg, count(*) FROM logs GROUP BY msg ORDER BY 2 DESC, 1 LIMIT 20",
        ("SELECT host, count_distinct(msg), avg(latency_ms) FROM logs WHERE msg CONTAINS 'e' "
         "GROUP BY host"),
        "SELECT ts, msg FROM logs WHERE msg ~ 'o.*e' ORDER BY msg DESC LIMIT 30",
    };
    for (size_t qi = 0; qi < sizeof queries / sizeof *queries; qi++) {
        exec_opts one = {.threads = 1, .now_ns = ED_NOW_NS};
        exec_opts dflt = {.threads = 0, .now_ns = ED_NOW_NS};
        qr_diag d;
        char *want = engine_data_csv(&g_ed, queries[qi], &one, NULL, &d);
        for (int rep = 0; rep < 2 && want; rep++) {
            char *got = engine_data_csv(&g_ed, queries[qi], &dflt, NULL, &d);
            CHECK(got && strcmp(got, want) == 0);
            free(got);
        }
        CHECK(want != NULL);
        free(want);
    }
}

TEST(limits_hold_across_threads)
{
    const char *q = "SELECT msg, count(*) FROM logs GROUP BY msg";
    /* cancel: every worker stops; the query fails with the cancel error */
    volatile sig_atomic_t cancel = 1;
    exec_opts o = {.threads = 3, .cancel = &cancel};
    exec_result *r = NULL;
    qr_diag d;
    qr_diag_init(&d);
    CHECK_EQ_INT(exec_run(g_ed.db, NULL, q, &o, &r, &d), QR_ECANCELED);
    CHECK(r == NULL && strstr(d.msg, "canceled") != NULL);
    /* memory: the budget is shared out, not multiplied */
    exec_opts m = {.threads = 3, .mem_budget_bytes = 1024 * 1024};
    qr_diag_init(&d);
    CHECK_EQ_INT(exec_run(g_ed.db, NULL, q, &m, &r, &d), QR_ELIMIT);
    CHECK(r == NULL && strstr(d.msg, "memory budget") != NULL);
    m.allow_partial = true;
    qr_diag_init(&d);
    CHECK_EQ_INT(exec_run(g_ed.db, NULL, q, &m, &r, &d), 0);
    if (r) {
        CHECK(r->partial && r->partial_reason && strstr(r->partial_reason, "budget"));
        CHECK(r->row_count > 0 && r->row_count < ED_EVENTS);
    }
    exec_result_free(r);
}

/* Counts per time bucket (and per service) against a direct count over the events: blocks
 * wholly inside a bucket come from metadata, blocks straddling one edge, a few edges (7 s)
 * or many (1 s, 512-row blocks span ~25 s) are counted from their rows. */
static int64_t g_counts[4096];

TEST(histogram_edge_blocks_match_reference)
{
    static const struct {
        const char *width;
        int64_t ns;
    } widths[] = {{"1s", QR_NS_PER_SEC}, {"7s", 7 * QR_NS_PER_SEC}, {"1m", 60 * QR_NS_PER_SEC}};
    for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++) {
        for (int filtered = 0; filtered < 2; filtered++) {
            char query[200];
            snprintf(query, sizeof query,
                     "SELECT bucket(ts, %s) AS t, count(*) FROM logs%s GROUP BY t",
                     widths[wi].width,
                     filtered ? " WHERE level >= WARN AND msg MATCH 'order OR failed'" : "");
            memset(g_counts, 0, sizeof g_counts);
            int64_t base = ED_START_NS / widths[wi].ns * widths[wi].ns;
            for (size_t idx = 0; idx < g_ed.all.count; idx++) {
                const qr_event *e = &g_ed.all.events[idx];
                if (filtered) {
                    bool word = false;
                    for (size_t k = 0; k + 5 <= e->msg.len && !word; k++) {
                        /* whole tokens only: the data set's words are lower-case ASCII */
                        bool start = k == 0 || !isalnum((unsigned char)e->msg.ptr[k - 1]);
                        const char *w = NULL;
                        if (start && k + 5 <= e->msg.len && !memcmp(e->msg.ptr + k, "order", 5))
                            w = "order";
                        else if (start && k + 6 <= e->msg.len &&
                                 !memcmp(e->msg.ptr + k, "failed", 6))
                            w = "failed";
                        size_t end = w ? k + strlen(w) : 0;
                        word = w && (end == e->msg.len || !isalnum((unsigned char)e->msg.ptr[end]));
                    }
                    if (e->level < QR_LEVEL_WARN || !word) continue;
                }
                int64_t b = (e->ts_ns - base) / widths[wi].ns; /* buckets from the epoch */
                if (b >= 0 && b < 4096) g_counts[b]++;
            }
            qr_buf want;
            qr_buf_init(&want);
            qr_buf_append(&want, "t,count(*)\n", 11);
            for (int64_t b = 0; b < 4096; b++) {
                if (!g_counts[b]) continue;
                char line[96], t[48];
                qr_time_format(base + b * widths[wi].ns, t, sizeof t, false);
                snprintf(line, sizeof line, "%s,%lld\n", t, (long long)g_counts[b]);
                qr_buf_append(&want, line, strlen(line));
            }
            qr_buf_u8(&want, 0);
            exec_opts o = {.threads = 2};
            exec_result *r = NULL;
            qr_diag d;
            char *got = engine_data_csv(&g_ed, query, &o, &r, &d);
            REQUIRE(got && r);
            if (strcmp(got, (const char *)want.data) != 0) {
                fprintf(stderr, "MISMATCH: %s\n--- engine:\n%s--- reference:\n%s\n", query, got,
                        (const char *)want.data);
                qr_test_cur_failures++;
            }
            CHECK(r->stats.blocks_scanned > 0); /* blocks over an edge, or filtered by words */
            if (!filtered && widths[wi].ns == 60 * QR_NS_PER_SEC) CHECK(r->stats.blocks_meta > 0);
            exec_result_free(r);
            free(got);
            qr_buf_fini(&want);
        }
    }
}

int main(void)
{
    int rc = engine_data_open(&g_ed, "engine_threads");
    if (rc) {
        fprintf(stderr, "cannot build the data set: %s\n", qr_strerror(rc));
        return 1;
    }
    RUN(random_queries_same_for_any_thread_count);
    RUN(whole_table_shapes);
    RUN(cursor_pages_same_for_any_thread_count);
    RUN(exact_float_sums);
    RUN(histogram_edge_blocks_match_reference);
    RUN(default_threads_start_late);
    RUN(limits_hold_across_threads);
    engine_data_close(&g_ed);
    QR_TEST_MAIN_END();
}

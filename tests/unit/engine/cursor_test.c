/* Cursors: paging through a result with next_cursor gives exactly the rows of one big query,
 * with no duplicate and no gap, also when newer events are ingested and memtables flushed
 * between pages; ties of the ORDER BY keys are split across pages correctly; cursors from
 * another query or damaged ones are rejected. */
#include "engine_data.h"

static engine_data g_ed;

/* The CSV rows of a result (header dropped). */
static char *csv_rows(const exec_result *r)
{
    qr_buf out;
    qr_buf_init(&out);
    exec_result_format(r, EXEC_FORMAT_CSV, &out);
    qr_buf_u8(&out, 0);
    const char *body = strchr((const char *)out.data, '\n');
    body = body ? body + 1 : "";
    size_t n = 0;
    char *s = malloc(strlen(body) + 1);
    for (const char *p = body; s && *p; p++)
        if (*p != '\r') s[n++] = *p;
    if (s) s[n] = '\0';
    qr_buf_fini(&out);
    return s;
}

static char *run_all(const char *tenant, const char *query, const exec_opts *o)
{
    exec_result *r = NULL;
    qr_diag d;
    qr_diag_init(&d);
    if (exec_run(g_ed.db, tenant, query, o, &r, &d)) {
        fprintf(stderr, "%s: %s\n", query, d.msg);
        return NULL;
    }
    CHECK(r->next_cursor == NULL); /* no LIMIT: one page */
    char *s = csv_rows(r);
    exec_result_free(r);
    return s;
}

typedef void (*between_fn)(int page_idx);

/* Pages through the query; returns the rows of all pages concatenated. */
static char *run_paged(const char *tenant, const char *query, exec_opts o, uint64_t page_rows,
                       between_fn between, int *pages_out)
{
    qr_buf all;
    qr_buf_init(&all);
    char *cursor = NULL;
    int pages = 0;
    for (;;) {
        o.cursor = cursor;
        exec_result *r = NULL;
        qr_diag d;
        qr_diag_init(&d);
        int rc = exec_run(g_ed.db, tenant, query, &o, &r, &d);
        free(cursor);
        cursor = NULL;
        if (rc) {
            fprintf(stderr, "page %d of %s: %s\n", pages, query, d.msg);
            qr_buf_fini(&all);
            return NULL;
        }
        pages++;
        /* every page but the last is full */
        if (r->next_cursor) CHECK_EQ_INT(r->row_count, page_rows);
        CHECK(r->row_count <= page_rows);
        char *rows = csv_rows(r);
        qr_buf_append(&all, rows, strlen(rows));
        free(rows);
        if (r->next_cursor) cursor = strdup(r->next_cursor);
        exec_result_free(r);
        if (!cursor || pages > 10000) break;
        if (between) between(pages);
    }
    qr_buf_u8(&all, 0);
    *pages_out = pages;
    char *s = strdup((const char *)all.data);
    qr_buf_fini(&all);
    return s;
}

static void check_same(const char *a, const char *b)
{
    REQUIRE(a && b);
    if (strcmp(a, b) != 0) {
        size_t at = 0;
        while (a[at] && a[at] == b[at]) at++;
        fprintf(stderr, "differ at byte %zu:\n  big: %.120s\n  paged: %.120s\n", at, a + at,
                b + at);
    }
    CHECK(strcmp(a, b) == 0);
}

static size_t g_next_new; /* events of g_ed.all re-ingested so far, shifted into the future */

/* New events, newer than everything: copies of old ones, 2 h later. Every third page the
 * memtable is flushed, so rows of the pages move from memtable to segment. */
static void ingest_newer(int page_idx)
{
    qr_batch b;
    qr_batch_init(&b);
    for (int k = 0; k < 150; k++) {
        size_t idx = g_next_new++ % g_ed.all.count;
        if (qr_batch_copy_event(&b, &g_ed.all, idx)) break;
        b.events[b.count - 1].ts_ns += 2 * 3600 * QR_NS_PER_SEC + (int64_t)g_next_new;
    }
    qr_diag d;
    qr_diag_init(&d);
    CHECK_EQ_INT(db_ingest_take(g_ed.db, NULL, &b, &d), 0);
    qr_batch_fini(&b);
    if (page_idx % 3 == 0) CHECK_EQ_INT(db_flush(g_ed.db, &d), 0);
}

TEST(pages_equal_one_query_under_ingest)
{
    exec_opts o = {.now_ns = ED_START_NS + 3600 * QR_NS_PER_SEC};
    /* the big answer first, before anything new arrives */
    char *big = run_all(NULL,
                        "SELECT ts, service, host, msg FROM logs WHERE level >= WARN AND "
                        "ts < '2025-06-15T01:00:00Z'",
                        &o);
    int pages = 0;
    char *paged = run_paged(NULL,
                            "SELECT ts, service, host, msg FROM logs WHERE level >= WARN AND "
                            "ts < '2025-06-15T01:00:00Z' LIMIT 97",
                            o, 97, ingest_newer, &pages);
    check_same(big, paged);
    CHECK(pages > 5);
    free(big);
    free(paged);
    /* newest first without an upper time bound: the new events are newer than page 1 */
    big = run_all(NULL, "SELECT ts, msg FROM logs WHERE service = 'payment'", &o);
    paged = run_paged(NULL, "SELECT ts, msg FROM logs WHERE service = 'payment' LIMIT 60", o, 60,
                      ingest_newer, &pages);
    check_same(big, paged);
    CHECK(pages > 3);
    free(big);
    free(paged);
    /* LogQL: the page size is the log query limit */
    exec_opts lo = o;
    lo.logql_limit = 1000000;
    big = run_all(NULL, "{level=\"ERROR\"} |= \"e\"", &lo);
    lo.logql_limit = 64;
    paged = run_paged(NULL, "{level=\"ERROR\"} |= \"e\"", lo, 64, ingest_newer, &pages);
    /* the new events (2 h later) are newer than every page: the big query saw none of them */
    check_same(big, paged);
    CHECK(pages > 3);
    free(big);
    free(paged);
}

static void flush_between(int page_idx)
{
    qr_diag d;
    qr_diag_init(&d);
    if (page_idx == 2) CHECK_EQ_INT(db_flush(g_ed.db, &d), 0);
}

/* 1000 events over 7 distinct timestamps and 3 services: ties everywhere. */
static void ingest_ties(const char *tenant)
{
    static const char *const svcs[] = {"a", "b", "c"};
    qr_diag d;
    qr_diag_init(&d);
    for (int half = 0; half < 2; half++) {
        qr_batch b;
        qr_batch_init(&b);
        for (int k = half * 500; k < half * 500 + 500; k++) {
            qr_event *e = qr_batch_push(&b);
            REQUIRE(e);
            char msg[32];
            int n = snprintf(msg, sizeof msg, "event %04d", k);
            e->ts_ns = ED_START_NS + (int64_t)((k * 7919) % 7) * QR_NS_PER_SEC;
            e->ingest_ts_ns = ED_START_NS;
            e->service = qr_batch_str(&b, svcs[k % 3], 1);
            e->host = qr_batch_str(&b, "h", 1);
            e->msg = qr_batch_str(&b, msg, (size_t)n);
            e->level = QR_LEVEL_INFO;
        }
        CHECK_EQ_INT(db_ingest_take(g_ed.db, tenant, &b, &d), 0);
        qr_batch_fini(&b);
        if (half == 0) CHECK_EQ_INT(db_flush(g_ed.db, &d), 0);
    }
}

TEST(ties_split_across_pages)
{
    exec_opts o = {0};
    static const char *const queries[][2] = {
        {"SELECT ts, msg FROM logs ORDER BY ts", "SELECT ts, msg FROM logs ORDER BY ts LIMIT 33"},
        {"SELECT service, msg FROM logs ORDER BY service DESC",
         "SELECT service, msg FROM logs ORDER BY service DESC LIMIT 41"},
        {"SELECT ts, service, msg FROM logs ORDER BY service, ts",
         "SELECT ts, service, msg FROM logs ORDER BY service, ts LIMIT 100"},
        {"SELECT msg FROM logs", "SELECT msg FROM logs LIMIT 7"},
    };
    for (size_t qi = 0; qi < sizeof queries / sizeof queries[0]; qi++) {
        /* a tenant per query: half in a segment, half in the memtable, which a flush after
         * the second page moves into a segment (parts change their layout mid-way) */
        char tenant[16];
        snprintf(tenant, sizeof tenant, "ties%zu", qi);
        ingest_ties(tenant);
        char *big = run_all(tenant, queries[qi][0], &o);
        int pages = 0;
        uint64_t page = (uint64_t)atoi(strstr(queries[qi][1], "LIMIT ") + 6);
        char *paged = run_paged(tenant, queries[qi][1], o, page, flush_between, &pages);
        check_same(big, paged);
        CHECK_EQ_INT(pages, (1000 + page - 1) / page);
        free(big);
        free(paged);
    }
}

static int run_rc(const char *query, const char *cursor, qr_diag *d, exec_result **out)
{
    exec_opts o = {.cursor = cursor};
    qr_diag_init(d);
    return exec_run(g_ed.db, NULL, query, &o, out, d);
}

TEST(bad_cursors)
{
    exec_result *r = NULL;
    qr_diag d;
    REQUIRE(run_rc("SELECT ts FROM logs LIMIT 5", NULL, &d, &r) == 0);
    REQUIRE(r->next_cursor);
    char *cur = strdup(r->next_cursor);
    exec_result_free(r);
    r = NULL;
    /* the cursor is base64url text */
    for (const char *p = cur; *p; p++)
        CHECK((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_');
    CHECK_EQ_INT(run_rc("SELECT ts FROM logs LIMIT 6", cur, &d, &r), QR_EINVAL);
    CHECK(strstr(d.msg, "another query") != NULL);
    CHECK_EQ_INT(run_rc("SELECT ts FROM logs LIMIT 5", "not a cursor!", &d, &r), QR_EINVAL);
    CHECK(strstr(d.msg, "invalid cursor") != NULL);
    char *bad = strdup(cur);
    bad[strlen(bad) / 2] = bad[strlen(bad) / 2] == 'A' ? 'B' : 'A';
    CHECK_EQ_INT(run_rc("SELECT ts FROM logs LIMIT 5", bad, &d, &r), QR_EINVAL);
    CHECK(strstr(d.msg, "invalid cursor") != NULL);
    free(bad);
    CHECK(r == NULL);
    /* the same query resumes */
    CHECK_EQ_INT(run_rc("SELECT ts FROM logs LIMIT 5", cur, &d, &r), 0);
    CHECK(r && r->row_count == 5);
    exec_result_free(r);
    r = NULL;
    free(cur);
    /* aggregates have no pages */
    REQUIRE(run_rc("SELECT service, count(*) FROM logs GROUP BY service LIMIT 2", NULL, &d, &r) ==
            0);
    CHECK(r->next_cursor == NULL);
    exec_result_free(r);
}

TEST(now_is_pinned_by_the_cursor)
{
    /* page 2 runs an hour later by the clock, but resumes the first page's window */
    const char *q = "SELECT ts FROM logs WHERE ts > now() - 5m LIMIT 100";
    exec_opts o = {.now_ns = ED_START_NS + 10 * 60 * QR_NS_PER_SEC};
    exec_result *r1 = NULL, *r2 = NULL;
    qr_diag d;
    qr_diag_init(&d);
    REQUIRE(exec_run(g_ed.db, NULL, q, &o, &r1, &d) == 0);
    REQUIRE(r1->next_cursor);
    o.now_ns += 3600 * QR_NS_PER_SEC;
    o.cursor = r1->next_cursor;
    REQUIRE(exec_run(g_ed.db, NULL, q, &o, &r2, &d) == 0);
    CHECK_EQ_INT(r2->row_count, 100);
    CHECK(r2->cells[0].v.i <= r1->cells[99].v.i);
    exec_result_free(r1);
    exec_result_free(r2);
}

/* Streams (exec_opts.page_rows, as the server's NDJSON /v1/query pages a big result): the
 * pages concatenated equal the one big result; the query's own LIMIT and OFFSET hold across
 * pages; the last page has no cursor. */
static char *run_stream(const char *query, uint64_t page_rows, int *pages_out, uint64_t *rows)
{
    qr_buf all;
    qr_buf_init(&all);
    char *cursor = NULL;
    exec_opts o = {.page_rows = page_rows};
    *rows = 0;
    int pages = 0;
    for (; pages < 10000; pages++) {
        o.cursor = cursor;
        o.rows_done = *rows;
        exec_result *r = NULL;
        qr_diag d;
        qr_diag_init(&d);
        int rc = exec_run(g_ed.db, NULL, query, &o, &r, &d);
        free(cursor);
        cursor = NULL;
        if (rc) {
            fprintf(stderr, "page %d of %s: %s\n", pages, query, d.msg);
            break;
        }
        CHECK(r->row_count <= page_rows);
        if (r->next_cursor) CHECK_EQ_INT(r->row_count, page_rows);
        *rows += r->row_count;
        char *text = csv_rows(r);
        qr_buf_append(&all, text, strlen(text));
        free(text);
        if (r->next_cursor) cursor = strdup(r->next_cursor);
        exec_result_free(r);
        if (!cursor) {
            pages++;
            break;
        }
    }
    qr_buf_u8(&all, 0);
    *pages_out = pages;
    char *s = strdup((const char *)all.data);
    qr_buf_fini(&all);
    return s;
}

TEST(stream_pages_equal_one_result)
{
    static const struct {
        const char *query;
        uint64_t page_rows;
        uint64_t want_rows; /* 0: all rows of the data set */
        int want_pages;     /* 0: ceil(rows / page_rows) */
    } cases[] = {
        {"SELECT ts, service, level, msg FROM logs", 97, 0, 0},
        {"SELECT ts, service FROM logs ORDER BY service, ts LIMIT 500 OFFSET 3", 64, 500, 8},
        {"SELECT ts, msg FROM logs WHERE msg MATCH 'timeout' ORDER BY ts ASC LIMIT 10", 64, 0, 1},
        {"SELECT ts FROM logs LIMIT 128", 64, 128, 2},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        exec_result *one = NULL;
        qr_diag d;
        qr_diag_init(&d);
        REQUIRE(exec_run(g_ed.db, NULL, cases[ci].query, NULL, &one, &d) == 0);
        char *big = csv_rows(one);
        uint64_t all = one->row_count;
        exec_result_free(one);
        int pages = 0;
        uint64_t rows = 0;
        char *streamed = run_stream(cases[ci].query, cases[ci].page_rows, &pages, &rows);
        check_same(big, streamed);
        CHECK_EQ_INT(rows, all);
        if (cases[ci].want_rows) CHECK_EQ_INT(rows, cases[ci].want_rows);
        int want_pages = cases[ci].want_pages
                             ? cases[ci].want_pages
                             : (int)((rows + cases[ci].page_rows - 1) / cases[ci].page_rows);
        if (rows % cases[ci].page_rows == 0 && !cases[ci].want_pages) want_pages++;
        CHECK_EQ_INT(pages, want_pages);
        free(big);
        free(streamed);
    }
}

int main(void)
{
    int rc = engine_data_open(&g_ed, "engine_cursor");
    if (rc) {
        fprintf(stderr, "cannot build the data set: %s\n", qr_strerror(rc));
        return 1;
    }
    RUN(bad_cursors);
    RUN(now_is_pinned_by_the_cursor);
    RUN(pages_equal_one_query_under_ingest);
    RUN(ties_split_across_pages);
    RUN(stream_pages_equal_one_result);
    engine_data_close(&g_ed);
    QR_TEST_MAIN_END();
}

/* evfilter: per-event filters of the streaming paths (tail, rollups, alerts) give the answers
 * the engine's WHERE gives — three-valued logic, levels, numbers, ts, PCRE2 regexes, MATCH. */
#include "qr_test.h"
#include "engine/engine.h"
#include "engine/evfilter.h"

static qr_event *push(qr_batch *b, const char *svc, int level, const char *msg, int64_t n)
{
    qr_event *e = qr_batch_push(b);
    e->service = qr_batch_str(b, svc, strlen(svc));
    e->msg = qr_batch_str(b, msg, strlen(msg));
    e->level = (uint8_t)level;
    qr_field f = {qr_batch_str(b, "n", 1), QR_FT_INT, {.i = n}};
    qr_batch_add_field(b, &f);
    return e;
}

TEST(logql_and_params)
{
    qr_batch b;
    qr_batch_init(&b);
    push(&b, "api", QR_LEVEL_ERROR, "GET /pay timeout after 3s", 5);
    push(&b, "api", QR_LEVEL_INFO, "GET /pay ok", 1);
    push(&b, "db", QR_LEVEL_ERROR, "connection refused", 7);
    evf *f = NULL;
    qr_diag d;
    qr_diag_init(&d);
    const char *q = "{service=~\"a.*\"} |= \"pay\" | n > 2 or level = \"info\"";
    CHECK_EQ_INT(evf_compile_logql(q, strlen(q), &f, &d), 0);
    CHECK_EQ_INT(evf_match(f, &b, &b.events[0]), 1);
    CHECK_EQ_INT(evf_match(f, &b, &b.events[1]), 1);
    CHECK_EQ_INT(evf_match(f, &b, &b.events[2]), 0);
    evf_free(f);
    CHECK_EQ_INT(evf_compile_params("db, api", "error", "connection OR timeout", &f, &d), 0);
    CHECK_EQ_INT(evf_match(f, &b, &b.events[0]), 1);
    CHECK_EQ_INT(evf_match(f, &b, &b.events[1]), 0);
    CHECK_EQ_INT(evf_match(f, &b, &b.events[2]), 1);
    evf_free(f);
    CHECK_EQ_INT(evf_compile_params(NULL, NULL, "\"connection refused\" -timeout", &f, &d), 0);
    CHECK_EQ_INT(evf_match(f, &b, &b.events[2]), 1);
    CHECK_EQ_INT(evf_match(f, &b, &b.events[0]), 0);
    evf_free(f);
    /* a /regex/ search term: compiled once, then matched event after event */
    CHECK_EQ_INT(evf_compile_params(NULL, NULL, "/time(out|d)\\s+after/", &f, &d), 0);
    for (int round = 0; round < 3; round++) {
        CHECK_EQ_INT(evf_match(f, &b, &b.events[0]), 1);
        CHECK_EQ_INT(evf_match(f, &b, &b.events[1]), 0);
        CHECK_EQ_INT(evf_match(f, &b, &b.events[2]), 0);
    }
    evf_free(f);
    q = "{service=\"x\"} | json";
    CHECK_EQ_INT(evf_compile_logql(q, strlen(q), &f, &d), QR_ESYNTAX);
    CHECK_EQ_INT(d.column, 15);
    qr_diag_init(&d);
    CHECK_EQ_INT(evf_compile_params(NULL, "loud", NULL, &f, &d), QR_EINVAL);
    qr_batch_fini(&b);
}

/* Compiles the WHERE of "SELECT 1 FROM logs WHERE <cond>" and returns the match vector of the
 * batch's events as a string of 0/1 (or "E<column>" on a compile error). */
static void where_matches(const qr_batch *b, const char *cond, char *out, size_t cap)
{
    char text[512];
    snprintf(text, sizeof text, "SELECT 1 FROM logs WHERE %s", cond);
    qr_arena a;
    qr_arena_init(&a, 0, 0);
    sql_stmt *st = NULL;
    qr_diag d;
    qr_diag_init(&d);
    evf *f = NULL;
    if (sql_parse(text, strlen(text), &a, &st, &d) ||
        evf_compile_where(text, st->u.select->where, &f, &d)) {
        snprintf(out, cap, "E%d", (int)d.column);
        qr_arena_fini(&a);
        return;
    }
    size_t n = 0;
    for (size_t idx = 0; idx < b->count && n + 1 < cap; idx++)
        out[n++] = (char)('0' + evf_match(f, b, &b->events[idx]));
    out[n] = 0;
    evf_free(f);
    qr_arena_fini(&a);
}

TEST(sql_conditions)
{
    qr_batch b;
    qr_batch_init(&b);
    push(&b, "api", QR_LEVEL_ERROR, "GET /pay timeout after 3s", 5)->ts_ns = 1750000000000000000LL;
    push(&b, "api", QR_LEVEL_INFO, "GET /pay ok id=42", 1)->ts_ns = 1750000060000000000LL;
    qr_event *e = qr_batch_push(&b); /* no field n */
    e->service = qr_batch_str(&b, "db", 2);
    e->msg = qr_batch_str(&b, "connection refused", 18);
    e->level = QR_LEVEL_WARN;
    e->ts_ns = 1750000120000000000LL;
    char got[32];
    struct {
        const char *cond, *want;
    } cases[] = {
        {"level >= WARN", "101"},
        {"n BETWEEN 2 AND 5", "100"},
        {"n NOT BETWEEN 2 AND 5", "010"}, /* NULL stays unmatched */
        {"n IS NULL", "001"},
        {"n IS NOT NULL", "110"},
        {"NOT (n > 2)", "010"}, /* NOT NULL is NULL */
        {"msg LIKE 'GET %ok%'", "010"},
        {"msg NOT LIKE 'GET%'", "001"},
        {"msg ~ 'id=\\d+$'", "010"}, /* PCRE: \d and $ */
        {"msg ~ '^(?!GET)'", "001"}, /* PCRE lookahead */
        {"service IN ('db', 'x') OR n = 5", "101"},
        {"ts >= '2025-06-15T15:07:40Z'", "011"},
        {"ts < '2025-06-15T15:07:40Z' AND msg MATCH 'timeout'", "100"},
        {"msg MATCH '/refus(ed|al)/ OR \"pay ok\"'", "011"},
        {"msg CONTAINS 'pay'", "110"},
        {"n + 1 > 2", "E26"},         /* not a field compared with a literal */
        {"msg ~ '(unclosed'", "E32"}, /* bad regex, at the pattern */
        {"msg MATCH '/(x/'", "E37"},  /* bad /regex/ term, at the term */
    };
    for (size_t idx = 0; idx < sizeof cases / sizeof cases[0]; idx++) {
        where_matches(&b, cases[idx].cond, got, sizeof got);
        if (strcmp(got, cases[idx].want) != 0)
            fprintf(stderr, "  case %s: got %s want %s\n", cases[idx].cond, got, cases[idx].want);
        CHECK_EQ_STR(got, cases[idx].want);
    }
    double num = 0;
    qr_str str = {0};
    bool is_num = false;
    CHECK(evf_event_value(&b, &b.events[0], "n", 1, &num, &str, &is_num) && is_num && num == 5);
    CHECK(!evf_event_value(&b, &b.events[2], "n", 1, &num, &str, &is_num));
    CHECK(evf_event_value(&b, &b.events[2], "service", 7, &num, &str, &is_num) && !is_num &&
          qr_str_eq_cstr(str, "db"));
    CHECK(evf_event_value(&b, &b.events[2], "level", 5, &num, &str, &is_num) &&
          qr_str_eq_cstr(str, "WARN"));
    qr_batch_fini(&b);
}

/* MATCH in a streaming filter (with its token cache and fast rejection) agrees with the
 * engine's MATCH over the same events, whatever the search, evaluated rule after rule over
 * the batch as the continuous-query managers do. */
TEST(match_agrees_with_the_engine)
{
    static const char *words[] = {"timeout", "refused", "connection", "card", "declined",
                                  "retry",   "user",    "GET",        "/api", "42"};
    qr_batch b;
    qr_batch_init(&b);
    uint64_t rng = 77;
    for (int n = 0; n < 3000; n++) {
        char msg[400];
        size_t len = 0;
        int words_n = 1 + (int)(qr_test_rand(&rng) % (n % 50 == 0 ? 80 : 12));
        for (int w = 0; w < words_n && len < 300; w++)
            len += (size_t)snprintf(msg + len, sizeof msg - len, "%s%s%s", w ? " " : "",
                                    words[qr_test_rand(&rng) % 10],
                                    qr_test_rand(&rng) % 5 == 0 ? "-x" : "");
        qr_event *e = qr_batch_push(&b);
        e->ts_ns = 1750000000000000000LL + n;
        e->service = qr_batch_str(&b, "api", 3);
        e->level = QR_LEVEL_INFO;
        e->msg = qr_batch_str(&b, msg, len);
    }
    char dir[512];
    REQUIRE(qr_test_tmpdir("evf_match", dir, sizeof dir));
    db_t *db = NULL;
    qr_diag d;
    qr_diag_init(&d);
    db_opts o;
    memset(&o, 0, sizeof o);
    o.wal.fsync_policy = WAL_FSYNC_NEVER;
    REQUIRE(db_open(dir, &o, &db, NULL, &d) == 0);
    REQUIRE(db_ingest(db, NULL, &b, &d) == 0);
    static const char *searches[] = {
        "timeout",
        "timeout refused",
        "timeout OR declined",
        "\"connection refused\"",
        "-timeout",
        "time*",
        "card -declined",
        "(retry OR user) 42",
        "x",
        "\"get api\"",
        "nothing",
        "/re.used/",
    };
    enum { NS = sizeof searches / sizeof searches[0] };
    evf *filters[NS];
    qr_arena a;
    qr_arena_init(&a, 0, 0);
    char texts[NS][200];
    for (int si = 0; si < NS; si++) {
        snprintf(texts[si], sizeof texts[si], "SELECT 1 FROM logs WHERE msg MATCH '%s'",
                 searches[si]);
        sql_stmt *st = NULL;
        REQUIRE(sql_parse(texts[si], strlen(texts[si]), &a, &st, &d) == 0);
        REQUIRE(evf_compile_where(texts[si], st->u.select->where, &filters[si], &d) == 0);
    }
    uint64_t counts[NS] = {0};
    for (int round = 0; round < 2; round++) /* the second round answers from the cache */
        for (int si = 0; si < NS; si++) {
            uint64_t n = 0;
            for (size_t idx = 0; idx < b.count; idx++)
                n += evf_match(filters[si], &b, &b.events[idx]);
            if (round) CHECK_EQ_INT(n, counts[si]);
            counts[si] = n;
        }
    for (int si = 0; si < NS; si++) {
        char q[256];
        snprintf(q, sizeof q, "SELECT count(*) FROM logs WHERE msg MATCH '%s'", searches[si]);
        exec_result *r = NULL;
        REQUIRE(exec_run(db, NULL, q, NULL, &r, &d) == 0);
        if ((uint64_t)r->cells[0].v.i != counts[si])
            fprintf(stderr, "  %s: engine %lld, filter %llu\n", searches[si],
                    (long long)r->cells[0].v.i, (unsigned long long)counts[si]);
        CHECK_EQ_INT(r->cells[0].v.i, counts[si]);
        exec_result_free(r);
        evf_free(filters[si]);
    }
    CHECK(counts[0] > 0 && counts[10] == 0);
    qr_arena_fini(&a);
    db_close(db);
    qr_test_rmdir(dir);
    qr_batch_fini(&b);
}

int main(void)
{
    RUN(logql_and_params);
    RUN(sql_conditions);
    RUN(match_agrees_with_the_engine);
    QR_TEST_MAIN_END();
}

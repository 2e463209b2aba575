/* evfilter: per-event filters of the streaming paths (tail, rollups, alerts) give the answers
 * the engine's WHERE gives — three-valued logic, levels, numbers, ts, PCRE2 regexes, MATCH. */
#include "qr_test.h"
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

int main(void)
{
    RUN(logql_and_params);
    RUN(sql_conditions);
    QR_TEST_MAIN_END();
}

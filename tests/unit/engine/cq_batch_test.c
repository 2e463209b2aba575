/* cq_batch_test — the shared per-batch path of continuous queries against the per-event path.
 *
 * 1. cq_batch alone: over random batches and random WHEREs (labels, level ranges, IN, LIKE,
 *    `~` regexes, CONTAINS, MATCH terms, phrases, prefixes and /regex/, field comparisons,
 *    IS NULL, OR, NOT), the selected events are exactly those evf_match of the whole WHERE
 *    accepts; label classes are equal exactly when the labels are; columns equal
 *    cq_agg_event_value; MATCH on a term agrees with tokenizing the message.
 * 2. The managers: two data directories get the same random definitions (rollups and alert
 *    rules with random filters, labels and aggregates) and the same random batches, late
 *    events included; one manager pair uses the shared path, the other the per-event path
 *    (rollup_opts / alert_mgr_opts .per_event). Every rollup's rows, late counts and every
 *    alert instance's value must print identically. */
#include "common/qr_arena.h"
#include "common/qr_time.h"
#include "engine/alert.h"
#include "engine/cq_agg.h"
#include "engine/cq_batch.h"
#include "engine/engine.h"
#include "engine/rollup.h"
#include "qr_test.h"
#include "storage/db.h"
#include "storage/tokenize.h"

#include <stdlib.h>
#include <string.h>

#define T0 1749945600000000000LL /* 2025-06-15T00:00:00Z */
#define SEC QR_NS_PER_SEC

static const char *const services[] = {"api", "db", "web", "Web", "", "payment-gateway-eu"};
static const char *const hosts[] = {"h1", "h2", "a-host-name-longer-than-24-bytes", "", "h10"};
static const char *const words[] = {"timeout",    "TimeOut",  "timeouts", "time",  "out",
                                    "card",       "declined", "db",       "retry", "ok",
                                    "user_id=42", "payment",  "x9",       "DONE",  "t"};

static uint64_t pick(uint64_t *rng, uint64_t n) { return qr_test_rand(rng) % n; }

/* n random events with ts in [lo, hi). */
static void events_make(uint64_t *rng, qr_batch *b, size_t n, int64_t lo, int64_t hi)
{
    for (size_t idx = 0; idx < n; idx++) {
        qr_event *e = qr_batch_push(b);
        e->ts_ns = lo + (int64_t)pick(rng, (uint64_t)(hi - lo));
        e->ingest_ts_ns = hi;
        const char *svc = services[pick(rng, 6)];
        const char *host = hosts[pick(rng, 5)];
        e->service = qr_batch_str(b, svc, strlen(svc));
        e->host = qr_batch_str(b, host, strlen(host));
        e->level = (uint8_t)pick(rng, QR_LEVEL_COUNT);
        char msg[256];
        size_t len = 0;
        uint64_t nw = pick(rng, 6);
        for (uint64_t w = 0; w < nw; w++) {
            const char *word = words[pick(rng, sizeof words / sizeof words[0])];
            len += (size_t)snprintf(msg + len, sizeof msg - len, "%s%s", w ? " " : "", word);
        }
        e->msg = qr_batch_str(b, msg, len);
        uint64_t lk = pick(rng, 5);
        qr_field lat = {.key = qr_batch_str(b, "latency_ms", 10)};
        if (lk == 0) {
            lat.type = QR_FT_INT;
            lat.v.i = (int64_t)pick(rng, 2000);
        } else if (lk == 1) {
            lat.type = QR_FT_FLOAT;
            lat.v.f = (double)pick(rng, 200000) / 100.0;
        } else if (lk == 2) {
            lat.type = QR_FT_STRING;
            lat.v.s = qr_batch_str(b, "250", 3);
        }
        if (lk <= 2) qr_batch_add_field(b, &lat);
        char user[16];
        int ulen = snprintf(user, sizeof user, "u%u", (unsigned)pick(rng, 30));
        qr_field u = {.key = qr_batch_str(b, "user", 4), .type = QR_FT_STRING};
        u.v.s = qr_batch_str(b, user, (size_t)ulen);
        if (pick(rng, 4)) qr_batch_add_field(b, &u);
        qr_field ok = {.key = qr_batch_str(b, "ok", 2), .type = QR_FT_BOOL};
        ok.v.b = pick(rng, 2) == 0;
        if (pick(rng, 2)) qr_batch_add_field(b, &ok);
    }
}

/* One random predicate (a conjunct or part of one). */
static const char *const preds[] = {
    "service = 'api'",
    "service = 'Web'",
    "service IN ('db', 'web', '')",
    "service LIKE 'pay%'",
    "service ~ '^w'",
    "host = 'h1'",
    "host != 'h2'",
    "host = 'a-host-name-longer-than-24-bytes'",
    "level >= ERROR",
    "level = 'WARN'",
    "level BETWEEN DEBUG AND INFO",
    "level < WARN",
    "msg MATCH 'timeout'",
    "msg MATCH 'TIMEOUT declined'",
    "msg MATCH '\"time out\"'",
    "msg MATCH 'time*'",
    "msg MATCH '/time[o]+ut/'",
    "msg MATCH 'user:u1*'",
    "msg MATCH 'card OR retry'",
    "msg MATCH 'NOT ok'",
    "msg CONTAINS 'out'",
    "msg ~ 'Time[Oo]ut'",
    "latency_ms > 500",
    "latency_ms <= 250",
    "latency_ms IS NULL",
    "user = 'u3'",
    "user IS NOT NULL",
    "ok = true",
    "NOT (service = 'db')",
    "(service = 'api' OR level >= WARN)",
    "(msg MATCH 'db' OR latency_ms < 100)",
};
#define NPREDS (sizeof preds / sizeof preds[0])

static void where_make(uint64_t *rng, char *out, size_t cap)
{
    size_t n = 1 + pick(rng, 3), len = 0;
    out[0] = 0;
    for (size_t idx = 0; idx < n; idx++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", idx ? " AND " : "",
                                preds[pick(rng, NPREDS)]);
}

static bool value_eq(const exec_value *a, const exec_value *b)
{
    if (a->type != b->type) return false;
    switch (a->type) {
    case EXEC_NULL:
        return true;
    case EXEC_STRING:
        return a->v.s.len == b->v.s.len &&
               (!a->v.s.len || !memcmp(a->v.s.ptr, b->v.s.ptr, a->v.s.len));
    case EXEC_FLOAT:
        return a->v.f == b->v.f;
    case EXEC_BOOL:
        return a->v.b == b->v.b;
    default:
        return a->v.i == b->v.i;
    }
}

static int token_is(void *ctx, const char *tok, size_t len, size_t offset)
{
    (void)offset;
    return len == 7 && !memcmp(tok, "timeout", 7) ? (*(int *)ctx = 1) : 0;
}

TEST(select_equals_per_event_filter)
{
    uint64_t rng = 11;
    qr_batch b;
    qr_batch_init(&b);
    cqb_batch *x = cqb_batch_new();
    REQUIRE(x);
    enum { NWHERE = 24 };
    for (int round = 0; round < 40; round++) {
        qr_batch_reset(&b);
        size_t n = round == 0 ? 0 : round == 1 ? 1 : 1 + pick(&rng, 300);
        events_make(&rng, &b, n, T0, T0 + 60 * SEC);
        /* definitions of this round: whole filter and conjuncts, one arena */
        qr_arena arena;
        qr_arena_init(&arena, 0, 0);
        evf *whole[NWHERE];
        cqb_where cw[NWHERE];
        char text[NWHERE][600];
        int nw = 0;
        for (int wi = 0; wi < NWHERE; wi++) {
            char cond[500];
            where_make(&rng, cond, sizeof cond);
            snprintf(text[nw], sizeof text[nw], "SELECT 1 FROM logs WHERE %s", cond);
            sql_stmt *st = NULL;
            qr_diag d;
            qr_diag_init(&d);
            int rc = sql_parse(text[nw], strlen(text[nw]), &arena, &st, &d);
            if (!rc) rc = evf_compile_where(text[nw], st->u.select->where, &whole[nw], &d);
            if (rc) fprintf(stderr, "%s: %s\n", text[nw], d.msg);
            REQUIRE(rc == 0);
            REQUIRE(cqb_where_compile(text[nw], st->u.select->where, &cw[nw], &d) == 0);
            nw++;
        }
        cqb_batch_begin(x, &b);
        for (int wi = 0; wi < nw; wi++) {
            const uint32_t *rows = NULL;
            size_t cnt = 0;
            REQUIRE(cqb_batch_select(x, &cw[wi], &rows, &cnt) == 0);
            size_t k = 0;
            bool same = true;
            for (size_t ei = 0; ei < b.count; ei++) {
                if (evf_match(whole[wi], &b, &b.events[ei]) != 1) continue;
                if (k >= cnt || rows[k] != ei) same = false;
                k++;
            }
            if (!same || k != cnt) fprintf(stderr, "differs: %s\n", text[wi]);
            CHECK(same && k == cnt);
        }
        /* classes: equal labels <=> equal class */
        for (int with_host = 0; with_host < 2; with_host++) {
            uint32_t ncls = 0;
            const uint16_t *cls = cqb_batch_classes(x, with_host, &ncls);
            REQUIRE(cls || b.count == 0);
            for (size_t i = 0; i < b.count; i++) {
                CHECK(cls[i] < ncls);
                for (size_t j = i + 1; j < b.count && j < i + 40; j++) {
                    const qr_event *p = &b.events[i], *q = &b.events[j];
                    bool eq = p->level == q->level && qr_str_eq(p->service, q->service) &&
                              (!with_host || qr_str_eq(p->host, q->host));
                    CHECK(eq == (cls[i] == cls[j]));
                }
            }
        }
        /* columns */
        static const char *const cols[] = {"latency_ms", "user", "ok",  "service",
                                           "level",      "host", "msg", "absent"};
        for (size_t ci = 0; ci < sizeof cols / sizeof cols[0]; ci++) {
            const exec_value *v = cqb_batch_column(x, cols[ci]);
            REQUIRE(v || b.count == 0);
            for (size_t ei = 0; ei < b.count; ei++) {
                exec_value want = cq_agg_event_value(&b, &b.events[ei], cols[ci]);
                CHECK(value_eq(&v[ei], &want));
            }
        }
        for (int wi = 0; wi < nw; wi++) {
            evf_free(whole[wi]);
            cqb_where_fini(&cw[wi]);
        }
        qr_arena_fini(&arena);
    }
    /* MATCH 'timeout' against the tokenizer, message by message (the substring prefilter
     * must never reject a message holding the token, whatever its case) */
    {
        const char *text = "SELECT 1 FROM logs WHERE msg MATCH 'timeout'";
        qr_arena arena;
        qr_arena_init(&arena, 0, 0);
        sql_stmt *st = NULL;
        qr_diag d;
        qr_diag_init(&d);
        evf *f = NULL;
        REQUIRE(sql_parse(text, strlen(text), &arena, &st, &d) == 0);
        REQUIRE(evf_compile_where(text, st->u.select->where, &f, &d) == 0);
        static const char *const msgs[] = {"timeout",
                                           "TIMEOUT!",
                                           "a-TimeOut-b",
                                           "timeouts",
                                           "time out",
                                           "xtimeout",
                                           "timeou",
                                           "",
                                           "ttimeout t",
                                           "tImEoUt=1",
                                           "timeout\xc3\xa9",
                                           "\xc3\xa9timeout",
                                           "abcdefgh timeout",
                                           "abcdefg.TIMEOUT",
                                           "0123456789abcdef-tiMeout",
                                           "a longer message without the word near it: timeou t",
                                           "a longer message, the word is at the very end: Timeout",
                                           "mmmmmmmmmmmmmmmmMMMMMMMMtimeout",
                                           "timeoutMMMMMMMMMMMMMMMM"};
        for (size_t mi = 0; mi < sizeof msgs / sizeof msgs[0]; mi++) {
            qr_batch_reset(&b);
            qr_event *e = qr_batch_push(&b);
            e->msg = qr_batch_str(&b, msgs[mi], strlen(msgs[mi]));
            int has = 0;
            qr_tokenize(msgs[mi], strlen(msgs[mi]), token_is, &has);
            if (evf_match(f, &b, e) != has) fprintf(stderr, "MATCH differs on '%s'\n", msgs[mi]);
            CHECK_EQ_INT(evf_match(f, &b, e), has);
        }
        evf_free(f);
        qr_arena_fini(&arena);
    }
    cqb_batch_free(x);
    qr_batch_fini(&b);
}

/* ---- the managers, shared path vs per-event path ------------------------------------------ */

static int64_t g_now;
static int64_t clock_ns(void *ctx)
{
    (void)ctx;
    return g_now;
}

typedef struct side {
    char dir[512];
    db_t *db;
    rollup_mgr *ru;
    alert_mgr *al;
} side;

static bool side_open(side *s, const char *name, bool per_event)
{
    memset(s, 0, sizeof *s);
    if (!qr_test_tmpdir(name, s->dir, sizeof s->dir)) return false;
    db_opts o;
    memset(&o, 0, sizeof o);
    o.block_rows = 64;
    o.wal.fsync_policy = WAL_FSYNC_NEVER;
    o.flush_age_ms = 3600 * 1000;
    qr_diag d;
    qr_diag_init(&d);
    if (db_open(s->dir, &o, &s->db, NULL, &d)) return false;
    rollup_opts ro = {.clock_ns = clock_ns, .no_thread = true, .per_event = per_event};
    if (rollup_mgr_open(s->db, &ro, &s->ru, &d)) return false;
    alert_mgr_opts ao;
    memset(&ao, 0, sizeof ao);
    ao.no_thread = true;
    ao.per_event = per_event;
    ao.clock = clock_ns;
    ao.notify.timeout_ms = 200;
    return alert_mgr_open(s->db, &ao, &s->al, &d) == 0;
}

static void side_close(side *s)
{
    alert_mgr_close(s->al);
    rollup_mgr_close(s->ru);
    db_close(s->db);
    qr_test_rmdir(s->dir);
}

/* The statement's result as CSV ("" plus a message on error). */
static char *run(side *s, const char *sql)
{
    exec_opts o;
    memset(&o, 0, sizeof o);
    o.rollups = s->ru;
    o.alerts = s->al;
    o.now_ns = g_now;
    exec_result *r = NULL;
    qr_diag d;
    qr_diag_init(&d);
    if (exec_run(s->db, NULL, sql, &o, &r, &d)) {
        fprintf(stderr, "%s\n  -> %s\n", sql, d.msg);
        return strdup("");
    }
    qr_buf b;
    qr_buf_init(&b);
    exec_result_format(r, EXEC_FORMAT_CSV, &b);
    exec_result_free(r);
    qr_buf_u8(&b, 0);
    char *out = strdup((const char *)b.data);
    qr_buf_fini(&b);
    return out;
}

static const char *const labels[] = {
    "service", "host", "level", "service, level", "service, host, level", "user", "host, user"};
static const char *const aggs[] = {
    "count(*)",        "sum(latency_ms)", "avg(latency_ms)",      "p99(latency_ms)",
    "min(latency_ms)", "max(user)",       "count_distinct(user)", "count(latency_ms)"};

static void rollup_make(uint64_t *rng, int idx, char *out, size_t cap)
{
    char where[500];
    where_make(rng, where, sizeof where);
    static const char *const ivs[] = {"10s", "1m", "5m"};
    const char *lab = labels[pick(rng, 7)];
    snprintf(out, cap,
             "CREATE ROLLUP r%d AS SELECT bucket(ts, %s) AS t, %s, %s AS a, %s AS b FROM logs "
             "%s%s GROUP BY t, %s WITH (lateness = %ds)",
             idx, ivs[pick(rng, 3)], lab, aggs[pick(rng, 8)], aggs[pick(rng, 8)],
             pick(rng, 5) ? "WHERE " : "", where, lab, (int)(10 * pick(rng, 7)));
    if (!strstr(out, "WHERE")) { /* no WHERE: cut the condition out */
        char *w = strstr(out, where);
        memmove(w, w + strlen(where), strlen(w + strlen(where)) + 1);
    }
}

static void alert_make(uint64_t *rng, int idx, char *out, size_t cap)
{
    char where[500];
    where_make(rng, where, sizeof where);
    const char *agg = aggs[pick(rng, 8)];
    if (strstr(agg, "user")) agg = "count(*)"; /* a WHEN compares numbers */
    uint64_t g = pick(rng, 8);
    char group[64] = "";
    if (g < 7) snprintf(group, sizeof group, " GROUP BY %s", labels[g]);
    snprintf(out, cap,
             "CREATE ALERT a%d AS SELECT %s FROM logs WHERE %s%s WINDOW 2m EVERY 10s WHEN %s > "
             "1000000000 NOTIFY WEBHOOK 'http://127.0.0.1:9/hook'",
             idx, agg, where, group, agg);
}

TEST(managers_shared_equals_per_event)
{
    side a, b;
    g_now = T0;
    REQUIRE(side_open(&a, "cqb_shared", false));
    REQUIRE(side_open(&b, "cqb_per_event", true));
    uint64_t rng = 5;
    enum { NRU = 16, NAL = 16 };
    for (int idx = 0; idx < NRU + NAL; idx++) {
        char sql[1200];
        if (idx < NRU)
            rollup_make(&rng, idx, sql, sizeof sql);
        else
            alert_make(&rng, idx, sql, sizeof sql);
        char *ra = run(&a, sql), *rb = run(&b, sql);
        CHECK(strlen(ra) > 0);
        CHECK_EQ_STR(ra, rb);
        free(ra);
        free(rb);
    }
    qr_batch batch;
    qr_batch_init(&batch);
    qr_diag d;
    qr_diag_init(&d);
    for (int step = 0; step < 8; step++) {
        g_now += 20 * SEC;
        for (int k = 0; k < 3; k++) {
            qr_batch_reset(&batch);
            /* mostly recent events, some minutes old (late for short lateness), a few ahead */
            events_make(&rng, &batch, 50 + pick(&rng, 400), g_now - 4 * 60 * SEC, g_now + 5 * SEC);
            REQUIRE(db_ingest(a.db, NULL, &batch, &d) == 0);
            REQUIRE(db_ingest(b.db, NULL, &batch, &d) == 0);
        }
        CHECK_EQ_INT(rollup_mgr_tick(a.ru, &d), 0);
        CHECK_EQ_INT(rollup_mgr_tick(b.ru, &d), 0);
        alert_mgr_tick(a.al, g_now, true);
        alert_mgr_tick(b.al, g_now, true);
    }
    for (int idx = 0; idx < NRU; idx++) {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT * FROM r%d", idx);
        char *ra = run(&a, sql), *rb = run(&b, sql);
        if (strcmp(ra, rb))
            fprintf(stderr, "r%d differs\n--- shared\n%s--- per event\n%s", idx, ra, rb);
        CHECK_EQ_STR(ra, rb);
        free(ra);
        free(rb);
    }
    char *ra = run(&a, "SHOW ROLLUPS"), *rb = run(&b, "SHOW ROLLUPS");
    CHECK_EQ_STR(ra, rb); /* rows, late counts */
    free(ra);
    free(rb);
    ra = run(&a, "SHOW ALERTS");
    rb = run(&b, "SHOW ALERTS");
    CHECK(strchr(ra, '\n') && strlen(ra) > 200);
    CHECK_EQ_STR(ra, rb); /* instance per group, value */
    free(ra);
    free(rb);
    qr_batch_fini(&batch);
    side_close(&a);
    side_close(&b);
}

int main(void)
{
    RUN(select_equals_per_event_filter);
    RUN(managers_shared_equals_per_event);
    QR_TEST_MAIN_END();
}

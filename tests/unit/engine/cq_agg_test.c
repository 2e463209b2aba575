/* cq_agg: aggregate states kept on the ingest path give what the engine's raw aggregation
 * gives over the same events — whether the events went into one state or were split over
 * many that were merged, and after an encode/decode round trip. */
#include "qr_test.h"
#include "engine/cq_agg.h"
#include "engine/engine.h"

#include <math.h>

static const char *aggs[] = {
    "count(*)",
    "count(latency_ms)",
    "sum(latency_ms)",
    "sum(ratio)",
    "avg(latency_ms)",
    "min(latency_ms)",
    "max(ratio)",
    "p50(latency_ms)",
    "p99(latency_ms)",
    "quantile(ratio, 0.3)",
    "count_distinct(user)",
    "count_distinct(service)",
    "count_distinct(latency_ms)",
    "min(user)",
};

static void make_events(qr_batch *b, uint64_t *rng, size_t n, uint32_t users)
{
    static const char *svcs[] = {"api", "db", "payment"};
    for (size_t idx = 0; idx < n; idx++) {
        qr_event *e = qr_batch_push(b);
        e->ts_ns = 1750000000000000000LL + (int64_t)idx * 1000000;
        e->level = (uint8_t)(1 + qr_test_rand(rng) % 6);
        const char *svc = svcs[qr_test_rand(rng) % 3];
        e->service = qr_batch_str(b, svc, strlen(svc));
        e->msg = qr_batch_str(b, "m", 1);
        uint64_t r = qr_test_rand(rng);
        if (r % 5) { /* some events have no latency_ms */
            qr_field f = {qr_batch_str(b, "latency_ms", 10),
                          QR_FT_INT,
                          {.i = (int64_t)(qr_test_rand(rng) % 100000) - 50}};
            qr_batch_add_field(b, &f);
        }
        if (r % 3 == 0) {
            qr_field f = {qr_batch_str(b, "ratio", 5),
                          QR_FT_FLOAT,
                          {.f = (double)(qr_test_rand(rng) % 1000) / 8.0}};
            qr_batch_add_field(b, &f);
        }
        char u[32];
        int ul = snprintf(u, sizeof u, "u%llu", (unsigned long long)(qr_test_rand(rng) % users));
        qr_field f = {
            qr_batch_str(b, "user", 4), QR_FT_STRING, {.s = qr_batch_str(b, u, (size_t)ul)}};
        qr_batch_add_field(b, &f);
    }
}

static bool values_equal(const exec_value *a, const exec_value *b)
{
    if (a->type != b->type) return false;
    switch (a->type) {
    case EXEC_NULL:
        return true;
    case EXEC_FLOAT:
        return a->v.f == b->v.f || fabs(a->v.f - b->v.f) <= 1e-9 * fabs(b->v.f);
    case EXEC_STRING:
        return qr_str_eq(a->v.s, b->v.s);
    default:
        return a->v.i == b->v.i;
    }
}

static int spec_of(const char *agg, cq_agg_spec *spec, qr_diag *d)
{
    char text[200];
    snprintf(text, sizeof text, "SELECT %s FROM logs", agg);
    qr_arena a;
    qr_arena_init(&a, 0, 0);
    sql_stmt *st = NULL;
    int rc = sql_parse(text, strlen(text), &a, &st, d);
    if (!rc) rc = cq_agg_spec_from_call(text, st->u.select->items[0].expr, spec, d);
    qr_arena_fini(&a);
    return rc;
}

static void check_against_raw(uint32_t users, size_t n_events, uint64_t seed)
{
    char dir[512];
    REQUIRE(qr_test_tmpdir("cq_agg", dir, sizeof dir));
    db_t *db = NULL;
    qr_diag d;
    qr_diag_init(&d);
    db_opts o;
    memset(&o, 0, sizeof o);
    o.wal.fsync_policy = WAL_FSYNC_NEVER;
    REQUIRE(db_open(dir, &o, &db, NULL, &d) == 0);
    qr_batch b;
    qr_batch_init(&b);
    uint64_t rng = seed;
    make_events(&b, &rng, n_events, users);
    REQUIRE(db_ingest(db, NULL, &b, &d) == 0);
    for (size_t ai = 0; ai < sizeof aggs / sizeof aggs[0]; ai++) {
        cq_agg_spec spec;
        REQUIRE(spec_of(aggs[ai], &spec, &d) == 0);
        char canon[200];
        cq_agg_spec_text(&spec, canon, sizeof canon);
        /* one state over everything; and 7 states over slices, merged after a round trip */
        cq_agg_state *whole = cq_agg_new(&spec), *merged = cq_agg_new(&spec);
        REQUIRE(whole && merged);
        cq_agg_state *parts[7];
        for (int p = 0; p < 7; p++) parts[p] = cq_agg_new(&spec);
        for (size_t idx = 0; idx < b.count; idx++) {
            CHECK_EQ_INT(cq_agg_add_event(&spec, whole, &b, &b.events[idx]), 0);
            CHECK_EQ_INT(cq_agg_add_event(&spec, parts[idx * 7 / b.count], &b, &b.events[idx]), 0);
        }
        for (int p = 0; p < 7; p++) {
            qr_buf enc;
            qr_buf_init(&enc);
            CHECK_EQ_INT(cq_agg_encode(&spec, parts[p], &enc), 0);
            qr_rd rd;
            qr_rd_init(&rd, enc.data, enc.len);
            cq_agg_state *back = NULL;
            CHECK_EQ_INT(cq_agg_decode(&spec, &rd, &back, &d), 0);
            CHECK_EQ_INT(qr_rd_left(&rd), 0);
            if (back) CHECK_EQ_INT(cq_agg_merge(&spec, merged, back), 0);
            cq_agg_free(back);
            cq_agg_free(parts[p]);
            qr_buf_fini(&enc);
        }
        char q[256];
        snprintf(q, sizeof q, "SELECT %s FROM logs", aggs[ai]);
        exec_result *r = NULL;
        exec_opts eo;
        memset(&eo, 0, sizeof eo);
        REQUIRE(exec_run(db, NULL, q, &eo, &r, &d) == 0);
        exec_value raw = r->cells[0];
        exec_value one = cq_agg_final(&spec, whole), many = cq_agg_final(&spec, merged);
        bool ok1 = values_equal(&one, &raw), ok2 = values_equal(&many, &raw);
        if (!ok1 || !ok2) {
            qr_buf t;
            qr_buf_init(&t);
            exec_value_text(&raw, &t);
            qr_buf_append(&t, " / ", 3);
            exec_value_text(&one, &t);
            qr_buf_append(&t, " / ", 3);
            exec_value_text(&many, &t);
            qr_buf_u8(&t, 0);
            fprintf(stderr, "  %s (%s): raw / one / merged = %s\n", aggs[ai], canon, t.data);
            qr_buf_fini(&t);
        }
        CHECK(ok1);
        CHECK(ok2);
        exec_result_free(r);
        cq_agg_free(whole);
        cq_agg_free(merged);
    }
    qr_batch_fini(&b);
    db_close(db);
    qr_test_rmdir(dir);
}

TEST(equal_to_raw_aggregation_small_distinct) { check_against_raw(300, 5000, 11); }

/* past 1,024 distinct values both sides switch to HyperLogLog over the same hashes */
TEST(equal_to_raw_aggregation_large_distinct) { check_against_raw(100000, 20000, 12); }

TEST(spec_errors_are_positioned)
{
    cq_agg_spec spec;
    qr_diag d;
    qr_diag_init(&d);
    CHECK_EQ_INT(spec_of("lower(msg)", &spec, &d), QR_ESYNTAX);
    CHECK_EQ_INT(d.column, 8);
    CHECK(strstr(d.msg, "lower() cannot be kept") != NULL);
    CHECK_EQ_INT(spec_of("rate()", &spec, &d), QR_ESYNTAX);
    CHECK(strstr(d.msg, "cannot be kept") != NULL);
    CHECK_EQ_INT(spec_of("sum(latency_ms + 1)", &spec, &d), QR_ESYNTAX);
    CHECK_EQ_INT(d.column, 12);
    CHECK_EQ_INT(spec_of("quantile(latency_ms, 0.25)", &spec, &d), 0);
    char t[64];
    cq_agg_spec_text(&spec, t, sizeof t);
    CHECK_EQ_STR(t, "quantile(latency_ms, 0.25)");
    CHECK_EQ_INT(spec_of("p95(latency_ms)", &spec, &d), 0);
    cq_agg_spec_text(&spec, t, sizeof t);
    CHECK_EQ_STR(t, "p95(latency_ms)");
}

TEST(decode_rejects_garbage)
{
    uint64_t rng = 5;
    for (int kind = 0; kind <= CQ_AGG_COUNT_DISTINCT; kind++) {
        cq_agg_spec spec;
        memset(&spec, 0, sizeof spec);
        spec.kind = (uint8_t)kind;
        spec.q = 0.5;
        strcpy(spec.field, "x");
        for (int round = 0; round < 2000; round++) {
            uint8_t bytes[40];
            size_t n = qr_test_rand(&rng) % sizeof bytes;
            for (size_t k = 0; k < n; k++) bytes[k] = (uint8_t)qr_test_rand(&rng);
            qr_rd rd;
            qr_rd_init(&rd, bytes, n);
            cq_agg_state *st = NULL;
            qr_diag d;
            qr_diag_init(&d);
            int rc = cq_agg_decode(&spec, &rd, &st, &d);
            CHECK(rc == 0 || rc == QR_ECORRUPT);
            if (rc == 0) {
                exec_value v = cq_agg_final(&spec, st); /* whatever decoded is usable */
                (void)v;
                cq_agg_free(st);
            }
        }
    }
}

int main(void)
{
    RUN(equal_to_raw_aggregation_small_distinct);
    RUN(equal_to_raw_aggregation_large_distinct);
    RUN(spec_errors_are_positioned);
    RUN(decode_rejects_garbage);
    QR_TEST_MAIN_END();
}

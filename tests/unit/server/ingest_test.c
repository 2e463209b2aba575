/* ingest: /v1/ingest and NDJSON bodies into batches — partial acceptance with indexes and
 * reasons, source defaults and fields, batch cutting, limits; bounded gzip/zstd decoding. */
#include "qr_test.h"
#include "server/ingest.h"

#include <stdarg.h>
#include <stdio.h>
#include <zlib.h>
#include <zstd.h>

typedef struct sink {
    qr_batch all;
    int emits;
    int fail_at; /* emit number that fails (1-based), 0 = never */
} sink;

static int sink_emit(void *ctx, qr_batch *b, qr_diag *d)
{
    sink *s = ctx;
    s->emits++;
    if (s->fail_at && s->emits == s->fail_at) return qr_diag_set(d, QR_EIO, "disk on fire");
    for (size_t idx = 0; idx < b->count; idx++) qr_batch_copy_event(&s->all, b, idx);
    return 0;
}

static void buf_printf(qr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(qr_buf *b, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) qr_buf_append(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static int run_json(const char *body, sink *s, ingest_result *r, qr_diag *d, uint32_t max_events,
                    size_t cut)
{
    qr_batch b;
    qr_batch_init(&b);
    memset(r, 0, sizeof *r);
    qr_diag_init(d);
    ingest_opts o = {1000, max_events, cut, sink_emit, s};
    int rc = ingest_decode_json(body, strlen(body), &o, &b, r, d);
    qr_batch_fini(&b);
    return rc;
}

static const qr_field *field_of(const qr_batch *b, const qr_event *e, const char *key)
{
    const qr_field *f = qr_event_fields(b, e);
    for (uint32_t idx = 0; idx < e->field_count; idx++)
        if (qr_str_eq_cstr(f[idx].key, key)) return &f[idx];
    return NULL;
}

TEST(partial_acceptance_and_source)
{
    sink s = {0};
    qr_batch_init(&s.all);
    ingest_result r;
    qr_diag d;
    const char *body =
        "{\"source\":{\"service\":\"pay\",\"host\":\"h1\",\"env\":\"prod\",\"k8s\":{\"ns\":\"a\"},"
        "\"tags\":[1,2]},"
        "\"logs\":[{\"level\":\"warn\",\"msg\":\"one\"}, 7, {\"msg\":\"two\",\"service\":\"own\","
        "\"env\":\"dev\"}, [], \"ERROR text line\", \"\"]}";
    REQUIRE(run_json(body, &s, &r, &d, 0, 0) == 0);
    CHECK_EQ_INT(r.accepted, 3);
    CHECK_EQ_INT(r.failed, 3);
    REQUIRE(r.error_count == 3);
    CHECK_EQ_INT(r.errors[0].index, 1);
    CHECK_EQ_INT(r.errors[1].index, 3);
    CHECK_EQ_INT(r.errors[2].index, 5);
    CHECK(strstr(r.errors[0].reason, "number") != NULL);
    CHECK(strstr(r.errors[1].reason, "array") != NULL);
    CHECK(strstr(r.errors[2].reason, "empty") != NULL);
    REQUIRE(s.all.count == 3);
    qr_event *e0 = &s.all.events[0], *e1 = &s.all.events[1], *e2 = &s.all.events[2];
    CHECK(qr_str_eq_cstr(e0->service, "pay") && qr_str_eq_cstr(e0->host, "h1"));
    CHECK_EQ_INT(e0->level, QR_LEVEL_WARN);
    CHECK(qr_str_eq_cstr(e1->service, "own")); /* the event's own service wins */
    const qr_field *env1 = field_of(&s.all, e1, "env");
    REQUIRE(env1 != NULL);
    CHECK(qr_str_eq_cstr(env1->v.s, "dev")); /* and its own field */
    const qr_field *env0 = field_of(&s.all, e0, "env");
    REQUIRE(env0 != NULL);
    CHECK(qr_str_eq_cstr(env0->v.s, "prod"));
    const qr_field *ns = field_of(&s.all, e0, "k8s.ns");
    CHECK(ns && qr_str_eq_cstr(ns->v.s, "a"));
    const qr_field *tags = field_of(&s.all, e0, "tags");
    CHECK(tags && qr_str_eq_cstr(tags->v.s, "[1,2]"));
    CHECK_EQ_INT(e2->level, QR_LEVEL_ERROR); /* strings decode as text lines */
    CHECK(qr_str_eq_cstr(e2->service, "pay"));
    CHECK(field_of(&s.all, e2, "env") != NULL);
    CHECK_EQ_INT(e0->ingest_ts_ns, 1000);
    qr_batch_fini(&s.all);
}

/* The usual body (source first) takes the one-pass decoder; with "logs" first and "source"
 * after it the general path decodes it. Both must give the same answer for the same events. */
static void run_both_orders(const char *logs, sink *s1, sink *s2, ingest_result *r1,
                            ingest_result *r2, int *rc1, int *rc2)
{
    const char *src =
        "{\"service\":\"pay\",\"host\":\"h1\",\"env\":\"prod\",\"k8s\":{\"ns\":\"a\"}}";
    qr_buf a, b;
    qr_buf_init(&a);
    qr_buf_init(&b);
    buf_printf(&a, "{\"source\": %s, \"logs\": %s}", src, logs);
    buf_printf(&b, "{\"logs\": %s, \"source\": %s}", logs, src);
    qr_buf_u8(&a, 0);
    qr_buf_u8(&b, 0);
    qr_diag d;
    *rc1 = run_json((const char *)a.data, s1, r1, &d, 0, 0);
    *rc2 = run_json((const char *)b.data, s2, r2, &d, 0, 0);
    qr_buf_fini(&a);
    qr_buf_fini(&b);
}

static bool fields_equal(const qr_batch *b1, const qr_event *e1, const qr_batch *b2,
                         const qr_event *e2)
{
    if (e1->field_count != e2->field_count) return false;
    const qr_field *f1 = qr_event_fields(b1, e1), *f2 = qr_event_fields(b2, e2);
    for (uint32_t fi = 0; fi < e1->field_count; fi++) {
        if (!qr_str_eq(f1[fi].key, f2[fi].key) || f1[fi].type != f2[fi].type) return false;
        if (f1[fi].type == QR_FT_STRING ? !qr_str_eq(f1[fi].v.s, f2[fi].v.s)
            : f1[fi].type == QR_FT_BOOL ? f1[fi].v.b != f2[fi].v.b
                                        : f1[fi].v.i != f2[fi].v.i)
            return false;
    }
    return true;
}

TEST(one_pass_matches_general_path)
{
    const char *cases[] = {
        "[{\"ts\":\"2025-06-15T14:23:01.123Z\",\"level\":\"ERROR\",\"msg\":\"card declined\","
        "\"meta\":{\"trace_id\":\"abc\",\"latency_ms\":342,\"ok\":true,\"r\":0.5,\"t\":[1,\"x\"]}},"
        "\"WARN plain text\", {\"message\":\"esc \\\"q\\\" "
        "\\u00e9\",\"Service\":\"own\",\"env\":\"dev\"},"
        "7, null, [], {\"timestamp\":1718461381123,\"severity\":3,\"host.name\":\"h2\"}, \"\","
        "{\"log.level\":\"debug\",\"service.name\":\"x\",\"msg\":\"\xff bad utf8\"},"
        "{\"msg\":\"a\",\"f1\":1,\"f2\":2,\"k8s\":{\"ns\":\"own\"}}]",
        "[]",
        "[\"only text\"]",
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        sink s1 = {0}, s2 = {0};
        qr_batch_init(&s1.all);
        qr_batch_init(&s2.all);
        ingest_result r1, r2;
        int rc1, rc2;
        run_both_orders(cases[ci], &s1, &s2, &r1, &r2, &rc1, &rc2);
        CHECK_EQ_INT(rc1, 0);
        CHECK_EQ_INT(rc2, 0);
        CHECK_EQ_INT(r1.accepted, r2.accepted);
        CHECK_EQ_INT(r1.failed, r2.failed);
        REQUIRE(r1.error_count == r2.error_count);
        for (size_t ei = 0; ei < r1.error_count; ei++) {
            CHECK_EQ_INT(r1.errors[ei].index, r2.errors[ei].index);
            CHECK(strcmp(r1.errors[ei].reason, r2.errors[ei].reason) == 0);
        }
        REQUIRE(s1.all.count == s2.all.count);
        for (size_t idx = 0; idx < s1.all.count; idx++) {
            const qr_event *e1 = &s1.all.events[idx], *e2 = &s2.all.events[idx];
            CHECK(e1->ts_ns == e2->ts_ns && e1->level == e2->level);
            CHECK(qr_str_eq(e1->service, e2->service) && qr_str_eq(e1->host, e2->host));
            CHECK(qr_str_eq(e1->msg, e2->msg));
            CHECK(fields_equal(&s1.all, e1, &s2.all, e2));
        }
        if (ci == 0) { /* and the answer itself is right */
            CHECK_EQ_INT(r1.accepted, 6);
            CHECK_EQ_INT(r1.failed, 4);
            REQUIRE(r1.error_count == 4);
            CHECK_EQ_INT(r1.errors[0].index, 3);
            CHECK_EQ_INT(r1.errors[3].index, 7);
            CHECK(qr_str_eq_cstr(s1.all.events[2].msg, "esc \"q\" \xc3\xa9"));
            CHECK(qr_str_eq_cstr(s1.all.events[2].service, "own"));
            CHECK(qr_str_eq_cstr(s1.all.events[0].service, "pay"));
            CHECK(qr_str_eq_cstr(s1.all.events[4].msg, "\xef\xbf\xbd bad utf8"));
            const qr_field *ns = field_of(&s1.all, &s1.all.events[5], "k8s.ns");
            CHECK(ns && qr_str_eq_cstr(ns->v.s, "own"));
        }
        qr_batch_fini(&s1.all);
        qr_batch_fini(&s2.all);
    }
}

TEST(one_pass_cut_and_limits)
{
    /* over cut_bytes or max_events the general path answers (several emits / 413) */
    qr_buf body;
    qr_buf_init(&body);
    buf_printf(&body, "{\"source\":{\"service\":\"s\"},\"logs\":[");
    for (int idx = 0; idx < 200; idx++)
        buf_printf(&body, "%s{\"msg\":\"event number %d\"}", idx ? "," : "", idx);
    buf_printf(&body, "]}");
    qr_buf_u8(&body, 0);
    sink s = {0};
    qr_batch_init(&s.all);
    ingest_result r;
    qr_diag d;
    CHECK_EQ_INT(run_json((const char *)body.data, &s, &r, &d, 0, 4096), 0);
    CHECK_EQ_INT(r.accepted, 200);
    CHECK(s.emits > 1);
    CHECK_EQ_INT(s.all.count, 200);
    CHECK(qr_str_eq_cstr(s.all.events[199].msg, "event number 199"));
    sink s2 = {0};
    qr_batch_init(&s2.all);
    CHECK_EQ_INT(run_json((const char *)body.data, &s2, &r, &d, 199, 0), QR_ELIMIT);
    CHECK_EQ_INT(s2.all.count, 0);
    CHECK(strstr(d.msg, "200 events") != NULL);
    qr_batch_fini(&s.all);
    qr_batch_fini(&s2.all);
    qr_buf_fini(&body);
}

TEST(body_errors)
{
    sink s = {0};
    qr_batch_init(&s.all);
    ingest_result r;
    qr_diag d;
    CHECK_EQ_INT(run_json("{\"logs\": [1,]}", &s, &r, &d, 0, 0), QR_ESYNTAX);
    CHECK_EQ_INT(d.offset, 12); /* the "]" after the comma */
    CHECK_EQ_INT(run_json("[]", &s, &r, &d, 0, 0), QR_EINVAL);
    CHECK_EQ_INT(run_json("{\"logs\": {}}", &s, &r, &d, 0, 0), QR_EINVAL);
    CHECK(strstr(d.msg, "logs") != NULL);
    CHECK_EQ_INT(run_json("{\"source\": 3, \"logs\": []}", &s, &r, &d, 0, 0), QR_EINVAL);
    CHECK_EQ_INT(run_json("{\"source\": {\"service\": 3}, \"logs\": []}", &s, &r, &d, 0, 0),
                 QR_EINVAL);
    CHECK_EQ_INT(run_json("{\"logs\": [{}, {}, {}]}", &s, &r, &d, 2, 0), QR_ELIMIT);
    CHECK_EQ_INT(s.all.count, 0); /* nothing emitted past the limit check */
    qr_batch_fini(&s.all);
}

TEST(cutting_and_emit_failure)
{
    qr_buf body;
    qr_buf_init(&body);
    const char *head = "{\"logs\":[";
    qr_buf_append(&body, head, strlen(head));
    for (int idx = 0; idx < 100; idx++) {
        char ev[64];
        int n = snprintf(ev, sizeof ev, "%s{\"msg\":\"event number %d\"}", idx ? "," : "", idx);
        qr_buf_append(&body, ev, (size_t)n);
    }
    qr_buf_append(&body, "]}", 3); /* with the NUL */
    sink s = {0};
    qr_batch_init(&s.all);
    ingest_result r;
    qr_diag d;
    REQUIRE(run_json((const char *)body.data, &s, &r, &d, 0, 1000) == 0);
    CHECK(s.emits > 3); /* cut by bytes */
    CHECK_EQ_INT(r.accepted, 100);
    CHECK_EQ_INT(s.all.count, 100);
    sink f = {0};
    f.fail_at = 2;
    qr_batch_init(&f.all);
    CHECK_EQ_INT(run_json((const char *)body.data, &f, &r, &d, 0, 1000), QR_EIO);
    CHECK(r.accepted > 0 && r.accepted < 100 && r.accepted == f.all.count);
    qr_batch_fini(&s.all);
    qr_batch_fini(&f.all);
    qr_buf_fini(&body);
}

TEST(ndjson_lines)
{
    sink s = {0};
    qr_batch_init(&s.all);
    ingest_result r;
    memset(&r, 0, sizeof r);
    qr_diag d;
    qr_diag_init(&d);
    qr_batch b;
    qr_batch_init(&b);
    const char *body = "{\"msg\":\"a\"}\r\n\n{bad\n\"str\"\n{\"msg\":\"b\",\"level\":\"error\"}";
    ingest_opts o = {1, 0, 0, sink_emit, &s};
    REQUIRE(ingest_decode_ndjson(body, strlen(body), &o, &b, &r, &d) == 0);
    CHECK_EQ_INT(r.accepted, 2);
    CHECK_EQ_INT(r.failed, 2);
    CHECK_EQ_INT(r.errors[0].index, 3);
    CHECK_EQ_INT(r.errors[1].index, 4);
    o.max_events = 4;
    CHECK_EQ_INT(ingest_decode_ndjson(body, strlen(body), &o, &b, &r, &d), QR_ELIMIT);
    qr_batch_fini(&b);
    qr_batch_fini(&s.all);
}

static void gzip_of(const char *s, size_t n, qr_buf *out)
{
    uLongf cap = compressBound(n) + 32;
    qr_buf_reserve(out, cap);
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (Bytef *)s;
    z.avail_in = (uInt)n;
    z.next_out = out->data;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    out->len = z.total_out;
    deflateEnd(&z);
}

TEST(decompress_bounded)
{
    char plain[20000];
    for (size_t idx = 0; idx < sizeof plain; idx++) plain[idx] = (char)('a' + idx % 7);
    qr_buf gz, zs, out;
    qr_buf_init(&gz);
    qr_buf_init(&zs);
    qr_buf_init(&out);
    gzip_of(plain, sizeof plain, &gz);
    qr_buf_reserve(&zs, ZSTD_compressBound(sizeof plain));
    zs.len = ZSTD_compress(zs.data, zs.cap, plain, sizeof plain, 1);
    const uint8_t *data;
    size_t len;
    qr_diag d;
    qr_diag_init(&d);
    CHECK_EQ_INT(ingest_decompress("gzip", 4, gz.data, gz.len, 1 << 20, &out, &data, &len, &d), 0);
    CHECK(len == sizeof plain && memcmp(data, plain, len) == 0);
    out.len = 0;
    CHECK_EQ_INT(ingest_decompress("zstd", 4, zs.data, zs.len, 1 << 20, &out, &data, &len, &d), 0);
    CHECK(len == sizeof plain && memcmp(data, plain, len) == 0);
    out.len = 0;
    CHECK_EQ_INT(ingest_decompress("gzip", 4, gz.data, gz.len, 1000, &out, &data, &len, &d),
                 QR_ELIMIT);
    out.len = 0;
    CHECK_EQ_INT(ingest_decompress("zstd", 4, zs.data, zs.len, 1000, &out, &data, &len, &d),
                 QR_ELIMIT);
    out.len = 0;
    CHECK_EQ_INT(ingest_decompress("gzip", 4, gz.data, gz.len / 2, 1 << 20, &out, &data, &len, &d),
                 QR_ECORRUPT);
    out.len = 0;
    CHECK_EQ_INT(ingest_decompress("zstd", 4, zs.data, zs.len / 2, 1 << 20, &out, &data, &len, &d),
                 QR_ECORRUPT);
    out.len = 0;
    CHECK_EQ_INT(ingest_decompress("br", 2, gz.data, gz.len, 1 << 20, &out, &data, &len, &d),
                 QR_EINVAL);
    CHECK_EQ_INT(
        ingest_decompress("identity", 8, (const uint8_t *)"abc", 3, 10, &out, &data, &len, &d), 0);
    CHECK(len == 3 && memcmp(data, "abc", 3) == 0);
    qr_buf_fini(&gz);
    qr_buf_fini(&zs);
    qr_buf_fini(&out);
}

int main(void)
{
    RUN(partial_acceptance_and_source);
    RUN(one_pass_matches_general_path);
    RUN(one_pass_cut_and_limits);
    RUN(body_errors);
    RUN(cutting_and_emit_failure);
    RUN(ndjson_lines);
    RUN(decompress_bounded);
    QR_TEST_MAIN_END();
}

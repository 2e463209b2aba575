#include "common/qr_time.h"
#include "qr_test.h"
#include "storage/evdec.h"

#define NOW_NS 1750000000000000000LL /* 2025-06-15T15:06:40Z */
#define TS_NS 1749997381123000000LL  /* 2025-06-15T14:23:01.123Z */

static const evdec_opts OPTS = {"svc-default", "host-default", NOW_NS};

static qr_batch B;
static qr_diag D;

/* Decodes one NDJSON line into the shared batch (reset first); returns the code. */
static int nd(const char *line)
{
    qr_batch_reset(&B);
    qr_diag_init(&D);
    return evdec_ndjson_line(line, strlen(line), &OPTS, &B, &D);
}

static int tx(const char *line)
{
    qr_batch_reset(&B);
    qr_diag_init(&D);
    return evdec_text_line(line, strlen(line), &OPTS, &B, &D);
}

static const qr_event *ev(void) { return B.count ? &B.events[B.count - 1] : NULL; }

static const qr_field *field(const char *key)
{
    const qr_event *e = ev();
    if (!e || !e->field_count) return NULL;
    const qr_field *f = qr_event_fields(&B, e);
    for (uint32_t fi = 0; fi < e->field_count; fi++)
        if (qr_str_eq_cstr(f[fi].key, key)) return &f[fi];
    return NULL;
}

static bool field_str(const char *key, const char *want)
{
    const qr_field *f = field(key);
    return f && f->type == QR_FT_STRING && qr_str_eq_cstr(f->v.s, want);
}

static bool field_int(const char *key, int64_t want)
{
    const qr_field *f = field(key);
    return f && f->type == QR_FT_INT && f->v.i == want;
}

TEST(native_shape)
{
    REQUIRE(nd("{\"ts\":\"2025-06-15T14:23:01.123Z\",\"service\":\"payment\",\"level\":\"ERROR\","
               "\"host\":\"ip-10-0-3-42\",\"msg\":\"card declined\",\"meta\":{\"trace_id\":"
               "\"abc\",\"latency_ms\":342,\"ratio\":0.5,\"ok\":true,\"gone\":null}}") == 0);
    const qr_event *e = ev();
    REQUIRE(e && B.count == 1);
    CHECK_EQ_INT(e->ts_ns, TS_NS);
    CHECK_EQ_INT(e->ingest_ts_ns, NOW_NS);
    CHECK(qr_str_eq_cstr(e->service, "payment"));
    CHECK(qr_str_eq_cstr(e->host, "ip-10-0-3-42"));
    CHECK(qr_str_eq_cstr(e->msg, "card declined"));
    CHECK_EQ_INT(e->level, QR_LEVEL_ERROR);
    CHECK_EQ_INT(e->field_count, 4);
    CHECK(field_str("trace_id", "abc"));
    CHECK(field_int("latency_ms", 342));
    CHECK(field("ratio") && field("ratio")->type == QR_FT_FLOAT && field("ratio")->v.f == 0.5);
    CHECK(field("ok") && field("ok")->type == QR_FT_BOOL && field("ok")->v.b);
    CHECK(field("gone") == NULL);
    CHECK(field("meta.trace_id") == NULL);
    /* every string lives in the batch's arena, not in the (temporary) line */
    char line[] = "{\"msg\":\"volatile\",\"k\":\"v\"}";
    REQUIRE(evdec_ndjson_line(line, strlen(line), &OPTS, &B, &D) == 0);
    memset(line, 'x', strlen(line));
    CHECK(qr_str_eq_cstr(ev()->msg, "volatile"));
    CHECK(field_str("k", "v"));
}

TEST(defaults)
{
    REQUIRE(nd("{\"msg\":\"hi\"}") == 0);
    const qr_event *e = ev();
    CHECK_EQ_INT(e->ts_ns, NOW_NS);
    CHECK(qr_str_eq_cstr(e->service, "svc-default"));
    CHECK(qr_str_eq_cstr(e->host, "host-default"));
    CHECK_EQ_INT(e->level, QR_LEVEL_UNKNOWN);
    CHECK_EQ_INT(e->field_count, 0);
    evdec_opts bare = {NULL, NULL, NOW_NS};
    qr_batch_reset(&B);
    REQUIRE(evdec_ndjson_line("{}", 2, &bare, &B, &D) == 0);
    CHECK(qr_str_eq_cstr(ev()->service, "unknown"));
    CHECK(qr_str_eq_cstr(ev()->host, ""));
    CHECK(qr_str_eq_cstr(ev()->msg, ""));
}

TEST(ts_aliases_and_forms)
{
    static const char *lines[] = {
        "{\"ts\":\"2025-06-15T14:23:01.123Z\"}",
        "{\"timestamp\":\"2025-06-15T16:23:01.123+02:00\"}",
        "{\"@timestamp\":\"2025-06-15 14:23:01.123\"}",
        "{\"time\":1749997381123}",                     /* ms */
        "{\"ts\":1749997381123000}",                    /* µs */
        "{\"ts\":1749997381123000000}",                 /* ns */
        "{\"ts\":1749997381.123}",                      /* s with fraction (float) */
        "{\"ts\":\"1749997381123\"}",                   /* numeric string */
        "{\"ts\":\"1749997381.123\"}",                  /* numeric string with fraction */
        "{\"Timestamp\":\"2025-06-15T14:23:01.123Z\"}", /* alias keys: any case */
    };
    for (size_t c = 0; c < sizeof lines / sizeof lines[0]; c++) {
        CHECK_EQ_INT(nd(lines[c]), 0);
        int64_t diff = ev()->ts_ns - TS_NS;
        if (diff < -1000 || diff > 1000) { /* floats may be off by float rounding */
            fprintf(stderr, "ts case %s: %lld\n", lines[c], (long long)ev()->ts_ns);
            CHECK(false);
        }
        CHECK(field("_ts_invalid") == NULL);
    }
    CHECK_EQ_INT(nd("{\"ts\":1749997381}"), 0);
    CHECK_EQ_INT(ev()->ts_ns, 1749997381000000000LL);
    /* unparsable or out of range: now, flagged */
    static const char *bad[] = {"{\"ts\":\"yesterday\"}",
                                "{\"ts\":\"9999-01-01T00:00:00Z\"}",
                                "{\"ts\":99999999999}",
                                "{\"ts\":1e300}",
                                "{\"ts\":\"\"}",
                                "{\"ts\":\"2025-13-15T14:23:01.123Z\"}",
                                "{\"ts\":\"2025-06-15T14:23:61.123Z\"}",
                                "{\"ts\":\"2025-06-15T14:23:01.12xZ\"}",
                                "{\"ts\":-99999999999}"};
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        CHECK_EQ_INT(nd(bad[c]), 0);
        CHECK_EQ_INT(ev()->ts_ns, NOW_NS);
        const qr_field *f = field("_ts_invalid");
        CHECK(f && f->type == QR_FT_BOOL && f->v.b);
    }
    /* a ts of the wrong type is an ordinary field, not a time */
    CHECK_EQ_INT(nd("{\"ts\":true}"), 0);
    CHECK_EQ_INT(ev()->ts_ns, NOW_NS);
    CHECK(field("ts") && field("ts")->type == QR_FT_BOOL);
    CHECK(field("_ts_invalid") == NULL);
}

TEST(level_aliases_and_normalization)
{
    static const struct {
        const char *line;
        int level;
    } cases[] = {
        {"{\"level\":\"ERROR\"}", QR_LEVEL_ERROR},
        {"{\"level\":\"error\"}", QR_LEVEL_ERROR},
        {"{\"level\":\"Warning\"}", QR_LEVEL_WARN},
        {"{\"severity\":\"crit\"}", QR_LEVEL_FATAL},
        {"{\"lvl\":\"dbg\"}", QR_LEVEL_DEBUG},
        {"{\"loglevel\":\"notice\"}", QR_LEVEL_INFO},
        {"{\"level\":\"trace\"}", QR_LEVEL_TRACE},
        {"{\"level\":\"FATAL\"}", QR_LEVEL_FATAL},
        {"{\"level\":\"I\"}", QR_LEVEL_INFO},
        {"{\"level\":3}", QR_LEVEL_ERROR},
        {"{\"level\":4}", QR_LEVEL_WARN},
        {"{\"level\":6}", QR_LEVEL_INFO},
        {"{\"level\":7}", QR_LEVEL_DEBUG},
        {"{\"level\":0}", QR_LEVEL_FATAL},
        {"{\"level\":\"5\"}", QR_LEVEL_INFO},
        {"{\"level\":42}", QR_LEVEL_UNKNOWN},
        {"{\"level\":-1}", QR_LEVEL_UNKNOWN},
        {"{\"level\":\"verbose\"}", QR_LEVEL_UNKNOWN},
        {"{\"LEVEL\":\"warn\"}", QR_LEVEL_WARN},
        {"{\"log\":{\"level\":\"warn\"}}", QR_LEVEL_WARN}, /* ECS nested */
        {"{\"log.level\":\"info\"}", QR_LEVEL_INFO},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        CHECK_EQ_INT(nd(cases[c].line), 0);
        if (ev()->level != cases[c].level) {
            fprintf(stderr, "level case %s: got %d\n", cases[c].line, ev()->level);
            CHECK(false);
        }
    }
    /* consumed level keys do not also become fields */
    CHECK_EQ_INT(nd("{\"level\":\"warn\"}"), 0);
    CHECK_EQ_INT(ev()->field_count, 0);
}

TEST(msg_service_host_aliases)
{
    CHECK_EQ_INT(nd("{\"message\":\"m1\",\"app\":\"a1\",\"hostname\":\"h1\"}"), 0);
    CHECK(qr_str_eq_cstr(ev()->msg, "m1"));
    CHECK(qr_str_eq_cstr(ev()->service, "a1"));
    CHECK(qr_str_eq_cstr(ev()->host, "h1"));
    CHECK_EQ_INT(ev()->field_count, 0);
    CHECK_EQ_INT(nd("{\"log\":\"m2\",\"service.name\":\"s2\",\"host.name\":\"h2\"}"), 0);
    CHECK(qr_str_eq_cstr(ev()->msg, "m2"));
    CHECK(qr_str_eq_cstr(ev()->service, "s2"));
    CHECK(qr_str_eq_cstr(ev()->host, "h2"));
    /* nested form; sibling keys of service.name stay fields */
    CHECK_EQ_INT(
        nd("{\"service\":{\"name\":\"s3\",\"version\":\"1.2\"},\"host\":{\"name\":\"h3\"}}"), 0);
    CHECK(qr_str_eq_cstr(ev()->service, "s3"));
    CHECK(qr_str_eq_cstr(ev()->host, "h3"));
    CHECK(field_str("service.version", "1.2"));
    CHECK(field("service.name") == NULL);
    CHECK_EQ_INT(ev()->field_count, 1);
    /* first alias wins; the second stays a field; wrong types stay fields */
    CHECK_EQ_INT(nd("{\"msg\":\"first\",\"message\":\"second\",\"service\":7}"), 0);
    CHECK(qr_str_eq_cstr(ev()->msg, "first"));
    CHECK(field_str("message", "second"));
    CHECK(qr_str_eq_cstr(ev()->service, "svc-default"));
    CHECK(field_int("service", 7));
    /* inside meta, alias names are plain fields */
    CHECK_EQ_INT(nd("{\"msg\":\"x\",\"meta\":{\"level\":\"error\",\"service\":\"inner\"}}"), 0);
    CHECK_EQ_INT(ev()->level, QR_LEVEL_UNKNOWN);
    CHECK(field_str("level", "error"));
    CHECK(field_str("service", "inner"));
}

TEST(meta_aliases_and_flattening)
{
    const char *prefixes[] = {"meta", "metadata", "attributes", "tags"};
    for (size_t c = 0; c < 4; c++) {
        char line[200];
        snprintf(line, sizeof line, "{\"%s\":{\"user_id\":\"u1\",\"http\":{\"status\":503}}}",
                 prefixes[c]);
        CHECK_EQ_INT(nd(line), 0);
        CHECK(field_str("user_id", "u1"));
        CHECK(field_int("http.status", 503));
        CHECK_EQ_INT(ev()->field_count, 2);
    }
    /* other top-level objects keep their name as a prefix, at any depth */
    CHECK_EQ_INT(nd("{\"k8s\":{\"pod\":{\"name\":\"p-1\",\"restarts\":2}},\"env\":\"prod\"}"), 0);
    CHECK(field_str("k8s.pod.name", "p-1"));
    CHECK(field_int("k8s.pod.restarts", 2));
    CHECK(field_str("env", "prod"));
    /* arrays become their compact JSON text */
    CHECK_EQ_INT(nd("{\"tags\":[\"a\", \"b\"],\"meta\":{\"ids\":[1, 2.5, {\"x\": null}]}}"), 0);
    CHECK(field_str("tags", "[\"a\",\"b\"]"));
    CHECK(field_str("ids", "[1,2.5,{\"x\":null}]"));
    /* a non-object meta is an ordinary field */
    CHECK_EQ_INT(nd("{\"meta\":\"plain\"}"), 0);
    CHECK(field_str("meta", "plain"));
    CHECK_EQ_INT(nd("{\"meta\":null,\"a\":{}}"), 0);
    CHECK_EQ_INT(ev()->field_count, 0);
}

TEST(strings_decoded_and_repaired)
{
    CHECK_EQ_INT(nd("{\"msg\":\"line1\\nline2 \\u00e9 \\ud83d\\ude00\",\"k\\u0041\":\"bad\xFF\"}"),
                 0);
    CHECK(qr_str_eq_cstr(ev()->msg, "line1\nline2 \xC3\xA9 \xF0\x9F\x98\x80"));
    CHECK(field_str("kA", "bad\xEF\xBF\xBD"));
}

/* Every failure leaves the batch exactly as it was. */
static void check_rejected(const char *line, int code, const char *msg_part, bool text)
{
    qr_batch_reset(&B);
    qr_diag_init(&D);
    REQUIRE(evdec_ndjson_line("{\"msg\":\"keep\",\"a\":1}", 20, &OPTS, &B, &D) == 0);
    size_t count = B.count, fields = B.field_count, bytes = B.bytes;
    int rc = text ? evdec_text_line(line, strlen(line), &OPTS, &B, &D)
                  : evdec_ndjson_line(line, strlen(line), &OPTS, &B, &D);
    if (rc != code || D.code != code || !strstr(D.msg, msg_part)) {
        fprintf(stderr, "reject case %.60s: rc %d msg '%s'\n", line, rc, D.msg);
        CHECK(false);
    }
    CHECK_EQ_INT(B.count, count);
    CHECK_EQ_INT(B.field_count, fields);
    CHECK_EQ_INT(B.bytes, bytes);
    CHECK(qr_str_eq_cstr(B.events[0].msg, "keep"));
    /* the next good line lands right after */
    REQUIRE(evdec_ndjson_line("{\"b\":2}", 7, &OPTS, &B, &D) == 0);
    CHECK_EQ_INT(B.count, count + 1);
    CHECK_EQ_INT(B.events[count].field_off, fields);
}

TEST(syntax_errors)
{
    check_rejected("{\"msg\": \"x\"", QR_ESYNTAX, "unexpected end of input", false);
    CHECK_EQ_INT(D.offset, 11);
    check_rejected("{\"ts\": 1, \"msg\" 2}", QR_ESYNTAX,
                   "expected ':' after object key at offset 16", false);
    CHECK_EQ_INT(D.offset, 16);
    check_rejected("[1,2]", QR_ESYNTAX, "must be a JSON object", false);
    check_rejected("  \"str\"", QR_ESYNTAX, "must be a JSON object at offset 2", false);
    CHECK_EQ_INT(D.offset, 2);
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

TEST(limits)
{
    qr_buf line;
    qr_buf_init(&line);
    char *big = repeat('m', QR_MSG_MAX_BYTES + 1);
    char *key = repeat('k', QR_KEY_MAX_BYTES + 1);
    char *label = repeat('s', QR_LABEL_MAX_BYTES + 1);

    qr_buf_clear(&line);
    qr_buf_append(&line, "{\"msg\":\"", 8);
    qr_buf_append(&line, big, strlen(big));
    qr_buf_append(&line, "\"}", 3);
    check_rejected((const char *)line.data, QR_ELIMIT, "msg is 262145 bytes, over the limit",
                   false);
    /* exactly at the limit is fine */
    qr_buf_clear(&line);
    qr_buf_append(&line, "{\"msg\":\"", 8);
    qr_buf_append(&line, big, QR_MSG_MAX_BYTES);
    qr_buf_append(&line, "\"}", 3);
    CHECK_EQ_INT(nd((const char *)line.data), 0);
    CHECK_EQ_INT(ev()->msg.len, QR_MSG_MAX_BYTES);

    qr_buf_clear(&line);
    qr_buf_append(&line, "{\"", 2);
    qr_buf_append(&line, key, strlen(key));
    qr_buf_append(&line, "\":1}", 5);
    check_rejected((const char *)line.data, QR_ELIMIT, "over the limit of 128 bytes", false);
    /* a flattened key over the limit is caught too */
    qr_buf_clear(&line);
    qr_buf_append(&line, "{\"a\":{\"", 7);
    qr_buf_append(&line, key, 127);
    qr_buf_append(&line, "\":1}}", 6);
    check_rejected((const char *)line.data, QR_ELIMIT, "is 129 bytes, over the limit of 128",
                   false);
    qr_buf_clear(&line);
    qr_buf_append(&line, "{\"", 2);
    qr_buf_append(&line, key, 128);
    qr_buf_append(&line, "\":1}", 5);
    CHECK_EQ_INT(nd((const char *)line.data), 0);

    qr_buf_clear(&line);
    qr_buf_append(&line, "{\"service\":\"", 12);
    qr_buf_append(&line, label, strlen(label));
    qr_buf_append(&line, "\"}", 3);
    check_rejected((const char *)line.data, QR_ELIMIT,
                   "service is 257 bytes, over the limit of 256", false);
    qr_buf_clear(&line);
    qr_buf_append(&line, "{\"host\":\"", 9);
    qr_buf_append(&line, label, strlen(label));
    qr_buf_append(&line, "\"}", 3);
    check_rejected((const char *)line.data, QR_ELIMIT, "host is 257 bytes, over the limit of 256",
                   false);

    qr_buf_clear(&line);
    qr_buf_append(&line, "{\"v\":\"", 6);
    qr_buf_append(&line, big, strlen(big));
    qr_buf_append(&line, "\"}", 3);
    check_rejected((const char *)line.data, QR_ELIMIT, "value of field \"v\" is 262145 bytes",
                   false);

    /* 256 fields fine, 257 rejected (meta fields and top-level fields count alike) */
    for (int extra = 0; extra <= 1; extra++) {
        qr_buf_clear(&line);
        qr_buf_append(&line, "{\"meta\":{", 9);
        for (int fi = 0; fi < 255 + extra; fi++) {
            char kv[32];
            int n = snprintf(kv, sizeof kv, "%s\"f%d\":%d", fi ? "," : "", fi, fi);
            qr_buf_append(&line, kv, (size_t)n);
        }
        qr_buf_append(&line, "},\"last\":true}", 15);
        if (extra) {
            check_rejected((const char *)line.data, QR_ELIMIT, "more than 256 fields", false);
        } else {
            CHECK_EQ_INT(nd((const char *)line.data), 0);
            CHECK_EQ_INT(ev()->field_count, 256);
        }
    }
    /* text lines: the whole line is the msg */
    check_rejected(big, QR_ELIMIT, "over the msg limit of 262144 bytes", true);
    free(big);
    free(key);
    free(label);
    qr_buf_fini(&line);
}

TEST(blank_lines)
{
    qr_batch_reset(&B);
    CHECK_EQ_INT(evdec_ndjson_line("  \r\n", 4, &OPTS, &B, &D), 0);
    CHECK_EQ_INT(evdec_ndjson_line("", 0, &OPTS, &B, &D), 0);
    CHECK_EQ_INT(evdec_text_line(" \t\n", 3, &OPTS, &B, &D), 0);
    CHECK_EQ_INT(B.count, 0);
}

TEST(text_level_guessing)
{
    static const struct {
        const char *line;
        int level;
    } cases[] = {
        {"[ERROR] db down", QR_LEVEL_ERROR},
        {"WARN: disk 91% full", QR_LEVEL_WARN},
        {"2025-06-15 14:23:01,123 INFO [main] started in 3s", QR_LEVEL_INFO},
        {"2025-06-15T14:23:01Z debug cache warmed", QR_LEVEL_DEBUG},
        {"Jun 15 14:23:01 web1 sshd[123]: error: auth failed for root", QR_LEVEL_ERROR},
        {"time=2025-06-15T14:23:01Z level=warn msg=\"slow\"", QR_LEVEL_WARN},
        {"lvl=\"error\" x=1", QR_LEVEL_ERROR},
        {"<E> kernel oops", QR_LEVEL_ERROR},
        {"[W] retrying", QR_LEVEL_WARN},
        {"(fatal) out of memory", QR_LEVEL_FATAL},
        {"CRITICAL - reactor meltdown", QR_LEVEL_FATAL},
        {"Error: ENOENT no such file", QR_LEVEL_ERROR},
        {"request done TRACE id 7", QR_LEVEL_TRACE},
        /* false positives avoided */
        {"user reported an error in checkout", QR_LEVEL_UNKNOWN},
        {"no errors found; info page rendered", QR_LEVEL_UNKNOWN},
        {"I think E is a letter", QR_LEVEL_UNKNOWN},
        {"status=error on step 3", QR_LEVEL_UNKNOWN},
        {"ERROR_CODE=7 is not a level", QR_LEVEL_UNKNOWN},
        /* first one that stands out wins */
        {"[INFO] retry after error: timeout", QR_LEVEL_INFO},
        {"the cache said warning: [ERROR] late", QR_LEVEL_WARN},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        CHECK_EQ_INT(tx(cases[c].line), 0);
        if (!ev() || ev()->level != cases[c].level) {
            fprintf(stderr, "text level case '%s': got %d\n", cases[c].line,
                    ev() ? ev()->level : -1);
            CHECK(false);
        }
    }
}

TEST(text_timestamps)
{
    static const struct {
        const char *line;
        int64_t ts_ns;
    } cases[] = {
        {"2025-06-15T14:23:01.123Z INFO x", TS_NS},
        {"2025-06-15 14:23:01,123 INFO x", TS_NS},
        {"2025-06-15 16:23:01.123+02:00 x", TS_NS},
        {"2025-06-15T16:23:01.123+0200 x", TS_NS},
        {"[2025-06-15T14:23:01.123Z] [INFO] x", TS_NS},
        {"Jun 15 14:23:01 host prog: x", 1749997381000000000LL},
        {"Jun  5 14:23:01 host prog: x", 1749997381000000000LL - 10 * 86400 * QR_NS_PER_SEC},
        /* a syslog date after now belongs to last year */
        {"Dec 31 23:59:59 host prog: x", 1735689599000000000LL},
        {"no timestamp here", NOW_NS},
        {"2025-13-45 14:23:01 bad date", NOW_NS},
        {"Foo 15 14:23:01 not a month", NOW_NS},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        CHECK_EQ_INT(tx(cases[c].line), 0);
        if (!ev() || ev()->ts_ns != cases[c].ts_ns) {
            fprintf(stderr, "text ts case '%s': got %lld\n", cases[c].line,
                    ev() ? (long long)ev()->ts_ns : -1LL);
            CHECK(false);
        }
    }
}

TEST(text_line_fields)
{
    CHECK_EQ_INT(tx("[WARN] caf\xC3\xA9 \xFF bad byte\r\n"), 0);
    const qr_event *e = ev();
    REQUIRE(e);
    CHECK(qr_str_eq_cstr(e->msg, "[WARN] caf\xC3\xA9 \xEF\xBF\xBD bad byte"));
    CHECK(qr_str_eq_cstr(e->service, "svc-default"));
    CHECK(qr_str_eq_cstr(e->host, "host-default"));
    CHECK_EQ_INT(e->ingest_ts_ns, NOW_NS);
    CHECK_EQ_INT(e->field_count, 0);
}

/* An object parsed as part of a larger document (/v1/ingest's "logs") decodes to exactly what
 * the same text decodes to as an NDJSON line — and owes nothing to the document afterwards. */
TEST(parsed_object_equals_line)
{
    static const char *events[] = {
        ("{\"ts\":\"2025-06-15T14:23:01.123Z\",\"service\":\"payment\",\"level\":\"E\","
         "\"msg\":\"card \\\"declined\\\"\\n\\u00e9t\\u00e9\",\"meta\":{\"trace_id\":"
         "\"0af7651916cd43dd8448eb211c80319c\",\"latency_ms\":342,\"ok\":false}}"),
        ("{\"message\":\"plain\",\"Severity\":\"warning\",\"http\":{\"status\":503,"
         "\"path\":\"/a\\/b\"},\"tags\":[\"x\",1],\"n\":null,\"f\":1.5}"),
        "{\"@timestamp\":1718461381,\"log\":\"\\ud83d\\ude00 emoji\",\"host\":{\"name\":\"h\"}}",
        "{}",
    };
    evdec_opts o = {"svc-default", "host-default", 1750000000000000000LL};
    qr_batch by_line, by_object;
    qr_batch_init(&by_line);
    qr_batch_init(&by_object);
    qr_buf body;
    qr_buf_init(&body);
    qr_buf_append(&body, "[", 1);
    for (size_t idx = 0; idx < sizeof events / sizeof events[0]; idx++) {
        qr_diag d;
        qr_diag_init(&d);
        CHECK_EQ_INT(evdec_ndjson_line(events[idx], strlen(events[idx]), &o, &by_line, &d), 0);
        if (idx) qr_buf_append(&body, ",", 1);
        qr_buf_append(&body, events[idx], strlen(events[idx]));
    }
    qr_buf_append(&body, "]", 1);
    {
        qr_arena arena;
        qr_arena_init(&arena, 4096, 0);
        qr_json_doc doc;
        qr_json_doc_init(&doc, &arena, NULL, 0);
        qr_json_opts jo = {QR_JSON_DEPTH_DEFAULT, body.len + 1};
        qr_diag d;
        qr_diag_init(&d);
        REQUIRE(qr_json_parse(&doc, (const char *)body.data, body.len, &jo, &d) == 0);
        const qr_json_val *arr = qr_json_root(&doc), *ev = qr_json_first(arr);
        for (uint32_t idx = 0; idx < arr->len; idx++, ev = qr_json_next(ev))
            CHECK_EQ_INT(evdec_json_object(ev, &o, &by_object, &d), 0);
        qr_json_doc_fini(&doc);
        qr_arena_fini(&arena);
    }
    memset(body.data, 'X', body.len); /* nothing may still point into the body or its doc */
    qr_buf a, b;
    qr_buf_init(&a);
    qr_buf_init(&b);
    CHECK_EQ_INT(qr_batch_encode(&by_line, &a), 0);
    CHECK_EQ_INT(qr_batch_encode(&by_object, &b), 0);
    CHECK_EQ_INT(by_object.count, sizeof events / sizeof events[0]);
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    CHECK_EQ_INT(by_line.bytes, by_object.bytes);
    qr_buf_fini(&a);
    qr_buf_fini(&b);
    qr_buf_fini(&body);
    qr_batch_fini(&by_line);
    qr_batch_fini(&by_object);
}

TEST(wal_roundtrip)
{
    /* decoded events survive the WAL encoding unchanged */
    qr_batch_reset(&B);
    const char *lines[] = {"{\"ts\":1,\"msg\":\"a\",\"meta\":{\"x\":1.5,\"y\":[1]}}",
                           "{\"level\":\"warn\",\"b\":false}"};
    for (int l = 0; l < 2; l++)
        REQUIRE(evdec_ndjson_line(lines[l], strlen(lines[l]), &OPTS, &B, &D) == 0);
    REQUIRE(evdec_text_line("[E] t", 5, &OPTS, &B, &D) == 0);
    qr_buf enc;
    qr_buf_init(&enc);
    REQUIRE(qr_batch_encode(&B, &enc) == 0);
    qr_batch back;
    qr_batch_init(&back);
    CHECK_EQ_INT(qr_batch_decode(enc.data, enc.len, &back, &D), 0);
    CHECK_EQ_INT(back.count, 3);
    CHECK_EQ_INT(back.field_count, B.field_count);
    CHECK_EQ_INT(back.events[2].level, QR_LEVEL_ERROR);
    qr_batch_fini(&back);
    qr_buf_fini(&enc);
}

int main(void)
{
    qr_batch_init(&B);
    RUN(native_shape);
    RUN(defaults);
    RUN(ts_aliases_and_forms);
    RUN(level_aliases_and_normalization);
    RUN(msg_service_host_aliases);
    RUN(meta_aliases_and_flattening);
    RUN(strings_decoded_and_repaired);
    RUN(syntax_errors);
    RUN(limits);
    RUN(blank_lines);
    RUN(text_level_guessing);
    RUN(text_timestamps);
    RUN(text_line_fields);
    RUN(wal_roundtrip);
    RUN(parsed_object_equals_line);
    qr_batch_fini(&B);
    QR_TEST_MAIN_END();
}

#include "common/qr_json.h"
#include "qr_test.h"

#include <math.h>

/* One parse with a fresh doc/arena per call; results stay valid until json_done. */
typedef struct parsed {
    qr_arena arena;
    qr_json_doc doc;
    qr_diag diag;
    int rc;
} parsed;

static void json_parse_opts(parsed *ps, const char *text, size_t len, const qr_json_opts *opts)
{
    qr_arena_init(&ps->arena, 4096, 0);
    qr_json_doc_init(&ps->doc, &ps->arena, NULL, 0);
    qr_diag_init(&ps->diag);
    ps->rc = qr_json_parse(&ps->doc, text, len, opts, &ps->diag);
}

static void json_parse(parsed *ps, const char *text)
{
    json_parse_opts(ps, text, strlen(text), NULL);
}

static void json_done(parsed *ps)
{
    qr_json_doc_fini(&ps->doc);
    qr_arena_fini(&ps->arena);
}

/* Parses and writes back compactly; returns a static buffer. */
static const char *json_roundtrip(const char *text)
{
    static char out[4096];
    parsed ps;
    json_parse(&ps, text);
    if (ps.rc) {
        snprintf(out, sizeof out, "ERROR %d: %s", ps.rc, ps.diag.msg);
    } else {
        qr_buf b;
        qr_buf_init(&b);
        qr_json_write(qr_json_root(&ps.doc), &b);
        size_t n = b.len < sizeof out - 1 ? b.len : sizeof out - 1;
        memcpy(out, b.data, n);
        out[n] = '\0';
        qr_buf_fini(&b);
    }
    json_done(&ps);
    return out;
}

static bool str_is(const qr_json_val *v, const char *s)
{
    return v && v->type == QR_JSON_STRING && v->len == strlen(s) &&
           memcmp(v->u.str, s, v->len) == 0;
}

TEST(scalars)
{
    parsed ps;
    json_parse(&ps, "  true ");
    CHECK_EQ_INT(ps.rc, 0);
    CHECK_EQ_INT(qr_json_root(&ps.doc)->type, QR_JSON_TRUE);
    json_done(&ps);
    json_parse(&ps, "false");
    CHECK_EQ_INT(qr_json_root(&ps.doc)->type, QR_JSON_FALSE);
    json_done(&ps);
    json_parse(&ps, "null");
    CHECK_EQ_INT(qr_json_root(&ps.doc)->type, QR_JSON_NULL);
    json_done(&ps);
    json_parse(&ps, "\"hi\"");
    CHECK(str_is(qr_json_root(&ps.doc), "hi"));
    json_done(&ps);
    json_parse(&ps, "\xEF\xBB\xBF{}"); /* leading BOM is skipped */
    CHECK_EQ_INT(ps.rc, 0);
    CHECK_EQ_INT(qr_json_root(&ps.doc)->type, QR_JSON_OBJECT);
    json_done(&ps);
}

TEST(objects_and_arrays)
{
    parsed ps;
    json_parse(&ps, "{\"a\": [1, 2, {\"b\": null}], \"c\": {}, \"d\": [], \"a\": \"dup\"}");
    REQUIRE(ps.rc == 0);
    const qr_json_val *root = qr_json_root(&ps.doc);
    CHECK_EQ_INT(root->type, QR_JSON_OBJECT);
    CHECK_EQ_INT(root->len, 4);
    CHECK_EQ_INT(root->skip, ps.doc.count);
    const qr_json_val *a = qr_json_obj_get(root, "a", 1);
    REQUIRE(a && a->type == QR_JSON_ARRAY);
    CHECK_EQ_INT(a->len, 3);
    CHECK_EQ_INT(qr_json_arr_at(a, 0)->u.i, 1);
    CHECK_EQ_INT(qr_json_arr_at(a, 1)->u.i, 2);
    const qr_json_val *inner = qr_json_arr_at(a, 2);
    REQUIRE(inner && inner->type == QR_JSON_OBJECT);
    CHECK(qr_json_obj_get(inner, "b", 1)->type == QR_JSON_NULL);
    CHECK(qr_json_arr_at(a, 3) == NULL);
    /* container source spans */
    CHECK_EQ_INT(a->src_len, strlen("[1, 2, {\"b\": null}]"));
    CHECK(memcmp(a->u.str, "[1, 2,", 6) == 0);
    const qr_json_val *c = qr_json_obj_get(root, "c", 1);
    CHECK(c && c->type == QR_JSON_OBJECT && c->len == 0 && c->skip == 1);
    const qr_json_val *d = qr_json_obj_get(root, "d", 1);
    CHECK(d && d->type == QR_JSON_ARRAY && d->len == 0);
    CHECK(qr_json_obj_get(root, "zz", 2) == NULL);
    /* member order and duplicates kept; obj_get returns the first */
    const qr_json_val *k = qr_json_first(root);
    for (int member = 0; member < 3; member++) k = qr_json_next(k + 1);
    CHECK(str_is(k, "a"));
    CHECK(str_is(k + 1, "dup"));
    CHECK(qr_json_next(k + 1) == root + root->skip);
    json_done(&ps);
    CHECK_EQ_STR(json_roundtrip(" [ [ ] , { } , [ [ 1 ] ] ] "), "[[],{},[[1]]]");
    CHECK_EQ_STR(json_roundtrip("{\"k\" : \"v\" , \"n\":-0}"), "{\"k\":\"v\",\"n\":0}");
}

TEST(string_views_and_copies)
{
    parsed ps;
    const char *text =
        "[\"plain ascii that is longer than sixteen bytes\", \"caf\xC3\xA9\", \"a\\nb\"]";
    json_parse(&ps, text);
    REQUIRE(ps.rc == 0);
    const qr_json_val *root = qr_json_root(&ps.doc);
    const qr_json_val *s0 = qr_json_arr_at(root, 0), *s1 = qr_json_arr_at(root, 1),
                      *s2 = qr_json_arr_at(root, 2);
    /* unchanged strings point into the input; escaped ones are decoded copies */
    CHECK(s0->u.str == text + 2 && !(s0->flags & QR_JSON_F_COPIED));
    CHECK(str_is(s1, "caf\xC3\xA9") && !(s1->flags & QR_JSON_F_COPIED));
    CHECK(str_is(s2, "a\nb") && (s2->flags & QR_JSON_F_COPIED));
    CHECK(s2->u.str < text || s2->u.str > text + strlen(text));
    json_done(&ps);
}

TEST(escapes)
{
    parsed ps;
    json_parse(&ps, "\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t u\\u0041\\u00e9\\u20AC\\u0000z\"");
    REQUIRE(ps.rc == 0);
    const qr_json_val *v = qr_json_root(&ps.doc);
    const char want[] = "q\" b\\ s/ \b\f\n\r\t uA\xC3\xA9\xE2\x82\xAC\0z";
    CHECK_EQ_INT(v->len, sizeof want - 1);
    CHECK(memcmp(v->u.str, want, sizeof want - 1) == 0);
    json_done(&ps);
}

TEST(surrogates)
{
    parsed ps;
    json_parse(&ps, "\"\\ud83d\\ude00|\\uD834\\uDD1E\""); /* U+1F600, U+1D11E */
    REQUIRE(ps.rc == 0);
    CHECK(str_is(qr_json_root(&ps.doc), "\xF0\x9F\x98\x80|\xF0\x9D\x84\x9E"));
    json_done(&ps);
    /* lone surrogates are valid JSON syntax; they become U+FFFD */
    json_parse(&ps, "\"a\\ud800b\\udc00c\\ud800\\u0041\"");
    REQUIRE(ps.rc == 0);
    CHECK(str_is(qr_json_root(&ps.doc), "a\xEF\xBF\xBD"
                                        "b\xEF\xBF\xBD"
                                        "c\xEF\xBF\xBD"
                                        "A"));
    json_done(&ps);
    json_parse(&ps, "\"\\ud800\"");
    CHECK(str_is(qr_json_root(&ps.doc), "\xEF\xBF\xBD"));
    json_done(&ps);
}

TEST(invalid_utf8_replaced)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"\"a\xFF"
         "b\"",
         "a\xEF\xBF\xBD"
         "b"},                                                        /* never-valid byte */
        {"\"\xC3\"", "\xEF\xBF\xBD"},                                 /* truncated 2-byte */
        {"\"\xC0\xAF\"", "\xEF\xBF\xBD\xEF\xBF\xBD"},                 /* overlong */
        {"\"\xED\xA0\x80\"", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* encoded surrogate */
        {"\"\xF4\x90\x80\x80\"", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* > 10FFFF */
        {"\"\x80 long enough to use the vector path\"",
         "\xEF\xBF\xBD long enough to use the vector path"},
        {"\"ok \xE2\x82\xAC \xF0\x9F\x98\x80\"", "ok \xE2\x82\xAC \xF0\x9F\x98\x80"}, /* valid */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        parsed ps;
        json_parse(&ps, cases[c].in);
        CHECK_EQ_INT(ps.rc, 0);
        if (!ps.rc) {
            const qr_json_val *v = qr_json_root(&ps.doc);
            if (!str_is(v, cases[c].want)) {
                fprintf(stderr, "case %zu: got %u bytes\n", c, v->len);
                CHECK(false);
            }
            CHECK(qr_json_utf8_valid(v->u.str, v->len));
        }
        json_done(&ps);
    }
    CHECK(!qr_json_utf8_valid("\xC3", 1));
    qr_buf b;
    qr_buf_init(&b);
    qr_json_utf8_repair("x\xC3y\xF0\x9F\x98", 6, &b);
    CHECK(b.len == 1 + 3 + 1 + 9 && memcmp(b.data, "x\xEF\xBF\xBDy", 5) == 0);
    qr_buf_fini(&b);
}

TEST(numbers)
{
    static const struct {
        const char *in;
        int type;
        int64_t i;
        double f;
    } cases[] = {
        {"0", QR_JSON_INT, 0, 0},
        {"-0", QR_JSON_INT, 0, 0},
        {"42", QR_JSON_INT, 42, 0},
        {"-17", QR_JSON_INT, -17, 0},
        {"9223372036854775807", QR_JSON_INT, INT64_MAX, 0},
        {"-9223372036854775808", QR_JSON_INT, INT64_MIN, 0},
        {"9223372036854775808", QR_JSON_FLOAT, 0, 9223372036854775808.0},
        {"123456789012345678901234567890", QR_JSON_FLOAT, 0, 1.2345678901234568e29},
        {"1.0", QR_JSON_FLOAT, 0, 1.0},
        {"3.25", QR_JSON_FLOAT, 0, 3.25},
        {"-0.5", QR_JSON_FLOAT, 0, -0.5},
        {"0.1", QR_JSON_FLOAT, 0, 0.1},
        {"1e3", QR_JSON_FLOAT, 0, 1000.0},
        {"1E+2", QR_JSON_FLOAT, 0, 100.0},
        {"25e-1", QR_JSON_FLOAT, 0, 2.5},
        {"0.000001234", QR_JSON_FLOAT, 0, 1.234e-6},
        {"1.7976931348623157e308", QR_JSON_FLOAT, 0, 1.7976931348623157e308},
        {"4.9e-324", QR_JSON_FLOAT, 0, 4.9e-324},
        {"1e-400", QR_JSON_FLOAT, 0, 0.0},
        {"3.14159265358979323846264338327950288", QR_JSON_FLOAT, 0,
         3.14159265358979323846264338327950288},
        {"12.3456789012345678901", QR_JSON_FLOAT, 0, 12.3456789012345678901},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        parsed ps;
        json_parse(&ps, cases[c].in);
        const qr_json_val *v = qr_json_root(&ps.doc);
        bool ok = ps.rc == 0 && v->type == cases[c].type &&
                  (v->type == QR_JSON_INT ? v->u.i == cases[c].i : v->u.f == cases[c].f);
        if (!ok) {
            fprintf(stderr, "number case %s: rc %d type %d\n", cases[c].in, ps.rc,
                    v ? v->type : -1);
            CHECK(false);
        }
        json_done(&ps);
    }
    /* float text written back reparses to the same double and stays a float */
    CHECK_EQ_STR(json_roundtrip("[1.0,0.1,1e300,-2.5e-7,100]"), "[1.0,0.1,1e+300,-2.5e-07,100]");
}

typedef struct err_case {
    const char *in;
    int code;
    int64_t offset;
    const char *msg_part;
} err_case;

TEST(errors_with_offsets)
{
    static const err_case cases[] = {
        {"", QR_ESYNTAX, 0, "unexpected end of input (expected a value)"},
        {"   ", QR_ESYNTAX, 3, "unexpected end of input"},
        {"{\"ts\": 1, \"msg\" 2}", QR_ESYNTAX, 16, "expected ':' after object key at offset 16"},
        {"{\"a\":1 \"b\":2}", QR_ESYNTAX, 7, "expected ',' or '}' after object member"},
        {"[1 2]", QR_ESYNTAX, 3, "expected ',' or ']' after array element"},
        {"{1:2}", QR_ESYNTAX, 1, "expected '\"' to begin an object key"},
        {"{\"a\":1,}", QR_ESYNTAX, 7, "expected '\"' to begin an object key"},
        {"[1,]", QR_ESYNTAX, 3, "expected a value"},
        {"[1,,2]", QR_ESYNTAX, 3, "expected a value"},
        {"tru", QR_ESYNTAX, 3, "unexpected end of input"},
        {"trux", QR_ESYNTAX, 0, "invalid literal"},
        {"nul!", QR_ESYNTAX, 0, "invalid literal"},
        {"01", QR_ESYNTAX, 0, "leading zero"},
        {"-", QR_ESYNTAX, 1, "expected a digit"},
        {"-a", QR_ESYNTAX, 1, "expected a digit"},
        {"1.", QR_ESYNTAX, 2, "a digit after '.'"},
        {"1.e5", QR_ESYNTAX, 2, "a digit after '.'"},
        {"1e", QR_ESYNTAX, 2, "a digit in the exponent"},
        {"1e+", QR_ESYNTAX, 3, "a digit in the exponent"},
        {"+1", QR_ESYNTAX, 0, "expected a value"},
        {".5", QR_ESYNTAX, 0, "expected a value"},
        {"1e999", QR_ESYNTAX, 0, "number out of range"},
        {"-1e999", QR_ESYNTAX, 0, "number out of range"},
        {"NaN", QR_ESYNTAX, 0, "expected a value"},
        {"'x'", QR_ESYNTAX, 0, "expected a value"},
        {"\"abc", QR_ESYNTAX, 4, "unexpected end of input (expected '\"' to end the string)"},
        {"\"a\\x\"", QR_ESYNTAX, 2, "invalid escape"},
        {"\"a\\", QR_ESYNTAX, 3, "unexpected end of input"},
        {"\"\\u12G4\"", QR_ESYNTAX, 1, "invalid \\u escape"},
        {"\"\\u12", QR_ESYNTAX, 5, "four hex digits"},
        {"\"\\ud800\\u12", QR_ESYNTAX, 11, "four hex digits"},
        {"\"a\nb\"", QR_ESYNTAX, 2, "unescaped control character"},
        {"\"a\tb\"", QR_ESYNTAX, 2, "unescaped control character"},
        {"{} {}", QR_ESYNTAX, 3, "expected end of input after the JSON value"},
        {"[1] x", QR_ESYNTAX, 4, "(found 'x')"},
        {"{\"a\" \x01", QR_ESYNTAX, 5, "(found byte 0x01)"},
        {"/* c */ 1", QR_ESYNTAX, 0, "expected a value"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        parsed ps;
        json_parse(&ps, cases[c].in);
        bool ok = ps.rc == cases[c].code && ps.diag.code == cases[c].code &&
                  ps.diag.offset == cases[c].offset && strstr(ps.diag.msg, cases[c].msg_part) &&
                  ps.doc.count == 0;
        if (!ok) {
            fprintf(stderr, "error case %zu '%s': rc %d offset %lld msg '%s'\n", c, cases[c].in,
                    ps.rc, (long long)ps.diag.offset, ps.diag.msg);
            CHECK(false);
        }
        json_done(&ps);
    }
    /* d may be NULL: the code still comes back */
    qr_arena arena;
    qr_arena_init(&arena, 0, 0);
    qr_json_doc doc;
    qr_json_doc_init(&doc, &arena, NULL, 0);
    CHECK_EQ_INT(qr_json_parse(&doc, "[1,", 3, NULL, NULL), QR_ESYNTAX);
    CHECK_EQ_INT(qr_json_parse(&doc, "[[[1]]]", 7, &(qr_json_opts){2, 0}, NULL), QR_ELIMIT);
    CHECK_EQ_INT(qr_json_parse(&doc, "[1]", 3, NULL, NULL), 0);
    qr_json_doc_fini(&doc);
    qr_arena_fini(&arena);
}

TEST(depth_and_size_limits)
{
    char deep[300];
    for (int level = 0; level < 150; level++) {
        deep[level] = '[';
        deep[299 - level] = ']';
    }
    parsed ps;
    json_parse_opts(&ps, deep, 128, &(qr_json_opts){64, 0}); /* 64 deep then truncated */
    CHECK_EQ_INT(ps.rc, QR_ELIMIT);
    CHECK_EQ_INT(ps.diag.offset, 64);
    CHECK(strstr(ps.diag.msg, "nesting deeper than 64 levels at offset 64") != NULL);
    json_done(&ps);
    char ok64[128];
    memcpy(ok64, deep, 64);
    memcpy(ok64 + 64, deep + 300 - 64, 64);
    json_parse_opts(&ps, ok64, 128, NULL); /* default depth is 64: exactly 64 nests fine */
    CHECK_EQ_INT(ps.rc, 0);
    CHECK_EQ_INT(ps.doc.count, 64);
    json_done(&ps);
    json_parse_opts(&ps, deep, 300, &(qr_json_opts){200, 0});
    CHECK_EQ_INT(ps.rc, 0);
    json_done(&ps);
    json_parse_opts(&ps, "[1,2,3]", 7, &(qr_json_opts){0, 6});
    CHECK_EQ_INT(ps.rc, QR_ELIMIT);
    CHECK(strstr(ps.diag.msg, "over the limit of 6 bytes") != NULL);
    json_done(&ps);
}

TEST(truncated_prefixes_error)
{
    const char *docs[] = {
        "{\"ts\":\"2025-06-15T14:23:01.123Z\",\"level\":\"ERROR\",\"msg\":"
        "\"a\\\"b\\u00e9\\ud83d\\ude00\","
        "\"meta\":{\"n\":-12.5e3,\"ok\":true,\"no\":false,\"z\":null,\"arr\":[1,[2,{}],\"x\"]}}",
        "[0,-1,1.5,1e2,\"caf\xC3\xA9\",{\"k\":[[]]}]",
        "\"\\u0041\"",
    };
    for (size_t doc_idx = 0; doc_idx < sizeof docs / sizeof docs[0]; doc_idx++) {
        size_t len = strlen(docs[doc_idx]);
        parsed ps;
        json_parse_opts(&ps, docs[doc_idx], len, NULL);
        CHECK_EQ_INT(ps.rc, 0);
        json_done(&ps);
        for (size_t cut = 0; cut < len; cut++) {
            /* copy into an exact-size heap buffer so ASan catches any read past the end */
            char *buf = malloc(cut ? cut : 1);
            memcpy(buf, docs[doc_idx], cut);
            json_parse_opts(&ps, buf, cut, NULL);
            if (ps.rc == 0) {
                fprintf(stderr, "prefix %zu of doc %zu parsed\n", cut, doc_idx);
                CHECK(false);
            }
            CHECK(ps.rc != 0 ? ps.diag.offset >= 0 && ps.diag.offset <= (int64_t)cut : true);
            json_done(&ps);
            free(buf);
        }
    }
}

TEST(tape_grows_past_storage)
{
    qr_arena arena;
    qr_arena_init(&arena, 0, 0);
    qr_json_val storage[4];
    qr_json_doc doc;
    qr_json_doc_init(&doc, &arena, storage, 4);
    const char *small = "[1,2]";
    CHECK_EQ_INT(qr_json_parse(&doc, small, strlen(small), NULL, NULL), 0);
    CHECK(doc.vals == storage && doc.heap == NULL);
    qr_buf text;
    qr_buf_init(&text);
    qr_buf_append(&text, "[", 1);
    for (int elem = 0; elem < 1000; elem++) qr_buf_append(&text, elem ? ",7" : "7", elem ? 2 : 1);
    qr_buf_append(&text, "]", 1);
    CHECK_EQ_INT(qr_json_parse(&doc, (const char *)text.data, text.len, NULL, NULL), 0);
    CHECK(doc.heap != NULL && doc.count == 1001);
    CHECK_EQ_INT(qr_json_root(&doc)->len, 1000);
    CHECK_EQ_INT(qr_json_arr_at(qr_json_root(&doc), 999)->u.i, 7);
    qr_buf_fini(&text);
    qr_json_doc_fini(&doc);
    qr_json_doc_fini(NULL);
    qr_arena_fini(&arena);
}

TEST(writer_escapes)
{
    qr_buf b;
    qr_buf_init(&b);
    qr_json_write_str(&b, "a\"\\\n\t\x01\xFFz", 8);
    CHECK(b.len == strlen("\"a\\\"\\\\\\n\\t\\u0001\xEF\xBF\xBDz\""));
    CHECK(memcmp(b.data, "\"a\\\"\\\\\\n\\t\\u0001\xEF\xBF\xBDz\"", b.len) == 0);
    qr_buf_clear(&b);
    qr_json_write_double(&b, NAN);
    qr_json_write_double(&b, 2.0);
    CHECK(b.len == 7 && memcmp(b.data, "null2.0", 7) == 0);
    qr_buf_fini(&b);
    CHECK_EQ_STR(json_roundtrip("{\"s\":\"\\u0001\\ud83d\\ude00\",\"b\":[true,false,null]}"),
                 "{\"s\":\"\\u0001\xF0\x9F\x98\x80\",\"b\":[true,false,null]}");
}

int main(void)
{
    RUN(scalars);
    RUN(objects_and_arrays);
    RUN(string_views_and_copies);
    RUN(escapes);
    RUN(surrogates);
    RUN(invalid_utf8_replaced);
    RUN(numbers);
    RUN(errors_with_offsets);
    RUN(depth_and_size_limits);
    RUN(truncated_prefixes_error);
    RUN(tape_grows_past_storage);
    RUN(writer_escapes);
    QR_TEST_MAIN_END();
}

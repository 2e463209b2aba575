/* qr_batch_encode / qr_batch_decode: round trips with edge values, rejection of bad bytes. */
#include "batch_gen.h"
#include "qr_test.h"
#include "storage/event.h"

#include <float.h>
#include <math.h>

static bool roundtrip(const qr_batch *in, qr_batch *out)
{
    qr_buf buf;
    qr_buf_init(&buf);
    int rc = qr_batch_encode(in, &buf);
    qr_diag d;
    qr_diag_init(&d);
    bool ok = rc == 0 && qr_batch_decode(buf.data, buf.len, out, &d) == 0;
    if (!ok) fprintf(stderr, "roundtrip: rc=%d %s\n", rc, d.msg);
    qr_buf_fini(&buf);
    return ok && batch_gen_equal(in, out);
}

TEST(empty_batch)
{
    qr_batch in, out;
    qr_batch_init(&in);
    qr_batch_init(&out);
    CHECK(roundtrip(&in, &out));
    CHECK_EQ_INT(out.count, 0);
    qr_batch_fini(&in);
    qr_batch_fini(&out);
}

TEST(edge_values)
{
    qr_batch in, out;
    qr_batch_init(&in);
    qr_batch_init(&out);
    static const int64_t ts[] = {0, -1, INT64_MIN, INT64_MAX, 1749997381123456789LL, -5};
    for (size_t row = 0; row < sizeof ts / sizeof ts[0]; row++) {
        qr_event *e = qr_batch_push(&in);
        e->ts_ns = ts[row];
        /* wraps in the delta: ingest - ts overflows int64 for the extremes */
        e->ingest_ts_ns = ts[(row + 3) % 6];
        e->level = (uint8_t)(row % QR_LEVEL_COUNT);
        /* empty strings everywhere in row 0 */
        if (row > 0) {
            e->service = qr_batch_str(&in, "svc", 3);
            e->host = qr_batch_str(&in, "h\0st", 4); /* embedded NUL survives */
        }
        qr_field f;
        memset(&f, 0, sizeof f);
        f.key = qr_batch_str(&in, "", 0);
        f.type = QR_FT_NULL;
        qr_batch_add_field(&in, &f);
        f.key = qr_batch_str(&in, "i", 1);
        f.type = QR_FT_INT;
        f.v.i = row % 2 ? INT64_MIN : INT64_MAX;
        qr_batch_add_field(&in, &f);
        f.type = QR_FT_FLOAT;
        static const double floats[] = {0.0, -0.0, DBL_MAX, -DBL_MIN, INFINITY, NAN};
        f.v.f = floats[row];
        qr_batch_add_field(&in, &f);
        f.type = QR_FT_BOOL;
        f.v.b = row % 2;
        qr_batch_add_field(&in, &f);
        f.type = QR_FT_STRING;
        f.v.s = qr_batch_str(&in, "", 0);
        qr_batch_add_field(&in, &f);
    }
    CHECK(roundtrip(&in, &out));
    qr_batch_fini(&in);
    qr_batch_fini(&out);
}

TEST(max_sizes)
{
    /* message and field values at the limits, labels and keys at theirs, 256 fields */
    qr_batch in, out;
    qr_batch_init(&in);
    qr_batch_init(&out);
    char *big = malloc(QR_MSG_MAX_BYTES);
    REQUIRE(big);
    for (size_t pos = 0; pos < QR_MSG_MAX_BYTES; pos++) big[pos] = (char)('a' + pos % 26);
    char label[QR_LABEL_MAX_BYTES], key[QR_KEY_MAX_BYTES];
    memset(label, 'L', sizeof label);
    memset(key, 'K', sizeof key);
    qr_event *e = qr_batch_push(&in);
    e->msg = qr_batch_str(&in, big, QR_MSG_MAX_BYTES);
    e->service = qr_batch_str(&in, label, sizeof label);
    e->host = qr_batch_str(&in, label, sizeof label);
    for (int fi = 0; fi < QR_FIELDS_MAX; fi++) {
        qr_field f;
        memset(&f, 0, sizeof f);
        key[0] = (char)('A' + fi % 26);
        f.key = qr_batch_str(&in, key, sizeof key);
        f.type = fi == 0 ? QR_FT_STRING : QR_FT_INT;
        if (fi == 0)
            f.v.s = qr_batch_str(&in, big, QR_MSG_MAX_BYTES);
        else
            f.v.i = -fi;
        CHECK_EQ_INT(qr_batch_add_field(&in, &f), 0);
    }
    CHECK(roundtrip(&in, &out));

    /* one byte over a limit: the encoder refuses (the decoder would reject it) */
    qr_buf buf;
    qr_buf_init(&buf);
    in.events[0].service.len = QR_LABEL_MAX_BYTES + 1;
    in.events[0].service.ptr = big;
    CHECK_EQ_INT(qr_batch_encode(&in, &buf), QR_ELIMIT);
    in.events[0].service.len = 0;
    in.events[0].msg.ptr = big;
    in.events[0].msg.len = QR_MSG_MAX_BYTES + 0; /* still fine */
    CHECK_EQ_INT(qr_batch_encode(&in, &buf), 0);
    in.events[0].level = QR_LEVEL_COUNT;
    qr_buf_clear(&buf);
    CHECK_EQ_INT(qr_batch_encode(&in, &buf), QR_EINVAL);
    CHECK_EQ_INT(buf.len, 0);
    qr_buf_fini(&buf);
    free(big);
    qr_batch_fini(&in);
    qr_batch_fini(&out);
}

TEST(generated_batches)
{
    qr_batch in, out;
    qr_batch_init(&in);
    qr_batch_init(&out);
    for (uint64_t seed = 1; seed <= 40; seed++) {
        qr_batch_reset(&in);
        qr_batch_reset(&out);
        batch_gen_fill(&in, seed, (size_t)(seed * 37 % 300));
        CHECK(roundtrip(&in, &out));
    }
    qr_batch_fini(&in);
    qr_batch_fini(&out);
}

TEST(decode_rejects_truncation_and_garbage)
{
    qr_batch in, out;
    qr_batch_init(&in);
    qr_batch_init(&out);
    batch_gen_fill(&in, 7, 20);
    qr_buf buf;
    qr_buf_init(&buf);
    REQUIRE(qr_batch_encode(&in, &buf) == 0);
    /* every strict prefix is rejected, never crashes */
    for (size_t len = 0; len < buf.len; len++) {
        qr_batch_reset(&out);
        qr_diag d;
        qr_diag_init(&d);
        CHECK_EQ_INT(qr_batch_decode(buf.data, len, &out, &d), QR_ECORRUPT);
    }
    /* trailing byte */
    qr_buf_u8(&buf, 0);
    qr_batch_reset(&out);
    CHECK_EQ_INT(qr_batch_decode(buf.data, buf.len, &out, NULL), QR_ECORRUPT);
    /* a huge event count is refused before allocating */
    qr_buf bad;
    qr_buf_init(&bad);
    qr_buf_u32(&bad, 0x31544251u);
    qr_buf_uvarint(&bad, 1ULL << 40);
    qr_batch_reset(&out);
    CHECK_EQ_INT(qr_batch_decode(bad.data, bad.len, &out, NULL), QR_ECORRUPT);
    qr_buf_fini(&bad);
    qr_buf_fini(&buf);
    qr_batch_fini(&in);
    qr_batch_fini(&out);
}

static void add_str_field(qr_batch *b, const char *key, const char *val, size_t len)
{
    qr_field f;
    memset(&f, 0, sizeof f);
    f.key = qr_batch_str(b, key, strlen(key));
    f.type = QR_FT_STRING;
    f.v.s = qr_batch_str(b, val, len);
    qr_batch_add_field(b, &f);
}

/* Version 2 sends hex ids as bytes and labels once: every shape of string value survives
 * exactly (case, odd lengths, non-hex, long ids), and repeated labels make the batch small. */
TEST(v2_strings_round_trip_exactly)
{
    static const char *const vals[] = {
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "4BF92F3577B34DA6A3CE929D0E0E4736",
        "4bf92f3577b34da6a3ce929d0e0e473",
        "00",
        "0",
        "",
        "ab",
        "aB",
        "g0",
        "deadbeef ",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef00",
        "GET",
        "a value longer than the reference limit of the table",
    };
    const size_t nvals = sizeof vals / sizeof vals[0];
    qr_batch in, out;
    qr_batch_init(&in);
    qr_batch_init(&out);
    for (size_t row = 0; row < 3 * nvals; row++) {
        qr_event *e = qr_batch_push(&in);
        e->ts_ns = 1750000000000000000LL + (int64_t)row * 1000;
        e->ingest_ts_ns = 1750000000500000000LL; /* one ingest time per batch, as ingest does */
        e->level = QR_LEVEL_INFO;
        e->service = qr_batch_str(&in, row % 2 ? "api" : "db", row % 2 ? 3 : 2);
        e->host = qr_batch_str(&in, "host-1", 6);
        e->msg = qr_batch_str(&in, "m", 1);
        add_str_field(&in, "v", vals[row % nvals], strlen(vals[row % nvals]));
        add_str_field(&in, "nul", "a\0b", 3);
    }
    CHECK(roundtrip(&in, &out));
    qr_buf buf;
    qr_buf_init(&buf);
    REQUIRE(qr_batch_encode(&in, &buf) == 0);
    /* labels and keys once, not per event: well under the v1 size (which spelled out
     * service, host, both keys and every value per event) */
    size_t v1_bytes = 0;
    for (size_t row = 0; row < in.count; row++)
        v1_bytes += 1 + 2 + 1 + 3 + 7 + 2 + 1 + 2 + 1 + 1 + strlen(vals[row % nvals]) + 5 + 4;
    CHECK(buf.len < v1_bytes * 3 / 4);
    qr_buf_fini(&buf);
    qr_batch_fini(&in);
    qr_batch_fini(&out);
}

/* More distinct strings than the table holds: later ones travel as literals, same events. */
TEST(v2_string_table_overflow)
{
    qr_batch in, out;
    qr_batch_init(&in);
    qr_batch_init(&out);
    char name[32];
    for (size_t row = 0; row < 10000; row++) {
        qr_event *e = qr_batch_push(&in);
        e->ts_ns = (int64_t)row;
        int n = snprintf(name, sizeof name, "host-%zu", row % 6000);
        e->host = qr_batch_str(&in, name, (size_t)n);
        e->service = qr_batch_str(&in, "svc", 3);
        n = snprintf(name, sizeof name, "k%zu", row % 700);
        add_str_field(&in, name, name, (size_t)n);
    }
    CHECK(roundtrip(&in, &out));
    qr_batch_fini(&in);
    qr_batch_fini(&out);
}

/* WAL files written before version 2 still replay: a hand-built "QBT1" batch. */
TEST(v1_batches_still_decode)
{
    qr_buf buf;
    qr_buf_init(&buf);
    qr_buf_u32(&buf, 0x31544251u);
    qr_buf_uvarint(&buf, 2);
    for (int row = 0; row < 2; row++) {
        qr_buf_svarint(&buf, row ? 5 : 1000); /* ts 1000, 1005 */
        qr_buf_svarint(&buf, 7);              /* ingest = ts + 7 */
        qr_buf_u8(&buf, QR_LEVEL_WARN);
        qr_buf_bytes(&buf, "svc", 3);
        qr_buf_bytes(&buf, "h", 1);
        qr_buf_bytes(&buf, "hello", 5);
        qr_buf_uvarint(&buf, 1);
        qr_buf_bytes(&buf, "trace_id", 8);
        qr_buf_u8(&buf, QR_FT_STRING);
        qr_buf_bytes(&buf, "abcd", 4);
    }
    qr_batch out;
    qr_batch_init(&out);
    qr_diag d;
    qr_diag_init(&d);
    REQUIRE(qr_batch_decode(buf.data, buf.len, &out, &d) == 0);
    CHECK_EQ_INT(out.count, 2);
    CHECK(out.events[1].ts_ns == 1005 && out.events[1].ingest_ts_ns == 1012);
    CHECK(qr_str_eq_cstr(out.events[1].service, "svc"));
    CHECK(qr_str_eq_cstr(out.fields[1].v.s, "abcd"));
    /* the v2 value types are not part of v1 */
    buf.data[buf.len - 6] = 5;
    qr_batch_reset(&out);
    CHECK_EQ_INT(qr_batch_decode(buf.data, buf.len, &out, NULL), QR_ECORRUPT);
    qr_batch_fini(&out);
    qr_buf_fini(&buf);
}

/* A reference to a string the batch has not defined is corruption, not a crash. */
TEST(v2_bad_reference_rejected)
{
    qr_buf buf;
    qr_buf_init(&buf);
    qr_buf_u32(&buf, 0x32544251u);
    qr_buf_uvarint(&buf, 1);
    qr_buf_svarint(&buf, 1);
    qr_buf_svarint(&buf, 1);
    qr_buf_u8(&buf, QR_LEVEL_INFO);
    qr_buf_uvarint(&buf, 0); /* service: literal "s" */
    qr_buf_bytes(&buf, "s", 1);
    qr_buf_uvarint(&buf, 2); /* host: entry 1, which does not exist */
    qr_buf_bytes(&buf, "msg", 3);
    qr_buf_uvarint(&buf, 0);
    qr_batch out;
    qr_batch_init(&out);
    CHECK_EQ_INT(qr_batch_decode(buf.data, buf.len, &out, NULL), QR_ECORRUPT);
    buf.data[4 + 1 + 1 + 1 + 1 + 1 + 1 + 1] = 1; /* host = entry 0 ("s"): fine */
    qr_batch_reset(&out);
    REQUIRE(qr_batch_decode(buf.data, buf.len, &out, NULL) == 0);
    CHECK(qr_str_eq_cstr(out.events[0].host, "s"));
    qr_batch_fini(&out);
    qr_buf_fini(&buf);
}

/* Two batches made one without copying strings: events, fields and strings intact, the
 * source's arena moved over (its strings live on after the source is freed). */
TEST(absorb_moves_events_and_strings)
{
    qr_batch a, b;
    qr_batch_init(&a);
    qr_batch_init(&b);
    for (int idx = 0; idx < 3; idx++) {
        qr_batch *dst = idx < 1 ? &a : &b;
        qr_event *e = qr_batch_push(dst);
        REQUIRE(e != NULL);
        char msg[32];
        snprintf(msg, sizeof msg, "message %d", idx);
        e->ts_ns = idx;
        e->msg = qr_batch_str(dst, msg, strlen(msg));
        e->service = qr_batch_str(dst, "svc", 3);
        for (int fi = 0; fi <= idx; fi++) {
            qr_field f;
            memset(&f, 0, sizeof f);
            char key[16];
            snprintf(key, sizeof key, "k%d_%d", idx, fi);
            f.key = qr_batch_str(dst, key, strlen(key));
            f.type = QR_FT_INT;
            f.v.i = idx * 10 + fi;
            REQUIRE(qr_batch_add_field(dst, &f) == 0);
        }
    }
    size_t bytes = a.bytes + b.bytes;
    REQUIRE(qr_batch_absorb(&a, &b) == 0);
    CHECK_EQ_INT(a.count, 3);
    CHECK_EQ_INT(a.field_count, 6);
    CHECK_EQ_INT(a.bytes, bytes);
    CHECK_EQ_INT(b.count, 0);
    CHECK_EQ_INT(b.bytes, 0);
    qr_batch_fini(&b); /* a's strings must not depend on b any more */
    for (int idx = 0; idx < 3; idx++) {
        const qr_event *e = &a.events[idx];
        char msg[32];
        snprintf(msg, sizeof msg, "message %d", idx);
        CHECK(qr_str_eq_cstr(e->msg, msg) && e->ts_ns == idx);
        CHECK_EQ_INT(e->field_count, idx + 1);
        const qr_field *f = qr_event_fields(&a, e);
        for (int fi = 0; fi <= idx; fi++) {
            char key[16];
            snprintf(key, sizeof key, "k%d_%d", idx, fi);
            CHECK(qr_str_eq_cstr(f[fi].key, key) && f[fi].v.i == idx * 10 + fi);
        }
    }
    /* a keeps allocating after the absorb, and absorbing an empty batch changes nothing */
    qr_str more = qr_batch_str(&a, "after", 5);
    CHECK(qr_str_eq_cstr(more, "after"));
    qr_batch empty;
    qr_batch_init(&empty);
    REQUIRE(qr_batch_absorb(&a, &empty) == 0);
    CHECK_EQ_INT(a.count, 3);
    qr_batch_fini(&empty);
    qr_batch_fini(&a);
}

int main(void)
{
    RUN(absorb_moves_events_and_strings);
    RUN(empty_batch);
    RUN(edge_values);
    RUN(max_sizes);
    RUN(generated_batches);
    RUN(decode_rejects_truncation_and_garbage);
    RUN(v2_strings_round_trip_exactly);
    RUN(v2_string_table_overflow);
    RUN(v1_batches_still_decode);
    RUN(v2_bad_reference_rejected);
    QR_TEST_MAIN_END();
}

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

int main(void)
{
    RUN(empty_batch);
    RUN(edge_values);
    RUN(max_sizes);
    RUN(generated_batches);
    RUN(decode_rejects_truncation_and_garbage);
    QR_TEST_MAIN_END();
}

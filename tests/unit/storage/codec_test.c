/* codec_test — round trips of every codec with edge values, and rejection of bad bytes. */
#include "qr_test.h"
#include "storage/codec.h"

#include "common/qr_err.h"

#include <limits.h>

static int roundtrip_u64(const uint64_t *v, size_t n)
{
    qr_buf b;
    qr_buf_init(&b);
    codec_u64_encode(v, n, &b);
    uint64_t *out = calloc(n + 1, sizeof *out);
    qr_rd rd;
    qr_rd_init(&rd, b.data, b.len);
    int rc = codec_u64_decode(&rd, n, out);
    int ok = rc == 0 && qr_rd_left(&rd) == 0 && (n == 0 || memcmp(out, v, n * 8) == 0);
    /* ranges give the same values and leave the reader past the whole sequence */
    size_t ranges[][2] = {{0, 0}, {0, n}, {n / 3, n / 2}, {n / 2, n}, {n ? n - 1 : 0, n}};
    for (size_t ri = 0; ri < sizeof ranges / sizeof *ranges && ok; ri++) {
        size_t from = ranges[ri][0], to = ranges[ri][1];
        qr_rd_init(&rd, b.data, b.len);
        memset(out, 0xab, (n + 1) * sizeof *out);
        if (codec_u64_decode_range(&rd, n, from, to, out) != 0 || qr_rd_left(&rd) != 0 ||
            (to > from && memcmp(out, v + from, (to - from) * 8) != 0))
            ok = 0;
    }
    qr_rd_init(&rd, b.data, b.len);
    if (ok && codec_u64_decode_range(&rd, n, 1, 0, out) != QR_ECORRUPT) ok = 0;
    qr_rd_init(&rd, b.data, b.len);
    if (ok && codec_u64_decode_range(&rd, n, 0, n + 1, out) != QR_ECORRUPT) ok = 0;
    /* every strict prefix of the encoding must be rejected, never over-read */
    for (size_t cut = 0; cut < b.len && ok; cut++) {
        qr_rd_init(&rd, b.data, cut);
        if (codec_u64_decode(&rd, n, out) == 0) ok = 0;
        qr_rd_init(&rd, b.data, cut);
        if (codec_u64_decode_range(&rd, n, 0, n / 2, out) == 0) ok = 0;
    }
    free(out);
    qr_buf_fini(&b);
    return ok;
}

static int roundtrip_i64(const int64_t *v, size_t n, uint8_t *mode_out)
{
    qr_buf b;
    qr_buf_init(&b);
    codec_i64_encode(v, n, &b);
    if (mode_out) *mode_out = b.data[0];
    int64_t *out = calloc(n + 1, sizeof *out);
    qr_rd rd;
    qr_rd_init(&rd, b.data, b.len);
    int rc = codec_i64_decode(&rd, n, out);
    int ok = rc == 0 && qr_rd_left(&rd) == 0 && (n == 0 || memcmp(out, v, n * 8) == 0);
    /* chosen rows only: the first, every 7th from 3, the last; then each row alone */
    uint32_t *rows = calloc(n + 1, sizeof *rows);
    int64_t *some = calloc(n + 1, sizeof *some);
    size_t k = 0;
    for (size_t idx = 0; idx < n; idx++)
        if (idx == 0 || idx % 7 == 3 || idx + 1 == n) rows[k++] = (uint32_t)idx;
    qr_rd_init(&rd, b.data, b.len);
    if (codec_i64_decode_rows(&rd, n, rows, k, some) != 0 || qr_rd_left(&rd) != 0) ok = 0;
    for (size_t idx = 0; idx < k && ok; idx++)
        if (some[idx] != v[rows[idx]]) ok = 0;
    for (size_t idx = 0; idx < n && idx < 40 && ok; idx++) {
        uint32_t row = (uint32_t)(n - 1 - idx);
        qr_rd_init(&rd, b.data, b.len);
        if (codec_i64_decode_rows(&rd, n, &row, 1, some) != 0 || some[0] != v[row]) ok = 0;
    }
    if (k >= 2) { /* rows must ascend */
        uint32_t bad[2] = {rows[1], rows[0]};
        qr_rd_init(&rd, b.data, b.len);
        if (codec_i64_decode_rows(&rd, n, bad, 2, some) != QR_ECORRUPT) ok = 0;
    }
    free(rows);
    free(some);
    for (size_t cut = 0; cut < b.len && ok; cut++) {
        qr_rd_init(&rd, b.data, cut);
        if (codec_i64_decode(&rd, n, out) == 0) ok = 0;
    }
    free(out);
    qr_buf_fini(&b);
    return ok;
}

TEST(bitpack_all_widths)
{
    uint64_t state = 1;
    for (unsigned width = 0; width <= 64; width++) {
        for (size_t n = 0; n < 140; n += n < 20 ? 1 : 13) {
            uint64_t v[140], out[140];
            uint64_t mask = width == 64 ? ~0ull : (1ull << width) - 1;
            for (size_t idx = 0; idx < n; idx++) v[idx] = qr_test_rand(&state) & mask;
            if (n) v[0] = mask; /* the max value of the width */
            size_t bytes = codec_bitpack_bytes(n, width);
            uint8_t *buf = malloc(bytes + 1);
            codec_bitpack(v, n, width, buf);
            CHECK(codec_bitunpack_u64(buf, bytes, n, width, 0, out) == 0);
            CHECK(n == 0 || memcmp(v, out, n * 8) == 0);
            if (width <= 32) {
                uint32_t out32[140];
                CHECK(codec_bitunpack_u32(buf, bytes, n, width, 0, out32) == 0);
                for (size_t idx = 0; idx < n; idx++) CHECK(out32[idx] == v[idx]);
                CHECK(codec_bitunpack_u32(buf, bytes, n, width, 7, out32) == 0);
                for (size_t idx = 0; idx < n; idx++) CHECK(out32[idx] == (uint32_t)v[idx] + 7);
            }
            if (bytes) CHECK(codec_bitunpack_u64(buf, bytes - 1, n, width, 0, out) == QR_ECORRUPT);
            free(buf);
        }
    }
    CHECK(codec_bitunpack_u64((const uint8_t *)"", 0, 1, 65, 0, NULL) == QR_ECORRUPT);
}

TEST(u64_for_and_rle)
{
    uint64_t empty[1] = {0};
    CHECK(roundtrip_u64(empty, 0));
    uint64_t one[1] = {UINT64_MAX};
    CHECK(roundtrip_u64(one, 1));
    uint64_t runs[1000];
    for (int idx = 0; idx < 1000; idx++) runs[idx] = (uint64_t)(idx / 100) * 7;
    CHECK(roundtrip_u64(runs, 1000));
    qr_buf b;
    qr_buf_init(&b);
    codec_u64_encode(runs, 1000, &b);
    CHECK(b.data[0] == CODEC_U64_RLE); /* 10 runs beat 1000 x 6 bits */
    qr_buf_fini(&b);
    uint64_t mixed[300], state = 7;
    for (int idx = 0; idx < 300; idx++) mixed[idx] = qr_test_rand(&state) % 5 + 1000000;
    CHECK(roundtrip_u64(mixed, 300));
    qr_buf_init(&b);
    codec_u64_encode(mixed, 300, &b);
    CHECK(b.data[0] == CODEC_U64_FOR);
    CHECK(b.len <= 1 + 3 + 1 + (300 * 3 + 7) / 8); /* 3 bits per value after FOR */
    qr_buf_fini(&b);
    uint64_t extremes[4] = {0, UINT64_MAX, 0, UINT64_MAX};
    CHECK(roundtrip_u64(extremes, 4));
}

TEST(u32_decode_checks_max)
{
    uint64_t v[3] = {1, 2, 9};
    qr_buf b;
    qr_buf_init(&b);
    codec_u64_encode(v, 3, &b);
    uint32_t out[3];
    qr_rd rd;
    qr_rd_init(&rd, b.data, b.len);
    CHECK(codec_u32_decode(&rd, 3, 9, out) == 0 && out[2] == 9);
    qr_rd_init(&rd, b.data, b.len);
    CHECK(codec_u32_decode(&rd, 3, 8, out) == QR_ECORRUPT);
    qr_buf_fini(&b);
    uint64_t big[2] = {5, (uint64_t)UINT32_MAX + 1};
    qr_buf_init(&b);
    codec_u64_encode(big, 2, &b);
    qr_rd_init(&rd, b.data, b.len);
    CHECK(codec_u32_decode(&rd, 2, UINT32_MAX, out) == QR_ECORRUPT);
    qr_buf_fini(&b);
}

TEST(i64_modes)
{
    int64_t empty[1] = {0};
    CHECK(roundtrip_i64(empty, 0, NULL));
    int64_t single[1] = {INT64_MIN};
    CHECK(roundtrip_i64(single, 1, NULL));
    int64_t two[2] = {INT64_MAX, INT64_MIN};
    CHECK(roundtrip_i64(two, 2, NULL));
    int64_t ext[5] = {INT64_MIN, INT64_MAX, 0, -1, INT64_MAX};
    CHECK(roundtrip_i64(ext, 5, NULL));
    /* sorted timestamps with jitter: DELTA */
    int64_t ts[4096];
    uint64_t state = 3;
    int64_t t = 1750000000000000000LL;
    for (int idx = 0; idx < 4096; idx++) {
        t += 1000000 + (int64_t)(qr_test_rand(&state) % 1000);
        ts[idx] = t;
    }
    uint8_t mode;
    CHECK(roundtrip_i64(ts, 4096, &mode));
    CHECK(mode == CODEC_I64_DELTA);
    /* perfectly regular: DELTA2 (or DELTA with width 0) — both cost ~nothing */
    for (int idx = 0; idx < 4096; idx++) ts[idx] = 1750000000000000000LL + (int64_t)idx * 1000000;
    qr_buf b;
    qr_buf_init(&b);
    codec_i64_encode(ts, 4096, &b);
    CHECK(b.len < 32);
    qr_buf_fini(&b);
    CHECK(roundtrip_i64(ts, 4096, NULL));
    /* unsorted with negative deltas */
    for (int idx = 0; idx < 4096; idx++)
        ts[idx] = (int64_t)(qr_test_rand(&state) % 2000000) - 1000000;
    CHECK(roundtrip_i64(ts, 4096, &mode));
    CHECK(mode == CODEC_I64_FOR);
    /* linear ramp with a growing step: DELTA2 wins */
    for (int idx = 0; idx < 4096; idx++) ts[idx] = (int64_t)idx * idx * 3 - 5000;
    CHECK(roundtrip_i64(ts, 4096, &mode));
    CHECK(mode == CODEC_I64_DELTA2);
    /* ms-precision timestamps in ns: the common factor 10^6 is divided out */
    t = 1750000000123000000LL;
    for (int idx = 0; idx < 4096; idx++) {
        t += (int64_t)(qr_test_rand(&state) % 4) * 1000000;
        ts[idx] = t;
    }
    qr_buf_init(&b);
    codec_i64_encode(ts, 4096, &b);
    CHECK(b.len < 16 + 4096 * 2 / 8); /* 2 bits per delta, not 22 */
    qr_buf_fini(&b);
    CHECK(roundtrip_i64(ts, 4096, NULL));
    /* negative multiples of 100 around zero, and a scale that only the first pair has */
    for (int idx = 0; idx < 500; idx++)
        ts[idx] = ((int64_t)(qr_test_rand(&state) % 2001) - 1000) * 100;
    CHECK(roundtrip_i64(ts, 500, NULL));
    ts[0] = 0;
    ts[1] = 1000;
    ts[2] = 1001;
    CHECK(roundtrip_i64(ts, 3, NULL));
    int64_t big_scale[3] = {INT64_MIN, 0, 1000000000000000000LL};
    CHECK(roundtrip_i64(big_scale, 3, NULL));
    /* random full-range values */
    for (int idx = 0; idx < 100; idx++) ts[idx] = (int64_t)qr_test_rand(&state);
    CHECK(roundtrip_i64(ts, 100, NULL));
}

TEST(garbage_never_overreads)
{
    uint64_t state = 11;
    uint8_t buf[64];
    uint64_t out64[200];
    int64_t outi[200];
    uint32_t out32[200];
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = qr_test_rand(&state) % sizeof buf;
        for (size_t idx = 0; idx < len; idx++) buf[idx] = (uint8_t)qr_test_rand(&state);
        if (len) buf[0] = (uint8_t)(qr_test_rand(&state) % 4 ? buf[0] % 3 : 0x11 + buf[0] % 3);
        size_t n = qr_test_rand(&state) % 200;
        qr_rd rd;
        qr_rd_init(&rd, buf, len);
        (void)codec_u64_decode(&rd, n, out64);
        qr_rd_init(&rd, buf, len);
        (void)codec_u64_decode_range(&rd, n, n / 4, n - n / 4, out64);
        qr_rd_init(&rd, buf, len);
        (void)codec_u32_decode(&rd, n, 1000, out32);
        qr_rd_init(&rd, buf, len);
        (void)codec_i64_decode(&rd, n, outi);
        uint32_t rows[3] = {0, (uint32_t)(n / 2), (uint32_t)(n ? n - 1 : 0)};
        qr_rd_init(&rd, buf, len);
        (void)codec_i64_decode_rows(&rd, n, rows, n > 2 ? 3 : 0, outi);
    }
    CHECK(1); /* the check is ASan's: no read past buf, no write past n */
}

int main(void)
{
    RUN(bitpack_all_widths);
    RUN(u64_for_and_rle);
    RUN(u32_decode_checks_max);
    RUN(i64_modes);
    RUN(garbage_never_overreads);
    QR_TEST_MAIN_END();
}

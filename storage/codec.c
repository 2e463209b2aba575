/* codec — see codec.h for the byte formats.
 *
 * Bit-unpacking reads one unaligned 64-bit word per value while 8 bytes remain (shift +
 * width <= 64 for widths up to 57), and falls back to a byte-wise read near the end of the
 * input and for wider values, so it never reads past in_len; 32-bit unpacking of widths up to
 * 8 (dictionary ids, posting gaps) reads a word per eight values, and 16 bytes at a time with
 * SSE2 for widths 4 and 8. Encoders pick the smallest
 * encoding by computing exact sizes (cheap: one pass for widths, one for runs). */
#include "storage/codec.h"

#include "common/qr_err.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

unsigned codec_width_u64(uint64_t v) { return v ? 64u - (unsigned)__builtin_clzll(v) : 0u; }

void codec_bitpack(const uint64_t *v, size_t n, unsigned width, uint8_t *out)
{
    size_t total = codec_bitpack_bytes(n, width);
    if (width == 0) return;
    uint64_t mask = width == 64 ? ~0ull : (1ull << width) - 1;
    uint64_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t idx = 0; idx < n; idx++) {
        uint64_t x = v[idx] & mask;
        acc |= x << bits;
        if (bits + width >= 64) {
            qr_store_u64(out + o, acc);
            o += 8;
            unsigned used = 64 - bits;
            acc = used >= 64 ? 0 : x >> used;
            bits = bits + width - 64;
        } else {
            bits += width;
        }
    }
    for (unsigned b = 0; o < total; b += 8) out[o++] = (uint8_t)(acc >> b);
}

/* Reads the `width` bits starting at bit `bitpos`; caller has checked they lie in in_len. */
static inline uint64_t bits_read(const uint8_t *in, size_t in_len, uint64_t bitpos, unsigned width,
                                 uint64_t mask)
{
    size_t byte = (size_t)(bitpos >> 3);
    unsigned shift = (unsigned)(bitpos & 7);
    if (byte + 8 <= in_len && shift + width <= 64) return (qr_load_u64(in + byte) >> shift) & mask;
    uint8_t tmp[16] = {0};
    size_t avail = in_len - byte;
    memcpy(tmp, in + byte, avail < 9 ? avail : 9);
    uint64_t lo = qr_load_u64(tmp) >> shift;
    if (shift + width > 64) lo |= (uint64_t)tmp[8] << (64 - shift);
    return lo & mask;
}

int codec_bitunpack_u64(const uint8_t *in, size_t in_len, size_t n, unsigned width, uint64_t add,
                        uint64_t *out)
{
    if (width > 64 || in_len < codec_bitpack_bytes(n, width)) return QR_ECORRUPT;
    if (width == 0) {
        for (size_t idx = 0; idx < n; idx++) out[idx] = add;
        return 0;
    }
    uint64_t mask = width == 64 ? ~0ull : (1ull << width) - 1;
    uint64_t bitpos = 0;
    for (size_t idx = 0; idx < n; idx++, bitpos += width)
        out[idx] = bits_read(in, in_len, bitpos, width, mask) + add;
    return 0;
}

/* Widths up to 8: eight values are `width` bytes, one word load; the width is a constant in
 * each instance (the switch below), so the shifts are too. Returns the values unpacked. */
static inline size_t unpack_by8(const uint8_t *restrict in, size_t in_len, size_t n, unsigned width,
                                uint32_t add, uint32_t *restrict out)
{
    uint64_t mask = (1ull << width) - 1;
    size_t groups = n / 8;
    if (in_len < 8) return 0;
    if (groups > (in_len - 8) / width + 1) groups = (in_len - 8) / width + 1;
    if (width == 4 || width == 8) { /* whole bytes */
        size_t bytes = n * width / 8, b = 0;
#ifdef __SSE2__
        /* 16 bytes at a time: nibbles (or bytes) widened to u32 lanes */
        const __m128i zero = _mm_setzero_si128(), base = _mm_set1_epi32((int)add);
        const __m128i low4 = _mm_set1_epi8(15);
        for (; b + 16 <= bytes; b += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(in + b));
            __m128i parts[2] = {v, zero};
            int nparts = 1;
            if (width == 4) { /* byte i holds values 2i (low nibble) and 2i + 1 */
                __m128i lo = _mm_and_si128(v, low4), hi = _mm_and_si128(_mm_srli_epi16(v, 4), low4);
                parts[0] = _mm_unpacklo_epi8(lo, hi);
                parts[1] = _mm_unpackhi_epi8(lo, hi);
                nparts = 2;
            }
            uint32_t *o = out + b * 8 / width;
            for (int k = 0; k < nparts; k++) {
                __m128i w16lo = _mm_unpacklo_epi8(parts[k], zero),
                        w16hi = _mm_unpackhi_epi8(parts[k], zero);
                __m128i *dst = (__m128i *)(void *)(o + 16 * k);
                _mm_storeu_si128(dst, _mm_add_epi32(_mm_unpacklo_epi16(w16lo, zero), base));
                _mm_storeu_si128(dst + 1, _mm_add_epi32(_mm_unpackhi_epi16(w16lo, zero), base));
                _mm_storeu_si128(dst + 2, _mm_add_epi32(_mm_unpacklo_epi16(w16hi, zero), base));
                _mm_storeu_si128(dst + 3, _mm_add_epi32(_mm_unpackhi_epi16(w16hi, zero), base));
            }
        }
#endif
        if (width == 8)
            for (; b < bytes; b++) out[b] = in[b] + add;
        else
            for (; b < bytes; b++) {
                out[2 * b] = (uint32_t)(in[b] & 15) + add;
                out[2 * b + 1] = (uint32_t)(in[b] >> 4) + add;
            }
        return bytes * 8 / width;
    }
    for (size_t g = 0; g < groups; g++) {
        uint64_t word = qr_load_u64(in + g * width);
#pragma GCC unroll 8
        for (unsigned j = 0; j < 8; j++)
            out[g * 8 + j] = (uint32_t)((word >> (j * width)) & mask) + add;
    }
    return groups * 8;
}

int codec_bitunpack_u32(const uint8_t *in, size_t in_len, size_t n, unsigned width, uint32_t add,
                        uint32_t *out)
{
    if (width > 32 || in_len < codec_bitpack_bytes(n, width)) return QR_ECORRUPT;
    if (width == 0) {
        for (size_t idx = 0; idx < n; idx++) out[idx] = add;
        return 0;
    }
    uint64_t mask = (1ull << width) - 1;
    size_t idx = 0;
    switch (width) { /* dictionary ids: small widths, the common case */
    case 1:
        idx = unpack_by8(in, in_len, n, 1, add, out);
        break;
    case 2:
        idx = unpack_by8(in, in_len, n, 2, add, out);
        break;
    case 3:
        idx = unpack_by8(in, in_len, n, 3, add, out);
        break;
    case 4:
        idx = unpack_by8(in, in_len, n, 4, add, out);
        break;
    case 5:
        idx = unpack_by8(in, in_len, n, 5, add, out);
        break;
    case 6:
        idx = unpack_by8(in, in_len, n, 6, add, out);
        break;
    case 7:
        idx = unpack_by8(in, in_len, n, 7, add, out);
        break;
    case 8:
        idx = unpack_by8(in, in_len, n, 8, add, out);
        break;
    default:
        break;
    }
    uint64_t bitpos = (uint64_t)idx * width;
    /* Fast path: whole 8-byte words available. */
    if (in_len >= 8) {
        uint64_t safe_bits = (uint64_t)(in_len - 8) * 8; /* word loads stay inside in_len */
        for (; idx < n && bitpos <= safe_bits; idx++, bitpos += width)
            out[idx] = (uint32_t)((qr_load_u64(in + (bitpos >> 3)) >> (bitpos & 7)) & mask) + add;
    }
    for (; idx < n; idx++, bitpos += width)
        out[idx] = (uint32_t)bits_read(in, in_len, bitpos, width, mask) + add;
    return 0;
}

static size_t uvarint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Writes width, then v - min bit-packed (wrapping), 64 values at a time through a small
 * stack buffer: 64 values of any width end on a byte boundary. */
static void put_for_u64(qr_buf *out, const uint64_t *v, size_t n, uint64_t min, unsigned width)
{
    qr_buf_u8(out, (uint8_t)width);
    size_t bytes = codec_bitpack_bytes(n, width);
    if (!bytes) return;
    uint8_t *p = qr_buf_extend(out, bytes);
    if (!p) return;
    /* Pack in chunks to subtract the reference without a heap copy. */
    uint64_t tmp[64];
    size_t done = 0;
    while (done < n) {
        size_t cnt = n - done < 64 ? n - done : 64;
        for (size_t idx = 0; idx < cnt; idx++) tmp[idx] = v[done + idx] - min;
        codec_bitpack(tmp, cnt, width, p + (done / 64) * 8 * width);
        done += cnt;
    }
}

void codec_u64_encode(const uint64_t *v, size_t n, qr_buf *out)
{
    uint64_t min = n ? v[0] : 0, max = min;
    size_t rle_bytes = 0, runs = 0;
    for (size_t idx = 0; idx < n;) {
        size_t end = idx + 1;
        while (end < n && v[end] == v[idx]) end++;
        if (v[idx] < min) min = v[idx];
        if (v[idx] > max) max = v[idx];
        rle_bytes += uvarint_len(v[idx]) + uvarint_len(end - idx);
        runs++;
        idx = end;
    }
    unsigned width = codec_width_u64(max - min);
    size_t for_bytes = uvarint_len(min) + 1 + codec_bitpack_bytes(n, width);
    rle_bytes += uvarint_len(runs);
    if (rle_bytes < for_bytes) {
        qr_buf_u8(out, CODEC_U64_RLE);
        qr_buf_uvarint(out, runs);
        for (size_t idx = 0; idx < n;) {
            size_t end = idx + 1;
            while (end < n && v[end] == v[idx]) end++;
            qr_buf_uvarint(out, v[idx]);
            qr_buf_uvarint(out, end - idx);
            idx = end;
        }
        return;
    }
    qr_buf_u8(out, CODEC_U64_FOR);
    qr_buf_uvarint(out, min);
    put_for_u64(out, v, n, min, width);
}

/* Shared decoder for both output widths. */
static int u64_decode_any(qr_rd *r, size_t n, uint64_t *out64, uint32_t *out32, uint32_t max32)
{
    uint8_t mode = qr_rd_u8(r);
    if (r->bad) return QR_ECORRUPT;
    if (mode == CODEC_U64_FOR) {
        uint64_t min = qr_rd_uvarint(r);
        unsigned width = qr_rd_u8(r);
        if (r->bad || width > 64) return QR_ECORRUPT;
        size_t bytes = codec_bitpack_bytes(n, width);
        const uint8_t *p = qr_rd_take(r, bytes);
        if (!p) return QR_ECORRUPT;
        if (out64) return codec_bitunpack_u64(p, bytes, n, width, min, out64);
        if (width > 32 || min > max32) return QR_ECORRUPT;
        uint64_t mask = width ? (1ull << width) - 1 : 0;
        if (min + mask <= max32)
            return codec_bitunpack_u32(p, bytes, n, width, (uint32_t)min, out32);
        /* The width allows values past max: unpack the offsets and check each. */
        int rc = codec_bitunpack_u32(p, bytes, n, width, 0, out32);
        if (rc) return rc;
        for (size_t idx = 0; idx < n; idx++) {
            if ((uint64_t)out32[idx] + min > max32) return QR_ECORRUPT;
            out32[idx] += (uint32_t)min;
        }
        return 0;
    }
    if (mode == CODEC_U64_RLE) {
        uint64_t runs = qr_rd_uvarint(r);
        if (r->bad || runs > n) return QR_ECORRUPT;
        size_t pos = 0;
        for (uint64_t run = 0; run < runs; run++) {
            uint64_t value = qr_rd_uvarint(r);
            uint64_t len = qr_rd_uvarint(r);
            if (r->bad || len == 0 || len > n - pos) return QR_ECORRUPT;
            if (out64) {
                for (uint64_t idx = 0; idx < len; idx++) out64[pos + idx] = value;
            } else {
                if (value > max32) return QR_ECORRUPT;
                for (uint64_t idx = 0; idx < len; idx++) out32[pos + idx] = (uint32_t)value;
            }
            pos += len;
        }
        return pos == n ? 0 : QR_ECORRUPT;
    }
    return QR_ECORRUPT;
}

int codec_u64_decode(qr_rd *r, size_t n, uint64_t *out)
{
    return u64_decode_any(r, n, out, NULL, 0);
}

int codec_u32_decode(qr_rd *r, size_t n, uint32_t max, uint32_t *out)
{
    return u64_decode_any(r, n, NULL, out, max);
}

int codec_u64_decode_range(qr_rd *r, size_t n, size_t from, size_t to, uint64_t *out)
{
    if (from > to || to > n) return QR_ECORRUPT;
    uint8_t mode = qr_rd_u8(r);
    if (r->bad) return QR_ECORRUPT;
    if (mode == CODEC_U64_FOR) {
        uint64_t min = qr_rd_uvarint(r);
        unsigned width = qr_rd_u8(r);
        if (r->bad || width > 64) return QR_ECORRUPT;
        size_t bytes = codec_bitpack_bytes(n, width);
        const uint8_t *p = qr_rd_take(r, bytes);
        if (!p) return QR_ECORRUPT;
        uint64_t mask = width == 64 ? ~0ull : width ? (1ull << width) - 1 : 0;
        for (size_t idx = from; idx < to; idx++)
            out[idx - from] =
                (width ? bits_read(p, bytes, (uint64_t)idx * width, width, mask) : 0) + min;
        return 0;
    }
    if (mode == CODEC_U64_RLE) {
        uint64_t runs = qr_rd_uvarint(r);
        if (r->bad || runs > n) return QR_ECORRUPT;
        size_t pos = 0;
        for (uint64_t run = 0; run < runs; run++) {
            uint64_t value = qr_rd_uvarint(r);
            uint64_t len = qr_rd_uvarint(r);
            if (r->bad || len == 0 || len > n - pos) return QR_ECORRUPT;
            size_t lo = pos > from ? pos : from, hi = pos + len < to ? pos + len : to;
            for (size_t idx = lo; idx < hi; idx++) out[idx - from] = value;
            pos += len;
        }
        return pos == n ? 0 : QR_ECORRUPT;
    }
    return QR_ECORRUPT;
}

static size_t svarint_len(int64_t v) { return uvarint_len(qr_zigzag_enc(v)); }

static const uint64_t pow10_u64[CODEC_SCALE_MAX + 1] = {1ull,
                                                        10ull,
                                                        100ull,
                                                        1000ull,
                                                        10000ull,
                                                        100000ull,
                                                        1000000ull,
                                                        10000000ull,
                                                        100000000ull,
                                                        1000000000ull,
                                                        10000000000ull,
                                                        100000000000ull,
                                                        1000000000000ull,
                                                        10000000000000ull,
                                                        100000000000000ull,
                                                        1000000000000000ull,
                                                        10000000000000000ull,
                                                        100000000000000000ull,
                                                        1000000000000000000ull};

/* Largest e such that every v_i - v_0 is a multiple of 10^e (timestamps with ms or us
 * precision, amounts in cents...). Gives up at the first value that breaks e = 1, so data
 * without a common scale costs one division per value at most. */
static unsigned common_scale(const int64_t *v, size_t n)
{
    unsigned e = CODEC_SCALE_MAX;
    for (size_t idx = 1; idx < n && e; idx++) {
        int64_t x;
        if (__builtin_sub_overflow(v[idx], v[0], &x)) return 0;
        uint64_t ax = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
        while (e && ax % pow10_u64[e]) e--;
    }
    return n > 1 ? e : 0;
}

void codec_i64_encode(const int64_t *v, size_t n, qr_buf *out)
{
    /* One pass for the ranges of values, deltas and delta-of-deltas (wrapping arithmetic,
     * compared as signed). */
    int64_t vmin = n ? v[0] : 0, vmax = vmin;
    int64_t dmin = INT64_MAX, dmax = INT64_MIN, ddmin = INT64_MAX, ddmax = INT64_MIN;
    int64_t dprev = 0;
    for (size_t idx = 1; idx < n; idx++) {
        if (v[idx] < vmin) vmin = v[idx];
        if (v[idx] > vmax) vmax = v[idx];
        int64_t d = (int64_t)((uint64_t)v[idx] - (uint64_t)v[idx - 1]);
        if (d < dmin) dmin = d;
        if (d > dmax) dmax = d;
        if (idx >= 2) {
            int64_t dd = (int64_t)((uint64_t)d - (uint64_t)dprev);
            if (dd < ddmin) ddmin = dd;
            if (dd > ddmax) ddmax = dd;
        }
        dprev = d;
    }
    /* Every offset below (value - min, delta - min delta, ...) is a multiple of 10^scale. */
    unsigned scale = common_scale(v, n);
    uint64_t div = pow10_u64[scale];
    unsigned w_for = codec_width_u64(((uint64_t)vmax - (uint64_t)vmin) / div);
    unsigned w_d = codec_width_u64(((uint64_t)dmax - (uint64_t)dmin) / div);
    unsigned w_dd = codec_width_u64(((uint64_t)ddmax - (uint64_t)ddmin) / div);
    size_t s_for = svarint_len(vmin) + 2 + codec_bitpack_bytes(n, w_for);
    size_t s_d = n >= 2
                     ? svarint_len(v[0]) + svarint_len(dmin) + 2 + codec_bitpack_bytes(n - 1, w_d)
                     : SIZE_MAX;
    size_t s_dd = n >= 3 ? svarint_len(v[0]) +
                               svarint_len((int64_t)((uint64_t)v[1] - (uint64_t)v[0])) +
                               svarint_len(ddmin) + 2 + codec_bitpack_bytes(n - 2, w_dd)
                         : SIZE_MAX;
    size_t order = s_for <= s_d && s_for <= s_dd ? 0 : s_d <= s_dd ? 1 : 2;
    static const uint8_t modes[3] = {CODEC_I64_FOR, CODEC_I64_DELTA, CODEC_I64_DELTA2};
    qr_buf_u8(out, modes[order]);
    uint64_t ref;
    unsigned width;
    if (order == 0) {
        ref = (uint64_t)vmin;
        width = w_for;
    } else {
        qr_buf_svarint(out, v[0]);
        if (order == 2) qr_buf_svarint(out, (int64_t)((uint64_t)v[1] - (uint64_t)v[0]));
        ref = order == 1 ? (uint64_t)dmin : (uint64_t)ddmin;
        width = order == 1 ? w_d : w_dd;
    }
    qr_buf_svarint(out, (int64_t)ref);
    qr_buf_u8(out, (uint8_t)scale);
    qr_buf_u8(out, (uint8_t)width);
    size_t count = n - order;
    size_t bytes = codec_bitpack_bytes(count, width);
    if (!bytes) return;
    uint8_t *p = qr_buf_extend(out, bytes);
    if (!p) return;
    uint64_t tmp[64];
    for (size_t done = 0; done < count;) {
        size_t cnt = count - done < 64 ? count - done : 64;
        for (size_t idx = 0; idx < cnt; idx++) {
            size_t at = done + idx + order; /* value index of this offset */
            uint64_t x = (uint64_t)v[at];
            if (order >= 1) x -= (uint64_t)v[at - 1];
            if (order == 2) x -= (uint64_t)v[at - 1] - (uint64_t)v[at - 2];
            x -= ref;
            tmp[idx] = scale ? x / div : x;
        }
        /* 64 values of any width end on a byte boundary */
        codec_bitpack(tmp, cnt, width, p + (done / 64) * 8 * width);
        done += cnt;
    }
}

int codec_i64_decode_rows(qr_rd *r, size_t n, const uint32_t *rows, size_t k, int64_t *out)
{
    uint8_t mode = qr_rd_u8(r);
    if (r->bad) return QR_ECORRUPT;
    if (mode != CODEC_I64_FOR && mode != CODEC_I64_DELTA && mode != CODEC_I64_DELTA2)
        return QR_ECORRUPT;
    size_t order = mode == CODEC_I64_FOR ? 0 : mode == CODEC_I64_DELTA ? 1 : 2;
    if (n < order) return QR_ECORRUPT;
    uint64_t v0 = order ? (uint64_t)qr_rd_svarint(r) : 0;
    uint64_t d1 = order == 2 ? (uint64_t)qr_rd_svarint(r) : 0;
    uint64_t ref = (uint64_t)qr_rd_svarint(r);
    unsigned scale = qr_rd_u8(r);
    unsigned width = qr_rd_u8(r);
    if (r->bad || width > 64 || scale > CODEC_SCALE_MAX) return QR_ECORRUPT;
    size_t count = n - order, bytes = codec_bitpack_bytes(count, width);
    const uint8_t *p = qr_rd_take(r, bytes);
    if (!p) return QR_ECORRUPT;
    uint64_t mask = width == 64 ? ~0ull : width ? (1ull << width) - 1 : 0, mul = pow10_u64[scale];
    for (size_t idx = 0; idx < k; idx++)
        if (rows[idx] >= n || (idx && rows[idx] <= rows[idx - 1])) return QR_ECORRUPT;
    if (order == 0) { /* FOR: each value in place */
        for (size_t idx = 0; idx < k; idx++) {
            uint64_t off =
                width ? bits_read(p, bytes, (uint64_t)rows[idx] * width, width, mask) : 0;
            out[idx] = (int64_t)(off * mul + ref);
        }
        return 0;
    }
    /* DELTA / DELTA2: integrate up to the last asked row, unpacking 256 offsets at a time
     * (256 values start on a byte boundary) into a small buffer instead of the column */
    enum { CHUNK = 256 };
    uint64_t buf[CHUNK];
    size_t chunk_at = SIZE_MAX; /* packed index of buf[0] */
    uint64_t v = v0, d = d1;
    size_t at = 0; /* v is the value of row `at` */
    for (size_t idx = 0; idx < k; idx++) {
        for (; at < rows[idx]; at++) {
            if (order == 2 && at == 0) {
                v = v0 + d1;
                continue;
            }
            size_t pi = at + 1 - order; /* packed index of row at + 1 */
            if (chunk_at == SIZE_MAX || pi >= chunk_at + CHUNK) {
                chunk_at = pi / CHUNK * CHUNK;
                size_t cnt = count - chunk_at < CHUNK ? count - chunk_at : CHUNK;
                size_t from = chunk_at * width / 8;
                int rc = codec_bitunpack_u64(p + from, bytes - from, cnt, width, 0, buf);
                if (rc) return rc;
            }
            uint64_t x = buf[pi - chunk_at] * mul + ref;
            if (order == 1) {
                v += x;
            } else {
                d += x;
                v += d;
            }
        }
        out[idx] = (int64_t)v;
    }
    return 0;
}

int codec_i64_decode(qr_rd *r, size_t n, int64_t *out)
{
    uint8_t mode = qr_rd_u8(r);
    if (r->bad) return QR_ECORRUPT;
    uint64_t *o = (uint64_t *)out;
    if (mode != CODEC_I64_FOR && mode != CODEC_I64_DELTA && mode != CODEC_I64_DELTA2)
        return QR_ECORRUPT;
    size_t order = mode == CODEC_I64_FOR ? 0 : mode == CODEC_I64_DELTA ? 1 : 2;
    if (n < order) return QR_ECORRUPT; /* the encoder never picks these for so few values */
    uint64_t v0 = order ? (uint64_t)qr_rd_svarint(r) : 0;
    uint64_t d1 = order == 2 ? (uint64_t)qr_rd_svarint(r) : 0;
    uint64_t ref = (uint64_t)qr_rd_svarint(r);
    unsigned scale = qr_rd_u8(r);
    unsigned width = qr_rd_u8(r);
    if (r->bad || width > 64 || scale > CODEC_SCALE_MAX) return QR_ECORRUPT;
    size_t count = n - order;
    size_t bytes = codec_bitpack_bytes(count, width);
    const uint8_t *p = qr_rd_take(r, bytes);
    if (!p) return QR_ECORRUPT;
    /* Unpack the offsets into out[order..n), scale, then integrate in place. */
    int rc = codec_bitunpack_u64(p, bytes, count, width, scale ? 0 : ref, o + order);
    if (rc) return rc;
    if (scale) {
        uint64_t mul = pow10_u64[scale];
        for (size_t idx = order; idx < n; idx++) o[idx] = o[idx] * mul + ref;
    }
    if (order == 0) return 0;
    o[0] = v0;
    if (order == 1) {
        for (size_t idx = 1; idx < n; idx++) o[idx] += o[idx - 1];
    } else {
        o[1] = v0 + d1;
        uint64_t d = d1;
        for (size_t idx = 2; idx < n; idx++) {
            d += o[idx];
            o[idx] = o[idx - 1] + d;
        }
    }
    return 0;
}

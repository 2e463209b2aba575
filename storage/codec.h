/* codec — integer codecs for segment columns: bit-packing, frame of reference, delta and
 * delta-of-delta, run-length; all reentrant, no allocation (callers own every buffer).
 *
 * Encoders append to a qr_buf (check qr_buf_ok once at the end). Decoders read untrusted
 * bytes through a qr_rd and return 0 or QR_ECORRUPT; they never read past the reader's end
 * and never write more than the `n` values the caller asked for. The value count is not
 * stored: the caller knows it (block row count, present count).
 *
 * Encodings (first byte = mode; byte formats also in docs/format.md, "Codecs"):
 *   u64 sequence  (dictionary ids, lengths, levels; codec_u64_encode chooses by size)
 *     0x01 FOR     uvarint min, u8 width (0..64), bit-packed (v - min), LSB first
 *     0x02 RLE     uvarint run_count, run_count x (uvarint value, uvarint run_len);
 *                  the run lengths sum to n
 *   i64 sequence  (timestamps, int fields; codec_i64_encode chooses the smallest)
 *     0x11 FOR     svarint min, u8 e, u8 width, packed (v - min) / 10^e
 *     0x12 DELTA   svarint v0, svarint min_delta, u8 e, u8 width, packed (d_i - min_delta)
 *                  / 10^e for the n-1 deltas d_i = v_i - v_(i-1)
 *     0x13 DELTA2  svarint v0, svarint d1, svarint min_dd, u8 e, u8 width, packed
 *                  (dd_i - min_dd) / 10^e for the n-2 delta-of-deltas dd_i = d_i - d_(i-1)
 *     All arithmetic wraps (two's complement). e (0..18) is the largest power of ten dividing
 *     every v_i - v_0: ms-precision timestamps in ns pack 20 bits narrower.
 * Bit-packing: value i occupies bits [i*w, i*w+w) of the byte string, little-endian;
 * codec_bitpack_bytes(n, w) = ceil(n*w/8) bytes. */
#ifndef QR_CODEC_H
#define QR_CODEC_H

#include "common/qr_buf.h"

#include <stddef.h>
#include <stdint.h>

#define CODEC_SCALE_MAX 18

enum {
    CODEC_U64_FOR = 0x01,
    CODEC_U64_RLE = 0x02,
    CODEC_I64_FOR = 0x11,
    CODEC_I64_DELTA = 0x12,
    CODEC_I64_DELTA2 = 0x13,
};

/* Bits needed for v (0 for 0). */
unsigned codec_width_u64(uint64_t v);
static inline size_t codec_bitpack_bytes(size_t n, unsigned width)
{
    return (size_t)(((uint64_t)n * width + 7) / 8);
}
/* Packs the low `width` bits of v[0..n) into out, which must hold codec_bitpack_bytes(n,
 * width) bytes (zeroed or not: every byte is written). */
void codec_bitpack(const uint64_t *v, size_t n, unsigned width, uint8_t *out);
/* Unpacks n values; in_len must be >= codec_bitpack_bytes(n, width), width <= 64 (<= 32 for
 * the u32 variant), else QR_ECORRUPT. `add` is added to each value (frame of reference). */
int codec_bitunpack_u64(const uint8_t *in, size_t in_len, size_t n, unsigned width, uint64_t add,
                        uint64_t *out);
int codec_bitunpack_u32(const uint8_t *in, size_t in_len, size_t n, unsigned width, uint32_t add,
                        uint32_t *out);

/* Unsigned sequence: FOR (bit-packed) or RLE, whichever is smaller. */
void codec_u64_encode(const uint64_t *v, size_t n, qr_buf *out);
int codec_u64_decode(qr_rd *r, size_t n, uint64_t *out);
/* Same encoding decoded into u32 (dictionary ids): QR_ECORRUPT if a value exceeds max. */
int codec_u32_decode(qr_rd *r, size_t n, uint32_t max, uint32_t *out);
/* Values [from, to) of the n-value sequence into out[0 .. to - from), the others not decoded
 * (FOR: read in place; RLE: the runs walked); r ends past the whole sequence, as after
 * codec_u64_decode. from = to skips the sequence. QR_ECORRUPT as codec_u64_decode. */
int codec_u64_decode_range(qr_rd *r, size_t n, size_t from, size_t to, uint64_t *out);

/* Signed sequence: FOR, DELTA or DELTA2, whichever packs smallest. */
void codec_i64_encode(const int64_t *v, size_t n, qr_buf *out);
int codec_i64_decode(qr_rd *r, size_t n, int64_t *out);
/* Values of the rows (ascending, < n) only, out[i] for rows[i]: FOR reads each in place,
 * DELTA / DELTA2 integrate up to the last row without storing the others. QR_ECORRUPT for
 * bad bytes or rows out of order. r ends past the sequence. */
int codec_i64_decode_rows(qr_rd *r, size_t n, const uint32_t *rows, size_t k, int64_t *out);

#endif

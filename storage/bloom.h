/* bloom — token bloom filters, one per segment block (DESIGN.md §3).
 *
 * Sized on the number of DISTINCT keys (tokens of a block), BLOOM_BITS_PER_KEY bits each;
 * k probes derived from one 64-bit hash (qr_token_hash) by double hashing
 * (g_i = h1 + i*h2, h1/h2 the two halves), each mapped to [0, nbits) by a multiply-shift.
 * At 16 bits/key and k = 11 the false-positive rate is ~0.05 % (measured in bloom_test).
 *
 * Serialized form (little-endian):  u8 k | u8 hash | u32 nbits | ceil(nbits/8) bytes of bits
 * (bit b of the filter is bit (b & 7) of byte b >> 3). hash names the key function:
 * BLOOM_HASH_TOKEN (1) = today's qr_token_hash (storage/tokenize.h); 0 = the XXH3-64 token
 * hash of earlier files, which no reader computes any more: such a filter answers "maybe"
 * to every probe (never a false negative). A bloom_view borrows the bytes.
 * bloom_build appends to a qr_buf; bloom_view_init checks the header and length against
 * untrusted bytes (QR_ECORRUPT). Reentrant; a view may be read by many threads. */
#ifndef QR_BLOOM_H
#define QR_BLOOM_H

#include "common/qr_buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLOOM_BITS_PER_KEY 16
#define BLOOM_HEADER_BYTES 6
#define BLOOM_MAX_K 30
#define BLOOM_HASH_LEGACY 0 /* keys were XXH3-64 of the token: unusable, always "maybe" */
#define BLOOM_HASH_TOKEN 1  /* keys are qr_token_hash */

typedef struct bloom_view {
    const uint8_t *bits;
    uint32_t nbits;
    uint8_t k;
    uint8_t hash; /* BLOOM_HASH_* */
} bloom_view;

/* Appends a filter holding hashes[0..n) (qr_token_hash keys; duplicates allowed, but size is
 * computed from n: pass distinct hashes). bits_per_key 0 = BLOOM_BITS_PER_KEY. */
void bloom_build(const uint64_t *hashes, size_t n, unsigned bits_per_key, qr_buf *out);
/* Parses a serialized filter of exactly len bytes. Errors: QR_ECORRUPT. */
int bloom_view_init(bloom_view *b, const uint8_t *p, size_t len);
/* False: the hash was certainly not added. True: it may have been. */
bool bloom_may_contain(const bloom_view *b, uint64_t hash);

#endif

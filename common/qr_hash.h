/* qr_hash — the one hash function of Quarry (xxh3, from Debian's libxxhash), for checksums on
 * disk (WAL records, segment sections), bloom filters and hash tables. Reentrant. */
#ifndef QR_HASH_H
#define QR_HASH_H

#include <stddef.h>
#include <stdint.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

static inline uint64_t qr_hash64(const void *p, size_t n) { return XXH3_64bits(p, n); }
static inline uint64_t qr_hash64_seed(const void *p, size_t n, uint64_t seed)
{
    return XXH3_64bits_withSeed(p, n, seed);
}
/* 32-bit checksum stored on disk: the low half of xxh3-64. */
static inline uint32_t qr_checksum32(const void *p, size_t n)
{
    return (uint32_t)XXH3_64bits(p, n);
}

#endif

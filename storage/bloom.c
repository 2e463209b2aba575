/* bloom — see bloom.h for the format. A classic (not blocked) filter: with ~16 bits per
 * distinct token a block's filter is a few KB to tens of KB; a probe costs k cache misses at
 * worst, which is negligible next to decoding a column we would otherwise touch. */
#include "storage/bloom.h"

#include "common/qr_err.h"

static inline uint32_t bloom_probe(uint64_t hash, unsigned i, uint32_t nbits)
{
    uint32_t h1 = (uint32_t)hash, h2 = (uint32_t)(hash >> 32) | 1u;
    uint32_t g = h1 + (uint32_t)i * h2;
    return (uint32_t)(((uint64_t)g * nbits) >> 32);
}

void bloom_build(const uint64_t *hashes, size_t n, unsigned bits_per_key, qr_buf *out)
{
    if (!bits_per_key) bits_per_key = BLOOM_BITS_PER_KEY;
    uint64_t nbits64 = (uint64_t)n * bits_per_key;
    if (nbits64 < 64) nbits64 = 64;
    if (nbits64 > 0xffffffc0ull) nbits64 = 0xffffffc0ull;
    uint32_t nbits = (uint32_t)((nbits64 + 63) & ~63ull);
    /* k = bits_per_key * ln 2, rounded. */
    unsigned k = (bits_per_key * 693 + 500) / 1000;
    if (k < 1) k = 1;
    if (k > BLOOM_MAX_K) k = BLOOM_MAX_K;
    qr_buf_u8(out, (uint8_t)k);
    qr_buf_u8(out, BLOOM_HASH_TOKEN);
    qr_buf_u32(out, nbits);
    uint8_t *bits = qr_buf_extend(out, nbits / 8);
    if (!bits) return;
    for (size_t idx = 0; idx < n; idx++) {
        for (unsigned probe = 0; probe < k; probe++) {
            uint32_t bit = bloom_probe(hashes[idx], probe, nbits);
            bits[bit >> 3] |= (uint8_t)(1u << (bit & 7));
        }
    }
}

int bloom_view_init(bloom_view *b, const uint8_t *p, size_t len)
{
    if (len < BLOOM_HEADER_BYTES) return QR_ECORRUPT;
    uint8_t k = p[0];
    uint32_t nbits = qr_load_u32(p + 2);
    if (k < 1 || k > BLOOM_MAX_K || p[1] > BLOOM_HASH_TOKEN || nbits == 0 || nbits % 64 != 0 ||
        len - BLOOM_HEADER_BYTES != nbits / 8)
        return QR_ECORRUPT;
    b->k = k;
    b->hash = p[1];
    b->nbits = nbits;
    b->bits = p + BLOOM_HEADER_BYTES;
    return 0;
}

bool bloom_may_contain(const bloom_view *b, uint64_t hash)
{
    if (b->hash != BLOOM_HASH_TOKEN) return true;
    for (unsigned probe = 0; probe < b->k; probe++) {
        uint32_t bit = bloom_probe(hash, probe, b->nbits);
        if (!(b->bits[bit >> 3] >> (bit & 7) & 1)) return false;
    }
    return true;
}

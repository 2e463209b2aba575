/* tokenize — the one tokenizer of Quarry, shared by indexing and query matching.
 *
 * A token is a maximal run of ASCII letters and digits; bytes >= 0x80 count as letters, so
 * UTF-8 words stay whole. ASCII letters are lower-cased; every other byte separates
 * ("user_id=42" → "user", "id", "42"). Tokens longer than QR_TOKEN_MAX_BYTES are cut to that
 * length (the rest of the run is skipped) so term dictionaries stay bounded.
 *
 * Token hash (qr_token_hash, the key of every token bloom, memtable and segment alike): the
 * token's bytes are packed little-endian into 64-bit words (byte i at bits 8 * (i % 8) of
 * word i / 8, the last word zero-padded); h = QR_TOKEN_HASH_SEED; per word
 * h = (h ^ w) * QR_TOKEN_HASH_MUL, h ^= h >> 32; then h ^= len and the murmur3 finalizer
 * (fmix64). One multiply per 8 bytes, so a tokenizer folding bytes into words hashes as it
 * goes (qr_tokenize_hashes, invidx_builder_add_text) instead of hashing each token again.
 * Segment blooms built with this hash say so in their header (storage/bloom.h).
 * Reentrant; no allocation: the callback gets a pointer into the caller's scratch buffer. */
#ifndef QR_TOKENIZE_H
#define QR_TOKENIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define QR_TOKEN_MAX_BYTES 64
#define QR_TOKEN_HASH_SEED 0x9e3779b97f4a7c15ull
#define QR_TOKEN_HASH_MUL 0xff51afd7ed558ccdull

/* Called once per token with the lower-cased bytes (not NUL-terminated) and the byte offset
 * of the token in the input. Returning non-zero stops tokenizing; that value is returned. */
typedef int (*qr_token_fn)(void *ctx, const char *tok, size_t len, size_t offset);

int qr_tokenize(const char *text, size_t len, qr_token_fn fn, void *ctx);

/* Hashes of the tokens of text[*pos, len), at most cap of them, into hashes; *pos moves past
 * the last token hashed. Returns the count; call again while *pos < len. Same tokens, in the
 * same order, as qr_tokenize, each hashed as qr_token_hash would. */
size_t qr_tokenize_hashes(const char *text, size_t len, size_t *pos, uint64_t *hashes, size_t cap);

/* Table: non-zero for bytes that are part of tokens. */
extern const uint8_t qr_token_byte[256];
/* Table: the lower-cased byte for token bytes, 0 for separators (one load does both). */
extern const uint8_t qr_token_fold[256];

/* The steps of qr_token_hash, for tokenizers that build words as they go. */
static inline uint64_t qr_token_hash_word(uint64_t h, uint64_t word)
{
    h = (h ^ word) * QR_TOKEN_HASH_MUL;
    return h ^ (h >> 32);
}
static inline uint64_t qr_token_hash_end(uint64_t h, size_t len)
{
    h ^= (uint64_t)len;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

/* Hash of a (lower-cased) token, used by blooms and hash indexes. */
static inline uint64_t qr_token_hash(const char *tok, size_t len)
{
    uint64_t h = QR_TOKEN_HASH_SEED;
    size_t pos = 0;
    for (; pos + 8 <= len; pos += 8) {
        uint64_t w = 0;
        for (size_t idx = 0; idx < 8; idx++) w |= (uint64_t)(uint8_t)tok[pos + idx] << (8 * idx);
        h = qr_token_hash_word(h, w);
    }
    if (pos < len) {
        uint64_t w = 0;
        for (size_t idx = 0; pos + idx < len; idx++)
            w |= (uint64_t)(uint8_t)tok[pos + idx] << (8 * idx);
        h = qr_token_hash_word(h, w);
    }
    return qr_token_hash_end(h, len);
}

/* SWAR scanning (8 bytes at a time) for the hashing tokenizers. */
static inline uint64_t qr_token_load8(const uint8_t *s, size_t len, size_t pos)
{
    uint64_t x = 0;
    if (pos + 8 <= len)
        memcpy(&x, s + pos, 8);
    else if (pos < len)
        memcpy(&x, s + pos, len - pos); /* zero-filled: 0 separates */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x);
#endif
    return x;
}

/* High bit of each byte of x that is a token byte; *lower = x with A-Z folded to a-z. */
static inline uint64_t qr_token_mask8(uint64_t x, uint64_t *lower)
{
    const uint64_t H = 0x8080808080808080ull, L = 0x0101010101010101ull;
    uint64_t x7 = x & ~H, xl = x7 | 0x20 * L; /* per byte: x7 + c <= 0xff, no carries */
    uint64_t digit = (x7 + (0x80 - '0') * L) & ~(x7 + (0x7f - '9') * L);
    uint64_t alpha = (xl + (0x80 - 'a') * L) & ~(xl + (0x7f - 'z') * L);
    uint64_t tok = (x | digit | alpha) & H; /* bytes >= 0x80 count as letters */
    *lower = x | ((alpha & ~x & H) >> 2);   /* 0x20 set on ASCII letters */
    return tok;
}

/* The next token of s[*pos, len): its first QR_TOKEN_MAX_BYTES bytes, lower-cased, as
 * zero-padded words into w (room for QR_TOKEN_MAX_BYTES / 8), *nw words, *n bytes (cut),
 * *hash = qr_token_hash. *pos moves past the whole run. False when no token is left. */
static inline bool qr_token_next(const char *text, size_t len, size_t *pos, uint64_t *w, size_t *nw,
                                 size_t *n, uint64_t *hash)
{
    const uint8_t *s = (const uint8_t *)text;
    const uint64_t H = 0x8080808080808080ull;
    size_t at = *pos;
    uint64_t lw, m;
    for (;;) {
        if (at >= len) {
            *pos = len;
            return false;
        }
        m = qr_token_mask8(qr_token_load8(s, len, at), &lw);
        if (m) break;
        at += 8;
    }
    size_t skip = (size_t)__builtin_ctzll(m) >> 3;
    if (skip) {
        /* Words start at the token's first byte. A token that ends inside the loaded word
         * (most do) is shifted into place; one that reaches its end is loaded again. */
        at += skip;
        m >>= 8 * skip;
        lw >>= 8 * skip;
        uint64_t stop = ~m & H;
        if (!stop || ((size_t)__builtin_ctzll(stop) >> 3) >= 8 - skip)
            m = qr_token_mask8(qr_token_load8(s, len, at), &lw);
    }
    uint64_t h = QR_TOKEN_HASH_SEED;
    size_t words = 0, bytes = 0;
    for (;;) {
        uint64_t stop = ~m & H;
        size_t run = stop ? (size_t)__builtin_ctzll(stop) >> 3 : 8;
        if (run && words < QR_TOKEN_MAX_BYTES / 8) {
            uint64_t word = run == 8 ? lw : lw & ((1ull << (8 * run)) - 1);
            w[words++] = word;
            h = qr_token_hash_word(h, word);
            bytes += run;
        }
        at += run;
        if (run < 8) break;
        m = qr_token_mask8(qr_token_load8(s, len, at), &lw);
    }
    *pos = at;
    *nw = words;
    *n = bytes;
    *hash = qr_token_hash_end(h, bytes);
    return true;
}

#endif

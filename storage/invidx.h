/* invidx — the segment's inverted index: token → rows whose msg contains it.
 *
 * Built once per segment by invidx_builder: tokens are interned to term ids (a hash lookup
 * on qr_token_hash, which the bloom needs anyway) and every (term, row) occurrence is appended to
 * one flat array; invidx_builder_finish counting-sorts occurrences by term (rows stay
 * ascending because they were added in row order), sorts the distinct terms by bytes and
 * writes the blob below. No roaring_bitmap_add per occurrence: that was 2.4x the cost of the
 * rest of ingest (DESIGN.md §3).
 *
 * Blob (little-endian), all offsets relative to the blob:
 *   0   u32 magic "QIX1" (or "QIX2": sparse, below) | u32 term_count | u32 head_count |
 *       u32 terms_per_block
 *   16  u64 dict_len      | u64 post_len
 *   32  head_count x 20 B: u32 dict_off, u32 dict_crc, u64 post_off, u32 post_crc
 *       (dict block i is dict[dict_off_i, dict_off_i+1), its postings post[post_off_i,
 *       post_off_i+1); crcs are qr_checksum32 of those ranges)
 *   H = 32 + 20*head_count: u32 qr_checksum32 of bytes [0, H)
 *   H+4            dict: head_count front-coded blocks of up to terms_per_block terms
 *   H+4+dict_len   postings: the lists of terms with more than INVIDX_INLINE_MAX rows
 *                  (each distinct list once)
 * A term entry: uvarint shared (prefix bytes shared with the previous term, 0 at a block
 * start), uvarint (suffix_len << 1 | nib), the suffix (nib = 1: every suffix byte is 0-9 or
 * a-f and is stored as a nibble, two per byte, high first, an odd last one padded with 0 —
 * numbers and hex ids cost half), uvarint row_count (>= 1), then either row_count uvarints
 * (first row, then gaps >= 1) when row_count <= INVIDX_INLINE_MAX, or uvarint list word
 * (post_len << 3 | ref << 2 | kind), kind 0 = roaring portable format, 1 = uvarint first row
 * + gaps, 2 = uvarint first row + runs of up to INVIDX_PACK_RUN gaps, each run u8 width
 * (0..32) + the (gap - 1)s bit-packed (codec.h bit order), 3 = uvarint first row, u8 k, the
 * (gap - 1)s Rice-coded (v >> k ones, a zero, k low bits; bit b in byte b >> 3 at b & 7;
 * sparse indexes only). ref = 0: the list lies at the
 * running offset in the block's postings range; ref = 1: uvarint offset follows and the list
 * is an earlier term's (same rows), lying wholly inside one block's postings range, before
 * the running offset (template words share lists).
 * Terms are strictly increasing in byte order (memcmp, shorter first).
 * Sparse ("QIX2", compaction): terms whose rows lie in at most INVIDX_SPARSE_MAX_BLOCKS blocks
 * are left out (those blocks' blooms hold them); an absent term is then not an answer
 * (invidx_builder_finish_sparse).
 *
 * Reading: invidx_open checks the header's magic, counts and section lengths only (a fresh
 * process opening 53 indexes for one needle spent ~40 % of the query checksumming ~90 KB of
 * heads each); every head a lookup uses is bounds-checked, and every dict block and
 * postings range is checksummed when a lookup touches it (QR_ECORRUPT on mismatch; a head
 * pointing elsewhere fails its range's crc), so a flipped byte is never returned as an
 * answer. invidx_verify checks all of it, the heads checksum included.
 * Threads: a builder belongs to one thread; an opened invidx is read-only, any threads. */
#ifndef QR_INVIDX_H
#define QR_INVIDX_H

#include "common/qr_buf.h"
#include "common/qr_err.h"

#include <roaring/roaring.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INVIDX_MAGIC 0x31584951u        /* "QIX1": every term of the part */
#define INVIDX_MAGIC_SPARSE 0x32584951u /* "QIX2": terms of few blocks left out */
#define INVIDX_TERMS_PER_BLOCK 32
#define INVIDX_INLINE_MAX 2
#define INVIDX_TERM_MAX 255
#define INVIDX_HEADER_BYTES 32
#define INVIDX_HEAD_BYTES 20
#define INVIDX_PACK_RUN 128 /* gaps per bit-packed run: one width per run bounds outliers */
#define INVIDX_RICE_K_MAX 31
#ifndef INVIDX_SPARSE_MAX_BLOCKS
#define INVIDX_SPARSE_MAX_BLOCKS                                                                   \
    3 /* a sparse index leaves out terms of this many blocks or fewer */
#endif

/* Posting list forms (low bits of a term's list word: len << 3 | ref | kind). */
enum {
    INVIDX_LIST_ROARING = 0, /* CRoaring portable serialization */
    INVIDX_LIST_VARINT = 1,  /* uvarint first row, then uvarint gaps >= 1 */
    INVIDX_LIST_PACKED = 2,  /* uvarint first row, runs of (u8 width, packed gap - 1s) */
    INVIDX_LIST_RICE = 3,    /* uvarint first row, u8 k, Rice-coded gap - 1s (sparse index) */
    INVIDX_LIST_REF = 4,     /* flag: the list is an earlier term's, at uvarint offset */
};

typedef struct invidx_builder invidx_builder;

invidx_builder *invidx_builder_new(void);
/* A builder that only tracks distinct terms for invidx_builder_block_hashes (no postings:
 * the warm tier); do not call invidx_builder_finish on it. */
invidx_builder *invidx_builder_new_terms_only(void);
void invidx_builder_free(invidx_builder *b);
/* Records that row contains the token (rows must be added in non-decreasing order; repeats of a
 * token within one row are ignored). hash is ignored (kept for callers that have it; the
 * builder computes qr_token_hash once per distinct term). Errors: QR_ENOMEM, QR_EINVAL (len 0
 * or > INVIDX_TERM_MAX, row going backwards). */
int invidx_builder_add(invidx_builder *b, const char *tok, size_t len, uint64_t hash, uint32_t row);
/* Tokenizes text exactly as qr_tokenize (storage/tokenize.h) does and adds every token for
 * row: the fast path of segment writing (one pass over the bytes, no callback, the intern
 * hash computed while folding case). Errors as invidx_builder_add. */
int invidx_builder_add_text(invidx_builder *b, const char *text, size_t len, uint32_t row);
/* The tokens of one row as invidx_builder_add_text interned them, in text order (a long row
 * comes in several calls; row_start marks its first): ids are the builder's term ids (equal
 * ids ⇔ equal bytes); token t's lower-cased bytes are words[woff[t] ..] (nw[t] zero-padded
 * words, len[t] bytes). A non-zero return stops add_text with that error. */
typedef struct invidx_tokens {
    uint32_t row;
    bool row_start;
    uint32_t count;
    const uint32_t *ids;
    const uint64_t *words;
    const uint16_t *woff;
    const uint8_t *nw;
    const uint8_t *len;
} invidx_tokens;
typedef int (*invidx_token_sink)(void *ctx, const invidx_tokens *toks);
/* Hands every row's tokens to sink as add_text interns them (storage/phrase.h counts
 * adjacent pairs from them without tokenizing again); NULL stops. */
void invidx_builder_set_sink(invidx_builder *b, invidx_token_sink sink, void *ctx);
/* The qr_token_hash of every distinct term added since the previous call (for a block
 * bloom); *hashes stays valid until the next add. Returns their count. */
size_t invidx_builder_block_hashes(invidx_builder *b, const uint64_t **hashes);
/* From now on invidx_builder_block_hashes lists only the terms that fewer than
 * INVIDX_SPARSE_MAX_BLOCKS earlier blocks had: a term it leaves out occurs in more blocks,
 * so a sparse index (below) holds it. Blooms of a sparse segment need no more. */
void invidx_builder_block_hashes_first_seen(invidx_builder *b);
/* Appends the blob to out. Errors: QR_ENOMEM. */
int invidx_builder_finish(invidx_builder *b, qr_buf *out);
/* Like invidx_builder_finish, but when block_rows > 0 writes a sparse index ("QIX2"): a term
 * whose rows lie in at most INVIDX_SPARSE_MAX_BLOCKS blocks of block_rows rows (block k =
 * rows [k*block_rows, (k+1)*block_rows)) is left out; the block's bloom still holds it, so a reader
 * that finds no term in a sparse index must probe the blooms and scan the blocks they name
 * (seg_reader does). Such terms are mostly ids and numbers seen once; leaving them out is most of
 * the dictionary's bytes. */
int invidx_builder_finish_sparse(invidx_builder *b, uint32_t block_rows, qr_buf *out);
uint32_t invidx_builder_term_count(const invidx_builder *b);

typedef struct invidx {
    const uint8_t *blob;
    size_t blob_len;
    const uint8_t *heads;
    const uint8_t *dict;
    const uint8_t *post;
    uint64_t dict_len;
    uint64_t post_len;
    uint32_t term_count;
    uint32_t head_count;
    uint32_t per_block;
    uint32_t row_count; /* rows of the part: every posting must be below */
    bool sparse;        /* "QIX2": an absent term may still occur in a few blocks */
} invidx;

/* Borrows blob (which must outlive ix). Checks the header, not the heads (above).
 * Errors: QR_ECORRUPT (d: offset within the blob). */
int invidx_open(invidx *ix, const uint8_t *blob, size_t len, uint32_t row_count, qr_diag *d);
/* *out = rows containing term (caller frees), or NULL when the term is absent. */
int invidx_postings(const invidx *ix, const char *term, size_t len, roaring_bitmap_t **out,
                    qr_diag *d);
/* The same with keys from invidx_block_keys (or NULL): the search for the dict block then
 * reads no dictionary bytes but the block it ends on (~13 fewer scattered reads). */
int invidx_postings_keyed(const invidx *ix, const uint64_t *keys, const char *term, size_t len,
                          roaring_bitmap_t **out, qr_diag *d);
/* keys[0 .. head_count): the first 8 bytes (big-endian, 0-padded) of each dict block's first
 * term, for invidx_postings_keyed. Reads one entry per block (~4,600 for 146 K terms).
 * Errors: QR_ECORRUPT (a block undecodable or out of order; the block crcs are checked
 * by the lookups that use the keys). */
int invidx_block_keys(const invidx *ix, uint64_t *keys, qr_diag *d);
/* Calls fn for each term starting with prefix, in byte order; stops when fn returns
 * non-zero (returned as is if negative, else 0). */
int invidx_terms_with_prefix(const invidx *ix, const char *prefix, size_t len,
                             int (*fn)(void *ctx, const char *term, size_t len), void *ctx,
                             qr_diag *d);
/* Checks every checksum, term order, and that every posting decodes below row_count. */
int invidx_verify(const invidx *ix, qr_diag *d);

#endif

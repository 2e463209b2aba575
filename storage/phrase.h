/* phrase — a segment's adjacency pairs: which two-word phrases its postings answer exactly.
 *
 * A phrase search ("connection refused") intersects its words' posting lists and then has to
 * verify adjacency row by row, decompressing the msg frames of every candidate. In log data
 * most frequent word pairs come from the constant text of a message template: wherever both
 * words occur in a row they occur next to each other. For such a pair the intersection is the
 * answer, and no row needs its text.
 *
 * phrase_builder collects, while a segment is written (fed by the index builder's token sink:
 * the text is tokenized once), every adjacent token pair (token i
 * immediately followed by token i+1 in one msg, by the storage tokenizer) with the number of
 * rows that have it, and per token the rows that have it and whether some row has it twice.
 * phrase_builder_finish keeps a pair (a, b) only when it is exact: the rows holding a and b
 * (intersecting the segment's finished inverted index) are exactly the rows where b directly
 * follows a, and there are at least PHRASE_MIN_ROWS of them (fewer are cheap to verify).
 * A phrase t1 .. tn (n >= 2) is then answered by the intersection when every (ti, ti+1) is an
 * exact pair and every interior token t2 .. tn-1 occurs at most once in any row of the segment
 * ("once": then the ti+1 that follows ti is the one that precedes ti+2).
 *
 * Tokens holding a digit (ids, numbers, addresses: mostly unique, and most of a segment's
 * distinct tokens) take no part: a pair never involves one, and one between two words breaks
 * their adjacency. Tokens are compared by bytes, never by hash alone.
 *
 * Blob (little-endian; the segment ref's crc covers it; docs/format.md):
 *   u32 magic "QPH1" | uvarint token_count | uvarint pair_count
 *   token_count x (bytes token, u8 flags)   strictly increasing (memcmp, shorter first);
 *                                           flags bit 0: at most once in every row
 *   pair_count x (uvarint a - previous a, uvarint b)   sorted by (a, b); a, b < token_count
 * Errors: 0 or QR_E*; QR_ECORRUPT (diag offset within the blob) for a bad blob.
 * Threads: a builder belongs to one thread; an opened phrase_pairs is read-only. */
#ifndef QR_PHRASE_H
#define QR_PHRASE_H

#include "common/qr_arena.h"
#include "common/qr_buf.h"
#include "common/qr_err.h"
#include "storage/invidx.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PHRASE_MAGIC 0x31485051u /* "QPH1" */
/* A pair must be this many rows of the segment to be kept: fewer rows verify quickly. */
#define PHRASE_MIN_ROWS 32
#define PHRASE_ONCE 1u
/* Posting bitmaps held at once while finishing (bytes): pairs past it are not kept. */
#define PHRASE_FINISH_BUDGET (256u << 20)

typedef struct phrase_builder phrase_builder;

phrase_builder *phrase_builder_new(void);
void phrase_builder_free(phrase_builder *b);
/* Tokenizes text (qr_tokenize) and records its tokens and adjacent pairs for row. Rows must
 * not go backwards. text must stay valid until phrase_builder_finish (the first occurrence
 * of each token is kept by pointer). Errors: QR_ENOMEM, QR_EINVAL (row going backwards). */
int phrase_builder_add_text(phrase_builder *b, const char *text, size_t len, uint32_t row);
/* The same, from the tokens an inverted index builder interned (an invidx_token_sink: pass
 * the builder as ctx to invidx_builder_set_sink), so the text is tokenized once. A builder is
 * fed either this way or by add_text, not both. */
int phrase_builder_add_tokens(void *ctx, const invidx_tokens *toks);
/* Appends the blob to out. A pair whose rows are all the rows of one of its words is exact
 * from the builder's counts alone; with ix (the segment's finished inverted index, holding
 * every row added here) the others are checked by intersecting their words' rows (the cost
 * compaction pays; a flush passes NULL). *pair_count = pairs written; with 0 nothing is
 * appended (write no section). Errors: QR_ENOMEM, or ix's lookup errors. */
int phrase_builder_finish(phrase_builder *b, const invidx *ix, qr_buf *out, uint32_t *pair_count);

typedef struct phrase_pairs {
    uint32_t token_count;
    uint32_t pair_count;
    const uint8_t **tok; /* token bytes (into the blob) */
    uint8_t *tok_len;
    uint8_t *tok_flags;
    uint64_t *pairs; /* a << 32 | b, ascending */
} phrase_pairs;

/* Parses blob (which must outlive pp). Errors: QR_ENOMEM, QR_ECORRUPT (diag: offset). */
int phrase_pairs_open(phrase_pairs *pp, const uint8_t *blob, size_t len, qr_diag *d);
void phrase_pairs_close(phrase_pairs *pp);
/* True when the rows holding every token of the phrase (lower-cased, as the tokenizer makes
 * them; n >= 2) are exactly the rows holding the phrase. */
bool phrase_pairs_exact(const phrase_pairs *pp, const char *const *tokens, const uint32_t *lens,
                        uint32_t n);
/* Checks the blob decodes (what `quarry check` runs). */
int phrase_pairs_verify(const uint8_t *blob, size_t len, qr_diag *d);

#endif

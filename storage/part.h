/* part — the read API the engine uses: one interface over segments and memtables.
 *
 * A snapshot (storage/db.h) is a list of parts. A part is an immutable view of rows: a segment
 * file, or the rows of a memtable that existed when the snapshot was taken. Rows are numbered
 * 0..row_count-1 within the part; blocks are contiguous row ranges, each with metadata for
 * pruning (min/max ts, per service×level counts) and a token bloom. Parts with an inverted
 * index answer postings (roaring bitmaps of part row ids) and prefix term lookups.
 *
 * Columns are loaded per block into a caller-supplied arena (segments decode; memtables may
 * point at their own memory, which stays valid while the part is referenced).
 * Ownership: a part is reference counted (qr_part_ref/qr_part_unref); a snapshot holds one
 * reference per part. Everything a part hands out (metadata, dictionaries, schema) lives
 * until its last unref. Bitmaps from qr_part_postings are the caller's to roaring_bitmap_free.
 * Thread safety: every function may be called from many threads at once on one part.
 * Errors: 0 or QR_E*; QR_ECORRUPT with a diag naming the file and offset for bad bytes. */
#ifndef QR_PART_H
#define QR_PART_H

#include "common/qr_arena.h"
#include "common/qr_err.h"
#include "storage/event.h"

#include <roaring/roaring.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum qr_part_kind { QR_PART_SEGMENT = 1, QR_PART_MEMTABLE = 2 } qr_part_kind;

typedef enum qr_col_kind {
    QR_COL_TS = 1,
    QR_COL_INGEST_TS,
    QR_COL_LEVEL,
    QR_COL_SERVICE,
    QR_COL_HOST,
    QR_COL_MSG,
    QR_COL_FIELD, /* a field, named by (key, type) from the part's schema */
} qr_col_kind;

/* Count of rows of one (service, level) pair within a block. */
typedef struct qr_svc_level_count {
    uint32_t service_id;
    uint8_t level;
    uint32_t row_count;
} qr_svc_level_count;

typedef struct qr_block_meta {
    uint32_t first_row; /* part row id of the block's first row */
    uint32_t row_count;
    int64_t min_ts_ns;
    int64_t max_ts_ns;
    const qr_svc_level_count *counts; /* sorted by (service_id, level) */
    uint32_t count_n;
} qr_block_meta;

/* One field key with one value type; a key seen with two types has two entries. */
typedef struct qr_field_schema {
    qr_str key;
    uint8_t type;       /* qr_field_type */
    uint32_t row_count; /* rows that have it */
} qr_field_schema;

/* A column of one block. Exactly the members that fit the column are set:
 *   ts, ingest_ts, int fields:    i64
 *   float fields:                 f64
 *   level (qr_level), bool:       u8
 *   service, host, low-cardinality string fields: ids (+ dict, dict_count: the part's
 *                                 dictionary for that column; id indexes dict)
 *   msg, other string fields:     strs
 * present: bitmap (bit row_idx) of rows that have a value; NULL means every row has one.
 * A row without a value has 0 / empty string in the value array. */
typedef struct qr_column {
    uint32_t row_count;
    uint8_t type; /* qr_field_type of the values */
    const int64_t *i64;
    const double *f64;
    const uint8_t *u8;
    const uint32_t *ids;
    const qr_str *dict;
    uint32_t dict_count;
    const qr_str *strs;
    const uint64_t *present;
} qr_column;

static inline bool qr_column_has(const qr_column *c, uint32_t row_idx)
{
    return !c->present || (c->present[row_idx >> 6] >> (row_idx & 63) & 1);
}

typedef struct qr_part qr_part;

/* Called per matching term by qr_part_terms_with_prefix; non-zero stops the walk. */
typedef int (*qr_term_fn)(void *ctx, const char *term, size_t len);

typedef struct qr_part_ops {
    int (*block_meta)(qr_part *p, uint32_t block_idx, qr_block_meta *out);
    int (*load_column)(qr_part *p, uint32_t block_idx, qr_col_kind kind, uint32_t field_idx,
                       qr_arena *arena, qr_column *out, qr_diag *d);
    /* msg of the given rows (block-relative, ascending) only: decompresses just the frames
     * that hold them. out[i] for rows[i]. */
    int (*load_msgs)(qr_part *p, uint32_t block_idx, const uint32_t *rows, uint32_t n,
                     qr_arena *arena, qr_str *out, qr_diag *d);
    bool (*block_may_contain_token)(qr_part *p, uint32_t block_idx, uint64_t token_hash);
    /* Rows whose msg contains the (lower-cased) token. *out NULL when the term is absent.
     * QR_ENOTFOUND when the part has no inverted index (caller falls back to bloom + scan). */
    int (*postings)(qr_part *p, const char *term, size_t len, roaring_bitmap_t **out, qr_diag *d);
    /* Terms starting with prefix, in byte order. QR_ENOTFOUND without an inverted index. */
    int (*terms_with_prefix)(qr_part *p, const char *prefix, size_t len, qr_term_fn fn, void *ctx,
                             qr_diag *d);
    /* True when the rows holding every token of the phrase (n >= 2, lower-cased) are exactly
     * the rows holding the phrase (storage/phrase.h). NULL: never. */
    bool (*phrase_exact)(qr_part *p, const char *const *tokens, const uint32_t *lens, uint32_t n);
    void (*destroy)(qr_part *p);
} qr_part_ops;

struct qr_part {
    const qr_part_ops *ops;
    void *impl;
    atomic_int refs;
    qr_part_kind kind;
    uint64_t id; /* segment id, or memtable id */
    int64_t min_ts_ns;
    int64_t max_ts_ns;
    uint32_t row_count;
    uint32_t block_count;
    bool has_postings;
    bool postings_exact; /* postings hold exactly the rows with the term (segments); false:
                            candidates, a superset the reader verifies (memtables) */
    /* The inverted index is sparse (compacted segments): terms that occur in a few blocks
     * are not in the term dictionary. postings() still answers exactly for every term (an
     * absent term is looked up through the block blooms and a scan of the blocks they name),
     * but terms_with_prefix lists the indexed terms only, so a prefix search must verify
     * rows itself. Its blooms hold only the terms each block is among the first to have (every
     * term the index leaves out, not every term of the block): block_may_contain_token may
     * answer false for an indexed term; ask postings(). */
    bool postings_sparse;
    /* dictionaries: service and host ids → names */
    const qr_str *services;
    uint32_t service_count;
    const qr_str *hosts;
    uint32_t host_count;
    /* per-level row counts over the whole part, and rows per service id */
    uint64_t level_rows[QR_LEVEL_COUNT];
    const uint64_t *service_rows;
    /* field schema */
    const qr_field_schema *fields;
    uint32_t field_count;
    const char *path; /* file for segments, NULL for memtables */
};

static inline void qr_part_ref(qr_part *p) { atomic_fetch_add(&p->refs, 1); }
void qr_part_unref(qr_part *p);

static inline int qr_part_block_meta(qr_part *p, uint32_t block_idx, qr_block_meta *out)
{
    return p->ops->block_meta(p, block_idx, out);
}
static inline int qr_part_load_column(qr_part *p, uint32_t block_idx, qr_col_kind kind,
                                      uint32_t field_idx, qr_arena *arena, qr_column *out,
                                      qr_diag *d)
{
    return p->ops->load_column(p, block_idx, kind, field_idx, arena, out, d);
}
static inline int qr_part_load_msgs(qr_part *p, uint32_t block_idx, const uint32_t *rows,
                                    uint32_t n, qr_arena *arena, qr_str *out, qr_diag *d)
{
    return p->ops->load_msgs(p, block_idx, rows, n, arena, out, d);
}
static inline bool qr_part_block_may_contain_token(qr_part *p, uint32_t block_idx,
                                                   uint64_t token_hash)
{
    return p->ops->block_may_contain_token(p, block_idx, token_hash);
}
static inline int qr_part_postings(qr_part *p, const char *term, size_t len, roaring_bitmap_t **out,
                                   qr_diag *d)
{
    return p->ops->postings(p, term, len, out, d);
}
static inline bool qr_part_phrase_exact(qr_part *p, const char *const *tokens,
                                        const uint32_t *lens, uint32_t n)
{
    return p->ops->phrase_exact && p->ops->phrase_exact(p, tokens, lens, n);
}
static inline int qr_part_terms_with_prefix(qr_part *p, const char *prefix, size_t len,
                                            qr_term_fn fn, void *ctx, qr_diag *d)
{
    return p->ops->terms_with_prefix(p, prefix, len, fn, ctx, d);
}
/* Index of the field (key, type) in p->fields, or -1. */
int qr_part_field_find(const qr_part *p, const char *key, size_t key_len, uint8_t type);

#endif

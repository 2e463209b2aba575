/* invidx — see invidx.h for the blob format and the build algorithm.
 *
 * Lookup: binary search over the heads (each probe checksums one small dict block and reads
 * its first term), then a linear walk of at most INVIDX_TERMS_PER_BLOCK front-coded terms.
 * A unique token (the needle case) ends with an inline row: no postings read at all. */
#include "storage/invidx.h"

#include "common/qr_hash.h"
#include "storage/codec.h"
#include "storage/tokenize.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- builder */

/* Terms are stored zero-padded to whole 64-bit words (tokens never contain a 0 byte, and
 * lengths are compared too), so the intern path compares and hashes words, not bytes. The
 * intern hash is qr_token_hash, computed while the tokenizer folds bytes into words, so the
 * bloom key comes for free.
 * Cache misses dominate interning (a segment has hundreds of thousands of terms): a table
 * slot holds the term's first word, a tag and its length, so a term of up to 8 bytes is
 * recognised from the slot alone; everything an occurrence updates lives in one term_hot
 * record. add_text hashes a run of tokens first and prefetches their slots, then their
 * records, so the misses overlap instead of queueing. */
#define TERM_WORDS_MAX ((INVIDX_TERM_MAX + 8) / 8)
#define TEXT_RUN_TOKENS 32 /* tokens add_text resolves together */

typedef struct term_slot {
    uint64_t word0;   /* the term's first word */
    uint32_t tag_len; /* hash bits 63..40 << 8 | term length (<= INVIDX_TERM_MAX) */
    uint32_t id1;     /* term id + 1; 0 = empty slot */
} term_slot;

typedef struct term_hot {
    uint64_t hash;     /* qr_token_hash (the bloom key) */
    uint32_t last_row; /* last row recorded, to drop repeats within a row */
    uint32_t rows;     /* distinct rows */
    uint32_t mark;     /* last block mark that listed the term */
    uint32_t woff;     /* into term_words */
} term_hot;

struct invidx_builder {
    /* terms, by id (order of first appearance) */
    term_hot *hot;
    uint8_t *term_len;
    uint8_t *term_blocks; /* blocks that listed the term, saturating (sparse builds only) */
    uint32_t term_count;
    uint32_t term_cap;
    uint64_t *term_words;
    size_t words_len;
    size_t words_cap;
    term_slot *table; /* open addressing on the hash's low bits */
    uint32_t table_mask;
    /* distinct terms since the last invidx_builder_block_hashes */
    uint64_t *mark_hashes;
    size_t mark_count;
    size_t mark_cap;
    uint32_t mark;
    /* occurrences: term ids in row order; row_start[r] = first occurrence of row r */
    uint32_t *occ_term;
    size_t occ_count;
    size_t occ_cap;
    uint32_t *row_start;
    size_t row_start_cap;
    uint32_t rows_seen; /* rows 0..rows_seen-1 have their row_start set */
    bool terms_only;
    bool first_seen_only; /* block hashes list only terms no earlier block had */
    bool failed;
    invidx_token_sink sink; /* add_text's tokens per row, in order (NULL: none) */
    void *sink_ctx;
};

static invidx_builder *builder_new(bool terms_only)
{
    invidx_builder *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->terms_only = terms_only;
    b->mark = 1;
    b->table_mask = 4095;
    b->table = calloc(b->table_mask + 1, sizeof *b->table);
    if (!b->table) {
        free(b);
        return NULL;
    }
    return b;
}

invidx_builder *invidx_builder_new(void) { return builder_new(false); }

void invidx_builder_set_sink(invidx_builder *b, invidx_token_sink sink, void *ctx)
{
    b->sink = sink;
    b->sink_ctx = ctx;
}

invidx_builder *invidx_builder_new_terms_only(void) { return builder_new(true); }

void invidx_builder_free(invidx_builder *b)
{
    if (!b) return;
    free(b->hot);
    free(b->term_len);
    free(b->term_blocks);
    free(b->term_words);
    free(b->table);
    free(b->mark_hashes);
    free(b->occ_term);
    free(b->row_start);
    free(b);
}

void invidx_builder_block_hashes_first_seen(invidx_builder *b) { b->first_seen_only = true; }

uint32_t invidx_builder_term_count(const invidx_builder *b) { return b->term_count; }

static bool grow(void **p, size_t elem, size_t need, size_t *cap)
{
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap * 2 : 1024;
    while (nc < need) nc *= 2;
    void *np = realloc(*p, nc * elem);
    if (!np) return false;
    *p = np;
    *cap = nc;
    return true;
}

/* Packs len bytes into zero-padded words; returns the word count (at least 1). */
static size_t words_from_bytes(const uint8_t *p, size_t len, uint64_t *w)
{
    size_t nw = len ? (len + 7) / 8 : 1;
    for (size_t idx = 0; idx < nw; idx++) w[idx] = 0;
    for (size_t idx = 0; idx < len; idx++) w[idx / 8] |= (uint64_t)p[idx] << (8 * (idx % 8));
    return nw;
}

static size_t words_to_bytes(const uint64_t *w, size_t len, uint8_t *p)
{
    for (size_t idx = 0; idx < len; idx++) p[idx] = (uint8_t)(w[idx / 8] >> (8 * (idx % 8)));
    return len;
}

/* qr_token_hash of the zero-padded term w[0..nw) of len bytes (the intern hash too). */
static inline uint64_t words_hash(const uint64_t *w, size_t nw, size_t len)
{
    uint64_t h = QR_TOKEN_HASH_SEED;
    for (size_t idx = 0; idx < nw && idx * 8 < len; idx++) h = qr_token_hash_word(h, w[idx]);
    return qr_token_hash_end(h, len);
}

static inline uint32_t slot_tag_len(uint64_t h, size_t len)
{
    return ((uint32_t)(h >> 32) & 0xffffff00u) | (uint32_t)len;
}

static int table_rehash(invidx_builder *b)
{
    uint32_t mask = b->table_mask * 2 + 1;
    term_slot *t = calloc((size_t)mask + 1, sizeof *t);
    if (!t) return QR_ENOMEM;
    for (uint32_t slot = 0; slot <= b->table_mask; slot++) {
        const term_slot *e = &b->table[slot];
        if (!e->id1) continue;
        uint32_t to = (uint32_t)b->hot[e->id1 - 1].hash & mask;
        while (t[to].id1) to = (to + 1) & mask;
        t[to] = *e;
    }
    free(b->table);
    b->table = t;
    b->table_mask = mask;
    return 0;
}

static int term_new(invidx_builder *b, const uint64_t *w, size_t nw, size_t len, uint64_t h,
                    uint32_t slot, uint32_t *id)
{
    if (b->term_count == b->term_cap) {
        size_t cap = b->term_cap, c2;
        c2 = cap;
        if (!grow((void **)&b->hot, sizeof(term_hot), cap + 1, &c2)) return QR_ENOMEM;
        c2 = cap;
        if (!grow((void **)&b->term_len, 1, cap + 1, &c2)) return QR_ENOMEM;
        c2 = cap;
        if (!grow((void **)&b->term_blocks, 1, cap + 1, &c2)) return QR_ENOMEM;
        if (c2 >= UINT32_MAX) return QR_ENOMEM;
        b->term_cap = (uint32_t)c2;
    }
    if (b->words_len + nw > UINT32_MAX) return QR_ENOMEM;
    if (!grow((void **)&b->term_words, sizeof(uint64_t), b->words_len + nw, &b->words_cap))
        return QR_ENOMEM;
    uint32_t nid = b->term_count++;
    memcpy(b->term_words + b->words_len, w, nw * sizeof *w);
    b->hot[nid] = (term_hot){h, UINT32_MAX, 0, 0, (uint32_t)b->words_len};
    b->term_len[nid] = (uint8_t)len;
    b->term_blocks[nid] = 0;
    b->words_len += nw;
    b->table[slot] = (term_slot){w[0], slot_tag_len(h, len), nid + 1};
    *id = nid;
    if ((uint64_t)b->term_count * 2 > b->table_mask) return table_rehash(b);
    return 0;
}

/* Interns the zero-padded term w[0..nw) of len bytes (nw = max(1, ceil(len / 8))) whose
 * qr_token_hash is h. */
static inline int term_intern(invidx_builder *b, const uint64_t *w, size_t nw, size_t len,
                              uint64_t h, uint32_t *id)
{
    uint32_t tl = slot_tag_len(h, len);
    uint32_t slot = (uint32_t)h & b->table_mask;
    for (;;) {
        const term_slot *e = &b->table[slot];
        if (!e->id1) break;
        if (e->tag_len == tl && e->word0 == w[0]) {
            uint32_t cand = e->id1 - 1;
            const uint64_t *cw = b->term_words + b->hot[cand].woff;
            size_t idx = 1;
            while (idx < nw && cw[idx] == w[idx]) idx++;
            if (idx >= nw) {
                *id = cand;
                return 0;
            }
        }
        slot = (slot + 1) & b->table_mask;
    }
    return term_new(b, w, nw, len, h, slot, id);
}

/* Starts rows up to `row` (rows must not go backwards). */
static inline int rows_advance(invidx_builder *b, uint32_t row)
{
    if (row + 1 < b->rows_seen || row == UINT32_MAX) return QR_EINVAL;
    if (row >= b->rows_seen) {
        if (!grow((void **)&b->row_start, sizeof(uint32_t), (size_t)row + 2, &b->row_start_cap))
            return QR_ENOMEM;
        if (b->occ_count > UINT32_MAX - 1) return QR_ENOMEM;
        for (uint32_t r = b->rows_seen; r <= row; r++) b->row_start[r] = (uint32_t)b->occ_count;
        b->rows_seen = row + 1;
    }
    return 0;
}

static inline int term_occurs(invidx_builder *b, uint32_t id, uint32_t row)
{
    term_hot *t = &b->hot[id];
    if (t->mark != b->mark) {
        t->mark = b->mark;
        if (b->first_seen_only) {
            uint8_t seen = b->term_blocks[id];
            if (seen < UINT8_MAX) b->term_blocks[id] = (uint8_t)(seen + 1);
            if (seen >= INVIDX_SPARSE_MAX_BLOCKS) goto listed; /* the index has it */
        }
        if (!grow((void **)&b->mark_hashes, sizeof(uint64_t), b->mark_count + 1, &b->mark_cap))
            return QR_ENOMEM;
        b->mark_hashes[b->mark_count++] = t->hash;
    }
listed:
    if (t->last_row == row) return 0;
    t->last_row = row;
    t->rows++;
    if (b->terms_only) return 0;
    if (!grow((void **)&b->occ_term, sizeof(uint32_t), b->occ_count + 1, &b->occ_cap))
        return QR_ENOMEM;
    b->occ_term[b->occ_count++] = id;
    return 0;
}

int invidx_builder_add(invidx_builder *b, const char *tok, size_t len, uint64_t hash, uint32_t row)
{
    (void)hash; /* recomputed once per distinct term */
    if (b->failed) return QR_ENOMEM;
    if (len == 0 || len > INVIDX_TERM_MAX) return QR_EINVAL;
    int rc = rows_advance(b, row);
    if (rc) return rc == QR_EINVAL ? rc : (b->failed = true, rc);
    uint64_t w[TERM_WORDS_MAX];
    size_t nw = words_from_bytes((const uint8_t *)tok, len, w);
    uint32_t id;
    rc = term_intern(b, w, nw, len, words_hash(w, nw, len), &id);
    if (!rc) rc = term_occurs(b, id, row);
    if (rc) b->failed = true;
    return rc;
}

/* A run of tokens hashed but not yet interned (add_text). */
typedef struct text_run {
    uint64_t hash[TEXT_RUN_TOKENS];
    uint32_t id[TEXT_RUN_TOKENS];
    uint8_t len[TEXT_RUN_TOKENS];
    uint8_t nw[TEXT_RUN_TOKENS];
    uint16_t woff[TEXT_RUN_TOKENS];
    uint64_t words[TEXT_RUN_TOKENS * QR_TOKEN_MAX_BYTES / 8];
    uint32_t count;
    uint32_t words_len;
    bool row_start; /* no earlier run of this row went to the sink */
} text_run;

/* Interns the run's tokens and records them for row: slots prefetched first, then the
 * records of the ids found. */
static int run_flush(invidx_builder *b, text_run *run, uint32_t row)
{
    for (uint32_t t = 0; t < run->count; t++)
        __builtin_prefetch(&b->table[(uint32_t)run->hash[t] & b->table_mask]);
    for (uint32_t t = 0; t < run->count; t++) {
        int rc = term_intern(b, run->words + run->woff[t], run->nw[t], run->len[t], run->hash[t],
                             &run->id[t]);
        if (rc) return rc;
        __builtin_prefetch(&b->hot[run->id[t]], 1);
    }
    for (uint32_t t = 0; t < run->count; t++) {
        int rc = term_occurs(b, run->id[t], row);
        if (rc) return rc;
    }
    if (b->sink) {
        invidx_tokens toks = {row,        run->row_start, run->count, run->id,
                              run->words, run->woff,      run->nw,    run->len};
        int rc = b->sink(b->sink_ctx, &toks);
        if (rc) return rc;
    }
    run->row_start = false;
    run->count = 0;
    run->words_len = 0;
    return 0;
}

int invidx_builder_add_text(invidx_builder *b, const char *text, size_t len, uint32_t row)
{
    if (b->failed) return QR_ENOMEM;
    int rc = rows_advance(b, row);
    if (rc) return rc == QR_EINVAL ? rc : (b->failed = true, rc);
    text_run run;
    run.count = 0;
    run.words_len = 0;
    run.row_start = true;
    size_t pos = 0, nw, n;
    uint64_t h;
    while (qr_token_next(text, len, &pos, run.words + run.words_len, &nw, &n, &h)) {
        uint32_t t = run.count++;
        run.hash[t] = h;
        run.len[t] = (uint8_t)n;
        run.nw[t] = (uint8_t)nw;
        run.woff[t] = (uint16_t)run.words_len;
        run.words_len += (uint32_t)nw;
        if (run.count == TEXT_RUN_TOKENS && (rc = run_flush(b, &run, row))) {
            b->failed = true;
            return rc;
        }
    }
    if (run.count && (rc = run_flush(b, &run, row))) {
        b->failed = true;
        return rc;
    }
    return 0;
}

size_t invidx_builder_block_hashes(invidx_builder *b, const uint64_t **hashes)
{
    *hashes = b->mark_hashes;
    size_t n = b->mark_count;
    b->mark_count = 0;
    if (++b->mark == 0) { /* wrapped: forget every term's mark */
        for (uint32_t id = 0; id < b->term_count; id++) b->hot[id].mark = 0;
        b->mark = 1;
    }
    return n;
}

typedef struct term_ref {
    const uint8_t *p;
    uint32_t len;
    uint32_t id;
} term_ref;

static int term_ref_cmp(const void *a, const void *b)
{
    const term_ref *x = a, *y = b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    if (c) return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

typedef struct sort_key {
    uint64_t key; /* the term's first 8 bytes, big-endian, zero-padded */
    uint32_t id;
} sort_key;

/* Sorts terms by bytes: LSD radix sort (16-bit digits, skipping digits every key shares) on
 * the first 8 bytes, then a comparison sort inside each run of equal keys (terms sharing 8
 * bytes). A comparison qsort of all terms was a visible share of the flush. */
static int terms_sort(const invidx_builder *b, const uint8_t *bytes, const uint32_t *off,
                      term_ref *order)
{
    uint32_t n = b->term_count;
    sort_key *k1 = malloc((n ? n : 1) * sizeof *k1), *k2 = malloc((n ? n : 1) * sizeof *k2);
    uint32_t *count = malloc(65536 * sizeof *count);
    if (!k1 || !k2 || !count) {
        free(k1);
        free(k2);
        free(count);
        return QR_ENOMEM;
    }
    for (uint32_t id = 0; id < n; id++) {
        uint64_t key = 0;
        uint32_t len = b->term_len[id];
        for (uint32_t idx = 0; idx < 8; idx++)
            key = key << 8 | (idx < len ? bytes[off[id] + idx] : 0);
        k1[id] = (sort_key){key, id};
    }
    for (unsigned shift = 0; shift < 64; shift += 16) {
        memset(count, 0, 65536 * sizeof *count);
        for (uint32_t idx = 0; idx < n; idx++) count[(k1[idx].key >> shift) & 0xffff]++;
        if (n && count[(k1[0].key >> shift) & 0xffff] == n) continue; /* all equal */
        uint32_t acc = 0;
        for (uint32_t d = 0; d < 65536; d++) {
            uint32_t c = count[d];
            count[d] = acc;
            acc += c;
        }
        for (uint32_t idx = 0; idx < n; idx++)
            k2[count[(k1[idx].key >> shift) & 0xffff]++] = k1[idx];
        sort_key *t = k1;
        k1 = k2;
        k2 = t;
    }
    for (uint32_t idx = 0; idx < n; idx++) {
        uint32_t id = k1[idx].id;
        order[idx] = (term_ref){bytes + off[id], b->term_len[id], id};
    }
    for (uint32_t lo = 0; lo < n;) {
        uint32_t hi = lo + 1;
        while (hi < n && k1[hi].key == k1[lo].key) hi++;
        if (hi - lo > 1) qsort(order + lo, hi - lo, sizeof *order, term_ref_cmp);
        lo = hi;
    }
    free(k1);
    free(k2);
    free(count);
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

/* Bytes of the packed form of rows[0..n): uvarint first row, then per run of up to
 * INVIDX_PACK_RUN gaps: u8 width, the (gap - 1)s bit-packed at that width. */
static size_t packed_size(const uint32_t *rows, uint32_t n)
{
    size_t size = uvarint_len(rows[0]);
    for (uint32_t at = 1; at < n; at += INVIDX_PACK_RUN) {
        uint32_t cnt = n - at < INVIDX_PACK_RUN ? n - at : INVIDX_PACK_RUN;
        uint32_t or_bits = 0;
        for (uint32_t idx = at; idx < at + cnt; idx++) or_bits |= rows[idx] - rows[idx - 1] - 1;
        size += 1 + codec_bitpack_bytes(cnt, codec_width_u64(or_bits));
    }
    return size;
}

static bool packed_put(const uint32_t *rows, uint32_t n, qr_buf *post)
{
    uint64_t gaps[INVIDX_PACK_RUN];
    qr_buf_uvarint(post, rows[0]);
    for (uint32_t at = 1; at < n; at += INVIDX_PACK_RUN) {
        uint32_t cnt = n - at < INVIDX_PACK_RUN ? n - at : INVIDX_PACK_RUN;
        uint64_t or_bits = 0;
        for (uint32_t idx = 0; idx < cnt; idx++) {
            gaps[idx] = rows[at + idx] - rows[at + idx - 1] - 1;
            or_bits |= gaps[idx];
        }
        unsigned width = codec_width_u64(or_bits);
        qr_buf_u8(post, (uint8_t)width);
        uint8_t *p = qr_buf_extend(post, codec_bitpack_bytes(cnt, width));
        if (!p) return false;
        codec_bitpack(gaps, cnt, width, p);
    }
    return qr_buf_ok(post);
}

/* Rice coding of the (gap - 1)s with parameter k: v >> k in unary (that many 1 bits, then a
 * 0), then the k low bits of v; bits fill each byte from bit 0. Near the entropy of gaps
 * spread like a term's occurrences; ~15 % smaller than the packed form (compaction only:
 * it decodes a few times slower). */
static uint64_t rice_bits(const uint32_t *rows, uint32_t n, unsigned k)
{
    uint64_t bits = 0;
    for (uint32_t idx = 1; idx < n; idx++) bits += ((rows[idx] - rows[idx - 1] - 1) >> k) + 1 + k;
    return bits;
}

/* The k that makes the list smallest, and its size in bytes (uvarint first row, u8 k, bits). */
static size_t rice_size(const uint32_t *rows, uint32_t n, unsigned *k_out)
{
    uint64_t mean = ((uint64_t)rows[n - 1] - rows[0] - (n - 1)) / (n - 1);
    unsigned guess = 0;
    while (guess < INVIDX_RICE_K_MAX && (2ull << guess) <= mean) guess++;
    uint64_t best = UINT64_MAX;
    unsigned best_k = 0;
    for (unsigned k = guess ? guess - 1 : 0; k <= guess + 1 && k <= INVIDX_RICE_K_MAX; k++) {
        uint64_t b = rice_bits(rows, n, k);
        if (b < best) {
            best = b;
            best_k = k;
        }
    }
    *k_out = best_k;
    return uvarint_len(rows[0]) + 1 + (size_t)((best + 7) / 8);
}

static bool rice_put(const uint32_t *rows, uint32_t n, unsigned k, size_t size, qr_buf *post)
{
    size_t start = post->len;
    qr_buf_uvarint(post, rows[0]);
    qr_buf_u8(post, (uint8_t)k);
    size_t body = size - (post->len - start);
    uint8_t *p = qr_buf_extend(post, body);
    if (!p) return false;
    memset(p, 0, body);
    uint64_t bit = 0;
    for (uint32_t idx = 1; idx < n; idx++) {
        uint32_t v = rows[idx] - rows[idx - 1] - 1;
        for (uint32_t q = v >> k; q; q--, bit++) p[bit >> 3] |= (uint8_t)(1u << (bit & 7));
        bit++; /* the 0 that ends the unary part */
        for (unsigned b = 0; b < k; b++, bit++)
            if (v >> b & 1) p[bit >> 3] |= (uint8_t)(1u << (bit & 7));
    }
    return qr_buf_ok(post);
}

/* Writes one posting list (n > INLINE_MAX rows) to post in the smallest of its forms (Rice
 * among them when rice is set); returns the entry word (len << 3 | kind) or 0 on OOM. */
static uint64_t postings_put(const uint32_t *rows, uint32_t n, bool rice, qr_buf *post)
{
    size_t vsize = uvarint_len(rows[0]);
    for (uint32_t idx = 1; idx < n; idx++) vsize += uvarint_len(rows[idx] - rows[idx - 1]);
    size_t psize = packed_size(rows, n);
    size_t best = vsize < psize ? vsize : psize;
    /* Roaring only wins on dense lists (runs, bitset containers): try it on long ones. */
    if (n >= 4096) {
        roaring_bitmap_t *bm = roaring_bitmap_of_ptr(n, rows);
        if (!bm) return 0;
        roaring_bitmap_run_optimize(bm);
        size_t rsize = roaring_bitmap_portable_size_in_bytes(bm);
        uint8_t *p = rsize < best ? qr_buf_extend(post, rsize) : NULL;
        if (p) roaring_bitmap_portable_serialize(bm, (char *)p);
        roaring_bitmap_free(bm);
        if (rsize < best) return p ? (uint64_t)rsize << 3 | INVIDX_LIST_ROARING : 0;
    }
    unsigned k = 0;
    size_t rsize = rice ? rice_size(rows, n, &k) : SIZE_MAX;
    if (rsize < best)
        return rice_put(rows, n, k, rsize, post) ? (uint64_t)rsize << 3 | INVIDX_LIST_RICE : 0;
    if (psize < vsize)
        return packed_put(rows, n, post) ? (uint64_t)psize << 3 | INVIDX_LIST_PACKED : 0;
    qr_buf_uvarint(post, rows[0]);
    for (uint32_t idx = 1; idx < n; idx++) qr_buf_uvarint(post, rows[idx] - rows[idx - 1]);
    return qr_buf_ok(post) ? (uint64_t)vsize << 3 | INVIDX_LIST_VARINT : 0;
}

/* Lists already written, by a hash of their rows: a term whose rows equal an earlier
 * term's (words of one message template) points at that list instead of repeating it. */
typedef struct list_seen {
    uint64_t hash;
    const uint32_t *rows;
    uint32_t n;
    uint64_t word; /* len << 3 | kind */
    uint64_t off;  /* in the postings section */
} list_seen;

typedef struct list_table {
    list_seen *slots;
    uint32_t mask;
    uint32_t count;
} list_table;

/* Finds an equal list or the empty slot where it goes. */
static list_seen *list_find(list_table *t, const uint32_t *rows, uint32_t n, uint64_t hash)
{
    uint32_t slot = (uint32_t)hash & t->mask;
    for (;;) {
        list_seen *e = &t->slots[slot];
        if (!e->rows) return e;
        if (e->hash == hash && e->n == n && memcmp(e->rows, rows, (size_t)n * sizeof *rows) == 0)
            return e;
        slot = (slot + 1) & t->mask;
    }
}

/* Hex digit value + 1 of a lower-case hex digit, 0 for any other byte (nibble suffixes). */
static const uint8_t nib_of[256] = {
    ['0'] = 1, ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};
static const char nib_char[16] = "0123456789abcdef";

/* Appends a term suffix: uvarint (len << 1 | nibbles), then the bytes, or, when every byte
 * is 0-9 or a-f (numbers, hex ids), two per byte (high nibble first, a last odd one padded
 * with 0). */
static void suffix_put(qr_buf *dict, const uint8_t *p, uint32_t len)
{
    bool nib = len > 0;
    for (uint32_t idx = 0; idx < len && nib; idx++) nib = nib_of[p[idx]] != 0;
    qr_buf_uvarint(dict, (uint64_t)len << 1 | nib);
    if (!nib) {
        qr_buf_append(dict, p, len);
        return;
    }
    uint8_t *out = qr_buf_extend(dict, (len + 1) / 2);
    if (!out) return;
    for (uint32_t idx = 0; idx < len; idx += 2) {
        unsigned hi = nib_of[p[idx]] - 1u;
        unsigned lo = idx + 1 < len ? nib_of[p[idx + 1]] - 1u : 0;
        out[idx / 2] = (uint8_t)(hi << 4 | lo);
    }
}

/* Checksum of b[off, len); b->data may be NULL while empty. */
static uint32_t range_crc(const qr_buf *b, size_t off)
{
    return b->len > off ? qr_checksum32(b->data + off, b->len - off) : qr_checksum32("", 0);
}

int invidx_builder_finish(invidx_builder *b, qr_buf *out)
{
    return invidx_builder_finish_sparse(b, 0, out);
}

int invidx_builder_finish_sparse(invidx_builder *b, uint32_t block_rows, qr_buf *out)
{
    if (b->failed) return QR_ENOMEM;
    int rc = QR_ENOMEM;
    uint32_t nterms = b->term_count;
    uint64_t *start = malloc(((size_t)nterms + 1) * sizeof *start);
    uint32_t *rows = malloc((b->occ_count ? b->occ_count : 1) * sizeof *rows);
    term_ref *order = malloc((nterms ? nterms : 1) * sizeof *order);
    uint32_t *toff = malloc((nterms ? nterms : 1) * sizeof *toff);
    uint8_t *tbytes = malloc(b->words_len * 8 + 1);
    qr_buf heads, dict, post;
    qr_buf_init(&heads);
    qr_buf_init(&dict);
    qr_buf_init(&post);
    list_table lists = {0};
    {
        uint32_t nlists = 0;
        for (uint32_t id = 0; id < nterms; id++) nlists += b->hot[id].rows > INVIDX_INLINE_MAX;
        uint32_t cap = 16;
        while (cap < (uint64_t)nlists * 2 + 2) cap *= 2;
        lists.slots = calloc(cap, sizeof *lists.slots);
        lists.mask = cap - 1;
    }
    if (!start || !rows || !order || !toff || !tbytes || !lists.slots) goto out;
    /* The terms' bytes, flat (the words hold byte i at bits 8 * (i % 8)). */
    size_t tb_len = 0;
    for (uint32_t id = 0; id < nterms; id++) {
        toff[id] = (uint32_t)tb_len;
        tb_len += words_to_bytes(b->term_words + b->hot[id].woff, b->term_len[id], tbytes + tb_len);
    }
    /* Counting sort of occurrences by term; rows come out ascending per term. */
    uint64_t acc = 0;
    for (uint32_t id = 0; id < nterms; id++) {
        start[id] = acc;
        acc += b->hot[id].rows;
    }
    start[nterms] = acc;
    for (uint32_t r = 0; r < b->rows_seen; r++) {
        size_t end = r + 1 < b->rows_seen ? b->row_start[r + 1] : b->occ_count;
        for (size_t occ = b->row_start[r]; occ < end; occ++) {
            rows[start[b->occ_term[occ]]++] = r;
        }
    }
    for (uint32_t id = 0; id < nterms; id++) start[id] -= b->hot[id].rows;
    if (terms_sort(b, tbytes, toff, order)) goto out;
    if (block_rows) {
        /* Sparse: a term whose rows lie in at most INVIDX_SPARSE_MAX_BLOCKS blocks is left
         * to those blocks' blooms. */
        uint32_t kept = 0;
        for (uint32_t t = 0; t < nterms; t++) {
            const term_hot *h = &b->hot[order[t].id];
            const uint32_t *tr_rows = rows + start[order[t].id];
            uint32_t blocks = 1, blk = tr_rows[0] / block_rows;
            for (uint32_t idx = 1; idx < h->rows && blocks <= INVIDX_SPARSE_MAX_BLOCKS; idx++)
                if (tr_rows[idx] / block_rows != blk) {
                    blk = tr_rows[idx] / block_rows;
                    blocks++;
                }
            if (blocks <= INVIDX_SPARSE_MAX_BLOCKS) continue;
            order[kept++] = order[t];
        }
        nterms = kept;
    }

    uint32_t head_count = (nterms + INVIDX_TERMS_PER_BLOCK - 1) / INVIDX_TERMS_PER_BLOCK;
    for (uint32_t blk = 0; blk < head_count; blk++) {
        size_t dict_off = dict.len, post_off = post.len;
        uint32_t first = blk * INVIDX_TERMS_PER_BLOCK;
        uint32_t last =
            first + INVIDX_TERMS_PER_BLOCK < nterms ? first + INVIDX_TERMS_PER_BLOCK : nterms;
        for (uint32_t t = first; t < last; t++) {
            const term_ref *tr = &order[t];
            /* Terms come in byte order, their records and rows in id order: prefetch the
             * records a few terms ahead, and the rows once their start is (likely) cached. */
            if (t + 16 < nterms) {
                __builtin_prefetch(&b->hot[order[t + 16].id]);
                __builtin_prefetch(&start[order[t + 16].id]);
                __builtin_prefetch(order[t + 16].p);
            }
            if (t + 6 < nterms) __builtin_prefetch(rows + start[order[t + 6].id]);
            uint32_t shared = 0;
            if (t > first) {
                const term_ref *pr = &order[t - 1];
                while (shared < pr->len && shared < tr->len && pr->p[shared] == tr->p[shared])
                    shared++;
            }
            qr_buf_uvarint(&dict, shared);
            suffix_put(&dict, tr->p + shared, tr->len - shared);
            uint32_t n = b->hot[tr->id].rows;
            const uint32_t *tr_rows = rows + start[tr->id];
            qr_buf_uvarint(&dict, n);
            if (n <= INVIDX_INLINE_MAX) {
                qr_buf_uvarint(&dict, tr_rows[0]);
                for (uint32_t idx = 1; idx < n; idx++)
                    qr_buf_uvarint(&dict, tr_rows[idx] - tr_rows[idx - 1]);
            } else {
                /* the table has room for every list (sized above) */
                uint64_t lh = qr_hash64(tr_rows, (size_t)n * sizeof *tr_rows);
                list_seen *e = list_find(&lists, tr_rows, n, lh);
                if (e->rows) {
                    qr_buf_uvarint(&dict, e->word | INVIDX_LIST_REF);
                    qr_buf_uvarint(&dict, e->off);
                } else {
                    uint64_t off = post.len;
                    uint64_t word = postings_put(tr_rows, n, block_rows != 0, &post);
                    if (!word) goto out;
                    *e = (list_seen){lh, tr_rows, n, word, off};
                    lists.count++;
                    qr_buf_uvarint(&dict, word);
                }
            }
        }
        if (dict.len > UINT32_MAX) goto out;
        qr_buf_u32(&heads, (uint32_t)dict_off);
        qr_buf_u32(&heads, range_crc(&dict, dict_off));
        qr_buf_u64(&heads, post_off);
        qr_buf_u32(&heads, range_crc(&post, post_off));
    }
    if (!qr_buf_ok(&heads) || !qr_buf_ok(&dict) || !qr_buf_ok(&post)) goto out;
    size_t base = out->len;
    qr_buf_u32(out, block_rows ? INVIDX_MAGIC_SPARSE : INVIDX_MAGIC);
    qr_buf_u32(out, nterms);
    qr_buf_u32(out, head_count);
    qr_buf_u32(out, INVIDX_TERMS_PER_BLOCK);
    qr_buf_u64(out, dict.len);
    qr_buf_u64(out, post.len);
    qr_buf_append(out, heads.data, heads.len);
    if (!qr_buf_ok(out)) goto out;
    qr_buf_u32(out, qr_checksum32(out->data + base, out->len - base));
    qr_buf_append(out, dict.data, dict.len);
    qr_buf_append(out, post.data, post.len);
    rc = qr_buf_ok(out) ? 0 : QR_ENOMEM;
out:
    free(start);
    free(rows);
    free(order);
    free(toff);
    free(tbytes);
    free(lists.slots);
    qr_buf_fini(&heads);
    qr_buf_fini(&dict);
    qr_buf_fini(&post);
    return rc;
}

/* ---------------------------------------------------------------- reader */

static int ix_corrupt(qr_diag *d, int64_t off, const char *what)
{
    int rc =
        qr_diag_set(d, QR_ECORRUPT, "inverted index: %s at blob offset %lld", what, (long long)off);
    if (d) d->offset = off;
    return rc;
}

int invidx_open(invidx *ix, const uint8_t *blob, size_t len, uint32_t row_count, qr_diag *d)
{
    if (len < INVIDX_HEADER_BYTES + 4) return ix_corrupt(d, 0, "short blob");
    uint32_t magic = qr_load_u32(blob), term_count = qr_load_u32(blob + 4);
    uint32_t head_count = qr_load_u32(blob + 8), per_block = qr_load_u32(blob + 12);
    uint64_t dict_len = qr_load_u64(blob + 16), post_len = qr_load_u64(blob + 24);
    if (magic != INVIDX_MAGIC && magic != INVIDX_MAGIC_SPARSE) return ix_corrupt(d, 0, "bad magic");
    if (per_block == 0 || per_block > 4096 ||
        head_count != (term_count + per_block - 1) / per_block)
        return ix_corrupt(d, 4, "bad term/head counts");
    uint64_t heads_end = INVIDX_HEADER_BYTES + (uint64_t)head_count * INVIDX_HEAD_BYTES;
    if (heads_end + 4 > len) return ix_corrupt(d, 8, "heads past the end");
    if (dict_len > len || post_len > len || heads_end + 4 + dict_len + post_len != len)
        return ix_corrupt(d, 16, "section lengths do not add up");
    const uint8_t *heads = blob + INVIDX_HEADER_BYTES;
    if (head_count == 0 && (dict_len || post_len)) return ix_corrupt(d, 16, "bytes without terms");
    ix->blob = blob;
    ix->blob_len = len;
    ix->heads = heads;
    ix->dict = blob + heads_end + 4;
    ix->post = ix->dict + dict_len;
    ix->dict_len = dict_len;
    ix->post_len = post_len;
    ix->term_count = term_count;
    ix->head_count = head_count;
    ix->per_block = per_block;
    ix->row_count = row_count;
    ix->sparse = magic == INVIDX_MAGIC_SPARSE;
    return 0;
}

typedef struct dict_iter {
    const invidx *ix;
    uint32_t blk;
    qr_rd rd;
    const uint8_t *blk_start;
    bool at_block_start;
    uint64_t post_next; /* running offset of the next list in post */
    uint64_t post_end;  /* end of this block's postings range */
    uint64_t post_start;
    bool post_checked;
    char term[INVIDX_TERM_MAX + 1];
    size_t term_len;
    uint32_t rows_n;
    uint32_t inline_rows[INVIDX_INLINE_MAX];
    uint64_t post_off;
    uint64_t post_len;
    int post_kind;
} dict_iter;

/* Block blk's dict and postings ranges. The heads are not checked at open (a lookup reads
 * two or three of ~4,600), so each use checks its own: a non-empty dict range and a postings
 * range inside their sections (else QR_ECORRUPT); a head that lies about a range within
 * those bounds is caught by the range's crc. */
static int head_get(const invidx *ix, uint32_t blk, uint64_t *doff, uint64_t *dend, uint64_t *poff,
                    uint64_t *pend, qr_diag *d)
{
    const uint8_t *h = ix->heads + (size_t)blk * INVIDX_HEAD_BYTES;
    *doff = qr_load_u32(h);
    *poff = qr_load_u64(h + 8);
    if (blk + 1 < ix->head_count) {
        *dend = qr_load_u32(h + INVIDX_HEAD_BYTES);
        *pend = qr_load_u64(h + INVIDX_HEAD_BYTES + 8);
    } else {
        *dend = ix->dict_len;
        *pend = ix->post_len;
    }
    if (*doff >= *dend || *dend > ix->dict_len || *poff > *pend || *pend > ix->post_len ||
        (blk == 0 && (*doff != 0 || *poff != 0)))
        return ix_corrupt(d, h - ix->blob, "head offsets out of order");
    return 0;
}

static int64_t dict_pos(const invidx *ix, const uint8_t *p) { return p - ix->blob; }

/* Positions the iterator at the start of dict block blk, checking its checksum. */
/* Checks the crc of dict block blk. */
static int dict_block_check(const invidx *ix, uint32_t blk, qr_diag *d)
{
    uint64_t doff, dend, poff, pend;
    int hrc = head_get(ix, blk, &doff, &dend, &poff, &pend, d);
    if (hrc) return hrc;
    const uint8_t *h = ix->heads + (size_t)blk * INVIDX_HEAD_BYTES;
    if (qr_checksum32(ix->dict + doff, (size_t)(dend - doff)) != qr_load_u32(h + 4))
        return ix_corrupt(d, dict_pos(ix, ix->dict + doff), "dict block checksum mismatch");
    return 0;
}

/* Positions it at the start of dict block blk; `check` verifies the block's crc first (a
 * binary search may skip it for the blocks it only probes: see find_block). */
static int iter_seek_ex(dict_iter *it, uint32_t blk, bool check, qr_diag *d)
{
    const invidx *ix = it->ix;
    uint64_t doff, dend, poff, pend;
    int hrc = head_get(ix, blk, &doff, &dend, &poff, &pend, d);
    if (hrc) return hrc;
    if (check) {
        int rc = dict_block_check(ix, blk, d);
        if (rc) return rc;
    }
    it->blk = blk;
    qr_rd_init(&it->rd, ix->dict + doff, (size_t)(dend - doff));
    it->blk_start = ix->dict + doff;
    it->at_block_start = true;
    it->post_start = poff;
    it->post_next = poff;
    it->post_end = pend;
    it->post_checked = false;
    it->term_len = 0;
    return 0;
}

static int iter_seek(dict_iter *it, uint32_t blk, qr_diag *d)
{
    return iter_seek_ex(it, blk, true, d);
}

/* Reads the next term. Returns 1 with a term, 0 at the end of the dictionary, or an error. */
static int iter_next(dict_iter *it, qr_diag *d)
{
    const invidx *ix = it->ix;
    if (qr_rd_left(&it->rd) == 0) {
        if (it->post_next != it->post_end)
            return ix_corrupt(d, dict_pos(ix, it->rd.p), "postings range not used up");
        if (it->blk + 1 >= ix->head_count) return 0;
        int rc = iter_seek(it, it->blk + 1, d);
        if (rc) return rc;
    }
    const uint8_t *entry = it->rd.p;
    uint64_t shared = qr_rd_uvarint(&it->rd);
    uint64_t sword = qr_rd_uvarint(&it->rd);
    uint64_t suffix_len = sword >> 1;
    bool nib = sword & 1;
    if (it->rd.bad || (it->at_block_start && shared != 0) || shared > it->term_len ||
        suffix_len > INVIDX_TERM_MAX || shared + suffix_len > INVIDX_TERM_MAX ||
        shared + suffix_len == 0 || (nib && suffix_len == 0))
        return ix_corrupt(d, dict_pos(ix, entry), "bad term entry");
    size_t stored = nib ? (size_t)(suffix_len + 1) / 2 : (size_t)suffix_len;
    const uint8_t *suffix = qr_rd_take(&it->rd, stored);
    uint64_t n = qr_rd_uvarint(&it->rd);
    if (it->rd.bad || !suffix || n == 0 || n > ix->row_count)
        return ix_corrupt(d, dict_pos(ix, entry), "bad term entry");
    if (nib) {
        char *t = it->term + shared;
        for (size_t idx = 0; idx < suffix_len; idx++)
            t[idx] = nib_char[idx % 2 ? suffix[idx / 2] & 15 : suffix[idx / 2] >> 4];
        if (suffix_len % 2 && (suffix[stored - 1] & 15))
            return ix_corrupt(d, dict_pos(ix, entry), "bad nibble padding");
    } else {
        memcpy(it->term + shared, suffix, (size_t)suffix_len);
    }
    it->term_len = (size_t)(shared + suffix_len);
    it->at_block_start = false;
    it->rows_n = (uint32_t)n;
    it->post_len = 0;
    if (n <= INVIDX_INLINE_MAX) {
        uint64_t row = 0;
        for (uint32_t idx = 0; idx < n; idx++) {
            uint64_t v = qr_rd_uvarint(&it->rd);
            if (idx && v == 0) it->rd.bad = true;
            row += v;
            if (row >= ix->row_count) it->rd.bad = true;
            it->inline_rows[idx] = (uint32_t)row;
        }
        if (it->rd.bad) return ix_corrupt(d, dict_pos(ix, entry), "bad inline rows");
        return 1;
    }
    uint64_t word = qr_rd_uvarint(&it->rd);
    uint64_t plen = word >> 3;
    it->post_kind = (int)(word & 3);
    if (it->rd.bad || plen == 0) return ix_corrupt(d, dict_pos(ix, entry), "bad postings word");
    if (word & INVIDX_LIST_REF) {
        /* An earlier term's list: anywhere before this block's next new list. */
        uint64_t off = qr_rd_uvarint(&it->rd);
        if (it->rd.bad || off > it->post_next || plen > it->post_next - off)
            return ix_corrupt(d, dict_pos(ix, entry), "bad postings reference");
        it->post_off = off;
        it->post_len = plen;
        return 1;
    }
    if (plen > it->post_end - it->post_next)
        return ix_corrupt(d, dict_pos(ix, entry), "bad postings length");
    it->post_off = it->post_next;
    it->post_len = plen;
    it->post_next += plen;
    return 1;
}

/* Compares the current term with key (memcmp order, shorter first). */
static int term_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return c;
    return alen < blen ? -1 : alen > blen;
}

/* The first 8 bytes of a term as a big-endian number, missing bytes 0: x <= y (memcmp order,
 * shorter first) implies key8(x) <= key8(y), so key8(x) < key8(y) proves x < y. */
static uint64_t key8(const char *t, size_t len)
{
    uint64_t k = 0;
    for (size_t idx = 0; idx < 8; idx++) k = k << 8 | (idx < len ? (uint8_t)t[idx] : 0);
    return k;
}

/* Finds the last block whose first term is < key (strict = true) or <= key; 0 if none. */
/* Binary search over the dict blocks' first terms. Probed blocks are read without their crc
 * (bounds-checked decoding, so bad bytes cannot crash): the answer lo is decided only by the
 * comparisons with first(lo) and first(lo + 1) (the final bounds), so verifying those two
 * blocks afterwards proves the answer — a corrupt probe can only make the search end on
 * blocks whose check then fails. Saves ~12 block checksums per lookup.
 * keys (invidx_block_keys, or NULL) narrow [lo, hi) first without touching the dictionary:
 * key8(first(b)) < key8(key) proves first(b) < key, > proves first(b) > key. They were read
 * from the same immutable bytes, so the final check of lo and lo + 1 covers them too. */
static int find_block(const invidx *ix, const uint64_t *keys, const char *key, size_t len,
                      bool strict, uint32_t *blk_out, qr_diag *d)
{
    uint32_t lo = 0, hi = ix->head_count; /* invariant: answer in [lo, hi) or 0 */
    if (keys && hi > 1) {
        uint64_t k = key8(key, len);
        uint32_t a = 0, b = hi; /* first block with keys >= k: in [a, b] */
        while (a < b) {
            uint32_t mid = a + (b - a) / 2;
            if (keys[mid] < k)
                a = mid + 1;
            else
                b = mid;
        }
        lo = a ? a - 1 : 0; /* keys[lo] < k: first(lo) < key */
        b = hi;             /* first block with keys > k */
        while (a < b) {
            uint32_t mid = a + (b - a) / 2;
            if (keys[mid] <= k)
                a = mid + 1;
            else
                b = mid;
        }
        hi = a; /* first(hi) > key */
        if (hi <= lo) hi = lo + 1;
    }
    dict_iter it = {.ix = ix};
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        int rc = iter_seek_ex(&it, mid, false, d);
        if (rc) return rc;
        rc = iter_next(&it, d);
        if (rc < 0) return rc;
        if (rc == 0) return ix_corrupt(d, 0, "empty dict block");
        int c = term_cmp(it.term, it.term_len, key, len);
        if (c < 0 || (!strict && c == 0))
            lo = mid;
        else
            hi = mid;
    }
    int rc = lo < ix->head_count ? dict_block_check(ix, lo, d) : 0;
    if (!rc && lo + 1 < ix->head_count) rc = dict_block_check(ix, lo + 1, d);
    if (rc) return rc;
    *blk_out = lo;
    return 0;
}

/* Checks the crc of dict block blk's postings range. */
static int post_range_check(const invidx *ix, uint32_t blk, qr_diag *d)
{
    uint64_t doff, dend, poff, pend;
    int hrc = head_get(ix, blk, &doff, &dend, &poff, &pend, d);
    if (hrc) return hrc;
    const uint8_t *h = ix->heads + (size_t)blk * INVIDX_HEAD_BYTES;
    if (qr_checksum32(ix->post + poff, (size_t)(pend - poff)) != qr_load_u32(h + 16))
        return ix_corrupt(d, dict_pos(ix, ix->post + poff), "postings checksum mismatch");
    return 0;
}

/* Rows from uvarint first row + gaps >= 1; false when malformed or a row >= row_count. */
static bool varint_rows_decode(qr_rd *rd, uint32_t n, uint32_t row_count, uint32_t *rows)
{
    uint64_t row = 0;
    for (uint32_t idx = 0; idx < n; idx++) {
        uint64_t v = qr_rd_uvarint(rd);
        if (idx && v == 0) return false;
        row += v;
        if (rd->bad || row >= row_count) return false;
        rows[idx] = (uint32_t)row;
    }
    return true;
}

/* Rows from uvarint first row + runs of (u8 width, bit-packed gap - 1s). */
static bool packed_rows_decode(qr_rd *rd, uint32_t n, uint32_t row_count, uint32_t *rows)
{
    uint64_t row = qr_rd_uvarint(rd);
    if (rd->bad || row >= row_count) return false;
    rows[0] = (uint32_t)row;
    for (uint32_t at = 1; at < n; at += INVIDX_PACK_RUN) {
        uint32_t cnt = n - at < INVIDX_PACK_RUN ? n - at : INVIDX_PACK_RUN;
        unsigned width = qr_rd_u8(rd);
        size_t bytes = codec_bitpack_bytes(cnt, width);
        const uint8_t *p = width <= 32 ? qr_rd_take(rd, bytes) : NULL;
        if (rd->bad || !p || codec_bitunpack_u32(p, bytes, cnt, width, 1, rows + at)) return false;
        for (uint32_t idx = at; idx < at + cnt; idx++) {
            row += rows[idx];
            if (rows[idx] == 0 || row >= row_count) return false; /* gap - 1 wrapped */
            rows[idx] = (uint32_t)row;
        }
    }
    return true;
}

/* Rows from uvarint first row, u8 k, Rice-coded (gap - 1)s (rice_put). Every unary run is
 * bounded by what row_count allows, so hostile bytes cannot make it loop long. */
static bool rice_rows_decode(qr_rd *rd, uint32_t n, uint32_t row_count, uint32_t *rows)
{
    uint64_t row = qr_rd_uvarint(rd);
    unsigned k = qr_rd_u8(rd);
    if (rd->bad || row >= row_count || k > INVIDX_RICE_K_MAX) return false;
    rows[0] = (uint32_t)row;
    size_t len = qr_rd_left(rd);
    const uint8_t *p = qr_rd_take(rd, len);
    /* bits [0, nbits) of buf are the next bits of the code; refilled a byte at a time */
    uint64_t buf = 0;
    unsigned nbits = 0;
    size_t pos = 0;
#define RICE_REFILL()                                                                              \
    while (nbits <= 56 && pos < len) {                                                             \
        buf |= (uint64_t)p[pos++] << nbits;                                                        \
        nbits += 8;                                                                                \
    }
    for (uint32_t idx = 1; idx < n; idx++) {
        uint64_t q = 0;
        for (;;) { /* unary part: count 1 bits up to the 0 */
            RICE_REFILL();
            if (!nbits) return false;
            uint64_t zeros = ~buf & (nbits == 64 ? ~0ull : (1ull << nbits) - 1);
            if (zeros) {
                unsigned t = (unsigned)__builtin_ctzll(zeros);
                q += t;
                buf = t + 1 == 64 ? 0 : buf >> (t + 1);
                nbits -= t + 1;
                break;
            }
            q += nbits;
            buf = 0;
            nbits = 0;
            if (q > row_count) return false;
        }
        if (q > row_count) return false;
        RICE_REFILL();
        if (nbits < k) return false;
        uint64_t v = q << k | (buf & ((1ull << k) - 1));
        buf >>= k;
        nbits -= k;
        row += v + 1;
        if (row >= row_count) return false;
        rows[idx] = (uint32_t)row;
    }
#undef RICE_REFILL
    return nbits + (len - pos) * 8 < 8; /* only the last byte's padding may remain */
}

static int iter_bitmap(dict_iter *it, roaring_bitmap_t **out, qr_diag *d)
{
    const invidx *ix = it->ix;
    if (it->rows_n <= INVIDX_INLINE_MAX) {
        roaring_bitmap_t *bm = roaring_bitmap_of_ptr(it->rows_n, it->inline_rows);
        if (!bm) return QR_ENOMEM;
        *out = bm;
        return 0;
    }
    if (it->post_off >= it->post_start && it->post_off < it->post_end) {
        if (!it->post_checked) {
            int rc = post_range_check(ix, it->blk, d);
            if (rc) return rc;
            it->post_checked = true;
        }
    } else {
        /* A shared list in an earlier block's range: check that range (the last block
         * whose range starts at or before the list; the list must end inside it). */
        uint32_t lo = 0, hi = it->blk;
        while (hi - lo > 1) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (qr_load_u64(ix->heads + (size_t)mid * INVIDX_HEAD_BYTES + 8) <= it->post_off)
                lo = mid;
            else
                hi = mid;
        }
        uint64_t doff, dend, poff, pend;
        int hrc = head_get(ix, lo, &doff, &dend, &poff, &pend, d);
        if (hrc) return hrc;
        if (it->post_off < poff || it->post_off + it->post_len > pend)
            return ix_corrupt(d, dict_pos(ix, ix->post + it->post_off),
                              "postings reference crosses ranges");
        int rc = post_range_check(ix, lo, d);
        if (rc) return rc;
    }
    const uint8_t *p = ix->post + it->post_off;
    size_t plen = (size_t)it->post_len;
    int64_t at = dict_pos(ix, p);
    if (it->post_kind == 0) {
        if (roaring_bitmap_portable_deserialize_size((const char *)p, plen) != plen)
            return ix_corrupt(d, at, "bad roaring postings");
        roaring_bitmap_t *bm = roaring_bitmap_portable_deserialize_safe((const char *)p, plen);
        if (!bm) return ix_corrupt(d, at, "bad roaring postings");
        if (roaring_bitmap_get_cardinality(bm) != it->rows_n ||
            (it->rows_n && roaring_bitmap_maximum(bm) >= ix->row_count)) {
            roaring_bitmap_free(bm);
            return ix_corrupt(d, at, "roaring postings disagree with the term entry");
        }
        *out = bm;
        return 0;
    }
    uint32_t *rows = malloc((size_t)it->rows_n * sizeof *rows);
    if (!rows) return QR_ENOMEM;
    qr_rd rd;
    qr_rd_init(&rd, p, plen);
    bool ok = it->post_kind == INVIDX_LIST_VARINT
                  ? varint_rows_decode(&rd, it->rows_n, ix->row_count, rows)
              : it->post_kind == INVIDX_LIST_PACKED
                  ? packed_rows_decode(&rd, it->rows_n, ix->row_count, rows)
                  : rice_rows_decode(&rd, it->rows_n, ix->row_count, rows);
    if (!ok || qr_rd_left(&rd)) {
        free(rows);
        return ix_corrupt(d, at,
                          it->post_kind == INVIDX_LIST_VARINT   ? "bad varint postings"
                          : it->post_kind == INVIDX_LIST_PACKED ? "bad packed postings"
                                                                : "bad rice postings");
    }
    roaring_bitmap_t *bm = roaring_bitmap_of_ptr(it->rows_n, rows);
    free(rows);
    if (!bm) return QR_ENOMEM;
    *out = bm;
    return 0;
}

int invidx_block_keys(const invidx *ix, uint64_t *keys, qr_diag *d)
{
    dict_iter it = {.ix = ix};
    for (uint32_t blk = 0; blk < ix->head_count; blk++) {
        int rc = iter_seek_ex(&it, blk, false, d);
        if (rc) return rc;
        rc = iter_next(&it, d);
        if (rc < 0) return rc;
        if (rc == 0) return ix_corrupt(d, 0, "empty dict block");
        keys[blk] = key8(it.term, it.term_len);
        if (blk && keys[blk] < keys[blk - 1])
            return ix_corrupt(d, dict_pos(ix, it.blk_start), "dict blocks out of order");
    }
    return 0;
}

int invidx_postings(const invidx *ix, const char *term, size_t len, roaring_bitmap_t **out,
                    qr_diag *d)
{
    return invidx_postings_keyed(ix, NULL, term, len, out, d);
}

int invidx_postings_keyed(const invidx *ix, const uint64_t *keys, const char *term, size_t len,
                          roaring_bitmap_t **out, qr_diag *d)
{
    *out = NULL;
    if (ix->head_count == 0 || len == 0 || len > INVIDX_TERM_MAX) return 0;
    uint32_t blk;
    int rc = find_block(ix, keys, term, len, false, &blk, d);
    if (rc) return rc;
    dict_iter it = {.ix = ix};
    rc = iter_seek(&it, blk, d);
    if (rc) return rc;
    while ((rc = iter_next(&it, d)) == 1) {
        int c = term_cmp(it.term, it.term_len, term, len);
        if (c == 0) return iter_bitmap(&it, out, d);
        if (c > 0 || it.blk != blk) return 0;
    }
    return rc;
}

int invidx_terms_with_prefix(const invidx *ix, const char *prefix, size_t len,
                             int (*fn)(void *ctx, const char *term, size_t len), void *ctx,
                             qr_diag *d)
{
    if (ix->head_count == 0) return 0;
    uint32_t blk = 0;
    int rc = len ? find_block(ix, NULL, prefix, len, true, &blk, d) : 0;
    if (rc) return rc;
    dict_iter it = {.ix = ix};
    rc = iter_seek(&it, blk, d);
    if (rc) return rc;
    while ((rc = iter_next(&it, d)) == 1) {
        if (it.term_len >= len && memcmp(it.term, prefix, len) == 0) {
            int stop = fn(ctx, it.term, it.term_len);
            if (stop) return stop < 0 ? stop : 0;
        } else if (term_cmp(it.term, it.term_len, prefix, len) > 0) {
            return 0;
        }
    }
    return rc;
}

/* The heads checksum and every head's offsets (invidx_open leaves them to the lookups). */
static int heads_check(const invidx *ix, qr_diag *d)
{
    const uint8_t *blob = ix->blob;
    uint64_t heads_end = INVIDX_HEADER_BYTES + (uint64_t)ix->head_count * INVIDX_HEAD_BYTES;
    if (qr_load_u32(blob + heads_end) != qr_checksum32(blob, (size_t)heads_end))
        return ix_corrupt(d, (int64_t)heads_end, "header checksum mismatch");
    uint64_t prev_dict = 0, prev_post = 0;
    for (uint32_t blk = 0; blk < ix->head_count; blk++) {
        const uint8_t *h = ix->heads + (size_t)blk * INVIDX_HEAD_BYTES;
        uint64_t doff = qr_load_u32(h), poff = qr_load_u64(h + 8);
        if ((blk == 0 && (doff != 0 || poff != 0)) || doff < prev_dict || doff >= ix->dict_len ||
            poff < prev_post || poff > ix->post_len)
            return ix_corrupt(d, h - blob, "head offsets out of order");
        if (blk && doff == prev_dict) return ix_corrupt(d, h - blob, "empty dict block");
        prev_dict = doff;
        prev_post = poff;
    }
    return 0;
}

int invidx_verify(const invidx *ix, qr_diag *d)
{
    int hrc = heads_check(ix, d);
    if (hrc) return hrc;
    if (ix->head_count == 0) return 0;
    dict_iter it = {.ix = ix};
    int rc = iter_seek(&it, 0, d);
    if (rc) return rc;
    char prev[INVIDX_TERM_MAX + 1];
    size_t prev_len = 0;
    uint64_t seen = 0;
    while ((rc = iter_next(&it, d)) == 1) {
        if (seen && term_cmp(prev, prev_len, it.term, it.term_len) >= 0)
            return ix_corrupt(d, dict_pos(ix, it.rd.p), "terms out of order");
        if (it.blk != (uint32_t)(seen / ix->per_block))
            return ix_corrupt(d, dict_pos(ix, it.rd.p), "dict block holds the wrong term count");
        memcpy(prev, it.term, it.term_len);
        prev_len = it.term_len;
        seen++;
        roaring_bitmap_t *bm = NULL;
        rc = iter_bitmap(&it, &bm, d);
        if (rc) return rc;
        roaring_bitmap_free(bm);
    }
    if (rc < 0) return rc;
    if (seen != ix->term_count) return ix_corrupt(d, 4, "term count mismatch");
    return 0;
}

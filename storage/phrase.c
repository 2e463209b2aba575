/* phrase — adjacency pairs of a segment (see phrase.h for the contract and the blob). */
#include "storage/phrase.h"

#include "storage/tokenize.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ builder */

typedef struct tok_info {
    const char *bytes; /* lower-cased copy, zero-padded to whole words (the builder's store) */
    uint32_t last_row;
    uint32_t df; /* rows holding the token */
    uint8_t len;
    uint8_t multi;    /* some row holds it twice */
    uint8_t bm_state; /* 0 not looked up, 1 bm valid, 2 absent from the index */
    roaring_bitmap_t *bm;
} tok_info;

typedef struct tok_slot {
    uint64_t hash;
    uint32_t id1; /* id + 1; 0 = empty */
} tok_slot;

typedef struct pair_slot {
    uint64_t key; /* (a + 1) << 32 | b; 0 = empty */
    uint32_t last_row;
    uint32_t rows;
} pair_slot;

struct phrase_builder {
    tok_slot *tslots;
    size_t tcap; /* power of two */
    tok_info *toks;
    uint32_t ntok;
    size_t toks_cap;
    pair_slot *pslots;
    size_t pcap;
    size_t npair;
    qr_arena bytes; /* token copies */
    /* phrase_builder_add_tokens: index term id → token id + 1, or 0 (not seen; digit tokens
     * never get an entry) */
    uint32_t *map;
    size_t map_cap;
    uint32_t prev; /* token id + 1 of the row's previous token (0: none) */
    uint32_t row;  /* the last row added */
    bool started;
};

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

phrase_builder *phrase_builder_new(void)
{
    phrase_builder *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->tcap = 1u << 12;
    b->pcap = 1u << 12;
    b->toks_cap = 1u << 11;
    b->tslots = calloc(b->tcap, sizeof *b->tslots);
    b->pslots = calloc(b->pcap, sizeof *b->pslots);
    b->toks = malloc(b->toks_cap * sizeof *b->toks);
    qr_arena_init(&b->bytes, 1 << 16, 0);
    if (!b->tslots || !b->pslots || !b->toks) {
        phrase_builder_free(b);
        return NULL;
    }
    return b;
}

void phrase_builder_free(phrase_builder *b)
{
    if (!b) return;
    for (uint32_t id = 0; id < b->ntok; id++)
        if (b->toks[id].bm) roaring_bitmap_free(b->toks[id].bm);
    free(b->tslots);
    free(b->pslots);
    free(b->toks);
    free(b->map);
    qr_arena_fini(&b->bytes);
    free(b);
}

static int tok_grow(phrase_builder *b)
{
    size_t cap = b->tcap * 2;
    tok_slot *s = calloc(cap, sizeof *s);
    if (!s) return QR_ENOMEM;
    for (size_t idx = 0; idx < b->tcap; idx++) {
        if (!b->tslots[idx].id1) continue;
        size_t at = b->tslots[idx].hash & (cap - 1);
        while (s[at].id1) at = (at + 1) & (cap - 1);
        s[at] = b->tslots[idx];
    }
    free(b->tslots);
    b->tslots = s;
    b->tcap = cap;
    return 0;
}

static int pair_grow(phrase_builder *b)
{
    size_t cap = b->pcap * 2;
    pair_slot *s = calloc(cap, sizeof *s);
    if (!s) return QR_ENOMEM;
    for (size_t idx = 0; idx < b->pcap; idx++) {
        if (!b->pslots[idx].key) continue;
        size_t at = mix64(b->pslots[idx].key) & (cap - 1);
        while (s[at].key) at = (at + 1) & (cap - 1);
        s[at] = b->pslots[idx];
    }
    free(b->pslots);
    b->pslots = s;
    b->pcap = cap;
    return 0;
}

/* A new token's entry (the caller knows it is new: by bytes, or by the index's term id). */
static int tok_new(phrase_builder *b, const uint64_t *w, size_t nw, size_t len, uint32_t *id)
{
    if (b->ntok == UINT32_MAX - 1) return QR_ENOMEM;
    if (b->ntok == b->toks_cap) {
        tok_info *t = realloc(b->toks, b->toks_cap * 2 * sizeof *t);
        if (!t) return QR_ENOMEM;
        b->toks = t;
        b->toks_cap *= 2;
    }
    uint64_t *copy = qr_arena_alloc(&b->bytes, nw * 8);
    if (!copy) return QR_ENOMEM;
    memcpy(copy, w, nw * 8);
    *id = b->ntok++;
    b->toks[*id] =
        (tok_info){.bytes = (const char *)copy, .last_row = UINT32_MAX, .len = (uint8_t)len};
    return 0;
}

/* The token's id, interned on first sight. Compared by bytes: tokens sharing a hash stay
 * two tokens. */
static int tok_id(phrase_builder *b, uint64_t hash, const uint64_t *w, size_t nw, size_t len,
                  uint32_t *id)
{
    size_t at = hash & (b->tcap - 1); /* qr_token_hash is finalized: its low bits are mixed */
    for (;;) {
        tok_slot *s = &b->tslots[at];
        if (!s->id1) break;
        if (s->hash == hash) {
            const tok_info *t = &b->toks[s->id1 - 1];
            if (t->len == len && memcmp(t->bytes, w, nw * 8) == 0) {
                *id = s->id1 - 1;
                return 0;
            }
        }
        at = (at + 1) & (b->tcap - 1);
    }
    int rc = tok_new(b, w, nw, len, id);
    if (rc) return rc;
    b->tslots[at] = (tok_slot){hash, *id + 1};
    if ((size_t)b->ntok * 2 > b->tcap) return tok_grow(b);
    return 0;
}

static int pair_count_row(phrase_builder *b, uint32_t a, uint32_t c, uint32_t row)
{
    uint64_t key = ((uint64_t)a + 1) << 32 | c;
    size_t at = mix64(key) & (b->pcap - 1);
    for (;;) {
        pair_slot *s = &b->pslots[at];
        if (!s->key) break;
        if (s->key == key) {
            if (s->last_row != row) {
                s->last_row = row;
                s->rows++;
            }
            return 0;
        }
        at = (at + 1) & (b->pcap - 1);
    }
    b->pslots[at] = (pair_slot){key, row, 1};
    if (++b->npair * 2 > b->pcap) return pair_grow(b);
    return 0;
}

/* Whether any of the token's bytes is an ASCII digit (bytes >= 0x80 may be taken for one:
 * that only leaves a word out). */
static bool has_digit(const uint64_t *w, size_t nw)
{
    const uint64_t H = 0x8080808080808080ull, L = 0x0101010101010101ull;
    for (size_t idx = 0; idx < nw; idx++) {
        uint64_t x7 = w[idx] & ~H;
        if ((x7 + (0x80 - '0') * L) & ~(x7 + (0x7f - '9') * L) & H) return true;
    }
    return false;
}

int phrase_builder_add_text(phrase_builder *b, const char *text, size_t len, uint32_t row)
{
    if (b->started && row < b->row) return QR_EINVAL;
    b->started = true;
    uint64_t w[QR_TOKEN_MAX_BYTES / 8];
    size_t pos = 0, nw, n;
    uint64_t hash;
    uint32_t prev = 0; /* id + 1 of the previous token of the row; 0 at its start */
    while (qr_token_next(text, len, &pos, w, &nw, &n, &hash)) {
        /* Tokens with a digit (ids, numbers, addresses) are mostly unique: they stay out,
         * and break adjacency ("a 5 b" has no pair a b). */
        if (has_digit(w, nw)) {
            prev = 0;
            continue;
        }
        uint32_t id;
        int rc = tok_id(b, hash, w, nw, n, &id);
        if (rc) return rc;
        tok_info *t = &b->toks[id];
        if (t->last_row == row) {
            t->multi = 1;
        } else {
            t->last_row = row;
            t->df++;
        }
        if (prev) {
            rc = pair_count_row(b, prev - 1, id, row);
            if (rc) return rc;
        }
        prev = id + 1;
    }
    b->row = row;
    return 0;
}

int phrase_builder_add_tokens(void *ctx, const invidx_tokens *toks)
{
    phrase_builder *b = ctx;
    if (toks->row_start) {
        if (b->started && toks->row < b->row) return QR_EINVAL;
        b->started = true;
        b->row = toks->row;
        b->prev = 0;
    }
    uint32_t row = b->row;
    for (uint32_t t = 0; t < toks->count; t++) {
        /* digits first: the words are at hand, while the map entry of a once-seen id is a
         * cache miss */
        if (has_digit(toks->words + toks->woff[t], toks->nw[t])) {
            b->prev = 0;
            continue;
        }
        uint32_t ix_id = toks->ids[t];
        if (ix_id >= b->map_cap) {
            size_t cap = b->map_cap ? b->map_cap : 4096;
            while (cap <= ix_id) cap *= 2;
            uint32_t *m = realloc(b->map, cap * sizeof *m);
            if (!m) return QR_ENOMEM;
            memset(m + b->map_cap, 0, (cap - b->map_cap) * sizeof *m);
            b->map = m;
            b->map_cap = cap;
        }
        uint32_t m = b->map[ix_id];
        if (!m) {
            uint32_t id;
            int rc = tok_new(b, toks->words + toks->woff[t], toks->nw[t], toks->len[t], &id);
            if (rc) return rc;
            m = b->map[ix_id] = id + 1;
        }
        tok_info *ti = &b->toks[m - 1];
        if (ti->last_row == row) {
            ti->multi = 1;
        } else {
            ti->last_row = row;
            ti->df++;
        }
        if (b->prev) {
            int rc = pair_count_row(b, b->prev - 1, m - 1, row);
            if (rc) return rc;
        }
        b->prev = m;
    }
    return 0;
}

/* The token's rows from the index: 0 with *bm NULL when the index does not list it. */
static int tok_rows(phrase_builder *b, const invidx *ix, uint32_t id, size_t *held,
                    roaring_bitmap_t **bm)
{
    tok_info *t = &b->toks[id];
    if (t->bm_state == 0) {
        roaring_bitmap_t *r = NULL;
        int rc = invidx_postings(ix, t->bytes, t->len, &r, NULL);
        if (rc) return rc;
        t->bm = r;
        t->bm_state = r ? 1 : 2;
        if (r) *held += roaring_bitmap_size_in_bytes(r);
    }
    *bm = t->bm;
    return 0;
}

static void drop_bitmaps(phrase_builder *b, size_t *held)
{
    for (uint32_t id = 0; id < b->ntok; id++) {
        if (b->toks[id].bm) roaring_bitmap_free(b->toks[id].bm);
        b->toks[id].bm = NULL;
        if (b->toks[id].bm_state == 1) b->toks[id].bm_state = 0;
    }
    *held = 0;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, c = *(const uint64_t *)y;
    return a < c ? -1 : a > c;
}

typedef struct tok_sort {
    char bytes[QR_TOKEN_MAX_BYTES];
    uint8_t len;
    uint32_t id;
} tok_sort;

static int term_cmp(const char *a, size_t an, const char *c, size_t cn)
{
    int r = memcmp(a, c, an < cn ? an : cn);
    if (r) return r;
    return an < cn ? -1 : an > cn;
}

static int cmp_tok_sort(const void *x, const void *y)
{
    const tok_sort *a = x, *c = y;
    return term_cmp(a->bytes, a->len, c->bytes, c->len);
}

int phrase_builder_finish(phrase_builder *b, const invidx *ix, qr_buf *out, uint32_t *pair_count)
{
    *pair_count = 0;
    /* Candidates, sorted by (a, b) so each a's bitmap is fetched once. */
    size_t ncand = 0;
    for (size_t idx = 0; idx < b->pcap; idx++)
        if (b->pslots[idx].key && b->pslots[idx].rows >= PHRASE_MIN_ROWS) ncand++;
    if (!ncand) return 0;
    uint64_t *cand = malloc(ncand * sizeof *cand);
    uint32_t *cand_rows = NULL;
    if (!cand) return QR_ENOMEM;
    ncand = 0;
    for (size_t idx = 0; idx < b->pcap; idx++)
        if (b->pslots[idx].key && b->pslots[idx].rows >= PHRASE_MIN_ROWS)
            cand[ncand++] = b->pslots[idx].key - (1ull << 32);
    qsort(cand, ncand, sizeof *cand, cmp_u64);
    cand_rows = malloc(ncand * sizeof *cand_rows);
    if (!cand_rows) {
        free(cand);
        return QR_ENOMEM;
    }
    for (size_t idx = 0; idx < ncand; idx++) {
        uint64_t key = cand[idx] + (1ull << 32);
        size_t at = mix64(key) & (b->pcap - 1);
        while (b->pslots[at].key != key) at = (at + 1) & (b->pcap - 1);
        cand_rows[idx] = b->pslots[at].rows;
    }
    /* Keep the exact ones (compacted in place in cand). */
    size_t held = 0, kept = 0;
    int rc = 0;
    for (size_t idx = 0; idx < ncand && !rc; idx++) {
        uint32_t a = (uint32_t)(cand[idx] >> 32), c = (uint32_t)cand[idx];
        uint32_t rows = cand_rows[idx];
        uint32_t min_df = b->toks[a].df < b->toks[c].df ? b->toks[a].df : b->toks[c].df;
        bool exact = rows == min_df; /* rows <= |a ∩ c| <= min_df */
        if (!exact && ix) {
            if (held > PHRASE_FINISH_BUDGET) drop_bitmaps(b, &held);
            roaring_bitmap_t *ra, *rb;
            rc = tok_rows(b, ix, a, &held, &ra);
            if (!rc) rc = tok_rows(b, ix, c, &held, &rb);
            if (rc) break;
            exact = ra && rb && roaring_bitmap_and_cardinality(ra, rb) == rows;
        }
        if (exact) cand[kept++] = cand[idx];
    }
    drop_bitmaps(b, &held);
    free(cand_rows);
    if (rc || !kept) {
        free(cand);
        return rc;
    }
    /* Tokens the kept pairs use, sorted by their bytes. */
    uint32_t *remap = malloc((size_t)b->ntok * sizeof *remap);
    tok_sort *ts = NULL;
    if (!remap) {
        free(cand);
        return QR_ENOMEM;
    }
    memset(remap, 0xff, (size_t)b->ntok * sizeof *remap);
    uint32_t nused = 0;
    for (size_t idx = 0; idx < kept; idx++) {
        uint32_t ends[2] = {(uint32_t)(cand[idx] >> 32), (uint32_t)cand[idx]};
        for (int e = 0; e < 2; e++)
            if (remap[ends[e]] == UINT32_MAX) remap[ends[e]] = nused++;
    }
    ts = malloc((size_t)nused * sizeof *ts);
    if (!ts) {
        free(remap);
        free(cand);
        return QR_ENOMEM;
    }
    for (uint32_t id = 0; id < b->ntok; id++) {
        if (remap[id] == UINT32_MAX) continue;
        tok_sort *t = &ts[remap[id]];
        t->len = b->toks[id].len;
        t->id = id;
        memcpy(t->bytes, b->toks[id].bytes, t->len);
    }
    qsort(ts, nused, sizeof *ts, cmp_tok_sort);
    for (uint32_t idx = 0; idx < nused; idx++) remap[ts[idx].id] = idx;
    for (size_t idx = 0; idx < kept; idx++) {
        uint32_t a = remap[(uint32_t)(cand[idx] >> 32)], c = remap[(uint32_t)cand[idx]];
        cand[idx] = (uint64_t)a << 32 | c;
    }
    qsort(cand, kept, sizeof *cand, cmp_u64);
    qr_buf_u32(out, PHRASE_MAGIC);
    qr_buf_uvarint(out, nused);
    qr_buf_uvarint(out, kept);
    for (uint32_t idx = 0; idx < nused; idx++) {
        qr_buf_bytes(out, ts[idx].bytes, ts[idx].len);
        qr_buf_u8(out, b->toks[ts[idx].id].multi ? 0 : PHRASE_ONCE);
    }
    uint32_t prev_a = 0;
    for (size_t idx = 0; idx < kept; idx++) {
        uint32_t a = (uint32_t)(cand[idx] >> 32);
        qr_buf_uvarint(out, a - prev_a);
        qr_buf_uvarint(out, (uint32_t)cand[idx]);
        prev_a = a;
    }
    free(ts);
    free(remap);
    free(cand);
    if (!qr_buf_ok(out)) return QR_ENOMEM;
    *pair_count = (uint32_t)kept;
    return 0;
}

/* ------------------------------------------------------------ reader */

static int bad(qr_diag *d, const qr_rd *rd, const uint8_t *blob, const char *what)
{
    int rc = qr_diag_set(d, QR_ECORRUPT, "phrase pairs: %s", what);
    if (d) d->offset = (int64_t)(rd->p - blob);
    return rc;
}

/* Decodes blob into pp (arrays allocated when pp is not NULL). */
static int decode(phrase_pairs *pp, const uint8_t *blob, size_t len, qr_diag *d)
{
    qr_rd rd;
    qr_rd_init(&rd, blob, len);
    if (qr_rd_u32(&rd) != PHRASE_MAGIC || rd.bad) return bad(d, &rd, blob, "bad magic");
    uint64_t ntok = qr_rd_uvarint(&rd), npair = qr_rd_uvarint(&rd);
    /* each token takes >= 3 bytes, each pair >= 2 */
    if (rd.bad || ntok < 1 || ntok > qr_rd_left(&rd) / 3 || npair < 1 ||
        npair > qr_rd_left(&rd) / 2)
        return bad(d, &rd, blob, "bad counts");
    if (pp) {
        pp->token_count = (uint32_t)ntok;
        pp->pair_count = (uint32_t)npair;
        pp->tok = malloc(ntok * sizeof *pp->tok);
        pp->tok_len = malloc(ntok);
        pp->tok_flags = malloc(ntok);
        pp->pairs = malloc(npair * sizeof *pp->pairs);
        if (!pp->tok || !pp->tok_len || !pp->tok_flags || !pp->pairs)
            return qr_diag_set(d, QR_ENOMEM, "phrase pairs: out of memory");
    }
    const uint8_t *prev = NULL;
    size_t prev_len = 0;
    for (uint64_t idx = 0; idx < ntok; idx++) {
        size_t n = 0;
        const uint8_t *t = qr_rd_bytes(&rd, &n);
        uint8_t flags = qr_rd_u8(&rd);
        if (rd.bad || n < 1 || n > QR_TOKEN_MAX_BYTES || flags > PHRASE_ONCE)
            return bad(d, &rd, blob, "bad token");
        if (prev && term_cmp((const char *)prev, prev_len, (const char *)t, n) >= 0)
            return bad(d, &rd, blob, "tokens out of order");
        prev = t;
        prev_len = n;
        if (pp) {
            pp->tok[idx] = t;
            pp->tok_len[idx] = (uint8_t)n;
            pp->tok_flags[idx] = flags;
        }
    }
    uint64_t a = 0, last = 0;
    for (uint64_t idx = 0; idx < npair; idx++) {
        a += qr_rd_uvarint(&rd);
        uint64_t c = qr_rd_uvarint(&rd);
        if (rd.bad || a >= ntok || c >= ntok) return bad(d, &rd, blob, "bad pair");
        uint64_t key = a << 32 | c;
        if (idx && key <= last) return bad(d, &rd, blob, "pairs out of order");
        last = key;
        if (pp) pp->pairs[idx] = key;
    }
    if (qr_rd_left(&rd)) return bad(d, &rd, blob, "trailing bytes");
    return 0;
}

int phrase_pairs_open(phrase_pairs *pp, const uint8_t *blob, size_t len, qr_diag *d)
{
    memset(pp, 0, sizeof *pp);
    int rc = decode(pp, blob, len, d);
    if (rc) phrase_pairs_close(pp);
    return rc;
}

void phrase_pairs_close(phrase_pairs *pp)
{
    if (!pp) return;
    free(pp->tok);
    free(pp->tok_len);
    free(pp->tok_flags);
    free(pp->pairs);
    memset(pp, 0, sizeof *pp);
}

int phrase_pairs_verify(const uint8_t *blob, size_t len, qr_diag *d)
{
    return decode(NULL, blob, len, d);
}

static int64_t find_tok(const phrase_pairs *pp, const char *t, size_t n)
{
    size_t lo = 0, hi = pp->token_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = term_cmp((const char *)pp->tok[mid], pp->tok_len[mid], t, n);
        if (c == 0) return (int64_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static bool has_pair(const phrase_pairs *pp, uint64_t key)
{
    size_t lo = 0, hi = pp->pair_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pp->pairs[mid] == key) return true;
        if (pp->pairs[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

bool phrase_pairs_exact(const phrase_pairs *pp, const char *const *tokens, const uint32_t *lens,
                        uint32_t n)
{
    if (!pp || n < 2 || !pp->token_count) return false;
    int64_t prev = -1;
    for (uint32_t idx = 0; idx < n; idx++) {
        int64_t id = find_tok(pp, tokens[idx], lens[idx]);
        if (id < 0) return false;
        if (idx > 0 && idx + 1 < n && !(pp->tok_flags[id] & PHRASE_ONCE)) return false;
        if (prev >= 0 && !has_pair(pp, (uint64_t)prev << 32 | (uint64_t)id)) return false;
        prev = id;
    }
    return true;
}

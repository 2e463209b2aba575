/* invidx — see invidx.h for the blob format and the build algorithm.
 *
 * Lookup: binary search over the heads (each probe checksums one small dict block and reads
 * its first term), then a linear walk of at most INVIDX_TERMS_PER_BLOCK front-coded terms.
 * A unique token (the needle case) ends with an inline row: no postings read at all. */
#include "storage/invidx.h"

#include "common/qr_hash.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- builder */

struct invidx_builder {
    /* terms, by id (order of first appearance) */
    uint64_t *term_hash;
    uint32_t *term_off; /* into term_bytes */
    uint8_t *term_len;
    uint32_t *term_last_row; /* last row recorded, to drop repeats within a row */
    uint32_t *term_rows;     /* distinct rows */
    uint32_t term_count;
    uint32_t term_cap;
    qr_buf term_bytes;
    uint32_t *table; /* open addressing: term id + 1, 0 = empty */
    uint32_t table_mask;
    /* occurrences: term ids in row order; row_start[r] = first occurrence of row r */
    uint32_t *occ_term;
    size_t occ_count;
    size_t occ_cap;
    uint32_t *row_start;
    size_t row_start_cap;
    uint32_t rows_seen; /* rows 0..rows_seen-1 have their row_start set */
    bool failed;
};

invidx_builder *invidx_builder_new(void)
{
    invidx_builder *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    qr_buf_init(&b->term_bytes);
    b->table_mask = 4095;
    b->table = calloc(b->table_mask + 1, sizeof *b->table);
    if (!b->table) {
        free(b);
        return NULL;
    }
    return b;
}

void invidx_builder_free(invidx_builder *b)
{
    if (!b) return;
    free(b->term_hash);
    free(b->term_off);
    free(b->term_len);
    free(b->term_last_row);
    free(b->term_rows);
    qr_buf_fini(&b->term_bytes);
    free(b->table);
    free(b->occ_term);
    free(b->row_start);
    free(b);
}

uint32_t invidx_builder_term_count(const invidx_builder *b)
{
    return b->term_count;
}

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

static int table_rehash(invidx_builder *b)
{
    uint32_t mask = b->table_mask * 2 + 1;
    uint32_t *t = calloc((size_t)mask + 1, sizeof *t);
    if (!t) return QR_ENOMEM;
    for (uint32_t id = 0; id < b->term_count; id++) {
        uint32_t slot = (uint32_t)b->term_hash[id] & mask;
        while (t[slot]) slot = (slot + 1) & mask;
        t[slot] = id + 1;
    }
    free(b->table);
    b->table = t;
    b->table_mask = mask;
    return 0;
}

static int term_intern(invidx_builder *b, const char *tok, size_t len, uint64_t hash, uint32_t *id)
{
    uint32_t slot = (uint32_t)hash & b->table_mask;
    for (;;) {
        uint32_t v = b->table[slot];
        if (!v) break;
        uint32_t cand = v - 1;
        if (b->term_hash[cand] == hash && b->term_len[cand] == len &&
            memcmp(b->term_bytes.data + b->term_off[cand], tok, len) == 0) {
            *id = cand;
            return 0;
        }
        slot = (slot + 1) & b->table_mask;
    }
    if (b->term_count == b->term_cap) {
        size_t cap = b->term_cap, c2;
        c2 = cap;
        if (!grow((void **)&b->term_hash, sizeof(uint64_t), cap + 1, &c2)) return QR_ENOMEM;
        c2 = cap;
        if (!grow((void **)&b->term_off, sizeof(uint32_t), cap + 1, &c2)) return QR_ENOMEM;
        c2 = cap;
        if (!grow((void **)&b->term_len, 1, cap + 1, &c2)) return QR_ENOMEM;
        c2 = cap;
        if (!grow((void **)&b->term_last_row, sizeof(uint32_t), cap + 1, &c2)) return QR_ENOMEM;
        c2 = cap;
        if (!grow((void **)&b->term_rows, sizeof(uint32_t), cap + 1, &c2)) return QR_ENOMEM;
        if (c2 > UINT32_MAX) return QR_ENOMEM;
        b->term_cap = (uint32_t)c2;
    }
    if (b->term_bytes.len + len > UINT32_MAX) return QR_ENOMEM;
    uint32_t nid = b->term_count++;
    b->term_hash[nid] = hash;
    b->term_off[nid] = (uint32_t)b->term_bytes.len;
    b->term_len[nid] = (uint8_t)len;
    b->term_last_row[nid] = UINT32_MAX;
    b->term_rows[nid] = 0;
    qr_buf_append(&b->term_bytes, tok, len);
    if (!qr_buf_ok(&b->term_bytes)) return QR_ENOMEM;
    b->table[slot] = nid + 1;
    *id = nid;
    if ((uint64_t)b->term_count * 2 > b->table_mask) return table_rehash(b);
    return 0;
}

int invidx_builder_add(invidx_builder *b, const char *tok, size_t len, uint64_t hash, uint32_t row)
{
    if (b->failed) return QR_ENOMEM;
    if (len == 0 || len > INVIDX_TERM_MAX || row == UINT32_MAX) return QR_EINVAL;
    if (row + 1 < b->rows_seen) return QR_EINVAL;
    if (row >= b->rows_seen) {
        /* Rows rows_seen..row start at the current occurrence count. */
        if (!grow((void **)&b->row_start, sizeof(uint32_t), (size_t)row + 2, &b->row_start_cap))
            goto oom;
        if (b->occ_count > UINT32_MAX - 1) goto oom;
        for (uint32_t r = b->rows_seen; r <= row; r++) b->row_start[r] = (uint32_t)b->occ_count;
        b->rows_seen = row + 1;
    }
    uint32_t id;
    int rc = term_intern(b, tok, len, hash, &id);
    if (rc) goto oom;
    if (b->term_last_row[id] == row) return 0;
    b->term_last_row[id] = row;
    b->term_rows[id]++;
    if (!grow((void **)&b->occ_term, sizeof(uint32_t), b->occ_count + 1, &b->occ_cap)) goto oom;
    b->occ_term[b->occ_count++] = id;
    return 0;
oom:
    b->failed = true;
    return QR_ENOMEM;
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

static size_t uvarint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Writes one posting list (n > INLINE_MAX rows) to post; returns the entry word or 0 on OOM. */
static uint64_t postings_put(const uint32_t *rows, uint32_t n, qr_buf *post)
{
    size_t vsize = uvarint_len(rows[0]);
    for (uint32_t idx = 1; idx < n; idx++) vsize += uvarint_len(rows[idx] - rows[idx - 1]);
    /* Roaring only wins on dense lists: gaps under 128 rows cost varints one byte each, so
     * try it when varints average more than a byte per row or the list is long (runs and
     * bitset containers beat a byte per row). */
    if (vsize > (size_t)n + 16 || n >= 4096) {
        roaring_bitmap_t *bm = roaring_bitmap_of_ptr(n, rows);
        if (!bm) return 0;
        roaring_bitmap_run_optimize(bm);
        size_t rsize = roaring_bitmap_portable_size_in_bytes(bm);
        uint8_t *p = rsize < vsize ? qr_buf_extend(post, rsize) : NULL;
        if (p) roaring_bitmap_portable_serialize(bm, (char *)p);
        roaring_bitmap_free(bm);
        if (rsize < vsize) return p ? (uint64_t)rsize << 1 : 0;
    }
    qr_buf_uvarint(post, rows[0]);
    for (uint32_t idx = 1; idx < n; idx++) qr_buf_uvarint(post, rows[idx] - rows[idx - 1]);
    return (uint64_t)vsize << 1 | 1;
}

/* Checksum of b[off, len); b->data may be NULL while empty. */
static uint32_t range_crc(const qr_buf *b, size_t off)
{
    return b->len > off ? qr_checksum32(b->data + off, b->len - off) : qr_checksum32("", 0);
}

int invidx_builder_finish(invidx_builder *b, qr_buf *out)
{
    if (b->failed) return QR_ENOMEM;
    int rc = QR_ENOMEM;
    uint32_t nterms = b->term_count;
    uint64_t *start = malloc(((size_t)nterms + 1) * sizeof *start);
    uint32_t *rows = malloc((b->occ_count ? b->occ_count : 1) * sizeof *rows);
    term_ref *order = malloc((nterms ? nterms : 1) * sizeof *order);
    qr_buf heads, dict, post;
    qr_buf_init(&heads);
    qr_buf_init(&dict);
    qr_buf_init(&post);
    if (!start || !rows || !order) goto out;
    /* Counting sort of occurrences by term; rows come out ascending per term. */
    uint64_t acc = 0;
    for (uint32_t id = 0; id < nterms; id++) {
        start[id] = acc;
        acc += b->term_rows[id];
    }
    start[nterms] = acc;
    for (uint32_t r = 0; r < b->rows_seen; r++) {
        size_t end = r + 1 < b->rows_seen ? b->row_start[r + 1] : b->occ_count;
        for (size_t occ = b->row_start[r]; occ < end; occ++) rows[start[b->occ_term[occ]]++] = r;
    }
    for (uint32_t id = 0; id < nterms; id++) start[id] -= b->term_rows[id];
    for (uint32_t id = 0; id < nterms; id++) {
        order[id].p = b->term_bytes.data + b->term_off[id];
        order[id].len = b->term_len[id];
        order[id].id = id;
    }
    qsort(order, nterms, sizeof *order, term_ref_cmp);

    uint32_t head_count = (nterms + INVIDX_TERMS_PER_BLOCK - 1) / INVIDX_TERMS_PER_BLOCK;
    for (uint32_t blk = 0; blk < head_count; blk++) {
        size_t dict_off = dict.len, post_off = post.len;
        uint32_t first = blk * INVIDX_TERMS_PER_BLOCK;
        uint32_t last =
            first + INVIDX_TERMS_PER_BLOCK < nterms ? first + INVIDX_TERMS_PER_BLOCK : nterms;
        for (uint32_t t = first; t < last; t++) {
            const term_ref *tr = &order[t];
            uint32_t shared = 0;
            if (t > first) {
                const term_ref *pr = &order[t - 1];
                while (shared < pr->len && shared < tr->len && pr->p[shared] == tr->p[shared])
                    shared++;
            }
            qr_buf_uvarint(&dict, shared);
            qr_buf_bytes(&dict, tr->p + shared, tr->len - shared);
            uint32_t n = b->term_rows[tr->id];
            const uint32_t *tr_rows = rows + start[tr->id];
            qr_buf_uvarint(&dict, n);
            if (n <= INVIDX_INLINE_MAX) {
                qr_buf_uvarint(&dict, tr_rows[0]);
                for (uint32_t idx = 1; idx < n; idx++)
                    qr_buf_uvarint(&dict, tr_rows[idx] - tr_rows[idx - 1]);
            } else {
                uint64_t word = postings_put(tr_rows, n, &post);
                if (!word) goto out;
                qr_buf_uvarint(&dict, word);
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
    qr_buf_u32(out, INVIDX_MAGIC);
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
    if (magic != INVIDX_MAGIC) return ix_corrupt(d, 0, "bad magic");
    if (per_block == 0 || per_block > 4096 ||
        head_count != (term_count + per_block - 1) / per_block)
        return ix_corrupt(d, 4, "bad term/head counts");
    uint64_t heads_end = INVIDX_HEADER_BYTES + (uint64_t)head_count * INVIDX_HEAD_BYTES;
    if (heads_end + 4 > len) return ix_corrupt(d, 8, "heads past the end");
    if (qr_load_u32(blob + heads_end) != qr_checksum32(blob, (size_t)heads_end))
        return ix_corrupt(d, (int64_t)heads_end, "header checksum mismatch");
    if (dict_len > len || post_len > len || heads_end + 4 + dict_len + post_len != len)
        return ix_corrupt(d, 16, "section lengths do not add up");
    const uint8_t *heads = blob + INVIDX_HEADER_BYTES;
    uint64_t prev_dict = 0, prev_post = 0;
    for (uint32_t blk = 0; blk < head_count; blk++) {
        const uint8_t *h = heads + (size_t)blk * INVIDX_HEAD_BYTES;
        uint64_t doff = qr_load_u32(h), poff = qr_load_u64(h + 8);
        if ((blk == 0 && (doff != 0 || poff != 0)) || doff < prev_dict || doff >= dict_len ||
            poff < prev_post || poff > post_len)
            return ix_corrupt(d, h - blob, "head offsets out of order");
        if (blk && doff == prev_dict) return ix_corrupt(d, h - blob, "empty dict block");
        prev_dict = doff;
        prev_post = poff;
    }
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

static void head_get(const invidx *ix, uint32_t blk, uint64_t *doff, uint64_t *dend, uint64_t *poff,
                     uint64_t *pend)
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
}

static int64_t dict_pos(const invidx *ix, const uint8_t *p)
{
    return p - ix->blob;
}

/* Positions the iterator at the start of dict block blk, checking its checksum. */
static int iter_seek(dict_iter *it, uint32_t blk, qr_diag *d)
{
    const invidx *ix = it->ix;
    uint64_t doff, dend, poff, pend;
    head_get(ix, blk, &doff, &dend, &poff, &pend);
    const uint8_t *h = ix->heads + (size_t)blk * INVIDX_HEAD_BYTES;
    if (qr_checksum32(ix->dict + doff, (size_t)(dend - doff)) != qr_load_u32(h + 4))
        return ix_corrupt(d, dict_pos(ix, ix->dict + doff), "dict block checksum mismatch");
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
    size_t suffix_len = 0;
    const uint8_t *suffix = qr_rd_bytes(&it->rd, &suffix_len);
    uint64_t n = qr_rd_uvarint(&it->rd);
    if (it->rd.bad || (it->at_block_start && shared != 0) || shared > it->term_len ||
        shared + suffix_len > INVIDX_TERM_MAX || shared + suffix_len == 0 || n == 0 ||
        n > ix->row_count)
        return ix_corrupt(d, dict_pos(ix, entry), "bad term entry");
    memcpy(it->term + shared, suffix, suffix_len);
    it->term_len = (size_t)shared + suffix_len;
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
    uint64_t plen = word >> 1;
    if (it->rd.bad || plen == 0 || plen > it->post_end - it->post_next)
        return ix_corrupt(d, dict_pos(ix, entry), "bad postings length");
    it->post_kind = (int)(word & 1);
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

/* Finds the last block whose first term is < key (strict = true) or <= key; 0 if none. */
static int find_block(const invidx *ix, const char *key, size_t len, bool strict, uint32_t *blk_out,
                      qr_diag *d)
{
    uint32_t lo = 0, hi = ix->head_count; /* invariant: answer in [lo, hi) or 0 */
    dict_iter it = {.ix = ix};
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        int rc = iter_seek(&it, mid, d);
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
    *blk_out = lo;
    return 0;
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
    if (!it->post_checked) {
        const uint8_t *h = ix->heads + (size_t)it->blk * INVIDX_HEAD_BYTES;
        if (qr_checksum32(ix->post + it->post_start, (size_t)(it->post_end - it->post_start)) !=
            qr_load_u32(h + 16))
            return ix_corrupt(d, dict_pos(ix, ix->post + it->post_start),
                              "postings checksum mismatch");
        it->post_checked = true;
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
    uint64_t row = 0;
    for (uint32_t idx = 0; idx < it->rows_n; idx++) {
        uint64_t v = qr_rd_uvarint(&rd);
        if (idx && v == 0) rd.bad = true;
        row += v;
        if (row >= ix->row_count) rd.bad = true;
        if (rd.bad) break;
        rows[idx] = (uint32_t)row;
    }
    if (rd.bad || qr_rd_left(&rd)) {
        free(rows);
        return ix_corrupt(d, at, "bad varint postings");
    }
    roaring_bitmap_t *bm = roaring_bitmap_of_ptr(it->rows_n, rows);
    free(rows);
    if (!bm) return QR_ENOMEM;
    *out = bm;
    return 0;
}

int invidx_postings(const invidx *ix, const char *term, size_t len, roaring_bitmap_t **out,
                    qr_diag *d)
{
    *out = NULL;
    if (ix->head_count == 0 || len == 0 || len > INVIDX_TERM_MAX) return 0;
    uint32_t blk;
    int rc = find_block(ix, term, len, false, &blk, d);
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
    int rc = len ? find_block(ix, prefix, len, true, &blk, d) : 0;
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

int invidx_verify(const invidx *ix, qr_diag *d)
{
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

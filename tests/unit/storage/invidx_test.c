/* invidx_test — the inverted index against a brute-force model: postings of every term,
 * absent terms, prefix walks in byte order, and corruption detection. */
#include "qr_test.h"
#include "storage/invidx.h"

#include "common/qr_err.h"
#include "common/qr_hash.h"
#include "storage/tokenize.h"

#define NROWS 5000
#define NTERMS 600

typedef struct model {
    char terms[NTERMS][24];
    size_t lens[NTERMS];
    uint8_t *has; /* NROWS x NTERMS */
} model;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Per block of a sparse build: the hashes invidx_builder_block_hashes listed, sorted. */
typedef struct block_hashes {
    uint64_t *h[NROWS];
    size_t n[NROWS];
    uint32_t blocks;
} block_hashes;

static int u64_cmp(const void *a, const void *b);

static void take_block_hashes(invidx_builder *b, block_hashes *bh)
{
    const uint64_t *hs;
    size_t n = invidx_builder_block_hashes(b, &hs);
    uint64_t *copy = malloc((n ? n : 1) * sizeof *copy);
    memcpy(copy, hs, n * sizeof *copy);
    qsort(copy, n, sizeof *copy, u64_cmp);
    bh->h[bh->blocks] = copy;
    bh->n[bh->blocks++] = n;
}

/* sparse_rows > 0: a sparse index over blocks of that many rows, first-seen block hashes in
 * *bh. */
static void model_build_ex(model *m, uint64_t seed, qr_buf *blob, uint32_t sparse_rows,
                           block_hashes *bh)
{
    uint64_t state = seed;
    static const char *stems[] = {"err", "error",   "errno", "a", "ab",
                                  "abc", "timeout", "time",  "é"};
    for (int t = 0; t < NTERMS; t++) {
        if (t < 9)
            snprintf(m->terms[t], sizeof m->terms[t], "%s", stems[t]);
        else
            snprintf(m->terms[t], sizeof m->terms[t], "%s%llu", stems[t % 9],
                     (unsigned long long)(qr_test_rand(&state) % 100000));
        m->lens[t] = strlen(m->terms[t]);
        for (int u = 0; u < t; u++)
            if (strcmp(m->terms[u], m->terms[t]) == 0) {
                snprintf(m->terms[t], sizeof m->terms[t], "dup%d", t);
                m->lens[t] = strlen(m->terms[t]);
            }
    }
    m->has = calloc((size_t)NROWS * NTERMS, 1);
    invidx_builder *b = invidx_builder_new();
    if (sparse_rows) invidx_builder_block_hashes_first_seen(b);
    for (uint32_t row = 0; row < NROWS; row++) {
        if (sparse_rows && row && row % sparse_rows == 0) take_block_hashes(b, bh);
        int k = (int)(qr_test_rand(&state) % 12);
        for (int occ = 0; occ < k; occ++) {
            /* skewed: low term ids are frequent (dense lists), high ones rare (1-2 rows) */
            uint64_t r = qr_test_rand(&state);
            int t = (int)(r % 4 == 0 ? r % 8 : r % NTERMS);
            if (t == 7 && row % 2) continue;
            if (t == 8 || t == NTERMS - 1) continue; /* added below, as twins */
            /* sparse builds: the upper half of the terms are local (a 40-row window each),
             * most within one block */
            if (sparse_rows && t >= NTERMS / 2 && row / 40 != (uint32_t)t % 125) continue;
            m->has[(size_t)row * NTERMS + t] = 1;
            invidx_builder_add(b, m->terms[t], m->lens[t], qr_token_hash(m->terms[t], m->lens[t]),
                               row);
        }
        if (row < 4000 || row % 7 == 0) {
            /* terms 8 and the last: a long run of consecutive rows then every 7th row, the
             * same rows for both (the second stores a reference to the first's list) */
            for (int t = 8; t < NTERMS; t += NTERMS - 1 - 8) {
                m->has[(size_t)row * NTERMS + t] = 1;
                invidx_builder_add(b, m->terms[t], m->lens[t],
                                   qr_token_hash(m->terms[t], m->lens[t]), row);
            }
        }
    }
    if (sparse_rows) take_block_hashes(b, bh);
    CHECK(invidx_builder_finish_sparse(b, sparse_rows, blob) == 0);
    invidx_builder_free(b);
}

static void model_build(model *m, uint64_t seed, qr_buf *blob)
{
    model_build_ex(m, seed, blob, 0, NULL);
}

static int collect_cb(void *ctx, const char *term, size_t len)
{
    qr_buf *out = ctx;
    qr_buf_append(out, term, len);
    qr_buf_u8(out, '\n');
    return 0;
}

static void expect_prefix(const invidx *ix, const model *m, const char *prefix)
{
    char *match[NTERMS];
    int nm = 0;
    for (int t = 0; t < NTERMS; t++) {
        int used = 0;
        for (int row = 0; row < NROWS && !used; row++) used = m->has[(size_t)row * NTERMS + t];
        if (used && strncmp(m->terms[t], prefix, strlen(prefix)) == 0)
            match[nm++] = (char *)m->terms[t];
    }
    qsort(match, (size_t)nm, sizeof *match, cmp_str);
    qr_buf want, got;
    qr_buf_init(&want);
    qr_buf_init(&got);
    for (int idx = 0; idx < nm; idx++) {
        qr_buf_append(&want, match[idx], strlen(match[idx]));
        qr_buf_u8(&want, '\n');
    }
    CHECK(invidx_terms_with_prefix(ix, prefix, strlen(prefix), collect_cb, &got, NULL) == 0);
    CHECK(want.len == got.len && (want.len == 0 || memcmp(want.data, got.data, want.len) == 0));
    if (want.len != got.len)
        fprintf(stderr, "prefix '%s': want %zu bytes got %zu\n", prefix, want.len, got.len);
    qr_buf_fini(&want);
    qr_buf_fini(&got);
}

TEST(postings_match_model)
{
    model m;
    qr_buf blob;
    qr_buf_init(&blob);
    model_build(&m, 5, &blob);
    invidx ix;
    REQUIRE(invidx_open(&ix, blob.data, blob.len, NROWS, NULL) == 0);
    CHECK(invidx_verify(&ix, NULL) == 0);
    size_t used_terms = 0;
    for (int t = 0; t < NTERMS; t++) {
        roaring_bitmap_t *bm = NULL;
        CHECK(invidx_postings(&ix, m.terms[t], m.lens[t], &bm, NULL) == 0);
        uint64_t want = 0;
        bool same = true;
        for (uint32_t row = 0; row < NROWS; row++) {
            bool h = m.has[(size_t)row * NTERMS + t];
            want += h;
            if (bm && roaring_bitmap_contains(bm, row) != h) same = false;
        }
        if (want == 0) {
            CHECK(bm == NULL);
        } else {
            used_terms++;
            REQUIRE(bm != NULL);
            CHECK(same);
            CHECK(roaring_bitmap_get_cardinality(bm) == want);
        }
        if (bm) roaring_bitmap_free(bm);
    }
    CHECK(ix.term_count == used_terms);
    /* block keys (first 8 bytes of each dict block's first term) give the same answers, for
     * terms present, absent, and sharing their first 8 bytes ("timeout1...", "errno123...") */
    uint64_t *keys = malloc((size_t)ix.head_count * sizeof *keys);
    REQUIRE(keys && invidx_block_keys(&ix, keys, NULL) == 0);
    CHECK(ix.head_count > 4);
    uint64_t probe_state = 17;
    for (int t = 0; t < 2 * NTERMS; t++) {
        char absent[32];
        const char *term = t < NTERMS ? m.terms[t] : absent;
        size_t len = t < NTERMS ? m.lens[t] : 0;
        if (t >= NTERMS) { /* neighbours of real terms: one more digit, one byte changed */
            int u = t - NTERMS;
            len = (size_t)snprintf(absent, sizeof absent, "%s%d", m.terms[u],
                                   (int)(qr_test_rand(&probe_state) % 10));
            if (u % 2) absent[len - 2] ^= 1;
        }
        roaring_bitmap_t *plain = NULL, *keyed = NULL;
        CHECK(invidx_postings(&ix, term, len, &plain, NULL) == 0);
        CHECK(invidx_postings_keyed(&ix, keys, term, len, &keyed, NULL) == 0);
        CHECK((plain == NULL) == (keyed == NULL));
        if (plain && keyed) CHECK(roaring_bitmap_equals(plain, keyed));
        if (plain) roaring_bitmap_free(plain);
        if (keyed) roaring_bitmap_free(keyed);
    }
    free(keys);
    roaring_bitmap_t *bm = (roaring_bitmap_t *)1;
    CHECK(invidx_postings(&ix, "zzzz", 4, &bm, NULL) == 0 && bm == NULL);
    CHECK(invidx_postings(&ix, "", 0, &bm, NULL) == 0 && bm == NULL);
    CHECK(invidx_postings(&ix, "0", 1, &bm, NULL) == 0 && bm == NULL);
    const char *prefixes[] = {"",  "e",    "err",      "erro", "error", "a",  "ab", "abc",
                              "t", "time", "timeout9", "é",    "\xc3",  "zz", "0",  "dup"};
    for (size_t idx = 0; idx < sizeof prefixes / sizeof *prefixes; idx++)
        expect_prefix(&ix, &m, prefixes[idx]);
    free(m.has);
    qr_buf_fini(&blob);
}

/* A sparse index holds exactly the terms of more than INVIDX_SPARSE_MAX_BLOCKS blocks, with
 * their exact rows; every term is in the block hashes of the first INVIDX_SPARSE_MAX_BLOCKS
 * blocks that have it (so each term the index leaves out is in all of its blocks' hashes)
 * and in no later block's. */
TEST(sparse_index_and_first_seen_block_hashes)
{
    enum { BLOCK = 97 };
    model m;
    qr_buf blob;
    qr_buf_init(&blob);
    static block_hashes bh;
    memset(&bh, 0, sizeof bh);
    model_build_ex(&m, 11, &blob, BLOCK, &bh);
    CHECK(bh.blocks == (NROWS + BLOCK - 1) / BLOCK);
    invidx ix;
    REQUIRE(invidx_open(&ix, blob.data, blob.len, NROWS, NULL) == 0);
    CHECK(ix.sparse);
    CHECK(invidx_verify(&ix, NULL) == 0);
    uint32_t indexed = 0, left_out = 0;
    for (int t = 0; t < NTERMS; t++) {
        int first = -1, last = -1;
        for (int row = 0; row < NROWS; row++)
            if (m.has[(size_t)row * NTERMS + t]) {
                if (first < 0) first = row;
                last = row;
            }
        roaring_bitmap_t *bm = NULL;
        CHECK(invidx_postings(&ix, m.terms[t], m.lens[t], &bm, NULL) == 0);
        if (first < 0) {
            CHECK(bm == NULL);
            continue;
        }
        uint64_t h = qr_token_hash(m.terms[t], m.lens[t]);
        /* the blocks that have the term, in order */
        uint32_t blocks[NROWS], nb = 0;
        for (int row = first; row <= last; row++)
            if (m.has[(size_t)row * NTERMS + t] &&
                (nb == 0 || blocks[nb - 1] != (uint32_t)row / BLOCK))
                blocks[nb++] = (uint32_t)row / BLOCK;
        /* listed by the first INVIDX_SPARSE_MAX_BLOCKS blocks that have it, not by later ones */
        for (uint32_t k = 0; k < nb; k++) {
            bool listed = bsearch(&h, bh.h[blocks[k]], bh.n[blocks[k]], sizeof h, u64_cmp);
            CHECK(listed == (k < INVIDX_SPARSE_MAX_BLOCKS));
        }
        if (nb <= INVIDX_SPARSE_MAX_BLOCKS) {
            CHECK(bm == NULL);
            left_out++;
        } else {
            indexed++;
            REQUIRE(bm != NULL);
            bool same = true;
            uint64_t want = 0;
            for (uint32_t row = 0; row < NROWS; row++) {
                bool has = m.has[(size_t)row * NTERMS + t];
                want += has;
                if (roaring_bitmap_contains(bm, row) != has) same = false;
            }
            CHECK(same && roaring_bitmap_get_cardinality(bm) == want);
        }
        if (bm) roaring_bitmap_free(bm);
    }
    CHECK(ix.term_count == indexed);
    CHECK(left_out > 40 && indexed > 100); /* the model exercises both kinds */
    /* The same rows through a full index: the sparse one is smaller (rare terms left out,
     * Rice lists). */
    model full;
    qr_buf fblob;
    qr_buf_init(&fblob);
    model_build(&full, 11, &fblob);
    CHECK(blob.len < fblob.len);
    /* Flipped bytes: reported or harmless, never a wrong answer. */
    uint8_t *orig = malloc(blob.len);
    memcpy(orig, blob.data, blob.len);
    uint64_t state = 5;
    for (int iter = 0; iter < 120; iter++) {
        size_t off = qr_test_rand(&state) % blob.len;
        blob.data[off] ^= (uint8_t)(1 + qr_test_rand(&state) % 255);
        invidx ix2;
        int rc = invidx_open(&ix2, blob.data, blob.len, NROWS, NULL);
        if (rc == 0) rc = invidx_verify(&ix2, NULL);
        CHECK(rc == QR_ECORRUPT);
        if (invidx_open(&ix2, blob.data, blob.len, NROWS, NULL) == 0) {
            for (int t = iter % 4; t < NTERMS; t += 4) {
                roaring_bitmap_t *b1 = NULL, *b2 = NULL;
                int prc = invidx_postings(&ix2, m.terms[t], m.lens[t], &b1, NULL);
                invidx_postings(&ix, m.terms[t], m.lens[t], &b2, NULL);
                if (prc == 0 && b1 && b2) CHECK(roaring_bitmap_equals(b1, b2));
                if (prc == 0) CHECK((b1 == NULL) == (b2 == NULL) || ix2.sparse != ix.sparse);
                if (b1) roaring_bitmap_free(b1);
                if (b2) roaring_bitmap_free(b2);
            }
        }
        memcpy(blob.data, orig, blob.len);
    }
    free(orig);
    for (uint32_t blk = 0; blk < bh.blocks; blk++) free(bh.h[blk]);
    free(m.has);
    free(full.has);
    qr_buf_fini(&blob);
    qr_buf_fini(&fblob);
}

/* Rice lists (sparse indexes only) decode to the exact rows, whatever the gaps. */
TEST(rice_lists_round_trip)
{
    enum { ROWS = 120000, TERMS = 9 };
    invidx_builder *b = invidx_builder_new(), *full = invidx_builder_new();
    uint64_t state = 3;
    static uint8_t has[TERMS][ROWS];
    char terms[TERMS][8];
    for (int t = 0; t < TERMS; t++) snprintf(terms[t], sizeof terms[t], "t%d", t);
    for (uint32_t row = 0; row < ROWS; row++) {
        for (int t = 0; t < TERMS; t++) {
            /* densities from 1/2 to 1/30000, and one term with a single huge gap */
            uint64_t every = t == TERMS - 1 ? 2 : 1ull << (2 * t);
            bool h = qr_test_rand(&state) % (every ? every : 1) == 0;
            if (t == TERMS - 1) h = row < 3 || row % 40000 == 39999; /* four blocks */
            has[t][row] = h;
            if (h) REQUIRE(invidx_builder_add(b, terms[t], strlen(terms[t]), 0, row) == 0);
            if (h) REQUIRE(invidx_builder_add(full, terms[t], strlen(terms[t]), 0, row) == 0);
        }
    }
    qr_buf blob;
    qr_buf_init(&blob);
    REQUIRE(invidx_builder_finish_sparse(b, 8192, &blob) == 0);
    invidx_builder_free(b);
    qr_buf fblob;
    qr_buf_init(&fblob);
    REQUIRE(invidx_builder_finish(full, &fblob) == 0);
    invidx_builder_free(full);
    /* every term spans many blocks, so only the list forms differ: Rice made it smaller */
    CHECK(blob.len < fblob.len - fblob.len / 20);
    qr_buf_fini(&fblob);
    invidx ix;
    REQUIRE(invidx_open(&ix, blob.data, blob.len, ROWS, NULL) == 0);
    CHECK(invidx_verify(&ix, NULL) == 0);
    for (int t = 0; t < TERMS; t++) {
        roaring_bitmap_t *bm = NULL;
        CHECK(invidx_postings(&ix, terms[t], strlen(terms[t]), &bm, NULL) == 0);
        REQUIRE(bm != NULL);
        bool same = true;
        uint64_t want = 0;
        for (uint32_t row = 0; row < ROWS; row++) {
            want += has[t][row];
            if (roaring_bitmap_contains(bm, row) != has[t][row]) same = false;
        }
        CHECK(same && roaring_bitmap_get_cardinality(bm) == want);
        roaring_bitmap_free(bm);
    }
    qr_buf_fini(&blob);
}

TEST(empty_index)
{
    invidx_builder *b = invidx_builder_new();
    qr_buf blob;
    qr_buf_init(&blob);
    REQUIRE(invidx_builder_finish(b, &blob) == 0);
    invidx ix;
    REQUIRE(invidx_open(&ix, blob.data, blob.len, 10, NULL) == 0);
    roaring_bitmap_t *bm = NULL;
    CHECK(invidx_postings(&ix, "a", 1, &bm, NULL) == 0 && bm == NULL);
    CHECK(invidx_verify(&ix, NULL) == 0);
    invidx_builder_free(b);
    qr_buf_fini(&blob);
}

TEST(flipped_bytes_detected)
{
    model m;
    qr_buf blob;
    qr_buf_init(&blob);
    model_build(&m, 9, &blob);
    /* reference answers */
    uint64_t want[NTERMS];
    invidx ix;
    REQUIRE(invidx_open(&ix, blob.data, blob.len, NROWS, NULL) == 0);
    for (int t = 0; t < NTERMS; t++) {
        roaring_bitmap_t *bm = NULL;
        invidx_postings(&ix, m.terms[t], m.lens[t], &bm, NULL);
        want[t] =
            bm ? roaring_bitmap_get_cardinality(bm) * 1000003 + roaring_bitmap_minimum(bm) : 0;
        if (bm) roaring_bitmap_free(bm);
    }
    uint8_t *orig = malloc(blob.len);
    memcpy(orig, blob.data, blob.len);
    uint64_t state = 77;
    int detected = 0;
    for (int iter = 0; iter < 150; iter++) {
        size_t off = qr_test_rand(&state) % blob.len;
        blob.data[off] ^= (uint8_t)(1 + qr_test_rand(&state) % 255);
        qr_diag d;
        qr_diag_init(&d);
        invidx ix2;
        int rc = invidx_open(&ix2, blob.data, blob.len, NROWS, &d);
        if (rc == 0) rc = invidx_verify(&ix2, &d);
        CHECK(rc == 0 || rc == QR_ECORRUPT);
        if (rc) detected++;
        if (invidx_open(&ix2, blob.data, blob.len, NROWS, NULL) == 0) {
            for (int t = iter % 3; t < NTERMS; t += 3) {
                roaring_bitmap_t *bm = NULL;
                int prc = invidx_postings(&ix2, m.terms[t], m.lens[t], &bm, NULL);
                uint64_t got =
                    bm ? roaring_bitmap_get_cardinality(bm) * 1000003 + roaring_bitmap_minimum(bm)
                       : 0;
                if (prc == 0) CHECK(got == want[t]); /* never a silent wrong answer */
                if (bm) roaring_bitmap_free(bm);
            }
            /* keys read from the same (damaged) bytes: still never a wrong answer */
            uint64_t *keys = malloc(((size_t)ix2.head_count + 1) * sizeof *keys);
            if (keys && invidx_block_keys(&ix2, keys, NULL) == 0) {
                for (int t = iter % 3; t < NTERMS; t += 3) {
                    roaring_bitmap_t *bm = NULL;
                    int prc = invidx_postings_keyed(&ix2, keys, m.terms[t], m.lens[t], &bm, NULL);
                    uint64_t got = bm ? roaring_bitmap_get_cardinality(bm) * 1000003 +
                                            roaring_bitmap_minimum(bm)
                                      : 0;
                    CHECK(prc == 0 || prc == QR_ECORRUPT);
                    if (prc == 0) CHECK(got == want[t]);
                    if (bm) roaring_bitmap_free(bm);
                }
            }
            free(keys);
        }
        memcpy(blob.data, orig, blob.len);
    }
    /* every byte of the header and heads, which open no longer checksums: lookups give the
     * right rows or QR_ECORRUPT, and verify catches each flip */
    REQUIRE(invidx_open(&ix, blob.data, blob.len, NROWS, NULL) == 0);
    size_t heads_end = INVIDX_HEADER_BYTES + (size_t)ix.head_count * INVIDX_HEAD_BYTES + 4;
    int head_flips = 0, head_detected = 0;
    for (size_t off = 0; off < heads_end; off++) {
        blob.data[off] ^= (uint8_t)(1u << (off % 8));
        invidx ix2;
        qr_diag d;
        qr_diag_init(&d);
        int rc = invidx_open(&ix2, blob.data, blob.len, NROWS, &d);
        if (rc == 0) {
            for (int t = (int)(off % 5); t < NTERMS; t += 5) {
                roaring_bitmap_t *bm = NULL;
                int prc = invidx_postings(&ix2, m.terms[t], m.lens[t], &bm, NULL);
                uint64_t got =
                    bm ? roaring_bitmap_get_cardinality(bm) * 1000003 + roaring_bitmap_minimum(bm)
                       : 0;
                CHECK(prc == 0 || prc == QR_ECORRUPT);
                if (prc == 0) CHECK(got == want[t]);
                if (bm) roaring_bitmap_free(bm);
            }
            rc = invidx_verify(&ix2, &d);
        }
        head_flips++;
        head_detected += rc == QR_ECORRUPT;
        memcpy(blob.data, orig, blob.len);
    }
    CHECK(head_flips > 100);
    CHECK(head_detected == head_flips);
    free(orig);
    CHECK(detected == 150);
    free(m.has);
    qr_buf_fini(&blob);
}

/* Rows of list form `form` for term index t (0 .. 5): the forms the writer picks from. */
static bool form_has(int form, int t, uint32_t row)
{
    switch (form) {
    case 0:
        return row >= 100 && row < 9000; /* one run: roaring */
    case 1:
        return row % 37 == (uint32_t)t % 37; /* even gaps: packed */
    case 2:
        return row % 37 == 5 || row == 19999; /* one outlier gap: packed runs */
    case 3:
        return row % 1999 == (uint32_t)t || row == 19998; /* sparse: varint */
    case 4:
        return row == 17 || row == 18 || row == 19; /* short */
    default:
        return row % 101 == 3; /* shared by many terms */
    }
}

TEST(list_forms_and_nibble_terms_round_trip)
{
    /* Terms of every suffix shape (digits, hex, odd lengths, letters past f, mixed) with
     * lists of every form; 80 terms share form 5's rows, across dict blocks. */
    enum { ROWS = 20000, TERMS = 140 };
    char terms[TERMS][24];
    int form[TERMS];
    for (int t = 0; t < TERMS; t++) {
        static const char *shapes[] = {"%d", "%x", "f%03x", "%dz", "g%x", "%05d", "abc%d"};
        snprintf(terms[t], sizeof terms[t], shapes[t % 7], t * 7919);
        form[t] = t < 60 ? t % 5 : 5;
    }
    invidx_builder *b = invidx_builder_new();
    for (uint32_t row = 0; row < ROWS; row++)
        for (int t = 0; t < TERMS; t++)
            if (form_has(form[t], t, row))
                REQUIRE(invidx_builder_add(b, terms[t], strlen(terms[t]), 0, row) == 0);
    qr_buf blob;
    qr_buf_init(&blob);
    REQUIRE(invidx_builder_finish(b, &blob) == 0);
    invidx_builder_free(b);
    invidx ix;
    REQUIRE(invidx_open(&ix, blob.data, blob.len, ROWS, NULL) == 0);
    CHECK(invidx_verify(&ix, NULL) == 0);
    for (int t = 0; t < TERMS; t++) {
        roaring_bitmap_t *bm = NULL;
        CHECK(invidx_postings(&ix, terms[t], strlen(terms[t]), &bm, NULL) == 0);
        REQUIRE(bm != NULL);
        uint64_t want = 0;
        bool same = true;
        for (uint32_t row = 0; row < ROWS; row++) {
            bool h = form_has(form[t], t, row);
            want += h;
            if (roaring_bitmap_contains(bm, row) != h) same = false;
        }
        CHECK(same && roaring_bitmap_get_cardinality(bm) == want);
        roaring_bitmap_free(bm);
    }
    /* Every term comes back by prefix walk with its exact bytes. */
    qr_buf got;
    qr_buf_init(&got);
    CHECK(invidx_terms_with_prefix(&ix, "", 0, collect_cb, &got, NULL) == 0);
    for (int t = 0; t < TERMS; t++) {
        char line[32];
        snprintf(line, sizeof line, "\n%s\n", terms[t]);
        bool found = got.len && memcmp(got.data, line + 1, strlen(line + 1)) == 0;
        for (size_t off = 0; !found && off + strlen(line) <= got.len; off++)
            found = memcmp(got.data + off, line, strlen(line)) == 0;
        CHECK(found);
    }
    qr_buf_fini(&got);
    /* The 80 terms sharing one list pay for it once: the blob is far smaller than 80 lists
     * of ~198 rows (~2 bytes per row even bit-packed at 7 bits). */
    CHECK(blob.len < 60 * 200 + 80 * 40);
    qr_buf_fini(&blob);
}

/* add_text must index exactly the tokens qr_tokenize finds (the one tokenizer contract). */
typedef struct tok_ctx {
    invidx_builder *b;
    uint32_t row;
    uint64_t *hashes;
    size_t n;
} tok_ctx;

static int tok_add(void *ctx, const char *tok, size_t len, size_t off)
{
    (void)off;
    tok_ctx *t = ctx;
    t->hashes[t->n++] = qr_token_hash(tok, len);
    return invidx_builder_add(t->b, tok, len, 0, t->row);
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

TEST(add_text_matches_tokenizer)
{
    invidx_builder *fast = invidx_builder_new(), *slow = invidx_builder_new();
    uint64_t state = 3;
    char text[300];
    uint64_t *want = malloc(400 * 300 * sizeof *want);
    tok_ctx tc = {slow, 0, want, 0};
    static const char alphabet[] = "aZ09 _=-.:/\xc3\xa9\x80\xffQqxX\t\n";
    for (uint32_t row = 0; row < 400; row++) {
        size_t len = qr_test_rand(&state) % sizeof text;
        for (size_t idx = 0; idx < len; idx++) {
            uint64_t r = qr_test_rand(&state);
            /* long runs now and then, to cross QR_TOKEN_MAX_BYTES */
            text[idx] = r % 50 == 0 ? ' ' : r % 3 ? (char)alphabet[r % (sizeof alphabet - 1)] : 'k';
        }
        REQUIRE(invidx_builder_add_text(fast, text, len, row) == 0);
        tc.row = row;
        REQUIRE(qr_tokenize(text, len, tok_add, &tc) == 0);
        if (row % 50 == 49) { /* a "block": the distinct hashes match too */
            const uint64_t *got;
            size_t n = invidx_builder_block_hashes(fast, &got);
            uint64_t *g = malloc((n + 1) * sizeof *g);
            memcpy(g, got, n * sizeof *g);
            qsort(g, n, sizeof *g, u64_cmp);
            qsort(want, tc.n, sizeof *want, u64_cmp);
            size_t distinct = 0;
            for (size_t idx = 0; idx < tc.n; idx++)
                if (idx == 0 || want[idx] != want[idx - 1]) want[distinct++] = want[idx];
            CHECK(n == distinct && memcmp(g, want, n * sizeof *g) == 0);
            free(g);
            tc.n = 0;
            const uint64_t *ignored;
            invidx_builder_block_hashes(slow, &ignored);
        }
    }
    qr_buf a, b;
    qr_buf_init(&a);
    qr_buf_init(&b);
    REQUIRE(invidx_builder_finish(fast, &a) == 0);
    REQUIRE(invidx_builder_finish(slow, &b) == 0);
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    CHECK(invidx_builder_term_count(fast) > 100);
    qr_buf_fini(&a);
    qr_buf_fini(&b);
    free(want);
    invidx_builder_free(fast);
    invidx_builder_free(slow);
}

int main(void)
{
    RUN(postings_match_model);
    RUN(sparse_index_and_first_seen_block_hashes);
    RUN(rice_lists_round_trip);
    RUN(empty_index);
    RUN(flipped_bytes_detected);
    RUN(list_forms_and_nibble_terms_round_trip);
    RUN(add_text_matches_tokenizer);
    QR_TEST_MAIN_END();
}

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

static void model_build(model *m, uint64_t seed, qr_buf *blob)
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
    for (uint32_t row = 0; row < NROWS; row++) {
        int k = (int)(qr_test_rand(&state) % 12);
        for (int occ = 0; occ < k; occ++) {
            /* skewed: low term ids are frequent (dense lists), high ones rare (1-2 rows) */
            uint64_t r = qr_test_rand(&state);
            int t = (int)(r % 4 == 0 ? r % 8 : r % NTERMS);
            if (t == 7 && row % 2) continue;
            m->has[(size_t)row * NTERMS + t] = 1;
            invidx_builder_add(b, m->terms[t], m->lens[t], qr_token_hash(m->terms[t], m->lens[t]),
                               row);
        }
        if (row < 4000) { /* term 8 in a long run of consecutive rows */
            m->has[(size_t)row * NTERMS + 8] = 1;
            invidx_builder_add(b, m->terms[8], m->lens[8], qr_token_hash(m->terms[8], m->lens[8]),
                               row);
        }
    }
    CHECK(invidx_builder_finish(b, blob) == 0);
    invidx_builder_free(b);
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
        }
        memcpy(blob.data, orig, blob.len);
    }
    free(orig);
    CHECK(detected == 150);
    free(m.has);
    qr_buf_fini(&blob);
}

int main(void)
{
    RUN(postings_match_model);
    RUN(empty_index);
    RUN(flipped_bytes_detected);
    QR_TEST_MAIN_END();
}

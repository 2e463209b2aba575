/* phrase_test — adjacency pairs against brute force: every phrase the pairs call exact has
 * exactly the rows of its words' intersection; words that also meet apart, digits between
 * words, a middle word seen twice in a row and rare pairs are never called exact; a damaged
 * blob is an error, never a crash. */
#include "qr_test.h"
#include "storage/phrase.h"

#include "storage/invidx.h"
#include "storage/tokenize.h"

#define NROWS 4000
#define MAXTOK 16

static const char *const g_words[] = {
    "connection", "refused", "by",  "retry", "after", "timeout", "user",  "login", "failed",
    "cache",      "miss",    "for", "disk",  "full",  "rare",    "words", "to",    "here"};
#define NWORDS (sizeof g_words / sizeof g_words[0])

typedef struct rows {
    char text[NROWS][96];
    char tok[NROWS][MAXTOK][24];
    int ntok[NROWS];
} rows;

static rows g_rows;

static int collect(void *ctx, const char *tok, size_t len, size_t offset)
{
    (void)offset;
    int r = *(int *)ctx;
    if (g_rows.ntok[r] < MAXTOK && len < 24) {
        memcpy(g_rows.tok[r][g_rows.ntok[r]], tok, len);
        g_rows.tok[r][g_rows.ntok[r]][len] = '\0';
        g_rows.ntok[r]++;
    }
    return 0;
}

/* Templates: "connection refused" meets apart only when apart_rows is set. */
static void make_rows(uint64_t seed, bool apart_rows)
{
    uint64_t st = seed;
    memset(&g_rows, 0, sizeof g_rows);
    for (int r = 0; r < NROWS; r++) {
        unsigned n = (unsigned)(qr_test_rand(&st) % 1000);
        unsigned v = (unsigned)(qr_test_rand(&st) % 100000);
        char *t = g_rows.text[r];
        size_t cap = sizeof g_rows.text[r];
        int kind = (int)(qr_test_rand(&st) % 8);
        if (r < 10) kind = 8; /* ten rare rows */
        switch (kind) {
        case 0:
            snprintf(t, cap, "Connection refused by 10.0.%u.%u", n % 256, v % 256);
            break;
        case 1:
            snprintf(t, cap, "retry %u after timeout", n);
            break;
        case 2:
            snprintf(t, cap, "user u%u login failed", v);
            break;
        case 3:
            snprintf(t, cap, "cache miss for user u%u", v);
            break;
        case 4:
            if (apart_rows)
                snprintf(t, cap, "failed connection to cache, refused retry");
            else
                snprintf(t, cap, "cache miss for disk %u", n);
            break;
        case 5:
            snprintf(t, cap, "login login failed");
            break;
        case 6:
            snprintf(t, cap, "Disk full; full DISK");
            break;
        case 7:
            snprintf(t, cap, "timeout: connection refused after retry");
            break;
        default:
            snprintf(t, cap, "rare words here");
            break;
        }
        qr_tokenize(t, strlen(t), collect, &r);
    }
}

/* Rows holding every word, and rows holding them in a run. */
static void brute(const char *const *ph, int n, int *and_rows, int *phrase_rows)
{
    *and_rows = *phrase_rows = 0;
    for (int r = 0; r < NROWS; r++) {
        bool all = true, run = false;
        for (int k = 0; k < n && all; k++) {
            bool found = false;
            for (int t = 0; t < g_rows.ntok[r] && !found; t++)
                found = strcmp(g_rows.tok[r][t], ph[k]) == 0;
            all = found;
        }
        for (int t = 0; t + n <= g_rows.ntok[r] && !run; t++) {
            run = true;
            for (int k = 0; k < n && run; k++) run = strcmp(g_rows.tok[r][t + k], ph[k]) == 0;
        }
        *and_rows += all;
        *phrase_rows += run;
    }
}

typedef struct built {
    qr_buf ix_blob, checked, counted;
    invidx ix;
    phrase_pairs pc, pn; /* checked, counted */
    uint32_t n_checked, n_counted;
} built;

static void build(built *bt)
{
    memset(bt, 0, sizeof *bt);
    qr_buf_init(&bt->ix_blob);
    qr_buf_init(&bt->checked);
    qr_buf_init(&bt->counted);
    invidx_builder *ib = invidx_builder_new();
    phrase_builder *pc = phrase_builder_new(), *pn = phrase_builder_new();
    REQUIRE(ib && pc && pn);
    for (uint32_t r = 0; r < NROWS; r++) {
        size_t len = strlen(g_rows.text[r]);
        REQUIRE(invidx_builder_add_text(ib, g_rows.text[r], len, r) == 0);
        REQUIRE(phrase_builder_add_text(pc, g_rows.text[r], len, r) == 0);
        REQUIRE(phrase_builder_add_text(pn, g_rows.text[r], len, r) == 0);
    }
    CHECK(phrase_builder_add_text(pn, "x", 1, 5) == QR_EINVAL); /* rows never go back */
    REQUIRE(invidx_builder_finish(ib, &bt->ix_blob) == 0);
    qr_diag d;
    qr_diag_init(&d);
    REQUIRE(invidx_open(&bt->ix, bt->ix_blob.data, bt->ix_blob.len, NROWS, &d) == 0);
    REQUIRE(phrase_builder_finish(pc, &bt->ix, &bt->checked, &bt->n_checked) == 0);
    REQUIRE(phrase_builder_finish(pn, NULL, &bt->counted, &bt->n_counted) == 0);
    REQUIRE(bt->n_checked > 0 && bt->n_counted > 0);
    REQUIRE(phrase_pairs_open(&bt->pc, bt->checked.data, bt->checked.len, &d) == 0);
    REQUIRE(phrase_pairs_open(&bt->pn, bt->counted.data, bt->counted.len, &d) == 0);
    CHECK(phrase_pairs_verify(bt->checked.data, bt->checked.len, &d) == 0);
    invidx_builder_free(ib);
    phrase_builder_free(pc);
    phrase_builder_free(pn);
}

static void unbuild(built *bt)
{
    phrase_pairs_close(&bt->pc);
    phrase_pairs_close(&bt->pn);
    qr_buf_fini(&bt->ix_blob);
    qr_buf_fini(&bt->checked);
    qr_buf_fini(&bt->counted);
}

static bool exact(const phrase_pairs *pp, const char *const *ph, int n)
{
    uint32_t lens[4];
    for (int k = 0; k < n; k++) lens[k] = (uint32_t)strlen(ph[k]);
    return phrase_pairs_exact(pp, ph, lens, (uint32_t)n);
}

/* Every claim over every 2- and 3-word phrase of the vocabulary is true; returns claims. */
static int check_all_claims(const built *bt, int *counted_claims)
{
    int claims = 0;
    *counted_claims = 0;
    for (size_t a = 0; a < NWORDS; a++)
        for (size_t b = 0; b < NWORDS; b++)
            for (size_t c = 0; c <= NWORDS; c++) {
                const char *ph[3] = {g_words[a], g_words[b], c < NWORDS ? g_words[c] : NULL};
                int n = c < NWORDS ? 3 : 2;
                bool ec = exact(&bt->pc, ph, n), en = exact(&bt->pn, ph, n);
                if (en && !ec) {
                    fprintf(stderr, "counted but not checked: %s %s %s\n", ph[0], ph[1],
                            n == 3 ? ph[2] : "");
                    qr_test_cur_failures++;
                }
                if (!ec) continue;
                claims++;
                *counted_claims += en;
                int and_rows, phrase_rows;
                brute(ph, n, &and_rows, &phrase_rows);
                if (and_rows != phrase_rows) {
                    fprintf(stderr,
                            "wrong claim: \"%s %s %s\": %d rows with the words, %d with "
                            "the phrase\n",
                            ph[0], ph[1], n == 3 ? ph[2] : "", and_rows, phrase_rows);
                    qr_test_cur_failures++;
                }
            }
    return claims;
}

TEST(claims_match_brute_force)
{
    for (int apart = 0; apart < 2; apart++) {
        make_rows(7 + (uint64_t)apart, apart);
        built bt;
        build(&bt);
        int counted;
        int claims = check_all_claims(&bt, &counted);
        CHECK(claims > 5);
        CHECK(counted > 0);
        const char *cache_miss[] = {"cache", "miss"};
        const char *cache_miss_for[] = {"cache", "miss", "for"};
        const char *conn_ref[] = {"connection", "refused"};
        const char *retry_after[] = {"retry", "after"};
        const char *login_login_failed[] = {"login", "login", "failed"};
        const char *login_failed[] = {"login", "failed"};
        const char *disk_full[] = {"disk", "full"};
        const char *rare_words[] = {"rare", "words"};
        CHECK(exact(&bt.pc, cache_miss, 2));
        CHECK(exact(&bt.pc, cache_miss_for, 3));
        CHECK(exact(&bt.pc, login_failed, 2));
        /* "failed connection to cache, refused retry": the words also meet apart */
        CHECK(exact(&bt.pc, conn_ref, 2) == !apart);
        /* "retry 17 after": a number between breaks adjacency */
        CHECK(!exact(&bt.pc, retry_after, 2));
        /* "login login failed": the middle word is twice in a row */
        CHECK(!exact(&bt.pc, login_login_failed, 3));
        /* "Disk full; full DISK": both orders, and "full" twice in a row */
        const char *disk_full_disk[] = {"disk", "full", "disk"};
        CHECK(exact(&bt.pc, disk_full, 2));
        CHECK(!exact(&bt.pc, disk_full_disk, 3));
        /* ten rows: cheap to verify, not kept */
        CHECK(!exact(&bt.pc, rare_words, 2));
        /* unknown words, one word */
        const char *unknown[] = {"cache", "nothere"};
        CHECK(!exact(&bt.pc, unknown, 2));
        CHECK(!exact(&bt.pc, cache_miss, 1));
        unbuild(&bt);
    }
}

TEST(damaged_blobs_are_errors)
{
    make_rows(7, true);
    built bt;
    build(&bt);
    qr_buf copy;
    qr_buf_init(&copy);
    int bad = 0, tried = 0;
    for (size_t off = 0; off < bt.checked.len; off++) {
        for (int how = 0; how < 3; how++) {
            qr_buf_clear(&copy);
            qr_buf_append(&copy, bt.checked.data, bt.checked.len);
            size_t len = copy.len;
            if (how == 0) copy.data[off] ^= 0x01;
            if (how == 1) copy.data[off] = 0xff;
            if (how == 2) len = off;
            phrase_pairs pp;
            qr_diag d;
            qr_diag_init(&d);
            int rc = phrase_pairs_open(&pp, copy.data, len, &d);
            CHECK(rc == 0 || rc == QR_ECORRUPT);
            CHECK((rc == 0) == (phrase_pairs_verify(copy.data, len, &d) == 0));
            if (rc == 0) {
                const char *ph[] = {"cache", "miss"};
                (void)exact(&pp, ph, 2); /* answers without reading outside the blob */
                phrase_pairs_close(&pp);
            } else {
                bad++;
            }
            tried++;
        }
    }
    CHECK(bad > tried / 3); /* every truncation at least */
    qr_buf_fini(&copy);
    unbuild(&bt);
}

/* Fed by an index builder's token sink (one tokenizing pass, as segments are written), a
 * builder makes the very blob add_text makes. */
TEST(token_sink_equals_add_text)
{
    for (int apart = 0; apart < 2; apart++) {
        make_rows(11 + (uint64_t)apart, apart);
        invidx_builder *ib = invidx_builder_new();
        phrase_builder *via_sink = phrase_builder_new(), *via_text = phrase_builder_new();
        REQUIRE(ib && via_sink && via_text);
        invidx_builder_set_sink(ib, phrase_builder_add_tokens, via_sink);
        for (uint32_t r = 0; r < NROWS; r++) {
            size_t len = strlen(g_rows.text[r]);
            REQUIRE(invidx_builder_add_text(ib, g_rows.text[r], len, r) == 0);
            REQUIRE(phrase_builder_add_text(via_text, g_rows.text[r], len, r) == 0);
        }
        /* one long row: the index hands it over in several runs; adjacency spans them */
        char longrow[4096];
        size_t at = 0;
        for (int k = 0; k < 300; k++)
            at += (size_t)snprintf(longrow + at, sizeof longrow - at, "%s ",
                                   k % 3 ? "cache miss" : "7 timeout");
        for (uint32_t r = NROWS; r < NROWS + 40; r++) {
            REQUIRE(invidx_builder_add_text(ib, longrow, at, r) == 0);
            REQUIRE(phrase_builder_add_text(via_text, longrow, at, r) == 0);
        }
        /* rows of one word each: nothing is adjacent across rows */
        for (uint32_t r = NROWS + 40; r < NROWS + 120; r++) {
            const char *w = r % 2 ? "sigma" : "tau";
            REQUIRE(invidx_builder_add_text(ib, w, strlen(w), r) == 0);
            REQUIRE(phrase_builder_add_text(via_text, w, strlen(w), r) == 0);
        }
        /* a row going back is refused, as add_text refuses it */
        uint32_t back_id = 0;
        uint64_t back_word = 0x6b636162; /* "back" */
        uint16_t back_off = 0;
        uint8_t back_nw = 1, back_len = 4;
        invidx_tokens back = {3, true, 1, &back_id, &back_word, &back_off, &back_nw, &back_len};
        CHECK(phrase_builder_add_tokens(via_sink, &back) == QR_EINVAL);
        qr_buf a, b;
        qr_buf_init(&a);
        qr_buf_init(&b);
        uint32_t na = 0, nb = 0;
        REQUIRE(phrase_builder_finish(via_sink, NULL, &a, &na) == 0);
        REQUIRE(phrase_builder_finish(via_text, NULL, &b, &nb) == 0);
        CHECK(na > 0 && na == nb);
        CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
        qr_buf_fini(&a);
        qr_buf_fini(&b);
        invidx_builder_free(ib);
        phrase_builder_free(via_sink);
        phrase_builder_free(via_text);
    }
}

int main(void)
{
    RUN(claims_match_brute_force);
    RUN(damaged_blobs_are_errors);
    RUN(token_sink_equals_add_text);
    QR_TEST_MAIN_END();
}

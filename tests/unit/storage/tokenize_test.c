#include "qr_test.h"
#include "storage/bloom.h"
#include "storage/tokenize.h"

#include <stdio.h>

typedef struct collect {
    char out[1024];
    size_t len;
    size_t offsets[64];
    int count;
} collect;

static int collect_cb(void *ctx_, const char *tok, size_t len, size_t offset)
{
    collect *c = ctx_;
    if (c->len) c->out[c->len++] = '|';
    memcpy(c->out + c->len, tok, len);
    c->len += len;
    c->out[c->len] = '\0';
    if (c->count < 64) c->offsets[c->count] = offset;
    c->count++;
    return 0;
}

static const char *toks(const char *s, collect *c)
{
    memset(c, 0, sizeof *c);
    qr_tokenize(s, strlen(s), collect_cb, c);
    return c->out;
}

TEST(splits_and_lowercases)
{
    collect c;
    CHECK_EQ_STR(toks("user_id=42", &c), "user|id|42");
    CHECK_EQ_STR(toks("Failed to charge CARD 4242", &c), "failed|to|charge|card|4242");
    CHECK_EQ_STR(toks("  --  ", &c), "");
    CHECK_EQ_STR(toks("", &c), "");
    CHECK_EQ_STR(toks("a", &c), "a");
    CHECK_EQ_STR(toks("17fc695a-07a0-4a6e-8822-e8f36c031199", &c),
                 "17fc695a|07a0|4a6e|8822|e8f36c031199");
    CHECK_EQ_STR(toks("GET /api/v1/orders?id=7 HTTP/1.1", &c), "get|api|v1|orders|id|7|http|1|1");
    CHECK_EQ_STR(toks("10.0.3.42:8080", &c), "10|0|3|42|8080");
}

TEST(utf8_words_stay_whole)
{
    collect c;
    /* "Grüße, Köln" and "日本語 テスト": bytes >= 0x80 are letters; ASCII is lower-cased only */
    CHECK_EQ_STR(toks("Gr\xc3\xbc\xc3\x9f"
                      "e, K\xc3\xb6ln",
                      &c),
                 "gr\xc3\xbc\xc3\x9f"
                 "e|k\xc3\xb6ln");
    CHECK_EQ_STR(toks("\xe6\x97\xa5\xe6\x9c\xac \xe3\x83\x86", &c),
                 "\xe6\x97\xa5\xe6\x9c\xac|\xe3\x83\x86");
}

TEST(offsets_and_long_tokens)
{
    collect c;
    toks("ab  cd,ef", &c);
    CHECK_EQ_INT(c.count, 3);
    CHECK_EQ_INT(c.offsets[0], 0);
    CHECK_EQ_INT(c.offsets[1], 4);
    CHECK_EQ_INT(c.offsets[2], 7);
    char longtok[200];
    memset(longtok, 'x', 150);
    strcpy(longtok + 150, " y");
    toks(longtok, &c);
    CHECK_EQ_INT(c.count, 2);
    CHECK_EQ_INT(strlen(c.out), QR_TOKEN_MAX_BYTES + 2); /* cut token, '|', "y" */
}

static int stop_after_two(void *ctx, const char *tok, size_t len, size_t offset)
{
    int *n = ctx;
    return ++*n == 2 ? 7 : 0;
}

TEST(callback_stops)
{
    int n = 0;
    CHECK_EQ_INT(qr_tokenize("a b c d", 7, stop_after_two, &n), 7);
    CHECK_EQ_INT(n, 2);
}

TEST(hash_is_case_insensitive_through_tokenizer)
{
    collect a, b;
    toks("ERROR", &a);
    toks("error", &b);
    CHECK(qr_token_hash(a.out, a.len) == qr_token_hash(b.out, b.len));
}

/* qr_tokenize_hashes: the tokens of qr_tokenize, in order, each hashed as qr_token_hash does,
 * whatever the chunk size the caller asks for. */
typedef struct hash_collect {
    uint64_t hashes[1024];
    size_t n;
} hash_collect;

static int hash_cb(void *ctx, const char *tok, size_t len, size_t offset)
{
    (void)offset;
    hash_collect *h = ctx;
    if (h->n < 1024) h->hashes[h->n] = qr_token_hash(tok, len);
    h->n++;
    return 0;
}

TEST(hashing_tokenizer_matches_tokenize_then_hash)
{
    uint64_t state = 11;
    static const char alphabet[] = "aZ09 _=-.:/\xc3\xa9\x80\xffQqxX\t\nK";
    char text[700];
    for (int round = 0; round < 2000; round++) {
        size_t len = qr_test_rand(&state) % sizeof text;
        for (size_t idx = 0; idx < len; idx++) {
            uint64_t r = qr_test_rand(&state);
            /* long runs now and then, to cross QR_TOKEN_MAX_BYTES and word boundaries */
            text[idx] = r % 40 == 0 ? ' ' : r % 3 ? alphabet[r % (sizeof alphabet - 1)] : 'k';
        }
        hash_collect want = {.n = 0};
        qr_tokenize(text, len, hash_cb, &want);
        REQUIRE(want.n <= 1024);
        size_t cap = 1 + qr_test_rand(&state) % 9;
        uint64_t got[1024];
        size_t got_n = 0, pos = 0;
        while (pos < len) {
            size_t n = qr_tokenize_hashes(text, len, &pos, got + got_n, cap);
            CHECK(n <= cap);
            got_n += n;
            if (!n) break;
        }
        CHECK(pos == len);
        CHECK(got_n == want.n);
        CHECK(memcmp(got, want.hashes, got_n * sizeof *got) == 0);
    }
    size_t pos = 0;
    uint64_t h;
    CHECK(qr_tokenize_hashes("", 0, &pos, &h, 1) == 0);
    CHECK(qr_tokenize_hashes("  Ab-C", 6, &pos, &h, 1) == 1 && h == qr_token_hash("ab", 2));
    CHECK(pos == 4);
    CHECK(qr_tokenize_hashes("  Ab-C", 6, &pos, &h, 1) == 1 && h == qr_token_hash("c", 1));
    CHECK(pos == 6);
}

/* The documented definition (docs/format.md, "Bloom filter"): pinned so a change to the hash
 * cannot slip by unnoticed (segment blooms are written with it). */
TEST(hash_definition_is_pinned)
{
    uint64_t h = QR_TOKEN_HASH_SEED;
    uint64_t w = 'e' | 'r' << 8 | 'r' << 16 | 'o' << 24 | (uint64_t)'r' << 32;
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 32;
    h ^= 5;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    CHECK(qr_token_hash("error", 5) == h);
    CHECK(qr_token_hash("error", 5) != qr_token_hash("error\0", 6));
    CHECK(qr_token_hash("abcdefgh", 8) != qr_token_hash("abcdefgh1", 9));
}

/* Realistic tokens (numbers, ids, words sharing prefixes) must spread like random keys in a
 * bloom: a weak hash would show here as a high false-positive rate. */
TEST(hash_spreads_realistic_tokens)
{
    const size_t n = 20000, probes = 200000;
    uint64_t *keys = malloc(n * sizeof *keys);
    char tok[64];
    for (size_t idx = 0; idx < n; idx++) {
        int len = snprintf(tok, sizeof tok, idx % 2 ? "%zu" : "user%zu", idx * 7);
        keys[idx] = qr_token_hash(tok, (size_t)len);
    }
    qr_buf b;
    qr_buf_init(&b);
    bloom_build(keys, n, 0, &b);
    bloom_view v;
    REQUIRE(bloom_view_init(&v, b.data, b.len) == 0);
    size_t fp = 0;
    for (size_t idx = 0; idx < probes; idx++) {
        int len = snprintf(tok, sizeof tok, idx % 2 ? "%zu" : "user%zu", idx * 7 + 3);
        fp += bloom_may_contain(&v, qr_token_hash(tok, (size_t)len));
    }
    printf("# fp rate %.4f%% on realistic tokens\n", 100.0 * (double)fp / (double)probes);
    CHECK((double)fp / (double)probes < 0.003);
    qr_buf_fini(&b);
    free(keys);
}

int main(void)
{
    RUN(splits_and_lowercases);
    RUN(utf8_words_stay_whole);
    RUN(offsets_and_long_tokens);
    RUN(callback_stops);
    RUN(hash_is_case_insensitive_through_tokenizer);
    RUN(hashing_tokenizer_matches_tokenize_then_hash);
    RUN(hash_definition_is_pinned);
    RUN(hash_spreads_realistic_tokens);
    QR_TEST_MAIN_END();
}

#include "qr_test.h"
#include "storage/tokenize.h"

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
    CHECK_EQ_STR(toks("Gr\xc3\xbc\xc3\x9f" "e, K\xc3\xb6ln", &c), "gr\xc3\xbc\xc3\x9f" "e|k\xc3\xb6ln");
    CHECK_EQ_STR(toks("\xe6\x97\xa5\xe6\x9c\xac \xe3\x83\x86", &c), "\xe6\x97\xa5\xe6\x9c\xac|\xe3\x83\x86");
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

int main(void)
{
    RUN(splits_and_lowercases);
    RUN(utf8_words_stay_whole);
    RUN(offsets_and_long_tokens);
    RUN(callback_stops);
    RUN(hash_is_case_insensitive_through_tokenizer);
    QR_TEST_MAIN_END();
}

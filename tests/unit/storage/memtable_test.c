#include "qr_test.h"
#include "storage/memtable.h"
#include "storage/tokenize.h"

#include <pthread.h>
#include <stdatomic.h>

static const char *services[] = {"api", "payment", "auth", "search"};
static const char *hosts[] = {"h1", "h2", "h3"};

/* Event n has ts 1000+n, msg "event n word<n%7>", field seq=n (int), and "tag" (string) on
 * even rows only. */
static void make_batch(qr_batch *b, uint64_t first, uint64_t count)
{
    char msg[128], tag[32];
    for (uint64_t n = first; n < first + count; n++) {
        qr_event *e = qr_batch_push(b);
        e->ts_ns = 1000 + (int64_t)n;
        e->ingest_ts_ns = 5000 + (int64_t)n;
        e->level = (uint8_t)(1 + n % 6);
        const char *svc = services[n % 4], *host = hosts[n % 3];
        e->service = qr_batch_str(b, svc, strlen(svc));
        e->host = qr_batch_str(b, host, strlen(host));
        int len = snprintf(msg, sizeof msg, "event %llu word%llu", (unsigned long long)n,
                           (unsigned long long)(n % 7));
        e->msg = qr_batch_str(b, msg, (size_t)len);
        qr_field f = {.key = qr_batch_str(b, "seq", 3), .type = QR_FT_INT};
        f.v.i = (int64_t)n;
        qr_batch_add_field(b, &f);
        if (n % 2 == 0) {
            int tl = snprintf(tag, sizeof tag, "t%llu", (unsigned long long)(n % 5));
            qr_field g = {.key = qr_batch_str(b, "tag", 3), .type = QR_FT_STRING};
            g.v.s = qr_batch_str(b, tag, (size_t)tl);
            qr_batch_add_field(b, &g);
        }
    }
}

static uint64_t check_part(qr_part *p, uint64_t expect_rows)
{
    CHECK_EQ_INT(p->row_count, expect_rows);
    int seq_idx = qr_part_field_find(p, "seq", 3, QR_FT_INT);
    int tag_idx = qr_part_field_find(p, "tag", 3, QR_FT_STRING);
    CHECK(seq_idx >= 0);
    CHECK(expect_rows < 2 || tag_idx >= 0);
    uint64_t seen = 0;
    qr_arena a;
    qr_arena_init(&a, 0, 0);
    for (uint32_t block_idx = 0; block_idx < p->block_count; block_idx++) {
        qr_block_meta meta;
        if (qr_part_block_meta(p, block_idx, &meta) != 0) break;
        CHECK_EQ_INT(meta.first_row, seen);
        qr_column ts, lvl, svc, msg, seq, tag;
        qr_diag d;
        qr_diag_init(&d);
        CHECK(qr_part_load_column(p, block_idx, QR_COL_TS, 0, &a, &ts, &d) == 0);
        CHECK(qr_part_load_column(p, block_idx, QR_COL_LEVEL, 0, &a, &lvl, &d) == 0);
        CHECK(qr_part_load_column(p, block_idx, QR_COL_SERVICE, 0, &a, &svc, &d) == 0);
        CHECK(qr_part_load_column(p, block_idx, QR_COL_MSG, 0, &a, &msg, &d) == 0);
        CHECK(qr_part_load_column(p, block_idx, QR_COL_FIELD, (uint32_t)seq_idx, &a, &seq, &d) ==
              0);
        bool have_tag = tag_idx >= 0 && qr_part_load_column(p, block_idx, QR_COL_FIELD,
                                                            (uint32_t)tag_idx, &a, &tag, &d) == 0;
        uint32_t counted = 0;
        for (uint32_t c = 0; c < meta.count_n; c++) counted += meta.counts[c].row_count;
        CHECK_EQ_INT(counted, meta.row_count);
        for (uint32_t row_idx = 0; row_idx < meta.row_count; row_idx++) {
            uint64_t n = seen + row_idx;
            CHECK_EQ_INT(ts.i64[row_idx], 1000 + (int64_t)n);
            CHECK(ts.i64[row_idx] >= meta.min_ts_ns && ts.i64[row_idx] <= meta.max_ts_ns);
            CHECK_EQ_INT(lvl.u8[row_idx], 1 + n % 6);
            CHECK(qr_str_eq_cstr(svc.dict[svc.ids[row_idx]], services[n % 4]));
            char want[128];
            snprintf(want, sizeof want, "event %llu word%llu", (unsigned long long)n,
                     (unsigned long long)(n % 7));
            CHECK(qr_str_eq_cstr(msg.strs[row_idx], want));
            CHECK(qr_column_has(&seq, row_idx));
            CHECK_EQ_INT(seq.i64[row_idx], (int64_t)n);
            if (have_tag) CHECK_EQ_INT(qr_column_has(&tag, row_idx), n % 2 == 0);
            /* the bloom never says no to a token the block holds */
            CHECK(qr_part_block_may_contain_token(p, block_idx, qr_token_hash("event", 5)));
        }
        seen += meta.row_count;
        qr_arena_reset(&a);
    }
    qr_arena_fini(&a);
    CHECK_EQ_INT(seen, expect_rows);
    return seen;
}

TEST(append_and_read_back)
{
    memtab *m = memtab_new(1);
    qr_batch b;
    qr_batch_init(&b);
    uint64_t total = 0;
    for (int round = 0; round < 7; round++) {
        qr_batch_reset(&b);
        uint64_t count = 1 + (uint64_t)round * 1500;
        make_batch(&b, total, count);
        CHECK_EQ_INT(memtab_append(m, &b, (uint64_t)round + 10), 0);
        total += count;
    }
    CHECK_EQ_INT(memtab_rows(m), total);
    CHECK_EQ_INT(memtab_min_lsn(m), 10);
    CHECK_EQ_INT(memtab_max_lsn(m), 16);
    qr_part *p;
    REQUIRE(memtab_part(m, &p) == 0);
    check_part(p, total);
    uint64_t level_sum = 0;
    for (int l = 0; l < QR_LEVEL_COUNT; l++) level_sum += p->level_rows[l];
    CHECK_EQ_INT(level_sum, total);
    CHECK_EQ_INT(p->service_count, 4);
    CHECK_EQ_INT(p->host_count, 3);
    /* a snapshot does not see later rows */
    qr_batch_reset(&b);
    make_batch(&b, total, 100);
    CHECK_EQ_INT(memtab_append(m, &b, 20), 0);
    check_part(p, total);
    qr_part *p2;
    REQUIRE(memtab_part(m, &p2) == 0);
    check_part(p2, total + 100);
    /* parts outlive the owner's reference */
    memtab_free(m);
    check_part(p, total);
    qr_part_unref(p);
    qr_part_unref(p2);
    qr_batch_fini(&b);
}

TEST(bloom_rejects_absent_tokens)
{
    memtab *m = memtab_new(2);
    qr_batch b;
    qr_batch_init(&b);
    make_batch(&b, 0, 4096);
    memtab_append(m, &b, 1);
    qr_part *p;
    REQUIRE(memtab_part(m, &p) == 0);
    int false_pos = 0;
    char tok[32];
    for (int n = 0; n < 1000; n++) {
        int len = snprintf(tok, sizeof tok, "absent%d", n);
        if (qr_part_block_may_contain_token(p, 0, qr_token_hash(tok, (size_t)len))) false_pos++;
    }
    CHECK(false_pos < 50); /* ~0.5 % expected */
    CHECK(qr_part_block_may_contain_token(p, 0, qr_token_hash("word3", 5)));
    qr_part_unref(p);
    memtab_free(m);
    qr_batch_fini(&b);
}

/* Postings of a memtable: by token hash, so a superset of the rows holding the term (the
 * engine verifies) — never missing one, whether the chunk was taken whole (token index),
 * filled by copies to capacity (token index) or is still open (bloom: all its rows). */
TEST(postings_are_a_superset_and_tight)
{
    memtab *m = memtab_new(3);
    qr_batch b;
    qr_batch_init(&b);
    make_batch(&b, 0, 1000); /* taken: its own chunk with a token index */
    CHECK_EQ_INT(memtab_append_take(m, &b, 1), 0);
    qr_batch_reset(&b);
    make_batch(&b, 1000, 5000); /* copied: one full chunk (indexed) + an open one */
    for (size_t at = 0; at < b.count; at += 100) {
        qr_batch part;
        qr_batch_init(&part);
        for (size_t k = at; k < at + 100 && k < b.count; k++) qr_batch_copy_event(&part, &b, k);
        CHECK_EQ_INT(memtab_append(m, &part, 2), 0);
        qr_batch_fini(&part);
    }
    qr_part *p;
    REQUIRE(memtab_part(m, &p) == 0);
    CHECK(p->has_postings);
    CHECK(!p->postings_exact);
    const char *terms[] = {"word3", "event", "4321", "6000", "absent"};
    for (size_t ti = 0; ti < sizeof terms / sizeof terms[0]; ti++) {
        roaring_bitmap_t *got = NULL;
        qr_diag d;
        qr_diag_init(&d);
        REQUIRE(qr_part_postings(p, terms[ti], strlen(terms[ti]), &got, &d) == 0);
        uint64_t want = 0, extra = 0;
        for (uint64_t n = 0; n < 6000; n++) {
            char msg[128];
            snprintf(msg, sizeof msg, "event %llu word%llu", (unsigned long long)n,
                     (unsigned long long)(n % 7));
            bool has = false;
            for (char *tok = strtok(msg, " "); tok; tok = strtok(NULL, " "))
                has = has || strcmp(tok, terms[ti]) == 0;
            bool in = roaring_bitmap_contains(got, (uint32_t)n);
            if (has) {
                want++;
                CHECK(in);
            } else if (in) {
                extra++;
                CHECK(n >= 1000 + MEMTAB_CHUNK_ROWS); /* only the open chunk's rows */
            }
        }
        CHECK_EQ_INT(roaring_bitmap_get_cardinality(got), want + extra);
        roaring_bitmap_free(got);
    }
    qr_part_unref(p);
    /* sealed (frozen), the open chunk gets its index: candidates are exact but for key
     * collisions, which these few tokens do not have */
    memtab_seal(m);
    REQUIRE(memtab_part(m, &p) == 0);
    roaring_bitmap_t *got = NULL;
    REQUIRE(qr_part_postings(p, "5999", 4, &got, NULL) == 0);
    CHECK_EQ_INT(roaring_bitmap_get_cardinality(got), 1);
    CHECK(roaring_bitmap_contains(got, 5999));
    roaring_bitmap_free(got);
    qr_part_unref(p);
    memtab_free(m);
    qr_batch_fini(&b);
}

typedef struct reader_ctx {
    memtab *m;
    pthread_mutex_t *mu;
    atomic_bool stop;
    int bad;
} reader_ctx;

static void *reader_main(void *arg)
{
    reader_ctx *ctx = arg;
    qr_arena a;
    qr_arena_init(&a, 0, 0);
    while (!atomic_load(&ctx->stop)) {
        qr_part *p;
        pthread_mutex_lock(ctx->mu);
        int rc = memtab_part(ctx->m, &p);
        pthread_mutex_unlock(ctx->mu);
        if (rc) continue;
        uint64_t next = 0;
        for (uint32_t block_idx = 0; block_idx < p->block_count; block_idx++) {
            qr_block_meta meta;
            qr_column ts;
            qr_part_block_meta(p, block_idx, &meta);
            if (qr_part_load_column(p, block_idx, QR_COL_TS, 0, &a, &ts, NULL)) ctx->bad++;
            for (uint32_t row_idx = 0; row_idx < meta.row_count; row_idx++)
                if (ts.i64[row_idx] != 1000 + (int64_t)next++) ctx->bad++;
            qr_arena_reset(&a);
        }
        if (next != p->row_count) ctx->bad++;
        qr_part_unref(p);
    }
    qr_arena_fini(&a);
    return NULL;
}

TEST(concurrent_snapshots_see_whole_rows)
{
    memtab *m = memtab_new(3);
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    reader_ctx ctx = {.m = m, .mu = &mu};
    atomic_init(&ctx.stop, false);
    pthread_t th;
    pthread_create(&th, NULL, reader_main, &ctx);
    qr_batch b;
    qr_batch_init(&b);
    uint64_t total = 0;
    for (int round = 0; round < 60; round++) {
        qr_batch_reset(&b);
        make_batch(&b, total, 777);
        pthread_mutex_lock(&mu);
        CHECK_EQ_INT(memtab_append(m, &b, (uint64_t)round + 1), 0);
        pthread_mutex_unlock(&mu);
        total += 777;
    }
    atomic_store(&ctx.stop, true);
    pthread_join(th, NULL);
    CHECK_EQ_INT(ctx.bad, 0);
    memtab_free(m);
    qr_batch_fini(&b);
}

int main(void)
{
    RUN(append_and_read_back);
    RUN(bloom_rejects_absent_tokens);
    RUN(concurrent_snapshots_see_whole_rows);
    RUN(postings_are_a_superset_and_tight);
    QR_TEST_MAIN_END();
}

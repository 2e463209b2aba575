/* segment_test — segments against a model: random events are written, read back through
 * every qr_part op and compared with the input sorted by ts; postings against a brute-force
 * token scan; then every byte of a small segment is flipped and every length truncated:
 * open or verify must report it, and no read may return data that differs from the
 * original without an error.
 * With QR_WRITE_CORPUS=DIR set, also writes tiny segments there (the fuzz corpus). */
#include "qr_test.h"
#include "storage/segment.h"

#include "common/qr_err.h"
#include "common/qr_hash.h"
#include "storage/tokenize.h"

#include <fcntl.h>
#include <math.h>
#include <time.h>

/* ------------------------------------------------------------ random events */

static const char *g_words[] = {
    "connect",  "timeout", "refused", "user",     "login", "failed", "héllo",   "日本語",
    "ERROR",    "Error",   "db",      "query",    "took",  "ms",     "payment", "card",
    "declined", "retry",   "GET",     "/api/v1/", "x",     "a1b2",   "über",    "zz9",
    "=",        ", ",      "...",     "\t",       "naïve", "42",     "0",       "-17",
};
static const char *g_services[] = {"api", "payment", "checkout", "søk", ""};
static const char *g_hosts[] = {"h1", "h2", "host-3.example", "h4", "ḧ5", "h6", "h7"};

static bool g_short_msgs; /* set for the corruption test: a small file */

static void rand_msg(qr_buf *b, uint64_t *st)
{
    int words = (int)(qr_test_rand(st) % 14);
    if (qr_test_rand(st) % 50 == 0 && !g_short_msgs)
        words = 600 + (int)(qr_test_rand(st) % 600); /* long */
    for (int w = 0; w < words; w++) {
        uint64_t r = qr_test_rand(st);
        if (r % 5 == 0) {
            char tmp[32];
            int n = snprintf(tmp, sizeof tmp, "id%llu ",
                             (unsigned long long)(qr_test_rand(st) % 100000));
            qr_buf_append(b, tmp, (size_t)n);
        } else if (r % 7 == 0) {
            char tmp[40];
            int n = snprintf(tmp, sizeof tmp, "10.%d.%d.%d:%d ", (int)(r >> 8 & 255),
                             (int)(r >> 16 & 255), (int)(r >> 24 & 255), (int)(r >> 32 & 65535));
            qr_buf_append(b, tmp, (size_t)n);
        } else {
            const char *wd = g_words[(r >> 8) % (sizeof g_words / sizeof *g_words)];
            qr_buf_append(b, wd, strlen(wd));
            qr_buf_u8(b, ' ');
        }
    }
    if (qr_test_rand(st) % 40 == 0) { /* a token longer than QR_TOKEN_MAX_BYTES */
        for (int i = 0; i < 80; i++) qr_buf_u8(b, (uint8_t)('a' + i % 26));
    }
}

static void add_str_field(qr_batch *b, const char *key, const char *val, size_t len)
{
    qr_field f;
    memset(&f, 0, sizeof f);
    f.key = qr_batch_str(b, key, strlen(key));
    f.type = QR_FT_STRING;
    f.v.s = qr_batch_str(b, val, len);
    qr_batch_add_field(b, &f);
}

static void add_field(qr_batch *b, const char *key, uint8_t type, int64_t i, double d, bool bo)
{
    qr_field f;
    memset(&f, 0, sizeof f);
    f.key = qr_batch_str(b, key, strlen(key));
    f.type = type;
    if (type == QR_FT_INT) f.v.i = i;
    if (type == QR_FT_FLOAT) f.v.f = d;
    if (type == QR_FT_BOOL) f.v.b = bo;
    qr_batch_add_field(b, &f);
}

static void rand_hex(char *out, size_t n, bool upper, uint64_t *st)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    for (size_t i = 0; i < n; i++) out[i] = digits[qr_test_rand(st) % 16];
}

static void gen_event(qr_batch *b, uint64_t *st, int64_t base_ts, int64_t span, qr_buf *scratch)
{
    qr_event *e = qr_batch_push(b);
    uint64_t r = qr_test_rand(st);
    e->ts_ns = base_ts + (int64_t)(qr_test_rand(st) % (uint64_t)span);
    if (r % 13 == 0) e->ts_ns = base_ts; /* ties */
    e->ingest_ts_ns = e->ts_ns + (int64_t)(qr_test_rand(st) % 2000000) - 1000;
    if (r % 97 == 0) e->ingest_ts_ns = INT64_MIN / 2; /* wild skew */
    e->level = (uint8_t)(qr_test_rand(st) % QR_LEVEL_COUNT);
    const char *svc = g_services[qr_test_rand(st) % 5];
    const char *host = g_hosts[qr_test_rand(st) % 7];
    e->service = qr_batch_str(b, svc, strlen(svc));
    e->host = qr_batch_str(b, host, strlen(host));
    qr_buf_clear(scratch);
    rand_msg(scratch, st);
    e = &b->events[b->count - 1];
    e->msg = qr_batch_str(b, (const char *)scratch->data, scratch->len);
    char tmp[64];
    uint64_t fr = qr_test_rand(st);
    if (fr % 3) {
        char hex[32];
        rand_hex(hex, 32, false, st);
        add_str_field(b, "trace_id", hex, 32);
    }
    if (fr % 5 == 0) {
        char hex[16];
        rand_hex(hex, 16, true, st);
        add_str_field(b, "span_id", hex, 16);
    }
    if (fr % 7 < 5) {
        if (fr % 11 == 0)
            add_field(b, "latency_ms", QR_FT_INT, (int64_t)(qr_test_rand(st) % 5000), 0, 0);
        else
            add_field(b, "latency_ms", QR_FT_FLOAT, 0, (double)(qr_test_rand(st) % 100000) / 1000.0,
                      0);
    }
    if (fr % 4 == 0)
        add_field(b, "status", QR_FT_INT, 200 + (int64_t)(qr_test_rand(st) % 5) * 100, 0, 0);
    if (fr % 6 == 0) add_field(b, "ok", QR_FT_BOOL, 0, 0, qr_test_rand(st) & 1);
    if (fr % 2 == 0) {
        const char *users[] = {"alice", "bob", "carol", "dave", "ève"};
        const char *u = users[qr_test_rand(st) % 5];
        add_str_field(b, "user", u, strlen(u));
    }
    if (fr % 9 == 0) {
        int n = snprintf(tmp, sizeof tmp, "req-%llu-%s", (unsigned long long)qr_test_rand(st), "ü");
        add_str_field(b, "req", tmp, (size_t)n);
    }
    if (fr % 17 == 0) {
        static const double weird[] = {0.0, -0.0, 1e300, -1e-300, 0.1, 3.14159265358979, 1.0 / 3.0};
        double v = weird[qr_test_rand(st) % 7];
        if (qr_test_rand(st) % 5 == 0) v = NAN;
        if (qr_test_rand(st) % 7 == 0) v = -INFINITY;
        add_field(b, "weird", QR_FT_FLOAT, 0, v, 0);
    }
    if (fr % 19 == 0) add_field(b, "nul", QR_FT_NULL, 0, 0, 0);
    if (fr % 8 == 0) { /* hex most of the time, not always: per-block fallback */
        char hex[20];
        rand_hex(hex, 20, false, st);
        size_t n = 20;
        if (qr_test_rand(st) % 10 == 0) n = 7;
        add_str_field(b, "mixed", hex, n);
    }
    if (fr % 23 == 0) add_str_field(b, "empty", "", 0);
    if (fr % 29 == 0) { /* same key twice with the same type: the first one wins */
        add_field(b, "dup", QR_FT_INT, 1, 0, 0);
        add_field(b, "dup", QR_FT_INT, 2, 0, 0);
    }
    if (fr % 31 == 0) add_field(b, "big", QR_FT_INT, (fr & 1) ? INT64_MIN : INT64_MAX, 0, 0);
}

typedef struct corpus {
    qr_batch *batches;
    size_t batch_count;
    const qr_batch **ptrs;
    /* sorted order: (batch, idx) pairs */
    uint32_t *sb, *si;
    size_t n;
} corpus;

static corpus *g_sort_ctx;

static int sort_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    const corpus *c = g_sort_ctx;
    const qr_event *ex = &c->batches[c->sb[x]].events[c->si[x]];
    const qr_event *ey = &c->batches[c->sb[y]].events[c->si[y]];
    if (ex->ts_ns != ey->ts_ns) return ex->ts_ns < ey->ts_ns ? -1 : 1;
    return x < y ? -1 : x > y; /* stable: input order */
}

static void corpus_make(corpus *c, uint64_t seed, size_t batches, size_t per_batch)
{
    memset(c, 0, sizeof *c);
    uint64_t st = seed;
    qr_buf scratch;
    qr_buf_init(&scratch);
    c->batches = calloc(batches, sizeof *c->batches);
    c->ptrs = calloc(batches, sizeof *c->ptrs);
    c->batch_count = batches;
    for (size_t b = 0; b < batches; b++) {
        qr_batch_init(&c->batches[b]);
        c->ptrs[b] = &c->batches[b];
        size_t n = per_batch ? per_batch : 1 + qr_test_rand(&st) % 400;
        for (size_t i = 0; i < n; i++)
            gen_event(&c->batches[b], &st, 1750000000000000000LL, 3600LL * 1000000000LL, &scratch);
        if (b % 2) { /* as the server does: one ingest time per batch, ms-precision ts */
            int64_t ingest = 1750000000000000000LL + (int64_t)(qr_test_rand(&st) % 1000000000000LL);
            for (size_t i = 0; i < n; i++) {
                c->batches[b].events[i].ingest_ts_ns = ingest;
                c->batches[b].events[i].ts_ns -= c->batches[b].events[i].ts_ns % 1000000;
            }
        }
        c->n += n;
    }
    qr_buf_fini(&scratch);
    uint32_t *order = malloc(c->n * sizeof *order);
    uint32_t *sb = malloc(c->n * sizeof *sb), *si = malloc(c->n * sizeof *si);
    size_t k = 0;
    for (size_t b = 0; b < batches; b++)
        for (size_t i = 0; i < c->batches[b].count; i++, k++) {
            sb[k] = (uint32_t)b;
            si[k] = (uint32_t)i;
            order[k] = (uint32_t)k;
        }
    c->sb = sb;
    c->si = si;
    g_sort_ctx = c;
    qsort(order, c->n, sizeof *order, sort_cmp);
    c->sb = malloc(c->n * sizeof *sb);
    c->si = malloc(c->n * sizeof *si);
    for (size_t r = 0; r < c->n; r++) {
        c->sb[r] = sb[order[r]];
        c->si[r] = si[order[r]];
    }
    free(sb);
    free(si);
    free(order);
}

static void corpus_free(corpus *c)
{
    for (size_t b = 0; b < c->batch_count; b++) qr_batch_fini(&c->batches[b]);
    free(c->batches);
    free(c->ptrs);
    free(c->sb);
    free(c->si);
}

static const qr_event *corpus_row(const corpus *c, uint32_t row, const qr_batch **b)
{
    *b = &c->batches[c->sb[row]];
    return &(*b)->events[c->si[row]];
}

/* The first field of the event with (key, type), or NULL. */
static const qr_field *event_field(const qr_batch *b, const qr_event *e, qr_str key, uint8_t type)
{
    const qr_field *f = qr_event_fields(b, e);
    for (uint32_t k = 0; k < e->field_count; k++)
        if (f[k].type == type && qr_str_eq(f[k].key, key)) return &f[k];
    return NULL;
}

/* ------------------------------------------------------------ brute-force tokens */

typedef struct tokrow {
    char tok[QR_TOKEN_MAX_BYTES + 1];
    uint8_t len;
    uint32_t row;
} tokrow;

typedef struct tok_ctx {
    tokrow *v;
    size_t n, cap;
    uint32_t row;
} tok_ctx;

static int tok_collect(void *ctx, const char *tok, size_t len, size_t off)
{
    tok_ctx *t = ctx;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 4096;
        t->v = realloc(t->v, t->cap * sizeof *t->v);
    }
    tokrow *r = &t->v[t->n++];
    memcpy(r->tok, tok, len);
    r->tok[len] = 0;
    r->len = (uint8_t)len;
    r->row = t->row;
    return 0;
}

static int tokrow_cmp(const void *a, const void *b)
{
    const tokrow *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->tok, y->tok, n);
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

static void corpus_tokens(const corpus *c, tok_ctx *t)
{
    memset(t, 0, sizeof *t);
    for (uint32_t row = 0; row < c->n; row++) {
        const qr_batch *b;
        const qr_event *e = corpus_row(c, row, &b);
        t->row = row;
        qr_tokenize(e->msg.ptr, e->msg.len, tok_collect, t);
    }
    qsort(t->v, t->n, sizeof *t->v, tokrow_cmp);
}

/* ------------------------------------------------------------ model comparison */

static bool str_eq(qr_str a, qr_str b)
{
    return a.len == b.len && (!a.len || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static void compare_with_model(qr_part *p, const corpus *c, bool with_postings)
{
    CHECK_EQ_INT(p->row_count, c->n);
    int64_t min_ts = INT64_MAX, max_ts = INT64_MIN;
    uint64_t levels[QR_LEVEL_COUNT] = {0};
    for (uint32_t row = 0; row < c->n; row++) {
        const qr_batch *b;
        const qr_event *e = corpus_row(c, row, &b);
        if (e->ts_ns < min_ts) min_ts = e->ts_ns;
        if (e->ts_ns > max_ts) max_ts = e->ts_ns;
        levels[e->level]++;
    }
    CHECK(p->min_ts_ns == min_ts && p->max_ts_ns == max_ts);
    for (int l = 0; l < QR_LEVEL_COUNT; l++) CHECK(p->level_rows[l] == levels[l]);
    /* services: sorted, with row counts */
    uint64_t svc_total = 0;
    for (uint32_t s = 0; s < p->service_count; s++) {
        uint64_t want = 0;
        for (uint32_t row = 0; row < c->n; row++) {
            const qr_batch *b;
            want += str_eq(corpus_row(c, row, &b)->service, p->services[s]);
        }
        CHECK(want == p->service_rows[s] && want > 0);
        svc_total += want;
        if (s)
            CHECK(memcmp(p->services[s - 1].ptr, p->services[s].ptr,
                         p->services[s - 1].len < p->services[s].len ? p->services[s - 1].len
                                                                     : p->services[s].len) <= 0);
    }
    CHECK(svc_total == c->n);
    qr_arena a;
    qr_arena_init(&a, 1 << 20, 0);
    uint32_t row0 = 0;
    uint64_t st = 99;
    uint64_t *field_rows = calloc(p->field_count + 1, sizeof *field_rows);
    for (uint32_t blk = 0; blk < p->block_count; blk++) {
        qr_block_meta m;
        REQUIRE(qr_part_block_meta(p, blk, &m) == 0);
        CHECK(m.first_row == row0);
        uint32_t n = m.row_count;
        qr_column ts, ing, lvl, svc, host, msg;
        qr_diag d;
        qr_diag_init(&d);
        REQUIRE(qr_part_load_column(p, blk, QR_COL_TS, 0, &a, &ts, &d) == 0);
        REQUIRE(qr_part_load_column(p, blk, QR_COL_INGEST_TS, 0, &a, &ing, &d) == 0);
        REQUIRE(qr_part_load_column(p, blk, QR_COL_LEVEL, 0, &a, &lvl, &d) == 0);
        REQUIRE(qr_part_load_column(p, blk, QR_COL_SERVICE, 0, &a, &svc, &d) == 0);
        REQUIRE(qr_part_load_column(p, blk, QR_COL_HOST, 0, &a, &host, &d) == 0);
        REQUIRE(qr_part_load_column(p, blk, QR_COL_MSG, 0, &a, &msg, &d) == 0);
        CHECK(ts.row_count == n && msg.row_count == n);
        int bad_rows = 0;
        for (uint32_t r = 0; r < n; r++) {
            const qr_batch *b;
            const qr_event *e = corpus_row(c, row0 + r, &b);
            bool ok = ts.i64[r] == e->ts_ns && ing.i64[r] == e->ingest_ts_ns &&
                      lvl.u8[r] == e->level && svc.ids[r] < svc.dict_count &&
                      str_eq(svc.dict[svc.ids[r]], e->service) && host.ids[r] < host.dict_count &&
                      str_eq(host.dict[host.ids[r]], e->host) && str_eq(msg.strs[r], e->msg);
            if (!ok && bad_rows++ < 3) fprintf(stderr, "block %u row %u differs\n", blk, r);
        }
        CHECK(bad_rows == 0);
        CHECK(m.min_ts_ns == ts.i64[0] && m.max_ts_ns == ts.i64[n - 1]);
        /* counts per (service, level) */
        uint32_t total = 0;
        for (uint32_t k = 0; k < m.count_n; k++) {
            uint32_t cnt = 0;
            for (uint32_t r = 0; r < n; r++)
                cnt += svc.ids[r] == m.counts[k].service_id && lvl.u8[r] == m.counts[k].level;
            CHECK(cnt == m.counts[k].row_count);
            total += m.counts[k].row_count;
            if (k)
                CHECK(m.counts[k - 1].service_id * 8 + m.counts[k - 1].level <
                      m.counts[k].service_id * 8 + m.counts[k].level);
        }
        CHECK(total == n);
        /* fields */
        for (uint32_t f = 0; f < p->field_count; f++) {
            const qr_field_schema *fs = &p->fields[f];
            qr_column fc;
            REQUIRE(qr_part_load_column(p, blk, QR_COL_FIELD, f, &a, &fc, &d) == 0);
            CHECK(fc.row_count == n && fc.type == fs->type);
            int bad = 0;
            for (uint32_t r = 0; r < n; r++) {
                const qr_batch *b;
                const qr_event *e = corpus_row(c, row0 + r, &b);
                const qr_field *mf = event_field(b, e, fs->key, fs->type);
                bool has = qr_column_has(&fc, r);
                field_rows[f] += has;
                if (!mf) {
                    if (has) bad++;
                    continue;
                }
                if (!has) {
                    bad++;
                    continue;
                }
                switch (fs->type) {
                case QR_FT_INT:
                    bad += fc.i64[r] != mf->v.i;
                    break;
                case QR_FT_FLOAT:
                    bad += memcmp(&fc.f64[r], &mf->v.f, 8) != 0;
                    break;
                case QR_FT_BOOL:
                    bad += fc.u8[r] != (uint8_t)mf->v.b;
                    break;
                case QR_FT_STRING:
                    if (fc.ids)
                        bad += !(fc.ids[r] < fc.dict_count && str_eq(fc.dict[fc.ids[r]], mf->v.s));
                    else
                        bad += !str_eq(fc.strs[r], mf->v.s);
                    break;
                default:
                    break;
                }
            }
            if (bad)
                fprintf(stderr, "block %u field %.*s/%u: %d bad rows\n", blk, (int)fs->key.len,
                        fs->key.ptr, fs->type, bad);
            CHECK(bad == 0);
        }
        /* load_msgs on a random ascending subset */
        uint32_t *rows = malloc(n * sizeof *rows);
        uint32_t k = 0;
        for (uint32_t r = 0; r < n; r++)
            if (qr_test_rand(&st) % 3 == 0) rows[k++] = r;
        qr_str *out = malloc((k + 1) * sizeof *out);
        REQUIRE(qr_part_load_msgs(p, blk, rows, k, &a, out, &d) == 0);
        for (uint32_t i = 0; i < k; i++) {
            const qr_batch *b;
            CHECK(str_eq(out[i], corpus_row(c, row0 + rows[i], &b)->msg));
        }
        if (n > 1) { /* not ascending: rejected */
            uint32_t bad2[2] = {1, 0};
            CHECK(qr_part_load_msgs(p, blk, bad2, 2, &a, out, NULL) == QR_EINVAL);
        }
        free(rows);
        free(out);
        row0 += n;
        qr_arena_reset(&a);
    }
    CHECK(row0 == c->n);
    /* schema: every (key, type) of the input with its row count */
    for (uint32_t f = 0; f < p->field_count; f++) CHECK(field_rows[f] == p->fields[f].row_count);
    for (uint32_t row = 0; row < c->n; row++) {
        const qr_batch *b;
        const qr_event *e = corpus_row(c, row, &b);
        const qr_field *fl = qr_event_fields(b, e);
        for (uint32_t k = 0; k < e->field_count; k++)
            CHECK(qr_part_field_find(p, fl[k].key.ptr, fl[k].key.len, fl[k].type) >= 0);
    }
    free(field_rows);
    /* tokens: postings equal the brute-force scan; blooms never say no wrongly */
    tok_ctx t;
    corpus_tokens(c, &t);
    size_t distinct = 0;
    for (size_t i = 0; i < t.n;) {
        size_t j = i;
        while (j < t.n && t.v[j].len == t.v[i].len &&
               memcmp(t.v[j].tok, t.v[i].tok, t.v[i].len) == 0)
            j++;
        uint64_t h = qr_token_hash(t.v[i].tok, t.v[i].len);
        for (size_t k = i; k < j; k++) {
            uint32_t blk = t.v[k].row / (p->row_count / p->block_count ? 1 : 1);
            (void)blk;
        }
        /* bloom of the block of each occurrence */
        for (uint32_t blk = 0, first = 0; blk < p->block_count; blk++) {
            qr_block_meta m;
            qr_part_block_meta(p, blk, &m);
            first = m.first_row;
            bool in_block = false;
            for (size_t k = i; k < j && !in_block; k++)
                in_block = t.v[k].row >= first && t.v[k].row < first + m.row_count;
            if (in_block) CHECK(qr_part_block_may_contain_token(p, blk, h));
        }
        if (with_postings) {
            roaring_bitmap_t *bm = NULL;
            CHECK(qr_part_postings(p, t.v[i].tok, t.v[i].len, &bm, NULL) == 0);
            REQUIRE(bm != NULL);
            uint64_t want = 0;
            bool same = true;
            for (size_t k = i; k < j; k++) {
                if (k > i && t.v[k].row == t.v[k - 1].row) continue;
                want++;
                same &= roaring_bitmap_contains(bm, t.v[k].row);
            }
            CHECK(same && roaring_bitmap_get_cardinality(bm) == want);
            roaring_bitmap_free(bm);
        }
        distinct++;
        i = j;
    }
    if (with_postings) {
        roaring_bitmap_t *bm = NULL;
        CHECK(qr_part_postings(p, "nosuchtoken", 11, &bm, NULL) == 0 && bm == NULL);
    } else {
        roaring_bitmap_t *bm = NULL;
        CHECK(qr_part_postings(p, "db", 2, &bm, NULL) == QR_ENOTFOUND);
    }
    free(t.v);
    qr_arena_fini(&a);
    (void)distinct;
}

typedef struct prefix_ctx {
    qr_buf out;
} prefix_ctx;

static int prefix_cb(void *ctx, const char *term, size_t len)
{
    prefix_ctx *pc = ctx;
    qr_buf_append(&pc->out, term, len);
    qr_buf_u8(&pc->out, '\n');
    return 0;
}

static void compare_prefixes(qr_part *p, const corpus *c)
{
    tok_ctx t;
    corpus_tokens(c, &t);
    const char *prefixes[] = {"", "d", "de", "id1", "10", "h", "é", "\xe6", "zz", "timeout", "q"};
    for (size_t pi = 0; pi < sizeof prefixes / sizeof *prefixes; pi++) {
        const char *pre = prefixes[pi];
        size_t plen = strlen(pre);
        qr_buf want;
        qr_buf_init(&want);
        for (size_t i = 0; i < t.n; i++) {
            if (i && t.v[i].len == t.v[i - 1].len &&
                memcmp(t.v[i].tok, t.v[i - 1].tok, t.v[i].len) == 0)
                continue;
            if (t.v[i].len >= plen && memcmp(t.v[i].tok, pre, plen) == 0) {
                qr_buf_append(&want, t.v[i].tok, t.v[i].len);
                qr_buf_u8(&want, '\n');
            }
        }
        prefix_ctx pc;
        qr_buf_init(&pc.out);
        CHECK(qr_part_terms_with_prefix(p, pre, plen, prefix_cb, &pc, NULL) == 0);
        CHECK(pc.out.len == want.len &&
              (!want.len || memcmp(pc.out.data, want.data, want.len) == 0));
        qr_buf_fini(&pc.out);
        qr_buf_fini(&want);
    }
    free(t.v);
}

static void model_roundtrip(uint64_t seed, size_t batches, uint32_t block_rows, bool postings)
{
    char dir[512], path[600];
    REQUIRE(qr_test_tmpdir("segment_model", dir, sizeof dir));
    snprintf(path, sizeof path, "%s/a" SEG_FILE_SUFFIX, dir);
    corpus c;
    corpus_make(&c, seed, batches, 0);
    seg_write_opts opts = {.block_rows = block_rows, .no_postings = !postings, .segment_id = seed};
    seg_stats ws;
    qr_diag d;
    qr_diag_init(&d);
    int rc = seg_write(path, c.ptrs, c.batch_count, &opts, &ws, &d);
    if (rc) fprintf(stderr, "seg_write: %s\n", d.msg);
    REQUIRE(rc == 0);
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0);
    qr_part *p = NULL;
    rc = seg_open(path, &p, &d);
    if (rc) fprintf(stderr, "seg_open: %s\n", d.msg);
    REQUIRE(rc == 0);
    CHECK(p->id == seed && p->kind == QR_PART_SEGMENT && strcmp(p->path, path) == 0);
    CHECK(p->has_postings == postings);
    seg_stats vs;
    rc = seg_verify(p, &vs, &d);
    if (rc) fprintf(stderr, "seg_verify: %s\n", d.msg);
    CHECK(rc == 0);
    /* the writer's and the verifier's accounting agree and cover the whole file */
    CHECK(vs.file_bytes == ws.file_bytes && vs.rows == c.n);
    CHECK(vs.ts_bytes == ws.ts_bytes && vs.msg_bytes == ws.msg_bytes &&
          vs.field_bytes == ws.field_bytes);
    CHECK(vs.bloom_bytes == ws.bloom_bytes && vs.postings_bytes == ws.postings_bytes);
    CHECK(vs.meta_bytes == ws.meta_bytes);
    CHECK(vs.ts_bytes + vs.ingest_ts_bytes + vs.level_bytes + vs.service_bytes + vs.host_bytes +
              vs.msg_bytes + vs.field_bytes + vs.bloom_bytes + vs.postings_bytes + vs.meta_bytes ==
          vs.file_bytes);
    compare_with_model(p, &c, postings);
    /* one key with two types is two schema entries */
    CHECK(qr_part_field_find(p, "latency_ms", 10, QR_FT_FLOAT) >= 0);
    CHECK(qr_part_field_find(p, "latency_ms", 10, QR_FT_INT) >= 0);
    if (postings) compare_prefixes(p, &c);
    qr_part_ref(p);
    qr_part_unref(p);
    qr_part_unref(p);
    corpus_free(&c);
    qr_test_rmdir(dir);
}

TEST(model_small_blocks)
{
    model_roundtrip(1, 6, 64, true);
}
TEST(model_default_blocks)
{
    model_roundtrip(2, 12, 0, true);
}
TEST(model_no_postings)
{
    model_roundtrip(3, 3, 100, false);
}
TEST(model_one_row)
{
    char dir[512], path[600];
    REQUIRE(qr_test_tmpdir("segment_one", dir, sizeof dir));
    snprintf(path, sizeof path, "%s/one" SEG_FILE_SUFFIX, dir);
    corpus c;
    corpus_make(&c, 4, 1, 1);
    REQUIRE(seg_write(path, c.ptrs, 1, NULL, NULL, NULL) == 0);
    qr_part *p;
    REQUIRE(seg_open(path, &p, NULL) == 0);
    CHECK(seg_verify(p, NULL, NULL) == 0);
    CHECK(p->block_count == 1);
    compare_with_model(p, &c, true);
    qr_part_unref(p);
    corpus_free(&c);
    qr_test_rmdir(dir);
}

TEST(ingest_ts_of_one_batch_is_nearly_free)
{
    char dir[512], path[600];
    REQUIRE(qr_test_tmpdir("segment_ingest", dir, sizeof dir));
    snprintf(path, sizeof path, "%s/i" SEG_FILE_SUFFIX, dir);
    corpus c;
    corpus_make(&c, 6, 2, 500); /* batch 1 has one ingest time */
    const qr_batch *one = &c.batches[1];
    seg_stats st;
    REQUIRE(seg_write(path, &one, 1, NULL, &st, NULL) == 0);
    CHECK(st.ingest_ts_bytes < 32); /* raw RLE: one run, not ~3 bytes per row from ts */
    CHECK(st.ts_bytes < 500 * 3);   /* ms precision: the 10^6 factor is divided out */
    qr_part *p;
    REQUIRE(seg_open(path, &p, NULL) == 0);
    qr_arena a;
    qr_arena_init(&a, 0, 0);
    qr_column col;
    REQUIRE(qr_part_load_column(p, 0, QR_COL_INGEST_TS, 0, &a, &col, NULL) == 0);
    for (uint32_t r = 0; r < col.row_count; r++) CHECK(col.i64[r] == one->events[0].ingest_ts_ns);
    CHECK(seg_verify(p, NULL, NULL) == 0);
    qr_arena_fini(&a);
    qr_part_unref(p);
    corpus_free(&c);
    qr_test_rmdir(dir);
}

TEST(write_errors)
{
    char dir[512], path[600];
    REQUIRE(qr_test_tmpdir("segment_err", dir, sizeof dir));
    qr_batch empty;
    qr_batch_init(&empty);
    const qr_batch *bp = &empty;
    snprintf(path, sizeof path, "%s/e" SEG_FILE_SUFFIX, dir);
    qr_diag d;
    qr_diag_init(&d);
    CHECK(seg_write(path, &bp, 1, NULL, NULL, &d) == QR_EINVAL);
    CHECK(access(path, F_OK) != 0);
    qr_event *e = qr_batch_push(&empty);
    e->level = 9;
    qr_diag_init(&d);
    CHECK(seg_write(path, &bp, 1, NULL, NULL, &d) == QR_EINVAL);
    e->level = 1;
    snprintf(path, sizeof path, "%s/nodir/x" SEG_FILE_SUFFIX, dir);
    qr_diag_init(&d);
    CHECK(seg_write(path, &bp, 1, NULL, NULL, &d) == QR_EIO);
    CHECK(strstr(d.msg, "nodir") != NULL);
    qr_part *p;
    CHECK(seg_open(path, &p, NULL) == QR_EIO);
    qr_batch_fini(&empty);
    qr_test_rmdir(dir);
}

/* ------------------------------------------------------------ corruption */

/* One hash per observable item; 0 = the read failed. */
typedef struct snapshot {
    uint64_t *h;
    size_t n;
    int errors;
} snapshot;

static void snap_add(snapshot *s, int rc, const void *p, size_t len)
{
    s->h = realloc(s->h, (s->n + 1) * sizeof *s->h);
    s->h[s->n++] = rc ? 0 : (qr_hash64(p, len) | 1);
    if (rc) s->errors++;
}

static void snap_column(snapshot *s, qr_part *p, uint32_t blk, qr_col_kind kind, uint32_t f,
                        qr_arena *a)
{
    qr_column c;
    memset(&c, 0, sizeof c);
    int rc = qr_part_load_column(p, blk, kind, f, a, &c, NULL);
    qr_buf b;
    qr_buf_init(&b);
    if (!rc) {
        uint32_t n = c.row_count;
        qr_buf_u32(&b, n);
        for (uint32_t r = 0; r < n; r++) {
            qr_buf_u8(&b, qr_column_has(&c, r));
            if (c.i64) qr_buf_u64(&b, (uint64_t)c.i64[r]);
            if (c.f64) qr_buf_append(&b, &c.f64[r], 8);
            if (c.u8) qr_buf_u8(&b, c.u8[r]);
            if (c.ids) {
                qr_buf_u32(&b, c.ids[r]);
                if (c.ids[r] < c.dict_count)
                    qr_buf_bytes(&b, c.dict[c.ids[r]].ptr, c.dict[c.ids[r]].len);
            }
            if (c.strs) qr_buf_bytes(&b, c.strs[r].ptr, c.strs[r].len);
        }
    }
    snap_add(s, rc, b.data, b.len);
    qr_buf_fini(&b);
}

static int snap_prefix_cb(void *ctx, const char *term, size_t len)
{
    qr_buf *b = ctx;
    qr_buf_bytes(b, term, len);
    return 0;
}

static void snapshot_take(qr_part *p, const tok_ctx *t, snapshot *s)
{
    memset(s, 0, sizeof *s);
    qr_arena a;
    qr_arena_init(&a, 1 << 16, 0);
    for (uint32_t blk = 0; blk < p->block_count; blk++) {
        qr_block_meta m;
        qr_part_block_meta(p, blk, &m);
        snap_add(s, 0, &m.row_count, 4);
        snap_column(s, p, blk, QR_COL_TS, 0, &a);
        snap_column(s, p, blk, QR_COL_INGEST_TS, 0, &a);
        snap_column(s, p, blk, QR_COL_LEVEL, 0, &a);
        snap_column(s, p, blk, QR_COL_SERVICE, 0, &a);
        snap_column(s, p, blk, QR_COL_HOST, 0, &a);
        snap_column(s, p, blk, QR_COL_MSG, 0, &a);
        for (uint32_t f = 0; f < p->field_count; f++) snap_column(s, p, blk, QR_COL_FIELD, f, &a);
        uint32_t rows[3] = {0, m.row_count / 2, m.row_count - 1};
        uint32_t nr = m.row_count >= 3 ? 3 : 1;
        qr_str out[3];
        int rc = qr_part_load_msgs(p, blk, rows, nr, &a, out, NULL);
        qr_buf b;
        qr_buf_init(&b);
        for (uint32_t i = 0; !rc && i < nr; i++) qr_buf_bytes(&b, out[i].ptr, out[i].len);
        snap_add(s, rc, b.data, b.len);
        qr_buf_fini(&b);
        for (size_t i = 0; i < t->n; i += 7)
            (void)qr_part_block_may_contain_token(p, blk, qr_token_hash(t->v[i].tok, t->v[i].len));
        qr_arena_reset(&a);
    }
    for (size_t i = 0; i < t->n; i += 1 + t->n / 40) { /* ~40 tokens */
        roaring_bitmap_t *bm = NULL;
        int rc = qr_part_postings(p, t->v[i].tok, t->v[i].len, &bm, NULL);
        qr_buf b;
        qr_buf_init(&b);
        if (!rc && bm) {
            uint64_t card = roaring_bitmap_get_cardinality(bm);
            uint32_t *arr = malloc((card + 1) * sizeof *arr);
            roaring_bitmap_to_uint32_array(bm, arr);
            qr_buf_append(&b, arr, card * 4);
            free(arr);
        }
        if (bm) roaring_bitmap_free(bm);
        snap_add(s, rc, b.data, b.len);
        qr_buf_fini(&b);
    }
    qr_buf b;
    qr_buf_init(&b);
    int rc = qr_part_terms_with_prefix(p, "i", 1, snap_prefix_cb, &b, NULL);
    snap_add(s, rc, b.data, b.len);
    qr_buf_fini(&b);
    qr_arena_fini(&a);
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return;
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

static void patch_byte(const char *path, size_t off, uint8_t v)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0) return;
    if (pwrite(fd, &v, 1, (off_t)off) != 1) fprintf(stderr, "pwrite failed\n");
    close(fd);
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)len + 1);
    *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
    return buf;
}

/* Resident kB of the mappings of path in this process (/proc/self/smaps): -1 if not mapped,
 * -2 if there is no smaps. */
static long mapped_rss_kb(const char *path)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -2;
    char line[1024];
    bool in = false;
    long kb = -1;
    size_t plen = strlen(path);
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        while (n && line[n - 1] == '\n') line[--n] = 0;
        if (n >= plen && strcmp(line + n - plen, path) == 0) { /* a mapping of path */
            in = true;
            kb = kb < 0 ? 0 : kb;
        } else if (in && strncmp(line, "Rss:", 4) == 0) {
            kb += atol(line + 4);
            in = false;
        }
    }
    fclose(f);
    return kb;
}

/* seg_open reads header, trailer, footer and dictionaries with pread and opens the index
 * lazily, so it maps no page of the file: with large page-cache folios one touched byte can
 * map megabytes, and every segment of a data directory is open for the process's life. */
TEST(open_maps_no_page)
{
    char dir[512], path[600];
    REQUIRE(qr_test_tmpdir("segment_rss", dir, sizeof dir));
    snprintf(path, sizeof path, "%s/r" SEG_FILE_SUFFIX, dir);
    corpus c;
    corpus_make(&c, 7, 4, 0);
    REQUIRE(seg_write(path, c.ptrs, c.batch_count, NULL, NULL, NULL) == 0);
    qr_part *p;
    REQUIRE(seg_open(path, &p, NULL) == 0);
    long kb = mapped_rss_kb(path);
    if (kb == -2) {
        printf("# no /proc/self/smaps: skipped\n");
    } else {
        CHECK(kb == 0);
        /* reading a block maps its pages (so the probe above can see a touch) */
        qr_arena a;
        qr_arena_init(&a, 0, 0);
        qr_column col;
        CHECK(qr_part_load_column(p, 0, QR_COL_TS, 0, &a, &col, NULL) == 0);
        CHECK(mapped_rss_kb(path) > 0);
        qr_arena_fini(&a);
        /* the lazily opened index still answers, and verify still reads everything */
        roaring_bitmap_t *bm = NULL;
        CHECK(qr_part_postings(p, "timeout", 7, &bm, NULL) == 0);
        roaring_bitmap_free(bm);
    }
    CHECK(seg_verify(p, NULL, NULL) == 0);
    qr_part_unref(p);
    corpus_free(&c);
    qr_test_rmdir(dir);
}

/* stride: the most bytes skipped between two flips inside the chunks */
static void corruption_run(const char *name, seg_write_opts opts, unsigned stride)
{
    char dir[512], path[600], bad[640];
    REQUIRE(qr_test_tmpdir(name, dir, sizeof dir));
    snprintf(path, sizeof path, "%s/c" SEG_FILE_SUFFIX, dir);
    snprintf(bad, sizeof bad, "%s/bad" SEG_FILE_SUFFIX, dir);
    corpus c;
    g_short_msgs = true;
    corpus_make(&c, 5, 2, 16);
    g_short_msgs = false;
    REQUIRE(seg_write(path, c.ptrs, c.batch_count, &opts, NULL, NULL) == 0);
    size_t len;
    uint8_t *orig = read_file(path, &len);
    REQUIRE(orig != NULL);
    printf("# corrupting a %zu-byte segment\n", len);
    tok_ctx t;
    corpus_tokens(&c, &t);
    qr_part *p;
    REQUIRE(seg_open(path, &p, NULL) == 0);
    snapshot good;
    snapshot_take(p, &t, &good);
    CHECK(good.errors == 0);
    qr_part_unref(p);
    uint64_t st = 1234;
    write_file(bad, orig, len);
    int undetected = 0, wrong = 0, tried = 0;
    /* Every byte of the header, footer and trailer; a jittered stride through the chunks
     * (every byte takes ~1 min: the snapshot looks up every token). */
    uint64_t footer_off = qr_load_u64(orig + len - 32);
    for (size_t off = 0; off < len;) {
        tried++;
        /* Patch one byte in place: rewriting the whole file each time makes the kernel
         * wait for writeback on truncation, which took a minute. */
        uint8_t flipped = orig[off] ^ (uint8_t)(1 + qr_test_rand(&st) % 255);
        patch_byte(bad, off, flipped);
        qr_diag d;
        qr_diag_init(&d);
        int rc = seg_open(bad, &p, &d);
        if (rc) {
            CHECK(rc == QR_ECORRUPT);
        } else {
            rc = seg_verify(p, NULL, &d);
            if (rc != QR_ECORRUPT) undetected++;
            snapshot s;
            snapshot_take(p, &t, &s);
            for (size_t i = 0; i < s.n && i < good.n; i++)
                if (s.h[i] && s.h[i] != good.h[i]) wrong++;
            CHECK(s.n == good.n);
            free(s.h);
            qr_part_unref(p);
        }
        patch_byte(bad, off, orig[off]);
        off +=
            off < 16 || off + 32 >= len ? 1 : 1 + qr_test_rand(&st) % (off >= footer_off ? 3 : stride);
    }
    printf("# %d corrupted files\n", tried);
    CHECK_EQ_INT(undetected, 0);
    CHECK_EQ_INT(wrong, 0);
    /* truncation: every length near the ends, a stride in between (each in a new file) */
    int opened = 0;
    for (size_t cut = 0; cut < len;
         cut += (cut < 64 || cut + (stride > 8 ? 64 : 4096) > len) ? 1 : 1 + qr_test_rand(&st) % 64) {
        snprintf(bad, sizeof bad, "%s/cut%zu" SEG_FILE_SUFFIX, dir, cut);
        write_file(bad, orig, cut);
        int rc = seg_open(bad, &p, NULL);
        if (rc == 0) {
            opened++;
            qr_part_unref(p);
        } else {
            CHECK(rc == QR_ECORRUPT);
        }
        unlink(bad);
    }
    CHECK_EQ_INT(opened, 0);
    /* appended garbage */
    uint8_t *longer = malloc(len + 3);
    memcpy(longer, orig, len);
    memcpy(longer + len, "xyz", 3);
    write_file(bad, longer, len + 3);
    CHECK(seg_open(bad, &p, NULL) == QR_ECORRUPT);
    free(longer);
    free(good.h);
    free(orig);
    free(t.v);
    corpus_free(&c);
    qr_test_rmdir(dir);
}

TEST(corruption_every_byte)
{
    seg_write_opts opts = {.block_rows = 12};
    corruption_run("segment_corrupt", opts, 8);
}

/* The same over a compacted segment: sparse index (blooms answer the terms it leaves out),
 * Rice lists, zstd 9 frames with the msg lengths inside. */
TEST(corruption_every_byte_compacted)
{
    seg_write_opts opts = {.block_rows = 12,
                           .zstd_level = 9,
                           .sparse_index = true,
                           .msg_frame_bytes = 200,
                           .msg_inline_lengths = true};
    corruption_run("segment_corrupt_compacted", opts, 24);
}

/* Tiny segments for the fuzz corpus (tests/fuzz/segment_fuzz/). */
static void write_corpus(const char *dir)
{
    for (int i = 0; i < 5; i++) {
        corpus c;
        corpus_make(&c, 100 + (uint64_t)i, 1 + (size_t)i % 2, (size_t)(3 + i * 5));
        char path[600];
        snprintf(path, sizeof path, "%s/seg%d" SEG_FILE_SUFFIX, dir, i);
        /* seg4: compacted (sparse index, Rice lists, small frames) */
        seg_write_opts opts = {.block_rows = (uint32_t)(4 + i * 3),
                               .no_postings = i == 3,
                               .sparse_index = i == 4,
                               .zstd_level = i == 4 ? 9 : 0,
                               .msg_frame_bytes = i == 4 ? 100 : 0,
                               .msg_inline_lengths = i == 4};
        if (seg_write(path, c.ptrs, c.batch_count, &opts, NULL, NULL) != 0)
            fprintf(stderr, "could not write %s\n", path);
        corpus_free(&c);
    }
}

int main(void)
{
    const char *corpus_dir = getenv("QR_WRITE_CORPUS");
    if (corpus_dir) write_corpus(corpus_dir);
#define TIMED(name)                                                                                \
    do {                                                                                           \
        struct timespec t0_, t1_;                                                                  \
        clock_gettime(CLOCK_MONOTONIC, &t0_);                                                      \
        RUN(name);                                                                                 \
        clock_gettime(CLOCK_MONOTONIC, &t1_);                                                      \
        printf("# %s: %.2f s\n", #name,                                                            \
               (double)(t1_.tv_sec - t0_.tv_sec) + (double)(t1_.tv_nsec - t0_.tv_nsec) / 1e9);     \
    } while (0)
    TIMED(model_small_blocks);
    TIMED(model_default_blocks);
    TIMED(model_no_postings);
    TIMED(model_one_row);
    TIMED(ingest_ts_of_one_batch_is_nearly_free);
    TIMED(write_errors);
    TIMED(open_maps_no_page);
    TIMED(corruption_every_byte);
    TIMED(corruption_every_byte_compacted);
    QR_TEST_MAIN_END();
}

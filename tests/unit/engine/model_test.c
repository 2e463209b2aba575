/* Model test: random filter and aggregate queries run through the engine and through a naive
 * reference evaluator written directly over the events (engine_data.h keeps them all), and the
 * two results must be identical. The data set puts rows in two segments (posting lists, 512-row
 * blocks) and the memtable (token-hash postings, verified), so a pruning or index bug anywhere
 * shows up as a difference. Predicates: service/level/host equalities and ranges, IN, NOT, OR, time
 * ranges, typed field comparisons, IS NULL, MATCH terms/prefixes/phrases/OR, CONTAINS; shapes:
 * count, count by service × level, count per minute, newest rows, min/max/sum. */
#include "engine_data.h"
#include "storage/tokenize.h"

static engine_data g_ed;
static uint64_t g_rng = 20250615;

/* ---- reference helpers ----------------------------------------------------------------------- */

static const qr_field *field_of(const qr_event *e, const char *key)
{
    const qr_field *f = qr_event_fields(&g_ed.all, e);
    for (uint32_t idx = 0; idx < e->field_count; idx++)
        if (qr_str_eq_cstr(f[idx].key, key)) return &f[idx];
    return NULL;
}

typedef struct toks {
    char text[4096];
    size_t used;
    qr_str t[1024];
    uint32_t n;
} toks;

static int tok_cb(void *ctx, const char *tok, size_t len, size_t offset)
{
    (void)offset;
    toks *tk = ctx;
    if (tk->n == 1024 || tk->used + len > sizeof tk->text) return 1;
    memcpy(tk->text + tk->used, tok, len);
    tk->t[tk->n++] = qr_str_make(tk->text + tk->used, len);
    tk->used += len;
    return 0;
}

static void tokens_of(qr_str s, toks *tk)
{
    tk->used = 0;
    tk->n = 0;
    qr_tokenize(s.ptr, s.len, tok_cb, tk);
}

static toks g_tk;

static bool has_token(const qr_event *e, const char *w)
{
    tokens_of(e->msg, &g_tk);
    for (uint32_t idx = 0; idx < g_tk.n; idx++)
        if (qr_str_eq_cstr(g_tk.t[idx], w)) return true;
    return false;
}

/* ---- predicates ---------------------------------------------------------------------------------
 */

enum {
    P_SVC_EQ,
    P_SVC_IN,
    P_LEVEL_GE,
    P_LEVEL_EQ,
    P_TS_RANGE,
    P_LAT_GT,
    P_MATCH_TERM,
    P_MATCH_PREFIX,
    P_CONTAINS,
    P_HOST_EQ,
    P_STATUS_GE,
    P_NOT_SVC,
    P_MATCH_PHRASE,
    P_SVC_OR_LEVEL,
    P_TRACE_NULL,
    P_MATCH_OR,
    P_KINDS
};

typedef struct pred {
    int kind;
    char s1[128], s2[128];
    int64_t i1, i2;
    double f;
} pred;

static const char *const level_names[] = {"UNKNOWN", "TRACE", "DEBUG", "INFO",
                                          "WARN",    "ERROR", "FATAL"};

static const qr_event *rand_event(void)
{
    return &g_ed.all.events[qr_test_rand(&g_rng) % g_ed.all.count];
}

static void copy_str(char *dst, size_t cap, qr_str s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

static void rand_token(char *dst, size_t cap)
{
    for (;;) {
        const qr_event *e = rand_event();
        tokens_of(e->msg, &g_tk);
        if (!g_tk.n) continue;
        copy_str(dst, cap, g_tk.t[qr_test_rand(&g_rng) % g_tk.n]);
        return;
    }
}

static void pred_make(pred *p)
{
    memset(p, 0, sizeof *p);
    p->kind = (int)(qr_test_rand(&g_rng) % P_KINDS);
    const qr_event *e = rand_event();
    switch (p->kind) {
    case P_SVC_EQ:
    case P_NOT_SVC:
        if (qr_test_rand(&g_rng) % 8 == 0)
            snprintf(p->s1, sizeof p->s1, "nosuch");
        else
            copy_str(p->s1, sizeof p->s1, e->service);
        break;
    case P_SVC_IN:
        copy_str(p->s1, sizeof p->s1, e->service);
        copy_str(p->s2, sizeof p->s2, rand_event()->service);
        break;
    case P_LEVEL_GE:
    case P_LEVEL_EQ:
        p->i1 = 1 + (int64_t)(qr_test_rand(&g_rng) % 6);
        break;
    case P_SVC_OR_LEVEL:
        copy_str(p->s1, sizeof p->s1, e->service);
        p->i1 = 4 + (int64_t)(qr_test_rand(&g_rng) % 3);
        break;
    case P_TS_RANGE: {
        int64_t span = 600 * QR_NS_PER_SEC;
        p->i1 = ED_START_NS +
                (int64_t)(qr_test_rand(&g_rng) % (uint64_t)span) / QR_NS_PER_MS * QR_NS_PER_MS;
        p->i2 = p->i1 + (int64_t)(qr_test_rand(&g_rng) % (uint64_t)(span / 3));
        p->i2 = p->i2 / QR_NS_PER_MS * QR_NS_PER_MS;
        break;
    }
    case P_LAT_GT:
        p->f = (double)(qr_test_rand(&g_rng) % 2000) / 10.0;
        break;
    case P_STATUS_GE:
        p->i1 = 200 + (int64_t)(qr_test_rand(&g_rng) % 350);
        break;
    case P_MATCH_TERM:
        rand_token(p->s1, sizeof p->s1);
        break;
    case P_MATCH_OR:
        rand_token(p->s1, sizeof p->s1);
        rand_token(p->s2, sizeof p->s2);
        break;
    case P_MATCH_PREFIX: {
        rand_token(p->s1, sizeof p->s1);
        size_t n = strlen(p->s1);
        if (n > 3) p->s1[1 + qr_test_rand(&g_rng) % 3] = '\0';
        break;
    }
    case P_MATCH_PHRASE:
        for (;;) {
            tokens_of(rand_event()->msg, &g_tk);
            if (g_tk.n < 2) continue;
            uint32_t at = (uint32_t)(qr_test_rand(&g_rng) % (g_tk.n - 1));
            copy_str(p->s1, sizeof p->s1, g_tk.t[at]);
            copy_str(p->s2, sizeof p->s2, g_tk.t[at + 1]);
            break;
        }
        break;
    case P_CONTAINS:
        for (;;) {
            const qr_event *ev = rand_event();
            if (ev->msg.len < 8) continue;
            size_t len = 3 + qr_test_rand(&g_rng) % 6;
            size_t at = qr_test_rand(&g_rng) % (ev->msg.len - len);
            bool ok = true;
            for (size_t k = 0; k < len; k++) {
                char c = ev->msg.ptr[at + k];
                ok = ok && c >= 0x20 && c < 0x7f && c != '\'';
            }
            if (!ok) continue;
            memcpy(p->s1, ev->msg.ptr + at, len);
            p->s1[len] = '\0';
            break;
        }
        break;
    case P_HOST_EQ:
        copy_str(p->s1, sizeof p->s1, e->host);
        break;
    default:
        break;
    }
}

static int pred_sql(const pred *p, char *buf, size_t cap)
{
    char t1[40], t2[40];
    switch (p->kind) {
    case P_SVC_EQ:
        return snprintf(buf, cap, "service = '%s'", p->s1);
    case P_NOT_SVC:
        return snprintf(buf, cap, "NOT (service = '%s')", p->s1);
    case P_SVC_IN:
        return snprintf(buf, cap, "service IN ('%s', '%s')", p->s1, p->s2);
    case P_LEVEL_GE:
        return snprintf(buf, cap, "level >= %s", level_names[p->i1]);
    case P_LEVEL_EQ:
        return snprintf(buf, cap, "level = '%s'", level_names[p->i1]);
    case P_SVC_OR_LEVEL:
        return snprintf(buf, cap, "(service = '%s' OR level = %s)", p->s1, level_names[p->i1]);
    case P_TS_RANGE:
        qr_time_format(p->i1, t1, sizeof t1, false);
        qr_time_format(p->i2, t2, sizeof t2, false);
        return snprintf(buf, cap, "ts >= '%s' AND ts < '%s'", t1, t2);
    case P_LAT_GT:
        return snprintf(buf, cap, "latency_ms > %.1f", p->f);
    case P_STATUS_GE:
        return snprintf(buf, cap, "http.status >= %lld", (long long)p->i1);
    case P_MATCH_TERM:
        return snprintf(buf, cap, "msg MATCH '%s'", p->s1);
    case P_MATCH_OR:
        return snprintf(buf, cap, "msg MATCH '%s OR %s'", p->s1, p->s2);
    case P_MATCH_PREFIX:
        return snprintf(buf, cap, "msg MATCH '%s*'", p->s1);
    case P_MATCH_PHRASE:
        return snprintf(buf, cap, "msg MATCH '\"%s %s\"'", p->s1, p->s2);
    case P_CONTAINS:
        return snprintf(buf, cap, "msg CONTAINS '%s'", p->s1);
    case P_HOST_EQ:
        return snprintf(buf, cap, "host = '%s'", p->s1);
    case P_TRACE_NULL:
        return snprintf(buf, cap, "trace_id IS NULL");
    }
    return 0;
}

static bool pred_eval(const pred *p, const qr_event *e)
{
    switch (p->kind) {
    case P_SVC_EQ:
        return qr_str_eq_cstr(e->service, p->s1);
    case P_NOT_SVC:
        return !qr_str_eq_cstr(e->service, p->s1);
    case P_SVC_IN:
        return qr_str_eq_cstr(e->service, p->s1) || qr_str_eq_cstr(e->service, p->s2);
    case P_LEVEL_GE:
        return e->level >= p->i1;
    case P_LEVEL_EQ:
        return e->level == p->i1;
    case P_SVC_OR_LEVEL:
        return qr_str_eq_cstr(e->service, p->s1) || e->level == p->i1;
    case P_TS_RANGE:
        return e->ts_ns >= p->i1 && e->ts_ns < p->i2;
    case P_LAT_GT: {
        const qr_field *f = field_of(e, "latency_ms");
        if (!f) return false;
        double v = f->type == QR_FT_FLOAT ? f->v.f : f->type == QR_FT_INT ? (double)f->v.i : -1e300;
        return v > p->f;
    }
    case P_STATUS_GE: {
        const qr_field *f = field_of(e, "http.status");
        return f && f->type == QR_FT_INT && f->v.i >= p->i1;
    }
    case P_MATCH_TERM:
        return has_token(e, p->s1);
    case P_MATCH_OR:
        return has_token(e, p->s1) || has_token(e, p->s2);
    case P_MATCH_PREFIX:
        tokens_of(e->msg, &g_tk);
        for (uint32_t idx = 0; idx < g_tk.n; idx++)
            if (g_tk.t[idx].len >= strlen(p->s1) &&
                memcmp(g_tk.t[idx].ptr, p->s1, strlen(p->s1)) == 0)
                return true;
        return false;
    case P_MATCH_PHRASE:
        tokens_of(e->msg, &g_tk);
        for (uint32_t idx = 0; idx + 1 < g_tk.n; idx++)
            if (qr_str_eq_cstr(g_tk.t[idx], p->s1) && qr_str_eq_cstr(g_tk.t[idx + 1], p->s2))
                return true;
        return false;
    case P_CONTAINS:
        return memmem(e->msg.ptr, e->msg.len, p->s1, strlen(p->s1)) != NULL;
    case P_HOST_EQ:
        return qr_str_eq_cstr(e->host, p->s1);
    case P_TRACE_NULL:
        return field_of(e, "trace_id") == NULL;
    }
    return false;
}

/* ---- reference results as CSV ---------------------------------------------------------------- */

typedef struct group_row {
    char key[160];
    int64_t count;
} group_row;

static int group_cmp(const void *a, const void *b)
{
    return strcmp(((const group_row *)a)->key, ((const group_row *)b)->key);
}

static group_row g_groups[4096];

static size_t group_add(size_t n, const char *key)
{
    for (size_t idx = 0; idx < n; idx++) {
        if (strcmp(g_groups[idx].key, key) == 0) {
            g_groups[idx].count++;
            return n;
        }
    }
    snprintf(g_groups[n].key, sizeof g_groups[n].key, "%s", key);
    g_groups[n].count = 1;
    return n + 1;
}

static int i64_cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x > y ? -1 : x < y;
}

static char *reference(int shape, const uint8_t *hit)
{
    qr_buf out;
    qr_buf_init(&out);
    char line[512];
    int64_t count = 0, status_sum = 0;
    bool any_lat = false, any_status = false;
    double lat_min = 0, lat_max = 0;
    size_t ng = 0;
    int64_t *ts = malloc(g_ed.all.count * sizeof *ts);
    for (size_t idx = 0; idx < g_ed.all.count; idx++) {
        const qr_event *e = &g_ed.all.events[idx];
        if (!hit[idx]) continue;
        ts[count++] = e->ts_ns;
        if (shape == 1) {
            /* service, then level by severity: "svc\x01<level digit>" sorts like the engine */
            snprintf(line, sizeof line, "%.*s\x01%d", (int)e->service.len, e->service.ptr,
                     e->level);
            ng = group_add(ng, line);
        } else if (shape == 2) {
            int64_t b = e->ts_ns / (60 * QR_NS_PER_SEC) * (60 * QR_NS_PER_SEC);
            qr_time_format(b, line, sizeof line, false);
            ng = group_add(ng, line);
        } else if (shape == 4) {
            const qr_field *f = field_of(e, "latency_ms");
            if (f && (f->type == QR_FT_FLOAT || f->type == QR_FT_INT)) {
                double v = f->type == QR_FT_FLOAT ? f->v.f : (double)f->v.i;
                if (!any_lat || v < lat_min) lat_min = v;
                if (!any_lat || v > lat_max) lat_max = v;
                any_lat = true;
            }
            f = field_of(e, "http.status");
            if (f && f->type == QR_FT_INT) {
                status_sum += f->v.i;
                any_status = true;
            }
        }
    }
    switch (shape) {
    case 0:
        snprintf(line, sizeof line, "count(*)\n%lld\n", (long long)count);
        qr_buf_append(&out, line, strlen(line));
        break;
    case 1:
    case 2:
        qsort(g_groups, ng, sizeof *g_groups, group_cmp);
        qr_buf_append(&out, shape == 1 ? "service,level,count(*)\n" : "t,count(*)\n",
                      shape == 1 ? 23 : 11);
        for (size_t idx = 0; idx < ng; idx++) {
            char *sep = strchr(g_groups[idx].key, '\x01');
            if (sep) {
                *sep = '\0';
                snprintf(line, sizeof line, "%s,%s,%lld\n", g_groups[idx].key,
                         level_names[sep[1] - '0'], (long long)g_groups[idx].count);
            } else {
                snprintf(line, sizeof line, "%s,%lld\n", g_groups[idx].key,
                         (long long)g_groups[idx].count);
            }
            qr_buf_append(&out, line, strlen(line));
        }
        break;
    case 3: {
        qsort(ts, (size_t)count, sizeof *ts, i64_cmp_desc);
        qr_buf_append(&out, "ts\n", 3);
        for (int64_t idx = 0; idx < count && idx < 7; idx++) {
            qr_time_format(ts[idx], line, sizeof line, false);
            qr_buf_append(&out, line, strlen(line));
            qr_buf_u8(&out, '\n');
        }
        break;
    }
    case 4: {
        char a[64] = "", b[64] = "", c[64] = "";
        if (any_lat) {
            snprintf(a, sizeof a, "%.15g", lat_min);
            snprintf(b, sizeof b, "%.15g", lat_max);
        }
        if (any_status) snprintf(c, sizeof c, "%lld", (long long)status_sum);
        snprintf(line, sizeof line,
                 "count(*),min(latency_ms),max(latency_ms),sum(http.status)\n%lld,%s,%s,%s\n",
                 (long long)count, a, b, c);
        qr_buf_append(&out, line, strlen(line));
        break;
    }
    }
    free(ts);
    qr_buf_u8(&out, 0);
    char *s = strdup((const char *)out.data);
    qr_buf_fini(&out);
    return s;
}

static const char *const shapes[] = {
    "SELECT count(*) FROM logs WHERE %s",
    "SELECT service, level, count(*) FROM logs WHERE %s GROUP BY service, level",
    "SELECT bucket(ts, 1m) AS t, count(*) FROM logs WHERE %s GROUP BY t",
    "SELECT ts FROM logs WHERE %s ORDER BY ts DESC LIMIT 7",
    "SELECT count(*), min(latency_ms), max(latency_ms), sum(http.status) FROM logs WHERE %s",
};

static int g_iterations = 90;

TEST(random_queries_match_reference)
{
    int runs = 0, nonempty = 0;
    uint8_t *hit = malloc(g_ed.all.count);
    REQUIRE(hit);
    for (int iter = 0; iter < g_iterations; iter++) {
        pred ps[3];
        int np = 1 + (int)(qr_test_rand(&g_rng) % 3);
        char where[1200] = "";
        size_t wl = 0;
        for (int k = 0; k < np; k++) {
            pred_make(&ps[k]);
            if (k) wl += (size_t)snprintf(where + wl, sizeof where - wl, " AND ");
            wl += (size_t)pred_sql(&ps[k], where + wl, sizeof where - wl);
        }
        for (size_t idx = 0; idx < g_ed.all.count; idx++) {
            bool ok = true;
            for (int k = 0; k < np && ok; k++) ok = pred_eval(&ps[k], &g_ed.all.events[idx]);
            hit[idx] = ok;
        }
        for (int shape = 0; shape < 5; shape++) {
            char query[1600];
            snprintf(query, sizeof query, shapes[shape], where);
            qr_diag d;
            char *got = engine_data_csv(&g_ed, query, NULL, NULL, &d);
            char *want = reference(shape, hit);
            if (!got) fprintf(stderr, "%s\n  error: %s\n", query, d.msg);
            CHECK(got != NULL);
            if (got && strcmp(got, want) != 0) {
                fprintf(stderr, "MISMATCH: %s\n--- engine:\n%s--- reference:\n%s\n", query, got,
                        want);
                qr_test_cur_failures++;
            }
            if (shape == 0 && got && strcmp(got, "count(*)\n0\n") != 0) nonempty++;
            runs++;
            free(got);
            free(want);
        }
    }
    free(hit);
    printf("# %d queries, %d of %d filters match rows\n", runs, nonempty, runs / 5);
    CHECK(nonempty > g_iterations / 4); /* the generator picks values that exist */
}

/* count(*) of rows matching p: the engine's against the reference's (hit: scratch, one byte
 * per event). Returns the reference count. */
static size_t count_matches_reference(const pred *p, uint8_t *hit)
{
    char where[400], query[600];
    pred_sql(p, where, sizeof where);
    size_t count = 0;
    for (size_t idx = 0; idx < g_ed.all.count; idx++)
        count += hit[idx] = pred_eval(p, &g_ed.all.events[idx]);
    snprintf(query, sizeof query, shapes[0], where);
    qr_diag d;
    char *got = engine_data_csv(&g_ed, query, NULL, NULL, &d);
    char *want = reference(0, hit);
    CHECK(got != NULL);
    if (got && strcmp(got, want) != 0) {
        fprintf(stderr, "MISMATCH: %s\n--- engine:\n%s--- reference:\n%s\n", query, got, want);
        qr_test_cur_failures++;
    }
    free(got);
    free(want);
    return count;
}

/* The two segments merged into one compacted segment (sparse index: terms of one block are
 * found through blooms; Rice lists; prefixes verified row by row): every random query must
 * still match the reference. */
TEST(same_answers_after_compaction)
{
    db_snapshot *snap;
    REQUIRE(db_snapshot_open(g_ed.db, NULL, &snap) == 0);
    size_t segs_before = 0;
    for (size_t idx = 0; idx < db_snapshot_part_count(snap); idx++)
        segs_before += db_snapshot_part(snap, idx)->kind == QR_PART_SEGMENT;
    db_snapshot_free(snap);
    db_compact_report r;
    qr_diag d;
    qr_diag_init(&d);
    REQUIRE(db_compact(g_ed.db, NULL, &r, &d) == 0);
    CHECK(r.merges == 1 && r.segments_in == segs_before && segs_before == 2);
    REQUIRE(db_snapshot_open(g_ed.db, NULL, &snap) == 0);
    qr_part *p = db_snapshot_part(snap, 0);
    CHECK(p->kind == QR_PART_SEGMENT && p->postings_sparse);
    db_snapshot_free(snap);
    g_iterations = 20; /* prefix searches verify every row of a sparse part: slower */
    test_random_queries_match_reference();
    /* needles (tokens of the segment rows, mostly ids of one block, which the sparse index
     * leaves to the blooms), their prefixes and phrases around them, against the reference */
    uint8_t *hit = malloc(g_ed.all.count);
    REQUIRE(hit);
    int needles = 0, asked = 0;
    for (int iter = 0; iter < 400 && asked < 10; iter++) {
        const qr_event *e = &g_ed.all.events[qr_test_rand(&g_rng) % (2 * ED_EVENTS / 3)];
        tokens_of(e->msg, &g_tk);
        if (g_tk.n < 2) continue;
        uint32_t at = (uint32_t)(qr_test_rand(&g_rng) % (g_tk.n - 1));
        pred ps[3];
        memset(ps, 0, sizeof ps);
        ps[0].kind = P_MATCH_TERM;
        ps[1].kind = P_MATCH_PREFIX;
        ps[2].kind = P_MATCH_PHRASE;
        copy_str(ps[0].s1, sizeof ps[0].s1, g_tk.t[at + 1]);
        copy_str(ps[1].s1, sizeof ps[1].s1, g_tk.t[at + 1]);
        if (strlen(ps[1].s1) > 3) ps[1].s1[3] = '\0';
        copy_str(ps[2].s1, sizeof ps[2].s1, g_tk.t[at]);
        copy_str(ps[2].s2, sizeof ps[2].s2, g_tk.t[at + 1]);
        size_t seen = 0; /* every other token asked is one seen once */
        for (size_t idx = 0; idx < g_ed.all.count; idx++)
            seen += pred_eval(&ps[0], &g_ed.all.events[idx]);
        if ((asked % 2 == 0) != (seen == 1)) continue;
        asked++;
        for (int k = 0; k < 3; k++)
            if (count_matches_reference(&ps[k], hit) == 1 && k == 0) needles++;
    }
    CHECK(needles >= 4); /* ids seen once are among the tokens asked for */
    /* Phrases of adjacent words: the compacted segment answers some from its adjacency pairs
     * alone (storage/phrase.h); every answer, claimed or verified, matches the reference. */
    REQUIRE(db_snapshot_open(g_ed.db, NULL, &snap) == 0);
    p = db_snapshot_part(snap, 0);
    int claimed = 0, phrases = 0;
    for (int iter = 0; iter < 300 && phrases < 60; iter++) {
        const qr_event *e = &g_ed.all.events[qr_test_rand(&g_rng) % (2 * ED_EVENTS / 3)];
        tokens_of(e->msg, &g_tk);
        if (g_tk.n < 2) continue;
        uint32_t at = (uint32_t)(qr_test_rand(&g_rng) % (g_tk.n - 1));
        pred ph;
        memset(&ph, 0, sizeof ph);
        ph.kind = P_MATCH_PHRASE;
        copy_str(ph.s1, sizeof ph.s1, g_tk.t[at]);
        copy_str(ph.s2, sizeof ph.s2, g_tk.t[at + 1]);
        const char *toks2[2] = {ph.s1, ph.s2};
        uint32_t lens2[2] = {(uint32_t)strlen(ph.s1), (uint32_t)strlen(ph.s2)};
        claimed += qr_part_phrase_exact(p, toks2, lens2, 2);
        phrases++;
        count_matches_reference(&ph, hit);
    }
    db_snapshot_free(snap);
    free(hit);
    printf("# %d phrases, %d answered from adjacency pairs\n", phrases, claimed);
    CHECK(phrases >= 40 && claimed > 0);
}

int main(void)
{
    int rc = engine_data_open(&g_ed, "engine_model");
    if (rc) {
        fprintf(stderr, "cannot build the data set: %s\n", qr_strerror(rc));
        return 1;
    }
    RUN(random_queries_match_reference);
    RUN(same_answers_after_compaction);
    engine_data_close(&g_ed);
    QR_TEST_MAIN_END();
}

/* The data directory end to end: ingest from threads, flush, close/reopen with and without
 * flushing (WAL replay), tenants, the directory lock — and a model test: random events in,
 * everything read back equal through snapshots, whatever mix of memtables and segments. */
#include "qr_test.h"
#include "storage/db.h"
#include "storage/tokenize.h"

#include <pthread.h>
#include <unistd.h>

/* --- random events and their canonical text --------------------------------------------- */

static const char *svc_names[] = {"api",    "payment",  "auth",
                                  "search", "checkout", "\xc3\xa9t\xc3\xa9"};
static const char *words[] = {
    "timeout", "card", "declined", "user", "GET",  "/api/v1", "\xe6\x97\xa5\xe6\x9c\xac",
    "retry",   "42",   "ok",       "id=7", "\"q\""};

static void rand_text(uint64_t *rng, char *buf, size_t cap, int max_words)
{
    size_t len = 0;
    int n = 1 + (int)(qr_test_rand(rng) % (uint64_t)max_words);
    buf[0] = '\0';
    for (int w = 0; w < n && len + 40 < cap; w++) {
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", w ? " " : "",
                                words[qr_test_rand(rng) % (sizeof words / sizeof words[0])]);
        if (qr_test_rand(rng) % 3 == 0)
            len += (size_t)snprintf(buf + len, cap - len, "%llu",
                                    (unsigned long long)(qr_test_rand(rng) % 100000));
    }
}

static void add_random_event(qr_batch *b, uint64_t *rng, int64_t base_ts)
{
    char msg[512], tmp[128];
    qr_event *e = qr_batch_push(b);
    e->ts_ns = base_ts + (int64_t)(qr_test_rand(rng) % 3600000000000ULL) - 1000;
    e->ingest_ts_ns = e->ts_ns + (int64_t)(qr_test_rand(rng) % 5000000000ULL);
    e->level = (uint8_t)(qr_test_rand(rng) % QR_LEVEL_COUNT);
    const char *svc = svc_names[qr_test_rand(rng) % 6];
    e->service = qr_batch_str(b, svc, strlen(svc));
    int hl = snprintf(tmp, sizeof tmp, "host-%llu", (unsigned long long)(qr_test_rand(rng) % 9));
    e->host = qr_batch_str(b, tmp, (size_t)hl);
    rand_text(rng, msg, sizeof msg, 12);
    e->msg = qr_batch_str(b, msg, strlen(msg));
    int nfields = (int)(qr_test_rand(rng) % 6);
    for (int fi = 0; fi < nfields; fi++) {
        qr_field f;
        memset(&f, 0, sizeof f);
        switch (qr_test_rand(rng) % 7) {
        case 0:
            f.key = qr_batch_str(b, "latency_ms", 10);
            f.type = QR_FT_INT;
            f.v.i = (int64_t)(qr_test_rand(rng) % 5000) - 10;
            break;
        case 1:
            f.key = qr_batch_str(b, "ratio", 5);
            f.type = QR_FT_FLOAT;
            f.v.f = (double)(qr_test_rand(rng) % 100000) / 7.0;
            break;
        case 2:
            f.key = qr_batch_str(b, "cached", 6);
            f.type = QR_FT_BOOL;
            f.v.b = qr_test_rand(rng) & 1;
            break;
        case 3: {
            f.key = qr_batch_str(b, "trace_id", 8);
            f.type = QR_FT_STRING;
            int n =
                snprintf(tmp, sizeof tmp, "%016llx%016llx", (unsigned long long)qr_test_rand(rng),
                         (unsigned long long)qr_test_rand(rng));
            f.v.s = qr_batch_str(b, tmp, (size_t)n);
            break;
        }
        case 4:
            f.key = qr_batch_str(b, "http.method", 11);
            f.type = QR_FT_STRING;
            f.v.s = qr_batch_str(b, qr_test_rand(rng) & 1 ? "GET" : "POST", 3 + (1 & 0));
            break;
        case 5:
            /* the same key with another type */
            f.key = qr_batch_str(b, "latency_ms", 10);
            f.type = QR_FT_STRING;
            f.v.s = qr_batch_str(b, "slow", 4);
            break;
        default:
            rand_text(rng, tmp, sizeof tmp, 3);
            f.key = qr_batch_str(b, "note", 4);
            f.type = QR_FT_STRING;
            f.v.s = qr_batch_str(b, tmp, strlen(tmp));
        }
        /* one value per key and type per event */
        bool dup = false;
        const qr_field *have = qr_event_fields(b, &b->events[b->count - 1]);
        for (uint32_t h = 0; h < b->events[b->count - 1].field_count; h++)
            if (have[h].type == f.type && qr_str_eq(have[h].key, f.key)) dup = true;
        if (!dup) qr_batch_add_field(b, &f);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct rowset {
    char **rows;
    size_t count, cap;
} rowset;

static void rowset_add(rowset *s, char *row)
{
    if (s->count == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->rows = realloc(s->rows, s->cap * sizeof *s->rows);
    }
    s->rows[s->count++] = row;
}

static void rowset_free(rowset *s)
{
    for (size_t idx = 0; idx < s->count; idx++) free(s->rows[idx]);
    free(s->rows);
    memset(s, 0, sizeof *s);
}

/* canonical text: ts|ingest|level|service|host|msg|sorted "key:type=value" fields */
static char *canon(int64_t ts, int64_t ingest, int level, qr_str svc, qr_str host, qr_str msg,
                   char **fields, int nfields)
{
    qsort(fields, (size_t)nfields, sizeof *fields, cmp_str);
    size_t cap = 256 + svc.len + host.len + msg.len;
    for (int idx = 0; idx < nfields; idx++) cap += strlen(fields[idx]) + 1;
    char *out = malloc(cap);
    int n = snprintf(out, cap, "%lld|%lld|%d|%.*s|%.*s|%.*s", (long long)ts, (long long)ingest,
                     level, (int)svc.len, svc.ptr, (int)host.len, host.ptr, (int)msg.len, msg.ptr);
    for (int idx = 0; idx < nfields; idx++)
        n += snprintf(out + n, cap - (size_t)n, "|%s", fields[idx]);
    return out;
}

static char *field_text(qr_str key, int type, const char *value)
{
    size_t cap = key.len + strlen(value) + 16;
    char *s = malloc(cap);
    snprintf(s, cap, "%.*s:%d=%s", (int)key.len, key.ptr, type, value);
    return s;
}

static void value_text(int type, int64_t i, double f, bool b, qr_str s, char *buf, size_t cap)
{
    switch (type) {
    case QR_FT_INT:
        snprintf(buf, cap, "%lld", (long long)i);
        break;
    case QR_FT_FLOAT:
        snprintf(buf, cap, "%.17g", f);
        break;
    case QR_FT_BOOL:
        snprintf(buf, cap, "%d", b ? 1 : 0);
        break;
    default:
        snprintf(buf, cap, "%.*s", (int)s.len, s.ptr);
        break;
    }
}

static void canon_batch(const qr_batch *b, rowset *out)
{
    char val[600];
    for (size_t row = 0; row < b->count; row++) {
        const qr_event *e = &b->events[row];
        char *fields[QR_FIELDS_MAX];
        const qr_field *f = qr_event_fields(b, e);
        for (uint32_t fi = 0; fi < e->field_count; fi++) {
            value_text(f[fi].type, f[fi].v.i, f[fi].v.f, f[fi].type == QR_FT_BOOL && f[fi].v.b,
                       f[fi].v.s, val, sizeof val);
            fields[fi] = field_text(f[fi].key, f[fi].type, val);
        }
        rowset_add(out, canon(e->ts_ns, e->ingest_ts_ns, e->level, e->service, e->host, e->msg,
                              fields, (int)e->field_count));
        for (uint32_t fi = 0; fi < e->field_count; fi++) free(fields[fi]);
    }
}

static int canon_snapshot(db_t *db, const char *tenant, rowset *out, size_t *segments)
{
    db_snapshot *snap;
    if (db_snapshot_open(db, tenant, &snap)) return -1;
    qr_arena a;
    qr_arena_init(&a, 1 << 20, 0);
    char val[600];
    int bad = 0;
    *segments = 0;
    for (size_t pi = 0; pi < db_snapshot_part_count(snap); pi++) {
        qr_part *p = db_snapshot_part(snap, pi);
        if (p->kind == QR_PART_SEGMENT) (*segments)++;
        qr_column *fcols = calloc(p->field_count + 1, sizeof *fcols);
        for (uint32_t bi = 0; bi < p->block_count; bi++) {
            qr_block_meta meta;
            qr_column ts, ing, lvl, svc, host, msg;
            qr_diag d;
            qr_diag_init(&d);
            bad |= qr_part_block_meta(p, bi, &meta);
            bad |= qr_part_load_column(p, bi, QR_COL_TS, 0, &a, &ts, &d);
            bad |= qr_part_load_column(p, bi, QR_COL_INGEST_TS, 0, &a, &ing, &d);
            bad |= qr_part_load_column(p, bi, QR_COL_LEVEL, 0, &a, &lvl, &d);
            bad |= qr_part_load_column(p, bi, QR_COL_SERVICE, 0, &a, &svc, &d);
            bad |= qr_part_load_column(p, bi, QR_COL_HOST, 0, &a, &host, &d);
            bad |= qr_part_load_column(p, bi, QR_COL_MSG, 0, &a, &msg, &d);
            for (uint32_t fi = 0; fi < p->field_count; fi++)
                bad |= qr_part_load_column(p, bi, QR_COL_FIELD, fi, &a, &fcols[fi], &d);
            if (bad) {
                fprintf(stderr, "load failed: %s\n", d.msg);
                break;
            }
            for (uint32_t r = 0; r < meta.row_count; r++) {
                char *fields[QR_FIELDS_MAX];
                int nf = 0;
                for (uint32_t fi = 0; fi < p->field_count && nf < QR_FIELDS_MAX; fi++) {
                    const qr_column *c = &fcols[fi];
                    if (!qr_column_has(c, r)) continue;
                    qr_str s = {"", 0};
                    if (c->type == QR_FT_STRING) s = c->strs ? c->strs[r] : c->dict[c->ids[r]];
                    value_text(c->type, c->i64 ? c->i64[r] : 0, c->f64 ? c->f64[r] : 0,
                               c->type == QR_FT_BOOL && c->u8[r], s, val, sizeof val);
                    fields[nf++] = field_text(p->fields[fi].key, p->fields[fi].type, val);
                }
                rowset_add(out, canon(ts.i64[r], ing.i64[r], lvl.u8[r], svc.dict[svc.ids[r]],
                                      host.dict[host.ids[r]], msg.strs[r], fields, nf));
                for (int fi = 0; fi < nf; fi++) free(fields[fi]);
            }
            qr_arena_reset(&a);
        }
        free(fcols);
    }
    qr_arena_fini(&a);
    db_snapshot_free(snap);
    return bad ? -1 : 0;
}

static bool rowsets_equal(rowset *a, rowset *b)
{
    if (a->count) qsort(a->rows, a->count, sizeof *a->rows, cmp_str);
    if (b->count) qsort(b->rows, b->count, sizeof *b->rows, cmp_str); /* empty: rows NULL */
    if (a->count != b->count) {
        fprintf(stderr, "row counts differ: %zu vs %zu\n", a->count, b->count);
        return false;
    }
    for (size_t idx = 0; idx < a->count; idx++) {
        if (strcmp(a->rows[idx], b->rows[idx]) != 0) {
            fprintf(stderr, "row %zu differs:\n  %s\n  %s\n", idx, a->rows[idx], b->rows[idx]);
            return false;
        }
    }
    return true;
}

/* --- tests --------------------------------------------------------------------------------- */

static db_opts small_opts(void)
{
    db_opts o;
    memset(&o, 0, sizeof o);
    o.wal.fsync_policy = WAL_FSYNC_NEVER; /* the crash test covers fsync=always */
    o.flush_rows = 3000;
    o.block_rows = 512;
    return o;
}

TEST(model_random_events_read_back_equal)
{
    char dir[512];
    REQUIRE(qr_test_tmpdir("db_model", dir, sizeof dir));
    uint64_t rng = 77;
    rowset expect[2] = {{0}, {0}};
    const char *tenants[2] = {"default", "acme"};
    db_opts o = small_opts();
    db_t *db = NULL;
    qr_diag d;
    qr_diag_init(&d);
    REQUIRE(db_open(dir, &o, &db, NULL, &d) == 0);
    qr_batch b;
    qr_batch_init(&b);
    for (int step = 0; step < 60; step++) {
        int t = (int)(qr_test_rand(&rng) % 2);
        qr_batch_reset(&b);
        int n = 1 + (int)(qr_test_rand(&rng) % 700);
        for (int k = 0; k < n; k++) add_random_event(&b, &rng, 1749945600000000000LL);
        CHECK_EQ_INT(db_ingest(db, tenants[t], &b, &d), 0);
        canon_batch(&b, &expect[t]);
        uint64_t action = qr_test_rand(&rng) % 10;
        if (action == 0) {
            CHECK_EQ_INT(db_flush(db, &d), 0);
        } else if (action == 1) {
            /* reopen; the next close either flushes or leaves rows to WAL replay */
            db_close(db);
            db_opts again = o;
            again.no_flush_on_close = qr_test_rand(&rng) & 1;
            REQUIRE(db_open(dir, &again, &db, NULL, &d) == 0);
        }
        if (step % 15 == 14) {
            for (int tt = 0; tt < 2; tt++) {
                rowset got = {0};
                size_t segs;
                CHECK_EQ_INT(canon_snapshot(db, tenants[tt], &got, &segs), 0);
                CHECK(rowsets_equal(&expect[tt], &got));
                rowset_free(&got);
            }
        }
    }
    CHECK_EQ_INT(db_flush(db, &d), 0);
    for (int tt = 0; tt < 2; tt++) {
        rowset got = {0};
        size_t segs = 0;
        CHECK_EQ_INT(canon_snapshot(db, tenants[tt], &got, &segs), 0);
        CHECK(segs > 0);
        CHECK(rowsets_equal(&expect[tt], &got));
        rowset_free(&got);
    }
    db_close(db);
    qr_batch_fini(&b);
    rowset_free(&expect[0]);
    rowset_free(&expect[1]);
    qr_test_rmdir(dir);
}

TEST(directory_lock_and_tenant_names)
{
    char dir[512];
    REQUIRE(qr_test_tmpdir("db_lock", dir, sizeof dir));
    db_opts o = small_opts();
    db_t *db = NULL, *db2 = NULL;
    qr_diag d;
    qr_diag_init(&d);
    REQUIRE(db_open(dir, &o, &db, NULL, &d) == 0);
    qr_diag_init(&d);
    CHECK_EQ_INT(db_open(dir, &o, &db2, NULL, &d), QR_EBUSY);
    CHECK(strstr(d.msg, "in use by another process") != NULL);
    qr_batch b;
    qr_batch_init(&b);
    uint64_t rng = 5;
    add_random_event(&b, &rng, 0);
    qr_diag_init(&d);
    CHECK_EQ_INT(db_ingest(db, "../escape", &b, &d), QR_EINVAL);
    CHECK(strstr(d.msg, "bad tenant name") != NULL);
    CHECK(!db_tenant_name_ok(""));
    CHECK(!db_tenant_name_ok("a/b"));
    CHECK(db_tenant_name_ok("team-7_prod"));
    /* tenants never see each other's rows */
    CHECK_EQ_INT(db_ingest(db, "a", &b, &d), 0);
    db_snapshot *snap;
    REQUIRE(db_snapshot_open(db, "b", &snap) == 0);
    CHECK_EQ_INT(db_snapshot_part_count(snap), 0);
    db_snapshot_free(snap);
    REQUIRE(db_snapshot_open(db, "a", &snap) == 0);
    CHECK_EQ_INT(db_snapshot_part_count(snap), 1);
    db_snapshot_free(snap);
    db_close(db);
    /* the lock is released at close */
    REQUIRE(db_open(dir, &o, &db, NULL, &d) == 0);
    db_close(db);
    qr_batch_fini(&b);
    qr_test_rmdir(dir);
}

typedef struct ingest_thread {
    db_t *db;
    uint64_t seed;
    int batches;
    int failures;
    rowset rows;
} ingest_thread;

static void *ingest_main(void *arg)
{
    ingest_thread *it = arg;
    qr_batch b;
    qr_batch_init(&b);
    for (int n = 0; n < it->batches; n++) {
        qr_batch_reset(&b);
        for (int k = 0; k < 200; k++) add_random_event(&b, &it->seed, 1749945600000000000LL);
        qr_diag d;
        qr_diag_init(&d);
        if (db_ingest(it->db, NULL, &b, &d))
            it->failures++;
        else
            canon_batch(&b, &it->rows);
    }
    qr_batch_fini(&b);
    return NULL;
}

TEST(concurrent_ingest_with_background_flush)
{
    char dir[512];
    REQUIRE(qr_test_tmpdir("db_conc", dir, sizeof dir));
    db_opts o = small_opts();
    o.wal.fsync_policy = WAL_FSYNC_ALWAYS; /* group commit under real fsyncs */
    o.flush_rows = 2000;
    db_t *db = NULL;
    qr_diag d;
    qr_diag_init(&d);
    REQUIRE(db_open(dir, &o, &db, NULL, &d) == 0);
    ingest_thread th[4];
    pthread_t tid[4];
    for (int t = 0; t < 4; t++) {
        memset(&th[t], 0, sizeof th[t]);
        th[t].db = db;
        th[t].seed = 100 + (uint64_t)t;
        th[t].batches = 25;
        pthread_create(&tid[t], NULL, ingest_main, &th[t]);
    }
    /* snapshots taken during ingest always see whole batches, never a row twice */
    for (int n = 0; n < 20; n++) {
        rowset got = {0};
        size_t segs;
        CHECK_EQ_INT(canon_snapshot(db, NULL, &got, &segs), 0);
        CHECK_EQ_INT(got.count % 200, 0);
        rowset_free(&got);
    }
    rowset all = {0};
    for (int t = 0; t < 4; t++) {
        pthread_join(tid[t], NULL);
        CHECK_EQ_INT(th[t].failures, 0);
        for (size_t r = 0; r < th[t].rows.count; r++) rowset_add(&all, th[t].rows.rows[r]);
        free(th[t].rows.rows);
    }
    rowset got = {0};
    size_t segs = 0;
    CHECK_EQ_INT(canon_snapshot(db, NULL, &got, &segs), 0);
    CHECK(rowsets_equal(&all, &got));
    rowset_free(&got);
    db_stats st;
    db_get_stats(db, &st);
    CHECK(st.wal.fsyncs > 0);
    db_close(db);
    /* reopened, the same rows: now all in segments */
    REQUIRE(db_open(dir, &o, &db, NULL, &d) == 0);
    memset(&got, 0, sizeof got);
    CHECK_EQ_INT(canon_snapshot(db, NULL, &got, &segs), 0);
    CHECK(rowsets_equal(&all, &got));
    CHECK(segs > 0);
    rowset_free(&got);
    db_close(db);
    rowset_free(&all);
    qr_test_rmdir(dir);
}

/* Observers see every durable batch exactly once, with its LSN; a
 * synchronized snapshot splits the stream exactly: rows before the callback are in the
 * snapshot, rows after it were observed after it — none in both, none in neither. */
typedef struct observed {
    uint64_t batches, rows;
    bool armed;          /* set by the sync callback (under the tenant lock) */
    uint64_t rows_after; /* rows observed after arming */
    int zero_lsn;
    char tenant[64];
} observed;

static void observe(void *ctx, const char *tenant, const qr_batch *b, uint64_t lsn)
{
    observed *o = ctx;
    o->batches++;
    o->rows += b->count;
    if (o->armed) o->rows_after += b->count;
    if (lsn == 0) o->zero_lsn++; /* (LSN order may differ from memtable order across threads) */
    snprintf(o->tenant, sizeof o->tenant, "%s", tenant);
}

static void arm(void *ctx) { ((observed *)ctx)->armed = true; }

TEST(observer_and_synchronized_snapshot)
{
    char dir[512];
    REQUIRE(qr_test_tmpdir("db_obs", dir, sizeof dir));
    db_opts o = small_opts();
    o.flush_rows = 1500;
    db_t *db = NULL;
    qr_diag d;
    qr_diag_init(&d);
    REQUIRE(db_open(dir, &o, &db, NULL, &d) == 0);
    CHECK_EQ_STR(db_dir(db), dir);
    observed obs;
    memset(&obs, 0, sizeof obs);
    REQUIRE(db_observer_add(db, observe, &obs) == 0);
    ingest_thread th[3];
    pthread_t tid[3];
    for (int t = 0; t < 3; t++) {
        memset(&th[t], 0, sizeof th[t]);
        th[t].db = db;
        th[t].seed = 300 + (uint64_t)t;
        th[t].batches = 20;
        pthread_create(&tid[t], NULL, ingest_main, &th[t]);
    }
    struct timespec pause = {0, 3 * 1000 * 1000};
    nanosleep(&pause, NULL); /* let some batches land first (either way the split must hold) */
    db_snapshot *snap = NULL;
    REQUIRE(db_snapshot_open_sync(db, NULL, arm, &obs, &snap) == 0);
    uint64_t snap_rows = 0;
    for (size_t pi = 0; pi < db_snapshot_part_count(snap); pi++)
        snap_rows += db_snapshot_part(snap, pi)->row_count;
    db_snapshot_free(snap);
    for (int t = 0; t < 3; t++) {
        pthread_join(tid[t], NULL);
        CHECK_EQ_INT(th[t].failures, 0);
        rowset_free(&th[t].rows);
    }
    CHECK_EQ_INT(obs.batches, 60);
    CHECK_EQ_INT(obs.rows, 60 * 200);
    CHECK_EQ_INT(obs.zero_lsn, 0);
    CHECK_EQ_STR(obs.tenant, DB_DEFAULT_TENANT);
    CHECK(obs.armed);
    CHECK_EQ_INT(snap_rows + obs.rows_after, 60 * 200);
    /* a synchronized snapshot of a new tenant creates it: its first batch is observed after */
    observed fresh;
    memset(&fresh, 0, sizeof fresh);
    REQUIRE(db_snapshot_open_sync(db, "newcomer", arm, &fresh, &snap) == 0);
    CHECK(fresh.armed);
    CHECK_EQ_INT(db_snapshot_part_count(snap), 0);
    db_snapshot_free(snap);
    db_close(db);

    /* WAL replay at open is not observed (state is rebuilt from snapshots instead) */
    o.no_flush_on_close = true;
    REQUIRE(db_open(dir, &o, &db, NULL, &d) == 0);
    memset(&obs, 0, sizeof obs);
    REQUIRE(db_observer_add(db, observe, &obs) == 0);
    for (int n = 1; n < DB_MAX_OBSERVERS; n++)
        CHECK_EQ_INT(db_observer_add(db, observe, &fresh), 0);
    CHECK_EQ_INT(db_observer_add(db, observe, &fresh), QR_ELIMIT);
    qr_batch b;
    qr_batch_init(&b);
    uint64_t rng = 9;
    for (int k = 0; k < 10; k++) add_random_event(&b, &rng, 1749945600000000000LL);
    CHECK_EQ_INT(db_ingest(db, NULL, &b, &d), 0);
    db_close(db);
    REQUIRE(db_open(dir, &o, &db, NULL, &d) == 0);
    observed replay;
    memset(&replay, 0, sizeof replay);
    REQUIRE(db_observer_add(db, observe, &replay) == 0);
    CHECK_EQ_INT(replay.batches, 0);
    db_close(db);
    CHECK_EQ_INT(obs.rows, 10);
    qr_batch_fini(&b);
    qr_test_rmdir(dir);
}

/* A clean close removes the WAL (every row is in segments); LSNs must still grow after the
 * next open, or rows appended then and replayed after a crash would look already flushed. */
TEST(lsn_continues_after_clean_close_removes_wal)
{
    char dir[512], wal_dir[600];
    REQUIRE(qr_test_tmpdir("db_lsn", dir, sizeof dir));
    snprintf(wal_dir, sizeof wal_dir, "%s/wal", dir);
    db_opts o = small_opts();
    db_t *db = NULL;
    qr_diag d;
    qr_diag_init(&d);
    qr_batch b;
    qr_batch_init(&b);
    uint64_t rng = 9;
    rowset expect = {0};
    for (int round = 0; round < 3; round++) {
        db_opts again = o;
        again.no_flush_on_close = round == 2; /* the last close "crashes" */
        REQUIRE(db_open(dir, &again, &db, NULL, &d) == 0);
        for (int n = 0; n < 5; n++) {
            qr_batch_reset(&b);
            for (int k = 0; k < 50; k++) add_random_event(&b, &rng, 1749945600000000000LL);
            CHECK_EQ_INT(db_ingest(db, NULL, &b, &d), 0);
            canon_batch(&b, &expect);
        }
        db_close(db);
        char cmd[800];
        snprintf(cmd, sizeof cmd, "ls '%s' | grep -q '\\.wal$'", wal_dir);
        bool has_wal = system(cmd) == 0;
        CHECK_EQ_INT(has_wal, round == 2);
    }
    REQUIRE(db_open(dir, &o, &db, NULL, &d) == 0);
    rowset got = {0};
    size_t segs;
    CHECK_EQ_INT(canon_snapshot(db, NULL, &got, &segs), 0);
    CHECK(rowsets_equal(&expect, &got));
    db_close(db);
    rowset_free(&got);
    rowset_free(&expect);
    qr_batch_fini(&b);
    qr_test_rmdir(dir);
}

/* The WAL's zstd level is a writer's choice: records written at the old default (-1) replay
 * under the new one, and the other way round, with every row back. */
TEST(wal_records_of_any_level_replay)
{
    char dir[512];
    REQUIRE(qr_test_tmpdir("db_wal_level", dir, sizeof dir));
    qr_diag d;
    qr_diag_init(&d);
    qr_batch b;
    qr_batch_init(&b);
    uint64_t rng = 21;
    rowset expect = {0};
    const int levels[3] = {-1, 0, 3}; /* 0 = DB_WAL_ZSTD_LEVEL */
    db_t *db = NULL;
    for (int round = 0; round < 3; round++) {
        db_opts o = small_opts();
        o.wal.zstd_level = levels[round];
        o.no_flush_on_close = true; /* rows stay in the WAL only */
        o.flush_age_ms = 600000;
        REQUIRE(db_open(dir, &o, &db, NULL, &d) == 0);
        rowset got = {0};
        size_t segs = 1;
        CHECK_EQ_INT(canon_snapshot(db, NULL, &got, &segs), 0);
        CHECK_EQ_INT((int)segs, 0);
        CHECK(rowsets_equal(&expect, &got)); /* the earlier rounds' rows, replayed */
        rowset_free(&got);
        qr_batch_reset(&b);
        for (int k = 0; k < 300; k++) add_random_event(&b, &rng, 1749945600000000000LL);
        CHECK_EQ_INT(db_ingest(db, NULL, &b, &d), 0);
        canon_batch(&b, &expect);
        db_close(db);
    }
    db_opts o = small_opts();
    REQUIRE(db_open(dir, &o, &db, NULL, &d) == 0);
    rowset got = {0};
    size_t segs;
    CHECK_EQ_INT(canon_snapshot(db, NULL, &got, &segs), 0);
    CHECK_EQ_INT((int)got.count, 900);
    CHECK(rowsets_equal(&expect, &got));
    db_close(db);
    rowset_free(&got);
    rowset_free(&expect);
    qr_batch_fini(&b);
    qr_test_rmdir(dir);
}

/* --- compaction ---------------------------------------------------------------------------- */

static int tok_collect(void *ctx, const char *tok, size_t len, size_t offset)
{
    (void)offset;
    const char *term = ctx;
    return strlen(term) == len && memcmp(term, tok, len) == 0;
}

/* "ts|msg" of every row of b whose msg has the token. */
static void term_rows_batch(const qr_batch *b, const char *term, rowset *out)
{
    for (size_t row = 0; row < b->count; row++) {
        const qr_event *e = &b->events[row];
        if (!qr_tokenize(e->msg.ptr, e->msg.len, tok_collect, (void *)term)) continue;
        char *s = malloc(e->msg.len + 32);
        snprintf(s, e->msg.len + 32, "%lld|%.*s", (long long)e->ts_ns, (int)e->msg.len, e->msg.ptr);
        rowset_add(out, s);
    }
}

/* The same through the snapshot's postings (segments only: memtables have none). */
static int term_rows_snapshot(db_t *db, const char *term, rowset *out)
{
    db_snapshot *snap;
    if (db_snapshot_open(db, NULL, &snap)) return -1;
    qr_arena a;
    qr_arena_init(&a, 1 << 20, 0);
    int bad = 0;
    for (size_t pi = 0; pi < db_snapshot_part_count(snap) && !bad; pi++) {
        qr_part *p = db_snapshot_part(snap, pi);
        if (p->kind != QR_PART_SEGMENT) continue;
        roaring_bitmap_t *bm = NULL;
        qr_diag d;
        qr_diag_init(&d);
        bad |= qr_part_postings(p, term, strlen(term), &bm, &d);
        for (uint32_t bi = 0; bm && bi < p->block_count && !bad; bi++) {
            qr_block_meta m;
            qr_column ts, msg;
            bad |= qr_part_block_meta(p, bi, &m);
            bad |= qr_part_load_column(p, bi, QR_COL_TS, 0, &a, &ts, &d);
            bad |= qr_part_load_column(p, bi, QR_COL_MSG, 0, &a, &msg, &d);
            for (uint32_t r = 0; !bad && r < m.row_count; r++) {
                if (!roaring_bitmap_contains(bm, m.first_row + r)) continue;
                char *s = malloc(msg.strs[r].len + 32);
                snprintf(s, msg.strs[r].len + 32, "%lld|%.*s", (long long)ts.i64[r],
                         (int)msg.strs[r].len, msg.strs[r].ptr);
                rowset_add(out, s);
            }
            qr_arena_reset(&a);
        }
        if (bm) roaring_bitmap_free(bm);
    }
    qr_arena_fini(&a);
    db_snapshot_free(snap);
    return bad ? -1 : 0;
}

static size_t count_seg_files(const char *dir)
{
    char cmd[800];
    snprintf(cmd, sizeof cmd, "ls '%s/tenants/default' | grep -c '\\.qseg$'", dir);
    FILE *f = popen(cmd, "r");
    unsigned long n = 0;
    if (f) {
        if (fscanf(f, "%lu", &n) != 1) n = 0;
        pclose(f);
    }
    return n;
}

/* Compaction on demand (five 1,200-row segments, merges of at most 4,000 rows: 3 + 2): every row
 * and every term's rows (ids seen once, words, numbers, absent terms) read back the same; a
 * snapshot taken before keeps the replaced files alive and readable until it is freed; then only
 * the catalog's files remain; reopen and check agree. Then background compaction, with ingest going
 * on. */
TEST(compaction_keeps_rows_terms_and_pinned_snapshots)
{
    char dir[512];
    REQUIRE(qr_test_tmpdir("db_compact", dir, sizeof dir));
    db_opts o = small_opts();
    o.compact_off = true;
    o.compact_rows = 4000;
    db_t *db = NULL;
    qr_diag d;
    qr_diag_init(&d);
    REQUIRE(db_open(dir, &o, &db, NULL, &d) == 0);
    qr_batch all, b;
    qr_batch_init(&all);
    qr_batch_init(&b);
    uint64_t rng = 4242;
    rowset expect = {0};
    for (int step = 0; step < 10; step++) {
        qr_batch_reset(&b);
        for (int k = 0; k < 600; k++) add_random_event(&b, &rng, 1749945600000000000LL);
        for (size_t k = 0; k < b.count; k++) REQUIRE(qr_batch_copy_event(&all, &b, k) == 0);
        CHECK_EQ_INT(db_ingest(db, NULL, &b, &d), 0);
        canon_batch(&b, &expect);
        if (step % 2) CHECK_EQ_INT(db_flush(db, &d), 0);
    }
    /* probe terms: template words, numbers that occur once or a few times, absent ones */
    const char *probes[] = {"timeout",    "card",     "retry",
                            "42",         "id",       "q",
                            "get",        "api",      "\xe6\x97\xa5\xe6\x9c\xac",
                            "nosuchterm", "99999999", NULL,
                            NULL,         NULL,       NULL,
                            NULL,         NULL};
    char nums[6][24];
    for (int k = 0; k < 6; k++) {
        /* tokens of random rows' msgs: mostly numbers seen in one block */
        const qr_event *e = &all.events[qr_test_rand(&rng) % all.count];
        const char *p = e->msg.ptr, *end = p + e->msg.len;
        const char *digit = p;
        while (digit < end && !(*digit >= '0' && *digit <= '9')) digit++;
        size_t n = 0;
        while (digit + n < end && digit[n] >= '0' && digit[n] <= '9' && n < 20) n++;
        snprintf(nums[k], sizeof nums[k], "%.*s", (int)(n ? n : 2), n ? digit : "ok");
        probes[11 + k] = nums[k];
    }
    rowset want_terms[17] = {{0}};
    for (int t = 0; t < 17 && probes[t]; t++) term_rows_batch(&all, probes[t], &want_terms[t]);

    size_t files_before = count_seg_files(dir);
    CHECK(files_before == 5);
    db_snapshot *pinned;
    REQUIRE(db_snapshot_open(db, NULL, &pinned) == 0);
    db_compact_report r;
    CHECK_EQ_INT(db_compact(db, NULL, &r, &d), 0);
    CHECK(r.merges == 2 && r.segments_in == 5 && r.rows == 6000);
    CHECK(r.bytes_out < r.bytes_in);
    CHECK(count_seg_files(dir) == 7); /* the pinned snapshot still reads the old files */
    size_t pinned_rows = 0;
    for (size_t pi = 0; pi < db_snapshot_part_count(pinned); pi++) {
        qr_part *p = db_snapshot_part(pinned, pi);
        qr_arena a;
        qr_arena_init(&a, 1 << 20, 0);
        for (uint32_t bi = 0; bi < p->block_count; bi++) {
            qr_column msg;
            CHECK_EQ_INT(qr_part_load_column(p, bi, QR_COL_MSG, 0, &a, &msg, &d), 0);
            pinned_rows += msg.row_count;
            qr_arena_reset(&a);
        }
        qr_arena_fini(&a);
    }
    CHECK(pinned_rows == 6000);
    db_snapshot_free(pinned);
    CHECK(count_seg_files(dir) == 2);

    rowset got = {0};
    size_t segs = 0;
    CHECK_EQ_INT(canon_snapshot(db, NULL, &got, &segs), 0);
    CHECK(segs == 2);
    CHECK(rowsets_equal(&expect, &got));
    rowset_free(&got);
    for (int t = 0; t < 17 && probes[t]; t++) {
        rowset gt = {0};
        CHECK_EQ_INT(term_rows_snapshot(db, probes[t], &gt), 0);
        if (!rowsets_equal(&want_terms[t], &gt)) {
            fprintf(stderr, "term \"%s\" differs\n", probes[t]);
            qr_test_cur_failures++;
        }
        rowset_free(&gt);
    }
    /* nothing left to merge: a second call is a no-op */
    CHECK_EQ_INT(db_compact(db, NULL, &r, &d), 0);
    CHECK(r.merges == 0);
    db_close(db);

    db_check_report cr;
    CHECK_EQ_INT(db_check(dir, &cr, &d), 0);
    CHECK(cr.ok && cr.segments == 2 && cr.events == 6000);

    /* background: small flushes pile up and get merged while ingest goes on */
    db_opts bg = small_opts();
    bg.compact_min_segments = 3;
    bg.compact_rows = 4000;
    REQUIRE(db_open(dir, &bg, &db, NULL, &d) == 0);
    for (int step = 0; step < 8; step++) {
        qr_batch_reset(&b);
        for (int k = 0; k < 500; k++) add_random_event(&b, &rng, 1749945600000000000LL);
        CHECK_EQ_INT(db_ingest(db, NULL, &b, &d), 0);
        canon_batch(&b, &expect);
        CHECK_EQ_INT(db_flush(db, &d), 0);
    }
    db_stats st;
    for (int wait = 0; wait < 400; wait++) {
        db_get_stats(db, &st);
        if (st.compactions >= 2) break;
        usleep(25 * 1000);
    }
    CHECK(st.compactions >= 2);
    CHECK_EQ_INT(canon_snapshot(db, NULL, &got, &segs), 0);
    CHECK(rowsets_equal(&expect, &got));
    rowset_free(&got);
    db_close(db);
    REQUIRE(db_open(dir, &o, &db, NULL, &d) == 0);
    CHECK_EQ_INT(canon_snapshot(db, NULL, &got, &segs), 0);
    CHECK(rowsets_equal(&expect, &got));
    CHECK(count_seg_files(dir) == segs);
    rowset_free(&got);
    db_close(db);

    for (int t = 0; t < 17; t++) rowset_free(&want_terms[t]);
    rowset_free(&expect);
    qr_batch_fini(&all);
    qr_batch_fini(&b);
    qr_test_rmdir(dir);
}

/* Memory stays bounded when ingest outruns the flush thread: a full active memtable is frozen
 * by the ingest path (and ingest waits while max_frozen are pending), so the rows held in
 * memtables never exceed (max_frozen + 1) full memtables plus the batches in flight. */
TEST(memtables_stay_bounded_when_ingest_outruns_flush)
{
    char dir[512];
    REQUIRE(qr_test_tmpdir("db_bound", dir, sizeof dir));
    db_opts o = small_opts();
    o.flush_rows = 2000;
    o.max_frozen = 2;
    db_t *db = NULL;
    qr_diag d;
    qr_diag_init(&d);
    REQUIRE(db_open(dir, &o, &db, NULL, &d) == 0);
    ingest_thread th[4];
    pthread_t tid[4];
    for (int t = 0; t < 4; t++) {
        memset(&th[t], 0, sizeof th[t]);
        th[t].db = db;
        th[t].seed = 500 + (uint64_t)t;
        th[t].batches = 150; /* 4 x 150 x 200 = 120,000 rows */
        pthread_create(&tid[t], NULL, ingest_main, &th[t]);
    }
    uint64_t most = 0;
    for (int k = 0; k < 4000; k++) {
        db_stats st;
        db_get_stats(db, &st);
        if (st.memtable_rows > most) most = st.memtable_rows;
        struct timespec pause = {0, 200 * 1000};
        nanosleep(&pause, NULL);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(tid[t], NULL);
        CHECK_EQ_INT(th[t].failures, 0);
        rowset_free(&th[t].rows);
    }
    CHECK(most <= 3 * (2000 + 4 * 200));
    if (most > 3 * (2000 + 4 * 200))
        fprintf(stderr, "  memtable rows peaked at %llu\n", (unsigned long long)most);
    db_stats st;
    db_get_stats(db, &st);
    CHECK(st.flushes > 0);
    db_close(db);
    qr_test_rmdir(dir);
}

int main(void)
{
    RUN(lsn_continues_after_clean_close_removes_wal);
    RUN(wal_records_of_any_level_replay);
    RUN(model_random_events_read_back_equal);
    RUN(directory_lock_and_tenant_names);
    RUN(concurrent_ingest_with_background_flush);
    RUN(observer_and_synchronized_snapshot);
    RUN(memtables_stay_bounded_when_ingest_outruns_flush);
    RUN(compaction_keeps_rows_terms_and_pinned_snapshots);
    QR_TEST_MAIN_END();
}

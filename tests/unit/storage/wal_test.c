/* wal: append/replay round trips, group commit under threads, rotation and release, torn
 * tails and corruption at every offset, poisoning after a failed write, policies, limits.
 *
 * With QR_WAL_WRITE_CORPUS=DIR set, main instead writes seed inputs for the fuzzers into
 * DIR/wal_batch_fuzz/ and DIR/wal_file_fuzz/ (how the committed corpora were made). */
#include "batch_gen.h"
#include "qr_test.h"

#include <stdatomic.h>
#include "storage/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <time.h>

/* ------------------------------------------------------------------ helpers */

typedef struct expect {
    uint64_t lsn;
    uint64_t seed;
    size_t count;
    char tenant[QR_TENANT_MAX_BYTES + 1];
} expect;

/* Replay checker: the n-th replayed record must equal exp[n] exactly (LSN, tenant, events). */
typedef struct checker {
    const expect *exp;
    size_t exp_count;
    size_t seen;
    size_t mismatches;
    qr_batch want;
    uint64_t first_lsn;
} checker;

static void checker_init(checker *c, const expect *exp, size_t exp_count)
{
    memset(c, 0, sizeof *c);
    c->exp = exp;
    c->exp_count = exp_count;
    qr_batch_init(&c->want);
}

static void checker_fini(checker *c) { qr_batch_fini(&c->want); }

static int checker_cb(void *ctx, uint64_t lsn, const char *tenant, qr_batch *batch)
{
    checker *c = ctx;
    if (c->seen == 0) c->first_lsn = lsn;
    if (c->seen >= c->exp_count) {
        fprintf(stderr, "replay: unexpected record lsn %llu\n", (unsigned long long)lsn);
        c->mismatches++;
        c->seen++;
        return 0;
    }
    const expect *e = &c->exp[c->seen++];
    qr_batch_reset(&c->want);
    batch_gen_fill(&c->want, e->seed, e->count);
    if (lsn != e->lsn || strcmp(tenant, e->tenant) != 0 || !batch_gen_equal(&c->want, batch)) {
        fprintf(stderr, "replay: record %zu (lsn %llu, want %llu, tenant %s) differs\n",
                c->seen - 1, (unsigned long long)lsn, (unsigned long long)e->lsn, tenant);
        c->mismatches++;
    }
    return 0;
}

static int append_gen(wal_t *w, const char *tenant, uint64_t seed, size_t count, uint64_t *lsn)
{
    qr_batch b;
    qr_batch_init(&b);
    batch_gen_fill(&b, seed, count);
    qr_diag d;
    qr_diag_init(&d);
    int rc = wal_append(w, tenant, &b, lsn, &d);
    if (rc && rc != QR_EIO && rc != QR_EINVAL) fprintf(stderr, "append: %s\n", d.msg);
    qr_batch_fini(&b);
    return rc;
}

static wal_t *open_wal(const char *dir, wal_fsync_policy policy, uint64_t file_bytes)
{
    wal_opts o;
    memset(&o, 0, sizeof o);
    o.fsync_policy = policy;
    o.file_bytes = file_bytes;
    o.fsync_interval_ms = 5;
    wal_t *w = NULL;
    qr_diag d;
    qr_diag_init(&d);
    if (wal_open(dir, &o, &w, &d) != 0) fprintf(stderr, "wal_open: %s\n", d.msg);
    return w;
}

/* Opens dir, replays into a checker over exp, returns the wal (NULL on failure). */
static wal_t *reopen_check(const char *dir, wal_fsync_policy policy, uint64_t file_bytes,
                           const expect *exp, size_t exp_count, checker *c, wal_replay_report *rep)
{
    checker_init(c, exp, exp_count);
    wal_t *w = open_wal(dir, policy, file_bytes);
    if (!w) return NULL;
    qr_diag d;
    qr_diag_init(&d);
    int rc = wal_replay(w, checker_cb, c, rep, &d);
    if (rc) {
        fprintf(stderr, "wal_replay: %d %s\n", rc, d.msg);
        wal_close(w);
        return NULL;
    }
    return w;
}

/* WAL file first LSNs in dir, ascending; returns the count. */
static size_t list_wal_files(const char *dir, uint64_t *out, size_t cap)
{
    DIR *dh = opendir(dir);
    size_t count = 0;
    if (!dh) return 0;
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n != 24 || strcmp(de->d_name + 20, ".wal") != 0) continue;
        if (count < cap) out[count] = strtoull(de->d_name, NULL, 10);
        count++;
    }
    closedir(dh);
    for (size_t a = 1; a < count && a < cap; a++)
        for (size_t b = a; b > 0 && out[b - 1] > out[b]; b--) {
            uint64_t t = out[b];
            out[b] = out[b - 1];
            out[b - 1] = t;
        }
    return count;
}

static void wal_file_path(char *buf, size_t cap, const char *dir, uint64_t lsn)
{
    snprintf(buf, cap, "%s/%020llu.wal", dir, (unsigned long long)lsn);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    *len = fread(buf, 1, (size_t)n, f);
    fclose(f);
    return buf;
}

static int write_file(const char *path, const uint8_t *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = len ? fwrite(p, 1, len, f) : 0;
    fclose(f);
    return n == len ? 0 : -1;
}

/* Removes every file in dir (no subdirectories in WAL dirs). */
static void dir_clear(const char *dir)
{
    DIR *dh = opendir(dir);
    if (!dh) return;
    struct dirent *de;
    char path[4200];
    while ((de = readdir(dh)) != NULL) {
        if (de->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(dh);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void set_expect(expect *e, uint64_t lsn, const char *tenant, uint64_t seed, size_t count)
{
    e->lsn = lsn;
    e->seed = seed;
    e->count = count;
    snprintf(e->tenant, sizeof e->tenant, "%s", tenant);
}

/* ------------------------------------------------------------------ round trip */

TEST(append_replay_roundtrip)
{
    char dir[512];
    REQUIRE(qr_test_tmpdir("wal_roundtrip", dir, sizeof dir));
    static const char *const tenants[] = {"acme", "globex", "initech-prod-eu"};
    enum { N = 60 };
    expect exp[N + 1];
    wal_t *w = open_wal(dir, WAL_FSYNC_ALWAYS, 0);
    REQUIRE(w);
    uint64_t events = 0;
    for (uint64_t seed = 1; seed <= N; seed++) {
        size_t count = seed % 7 == 0 ? 0 : seed == 13 ? 2500 : (size_t)(seed * 53 % 400);
        const char *tenant = tenants[seed % 3];
        uint64_t lsn = 0;
        CHECK_EQ_INT(append_gen(w, tenant, seed, count, &lsn), 0);
        CHECK_EQ_INT(lsn, seed); /* LSNs start at 1, consecutive */
        set_expect(&exp[seed - 1], lsn, tenant, seed, count);
        events += count;
    }
    wal_stats st;
    wal_get_stats(w, &st);
    CHECK_EQ_INT(st.appends, N);
    CHECK_EQ_INT(st.last_lsn, N);
    CHECK(st.fsyncs >= 1 && st.fsyncs <= N);
    CHECK(st.bytes_written < st.bytes_raw); /* compressed */
    wal_close(w);

    wal_replay_report rep;
    qr_diag d;
    qr_diag_init(&d);
    CHECK_EQ_INT(wal_verify_dir(dir, &rep, &d), 0);
    CHECK_EQ_INT(rep.records, N);

    checker c;
    w = reopen_check(dir, WAL_FSYNC_ALWAYS, 0, exp, N, &c, &rep);
    REQUIRE(w);
    CHECK_EQ_INT(c.seen, N);
    CHECK_EQ_INT(c.mismatches, 0);
    CHECK_EQ_INT(rep.records, N);
    CHECK_EQ_INT(rep.events, events);
    CHECK_EQ_INT(rep.last_lsn, N);
    CHECK_EQ_INT(rep.files, 1);
    CHECK_EQ_INT(rep.skipped_offset, -1);
    CHECK_EQ_STR(rep.skipped_file, "");
    checker_fini(&c);
    /* appends continue after replay */
    uint64_t lsn = 0;
    CHECK_EQ_INT(append_gen(w, "acme", 1000, 5, &lsn), 0);
    CHECK_EQ_INT(lsn, N + 1);
    set_expect(&exp[N], lsn, "acme", 1000, 5);
    wal_close(w);
    w = reopen_check(dir, WAL_FSYNC_ALWAYS, 0, exp, N + 1, &c, &rep);
    REQUIRE(w);
    CHECK_EQ_INT(c.seen, N + 1);
    CHECK_EQ_INT(c.mismatches, 0);
    checker_fini(&c);
    wal_close(w);
    qr_test_rmdir(dir);
}

/* ------------------------------------------------------------------ concurrency */

enum { CONC_THREADS = 8, CONC_PER_THREAD = 100 };

typedef struct conc_arg {
    wal_t *w;
    int thread_idx;
    uint64_t lsns[CONC_PER_THREAD];
    int failures;
} conc_arg;

static void *conc_main(void *p)
{
    conc_arg *a = p;
    char tenant[16];
    snprintf(tenant, sizeof tenant, "t%d", a->thread_idx % 3);
    for (int seq = 0; seq < CONC_PER_THREAD; seq++) {
        uint64_t seed = (uint64_t)a->thread_idx * 100000 + (uint64_t)seq;
        if (append_gen(a->w, tenant, seed, (size_t)(1 + seq % 30), &a->lsns[seq]) != 0)
            a->failures++;
    }
    return NULL;
}

typedef struct release_arg {
    wal_t *w;
    uint64_t release_lsn;
    int rc;
} release_arg;

static void *release_main(void *p)
{
    release_arg *a = p;
    for (;;) {
        wal_stats st;
        wal_get_stats(a->w, &st);
        if (st.last_lsn >= a->release_lsn * 2) break;
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    a->rc = wal_release(a->w, a->release_lsn, NULL);
    return NULL;
}

TEST(concurrent_appends_group_commit)
{
    char dir[512];
    REQUIRE(qr_test_tmpdir("wal_conc", dir, sizeof dir));
    /* small files: rotations happen inside groups, a release runs concurrently */
    const uint64_t file_bytes = 64 * 1024;
    wal_t *w = open_wal(dir, WAL_FSYNC_ALWAYS, file_bytes);
    REQUIRE(w);
    static conc_arg args[CONC_THREADS];
    pthread_t threads[CONC_THREADS];
    release_arg rel = {w, 200, -1};
    pthread_t rel_thread;
    REQUIRE(pthread_create(&rel_thread, NULL, release_main, &rel) == 0);
    for (int t = 0; t < CONC_THREADS; t++) {
        memset(&args[t], 0, sizeof args[t]);
        args[t].w = w;
        args[t].thread_idx = t;
        REQUIRE(pthread_create(&threads[t], NULL, conc_main, &args[t]) == 0);
    }
    for (int t = 0; t < CONC_THREADS; t++) pthread_join(threads[t], NULL);
    pthread_join(rel_thread, NULL);
    CHECK_EQ_INT(rel.rc, 0);

    enum { TOTAL = CONC_THREADS * CONC_PER_THREAD };
    static expect exp[TOTAL];
    static bool taken[TOTAL + 1];
    memset(taken, 0, sizeof taken);
    int dupes = 0;
    for (int t = 0; t < CONC_THREADS; t++) {
        CHECK_EQ_INT(args[t].failures, 0);
        char tenant[16];
        snprintf(tenant, sizeof tenant, "t%d", t % 3);
        for (int seq = 0; seq < CONC_PER_THREAD; seq++) {
            uint64_t lsn = args[t].lsns[seq];
            if (lsn < 1 || lsn > TOTAL || taken[lsn]) {
                dupes++;
                continue;
            }
            /* one thread's appends are ordered */
            if (seq > 0) CHECK(lsn > args[t].lsns[seq - 1]);
            taken[lsn] = true;
            set_expect(&exp[lsn - 1], lsn, tenant, (uint64_t)t * 100000 + (uint64_t)seq,
                       (size_t)(1 + seq % 30));
        }
    }
    CHECK_EQ_INT(dupes, 0);
    wal_stats st;
    wal_get_stats(w, &st);
    CHECK_EQ_INT(st.appends, TOTAL);
    CHECK_EQ_INT(st.last_lsn, TOTAL);
    CHECK(st.fsyncs <= st.appends + st.files + st.files_deleted);
    printf("# group commit: %llu appends, %llu writes, %llu fsyncs, %llu files (%llu released)\n",
           (unsigned long long)st.appends, (unsigned long long)st.group_writes,
           (unsigned long long)st.fsyncs, (unsigned long long)st.files,
           (unsigned long long)st.files_deleted);
    wal_close(w);

    /* The release removed exactly the files whose records are all <= release_lsn. */
    uint64_t firsts[256];
    size_t file_count = list_wal_files(dir, firsts, 256);
    REQUIRE(file_count >= 1 && file_count < 256);
    CHECK(firsts[0] <= rel.release_lsn + 1);
    if (file_count > 1) CHECK(firsts[1] - 1 > rel.release_lsn);
    /* every file but the last respects file_bytes unless it holds a single record */
    for (size_t idx = 0; idx + 1 < file_count; idx++) {
        char path[4200];
        wal_file_path(path, sizeof path, dir, firsts[idx]);
        CHECK(file_size(path) <= file_bytes || firsts[idx + 1] == firsts[idx] + 1);
    }

    checker c;
    wal_replay_report rep;
    uint64_t first = firsts[0];
    w = reopen_check(dir, WAL_FSYNC_ALWAYS, file_bytes, exp + (first - 1), TOTAL - (first - 1), &c,
                     &rep);
    REQUIRE(w);
    CHECK_EQ_INT(c.first_lsn, first);
    CHECK_EQ_INT(c.seen, TOTAL - (first - 1));
    CHECK_EQ_INT(c.mismatches, 0);
    CHECK_EQ_INT(rep.skipped_offset, -1);
    checker_fini(&c);
    wal_close(w);
    qr_test_rmdir(dir);
}

/* ------------------------------------------------------------------ rotation and release */

TEST(rotation_and_release)
{
    char dir[512];
    REQUIRE(qr_test_tmpdir("wal_rotate", dir, sizeof dir));
    const uint64_t file_bytes = 2048;
    enum { N = 40 };
    expect exp[N + 1];
    wal_t *w = open_wal(dir, WAL_FSYNC_NEVER, file_bytes);
    REQUIRE(w);
    for (uint64_t seed = 1; seed <= N; seed++) {
        /* one record far larger than a file: it gets a file of its own */
        size_t count = seed == 20 ? 400 : 8;
        uint64_t lsn = 0;
        CHECK_EQ_INT(append_gen(w, "acme", seed, count, &lsn), 0);
        set_expect(&exp[seed - 1], lsn, "acme", seed, count);
    }
    uint64_t firsts[128];
    size_t file_count = list_wal_files(dir, firsts, 128);
    REQUIRE(file_count >= 5 && file_count < 128);
    CHECK_EQ_INT(firsts[0], 1);
    wal_stats st;
    wal_get_stats(w, &st);
    CHECK_EQ_INT(st.files, file_count);
    for (size_t idx = 0; idx + 1 < file_count; idx++) {
        char path[4200];
        wal_file_path(path, sizeof path, dir, firsts[idx]);
        CHECK(file_size(path) <= file_bytes || firsts[idx + 1] == firsts[idx] + 1);
    }
    /* release 17: exactly the files whose last LSN (next file's first - 1) <= 17 go */
    const uint64_t rel = 17;
    size_t expect_drop = 0;
    while (expect_drop + 1 < file_count && firsts[expect_drop + 1] - 1 <= rel) expect_drop++;
    CHECK(expect_drop >= 1);
    qr_diag d;
    qr_diag_init(&d);
    CHECK_EQ_INT(wal_release(w, rel, &d), 0);
    uint64_t after[128];
    size_t after_count = list_wal_files(dir, after, 128);
    CHECK_EQ_INT(after_count, file_count - expect_drop);
    for (size_t idx = 0; idx < after_count && idx + expect_drop < file_count; idx++)
        CHECK_EQ_INT(after[idx], firsts[idx + expect_drop]);
    CHECK(after[0] <= rel + 1);
    /* releasing the same LSN again removes nothing */
    CHECK_EQ_INT(wal_release(w, rel, &d), 0);
    CHECK_EQ_INT(list_wal_files(dir, after, 128), file_count - expect_drop);
    wal_close(w);

    checker c;
    wal_replay_report rep;
    uint64_t first = after[0];
    w = reopen_check(dir, WAL_FSYNC_NEVER, file_bytes, exp + (first - 1), N - (first - 1), &c,
                     &rep);
    REQUIRE(w);
    CHECK_EQ_INT(c.first_lsn, first);
    CHECK_EQ_INT(c.seen, N - (first - 1));
    CHECK_EQ_INT(c.mismatches, 0);
    checker_fini(&c);
    /* releasing everything keeps the current file; appends go on */
    CHECK_EQ_INT(wal_release(w, UINT64_MAX, &d), 0);
    CHECK_EQ_INT(list_wal_files(dir, after, 128), 1);
    uint64_t lsn = 0;
    CHECK_EQ_INT(append_gen(w, "acme", 99, 3, &lsn), 0);
    CHECK_EQ_INT(lsn, N + 1);
    wal_close(w);
    wal_replay_report vrep;
    CHECK_EQ_INT(wal_verify_dir(dir, &vrep, &d), 0);
    CHECK_EQ_INT(vrep.last_lsn, N + 1);
    qr_test_rmdir(dir);
}

/* ------------------------------------------------------------------ torn tail */

TEST(torn_tail_every_offset)
{
    char src[512], dir[512];
    REQUIRE(qr_test_tmpdir("wal_torn_src", src, sizeof src));
    REQUIRE(qr_test_tmpdir("wal_torn", dir, sizeof dir));
    enum { N = 6 };
    expect exp[N + 1];
    uint64_t ends[N]; /* end offset of each record */
    wal_t *w = open_wal(src, WAL_FSYNC_NEVER, 0);
    REQUIRE(w);
    char path[4200];
    wal_file_path(path, sizeof path, src, 1);
    for (uint64_t seed = 1; seed <= N; seed++) {
        uint64_t lsn = 0;
        CHECK_EQ_INT(append_gen(w, "acme", seed, 3, &lsn), 0);
        set_expect(&exp[seed - 1], lsn, "acme", seed, 3);
        ends[seed - 1] = file_size(path);
    }
    wal_close(w);
    size_t total = 0;
    uint8_t *orig = read_file(path, &total);
    REQUIRE(orig && total == ends[N - 1]);
    char dst[4200];
    wal_file_path(dst, sizeof dst, dir, 1);
    int bad_cases = 0;
    for (uint64_t off = 0; off < total; off++) {
        /* the file header region and the last two records, every offset */
        if (off > 48 && off < ends[N - 3]) continue;
        dir_clear(dir);
        REQUIRE(write_file(dst, orig, off) == 0);
        size_t good = 0;
        while (good < N && ends[good] <= off) good++;
        uint64_t good_end = good ? ends[good - 1] : (off >= 32 ? 32 : 0);
        /* read-only check at every offset */
        wal_replay_report rep;
        qr_diag d;
        qr_diag_init(&d);
        int vrc = wal_verify_dir(dir, &rep, &d);
        bool ok = rep.records == good && file_size(dst) == off;
        if (off == good_end) {
            ok = ok && vrc == 0 && rep.skipped_offset == -1 && rep.skipped_bytes == 0;
        } else {
            ok = ok && vrc == QR_ECORRUPT && rep.skipped_offset == (int64_t)good_end &&
                 rep.skipped_bytes == off - good_end && rep.skipped_reason[0] != 0;
        }
        /* replay (which truncates and fsyncs) at every record boundary, in the header, and
         * at every 8th offset elsewhere */
        if (!(off <= 33 || off == good_end || off == good_end + 1 || off % 8 == 0)) {
            if (!ok) {
                fprintf(stderr, "verify, torn at %llu: skip@%lld (%s)\n", (unsigned long long)off,
                        (long long)rep.skipped_offset, rep.skipped_reason);
                bad_cases++;
            }
            continue;
        }
        wal_replay_report vrep = rep;
        checker c;
        w = reopen_check(dir, WAL_FSYNC_NEVER, 0, exp, good, &c, &rep);
        REQUIRE(w);
        ok = ok && c.seen == good && c.mismatches == 0 && rep.records == good &&
             rep.skipped_offset == vrep.skipped_offset && rep.skipped_bytes == vrep.skipped_bytes;
        checker_fini(&c);
        /* the next append follows the last good record, and survives a reopen */
        uint64_t lsn = 0;
        ok = ok && append_gen(w, "globex", 500 + off, 2, &lsn) == 0 && lsn == good + 1;
        wal_close(w);
        expect exp2[N + 1];
        memcpy(exp2, exp, sizeof(expect) * good);
        set_expect(&exp2[good], good + 1, "globex", 500 + off, 2);
        w = reopen_check(dir, WAL_FSYNC_NEVER, 0, exp2, good + 1, &c, &rep);
        ok = ok && w && c.seen == good + 1 && c.mismatches == 0 && rep.skipped_offset == -1;
        checker_fini(&c);
        wal_close(w);
        if (!ok) {
            fprintf(stderr, "torn at %llu: seen/good %zu/%zu skip@%lld (%s)\n",
                    (unsigned long long)off, c.seen, good, (long long)rep.skipped_offset,
                    rep.skipped_reason);
            bad_cases++;
        }
    }
    CHECK_EQ_INT(bad_cases, 0);
    free(orig);
    qr_test_rmdir(src);
    qr_test_rmdir(dir);
}

/* ------------------------------------------------------------------ corruption */

TEST(corruption_every_offset)
{
    char src[512], dir[512];
    REQUIRE(qr_test_tmpdir("wal_corrupt_src", src, sizeof src));
    REQUIRE(qr_test_tmpdir("wal_corrupt", dir, sizeof dir));
    enum { N = 5 };
    expect exp[N];
    uint64_t ends[N];
    wal_t *w = open_wal(src, WAL_FSYNC_NEVER, 0);
    REQUIRE(w);
    char path[4200];
    wal_file_path(path, sizeof path, src, 1);
    for (uint64_t seed = 1; seed <= N; seed++) {
        uint64_t lsn = 0;
        CHECK_EQ_INT(append_gen(w, seed % 2 ? "acme" : "globex", seed, 2, &lsn), 0);
        set_expect(&exp[seed - 1], lsn, seed % 2 ? "acme" : "globex", seed, 2);
        ends[seed - 1] = file_size(path);
    }
    wal_close(w);
    size_t total = 0;
    uint8_t *orig = read_file(path, &total);
    REQUIRE(orig && total == ends[N - 1]);
    uint8_t *copy = malloc(total);
    char dst[4200];
    wal_file_path(dst, sizeof dst, dir, 1);
    int bad_cases = 0;
    static const uint8_t masks[] = {0x01, 0x80, 0xff, 0x10};
    for (size_t mask_idx = 0; mask_idx < sizeof masks; mask_idx++) {
        for (uint64_t off = 0; off < total; off++) {
            memcpy(copy, orig, total);
            copy[off] ^= masks[mask_idx];
            dir_clear(dir);
            REQUIRE(write_file(dst, copy, total) == 0);
            /* the record holding the flipped byte, and where it starts */
            size_t good = 0;
            while (good < N && ends[good] <= off) good++;
            int64_t bad_at = off < 32 ? 0 : good ? (int64_t)ends[good - 1] : 32;
            if (off < 32) good = 0;

            wal_replay_report vrep;
            qr_diag d;
            qr_diag_init(&d);
            bool ok = wal_verify_dir(dir, &vrep, &d) == QR_ECORRUPT &&
                      vrep.skipped_offset == bad_at && vrep.records == good &&
                      file_size(dst) == total; /* read-only */
            checker c;
            wal_replay_report rep;
            memset(&c, 0, sizeof c);
            memset(&rep, 0, sizeof rep);
            /* replay repairs (fsyncs): at one offset in eight, the mask rotating */
            if (off % (8 * sizeof masks) != 8 * mask_idx) {
                if (!ok) {
                    fprintf(stderr, "verify, flip 0x%02x at %llu: skip@%lld (%s)\n",
                            masks[mask_idx], (unsigned long long)off,
                            (long long)vrep.skipped_offset, vrep.skipped_reason);
                    bad_cases++;
                }
                continue;
            }
            w = reopen_check(dir, WAL_FSYNC_NEVER, 0, exp, good, &c, &rep);
            ok = ok && w && c.seen == good && c.mismatches == 0 && rep.skipped_offset == bad_at &&
                 rep.skipped_bytes == total - (uint64_t)bad_at &&
                 strcmp(rep.skipped_reason, vrep.skipped_reason) == 0;
            checker_fini(&c);
            /* now and then: the repaired log takes appends and reopens clean */
            if (w && off % 2 == 0) {
                uint64_t lsn = 0;
                ok = ok && append_gen(w, "acme", 77, 1, &lsn) == 0 && lsn == good + 1;
                wal_close(w);
                w = NULL;
                ok = ok && wal_verify_dir(dir, &vrep, &d) == 0 && vrep.records == good + 1;
            }
            wal_close(w);
            if (!ok) {
                fprintf(stderr, "flip 0x%02x at %llu: seen %zu want %zu, skip@%lld (%s)\n",
                        masks[mask_idx], (unsigned long long)off, c.seen, good,
                        (long long)rep.skipped_offset, rep.skipped_reason);
                bad_cases++;
            }
        }
    }
    CHECK_EQ_INT(bad_cases, 0);
    free(copy);
    free(orig);
    qr_test_rmdir(src);
    qr_test_rmdir(dir);
}

TEST(corruption_in_middle_file_drops_later_files)
{
    char dir[512];
    REQUIRE(qr_test_tmpdir("wal_midfile", dir, sizeof dir));
    enum { N = 30 };
    expect exp[N + 1];
    wal_t *w = open_wal(dir, WAL_FSYNC_NEVER, 1500);
    REQUIRE(w);
    for (uint64_t seed = 1; seed <= N; seed++) {
        uint64_t lsn = 0;
        CHECK_EQ_INT(append_gen(w, "acme", seed, 6, &lsn), 0);
        set_expect(&exp[seed - 1], lsn, "acme", seed, 6);
    }
    wal_close(w);
    uint64_t firsts[64];
    size_t file_count = list_wal_files(dir, firsts, 64);
    REQUIRE(file_count >= 4 && file_count < 64);
    /* flip the last byte of the second file: its last record goes bad */
    char path[4200];
    wal_file_path(path, sizeof path, dir, firsts[1]);
    size_t len = 0;
    uint8_t *bytes = read_file(path, &len);
    REQUIRE(bytes);
    bytes[len - 1] ^= 0x40;
    REQUIRE(write_file(path, bytes, len) == 0);
    free(bytes);
    uint64_t later_bytes = 0;
    for (size_t idx = 2; idx < file_count; idx++) {
        char p2[4200];
        wal_file_path(p2, sizeof p2, dir, firsts[idx]);
        later_bytes += file_size(p2);
    }
    uint64_t good = firsts[2] - 2; /* everything before the last record of file 1 */
    checker c;
    wal_replay_report rep;
    w = reopen_check(dir, WAL_FSYNC_NEVER, 1500, exp, good, &c, &rep);
    REQUIRE(w);
    CHECK_EQ_INT(c.seen, good);
    CHECK_EQ_INT(c.mismatches, 0);
    CHECK(rep.skipped_offset > 32);
    CHECK(strstr(rep.skipped_file, ".wal") != NULL);
    CHECK_EQ_INT(rep.skipped_bytes, len - (uint64_t)rep.skipped_offset + later_bytes);
    checker_fini(&c);
    uint64_t after[64];
    CHECK_EQ_INT(list_wal_files(dir, after, 64), 2);
    uint64_t lsn = 0;
    CHECK_EQ_INT(append_gen(w, "acme", 1234, 2, &lsn), 0);
    CHECK_EQ_INT(lsn, good + 1);
    wal_close(w);

    /* a missing middle file: LSNs stop being consecutive, the log ends before the gap */
    w = open_wal(dir, WAL_FSYNC_NEVER, 1500);
    REQUIRE(w);
    CHECK_EQ_INT(wal_replay(w, NULL, NULL, &rep, NULL), 0);
    for (uint64_t seed = 1; seed <= 20; seed++) CHECK_EQ_INT(append_gen(w, "a", seed, 6, NULL), 0);
    wal_close(w);
    file_count = list_wal_files(dir, firsts, 64);
    REQUIRE(file_count >= 4);
    wal_file_path(path, sizeof path, dir, firsts[2]);
    REQUIRE(unlink(path) == 0);
    qr_diag d;
    qr_diag_init(&d);
    CHECK_EQ_INT(wal_verify_dir(dir, &rep, &d), QR_ECORRUPT);
    CHECK_EQ_INT(rep.skipped_offset, 0);
    CHECK_EQ_INT(rep.last_lsn, firsts[2] - 1);
    CHECK(strstr(rep.skipped_reason, "expected") != NULL);
    qr_test_rmdir(dir);
}

/* ------------------------------------------------------------------ trailing empty files */

TEST(empty_trailing_files)
{
    char dir[512];
    REQUIRE(qr_test_tmpdir("wal_empty", dir, sizeof dir));
    expect exp[5];
    wal_t *w = open_wal(dir, WAL_FSYNC_NEVER, 0);
    REQUIRE(w);
    for (uint64_t seed = 1; seed <= 3; seed++) {
        CHECK_EQ_INT(append_gen(w, "acme", seed, 4, NULL), 0);
        set_expect(&exp[seed - 1], seed, "acme", seed, 4);
    }
    wal_close(w);
    /* a crash right after creating the next file leaves it zero-length */
    char path[4200];
    wal_file_path(path, sizeof path, dir, 4);
    REQUIRE(write_file(path, NULL, 0) == 0);
    qr_diag d;
    qr_diag_init(&d);
    wal_replay_report rep;
    CHECK_EQ_INT(wal_verify_dir(dir, &rep, &d), 0);
    checker c;
    w = reopen_check(dir, WAL_FSYNC_NEVER, 0, exp, 3, &c, &rep);
    REQUIRE(w);
    CHECK_EQ_INT(c.seen, 3);
    CHECK_EQ_INT(rep.skipped_offset, -1);
    checker_fini(&c);
    uint64_t lsn = 0;
    CHECK_EQ_INT(append_gen(w, "acme", 4, 4, &lsn), 0);
    CHECK_EQ_INT(lsn, 4);
    set_expect(&exp[3], 4, "acme", 4, 4);
    wal_close(w);
    w = reopen_check(dir, WAL_FSYNC_NEVER, 0, exp, 4, &c, &rep);
    REQUIRE(w);
    CHECK_EQ_INT(c.seen, 4);
    CHECK_EQ_INT(c.mismatches, 0);
    checker_fini(&c);
    wal_close(w);

    /* an empty directory opens, replays nothing, and starts at LSN 1 without replay */
    dir_clear(dir);
    w = open_wal(dir, WAL_FSYNC_NEVER, 0);
    REQUIRE(w);
    CHECK_EQ_INT(append_gen(w, "acme", 1, 4, &lsn), 0);
    CHECK_EQ_INT(lsn, 1);
    wal_close(w);
    qr_test_rmdir(dir);
}

/* ------------------------------------------------------------------ failures */

TEST(write_failure_poisons)
{
    char dir[512];
    REQUIRE(qr_test_tmpdir("wal_poison", dir, sizeof dir));
    /* RLIMIT_FSIZE makes a write past 40 KB fail with EFBIG: a real failed write */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old;
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
    struct rlimit lim = old;
    lim.rlim_cur = 40 * 1024;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    enum { MAX = 400 };
    static expect exp[MAX];
    wal_t *w = open_wal(dir, WAL_FSYNC_ALWAYS, 0);
    REQUIRE(w);
    size_t acked = 0;
    int rc = 0;
    for (uint64_t seed = 1; seed <= MAX; seed++) {
        uint64_t lsn = 0;
        rc = append_gen(w, "acme", seed, 20, &lsn);
        if (rc) break;
        set_expect(&exp[acked++], lsn, "acme", seed, 20);
    }
    CHECK_EQ_INT(rc, QR_EIO);
    CHECK(acked > 0 && acked < MAX);
    qr_diag d;
    qr_diag_init(&d);
    qr_batch b;
    qr_batch_init(&b);
    batch_gen_fill(&b, 1, 1);
    CHECK_EQ_INT(wal_append(w, "acme", &b, NULL, &d), QR_EIO); /* poisoned, even if tiny */
    CHECK(strstr(d.msg, "write") != NULL);
    qr_batch_fini(&b);
    wal_stats st;
    wal_get_stats(w, &st);
    CHECK(st.is_failed);
    CHECK_EQ_INT(st.appends, acked);
    wal_close(w);
    REQUIRE(setrlimit(RLIMIT_FSIZE, &old) == 0);
    signal(SIGXFSZ, SIG_DFL);

    /* every acknowledged record is there; the failed one at most (if it happened to land) */
    checker c;
    wal_replay_report rep;
    w = reopen_check(dir, WAL_FSYNC_ALWAYS, 0, exp, acked, &c, &rep);
    REQUIRE(w);
    CHECK(c.seen >= acked && c.seen <= acked + 1);
    CHECK_EQ_INT(c.mismatches, c.seen - acked);
    checker_fini(&c);
    uint64_t lsn = 0;
    CHECK_EQ_INT(append_gen(w, "acme", 9999, 2, &lsn), 0);
    CHECK_EQ_INT(lsn, c.seen + 1);
    wal_close(w);
    qr_test_rmdir(dir);
}

TEST(limits_and_misuse)
{
    char dir[512];
    REQUIRE(qr_test_tmpdir("wal_limits", dir, sizeof dir));
    wal_t *w = open_wal(dir, WAL_FSYNC_NEVER, 0);
    REQUIRE(w);
    qr_batch b;
    qr_batch_init(&b);
    batch_gen_fill(&b, 3, 3);
    qr_diag d;
    qr_diag_init(&d);
    char long_tenant[QR_TENANT_MAX_BYTES + 2];
    memset(long_tenant, 't', sizeof long_tenant);
    long_tenant[QR_TENANT_MAX_BYTES + 1] = 0;
    CHECK_EQ_INT(wal_append(w, "", &b, NULL, &d), QR_EINVAL);
    CHECK_EQ_INT(wal_append(w, NULL, &b, NULL, &d), QR_EINVAL);
    CHECK_EQ_INT(wal_append(w, long_tenant, &b, NULL, &d), QR_EINVAL);
    long_tenant[QR_TENANT_MAX_BYTES] = 0;
    uint64_t lsn = 0;
    CHECK_EQ_INT(wal_append(w, long_tenant, &b, &lsn, &d), 0);
    CHECK_EQ_INT(lsn, 1);

    /* a label over its limit would not decode at replay: refused up front */
    char label[QR_LABEL_MAX_BYTES + 1];
    memset(label, 'x', sizeof label);
    b.events[0].service = qr_batch_str(&b, label, sizeof label);
    qr_diag_init(&d);
    CHECK_EQ_INT(wal_append(w, "acme", &b, NULL, &d), QR_ELIMIT);

    /* a batch encoding past QR_BATCH_MAX_BYTES: QR_ELIMIT, nothing written, no LSN used */
    qr_batch big;
    qr_batch_init(&big);
    char *msg = malloc(QR_MSG_MAX_BYTES);
    REQUIRE(msg);
    memset(msg, 'm', QR_MSG_MAX_BYTES);
    for (int row = 0; row < QR_BATCH_MAX_BYTES / QR_MSG_MAX_BYTES + 1; row++) {
        qr_event *e = qr_batch_push(&big);
        e->msg = qr_batch_str(&big, msg, QR_MSG_MAX_BYTES);
    }
    qr_diag_init(&d);
    CHECK_EQ_INT(wal_append(w, "acme", &big, NULL, &d), QR_ELIMIT);
    CHECK(strstr(d.msg, "exceeds") != NULL);
    free(msg);
    qr_batch_fini(&big);
    qr_batch_reset(&b);
    batch_gen_fill(&b, 4, 3);
    CHECK_EQ_INT(wal_append(w, "acme", &b, &lsn, &d), 0);
    CHECK_EQ_INT(lsn, 2);
    wal_close(w);

    /* a directory with files: append before replay is refused, after replay fine */
    w = open_wal(dir, WAL_FSYNC_NEVER, 0);
    REQUIRE(w);
    qr_diag_init(&d);
    CHECK_EQ_INT(wal_append(w, "acme", &b, &lsn, &d), QR_EINVAL);
    wal_replay_report rep;
    CHECK_EQ_INT(wal_replay(w, NULL, NULL, &rep, &d), 0);
    CHECK_EQ_INT(rep.records, 2);
    CHECK_EQ_INT(wal_append(w, "acme", &b, &lsn, &d), 0);
    CHECK_EQ_INT(lsn, 3);
    qr_diag_init(&d);
    CHECK_EQ_INT(wal_replay(w, NULL, NULL, &rep, &d), QR_EINVAL); /* after an append */
    wal_close(w);

    wal_opts o;
    memset(&o, 0, sizeof o);
    o.zstd_level = 1000;
    CHECK_EQ_INT(wal_open(dir, &o, &w, &d), QR_EINVAL);
    qr_batch_fini(&b);
    qr_test_rmdir(dir);
}

static int stop_at_third(void *ctx, uint64_t lsn, const char *tenant, qr_batch *batch)
{
    int *calls = ctx;
    return ++*calls == 3 ? 42 : 0;
}

TEST(replay_callback_stops)
{
    char dir[512];
    REQUIRE(qr_test_tmpdir("wal_cbstop", dir, sizeof dir));
    wal_t *w = open_wal(dir, WAL_FSYNC_NEVER, 0);
    REQUIRE(w);
    for (uint64_t seed = 1; seed <= 5; seed++) CHECK_EQ_INT(append_gen(w, "a", seed, 2, NULL), 0);
    wal_close(w);
    w = open_wal(dir, WAL_FSYNC_NEVER, 0);
    REQUIRE(w);
    int calls = 0;
    CHECK_EQ_INT(wal_replay(w, stop_at_third, &calls, NULL, NULL), 42);
    CHECK_EQ_INT(calls, 3);
    CHECK_EQ_INT(append_gen(w, "a", 9, 2, NULL), QR_EINVAL); /* replay did not finish */
    wal_close(w);
    wal_replay_report rep;
    CHECK_EQ_INT(wal_verify_dir(dir, &rep, NULL), 0); /* nothing was cut */
    CHECK_EQ_INT(rep.records, 5);
    qr_test_rmdir(dir);
}

TEST(interval_policy_syncs_in_background)
{
    char dir[512];
    REQUIRE(qr_test_tmpdir("wal_interval", dir, sizeof dir));
    wal_t *w = open_wal(dir, WAL_FSYNC_INTERVAL, 0); /* 5 ms */
    REQUIRE(w);
    enum { N = 20 };
    expect exp[N];
    for (uint64_t seed = 1; seed <= N; seed++) {
        uint64_t lsn = 0;
        CHECK_EQ_INT(append_gen(w, "acme", seed, 10, &lsn), 0);
        set_expect(&exp[seed - 1], lsn, "acme", seed, 10);
    }
    wal_stats st;
    /* the timer syncs what was written (poll: no timing assertion, just progress) */
    for (int tries = 0; tries < 5000; tries++) {
        wal_get_stats(w, &st);
        if (st.fsyncs > 0) break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    CHECK(st.fsyncs > 0);
    wal_close(w);
    checker c;
    wal_replay_report rep;
    w = reopen_check(dir, WAL_FSYNC_INTERVAL, 0, exp, N, &c, &rep);
    REQUIRE(w);
    CHECK_EQ_INT(c.seen, N);
    CHECK_EQ_INT(c.mismatches, 0);
    checker_fini(&c);
    wal_close(w);
    qr_test_rmdir(dir);
}

/* ------------------------------------------------------------------ fuzz seeds */

static int write_corpus(const char *base)
{
    char path[4200];
    snprintf(path, sizeof path, "mkdir -p '%s/wal_batch_fuzz' '%s/wal_file_fuzz'", base, base);
    if (system(path) != 0) return 1;
    qr_batch b;
    qr_batch_init(&b);
    static const size_t counts[] = {0, 1, 5, 40};
    for (size_t idx = 0; idx < 4; idx++) {
        qr_batch_reset(&b);
        batch_gen_fill(&b, 100 + idx, counts[idx]);
        qr_buf buf;
        qr_buf_init(&buf);
        qr_batch_encode(&b, &buf);
        snprintf(path, sizeof path, "%s/wal_batch_fuzz/seed-%zu-events", base, counts[idx]);
        write_file(path, buf.data, buf.len);
        qr_buf_fini(&buf);
    }
    qr_batch_fini(&b);
    char dir[512];
    for (size_t idx = 0; idx < 4; idx++) {
        if (!qr_test_tmpdir("wal_corpus", dir, sizeof dir)) return 1;
        wal_t *w = open_wal(dir, WAL_FSYNC_NEVER, 0);
        for (uint64_t seed = 1; seed <= idx + 1; seed++)
            append_gen(w, seed % 2 ? "acme" : "globex", seed, counts[idx], NULL);
        wal_close(w);
        wal_file_path(path, sizeof path, dir, 1);
        size_t len = 0;
        uint8_t *bytes = read_file(path, &len);
        char out[4200];
        snprintf(out, sizeof out, "%s/wal_file_fuzz/seed-%zu-records", base, idx + 1);
        if (bytes) write_file(out, bytes, len);
        free(bytes);
        qr_test_rmdir(dir);
    }
    return 0;
}

/* The fsync observer sees every fdatasync the stats count, with its duration — under
 * fsync=always (group commits and rotations) and fsync=interval (the syncer thread). */
typedef struct fsync_seen {
    atomic_uint_fast64_t calls, ns;
} fsync_seen;

static void note_fsync(void *ctx, uint64_t ns)
{
    fsync_seen *f = ctx;
    atomic_fetch_add(&f->calls, 1);
    atomic_fetch_add(&f->ns, ns);
}

TEST(fsync_observer_sees_every_fsync)
{
    wal_fsync_policy policies[] = {WAL_FSYNC_ALWAYS, WAL_FSYNC_INTERVAL};
    for (int pi = 0; pi < 2; pi++) {
        char dir[512];
        REQUIRE(qr_test_tmpdir("wal_fsync_obs", dir, sizeof dir));
        fsync_seen seen;
        atomic_init(&seen.calls, 0);
        atomic_init(&seen.ns, 0);
        wal_opts o;
        memset(&o, 0, sizeof o);
        o.fsync_policy = policies[pi];
        o.file_bytes = 4096; /* rotations too */
        o.fsync_interval_ms = 2;
        o.on_fsync = note_fsync;
        o.on_fsync_ctx = &seen;
        wal_t *w = NULL;
        qr_diag d;
        qr_diag_init(&d);
        REQUIRE(wal_open(dir, &o, &w, &d) == 0);
        for (int n = 0; n < 40; n++) CHECK_EQ_INT(append_gen(w, "t", (uint64_t)n, 20, NULL), 0);
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL); /* let the interval syncer run */
        wal_stats st;
        wal_get_stats(w, &st);
        CHECK(st.fsyncs > 0);
        CHECK_EQ_INT(atomic_load(&seen.calls), st.fsyncs);
        CHECK_EQ_INT(atomic_load(&seen.ns), st.fsync_ns_total);
        wal_close(w);
        qr_test_rmdir(dir);
    }
}

int main(void)
{
    const char *corpus = getenv("QR_WAL_WRITE_CORPUS");
    if (corpus && *corpus) return write_corpus(corpus);
    RUN(append_replay_roundtrip);
    RUN(fsync_observer_sees_every_fsync);
    RUN(concurrent_appends_group_commit);
    RUN(rotation_and_release);
    RUN(torn_tail_every_offset);
    RUN(corruption_every_offset);
    RUN(corruption_in_middle_file_drops_later_files);
    RUN(empty_trailing_files);
    RUN(write_failure_poisons);
    RUN(limits_and_misuse);
    RUN(replay_callback_stops);
    RUN(interval_policy_syncs_in_background);
    QR_TEST_MAIN_END();
}

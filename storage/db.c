/* Data directory: lock, recovery, ingest ordering, background flush, snapshots.
 *
 * Ordering argument (why a flushed LSN is safe to skip on replay): a tenant's memtable is
 * frozen only after every ingest of that tenant that is between "WAL append started" and
 * "rows in memtable" has finished (tenant->inflight drops to 0 while new ingests wait on
 * `freezing`). So when a frozen memtable's rows are in a published segment, every WAL record
 * of the tenant with LSN <= its max LSN is in segments, and flushed_lsn may advance to it.
 * WAL files are released up to the lowest LSN that some memtable or in-flight ingest may still
 * need: min(memtable min LSNs, in-flight floors) - 1, where an in-flight ingest's floor is the
 * WAL's last LSN + 1 read before its append began. */
#include "storage/db.h"

#include "common/qr_fs.h"
#include "common/qr_time.h"
#include "storage/catalog.h"
#include "storage/compact.h"
#include "storage/memtable.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_CAP 4200

typedef struct tenant {
    char name[QR_TENANT_MAX_BYTES + 1];
    char dir[PATH_CAP];
    pthread_mutex_t mu;
    pthread_cond_t cond;
    /* Held across a catalog change (copy, store, swap) by flush and compaction, so the two
     * never publish from the same old catalog or hand out one segment id twice. Taken
     * before mu. */
    pthread_mutex_t cat_mu;
    memtab *active;
    memtab **frozen; /* oldest first */
    size_t frozen_count;
    size_t frozen_cap;
    qr_part **segs; /* open segments, catalog order */
    size_t seg_count;
    size_t seg_cap;
    catalog_state catalog;
    bool freezing;
    bool flushing; /* the flush thread is writing frozen[0] */
    uint32_t inflight;
    uint64_t flushes;
} tenant;

typedef struct inflight_node {
    uint64_t floor_lsn;
    struct inflight_node *prev, *next;
} inflight_node;

struct db {
    char dir[PATH_CAP];
    db_opts opts;
    int lock_fd;
    wal_t *wal;
    pthread_mutex_t mu; /* tenants array, inflight list, flush thread state */
    pthread_cond_t flush_cond;
    pthread_cond_t flush_done;
    tenant **tenants;
    size_t tenant_count;
    size_t tenant_cap;
    inflight_node inflight_head;     /* circular list sentinel */
    atomic_uint_fast64_t memtab_seq; /* ids for new memtables; atomic so no lock is needed */
    atomic_int flush_failing;        /* the last background flush pass failed */
    pthread_t flush_thread;
    bool flush_thread_running;
    bool stopping;
    uint64_t flush_requested; /* ticket of the latest db_flush request */
    uint64_t flush_completed; /* ticket the last completed full pass served */
    int flush_error;          /* last background flush error, reported by db_flush */
    qr_diag flush_diag;
    uint64_t total_flushes;
    struct {
        db_observer_fn fn;
        void *ctx;
    } observers[DB_MAX_OBSERVERS]; /* set before the first ingest, read without a lock */
    size_t observer_count;
    /* compaction */
    pthread_mutex_t compact_mu; /* one merge at a time (background thread or db_compact) */
    pthread_cond_t compact_cond;
    pthread_t compact_thread;
    bool compact_thread_running;
    bool compact_stopping;
    atomic_bool compact_cancel;
    uint64_t total_compactions;
};

struct db_snapshot {
    qr_part **parts;
    size_t count;
};

/* Waits on cond for at most ms milliseconds (the caller re-checks its condition). */
static void cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *mu, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += ms * 1000 * 1000;
    ts.tv_sec += ts.tv_nsec / 1000000000;
    ts.tv_nsec %= 1000000000;
    pthread_cond_timedwait(cond, mu, &ts);
}

bool db_tenant_name_ok(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > QR_TENANT_MAX_BYTES) return false;
    for (size_t idx = 0; idx < len; idx++) {
        char c = name[idx];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static void opts_defaults(db_opts *o)
{
    if (!o->flush_rows) o->flush_rows = 262144;
    if (!o->flush_bytes) o->flush_bytes = 128ull << 20;
    if (!o->flush_age_ms) o->flush_age_ms = 5000;
    if (!o->max_frozen) o->max_frozen = 2;
    if (!o->block_rows) o->block_rows = SEG_DEFAULT_BLOCK_ROWS;
    if (!o->segment_zstd_level) o->segment_zstd_level = 1;
    /* WAL files live only until their rows are in segments: spend (almost) no CPU on them.
     * zstd at DB_WAL_ZSTD_LEVEL stores the encoded batch nearly as is: 0.07 µs/event and
     * 110 B/event, against 0.50 µs and 57 B/event at -1 (bench/ingest_stages_bench); with
     * fsync=always the extra bytes cost no measurable system time (bench/RESULTS.md). */
    if (!o->wal.zstd_level) o->wal.zstd_level = DB_WAL_ZSTD_LEVEL;
    if (!o->compact_min_segments) o->compact_min_segments = 4;
    if (!o->compact_rows) o->compact_rows = 1u << 20;
    if (o->compact_rows < 2) o->compact_rows = 2;
}

/* --- tenants ---------------------------------------------------------------------------- */

static void tenant_free(tenant *t)
{
    if (!t) return;
    memtab_free(t->active);
    for (size_t idx = 0; idx < t->frozen_count; idx++) memtab_free(t->frozen[idx]);
    free(t->frozen);
    for (size_t idx = 0; idx < t->seg_count; idx++) qr_part_unref(t->segs[idx]);
    free(t->segs);
    catalog_state_fini(&t->catalog);
    pthread_mutex_destroy(&t->mu);
    pthread_mutex_destroy(&t->cat_mu);
    pthread_cond_destroy(&t->cond);
    free(t);
}

static int tenant_add_seg(tenant *t, qr_part *p)
{
    if (t->seg_count == t->seg_cap) {
        size_t cap = t->seg_cap ? t->seg_cap * 2 : 16;
        qr_part **segs = realloc(t->segs, cap * sizeof *segs);
        if (!segs) return QR_ENOMEM;
        t->segs = segs;
        t->seg_cap = cap;
    }
    t->segs[t->seg_count++] = p;
    return 0;
}

static bool is_seg_file(const char *name)
{
    size_t len = strlen(name), suf = strlen(SEG_FILE_SUFFIX);
    return len > suf && strcmp(name + len - suf, SEG_FILE_SUFFIX) == 0;
}

/* Loads the catalog, opens listed segments, deletes unlisted segment files and temp files. */
static int tenant_load(db_t *db, const char *name, tenant **out, qr_diag *d)
{
    tenant *t = calloc(1, sizeof *t);
    if (!t) return QR_ENOMEM;
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->dir, sizeof t->dir, "%s/tenants/%s", db->dir, name);
    pthread_mutex_init(&t->mu, NULL);
    pthread_mutex_init(&t->cat_mu, NULL);
    pthread_cond_init(&t->cond, NULL);
    catalog_state_init(&t->catalog);
    int rc = qr_fs_mkdirs(t->dir, d);
    if (!rc) {
        catalog_state_fini(&t->catalog);
        rc = catalog_load(t->dir, &t->catalog, d);
    }
    for (size_t idx = 0; !rc && idx < t->catalog.count; idx++) {
        char path[PATH_CAP];
        snprintf(path, sizeof path, "%s/%s", t->dir, t->catalog.segs[idx].file);
        qr_part *p = NULL;
        rc = seg_open(path, &p, d);
        if (!rc && (rc = tenant_add_seg(t, p))) qr_part_unref(p);
    }
    if (!rc) {
        DIR *dir = opendir(t->dir);
        struct dirent *de;
        while (dir && (de = readdir(dir)) != NULL) {
            bool listed = false;
            for (size_t idx = 0; idx < t->catalog.count; idx++)
                if (strcmp(de->d_name, t->catalog.segs[idx].file) == 0) listed = true;
            size_t len = strlen(de->d_name);
            bool tmp = len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0;
            if ((is_seg_file(de->d_name) && !listed) || tmp) {
                char path[PATH_CAP];
                snprintf(path, sizeof path, "%s/%s", t->dir, de->d_name);
                unlink(path);
            }
        }
        if (dir) closedir(dir);
    }
    if (!rc) {
        t->active = memtab_new(atomic_fetch_add(&db->memtab_seq, 1) + 1);
        if (!t->active) rc = QR_ENOMEM;
    }
    if (rc) {
        tenant_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* Finds or creates the tenant; db->mu must be held. */
static int tenant_get_locked(db_t *db, const char *name, bool create, tenant **out, qr_diag *d)
{
    for (size_t idx = 0; idx < db->tenant_count; idx++) {
        if (strcmp(db->tenants[idx]->name, name) == 0) {
            *out = db->tenants[idx];
            return 0;
        }
    }
    if (!create) return QR_ENOTFOUND;
    if (!db_tenant_name_ok(name))
        return qr_diag_set(d, QR_EINVAL,
                           "bad tenant name \"%.80s\": use 1-64 letters, digits, '_' or '-'", name);
    if (db->tenant_count == db->tenant_cap) {
        size_t cap = db->tenant_cap ? db->tenant_cap * 2 : 8;
        tenant **p = realloc(db->tenants, cap * sizeof *p);
        if (!p) return QR_ENOMEM;
        db->tenants = p;
        db->tenant_cap = cap;
    }
    tenant *t;
    int rc = tenant_load(db, name, &t, d);
    if (rc) return rc;
    db->tenants[db->tenant_count++] = t;
    *out = t;
    return 0;
}

static int tenant_get(db_t *db, const char *name, bool create, tenant **out, qr_diag *d)
{
    pthread_mutex_lock(&db->mu);
    int rc = tenant_get_locked(db, name, create, out, d);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

/* --- freeze and flush ------------------------------------------------------------------- */

static bool memtab_due(const db_t *db, const memtab *m, int64_t now_mono)
{
    if (!memtab_rows(m)) return false;
    return memtab_rows(m) >= db->opts.flush_rows || memtab_bytes(m) >= db->opts.flush_bytes ||
           now_mono - memtab_created_ns(m) >= (int64_t)db->opts.flush_age_ms * QR_NS_PER_MS;
}

/* Moves the active memtable to the frozen list once no ingest of the tenant is in flight.
 * t->mu must be held. */
static int tenant_freeze_locked(db_t *db, tenant *t)
{
    if (t->freezing) { /* another thread is freezing it right now: that does the job */
        while (t->freezing) pthread_cond_wait(&t->cond, &t->mu);
        return 0;
    }
    if (!memtab_rows(t->active)) return 0;
    t->freezing = true;
    while (t->inflight) pthread_cond_wait(&t->cond, &t->mu);
    int rc = 0;
    memtab *fresh = NULL;
    if (t->frozen_count == t->frozen_cap) {
        size_t cap = t->frozen_cap ? t->frozen_cap * 2 : 4;
        memtab **p = realloc(t->frozen, cap * sizeof *p);
        if (!p)
            rc = QR_ENOMEM;
        else {
            t->frozen = p;
            t->frozen_cap = cap;
        }
    }
    if (!rc) {
        fresh = memtab_new(atomic_fetch_add(&db->memtab_seq, 1) + 1);
        if (!fresh) rc = QR_ENOMEM;
    }
    if (!rc) {
        memtab_seal(t->active); /* its last chunk gets a token index too */
        t->frozen[t->frozen_count++] = t->active;
        t->active = fresh;
    }
    t->freezing = false;
    pthread_cond_broadcast(&t->cond);
    return rc;
}

/* tenant_flush_one with t->cat_mu held. */
static int tenant_flush_one_locked(db_t *db, tenant *t, qr_diag *d)
{
    pthread_mutex_lock(&t->mu);
    if (!t->frozen_count) {
        pthread_mutex_unlock(&t->mu);
        return 0;
    }
    memtab *m = t->frozen[0];
    t->flushing = true;
    catalog_state next;
    int rc = catalog_state_copy(&next, &t->catalog);
    pthread_mutex_unlock(&t->mu);
    if (rc) return rc;

    uint64_t seg_id = next.next_segment_id++;
    catalog_seg entry;
    memset(&entry, 0, sizeof entry);
    entry.id = seg_id;
    snprintf(entry.file, sizeof entry.file, "%016" PRIu64 SEG_FILE_SUFFIX, seg_id);
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/%s", t->dir, entry.file);

    const qr_batch **chunks = NULL;
    size_t chunk_count = 0;
    qr_part *seg = NULL;
    seg_stats stats;
    memset(&stats, 0, sizeof stats);
    seg_write_opts wopts = {.block_rows = db->opts.block_rows,
                            .zstd_level = db->opts.segment_zstd_level,
                            .phrase_pairs = SEG_PHRASE_COUNTED,
                            .segment_id = seg_id};
    rc = memtab_chunks(m, &chunks, &chunk_count);
    if (!rc) rc = seg_write(path, chunks, chunk_count, &wopts, &stats, d);
    free(chunks);
    if (!rc) rc = seg_open(path, &seg, d);
    if (!rc) {
        entry.rows = seg->row_count;
        entry.min_ts_ns = seg->min_ts_ns;
        entry.max_ts_ns = seg->max_ts_ns;
        entry.bytes = stats.file_bytes;
        if (memtab_max_lsn(m) > next.flushed_lsn) next.flushed_lsn = memtab_max_lsn(m);
        rc = catalog_state_add(&next, &entry);
    }
    if (!rc) rc = catalog_store(t->dir, &next, d);
    pthread_mutex_lock(&t->mu);
    if (!rc) rc = tenant_add_seg(t, seg);
    if (!rc) {
        catalog_state_fini(&t->catalog);
        t->catalog = next;
        memmove(&t->frozen[0], &t->frozen[1], (t->frozen_count - 1) * sizeof *t->frozen);
        t->frozen_count--;
        t->flushes++;
    } else {
        catalog_state_fini(&next);
        if (seg) qr_part_unref(seg);
        unlink(path);
    }
    t->flushing = false;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->mu);
    if (!rc) memtab_free(m);
    return rc;
}

/* Writes the oldest frozen memtable of t into a segment and publishes it. Only the flush
 * thread (or db_open/db_close, when no flush thread runs) calls this. */
static int tenant_flush_one(db_t *db, tenant *t, qr_diag *d)
{
    pthread_mutex_lock(&t->cat_mu);
    int rc = tenant_flush_one_locked(db, t, d);
    pthread_mutex_unlock(&t->cat_mu);
    return rc;
}

/* Deletes WAL files no memtable or in-flight ingest needs. */
static int db_release_wal(db_t *db, qr_diag *d)
{
    uint64_t need = UINT64_MAX;
    pthread_mutex_lock(&db->mu);
    for (inflight_node *n = db->inflight_head.next; n != &db->inflight_head; n = n->next)
        if (n->floor_lsn < need) need = n->floor_lsn;
    size_t count = db->tenant_count;
    for (size_t idx = 0; idx < count; idx++) {
        tenant *t = db->tenants[idx];
        pthread_mutex_lock(&t->mu);
        uint64_t lsn = memtab_min_lsn(t->active);
        if (lsn < need) need = lsn;
        for (size_t f = 0; f < t->frozen_count; f++) {
            lsn = memtab_min_lsn(t->frozen[f]);
            if (lsn < need) need = lsn;
        }
        pthread_mutex_unlock(&t->mu);
    }
    pthread_mutex_unlock(&db->mu);
    if (need == UINT64_MAX) {
        wal_stats ws;
        wal_get_stats(db->wal, &ws);
        need = ws.last_lsn + 1;
    }
    if (need <= 1) return 0;
    return wal_release(db->wal, need - 1, d);
}

/* One pass: freeze what is due, flush what is frozen. Returns the first error. */
static int db_flush_pass(db_t *db, bool force, qr_diag *d)
{
    int first_rc = 0;
    pthread_mutex_lock(&db->mu);
    size_t count = db->tenant_count;
    pthread_mutex_unlock(&db->mu);
    int64_t now = qr_monotonic_ns();
    bool flushed = false;
    for (size_t idx = 0; idx < count; idx++) {
        pthread_mutex_lock(&db->mu);
        tenant *t = db->tenants[idx];
        pthread_mutex_unlock(&db->mu);
        pthread_mutex_lock(&t->mu);
        int rc = 0;
        if (force ? memtab_rows(t->active) > 0 : memtab_due(db, t->active, now))
            rc = tenant_freeze_locked(db, t);
        size_t pending = t->frozen_count;
        pthread_mutex_unlock(&t->mu);
        for (size_t f = 0; !rc && f < pending; f++) {
            rc = tenant_flush_one(db, t, d);
            flushed = true;
        }
        if (rc && !first_rc) first_rc = rc;
    }
    if (flushed && !first_rc) first_rc = db_release_wal(db, d);
    if (flushed) {
        pthread_mutex_lock(&db->mu);
        db->total_flushes++;
        pthread_cond_signal(&db->compact_cond); /* a run of small segments may be ready */
        pthread_mutex_unlock(&db->mu);
    }
    return first_rc;
}

static void *flush_main(void *arg)
{
    db_t *db = arg;
    pthread_mutex_lock(&db->mu);
    while (!db->stopping) {
        uint64_t ticket = db->flush_requested;
        bool force = ticket > db->flush_completed;
        pthread_mutex_unlock(&db->mu);
        qr_diag d;
        qr_diag_init(&d);
        int rc = db_flush_pass(db, force, &d);
        pthread_mutex_lock(&db->mu);
        if (rc) {
            db->flush_error = rc;
            db->flush_diag = d;
        }
        atomic_store(&db->flush_failing, rc != 0);
        if (force) {
            db->flush_completed = ticket;
            pthread_cond_broadcast(&db->flush_done);
        }
        if (db->stopping || db->flush_requested > db->flush_completed) continue;
        cond_wait_ms(&db->flush_cond, &db->mu, 100);
    }
    pthread_mutex_unlock(&db->mu);
    return NULL;
}

int db_flush(db_t *db, qr_diag *d)
{
    pthread_mutex_lock(&db->mu);
    if (!db->flush_thread_running) {
        pthread_mutex_unlock(&db->mu);
        return db_flush_pass(db, true, d);
    }
    uint64_t ticket = ++db->flush_requested;
    db->flush_error = 0;
    pthread_cond_signal(&db->flush_cond);
    while (db->flush_completed < ticket) pthread_cond_wait(&db->flush_done, &db->mu);
    int rc = db->flush_error;
    if (rc && d && !d->code) *d = db->flush_diag;
    pthread_mutex_unlock(&db->mu);
    return rc;
}

/* --- compaction ----------------------------------------------------------------------------- */

/* Picks the first run of t's segments to merge (t->mu held): adjacent segments of fewer than
 * compact_rows / 2 rows each, at most compact_rows rows together; in the background only
 * runs of compact_min_segments or more, on demand (force) runs of two or more or a single
 * segment not compacted yet. Returns the run's length and its first index; 0 = none. */
static size_t compact_pick_locked(const db_t *db, const tenant *t, bool force, size_t *first)
{
    uint64_t small = db->opts.compact_rows / 2, limit = db->opts.compact_rows;
    size_t idx = 0;
    while (idx < t->seg_count) {
        if (t->segs[idx]->row_count >= small) {
            idx++;
            continue;
        }
        size_t start = idx;
        uint64_t rows = 0;
        while (idx < t->seg_count && t->segs[idx]->row_count < small &&
               rows + t->segs[idx]->row_count <= limit)
            rows += t->segs[idx++]->row_count;
        size_t n = idx - start;
        bool ok = force ? (n >= 2 || !t->segs[start]->postings_sparse)
                        : n >= db->opts.compact_min_segments;
        if (ok) {
            *first = start;
            return n;
        }
    }
    return 0;
}

/* Removes the catalog entries of ids[0..n) from s and puts entry where the first one was. */
static int catalog_replace(catalog_state *s, const uint64_t *ids, size_t n,
                           const catalog_seg *entry)
{
    size_t out = 0, at = SIZE_MAX, removed = 0;
    for (size_t idx = 0; idx < s->count; idx++) {
        bool gone = false;
        for (size_t k = 0; k < n && !gone; k++) gone = s->segs[idx].id == ids[k];
        if (gone) {
            if (at == SIZE_MAX) at = out;
            removed++;
            continue;
        }
        s->segs[out++] = s->segs[idx];
    }
    s->count = out;
    if (removed != n || at == SIZE_MAX) return QR_EINVAL;
    int rc = catalog_state_add(s, entry);
    if (rc) return rc;
    memmove(&s->segs[at + 1], &s->segs[at], (s->count - 1 - at) * sizeof *s->segs);
    s->segs[at] = *entry;
    return 0;
}

/* One merge in t, if a run qualifies (*did says). compact_mu must be held. */
static int tenant_compact_one(db_t *db, tenant *t, bool force, db_compact_report *r, bool *did,
                              qr_diag *d)
{
    *did = false;
    pthread_mutex_lock(&t->cat_mu);
    pthread_mutex_lock(&t->mu);
    size_t first = 0;
    size_t n = compact_pick_locked(db, t, force, &first);
    qr_part **parts = n ? calloc(n, sizeof *parts) : NULL;
    uint64_t *ids = n ? calloc(n, sizeof *ids) : NULL;
    uint64_t seg_id = 0, bytes_in = 0;
    if (n && parts && ids) {
        for (size_t k = 0; k < n; k++) {
            parts[k] = t->segs[first + k];
            qr_part_ref(parts[k]);
            ids[k] = parts[k]->id;
        }
        for (size_t c = 0; c < t->catalog.count; c++)
            for (size_t k = 0; k < n; k++)
                if (t->catalog.segs[c].id == ids[k]) bytes_in += t->catalog.segs[c].bytes;
        seg_id = t->catalog.next_segment_id++; /* stored with the next catalog */
    }
    pthread_mutex_unlock(&t->mu);
    pthread_mutex_unlock(&t->cat_mu);
    if (!n) return 0;
    int rc = parts && ids ? 0 : QR_ENOMEM;

    catalog_seg entry;
    memset(&entry, 0, sizeof entry);
    entry.id = seg_id;
    snprintf(entry.file, sizeof entry.file, "%016" PRIu64 SEG_FILE_SUFFIX, seg_id);
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/%s", t->dir, entry.file);
    seg_write_opts wopts =
        compact_seg_opts(db->opts.compact_zstd_level, db->opts.compact_frame_bytes);
    wopts.block_rows = db->opts.block_rows;
    wopts.segment_id = seg_id;
    seg_stats st;
    memset(&st, 0, sizeof st);
    qr_part *seg = NULL;
    if (!rc) rc = compact_merge(parts, n, path, &wopts, &db->compact_cancel, &st, d);
    if (!rc) rc = seg_open(path, &seg, d);
    bool published = false;
    if (!rc) {
        entry.rows = seg->row_count;
        entry.min_ts_ns = seg->min_ts_ns;
        entry.max_ts_ns = seg->max_ts_ns;
        entry.bytes = st.file_bytes;
        pthread_mutex_lock(&t->cat_mu);
        pthread_mutex_lock(&t->mu);
        catalog_state next;
        rc = catalog_state_copy(&next, &t->catalog);
        pthread_mutex_unlock(&t->mu);
        if (!rc) {
            rc = catalog_replace(&next, ids, n, &entry);
            if (rc == QR_EINVAL)
                qr_diag_set(d, rc, "compaction: the merged segments left the catalog");
        }
        if (!rc) rc = catalog_store(t->dir, &next, d);
        if (!rc) {
            pthread_mutex_lock(&t->mu);
            catalog_state_fini(&t->catalog);
            t->catalog = next;
            size_t at = 0;
            while (at < t->seg_count && t->segs[at] != parts[0]) at++;
            size_t out = 0;
            for (size_t idx = 0; idx < t->seg_count; idx++) {
                bool gone = false;
                for (size_t k = 0; k < n && !gone; k++) gone = t->segs[idx] == parts[k];
                if (gone) {
                    qr_part_unref(t->segs[idx]); /* the tenant's reference */
                    if (idx == at) t->segs[out++] = seg;
                    continue;
                }
                t->segs[out++] = t->segs[idx];
            }
            t->seg_count = out;
            pthread_mutex_unlock(&t->mu);
            published = true;
        } else {
            catalog_state_fini(&next);
        }
        pthread_mutex_unlock(&t->cat_mu);
    }
    if (!published) {
        /* nothing names the new file (a failed catalog store may have left the new
         * catalog behind; then db_open finds it named and keeps it) */
        if (seg) qr_part_unref(seg);
        if (rc != QR_EIO) unlink(path);
    }
    for (size_t k = 0; parts && k < n; k++) {
        if (parts[k]) {
            if (published) seg_unlink_on_close(parts[k]); /* when the last snapshot ends */
            qr_part_unref(parts[k]);
        }
    }
    free(parts);
    free(ids);
    if (rc) return rc;
    *did = true;
    pthread_mutex_lock(&db->mu);
    db->total_compactions++;
    pthread_mutex_unlock(&db->mu);
    if (r) {
        r->merges++;
        r->segments_in += n;
        r->rows += entry.rows;
        r->bytes_in += bytes_in;
        r->bytes_out += entry.bytes;
    }
    return 0;
}

/* One pass over the tenants; *did when any merge happened. compact_mu must be held. */
static int db_compact_pass(db_t *db, const char *only, bool force, db_compact_report *r, bool *did,
                           qr_diag *d)
{
    *did = false;
    pthread_mutex_lock(&db->mu);
    size_t count = db->tenant_count;
    pthread_mutex_unlock(&db->mu);
    for (size_t idx = 0; idx < count; idx++) {
        pthread_mutex_lock(&db->mu);
        tenant *t = db->tenants[idx];
        pthread_mutex_unlock(&db->mu);
        if (only && strcmp(only, t->name) != 0) continue;
        bool one = false;
        int rc = tenant_compact_one(db, t, force, r, &one, d);
        if (rc) return rc;
        *did = *did || one;
    }
    return 0;
}

int db_compact(db_t *db, const char *tenant_name, db_compact_report *report, qr_diag *d)
{
    db_compact_report local;
    if (!report) report = &local;
    memset(report, 0, sizeof *report);
    pthread_mutex_lock(&db->compact_mu);
    int rc = 0;
    bool did = true;
    while (!rc && did) rc = db_compact_pass(db, tenant_name, true, report, &did, d);
    pthread_mutex_unlock(&db->compact_mu);
    return rc;
}

static void *compact_main(void *arg)
{
    db_t *db = arg;
    int64_t retry_ns = 0; /* after a failure, wait before trying again */
    pthread_mutex_lock(&db->mu);
    while (!db->compact_stopping) {
        bool did = false;
        if (qr_monotonic_ns() >= retry_ns) {
            pthread_mutex_unlock(&db->mu);
            qr_diag d;
            qr_diag_init(&d);
            pthread_mutex_lock(&db->compact_mu);
            int rc = db_compact_pass(db, NULL, false, NULL, &did, &d);
            pthread_mutex_unlock(&db->compact_mu);
            if (rc && rc != QR_ECANCELED) {
                fprintf(stderr, "quarry: background compaction failed: %s (retrying in 60 s)\n",
                        d.msg[0] ? d.msg : qr_strerror(rc));
                retry_ns = qr_monotonic_ns() + 60000 * QR_NS_PER_MS;
                did = false;
            }
            pthread_mutex_lock(&db->mu);
        }
        if (!did && !db->compact_stopping) cond_wait_ms(&db->compact_cond, &db->mu, 1000);
    }
    pthread_mutex_unlock(&db->mu);
    return NULL;
}

/* --- open / close ---------------------------------------------------------------------- */

typedef struct replay_ctx {
    db_t *db;
    qr_diag *d;
    int rc;
} replay_ctx;

static int replay_cb(void *ctx_, uint64_t lsn, const char *tenant_name, qr_batch *batch)
{
    replay_ctx *ctx = ctx_;
    db_t *db = ctx->db;
    tenant *t;
    int rc = tenant_get(db, tenant_name, true, &t, ctx->d);
    if (rc) return rc;
    if (lsn <= t->catalog.flushed_lsn) return 0; /* already in a segment */
    pthread_mutex_lock(&t->mu);
    rc = memtab_append(t->active, batch, lsn);
    bool due = memtab_rows(t->active) >= db->opts.flush_rows ||
               memtab_bytes(t->active) >= db->opts.flush_bytes;
    if (!rc && due) rc = tenant_freeze_locked(db, t);
    pthread_mutex_unlock(&t->mu);
    /* flush inline so replaying a long WAL stays within memory bounds */
    while (!rc && t->frozen_count) rc = tenant_flush_one(db, t, ctx->d);
    return rc;
}

static int db_lock_dir(db_t *db, qr_diag *d)
{
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/LOCK", db->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return qr_diag_errno(d, QR_EIO, "cannot open %s", path);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        if (n > 0) pid[n] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        return qr_diag_set(d, QR_EBUSY, "data directory %s is in use by another process (pid %s)",
                           db->dir, pid[0] ? pid : "?");
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        close(fd);
        return qr_diag_errno(d, QR_EIO, "cannot write %s", path);
    }
    db->lock_fd = fd;
    return 0;
}

static int db_load_tenants(db_t *db, qr_diag *d)
{
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/tenants", db->dir);
    int rc = qr_fs_mkdirs(path, d);
    if (rc) return rc;
    DIR *dir = opendir(path);
    if (!dir) return qr_diag_errno(d, QR_EIO, "cannot open %s", path);
    struct dirent *de;
    while (!rc && (de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.' || !db_tenant_name_ok(de->d_name)) continue;
        tenant *t;
        rc = tenant_get(db, de->d_name, true, &t, d);
    }
    closedir(dir);
    return rc;
}

/* Every flush frees a memtable's batches and the segment writer's work arrays (hundreds of
 * MB) and the next ones are allocated right after: glibc would hand that memory back to the
 * kernel (trim, munmap of large blocks) and take page faults to get it again, ~10 % of the
 * ingest CPU. Keeping freed memory in the heap for reuse costs nothing in steady state (the
 * peak is bounded by the memtable limits either way). Process-wide, set once. */
static void db_malloc_tune_once(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

void db_malloc_tune(void)
{
    static pthread_once_t malloc_once = PTHREAD_ONCE_INIT;
    pthread_once(&malloc_once, db_malloc_tune_once);
}

int db_open(const char *dir, const db_opts *opts, db_t **out, wal_replay_report *report, qr_diag *d)
{
    db_malloc_tune();
    if (strlen(dir) >= PATH_CAP - 200) return qr_diag_set(d, QR_EINVAL, "data path too long");
    db_t *db = calloc(1, sizeof *db);
    if (!db) return QR_ENOMEM;
    snprintf(db->dir, sizeof db->dir, "%s", dir);
    if (opts) db->opts = *opts;
    opts_defaults(&db->opts);
    db->lock_fd = -1;
    pthread_mutex_init(&db->mu, NULL);
    pthread_cond_init(&db->flush_cond, NULL);
    pthread_cond_init(&db->flush_done, NULL);
    pthread_mutex_init(&db->compact_mu, NULL);
    pthread_cond_init(&db->compact_cond, NULL);
    atomic_init(&db->compact_cancel, false);
    db->inflight_head.next = db->inflight_head.prev = &db->inflight_head;

    int rc = qr_fs_mkdirs(dir, d);
    if (!rc) rc = db_lock_dir(db, d);
    if (!rc) rc = db_load_tenants(db, d);
    if (!rc) {
        char wal_dir[PATH_CAP];
        snprintf(wal_dir, sizeof wal_dir, "%s/wal", dir);
        rc = wal_open(wal_dir, &db->opts.wal, &db->wal, d);
    }
    if (!rc) {
        wal_replay_report local;
        replay_ctx ctx = {.db = db, .d = d};
        rc = wal_replay(db->wal, replay_cb, &ctx, report ? report : &local, d);
    }
    if (!rc) {
        /* LSNs keep growing even when a clean close removed every WAL file */
        uint64_t flushed = 0;
        for (size_t idx = 0; idx < db->tenant_count; idx++)
            if (db->tenants[idx]->catalog.flushed_lsn > flushed)
                flushed = db->tenants[idx]->catalog.flushed_lsn;
        rc = wal_advance_lsn(db->wal, flushed + 1, d);
    }
    if (!rc) rc = db_release_wal(db, d);
    if (!rc) {
        if (pthread_create(&db->flush_thread, NULL, flush_main, db) != 0)
            rc = qr_diag_set(d, QR_ENOMEM, "cannot start the flush thread");
        else
            db->flush_thread_running = true;
    }
    if (!rc && !db->opts.compact_off) {
        if (pthread_create(&db->compact_thread, NULL, compact_main, db) != 0)
            rc = qr_diag_set(d, QR_ENOMEM, "cannot start the compaction thread");
        else
            db->compact_thread_running = true;
    }
    if (rc) {
        db->opts.no_flush_on_close = true;
        db_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void db_remove_wal_files(const char *wal_dir)
{
    DIR *dir = opendir(wal_dir);
    if (!dir) return;
    char *names[4096];
    size_t count = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL && count < 4096) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".wal") == 0)
            names[count++] = strdup(de->d_name);
    }
    closedir(dir);
    qsort(names, count, sizeof *names, cmp_names);
    for (size_t idx = 0; idx < count; idx++) {
        char path[PATH_CAP];
        if (names[idx]) {
            snprintf(path, sizeof path, "%s/%s", wal_dir, names[idx]);
            unlink(path);
        }
        free(names[idx]);
    }
    qr_fs_fsync_dir(wal_dir, NULL);
}

void db_close(db_t *db)
{
    if (!db) return;
    if (db->compact_thread_running) {
        /* a merge in progress is abandoned: its inputs stay published */
        atomic_store(&db->compact_cancel, true);
        pthread_mutex_lock(&db->mu);
        db->compact_stopping = true;
        pthread_cond_signal(&db->compact_cond);
        pthread_mutex_unlock(&db->mu);
        pthread_join(db->compact_thread, NULL);
        db->compact_thread_running = false;
    }
    if (db->flush_thread_running) {
        pthread_mutex_lock(&db->mu);
        db->stopping = true;
        pthread_cond_signal(&db->flush_cond);
        pthread_mutex_unlock(&db->mu);
        pthread_join(db->flush_thread, NULL);
        db->flush_thread_running = false;
    }
    bool all_flushed = false;
    if (!db->opts.no_flush_on_close && db->wal) {
        qr_diag d;
        qr_diag_init(&d);
        if (db_flush_pass(db, true, &d) != 0)
            fprintf(stderr, "quarry: flush at close failed: %s (data stays in the WAL)\n", d.msg);
        else
            all_flushed = true;
        for (size_t idx = 0; idx < db->tenant_count; idx++)
            if (memtab_rows(db->tenants[idx]->active) || db->tenants[idx]->frozen_count)
                all_flushed = false;
    }
    wal_close(db->wal);
    if (all_flushed) {
        /* every row is in a published segment: the log is redundant; remove it oldest first
         * (db_open carries the LSN on from the catalogs) */
        char wal_dir[PATH_CAP];
        snprintf(wal_dir, sizeof wal_dir, "%s/wal", db->dir);
        db_remove_wal_files(wal_dir);
    }
    for (size_t idx = 0; idx < db->tenant_count; idx++) tenant_free(db->tenants[idx]);
    free(db->tenants);
    if (db->lock_fd >= 0) close(db->lock_fd);
    pthread_mutex_destroy(&db->mu);
    pthread_cond_destroy(&db->flush_cond);
    pthread_cond_destroy(&db->flush_done);
    pthread_mutex_destroy(&db->compact_mu);
    pthread_cond_destroy(&db->compact_cond);
    free(db);
}

/* --- ingest ------------------------------------------------------------------------------ */

static int db_ingest_impl(db_t *db, const char *tenant_name, qr_batch *batch, bool take, qr_diag *d)
{
    if (!tenant_name) tenant_name = DB_DEFAULT_TENANT;
    if (!batch->count) return 0;
    if (batch->bytes > QR_BATCH_MAX_BYTES)
        return qr_diag_set(d, QR_ELIMIT, "batch of %zu bytes is over the %d-byte limit",
                           batch->bytes, QR_BATCH_MAX_BYTES);
    tenant *t;
    int rc = tenant_get(db, tenant_name, true, &t, d);
    if (rc) return rc;

    pthread_mutex_lock(&t->mu);
    /* backpressure: wait while the tenant's flushes lag behind; give up with the flush's
     * error when flushing keeps failing (e.g. a full disk) rather than hang. A full active
     * memtable is frozen here when there is room, not left to grow until the flush thread,
     * busy writing a segment, gets to it: the active memtable stays within one batch of
     * flush_rows / flush_bytes, so memory is bounded whatever the ingest rate.
     * Lock order is db->mu before t->mu, so nothing here takes db->mu. */
    for (;;) {
        if (!t->freezing && t->frozen_count < db->opts.max_frozen) {
            if (memtab_rows(t->active) < db->opts.flush_rows &&
                memtab_bytes(t->active) < db->opts.flush_bytes)
                break;
            rc = tenant_freeze_locked(db, t);
            pthread_cond_signal(&db->flush_cond); /* a missed wake-up costs one 100 ms tick */
            if (rc) {
                pthread_mutex_unlock(&t->mu);
                return qr_diag_set(d, rc, "cannot freeze the memtable: %s", qr_strerror(rc));
            }
            continue;
        }
        if (t->frozen_count >= db->opts.max_frozen) {
            if (atomic_load(&db->flush_failing)) {
                pthread_mutex_unlock(&t->mu);
                pthread_mutex_lock(&db->mu);
                qr_diag fd = db->flush_diag;
                pthread_mutex_unlock(&db->mu);
                return qr_diag_set(d, QR_EIO, "ingest paused: segments cannot be written (%s)",
                                   fd.msg[0] ? fd.msg : "flush failed");
            }
            pthread_cond_signal(&db->flush_cond); /* a missed wake-up costs one 100 ms tick */
        }
        cond_wait_ms(&t->cond, &t->mu, 200);
    }
    t->inflight++;
    pthread_mutex_unlock(&t->mu);

    inflight_node node;
    wal_stats ws;
    pthread_mutex_lock(&db->mu);
    wal_get_stats(db->wal, &ws);
    node.floor_lsn = ws.last_lsn + 1;
    node.next = db->inflight_head.next;
    node.prev = &db->inflight_head;
    node.next->prev = &node;
    db->inflight_head.next = &node;
    pthread_mutex_unlock(&db->mu);

    uint64_t lsn = 0;
    rc = wal_append(db->wal, t->name, batch, &lsn, d);

    pthread_mutex_lock(&t->mu);
    if (!rc) {
        /* observers see the batch in memtable order, before a take empties it */
        for (size_t idx = 0; idx < db->observer_count; idx++)
            db->observers[idx].fn(db->observers[idx].ctx, t->name, batch, lsn);
        rc =
            take ? memtab_append_take(t->active, batch, lsn) : memtab_append(t->active, batch, lsn);
    }
    bool due = !rc && (memtab_rows(t->active) >= db->opts.flush_rows ||
                       memtab_bytes(t->active) >= db->opts.flush_bytes);
    t->inflight--;
    if (!t->inflight) pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->mu);

    pthread_mutex_lock(&db->mu);
    node.prev->next = node.next;
    node.next->prev = node.prev;
    if (due) pthread_cond_signal(&db->flush_cond);
    pthread_mutex_unlock(&db->mu);
    if (rc == QR_ENOMEM) qr_diag_set(d, rc, "out of memory adding rows to the memtable");
    return rc;
}

int db_ingest(db_t *db, const char *tenant, const qr_batch *batch, qr_diag *d)
{
    return db_ingest_impl(db, tenant, (qr_batch *)batch, false, d);
}

int db_ingest_take(db_t *db, const char *tenant, qr_batch *batch, qr_diag *d)
{
    return db_ingest_impl(db, tenant, batch, true, d);
}

/* --- snapshots ---------------------------------------------------------------------------- */

int db_observer_add(db_t *db, db_observer_fn fn, void *ctx)
{
    if (!fn) return QR_EINVAL;
    if (db->observer_count == DB_MAX_OBSERVERS) return QR_ELIMIT;
    db->observers[db->observer_count].fn = fn;
    db->observers[db->observer_count].ctx = ctx;
    db->observer_count++;
    return 0;
}

const char *db_dir(const db_t *db) { return db->dir; }

static int snapshot_open(db_t *db, const char *tenant_name, void (*sync_fn)(void *ctx),
                         void *sync_ctx, db_snapshot **out)
{
    if (!tenant_name) tenant_name = DB_DEFAULT_TENANT;
    db_snapshot *s = calloc(1, sizeof *s);
    if (!s) return QR_ENOMEM;
    tenant *t;
    /* a synchronized snapshot creates the tenant so that its lock orders the callback
     * against every later ingest */
    int rc = tenant_get(db, tenant_name, sync_fn != NULL, &t, NULL);
    if (rc == QR_ENOTFOUND) {
        *out = s;
        return 0;
    }
    if (rc) {
        free(s);
        return rc;
    }
    pthread_mutex_lock(&t->mu);
    size_t cap = t->seg_count + t->frozen_count + 1;
    s->parts = calloc(cap, sizeof *s->parts);
    if (!s->parts) rc = QR_ENOMEM;
    for (size_t idx = 0; !rc && idx < t->seg_count; idx++) {
        qr_part_ref(t->segs[idx]);
        s->parts[s->count++] = t->segs[idx];
    }
    for (size_t idx = 0; !rc && idx < t->frozen_count; idx++) {
        rc = memtab_part(t->frozen[idx], &s->parts[s->count]);
        if (!rc) s->count++;
    }
    if (!rc && memtab_rows(t->active)) {
        rc = memtab_part(t->active, &s->parts[s->count]);
        if (!rc) s->count++;
    }
    if (!rc && sync_fn) sync_fn(sync_ctx);
    pthread_mutex_unlock(&t->mu);
    if (rc) {
        db_snapshot_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int db_snapshot_open(db_t *db, const char *tenant_name, db_snapshot **out)
{
    return snapshot_open(db, tenant_name, NULL, NULL, out);
}

int db_snapshot_open_sync(db_t *db, const char *tenant_name, void (*fn)(void *ctx), void *ctx,
                          db_snapshot **out)
{
    return snapshot_open(db, tenant_name, fn, ctx, out);
}

void db_snapshot_free(db_snapshot *s)
{
    if (!s) return;
    for (size_t idx = 0; idx < s->count; idx++) qr_part_unref(s->parts[idx]);
    free(s->parts);
    free(s);
}

size_t db_snapshot_part_count(const db_snapshot *s) { return s->count; }
qr_part *db_snapshot_part(const db_snapshot *s, size_t idx)
{
    return idx < s->count ? s->parts[idx] : NULL;
}

int db_tenants(db_t *db, char ***names, size_t *count)
{
    pthread_mutex_lock(&db->mu);
    char **arr = calloc(db->tenant_count ? db->tenant_count : 1, sizeof *arr);
    int rc = arr ? 0 : QR_ENOMEM;
    for (size_t idx = 0; !rc && idx < db->tenant_count; idx++) {
        arr[idx] = strdup(db->tenants[idx]->name);
        if (!arr[idx]) rc = QR_ENOMEM;
    }
    size_t n = db->tenant_count;
    pthread_mutex_unlock(&db->mu);
    if (rc) {
        db_tenants_free(arr, n);
        return rc;
    }
    *names = arr;
    *count = n;
    return 0;
}

void db_tenants_free(char **names, size_t count)
{
    if (!names) return;
    for (size_t idx = 0; idx < count; idx++) free(names[idx]);
    free(names);
}

void db_get_stats(db_t *db, db_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&db->mu);
    out->tenants = db->tenant_count;
    out->flushes = db->total_flushes;
    out->compactions = db->total_compactions;
    for (size_t idx = 0; idx < db->tenant_count; idx++) {
        tenant *t = db->tenants[idx];
        pthread_mutex_lock(&t->mu);
        out->segments += t->seg_count;
        for (size_t s = 0; s < t->catalog.count; s++) {
            out->segment_rows += t->catalog.segs[s].rows;
            out->segment_bytes += t->catalog.segs[s].bytes;
        }
        out->memtable_rows += memtab_rows(t->active);
        out->memtable_bytes += memtab_bytes(t->active);
        for (size_t f = 0; f < t->frozen_count; f++) {
            out->memtable_rows += memtab_rows(t->frozen[f]);
            out->memtable_bytes += memtab_bytes(t->frozen[f]);
        }
        out->frozen_memtables += t->frozen_count;
        pthread_mutex_unlock(&t->mu);
    }
    pthread_mutex_unlock(&db->mu);
    wal_get_stats(db->wal, &out->wal);
}

/* --- check --------------------------------------------------------------------------------- */

static void check_problem(db_check_report *r, const char *fmt, const char *a, const char *b)
{
    r->ok = false;
    if (r->problem_count < sizeof r->problems / sizeof r->problems[0])
        snprintf(r->problems[r->problem_count], sizeof r->problems[0], fmt, a, b);
    r->problem_count++;
}

static void stats_add(seg_stats *sum, const seg_stats *s)
{
    sum->rows += s->rows;
    sum->blocks += s->blocks;
    sum->file_bytes += s->file_bytes;
    sum->ts_bytes += s->ts_bytes;
    sum->ingest_ts_bytes += s->ingest_ts_bytes;
    sum->level_bytes += s->level_bytes;
    sum->service_bytes += s->service_bytes;
    sum->host_bytes += s->host_bytes;
    sum->msg_bytes += s->msg_bytes;
    sum->field_bytes += s->field_bytes;
    sum->bloom_bytes += s->bloom_bytes;
    sum->postings_bytes += s->postings_bytes;
    sum->meta_bytes += s->meta_bytes;
}

typedef struct check_wal_ctx {
    db_check_report *r;
    const char *dir;
    char names[16][QR_TENANT_MAX_BYTES + 1]; /* flushed LSN per tenant, looked up once */
    uint64_t flushed[16];
    size_t count;
} check_wal_ctx;

static int check_wal_record(void *ctx_, uint64_t lsn, const char *tenant_name, qr_batch *batch)
{
    check_wal_ctx *ctx = ctx_;
    uint64_t flushed = 0;
    size_t idx = 0;
    while (idx < ctx->count && strcmp(ctx->names[idx], tenant_name) != 0) idx++;
    if (idx < ctx->count) {
        flushed = ctx->flushed[idx];
    } else {
        char tdir[PATH_CAP];
        snprintf(tdir, sizeof tdir, "%s/tenants/%s", ctx->dir, tenant_name);
        catalog_state cs;
        if (catalog_load(tdir, &cs, NULL) == 0) {
            flushed = cs.flushed_lsn;
            catalog_state_fini(&cs);
        }
        if (ctx->count < 16) {
            snprintf(ctx->names[ctx->count], sizeof ctx->names[0], "%s", tenant_name);
            ctx->flushed[ctx->count++] = flushed;
        }
    }
    if (lsn > flushed) ctx->r->wal_events += batch->count;
    return 0;
}

int db_check(const char *dir, db_check_report *r, qr_diag *d)
{
    memset(r, 0, sizeof *r);
    r->ok = true;
    char path[PATH_CAP];
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return qr_diag_set(d, QR_ENOTFOUND, "%s is not a data directory", dir);
    snprintf(path, sizeof path, "%s/tenants", dir);
    DIR *tdir = opendir(path);
    struct dirent *de;
    while (tdir && (de = readdir(tdir)) != NULL) {
        if (de->d_name[0] == '.' || !db_tenant_name_ok(de->d_name)) continue;
        r->tenants++;
        char tpath[PATH_CAP];
        snprintf(tpath, sizeof tpath, "%s/tenants/%s", dir, de->d_name);
        catalog_state cs;
        qr_diag cd;
        qr_diag_init(&cd);
        if (catalog_load(tpath, &cs, &cd) != 0) {
            check_problem(r, "%s%s", cd.msg, "");
            continue;
        }
        for (size_t idx = 0; idx < cs.count; idx++) {
            char spath[PATH_CAP];
            snprintf(spath, sizeof spath, "%s/%s", tpath, cs.segs[idx].file);
            qr_part *p = NULL;
            seg_stats ss;
            memset(&ss, 0, sizeof ss);
            qr_diag sd;
            qr_diag_init(&sd);
            int rc = seg_open(spath, &p, &sd);
            if (!rc) rc = seg_verify(p, &ss, &sd);
            if (!rc && ss.rows != cs.segs[idx].rows) {
                rc = QR_ECORRUPT;
                qr_diag_set(&sd, rc, "%s: holds %llu rows, the catalog says %llu", spath,
                            (unsigned long long)ss.rows, (unsigned long long)cs.segs[idx].rows);
            }
            if (rc) {
                check_problem(r, "%s%s", sd.msg[0] ? sd.msg : qr_strerror(rc), "");
            } else {
                r->segments++;
                r->segment_rows += ss.rows;
                stats_add(&r->columns, &ss);
                r->bytes += ss.file_bytes;
            }
            qr_part_unref(p);
        }
        catalog_state_fini(&cs);
    }
    if (tdir) closedir(tdir);

    snprintf(path, sizeof path, "%s/wal", dir);
    if (stat(path, &st) == 0) {
        wal_replay_report wr;
        memset(&wr, 0, sizeof wr);
        qr_diag wd;
        qr_diag_init(&wd);
        check_wal_ctx ctx = {.r = r, .dir = dir};
        int rc = wal_scan_dir(path, check_wal_record, &ctx, &wr, &wd);
        r->wal_files = wr.files;
        r->wal_records = wr.records;
        if (rc == QR_ECORRUPT && wr.torn_tail) {
            /* a crash cut the last append short: unacknowledged, dropped at the next open */
            r->wal_torn_tail_bytes = wr.skipped_bytes;
        } else if (rc == QR_ECORRUPT || wr.skipped_offset >= 0) {
            char where[400];
            snprintf(where, sizeof where, "%s offset %lld: %s", wr.skipped_file,
                     (long long)wr.skipped_offset, wr.skipped_reason);
            check_problem(r, "WAL: %s%s", where, "");
        } else if (rc) {
            check_problem(r, "WAL: %s%s", wd.msg, "");
        }
        DIR *wdir = opendir(path);
        while (wdir && (de = readdir(wdir)) != NULL) {
            char wpath[PATH_CAP];
            snprintf(wpath, sizeof wpath, "%s/%s", path, de->d_name);
            if (de->d_name[0] != '.' && stat(wpath, &st) == 0 && S_ISREG(st.st_mode))
                r->wal_bytes += (uint64_t)st.st_size;
        }
        if (wdir) closedir(wdir);
        r->bytes += r->wal_bytes;
    }
    r->events = r->segment_rows + r->wal_events;
    if (!r->ok) return qr_diag_set(d, QR_ECORRUPT, "%s", r->problems[0]);
    return 0;
}

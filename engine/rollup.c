/* rollup — the rollup manager: definitions, open windows on the ingest stream, closing by wall
 * clock, persistence and the rebuild from stored events (contract in rollup.h).
 *
 * Windows. Per rollup a chained hash table maps (bucket start t, label key) to one
 * cq_agg_state per aggregate. The observer runs each batch through the rollup's filter and
 * adds every matching event to its window; nothing is allocated per event once a window
 * exists (the key is built in a reused buffer and compared before any allocation).
 *
 * Closing. The watermark closed_through_ns is the largest multiple of the interval at or
 * before now - lateness: bucket [s, s + interval) is closed when s + interval <= watermark.
 * It only moves forward, so "closed" needs no per-window flag: an event whose bucket ends at
 * or before the watermark is late (counted, not added). A tick takes the due windows out of
 * the table into `closing` (queries still see them), writes them as one file and publishes
 * the MANIFEST with the new watermark, then moves the file into the list. The watermark on
 * disk therefore always matches the files: after a crash the rebuild starts from it.
 *
 * Rebuild. db_snapshot_open_sync registers the rollup with the observer at the instant the
 * snapshot is taken, so every event is either in the snapshot or observed, never both. The
 * snapshot's events at or after the watermark are decoded block by block into batches and
 * fed through the same per-event code as the observer (same filter, same states), into a
 * private table merged into the live one at the end. Until then the rollup is "backfilling":
 * ticks do not close its windows and the query rewrite does not use it. */
#include "common/qr_fs.h"
#include "common/qr_hash.h"
#include "common/qr_time.h"
#include "engine/rollup_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RU_DEF_MAX_BYTES (64 * 1024)
#define RU_MANIFEST_MAX_BYTES (64u * 1024 * 1024)
/* late events alone republish the MANIFEST at most this often (each publish is an fsync) */
#define RU_LATE_PUBLISH_NS (5 * QR_NS_PER_SEC)
/* window files under this size are merged together (RU_MERGE_FILES); larger ones are left */
#define RU_MERGE_SMALL_BYTES (16u * 1024 * 1024)

static void list_remove(rollup_mgr *m, rollup *r);

int64_t ru_now(const rollup_mgr *m)
{
    return m->opts.clock_ns ? m->opts.clock_ns(m->opts.clock_ctx) : qr_now_ns();
}

/* ---- windows -------------------------------------------------------------------------------- */

void ru_win_free(ru_win *w, const ru_def *def)
{
    if (!w) return;
    for (uint32_t ai = 0; w->st && ai < def->agg_count; ai++) cq_agg_free(w->st[ai]);
    free(w->st);
    free(w->key);
    free(w);
}

static uint64_t win_hash(int64_t t, const uint8_t *key, uint32_t len)
{
    return qr_hash64_seed(key, len, (uint64_t)t);
}

static int table_grow(ru_table *t)
{
    size_t cap = t->cap ? t->cap * 2 : 64;
    ru_win **slots = calloc(cap, sizeof *slots);
    if (!slots) return QR_ENOMEM;
    for (size_t idx = 0; idx < t->cap; idx++) {
        ru_win *w = t->slots[idx];
        while (w) {
            ru_win *next = w->next;
            size_t pos = w->hash & (cap - 1);
            w->next = slots[pos];
            slots[pos] = w;
            w = next;
        }
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}

ru_win *ru_table_get(ru_table *t, const ru_def *def, int64_t bucket_t, const uint8_t *key,
                     uint32_t key_len, int *err)
{
    uint64_t h = win_hash(bucket_t, key, key_len);
    if (t->cap) {
        for (ru_win *w = t->slots[h & (t->cap - 1)]; w; w = w->next)
            if (w->hash == h && w->t == bucket_t && w->key_len == key_len &&
                (key_len == 0 || memcmp(w->key, key, key_len) == 0))
                return w;
    }
    if ((t->count + 1) > t->cap * 3 / 4 && table_grow(t)) {
        *err = QR_ENOMEM;
        return NULL;
    }
    ru_win *w = calloc(1, sizeof *w);
    if (!w) goto oom;
    w->t = bucket_t;
    w->hash = h;
    w->key_len = key_len;
    w->key = malloc(key_len + 1);
    w->st = calloc(def->agg_count + 1, sizeof *w->st);
    if (!w->key || !w->st) goto oom;
    if (key_len) memcpy(w->key, key, key_len);
    for (uint32_t ai = 0; ai < def->agg_count; ai++) {
        w->st[ai] = cq_agg_new(&def->aggs[ai].spec);
        if (!w->st[ai]) goto oom;
    }
    size_t pos = h & (t->cap - 1);
    w->next = t->slots[pos];
    t->slots[pos] = w;
    t->count++;
    return w;
oom:
    ru_win_free(w, def);
    *err = QR_ENOMEM;
    return NULL;
}

void ru_table_fini(ru_table *t, const ru_def *def)
{
    for (size_t idx = 0; idx < t->cap; idx++) {
        ru_win *w = t->slots[idx];
        while (w) {
            ru_win *next = w->next;
            ru_win_free(w, def);
            w = next;
        }
    }
    free(t->slots);
    memset(t, 0, sizeof *t);
}

/* Moves or merges every window of from into into; from ends empty. */
static int table_absorb(ru_table *into, ru_table *from, const ru_def *def)
{
    int rc = 0;
    for (size_t idx = 0; idx < from->cap; idx++) {
        ru_win *w = from->slots[idx];
        while (w) {
            ru_win *next = w->next;
            int err = 0;
            ru_win *dst = rc ? NULL : ru_table_get(into, def, w->t, w->key, w->key_len, &err);
            if (!dst && !rc) rc = err;
            for (uint32_t ai = 0; dst && ai < def->agg_count && !rc; ai++)
                rc = cq_agg_merge(&def->aggs[ai].spec, dst->st[ai], w->st[ai]);
            ru_win_free(w, def);
            w = next;
        }
        from->slots[idx] = NULL;
    }
    from->count = 0;
    ru_table_fini(from, def);
    return rc;
}

static void label_value(const ru_label *l, const qr_batch *b, const qr_event *e, exec_value *v)
{
    memset(v, 0, sizeof *v);
    switch (l->src) {
    case RU_LABEL_SERVICE:
        v->type = EXEC_STRING;
        v->v.s = e->service;
        return;
    case RU_LABEL_HOST:
        v->type = EXEC_STRING;
        v->v.s = e->host;
        return;
    case RU_LABEL_LEVEL:
        v->type = EXEC_LEVEL;
        v->v.i = e->level;
        return;
    default:
        break;
    }
    const qr_field *f = qr_event_fields(b, e);
    for (uint32_t idx = 0; idx < e->field_count; idx++) {
        if (f[idx].key.len != l->field_len || memcmp(f[idx].key.ptr, l->field, l->field_len))
            continue;
        switch (f[idx].type) {
        case QR_FT_STRING:
            v->type = EXEC_STRING;
            v->v.s = f[idx].v.s;
            return;
        case QR_FT_INT:
            v->type = EXEC_INT;
            v->v.i = f[idx].v.i;
            return;
        case QR_FT_FLOAT:
            v->type = EXEC_FLOAT;
            v->v.f = f[idx].v.f;
            return;
        case QR_FT_BOOL:
            v->type = EXEC_BOOL;
            v->v.b = f[idx].v.b;
            return;
        default:
            return;
        }
    }
}

/* Adds one event to its window. Returns 1 when it is late (its bucket is before first_t),
 * 0 when added or filtered out, or a negative error. *bucket_out: the event's bucket. */
static int event_add(const ru_def *def, evf *filter, ru_table *tab, qr_buf *key, int64_t first_t,
                     const qr_batch *b, const qr_event *e, int64_t *bucket_out)
{
    if (filter && !evf_match(filter, b, e)) return 0;
    int64_t t = ru_bucket(e->ts_ns, def->interval_ns);
    *bucket_out = t;
    if (t < first_t) return 1;
    qr_buf_clear(key);
    for (uint32_t li = 0; li < def->label_count; li++) {
        exec_value v;
        label_value(&def->labels[li], b, e, &v);
        ru_key_add(key, &v);
    }
    if (!qr_buf_ok(key)) return QR_ENOMEM;
    int err = 0;
    ru_win *w = ru_table_get(tab, def, t, key->data, (uint32_t)key->len, &err);
    if (!w) return err;
    for (uint32_t ai = 0; ai < def->agg_count; ai++) {
        int rc = cq_agg_add_event(&def->aggs[ai].spec, w->st[ai], b, e);
        if (rc) return rc;
    }
    return 0;
}

static void late_add(rollup *r, int64_t t)
{
    r->late_total++;
    r->late_dirty = true;
    for (size_t idx = r->late_n; idx-- > 0;) {
        if (r->late[idx].t == t) {
            r->late[idx].n++;
            return;
        }
    }
    if (r->late_n == r->late_cap) {
        size_t cap = r->late_cap ? r->late_cap * 2 : 16;
        ru_late *l = realloc(r->late, cap * sizeof *l);
        if (!l) return; /* the total still counts it */
        r->late = l;
        r->late_cap = cap;
    }
    r->late[r->late_n].t = t;
    r->late[r->late_n].n = 1;
    r->late_n++;
}

/* First bucket start that is still open. */
static int64_t first_open_t(const rollup *r) { return r->closed_through_ns; }

/* The observer shares one cq_batch among the rollups of a batch: each distinct WHERE conjunct
 * is evaluated once per batch (once per label class when it reads only labels), each column an
 * aggregate reads is looked up once per event, and the events are in label classes (equal
 * service, host, level) so that a window keyed by labels only is found once per class and
 * bucket. Per rollup what remains is the AND of its conjuncts' bitmaps and, per matching
 * event, the window (cached per class) and the aggregate updates — in event order, so the
 * states are exactly those of the per-event path (event_add). */
typedef struct win_cache {
    ru_win *w;
    int64_t t;
    uint32_t gen; /* == the rollup's turn in this batch: valid */
} win_cache;

/* One rollup over a batch through the shared context. QR_ENOMEM: nothing was added (the caller
 * takes the per-event path). */
/* A rollup whose filter reads only labels and whose windows are keyed by labels only, over
 * the batch's (class, bucket) groups shared with the other rollups of the interval: per group
 * one window lookup and count(*) += the group's size; other aggregates add the group's events
 * in batch order. Every window sees the same adds in the same order as event by event (and
 * new windows and late buckets appear in the same order). QR_ENOMEM / QR_ELIMIT: nothing was
 * added. */
static int observe_groups(rollup *r, cqb_batch *x, const qr_batch *batch, bool with_host,
                          const exec_value *const *vals)
{
    const ru_def *def = &r->def;
    cqb_groups g;
    uint8_t pass[CQB_CLASS_MAX];
    int rc = cqb_batch_groups(x, with_host, def->interval_ns, &g);
    if (!rc) rc = cqb_batch_class_pass(x, &def->where, with_host, pass);
    if (rc) return rc;
    int64_t first = first_open_t(r);
    for (size_t gi = 0; gi < g.n; gi++) {
        if (!pass[g.cls[gi]]) continue;
        int64_t t = g.t[gi];
        uint32_t lo = g.off[gi], hi = g.off[gi + 1];
        if (t < first) {
            for (uint32_t k = lo; k < hi; k++) late_add(r, t);
            continue;
        }
        const qr_event *e = &batch->events[g.rows[lo]];
        qr_buf_clear(&r->key);
        for (uint32_t li = 0; li < def->label_count; li++) {
            exec_value v;
            label_value(&def->labels[li], batch, e, &v);
            ru_key_add(&r->key, &v);
        }
        int err = 0;
        ru_win *w = qr_buf_ok(&r->key)
                        ? ru_table_get(&r->open, def, t, r->key.data, (uint32_t)r->key.len, &err)
                        : NULL;
        if (!w) continue; /* out of memory: the window misses the events */
        for (uint32_t ai = 0; ai < def->agg_count; ai++) {
            const cq_agg_spec *sp = &def->aggs[ai].spec;
            if (sp->kind == CQ_AGG_COUNT_STAR) {
                cq_agg_add_count(sp, w->st[ai], hi - lo);
                continue;
            }
            for (uint32_t k = lo; k < hi; k++)
                cq_agg_add_value(sp, w->st[ai], &vals[ai][g.rows[k]]);
        }
    }
    return 0;
}

static int observe_shared(rollup *r, cqb_batch *x, const qr_batch *batch, win_cache *cache,
                          uint32_t gen)
{
    const ru_def *def = &r->def;
    const exec_value *vals[RU_MAX_COLUMNS];
    for (uint32_t ai = 0; ai < def->agg_count; ai++) {
        const cq_agg_spec *sp = &def->aggs[ai].spec;
        vals[ai] = NULL;
        if (sp->kind != CQ_AGG_COUNT_STAR && !(vals[ai] = cqb_batch_column(x, sp->field)))
            return QR_ENOMEM;
    }
    if (cache && def->labels_slh) { /* whole label classes: by (class, bucket) group */
        bool with_host = !def->labels_sl;
        for (uint32_t ci = 0; ci < def->where.count; ci++)
            with_host |= def->where.conj[ci].reads_host;
        if (cqb_where_by_class(&def->where, with_host) &&
            !observe_groups(r, x, batch, with_host, vals))
            return 0;
    }
    const uint32_t *rows;
    size_t n;
    if (cqb_batch_select(x, &def->where, &rows, &n)) return QR_ENOMEM;
    if (!n) return 0;
    uint32_t ncls = 0;
    const uint16_t *cls = NULL; /* windows keyed by labels only: cached per class */
    if (cache && def->labels_slh) cls = cqb_batch_classes(x, !def->labels_sl, &ncls);
    int64_t first = first_open_t(r), iv = def->interval_ns;
    for (size_t ri = 0; ri < n; ri++) {
        uint32_t ei = rows[ri];
        const qr_event *e = &batch->events[ei];
        win_cache *wc = cls ? &cache[cls[ei]] : NULL;
        ru_win *w = NULL;
        if (wc && wc->gen == gen && e->ts_ns >= wc->t && e->ts_ns - wc->t < iv) {
            w = wc->w;
        } else {
            int64_t t = ru_bucket(e->ts_ns, iv);
            if (t < first) {
                late_add(r, t);
                continue;
            }
            qr_buf_clear(&r->key);
            for (uint32_t li = 0; li < def->label_count; li++) {
                exec_value v;
                label_value(&def->labels[li], batch, e, &v);
                ru_key_add(&r->key, &v);
            }
            int err = 0;
            if (qr_buf_ok(&r->key))
                w = ru_table_get(&r->open, def, t, r->key.data, (uint32_t)r->key.len, &err);
            if (!w) continue; /* out of memory: the window misses the event */
            if (wc) {
                wc->w = w;
                wc->t = t;
                wc->gen = gen;
            }
        }
        for (uint32_t ai = 0; ai < def->agg_count; ai++) {
            const cq_agg_spec *sp = &def->aggs[ai].spec;
            if (sp->kind == CQ_AGG_COUNT_STAR)
                cq_agg_add_count(sp, w->st[ai], 1);
            else
                cq_agg_add_value(sp, w->st[ai], &vals[ai][ei]);
        }
    }
    return 0;
}

/* The per-batch scratch: the manager's when free, else a new one (*own). */
static void scratch_take(rollup_mgr *m, cqb_batch **x, win_cache **cache, bool *own)
{
    *own = pthread_mutex_trylock(&m->scratch_mu) != 0;
    if (!*own) {
        if (!m->scratch_cqb) m->scratch_cqb = cqb_batch_new();
        if (!m->scratch_cache) m->scratch_cache = calloc(CQB_CLASS_MAX, sizeof *m->scratch_cache);
        *x = m->scratch_cqb;
        *cache = m->scratch_cache;
        return;
    }
    *x = cqb_batch_new();
    *cache = calloc(CQB_CLASS_MAX, sizeof **cache);
}

static void scratch_give(rollup_mgr *m, cqb_batch *x, win_cache *cache, bool own)
{
    if (!own) {
        pthread_mutex_unlock(&m->scratch_mu);
        return;
    }
    cqb_batch_free(x);
    free(cache);
}

static void observe(void *ctx, const char *tenant, const qr_batch *batch, uint64_t lsn)
{
    (void)lsn;
    rollup_mgr *m = ctx;
    const char *tn = tenant ? tenant : DB_DEFAULT_TENANT;
    cqb_batch *x = NULL;
    win_cache *cache = NULL;
    bool taken = false, own = false;
    uint32_t gen = 0;
    pthread_rwlock_rdlock(&m->list_lock);
    for (size_t idx = 0; idx < m->count; idx++) {
        rollup *r = m->list[idx];
        if (strcmp(r->def.tenant, tn) != 0) continue;
        if (!taken && !m->opts.per_event) { /* on first need */
            taken = true;
            scratch_take(m, &x, &cache, &own);
            if (x) cqb_batch_begin(x, batch);
            /* turns count on across batches (entries of an earlier batch never match) */
            gen = own ? 0 : m->scratch_gen;
            if (cache && gen > UINT32_MAX - 2 * (uint32_t)m->count - 2) {
                for (uint32_t c = 0; c < CQB_CLASS_MAX; c++) cache[c].gen = 0;
                gen = 0;
            }
        }
        const ru_def *def = &r->def;
        pthread_mutex_lock(&r->mu);
        if (r->registered && !r->dropped) {
            if (!x || observe_shared(r, x, batch, cache, ++gen)) {
                int64_t first = first_open_t(r);
                for (size_t ei = 0; ei < batch->count; ei++) {
                    int64_t t = 0;
                    int rc = event_add(def, r->filter, &r->open, &r->key, first, batch,
                                       &batch->events[ei], &t);
                    if (rc == 1) late_add(r, t);
                    /* out of memory: the window misses the event; nothing else can be done
                     * on the ingest path (the batch is already durable) */
                }
            }
        }
        pthread_mutex_unlock(&r->mu);
    }
    if (taken && !own) m->scratch_gen = gen; /* still under scratch_mu */
    pthread_rwlock_unlock(&m->list_lock);
    if (taken) scratch_give(m, x, cache, own);
}

/* ---- rollup objects ------------------------------------------------------------------------- */

static void file_unref(ru_file *f)
{
    if (!f || atomic_fetch_sub(&f->refs, 1) != 1) return;
    free(f->bytes);
    free(f);
}

static void rollup_free(rollup *r)
{
    if (!r) return;
    ru_table_fini(&r->open, &r->def);
    for (size_t idx = 0; idx < r->closing_n; idx++) ru_win_free(r->closing[idx], &r->def);
    free(r->closing);
    for (size_t idx = 0; idx < r->file_count; idx++) file_unref(r->files[idx]);
    free(r->files);
    free(r->late);
    evf_free(r->filter);
    qr_buf_fini(&r->key);
    ru_def_fini(&r->def);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->io_mu);
    free(r);
}

void ru_unref(rollup *r)
{
    if (r && atomic_fetch_sub(&r->refs, 1) == 1) rollup_free(r);
}

static rollup *rollup_alloc(void)
{
    rollup *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    atomic_init(&r->refs, 1);
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->io_mu, NULL);
    qr_buf_init(&r->key);
    r->closed_through_ns = INT64_MIN;
    return r;
}

rollup *ru_find(rollup_mgr *m, const char *tenant, const char *name, size_t name_len)
{
    const char *tn = tenant ? tenant : DB_DEFAULT_TENANT;
    rollup *found = NULL;
    pthread_rwlock_rdlock(&m->list_lock);
    for (size_t idx = 0; idx < m->count && !found; idx++) {
        rollup *r = m->list[idx];
        if (!strcmp(r->def.tenant, tn) && strlen(r->def.name) == name_len &&
            !memcmp(r->def.name, name, name_len)) {
            found = r;
            atomic_fetch_add(&r->refs, 1);
        }
    }
    pthread_rwlock_unlock(&m->list_lock);
    return found;
}

static int rollup_ptr_cmp(const void *a, const void *b)
{
    return strcmp((*(rollup *const *)a)->def.name, (*(rollup *const *)b)->def.name);
}

int ru_find_all(rollup_mgr *m, const char *tenant, rollup ***out, size_t *count)
{
    const char *tn = tenant ? tenant : DB_DEFAULT_TENANT;
    pthread_rwlock_rdlock(&m->list_lock);
    rollup **list = calloc(m->count + 1, sizeof *list);
    size_t n = 0;
    for (size_t idx = 0; list && idx < m->count; idx++) {
        rollup *r = m->list[idx];
        if (strcmp(r->def.tenant, tn) != 0) continue;
        atomic_fetch_add(&r->refs, 1);
        list[n++] = r;
    }
    pthread_rwlock_unlock(&m->list_lock);
    if (!list) return QR_ENOMEM;
    qsort(list, n, sizeof *list, rollup_ptr_cmp);
    *out = list;
    *count = n;
    return 0;
}

void ru_unref_all(rollup **list, size_t count)
{
    for (size_t idx = 0; list && idx < count; idx++) ru_unref(list[idx]);
    free(list);
}

static int list_add(rollup_mgr *m, rollup *r)
{
    if (m->count == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        rollup **l = realloc(m->list, cap * sizeof *l);
        if (!l) return QR_ENOMEM;
        m->list = l;
        m->cap = cap;
    }
    m->list[m->count++] = r;
    return 0;
}

/* ---- persistence ---------------------------------------------------------------------------- */

static int rollup_dir(const rollup_mgr *m, const char *tenant, const char *name, char *buf,
                      size_t cap)
{
    int n = snprintf(buf, cap, "%s/cq/%s/rollups/%s", db_dir(m->db), tenant, name);
    return n > 0 && (size_t)n < cap ? 0 : QR_ELIMIT;
}

static void file_path(const rollup *r, uint64_t seq, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%012llu.qrw", r->dir, (unsigned long long)seq);
}

/* A window file: written to path.tmp, fsync'd, renamed, directory fsync'd. */
static int write_file_sync(const char *path, const qr_buf *b, qr_diag *d)
{
    return qr_fs_write_atomic(path, b->data, b->len, d);
}

/* Publishes a MANIFEST listing files (ascending seq) with the rollup's watermark and late
 * counts (read under mu). Caller holds io_mu. */
static int manifest_publish(rollup *r, ru_file *const *files, size_t n, int64_t watermark,
                            uint64_t next_seq, qr_diag *d)
{
    ru_manifest mf = {0};
    mf.closed_through_ns = watermark;
    mf.next_seq = next_seq;
    mf.file_n = n;
    mf.files = calloc(n + 1, sizeof *mf.files);
    if (!mf.files) return QR_ENOMEM;
    for (size_t idx = 0; idx < n; idx++) {
        mf.files[idx].seq = files[idx]->seq;
        mf.files[idx].min_t = files[idx]->min_t;
        mf.files[idx].max_t = files[idx]->max_t;
        mf.files[idx].rows = files[idx]->rows;
        mf.files[idx].bytes = files[idx]->len;
        mf.files[idx].checksum = files[idx]->checksum;
    }
    pthread_mutex_lock(&r->mu);
    mf.late_total = r->late_total;
    mf.late_n = r->late_n;
    mf.late = calloc(r->late_n + 1, sizeof *mf.late);
    if (mf.late && r->late_n) memcpy(mf.late, r->late, r->late_n * sizeof *mf.late);
    r->late_dirty = false;
    pthread_mutex_unlock(&r->mu);
    if (!mf.late) {
        free(mf.files);
        return QR_ENOMEM;
    }
    qr_buf b;
    qr_buf_init(&b);
    int rc = ru_manifest_encode(&mf, &b);
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/MANIFEST", r->dir);
    if (!rc) rc = qr_fs_write_atomic(path, b.data, b.len, d);
    qr_buf_fini(&b);
    ru_manifest_fini(&mf);
    return rc;
}

static uint64_t wins_buckets(ru_win *const *wins, size_t n)
{
    uint64_t distinct = 0;
    for (size_t idx = 0; idx < n; idx++) distinct += idx == 0 || wins[idx]->t != wins[idx - 1]->t;
    return distinct;
}

static ru_file *file_new(uint64_t seq, qr_buf *b, int64_t min_t, int64_t max_t, uint64_t rows,
                         uint64_t buckets)
{
    ru_file *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    atomic_init(&f->refs, 1);
    f->seq = seq;
    f->min_t = min_t;
    f->max_t = max_t;
    f->rows = rows;
    f->buckets = buckets;
    f->len = b->len;
    f->bytes = b->data; /* takes the buffer */
    f->checksum = b->len >= 4 ? qr_load_u32(b->data + b->len - 4) : 0;
    b->data = NULL;
    b->len = b->cap = 0;
    return f;
}

static int win_cmp(const void *a, const void *b)
{
    const ru_win *x = *(ru_win *const *)a, *y = *(ru_win *const *)b;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = n ? memcmp(x->key, y->key, n) : 0;
    if (c) return c;
    return x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
}

/* Writes the closing windows as a file and publishes it with the watermark. */
static int closing_write(rollup *r, int64_t watermark, qr_diag *d)
{
    pthread_mutex_lock(&r->mu);
    ru_win **wins = r->closing;
    size_t n = r->closing_n;
    size_t file_count = r->file_count;
    ru_file **files = calloc(file_count + 2, sizeof *files);
    if (files && file_count) memcpy(files, r->files, file_count * sizeof *files);
    bool late_dirty = r->late_dirty;
    pthread_mutex_unlock(&r->mu);
    if (!files) return QR_ENOMEM;
    if (!n && !late_dirty) {
        free(files);
        return 0;
    }
    int rc = 0;
    ru_file *nf = NULL;
    uint64_t seq = r->next_seq;
    if (n) {
        qsort(wins, n, sizeof *wins, win_cmp);
        qr_buf b;
        qr_buf_init(&b);
        rc = ru_file_encode(&r->def, wins, n, &b);
        char path[PATH_MAX + 32];
        file_path(r, seq, path, sizeof path);
        if (!rc) rc = write_file_sync(path, &b, d);
        if (!rc) nf = file_new(seq, &b, wins[0]->t, wins[n - 1]->t, n, wins_buckets(wins, n));
        if (!rc && !nf) rc = QR_ENOMEM;
        qr_buf_fini(&b);
        if (nf) files[file_count++] = nf;
    }
    if (!rc) rc = manifest_publish(r, files, file_count, watermark, seq + (n ? 1 : 0), d);
    if (rc) {
        if (nf) {
            char path[PATH_MAX + 32];
            file_path(r, seq, path, sizeof path);
            unlink(path);
            file_unref(nf);
        }
        free(files);
        return rc;
    }
    pthread_mutex_lock(&r->mu);
    if (n) r->next_seq = seq + 1;
    free(r->files);
    r->files = files;
    r->file_count = file_count;
    r->closing = NULL;
    r->closing_n = 0;
    pthread_mutex_unlock(&r->mu);
    for (size_t idx = 0; idx < n; idx++) ru_win_free(wins[idx], &r->def);
    free(wins);
    return 0;
}

/* Takes the windows due at now out of the table and writes them. */
static int rollup_close_due(rollup_mgr *m, rollup *r, qr_diag *d)
{
    pthread_mutex_lock(&r->io_mu);
    pthread_mutex_lock(&r->mu);
    if (!r->live || r->dropped) {
        pthread_mutex_unlock(&r->mu);
        pthread_mutex_unlock(&r->io_mu);
        return 0;
    }
    int64_t now = ru_now(m);
    int64_t edge = now - r->def.lateness_ns;
    int64_t wm = ru_bucket(edge, r->def.interval_ns);
    int rc = 0;
    if (wm > r->closed_through_ns) {
        size_t due = 0;
        for (size_t idx = 0; idx < r->open.cap; idx++)
            for (ru_win *w = r->open.slots[idx]; w; w = w->next)
                due += w->t < wm; /* t + interval <= wm, as both are multiples */
        if (due) {
            ru_win **list = realloc(r->closing, (r->closing_n + due) * sizeof *list);
            if (!list) {
                rc = QR_ENOMEM;
            } else {
                r->closing = list;
                for (size_t idx = 0; idx < r->open.cap; idx++) {
                    ru_win **link = &r->open.slots[idx];
                    while (*link) {
                        ru_win *w = *link;
                        if (w->t < wm) {
                            *link = w->next;
                            w->next = NULL;
                            r->closing[r->closing_n++] = w;
                            r->open.count--;
                        } else {
                            link = &w->next;
                        }
                    }
                }
            }
        }
        if (!rc) r->closed_through_ns = wm;
    }
    int64_t watermark = r->closed_through_ns;
    int64_t mono = qr_monotonic_ns();
    bool late_due =
        r->late_dirty && (m->final_tick || mono - r->late_published_mono_ns >= RU_LATE_PUBLISH_NS);
    if (late_due) r->late_published_mono_ns = mono;
    bool work = r->closing_n || late_due;
    pthread_mutex_unlock(&r->mu);
    if (!rc && work) rc = closing_write(r, watermark, d);
    pthread_mutex_unlock(&r->io_mu);
    return rc;
}

/* Decodes rows of files into windows (for merging files); drops rows before cutoff_t. */
typedef struct collect_wins {
    const ru_def *def;
    ru_win **wins;
    size_t n, cap;
    int64_t cutoff_t;
    qr_buf key;
    int rc;
} collect_wins;

static int collect_row(void *ctx, int64_t t, const exec_value *labels, cq_agg_state **st)
{
    collect_wins *c = ctx;
    const ru_def *def = c->def;
    if (t < c->cutoff_t) {
        for (uint32_t ai = 0; ai < def->agg_count; ai++) cq_agg_free(st[ai]);
        return 0;
    }
    ru_win *w = calloc(1, sizeof *w);
    if (w) w->st = calloc(def->agg_count + 1, sizeof *w->st);
    qr_buf_clear(&c->key);
    for (uint32_t li = 0; li < def->label_count; li++) ru_key_add(&c->key, &labels[li]);
    if (w && w->st) w->key = malloc(c->key.len + 1);
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        ru_win **l = realloc(c->wins, cap * sizeof *l);
        if (l) {
            c->wins = l;
            c->cap = cap;
        }
    }
    if (!w || !w->st || !w->key || !qr_buf_ok(&c->key) || c->n == c->cap) {
        for (uint32_t ai = 0; ai < def->agg_count; ai++) cq_agg_free(st[ai]);
        ru_win_free(w, def);
        return QR_ENOMEM;
    }
    w->t = t;
    w->key_len = (uint32_t)c->key.len;
    if (c->key.len) memcpy(w->key, c->key.data, c->key.len);
    memcpy(w->st, st, def->agg_count * sizeof *st);
    c->wins[c->n++] = w;
    return 0;
}

/* Retention (drop files wholly older than now - retention) and merging of small files. */
static int rollup_maintain(rollup_mgr *m, rollup *r, qr_diag *d)
{
    pthread_mutex_lock(&r->io_mu);
    pthread_mutex_lock(&r->mu);
    int64_t cutoff = INT64_MIN;
    if (r->def.retention_ns) cutoff = ru_now(m) - r->def.retention_ns;
    /* first bucket start kept: buckets ending at or before the cutoff go */
    int64_t keep_t = cutoff == INT64_MIN ? INT64_MIN : ru_bucket(cutoff, r->def.interval_ns);
    size_t n = r->file_count;
    ru_file **files = calloc(n + 1, sizeof *files);
    if (files && n) memcpy(files, r->files, n * sizeof *files);
    for (size_t idx = 0; files && idx < n; idx++) atomic_fetch_add(&files[idx]->refs, 1);
    bool dropped = r->dropped, live = r->live;
    int64_t watermark = r->closed_through_ns;
    /* late counts of buckets past retention are forgotten */
    size_t kept = 0;
    for (size_t idx = 0; idx < r->late_n; idx++)
        if (r->late[idx].t >= keep_t) r->late[kept++] = r->late[idx];
    if (kept != r->late_n) r->late_dirty = true;
    r->late_n = kept;
    pthread_mutex_unlock(&r->mu);
    if (!files) {
        pthread_mutex_unlock(&r->io_mu);
        return QR_ENOMEM;
    }
    int rc = 0;
    /* files wholly past retention go; small files are merged into one once there are more
     * than RU_MERGE_FILES (large ones stay as they are, so no file grows without bound) */
    size_t expired = 0, small = 0;
    bool partly = false;
    for (size_t idx = 0; idx < n; idx++) {
        if (files[idx]->max_t < keep_t)
            expired++;
        else if (files[idx]->len < RU_MERGE_SMALL_BYTES) {
            small++;
            partly |= files[idx]->min_t < keep_t;
        }
    }
    bool merge = small > RU_MERGE_FILES || (partly && small > 1);
    if (!dropped && live && (expired || merge)) {
        ru_file **next = calloc(n + 1, sizeof *next);
        size_t next_n = 0;
        uint64_t seq = r->next_seq;
        ru_file *nf = NULL;
        if (!next) rc = QR_ENOMEM;
        for (size_t idx = 0; !rc && idx < n; idx++) { /* the files that stay as they are */
            if (files[idx]->max_t < keep_t) continue;
            if (merge && files[idx]->len < RU_MERGE_SMALL_BYTES) continue;
            next[next_n++] = files[idx];
            atomic_fetch_add(&files[idx]->refs, 1);
        }
        if (!rc && merge) {
            collect_wins c = {&r->def, NULL, 0, 0, keep_t, {0}, 0};
            qr_buf_init(&c.key);
            qr_arena arena;
            qr_arena_init(&arena, 64 * 1024, 0);
            for (size_t idx = 0; idx < n && !rc; idx++) {
                if (files[idx]->max_t < keep_t || files[idx]->len >= RU_MERGE_SMALL_BYTES) continue;
                rc = ru_file_decode(&r->def, files[idx]->bytes, files[idx]->len, &arena, UINT64_MAX,
                                    collect_row, &c, d);
                qr_arena_reset(&arena);
            }
            qr_arena_fini(&arena);
            /* the merged files cover disjoint buckets, in seq order = time order */
            qr_buf b;
            qr_buf_init(&b);
            if (!rc && c.n) rc = ru_file_encode(&r->def, c.wins, c.n, &b);
            char path[PATH_MAX + 32];
            file_path(r, seq, path, sizeof path);
            if (!rc && c.n) rc = write_file_sync(path, &b, d);
            if (!rc && c.n) {
                nf = file_new(seq, &b, c.wins[0]->t, c.wins[c.n - 1]->t, c.n,
                              wins_buckets(c.wins, c.n));
                if (!nf) rc = QR_ENOMEM;
            }
            qr_buf_fini(&b);
            for (size_t idx = 0; idx < c.n; idx++) ru_win_free(c.wins[idx], &r->def);
            free(c.wins);
            qr_buf_fini(&c.key);
            if (nf) next[next_n++] = nf; /* the highest seq: the list stays in seq order */
        }
        if (!rc) rc = manifest_publish(r, next, next_n, watermark, seq + (nf ? 1 : 0), d);
        if (!rc) {
            pthread_mutex_lock(&r->mu);
            ru_file **old = r->files;
            size_t old_n = r->file_count;
            r->files = next;
            r->file_count = next_n;
            if (nf) r->next_seq = seq + 1;
            pthread_mutex_unlock(&r->mu);
            for (size_t idx = 0; idx < old_n; idx++) {
                bool still = false;
                for (size_t k = 0; k < next_n && !still; k++) still = next[k] == old[idx];
                if (!still) {
                    char path[PATH_MAX + 32];
                    file_path(r, old[idx]->seq, path, sizeof path);
                    unlink(path);
                }
                file_unref(old[idx]);
            }
            free(old);
        } else {
            for (size_t idx = 0; next && idx < next_n; idx++) file_unref(next[idx]);
            free(next);
        }
    }
    for (size_t idx = 0; idx < n; idx++) file_unref(files[idx]);
    free(files);
    pthread_mutex_unlock(&r->io_mu);
    return rc;
}

/* ---- rebuild from stored events ------------------------------------------------------------- */

static void rebuild_register(void *ctx)
{
    rollup *r = ctx;
    pthread_mutex_lock(&r->mu);
    r->registered = true;
    pthread_mutex_unlock(&r->mu);
}

static bool def_reads_field(const ru_def *def, qr_str key)
{
    if (def->all_fields) return true;
    for (uint32_t idx = 0; idx < def->field_count; idx++)
        if (strlen(def->fields[idx]) == key.len && !memcmp(def->fields[idx], key.ptr, key.len))
            return true;
    return false;
}

/* Rebuilds one block's events (ts >= first_t) into batch. */
static int block_events(const ru_def *def, qr_part *p, uint32_t block_idx, int64_t first_t,
                        qr_arena *arena, qr_batch *batch, qr_diag *d)
{
    qr_column ts, level, svc, host, msg;
    int rc = qr_part_load_column(p, block_idx, QR_COL_TS, 0, arena, &ts, d);
    if (!rc) rc = qr_part_load_column(p, block_idx, QR_COL_LEVEL, 0, arena, &level, d);
    if (!rc) rc = qr_part_load_column(p, block_idx, QR_COL_SERVICE, 0, arena, &svc, d);
    if (!rc) rc = qr_part_load_column(p, block_idx, QR_COL_HOST, 0, arena, &host, d);
    if (!rc && def->needs_msg)
        rc = qr_part_load_column(p, block_idx, QR_COL_MSG, 0, arena, &msg, d);
    if (rc) return rc;
    uint32_t n = ts.row_count;
    /* fields this rollup reads */
    uint32_t fcount = 0;
    qr_column *fcols = qr_arena_calloc(arena, p->field_count + 1, sizeof *fcols);
    uint32_t *fidx = qr_arena_calloc(arena, p->field_count + 1, sizeof *fidx);
    if (!fcols || !fidx) return QR_ENOMEM;
    for (uint32_t fi = 0; fi < p->field_count; fi++) {
        if (!def_reads_field(def, p->fields[fi].key)) continue;
        rc = qr_part_load_column(p, block_idx, QR_COL_FIELD, fi, arena, &fcols[fcount], d);
        if (rc) return rc;
        fidx[fcount++] = fi;
    }
    for (uint32_t row = 0; row < n; row++) {
        if (ts.i64[row] < first_t) continue;
        qr_event *e = qr_batch_push(batch);
        if (!e) return QR_ENOMEM;
        e->ts_ns = ts.i64[row];
        e->level = level.u8 ? level.u8[row] : 0;
        uint32_t sid = svc.ids ? svc.ids[row] : UINT32_MAX;
        uint32_t hid = host.ids ? host.ids[row] : UINT32_MAX;
        e->service = sid < p->service_count ? p->services[sid] : qr_str_make("", 0);
        e->host = hid < p->host_count ? p->hosts[hid] : qr_str_make("", 0);
        e->msg = def->needs_msg && msg.strs ? msg.strs[row] : qr_str_make("", 0);
        for (uint32_t k = 0; k < fcount; k++) {
            const qr_column *c = &fcols[k];
            if (!qr_column_has(c, row)) continue;
            qr_field f = {0};
            f.key = p->fields[fidx[k]].key;
            f.type = c->type;
            switch (c->type) {
            case QR_FT_INT:
                f.v.i = c->i64[row];
                break;
            case QR_FT_FLOAT:
                f.v.f = c->f64[row];
                break;
            case QR_FT_BOOL:
                f.v.b = c->u8[row] != 0;
                break;
            case QR_FT_STRING:
                if (c->ids)
                    f.v.s = c->ids[row] < c->dict_count ? c->dict[c->ids[row]] : qr_str_make("", 0);
                else if (c->strs)
                    f.v.s = c->strs[row];
                break;
            default:
                continue;
            }
            rc = qr_batch_add_field(batch, &f);
            if (rc) return rc;
        }
    }
    return 0;
}

static int rebuild(rollup_mgr *m, rollup *r, qr_diag *d)
{
    evf *filter = NULL;
    ru_def scratch;
    int rc = ru_def_compile(r->def.text, r->def.tenant, NULL, &scratch, &filter, d);
    if (rc) return rc;
    db_snapshot *snap = NULL;
    rc = db_snapshot_open_sync(m->db, r->def.tenant, rebuild_register, r, &snap);
    if (rc) {
        evf_free(filter);
        ru_def_fini(&scratch);
        return qr_diag_set(d, rc, "rollup %s: cannot open a snapshot", r->def.name);
    }
    pthread_mutex_lock(&r->mu);
    int64_t first_t = first_open_t(r);
    pthread_mutex_unlock(&r->mu);
    if (r->def.retention_ns) {
        int64_t keep_t = ru_bucket(ru_now(m) - r->def.retention_ns, r->def.interval_ns);
        if (keep_t > first_t) first_t = keep_t;
    }
    ru_table tab = {0};
    qr_buf key;
    qr_buf_init(&key);
    qr_batch batch;
    qr_batch_init(&batch);
    qr_arena arena;
    qr_arena_init(&arena, 256 * 1024, 0);
    size_t parts = db_snapshot_part_count(snap);
    for (size_t pi = 0; pi < parts && !rc; pi++) {
        qr_part *p = db_snapshot_part(snap, pi);
        if (p->row_count == 0 || p->max_ts_ns < first_t) continue;
        for (uint32_t bi = 0; bi < p->block_count && !rc; bi++) {
            qr_block_meta meta;
            rc = qr_part_block_meta(p, bi, &meta);
            if (rc || meta.max_ts_ns < first_t || meta.row_count == 0) continue;
            qr_batch_reset(&batch);
            qr_arena_reset(&arena);
            rc = block_events(&r->def, p, bi, first_t, &arena, &batch, d);
            for (size_t ei = 0; ei < batch.count && !rc; ei++) {
                int64_t t = 0;
                int added =
                    event_add(&r->def, filter, &tab, &key, first_t, &batch, &batch.events[ei], &t);
                if (added < 0) rc = added;
            }
            atomic_fetch_add(&r->backfill_events, batch.count);
        }
    }
    qr_arena_fini(&arena);
    qr_batch_fini(&batch);
    qr_buf_fini(&key);
    db_snapshot_free(snap);
    evf_free(filter);
    ru_def_fini(&scratch);
    if (rc) {
        ru_table_fini(&tab, &r->def);
        if (!d || !d->code) qr_diag_set(d, rc, "rollup %s: rebuild failed", r->def.name);
        return rc;
    }
    pthread_mutex_lock(&r->mu);
    rc = table_absorb(&r->open, &tab, &r->def);
    r->live = true;
    pthread_mutex_unlock(&r->mu);
    if (rc) return qr_diag_set(d, rc, "rollup %s: out of memory", r->def.name);
    return rollup_close_due(m, r, d);
}

/* ---- loading -------------------------------------------------------------------------------- */

static int load_files(rollup *r, const ru_manifest *mf, qr_diag *d)
{
    r->files = calloc(mf->file_n + 1, sizeof *r->files);
    if (!r->files) return QR_ENOMEM;
    for (size_t idx = 0; idx < mf->file_n; idx++) {
        char path[PATH_MAX + 32];
        file_path(r, mf->files[idx].seq, path, sizeof path);
        qr_buf b;
        qr_buf_init(&b);
        int rc = qr_fs_read_all(path, RU_FILE_MAX_BYTES, &b, d);
        int64_t min_t = 0, max_t = 0;
        uint64_t rows = 0, buckets = 0;
        if (!rc && (b.len != mf->files[idx].bytes || b.len < 4 ||
                    qr_load_u32(b.data + b.len - 4) != mf->files[idx].checksum))
            rc = qr_diag_set(d, QR_ECORRUPT, "%s: does not match the MANIFEST", path);
        if (!rc) {
            rc = ru_file_check(b.data, b.len, &min_t, &max_t, &rows, &buckets, d);
            if (rc && d) {
                char msg[QR_DIAG_MSG_MAX];
                snprintf(msg, sizeof msg, "%s", d->msg);
                snprintf(d->msg, sizeof d->msg, "%s: %s", path, msg);
            }
        }
        ru_file *f = rc ? NULL : file_new(mf->files[idx].seq, &b, min_t, max_t, rows, buckets);
        qr_buf_fini(&b);
        if (!rc && !f) rc = QR_ENOMEM;
        if (rc) return rc;
        r->files[r->file_count++] = f;
    }
    return 0;
}

/* Deletes files in the rollup directory that the MANIFEST does not list. */
static void sweep_orphans(rollup *r)
{
    DIR *dir = opendir(r->dir);
    if (!dir) return;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        const char *n = de->d_name;
        size_t len = strlen(n);
        bool tmp = len > 4 && !strcmp(n + len - 4, ".tmp");
        bool qrw = len > 4 && !strcmp(n + len - 4, ".qrw");
        if (!tmp && !qrw) continue;
        bool listed = false;
        unsigned long long seq = strtoull(n, NULL, 10);
        for (size_t idx = 0; qrw && idx < r->file_count && !listed; idx++)
            listed = r->files[idx]->seq == seq;
        if (listed) continue;
        char path[PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", r->dir, n);
        unlink(path);
    }
    closedir(dir);
}

static int rollup_load(rollup_mgr *m, const char *tenant, const char *name, rollup **out,
                       qr_diag *d)
{
    rollup *r = rollup_alloc();
    if (!r) return QR_ENOMEM;
    int rc = rollup_dir(m, tenant, name, r->dir, sizeof r->dir);
    char path[PATH_MAX + 16];
    qr_buf b;
    qr_buf_init(&b);
    snprintf(path, sizeof path, "%s/DEF", r->dir);
    if (!rc) rc = qr_fs_read_all(path, RU_DEF_MAX_BYTES, &b, d);
    if (!rc) {
        char *text = strndup(b.data ? (const char *)b.data : "", b.len);
        if (!text) rc = QR_ENOMEM;
        if (!rc) rc = ru_def_compile(text, tenant, NULL, &r->def, &r->filter, d);
        free(text);
        if (rc && d) {
            char msg[QR_DIAG_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", d->msg);
            snprintf(d->msg, sizeof d->msg, "%s: %s", path, msg);
        }
    }
    qr_buf_clear(&b);
    ru_manifest mf = {0};
    if (!rc) {
        snprintf(path, sizeof path, "%s/MANIFEST", r->dir);
        qr_diag md;
        qr_diag_init(&md);
        int mrc = qr_fs_read_all(path, RU_MANIFEST_MAX_BYTES, &b, &md);
        if (mrc == 0) {
            rc = ru_manifest_decode(b.data, b.len, &mf, d);
        } else if (mrc != QR_ENOTFOUND) {
            rc = mrc;
            if (d) *d = md;
        }
    }
    qr_buf_fini(&b);
    if (!rc) {
        r->closed_through_ns = mf.file_n || mf.next_seq ? mf.closed_through_ns : INT64_MIN;
        if (mf.next_seq == 0 && mf.closed_through_ns) r->closed_through_ns = mf.closed_through_ns;
        r->next_seq = mf.next_seq;
        r->late_total = mf.late_total;
        if (mf.late_n) {
            r->late = mf.late;
            r->late_n = r->late_cap = mf.late_n;
            mf.late = NULL;
        }
        rc = load_files(r, &mf, d);
    }
    ru_manifest_fini(&mf);
    if (rc) {
        rollup_free(r);
        return rc;
    }
    sweep_orphans(r);
    *out = r;
    return 0;
}

static int load_tenant(rollup_mgr *m, const char *tenant, qr_diag *d)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/cq/%s/rollups", db_dir(m->db), tenant);
    DIR *dir = opendir(path);
    if (!dir) return 0;
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(dir)) != NULL) {
        if (!ru_name_ok(de->d_name)) continue;
        char def_path[PATH_MAX + 300];
        snprintf(def_path, sizeof def_path, "%s/%s/DEF", path, de->d_name);
        struct stat sb;
        if (stat(def_path, &sb) != 0) continue; /* a half-created rollup: ignored */
        rollup *r = NULL;
        rc = rollup_load(m, tenant, de->d_name, &r, d);
        if (!rc) {
            pthread_rwlock_wrlock(&m->list_lock);
            rc = list_add(m, r);
            pthread_rwlock_unlock(&m->list_lock);
            if (rc) rollup_free(r);
        }
    }
    closedir(dir);
    return rc;
}

/* ---- the manager ---------------------------------------------------------------------------- */

int rollup_mgr_tick(rollup_mgr *m, qr_diag *d)
{
    rollup **list = NULL;
    size_t n = 0;
    pthread_rwlock_rdlock(&m->list_lock);
    list = calloc(m->count + 1, sizeof *list);
    for (size_t idx = 0; list && idx < m->count; idx++) {
        list[n++] = m->list[idx];
        atomic_fetch_add(&m->list[idx]->refs, 1);
    }
    pthread_rwlock_unlock(&m->list_lock);
    if (!list) return QR_ENOMEM;
    int first = 0;
    for (size_t idx = 0; idx < n; idx++) {
        qr_diag local;
        qr_diag_init(&local);
        int rc = rollup_close_due(m, list[idx], &local);
        if (!rc) rc = rollup_maintain(m, list[idx], &local);
        if (rc && !first) {
            first = rc;
            if (d) *d = local;
        }
    }
    ru_unref_all(list, n);
    return first;
}

static void *tick_thread(void *arg)
{
    rollup_mgr *m = arg;
    uint32_t ms = m->opts.tick_ms ? m->opts.tick_ms : 500;
    pthread_mutex_lock(&m->tick_mu);
    while (!m->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + (int64_t)ms * QR_NS_PER_MS;
        ts.tv_sec += ns / QR_NS_PER_SEC;
        ts.tv_nsec = ns % QR_NS_PER_SEC;
        pthread_cond_timedwait(&m->tick_cv, &m->tick_mu, &ts);
        if (m->stop) break;
        pthread_mutex_unlock(&m->tick_mu);
        rollup_mgr_tick(m, NULL); /* errors are retried next tick */
        pthread_mutex_lock(&m->tick_mu);
    }
    pthread_mutex_unlock(&m->tick_mu);
    return NULL;
}

int rollup_mgr_open(db_t *db, const rollup_opts *opts, rollup_mgr **out, qr_diag *d)
{
    rollup_mgr *m = calloc(1, sizeof *m);
    if (!m) return QR_ENOMEM;
    m->db = db;
    if (opts) m->opts = *opts;
    pthread_rwlock_init(&m->list_lock, NULL);
    pthread_mutex_init(&m->tick_mu, NULL);
    pthread_mutex_init(&m->scratch_mu, NULL);
    pthread_cond_init(&m->tick_cv, NULL);
    char **tenants = NULL;
    size_t tenant_n = 0;
    int rc = 0;
    /* tenants with rollups: the directories under cq/ */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/cq", db_dir(db));
    DIR *dir = opendir(path);
    if (dir) {
        struct dirent *de;
        while (!rc && (de = readdir(dir)) != NULL) {
            if (!db_tenant_name_ok(de->d_name)) continue;
            char **t = realloc(tenants, (tenant_n + 1) * sizeof *t);
            if (!t) {
                rc = QR_ENOMEM;
                break;
            }
            tenants = t;
            tenants[tenant_n] = strdup(de->d_name);
            if (!tenants[tenant_n])
                rc = QR_ENOMEM;
            else
                tenant_n++;
        }
        closedir(dir);
    }
    for (size_t idx = 0; idx < tenant_n && !rc; idx++) rc = load_tenant(m, tenants[idx], d);
    for (size_t idx = 0; idx < tenant_n; idx++) free(tenants[idx]);
    free(tenants);
    if (!rc) rc = db_observer_add(db, observe, m);
    if (rc) {
        rollup_mgr_close(m);
        return rc;
    }
    /* From here the db holds m: the open succeeds. A rollup that cannot be rebuilt (I/O,
     * memory) is left out of this process, its files untouched, and reported in d. */
    for (size_t idx = 0; idx < m->count;) {
        qr_diag local;
        qr_diag_init(&local);
        rollup *r = m->list[idx];
        if (rebuild(m, r, &local) == 0) {
            idx++;
            continue;
        }
        if (d && !d->code) {
            *d = local;
            snprintf(d->msg, sizeof d->msg, "rollup %s left out: %s", r->def.name, local.msg);
        }
        list_remove(m, r);
        ru_unref(r);
    }
    if (!m->opts.no_thread) m->has_thread = pthread_create(&m->thread, NULL, tick_thread, m) == 0;
    *out = m;
    return 0;
}

void rollup_mgr_close(rollup_mgr *m)
{
    if (!m) return;
    if (m->has_thread) {
        pthread_mutex_lock(&m->tick_mu);
        m->stop = true;
        pthread_cond_signal(&m->tick_cv);
        pthread_mutex_unlock(&m->tick_mu);
        pthread_join(m->thread, NULL);
    }
    m->final_tick = true;
    rollup_mgr_tick(m, NULL);
    /* the observer stays registered with the db: leave it inert */
    pthread_rwlock_wrlock(&m->list_lock);
    for (size_t idx = 0; idx < m->count; idx++) {
        pthread_mutex_lock(&m->list[idx]->mu);
        m->list[idx]->dropped = true;
        pthread_mutex_unlock(&m->list[idx]->mu);
        ru_unref(m->list[idx]);
    }
    free(m->list);
    m->list = NULL;
    m->count = m->cap = 0;
    m->closed = true;
    pthread_rwlock_unlock(&m->list_lock);
    /* m itself stays allocated while the db may still call the observer: the observer only
     * reads the (empty) list. db_close ends that; the caller closes the db right after. */
    pthread_mutex_destroy(&m->tick_mu);
    pthread_cond_destroy(&m->tick_cv);
    pthread_mutex_destroy(&m->scratch_mu);
    cqb_batch_free(m->scratch_cqb);
    free(m->scratch_cache);
    free(m);
}

/* ---- statements ----------------------------------------------------------------------------- */

/* Position of the rollup's name in "CREATE ROLLUP name": after the second word. */
static sql_pos name_pos(const char *text)
{
    sql_pos pos = {0, 1, 1};
    const char *p = text;
    for (int word = 0; word < 2 && *p; word++) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') p++;
    }
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    for (const char *c = text; c < p; c++) {
        if (*c == '\n') {
            pos.line++;
            pos.column = 1;
        } else if (((unsigned char)*c & 0xC0) != 0x80) {
            pos.column++;
        }
    }
    pos.offset = (uint32_t)(p - text);
    return pos;
}

static void dir_remove(const char *path)
{
    char def[PATH_MAX + 16];
    snprintf(def, sizeof def, "%s/DEF", path);
    unlink(def); /* first: a directory without DEF is ignored by the next open */
    DIR *dir = opendir(path);
    if (dir) {
        struct dirent *de;
        while ((de = readdir(dir)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            char f[PATH_MAX + 300];
            snprintf(f, sizeof f, "%s/%s", path, de->d_name);
            unlink(f);
        }
        closedir(dir);
    }
    rmdir(path);
}

static void list_remove(rollup_mgr *m, rollup *r)
{
    pthread_rwlock_wrlock(&m->list_lock);
    for (size_t idx = 0; idx < m->count; idx++) {
        if (m->list[idx] != r) continue;
        memmove(&m->list[idx], &m->list[idx + 1], (m->count - idx - 1) * sizeof *m->list);
        m->count--;
        break;
    }
    pthread_rwlock_unlock(&m->list_lock);
    pthread_mutex_lock(&r->mu);
    r->dropped = true;
    r->registered = false;
    pthread_mutex_unlock(&r->mu);
}

int rollup_create(rollup_mgr *m, const char *tenant, const char *text, qr_diag *d)
{
    const char *tn = tenant ? tenant : DB_DEFAULT_TENANT;
    if (!db_tenant_name_ok(tn)) return qr_diag_set(d, QR_EINVAL, "bad tenant name");
    rollup *r = rollup_alloc();
    if (!r) return QR_ENOMEM;
    db_snapshot *snap = NULL;
    if (db_snapshot_open(m->db, tn, &snap) != 0) snap = NULL;
    int rc = ru_def_compile(text, tn, snap, &r->def, &r->filter, d);
    db_snapshot_free(snap);
    if (!rc) rc = rollup_dir(m, tn, r->def.name, r->dir, sizeof r->dir);
    if (rc) {
        rollup_free(r);
        return rc;
    }
    pthread_rwlock_wrlock(&m->list_lock);
    bool dup = false;
    for (size_t idx = 0; idx < m->count && !dup; idx++)
        dup = !strcmp(m->list[idx]->def.tenant, tn) && !strcmp(m->list[idx]->def.name, r->def.name);
    if (!dup) rc = list_add(m, r);
    pthread_rwlock_unlock(&m->list_lock);
    if (dup || rc) {
        if (dup)
            rc = sql_diag_at(d, name_pos(text), QR_EEXIST, "rollup \"%s\" already exists",
                             r->def.name);
        rollup_free(r);
        return rc;
    }
    /* DEF last of the files that define it, so a crash leaves either nothing or a rollup */
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/DEF", r->dir);
    dir_remove(r->dir); /* leftovers of an earlier rollup of the same name */
    rc = qr_fs_mkdirs(r->dir, d);
    if (!rc) rc = qr_fs_write_atomic(path, r->def.text, strlen(r->def.text), d);
    if (!rc) rc = rebuild(m, r, d);
    if (rc) {
        list_remove(m, r);
        pthread_mutex_lock(&r->io_mu);
        dir_remove(r->dir);
        pthread_mutex_unlock(&r->io_mu);
        ru_unref(r);
        return rc;
    }
    return 0;
}

int rollup_drop(rollup_mgr *m, const char *tenant, const char *name, qr_diag *d)
{
    rollup *r = ru_find(m, tenant, name, strlen(name));
    if (!r) return qr_diag_set(d, QR_ENOTFOUND, "no rollup named \"%s\"", name);
    list_remove(m, r);
    pthread_mutex_lock(&r->io_mu);
    dir_remove(r->dir);
    pthread_mutex_unlock(&r->io_mu);
    ru_unref(r); /* the list's reference */
    ru_unref(r); /* ours */
    return 0;
}

int rollup_list(rollup_mgr *m, const char *tenant, rollup_info **out, size_t *count)
{
    rollup **list = NULL;
    size_t n = 0;
    int rc = ru_find_all(m, tenant, &list, &n);
    if (rc) return rc;
    rollup_info *infos = calloc(n + 1, sizeof *infos);
    for (size_t idx = 0; infos && idx < n; idx++) {
        rollup *r = list[idx];
        rollup_info *in = &infos[idx];
        snprintf(in->name, sizeof in->name, "%s", r->def.name);
        in->text = strdup(r->def.text);
        if (!in->text) rc = QR_ENOMEM;
        in->interval_ns = r->def.interval_ns;
        in->lateness_ns = r->def.lateness_ns;
        in->retention_ns = r->def.retention_ns;
        pthread_mutex_lock(&r->mu);
        in->state = r->live ? "live" : "backfilling";
        in->open_rows = r->open.count + r->closing_n;
        in->late_events = r->late_total;
        in->last_closed_ns = INT64_MIN;
        uint64_t closed_rows = 0, closed_buckets = 0;
        for (size_t fi = 0; fi < r->file_count; fi++) {
            closed_rows += r->files[fi]->rows;
            closed_buckets += r->files[fi]->buckets;
            in->file_bytes += r->files[fi]->len;
            if (r->files[fi]->max_t > in->last_closed_ns) in->last_closed_ns = r->files[fi]->max_t;
        }
        in->files = r->file_count;
        /* open buckets: distinct t of the open and closing windows */
        size_t cap = in->open_rows + 1, distinct = 0;
        int64_t *ts = malloc(cap * sizeof *ts);
        for (size_t si = 0; ts && si < r->open.cap; si++)
            for (ru_win *w = r->open.slots[si]; w; w = w->next) ts[distinct++] = w->t;
        for (size_t ci = 0; ts && ci < r->closing_n; ci++) ts[distinct++] = r->closing[ci]->t;
        pthread_mutex_unlock(&r->mu);
        uint64_t open_buckets = 0;
        if (ts) {
            for (size_t a = 0; a < distinct; a++) {
                bool seen = false;
                for (size_t b = 0; b < a && !seen; b++) seen = ts[b] == ts[a];
                open_buckets += !seen;
                if (a > 4096) { /* enough for a progress figure */
                    open_buckets += distinct - a - 1;
                    break;
                }
            }
            free(ts);
        }
        in->rows = closed_rows + in->open_rows;
        in->windows = closed_buckets + open_buckets;
        in->backfill_events = atomic_load(&r->backfill_events);
    }
    ru_unref_all(list, n);
    if (!infos || rc) {
        rollup_infos_free(infos, n);
        return QR_ENOMEM;
    }
    *out = infos;
    *count = n;
    return 0;
}

void rollup_infos_free(rollup_info *infos, size_t count)
{
    for (size_t idx = 0; infos && idx < count; idx++) free((char *)infos[idx].text);
    free(infos);
}

/* ---- rows for queries ----------------------------------------------------------------------- */

/* Adds a row; labels are kept as given (they point into a file the row set holds, or into a
 * key copied into the arena). Takes the states. */
static int rows_push(ru_rows *rs, int64_t t, const exec_value *labels, cq_agg_state **st)
{
    const ru_def *def = rs->def;
    if (rs->count == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 256;
        ru_row *rows = realloc(rs->rows, cap * sizeof *rows);
        if (!rows) return QR_ENOMEM;
        rs->rows = rows;
        rs->cap = cap;
    }
    ru_row *row = &rs->rows[rs->count];
    row->t = t;
    row->labels = qr_arena_alloc(&rs->arena, (def->label_count + 1) * sizeof *row->labels);
    row->st = qr_arena_alloc(&rs->arena, (def->agg_count + 1) * sizeof *row->st);
    if (!row->labels || !row->st) return QR_ENOMEM;
    if (def->label_count) memcpy(row->labels, labels, def->label_count * sizeof *labels);
    if (def->agg_count) memcpy(row->st, st, def->agg_count * sizeof *st);
    rs->count++;
    return 0;
}

typedef struct file_rows {
    ru_rows *rs;
    int64_t t_lo, t_hi;
} file_rows;

static int file_row(void *ctx, int64_t t, const exec_value *labels, cq_agg_state **st)
{
    file_rows *fr = ctx;
    int rc = t >= fr->t_lo && t <= fr->t_hi ? rows_push(fr->rs, t, labels, st) : 1;
    if (rc) {
        for (uint32_t ai = 0; ai < fr->rs->def->agg_count; ai++) cq_agg_free(st[ai]);
        if (rc == 1) rc = 0;
    }
    return rc;
}

static int win_row(ru_rows *rs, const ru_win *w)
{
    const ru_def *def = rs->def;
    exec_value labels[RU_MAX_COLUMNS];
    cq_agg_state *st[RU_MAX_COLUMNS] = {0};
    uint8_t *key = qr_arena_alloc(&rs->arena, w->key_len + 1);
    if (!key) return QR_ENOMEM;
    if (w->key_len) memcpy(key, w->key, w->key_len);
    if (!ru_key_decode(key, w->key_len, def->label_count, labels)) return QR_EINVAL;
    int rc = 0;
    for (uint32_t ai = 0; ai < def->agg_count && !rc; ai++) {
        if (!(rs->agg_mask >> ai & 1)) continue;
        st[ai] = cq_agg_new(&def->aggs[ai].spec);
        rc = st[ai] ? cq_agg_merge(&def->aggs[ai].spec, st[ai], w->st[ai]) : QR_ENOMEM;
    }
    if (!rc) rc = rows_push(rs, w->t, labels, st);
    if (rc)
        for (uint32_t ai = 0; ai < def->agg_count; ai++) cq_agg_free(st[ai]);
    return rc;
}

static int row_cmp(const void *a, const void *b, void *ctx)
{
    const ru_rows *rs = ctx;
    const ru_row *x = a, *y = b;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    for (uint32_t li = 0; li < rs->def->label_count; li++) {
        const exec_value *u = &x->labels[li], *v = &y->labels[li];
        if (u->type != v->type) return u->type < v->type ? -1 : 1;
        int c = 0;
        switch (u->type) {
        case EXEC_STRING: {
            uint32_t n = u->v.s.len < v->v.s.len ? u->v.s.len : v->v.s.len;
            c = n ? memcmp(u->v.s.ptr, v->v.s.ptr, n) : 0;
            if (!c) c = u->v.s.len < v->v.s.len ? -1 : u->v.s.len > v->v.s.len;
            break;
        }
        case EXEC_FLOAT:
            c = u->v.f < v->v.f ? -1 : u->v.f > v->v.f;
            break;
        case EXEC_BOOL:
            c = (int)u->v.b - (int)v->v.b;
            break;
        case EXEC_NULL:
            break;
        default:
            c = u->v.i < v->v.i ? -1 : u->v.i > v->v.i;
            break;
        }
        if (c) return c;
    }
    return 0;
}

const char *ru_inexact(rollup *r, rollup_mgr *m, int64_t t_lo, int64_t t_hi)
{
    const char *why = NULL;
    if (r->def.retention_ns) {
        int64_t keep_t = ru_bucket(ru_now(m) - r->def.retention_ns, r->def.interval_ns);
        if (keep_t > t_lo) why = "the range starts before the rollup's retention";
    }
    pthread_mutex_lock(&r->mu);
    if (!r->live) why = "the rollup is still backfilling";
    for (size_t idx = 0; idx < r->late_n && !why; idx++)
        if (r->late[idx].t >= t_lo && r->late[idx].t <= t_hi && r->late[idx].n)
            why = "late events were dropped from windows in the range";
    pthread_mutex_unlock(&r->mu);
    return why;
}

int ru_rows_collect(rollup *r, rollup_mgr *m, int64_t t_lo, int64_t t_hi, uint64_t agg_mask,
                    bool sorted, ru_rows *out, qr_diag *d)
{
    memset(out, 0, sizeof *out);
    qr_arena_init(&out->arena, 64 * 1024, 0);
    out->def = &r->def;
    out->agg_count = r->def.agg_count;
    out->agg_mask = agg_mask;
    out->inexact = ru_inexact(r, m, t_lo, t_hi);
    out->exact = out->inexact == NULL;
    if (r->def.retention_ns) {
        int64_t keep_t = ru_bucket(ru_now(m) - r->def.retention_ns, r->def.interval_ns);
        if (keep_t > t_lo) t_lo = keep_t;
    }
    int rc = 0;
    pthread_mutex_lock(&r->mu);
    out->files = calloc(r->file_count + 1, sizeof *out->files);
    if (!out->files) rc = QR_ENOMEM;
    for (size_t idx = 0; !rc && idx < r->file_count; idx++) {
        ru_file *f = r->files[idx];
        if (f->max_t < t_lo || f->min_t > t_hi) continue;
        atomic_fetch_add(&f->refs, 1);
        out->files[out->file_n++] = f;
    }
    for (size_t idx = 0; !rc && idx < r->open.cap; idx++)
        for (ru_win *w = r->open.slots[idx]; w && !rc; w = w->next)
            if (w->t >= t_lo && w->t <= t_hi) rc = win_row(out, w);
    for (size_t idx = 0; !rc && idx < r->closing_n; idx++)
        if (r->closing[idx]->t >= t_lo && r->closing[idx]->t <= t_hi)
            rc = win_row(out, r->closing[idx]);
    pthread_mutex_unlock(&r->mu);
    file_rows fr = {out, t_lo, t_hi};
    for (size_t idx = 0; idx < out->file_n && !rc; idx++)
        rc = ru_file_decode(&r->def, out->files[idx]->bytes, out->files[idx]->len, &out->arena,
                            agg_mask, file_row, &fr, d);
    if (!rc && sorted && out->count > 1)
        qsort_r(out->rows, out->count, sizeof *out->rows, row_cmp, out);
    if (rc) {
        ru_rows_fini(out);
        if (rc == QR_ENOMEM) qr_diag_set(d, rc, "out of memory reading rollup %s", r->def.name);
    }
    return rc;
}

void ru_rows_fini(ru_rows *rs)
{
    for (size_t idx = 0; idx < rs->count; idx++)
        for (uint32_t ai = 0; ai < rs->agg_count; ai++) cq_agg_free(rs->rows[idx].st[ai]);
    for (size_t idx = 0; idx < rs->file_n; idx++) file_unref(rs->files[idx]);
    free(rs->files);
    rs->files = NULL;
    rs->file_n = 0;
    free(rs->rows);
    rs->rows = NULL;
    rs->count = rs->cap = 0;
    qr_arena_fini(&rs->arena);
}

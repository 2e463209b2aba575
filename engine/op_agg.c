/* op_agg — hash aggregate: GROUP BY keys → aggregate states, then HAVING, the output
 * expressions, ORDER BY and OFFSET/LIMIT over the groups.
 *
 * Group keys are evaluated per selected row and serialized (type byte + value) into one byte
 * string, hashed with xxh3 into an open-addressing table of groups held in the query arena.
 * Aggregates: count(*), count(x), sum, avg, min, max, count_distinct (a set of 64-bit hashes
 * of the values per group, exact up to hash collisions, until 1,024 values; then HyperLogLog,
 * 0.81 % standard error), quantile/p50..p99 (a DDSketch-style sketch within 1 % relative
 * error: agg_sketch.h), and LogQL's rate.
 *
 * Block metadata: when every aggregate is count(*) (or rate), every group key is service,
 * level or bucket(ts, d), every conjunct is a time range or a service/level predicate, and a
 * block lies wholly inside the time range with its ts span inside one bucket, the block's
 * (service, level) row counts are the answer: scan.c hands such blocks to agg_meta, which
 * never reads a column. A block spanning two buckets falls back to its rows (QR_EAGAIN).
 *
 * Without GROUP BY there is exactly one group, even over no rows (count(*) = 0, sum = NULL).
 * Without ORDER BY groups come out in ascending order of their keys. */
#include "engine/agg_sketch.h"
#include "engine/exec_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct agg_state {
    int64_t count;
    __int128 sum_i; /* the integers, exactly */
    double *sum_fp; /* the floats, exactly: non-overlapping partials, smallest first */
    uint32_t sum_fn, sum_fcap;
    double sum_special; /* inf / NaN values (and overflow), summed as they come */
    bool sum_float;     /* some value was a float: the sum is a float */
    exec_value best;    /* min / max */
    uint64_t *set;      /* count_distinct: open addressing, 0 = empty slot ... */
    uint32_t set_n, set_cap;
    uint8_t *hll; /* ... until AGG_DISTINCT_EXACT_MAX values, then HyperLogLog registers */
    dd_sketch dd; /* quantile */
} agg_state;

/* count_distinct is exact (up to 64-bit hash collisions) below this many values per group */
#define AGG_DISTINCT_EXACT_MAX 1024

typedef struct group {
    uint64_t hash;
    uint8_t *key;
    uint32_t key_len;
    exec_value *keys;
    agg_state *st;
} group;

typedef struct agg_op {
    exec_ctx *q;
    group **groups;
    uint64_t count;
    uint32_t *slots; /* group index + 1, 0 = empty */
    uint64_t slot_cap;
    qr_buf key;
    exec_value *kv;
    /* the group of the previous row: rows arrive in ts order, so runs share a key (a time
     * bucket, a service) and skip the hash lookup */
    qr_buf last_key;
    group *last_group;
    /* agg_meta's memo for one part while the blocks it sees have the same time buckets
     * (memo_bucket, one per BX_CALL group key): per (service id, level) slot the group and the
     * rows counted but not yet added to it (meta_flush adds them) */
    const part_ctx *memo_pc;
    group **memo;        /* [service_id * QR_LEVEL_COUNT + level], NULL: not looked up yet */
    uint64_t *memo_rows; /* same slots */
    size_t memo_slots;   /* slots in use (memo_pc's) */
    size_t memo_cap;     /* slots allocated */
    int64_t *memo_bucket;
} agg_op;

/* ---- keys ---------------------------------------------------------------------------------- */

void exec_value_key(qr_buf *b, const exec_value *v)
{
    qr_buf_u8(b, v->type);
    switch (v->type) {
    case EXEC_NULL:
        break;
    case EXEC_BOOL:
        qr_buf_u8(b, v->v.b);
        break;
    case EXEC_FLOAT: {
        double f = v->v.f == 0 ? 0 : v->v.f; /* -0 and 0 group together */
        qr_buf_append(b, &f, 8);
        break;
    }
    case EXEC_STRING:
        qr_buf_u32(b, v->v.s.len);
        qr_buf_append(b, v->v.s.ptr, v->v.s.len);
        break;
    default:
        qr_buf_append(b, &v->v.i, 8);
        break;
    }
}

static inline void key_add(qr_buf *b, const exec_value *v) { exec_value_key(b, v); }

static int table_grow(agg_op *a)
{
    uint64_t cap = a->slot_cap ? a->slot_cap * 2 : 64;
    uint32_t *slots = qr_arena_calloc(a->q->qa, cap, sizeof *slots);
    group **groups = qr_arena_alloc(a->q->qa, (cap / 2 + 1) * sizeof *groups);
    if (!slots || !groups) return exec_over_budget(a->q);
    if (a->count) memcpy(groups, a->groups, a->count * sizeof *groups);
    for (uint64_t gi = 0; gi < a->count; gi++) {
        uint64_t pos = groups[gi]->hash & (cap - 1);
        while (slots[pos]) pos = (pos + 1) & (cap - 1);
        slots[pos] = (uint32_t)(gi + 1);
    }
    a->slots = slots;
    a->groups = groups;
    a->slot_cap = cap;
    return 0;
}

/* Finds or creates the group of the key in a->key / a->kv. */
static int group_get(agg_op *a, group **out)
{
    exec_ctx *q = a->q;
    if (!qr_buf_ok(&a->key)) return QR_ENOMEM;
    uint64_t h = qr_hash64(a->key.data, a->key.len);
    if (a->count + 1 > a->slot_cap / 2) {
        int rc = table_grow(a);
        if (rc) return rc;
    }
    uint64_t pos = h & (a->slot_cap - 1);
    while (a->slots[pos]) {
        group *g = a->groups[a->slots[pos] - 1];
        if (g->hash == h && g->key_len == a->key.len &&
            (a->key.len == 0 || memcmp(g->key, a->key.data, a->key.len) == 0)) {
            *out = g;
            return 0;
        }
        pos = (pos + 1) & (a->slot_cap - 1);
    }
    plan *pl = q->pl;
    group *g = qr_arena_calloc(q->qa, 1, sizeof *g);
    if (!g) return exec_over_budget(q);
    g->hash = h;
    g->key_len = (uint32_t)a->key.len;
    g->key = qr_arena_alloc(q->qa, a->key.len + 1);
    g->keys = qr_arena_calloc(q->qa, pl->group_count + 1, sizeof *g->keys);
    g->st = qr_arena_calloc(q->qa, pl->agg_count + 1, sizeof *g->st);
    if (!g->key || !g->keys || !g->st) return exec_over_budget(q);
    if (a->key.len) memcpy(g->key, a->key.data, a->key.len);
    bool ok = true;
    for (uint32_t k = 0; k < pl->group_count; k++) g->keys[k] = ev_copy(q->qa, &a->kv[k], &ok);
    if (!ok) return exec_over_budget(q);
    a->groups[a->count++] = g;
    a->slots[pos] = (uint32_t)a->count;
    *out = g;
    return 0;
}

/* ---- states -------------------------------------------------------------------------------- */

static bool set_add(exec_ctx *q, agg_state *s, uint64_t h)
{
    if (h == 0) h = 1;
    if ((s->set_n + 1) * 2 > s->set_cap) {
        uint32_t cap = s->set_cap ? s->set_cap * 2 : 16;
        uint64_t *set = qr_arena_calloc(q->qa, cap, sizeof *set);
        if (!set) return false;
        for (uint32_t idx = 0; idx < s->set_cap; idx++) {
            if (!s->set[idx]) continue;
            uint32_t pos = (uint32_t)(s->set[idx] & (cap - 1));
            while (set[pos]) pos = (pos + 1) & (cap - 1);
            set[pos] = s->set[idx];
        }
        s->set = set;
        s->set_cap = cap;
    }
    uint32_t pos = (uint32_t)(h & (s->set_cap - 1));
    while (s->set[pos]) {
        if (s->set[pos] == h) return true;
        pos = (pos + 1) & (s->set_cap - 1);
    }
    s->set[pos] = h;
    s->set_n++;
    return true;
}

/* ---- exact sums --------------------------------------------------------------------------
 * Float sums are kept exactly, as a list of non-overlapping partials (Shewchuk's algorithm, as
 * Python's math.fsum), and rounded once at the end: the sum does not depend on the order the
 * values came in, so partial sums of the scan workers merge into the same result for any
 * split. Integers are summed exactly in 128 bits. */

static int fsum_add(qr_arena *arena, agg_state *s, double x)
{
    if (!isfinite(x)) {
        s->sum_special += x;
        return 0;
    }
    uint32_t kept = 0;
    for (uint32_t idx = 0; idx < s->sum_fn; idx++) {
        double y = s->sum_fp[idx];
        if (fabs(x) < fabs(y)) {
            double t = x;
            x = y;
            y = t;
        }
        double hi = x + y, lo = y - (hi - x);
        if (lo != 0.0) s->sum_fp[kept++] = lo;
        x = hi;
    }
    s->sum_fn = kept;
    if (!isfinite(x)) { /* overflow of the exact sum: it is this infinity */
        s->sum_special += x;
        return 0;
    }
    if (s->sum_fn == s->sum_fcap) {
        uint32_t cap = s->sum_fcap ? s->sum_fcap * 2 : 4;
        double *fp = qr_arena_alloc(arena, cap * sizeof *fp);
        if (!fp) return -1;
        if (s->sum_fn) memcpy(fp, s->sum_fp, s->sum_fn * sizeof *fp);
        s->sum_fp = fp;
        s->sum_fcap = cap;
    }
    s->sum_fp[s->sum_fn++] = x;
    return 0;
}

/* The exact sum of the partials, rounded to nearest (math.fsum's last step). */
static double fsum_round(const double *p, uint32_t n)
{
    if (n == 0) return 0.0;
    double hi = p[--n], lo = 0.0;
    while (n > 0) {
        double x = hi, y = p[--n];
        hi = x + y;
        lo = y - (hi - x);
        if (lo != 0.0) break;
    }
    if (n > 0 && ((lo < 0 && p[n - 1] < 0) || (lo > 0 && p[n - 1] > 0))) {
        double y = lo * 2, x = hi + y;
        if (y == x - hi) hi = x;
    }
    return hi;
}

/* The state's sum as a double: the integers and the floats together, rounded once. */
static double sum_value(const agg_state *s)
{
    if (s->sum_special != 0 || isnan(s->sum_special)) return s->sum_special;
    double p[80];
    agg_state t = {.sum_fp = p, .sum_fcap = 80};
    for (uint32_t idx = 0; idx < s->sum_fn && idx < 76; idx++) p[idx] = s->sum_fp[idx];
    t.sum_fn = s->sum_fn < 76 ? s->sum_fn : 76;
    /* the 128-bit integer as three exact doubles (42 + 42 + 44 bits) */
    __int128 v = s->sum_i;
    const __int128 mask = ((__int128)1 << 42) - 1;
    double c0 = (double)(int64_t)(v & mask), c1 = (double)(int64_t)((v >> 42) & mask),
           c2 = (double)(int64_t)(v >> 84);
    fsum_add(NULL, &t, c0);
    fsum_add(NULL, &t, ldexp(c1, 42));
    fsum_add(NULL, &t, ldexp(c2, 84));
    return t.sum_special != 0 || isnan(t.sum_special) ? t.sum_special : fsum_round(p, t.sum_fn);
}

/* min / max: ev_cmp's order; values that compare equal (1 and 1.0) by type, so the result
 * does not depend on the order the values came in */
static bool best_beats(const agg_spec *spec, const exec_value *v, const exec_value *best)
{
    int c = ev_cmp(v, best);
    if (c == 0) return v->type < best->type;
    return spec->fn == AGG_MIN ? c < 0 : c > 0;
}

/* count_distinct: one more value hash */
static int distinct_add(exec_ctx *q, agg_state *s, uint64_t h)
{
    if (s->hll) {
        hll_add(s->hll, h);
        return 0;
    }
    if (!set_add(q, s, h)) return exec_over_budget(q);
    if (s->set_n > AGG_DISTINCT_EXACT_MAX) { /* from here on: HyperLogLog */
        s->hll = qr_arena_calloc(q->qa, HLL_REGISTERS, 1);
        if (!s->hll) return exec_over_budget(q);
        for (uint32_t idx = 0; idx < s->set_cap; idx++)
            if (s->set[idx]) hll_add(s->hll, s->set[idx]);
        s->set = NULL;
    }
    return 0;
}

static int state_add(agg_op *a, agg_state *s, const agg_spec *spec, blk_ctx *bc, uint32_t row)
{
    exec_ctx *q = a->q;
    if (spec->fn == AGG_COUNT_STAR || (spec->fn == AGG_RATE && !spec->arg)) {
        s->count++;
        return 0;
    }
    exec_value v = ev_eval(spec->arg, bc, row);
    if (v.type == EXEC_NULL) return 0;
    switch (spec->fn) {
    case AGG_COUNT:
        s->count++;
        return 0;
    case AGG_SUM:
    case AGG_AVG:
    case AGG_RATE: /* rate(x): the sum of x per second */
        if (v.type == EXEC_FLOAT) {
            s->sum_float = true;
            if (fsum_add(q->qa, s, v.v.f)) return exec_over_budget(q);
        } else if (v.type == EXEC_INT || v.type == EXEC_DURATION) {
            s->sum_i += v.v.i;
        } else {
            return 0;
        }
        s->count++;
        return 0;
    case AGG_MIN:
    case AGG_MAX: {
        if (!s->count || best_beats(spec, &v, &s->best)) {
            bool ok = true;
            s->best = ev_copy(q->qa, &v, &ok);
            if (!ok) return exec_over_budget(q);
        }
        s->count++;
        return 0;
    }
    case AGG_COUNT_DISTINCT: {
        qr_buf_clear(&a->key);
        key_add(&a->key, &v);
        if (!qr_buf_ok(&a->key)) return QR_ENOMEM;
        return distinct_add(q, s, qr_hash64(a->key.data, a->key.len));
    }
    case AGG_QUANTILE: {
        if (v.type != EXEC_INT && v.type != EXEC_FLOAT) return 0;
        if (dd_add(q->qa, &s->dd, v.type == EXEC_FLOAT ? v.v.f : (double)v.v.i))
            return exec_over_budget(q);
        return 0;
    }
    default:
        return 0;
    }
}

static exec_value state_value(const agg_spec *spec, agg_state *s)
{
    exec_value v = {0};
    switch (spec->fn) {
    case AGG_COUNT_STAR:
    case AGG_COUNT:
        return ev_int(EXEC_INT, s->count);
    case AGG_RATE:
        v.type = EXEC_FLOAT;
        v.v.f = !spec->arg ? (double)s->count / spec->per_s : sum_value(s) / spec->per_s;
        return v;
    case AGG_SUM:
        if (!s->count) return ev_null();
        if (!s->sum_float && s->sum_i >= INT64_MIN && s->sum_i <= INT64_MAX)
            return ev_int(EXEC_INT, (int64_t)s->sum_i);
        v.type = EXEC_FLOAT;
        v.v.f = sum_value(s);
        return v;
    case AGG_AVG:
        if (!s->count) return ev_null();
        v.type = EXEC_FLOAT;
        v.v.f = sum_value(s) / (double)s->count;
        return v;
    case AGG_MIN:
    case AGG_MAX:
        return s->count ? s->best : ev_null();
    case AGG_COUNT_DISTINCT:
        return ev_int(EXEC_INT, s->hll ? (int64_t)hll_estimate(s->hll) : s->set_n);
    case AGG_QUANTILE: {
        double f = dd_quantile(&s->dd, spec->q);
        if (isnan(f)) return ev_null();
        v.type = EXEC_FLOAT;
        v.v.f = f;
        return v;
    }
    }
    return ev_null();
}

/* ---- sinks ---------------------------------------------------------------------------------- */

static int count_rows_fast(agg_op *a, blk_ctx *bc, const uint32_t *sel, uint32_t n);

static int agg_rows(void *ctx, blk_ctx *bc, const uint32_t *sel, uint32_t n)
{
    agg_op *a = ctx;
    plan *pl = a->q->pl;
    if (pl->count_fast) {
        int rc = count_rows_fast(a, bc, sel, n);
        if (rc != QR_EAGAIN) return rc;
    }
    for (uint32_t idx = 0; idx < n; idx++) {
        uint32_t row = sel[idx];
        qr_buf_clear(&a->key);
        for (uint32_t k = 0; k < pl->group_count; k++) {
            a->kv[k] = ev_eval(pl->groups[k], bc, row);
            key_add(&a->key, &a->kv[k]);
        }
        if (bc->err) return bc->err;
        group *g = a->last_group;
        int rc = 0;
        if (!g || a->key.len != a->last_key.len || !qr_buf_ok(&a->key) ||
            (a->key.len && memcmp(a->key.data, a->last_key.data, a->key.len) != 0)) {
            rc = group_get(a, &g);
            if (rc) return rc;
            qr_buf_clear(&a->last_key);
            qr_buf_append(&a->last_key, a->key.data, a->key.len);
            a->last_group = qr_buf_ok(&a->last_key) ? g : NULL;
        }
        for (uint32_t ai = 0; ai < pl->agg_count; ai++) {
            rc = state_add(a, &g->st[ai], &pl->aggs[ai], bc, row);
            if (rc) return rc;
        }
        if (bc->err) return bc->err;
    }
    return 0;
}

static int64_t bucket_of(int64_t t, int64_t w)
{
    int64_t b = t / w * w;
    return (t < 0 && b != t) ? b - w : b;
}

/* Adds the rows counted in the memo to their groups' count(*) / rate states. */
static void meta_flush(agg_op *a)
{
    plan *pl = a->q->pl;
    for (size_t slot = 0; slot < a->memo_slots; slot++) {
        if (!a->memo_rows[slot]) continue;
        group *grp = a->memo[slot];
        for (uint32_t ai = 0; ai < pl->agg_count; ai++)
            grp->st[ai].count += (int64_t)a->memo_rows[slot];
        a->memo_rows[slot] = 0;
    }
}

/* Points the memo at pc for a block whose time buckets (one per BX_CALL group key) are those
 * of min_ts_ns; flushes and clears it first when the part or a bucket changes. */
static int meta_memo(agg_op *a, const part_ctx *pc, int64_t min_ts_ns)
{
    exec_ctx *q = a->q;
    plan *pl = q->pl;
    bool fresh = a->memo_pc != pc;
    if (!a->memo_bucket) {
        a->memo_bucket = qr_arena_calloc(q->qa, pl->group_count + 1, sizeof *a->memo_bucket);
        if (!a->memo_bucket) return exec_over_budget(q);
    }
    for (uint32_t k = 0; k < pl->group_count; k++) {
        const bx *g = pl->groups[k];
        if (g->kind != BX_CALL) continue;
        int64_t b = bucket_of(min_ts_ns, g->width_ns);
        fresh = fresh || a->memo_bucket[k] != b;
        a->memo_bucket[k] = b;
    }
    if (!fresh) return 0;
    meta_flush(a);
    size_t slots = (size_t)(pc->p->service_count ? pc->p->service_count : 1) * QR_LEVEL_COUNT;
    if (slots > a->memo_cap) {
        size_t cap = slots > 2 * a->memo_cap ? slots : 2 * a->memo_cap;
        a->memo = qr_arena_alloc(q->qa, cap * sizeof *a->memo);
        a->memo_rows = qr_arena_calloc(q->qa, cap, sizeof *a->memo_rows);
        if (!a->memo || !a->memo_rows) return exec_over_budget(q);
        a->memo_cap = cap;
    }
    if (slots) memset(a->memo, 0, slots * sizeof *a->memo);
    a->memo_slots = slots;
    a->memo_pc = pc;
    return 0;
}

/* The group of a memo slot not looked up yet (memo_add). */
static int memo_group(agg_op *a, const qr_part *p, uint32_t sid, uint8_t lvl, size_t slot)
{
    plan *pl = a->q->pl;
    qr_buf_clear(&a->key);
    for (uint32_t k = 0; k < pl->group_count; k++) {
        const bx *g = pl->groups[k];
        exec_value v = {0};
        if (g->kind == BX_CALL) {
            v = ev_int(EXEC_TS, a->memo_bucket[k]);
        } else if (g->col == COL_SERVICE) {
            v.type = EXEC_STRING;
            v.v.s = p->services[sid];
        } else {
            v = ev_int(EXEC_LEVEL, lvl);
        }
        a->kv[k] = v;
        key_add(&a->key, &v);
    }
    return group_get(a, &a->memo[slot]);
}

/* Counts rows of (service id, level) into the memo's group (memo_pc's part, memo_bucket). */
static inline int memo_add(agg_op *a, const qr_part *p, uint32_t sid, uint8_t lvl, uint64_t rows)
{
    size_t slot = (size_t)sid * QR_LEVEL_COUNT + lvl;
    if (slot >= a->memo_slots) return QR_EINVAL;
    if (!a->memo[slot]) {
        int rc = memo_group(a, p, sid, lvl, slot);
        if (rc) return rc;
    }
    a->memo_rows[slot] += rows;
    return 0;
}

static int agg_meta(void *ctx, part_ctx *pc, const qr_block_meta *m)
{
    agg_op *a = ctx;
    exec_ctx *q = a->q;
    plan *pl = q->pl;
    for (uint32_t k = 0; k < pl->group_count; k++) {
        const bx *g = pl->groups[k];
        if (g->kind == BX_CALL &&
            bucket_of(m->min_ts_ns, g->width_ns) != bucket_of(m->max_ts_ns, g->width_ns))
            return QR_EAGAIN;
    }
    int rc = meta_memo(a, pc, m->min_ts_ns);
    if (rc) return rc;
    qr_part *p = pc->p;
    bool labels = false; /* grouped by service or level: each pair to its group */
    for (uint32_t k = 0; k < pl->group_count; k++) labels = labels || pl->groups[k]->kind == BX_COL;
    uint64_t hits = 0;
    for (uint32_t ci = 0; ci < m->count_n; ci++) {
        const qr_svc_level_count *c = &m->counts[ci];
        if (!c->row_count) continue;
        if (c->service_id >= p->service_count || c->level >= QR_LEVEL_COUNT)
            return qr_diag_set(q->d, QR_ECORRUPT, "block counts name a service id out of range");
        size_t slot = (size_t)c->service_id * QR_LEVEL_COUNT + c->level;
        if (pc->sl_ok && !pc->sl_ok[slot]) continue;
        if (labels && (rc = memo_add(a, p, c->service_id, c->level, c->row_count))) return rc;
        hits += c->row_count;
    }
    if (!labels && hits && (rc = memo_add(a, p, 0, 0, hits))) return rc; /* one group */
    q->hits += hits;
    return 0;
}

/* ---- counts of selected rows without a hash lookup per row ----------------------------------
 * For count(*) grouped by service, level and at most one bucket(ts, d) (plan count_fast):
 * the selected rows of a block are counted per (bucket, service id, level) in a small array —
 * the bucket is an integer division of the decoded ts — and the counts go to the groups
 * through the same memo as the metadata answers, so a group is looked up once per part and
 * bucket, not once per row. A block with out-of-range ids (or ts outside its metadata) takes
 * the general path. Only the columns the keys need are read. */

#define COUNT_FAST_MAX_CELLS (1u << 16)

static int count_rows_fast(agg_op *a, blk_ctx *bc, const uint32_t *sel, uint32_t n)
{
    exec_ctx *q = a->q;
    plan *pl = q->pl;
    bool by_svc = false, by_lvl = false;
    int64_t width = 0;
    for (uint32_t k = 0; k < pl->group_count; k++) {
        const bx *g = pl->groups[k];
        if (g->kind == BX_CALL)
            width = g->width_ns;
        else if (g->col == COL_SERVICE)
            by_svc = true;
        else
            by_lvl = true;
    }
    qr_part *p = bc->p;
    uint32_t svc_n = by_svc ? p->service_count : 1, lvl_n = by_lvl ? QR_LEVEL_COUNT : 1;
    int64_t b0 = 0;
    uint64_t nb = 1;
    if (width > 0) {
        b0 = bucket_of(bc->meta.min_ts_ns, width);
        uint64_t span = (uint64_t)bucket_of(bc->meta.max_ts_ns, width) - (uint64_t)b0;
        nb = span / (uint64_t)width + 1;
    }
    uint64_t cells = nb * svc_n * lvl_n;
    if (svc_n == 0 || nb > COUNT_FAST_MAX_CELLS || cells > COUNT_FAST_MAX_CELLS) return QR_EAGAIN;
    if ((by_svc && blk_load(bc, COL_SERVICE)) || (by_lvl && blk_load(bc, COL_LEVEL)) ||
        (width > 0 && blk_load(bc, COL_TS)))
        return bc->err;
    uint32_t *counts = qr_arena_calloc(&q->scratch, cells, sizeof *counts);
    if (!counts) return exec_over_budget(q);
    const uint32_t *svc = bc->svc;
    const uint8_t *lvl = bc->level;
    const int64_t *ts = bc->ts;
    uint32_t bad = 0;
    if (width > 0 && !by_svc && !by_lvl && nb <= 8) {
        /* the histogram over a block that straddles a few bucket edges: compare, not divide */
        int64_t edge[8];
        for (uint64_t k = 0; k < 8; k++)
            edge[k] = k + 1 < nb ? b0 + (int64_t)(k + 1) * width : INT64_MAX;
        int64_t lo = bc->meta.min_ts_ns, hi = bc->meta.max_ts_ns;
        if (nb == 2) { /* the usual case: one edge */
            int64_t e = edge[0];
            uint32_t upper = 0;
            for (uint32_t idx = 0; idx < n; idx++) {
                int64_t t = ts[sel[idx]];
                upper += t >= e;
                bad |= t < lo || t > hi;
            }
            counts[0] += n - upper;
            counts[1] += upper;
        } else {
            for (uint32_t idx = 0; idx < n; idx++) {
                int64_t t = ts[sel[idx]];
                uint32_t bi = 0;
                for (uint64_t k = 0; k + 1 < nb; k++) bi += t >= edge[k];
                bad |= t < lo || t > hi;
                counts[bi]++;
            }
        }
    } else if (width > 0 && !by_svc && !by_lvl) { /* buckets only */
        for (uint32_t idx = 0; idx < n; idx++) {
            uint64_t bi = ((uint64_t)ts[sel[idx]] - (uint64_t)b0) / (uint64_t)width;
            bad |= bi >= nb;
            counts[bi < nb ? bi : 0]++;
        }
    } else if (width == 0 && by_svc && !by_lvl) { /* by service */
        for (uint32_t idx = 0; idx < n; idx++) {
            uint32_t sid = svc[sel[idx]];
            bad |= sid >= svc_n;
            counts[sid < svc_n ? sid : 0]++;
        }
    } else {
        for (uint32_t idx = 0; idx < n; idx++) {
            uint32_t row = sel[idx];
            uint64_t bi = 0;
            uint32_t sid = by_svc ? svc[row] : 0, lv = by_lvl ? lvl[row] : 0;
            if (width > 0) bi = ((uint64_t)ts[row] - (uint64_t)b0) / (uint64_t)width;
            bool out = bi >= nb || sid >= svc_n || lv >= lvl_n;
            bad |= out;
            counts[out ? 0 : (bi * svc_n + sid) * lvl_n + lv]++;
        }
    }
    if (bad) return QR_EAGAIN;
    for (uint64_t bi = 0; bi < nb; bi++) {
        const uint32_t *row = counts + bi * svc_n * lvl_n;
        bool any = false;
        for (uint32_t cell = 0; cell < svc_n * lvl_n && !any; cell++) any = row[cell] != 0;
        if (!any) continue;
        int rc = meta_memo(a, bc->pc, b0 + (int64_t)bi * width);
        if (rc) return rc;
        for (uint32_t cell = 0; cell < svc_n * lvl_n; cell++) {
            if (!row[cell]) continue;
            rc = memo_add(a, p, cell / lvl_n, (uint8_t)(cell % lvl_n), row[cell]);
            if (rc) return rc;
        }
    }
    return 0;
}

/* ---- merging the scan workers' tables ------------------------------------------------------- */

static int state_merge(agg_op *a, agg_state *into, const agg_spec *spec, const agg_state *from)
{
    exec_ctx *q = a->q;
    switch (spec->fn) {
    case AGG_COUNT_STAR:
    case AGG_COUNT:
        into->count += from->count;
        return 0;
    case AGG_SUM:
    case AGG_AVG:
    case AGG_RATE:
        into->count += from->count;
        into->sum_i += from->sum_i;
        into->sum_float = into->sum_float || from->sum_float;
        into->sum_special += from->sum_special;
        for (uint32_t idx = 0; idx < from->sum_fn; idx++)
            if (fsum_add(q->qa, into, from->sum_fp[idx])) return exec_over_budget(q);
        return 0;
    case AGG_MIN:
    case AGG_MAX:
        if (from->count && (!into->count || best_beats(spec, &from->best, &into->best))) {
            bool ok = true;
            into->best = ev_copy(q->qa, &from->best, &ok);
            if (!ok) return exec_over_budget(q);
        }
        into->count += from->count;
        return 0;
    case AGG_COUNT_DISTINCT:
        if (from->hll) {
            if (!into->hll) {
                into->hll = qr_arena_calloc(q->qa, HLL_REGISTERS, 1);
                if (!into->hll) return exec_over_budget(q);
                for (uint32_t idx = 0; idx < into->set_cap; idx++)
                    if (into->set[idx]) hll_add(into->hll, into->set[idx]);
                into->set = NULL;
            }
            hll_merge(into->hll, from->hll);
            return 0;
        }
        for (uint32_t idx = 0; idx < from->set_cap; idx++) {
            if (!from->set || !from->set[idx]) continue;
            int rc = distinct_add(q, into, from->set[idx]);
            if (rc) return rc;
        }
        return 0;
    case AGG_QUANTILE:
        into->count += from->count;
        return dd_merge(q->qa, &into->dd, &from->dd) ? exec_over_budget(q) : 0;
    }
    return 0;
}

/* Adds the groups of worker table `from` to `into` (both flushed). */
static int agg_merge(agg_op *into, const agg_op *from)
{
    plan *pl = into->q->pl;
    for (uint64_t gi = 0; gi < from->count; gi++) {
        const group *fg = from->groups[gi];
        qr_buf_clear(&into->key);
        qr_buf_append(&into->key, fg->key, fg->key_len);
        for (uint32_t k = 0; k < pl->group_count; k++) into->kv[k] = fg->keys[k];
        group *g;
        int rc = group_get(into, &g);
        if (rc) return rc;
        for (uint32_t ai = 0; ai < pl->agg_count; ai++) {
            rc = state_merge(into, &g->st[ai], &pl->aggs[ai], &fg->st[ai]);
            if (rc) return rc;
        }
    }
    return 0;
}

static int agg_init(agg_op *a, exec_ctx *q)
{
    memset(a, 0, sizeof *a);
    a->q = q;
    qr_buf_init(&a->key);
    qr_buf_init(&a->last_key);
    a->kv = qr_arena_calloc(q->qa, q->pl->group_count + 1, sizeof *a->kv);
    return a->kv ? table_grow(a) : exec_over_budget(q);
}

static void agg_fini(agg_op *a)
{
    qr_buf_fini(&a->key);
    qr_buf_fini(&a->last_key);
}

/* The scan: one table per worker, merged into the first (aggregates merge exactly, so the
 * result does not depend on how the blocks were split). */
static int agg_scan(exec_ctx *q, agg_op *a)
{
    plan *pl = q->pl;
    int rc = scan_workers_init(q);
    if (rc) return rc;
    uint32_t nw = q->worker_count;
    agg_op *ws = qr_arena_calloc(q->qa, nw, sizeof *ws);
    void **ctxs = qr_arena_calloc(q->qa, nw, sizeof *ctxs);
    if (!ws || !ctxs) return exec_over_budget(q);
    ctxs[0] = a;
    uint32_t ready = 1;
    for (; ready < nw && !rc; ready++) {
        rc = agg_init(&ws[ready], q->workers[ready]);
        ctxs[ready] = &ws[ready];
    }
    if (!rc) {
        scan_sink sink = {agg_rows, pl->meta_ok ? agg_meta : NULL, NULL, ctxs};
        rc = scan_run(q, &sink);
    }
    for (uint32_t w = 0; w < ready; w++) meta_flush(ctxs[w]);
    for (uint32_t w = 1; w < ready && !rc; w++) rc = agg_merge(a, &ws[w]);
    for (uint32_t w = 1; w < ready; w++) agg_fini(&ws[w]);
    return scan_partial(q, rc); /* over budget while merging: partial when allowed */
}

/* ---- output --------------------------------------------------------------------------------- */

typedef struct out_row {
    exec_value *cells;
    exec_value *sort;
    const group *g;
} out_row;

typedef struct sort_ctx {
    uint32_t n;
    const bool *desc;
    uint32_t group_count;
} sort_ctx;

/* ORDER BY, then (ties) the group keys, then their bytes: a total order, so the output does
 * not depend on the order the groups were made in */
static int out_cmp(const void *x, const void *y, void *ctx)
{
    const sort_ctx *sc = ctx;
    const out_row *a = x, *b = y;
    for (uint32_t k = 0; k < sc->n; k++) {
        int c = ev_cmp(&a->sort[k], &b->sort[k]);
        if (c) return sc->desc && sc->desc[k] ? -c : c;
    }
    for (uint32_t k = 0; k < sc->group_count; k++) {
        int c = ev_cmp(&a->g->keys[k], &b->g->keys[k]);
        if (c) return c;
    }
    uint32_t n = a->g->key_len < b->g->key_len ? a->g->key_len : b->g->key_len;
    int c = n ? memcmp(a->g->key, b->g->key, n) : 0;
    if (c) return c;
    return a->g->key_len < b->g->key_len ? -1 : a->g->key_len > b->g->key_len;
}

int run_agg(exec_ctx *q, exec_result *r)
{
    plan *pl = q->pl;
    agg_op a;
    int rc = agg_init(&a, q);
    if (!rc && pl->kind == PLAN_AGG) rc = agg_scan(q, &a);
    if (!rc && pl->group_count == 0 && a.count == 0) {
        group *g;
        qr_buf_clear(&a.key);
        rc = group_get(&a, &g);
    }
    agg_fini(&a);
    if (rc) return rc;
    if (q->stopped) q->qa->budget_bytes += q->qa->budget_bytes / 4 + 1024 * 1024;

    /* HAVING, output expressions and sort keys per group */
    out_row *rows = qr_arena_calloc(q->qa, a.count + 1, sizeof *rows);
    exec_value *aggv = qr_arena_calloc(q->qa, pl->agg_count + 1, sizeof *aggv);
    if (!rows || !aggv) return exec_over_budget(q);
    blk_ctx post;
    memset(&post, 0, sizeof post);
    post.q = q;
    post.post_aggs = aggv;
    uint64_t kept = 0;
    bool default_order = pl->order_count == 0;
    uint32_t sort_n = default_order ? pl->group_count : pl->order_count;
    for (uint64_t gi = 0; gi < a.count; gi++) {
        group *g = a.groups[gi];
        for (uint32_t ai = 0; ai < pl->agg_count; ai++)
            aggv[ai] = state_value(&pl->aggs[ai], &g->st[ai]);
        post.post_groups = g->keys;
        if (pl->having) {
            exec_value hv = ev_eval(pl->having, &post, 0);
            if (!ev_truthy(&hv)) continue;
        }
        out_row *o = &rows[kept];
        o->g = g;
        o->cells = qr_arena_alloc(q->qa, (pl->out_count + 1) * sizeof *o->cells);
        o->sort = qr_arena_alloc(q->qa, (sort_n + 1) * sizeof *o->sort);
        if (!o->cells || !o->sort) return exec_over_budget(q);
        bool ok = true;
        for (uint32_t col = 0; col < pl->out_count; col++) {
            exec_value v = ev_eval(pl->out[col], &post, 0);
            o->cells[col] = ev_copy(q->qa, &v, &ok);
        }
        for (uint32_t k = 0; k < sort_n; k++) {
            exec_value v = default_order ? g->keys[k] : ev_eval(pl->order[k], &post, 0);
            o->sort[k] = ev_copy(q->qa, &v, &ok);
        }
        if (!ok) return exec_over_budget(q);
        qr_arena_reset(&q->scratch);
        kept++;
    }
    sort_ctx sc = {sort_n, default_order ? NULL : pl->order_desc, pl->group_count};
    if (kept > 1 && (sort_n || pl->group_count)) qsort_r(rows, kept, sizeof *rows, out_cmp, &sc);
    uint64_t first = (uint64_t)pl->offset < kept ? (uint64_t)pl->offset : kept;
    uint64_t count = kept - first;
    if (pl->limit >= 0 && count > (uint64_t)pl->limit) count = (uint64_t)pl->limit;
    r->row_count = count;
    r->cells = qr_arena_alloc(q->qa, (count * pl->out_count + 1) * sizeof *r->cells);
    if (!r->cells) return exec_over_budget(q);
    for (uint64_t idx = 0; idx < count; idx++)
        memcpy(&r->cells[idx * pl->out_count], rows[first + idx].cells,
               pl->out_count * sizeof *r->cells);
    return 0;
}

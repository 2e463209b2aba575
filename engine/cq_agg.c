/* cq_agg — mergeable aggregate states (contract in cq_agg.h).
 *
 * Encoding of a state (docs/format.md, "Aggregate state"), by kind:
 *   count(*), count(x): uvarint count
 *   sum, avg:           uvarint count, u8 is_float, svarint sum | f64 sum
 *   min, max:           uvarint count, then (count > 0) u8 exec_type, svarint | f64 value
 *   quantile:           uvarint count, uvarint zeros, then positive and negative stores:
 *                       svarint lo, uvarint n, n × uvarint counter (trailing zeros trimmed)
 *   count_distinct:     u8 mode: 0 = exact: uvarint n, n × u64 hash (sorted);
 *                       1 = HyperLogLog: uvarint nonzero registers, each uvarint index delta
 *                       + u8 rank */
#include "engine/cq_agg.h"

#include "common/qr_arena.h"
#include "common/qr_hash.h"
#include "engine/agg_sketch.h"
#include "engine/exec_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CQ_DISTINCT_EXACT_MAX 1024 /* as the engine's AGG_DISTINCT_EXACT_MAX */
#define CQ_SKETCH_CHUNK 256
#define CQ_DD_MAX_COUNTERS (1u << 20) /* a decoded store larger than this is corrupt */

struct cq_agg_state {
    uint64_t count;
    bool sum_float;
    int64_t sum_i;
    double sum_f;
    exec_value best; /* min/max; a string points into best_str */
    char *best_str;
    uint32_t best_cap;
    uint64_t *set; /* count_distinct: open-addressing hash set (0 = empty) ... */
    uint32_t set_n, set_cap;
    uint8_t *hll; /* ... until CQ_DISTINCT_EXACT_MAX values, then HyperLogLog registers */
    dd_sketch dd;
    qr_arena *arena; /* the quantile sketch's memory */
};

int cq_agg_spec_from_call(const char *text, const sql_expr *call, cq_agg_spec *out, qr_diag *d)
{
    (void)text;
    memset(out, 0, sizeof *out);
    if (call->kind != SQL_EXPR_CALL)
        return sql_diag_at(d, call->pos, QR_ESYNTAX, "expected an aggregate call such as count(*)");
    const char *name = call->u.call.name;
    static const struct {
        const char *name;
        uint8_t kind;
        double q;
    } fns[] = {
        {"count", CQ_AGG_COUNT, 0},
        {"sum", CQ_AGG_SUM, 0},
        {"min", CQ_AGG_MIN, 0},
        {"max", CQ_AGG_MAX, 0},
        {"avg", CQ_AGG_AVG, 0},
        {"p50", CQ_AGG_QUANTILE, 0.5},
        {"p90", CQ_AGG_QUANTILE, 0.9},
        {"p95", CQ_AGG_QUANTILE, 0.95},
        {"p99", CQ_AGG_QUANTILE, 0.99},
        {"quantile", CQ_AGG_QUANTILE, -1},
        {"count_distinct", CQ_AGG_COUNT_DISTINCT, 0},
    };
    size_t fi = 0;
    while (fi < sizeof fns / sizeof fns[0] && strcmp(fns[fi].name, name) != 0) fi++;
    if (fi == sizeof fns / sizeof fns[0]) {
        return sql_diag_at(d, call->pos, QR_ESYNTAX,
                           "%.40s() cannot be kept by a continuous query: use count(*), count, "
                           "sum, min, max, avg, p50, p90, p95, p99, quantile or count_distinct",
                           name);
    }
    if (call->u.call.star) {
        out->kind = CQ_AGG_COUNT_STAR;
        return 0;
    }
    out->kind = fns[fi].kind;
    out->q = fns[fi].q;
    const sql_expr *arg = call->u.call.arg_count ? call->u.call.args[0] : NULL;
    if (!arg || arg->kind != SQL_EXPR_FIELD)
        return sql_diag_at(d, arg ? arg->pos : call->pos, QR_ESYNTAX,
                           "a continuous query aggregates a column by name (a field, service, "
                           "host, level or msg)");
    if (arg->u.name.len > QR_KEY_MAX_BYTES)
        return sql_diag_at(d, arg->pos, QR_ESYNTAX, "field name too long");
    if (arg->u.name.len == 2 && memcmp(arg->u.name.s, "ts", 2) == 0)
        return sql_diag_at(d, arg->pos, QR_ESYNTAX,
                           "aggregating ts is not supported in a continuous query");
    memcpy(out->field, arg->u.name.s, arg->u.name.len);
    out->field[arg->u.name.len] = 0;
    if (fns[fi].q < 0) {
        const sql_expr *qe = call->u.call.args[1];
        double q = qe->kind == SQL_EXPR_FLOAT ? qe->u.f
                   : qe->kind == SQL_EXPR_INT ? (double)qe->u.i
                                              : -1;
        if (!(q >= 0 && q <= 1))
            return sql_diag_at(d, qe->pos, QR_ESYNTAX,
                               "quantile() level must be a number between 0 and 1");
        out->q = q;
    }
    return 0;
}

void cq_agg_spec_text(const cq_agg_spec *s, char *buf, size_t cap)
{
    static const char *names[] = {"count", "count", "sum", "min",
                                  "max",   "avg",   "",    "count_distinct"};
    if (s->kind == CQ_AGG_COUNT_STAR) {
        snprintf(buf, cap, "count(*)");
    } else if (s->kind == CQ_AGG_QUANTILE) {
        if (s->q == 0.5 || s->q == 0.9 || s->q == 0.95 || s->q == 0.99)
            snprintf(buf, cap, "p%d(%s)", (int)lround(s->q * 100), s->field);
        else
            snprintf(buf, cap, "quantile(%s, %g)", s->field, s->q);
    } else {
        snprintf(buf, cap, "%s(%s)", names[s->kind], s->field);
    }
}

cq_agg_state *cq_agg_new(const cq_agg_spec *s)
{
    cq_agg_state *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    if (s->kind == CQ_AGG_QUANTILE) {
        st->arena = malloc(sizeof *st->arena);
        if (!st->arena) {
            free(st);
            return NULL;
        }
        qr_arena_init(st->arena, CQ_SKETCH_CHUNK, 0);
    }
    return st;
}

void cq_agg_free(cq_agg_state *st)
{
    if (!st) return;
    if (st->arena) {
        qr_arena_fini(st->arena);
        free(st->arena);
    }
    free(st->set);
    free(st->hll);
    free(st->best_str);
    free(st);
}

/* best = v, copying a string into the state. */
static int best_set(cq_agg_state *st, const exec_value *v)
{
    st->best = *v;
    if (v->type != EXEC_STRING) return 0;
    if (v->v.s.len + 1 > st->best_cap) {
        char *p = realloc(st->best_str, v->v.s.len + 1);
        if (!p) return QR_ENOMEM;
        st->best_str = p;
        st->best_cap = v->v.s.len + 1;
    }
    if (v->v.s.len) memcpy(st->best_str, v->v.s.ptr, v->v.s.len);
    st->best.v.s.ptr = st->best_str;
    return 0;
}

/* ---- adding values ---- */

static bool set_add(cq_agg_state *st, uint64_t h)
{
    if (h == 0) h = 1;
    if ((st->set_n + 1) * 2 > st->set_cap) {
        uint32_t cap = st->set_cap ? st->set_cap * 2 : 16;
        uint64_t *set = calloc(cap, sizeof *set);
        if (!set) return false;
        for (uint32_t idx = 0; idx < st->set_cap; idx++) {
            if (!st->set[idx]) continue;
            uint32_t pos = (uint32_t)(st->set[idx] & (cap - 1));
            while (set[pos]) pos = (pos + 1) & (cap - 1);
            set[pos] = st->set[idx];
        }
        free(st->set);
        st->set = set;
        st->set_cap = cap;
    }
    uint32_t pos = (uint32_t)(h & (st->set_cap - 1));
    while (st->set[pos]) {
        if (st->set[pos] == h) return true;
        pos = (pos + 1) & (st->set_cap - 1);
    }
    st->set[pos] = h;
    st->set_n++;
    return true;
}

static int distinct_add_hash(cq_agg_state *st, uint64_t h)
{
    if (st->hll) {
        hll_add(st->hll, h ? h : 1);
        return 0;
    }
    if (!set_add(st, h)) return QR_ENOMEM;
    if (st->set_n > CQ_DISTINCT_EXACT_MAX) { /* from here on: HyperLogLog, as the engine */
        st->hll = calloc(HLL_REGISTERS, 1);
        if (!st->hll) return QR_ENOMEM;
        for (uint32_t idx = 0; idx < st->set_cap; idx++)
            if (st->set[idx]) hll_add(st->hll, st->set[idx]);
        free(st->set);
        st->set = NULL;
        st->set_n = st->set_cap = 0;
    }
    return 0;
}

int cq_agg_add_value(const cq_agg_spec *s, cq_agg_state *st, const exec_value *v)
{
    if (s->kind == CQ_AGG_COUNT_STAR) {
        st->count++;
        return 0;
    }
    if (v->type == EXEC_NULL) return 0;
    switch (s->kind) {
    case CQ_AGG_COUNT:
        st->count++;
        return 0;
    case CQ_AGG_SUM:
    case CQ_AGG_AVG:
        if (v->type == EXEC_FLOAT) {
            if (!st->sum_float) {
                st->sum_float = true;
                st->sum_f = (double)st->sum_i;
            }
            st->sum_f += v->v.f;
        } else if (v->type == EXEC_INT || v->type == EXEC_DURATION) {
            if (st->sum_float) {
                st->sum_f += (double)v->v.i;
            } else if (__builtin_add_overflow(st->sum_i, v->v.i, &st->sum_i)) {
                st->sum_float = true;
                st->sum_f = (double)st->sum_i + (double)v->v.i;
            }
        } else {
            return 0;
        }
        st->count++;
        return 0;
    case CQ_AGG_MIN:
    case CQ_AGG_MAX: {
        int c = st->count ? ev_cmp(v, &st->best) : 0;
        if ((!st->count || (s->kind == CQ_AGG_MIN ? c < 0 : c > 0)) && best_set(st, v))
            return QR_ENOMEM;
        st->count++;
        return 0;
    }
    case CQ_AGG_COUNT_DISTINCT: {
        qr_buf key;
        uint8_t tmp[64];
        qr_buf_init(&key);
        if (v->type != EXEC_STRING) { /* ≤ 9 key bytes: on the stack, never grown or freed */
            key.data = tmp;
            key.cap = sizeof tmp;
            key.len = 0;
            exec_value_key(&key, v);
            uint64_t h = qr_hash64(tmp, key.len);
            return distinct_add_hash(st, h);
        }
        exec_value_key(&key, v);
        int rc = qr_buf_ok(&key) ? distinct_add_hash(st, qr_hash64(key.data, key.len)) : QR_ENOMEM;
        qr_buf_fini(&key);
        return rc;
    }
    case CQ_AGG_QUANTILE:
        if (v->type != EXEC_INT && v->type != EXEC_FLOAT) return 0;
        return dd_add(st->arena, &st->dd, v->type == EXEC_FLOAT ? v->v.f : (double)v->v.i)
                   ? QR_ENOMEM
                   : 0;
    default:
        return 0;
    }
}

exec_value cq_agg_field_value(const qr_batch *b, const qr_event *e, const char *name, size_t len)
{
    exec_value v;
    memset(&v, 0, sizeof v);
    const qr_field *fs = qr_event_fields(b, e);
    for (uint32_t idx = 0; idx < e->field_count; idx++) {
        const qr_field *f = &fs[idx];
        if (f->key.len != len || memcmp(f->key.ptr, name, len) != 0) continue;
        switch (f->type) {
        case QR_FT_STRING:
            v.type = EXEC_STRING;
            v.v.s = f->v.s;
            return v;
        case QR_FT_INT:
            return ev_int(EXEC_INT, f->v.i);
        case QR_FT_FLOAT:
            v.type = EXEC_FLOAT;
            v.v.f = f->v.f;
            return v;
        case QR_FT_BOOL:
            v.type = EXEC_BOOL;
            v.v.b = f->v.b;
            return v;
        default:
            return v;
        }
    }
    return v;
}

bool cq_agg_name_is_label(const char *name)
{
    return !strcmp(name, "service") || !strcmp(name, "host") || !strcmp(name, "msg") ||
           !strcmp(name, "level");
}

exec_value cq_agg_event_value(const qr_batch *b, const qr_event *e, const char *name)
{
    exec_value v;
    memset(&v, 0, sizeof v);
    if (!strcmp(name, "service") || !strcmp(name, "host") || !strcmp(name, "msg")) {
        v.type = EXEC_STRING;
        v.v.s = name[0] == 's' ? e->service : name[0] == 'h' ? e->host : e->msg;
        return v;
    }
    if (!strcmp(name, "level")) return ev_int(EXEC_LEVEL, e->level);
    return cq_agg_field_value(b, e, name, strlen(name));
}

int cq_agg_add_event(const cq_agg_spec *s, cq_agg_state *st, const qr_batch *b, const qr_event *e)
{
    if (s->kind == CQ_AGG_COUNT_STAR) {
        st->count++;
        return 0;
    }
    exec_value v = cq_agg_event_value(b, e, s->field);
    return cq_agg_add_value(s, st, &v);
}

int cq_agg_add_count(const cq_agg_spec *s, cq_agg_state *st, uint64_t n)
{
    if (s->kind != CQ_AGG_COUNT_STAR) return QR_EINVAL;
    st->count += n;
    return 0;
}

int cq_agg_merge(const cq_agg_spec *s, cq_agg_state *into, const cq_agg_state *from)
{
    switch (s->kind) {
    case CQ_AGG_COUNT_STAR:
    case CQ_AGG_COUNT:
        into->count += from->count;
        return 0;
    case CQ_AGG_SUM:
    case CQ_AGG_AVG:
        if (!from->count) return 0;
        if (from->sum_float || into->sum_float) {
            double a = into->sum_float ? into->sum_f : (double)into->sum_i;
            double b = from->sum_float ? from->sum_f : (double)from->sum_i;
            into->sum_float = true;
            into->sum_f = a + b;
        } else if (__builtin_add_overflow(into->sum_i, from->sum_i, &into->sum_i)) {
            into->sum_float = true;
            into->sum_f = (double)into->sum_i + (double)from->sum_i;
        }
        into->count += from->count;
        return 0;
    case CQ_AGG_MIN:
    case CQ_AGG_MAX: {
        if (!from->count) return 0;
        int c = into->count ? ev_cmp(&from->best, &into->best) : 0;
        if ((!into->count || (s->kind == CQ_AGG_MIN ? c < 0 : c > 0)) &&
            best_set(into, &from->best))
            return QR_ENOMEM;
        into->count += from->count;
        return 0;
    }
    case CQ_AGG_QUANTILE:
        return dd_merge(into->arena, &into->dd, &from->dd) ? QR_ENOMEM : 0;
    case CQ_AGG_COUNT_DISTINCT:
        if (from->hll) {
            if (!into->hll) {
                uint8_t *regs = calloc(HLL_REGISTERS, 1);
                if (!regs) return QR_ENOMEM;
                for (uint32_t idx = 0; idx < into->set_cap; idx++)
                    if (into->set[idx]) hll_add(regs, into->set[idx]);
                free(into->set);
                into->set = NULL;
                into->set_n = into->set_cap = 0;
                into->hll = regs;
            }
            hll_merge(into->hll, from->hll);
            return 0;
        }
        for (uint32_t idx = 0; idx < from->set_cap; idx++) {
            if (!from->set[idx]) continue;
            int rc = distinct_add_hash(into, from->set[idx]);
            if (rc) return rc;
        }
        return 0;
    }
    return QR_EINVAL;
}

/* ---- final values ---- */

exec_value cq_agg_final(const cq_agg_spec *s, const cq_agg_state *st)
{
    exec_value v;
    memset(&v, 0, sizeof v);
    switch (s->kind) {
    case CQ_AGG_COUNT_STAR:
    case CQ_AGG_COUNT:
        return ev_int(EXEC_INT, (int64_t)st->count);
    case CQ_AGG_SUM:
        if (!st->count) return ev_null();
        if (!st->sum_float) return ev_int(EXEC_INT, st->sum_i);
        v.type = EXEC_FLOAT;
        v.v.f = st->sum_f;
        return v;
    case CQ_AGG_AVG:
        if (!st->count) return ev_null();
        v.type = EXEC_FLOAT;
        v.v.f = (st->sum_float ? st->sum_f : (double)st->sum_i) / (double)st->count;
        return v;
    case CQ_AGG_MIN:
    case CQ_AGG_MAX:
        return st->count ? st->best : ev_null();
    case CQ_AGG_COUNT_DISTINCT:
        return ev_int(EXEC_INT, st->hll ? (int64_t)hll_estimate(st->hll) : (int64_t)st->set_n);
    case CQ_AGG_QUANTILE: {
        double f = dd_quantile(&st->dd, s->q);
        if (isnan(f)) return ev_null();
        v.type = EXEC_FLOAT;
        v.v.f = f;
        return v;
    }
    }
    return ev_null();
}

size_t cq_agg_bytes(const cq_agg_spec *s, const cq_agg_state *st)
{
    size_t n = sizeof *st + (size_t)st->set_cap * sizeof *st->set + (st->hll ? HLL_REGISTERS : 0) +
               st->best_cap;
    if (s->kind == CQ_AGG_QUANTILE)
        n += ((size_t)st->dd.pos.cap + st->dd.neg.cap) * sizeof(uint64_t) + sizeof(qr_arena);
    return n;
}

/* ---- encoding ---- */

static void store_encode(const dd_store *st, qr_buf *out)
{
    uint32_t first = 0, end = st->cap;
    while (first < end && !st->counts[first]) first++;
    while (end > first && !st->counts[end - 1]) end--;
    qr_buf_svarint(out, end > first ? (int64_t)st->lo + first : 0); /* empty: canonical 0 */
    qr_buf_uvarint(out, end - first);
    for (uint32_t k = first; k < end; k++) qr_buf_uvarint(out, st->counts[k]);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int cq_agg_encode(const cq_agg_spec *s, const cq_agg_state *st, qr_buf *out)
{
    switch (s->kind) {
    case CQ_AGG_COUNT_STAR:
    case CQ_AGG_COUNT:
        qr_buf_uvarint(out, st->count);
        break;
    case CQ_AGG_SUM:
    case CQ_AGG_AVG:
        qr_buf_uvarint(out, st->count);
        qr_buf_u8(out, st->sum_float);
        if (st->sum_float)
            qr_buf_append(out, &st->sum_f, 8);
        else
            qr_buf_svarint(out, st->sum_i);
        break;
    case CQ_AGG_MIN:
    case CQ_AGG_MAX:
        qr_buf_uvarint(out, st->count);
        if (st->count) {
            qr_buf_u8(out, st->best.type);
            if (st->best.type == EXEC_FLOAT)
                qr_buf_append(out, &st->best.v.f, 8);
            else if (st->best.type == EXEC_STRING)
                qr_buf_bytes(out, st->best.v.s.ptr, st->best.v.s.len);
            else if (st->best.type == EXEC_BOOL)
                qr_buf_u8(out, st->best.v.b);
            else
                qr_buf_svarint(out, st->best.v.i);
        }
        break;
    case CQ_AGG_QUANTILE:
        qr_buf_uvarint(out, st->dd.count);
        qr_buf_uvarint(out, st->dd.zero);
        store_encode(&st->dd.pos, out);
        store_encode(&st->dd.neg, out);
        break;
    case CQ_AGG_COUNT_DISTINCT:
        if (st->hll) {
            uint32_t nonzero = 0;
            for (uint32_t idx = 0; idx < HLL_REGISTERS; idx++) nonzero += st->hll[idx] != 0;
            qr_buf_u8(out, 1);
            qr_buf_uvarint(out, nonzero);
            uint32_t prev = 0;
            for (uint32_t idx = 0; idx < HLL_REGISTERS; idx++) {
                if (!st->hll[idx]) continue;
                qr_buf_uvarint(out, idx - prev);
                qr_buf_u8(out, st->hll[idx]);
                prev = idx;
            }
        } else {
            uint64_t *hashes = malloc(((size_t)st->set_n + 1) * sizeof *hashes);
            if (!hashes) return QR_ENOMEM;
            uint32_t n = 0;
            for (uint32_t idx = 0; idx < st->set_cap; idx++)
                if (st->set[idx]) hashes[n++] = st->set[idx];
            qsort(hashes, n, sizeof *hashes, cmp_u64); /* canonical bytes for equal sets */
            qr_buf_u8(out, 0);
            qr_buf_uvarint(out, n);
            for (uint32_t idx = 0; idx < n; idx++) qr_buf_u64(out, hashes[idx]);
            free(hashes);
        }
        break;
    default:
        return QR_EINVAL;
    }
    return qr_buf_ok(out) ? 0 : QR_ENOMEM;
}

static int corrupt(qr_diag *d, const char *what)
{
    return qr_diag_set(d, QR_ECORRUPT, "aggregate state: %s", what);
}

static int store_decode(qr_rd *in, qr_arena *a, dd_store *st, uint64_t *total, qr_diag *d)
{
    int64_t lo = qr_rd_svarint(in);
    uint64_t n = qr_rd_uvarint(in);
    if (in->bad) return corrupt(d, "truncated sketch");
    if (n == 0) return 0;
    if (n > CQ_DD_MAX_COUNTERS || lo < -(1 << 24) || lo > (1 << 24))
        return corrupt(d, "sketch store out of range");
    st->counts = qr_arena_calloc(a, n, sizeof *st->counts);
    if (!st->counts) return QR_ENOMEM;
    st->lo = (int32_t)lo;
    st->cap = (uint32_t)n;
    for (uint64_t k = 0; k < n; k++) {
        st->counts[k] = qr_rd_uvarint(in);
        if (__builtin_add_overflow(*total, st->counts[k], total))
            return corrupt(d, "sketch counts overflow");
    }
    return in->bad ? corrupt(d, "truncated sketch") : 0;
}

int cq_agg_decode(const cq_agg_spec *s, qr_rd *in, cq_agg_state **out, qr_diag *d)
{
    cq_agg_state *st = cq_agg_new(s);
    if (!st) return QR_ENOMEM;
    int rc = 0;
    switch (s->kind) {
    case CQ_AGG_COUNT_STAR:
    case CQ_AGG_COUNT:
        st->count = qr_rd_uvarint(in);
        break;
    case CQ_AGG_SUM:
    case CQ_AGG_AVG: {
        st->count = qr_rd_uvarint(in);
        uint8_t is_float = qr_rd_u8(in);
        if (is_float > 1) {
            rc = corrupt(d, "bad sum flag");
            break;
        }
        st->sum_float = is_float;
        if (is_float) {
            const uint8_t *p = qr_rd_take(in, 8);
            if (p) memcpy(&st->sum_f, p, 8);
        } else {
            st->sum_i = qr_rd_svarint(in);
        }
        break;
    }
    case CQ_AGG_MIN:
    case CQ_AGG_MAX:
        st->count = qr_rd_uvarint(in);
        if (st->count) {
            exec_value v;
            memset(&v, 0, sizeof v);
            v.type = qr_rd_u8(in);
            if (v.type == EXEC_FLOAT) {
                const uint8_t *p = qr_rd_take(in, 8);
                if (p) memcpy(&v.v.f, p, 8);
            } else if (v.type == EXEC_STRING) {
                size_t len = 0;
                const uint8_t *p = qr_rd_bytes(in, &len);
                if (p && len <= QR_MSG_MAX_BYTES)
                    v.v.s = qr_str_make((const char *)p, len);
                else if (p)
                    rc = corrupt(d, "min/max string too long");
            } else if (v.type == EXEC_BOOL) {
                uint8_t b = qr_rd_u8(in);
                if (b > 1) rc = corrupt(d, "bad boolean");
                v.v.b = b;
            } else if (v.type == EXEC_INT || v.type == EXEC_DURATION || v.type == EXEC_TS ||
                       v.type == EXEC_LEVEL) {
                v.v.i = qr_rd_svarint(in);
            } else if (!in->bad) {
                rc = corrupt(d, "bad min/max value type");
            }
            if (!rc && !in->bad && best_set(st, &v)) rc = QR_ENOMEM;
        }
        break;
    case CQ_AGG_QUANTILE: {
        st->dd.count = qr_rd_uvarint(in);
        st->dd.zero = qr_rd_uvarint(in);
        uint64_t total = st->dd.zero;
        rc = store_decode(in, st->arena, &st->dd.pos, &total, d);
        if (!rc) rc = store_decode(in, st->arena, &st->dd.neg, &total, d);
        if (!rc && !in->bad && total != st->dd.count)
            rc = corrupt(d, "sketch counts do not add up");
        break;
    }
    case CQ_AGG_COUNT_DISTINCT: {
        uint8_t mode = qr_rd_u8(in);
        uint64_t n = qr_rd_uvarint(in);
        if (in->bad) break;
        if (mode == 1) {
            if (n > HLL_REGISTERS) {
                rc = corrupt(d, "too many registers");
                break;
            }
            st->hll = calloc(HLL_REGISTERS, 1);
            if (!st->hll) {
                rc = QR_ENOMEM;
                break;
            }
            uint64_t idx = 0;
            for (uint64_t k = 0; k < n && !in->bad; k++) {
                idx += qr_rd_uvarint(in);
                uint8_t rank = qr_rd_u8(in);
                if (idx >= HLL_REGISTERS || (k && !rank) || rank > 64 - HLL_P + 1) {
                    rc = corrupt(d, "bad register");
                    break;
                }
                st->hll[idx] = rank;
            }
        } else if (mode == 0) {
            if (n > CQ_DISTINCT_EXACT_MAX || n * 8 > qr_rd_left(in)) {
                rc = corrupt(d, "bad distinct set size");
                break;
            }
            for (uint64_t k = 0; k < n && !rc; k++) {
                uint64_t h = qr_rd_u64(in);
                if (!h)
                    rc = corrupt(d, "zero hash in a distinct set");
                else if (!set_add(st, h))
                    rc = QR_ENOMEM;
            }
            if (!rc && st->set_n != n) rc = corrupt(d, "repeated hash in a distinct set");
        } else {
            rc = corrupt(d, "bad distinct mode");
        }
        break;
    }
    default:
        rc = QR_EINVAL;
    }
    if (!rc && in->bad) rc = corrupt(d, "truncated");
    if (rc) {
        cq_agg_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

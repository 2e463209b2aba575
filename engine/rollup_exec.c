/* rollup_exec — rollups in statements: CREATE/DROP ROLLUP, SHOW ROLLUPS, DESCRIBE, SELECT
 * over a rollup table, and the rewrite of aggregations over logs to read a rollup.
 *
 * Rollup rows. A rollup table's columns are t, its labels and its aggregates; a row's values
 * are the bucket start, the label values and each aggregate's final value (cq_agg_final).
 * The binder (bind.c) resolves names of a rollup query to row slots: slot 0 is t, slots
 * 1..L the labels, L+1..L+A the aggregates; expressions over rows are evaluated with those
 * values as the post_groups of a blk_ctx, so every operator, function and comparison of the
 * engine works unchanged. Rows come from ru_rows_collect: closed windows from files, open
 * windows from memory (copies of their states), sorted by (t, labels).
 *
 * Aggregating a rollup merges states where that is exact: sum over a count or sum column,
 * min over min, max over max, avg over avg (sum and count are merged, not averages), a
 * quantile over a quantile column (the sketches are merged; any q may be asked) and
 * count_distinct over count_distinct (the sets/HyperLogLogs are merged). Any other aggregate
 * of a column aggregates its final values (max(n): the busiest window); count(*) counts rows.
 *
 * Rewrite. An aggregation over logs is answered from a rollup of the tenant when: its WHERE
 * (apart from conditions on ts) has the same conjuncts as the rollup's, canonically printed;
 * every GROUP BY key is a label of the rollup or bucket(ts, d) with d a multiple of the
 * rollup's interval; every aggregate has a column with the same function and argument (any
 * quantile from a quantile column); the ts range starts and ends on bucket boundaries; and
 * the rollup is live, has no late-dropped events in the range and keeps the whole range. The
 * results are then the raw aggregation's (quantiles: the same DDSketch, within 1 %). EXPLAIN
 * prints "rollup: name", or "rollup: not used (name: why)". */
#include "common/qr_time.h"
#include "engine/exec_int.h"
#include "engine/rollup_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small result tables -------------------------------------------------------------------- */

static int table_init(exec_ctx *q, exec_result *r, uint32_t cols, const char *const *names,
                      const uint8_t *types, uint64_t rows)
{
    r->col_count = cols;
    r->col_names = qr_arena_calloc(q->qa, cols, sizeof *r->col_names);
    r->col_types = qr_arena_calloc(q->qa, cols, 1);
    r->cells = qr_arena_calloc(q->qa, rows * cols + 1, sizeof *r->cells);
    if (!r->col_names || !r->col_types || !r->cells) return exec_over_budget(q);
    memcpy(r->col_names, names, cols * sizeof *names);
    memcpy(r->col_types, types, cols);
    r->row_count = 0;
    return 0;
}

static exec_value str_value(exec_ctx *q, const char *s)
{
    exec_value v = {.type = EXEC_STRING};
    char *copy = qr_arena_strdup(q->qa, s ? s : "");
    v.v.s = qr_str_make(copy ? copy : "", copy ? strlen(copy) : 0);
    return v;
}

static int no_manager(exec_ctx *q, sql_pos pos)
{
    return exec_error_at(q, pos, QR_EINVAL,
                         "rollups are not open in this process (open a data directory: quarry "
                         "serve, quarry repl, quarry query --data)");
}

static int show_rollups(exec_ctx *q, const char *tenant, exec_result *r)
{
    static const char *const names[] = {
        "name",    "state",       "interval",        "lateness",    "retention", "rows",
        "windows", "late_events", "backfill_events", "last_closed", "files",     "bytes"};
    static const uint8_t types[] = {EXEC_STRING,   EXEC_STRING, EXEC_DURATION, EXEC_DURATION,
                                    EXEC_DURATION, EXEC_INT,    EXEC_INT,      EXEC_INT,
                                    EXEC_INT,      EXEC_TS,     EXEC_INT,      EXEC_INT};
    rollup_info *infos = NULL;
    size_t n = 0;
    int rc = rollup_list(q->opts.rollups, tenant, &infos, &n);
    if (rc) return qr_diag_set(q->d, rc, "cannot list rollups");
    rc = table_init(q, r, 12, names, types, n);
    for (size_t idx = 0; !rc && idx < n; idx++) {
        const rollup_info *in = &infos[idx];
        exec_value *c = &r->cells[idx * 12];
        c[0] = str_value(q, in->name);
        c[1] = str_value(q, in->state);
        c[2] = ev_int(EXEC_DURATION, in->interval_ns);
        c[3] = ev_int(EXEC_DURATION, in->lateness_ns);
        c[4] = in->retention_ns ? ev_int(EXEC_DURATION, in->retention_ns) : ev_null();
        c[5] = ev_int(EXEC_INT, (int64_t)in->rows);
        c[6] = ev_int(EXEC_INT, (int64_t)in->windows);
        c[7] = ev_int(EXEC_INT, (int64_t)in->late_events);
        c[8] = ev_int(EXEC_INT, (int64_t)in->backfill_events);
        c[9] = in->last_closed_ns == INT64_MIN ? ev_null() : ev_int(EXEC_TS, in->last_closed_ns);
        c[10] = ev_int(EXEC_INT, (int64_t)in->files);
        c[11] = ev_int(EXEC_INT, (int64_t)in->file_bytes);
        r->row_count++;
    }
    rollup_infos_free(infos, n);
    return rc;
}

static const char *agg_kind_name(uint8_t kind)
{
    static const char *const names[] = {"count(*)", "count", "sum",      "min",
                                        "max",      "avg",   "quantile", "count_distinct"};
    return kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

static int describe_rollup(exec_ctx *q, rollup *ru, exec_result *r)
{
    static const char *const names[] = {"column", "kind", "source"};
    static const uint8_t types[] = {EXEC_STRING, EXEC_STRING, EXEC_STRING};
    const ru_def *def = &ru->def;
    int rc = table_init(q, r, 3, names, types, def->col_count + 4);
    if (rc) return rc;
    char buf[512];
    for (uint32_t idx = 0; idx < def->col_count; idx++) {
        const ru_col *col = &def->cols[idx];
        exec_value *c = &r->cells[r->row_count++ * 3];
        if (col->kind == RU_COL_T) {
            exec_value w = ev_int(EXEC_DURATION, def->interval_ns);
            qr_buf b;
            qr_buf_init(&b);
            exec_value_text(&w, &b);
            snprintf(buf, sizeof buf, "bucket(ts, %.*s)", (int)b.len, (const char *)b.data);
            qr_buf_fini(&b);
            c[0] = str_value(q, def->t_name);
            c[1] = str_value(q, "time");
            c[2] = str_value(q, buf);
        } else if (col->kind == RU_COL_LABEL) {
            c[0] = str_value(q, def->labels[col->idx].name);
            c[1] = str_value(q, "label");
            c[2] = str_value(q, def->labels[col->idx].field);
        } else {
            const ru_agg *a = &def->aggs[col->idx];
            if (a->spec.kind == CQ_AGG_QUANTILE)
                snprintf(buf, sizeof buf, "quantile(%s, %g) (DDSketch, 1 %% relative error)",
                         a->spec.field, a->spec.q);
            else if (a->spec.kind == CQ_AGG_COUNT_STAR)
                snprintf(buf, sizeof buf, "count(*)");
            else
                snprintf(buf, sizeof buf, "%s(%s)", agg_kind_name(a->spec.kind), a->spec.field);
            c[0] = str_value(q, a->name);
            c[1] = str_value(q, "aggregate");
            c[2] = str_value(q, buf);
        }
    }
    exec_value *c = &r->cells[r->row_count++ * 3];
    c[0] = str_value(q, "");
    c[1] = str_value(q, "filter");
    qr_buf b;
    qr_buf_init(&b);
    for (uint32_t idx = 0; idx < def->conj_count; idx++) {
        if (idx) qr_buf_append(&b, " AND ", 5);
        qr_buf_append(&b, def->conj_texts[idx], strlen(def->conj_texts[idx]));
    }
    qr_buf_u8(&b, 0);
    c[2] = str_value(q, def->conj_count && b.data ? (const char *)b.data : "(all events)");
    qr_buf_fini(&b);
    c = &r->cells[r->row_count++ * 3];
    c[0] = str_value(q, "");
    c[1] = str_value(q, "lateness");
    exec_value v = ev_int(EXEC_DURATION, def->lateness_ns);
    qr_buf_init(&b);
    exec_value_text(&v, &b);
    qr_buf_u8(&b, 0);
    c[2] = str_value(q, b.data ? (const char *)b.data : "");
    qr_buf_fini(&b);
    c = &r->cells[r->row_count++ * 3];
    c[0] = str_value(q, "");
    c[1] = str_value(q, "retention");
    v = ev_int(EXEC_DURATION, def->retention_ns);
    qr_buf_init(&b);
    if (def->retention_ns) exec_value_text(&v, &b);
    qr_buf_u8(&b, 0);
    c[2] = str_value(q, def->retention_ns && b.data ? (const char *)b.data : "forever");
    qr_buf_fini(&b);
    c = &r->cells[r->row_count++ * 3];
    c[0] = str_value(q, "");
    c[1] = str_value(q, "statement");
    c[2] = str_value(q, def->text);
    return 0;
}

int rollup_exec_stmt(exec_ctx *q, const char *tenant, const sql_stmt *stmt, exec_result *r)
{
    rollup_mgr *m = q->opts.rollups;
    switch (stmt->kind) {
    case SQL_STMT_SHOW:
        if (!m) return no_manager(q, stmt->pos);
        return show_rollups(q, tenant, r);
    case SQL_STMT_CREATE_ROLLUP: {
        if (!m) return no_manager(q, stmt->pos);
        int rc = rollup_create(m, tenant, q->text, q->d);
        if (rc) return rc;
        rollup *ru = ru_find(m, tenant, stmt->u.rollup->name, strlen(stmt->u.rollup->name));
        static const char *const names[] = {"rollup", "state", "rows", "backfill_events"};
        static const uint8_t types[] = {EXEC_STRING, EXEC_STRING, EXEC_INT, EXEC_INT};
        rc = table_init(q, r, 4, names, types, 1);
        if (!rc && ru) {
            pthread_mutex_lock(&ru->mu);
            uint64_t rows = ru->open.count + ru->closing_n;
            for (size_t idx = 0; idx < ru->file_count; idx++) rows += ru->files[idx]->rows;
            const char *state = ru->live ? "live" : "backfilling";
            pthread_mutex_unlock(&ru->mu);
            r->cells[0] = str_value(q, ru->def.name);
            r->cells[1] = str_value(q, state);
            r->cells[2] = ev_int(EXEC_INT, (int64_t)rows);
            r->cells[3] = ev_int(EXEC_INT, (int64_t)atomic_load(&ru->backfill_events));
            r->row_count = 1;
        }
        ru_unref(ru);
        return rc;
    }
    case SQL_STMT_DROP: {
        if (!m) return no_manager(q, stmt->pos);
        int rc = rollup_drop(m, tenant, stmt->u.drop.name, q->d);
        if (rc == QR_ENOTFOUND) {
            qr_diag_init(q->d);
            return exec_error_at(q, stmt->pos, QR_ENOTFOUND, "no rollup named \"%s\"",
                                 stmt->u.drop.name);
        }
        if (rc) return rc;
        static const char *const names[] = {"dropped"};
        static const uint8_t types[] = {EXEC_STRING};
        rc = table_init(q, r, 1, names, types, 1);
        if (rc) return rc;
        r->cells[0] = str_value(q, stmt->u.drop.name);
        r->row_count = 1;
        return 0;
    }
    case SQL_STMT_DESCRIBE: {
        rollup *ru = m ? ru_find(m, tenant, stmt->u.describe, strlen(stmt->u.describe)) : NULL;
        if (!ru) return QR_ENOTFOUND; /* not a rollup: the caller tries other objects */
        int rc = describe_rollup(q, ru, r);
        ru_unref(ru);
        return rc;
    }
    default:
        return exec_error_at(q, stmt->pos, QR_ESYNTAX, "not a rollup statement");
    }
}

/* ---- binding a rollup table ----------------------------------------------------------------- */

uint32_t rollup_table_width(const ru_def *def) { return 1 + def->label_count + def->agg_count; }

const char *rollup_table_name(const ru_def *def) { return def->name; }

int rollup_show_tables(exec_ctx *q, const char *tenant, exec_result *r)
{
    if (!q->opts.rollups) return 0;
    rollup_info *infos = NULL;
    size_t n = 0;
    int rc = rollup_list(q->opts.rollups, tenant, &infos, &n);
    if (rc) return qr_diag_set(q->d, rc, "cannot list rollups");
    exec_value *cells = qr_arena_calloc(q->qa, (r->row_count + n) * 2 + 1, sizeof *cells);
    if (!cells) rc = exec_over_budget(q);
    if (!rc) {
        memcpy(cells, r->cells, r->row_count * 2 * sizeof *cells);
        for (size_t idx = 0; idx < n; idx++) {
            cells[(r->row_count + idx) * 2] = str_value(q, infos[idx].name);
            cells[(r->row_count + idx) * 2 + 1] = ev_int(EXEC_INT, (int64_t)infos[idx].rows);
        }
        r->cells = cells;
        r->row_count += n;
    }
    rollup_infos_free(infos, n);
    return rc;
}

int rollup_table_col(const ru_def *def, const char *name, size_t len, uint8_t *type)
{
    if (strlen(def->t_name) == len && !memcmp(def->t_name, name, len)) {
        *type = EXEC_TS;
        return 0;
    }
    for (uint32_t li = 0; li < def->label_count; li++) {
        const ru_label *l = &def->labels[li];
        if (strlen(l->name) == len && !memcmp(l->name, name, len)) {
            *type = l->src == RU_LABEL_LEVEL   ? EXEC_LEVEL
                    : l->src == RU_LABEL_FIELD ? EXEC_NULL
                                               : EXEC_STRING;
            return 1 + (int)li;
        }
    }
    for (uint32_t ai = 0; ai < def->agg_count; ai++) {
        const ru_agg *a = &def->aggs[ai];
        if (strlen(a->name) == len && !memcmp(a->name, name, len)) {
            uint8_t k = a->spec.kind;
            *type = k == CQ_AGG_COUNT_STAR || k == CQ_AGG_COUNT || k == CQ_AGG_COUNT_DISTINCT
                        ? EXEC_INT
                        : EXEC_FLOAT;
            return 1 + (int)def->label_count + (int)ai;
        }
    }
    return -1;
}

const char *rollup_table_col_name(const ru_def *def, int slot)
{
    if (slot == 0) return def->t_name;
    if (slot <= (int)def->label_count) return def->labels[slot - 1].name;
    return def->aggs[slot - 1 - (int)def->label_count].name;
}

/* Looks up FROM name among the tenant's rollups; sets q->table. QR_ENOTFOUND when none. */
int rollup_bind_table(exec_ctx *q, const char *tenant, const char *name)
{
    if (!q->opts.rollups) return QR_ENOTFOUND;
    rollup *ru = ru_find(q->opts.rollups, tenant, name, strlen(name));
    if (!ru) return QR_ENOTFOUND;
    q->table = ru;
    q->table_def = &ru->def;
    return 0;
}

void rollup_unbind_table(exec_ctx *q)
{
    ru_unref(q->table);
    q->table = NULL;
    q->table_def = NULL;
}

/* "logs, a, b" for error messages. */
const char *rollup_table_names(exec_ctx *q, const char *tenant)
{
    if (!q->opts.rollups) return "logs";
    rollup **list = NULL;
    size_t n = 0;
    if (ru_find_all(q->opts.rollups, tenant, &list, &n)) return "logs";
    qr_buf b;
    qr_buf_init(&b);
    qr_buf_append(&b, "logs", 4);
    for (size_t idx = 0; idx < n; idx++) {
        qr_buf_append(&b, ", ", 2);
        qr_buf_append(&b, list[idx]->def.name, strlen(list[idx]->def.name));
    }
    ru_unref_all(list, n);
    const char *s = qr_buf_ok(&b) ? qr_arena_strndup(q->qa, (const char *)b.data, b.len) : NULL;
    qr_buf_fini(&b);
    return s ? s : "logs";
}

/* ---- running over rollup rows --------------------------------------------------------------- */

typedef enum qagg_mode { QAGG_MERGE, QAGG_VALUE, QAGG_ROWS } qagg_mode;

typedef struct qagg {
    uint8_t mode;     /* qagg_mode */
    uint32_t col;     /* MERGE: the rollup aggregate; */
    const bx *arg;    /* VALUE: the row-context argument */
    cq_agg_spec spec; /* the state kept per group (MERGE: the column's spec) */
    double q;         /* quantile asked (MERGE of a quantile column) */
} qagg;

typedef struct rgroup {
    uint64_t hash;
    uint8_t *key;
    uint32_t key_len;
    exec_value *keys;
    cq_agg_state **st;
    int64_t rows;
    struct rgroup *next;
} rgroup;

typedef struct rexec {
    exec_ctx *q;
    const ru_def *def;
    uint32_t width;
    uint32_t group_count;
    bx **groups; /* row context */
    uint32_t agg_count;
    qagg *aggs;
    uint32_t conj_count;
    bx **conjs; /* row context */
    int64_t t_lo, t_hi;
    bool need_finals; /* row expressions read aggregate columns' values */
    uint8_t *steal;   /* per rollup aggregate: one query aggregate merges it */
} rexec;

static void row_values(const rexec *x, const ru_row *row, exec_value *vals)
{
    const ru_def *def = x->def;
    vals[0] = ev_int(EXEC_TS, row->t);
    for (uint32_t li = 0; li < def->label_count; li++) vals[1 + li] = row->labels[li];
    for (uint32_t ai = 0; x->need_finals && ai < def->agg_count; ai++)
        vals[1 + def->label_count + ai] =
            row->st[ai] ? cq_agg_final(&def->aggs[ai].spec, row->st[ai]) : ev_null();
}

static bool row_passes(const rexec *x, blk_ctx *bc)
{
    for (uint32_t idx = 0; idx < x->conj_count; idx++) {
        exec_value v = ev_eval(x->conjs[idx], bc, 0);
        if (!ev_truthy(&v)) return false;
    }
    return true;
}

typedef struct out_row {
    exec_value *cells;
    exec_value *sort;
} out_row;

typedef struct sort_ctx {
    uint32_t n;
    const bool *desc;
} sort_ctx;

static int out_cmp(const void *a, const void *b, void *ctx)
{
    const sort_ctx *sc = ctx;
    const out_row *x = a, *y = b;
    for (uint32_t k = 0; k < sc->n; k++) {
        int c = ev_cmp(&x->sort[k], &y->sort[k]);
        if (c) return sc->desc && sc->desc[k] ? -c : c;
    }
    return 0;
}

static int emit(exec_ctx *q, exec_result *r, out_row *rows, uint64_t kept, uint32_t sort_n,
                const bool *desc)
{
    plan *pl = q->pl;
    sort_ctx sc = {sort_n, desc};
    if (kept > 1 && sort_n) qsort_r(rows, kept, sizeof *rows, out_cmp, &sc);
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

/* SELECT rows of a rollup: filter, project, order (default: t, then labels), limit. */
static int run_table_rows(rexec *x, ru_rows *rs, exec_result *r)
{
    exec_ctx *q = x->q;
    plan *pl = q->pl;
    exec_value *vals = qr_arena_calloc(q->qa, x->width + 1, sizeof *vals);
    out_row *rows = qr_arena_calloc(q->qa, rs->count + 1, sizeof *rows);
    if (!vals || !rows) return exec_over_budget(q);
    blk_ctx bc;
    memset(&bc, 0, sizeof bc);
    bc.q = q;
    bc.post_groups = vals;
    uint64_t kept = 0;
    for (size_t ri = 0; ri < rs->count; ri++) {
        row_values(x, &rs->rows[ri], vals);
        if (!row_passes(x, &bc)) continue;
        out_row *o = &rows[kept];
        o->cells = qr_arena_alloc(q->qa, (pl->out_count + 1) * sizeof *o->cells);
        o->sort = qr_arena_alloc(q->qa, (pl->order_count + 1) * sizeof *o->sort);
        if (!o->cells || !o->sort) return exec_over_budget(q);
        bool ok = true;
        for (uint32_t col = 0; col < pl->out_count; col++) {
            exec_value v = ev_eval(pl->out[col], &bc, 0);
            o->cells[col] = ev_copy(q->qa, &v, &ok);
        }
        for (uint32_t k = 0; k < pl->order_count; k++) {
            exec_value v = ev_eval(pl->order[k], &bc, 0);
            o->sort[k] = ev_copy(q->qa, &v, &ok);
        }
        if (!ok) return exec_over_budget(q);
        qr_arena_reset(&q->scratch);
        kept++;
    }
    q->hits = kept;
    q->scanned = rs->count;
    /* rows already come in (t, labels) order: a stable sort keeps it for ties */
    return emit(q, r, rows, kept, pl->order_count, pl->order_desc);
}

static int group_find(rexec *x, rgroup ***slots, size_t *cap, size_t *count, qr_buf *key,
                      const exec_value *kv, bool with_states, rgroup **out)
{
    exec_ctx *q = x->q;
    if (!qr_buf_ok(key)) return QR_ENOMEM;
    uint64_t h = qr_hash64(key->data, key->len);
    if (*cap) {
        for (rgroup *g = (*slots)[h & (*cap - 1)]; g; g = g->next)
            if (g->hash == h && g->key_len == key->len &&
                (!key->len || !memcmp(g->key, key->data, key->len))) {
                *out = g;
                return 0;
            }
    }
    if (*count + 1 > *cap / 2) {
        size_t ncap = *cap ? *cap * 2 : 64;
        rgroup **ns = qr_arena_calloc(q->qa, ncap, sizeof *ns);
        if (!ns) return exec_over_budget(q);
        for (size_t idx = 0; idx < *cap; idx++) {
            rgroup *g = (*slots)[idx];
            while (g) {
                rgroup *next = g->next;
                g->next = ns[g->hash & (ncap - 1)];
                ns[g->hash & (ncap - 1)] = g;
                g = next;
            }
        }
        *slots = ns;
        *cap = ncap;
    }
    rgroup *g = qr_arena_calloc(q->qa, 1, sizeof *g);
    if (!g) return exec_over_budget(q);
    g->hash = h;
    g->key_len = (uint32_t)key->len;
    g->key = qr_arena_alloc(q->qa, key->len + 1);
    g->keys = qr_arena_calloc(q->qa, x->group_count + 1, sizeof *g->keys);
    g->st = qr_arena_calloc(q->qa, x->agg_count + 1, sizeof *g->st);
    if (!g->key || !g->keys || !g->st) return exec_over_budget(q);
    if (key->len) memcpy(g->key, key->data, key->len);
    bool ok = true;
    for (uint32_t k = 0; k < x->group_count; k++) g->keys[k] = ev_copy(q->qa, &kv[k], &ok);
    if (!ok) return exec_over_budget(q);
    for (uint32_t ai = 0; with_states && ai < x->agg_count; ai++) {
        if (x->aggs[ai].mode == QAGG_ROWS) continue;
        g->st[ai] = cq_agg_new(&x->aggs[ai].spec);
        if (!g->st[ai]) return QR_ENOMEM;
    }
    g->next = (*slots)[h & (*cap - 1)];
    (*slots)[h & (*cap - 1)] = g;
    (*count)++;
    *out = g;
    return 0;
}

static int value_add(const qagg *a, cq_agg_state *st, const exec_value *v)
{
    return cq_agg_add_value(&a->spec, st, v);
}

/* The final value of a query aggregate (types as cq_agg_final: a sum of integers is INT). */
static exec_value qagg_final(const qagg *a, const rgroup *g, uint32_t ai)
{
    if (a->mode == QAGG_ROWS) return ev_int(EXEC_INT, g->rows);
    if (!g->st[ai]) return ev_null();
    cq_agg_spec spec = a->spec;
    if (spec.kind == CQ_AGG_QUANTILE) spec.q = a->q; /* any quantile of a merged sketch */
    return cq_agg_final(&spec, g->st[ai]);
}

static int run_table_agg(rexec *x, ru_rows *rs, exec_result *r)
{
    exec_ctx *q = x->q;
    plan *pl = q->pl;
    exec_value *vals = qr_arena_calloc(q->qa, x->width + 1, sizeof *vals);
    exec_value *kv = qr_arena_calloc(q->qa, x->group_count + 1, sizeof *kv);
    if (!vals || !kv) return exec_over_budget(q);
    blk_ctx bc;
    memset(&bc, 0, sizeof bc);
    bc.q = q;
    bc.post_groups = vals;
    rgroup **slots = NULL;
    size_t cap = 0, count = 0;
    qr_buf key;
    qr_buf_init(&key);
    int rc = 0;
    uint64_t hits = 0;
    for (size_t ri = 0; ri < rs->count && !rc; ri++) {
        ru_row *row = &rs->rows[ri];
        if (row->t < x->t_lo || row->t > x->t_hi) continue;
        row_values(x, row, vals);
        if (!row_passes(x, &bc)) continue;
        hits++;
        qr_buf_clear(&key);
        for (uint32_t k = 0; k < x->group_count; k++) {
            kv[k] = ev_eval(x->groups[k], &bc, 0);
            ru_key_add(&key, &kv[k]);
        }
        rgroup *g = NULL;
        rc = group_find(x, &slots, &cap, &count, &key, kv, false, &g);
        if (rc) break;
        g->rows++;
        for (uint32_t ai = 0; ai < x->agg_count && !rc; ai++) {
            const qagg *a = &x->aggs[ai];
            if (a->mode == QAGG_ROWS) continue;
            if (!g->st[ai] && a->mode == QAGG_MERGE && x->steal[a->col] && row->st[a->col]) {
                g->st[ai] = row->st[a->col]; /* the group's first row: take its state */
                row->st[a->col] = NULL;
                continue;
            }
            if (!g->st[ai]) {
                g->st[ai] = cq_agg_new(&a->spec);
                if (!g->st[ai]) {
                    rc = QR_ENOMEM;
                    break;
                }
            }
            if (a->mode == QAGG_MERGE) {
                rc = cq_agg_merge(&a->spec, g->st[ai], row->st[a->col]);
            } else if (a->mode == QAGG_VALUE) {
                exec_value v = ev_eval(a->arg, &bc, 0);
                rc = value_add(a, g->st[ai], &v);
            }
        }
        qr_arena_reset(&q->scratch);
    }
    qr_buf_fini(&key);
    if (!rc && x->group_count == 0 && count == 0) {
        rgroup *g = NULL;
        qr_buf_init(&key);
        rc = group_find(x, &slots, &cap, &count, &key, kv, true, &g);
        qr_buf_fini(&key);
    }
    q->hits = hits;
    q->scanned = rs->count;
    /* groups → output rows */
    out_row *rows = rc ? NULL : qr_arena_calloc(q->qa, count + 1, sizeof *rows);
    exec_value *aggv = rc ? NULL : qr_arena_calloc(q->qa, x->agg_count + 1, sizeof *aggv);
    if (!rc && (!rows || !aggv)) rc = exec_over_budget(q);
    uint64_t kept = 0;
    bool default_order = pl->order_count == 0;
    uint32_t sort_n = default_order ? x->group_count : pl->order_count;
    blk_ctx post;
    memset(&post, 0, sizeof post);
    post.q = q;
    post.post_aggs = aggv;
    for (size_t si = 0; !rc && si < cap; si++) {
        for (rgroup *g = slots[si]; g && !rc; g = g->next) {
            for (uint32_t ai = 0; ai < x->agg_count; ai++)
                aggv[ai] = qagg_final(&x->aggs[ai], g, ai);
            post.post_groups = g->keys;
            if (pl->having) {
                exec_value hv = ev_eval(pl->having, &post, 0);
                if (!ev_truthy(&hv)) continue;
            }
            out_row *o = &rows[kept];
            o->cells = qr_arena_alloc(q->qa, (pl->out_count + 1) * sizeof *o->cells);
            o->sort = qr_arena_alloc(q->qa, (sort_n + 1) * sizeof *o->sort);
            if (!o->cells || !o->sort) {
                rc = exec_over_budget(q);
                break;
            }
            bool ok = true;
            for (uint32_t col = 0; col < pl->out_count; col++) {
                exec_value v = ev_eval(pl->out[col], &post, 0);
                o->cells[col] = ev_copy(q->qa, &v, &ok);
            }
            for (uint32_t k = 0; k < sort_n; k++) {
                exec_value v = default_order ? g->keys[k] : ev_eval(pl->order[k], &post, 0);
                o->sort[k] = ev_copy(q->qa, &v, &ok);
            }
            if (!ok) rc = exec_over_budget(q);
            qr_arena_reset(&q->scratch);
            kept++;
        }
    }
    for (size_t si = 0; si < cap; si++)
        for (rgroup *g = slots[si]; g; g = g->next)
            for (uint32_t ai = 0; ai < x->agg_count; ai++) cq_agg_free(g->st[ai]);
    if (rc) return rc;
    return emit(q, r, rows, kept, sort_n, default_order ? NULL : pl->order_desc);
}

/* Narrows [t_lo, t_hi] by conjuncts `t op constant` on the time slot. */
static void t_range(const plan *pl, int64_t *lo, int64_t *hi)
{
    for (uint32_t idx = 0; idx < pl->conj_count; idx++) {
        const bx *x = pl->conjs[idx].e;
        if (x->kind != BX_BIN || x->op < SQL_OP_EQ || x->op > SQL_OP_GE || x->op == SQL_OP_NE)
            continue;
        if (x->a->kind != BX_GROUP || x->a->slot != 0 || x->b->kind != BX_CONST ||
            (x->b->k.type != EXEC_TS && x->b->k.type != EXEC_INT))
            continue;
        int64_t v = x->b->k.v.i;
        switch (x->op) {
        case SQL_OP_EQ:
            if (v > *lo) *lo = v;
            if (v < *hi) *hi = v;
            break;
        case SQL_OP_LT:
            if (v != INT64_MIN && v - 1 < *hi) *hi = v - 1;
            break;
        case SQL_OP_LE:
            if (v < *hi) *hi = v;
            break;
        case SQL_OP_GT:
            if (v != INT64_MAX && v + 1 > *lo) *lo = v + 1;
            break;
        case SQL_OP_GE:
            if (v > *lo) *lo = v;
            break;
        default:
            break;
        }
    }
}

/* A query aggregate over a rollup column: merge where exact, else over the final values. */
static int qagg_bind(rexec *x, const agg_spec *as, qagg *out)
{
    exec_ctx *q = x->q;
    memset(out, 0, sizeof *out);
    if (as->fn == AGG_COUNT_STAR) {
        out->mode = QAGG_ROWS;
        return 0;
    }
    static const uint8_t kinds[] = {
        [AGG_COUNT] = CQ_AGG_COUNT,      [AGG_SUM] = CQ_AGG_SUM,
        [AGG_AVG] = CQ_AGG_AVG,          [AGG_MIN] = CQ_AGG_MIN,
        [AGG_MAX] = CQ_AGG_MAX,          [AGG_COUNT_DISTINCT] = CQ_AGG_COUNT_DISTINCT,
        [AGG_QUANTILE] = CQ_AGG_QUANTILE};
    if (as->fn == AGG_RATE)
        return exec_error_at(q, as->src->pos, QR_ESYNTAX, "rate() is not supported over a rollup");
    const bx *arg = as->arg;
    int slot = arg && arg->kind == BX_GROUP ? arg->slot : -1;
    int first_agg = 1 + (int)x->def->label_count;
    if (slot >= first_agg) {
        const ru_agg *col = &x->def->aggs[slot - first_agg];
        uint8_t ck = col->spec.kind;
        bool merge = (as->fn == AGG_SUM &&
                      (ck == CQ_AGG_COUNT_STAR || ck == CQ_AGG_COUNT || ck == CQ_AGG_SUM)) ||
                     (as->fn == AGG_MIN && ck == CQ_AGG_MIN) ||
                     (as->fn == AGG_MAX && ck == CQ_AGG_MAX) ||
                     (as->fn == AGG_AVG && ck == CQ_AGG_AVG) ||
                     (as->fn == AGG_QUANTILE && ck == CQ_AGG_QUANTILE) ||
                     (as->fn == AGG_COUNT_DISTINCT && ck == CQ_AGG_COUNT_DISTINCT);
        if (merge) {
            out->mode = QAGG_MERGE;
            out->col = (uint32_t)(slot - first_agg);
            out->spec = col->spec;
            out->q = as->q;
            return 0;
        }
        if (ck == CQ_AGG_COUNT_DISTINCT || ck == CQ_AGG_QUANTILE)
            return exec_error_at(
                q, as->src->pos, QR_ESYNTAX, "%s holds a sketch of %s(%s): aggregate it with %s",
                col->name, agg_kind_name(ck), col->spec.field,
                ck == CQ_AGG_QUANTILE ? "p50..p99 or quantile(col, q)" : "count_distinct");
    }
    out->mode = QAGG_VALUE;
    out->arg = arg;
    out->spec.kind = kinds[as->fn];
    out->spec.q = as->q;
    out->q = as->q;
    return 0;
}

static int rexec_run(rexec *x, rollup *ru, exec_result *r, bool require_exact)
{
    exec_ctx *q = x->q;
    bool rows = q->pl->kind == PLAN_ROWS;
    /* which aggregate states to read; whether row expressions read their values */
    uint64_t mask = 0;
    x->need_finals = rows || x->conj_count > 0;
    x->steal = qr_arena_calloc(q->qa, x->def->agg_count + 1, 1);
    if (!x->steal) return exec_over_budget(q);
    uint32_t first_agg = 1 + x->def->label_count;
    for (uint32_t k = 0; k < x->group_count; k++)
        x->need_finals |=
            (x->groups[k]->kind != BX_GROUP || x->groups[k]->slot >= (int)first_agg) &&
            !(x->groups[k]->kind == BX_CALL && x->groups[k]->fn == FN_BUCKET &&
              x->groups[k]->items[0]->kind == BX_GROUP &&
              x->groups[k]->items[0]->slot < (int)first_agg);
    for (uint32_t ai = 0; ai < x->agg_count; ai++) {
        const qagg *a = &x->aggs[ai];
        if (a->mode == QAGG_MERGE) {
            mask |= 1ull << a->col;
            x->steal[a->col]++;
        }
        if (a->mode == QAGG_VALUE) x->need_finals = true;
    }
    for (uint32_t c = 0; c < x->def->agg_count; c++) x->steal[c] = x->steal[c] == 1;
    if (x->need_finals) mask = UINT64_MAX;
    if (require_exact && ru_inexact(ru, q->opts.rollups, x->t_lo, x->t_hi)) return QR_EAGAIN;
    ru_rows rs;
    int rc = ru_rows_collect(ru, q->opts.rollups, x->t_lo, x->t_hi, mask, rows, &rs, q->d);
    if (rc) return rc;
    if (require_exact && !rs.exact) {
        ru_rows_fini(&rs);
        return QR_EAGAIN;
    }
    rc = q->pl->kind == PLAN_ROWS ? run_table_rows(x, &rs, r) : run_table_agg(x, &rs, r);
    ru_rows_fini(&rs);
    return rc;
}

/* SELECT over a rollup table bound by bind_select (q->table set). */
int rollup_run_select(exec_ctx *q, exec_result *r)
{
    plan *pl = q->pl;
    rexec x;
    memset(&x, 0, sizeof x);
    x.q = q;
    x.def = q->table_def;
    x.width = rollup_table_width(x.def);
    x.t_lo = INT64_MIN;
    x.t_hi = INT64_MAX;
    x.conj_count = pl->conj_count;
    x.conjs = qr_arena_calloc(q->qa, pl->conj_count + 1, sizeof *x.conjs);
    if (!x.conjs) return exec_over_budget(q);
    for (uint32_t idx = 0; idx < pl->conj_count; idx++) x.conjs[idx] = pl->conjs[idx].e;
    if (pl->ts_lo > pl->ts_hi) return 0; /* a constant false condition */
    t_range(pl, &x.t_lo, &x.t_hi);
    if (pl->kind == PLAN_AGG) {
        x.group_count = pl->group_count;
        x.groups = pl->groups;
        x.agg_count = pl->agg_count;
        x.aggs = qr_arena_calloc(q->qa, pl->agg_count + 1, sizeof *x.aggs);
        if (!x.aggs) return exec_over_budget(q);
        for (uint32_t ai = 0; ai < pl->agg_count; ai++) {
            int rc = qagg_bind(&x, &pl->aggs[ai], &x.aggs[ai]);
            if (rc) return rc;
        }
    }
    return rexec_run(&x, q->table, r, false);
}

/* ---- rewrite -------------------------------------------------------------------------------- */

static int strp_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static char *bx_print(exec_ctx *q, const bx *x)
{
    if (!x->src) return NULL;
    qr_buf b;
    qr_buf_init(&b);
    sql_print_expr(x->src, &b);
    char *s = qr_buf_ok(&b) ? qr_arena_strndup(q->qa, (const char *)b.data, b.len) : NULL;
    qr_buf_fini(&b);
    return s;
}

/* Why the rollup cannot answer the plan (static or arena text), or NULL when it can; fills x. */
static const char *rewrite_match(exec_ctx *q, rollup *ru, rexec *x)
{
    plan *pl = q->pl;
    const ru_def *def = &ru->def;
    if (def->where_has_ts) return "its filter reads ts";
    /* the same conjuncts apart from ts ranges */
    uint32_t n = 0;
    char **texts = qr_arena_calloc(q->qa, pl->conj_count + 1, sizeof *texts);
    if (!texts) return "out of memory";
    for (uint32_t idx = 0; idx < pl->conj_count; idx++) {
        if (pl->conjs[idx].cls == CONJ_TS) continue;
        texts[n] = bx_print(q, pl->conjs[idx].e);
        if (!texts[n]) return "a condition cannot be compared";
        n++;
    }
    qsort(texts, n, sizeof *texts, strp_cmp);
    if (n != def->conj_count) return "a different filter";
    for (uint32_t idx = 0; idx < n; idx++)
        if (strcmp(texts[idx], def->conj_texts[idx]) != 0) return "a different filter";
    /* group keys */
    x->group_count = pl->group_count;
    x->groups = qr_arena_calloc(q->qa, pl->group_count + 1, sizeof *x->groups);
    if (!x->groups) return "out of memory";
    for (uint32_t k = 0; k < pl->group_count; k++) {
        const bx *g = pl->groups[k];
        bx *slot0 = bx_new(q, BX_GROUP, g->pos);
        if (!slot0) return "out of memory";
        slot0->cols = CM_FIELD;
        if (g->kind == BX_CALL && g->fn == FN_BUCKET && g->items[0]->kind == BX_COL &&
            g->items[0]->col == COL_TS) {
            if (g->width_ns % def->interval_ns != 0)
                return qr_arena_printf(q->qa, "bucket width is not a multiple of its interval");
            slot0->slot = 0;
            slot0->type = EXEC_TS;
            bx *b = bx_new(q, BX_CALL, g->pos);
            bx **items = qr_arena_calloc(q->qa, 2, sizeof *items);
            if (!b || !items) return "out of memory";
            b->fn = FN_BUCKET;
            b->width_ns = g->width_ns;
            b->items = items;
            b->items[0] = slot0;
            b->n = 1;
            b->cols = CM_FIELD;
            b->type = EXEC_TS;
            x->groups[k] = b;
            continue;
        }
        if (g->kind != BX_COL) return "a GROUP BY key is not a label or bucket(ts, d)";
        const char *name = bind_col_name(q, g->col);
        int li = -1;
        for (uint32_t l = 0; l < def->label_count && li < 0; l++)
            if (!strcmp(def->labels[l].field, name)) li = (int)l;
        if (li < 0) return qr_arena_printf(q->qa, "%s is not one of its labels", name);
        slot0->slot = 1 + li;
        slot0->type = g->type;
        x->groups[k] = slot0;
    }
    /* aggregates */
    x->agg_count = pl->agg_count;
    x->aggs = qr_arena_calloc(q->qa, pl->agg_count + 1, sizeof *x->aggs);
    if (!x->aggs) return "out of memory";
    for (uint32_t ai = 0; ai < pl->agg_count; ai++) {
        const agg_spec *as = &pl->aggs[ai];
        static const int kinds[] = {[AGG_COUNT_STAR] = CQ_AGG_COUNT_STAR,
                                    [AGG_COUNT] = CQ_AGG_COUNT,
                                    [AGG_SUM] = CQ_AGG_SUM,
                                    [AGG_AVG] = CQ_AGG_AVG,
                                    [AGG_MIN] = CQ_AGG_MIN,
                                    [AGG_MAX] = CQ_AGG_MAX,
                                    [AGG_COUNT_DISTINCT] = CQ_AGG_COUNT_DISTINCT,
                                    [AGG_QUANTILE] = CQ_AGG_QUANTILE,
                                    [AGG_RATE] = -1};
        int kind = kinds[as->fn];
        if (kind < 0) return "rate() is not stored";
        const char *field = "";
        if (as->fn != AGG_COUNT_STAR) {
            if (!as->arg || as->arg->kind != BX_COL)
                return "an aggregate's argument is an expression";
            field = bind_col_name(q, as->arg->col);
        }
        int col = -1;
        for (uint32_t c = 0; c < def->agg_count && col < 0; c++)
            if (def->aggs[c].spec.kind == kind && !strcmp(def->aggs[c].spec.field, field))
                col = (int)c;
        if (col < 0)
            return qr_arena_printf(q->qa, "no column holds %s%s%s%s", agg_kind_name((uint8_t)kind),
                                   kind == CQ_AGG_COUNT_STAR ? "" : "(", field,
                                   kind == CQ_AGG_COUNT_STAR ? "" : ")");
        qagg *a = &x->aggs[ai];
        a->mode = QAGG_MERGE;
        a->col = (uint32_t)col;
        a->spec = def->aggs[col].spec;
        a->q = as->q;
    }
    /* the time range on bucket boundaries */
    int64_t iv = def->interval_ns;
    if (pl->ts_lo != INT64_MIN && ru_bucket(pl->ts_lo, iv) != pl->ts_lo)
        return "the time range does not start on a bucket boundary";
    if (pl->ts_hi != INT64_MAX &&
        (pl->ts_hi == INT64_MAX - 1 || ru_bucket(pl->ts_hi + 1, iv) != pl->ts_hi + 1))
        return "the time range does not end on a bucket boundary";
    x->t_lo = pl->ts_lo == INT64_MIN ? INT64_MIN : pl->ts_lo;
    x->t_hi = pl->ts_hi == INT64_MAX ? INT64_MAX : pl->ts_hi - iv + 1;
    if (x->t_hi < x->t_lo) return "the time range is shorter than one bucket";
    return NULL;
}

/* Tries to answer the bound aggregate plan from a rollup. *used set when it did (r filled);
 * otherwise q->rollup_note says why not (NULL when the tenant has no rollups). */
int rollup_try_rewrite(exec_ctx *q, const char *tenant, exec_result *r, bool *used)
{
    *used = false;
    q->rollup_note = NULL;
    plan *pl = q->pl;
    if (!q->opts.rollups || pl->kind != PLAN_AGG || pl->lq_post || q->has_cursor) return 0;
    rollup **list = NULL;
    size_t n = 0;
    int rc = ru_find_all(q->opts.rollups, tenant, &list, &n);
    if (rc || n == 0) {
        ru_unref_all(list, n);
        return 0;
    }
    const char *why = NULL;
    for (size_t idx = 0; idx < n && !*used; idx++) {
        rollup *ru = list[idx];
        rexec x;
        memset(&x, 0, sizeof x);
        x.q = q;
        x.def = &ru->def;
        x.width = rollup_table_width(x.def);
        const char *no = rewrite_match(q, ru, &x);
        if (!no) {
            rc = rexec_run(&x, ru, r, true);
            if (rc == QR_EAGAIN) {
                rc = 0;
                no = ru_inexact(ru, q->opts.rollups, x.t_lo, x.t_hi);
                if (!no) no = "not exact";
            } else if (rc) {
                break;
            } else {
                *used = true;
                q->rollup_note = qr_arena_printf(q->qa, "rollup: %s", ru->def.name);
            }
        }
        if (no && !why) why = qr_arena_printf(q->qa, "%s: %s", ru->def.name, no);
    }
    if (!*used && !rc) q->rollup_note = qr_arena_printf(q->qa, "rollup: not used (%s)", why);
    ru_unref_all(list, n);
    return rc;
}

/* bind — from a checked syntax tree (sql/ast.h) to a plan (exec_int.h).
 *
 * Names: ts, ingest_ts, service, level, host, msg are the built-in columns; any other name is a
 * field, known when some part of the snapshot has it in its schema (any value type: a key seen
 * as int in one segment and float in another is one field). An unknown name is an error at its
 * position with the closest known name suggested; LogQL filters are lenient (NULL instead).
 * Types: values are typed at run time (eval.c); the binder only fixes literals: a string
 * compared with `level` becomes a level (so `level = 'warn'` works and `level >= 'bogus'` is
 * an error), a string compared with ts is a time (checked by the parser), now() and constant
 * subexpressions are folded, regex patterns are compiled once.
 * WHERE is split into conjuncts and each is classified for filter.c (bind_where); ts
 * comparisons become the scan's [ts_lo, ts_hi].
 * Aggregate queries bind in two contexts: GROUP BY keys and aggregate arguments over rows;
 * the select list, HAVING and ORDER BY over groups, where a subexpression equal to a GROUP BY
 * key (by canonical text) is that key, an aggregate call is an aggregate slot, and a bare
 * column that is neither is an error. */
#include "engine/exec_int.h"

#include <stdio.h>
#include <string.h>

static const char *const builtin_names[] = {"ts", "ingest_ts", "service", "level", "host", "msg"};

bx *bx_new(exec_ctx *q, bx_kind kind, sql_pos pos)
{
    bx *e = qr_arena_calloc(q->qa, 1, sizeof *e);
    if (e) {
        e->kind = (uint8_t)kind;
        e->pos = pos;
    }
    return e;
}

const char *bind_col_name(exec_ctx *q, int col)
{
    if (col >= 0 && col < COL_FIELD0) return builtin_names[col];
    return q->fields[col - COL_FIELD0].name;
}

static int builtin_col(const char *name, size_t len)
{
    for (int idx = 0; idx < COL_FIELD0; idx++)
        if (strlen(builtin_names[idx]) == len && memcmp(builtin_names[idx], name, len) == 0)
            return idx;
    return -1;
}

/* ---- unknown names: "did you mean" ---------------------------------------------------------- */

/* Optimal string alignment distance (a transposition costs 1), capped for long names. */
static size_t edit_distance(const char *a, size_t an, const char *b, size_t bn)
{
    enum { MAXN = 64 };
    if (an > MAXN || bn > MAXN) return (size_t)-1;
    size_t d[MAXN + 1][MAXN + 1];
    for (size_t i = 0; i <= an; i++) d[i][0] = i;
    for (size_t j = 0; j <= bn; j++) d[0][j] = j;
    for (size_t i = 1; i <= an; i++) {
        for (size_t j = 1; j <= bn; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best) best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[an][bn];
}

typedef struct suggest {
    const char *name;
    size_t len;
    const char *best;
    size_t best_len;
    size_t best_dist;
} suggest;

static void suggest_consider(suggest *s, const char *cand, size_t len)
{
    size_t dist = edit_distance(s->name, s->len, cand, len);
    if (dist < s->best_dist) {
        s->best_dist = dist;
        s->best = cand;
        s->best_len = len;
    }
}

int bind_unknown_field(exec_ctx *q, const char *name, size_t len, sql_pos pos)
{
    suggest s = {name, len, NULL, 0, (size_t)-1};
    for (int idx = 0; idx < COL_FIELD0; idx++)
        suggest_consider(&s, builtin_names[idx], strlen(builtin_names[idx]));
    for (size_t pi = 0; pi < q->part_count; pi++) {
        const qr_part *p = q->parts[pi].p;
        for (uint32_t fi = 0; fi < p->field_count; fi++)
            suggest_consider(&s, p->fields[fi].key.ptr, p->fields[fi].key.len);
    }
    size_t limit = len < 6 ? 1 : len / 3 + 1;
    if (s.best && s.best_dist <= limit)
        return exec_error_at(q, pos, QR_ESYNTAX, "unknown field \"%.*s\" (did you mean %.*s?)",
                             (int)len, name, (int)s.best_len, s.best);
    return exec_error_at(q, pos, QR_ESYNTAX, "unknown field \"%.*s\"", (int)len, name);
}

/* ---- expressions ------------------------------------------------------------------------------
 */

typedef enum bind_mode { MODE_ROW, MODE_POST } bind_mode;

typedef struct binder {
    exec_ctx *q;
    bind_mode mode;
    plan *pl;
    const sql_select *sel;   /* for aliases and ordinals (SQL only) */
    const char **group_text; /* canonical text of each GROUP BY key */
    uint32_t alias_depth;
} binder;

static int bind_node(binder *b, const sql_expr *e, bx **out);

static const char *expr_text(exec_ctx *q, const sql_expr *e)
{
    qr_buf buf;
    qr_buf_init(&buf);
    sql_print_expr(e, &buf);
    const char *s =
        qr_buf_ok(&buf) ? qr_arena_strndup(q->qa, (const char *)buf.data, buf.len) : NULL;
    qr_buf_fini(&buf);
    return s;
}

static int oom(exec_ctx *q) { return exec_over_budget(q); }

static int bind_name(binder *b, const sql_expr *e, bx **out)
{
    exec_ctx *q = b->q;
    const char *name = e->u.name.s;
    size_t len = e->u.name.len;
    bx *x = bx_new(q, BX_COL, e->pos);
    if (!x) return oom(q);
    x->src = e;
    if (q->table_def) { /* FROM <rollup>: a column of its rows */
        uint8_t type = EXEC_NULL;
        int slot = rollup_table_col(q->table_def, name, len, &type);
        if (slot < 0)
            return exec_error_at(q, e->pos, QR_ESYNTAX, "unknown column \"%.*s\" of rollup %s",
                                 (int)len, name, rollup_table_name(q->table_def));
        x->kind = BX_GROUP;
        x->slot = slot;
        x->cols = CM_FIELD;
        x->type = type;
        *out = x;
        return 0;
    }
    int col = builtin_col(name, len);
    if (col >= 0) {
        x->col = col;
        x->cols = CM_BIT(col);
        x->type = col == COL_TS || col == COL_INGEST_TS ? EXEC_TS
                  : col == COL_LEVEL                    ? EXEC_LEVEL
                                                        : EXEC_STRING;
        *out = x;
        return 0;
    }
    if (!exec_field_known(q, name, len) && !q->lenient_fields)
        return bind_unknown_field(q, name, len, e->pos);
    int qf = exec_field_intern(q, name, len);
    if (qf < 0) return oom(q);
    x->col = COL_FIELD0 + qf;
    x->cols = CM_FIELD;
    if (q->lq_parsers) { /* after | json / | logfmt: also looked up in the message */
        x->kind = BX_EXTRACT;
        x->op = q->lq_parsers;
        x->cols |= CM_BIT(COL_MSG);
    }
    *out = x;
    return 0;
}

/* A select item whose alias is name, or NULL. */
static const sql_select_item *alias_item(const sql_select *s, const char *name, size_t len)
{
    if (!s) return NULL;
    for (uint32_t idx = 0; idx < s->item_count; idx++) {
        const char *a = s->items[idx].alias;
        if (a && strlen(a) == len && memcmp(a, name, len) == 0) return &s->items[idx];
    }
    return NULL;
}

static bool is_level_col(const bx *x)
{
    return (x->kind == BX_COL && x->col == COL_LEVEL) ||
           (x->kind == BX_GROUP && x->type == EXEC_LEVEL);
}

/* A string literal compared with a rollup's time column (row slot 0) becomes a time. */
static int time_literal(exec_ctx *q, const bx *col, bx *lit)
{
    if (!q->table_def || col->kind != BX_GROUP || col->type != EXEC_TS || lit->kind != BX_CONST ||
        lit->k.type != EXEC_STRING)
        return 0;
    int64_t ns = 0;
    if (qr_time_parse_rfc3339(lit->k.v.s.ptr, lit->k.v.s.len, &ns))
        return exec_error_at(q, lit->pos, QR_ESYNTAX,
                             "invalid time '%.*s': expected RFC 3339 like 2025-06-15T14:23:01Z",
                             (int)lit->k.v.s.len, lit->k.v.s.ptr);
    lit->k = ev_int(EXEC_TS, ns);
    lit->type = EXEC_TS;
    return 0;
}

/* A string literal next to `level` becomes a level. */
static int level_literal(exec_ctx *q, bx *lit)
{
    if (lit->kind != BX_CONST || lit->k.type != EXEC_STRING) return 0;
    qr_level lv;
    if (!qr_level_parse(lit->k.v.s.ptr, lit->k.v.s.len, &lv))
        return exec_error_at(q, lit->pos, QR_ESYNTAX,
                             "unknown level '%.*s' (levels: TRACE, DEBUG, INFO, WARN, ERROR, "
                             "FATAL, UNKNOWN)",
                             (int)lit->k.v.s.len, lit->k.v.s.ptr);
    lit->k = ev_int(EXEC_LEVEL, lv);
    lit->type = EXEC_LEVEL;
    return 0;
}

/* Folds a column-free, aggregate-free expression into a constant. */
static void fold(exec_ctx *q, bx *x)
{
    if (x->cols || x->kind == BX_CONST) return;
    blk_ctx fake;
    memset(&fake, 0, sizeof fake);
    fake.q = q;
    exec_value v = ev_eval(x, &fake, 0);
    bool ok = true;
    v = ev_copy(q->qa, &v, &ok);
    if (!ok) return;
    x->kind = BX_CONST;
    x->k = v;
    x->type = v.type;
}

static int agg_slot(binder *b, const sql_expr *e, bx **out)
{
    exec_ctx *q = b->q;
    plan *pl = b->pl;
    const char *name = e->u.call.name;
    agg_spec spec = {0};
    spec.src = e;
    if (strcmp(name, "count") == 0)
        spec.fn = e->u.call.star ? AGG_COUNT_STAR : AGG_COUNT;
    else if (strcmp(name, "sum") == 0)
        spec.fn = AGG_SUM;
    else if (strcmp(name, "avg") == 0)
        spec.fn = AGG_AVG;
    else if (strcmp(name, "min") == 0)
        spec.fn = AGG_MIN;
    else if (strcmp(name, "max") == 0)
        spec.fn = AGG_MAX;
    else if (strcmp(name, "count_distinct") == 0)
        spec.fn = AGG_COUNT_DISTINCT;
    else if (name[0] == 'p' && (name[1] == '5' || name[1] == '9')) {
        spec.fn = AGG_QUANTILE;
        spec.q = (double)((name[1] - '0') * 10 + (name[2] - '0')) / 100.0;
    } else if (strcmp(name, "quantile") == 0) {
        spec.fn = AGG_QUANTILE;
        const sql_expr *qe = e->u.call.args[1];
        spec.q = qe->kind == SQL_EXPR_FLOAT ? qe->u.f : (double)qe->u.i;
    } else if (strcmp(name, "rate") == 0) {
        /* per second of the GROUP BY bucket, else of the WHERE time range */
        spec.fn = AGG_RATE;
        for (uint32_t k = 0; k < pl->group_count && spec.per_s == 0; k++) {
            const bx *g = pl->groups[k];
            if (g->kind == BX_CALL && g->fn == FN_BUCKET) spec.per_s = (double)g->width_ns / 1e9;
        }
        if (spec.per_s == 0 && pl->ts_lo != INT64_MIN && pl->ts_hi != INT64_MAX &&
            pl->ts_hi >= pl->ts_lo)
            spec.per_s = (double)((uint64_t)pl->ts_hi - (uint64_t)pl->ts_lo + 1) / 1e9;
        if (spec.per_s == 0)
            return exec_error_at(q, e->pos, QR_ESYNTAX,
                                 "rate() needs GROUP BY bucket(ts, d) or a WHERE clause bounding "
                                 "ts on both sides");
    } else {
        return exec_error_at(q, e->pos, QR_ESYNTAX, "%s() is not supported in SQL yet", name);
    }
    /* same aggregate twice: one slot */
    const char *text = expr_text(q, e);
    if (!text) return oom(q);
    int slot = -1;
    for (uint32_t idx = 0; idx < pl->agg_count && slot < 0; idx++) {
        const char *t2 = expr_text(q, pl->aggs[idx].src);
        if (t2 && strcmp(t2, text) == 0) slot = (int)idx;
    }
    if (slot < 0) {
        if (spec.fn != AGG_COUNT_STAR && !(spec.fn == AGG_RATE && e->u.call.arg_count == 0)) {
            binder rb = *b;
            rb.mode = MODE_ROW;
            int rc = bind_node(&rb, e->u.call.args[0], &spec.arg);
            if (rc) return rc;
        }
        agg_spec *aggs = qr_arena_alloc(q->qa, (pl->agg_count + 1) * sizeof *aggs);
        if (!aggs) return oom(q);
        if (pl->agg_count) memcpy(aggs, pl->aggs, pl->agg_count * sizeof *aggs);
        aggs[pl->agg_count] = spec;
        pl->aggs = aggs;
        slot = (int)pl->agg_count++;
    }
    bx *x = bx_new(q, BX_AGG, e->pos);
    if (!x) return oom(q);
    x->slot = slot;
    x->cols = CM_AGG;
    x->src = e;
    x->type = spec.fn == AGG_COUNT_STAR || spec.fn == AGG_COUNT || spec.fn == AGG_COUNT_DISTINCT
                  ? EXEC_INT
              : spec.fn == AGG_AVG || spec.fn == AGG_QUANTILE ? EXEC_FLOAT
                                                              : EXEC_NULL;
    *out = x;
    return 0;
}

static int bind_list(binder *b, sql_expr **items, uint32_t n, bx *x)
{
    x->items = qr_arena_calloc(b->q->qa, n + 1, sizeof *x->items);
    if (!x->items) return oom(b->q);
    x->n = n;
    for (uint32_t idx = 0; idx < n; idx++) {
        int rc = bind_node(b, items[idx], &x->items[idx]);
        if (rc) return rc;
        x->cols |= x->items[idx]->cols;
    }
    return 0;
}

static int bind_node(binder *b, const sql_expr *e, bx **out)
{
    exec_ctx *q = b->q;
    int rc = 0;
    if (b->mode == MODE_POST) {
        /* a GROUP BY key, by canonical text */
        if (b->pl->group_count && e->kind != SQL_EXPR_INT && e->kind != SQL_EXPR_STRING) {
            const char *text = expr_text(q, e);
            if (!text) return oom(q);
            for (uint32_t k = 0; k < b->pl->group_count; k++) {
                if (strcmp(text, b->group_text[k]) != 0) continue;
                bx *x = bx_new(q, BX_GROUP, e->pos);
                if (!x) return oom(q);
                x->slot = (int)k;
                x->cols = CM_AGG;
                x->type = b->pl->groups[k]->type;
                x->src = e;
                *out = x;
                return 0;
            }
        }
        if (e->kind == SQL_EXPR_CALL && e->u.call.func && e->u.call.func->is_aggregate)
            return agg_slot(b, e, out);
        if (e->kind == SQL_EXPR_FIELD) {
            const sql_select_item *it = alias_item(b->sel, e->u.name.s, e->u.name.len);
            if (it && it->expr->kind != SQL_EXPR_FIELD && b->alias_depth < 4) {
                b->alias_depth++;
                rc = bind_node(b, it->expr, out);
                b->alias_depth--;
                return rc;
            }
            return exec_error_at(q, e->pos, QR_ESYNTAX,
                                 "\"%.*s\" must appear in GROUP BY or inside an aggregate",
                                 (int)e->u.name.len, e->u.name.s);
        }
    }
    bx *x = NULL;
    switch (e->kind) {
    case SQL_EXPR_NULL:
    case SQL_EXPR_BOOL:
    case SQL_EXPR_INT:
    case SQL_EXPR_FLOAT:
    case SQL_EXPR_STRING:
    case SQL_EXPR_DURATION:
    case SQL_EXPR_LEVEL:
        x = bx_new(q, BX_CONST, e->pos);
        if (!x) return oom(q);
        switch (e->kind) {
        case SQL_EXPR_BOOL:
            x->k = ev_bool(e->u.b);
            break;
        case SQL_EXPR_INT:
            x->k = ev_int(EXEC_INT, e->u.i);
            break;
        case SQL_EXPR_FLOAT:
            x->k.type = EXEC_FLOAT;
            x->k.v.f = e->u.f;
            break;
        case SQL_EXPR_STRING:
            if (e->u.str.is_time) {
                x->k = ev_int(EXEC_TS, e->u.str.time_ns);
            } else {
                x->k.type = EXEC_STRING;
                x->k.v.s = qr_str_make(e->u.str.s, e->u.str.len);
            }
            break;
        case SQL_EXPR_DURATION:
            x->k = ev_int(EXEC_DURATION, e->u.duration_ns);
            break;
        case SQL_EXPR_LEVEL:
            x->k = ev_int(EXEC_LEVEL, e->u.level);
            break;
        default:
            break;
        }
        x->type = x->k.type;
        break;
    case SQL_EXPR_FIELD:
        return bind_name(b, e, out);
    case SQL_EXPR_STAR:
        return exec_error_at(q, e->pos, QR_ESYNTAX, "'*' is only allowed alone in the select list");
    case SQL_EXPR_UNARY:
        x = bx_new(q, e->u.unary.op == SQL_OP_NOT ? BX_NOT : BX_NEG, e->pos);
        if (!x) return oom(q);
        rc = bind_node(b, e->u.unary.arg, &x->a);
        if (rc) return rc;
        x->cols = x->a->cols;
        x->type = x->kind == BX_NOT ? EXEC_BOOL : x->a->type;
        break;
    case SQL_EXPR_BINARY: {
        sql_op op = e->u.binary.op;
        x = bx_new(q, op == SQL_OP_MATCH ? BX_MATCH : BX_BIN, e->pos);
        if (!x) return oom(q);
        x->op = (uint8_t)op;
        x->negated = e->u.binary.negated;
        rc = bind_node(b, e->u.binary.lhs, &x->a);
        if (rc) return rc;
        if (op == SQL_OP_MATCH) {
            rc = match_compile(q, e->u.binary.search, &x->ms);
            if (rc) return rc;
            x->cols = x->a->cols;
            x->type = EXEC_BOOL;
            break;
        }
        rc = bind_node(b, e->u.binary.rhs, &x->b);
        if (rc) return rc;
        x->cols = x->a->cols | x->b->cols;
        if (op >= SQL_OP_EQ && op <= SQL_OP_GE) {
            if (is_level_col(x->a))
                rc = level_literal(q, x->b);
            else if (is_level_col(x->b))
                rc = level_literal(q, x->a);
            if (!rc) rc = time_literal(q, x->a, x->b);
            if (!rc) rc = time_literal(q, x->b, x->a);
            if (rc) return rc;
            x->type = EXEC_BOOL;
        } else if (op == SQL_OP_REGEX) {
            if (x->b->kind != BX_CONST || x->b->k.type != EXEC_STRING)
                return exec_error_at(q, e->u.binary.rhs->pos, QR_ESYNTAX,
                                     "a regex must be a string literal");
            rc = exec_regex_compile(q, x->b->k.v.s.ptr, x->b->k.v.s.len, e->u.binary.anchored,
                                    e->u.binary.rhs->pos, &x->re);
            if (rc) return rc;
            x->type = EXEC_BOOL;
        } else if (op == SQL_OP_LIKE || op == SQL_OP_CONTAINS) {
            x->type = EXEC_BOOL;
        } else {
            x->type = x->a->type == EXEC_FLOAT || x->b->type == EXEC_FLOAT ? EXEC_FLOAT
                      : x->a->type == EXEC_TS                              ? EXEC_TS
                                                                           : x->a->type;
        }
        break;
    }
    case SQL_EXPR_AND:
    case SQL_EXPR_OR:
        x = bx_new(q, e->kind == SQL_EXPR_AND ? BX_AND : BX_OR, e->pos);
        if (!x) return oom(q);
        rc = bind_list(b, e->u.list.items, e->u.list.count, x);
        if (rc) return rc;
        x->type = EXEC_BOOL;
        break;
    case SQL_EXPR_IN:
        x = bx_new(q, BX_IN, e->pos);
        if (!x) return oom(q);
        x->negated = e->u.in.negated;
        rc = bind_node(b, e->u.in.arg, &x->a);
        if (!rc) rc = bind_list(b, e->u.in.items, e->u.in.count, x);
        if (rc) return rc;
        x->cols |= x->a->cols;
        if (is_level_col(x->a))
            for (uint32_t idx = 0; idx < x->n && !rc; idx++) rc = level_literal(q, x->items[idx]);
        if (rc) return rc;
        x->type = EXEC_BOOL;
        break;
    case SQL_EXPR_BETWEEN:
        x = bx_new(q, BX_BETWEEN, e->pos);
        if (!x) return oom(q);
        x->negated = e->u.between.negated;
        rc = bind_node(b, e->u.between.arg, &x->a);
        if (!rc) rc = bind_node(b, e->u.between.lo, &x->b);
        if (!rc) rc = bind_node(b, e->u.between.hi, &x->c);
        if (!rc && is_level_col(x->a)) rc = level_literal(q, x->b);
        if (!rc && is_level_col(x->a)) rc = level_literal(q, x->c);
        if (rc) return rc;
        x->cols = x->a->cols | x->b->cols | x->c->cols;
        x->type = EXEC_BOOL;
        break;
    case SQL_EXPR_IS_NULL:
        x = bx_new(q, BX_ISNULL, e->pos);
        if (!x) return oom(q);
        x->negated = e->u.is_null.negated;
        rc = bind_node(b, e->u.is_null.arg, &x->a);
        if (rc) return rc;
        x->cols = x->a->cols;
        x->type = EXEC_BOOL;
        break;
    case SQL_EXPR_CALL: {
        const char *name = e->u.call.name;
        if (e->u.call.func && e->u.call.func->is_aggregate)
            return exec_error_at(q, e->pos, QR_ESYNTAX, "aggregate %s() is not allowed here", name);
        x = bx_new(q, BX_CALL, e->pos);
        if (!x) return oom(q);
        if (strcmp(name, "lower") == 0)
            x->fn = FN_LOWER;
        else if (strcmp(name, "upper") == 0)
            x->fn = FN_UPPER;
        else if (strcmp(name, "length") == 0)
            x->fn = FN_LENGTH;
        else if (strcmp(name, "coalesce") == 0)
            x->fn = FN_COALESCE;
        else if (strcmp(name, "bucket") == 0)
            x->fn = FN_BUCKET;
        else if (strcmp(name, "now") == 0)
            x->fn = FN_NOW;
        else
            return exec_error_at(q, e->pos, QR_ESYNTAX, "%s() is not supported yet", name);
        rc = bind_list(b, e->u.call.args, e->u.call.arg_count, x);
        if (rc) return rc;
        if (x->fn == FN_BUCKET) {
            const sql_expr *w = e->u.call.args[1];
            x->width_ns = w->kind == SQL_EXPR_DURATION ? w->u.duration_ns : 0;
            if (x->width_ns <= 0)
                return exec_error_at(q, w->pos, QR_ESYNTAX, "bucket width must be a duration");
            x->n = 1; /* the width is not evaluated per row */
            x->cols = x->items[0]->cols;
            x->type = EXEC_TS;
        }
        x->type = x->fn == FN_LENGTH                      ? EXEC_INT
                  : x->fn == FN_NOW || x->fn == FN_BUCKET ? EXEC_TS
                  : x->fn == FN_COALESCE                  ? x->items[0]->type
                                                          : EXEC_STRING;
        break;
    }
    }
    x->src = e;
    if (!(x->cols & CM_AGG)) fold(q, x);
    *out = x;
    return 0;
}

int bind_expr(exec_ctx *q, const sql_expr *e, bx **out)
{
    binder b = {q, MODE_ROW, q->pl, NULL, NULL, 0};
    return bind_node(&b, e, out);
}

/* ---- WHERE ------------------------------------------------------------------------------------
 */

static bool const_ts(const bx *x, int64_t *out)
{
    if (x->kind != BX_CONST || (x->k.type != EXEC_TS && x->k.type != EXEC_INT)) return false;
    *out = x->k.v.i;
    return true;
}

static bool is_ts(const bx *x) { return x->kind == BX_COL && x->col == COL_TS; }

/* Folds `ts op const` (either side) or `ts BETWEEN a AND b` into [lo, hi]. */
static bool ts_range(plan *pl, const bx *x)
{
    int64_t v, v2;
    if (x->kind == BX_BETWEEN && !x->negated && is_ts(x->a) && const_ts(x->b, &v) &&
        const_ts(x->c, &v2)) {
        if (v > pl->ts_lo) pl->ts_lo = v;
        if (v2 < pl->ts_hi) pl->ts_hi = v2;
        return true;
    }
    if (x->kind != BX_BIN || x->op < SQL_OP_EQ || x->op > SQL_OP_GE || x->op == SQL_OP_NE)
        return false;
    sql_op op = (sql_op)x->op;
    if (is_ts(x->a) && const_ts(x->b, &v)) {
    } else if (is_ts(x->b) && const_ts(x->a, &v)) {
        /* c < ts  ==  ts > c */
        op = op == SQL_OP_LT   ? SQL_OP_GT
             : op == SQL_OP_LE ? SQL_OP_GE
             : op == SQL_OP_GT ? SQL_OP_LT
             : op == SQL_OP_GE ? SQL_OP_LE
                               : op;
    } else {
        return false;
    }
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    switch (op) {
    case SQL_OP_EQ:
        lo = hi = v;
        break;
    case SQL_OP_LT:
        if (v == INT64_MIN)
            lo = INT64_MAX, hi = INT64_MIN;
        else
            hi = v - 1;
        break;
    case SQL_OP_LE:
        hi = v;
        break;
    case SQL_OP_GT:
        if (v == INT64_MAX)
            lo = INT64_MAX, hi = INT64_MIN;
        else
            lo = v + 1;
        break;
    case SQL_OP_GE:
        lo = v;
        break;
    default:
        return false;
    }
    if (lo > pl->ts_lo) pl->ts_lo = lo;
    if (hi < pl->ts_hi) pl->ts_hi = hi;
    return true;
}

int bind_where(exec_ctx *q, plan *pl, bx **items, uint32_t count)
{
    uint32_t total = 0;
    for (uint32_t idx = 0; idx < count; idx++)
        total += items[idx]->kind == BX_AND ? items[idx]->n : 1;
    pl->conjs = qr_arena_calloc(q->qa, total + 1, sizeof *pl->conjs);
    if (!pl->conjs) return oom(q);
    for (uint32_t idx = 0; idx < count; idx++) {
        bool flat = items[idx]->kind == BX_AND;
        uint32_t n = flat ? items[idx]->n : 1;
        for (uint32_t k = 0; k < n; k++) {
            bx *x = flat ? items[idx]->items[k] : items[idx];
            conj c = {x, CONJ_ROW, (x->cols & CM_BIT(COL_MSG)) != 0};
            uint32_t sl = CM_BIT(COL_SERVICE) | CM_BIT(COL_LEVEL);
            if (x->kind == BX_CONST) {
                if (ev_truthy(&x->k)) continue; /* always true: drop it */
                pl->ts_lo = INT64_MAX;          /* never true: nothing matches */
                pl->ts_hi = INT64_MIN;
                continue;
            }
            if (ts_range(pl, x))
                c.cls = CONJ_TS;
            else if (x->cols && (x->cols & ~sl) == 0)
                c.cls = CONJ_SL;
            else if (x->cols == CM_BIT(COL_HOST))
                c.cls = CONJ_HOST;
            else if (x->kind == BX_MATCH && !x->negated && x->a->kind == BX_COL &&
                     x->a->col == COL_MSG)
                c.cls = CONJ_MATCH;
            pl->has_sl |= c.cls == CONJ_SL;
            pl->has_host |= c.cls == CONJ_HOST;
            pl->has_match |= c.cls == CONJ_MATCH;
            pl->conjs[pl->conj_count++] = c;
        }
    }
    return 0;
}

/* Counts may come from block metadata: see op_agg.c. */
void bind_meta_ok(plan *pl)
{
    pl->meta_ok = pl->kind == PLAN_AGG;
    for (uint32_t idx = 0; idx < pl->agg_count && pl->meta_ok; idx++)
        pl->meta_ok = pl->aggs[idx].fn == AGG_COUNT_STAR ||
                      (pl->aggs[idx].fn == AGG_RATE && !pl->aggs[idx].arg);
    uint32_t buckets = 0;
    for (uint32_t idx = 0; idx < pl->group_count && pl->meta_ok; idx++) {
        const bx *g = pl->groups[idx];
        bool label = g->kind == BX_COL && (g->col == COL_SERVICE || g->col == COL_LEVEL);
        bool bucket = g->kind == BX_CALL && g->fn == FN_BUCKET && is_ts(g->items[0]);
        buckets += bucket;
        pl->meta_ok = label || bucket;
    }
    /* counts by labels and at most one time bucket: selected rows are counted per (bucket,
     * service id, level) in a small array (op_agg.c), whatever the filter */
    pl->count_fast = pl->meta_ok && buckets <= 1;
    for (uint32_t idx = 0; idx < pl->conj_count && pl->meta_ok; idx++)
        pl->meta_ok = pl->conjs[idx].cls == CONJ_TS || pl->conjs[idx].cls == CONJ_SL;
}

/* ---- SELECT ------------------------------------------------------------------------------------
 */

plan *plan_new(exec_ctx *q)
{
    plan *pl = qr_arena_calloc(q->qa, 1, sizeof *pl);
    if (!pl) return NULL;
    pl->ts_lo = INT64_MIN;
    pl->ts_hi = INT64_MAX;
    pl->limit = -1;
    return pl;
}

static bool has_aggregate(const sql_expr *e)
{
    if (!e) return false;
    switch (e->kind) {
    case SQL_EXPR_CALL:
        if (e->u.call.func && e->u.call.func->is_aggregate) return true;
        for (uint32_t idx = 0; idx < e->u.call.arg_count; idx++)
            if (has_aggregate(e->u.call.args[idx])) return true;
        return false;
    case SQL_EXPR_UNARY:
        return has_aggregate(e->u.unary.arg);
    case SQL_EXPR_BINARY:
        return has_aggregate(e->u.binary.lhs) || has_aggregate(e->u.binary.rhs);
    case SQL_EXPR_AND:
    case SQL_EXPR_OR:
        for (uint32_t idx = 0; idx < e->u.list.count; idx++)
            if (has_aggregate(e->u.list.items[idx])) return true;
        return false;
    case SQL_EXPR_IN:
        if (has_aggregate(e->u.in.arg)) return true;
        for (uint32_t idx = 0; idx < e->u.in.count; idx++)
            if (has_aggregate(e->u.in.items[idx])) return true;
        return false;
    case SQL_EXPR_BETWEEN:
        return has_aggregate(e->u.between.arg) || has_aggregate(e->u.between.lo) ||
               has_aggregate(e->u.between.hi);
    case SQL_EXPR_IS_NULL:
        return has_aggregate(e->u.is_null.arg);
    default:
        return false;
    }
}

static const char *item_name(exec_ctx *q, const sql_select_item *it)
{
    if (it->alias) return it->alias;
    if (it->expr->kind == SQL_EXPR_FIELD)
        return qr_arena_strndup(q->qa, it->expr->u.name.s, it->expr->u.name.len);
    return expr_text(q, it->expr);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* SELECT *: the built-in columns, then every field of the snapshot by name. The output arrays
 * are reallocated to fit (cap: the rest of the select list). */
static int expand_star(exec_ctx *q, plan *pl, sql_pos pos, uint32_t rest)
{
    static const int cols[] = {COL_TS, COL_SERVICE, COL_LEVEL, COL_HOST, COL_MSG};
    size_t total = 0;
    for (size_t pi = 0; pi < q->part_count; pi++) total += q->parts[pi].p->field_count;
    const char **names = qr_arena_calloc(q->qa, total + 1, sizeof *names);
    if (!names) return oom(q);
    size_t count = 0;
    for (size_t pi = 0; pi < q->part_count; pi++) {
        const qr_part *p = q->parts[pi].p;
        for (uint32_t fi = 0; fi < p->field_count; fi++) {
            const char *s = qr_arena_strndup(q->qa, p->fields[fi].key.ptr, p->fields[fi].key.len);
            if (!s) return oom(q);
            bool dup = false;
            for (size_t k = 0; k < count && !dup; k++) dup = strcmp(names[k], s) == 0;
            if (!dup && builtin_col(s, strlen(s)) < 0) names[count++] = s;
        }
    }
    qsort(names, count, sizeof *names, name_cmp);
    size_t cap = pl->out_count + 5 + count + rest + 1;
    bx **out = qr_arena_calloc(q->qa, cap, sizeof *out);
    const char **out_names = qr_arena_calloc(q->qa, cap, sizeof *out_names);
    if (!out || !out_names) return oom(q);
    if (pl->out_count) {
        memcpy(out, pl->out, pl->out_count * sizeof *out);
        memcpy(out_names, pl->out_names, pl->out_count * sizeof *out_names);
    }
    pl->out = out;
    pl->out_names = out_names;
    for (size_t k = 0; k < 5 + count; k++) {
        bx *x = bx_new(q, BX_COL, pos);
        if (!x) return oom(q);
        if (k < 5) {
            x->col = cols[k];
            x->cols = CM_BIT(cols[k]);
            x->type = cols[k] == COL_TS ? EXEC_TS : cols[k] == COL_LEVEL ? EXEC_LEVEL : EXEC_STRING;
            pl->out_names[pl->out_count] = builtin_names[cols[k]];
        } else {
            int qf = exec_field_intern(q, names[k - 5], strlen(names[k - 5]));
            if (qf < 0) return oom(q);
            x->col = COL_FIELD0 + qf;
            x->cols = CM_FIELD;
            pl->out_names[pl->out_count] = names[k - 5];
        }
        pl->out[pl->out_count++] = x;
    }
    return 0;
}

/* SELECT * over a rollup: its columns in definition order. */
static int expand_table_star(exec_ctx *q, plan *pl, sql_pos pos, uint32_t rest)
{
    uint32_t width = rollup_table_width(q->table_def);
    size_t cap = pl->out_count + width + rest + 1;
    bx **out = qr_arena_calloc(q->qa, cap, sizeof *out);
    const char **out_names = qr_arena_calloc(q->qa, cap, sizeof *out_names);
    if (!out || !out_names) return oom(q);
    if (pl->out_count) {
        memcpy(out, pl->out, pl->out_count * sizeof *out);
        memcpy(out_names, pl->out_names, pl->out_count * sizeof *out_names);
    }
    pl->out = out;
    pl->out_names = out_names;
    for (uint32_t slot = 0; slot < width; slot++) {
        const char *name = rollup_table_col_name(q->table_def, (int)slot);
        bx *x = bx_new(q, BX_GROUP, pos);
        if (!x) return oom(q);
        uint8_t type = EXEC_NULL;
        x->slot = rollup_table_col(q->table_def, name, strlen(name), &type);
        x->type = type;
        x->cols = CM_FIELD;
        pl->out_names[pl->out_count] = name;
        pl->out[pl->out_count++] = x;
    }
    return 0;
}

int bind_select(exec_ctx *q, const sql_select *s, plan **out)
{
    plan *pl = plan_new(q);
    if (!pl) return oom(q);
    q->pl = pl;
    pl->label = "SQL";
    if (s->from && strcmp(s->from, "logs") != 0 && !q->table_def)
        return exec_error_at(q, s->from_pos, QR_ESYNTAX, "unknown table \"%s\" (tables: logs)",
                             s->from);
    bool is_agg = s->group_count > 0 || has_aggregate(s->having);
    for (uint32_t idx = 0; idx < s->item_count; idx++) is_agg |= has_aggregate(s->items[idx].expr);
    for (uint32_t idx = 0; idx < s->order_count; idx++)
        is_agg |= has_aggregate(s->order_by[idx].expr);
    pl->kind = !s->from ? PLAN_CONST : is_agg ? PLAN_AGG : PLAN_ROWS;
    pl->limit = s->limit;
    pl->offset = s->offset > 0 ? s->offset : 0;
    binder b = {q, MODE_ROW, pl, s, NULL, 0};
    int rc = 0;
    if (s->where) {
        if (!s->from) return exec_error_at(q, s->where->pos, QR_ESYNTAX, "WHERE needs FROM logs");
        bx *w;
        rc = bind_node(&b, s->where, &w);
        if (!rc) rc = bind_where(q, pl, &w, 1);
        if (rc) return rc;
    }
    /* GROUP BY keys (row context): ordinals and aliases name select items */
    if (s->group_count) {
        pl->groups = qr_arena_calloc(q->qa, s->group_count, sizeof *pl->groups);
        b.group_text = qr_arena_calloc(q->qa, s->group_count, sizeof *b.group_text);
        if (!pl->groups || !b.group_text) return oom(q);
        for (uint32_t k = 0; k < s->group_count; k++) {
            const sql_expr *g = s->group_by[k];
            if (g->kind == SQL_EXPR_INT) {
                g = s->items[g->u.i - 1].expr;
            } else if (g->kind == SQL_EXPR_FIELD && builtin_col(g->u.name.s, g->u.name.len) < 0 &&
                       !exec_field_known(q, g->u.name.s, g->u.name.len)) {
                const sql_select_item *it = alias_item(s, g->u.name.s, g->u.name.len);
                if (it) g = it->expr;
            }
            if (g->kind == SQL_EXPR_STAR || has_aggregate(g))
                return exec_error_at(q, s->group_by[k]->pos, QR_ESYNTAX,
                                     "GROUP BY cannot name an aggregate");
            rc = bind_node(&b, g, &pl->groups[k]);
            if (rc) return rc;
            b.group_text[k] = expr_text(q, g);
            if (!b.group_text[k]) return oom(q);
            pl->group_count++;
        }
    }
    /* select list */
    uint32_t cap = s->item_count + 1;
    pl->out = qr_arena_calloc(q->qa, cap, sizeof *pl->out);
    pl->out_names = qr_arena_calloc(q->qa, cap, sizeof *pl->out_names);
    if (!pl->out || !pl->out_names) return oom(q);
    b.mode = pl->kind == PLAN_AGG ? MODE_POST : MODE_ROW;
    for (uint32_t idx = 0; idx < s->item_count; idx++) {
        const sql_select_item *it = &s->items[idx];
        if (it->expr->kind == SQL_EXPR_STAR) {
            if (pl->kind != PLAN_ROWS)
                return exec_error_at(q, it->expr->pos, QR_ESYNTAX,
                                     pl->kind == PLAN_CONST ? "SELECT * needs FROM logs"
                                                            : "SELECT * cannot be aggregated");
            rc = q->table_def ? expand_table_star(q, pl, it->expr->pos, s->item_count - idx)
                              : expand_star(q, pl, it->expr->pos, s->item_count - idx);
            if (rc) return rc;
            continue;
        }
        rc = bind_node(&b, it->expr, &pl->out[pl->out_count]);
        if (rc) return rc;
        if (pl->kind == PLAN_CONST && (pl->out[pl->out_count]->cols & ~CM_AGG))
            return exec_error_at(q, it->expr->pos, QR_ESYNTAX, "columns need FROM logs");
        pl->out_names[pl->out_count] = item_name(q, it);
        if (!pl->out_names[pl->out_count]) return oom(q);
        pl->out_count++;
    }
    if (s->having) {
        rc = bind_node(&b, s->having, &pl->having);
        if (rc) return rc;
    }
    /* ORDER BY: ordinals and aliases name select items */
    uint32_t order_n = s->order_count ? s->order_count : (pl->kind == PLAN_ROWS ? 1 : 0);
    pl->order = qr_arena_calloc(q->qa, order_n + 1, sizeof *pl->order);
    pl->order_desc = qr_arena_calloc(q->qa, order_n + 1, sizeof *pl->order_desc);
    if (!pl->order || !pl->order_desc) return oom(q);
    for (uint32_t k = 0; k < s->order_count; k++) {
        const sql_expr *o = s->order_by[k].expr;
        pl->order_desc[k] = s->order_by[k].desc;
        const sql_select_item *it = NULL;
        if (o->kind == SQL_EXPR_INT)
            it = &s->items[o->u.i - 1];
        else if (o->kind == SQL_EXPR_FIELD)
            it = alias_item(s, o->u.name.s, o->u.name.len);
        if (it && it->expr->kind == SQL_EXPR_STAR)
            return exec_error_at(q, o->pos, QR_ESYNTAX, "ORDER BY cannot name '*'");
        rc = bind_node(&b, it ? it->expr : o, &pl->order[k]);
        if (rc) return rc;
    }
    pl->order_count = s->order_count;
    if (pl->kind == PLAN_ROWS && s->order_count == 0 && !q->table_def) {
        /* rows come newest first unless ordered otherwise */
        bx *x = bx_new(q, BX_COL, s->pos);
        if (!x) return oom(q);
        x->col = COL_TS;
        x->cols = CM_BIT(COL_TS);
        pl->order[0] = x;
        pl->order_desc[0] = true;
        pl->order_count = 1;
    }
    bool has_ts = false;
    for (uint32_t k = 0; k < pl->order_count; k++) has_ts |= is_ts(pl->order[k]);
    if (pl->kind == PLAN_ROWS && !has_ts && !q->table_def) {
        /* ties of the ORDER BY keys: newest first, then by storage location; a tie group of
         * equal ts keeps its order across memtable flushes, which cursors rely on */
        bx *x = bx_new(q, BX_COL, s->pos);
        if (!x) return oom(q);
        x->col = COL_TS;
        x->cols = CM_BIT(COL_TS);
        x->type = EXEC_TS;
        pl->order[pl->order_count] = x;
        pl->order_desc[pl->order_count] = true;
        pl->order_count++;
        pl->order_implicit = 1;
    }
    if (pl->kind == PLAN_ROWS && pl->order_count && is_ts(pl->order[0]))
        pl->ts_order = pl->order_desc[0] ? -1 : 1;
    bind_meta_ok(pl);
    *out = pl;
    return 0;
}

/* func — the function registries (SQL and LogQL) and the early checks that need no catalog.
 *
 * Adding a SQL function is one line in sql_funcs (name, arity, aggregate or not); the binder
 * later looks the same entries up for types and evaluation. The checks walk a parsed statement
 * once and stop at the first problem, reporting it at the node it concerns:
 *   - unknown function, wrong arity, '*' outside count(*)
 *   - aggregate in WHERE or GROUP BY (or in a LogQL filter), aggregate inside an aggregate
 *   - quantile(x, q) with q not a literal in [0, 1]; bucket(ts, d) with d not a positive duration
 *   - ORDER BY / GROUP BY ordinal outside the select list
 *   - a string compared with ts that is not RFC 3339 (valid ones get is_time/time_ns)
 *   - LogQL: range vs vector aggregation shapes, missing [range], parameters, unwrap rules. */
#include "sql/sql_int.h"

#include <string.h>
#include <strings.h>

#include "common/qr_time.h"

/* Sorted by name for bsearch. */
static const sql_func sql_funcs[] = {
    {"avg", 1, 1, true, false},
    {"bucket", 2, 2, false, false},
    {"coalesce", 1, SQL_FUNC_VARIADIC, false, false},
    {"count", 1, 1, true, true},
    {"count_distinct", 1, 1, true, false},
    {"length", 1, 1, false, false},
    {"lower", 1, 1, false, false},
    {"max", 1, 1, true, false},
    {"min", 1, 1, true, false},
    {"now", 0, 0, false, false},
    {"p50", 1, 1, true, false},
    {"p90", 1, 1, true, false},
    {"p95", 1, 1, true, false},
    {"p99", 1, 1, true, false},
    {"quantile", 2, 2, true, false},
    {"rate", 0, 1, true, false},
    {"sum", 1, 1, true, false},
    {"upper", 1, 1, false, false},
};

static int func_name_cmp(const char *name, size_t len, const char *entry)
{
    int cmp = strncasecmp(name, entry, len);
    if (cmp == 0 && entry[len] != '\0') cmp = -1;
    return cmp;
}

const sql_func *sql_func_lookup(const char *name, size_t len)
{
    size_t lo = 0, hi = sizeof sql_funcs / sizeof sql_funcs[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = func_name_cmp(name, len, sql_funcs[mid].name);
        if (cmp == 0) return &sql_funcs[mid];
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* LogQL functions. unwrap: 0 forbidden, 1 required, 2 optional. param: takes a leading number. */
typedef struct lq_func {
    const char *name;
    bool is_range;
    bool param;
    uint8_t unwrap;
} lq_func;

static const lq_func lq_funcs[] = {
    {"absent_over_time", true, false, 0},
    {"avg", false, false, 0},
    {"avg_over_time", true, false, 1},
    {"bottomk", false, true, 0},
    {"bytes_over_time", true, false, 0},
    {"bytes_rate", true, false, 0},
    {"count", false, false, 0},
    {"count_over_time", true, false, 0},
    {"first_over_time", true, false, 1},
    {"last_over_time", true, false, 1},
    {"max", false, false, 0},
    {"max_over_time", true, false, 1},
    {"min", false, false, 0},
    {"min_over_time", true, false, 1},
    {"quantile_over_time", true, true, 1},
    {"rate", true, false, 2},
    {"stddev", false, false, 0},
    {"stddev_over_time", true, false, 1},
    {"stdvar", false, false, 0},
    {"stdvar_over_time", true, false, 1},
    {"sum", false, false, 0},
    {"sum_over_time", true, false, 1},
    {"topk", false, true, 0},
};

static const lq_func *lq_func_find(const char *name, size_t len)
{
    size_t lo = 0, hi = sizeof lq_funcs / sizeof lq_funcs[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = func_name_cmp(name, len, lq_funcs[mid].name);
        if (cmp == 0) return &lq_funcs[mid];
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

bool sql_lq_func_lookup(const char *name, size_t len, bool *is_range)
{
    const lq_func *f = lq_func_find(name, len);
    if (f && is_range) *is_range = f->is_range;
    return f != NULL;
}

/* ---- SQL checks ------------------------------------------------------------------------------ */

typedef struct check_scope {
    const char *clause;       /* where aggregates are not allowed ("WHERE"), or NULL */
    const char *in_aggregate; /* the enclosing aggregate's name, or NULL */
} check_scope;

static int check_expr(parse_ctx *ctx, sql_expr *e, check_scope scope);

static bool check_is_ts(const sql_expr *e)
{
    return e && e->kind == SQL_EXPR_FIELD && e->u.name.len == 2 &&
           memcmp(e->u.name.s, "ts", 2) == 0;
}

/* A string compared with ts must be an RFC 3339 time; remember its value. */
static int check_time_literal(parse_ctx *ctx, sql_expr *e)
{
    if (!e || e->kind != SQL_EXPR_STRING) return 0;
    int64_t ns;
    if (qr_time_parse_rfc3339(e->u.str.s, e->u.str.len, &ns) != 0) {
        return parse_error_at(ctx, e->pos, QR_ESYNTAX,
                              "invalid time '%.*s': expected RFC 3339 like 2025-06-15T14:23:01Z",
                              (int)(e->u.str.len > 40 ? 40 : e->u.str.len), e->u.str.s);
    }
    e->u.str.is_time = true;
    e->u.str.time_ns = ns;
    return 0;
}

static bool check_is_comparison(sql_op op)
{
    return op >= SQL_OP_EQ && op <= SQL_OP_GE;
}

static int check_call(parse_ctx *ctx, sql_expr *e, check_scope scope)
{
    const char *name = e->u.call.name;
    const sql_func *f = sql_func_lookup(name, e->u.call.name_len);
    if (!f) return parse_error_at(ctx, e->pos, QR_ESYNTAX, "unknown function %s()", name);
    e->u.call.func = f;
    if (e->u.call.star && !f->allows_star)
        return parse_error_at(ctx, e->pos, QR_ESYNTAX, "'*' is only allowed in count(*), not %s()",
                              name);
    unsigned got = e->u.call.arg_count + (e->u.call.star ? 1u : 0u);
    if (got < f->min_args || (f->max_args != SQL_FUNC_VARIADIC && got > f->max_args)) {
        if (f->max_args == SQL_FUNC_VARIADIC)
            return parse_error_at(ctx, e->pos, QR_ESYNTAX,
                                  "%s() takes at least %u argument%s, got %u", name, f->min_args,
                                  f->min_args == 1 ? "" : "s", got);
        if (f->min_args == f->max_args)
            return parse_error_at(ctx, e->pos, QR_ESYNTAX, "%s() takes %u argument%s, got %u", name,
                                  f->min_args, f->min_args == 1 ? "" : "s", got);
        return parse_error_at(ctx, e->pos, QR_ESYNTAX, "%s() takes %u to %u arguments, got %u",
                              name, f->min_args, f->max_args, got);
    }
    if (f->is_aggregate) {
        if (scope.clause)
            return parse_error_at(ctx, e->pos, QR_ESYNTAX, "aggregate %s() is not allowed in %s",
                                  name, scope.clause);
        if (scope.in_aggregate)
            return parse_error_at(ctx, e->pos, QR_ESYNTAX,
                                  "aggregate %s() cannot be nested inside %s()", name,
                                  scope.in_aggregate);
        scope.in_aggregate = name;
    }
    if (strcmp(name, "quantile") == 0) {
        const sql_expr *q = e->u.call.args[1];
        double v = q->kind == SQL_EXPR_INT     ? (double)q->u.i
                   : q->kind == SQL_EXPR_FLOAT ? q->u.f
                                               : -1;
        if ((q->kind != SQL_EXPR_INT && q->kind != SQL_EXPR_FLOAT) || v < 0 || v > 1)
            return parse_error_at(ctx, q->pos, QR_ESYNTAX,
                                  "quantile() level must be a number between 0 and 1");
    }
    if (strcmp(name, "bucket") == 0) {
        const sql_expr *width = e->u.call.args[1];
        if (width->kind != SQL_EXPR_DURATION || width->u.duration_ns <= 0)
            return parse_error_at(ctx, width->pos, QR_ESYNTAX,
                                  "bucket() width must be a positive duration like 5m");
    }
    for (uint32_t idx = 0; idx < e->u.call.arg_count; idx++) {
        int rc = check_expr(ctx, e->u.call.args[idx], scope);
        if (rc) return rc;
    }
    return 0;
}

static int check_expr(parse_ctx *ctx, sql_expr *e, check_scope scope)
{
    int rc = 0;
    if (!e) return 0;
    switch (e->kind) {
    case SQL_EXPR_CALL:
        return check_call(ctx, e, scope);
    case SQL_EXPR_UNARY:
        return check_expr(ctx, e->u.unary.arg, scope);
    case SQL_EXPR_BINARY:
        if (check_is_comparison(e->u.binary.op)) {
            if (check_is_ts(e->u.binary.lhs)) rc = check_time_literal(ctx, e->u.binary.rhs);
            if (!rc && check_is_ts(e->u.binary.rhs)) rc = check_time_literal(ctx, e->u.binary.lhs);
        }
        if (!rc) rc = check_expr(ctx, e->u.binary.lhs, scope);
        if (!rc) rc = check_expr(ctx, e->u.binary.rhs, scope);
        return rc;
    case SQL_EXPR_AND:
    case SQL_EXPR_OR:
        for (uint32_t idx = 0; !rc && idx < e->u.list.count; idx++)
            rc = check_expr(ctx, e->u.list.items[idx], scope);
        return rc;
    case SQL_EXPR_IN:
        rc = check_expr(ctx, e->u.in.arg, scope);
        for (uint32_t idx = 0; !rc && idx < e->u.in.count; idx++) {
            if (check_is_ts(e->u.in.arg)) rc = check_time_literal(ctx, e->u.in.items[idx]);
            if (!rc) rc = check_expr(ctx, e->u.in.items[idx], scope);
        }
        return rc;
    case SQL_EXPR_BETWEEN:
        if (check_is_ts(e->u.between.arg)) {
            rc = check_time_literal(ctx, e->u.between.lo);
            if (!rc) rc = check_time_literal(ctx, e->u.between.hi);
        }
        if (!rc) rc = check_expr(ctx, e->u.between.arg, scope);
        if (!rc) rc = check_expr(ctx, e->u.between.lo, scope);
        if (!rc) rc = check_expr(ctx, e->u.between.hi, scope);
        return rc;
    case SQL_EXPR_IS_NULL:
        return check_expr(ctx, e->u.is_null.arg, scope);
    case SQL_EXPR_STAR:
        return parse_error_at(ctx, e->pos, QR_ESYNTAX, "'*' must stand alone in the select list");
    default:
        return 0;
    }
}

static int check_ordinal(parse_ctx *ctx, const sql_expr *e, uint32_t item_count, const char *clause)
{
    if (e->kind != SQL_EXPR_INT) return 0;
    if (e->u.i < 1 || (uint64_t)e->u.i > item_count)
        return parse_error_at(ctx, e->pos, QR_ESYNTAX,
                              "%s position %lld is not in the select list (1..%u)", clause,
                              (long long)e->u.i, item_count);
    return 0;
}

static int check_select(parse_ctx *ctx, sql_select *s)
{
    check_scope free_scope = {NULL, NULL};
    check_scope where_scope = {"WHERE", NULL};
    check_scope group_scope = {"GROUP BY", NULL};
    int rc = 0;
    for (uint32_t idx = 0; !rc && idx < s->item_count; idx++) {
        sql_expr *e = s->items[idx].expr;
        if (e->kind == SQL_EXPR_STAR) continue;
        rc = check_expr(ctx, e, free_scope);
    }
    if (!rc) rc = check_expr(ctx, s->where, where_scope);
    for (uint32_t idx = 0; !rc && idx < s->group_count; idx++) {
        rc = check_ordinal(ctx, s->group_by[idx], s->item_count, "GROUP BY");
        if (!rc) rc = check_expr(ctx, s->group_by[idx], group_scope);
    }
    if (!rc) rc = check_expr(ctx, s->having, free_scope);
    for (uint32_t idx = 0; !rc && idx < s->order_count; idx++) {
        rc = check_ordinal(ctx, s->order_by[idx].expr, s->item_count, "ORDER BY");
        if (!rc) rc = check_expr(ctx, s->order_by[idx].expr, free_scope);
    }
    return rc;
}

/* ---- LogQL checks -----------------------------------------------------------------------------
 */

static const sql_lq_stage *check_lq_unwrap(const sql_lq_log *log)
{
    for (uint32_t idx = 0; idx < log->stage_count; idx++)
        if (log->stages[idx].kind == SQL_LQ_UNWRAP) return &log->stages[idx];
    return NULL;
}

static int check_lq_log(parse_ctx *ctx, const sql_lq_log *log)
{
    check_scope scope = {"a LogQL filter", NULL};
    for (uint32_t idx = 0; idx < log->stage_count; idx++) {
        int rc = check_expr(ctx, log->stages[idx].filter, scope);
        if (rc) return rc;
    }
    return 0;
}

static int check_lq_metric(parse_ctx *ctx, const sql_lq_metric *m)
{
    const lq_func *f = lq_func_find(m->func, strlen(m->func));
    if (!f) return parse_error_at(ctx, m->pos, QR_ESYNTAX, "unknown LogQL function %s", m->func);
    if (f->param && !m->has_param)
        return parse_error_at(ctx, m->pos, QR_ESYNTAX, "%s needs a parameter first: %s(%s, ...)",
                              m->func, m->func, f->is_range ? "0.99" : "5");
    if (!f->param && m->has_param)
        return parse_error_at(ctx, m->param_pos, QR_ESYNTAX, "%s takes no parameter", m->func);
    if (f->param && f->is_range && (m->param < 0 || m->param > 1))
        return parse_error_at(ctx, m->param_pos, QR_ESYNTAX, "%s level must be between 0 and 1",
                              m->func);
    if (f->param && !f->is_range && (m->param < 1 || m->param != (double)(int64_t)m->param))
        return parse_error_at(ctx, m->param_pos, QR_ESYNTAX,
                              "%s needs a positive whole number of series", m->func);
    if (f->is_range) {
        if (m->inner)
            return parse_error_at(ctx, m->inner->pos, QR_ESYNTAX,
                                  "%s takes a log query with a range, not a metric query", m->func);
        if (m->grouping != SQL_LQ_GROUP_NONE)
            return parse_error_at(ctx, m->pos, QR_ESYNTAX,
                                  "%s cannot group; wrap it: sum by (...) (%s(...))", m->func,
                                  m->func);
        if (m->range_ns <= 0)
            return parse_error_at(ctx, m->range_pos, QR_ESYNTAX,
                                  "%s needs a range after the log query, like [5m]", m->func);
        const sql_lq_stage *unwrap = check_lq_unwrap(m->log);
        if (f->unwrap == 1 && !unwrap)
            return parse_error_at(ctx, m->pos, QR_ESYNTAX,
                                  "%s needs a value: add | unwrap <field> to the log query",
                                  m->func);
        if (f->unwrap == 0 && unwrap)
            return parse_error_at(ctx, unwrap->pos, QR_ESYNTAX, "%s does not take | unwrap",
                                  m->func);
        return check_lq_log(ctx, m->log);
    }
    if (m->log)
        return parse_error_at(ctx, m->log->pos, QR_ESYNTAX,
                              "%s aggregates a metric query, like %s(rate({...}[1m]))", m->func,
                              m->func);
    return check_lq_metric(ctx, m->inner);
}

static int check_logql(parse_ctx *ctx, const sql_logql *q)
{
    if (q->metric) return check_lq_metric(ctx, q->metric);
    const sql_lq_stage *unwrap = check_lq_unwrap(q->log);
    if (unwrap)
        return parse_error_at(ctx, unwrap->pos, QR_ESYNTAX,
                              "| unwrap only makes sense inside a range aggregation such as "
                              "sum_over_time(... [5m])");
    return check_lq_log(ctx, q->log);
}

int check_stmt(parse_ctx *ctx, sql_stmt *stmt)
{
    switch (stmt->kind) {
    case SQL_STMT_SELECT:
        return check_select(ctx, stmt->u.select);
    case SQL_STMT_LOGQL:
        return check_logql(ctx, stmt->u.logql);
    case SQL_STMT_EXPLAIN:
        return check_stmt(ctx, stmt->u.explain);
    case SQL_STMT_CREATE_ROLLUP: {
        int rc = check_select(ctx, stmt->u.rollup->select);
        return rc ? rc : check_rollup(ctx, stmt->u.rollup);
    }
    case SQL_STMT_CREATE_ALERT: {
        int rc = check_select(ctx, stmt->u.alert->select);
        check_scope free_scope = {NULL, NULL};
        if (!rc) rc = check_expr(ctx, stmt->u.alert->when, free_scope);
        return rc;
    }
    default:
        return 0;
    }
}

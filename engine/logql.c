/* logql — LogQL queries onto the same plans as SQL.
 *
 *   {sel} |= "a" != "b" |~ "re" | f > 3     → SELECT ts, service, level, host, msg FROM logs
 *                                             WHERE <matchers AND stages> ORDER BY ts DESC
 *                                             LIMIT opts.logql_limit (100)
 *   count_over_time({sel} ... [d])           → SELECT bucket(ts, d) AS t, service, level, host,
 *                                             count(*) AS value ... GROUP BY t, service, level,
 * host rate(... [d])                            → the same with count / d-in-seconds sum by (l1,
 * l2) (count_over_time(...))   → GROUP BY t, l1, l2 sum (count_over_time(...))               →
 * GROUP BY t Windows are tumbling: one row per d-wide bucket (a step equal to the range), aligned
 * to the epoch. Series are the stream labels service, level and host. Fields named in LogQL filters
 * or `by (...)` that no part has are NULL rather than errors (Loki's behaviour).
 * Not yet: | json, | logfmt, | line_format, | unwrap, other range and vector functions
 * (each an error at its position). */
#include "engine/exec_int.h"

#include <string.h>

static int log_filters(exec_ctx *q, plan *pl, const sql_lq_log *log)
{
    uint32_t cap = log->matcher_count + log->stage_count;
    bx **items = qr_arena_calloc(q->qa, cap + 1, sizeof *items);
    if (!items) return exec_over_budget(q);
    uint32_t n = 0;
    for (uint32_t idx = 0; idx < log->matcher_count; idx++) {
        int rc = bind_expr(q, log->matchers[idx], &items[n++]);
        if (rc) return rc;
    }
    for (uint32_t idx = 0; idx < log->stage_count; idx++) {
        const sql_lq_stage *st = &log->stages[idx];
        static const char *const names[] = {"", "", "json", "logfmt", "line_format", "unwrap"};
        if (st->kind != SQL_LQ_LINE_FILTER && st->kind != SQL_LQ_LABEL_FILTER)
            return exec_error_at(q, st->pos, QR_ESYNTAX, "| %s is not supported yet",
                                 names[st->kind]);
        int rc = bind_expr(q, st->filter, &items[n++]);
        if (rc) return rc;
    }
    return bind_where(q, pl, items, n);
}

static bx *col_ref(exec_ctx *q, int col, sql_pos pos)
{
    bx *x = bx_new(q, BX_COL, pos);
    if (x) {
        x->col = col;
        x->cols = col >= COL_FIELD0 ? CM_FIELD : CM_BIT(col);
    }
    return x;
}

static int label_ref(exec_ctx *q, const char *name, sql_pos pos, bx **out)
{
    sql_expr *e = qr_arena_calloc(q->qa, 1, sizeof *e);
    if (!e) return exec_over_budget(q);
    e->kind = SQL_EXPR_FIELD;
    e->pos = pos;
    e->depth = 1;
    e->u.name.s = name;
    e->u.name.len = (uint32_t)strlen(name);
    return bind_expr(q, e, out);
}

static int bind_log(exec_ctx *q, plan *pl, const sql_lq_log *log)
{
    static const int cols[] = {COL_TS, COL_SERVICE, COL_LEVEL, COL_HOST, COL_MSG};
    static const char *const names[] = {"ts", "service", "level", "host", "msg"};
    pl->kind = PLAN_ROWS;
    int rc = log_filters(q, pl, log);
    if (rc) return rc;
    pl->out = qr_arena_calloc(q->qa, 5, sizeof *pl->out);
    pl->out_names = qr_arena_calloc(q->qa, 5, sizeof *pl->out_names);
    pl->order = qr_arena_calloc(q->qa, 1, sizeof *pl->order);
    pl->order_desc = qr_arena_calloc(q->qa, 1, sizeof *pl->order_desc);
    if (!pl->out || !pl->out_names || !pl->order || !pl->order_desc) return exec_over_budget(q);
    for (int idx = 0; idx < 5; idx++) {
        pl->out[idx] = col_ref(q, cols[idx], log->pos);
        if (!pl->out[idx]) return exec_over_budget(q);
        pl->out_names[idx] = names[idx];
    }
    pl->out_count = 5;
    pl->order[0] = col_ref(q, COL_TS, log->pos);
    if (!pl->order[0]) return exec_over_budget(q);
    pl->order_desc[0] = true;
    pl->order_count = 1;
    pl->ts_order = -1;
    pl->limit = q->opts.logql_limit ? q->opts.logql_limit : EXEC_DEFAULT_LOGQL_LIMIT;
    return 0;
}

static int bind_metric(exec_ctx *q, plan *pl, const sql_lq_metric *m)
{
    const sql_lq_metric *range = m, *vec = NULL;
    if (!m->is_range) {
        vec = m;
        range = m->inner;
        if (strcmp(vec->func, "sum") != 0)
            return exec_error_at(q, vec->pos, QR_ESYNTAX, "%s(...) is not supported yet; sum is",
                                 vec->func);
        if (vec->grouping == SQL_LQ_GROUP_WITHOUT)
            return exec_error_at(q, vec->pos, QR_ESYNTAX, "without (...) is not supported yet");
        if (!range || !range->is_range)
            return exec_error_at(q, range ? range->pos : vec->pos, QR_ESYNTAX,
                                 "nested vector aggregations are not supported yet");
    }
    agg_spec spec = {0};
    if (strcmp(range->func, "count_over_time") == 0) {
        spec.fn = AGG_COUNT_STAR;
    } else if (strcmp(range->func, "rate") == 0) {
        spec.fn = AGG_RATE;
        spec.per_s = (double)range->range_ns / 1e9;
    } else {
        return exec_error_at(q, range->pos, QR_ESYNTAX,
                             "%s is not supported yet; count_over_time and rate are", range->func);
    }
    pl->kind = PLAN_AGG;
    int rc = log_filters(q, pl, range->log);
    if (rc) return rc;
    static const char *const stream[] = {"service", "level", "host"};
    uint32_t label_count = vec ? vec->label_count : 3;
    const char *const *labels = vec ? vec->labels : stream;
    uint32_t n = label_count + 1;
    pl->groups = qr_arena_calloc(q->qa, n, sizeof *pl->groups);
    pl->out = qr_arena_calloc(q->qa, n + 1, sizeof *pl->out);
    pl->out_names = qr_arena_calloc(q->qa, n + 1, sizeof *pl->out_names);
    pl->aggs = qr_arena_calloc(q->qa, 1, sizeof *pl->aggs);
    bx *bucket = bx_new(q, BX_CALL, range->range_pos);
    bx **args = qr_arena_calloc(q->qa, 1, sizeof *args);
    if (!pl->groups || !pl->out || !pl->out_names || !pl->aggs || !bucket || !args)
        return exec_over_budget(q);
    args[0] = col_ref(q, COL_TS, range->range_pos);
    if (!args[0]) return exec_over_budget(q);
    bucket->fn = FN_BUCKET;
    bucket->items = args;
    bucket->n = 1;
    bucket->width_ns = range->range_ns;
    bucket->cols = CM_BIT(COL_TS);
    bucket->type = EXEC_TS;
    pl->groups[0] = bucket;
    for (uint32_t idx = 0; idx < label_count; idx++) {
        rc = label_ref(q, labels[idx], vec ? vec->pos : range->pos, &pl->groups[idx + 1]);
        if (rc) return rc;
    }
    pl->group_count = n;
    pl->aggs[0] = spec;
    pl->agg_count = 1;
    for (uint32_t idx = 0; idx <= n; idx++) {
        bx *x = bx_new(q, idx < n ? BX_GROUP : BX_AGG, m->pos);
        if (!x) return exec_over_budget(q);
        x->slot = idx < n ? (int)idx : 0;
        x->cols = CM_AGG;
        pl->out[idx] = x;
        pl->out_names[idx] = idx == 0 ? "t" : idx < n ? labels[idx - 1] : "value";
    }
    pl->out_count = n + 1;
    bind_meta_ok(pl);
    return 0;
}

int bind_logql(exec_ctx *q, const sql_logql *l, plan **out)
{
    plan *pl = plan_new(q);
    if (!pl) return exec_over_budget(q);
    q->pl = pl;
    q->lenient_fields = true;
    pl->label = "LogQL";
    int rc = l->log ? bind_log(q, pl, l->log) : bind_metric(q, pl, l->metric);
    if (rc) return rc;
    *out = pl;
    return 0;
}

/* logql — LogQL queries onto the same plans as SQL.
 *
 *   {sel} |= "a" != "b" |~ "re" | f > 3     → SELECT ts, service, level, host, msg FROM logs
 *                                             WHERE <matchers AND stages> ORDER BY ts DESC
 *                                             LIMIT opts.logql_limit (100)
 *   ... | json | logfmt                       later names are also extracted from msg
 *                                             (lq_extract.c); | line_format "..." replaces
 *                                             the msg column of a log query
 *   count_over_time({sel} ... [d])           → SELECT bucket(ts, d) AS t, service, level, host,
 *                                             count(*) AS value ... GROUP BY t, service, level,
 *                                             host
 *   rate(... [d])                            → the same with count / d-in-seconds
 *   sum_over_time(... | unwrap f [d])        → sum(number(f)); avg / min / max likewise;
 *   quantile_over_time(q, ... | unwrap f [d]) → quantile(number(f), q)
 *   sum by (l1, l2) (count_over_time(...))   → GROUP BY t, l1, l2 (sums of counts or sums,
 *                                             min of mins, max of maxes: one aggregation)
 *   avg / min / max / count / sum by (...) (X) otherwise: X per series, then the vector
 *                                             aggregation over series per (t, labels)
 *                                             (op_lqvec.c)
 *   topk(k, X), bottomk(k, X)                → the k series with the largest / smallest value
 *                                             per t
 * Windows are tumbling: one row per d-wide bucket (the step equals the range), aligned to the
 * epoch. Series are the stream labels service, level and host. Fields named in LogQL filters
 * or `by (...)` that no part has are NULL rather than errors (Loki's behaviour). */
#include "engine/exec_int.h"

#include <string.h>

typedef struct lq_bound {
    bx *line_format; /* last | line_format, or NULL */
    bx *unwrap;      /* number(field) of the last | unwrap, or NULL */
} lq_bound;

static int field_ref(exec_ctx *q, const char *name, size_t len, sql_pos pos, bx **out)
{
    sql_expr *e = qr_arena_calloc(q->qa, 1, sizeof *e);
    if (!e) return exec_over_budget(q);
    e->kind = SQL_EXPR_FIELD;
    e->pos = pos;
    e->depth = 1;
    e->u.name.s = name;
    e->u.name.len = (uint32_t)len;
    return bind_expr(q, e, out);
}

static int log_filters(exec_ctx *q, plan *pl, const sql_lq_log *log, lq_bound *lb)
{
    uint32_t cap = log->matcher_count + log->stage_count;
    bx **items = qr_arena_calloc(q->qa, cap + 1, sizeof *items);
    if (!items) return exec_over_budget(q);
    uint32_t n = 0;
    q->lq_parsers = 0;
    for (uint32_t idx = 0; idx < log->matcher_count; idx++) {
        int rc = bind_expr(q, log->matchers[idx], &items[n++]);
        if (rc) return rc;
    }
    for (uint32_t idx = 0; idx < log->stage_count; idx++) {
        const sql_lq_stage *st = &log->stages[idx];
        int rc = 0;
        switch (st->kind) {
        case SQL_LQ_LINE_FILTER:
        case SQL_LQ_LABEL_FILTER:
            rc = bind_expr(q, st->filter, &items[n++]);
            break;
        case SQL_LQ_JSON:
        case SQL_LQ_LOGFMT:
            q->lq_parsers =
                (uint8_t)(q->lq_parsers << 4 |
                          (st->kind == SQL_LQ_JSON ? LQ_PARSER_JSON : LQ_PARSER_LOGFMT));
            break;
        case SQL_LQ_LINE_FORMAT:
            rc = lq_line_format_bind(q, st->text, st->text_len, st->pos, &lb->line_format);
            break;
        case SQL_LQ_UNWRAP: {
            bx *f, *num = bx_new(q, BX_CALL, st->pos);
            if (!num) return exec_over_budget(q);
            rc = field_ref(q, st->text, st->text_len, st->pos, &f);
            if (rc) return rc;
            num->items = qr_arena_calloc(q->qa, 1, sizeof *num->items);
            if (!num->items) return exec_over_budget(q);
            num->fn = FN_NUMBER;
            num->items[0] = f;
            num->n = 1;
            num->cols = f->cols;
            num->type = EXEC_FLOAT;
            lb->unwrap = num;
            break;
        }
        }
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
        x->type = col == COL_TS ? EXEC_TS : col == COL_LEVEL ? EXEC_LEVEL : EXEC_STRING;
    }
    return x;
}

static int bind_log(exec_ctx *q, plan *pl, const sql_lq_log *log)
{
    static const int cols[] = {COL_TS, COL_SERVICE, COL_LEVEL, COL_HOST, COL_MSG};
    static const char *const names[] = {"ts", "service", "level", "host", "msg"};
    pl->kind = PLAN_ROWS;
    lq_bound lb = {0};
    int rc = log_filters(q, pl, log, &lb);
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
    if (lb.line_format) pl->out[4] = lb.line_format;
    pl->out_count = 5;
    pl->order[0] = col_ref(q, COL_TS, log->pos);
    if (!pl->order[0]) return exec_over_budget(q);
    pl->order_desc[0] = true;
    pl->order_count = 1;
    pl->ts_order = -1;
    pl->limit = q->opts.logql_limit ? q->opts.logql_limit : EXEC_DEFAULT_LOGQL_LIMIT;
    return 0;
}

static bool is_vec_fn(const char *f)
{
    return strcmp(f, "sum") == 0 || strcmp(f, "avg") == 0 || strcmp(f, "min") == 0 ||
           strcmp(f, "max") == 0 || strcmp(f, "count") == 0;
}

static bool is_topk(const char *f) { return strcmp(f, "topk") == 0 || strcmp(f, "bottomk") == 0; }

/* The range aggregation's aggregate. */
static int range_spec(exec_ctx *q, const sql_lq_metric *range, const lq_bound *lb, agg_spec *spec)
{
    static const struct {
        const char *name;
        agg_fn fn;
    } unwrapped[] = {{"sum_over_time", AGG_SUM},
                     {"avg_over_time", AGG_AVG},
                     {"min_over_time", AGG_MIN},
                     {"max_over_time", AGG_MAX},
                     {"quantile_over_time", AGG_QUANTILE}};
    memset(spec, 0, sizeof *spec);
    if (strcmp(range->func, "count_over_time") == 0 && !lb->unwrap) {
        spec->fn = AGG_COUNT_STAR;
        return 0;
    }
    if (strcmp(range->func, "rate") == 0 && !lb->unwrap) {
        spec->fn = AGG_RATE;
        spec->per_s = (double)range->range_ns / 1e9;
        return 0;
    }
    for (size_t idx = 0; idx < sizeof unwrapped / sizeof unwrapped[0]; idx++) {
        if (strcmp(range->func, unwrapped[idx].name) != 0) continue;
        if (!lb->unwrap)
            return exec_error_at(q, range->pos, QR_ESYNTAX, "%s needs | unwrap field", range->func);
        spec->fn = unwrapped[idx].fn;
        spec->arg = lb->unwrap;
        spec->q = range->param;
        return 0;
    }
    return exec_error_at(q, range->pos, QR_ESYNTAX,
                         "%s is not supported yet; count_over_time, rate and sum/avg/min/max/"
                         "quantile_over_time are",
                         range->func);
}

static int bind_metric(exec_ctx *q, plan *pl, const sql_lq_metric *m)
{
    /* the chain outside in: [topk|bottomk] [vector aggregation] range aggregation */
    const sql_lq_metric *top = NULL, *vec = NULL, *range = m;
    if (!range->is_range && is_topk(range->func)) {
        top = range;
        range = range->inner;
    }
    if (range && !range->is_range) {
        vec = range;
        range = range->inner;
        if (!is_vec_fn(vec->func) && !is_topk(vec->func))
            return exec_error_at(q, vec->pos, QR_ESYNTAX,
                                 "%s(...) is not supported yet; sum, avg, min, max, count, topk "
                                 "and bottomk are",
                                 vec->func);
        if (vec->grouping == SQL_LQ_GROUP_WITHOUT)
            return exec_error_at(q, vec->pos, QR_ESYNTAX, "without (...) is not supported yet");
    }
    if (top && top->grouping != SQL_LQ_GROUP_NONE)
        return exec_error_at(q, top->pos, QR_ESYNTAX, "%s by (...) is not supported yet",
                             top->func);
    if (!range || !range->is_range || (vec && is_topk(vec->func)))
        return exec_error_at(q, range ? range->pos : m->pos, QR_ESYNTAX,
                             "this nesting of vector aggregations is not supported yet");
    pl->kind = PLAN_AGG;
    lq_bound lb = {0};
    int rc = log_filters(q, pl, range->log, &lb);
    if (rc) return rc;
    agg_spec spec;
    rc = range_spec(q, range, &lb, &spec);
    if (rc) return rc;
    /* one aggregation when the vector function merges the range function's states */
    bool direct = !vec;
    if (vec) {
        const char *v = vec->func;
        direct = (strcmp(v, "sum") == 0 &&
                  (spec.fn == AGG_COUNT_STAR || spec.fn == AGG_RATE || spec.fn == AGG_SUM)) ||
                 (strcmp(v, "min") == 0 && spec.fn == AGG_MIN) ||
                 (strcmp(v, "max") == 0 && spec.fn == AGG_MAX);
    }
    static const char *const stream[] = {"service", "level", "host"};
    const char *labels[64];
    uint32_t label_count = 0;
    if (!direct || !vec)
        for (int idx = 0; idx < 3; idx++) labels[label_count++] = stream[idx];
    for (uint32_t idx = 0; vec && idx < vec->label_count; idx++) {
        bool dup = false;
        for (uint32_t k = 0; k < label_count && !dup; k++)
            dup = !strcmp(labels[k], vec->labels[idx]);
        if (dup) continue;
        if (label_count == 64)
            return exec_error_at(q, vec->pos, QR_ESYNTAX, "too many labels in by (...)");
        labels[label_count++] = vec->labels[idx];
    }
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
        rc = field_ref(q, labels[idx], strlen(labels[idx]), vec ? vec->pos : range->pos,
                       &pl->groups[idx + 1]);
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
    if (!direct || top) {
        lq_post *post = qr_arena_calloc(q->qa, 1, sizeof *post);
        if (!post) return exec_over_budget(q);
        if (!direct) {
            post->vec_fn = vec->func;
            post->by_count = vec->label_count;
            post->by_cols = qr_arena_calloc(q->qa, vec->label_count + 1, sizeof *post->by_cols);
            if (!post->by_cols) return exec_over_budget(q);
            for (uint32_t idx = 0; idx < vec->label_count; idx++)
                for (uint32_t k = 0; k < label_count; k++)
                    if (!strcmp(labels[k], vec->labels[idx])) post->by_cols[idx] = k + 1;
        }
        if (top)
            post->topk =
                strcmp(top->func, "topk") == 0 ? (int64_t)top->param : -(int64_t)top->param;
        pl->lq_post = post;
    }
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

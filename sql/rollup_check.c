/* rollup_check — the shape of CREATE ROLLUP, checked at parse time (no catalog needed).
 *
 * A rollup is `SELECT bucket(ts, d) [AS t], <labels>, <aggregates> FROM logs [WHERE ...]
 * GROUP BY <the bucket>, <labels> [WITH (retention = d, lateness = d)]`:
 *   - exactly one select item is bucket(ts, d): the time column (named by its alias, else "t");
 *   - every other item is a bare label (service, host, level or a field) or an aggregate call;
 *     labels cannot be ts, ingest_ts or msg;
 *   - GROUP BY (by expression, alias or ordinal) names exactly the bucket and the labels;
 *   - no HAVING, ORDER BY, LIMIT or OFFSET; column names are unique;
 *   - options: retention (a positive duration), lateness (a duration, 0 allowed).
 * Which aggregates are supported, unknown fields and duplicate rollup names are checked when
 * the rollup is created (engine/rollup.c), where the catalog is known. */
#include "sql/sql_int.h"

#include <string.h>

static bool is_bucket(const sql_expr *e)
{
    return e->kind == SQL_EXPR_CALL && strcmp(e->u.call.name, "bucket") == 0;
}

static bool is_agg(const sql_expr *e)
{
    return e->kind == SQL_EXPR_CALL && e->u.call.func && e->u.call.func->is_aggregate;
}

static bool name_is(const sql_expr *e, const char *name)
{
    return e->kind == SQL_EXPR_FIELD && e->u.name.len == strlen(name) &&
           memcmp(e->u.name.s, name, e->u.name.len) == 0;
}

/* The select item a GROUP BY key names (ordinal, alias, same label or the bucket), or -1. */
static int group_item(const sql_select *s, const sql_expr *g)
{
    if (g->kind == SQL_EXPR_INT) return (int)g->u.i - 1; /* range checked by check_select */
    for (uint32_t idx = 0; idx < s->item_count; idx++) {
        const sql_select_item *it = &s->items[idx];
        if (g->kind == SQL_EXPR_FIELD && it->alias && strlen(it->alias) == g->u.name.len &&
            memcmp(it->alias, g->u.name.s, g->u.name.len) == 0)
            return (int)idx;
    }
    for (uint32_t idx = 0; idx < s->item_count; idx++) {
        const sql_expr *e = s->items[idx].expr;
        if (g->kind == SQL_EXPR_FIELD && e->kind == SQL_EXPR_FIELD &&
            e->u.name.len == g->u.name.len && memcmp(e->u.name.s, g->u.name.s, g->u.name.len) == 0)
            return (int)idx;
        if (is_bucket(g) && is_bucket(e)) return (int)idx;
    }
    return -1;
}

static const char *item_column(const sql_select_item *it)
{
    if (it->alias) return it->alias;
    if (it->expr->kind == SQL_EXPR_FIELD) return it->expr->u.name.s;
    if (is_bucket(it->expr)) return "t";
    return NULL; /* an aggregate without alias: its canonical text, never a clash with names */
}

static int check_options(parse_ctx *ctx, const sql_rollup *r)
{
    for (uint32_t idx = 0; idx < r->option_count; idx++) {
        const sql_option *o = &r->options[idx];
        bool retention = strcmp(o->key, "retention") == 0;
        bool lateness = strcmp(o->key, "lateness") == 0;
        if (!retention && !lateness)
            return parse_error_at(ctx, o->pos, QR_ESYNTAX,
                                  "unknown rollup option \"%s\" (options: retention, lateness)",
                                  o->key);
        for (uint32_t k = 0; k < idx; k++)
            if (strcmp(r->options[k].key, o->key) == 0)
                return parse_error_at(ctx, o->pos, QR_ESYNTAX, "option \"%s\" is given twice",
                                      o->key);
        const sql_expr *v = o->value;
        bool ok = v->kind == SQL_EXPR_DURATION &&
                  (retention ? v->u.duration_ns > 0 : v->u.duration_ns >= 0);
        if (lateness && v->kind == SQL_EXPR_INT && v->u.i == 0) ok = true;
        if (!ok)
            return parse_error_at(ctx, v->pos, QR_ESYNTAX, "%s must be a %s duration, like %s",
                                  o->key, retention ? "positive" : "non-negative",
                                  retention ? "90d" : "1m");
    }
    return 0;
}

int check_rollup(parse_ctx *ctx, const sql_rollup *r)
{
    const sql_select *s = r->select;
    if (!s->from || strcmp(s->from, "logs") != 0)
        return parse_error_at(ctx, s->from ? s->from_pos : s->pos, QR_ESYNTAX,
                              "a rollup reads FROM logs");
    if (s->having)
        return parse_error_at(ctx, s->having->pos, QR_ESYNTAX, "a rollup cannot have HAVING");
    if (s->order_count)
        return parse_error_at(ctx, s->order_by[0].expr->pos, QR_ESYNTAX,
                              "a rollup cannot have ORDER BY");
    if (s->limit >= 0 || s->offset >= 0)
        return parse_error_at(ctx, s->pos, QR_ESYNTAX, "a rollup cannot have LIMIT or OFFSET");
    int bucket_idx = -1;
    for (uint32_t idx = 0; idx < s->item_count; idx++) {
        const sql_select_item *it = &s->items[idx];
        const sql_expr *e = it->expr;
        if (is_bucket(e)) {
            if (bucket_idx >= 0)
                return parse_error_at(ctx, e->pos, QR_ESYNTAX,
                                      "a rollup has one time column bucket(ts, d)");
            if (!name_is(e->u.call.args[0], "ts"))
                return parse_error_at(ctx, e->u.call.args[0]->pos, QR_ESYNTAX,
                                      "a rollup buckets ts: bucket(ts, 5m)");
            bucket_idx = (int)idx;
        } else if (e->kind == SQL_EXPR_FIELD) {
            if (name_is(e, "ts") || name_is(e, "ingest_ts") || name_is(e, "msg"))
                return parse_error_at(ctx, e->pos, QR_ESYNTAX,
                                      "%s cannot be a rollup label (labels: service, host, level "
                                      "or a field)",
                                      e->u.name.s);
        } else if (!is_agg(e)) {
            return parse_error_at(ctx, e->pos, QR_ESYNTAX,
                                  "a rollup column is bucket(ts, d), a label or an aggregate");
        } else if (strcmp(e->u.call.name, "rate") == 0) {
            return parse_error_at(ctx, e->pos, QR_ESYNTAX,
                                  "rate() cannot be stored in a rollup (store count(*) and "
                                  "divide by the interval)");
        }
        const char *col = item_column(it);
        for (uint32_t k = 0; col && k < idx; k++) {
            const char *other = item_column(&s->items[k]);
            if (other && strcmp(other, col) == 0)
                return parse_error_at(ctx, it->alias ? it->alias_pos : e->pos, QR_ESYNTAX,
                                      "column \"%s\" appears twice in the rollup", col);
        }
    }
    if (bucket_idx < 0)
        return parse_error_at(ctx, s->pos, QR_ESYNTAX,
                              "a rollup needs bucket(ts, <interval>) in its select list and "
                              "GROUP BY");
    bool grouped[SQL_MAX_DEPTH * 8] = {false};
    if (s->item_count > sizeof grouped)
        return parse_error_at(ctx, s->pos, QR_ELIMIT, "too many rollup columns");
    for (uint32_t k = 0; k < s->group_count; k++) {
        const sql_expr *g = s->group_by[k];
        int idx = group_item(s, g);
        if (idx < 0 || is_agg(s->items[idx].expr))
            return parse_error_at(ctx, g->pos, QR_ESYNTAX,
                                  "a rollup groups by its bucket and labels, each selected");
        grouped[idx] = true;
    }
    for (uint32_t idx = 0; idx < s->item_count; idx++) {
        const sql_expr *e = s->items[idx].expr;
        if (is_agg(e) || grouped[idx]) continue;
        if (is_bucket(e))
            return parse_error_at(ctx, e->pos, QR_ESYNTAX, "the bucket must appear in GROUP BY");
        return parse_error_at(ctx, e->pos, QR_ESYNTAX,
                              "\"%s\" must appear in GROUP BY or inside an aggregate", e->u.name.s);
    }
    return check_options(ctx, r);
}

/* op_lqvec — LogQL vector aggregations and topk/bottomk over the rows of a range aggregation.
 *
 * The range aggregation (op_agg.c) leaves one row per (t, series labels..., value). A vector
 * aggregation `f by (l...)` groups those rows by (t, l...) and applies f across series: sum,
 * avg, min, max of the values, count of the series (NULL values are skipped). topk(k) /
 * bottomk(k) keep, per t, the k rows with the largest / smallest value (ties by labels).
 * Both sort the (small) result in memory: rows are series × steps, not events. */
#include "engine/exec_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct vec_sort {
    uint32_t key_count;
    const uint32_t *key_cols;
    uint32_t value_col; /* UINT32_MAX: keys only */
    int value_dir;      /* -1 descending, 1 ascending */
} vec_sort;

static int row_cmp(const void *a, const void *b, void *ctx)
{
    const vec_sort *vs = ctx;
    const exec_value *x = *(const exec_value *const *)a, *y = *(const exec_value *const *)b;
    int c = ev_cmp(&x[0], &y[0]); /* t first */
    if (c) return c;
    if (vs->value_col != UINT32_MAX) {
        c = ev_cmp(&x[vs->value_col], &y[vs->value_col]);
        if (c) return c * vs->value_dir;
    }
    for (uint32_t k = 0; k < vs->key_count; k++) {
        c = ev_cmp(&x[vs->key_cols[k]], &y[vs->key_cols[k]]);
        if (c) return c;
    }
    return 0;
}

static bool num_of(const exec_value *v, double *out)
{
    if (v->type == EXEC_INT)
        *out = (double)v->v.i;
    else if (v->type == EXEC_FLOAT)
        *out = v->v.f;
    else
        return false;
    return true;
}

static int set_columns(exec_ctx *q, uint32_t n, const char **names)
{
    plan *pl = q->pl;
    bx **out = qr_arena_calloc(q->qa, n + 1, sizeof *out);
    if (!out) return exec_over_budget(q);
    for (uint32_t col = 0; col < n; col++) {
        out[col] = bx_new(q, BX_CONST, (sql_pos){0});
        if (!out[col]) return exec_over_budget(q);
        out[col]->type = col == 0 ? EXEC_TS : col + 1 == n ? EXEC_FLOAT : EXEC_STRING;
    }
    pl->out = out;
    pl->out_names = names;
    pl->out_count = n;
    return 0;
}

static int vec_aggregate(exec_ctx *q, exec_result *r, const lq_post *post)
{
    plan *pl = q->pl;
    uint32_t in_cols = pl->out_count, value_col = in_cols - 1;
    exec_value **rows = qr_arena_alloc(q->qa, (r->row_count + 1) * sizeof *rows);
    uint32_t out_cols = post->by_count + 2;
    exec_value *cells = qr_arena_calloc(q->qa, r->row_count * out_cols + 1, sizeof *cells);
    const char **names = qr_arena_calloc(q->qa, out_cols + 1, sizeof *names);
    if (!rows || !cells || !names) return exec_over_budget(q);
    for (uint64_t idx = 0; idx < r->row_count; idx++) rows[idx] = &r->cells[idx * in_cols];
    vec_sort vs = {post->by_count, post->by_cols, UINT32_MAX, 1};
    qsort_r(rows, r->row_count, sizeof *rows, row_cmp, &vs);
    names[0] = "t";
    for (uint32_t k = 0; k < post->by_count; k++) names[k + 1] = pl->out_names[post->by_cols[k]];
    names[out_cols - 1] = "value";
    const char *f = post->vec_fn;
    uint64_t out_rows = 0;
    for (uint64_t start = 0; start < r->row_count;) {
        uint64_t end = start + 1;
        while (end < r->row_count && row_cmp(&rows[start], &rows[end], &vs) == 0) end++;
        double acc = 0;
        int64_t n = 0;
        bool all_int = true;
        for (uint64_t idx = start; idx < end; idx++) {
            double v;
            if (!num_of(&rows[idx][value_col], &v)) continue;
            all_int &= rows[idx][value_col].type == EXEC_INT;
            if (n == 0 || !strcmp(f, "sum") || !strcmp(f, "avg"))
                acc = n == 0 ? v : acc + v;
            else if (!strcmp(f, "min") && v < acc)
                acc = v;
            else if (!strcmp(f, "max") && v > acc)
                acc = v;
            n++;
        }
        exec_value *o = &cells[out_rows * out_cols];
        o[0] = rows[start][0];
        for (uint32_t k = 0; k < post->by_count; k++) o[k + 1] = rows[start][post->by_cols[k]];
        exec_value val = {.type = EXEC_FLOAT};
        if (!strcmp(f, "count"))
            val = ev_int(EXEC_INT, n);
        else if (n == 0)
            val = ev_null();
        else if (!strcmp(f, "avg"))
            val.v.f = acc / (double)n;
        else if (all_int && fabs(acc) < 9e15)
            val = ev_int(EXEC_INT, (int64_t)acc);
        else
            val.v.f = acc;
        o[out_cols - 1] = val;
        out_rows++;
        start = end;
    }
    r->cells = cells;
    r->row_count = out_rows;
    return set_columns(q, out_cols, names);
}

static int topk_filter(exec_ctx *q, exec_result *r, int64_t k)
{
    plan *pl = q->pl;
    uint32_t cols = pl->out_count;
    uint64_t keep = (uint64_t)(k < 0 ? -k : k);
    exec_value **rows = qr_arena_alloc(q->qa, (r->row_count + 1) * sizeof *rows);
    uint32_t *labels = qr_arena_calloc(q->qa, cols + 1, sizeof *labels);
    exec_value *cells = qr_arena_calloc(q->qa, r->row_count * cols + 1, sizeof *cells);
    if (!rows || !labels || !cells) return exec_over_budget(q);
    for (uint32_t col = 1; col + 1 < cols; col++) labels[col - 1] = col;
    for (uint64_t idx = 0; idx < r->row_count; idx++) rows[idx] = &r->cells[idx * cols];
    vec_sort vs = {cols - 2, labels, cols - 1, k > 0 ? -1 : 1};
    qsort_r(rows, r->row_count, sizeof *rows, row_cmp, &vs);
    uint64_t out_rows = 0, in_step = 0;
    for (uint64_t idx = 0; idx < r->row_count; idx++) {
        if (idx == 0 || ev_cmp(&rows[idx][0], &rows[idx - 1][0]) != 0) in_step = 0;
        /* NULL values sort first ascending: never among the k */
        if (rows[idx][cols - 1].type == EXEC_NULL || in_step >= keep) continue;
        memcpy(&cells[out_rows * cols], rows[idx], cols * sizeof *cells);
        out_rows++;
        in_step++;
    }
    r->cells = cells;
    r->row_count = out_rows;
    return 0;
}

int lq_post_run(exec_ctx *q, exec_result *r)
{
    const lq_post *post = q->pl->lq_post;
    int rc = 0;
    if (post->vec_fn) rc = vec_aggregate(q, r, post);
    if (!rc && post->topk) rc = topk_filter(q, r, post->topk);
    return rc;
}

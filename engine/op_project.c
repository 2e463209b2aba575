/* op_project — the row pipeline: scan → filter → top-k/sort on the ORDER BY keys → OFFSET/LIMIT
 * → output columns for the winning rows only (late materialization).
 *
 * Winners are grouped by block; each block is opened once more and only the columns the
 * output needs are read (messages only for the winning rows). With ORDER BY ts (the default
 * for row queries is ts DESC), blocks are visited newest first and the scan stops once the
 * k-th best ts is newer than every block left. */
#include "engine/exec_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct rows_ctx {
    exec_ctx *q;
    op_topk *topk;
    exec_value *keys;
    bool keys_need_msg;
    /* a top-k shared by the workers (bounded top-k): pushes and reads under mu; its memory
     * and diag are its own (shared_q) */
    pthread_mutex_t *mu;
    exec_ctx *shared_q;
    bool keys_need_ts; /* a few rows' ts decode alone (blk_need_ts) */
} rows_ctx;

/* <0 when keys a come before keys b in the plan's order, 0 when equal. */
static int keys_order(const plan *pl, const exec_value *a, const exec_value *b)
{
    for (uint32_t k = 0; k < pl->order_count; k++) {
        int c = ev_cmp(&a[k], &b[k]);
        if (c) return pl->order_desc[k] ? -c : c;
    }
    return 0;
}

/* Shared top-k: the block's keys first, then one lock for all its pushes. */
static int rows_sink_shared(rows_ctx *rc, blk_ctx *bc, const uint32_t *sel, uint32_t n)
{
    exec_ctx *q = rc->q;
    plan *pl = q->pl;
    uint32_t kc = pl->order_count;
    exec_value *keys = qr_arena_alloc(&q->scratch, ((size_t)n * kc + 1) * sizeof *keys);
    uint32_t *rows = qr_arena_alloc(&q->scratch, ((size_t)n + 1) * sizeof *rows);
    if (!keys || !rows) return exec_over_budget(q);
    uint32_t m = 0;
    for (uint32_t idx = 0; idx < n; idx++) {
        exec_value *k = &keys[(size_t)m * kc];
        for (uint32_t ki = 0; ki < kc; ki++) k[ki] = ev_eval(pl->order[ki], bc, sel[idx]);
        if (bc->err) return bc->err;
        if (q->has_cursor && keys_order(pl, k, q->cursor.keys) < 0) continue;
        rows[m++] = sel[idx];
    }
    int err = 0;
    pthread_mutex_lock(rc->mu);
    for (uint32_t idx = 0; idx < m && !err; idx++)
        err =
            op_topk_push(rc->topk, &keys[(size_t)idx * kc], bc->pc->idx, bc->block_idx, rows[idx]);
    if (err && q->d && rc->shared_q->d) *q->d = *rc->shared_q->d;
    pthread_mutex_unlock(rc->mu);
    return err;
}

static int rows_sink(void *ctx, blk_ctx *bc, const uint32_t *sel, uint32_t n)
{
    rows_ctx *rc = ctx;
    exec_ctx *q = rc->q;
    plan *pl = q->pl;
    if (rc->keys_need_msg && blk_need_msgs(bc, sel, n)) return bc->err;
    if (rc->keys_need_ts && blk_need_ts(bc, sel, n)) return bc->err;
    if (rc->mu) return rows_sink_shared(rc, bc, sel, n);
    for (uint32_t idx = 0; idx < n; idx++) {
        for (uint32_t k = 0; k < pl->order_count; k++)
            rc->keys[k] = ev_eval(pl->order[k], bc, sel[idx]);
        if (bc->err) return bc->err;
        /* a later page: rows before the cursor were returned already */
        if (q->has_cursor && keys_order(pl, rc->keys, q->cursor.keys) < 0) continue;
        int err = op_topk_push(rc->topk, rc->keys, bc->pc->idx, bc->block_idx, sel[idx]);
        if (err) return err;
    }
    return 0;
}

static bool rows_worst_ts(void *ctx, int64_t *out)
{
    rows_ctx *rc = ctx;
    if (rc->mu) pthread_mutex_lock(rc->mu);
    const exec_value *worst = op_topk_worst_key(rc->topk);
    bool ok = worst && worst->type == EXEC_TS;
    if (ok) *out = worst->v.i;
    if (rc->mu) pthread_mutex_unlock(rc->mu);
    return ok;
}

static int by_location(const void *a, const void *b)
{
    const row_ref *x = *(row_ref *const *)a, *y = *(row_ref *const *)b;
    if (x->part_idx != y->part_idx) return x->part_idx < y->part_idx ? -1 : 1;
    if (x->block_idx != y->block_idx) return x->block_idx < y->block_idx ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

static bool exprs_need_msg(bx **exprs, uint32_t n)
{
    for (uint32_t idx = 0; idx < n; idx++)
        if (exprs[idx]->cols & CM_BIT(COL_MSG)) return true;
    return false;
}

/* A later page: the cursor must fit the plan; with ORDER BY ts its ts bounds the scan. */
static int cursor_apply(exec_ctx *q)
{
    plan *pl = q->pl;
    const exec_cursor *c = &q->cursor;
    if (c->key_count != pl->order_count || c->skip > (uint64_t)INT64_MAX / 2)
        return qr_diag_set(q->d, QR_EINVAL, "invalid cursor: it does not fit this query");
    if (pl->ts_order && c->keys[0].type == EXEC_TS) {
        if (pl->ts_order < 0 && c->keys[0].v.i < pl->ts_hi) pl->ts_hi = c->keys[0].v.i;
        if (pl->ts_order > 0 && c->keys[0].v.i > pl->ts_lo) pl->ts_lo = c->keys[0].v.i;
    }
    return 0;
}

/* next_cursor after rows[last]: its keys and how many rows up to it share them (earlier
 * pages' included: they are in rows[] too, kept by the sink and skipped at the start). */
static int cursor_next(exec_ctx *q, const row_ref *rows, uint64_t last, exec_result *r)
{
    plan *pl = q->pl;
    exec_cursor c = {q->query_hash, q->now_ns, pl->order_count, rows[last].keys, 0};
    for (uint64_t idx = last + 1; idx-- > 0;) {
        if (keys_order(pl, rows[idx].keys, rows[last].keys) != 0) break;
        c.skip++;
    }
    return cursor_encode(q, &c, &r->next_cursor);
}

typedef struct mat_ctx {
    exec_result *r;
    row_ref **order; /* the output rows by location */
    uint64_t count;
    uint64_t *groups; /* order index where each block's rows start; [group_count] = count */
    uint64_t group_count;
    bool need_msg;
    uint8_t *owner;           /* per order index: 1 when a worker other than 0 made its cells */
    const row_ref *first_row; /* the first output row: order[i] - first_row is its position */
    int *key_of_col;          /* per output column: the ORDER BY key with its value, or -1 */
    atomic_uint_fast64_t next;
} mat_ctx;

/* Output columns of the winners, a block at a time (taken from mc->next); values copied into
 * the worker's arena. */
static int materialize(exec_ctx *q, uint32_t w, void *arg)
{
    mat_ctx *mc = arg;
    plan *pl = q->pl;
    for (;;) {
        uint64_t gi = atomic_fetch_add(&mc->next, 1);
        if (gi >= mc->group_count) return 0;
        uint64_t start = mc->groups[gi], end = mc->groups[gi + 1];
        row_ref **order = mc->order;
        blk_ctx bc;
        blk_init(&bc, q, &q->parts[order[start]->part_idx], order[start]->block_idx);
        if (bc.err) return bc.err;
        uint32_t n = (uint32_t)(end - start);
        uint32_t *sel = qr_arena_alloc(&q->scratch, n * sizeof *sel);
        if (!sel) return exec_over_budget(q);
        for (uint32_t idx = 0; idx < n; idx++) sel[idx] = order[start + idx]->row;
        if (mc->need_msg && blk_need_msgs(&bc, sel, n)) return bc.err;
        for (uint64_t idx = start; idx < end; idx++) {
            uint64_t out_row = (uint64_t)(order[idx] - mc->first_row);
            exec_value *cells = &mc->r->cells[out_row * pl->out_count];
            bool ok = true;
            for (uint32_t col = 0; col < pl->out_count; col++) {
                /* a column that is also a sort key (ts): its value is in the row already */
                int k = mc->key_of_col[col];
                exec_value v =
                    k >= 0 ? order[idx]->keys[k] : ev_eval(pl->out[col], &bc, order[idx]->row);
                cells[col] = ev_copy(q->qa, &v, &ok);
            }
            if (!ok) return exec_over_budget(q);
            if (bc.err) return bc.err;
            mc->owner[idx] = w != 0;
        }
        qr_arena_reset(&q->scratch);
    }
}

typedef struct shared_topk {
    exec_ctx q; /* the query's context with the arena and diag below */
    qr_arena arena;
    qr_diag d;
    pthread_mutex_t mu;
} shared_topk;

static int run_rows_topk(exec_ctx *q, exec_result *r, uint64_t cap, uint64_t before,
                         shared_topk *sh);

int run_rows(exec_ctx *q, exec_result *r)
{
    plan *pl = q->pl;
    int err = 0;
    if (q->has_cursor && (err = cursor_apply(q))) return err;
    /* OFFSET + LIMIT rows (a later page: the cursor's skip instead of OFFSET), and one more
     * to know whether another page follows */
    uint64_t before = q->has_cursor ? q->cursor.skip : (uint64_t)pl->offset;
    uint64_t cap = UINT64_MAX;
    if (pl->limit >= 0) cap = (uint64_t)pl->limit + before + 1;
    if ((err = scan_workers_init(q))) return err;
    uint32_t nw = q->worker_count;
    /* A bounded top-k is shared by the workers (a block's pushes under one lock), so the
     * early-stop bound settles as soon as k rows are found among all of them; its memory is
     * its own arena, freed at the end. Otherwise one top-k per worker, merged into the
     * first. Either way the order is total (ties broken by part, block, row): the result is
     * the same whichever worker saw a row. */
    shared_topk sh;
    memset(&sh, 0, sizeof sh);
    bool shared = nw > 1 && cap != UINT64_MAX;
    if (shared) {
        sh.q = *q;
        qr_arena_init(&sh.arena, 16 * 1024, q->opts.mem_budget_bytes);
        qr_diag_init(&sh.d);
        sh.q.qa = &sh.arena;
        sh.q.d = &sh.d;
        pthread_mutex_init(&sh.mu, NULL);
    }
    err = run_rows_topk(q, r, cap, before, shared ? &sh : NULL);
    if (shared) {
        pthread_mutex_destroy(&sh.mu);
        qr_arena_fini(&sh.arena);
    }
    return err;
}

static int run_rows_topk(exec_ctx *q, exec_result *r, uint64_t cap, uint64_t before,
                         shared_topk *sh)
{
    plan *pl = q->pl;
    int err = 0;
    uint32_t nw = q->worker_count;
    rows_ctx *rcs = qr_arena_calloc(q->qa, nw, sizeof *rcs);
    void **ctxs = qr_arena_calloc(q->qa, nw, sizeof *ctxs);
    if (!rcs || !ctxs) return exec_over_budget(q);
    op_topk *shared = NULL;
    if (sh && (err = op_topk_new(&sh->q, pl->order_count, pl->order_desc, cap, &shared)))
        return err;
    for (uint32_t w = 0; w < nw; w++) {
        exec_ctx *wq = q->workers[w];
        rcs[w] = (rows_ctx){wq,
                            shared,
                            NULL,
                            exprs_need_msg(pl->order, pl->order_count),
                            sh ? &sh->mu : NULL,
                            sh ? &sh->q : NULL,
                            false};
        for (uint32_t k = 0; k < pl->order_count; k++)
            rcs[w].keys_need_ts |= (pl->order[k]->cols & CM_BIT(COL_TS)) != 0;
        if (!shared && (err = op_topk_new(wq, pl->order_count, pl->order_desc, cap, &rcs[w].topk)))
            return err;
        rcs[w].keys = qr_arena_calloc(wq->qa, pl->order_count + 1, sizeof *rcs[w].keys);
        if (!rcs[w].keys) return exec_over_budget(wq);
        ctxs[w] = &rcs[w];
    }
    scan_sink sink = {rows_sink, NULL, rows_worst_ts, ctxs};
    err = scan_run(q, &sink);
    if (err) return err;
    for (uint32_t w = 1; w < nw && !err && !shared; w++) {
        uint64_t n;
        const row_ref *wr = op_topk_finish(rcs[w].topk, &n);
        for (uint64_t idx = 0; idx < n && !err; idx++)
            err = op_topk_push(rcs[0].topk, wr[idx].keys, wr[idx].part_idx, wr[idx].block_idx,
                               wr[idx].row);
    }
    if ((err = scan_partial(q, err))) return err; /* over budget while merging: partial */

    uint64_t total;
    row_ref *rows = op_topk_finish(rcs[0].topk, &total);
    uint64_t first = 0;
    if (!q->has_cursor)
        first = before < total ? before : total;
    else /* the first rows may share the cursor's keys: skip those returned already */
        while (first < total && first < before &&
               keys_order(pl, rows[first].keys, q->cursor.keys) == 0)
            first++;
    uint64_t count = total - first;
    if (pl->limit >= 0 && count > (uint64_t)pl->limit) {
        count = (uint64_t)pl->limit;
        if (count && (err = cursor_next(q, rows, first + count - 1, r))) return err;
    }
    r->row_count = count;
    r->cells = qr_arena_calloc(q->qa, count * pl->out_count + 1, sizeof *r->cells);
    row_ref **order = qr_arena_alloc(q->qa, (count + 1) * sizeof *order);
    if (!r->cells || !order) return exec_over_budget(q);
    for (uint64_t idx = 0; idx < count; idx++) order[idx] = &rows[first + idx];
    qsort(order, count, sizeof *order, by_location);
    /* the winners' blocks, shared out among the workers (messages are most of the work) */
    mat_ctx mc = {r, order, count, NULL, 0, false, NULL, rows ? &rows[first] : NULL, NULL, 0};
    mc.groups = qr_arena_alloc(q->qa, (count + 1) * sizeof *mc.groups);
    mc.owner = qr_arena_calloc(q->qa, count + 1, 1);
    mc.key_of_col = qr_arena_alloc(q->qa, (pl->out_count + 1) * sizeof *mc.key_of_col);
    if (!mc.groups || !mc.owner || !mc.key_of_col) return exec_over_budget(q);
    for (uint32_t col = 0; col < pl->out_count; col++) {
        const bx *o = pl->out[col];
        mc.key_of_col[col] = -1;
        for (uint32_t k = 0; k < pl->order_count && mc.key_of_col[col] < 0; k++)
            if (o->kind == BX_COL && pl->order[k]->kind == BX_COL && pl->order[k]->col == o->col)
                mc.key_of_col[col] = (int)k;
        mc.need_msg = mc.need_msg || (mc.key_of_col[col] < 0 && (o->cols & CM_BIT(COL_MSG)));
    }
    for (uint64_t idx = 0; idx < count; idx++)
        if (idx == 0 || order[idx]->part_idx != order[idx - 1]->part_idx ||
            order[idx]->block_idx != order[idx - 1]->block_idx)
            mc.groups[mc.group_count++] = idx;
    mc.groups[mc.group_count] = count;
    atomic_init(&mc.next, 0);
    err = mc.group_count > 1 ? scan_parallel(q, materialize, &mc) : materialize(q, 0, &mc);
    if (err) return err;
    /* cells made by the other workers live in their arenas: copy them into the result's */
    for (uint64_t idx = 0; idx < count; idx++) {
        if (!mc.owner[idx]) continue;
        uint64_t out_row = (uint64_t)(order[idx] - mc.first_row);
        exec_value *cells = &r->cells[out_row * pl->out_count];
        bool ok = true;
        for (uint32_t col = 0; col < pl->out_count; col++)
            cells[col] = ev_copy(q->qa, &cells[col], &ok);
        if (!ok) return exec_over_budget(q);
    }
    return 0;
}

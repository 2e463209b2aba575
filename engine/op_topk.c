/* op_topk — sort / top-k over row references.
 *
 * Rows arrive as (sort keys, part, block, row). With a cap (OFFSET + LIMIT) the operator keeps
 * a binary heap whose root is the worst row kept, so each row costs O(log cap) and memory stays
 * at cap rows; without one it keeps every row and sorts at the end. Order: the keys (ASC/DESC
 * each, NULL first ascending) and then, for ties, the later part, block and row first, which
 * makes results deterministic for a given snapshot.
 * Only keys and references are kept: output columns are computed for the winners alone
 * (op_project.c), so a top-100 over a million rows never touches the messages of the rest. */
#include "engine/exec_int.h"

#include <stdlib.h>
#include <string.h>

struct op_topk {
    exec_ctx *q;
    uint32_t key_count;
    const bool *desc;
    uint64_t cap; /* UINT64_MAX: unbounded */
    row_ref *rows;
    uint64_t n, alloc;
};

int op_topk_new(exec_ctx *q, uint32_t key_count, const bool *desc, uint64_t cap, op_topk **out)
{
    op_topk *t = qr_arena_calloc(q->qa, 1, sizeof *t);
    if (!t) return exec_over_budget(q);
    t->q = q;
    t->key_count = key_count;
    t->desc = desc;
    t->cap = cap;
    *out = t;
    return 0;
}

/* <0 when a comes before b in the output */
static int row_order(const op_topk *t, const row_ref *a, const row_ref *b)
{
    for (uint32_t k = 0; k < t->key_count; k++) {
        int c = ev_cmp(&a->keys[k], &b->keys[k]);
        if (c) return t->desc[k] ? -c : c;
    }
    if (a->part_idx != b->part_idx) return a->part_idx > b->part_idx ? -1 : 1;
    if (a->block_idx != b->block_idx) return a->block_idx > b->block_idx ? -1 : 1;
    if (a->row != b->row) return a->row > b->row ? -1 : 1;
    return 0;
}

static void sift_down(op_topk *t, uint64_t idx)
{
    /* max-heap by output order: the root comes last */
    for (;;) {
        uint64_t l = 2 * idx + 1, r = l + 1, big = idx;
        if (l < t->n && row_order(t, &t->rows[l], &t->rows[big]) > 0) big = l;
        if (r < t->n && row_order(t, &t->rows[r], &t->rows[big]) > 0) big = r;
        if (big == idx) return;
        row_ref tmp = t->rows[idx];
        t->rows[idx] = t->rows[big];
        t->rows[big] = tmp;
        idx = big;
    }
}

static void sift_up(op_topk *t, uint64_t idx)
{
    while (idx > 0) {
        uint64_t parent = (idx - 1) / 2;
        if (row_order(t, &t->rows[idx], &t->rows[parent]) <= 0) return;
        row_ref tmp = t->rows[idx];
        t->rows[idx] = t->rows[parent];
        t->rows[parent] = tmp;
        idx = parent;
    }
}

static int copy_keys(op_topk *t, const exec_value *keys, exec_value **out)
{
    exec_value *k = NULL;
    if (t->key_count) {
        k = qr_arena_alloc(t->q->qa, t->key_count * sizeof *k);
        if (!k) return exec_over_budget(t->q);
        bool ok = true;
        for (uint32_t idx = 0; idx < t->key_count; idx++)
            k[idx] = ev_copy(t->q->qa, &keys[idx], &ok);
        if (!ok) return exec_over_budget(t->q);
    }
    *out = k;
    return 0;
}

int op_topk_push(op_topk *t, const exec_value *keys, uint32_t part_idx, uint32_t block_idx,
                 uint32_t row)
{
    if (t->cap == 0) return 0;
    row_ref cand = {(exec_value *)keys, part_idx, block_idx, row};
    bool bounded = t->cap != UINT64_MAX;
    if (bounded && t->n == t->cap) {
        if (row_order(t, &cand, &t->rows[0]) >= 0) return 0;
        int rc = copy_keys(t, keys, &cand.keys);
        if (rc) return rc;
        t->rows[0] = cand;
        sift_down(t, 0);
        return 0;
    }
    if (t->n == t->alloc) {
        uint64_t grow = t->alloc ? t->alloc * 2 : 64;
        if (bounded && grow > t->cap) grow = t->cap;
        row_ref *rows = qr_arena_alloc(t->q->qa, grow * sizeof *rows);
        if (!rows) return exec_over_budget(t->q);
        if (t->n) memcpy(rows, t->rows, t->n * sizeof *rows);
        t->rows = rows;
        t->alloc = grow;
    }
    int rc = copy_keys(t, keys, &cand.keys);
    if (rc) return rc;
    t->rows[t->n++] = cand;
    if (bounded) sift_up(t, t->n - 1);
    return 0;
}

const exec_value *op_topk_worst_key(const op_topk *t)
{
    if (t->cap == UINT64_MAX || t->n < t->cap || t->key_count == 0) return NULL;
    return &t->rows[0].keys[0];
}

/* qsort_r (glibc): the comparator needs the operator's key directions */
static int sort_cmp(const void *a, const void *b, void *ctx) { return row_order(ctx, a, b); }

row_ref *op_topk_finish(op_topk *t, uint64_t *count)
{
    if (t->n > 1) qsort_r(t->rows, t->n, sizeof *t->rows, sort_cmp, t);
    *count = t->n;
    return t->rows;
}

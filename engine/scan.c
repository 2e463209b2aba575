/* scan — visits the snapshot's parts and blocks for one query and feeds a sink.
 *
 * 1. Parts: pruned by their time range; the others get their label tables and MATCH
 *    candidates (filter_part_prepare).
 * 2. Blocks: pruned by time, (service, level) counts and index (filter_block_prune). A block
 *    the sink can take from metadata alone (counts) goes to sink->meta without reading a
 *    column. The rest are queued.
 * 3. Queued blocks are visited in ts order when the plan sorts by ts (newest max ts first for
 *    DESC, oldest min ts first for ASC) so a top-k can stop as soon as its worst row beats every
 *    block left (sink->done); otherwise in storage order. Each visited block is filtered into a
 *    selection and handed to sink->rows; the per-block scratch arena is reset after it.
 * Over the memory budget or past the deadline, with allow_partial, the scan stops where it is
 * and the query ends with what it has (marked partial). */
#include "engine/exec_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct scan_item {
    uint32_t part_idx, block_idx;
    int64_t min_ts_ns, max_ts_ns;
} scan_item;

static int by_max_desc(const void *a, const void *b)
{
    const scan_item *x = a, *y = b;
    if (x->max_ts_ns != y->max_ts_ns) return x->max_ts_ns > y->max_ts_ns ? -1 : 1;
    if (x->part_idx != y->part_idx) return x->part_idx > y->part_idx ? -1 : 1;
    return x->block_idx > y->block_idx ? -1 : x->block_idx < y->block_idx;
}

static int by_min_asc(const void *a, const void *b)
{
    const scan_item *x = a, *y = b;
    if (x->min_ts_ns != y->min_ts_ns) return x->min_ts_ns < y->min_ts_ns ? -1 : 1;
    if (x->part_idx != y->part_idx) return x->part_idx < y->part_idx ? -1 : 1;
    return x->block_idx < y->block_idx ? -1 : x->block_idx > y->block_idx;
}

/* QR_ELIMIT with allow_partial becomes a clean stop. */
static int maybe_partial(exec_ctx *q, int rc)
{
    if (rc == QR_ELIMIT && q->opts.allow_partial) {
        q->stopped = true;
        q->stop_reason = qr_arena_strdup(q->qa, q->d && q->d->msg[0] ? q->d->msg : "limit");
        if (!q->stop_reason) q->stop_reason = "query memory budget exceeded";
        if (q->d) qr_diag_init(q->d);
        return 0;
    }
    return rc;
}

static int scan_inner(exec_ctx *q, const scan_sink *sink, scan_item **items_out)
{
    plan *pl = q->pl;
    size_t cap = 0;
    for (size_t pi = 0; pi < q->part_count; pi++) cap += q->parts[pi].p->block_count;
    scan_item *items = malloc((cap ? cap : 1) * sizeof *items);
    if (!items) return QR_ENOMEM;
    *items_out = items;
    size_t count = 0;
    for (size_t pi = 0; pi < q->part_count && !q->stopped; pi++) {
        part_ctx *pc = &q->parts[pi];
        qr_part *p = pc->p;
        q->st.parts_total++;
        q->st.blocks_total += p->block_count;
        if (p->row_count == 0 || p->max_ts_ns < pl->ts_lo || p->min_ts_ns > pl->ts_hi) {
            q->st.parts_pruned++;
            q->st.blocks_pruned_time += p->block_count;
            continue;
        }
        int rc = filter_part_prepare(q, pc);
        if (rc) return rc;
        for (uint32_t bi = 0; bi < p->block_count; bi++) {
            qr_block_meta m;
            rc = qr_part_block_meta(p, bi, &m);
            if (rc) return rc;
            switch (filter_block_prune(q, pc, &m, bi)) {
            case PRUNE_TIME:
                q->st.blocks_pruned_time++;
                continue;
            case PRUNE_LABELS:
                q->st.blocks_pruned_labels++;
                continue;
            case PRUNE_INDEX:
                q->st.blocks_pruned_index++;
                continue;
            case PRUNE_NONE:
                break;
            }
            if (sink->meta && filter_block_all_match_meta(q, pc, &m)) {
                rc = sink->meta(sink->ctx, pc, &m);
                if (rc == 0) {
                    q->st.blocks_meta++;
                    continue;
                }
                if (rc != QR_EAGAIN) return rc; /* EAGAIN: the block needs its rows */
            }
            items[count++] = (scan_item){(uint32_t)pi, bi, m.min_ts_ns, m.max_ts_ns};
        }
    }
    if (pl->ts_order < 0) qsort(items, count, sizeof *items, by_max_desc);
    if (pl->ts_order > 0) qsort(items, count, sizeof *items, by_min_asc);
    for (size_t idx = 0; idx < count && !q->stopped; idx++) {
        const scan_item *it = &items[idx];
        if (sink->done && pl->ts_order &&
            sink->done(sink->ctx, pl->ts_order < 0 ? it->max_ts_ns : it->min_ts_ns)) {
            q->st.blocks_skipped += count - idx;
            break;
        }
        int rc = exec_check_deadline(q);
        if (rc) return rc;
        blk_ctx bc;
        blk_init(&bc, q, &q->parts[it->part_idx], it->block_idx);
        uint32_t *sel = NULL, n = 0;
        rc = bc.err ? bc.err : filter_block_select(&bc, &sel, &n);
        if (rc) return rc;
        q->st.blocks_scanned++;
        q->scanned += bc.n;
        q->hits += n;
        if (n) {
            rc = sink->rows(sink->ctx, &bc, sel, n);
            if (rc) return rc;
        }
        qr_arena_reset(&q->scratch);
    }
    return 0;
}

int scan_run(exec_ctx *q, const scan_sink *sink)
{
    scan_item *items = NULL;
    int rc = scan_inner(q, sink, &items);
    free(items);
    for (size_t pi = 0; pi < q->part_count; pi++) filter_part_fini(&q->parts[pi]);
    qr_arena_reset(&q->scratch);
    return maybe_partial(q, rc);
}

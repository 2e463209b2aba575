/* scan — visits the snapshot's parts and blocks for one query and feeds a sink, on a few
 * worker threads.
 *
 * 1. Parts (split among the workers, one part at a time): pruned by their time range; the
 *    others get their label tables and MATCH candidates (filter_part_prepare). Their blocks are
 *    pruned by time, (service, level) counts and index (filter_block_prune). A block the sink
 *    can take from metadata alone (counts) goes to sink->meta without reading a column. The
 *    rest are queued (in part order, so the queue does not depend on the workers).
 * 2. Queued blocks are visited in ts order when the plan sorts by ts (newest max ts first for
 *    DESC, oldest min ts first for ASC), otherwise in storage order; the workers take them one
 *    at a time. Each visited block is filtered into a selection and handed to sink->rows; the
 *    worker's scratch arena is reset after it. With ts order the workers share a bound: the
 *    best worst ts the sinks report (op_project shares one bounded top-k among the workers;
 *    with one per worker, each worker's k-th best is no better than the k-th best of all, so
 *    a block that cannot beat one cannot enter the result); once the next block's ts cannot
 *    beat it, the scan stops.
 * Workers: q->workers[0] is the query's own context (run on the calling thread); the others
 * are copies with their own arenas (each with an equal share of the memory budget), diag,
 * statistics and regex match data, run on threads started and joined here. Every sink gets
 * one context per worker and merges them afterwards; sinks merge into results that do not
 * depend on which worker saw which block (op_agg.c, op_topk.c).
 * Over the memory budget or past the deadline, with allow_partial, the scan stops where it is
 * (every worker) and the query ends with what it has (marked partial); a hard error stops
 * every worker and the first worker's error (by index) is the query's. */
#include "engine/exec_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct scan_item {
    uint32_t part_idx, block_idx;
    uint32_t first_row, row_count;
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

/* ---- workers ------------------------------------------------------------------------------ */

typedef struct worker_mem {
    exec_ctx q;
    qr_arena qa;
    qr_diag d;
} worker_mem;

static uint32_t default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > EXEC_MAX_THREADS ? EXEC_MAX_THREADS : (uint32_t)n;
}

int scan_workers_init(exec_ctx *q)
{
    if (q->workers) return 0;
    uint32_t want = q->opts.threads ? q->opts.threads : default_threads();
    if (want > EXEC_MAX_THREADS) want = EXEC_MAX_THREADS;
    /* a thread per block at most: tiny snapshots are not worth a thread */
    uint64_t blocks = 0;
    for (size_t pi = 0; pi < q->part_count; pi++) blocks += q->parts[pi].p->block_count;
    if (want > blocks) want = blocks ? (uint32_t)blocks : 1;
    q->workers = qr_arena_calloc(q->qa, want, sizeof *q->workers);
    if (!q->workers) return exec_over_budget(q);
    q->workers[0] = q;
    q->worker_count = 1;
    if (want == 1) return 0;
    size_t share = q->opts.mem_budget_bytes / want;
    q->scratch.budget_bytes = share; /* the scratch arenas share the budget between them */
    for (uint32_t w = 1; w < want; w++) {
        worker_mem *m = malloc(sizeof *m);
        if (!m) return QR_ENOMEM;
        m->q = *q;
        exec_ctx *wq = &m->q;
        qr_arena_init(&m->qa, 8 * 1024, share); /* small: most queries never use it */
        qr_arena_init(&wq->scratch, 256 * 1024, share);
        qr_diag_init(&m->d);
        wq->qa = &m->qa;
        wq->d = &m->d;
        memset(&wq->st, 0, sizeof wq->st);
        wq->hits = wq->scanned = 0;
        wq->stopped = false;
        wq->stop_reason = NULL;
        wq->workers = NULL;
        wq->worker_count = 0;
        wq->regexes = NULL; /* the query's (q's) to free */
        wq->regex_count = wq->regex_cap = 0;
        wq->re_md = NULL;
        q->workers[q->worker_count++] = wq;
        if (q->re_mctx) { /* match data is per thread; the match context is only read */
            wq->re_md = pcre2_match_data_create(1, NULL);
            if (!wq->re_md) return QR_ENOMEM;
        }
    }
    return 0;
}

void scan_workers_fini(exec_ctx *q)
{
    for (uint32_t w = 1; q->workers && w < q->worker_count; w++) {
        worker_mem *m = (worker_mem *)q->workers[w];
        qr_arena_fini(&m->qa);
        qr_arena_fini(&m->q.scratch);
        if (m->q.re_md) pcre2_match_data_free(m->q.re_md);
        free(m);
    }
    q->workers = NULL;
    q->worker_count = 0;
}

typedef struct task_arg {
    exec_ctx *q;
    uint32_t w;
    scan_task_fn fn;
    void *arg;
    int rc;
} task_arg;

static void *task_main(void *arg)
{
    task_arg *ta = arg;
    ta->rc = ta->fn(ta->q->workers[ta->w], ta->w, ta->arg);
    return NULL;
}

int scan_parallel(exec_ctx *q, scan_task_fn fn, void *arg)
{
    int rc = scan_workers_init(q);
    if (rc) return rc;
    uint32_t nw = q->worker_count;
    task_arg *tas = calloc(nw, sizeof *tas);
    pthread_t *threads = calloc(nw, sizeof *threads);
    if (!tas || !threads) {
        free(tas);
        free(threads);
        return QR_ENOMEM;
    }
    for (uint32_t w = 0; w < nw; w++) tas[w] = (task_arg){q, w, fn, arg, 0};
    uint32_t started = 1; /* the work is shared out dynamically: fewer threads still do it all */
    while (started < nw && pthread_create(&threads[started], NULL, task_main, &tas[started]) == 0)
        started++;
    task_main(&tas[0]);
    for (uint32_t w = 1; w < started; w++) pthread_join(threads[w], NULL);
    rc = 0;
    for (uint32_t w = 0; w < started && !rc; w++) {
        rc = tas[w].rc;
        if (rc && w > 0 && q->d) *q->d = *q->workers[w]->d;
    }
    free(tas);
    free(threads);
    return rc;
}

int scan_partial(exec_ctx *q, int rc)
{
    if (rc != QR_ELIMIT || !q->opts.allow_partial) return rc;
    if (!q->stopped) {
        q->stopped = true;
        q->stop_reason = qr_arena_strdup(q->qa, q->d && q->d->msg[0] ? q->d->msg : "limit");
        if (!q->stop_reason) q->stop_reason = "query memory budget exceeded";
    }
    if (q->d) qr_diag_init(q->d);
    return 0;
}

/* ---- the shared state of one scan ---------------------------------------------------------- */

/* A barrier whose party is set as helpers start (a thread that could not be started never
 * arrives). */
typedef struct scan_barrier {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t expected, arrived;
    uint64_t generation;
} scan_barrier;

static void barrier_release(scan_barrier *b)
{
    b->arrived = 0;
    b->generation++;
    pthread_cond_broadcast(&b->cv);
}

static void barrier_wait(scan_barrier *b)
{
    pthread_mutex_lock(&b->mu);
    uint64_t gen = b->generation;
    if (++b->arrived >= b->expected)
        barrier_release(b);
    else
        while (gen == b->generation) pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
}

static void barrier_expect(scan_barrier *b, uint32_t expected)
{
    pthread_mutex_lock(&b->mu);
    b->expected = expected;
    if (b->arrived && b->arrived >= expected) barrier_release(b);
    pthread_mutex_unlock(&b->mu);
}

typedef struct scan_shared {
    exec_ctx *q;
    const scan_sink *sink;
    scan_barrier barrier;
    atomic_bool halt;         /* stop: a worker failed, stopped (partial) or the top-k settled */
    atomic_uint next_part;    /* phase 1: the next part to take */
    size_t *part_off;         /* phase 1: part pi queues its blocks at items[part_off[pi]...] */
    uint32_t *part_n;         /* ... this many of them */
    scan_item *items;         /* phase 2: the queue */
    size_t count;             /* phase 2: queued blocks */
    atomic_size_t next_item;  /* phase 2: the next block to take */
    atomic_size_t taken;      /* phase 2: blocks taken (not skipped) */
    bool lazy;                /* ts order: MATCH candidates of a part made at its first block */
    pthread_mutex_t *part_mu; /* lazy: per part, guards its candidates */
    atomic_bool settled;      /* the ts bound beat the next block: the rest are skipped */
    _Atomic int64_t bound;    /* ts order: the best worst ts of the workers' top-k */
    int *rc;                  /* per worker */
    /* helper threads (worker 0 starts them) */
    int64_t spawn_at_ns; /* monotonic time to start them; 0: at once */
    bool spawned;
    uint32_t started; /* workers running, 0 included */
    pthread_t *threads;
    struct worker_arg *args;
} scan_shared;

typedef struct worker_arg {
    scan_shared *sh;
    uint32_t w;
    int phase; /* where the worker starts: 1 (parts) or 2 (blocks, when started late) */
} worker_arg;

/* Helper threads: with opts.threads set they start with the scan; by default only once the
 * scan has run SCAN_SPAWN_AFTER_NS (1 ms) on the calling thread (a needle is done before a thread
 * would be: starting one costs ~50 us, much more on a busy machine). */
#define SCAN_SPAWN_AFTER_NS (1000 * 1000)

static void *worker_main(void *arg);

/* Worker 0 starts the helpers (once), in the phase it is in. */
static void spawn(scan_shared *sh, int phase)
{
    uint32_t nw = sh->q->worker_count;
    sh->spawned = true;
    if (nw < 2) return;
    if (phase == 1) barrier_expect(&sh->barrier, nw); /* worker 0 has not arrived yet */
    for (uint32_t w = 1; w < nw; w++) {
        sh->args[w] = (worker_arg){sh, w, phase};
        if (pthread_create(&sh->threads[w], NULL, worker_main, &sh->args[w]) != 0) break;
        sh->started++;
    }
    /* a helper that could not be started leaves its share to the others */
    if (phase == 1 && sh->started < nw) barrier_expect(&sh->barrier, sh->started);
}

static void maybe_spawn(scan_shared *sh, uint32_t w, int phase)
{
    if (w == 0 && !sh->spawned && qr_monotonic_ns() >= sh->spawn_at_ns) spawn(sh, phase);
}

/* Fails the scan from worker w: every worker stops at its next block. */
static int worker_fail(scan_shared *sh, uint32_t w, int rc)
{
    sh->rc[w] = rc;
    atomic_store(&sh->halt, true);
    return rc;
}

static int part_visit(scan_shared *sh, uint32_t w, uint32_t pi)
{
    exec_ctx *q = sh->q->workers[w];
    const scan_sink *sink = sh->sink;
    plan *pl = q->pl;
    part_ctx *pc = &q->parts[pi];
    qr_part *p = pc->p;
    q->st.parts_total++;
    q->st.blocks_total += p->block_count;
    if (p->row_count == 0 || p->max_ts_ns < pl->ts_lo || p->min_ts_ns > pl->ts_hi) {
        q->st.parts_pruned++;
        q->st.blocks_pruned_time += p->block_count;
        return 0;
    }
    pc->cand_lazy = sh->lazy;
    int rc = filter_part_prepare(q, pc);
    if (rc) return rc;
    scan_item *items = sh->items + sh->part_off[pi];
    uint32_t n = 0;
    /* A segment whose posting lists leave no candidate (a needle's other 52 or 659 parts):
     * every block would be pruned by the index, none by time or labels. Count them so
     * without reading each block's metadata. (Segment blocks are never empty.) */
    if (p->kind == QR_PART_SEGMENT && pc->has_cand && !(pc->cand_lazy && !pc->cand_ready) &&
        !pc->sl_ok && p->min_ts_ns >= pl->ts_lo && p->max_ts_ns <= pl->ts_hi &&
        roaring_bitmap_is_empty(pc->cand)) {
        q->st.blocks_pruned_index += p->block_count;
        sh->part_n[pi] = 0;
        return 0;
    }
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
            rc = sink->meta(sink->ctxs[w], pc, &m);
            if (rc == 0) {
                q->st.blocks_meta++;
                continue;
            }
            if (rc != QR_EAGAIN) return rc; /* EAGAIN: the block needs its rows */
        }
        items[n++] = (scan_item){pi, bi, m.first_row, m.row_count, m.min_ts_ns, m.max_ts_ns};
    }
    sh->part_n[pi] = n;
    return 0;
}

/* True when no row of the item can enter the top-k any more. */
static bool item_settled(scan_shared *sh, const scan_item *it)
{
    int ts_order = sh->q->pl->ts_order;
    if (!ts_order || !sh->sink->worst_ts) return false;
    int64_t bound = atomic_load(&sh->bound);
    return ts_order < 0 ? bound > it->max_ts_ns : bound < it->min_ts_ns;
}

static void bound_update(scan_shared *sh, int64_t worst)
{
    int ts_order = sh->q->pl->ts_order;
    int64_t cur = atomic_load(&sh->bound);
    while (ts_order < 0 ? worst > cur : worst < cur)
        if (atomic_compare_exchange_weak(&sh->bound, &cur, worst)) break;
}

static int block_visit(scan_shared *sh, uint32_t w, const scan_item *it)
{
    exec_ctx *q = sh->q->workers[w];
    const scan_sink *sink = sh->sink;
    int rc = exec_check_deadline(q);
    if (rc) return rc;
    part_ctx *pc = &q->parts[it->part_idx];
    if (sh->lazy) { /* the part's candidates, at its first visited block; then index pruning */
        pthread_mutex_lock(&sh->part_mu[it->part_idx]);
        if (!pc->cand_ready) rc = filter_part_match(q, pc);
        pthread_mutex_unlock(&sh->part_mu[it->part_idx]);
        if (rc) return rc;
        qr_block_meta m = {.first_row = it->first_row, .row_count = it->row_count};
        if (filter_block_prune_index(q, pc, &m, it->block_idx)) {
            q->st.blocks_pruned_index++;
            return 0;
        }
    }
    blk_ctx bc;
    blk_init(&bc, q, &q->parts[it->part_idx], it->block_idx);
    uint32_t *sel = NULL, n = 0;
    rc = bc.err ? bc.err : filter_block_select(&bc, &sel, &n);
    if (rc) return rc;
    q->st.blocks_scanned++;
    q->scanned += bc.n;
    q->hits += n;
    if (n) {
        rc = sink->rows(sink->ctxs[w], &bc, sel, n);
        if (rc) return rc;
    }
    qr_arena_reset(&q->scratch);
    int64_t worst;
    if (q->pl->ts_order && sink->worst_ts && sink->worst_ts(sink->ctxs[w], &worst))
        bound_update(sh, worst);
    return 0;
}

static void *worker_main(void *arg)
{
    const worker_arg *wa = arg;
    scan_shared *sh = wa->sh;
    uint32_t w = wa->w;
    int rc = 0;
    if (wa->phase == 2) goto blocks;
    /* phase 1: parts */
    while (!atomic_load(&sh->halt)) {
        uint32_t pi = atomic_fetch_add(&sh->next_part, 1);
        if (pi >= sh->q->part_count) break;
        rc = part_visit(sh, w, pi);
        if (rc) {
            worker_fail(sh, w, rc);
            break;
        }
        maybe_spawn(sh, w, 1);
    }
    barrier_wait(&sh->barrier);
    if (w == 0 && !atomic_load(&sh->halt)) { /* the queue, in part order, then sorted */
        size_t count = 0;
        for (size_t pi = 0; pi < sh->q->part_count; pi++) {
            if (sh->part_n[pi] && count != sh->part_off[pi])
                memmove(sh->items + count, sh->items + sh->part_off[pi],
                        sh->part_n[pi] * sizeof *sh->items);
            count += sh->part_n[pi];
        }
        sh->count = count;
        int ts_order = sh->q->pl->ts_order;
        if (ts_order < 0) qsort(sh->items, count, sizeof *sh->items, by_max_desc);
        if (ts_order > 0) qsort(sh->items, count, sizeof *sh->items, by_min_asc);
    }
    barrier_wait(&sh->barrier);
blocks: /* phase 2: blocks */
    while (!rc && !atomic_load(&sh->halt)) {
        size_t idx = atomic_fetch_add(&sh->next_item, 1);
        if (idx >= sh->count) break;
        const scan_item *it = &sh->items[idx];
        if (item_settled(sh, it)) { /* items come in ts order: the rest cannot enter either */
            atomic_store(&sh->settled, true);
            atomic_store(&sh->halt, true);
            break;
        }
        atomic_fetch_add(&sh->taken, 1);
        rc = block_visit(sh, w, it);
        if (rc) worker_fail(sh, w, rc);
        maybe_spawn(sh, w, 2);
    }
    return NULL;
}

int scan_run(exec_ctx *q, const scan_sink *sink)
{
    int rc = scan_workers_init(q);
    if (rc) return rc;
    uint32_t nw = q->worker_count;
    scan_shared *sh = calloc(1, sizeof *sh);
    worker_arg *args = calloc(nw, sizeof *args);
    pthread_t *threads = calloc(nw, sizeof *threads);
    size_t cap = 0;
    if (sh) {
        sh->part_off = calloc(q->part_count + 1, sizeof *sh->part_off);
        sh->part_n = calloc(q->part_count + 1, sizeof *sh->part_n);
        sh->rc = calloc(nw, sizeof *sh->rc);
        for (size_t pi = 0; sh->part_off && pi < q->part_count; pi++) {
            sh->part_off[pi] = cap;
            cap += q->parts[pi].p->block_count;
        }
        sh->items = malloc((cap ? cap : 1) * sizeof *sh->items);
    }
    if (!sh || !args || !threads || !sh->part_off || !sh->part_n || !sh->rc || !sh->items) {
        if (sh) {
            free(sh->part_off);
            free(sh->part_n);
            free(sh->rc);
            free(sh->items);
        }
        free(sh);
        free(args);
        free(threads);
        return QR_ENOMEM;
    }
    sh->q = q;
    sh->sink = sink;
    /* a top-k in ts order visits few blocks: posting lists only for the parts it reaches */
    sh->lazy = q->pl->ts_order && sink->worst_ts && q->pl->has_match && q->pl->limit >= 0;
    if (sh->lazy) {
        sh->part_mu = calloc(q->part_count + 1, sizeof *sh->part_mu);
        if (!sh->part_mu) sh->lazy = false;
        for (size_t pi = 0; sh->lazy && pi < q->part_count; pi++)
            pthread_mutex_init(&sh->part_mu[pi], NULL);
    }
    pthread_mutex_init(&sh->barrier.mu, NULL);
    pthread_cond_init(&sh->barrier.cv, NULL);
    sh->barrier.expected = 1;
    atomic_init(&sh->bound, q->pl->ts_order < 0 ? INT64_MIN : INT64_MAX);
    sh->threads = threads;
    sh->args = args;
    sh->started = 1;
    args[0] = (worker_arg){sh, 0, 1};
    sh->spawn_at_ns = q->opts.threads ? 0 : qr_monotonic_ns() + SCAN_SPAWN_AFTER_NS;
    if (!sh->spawn_at_ns) spawn(sh, 1);
    worker_main(&args[0]);
    for (uint32_t w = 1; w < sh->started; w++) pthread_join(threads[w], NULL);
    if (sh->started > q->st.threads) q->st.threads = sh->started;
    pthread_mutex_destroy(&sh->barrier.mu);
    pthread_cond_destroy(&sh->barrier.cv);

    /* statistics and counts of every worker */
    for (uint32_t w = 1; w < nw; w++) {
        const exec_ctx *wq = q->workers[w];
        q->st.parts_total += wq->st.parts_total;
        q->st.parts_pruned += wq->st.parts_pruned;
        q->st.blocks_total += wq->st.blocks_total;
        q->st.blocks_pruned_time += wq->st.blocks_pruned_time;
        q->st.blocks_pruned_labels += wq->st.blocks_pruned_labels;
        q->st.blocks_pruned_index += wq->st.blocks_pruned_index;
        q->st.blocks_scanned += wq->st.blocks_scanned;
        q->st.blocks_meta += wq->st.blocks_meta;
        q->st.rows_verified += wq->st.rows_verified;
        q->hits += wq->hits;
        q->scanned += wq->scanned;
    }
    if (atomic_load(&sh->settled)) q->st.blocks_skipped += sh->count - atomic_load(&sh->taken);
    /* the first worker's hard error wins; a budget or deadline stop is partial when allowed */
    rc = 0;
    uint32_t failed = nw;
    for (uint32_t w = 0; w < nw && !rc; w++) {
        if (sh->rc[w] && !(sh->rc[w] == QR_ELIMIT && q->opts.allow_partial)) {
            rc = sh->rc[w];
            failed = w;
        }
    }
    for (uint32_t w = 0; w < nw && !rc && failed == nw; w++)
        if (sh->rc[w]) failed = w;
    if (failed < nw && failed > 0 && q->d) *q->d = *q->workers[failed]->d;
    if (!rc && failed < nw) rc = scan_partial(q, sh->rc[failed]);
    for (size_t pi = 0; sh->lazy && pi < q->part_count; pi++)
        pthread_mutex_destroy(&sh->part_mu[pi]);
    free(sh->part_mu);
    free(sh->part_off);
    free(sh->part_n);
    free(sh->rc);
    free(sh->items);
    free(sh);
    free(args);
    free(threads);
    for (size_t pi = 0; pi < q->part_count; pi++) filter_part_fini(&q->parts[pi]);
    for (uint32_t w = 0; w < nw; w++) qr_arena_reset(&q->workers[w]->scratch);
    return rc;
}

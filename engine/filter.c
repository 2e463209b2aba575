/* filter — from a WHERE clause to the rows of a block that pass it, cheapest evidence first.
 *
 * bind_where split the WHERE clause into conjuncts and classified them (exec_int.h). Per part,
 * filter_part_prepare turns
 *   - service/level conjuncts into a table over (service id, level): each conjunct is evaluated
 *     once per dictionary entry and level, never per row;
 *   - host conjuncts into a table over host ids;
 *   - MATCH conjuncts into candidate rows from posting lists (parts with an inverted index).
 * Per block, filter_block_prune drops blocks by time range, by the block's (service, level)
 * counts against the table, and by posting lists or token blooms. filter_block_select then
 * narrows a selection vector (block-relative row numbers, ascending): candidates → time range
 * (only when the block straddles a bound) → label tables (a loop over u32 ids) → remaining
 * conjuncts row by row, those that need the message last, with messages loaded only for the
 * rows still selected (segments decompress only the frames that hold them). */
#include "engine/exec_int.h"

#include <string.h>

/* ---- the block context: columns loaded on first use ------------------------------------------ */

void blk_init(blk_ctx *bc, exec_ctx *q, part_ctx *pc, uint32_t block_idx)
{
    memset(bc, 0, sizeof *bc);
    bc->q = q;
    bc->pc = pc;
    bc->p = pc->p;
    bc->block_idx = block_idx;
    int rc = qr_part_block_meta(pc->p, block_idx, &bc->meta);
    if (rc) bc->err = rc;
    bc->n = rc ? 0 : bc->meta.row_count;
}

int blk_load(blk_ctx *bc, int col)
{
    static const qr_col_kind kinds[] = {QR_COL_TS,    QR_COL_INGEST_TS, QR_COL_SERVICE,
                                        QR_COL_LEVEL, QR_COL_HOST,      QR_COL_MSG};
    if (bc->err) return bc->err;
    if (!bc->p || col < 0 || col > COL_MSG) return bc->err = QR_EINVAL;
    qr_column c;
    int rc =
        qr_part_load_column(bc->p, bc->block_idx, kinds[col], 0, &bc->q->scratch, &c, bc->q->d);
    if (rc) return bc->err = bc->q->scratch.over_budget ? exec_over_budget(bc->q) : rc;
    if (c.row_count != bc->n)
        return bc->err = qr_diag_set(bc->q->d, QR_ECORRUPT, "column rows do not match the block");
    switch (col) {
    case COL_TS:
        bc->ts = c.i64;
        bc->ts_have = NULL;
        break;
    case COL_INGEST_TS:
        bc->ingest = c.i64;
        break;
    case COL_LEVEL:
        bc->level = c.u8;
        break;
    case COL_SERVICE:
        bc->svc = c.ids;
        break;
    case COL_HOST:
        bc->host = c.ids;
        break;
    case COL_MSG:
        bc->msg = (qr_str *)c.strs; /* read-only from here on: msg_full */
        bc->msg_full = true;
        break;
    }
    bool missing = (col == COL_TS || col == COL_INGEST_TS) ? !c.i64
                   : col == COL_LEVEL                      ? !c.u8
                   : col == COL_MSG                        ? !c.strs
                                                           : !c.ids;
    if (missing && bc->n) return bc->err = qr_diag_set(bc->q->d, QR_ECORRUPT, "column missing");
    return 0;
}

int blk_need_msgs(blk_ctx *bc, const uint32_t *sel, uint32_t n)
{
    if (bc->msg_full || n == 0) return bc->err;
    if (bc->err) return bc->err;
    exec_ctx *q = bc->q;
    uint32_t missing = 0;
    for (uint32_t idx = 0; idx < n; idx++) missing += !(bc->msg_have && bc->msg_have[sel[idx]]);
    if (missing == 0) return 0;
    /* past ~1/8 of the block, reading every frame costs no more than picking rows */
    if (missing > bc->n / 8) return blk_load(bc, COL_MSG);
    if (!bc->msg_have) { /* msg[row] is read only where msg_have[row] says it was loaded */
        bc->msg = qr_arena_alloc(&q->scratch, (size_t)bc->n * sizeof *bc->msg);
        bc->msg_have = qr_arena_calloc(&q->scratch, bc->n, 1);
        if (!bc->msg || !bc->msg_have) return bc->err = exec_over_budget(q);
    }
    uint32_t *rows = qr_arena_alloc(&q->scratch, missing * sizeof *rows);
    qr_str *out = qr_arena_alloc(&q->scratch, missing * sizeof *out);
    if (!rows || !out) return bc->err = exec_over_budget(q);
    uint32_t k = 0;
    for (uint32_t idx = 0; idx < n; idx++)
        if (!bc->msg_have[sel[idx]]) rows[k++] = sel[idx];
    exec_msg_cache *mc = q->opts.msg_cache;
    bool cached = mc && bc->p->kind == QR_PART_SEGMENT && k <= EXEC_MSG_CACHE_ROWS;
    if (cached) { /* rows found in the cache need no frame */
        uint8_t *found = qr_arena_alloc(&q->scratch, k);
        if (!found) return bc->err = exec_over_budget(q);
        if (exec_msg_cache_get(mc, q->tenant_hash, bc->p->id, bc->block_idx, rows, k, &q->scratch,
                               out, found))
            return bc->err = exec_over_budget(q);
        uint32_t left = 0;
        for (uint32_t idx = 0; idx < k; idx++) {
            if (found[idx]) {
                bc->msg[rows[idx]] = out[idx];
                bc->msg_have[rows[idx]] = 1;
            } else {
                rows[left++] = rows[idx];
            }
        }
        k = left;
        if (k == 0) return 0;
    }
    int rc = qr_part_load_msgs(bc->p, bc->block_idx, rows, k, &q->scratch, out, q->d);
    if (rc) return bc->err = q->scratch.over_budget ? exec_over_budget(q) : rc;
    for (uint32_t idx = 0; idx < k; idx++) {
        bc->msg[rows[idx]] = out[idx];
        bc->msg_have[rows[idx]] = 1;
    }
    if (cached) exec_msg_cache_put(mc, q->tenant_hash, bc->p->id, bc->block_idx, rows, k, out);
    return 0;
}

int blk_need_ts(blk_ctx *bc, const uint32_t *sel, uint32_t n)
{
    if (bc->err || n == 0 || (bc->ts && !bc->ts_have)) return bc->err;
    exec_ctx *q = bc->q;
    /* a few rows (~1/16 of the block at most) alone; more: the column costs no more */
    if (!bc->p->ops->load_ts_rows || (uint64_t)n * 16 > bc->n) return blk_load(bc, COL_TS);
    if (!bc->ts_have) {
        bc->ts = qr_arena_alloc(&q->scratch, (size_t)bc->n * sizeof *bc->ts);
        bc->ts_have = qr_arena_calloc(&q->scratch, bc->n, 1);
        if (!bc->ts || !bc->ts_have) return bc->err = exec_over_budget(q);
    }
    uint32_t *rows = qr_arena_alloc(&q->scratch, (size_t)n * sizeof *rows);
    int64_t *vals = qr_arena_alloc(&q->scratch, (size_t)n * sizeof *vals);
    if (!rows || !vals) return bc->err = exec_over_budget(q);
    uint32_t k = 0;
    for (uint32_t idx = 0; idx < n; idx++)
        if (!bc->ts_have[sel[idx]] && (k == 0 || sel[idx] > rows[k - 1])) rows[k++] = sel[idx];
    if (k == 0) return 0;
    int rc = bc->p->ops->load_ts_rows(bc->p, bc->block_idx, rows, k, &q->scratch, vals, q->d);
    if (rc) return bc->err = q->scratch.over_budget ? exec_over_budget(q) : rc;
    int64_t *ts = (int64_t *)bc->ts;
    for (uint32_t idx = 0; idx < k; idx++) {
        ts[rows[idx]] = vals[idx];
        bc->ts_have[rows[idx]] = 1;
    }
    return 0;
}

const qr_column *blk_field(blk_ctx *bc, uint32_t qf, uint32_t *count)
{
    exec_ctx *q = bc->q;
    *count = 0;
    if (!bc->p || bc->err || qf >= q->field_count) return NULL;
    if (!bc->fcols) {
        bc->fcols = qr_arena_calloc(&q->scratch, q->field_count, sizeof *bc->fcols);
        if (!bc->fcols) {
            bc->err = exec_over_budget(q);
            return NULL;
        }
    }
    uint32_t nvar = bc->pc->fvar_n[qf];
    if (nvar == 0) return NULL;
    if (!bc->fcols[qf]) {
        qr_column *cols = qr_arena_calloc(&q->scratch, nvar, sizeof *cols);
        if (!cols) {
            bc->err = exec_over_budget(q);
            return NULL;
        }
        for (uint32_t vi = 0; vi < nvar; vi++) {
            int rc =
                qr_part_load_column(bc->p, bc->block_idx, QR_COL_FIELD,
                                    (uint32_t)bc->pc->fvar[qf][vi], &q->scratch, &cols[vi], q->d);
            if (rc) {
                bc->err = q->scratch.over_budget ? exec_over_budget(q) : rc;
                return NULL;
            }
        }
        bc->fcols[qf] = cols;
    }
    *count = nvar;
    return bc->fcols[qf];
}

/* ---- per part ----------------------------------------------------------------------------- */

static bool conjs_true(exec_ctx *q, blk_ctx *fake, conj_class cls)
{
    for (uint32_t idx = 0; idx < q->pl->conj_count; idx++) {
        if (q->pl->conjs[idx].cls != cls) continue;
        exec_value v = ev_eval(q->pl->conjs[idx].e, fake, 0);
        if (!ev_truthy(&v)) return false;
    }
    return true;
}

int filter_part_prepare(exec_ctx *q, part_ctx *pc)
{
    qr_part *p = pc->p;
    plan *pl = q->pl;
    pc->fvar = qr_arena_calloc(q->qa, q->field_count + 1, sizeof *pc->fvar);
    pc->fvar_n = qr_arena_calloc(q->qa, q->field_count + 1, sizeof *pc->fvar_n);
    if (!pc->fvar || !pc->fvar_n) return exec_over_budget(q);
    for (uint32_t qf = 0; qf < q->field_count; qf++) {
        uint32_t n = 0;
        for (uint32_t fi = 0; fi < p->field_count; fi++)
            n += p->fields[fi].key.len == q->fields[qf].len &&
                 memcmp(p->fields[fi].key.ptr, q->fields[qf].name, q->fields[qf].len) == 0;
        if (!n) continue;
        pc->fvar[qf] = qr_arena_alloc(q->qa, n * sizeof **pc->fvar);
        if (!pc->fvar[qf]) return exec_over_budget(q);
        for (uint32_t fi = 0; fi < p->field_count; fi++)
            if (p->fields[fi].key.len == q->fields[qf].len &&
                memcmp(p->fields[fi].key.ptr, q->fields[qf].name, q->fields[qf].len) == 0)
                pc->fvar[qf][pc->fvar_n[qf]++] = (int32_t)fi;
    }
    blk_ctx fake;
    memset(&fake, 0, sizeof fake);
    fake.q = q;
    fake.pc = pc;
    fake.p = p;
    fake.n = 1;
    if (pl->has_sl) {
        pc->sl_ok = qr_arena_calloc(q->qa, (size_t)p->service_count * QR_LEVEL_COUNT + 1, 1);
        if (!pc->sl_ok) return exec_over_budget(q);
        for (uint32_t sid = 0; sid < p->service_count; sid++) {
            for (uint8_t lvl = 0; lvl < QR_LEVEL_COUNT; lvl++) {
                fake.svc = &sid;
                fake.level = &lvl;
                pc->sl_ok[sid * QR_LEVEL_COUNT + lvl] = conjs_true(q, &fake, CONJ_SL);
            }
        }
    }
    if (pl->has_host) {
        pc->host_ok = qr_arena_calloc(q->qa, p->host_count + 1, 1);
        if (!pc->host_ok) return exec_over_budget(q);
        for (uint32_t hid = 0; hid < p->host_count; hid++) {
            fake.host = &hid;
            pc->host_ok[hid] = conjs_true(q, &fake, CONJ_HOST);
        }
    }
    if (fake.err) return fake.err;
    return pc->cand_lazy ? 0 : filter_part_match(q, pc);
}

int filter_part_match(exec_ctx *q, part_ctx *pc)
{
    qr_part *p = pc->p;
    plan *pl = q->pl;
    pc->cand_ready = true;
    if (pl->has_match && p->has_postings) {
        pc->cand_exact = true;
        for (uint32_t idx = 0; idx < pl->conj_count; idx++) {
            if (pl->conjs[idx].cls != CONJ_MATCH) continue;
            roaring_bitmap_t *b;
            bool exact;
            int rc = match_part_candidates(q, p, pl->conjs[idx].e->ms, &b, &exact);
            if (rc) return rc;
            if (!b) { /* no index after all */
                pc->has_cand = false;
                if (pc->cand) roaring_bitmap_free(pc->cand);
                pc->cand = NULL;
                break;
            }
            pc->has_cand = true;
            pc->cand_exact = pc->cand_exact && exact;
            if (!pc->cand) {
                pc->cand = b;
            } else {
                roaring_bitmap_and_inplace(pc->cand, b);
                roaring_bitmap_free(b);
            }
        }
    }
    return 0;
}

void filter_part_fini(part_ctx *pc)
{
    if (pc->cand) roaring_bitmap_free(pc->cand);
    pc->cand = NULL;
}

/* ---- per block ------------------------------------------------------------------------------ */

static bool block_in_range(const plan *pl, const qr_block_meta *m)
{
    return m->min_ts_ns >= pl->ts_lo && m->max_ts_ns <= pl->ts_hi;
}

static bool sl_pair_ok(const part_ctx *pc, const qr_svc_level_count *c)
{
    if (c->service_id >= pc->p->service_count || c->level >= QR_LEVEL_COUNT) return true;
    return pc->sl_ok[c->service_id * QR_LEVEL_COUNT + c->level] != 0;
}

prune_why filter_block_prune(exec_ctx *q, part_ctx *pc, const qr_block_meta *m, uint32_t bi)
{
    plan *pl = q->pl;
    if (m->row_count == 0) return PRUNE_TIME;
    if (m->max_ts_ns < pl->ts_lo || m->min_ts_ns > pl->ts_hi) return PRUNE_TIME;
    if (pc->sl_ok) {
        bool any = false;
        for (uint32_t idx = 0; idx < m->count_n && !any; idx++)
            any = m->counts[idx].row_count && sl_pair_ok(pc, &m->counts[idx]);
        if (!any) return PRUNE_LABELS;
    }
    if (pc->cand_lazy && !pc->cand_ready) return PRUNE_NONE; /* the index at the visit */
    return filter_block_prune_index(q, pc, m, bi) ? PRUNE_INDEX : PRUNE_NONE;
}

bool filter_block_prune_index(exec_ctx *q, part_ctx *pc, const qr_block_meta *m, uint32_t bi)
{
    plan *pl = q->pl;
    if (pc->has_cand)
        return roaring_bitmap_range_cardinality(pc->cand, m->first_row,
                                                (uint64_t)m->first_row + m->row_count) == 0;
    for (uint32_t idx = 0; pl->has_match && idx < pl->conj_count; idx++)
        if (pl->conjs[idx].cls == CONJ_MATCH && !match_block_may(pc->p, bi, pl->conjs[idx].e->ms))
            return true;
    return false;
}

bool filter_block_all_match_meta(exec_ctx *q, part_ctx *pc, const qr_block_meta *m)
{
    plan *pl = q->pl;
    if (!block_in_range(pl, m)) return false;
    for (uint32_t idx = 0; idx < pl->conj_count; idx++)
        if (pl->conjs[idx].cls != CONJ_TS && pl->conjs[idx].cls != CONJ_SL) return false;
    return true;
}

int filter_block_select(blk_ctx *bc, uint32_t **sel_out, uint32_t *n_out)
{
    exec_ctx *q = bc->q;
    plan *pl = q->pl;
    part_ctx *pc = bc->pc;
    const qr_block_meta *m = &bc->meta;
    uint32_t *sel = qr_arena_alloc(&q->scratch, (bc->n ? bc->n : 1) * sizeof *sel);
    if (!sel) return exec_over_budget(q);
    uint32_t n = 0;
    if (pc->has_cand) {
        /* one bulk read of exactly the block's candidates */
        uint64_t want = roaring_bitmap_range_cardinality(pc->cand, m->first_row,
                                                         (uint64_t)m->first_row + bc->n);
        roaring_uint32_iterator_t it;
        roaring_init_iterator(pc->cand, &it);
        roaring_move_uint32_iterator_equalorlarger(&it, m->first_row);
        if (want > bc->n) want = bc->n;
        n = want ? roaring_read_uint32_iterator(&it, sel, (uint32_t)want) : 0;
        for (uint32_t idx = 0; idx < n; idx++) sel[idx] -= m->first_row;
    } else {
        for (uint32_t row = 0; row < bc->n; row++) sel[row] = row;
        n = bc->n;
    }
    /* time range, only when the block straddles a bound */
    if (n && !block_in_range(pl, m)) {
        if (blk_load(bc, COL_TS)) return bc->err;
        uint32_t k = 0;
        for (uint32_t idx = 0; idx < n; idx++) {
            int64_t t = bc->ts[sel[idx]];
            sel[k] = sel[idx];
            k += t >= pl->ts_lo && t <= pl->ts_hi;
        }
        n = k;
    }
    /* (service, level) table, unless every pair in the block is accepted */
    if (n && pc->sl_ok) {
        bool all = true;
        for (uint32_t idx = 0; idx < m->count_n && all; idx++)
            all = sl_pair_ok(pc, &m->counts[idx]);
        if (!all) {
            if (blk_load(bc, COL_SERVICE) || blk_load(bc, COL_LEVEL)) return bc->err;
            const uint8_t *ok = pc->sl_ok;
            uint32_t svc_count = bc->p->service_count, k = 0;
            for (uint32_t idx = 0; idx < n; idx++) {
                uint32_t row = sel[idx], sid = bc->svc[row];
                uint8_t lvl = bc->level[row];
                sel[k] = row;
                k += sid < svc_count && lvl < QR_LEVEL_COUNT && ok[sid * QR_LEVEL_COUNT + lvl];
            }
            n = k;
        }
    }
    if (n && pc->host_ok) {
        if (blk_load(bc, COL_HOST)) return bc->err;
        uint32_t host_count = bc->p->host_count, k = 0;
        for (uint32_t idx = 0; idx < n; idx++) {
            uint32_t row = sel[idx], hid = bc->host[row];
            sel[k] = row;
            k += hid < host_count && pc->host_ok[hid];
        }
        n = k;
    }
    /* row conjuncts: those without the message first, then MATCH verification and the rest */
    for (int pass = 0; pass < 2 && n; pass++) {
        for (uint32_t ci = 0; ci < pl->conj_count && n; ci++) {
            const conj *c = &pl->conjs[ci];
            if (c->cls == CONJ_TS || c->cls == CONJ_SL || c->cls == CONJ_HOST) continue;
            if (c->cls == CONJ_MATCH && pc->has_cand && pc->cand_exact) continue;
            if ((int)c->needs_msg != pass) continue;
            if (c->needs_msg && blk_need_msgs(bc, sel, n)) return bc->err;
            uint32_t k = 0;
            for (uint32_t idx = 0; idx < n && !bc->err; idx++) {
                exec_value v = ev_eval(c->e, bc, sel[idx]);
                sel[k] = sel[idx];
                k += ev_truthy(&v);
            }
            if (bc->err) return bc->err;
            n = k;
        }
    }
    *sel_out = sel;
    *n_out = n;
    return bc->err;
}

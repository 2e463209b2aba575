/* rollup_file — the two on-disk formats of a rollup: window files and the MANIFEST.
 *
 * Window file <dir>/cq/<tenant>/rollups/<name>/<seq>.qrw (immutable; little-endian; varints
 * are LEB128, svarints zigzag):
 *   magic "QRRW" (4) | version u8 = 1
 *   uvarint label_count | uvarint agg_count | svarint interval_ns     (must match the DEF)
 *   uvarint dict_count, dict_count × (uvarint len, bytes)            label strings, each once
 *   uvarint row_count, row_count × row, rows sorted by (t, labels):
 *     svarint t - previous t (the first row: t itself)
 *     label_count × (u8 exec_type, value): NULL: nothing; STRING: uvarint dict id;
 *       INT/LEVEL/TS: svarint; FLOAT: 8 bytes IEEE 754; BOOL: u8 0/1
 *     agg_count × (uvarint len, bytes): the aggregate state (engine/cq_agg.h encoding)
 *   footer: i64 min_t (8) | i64 max_t (8) | u32 checksum (4): qr_checksum32 of every byte
 *     before the checksum
 * MANIFEST (replaced atomically with qr_fs_write_atomic; the only mutable file):
 *   magic "QRRM" (4) | version u8 = 1
 *   svarint closed_through_ns (every bucket ending at or before it is closed)
 *   uvarint next_seq | uvarint late_total
 *   uvarint late_n, late_n × (svarint bucket t, uvarint late events)
 *   uvarint file_n, file_n × (uvarint seq, svarint min_t, svarint max_t, uvarint rows,
 *     uvarint bytes, u32 file checksum)
 *   u32 checksum: qr_checksum32 of every byte before it
 * Decoders treat every byte as untrusted: QR_ECORRUPT with the offset, never a crash. */
#include "common/qr_hash.h"
#include "engine/rollup_int.h"

#include <stdlib.h>
#include <string.h>

#define RU_FOOTER_BYTES 20

static int corrupt(qr_diag *d, const uint8_t *base, const uint8_t *at, const char *what)
{
    if (d) d->offset = at && base ? (int64_t)(at - base) : -1;
    return qr_diag_set(d, QR_ECORRUPT, "rollup file: %s at offset %lld", what,
                       (long long)(at && base ? at - base : -1));
}

/* ---- keys ----------------------------------------------------------------------------------- */

void ru_key_add(qr_buf *key, const exec_value *v)
{
    qr_buf_u8(key, v->type);
    switch (v->type) {
    case EXEC_NULL:
        break;
    case EXEC_BOOL:
        qr_buf_u8(key, v->v.b);
        break;
    case EXEC_FLOAT: {
        double f = v->v.f == 0 ? 0 : v->v.f;
        qr_buf_append(key, &f, 8);
        break;
    }
    case EXEC_STRING:
        qr_buf_u32(key, v->v.s.len);
        qr_buf_append(key, v->v.s.ptr, v->v.s.len);
        break;
    default:
        qr_buf_append(key, &v->v.i, 8);
        break;
    }
}

bool ru_key_decode(const uint8_t *key, size_t len, uint32_t label_count, exec_value *out)
{
    qr_rd rd;
    qr_rd_init(&rd, key, len);
    for (uint32_t idx = 0; idx < label_count; idx++) {
        exec_value v = {0};
        v.type = qr_rd_u8(&rd);
        switch (v.type) {
        case EXEC_NULL:
            break;
        case EXEC_BOOL:
            v.v.b = qr_rd_u8(&rd) != 0;
            break;
        case EXEC_FLOAT: {
            const uint8_t *p = qr_rd_take(&rd, 8);
            if (p) memcpy(&v.v.f, p, 8);
            break;
        }
        case EXEC_STRING: {
            uint32_t n = qr_rd_u32(&rd);
            const uint8_t *p = qr_rd_take(&rd, n);
            v.v.s = qr_str_make(p ? (const char *)p : "", p ? n : 0);
            break;
        }
        case EXEC_INT:
        case EXEC_LEVEL:
        case EXEC_TS: {
            const uint8_t *p = qr_rd_take(&rd, 8);
            if (p) memcpy(&v.v.i, p, 8);
            break;
        }
        default:
            return false;
        }
        out[idx] = v;
    }
    return !rd.bad && qr_rd_left(&rd) == 0;
}

/* ---- window files --------------------------------------------------------------------------- */

typedef struct dict {
    qr_str *strs;
    uint32_t *slots; /* index + 1 */
    size_t count, cap, slot_cap;
} dict;

static int dict_id(dict *dc, qr_str s, uint32_t *id)
{
    if ((dc->count + 1) * 2 > dc->slot_cap) {
        size_t cap = dc->slot_cap ? dc->slot_cap * 2 : 64;
        uint32_t *slots = calloc(cap, sizeof *slots);
        if (!slots) return QR_ENOMEM;
        for (size_t idx = 0; idx < dc->count; idx++) {
            size_t pos = qr_hash64(dc->strs[idx].ptr, dc->strs[idx].len) & (cap - 1);
            while (slots[pos]) pos = (pos + 1) & (cap - 1);
            slots[pos] = (uint32_t)idx + 1;
        }
        free(dc->slots);
        dc->slots = slots;
        dc->slot_cap = cap;
    }
    size_t pos = qr_hash64(s.ptr, s.len) & (dc->slot_cap - 1);
    while (dc->slots[pos]) {
        const qr_str *o = &dc->strs[dc->slots[pos] - 1];
        if (o->len == s.len && (s.len == 0 || memcmp(o->ptr, s.ptr, s.len) == 0)) {
            *id = dc->slots[pos] - 1;
            return 0;
        }
        pos = (pos + 1) & (dc->slot_cap - 1);
    }
    if (dc->count == dc->cap) {
        size_t cap = dc->cap ? dc->cap * 2 : 32;
        qr_str *strs = realloc(dc->strs, cap * sizeof *strs);
        if (!strs) return QR_ENOMEM;
        dc->strs = strs;
        dc->cap = cap;
    }
    dc->strs[dc->count] = s;
    dc->slots[pos] = (uint32_t)dc->count + 1;
    *id = (uint32_t)dc->count++;
    return 0;
}

int ru_file_encode(const ru_def *def, ru_win *const *wins, size_t n, qr_buf *out)
{
    dict dc = {0};
    exec_value labels[RU_MAX_COLUMNS];
    qr_buf rows, st;
    qr_buf_init(&rows);
    qr_buf_init(&st);
    int rc = 0;
    int64_t prev = 0, min_t = INT64_MAX, max_t = INT64_MIN;
    for (size_t wi = 0; wi < n && !rc; wi++) {
        const ru_win *w = wins[wi];
        if (!ru_key_decode(w->key, w->key_len, def->label_count, labels)) {
            rc = QR_EINVAL;
            break;
        }
        qr_buf_svarint(&rows, (int64_t)((uint64_t)w->t - (uint64_t)prev));
        prev = w->t;
        if (w->t < min_t) min_t = w->t;
        if (w->t > max_t) max_t = w->t;
        for (uint32_t li = 0; li < def->label_count && !rc; li++) {
            const exec_value *v = &labels[li];
            qr_buf_u8(&rows, v->type);
            switch (v->type) {
            case EXEC_NULL:
                break;
            case EXEC_BOOL:
                qr_buf_u8(&rows, v->v.b);
                break;
            case EXEC_FLOAT:
                qr_buf_append(&rows, &v->v.f, 8);
                break;
            case EXEC_STRING: {
                uint32_t id = 0;
                rc = dict_id(&dc, v->v.s, &id);
                qr_buf_uvarint(&rows, id);
                break;
            }
            default:
                qr_buf_svarint(&rows, v->v.i);
                break;
            }
        }
        for (uint32_t ai = 0; ai < def->agg_count && !rc; ai++) {
            qr_buf_clear(&st);
            rc = cq_agg_encode(&def->aggs[ai].spec, w->st[ai], &st);
            qr_buf_bytes(&rows, st.data, st.len);
        }
    }
    if (!rc) {
        qr_buf_append(out, "QRRW", 4);
        qr_buf_u8(out, RU_FILE_VERSION);
        qr_buf_uvarint(out, def->label_count);
        qr_buf_uvarint(out, def->agg_count);
        qr_buf_svarint(out, def->interval_ns);
        qr_buf_uvarint(out, dc.count);
        for (size_t idx = 0; idx < dc.count; idx++)
            qr_buf_bytes(out, dc.strs[idx].ptr, dc.strs[idx].len);
        qr_buf_uvarint(out, n);
        qr_buf_append(out, rows.data, rows.len);
        qr_buf_u64(out, (uint64_t)(n ? min_t : 0));
        qr_buf_u64(out, (uint64_t)(n ? max_t : 0));
        if (qr_buf_ok(out)) qr_buf_u32(out, qr_checksum32(out->data, out->len));
        if (!qr_buf_ok(out) || !qr_buf_ok(&rows) || !qr_buf_ok(&st)) rc = QR_ENOMEM;
    }
    free(dc.strs);
    free(dc.slots);
    qr_buf_fini(&rows);
    qr_buf_fini(&st);
    return rc;
}

typedef struct file_head {
    uint64_t label_count, agg_count;
    int64_t interval_ns;
    uint64_t dict_count;
    const uint8_t *dict_start;
    uint64_t row_count;
    const uint8_t *rows_start;
    const uint8_t *rows_end;
    int64_t min_t, max_t;
} file_head;

static int head_read(const uint8_t *p, size_t len, file_head *h, qr_diag *d)
{
    if (len < 5 + RU_FOOTER_BYTES || memcmp(p, "QRRW", 4) != 0)
        return corrupt(d, p, p, "bad magic or truncated");
    if (p[4] != RU_FILE_VERSION) return corrupt(d, p, p + 4, "unknown version");
    uint32_t sum = qr_load_u32(p + len - 4);
    if (sum != qr_checksum32(p, len - 4)) return corrupt(d, p, p + len - 4, "checksum mismatch");
    h->min_t = (int64_t)qr_load_u64(p + len - RU_FOOTER_BYTES);
    h->max_t = (int64_t)qr_load_u64(p + len - RU_FOOTER_BYTES + 8);
    qr_rd rd;
    qr_rd_init(&rd, p + 5, len - 5 - RU_FOOTER_BYTES);
    h->label_count = qr_rd_uvarint(&rd);
    h->agg_count = qr_rd_uvarint(&rd);
    h->interval_ns = qr_rd_svarint(&rd);
    h->dict_count = qr_rd_uvarint(&rd);
    if (rd.bad || h->label_count > RU_MAX_COLUMNS || h->agg_count > RU_MAX_COLUMNS ||
        h->dict_count > qr_rd_left(&rd))
        return corrupt(d, p, rd.p, "bad header");
    h->dict_start = rd.p;
    for (uint64_t idx = 0; idx < h->dict_count; idx++) {
        size_t n = 0;
        if (!qr_rd_bytes(&rd, &n)) return corrupt(d, p, rd.p, "bad dictionary");
    }
    h->row_count = qr_rd_uvarint(&rd);
    if (rd.bad || h->row_count > qr_rd_left(&rd) + 1) return corrupt(d, p, rd.p, "bad row count");
    h->rows_start = rd.p;
    h->rows_end = rd.end;
    return 0;
}

/* Walks the rows; with def NULL only checks the framing (states are not decoded). */
static int rows_walk(const ru_def *def, const uint8_t *p, const file_head *h, qr_arena *arena,
                     uint64_t agg_mask, ru_row_fn fn, void *ctx, uint64_t *buckets, qr_diag *d)
{
    uint64_t distinct = 0;
    qr_str *strs = NULL;
    if (arena && h->dict_count) {
        strs = qr_arena_alloc(arena, h->dict_count * sizeof *strs);
        if (!strs) return QR_ENOMEM;
        qr_rd drd;
        qr_rd_init(&drd, h->dict_start, (size_t)(h->rows_start - h->dict_start));
        for (uint64_t idx = 0; idx < h->dict_count; idx++) {
            size_t n = 0;
            const uint8_t *s = qr_rd_bytes(&drd, &n);
            strs[idx] = qr_str_make((const char *)s, n);
        }
    }
    qr_rd rd;
    qr_rd_init(&rd, h->rows_start, (size_t)(h->rows_end - h->rows_start));
    int64_t t = 0, min_t = INT64_MAX, max_t = INT64_MIN, prev_t = INT64_MIN;
    exec_value labels[RU_MAX_COLUMNS];
    cq_agg_state *st[RU_MAX_COLUMNS];
    for (uint64_t row = 0; row < h->row_count; row++) {
        const uint8_t *row_at = rd.p;
        t = (int64_t)((uint64_t)t + (uint64_t)qr_rd_svarint(&rd));
        if (t < prev_t) return corrupt(d, p, row_at, "rows out of order");
        distinct += row == 0 || t != prev_t;
        prev_t = t;
        if (t < min_t) min_t = t;
        if (t > max_t) max_t = t;
        for (uint64_t li = 0; li < h->label_count; li++) {
            exec_value v = {0};
            v.type = qr_rd_u8(&rd);
            switch (v.type) {
            case EXEC_NULL:
                break;
            case EXEC_BOOL:
                v.v.b = qr_rd_u8(&rd) != 0;
                break;
            case EXEC_FLOAT: {
                const uint8_t *f = qr_rd_take(&rd, 8);
                if (f) memcpy(&v.v.f, f, 8);
                break;
            }
            case EXEC_STRING: {
                uint64_t id = qr_rd_uvarint(&rd);
                if (id >= h->dict_count) return corrupt(d, p, rd.p, "label id out of range");
                if (strs) v.v.s = strs[id];
                break;
            }
            case EXEC_INT:
            case EXEC_LEVEL:
            case EXEC_TS:
                v.v.i = qr_rd_svarint(&rd);
                break;
            default:
                return corrupt(d, p, rd.p, "bad label type");
            }
            labels[li] = v;
        }
        for (uint64_t ai = 0; ai < h->agg_count; ai++) {
            size_t n = 0;
            const uint8_t *sb = qr_rd_bytes(&rd, &n);
            if (!sb) return corrupt(d, p, rd.p, "truncated state");
            st[ai] = NULL;
            if (!def || !(agg_mask >> ai & 1)) continue;
            qr_rd srd;
            qr_rd_init(&srd, sb, n);
            qr_diag sd;
            qr_diag_init(&sd);
            int rc = cq_agg_decode(&def->aggs[ai].spec, &srd, &st[ai], &sd);
            if (!rc && (srd.bad || qr_rd_left(&srd))) {
                cq_agg_free(st[ai]);
                rc = QR_ECORRUPT;
            }
            if (rc) {
                for (uint64_t k = 0; k < ai; k++) cq_agg_free(st[k]);
                if (rc == QR_ENOMEM) return rc;
                return corrupt(d, p, sb, "bad aggregate state");
            }
        }
        if (rd.bad) {
            for (uint64_t k = 0; def && k < h->agg_count; k++) cq_agg_free(st[k]);
            return corrupt(d, p, rd.p, "truncated row");
        }
        if (fn) {
            int rc = fn(ctx, t, labels, st);
            if (rc) return rc;
        }
    }
    if (qr_rd_left(&rd)) return corrupt(d, p, rd.p, "bytes after the last row");
    if (h->row_count && (min_t != h->min_t || max_t != h->max_t))
        return corrupt(d, p, h->rows_end, "footer time range does not match the rows");
    if (buckets) *buckets = distinct;
    return 0;
}

int ru_file_check(const uint8_t *p, size_t len, int64_t *min_t, int64_t *max_t, uint64_t *rows,
                  uint64_t *buckets, qr_diag *d)
{
    file_head h;
    int rc = head_read(p, len, &h, d);
    if (!rc) rc = rows_walk(NULL, p, &h, NULL, 0, NULL, NULL, buckets, d);
    if (rc) return rc;
    *min_t = h.min_t;
    *max_t = h.max_t;
    *rows = h.row_count;
    return 0;
}

int ru_file_decode(const ru_def *def, const uint8_t *p, size_t len, qr_arena *arena,
                   uint64_t agg_mask, ru_row_fn fn, void *ctx, qr_diag *d)
{
    file_head h;
    int rc = head_read(p, len, &h, d);
    if (rc) return rc;
    if (h.label_count != def->label_count || h.agg_count != def->agg_count ||
        h.interval_ns != def->interval_ns)
        return corrupt(d, p, p + 5, "columns do not match the rollup's definition");
    return rows_walk(def, p, &h, arena, agg_mask, fn, ctx, NULL, d);
}

/* ---- MANIFEST ------------------------------------------------------------------------------- */

int ru_manifest_encode(const ru_manifest *mf, qr_buf *out)
{
    qr_buf_append(out, "QRRM", 4);
    qr_buf_u8(out, RU_MANIFEST_VERSION);
    qr_buf_svarint(out, mf->closed_through_ns);
    qr_buf_uvarint(out, mf->next_seq);
    qr_buf_uvarint(out, mf->late_total);
    qr_buf_uvarint(out, mf->late_n);
    for (size_t idx = 0; idx < mf->late_n; idx++) {
        qr_buf_svarint(out, mf->late[idx].t);
        qr_buf_uvarint(out, mf->late[idx].n);
    }
    qr_buf_uvarint(out, mf->file_n);
    for (size_t idx = 0; idx < mf->file_n; idx++) {
        const ru_manifest_file *f = &mf->files[idx];
        qr_buf_uvarint(out, f->seq);
        qr_buf_svarint(out, f->min_t);
        qr_buf_svarint(out, f->max_t);
        qr_buf_uvarint(out, f->rows);
        qr_buf_uvarint(out, f->bytes);
        qr_buf_u32(out, f->checksum);
    }
    if (qr_buf_ok(out)) qr_buf_u32(out, qr_checksum32(out->data, out->len));
    return qr_buf_ok(out) ? 0 : QR_ENOMEM;
}

int ru_manifest_decode(const uint8_t *p, size_t len, ru_manifest *out, qr_diag *d)
{
    memset(out, 0, sizeof *out);
    if (len < 9 || memcmp(p, "QRRM", 4) != 0) return corrupt(d, p, p, "MANIFEST: bad magic");
    if (p[4] != RU_MANIFEST_VERSION) return corrupt(d, p, p + 4, "MANIFEST: unknown version");
    if (qr_load_u32(p + len - 4) != qr_checksum32(p, len - 4))
        return corrupt(d, p, p + len - 4, "MANIFEST: checksum mismatch");
    qr_rd rd;
    qr_rd_init(&rd, p + 5, len - 9);
    out->closed_through_ns = qr_rd_svarint(&rd);
    out->next_seq = qr_rd_uvarint(&rd);
    out->late_total = qr_rd_uvarint(&rd);
    uint64_t late_n = qr_rd_uvarint(&rd);
    if (rd.bad || late_n > qr_rd_left(&rd) / 2)
        return corrupt(d, p, rd.p, "MANIFEST: bad late list");
    out->late = calloc(late_n + 1, sizeof *out->late);
    if (!out->late) return QR_ENOMEM;
    out->late_n = (size_t)late_n;
    for (size_t idx = 0; idx < out->late_n; idx++) {
        out->late[idx].t = qr_rd_svarint(&rd);
        out->late[idx].n = qr_rd_uvarint(&rd);
    }
    uint64_t file_n = qr_rd_uvarint(&rd);
    if (rd.bad || file_n > qr_rd_left(&rd) / 10) {
        ru_manifest_fini(out);
        return corrupt(d, p, rd.p, "MANIFEST: bad file list");
    }
    out->files = calloc(file_n + 1, sizeof *out->files);
    if (!out->files) {
        ru_manifest_fini(out);
        return QR_ENOMEM;
    }
    out->file_n = (size_t)file_n;
    for (size_t idx = 0; idx < out->file_n; idx++) {
        ru_manifest_file *f = &out->files[idx];
        f->seq = qr_rd_uvarint(&rd);
        f->min_t = qr_rd_svarint(&rd);
        f->max_t = qr_rd_svarint(&rd);
        f->rows = qr_rd_uvarint(&rd);
        f->bytes = qr_rd_uvarint(&rd);
        f->checksum = qr_rd_u32(&rd);
        if (idx && f->seq <= out->files[idx - 1].seq) rd.bad = true;
        if (f->seq >= out->next_seq) rd.bad = true;
    }
    if (rd.bad || qr_rd_left(&rd)) {
        ru_manifest_fini(out);
        return corrupt(d, p, rd.p, "MANIFEST: malformed");
    }
    return 0;
}

void ru_manifest_fini(ru_manifest *mf)
{
    free(mf->late);
    free(mf->files);
    mf->late = NULL;
    mf->files = NULL;
    mf->late_n = mf->file_n = 0;
}

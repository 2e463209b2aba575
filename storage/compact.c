/* compact — see compact.h. Each input block becomes one event batch: strings that the parts
 * keep for their lifetime (service and host names, field keys, dictionary values) are
 * borrowed, msgs and plain string values are copied into the batch (their decode arena is
 * reset per block). */
#include "storage/compact.h"

#include "storage/event.h"

#include <stdlib.h>
#include <string.h>

seg_write_opts compact_seg_opts(int zstd_level, uint32_t msg_frame_bytes)
{
    seg_write_opts o;
    memset(&o, 0, sizeof o);
    o.zstd_level = zstd_level ? zstd_level : COMPACT_ZSTD_LEVEL;
    o.msg_frame_bytes = msg_frame_bytes ? msg_frame_bytes : COMPACT_MSG_FRAME_BYTES;
    o.sparse_index = true;
    o.msg_inline_lengths = true;
    o.phrase_pairs = SEG_PHRASE_CHECKED;
    return o;
}

typedef struct batch_list {
    qr_batch **items;
    size_t count;
    size_t cap;
} batch_list;

static void batch_list_fini(batch_list *l)
{
    for (size_t idx = 0; idx < l->count; idx++) {
        qr_batch_fini(l->items[idx]);
        free(l->items[idx]);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

static qr_batch *batch_list_push(batch_list *l)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        qr_batch **p = realloc(l->items, cap * sizeof *p);
        if (!p) return NULL;
        l->items = p;
        l->cap = cap;
    }
    qr_batch *b = malloc(sizeof *b);
    if (!b) return NULL;
    qr_batch_init(b);
    l->items[l->count++] = b;
    return b;
}

static int copy_str(qr_batch *b, qr_str s, qr_str *out)
{
    *out = qr_batch_str(b, s.ptr, s.len);
    return s.len && out->len != s.len ? QR_ENOMEM : 0;
}

/* Appends the rows of one block of p to b. */
static int block_to_batch(qr_part *p, uint32_t block_idx, qr_arena *a, qr_batch *b, qr_diag *d)
{
    qr_column ts, ing, lvl, svc, host, msg;
    int rc = qr_part_load_column(p, block_idx, QR_COL_TS, 0, a, &ts, d);
    if (!rc) rc = qr_part_load_column(p, block_idx, QR_COL_INGEST_TS, 0, a, &ing, d);
    if (!rc) rc = qr_part_load_column(p, block_idx, QR_COL_LEVEL, 0, a, &lvl, d);
    if (!rc) rc = qr_part_load_column(p, block_idx, QR_COL_SERVICE, 0, a, &svc, d);
    if (!rc) rc = qr_part_load_column(p, block_idx, QR_COL_HOST, 0, a, &host, d);
    if (!rc) rc = qr_part_load_column(p, block_idx, QR_COL_MSG, 0, a, &msg, d);
    if (rc) return rc;
    uint32_t n = ts.row_count;
    qr_column *fcols = NULL;
    if (p->field_count) {
        fcols = qr_arena_calloc(a, p->field_count, sizeof *fcols);
        if (!fcols) return QR_ENOMEM;
    }
    for (uint32_t f = 0; f < p->field_count; f++) {
        rc = qr_part_load_column(p, block_idx, QR_COL_FIELD, f, a, &fcols[f], d);
        if (rc) return rc;
    }
    for (uint32_t row = 0; row < n; row++) {
        qr_event *e = qr_batch_push(b);
        if (!e) return QR_ENOMEM;
        e->ts_ns = ts.i64[row];
        e->ingest_ts_ns = ing.i64[row];
        e->level = lvl.u8[row];
        if (svc.ids[row] >= svc.dict_count || host.ids[row] >= host.dict_count)
            return qr_diag_set(d, QR_ECORRUPT, "compaction: label id out of range in %s",
                               p->path ? p->path : "a part");
        e->service = svc.dict[svc.ids[row]];
        e->host = host.dict[host.ids[row]];
        rc = copy_str(b, msg.strs[row], &e->msg);
        if (rc) return rc;
        b->bytes += sizeof *e;
        for (uint32_t f = 0; f < p->field_count; f++) {
            const qr_column *c = &fcols[f];
            if (!qr_column_has(c, row)) continue;
            qr_field fv;
            memset(&fv, 0, sizeof fv);
            fv.key = p->fields[f].key;
            fv.type = p->fields[f].type;
            switch (fv.type) {
            case QR_FT_NULL:
                break;
            case QR_FT_INT:
                fv.v.i = c->i64[row];
                break;
            case QR_FT_FLOAT:
                fv.v.f = c->f64[row];
                break;
            case QR_FT_BOOL:
                fv.v.b = c->u8[row] != 0;
                break;
            case QR_FT_STRING:
                if (c->ids) {
                    if (c->ids[row] >= c->dict_count)
                        return qr_diag_set(d, QR_ECORRUPT, "compaction: bad dictionary id");
                    fv.v.s = c->dict[c->ids[row]]; /* the part's: lives as long as it */
                } else {
                    rc = copy_str(b, c->strs[row], &fv.v.s);
                    if (rc) return rc;
                }
                break;
            default:
                return qr_diag_set(d, QR_ECORRUPT, "compaction: bad field type");
            }
            rc = qr_batch_add_field(b, &fv);
            if (rc) return rc == QR_ELIMIT ? QR_ECORRUPT : rc;
        }
    }
    return 0;
}

int compact_merge(qr_part *const *parts, size_t count, const char *path, const seg_write_opts *opts,
                  const atomic_bool *cancel, seg_stats *stats_out, qr_diag *d)
{
    batch_list bl = {0};
    qr_arena a;
    qr_arena_init(&a, 1u << 20, 0);
    int rc = 0;
    for (size_t pi = 0; pi < count && !rc; pi++) {
        qr_part *p = parts[pi];
        for (uint32_t bi = 0; bi < p->block_count && !rc; bi++) {
            if (cancel && atomic_load(cancel)) {
                rc = qr_diag_set(d, QR_ECANCELED, "compaction canceled");
                break;
            }
            qr_batch *b = batch_list_push(&bl);
            if (!b) {
                rc = QR_ENOMEM;
                break;
            }
            rc = block_to_batch(p, bi, &a, b, d);
            qr_arena_reset(&a);
        }
    }
    qr_arena_fini(&a);
    if (!rc && cancel && atomic_load(cancel))
        rc = qr_diag_set(d, QR_ECANCELED, "compaction canceled");
    if (!rc) rc = seg_write(path, (const qr_batch *const *)bl.items, bl.count, opts, stats_out, d);
    if (rc == QR_ENOMEM && d && !d->code) qr_diag_set(d, rc, "compaction: out of memory");
    batch_list_fini(&bl);
    return rc;
}

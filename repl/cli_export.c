/* quarry export: every event of a tenant as NDJSON in the native shape (re-ingestable). */
#include "common/qr_jsonw.h"
#include "common/qr_time.h"
#include "repl/cli.h"
#include "storage/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends one event as a native-shape JSON line. cols: ts, ingest, level, service, host, msg;
 * fields: one column per schema entry; order: schema indexes sorted by key, so the meta keys of
 * an event come out in the same order whatever order the part's schema has. */
static void export_row(qr_buf *out, const qr_part *p, const qr_column *cols,
                       const qr_column *fields, const uint32_t *order, uint32_t row_idx)
{
    char ts[40];
    qr_time_format(cols[0].i64[row_idx], ts, sizeof ts, true);
    qr_jsonw_raw(out, "{\"ts\":");
    qr_jsonw_cstr(out, ts);
    qr_jsonw_raw(out, ",\"service\":");
    qr_str svc = cols[3].dict[cols[3].ids[row_idx]];
    qr_jsonw_str(out, svc.ptr, svc.len);
    qr_jsonw_raw(out, ",\"level\":");
    qr_jsonw_cstr(out, qr_level_name((qr_level)cols[2].u8[row_idx]));
    qr_jsonw_raw(out, ",\"host\":");
    qr_str host = cols[4].dict[cols[4].ids[row_idx]];
    qr_jsonw_str(out, host.ptr, host.len);
    qr_jsonw_raw(out, ",\"msg\":");
    qr_jsonw_str(out, cols[5].strs[row_idx].ptr, cols[5].strs[row_idx].len);
    bool any = false;
    for (uint32_t pos = 0; pos < p->field_count; pos++) {
        uint32_t fi = order[pos];
        const qr_column *c = &fields[fi];
        if (!qr_column_has(c, row_idx)) continue;
        qr_jsonw_raw(out, any ? "," : ",\"meta\":{");
        any = true;
        qr_jsonw_str(out, p->fields[fi].key.ptr, p->fields[fi].key.len);
        qr_buf_u8(out, ':');
        switch (c->type) {
        case QR_FT_STRING:
            if (c->strs)
                qr_jsonw_str(out, c->strs[row_idx].ptr, c->strs[row_idx].len);
            else
                qr_jsonw_str(out, c->dict[c->ids[row_idx]].ptr, c->dict[c->ids[row_idx]].len);
            break;
        case QR_FT_INT:
            qr_jsonw_int(out, c->i64[row_idx]);
            break;
        case QR_FT_FLOAT:
            qr_jsonw_double(out, c->f64[row_idx]);
            break;
        case QR_FT_BOOL:
            qr_jsonw_raw(out, c->u8[row_idx] ? "true" : "false");
            break;
        default:
            qr_jsonw_raw(out, "null");
            break;
        }
    }
    qr_jsonw_raw(out, any ? "}}\n" : "}\n");
}

static const qr_part *g_sort_part; /* qsort has no context argument; export is single-threaded */

static int cmp_field_key(const void *a, const void *b)
{
    const qr_field_schema *fa = &g_sort_part->fields[*(const uint32_t *)a];
    const qr_field_schema *fb = &g_sort_part->fields[*(const uint32_t *)b];
    size_t n = fa->key.len < fb->key.len ? fa->key.len : fb->key.len;
    int c = memcmp(fa->key.ptr, fb->key.ptr, n);
    if (c) return c;
    if (fa->key.len != fb->key.len) return fa->key.len < fb->key.len ? -1 : 1;
    return (int)fa->type - (int)fb->type;
}

static int export_part(qr_part *p, FILE *f, uint64_t *rows, qr_diag *d)
{
    static const qr_col_kind kinds[6] = {QR_COL_TS,      QR_COL_INGEST_TS, QR_COL_LEVEL,
                                         QR_COL_SERVICE, QR_COL_HOST,      QR_COL_MSG};
    qr_arena a;
    qr_arena_init(&a, 1 << 20, 0);
    qr_buf out;
    qr_buf_init(&out);
    qr_column *fields = calloc(p->field_count + 1, sizeof *fields);
    uint32_t *order = calloc(p->field_count + 1, sizeof *order);
    int rc = fields && order ? 0 : QR_ENOMEM;
    for (uint32_t fi = 0; !rc && fi < p->field_count; fi++) order[fi] = fi;
    if (!rc) {
        g_sort_part = p;
        qsort(order, p->field_count, sizeof *order, cmp_field_key);
    }
    for (uint32_t block_idx = 0; !rc && block_idx < p->block_count; block_idx++) {
        qr_block_meta meta;
        qr_column cols[6];
        rc = qr_part_block_meta(p, block_idx, &meta);
        for (int k = 0; !rc && k < 6; k++)
            rc = qr_part_load_column(p, block_idx, kinds[k], 0, &a, &cols[k], d);
        for (uint32_t fi = 0; !rc && fi < p->field_count; fi++)
            rc = qr_part_load_column(p, block_idx, QR_COL_FIELD, fi, &a, &fields[fi], d);
        for (uint32_t row_idx = 0; !rc && row_idx < meta.row_count; row_idx++) {
            export_row(&out, p, cols, fields, order, row_idx);
            if (out.len > (1u << 20)) {
                if (fwrite(out.data, 1, out.len, f) != out.len) rc = QR_EIO;
                qr_buf_clear(&out);
            }
        }
        if (!rc) *rows += meta.row_count;
        qr_arena_reset(&a);
    }
    if (!rc && out.len && fwrite(out.data, 1, out.len, f) != out.len) rc = QR_EIO;
    if (!rc && !qr_buf_ok(&out)) rc = QR_ENOMEM;
    free(fields);
    free(order);
    qr_buf_fini(&out);
    qr_arena_fini(&a);
    return rc;
}

int cli_export(int argc, char **argv)
{
    const char *data = NULL, *tenant = NULL;
    for (int idx = 0; idx < argc; idx++) {
        const char *v;
        if (strcmp(argv[idx], "--help") == 0 || strcmp(argv[idx], "-h") == 0) {
            printf("usage: quarry export --data DIR [--tenant T]\n"
                   "Writes every event of the tenant to stdout as NDJSON in the native shape\n"
                   "(quarry ingest reads it back).\n");
            return 0;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--data"))) {
            data = v;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--tenant"))) {
            tenant = v;
        } else {
            fprintf(stderr, "quarry export: unknown option \"%s\"\n", argv[idx]);
            return 2;
        }
    }
    if (!data) {
        fprintf(stderr, "usage: quarry export --data DIR [--tenant T]\n");
        return 2;
    }
    db_t *db;
    qr_diag d;
    qr_diag_init(&d);
    db_opts dbo;
    memset(&dbo, 0, sizeof dbo);
    dbo.compact_off = true; /* a reader: leave merging to the writers */
    int rc = db_open(data, &dbo, &db, NULL, &d);
    if (rc) {
        fprintf(stderr, "quarry export: cannot open %s: %s\n", data,
                d.msg[0] ? d.msg : qr_strerror(rc));
        return 1;
    }
    db_snapshot *snap = NULL;
    rc = db_snapshot_open(db, tenant, &snap);
    uint64_t rows = 0;
    for (size_t idx = 0; !rc && idx < db_snapshot_part_count(snap); idx++)
        rc = export_part(db_snapshot_part(snap, idx), stdout, &rows, &d);
    db_snapshot_free(snap);
    if (!rc && fflush(stdout) != 0) rc = QR_EIO;
    db_close(db);
    if (rc) {
        fprintf(stderr, "quarry export: %s\n", d.msg[0] ? d.msg : qr_strerror(rc));
        return 1;
    }
    return 0;
}

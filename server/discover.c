/* discover — service and field catalogs from part metadata (contract in discover.h).
 * Names are aggregated in a small open-addressing table keyed by qr_hash64; there are few
 * services and fields (dictionary-sized), so everything fits in memory trivially. */
#include "server/discover.h"

#include "common/qr_hash.h"
#include "common/qr_jsonw.h"
#include "common/qr_time.h"

#include <stdlib.h>
#include <string.h>

typedef struct agg_entry {
    const char *name; /* borrowed from a part: valid while the snapshot lives */
    uint32_t name_len;
    uint8_t type;
    uint64_t rows;
    uint64_t level_rows[QR_LEVEL_COUNT];
    int64_t first_ns, last_ns;
} agg_entry;

typedef struct agg {
    agg_entry *entries;
    size_t count, cap;
    uint32_t *slots; /* index + 1; 0 = empty */
    size_t slot_cap;
} agg;

static void agg_fini(agg *a)
{
    free(a->entries);
    free(a->slots);
}

static int agg_rehash(agg *a, size_t slot_cap)
{
    uint32_t *slots = calloc(slot_cap, sizeof *slots);
    if (!slots) return QR_ENOMEM;
    for (size_t idx = 0; idx < a->count; idx++) {
        agg_entry *e = &a->entries[idx];
        uint64_t h = qr_hash64_seed(e->name, e->name_len, e->type);
        size_t pos = h & (slot_cap - 1);
        while (slots[pos]) pos = (pos + 1) & (slot_cap - 1);
        slots[pos] = (uint32_t)idx + 1;
    }
    free(a->slots);
    a->slots = slots;
    a->slot_cap = slot_cap;
    return 0;
}

static agg_entry *agg_get(agg *a, const char *name, uint32_t len, uint8_t type)
{
    if ((a->count + 1) * 2 > a->slot_cap && agg_rehash(a, a->slot_cap ? a->slot_cap * 2 : 64))
        return NULL;
    uint64_t h = qr_hash64_seed(name, len, type);
    size_t pos = h & (a->slot_cap - 1);
    while (a->slots[pos]) {
        agg_entry *e = &a->entries[a->slots[pos] - 1];
        if (e->type == type && e->name_len == len && memcmp(e->name, name, len) == 0) return e;
        pos = (pos + 1) & (a->slot_cap - 1);
    }
    if (a->count == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        agg_entry *es = realloc(a->entries, cap * sizeof *es);
        if (!es) return NULL;
        a->entries = es;
        a->cap = cap;
    }
    agg_entry *e = &a->entries[a->count];
    memset(e, 0, sizeof *e);
    e->name = name;
    e->name_len = len;
    e->type = type;
    e->first_ns = INT64_MAX;
    e->last_ns = INT64_MIN;
    a->slots[pos] = (uint32_t)++a->count;
    return e;
}

static int cmp_rows_desc(const void *x, const void *y)
{
    const agg_entry *a = x, *b = y;
    if (a->rows != b->rows) return a->rows > b->rows ? -1 : 1;
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int c = memcmp(a->name, b->name, n);
    return c ? c : (int)a->name_len - (int)b->name_len;
}

static int cmp_name(const void *x, const void *y)
{
    const agg_entry *a = x, *b = y;
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int c = memcmp(a->name, b->name, n);
    if (c) return c;
    if (a->name_len != b->name_len) return (int)a->name_len - (int)b->name_len;
    return (int)a->type - (int)b->type;
}

static void write_time(qr_buf *out, const char *key, int64_t ns)
{
    char ts[40];
    qr_time_format(ns, ts, sizeof ts, false);
    qr_jsonw_raw(out, key);
    qr_jsonw_cstr(out, ts);
}

int discover_services_json(db_t *db, const char *tenant, qr_buf *out, qr_diag *d)
{
    db_snapshot *snap = NULL;
    int rc = db_snapshot_open(db, tenant, &snap);
    if (rc) return qr_diag_set(d, rc, "cannot open a snapshot: %s", qr_strerror(rc));
    agg a;
    memset(&a, 0, sizeof a);
    uint64_t total = 0;
    size_t parts = db_snapshot_part_count(snap);
    for (size_t part_idx = 0; part_idx < parts && !rc; part_idx++) {
        qr_part *p = db_snapshot_part(snap, part_idx);
        total += p->row_count;
        for (uint32_t block_idx = 0; block_idx < p->block_count && !rc; block_idx++) {
            qr_block_meta bm;
            rc = qr_part_block_meta(p, block_idx, &bm);
            if (rc) {
                qr_diag_set(d, rc, "block metadata of %s: %s", p->path ? p->path : "memtable",
                            qr_strerror(rc));
                break;
            }
            for (uint32_t ci = 0; ci < bm.count_n; ci++) {
                const qr_svc_level_count *c = &bm.counts[ci];
                if (c->service_id >= p->service_count) continue;
                qr_str name = p->services[c->service_id];
                agg_entry *e = agg_get(&a, name.ptr, name.len, 0);
                if (!e) {
                    rc = qr_diag_set(d, QR_ENOMEM, "out of memory");
                    break;
                }
                e->rows += c->row_count;
                e->level_rows[c->level < QR_LEVEL_COUNT ? c->level : 0] += c->row_count;
                if (bm.min_ts_ns < e->first_ns) e->first_ns = bm.min_ts_ns;
                if (bm.max_ts_ns > e->last_ns) e->last_ns = bm.max_ts_ns;
            }
        }
    }
    if (!rc) {
        if (a.count) qsort(a.entries, a.count, sizeof *a.entries, cmp_rows_desc);
        qr_jsonw_raw(out, "{\"services\":[");
        for (size_t idx = 0; idx < a.count; idx++) {
            agg_entry *e = &a.entries[idx];
            qr_jsonw_raw(out, idx ? ",{\"service\":" : "{\"service\":");
            qr_jsonw_str(out, e->name, e->name_len);
            qr_jsonw_raw(out, ",\"rows\":");
            qr_jsonw_uint(out, e->rows);
            write_time(out, ",\"first_seen\":", e->first_ns);
            write_time(out, ",\"last_seen\":", e->last_ns);
            qr_jsonw_raw(out, ",\"levels\":{");
            bool any = false;
            for (int lvl = 0; lvl < QR_LEVEL_COUNT; lvl++) {
                if (!e->level_rows[lvl]) continue;
                if (any) qr_jsonw_raw(out, ",");
                any = true;
                qr_jsonw_cstr(out, qr_level_name((qr_level)lvl));
                qr_jsonw_raw(out, ":");
                qr_jsonw_uint(out, e->level_rows[lvl]);
            }
            qr_jsonw_raw(out, "}}");
        }
        qr_jsonw_raw(out, "],\"total_rows\":");
        qr_jsonw_uint(out, total);
        qr_jsonw_raw(out, "}\n");
        if (!qr_buf_ok(out)) rc = qr_diag_set(d, QR_ENOMEM, "out of memory");
    }
    agg_fini(&a);
    db_snapshot_free(snap);
    return rc;
}

static const char *type_name(uint8_t t)
{
    switch (t) {
    case QR_FT_STRING:
        return "string";
    case QR_FT_INT:
        return "int";
    case QR_FT_FLOAT:
        return "float";
    case QR_FT_BOOL:
        return "bool";
    default:
        return "null";
    }
}

int discover_fields_json(db_t *db, const char *tenant, qr_buf *out, qr_diag *d)
{
    db_snapshot *snap = NULL;
    int rc = db_snapshot_open(db, tenant, &snap);
    if (rc) return qr_diag_set(d, rc, "cannot open a snapshot: %s", qr_strerror(rc));
    agg a;
    memset(&a, 0, sizeof a);
    uint64_t total = 0;
    size_t parts = db_snapshot_part_count(snap);
    for (size_t part_idx = 0; part_idx < parts && !rc; part_idx++) {
        qr_part *p = db_snapshot_part(snap, part_idx);
        total += p->row_count;
        for (uint32_t fi = 0; fi < p->field_count; fi++) {
            const qr_field_schema *fs = &p->fields[fi];
            agg_entry *e = agg_get(&a, fs->key.ptr, fs->key.len, fs->type);
            if (!e) {
                rc = qr_diag_set(d, QR_ENOMEM, "out of memory");
                break;
            }
            e->rows += fs->row_count;
        }
    }
    if (!rc) {
        if (a.count) qsort(a.entries, a.count, sizeof *a.entries, cmp_name);
        static const char *const builtin[][2] = {{"ts", "timestamp"},  {"ingest_ts", "timestamp"},
                                                 {"service", "label"}, {"level", "level"},
                                                 {"host", "label"},    {"msg", "text"}};
        qr_jsonw_raw(out, "{\"fields\":[");
        for (size_t idx = 0; idx < sizeof builtin / sizeof builtin[0]; idx++) {
            qr_jsonw_raw(out, idx ? ",{\"name\":" : "{\"name\":");
            qr_jsonw_cstr(out, builtin[idx][0]);
            qr_jsonw_raw(out, ",\"type\":");
            qr_jsonw_cstr(out, builtin[idx][1]);
            qr_jsonw_raw(out, ",\"builtin\":true,\"rows\":");
            qr_jsonw_uint(out, total);
            qr_jsonw_raw(out, "}");
        }
        for (size_t idx = 0; idx < a.count; idx++) {
            agg_entry *e = &a.entries[idx];
            qr_jsonw_raw(out, ",{\"name\":");
            qr_jsonw_str(out, e->name, e->name_len);
            qr_jsonw_raw(out, ",\"type\":");
            qr_jsonw_cstr(out, type_name(e->type));
            qr_jsonw_raw(out, ",\"builtin\":false,\"rows\":");
            qr_jsonw_uint(out, e->rows);
            qr_jsonw_raw(out, "}");
        }
        qr_jsonw_raw(out, "],\"total_rows\":");
        qr_jsonw_uint(out, total);
        qr_jsonw_raw(out, "}\n");
        if (!qr_buf_ok(out)) rc = qr_diag_set(d, QR_ENOMEM, "out of memory");
    }
    agg_fini(&a);
    db_snapshot_free(snap);
    return rc;
}

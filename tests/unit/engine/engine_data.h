/* engine_data — the deterministic data set the engine tests query.
 *
 * qr_gen (fixed seed, 20 events/s of event time, so 12,000 events span 10 minutes) → evdec →
 * a data directory with 512-row segment blocks: the first third flushed into one segment, the
 * second third into another, the last third left in the memtable (batches of 600 rows, each
 * its own memtable block: db_ingest_take), so every query runs over both paths: posting lists on
 * segments, token-hash candidates + verification on the memtable. `all` keeps every event for
 * reference evaluators. */
#ifndef QR_ENGINE_DATA_H
#define QR_ENGINE_DATA_H

#include "common/qr_gen.h"
#include "common/qr_time.h"
#include "engine/engine.h"
#include "qr_test.h"
#include "storage/db.h"
#include "storage/evdec.h"

#define ED_EVENTS 12000
#define ED_BATCH 600
#define ED_START_NS 1749945600000000000LL /* 2025-06-15T00:00:00Z */

typedef struct engine_data {
    char dir[512];
    db_t *db;
    qr_batch all;
} engine_data;

static inline int engine_data_ingest(engine_data *ed, size_t from, size_t to)
{
    for (size_t start = from; start < to; start += ED_BATCH) {
        qr_batch b;
        qr_batch_init(&b);
        size_t end = start + ED_BATCH < to ? start + ED_BATCH : to;
        for (size_t idx = start; idx < end; idx++)
            if (qr_batch_copy_event(&b, &ed->all, idx)) return QR_ENOMEM;
        qr_diag d;
        qr_diag_init(&d);
        int rc = db_ingest_take(ed->db, NULL, &b, &d);
        qr_batch_fini(&b);
        if (rc) {
            fprintf(stderr, "ingest: %s\n", d.msg);
            return rc;
        }
    }
    return 0;
}

static inline int engine_data_open(engine_data *ed, const char *name)
{
    memset(ed, 0, sizeof *ed);
    if (!qr_test_tmpdir(name, ed->dir, sizeof ed->dir)) return QR_EIO;
    qr_batch_init(&ed->all);
    qr_gen_opts go = {.seed = 42, .start_ns = ED_START_NS, .rate_per_sec = 20};
    qr_gen *g = qr_gen_new(&go);
    if (!g) return QR_ENOMEM;
    qr_buf line;
    qr_buf_init(&line);
    evdec_opts eo = {.now_ns = ED_START_NS + 3600 * QR_NS_PER_SEC};
    int rc = 0;
    for (size_t idx = 0; idx < ED_EVENTS && !rc; idx++) {
        qr_buf_clear(&line);
        qr_gen_next_ndjson(g, &line);
        qr_diag d;
        qr_diag_init(&d);
        rc = evdec_ndjson_line((const char *)line.data, line.len - 1, &eo, &ed->all, &d);
    }
    qr_buf_fini(&line);
    qr_gen_free(g);
    if (rc) return rc;
    db_opts o;
    memset(&o, 0, sizeof o);
    o.block_rows = 512;
    o.flush_age_ms = 3600 * 1000;
    o.wal.fsync_policy = WAL_FSYNC_NEVER;
    qr_diag d;
    qr_diag_init(&d);
    rc = db_open(ed->dir, &o, &ed->db, NULL, &d);
    if (rc) return rc;
    size_t third = ED_EVENTS / 3;
    rc = engine_data_ingest(ed, 0, third);
    if (!rc) rc = db_flush(ed->db, &d);
    if (!rc) rc = engine_data_ingest(ed, third, 2 * third);
    if (!rc) rc = db_flush(ed->db, &d);
    if (!rc) rc = engine_data_ingest(ed, 2 * third, ED_EVENTS);
    return rc;
}

static inline void engine_data_close(engine_data *ed)
{
    if (ed->db) {
        db_close(ed->db);
        qr_test_rmdir(ed->dir);
    }
    qr_batch_fini(&ed->all);
}

/* Runs a query; returns its CSV text (malloc'd, \r dropped) or NULL with the error in *err. */
static inline char *engine_data_csv(engine_data *ed, const char *query, const exec_opts *opts,
                                    exec_result **keep, qr_diag *d)
{
    exec_result *r = NULL;
    qr_diag_init(d);
    int rc = exec_run(ed->db, NULL, query, opts, &r, d);
    if (rc) return NULL;
    qr_buf out;
    qr_buf_init(&out);
    exec_result_format(r, EXEC_FORMAT_CSV, &out);
    char *s = malloc(out.len + 1);
    size_t n = 0;
    for (size_t idx = 0; s && idx < out.len; idx++)
        if (out.data[idx] != '\r') s[n++] = (char)out.data[idx];
    if (s) s[n] = '\0';
    qr_buf_fini(&out);
    if (keep)
        *keep = r;
    else
        exec_result_free(r);
    return s;
}

#endif

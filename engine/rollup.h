/* rollup — rollup tables: windowed aggregates kept up to date on the ingest stream (issue #5).
 *
 * CREATE ROLLUP errors_5m AS SELECT bucket(ts, 5m) AS t, service, level, count(*) AS n,
 *   p99(latency_ms) AS p99 FROM logs [WHERE ...] GROUP BY t, service, level
 *   [WITH (retention = 90d, lateness = 1m)]
 *
 * A rollup manager runs the rollups of one data directory. It is a db observer: every batch
 * made durable passes each rollup's compiled filter (engine/evfilter.h) and updates open
 * windows, a hash of (bucket start, label values) → mergeable aggregate states
 * (engine/cq_agg.h). A window [s, e) closes by wall clock when now >= e + lateness; closed
 * windows are written to the rollup's own immutable files (docs/format.md, "Rollup files")
 * under <dir>/cq/<tenant>/rollups/<name>/ and published by an atomic MANIFEST. An event for a
 * window already closed is not added; it is counted as late (per rollup and per window, and
 * the query rewrite refuses windows with late events). A background thread closes windows,
 * applies retention and merges small files.
 *
 * Definitions persist (<name>/DEF holds the statement text) and survive restarts. On open and
 * on CREATE the open windows (everything after the last closed window) are rebuilt from the
 * stored events of a synchronized snapshot (db_snapshot_open_sync), so a crash never loses or
 * double counts an event; windows already due are then closed and written.
 *
 * Ownership: rollup_mgr_open/rollup_mgr_close. The manager is registered as an observer of
 * the db until db_close: close it after the last ingest and right before db_close (nothing
 * may be ingested in between). Thread safety: every function may be called from many
 * threads at once, except rollup_mgr_close (after every other call returned).
 * Errors: 0 or a negative QR_E*; definition errors are QR_ESYNTAX with "line L, column C: "
 * diagnostics; QR_EEXIST / QR_ENOTFOUND for names; QR_EIO / QR_ECORRUPT for files. */
#ifndef QR_ROLLUP_H
#define QR_ROLLUP_H

#include "common/qr_err.h"
#include "storage/db.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct rollup_mgr rollup_mgr;

typedef struct rollup_opts {
    /* what "now" is for closing windows and retention; NULL = the real clock (qr_now_ns) */
    int64_t (*clock_ns)(void *ctx);
    void *clock_ctx;
    uint32_t tick_ms; /* how often the background thread closes windows; 0 = 500 */
    bool no_thread;   /* no background thread: the caller calls rollup_mgr_tick (tests) */
    bool per_event;   /* tests: every event through each rollup's own filter (the reference
                       * path), not the per-batch shared evaluation */
} rollup_opts;

/* Loads every tenant's rollup definitions and closed windows, registers the manager as an
 * observer of db, rebuilds the open windows from the stored events and starts the background
 * thread. Call after db_open and before the first ingest. Errors before the registration
 * (a damaged DEF, MANIFEST or window file: QR_ECORRUPT naming the file; QR_EIO) fail the
 * open; a rollup whose rebuild fails afterwards is left out of this process (its files are
 * kept) and the open succeeds with d->code set and d->msg saying which. */
int rollup_mgr_open(db_t *db, const rollup_opts *opts, rollup_mgr **out, qr_diag *d);
/* Closes windows due now, stops the thread, frees everything. NULL is a no-op. Open windows
 * that are not due stay in memory only: the next open rebuilds them from the stored events. */
void rollup_mgr_close(rollup_mgr *m);
/* Closes the windows due at the clock's now, applies retention, merges small files. */
int rollup_mgr_tick(rollup_mgr *m, qr_diag *d);

/* One rollup as SHOW ROLLUPS / GET /v1/rollups report it. */
typedef struct rollup_info {
    char name[129];
    const char *text;    /* the CREATE statement (malloc'd; rollup_infos_free) */
    const char *state;   /* "backfilling" or "live" (static) */
    int64_t interval_ns; /* bucket width */
    int64_t lateness_ns;
    int64_t retention_ns; /* 0 = keep forever */
    uint64_t rows;        /* closed rows (files) + open rows (memory) */
    uint64_t windows;     /* distinct closed buckets + open buckets */
    uint64_t open_rows;
    uint64_t late_events;     /* events that came after their window closed */
    uint64_t backfill_events; /* events read by the backfill / rebuild so far */
    int64_t last_closed_ns;   /* start of the newest closed bucket; INT64_MIN = none */
    uint64_t files;
    uint64_t file_bytes;
} rollup_info;

/* The tenant's rollups sorted by name (NULL tenant = "default"). */
int rollup_list(rollup_mgr *m, const char *tenant, rollup_info **out, size_t *count);
void rollup_infos_free(rollup_info *infos, size_t count);

/* Creates the rollup of a CREATE ROLLUP statement (text is the whole statement; positions
 * point into it) and backfills it from the stored events before returning. Errors:
 * QR_ESYNTAX (unsupported aggregate, unknown field: positioned), QR_EEXIST (positioned at
 * the name), QR_EIO. Nothing is left behind on failure. */
int rollup_create(rollup_mgr *m, const char *tenant, const char *text, qr_diag *d);
/* Drops the rollup and deletes its files. QR_ENOTFOUND when there is none. */
int rollup_drop(rollup_mgr *m, const char *tenant, const char *name, qr_diag *d);

#endif

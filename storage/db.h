/* db — a Quarry data directory: WAL + per-tenant memtables and segments, one process at a time.
 *
 * Layout of DIR:
 *   LOCK                         flock'd by the process that has the directory open (pid inside)
 *   wal/NNN.wal                  the write-ahead log (storage/wal.h)
 *   tenants/<tenant>/CATALOG     live segments of the tenant (storage/catalog.h)
 *   tenants/<tenant>/NNN.qseg    segment files (storage/segment.h)
 *   cq/                          continuous queries' state (engine/; storage never touches it)
 *
 * Write path (db_ingest): the batch is appended to the WAL and returns only once durable under
 * the fsync policy; then its events enter the tenant's active memtable and are visible to the
 * next snapshot. A background thread freezes a memtable by size or age and flushes it into a
 * segment, publishes the catalog, then releases WAL files every tenant has flushed.
 * Ingest blocks (backpressure) while a tenant has too many frozen memtables waiting for flush,
 * so memory stays bounded whatever the ingest rate.
 * Recovery (db_open): catalogs are loaded, segments opened, leftover unpublished segment files
 * deleted, and WAL records newer than each tenant's flushed LSN replayed into memtables.
 *
 * Compaction (storage/compact.h): a second background thread merges runs of small segments
 * into large ones written with what is too slow for a flush (stronger zstd, a sparse index),
 * publishes the result in the catalog, and retires the inputs: a replaced file is unlinked
 * when the last part reference to it (snapshots) is dropped; a crash at any point leaves the
 * old catalog valid, and db_open deletes files the catalog does not name.
 *
 * Read path: db_snapshot pins the parts (segments, frozen and active memtables) of a tenant at
 * one instant; reading them needs no lock and sees no later writes.
 *
 * Ownership: db_open/db_close; db_snapshot/db_snapshot_free. Thread safety: all functions
 * may be called from many threads at once (db_close after every other call returned).
 * Errors: QR_EBUSY (directory locked by another process), QR_EIO, QR_ECORRUPT, QR_EINVAL (bad
 * tenant name), QR_ENOMEM; a diag says what and where. */
#ifndef QR_DB_H
#define QR_DB_H

#include "common/qr_err.h"
#include "storage/event.h"
#include "storage/part.h"
#include "storage/segment.h"
#include "storage/wal.h"

#include <stdbool.h>
#include <stdint.h>

#define DB_DEFAULT_TENANT "default"
/* zstd level of WAL records under db_open: fast enough that zstd only frames the bytes */
#define DB_WAL_ZSTD_LEVEL (-200)

typedef struct db_opts {
    wal_opts wal;           /* wal.zstd_level 0 = DB_WAL_ZSTD_LEVEL here (the WAL is short-lived) */
    uint32_t flush_rows;    /* freeze the active memtable at this many rows; 0 = 262144 */
    uint64_t flush_bytes;   /* ... or this many bytes; 0 = 128 MiB */
    uint32_t flush_age_ms;  /* ... or when its oldest row is this old; 0 = 5000 */
    uint32_t max_frozen;    /* frozen memtables per tenant before ingest waits; 0 = 2 */
    uint32_t block_rows;    /* segment block size; 0 = SEG_DEFAULT_BLOCK_ROWS */
    int segment_zstd_level; /* 0 = 1 */
    bool no_flush_on_close; /* leave memtables in the WAL at close (crash-like) */
    /* Compaction (docs/config.md): a background thread merges runs of adjacent small
     * segments (fewer than compact_rows / 2 rows each) into one segment of at most
     * compact_rows rows once compact_min_segments of them are adjacent. */
    bool compact_off;              /* no background compaction (db_compact still works) */
    uint32_t compact_min_segments; /* 0 = 4 */
    uint32_t compact_rows;         /* 0 = 1048576; memory while merging ~0.4 KB per row */
    int compact_zstd_level;        /* 0 = COMPACT_ZSTD_LEVEL (storage/compact.h) */
    uint32_t compact_frame_bytes;  /* msg frame size; 0 = COMPACT_MSG_FRAME_BYTES */
} db_opts;

typedef struct db db_t;
typedef struct db_snapshot db_snapshot;

/* Opens or creates DIR. report (optional) receives what WAL recovery found. */
int db_open(const char *dir, const db_opts *opts, db_t **out, wal_replay_report *report,
            qr_diag *d);
/* Tells glibc malloc to keep freed memory for reuse instead of returning it to the kernel
 * after every flush (page faults were ~10 % of ingest CPU); process-wide, idempotent.
 * db_open calls it; benchmarks that drive the storage stages without a db call it too. */
void db_malloc_tune(void);
/* Flushes memtables (unless no_flush_on_close), stops the flush thread, closes the WAL and
 * unlocks the directory. NULL is a no-op. */
void db_close(db_t *db);

/* Appends batch for tenant (NULL = "default"); returns when durable. The batch is copied. */
int db_ingest(db_t *db, const char *tenant, const qr_batch *batch, qr_diag *d);
/* Like db_ingest, but on success a large batch's contents move into the memtable (no copy)
 * and *batch is left empty and re-initialized; on failure *batch is unchanged. */
int db_ingest_take(db_t *db, const char *tenant, qr_batch *batch, qr_diag *d);
/* Ingest observers (continuous queries, DESIGN.md §5). fn is called for every batch
 * db_ingest/db_ingest_take made durable: from the ingesting thread, under the tenant's lock
 * (calls for one tenant are serialized, in memtable order), after the WAL append and before
 * the batch enters the memtable (the batch is intact). Not called for WAL replay in db_open.
 * fn must be fast, must not block on I/O and must not call db_* functions for the same
 * tenant (it would deadlock). Add observers after db_open and before the first ingest; they
 * stay until db_close. QR_ELIMIT past DB_MAX_OBSERVERS. */
#define DB_MAX_OBSERVERS 8
typedef void (*db_observer_fn)(void *ctx, const char *tenant, const qr_batch *batch, uint64_t lsn);
int db_observer_add(db_t *db, db_observer_fn fn, void *ctx);
/* The data directory db_open was given. Continuous-query state lives under DIR/cq/ (storage
 * never touches it). */
const char *db_dir(const db_t *db);

/* Freezes and flushes every tenant's memtable now; returns when the segments are published. */
int db_flush(db_t *db, qr_diag *d);

/* What db_compact did. */
typedef struct db_compact_report {
    uint64_t merges;      /* new segments written */
    uint64_t segments_in; /* segments they replaced */
    uint64_t rows;        /* rows rewritten */
    uint64_t bytes_in;    /* files replaced */
    uint64_t bytes_out;   /* files written */
} db_compact_report;

/* Compacts now (all tenants when tenant is NULL), one merge after another until no run is
 * left: runs of adjacent small segments (below compact_rows / 2 rows), at least two of them,
 * or a single flush segment that has not been compacted yet. Each merge is published
 * atomically (catalog) and the replaced files are removed when the last snapshot that reads
 * them is freed. Waits for a background compaction in progress.
 * Errors: as seg_write and compact_merge; merges published before the error stay. */
int db_compact(db_t *db, const char *tenant, db_compact_report *report, qr_diag *d);

int db_snapshot_open(db_t *db, const char *tenant, db_snapshot **out);
/* db_snapshot_open, calling fn(ctx) while the tenant's lock is held: every batch observed
 * (db_observer_add) before fn is in the snapshot, every batch observed after it is not — so a
 * continuous query can register and backfill from the snapshot with no gap and no double
 * count. A tenant that does not exist yet is created. fn NULL = db_snapshot_open. */
int db_snapshot_open_sync(db_t *db, const char *tenant, void (*fn)(void *ctx), void *ctx,
                          db_snapshot **out);
void db_snapshot_free(db_snapshot *s);
size_t db_snapshot_part_count(const db_snapshot *s);
/* Parts oldest first: segments, then frozen memtables, then the active memtable. */
qr_part *db_snapshot_part(const db_snapshot *s, size_t idx);

/* Names of the tenants that exist (malloc'd array of malloc'd strings; free with
 * db_tenants_free). */
int db_tenants(db_t *db, char ***names, size_t *count);
void db_tenants_free(char **names, size_t count);

typedef struct db_stats {
    uint64_t tenants;
    uint64_t segments;
    uint64_t segment_rows;
    uint64_t segment_bytes;
    uint64_t memtable_rows;
    uint64_t memtable_bytes;
    uint64_t frozen_memtables;
    uint64_t flushes;
    uint64_t compactions; /* merges published (background and db_compact) */
    wal_stats wal;
} db_stats;
void db_get_stats(db_t *db, db_stats *out);

/* Read-only verification of a data directory (works while another process has it open):
 * every segment checksum, every WAL record. Fills report; returns 0 if clean, QR_ECORRUPT
 * on the first corruption (report.problems says what), other errors as usual. */
typedef struct db_check_report {
    bool ok;
    uint64_t tenants;
    uint64_t segments;
    uint64_t segment_rows;
    uint64_t wal_files;
    uint64_t wal_records;
    uint64_t wal_events; /* events in WAL records not yet in segments */
    uint64_t events;     /* segment rows + wal_events */
    uint64_t bytes;      /* segment files + WAL files */
    uint64_t wal_bytes;
    uint64_t wal_torn_tail_bytes; /* an unacknowledged append cut short by a crash (not
                                     corruption; recovery drops it) */
    seg_stats columns;            /* summed over segments */
    uint32_t problem_count;
    char problems[8][300];
} db_check_report;
int db_check(const char *dir, db_check_report *report, qr_diag *d);

/* Tenant names: 1-64 bytes of [A-Za-z0-9_-]. */
bool db_tenant_name_ok(const char *name);

#endif

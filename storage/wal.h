/* wal — the write-ahead log: durable, append-only, group-committed.
 *
 * Files DIR/NNNNNNNNNNNNNNNNNNNN.wal (20-digit first LSN), each a sequence of records framed
 * with length, type, LSN and checksum (format at the top of wal.c and in docs/format.md).
 * A record carries one tenant's event batch, zstd-compressed. LSNs start at 1 and grow by one
 * per record across files.
 *
 * wal_append returns only when the record is durable under the configured policy:
 *   WAL_FSYNC_ALWAYS   (default) fsync before returning; concurrent appends share one fsync
 *                      (group commit: one leader writes and syncs everything queued).
 *   WAL_FSYNC_INTERVAL written before returning, fsync'd by a background timer every
 *                      interval_ms: a crash of the machine loses at most that window.
 *   WAL_FSYNC_NEVER    written only; the OS decides (tests, bulk loads). Data files are
 *                      never fsync'd, not even at close; directory changes still are.
 * Recovery (wal_replay) reads every file in LSN order, hands each complete, checksum-valid
 * record to a callback, and stops at the first torn or corrupt record, reporting where and
 * what it skipped; the torn tail is truncated so new appends follow the last good record.
 * wal_release(lsn) deletes files whose records all have LSN <= lsn (they are in segments).
 *
 * Ownership: wal_open/wal_close. Thread safety: wal_append, wal_release and wal_get_stats may
 * be called from many threads at once; wal_replay must run (once) before the first append
 * when the directory holds WAL files (wal_append returns QR_EINVAL until it has); wal_close
 * only when no call is in progress. One process per directory (no lock is taken here).
 * Errors: QR_EIO (diag with path and errno), QR_ENOMEM, QR_ELIMIT (record too large),
 * QR_EINVAL (bad argument, batch violating event.h limits, append before replay). After a
 * failed write or fsync the WAL refuses further appends (QR_EIO): data already acknowledged
 * stays safe, nothing unacknowledged is reported durable. */
#ifndef QR_WAL_H
#define QR_WAL_H

#include "common/qr_err.h"
#include "storage/event.h"

#include <stdint.h>

typedef enum wal_fsync_policy {
    WAL_FSYNC_ALWAYS = 0,
    WAL_FSYNC_INTERVAL = 1,
    WAL_FSYNC_NEVER = 2,
} wal_fsync_policy;

typedef struct wal_opts {
    wal_fsync_policy fsync_policy;
    uint32_t fsync_interval_ms; /* for WAL_FSYNC_INTERVAL; 0 = 200 */
    uint64_t file_bytes;        /* rotate to a new file past this; 0 = 64 MiB */
    int zstd_level;             /* 0 = 1; negative levels (-1..-7) trade ratio for speed */
    /* optional: called with the duration of every fdatasync of the log (group commits,
     * rotations, the interval syncer), from whichever thread ran it; must be thread-safe and
     * quick (e.g. a histogram of atomics) */
    void (*on_fsync)(void *ctx, uint64_t ns);
    void *on_fsync_ctx;
} wal_opts;

typedef struct wal wal_t;

typedef struct wal_replay_report {
    uint64_t files;
    uint64_t records; /* complete records handed to the callback */
    uint64_t events;
    uint64_t last_lsn;      /* highest LSN replayed, 0 if none */
    uint64_t skipped_bytes; /* bytes from the first bad record to the end of its file, plus
                               the sizes of all later files (truncated/deleted by replay) */
    char skipped_file[256]; /* path of the file holding the bad record, "" if clean */
    int64_t skipped_offset; /* offset of the bad record in that file, -1 if clean */
    char skipped_reason[128];
    bool torn_tail; /* the bad record is a write cut short at the end of the last file: what
                       a crash leaves of an unacknowledged append, not corruption */
} wal_replay_report;

/* Called per record in LSN order. The batch is valid only during the call (copy or move its
 * events out). Returning non-zero stops replay and wal_replay returns that value. */
typedef int (*wal_replay_fn)(void *ctx, uint64_t lsn, const char *tenant, qr_batch *batch);

/* Opens (creating) the WAL directory; opts may be NULL (defaults). Does not read records:
 * call wal_replay next. On failure nothing needs closing. Errors: QR_EIO, QR_ENOMEM,
 * QR_EINVAL (bad policy or zstd level). */
int wal_open(const char *dir, const wal_opts *opts, wal_t **out, qr_diag *d);
/* Replays every good record (fn may be NULL to only recover), fills report (may be NULL),
 * truncates a torn/corrupt tail and deletes later files, and positions appends after the
 * last good record (next LSN = report->last_lsn + 1). A skipped tail is not an error: it
 * returns 0 and says so in report (skipped_offset >= 0). Returns QR_EIO/QR_ENOMEM, the
 * callback's non-zero value, or QR_EINVAL after an append. */
int wal_replay(wal_t *w, wal_replay_fn fn, void *ctx, wal_replay_report *report, qr_diag *d);
/* Appends tenant's batch (tenant: 1..QR_TENANT_MAX_BYTES bytes, NUL-terminated; the batch is
 * only read, and may be reused once this returns); returns when durable per policy;
 * *out_lsn (may be NULL) is the record's LSN. Errors: QR_EIO (WAL poisoned), QR_ELIMIT
 * (encoded batch > QR_BATCH_MAX_BYTES or a value over an event.h limit), QR_EINVAL,
 * QR_ENOMEM. */
int wal_append(wal_t *w, const char *tenant, const qr_batch *batch, uint64_t *out_lsn, qr_diag *d);
/* Makes the next append use at least next_lsn. For a log whose files were all removed after
 * their rows reached segments (db_close does that): LSNs must keep growing across that, so
 * the database passes its highest flushed LSN + 1. Call after wal_replay, before the first
 * append. QR_ECORRUPT if files exist that end below next_lsn - 1 (records are missing). */
int wal_advance_lsn(wal_t *w, uint64_t next_lsn, qr_diag *d);
/* Deletes every WAL file whose records all have LSN <= lsn; the file being appended to is
 * never deleted. Errors: QR_EIO, QR_ENOMEM. */
int wal_release(wal_t *w, uint64_t lsn, qr_diag *d);
/* Stops the timer, fsyncs what the interval policy has not yet synced, closes files.
 * NULL is a no-op. */
void wal_close(wal_t *w);

/* Figures for /metrics and benchmarks. */
typedef struct wal_stats {
    uint64_t appends;       /* records made durable (per policy) since open */
    uint64_t fsyncs;        /* fdatasync calls (group commits, rotations, interval timer) */
    uint64_t bytes_written; /* record bytes written (compressed, framed) */
    uint64_t fsync_ns_total;
    uint64_t last_lsn;      /* highest durable LSN (after replay: the last replayed) */
    uint64_t bytes_raw;     /* qr_batch_encode bytes of those records, before zstd */
    uint64_t group_writes;  /* leader write rounds (appends / group_writes = group size) */
    uint64_t files;         /* WAL files currently in the directory */
    uint64_t files_deleted; /* by wal_release */
    int is_failed;          /* poisoned by a write/fsync failure */
} wal_stats;
void wal_get_stats(wal_t *w, wal_stats *out);

/* Reads every record of every file in dir, read-only (no truncation, no lock needed), handing
 * each to fn like wal_replay; stops at the first bad record and reports it. */
int wal_scan_dir(const char *dir, wal_replay_fn fn, void *ctx, wal_replay_report *report,
                 qr_diag *d);

/* Checks every record of every file in dir without replaying into anything (quarry check).
 * Fills the report; returns 0 if clean, QR_ECORRUPT if a bad record was found. */
int wal_verify_dir(const char *dir, wal_replay_report *report, qr_diag *d);

#endif

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
 *   WAL_FSYNC_NEVER    written only; the OS decides (tests, bulk loads).
 * Recovery (wal_replay) reads every file in LSN order, hands each complete, checksum-valid
 * record to a callback, and stops at the first torn or corrupt record, reporting where and
 * what it skipped; the torn tail is truncated so new appends follow the last good record.
 * wal_release(lsn) deletes files whose records all have LSN <= lsn (they are in segments).
 *
 * Ownership: wal_open/wal_close. Thread safety: wal_append and wal_release may be called from
 * many threads at once; wal_replay must run before the first append.
 * Errors: QR_EIO (diag with path and errno), QR_ENOMEM, QR_ELIMIT (record too large). After a
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
    uint32_t fsync_interval_ms;  /* for WAL_FSYNC_INTERVAL; 0 = 200 */
    uint64_t file_bytes;         /* rotate to a new file past this; 0 = 64 MiB */
    int zstd_level;              /* 0 = 1 */
} wal_opts;

typedef struct wal wal_t;

typedef struct wal_replay_report {
    uint64_t files;
    uint64_t records;           /* complete records handed to the callback */
    uint64_t events;
    uint64_t last_lsn;          /* highest LSN replayed, 0 if none */
    uint64_t skipped_bytes;     /* bytes after the first bad record (truncated) */
    char skipped_file[256];     /* file holding the bad record, "" if the log was clean */
    int64_t skipped_offset;     /* offset of the bad record in that file, -1 if clean */
    char skipped_reason[128];
} wal_replay_report;

/* Called per record in LSN order. The batch is valid only during the call (copy or move its
 * events out). Returning non-zero stops replay and wal_replay returns that value. */
typedef int (*wal_replay_fn)(void *ctx, uint64_t lsn, const char *tenant, qr_batch *batch);

/* Opens (creating) the WAL directory. Does not read records: call wal_replay next. */
int wal_open(const char *dir, const wal_opts *opts, wal_t **out, qr_diag *d);
int wal_replay(wal_t *w, wal_replay_fn fn, void *ctx, wal_replay_report *report, qr_diag *d);
/* Appends tenant's batch; returns when durable per policy; *out_lsn is the record's LSN. */
int wal_append(wal_t *w, const char *tenant, const qr_batch *batch, uint64_t *out_lsn,
               qr_diag *d);
/* Deletes every WAL file whose records all have LSN <= lsn. */
int wal_release(wal_t *w, uint64_t lsn, qr_diag *d);
/* Flushes and fsyncs what is pending, stops the timer, closes files. NULL is a no-op. */
void wal_close(wal_t *w);

/* Figures for /metrics and benchmarks. */
typedef struct wal_stats {
    uint64_t appends;
    uint64_t fsyncs;
    uint64_t bytes_written;
    uint64_t fsync_ns_total;
    uint64_t last_lsn;
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

/* catalog — a tenant's list of live segments, published atomically.
 *
 * File TENANT_DIR/CATALOG, text, one item per line, last line a checksum:
 *   quarry-catalog 1
 *   flushed_lsn <u64>          every WAL record of this tenant with LSN <= this is in segments
 *   next_segment_id <u64>
 *   segment <id> <file> <rows> <min_ts_ns> <max_ts_ns> <bytes>     (one per live segment)
 *   checksum <16 hex digits: xxh3-64 of every byte before this line>
 * Published by writing CATALOG.tmp, fsync, rename, fsync of the directory (qr_fs_write_atomic):
 * a crash leaves the old catalog or the new one, never a mix. Segment files in the directory
 * that the catalog does not list are leftovers of a crash between writing a segment and
 * publishing it; their rows are still in the WAL, so the database deletes them at open.
 * Ownership: catalog_state_init/fini; segs is owned by the state. Reentrant.
 * Errors: QR_EIO, QR_ECORRUPT (diag names the line), QR_ENOMEM. */
#ifndef QR_CATALOG_H
#define QR_CATALOG_H

#include "common/qr_err.h"

#include <stddef.h>
#include <stdint.h>

#define CATALOG_FILE "CATALOG"
#define CATALOG_FILE_MAX_BYTES (64 * 1024 * 1024)

typedef struct catalog_seg {
    uint64_t id;
    char file[64];
    uint64_t rows;
    int64_t min_ts_ns;
    int64_t max_ts_ns;
    uint64_t bytes;
} catalog_seg;

typedef struct catalog_state {
    uint64_t flushed_lsn;
    uint64_t next_segment_id;
    catalog_seg *segs;
    size_t count;
    size_t cap;
} catalog_state;

void catalog_state_init(catalog_state *s);
void catalog_state_fini(catalog_state *s);
int catalog_state_add(catalog_state *s, const catalog_seg *seg);
int catalog_state_copy(catalog_state *dst, const catalog_state *src);
/* A missing file loads as an empty state (next_segment_id 1). */
int catalog_load(const char *tenant_dir, catalog_state *out, qr_diag *d);
int catalog_store(const char *tenant_dir, const catalog_state *s, qr_diag *d);

#endif

/* compact — merges segments into one larger segment (DESIGN.md §3, lifecycle).
 *
 * compact_merge reads every row of the given parts back through the part API (storage/part.h)
 * and writes them with seg_write into one new file: rows sorted by ts again, blocks, blooms
 * and the inverted index rebuilt over the whole merged set. The caller picks the write
 * options; what compaction uses (compact_seg_opts) is what is too slow for the ingest-time
 * flush: a stronger zstd level, larger msg frames, and a sparse inverted index (terms that
 * occur in at most INVIDX_SPARSE_MAX_BLOCKS blocks are left to those blocks' blooms; invidx.h),
 * and msg lengths inside the frames.
 * The merged file is written as path.tmp and renamed (seg_write), so a crash leaves the
 * inputs untouched and at most a file that no catalog names (db_open deletes it).
 * Memory: the rows of all inputs are held as event batches while the file is written, about
 * 0.3–0.4 KB per row: the caller bounds it by the rows it merges at once (db_opts.compact_rows).
 * Publishing the file and retiring the inputs is the database's job (db.h: db_compact).
 * Thread safety: reentrant; parts may be read by other threads meanwhile.
 * Errors: 0 or QR_E*; QR_ECORRUPT when an input is damaged (nothing is written then),
 * QR_ECANCELED when *cancel became true. */
#ifndef QR_COMPACT_H
#define QR_COMPACT_H

#include "common/qr_err.h"
#include "storage/part.h"
#include "storage/segment.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* Defaults for compacted segments, chosen by measurement (bench/RESULTS.md, "Compaction"). */
#define COMPACT_ZSTD_LEVEL 12
#define COMPACT_MSG_FRAME_BYTES (512 * 1024)

/* The write options compaction uses: level, frame size, sparse index; block_rows and
 * segment_id are left to the caller. */
seg_write_opts compact_seg_opts(int zstd_level, uint32_t msg_frame_bytes);

/* Writes the rows of parts[0..count) into a new segment at path. cancel (optional) is polled
 * between blocks. stats_out (optional) receives the new file's byte counts. */
int compact_merge(qr_part *const *parts, size_t count, const char *path, const seg_write_opts *opts,
                  const atomic_bool *cancel, seg_stats *stats_out, qr_diag *d);

#endif

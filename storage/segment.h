/* segment — immutable columnar segment files (DESIGN.md §3; byte format in docs/format.md).
 *
 * seg_write turns rows (a list of event batches, e.g. a frozen memtable's chunks) into one
 * file: rows sorted by ts, cut into blocks; ts delta-encoded + bit-packed; service/level/host
 * dictionary ids bit-packed or RLE; msg in independently decompressible zstd frames; typed
 * field columns; a token bloom per block sized on distinct tokens; a roaring inverted index
 * with a sorted, prefix-searchable term dictionary; a footer with pruning stats, the format
 * version and checksums. The file is written to `path` + ".tmp", fsync'd, renamed to `path`
 * and the directory fsync'd, so a crash leaves either no segment or a whole one.
 *
 * seg_open maps a file read-only, checks the footer and header checksums and builds the
 * qr_part (storage/part.h) that queries read through. seg_verify checks every checksum of
 * every section (what `quarry check` runs). Bytes from disk are never trusted: every offset
 * and length is bounds-checked; roaring bitmaps are read with the _safe deserializer.
 *
 * Columns as the part hands them out: ts and ingest_ts as i64 (type INT), level as u8 (type
 * INT), service and host as ids + the segment's sorted dictionary (type STRING), msg as strs;
 * fields by schema type (low-cardinality strings as ids + dict). Block blooms hold the msg
 * tokens only; field values are filtered by scanning their columns.
 * Every chunk is checksummed when read (QR_ECORRUPT, never wrong data); a damaged bloom
 * answers "may contain" so the following column read reports the damage.
 *
 * Ownership: seg_open returns a part holding one reference; qr_part_unref closes the map.
 * Thread safety: seg_write is reentrant (one call per file); an open part may be read from
 * any number of threads. */
#ifndef QR_SEGMENT_H
#define QR_SEGMENT_H

#include "common/qr_err.h"
#include "storage/event.h"
#include "storage/part.h"

#include <stdbool.h>
#include <stdint.h>

#define SEG_FORMAT_VERSION 1
#define SEG_FILE_SUFFIX ".qseg"
/* Rows per block: small enough that 5-minute histograms answer from block metadata and a
 * needle decodes little, large enough that per-block metadata stays a small part of the file. */
#define SEG_DEFAULT_BLOCK_ROWS 8192

enum { SEG_PHRASE_NONE = 0, SEG_PHRASE_COUNTED = 1, SEG_PHRASE_CHECKED = 2 };

typedef struct seg_write_opts {
    uint32_t block_rows; /* 0 = SEG_DEFAULT_BLOCK_ROWS */
    int zstd_level;      /* 0 = 1 on flush (compaction uses higher) */
    bool no_postings;    /* skip the inverted index (warm tier) */
    /* Compaction: leave terms that occur in a few blocks out of the inverted index (the
     * block bloom finds them; invidx_builder_finish_sparse). */
    bool sparse_index;
    uint32_t msg_frame_bytes; /* raw msg bytes per zstd frame; 0 = SEG_MSG_FRAME_TARGET,
                                 at most SEG_MSG_FRAME_TARGET_MAX */
    /* Compaction: each msg's length as a uvarint in front of it inside the frame, not in a
     * column of its own (zstd predicts it from the message; a row's bytes need its frame
     * decompressed anyway). */
    bool msg_inline_lengths;
    /* Record exact adjacency pairs (storage/phrase.h) so phrases of template words are
     * answered by the postings alone: SEG_PHRASE_COUNTED keeps the pairs the counts prove
     * (flush), SEG_PHRASE_CHECKED also checks the others against the postings (compaction). */
    uint8_t phrase_pairs;
    uint64_t segment_id;      /* recorded in the footer */
} seg_write_opts;

/* Bytes the file spends per concern, for `quarry check` and benchmarks. */
typedef struct seg_stats {
    uint64_t rows;
    uint64_t blocks;
    uint64_t file_bytes;
    uint64_t ts_bytes;
    uint64_t ingest_ts_bytes;
    uint64_t level_bytes;
    uint64_t service_bytes;
    uint64_t host_bytes;
    uint64_t msg_bytes;
    uint64_t field_bytes;
    uint64_t bloom_bytes;
    uint64_t postings_bytes; /* inverted index: term dictionary + posting lists */
    uint64_t meta_bytes;     /* block metadata, dictionaries, schema, footer */
} seg_stats;

/* Writes all events of batches[0..batch_count) into a new segment file at path.
 * Errors: QR_EIO (diag with the path), QR_ENOMEM, QR_EINVAL (no rows). */
int seg_write(const char *path, const qr_batch *const *batches, size_t batch_count,
              const seg_write_opts *opts, seg_stats *stats_out, qr_diag *d);

/* Opens and maps a segment. Errors: QR_EIO, QR_ECORRUPT (diag: path, offset, what). */
int seg_open(const char *path, qr_part **out, qr_diag *d);

/* Marks an open segment as replaced (compaction): its file is unlinked when the last
 * reference to the part is dropped. */
void seg_unlink_on_close(qr_part *seg);

/* Checks every checksum and structural invariant of an open segment; fills stats.
 * Errors: QR_ECORRUPT with the first problem. */
int seg_verify(qr_part *seg, seg_stats *stats_out, qr_diag *d);

#endif

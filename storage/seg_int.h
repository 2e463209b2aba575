/* seg_int — internals shared by seg_writer.c and seg_reader.c: format constants and limits.
 * The byte format itself is documented at the top of seg_writer.c and in docs/format.md. */
#ifndef QR_SEG_INT_H
#define QR_SEG_INT_H

#include "storage/segment.h"

#include <stdint.h>

#define SEG_HEADER_BYTES 16
#define SEG_TRAILER_BYTES 32
/* "QSEG\r\n\x1a\n": detects text-mode mangling like PNG's signature. */
#define SEG_MAGIC "QSEG\r\n\x1a\n"
#define SEG_TRAILER_MAGIC "QSEGEND\n"

/* Chunk slots per block, in footer order; field f uses slot SEG_SLOT_FIELD0 + f. */
enum {
    SEG_SLOT_BLOOM = 0,
    SEG_SLOT_TS,
    SEG_SLOT_INGEST_TS,
    SEG_SLOT_LEVEL,
    SEG_SLOT_SERVICE,
    SEG_SLOT_HOST,
    SEG_SLOT_MSG,
    SEG_SLOT_FIELD0,
};

/* First byte of every column chunk: how the rest is stored. */
enum { SEG_COMP_NONE = 0, SEG_COMP_ZSTD = 1 };

/* Field column value encodings (byte after the present map). */
enum {
    SEG_FENC_INT = 1,       /* codec i64 */
    SEG_FENC_FLOAT_RAW = 2, /* m x 8-byte IEEE doubles */
    SEG_FENC_FLOAT_DEC = 3, /* u8 decimals, codec i64 of v * 10^decimals (exact) */
    SEG_FENC_BOOL = 4,      /* m bits */
    SEG_FENC_STR = 5,       /* codec u64 lengths, then the bytes */
    SEG_FENC_HEX = 6,       /* u8 upper, uvarint hex_len, m x hex_len/2 bytes */
    SEG_FENC_DICT = 7,      /* codec u64 ids into the field's segment dictionary */
    SEG_FENC_NULL = 8,      /* null-typed field: the present map is all there is */
};

/* A byte range of the file with its checksum; len 0 = absent. */
typedef struct seg_ref {
    uint64_t off;
    uint64_t len;
    uint32_t crc;
} seg_ref;

/* First payload byte of a msg index chunk whose lengths are inside the frames (otherwise the
 * payload starts with the codec u64 mode of the lengths column, 0x01 or 0x02). */
#define SEG_MSG_INLINE 0x20
/* A frame with inline lengths holds at most this many raw bytes (messages + uvarints). */
#define SEG_MSG_INLINE_FRAME_MAX (SEG_MSG_FRAME_MAX + 5u * SEG_MAX_BLOCK_ROWS)

/* First payload byte of an ingest_ts chunk. */
enum { SEG_INGEST_FROM_TS = 0, SEG_INGEST_RAW = 1 };

/* Field dictionary kinds in the schema. */
enum { SEG_FIELD_PLAIN = 0, SEG_FIELD_DICT = 1 };

/* Limits (format invariants the reader enforces). */
#define SEG_MAX_BLOCK_ROWS (1u << 20)          /* bounds per-block decode buffers */
#define SEG_MSG_FRAME_TARGET (64 * 1024)       /* raw msg bytes per zstd frame at flush, about */
#define SEG_MSG_FRAME_TARGET_MAX (1024 * 1024) /* largest target a writer may choose */
/* A frame closes once past its target, so it holds at most target + one message. */
#define SEG_MSG_FRAME_MAX (SEG_MSG_FRAME_TARGET_MAX + QR_MSG_MAX_BYTES)
#define SEG_CHUNK_RAW_MAX (256u * 1024 * 1024) /* decompressed size of one column chunk */
#define SEG_STR_MAX_BYTES QR_BATCH_MAX_BYTES   /* one string field value */
#define SEG_HEX_MAX 128                        /* longest hex string stored as binary */
#define SEG_DICT_MAX 65536                     /* distinct values for a dictionary string field */
#define SEG_FLOAT_DEC_MAX 6                    /* decimals tried for exact float scaling */

/* Open flags for seg_open_ex. SEG_OPEN_NO_CHECKSUMS is for the fuzzer only: it lets random
 * bytes reach the structural decoders, which must stay safe without checksums. */
#define SEG_OPEN_NO_CHECKSUMS 1u
/* footer has_index: flag for the adjacency pairs ref after the index ref */
#define SEG_INDEX_PHRASE 4u

int seg_open_ex(const char *path, unsigned flags, qr_part **out, qr_diag *d);

#endif

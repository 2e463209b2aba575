/* seg_reader — maps a segment file and serves it as a qr_part (format: top of
 * seg_writer.c, docs/format.md).
 *
 * seg_open reads the header, the trailer and the footer with pread (not through the map),
 * checks their checksums, then parses the whole footer into arrays (blocks, counts, chunk
 * refs, dictionaries, schema), validating every offset, length and count against the file;
 * string field dictionaries are read, checksummed and decoded at open because every load of
 * those columns hands them out. Opening touches no page of the map: page-cache folios can be
 * large (2 MB), a fault maps a whole folio, and every segment stays open for the life of
 * the process, so touching a few bytes per segment made file-backed RSS grow with the data.
 * The inverted index is opened (term heads checksummed) on the first postings lookup.
 * Column chunks, msg frames, blooms and index blocks are checksummed when they are read
 * (xxh3 runs at memory speed, far faster than the decoders), so a flipped byte becomes
 * QR_ECORRUPT, never a wrong answer. Blooms cache their verdict per block in an atomic byte
 * (a bloom is probed far more often than it is read once). seg_verify reads everything.
 * The part is immutable after open except for that atomic cache and the index, opened once
 * under ix_mu and published through the atomic ix_state. */
#include "common/qr_hash.h"
#include "storage/bloom.h"
#include "storage/codec.h"
#include "storage/invidx.h"
#include "storage/phrase.h"
#include "storage/seg_int.h"
#include "storage/tokenize.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

typedef struct rblock {
    uint32_t first_row;
    uint32_t row_count;
    int64_t min_ts_ns;
    int64_t max_ts_ns;
    uint32_t counts_off;
    uint32_t counts_n;
} rblock;

typedef struct rfield {
    uint8_t kind; /* SEG_FIELD_PLAIN / SEG_FIELD_DICT */
    uint32_t dict_count;
    seg_ref dict_ref;
    qr_str *dict;
    uint8_t *dict_bytes; /* heap copy of the dictionary chunk: dict points into it */
} rfield;

typedef struct seg_reader {
    qr_part part;
    const uint8_t *map;
    size_t map_len;
    uint64_t data_end; /* footer offset: chunks lie in [SEG_HEADER_BYTES, data_end) */
    uint32_t footer_len;
    uint8_t *footer; /* heap copy of the footer: names and keys point into it */
    unsigned flags;
    char *path;
    uint32_t block_rows;
    rblock *blocks;
    seg_ref *refs;
    uint32_t slots;
    qr_svc_level_count *counts;
    qr_str *services;
    qr_str *hosts;
    uint64_t *service_rows;
    qr_field_schema *fields;
    rfield *rfields;
    bool has_ix;
    bool ix_sparse; /* footer has_index = 2: the blob must be a sparse ("QIX2") index */
    seg_ref ix_ref;
    invidx ix;                   /* valid once ix_state is IX_OK */
    atomic_int ix_state;         /* IX_UNOPENED / IX_OK / IX_BAD; moves once, under ix_mu */
    uint64_t ix_bad_off;         /* where the index header is bad, for IX_BAD */
    pthread_mutex_t ix_mu;       /* serialises the one invidx_open (and phrase_pairs_open) */
    seg_ref ph_ref;              /* adjacency pairs (has_index | SEG_INDEX_PHRASE), len 0: none */
    phrase_pairs ph;             /* valid once ph_state is IX_OK */
    atomic_int ph_state;         /* IX_UNOPENED / IX_OK / IX_BAD, like ix_state */
    atomic_uchar *bloom_state;   /* 0 unknown, 1 good, 2 bad */
    atomic_bool unlink_on_close; /* replaced by compaction: remove the file at the last unref */
} seg_reader;

enum { IX_UNOPENED, IX_OK, IX_BAD };

static seg_reader *impl(qr_part *p)
{
    return (seg_reader *)p->impl;
}

static int corrupt_at(const seg_reader *s, qr_diag *d, uint64_t off, const char *what)
{
    int rc = qr_diag_set(d, QR_ECORRUPT, "segment %s: %s at offset %llu", s->path, what,
                         (unsigned long long)off);
    if (d) d->offset = (int64_t)off;
    return rc;
}

static int oom(qr_arena *a, qr_diag *d)
{
    if (a && a->over_budget)
        return qr_diag_set(d, QR_ELIMIT, "segment read: over the memory budget");
    return qr_diag_set(d, QR_ENOMEM, "segment read: out of memory");
}

static void *arena_arr(qr_arena *a, size_t n, size_t size)
{
    return qr_arena_calloc(a, n ? n : 1, size);
}

static bool ref_ok(const seg_reader *s, const seg_ref *r)
{
    if (r->len == 0) return r->off == 0 && r->crc == 0;
    return r->off >= SEG_HEADER_BYTES && r->off <= s->data_end && r->len <= s->data_end - r->off;
}

static bool crc_ok(const seg_reader *s, const seg_ref *r)
{
    return (s->flags & SEG_OPEN_NO_CHECKSUMS) ||
           qr_checksum32(s->map + r->off, (size_t)r->len) == r->crc;
}

/* The payload of a column chunk, decompressed into the arena when it is zstd. */
static int chunk_payload(const seg_reader *s, const seg_ref *r, qr_arena *a, const uint8_t **out,
                         size_t *out_len, qr_diag *d)
{
    if (r->len == 0) return corrupt_at(s, d, r->off, "empty chunk");
    if (!crc_ok(s, r)) return corrupt_at(s, d, r->off, "chunk checksum mismatch");
    const uint8_t *p = s->map + r->off;
    if (p[0] == SEG_COMP_NONE) {
        *out = p + 1;
        *out_len = (size_t)r->len - 1;
        return 0;
    }
    if (p[0] != SEG_COMP_ZSTD) return corrupt_at(s, d, r->off, "unknown chunk compression");
    qr_rd rd;
    qr_rd_init(&rd, p + 1, (size_t)r->len - 1);
    uint64_t raw_len = qr_rd_uvarint(&rd);
    if (rd.bad || raw_len > SEG_CHUNK_RAW_MAX || raw_len == 0)
        return corrupt_at(s, d, r->off, "bad compressed chunk length");
    size_t zlen = qr_rd_left(&rd);
    unsigned long long fsize = ZSTD_getFrameContentSize(rd.p, zlen);
    if (fsize != raw_len) return corrupt_at(s, d, r->off, "bad zstd frame header");
    uint8_t *buf = qr_arena_alloc(a, (size_t)raw_len);
    if (!buf) return oom(a, d);
    size_t got = ZSTD_decompress(buf, (size_t)raw_len, rd.p, zlen);
    if (ZSTD_isError(got) || got != raw_len) return corrupt_at(s, d, r->off, "bad zstd frame");
    *out = buf;
    *out_len = (size_t)raw_len;
    return 0;
}

static const seg_ref *block_ref(const seg_reader *s, uint32_t block_idx, uint32_t slot)
{
    return &s->refs[(size_t)block_idx * s->slots + slot];
}

/* ------------------------------------------------------------ column decoders */

static int load_i64(const seg_reader *s, const seg_ref *r, uint32_t n, qr_arena *a, int64_t **out,
                    qr_diag *d)
{
    const uint8_t *p;
    size_t len;
    int rc = chunk_payload(s, r, a, &p, &len, d);
    if (rc) return rc;
    int64_t *v = arena_arr(a, n, sizeof *v);
    if (!v) return oom(a, d);
    qr_rd rd;
    qr_rd_init(&rd, p, len);
    if (codec_i64_decode(&rd, n, v) || qr_rd_left(&rd))
        return corrupt_at(s, d, r->off, "bad integer column");
    *out = v;
    return 0;
}

static int load_ingest(const seg_reader *s, uint32_t block_idx, qr_arena *a, qr_column *out,
                       qr_diag *d)
{
    const seg_ref *r = block_ref(s, block_idx, SEG_SLOT_INGEST_TS);
    uint32_t n = s->blocks[block_idx].row_count;
    const uint8_t *p;
    size_t len;
    int rc = chunk_payload(s, r, a, &p, &len, d);
    if (rc) return rc;
    int64_t *v = arena_arr(a, n, sizeof *v);
    if (!v) return oom(a, d);
    qr_rd rd;
    qr_rd_init(&rd, p, len);
    uint8_t mode = qr_rd_u8(&rd);
    if (mode == SEG_INGEST_RAW) {
        rc = codec_u64_decode(&rd, n, (uint64_t *)v);
    } else if (mode == SEG_INGEST_FROM_TS) {
        rc = codec_i64_decode(&rd, n, v);
        int64_t *ts;
        if (!rc && !qr_rd_left(&rd)) {
            rc = load_i64(s, block_ref(s, block_idx, SEG_SLOT_TS), n, a, &ts, d);
            if (rc) return rc;
            for (uint32_t row = 0; row < n; row++)
                v[row] = (int64_t)((uint64_t)v[row] + (uint64_t)ts[row]);
        }
    } else {
        rc = QR_ECORRUPT;
    }
    if (rc || rd.bad || qr_rd_left(&rd)) return corrupt_at(s, d, r->off, "bad ingest_ts column");
    out->type = QR_FT_INT;
    out->i64 = v;
    return 0;
}

static int load_ids(const seg_reader *s, const seg_ref *r, uint32_t n, uint32_t max, qr_arena *a,
                    uint32_t **out, qr_diag *d)
{
    const uint8_t *p;
    size_t len;
    int rc = chunk_payload(s, r, a, &p, &len, d);
    if (rc) return rc;
    uint32_t *v = arena_arr(a, n, sizeof *v);
    if (!v) return oom(a, d);
    qr_rd rd;
    qr_rd_init(&rd, p, len);
    if (codec_u32_decode(&rd, n, max, v) || qr_rd_left(&rd))
        return corrupt_at(s, d, r->off, "bad id column");
    *out = v;
    return 0;
}

typedef struct msg_index {
    uint32_t n;
    uint64_t *lens_prefix; /* n + 1 byte offsets within the block's messages (NULL inline) */
    bool inline_lens;      /* lengths are uvarints inside the frames (compacted segments) */
    uint64_t *raw_prefix;  /* inline: frame_count + 1 offsets of the frames' raw bytes */
    uint32_t frame_count;
    uint32_t *frame_first; /* frame_count + 1 first rows */
    uint64_t *frame_off;   /* file offsets */
    uint64_t *frame_len;
    uint32_t *frame_crc;
} msg_index;

static int msg_index_load(const seg_reader *s, uint32_t block_idx, qr_arena *a, msg_index *mi,
                          qr_diag *d)
{
    const seg_ref *r = block_ref(s, block_idx, SEG_SLOT_MSG);
    uint32_t n = s->blocks[block_idx].row_count;
    const uint8_t *p;
    size_t len;
    int rc = chunk_payload(s, r, a, &p, &len, d);
    if (rc) return rc;
    qr_rd rd;
    qr_rd_init(&rd, p, len);
    uint64_t *lens = NULL;
    mi->inline_lens = len > 0 && p[0] == SEG_MSG_INLINE;
    if (mi->inline_lens) {
        qr_rd_u8(&rd);
    } else {
        lens = arena_arr(a, (size_t)n + 1, sizeof *lens);
        if (!lens) return oom(a, d);
        if (codec_u64_decode(&rd, n, lens + 1))
            return corrupt_at(s, d, r->off, "bad msg lengths");
        lens[0] = 0;
        for (uint32_t row = 1; row <= n; row++) {
            if (lens[row] > QR_MSG_MAX_BYTES) return corrupt_at(s, d, r->off, "msg too long");
            lens[row] += lens[row - 1];
        }
    }
    uint64_t frames = qr_rd_uvarint(&rd);
    uint64_t off = qr_rd_uvarint(&rd);
    if (rd.bad || frames == 0 || frames > n || frames > qr_rd_left(&rd))
        return corrupt_at(s, d, r->off, "bad msg frame count");
    mi->frame_first = arena_arr(a, (size_t)frames + 1, sizeof *mi->frame_first);
    mi->frame_off = arena_arr(a, (size_t)frames, sizeof *mi->frame_off);
    mi->frame_len = arena_arr(a, (size_t)frames, sizeof *mi->frame_len);
    mi->frame_crc = arena_arr(a, (size_t)frames, sizeof *mi->frame_crc);
    mi->raw_prefix = mi->inline_lens ? arena_arr(a, (size_t)frames + 1, sizeof(uint64_t)) : NULL;
    if (!mi->frame_first || !mi->frame_off || !mi->frame_len || !mi->frame_crc ||
        (mi->inline_lens && !mi->raw_prefix))
        return oom(a, d);
    uint64_t row = 0;
    for (uint64_t f = 0; f < frames; f++) {
        uint64_t rows = qr_rd_uvarint(&rd);
        uint64_t raw = 0;
        if (mi->inline_lens) {
            raw = qr_rd_uvarint(&rd);
            /* each row costs at least its one-byte length */
            if (rd.bad || raw < rows || raw > SEG_MSG_INLINE_FRAME_MAX)
                return corrupt_at(s, d, r->off, "bad msg frame size");
            mi->raw_prefix[f + 1] = (f ? mi->raw_prefix[f] : 0) + raw;
            if (!f) mi->raw_prefix[0] = 0;
        }
        uint64_t clen = qr_rd_uvarint(&rd);
        uint32_t crc = qr_rd_u32(&rd);
        if (rd.bad || rows == 0 || rows > n - row || clen == 0 || off < SEG_HEADER_BYTES ||
            off > s->data_end || clen > s->data_end - off)
            return corrupt_at(s, d, r->off, "bad msg frame entry");
        if (!mi->inline_lens && lens[row + rows] - lens[row] > SEG_MSG_FRAME_MAX)
            return corrupt_at(s, d, r->off, "msg frame too large");
        mi->frame_first[f] = (uint32_t)row;
        mi->frame_off[f] = off;
        mi->frame_len[f] = clen;
        mi->frame_crc[f] = crc;
        row += rows;
        off += clen;
    }
    if (row != n || qr_rd_left(&rd))
        return corrupt_at(s, d, r->off, "msg frames do not cover the block");
    mi->frame_first[frames] = n;
    mi->n = n;
    mi->lens_prefix = lens;
    mi->frame_count = (uint32_t)frames;
    return 0;
}

static uint64_t msg_frame_raw(const msg_index *mi, uint32_t f)
{
    if (mi->inline_lens) return mi->raw_prefix[f + 1] - mi->raw_prefix[f];
    return mi->lens_prefix[mi->frame_first[f + 1]] - mi->lens_prefix[mi->frame_first[f]];
}

/* Decompresses frame f into dst (exactly its raw size). */
static int msg_frame_read(const seg_reader *s, const msg_index *mi, uint32_t f, uint8_t *dst,
                          qr_diag *d)
{
    uint64_t raw = msg_frame_raw(mi, f);
    seg_ref fr = {mi->frame_off[f], mi->frame_len[f], mi->frame_crc[f]};
    if (!crc_ok(s, &fr)) return corrupt_at(s, d, fr.off, "msg frame checksum mismatch");
    const uint8_t *src = s->map + fr.off;
    if (ZSTD_getFrameContentSize(src, (size_t)fr.len) != raw)
        return corrupt_at(s, d, fr.off, "bad msg frame header");
    size_t got = ZSTD_decompress(dst, (size_t)raw, src, (size_t)fr.len);
    if (ZSTD_isError(got) || got != raw) return corrupt_at(s, d, fr.off, "bad msg frame");
    return 0;
}

/* Inline lengths: the rows of frame f (raw bytes buf) into out[0 .. rows). */
static int msg_frame_split(const seg_reader *s, const msg_index *mi, uint32_t f,
                           const uint8_t *buf, qr_str *out, qr_diag *d)
{
    qr_rd rd;
    qr_rd_init(&rd, buf, (size_t)msg_frame_raw(mi, f));
    uint32_t rows = mi->frame_first[f + 1] - mi->frame_first[f];
    for (uint32_t idx = 0; idx < rows; idx++) {
        uint64_t len = qr_rd_uvarint(&rd);
        const uint8_t *b = !rd.bad && len <= QR_MSG_MAX_BYTES ? qr_rd_take(&rd, (size_t)len) : NULL;
        if (!b) return corrupt_at(s, d, mi->frame_off[f], "bad msg lengths in frame");
        out[idx] = qr_str_make((const char *)b, (size_t)len);
    }
    if (qr_rd_left(&rd)) return corrupt_at(s, d, mi->frame_off[f], "msg frame length mismatch");
    return 0;
}

static int load_msg_column(const seg_reader *s, uint32_t block_idx, qr_arena *a, qr_column *out,
                           qr_diag *d)
{
    msg_index mi;
    int rc = msg_index_load(s, block_idx, a, &mi, d);
    if (rc) return rc;
    if (mi.inline_lens) {
        uint8_t *buf = qr_arena_alloc(a, (size_t)mi.raw_prefix[mi.frame_count] + 1);
        qr_str *strs = arena_arr(a, mi.n, sizeof *strs);
        if (!buf || !strs) return oom(a, d);
        for (uint32_t f = 0; f < mi.frame_count && !rc; f++) {
            rc = msg_frame_read(s, &mi, f, buf + mi.raw_prefix[f], d);
            if (!rc) rc = msg_frame_split(s, &mi, f, buf + mi.raw_prefix[f],
                                          strs + mi.frame_first[f], d);
        }
        if (rc) return rc;
        out->type = QR_FT_STRING;
        out->strs = strs;
        return 0;
    }
    uint64_t total = mi.lens_prefix[mi.n];
    uint8_t *buf = qr_arena_alloc(a, (size_t)total + 1);
    qr_str *strs = arena_arr(a, mi.n, sizeof *strs);
    if (!buf || !strs) return oom(a, d);
    for (uint32_t f = 0; f < mi.frame_count; f++) {
        rc = msg_frame_read(s, &mi, f, buf + mi.lens_prefix[mi.frame_first[f]], d);
        if (rc) return rc;
    }
    for (uint32_t row = 0; row < mi.n; row++)
        strs[row] = qr_str_make((const char *)buf + mi.lens_prefix[row],
                                (size_t)(mi.lens_prefix[row + 1] - mi.lens_prefix[row]));
    out->type = QR_FT_STRING;
    out->strs = strs;
    return 0;
}

static int hexdig(unsigned v, bool upper)
{
    return v < 10 ? '0' + (int)v : (upper ? 'A' : 'a') + (int)v - 10;
}

static int load_field_column(const seg_reader *s, uint32_t block_idx, uint32_t field_idx,
                             qr_arena *a, qr_column *out, qr_diag *d)
{
    const qr_field_schema *fs = &s->fields[field_idx];
    const rfield *rf = &s->rfields[field_idx];
    const seg_ref *r = block_ref(s, block_idx, SEG_SLOT_FIELD0 + field_idx);
    uint32_t n = s->blocks[block_idx].row_count;
    size_t words = ((size_t)n + 63) / 64;
    out->type = fs->type;
    if (fs->type == QR_FT_STRING && rf->kind == SEG_FIELD_DICT) {
        out->dict = rf->dict;
        out->dict_count = rf->dict_count;
    }
    if (r->len == 0) {
        /* No row of the block has the field. */
        uint64_t *present = arena_arr(a, words, sizeof *present);
        if (!present) return oom(a, d);
        out->present = present;
        switch (fs->type) {
        case QR_FT_INT:
            out->i64 = arena_arr(a, n, sizeof(int64_t));
            break;
        case QR_FT_FLOAT:
            out->f64 = arena_arr(a, n, sizeof(double));
            break;
        case QR_FT_BOOL:
            out->u8 = arena_arr(a, n, 1);
            break;
        case QR_FT_STRING:
            if (rf->kind == SEG_FIELD_DICT)
                out->ids = arena_arr(a, n, sizeof(uint32_t));
            else
                out->strs = arena_arr(a, n, sizeof(qr_str));
            if (out->strs)
                for (uint32_t row = 0; row < n; row++)
                    ((qr_str *)out->strs)[row] = qr_str_make("", 0);
            break;
        default:
            break;
        }
        if (!out->i64 && !out->f64 && !out->u8 && !out->ids && !out->strs && fs->type != QR_FT_NULL)
            return oom(a, d);
        return 0;
    }
    const uint8_t *p;
    size_t len;
    int rc = chunk_payload(s, r, a, &p, &len, d);
    if (rc) return rc;
    qr_rd rd;
    qr_rd_init(&rd, p, len);
    uint8_t has_present = qr_rd_u8(&rd);
    uint32_t m = n;
    uint64_t *present = NULL;
    if (has_present == 1) {
        const uint8_t *bits = qr_rd_take(&rd, ((size_t)n + 7) / 8);
        present = arena_arr(a, words, sizeof *present);
        if (!present) return oom(a, d);
        if (!bits) return corrupt_at(s, d, r->off, "short present map");
        memcpy(present, bits, ((size_t)n + 7) / 8);
        if (n % 64 && (present[words - 1] >> (n % 64)))
            return corrupt_at(s, d, r->off, "present map bits past the block");
        m = 0;
        for (size_t w = 0; w < words; w++) m += (uint32_t)__builtin_popcountll(present[w]);
        if (m == 0 || m == n) return corrupt_at(s, d, r->off, "bad present map");
    } else if (has_present != 0 || rd.bad) {
        return corrupt_at(s, d, r->off, "bad present flag");
    }
    out->present = present;
    uint8_t enc = qr_rd_u8(&rd);
    if (rd.bad) return corrupt_at(s, d, r->off, "short field chunk");
        /* Decode the m present values, then spread them over the n rows. */
#define SPREAD(dst, src, zero)                                                                     \
    do {                                                                                           \
        uint32_t vi_ = 0;                                                                          \
        for (uint32_t row_ = 0; row_ < n; row_++)                                                  \
            (dst)[row_] =                                                                          \
                (!present || (present[row_ >> 6] >> (row_ & 63) & 1)) ? (src)[vi_++] : (zero);     \
    } while (0)
    switch (fs->type) {
    case QR_FT_NULL:
        if (enc != SEG_FENC_NULL) return corrupt_at(s, d, r->off, "field encoding mismatch");
        break;
    case QR_FT_INT: {
        if (enc != SEG_FENC_INT) return corrupt_at(s, d, r->off, "field encoding mismatch");
        int64_t *vals = arena_arr(a, m, sizeof *vals), *col = arena_arr(a, n, sizeof *col);
        if (!vals || !col) return oom(a, d);
        if (codec_i64_decode(&rd, m, vals)) return corrupt_at(s, d, r->off, "bad int field");
        SPREAD(col, vals, 0);
        out->i64 = col;
        break;
    }
    case QR_FT_FLOAT: {
        double *vals = arena_arr(a, m, sizeof *vals), *col = arena_arr(a, n, sizeof *col);
        int64_t *iv = arena_arr(a, m, sizeof *iv);
        if (!vals || !col || !iv) return oom(a, d);
        if (enc == SEG_FENC_FLOAT_RAW) {
            const uint8_t *raw = qr_rd_take(&rd, (size_t)m * 8);
            if (!raw) return corrupt_at(s, d, r->off, "short float field");
            memcpy(vals, raw, (size_t)m * 8);
        } else if (enc == SEG_FENC_FLOAT_DEC) {
            static const double pow10[SEG_FLOAT_DEC_MAX + 1] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6};
            uint8_t dec = qr_rd_u8(&rd);
            if (rd.bad || dec > SEG_FLOAT_DEC_MAX || codec_i64_decode(&rd, m, iv))
                return corrupt_at(s, d, r->off, "bad float field");
            for (uint32_t idx = 0; idx < m; idx++) vals[idx] = (double)iv[idx] / pow10[dec];
        } else {
            return corrupt_at(s, d, r->off, "field encoding mismatch");
        }
        SPREAD(col, vals, 0.0);
        out->f64 = col;
        break;
    }
    case QR_FT_BOOL: {
        if (enc != SEG_FENC_BOOL) return corrupt_at(s, d, r->off, "field encoding mismatch");
        const uint8_t *bits = qr_rd_take(&rd, ((size_t)m + 7) / 8);
        uint8_t *vals = arena_arr(a, m, 1), *col = arena_arr(a, n, 1);
        if (!vals || !col) return oom(a, d);
        if (!bits) return corrupt_at(s, d, r->off, "short bool field");
        for (uint32_t idx = 0; idx < m; idx++) vals[idx] = bits[idx / 8] >> (idx % 8) & 1;
        SPREAD(col, vals, 0);
        out->u8 = col;
        break;
    }
    case QR_FT_STRING: {
        if (rf->kind == SEG_FIELD_DICT) {
            if (enc != SEG_FENC_DICT) return corrupt_at(s, d, r->off, "field encoding mismatch");
            uint32_t *vals = arena_arr(a, m, sizeof *vals), *col = arena_arr(a, n, sizeof *col);
            if (!vals || !col) return oom(a, d);
            if (codec_u32_decode(&rd, m, rf->dict_count - 1, vals))
                return corrupt_at(s, d, r->off, "bad dict field");
            SPREAD(col, vals, 0);
            out->ids = col;
            break;
        }
        qr_str *vals = arena_arr(a, m, sizeof *vals), *col = arena_arr(a, n, sizeof *col);
        if (!vals || !col) return oom(a, d);
        if (enc == SEG_FENC_HEX) {
            uint8_t upper = qr_rd_u8(&rd);
            uint64_t hex_len = qr_rd_uvarint(&rd);
            if (rd.bad || upper > 1 || hex_len < 2 || hex_len > SEG_HEX_MAX || hex_len % 2)
                return corrupt_at(s, d, r->off, "bad hex field");
            size_t bin = (size_t)hex_len / 2;
            const uint8_t *raw = qr_rd_take(&rd, (size_t)m * bin);
            if (!raw) return corrupt_at(s, d, r->off, "short hex field");
            char *txt = qr_arena_alloc(a, (size_t)m * hex_len);
            if (!txt) return oom(a, d);
            for (uint32_t idx = 0; idx < m; idx++) {
                char *t = txt + (size_t)idx * hex_len;
                for (size_t b = 0; b < bin; b++) {
                    uint8_t v = raw[(size_t)idx * bin + b];
                    t[2 * b] = (char)hexdig(v >> 4, upper);
                    t[2 * b + 1] = (char)hexdig(v & 15, upper);
                }
                vals[idx] = qr_str_make(t, (size_t)hex_len);
            }
        } else if (enc == SEG_FENC_STR) {
            uint64_t *lens = arena_arr(a, m, sizeof *lens);
            if (!lens) return oom(a, d);
            if (codec_u64_decode(&rd, m, lens))
                return corrupt_at(s, d, r->off, "bad string lengths");
            for (uint32_t idx = 0; idx < m; idx++) {
                if (lens[idx] > SEG_STR_MAX_BYTES)
                    return corrupt_at(s, d, r->off, "string too long");
                const uint8_t *b = qr_rd_take(&rd, (size_t)lens[idx]);
                if (!b) return corrupt_at(s, d, r->off, "short string field");
                vals[idx] = qr_str_make((const char *)b, (size_t)lens[idx]);
            }
        } else {
            return corrupt_at(s, d, r->off, "field encoding mismatch");
        }
        qr_str empty = qr_str_make("", 0);
        SPREAD(col, vals, empty);
        out->strs = col;
        break;
    }
    default:
        return corrupt_at(s, d, r->off, "bad field type");
    }
#undef SPREAD
    if (rd.bad || qr_rd_left(&rd)) return corrupt_at(s, d, r->off, "field chunk length mismatch");
    return 0;
}

/* ------------------------------------------------------------ part ops */

static int op_block_meta(qr_part *p, uint32_t block_idx, qr_block_meta *out)
{
    seg_reader *s = impl(p);
    if (block_idx >= p->block_count) return QR_EINVAL;
    const rblock *b = &s->blocks[block_idx];
    out->first_row = b->first_row;
    out->row_count = b->row_count;
    out->min_ts_ns = b->min_ts_ns;
    out->max_ts_ns = b->max_ts_ns;
    out->counts = s->counts + b->counts_off;
    out->count_n = b->counts_n;
    return 0;
}

static int op_load_column(qr_part *p, uint32_t block_idx, qr_col_kind kind, uint32_t field_idx,
                          qr_arena *a, qr_column *out, qr_diag *d)
{
    seg_reader *s = impl(p);
    if (block_idx >= p->block_count)
        return qr_diag_set(d, QR_EINVAL, "segment %s: no block %u", s->path, block_idx);
    qr_column col;
    memset(&col, 0, sizeof col);
    uint32_t n = s->blocks[block_idx].row_count;
    col.row_count = n;
    int rc = 0;
    switch (kind) {
    case QR_COL_TS: {
        int64_t *v;
        rc = load_i64(s, block_ref(s, block_idx, SEG_SLOT_TS), n, a, &v, d);
        col.type = QR_FT_INT;
        col.i64 = v;
        break;
    }
    case QR_COL_INGEST_TS:
        rc = load_ingest(s, block_idx, a, &col, d);
        break;
    case QR_COL_LEVEL: {
        uint32_t *ids;
        rc =
            load_ids(s, block_ref(s, block_idx, SEG_SLOT_LEVEL), n, QR_LEVEL_COUNT - 1, a, &ids, d);
        if (rc) break;
        uint8_t *lv = arena_arr(a, n, 1);
        if (!lv) return oom(a, d);
        for (uint32_t row = 0; row < n; row++) lv[row] = (uint8_t)ids[row];
        col.type = QR_FT_INT;
        col.u8 = lv;
        break;
    }
    case QR_COL_SERVICE:
    case QR_COL_HOST: {
        bool svc = kind == QR_COL_SERVICE;
        uint32_t count = svc ? p->service_count : p->host_count;
        uint32_t *ids;
        rc = load_ids(s, block_ref(s, block_idx, svc ? SEG_SLOT_SERVICE : SEG_SLOT_HOST), n,
                      count - 1, a, &ids, d);
        col.type = QR_FT_STRING;
        col.ids = ids;
        col.dict = svc ? p->services : p->hosts;
        col.dict_count = count;
        break;
    }
    case QR_COL_MSG:
        rc = load_msg_column(s, block_idx, a, &col, d);
        break;
    case QR_COL_FIELD:
        if (field_idx >= p->field_count)
            return qr_diag_set(d, QR_EINVAL, "segment %s: no field %u", s->path, field_idx);
        rc = load_field_column(s, block_idx, field_idx, a, &col, d);
        break;
    default:
        return qr_diag_set(d, QR_EINVAL, "segment %s: bad column kind %d", s->path, (int)kind);
    }
    if (rc) return rc;
    *out = col;
    return 0;
}

static int op_load_msgs(qr_part *p, uint32_t block_idx, const uint32_t *rows, uint32_t n,
                        qr_arena *a, qr_str *out, qr_diag *d)
{
    seg_reader *s = impl(p);
    if (block_idx >= p->block_count)
        return qr_diag_set(d, QR_EINVAL, "segment %s: no block %u", s->path, block_idx);
    uint32_t block_n = s->blocks[block_idx].row_count;
    for (uint32_t idx = 0; idx < n; idx++)
        if (rows[idx] >= block_n || (idx && rows[idx] <= rows[idx - 1]))
            return qr_diag_set(d, QR_EINVAL, "load_msgs: rows must ascend within the block");
    if (n == 0) return 0;
    msg_index mi;
    int rc = msg_index_load(s, block_idx, a, &mi, d);
    if (rc) return rc;
    uint32_t f = 0;
    const uint8_t *frame = NULL;
    int64_t frame_loaded = -1;
    if (mi.inline_lens) {
        qr_str *split = NULL;
        for (uint32_t idx = 0; idx < n; idx++) {
            uint32_t row = rows[idx];
            while (row >= mi.frame_first[f + 1]) f++;
            if ((int64_t)f != frame_loaded) {
                uint8_t *buf = qr_arena_alloc(a, (size_t)msg_frame_raw(&mi, f) + 1);
                split = arena_arr(a, mi.frame_first[f + 1] - mi.frame_first[f], sizeof *split);
                if (!buf || !split) return oom(a, d);
                rc = msg_frame_read(s, &mi, f, buf, d);
                if (!rc) rc = msg_frame_split(s, &mi, f, buf, split, d);
                if (rc) return rc;
                frame_loaded = f;
            }
            out[idx] = split[row - mi.frame_first[f]];
        }
        return 0;
    }
    for (uint32_t idx = 0; idx < n; idx++) {
        uint32_t row = rows[idx];
        while (row >= mi.frame_first[f + 1]) f++;
        if ((int64_t)f != frame_loaded) {
            uint64_t base = mi.lens_prefix[mi.frame_first[f]];
            uint8_t *buf =
                qr_arena_alloc(a, (size_t)(mi.lens_prefix[mi.frame_first[f + 1]] - base) + 1);
            if (!buf) return oom(a, d);
            rc = msg_frame_read(s, &mi, f, buf, d);
            if (rc) return rc;
            frame = buf - base;
            frame_loaded = f;
        }
        out[idx] = qr_str_make((const char *)frame + mi.lens_prefix[row],
                               (size_t)(mi.lens_prefix[row + 1] - mi.lens_prefix[row]));
    }
    return 0;
}

static int bloom_get(const seg_reader *s, uint32_t block_idx, bloom_view *bv)
{
    const seg_ref *r = block_ref(s, block_idx, SEG_SLOT_BLOOM);
    atomic_uchar *state = &s->bloom_state[block_idx];
    unsigned char st = atomic_load_explicit(state, memory_order_relaxed);
    if (st == 2) return QR_ECORRUPT;
    const uint8_t *p = s->map + r->off;
    if (st == 0) {
        bool ok = r->len >= 1 && crc_ok(s, r) && p[0] == SEG_COMP_NONE &&
                  bloom_view_init(bv, p + 1, (size_t)r->len - 1) == 0;
        atomic_store_explicit(state, ok ? 1 : 2, memory_order_relaxed);
        return ok ? 0 : QR_ECORRUPT;
    }
    return bloom_view_init(bv, p + 1, (size_t)r->len - 1);
}

static bool op_block_may_contain_token(qr_part *p, uint32_t block_idx, uint64_t token_hash)
{
    seg_reader *s = impl(p);
    if (block_idx >= p->block_count) return false;
    bloom_view bv;
    /* A damaged bloom cannot prune: answer "maybe" and let the column read report it. */
    if (bloom_get(s, block_idx, &bv)) return true;
    return bloom_may_contain(&bv, token_hash);
}

/* Opens the inverted index on first use: its term heads (hundreds of KB per segment) are only
 * checksummed and mapped when a query first needs them, not at seg_open. */
static int ix_get(seg_reader *s, qr_diag *d)
{
    int state = atomic_load_explicit(&s->ix_state, memory_order_acquire);
    if (state == IX_UNOPENED) {
        pthread_mutex_lock(&s->ix_mu);
        state = atomic_load_explicit(&s->ix_state, memory_order_relaxed);
        if (state == IX_UNOPENED) {
            qr_diag ixd;
            qr_diag_init(&ixd);
            if (invidx_open(&s->ix, s->map + s->ix_ref.off, (size_t)s->ix_ref.len,
                            s->part.row_count, &ixd) == 0 &&
                s->ix.sparse == s->ix_sparse) {
                state = IX_OK;
            } else {
                s->ix_bad_off = s->ix_ref.off + (uint64_t)(ixd.offset > 0 ? ixd.offset : 0);
                state = IX_BAD;
            }
            atomic_store_explicit(&s->ix_state, state, memory_order_release);
        }
        pthread_mutex_unlock(&s->ix_mu);
    }
    if (state == IX_OK) return 0;
    return corrupt_at(s, d, s->ix_bad_off, "bad inverted index header");
}

typedef struct scan_match {
    const char *term;
    size_t len;
    bool hit;
} scan_match;

static int scan_match_tok(void *ctx, const char *tok, size_t len, size_t offset)
{
    (void)offset;
    scan_match *m = ctx;
    if (len == m->len && memcmp(tok, m->term, len) == 0) {
        m->hit = true;
        return 1;
    }
    return 0;
}

/* Rows with the token, for a term a sparse index left out: the blocks whose bloom may hold
 * it are scanned. A block's messages lie in one buffer in row order; an ASCII-lower-cased
 * copy of it is searched for the term's bytes (every token equal to the term is such a
 * substring), and only the rows holding a hit are tokenized to confirm. Exact. */
static int sparse_scan(seg_reader *s, const char *term, size_t len, roaring_bitmap_t **out,
                       qr_diag *d)
{
    *out = NULL;
    if (len == 0 || len > QR_TOKEN_MAX_BYTES) return 0;
    uint64_t h = qr_token_hash(term, len);
    qr_arena a;
    qr_arena_init(&a, 1u << 20, 0);
    roaring_bitmap_t *bm = NULL;
    int rc = 0;
    for (uint32_t bi = 0; bi < s->part.block_count && !rc; bi++) {
        if (!op_block_may_contain_token(&s->part, bi, h)) continue;
        qr_column col;
        memset(&col, 0, sizeof col);
        uint32_t n = s->blocks[bi].row_count;
        rc = load_msg_column(s, bi, &a, &col, d);
        if (rc) break;
        const char *base = col.strs[0].ptr;
        const char *end = col.strs[n - 1].ptr + col.strs[n - 1].len;
        size_t span = (size_t)(end - base);
        char *low = qr_arena_alloc(&a, span + 1);
        if (!low) {
            rc = oom(&a, d);
            break;
        }
        size_t idx = 0;
        for (; idx + 8 <= span; idx += 8) { /* 8 bytes at a time: A-Z to a-z, rest as is */
            uint64_t x, lw;
            memcpy(&x, base + idx, 8);
            (void)qr_token_mask8(x, &lw);
            memcpy(low + idx, &lw, 8);
        }
        for (; idx < span; idx++) {
            unsigned char c = (unsigned char)base[idx];
            low[idx] = (char)(c + (((unsigned)(c - 'A') < 26u) << 5));
        }
        uint32_t row = 0, last_checked = UINT32_MAX;
        const char *at = low;
        while ((at = memmem(at, span - (size_t)(at - low), term, len)) != NULL) {
            size_t off = (size_t)(at - low);
            while (row + 1 < n && (size_t)(col.strs[row + 1].ptr - base) <= off) row++;
            at++;
            qr_str t = col.strs[row];
            if (row == last_checked || off + len > (size_t)(t.ptr - base) + t.len) continue;
            last_checked = row;
            scan_match m = {term, len, false};
            qr_tokenize(t.ptr, t.len, scan_match_tok, &m);
            if (!m.hit) continue;
            if (!bm && !(bm = roaring_bitmap_create())) {
                rc = QR_ENOMEM;
                break;
            }
            roaring_bitmap_add(bm, s->blocks[bi].first_row + row);
        }
        qr_arena_reset(&a);
    }
    qr_arena_fini(&a);
    if (rc) {
        if (bm) roaring_bitmap_free(bm);
        return rc;
    }
    *out = bm;
    return 0;
}

static int op_postings(qr_part *p, const char *term, size_t len, roaring_bitmap_t **out, qr_diag *d)
{
    seg_reader *s = impl(p);
    *out = NULL;
    if (!s->has_ix) return QR_ENOTFOUND;
    int ix_rc = ix_get(s, d);
    if (ix_rc) return ix_rc;
    int rc = invidx_postings(&s->ix, term, len, out, d);
    if (rc == QR_ECORRUPT && d) {
        char msg[QR_DIAG_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", d->msg);
        d->code = 0;
        corrupt_at(s, d, s->ix_ref.off + (uint64_t)(d->offset > 0 ? d->offset : 0), msg);
    }
    if (rc == 0 && !*out && s->ix.sparse) rc = sparse_scan(s, term, len, out, d);
    return rc;
}

/* A damaged pairs blob claims nothing (rows are then verified); seg_verify reports it. */
static bool op_phrase_exact(qr_part *p, const char *const *tokens, const uint32_t *lens,
                            uint32_t n)
{
    seg_reader *s = impl(p);
    if (!s->ph_ref.len) return false;
    int state = atomic_load_explicit(&s->ph_state, memory_order_acquire);
    if (state == IX_UNOPENED) {
        pthread_mutex_lock(&s->ix_mu);
        state = atomic_load_explicit(&s->ph_state, memory_order_relaxed);
        if (state == IX_UNOPENED) {
            state = crc_ok(s, &s->ph_ref) && phrase_pairs_open(&s->ph, s->map + s->ph_ref.off,
                                                               (size_t)s->ph_ref.len, NULL) == 0
                        ? IX_OK
                        : IX_BAD;
            atomic_store_explicit(&s->ph_state, state, memory_order_release);
        }
        pthread_mutex_unlock(&s->ix_mu);
    }
    return state == IX_OK && phrase_pairs_exact(&s->ph, tokens, lens, n);
}

static int op_terms_with_prefix(qr_part *p, const char *prefix, size_t len, qr_term_fn fn,
                                void *ctx, qr_diag *d)
{
    seg_reader *s = impl(p);
    if (!s->has_ix) return QR_ENOTFOUND;
    int rc = ix_get(s, d);
    if (rc) return rc;
    return invidx_terms_with_prefix(&s->ix, prefix, len, fn, ctx, d);
}

static void seg_reader_free(seg_reader *s)
{
    if (!s) return;
    if (s->map) munmap((void *)s->map, s->map_len);
    free(s->path);
    free(s->footer);
    free(s->blocks);
    free(s->refs);
    free(s->counts);
    free(s->services);
    free(s->hosts);
    free(s->service_rows);
    free(s->fields);
    if (s->rfields)
        for (uint32_t f = 0; f < s->part.field_count; f++) {
            free(s->rfields[f].dict);
            free(s->rfields[f].dict_bytes);
        }
    free(s->rfields);
    free((void *)s->bloom_state);
    phrase_pairs_close(&s->ph);
    pthread_mutex_destroy(&s->ix_mu);
    free(s);
}

static void op_destroy(qr_part *p)
{
    seg_reader *s = impl(p);
    if (atomic_load(&s->unlink_on_close)) unlink(s->path);
    seg_reader_free(s);
}

static const qr_part_ops seg_part_ops = {
    .block_meta = op_block_meta,
    .load_column = op_load_column,
    .load_msgs = op_load_msgs,
    .block_may_contain_token = op_block_may_contain_token,
    .postings = op_postings,
    .terms_with_prefix = op_terms_with_prefix,
    .phrase_exact = op_phrase_exact,
    .destroy = op_destroy,
};

void seg_unlink_on_close(qr_part *seg)
{
    if (seg && seg->ops == &seg_part_ops) atomic_store(&impl(seg)->unlink_on_close, true);
}

/* ------------------------------------------------------------ open */

static bool rd_ref(qr_rd *rd, const seg_reader *s, seg_ref *r)
{
    r->off = qr_rd_uvarint(rd);
    r->len = qr_rd_uvarint(rd);
    r->crc = qr_rd_u32(rd);
    return !rd->bad && ref_ok(s, r);
}

/* Reads len bytes at off with pread: metadata read at open goes through the fd, not the map,
 * so opening a segment maps no page of it (see seg_open_ex). */
static int file_read_at(int fd, uint8_t *buf, size_t len, uint64_t off)
{
    while (len) {
        ssize_t got = pread(fd, buf, len, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return -1;
        buf += got;
        len -= (size_t)got;
        off += (uint64_t)got;
    }
    return 0;
}

static int load_dict(seg_reader *s, int fd, rfield *rf, qr_diag *d)
{
    const seg_ref *r = &rf->dict_ref;
    if (r->len < 1) return corrupt_at(s, d, r->off, "bad field dictionary chunk");
    rf->dict_bytes = malloc((size_t)r->len);
    if (!rf->dict_bytes) return QR_ENOMEM;
    if (file_read_at(fd, rf->dict_bytes, (size_t)r->len, r->off) != 0)
        return qr_diag_errno(d, QR_EIO, "segment %s: read", s->path);
    const uint8_t *b0 = rf->dict_bytes;
    if (!((s->flags & SEG_OPEN_NO_CHECKSUMS) || qr_checksum32(b0, (size_t)r->len) == r->crc) ||
        b0[0] != SEG_COMP_NONE)
        return corrupt_at(s, d, r->off, "bad field dictionary chunk");
    qr_rd rd;
    qr_rd_init(&rd, b0 + 1, (size_t)r->len - 1);
    rf->dict = malloc((size_t)rf->dict_count * sizeof *rf->dict);
    if (!rf->dict) return QR_ENOMEM;
    for (uint32_t idx = 0; idx < rf->dict_count; idx++) {
        size_t len = 0;
        const uint8_t *b = qr_rd_bytes(&rd, &len);
        if (!b) return corrupt_at(s, d, r->off, "short field dictionary");
        rf->dict[idx] = qr_str_make((const char *)b, len);
    }
    if (qr_rd_left(&rd)) return corrupt_at(s, d, r->off, "field dictionary length mismatch");
    return 0;
}

static int parse_footer(seg_reader *s, const uint8_t *fp, size_t flen, qr_diag *d)
{
    qr_part *p = &s->part;
    qr_rd rd;
    qr_rd_init(&rd, fp, flen);
    uint64_t foff = s->data_end;
#define BAD(what) return corrupt_at(s, d, foff + (uint64_t)(rd.p - fp), what)
    uint64_t version = qr_rd_uvarint(&rd);
    if (rd.bad || version != SEG_FORMAT_VERSION) BAD("unsupported footer version");
    p->id = qr_rd_uvarint(&rd);
    uint64_t rows = qr_rd_uvarint(&rd), blocks = qr_rd_uvarint(&rd);
    uint64_t block_rows = qr_rd_uvarint(&rd);
    p->min_ts_ns = qr_rd_svarint(&rd);
    p->max_ts_ns = qr_rd_svarint(&rd);
    if (rd.bad || rows == 0 || rows >= UINT32_MAX || blocks == 0 || blocks > rows ||
        block_rows == 0 || block_rows > SEG_MAX_BLOCK_ROWS || p->min_ts_ns > p->max_ts_ns ||
        blocks > qr_rd_left(&rd))
        BAD("bad footer counts");
    p->row_count = (uint32_t)rows;
    p->block_count = (uint32_t)blocks;
    s->block_rows = (uint32_t)block_rows;
    uint64_t sum = 0;
    for (int lvl = 0; lvl < QR_LEVEL_COUNT; lvl++) {
        p->level_rows[lvl] = qr_rd_uvarint(&rd);
        if (p->level_rows[lvl] > rows) BAD("bad level counts");
        sum += p->level_rows[lvl];
    }
    if (rd.bad || sum != rows) BAD("bad level counts");
    uint64_t svc_count = qr_rd_uvarint(&rd);
    if (rd.bad || svc_count == 0 || svc_count > rows || svc_count > qr_rd_left(&rd))
        BAD("bad service count");
    s->services = malloc(svc_count * sizeof *s->services);
    s->service_rows = malloc(svc_count * sizeof *s->service_rows);
    if (!s->services || !s->service_rows) return QR_ENOMEM;
    for (uint64_t idx = 0; idx < svc_count; idx++) {
        size_t len = 0;
        const uint8_t *b = qr_rd_bytes(&rd, &len);
        if (!b) BAD("bad service name");
        s->services[idx] = qr_str_make((const char *)b, len);
    }
    sum = 0;
    for (uint64_t idx = 0; idx < svc_count; idx++) {
        s->service_rows[idx] = qr_rd_uvarint(&rd);
        if (s->service_rows[idx] > rows) BAD("bad service rows");
        sum += s->service_rows[idx];
    }
    if (rd.bad || sum != rows) BAD("bad service rows");
    p->services = s->services;
    p->service_count = (uint32_t)svc_count;
    p->service_rows = s->service_rows;
    uint64_t host_count = qr_rd_uvarint(&rd);
    if (rd.bad || host_count == 0 || host_count > rows || host_count > qr_rd_left(&rd))
        BAD("bad host count");
    s->hosts = malloc(host_count * sizeof *s->hosts);
    if (!s->hosts) return QR_ENOMEM;
    for (uint64_t idx = 0; idx < host_count; idx++) {
        size_t len = 0;
        const uint8_t *b = qr_rd_bytes(&rd, &len);
        if (!b) BAD("bad host name");
        s->hosts[idx] = qr_str_make((const char *)b, len);
    }
    p->hosts = s->hosts;
    p->host_count = (uint32_t)host_count;
    uint64_t field_count = qr_rd_uvarint(&rd);
    if (rd.bad || field_count > qr_rd_left(&rd) || field_count > UINT32_MAX - SEG_SLOT_FIELD0)
        BAD("bad field count");
    s->fields = calloc(field_count ? field_count : 1, sizeof *s->fields);
    s->rfields = calloc(field_count ? field_count : 1, sizeof *s->rfields);
    if (!s->fields || !s->rfields) return QR_ENOMEM;
    p->field_count = (uint32_t)field_count;
    for (uint64_t f = 0; f < field_count; f++) {
        qr_field_schema *fs = &s->fields[f];
        rfield *rf = &s->rfields[f];
        size_t len = 0;
        const uint8_t *b = qr_rd_bytes(&rd, &len);
        fs->key = qr_str_make((const char *)b, len);
        fs->type = qr_rd_u8(&rd);
        uint64_t frows = qr_rd_uvarint(&rd);
        rf->kind = qr_rd_u8(&rd);
        if (rd.bad || fs->type > QR_FT_BOOL || frows == 0 || frows > rows ||
            rf->kind > SEG_FIELD_DICT || (rf->kind == SEG_FIELD_DICT && fs->type != QR_FT_STRING))
            BAD("bad field schema");
        fs->row_count = (uint32_t)frows;
        if (rf->kind == SEG_FIELD_DICT) {
            uint64_t dc = qr_rd_uvarint(&rd);
            if (rd.bad || dc == 0 || dc > frows || dc > SEG_DICT_MAX ||
                !rd_ref(&rd, s, &rf->dict_ref) || dc > rf->dict_ref.len)
                BAD("bad field dictionary");
            rf->dict_count = (uint32_t)dc;
        }
    }
    p->fields = s->fields;
    uint8_t has_ix = qr_rd_u8(&rd);
    bool has_ph = has_ix & SEG_INDEX_PHRASE;
    has_ix &= (uint8_t)~SEG_INDEX_PHRASE;
    if (rd.bad || has_ix > 2 || (has_ph && !has_ix)) BAD("bad index flag");
    if (has_ix) {
        if (!rd_ref(&rd, s, &s->ix_ref) || s->ix_ref.len == 0) BAD("bad index ref");
        s->has_ix = true;
        s->ix_sparse = has_ix == 2;
    }
    if (has_ph && (!rd_ref(&rd, s, &s->ph_ref) || s->ph_ref.len == 0)) BAD("bad phrase pairs ref");
    p->has_postings = s->has_ix;
    p->postings_exact = s->has_ix;
    p->postings_sparse = s->ix_sparse;
    s->slots = SEG_SLOT_FIELD0 + (uint32_t)field_count;
    s->blocks = calloc(blocks, sizeof *s->blocks);
    s->refs = calloc(blocks * s->slots, sizeof *s->refs);
    s->bloom_state = calloc(blocks, sizeof *s->bloom_state);
    if (!s->blocks || !s->refs || !s->bloom_state) return QR_ENOMEM;
    /* Counts: at most rows entries in total; grown as blocks are read. */
    size_t counts_cap = 0, counts_n = 0;
    uint64_t first_row = 0;
    uint64_t *field_rows = calloc(field_count ? field_count : 1, sizeof *field_rows);
    if (!field_rows) return QR_ENOMEM;
    int rc = 0;
    for (uint64_t blk = 0; blk < blocks && !rc; blk++) {
        rblock *b = &s->blocks[blk];
        uint64_t n = qr_rd_uvarint(&rd);
        uint64_t dmin = qr_rd_uvarint(&rd), dspan = qr_rd_uvarint(&rd);
        uint64_t cn = qr_rd_uvarint(&rd);
        uint64_t range = (uint64_t)p->max_ts_ns - (uint64_t)p->min_ts_ns;
        if (rd.bad || n == 0 || n > block_rows || n > rows - first_row || dmin > range ||
            dspan > range - dmin || cn == 0 || cn > n || cn > qr_rd_left(&rd)) {
            rc = corrupt_at(s, d, foff + (uint64_t)(rd.p - fp), "bad block entry");
            break;
        }
        b->first_row = (uint32_t)first_row;
        b->row_count = (uint32_t)n;
        b->min_ts_ns = (int64_t)((uint64_t)p->min_ts_ns + dmin);
        b->max_ts_ns = (int64_t)((uint64_t)b->min_ts_ns + dspan);
        if (blk && b->min_ts_ns < s->blocks[blk - 1].max_ts_ns) {
            rc = corrupt_at(s, d, foff + (uint64_t)(rd.p - fp), "blocks out of ts order");
            break;
        }
        if (counts_n + cn > counts_cap) {
            size_t cap = counts_cap ? counts_cap * 2 : 256;
            while (cap < counts_n + cn) cap *= 2;
            qr_svc_level_count *nc = realloc(s->counts, cap * sizeof *nc);
            if (!nc) {
                rc = QR_ENOMEM;
                break;
            }
            s->counts = nc;
            counts_cap = cap;
        }
        b->counts_off = (uint32_t)counts_n;
        b->counts_n = (uint32_t)cn;
        uint64_t csum = 0, prev_key = 0;
        for (uint64_t c = 0; c < cn; c++) {
            uint64_t svc = qr_rd_uvarint(&rd);
            uint8_t lvl = qr_rd_u8(&rd);
            uint64_t cnt = qr_rd_uvarint(&rd);
            uint64_t key = svc * 8 + lvl;
            if (rd.bad || svc >= svc_count || lvl >= QR_LEVEL_COUNT || cnt == 0 || cnt > n ||
                (c && key <= prev_key)) {
                rd.bad = true;
                break;
            }
            prev_key = key;
            csum += cnt;
            s->counts[counts_n++] = (qr_svc_level_count){(uint32_t)svc, lvl, (uint32_t)cnt};
        }
        if (rd.bad || csum != n) {
            rc = corrupt_at(s, d, foff + (uint64_t)(rd.p - fp), "bad block counts");
            break;
        }
        for (uint32_t slot = 0; slot < s->slots; slot++) {
            seg_ref *r = &s->refs[blk * s->slots + slot];
            if (!rd_ref(&rd, s, r) || (slot < SEG_SLOT_FIELD0 && r->len == 0)) {
                rc = corrupt_at(s, d, foff + (uint64_t)(rd.p - fp), "bad chunk ref");
                break;
            }
        }
        first_row += n;
    }
    free(field_rows);
    if (rc) return rc;
    if (first_row != rows || qr_rd_left(&rd)) BAD("footer length mismatch");
    if (s->blocks[0].min_ts_ns != p->min_ts_ns || s->blocks[blocks - 1].max_ts_ns != p->max_ts_ns)
        BAD("block ts range disagrees with the segment");
#undef BAD
    return 0;
}

/* The sections the part needs before any block is read: the field dictionaries, read through
 * the fd (every load of a dict column hands them out). The inverted index opens lazily. */
static int open_sections(seg_reader *s, int fd, qr_diag *d)
{
    qr_part *p = &s->part;
    for (uint32_t f = 0; f < p->field_count; f++) {
        if (s->rfields[f].kind != SEG_FIELD_DICT) continue;
        int rc = load_dict(s, fd, &s->rfields[f], d);
        if (rc) return rc;
    }
    return 0;
}

int seg_open_ex(const char *path, unsigned flags, qr_part **out, qr_diag *d)
{
    seg_reader *s = calloc(1, sizeof *s);
    if (!s) return QR_ENOMEM;
    s->flags = flags;
    atomic_init(&s->ix_state, IX_UNOPENED);
    pthread_mutex_init(&s->ix_mu, NULL);
    s->path = strdup(path);
    if (!s->path) {
        pthread_mutex_destroy(&s->ix_mu);
        free(s);
        return QR_ENOMEM;
    }
    int rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = qr_diag_errno(d, QR_EIO, "segment %s: open", path);
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = qr_diag_errno(d, QR_EIO, "segment %s: stat", path);
        goto fail;
    }
    if ((uint64_t)st.st_size < SEG_HEADER_BYTES + SEG_TRAILER_BYTES) {
        rc = corrupt_at(s, d, 0, "file too short for a segment");
        goto fail;
    }
    /* Header, trailer, footer and dictionaries are read with pread, never through the map:
     * page-cache folios can be large (2 MB on ext4 with large folios), and a fault maps the
     * whole folio, so touching a few bytes through the map can map megabytes per segment. */
    uint64_t file_len = (uint64_t)st.st_size;
    uint8_t h[SEG_HEADER_BYTES], t[SEG_TRAILER_BYTES];
    if (file_read_at(fd, h, sizeof h, 0) != 0 ||
        file_read_at(fd, t, sizeof t, file_len - SEG_TRAILER_BYTES) != 0) {
        rc = qr_diag_errno(d, QR_EIO, "segment %s: read", path);
        goto fail;
    }
    if (memcmp(h, SEG_MAGIC, 8) != 0 || qr_load_u32(h + 8) != SEG_FORMAT_VERSION ||
        qr_load_u32(h + 12) != qr_checksum32(h, 12)) {
        rc = corrupt_at(s, d, 0, "bad segment header");
        goto fail;
    }
    uint64_t footer_off = qr_load_u64(t);
    uint32_t footer_len = qr_load_u32(t + 8);
    if (memcmp(t + 24, SEG_TRAILER_MAGIC, 8) != 0 || qr_load_u32(t + 20) != qr_checksum32(t, 20) ||
        qr_load_u32(t + 16) != SEG_FORMAT_VERSION || footer_off < SEG_HEADER_BYTES ||
        footer_off > file_len || footer_len != file_len - SEG_TRAILER_BYTES - footer_off) {
        rc = corrupt_at(s, d, file_len - SEG_TRAILER_BYTES, "bad segment trailer");
        goto fail;
    }
    s->footer = malloc(footer_len ? footer_len : 1);
    if (!s->footer) {
        rc = QR_ENOMEM;
        goto fail;
    }
    if (file_read_at(fd, s->footer, footer_len, footer_off) != 0) {
        rc = qr_diag_errno(d, QR_EIO, "segment %s: read", path);
        goto fail;
    }
    if (qr_checksum32(s->footer, footer_len) != qr_load_u32(t + 12) &&
        !(flags & SEG_OPEN_NO_CHECKSUMS)) {
        rc = corrupt_at(s, d, footer_off, "footer checksum mismatch");
        goto fail;
    }
    void *map = mmap(NULL, (size_t)file_len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        rc = qr_diag_errno(d, QR_EIO, "segment %s: mmap", path);
        goto fail;
    }
    s->map = map;
    s->map_len = (size_t)file_len;
    /* Reads hop between chunks: no read-around on a fault of a cold file. Advice only. */
    (void)madvise(map, s->map_len, MADV_RANDOM);
    s->data_end = footer_off;
    s->footer_len = footer_len;
    qr_part *p = &s->part;
    p->ops = &seg_part_ops;
    p->impl = s;
    atomic_init(&p->refs, 1);
    p->kind = QR_PART_SEGMENT;
    p->path = s->path;
    rc = parse_footer(s, s->footer, footer_len, d);
    if (!rc) rc = open_sections(s, fd, d);
    if (rc) goto fail;
    close(fd);
    *out = p;
    return 0;
fail:
    if (fd >= 0) close(fd);
    if (rc == QR_ENOMEM && d && !d->code)
        qr_diag_set(d, QR_ENOMEM, "segment %s: out of memory", path);
    seg_reader_free(s);
    return rc;
}

int seg_open(const char *path, qr_part **out, qr_diag *d)
{
    return seg_open_ex(path, 0, out, d);
}

/* ------------------------------------------------------------ verify */

static int verify_block(seg_reader *s, uint32_t blk, qr_arena *a, seg_stats *st,
                        uint64_t *field_rows, qr_diag *d)
{
    qr_part *p = &s->part;
    const rblock *b = &s->blocks[blk];
    uint32_t n = b->row_count;
    for (uint32_t slot = 0; slot < s->slots; slot++) {
        const seg_ref *r = block_ref(s, blk, slot);
        if (r->len && !crc_ok(s, r)) return corrupt_at(s, d, r->off, "chunk checksum mismatch");
    }
    bloom_view bv;
    if (bloom_get(s, blk, &bv))
        return corrupt_at(s, d, block_ref(s, blk, SEG_SLOT_BLOOM)->off, "bad bloom");
    qr_column ts, ing, lvl, svc, host, msg;
    int rc = op_load_column(p, blk, QR_COL_TS, 0, a, &ts, d);
    if (!rc) rc = op_load_column(p, blk, QR_COL_INGEST_TS, 0, a, &ing, d);
    if (!rc) rc = op_load_column(p, blk, QR_COL_LEVEL, 0, a, &lvl, d);
    if (!rc) rc = op_load_column(p, blk, QR_COL_SERVICE, 0, a, &svc, d);
    if (!rc) rc = op_load_column(p, blk, QR_COL_HOST, 0, a, &host, d);
    if (!rc) rc = op_load_column(p, blk, QR_COL_MSG, 0, a, &msg, d);
    if (rc) return rc;
    uint64_t ts_off = block_ref(s, blk, SEG_SLOT_TS)->off;
    if (ts.i64[0] != b->min_ts_ns || ts.i64[n - 1] != b->max_ts_ns)
        return corrupt_at(s, d, ts_off, "ts column disagrees with block range");
    for (uint32_t row = 1; row < n; row++)
        if (ts.i64[row] < ts.i64[row - 1]) return corrupt_at(s, d, ts_off, "ts not sorted");
    /* Recount (service, level) pairs against the block metadata. */
    for (uint32_t c = 0; c < b->counts_n; c++) {
        const qr_svc_level_count *sc = &s->counts[b->counts_off + c];
        uint32_t cnt = 0;
        for (uint32_t row = 0; row < n; row++)
            cnt += svc.ids[row] == sc->service_id && lvl.u8[row] == sc->level;
        if (cnt != sc->row_count)
            return corrupt_at(s, d, block_ref(s, blk, SEG_SLOT_SERVICE)->off,
                              "service x level counts disagree with the columns");
    }
    for (uint32_t f = 0; f < p->field_count; f++) {
        qr_column fc;
        rc = op_load_column(p, blk, QR_COL_FIELD, f, a, &fc, d);
        if (rc) return rc;
        for (uint32_t row = 0; row < n; row++) field_rows[f] += qr_column_has(&fc, row);
    }
    st->bloom_bytes += block_ref(s, blk, SEG_SLOT_BLOOM)->len;
    st->ts_bytes += block_ref(s, blk, SEG_SLOT_TS)->len;
    st->ingest_ts_bytes += block_ref(s, blk, SEG_SLOT_INGEST_TS)->len;
    st->level_bytes += block_ref(s, blk, SEG_SLOT_LEVEL)->len;
    st->service_bytes += block_ref(s, blk, SEG_SLOT_SERVICE)->len;
    st->host_bytes += block_ref(s, blk, SEG_SLOT_HOST)->len;
    st->msg_bytes += block_ref(s, blk, SEG_SLOT_MSG)->len;
    msg_index mi;
    rc = msg_index_load(s, blk, a, &mi, d);
    if (rc) return rc;
    for (uint32_t f = 0; f < mi.frame_count; f++) st->msg_bytes += mi.frame_len[f];
    for (uint32_t f = 0; f < p->field_count; f++)
        st->field_bytes += block_ref(s, blk, SEG_SLOT_FIELD0 + f)->len;
    return 0;
}

int seg_verify(qr_part *p, seg_stats *stats_out, qr_diag *d)
{
    if (p->kind != QR_PART_SEGMENT || p->ops != &seg_part_ops)
        return qr_diag_set(d, QR_EINVAL, "seg_verify: not a segment");
    seg_reader *s = impl(p);
    seg_stats st;
    memset(&st, 0, sizeof st);
    st.rows = p->row_count;
    st.blocks = p->block_count;
    st.file_bytes = s->map_len;
    st.meta_bytes = SEG_HEADER_BYTES + s->footer_len + SEG_TRAILER_BYTES;
    if (qr_load_u32(s->map + 12) != qr_checksum32(s->map, 12))
        return corrupt_at(s, d, 0, "bad segment header");
    uint64_t *field_rows = calloc(p->field_count ? p->field_count : 1, sizeof *field_rows);
    if (!field_rows) return QR_ENOMEM;
    qr_arena a;
    qr_arena_init(&a, 1 << 20, 0);
    int rc = 0;
    for (uint32_t blk = 0; blk < p->block_count && !rc; blk++) {
        rc = verify_block(s, blk, &a, &st, field_rows, d);
        qr_arena_reset(&a);
    }
    qr_arena_fini(&a);
    for (uint32_t f = 0; f < p->field_count && !rc; f++) {
        if (field_rows[f] != p->fields[f].row_count)
            rc = corrupt_at(s, d, s->data_end, "field row count disagrees with its columns");
        if (s->rfields[f].kind == SEG_FIELD_DICT) st.meta_bytes += s->rfields[f].dict_ref.len;
    }
    free(field_rows);
    if (!rc && s->has_ix) {
        if (!crc_ok(s, &s->ix_ref))
            rc = corrupt_at(s, d, s->ix_ref.off, "inverted index checksum mismatch");
        if (!rc) rc = ix_get(s, d);
        if (!rc) {
            rc = invidx_verify(&s->ix, d);
            if (rc == QR_ECORRUPT && d) {
                char msg[QR_DIAG_MSG_MAX];
                snprintf(msg, sizeof msg, "%s", d->msg);
                d->code = 0;
                corrupt_at(s, d, s->ix_ref.off + (uint64_t)(d->offset > 0 ? d->offset : 0), msg);
            }
        }
        st.postings_bytes = s->ix_ref.len;
    }
    if (!rc && s->ph_ref.len) {
        if (!crc_ok(s, &s->ph_ref))
            rc = corrupt_at(s, d, s->ph_ref.off, "phrase pairs checksum mismatch");
        qr_diag pd;
        qr_diag_init(&pd);
        if (!rc && phrase_pairs_verify(s->map + s->ph_ref.off, (size_t)s->ph_ref.len, &pd))
            rc = corrupt_at(s, d, s->ph_ref.off + (uint64_t)(pd.offset > 0 ? pd.offset : 0),
                            pd.msg);
        st.postings_bytes += s->ph_ref.len;
    }
    if (!rc && stats_out) *stats_out = st;
    return rc;
}

/* seg_writer — writes one segment file from event batches (contract in segment.h).
 *
 * FILE FORMAT (version 1; docs/format.md has the same text with examples). Integers are
 * little-endian; uvarint = LEB128, svarint = zigzag LEB128; crc = qr_checksum32 (low half
 * of xxh3-64). A "ref" is (uvarint offset, uvarint length, u32 crc) of a byte range of the
 * file; length 0 means "absent".
 *
 *   Header, 16 bytes:   8 magic "QSEG\r\n\x1a\n" | u32 version | u32 crc of bytes 0..11
 *   Chunks              column chunks, blooms, msg frames, field dictionaries, the inverted
 *                       index: each referenced from the footer, in any order
 *   Footer              footer_len bytes, below
 *   Trailer, 32 bytes:  u64 footer_off | u32 footer_len | u32 footer crc | u32 version |
 *                       u32 crc of the trailer's first 20 bytes | 8 magic "QSEGEND\n"
 *
 * Footer (read sequentially):
 *   uvarint version, segment_id, row_count, block_count, block_rows
 *   svarint min_ts_ns, max_ts_ns
 *   7 x uvarint rows per level (UNKNOWN, TRACE .. FATAL)
 *   uvarint service_count, service_count x (uvarint len, bytes), service_count x uvarint rows
 *   uvarint host_count, host_count x (uvarint len, bytes)
 *   uvarint field_count; per field: (uvarint len, key bytes), u8 type (qr_field_type),
 *       uvarint row_count, u8 kind (0 plain, 1 dict); dict: uvarint dict_count, ref
 *       (dict chunk: u8 0, then dict_count x (uvarint len, bytes), sorted by bytes)
 *   u8 has_index (0 none, 1 full, 2 sparse: compaction; | 4 when adjacency pairs
 *       follow); if 1 or 2: ref of the inverted index blob (storage/invidx.h); its crc
 *       covers the whole blob and is checked by seg_verify; reads check the blob's inner
 *       crcs; if | 4: ref of the adjacency pairs blob (storage/phrase.h)
 *   per block: uvarint row_count, uvarint min_ts - segment min_ts, uvarint max_ts - min_ts,
 *       uvarint count_n, count_n x (uvarint service_id, u8 level, uvarint rows) sorted by
 *       (service_id, level), then refs: bloom, ts, ingest_ts, level, service, host, msg,
 *       then one per field (length 0 when no row of the block has the field)
 *
 * Rows are sorted by ts (stable: ties keep batch order); block b holds rows
 * [sum of earlier row_counts, + row_count). Column chunks (n = block row_count) start with
 * u8 comp: 0 = the payload follows; 1 = uvarint raw_len, then one zstd frame of raw_len
 * bytes (only field and ingest_ts chunks are ever compressed; labels never are):
 *   bloom      u8 0, storage/bloom.h filter over the distinct msg token hashes of the block
 *   ts         codec i64 (storage/codec.h) of ts_ns
 *   ingest_ts  u8 0, codec i64 of ingest_ts_ns - ts_ns (wrapping), or
 *              u8 1, codec u64 of ingest_ts_ns as two's complement (whichever is smaller)
 *   level      codec u64 of levels (0..6)
 *   service    codec u64 of service ids; host: same with host ids
 *   msg        u8 0, codec u64 of msg byte lengths, uvarint frame_count, uvarint data_off
 *              (file offset of the first frame), frame_count x (uvarint rows, uvarint
 *              comp_len, u32 crc of the frame); frames lie back to back from data_off; frame
 *              f holds the concatenated msgs of its rows as one zstd frame (raw size =
 *              sum of their lengths, <= SEG_MSG_FRAME_MAX; the writer closes a frame past
 *              opts.msg_frame_bytes: 64 KiB at flush, more in compaction)
 *   field      u8 has_present, [ceil(n/8) bytes bitmap, bit r = row r has a value], then
 *              u8 encoding and the m values of the present rows (m = popcount, or n):
 *              1 INT codec i64 | 2 FLOAT_RAW m x f64 | 3 FLOAT_DEC u8 d, codec i64 of
 *              v*10^d (v == int / 10^d exactly) | 4 BOOL ceil(m/8) bytes of bits |
 *              5 STR codec u64 lengths + bytes | 6 HEX u8 upper, uvarint hex_len (even),
 *              m x hex_len/2 bytes | 7 DICT codec u64 ids | 8 NULL (no bytes)
 *
 * Algorithm: one pass interns services, hosts, field (key, type) pairs and low-cardinality
 * string values; rows are sorted; each block is encoded column by column into a write
 * buffer flushed to the .tmp file. Meanwhile a second thread (the index job) tokenizes the
 * msgs in the same row order, feeding the inverted index builder (invidx.h), which lists
 * each block's distinct token hashes for its bloom. Then the blooms (all blocks', after the
 * columns), dictionaries, index, footer, trailer; fsync, rename, fsync of the directory. */
#include "common/qr_hash.h"
#include "storage/bloom.h"
#include "storage/codec.h"
#include "storage/invidx.h"
#include "storage/phrase.h"
#include "storage/seg_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

/* Rows ahead whose scattered bytes (msg, string values) a row-by-row loop prefetches. */
#define SEG_PREFETCH_ROWS 8

/* ------------------------------------------------------------ string interning */

typedef struct strtab {
    qr_str *strs;
    uint64_t *hashes;
    uint8_t *tags;
    uint32_t *rows; /* rows per entry */
    uint32_t count;
    uint32_t cap;
    uint32_t *table;
    uint32_t mask;
} strtab;

static void strtab_fini(strtab *t)
{
    free(t->strs);
    free(t->hashes);
    free(t->tags);
    free(t->rows);
    free(t->table);
    memset(t, 0, sizeof *t);
}

static int strtab_grow_table(strtab *t)
{
    uint32_t mask = t->mask ? t->mask * 2 + 1 : 255;
    uint32_t *table = calloc((size_t)mask + 1, sizeof *table);
    if (!table) return QR_ENOMEM;
    for (uint32_t id = 0; id < t->count; id++) {
        uint32_t slot = (uint32_t)t->hashes[id] & mask;
        while (table[slot]) slot = (slot + 1) & mask;
        table[slot] = id + 1;
    }
    free(t->table);
    t->table = table;
    t->mask = mask;
    return 0;
}

/* Byte equality without a libc call for the short strings labels and keys are. */
static inline bool str_eq(qr_str a, qr_str b)
{
    if (a.len != b.len) return false;
    uint32_t idx = 0;
    for (; idx + 8 <= a.len; idx += 8) {
        uint64_t x, y;
        memcpy(&x, a.ptr + idx, 8);
        memcpy(&y, b.ptr + idx, 8);
        if (x != y) return false;
    }
    for (; idx < a.len; idx++)
        if (a.ptr[idx] != b.ptr[idx]) return false;
    return true;
}

/* Interns (s, tag); strings are borrowed. */
static int strtab_intern(strtab *t, qr_str s, uint8_t tag, uint32_t *id)
{
    if (!t->table) {
        int rc = strtab_grow_table(t);
        if (rc) return rc;
    }
    uint64_t h = qr_hash64_seed(s.ptr, s.len, tag);
    uint32_t slot = (uint32_t)h & t->mask;
    for (;;) {
        uint32_t v = t->table[slot];
        if (!v) break;
        uint32_t c = v - 1;
        if (t->hashes[c] == h && t->tags[c] == tag && str_eq(t->strs[c], s)) {
            t->rows[c]++;
            *id = c;
            return 0;
        }
        slot = (slot + 1) & t->mask;
    }
    if (t->count == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 64;
        qr_str *strs = realloc(t->strs, cap * sizeof *strs);
        if (!strs) return QR_ENOMEM;
        t->strs = strs;
        uint64_t *hashes = realloc(t->hashes, cap * sizeof *hashes);
        if (!hashes) return QR_ENOMEM;
        t->hashes = hashes;
        uint8_t *tags = realloc(t->tags, cap);
        if (!tags) return QR_ENOMEM;
        t->tags = tags;
        uint32_t *rows = realloc(t->rows, cap * sizeof *rows);
        if (!rows) return QR_ENOMEM;
        t->rows = rows;
        t->cap = cap;
    }
    uint32_t nid = t->count++;
    t->strs[nid] = s;
    t->hashes[nid] = h;
    t->tags[nid] = tag;
    t->rows[nid] = 1;
    t->table[slot] = nid + 1;
    *id = nid;
    if ((uint64_t)t->count * 2 > t->mask) return strtab_grow_table(t);
    return 0;
}

static int str_cmp(qr_str a, qr_str b)
{
    uint32_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c) return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

typedef struct sort_ent {
    qr_str s;
    uint32_t id;
} sort_ent;

static int sort_ent_cmp(const void *a, const void *b)
{
    return str_cmp(((const sort_ent *)a)->s, ((const sort_ent *)b)->s);
}

/* Sorts the table's strings by bytes: sorted[i] = string, remap[old id] = new id. */
static int strtab_sorted(const strtab *t, qr_str **sorted_out, uint32_t **remap_out)
{
    size_t n = t->count ? t->count : 1;
    sort_ent *ents = malloc(n * sizeof *ents);
    qr_str *sorted = malloc(n * sizeof *sorted);
    uint32_t *remap = malloc(n * sizeof *remap);
    if (!ents || !sorted || !remap) {
        free(ents);
        free(sorted);
        free(remap);
        return QR_ENOMEM;
    }
    for (uint32_t id = 0; id < t->count; id++) ents[id] = (sort_ent){t->strs[id], id};
    qsort(ents, t->count, sizeof *ents, sort_ent_cmp);
    for (uint32_t idx = 0; idx < t->count; idx++) {
        sorted[idx] = ents[idx].s;
        remap[ents[idx].id] = idx;
    }
    free(ents);
    *sorted_out = sorted;
    *remap_out = remap;
    return 0;
}

/* ------------------------------------------------------------ writer state */

/* A block's value of one field, copied out of the event's field in the row-major gather
 * (reading the batches field by field later would miss the cache on every row). */
typedef struct wval {
    union {
        qr_str s;
        int64_t i;
        double f;
        bool b;
    } v;
    uint32_t vid; /* value id (dictionary-encoded string fields) */
} wval;

typedef struct wfield {
    qr_str key;
    uint8_t type;
    uint32_t row_count;
    uint32_t last_row;  /* input row + 1 that last had the field (drops repeats in an event) */
    uint32_t next_fid;  /* the field that followed this one last time (key prediction) */
    uint32_t seen_vals; /* string values interned so far */
    strtab values;      /* string fields: distinct values until too_many */
    bool too_many;
    bool is_dict;
    qr_str *dict;
    uint32_t *remap;
    seg_ref dict_ref;
    /* per block */
    wval *vals;
    uint32_t val_count;
    uint64_t *present;
} wfield;

typedef struct seg_w {
    const char *path;
    char *tmp_path;
    int fd;
    uint64_t off;    /* file offset of out->data[0] */
    qr_buf out;      /* pending file bytes */
    qr_buf scratch;  /* chunk under construction */
    qr_buf scratch2; /* compression output, msg raw bytes */
    ZSTD_CCtx *cctx;
    int zstd_level;
    seg_stats st;
    qr_diag *d;
    const qr_batch *const *batches;
    size_t batch_count;
    uint32_t **fcol; /* per batch, per field occurrence: field index (UINT32_MAX: dropped) */
    uint32_t **fval; /* per batch, per field occurrence: value id (string fields) */
    uint32_t row_count;
    /* per input row (batch order) */
    const qr_event **ev;
    uint32_t *ev_batch;
    int64_t *ts_in;
    uint32_t *svc_in;  /* sorted service ids once the dictionary is sorted */
    uint32_t *host_in; /* same for hosts */
    uint32_t *order;   /* order[segment row] = input row: rows sorted by (ts, input row) */
    strtab services;
    strtab hosts;
    qr_str *svc_sorted, *host_sorted;
    uint32_t *svc_remap, *host_remap;
    uint64_t *svc_rows;
    strtab fkeys;
    wfield *fields;
    uint32_t field_count;
    uint32_t first_fid; /* the first field of the previous event (key prediction) */
    invidx_builder *ix;
    phrase_builder *ph; /* adjacency pairs (opts->phrase_pairs), else NULL */
    bool phrase_check;  /* intersect postings for the pairs the counts cannot decide */
    bool postings;
    bool sparse_index;
    bool msg_inline_lengths;
    uint32_t msg_frame_bytes;
    /* per block scratch, block_rows each */
    const qr_event **bev;
    qr_str *bmsg;
    uint32_t *bsvc;
    uint8_t *blvl;
    int64_t *i64a;
    int64_t *i64b;
    uint64_t *u64a;
    uint32_t *cell_count; /* service_count * 8 */
    uint32_t *cells;      /* touched cells */
    seg_ref *refs;        /* block_count x slots */
    uint32_t slots;
    uint32_t block_count;
    uint32_t block_rows;
    qr_buf block_meta; /* per block: the footer entry before its refs */
    size_t *meta_end;  /* block_count: end of each block's entry in block_meta */
    int64_t min_ts, max_ts;
    uint64_t level_rows[QR_LEVEL_COUNT];
} seg_w;

static int w_io(seg_w *w, const char *what)
{
    return qr_diag_errno(w->d, QR_EIO, "segment %s: %s", w->path, what);
}

static int w_flush(seg_w *w)
{
    size_t done = 0;
    while (done < w->out.len) {
        ssize_t n = write(w->fd, w->out.data + done, w->out.len - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return w_io(w, "write");
        }
        done += (size_t)n;
    }
    w->off += w->out.len;
    qr_buf_clear(&w->out);
    return 0;
}

static uint64_t w_pos(const seg_w *w) { return w->off + w->out.len; }

/* Appends bytes to the file and returns their ref. */
static int w_put(seg_w *w, const void *p, size_t len, seg_ref *ref)
{
    ref->off = w_pos(w);
    ref->len = len;
    ref->crc = qr_checksum32(p, len);
    qr_buf_append(&w->out, p, len);
    if (!qr_buf_ok(&w->out)) return QR_ENOMEM;
    if (w->out.len >= (4u << 20)) return w_flush(w);
    return 0;
}

/* Writes scratch (which starts with a SEG_COMP_NONE byte) as a chunk, zstd-compressing the
 * payload when allowed and it saves at least 1/8. */
static int w_put_chunk(seg_w *w, bool try_zstd, seg_ref *ref, uint64_t *stat)
{
    if (!qr_buf_ok(&w->scratch)) return QR_ENOMEM;
    size_t raw_len = w->scratch.len - 1;
    if (raw_len > SEG_CHUNK_RAW_MAX)
        return qr_diag_set(w->d, QR_ELIMIT, "segment %s: a column chunk exceeds %u bytes", w->path,
                           SEG_CHUNK_RAW_MAX);
    int rc;
    if (try_zstd && raw_len >= 64) {
        size_t bound = ZSTD_compressBound(raw_len);
        qr_buf_clear(&w->scratch2);
        qr_buf_u8(&w->scratch2, SEG_COMP_ZSTD);
        qr_buf_uvarint(&w->scratch2, raw_len);
        size_t hdr = w->scratch2.len;
        if (!qr_buf_reserve(&w->scratch2, bound)) return QR_ENOMEM;
        size_t zn = ZSTD_compressCCtx(w->cctx, w->scratch2.data + hdr, bound, w->scratch.data + 1,
                                      raw_len, w->zstd_level);
        if (!ZSTD_isError(zn) && hdr + zn < raw_len + 1 - raw_len / 8) {
            w->scratch2.len = hdr + zn;
            rc = w_put(w, w->scratch2.data, w->scratch2.len, ref);
            *stat += ref->len;
            return rc;
        }
    }
    rc = w_put(w, w->scratch.data, w->scratch.len, ref);
    *stat += ref->len;
    return rc;
}

/* ------------------------------------------------------------ helpers */

static void put_ref(qr_buf *b, const seg_ref *r)
{
    qr_buf_uvarint(b, r->off);
    qr_buf_uvarint(b, r->len);
    qr_buf_u32(b, r->crc);
}

/* Hex digit classes: the value in the low 4 bits, HEXF_DIGIT on every hex digit (0 for any
 * other byte), HEXF_LOWER / HEXF_UPPER on letters of each case. */
enum { HEXF_LOWER = 0x10, HEXF_UPPER = 0x20, HEXF_DIGIT = 0x80 };
static const uint8_t hex_class[256] = {
    ['0'] = 0x80, ['1'] = 0x81, ['2'] = 0x82, ['3'] = 0x83, ['4'] = 0x84, ['5'] = 0x85,
    ['6'] = 0x86, ['7'] = 0x87, ['8'] = 0x88, ['9'] = 0x89, ['a'] = 0x9a, ['b'] = 0x9b,
    ['c'] = 0x9c, ['d'] = 0x9d, ['e'] = 0x9e, ['f'] = 0x9f, ['A'] = 0xaa, ['B'] = 0xab,
    ['C'] = 0xac, ['D'] = 0xad, ['E'] = 0xae, ['F'] = 0xaf,
};

/* ------------------------------------------------------------ pass 1: dictionaries */

/* Field id of occurrence f, which follows field `prev` in its event (UINT32_MAX at the
 * start of an event): events of one source repeat the same keys in the same order, so the
 * field that followed `prev` last time is tried first with one byte comparison, and only a
 * miss pays for hashing the key. */
static int w_field_id(seg_w *w, const qr_field *f, uint32_t prev, uint32_t *fid_out)
{
    uint32_t guess = prev == UINT32_MAX ? w->first_fid : w->fields[prev].next_fid;
    if (guess < w->field_count && w->fields[guess].type == f->type &&
        str_eq(w->fields[guess].key, f->key)) {
        *fid_out = guess;
        return 0;
    }
    uint32_t fid;
    int rc = strtab_intern(&w->fkeys, f->key, f->type, &fid);
    if (rc) return rc;
    if (fid == w->field_count) {
        wfield *nf = realloc(w->fields, (fid + 1) * sizeof *nf);
        if (!nf) return QR_ENOMEM;
        w->fields = nf;
        memset(&nf[fid], 0, sizeof *nf);
        nf[fid].key = f->key;
        nf[fid].type = f->type;
        nf[fid].next_fid = UINT32_MAX;
        w->field_count++;
    }
    if (prev == UINT32_MAX)
        w->first_fid = fid;
    else
        w->fields[prev].next_fid = fid;
    *fid_out = fid;
    return 0;
}

/* Sorts order[] (input rows) by (ts, input row). Rows usually arrive nearly sorted (a few
 * percent stamped up to a fraction of a second early): insertion sort costs one compare per
 * row plus the displacement of the late ones. A move budget bounds the worst case; past it
 * the rest is sorted by qsort. */
typedef struct ts_row {
    int64_t ts_ns;
    uint32_t row;
} ts_row;

static int ts_row_cmp(const void *a, const void *b)
{
    const ts_row *x = a, *y = b;
    if (x->ts_ns != y->ts_ns) return x->ts_ns < y->ts_ns ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

static int w_sort_rows(seg_w *w)
{
    const int64_t *ts = w->ts_in;
    uint32_t *order = w->order;
    uint32_t n = w->row_count;
    uint64_t budget = (uint64_t)n * 16 + 1024;
    uint32_t row = 1;
    for (; row < n && budget; row++) {
        uint32_t v = order[row];
        int64_t t = ts[v];
        if (ts[order[row - 1]] <= t) continue;
        uint32_t pos = row;
        while (pos > 0 && ts[order[pos - 1]] > t && budget) {
            order[pos] = order[pos - 1];
            pos--;
            budget--;
        }
        order[pos] = v;
        if (!budget && pos > 0 && ts[order[pos - 1]] > t) break; /* stopped mid-way */
    }
    if (row >= n) return 0;
    /* Budget spent: sort by (ts, input row); input rows keep ties stable. */
    ts_row *tr = malloc((size_t)n * sizeof *tr);
    if (!tr) return QR_ENOMEM;
    for (uint32_t idx = 0; idx < n; idx++) tr[idx] = (ts_row){ts[order[idx]], order[idx]};
    qsort(tr, n, sizeof *tr, ts_row_cmp);
    for (uint32_t idx = 0; idx < n; idx++) order[idx] = tr[idx].row;
    free(tr);
    return 0;
}

/* One sequential pass over the input: validates, interns services, hosts, field keys and
 * low-cardinality string values, and keeps what later passes need per row (event pointer,
 * ts, ids) so no pass walks the scattered batches again except to read values. */
static int w_collect(seg_w *w)
{
    uint64_t total = 0;
    for (size_t b = 0; b < w->batch_count; b++) total += w->batches[b]->count;
    if (total == 0) return qr_diag_set(w->d, QR_EINVAL, "segment %s: no rows", w->path);
    if (total >= UINT32_MAX)
        return qr_diag_set(w->d, QR_ELIMIT, "segment %s: too many rows", w->path);
    w->row_count = (uint32_t)total;
    w->ev = malloc(total * sizeof *w->ev);
    w->ev_batch = malloc(total * sizeof *w->ev_batch);
    w->ts_in = malloc(total * sizeof *w->ts_in);
    w->svc_in = malloc(total * sizeof *w->svc_in);
    w->host_in = malloc(total * sizeof *w->host_in);
    w->order = malloc(total * sizeof *w->order);
    w->fcol = calloc(w->batch_count, sizeof *w->fcol);
    w->fval = calloc(w->batch_count, sizeof *w->fval);
    if (!w->ev || !w->ev_batch || !w->ts_in || !w->svc_in || !w->host_in || !w->order || !w->fcol ||
        !w->fval)
        return QR_ENOMEM;
    w->first_fid = UINT32_MAX;
    uint32_t row = 0;
    int rc;
    for (size_t b = 0; b < w->batch_count; b++) {
        const qr_batch *bt = w->batches[b];
        if (bt->field_count) {
            w->fcol[b] = malloc(bt->field_count * sizeof **w->fcol);
            w->fval[b] = malloc(bt->field_count * sizeof **w->fval);
            if (!w->fcol[b] || !w->fval[b]) return QR_ENOMEM;
        }
        uint32_t *fcol = w->fcol[b], *fval = w->fval[b];
        for (size_t idx = 0; idx < bt->count; idx++, row++) {
            const qr_event *e = &bt->events[idx];
            if (e->level >= QR_LEVEL_COUNT)
                return qr_diag_set(w->d, QR_EINVAL, "segment %s: bad level %u", w->path, e->level);
            if (e->msg.len > QR_MSG_MAX_BYTES)
                return qr_diag_set(w->d, QR_ELIMIT, "segment %s: msg of %u bytes", w->path,
                                   e->msg.len);
            if ((uint64_t)e->field_off + e->field_count > bt->field_count)
                return qr_diag_set(w->d, QR_EINVAL, "segment %s: bad field range", w->path);
            w->ev[row] = e;
            w->ev_batch[row] = (uint32_t)b;
            w->ts_in[row] = e->ts_ns;
            w->order[row] = row;
            w->level_rows[e->level]++;
            rc = strtab_intern(&w->services, e->service, 0, &w->svc_in[row]);
            if (!rc) rc = strtab_intern(&w->hosts, e->host, 0, &w->host_in[row]);
            if (rc) return rc;
            uint32_t prev = UINT32_MAX;
            for (uint32_t k = 0; k < e->field_count; k++) {
                uint32_t fo = e->field_off + k;
                const qr_field *f = &bt->fields[fo];
                if (f->type > QR_FT_BOOL)
                    return qr_diag_set(w->d, QR_EINVAL, "segment %s: bad field type", w->path);
                if (f->type == QR_FT_STRING && f->v.s.len > SEG_STR_MAX_BYTES)
                    return qr_diag_set(w->d, QR_ELIMIT, "segment %s: field value too long",
                                       w->path);
                uint32_t fid;
                rc = w_field_id(w, f, prev, &fid);
                if (rc) return rc;
                prev = fid;
                wfield *wf = &w->fields[fid];
                fval[fo] = 0;
                if (wf->last_row == row + 1) { /* the same (key, type) again: first wins */
                    fcol[fo] = UINT32_MAX;
                    continue;
                }
                wf->last_row = row + 1;
                wf->row_count++;
                fcol[fo] = fid;
                if (f->type != QR_FT_STRING || wf->too_many) continue;
                uint32_t vid;
                rc = strtab_intern(&wf->values, f->v.s, 0, &vid);
                if (rc) return rc;
                fval[fo] = vid;
                /* A dictionary needs at most one distinct value per 4 rows; past a few
                 * thousand values with more than half of them distinct (ids), stop paying
                 * for the interning. */
                wf->seen_vals++;
                if (wf->values.count > SEG_DICT_MAX ||
                    (wf->seen_vals >= 4096 && wf->values.count * 2 > wf->seen_vals)) {
                    wf->too_many = true;
                    strtab_fini(&wf->values);
                }
            }
        }
    }
    rc = w_sort_rows(w);
    if (rc) return rc;
    w->min_ts = w->ts_in[w->order[0]];
    w->max_ts = w->ts_in[w->order[total - 1]];

    /* Service and host dictionaries, sorted by name; ids remapped in place. */
    rc = strtab_sorted(&w->services, &w->svc_sorted, &w->svc_remap);
    if (!rc) rc = strtab_sorted(&w->hosts, &w->host_sorted, &w->host_remap);
    if (rc) return rc;
    w->svc_rows = calloc(w->services.count, sizeof *w->svc_rows);
    if (!w->svc_rows) return QR_ENOMEM;
    for (uint32_t r = 0; r < w->row_count; r++) {
        w->svc_in[r] = w->svc_remap[w->svc_in[r]];
        w->host_in[r] = w->host_remap[w->host_in[r]];
        w->svc_rows[w->svc_in[r]]++;
    }
    /* A string field is dict-encoded when its distinct values are few next to its rows. */
    for (uint32_t fid = 0; fid < w->field_count; fid++) {
        wfield *wf = &w->fields[fid];
        if (wf->type != QR_FT_STRING || wf->too_many) continue;
        if ((uint64_t)wf->values.count * 4 > wf->row_count) continue;
        rc = strtab_sorted(&wf->values, &wf->dict, &wf->remap);
        if (rc) return rc;
        wf->is_dict = true;
    }
    return 0;
}

/* ------------------------------------------------------------ pass 2: blocks */

static int w_field_chunk(seg_w *w, wfield *wf, uint32_t n, seg_ref *ref)
{
    qr_buf *s = &w->scratch;
    qr_buf_clear(s);
    qr_buf_u8(s, SEG_COMP_NONE);
    uint32_t m = wf->val_count;
    if (m == n) {
        qr_buf_u8(s, 0);
    } else {
        qr_buf_u8(s, 1);
        size_t bytes = (n + 7) / 8;
        uint8_t *p = qr_buf_extend(s, bytes);
        if (!p) return QR_ENOMEM;
        for (size_t byte = 0; byte < bytes; byte++)
            p[byte] = (uint8_t)(wf->present[byte / 8] >> (8 * (byte % 8)));
    }
#define FVAL(idx) (&wf->vals[idx])
    switch (wf->type) {
    case QR_FT_NULL:
        qr_buf_u8(s, SEG_FENC_NULL);
        break;
    case QR_FT_INT:
        for (uint32_t idx = 0; idx < m; idx++) w->i64a[idx] = FVAL(idx)->v.i;
        qr_buf_u8(s, SEG_FENC_INT);
        codec_i64_encode(w->i64a, m, s);
        break;
    case QR_FT_FLOAT: {
        /* Smallest decimal scaling that reproduces every value exactly, else raw. */
        static const double pow10[SEG_FLOAT_DEC_MAX + 1] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6};
        int dec = -1;
        for (int dd = 0; dd <= SEG_FLOAT_DEC_MAX && dec < 0; dd++) {
            bool ok = true;
            for (uint32_t idx = 0; idx < m && ok; idx++) {
                double v = FVAL(idx)->v.f;
                double sv = v * pow10[dd];
                if (!(fabs(sv) < 9007199254740992.0) || (v == 0 && signbit(v))) {
                    ok = false;
                    break;
                }
                int64_t iv = (int64_t)llround(sv);
                double back = (double)iv / pow10[dd];
                ok = memcmp(&back, &v, sizeof v) == 0;
                w->i64a[idx] = iv;
            }
            if (ok) dec = dd;
        }
        if (dec >= 0) {
            qr_buf_u8(s, SEG_FENC_FLOAT_DEC);
            qr_buf_u8(s, (uint8_t)dec);
            codec_i64_encode(w->i64a, m, s);
        } else {
            qr_buf_u8(s, SEG_FENC_FLOAT_RAW);
            for (uint32_t idx = 0; idx < m; idx++) {
                double v = FVAL(idx)->v.f;
                uint64_t bits;
                memcpy(&bits, &v, 8);
                qr_buf_u64(s, bits);
            }
        }
        break;
    }
    case QR_FT_BOOL: {
        qr_buf_u8(s, SEG_FENC_BOOL);
        uint8_t *p = qr_buf_extend(s, (m + 7) / 8);
        if (!p && m) return QR_ENOMEM;
        for (uint32_t idx = 0; idx < m; idx++)
            if (FVAL(idx)->v.b) p[idx / 8] |= (uint8_t)(1u << (idx % 8));
        break;
    }
    case QR_FT_STRING: {
        if (wf->is_dict) {
            qr_buf_u8(s, SEG_FENC_DICT);
            for (uint32_t idx = 0; idx < m; idx++) w->u64a[idx] = wf->remap[wf->vals[idx].vid];
            codec_u64_encode(w->u64a, m, s);
            break;
        }
        /* Hex ids: same even length, hex digits, one letter case → binary. Detection and
         * encoding are one branch-free pass (flags OR-ed over all digits, checked once);
         * when the block does not qualify the bytes written are dropped. */
        uint32_t hex_len = m ? FVAL(0)->v.s.len : 0;
        if (hex_len >= 2 && hex_len <= SEG_HEX_MAX && hex_len % 2 == 0) {
            size_t mark = s->len;
            qr_buf_u8(s, SEG_FENC_HEX);
            size_t upper_at = s->len;
            qr_buf_u8(s, 0);
            qr_buf_uvarint(s, hex_len);
            uint8_t *p = qr_buf_extend(s, (size_t)m * (hex_len / 2));
            if (!p) return QR_ENOMEM;
            unsigned any = 0, all = HEXF_DIGIT;
            for (uint32_t idx = 0; idx < m && all; idx++) {
                if (idx + SEG_PREFETCH_ROWS < m)
                    __builtin_prefetch(FVAL(idx + SEG_PREFETCH_ROWS)->v.s.ptr);
                qr_str v = FVAL(idx)->v.s;
                if (v.len != hex_len) {
                    all = 0;
                    break;
                }
                const uint8_t *c = (const uint8_t *)v.ptr;
                for (uint32_t pos = 0; pos < hex_len; pos += 2) {
                    unsigned hi = hex_class[c[pos]], lo = hex_class[c[pos + 1]];
                    any |= hi | lo;
                    all &= hi & lo;
                    *p++ = (uint8_t)(hi << 4 | (lo & 15));
                }
            }
            if (all && (any & (HEXF_LOWER | HEXF_UPPER)) != (HEXF_LOWER | HEXF_UPPER)) {
                s->data[upper_at] = (any & HEXF_UPPER) ? 1 : 0;
                break;
            }
            s->len = mark;
        }
        qr_buf_u8(s, SEG_FENC_STR);
        for (uint32_t idx = 0; idx < m; idx++) w->u64a[idx] = FVAL(idx)->v.s.len;
        codec_u64_encode(w->u64a, m, s);
        for (uint32_t idx = 0; idx < m; idx++) {
            if (idx + SEG_PREFETCH_ROWS < m)
                __builtin_prefetch(FVAL(idx + SEG_PREFETCH_ROWS)->v.s.ptr);
            qr_str v = FVAL(idx)->v.s;
            qr_buf_append(s, v.ptr, v.len);
        }
        break;
    }
    }
#undef FVAL
    return w_put_chunk(w, wf->type != QR_FT_BOOL && wf->type != QR_FT_NULL, ref,
                       &w->st.field_bytes);
}

static int w_msg(seg_w *w, uint32_t n, seg_ref *ref)
{
    /* Frames first (so the index can name their offset), then the index chunk. */
    typedef struct {
        uint32_t rows;
        uint64_t raw_len;
        uint64_t comp_len;
        uint32_t crc;
    } frame_info;
    frame_info fr_small[64];
    frame_info *frames = fr_small;
    size_t frame_cap = 64, frame_count = 0;
    uint64_t data_off = w_pos(w);
    int rc = 0;
    uint32_t row = 0;
    while (row < n) {
        qr_buf_clear(&w->scratch2);
        uint32_t start = row;
        while (row < n && (row == start || w->scratch2.len < w->msg_frame_bytes)) {
            /* inline lengths: zstd sees each length next to its message (the message's
             * template predicts it), ~0.2 B/event instead of ~1.2 for a separate column */
            if (w->msg_inline_lengths) qr_buf_uvarint(&w->scratch2, w->bmsg[row].len);
            qr_buf_append(&w->scratch2, w->bmsg[row].ptr, w->bmsg[row].len);
            row++;
        }
        if (!qr_buf_ok(&w->scratch2)) {
            rc = QR_ENOMEM;
            break;
        }
        size_t bound = ZSTD_compressBound(w->scratch2.len);
        qr_buf_clear(&w->scratch);
        if (!qr_buf_reserve(&w->scratch, bound)) {
            rc = QR_ENOMEM;
            break;
        }
        size_t zn = ZSTD_compressCCtx(w->cctx, w->scratch.data, bound, w->scratch2.data,
                                      w->scratch2.len, w->zstd_level);
        if (ZSTD_isError(zn)) {
            rc = qr_diag_set(w->d, QR_ENOMEM, "zstd: %s", ZSTD_getErrorName(zn));
            break;
        }
        if (frame_count == frame_cap) {
            frame_info *nf = malloc(frame_cap * 2 * sizeof *nf);
            if (!nf) {
                rc = QR_ENOMEM;
                break;
            }
            memcpy(nf, frames, frame_count * sizeof *nf);
            if (frames != fr_small) free(frames);
            frames = nf;
            frame_cap *= 2;
        }
        seg_ref fref;
        rc = w_put(w, w->scratch.data, zn, &fref);
        if (rc) break;
        frames[frame_count++] = (frame_info){row - start, w->scratch2.len, zn, fref.crc};
        w->st.msg_bytes += zn;
    }
    if (!rc) {
        qr_buf *s = &w->scratch;
        qr_buf_clear(s);
        qr_buf_u8(s, SEG_COMP_NONE);
        if (w->msg_inline_lengths) {
            qr_buf_u8(s, SEG_MSG_INLINE);
        } else {
            for (uint32_t r = 0; r < n; r++) w->u64a[r] = w->bmsg[r].len;
            codec_u64_encode(w->u64a, n, s);
        }
        qr_buf_uvarint(s, frame_count);
        qr_buf_uvarint(s, data_off);
        for (size_t f = 0; f < frame_count; f++) {
            qr_buf_uvarint(s, frames[f].rows);
            if (w->msg_inline_lengths) qr_buf_uvarint(s, frames[f].raw_len);
            qr_buf_uvarint(s, frames[f].comp_len);
            qr_buf_u32(s, frames[f].crc);
        }
        rc = w_put_chunk(w, false, ref, &w->st.msg_bytes);
    }
    if (frames != fr_small) free(frames);
    return rc;
}

static int w_block(seg_w *w, uint32_t block_idx, uint32_t first, uint32_t n)
{
    seg_ref *refs = w->refs + (size_t)block_idx * w->slots;
    qr_buf *s = &w->scratch;
    int rc;
    /* One gather pass over the block's events into per-column arrays. */
    for (uint32_t r = 0; r < n; r++) {
        uint32_t in = w->order[first + r];
        const qr_event *e = w->ev[in];
        w->bev[r] = e;
        w->bmsg[r] = e->msg;
        w->blvl[r] = e->level;
        w->bsvc[r] = w->svc_in[in];
        w->i64a[r] = e->ts_ns;
        w->i64b[r] = (int64_t)((uint64_t)e->ingest_ts_ns - (uint64_t)e->ts_ns);
    }
    /* (the block's bloom and its tokens' postings come from the index job, w_ix_main) */
    /* ts, ingest_ts */
    qr_buf_clear(s);
    qr_buf_u8(s, SEG_COMP_NONE);
    codec_i64_encode(w->i64a, n, s);
    rc = w_put_chunk(w, false, &refs[SEG_SLOT_TS], &w->st.ts_bytes);
    if (rc) return rc;
    /* ingest_ts: as an offset from ts (skew is small), or raw (one batch shares one ingest
     * time, so sorted rows repeat a few values: RLE); whichever is smaller. */
    qr_buf_clear(s);
    qr_buf_u8(s, SEG_COMP_NONE);
    qr_buf_u8(s, SEG_INGEST_FROM_TS);
    codec_i64_encode(w->i64b, n, s);
    for (uint32_t r = 0; r < n; r++) w->u64a[r] = (uint64_t)w->bev[r]->ingest_ts_ns;
    qr_buf_clear(&w->scratch2);
    qr_buf_u8(&w->scratch2, SEG_INGEST_RAW);
    codec_u64_encode(w->u64a, n, &w->scratch2);
    if (!qr_buf_ok(&w->scratch2)) return QR_ENOMEM;
    if (w->scratch2.len < s->len - 1) {
        s->len = 1;
        qr_buf_append(s, w->scratch2.data, w->scratch2.len);
    }
    rc = w_put_chunk(w, true, &refs[SEG_SLOT_INGEST_TS], &w->st.ingest_ts_bytes);
    if (rc) return rc;
    /* labels */
    for (uint32_t r = 0; r < n; r++) w->u64a[r] = w->blvl[r];
    qr_buf_clear(s);
    qr_buf_u8(s, SEG_COMP_NONE);
    codec_u64_encode(w->u64a, n, s);
    rc = w_put_chunk(w, false, &refs[SEG_SLOT_LEVEL], &w->st.level_bytes);
    if (rc) return rc;
    for (uint32_t r = 0; r < n; r++) w->u64a[r] = w->bsvc[r];
    qr_buf_clear(s);
    qr_buf_u8(s, SEG_COMP_NONE);
    codec_u64_encode(w->u64a, n, s);
    rc = w_put_chunk(w, false, &refs[SEG_SLOT_SERVICE], &w->st.service_bytes);
    if (rc) return rc;
    for (uint32_t r = 0; r < n; r++) w->u64a[r] = w->host_in[w->order[first + r]];
    qr_buf_clear(s);
    qr_buf_u8(s, SEG_COMP_NONE);
    codec_u64_encode(w->u64a, n, s);
    rc = w_put_chunk(w, false, &refs[SEG_SLOT_HOST], &w->st.host_bytes);
    if (rc) return rc;
    rc = w_msg(w, n, &refs[SEG_SLOT_MSG]);
    if (rc) return rc;
    /* fields: gather the block's values per field, in row order */
    for (uint32_t fid = 0; fid < w->field_count; fid++) {
        wfield *wf = &w->fields[fid];
        wf->val_count = 0;
        if (wf->present) memset(wf->present, 0, ((n + 63) / 64) * sizeof(uint64_t));
    }
    for (uint32_t r = 0; r < n; r++) {
        const qr_event *e = w->bev[r];
        uint32_t batch = w->ev_batch[w->order[first + r]];
        const uint32_t *fcol = w->fcol[batch];
        for (uint32_t k = 0; k < e->field_count; k++) {
            uint32_t occ = e->field_off + k;
            uint32_t fid = fcol[occ];
            if (fid == UINT32_MAX) continue;
            wfield *wf = &w->fields[fid];
            if (!wf->vals) {
                wf->vals = malloc((size_t)w->block_rows * sizeof *wf->vals);
                wf->present = calloc((w->block_rows + 63) / 64, sizeof *wf->present);
                if (!wf->vals || !wf->present) return QR_ENOMEM;
            }
            wf->present[r >> 6] |= 1ull << (r & 63);
            wval *wv = &wf->vals[wf->val_count++];
            memcpy(&wv->v, &w->batches[batch]->fields[occ].v, sizeof wv->v);
            wv->vid = w->fval[batch][occ];
        }
    }
    for (uint32_t fid = 0; fid < w->field_count; fid++) {
        wfield *wf = &w->fields[fid];
        seg_ref *fr = &refs[SEG_SLOT_FIELD0 + fid];
        if (!wf->val_count) {
            *fr = (seg_ref){0, 0, 0};
            continue;
        }
        rc = w_field_chunk(w, wf, n, fr);
        if (rc) return rc;
    }
    /* block meta: rows per (service, level) */
    uint32_t touched = 0;
    for (uint32_t r = 0; r < n; r++) {
        uint32_t cell = w->bsvc[r] * 8 + w->blvl[r];
        if (!w->cell_count[cell]++) w->cells[touched++] = cell;
    }
    /* sort touched cells (insertion sort: few per block) */
    for (uint32_t a = 1; a < touched; a++) {
        uint32_t v = w->cells[a], b = a;
        while (b > 0 && w->cells[b - 1] > v) {
            w->cells[b] = w->cells[b - 1];
            b--;
        }
        w->cells[b] = v;
    }
    int64_t bmin = w->bev[0]->ts_ns, bmax = w->bev[n - 1]->ts_ns;
    qr_buf *fb = &w->block_meta;
    qr_buf_uvarint(fb, n);
    qr_buf_uvarint(fb, (uint64_t)bmin - (uint64_t)w->min_ts);
    qr_buf_uvarint(fb, (uint64_t)bmax - (uint64_t)bmin);
    qr_buf_uvarint(fb, touched);
    for (uint32_t c = 0; c < touched; c++) {
        uint32_t cell = w->cells[c];
        qr_buf_uvarint(fb, cell / 8);
        qr_buf_u8(fb, (uint8_t)(cell % 8));
        qr_buf_uvarint(fb, w->cell_count[cell]);
        w->cell_count[cell] = 0;
    }
    w->meta_end[block_idx] = fb->len;
    return qr_buf_ok(fb) ? 0 : QR_ENOMEM;
}

/* ------------------------------------------------------------ the index job */

/* The token work of a segment (tokenize every msg, intern, one bloom per block, the inverted
 * index) depends on nothing the column encoding produces, so it runs on a thread of its own
 * next to the block loop: a flush takes about half the wall time on two cores (it is the one
 * serial stage of ingest). Its output waits in memory and is written after the blocks'
 * columns (chunks may lie in any order). The job reads w's input arrays, which are fixed
 * once w_collect returned, and writes only its own fields. */
typedef struct seg_ix_job {
    seg_w *w;
    qr_buf blooms;      /* every block's bloom chunk, back to back */
    size_t *bloom_end;  /* block_count: end of each block's chunk in blooms */
    qr_buf index;       /* the inverted index blob (postings only) */
    qr_buf phrase;      /* the adjacency pairs blob, empty when none (storage/phrase.h) */
    atomic_bool cancel; /* the block loop failed: stop early */
    int rc;
} seg_ix_job;

static void *w_ix_main(void *arg)
{
    seg_ix_job *job = arg;
    seg_w *w = job->w;
    int rc = 0;
    for (uint32_t blk = 0; blk < w->block_count && !rc; blk++) {
        if (atomic_load_explicit(&job->cancel, memory_order_relaxed)) {
            rc = QR_EINVAL;
            break;
        }
        uint32_t first = blk * w->block_rows;
        uint32_t end = w->row_count - first < w->block_rows ? w->row_count : first + w->block_rows;
        for (uint32_t row = first; row < end && !rc; row++) {
            /* messages lie scattered in the batches: fetch a few rows ahead */
            if (row + SEG_PREFETCH_ROWS < end) {
                const char *ahead = w->ev[w->order[row + SEG_PREFETCH_ROWS]]->msg.ptr;
                __builtin_prefetch(ahead);
                __builtin_prefetch(ahead + 64);
            }
            qr_str msg = w->ev[w->order[row]]->msg;
            rc = invidx_builder_add_text(w->ix, msg.ptr, msg.len, row); /* (and w->ph) */
        }
        if (rc) break;
        const uint64_t *hs;
        size_t cnt = invidx_builder_block_hashes(w->ix, &hs);
        qr_buf_u8(&job->blooms, SEG_COMP_NONE);
        bloom_build(hs, cnt, BLOOM_BITS_PER_KEY, &job->blooms);
        if (!qr_buf_ok(&job->blooms)) rc = QR_ENOMEM;
        job->bloom_end[blk] = job->blooms.len;
    }
    if (!rc && w->postings)
        rc = invidx_builder_finish_sparse(w->ix, w->sparse_index ? w->block_rows : 0, &job->index);
    if (!rc && w->ph) { /* the adjacency pairs, checked against the index just built */
        invidx ix;
        qr_diag ixd;
        qr_diag_init(&ixd);
        if (w->phrase_check)
            rc = invidx_open(&ix, job->index.data, job->index.len, w->row_count, &ixd);
        uint32_t pairs = 0;
        if (!rc)
            rc = phrase_builder_finish(w->ph, w->phrase_check ? &ix : NULL, &job->phrase, &pairs);
        if (!rc && !pairs) qr_buf_clear(&job->phrase);
    }
    job->rc = rc;
    return NULL;
}

/* Writes the job's blooms as the blocks' bloom chunks. */
static int w_put_blooms(seg_w *w, const seg_ix_job *job)
{
    size_t start = 0;
    for (uint32_t blk = 0; blk < w->block_count; blk++) {
        size_t len = job->bloom_end[blk] - start;
        if (len - 1 > SEG_CHUNK_RAW_MAX)
            return qr_diag_set(w->d, QR_ELIMIT, "segment %s: a bloom exceeds %u bytes", w->path,
                               SEG_CHUNK_RAW_MAX);
        seg_ref *ref = &w->refs[(size_t)blk * w->slots + SEG_SLOT_BLOOM];
        int rc = w_put(w, job->blooms.data + start, len, ref);
        if (rc) return rc;
        w->st.bloom_bytes += ref->len;
        start = job->bloom_end[blk];
    }
    return 0;
}

/* ------------------------------------------------------------ finish */

static int w_dict_chunk(seg_w *w, const qr_str *strs, uint32_t count, seg_ref *ref)
{
    qr_buf *s = &w->scratch;
    qr_buf_clear(s);
    qr_buf_u8(s, SEG_COMP_NONE);
    for (uint32_t idx = 0; idx < count; idx++) qr_buf_bytes(s, strs[idx].ptr, strs[idx].len);
    return w_put_chunk(w, false, ref, &w->st.meta_bytes);
}

static int w_finish(seg_w *w, const seg_write_opts *opts, const seg_ix_job *job)
{
    int rc = w_put_blooms(w, job);
    if (rc) return rc;
    seg_ref ix_ref = {0, 0, 0}, ph_ref = {0, 0, 0};
    if (w->postings) {
        rc = w_put(w, job->index.data, job->index.len, &ix_ref);
        if (rc) return rc;
        w->st.postings_bytes += ix_ref.len;
        if (job->phrase.len) {
            rc = w_put(w, job->phrase.data, job->phrase.len, &ph_ref);
            if (rc) return rc;
            w->st.postings_bytes += ph_ref.len;
        }
    }
    for (uint32_t fid = 0; fid < w->field_count; fid++) {
        wfield *wf = &w->fields[fid];
        if (!wf->is_dict) continue;
        rc = w_dict_chunk(w, wf->dict, wf->values.count, &wf->dict_ref);
        if (rc) return rc;
    }
    qr_buf footer;
    qr_buf_init(&footer);
    qr_buf_uvarint(&footer, SEG_FORMAT_VERSION);
    qr_buf_uvarint(&footer, opts->segment_id);
    qr_buf_uvarint(&footer, w->row_count);
    qr_buf_uvarint(&footer, w->block_count);
    qr_buf_uvarint(&footer, w->block_rows);
    qr_buf_svarint(&footer, w->min_ts);
    qr_buf_svarint(&footer, w->max_ts);
    for (int lvl = 0; lvl < QR_LEVEL_COUNT; lvl++) qr_buf_uvarint(&footer, w->level_rows[lvl]);
    qr_buf_uvarint(&footer, w->services.count);
    for (uint32_t idx = 0; idx < w->services.count; idx++)
        qr_buf_bytes(&footer, w->svc_sorted[idx].ptr, w->svc_sorted[idx].len);
    for (uint32_t idx = 0; idx < w->services.count; idx++)
        qr_buf_uvarint(&footer, w->svc_rows[idx]);
    qr_buf_uvarint(&footer, w->hosts.count);
    for (uint32_t idx = 0; idx < w->hosts.count; idx++)
        qr_buf_bytes(&footer, w->host_sorted[idx].ptr, w->host_sorted[idx].len);
    qr_buf_uvarint(&footer, w->field_count);
    for (uint32_t fid = 0; fid < w->field_count; fid++) {
        const wfield *wf = &w->fields[fid];
        qr_buf_bytes(&footer, wf->key.ptr, wf->key.len);
        qr_buf_u8(&footer, wf->type);
        qr_buf_uvarint(&footer, wf->row_count);
        qr_buf_u8(&footer, wf->is_dict ? SEG_FIELD_DICT : SEG_FIELD_PLAIN);
        if (wf->is_dict) {
            qr_buf_uvarint(&footer, wf->values.count);
            put_ref(&footer, &wf->dict_ref);
        }
    }
    uint8_t has_index = w->postings ? (w->sparse_index ? 2 : 1) : 0;
    if (ph_ref.len) has_index |= SEG_INDEX_PHRASE;
    qr_buf_u8(&footer, has_index);
    if (w->postings) put_ref(&footer, &ix_ref);
    if (ph_ref.len) put_ref(&footer, &ph_ref);
    for (uint32_t blk = 0; blk < w->block_count; blk++) {
        size_t start = blk ? w->meta_end[blk - 1] : 0;
        qr_buf_append(&footer, w->block_meta.data + start, w->meta_end[blk] - start);
        for (uint32_t slot = 0; slot < w->slots; slot++)
            put_ref(&footer, &w->refs[(size_t)blk * w->slots + slot]);
    }
    if (!qr_buf_ok(&footer) || footer.len > UINT32_MAX) {
        qr_buf_fini(&footer);
        return QR_ENOMEM;
    }
    uint64_t footer_off = w_pos(w);
    uint8_t trailer[SEG_TRAILER_BYTES];
    qr_store_u64(trailer, footer_off);
    qr_store_u32(trailer + 8, (uint32_t)footer.len);
    qr_store_u32(trailer + 12, qr_checksum32(footer.data, footer.len));
    qr_store_u32(trailer + 16, SEG_FORMAT_VERSION);
    qr_store_u32(trailer + 20, qr_checksum32(trailer, 20));
    memcpy(trailer + 24, SEG_TRAILER_MAGIC, 8);
    qr_buf_append(&w->out, footer.data, footer.len);
    qr_buf_append(&w->out, trailer, sizeof trailer);
    w->st.meta_bytes += footer.len + SEG_TRAILER_BYTES + SEG_HEADER_BYTES;
    qr_buf_fini(&footer);
    if (!qr_buf_ok(&w->out)) return QR_ENOMEM;
    rc = w_flush(w);
    if (rc) return rc;
    w->st.file_bytes = w->off;
    if (fsync(w->fd) != 0) return w_io(w, "fsync");
    if (close(w->fd) != 0) {
        w->fd = -1;
        return w_io(w, "close");
    }
    w->fd = -1;
    if (rename(w->tmp_path, w->path) != 0) return w_io(w, "rename");
    /* fsync the directory so the rename is durable */
    char *dir = strdup(w->path);
    if (!dir) return QR_ENOMEM;
    char *slash = strrchr(dir, '/');
    const char *dpath = ".";
    if (slash == dir)
        dpath = "/";
    else if (slash) {
        *slash = 0;
        dpath = dir;
    }
    int dfd = open(dpath, O_RDONLY | O_DIRECTORY);
    rc = 0;
    if (dfd < 0 || fsync(dfd) != 0) rc = w_io(w, "fsync directory");
    if (dfd >= 0) close(dfd);
    free(dir);
    return rc;
}

static void w_fini(seg_w *w)
{
    if (w->fd >= 0) close(w->fd);
    qr_buf_fini(&w->out);
    qr_buf_fini(&w->scratch);
    qr_buf_fini(&w->scratch2);
    qr_buf_fini(&w->block_meta);
    free(w->meta_end);
    ZSTD_freeCCtx(w->cctx);
    if (w->fcol)
        for (size_t b = 0; b < w->batch_count; b++) free(w->fcol[b]);
    if (w->fval)
        for (size_t b = 0; b < w->batch_count; b++) free(w->fval[b]);
    free(w->fcol);
    free(w->fval);
    free(w->ev);
    free(w->ev_batch);
    free(w->ts_in);
    free(w->svc_in);
    free(w->host_in);
    free(w->order);
    free(w->bev);
    free(w->bmsg);
    free(w->bsvc);
    free(w->blvl);
    strtab_fini(&w->services);
    strtab_fini(&w->hosts);
    strtab_fini(&w->fkeys);
    free(w->svc_sorted);
    free(w->host_sorted);
    free(w->svc_remap);
    free(w->host_remap);
    free(w->svc_rows);
    for (uint32_t fid = 0; fid < w->field_count; fid++) {
        wfield *wf = &w->fields[fid];
        strtab_fini(&wf->values);
        free(wf->dict);
        free(wf->remap);
        free(wf->vals);
        free(wf->present);
    }
    free(w->fields);
    invidx_builder_free(w->ix);
    phrase_builder_free(w->ph);
    free(w->i64a);
    free(w->i64b);
    free(w->u64a);
    free(w->cell_count);
    free(w->cells);
    free(w->refs);
    free(w->tmp_path);
}

int seg_write(const char *path, const qr_batch *const *batches, size_t batch_count,
              const seg_write_opts *opts, seg_stats *stats_out, qr_diag *d)
{
    static const seg_write_opts defaults = {0};
    if (!opts) opts = &defaults;
    seg_w w;
    memset(&w, 0, sizeof w);
    w.fd = -1;
    w.path = path;
    w.d = d;
    w.batches = batches;
    w.batch_count = batch_count;
    w.block_rows = opts->block_rows ? opts->block_rows : SEG_DEFAULT_BLOCK_ROWS;
    if (w.block_rows > SEG_MAX_BLOCK_ROWS) w.block_rows = SEG_MAX_BLOCK_ROWS;
    w.zstd_level = opts->zstd_level ? opts->zstd_level : 1;
    w.sparse_index = opts->sparse_index;
    w.msg_inline_lengths = opts->msg_inline_lengths;
    w.msg_frame_bytes = opts->msg_frame_bytes ? opts->msg_frame_bytes : SEG_MSG_FRAME_TARGET;
    if (w.msg_frame_bytes > SEG_MSG_FRAME_TARGET_MAX) w.msg_frame_bytes = SEG_MSG_FRAME_TARGET_MAX;
    qr_buf_init(&w.out);
    qr_buf_init(&w.scratch);
    qr_buf_init(&w.scratch2);
    qr_buf_init(&w.block_meta);
    seg_ix_job job;
    memset(&job, 0, sizeof job);
    job.w = &w;
    qr_buf_init(&job.blooms);
    qr_buf_init(&job.index);
    qr_buf_init(&job.phrase);
    atomic_init(&job.cancel, false);
    pthread_t ix_thread;
    bool ix_running = false;
    int rc = w_collect(&w);
    if (rc) goto out;
    rc = QR_ENOMEM;
    w.cctx = ZSTD_createCCtx();
    size_t plen = strlen(path);
    w.tmp_path = malloc(plen + 5);
    if (!w.cctx || !w.tmp_path) goto out;
    memcpy(w.tmp_path, path, plen);
    memcpy(w.tmp_path + plen, ".tmp", 5);
    w.postings = !opts->no_postings;
    w.ix = w.postings ? invidx_builder_new() : invidx_builder_new_terms_only();
    if (w.ix && w.postings && w.sparse_index) invidx_builder_block_hashes_first_seen(w.ix);
    if (!w.ix) goto out;
    if (w.postings && opts->phrase_pairs) {
        if (!(w.ph = phrase_builder_new())) goto out;
        invidx_builder_set_sink(w.ix, phrase_builder_add_tokens, w.ph); /* one tokenizing */
    }
    w.phrase_check = opts->phrase_pairs == SEG_PHRASE_CHECKED;
    w.block_count = (w.row_count + w.block_rows - 1) / w.block_rows;
    w.slots = SEG_SLOT_FIELD0 + w.field_count;
    size_t brows = w.block_rows < w.row_count ? w.block_rows : w.row_count;
    w.i64a = malloc(brows * sizeof *w.i64a);
    w.i64b = malloc(brows * sizeof *w.i64b);
    w.u64a = malloc(brows * sizeof *w.u64a);
    w.bev = malloc(brows * sizeof *w.bev);
    w.bmsg = malloc(brows * sizeof *w.bmsg);
    w.bsvc = malloc(brows * sizeof *w.bsvc);
    w.blvl = malloc(brows * sizeof *w.blvl);
    w.cell_count = calloc((size_t)w.services.count * 8, sizeof *w.cell_count);
    w.cells = malloc((size_t)w.services.count * 8 * sizeof *w.cells);
    w.refs = calloc((size_t)w.block_count * w.slots, sizeof *w.refs);
    w.meta_end = malloc((size_t)w.block_count * sizeof *w.meta_end);
    job.bloom_end = malloc((size_t)w.block_count * sizeof *job.bloom_end);
    if (!w.i64a || !w.i64b || !w.u64a || !w.bev || !w.bmsg || !w.bsvc || !w.blvl || !w.cell_count ||
        !w.cells || !w.refs || !w.meta_end || !job.bloom_end)
        goto out;
    w.fd = open(w.tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w.fd < 0) {
        rc = w_io(&w, "create");
        goto out;
    }
    uint8_t header[SEG_HEADER_BYTES];
    memcpy(header, SEG_MAGIC, 8);
    qr_store_u32(header + 8, SEG_FORMAT_VERSION);
    qr_store_u32(header + 12, qr_checksum32(header, 12));
    qr_buf_append(&w.out, header, sizeof header);
    /* the index job on its own thread; without one, first, on this thread */
    if (pthread_create(&ix_thread, NULL, w_ix_main, &job) == 0)
        ix_running = true;
    else
        w_ix_main(&job);
    for (uint32_t blk = 0; blk < w.block_count; blk++) {
        uint32_t first = blk * w.block_rows;
        uint32_t n = w.row_count - first < w.block_rows ? w.row_count - first : w.block_rows;
        rc = w_block(&w, blk, first, n);
        if (rc) goto out;
    }
    if (ix_running) {
        pthread_join(ix_thread, NULL);
        ix_running = false;
    }
    rc = job.rc;
    if (!rc) rc = w_finish(&w, opts, &job);
out:
    if (ix_running) { /* the block loop failed: stop the job before freeing what it reads */
        atomic_store(&job.cancel, true);
        pthread_join(ix_thread, NULL);
    }
    qr_buf_fini(&job.blooms);
    qr_buf_fini(&job.index);
    qr_buf_fini(&job.phrase);
    free(job.bloom_end);
    if (rc && w.tmp_path) unlink(w.tmp_path);
    if (!rc) {
        w.st.rows = w.row_count;
        w.st.blocks = w.block_count;
        if (stats_out) *stats_out = w.st;
    } else if (rc == QR_ENOMEM && d && !d->code) {
        qr_diag_set(d, QR_ENOMEM, "segment %s: out of memory", path);
    }
    w_fini(&w);
    return rc;
}

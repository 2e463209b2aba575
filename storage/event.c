/* Event model helpers and the WAL batch encoding.
 *
 * WAL batch encoding (little endian; varints are LEB128, s = zigzag):
 *   u32  magic "QBT1"
 *   uvarint event_count
 *   per event:
 *     svarint ts_ns - prev_ts_ns        (prev starts at 0)
 *     svarint ingest_ts_ns - ts_ns
 *     u8      level
 *     bytes   service, host, msg        (uvarint length + bytes)
 *     uvarint field_count
 *     per field: bytes key, u8 type, value (string: bytes; int: svarint; float: u64 bits;
 *                bool: u8; null: nothing)
 * The decoder checks every length against the remaining input and the limits in event.h. */
#include "storage/event.h"

#include "common/qr_hash.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const level_names[QR_LEVEL_COUNT] = {"UNKNOWN", "TRACE", "DEBUG", "INFO",
                                                        "WARN",    "ERROR", "FATAL"};

const char *qr_level_name(qr_level level)
{
    return (unsigned)level < QR_LEVEL_COUNT ? level_names[level] : "UNKNOWN";
}

bool qr_level_parse(const char *s, size_t len, qr_level *out)
{
    static const struct {
        const char *name;
        qr_level level;
    } aliases[] = {
        {"trace", QR_LEVEL_TRACE},      {"debug", QR_LEVEL_DEBUG},
        {"dbg", QR_LEVEL_DEBUG},        {"info", QR_LEVEL_INFO},
        {"information", QR_LEVEL_INFO}, {"informational", QR_LEVEL_INFO},
        {"notice", QR_LEVEL_INFO},      {"inf", QR_LEVEL_INFO},
        {"warn", QR_LEVEL_WARN},        {"warning", QR_LEVEL_WARN},
        {"wrn", QR_LEVEL_WARN},         {"error", QR_LEVEL_ERROR},
        {"err", QR_LEVEL_ERROR},        {"eror", QR_LEVEL_ERROR},
        {"fatal", QR_LEVEL_FATAL},      {"critical", QR_LEVEL_FATAL},
        {"crit", QR_LEVEL_FATAL},       {"alert", QR_LEVEL_FATAL},
        {"emerg", QR_LEVEL_FATAL},      {"emergency", QR_LEVEL_FATAL},
        {"panic", QR_LEVEL_FATAL},      {"severe", QR_LEVEL_ERROR},
        {"fine", QR_LEVEL_DEBUG},       {"finer", QR_LEVEL_TRACE},
        {"finest", QR_LEVEL_TRACE},     {"t", QR_LEVEL_TRACE},
        {"d", QR_LEVEL_DEBUG},          {"i", QR_LEVEL_INFO},
        {"w", QR_LEVEL_WARN},           {"e", QR_LEVEL_ERROR},
        {"f", QR_LEVEL_FATAL},          {"c", QR_LEVEL_FATAL},
        {"v", QR_LEVEL_TRACE},
    };
    while (len && (s[0] == ' ' || s[0] == '\t')) s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
    if (len == 0) return false;
    if (len <= 2 && s[0] >= '0' && s[0] <= '9') {
        int n = 0;
        for (size_t i = 0; i < len; i++) {
            if (s[i] < '0' || s[i] > '9') return false;
            n = n * 10 + (s[i] - '0');
        }
        if (n > 7) return false;
        static const qr_level syslog[8] = {QR_LEVEL_FATAL, QR_LEVEL_FATAL, QR_LEVEL_FATAL,
                                           QR_LEVEL_ERROR, QR_LEVEL_WARN,  QR_LEVEL_INFO,
                                           QR_LEVEL_INFO,  QR_LEVEL_DEBUG};
        *out = syslog[n];
        return true;
    }
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        if (strlen(aliases[i].name) == len && strncasecmp(aliases[i].name, s, len) == 0) {
            *out = aliases[i].level;
            return true;
        }
    }
    return false;
}

qr_level qr_level_from_otlp(int n)
{
    if (n <= 0) return QR_LEVEL_UNKNOWN;
    if (n <= 4) return QR_LEVEL_TRACE;
    if (n <= 8) return QR_LEVEL_DEBUG;
    if (n <= 12) return QR_LEVEL_INFO;
    if (n <= 16) return QR_LEVEL_WARN;
    if (n <= 20) return QR_LEVEL_ERROR;
    return QR_LEVEL_FATAL;
}

bool qr_str_eq(qr_str a, qr_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool qr_str_eq_cstr(qr_str a, const char *s)
{
    size_t n = strlen(s);
    return a.len == n && (n == 0 || memcmp(a.ptr, s, n) == 0);
}

void qr_batch_init(qr_batch *b)
{
    memset(b, 0, sizeof *b);
    qr_arena_init(&b->arena, 256 * 1024, 0);
}

void qr_batch_fini(qr_batch *b)
{
    qr_arena_fini(&b->arena);
    free(b->events);
    free(b->fields);
    memset(b, 0, sizeof *b);
}

void qr_batch_reset(qr_batch *b)
{
    qr_arena_reset(&b->arena);
    b->count = 0;
    b->field_count = 0;
    b->bytes = 0;
}

/* Room for need events / fields (capacities double from 1024 / 4096). */
static inline int batch_reserve_events(qr_batch *b, size_t need)
{
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < need) cap *= 2;
    qr_event *p = realloc(b->events, cap * sizeof *p);
    if (!p) return QR_ENOMEM;
    b->events = p;
    b->cap = cap;
    return 0;
}

static inline int batch_reserve_fields(qr_batch *b, size_t need)
{
    if (need <= b->field_cap) return 0;
    size_t cap = b->field_cap ? b->field_cap : 4096;
    while (cap < need) cap *= 2;
    qr_field *p = realloc(b->fields, cap * sizeof *p);
    if (!p) return QR_ENOMEM;
    b->fields = p;
    b->field_cap = cap;
    return 0;
}

qr_event *qr_batch_push(qr_batch *b)
{
    if (batch_reserve_events(b, b->count + 1)) return NULL;
    qr_event *e = &b->events[b->count++];
    memset(e, 0, sizeof *e);
    e->field_off = (uint32_t)b->field_count;
    b->bytes += sizeof *e;
    return e;
}

void qr_batch_pop(qr_batch *b)
{
    if (!b->count) return;
    qr_event *e = &b->events[b->count - 1];
    b->field_count = e->field_off;
    b->bytes -= sizeof *e;
    b->count--;
}

qr_str qr_batch_str(qr_batch *b, const char *p, size_t n)
{
    qr_str s = {"", 0};
    if (n == 0) return s;
    char *copy = qr_arena_alloc(&b->arena, n);
    if (!copy) return s;
    memcpy(copy, p, n);
    s.ptr = copy;
    s.len = (uint32_t)n;
    b->bytes += n;
    return s;
}

int qr_batch_add_field(qr_batch *b, const qr_field *f)
{
    if (!b->count) return QR_EINVAL;
    qr_event *e = &b->events[b->count - 1];
    if (e->field_count >= QR_FIELDS_MAX) return QR_ELIMIT;
    if (batch_reserve_fields(b, b->field_count + 1)) return QR_ENOMEM;
    b->fields[b->field_count++] = *f;
    e->field_count++;
    b->bytes += sizeof *f;
    return 0;
}

int qr_batch_absorb(qr_batch *dst, qr_batch *src)
{
    if (!src->count) return 0;
    if (batch_reserve_events(dst, dst->count + src->count) ||
        batch_reserve_fields(dst, dst->field_count + src->field_count))
        return QR_ENOMEM;
    for (size_t idx = 0; idx < src->count; idx++) {
        qr_event *e = &dst->events[dst->count + idx];
        *e = src->events[idx];
        e->field_off += (uint32_t)dst->field_count;
    }
    if (src->field_count)
        memcpy(dst->fields + dst->field_count, src->fields, src->field_count * sizeof *src->fields);
    dst->count += src->count;
    dst->field_count += src->field_count;
    dst->bytes += src->bytes;
    qr_arena_adopt(&dst->arena, &src->arena);
    src->count = src->field_count = src->bytes = 0;
    return 0;
}

int qr_batch_copy_event(qr_batch *dst, const qr_batch *src, size_t idx)
{
    const qr_event *se = &src->events[idx];
    qr_event *de = qr_batch_push(dst);
    if (!de) return QR_ENOMEM;
    de->ts_ns = se->ts_ns;
    de->ingest_ts_ns = se->ingest_ts_ns;
    de->level = se->level;
    de->service = qr_batch_str(dst, se->service.ptr, se->service.len);
    de->host = qr_batch_str(dst, se->host.ptr, se->host.len);
    de->msg = qr_batch_str(dst, se->msg.ptr, se->msg.len);
    const qr_field *sf = qr_event_fields(src, se);
    for (uint32_t fi = 0; fi < se->field_count; fi++) {
        qr_field f = sf[fi];
        f.key = qr_batch_str(dst, f.key.ptr, f.key.len);
        if (f.type == QR_FT_STRING) f.v.s = qr_batch_str(dst, f.v.s.ptr, f.v.s.len);
        int rc = qr_batch_add_field(dst, &f);
        if (rc) return rc;
    }
    return 0;
}

#define BATCH_MAGIC_V1 0x31544251u /* "QBT1" */
#define BATCH_MAGIC 0x32544251u    /* "QBT2" */

/* Version 2 (docs/format.md, "Event batch encoding"): labels and keys are written once per
 * batch and then referenced by index ("srefs"), lower-case hex values travel as bytes, and
 * ingest_ts is a delta from the previous event's (a batch shares one ingest time). That is
 * ~35 % fewer bytes for the WAL's zstd to compress on typical logs, and zstd is the larger
 * part of the WAL's CPU. */
enum {
    BATCH_STR_LITERAL = 0,         /* sref: a literal follows */
    BATCH_FT_STRING_HEX = 5,       /* v2 value type: lower-case hex string as bytes */
    BATCH_FT_STRING_REF = 6,       /* v2 value type: string value by sref */
    BATCH_STRTAB_MAX = 2048,       /* srefs a batch may define (tables stay < 128 KiB, so
                                      malloc reuses them instead of mapping fresh pages) */
    BATCH_STRTAB_VALUES = 1024,    /* entries string values may take (ids would crowd
                                      out labels and keys) */
    BATCH_HEX_MAX_BYTES = 64,      /* longest hex value sent as bytes (128 digits) */
    BATCH_REF_VALUE_MAX_BYTES = 24 /* string values up to this long go through the table */
};

/* Encoder's string table: open addressing on the bytes' hash, borrowed strings. */
typedef struct batch_strtab {
    uint64_t slots[2 * BATCH_STRTAB_MAX]; /* hash high 32 bits << 32 | (index + 1); 0 empty */
    qr_str strs[BATCH_STRTAB_MAX];
    uint32_t count;
} batch_strtab;

static inline uint8_t *put_uvarint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static inline uint8_t *put_bytes(uint8_t *p, const char *s, uint32_t n)
{
    p = put_uvarint(p, n);
    if (n) memcpy(p, s, n);
    return p + n;
}

/* Byte equality without a libc call, for the short strings labels and keys are. */
static inline bool bytes_eq(const char *a, const char *b, uint32_t n)
{
    uint32_t idx = 0;
    for (; idx + 8 <= n; idx += 8) {
        uint64_t x, y;
        memcpy(&x, a + idx, 8);
        memcpy(&y, b + idx, 8);
        if (x != y) return false;
    }
    for (; idx < n; idx++)
        if (a[idx] != b[idx]) return false;
    return true;
}

/* Writes s as an sref: the index + 1 of an earlier equal string, or 0 and the literal (which
 * joins the table while it has room; the decoder applies the same rule). */
static uint8_t *put_sref(uint8_t *p, batch_strtab *t, qr_str s, uint32_t limit)
{
    uint64_t h = qr_hash64(s.ptr, s.len);
    uint32_t tag = (uint32_t)(h >> 32), mask = 2 * BATCH_STRTAB_MAX - 1;
    uint32_t slot = (uint32_t)h & mask;
    for (;;) {
        uint64_t v = t->slots[slot];
        if (!v) break;
        uint32_t idx = (uint32_t)v - 1;
        if ((uint32_t)(v >> 32) == tag && t->strs[idx].len == s.len &&
            bytes_eq(t->strs[idx].ptr, s.ptr, s.len))
            return put_uvarint(p, (uint64_t)idx + 1);
        slot = (slot + 1) & mask;
    }
    if (t->count < limit) {
        t->strs[t->count] = s;
        t->slots[slot] = (uint64_t)tag << 32 | ++t->count;
    }
    *p++ = BATCH_STR_LITERAL;
    return put_bytes(p, s.ptr, s.len);
}

/* Value + 1 of a lower-case hex digit, 0 for any other byte. */
static const uint8_t lower_hex_val1[256] = {
    ['0'] = 1, ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

/* Writes a lower-case hex string of even length as bytes; false (nothing written) otherwise. */
static bool put_hex(uint8_t **pp, qr_str s)
{
    if (s.len < 2 || s.len % 2 || s.len > 2 * BATCH_HEX_MAX_BYTES) return false;
    uint8_t *p = *pp;
    p[0] = BATCH_FT_STRING_HEX;
    uint8_t *out = put_uvarint(p + 1, s.len / 2);
    const uint8_t *c = (const uint8_t *)s.ptr;
    unsigned bad = 0;
    for (uint32_t idx = 0; idx < s.len; idx += 2) {
        unsigned hi = lower_hex_val1[c[idx]], lo = lower_hex_val1[c[idx + 1]];
        bad |= (hi == 0) | (lo == 0);
        *out++ = (uint8_t)((hi - 1) << 4 | ((lo - 1) & 15));
    }
    if (bad) return false;
    *pp = out;
    return true;
}

/* The encoder refuses what qr_batch_decode would reject, so the WAL never logs a record that
 * recovery then treats as corruption. */
int qr_batch_encode(const qr_batch *b, qr_buf *out)
{
    /* worst case: per event 2 x 10 varint bytes + level + 3 strings with 6-byte srefs or
     * lengths + field count; per field an sref key, type and a value with its length */
    uint64_t bound = 4 + 10;
    for (size_t row = 0; row < b->count; row++) {
        const qr_event *e = &b->events[row];
        if (e->level >= QR_LEVEL_COUNT) return QR_EINVAL;
        if (e->service.len > QR_LABEL_MAX_BYTES || e->host.len > QR_LABEL_MAX_BYTES ||
            e->msg.len > QR_MSG_MAX_BYTES || e->field_count > QR_FIELDS_MAX)
            return QR_ELIMIT;
        bound += 21 + 3 * 6 + 5 + (uint64_t)e->service.len + e->host.len + e->msg.len;
        const qr_field *fields = qr_event_fields(b, e);
        for (uint32_t fi = 0; fi < e->field_count; fi++) {
            const qr_field *f = &fields[fi];
            if (f->type > QR_FT_BOOL) return QR_EINVAL;
            if (f->key.len > QR_KEY_MAX_BYTES ||
                (f->type == QR_FT_STRING && f->v.s.len > QR_MSG_MAX_BYTES))
                return QR_ELIMIT;
            bound += 6 + f->key.len + 1 + 6 + 10 + (f->type == QR_FT_STRING ? f->v.s.len : 0);
        }
    }
    if (bound > SIZE_MAX / 2 || !qr_buf_reserve(out, (size_t)bound)) return QR_ENOMEM;
    batch_strtab *t = malloc(sizeof *t);
    if (!t) return QR_ENOMEM;
    memset(t->slots, 0, sizeof t->slots);
    t->count = 0;
    uint8_t *p = out->data + out->len;
    qr_store_u32(p, BATCH_MAGIC);
    p = put_uvarint(p + 4, b->count);
    int64_t prev_ts = 0, prev_ingest = 0;
    for (size_t row = 0; row < b->count; row++) {
        const qr_event *e = &b->events[row];
        /* deltas wrap (two's complement) like the decoder's sums: no signed overflow */
        p = put_uvarint(p, qr_zigzag_enc((int64_t)((uint64_t)e->ts_ns - (uint64_t)prev_ts)));
        p = put_uvarint(
            p, qr_zigzag_enc((int64_t)((uint64_t)e->ingest_ts_ns - (uint64_t)prev_ingest)));
        prev_ts = e->ts_ns;
        prev_ingest = e->ingest_ts_ns;
        *p++ = e->level;
        p = put_sref(p, t, e->service, BATCH_STRTAB_MAX);
        p = put_sref(p, t, e->host, BATCH_STRTAB_MAX);
        p = put_bytes(p, e->msg.ptr, e->msg.len);
        p = put_uvarint(p, e->field_count);
        const qr_field *fields = qr_event_fields(b, e);
        for (uint32_t fi = 0; fi < e->field_count; fi++) {
            const qr_field *f = &fields[fi];
            p = put_sref(p, t, f->key, BATCH_STRTAB_MAX);
            switch (f->type) {
            case QR_FT_STRING:
                if (put_hex(&p, f->v.s)) break;
                if (f->v.s.len <= BATCH_REF_VALUE_MAX_BYTES) {
                    *p++ = BATCH_FT_STRING_REF;
                    p = put_sref(p, t, f->v.s, BATCH_STRTAB_VALUES);
                } else {
                    *p++ = QR_FT_STRING;
                    p = put_bytes(p, f->v.s.ptr, f->v.s.len);
                }
                break;
            case QR_FT_INT:
                *p++ = QR_FT_INT;
                p = put_uvarint(p, qr_zigzag_enc(f->v.i));
                break;
            case QR_FT_FLOAT: {
                *p++ = QR_FT_FLOAT;
                uint64_t bits;
                memcpy(&bits, &f->v.f, 8);
                memcpy(p, &bits, 8); /* little-endian hosts, as qr_buf_u64 */
                p += 8;
                break;
            }
            case QR_FT_BOOL:
                *p++ = QR_FT_BOOL;
                *p++ = f->v.b ? 1 : 0;
                break;
            default:
                *p++ = f->type;
                break;
            }
        }
    }
    free(t);
    out->len = (size_t)(p - out->data);
    return 0;
}

static int take_str(qr_rd *r, qr_batch *b, size_t max, qr_str *out)
{
    size_t n;
    const uint8_t *p = qr_rd_bytes(r, &n);
    if (r->bad || n > max) return QR_ECORRUPT;
    *out = qr_batch_str(b, (const char *)p, n);
    if (n && !out->len) return QR_ENOMEM;
    return 0;
}

/* Decoder's view of the string table: strings already copied into the batch's arena. */
typedef struct batch_rdtab {
    qr_str strs[BATCH_STRTAB_MAX];
    uint32_t count;
} batch_rdtab;

static int take_sref(qr_rd *r, qr_batch *b, batch_rdtab *t, size_t max, uint32_t limit, qr_str *out)
{
    uint64_t u = qr_rd_uvarint(r);
    if (r->bad) return QR_ECORRUPT;
    if (u != BATCH_STR_LITERAL) {
        if (u > t->count || t->strs[u - 1].len > max) return QR_ECORRUPT;
        *out = t->strs[u - 1];
        b->bytes += out->len;
        return 0;
    }
    int rc = take_str(r, b, max, out);
    if (!rc && t->count < limit) t->strs[t->count++] = *out;
    return rc;
}

static int take_hex(qr_rd *r, qr_batch *b, qr_str *out)
{
    size_t n;
    const uint8_t *p = qr_rd_bytes(r, &n);
    if (r->bad || n == 0 || n > BATCH_HEX_MAX_BYTES) return QR_ECORRUPT;
    static const char digits[16] = "0123456789abcdef";
    char hex[2 * BATCH_HEX_MAX_BYTES];
    for (size_t idx = 0; idx < n; idx++) {
        hex[2 * idx] = digits[p[idx] >> 4];
        hex[2 * idx + 1] = digits[p[idx] & 15];
    }
    *out = qr_batch_str(b, hex, 2 * n);
    return out->len ? 0 : QR_ENOMEM;
}

int qr_batch_decode(const uint8_t *p, size_t len, qr_batch *b, qr_diag *d)
{
    qr_rd r;
    qr_rd_init(&r, p, len);
    uint32_t magic = qr_rd_u32(&r);
    if (magic != BATCH_MAGIC && magic != BATCH_MAGIC_V1)
        return qr_diag_set(d, QR_ECORRUPT, "batch: bad magic");
    bool v2 = magic == BATCH_MAGIC;
    uint64_t count = qr_rd_uvarint(&r);
    /* every event takes at least 7 bytes */
    if (r.bad || count > qr_rd_left(&r) / 7 + 1)
        return qr_diag_set(d, QR_ECORRUPT, "batch: bad event count");
    batch_rdtab *t = NULL;
    if (v2 && !(t = malloc(sizeof *t))) return qr_diag_set(d, QR_ENOMEM, "batch: out of memory");
    if (t) t->count = 0;
    int rc = 0;
    int64_t prev_ts = 0, prev_ingest = 0;
    for (uint64_t row = 0; row < count; row++) {
        qr_event *e = qr_batch_push(b);
        if (!e) {
            rc = qr_diag_set(d, QR_ENOMEM, "batch: out of memory");
            goto out;
        }
        e->ts_ns = (int64_t)((uint64_t)prev_ts + (uint64_t)qr_rd_svarint(&r));
        prev_ts = e->ts_ns;
        /* v1: ingest delta from this event's ts; v2: from the previous event's ingest_ts */
        e->ingest_ts_ns =
            (int64_t)((uint64_t)(v2 ? prev_ingest : e->ts_ns) + (uint64_t)qr_rd_svarint(&r));
        prev_ingest = e->ingest_ts_ns;
        e->level = qr_rd_u8(&r);
        qr_str svc, host, msg;
        if (v2 ? (rc = take_sref(&r, b, t, QR_LABEL_MAX_BYTES, BATCH_STRTAB_MAX, &svc)) ||
                     (rc = take_sref(&r, b, t, QR_LABEL_MAX_BYTES, BATCH_STRTAB_MAX, &host))
               : (rc = take_str(&r, b, QR_LABEL_MAX_BYTES, &svc)) ||
                     (rc = take_str(&r, b, QR_LABEL_MAX_BYTES, &host))) {
            rc = qr_diag_set(d, rc, "batch: bad label in event %llu", (unsigned long long)row);
            goto out;
        }
        if ((rc = take_str(&r, b, QR_MSG_MAX_BYTES, &msg))) {
            rc = qr_diag_set(d, rc, "batch: bad string in event %llu", (unsigned long long)row);
            goto out;
        }
        e = &b->events[b->count - 1];
        e->service = svc;
        e->host = host;
        e->msg = msg;
        if (e->level >= QR_LEVEL_COUNT) {
            rc = qr_diag_set(d, QR_ECORRUPT, "batch: bad level in event %llu",
                             (unsigned long long)row);
            goto out;
        }
        uint64_t nfields = qr_rd_uvarint(&r);
        if (r.bad || nfields > QR_FIELDS_MAX) {
            rc = qr_diag_set(d, QR_ECORRUPT, "batch: bad field count in event %llu",
                             (unsigned long long)row);
            goto out;
        }
        for (uint64_t fi = 0; fi < nfields; fi++) {
            qr_field f;
            memset(&f, 0, sizeof f);
            if ((rc = v2 ? take_sref(&r, b, t, QR_KEY_MAX_BYTES, BATCH_STRTAB_MAX, &f.key)
                         : take_str(&r, b, QR_KEY_MAX_BYTES, &f.key))) {
                rc = qr_diag_set(d, rc, "batch: bad field key in event %llu",
                                 (unsigned long long)row);
                goto out;
            }
            uint8_t type = qr_rd_u8(&r);
            f.type = type;
            switch (type) {
            case QR_FT_NULL:
                break;
            case QR_FT_STRING:
                rc = take_str(&r, b, QR_MSG_MAX_BYTES, &f.v.s);
                break;
            case QR_FT_INT:
                f.v.i = qr_rd_svarint(&r);
                break;
            case QR_FT_FLOAT: {
                uint64_t bits = qr_rd_u64(&r);
                memcpy(&f.v.f, &bits, 8);
                break;
            }
            case QR_FT_BOOL:
                f.v.b = qr_rd_u8(&r) != 0;
                break;
            case BATCH_FT_STRING_HEX:
                if (!v2) goto bad_type;
                f.type = QR_FT_STRING;
                rc = take_hex(&r, b, &f.v.s);
                break;
            case BATCH_FT_STRING_REF:
                if (!v2) goto bad_type;
                f.type = QR_FT_STRING;
                rc = take_sref(&r, b, t, QR_MSG_MAX_BYTES, BATCH_STRTAB_VALUES, &f.v.s);
                break;
            default:
            bad_type:
                rc = qr_diag_set(d, QR_ECORRUPT, "batch: bad field type %u in event %llu", type,
                                 (unsigned long long)row);
                goto out;
            }
            if (rc) {
                rc = qr_diag_set(d, rc, "batch: bad field value in event %llu",
                                 (unsigned long long)row);
                goto out;
            }
            if (r.bad) break;
            if ((rc = qr_batch_add_field(b, &f))) {
                rc = qr_diag_set(d, rc, "batch: cannot add field");
                goto out;
            }
        }
        if (r.bad) {
            rc = qr_diag_set(d, QR_ECORRUPT, "batch: truncated at event %llu",
                             (unsigned long long)row);
            goto out;
        }
    }
    if (qr_rd_left(&r) != 0)
        rc = qr_diag_set(d, QR_ECORRUPT, "batch: %zu trailing bytes", qr_rd_left(&r));
out:
    free(t);
    return rc;
}

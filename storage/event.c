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
        {"trace", QR_LEVEL_TRACE},    {"debug", QR_LEVEL_DEBUG},   {"dbg", QR_LEVEL_DEBUG},
        {"info", QR_LEVEL_INFO},      {"information", QR_LEVEL_INFO}, {"informational", QR_LEVEL_INFO},
        {"notice", QR_LEVEL_INFO},    {"inf", QR_LEVEL_INFO},      {"warn", QR_LEVEL_WARN},
        {"warning", QR_LEVEL_WARN},   {"wrn", QR_LEVEL_WARN},      {"error", QR_LEVEL_ERROR},
        {"err", QR_LEVEL_ERROR},      {"eror", QR_LEVEL_ERROR},    {"fatal", QR_LEVEL_FATAL},
        {"critical", QR_LEVEL_FATAL}, {"crit", QR_LEVEL_FATAL},    {"alert", QR_LEVEL_FATAL},
        {"emerg", QR_LEVEL_FATAL},    {"emergency", QR_LEVEL_FATAL}, {"panic", QR_LEVEL_FATAL},
        {"severe", QR_LEVEL_ERROR},   {"fine", QR_LEVEL_DEBUG},    {"finer", QR_LEVEL_TRACE},
        {"finest", QR_LEVEL_TRACE},   {"t", QR_LEVEL_TRACE},       {"d", QR_LEVEL_DEBUG},
        {"i", QR_LEVEL_INFO},         {"w", QR_LEVEL_WARN},        {"e", QR_LEVEL_ERROR},
        {"f", QR_LEVEL_FATAL},        {"c", QR_LEVEL_FATAL},       {"v", QR_LEVEL_TRACE},
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

qr_event *qr_batch_push(qr_batch *b)
{
    if (b->count == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        qr_event *p = realloc(b->events, cap * sizeof *p);
        if (!p) return NULL;
        b->events = p;
        b->cap = cap;
    }
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
    if (b->field_count == b->field_cap) {
        size_t cap = b->field_cap ? b->field_cap * 2 : 4096;
        qr_field *p = realloc(b->fields, cap * sizeof *p);
        if (!p) return QR_ENOMEM;
        b->fields = p;
        b->field_cap = cap;
    }
    b->fields[b->field_count++] = *f;
    e->field_count++;
    b->bytes += sizeof *f;
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

#define BATCH_MAGIC 0x31544251u /* "QBT1" */

/* The encoder refuses what qr_batch_decode would reject, so the WAL never logs a record that
 * recovery then treats as corruption. */
int qr_batch_encode(const qr_batch *b, qr_buf *out)
{
    for (size_t row = 0; row < b->count; row++) {
        const qr_event *e = &b->events[row];
        if (e->level >= QR_LEVEL_COUNT) return QR_EINVAL;
        if (e->service.len > QR_LABEL_MAX_BYTES || e->host.len > QR_LABEL_MAX_BYTES ||
            e->msg.len > QR_MSG_MAX_BYTES || e->field_count > QR_FIELDS_MAX)
            return QR_ELIMIT;
        const qr_field *fields = qr_event_fields(b, e);
        for (uint32_t fi = 0; fi < e->field_count; fi++) {
            const qr_field *f = &fields[fi];
            if (f->type > QR_FT_BOOL) return QR_EINVAL;
            if (f->key.len > QR_KEY_MAX_BYTES ||
                (f->type == QR_FT_STRING && f->v.s.len > QR_MSG_MAX_BYTES))
                return QR_ELIMIT;
        }
    }
    qr_buf_u32(out, BATCH_MAGIC);
    qr_buf_uvarint(out, b->count);
    int64_t prev_ts = 0;
    for (size_t row = 0; row < b->count; row++) {
        const qr_event *e = &b->events[row];
        /* deltas wrap (two's complement) like the decoder's sums: no signed overflow */
        qr_buf_svarint(out, (int64_t)((uint64_t)e->ts_ns - (uint64_t)prev_ts));
        prev_ts = e->ts_ns;
        qr_buf_svarint(out, (int64_t)((uint64_t)e->ingest_ts_ns - (uint64_t)e->ts_ns));
        qr_buf_u8(out, e->level);
        qr_buf_bytes(out, e->service.ptr, e->service.len);
        qr_buf_bytes(out, e->host.ptr, e->host.len);
        qr_buf_bytes(out, e->msg.ptr, e->msg.len);
        qr_buf_uvarint(out, e->field_count);
        const qr_field *fields = qr_event_fields(b, e);
        for (uint32_t fi = 0; fi < e->field_count; fi++) {
            const qr_field *f = &fields[fi];
            qr_buf_bytes(out, f->key.ptr, f->key.len);
            qr_buf_u8(out, f->type);
            switch (f->type) {
            case QR_FT_STRING: qr_buf_bytes(out, f->v.s.ptr, f->v.s.len); break;
            case QR_FT_INT: qr_buf_svarint(out, f->v.i); break;
            case QR_FT_FLOAT: {
                uint64_t bits;
                memcpy(&bits, &f->v.f, 8);
                qr_buf_u64(out, bits);
                break;
            }
            case QR_FT_BOOL: qr_buf_u8(out, f->v.b ? 1 : 0); break;
            default: break;
            }
        }
    }
    return qr_buf_ok(out) ? 0 : QR_ENOMEM;
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

int qr_batch_decode(const uint8_t *p, size_t len, qr_batch *b, qr_diag *d)
{
    qr_rd r;
    qr_rd_init(&r, p, len);
    if (qr_rd_u32(&r) != BATCH_MAGIC)
        return qr_diag_set(d, QR_ECORRUPT, "batch: bad magic");
    uint64_t count = qr_rd_uvarint(&r);
    /* every event takes at least 7 bytes */
    if (r.bad || count > qr_rd_left(&r) / 7 + 1)
        return qr_diag_set(d, QR_ECORRUPT, "batch: bad event count");
    int64_t prev_ts = 0;
    for (uint64_t row = 0; row < count; row++) {
        qr_event *e = qr_batch_push(b);
        if (!e) return qr_diag_set(d, QR_ENOMEM, "batch: out of memory");
        e->ts_ns = (int64_t)((uint64_t)prev_ts + (uint64_t)qr_rd_svarint(&r));
        prev_ts = e->ts_ns;
        e->ingest_ts_ns = (int64_t)((uint64_t)e->ts_ns + (uint64_t)qr_rd_svarint(&r));
        e->level = qr_rd_u8(&r);
        int rc;
        qr_str svc, host, msg;
        if ((rc = take_str(&r, b, QR_LABEL_MAX_BYTES, &svc)) ||
            (rc = take_str(&r, b, QR_LABEL_MAX_BYTES, &host)) ||
            (rc = take_str(&r, b, QR_MSG_MAX_BYTES, &msg)))
            return qr_diag_set(d, rc, "batch: bad string in event %llu", (unsigned long long)row);
        e = &b->events[b->count - 1];
        e->service = svc;
        e->host = host;
        e->msg = msg;
        if (e->level >= QR_LEVEL_COUNT)
            return qr_diag_set(d, QR_ECORRUPT, "batch: bad level in event %llu",
                               (unsigned long long)row);
        uint64_t nfields = qr_rd_uvarint(&r);
        if (r.bad || nfields > QR_FIELDS_MAX)
            return qr_diag_set(d, QR_ECORRUPT, "batch: bad field count in event %llu",
                               (unsigned long long)row);
        for (uint64_t fi = 0; fi < nfields; fi++) {
            qr_field f;
            memset(&f, 0, sizeof f);
            if ((rc = take_str(&r, b, QR_KEY_MAX_BYTES, &f.key)))
                return qr_diag_set(d, rc, "batch: bad field key in event %llu",
                                   (unsigned long long)row);
            f.type = qr_rd_u8(&r);
            switch (f.type) {
            case QR_FT_NULL: break;
            case QR_FT_STRING:
                if ((rc = take_str(&r, b, QR_MSG_MAX_BYTES, &f.v.s)))
                    return qr_diag_set(d, rc, "batch: bad field value in event %llu",
                                       (unsigned long long)row);
                break;
            case QR_FT_INT: f.v.i = qr_rd_svarint(&r); break;
            case QR_FT_FLOAT: {
                uint64_t bits = qr_rd_u64(&r);
                memcpy(&f.v.f, &bits, 8);
                break;
            }
            case QR_FT_BOOL: f.v.b = qr_rd_u8(&r) != 0; break;
            default:
                return qr_diag_set(d, QR_ECORRUPT, "batch: bad field type %u in event %llu",
                                   f.type, (unsigned long long)row);
            }
            if (r.bad) break;
            if ((rc = qr_batch_add_field(b, &f)))
                return qr_diag_set(d, rc, "batch: cannot add field");
        }
        if (r.bad)
            return qr_diag_set(d, QR_ECORRUPT, "batch: truncated at event %llu",
                               (unsigned long long)row);
    }
    if (qr_rd_left(&r) != 0)
        return qr_diag_set(d, QR_ECORRUPT, "batch: %zu trailing bytes", qr_rd_left(&r));
    return 0;
}

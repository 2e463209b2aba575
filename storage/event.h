/* event — Quarry's event model (DESIGN.md §2) and the in-memory event batch.
 *
 * An event: ts_ns, ingest_ts_ns, service, level, host, msg, and flat typed fields.
 * A qr_batch owns an arena holding every string of its events (qr_str points into it), an
 * array of events and one array of fields that events index by (field_off, field_count).
 * Batches are what decoders produce, what the WAL logs (qr_batch_encode/decode: a compact
 * binary form, zstd-compressed by the WAL) and what the memtable absorbs.
 * Ownership: qr_batch_init/qr_batch_fini; qr_batch_reset keeps capacity.
 * Thread safety: none; a batch belongs to one thread at a time (read-only sharing is fine).
 * Limits (DESIGN.md §2) are defined here, each with its reason. */
#ifndef QR_EVENT_H
#define QR_EVENT_H

#include "common/qr_arena.h"
#include "common/qr_buf.h"
#include "common/qr_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits, enforced with a clear error by every decoder. */
#define QR_MSG_MAX_BYTES (256 * 1024)         /* a log line longer than this is a bug upstream */
#define QR_FIELDS_MAX 256                     /* per event; keeps per-row work bounded */
#define QR_KEY_MAX_BYTES 128                  /* field names are identifiers, not payload */
#define QR_LABEL_MAX_BYTES 256                /* service/host: dictionary entries */
#define QR_BATCH_MAX_BYTES (16 * 1024 * 1024) /* decoded batch; bounds WAL records and memory */
#define QR_TENANT_MAX_BYTES 64

typedef enum qr_level {
    QR_LEVEL_UNKNOWN = 0,
    QR_LEVEL_TRACE = 1,
    QR_LEVEL_DEBUG = 2,
    QR_LEVEL_INFO = 3,
    QR_LEVEL_WARN = 4,
    QR_LEVEL_ERROR = 5,
    QR_LEVEL_FATAL = 6,
} qr_level;
#define QR_LEVEL_COUNT 7

/* "TRACE".."FATAL", "UNKNOWN". */
const char *qr_level_name(qr_level level);
/* Normalizes names and aliases, any case: trace, debug/dbg, info/information/notice, warn/
 * warning, error/err, fatal/critical/crit/alert/emerg/panic, one-letter T D I W E F; numbers
 * follow syslog severity 0-7 (0-2 fatal, 3 error, 4 warn, 5-6 info, 7 debug).
 * Returns false when nothing matches (level left UNKNOWN by callers). */
bool qr_level_parse(const char *s, size_t len, qr_level *out);
/* OTLP severityNumber 1-24 → level. */
qr_level qr_level_from_otlp(int severity_number);

typedef struct qr_str {
    const char *ptr;
    uint32_t len;
} qr_str;

static inline qr_str qr_str_make(const char *p, size_t n)
{
    qr_str s = {p, (uint32_t)n};
    return s;
}
bool qr_str_eq(qr_str a, qr_str b);
bool qr_str_eq_cstr(qr_str a, const char *s);

typedef enum qr_field_type {
    QR_FT_NULL = 0,
    QR_FT_STRING = 1,
    QR_FT_INT = 2,   /* int64 */
    QR_FT_FLOAT = 3, /* double */
    QR_FT_BOOL = 4,
} qr_field_type;

typedef struct qr_field {
    qr_str key;
    uint8_t type; /* qr_field_type */
    union {
        qr_str s;
        int64_t i;
        double f;
        bool b;
    } v;
} qr_field;

typedef struct qr_event {
    int64_t ts_ns;
    int64_t ingest_ts_ns;
    qr_str service;
    qr_str host;
    qr_str msg;
    uint8_t level; /* qr_level */
    uint32_t field_off;
    uint32_t field_count;
} qr_event;

typedef struct qr_batch {
    qr_arena arena;
    qr_event *events;
    size_t count;
    size_t cap;
    qr_field *fields;
    size_t field_count;
    size_t field_cap;
    size_t bytes; /* approximate decoded size: strings + fixed parts, checked against limits */
} qr_batch;

void qr_batch_init(qr_batch *b);
void qr_batch_fini(qr_batch *b);
void qr_batch_reset(qr_batch *b);
/* Appends a zeroed event (field_off set to the batch's field count) and returns it; NULL on
 * OOM. The pointer is valid until the next push. */
qr_event *qr_batch_push(qr_batch *b);
/* Appends all of src's events to dst without copying their strings: src's arena joins dst's.
 * src is left empty (reusable). QR_ENOMEM leaves both unchanged. */
int qr_batch_absorb(qr_batch *dst, qr_batch *src);
/* Removes the last pushed event and its fields (used when a decoder rejects an event). */
void qr_batch_pop(qr_batch *b);
/* Copies bytes into the batch's arena. */
qr_str qr_batch_str(qr_batch *b, const char *p, size_t n);
/* Appends a field to the last pushed event (key/value strings must already live in the
 * batch's arena, or be copied with qr_batch_str). Returns 0, QR_ENOMEM, or QR_ELIMIT past
 * QR_FIELDS_MAX. */
int qr_batch_add_field(qr_batch *b, const qr_field *f);
static inline const qr_field *qr_event_fields(const qr_batch *b, const qr_event *e)
{
    /* a batch without any field has fields == NULL: NULL + 0 is undefined behaviour */
    return e->field_count ? b->fields + e->field_off : b->fields;
}
/* Deep-copies event `idx` of src onto the end of dst. */
int qr_batch_copy_event(qr_batch *dst, const qr_batch *src, size_t idx);

/* Binary form for the WAL (not compressed here). Format in docs/format.md, "Event batch
 * encoding": version 2 (labels and keys once per batch, hex ids as bytes); the decoder also
 * reads version 1.
 * Appends to out. QR_ELIMIT if a value is over a limit above, QR_EINVAL for a level or field
 * type out of range (nothing appended in both cases), QR_ENOMEM. */
int qr_batch_encode(const qr_batch *b, qr_buf *out);
/* Appends the decoded events to b. Untrusted input: QR_ECORRUPT with diag on any violation. */
int qr_batch_decode(const uint8_t *p, size_t len, qr_batch *b, qr_diag *d);

#endif

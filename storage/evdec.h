/* evdec — decodes incoming log lines into event batches, normalizing as DESIGN.md §2 says.
 *
 * Native NDJSON shape (one object per line):
 *   {"ts": "2025-06-15T14:23:01.123Z", "service": "payment", "level": "ERROR",
 *    "host": "ip-10-0-3-42", "msg": "...", "meta": {"trace_id": "abc", "latency_ms": 342}}
 * - ts: RFC 3339 string, or unix s/ms/µs/ns number (or numeric string) by magnitude; also
 *   `timestamp`, `@timestamp`, `time`. Missing or unparsable (or outside int64 ns) →
 *   opts->now_ns (and the event gets field `_ts_invalid=true` when a value was present but
 *   unparsable).
 * - level: any alias qr_level_parse knows, or a number 0-7 (syslog severity); also `severity`,
 *   `lvl`, `loglevel`, `log.level`. Unknown → UNKNOWN.
 * - msg: also `message`, `log`. service: also `service.name`, `app`; host: also `hostname`,
 *   `host.name`. "service.name" etc. match both a literal dotted key and the nested form
 *   {"service": {"name": ...}}.
 * - alias keys match case-insensitively ("Message", "LEVEL"). The first alias of a slot with a
 *   value of the right type (ts: string/number; level: string/int; msg, service, host:
 *   string) fills it; later aliases and wrong-typed values stay ordinary fields, so nothing
 *   sent is dropped except nulls.
 * - meta / metadata / attributes / tags (objects): their keys are field names as they are;
 *   nested objects flatten with '.', arrays are kept as their compact JSON text (string field).
 * - any other top-level key becomes a field (nested objects flattened the same way); null
 *   values are skipped; ints, floats ("1.0" is a float), bools and strings keep their types.
 * - strings: JSON escapes decoded; invalid UTF-8 replaced with U+FFFD, never rejected.
 * Plain-text lines (`--format text`): msg = the line (trailing CR/LF removed), service =
 * opts->default_service, level guessed from the first level-like word in the line that
 * stands out — [ERROR], <warn>, "error:", level=warn, an all-caps WARN, or the first word
 * after the timestamp; a lower-case word inside a sentence ("an error occurred") does not
 * count — ts from a leading timestamp when one parses (RFC 3339 with 'T' or ' ' and '.' or
 * ',' fractions, optionally in [brackets]; syslog "Jun 15 14:23:01" in the year of now), else
 * now.
 * A blank line (only whitespace) appends nothing and returns 0, in both formats.
 *
 * Errors: a bad line appends nothing and returns QR_ESYNTAX (malformed JSON or not an
 * object: diag offset and message say where and what), QR_ELIMIT (a limit in event.h, named
 * in the message: msg > 256 KiB, > 256 fields, key > 128 B, service/host > 256 B, a field
 * value > 256 KiB) or QR_ENOMEM; the batch's events, fields and `bytes` are left as they
 * were (its arena may keep the rejected line's bytes). evdec does not check
 * QR_BATCH_MAX_BYTES: callers cut batches by b->bytes. Reentrant; state lives in the
 * caller's batch. */
#ifndef QR_EVDEC_H
#define QR_EVDEC_H

#include "common/qr_err.h"
#include "common/qr_json.h"
#include "storage/event.h"

#include <stddef.h>
#include <stdint.h>

typedef struct evdec_opts {
    const char *default_service; /* when the event names none; NULL = "unknown" */
    const char *default_host;    /* NULL = "" */
    int64_t now_ns;              /* ingest time stamped on every event as ingest_ts_ns */
} evdec_opts;

int evdec_ndjson_line(const char *line, size_t len, const evdec_opts *opts, qr_batch *b,
                      qr_diag *d);
/* The same decoding for an object already parsed by qr_json (a member of a larger document,
 * e.g. an element of /v1/ingest's "logs"): its source text (obj->u.str, obj->src_len) and
 * decoded strings are copied into the batch, so the document may be freed afterwards. */
int evdec_json_object(const qr_json_val *obj, const evdec_opts *opts, qr_batch *b, qr_diag *d);
/* The same for an object that qr_json parsed with the batch's arena as the doc's arena (its
 * decoded strings already live in the batch): the object's source text is copied into the
 * batch once and the other strings point into that copy, as evdec_ndjson_line does — one
 * copy per event instead of one per string. The document may be freed afterwards. */
int evdec_json_object_same_arena(const qr_json_val *obj, const evdec_opts *opts, qr_batch *b,
                                 qr_diag *d);
int evdec_text_line(const char *line, size_t len, const evdec_opts *opts, qr_batch *b, qr_diag *d);

#endif

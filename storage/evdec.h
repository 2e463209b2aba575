/* evdec — decodes incoming log lines into event batches, normalizing as DESIGN.md §2 says.
 *
 * Native NDJSON shape (one object per line):
 *   {"ts": "2025-06-15T14:23:01.123Z", "service": "payment", "level": "ERROR",
 *    "host": "ip-10-0-3-42", "msg": "...", "meta": {"trace_id": "abc", "latency_ms": 342}}
 * - ts: RFC 3339 string, or unix s/ms/µs/ns number (or numeric string) by magnitude; also
 *   `timestamp`, `@timestamp`, `time`. Missing or unparsable → opts->now_ns (and the event
 *   gets field `_ts_invalid=true` when a value was present but unparsable).
 * - level: any alias qr_level_parse knows, or a number (syslog severity); also `severity`,
 *   `lvl`, `loglevel`. Unknown → UNKNOWN.
 * - msg: also `message`, `log`. service: also `service.name`, `app`; host: also `hostname`.
 * - meta / metadata / attributes / tags: their keys are field names as they are; nested
 *   objects flatten with '.', arrays are kept as their JSON text (string field).
 * - any other top-level key becomes a field (nested objects flattened the same way).
 * - strings: JSON escapes decoded; invalid UTF-8 replaced with U+FFFD, never rejected.
 * Plain-text lines (`--format text`): msg = the line, service = opts->default_service,
 * level guessed from the first level-like word in the line, ts from a leading timestamp
 * when one parses, else now.
 *
 * Errors: a bad line appends nothing and returns QR_ESYNTAX (malformed JSON: diag offset and
 * message say where and what) or QR_ELIMIT (a limit in event.h: which one); the batch is left
 * as it was. Reentrant; state lives in the caller's batch. */
#ifndef QR_EVDEC_H
#define QR_EVDEC_H

#include "common/qr_err.h"
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
int evdec_text_line(const char *line, size_t len, const evdec_opts *opts, qr_batch *b,
                    qr_diag *d);

#endif

/* ingest — HTTP ingest bodies into event batches: decompression and the two body formats.
 *
 * POST /v1/ingest body (docs/http.md):
 *   {"source": {"service": "payment", "host": "ip-10-0-3-42", "env": "prod", ...},
 *    "logs": [{"ts": ..., "level": ..., "msg": ..., "meta": {...}}, "a plain text line", ...]}
 * Each element of logs is decoded by storage/evdec.h exactly like a native NDJSON line (every
 * alias and normalization), or, when it is a string, like a plain text line. `source` gives
 * service and host to the logs that name none; its other keys become fields of every log that
 * does not have that field itself (nested objects flatten with '.', arrays become their JSON
 * text). An element that does not decode is rejected on its own (index + reason); the rest
 * are kept. POST /v1/ingest/ndjson: one native event per line; errors carry line numbers.
 *
 * Decoded events are handed to opts->emit in batches of about cut_bytes (the caller makes
 * them durable, e.g. db_ingest_take); the batch is reset after each emit.
 * Errors: QR_ESYNTAX (the body is not JSON; diag offset = byte position), QR_EINVAL (JSON of
 * the wrong shape: diag says what), QR_ELIMIT (more events than max_events; nothing emitted),
 * QR_ENOMEM, or emit's error (events emitted before it stay accepted: see result->accepted).
 * Reentrant: all state lives in the caller's arguments. */
#ifndef QR_INGEST_H
#define QR_INGEST_H

#include "common/qr_buf.h"
#include "common/qr_err.h"
#include "storage/event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INGEST_ERRORS_MAX 100 /* rejected events reported one by one; the rest only counted */

typedef struct ingest_error {
    uint64_t index; /* position in logs (0-based), or line number (1-based) for NDJSON */
    char reason[240];
} ingest_error;

typedef struct ingest_result {
    uint64_t accepted;      /* emitted successfully */
    uint64_t failed;        /* rejected events */
    uint64_t decoded_bytes; /* event bytes handed to emit */
    ingest_error errors[INGEST_ERRORS_MAX];
    size_t error_count;
} ingest_result;

typedef int (*ingest_emit_fn)(void *ctx, qr_batch *b, qr_diag *d);

typedef struct ingest_opts {
    int64_t now_ns;      /* ingest time stamped on every event */
    uint32_t max_events; /* 0 = unlimited */
    size_t cut_bytes;    /* emit when a batch reaches this many decoded bytes; 0 = 8 MiB */
    ingest_emit_fn emit;
    void *emit_ctx;
} ingest_opts;

/* Decompresses body per the Content-Encoding value (gzip, x-gzip, deflate, zstd, identity; ""
 * = identity) into out, stopping with QR_ELIMIT once more than max_out bytes would come out.
 * QR_EINVAL for an unsupported encoding, QR_ECORRUPT for damaged or truncated data. For
 * identity nothing is copied: *data points at body. */
int ingest_decompress(const char *encoding, size_t encoding_len, const uint8_t *body, size_t len,
                      size_t max_out, qr_buf *out, const uint8_t **data, size_t *data_len,
                      qr_diag *d);

int ingest_decode_json(const char *body, size_t len, const ingest_opts *opts, qr_batch *b,
                       ingest_result *res, qr_diag *d);
int ingest_decode_ndjson(const char *body, size_t len, const ingest_opts *opts, qr_batch *b,
                         ingest_result *res, qr_diag *d);

#endif

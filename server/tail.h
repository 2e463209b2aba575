/* tail — live tail for GET /v1/tail: compiled per-event filters, the subscriber hub fed from
 * the ingest path, and the bounded ring of recent events that makes Last-Event-ID resume
 * gap-free (docs/http.md, "GET /v1/tail").
 *
 * Filter: engine/evfilter.h — a LogQL log query (evf_compile_logql) or the service=/level=/
 * q= parameters (evf_compile_params), evaluated per event on the ingest path.
 *
 * Hub (tail_hub): every event acknowledged while the hub records gets an id from one
 * server-wide sequence (starting at the start time in µs, so ids of an earlier process are
 * always smaller). The hub records while a subscriber is connected and for resume_window_ns
 * after the last one left. tail_hub_ingest makes a batch durable (db_ingest / db_ingest_take)
 * and, once durable, publishes it under the hub's mutex: it appends the batch to the ring
 * (evicting the oldest batches past ring_bytes) and appends each matching event as SSE text
 * ("id: N\ndata: {...}\n\n") to each subscriber's pending buffer, bounded by sub_bytes: past
 * it the subscriber is marked overflowed (the server then disconnects it with a notice).
 * Subscribing with a last id replays ring events after it; when events after it are no
 * longer held (evicted, or ingested while the hub was not recording) a `gap` notice is queued
 * first. Publishing and subscribing are serialized by the mutex, so a subscriber sees every
 * matching event after its start or last id exactly once, in id order.
 *
 * Threads: tail_hub_ingest from worker threads; everything else from the loop thread (the
 * wake callback is called from workers: it must be thread-safe, e.g. uv_async_send).
 * Ownership: tail_hub_new/free; tail_hub_subscribe takes the filter (engine/evfilter.h); a
 * tail_sub lives until tail_hub_unsubscribe. Errors: QR_ENOMEM. */
#ifndef QR_TAIL_H
#define QR_TAIL_H

#include "common/qr_buf.h"
#include "common/qr_err.h"
#include "engine/evfilter.h"
#include "storage/db.h"
#include "storage/event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tail_hub tail_hub;
typedef struct tail_sub tail_sub;

/* Appends the event as the JSON object of a tail event / search log (id < 0: no "id"). */
void tail_event_json(const qr_batch *b, const qr_event *e, int64_t id, qr_buf *out);

typedef struct tail_hub_opts {
    size_t ring_bytes;        /* decoded bytes of recent events held for resume */
    size_t sub_bytes;         /* pending SSE bytes per subscriber before it is dropped */
    int64_t resume_window_ns; /* keep recording this long after the last subscriber left */
    void (*wake)(void *ctx);  /* data is pending for some subscriber (any thread) */
    void *wake_ctx;
} tail_hub_opts;

typedef struct tail_hub_stats {
    uint64_t subscribers;
    uint64_t events_published; /* events given ids */
    uint64_t events_delivered; /* matching events queued to subscribers */
    uint64_t subscribers_dropped;
    uint64_t ring_events, ring_bytes;
    uint64_t first_id, next_id; /* ids held: [first_id, next_id) */
} tail_hub_stats;

int tail_hub_new(const tail_hub_opts *opts, tail_hub **out);
void tail_hub_free(tail_hub *h);

/* Makes b durable for tenant (db_ingest_take semantics: on success b is left empty) and
 * publishes it to subscribers when the hub records. */
int tail_hub_ingest(tail_hub *h, db_t *db, size_t tenant_idx, const char *tenant, qr_batch *b,
                    qr_diag *d);

/* Registers a subscriber (takes f). With has_last, replays held events with id > last_id
 * (a `gap` notice first when some are no longer held). user is the caller's. */
tail_sub *tail_hub_subscribe(tail_hub *h, size_t tenant_idx, evf *f, bool has_last,
                             uint64_t last_id, void *user);
/* Moves the subscriber's pending SSE text to the end of out. Returns true when it overflowed
 * (events were dropped after what out holds: disconnect it). */
bool tail_sub_take(tail_sub *s, qr_buf *out, uint64_t *last_id);
void *tail_sub_user(const tail_sub *s);
void tail_hub_unsubscribe(tail_sub *s, bool dropped);
void tail_hub_get_stats(tail_hub *h, tail_hub_stats *st);

#endif

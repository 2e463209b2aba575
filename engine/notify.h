/* notify — alert notifications: JSON payload builders (webhook, Slack, PagerDuty Events v2,
 * Alertmanager v2) and an asynchronous HTTP sender (libcurl multi interface, own thread).
 *
 * Sender: notify_send copies the message into a bounded queue and returns at once; it never
 * waits for the network. A full queue drops the message (QR_ELIMIT, counted as dropped).
 * The sender thread POSTs each message with a per-request timeout; a connection error, a
 * timeout, 408, 429 or 5xx is retried with exponential backoff and jitter (base, 2×base,
 * 4×base ... capped at backoff_max_ms, ±20 %) up to max_attempts; any other status outside
 * 2xx fails at once. Each message ends with one call of the result callback (delivered or
 * failed), from the sender thread.
 *
 * Outbox: a message sent with an outbox directory is first written to it
 * (<outbox>/<seq>.msg, atomically, fsync'd) and the file is removed once delivered (renamed
 * to .failed when it finally fails). notify_outbox_load re-queues the .msg files found after a
 * restart. Delivery is at least once: a crash between the receiver's 2xx and the unlink sends
 * that message again after the restart. Outbox file format (little endian):
 *   "QNOB" u8 version=1 | uvarint+bytes ref | uvarint+bytes url | uvarint+bytes body |
 *   u32 xxh3-based checksum of everything before it.
 *
 * Ownership: notify_new/notify_free; notify_free stops the thread (in-flight requests are
 * abandoned; their outbox files stay for the next start). Thread safety: notify_send,
 * notify_stats_get and notify_outbox_load may be called from any thread; the builders are
 * reentrant. Errors: 0 or QR_E*: QR_ELIMIT (queue full), QR_EIO (outbox write), QR_ENOMEM,
 * QR_EINVAL (URL not http:// or https://). */
#ifndef QR_NOTIFY_H
#define QR_NOTIFY_H

#include "common/qr_buf.h"
#include "common/qr_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- payloads ------------------------------------------------------------------------------ */

typedef struct notify_kv {
    const char *key;
    const char *value;
} notify_kv;

/* One notification of one alert instance (rule × group). Strings are borrowed. */
typedef struct notify_alert {
    const char *rule;
    const char *state;     /* "firing" or "resolved" */
    const char *condition; /* the WHEN text, e.g. "count(*) > 100" */
    const char *query_sql; /* the rule's SELECT text */
    const char *base_url;  /* e.g. "http://127.0.0.1:7070"; NULL: no link, the SQL is sent */
    const char *source;    /* host name of this process */
    uint32_t group_count;
    const notify_kv *group; /* GROUP BY labels of the instance */
    uint32_t label_count;
    const notify_kv *labels; /* LABELS (...) */
    uint32_t annotation_count;
    const notify_kv *annotations; /* ANNOTATIONS (...) */
    bool has_value;
    double value;
    int64_t window_ns;
    int64_t eval_ts_ns;   /* when the state changed */
    int64_t starts_at_ns; /* when it started firing */
    int64_t ends_at_ns;   /* resolved: when it resolved; else 0 */
    uint32_t sample_count;
    const char *const *samples; /* up to 5 events, each one JSON object text */
} notify_alert;

/* Each appends one JSON document to out; 0 or QR_ENOMEM.
 * webhook:  {"rule","group":{},"labels":{},"annotations":{},"value","condition","state",
 *            "window","ts","starts_at","ends_at","samples":[...],"query","query_url"}
 * slack:    {"text": "...", "blocks": [section, fields, context]}
 * pagerduty:{"routing_key","event_action":"trigger"|"resolve","dedup_key":"rule/group",
 *            "payload":{"summary","source","severity","timestamp","custom_details"}}
 * alertmanager: [{"labels":{"alertname",...},"annotations":{},"startsAt","endsAt",
 *            "generatorURL"}] */
int notify_payload_webhook(const notify_alert *a, qr_buf *out);
int notify_payload_slack(const notify_alert *a, qr_buf *out);
int notify_payload_pagerduty(const notify_alert *a, const char *routing_key, qr_buf *out);
int notify_payload_alertmanager(const notify_alert *a, qr_buf *out);
/* "rule" or "rule/k=v,k=v": the instance key PagerDuty dedups on. */
void notify_dedup_key(const notify_alert *a, qr_buf *out);
/* <base>/v1/query?q=<url-encoded sql>; "" without a base. */
void notify_query_link(const char *base_url, const char *sql, qr_buf *out);
/* true for http://host... and https://host... URLs of printable ASCII without spaces. */
bool notify_url_ok(const char *url);

/* ---- sender -------------------------------------------------------------------------------- */

#define NOTIFY_DEFAULT_QUEUE_MAX 1024
#define NOTIFY_DEFAULT_TIMEOUT_MS 5000
#define NOTIFY_DEFAULT_MAX_ATTEMPTS 6
#define NOTIFY_DEFAULT_BACKOFF_BASE_MS 1000
#define NOTIFY_DEFAULT_BACKOFF_MAX_MS 60000
#define NOTIFY_MAX_IN_FLIGHT 32

typedef struct notify_opts {
    uint32_t queue_max;       /* messages queued + in flight + waiting to retry; 0 = default */
    uint32_t timeout_ms;      /* per request; 0 = default */
    uint32_t max_attempts;    /* 0 = default */
    uint32_t backoff_base_ms; /* 0 = default */
    uint32_t backoff_max_ms;  /* 0 = default */
} notify_opts;

typedef struct notify_result {
    const char *ref; /* the ref given to notify_send */
    bool delivered;
    long http_status; /* last response status, 0 when none */
    uint32_t attempts;
    const char *error; /* NULL when delivered */
} notify_result;

typedef void (*notify_result_fn)(void *ctx, const notify_result *res);

typedef struct notify_stats {
    uint64_t queued;    /* accepted by notify_send (and loaded from outboxes) */
    uint64_t sent;      /* delivered (2xx) */
    uint64_t failed;    /* gave up */
    uint64_t dropped;   /* refused: queue full */
    uint64_t retries;   /* attempts after the first */
    uint64_t depth;     /* queued + in flight + waiting now */
    uint64_t in_flight; /* requests on the wire now */
} notify_stats;

typedef struct notify notify;

/* on_result may be NULL. */
int notify_new(const notify_opts *opts, notify_result_fn on_result, void *ctx, notify **out,
               qr_diag *d);
void notify_free(notify *n);
/* Queues a POST of body (Content-Type: application/json) to url. ref (copied) is handed back
 * to the result callback. outbox_dir: persist until delivered (created if missing), or NULL. */
int notify_send(notify *n, const char *outbox_dir, const char *ref, const char *url,
                const char *body, size_t body_len, qr_diag *d);
/* Queues every <outbox_dir>/NAME.msg (oldest first); *loaded (optional) receives the count.
 * A corrupt file is renamed to .corrupt and skipped. */
int notify_outbox_load(notify *n, const char *outbox_dir, uint32_t *loaded, qr_diag *d);
void notify_stats_get(notify *n, notify_stats *out);
/* The outbox file format (above): encode appends to out (0 or QR_ENOMEM); decode checks
 * untrusted bytes (QR_ECORRUPT with diag offset) and points the parts into p. */
int notify_outbox_encode(const char *ref, const char *url, const char *body, size_t body_len,
                         qr_buf *out);
int notify_outbox_decode(const uint8_t *p, size_t len, const char **ref, size_t *ref_len,
                         const char **url, size_t *url_len, const char **body, size_t *body_len,
                         qr_diag *d);
/* Waits until nothing is queued, in flight or waiting to retry, or timeout_ms passed; returns
 * true when idle (tests and shutdown). */
bool notify_wait_idle(notify *n, uint32_t timeout_ms);

#endif

/* cq_agg — mergeable aggregate states for continuous queries (rollups and alert rules,
 * DESIGN.md §5): one state per (window, group, aggregate), updated event by event on the
 * ingest path, merged across windows (a 1 h bucket from twelve 5 min ones) and stored.
 *
 * Aggregates and the values they give, the same as the engine's raw aggregation
 * (engine/op_agg.c) over the same events:
 *   count(*) → INT; count(x) → INT (non-NULL x); sum(x) → INT while every value is an
 *   integer and the sum fits, FLOAT otherwise; avg(x) → FLOAT; min/max(x) → the value
 *   (ordered as the engine orders values: numbers numerically, strings bytewise);
 * p50/p90/p95/p99(x), quantile(x, q) → FLOAT from the engine's DDSketch (1 % relative error; the
 * same buckets, so a merged state answers exactly what one state over all the values would);
 * count_distinct(x) → INT: exact up to 1,024 values, then HyperLogLog (0.81 % standard error),
 * values hashed as the engine hashes them. sum/avg/min/max/count of no value → NULL (count → 0).
 *   Float sums may differ from the raw aggregation in the last bits (addition order).
 *
 * Ownership: cq_agg_new/cq_agg_decode allocate a state; cq_agg_free frees it (NULL is a
 * no-op). A spec is plain data (copyable). Thread safety: none per state.
 * Errors: 0 or QR_ENOMEM; cq_agg_spec_from_call QR_ESYNTAX with a positioned diag
 * ("line L, column C: ..."); cq_agg_decode QR_ECORRUPT on bytes that are not a state. */
#ifndef QR_CQ_AGG_H
#define QR_CQ_AGG_H

#include "common/qr_buf.h"
#include "common/qr_err.h"
#include "engine/engine.h"
#include "sql/query.h"
#include "storage/event.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum cq_agg_kind {
    CQ_AGG_COUNT_STAR,
    CQ_AGG_COUNT,
    CQ_AGG_SUM,
    CQ_AGG_MIN,
    CQ_AGG_MAX,
    CQ_AGG_AVG,
    CQ_AGG_QUANTILE,
    CQ_AGG_COUNT_DISTINCT,
} cq_agg_kind;

typedef struct cq_agg_spec {
    uint8_t kind;                     /* cq_agg_kind */
    double q;                         /* CQ_AGG_QUANTILE: 0..1 */
    char field[QR_KEY_MAX_BYTES + 1]; /* the argument column; "" for count(*) */
} cq_agg_spec;

typedef struct cq_agg_state cq_agg_state;

/* From a parsed aggregate call: count(*), count(x), sum/min/max/avg(x), p50/p90/p95/p99(x),
 * quantile(x, q), count_distinct(x), where x is a column name (a field, or service, host,
 * level, msg). Anything else: QR_ESYNTAX positioned at the call or its argument. text is the
 * statement the positions point into (unused today; kept for messages quoting it). */
int cq_agg_spec_from_call(const char *text, const sql_expr *call, cq_agg_spec *out, qr_diag *d);
/* The canonical text of the aggregate: "count(*)", "p99(latency_ms)", "quantile(x, 0.75)". */
void cq_agg_spec_text(const cq_agg_spec *s, char *buf, size_t cap);

cq_agg_state *cq_agg_new(const cq_agg_spec *s);
void cq_agg_free(cq_agg_state *st);
/* Adds one event (its value of the spec's column; NULL/absent adds nothing but count(*)). */
int cq_agg_add_event(const cq_agg_spec *s, cq_agg_state *st, const qr_batch *b, const qr_event *e);
/* The event's value of a column as the engine reads it from a segment (what add_event adds):
 * service, host, msg (STRING), level (LEVEL) or a field; NULL when absent. Strings point into
 * the batch. */
exec_value cq_agg_event_value(const qr_batch *b, const qr_event *e, const char *name);
/* The same for a name that is not service, host, msg or level (cq_agg_name_is_label false):
 * the event's field of that name (len bytes), NULL when absent. */
exec_value cq_agg_field_value(const qr_batch *b, const qr_event *e, const char *name, size_t len);
bool cq_agg_name_is_label(const char *name);
/* Adds one value as the engine gives it (a cell of a raw query: backfill/rebuild). */
int cq_agg_add_value(const cq_agg_spec *s, cq_agg_state *st, const exec_value *v);
/* count(*) += n (e.g. from block metadata). */
int cq_agg_add_count(const cq_agg_spec *s, cq_agg_state *st, uint64_t n);
int cq_agg_merge(const cq_agg_spec *s, cq_agg_state *into, const cq_agg_state *from);
/* Compact binary form (sparse sketches), appended to out; decode reads one state and
 * validates it (untrusted bytes). */
int cq_agg_encode(const cq_agg_spec *s, const cq_agg_state *st, qr_buf *out);
int cq_agg_decode(const cq_agg_spec *s, qr_rd *in, cq_agg_state **out, qr_diag *d);
/* The value (types above). Strings in the result point into the state. */
exec_value cq_agg_final(const cq_agg_spec *s, const cq_agg_state *st);
/* Heap bytes held by the state (for memory accounting). */
size_t cq_agg_bytes(const cq_agg_spec *s, const cq_agg_state *st);

#endif

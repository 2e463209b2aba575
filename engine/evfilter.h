/* evfilter — a filter compiled once and evaluated over one event at a time: the per-event
 * evaluator of the streaming paths (live tail, rollups, alert rules; DESIGN.md §5), which see
 * events on the ingest path rather than in blocks.
 *
 * Semantics are the engine's WHERE (docs/query.md): SQL three-valued logic (a missing field
 * is NULL and NULL never matches), levels by severity, numbers compared as numbers (a string
 * field that reads as a number too), durations ("250ms") with duration literals, ts with
 * RFC 3339 literals; IN, BETWEEN, IS [NOT] NULL, LIKE, CONTAINS, `~` (PCRE2 with JIT, the
 * engine's match limits: a match over the limit counts as no match and is counted), MATCH
 * search strings with the storage tokenizer (terms, prefixes, phrases, /regex/, field:value,
 * AND/OR/NOT), AND/OR/NOT. LogQL: stream matchers, line filters (|= != |~ !~) and label
 * filters; `| json`, `| logfmt`, `| line_format`, `| unwrap` and metric queries are refused.
 * Comparisons are between a field and a literal; anything else is refused at compile time.
 *
 * Ownership: evf_compile_* allocate *out; evf_free frees it (NULL is a no-op). A filter from
 * evf_compile_where keeps pointers into the statement's strings and search nodes: the
 * statement's arena must outlive the filter.
 * Thread safety: evf_match uses scratch inside the filter: one thread at a time per filter.
 * Errors: QR_ESYNTAX with a diag "line L, column C: ..." pointing into the query text,
 * QR_EINVAL for bad service=/level= parameters, QR_ENOMEM. */
#ifndef QR_EVFILTER_H
#define QR_EVFILTER_H

#include "common/qr_err.h"
#include "sql/query.h"
#include "storage/event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct evf evf;

/* where: a condition of a parsed statement whose positions point into text; NULL matches
 * everything. The statement's arena must outlive the filter. */
int evf_compile_where(const char *text, const sql_expr *where, evf **out, qr_diag *d);
/* A LogQL log query ({...} with line and label filters); the filter owns its parse. */
int evf_compile_logql(const char *text, size_t len, evf **out, qr_diag *d);
/* service / level: comma-separated lists (NULL or "" = any); q: a MATCH search string. */
int evf_compile_params(const char *service, const char *level, const char *q, evf **out,
                       qr_diag *d);
/* 1 match, 0 no match (NULL counts as no match). */
int evf_match(evf *f, const qr_batch *b, const qr_event *e);
void evf_free(evf *f);
/* Regex matches stopped by the match limit so far (each counted as no match). */
uint64_t evf_regex_limit_hits(const evf *f);

/* The value of a named column of an event, for aggregating: a field ("latency_ms"), or
 * service, host, msg, level (its name), ts (ns). false when absent (NULL). Numbers, booleans
 * (0/1) and ts: *num set and *is_num true; strings and levels: *str set. */
bool evf_event_value(const qr_batch *b, const qr_event *e, const char *name, size_t name_len,
                     double *num, qr_str *str, bool *is_num);

#endif

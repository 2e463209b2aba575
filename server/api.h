/* api — the query-side request bodies (POST /v1/query, /v1/search, /v1/aggregate) turned into
 * query text for exec_run, and the results of /v1/search and /v1/aggregate turned into their
 * JSON answers. Formats: docs/http.md.
 *
 * /v1/search and /v1/aggregate never paste user text into SQL unchecked: field names must be
 * identifiers ([A-Za-z_][A-Za-z0-9_.-]*, at most 128 bytes) and are written as quoted names
 * ("a""b" style), values are SQL string literals with '' doubling or numbers printed by us,
 * levels are checked with qr_level_parse and written as bare level keywords, times are
 * parsed and reprinted as RFC 3339, durations parsed and reprinted, metrics matched against a
 * fixed list of functions. Whatever the body holds, the text is one well-formed SELECT.
 *
 * Search paging is a keyset cursor of our own ("s1:<ts_ns>:<skip>:<fingerprint>"): the next
 * page asks for ts <= (desc) or >= (asc) the last row's ts and skips the rows of that ts the
 * previous pages returned; the fingerprint (xxh3 of the request without its cursor) refuses a
 * cursor replayed against a different search. Rows ingested later with a ts inside pages
 * already returned are not seen by later pages.
 *
 * Errors: QR_ESYNTAX (the body is not JSON: diag offset), QR_EINVAL (wrong shape or a bad
 * value: diag message names the member, e.g. `invalid group_by "a b": not a field name`),
 * QR_ENOMEM. Reentrant; everything lives in the caller's buffers. */
#ifndef QR_API_H
#define QR_API_H

#include "common/qr_buf.h"
#include "common/qr_err.h"
#include "engine/engine.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_SEARCH_LIMIT_DEFAULT 100
#define API_SEARCH_LIMIT_MAX 10000

typedef struct api_query {
    qr_buf text;   /* NUL-terminated query text */
    qr_buf cursor; /* NUL-terminated; empty when none */
    bool allow_partial;
    exec_format format; /* "format": json (default), ndjson, csv, table */
} api_query;

typedef struct api_search {
    qr_buf sql; /* NUL-terminated SELECT */
    uint32_t limit;
    uint64_t skip; /* rows of the first result to drop (cursor) */
    bool asc;
    uint64_t fingerprint;
    int64_t cursor_ts_ns;
    uint64_t cursor_skip;
    bool has_cursor;
} api_search;

typedef struct api_aggregate {
    qr_buf sql; /* NUL-terminated SELECT */
    bool has_interval;
    uint32_t group_count;
} api_aggregate;

void api_query_init(api_query *q);
void api_query_fini(api_query *q);
int api_query_parse(const char *body, size_t len, api_query *q, qr_diag *d);

void api_search_init(api_search *s);
void api_search_fini(api_search *s);
int api_search_build(const char *body, size_t len, api_search *s, qr_diag *d);
/* {"hits", "scanned", "took_ms", "logs": [...], "next_cursor", "partial"} for a result of the
 * api_search_build query. */
int api_search_render(const api_search *s, const exec_result *r, qr_buf *out);

void api_aggregate_init(api_aggregate *a);
void api_aggregate_fini(api_aggregate *a);
int api_aggregate_build(const char *body, size_t len, api_aggregate *a, qr_diag *d);
/* {"buckets": [{"t", <group keys>, "value"}], "hits", "scanned", "took_ms", "partial", "sql"} */
int api_aggregate_render(const api_aggregate *a, const exec_result *r, qr_buf *out);

/* true for [A-Za-z_][A-Za-z0-9_.-]* of at most 128 bytes. */
bool api_field_name_ok(const char *s, size_t len);

#endif

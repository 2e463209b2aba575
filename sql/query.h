/* query — the query language front end: text in, checked syntax tree out (and back to text).
 *
 * One lexer (sql/lexer.re, re2c) and one grammar (sql/parse.y, lemon) read two faces of one
 * language: SQL-like statements (SELECT, SHOW, EXPLAIN, CREATE ROLLUP/ALERT, ...) and LogQL-like
 * queries ({service="x"} |= "timeout", sum by (service) (rate({...}[1m]))). The first token
 * decides the face: '{' or a LogQL function name means LogQL. docs/query.md has the grammar.
 *
 * Ownership: sql_parse copies the text into the caller's arena and builds every node there;
 * the tree lives until the arena is reset or finalized. Nothing else needs freeing.
 * Threading: no shared state; any number of threads may parse with their own arenas.
 * Errors: every function returns 0 or a negative QR_E* code; user errors fill the qr_diag with
 * a message that starts with "line L, column C: " and with line, column and offset. */
#ifndef SQL_QUERY_H
#define SQL_QUERY_H

#include "common/qr_arena.h"
#include "common/qr_buf.h"
#include "common/qr_err.h"
#include "sql/ast.h"

#include <stdarg.h>

#define SQL_MAX_TEXT_BYTES (64 * 1024) /* longest query text accepted */
#define SQL_MAX_DEPTH 128              /* deepest bracket nesting, and expression tree depth */

/* Parses one statement (an optional trailing ';' is allowed) and runs the checks that need no
 * catalog: function names and arity, aggregates outside WHERE/GROUP BY, ORDER BY ordinals,
 * RFC 3339 literals compared with ts, MATCH search strings, LogQL function kinds and ranges.
 * On success *out is the statement. Errors:
 *   QR_ESYNTAX  lexical, syntax or early semantic error (diag says where and what)
 *   QR_ELIMIT   text longer than SQL_MAX_TEXT_BYTES, nesting deeper than SQL_MAX_DEPTH,
 *               or the arena's budget exhausted
 *   QR_ENOMEM   allocation failed
 * *out is untouched on failure; d may be NULL. */
int sql_parse(const char *text, size_t len, qr_arena *arena, sql_stmt **out, qr_diag *d);

/* A positioned error about a statement, as every later stage (binding, continuous-query
 * definitions, per-event filters) reports one: "line L, column C: <message>" with the diag's
 * line, column and offset set. Returns code; d may be NULL. */
int sql_diag_at(qr_diag *d, sql_pos pos, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int sql_diag_vat(qr_diag *d, sql_pos pos, int code, const char *fmt, va_list ap);

/* Appends the canonical text of stmt to out (no trailing ';' or newline). Canonical: keywords
 * in capitals, minimal parentheses, one space between tokens, durations normalized (90m → 1h30m);
 * sql_parse of the result prints the same text again. Returns 0 or QR_ENOMEM. */
int sql_print(const sql_stmt *stmt, qr_buf *out);

/* Prints one expression the way sql_print would inside a SQL statement. */
int sql_print_expr(const sql_expr *expr, qr_buf *out);

/* ---- function registry (sql/func.c) -------------------------------------------------------- */

struct sql_func {
    const char *name;
    uint8_t min_args;
    uint8_t max_args; /* SQL_FUNC_VARIADIC: no upper bound */
    bool is_aggregate;
    bool allows_star; /* count(*) */
};
#define SQL_FUNC_VARIADIC 255

/* The SQL function named name (case-insensitive), or NULL. The result is static. */
const sql_func *sql_func_lookup(const char *name, size_t len);

/* True when name (case-insensitive) is a LogQL function: a range aggregation
 * (count_over_time, rate, ...) sets *is_range, a vector aggregation (sum, topk, ...) clears it. */
bool sql_lq_func_lookup(const char *name, size_t len, bool *is_range);

#endif

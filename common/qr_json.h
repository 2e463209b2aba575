/* qr_json — a small, strict (RFC 8259), single-pass JSON parser into a flat "tape" DOM, and a
 * compact writer.
 *
 * Why our own: Debian ships no yyjson or simdjson for C, and the ingest goal (>= 1 M events/s
 * on 2 cores for parse + encode + WAL + index) leaves ~300-400 ns to parse a ~250-byte event.
 * Measured with bench/json_bench.c on qr_gen output (seed 1, 200k lines, 277 B/line), gcc -O2,
 * one core of this shared 2-vCPU Xeon VM (thread CPU time, best of 5 runs, machine busy):
 * qr_json 290-330 ns/event (840-960 MB/s); jansson 2.14 json_loadb + json_decref
 * 6.9-7.3 us/event (38-40 MB/s) — 22x slower, 20x over the whole parsing budget.
 *
 * Why a tape DOM rather than a pull/SAX API: the event decoder looks keys up and walks nested
 * objects (meta.*) in any order, and the writer needs whole subtrees; a tape gives that with
 * one growable array of fixed-size nodes that is reused across lines (no allocation per
 * document in the steady state) and no per-container child arrays to build.
 *
 * Tape layout: vals[0] is the root. Every value is one qr_json_val; a container is followed
 * by its children in document order (an object's children alternate key string, value), and
 * `skip` is the size of its subtree in nodes, so `qr_json_next(v) = v + v->skip` steps over
 * it. Scalars have skip 1. Object member order and duplicate keys are kept as written.
 *
 * Values:
 * - strings are views into the input when they need no change (no escapes, valid UTF-8);
 *   otherwise they are decoded into the doc's arena (flag QR_JSON_F_COPIED). \uXXXX escapes
 *   are decoded, surrogate pairs joined; lone surrogates and invalid UTF-8 bytes (each bad
 *   byte) become U+FFFD: strings are always valid UTF-8, never rejected for encoding;
 * - numbers written without fraction or exponent are QR_JSON_INT (int64) when they fit,
 *   everything else is QR_JSON_FLOAT (double; "1.0" stays a float, so a field's type does
 *   not flip with its value); a number too large for a double is a syntax error;
 * - containers: `len` is the element count (members for objects); `u.str` points at the
 *   opening bracket in the input and `src_len` spans to the closing one.
 * Strict: no comments, trailing commas, NaN, single quotes, leading zeros or unescaped
 * control characters; whitespace is space, tab, CR, LF; a leading UTF-8 BOM is skipped
 * (RFC 8259 §8.1 allows it). The input is ptr+len (no NUL needed) and is never read past len.
 *
 * Errors: QR_ESYNTAX with diag offset (byte offset into the input) and a message such as
 * "expected ':' after object key at offset 17"; QR_ELIMIT when the input is over max_bytes or
 * nests deeper than max_depth; QR_ENOMEM. On error the doc holds no usable value.
 *
 * Ownership: a qr_json_doc borrows the input (string views point into it) and the arena
 * (decoded strings live there until the arena is reset); the tape lives in the caller's
 * initial storage or on the heap (qr_json_doc_fini frees it). Views are valid until the next
 * parse with the same doc. Thread safety: one doc per thread; a parsed doc may be read by
 * many threads. */
#ifndef QR_JSON_H
#define QR_JSON_H

#include "common/qr_arena.h"
#include "common/qr_buf.h"
#include "common/qr_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QR_JSON_DEPTH_DEFAULT 64
#define QR_JSON_DEPTH_MAX 1024                    /* the parser recurses once per level */
#define QR_JSON_BYTES_DEFAULT (64u * 1024 * 1024) /* one document; tape offsets are 32-bit */

typedef enum qr_json_type {
    QR_JSON_NULL = 0,
    QR_JSON_FALSE = 1,
    QR_JSON_TRUE = 2,
    QR_JSON_INT = 3,
    QR_JSON_FLOAT = 4,
    QR_JSON_STRING = 5,
    QR_JSON_ARRAY = 6,
    QR_JSON_OBJECT = 7,
} qr_json_type;

#define QR_JSON_F_COPIED 1 /* string decoded into the arena (not a view into the input) */

typedef struct qr_json_val {
    uint8_t type;     /* qr_json_type */
    uint8_t flags;    /* QR_JSON_F_* */
    uint32_t len;     /* string: bytes; array: elements; object: members */
    uint32_t skip;    /* nodes in this subtree, itself included (1 for scalars) */
    uint32_t src_len; /* containers: bytes of source text, brackets included */
    union {
        const char *str; /* string bytes (not NUL-terminated); containers: source text */
        int64_t i;
        double f;
    } u;
} qr_json_val;

typedef struct qr_json_opts {
    uint32_t max_depth; /* 0 = QR_JSON_DEPTH_DEFAULT; capped at QR_JSON_DEPTH_MAX */
    size_t max_bytes;   /* 0 = QR_JSON_BYTES_DEFAULT */
} qr_json_opts;

typedef struct qr_json_doc {
    qr_json_val *vals; /* the tape; vals[0] is the root after a successful parse */
    size_t count;
    size_t cap;
    qr_json_val *heap; /* non-NULL once the tape outgrew the caller's storage */
    qr_arena *arena;   /* decoded strings */
    qr_buf scratch;    /* string decoding and long-number buffer */
} qr_json_doc;

/* Prepares a doc. `storage` (may be NULL) is caller memory for the first `storage_cap` tape
 * nodes, e.g. a stack array, so small documents never allocate; `arena` receives decoded
 * strings. Always succeeds; pair with qr_json_doc_fini. */
void qr_json_doc_init(qr_json_doc *doc, qr_arena *arena, qr_json_val *storage, size_t storage_cap);
void qr_json_doc_fini(qr_json_doc *doc);

/* Parses one JSON text (exactly one value, surrounded by optional whitespace) into doc,
 * replacing what it held. opts may be NULL. Returns 0, QR_ESYNTAX, QR_ELIMIT or QR_ENOMEM
 * (with diag filled; d may be NULL). */
int qr_json_parse(qr_json_doc *doc, const char *p, size_t len, const qr_json_opts *opts,
                  qr_diag *d);

/* Parses the one JSON value that starts at text[pos] (after optional whitespace) and stops
 * right after it, for a caller walking a larger document itself (e.g. one element of an
 * array at a time): *end gets the offset just past the value; what follows is not looked at.
 * text[0..len) is the whole input: string views point into it, diag offsets count from
 * text[0], and nothing at or past len is read. `depth` is the nesting depth of the value
 * (containers below it count from there against max_depth). Errors as qr_json_parse
 * (a value cut off by len is QR_ESYNTAX "unexpected end of input"); *end is untouched then. */
int qr_json_parse_at(qr_json_doc *doc, const char *text, size_t len, size_t pos, uint32_t depth,
                     const qr_json_opts *opts, size_t *end, qr_diag *d);

static inline const qr_json_val *qr_json_root(const qr_json_doc *doc) { return doc->vals; }
/* First child of a non-empty container (for objects: the first key). */
static inline const qr_json_val *qr_json_first(const qr_json_val *v) { return v + 1; }
/* The value after v's subtree: its next sibling when there is one. */
static inline const qr_json_val *qr_json_next(const qr_json_val *v) { return v + v->skip; }
static inline bool qr_json_is_container(const qr_json_val *v)
{
    return v->type == QR_JSON_ARRAY || v->type == QR_JSON_OBJECT;
}
/* First member value whose key equals key[0..key_len) in an object; NULL if none. */
const qr_json_val *qr_json_obj_get(const qr_json_val *obj, const char *key, size_t key_len);
/* Element idx of an array (linear walk); NULL when out of range or not an array. */
const qr_json_val *qr_json_arr_at(const qr_json_val *arr, size_t idx);

/* Appends v as compact JSON (no whitespace). Strings are escaped as JSON requires; floats
 * use the shortest form that reads back to the same double and always carry '.' or 'e', so
 * the text reparses to the same types. Returns 0 or QR_ENOMEM. */
int qr_json_write(const qr_json_val *v, qr_buf *out);
/* Appends s[0..n) as a JSON string literal with quotes; invalid UTF-8 becomes U+FFFD. */
void qr_json_write_str(qr_buf *out, const char *s, size_t n);
/* Appends a double as qr_json_write does (non-finite values as null). */
void qr_json_write_double(qr_buf *out, double v);

/* UTF-8 helpers shared with decoders of non-JSON text. */
bool qr_json_utf8_valid(const char *s, size_t n);
/* Appends s with every invalid byte replaced by U+FFFD (EF BF BD). */
void qr_json_utf8_repair(const char *s, size_t n, qr_buf *out);

#endif

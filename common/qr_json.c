/* qr_json — recursive descent over ptr+len into a tape (see qr_json.h for the layout).
 *
 * The hot loops are the string scan and whitespace skip. Strings are scanned 16 bytes at a
 * time with SSE2 for the bytes that end the fast path ('"', '\\', < 0x20, >= 0x80); a string
 * with only printable ASCII (or valid UTF-8) stays a view into the input. Anything else (an
 * escape, invalid UTF-8) re-decodes the string from its start into doc->scratch and copies the
 * result into the arena, so the common case never writes string bytes at all.
 * Numbers: up to 19 significant digits accumulate into a uint64; integers that fit int64 are
 * exact, and a float whose mantissa fits 53 bits with |exp10| <= 22 is one correctly rounded
 * multiply or divide (Clinger's fast path). Everything else goes to strtod on a NUL-terminated
 * copy (the input is not NUL-terminated). Recursion depth is bounded by max_depth. */
#include "common/qr_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

typedef struct jp {
    const char *base;
    const char *end;
    qr_json_doc *doc;
    qr_diag *d;
    int err; /* first error code */
    uint32_t max_depth;
} jp;

void qr_json_doc_init(qr_json_doc *doc, qr_arena *arena, qr_json_val *storage, size_t storage_cap)
{
    doc->vals = storage;
    doc->count = 0;
    doc->cap = storage ? storage_cap : 0;
    doc->heap = NULL;
    doc->arena = arena;
    qr_buf_init(&doc->scratch);
}

void qr_json_doc_fini(qr_json_doc *doc)
{
    if (!doc) return;
    free(doc->heap);
    qr_buf_fini(&doc->scratch);
    doc->heap = NULL;
    doc->vals = NULL;
    doc->count = doc->cap = 0;
}

/* ---- errors ---- */

static const char *jp_fail(jp *s, const char *at, int code, const char *fmt, const char *what)
{
    if (!s->err) s->err = code;
    if (s->d && s->d->code == 0) {
        long long off = (long long)(at - s->base);
        char found[32] = "";
        if (at < s->end) {
            unsigned char c = (unsigned char)*at;
            if (c >= 0x20 && c < 0x7f)
                snprintf(found, sizeof found, " (found '%c')", c);
            else
                snprintf(found, sizeof found, " (found byte 0x%02x)", c);
        }
        qr_diag_set(s->d, code, fmt, what, off, found);
        s->d->offset = off;
    }
    return NULL;
}

/* "expected X at offset N" or, at the end of the input, "unexpected end of input". */
static const char *jp_expect(jp *s, const char *at, const char *what)
{
    if (at >= s->end)
        return jp_fail(s, at, QR_ESYNTAX, "unexpected end of input (expected %s) at offset %lld%s",
                       what);
    return jp_fail(s, at, QR_ESYNTAX, "expected %s at offset %lld%s", what);
}

static const char *jp_error(jp *s, const char *at, const char *what)
{
    return jp_fail(s, at, QR_ESYNTAX, "%s at offset %lld%s", what);
}

/* ---- tape ---- */

static int tape_grow(qr_json_doc *doc)
{
    size_t cap = doc->cap ? doc->cap * 2 : 64;
    if (cap > UINT32_MAX) return QR_ENOMEM;
    qr_json_val *p;
    if (doc->heap) {
        p = realloc(doc->heap, cap * sizeof *p);
    } else {
        p = malloc(cap * sizeof *p);
        if (p && doc->count) memcpy(p, doc->vals, doc->count * sizeof *p);
    }
    if (!p) return QR_ENOMEM;
    doc->heap = doc->vals = p;
    doc->cap = cap;
    return 0;
}

/* Index of a new node, or -1 on OOM (diag filled). */
static inline __attribute__((always_inline)) int64_t tape_push(jp *s, const char *at, uint8_t type)
{
    qr_json_doc *doc = s->doc;
    if (doc->count == doc->cap && tape_grow(doc) != 0) {
        jp_fail(s, at, QR_ENOMEM, "out of memory for %s at offset %lld%s", "the JSON tape");
        return -1;
    }
    qr_json_val *v = &doc->vals[doc->count];
    v->type = type;
    v->flags = 0;
    v->len = 0;
    v->skip = 1;
    v->src_len = 0;
    return (int64_t)doc->count++;
}

/* ---- UTF-8 ---- */

/* Length (1-4) of the valid UTF-8 sequence at p, or 0 when the byte at p starts none. */
static inline size_t utf8_seq_len(const uint8_t *p, const uint8_t *end)
{
    uint8_t c = p[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    size_t left = (size_t)(end - p);
    if (c < 0xE0) return left >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c < 0xF0) {
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F; /* no UTF-16 surrogates */
        if (left < 3 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80) return 0;
        return 3;
    }
    if (c < 0xF5) {
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F; /* <= U+10FFFF */
        if (left < 4 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        return 4;
    }
    return 0;
}

static const char utf8_replacement[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

bool qr_json_utf8_valid(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s, *end = p + n;
    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t k = utf8_seq_len(p, end);
        if (!k) return false;
        p += k;
    }
    return true;
}

void qr_json_utf8_repair(const char *s, size_t n, qr_buf *out)
{
    const uint8_t *p = (const uint8_t *)s, *end = p + n;
    while (p < end) {
        const uint8_t *run = p;
        while (p < end && *p < 0x80) p++;
        for (;;) {
            if (p >= end || *p < 0x80) break;
            size_t k = utf8_seq_len(p, end);
            if (!k) break;
            p += k;
            while (p < end && *p < 0x80) p++;
        }
        qr_buf_append(out, run, (size_t)(p - run));
        if (p < end && *p >= 0x80) { /* invalid byte */
            qr_buf_append(out, utf8_replacement, 3);
            p++;
        }
    }
}

static inline size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- strings ---- */

static inline int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Four hex digits at p (p[0..4) must be in bounds); -1 if any is not hex. */
static inline int32_t hex4(const char *p)
{
    int a = hex_val((unsigned char)p[0]), b = hex_val((unsigned char)p[1]);
    int c = hex_val((unsigned char)p[2]), d = hex_val((unsigned char)p[3]);
    if ((a | b | c | d) < 0) return -1;
    return (a << 12) | (b << 8) | (c << 4) | d;
}

/* Parses a \uXXXX escape (and a following low surrogate) at q (q[0] == '\\', q[1] == 'u').
 * Writes the code point's UTF-8 to out and returns the position after the escape(s). */
static const char *string_unicode_escape(jp *s, const char *q, char *out, size_t *out_len)
{
    if (s->end - q < 6) {
        for (const char *h = q + 2; h < s->end; h++)
            if (hex_val((unsigned char)*h) < 0)
                return jp_error(s, q, "invalid \\u escape in string");
        return jp_expect(s, s->end, "four hex digits after \\u");
    }
    int32_t cp = hex4(q + 2);
    if (cp < 0) return jp_error(s, q, "invalid \\u escape in string");
    q += 6;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        int32_t lo = -1;
        if (s->end - q >= 6 && q[0] == '\\' && q[1] == 'u') lo = hex4(q + 2);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            q += 6;
        } else {
            cp = 0xFFFD; /* lone high surrogate; a bad escape after it is reported next */
        }
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        cp = 0xFFFD; /* lone low surrogate */
    }
    *out_len = utf8_encode((uint32_t)cp, out);
    return q;
}

/* Slow path: decodes the string starting after the quote at `start` into the arena. */
static const char *string_decode(jp *s, const char *start, qr_json_val *v)
{
    qr_buf *sb = &s->doc->scratch;
    sb->len = 0;
    sb->oom = false;
    const char *q = start, *end = s->end;
    for (;;) {
        const char *run = q;
        while (q < end && (unsigned char)*q >= 0x20 && (unsigned char)*q < 0x80 && *q != '"' &&
               *q != '\\')
            q++;
        qr_buf_append(sb, run, (size_t)(q - run));
        if (q >= end) return jp_expect(s, q, "'\"' to end the string");
        unsigned char c = (unsigned char)*q;
        if (c == '"') break;
        if (c == '\\') {
            if (end - q < 2) return jp_expect(s, end, "an escape character after '\\'");
            char tmp[4];
            size_t n = 1;
            switch (q[1]) {
            case '"':
                tmp[0] = '"';
                break;
            case '\\':
                tmp[0] = '\\';
                break;
            case '/':
                tmp[0] = '/';
                break;
            case 'b':
                tmp[0] = '\b';
                break;
            case 'f':
                tmp[0] = '\f';
                break;
            case 'n':
                tmp[0] = '\n';
                break;
            case 'r':
                tmp[0] = '\r';
                break;
            case 't':
                tmp[0] = '\t';
                break;
            case 'u': {
                const char *nq = string_unicode_escape(s, q, tmp, &n);
                if (!nq) return NULL;
                qr_buf_append(sb, tmp, n);
                q = nq;
                continue;
            }
            default:
                return jp_error(s, q, "invalid escape in string");
            }
            qr_buf_append(sb, tmp, n);
            q += 2;
        } else if (c < 0x20) {
            return jp_error(s, q, "unescaped control character in string");
        } else {
            size_t n = utf8_seq_len((const uint8_t *)q, (const uint8_t *)end);
            if (n) {
                qr_buf_append(sb, q, n);
                q += n;
            } else {
                qr_buf_append(sb, utf8_replacement, 3);
                q++;
            }
        }
    }
    if (!qr_buf_ok(sb))
        return jp_fail(s, q, QR_ENOMEM, "out of memory for %s at offset %lld%s", "a string");
    if (sb->len > UINT32_MAX)
        return jp_fail(s, start, QR_ELIMIT, "%s at offset %lld%s", "string longer than 4 GiB");
    char *copy = "";
    if (sb->len) {
        copy = qr_arena_alloc(s->doc->arena, sb->len);
        if (!copy)
            return jp_fail(s, q, QR_ENOMEM, "out of memory for %s at offset %lld%s", "a string");
        memcpy(copy, sb->data, sb->len);
    }
    v->u.str = copy;
    v->len = (uint32_t)sb->len;
    v->flags = QR_JSON_F_COPIED;
    return q + 1;
}

/* Bytes that end the fast scan: '"', '\\', controls, non-ASCII. */
static inline bool str_special(unsigned char c)
{
    return c < 0x20 || c >= 0x80 || c == '"' || c == '\\';
}

/* p at the opening quote. Appends a string node; returns the position after the closing
 * quote, or NULL. */
static inline __attribute__((always_inline)) const char *parse_string(jp *s, const char *p)
{
    int64_t idx = tape_push(s, p, QR_JSON_STRING);
    if (idx < 0) return NULL;
    const char *start = p + 1, *q = start, *end = s->end;
    for (;;) {
#if defined(__SSE2__)
        const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
        const __m128i space = _mm_set1_epi8(0x20);
        while (end - q >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
            /* signed compare: bytes >= 0x80 are negative, so < 0x20 catches them too */
            __m128i hit =
                _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                             _mm_cmplt_epi8(v, space));
            unsigned mask = (unsigned)_mm_movemask_epi8(hit);
            if (mask) {
                q += __builtin_ctz(mask);
                goto special;
            }
            q += 16;
        }
#endif
        while (q < end && !str_special((unsigned char)*q)) q++;
        if (q >= end) return jp_expect(s, q, "'\"' to end the string");
#if defined(__SSE2__)
    special:
#endif
        if (*q == '"') break;
        if ((unsigned char)*q >= 0x80) {
            size_t n = utf8_seq_len((const uint8_t *)q, (const uint8_t *)end);
            if (n) {
                q += n;
                continue;
            }
        }
        /* escape, control character or invalid UTF-8: decode from the start */
        return string_decode(s, start, &s->doc->vals[idx]);
    }
    size_t len = (size_t)(q - start);
    if (len > UINT32_MAX)
        return jp_fail(s, start, QR_ELIMIT, "%s at offset %lld%s", "string longer than 4 GiB");
    qr_json_val *v = &s->doc->vals[idx];
    v->u.str = start;
    v->len = (uint32_t)len;
    return q + 1;
}

/* ---- numbers ---- */

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static inline bool is_digit(char c) { return (unsigned char)(c - '0') < 10; }

static const char *parse_number(jp *s, const char *p)
{
    const char *start = p, *end = s->end;
    int64_t idx = tape_push(s, p, QR_JSON_INT);
    if (idx < 0) return NULL;
    bool neg = false, is_float = false, truncated = false;
    uint64_t m = 0;
    int sig = 0, exp10 = 0;
    if (*p == '-') {
        neg = true;
        p++;
    }
    if (p >= end || !is_digit(*p)) return jp_expect(s, p, "a digit");
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p)) return jp_error(s, start, "leading zero in number");
    } else {
        while (p < end && is_digit(*p)) {
            if (sig < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                sig++;
            } else {
                truncated = true;
                exp10++;
            }
            p++;
        }
    }
    if (p < end && *p == '.') {
        is_float = true;
        p++;
        if (p >= end || !is_digit(*p)) return jp_expect(s, p, "a digit after '.'");
        while (p < end && is_digit(*p)) {
            if (m == 0 && *p == '0') {
                exp10--;
            } else if (sig < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                sig++;
                exp10--;
            } else {
                truncated = true;
            }
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        is_float = true;
        p++;
        int esign = 1, e = 0;
        if (p < end && (*p == '+' || *p == '-')) {
            if (*p == '-') esign = -1;
            p++;
        }
        if (p >= end || !is_digit(*p)) return jp_expect(s, p, "a digit in the exponent");
        while (p < end && is_digit(*p)) {
            if (e < 100000) e = e * 10 + (*p - '0');
            p++;
        }
        exp10 += esign * e;
    }
    qr_json_val *v = &s->doc->vals[idx];
    if (!is_float && !truncated) {
        if (!neg && m <= (uint64_t)INT64_MAX) {
            v->u.i = (int64_t)m;
            return p;
        }
        if (neg && m <= (uint64_t)INT64_MAX + 1) {
            v->u.i = m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m;
            return p;
        }
    }
    v->type = QR_JSON_FLOAT;
    if (!truncated && m <= (1ULL << 53) && exp10 >= -22 && exp10 <= 22) {
        double d = (double)m;
        d = exp10 < 0 ? d / pow10_exact[-exp10] : d * pow10_exact[exp10];
        v->u.f = neg ? -d : d;
        return p;
    }
    size_t n = (size_t)(p - start);
    char tmp[64];
    char *buf = tmp;
    if (n >= sizeof tmp) {
        qr_buf *sb = &s->doc->scratch;
        sb->len = 0;
        sb->oom = false;
        qr_buf_append(sb, start, n);
        qr_buf_u8(sb, 0);
        if (!qr_buf_ok(sb))
            return jp_fail(s, start, QR_ENOMEM, "out of memory for %s at offset %lld%s",
                           "a number");
        buf = (char *)sb->data;
    } else {
        memcpy(tmp, start, n);
        tmp[n] = '\0';
    }
    double d = strtod(buf, NULL);
    if (isinf(d)) return jp_error(s, start, "number out of range");
    s->doc->vals[idx].u.f = d;
    return p;
}

/* ---- values ---- */

static inline const char *skip_ws(const char *p, const char *end)
{
    /* most separators are followed directly by a token: one compare decides */
    while (p < end && (unsigned char)*p <= ' ' &&
           (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static const char *parse_value(jp *s, const char *p, uint32_t depth);

static const char *parse_literal(jp *s, const char *p, const char *word, size_t n, uint8_t type)
{
    if ((size_t)(s->end - p) < n || memcmp(p, word, n) != 0) {
        /* a prefix of the word at the end of the input is a truncation, not a typo */
        size_t left = (size_t)(s->end - p);
        if (left < n && memcmp(p, word, left) == 0) return jp_expect(s, s->end, "a value");
        return jp_error(s, p, "invalid literal (expected true, false or null)");
    }
    if (tape_push(s, p, type) < 0) return NULL;
    return p + n;
}

static const char *parse_container(jp *s, const char *p, uint32_t depth)
{
    const bool is_obj = *p == '{';
    const char close = is_obj ? '}' : ']';
    const char *start = p, *end = s->end;
    if (depth >= s->max_depth) {
        char what[64];
        snprintf(what, sizeof what, "nesting deeper than %u levels", s->max_depth);
        return jp_fail(s, p, QR_ELIMIT, "%s at offset %lld%s", what);
    }
    int64_t idx = tape_push(s, p, is_obj ? QR_JSON_OBJECT : QR_JSON_ARRAY);
    if (idx < 0) return NULL;
    uint32_t n = 0;
    p = skip_ws(p + 1, end);
    if (p < end && *p == close) {
        p++;
    } else {
        for (;;) {
            if (is_obj) {
                if (p >= end || *p != '"') return jp_expect(s, p, "'\"' to begin an object key");
                p = parse_string(s, p);
                if (!p) return NULL;
                p = skip_ws(p, end);
                if (p >= end || *p != ':') return jp_expect(s, p, "':' after object key");
                p = skip_ws(p + 1, end);
            }
            p = parse_value(s, p, depth + 1);
            if (!p) return NULL;
            n++;
            p = skip_ws(p, end);
            if (p < end && *p == ',') {
                p = skip_ws(p + 1, end);
                continue;
            }
            if (p < end && *p == close) {
                p++;
                break;
            }
            return jp_expect(
                s, p, is_obj ? "',' or '}' after object member" : "',' or ']' after array element");
        }
    }
    qr_json_val *v = &s->doc->vals[idx];
    v->len = n;
    v->skip = (uint32_t)(s->doc->count - (size_t)idx);
    v->u.str = start;
    v->src_len = (uint32_t)(p - start);
    return p;
}

static const char *parse_value(jp *s, const char *p, uint32_t depth)
{
    if (p >= s->end) return jp_expect(s, p, "a value");
    switch (*p) {
    case '"':
        return parse_string(s, p);
    case '{':
    case '[':
        return parse_container(s, p, depth);
    case 't':
        return parse_literal(s, p, "true", 4, QR_JSON_TRUE);
    case 'f':
        return parse_literal(s, p, "false", 5, QR_JSON_FALSE);
    case 'n':
        return parse_literal(s, p, "null", 4, QR_JSON_NULL);
    default:
        if (*p == '-' || is_digit(*p)) return parse_number(s, p);
        return jp_expect(s, p, "a value");
    }
}

/* The parser over text[0, len) into doc, after the size limit and the doc's arena are checked. */
static int jp_init(jp *js, qr_json_doc *doc, const char *p, size_t len, const qr_json_opts *opts,
                   qr_diag *d)
{
    jp s;
    s.base = p;
    s.end = p + len;
    s.doc = doc;
    s.d = d;
    s.err = 0;
    s.max_depth = opts && opts->max_depth ? opts->max_depth : QR_JSON_DEPTH_DEFAULT;
    if (s.max_depth > QR_JSON_DEPTH_MAX) s.max_depth = QR_JSON_DEPTH_MAX;
    size_t max_bytes = opts && opts->max_bytes ? opts->max_bytes : QR_JSON_BYTES_DEFAULT;
    if (max_bytes > UINT32_MAX) max_bytes = UINT32_MAX;
    doc->count = 0;
    if (len > max_bytes) {
        if (d && d->code == 0) {
            qr_diag_set(d, QR_ELIMIT, "JSON text of %zu bytes is over the limit of %zu bytes", len,
                        max_bytes);
            d->offset = 0;
        }
        return QR_ELIMIT;
    }
    if (!doc->arena) return qr_diag_set(d, QR_EINVAL, "qr_json_doc has no arena");
    *js = s;
    return 0;
}

int qr_json_parse(qr_json_doc *doc, const char *p, size_t len, const qr_json_opts *opts, qr_diag *d)
{
    jp s;
    int rc = jp_init(&s, doc, p, len, opts, d);
    if (rc) return rc;
    const char *q = p;
    if (len >= 3 && memcmp(q, "\xEF\xBB\xBF", 3) == 0) q += 3;
    q = skip_ws(q, s.end);
    q = parse_value(&s, q, 0);
    if (q) {
        q = skip_ws(q, s.end);
        if (q != s.end) q = jp_expect(&s, q, "end of input after the JSON value");
    }
    if (!q) {
        doc->count = 0;
        return s.err ? s.err : QR_ESYNTAX;
    }
    return 0;
}

int qr_json_parse_at(qr_json_doc *doc, const char *text, size_t len, size_t pos, uint32_t depth,
                     const qr_json_opts *opts, size_t *end, qr_diag *d)
{
    jp s;
    int rc = jp_init(&s, doc, text, len, opts, d);
    if (rc) return rc;
    if (pos > len) pos = len;
    const char *q = parse_value(&s, skip_ws(text + pos, s.end), depth);
    if (!q) {
        doc->count = 0;
        return s.err ? s.err : QR_ESYNTAX;
    }
    *end = (size_t)(q - text);
    return 0;
}

/* ---- access ---- */

const qr_json_val *qr_json_obj_get(const qr_json_val *obj, const char *key, size_t key_len)
{
    if (obj->type != QR_JSON_OBJECT) return NULL;
    const qr_json_val *k = qr_json_first(obj);
    for (uint32_t member_idx = 0; member_idx < obj->len; member_idx++) {
        const qr_json_val *v = k + 1;
        if (k->len == key_len && memcmp(k->u.str, key, key_len) == 0) return v;
        k = qr_json_next(v);
    }
    return NULL;
}

const qr_json_val *qr_json_arr_at(const qr_json_val *arr, size_t idx)
{
    if (arr->type != QR_JSON_ARRAY || idx >= arr->len) return NULL;
    const qr_json_val *v = qr_json_first(arr);
    for (size_t elem_idx = 0; elem_idx < idx; elem_idx++) v = qr_json_next(v);
    return v;
}

/* ---- writer ---- */

void qr_json_write_str(qr_buf *out, const char *s, size_t n)
{
    static const char hexdig[] = "0123456789abcdef";
    qr_buf_u8(out, '"');
    const uint8_t *p = (const uint8_t *)s, *end = p + n;
    while (p < end) {
        const uint8_t *run = p;
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') p++;
        qr_buf_append(out, run, (size_t)(p - run));
        if (p >= end) break;
        uint8_t c = *p;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            qr_buf_append(out, esc, 2);
            p++;
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hexdig[c >> 4], hexdig[c & 15]};
            switch (c) {
            case '\n':
                qr_buf_append(out, "\\n", 2);
                break;
            case '\t':
                qr_buf_append(out, "\\t", 2);
                break;
            case '\r':
                qr_buf_append(out, "\\r", 2);
                break;
            case '\b':
                qr_buf_append(out, "\\b", 2);
                break;
            case '\f':
                qr_buf_append(out, "\\f", 2);
                break;
            default:
                qr_buf_append(out, esc, 6);
                break;
            }
            p++;
        } else {
            size_t k = utf8_seq_len(p, end);
            if (k) {
                qr_buf_append(out, p, k);
                p += k;
            } else {
                qr_buf_append(out, utf8_replacement, 3);
                p++;
            }
        }
    }
    qr_buf_u8(out, '"');
}

void qr_json_write_double(qr_buf *out, double v)
{
    if (!isfinite(v)) {
        qr_buf_append(out, "null", 4);
        return;
    }
    char tmp[40];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) break;
    }
    if (n < 0) n = 0;
    qr_buf_append(out, tmp, (size_t)n);
    if (!memchr(tmp, '.', (size_t)n) && !memchr(tmp, 'e', (size_t)n)) qr_buf_append(out, ".0", 2);
}

static void write_int(qr_buf *out, int64_t v)
{
    char tmp[24];
    char *q = tmp + sizeof tmp;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--q = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--q = '-';
    qr_buf_append(out, q, (size_t)(tmp + sizeof tmp - q));
}

static const qr_json_val *write_val(const qr_json_val *v, qr_buf *out)
{
    switch (v->type) {
    case QR_JSON_NULL:
        qr_buf_append(out, "null", 4);
        return v + 1;
    case QR_JSON_FALSE:
        qr_buf_append(out, "false", 5);
        return v + 1;
    case QR_JSON_TRUE:
        qr_buf_append(out, "true", 4);
        return v + 1;
    case QR_JSON_INT:
        write_int(out, v->u.i);
        return v + 1;
    case QR_JSON_FLOAT:
        qr_json_write_double(out, v->u.f);
        return v + 1;
    case QR_JSON_STRING:
        qr_json_write_str(out, v->u.str, v->len);
        return v + 1;
    default:
        break;
    }
    const bool is_obj = v->type == QR_JSON_OBJECT;
    qr_buf_u8(out, is_obj ? '{' : '[');
    const qr_json_val *c = v + 1;
    for (uint32_t child_idx = 0; child_idx < v->len; child_idx++) {
        if (child_idx) qr_buf_u8(out, ',');
        if (is_obj) {
            c = write_val(c, out);
            qr_buf_u8(out, ':');
        }
        c = write_val(c, out);
    }
    qr_buf_u8(out, is_obj ? '}' : ']');
    return v + v->skip;
}

int qr_json_write(const qr_json_val *v, qr_buf *out)
{
    write_val(v, out);
    return qr_buf_ok(out) ? 0 : QR_ENOMEM;
}

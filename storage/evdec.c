/* evdec — NDJSON and plain-text lines into qr_batch events (contract in evdec.h).
 *
 * NDJSON: the line is parsed with qr_json into a tape held on the stack (no allocation for
 * events up to EVDEC_TAPE_INLINE JSON values), with decoded strings going straight into the
 * batch's arena (qr_json's arena is the batch's). The line itself is copied into the arena once
 * and every string view is re-pointed into that copy: one allocation per event instead of one
 * per string (the copy also holds JSON punctuation, ~30% more arena bytes). Then one walk over
 * the top-level members: a key that names an alias (matched case-insensitively by length +
 * compare) fills ts/level/msg/service/host the first time and only with a value of the right
 * type — a second alias or a wrong-typed value stays an ordinary field, so nothing the client
 * sent is lost. meta/metadata/attributes/tags objects lose their prefix; every other object
 * flattens with '.' into a key built in a fixed buffer (QR_KEY_MAX_BYTES bounds it). Flattened
 * top-level keys "service.name", "host.name" and "log.level" (ECS shape) are aliases too.
 *
 * Text: the leading timestamp is found by shape (ISO date or syslog "Mmm dd hh:mm:ss") and
 * parsed with qr_time; the level is the first level word (see text_guess_level) that stands
 * out: bracketed, followed by ':', assigned to a level key, all upper case, or the first word
 * after the timestamp. Lower-case level words inside a sentence ("an error occurred") do not
 * count. */
#include "storage/evdec.h"

#include "common/qr_json.h"
#include "common/qr_time.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVDEC_TAPE_INLINE 192
#define EVDEC_LINE_MAX_BYTES QR_BATCH_MAX_BYTES /* one event can never exceed a batch */

typedef struct dec {
    qr_batch *b;
    const char *line; /* the input line and its copy in the batch's arena */
    const char *line_copy;
    bool foreign; /* the tape's decoded strings live outside the batch: copy them in */
    qr_event *e;
    qr_diag *d;
    bool has_ts, has_level, has_msg, has_service, has_host, ts_invalid;
    qr_buf arr; /* arrays rendered as JSON text */
    char key[QR_KEY_MAX_BYTES + 1];
} dec;

enum alias { AL_NONE, AL_TS, AL_LEVEL, AL_MSG, AL_SERVICE, AL_HOST, AL_META };

static inline char lower_ascii(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c | 0x20) : c; }

/* Compares s[0..n) case-insensitively with the lower-case word w of the same length. */
static inline bool eq_lower(const char *s, const char *w, size_t n)
{
    for (size_t pos = 0; pos < n; pos++)
        if (lower_ascii(s[pos]) != w[pos]) return false;
    return true;
}

static enum alias alias_of(const char *k, size_t n)
{
    switch (n) {
    case 2:
        return eq_lower(k, "ts", 2) ? AL_TS : AL_NONE;
    case 3:
        if (eq_lower(k, "msg", 3) || eq_lower(k, "log", 3)) return AL_MSG;
        if (eq_lower(k, "lvl", 3)) return AL_LEVEL;
        if (eq_lower(k, "app", 3)) return AL_SERVICE;
        return AL_NONE;
    case 4:
        if (eq_lower(k, "time", 4)) return AL_TS;
        if (eq_lower(k, "host", 4)) return AL_HOST;
        if (eq_lower(k, "meta", 4) || eq_lower(k, "tags", 4)) return AL_META;
        return AL_NONE;
    case 5:
        return eq_lower(k, "level", 5) ? AL_LEVEL : AL_NONE;
    case 7:
        if (eq_lower(k, "message", 7)) return AL_MSG;
        if (eq_lower(k, "service", 7)) return AL_SERVICE;
        return AL_NONE;
    case 8:
        if (eq_lower(k, "severity", 8) || eq_lower(k, "loglevel", 8)) return AL_LEVEL;
        if (eq_lower(k, "hostname", 8)) return AL_HOST;
        if (eq_lower(k, "metadata", 8)) return AL_META;
        return AL_NONE;
    case 9:
        if (eq_lower(k, "timestamp", 9)) return AL_TS;
        if (eq_lower(k, "log.level", 9)) return AL_LEVEL;
        if (eq_lower(k, "host.name", 9)) return AL_HOST;
        return AL_NONE;
    case 10:
        if (eq_lower(k, "@timestamp", 10)) return AL_TS;
        if (eq_lower(k, "attributes", 10)) return AL_META;
        return AL_NONE;
    case 12:
        return eq_lower(k, "service.name", 12) ? AL_SERVICE : AL_NONE;
    default:
        return AL_NONE;
    }
}

/* ---- levels and times ---- */

static bool level_from_str(const char *s, size_t n, uint8_t *out)
{
    /* fast path for the canonical names, then every alias qr_level_parse knows */
    if (n == 4) {
        if (eq_lower(s, "info", 4)) return *out = QR_LEVEL_INFO, true;
        if (eq_lower(s, "warn", 4)) return *out = QR_LEVEL_WARN, true;
    } else if (n == 5) {
        if (eq_lower(s, "error", 5)) return *out = QR_LEVEL_ERROR, true;
        if (eq_lower(s, "debug", 5)) return *out = QR_LEVEL_DEBUG, true;
        if (eq_lower(s, "trace", 5)) return *out = QR_LEVEL_TRACE, true;
        if (eq_lower(s, "fatal", 5)) return *out = QR_LEVEL_FATAL, true;
    }
    qr_level lv;
    if (!qr_level_parse(s, n, &lv)) return false;
    *out = (uint8_t)lv;
    return true;
}

/* Unix time by magnitude (the rule of qr_time_from_unix_int), false when out of int64 ns. */
static bool ts_from_unix_int(int64_t v, int64_t *out)
{
    uint64_t a = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    int64_t mult = a < 100000000000ULL         ? QR_NS_PER_SEC
                   : a < 100000000000000ULL    ? QR_NS_PER_MS
                   : a < 100000000000000000ULL ? QR_NS_PER_US
                                               : 1;
    return !__builtin_mul_overflow(v, mult, out);
}

static bool ts_from_unix_double(double v, int64_t *out)
{
    if (!isfinite(v)) return false;
    double a = fabs(v);
    double r = a < 1e11 ? v * 1e9 : a < 1e14 ? v * 1e6 : a < 1e17 ? v * 1e3 : v;
    if (fabs(r) >= 9.2e18) return false;
    *out = (int64_t)r;
    return true;
}

/* "1718461381", "1718461381123", "1718461381.123", optionally negative. */
static bool ts_from_numeric_str(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 40) return false;
    size_t pos = s[0] == '-' ? 1 : 0, digit_count = 0, dots = 0;
    for (size_t q = pos; q < n; q++) {
        if (s[q] >= '0' && s[q] <= '9')
            digit_count++;
        else if (s[q] == '.' && dots == 0)
            dots++;
        else
            return false;
    }
    if (digit_count == 0) return false;
    char tmp[48];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (dots) return ts_from_unix_double(strtod(tmp, NULL), out);
    if (digit_count > 18) return false;
    return ts_from_unix_int(strtoll(tmp, NULL, 10), out);
}

static inline int two_digits(const char *p)
{
    unsigned a = (unsigned)(p[0] - '0'), b = (unsigned)(p[1] - '0');
    return a < 10 && b < 10 ? (int)(a * 10 + b) : -1;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ", what most shippers send; anything else (or out of range) goes
 * to qr_time_parse_rfc3339. */
static bool ts_fast_rfc3339(const char *s, size_t n, int64_t *out)
{
    if (n != 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        s[19] != '.' || s[23] != 'Z')
        return false;
    int c = two_digits(s), y = two_digits(s + 2), mon = two_digits(s + 5), day = two_digits(s + 8);
    int hh = two_digits(s + 11), mm = two_digits(s + 14), ss = two_digits(s + 17);
    int ms1 = two_digits(s + 20), ms2 = (unsigned)(s[22] - '0') < 10 ? s[22] - '0' : -1;
    if ((c | y | mon | day | hh | mm | ss | ms1 | ms2) < 0) return false;
    int year = c * 100 + y;
    if (year < 1678 || year > 2261 || mon < 1 || mon > 12 || day < 1 || day > 31 || hh > 23 ||
        mm > 59 || ss > 60)
        return false;
    int64_t secs =
        qr_days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 + hh * 3600 + mm * 60 + ss;
    *out = secs * QR_NS_PER_SEC + (int64_t)(ms1 * 10 + ms2) * QR_NS_PER_MS;
    return true;
}

static bool ts_from_json(const qr_json_val *v, int64_t *out)
{
    switch (v->type) {
    case QR_JSON_INT:
        return ts_from_unix_int(v->u.i, out);
    case QR_JSON_FLOAT:
        return ts_from_unix_double(v->u.f, out);
    case QR_JSON_STRING:
        if (ts_fast_rfc3339(v->u.str, v->len, out)) return true;
        if (qr_time_parse_rfc3339(v->u.str, v->len, out) == 0) return true;
        return ts_from_numeric_str(v->u.str, v->len, out);
    default:
        return false;
    }
}

/* ---- building the event ---- */

static int dec_nomem(dec *x)
{
    return qr_diag_set(x->d, QR_ENOMEM, "out of memory decoding event");
}

/* A JSON string into the batch: decoded strings already live in the batch's arena, views
 * into the line are moved to the line's copy there (one copy per line instead of one
 * allocation per string). */
static inline int dec_str(dec *x, const qr_json_val *v, qr_str *out)
{
    const char *p = v->u.str;
    if (!(v->flags & QR_JSON_F_COPIED) && v->len) {
        p = x->line_copy + (p - x->line);
    } else if (x->foreign && v->len) {
        *out = qr_batch_str(x->b, p, v->len); /* counts the bytes */
        return out->len ? 0 : dec_nomem(x);
    }
    *out = qr_str_make(p, v->len);
    x->b->bytes += v->len;
    return 0;
}

static int dec_label(dec *x, const qr_json_val *v, const char *what, qr_str *out)
{
    if (v->len > QR_LABEL_MAX_BYTES)
        return qr_diag_set(x->d, QR_ELIMIT, "%s is %u bytes, over the limit of %d bytes", what,
                           v->len, QR_LABEL_MAX_BYTES);
    return dec_str(x, v, out);
}

static int dec_add_field(dec *x, qr_field *f)
{
    int rc = qr_batch_add_field(x->b, f);
    if (rc == QR_ELIMIT)
        return qr_diag_set(x->d, QR_ELIMIT, "event has more than %d fields (the limit)",
                           QR_FIELDS_MAX);
    if (rc) return dec_nomem(x);
    return 0;
}

/* Tries to use v for an alias slot; returns 1 when consumed, 0 when v should stay a field, or
 * a negative error. */
static int dec_apply_alias(dec *x, enum alias al, const qr_json_val *v)
{
    qr_event *e = x->e;
    switch (al) {
    case AL_TS:
        if (x->has_ts) return 0;
        if (v->type != QR_JSON_STRING && v->type != QR_JSON_INT && v->type != QR_JSON_FLOAT)
            return 0;
        x->has_ts = true;
        if (!ts_from_json(v, &e->ts_ns)) x->ts_invalid = true;
        return 1;
    case AL_LEVEL:
        if (x->has_level) return 0;
        if (v->type == QR_JSON_STRING) {
            if (!level_from_str(v->u.str, v->len, &e->level)) e->level = QR_LEVEL_UNKNOWN;
        } else if (v->type == QR_JSON_INT) {
            char tmp[24];
            int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v->u.i);
            if (v->u.i < 0 || v->u.i > 7 || !level_from_str(tmp, (size_t)n, &e->level))
                e->level = QR_LEVEL_UNKNOWN;
        } else {
            return 0;
        }
        x->has_level = true;
        return 1;
    case AL_MSG: {
        if (x->has_msg || v->type != QR_JSON_STRING) return 0;
        if (v->len > QR_MSG_MAX_BYTES)
            return qr_diag_set(x->d, QR_ELIMIT,
                               "msg is %u bytes, over the limit of %d bytes (256 KiB)", v->len,
                               QR_MSG_MAX_BYTES);
        x->has_msg = true;
        int rc = dec_str(x, v, &e->msg);
        return rc ? rc : 1;
    }
    case AL_SERVICE: {
        if (x->has_service || v->type != QR_JSON_STRING) return 0;
        x->has_service = true;
        int rc = dec_label(x, v, "service", &e->service);
        return rc ? rc : 1;
    }
    case AL_HOST: {
        if (x->has_host || v->type != QR_JSON_STRING) return 0;
        x->has_host = true;
        int rc = dec_label(x, v, "host", &e->host);
        return rc ? rc : 1;
    }
    default:
        return 0;
    }
}

/* One field (or a subtree) under the key x->key[0..plen) + "." + knode's text. When plen is
 * 0 the key is knode's text itself. `top` = the event's top level (aliases apply to the
 * flattened key), false inside meta. */
static int dec_flatten(dec *x, size_t plen, const qr_json_val *knode, const qr_json_val *v,
                       bool top)
{
    if (v->type == QR_JSON_NULL) return 0;
    size_t klen = plen ? plen + 1 + knode->len : knode->len;
    if (klen > QR_KEY_MAX_BYTES) {
        const char *shown = plen ? x->key : knode->u.str;
        size_t shown_len = plen ? plen : knode->len;
        return qr_diag_set(x->d, QR_ELIMIT,
                           "field key \"%.*s...\" is %zu bytes, over the limit of %d bytes",
                           (int)(shown_len < 32 ? shown_len : 32), shown, klen, QR_KEY_MAX_BYTES);
    }
    if (plen) {
        x->key[plen] = '.';
        memcpy(x->key + plen + 1, knode->u.str, knode->len);
    } else if (v->type == QR_JSON_OBJECT) {
        memcpy(x->key, knode->u.str, knode->len);
    }
    if (v->type == QR_JSON_OBJECT) {
        const qr_json_val *k = qr_json_first(v);
        for (uint32_t member_idx = 0; member_idx < v->len; member_idx++) {
            int rc = dec_flatten(x, klen, k, k + 1, top);
            if (rc) return rc;
            k = qr_json_next(k + 1);
        }
        return 0;
    }
    if (top && plen && (klen == 9 || klen == 12)) { /* service.name, host.name, log.level */
        enum alias al = alias_of(x->key, klen);
        if (al != AL_NONE && al != AL_META) {
            int rc = dec_apply_alias(x, al, v);
            if (rc) return rc < 0 ? rc : 0;
        }
    }
    qr_field f;
    memset(&f, 0, sizeof f);
    if (plen) {
        f.key = qr_batch_str(x->b, x->key, klen);
        if (klen && !f.key.len) return dec_nomem(x);
    } else {
        int rc = dec_str(x, knode, &f.key);
        if (rc) return rc;
    }
    switch (v->type) {
    case QR_JSON_TRUE:
    case QR_JSON_FALSE:
        f.type = QR_FT_BOOL;
        f.v.b = v->type == QR_JSON_TRUE;
        break;
    case QR_JSON_INT:
        f.type = QR_FT_INT;
        f.v.i = v->u.i;
        break;
    case QR_JSON_FLOAT:
        f.type = QR_FT_FLOAT;
        f.v.f = v->u.f;
        break;
    case QR_JSON_STRING: {
        if (v->len > QR_MSG_MAX_BYTES)
            return qr_diag_set(
                x->d, QR_ELIMIT, "value of field \"%.*s\" is %u bytes, over the limit of %d bytes",
                (int)(f.key.len < 64 ? f.key.len : 64), f.key.ptr, v->len, QR_MSG_MAX_BYTES);
        f.type = QR_FT_STRING;
        int rc = dec_str(x, v, &f.v.s);
        if (rc) return rc;
        break;
    }
    default: { /* array: its compact JSON text */
        x->arr.len = 0;
        if (qr_json_write(v, &x->arr) != 0) return dec_nomem(x);
        if (x->arr.len > QR_MSG_MAX_BYTES)
            return qr_diag_set(
                x->d, QR_ELIMIT, "value of field \"%.*s\" is %zu bytes, over the limit of %d bytes",
                (int)(f.key.len < 64 ? f.key.len : 64), f.key.ptr, x->arr.len, QR_MSG_MAX_BYTES);
        f.type = QR_FT_STRING;
        f.v.s = qr_batch_str(x->b, (const char *)x->arr.data, x->arr.len);
        if (x->arr.len && !f.v.s.len) return dec_nomem(x);
        break;
    }
    }
    return dec_add_field(x, &f);
}

static int dec_member(dec *x, const qr_json_val *k, const qr_json_val *v)
{
    enum alias al = alias_of(k->u.str, k->len);
    if (al == AL_META) {
        if (v->type == QR_JSON_OBJECT) {
            const qr_json_val *mk = qr_json_first(v);
            for (uint32_t member_idx = 0; member_idx < v->len; member_idx++) {
                int rc = dec_flatten(x, 0, mk, mk + 1, false);
                if (rc) return rc;
                mk = qr_json_next(mk + 1);
            }
            return 0;
        }
    } else if (al != AL_NONE) {
        int rc = dec_apply_alias(x, al, v);
        if (rc) return rc < 0 ? rc : 0;
    }
    return dec_flatten(x, 0, k, v, true);
}

static bool is_blank(const char *s, size_t n)
{
    for (size_t pos = 0; pos < n; pos++)
        if (s[pos] != ' ' && s[pos] != '\t' && s[pos] != '\r' && s[pos] != '\n') return false;
    return true;
}

static int dec_defaults(dec *x, const evdec_opts *opts)
{
    qr_event *e = x->e;
    if (!x->has_ts || x->ts_invalid) e->ts_ns = opts->now_ns;
    if (!x->has_service) {
        const char *svc = opts->default_service ? opts->default_service : "unknown";
        size_t n = strlen(svc);
        if (n > QR_LABEL_MAX_BYTES) n = QR_LABEL_MAX_BYTES;
        e->service = qr_batch_str(x->b, svc, n);
        if (n && !e->service.len) return dec_nomem(x);
    }
    if (!x->has_host && opts->default_host) {
        size_t n = strlen(opts->default_host);
        if (n > QR_LABEL_MAX_BYTES) n = QR_LABEL_MAX_BYTES;
        e->host = qr_batch_str(x->b, opts->default_host, n);
        if (n && !e->host.len) return dec_nomem(x);
    }
    if (e->msg.ptr == NULL) e->msg = qr_str_make("", 0);
    if (e->host.ptr == NULL) e->host = qr_str_make("", 0);
    if (x->ts_invalid) {
        qr_field f;
        memset(&f, 0, sizeof f);
        f.key = qr_batch_str(x->b, "_ts_invalid", 11);
        if (!f.key.len) return dec_nomem(x);
        f.type = QR_FT_BOOL;
        f.v.b = true;
        return dec_add_field(x, &f);
    }
    return 0;
}

/* Decodes one parsed object whose source text is line[0..len) into an event. */
static int dec_event(const qr_json_val *root, const char *line, size_t len, bool foreign,
                     const evdec_opts *opts, qr_batch *b, qr_diag *d)
{
    size_t bytes_before = b->bytes;
    dec x;
    memset(&x, 0, offsetof(dec, key));
    x.b = b;
    x.d = d;
    x.line = line;
    x.foreign = foreign;
    char *copy = qr_arena_alloc(&b->arena, len ? len : 1);
    if (copy) memcpy(copy, line, len);
    x.line_copy = copy;
    x.e = copy ? qr_batch_push(b) : NULL;
    if (!x.e) return qr_diag_set(d, QR_ENOMEM, "out of memory decoding event");
    x.e->ingest_ts_ns = opts->now_ns;
    x.e->level = QR_LEVEL_UNKNOWN;
    qr_buf_init(&x.arr);
    int rc = 0;
    const qr_json_val *k = qr_json_first(root);
    for (uint32_t member_idx = 0; member_idx < root->len && rc == 0; member_idx++) {
        rc = dec_member(&x, k, k + 1);
        k = qr_json_next(k + 1);
    }
    if (rc == 0) rc = dec_defaults(&x, opts);
    qr_buf_fini(&x.arr);
    if (rc) {
        qr_batch_pop(b);
        b->bytes = bytes_before;
    }
    return rc;
}

int evdec_ndjson_line(const char *line, size_t len, const evdec_opts *opts, qr_batch *b, qr_diag *d)
{
    if (is_blank(line, len)) return 0;
    qr_json_val tape[EVDEC_TAPE_INLINE];
    qr_json_doc doc;
    qr_json_doc_init(&doc, &b->arena, tape, EVDEC_TAPE_INLINE);
    qr_json_opts jopts = {QR_JSON_DEPTH_DEFAULT, EVDEC_LINE_MAX_BYTES};
    int rc = qr_json_parse(&doc, line, len, &jopts, d);
    if (rc) {
        qr_json_doc_fini(&doc);
        return rc;
    }
    const qr_json_val *root = qr_json_root(&doc);
    if (root->type != QR_JSON_OBJECT) {
        qr_json_doc_fini(&doc);
        size_t lead = 0;
        while (lead < len && (line[lead] == ' ' || line[lead] == '\t')) lead++;
        rc = qr_diag_set(d, QR_ESYNTAX, "an event must be a JSON object at offset %zu", lead);
        if (d && d->code == rc) d->offset = (int64_t)lead;
        return rc;
    }
    rc = dec_event(root, line, len, false, opts, b, d);
    qr_json_doc_fini(&doc);
    return rc;
}

int evdec_json_object(const qr_json_val *obj, const evdec_opts *opts, qr_batch *b, qr_diag *d)
{
    if (obj->type != QR_JSON_OBJECT)
        return qr_diag_set(d, QR_ESYNTAX, "an event must be a JSON object");
    if (obj->src_len > EVDEC_LINE_MAX_BYTES)
        return qr_diag_set(d, QR_ELIMIT, "event of %zu bytes is over the %d-byte limit",
                           (size_t)obj->src_len, EVDEC_LINE_MAX_BYTES);
    return dec_event(obj, obj->u.str, obj->src_len, true, opts, b, d);
}

int evdec_json_object_same_arena(const qr_json_val *obj, const evdec_opts *opts, qr_batch *b,
                                 qr_diag *d)
{
    if (obj->type != QR_JSON_OBJECT)
        return qr_diag_set(d, QR_ESYNTAX, "an event must be a JSON object");
    if (obj->src_len > EVDEC_LINE_MAX_BYTES)
        return qr_diag_set(d, QR_ELIMIT, "event of %zu bytes is over the %d-byte limit",
                           (size_t)obj->src_len, EVDEC_LINE_MAX_BYTES);
    return dec_event(obj, obj->u.str, obj->src_len, false, opts, b, d);
}

/* ---- plain text ---- */

static inline bool is_dig(char c) { return c >= '0' && c <= '9'; }
static inline bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

static int civil_year_of(int64_t ts_ns)
{
    char buf[40];
    qr_time_format(ts_ns, buf, sizeof buf, false);
    int year = 0;
    for (int pos = 0; pos < 4 && is_dig(buf[pos]); pos++) year = year * 10 + (buf[pos] - '0');
    return year;
}

static int syslog_month(const char *s)
{
    static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    for (int m = 0; m < 12; m++)
        if (eq_lower(s, months + 3 * m, 3)) return m + 1;
    return 0;
}

/* A timestamp at the start of the line (optionally in '[' ']'): RFC 3339 / ISO with ' ' or
 * 'T' and '.' or ',' fractions, or syslog "Jun 15 14:23:01" in the year of now_ns (the year
 * before when that would put it more than a day in the future). On success *after is the
 * offset just past it. */
static bool text_leading_ts(const char *s, size_t len, int64_t now_ns, int64_t *ts, size_t *after)
{
    size_t pos = (len && s[0] == '[') ? 1 : 0;
    size_t q = pos;
    if (len - pos >= 10 && is_dig(s[pos]) && is_dig(s[pos + 3]) && s[pos + 4] == '-' &&
        s[pos + 7] == '-') {
        q = pos + 10;
        if (len - q >= 4 && (s[q] == 'T' || s[q] == ' ') && is_dig(s[q + 1]) && is_dig(s[q + 2]) &&
            s[q + 3] == ':') {
            q++;
            while (q < len && (is_dig(s[q]) || s[q] == ':' || s[q] == '.' || s[q] == ',')) q++;
            if (q < len && (s[q] == 'Z' || s[q] == 'z')) {
                q++;
            } else if (len - q >= 3 && (s[q] == '+' || s[q] == '-') && is_dig(s[q + 1]) &&
                       is_dig(s[q + 2])) {
                q += 3;
                if (q < len && s[q] == ':') q++;
                if (len - q >= 2 && is_dig(s[q]) && is_dig(s[q + 1])) q += 2;
            }
        }
        if (qr_time_parse_rfc3339(s + pos, q - pos, ts) != 0) return false;
    } else if (len - pos >= 15 && is_alpha(s[pos]) && s[pos + 3] == ' ' && s[pos + 6] == ' ' &&
               s[pos + 9] == ':' && s[pos + 12] == ':') {
        int mon = syslog_month(s + pos);
        const char *t = s + pos;
        if (!mon || !(t[4] == ' ' || is_dig(t[4])) || !is_dig(t[5]) || !is_dig(t[7]) ||
            !is_dig(t[8]) || !is_dig(t[10]) || !is_dig(t[11]) || !is_dig(t[13]) || !is_dig(t[14]))
            return false;
        int day = (t[4] == ' ' ? 0 : (t[4] - '0') * 10) + (t[5] - '0');
        int hh = (t[7] - '0') * 10 + (t[8] - '0'), mm = (t[10] - '0') * 10 + (t[11] - '0');
        int ss = (t[13] - '0') * 10 + (t[14] - '0');
        if (day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60) return false;
        int year = civil_year_of(now_ns);
        int64_t secs = qr_days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 + hh * 3600 +
                       mm * 60 + ss;
        if (secs * QR_NS_PER_SEC > now_ns + 86400 * QR_NS_PER_SEC)
            secs = qr_days_from_civil(year - 1, (unsigned)mon, (unsigned)day) * 86400 + hh * 3600 +
                   mm * 60 + ss;
        *ts = secs * QR_NS_PER_SEC;
        q = pos + 15;
    } else {
        return false;
    }
    if (pos == 1 && q < len && s[q] == ']') q++;
    *after = q;
    return true;
}

/* Level words recognized in text (a subset of qr_level_parse's aliases: words that are not
 * also common English or math words). */
static bool text_level_word(const char *s, size_t n, qr_level *out)
{
    static const char *const words[] = {
        "trace",     "debug", "dbg",   "info",     "notice", "warn",  "warning", "wrn",
        "error",     "err",   "fatal", "critical", "crit",   "panic", "severe",  "emerg",
        "emergency", "t",     "d",     "i",        "w",      "e",     "f"};
    if (n > 9) return false;
    for (size_t w = 0; w < sizeof words / sizeof words[0]; w++)
        if (strlen(words[w]) == n && eq_lower(s, words[w], n)) return qr_level_parse(s, n, out);
    return false;
}

/* The first level word that stands out (see the file comment); scans the first 512 bytes. */
static uint8_t text_guess_level(const char *s, size_t len, size_t first_word)
{
    size_t scan = len < 512 ? len : 512;
    size_t pos = 0;
    while (pos < scan) {
        while (pos < scan && !is_alpha(s[pos])) pos++;
        size_t start = pos;
        while (pos < len && (is_alpha(s[pos]) || is_dig(s[pos]) || s[pos] == '_')) pos++;
        size_t n = pos - start;
        if (n == 0) break;
        qr_level lv;
        if (!text_level_word(s + start, n, &lv)) continue;
        char prev = start ? s[start - 1] : ' ', next = pos < len ? s[pos] : ' ';
        bool bracketed =
            (prev == '[' || prev == '(' || prev == '<' || prev == '{' || prev == '|') &&
            (next == ']' || next == ')' || next == '>' || next == '}' || next == '|');
        bool upper = true;
        for (size_t c = start; c < pos; c++) upper = upper && s[c] >= 'A' && s[c] <= 'Z';
        bool first = start == first_word;
        if (n == 1) {
            if (bracketed || (upper && next == ':' && first)) return (uint8_t)lv;
            continue;
        }
        bool assigned = false;
        if (prev == '=' || prev == '"') {
            size_t kend = start - 1;
            if (prev == '"' && kend && s[kend - 1] == '=') kend--;
            if (s[kend] == '=') {
                size_t kstart = kend;
                while (kstart && is_alpha(s[kstart - 1])) kstart--;
                size_t kn = kend - kstart;
                assigned = (kn == 5 && eq_lower(s + kstart, "level", 5)) ||
                           (kn == 3 && eq_lower(s + kstart, "lvl", 3)) ||
                           (kn == 8 && eq_lower(s + kstart, "severity", 8)) ||
                           (kn == 8 && eq_lower(s + kstart, "loglevel", 8));
            }
        }
        if (bracketed || next == ':' || assigned || upper || first) return (uint8_t)lv;
    }
    return QR_LEVEL_UNKNOWN;
}

int evdec_text_line(const char *line, size_t len, const evdec_opts *opts, qr_batch *b, qr_diag *d)
{
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    if (is_blank(line, len)) return 0;
    if (len > QR_MSG_MAX_BYTES)
        return qr_diag_set(d, QR_ELIMIT, "line is %zu bytes, over the msg limit of %d bytes", len,
                           QR_MSG_MAX_BYTES);
    int64_t ts_ns = opts->now_ns;
    size_t after = 0;
    if (!text_leading_ts(line, len, opts->now_ns, &ts_ns, &after)) {
        ts_ns = opts->now_ns;
        after = 0;
    }
    while (after < len && !is_alpha(line[after]) && line[after] != '[') after++;
    if (after < len && line[after] == '[') after++;
    uint8_t level = text_guess_level(line, len, after);

    size_t bytes_before = b->bytes;
    qr_event *e = qr_batch_push(b);
    if (!e) return qr_diag_set(d, QR_ENOMEM, "out of memory decoding event");
    int rc = 0;
    e->ts_ns = ts_ns;
    e->ingest_ts_ns = opts->now_ns;
    e->level = level;
    if (qr_json_utf8_valid(line, len)) {
        e->msg = qr_batch_str(b, line, len);
        if (!e->msg.len) rc = QR_ENOMEM;
    } else {
        qr_buf fixed;
        qr_buf_init(&fixed);
        qr_json_utf8_repair(line, len, &fixed);
        if (!qr_buf_ok(&fixed)) {
            rc = QR_ENOMEM;
        } else if (fixed.len > QR_MSG_MAX_BYTES) {
            rc = qr_diag_set(d, QR_ELIMIT,
                             "line is %zu bytes after replacing invalid UTF-8, over the msg "
                             "limit of %d bytes",
                             fixed.len, QR_MSG_MAX_BYTES);
        } else {
            e->msg = qr_batch_str(b, (const char *)fixed.data, fixed.len);
            if (!e->msg.len) rc = QR_ENOMEM;
        }
        qr_buf_fini(&fixed);
    }
    if (rc == 0) {
        const char *svc = opts->default_service ? opts->default_service : "unknown";
        size_t n = strlen(svc);
        if (n > QR_LABEL_MAX_BYTES) n = QR_LABEL_MAX_BYTES;
        e->service = qr_batch_str(b, svc, n);
        if (n && !e->service.len) rc = QR_ENOMEM;
        const char *host = opts->default_host ? opts->default_host : "";
        n = strlen(host);
        if (n > QR_LABEL_MAX_BYTES) n = QR_LABEL_MAX_BYTES;
        e->host = n ? qr_batch_str(b, host, n) : qr_str_make("", 0);
        if (n && !e->host.len) rc = QR_ENOMEM;
    }
    if (rc) {
        qr_batch_pop(b);
        b->bytes = bytes_before;
        if (rc == QR_ENOMEM) return qr_diag_set(d, rc, "out of memory decoding event");
    }
    return rc;
}

/* lq_extract — LogQL pipeline stages over one row: `| json`, `| logfmt` field extraction,
 * `| line_format` templates and `| unwrap` numbers.
 *
 * After `| json` or `| logfmt`, a name in a later label filter, unwrap, `by (...)` or
 * line_format template (other than a built-in column) is a BX_EXTRACT: the row's stored field
 * when it has one, else the value the parsers find in its message (the latest parser first).
 * Extraction runs lazily per row and key, so a filter on one key parses each message once for
 * it and never builds a full label set.
 *   json:   the message is a JSON object; `a_b` (or `a.b`) names the member b of object a;
 *           numbers keep their type, strings are strings, true/false booleans, arrays and
 *           objects their JSON text. A message that is not JSON has no fields.
 *   logfmt: `key=value key="quoted \"value\"" flag` pairs; values are strings (compared as
 *           numbers, durations or times next to one).
 * line_format: the template's text with each `{{.name}}` (spaces allowed inside the braces)
 * replaced by the value's text (empty when missing). Other template syntax is an error at bind
 * time. unwrap: the value as a number (int, float, or a string that parses as one; a
 * duration string like 250ms counts seconds); anything else is NULL and skipped. */
#include "common/qr_json.h"
#include "engine/exec_int.h"

#include <stdlib.h>
#include <string.h>

static exec_value json_value(blk_ctx *bc, const qr_json_val *v)
{
    exec_value out = {0};
    switch (v->type) {
    case QR_JSON_INT:
        return ev_int(EXEC_INT, v->u.i);
    case QR_JSON_FLOAT:
        out.type = EXEC_FLOAT;
        out.v.f = v->u.f;
        return out;
    case QR_JSON_TRUE:
    case QR_JSON_FALSE:
        return ev_bool(v->type == QR_JSON_TRUE);
    case QR_JSON_STRING:
        out.type = EXEC_STRING;
        out.v.s = qr_str_make(v->u.str, v->len);
        return out;
    case QR_JSON_ARRAY:
    case QR_JSON_OBJECT:
        out.type = EXEC_STRING;
        out.v.s = qr_str_make(v->u.str, v->src_len);
        return out;
    default:
        (void)bc;
        return ev_null();
    }
}

/* The member named `name` in obj, where `a_b` / `a.b` also reach into nested objects. */
static const qr_json_val *json_find(const qr_json_val *obj, const char *name, size_t len, int depth)
{
    if (obj->type != QR_JSON_OBJECT || depth > 16) return NULL;
    const qr_json_val *kv = qr_json_first(obj);
    for (uint32_t idx = 0; idx < obj->len; idx++) {
        const qr_json_val *val = qr_json_next(kv);
        if (kv->len == len && memcmp(kv->u.str, name, len) == 0) return val;
        if (kv->len < len && memcmp(kv->u.str, name, kv->len) == 0 &&
            (name[kv->len] == '_' || name[kv->len] == '.') && val->type == QR_JSON_OBJECT) {
            const qr_json_val *r = json_find(val, name + kv->len + 1, len - kv->len - 1, depth + 1);
            if (r) return r;
        }
        kv = qr_json_next(val);
    }
    return NULL;
}

static exec_value extract_json(blk_ctx *bc, qr_str msg, const char *name, size_t len)
{
    if (msg.len == 0 || msg.ptr[0] != '{') return ev_null();
    qr_json_val storage[128];
    qr_json_doc doc;
    qr_json_doc_init(&doc, &bc->q->scratch, storage, sizeof storage / sizeof storage[0]);
    exec_value out = ev_null();
    if (qr_json_parse(&doc, msg.ptr, msg.len, NULL, NULL) == 0) {
        const qr_json_val *v = json_find(qr_json_root(&doc), name, len, 0);
        if (v) out = json_value(bc, v);
        /* strings decoded into the doc's arena live in scratch; views point into msg */
    }
    qr_json_doc_fini(&doc);
    return out;
}

static exec_value extract_logfmt(blk_ctx *bc, qr_str msg, const char *name, size_t len)
{
    const char *p = msg.ptr, *end = msg.ptr + msg.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        const char *key = p;
        while (p < end && *p != '=' && *p != ' ' && *p != '\t') p++;
        size_t key_len = (size_t)(p - key);
        const char *val = p, *val_end = p;
        bool quoted = false, escaped = false;
        if (p < end && *p == '=') {
            p++;
            if (p < end && *p == '"') {
                quoted = true;
                val = ++p;
                while (p < end && *p != '"') {
                    if (*p == '\\' && p + 1 < end) {
                        escaped = true;
                        p++;
                    }
                    p++;
                }
                val_end = p;
                if (p < end) p++;
            } else {
                val = p;
                while (p < end && *p != ' ' && *p != '\t') p++;
                val_end = p;
            }
        }
        if (key_len == len && key_len && memcmp(key, name, len) == 0) {
            exec_value out = {.type = EXEC_STRING};
            size_t n = (size_t)(val_end - val);
            if (quoted && escaped) {
                char *s = qr_arena_alloc(&bc->q->scratch, n + 1);
                if (!s) return ev_null();
                size_t k = 0;
                for (size_t idx = 0; idx < n; idx++) {
                    if (val[idx] == '\\' && idx + 1 < n) idx++;
                    s[k++] = val[idx];
                }
                out.v.s = qr_str_make(s, k);
            } else {
                out.v.s = qr_str_make(val, n);
            }
            return out;
        }
        if (p == key) p++; /* a lone '=' or stray byte: move on */
    }
    return ev_null();
}

exec_value lq_extract_eval(const bx *e, blk_ctx *bc, uint32_t row)
{
    exec_value v = ev_col(bc, e->col, row);
    if (v.type != EXEC_NULL) return v;
    exec_value m = ev_col(bc, COL_MSG, row);
    if (m.type != EXEC_STRING) return ev_null();
    const qfield *f = &bc->q->fields[e->col - COL_FIELD0];
    /* e->op: the latest parser in the low nibble, the one before it in the high nibble */
    for (int k = 0; k < 2; k++) {
        int parser = (e->op >> (4 * k)) & 0xF;
        if (parser == LQ_PARSER_JSON) v = extract_json(bc, m.v.s, f->name, f->len);
        if (parser == LQ_PARSER_LOGFMT) v = extract_logfmt(bc, m.v.s, f->name, f->len);
        if (v.type != EXEC_NULL) return v;
    }
    return v;
}

exec_value lq_line_format_eval(const bx *e, blk_ctx *bc, uint32_t row)
{
    qr_buf b;
    qr_buf_init(&b);
    for (uint32_t idx = 0; idx < e->n; idx++) {
        exec_value v = ev_eval(e->items[idx], bc, row);
        if (v.type == EXEC_NULL) continue;
        qr_str s = ev_text(bc, &v);
        qr_buf_append(&b, s.ptr, s.len);
    }
    exec_value out = {.type = EXEC_STRING};
    char *s = qr_buf_ok(&b) ? qr_arena_strndup(&bc->q->scratch, (const char *)b.data, b.len) : NULL;
    out.v.s = qr_str_make(s ? s : "", s ? b.len : 0);
    if (!s) bc->err = exec_over_budget(bc->q);
    qr_buf_fini(&b);
    return out;
}

exec_value lq_number_eval(const bx *e, blk_ctx *bc, uint32_t row)
{
    exec_value v = ev_eval(e->items[0], bc, row);
    if (v.type == EXEC_INT || v.type == EXEC_FLOAT) return v;
    if (v.type == EXEC_DURATION) {
        exec_value out = {.type = EXEC_FLOAT};
        out.v.f = (double)v.v.i / 1e9;
        return out;
    }
    if (v.type != EXEC_STRING || v.v.s.len == 0 || v.v.s.len > 63) return ev_null();
    char buf[64];
    memcpy(buf, v.v.s.ptr, v.v.s.len);
    buf[v.v.s.len] = '\0';
    char *end;
    double f = strtod(buf, &end);
    exec_value out = {.type = EXEC_FLOAT};
    if (end != buf && *end == '\0') {
        out.v.f = f;
        return out;
    }
    int64_t ns;
    if (qr_duration_parse(buf, v.v.s.len, &ns) == 0) {
        out.v.f = (double)ns / 1e9;
        return out;
    }
    return ev_null();
}

/* Splits a line_format template into constant text and {{.name}} references. */
int lq_line_format_bind(exec_ctx *q, const char *tmpl, size_t len, sql_pos pos, bx **out)
{
    bx *x = bx_new(q, BX_CALL, pos);
    if (!x) return exec_over_budget(q);
    x->fn = FN_LINE_FORMAT;
    uint32_t cap = 1;
    for (size_t idx = 0; idx + 1 < len; idx++) cap += tmpl[idx] == '{' && tmpl[idx + 1] == '{';
    x->items = qr_arena_calloc(q->qa, 2 * cap + 1, sizeof *x->items);
    if (!x->items) return exec_over_budget(q);
    x->type = EXEC_STRING;
    size_t at = 0;
    while (at < len) {
        const char *open = NULL;
        for (size_t idx = at; idx + 1 < len && !open; idx++)
            if (tmpl[idx] == '{' && tmpl[idx + 1] == '{') open = tmpl + idx;
        size_t text_end = open ? (size_t)(open - tmpl) : len;
        if (text_end > at) {
            bx *c = bx_new(q, BX_CONST, pos);
            if (!c) return exec_over_budget(q);
            c->k.type = EXEC_STRING;
            c->k.v.s = qr_str_make(tmpl + at, text_end - at);
            c->type = EXEC_STRING;
            x->items[x->n++] = c;
        }
        if (!open) break;
        const char *p = open + 2, *end = tmpl + len;
        while (p < end && *p == ' ') p++;
        const char *name = p + 1;
        if (p >= end || *p != '.')
            return exec_error_at(q, pos, QR_ESYNTAX,
                                 "line_format supports only {{.field}} references");
        p = name;
        while (p < end && (*p == '_' || *p == '.' || (*p >= 'a' && *p <= 'z') ||
                           (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            p++;
        size_t name_len = (size_t)(p - name);
        while (p < end && *p == ' ') p++;
        if (name_len == 0 || p + 1 >= end || p[0] != '}' || p[1] != '}')
            return exec_error_at(q, pos, QR_ESYNTAX,
                                 "line_format supports only {{.field}} references");
        sql_expr *fe = qr_arena_calloc(q->qa, 1, sizeof *fe);
        if (!fe) return exec_over_budget(q);
        fe->kind = SQL_EXPR_FIELD;
        fe->pos = pos;
        fe->depth = 1;
        fe->u.name.s = qr_arena_strndup(q->qa, name, name_len);
        fe->u.name.len = (uint32_t)name_len;
        if (!fe->u.name.s) return exec_over_budget(q);
        int rc = bind_expr(q, fe, &x->items[x->n]);
        if (rc) return rc;
        x->cols |= x->items[x->n]->cols;
        x->n++;
        at = (size_t)(p + 2 - tmpl);
    }
    *out = x;
    return 0;
}

/* api — request bodies of the query routes → query text; results → answers (api.h). */
#include "server/api.h"

#include "common/qr_arena.h"
#include "common/qr_hash.h"
#include "common/qr_json.h"
#include "common/qr_jsonw.h"
#include "common/qr_time.h"
#include "storage/event.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared helpers ---- */

bool api_field_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > QR_KEY_MAX_BYTES) return false;
    for (size_t pos = 0; pos < len; pos++) {
        unsigned char ch = (unsigned char)s[pos];
        bool alpha = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
        bool digit = ch >= '0' && ch <= '9';
        if (pos == 0 ? !alpha : !(alpha || digit || ch == '.' || ch == '-')) return false;
    }
    return true;
}

static void sql_name(qr_buf *o, const char *s, size_t len)
{
    qr_buf_u8(o, '"');
    for (size_t pos = 0; pos < len; pos++) {
        if (s[pos] == '"') qr_buf_u8(o, '"');
        qr_buf_u8(o, (uint8_t)s[pos]);
    }
    qr_buf_u8(o, '"');
}

static void sql_string(qr_buf *o, const char *s, size_t len)
{
    qr_buf_u8(o, '\'');
    for (size_t pos = 0; pos < len; pos++) {
        if (s[pos] == '\'') qr_buf_u8(o, '\'');
        qr_buf_u8(o, (uint8_t)s[pos]);
    }
    qr_buf_u8(o, '\'');
}

static void sql_raw(qr_buf *o, const char *s) { qr_buf_append(o, s, strlen(s)); }

static void sql_fmt(qr_buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sql_fmt(qr_buf *o, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) qr_buf_append(o, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void sql_time(qr_buf *o, int64_t ns)
{
    char buf[40];
    size_t n = qr_time_format(ns, buf, sizeof buf, true);
    qr_buf_u8(o, '\'');
    qr_buf_append(o, buf, n);
    qr_buf_u8(o, '\'');
}

/* Durations as the query lexer reads them: the largest unit that divides exactly. */
static void sql_duration(qr_buf *o, int64_t ns)
{
    static const struct {
        const char *unit;
        int64_t ns;
    } units[] = {
        {"d", 86400000000000LL}, {"h", 3600000000000LL}, {"m", 60000000000LL}, {"s", 1000000000LL},
        {"ms", 1000000LL},       {"us", 1000LL},         {"ns", 1LL}};
    for (size_t idx = 0; idx < sizeof units / sizeof units[0]; idx++) {
        if (ns % units[idx].ns == 0) {
            sql_fmt(o, "%" PRId64 "%s", ns / units[idx].ns, units[idx].unit);
            return;
        }
    }
}

static bool key_is(const qr_json_val *k, const char *s)
{
    size_t n = strlen(s);
    return k->len == n && memcmp(k->u.str, s, n) == 0;
}

static int parse_body(const char *body, size_t len, qr_arena *arena, qr_json_doc *doc, qr_diag *d)
{
    qr_json_doc_init(doc, arena, NULL, 0);
    int rc = qr_json_parse(doc, body, len, NULL, d);
    if (rc) return rc;
    if (qr_json_root(doc)->type != QR_JSON_OBJECT)
        return qr_diag_set(d, QR_EINVAL, "the body must be a JSON object");
    return 0;
}

/* A time: RFC 3339 string or a unix number (s, ms, µs or ns by magnitude). */
static int json_time(const qr_json_val *v, const char *what, int64_t *out, qr_diag *d)
{
    if (v->type == QR_JSON_STRING) {
        if (qr_time_parse_rfc3339(v->u.str, v->len, out) == 0) return 0;
        return qr_diag_set(d, QR_EINVAL, "invalid %s \"%.*s\": not an RFC 3339 time", what,
                           (int)(v->len > 80 ? 80 : v->len), v->u.str);
    }
    if (v->type == QR_JSON_INT) {
        *out = qr_time_from_unix_int(v->u.i);
        return 0;
    }
    if (v->type == QR_JSON_FLOAT && isfinite(v->u.f)) {
        *out = qr_time_from_unix_number(v->u.f);
        return 0;
    }
    return qr_diag_set(d, QR_EINVAL, "invalid %s: expected an RFC 3339 string or a unix time",
                       what);
}

/* " AND ts >= 'from' AND ts < 'to'" */
static int time_range_sql(const qr_json_val *tr, qr_buf *w, bool *any, qr_diag *d)
{
    if (!tr || tr->type == QR_JSON_NULL) return 0;
    if (tr->type != QR_JSON_OBJECT)
        return qr_diag_set(d, QR_EINVAL, "time_range must be an object {\"from\", \"to\"}");
    const qr_json_val *from = qr_json_obj_get(tr, "from", 4);
    const qr_json_val *to = qr_json_obj_get(tr, "to", 2);
    int64_t ns;
    if (from && from->type != QR_JSON_NULL) {
        int rc = json_time(from, "time_range.from", &ns, d);
        if (rc) return rc;
        sql_raw(w, *any ? " AND ts >= " : "ts >= ");
        sql_time(w, ns);
        *any = true;
    }
    if (to && to->type != QR_JSON_NULL) {
        int rc = json_time(to, "time_range.to", &ns, d);
        if (rc) return rc;
        sql_raw(w, *any ? " AND ts < " : "ts < ");
        sql_time(w, ns);
        *any = true;
    }
    return 0;
}

static int filter_value(const qr_json_val *v, bool is_level, const char *key, size_t key_len,
                        qr_buf *w, qr_diag *d)
{
    if (is_level) {
        qr_level lv;
        if (v->type != QR_JSON_STRING || !qr_level_parse(v->u.str, v->len, &lv))
            return qr_diag_set(d, QR_EINVAL, "invalid filters.level value: not a level name");
        sql_raw(w, qr_level_name(lv));
        return 0;
    }
    switch (v->type) {
    case QR_JSON_STRING:
        sql_string(w, v->u.str, v->len);
        return 0;
    case QR_JSON_INT:
        sql_fmt(w, "%" PRId64, v->u.i);
        return 0;
    case QR_JSON_FLOAT: {
        char buf[40];
        snprintf(buf, sizeof buf, "%.17g", v->u.f);
        if (!strpbrk(buf, ".eEn")) strcat(buf, ".0");
        sql_raw(w, buf);
        return 0;
    }
    case QR_JSON_TRUE:
    case QR_JSON_FALSE:
        sql_raw(w, v->type == QR_JSON_TRUE ? "TRUE" : "FALSE");
        return 0;
    default:
        return qr_diag_set(d, QR_EINVAL,
                           "invalid filters.%.*s value: expected a string, number, boolean or "
                           "an array of them",
                           (int)key_len, key);
    }
}

/* filters: {"service": "a" | ["a","b"], "level": [...], "<field>": value | [values]} */
static int filters_sql(const qr_json_val *f, qr_buf *w, bool *any, qr_diag *d)
{
    if (!f || f->type == QR_JSON_NULL) return 0;
    if (f->type != QR_JSON_OBJECT) return qr_diag_set(d, QR_EINVAL, "filters must be an object");
    const qr_json_val *k = f->len ? qr_json_first(f) : NULL;
    for (uint32_t m = 0; m < f->len; m++) {
        const qr_json_val *v = qr_json_next(k);
        if (!api_field_name_ok(k->u.str, k->len))
            return qr_diag_set(d, QR_EINVAL, "invalid filters key \"%.*s\": not a field name",
                               (int)(k->len > 80 ? 80 : k->len), k->u.str);
        bool is_level = key_is(k, "level");
        if (v->type == QR_JSON_ARRAY && v->len == 0) /* matches nothing */
            return qr_diag_set(d, QR_EINVAL, "filters.%.*s is an empty list", (int)k->len,
                               k->u.str);
        if (*any) sql_raw(w, " AND ");
        *any = true;
        sql_name(w, k->u.str, k->len);
        if (v->type == QR_JSON_ARRAY) {
            sql_raw(w, " IN (");
            const qr_json_val *e = qr_json_first(v);
            for (uint32_t idx = 0; idx < v->len; idx++, e = qr_json_next(e)) {
                if (idx) sql_raw(w, ", ");
                int rc = filter_value(e, is_level, k->u.str, k->len, w, d);
                if (rc) return rc;
            }
            sql_raw(w, ")");
        } else {
            sql_raw(w, " = ");
            int rc = filter_value(v, is_level, k->u.str, k->len, w, d);
            if (rc) return rc;
        }
        k = qr_json_next(v);
    }
    return 0;
}

static void write_search_string(qr_buf *w, const qr_json_val *q, bool *any)
{
    if (*any) sql_raw(w, " AND ");
    *any = true;
    sql_raw(w, "msg MATCH ");
    sql_string(w, q->u.str, q->len);
}

/* ---- /v1/query ---- */

void api_query_init(api_query *q)
{
    memset(q, 0, sizeof *q);
    qr_buf_init(&q->text);
    qr_buf_init(&q->cursor);
    q->format = EXEC_FORMAT_JSON;
}

void api_query_fini(api_query *q)
{
    qr_buf_fini(&q->text);
    qr_buf_fini(&q->cursor);
}

int api_query_parse(const char *body, size_t len, api_query *q, qr_diag *d)
{
    qr_arena arena;
    qr_arena_init(&arena, 0, 0);
    qr_json_doc doc;
    int rc = parse_body(body, len, &arena, &doc, d);
    if (rc) goto out;
    const qr_json_val *root = qr_json_root(&doc);
    const qr_json_val *t = qr_json_obj_get(root, "query", 5);
    if (!t || t->type != QR_JSON_STRING || t->len == 0) {
        rc = qr_diag_set(d, QR_EINVAL, "\"query\" must be a non-empty string");
        goto out;
    }
    if (memchr(t->u.str, 0, t->len)) {
        rc = qr_diag_set(d, QR_EINVAL, "\"query\" must not contain NUL characters");
        goto out;
    }
    qr_buf_append(&q->text, t->u.str, t->len);
    qr_buf_u8(&q->text, 0);
    const qr_json_val *c = qr_json_obj_get(root, "cursor", 6);
    if (c && c->type == QR_JSON_STRING && c->len)
        qr_buf_append(&q->cursor, c->u.str, c->len);
    else if (c && c->type != QR_JSON_NULL && c->type != QR_JSON_STRING) {
        rc = qr_diag_set(d, QR_EINVAL, "\"cursor\" must be a string or null");
        goto out;
    }
    qr_buf_u8(&q->cursor, 0);
    const qr_json_val *p = qr_json_obj_get(root, "partial", 7);
    q->allow_partial = p && p->type == QR_JSON_TRUE;
    const qr_json_val *f = qr_json_obj_get(root, "format", 6);
    if (f && f->type != QR_JSON_NULL) {
        char name[16] = "";
        if (f->type == QR_JSON_STRING && f->len < sizeof name) memcpy(name, f->u.str, f->len);
        if (!exec_format_parse(name, &q->format)) {
            rc = qr_diag_set(d, QR_EINVAL,
                             "invalid format: expected \"json\", \"ndjson\", \"csv\" or \"table\"");
            goto out;
        }
    }
    rc = qr_buf_ok(&q->text) && qr_buf_ok(&q->cursor) ? 0 : QR_ENOMEM;
out:
    qr_json_doc_fini(&doc);
    qr_arena_fini(&arena);
    return rc;
}

/* ---- /v1/search ---- */

void api_search_init(api_search *s)
{
    memset(s, 0, sizeof *s);
    qr_buf_init(&s->sql);
}

void api_search_fini(api_search *s) { qr_buf_fini(&s->sql); }

static int search_cursor_parse(const qr_json_val *c, api_search *s, qr_diag *d)
{
    char text[96];
    if (c->type != QR_JSON_STRING || c->len >= sizeof text) goto bad;
    memcpy(text, c->u.str, c->len);
    text[c->len] = 0;
    long long ts;
    unsigned long long skip, fp;
    int used = 0;
    if (sscanf(text, "s1:%lld:%llu:%llx%n", &ts, &skip, &fp, &used) != 3 || (size_t)used != c->len)
        goto bad;
    if (fp != s->fingerprint)
        return qr_diag_set(d, QR_EINVAL, "invalid cursor: it belongs to a different search");
    s->cursor_ts_ns = ts;
    s->cursor_skip = skip;
    s->has_cursor = true;
    return 0;
bad:
    return qr_diag_set(d, QR_EINVAL, "invalid cursor: not a next_cursor of /v1/search");
}

int api_search_build(const char *body, size_t len, api_search *s, qr_diag *d)
{
    qr_arena arena;
    qr_arena_init(&arena, 0, 0);
    qr_json_doc doc;
    int rc = parse_body(body, len, &arena, &doc, d);
    if (rc) goto out;
    const qr_json_val *root = qr_json_root(&doc);
    /* the fingerprint covers every member but the cursor */
    uint64_t fp = 0x51a7c0de;
    const qr_json_val *cursor = NULL;
    const qr_json_val *k = root->len ? qr_json_first(root) : NULL;
    for (uint32_t m = 0; m < root->len; m++) {
        const qr_json_val *v = qr_json_next(k);
        if (key_is(k, "cursor")) {
            cursor = v;
        } else {
            fp = qr_hash64_seed(k->u.str, k->len, fp);
            if (qr_json_is_container(v))
                fp = qr_hash64_seed(v->u.str, v->src_len, fp);
            else if (v->type == QR_JSON_STRING)
                fp = qr_hash64_seed(v->u.str, v->len, fp ^ 1);
            else if (v->type == QR_JSON_INT)
                fp = qr_hash64_seed(&v->u.i, sizeof v->u.i, fp ^ 3);
            else if (v->type == QR_JSON_FLOAT)
                fp = qr_hash64_seed(&v->u.f, sizeof v->u.f, fp ^ 4);
            else
                fp = qr_hash64_seed(&v->type, 1, fp ^ 5);
        }
        if (!key_is(k, "cursor") && !key_is(k, "query") && !key_is(k, "filters") &&
            !key_is(k, "time_range") && !key_is(k, "sort") && !key_is(k, "limit")) {
            rc = qr_diag_set(d, QR_EINVAL,
                             "unknown member \"%.*s\" (query, filters, time_range, sort, limit, "
                             "cursor)",
                             (int)(k->len > 60 ? 60 : k->len), k->u.str);
            goto out;
        }
        k = qr_json_next(v);
    }
    s->fingerprint = fp;
    const qr_json_val *q = qr_json_obj_get(root, "query", 5);
    if (q && q->type != QR_JSON_STRING && q->type != QR_JSON_NULL) {
        rc = qr_diag_set(d, QR_EINVAL, "\"query\" must be a search string");
        goto out;
    }
    const qr_json_val *sort = qr_json_obj_get(root, "sort", 4);
    s->asc = false;
    if (sort && sort->type != QR_JSON_NULL) {
        if (sort->type == QR_JSON_STRING && sort->len == 3 && !memcmp(sort->u.str, "asc", 3))
            s->asc = true;
        else if (!(sort->type == QR_JSON_STRING && sort->len == 4 &&
                   !memcmp(sort->u.str, "desc", 4))) {
            rc = qr_diag_set(d, QR_EINVAL, "invalid sort: expected \"desc\" or \"asc\"");
            goto out;
        }
    }
    const qr_json_val *lim = qr_json_obj_get(root, "limit", 5);
    s->limit = API_SEARCH_LIMIT_DEFAULT;
    if (lim && lim->type != QR_JSON_NULL) {
        if (lim->type != QR_JSON_INT || lim->u.i < 1 || lim->u.i > API_SEARCH_LIMIT_MAX) {
            rc = qr_diag_set(d, QR_EINVAL, "invalid limit: expected an integer 1..%d",
                             API_SEARCH_LIMIT_MAX);
            goto out;
        }
        s->limit = (uint32_t)lim->u.i;
    }
    if (cursor && cursor->type != QR_JSON_NULL) {
        rc = search_cursor_parse(cursor, s, d);
        if (rc) goto out;
    }
    qr_buf *w = &s->sql;
    sql_raw(w, "SELECT * FROM logs");
    qr_buf where;
    qr_buf_init(&where);
    bool any = false;
    if (q && q->type == QR_JSON_STRING && q->len) {
        if (memchr(q->u.str, 0, q->len)) {
            qr_buf_fini(&where);
            rc = qr_diag_set(d, QR_EINVAL, "\"query\" must not contain NUL characters");
            goto out;
        }
        write_search_string(&where, q, &any);
    }
    rc = filters_sql(qr_json_obj_get(root, "filters", 7), &where, &any, d);
    if (!rc) rc = time_range_sql(qr_json_obj_get(root, "time_range", 10), &where, &any, d);
    if (!rc && s->has_cursor) {
        sql_raw(&where, any ? " AND ts " : "ts ");
        sql_raw(&where, s->asc ? ">= " : "<= ");
        sql_time(&where, s->cursor_ts_ns);
        any = true;
    }
    if (rc) {
        qr_buf_fini(&where);
        goto out;
    }
    if (any) {
        sql_raw(w, " WHERE ");
        qr_buf_append(w, where.data, where.len);
    }
    qr_buf_fini(&where);
    s->skip = s->has_cursor ? s->cursor_skip : 0;
    sql_fmt(w, " ORDER BY ts %s LIMIT %llu", s->asc ? "ASC" : "DESC",
            (unsigned long long)(s->limit + s->skip + 1));
    qr_buf_u8(w, 0);
    rc = qr_buf_ok(w) ? 0 : QR_ENOMEM;
out:
    qr_json_doc_fini(&doc);
    qr_arena_fini(&arena);
    return rc;
}


static int col_find(const exec_result *r, const char *name)
{
    for (uint32_t c = 0; c < r->col_count; c++)
        if (strcmp(r->col_names[c], name) == 0) return (int)c;
    return -1;
}

static void took_json(qr_buf *out, double ms)
{
    qr_jsonw_double(out, (double)(int64_t)(ms * 1000) / 1000);
}

int api_search_render(const api_search *s, const exec_result *r, qr_buf *out)
{
    int c_ts = col_find(r, "ts"), c_ing = col_find(r, "ingest_ts");
    static const char *const builtin[] = {"service", "level", "host", "msg"};
    int c_b[4];
    for (int b = 0; b < 4; b++) c_b[b] = col_find(r, builtin[b]);
    uint64_t first = s->skip < r->row_count ? s->skip : r->row_count;
    uint64_t end = r->row_count;
    bool more = end - first > s->limit;
    if (more) end = first + s->limit;
    qr_jsonw_raw(out, "{\"hits\":");
    qr_jsonw_uint(out, r->hits);
    qr_jsonw_raw(out, ",\"scanned\":");
    qr_jsonw_uint(out, r->scanned);
    qr_jsonw_raw(out, ",\"took_ms\":");
    took_json(out, r->took_ms);
    qr_jsonw_raw(out, ",\"logs\":[");
    for (uint64_t row = first; row < end; row++) {
        const exec_value *cells = r->cells + row * r->col_count;
        if (row > first) qr_jsonw_raw(out, ",");
        qr_jsonw_raw(out, "{\"ts\":");
        if (c_ts >= 0)
            exec_value_json(&cells[c_ts], out);
        else
            qr_jsonw_raw(out, "null");
        for (int b = 0; b < 4; b++) {
            qr_jsonw_raw(out, ",\"");
            qr_jsonw_raw(out, builtin[b]);
            qr_jsonw_raw(out, "\":");
            if (c_b[b] >= 0)
                exec_value_json(&cells[c_b[b]], out);
            else
                qr_jsonw_raw(out, "null");
        }
        qr_jsonw_raw(out, ",\"meta\":{");
        bool first_field = true;
        for (uint32_t c = 0; c < r->col_count; c++) {
            if ((int)c == c_ts || (int)c == c_ing || (int)c == c_b[0] || (int)c == c_b[1] ||
                (int)c == c_b[2] || (int)c == c_b[3] || cells[c].type == EXEC_NULL)
                continue;
            if (!first_field) qr_jsonw_raw(out, ",");
            first_field = false;
            qr_jsonw_cstr(out, r->col_names[c]);
            qr_jsonw_raw(out, ":");
            exec_value_json(&cells[c], out);
        }
        qr_jsonw_raw(out, "}}");
    }
    qr_jsonw_raw(out, "],\"next_cursor\":");
    if (more && end > first && c_ts >= 0) {
        const exec_value *last = &r->cells[(end - 1) * r->col_count + c_ts];
        int64_t ts = last->v.i;
        uint64_t same = 0;
        for (uint64_t row = end; row-- > 0;) { /* rows of that ts in this and earlier pages */
            const exec_value *v = &r->cells[row * r->col_count + c_ts];
            if (v->type != last->type || v->v.i != ts) break;
            same++;
        }
        char cur[96];
        snprintf(cur, sizeof cur, "s1:%lld:%llu:%llx", (long long)ts, (unsigned long long)same,
                 (unsigned long long)s->fingerprint);
        qr_jsonw_cstr(out, cur);
    } else {
        qr_jsonw_raw(out, "null");
    }
    qr_jsonw_raw(out, ",\"partial\":");
    qr_jsonw_raw(out, r->partial ? "true" : "false");
    if (r->partial) {
        qr_jsonw_raw(out, ",\"partial_reason\":");
        qr_jsonw_cstr(out, r->partial_reason ? r->partial_reason : "");
    }
    qr_jsonw_raw(out, "}\n");
    return qr_buf_ok(out) ? 0 : QR_ENOMEM;
}

/* ---- /v1/aggregate ---- */

void api_aggregate_init(api_aggregate *a)
{
    memset(a, 0, sizeof *a);
    qr_buf_init(&a->sql);
}

void api_aggregate_fini(api_aggregate *a) { qr_buf_fini(&a->sql); }

/* "count" | "rate" | "<fn>(<field>)" with fn one of AGG_FUNCS. */
static int metric_sql(const qr_json_val *m, qr_buf *w, qr_diag *d)
{
    static const char *const funcs[] = {"sum", "avg", "min", "max",   "p50",
                                        "p90", "p95", "p99", "count", "count_distinct"};
    if (!m || m->type == QR_JSON_NULL) {
        sql_raw(w, "count(*)");
        return 0;
    }
    char text[200];
    if (m->type != QR_JSON_STRING || m->len == 0 || m->len >= sizeof text) goto bad;
    memcpy(text, m->u.str, m->len);
    text[m->len] = 0;
    if (!strcmp(text, "count") || !strcmp(text, "count(*)")) {
        sql_raw(w, "count(*)");
        return 0;
    }
    char *open = strchr(text, '(');
    size_t n = strlen(text);
    if (!open || text[n - 1] != ')') goto bad;
    *open = 0;
    text[n - 1] = 0;
    const char *arg = open + 1;
    while (*arg == ' ') arg++;
    size_t arg_len = strlen(arg);
    while (arg_len && arg[arg_len - 1] == ' ') arg_len--;
    bool fn_ok = false;
    for (size_t idx = 0; idx < sizeof funcs / sizeof funcs[0]; idx++)
        if (!strcmp(text, funcs[idx])) fn_ok = true;
    if (!fn_ok || !api_field_name_ok(arg, arg_len)) goto bad;
    sql_raw(w, text);
    sql_raw(w, "(");
    sql_name(w, arg, arg_len);
    sql_raw(w, ")");
    return 0;
bad:
    return qr_diag_set(d, QR_EINVAL,
                       "invalid metric \"%.*s\": expected \"count\" or FUNC(field) with FUNC one "
                       "of sum, avg, min, max, p50, p90, p95, p99, count, count_distinct",
                       (int)(m && m->type == QR_JSON_STRING ? (m->len > 80 ? 80 : m->len) : 0),
                       m && m->type == QR_JSON_STRING ? m->u.str : "");
}

int api_aggregate_build(const char *body, size_t len, api_aggregate *a, qr_diag *d)
{
    qr_arena arena;
    qr_arena_init(&arena, 0, 0);
    qr_json_doc doc;
    qr_buf where;
    qr_buf_init(&where);
    int rc = parse_body(body, len, &arena, &doc, d);
    if (rc) goto out;
    const qr_json_val *root = qr_json_root(&doc);
    const qr_json_val *k = root->len ? qr_json_first(root) : NULL;
    for (uint32_t m = 0; m < root->len; m++) {
        const qr_json_val *v = qr_json_next(k);
        if (!key_is(k, "query") && !key_is(k, "filters") && !key_is(k, "time_range") &&
            !key_is(k, "group_by") && !key_is(k, "interval") && !key_is(k, "metric")) {
            rc = qr_diag_set(d, QR_EINVAL,
                             "unknown member \"%.*s\" (query, filters, time_range, group_by, "
                             "interval, metric)",
                             (int)(k->len > 60 ? 60 : k->len), k->u.str);
            goto out;
        }
        k = qr_json_next(v);
    }
    qr_buf *w = &a->sql;
    sql_raw(w, "SELECT ");
    const qr_json_val *iv = qr_json_obj_get(root, "interval", 8);
    if (iv && iv->type != QR_JSON_NULL) {
        int64_t ns = 0;
        if (iv->type != QR_JSON_STRING || qr_duration_parse(iv->u.str, iv->len, &ns) || ns <= 0) {
            rc = qr_diag_set(d, QR_EINVAL,
                             "invalid interval: expected a positive duration like \"5m\"");
            goto out;
        }
        sql_raw(w, "bucket(ts, ");
        sql_duration(w, ns);
        sql_raw(w, ") AS t, ");
        a->has_interval = true;
    }
    const qr_json_val *gb = qr_json_obj_get(root, "group_by", 8);
    if (gb && gb->type != QR_JSON_NULL) {
        if (gb->type != QR_JSON_ARRAY) {
            rc = qr_diag_set(d, QR_EINVAL, "group_by must be an array of field names");
            goto out;
        }
        const qr_json_val *e = qr_json_first(gb);
        for (uint32_t idx = 0; idx < gb->len; idx++, e = qr_json_next(e)) {
            if (e->type != QR_JSON_STRING || !api_field_name_ok(e->u.str, e->len) ||
                (e->len == 1 && e->u.str[0] == 't') ||
                (e->len == 5 && !memcmp(e->u.str, "value", 5)) ||
                (e->len == 2 && !memcmp(e->u.str, "ts", 2))) {
                rc = qr_diag_set(d, QR_EINVAL, "invalid group_by \"%.*s\": not a field name",
                                 e->type == QR_JSON_STRING ? (int)(e->len > 80 ? 80 : e->len) : 0,
                                 e->type == QR_JSON_STRING ? e->u.str : "");
                goto out;
            }
            sql_name(w, e->u.str, e->len);
            sql_raw(w, ", ");
        }
        a->group_count = gb->len;
    }
    rc = metric_sql(qr_json_obj_get(root, "metric", 6), w, d);
    if (rc) goto out;
    sql_raw(w, " AS value FROM logs");
    bool any = false;
    const qr_json_val *q = qr_json_obj_get(root, "query", 5);
    if (q && q->type == QR_JSON_STRING && q->len) {
        if (memchr(q->u.str, 0, q->len)) {
            rc = qr_diag_set(d, QR_EINVAL, "\"query\" must not contain NUL characters");
            goto out;
        }
        write_search_string(&where, q, &any);
    } else if (q && q->type != QR_JSON_NULL && q->type != QR_JSON_STRING) {
        rc = qr_diag_set(d, QR_EINVAL, "\"query\" must be a search string");
        goto out;
    }
    rc = filters_sql(qr_json_obj_get(root, "filters", 7), &where, &any, d);
    if (!rc) rc = time_range_sql(qr_json_obj_get(root, "time_range", 10), &where, &any, d);
    if (rc) goto out;
    if (any) {
        sql_raw(w, " WHERE ");
        qr_buf_append(w, where.data, where.len);
    }
    uint32_t keys = a->group_count + (a->has_interval ? 1 : 0);
    if (keys) {
        sql_raw(w, " GROUP BY ");
        for (uint32_t idx = 0; idx < keys; idx++) sql_fmt(w, idx ? ", %u" : "%u", idx + 1);
        sql_raw(w, " ORDER BY ");
        for (uint32_t idx = 0; idx < keys; idx++) sql_fmt(w, idx ? ", %u" : "%u", idx + 1);
    }
    qr_buf_u8(w, 0);
    rc = qr_buf_ok(w) ? 0 : QR_ENOMEM;
out:
    qr_buf_fini(&where);
    qr_json_doc_fini(&doc);
    qr_arena_fini(&arena);
    return rc;
}

int api_aggregate_render(const api_aggregate *a, const exec_result *r, qr_buf *out)
{
    qr_jsonw_raw(out, "{\"buckets\":[");
    for (uint64_t row = 0; row < r->row_count; row++) {
        const exec_value *cells = r->cells + row * r->col_count;
        if (row) qr_jsonw_raw(out, ",");
        qr_jsonw_raw(out, "{");
        for (uint32_t c = 0; c < r->col_count; c++) {
            if (c) qr_jsonw_raw(out, ",");
            qr_jsonw_cstr(out, r->col_names[c]);
            qr_jsonw_raw(out, ":");
            exec_value_json(&cells[c], out);
        }
        qr_jsonw_raw(out, "}");
    }
    qr_jsonw_raw(out, "],\"hits\":");
    qr_jsonw_uint(out, r->hits);
    qr_jsonw_raw(out, ",\"scanned\":");
    qr_jsonw_uint(out, r->scanned);
    qr_jsonw_raw(out, ",\"took_ms\":");
    took_json(out, r->took_ms);
    qr_jsonw_raw(out, ",\"partial\":");
    qr_jsonw_raw(out, r->partial ? "true" : "false");
    if (r->partial) {
        qr_jsonw_raw(out, ",\"partial_reason\":");
        qr_jsonw_cstr(out, r->partial_reason ? r->partial_reason : "");
    }
    qr_jsonw_raw(out, ",\"sql\":");
    qr_jsonw_cstr(out, (const char *)a->sql.data);
    qr_jsonw_raw(out, "}\n");
    return qr_buf_ok(out) ? 0 : QR_ENOMEM;
}

/* alert_routes — /v1/alerts requests → alert statements (alert_routes.h). */
#include "server/alert_routes.h"

#include "common/qr_arena.h"
#include "common/qr_json.h"
#include "common/qr_time.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

bool alert_route_match(const char *path)
{
    return strcmp(path, "/v1/alerts") == 0 || strncmp(path, "/v1/alerts/", 11) == 0;
}

void alert_route_init(alert_route *r)
{
    memset(r, 0, sizeof *r);
    qr_buf_init(&r->sql);
    r->ok_status = 200;
    r->method_ok = true;
}

void alert_route_fini(alert_route *r) { qr_buf_fini(&r->sql); }

static bool name_ok(const char *s, size_t len)
{
    if (len == 0 || len > 64) return false;
    for (size_t idx = 0; idx < len; idx++)
        if (!isalnum((unsigned char)s[idx]) && s[idx] != '_' && s[idx] != '-') return false;
    return true;
}

static void put(alert_route *r, const char *s) { qr_buf_append(&r->sql, s, strlen(s)); }

static void put_name(alert_route *r)
{
    put(r, "\"");
    put(r, r->name);
    put(r, "\"");
}

/* A JSON string member of an object body into out (NUL-terminated); false when absent. */
static bool json_member(const char *body, size_t len, const char *key, qr_buf *out, qr_diag *d,
                        int *rc)
{
    qr_arena arena;
    qr_arena_init(&arena, 4096, 0);
    qr_json_doc doc;
    qr_json_doc_init(&doc, &arena, NULL, 0);
    bool found = false;
    *rc = qr_json_parse(&doc, body, len, NULL, d);
    if (!*rc) {
        const qr_json_val *root = qr_json_root(&doc);
        if (root->type != QR_JSON_OBJECT) {
            *rc = qr_diag_set(d, QR_EINVAL, "the body must be a JSON object");
        } else {
            const qr_json_val *v = root + 1;
            for (uint32_t mi = 0; mi < root->len; mi++) {
                const qr_json_val *k = v, *val = v + 1;
                v = val + val->skip;
                if (k->len == strlen(key) && memcmp(k->u.str, key, k->len) == 0 &&
                    val->type == QR_JSON_STRING) {
                    qr_buf_append(out, val->u.str, val->len);
                    qr_buf_u8(out, 0);
                    found = true;
                }
            }
        }
    } else {
        *rc = QR_EINVAL;
    }
    qr_json_doc_fini(&doc);
    qr_arena_fini(&arena);
    return found;
}

/* The CREATE ALERT text of a POST/PUT body: the text itself, or {"sql": "..."}. */
static int body_statement(alert_route *r, const char *body, size_t len, qr_diag *d)
{
    size_t off = 0;
    while (off < len && isspace((unsigned char)body[off])) off++;
    if (off < len && body[off] == '{') {
        int rc = 0;
        if (!json_member(body, len, "sql", &r->sql, d, &rc) && !rc)
            rc = qr_diag_set(d, QR_EINVAL, "the body needs \"sql\": \"CREATE ALERT ...\"");
        return rc;
    }
    if (off == len) return qr_diag_set(d, QR_EINVAL, "the body needs a CREATE ALERT statement");
    qr_buf_append(&r->sql, body, len);
    qr_buf_u8(&r->sql, 0);
    return 0;
}

static int method_is(alert_route *r, const char *method, const char *want, qr_diag *d)
{
    if (strcmp(method, want) == 0) return 0;
    r->method_ok = false;
    return qr_diag_set(d, QR_EINVAL, "this route does not accept %s (only %s)", method, want);
}

int alert_route_build(const char *method, const char *path, const char *body, size_t body_len,
                      alert_route *r, qr_diag *d)
{
    if (!alert_route_match(path)) return qr_diag_set(d, QR_ENOTFOUND, "no route for %s", path);
    const char *rest = path + 10; /* after /v1/alerts */
    if (*rest == '/') rest++;
    int rc = 0;
    if (!*rest) { /* /v1/alerts */
        if (strcmp(method, "GET") == 0) {
            put(r, "SHOW ALERTS");
        } else if (strcmp(method, "POST") == 0) {
            rc = body_statement(r, body, body_len, d);
            r->ok_status = 201;
            return rc;
        } else {
            r->method_ok = false;
            return qr_diag_set(d, QR_EINVAL, "/v1/alerts accepts GET and POST");
        }
    } else if (strcmp(rest, "state") == 0) {
        r->kind = ALERT_ROUTE_STATE;
        return method_is(r, method, "GET", d);
    } else if (strcmp(rest, "history") == 0) {
        if ((rc = method_is(r, method, "GET", d))) return rc;
        put(r, "SELECT * FROM alert_events ORDER BY ts DESC LIMIT 1000");
    } else {
        const char *slash = strchr(rest, '/');
        size_t nlen = slash ? (size_t)(slash - rest) : strlen(rest);
        if (!name_ok(rest, nlen))
            return qr_diag_set(d, QR_EINVAL, "alert names are 1-64 letters, digits, '_' or '-'");
        memcpy(r->name, rest, nlen);
        r->name[nlen] = 0;
        const char *action = slash ? slash + 1 : "";
        if (!*action) {
            if (strcmp(method, "GET") == 0) {
                put(r, "DESCRIBE ");
                put_name(r);
            } else if (strcmp(method, "DELETE") == 0) {
                put(r, "DROP ALERT ");
                put_name(r);
            } else if (strcmp(method, "PUT") == 0) {
                r->kind = ALERT_ROUTE_PUT;
                return body_statement(r, body, body_len, d);
            } else {
                r->method_ok = false;
                return qr_diag_set(d, QR_EINVAL, "/v1/alerts/{name} accepts GET, PUT and DELETE");
            }
        } else if (strcmp(action, "mute") == 0) {
            if ((rc = method_is(r, method, "POST", d))) return rc;
            qr_buf dur;
            qr_buf_init(&dur);
            if (!json_member(body, body_len, "for", &dur, d, &rc) && !rc)
                rc = qr_diag_set(d, QR_EINVAL, "the body needs \"for\": \"1h\"");
            int64_t ns = 0;
            if (!rc && (qr_duration_parse((const char *)dur.data, dur.len - 1, &ns) || ns <= 0))
                rc = qr_diag_set(d, QR_EINVAL, "invalid \"for\": %s (a duration like 30m)",
                                 (const char *)dur.data);
            qr_buf_fini(&dur);
            if (rc) return rc;
            char text[64];
            snprintf(text, sizeof text, " FOR %llds", (long long)(ns / QR_NS_PER_SEC));
            if (ns % QR_NS_PER_SEC)
                snprintf(text, sizeof text, " FOR %lldms", (long long)(ns / QR_NS_PER_MS));
            put(r, "MUTE ALERT ");
            put_name(r);
            put(r, text);
        } else if (strcmp(action, "unmute") == 0) {
            if ((rc = method_is(r, method, "POST", d))) return rc;
            put(r, "UNMUTE ALERT ");
            put_name(r);
        } else {
            return qr_diag_set(d, QR_ENOTFOUND, "no route for %s", path);
        }
    }
    qr_buf_u8(&r->sql, 0);
    return qr_buf_ok(&r->sql) ? 0 : qr_diag_set(d, QR_ENOMEM, "out of memory");
}

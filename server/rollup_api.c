/* rollup_api — /v1/rollups over the rollup manager (contract in rollup_api.h). Definitions go
 * through exec_run ("CREATE ROLLUP ..."), so the HTTP errors are the SQL errors, positioned
 * in the statement the client sent. */
#include "server/rollup_api.h"

#include "common/qr_json.h"
#include "common/qr_jsonw.h"
#include "common/qr_time.h"
#include "engine/engine.h"
#include "sql/query.h"

#include <stdio.h>
#include <string.h>

#define PREFIX "/v1/rollups"

bool rollup_api_path(const char *path)
{
    size_t n = strlen(PREFIX);
    if (strncmp(path, PREFIX, n) != 0) return false;
    return path[n] == '\0' || (path[n] == '/' && path[n + 1] && !strchr(path + n + 1, '/'));
}

bool rollup_api_is_admin(const char *method)
{
    return strcmp(method, "POST") == 0 || strcmp(method, "DELETE") == 0;
}

static void error_reply(rollup_api_reply *out, int status, const char *code, const char *msg,
                        const qr_diag *d)
{
    out->status = status;
    qr_buf_clear(&out->body);
    qr_jsonw_raw(&out->body, "{\"error\":{\"code\":");
    qr_jsonw_cstr(&out->body, code);
    qr_jsonw_raw(&out->body, ",\"message\":");
    qr_jsonw_cstr(&out->body, msg && msg[0] ? msg : "error");
    if (d && d->line > 0) {
        qr_jsonw_raw(&out->body, ",\"line\":");
        qr_jsonw_int(&out->body, d->line);
        qr_jsonw_raw(&out->body, ",\"column\":");
        qr_jsonw_int(&out->body, d->column);
        qr_jsonw_raw(&out->body, ",\"offset\":");
        qr_jsonw_int(&out->body, d->offset);
    }
    qr_jsonw_raw(&out->body, "}}");
}

static void error_rc(rollup_api_reply *out, int rc, const qr_diag *d)
{
    const char *msg = d->msg[0] ? d->msg : qr_strerror(rc);
    switch (rc) {
    case QR_ESYNTAX:
        error_reply(out, 400, "syntax", msg, d);
        break;
    case QR_EEXIST:
        error_reply(out, 409, "already_exists", msg, d);
        break;
    case QR_ENOTFOUND:
        error_reply(out, 404, "not_found", msg, NULL);
        break;
    case QR_EINVAL:
    case QR_ELIMIT:
        error_reply(out, 400, "invalid_request", msg, d);
        break;
    default:
        error_reply(out, 500, "internal", msg, NULL);
        break;
    }
}

static void duration_json(qr_buf *b, int64_t ns)
{
    if (!ns) {
        qr_jsonw_raw(b, "null");
        return;
    }
    exec_value v = {.type = EXEC_DURATION};
    v.v.i = ns;
    exec_value_json(&v, b);
}

static void info_json(qr_buf *b, const rollup_info *in)
{
    qr_jsonw_raw(b, "{\"name\":");
    qr_jsonw_cstr(b, in->name);
    qr_jsonw_raw(b, ",\"state\":");
    qr_jsonw_cstr(b, in->state);
    qr_jsonw_raw(b, ",\"interval\":");
    duration_json(b, in->interval_ns);
    qr_jsonw_raw(b, ",\"lateness\":");
    if (in->lateness_ns)
        duration_json(b, in->lateness_ns);
    else
        qr_jsonw_raw(b, "\"0s\"");
    qr_jsonw_raw(b, ",\"retention\":");
    duration_json(b, in->retention_ns);
    qr_jsonw_raw(b, ",\"rows\":");
    qr_jsonw_uint(b, in->rows);
    qr_jsonw_raw(b, ",\"windows\":");
    qr_jsonw_uint(b, in->windows);
    qr_jsonw_raw(b, ",\"open_rows\":");
    qr_jsonw_uint(b, in->open_rows);
    qr_jsonw_raw(b, ",\"late_events\":");
    qr_jsonw_uint(b, in->late_events);
    qr_jsonw_raw(b, ",\"backfill_events\":");
    qr_jsonw_uint(b, in->backfill_events);
    qr_jsonw_raw(b, ",\"last_closed\":");
    if (in->last_closed_ns == INT64_MIN) {
        qr_jsonw_raw(b, "null");
    } else {
        char t[48];
        qr_time_format(in->last_closed_ns, t, sizeof t, false);
        qr_jsonw_cstr(b, t);
    }
    qr_jsonw_raw(b, ",\"files\":");
    qr_jsonw_uint(b, in->files);
    qr_jsonw_raw(b, ",\"bytes\":");
    qr_jsonw_uint(b, in->file_bytes);
    qr_jsonw_raw(b, ",\"statement\":");
    qr_jsonw_cstr(b, in->text ? in->text : "");
}

/* Writes the rollup named name (object, with columns when describe); false when absent. */
static bool one_json(db_t *db, rollup_mgr *m, const char *tenant, const char *name, bool describe,
                     qr_buf *b)
{
    rollup_info *infos = NULL;
    size_t n = 0;
    if (rollup_list(m, tenant, &infos, &n)) return false;
    bool found = false;
    for (size_t idx = 0; idx < n && !found; idx++) {
        if (strcmp(infos[idx].name, name) != 0) continue;
        found = true;
        info_json(b, &infos[idx]);
    }
    rollup_infos_free(infos, n);
    if (!found) return false;
    if (describe) {
        char sql[200];
        snprintf(sql, sizeof sql, "DESCRIBE \"%s\"", name);
        exec_opts o;
        memset(&o, 0, sizeof o);
        o.rollups = m;
        exec_result *r = NULL;
        qr_jsonw_raw(b, ",\"columns\":[");
        if (exec_run(db, tenant, sql, &o, &r, NULL) == 0) {
            bool first = true;
            for (uint64_t row = 0; row < r->row_count; row++) {
                const exec_value *c = &r->cells[row * 3];
                if (c[0].v.s.len == 0) continue; /* filter / lateness / ... rows */
                if (!first) qr_jsonw_raw(b, ",");
                first = false;
                qr_jsonw_raw(b, "{\"name\":");
                qr_jsonw_str(b, c[0].v.s.ptr, c[0].v.s.len);
                qr_jsonw_raw(b, ",\"kind\":");
                qr_jsonw_str(b, c[1].v.s.ptr, c[1].v.s.len);
                qr_jsonw_raw(b, ",\"source\":");
                qr_jsonw_str(b, c[2].v.s.ptr, c[2].v.s.len);
                qr_jsonw_raw(b, "}");
            }
            exec_result_free(r);
        }
        qr_jsonw_raw(b, "]");
    }
    qr_jsonw_raw(b, "}");
    return true;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 128) return false;
    for (size_t idx = 0; idx < n; idx++) {
        char c = s[idx];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static void create(db_t *db, rollup_mgr *m, const char *tenant, const uint8_t *body, size_t len,
                   rollup_api_reply *out)
{
    qr_arena arena;
    qr_arena_init(&arena, 16 * 1024, 0);
    qr_json_doc doc;
    qr_json_doc_init(&doc, &arena, NULL, 0);
    qr_diag d;
    qr_diag_init(&d);
    int rc = qr_json_parse(&doc, (const char *)body, len, NULL, &d);
    const qr_json_val *sql = NULL;
    if (rc) {
        error_reply(out, 400, "invalid_request", d.msg, NULL);
    } else if (qr_json_root(&doc)->type != QR_JSON_OBJECT ||
               !(sql = qr_json_obj_get(qr_json_root(&doc), "sql", 3)) ||
               sql->type != QR_JSON_STRING) {
        error_reply(out, 400, "invalid_request",
                    "the body must be {\"sql\": \"CREATE ROLLUP name AS SELECT ...\"}", NULL);
    } else {
        char *text = qr_arena_strndup(&arena, sql->u.str, sql->len);
        sql_stmt *stmt = NULL;
        qr_arena parse_arena;
        qr_arena_init(&parse_arena, 16 * 1024, 0);
        rc = text ? sql_parse(text, strlen(text), &parse_arena, &stmt, &d) : QR_ENOMEM;
        if (!rc && stmt->kind != SQL_STMT_CREATE_ROLLUP) {
            error_reply(out, 400, "invalid_request", "the statement must be CREATE ROLLUP", NULL);
        } else if (rc) {
            error_rc(out, rc, &d);
        } else {
            exec_opts o;
            memset(&o, 0, sizeof o);
            o.rollups = m;
            exec_result *r = NULL;
            qr_diag_init(&d);
            rc = exec_run(db, tenant, text, &o, &r, &d);
            exec_result_free(r);
            if (rc) {
                error_rc(out, rc, &d);
            } else {
                qr_buf_clear(&out->body);
                if (one_json(db, m, tenant, stmt->u.rollup->name, true, &out->body))
                    out->status = 201;
                else
                    error_reply(out, 500, "internal", "the rollup vanished", NULL);
            }
        }
        qr_arena_fini(&parse_arena);
    }
    qr_json_doc_fini(&doc);
    qr_arena_fini(&arena);
}

void rollup_api_handle(db_t *db, rollup_mgr *m, const char *tenant, const char *method,
                       const char *path, const uint8_t *body, size_t len, rollup_api_reply *out)
{
    out->allow[0] = '\0';
    const char *name = path[strlen(PREFIX)] == '/' ? path + strlen(PREFIX) + 1 : NULL;
    bool get = strcmp(method, "GET") == 0;
    if (!name && !get && strcmp(method, "POST") != 0) {
        snprintf(out->allow, sizeof out->allow, "GET, POST");
        error_reply(out, 405, "method_not_allowed", "/v1/rollups accepts GET and POST", NULL);
        return;
    }
    if (name && !get && strcmp(method, "DELETE") != 0) {
        snprintf(out->allow, sizeof out->allow, "GET, DELETE");
        error_reply(out, 405, "method_not_allowed", "/v1/rollups/{name} accepts GET and DELETE",
                    NULL);
        return;
    }
    if (!m) {
        error_reply(out, 503, "rollups_unavailable", "rollups are not open on this server", NULL);
        return;
    }
    if (!name && get) {
        rollup_info *infos = NULL;
        size_t n = 0;
        if (rollup_list(m, tenant, &infos, &n)) {
            error_reply(out, 500, "internal", "cannot list rollups", NULL);
            return;
        }
        qr_buf_clear(&out->body);
        qr_jsonw_raw(&out->body, "{\"rollups\":[");
        for (size_t idx = 0; idx < n; idx++) {
            if (idx) qr_jsonw_raw(&out->body, ",");
            info_json(&out->body, &infos[idx]);
            qr_jsonw_raw(&out->body, "}");
        }
        qr_jsonw_raw(&out->body, "]}");
        rollup_infos_free(infos, n);
        out->status = 200;
        return;
    }
    if (!name) {
        create(db, m, tenant, body, len, out);
        return;
    }
    char msg[200];
    snprintf(msg, sizeof msg, "no rollup named \"%.128s\"", name);
    if (!name_ok(name)) {
        error_reply(out, 404, "not_found", msg, NULL);
        return;
    }
    if (get) {
        qr_buf_clear(&out->body);
        if (one_json(db, m, tenant, name, true, &out->body))
            out->status = 200;
        else
            error_reply(out, 404, "not_found", msg, NULL);
        return;
    }
    qr_diag d;
    qr_diag_init(&d);
    int rc = rollup_drop(m, tenant, name, &d);
    if (rc) {
        error_rc(out, rc, &d);
        return;
    }
    qr_buf_clear(&out->body);
    qr_jsonw_raw(&out->body, "{\"dropped\":");
    qr_jsonw_cstr(&out->body, name);
    qr_jsonw_raw(&out->body, "}");
    out->status = 200;
}

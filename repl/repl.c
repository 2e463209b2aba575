/* The interactive shell over a local data directory or a running server (repl.h).
 *
 * Globals: libedit's completion callback and the SIGINT handler take no context argument, so
 * the shell's state lives in one g_repl, set up before anything runs; no threads touch it.
 * Ctrl-C sets g_repl.interrupted: at the prompt it clears the line, during a query it cancels
 * the query (exec_opts.cancel; connected to a server: the request's connection is closed and
 * the server cancels the query it was running), during \tail or \import it stops them. */
#include "repl/repl.h"

#include "common/qr_input.h"
#include "common/qr_json.h"
#include "common/qr_jsonw.h"
#include "common/qr_time.h"
#include "engine/rollup.h"
#include "repl/cli.h"
#include "engine/alert.h"
#include "server/hclient.h"
#include "storage/evdec.h"

#include <editline/readline.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REPL_MAX_STATEMENT (64 * 1024)
#define REPL_TAIL_POLL_MS 500
#define REPL_REMOTE_MAX_BODY ((size_t)1 << 30)
#define REPL_IMPORT_BATCH_BYTES (4u << 20)

static struct {
    db_t *db;           /* local mode */
    const char *url;    /* remote mode (--connect or a server holding the directory) */
    char url_buf[300];  /* http://ADDR read from DIR/server.addr */
    char headers[1024]; /* remote: extra request headers (Authorization) */
    const char *tenant;
    exec_format format;
    bool timing;
    bool expanded;
    bool explain;
    volatile sig_atomic_t interrupted;
    struct alert_mgr *alerts; /* open when the data directory is local */
    char **words;             /* completion candidates: keywords, functions, fields, services */
    size_t word_count;
    size_t word_cap;
    rollup_mgr *rollups; /* the data directory's rollups (local mode) */
} g_repl;

static const char *const repl_keywords[] = {
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "HAVING",
    "ORDER",
    "LIMIT",
    "OFFSET",
    "ASC",
    "DESC",
    "AND",
    "OR",
    "NOT",
    "IN",
    "BETWEEN",
    "IS",
    "NULL",
    "LIKE",
    "MATCH",
    "CONTAINS",
    "AS",
    "EXPLAIN",
    "SHOW",
    "SERVICES",
    "FIELDS",
    "TABLES",
    "logs",
    "TRACE",
    "DEBUG",
    "INFO",
    "WARN",
    "ERROR",
    "FATAL",
    "ts",
    "service",
    "level",
    "host",
    "msg",
    /* functions */
    "count(",
    "count_distinct(",
    "sum(",
    "avg(",
    "min(",
    "max(",
    "p50(",
    "p90(",
    "p95(",
    "p99(",
    "quantile(",
    "rate(",
    "bucket(",
    "lower(",
    "upper(",
    "length(",
    "coalesce(",
    "now()",
    "count_over_time(",
    "sum_over_time(",
    "quantile_over_time(",
    "topk(",
};

static const char *const repl_commands[] = {
    "\\help", "\\q", "\\x", "\\format", "\\timing", "\\explain", "\\tail", "\\import",
};

/* --- completion ------------------------------------------------------------------------ */

static void words_add(const char *w)
{
    for (size_t idx = 0; idx < g_repl.word_count; idx++)
        if (strcmp(g_repl.words[idx], w) == 0) return;
    if (g_repl.word_count == g_repl.word_cap) {
        size_t cap = g_repl.word_cap ? g_repl.word_cap * 2 : 128;
        char **p = realloc(g_repl.words, cap * sizeof *p);
        if (!p) return;
        g_repl.words = p;
        g_repl.word_cap = cap;
    }
    char *copy = strdup(w);
    if (copy) g_repl.words[g_repl.word_count++] = copy;
}

static void words_free(void)
{
    for (size_t idx = 0; idx < g_repl.word_count; idx++) free(g_repl.words[idx]);
    free(g_repl.words);
    g_repl.words = NULL;
    g_repl.word_count = g_repl.word_cap = 0;
}

/* Adds the first column of a SHOW statement's rows (field names, services). */
static void words_from_show(const char *stmt)
{
    exec_result *r = NULL;
    exec_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.rollups = g_repl.rollups;
    if (exec_run(g_repl.db, g_repl.tenant, stmt, &opts, &r, NULL) != 0) return;
    for (uint64_t row = 0; row < r->row_count && r->col_count; row++) {
        const exec_value *v = &r->cells[row * r->col_count];
        if (v->type != EXEC_STRING || !v->v.s.len || v->v.s.len > 200) continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)v->v.s.len, v->v.s.ptr);
        words_add(name);
    }
    exec_result_free(r);
}

static void words_from_remote(const char *path, const char *list, const char *key);

static void words_refresh(void)
{
    words_free();
    for (size_t idx = 0; idx < sizeof repl_keywords / sizeof repl_keywords[0]; idx++)
        words_add(repl_keywords[idx]);
    if (g_repl.url) {
        words_from_remote("/v1/fields", "fields", "name");
        words_from_remote("/v1/services", "services", "service");
        return;
    }
    words_from_show("SHOW FIELDS");
    words_from_show("SHOW SERVICES");
}

static size_t g_gen_idx;
static bool g_gen_commands;

static char *complete_gen(const char *text, int state)
{
    if (state == 0) g_gen_idx = 0;
    size_t len = strlen(text);
    if (g_gen_commands) {
        while (g_gen_idx < sizeof repl_commands / sizeof repl_commands[0]) {
            const char *c = repl_commands[g_gen_idx++];
            if (strncmp(c, text, len) == 0) return strdup(c);
        }
        return NULL;
    }
    while (g_gen_idx < g_repl.word_count) {
        const char *w = g_repl.words[g_gen_idx++];
        if (strncasecmp(w, text, len) == 0) return strdup(w);
    }
    return NULL;
}

static char **complete(const char *text, int start, int end)
{
    g_gen_commands = start == 0 && text[0] == '\\';
    rl_attempted_completion_over = 1; /* never fall back to file names */
    /* inside quotes (a service name) the user closes the quote: no space after the word */
    rl_completion_append_character = start > 0 && rl_line_buffer[start - 1] == '\'' ? '\0' : ' ';
    return rl_completion_matches(text, complete_gen);
}

/* --- output ------------------------------------------------------------------------------ */

static size_t terminal_width(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) return ws.ws_col;
    const char *cols = getenv("COLUMNS");
    if (cols && atoi(cols) > 20) return (size_t)atoi(cols);
    return 120;
}

/* Display width: UTF-8 code points (wide CJK counted as one: close enough for alignment). */
static size_t text_width(const char *s, size_t len)
{
    size_t w = 0;
    for (size_t idx = 0; idx < len; idx++)
        if (((unsigned char)s[idx] & 0xC0) != 0x80) w++;
    return w;
}

/* Appends s cut to at most width display columns (with "…" when cut), control bytes shown
 * as spaces, then pads to width when pad. */
static void put_cell(qr_buf *out, const char *s, size_t len, size_t width, bool pad)
{
    size_t full = text_width(s, len), used = 0;
    bool cut = full > width;
    size_t room = cut ? (width ? width - 1 : 0) : width;
    for (size_t idx = 0; idx < len; idx++) {
        unsigned char c = (unsigned char)s[idx];
        bool starts = (c & 0xC0) != 0x80;
        if (starts && used == room) break;
        if (c < 0x20) c = ' ';
        qr_buf_u8(out, c);
        if (starts) used++;
    }
    if (cut && width) {
        qr_buf_append(out, "\xe2\x80\xa6", 3);
        used++;
    }
    while (pad && used < width) {
        qr_buf_u8(out, ' ');
        used++;
    }
}

void repl_render_table(const exec_result *r, size_t width, bool expanded, qr_buf *out)
{
    uint32_t ncol = r->col_count;
    if (!ncol) return;
    qr_buf cell;
    qr_buf_init(&cell);
    if (expanded) {
        size_t key_w = 0;
        for (uint32_t c = 0; c < ncol; c++) {
            size_t w = text_width(r->col_names[c], strlen(r->col_names[c]));
            if (w > key_w) key_w = w;
        }
        size_t val_w = width > key_w + 3 ? width - key_w - 3 : 10;
        for (uint64_t row = 0; row < r->row_count; row++) {
            char head[64];
            int n = snprintf(head, sizeof head, "-[ RECORD %llu ]", (unsigned long long)row + 1);
            qr_buf_append(out, head, (size_t)n);
            for (size_t idx = (size_t)n; idx < width && idx < 60; idx++) qr_buf_u8(out, '-');
            qr_buf_u8(out, '\n');
            for (uint32_t c = 0; c < ncol; c++) {
                put_cell(out, r->col_names[c], strlen(r->col_names[c]), key_w, true);
                qr_buf_append(out, " | ", 3);
                qr_buf_clear(&cell);
                exec_value_text(&r->cells[row * ncol + c], &cell);
                put_cell(out, (const char *)cell.data, cell.len, val_w, false);
                qr_buf_u8(out, '\n');
            }
        }
        qr_buf_fini(&cell);
        return;
    }
    size_t *w = calloc(ncol, sizeof *w);
    if (!w) return;
    for (uint32_t c = 0; c < ncol; c++) w[c] = text_width(r->col_names[c], strlen(r->col_names[c]));
    for (uint64_t row = 0; row < r->row_count; row++) {
        for (uint32_t c = 0; c < ncol; c++) {
            qr_buf_clear(&cell);
            exec_value_text(&r->cells[row * ncol + c], &cell);
            size_t cw = text_width((const char *)cell.data, cell.len);
            if (cw > w[c]) w[c] = cw;
        }
    }
    /* fit: shrink the widest column until the table fits (no column below 6) */
    for (;;) {
        size_t total = 0;
        uint32_t widest = 0;
        for (uint32_t c = 0; c < ncol; c++) {
            total += w[c] + (c ? 3 : 0);
            if (w[c] > w[widest]) widest = c;
        }
        if (total <= width || w[widest] <= 6) break;
        size_t over = total - width;
        w[widest] = w[widest] - over >= 6 && over < w[widest] ? w[widest] - over : w[widest] - 1;
    }
    for (uint32_t c = 0; c < ncol; c++) {
        if (c) qr_buf_append(out, " | ", 3);
        put_cell(out, r->col_names[c], strlen(r->col_names[c]), w[c], c + 1 < ncol);
    }
    qr_buf_u8(out, '\n');
    for (uint32_t c = 0; c < ncol; c++) {
        if (c) qr_buf_append(out, "-+-", 3);
        for (size_t idx = 0; idx < w[c]; idx++) qr_buf_u8(out, '-');
    }
    qr_buf_u8(out, '\n');
    for (uint64_t row = 0; row < r->row_count; row++) {
        for (uint32_t c = 0; c < ncol; c++) {
            if (c) qr_buf_append(out, " | ", 3);
            qr_buf_clear(&cell);
            exec_value_text(&r->cells[row * ncol + c], &cell);
            put_cell(out, (const char *)cell.data, cell.len, w[c], c + 1 < ncol);
        }
        qr_buf_u8(out, '\n');
    }
    free(w);
    qr_buf_fini(&cell);
}

/* The statement line holding the error, then a caret under its column. */
static void print_error(const char *text, const qr_diag *d, int rc, int column_shift)
{
    fprintf(stderr, "error: %s\n", d->msg[0] ? d->msg : qr_strerror(rc));
    cli_print_caret(stderr, text, d->line, d->column - (d->line == 1 ? column_shift : 0));
}

static void print_result(const exec_result *r)
{
    qr_buf out;
    qr_buf_init(&out);
    if (g_repl.format == EXEC_FORMAT_TABLE || r->is_explain)
        repl_render_table(r, terminal_width(), g_repl.expanded && !r->is_explain, &out);
    else
        exec_result_format(r, g_repl.format, &out);
    fwrite(out.data, 1, out.len, stdout);
    qr_buf_fini(&out);
    if (g_repl.format == EXEC_FORMAT_TABLE)
        printf("(%llu row%s)\n", (unsigned long long)r->row_count, r->row_count == 1 ? "" : "s");
    if (r->partial) printf("partial result: %s\n", r->partial_reason ? r->partial_reason : "");
    if (g_repl.timing)
        printf("hits %llu, scanned %llu, took %.2f ms\n", (unsigned long long)r->hits,
               (unsigned long long)r->scanned, r->took_ms);
    fflush(stdout);
}

/* --- remote: a server's HTTP API (docs/http.md) ---------------------------------------------
 * Queries, completion words and \import go through hclient (one blocking request each: Ctrl-C
 * is noticed when the answer is in; the server's deadline bounds a query). \tail keeps its own
 * socket so that Ctrl-C ends the stream at once. */

/* With cancelable, Ctrl-C stops waiting with QR_ECANCELED and closes the connection, which
 * makes the server cancel the query it runs for it (http_req.peer_closed). */
static int remote_call_opt(const char *method, const char *path, const char *ctype,
                           const void *body, size_t len, bool cancelable, hclient_response *r,
                           qr_diag *d)
{
    char hdr[1280];
    snprintf(hdr, sizeof hdr, "%s%s%s%s", ctype ? "Content-Type: " : "", ctype ? ctype : "",
             ctype ? "\r\n" : "", g_repl.headers);
    return hclient_request_cancelable(g_repl.url, method, path, hdr, body, len, 0,
                                      REPL_REMOTE_MAX_BODY, cancelable ? &g_repl.interrupted : NULL,
                                      r, d);
}

static int remote_call(const char *method, const char *path, const char *ctype, const void *body,
                       size_t len, hclient_response *r, qr_diag *d)
{
    return remote_call_opt(method, path, ctype, body, len, false, r, d);
}

static bool remote_parse(qr_json_doc *doc, const hclient_response *r)
{
    return r->body.len &&
           qr_json_parse(doc, (const char *)r->body.data, r->body.len, NULL, NULL) == 0 &&
           qr_json_root(doc)->type == QR_JSON_OBJECT;
}

static const qr_json_val *json_get(const qr_json_val *obj, const char *key)
{
    return obj && obj->type == QR_JSON_OBJECT ? qr_json_obj_get(obj, key, strlen(key)) : NULL;
}

static double json_num(const qr_json_val *v)
{
    return !v ? 0 : v->type == QR_JSON_INT ? (double)v->u.i : v->type == QR_JSON_FLOAT ? v->u.f : 0;
}

/* Fills d from an error answer {"error": {"code", "message", "line"?, "column"?}}. */
static int remote_error(const hclient_response *r, qr_diag *d)
{
    qr_arena a;
    qr_arena_init(&a, 0, 0);
    qr_json_doc doc;
    qr_json_doc_init(&doc, &a, NULL, 0);
    const qr_json_val *err = remote_parse(&doc, r) ? json_get(qr_json_root(&doc), "error") : NULL;
    const qr_json_val *msg = json_get(err, "message");
    int rc = r->status == 400 ? QR_ESYNTAX : r->status == 422 ? QR_ELIMIT : QR_EIO;
    if (msg && msg->type == QR_JSON_STRING) {
        qr_diag_set(d, rc, "%.*s", (int)msg->len, msg->u.str);
        const qr_json_val *ln = json_get(err, "line"), *col = json_get(err, "column");
        if (ln && col && ln->type == QR_JSON_INT && col->type == QR_JSON_INT) {
            d->line = (int32_t)ln->u.i;
            d->column = (int32_t)col->u.i;
        }
    } else {
        qr_diag_set(d, rc, "HTTP %d: %.*s", r->status, (int)(r->body.len > 300 ? 300 : r->body.len),
                    r->body.len ? (const char *)r->body.data : "");
    }
    qr_json_doc_fini(&doc);
    qr_arena_fini(&a);
    return rc;
}

/* The `--format json` object of POST /v1/query → an exec_result (values keep their JSON type;
 * timestamps and levels arrive as strings), so it renders as a local result does. */
static int remote_result(const hclient_response *resp, exec_result **out, qr_diag *d)
{
    exec_result *r = calloc(1, sizeof *r);
    if (!r) return QR_ENOMEM;
    qr_arena_init(&r->arena, 0, 0);
    qr_json_doc doc;
    qr_json_doc_init(&doc, &r->arena, NULL, 0);
    qr_json_opts jo = {0, resp->body.len + 1};
    int rc = resp->body.len
                 ? qr_json_parse(&doc, (const char *)resp->body.data, resp->body.len, &jo, d)
                 : QR_ECORRUPT;
    const qr_json_val *root = rc ? NULL : qr_json_root(&doc);
    const qr_json_val *cols = json_get(root, "columns"), *rows = json_get(root, "rows");
    if (!cols || cols->type != QR_JSON_ARRAY || !rows || rows->type != QR_JSON_ARRAY) {
        rc = qr_diag_set(d, QR_ECORRUPT, "the server's answer has no columns and rows");
        goto out;
    }
    r->col_count = cols->len;
    r->row_count = rows->len;
    r->col_names = qr_arena_calloc(&r->arena, (size_t)cols->len + 1, sizeof *r->col_names);
    r->col_types = qr_arena_calloc(&r->arena, (size_t)cols->len + 1, 1);
    r->cells = qr_arena_calloc(&r->arena, (size_t)cols->len * rows->len + 1, sizeof *r->cells);
    if (!r->col_names || !r->col_types || !r->cells) {
        rc = QR_ENOMEM;
        goto out;
    }
    const qr_json_val *col = qr_json_first(cols);
    for (uint32_t c = 0; c < cols->len; c++, col = qr_json_next(col)) {
        const qr_json_val *name = json_get(col, "name");
        r->col_names[c] = name && name->type == QR_JSON_STRING
                              ? qr_arena_strndup(&r->arena, name->u.str, name->len)
                              : "?";
        if (!r->col_names[c]) {
            rc = QR_ENOMEM;
            goto out;
        }
    }
    const qr_json_val *row = qr_json_first(rows);
    for (uint64_t row_idx = 0; row_idx < rows->len; row_idx++, row = qr_json_next(row)) {
        if (row->type != QR_JSON_ARRAY || row->len != cols->len) {
            rc = qr_diag_set(d, QR_ECORRUPT, "row %llu of the server's answer is not %u values",
                             (unsigned long long)row_idx + 1, cols->len);
            goto out;
        }
        const qr_json_val *v = qr_json_first(row);
        for (uint32_t c = 0; c < row->len; c++, v = qr_json_next(v)) {
            exec_value *cell = &r->cells[row_idx * r->col_count + c];
            const char *s = NULL;
            uint32_t n = 0;
            switch (v->type) {
            case QR_JSON_TRUE:
            case QR_JSON_FALSE:
                cell->type = EXEC_BOOL;
                cell->v.b = v->type == QR_JSON_TRUE;
                break;
            case QR_JSON_INT:
                cell->type = EXEC_INT;
                cell->v.i = v->u.i;
                break;
            case QR_JSON_FLOAT:
                cell->type = EXEC_FLOAT;
                cell->v.f = v->u.f;
                break;
            case QR_JSON_STRING:
                s = v->u.str;
                n = v->len;
                break;
            case QR_JSON_ARRAY:
            case QR_JSON_OBJECT:
                s = v->u.str;
                n = v->src_len;
                break;
            default:
                cell->type = EXEC_NULL;
            }
            if (s) {
                cell->type = EXEC_STRING;
                cell->v.s.ptr = qr_arena_strndup(&r->arena, s, n);
                cell->v.s.len = n;
                if (!cell->v.s.ptr) {
                    rc = QR_ENOMEM;
                    goto out;
                }
            }
            if (!r->col_types[c]) r->col_types[c] = cell->type;
        }
    }
    r->hits = (uint64_t)json_num(json_get(root, "hits"));
    r->scanned = (uint64_t)json_num(json_get(root, "scanned"));
    r->took_ms = json_num(json_get(root, "took_ms"));
    const qr_json_val *partial = json_get(root, "partial");
    r->partial = partial && partial->type == QR_JSON_TRUE;
    const qr_json_val *reason = json_get(root, "partial_reason");
    if (reason && reason->type == QR_JSON_STRING)
        r->partial_reason = qr_arena_strndup(&r->arena, reason->u.str, reason->len);
    r->is_explain = r->col_count == 1 && strcmp(r->col_names[0], "plan") == 0;
out:
    qr_json_doc_fini(&doc);
    if (rc) {
        exec_result_free(r);
        r = NULL;
    }
    *out = r;
    return rc;
}

static const char *format_name(exec_format f)
{
    return f == EXEC_FORMAT_TABLE    ? "table"
           : f == EXEC_FORMAT_JSON   ? "json"
           : f == EXEC_FORMAT_NDJSON ? "ndjson"
                                     : "csv";
}

/* POST /v1/query. Table output asks for JSON and renders it here (the terminal's width); the
 * other formats print the server's body as it is. */
static int remote_statement(const char *run, qr_diag *d)
{
    bool table = g_repl.format == EXEC_FORMAT_TABLE;
    qr_buf body;
    qr_buf_init(&body);
    qr_jsonw_raw(&body, "{\"query\":");
    qr_jsonw_cstr(&body, run);
    qr_jsonw_raw(&body, ",\"format\":");
    qr_jsonw_cstr(&body, table ? "json" : format_name(g_repl.format));
    qr_jsonw_raw(&body, "}");
    hclient_response resp;
    hclient_response_init(&resp);
    int rc = qr_buf_ok(&body) ? remote_call_opt("POST", "/v1/query", "application/json", body.data,
                                                body.len, true, &resp, d)
                              : QR_ENOMEM;
    if (!rc && resp.status != 200) rc = remote_error(&resp, d);
    if (!rc && g_repl.interrupted) rc = QR_ECANCELED;
    if (!rc && table) {
        exec_result *r = NULL;
        rc = remote_result(&resp, &r, d);
        if (!rc) print_result(r);
        exec_result_free(r);
    } else if (!rc) {
        fwrite(resp.body.data, 1, resp.body.len, stdout);
        char hits[32], scanned[32], took[32];
        if (g_repl.timing && hclient_header(&resp, "x-quarry-hits", hits, sizeof hits) &&
            hclient_header(&resp, "x-quarry-scanned", scanned, sizeof scanned) &&
            hclient_header(&resp, "x-quarry-took-ms", took, sizeof took))
            printf("hits %s, scanned %s, took %.2f ms\n", hits, scanned, strtod(took, NULL));
        fflush(stdout);
    }
    hclient_response_fini(&resp);
    qr_buf_fini(&body);
    return rc;
}

/* Completion words from GET path: member `key` of each object in array `list`. */
static void words_from_remote(const char *path, const char *list, const char *key)
{
    hclient_response resp;
    hclient_response_init(&resp);
    qr_diag d;
    qr_diag_init(&d);
    qr_arena a;
    qr_arena_init(&a, 0, 0);
    qr_json_doc doc;
    qr_json_doc_init(&doc, &a, NULL, 0);
    if (remote_call("GET", path, NULL, NULL, 0, &resp, &d) == 0 && resp.status == 200 &&
        remote_parse(&doc, &resp)) {
        const qr_json_val *arr = json_get(qr_json_root(&doc), list);
        if (arr && arr->type == QR_JSON_ARRAY) {
            const qr_json_val *item = qr_json_first(arr);
            for (uint32_t item_idx = 0; item_idx < arr->len;
                 item_idx++, item = qr_json_next(item)) {
                const qr_json_val *name = json_get(item, key);
                if (!name || name->type != QR_JSON_STRING || !name->len || name->len > 200)
                    continue;
                char word[256];
                snprintf(word, sizeof word, "%.*s", (int)name->len, name->u.str);
                words_add(word);
            }
        }
    }
    qr_json_doc_fini(&doc);
    qr_arena_fini(&a);
    hclient_response_fini(&resp);
}

static void pct_encode(qr_buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            qr_buf_u8(out, c);
        } else {
            qr_buf_u8(out, '%');
            qr_buf_u8(out, (uint8_t)hex[c >> 4]);
            qr_buf_u8(out, (uint8_t)hex[c & 15]);
        }
    }
}

/* http://HOST:PORT (IPv6 in brackets) → host and port. */
static int url_split(const char *url, char *host, size_t hcap, char *port, size_t pcap)
{
    if (strncmp(url, "http://", 7) != 0) return QR_EINVAL;
    const char *h = url + 7, *end = h + strcspn(h, "/"), *colon;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb || (size_t)(rb - h - 1) >= hcap) return QR_EINVAL;
        snprintf(host, hcap, "%.*s", (int)(rb - h - 1), h + 1);
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        const char *he = colon ? colon : end;
        if (he == h || (size_t)(he - h) >= hcap) return QR_EINVAL;
        snprintf(host, hcap, "%.*s", (int)(he - h), h);
    }
    if (colon && (end == colon + 1 || (size_t)(end - colon - 1) >= pcap)) return QR_EINVAL;
    snprintf(port, pcap, "%.*s", colon ? (int)(end - colon - 1) : 2, colon ? colon + 1 : "80");
    return 0;
}

static int tcp_connect(const char *url, qr_diag *d)
{
    char host[256], port[16];
    if (url_split(url, host, sizeof host, port, sizeof port))
        return qr_diag_set(d, QR_EINVAL, "bad URL \"%s\": expected http://HOST:PORT", url);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int gr = getaddrinfo(host, port, &hints, &ai);
    if (gr) return qr_diag_set(d, QR_EIO, "cannot resolve %s: %s", host, gai_strerror(gr));
    int fd = -1, err = ECONNREFUSED;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0) return qr_diag_set(d, QR_EIO, "cannot connect to %s: %s", url, strerror(err));
    return fd;
}

/* One `data:` payload of the tail stream: an event printed as the local \tail prints rows. */
static void tail_print(const char *event, const char *data, size_t len)
{
    if (strcmp(event, "notice") == 0) {
        printf("notice: %.*s\n", (int)len, data);
        return;
    }
    qr_arena a;
    qr_arena_init(&a, 0, 0);
    qr_json_doc doc;
    qr_json_doc_init(&doc, &a, NULL, 0);
    if (qr_json_parse(&doc, data, len, NULL, NULL) == 0 &&
        qr_json_root(&doc)->type == QR_JSON_OBJECT) {
        static const char *const keys[] = {"ts", "service", "level", "host", "msg"};
        for (size_t key_idx = 0; key_idx < 5; key_idx++) {
            const qr_json_val *v = json_get(qr_json_root(&doc), keys[key_idx]);
            if (key_idx) putchar(' ');
            if (v && v->type == QR_JSON_STRING)
                printf("%.*s", (int)v->len, v->u.str);
            else
                printf("NULL");
        }
        const qr_json_val *meta = json_get(qr_json_root(&doc), "meta");
        if (meta && meta->type == QR_JSON_OBJECT && meta->len)
            printf(" %.*s", (int)meta->src_len, meta->u.str);
        putchar('\n');
    } else {
        printf("%.*s\n", (int)len, data);
    }
    fflush(stdout);
    qr_json_doc_fini(&doc);
    qr_arena_fini(&a);
}

/* Splits SSE text into lines; prints each event's data. Returns the bytes consumed. */
static size_t tail_sse(const char *text, size_t len, char *event, size_t event_cap)
{
    size_t pos = 0;
    for (;;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        if (!nl) return pos;
        size_t n = (size_t)(nl - (text + pos));
        const char *line = text + pos;
        pos += n + 1;
        if (n && line[n - 1] == '\r') n--;
        if (n == 0) {
            event[0] = '\0';
        } else if (n >= 6 && strncmp(line, "event:", 6) == 0) {
            size_t skip = n > 6 && line[6] == ' ' ? 7 : 6;
            snprintf(event, event_cap, "%.*s", (int)(n - skip), line + skip);
        } else if (n >= 5 && strncmp(line, "data:", 5) == 0) {
            size_t skip = n > 5 && line[5] == ' ' ? 6 : 5;
            tail_print(event, line + skip, n - skip);
        }
    }
}

/* De-chunks what raw holds from *pos into text, as far as it goes. Returns true at the last
 * chunk. A CRLF after chunk data reads as an empty size line and is skipped. */
static bool tail_dechunk(const qr_buf *raw, size_t *pos, size_t *chunk_left, qr_buf *text)
{
    const char *p = (const char *)raw->data;
    for (;;) {
        if (*chunk_left == 0) {
            const char *eol = *pos < raw->len ? memmem(p + *pos, raw->len - *pos, "\r\n", 2) : NULL;
            if (!eol) return false;
            if (eol == p + *pos) {
                *pos += 2;
                continue;
            }
            char *end = NULL;
            unsigned long long sz = strtoull(p + *pos, &end, 16);
            *pos = (size_t)(eol - p) + 2;
            if (sz == 0) return true;
            *chunk_left = (size_t)sz;
        }
        size_t take = raw->len - *pos < *chunk_left ? raw->len - *pos : *chunk_left;
        if (!take) return false;
        qr_buf_append(text, p + *pos, take);
        *pos += take;
        *chunk_left -= take;
    }
}

/* \tail over GET /v1/tail (SSE): `{...}` is sent as query= (LogQL), other text as q= (a MATCH
 * search string); events print as they come until Ctrl-C. */
static void remote_tail(const char *arg)
{
    qr_buf path, raw, text;
    qr_buf_init(&path);
    qr_buf_init(&raw);
    qr_buf_init(&text);
    qr_buf_append(&path, "/v1/tail", 8);
    if (*arg) {
        qr_buf_append(&path, arg[0] == '{' ? "?query=" : "?q=", arg[0] == '{' ? 7 : 3);
        pct_encode(&path, arg);
    }
    qr_buf_u8(&path, '\0');
    qr_diag d;
    qr_diag_init(&d);
    g_repl.interrupted = 0;
    int fd = qr_buf_ok(&path) ? tcp_connect(g_repl.url, &d) : QR_ENOMEM;
    char head[2048];
    int hn = snprintf(head, sizeof head,
                      "GET %s HTTP/1.1\r\nHost: %.*s\r\nAccept: text/event-stream\r\n"
                      "Connection: close\r\nUser-Agent: quarry\r\n%s\r\n",
                      (const char *)path.data, (int)strcspn(g_repl.url + 7, "/"), g_repl.url + 7,
                      g_repl.headers);
    if (fd >= 0 && (hn < 0 || (size_t)hn >= sizeof head ||
                    send(fd, head, (size_t)hn, MSG_NOSIGNAL) != (ssize_t)hn))
        qr_diag_set(&d, QR_EIO, "cannot send to %s", g_repl.url);
    bool headers_done = false, chunked = false, ended = false;
    size_t pos = 0, chunk_left = 0;
    char event[64] = "";
    while (fd >= 0 && !d.code && !g_repl.interrupted && !ended) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int pn = poll(&pfd, 1, 1000);
        if (pn <= 0) continue; /* EINTR from Ctrl-C ends the loop */
        uint8_t *p = qr_buf_extend(&raw, 65536);
        if (!p) break;
        ssize_t n = recv(fd, p, 65536, 0);
        raw.len -= 65536 - (n > 0 ? (size_t)n : 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (!g_repl.interrupted) fprintf(stderr, "the server closed the stream\n");
            break;
        }
        if (!headers_done) {
            const char *h = (const char *)raw.data;
            const char *hend = memmem(h, raw.len, "\r\n\r\n", 4);
            if (!hend) continue;
            int minor = 0, status = 0;
            if (sscanf(h, "HTTP/1.%d %d", &minor, &status) != 2) {
                qr_diag_set(&d, QR_ECORRUPT, "not an HTTP answer from %s", g_repl.url);
                break;
            }
            if (status != 200) {
                /* ask again for the whole error body (it is short and closes) */
                hclient_response resp;
                hclient_response_init(&resp);
                if (remote_call("GET", (const char *)path.data, NULL, NULL, 0, &resp, &d) == 0)
                    remote_error(&resp, &d);
                hclient_response_fini(&resp);
                break;
            }
            chunked = strcasestr(h, "transfer-encoding: chunked") != NULL &&
                      strcasestr(h, "transfer-encoding: chunked") < hend;
            pos = (size_t)(hend - h) + 4;
            headers_done = true;
            printf("following %s (Ctrl-C stops)\n", *arg ? arg : "all new events");
            fflush(stdout);
        }
        if (chunked) {
            ended = tail_dechunk(&raw, &pos, &chunk_left, &text);
        } else if (raw.len > pos) {
            qr_buf_append(&text, raw.data + pos, raw.len - pos);
            pos = raw.len;
        }
        if (pos && raw.len > pos) memmove(raw.data, raw.data + pos, raw.len - pos);
        raw.len -= pos;
        pos = 0;
        if (!text.len) continue; /* (headers alone so far: the buffer may be unallocated) */
        size_t used = tail_sse((const char *)text.data, text.len, event, sizeof event);
        if (used && text.len > used) memmove(text.data, text.data + used, text.len - used);
        text.len -= used;
    }
    if (d.code) print_error(arg, &d, d.code, 0);
    if (fd >= 0) close(fd);
    qr_buf_fini(&path);
    qr_buf_fini(&raw);
    qr_buf_fini(&text);
    g_repl.interrupted = 0;
    printf("\n");
}

/* Posts one NDJSON batch; counts accepted and failed lines (line numbers from first_line). */
static int remote_ingest(const qr_buf *batch, uint64_t first_line, uint64_t *accepted,
                         uint64_t *rejected, uint64_t *first_bad, char *reason, size_t reason_cap,
                         qr_diag *d)
{
    hclient_response resp;
    hclient_response_init(&resp);
    int rc = remote_call("POST", "/v1/ingest/ndjson", "application/x-ndjson", batch->data,
                         batch->len, &resp, d);
    if (!rc && resp.status != 202 && resp.status != 200) rc = remote_error(&resp, d);
    qr_arena a;
    qr_arena_init(&a, 0, 0);
    qr_json_doc doc;
    qr_json_doc_init(&doc, &a, NULL, 0);
    if (!rc && !remote_parse(&doc, &resp))
        rc = qr_diag_set(d, QR_ECORRUPT, "the server's ingest answer is not JSON");
    if (!rc) {
        const qr_json_val *root = qr_json_root(&doc);
        uint64_t failed = (uint64_t)json_num(json_get(root, "failed"));
        const qr_json_val *errs = json_get(root, "errors");
        if (failed && !*rejected && errs && errs->type == QR_JSON_ARRAY && errs->len) {
            const qr_json_val *e = qr_json_first(errs);
            const qr_json_val *why = json_get(e, "reason");
            *first_bad = first_line - 1 + (uint64_t)json_num(json_get(e, "line"));
            snprintf(reason, reason_cap, "%.*s",
                     why && why->type == QR_JSON_STRING ? (int)why->len : 0,
                     why && why->type == QR_JSON_STRING ? why->u.str : "");
        }
        *accepted += (uint64_t)json_num(json_get(root, "accepted"));
        *rejected += failed;
    }
    qr_json_doc_fini(&doc);
    qr_arena_fini(&a);
    hclient_response_fini(&resp);
    return rc;
}

/* --- statements ---------------------------------------------------------------------------- */

static int run_statement(const char *text)
{
    char *owned = NULL;
    const char *run = text;
    int shift = 0;
    if (g_repl.explain && strncasecmp(text, "EXPLAIN", 7) != 0) {
        size_t n = strlen(text) + 9;
        owned = malloc(n);
        if (!owned) return QR_ENOMEM;
        snprintf(owned, n, "EXPLAIN %s", text);
        run = owned;
        shift = 8;
    }
    exec_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.cancel = &g_repl.interrupted;
    opts.alerts = g_repl.alerts;
    opts.rollups = g_repl.rollups;
    exec_result *r = NULL;
    qr_diag d;
    qr_diag_init(&d);
    g_repl.interrupted = 0;
    int rc = g_repl.url ? remote_statement(run, &d)
                        : exec_run(g_repl.db, g_repl.tenant, run, &opts, &r, &d);
    if (rc == QR_ECANCELED || (rc && g_repl.interrupted)) {
        fprintf(stderr, "canceled\n");
    } else if (rc) {
        print_error(text, &d, rc, shift);
    } else if (r) {
        print_result(r);
    }
    g_repl.interrupted = 0;
    exec_result_free(r);
    free(owned);
    return rc;
}

/* True when text holds a whole statement: its last significant character is a ';' outside
 * quotes. Quotes: '...' (with '' inside), "...", `...`. */
static bool statement_complete(const char *text)
{
    char quote = 0;
    bool done = false;
    for (const char *p = text; *p; p++) {
        if (quote) {
            if (*p == quote) quote = 0;
            continue;
        }
        if (*p == '\'' || *p == '"' || *p == '`') {
            quote = *p;
            done = false;
        } else if (*p == ';') {
            done = true;
        } else if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            done = false;
        }
    }
    return done && !quote;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !g_repl.interrupted) {
    }
}

/* \tail: LogQL log query ({...} |= ...) or a SQL condition; new rows every 0.5 s until ^C. */
static void cmd_tail(const char *arg)
{
    while (*arg == ' ') arg++;
    if (g_repl.url) {
        remote_tail(arg);
        return;
    }
    bool logql = arg[0] == '{';
    int64_t last_ns = qr_now_ns() - 10 * QR_NS_PER_SEC; /* start with the last 10 s */
    printf("following %s (Ctrl-C stops)\n", *arg ? arg : "all new events");
    fflush(stdout);
    g_repl.interrupted = 0;
    qr_buf q;
    qr_buf_init(&q);
    while (!g_repl.interrupted) {
        qr_buf_clear(&q);
        char since[40];
        qr_time_format(last_ns, since, sizeof since, true);
        if (logql) {
            qr_buf_append(&q, arg, strlen(arg));
        } else {
            const char *head = "SELECT ts, service, level, host, msg FROM logs WHERE ts > '";
            qr_buf_append(&q, head, strlen(head));
            qr_buf_append(&q, since, strlen(since));
            qr_buf_append(&q, "'", 1);
            if (*arg) {
                qr_buf_append(&q, " AND (", 6);
                qr_buf_append(&q, arg, strlen(arg));
                qr_buf_append(&q, ")", 1);
            }
            qr_buf_append(&q, " ORDER BY ts ASC LIMIT 1000", 27);
        }
        qr_buf_u8(&q, '\0');
        exec_opts opts;
        memset(&opts, 0, sizeof opts);
        opts.cancel = &g_repl.interrupted;
        opts.logql_limit = 1000;
        opts.rollups = g_repl.rollups;
        exec_result *r = NULL;
        qr_diag d;
        qr_diag_init(&d);
        int rc = exec_run(g_repl.db, g_repl.tenant, (const char *)q.data, &opts, &r, &d);
        if (rc) {
            if (!g_repl.interrupted) print_error(arg, &d, rc, 0);
            exec_result_free(r);
            break;
        }
        int ts_col = -1;
        for (uint32_t c = 0; c < r->col_count; c++)
            if (strcmp(r->col_names[c], "ts") == 0) ts_col = (int)c;
        qr_buf line;
        qr_buf_init(&line);
        int64_t newest = last_ns;
        /* LogQL returns newest first: print oldest first */
        for (uint64_t k = 0; k < r->row_count; k++) {
            uint64_t row = logql ? r->row_count - 1 - k : k;
            const exec_value *row_cells = &r->cells[row * r->col_count];
            if (ts_col >= 0) {
                int64_t ts = row_cells[ts_col].v.i;
                if (ts <= last_ns) continue;
                if (ts > newest) newest = ts;
            }
            qr_buf_clear(&line);
            for (uint32_t c = 0; c < r->col_count; c++) {
                if (c) qr_buf_u8(&line, ' ');
                exec_value_text(&row_cells[c], &line);
            }
            printf("%.*s\n", (int)line.len, (const char *)line.data);
        }
        qr_buf_fini(&line);
        fflush(stdout);
        last_ns = newest;
        exec_result_free(r);
        sleep_ms(REPL_TAIL_POLL_MS);
    }
    qr_buf_fini(&q);
    g_repl.interrupted = 0;
    printf("\n");
}

/* \import FILE: NDJSON (or .gz/.zst) into the open directory, with a progress bar. */
static void cmd_import(const char *arg)
{
    while (*arg == ' ') arg++;
    char path[4096];
    snprintf(path, sizeof path, "%s", arg);
    path[strcspn(path, " \t")] = '\0';
    if (!path[0]) {
        fprintf(stderr, "usage: \\import FILE   (NDJSON; .gz/.zst by name)\n");
        return;
    }
    qr_input *in;
    qr_diag d;
    qr_diag_init(&d);
    if (qr_input_open(path, QR_MSG_MAX_BYTES + 65536, &in, &d)) {
        fprintf(stderr, "error: %s\n", d.msg);
        return;
    }
    qr_batch b;
    qr_batch_init(&b);
    evdec_opts eo = {.now_ns = qr_now_ns()};
    uint64_t accepted = 0, rejected = 0, first_bad = 0;
    char first_reason[200] = "";
    int64_t started = qr_monotonic_ns(), last_bar = 0;
    bool tty = isatty(STDERR_FILENO);
    int rc = 0;
    qr_buf batch; /* remote: NDJSON lines for the next POST /v1/ingest/ndjson */
    qr_buf_init(&batch);
    uint64_t batch_lines = 0, batch_first = 0;
    g_repl.interrupted = 0;
    for (;;) {
        const char *line;
        size_t len;
        uint64_t line_no;
        qr_diag_init(&d);
        int got = qr_input_next(in, &line, &len, &line_no, &d);
        if (got < 0 && got != QR_ELIMIT) {
            fprintf(stderr, "\nerror: %s\n", d.msg);
            break;
        }
        if (g_repl.url && got != 0) {
            /* the server numbers the batch's lines: keep one line per input line */
            if (!batch_lines++) batch_first = line_no;
            if (got == 1) qr_buf_append(&batch, line, len);
            qr_buf_u8(&batch, '\n');
            if (got == QR_ELIMIT && !rejected++) {
                first_bad = line_no;
                snprintf(first_reason, sizeof first_reason, "%s", d.msg);
            }
        } else if (got == QR_ELIMIT ||
                   (got == 1 && len && evdec_ndjson_line(line, len, &eo, &b, &d) != 0)) {
            if (!rejected++) {
                first_bad = line_no;
                snprintf(first_reason, sizeof first_reason, "%s", d.msg);
            }
        }
        if (batch_lines && (got == 0 || g_repl.interrupted || batch_lines >= 10000 ||
                            batch.len >= REPL_IMPORT_BATCH_BYTES)) {
            qr_diag_init(&d);
            rc = qr_buf_ok(&batch)
                     ? remote_ingest(&batch, batch_first, &accepted, &rejected, &first_bad,
                                     first_reason, sizeof first_reason, &d)
                     : QR_ENOMEM;
            if (rc) {
                fprintf(stderr, "\nerror: %s\n", d.msg[0] ? d.msg : qr_strerror(rc));
                break;
            }
            qr_buf_clear(&batch);
            batch_lines = 0;
        }
        if ((got == 0 || b.count >= 1000 || g_repl.interrupted) && b.count) {
            size_t n = b.count;
            qr_diag_init(&d);
            if ((rc = db_ingest_take(g_repl.db, g_repl.tenant, &b, &d)) != 0) {
                fprintf(stderr, "\nerror: %s\n", d.msg);
                break;
            }
            qr_batch_reset(&b);
            accepted += n;
            eo.now_ns = qr_now_ns();
        }
        if (tty && (got == 0 || qr_monotonic_ns() - last_bar > 100 * QR_NS_PER_MS)) {
            last_bar = qr_monotonic_ns();
            uint64_t total = qr_input_file_bytes(in), done = qr_input_bytes_read(in);
            int pct = total ? (int)(done * 100 / total) : 0;
            char bar[31];
            for (int idx = 0; idx < 30; idx++) bar[idx] = idx < pct * 30 / 100 ? '#' : '.';
            bar[30] = '\0';
            char a[32];
            fprintf(stderr, "\r[%s] %3d%%  %s events", bar, pct,
                    cli_group_digits(accepted, a, sizeof a));
        }
        if (got == 0 || g_repl.interrupted) break;
    }
    double secs = (double)(qr_monotonic_ns() - started) / 1e9;
    char a[32];
    fprintf(stderr, "%simported %s events, rejected %llu, in %.2f s%s\n", tty ? "\n" : "",
            cli_group_digits(accepted, a, sizeof a), (unsigned long long)rejected, secs,
            g_repl.interrupted ? " (stopped by Ctrl-C)" : "");
    if (rejected)
        fprintf(stderr, "  first rejected: line %llu: %s\n", (unsigned long long)first_bad,
                first_reason);
    g_repl.interrupted = 0;
    qr_buf_fini(&batch);
    qr_batch_fini(&b);
    qr_input_close(in);
    words_refresh();
}

static void cmd_help(void)
{
    printf("Statements end with ';' and may span lines. SQL and LogQL (docs/query.md):\n"
           "  SELECT ts, service, level, msg FROM logs WHERE level >= WARN\n"
           "    AND msg MATCH 'timeout' ORDER BY ts DESC LIMIT 20;\n"
           "  SELECT service, count(*) FROM logs GROUP BY service ORDER BY 2 DESC;\n"
           "  {service=\"payment\"} |= \"declined\";\n"
           "  SHOW SERVICES;  SHOW FIELDS;  EXPLAIN SELECT ...;\n"
           "Commands:\n"
           "  \\format table|json|ndjson|csv   output format (now %s)\n"
           "  \\x                              expanded rows on/off\n"
           "  \\timing                         hits, scanned, took after each query\n"
           "  \\explain                        show plans instead of rows on/off\n"
           "  \\tail [COND | {logql}]          follow new events until Ctrl-C\n"
           "  \\import FILE                    load NDJSON (.gz/.zst) with a progress bar\n"
           "  \\help  \\q\n"
           "Tab completes keywords, functions, fields and services. Ctrl-C cancels a query.\n",
           g_repl.format == EXEC_FORMAT_TABLE    ? "table"
           : g_repl.format == EXEC_FORMAT_JSON   ? "json"
           : g_repl.format == EXEC_FORMAT_NDJSON ? "ndjson"
                                                 : "csv");
}

/* Returns false to quit. */
static bool run_command(const char *line)
{
    const char *arg = line + strcspn(line, " \t");
    size_t n = (size_t)(arg - line);
    while (*arg == ' ' || *arg == '\t') arg++;
#define IS(word) (n == strlen(word) && strncmp(line, word, n) == 0)
    if (IS("\\q") || IS("\\quit")) return false;
    if (IS("\\help") || IS("\\?") || IS("\\h")) {
        cmd_help();
    } else if (IS("\\x")) {
        g_repl.expanded = !g_repl.expanded;
        printf("expanded display is %s\n", g_repl.expanded ? "on" : "off");
    } else if (IS("\\timing")) {
        g_repl.timing = !g_repl.timing;
        printf("timing is %s\n", g_repl.timing ? "on" : "off");
    } else if (IS("\\explain")) {
        g_repl.explain = !g_repl.explain;
        printf("explain is %s\n", g_repl.explain ? "on" : "off");
    } else if (IS("\\format")) {
        exec_format f;
        char name[32];
        snprintf(name, sizeof name, "%s", arg);
        name[strcspn(name, " \t;")] = '\0';
        if (!exec_format_parse(name, &f))
            fprintf(stderr, "error: \\format takes table, json, ndjson or csv\n");
        else {
            g_repl.format = f;
            printf("format is %s\n", name);
        }
    } else if (IS("\\tail")) {
        char *copy = strdup(arg);
        if (copy) {
            size_t len = strlen(copy);
            while (len && (copy[len - 1] == ';' || copy[len - 1] == ' ')) copy[--len] = '\0';
            cmd_tail(copy);
            free(copy);
        }
    } else if (IS("\\import")) {
        cmd_import(arg);
    } else {
        fprintf(stderr, "error: unknown command %.*s (\\help lists them)\n", (int)n, line);
    }
#undef IS
    return true;
}

static void on_sigint(int sig)
{
    (void)sig;
    g_repl.interrupted = 1;
}

static void history_path(char *buf, size_t cap)
{
    const char *env = getenv("QUARRY_HISTORY");
    const char *home = getenv("HOME");
    if (env && *env)
        snprintf(buf, cap, "%s", env);
    else
        snprintf(buf, cap, "%s/.quarry_history", home && *home ? home : ".");
}

/* When a server holds dir (DIR/server.addr names an address that answers /healthz), points
 * g_repl.url at it. A stale file (a killed server) is ignored. */
static bool server_find(const char *dir)
{
    char path[4096], addr[256] = "";
    snprintf(path, sizeof path, "%s/server.addr", dir);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    bool got = fgets(addr, sizeof addr, f) != NULL;
    fclose(f);
    addr[strcspn(addr, "\r\n \t")] = '\0';
    if (!got || !addr[0]) return false;
    snprintf(g_repl.url_buf, sizeof g_repl.url_buf, "http://%s", addr);
    hclient_response resp;
    hclient_response_init(&resp);
    qr_diag d;
    qr_diag_init(&d);
    bool up = hclient_request(g_repl.url_buf, "GET", "/healthz", g_repl.headers, NULL, 0, 1000,
                              65536, &resp, &d) == 0 &&
              resp.status == 200;
    hclient_response_fini(&resp);
    if (up) g_repl.url = g_repl.url_buf;
    return up;
}

int cli_repl(int argc, char **argv)
{
    const char *data = NULL;
    const char *tenant = NULL, *connect = NULL, *key = NULL;
    for (int idx = 0; idx < argc; idx++) {
        const char *v;
        if (strcmp(argv[idx], "--help") == 0 || strcmp(argv[idx], "-h") == 0) {
            printf("usage: quarry [repl] [--data DIR] [--tenant T]\n"
                   "       quarry repl --connect http://HOST:PORT [--key K]\n"
                   "Interactive SQL/LogQL shell on a data directory (default ./quarry-data), or\n"
                   "on a running server (docs/http.md; the key also from QUARRY_KEY). Without\n"
                   "--data and --connect, a server holding ./quarry-data is used when it runs.\n");
            return 0;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--data"))) {
            data = v;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--tenant"))) {
            tenant = v;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--connect"))) {
            connect = v;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--key"))) {
            key = v;
        } else {
            fprintf(stderr, "quarry repl: unknown option \"%s\"\n", argv[idx]);
            return 2;
        }
    }
    if (connect && (data || tenant)) {
        fprintf(stderr, "quarry repl: --connect does not take --data or --tenant (the server's "
                        "directory and the key's tenant apply)\n");
        return 2;
    }
    if (!key) key = getenv("QUARRY_KEY");
    if (key && *key) {
        int n =
            snprintf(g_repl.headers, sizeof g_repl.headers, "Authorization: Bearer %s\r\n", key);
        if (n < 0 || (size_t)n >= sizeof g_repl.headers || strpbrk(key, "\r\n")) {
            fprintf(stderr, "quarry repl: bad --key\n");
            return 2;
        }
    }
    qr_diag d;
    qr_diag_init(&d);
    if (connect) {
        g_repl.url = connect;
        hclient_response resp;
        hclient_response_init(&resp);
        int rc = hclient_request(connect, "GET", "/healthz", g_repl.headers, NULL, 0, 5000, 65536,
                                 &resp, &d);
        hclient_response_fini(&resp);
        if (rc) {
            fprintf(stderr, "quarry: %s\n", d.msg[0] ? d.msg : qr_strerror(rc));
            return 1;
        }
    } else if (data || !server_find("./quarry-data")) {
        if (!data) data = "./quarry-data";
        int rc = db_open(data, NULL, &g_repl.db, NULL, &d);
        if (rc) {
            fprintf(stderr, "quarry: cannot open %s: %s\n", data,
                    d.msg[0] ? d.msg : qr_strerror(rc));
            return 1;
        }
        g_repl.alerts = cli_alerts_open(g_repl.db, "quarry");
        g_repl.rollups = cli_rollups_open(g_repl.db, false);
    }
    g_repl.tenant = tenant;
    g_repl.format = EXEC_FORMAT_TABLE;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: a blocked read returns, readline ends */
    rl_catch_signals = 0;
    rl_attempted_completion_function = complete;
    rl_basic_word_break_characters = " \t\n(),=<>!'\"";
    char hist[4096];
    history_path(hist, sizeof hist);
    using_history();
    read_history(hist);
    words_refresh();
    bool interactive = isatty(STDIN_FILENO);
    if (interactive)
        printf("quarry — %s%s%s%s. \\help for help, \\q to quit.\n",
               g_repl.url ? "connected to " : "", g_repl.url ? g_repl.url : data,
               tenant ? ", tenant " : "", tenant ? tenant : "");
    qr_buf stmt;
    qr_buf_init(&stmt);
    for (;;) {
        g_repl.interrupted = 0;
        char *line = readline(stmt.len ? "   ...> " : "quarry> ");
        if (!line) {
            if (g_repl.interrupted) { /* Ctrl-C at the prompt: drop the statement */
                printf("^C\n");
                qr_buf_clear(&stmt);
                continue;
            }
            if (interactive) printf("\n");
            break;
        }
        const char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (!stmt.len && *p == '\\') {
            add_history(line);
            bool go_on = run_command(p);
            free(line);
            if (!go_on) break;
            continue;
        }
        if (!stmt.len && (!*p || strcasecmp(p, "quit") == 0 || strcasecmp(p, "exit") == 0)) {
            bool quit = *p != '\0';
            free(line);
            if (quit) break;
            continue;
        }
        if (stmt.len + strlen(line) + 2 > REPL_MAX_STATEMENT) {
            fprintf(stderr, "error: statement longer than %d bytes; dropped\n", REPL_MAX_STATEMENT);
            qr_buf_clear(&stmt);
            free(line);
            continue;
        }
        if (stmt.len) qr_buf_u8(&stmt, '\n');
        qr_buf_append(&stmt, line, strlen(line));
        free(line);
        qr_buf_u8(&stmt, '\0');
        stmt.len--;
        if (!statement_complete((const char *)stmt.data)) continue;
        add_history((const char *)stmt.data);
        run_statement((const char *)stmt.data);
        qr_buf_clear(&stmt);
    }
    write_history(hist);
    qr_buf_fini(&stmt);
    words_free();
    alert_mgr_close(g_repl.alerts);
    g_repl.alerts = NULL;
    rollup_mgr_close(g_repl.rollups);
    g_repl.rollups = NULL;
    db_close(g_repl.db);
    g_repl.db = NULL;
    g_repl.url = NULL;
    return 0;
}

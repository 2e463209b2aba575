/* quarry query: runs one query over a data directory and prints the result.
 * Exit status: 0 ok, 1 storage or other failure, 2 usage or query error (the message names
 * line and column; the query line is shown with a caret under the column). */
#include "common/qr_json.h"
#include "common/qr_jsonw.h"
#include "engine/engine.h"
#include "engine/rollup.h"
#include "repl/cli.h"

#include "engine/alert.h"
#include "server/hclient.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: quarry query --data DIR [--tenant T] [--format table|json|ndjson|csv]\n"
            "                    [--timeout-ms N] [--mem-mb N] [--partial] [--cursor C]\n"
            "                    \"<query>\"\n"
            "       quarry query --connect http://HOST:PORT [--key K] [--format ...]\n"
            "                    [--partial] \"<query>\"\n"
            "Runs one SQL or LogQL query (docs/query.md), on a data directory or through a\n"
            "running server's POST /v1/query (the server's limits apply; the tenant is the\n"
            "key's). Table output prints a summary line (rows, hits, scanned, took, next\n"
            "cursor) on stderr. --cursor C resumes the same query after the page that\n"
            "returned next_cursor C.\n");
}


/* --connect: POST /v1/query and print the answer as --data would. */
static int query_remote(const char *url, const char *key, const char *query, const char *format,
                        bool partial)
{
    qr_buf body, hdr;
    qr_buf_init(&body);
    qr_buf_init(&hdr);
    qr_jsonw_raw(&body, "{\"query\":");
    qr_jsonw_cstr(&body, query);
    qr_jsonw_raw(&body, ",\"format\":");
    qr_jsonw_cstr(&body, format);
    qr_jsonw_raw(&body, partial ? ",\"partial\":true}" : "}");
    qr_jsonw_raw(&hdr, "Content-Type: application/json\r\n");
    if (key) {
        qr_jsonw_raw(&hdr, "Authorization: Bearer ");
        qr_jsonw_raw(&hdr, key);
        qr_jsonw_raw(&hdr, "\r\n");
    }
    qr_buf_u8(&hdr, 0);
    hclient_response r;
    hclient_response_init(&r);
    qr_diag d;
    qr_diag_init(&d);
    int status = 0;
    int rc = qr_buf_ok(&body) && qr_buf_ok(&hdr)
                 ? hclient_request(url, "POST", "/v1/query", (const char *)hdr.data, body.data,
                                   body.len, 0, (size_t)4 << 30, &r, &d)
                 : QR_ENOMEM;
    if (rc) {
        fprintf(stderr, "quarry query: %s\n", d.msg[0] ? d.msg : qr_strerror(rc));
        status = 1;
    } else if (r.status != 200) {
        /* {"error": {"code", "message", "line", "column"}} */
        qr_arena a;
        qr_arena_init(&a, 0, 0);
        qr_json_doc doc;
        qr_json_doc_init(&doc, &a, NULL, 0);
        const qr_json_val *err = NULL;
        if (qr_json_parse(&doc, (const char *)r.body.data, r.body.len, NULL, NULL) == 0 &&
            qr_json_root(&doc)->type == QR_JSON_OBJECT)
            err = qr_json_obj_get(qr_json_root(&doc), "error", 5);
        const qr_json_val *msg =
            err && err->type == QR_JSON_OBJECT ? qr_json_obj_get(err, "message", 7) : NULL;
        if (msg && msg->type == QR_JSON_STRING) {
            fprintf(stderr, "quarry: %.*s\n", (int)msg->len, msg->u.str);
            const qr_json_val *ln = qr_json_obj_get(err, "line", 4);
            const qr_json_val *col = qr_json_obj_get(err, "column", 6);
            if (ln && col && ln->type == QR_JSON_INT && col->type == QR_JSON_INT) {
                qr_diag pd;
                qr_diag_init(&pd);
                pd.line = (int32_t)ln->u.i;
                pd.column = (int32_t)col->u.i;
                cli_print_caret(stderr, query, pd.line, pd.column);
            }
        } else {
            fprintf(stderr, "quarry query: HTTP %d: %.*s\n", r.status,
                    (int)(r.body.len > 500 ? 500 : r.body.len), (const char *)r.body.data);
        }
        status = r.status == 400 || r.status == 422 ? 2 : 1;
        qr_json_doc_fini(&doc);
        qr_arena_fini(&a);
    } else {
        if (r.body.len && fwrite(r.body.data, 1, r.body.len, stdout) != r.body.len) status = 1;
        if (fflush(stdout) != 0) status = 1;
        char rows[32], hits[32], scanned[32], took[32], part[16];
        if (!strcmp(format, "table") && hclient_header(&r, "x-quarry-rows", rows, sizeof rows) &&
            hclient_header(&r, "x-quarry-hits", hits, sizeof hits) &&
            hclient_header(&r, "x-quarry-scanned", scanned, sizeof scanned) &&
            hclient_header(&r, "x-quarry-took-ms", took, sizeof took)) {
            bool is_partial =
                hclient_header(&r, "x-quarry-partial", part, sizeof part) && !strcmp(part, "true");
            fprintf(stderr, "(%s rows; hits %s, scanned %s, %.2f ms%s)\n", rows, hits, scanned,
                    strtod(took, NULL), is_partial ? "; PARTIAL" : "");
        }
    }
    hclient_response_fini(&r);
    qr_buf_fini(&body);
    qr_buf_fini(&hdr);
    return status;
}

int cli_query(int argc, char **argv)
{
    const char *data = NULL, *tenant = NULL, *query = NULL, *format = "table";
    const char *connect = NULL, *key = NULL;
    exec_opts opts;
    memset(&opts, 0, sizeof opts);
    for (int idx = 0; idx < argc; idx++) {
        const char *v;
        uint64_t n;
        if (strcmp(argv[idx], "--help") == 0 || strcmp(argv[idx], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--data"))) {
            data = v;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--connect"))) {
            connect = v;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--key"))) {
            key = v;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--tenant"))) {
            tenant = v;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--format"))) {
            format = v;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--timeout-ms"))) {
            if (!cli_parse_u64(v, &n) || n > UINT32_MAX) {
                fprintf(stderr, "quarry query: bad --timeout-ms \"%s\"\n", v);
                return 2;
            }
            opts.timeout_ms = (uint32_t)n;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--mem-mb"))) {
            if (!cli_parse_u64(v, &n) || n == 0 || n > (1u << 20)) {
                fprintf(stderr, "quarry query: bad --mem-mb \"%s\"\n", v);
                return 2;
            }
            opts.mem_budget_bytes = (size_t)n << 20;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--cursor"))) {
            opts.cursor = v;
        } else if (strcmp(argv[idx], "--partial") == 0) {
            opts.allow_partial = true;
        } else if (argv[idx][0] == '-' && argv[idx][1] == '-') {
            fprintf(stderr, "quarry query: unknown option \"%s\"\n", argv[idx]);
            return 2;
        } else if (!query) {
            query = argv[idx];
        } else {
            fprintf(stderr, "quarry query: one query at a time (quote it)\n");
            return 2;
        }
    }
    exec_format fmt;
    if (connect && query) {
        if (data || tenant) {
            fprintf(stderr, "quarry query: --connect does not take --data or --tenant (the "
                            "server's directory and the key's tenant apply)\n");
            return 2;
        }
        if (!exec_format_parse(format, &fmt)) {
            fprintf(stderr, "quarry query: unknown format \"%s\" (table, json, ndjson, csv)\n",
                    format);
            return 2;
        }
        if (!key) key = getenv("QUARRY_KEY");
        return query_remote(connect, key, query, format, opts.allow_partial);
    }
    if (!data || !query) {
        usage(stderr);
        return 2;
    }
    if (!exec_format_parse(format, &fmt)) {
        fprintf(stderr, "quarry query: unknown format \"%s\" (table, json, ndjson, csv)\n", format);
        return 2;
    }
    db_opts dbo;
    memset(&dbo, 0, sizeof dbo);
    dbo.no_flush_on_close = true;         /* a query writes nothing */
    dbo.flush_age_ms = 24u * 3600 * 1000; /* and does not flush while it runs */
    dbo.compact_off = true;               /* nor compacts */
    db_t *db;
    qr_diag d;
    qr_diag_init(&d);
    int rc = db_open(data, &dbo, &db, NULL, &d);
    if (rc) {
        fprintf(stderr, "quarry query: cannot open %s: %s\n", data,
                d.msg[0] ? d.msg : qr_strerror(rc));
        return 1;
    }
    struct alert_mgr *alerts = cli_alerts_open(db, "quarry query");
    opts.alerts = alerts;
    opts.rollups = cli_rollups_open(db, true);
    exec_result *res = NULL;
    rc = exec_run(db, tenant, query, &opts, &res, &d);
    int status = 0;
    if (rc) {
        fprintf(stderr, "quarry: %s\n", d.msg[0] ? d.msg : qr_strerror(rc));
        if (rc == QR_ESYNTAX) cli_print_caret(stderr, query, d.line, d.column);
        status = rc == QR_ESYNTAX || rc == QR_ELIMIT || rc == QR_EINVAL ? 2 : 1;
    } else {
        qr_buf out;
        qr_buf_init(&out);
        rc = exec_result_format(res, fmt, &out);
        if (!rc && out.len && fwrite(out.data, 1, out.len, stdout) != out.len) rc = QR_EIO;
        if (!rc && fflush(stdout) != 0) rc = QR_EIO;
        qr_buf_fini(&out);
        if (rc) {
            fprintf(stderr, "quarry query: %s\n", qr_strerror(rc));
            status = 1;
        } else if (fmt == EXEC_FORMAT_TABLE && !res->is_explain) {
            fprintf(stderr, "(%llu rows; hits %llu, scanned %llu, %.2f ms%s%s%s%s)\n",
                    (unsigned long long)res->row_count, (unsigned long long)res->hits,
                    (unsigned long long)res->scanned, res->took_ms,
                    res->partial ? "; PARTIAL: " : "",
                    res->partial && res->partial_reason ? res->partial_reason : "",
                    res->next_cursor ? "; next page: --cursor " : "",
                    res->next_cursor ? res->next_cursor : "");
        }
    }
    exec_result_free(res);
    alert_mgr_close(alerts);
    rollup_mgr_close(opts.rollups);
    db_close(db);
    return status;
}

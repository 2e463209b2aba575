/* quarry query: runs one query over a data directory and prints the result.
 * Exit status: 0 ok, 1 storage or other failure, 2 usage or query error (the message names
 * line and column; the query line is shown with a caret under the column). */
#include "engine/engine.h"
#include "repl/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: quarry query --data DIR [--tenant T] [--format table|json|ndjson|csv]\n"
               "                    [--timeout-ms N] [--mem-mb N] [--partial] [--cursor C]\n"
               "                    \"<query>\"\n"
               "Runs one SQL or LogQL query (docs/query.md). Table output prints a summary\n"
               "line (rows, hits, scanned, took, next cursor) on stderr. --cursor C resumes\n"
               "the same query after the page that returned next_cursor C.\n");
}

/* The query line holding the error, then a caret under its column (UTF-8 characters). */
static void print_caret(const char *text, const qr_diag *d)
{
    if (d->line <= 0 || d->column <= 0) return;
    const char *line = text;
    for (int32_t idx = 1; idx < d->line && line; idx++) {
        line = strchr(line, '\n');
        if (line) line++;
    }
    if (!line) return;
    size_t len = strcspn(line, "\n");
    fprintf(stderr, "  %.*s\n  ", (int)len, line);
    int32_t col = 1;
    for (size_t idx = 0; idx < len && col < d->column; idx++) {
        if (((unsigned char)line[idx] & 0xC0) == 0x80) continue;
        fputc(line[idx] == '\t' ? '\t' : ' ', stderr);
        col++;
    }
    fputs("^\n", stderr);
}

int cli_query(int argc, char **argv)
{
    const char *data = NULL, *tenant = NULL, *query = NULL, *format = "table";
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
    db_t *db;
    qr_diag d;
    qr_diag_init(&d);
    int rc = db_open(data, &dbo, &db, NULL, &d);
    if (rc) {
        fprintf(stderr, "quarry query: cannot open %s: %s\n", data,
                d.msg[0] ? d.msg : qr_strerror(rc));
        return 1;
    }
    exec_result *res = NULL;
    rc = exec_run(db, tenant, query, &opts, &res, &d);
    int status = 0;
    if (rc) {
        fprintf(stderr, "quarry: %s\n", d.msg[0] ? d.msg : qr_strerror(rc));
        if (rc == QR_ESYNTAX) print_caret(query, &d);
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
    db_close(db);
    return status;
}

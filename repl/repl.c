/* The interactive shell over a local data directory.
 *
 * Globals: libedit's completion callback and the SIGINT handler take no context argument, so
 * the shell's state lives in one g_repl, set up before anything runs; no threads touch it.
 * Ctrl-C sets g_repl.interrupted: at the prompt it clears the line, during a query it cancels
 * the query (exec_opts.cancel), during \tail or \import it stops them. */
#include "repl/repl.h"

#include "common/qr_input.h"
#include "common/qr_time.h"
#include "repl/cli.h"
#include "storage/evdec.h"

#include <editline/readline.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define REPL_MAX_STATEMENT (64 * 1024)
#define REPL_TAIL_POLL_MS 500

static struct {
    db_t *db;
    const char *tenant;
    exec_format format;
    bool timing;
    bool expanded;
    bool explain;
    volatile sig_atomic_t interrupted;
    char **words; /* completion candidates: keywords, functions, fields, services */
    size_t word_count;
    size_t word_cap;
} g_repl;

static const char *const repl_keywords[] = {
    "SELECT", "FROM", "WHERE", "GROUP", "BY", "HAVING", "ORDER", "LIMIT", "OFFSET", "ASC",
    "DESC", "AND", "OR", "NOT", "IN", "BETWEEN", "IS", "NULL", "LIKE", "MATCH", "CONTAINS",
    "AS", "EXPLAIN", "SHOW", "SERVICES", "FIELDS", "TABLES", "logs", "TRACE", "DEBUG", "INFO",
    "WARN", "ERROR", "FATAL", "ts", "service", "level", "host", "msg",
    /* functions */
    "count(", "count_distinct(", "sum(", "avg(", "min(", "max(", "p50(", "p90(", "p95(",
    "p99(", "quantile(", "rate(", "bucket(", "lower(", "upper(", "length(", "coalesce(",
    "now()", "count_over_time(", "sum_over_time(", "quantile_over_time(", "topk(",
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

static void words_refresh(void)
{
    words_free();
    for (size_t idx = 0; idx < sizeof repl_keywords / sizeof repl_keywords[0]; idx++)
        words_add(repl_keywords[idx]);
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
    if (d->line <= 0 || d->column <= 0) return;
    const char *line = text;
    for (int32_t idx = 1; idx < d->line && line; idx++) {
        line = strchr(line, '\n');
        if (line) line++;
    }
    if (!line) return;
    int32_t column = d->column - (d->line == 1 ? column_shift : 0);
    size_t len = strcspn(line, "\n");
    fprintf(stderr, "  %.*s\n  ", (int)len, line);
    int32_t col = 1;
    for (size_t idx = 0; idx < len && col < column; idx++) {
        if (((unsigned char)line[idx] & 0xC0) == 0x80) continue;
        fputc(line[idx] == '\t' ? '\t' : ' ', stderr);
        col++;
    }
    fputs("^\n", stderr);
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
    exec_result *r = NULL;
    qr_diag d;
    qr_diag_init(&d);
    g_repl.interrupted = 0;
    int rc = exec_run(g_repl.db, g_repl.tenant, run, &opts, &r, &d);
    if (rc == QR_ECANCELED || (rc && g_repl.interrupted)) {
        fprintf(stderr, "canceled\n");
    } else if (rc) {
        print_error(text, &d, rc, shift);
    } else {
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
        exec_result *r = NULL;
        qr_diag d;
        qr_diag_init(&d);
        int rc = exec_run(g_repl.db, g_repl.tenant, (const char *)q.data, &opts, &r, &d);
        if (rc) {
            if (!g_repl.interrupted) print_error(arg, &d, rc, logql ? 0 : 0);
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
        if (got == QR_ELIMIT || (got == 1 && len &&
                                 evdec_ndjson_line(line, len, &eo, &b, &d) != 0)) {
            if (!rejected++) {
                first_bad = line_no;
                snprintf(first_reason, sizeof first_reason, "%s", d.msg);
            }
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
    if (env && *env) snprintf(buf, cap, "%s", env);
    else snprintf(buf, cap, "%s/.quarry_history", home && *home ? home : ".");
}

int cli_repl(int argc, char **argv)
{
    const char *data = "./quarry-data";
    const char *tenant = NULL;
    for (int idx = 0; idx < argc; idx++) {
        const char *v;
        if (strcmp(argv[idx], "--help") == 0 || strcmp(argv[idx], "-h") == 0) {
            printf("usage: quarry [repl] [--data DIR] [--tenant T]\n"
                   "Interactive SQL/LogQL shell on a data directory (default ./quarry-data).\n");
            return 0;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--data"))) {
            data = v;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--tenant"))) {
            tenant = v;
        } else {
            fprintf(stderr, "quarry repl: unknown option \"%s\"\n", argv[idx]);
            return 2;
        }
    }
    qr_diag d;
    qr_diag_init(&d);
    int rc = db_open(data, NULL, &g_repl.db, NULL, &d);
    if (rc) {
        fprintf(stderr, "quarry: cannot open %s: %s\n", data, d.msg[0] ? d.msg : qr_strerror(rc));
        return 1;
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
        printf("quarry — %s%s%s. \\help for help, \\q to quit.\n", data, tenant ? ", tenant " : "",
               tenant ? tenant : "");
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
    db_close(g_repl.db);
    return 0;
}

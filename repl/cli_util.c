#include "repl/cli.h"

#include "engine/alert.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cli_opt_value(int argc, char **argv, int *idx, const char *name)
{
    const char *arg = argv[*idx];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0) return NULL;
    if (arg[n] == '=') return arg + n + 1;
    if (arg[n] != '\0') return NULL;
    if (*idx + 1 >= argc) {
        fprintf(stderr, "quarry: %s needs a value\n", name);
        exit(2);
    }
    (*idx)++;
    return argv[*idx];
}

bool cli_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

const char *cli_group_digits(uint64_t v, char *buf, size_t cap)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    size_t out = 0;
    for (int idx = 0; idx < n && out + 2 < cap; idx++) {
        if (idx && (n - idx) % 3 == 0) buf[out++] = ',';
        buf[out++] = tmp[idx];
    }
    buf[out] = '\0';
    return buf;
}

void cli_print_caret(FILE *f, const char *text, int32_t line_no, int32_t column)
{
    if (line_no <= 0 || column <= 0) return;
    const char *line = text;
    for (int32_t idx = 1; idx < line_no && line; idx++) {
        line = strchr(line, '\n');
        if (line) line++;
    }
    if (!line) return;
    size_t len = strcspn(line, "\n");
    fprintf(f, "  %.*s\n  ", (int)len, line);
    int32_t col = 1;
    for (size_t idx = 0; idx < len && col < column; idx++) {
        if (((unsigned char)line[idx] & 0xC0) == 0x80) continue;
        fputc(line[idx] == '\t' ? '\t' : ' ', f);
        col++;
    }
    fputs("^\n", f);
}

struct alert_mgr *cli_alerts_open(struct db *db, const char *who)
{
    alert_mgr *m = NULL;
    qr_diag d;
    qr_diag_init(&d);
    int rc = alert_mgr_open(db, NULL, &m, &d);
    if (rc) {
        fprintf(stderr, "%s: alerts are not running: %s\n", who,
                d.msg[0] ? d.msg : qr_strerror(rc));
        return NULL;
    }
    return m;
}

rollup_mgr *cli_rollups_open(db_t *db, bool no_thread)
{
    if (!db) return NULL;
    rollup_opts ro;
    memset(&ro, 0, sizeof ro);
    ro.no_thread = no_thread;
    rollup_mgr *m = NULL;
    qr_diag d;
    qr_diag_init(&d);
    int rc = rollup_mgr_open(db, &ro, &m, &d);
    if (rc) {
        fprintf(stderr, "quarry: warning: rollups not opened: %s\n",
                d.msg[0] ? d.msg : qr_strerror(rc));
        return NULL;
    }
    if (d.code) fprintf(stderr, "quarry: warning: %s\n", d.msg);
    return m;
}

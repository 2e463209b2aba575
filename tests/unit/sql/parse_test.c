/* Golden parse tests: each .txt file in tests/golden/parse holds cases of the form
 *
 *   -- query                 (the query: every line up to the next "-- " directive; the final
 *   SELECT a FROM logs        newline is not part of it)
 *   -- print                 (expected canonical text: the lines up to a blank line)
 *   SELECT a FROM logs
 *
 *   -- query
 *   SELECT FROM
 *   -- error                 (expected QR_ESYNTAX and this exact message; "-- error limit"
 *   line 1, column 8: ...     expects QR_ELIMIT)
 *
 * Lines outside a query are comments (by convention they start with '#'). For every print case the
 * printed text is parsed again and must print identically (the printer is canonical); for every
 * error case the diag's line/column must match its message and the byte offset it reports. */
#include "common/qr_arena.h"
#include "common/qr_buf.h"
#include "common/qr_err.h"
#include "qr_test.h"
#include "sql/query.h"

#include <dirent.h>

static int golden_case_count;



/* Independent of the parser: 1-based line and UTF-8 column of a byte offset. */
static void line_col_of(const char *text, size_t offset, int *line, int *column)
{
    *line = 1;
    *column = 1;
    for (size_t idx = 0; idx < offset; idx++) {
        unsigned char c = (unsigned char)text[idx];
        if (c == '\n') {
            (*line)++;
            *column = 1;
        } else if ((c & 0xC0) != 0x80) {
            (*column)++;
        }
    }
}

static int print_query(const char *text, size_t len, qr_buf *out, qr_diag *d)
{
    qr_arena arena;
    qr_arena_init(&arena, 4096, 0);
    sql_stmt *stmt = NULL;
    qr_diag_init(d);
    int rc = sql_parse(text, len, &arena, &stmt, d);
    if (rc == 0) rc = sql_print(stmt, out);
    qr_arena_fini(&arena);
    return rc;
}

static void run_case(const char *file, int line, const char *query, size_t query_len,
                     const char *kind, const char *expected)
{
    qr_buf out;
    qr_diag d;
    qr_buf_init(&out);
    int rc = print_query(query, query_len, &out, &d);
    golden_case_count++;
    if (strncmp(kind, "print", 5) == 0) {
        qr_buf_u8(&out, 0);
        if (rc != 0) {
            fprintf(stderr, "%s:%d: expected success, got %s: %s\n", file, line, qr_strerror(rc),
                    d.msg);
            qr_test_cur_failures++;
        } else if (strcmp((const char *)out.data, expected) != 0) {
            fprintf(stderr, "%s:%d: printed\n  %s\nexpected\n  %s\n", file, line,
                    (const char *)out.data, expected);
            qr_test_cur_failures++;
        } else {
            /* round trip: the canonical text parses and prints as itself */
            qr_buf again;
            qr_buf_init(&again);
            int rc2 = print_query((const char *)out.data, out.len - 1, &again, &d);
            qr_buf_u8(&again, 0);
            if (rc2 != 0 || strcmp((const char *)again.data, expected) != 0) {
                fprintf(stderr, "%s:%d: reprint of\n  %s\ngave (%d %s)\n  %s\n", file, line,
                        expected, rc2, d.msg, rc2 ? "" : (const char *)again.data);
                qr_test_cur_failures++;
            }
            qr_buf_fini(&again);
        }
    } else {
        int want = strcmp(kind, "error limit") == 0 ? QR_ELIMIT : QR_ESYNTAX;
        int line_no = 0, col_no = 0;
        if (rc != want) {
            fprintf(stderr, "%s:%d: expected %s, got rc %d (%s)\n", file, line, qr_strerror(want),
                    rc, rc == 0 ? "parsed" : d.msg);
            qr_test_cur_failures++;
        } else if (strcmp(d.msg, expected) != 0) {
            fprintf(stderr, "%s:%d: message\n  %s\nexpected\n  %s\n", file, line, d.msg, expected);
            qr_test_cur_failures++;
        } else if (d.code != want || sscanf(d.msg, "line %d, column %d:", &line_no, &col_no) != 2 ||
                   line_no != d.line || col_no != d.column) {
            fprintf(stderr, "%s:%d: diag fields disagree with the message\n", file, line);
            qr_test_cur_failures++;
        } else if (d.offset < 0 || (size_t)d.offset > query_len) {
            fprintf(stderr, "%s:%d: diag offset %lld outside the query\n", file, line,
                    (long long)d.offset);
            qr_test_cur_failures++;
        } else {
            int want_line, want_col;
            line_col_of(query, (size_t)d.offset, &want_line, &want_col);
            if (want_line != d.line || want_col != d.column) {
                fprintf(stderr, "%s:%d: offset %lld is line %d, column %d, diag says %d, %d\n",
                        file, line, (long long)d.offset, want_line, want_col, d.line, d.column);
                qr_test_cur_failures++;
            }
        }
    }
    qr_buf_fini(&out);
}

/* "-- query", "-- print", "-- error", "-- error limit": any other line (an SQL comment
 * included) belongs to the query being read. */
static bool is_directive(const char *line, size_t len)
{
    static const char *const directives[] = {"-- query", "-- print", "-- error", "-- error limit"};
    for (size_t idx = 0; idx < sizeof directives / sizeof directives[0]; idx++)
        if (strlen(directives[idx]) == len && memcmp(line, directives[idx], len) == 0) return true;
    return false;
}

/* Splits one golden file into cases and runs them; returns the number of cases. */
static int run_file(const char *path, const char *name)
{
    size_t len = 0;
    char *text = qr_test_read_file(path, &len);
    if (!text) {
        fprintf(stderr, "cannot read %s\n", path);
        qr_test_cur_failures++;
        return 0;
    }
    int cases = 0, line_no = 0, query_line = 0;
    char *p = text;
    char *query = NULL;
    size_t query_len = 0;
    bool in_query = false;
    while (*p) {
        char *eol = strchr(p, '\n');
        size_t line_len = eol ? (size_t)(eol - p) : strlen(p);
        char *next = eol ? eol + 1 : p + line_len;
        line_no++;
        if (is_directive(p, line_len)) {
            p[line_len] = '\0';
            const char *directive = p + 3;
            if (strcmp(directive, "query") == 0) {
                in_query = true;
                query = next;
                query_len = 0;
                query_line = line_no + 1;
            } else if (strcmp(directive, "print") == 0 || strncmp(directive, "error", 5) == 0) {
                if (!query) {
                    fprintf(stderr, "%s:%d: -- %s without a query\n", name, line_no, directive);
                    qr_test_cur_failures++;
                    break;
                }
                in_query = false;
                /* the expected text: every line up to a blank line (strings may span lines) */
                char *exp = next, *exp_end = next;
                while (*next && *next != '\n') {
                    char *exp_eol = strchr(next, '\n');
                    exp_end = exp_eol ? exp_eol : next + strlen(next);
                    next = exp_eol ? exp_eol + 1 : exp_end;
                    line_no++;
                }
                if (exp_end == exp) {
                    fprintf(stderr, "%s:%d: empty expected text\n", name, line_no);
                    qr_test_cur_failures++;
                    break;
                }
                *exp_end = '\0';
                char saved = query[query_len];
                query[query_len] = '\0';
                run_case(name, query_line, query, query_len, directive, exp);
                query[query_len] = saved;
                query = NULL;
                cases++;
            }
        } else if (in_query) {
            /* the query runs to the end of this line; its final newline is dropped later */
            query_len = (size_t)(p + line_len - query);
        }
        p = next;
    }
    free(text);
    return cases;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

TEST(golden_files)
{
    char dir_path[4096];
    qr_test_golden_dir("parse", dir_path, sizeof dir_path);
    DIR *dir = opendir(dir_path);
    REQUIRE(dir != NULL);
    char *names[256];
    int name_count = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL && name_count < 256) {
        size_t n = strlen(de->d_name);
        if (n > 4 && strcmp(de->d_name + n - 4, ".txt") == 0)
            names[name_count++] = strdup(de->d_name);
    }
    closedir(dir);
    qsort(names, (size_t)name_count, sizeof names[0], name_cmp);
    CHECK(name_count >= 5);
    for (int idx = 0; idx < name_count; idx++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir_path, names[idx]);
        int cases = run_file(path, names[idx]);
        printf("  %s: %d cases\n", names[idx], cases);
        CHECK(cases > 0);
        free(names[idx]);
    }
    printf("  %d golden cases\n", golden_case_count);
    CHECK(golden_case_count >= 200);
}

/* Alert statements carry the positions the alert manager's errors point at. */
TEST(alert_name_positions)
{
    qr_arena arena;
    qr_arena_init(&arena, 4096, 0);
    const char *text = "CREATE ALERT  errs AS SELECT count(*) FROM logs\n"
                       "  WINDOW 5m EVERY 30s WHEN count(*) > 1 NOTIFY WEBHOOK 'http://h'";
    sql_stmt *s = NULL;
    REQUIRE(sql_parse(text, strlen(text), &arena, &s, NULL) == 0);
    REQUIRE(s->kind == SQL_STMT_CREATE_ALERT);
    CHECK_EQ_INT(s->u.alert->name_pos.line, 1);
    CHECK_EQ_INT(s->u.alert->name_pos.column, 15);
    CHECK_EQ_INT(s->u.alert->window_pos.line, 2);
    CHECK_EQ_INT(s->u.alert->window_pos.column, 10);
    CHECK_EQ_INT(s->u.alert->every_pos.column, 19);
    const char *others[] = {"DROP ALERT  x", "MUTE ALERT  x FOR 1h", "UNMUTE ALERT  x",
                            "DESCRIBE  x"};
    const uint32_t cols[] = {13, 13, 15, 11};
    for (int idx = 0; idx < 4; idx++) {
        REQUIRE(sql_parse(others[idx], strlen(others[idx]), &arena, &s, NULL) == 0);
        CHECK_EQ_INT(s->name_pos.column, cols[idx]);
    }
    qr_arena_fini(&arena);
}

int main(void)
{
    RUN(golden_files);
    RUN(alert_name_positions);
    QR_TEST_MAIN_END();
}

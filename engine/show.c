/* show — SHOW SERVICES (name, rows), SHOW FIELDS (name, type, rows), SHOW TABLES.
 * Answered from part metadata alone: dictionaries, per-service row counts and field schemas
 * of every part of the snapshot (segments and memtables), merged by name, sorted by name. */
#include "engine/exec_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct show_row {
    qr_str name;
    uint8_t type;
    uint64_t rows;
} show_row;

static int show_row_cmp(const void *a, const void *b)
{
    const show_row *x = a, *y = b;
    size_t n = x->name.len < y->name.len ? x->name.len : y->name.len;
    int c = n ? memcmp(x->name.ptr, y->name.ptr, n) : 0;
    if (c) return c;
    if (x->name.len != y->name.len) return x->name.len < y->name.len ? -1 : 1;
    return x->type < y->type ? -1 : x->type > y->type;
}

static const char *type_name(uint8_t t)
{
    switch (t) {
    case QR_FT_STRING:
        return "string";
    case QR_FT_INT:
        return "int";
    case QR_FT_FLOAT:
        return "float";
    case QR_FT_BOOL:
        return "bool";
    default:
        return "null";
    }
}

static int set_columns(exec_ctx *q, exec_result *r, uint32_t n, const char *const *names,
                       const uint8_t *types)
{
    r->col_count = n;
    r->col_names = qr_arena_calloc(q->qa, n, sizeof *r->col_names);
    r->col_types = qr_arena_calloc(q->qa, n, 1);
    if (!r->col_names || !r->col_types) return exec_over_budget(q);
    memcpy(r->col_names, names, n * sizeof *names);
    memcpy(r->col_types, types, n);
    return 0;
}

int run_show(exec_ctx *q, sql_show_what what, exec_result *r)
{
    if (what == SQL_SHOW_TABLES) {
        static const char *const names[] = {"table", "rows"};
        static const uint8_t types[] = {EXEC_STRING, EXEC_INT};
        int rc = set_columns(q, r, 2, names, types);
        if (rc) return rc;
        uint64_t rows = 0;
        for (size_t pi = 0; pi < q->part_count; pi++) rows += q->parts[pi].p->row_count;
        r->cells = qr_arena_calloc(q->qa, 2, sizeof *r->cells);
        if (!r->cells) return exec_over_budget(q);
        r->cells[0].type = EXEC_STRING;
        r->cells[0].v.s = qr_str_make("logs", 4);
        r->cells[1] = ev_int(EXEC_INT, (int64_t)rows);
        r->row_count = 1;
        return 0;
    }
    if (what != SQL_SHOW_SERVICES && what != SQL_SHOW_FIELDS)
        return qr_diag_set(q->d, QR_ESYNTAX, "line 1, column 1: SHOW %s is not supported yet",
                           what == SQL_SHOW_ALERTS ? "ALERTS" : "ROLLUPS");
    bool services = what == SQL_SHOW_SERVICES;
    size_t cap = 0;
    for (size_t pi = 0; pi < q->part_count; pi++)
        cap += services ? q->parts[pi].p->service_count : q->parts[pi].p->field_count;
    show_row *rows = qr_arena_calloc(q->qa, cap + 1, sizeof *rows);
    if (!rows) return exec_over_budget(q);
    size_t n = 0;
    for (size_t pi = 0; pi < q->part_count; pi++) {
        const qr_part *p = q->parts[pi].p;
        uint32_t count = services ? p->service_count : p->field_count;
        for (uint32_t idx = 0; idx < count; idx++) {
            show_row row = services ? (show_row){p->services[idx], 0, p->service_rows[idx]}
                                    : (show_row){p->fields[idx].key, p->fields[idx].type,
                                                 p->fields[idx].row_count};
            if (row.rows == 0) continue;
            rows[n++] = row;
        }
    }
    qsort(rows, n, sizeof *rows, show_row_cmp);
    size_t m = 0; /* merge equal (name, type) */
    for (size_t idx = 0; idx < n; idx++) {
        if (m && show_row_cmp(&rows[m - 1], &rows[idx]) == 0)
            rows[m - 1].rows += rows[idx].rows;
        else
            rows[m++] = rows[idx];
    }
    uint32_t cols = services ? 2 : 3;
    static const char *const svc_names[] = {"service", "rows"};
    static const uint8_t svc_types[] = {EXEC_STRING, EXEC_INT};
    static const char *const field_names[] = {"field", "type", "rows"};
    static const uint8_t field_types[] = {EXEC_STRING, EXEC_STRING, EXEC_INT};
    int rc = set_columns(q, r, cols, services ? svc_names : field_names,
                         services ? svc_types : field_types);
    if (rc) return rc;
    r->cells = qr_arena_calloc(q->qa, m * cols + 1, sizeof *r->cells);
    if (!r->cells) return exec_over_budget(q);
    for (size_t idx = 0; idx < m; idx++) {
        exec_value *c = &r->cells[idx * cols];
        bool ok = true;
        exec_value name = {.type = EXEC_STRING};
        name.v.s = rows[idx].name;
        c[0] = ev_copy(q->qa, &name, &ok);
        if (!ok) return exec_over_budget(q);
        if (!services) {
            const char *t = type_name(rows[idx].type);
            c[1].type = EXEC_STRING;
            c[1].v.s = qr_str_make(t, strlen(t));
        }
        c[cols - 1] = ev_int(EXEC_INT, (int64_t)rows[idx].rows);
    }
    r->row_count = m;
    return 0;
}

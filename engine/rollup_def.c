/* rollup_def — compiling a CREATE ROLLUP statement into a rollup definition (rollup_int.h):
 * the columns (time, labels, aggregates through cq_agg_spec_from_call), the options, the
 * fields the filter, labels and aggregates read (so a backfill decodes only those), what the
 * filter reads (for the ingest path's per-class evaluation) and the WHERE conjuncts in
 * canonical text (for the query rewrite). The shape of the statement was checked by the
 * parser (sql/rollup_check.c); unknown fields and unsupported aggregates are checked here,
 * with positions into the statement. */
#include "common/qr_time.h"
#include "engine/rollup_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RU_DEFAULT_LATENESS_NS (60 * QR_NS_PER_SEC)

bool ru_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > RU_NAME_MAX) return false;
    for (size_t idx = 0; idx < n; idx++) {
        char c = s[idx];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool snap_has_field(db_snapshot *snap, const char *name, size_t len)
{
    size_t n = db_snapshot_part_count(snap);
    for (size_t pi = 0; pi < n; pi++) {
        const qr_part *p = db_snapshot_part(snap, pi);
        for (uint32_t fi = 0; fi < p->field_count; fi++)
            if (p->fields[fi].key.len == len && memcmp(p->fields[fi].key.ptr, name, len) == 0)
                return true;
    }
    return false;
}

static bool snap_has_rows(db_snapshot *snap)
{
    size_t n = db_snapshot_part_count(snap);
    for (size_t pi = 0; pi < n; pi++)
        if (db_snapshot_part(snap, pi)->row_count) return true;
    return false;
}

static bool is_builtin(const char *s)
{
    return !strcmp(s, "ts") || !strcmp(s, "ingest_ts") || !strcmp(s, "service") ||
           !strcmp(s, "level") || !strcmp(s, "host") || !strcmp(s, "msg");
}

static int def_field_add(ru_def *def, const char *name, size_t len)
{
    for (uint32_t idx = 0; idx < def->field_count; idx++)
        if (strlen(def->fields[idx]) == len && memcmp(def->fields[idx], name, len) == 0) return 0;
    char **f = realloc(def->fields, (def->field_count + 1) * sizeof *f);
    if (!f) return QR_ENOMEM;
    def->fields = f;
    f[def->field_count] = strndup(name, len);
    if (!f[def->field_count]) return QR_ENOMEM;
    def->field_count++;
    return 0;
}

typedef struct walk_ctx {
    ru_def *def;
    db_snapshot *snap; /* NULL: do not check fields */
    qr_diag *d;
    int rc;
} walk_ctx;

static void walk_search(walk_ctx *w, const sql_search *s)
{
    if (!s || w->rc) return;
    if (s->kind == SQL_SEARCH_FIELD) w->def->all_fields = true;
    for (uint32_t idx = 0; idx < s->child_count; idx++) walk_search(w, s->children[idx]);
}

/* Fields the WHERE reads; msg / MATCH; ts. Unknown fields are errors when checking. */
static void walk_expr(walk_ctx *w, const sql_expr *e)
{
    if (!e || w->rc) return;
    switch (e->kind) {
    case SQL_EXPR_FIELD: {
        const char *n = e->u.name.s;
        if (strcmp(n, "service") && strcmp(n, "level")) w->def->where_other = true;
        if (strcmp(n, "service") && strcmp(n, "level") && strcmp(n, "host"))
            w->def->where_other_h = true;
        if (!strcmp(n, "host")) w->def->uses_host = true;
        if (!strcmp(n, "msg")) w->def->needs_msg = true;
        if (!strcmp(n, "ts") || !strcmp(n, "ingest_ts")) w->def->where_has_ts = true;
        if (is_builtin(n)) return;
        if (w->snap && !snap_has_field(w->snap, n, e->u.name.len)) {
            w->rc = sql_diag_at(w->d, e->pos, QR_ESYNTAX, "unknown field \"%s\"", n);
            return;
        }
        w->rc = def_field_add(w->def, n, e->u.name.len);
        return;
    }
    case SQL_EXPR_UNARY:
        walk_expr(w, e->u.unary.arg);
        return;
    case SQL_EXPR_BINARY:
        if (e->u.binary.op == SQL_OP_MATCH) {
            w->def->needs_msg = true;
            w->def->where_other = true;
            w->def->where_other_h = true;
            walk_search(w, e->u.binary.search);
        }
        walk_expr(w, e->u.binary.lhs);
        walk_expr(w, e->u.binary.rhs);
        return;
    case SQL_EXPR_AND:
    case SQL_EXPR_OR:
        for (uint32_t idx = 0; idx < e->u.list.count; idx++) walk_expr(w, e->u.list.items[idx]);
        return;
    case SQL_EXPR_IN:
        walk_expr(w, e->u.in.arg);
        for (uint32_t idx = 0; idx < e->u.in.count; idx++) walk_expr(w, e->u.in.items[idx]);
        return;
    case SQL_EXPR_BETWEEN:
        walk_expr(w, e->u.between.arg);
        walk_expr(w, e->u.between.lo);
        walk_expr(w, e->u.between.hi);
        return;
    case SQL_EXPR_IS_NULL:
        walk_expr(w, e->u.is_null.arg);
        return;
    case SQL_EXPR_CALL:
        for (uint32_t idx = 0; idx < e->u.call.arg_count; idx++) walk_expr(w, e->u.call.args[idx]);
        return;
    default:
        return;
    }
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *expr_text(const sql_expr *e)
{
    qr_buf b;
    qr_buf_init(&b);
    sql_print_expr(e, &b);
    char *s = qr_buf_ok(&b) ? strndup(b.data ? (const char *)b.data : "", b.len) : NULL;
    qr_buf_fini(&b);
    return s;
}

static int def_where(ru_def *def, const sql_expr *where)
{
    if (!where) return 0;
    uint32_t n = where->kind == SQL_EXPR_AND ? where->u.list.count : 1;
    def->conj_texts = calloc(n, sizeof *def->conj_texts);
    if (!def->conj_texts) return QR_ENOMEM;
    for (uint32_t idx = 0; idx < n; idx++) {
        const sql_expr *c = where->kind == SQL_EXPR_AND ? where->u.list.items[idx] : where;
        def->conj_texts[idx] = expr_text(c);
        if (!def->conj_texts[idx]) return QR_ENOMEM;
        def->conj_count++;
    }
    qsort(def->conj_texts, def->conj_count, sizeof *def->conj_texts, str_cmp);
    return 0;
}

static int def_fill(ru_def *def, const char *text, const sql_stmt *stmt, db_snapshot *snap,
                    qr_diag *d)
{
    const sql_rollup *ro = stmt->u.rollup;
    const sql_select *s = ro->select;
    if (!ru_name_ok(ro->name))
        return sql_diag_at(d, stmt->pos, QR_ESYNTAX,
                           "a rollup name is 1-%d letters, digits, '_' or '-' (got \"%s\")",
                           RU_NAME_MAX, ro->name);
    if (!strcmp(ro->name, "logs") || !strcmp(ro->name, "alert_events"))
        return sql_diag_at(d, stmt->pos, QR_ESYNTAX, "\"%s\" is a reserved table name", ro->name);
    snprintf(def->name, sizeof def->name, "%s", ro->name);
    def->text = strdup(text);
    if (!def->text) return QR_ENOMEM;
    def->lateness_ns = RU_DEFAULT_LATENESS_NS;
    for (uint32_t idx = 0; idx < ro->option_count; idx++) {
        const sql_option *o = &ro->options[idx];
        int64_t v = o->value->kind == SQL_EXPR_DURATION ? o->value->u.duration_ns : 0;
        if (!strcmp(o->key, "retention")) def->retention_ns = v;
        if (!strcmp(o->key, "lateness")) def->lateness_ns = v;
    }
    bool check = snap && snap_has_rows(snap);
    if (s->item_count > RU_MAX_COLUMNS * 2)
        return sql_diag_at(d, s->pos, QR_ELIMIT, "a rollup has at most %d columns", RU_MAX_COLUMNS);
    for (uint32_t idx = 0; idx < s->item_count; idx++) {
        const sql_select_item *it = &s->items[idx];
        const sql_expr *e = it->expr;
        ru_col *col = &def->cols[def->col_count];
        if (e->kind == SQL_EXPR_CALL && !strcmp(e->u.call.name, "bucket")) {
            def->interval_ns = e->u.call.args[1]->u.duration_ns;
            snprintf(def->t_name, sizeof def->t_name, "%s", it->alias ? it->alias : "t");
            col->kind = RU_COL_T;
        } else if (e->kind == SQL_EXPR_FIELD) {
            if (def->label_count == RU_MAX_COLUMNS || e->u.name.len > RU_NAME_MAX)
                return sql_diag_at(d, e->pos, QR_ELIMIT, "too many or too long labels");
            ru_label *l = &def->labels[def->label_count];
            snprintf(l->field, sizeof l->field, "%s", e->u.name.s);
            l->field_len = e->u.name.len;
            snprintf(l->name, sizeof l->name, "%s", it->alias ? it->alias : e->u.name.s);
            l->src = !strcmp(l->field, "service") ? RU_LABEL_SERVICE
                     : !strcmp(l->field, "host")  ? RU_LABEL_HOST
                     : !strcmp(l->field, "level") ? RU_LABEL_LEVEL
                                                  : RU_LABEL_FIELD;
            if (l->src == RU_LABEL_FIELD) {
                if (check && !snap_has_field(snap, l->field, l->field_len))
                    return sql_diag_at(d, e->pos, QR_ESYNTAX, "unknown field \"%s\"", l->field);
                int rc = def_field_add(def, l->field, l->field_len);
                if (rc) return rc;
            }
            col->kind = RU_COL_LABEL;
            col->idx = def->label_count++;
        } else {
            if (def->agg_count == RU_MAX_COLUMNS)
                return sql_diag_at(d, e->pos, QR_ELIMIT, "too many aggregates");
            ru_agg *a = &def->aggs[def->agg_count];
            int rc = cq_agg_spec_from_call(text, e, &a->spec, d);
            if (rc) return rc;
            if (it->alias) {
                snprintf(a->name, sizeof a->name, "%s", it->alias);
            } else {
                char *t = expr_text(e);
                if (!t) return QR_ENOMEM;
                snprintf(a->name, sizeof a->name, "%s", t);
                free(t);
            }
            const char *f = a->spec.field;
            if (f[0] && !is_builtin(f)) {
                if (check && !snap_has_field(snap, f, strlen(f)))
                    return sql_diag_at(d, e->u.call.arg_count ? e->u.call.args[0]->pos : e->pos,
                                       QR_ESYNTAX, "unknown field \"%s\"", f);
                rc = def_field_add(def, f, strlen(f));
                if (rc) return rc;
            }
            if (!strcmp(f, "msg")) def->needs_msg = true;
            col->kind = RU_COL_AGG;
            col->idx = def->agg_count++;
        }
        def->col_count++;
    }
    def->labels_sl = true;
    def->labels_slh = true;
    for (uint32_t li = 0; li < def->label_count; li++) {
        uint8_t src = def->labels[li].src;
        def->labels_sl &= src == RU_LABEL_SERVICE || src == RU_LABEL_LEVEL;
        def->labels_slh &= src != RU_LABEL_FIELD;
        def->uses_host |= src == RU_LABEL_HOST;
    }
    walk_ctx w = {def, check ? snap : NULL, d, 0};
    walk_expr(&w, s->where);
    if (w.rc) return w.rc;
    return def_where(def, s->where);
}

int ru_def_compile(const char *text, const char *tenant, db_snapshot *snap, ru_def *def,
                   evf **filter, qr_diag *d)
{
    memset(def, 0, sizeof *def);
    snprintf(def->tenant, sizeof def->tenant, "%s", tenant ? tenant : DB_DEFAULT_TENANT);
    def->arena = malloc(sizeof *def->arena);
    if (!def->arena) return QR_ENOMEM;
    qr_arena_init(def->arena, 16 * 1024, 0);
    sql_stmt *stmt = NULL;
    int rc = sql_parse(text, strlen(text), def->arena, &stmt, d);
    if (!rc && stmt->kind != SQL_STMT_CREATE_ROLLUP)
        rc = qr_diag_set(d, QR_EINVAL, "not a CREATE ROLLUP statement");
    if (!rc) rc = def_fill(def, text, stmt, snap, d);
    if (!rc && filter) {
        /* positions point into the arena's copy of the text, which equals text */
        rc = evf_compile_where(text, stmt->u.rollup->select->where, filter, d);
        if (!rc) rc = cqb_where_compile(text, stmt->u.rollup->select->where, &def->where, d);
        if (rc) {
            evf_free(*filter);
            *filter = NULL;
        }
    }
    if (rc) ru_def_fini(def);
    return rc;
}

void ru_def_fini(ru_def *def)
{
    cqb_where_fini(&def->where);
    free(def->text);
    for (uint32_t idx = 0; idx < def->conj_count; idx++) free(def->conj_texts[idx]);
    free(def->conj_texts);
    for (uint32_t idx = 0; idx < def->field_count; idx++) free(def->fields[idx]);
    free(def->fields);
    if (def->arena) qr_arena_fini(def->arena);
    free(def->arena);
    def->arena = NULL;
    def->text = NULL;
    def->conj_texts = NULL;
    def->fields = NULL;
    def->conj_count = def->field_count = 0;
}

/* exec — exec_run: parse → snapshot → bind → run → result, with the query's limits.
 *
 * One arena (the result's) holds the syntax tree, the plan, operator state and the result;
 * a second, reset per block, holds decoded columns. Both are bounded by the memory budget
 * (each on its own), so a query over budget fails with QR_ELIMIT or stops early with a partial
 * result, never with an out-of-memory crash. The deadline is checked between blocks.
 * EXPLAIN runs the statement and replaces its rows by the plan and the pruning figures. */
#include "engine/exec_int.h"

#include "engine/alert.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int exec_error_at(exec_ctx *q, sql_pos pos, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sql_diag_vat(q->d, pos, code, fmt, ap);
    va_end(ap);
    return code;
}

int exec_over_budget(exec_ctx *q)
{
    return qr_diag_set(q->d, QR_ELIMIT, "query memory budget exceeded (%zu bytes)",
                       q->opts.mem_budget_bytes);
}

int exec_check_deadline(exec_ctx *q)
{
    if (q->opts.cancel && *q->opts.cancel) return qr_diag_set(q->d, QR_ECANCELED, "query canceled");
    if (!q->deadline_mono_ns || qr_monotonic_ns() < q->deadline_mono_ns) return 0;
    return qr_diag_set(q->d, QR_ELIMIT, "query timed out after %u ms", q->opts.timeout_ms);
}

bool exec_field_known(exec_ctx *q, const char *name, size_t len)
{
    if (q->table_def) {
        uint8_t type;
        return rollup_table_col(q->table_def, name, len, &type) >= 0;
    }
    for (size_t pi = 0; pi < q->part_count; pi++) {
        const qr_part *p = q->parts[pi].p;
        for (uint32_t fi = 0; fi < p->field_count; fi++)
            if (p->fields[fi].key.len == len && memcmp(p->fields[fi].key.ptr, name, len) == 0)
                return true;
    }
    return false;
}

int exec_field_intern(exec_ctx *q, const char *name, size_t len)
{
    for (uint32_t idx = 0; idx < q->field_count; idx++)
        if (q->fields[idx].len == len && memcmp(q->fields[idx].name, name, len) == 0)
            return (int)idx;
    if (q->field_count == q->field_cap) {
        uint32_t cap = q->field_cap ? q->field_cap * 2 : 16;
        qfield *f = qr_arena_alloc(q->qa, cap * sizeof *f);
        if (!f) return -1;
        if (q->field_count) memcpy(f, q->fields, q->field_count * sizeof *f);
        q->fields = f;
        q->field_cap = cap;
    }
    char *copy = qr_arena_strndup(q->qa, name, len);
    if (!copy) return -1;
    q->fields[q->field_count].name = copy;
    q->fields[q->field_count].len = (uint32_t)len;
    return (int)q->field_count++;
}

/* ---- EXPLAIN ------------------------------------------------------------------------------- */

static void line_add(qr_buf *lines, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line_add(qr_buf *lines, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    qr_buf_append(lines, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    qr_buf_u8(lines, '\n');
}

static const char *bx_text(exec_ctx *q, const bx *x, char *buf, size_t cap)
{
    if (x->src) {
        qr_buf b;
        qr_buf_init(&b);
        sql_print_expr(x->src, &b);
        snprintf(buf, cap, "%.*s", (int)b.len, b.data ? (const char *)b.data : "");
        qr_buf_fini(&b);
        return buf;
    }
    if (x->kind == BX_COL) return bind_col_name(q, x->col);
    if (x->kind == BX_CALL && x->fn == FN_BUCKET) {
        char w[32];
        exec_value d = ev_int(EXEC_DURATION, x->width_ns);
        qr_buf b;
        qr_buf_init(&b);
        exec_value_text(&d, &b);
        snprintf(w, sizeof w, "%.*s", (int)b.len, b.data ? (const char *)b.data : "");
        qr_buf_fini(&b);
        snprintf(buf, cap, "bucket(ts, %s)", w);
        return buf;
    }
    return "expr";
}

static void time_text(int64_t ns, char *buf, size_t cap)
{
    if (ns == INT64_MIN || ns == INT64_MAX)
        snprintf(buf, cap, "%s", ns == INT64_MIN ? "-inf" : "+inf");
    else
        qr_time_format(ns, buf, cap, ns % QR_NS_PER_MS != 0);
}

static int explain_rows(exec_ctx *q, exec_result *r)
{
    plan *pl = q->pl;
    const exec_stats *st = &q->st;
    qr_buf lines;
    qr_buf_init(&lines);
    char t1[40], t2[40], buf[512];
    line_add(&lines, "%s %s query", pl->label ? pl->label : "SQL",
             pl->kind == PLAN_ROWS  ? "rows"
             : pl->kind == PLAN_AGG ? "aggregate"
                                    : "constant");
    if (q->table) {
        line_add(&lines, "  scan rollup %s: closed windows (files) + open windows (memory)",
                 rollup_table_name(q->table_def));
    } else if (pl->ts_lo == INT64_MIN && pl->ts_hi == INT64_MAX) {
        line_add(&lines, "  scan logs: all time");
    } else {
        time_text(pl->ts_lo, t1, sizeof t1);
        time_text(pl->ts_hi, t2, sizeof t2);
        line_add(&lines, "  scan logs: ts in [%s, %s]", t1, t2);
    }
    for (uint32_t idx = 0; idx < pl->conj_count; idx++) {
        const conj *c = &pl->conjs[idx];
        static const char *const how[] = {
            "time range: part and block min/max ts",
            "labels: (service, level) table per part, block counts, u32 id loop",
            "labels: host id table",
            "index: posting lists (segments) / block blooms (memtables), verify candidates",
            "per row"};
        line_add(&lines, "  filter %s  [%s]", bx_text(q, c->e, buf, sizeof buf), how[c->cls]);
    }
    if (pl->kind == PLAN_AGG) {
        for (uint32_t idx = 0; idx < pl->group_count; idx++)
            line_add(&lines, "  group by %s", bx_text(q, pl->groups[idx], buf, sizeof buf));
        for (uint32_t idx = 0; idx < pl->agg_count; idx++) {
            static const char *const names[] = {
                "count(*)", "count",          "sum",      "avg", "min",
                "max",      "count_distinct", "quantile", "rate"};
            line_add(&lines, "  aggregate %s",
                     pl->aggs[idx].src
                         ? bx_text(q, &(bx){.src = pl->aggs[idx].src}, buf, sizeof buf)
                         : names[pl->aggs[idx].fn]);
        }
        if (pl->meta_ok && !q->table)
            line_add(&lines, "  counts from block metadata where a block allows");
    }
    if (q->rollup_note) line_add(&lines, "%s", q->rollup_note);
    for (uint32_t idx = 0; idx + pl->order_implicit < pl->order_count; idx++)
        line_add(&lines, "  order by %s %s", bx_text(q, pl->order[idx], buf, sizeof buf),
                 pl->order_desc[idx] ? "DESC" : "ASC");
    if (pl->kind == PLAN_ROWS && pl->ts_order)
        line_add(&lines, "  visit blocks %s first; stop when the top-k is settled",
                 pl->ts_order < 0 ? "newest" : "oldest");
    if (pl->limit >= 0)
        line_add(&lines, "  limit %lld offset %lld", (long long)pl->limit, (long long)pl->offset);
    line_add(&lines, "parts: %llu total, %llu pruned", (unsigned long long)st->parts_total,
             (unsigned long long)st->parts_pruned);
    line_add(&lines,
             "blocks: %llu total, %llu pruned by time, %llu by labels, %llu by index, "
             "%llu skipped (early stop), %llu scanned, %llu from metadata",
             (unsigned long long)st->blocks_total, (unsigned long long)st->blocks_pruned_time,
             (unsigned long long)st->blocks_pruned_labels,
             (unsigned long long)st->blocks_pruned_index, (unsigned long long)st->blocks_skipped,
             (unsigned long long)st->blocks_scanned, (unsigned long long)st->blocks_meta);
    line_add(&lines, "rows verified: %llu", (unsigned long long)st->rows_verified);
    line_add(&lines, "threads: %u", st->threads ? st->threads : 1);
    line_add(&lines, "hits: %llu, scanned: %llu, took_ms: %.3f", (unsigned long long)q->hits,
             (unsigned long long)q->scanned, (double)(qr_monotonic_ns() - q->start_mono_ns) / 1e6);
    if (!qr_buf_ok(&lines)) {
        qr_buf_fini(&lines);
        return QR_ENOMEM;
    }
    uint64_t n = 0;
    for (size_t idx = 0; idx < lines.len; idx++) n += lines.data[idx] == '\n';
    r->cells = qr_arena_calloc(q->qa, n + 1, sizeof *r->cells);
    char *text = qr_arena_strndup(q->qa, (const char *)lines.data, lines.len);
    qr_buf_fini(&lines);
    if (!r->cells || !text) return exec_over_budget(q);
    r->row_count = 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        exec_value v = {.type = EXEC_STRING};
        v.v.s = qr_str_make(line, (size_t)(nl - line));
        r->cells[r->row_count++] = v;
        line = nl + 1;
    }
    r->col_count = 1;
    r->col_names = qr_arena_calloc(q->qa, 1, sizeof *r->col_names);
    r->col_types = qr_arena_calloc(q->qa, 1, 1);
    if (!r->col_names || !r->col_types) return exec_over_budget(q);
    r->col_names[0] = "plan";
    r->col_types[0] = EXEC_STRING;
    r->is_explain = true;
    return 0;
}

/* ---- exec_run ---------------------------------------------------------------------------------
 */

static int columns_fill(exec_ctx *q, exec_result *r)
{
    plan *pl = q->pl;
    r->col_count = pl->out_count;
    r->col_names = pl->out_names;
    r->col_types = qr_arena_calloc(q->qa, pl->out_count + 1, 1);
    if (!r->col_types) return exec_over_budget(q);
    for (uint32_t col = 0; col < pl->out_count; col++) {
        uint8_t t = EXEC_NULL;
        for (uint64_t row = 0; row < r->row_count; row++) {
            uint8_t ct = r->cells[row * pl->out_count + col].type;
            if (ct == EXEC_NULL) continue;
            if (t == EXEC_NULL)
                t = ct;
            else if (t != ct)
                t = (t == EXEC_INT || t == EXEC_FLOAT) && (ct == EXEC_INT || ct == EXEC_FLOAT)
                        ? EXEC_FLOAT
                        : EXEC_STRING;
        }
        if (t == EXEC_NULL) t = pl->out[col]->type ? pl->out[col]->type : EXEC_STRING;
        r->col_types[col] = t;
    }
    return 0;
}

static int run_stmt(exec_ctx *q, db_t *db, const char *tenant, const sql_stmt *stmt, exec_result *r)
{
    bool explain = stmt->kind == SQL_STMT_EXPLAIN;
    if (explain) stmt = stmt->u.explain;
    if (!explain && alert_stmt_is_ours(q->opts.alerts, tenant, stmt)) {
        if (!q->opts.alerts)
            return exec_error_at(q, stmt->pos, QR_EINVAL,
                                 "alerts are not open in this process (they run where the data "
                                 "directory is open: quarry serve, the REPL, quarry query "
                                 "--data, quarry ingest)");
        int arc = alert_mgr_exec(q->opts.alerts, tenant, q->text, stmt, r, q->d);
        q->hits = r->row_count;
        return arc;
    }
    int rc = db_snapshot_open(db, tenant, &q->snap);
    if (rc)
        return qr_diag_set(q->d, rc, "cannot open a snapshot of tenant \"%s\"",
                           tenant ? tenant : DB_DEFAULT_TENANT);
    q->part_count = db_snapshot_part_count(q->snap);
    q->parts = qr_arena_calloc(q->qa, q->part_count + 1, sizeof *q->parts);
    if (!q->parts) return exec_over_budget(q);
    for (size_t pi = 0; pi < q->part_count; pi++) {
        q->parts[pi].p = db_snapshot_part(q->snap, pi);
        q->parts[pi].idx = (uint32_t)pi;
    }
    switch (stmt->kind) {
    case SQL_STMT_SHOW:
        if (explain) break;
        if (stmt->u.show == SQL_SHOW_ROLLUPS) return rollup_exec_stmt(q, tenant, stmt, r);
        rc = run_show(q, stmt->u.show, r);
        if (!rc && stmt->u.show == SQL_SHOW_TABLES) rc = rollup_show_tables(q, tenant, r);
        return rc;
    case SQL_STMT_CREATE_ROLLUP:
        return rollup_exec_stmt(q, tenant, stmt, r);
    case SQL_STMT_DROP:
        if (stmt->u.drop.object != SQL_OBJECT_ROLLUP) goto unsupported;
        return rollup_exec_stmt(q, tenant, stmt, r);
    case SQL_STMT_DESCRIBE:
        rc = rollup_exec_stmt(q, tenant, stmt, r);
        if (rc != QR_ENOTFOUND) return rc;
        return exec_error_at(q, stmt->pos, QR_ENOTFOUND, "no rollup or alert named \"%s\"",
                             stmt->u.describe);
    case SQL_STMT_SELECT: {
        const char *from = stmt->u.select->from;
        if (from && strcmp(from, "logs") != 0) {
            rc = rollup_bind_table(q, tenant, from);
            if (rc == QR_ENOTFOUND)
                return exec_error_at(q, stmt->u.select->from_pos, QR_ESYNTAX,
                                     "unknown table \"%s\" (tables: %s)", from,
                                     rollup_table_names(q, tenant));
            if (rc) return rc;
        }
        rc = bind_select(q, stmt->u.select, &q->pl);
        break;
    }
    case SQL_STMT_LOGQL:
        rc = bind_logql(q, stmt->u.logql, &q->pl);
        break;
    default:
    unsupported:
        return exec_error_at(q, stmt->pos, QR_ESYNTAX,
                             "this statement is not supported yet (SELECT, LogQL, SHOW, "
                             "EXPLAIN and rollup statements are)");
    }
    if (!q->pl && !rc)
        return exec_error_at(q, stmt->pos, QR_ESYNTAX, "EXPLAIN takes a SELECT or LogQL query");
    if (rc) return rc;
    if (q->has_cursor && q->pl->kind != PLAN_ROWS)
        return qr_diag_set(q->d, QR_EINVAL,
                           "invalid cursor: only row queries are paged with cursors");
    bool last_page = false;
    if (q->pl->kind == PLAN_ROWS && q->opts.page_rows && !explain && !q->table) {
        /* a page of a stream: the query's LIMIT is what remains after the earlier pages */
        plan *pl = q->pl;
        uint64_t page = q->opts.page_rows, left = UINT64_MAX;
        if (pl->limit >= 0)
            left = (uint64_t)pl->limit > q->opts.rows_done ? (uint64_t)pl->limit - q->opts.rows_done
                                                           : 0;
        last_page = left <= page;
        pl->limit = (int64_t)(last_page ? left : page);
    }
    bool rewritten = false;
    if (q->table) {
        rc = rollup_run_select(q, r); /* one page: every row, no cursor */
    } else {
        if (q->pl->kind == PLAN_AGG && !q->pl->lq_post)
            rc = rollup_try_rewrite(q, tenant, r, &rewritten);
        if (!rc && !rewritten) rc = q->pl->kind == PLAN_ROWS ? run_rows(q, r) : run_agg(q, r);
    }
    if (!rc && last_page) r->next_cursor = NULL;
    if (!rc && q->pl->lq_post) rc = lq_post_run(q, r);
    if (rc == QR_ELIMIT && q->opts.allow_partial && !q->stopped) {
        /* over budget while producing the output: nothing sensible to return */
        return rc;
    }
    if (rc) return rc;
    rc = columns_fill(q, r);
    if (!rc && explain) rc = explain_rows(q, r);
    return rc;
}

int exec_run(db_t *db, const char *tenant, const char *query_text, const exec_opts *opts,
             exec_result **out, qr_diag *d)
{
    qr_diag local;
    if (!d) d = &local;
    qr_diag_init(d);
    exec_result *r = calloc(1, sizeof *r);
    if (!r) return QR_ENOMEM;
    exec_ctx q;
    memset(&q, 0, sizeof q);
    if (opts) q.opts = *opts;
    if (!q.opts.mem_budget_bytes) q.opts.mem_budget_bytes = EXEC_DEFAULT_MEM_BUDGET;
    qr_arena_init(&r->arena, 64 * 1024, q.opts.mem_budget_bytes);
    qr_arena_init(&q.scratch, 256 * 1024, q.opts.mem_budget_bytes);
    q.qa = &r->arena;
    q.d = d;
    q.text = query_text;
    q.now_ns = q.opts.now_ns ? q.opts.now_ns : qr_now_ns();
    q.start_mono_ns = qr_monotonic_ns();
    if (q.opts.timeout_ms)
        q.deadline_mono_ns = q.start_mono_ns + (int64_t)q.opts.timeout_ms * QR_NS_PER_MS;

    q.query_hash = qr_hash64(query_text, strlen(query_text));
    const char *tname = tenant ? tenant : DB_DEFAULT_TENANT;
    q.tenant_hash = qr_hash64(tname, strlen(tname));
    sql_stmt *stmt = NULL;
    int rc = sql_parse(query_text, strlen(query_text), q.qa, &stmt, d);
    if (!rc && q.opts.cursor) {
        rc = cursor_decode(&q, q.opts.cursor, &q.cursor);
        q.has_cursor = rc == 0;
        if (!rc) q.now_ns = q.cursor.now_ns; /* every page sees the first page's now() */
    }
    if (!rc) rc = run_stmt(&q, db, tenant, stmt, r);
    if (rc == QR_ELIMIT && r->arena.over_budget && d->code != QR_ELIMIT) {
        qr_diag_init(d);
        exec_over_budget(&q);
    }
    exec_regex_fini(&q);
    rollup_unbind_table(&q);
    for (size_t pi = 0; q.parts && pi < q.part_count; pi++) filter_part_fini(&q.parts[pi]);
    scan_workers_fini(&q);
    db_snapshot_free(q.snap);
    qr_arena_fini(&q.scratch);
    if (rc) {
        exec_result_free(r);
        return rc;
    }
    r->hits = q.hits;
    r->scanned = q.scanned;
    r->stats = q.st;
    r->partial = q.stopped;
    r->partial_reason = q.stop_reason;
    r->took_ms = (double)(qr_monotonic_ns() - q.start_mono_ns) / 1e6;
    *out = r;
    return 0;
}

void exec_result_free(exec_result *r)
{
    if (!r) return;
    qr_arena_fini(&r->arena);
    free(r);
}

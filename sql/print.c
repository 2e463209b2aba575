/* print — canonical text of a statement: what tests compare and EXPLAIN shows.
 *
 * Canonical means print(parse(print(parse(q)))) == print(parse(q)): keywords in capitals,
 * function names in lower case, one space around binary operators, parentheses only where
 * precedence needs them, identifiers quoted only when they must be, strings in one quoting
 * style per face, numbers in their shortest round-tripping form, durations as 1h30m.
 * LogQL statements print as LogQL, from the same expression nodes.
 *
 * Precedence levels (higher binds tighter): 1 OR, 2 AND, 3 NOT, 4 comparisons and pattern
 * operators (non-associative), 5 + -, 6 * / %, 7 unary minus, 8 primaries. A child printed
 * where the parent needs level L gets parentheses when its own level is lower. */
#include "sql/sql_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/event.h"

typedef struct printer {
    qr_buf *out;
    bool logql; /* strings in double quotes, and/or in lower case */
} printer;

static void put(printer *p, const char *s)
{
    qr_buf_append(p->out, s, strlen(s));
}

static void putn(printer *p, const char *s, size_t n)
{
    qr_buf_append(p->out, s, n);
}

size_t print_duration(int64_t ns, char *buf, size_t cap)
{
    static const struct {
        const char *unit;
        int64_t ns;
    } units[] = {
        {"d", 86400LL * 1000000000LL},
        {"h", 3600LL * 1000000000LL},
        {"m", 60LL * 1000000000LL},
        {"s", 1000000000LL},
        {"ms", 1000000LL},
        {"us", 1000LL},
        {"ns", 1LL},
    };
    size_t len = 0;
    uint64_t left;
    if (ns < 0) {
        len += (size_t)snprintf(buf + len, cap - len, "-");
        left = (uint64_t)0 - (uint64_t)ns;
    } else {
        left = (uint64_t)ns;
    }
    if (left == 0) return len + (size_t)snprintf(buf + len, cap - len, "0s");
    for (size_t idx = 0; idx < sizeof units / sizeof units[0] && len < cap; idx++) {
        uint64_t count = left / (uint64_t)units[idx].ns;
        if (count == 0) continue;
        left -= count * (uint64_t)units[idx].ns;
        len += (size_t)snprintf(buf + len, cap - len, "%" PRIu64 "%s", count, units[idx].unit);
    }
    return len < cap ? len : cap - 1;
}

static void print_float(printer *p, double v)
{
    char buf[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) break;
    }
    put(p, buf);
    if (!strpbrk(buf, ".eEn")) put(p, ".0"); /* stays a FLOAT when parsed again */
}

static void print_ident(printer *p, const char *name)
{
    size_t len = strlen(name);
    if (lex_ident_is_bare(name, len)) {
        putn(p, name, len);
        return;
    }
    put(p, "\"");
    for (size_t idx = 0; idx < len; idx++) {
        if (name[idx] == '"') put(p, "\"");
        putn(p, name + idx, 1);
    }
    put(p, "\"");
}

static void print_sql_string(printer *p, const char *s, size_t len)
{
    put(p, "'");
    for (size_t idx = 0; idx < len; idx++) {
        if (s[idx] == '\'') put(p, "'");
        putn(p, s + idx, 1);
    }
    put(p, "'");
}

/* LogQL strings: `raw` when that avoids escaping backslashes, else "..." with escapes. */
static void print_lq_string(printer *p, const char *s, size_t len)
{
    bool has_backslash = memchr(s, '\\', len) != NULL;
    bool raw_ok = has_backslash && !memchr(s, '`', len);
    for (size_t idx = 0; raw_ok && idx < len; idx++) {
        unsigned char c = (unsigned char)s[idx];
        if (c < 0x20 || c == 0x7f) raw_ok = false;
    }
    if (raw_ok) {
        put(p, "`");
        putn(p, s, len);
        put(p, "`");
        return;
    }
    put(p, "\"");
    for (size_t idx = 0; idx < len; idx++) {
        unsigned char c = (unsigned char)s[idx];
        char esc[8];
        switch (c) {
        case '"':
            put(p, "\\\"");
            break;
        case '\\':
            put(p, "\\\\");
            break;
        case '\n':
            put(p, "\\n");
            break;
        case '\t':
            put(p, "\\t");
            break;
        case '\r':
            put(p, "\\r");
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                snprintf(esc, sizeof esc, "\\x%02x", c);
                put(p, esc);
            } else {
                putn(p, s + idx, 1);
            }
        }
    }
    put(p, "\"");
}

static void print_string(printer *p, const char *s, size_t len)
{
    if (p->logql)
        print_lq_string(p, s, len);
    else
        print_sql_string(p, s, len);
}

/* ---- search strings -----------------------------------------------------------------------------
 */

static void print_search(qr_buf *out, const sql_search *node);

static void print_search_child(qr_buf *out, const sql_search *child, bool wrap)
{
    if (wrap) qr_buf_append(out, "(", 1);
    print_search(out, child);
    if (wrap) qr_buf_append(out, ")", 1);
}

static void print_search(qr_buf *out, const sql_search *node)
{
    switch (node->kind) {
    case SQL_SEARCH_AND:
    case SQL_SEARCH_OR:
        for (uint32_t idx = 0; idx < node->child_count; idx++) {
            const sql_search *child = node->children[idx];
            if (idx) {
                if (node->kind == SQL_SEARCH_OR)
                    qr_buf_append(out, " OR ", 4);
                else
                    qr_buf_append(out, " ", 1);
            }
            /* OR binds looser than AND: an OR inside an AND needs parentheses */
            bool wrap = node->kind == SQL_SEARCH_AND && child->kind == SQL_SEARCH_OR;
            print_search_child(out, child, wrap);
        }
        break;
    case SQL_SEARCH_NOT: {
        const sql_search *child = node->children[0];
        qr_buf_append(out, "NOT ", 4);
        print_search_child(out, child,
                           child->kind == SQL_SEARCH_AND || child->kind == SQL_SEARCH_OR);
        break;
    }
    case SQL_SEARCH_TERM:
        qr_buf_append(out, node->text, node->text_len);
        break;
    case SQL_SEARCH_PREFIX:
        qr_buf_append(out, node->text, node->text_len);
        qr_buf_append(out, "*", 1);
        break;
    case SQL_SEARCH_PHRASE:
        qr_buf_append(out, "\"", 1);
        for (uint32_t idx = 0; idx < node->text_len; idx++) {
            char c = node->text[idx];
            if (c == '"' || c == '\\') qr_buf_append(out, "\\", 1);
            qr_buf_append(out, &c, 1);
        }
        qr_buf_append(out, "\"", 1);
        break;
    case SQL_SEARCH_REGEX:
        qr_buf_append(out, "/", 1);
        for (uint32_t idx = 0; idx < node->text_len; idx++) {
            char c = node->text[idx];
            if (c == '\\' && idx + 1 < node->text_len) {
                /* an escape kept for the regex engine: copy both bytes */
                qr_buf_append(out, node->text + idx, 2);
                idx++;
                continue;
            }
            if (c == '/') qr_buf_append(out, "\\", 1);
            qr_buf_append(out, &c, 1);
        }
        qr_buf_append(out, "/", 1);
        break;
    case SQL_SEARCH_FIELD:
        qr_buf_append(out, node->text, node->text_len);
        qr_buf_append(out, ":", 1);
        print_search(out, node->children[0]);
        break;
    }
}

/* ---- expressions ------------------------------------------------------------------------------
 */

static int expr_level(const sql_expr *e)
{
    switch (e->kind) {
    case SQL_EXPR_OR:
        return 1;
    case SQL_EXPR_AND:
        return 2;
    case SQL_EXPR_UNARY:
        return e->u.unary.op == SQL_OP_NOT ? 3 : 7;
    case SQL_EXPR_IN:
    case SQL_EXPR_BETWEEN:
    case SQL_EXPR_IS_NULL:
        return 4;
    case SQL_EXPR_BINARY:
        switch (e->u.binary.op) {
        case SQL_OP_ADD:
        case SQL_OP_SUB:
            return 5;
        case SQL_OP_MUL:
        case SQL_OP_DIV:
        case SQL_OP_MOD:
            return 6;
        default:
            return 4;
        }
    default:
        return 8;
    }
}

static void print_expr(printer *p, const sql_expr *e, int min_level);

static void print_expr_list(printer *p, sql_expr *const *items, uint32_t count)
{
    for (uint32_t idx = 0; idx < count; idx++) {
        if (idx) put(p, ", ");
        print_expr(p, items[idx], 1);
    }
}

static const char *op_text(const sql_expr *e, bool logql)
{
    bool neg = e->u.binary.negated;
    switch (e->u.binary.op) {
    case SQL_OP_ADD:
        return "+";
    case SQL_OP_SUB:
        return "-";
    case SQL_OP_MUL:
        return "*";
    case SQL_OP_DIV:
        return "/";
    case SQL_OP_MOD:
        return "%";
    case SQL_OP_EQ:
        return "=";
    case SQL_OP_NE:
        return "!=";
    case SQL_OP_LT:
        return "<";
    case SQL_OP_LE:
        return "<=";
    case SQL_OP_GT:
        return ">";
    case SQL_OP_GE:
        return ">=";
    case SQL_OP_LIKE:
        return neg ? "NOT LIKE" : "LIKE";
    case SQL_OP_REGEX:
        if (logql) return neg ? "!~" : "=~";
        return neg ? "!~" : "~";
    case SQL_OP_CONTAINS:
        return neg ? "NOT CONTAINS" : "CONTAINS";
    case SQL_OP_MATCH:
        return neg ? "NOT MATCH" : "MATCH";
    default:
        return "?";
    }
}

static void print_expr(printer *p, const sql_expr *e, int min_level)
{
    char buf[64];
    int level = expr_level(e);
    bool wrap = level < min_level;
    if (wrap) put(p, "(");
    switch (e->kind) {
    case SQL_EXPR_NULL:
        put(p, "NULL");
        break;
    case SQL_EXPR_BOOL:
        put(p, e->u.b ? "TRUE" : "FALSE");
        break;
    case SQL_EXPR_INT:
        snprintf(buf, sizeof buf, "%" PRId64, e->u.i);
        put(p, buf);
        break;
    case SQL_EXPR_FLOAT:
        print_float(p, e->u.f);
        break;
    case SQL_EXPR_STRING:
        print_string(p, e->u.str.s, e->u.str.len);
        break;
    case SQL_EXPR_DURATION:
        print_duration(e->u.duration_ns, buf, sizeof buf);
        put(p, buf);
        break;
    case SQL_EXPR_LEVEL:
        put(p, qr_level_name((qr_level)e->u.level));
        break;
    case SQL_EXPR_FIELD:
        if (p->logql)
            putn(p, e->u.name.s, e->u.name.len);
        else
            print_ident(p, e->u.name.s);
        break;
    case SQL_EXPR_STAR:
        put(p, "*");
        break;
    case SQL_EXPR_UNARY:
        if (e->u.unary.op == SQL_OP_NOT) {
            put(p, "NOT ");
            print_expr(p, e->u.unary.arg, 3);
        } else {
            put(p, "-");
            print_expr(p, e->u.unary.arg, 8);
        }
        break;
    case SQL_EXPR_BINARY: {
        int lhs_level = level, rhs_level = level + 1;
        if (level == 4) lhs_level = rhs_level = 5; /* comparisons do not chain */
        print_expr(p, e->u.binary.lhs, lhs_level);
        put(p, " ");
        put(p, op_text(e, p->logql));
        put(p, " ");
        if (e->u.binary.op == SQL_OP_MATCH && e->u.binary.search) {
            qr_buf text;
            qr_buf_init(&text);
            print_search(&text, e->u.binary.search);
            if (text.oom) p->out->oom = true;
            print_string(p, text.len ? (const char *)text.data : "", text.len);
            qr_buf_fini(&text);
        } else {
            print_expr(p, e->u.binary.rhs, rhs_level);
        }
        break;
    }
    case SQL_EXPR_AND:
    case SQL_EXPR_OR:
        for (uint32_t idx = 0; idx < e->u.list.count; idx++) {
            if (idx) {
                if (e->kind == SQL_EXPR_AND)
                    put(p, p->logql ? " and " : " AND ");
                else
                    put(p, p->logql ? " or " : " OR ");
            }
            print_expr(p, e->u.list.items[idx], level + 1);
        }
        break;
    case SQL_EXPR_IN:
        print_expr(p, e->u.in.arg, 5);
        put(p, e->u.in.negated ? " NOT IN (" : " IN (");
        print_expr_list(p, e->u.in.items, e->u.in.count);
        put(p, ")");
        break;
    case SQL_EXPR_BETWEEN:
        print_expr(p, e->u.between.arg, 5);
        put(p, e->u.between.negated ? " NOT BETWEEN " : " BETWEEN ");
        print_expr(p, e->u.between.lo, 5);
        put(p, " AND ");
        print_expr(p, e->u.between.hi, 5);
        break;
    case SQL_EXPR_IS_NULL:
        print_expr(p, e->u.is_null.arg, 5);
        put(p, e->u.is_null.negated ? " IS NOT NULL" : " IS NULL");
        break;
    case SQL_EXPR_CALL:
        put(p, e->u.call.name);
        put(p, "(");
        if (e->u.call.star) put(p, "*");
        print_expr_list(p, e->u.call.args, e->u.call.arg_count);
        put(p, ")");
        break;
    }
    if (wrap) put(p, ")");
}

int sql_print_expr(const sql_expr *expr, qr_buf *out)
{
    printer p = {out, false};
    print_expr(&p, expr, 1);
    return qr_buf_ok(out) ? 0 : QR_ENOMEM;
}

/* ---- SQL statements -------------------------------------------------------------------------- */

static void print_select(printer *p, const sql_select *s)
{
    char buf[32];
    put(p, "SELECT ");
    for (uint32_t idx = 0; idx < s->item_count; idx++) {
        if (idx) put(p, ", ");
        print_expr(p, s->items[idx].expr, 1);
        if (s->items[idx].alias) {
            put(p, " AS ");
            print_ident(p, s->items[idx].alias);
        }
    }
    if (s->from) {
        put(p, " FROM ");
        print_ident(p, s->from);
    }
    if (s->where) {
        put(p, " WHERE ");
        print_expr(p, s->where, 1);
    }
    if (s->group_count) {
        put(p, " GROUP BY ");
        print_expr_list(p, s->group_by, s->group_count);
    }
    if (s->having) {
        put(p, " HAVING ");
        print_expr(p, s->having, 1);
    }
    for (uint32_t idx = 0; idx < s->order_count; idx++) {
        put(p, idx ? ", " : " ORDER BY ");
        print_expr(p, s->order_by[idx].expr, 1);
        if (s->order_by[idx].desc) put(p, " DESC");
    }
    if (s->limit >= 0) {
        snprintf(buf, sizeof buf, " LIMIT %" PRId64, s->limit);
        put(p, buf);
    }
    if (s->offset >= 0) {
        snprintf(buf, sizeof buf, " OFFSET %" PRId64, s->offset);
        put(p, buf);
    }
}

static void print_options(printer *p, const char *keyword, const sql_option *options,
                          uint32_t count)
{
    if (!count) return;
    put(p, keyword);
    put(p, " (");
    for (uint32_t idx = 0; idx < count; idx++) {
        if (idx) put(p, ", ");
        print_ident(p, options[idx].key);
        put(p, " = ");
        print_expr(p, options[idx].value, 1);
    }
    put(p, ")");
}

static void print_alert(printer *p, const sql_alert *a)
{
    char buf[64];
    put(p, "CREATE ALERT ");
    print_ident(p, a->name);
    put(p, " AS ");
    print_select(p, a->select);
    print_duration(a->window_ns, buf, sizeof buf);
    put(p, " WINDOW ");
    put(p, buf);
    print_duration(a->every_ns, buf, sizeof buf);
    put(p, " EVERY ");
    put(p, buf);
    put(p, " WHEN ");
    print_expr(p, a->when, 1);
    if (a->for_ns > 0) {
        print_duration(a->for_ns, buf, sizeof buf);
        put(p, " FOR ");
        put(p, buf);
    }
    if (a->cooldown_ns >= 0) {
        print_duration(a->cooldown_ns, buf, sizeof buf);
        put(p, " COOLDOWN ");
        put(p, buf);
    }
    if (a->label_count) put(p, " ");
    print_options(p, "LABELS", a->labels, a->label_count);
    if (a->annotation_count) put(p, " ");
    print_options(p, "ANNOTATIONS", a->annotations, a->annotation_count);
    put(p, " NOTIFY ");
    for (uint32_t idx = 0; idx < a->channel_count; idx++) {
        static const char *const kinds[] = {"WEBHOOK", "SLACK", "PAGERDUTY", "ALERTMANAGER"};
        const sql_channel *c = &a->channels[idx];
        if (idx) put(p, ", ");
        put(p, kinds[c->kind]);
        put(p, " ");
        print_sql_string(p, c->target, strlen(c->target));
        if (c->url) {
            put(p, " URL ");
            print_sql_string(p, c->url, strlen(c->url));
        }
    }
}

/* ---- LogQL ------------------------------------------------------------------------------------
 */

static void print_lq_log(printer *p, const sql_lq_log *log)
{
    put(p, "{");
    for (uint32_t idx = 0; idx < log->matcher_count; idx++) {
        const sql_expr *m = log->matchers[idx];
        if (idx) put(p, ", ");
        putn(p, m->u.binary.lhs->u.name.s, m->u.binary.lhs->u.name.len);
        put(p, op_text(m, true));
        print_lq_string(p, m->u.binary.rhs->u.str.s, m->u.binary.rhs->u.str.len);
    }
    put(p, "}");
    for (uint32_t idx = 0; idx < log->stage_count; idx++) {
        const sql_lq_stage *s = &log->stages[idx];
        const sql_expr *f = s->filter;
        switch (s->kind) {
        case SQL_LQ_LINE_FILTER:
            if (f->u.binary.op == SQL_OP_CONTAINS)
                put(p, f->u.binary.negated ? " != " : " |= ");
            else
                put(p, f->u.binary.negated ? " !~ " : " |~ ");
            print_lq_string(p, f->u.binary.rhs->u.str.s, f->u.binary.rhs->u.str.len);
            break;
        case SQL_LQ_LABEL_FILTER:
            put(p, " | ");
            print_expr(p, f, 1);
            break;
        case SQL_LQ_JSON:
            put(p, " | json");
            break;
        case SQL_LQ_LOGFMT:
            put(p, " | logfmt");
            break;
        case SQL_LQ_LINE_FORMAT:
            put(p, " | line_format ");
            print_lq_string(p, s->text, s->text_len);
            break;
        case SQL_LQ_UNWRAP:
            put(p, " | unwrap ");
            putn(p, s->text, s->text_len);
            break;
        }
    }
}

static void print_lq_param(printer *p, double v)
{
    char buf[40];
    if (v == (double)(int64_t)v && v > -1e15 && v < 1e15) {
        snprintf(buf, sizeof buf, "%" PRId64, (int64_t)v);
        put(p, buf);
    } else {
        print_float(p, v);
    }
}

static void print_lq_metric(printer *p, const sql_lq_metric *m)
{
    char buf[64];
    put(p, m->func);
    if (m->grouping != SQL_LQ_GROUP_NONE) {
        put(p, m->grouping == SQL_LQ_GROUP_BY ? " by (" : " without (");
        for (uint32_t idx = 0; idx < m->label_count; idx++) {
            if (idx) put(p, ", ");
            put(p, m->labels[idx]);
        }
        put(p, ") ");
    }
    put(p, "(");
    if (m->has_param) {
        print_lq_param(p, m->param);
        put(p, ", ");
    }
    if (m->log) {
        print_lq_log(p, m->log);
        if (m->range_ns > 0) {
            print_duration(m->range_ns, buf, sizeof buf);
            put(p, m->log->stage_count ? " [" : "[");
            put(p, buf);
            put(p, "]");
        }
    } else if (m->inner) {
        print_lq_metric(p, m->inner);
    }
    put(p, ")");
}

static void print_stmt(printer *p, const sql_stmt *s)
{
    switch (s->kind) {
    case SQL_STMT_SELECT:
        print_select(p, s->u.select);
        break;
    case SQL_STMT_LOGQL:
        p->logql = true;
        if (s->u.logql->metric)
            print_lq_metric(p, s->u.logql->metric);
        else
            print_lq_log(p, s->u.logql->log);
        p->logql = false;
        break;
    case SQL_STMT_SHOW: {
        static const char *const what[] = {"SERVICES", "FIELDS", "TABLES", "ALERTS", "ROLLUPS"};
        put(p, "SHOW ");
        put(p, what[s->u.show]);
        break;
    }
    case SQL_STMT_EXPLAIN:
        put(p, "EXPLAIN ");
        print_stmt(p, s->u.explain);
        break;
    case SQL_STMT_CREATE_ROLLUP:
        put(p, "CREATE ROLLUP ");
        print_ident(p, s->u.rollup->name);
        put(p, " AS ");
        print_select(p, s->u.rollup->select);
        if (s->u.rollup->option_count) put(p, " ");
        print_options(p, "WITH", s->u.rollup->options, s->u.rollup->option_count);
        break;
    case SQL_STMT_CREATE_ALERT:
        print_alert(p, s->u.alert);
        break;
    case SQL_STMT_DROP:
        put(p, s->u.drop.object == SQL_OBJECT_ALERT ? "DROP ALERT " : "DROP ROLLUP ");
        print_ident(p, s->u.drop.name);
        break;
    case SQL_STMT_MUTE: {
        char buf[64];
        put(p, "MUTE ALERT ");
        print_ident(p, s->u.mute.name);
        print_duration(s->u.mute.duration_ns, buf, sizeof buf);
        put(p, " FOR ");
        put(p, buf);
        break;
    }
    case SQL_STMT_UNMUTE:
        put(p, "UNMUTE ALERT ");
        print_ident(p, s->u.unmute);
        break;
    case SQL_STMT_DESCRIBE:
        put(p, "DESCRIBE ");
        print_ident(p, s->u.describe);
        break;
    }
}

int sql_print(const sql_stmt *stmt, qr_buf *out)
{
    printer p = {out, false};
    print_stmt(&p, stmt);
    return qr_buf_ok(out) ? 0 : QR_ENOMEM;
}

/* tail — per-event filters, the subscriber hub and the resume ring (contract in tail.h). */
#include "server/tail.h"

#include "common/qr_arena.h"
#include "common/qr_jsonw.h"
#include "common/qr_time.h"
#include "sql/query.h"
#include "storage/tokenize.h"

#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- compiled filter ---- */

enum { TV_NULL = -1, TV_FALSE = 0, TV_TRUE = 1 };

typedef enum tf_kind {
    TF_AND,
    TF_OR,
    TF_NOT,
    TF_CMP,      /* col op constant */
    TF_REGEX,    /* col ~ re */
    TF_CONTAINS, /* col CONTAINS text */
    TF_SEARCH,   /* MATCH: search tree over msg */
} tf_kind;

enum { COL_SERVICE, COL_LEVEL, COL_HOST, COL_MSG, COL_FIELD };

typedef enum cv_kind { CV_STR, CV_NUM, CV_LEVEL, CV_DUR, CV_BOOL } cv_kind;

typedef struct tf_node tf_node;
struct tf_node {
    tf_kind kind;
    int col;          /* COL_* */
    const char *name; /* field key for COL_FIELD */
    uint32_t name_len;
    sql_op op;
    bool negated;
    /* constant */
    cv_kind ck;
    const char *s;
    uint32_t s_len;
    double num;
    bool num_ok; /* the string constant reads as a number */
    int64_t i;   /* level, duration ns, bool */
    regex_t *re;
    const sql_search *search;
    uint32_t child_count;
    tf_node **children;
};

struct tail_filter {
    qr_arena arena;
    tf_node *root; /* NULL: everything matches */
    regex_t **regexes;
    size_t regex_count, regex_cap;
    /* MATCH /re/ terms: compiled on first use, then reused for every event (a filter is
     * evaluated by one thread at a time); the regex_t lives in regexes above */
    const sql_search **search_re_node;
    regex_t **search_re;
    size_t search_re_count, search_re_cap;
    qr_buf scratch;
    /* tokens of the current message for MATCH */
    qr_buf tok_text;
    uint32_t *tok_off, *tok_len;
    size_t tok_count, tok_cap;
    bool tok_ok;
};

void tail_filter_free(tail_filter *f)
{
    if (!f) return;
    for (size_t idx = 0; idx < f->regex_count; idx++) {
        regfree(f->regexes[idx]);
        free(f->regexes[idx]);
    }
    free(f->regexes);
    free(f->search_re_node);
    free(f->search_re);
    free(f->tok_off);
    free(f->tok_len);
    qr_buf_fini(&f->scratch);
    qr_buf_fini(&f->tok_text);
    qr_arena_fini(&f->arena);
    free(f);
}

static int err_at(qr_diag *d, sql_pos pos, int rc, const char *what)
{
    rc = qr_diag_set(d, rc, "line %u, column %u: %s", pos.line, pos.column, what);
    if (d) {
        d->line = (int32_t)pos.line;
        d->column = (int32_t)pos.column;
        d->offset = pos.offset;
    }
    return rc;
}

static int regex_add(tail_filter *f, const char *pat, size_t len, bool anchored, sql_pos pos,
                     regex_t **out, qr_diag *d)
{
    qr_buf b;
    qr_buf_init(&b);
    if (anchored) qr_buf_append(&b, "^(", 2);
    bool in_bracket = false;
    for (size_t idx = 0; idx < len; idx++) {
        char c = pat[idx];
        if (c == '\\' && idx + 1 < len) {
            char n = pat[idx + 1];
            const char *cls = NULL;
            if (n == 'd') cls = in_bracket ? "0-9" : "[0-9]";
            if (n == 'D' && !in_bracket) cls = "[^0-9]";
            if (n == 'w') cls = in_bracket ? "[:alnum:]_" : "[[:alnum:]_]";
            if (n == 'W' && !in_bracket) cls = "[^[:alnum:]_]";
            if (n == 's') cls = in_bracket ? "[:space:]" : "[[:space:]]";
            if (n == 'S' && !in_bracket) cls = "[^[:space:]]";
            if (cls)
                qr_buf_append(&b, cls, strlen(cls));
            else
                qr_buf_append(&b, pat + idx, 2);
            idx++;
            continue;
        }
        if (c == '(' && !in_bracket && idx + 2 < len && pat[idx + 1] == '?' &&
            pat[idx + 2] == ':') {
            qr_buf_u8(&b, '(');
            idx += 2;
            continue;
        }
        if (c == '[' && !in_bracket)
            in_bracket = true;
        else if (c == ']' && in_bracket && idx > 0 && pat[idx - 1] != '[' &&
                 !(idx > 1 && pat[idx - 1] == '^' && pat[idx - 2] == '['))
            in_bracket = false;
        qr_buf_u8(&b, (uint8_t)c);
    }
    if (anchored) qr_buf_append(&b, ")$", 2);
    qr_buf_u8(&b, 0);
    if (!qr_buf_ok(&b)) {
        qr_buf_fini(&b);
        return QR_ENOMEM;
    }
    if (f->regex_count == f->regex_cap) {
        size_t cap = f->regex_cap ? f->regex_cap * 2 : 4;
        regex_t **res = realloc(f->regexes, cap * sizeof *res);
        if (!res) {
            qr_buf_fini(&b);
            return QR_ENOMEM;
        }
        f->regexes = res;
        f->regex_cap = cap;
    }
    regex_t *re = malloc(sizeof *re);
    if (!re) {
        qr_buf_fini(&b);
        return QR_ENOMEM;
    }
    int rc = regcomp(re, (const char *)b.data, REG_EXTENDED | REG_NOSUB);
    qr_buf_fini(&b);
    if (rc) {
        char msg[200], what[300];
        regerror(rc, re, msg, sizeof msg);
        free(re);
        snprintf(what, sizeof what, "bad regex /%.*s/: %s", (int)(len > 60 ? 60 : len), pat, msg);
        return err_at(d, pos, QR_ESYNTAX, what);
    }
    f->regexes[f->regex_count++] = re;
    *out = re;
    return 0;
}

static tf_node *node_new(tail_filter *f, tf_kind kind)
{
    tf_node *n = qr_arena_alloc(&f->arena, sizeof *n);
    if (n) {
        memset(n, 0, sizeof *n);
        n->kind = kind;
    }
    return n;
}

static int col_of(const sql_expr *e, tf_node *n)
{
    const char *s = e->u.name.s;
    uint32_t len = e->u.name.len;
    n->col = COL_FIELD;
    if (len == 7 && !memcmp(s, "service", 7)) n->col = COL_SERVICE;
    if (len == 5 && !memcmp(s, "level", 5)) n->col = COL_LEVEL;
    if (len == 4 && !memcmp(s, "host", 4)) n->col = COL_HOST;
    if (len == 3 && !memcmp(s, "msg", 3)) n->col = COL_MSG;
    n->name = s;
    n->name_len = len;
    return 0;
}

static int const_of(const sql_expr *c, tf_node *n, qr_diag *d)
{
    switch (c->kind) {
    case SQL_EXPR_STRING: {
        n->ck = CV_STR;
        n->s = c->u.str.s;
        n->s_len = c->u.str.len;
        char *end = NULL;
        n->num = n->s_len ? strtod(n->s, &end) : 0;
        n->num_ok = n->s_len && end == n->s + n->s_len && isfinite(n->num);
        if (n->col == COL_LEVEL) {
            qr_level lv;
            if (!qr_level_parse(n->s, n->s_len, &lv)) {
                char what[200];
                snprintf(what, sizeof what, "'%.*s' is not a level",
                         (int)(n->s_len > 40 ? 40 : n->s_len), n->s);
                return err_at(d, c->pos, QR_ESYNTAX, what);
            }
            n->ck = CV_LEVEL;
            n->i = lv;
        }
        return 0;
    }
    case SQL_EXPR_INT:
        n->ck = CV_NUM;
        n->num = (double)c->u.i;
        return 0;
    case SQL_EXPR_FLOAT:
        n->ck = CV_NUM;
        n->num = c->u.f;
        return 0;
    case SQL_EXPR_DURATION:
        n->ck = CV_DUR;
        n->i = c->u.duration_ns;
        return 0;
    case SQL_EXPR_LEVEL:
        n->ck = CV_LEVEL;
        n->i = c->u.level;
        return 0;
    case SQL_EXPR_BOOL:
        n->ck = CV_BOOL;
        n->i = c->u.b;
        return 0;
    default:
        return err_at(d, c->pos, QR_ESYNTAX, "live tail compares fields with literals only");
    }
}

static int compile_expr(tail_filter *f, const sql_expr *e, tf_node **out, qr_diag *d)
{
    tf_node *n = NULL;
    int rc;
    switch (e->kind) {
    case SQL_EXPR_AND:
    case SQL_EXPR_OR:
        n = node_new(f, e->kind == SQL_EXPR_AND ? TF_AND : TF_OR);
        if (!n) return QR_ENOMEM;
        n->child_count = e->u.list.count;
        n->children = qr_arena_alloc(&f->arena, sizeof *n->children * e->u.list.count);
        if (!n->children) return QR_ENOMEM;
        for (uint32_t idx = 0; idx < e->u.list.count; idx++) {
            rc = compile_expr(f, e->u.list.items[idx], &n->children[idx], d);
            if (rc) return rc;
        }
        break;
    case SQL_EXPR_UNARY:
        if (e->u.unary.op != SQL_OP_NOT) goto unsupported;
        n = node_new(f, TF_NOT);
        if (!n) return QR_ENOMEM;
        n->child_count = 1;
        n->children = qr_arena_alloc(&f->arena, sizeof *n->children);
        if (!n->children) return QR_ENOMEM;
        rc = compile_expr(f, e->u.unary.arg, &n->children[0], d);
        if (rc) return rc;
        break;
    case SQL_EXPR_IN: {
        if (e->u.in.arg->kind != SQL_EXPR_FIELD) goto unsupported;
        tf_node * or = node_new(f, TF_OR);
        if (! or) return QR_ENOMEM;
        or->child_count = e->u.in.count;
        or->children = qr_arena_alloc(&f->arena, sizeof * or->children * e->u.in.count);
        if (! or->children) return QR_ENOMEM;
        for (uint32_t idx = 0; idx < e->u.in.count; idx++) {
            tf_node *c = node_new(f, TF_CMP);
            if (!c) return QR_ENOMEM;
            col_of(e->u.in.arg, c);
            c->op = SQL_OP_EQ;
            rc = const_of(e->u.in.items[idx], c, d);
            if (rc) return rc;
            or->children[idx] = c;
        }
        n = or ;
        if (e->u.in.negated) {
            n = node_new(f, TF_NOT);
            if (!n) return QR_ENOMEM;
            n->child_count = 1;
            n->children = qr_arena_alloc(&f->arena, sizeof *n->children);
            if (!n->children) return QR_ENOMEM;
            n->children[0] = or ;
        }
        break;
    }
    case SQL_EXPR_BINARY: {
        const sql_expr *lhs = e->u.binary.lhs, *rhs = e->u.binary.rhs;
        sql_op op = e->u.binary.op;
        if (lhs->kind != SQL_EXPR_FIELD) goto unsupported;
        if (op == SQL_OP_MATCH) {
            n = node_new(f, TF_SEARCH);
            if (!n) return QR_ENOMEM;
            col_of(lhs, n);
            n->search = e->u.binary.search;
            n->negated = e->u.binary.negated;
            break;
        }
        if (op == SQL_OP_REGEX || op == SQL_OP_CONTAINS) {
            if (rhs->kind != SQL_EXPR_STRING) goto unsupported;
            n = node_new(f, op == SQL_OP_REGEX ? TF_REGEX : TF_CONTAINS);
            if (!n) return QR_ENOMEM;
            col_of(lhs, n);
            n->negated = e->u.binary.negated;
            n->s = rhs->u.str.s;
            n->s_len = rhs->u.str.len;
            if (op == SQL_OP_REGEX) {
                rc = regex_add(f, n->s, n->s_len, e->u.binary.anchored, rhs->pos, &n->re, d);
                if (rc) return rc;
            }
            break;
        }
        if (op < SQL_OP_EQ || op > SQL_OP_GE) goto unsupported;
        n = node_new(f, TF_CMP);
        if (!n) return QR_ENOMEM;
        col_of(lhs, n);
        n->op = op;
        rc = const_of(rhs, n, d);
        if (rc) return rc;
        break;
    }
    default:
        goto unsupported;
    }
    *out = n;
    return 0;
unsupported:
    return err_at(d, e->pos, QR_ESYNTAX, "not supported in a live tail filter");
}

static tf_node *and_of(tail_filter *f, tf_node **items, uint32_t count)
{
    if (count == 0) return NULL;
    if (count == 1) return items[0];
    tf_node *n = node_new(f, TF_AND);
    if (!n) return NULL;
    n->child_count = count;
    n->children = items;
    return n;
}

static tail_filter *filter_new(void)
{
    tail_filter *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    qr_arena_init(&f->arena, 0, 0);
    qr_buf_init(&f->scratch);
    qr_buf_init(&f->tok_text);
    return f;
}

int tail_filter_compile_logql(const char *text, size_t len, tail_filter **out, qr_diag *d)
{
    tail_filter *f = filter_new();
    if (!f) return QR_ENOMEM;
    sql_stmt *st = NULL;
    int rc = sql_parse(text, len, &f->arena, &st, d);
    if (rc) goto fail;
    if (st->kind != SQL_STMT_LOGQL || !st->u.logql->log) {
        rc = err_at(d, st->pos, QR_ESYNTAX,
                    "live tail needs a LogQL log query, like {service=\"api\"} |= \"error\"");
        goto fail;
    }
    const sql_lq_log *lg = st->u.logql->log;
    uint32_t cap = lg->matcher_count + lg->stage_count;
    tf_node **items = qr_arena_alloc(&f->arena, sizeof *items * (cap ? cap : 1));
    if (!items) {
        rc = QR_ENOMEM;
        goto fail;
    }
    uint32_t count = 0;
    for (uint32_t idx = 0; idx < lg->matcher_count; idx++) {
        rc = compile_expr(f, lg->matchers[idx], &items[count++], d);
        if (rc) goto fail;
    }
    for (uint32_t idx = 0; idx < lg->stage_count; idx++) {
        const sql_lq_stage *sg = &lg->stages[idx];
        if (sg->kind != SQL_LQ_LINE_FILTER && sg->kind != SQL_LQ_LABEL_FILTER) {
            rc = err_at(d, sg->pos, QR_ESYNTAX,
                        "live tail supports line and label filters only (no | json, | logfmt, "
                        "| line_format, | unwrap)");
            goto fail;
        }
        rc = compile_expr(f, sg->filter, &items[count++], d);
        if (rc) goto fail;
    }
    f->root = and_of(f, items, count);
    if (count && !f->root) {
        rc = QR_ENOMEM;
        goto fail;
    }
    *out = f;
    return 0;
fail:
    tail_filter_free(f);
    return rc;
}

static void sql_string_lit(qr_buf *o, const char *s, size_t len)
{
    qr_buf_u8(o, '\'');
    for (size_t pos = 0; pos < len; pos++) {
        if (s[pos] == '\'') qr_buf_u8(o, '\'');
        qr_buf_u8(o, (uint8_t)s[pos]);
    }
    qr_buf_u8(o, '\'');
}

/* Appends "col IN ('a', 'b')" for a comma-separated list. */
static int list_sql(qr_buf *w, const char *col, const char *list, bool level, qr_diag *d)
{
    qr_buf_append(w, col, strlen(col));
    qr_buf_append(w, " IN (", 5);
    const char *p = list;
    bool first = true;
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && *a == ' ') a++;
        while (b > a && b[-1] == ' ') b--;
        if (b > a) {
            if (!first) qr_buf_append(w, ", ", 2);
            first = false;
            if (level) {
                qr_level lv;
                if (!qr_level_parse(a, (size_t)(b - a), &lv))
                    return qr_diag_set(d, QR_EINVAL, "level \"%.*s\" is not a level name",
                                       (int)(b - a > 40 ? 40 : b - a), a);
                qr_buf_append(w, qr_level_name(lv), strlen(qr_level_name(lv)));
            } else {
                sql_string_lit(w, a, (size_t)(b - a));
            }
        }
        p = *end ? end + 1 : end;
    }
    if (first) return qr_diag_set(d, QR_EINVAL, "%s= lists nothing", col);
    qr_buf_u8(w, ')');
    return 0;
}

int tail_filter_compile_params(const char *service, const char *level, const char *q,
                               tail_filter **out, qr_diag *d)
{
    qr_buf w;
    qr_buf_init(&w);
    static const char prefix[] = "SELECT 1 FROM logs WHERE ";
    qr_buf_append(&w, prefix, sizeof prefix - 1);
    bool any = false;
    int rc = 0;
    if (service && *service) {
        rc = list_sql(&w, "service", service, false, d);
        any = true;
    }
    if (!rc && level && *level) {
        if (any) qr_buf_append(&w, " AND ", 5);
        rc = list_sql(&w, "level", level, true, d);
        any = true;
    }
    size_t q_at = 0;
    if (!rc && q && *q) {
        if (any) qr_buf_append(&w, " AND ", 5);
        qr_buf_append(&w, "msg MATCH ", 10);
        q_at = w.len + 1;
        sql_string_lit(&w, q, strlen(q));
        any = true;
    }
    if (rc || !qr_buf_ok(&w)) {
        qr_buf_fini(&w);
        return rc ? rc : QR_ENOMEM;
    }
    tail_filter *f = filter_new();
    if (!f) {
        qr_buf_fini(&w);
        return QR_ENOMEM;
    }
    if (any) {
        sql_stmt *st = NULL;
        qr_diag pd;
        qr_diag_init(&pd);
        rc = sql_parse((const char *)w.data, w.len, &f->arena, &st, &pd);
        if (rc) {
            /* only q can be wrong: point into it */
            int64_t col = pd.offset >= (int64_t)q_at ? pd.offset - (int64_t)q_at + 1 : 1;
            const char *msg = strstr(pd.msg, ": ");
            rc =
                qr_diag_set(d, rc, "in q, column %lld: %s", (long long)col, msg ? msg + 2 : pd.msg);
        } else {
            rc = compile_expr(f, st->u.select->where, &f->root, d);
        }
    }
    qr_buf_fini(&w);
    if (rc) {
        tail_filter_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

/* ---- evaluation ---- */

typedef struct ev_val {
    cv_kind kind; /* CV_STR, CV_NUM, CV_LEVEL, CV_BOOL */
    qr_str s;
    double num;
    int64_t i;
} ev_val;

static bool event_value(const qr_batch *b, const qr_event *e, const tf_node *n, ev_val *v)
{
    switch (n->col) {
    case COL_SERVICE:
        v->kind = CV_STR;
        v->s = e->service;
        return true;
    case COL_HOST:
        v->kind = CV_STR;
        v->s = e->host;
        return true;
    case COL_MSG:
        v->kind = CV_STR;
        v->s = e->msg;
        return true;
    case COL_LEVEL:
        v->kind = CV_LEVEL;
        v->i = e->level;
        return true;
    default:
        break;
    }
    const qr_field *fs = qr_event_fields(b, e);
    for (uint32_t idx = 0; idx < e->field_count; idx++) {
        const qr_field *fl = &fs[idx];
        if (fl->key.len != n->name_len || memcmp(fl->key.ptr, n->name, n->name_len) != 0) continue;
        switch (fl->type) {
        case QR_FT_STRING:
            v->kind = CV_STR;
            v->s = fl->v.s;
            return true;
        case QR_FT_INT:
            v->kind = CV_NUM;
            v->num = (double)fl->v.i;
            v->i = fl->v.i;
            return true;
        case QR_FT_FLOAT:
            v->kind = CV_NUM;
            v->num = fl->v.f;
            return true;
        case QR_FT_BOOL:
            v->kind = CV_BOOL;
            v->i = fl->v.b;
            return true;
        default:
            return false;
        }
    }
    return false;
}

/* The value as text (for CONTAINS, regexes, search) into scratch, NUL-terminated. */
static const char *value_text(tail_filter *f, const ev_val *v, size_t *len)
{
    qr_buf *s = &f->scratch;
    s->len = 0;
    char tmp[64];
    int n = 0;
    switch (v->kind) {
    case CV_STR:
        qr_buf_append(s, v->s.ptr, v->s.len);
        break;
    case CV_NUM:
        n = snprintf(tmp, sizeof tmp, "%.15g", v->num);
        qr_buf_append(s, tmp, (size_t)n);
        break;
    case CV_LEVEL:
        qr_buf_append(s, qr_level_name((qr_level)v->i), strlen(qr_level_name((qr_level)v->i)));
        break;
    case CV_BOOL:
        qr_buf_append(s, v->i ? "true" : "false", v->i ? 4 : 5);
        break;
    default:
        break;
    }
    qr_buf_u8(s, 0);
    if (!qr_buf_ok(s)) return NULL;
    *len = s->len - 1;
    return (const char *)s->data;
}

static int cmp_result(sql_op op, int c)
{
    switch (op) {
    case SQL_OP_EQ:
        return c == 0;
    case SQL_OP_NE:
        return c != 0;
    case SQL_OP_LT:
        return c < 0;
    case SQL_OP_LE:
        return c <= 0;
    case SQL_OP_GT:
        return c > 0;
    case SQL_OP_GE:
        return c >= 0;
    default:
        return TV_NULL;
    }
}

static int eval_cmp(tail_filter *f, const tf_node *n, const ev_val *v)
{
    int c;
    if (n->ck == CV_LEVEL) {
        if (v->kind == CV_LEVEL) {
            c = v->i < n->i ? -1 : v->i > n->i;
        } else if (v->kind == CV_STR) {
            qr_level lv;
            if (!qr_level_parse(v->s.ptr, v->s.len, &lv)) return TV_NULL;
            c = (int64_t)lv < n->i ? -1 : (int64_t)lv > n->i;
        } else {
            return TV_NULL;
        }
        return cmp_result(n->op, c);
    }
    if (n->ck == CV_STR) {
        if (v->kind == CV_STR) {
            uint32_t m = v->s.len < n->s_len ? v->s.len : n->s_len;
            c = memcmp(v->s.ptr, n->s, m);
            if (c == 0) c = v->s.len < n->s_len ? -1 : v->s.len > n->s_len;
            return cmp_result(n->op, c);
        }
        if (v->kind == CV_NUM && n->num_ok) {
            c = v->num < n->num ? -1 : v->num > n->num;
            return cmp_result(n->op, c);
        }
        if (v->kind == CV_BOOL && (n->op == SQL_OP_EQ || n->op == SQL_OP_NE)) {
            bool t = n->s_len == 4 && !memcmp(n->s, "true", 4);
            bool fl = n->s_len == 5 && !memcmp(n->s, "false", 5);
            if (!t && !fl) return TV_NULL;
            return cmp_result(n->op, (v->i != 0) != t);
        }
        return TV_NULL;
    }
    if (n->ck == CV_NUM) {
        double x;
        if (v->kind == CV_NUM) {
            x = v->num;
        } else if (v->kind == CV_STR) {
            size_t len;
            const char *t = value_text(f, v, &len);
            char *end = NULL;
            if (!t || !len) return TV_NULL;
            x = strtod(t, &end);
            if (end != t + len) return TV_NULL;
        } else {
            return TV_NULL;
        }
        c = x < n->num ? -1 : x > n->num;
        return cmp_result(n->op, c);
    }
    if (n->ck == CV_DUR) {
        int64_t ns;
        if (v->kind != CV_STR || qr_duration_parse(v->s.ptr, v->s.len, &ns)) return TV_NULL;
        c = ns < n->i ? -1 : ns > n->i;
        return cmp_result(n->op, c);
    }
    if (n->ck == CV_BOOL) {
        if (v->kind != CV_BOOL || (n->op != SQL_OP_EQ && n->op != SQL_OP_NE)) return TV_NULL;
        return cmp_result(n->op, (v->i != 0) != (n->i != 0));
    }
    return TV_NULL;
}

static int tok_collect(void *ctx, const char *tok, size_t len, size_t offset)
{
    tail_filter *f = ctx;
    (void)offset;
    if (f->tok_count == f->tok_cap) {
        size_t cap = f->tok_cap ? f->tok_cap * 2 : 64;
        uint32_t *o = realloc(f->tok_off, cap * sizeof *o);
        if (!o) return QR_ENOMEM;
        f->tok_off = o;
        uint32_t *l = realloc(f->tok_len, cap * sizeof *l);
        if (!l) return QR_ENOMEM;
        f->tok_len = l;
        f->tok_cap = cap;
    }
    f->tok_off[f->tok_count] = (uint32_t)f->tok_text.len;
    f->tok_len[f->tok_count] = (uint32_t)len;
    f->tok_count++;
    qr_buf_append(&f->tok_text, tok, len);
    return 0;
}

static bool tokenize_into(tail_filter *f, const char *text, size_t len)
{
    f->tok_count = 0;
    f->tok_text.len = 0;
    return qr_tokenize(text, len, tok_collect, f) == 0 && qr_buf_ok(&f->tok_text);
}

static bool tok_eq(const tail_filter *f, size_t idx, const char *s, size_t len)
{
    return f->tok_len[idx] == len && memcmp(f->tok_text.data + f->tok_off[idx], s, len) == 0;
}

/* Evaluates a search node over the tokens currently loaded (of msg or of a field). */
static int eval_search(tail_filter *f, const sql_search *s, const qr_batch *b, const qr_event *e,
                       const char *text, size_t text_len)
{
    switch (s->kind) {
    case SQL_SEARCH_AND:
        for (uint32_t idx = 0; idx < s->child_count; idx++)
            if (!eval_search(f, s->children[idx], b, e, text, text_len)) return 0;
        return 1;
    case SQL_SEARCH_OR:
        for (uint32_t idx = 0; idx < s->child_count; idx++)
            if (eval_search(f, s->children[idx], b, e, text, text_len)) return 1;
        return 0;
    case SQL_SEARCH_NOT:
        return !eval_search(f, s->children[0], b, e, text, text_len);
    case SQL_SEARCH_TERM:
        for (size_t idx = 0; idx < f->tok_count; idx++)
            if (tok_eq(f, idx, s->text, s->text_len)) return 1;
        return 0;
    case SQL_SEARCH_PREFIX:
        for (size_t idx = 0; idx < f->tok_count; idx++)
            if (f->tok_len[idx] >= s->text_len &&
                memcmp(f->tok_text.data + f->tok_off[idx], s->text, s->text_len) == 0)
                return 1;
        return 0;
    case SQL_SEARCH_PHRASE:
        if (s->token_count == 0) return 1;
        for (size_t start = 0; start + s->token_count <= f->tok_count; start++) {
            uint32_t t = 0;
            while (t < s->token_count && tok_eq(f, start + t, s->tokens[t], strlen(s->tokens[t])))
                t++;
            if (t == s->token_count) return 1;
        }
        return 0;
    case SQL_SEARCH_REGEX: {
        regex_t *re = NULL;
        for (size_t idx = 0; idx < f->search_re_count && !re; idx++)
            if (f->search_re_node[idx] == s) re = f->search_re[idx];
        if (!re) {
            if (f->search_re_count == f->search_re_cap) {
                size_t cap = f->search_re_cap ? f->search_re_cap * 2 : 4;
                const sql_search **nodes = realloc(f->search_re_node, cap * sizeof *nodes);
                if (!nodes) return 0;
                f->search_re_node = nodes;
                regex_t **res = realloc(f->search_re, cap * sizeof *res);
                if (!res) return 0;
                f->search_re = res;
                f->search_re_cap = cap;
            }
            sql_pos pos;
            memset(&pos, 0, sizeof pos);
            if (regex_add(f, s->text, s->text_len, false, pos, &re, NULL) != 0) return 0;
            f->search_re_node[f->search_re_count] = s;
            f->search_re[f->search_re_count++] = re;
        }
        qr_buf t;
        qr_buf_init(&t);
        qr_buf_append(&t, text, text_len);
        qr_buf_u8(&t, 0);
        int ok = qr_buf_ok(&t) && regexec(re, (const char *)t.data, 0, NULL, 0) == 0;
        qr_buf_fini(&t);
        return ok;
    }
    case SQL_SEARCH_FIELD: {
        tf_node fake;
        memset(&fake, 0, sizeof fake);
        sql_expr nm;
        memset(&nm, 0, sizeof nm);
        nm.u.name.s = s->text;
        nm.u.name.len = s->text_len;
        col_of(&nm, &fake);
        ev_val v;
        if (!event_value(b, e, &fake, &v)) return 0;
        size_t len;
        const char *vt = value_text(f, &v, &len);
        if (!vt) return 0;
        /* field text: tokens of the field replace the message's for the child */
        qr_buf saved_text = f->tok_text;
        size_t saved_count = f->tok_count;
        uint32_t *saved_off = f->tok_off, *saved_len = f->tok_len;
        size_t saved_cap = f->tok_cap;
        qr_buf_init(&f->tok_text);
        f->tok_off = f->tok_len = NULL;
        f->tok_cap = f->tok_count = 0;
        qr_buf copy;
        qr_buf_init(&copy);
        qr_buf_append(&copy, vt, len);
        int r = 0;
        if (qr_buf_ok(&copy) && tokenize_into(f, (const char *)copy.data, copy.len))
            r = eval_search(f, s->children[0], b, e, (const char *)copy.data, copy.len);
        qr_buf_fini(&copy);
        qr_buf_fini(&f->tok_text);
        free(f->tok_off);
        free(f->tok_len);
        f->tok_text = saved_text;
        f->tok_count = saved_count;
        f->tok_off = saved_off;
        f->tok_len = saved_len;
        f->tok_cap = saved_cap;
        return r;
    }
    }
    return 0;
}

static int eval_node(tail_filter *f, const tf_node *n, const qr_batch *b, const qr_event *e)
{
    switch (n->kind) {
    case TF_AND: {
        int r = TV_TRUE;
        for (uint32_t idx = 0; idx < n->child_count; idx++) {
            int c = eval_node(f, n->children[idx], b, e);
            if (c == TV_FALSE) return TV_FALSE;
            if (c == TV_NULL) r = TV_NULL;
        }
        return r;
    }
    case TF_OR: {
        int r = TV_FALSE;
        for (uint32_t idx = 0; idx < n->child_count; idx++) {
            int c = eval_node(f, n->children[idx], b, e);
            if (c == TV_TRUE) return TV_TRUE;
            if (c == TV_NULL) r = TV_NULL;
        }
        return r;
    }
    case TF_NOT: {
        int c = eval_node(f, n->children[0], b, e);
        return c == TV_NULL ? TV_NULL : !c;
    }
    case TF_CMP: {
        ev_val v;
        if (!event_value(b, e, n, &v)) return TV_NULL;
        return eval_cmp(f, n, &v);
    }
    case TF_REGEX:
    case TF_CONTAINS: {
        ev_val v;
        if (!event_value(b, e, n, &v)) return TV_NULL;
        size_t len;
        const char *t = value_text(f, &v, &len);
        if (!t) return TV_NULL;
        bool m;
        if (n->kind == TF_REGEX)
            m = regexec(n->re, t, 0, NULL, 0) == 0;
        else
            m = n->s_len == 0 || (len >= n->s_len && memmem(t, len, n->s, n->s_len) != NULL);
        return m != n->negated;
    }
    case TF_SEARCH: {
        ev_val v;
        if (!event_value(b, e, n, &v)) return TV_NULL;
        size_t len;
        const char *t = value_text(f, &v, &len);
        if (!t) return TV_NULL;
        qr_buf copy;
        qr_buf_init(&copy);
        qr_buf_append(&copy, t, len);
        int r = TV_NULL;
        if (qr_buf_ok(&copy) && tokenize_into(f, (const char *)copy.data, copy.len))
            r = eval_search(f, n->search, b, e, (const char *)copy.data, copy.len) != n->negated;
        qr_buf_fini(&copy);
        return r;
    }
    }
    return TV_NULL;
}

int tail_filter_match(tail_filter *f, const qr_batch *b, const qr_event *e)
{
    if (!f->root) return 1;
    return eval_node(f, f->root, b, e) == TV_TRUE;
}

void tail_event_json(const qr_batch *b, const qr_event *e, int64_t id, qr_buf *out)
{
    char ts[40];
    qr_jsonw_raw(out, "{");
    if (id >= 0) {
        qr_jsonw_raw(out, "\"id\":\"");
        qr_jsonw_int(out, id);
        qr_jsonw_raw(out, "\",");
    }
    qr_jsonw_raw(out, "\"ts\":");
    size_t n = qr_time_format(e->ts_ns, ts, sizeof ts, e->ts_ns % QR_NS_PER_MS != 0);
    qr_jsonw_str(out, ts, n);
    qr_jsonw_raw(out, ",\"service\":");
    qr_jsonw_str(out, e->service.ptr, e->service.len);
    qr_jsonw_raw(out, ",\"level\":");
    qr_jsonw_cstr(out, qr_level_name((qr_level)e->level));
    qr_jsonw_raw(out, ",\"host\":");
    qr_jsonw_str(out, e->host.ptr, e->host.len);
    qr_jsonw_raw(out, ",\"msg\":");
    qr_jsonw_str(out, e->msg.ptr, e->msg.len);
    qr_jsonw_raw(out, ",\"meta\":{");
    const qr_field *fs = qr_event_fields(b, e);
    for (uint32_t idx = 0; idx < e->field_count; idx++) {
        const qr_field *fl = &fs[idx];
        if (idx) qr_jsonw_raw(out, ",");
        qr_jsonw_str(out, fl->key.ptr, fl->key.len);
        qr_jsonw_raw(out, ":");
        switch (fl->type) {
        case QR_FT_STRING:
            qr_jsonw_str(out, fl->v.s.ptr, fl->v.s.len);
            break;
        case QR_FT_INT:
            qr_jsonw_int(out, fl->v.i);
            break;
        case QR_FT_FLOAT:
            qr_jsonw_double(out, fl->v.f);
            break;
        case QR_FT_BOOL:
            qr_jsonw_raw(out, fl->v.b ? "true" : "false");
            break;
        default:
            qr_jsonw_raw(out, "null");
        }
    }
    qr_jsonw_raw(out, "}}");
}

/* ---- hub ---- */

typedef struct tail_chunk tail_chunk;
struct tail_chunk {
    tail_chunk *next;
    uint64_t first_id;
    size_t tenant_idx;
    size_t bytes;
    qr_batch batch;
};

struct tail_sub {
    tail_hub *hub;
    tail_sub *prev, *next;
    size_t tenant_idx;
    tail_filter *filter;
    qr_buf pending;
    uint64_t last_id; /* last id queued to pending */
    bool overflow;
    void *user;
};

struct tail_hub {
    tail_hub_opts o;
    pthread_mutex_t mu;
    tail_chunk *head, *tail;
    size_t ring_bytes, ring_events;
    uint64_t first_id, next_id;
    tail_sub *subs;
    atomic_uint_fast64_t sub_count;
    atomic_int_fast64_t record_until_ns; /* monotonic */
    atomic_bool lapsed;                  /* events were acknowledged while not recording */
    uint64_t published, delivered, dropped;
};

int tail_hub_new(const tail_hub_opts *o, tail_hub **out)
{
    tail_hub *h = calloc(1, sizeof *h);
    if (!h) return QR_ENOMEM;
    h->o = *o;
    if (!h->o.ring_bytes) h->o.ring_bytes = 64u << 20;
    if (!h->o.sub_bytes) h->o.sub_bytes = 1u << 20;
    pthread_mutex_init(&h->mu, NULL);
    h->next_id = h->first_id = (uint64_t)(qr_now_ns() / 1000);
    atomic_init(&h->sub_count, 0);
    atomic_init(&h->record_until_ns, 0);
    atomic_init(&h->lapsed, false);
    *out = h;
    return 0;
}

static void chunk_free(tail_chunk *c)
{
    qr_batch_fini(&c->batch);
    free(c);
}

static void sub_free(tail_sub *s)
{
    tail_filter_free(s->filter);
    qr_buf_fini(&s->pending);
    free(s);
}

void tail_hub_free(tail_hub *h)
{
    if (!h) return;
    while (h->head) {
        tail_chunk *c = h->head;
        h->head = c->next;
        chunk_free(c);
    }
    while (h->subs) {
        tail_sub *s = h->subs;
        h->subs = s->next;
        sub_free(s);
    }
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static bool hub_recording(tail_hub *h)
{
    if (atomic_load(&h->sub_count) > 0) return true;
    return qr_monotonic_ns() < atomic_load(&h->record_until_ns);
}

static void sse_notice(qr_buf *out, const char *kind, const char *message, uint64_t last_id)
{
    qr_jsonw_raw(out, "event: notice\ndata: {\"notice\":");
    qr_jsonw_cstr(out, kind);
    qr_jsonw_raw(out, ",\"message\":");
    qr_jsonw_cstr(out, message);
    if (last_id) {
        qr_jsonw_raw(out, ",\"last_id\":\"");
        qr_jsonw_uint(out, last_id);
        qr_jsonw_raw(out, "\"");
    }
    qr_jsonw_raw(out, "}\n\n");
}

/* Queues the chunk's matching events to s (mutex held). Returns true when something queued. */
static bool sub_feed(tail_hub *h, tail_sub *s, const tail_chunk *c, uint64_t after_id)
{
    if (s->overflow || s->tenant_idx != c->tenant_idx) return false;
    bool any = false;
    for (size_t idx = 0; idx < c->batch.count; idx++) {
        uint64_t id = c->first_id + idx;
        if (id <= after_id) continue;
        const qr_event *e = &c->batch.events[idx];
        if (!tail_filter_match(s->filter, &c->batch, e)) continue;
        size_t before = s->pending.len;
        qr_jsonw_raw(&s->pending, "id: ");
        qr_jsonw_uint(&s->pending, id);
        qr_jsonw_raw(&s->pending, "\ndata: ");
        tail_event_json(&c->batch, e, (int64_t)id, &s->pending);
        qr_jsonw_raw(&s->pending, "\n\n");
        if (!qr_buf_ok(&s->pending) || s->pending.len > h->o.sub_bytes) {
            s->pending.len = before; /* keep whole events only */
            if (!qr_buf_ok(&s->pending)) {
                qr_buf_fini(&s->pending);
                qr_buf_init(&s->pending);
            }
            s->overflow = true;
            return true;
        }
        s->last_id = id;
        h->delivered++;
        any = true;
    }
    return any;
}

int tail_hub_ingest(tail_hub *h, db_t *db, size_t tenant_idx, const char *tenant, qr_batch *b,
                    qr_diag *d)
{
    if (!h || !hub_recording(h)) {
        int rc = db_ingest_take(db, tenant, b, d);
        if (!rc && h && b) atomic_store(&h->lapsed, true);
        return rc;
    }
    int rc = db_ingest(db, tenant, b, d);
    if (rc) return rc;
    if (b->count == 0) return 0;
    tail_chunk *c = malloc(sizeof *c);
    if (!c) { /* durable, but not published: the next subscriber's resume sees a gap */
        atomic_store(&h->lapsed, true);
        qr_batch_reset(b);
        return 0;
    }
    c->next = NULL;
    c->tenant_idx = tenant_idx;
    c->batch = *b; /* take the events; the caller gets a fresh batch */
    c->bytes = b->bytes + sizeof *c;
    qr_batch_init(b);
    bool wake = false;
    pthread_mutex_lock(&h->mu);
    if (atomic_exchange(&h->lapsed, false)) { /* some events were never held: a hole */
        while (h->head) {
            tail_chunk *old = h->head;
            h->head = old->next;
            chunk_free(old);
        }
        h->tail = NULL;
        h->ring_bytes = h->ring_events = 0;
        h->next_id++;
        h->first_id = h->next_id;
    }
    c->first_id = h->next_id;
    h->next_id += c->batch.count;
    h->published += c->batch.count;
    if (h->tail)
        h->tail->next = c;
    else
        h->head = c;
    h->tail = c;
    h->ring_bytes += c->bytes;
    h->ring_events += c->batch.count;
    for (tail_sub *s = h->subs; s; s = s->next)
        if (sub_feed(h, s, c, 0)) wake = true;
    while (h->ring_bytes > h->o.ring_bytes && h->head && h->head != h->tail) {
        tail_chunk *old = h->head;
        h->head = old->next;
        h->ring_bytes -= old->bytes;
        h->ring_events -= old->batch.count;
        h->first_id = h->head->first_id;
        chunk_free(old);
    }
    if (!h->head) h->first_id = h->next_id;
    pthread_mutex_unlock(&h->mu);
    if (wake && h->o.wake) h->o.wake(h->o.wake_ctx);
    return 0;
}

tail_sub *tail_hub_subscribe(tail_hub *h, size_t tenant_idx, tail_filter *f, bool has_last,
                             uint64_t last_id, void *user)
{
    tail_sub *s = calloc(1, sizeof *s);
    if (!s) {
        tail_filter_free(f);
        return NULL;
    }
    s->hub = h;
    s->tenant_idx = tenant_idx;
    s->filter = f;
    s->user = user;
    qr_buf_init(&s->pending);
    pthread_mutex_lock(&h->mu);
    if (has_last) {
        bool lapsed = atomic_load(&h->lapsed);
        if (lapsed || last_id + 1 < h->first_id || last_id >= h->next_id) {
            char msg[200];
            snprintf(msg, sizeof msg,
                     "events after id %llu are no longer held; following from id %llu",
                     (unsigned long long)last_id, (unsigned long long)h->first_id);
            sse_notice(&s->pending, "gap", msg, 0);
        }
        if (!lapsed)
            for (tail_chunk *c = h->head; c; c = c->next) {
                if (c->first_id + c->batch.count <= last_id + 1) continue;
                sub_feed(h, s, c, last_id);
            }
    }
    s->next = h->subs;
    if (h->subs) h->subs->prev = s;
    h->subs = s;
    atomic_fetch_add(&h->sub_count, 1);
    pthread_mutex_unlock(&h->mu);
    return s;
}

bool tail_sub_take(tail_sub *s, qr_buf *out, uint64_t *last_id)
{
    tail_hub *h = s->hub;
    pthread_mutex_lock(&h->mu);
    if (s->pending.len) {
        qr_buf_append(out, s->pending.data, s->pending.len);
        s->pending.len = 0;
    }
    bool ov = s->overflow;
    if (last_id) *last_id = s->last_id;
    pthread_mutex_unlock(&h->mu);
    return ov;
}

void *tail_sub_user(const tail_sub *s) { return s->user; }

void tail_hub_unsubscribe(tail_sub *s, bool dropped)
{
    if (!s) return;
    tail_hub *h = s->hub;
    pthread_mutex_lock(&h->mu);
    if (s->prev)
        s->prev->next = s->next;
    else
        h->subs = s->next;
    if (s->next) s->next->prev = s->prev;
    if (dropped) h->dropped++;
    if (atomic_fetch_sub(&h->sub_count, 1) == 1)
        atomic_store(&h->record_until_ns, qr_monotonic_ns() + h->o.resume_window_ns);
    pthread_mutex_unlock(&h->mu);
    sub_free(s);
}

void tail_hub_get_stats(tail_hub *h, tail_hub_stats *st)
{
    pthread_mutex_lock(&h->mu);
    st->subscribers = atomic_load(&h->sub_count);
    st->events_published = h->published;
    st->events_delivered = h->delivered;
    st->subscribers_dropped = h->dropped;
    st->ring_events = h->ring_events;
    st->ring_bytes = h->ring_bytes;
    st->first_id = h->first_id;
    st->next_id = h->next_id;
    pthread_mutex_unlock(&h->mu);
}

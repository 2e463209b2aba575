/* evfilter — compiled filters over one event (contract in evfilter.h). */
#include "engine/evfilter.h"

#include "common/qr_arena.h"
#include "common/qr_hash.h"
#include "common/qr_time.h"
#include "engine/exec_int.h"
#include "storage/tokenize.h"

#include <math.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- compiled filter ---- */

enum { TV_NULL = -1, TV_FALSE = 0, TV_TRUE = 1 };

typedef enum evf_kind {
    EVF_AND,
    EVF_OR,
    EVF_NOT,
    EVF_CMP,      /* col op constant */
    EVF_REGEX,    /* col ~ re */
    EVF_CONTAINS, /* col CONTAINS text */
    EVF_SEARCH,   /* MATCH: search tree over msg */
    EVF_LIKE,     /* col LIKE pattern */
    EVF_IS_NULL,  /* col IS [NOT] NULL */
} evf_kind;

enum { EVC_SERVICE, EVC_LEVEL, EVC_HOST, EVC_MSG, EVC_TS, EVC_FIELD };

typedef enum cv_kind { CV_STR, CV_NUM, CV_LEVEL, CV_DUR, CV_BOOL, CV_TS } cv_kind;

typedef struct evf_node evf_node;
struct evf_node {
    evf_kind kind;
    int col;          /* COL_* */
    const char *name; /* field key for EVC_FIELD */
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
    pcre2_code *re;
    const sql_search *search;
    uint32_t child_count;
    evf_node **children;
};

struct evf {
    qr_arena arena;
    evf_node *root; /* NULL: everything matches */
    pcre2_code **regexes;
    size_t regex_count, regex_cap;
    pcre2_match_context *re_mctx;
    pcre2_match_data *re_md;
    /* MATCH /re/ terms, compiled with the filter: node → code (codes live in regexes) */
    const sql_search **search_re_node;
    pcre2_code **search_re;
    size_t search_re_count, search_re_cap;
    qr_buf scratch;
    /* tokens of the current message for MATCH */
    qr_buf tok_text;
    uint32_t *tok_off, *tok_len;
    size_t tok_count, tok_cap;
    bool tok_ok;
    uint64_t regex_limit_hits;
};

void evf_free(evf *f)
{
    if (!f) return;
    for (size_t idx = 0; idx < f->regex_count; idx++) pcre2_code_free(f->regexes[idx]);
    free(f->regexes);
    pcre2_match_data_free(f->re_md);
    pcre2_match_context_free(f->re_mctx);
    free(f->search_re_node);
    free(f->search_re);
    free(f->tok_off);
    free(f->tok_len);
    qr_buf_fini(&f->scratch);
    qr_buf_fini(&f->tok_text);
    qr_arena_fini(&f->arena);
    free(f);
}

static int regex_add(evf *f, const char *pat, size_t len, bool anchored, sql_pos pos,
                     pcre2_code **out, qr_diag *d)
{
    if (!f->re_mctx && exec_regex_match_init(&f->re_mctx, &f->re_md)) return QR_ENOMEM;
    if (f->regex_count == f->regex_cap) {
        size_t cap = f->regex_cap ? f->regex_cap * 2 : 4;
        pcre2_code **res = realloc(f->regexes, cap * sizeof *res);
        if (!res) return QR_ENOMEM;
        f->regexes = res;
        f->regex_cap = cap;
    }
    char why[400];
    pcre2_code *re = exec_regex_build(pat, len, anchored, why, sizeof why);
    if (!re) return sql_diag_at(d, pos, QR_ESYNTAX, "%s", why);
    f->regexes[f->regex_count++] = re;
    *out = re;
    return 0;
}

/* 1 match, 0 no match or over the match limit (an event is not matched by a pattern that
 * cannot finish; counted in evf->regex_limit_hits). */
static int regex_match(evf *f, const pcre2_code *re, const char *s, size_t len)
{
    int rc = pcre2_match(re, (PCRE2_SPTR)(len ? s : ""), len, 0, 0, f->re_md, f->re_mctx);
    if (rc >= 0) return 1;
    if (rc != PCRE2_ERROR_NOMATCH) f->regex_limit_hits++;
    return 0;
}

/* Compiles every /regex/ term of a search tree (positions point at the term). */
static int search_regexes(evf *f, const sql_search *s, qr_diag *d)
{
    if (s->kind == SQL_SEARCH_REGEX) {
        if (f->search_re_count == f->search_re_cap) {
            size_t cap = f->search_re_cap ? f->search_re_cap * 2 : 4;
            const sql_search **nodes = realloc(f->search_re_node, cap * sizeof *nodes);
            if (!nodes) return QR_ENOMEM;
            f->search_re_node = nodes;
            pcre2_code **res = realloc(f->search_re, cap * sizeof *res);
            if (!res) return QR_ENOMEM;
            f->search_re = res;
            f->search_re_cap = cap;
        }
        pcre2_code *re = NULL;
        int rc = regex_add(f, s->text, s->text_len, false, s->pos, &re, d);
        if (rc) return rc;
        f->search_re_node[f->search_re_count] = s;
        f->search_re[f->search_re_count++] = re;
        return 0;
    }
    for (uint32_t idx = 0; idx < s->child_count; idx++) {
        int rc = search_regexes(f, s->children[idx], d);
        if (rc) return rc;
    }
    return 0;
}

static evf_node *node_new(evf *f, evf_kind kind)
{
    evf_node *n = qr_arena_alloc(&f->arena, sizeof *n);
    if (n) {
        memset(n, 0, sizeof *n);
        n->kind = kind;
    }
    return n;
}

static int col_of(const sql_expr *e, evf_node *n)
{
    const char *s = e->u.name.s;
    uint32_t len = e->u.name.len;
    n->col = EVC_FIELD;
    if (len == 7 && !memcmp(s, "service", 7)) n->col = EVC_SERVICE;
    if (len == 5 && !memcmp(s, "level", 5)) n->col = EVC_LEVEL;
    if (len == 4 && !memcmp(s, "host", 4)) n->col = EVC_HOST;
    if (len == 3 && !memcmp(s, "msg", 3)) n->col = EVC_MSG;
    if (len == 2 && !memcmp(s, "ts", 2)) n->col = EVC_TS;
    n->name = s;
    n->name_len = len;
    return 0;
}

static int const_of(const sql_expr *c, evf_node *n, qr_diag *d)
{
    switch (c->kind) {
    case SQL_EXPR_STRING: {
        if (n->col == EVC_TS) {
            int64_t ts_ns;
            if (c->u.str.is_time) {
                ts_ns = c->u.str.time_ns;
            } else if (qr_time_parse_rfc3339(c->u.str.s, c->u.str.len, &ts_ns) != 0) {
                return sql_diag_at(d, c->pos, QR_ESYNTAX, "ts is compared with an RFC 3339 time");
            }
            n->ck = CV_TS;
            n->i = ts_ns;
            return 0;
        }
        n->ck = CV_STR;
        n->s = c->u.str.s;
        n->s_len = c->u.str.len;
        char *end = NULL;
        n->num = n->s_len ? strtod(n->s, &end) : 0;
        n->num_ok = n->s_len && end == n->s + n->s_len && isfinite(n->num);
        if (n->col == EVC_LEVEL) {
            qr_level lv;
            if (!qr_level_parse(n->s, n->s_len, &lv)) {
                return sql_diag_at(d, c->pos, QR_ESYNTAX, "'%.*s' is not a level",
                                   (int)(n->s_len > 40 ? 40 : n->s_len), n->s);
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
        return sql_diag_at(d, c->pos, QR_ESYNTAX,
                           "a streaming filter (live tail, rollup, alert) compares fields with "
                           "literals only");
    }
}

static int compile_expr(evf *f, const sql_expr *e, evf_node **out, qr_diag *d)
{
    evf_node *n = NULL;
    int rc;
    switch (e->kind) {
    case SQL_EXPR_AND:
    case SQL_EXPR_OR:
        n = node_new(f, e->kind == SQL_EXPR_AND ? EVF_AND : EVF_OR);
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
        n = node_new(f, EVF_NOT);
        if (!n) return QR_ENOMEM;
        n->child_count = 1;
        n->children = qr_arena_alloc(&f->arena, sizeof *n->children);
        if (!n->children) return QR_ENOMEM;
        rc = compile_expr(f, e->u.unary.arg, &n->children[0], d);
        if (rc) return rc;
        break;
    case SQL_EXPR_IN: {
        if (e->u.in.arg->kind != SQL_EXPR_FIELD) goto unsupported;
        evf_node * or = node_new(f, EVF_OR);
        if (! or) return QR_ENOMEM;
        or->child_count = e->u.in.count;
        or->children = qr_arena_alloc(&f->arena, sizeof * or->children * e->u.in.count);
        if (! or->children) return QR_ENOMEM;
        for (uint32_t idx = 0; idx < e->u.in.count; idx++) {
            evf_node *c = node_new(f, EVF_CMP);
            if (!c) return QR_ENOMEM;
            col_of(e->u.in.arg, c);
            c->op = SQL_OP_EQ;
            rc = const_of(e->u.in.items[idx], c, d);
            if (rc) return rc;
            or->children[idx] = c;
        }
        n = or ;
        if (e->u.in.negated) {
            n = node_new(f, EVF_NOT);
            if (!n) return QR_ENOMEM;
            n->child_count = 1;
            n->children = qr_arena_alloc(&f->arena, sizeof *n->children);
            if (!n->children) return QR_ENOMEM;
            n->children[0] = or ;
        }
        break;
    }
    case SQL_EXPR_BETWEEN: {
        if (e->u.between.arg->kind != SQL_EXPR_FIELD) goto unsupported;
        evf_node *lo = node_new(f, EVF_CMP), *hi = node_new(f, EVF_CMP);
        n = node_new(f, EVF_AND);
        if (!lo || !hi || !n) return QR_ENOMEM;
        col_of(e->u.between.arg, lo);
        col_of(e->u.between.arg, hi);
        lo->op = SQL_OP_GE;
        hi->op = SQL_OP_LE;
        if ((rc = const_of(e->u.between.lo, lo, d)) || (rc = const_of(e->u.between.hi, hi, d)))
            return rc;
        n->child_count = 2;
        n->children = qr_arena_alloc(&f->arena, sizeof *n->children * 2);
        if (!n->children) return QR_ENOMEM;
        n->children[0] = lo;
        n->children[1] = hi;
        if (e->u.between.negated) {
            evf_node *not = node_new(f, EVF_NOT);
            if (!not ) return QR_ENOMEM;
            not ->child_count = 1;
            not ->children = qr_arena_alloc(&f->arena, sizeof *not ->children);
            if (!not ->children) return QR_ENOMEM;
            not ->children[0] = n;
            n = not ;
        }
        break;
    }
    case SQL_EXPR_IS_NULL:
        if (e->u.is_null.arg->kind != SQL_EXPR_FIELD) goto unsupported;
        n = node_new(f, EVF_IS_NULL);
        if (!n) return QR_ENOMEM;
        col_of(e->u.is_null.arg, n);
        n->negated = e->u.is_null.negated;
        break;
    case SQL_EXPR_BINARY: {
        const sql_expr *lhs = e->u.binary.lhs, *rhs = e->u.binary.rhs;
        sql_op op = e->u.binary.op;
        if (lhs->kind != SQL_EXPR_FIELD) goto unsupported;
        if (op == SQL_OP_MATCH) {
            n = node_new(f, EVF_SEARCH);
            if (!n) return QR_ENOMEM;
            col_of(lhs, n);
            n->search = e->u.binary.search;
            n->negated = e->u.binary.negated;
            rc = search_regexes(f, n->search, d);
            if (rc) return rc;
            break;
        }
        if (op == SQL_OP_REGEX || op == SQL_OP_CONTAINS || op == SQL_OP_LIKE) {
            if (rhs->kind != SQL_EXPR_STRING) goto unsupported;
            n = node_new(f, op == SQL_OP_REGEX      ? EVF_REGEX
                            : op == SQL_OP_CONTAINS ? EVF_CONTAINS
                                                    : EVF_LIKE);
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
        n = node_new(f, EVF_CMP);
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
    return sql_diag_at(d, e->pos, QR_ESYNTAX,
                       "not supported in a streaming filter (live tail, rollup, alert): use "
                       "comparisons of fields with literals, IN, BETWEEN, IS NULL, LIKE, ~, "
                       "CONTAINS, MATCH, AND, OR, NOT");
}

static evf_node *and_of(evf *f, evf_node **items, uint32_t count)
{
    if (count == 0) return NULL;
    if (count == 1) return items[0];
    evf_node *n = node_new(f, EVF_AND);
    if (!n) return NULL;
    n->child_count = count;
    n->children = items;
    return n;
}

static evf *filter_new(void)
{
    evf *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    qr_arena_init(&f->arena, 0, 0);
    qr_buf_init(&f->scratch);
    qr_buf_init(&f->tok_text);
    return f;
}

int evf_compile_logql(const char *text, size_t len, evf **out, qr_diag *d)
{
    evf *f = filter_new();
    if (!f) return QR_ENOMEM;
    sql_stmt *st = NULL;
    int rc = sql_parse(text, len, &f->arena, &st, d);
    if (rc) goto fail;
    if (st->kind != SQL_STMT_LOGQL || !st->u.logql->log) {
        rc = sql_diag_at(d, st->pos, QR_ESYNTAX,
                         "live tail needs a LogQL log query, like {service=\"api\"} |= \"error\"");
        goto fail;
    }
    const sql_lq_log *lg = st->u.logql->log;
    uint32_t cap = lg->matcher_count + lg->stage_count;
    evf_node **items = qr_arena_alloc(&f->arena, sizeof *items * (cap ? cap : 1));
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
            rc = sql_diag_at(d, sg->pos, QR_ESYNTAX,
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
    evf_free(f);
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

int evf_compile_params(const char *service, const char *level, const char *q, evf **out, qr_diag *d)
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
    evf *f = filter_new();
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
        evf_free(f);
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

static bool event_value(const qr_batch *b, const qr_event *e, const evf_node *n, ev_val *v)
{
    switch (n->col) {
    case EVC_SERVICE:
        v->kind = CV_STR;
        v->s = e->service;
        return true;
    case EVC_HOST:
        v->kind = CV_STR;
        v->s = e->host;
        return true;
    case EVC_MSG:
        v->kind = CV_STR;
        v->s = e->msg;
        return true;
    case EVC_LEVEL:
        v->kind = CV_LEVEL;
        v->i = e->level;
        return true;
    case EVC_TS:
        v->kind = CV_TS;
        v->i = e->ts_ns;
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
static const char *value_text(evf *f, const ev_val *v, size_t *len)
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
    case CV_TS:
        qr_buf_append(s, tmp, qr_time_format(v->i, tmp, sizeof tmp, false));
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

static int eval_cmp(evf *f, const evf_node *n, const ev_val *v)
{
    int c;
    if (n->ck == CV_TS || v->kind == CV_TS) {
        if (n->ck != CV_TS || v->kind != CV_TS) return TV_NULL;
        c = v->i < n->i ? -1 : v->i > n->i;
        return cmp_result(n->op, c);
    }
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
    evf *f = ctx;
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

static bool tokenize_into(evf *f, const char *text, size_t len)
{
    f->tok_count = 0;
    f->tok_text.len = 0;
    return qr_tokenize(text, len, tok_collect, f) == 0 && qr_buf_ok(&f->tok_text);
}

static bool tok_eq(const evf *f, size_t idx, const char *s, size_t len)
{
    return f->tok_len[idx] == len && memcmp(f->tok_text.data + f->tok_off[idx], s, len) == 0;
}

/* Evaluates a search node over the tokens currently loaded (of msg or of a field). */
static int eval_search(evf *f, const sql_search *s, const qr_batch *b, const qr_event *e,
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
        pcre2_code *re = NULL;
        for (size_t idx = 0; idx < f->search_re_count && !re; idx++)
            if (f->search_re_node[idx] == s) re = f->search_re[idx];
        return re && regex_match(f, re, text, text_len);
    }
    case SQL_SEARCH_FIELD: {
        evf_node fake;
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

/* ---- MATCH fast rejection ---- */

/* Token hashes of recently searched texts, per thread. Many filters (one per alert rule or
 * rollup) search the same messages of a batch, rule after rule; the first hashes a message's
 * tokens (qr_tokenize_hashes: no copies), the others find them here. Direct-mapped by the
 * text's address; an entry answers only for the same address, length and xxh3 of the bytes,
 * so it can never answer for other text. A cache, not state: per thread (filters evaluated on
 * different threads never share one), freed when the thread ends. */
#define EVF_TCACHE_SLOTS 4096   /* the top 12 bits of a Fibonacci hash of the address */
#define EVF_TOKS_BLOOM_WORDS 16 /* 1,024 bits, 2 probes: ~0.3 % false "maybe" at 30 tokens */

typedef struct evf_toks {
    const char *ptr;
    uint64_t check;
    uint32_t len;
    uint64_t bloom[EVF_TOKS_BLOOM_WORDS];
} evf_toks;

static pthread_key_t tcache_key;
static pthread_once_t tcache_once = PTHREAD_ONCE_INIT;

static void tcache_key_make(void) { (void)pthread_key_create(&tcache_key, free); }

static inline void toks_bloom_bits(uint64_t h, uint32_t *b1, uint32_t *b2)
{
    *b1 = (uint32_t)h % (EVF_TOKS_BLOOM_WORDS * 64);
    *b2 = (uint32_t)(h >> 32) % (EVF_TOKS_BLOOM_WORDS * 64);
}

/* The text's token bloom; NULL on OOM (the exact path decides). */
static const evf_toks *toks_of(qr_str s)
{
    pthread_once(&tcache_once, tcache_key_make);
    evf_toks *cache = pthread_getspecific(tcache_key);
    if (!cache) {
        cache = calloc(EVF_TCACHE_SLOTS, sizeof *cache);
        if (!cache || pthread_setspecific(tcache_key, cache) != 0) {
            free(cache);
            return NULL;
        }
    }
    uintptr_t addr = (uintptr_t)s.ptr;
    evf_toks *t = &cache[((uint64_t)addr * 0x9E3779B97F4A7C15ull) >> 52]; /* 4,096 slots */
    uint64_t check = qr_hash64(s.ptr, s.len);
    if (t->ptr == s.ptr && t->len == s.len && t->check == check) return t;
    t->ptr = s.ptr;
    t->len = s.len;
    t->check = check;
    memset(t->bloom, 0, sizeof t->bloom);
    uint64_t hashes[64];
    size_t pos = 0;
    while (pos < s.len) {
        size_t n = qr_tokenize_hashes(s.ptr, s.len, &pos, hashes, 64);
        for (size_t idx = 0; idx < n; idx++) {
            uint32_t b1, b2;
            toks_bloom_bits(hashes[idx], &b1, &b2);
            t->bloom[b1 >> 6] |= 1ull << (b1 & 63);
            t->bloom[b2 >> 6] |= 1ull << (b2 & 63);
        }
    }
    return t;
}

static bool toks_have(const evf_toks *t, const char *tok, size_t len)
{
    uint32_t b1, b2;
    toks_bloom_bits(qr_token_hash(tok, len), &b1, &b2);
    return (t->bloom[b1 >> 6] >> (b1 & 63) & 1) && (t->bloom[b2 >> 6] >> (b2 & 63) & 1);
}

/* False only when the search cannot match text whose token bloom is t: a term or a phrase
 * token the bloom lacks is absent. Prefixes, regexes, field:value and NOT say "maybe". */
static bool search_may(const sql_search *s, const evf_toks *t)
{
    switch (s->kind) {
    case SQL_SEARCH_TERM:
        return toks_have(t, s->text, s->text_len);
    case SQL_SEARCH_PHRASE:
        for (uint32_t idx = 0; idx < s->token_count; idx++)
            if (!toks_have(t, s->tokens[idx], strlen(s->tokens[idx]))) return false;
        return true;
    case SQL_SEARCH_AND:
        for (uint32_t idx = 0; idx < s->child_count; idx++)
            if (!search_may(s->children[idx], t)) return false;
        return true;
    case SQL_SEARCH_OR:
        for (uint32_t idx = 0; idx < s->child_count; idx++)
            if (search_may(s->children[idx], t)) return true;
        return false;
    default:
        return true;
    }
}

/* How rare a lower-cased token byte is in text: English letter frequency order (e most
 * common); digits and other bytes count as rare. */
static const uint8_t byte_rarity[256] = {
    30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
    30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
    30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
    30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
    30, 3,  20, 12, 11, 1,  15, 17, 9,  5,  24, 22, 10, 14, 6,  4,  16, 25, 8,  7,  2,  13, 21, 18,
    23, 19, 26, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
    30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
    30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
    30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
    30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
    30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
};

/* text[0, len) equals tok case-folded as the tokenizer folds. */
static inline bool folded_eq(const char *text, const char *tok, size_t len)
{
    size_t m = 0;
    while (m < len && qr_token_fold[(uint8_t)text[m]] == qr_token_fold[(uint8_t)tok[m]]) m++;
    return m == len;
}

/* False only when text cannot hold tok as a token: a token is a run of token bytes,
 * ASCII-lower-cased (storage/tokenize.h), so a token equal to tok (or cut to tok's length,
 * which is at most QR_TOKEN_MAX_BYTES) appears in text as tok's bytes up to ASCII case. No
 * allocation, no tokenizing: two memchr scans for tok's first byte and a compare per hit. */
static bool text_may_have(const char *text, size_t len, const char *tok, size_t tok_len)
{
    if (tok_len == 0 || tok_len > QR_TOKEN_MAX_BYTES) return true;
    for (size_t idx = 0; idx < tok_len; idx++)
        if (!qr_token_byte[(uint8_t)tok[idx]]) return true; /* not one token: say maybe */
    if (len < tok_len) return false;
    /* scan for the token's least common pair of adjacent bytes (or its one byte): fewer
     * candidates to compare */
    size_t at = 0;
    unsigned best = 0;
    for (size_t idx = 0; idx + 1 < tok_len; idx++) {
        unsigned rank = byte_rarity[qr_token_fold[(uint8_t)tok[idx]]] +
                        byte_rarity[qr_token_fold[(uint8_t)tok[idx + 1]]];
        if (rank > best) {
            best = rank;
            at = idx;
        }
    }
    bool pair = tok_len >= 2;
    /* candidates: positions whose bytes equal tok[at] (and tok[at + 1]) up to ASCII case,
     * found 8 at a time as the zero bytes of (word | 0x20..) ^ (byte | 0x20)..; every
     * occurrence is a candidate (folding only sets bit 0x20 of ASCII letters), the compare
     * decides */
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    const uint64_t lower = 0x2020202020202020ULL;
    uint8_t c1 = (uint8_t)(qr_token_fold[(uint8_t)tok[at]] | 0x20);
    uint8_t c2 = pair ? (uint8_t)(qr_token_fold[(uint8_t)tok[at + 1]] | 0x20) : 0;
    uint64_t want1 = ones * c1, want2 = ones * c2;
    size_t pos = at, end = len - tok_len + at + 1; /* tok[at] sits at text[pos], pos < end */
#ifdef __SSE2__
    /* 16 positions a step: bytes | 0x20 compared with both wanted bytes (a pair reads
     * text[pos + 16], within the text while pos + 16 < end) */
    const __m128i lo16 = _mm_set1_epi8(0x20), w1 = _mm_set1_epi8((char)c1),
                  w2 = _mm_set1_epi8((char)c2);
    while (end - pos >= 16) {
        __m128i a =
            _mm_or_si128(_mm_loadu_si128((const __m128i *)(const void *)(text + pos)), lo16);
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(a, w1));
        if (pair && mask) {
            __m128i b2 = _mm_or_si128(
                _mm_loadu_si128((const __m128i *)(const void *)(text + pos + 1)), lo16);
            mask &= (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(b2, w2));
        }
        while (mask) {
            size_t k = (size_t)__builtin_ctz(mask);
            mask &= mask - 1;
            const char *start = text + pos + k - at;
            if (folded_eq(start, tok, tok_len)) return true;
        }
        pos += 16;
    }
#endif
    while (pos < end) {
        uint64_t hits = 0;
        size_t span = end - pos < 8 ? end - pos : 8;
        /* byte k of a loaded word at bits 8k: little-endian; a pair reads text[pos + 8] */
        if (span == 8 && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__) {
            uint64_t w;
            memcpy(&w, text + pos, 8);
            uint64_t v = (w | lower) ^ want1;
            hits = (v - ones) & ~v & highs;
            if (pair && hits) {
                memcpy(&w, text + pos + 1, 8);
                v = (w | lower) ^ want2;
                hits &= (v - ones) & ~v & highs;
            }
        } else {
            for (size_t k = 0; k < span; k++)
                if (((uint8_t)text[pos + k] | 0x20) == c1 &&
                    (!pair || ((uint8_t)text[pos + k + 1] | 0x20) == c2))
                    hits |= 0x80ULL << (8 * k);
        }
        while (hits) {
            size_t k = (size_t)__builtin_ctzll(hits) / 8;
            hits &= hits - 1;
            const char *start = text + pos + k - at;
            if (folded_eq(start, tok, tok_len)) return true;
        }
        pos += span;
    }
    return false;
}

/* False only when the search cannot match text (text_may_have per term and phrase token).
 * Prefixes, regexes, field:value and NOT say "maybe". */
static bool search_may_text(const sql_search *s, const char *text, size_t len)
{
    switch (s->kind) {
    case SQL_SEARCH_TERM:
        return text_may_have(text, len, s->text, s->text_len);
    case SQL_SEARCH_PHRASE:
        for (uint32_t idx = 0; idx < s->token_count; idx++)
            if (!text_may_have(text, len, s->tokens[idx], strlen(s->tokens[idx]))) return false;
        return true;
    case SQL_SEARCH_AND:
        for (uint32_t idx = 0; idx < s->child_count; idx++)
            if (!search_may_text(s->children[idx], text, len)) return false;
        return true;
    case SQL_SEARCH_OR:
        for (uint32_t idx = 0; idx < s->child_count; idx++)
            if (search_may_text(s->children[idx], text, len)) return true;
        return false;
    default:
        return true;
    }
}

static int eval_node(evf *f, const evf_node *n, const qr_batch *b, const qr_event *e)
{
    switch (n->kind) {
    case EVF_AND: {
        int r = TV_TRUE;
        for (uint32_t idx = 0; idx < n->child_count; idx++) {
            int c = eval_node(f, n->children[idx], b, e);
            if (c == TV_FALSE) return TV_FALSE;
            if (c == TV_NULL) r = TV_NULL;
        }
        return r;
    }
    case EVF_OR: {
        int r = TV_FALSE;
        for (uint32_t idx = 0; idx < n->child_count; idx++) {
            int c = eval_node(f, n->children[idx], b, e);
            if (c == TV_TRUE) return TV_TRUE;
            if (c == TV_NULL) r = TV_NULL;
        }
        return r;
    }
    case EVF_NOT: {
        int c = eval_node(f, n->children[0], b, e);
        return c == TV_NULL ? TV_NULL : !c;
    }
    case EVF_CMP: {
        ev_val v;
        if (!event_value(b, e, n, &v)) return TV_NULL;
        return eval_cmp(f, n, &v);
    }
    case EVF_IS_NULL: {
        ev_val v;
        return event_value(b, e, n, &v) == n->negated;
    }
    case EVF_LIKE:
    case EVF_REGEX:
    case EVF_CONTAINS: {
        ev_val v;
        if (!event_value(b, e, n, &v)) return TV_NULL;
        size_t len;
        const char *t = value_text(f, &v, &len);
        if (!t) return TV_NULL;
        bool m;
        if (n->kind == EVF_REGEX)
            m = regex_match(f, n->re, t, len);
        else if (n->kind == EVF_LIKE)
            m = ev_like(t, len, n->s, n->s_len);
        else
            m = n->s_len == 0 || (len >= n->s_len && memmem(t, len, n->s, n->s_len) != NULL);
        return m != n->negated;
    }
    case EVF_SEARCH: {
        ev_val v;
        if (!event_value(b, e, n, &v)) return TV_NULL;
        if (v.kind == CV_STR) { /* most events lack the words: say so without tokenizing */
            if (!search_may_text(n->search, v.s.ptr ? v.s.ptr : "", v.s.len))
                return n->negated ? TV_TRUE : TV_FALSE;
            const evf_toks *t = toks_of(v.s);
            if (t && !search_may(n->search, t)) return n->negated ? TV_TRUE : TV_FALSE;
        }
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

int evf_match(evf *f, const qr_batch *b, const qr_event *e)
{
    if (!f->root) return 1;
    return eval_node(f, f->root, b, e) == TV_TRUE;
}

int evf_compile_where(const char *text, const sql_expr *where, evf **out, qr_diag *d)
{
    (void)text; /* positions in the tree already point into text */
    evf *f = filter_new();
    if (!f) return QR_ENOMEM;
    int rc = where ? compile_expr(f, where, &f->root, d) : 0;
    if (rc) {
        evf_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

uint64_t evf_regex_limit_hits(const evf *f) { return f->regex_limit_hits; }

bool evf_event_value(const qr_batch *b, const qr_event *e, const char *name, size_t name_len,
                     double *num, qr_str *str, bool *is_num)
{
    evf_node n;
    memset(&n, 0, sizeof n);
    sql_expr nm;
    memset(&nm, 0, sizeof nm);
    nm.u.name.s = name;
    nm.u.name.len = (uint32_t)name_len;
    col_of(&nm, &n);
    ev_val v;
    if (!event_value(b, e, &n, &v)) return false;
    *is_num = false;
    switch (v.kind) {
    case CV_NUM:
        *num = v.num;
        *is_num = true;
        return true;
    case CV_LEVEL:
        *str = qr_str_make(qr_level_name((qr_level)v.i), strlen(qr_level_name((qr_level)v.i)));
        return true;
    case CV_BOOL:
        *num = (double)v.i;
        *is_num = true;
        return true;
    case CV_TS:
        *num = (double)v.i;
        *is_num = true;
        return true;
    default:
        *str = v.s;
        return true;
    }
}

/* eval — one bound expression over one row, with SQL's three-valued logic.
 *
 * A missing field is NULL; a comparison with NULL (or between values that cannot be compared,
 * like a word and a number) is NULL; a filter keeps a row only when its predicate is TRUE.
 * Numbers compare across INT and FLOAT; a string compared with a number, level, time or
 * duration is parsed as one (a string that does not parse compares as NULL). Columns are read
 * through the block context, which loads them on first use (errors stick in bc->err).
 * This is the general path: the hot predicates (time ranges, labels, MATCH) never come here
 * row by row — filter.c turns them into block pruning, id lookups and posting lists. */
#include "engine/exec_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- columns ------------------------------------------------------------------------------ */

exec_value ev_col(blk_ctx *bc, int col, uint32_t row)
{
    qr_part *p = bc->p;
    switch (col) {
    case COL_TS:
        if ((!bc->ts || (bc->ts_have && !bc->ts_have[row])) && blk_load(bc, COL_TS))
            return ev_null();
        return ev_int(EXEC_TS, bc->ts[row]);
    case COL_INGEST_TS:
        if (!bc->ingest && blk_load(bc, COL_INGEST_TS)) return ev_null();
        return ev_int(EXEC_TS, bc->ingest[row]);
    case COL_LEVEL:
        if (!bc->level && blk_load(bc, COL_LEVEL)) return ev_null();
        return ev_int(EXEC_LEVEL, bc->level[row]);
    case COL_SERVICE:
    case COL_HOST: {
        bool svc = col == COL_SERVICE;
        if (!(svc ? bc->svc : bc->host) && blk_load(bc, col)) return ev_null();
        uint32_t id = svc ? bc->svc[row] : bc->host[row];
        uint32_t count = svc ? p->service_count : p->host_count;
        if (id >= count) return ev_null();
        exec_value v = {.type = EXEC_STRING};
        v.v.s = svc ? p->services[id] : p->hosts[id];
        return v;
    }
    case COL_MSG: {
        if (!bc->msg_full && !(bc->msg_have && bc->msg_have[row]) && blk_load(bc, COL_MSG))
            return ev_null();
        exec_value v = {.type = EXEC_STRING};
        v.v.s = bc->msg[row];
        return v;
    }
    default:
        break;
    }
    uint32_t count = 0;
    const qr_column *cols = blk_field(bc, (uint32_t)(col - COL_FIELD0), &count);
    for (uint32_t vi = 0; vi < count; vi++) {
        const qr_column *c = &cols[vi];
        if (!qr_column_has(c, row)) continue;
        exec_value v = {0};
        switch (c->type) {
        case QR_FT_INT:
            v.type = EXEC_INT;
            v.v.i = c->i64[row];
            return v;
        case QR_FT_FLOAT:
            v.type = EXEC_FLOAT;
            v.v.f = c->f64[row];
            return v;
        case QR_FT_BOOL:
            v.type = EXEC_BOOL;
            v.v.b = c->u8[row] != 0;
            return v;
        case QR_FT_STRING:
            v.type = EXEC_STRING;
            if (c->ids) {
                if (c->ids[row] >= c->dict_count) return ev_null();
                v.v.s = c->dict[c->ids[row]];
            } else {
                v.v.s = c->strs[row];
            }
            return v;
        default:
            return ev_null();
        }
    }
    return ev_null();
}

/* ---- comparison ----------------------------------------------------------------------------- */

static bool str_to_double(qr_str s, double *out)
{
    char buf[64];
    if (s.len == 0 || s.len >= sizeof buf) return false;
    memcpy(buf, s.ptr, s.len);
    buf[s.len] = '\0';
    char *end;
    double v = strtod(buf, &end);
    if (*end || end == buf) return false;
    *out = v;
    return true;
}

static int cmp_i64(int64_t a, int64_t b) { return a < b ? -1 : a > b; }
static int cmp_f64(double a, double b)
{
    if (isnan(a) || isnan(b)) return -2;
    return a < b ? -1 : a > b;
}

static bool is_num(uint8_t t) { return t == EXEC_INT || t == EXEC_FLOAT; }
static double as_f64(const exec_value *v)
{
    return v->type == EXEC_FLOAT ? v->v.f : (double)v->v.i;
}

/* Converts a string to the other operand's type for comparison. */
static bool coerce_str(const exec_value *s, uint8_t to, exec_value *out)
{
    qr_str t = s->v.s;
    switch (to) {
    case EXEC_INT:
    case EXEC_FLOAT: {
        double f;
        if (!str_to_double(t, &f)) return false;
        out->type = EXEC_FLOAT;
        out->v.f = f;
        return true;
    }
    case EXEC_LEVEL: {
        qr_level lv;
        if (!qr_level_parse(t.ptr, t.len, &lv)) return false;
        *out = ev_int(EXEC_LEVEL, lv);
        return true;
    }
    case EXEC_TS: {
        int64_t ns;
        if (qr_time_parse_rfc3339(t.ptr, t.len, &ns)) return false;
        *out = ev_int(EXEC_TS, ns);
        return true;
    }
    case EXEC_DURATION: {
        int64_t ns;
        if (qr_duration_parse(t.ptr, t.len, &ns)) return false;
        *out = ev_int(EXEC_DURATION, ns);
        return true;
    }
    default:
        return false;
    }
}

int ev_compare(const exec_value *a, const exec_value *b)
{
    if (a->type == EXEC_NULL || b->type == EXEC_NULL) return -2;
    if (a->type == EXEC_STRING && b->type == EXEC_STRING) {
        size_t n = a->v.s.len < b->v.s.len ? a->v.s.len : b->v.s.len;
        int c = n ? memcmp(a->v.s.ptr, b->v.s.ptr, n) : 0;
        if (c) return c < 0 ? -1 : 1;
        return cmp_i64(a->v.s.len, b->v.s.len);
    }
    if (a->type == EXEC_STRING || b->type == EXEC_STRING) {
        bool a_str = a->type == EXEC_STRING;
        exec_value conv;
        if (!coerce_str(a_str ? a : b, a_str ? b->type : a->type, &conv)) return -2;
        return a_str ? ev_compare(&conv, b) : ev_compare(a, &conv);
    }
    if (is_num(a->type) && is_num(b->type)) {
        if (a->type == EXEC_INT && b->type == EXEC_INT) return cmp_i64(a->v.i, b->v.i);
        return cmp_f64(as_f64(a), as_f64(b));
    }
    if (a->type == EXEC_BOOL && b->type == EXEC_BOOL) return cmp_i64(a->v.b, b->v.b);
    /* TS, LEVEL, DURATION: same type, or against a plain integer */
    bool a_int = a->type == EXEC_INT, b_int = b->type == EXEC_INT;
    if (a->type == b->type || a_int || b_int) {
        if (a->type == EXEC_BOOL || b->type == EXEC_BOOL) return -2;
        if (a->type == EXEC_FLOAT || b->type == EXEC_FLOAT) return -2;
        return cmp_i64(a->v.i, b->v.i);
    }
    return -2;
}

static int type_rank(uint8_t t)
{
    switch (t) {
    case EXEC_NULL:
        return 0;
    case EXEC_BOOL:
        return 1;
    case EXEC_INT:
    case EXEC_FLOAT:
        return 2;
    case EXEC_LEVEL:
        return 3;
    case EXEC_TS:
        return 4;
    case EXEC_DURATION:
        return 5;
    default:
        return 6;
    }
}

int ev_cmp(const exec_value *a, const exec_value *b)
{
    int ra = type_rank(a->type), rb = type_rank(b->type);
    if (ra != rb) return ra < rb ? -1 : 1;
    if (ra == 0) return 0;
    int c = ev_compare(a, b);
    if (c == -2) {
        /* NaN: after every number */
        bool na = a->type == EXEC_FLOAT && isnan(a->v.f),
             nb = b->type == EXEC_FLOAT && isnan(b->v.f);
        return na == nb ? 0 : na ? 1 : -1;
    }
    return c;
}

bool ev_truthy(const exec_value *v) { return v->type == EXEC_BOOL && v->v.b; }

exec_value ev_copy(qr_arena *a, const exec_value *v, bool *ok)
{
    exec_value out = *v;
    if (v->type == EXEC_STRING && v->v.s.len) {
        char *s = qr_arena_alloc(a, v->v.s.len);
        if (!s) {
            *ok = false;
            return ev_null();
        }
        memcpy(s, v->v.s.ptr, v->v.s.len);
        out.v.s.ptr = s;
    } else if (v->type == EXEC_STRING) {
        out.v.s.ptr = "";
    }
    return out;
}

qr_str ev_text(blk_ctx *bc, const exec_value *v)
{
    char buf[48];
    size_t n = 0;
    switch (v->type) {
    case EXEC_STRING:
        return v->v.s;
    case EXEC_LEVEL: {
        const char *name = qr_level_name((qr_level)v->v.i);
        return qr_str_make(name, strlen(name));
    }
    case EXEC_BOOL:
        return v->v.b ? qr_str_make("true", 4) : qr_str_make("false", 5);
    case EXEC_INT:
    case EXEC_DURATION:
        n = (size_t)snprintf(buf, sizeof buf, "%lld", (long long)v->v.i);
        break;
    case EXEC_FLOAT:
        n = (size_t)snprintf(buf, sizeof buf, "%.17g", v->v.f);
        break;
    case EXEC_TS:
        n = qr_time_format(v->v.i, buf, sizeof buf, v->v.i % QR_NS_PER_MS != 0);
        break;
    default:
        return qr_str_make("", 0);
    }
    char *s = qr_arena_strndup(&bc->q->scratch, buf, n);
    return s ? qr_str_make(s, n) : qr_str_make("", 0);
}

/* ---- LIKE (% any run, _ one byte), iterative with one backtrack point --------------------- */

bool ev_like(const char *s, size_t n, const char *pat, size_t pn)
{
    size_t si = 0, pi = 0, star_pi = (size_t)-1, star_si = 0;
    while (si < n) {
        if (pi < pn && (pat[pi] == '_' || (pat[pi] != '%' && pat[pi] == s[si]))) {
            si++;
            pi++;
        } else if (pi < pn && pat[pi] == '%') {
            star_pi = pi++;
            star_si = si;
        } else if (star_pi != (size_t)-1) {
            pi = star_pi + 1;
            si = ++star_si;
        } else {
            return false;
        }
    }
    while (pi < pn && pat[pi] == '%') pi++;
    return pi == pn;
}

/* ---- operators --------------------------------------------------------------------------------
 */

static exec_value arith(sql_op op, exec_value a, exec_value b)
{
    if (a.type == EXEC_NULL || b.type == EXEC_NULL) return ev_null();
    /* time and durations */
    if (a.type == EXEC_TS || a.type == EXEC_DURATION || b.type == EXEC_DURATION ||
        b.type == EXEC_TS) {
        if (a.type == EXEC_FLOAT || b.type == EXEC_FLOAT) return ev_null();
        if (a.type == EXEC_STRING || b.type == EXEC_STRING) return ev_null();
        int64_t r;
        if (op == SQL_OP_ADD && !__builtin_add_overflow(a.v.i, b.v.i, &r)) {
            bool ts = a.type == EXEC_TS || b.type == EXEC_TS;
            if (a.type == EXEC_TS && b.type == EXEC_TS) return ev_null();
            return ev_int(ts ? EXEC_TS : EXEC_DURATION, r);
        }
        if (op == SQL_OP_SUB && !__builtin_sub_overflow(a.v.i, b.v.i, &r)) {
            if (a.type == EXEC_TS && b.type == EXEC_TS) return ev_int(EXEC_DURATION, r);
            if (b.type == EXEC_TS) return ev_null();
            return ev_int(a.type == EXEC_TS ? EXEC_TS : EXEC_DURATION, r);
        }
        if (op == SQL_OP_MUL && a.type != EXEC_TS && b.type != EXEC_TS &&
            !__builtin_mul_overflow(a.v.i, b.v.i, &r))
            return ev_int(EXEC_DURATION, r);
        if (op == SQL_OP_DIV && a.type == EXEC_DURATION && b.v.i != 0)
            return b.type == EXEC_DURATION ? ev_int(EXEC_INT, a.v.i / b.v.i)
                                           : ev_int(EXEC_DURATION, a.v.i / b.v.i);
        return ev_null();
    }
    if (!is_num(a.type) || !is_num(b.type)) return ev_null();
    if (a.type == EXEC_INT && b.type == EXEC_INT) {
        int64_t r;
        switch (op) {
        case SQL_OP_ADD:
            if (!__builtin_add_overflow(a.v.i, b.v.i, &r)) return ev_int(EXEC_INT, r);
            break;
        case SQL_OP_SUB:
            if (!__builtin_sub_overflow(a.v.i, b.v.i, &r)) return ev_int(EXEC_INT, r);
            break;
        case SQL_OP_MUL:
            if (!__builtin_mul_overflow(a.v.i, b.v.i, &r)) return ev_int(EXEC_INT, r);
            break;
        case SQL_OP_DIV:
            if (b.v.i == 0 || (a.v.i == INT64_MIN && b.v.i == -1)) return ev_null();
            return ev_int(EXEC_INT, a.v.i / b.v.i);
        case SQL_OP_MOD:
            if (b.v.i == 0 || b.v.i == -1) return b.v.i ? ev_int(EXEC_INT, 0) : ev_null();
            return ev_int(EXEC_INT, a.v.i % b.v.i);
        default:
            return ev_null();
        }
    }
    double x = as_f64(&a), y = as_f64(&b), r;
    switch (op) {
    case SQL_OP_ADD:
        r = x + y;
        break;
    case SQL_OP_SUB:
        r = x - y;
        break;
    case SQL_OP_MUL:
        r = x * y;
        break;
    case SQL_OP_DIV:
        if (y == 0) return ev_null();
        r = x / y;
        break;
    case SQL_OP_MOD:
        if (y == 0) return ev_null();
        r = fmod(x, y);
        break;
    default:
        return ev_null();
    }
    exec_value v = {.type = EXEC_FLOAT};
    v.v.f = r;
    return v;
}

static exec_value bool_or_not(bool b, bool negated) { return ev_bool(negated ? !b : b); }

static exec_value eval_bin(const bx *e, blk_ctx *bc, uint32_t row)
{
    exec_value a = ev_eval(e->a, bc, row);
    if (a.type == EXEC_NULL) return ev_null();
    exec_value b = ev_eval(e->b, bc, row);
    if (b.type == EXEC_NULL) return ev_null();
    switch ((sql_op)e->op) {
    case SQL_OP_ADD:
    case SQL_OP_SUB:
    case SQL_OP_MUL:
    case SQL_OP_DIV:
    case SQL_OP_MOD:
        return arith((sql_op)e->op, a, b);
    case SQL_OP_EQ:
    case SQL_OP_NE:
    case SQL_OP_LT:
    case SQL_OP_LE:
    case SQL_OP_GT:
    case SQL_OP_GE: {
        int c = ev_compare(&a, &b);
        if (c == -2) return ev_null();
        bool r = e->op == SQL_OP_EQ   ? c == 0
                 : e->op == SQL_OP_NE ? c != 0
                 : e->op == SQL_OP_LT ? c < 0
                 : e->op == SQL_OP_LE ? c <= 0
                 : e->op == SQL_OP_GT ? c > 0
                                      : c >= 0;
        return ev_bool(r);
    }
    case SQL_OP_LIKE: {
        qr_str s = ev_text(bc, &a), pat = ev_text(bc, &b);
        return bool_or_not(ev_like(s.ptr, s.len, pat.ptr, pat.len), e->negated);
    }
    case SQL_OP_CONTAINS: {
        qr_str s = ev_text(bc, &a), pat = ev_text(bc, &b);
        bool found = pat.len == 0 || (s.len >= pat.len && memmem(s.ptr, s.len, pat.ptr, pat.len));
        return bool_or_not(found, e->negated);
    }
    case SQL_OP_REGEX: {
        if (!e->re) return ev_null();
        int m = exec_regex_match(bc->q, e->re, ev_text(bc, &a));
        if (m < 0) {
            bc->err = m;
            return ev_null();
        }
        return bool_or_not(m == 1, e->negated);
    }
    default:
        return ev_null();
    }
}

static exec_value eval_call(const bx *e, blk_ctx *bc, uint32_t row)
{
    switch ((fn_id)e->fn) {
    case FN_NOW:
        return ev_int(EXEC_TS, bc->q->now_ns);
    case FN_LINE_FORMAT:
        return lq_line_format_eval(e, bc, row);
    case FN_NUMBER:
        return lq_number_eval(e, bc, row);
    case FN_COALESCE:
        for (uint32_t idx = 0; idx < e->n; idx++) {
            exec_value v = ev_eval(e->items[idx], bc, row);
            if (v.type != EXEC_NULL) return v;
        }
        return ev_null();
    case FN_BUCKET: {
        exec_value v = ev_eval(e->items[0], bc, row);
        if (v.type != EXEC_TS && v.type != EXEC_INT) return ev_null();
        int64_t w = e->width_ns, t = v.v.i;
        int64_t b = t / w * w;
        if (t < 0 && b != t) b -= w;
        return ev_int(EXEC_TS, b);
    }
    case FN_LENGTH: {
        exec_value v = ev_eval(e->items[0], bc, row);
        if (v.type == EXEC_NULL) return v;
        qr_str s = ev_text(bc, &v);
        int64_t chars = 0;
        for (uint32_t idx = 0; idx < s.len; idx++) chars += ((uint8_t)s.ptr[idx] & 0xC0) != 0x80;
        return ev_int(EXEC_INT, chars);
    }
    case FN_LOWER:
    case FN_UPPER: {
        exec_value v = ev_eval(e->items[0], bc, row);
        if (v.type == EXEC_NULL) return v;
        qr_str s = ev_text(bc, &v);
        char *out = qr_arena_alloc(&bc->q->scratch, s.len + 1);
        if (!out) return ev_null();
        for (uint32_t idx = 0; idx < s.len; idx++) {
            char c = s.ptr[idx];
            if (e->fn == FN_LOWER && c >= 'A' && c <= 'Z') c = (char)(c + 32);
            if (e->fn == FN_UPPER && c >= 'a' && c <= 'z') c = (char)(c - 32);
            out[idx] = c;
        }
        exec_value r = {.type = EXEC_STRING};
        r.v.s = qr_str_make(out, s.len);
        return r;
    }
    }
    return ev_null();
}

exec_value ev_eval(const bx *e, blk_ctx *bc, uint32_t row)
{
    switch ((bx_kind)e->kind) {
    case BX_CONST:
        return e->k;
    case BX_COL:
        return ev_col(bc, e->col, row);
    case BX_NOT: {
        exec_value v = ev_eval(e->a, bc, row);
        return v.type == EXEC_BOOL ? ev_bool(!v.v.b) : ev_null();
    }
    case BX_NEG: {
        exec_value v = ev_eval(e->a, bc, row);
        if (v.type == EXEC_FLOAT)
            v.v.f = -v.v.f;
        else if (v.type == EXEC_INT || v.type == EXEC_DURATION) {
            if (v.v.i == INT64_MIN) return ev_null();
            v.v.i = -v.v.i;
        } else
            return ev_null();
        return v;
    }
    case BX_AND: {
        bool any_null = false;
        for (uint32_t idx = 0; idx < e->n; idx++) {
            exec_value v = ev_eval(e->items[idx], bc, row);
            if (v.type != EXEC_BOOL)
                any_null = true;
            else if (!v.v.b)
                return ev_bool(false);
        }
        return any_null ? ev_null() : ev_bool(true);
    }
    case BX_OR: {
        bool any_null = false;
        for (uint32_t idx = 0; idx < e->n; idx++) {
            exec_value v = ev_eval(e->items[idx], bc, row);
            if (v.type != EXEC_BOOL)
                any_null = true;
            else if (v.v.b)
                return ev_bool(true);
        }
        return any_null ? ev_null() : ev_bool(false);
    }
    case BX_BIN:
        return eval_bin(e, bc, row);
    case BX_IN: {
        exec_value v = ev_eval(e->a, bc, row);
        if (v.type == EXEC_NULL) return v;
        bool any_null = false;
        for (uint32_t idx = 0; idx < e->n; idx++) {
            exec_value item = ev_eval(e->items[idx], bc, row);
            int c = ev_compare(&v, &item);
            if (c == 0) return ev_bool(!e->negated);
            if (c == -2) any_null = true;
        }
        return any_null ? ev_null() : ev_bool(e->negated);
    }
    case BX_BETWEEN: {
        exec_value v = ev_eval(e->a, bc, row);
        exec_value lo = ev_eval(e->b, bc, row), hi = ev_eval(e->c, bc, row);
        int c1 = ev_compare(&v, &lo), c2 = ev_compare(&v, &hi);
        if (c1 == -2 || c2 == -2) return ev_null();
        return bool_or_not(c1 >= 0 && c2 <= 0, e->negated);
    }
    case BX_ISNULL: {
        exec_value v = ev_eval(e->a, bc, row);
        return bool_or_not(v.type == EXEC_NULL, e->negated);
    }
    case BX_MATCH: {
        exec_value v = ev_eval(e->a, bc, row);
        if (v.type == EXEC_NULL) return v;
        return bool_or_not(match_row(e->ms, bc, row, ev_text(bc, &v)), e->negated);
    }
    case BX_CALL:
        return eval_call(e, bc, row);
    case BX_AGG:
        return bc->post_aggs ? bc->post_aggs[e->slot] : ev_null();
    case BX_GROUP:
        return bc->post_groups ? bc->post_groups[e->slot] : ev_null();
    case BX_EXTRACT:
        return lq_extract_eval(e, bc, row);
    }
    return ev_null();
}

/* alert_sql — CREATE ALERT checked and compiled into a rule, the WHEN evaluator, and the
 * result tables of the alert statements (alert.h, docs/alerts.md).
 *
 * Checks, each with the position of what is wrong: the name is a file-safe identifier; FROM is
 * logs; the SELECT lists exactly one aggregate (plus, optionally, GROUP BY labels) and has no
 * HAVING/ORDER BY/LIMIT; GROUP BY lists labels; WINDOW >= EVERY and the slot ring stays under
 * ALERT_MAX_SLOTS; WHEN refers to aggregates (calls or aliases of the SELECT's aggregate),
 * numbers and arithmetic only, and to at least one aggregate; fields the tenant has never
 * stored are unknown (checked when the tenant has data); URLs are http(s); LABELS keys are
 * label names, each once. */
#include "engine/alert_int.h"

#include "common/qr_hash.h"
#include "common/qr_time.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *alert_state_name(uint8_t s)
{
    switch (s) {
    case ALERT_PENDING:
        return "pending";
    case ALERT_FIRING:
        return "firing";
    case ALERT_RESOLVED:
        return "resolved";
    default:
        return "ok";
    }
}

bool alert_state_parse(const char *s, size_t len, uint8_t *out)
{
    for (uint8_t st = ALERT_OK; st <= ALERT_RESOLVED; st++) {
        const char *n = alert_state_name(st);
        if (strlen(n) == len && memcmp(n, s, len) == 0) {
            *out = st;
            return true;
        }
    }
    return false;
}

bool alert_name_ok(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 64) return false;
    for (size_t idx = 0; idx < len; idx++) {
        unsigned char c = (unsigned char)name[idx];
        if (!isalnum(c) && c != '_' && c != '-') return false;
    }
    return true;
}

static bool label_name_ok(const char *name)
{
    if (!*name || !(isalpha((unsigned char)*name) || *name == '_')) return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_') return false;
    return strlen(name) <= 128;
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static void duration_text(int64_t ns, char *buf, size_t cap)
{
    exec_value v = {.type = EXEC_DURATION, .v.i = ns};
    qr_buf b;
    qr_buf_init(&b);
    exec_value_text(&v, &b);
    snprintf(buf, cap, "%.*s", (int)b.len, b.data ? (const char *)b.data : "");
    qr_buf_fini(&b);
}

/* ---- field checks -------------------------------------------------------------------------- */

static bool field_builtin(const char *name)
{
    static const char *const builtins[] = {"ts", "ingest_ts", "service", "host", "level", "msg"};
    for (size_t idx = 0; idx < sizeof builtins / sizeof builtins[0]; idx++)
        if (strcmp(name, builtins[idx]) == 0) return true;
    return false;
}

static bool field_known(db_snapshot *snap, const char *name, size_t len)
{
    if (field_builtin(name)) return true;
    size_t parts = db_snapshot_part_count(snap);
    for (size_t pi = 0; pi < parts; pi++) {
        const qr_part *p = db_snapshot_part(snap, pi);
        for (uint32_t fi = 0; fi < p->field_count; fi++)
            if (p->fields[fi].key.len == len && memcmp(p->fields[fi].key.ptr, name, len) == 0)
                return true;
    }
    return false;
}

/* Every FIELD under e must be known to the tenant (when it has data). */
static int check_fields(db_snapshot *snap, const sql_expr *e, qr_diag *d)
{
    if (!e || !snap || db_snapshot_part_count(snap) == 0) return 0;
    switch (e->kind) {
    case SQL_EXPR_FIELD:
        if (!field_known(snap, e->u.name.s, e->u.name.len))
            return sql_diag_at(d, e->pos, QR_ESYNTAX, "unknown field \"%s\"", e->u.name.s);
        return 0;
    case SQL_EXPR_UNARY:
        return check_fields(snap, e->u.unary.arg, d);
    case SQL_EXPR_BINARY: {
        int rc = check_fields(snap, e->u.binary.lhs, d);
        return rc ? rc : check_fields(snap, e->u.binary.rhs, d);
    }
    case SQL_EXPR_AND:
    case SQL_EXPR_OR:
        for (uint32_t idx = 0; idx < e->u.list.count; idx++) {
            int rc = check_fields(snap, e->u.list.items[idx], d);
            if (rc) return rc;
        }
        return 0;
    case SQL_EXPR_IN: {
        int rc = check_fields(snap, e->u.in.arg, d);
        for (uint32_t idx = 0; !rc && idx < e->u.in.count; idx++)
            rc = check_fields(snap, e->u.in.items[idx], d);
        return rc;
    }
    case SQL_EXPR_BETWEEN: {
        int rc = check_fields(snap, e->u.between.arg, d);
        if (!rc) rc = check_fields(snap, e->u.between.lo, d);
        return rc ? rc : check_fields(snap, e->u.between.hi, d);
    }
    case SQL_EXPR_IS_NULL:
        return check_fields(snap, e->u.is_null.arg, d);
    case SQL_EXPR_CALL:
        for (uint32_t idx = 0; idx < e->u.call.arg_count; idx++) {
            int rc = check_fields(snap, e->u.call.args[idx], d);
            if (rc) return rc;
        }
        return 0;
    default:
        return 0;
    }
}

/* ---- WHEN ---------------------------------------------------------------------------------- */

static bool is_aggregate_call(const sql_expr *e)
{
    return e && e->kind == SQL_EXPR_CALL && e->u.call.func && e->u.call.func->is_aggregate;
}

static int expr_text(qr_arena *a, const sql_expr *e, const char **out)
{
    qr_buf b;
    qr_buf_init(&b);
    int rc = sql_print_expr(e, &b);
    *out = rc || !qr_buf_ok(&b) ? NULL : qr_arena_strndup(a, (const char *)b.data, b.len);
    qr_buf_fini(&b);
    return *out ? 0 : QR_ENOMEM;
}

typedef struct compile_ctx {
    alert_rule *r;
    const char *text;
    qr_diag *d;
    uint32_t agg_cap;
    const char **agg_texts;
    uint32_t when_aggs; /* aggregate references found in WHEN */
} compile_ctx;

/* Index of the aggregate call (same printed text = same aggregate), added when new. */
static int agg_intern(compile_ctx *c, const sql_expr *call)
{
    alert_rule *r = c->r;
    const char *t;
    if (expr_text(&r->arena, call, &t)) return qr_diag_set(c->d, QR_ENOMEM, "out of memory");
    for (uint32_t idx = 0; idx < r->agg_count; idx++)
        if (strcmp(c->agg_texts[idx], t) == 0) return (int)idx;
    if (r->agg_count == c->agg_cap) {
        uint32_t cap = c->agg_cap ? c->agg_cap * 2 : 4;
        cq_agg_spec *aggs = qr_arena_calloc(&r->arena, cap, sizeof *aggs);
        const sql_expr **calls = qr_arena_calloc(&r->arena, cap, sizeof *calls);
        const char **texts = qr_arena_calloc(&r->arena, cap, sizeof *texts);
        if (!aggs || !calls || !texts) return qr_diag_set(c->d, QR_ENOMEM, "out of memory");
        if (r->agg_count) {
            memcpy(aggs, r->aggs, r->agg_count * sizeof *aggs);
            memcpy(calls, r->agg_calls, r->agg_count * sizeof *calls);
            memcpy(texts, c->agg_texts, r->agg_count * sizeof *texts);
        }
        r->aggs = aggs;
        r->agg_calls = calls;
        c->agg_texts = texts;
        c->agg_cap = cap;
    }
    int rc = cq_agg_spec_from_call(c->text, call, &r->aggs[r->agg_count], c->d);
    if (rc) return rc;
    r->agg_calls[r->agg_count] = call;
    c->agg_texts[r->agg_count] = t;
    return (int)r->agg_count++;
}

/* The SELECT item aliased name, when it is the aggregate. */
static const sql_expr *alias_aggregate(const alert_rule *r, const char *name, size_t len)
{
    const sql_select *s = r->al->select;
    for (uint32_t idx = 0; idx < s->item_count; idx++) {
        const char *a = s->items[idx].alias;
        if (a && strlen(a) == len && strncasecmp(a, name, len) == 0 &&
            is_aggregate_call(s->items[idx].expr))
            return s->items[idx].expr;
    }
    return NULL;
}

static int check_when(compile_ctx *c, const sql_expr *e)
{
    if (!e) return 0;
    switch (e->kind) {
    case SQL_EXPR_NULL:
    case SQL_EXPR_BOOL:
    case SQL_EXPR_INT:
    case SQL_EXPR_FLOAT:
    case SQL_EXPR_DURATION:
        return 0;
    case SQL_EXPR_FIELD: {
        const sql_expr *agg = alias_aggregate(c->r, e->u.name.s, e->u.name.len);
        if (!agg)
            return sql_diag_at(c->d, e->pos, QR_ESYNTAX,
                               "the condition must be over the aggregate: \"%s\" is not an "
                               "aggregate or an alias of one",
                               e->u.name.s);
        c->when_aggs++;
        int idx = agg_intern(c, agg);
        return idx < 0 ? idx : 0;
    }
    case SQL_EXPR_CALL: {
        if (!is_aggregate_call(e))
            return sql_diag_at(c->d, e->pos, QR_ESYNTAX,
                               "the condition takes aggregates, numbers and arithmetic; "
                               "%s() is not an aggregate",
                               e->u.call.name);
        c->when_aggs++;
        int idx = agg_intern(c, e);
        return idx < 0 ? idx : 0;
    }
    case SQL_EXPR_UNARY:
        return check_when(c, e->u.unary.arg);
    case SQL_EXPR_BINARY:
        if (e->u.binary.op > SQL_OP_GE)
            return sql_diag_at(c->d, e->pos, QR_ESYNTAX,
                               "the condition takes comparisons and arithmetic over "
                               "aggregates, not text operators");
        {
            int rc = check_when(c, e->u.binary.lhs);
            return rc ? rc : check_when(c, e->u.binary.rhs);
        }
    case SQL_EXPR_AND:
    case SQL_EXPR_OR:
        for (uint32_t idx = 0; idx < e->u.list.count; idx++) {
            int rc = check_when(c, e->u.list.items[idx]);
            if (rc) return rc;
        }
        return 0;
    case SQL_EXPR_BETWEEN: {
        int rc = check_when(c, e->u.between.arg);
        if (!rc) rc = check_when(c, e->u.between.lo);
        return rc ? rc : check_when(c, e->u.between.hi);
    }
    case SQL_EXPR_IS_NULL:
        return check_when(c, e->u.is_null.arg);
    default:
        return sql_diag_at(c->d, e->pos, QR_ESYNTAX,
                           "the condition takes aggregates, numbers and arithmetic");
    }
}

typedef struct wval {
    bool null;
    double v;
} wval;

static int agg_index_of(const alert_rule *r, const sql_expr *call)
{
    for (uint32_t idx = 0; idx < r->agg_count; idx++)
        if (r->agg_calls[idx] == call) return (int)idx;
    /* the same aggregate written twice: match by text */
    qr_buf a, b;
    qr_buf_init(&a);
    qr_buf_init(&b);
    sql_print_expr(call, &a);
    int found = -1;
    for (uint32_t idx = 0; idx < r->agg_count && found < 0; idx++) {
        qr_buf_clear(&b);
        sql_print_expr(r->agg_calls[idx], &b);
        if (a.len == b.len && (!a.len || memcmp(a.data, b.data, a.len) == 0)) found = (int)idx;
    }
    qr_buf_fini(&a);
    qr_buf_fini(&b);
    return found;
}

static wval when_value(const alert_rule *r, const sql_expr *e, const double *vals, const bool *has)
{
    wval out = {true, 0};
    switch (e->kind) {
    case SQL_EXPR_BOOL:
        return (wval){false, e->u.b ? 1 : 0};
    case SQL_EXPR_INT:
        return (wval){false, (double)e->u.i};
    case SQL_EXPR_FLOAT:
        return (wval){false, e->u.f};
    case SQL_EXPR_DURATION:
        return (wval){false, (double)e->u.duration_ns / (double)QR_NS_PER_MS};
    case SQL_EXPR_FIELD:
    case SQL_EXPR_CALL: {
        const sql_expr *call =
            e->kind == SQL_EXPR_FIELD ? alias_aggregate(r, e->u.name.s, e->u.name.len) : e;
        int idx = call ? agg_index_of(r, call) : -1;
        if (idx >= 0 && has[idx]) return (wval){false, vals[idx]};
        return out;
    }
    case SQL_EXPR_UNARY: {
        wval a = when_value(r, e->u.unary.arg, vals, has);
        if (a.null) return a;
        return (wval){false, e->u.unary.op == SQL_OP_NOT ? (a.v == 0) : -a.v};
    }
    case SQL_EXPR_BINARY: {
        wval a = when_value(r, e->u.binary.lhs, vals, has);
        wval b = when_value(r, e->u.binary.rhs, vals, has);
        if (a.null || b.null) return out;
        switch (e->u.binary.op) {
        case SQL_OP_ADD:
            return (wval){false, a.v + b.v};
        case SQL_OP_SUB:
            return (wval){false, a.v - b.v};
        case SQL_OP_MUL:
            return (wval){false, a.v * b.v};
        case SQL_OP_DIV:
            return b.v == 0 ? out : (wval){false, a.v / b.v};
        case SQL_OP_MOD:
            return b.v == 0 ? out : (wval){false, fmod(a.v, b.v)};
        case SQL_OP_EQ:
            return (wval){false, a.v == b.v};
        case SQL_OP_NE:
            return (wval){false, a.v != b.v};
        case SQL_OP_LT:
            return (wval){false, a.v < b.v};
        case SQL_OP_LE:
            return (wval){false, a.v <= b.v};
        case SQL_OP_GT:
            return (wval){false, a.v > b.v};
        case SQL_OP_GE:
            return (wval){false, a.v >= b.v};
        default:
            return out;
        }
    }
    case SQL_EXPR_AND: {
        bool any_null = false;
        for (uint32_t idx = 0; idx < e->u.list.count; idx++) {
            wval a = when_value(r, e->u.list.items[idx], vals, has);
            if (!a.null && a.v == 0) return (wval){false, 0};
            if (a.null) any_null = true;
        }
        return any_null ? out : (wval){false, 1};
    }
    case SQL_EXPR_OR: {
        bool any_null = false;
        for (uint32_t idx = 0; idx < e->u.list.count; idx++) {
            wval a = when_value(r, e->u.list.items[idx], vals, has);
            if (!a.null && a.v != 0) return (wval){false, 1};
            if (a.null) any_null = true;
        }
        return any_null ? out : (wval){false, 0};
    }
    case SQL_EXPR_BETWEEN: {
        wval a = when_value(r, e->u.between.arg, vals, has);
        wval lo = when_value(r, e->u.between.lo, vals, has);
        wval hi = when_value(r, e->u.between.hi, vals, has);
        if (a.null || lo.null || hi.null) return out;
        bool in = a.v >= lo.v && a.v <= hi.v;
        return (wval){false, e->u.between.negated ? !in : in};
    }
    case SQL_EXPR_IS_NULL: {
        wval a = when_value(r, e->u.is_null.arg, vals, has);
        return (wval){false, e->u.is_null.negated ? !a.null : a.null};
    }
    default:
        return out;
    }
}

int alert_when_eval(const alert_rule *r, const double *vals, const bool *has)
{
    wval v = when_value(r, r->al->when, vals, has);
    return !v.null && v.v != 0;
}

/* ---- compile ------------------------------------------------------------------------------- */

void alert_rule_free(alert_rule *r)
{
    if (!r) return;
    evf_free(r->filter);
    cqb_where_fini(&r->where);
    for (uint32_t gi = 0; gi < r->group_cap; gi++) {
        alert_group *g = r->groups ? r->groups[gi] : NULL;
        if (g) alert_group_free(r, g);
    }
    free(r->groups);
    qr_buf_fini(&r->keybuf);
    qr_arena_fini(&r->arena);
    free(r);
}

static int print_to_arena(qr_arena *a, const sql_stmt *stmt, const char **out)
{
    qr_buf b;
    qr_buf_init(&b);
    int rc = sql_print(stmt, &b);
    *out = rc || !qr_buf_ok(&b) ? NULL : qr_arena_strndup(a, (const char *)b.data, b.len);
    qr_buf_fini(&b);
    return *out ? 0 : QR_ENOMEM;
}

static int compile_kv(alert_rule *r, uint32_t count, const sql_option *opts, notify_kv **out,
                      const char *what, qr_diag *d)
{
    *out = count ? qr_arena_calloc(&r->arena, count, sizeof **out) : NULL;
    if (count && !*out) return qr_diag_set(d, QR_ENOMEM, "out of memory");
    for (uint32_t idx = 0; idx < count; idx++) {
        if (!label_name_ok(opts[idx].key))
            return sql_diag_at(d, opts[idx].pos, QR_ESYNTAX,
                               "%s name \"%s\" must be [A-Za-z_][A-Za-z0-9_]*", what,
                               opts[idx].key);
        for (uint32_t prev = 0; prev < idx; prev++)
            if (strcmp(opts[prev].key, opts[idx].key) == 0)
                return sql_diag_at(d, opts[idx].pos, QR_ESYNTAX, "%s \"%s\" given twice", what,
                                   opts[idx].key);
        (*out)[idx].key = opts[idx].key;
        (*out)[idx].value = opts[idx].value->u.str.s;
    }
    return 0;
}

int alert_rule_compile(const char *tenant, const char *text, db_snapshot *snap, alert_rule **out,
                       qr_diag *d)
{
    alert_rule *r = calloc(1, sizeof *r);
    if (!r) return qr_diag_set(d, QR_ENOMEM, "out of memory");
    qr_arena_init(&r->arena, 16 * 1024, 16u << 20);
    qr_buf_init(&r->keybuf);
    snprintf(r->tenant, sizeof r->tenant, "%s", tenant);
    int rc = 0;
    const char *copy = qr_arena_strdup(&r->arena, text);
    sql_stmt *stmt = NULL;
    if (!copy) rc = qr_diag_set(d, QR_ENOMEM, "out of memory");
    if (!rc) rc = sql_parse(copy, strlen(copy), &r->arena, &stmt, d);
    if (!rc && stmt->kind != SQL_STMT_CREATE_ALERT)
        rc = sql_diag_at(d, stmt->pos, QR_ESYNTAX, "expected CREATE ALERT");
    if (rc) {
        alert_rule_free(r);
        return rc;
    }
    const sql_alert *al = stmt->u.alert;
    const sql_select *s = al->select;
    r->al = al;
    compile_ctx c = {r, copy, d, 0, NULL, 0};

    if (!alert_name_ok(al->name)) {
        rc = sql_diag_at(d, al->name_pos, QR_ESYNTAX,
                         "alert names are 1-64 letters, digits, '_' or '-'");
        goto fail;
    }
    snprintf(r->name, sizeof r->name, "%s", al->name);
    if (s->from && strcasecmp(s->from, "logs") != 0) {
        rc = sql_diag_at(d, s->from_pos, QR_ESYNTAX, "alerts read FROM logs, not \"%s\"", s->from);
        goto fail;
    }
    if (s->having || s->order_count || s->limit >= 0 || s->offset >= 0) {
        rc = sql_diag_at(d, s->pos, QR_ESYNTAX,
                         "an alert SELECT takes no HAVING, ORDER BY, LIMIT or OFFSET: "
                         "the condition goes in WHEN");
        goto fail;
    }
    if (al->window_ns < al->every_ns) {
        char w[32], e[32];
        duration_text(al->window_ns, w, sizeof w);
        duration_text(al->every_ns, e, sizeof e);
        rc = sql_diag_at(d, al->window_pos, QR_ESYNTAX,
                         "WINDOW %s is smaller than EVERY %s: every evaluation must see a "
                         "whole window",
                         w, e);
        goto fail;
    }
    r->window_ns = al->window_ns;
    r->every_ns = al->every_ns;
    r->slot_ns = gcd64(al->window_ns, al->every_ns);
    if (r->window_ns / r->slot_ns + 2 > ALERT_MAX_SLOTS) {
        rc = sql_diag_at(d, al->window_pos, QR_ELIMIT,
                         "WINDOW / gcd(WINDOW, EVERY) is over %d slots: make EVERY divide "
                         "WINDOW",
                         ALERT_MAX_SLOTS - 2);
        goto fail;
    }
    r->nslots = (uint32_t)(r->window_ns / r->slot_ns + 2);
    r->for_ns = al->for_ns;
    r->cooldown_ns = al->cooldown_ns > 0 ? al->cooldown_ns : 0;

    /* GROUP BY: labels */
    r->group_count = s->group_count;
    r->group_fields =
        s->group_count ? qr_arena_calloc(&r->arena, s->group_count, sizeof(char *)) : NULL;
    for (uint32_t idx = 0; idx < s->group_count; idx++) {
        const sql_expr *g = s->group_by[idx];
        if (g->kind != SQL_EXPR_FIELD || strcmp(g->u.name.s, "ts") == 0 ||
            strcmp(g->u.name.s, "msg") == 0) {
            rc = sql_diag_at(d, g->pos, QR_ESYNTAX,
                             "alerts GROUP BY labels or fields (one instance per group), "
                             "not ts, msg or expressions");
            goto fail;
        }
        if ((rc = check_fields(snap, g, d))) goto fail;
        r->group_fields[idx] = g->u.name.s;
    }
    /* SELECT: one aggregate, plus group labels */
    int value_idx = -1;
    for (uint32_t idx = 0; idx < s->item_count; idx++) {
        const sql_expr *e = s->items[idx].expr;
        if (is_aggregate_call(e)) {
            if (value_idx >= 0) {
                rc = sql_diag_at(d, e->pos, QR_ESYNTAX,
                                 "an alert SELECT lists one aggregate; conditions over "
                                 "more go in WHEN");
                goto fail;
            }
            if ((rc = check_fields(snap, e, d))) goto fail;
            value_idx = agg_intern(&c, e);
            if (value_idx < 0) {
                rc = value_idx;
                goto fail;
            }
            continue;
        }
        bool is_group = false;
        for (uint32_t gi = 0; e->kind == SQL_EXPR_FIELD && gi < r->group_count; gi++)
            if (strcmp(e->u.name.s, r->group_fields[gi]) == 0) is_group = true;
        if (!is_group) {
            rc = sql_diag_at(d, e->pos, QR_ESYNTAX,
                             "an alert SELECT lists one aggregate (count(*), sum(x), "
                             "p99(x), ...) and GROUP BY labels");
            goto fail;
        }
    }
    if (value_idx < 0) {
        rc = sql_diag_at(d, s->pos, QR_ESYNTAX,
                         "an alert SELECT needs an aggregate, like SELECT count(*)");
        goto fail;
    }
    r->value_agg = (uint32_t)value_idx;
    /* WHEN: over the aggregates */
    if ((rc = check_when(&c, al->when))) goto fail;
    if (c.when_aggs == 0) {
        rc = sql_diag_at(d, al->when->pos, QR_ESYNTAX,
                         "the condition must be over the aggregate, like WHEN count(*) > 100");
        goto fail;
    }
    for (uint32_t idx = 0; idx < r->agg_count; idx++)
        if ((rc = check_fields(snap, r->agg_calls[idx], d))) goto fail;
    /* WHERE */
    if ((rc = check_fields(snap, s->where, d))) goto fail;
    if ((rc = evf_compile_where(copy, s->where, &r->filter, d))) goto fail;
    if ((rc = cqb_where_compile(copy, s->where, &r->where, d))) goto fail;
    /* channels */
    for (uint32_t idx = 0; idx < al->channel_count; idx++) {
        const sql_channel *ch = &al->channels[idx];
        const char *url = ch->kind == SQL_CHANNEL_PAGERDUTY ? ch->url : ch->target;
        if (ch->kind == SQL_CHANNEL_PAGERDUTY && !*ch->target) {
            rc = sql_diag_at(d, ch->pos, QR_ESYNTAX, "PAGERDUTY needs a routing key");
            goto fail;
        }
        if (url && !notify_url_ok(url)) {
            rc =
                sql_diag_at(d, ch->pos, QR_ESYNTAX,
                            "bad URL \"%s\": expected http://host[:port]/path or https://...", url);
            goto fail;
        }
    }
    if ((rc = compile_kv(r, al->label_count, al->labels, &r->labels, "label", d))) goto fail;
    if ((rc = compile_kv(r, al->annotation_count, al->annotations, &r->annotations, "annotation",
                         d)))
        goto fail;
    /* texts */
    sql_stmt sel = {.kind = SQL_STMT_SELECT, .pos = s->pos};
    sel.u.select = al->select;
    if (print_to_arena(&r->arena, stmt, &r->text) ||
        print_to_arena(&r->arena, &sel, &r->select_text) ||
        expr_text(&r->arena, al->when, &r->cond_text)) {
        rc = qr_diag_set(d, QR_ENOMEM, "out of memory");
        goto fail;
    }
    r->group_cap = 16;
    r->groups = calloc(r->group_cap, sizeof *r->groups);
    if (!r->groups) {
        rc = qr_diag_set(d, QR_ENOMEM, "out of memory");
        goto fail;
    }
    *out = r;
    return 0;
fail:
    alert_rule_free(r);
    return rc;
}

/* ---- results ------------------------------------------------------------------------------- */

int alert_result_columns(exec_result *r, uint32_t n, const char *const *names, const uint8_t *types)
{
    r->col_count = n;
    r->col_names = qr_arena_calloc(&r->arena, n, sizeof *r->col_names);
    r->col_types = qr_arena_calloc(&r->arena, n, 1);
    if (!r->col_names || !r->col_types) return QR_ENOMEM;
    memcpy(r->col_names, names, n * sizeof *names);
    memcpy(r->col_types, types, n);
    return 0;
}

int alert_result_row(exec_result *r, const exec_value *cells)
{
    uint32_t n = r->col_count;
    /* capacity: 8, then doubled whenever row_count reaches a power of two */
    uint64_t rows = r->row_count;
    exec_value *grown = r->cells;
    if (rows == 0 || (rows >= 8 && (rows & (rows - 1)) == 0)) {
        uint64_t cap = rows ? rows * 2 : 8;
        grown = qr_arena_alloc(&r->arena, cap * n * sizeof *grown);
        if (!grown) return QR_ENOMEM;
        if (rows) memcpy(grown, r->cells, rows * n * sizeof *grown);
    }
    for (uint32_t col = 0; col < n; col++) {
        exec_value v = cells[col];
        if (v.type == EXEC_STRING) {
            char *s = qr_arena_strndup(&r->arena, v.v.s.ptr ? v.v.s.ptr : "", v.v.s.len);
            if (!s) return QR_ENOMEM;
            v.v.s.ptr = s;
        }
        grown[r->row_count * n + col] = v;
    }
    r->cells = grown;
    r->row_count++;
    r->hits = r->row_count;
    return 0;
}

/* ast — builders for the syntax tree (types in ast.h), used by the grammar actions.
 *
 * Every builder returns NULL once an error is recorded in the context or when a child is
 * NULL, so actions chain builders without testing. Each expression records its depth; a tree
 * deeper than SQL_MAX_DEPTH is rejected with QR_ELIMIT, which bounds every recursive walk
 * (checks, printer, planner) no matter what text came in. AND/OR chains are flattened into one
 * node whose item array grows by doubling in place, so a long chain costs O(n), not O(n^2). */
#include "sql/sql_int.h"
#include "sql/parse.h"

#include <string.h>

/* ---- positions ------------------------------------------------------------------------------ */

void ast_pos_cursor_init(ast_pos_cursor *c, const char *base, const char *start, sql_pos start_pos)
{
    c->base = base;
    c->p = start;
    c->pos = start_pos;
}

sql_pos ast_pos_cursor_at(ast_pos_cursor *c, const char *target)
{
    if (target < c->p) {
        c->p = c->base;
        c->pos.line = 1;
        c->pos.column = 1;
    }
    while (c->p < target) {
        unsigned char b = (unsigned char)*c->p++;
        if (b == '\n') {
            c->pos.line++;
            c->pos.column = 1;
        } else if ((b & 0xC0) != 0x80) {
            c->pos.column++;
        }
    }
    c->pos.offset = (uint32_t)(target - c->base);
    return c->pos;
}

/* ---- lists -------------------------------------------------------------------------------- */

ast_list *ast_list_new(parse_ctx *ctx, void *first)
{
    if (ctx->err) return NULL;
    ast_list *list = qr_arena_alloc(ctx->arena, sizeof *list);
    void **items = qr_arena_alloc(ctx->arena, 4 * sizeof *items);
    if (!list || !items) {
        parse_error_oom(ctx, ctx->tok_pos);
        return NULL;
    }
    list->count = 1;
    list->cap = 4;
    list->items = items;
    items[0] = first;
    return list;
}

ast_list *ast_list_add(parse_ctx *ctx, ast_list *list, void *item)
{
    if (ctx->err || !list) return NULL;
    if (list->count == list->cap) {
        void **items = qr_arena_alloc(ctx->arena, 2 * (size_t)list->cap * sizeof *items);
        if (!items) {
            parse_error_oom(ctx, ctx->tok_pos);
            return NULL;
        }
        memcpy(items, list->items, list->count * sizeof *items);
        list->items = items;
        list->cap *= 2;
    }
    list->items[list->count++] = item;
    return list;
}

void **ast_list_array(parse_ctx *ctx, ast_list *list, uint32_t *count)
{
    (void)ctx;
    *count = list ? list->count : 0;
    return list ? list->items : NULL;
}

void *ast_list_copy(parse_ctx *ctx, ast_list *list, size_t elem_bytes, uint32_t *count)
{
    *count = 0;
    if (!list || ctx->err) return NULL;
    char *array = qr_arena_alloc(ctx->arena, list->count * elem_bytes);
    if (!array) {
        parse_error_oom(ctx, ctx->tok_pos);
        return NULL;
    }
    for (uint32_t idx = 0; idx < list->count; idx++) {
        if (!list->items[idx]) return NULL;
        memcpy(array + idx * elem_bytes, list->items[idx], elem_bytes);
    }
    *count = list->count;
    return array;
}

/* ---- strings ------------------------------------------------------------------------------ */

char *ast_strdup(parse_ctx *ctx, const char *s, size_t len)
{
    char *copy = qr_arena_strndup(ctx->arena, s, len);
    if (!copy) parse_error_oom(ctx, ctx->tok_pos);
    return copy;
}

/* ---- expressions ---------------------------------------------------------------------------- */

sql_expr *ast_expr_new(parse_ctx *ctx, sql_expr_kind kind, sql_pos pos)
{
    if (ctx->err) return NULL;
    sql_expr *e = qr_arena_calloc(ctx->arena, 1, sizeof *e);
    if (!e) {
        parse_error_oom(ctx, pos);
        return NULL;
    }
    e->kind = kind;
    e->pos = pos;
    e->depth = 1;
    return e;
}

/* Sets e's depth from a child's; rejects trees deeper than SQL_MAX_DEPTH. */
static sql_expr *ast_depth_over(parse_ctx *ctx, sql_expr *e, const sql_expr *child)
{
    if (!e || !child) return e;
    if (child->depth + 1 > e->depth) e->depth = child->depth + 1;
    if (e->depth > SQL_MAX_DEPTH) {
        parse_error_at(ctx, e->pos, QR_ELIMIT, "expression nested deeper than %d levels",
                       SQL_MAX_DEPTH);
        return NULL;
    }
    return e;
}

sql_expr *ast_literal(parse_ctx *ctx, int token_code, const lex_token *tok)
{
    sql_expr *e = ast_expr_new(ctx, SQL_EXPR_NULL, tok->pos);
    if (!e) return NULL;
    switch (token_code) {
    case TK_INTEGER:
        e->kind = SQL_EXPR_INT;
        e->u.i = tok->v.i;
        break;
    case TK_FLOAT:
        e->kind = SQL_EXPR_FLOAT;
        e->u.f = tok->v.f;
        break;
    case TK_DURATION:
        e->kind = SQL_EXPR_DURATION;
        e->u.duration_ns = tok->v.i;
        break;
    case TK_TRUE:
    case TK_FALSE:
        e->kind = SQL_EXPR_BOOL;
        e->u.b = token_code == TK_TRUE;
        break;
    default:
        break; /* NULL */
    }
    return e;
}

sql_expr *ast_string(parse_ctx *ctx, const lex_token *tok)
{
    sql_expr *e = ast_expr_new(ctx, SQL_EXPR_STRING, tok->pos);
    if (!e) return NULL;
    e->u.str.s = tok->str;
    e->u.str.len = tok->str_len;
    return e;
}

sql_expr *ast_field(parse_ctx *ctx, const lex_token *tok)
{
    /* an unquoted TRACE..FATAL/UNKNOWN in capitals is a level, not a field */
    int level = tok->quote == 'q' ? -1 : lex_level_word(tok->str, tok->str_len);
    sql_expr *e = ast_expr_new(ctx, level >= 0 ? SQL_EXPR_LEVEL : SQL_EXPR_FIELD, tok->pos);
    if (!e) return NULL;
    if (level >= 0) {
        e->u.level = (uint8_t)level;
    } else {
        e->u.name.s = tok->str;
        e->u.name.len = tok->str_len;
    }
    return e;
}

sql_expr *ast_field_named(parse_ctx *ctx, const char *name, sql_pos pos)
{
    sql_expr *e = ast_expr_new(ctx, SQL_EXPR_FIELD, pos);
    if (!e) return NULL;
    e->u.name.s = name;
    e->u.name.len = (uint32_t)strlen(name);
    return e;
}

sql_expr *ast_unary(parse_ctx *ctx, sql_op op, sql_expr *arg, sql_pos pos)
{
    if (!arg) return NULL;
    if (op == SQL_OP_NEG) {
        /* fold -literal so that "-5" prints and reparses as the same node */
        switch (arg->kind) {
        case SQL_EXPR_INT:
            arg->u.i = -arg->u.i;
            arg->pos = pos;
            return arg;
        case SQL_EXPR_FLOAT:
            arg->u.f = -arg->u.f;
            arg->pos = pos;
            return arg;
        case SQL_EXPR_DURATION:
            arg->u.duration_ns = -arg->u.duration_ns;
            arg->pos = pos;
            return arg;
        default:
            break;
        }
    }
    sql_expr *e = ast_expr_new(ctx, SQL_EXPR_UNARY, pos);
    if (!e) return NULL;
    e->u.unary.op = op;
    e->u.unary.arg = arg;
    return ast_depth_over(ctx, e, arg);
}

sql_expr *ast_binary(parse_ctx *ctx, sql_op op, sql_expr *lhs, sql_expr *rhs)
{
    if (!lhs || !rhs) return NULL;
    sql_expr *e = ast_expr_new(ctx, SQL_EXPR_BINARY, lhs->pos);
    if (!e) return NULL;
    e->u.binary.op = op;
    e->u.binary.lhs = lhs;
    e->u.binary.rhs = rhs;
    e = ast_depth_over(ctx, e, lhs);
    return ast_depth_over(ctx, e, rhs);
}

static bool ast_is_pow2(uint32_t n)
{
    return n && (n & (n - 1)) == 0;
}

/* Appends to an AND/OR item array whose capacity is the next power of two >= count. */
static bool ast_logical_push(parse_ctx *ctx, sql_expr *e, sql_expr *item)
{
    uint32_t count = e->u.list.count;
    if (count >= 2 && ast_is_pow2(count)) {
        sql_expr **items = qr_arena_alloc(ctx->arena, 2 * (size_t)count * sizeof *items);
        if (!items) {
            parse_error_oom(ctx, e->pos);
            return false;
        }
        memcpy(items, e->u.list.items, count * sizeof *items);
        e->u.list.items = items;
    }
    e->u.list.items[e->u.list.count++] = item;
    return ast_depth_over(ctx, e, item) != NULL;
}

sql_expr *ast_logical(parse_ctx *ctx, sql_expr_kind kind, sql_expr *lhs, sql_expr *rhs)
{
    if (!lhs || !rhs || ctx->err) return NULL;
    sql_expr *e = lhs;
    if (lhs->kind != kind) {
        e = ast_expr_new(ctx, kind, lhs->pos);
        sql_expr **items = qr_arena_alloc(ctx->arena, 2 * sizeof *items);
        if (!e || !items) {
            parse_error_oom(ctx, lhs->pos);
            return NULL;
        }
        items[0] = lhs;
        e->u.list.items = items;
        e->u.list.count = 1;
        if (!ast_depth_over(ctx, e, lhs)) return NULL;
    }
    /* lhs of the same kind was built here and is referenced by nobody else: extend it */
    if (rhs->kind == kind) {
        for (uint32_t idx = 0; idx < rhs->u.list.count; idx++)
            if (!ast_logical_push(ctx, e, rhs->u.list.items[idx])) return NULL;
    } else if (!ast_logical_push(ctx, e, rhs)) {
        return NULL;
    }
    return e;
}

static sql_expr **ast_items(parse_ctx *ctx, sql_expr *e, ast_list *list, uint32_t *count)
{
    sql_expr **items = (sql_expr **)ast_list_array(ctx, list, count);
    for (uint32_t idx = 0; e && idx < *count; idx++) {
        if (!items[idx]) return NULL;
        if (!ast_depth_over(ctx, e, items[idx])) return NULL;
    }
    return items;
}

sql_expr *ast_in(parse_ctx *ctx, sql_expr *arg, ast_list *items, bool negated)
{
    if (!arg || !items) return NULL;
    sql_expr *e = ast_expr_new(ctx, SQL_EXPR_IN, arg->pos);
    if (!e || !ast_depth_over(ctx, e, arg)) return NULL;
    e->u.in.negated = negated;
    e->u.in.arg = arg;
    e->u.in.items = ast_items(ctx, e, items, &e->u.in.count);
    return e->u.in.items ? e : NULL;
}

sql_expr *ast_between(parse_ctx *ctx, sql_expr *arg, sql_expr *lo, sql_expr *hi, bool negated)
{
    if (!arg || !lo || !hi) return NULL;
    sql_expr *e = ast_expr_new(ctx, SQL_EXPR_BETWEEN, arg->pos);
    if (!e) return NULL;
    e->u.between.negated = negated;
    e->u.between.arg = arg;
    e->u.between.lo = lo;
    e->u.between.hi = hi;
    e = ast_depth_over(ctx, e, arg);
    e = ast_depth_over(ctx, e, lo);
    return ast_depth_over(ctx, e, hi);
}

sql_expr *ast_is_null(parse_ctx *ctx, sql_expr *arg, bool negated)
{
    if (!arg) return NULL;
    sql_expr *e = ast_expr_new(ctx, SQL_EXPR_IS_NULL, arg->pos);
    if (!e) return NULL;
    e->u.is_null.negated = negated;
    e->u.is_null.arg = arg;
    return ast_depth_over(ctx, e, arg);
}

sql_expr *ast_call(parse_ctx *ctx, const lex_token *name, ast_list *args, bool star)
{
    sql_expr *e = ast_expr_new(ctx, SQL_EXPR_CALL, name->pos);
    char *lower = ast_strdup(ctx, name->str, name->str_len);
    if (!e || !lower) return NULL;
    for (char *p = lower; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    e->u.call.name = lower;
    e->u.call.name_len = name->str_len;
    e->u.call.star = star;
    if (args) {
        e->u.call.args = ast_items(ctx, e, args, &e->u.call.arg_count);
        if (!e->u.call.args) return NULL;
    }
    return e;
}

sql_expr *ast_match(parse_ctx *ctx, sql_expr *lhs, const lex_token *str, bool negated)
{
    sql_expr *e = ast_binary(ctx, SQL_OP_MATCH, lhs, ast_string(ctx, str));
    if (!e) return NULL;
    e->u.binary.negated = negated;
    e->u.binary.search = search_parse(ctx, str);
    return e->u.binary.search ? e : NULL;
}

sql_stmt *ast_stmt_new(parse_ctx *ctx, sql_stmt_kind kind, sql_pos pos)
{
    if (ctx->err) return NULL;
    sql_stmt *s = qr_arena_calloc(ctx->arena, 1, sizeof *s);
    if (!s) {
        parse_error_oom(ctx, pos);
        return NULL;
    }
    s->kind = kind;
    s->pos = pos;
    return s;
}

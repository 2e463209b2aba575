/* query — sql_parse: copy the text, pick the face, run the grammar, run the early checks. */
#include "sql/sql_int.h"
#include "sql/parse.h"

#include <stdio.h>
#include <string.h>

int sql_diag_vat(qr_diag *d, sql_pos pos, int code, const char *fmt, va_list ap)
{
    if (!d) return code;
    char msg[QR_DIAG_MSG_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    qr_diag_set(d, code, "line %u, column %u: %s", pos.line, pos.column, msg);
    d->line = (int32_t)pos.line;
    d->column = (int32_t)pos.column;
    d->offset = pos.offset;
    return code;
}

int sql_diag_at(qr_diag *d, sql_pos pos, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sql_diag_vat(d, pos, code, fmt, ap);
    va_end(ap);
    return code;
}

int parse_error_at(parse_ctx *ctx, sql_pos pos, int code, const char *fmt, ...)
{
    if (ctx->err) return ctx->err;
    ctx->err = code;
    qr_diag *d = ctx->diag;
    if (!d || d->code != 0) return code;
    va_list ap;
    va_start(ap, fmt);
    sql_diag_vat(d, pos, code, fmt, ap);
    va_end(ap);
    return code;
}

int parse_error_oom(parse_ctx *ctx, sql_pos pos)
{
    if (ctx->arena->over_budget)
        return parse_error_at(ctx, pos, QR_ELIMIT, "query needs more memory than its budget");
    return parse_error_at(ctx, pos, QR_ENOMEM, "out of memory");
}

/* LogQL when the statement (after an optional EXPLAIN) starts with '{' or a LogQL function
 * name. The probe lexes in SQL mode without reporting; the real run reports any error. */
static bool query_is_logql(parse_ctx *ctx)
{
    parse_ctx probe = *ctx;
    probe.diag = NULL;
    lex_state lx;
    lex_init(&lx, &probe);
    lex_token tok;
    int code = lex_next(&lx, &tok);
    if (code == TK_EXPLAIN) code = lex_next(&lx, &tok);
    if (code == TK_LBRACE) return true;
    return code == TK_ID && sql_lq_func_lookup(tok.text, tok.len, NULL);
}

int sql_parse(const char *text, size_t len, qr_arena *arena, sql_stmt **out, qr_diag *d)
{
    parse_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.arena = arena;
    ctx.diag = d;
    sql_pos start = {0, 1, 1};
    ctx.tok_pos = start;
    if (len > SQL_MAX_TEXT_BYTES)
        return parse_error_at(&ctx, start, QR_ELIMIT, "query is %zu bytes, longer than %d", len,
                              SQL_MAX_TEXT_BYTES);
    char *copy = qr_arena_alloc(arena, len + 1);
    if (!copy) return parse_error_oom(&ctx, start);
    if (len) memcpy(copy, text, len);
    copy[len] = '\0'; /* the lexer's sentinel */
    ctx.src = copy;
    ctx.len = len;
    const char *nul = memchr(copy, '\0', len);
    if (nul) {
        ast_pos_cursor c;
        ast_pos_cursor_init(&c, copy, copy, start);
        return parse_error_at(&ctx, ast_pos_cursor_at(&c, nul), QR_ESYNTAX,
                              "NUL byte in query text");
    }
    ctx.logql = query_is_logql(&ctx);
    parse_run(&ctx);
    if (!ctx.err && !ctx.result) parse_error_at(&ctx, start, QR_ESYNTAX, "empty statement");
    if (!ctx.err) check_stmt(&ctx, ctx.result);
    if (ctx.err) return ctx.err;
    *out = ctx.result;
    return 0;
}

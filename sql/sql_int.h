/* sql_int — internals shared by the lexer, the grammar actions, the AST builders, the search
 * parser, the checks and the printer. Not for use outside sql/.
 *
 * Data flow: sql_parse (query.c) copies the text into the arena with a NUL sentinel, picks
 * the face, then parse_run (parse.y) pulls tokens from lex_next (lexer.re) and feeds them to
 * the lemon parser, whose actions build nodes with ast_* (ast.c) and parse MATCH strings with
 * search_parse (search.c). After a clean parse, check_stmt (func.c) runs the early checks.
 * The first error wins: it is recorded in parse_ctx (and its qr_diag), everything after it
 * is skipped, and the nodes built so far are abandoned in the arena. */
#ifndef SQL_INT_H
#define SQL_INT_H

#include "sql/query.h"

#include <stdarg.h>

/* ---- parse context ------------------------------------------------------------------------- */

typedef struct parse_ctx {
    qr_arena *arena;
    const char *src; /* arena copy, src[len] == '\0' */
    size_t len;
    qr_diag *diag;
    int err;         /* first error's code, 0 while none */
    bool logql;      /* lex "..." as strings and LogQL function names as LQFUNC */
    sql_pos tok_pos; /* position of the token being fed to the parser */
    sql_stmt *result;
    struct parse_snapshot *snapshot; /* parser states before the current token (parse.y) */
} parse_ctx;

/* Records the first error: "line L, column C: <message>". Returns the code (or the code of the
 * error already recorded). */
int parse_error_at(parse_ctx *ctx, sql_pos pos, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Records QR_ENOMEM, or QR_ELIMIT when the arena ran over its budget. Returns the code. */
int parse_error_oom(parse_ctx *ctx, sql_pos pos);

/* ---- positions ------------------------------------------------------------------------------ */

/* Walks forward through text, counting lines and UTF-8 characters, so that positions of
 * increasing offsets cost O(text) in total. */
typedef struct ast_pos_cursor {
    const char *base; /* offset 0 */
    const char *p;
    sql_pos pos;
} ast_pos_cursor;

void ast_pos_cursor_init(ast_pos_cursor *c, const char *base, const char *start, sql_pos start_pos);
/* Position of target; a target before the cursor restarts the walk from the text's start. */
sql_pos ast_pos_cursor_at(ast_pos_cursor *c, const char *target);

/* ---- lexer (lexer.re) ----------------------------------------------------------------------- */

typedef struct lex_token {
    const char *text; /* raw source bytes */
    uint32_t len;
    sql_pos pos;
    union {
        int64_t i; /* INTEGER value, DURATION nanoseconds */
        double f;  /* FLOAT */
    } v;
    const char *str; /* decoded STRING / QID, or the ID text: NUL-terminated arena copy */
    uint32_t str_len;
    char quote; /* STRING: '\'' (SQL), '"' (LogQL, escapes) or '`' (LogQL raw) */
} lex_token;

typedef struct lex_state {
    parse_ctx *ctx;
    const char *cur;
    const char *end;
    int depth; /* open ( [ { */
    ast_pos_cursor pos;
} lex_state;

void lex_init(lex_state *lx, parse_ctx *ctx);
/* Next token's code (TK_*, 0 at the end) into tok; a negative QR_E* code after recording a
 * lexical error in ctx. */
int lex_next(lex_state *lx, lex_token *tok);

/* Keyword token code for an identifier (case-insensitive), or 0. */
int lex_keyword(const char *s, size_t len);
/* True when name can be written without quotes: identifier syntax, not a keyword, not a
 * capitalized level word. */
bool lex_ident_is_bare(const char *name, size_t len);
/* The level named by an identifier written in capitals (TRACE..FATAL, UNKNOWN), or -1. */
int lex_level_word(const char *s, size_t len);

/* Decodes one unit of a quoted string's body at raw[*raw_idx] (the body excludes quotes) into
 * out (up to 4 bytes), advancing *raw_idx. Returns the byte count, or -1 for a bad escape
 * (then *raw_idx is left at the backslash). */
int lex_string_unit(char quote, const char *raw, size_t raw_len, size_t *raw_idx, char out[4]);

/* ---- parser (parse.y) ----------------------------------------------------------------------- */

/* Runs the lemon parser over the whole text; sets ctx->result or ctx->err. */
void parse_run(parse_ctx *ctx);

/* ---- AST builders (ast.c): all take NULL children after an error and return NULL then ------ */

typedef struct ast_list {
    uint32_t count;
    uint32_t cap;
    void **items;
} ast_list;

ast_list *ast_list_new(parse_ctx *ctx, void *first);
ast_list *ast_list_add(parse_ctx *ctx, ast_list *list, void *item);

char *ast_strdup(parse_ctx *ctx, const char *s, size_t len);

sql_expr *ast_expr_new(parse_ctx *ctx, sql_expr_kind kind, sql_pos pos);
sql_expr *ast_literal(parse_ctx *ctx, int token_code, const lex_token *tok);
sql_expr *ast_field(parse_ctx *ctx, const lex_token *tok);
sql_expr *ast_field_named(parse_ctx *ctx, const char *name, sql_pos pos);
sql_expr *ast_string(parse_ctx *ctx, const lex_token *tok);
sql_expr *ast_unary(parse_ctx *ctx, sql_op op, sql_expr *arg, sql_pos pos);
sql_expr *ast_binary(parse_ctx *ctx, sql_op op, sql_expr *lhs, sql_expr *rhs);
sql_expr *ast_logical(parse_ctx *ctx, sql_expr_kind kind, sql_expr *lhs, sql_expr *rhs);
sql_expr *ast_in(parse_ctx *ctx, sql_expr *arg, ast_list *items, bool negated);
sql_expr *ast_between(parse_ctx *ctx, sql_expr *arg, sql_expr *lo, sql_expr *hi, bool negated);
sql_expr *ast_is_null(parse_ctx *ctx, sql_expr *arg, bool negated);
sql_expr *ast_call(parse_ctx *ctx, const lex_token *name, ast_list *args, bool star);
sql_expr *ast_match(parse_ctx *ctx, sql_expr *lhs, const lex_token *str, bool negated);

sql_stmt *ast_stmt_new(parse_ctx *ctx, sql_stmt_kind kind, sql_pos pos);
/* Copies a list of pointers into an arena array (count may be 0: NULL array). */
void **ast_list_array(parse_ctx *ctx, ast_list *list, uint32_t *count);
/* Copies the structs a list points to into one arena array of elem_bytes each. */
void *ast_list_copy(parse_ctx *ctx, ast_list *list, size_t elem_bytes, uint32_t *count);

/* ---- MATCH search strings (search.c) --------------------------------------------------------- */

/* Parses the decoded string of tok; positions point into the whole query text. */
sql_search *search_parse(parse_ctx *ctx, const lex_token *tok);

/* ---- checks (func.c) ------------------------------------------------------------------------- */

int check_stmt(parse_ctx *ctx, sql_stmt *stmt);
/* CREATE ROLLUP's shape (rollup_check.c); run after check_select on its SELECT. */
int check_rollup(parse_ctx *ctx, const sql_rollup *r);

/* ---- printing helpers (print.c) -------------------------------------------------------------- */

/* Canonical duration text: 1h30m, 250ms, 0s. buf needs 64 bytes. */
size_t print_duration(int64_t ns, char *buf, size_t cap);

#endif

/* search — the small language inside MATCH '...' strings, parsed into sql_search nodes.
 *
 *   query   := or
 *   or      := and ("OR" and)*
 *   and     := unary (["AND"] unary)*          juxtaposition means AND
 *   unary   := ("NOT" | "-") unary | primary   "-" must touch its operand: -retry
 *   primary := "(" or ")" | "phrase" | /regex/ | name ":" value | word
 *   value   := word | "phrase" | /regex/
 * OR, AND and NOT are operators only in capitals; "or" is a word. A word is a run of bytes
 * other than white space, parentheses and '"'; a trailing '*' makes it a prefix; name://...
 * is a word (a URL), not a field with a regex. Words and
 * phrases go through the storage tokenizer (storage/tokenize.h), so the query matches what was
 * indexed: one token is a TERM, several (a UUID, "user_id=42") a PHRASE of those tokens.
 * Inside phrases \" and \\ are escapes; inside regexes \/ is a slash and other escapes are
 * kept for the regex engine.
 *
 * Positions: the string arrives decoded (SQL '' already collapsed); each search token maps its
 * decoded offset back to the raw source bytes, so errors and nodes point into the whole query
 * text. Tokens are read left to right, so the mapping walks the literal once. */
#include "sql/sql_int.h"

#include <stdio.h>
#include <string.h>

#include "storage/tokenize.h"

typedef enum search_tok_kind {
    SEARCH_EOF,
    SEARCH_LP,
    SEARCH_RP,
    SEARCH_OR,
    SEARCH_AND,
    SEARCH_NOT, /* NOT or a leading '-' */
    SEARCH_TERM /* a parsed primary: word, phrase, regex or field:value (in tok.node) */
} search_tok_kind;

typedef struct search_tok {
    search_tok_kind kind;
    sql_pos pos;
    const char *text; /* for messages */
    size_t len;
    sql_search *node;
} search_tok;

typedef struct search_state {
    parse_ctx *ctx;
    const char *s; /* decoded string */
    size_t n;
    size_t idx;
    /* decoded offset -> raw source position */
    char quote;
    const char *raw; /* body of the literal, after the opening quote */
    size_t raw_len;
    size_t raw_idx;
    size_t dec_idx;
    ast_pos_cursor cursor;
    search_tok tok;
    int depth;
} search_state;

static sql_pos search_pos(search_state *st, size_t dec_off)
{
    char unit[4];
    while (st->dec_idx < dec_off && st->raw_idx < st->raw_len) {
        size_t before = st->raw_idx;
        int n = lex_string_unit(st->quote, st->raw, st->raw_len, &st->raw_idx, unit);
        if (n < 0) break; /* cannot happen: the lexer decoded this literal already */
        if (st->dec_idx + (size_t)n > dec_off) {
            st->raw_idx = before; /* dec_off is inside a multi-byte escape: point at it */
            break;
        }
        st->dec_idx += (size_t)n;
    }
    return ast_pos_cursor_at(&st->cursor, st->raw + st->raw_idx);
}

static int search_error(search_state *st, sql_pos pos, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int search_error(search_state *st, sql_pos pos, int code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return parse_error_at(st->ctx, pos, code, "in search string: %s", msg);
}

static sql_search *search_node(search_state *st, sql_search_kind kind, sql_pos pos)
{
    sql_search *node = qr_arena_calloc(st->ctx->arena, 1, sizeof *node);
    if (!node) parse_error_oom(st->ctx, pos);
    if (node) {
        node->kind = kind;
        node->pos = pos;
    }
    return node;
}

static bool search_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool search_is_word_byte(char c)
{
    return c != '\0' && !search_is_space(c) && c != '(' && c != ')' && c != '"';
}

/* ---- words and phrases through the storage tokenizer ---------------------------------------- */

typedef struct search_tokens {
    search_state *st;
    ast_list *list;
} search_tokens;

static int search_collect_token(void *arg, const char *tok, size_t len, size_t offset)
{
    (void)offset;
    search_tokens *acc = arg;
    parse_ctx *ctx = acc->st->ctx;
    char *copy = ast_strdup(ctx, tok, len);
    if (!copy) return -1;
    acc->list = acc->list ? ast_list_add(ctx, acc->list, copy) : ast_list_new(ctx, copy);
    return acc->list ? 0 : -1;
}

/* A TERM for one token, a PHRASE for several; text is what was written. */
static sql_search *search_text_node(search_state *st, const char *text, size_t len, sql_pos pos,
                                    bool is_phrase)
{
    search_tokens acc = {st, NULL};
    if (qr_tokenize(text, len, search_collect_token, &acc) != 0) return NULL;
    uint32_t count = 0;
    const char **tokens = (const char **)ast_list_array(st->ctx, acc.list, &count);
    if (count == 0) {
        if (is_phrase) {
            search_error(st, pos, QR_ESYNTAX, "phrase \"%.*s\" has no letters or digits",
                         (int)(len > 40 ? 40 : len), text);
        } else {
            search_error(st, pos, QR_ESYNTAX, "'%.*s' has no letters or digits to search for",
                         (int)(len > 40 ? 40 : len), text);
        }
        return NULL;
    }
    sql_search *node = search_node(st, count == 1 ? SQL_SEARCH_TERM : SQL_SEARCH_PHRASE, pos);
    if (!node) return NULL;
    if (count == 1) {
        node->text = tokens[0];
        node->text_len = (uint32_t)strlen(tokens[0]);
    } else {
        node->text = ast_strdup(st->ctx, text, len);
        node->text_len = (uint32_t)len;
        node->tokens = tokens;
        node->token_count = count;
        if (!node->text) return NULL;
    }
    return node;
}

/* A bare word: TERM, PHRASE, or PREFIX when it ends in '*'. */
static sql_search *search_word_node(search_state *st, const char *text, size_t len, sql_pos pos)
{
    const char *star = memchr(text, '*', len);
    if (!star) return search_text_node(st, text, len, pos, false);
    if (len == 1) {
        search_error(st, pos, QR_ESYNTAX, "'*' needs a word before it, like pay*");
        return NULL;
    }
    if (star != text + len - 1) {
        search_error(st, pos, QR_ESYNTAX, "'*' is only allowed at the end of a word: '%.*s'",
                     (int)(len > 40 ? 40 : len), text);
        return NULL;
    }
    sql_search *node = search_text_node(st, text, len - 1, pos, false);
    if (!node) {
        return NULL;
    }
    if (node->kind != SQL_SEARCH_TERM) {
        search_error(st, pos, QR_ESYNTAX, "prefix search needs a single word before '*': '%.*s'",
                     (int)(len > 40 ? 40 : len), text);
        return NULL;
    }
    node->kind = SQL_SEARCH_PREFIX;
    return node;
}

/* Reads "phrase" starting at the quote; returns its node. */
static sql_search *search_phrase(search_state *st)
{
    size_t start = st->idx;
    sql_pos pos = search_pos(st, start);
    char *buf = qr_arena_alloc(st->ctx->arena, st->n - start + 1);
    if (!buf) {
        parse_error_oom(st->ctx, pos);
        return NULL;
    }
    size_t len = 0, idx = start + 1;
    for (;;) {
        if (idx >= st->n) {
            search_error(st, pos, QR_ESYNTAX, "unterminated phrase");
            return NULL;
        }
        char c = st->s[idx];
        if (c == '"') break;
        if (c == '\\' && idx + 1 < st->n && (st->s[idx + 1] == '"' || st->s[idx + 1] == '\\')) {
            c = st->s[idx + 1];
            idx++;
        }
        buf[len++] = c;
        idx++;
    }
    st->idx = idx + 1;
    buf[len] = '\0';
    sql_search *node = search_text_node(st, buf, len, pos, true);
    if (node && node->kind == SQL_SEARCH_PHRASE) node->text = buf;
    return node;
}

/* Reads /regex/ starting at the slash. */
static sql_search *search_regex(search_state *st)
{
    size_t start = st->idx;
    sql_pos pos = search_pos(st, start);
    char *buf = qr_arena_alloc(st->ctx->arena, st->n - start + 1);
    if (!buf) {
        parse_error_oom(st->ctx, pos);
        return NULL;
    }
    size_t len = 0, idx = start + 1;
    for (;;) {
        if (idx >= st->n) {
            search_error(st, pos, QR_ESYNTAX, "unterminated regex");
            return NULL;
        }
        char c = st->s[idx];
        if (c == '/') break;
        if (c == '\\' && idx + 1 < st->n) {
            if (st->s[idx + 1] == '/') {
                buf[len++] = '/';
            } else {
                buf[len++] = '\\';
                buf[len++] = st->s[idx + 1];
            }
            idx += 2;
            continue;
        }
        buf[len++] = c;
        idx++;
    }
    st->idx = idx + 1;
    buf[len] = '\0';
    if (len == 0) {
        search_error(st, pos, QR_ESYNTAX, "empty regex");
        return NULL;
    }
    sql_search *node = search_node(st, SQL_SEARCH_REGEX, pos);
    if (node) {
        node->text = buf;
        node->text_len = (uint32_t)len;
    }
    return node;
}

static bool search_is_name(const char *s, size_t len)
{
    if (len == 0) return false;
    char c = s[0];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')) return false;
    for (size_t idx = 1; idx < len; idx++) {
        c = s[idx];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* "name://..." is a URL, not name:/regex/ */
static bool search_is_url(const char *colon, size_t left)
{
    return left >= 3 && colon[1] == '/' && colon[2] == '/';
}

/* Reads the next token into st->tok; false after an error. */
static bool search_next(search_state *st)
{
    while (st->idx < st->n && search_is_space(st->s[st->idx])) st->idx++;
    search_tok *tok = &st->tok;
    memset(tok, 0, sizeof *tok);
    tok->pos = search_pos(st, st->idx);
    tok->text = st->s + st->idx;
    if (st->idx >= st->n) {
        tok->kind = SEARCH_EOF;
        return true;
    }
    char c = st->s[st->idx];
    if (c == '(' || c == ')') {
        tok->kind = c == '(' ? SEARCH_LP : SEARCH_RP;
        tok->len = 1;
        st->idx++;
        return true;
    }
    if (c == '"' || c == '/') {
        tok->kind = SEARCH_TERM;
        tok->node = c == '"' ? search_phrase(st) : search_regex(st);
        tok->len = (size_t)(st->s + st->idx - tok->text);
        return tok->node != NULL;
    }
    if (c == '-' && st->idx + 1 < st->n && !search_is_space(st->s[st->idx + 1]) &&
        st->s[st->idx + 1] != ')') {
        tok->kind = SEARCH_NOT;
        tok->len = 1;
        st->idx++;
        return true;
    }
    size_t start = st->idx;
    while (st->idx < st->n && search_is_word_byte(st->s[st->idx])) {
        /* name:"phrase" and name:/regex/ continue past what ends a word */
        if (st->s[st->idx] == ':' && search_is_name(st->s + start, st->idx - start) &&
            !search_is_url(st->s + st->idx, st->n - st->idx))
            break;
        st->idx++;
    }
    size_t len = st->idx - start;
    tok->len = len;
    if (st->idx < st->n && st->s[st->idx] == ':') {
        /* field:value */
        const char *name = st->s + start;
        st->idx++;
        sql_search *field = search_node(st, SQL_SEARCH_FIELD, tok->pos);
        if (!field) return false;
        field->text = ast_strdup(st->ctx, name, len);
        field->text_len = (uint32_t)len;
        sql_search **children = qr_arena_alloc(st->ctx->arena, sizeof *children);
        if (!field->text || !children) {
            parse_error_oom(st->ctx, tok->pos);
            return false;
        }
        char v = st->idx < st->n ? st->s[st->idx] : '\0';
        sql_search *value;
        if (v == '"') {
            value = search_phrase(st);
        } else if (v == '/') {
            value = search_regex(st);
        } else if (search_is_word_byte(v)) {
            size_t value_start = st->idx;
            sql_pos value_pos = search_pos(st, value_start);
            while (st->idx < st->n && search_is_word_byte(st->s[st->idx])) st->idx++;
            value = search_word_node(st, st->s + value_start, st->idx - value_start, value_pos);
        } else {
            search_error(st, tok->pos, QR_ESYNTAX, "missing value after '%.*s:'", (int)len, name);
            return false;
        }
        if (!value) return false;
        children[0] = value;
        field->children = children;
        field->child_count = 1;
        tok->kind = SEARCH_TERM;
        tok->node = field;
        tok->len = (size_t)(st->s + st->idx - tok->text);
        return true;
    }
    if (len == 2 && memcmp(tok->text, "OR", 2) == 0) {
        tok->kind = SEARCH_OR;
        return true;
    }
    if (len == 3 && memcmp(tok->text, "AND", 3) == 0) {
        tok->kind = SEARCH_AND;
        return true;
    }
    if (len == 3 && memcmp(tok->text, "NOT", 3) == 0) {
        tok->kind = SEARCH_NOT;
        return true;
    }
    tok->kind = SEARCH_TERM;
    tok->node = search_word_node(st, tok->text, len, tok->pos);
    return tok->node != NULL;
}

/* ---- recursive descent ------------------------------------------------------------------------
 */

static sql_search *search_or(search_state *st);

static int search_expected(search_state *st)
{
    if (st->tok.kind == SEARCH_EOF)
        return search_error(st, st->tok.pos, QR_ESYNTAX,
                            "expected a word, phrase or '(' at the end");
    if (st->tok.kind == SEARCH_RP)
        return search_error(st, st->tok.pos, QR_ESYNTAX, "unbalanced ')'");
    return search_error(st, st->tok.pos, QR_ESYNTAX, "expected a word, phrase or '(' before '%.*s'",
                        (int)st->tok.len, st->tok.text);
}

static bool search_enter(search_state *st)
{
    if (++st->depth > SQL_MAX_DEPTH) {
        search_error(st, st->tok.pos, QR_ELIMIT, "nested deeper than %d levels", SQL_MAX_DEPTH);
        return false;
    }
    return true;
}

static sql_search *search_unary(search_state *st)
{
    if (!search_enter(st)) return NULL;
    sql_search *result = NULL;
    search_tok tok = st->tok;
    switch (tok.kind) {
    case SEARCH_NOT: {
        if (!search_next(st)) break;
        sql_search *child = search_unary(st);
        sql_search **children = child ? qr_arena_alloc(st->ctx->arena, sizeof *children) : NULL;
        sql_search *node = children ? search_node(st, SQL_SEARCH_NOT, tok.pos) : NULL;
        if (child && !children) parse_error_oom(st->ctx, tok.pos);
        if (node) {
            children[0] = child;
            node->children = children;
            node->child_count = 1;
            result = node;
        }
        break;
    }
    case SEARCH_LP: {
        if (!search_next(st)) break;
        sql_search *inner = search_or(st);
        if (!inner) break;
        if (st->tok.kind != SEARCH_RP) {
            search_error(st, tok.pos, QR_ESYNTAX, "'(' is never closed");
            break;
        }
        if (search_next(st)) result = inner;
        break;
    }
    case SEARCH_TERM:
        if (search_next(st)) result = tok.node;
        break;
    default:
        search_expected(st);
        break;
    }
    st->depth--;
    return result;
}

static bool search_starts_unary(search_tok_kind kind)
{
    return kind == SEARCH_NOT || kind == SEARCH_LP || kind == SEARCH_TERM;
}

/* Parses operands joined by sep (or juxtaposed, for AND) into one n-ary node. */
static sql_search *search_chain(search_state *st, sql_search_kind kind)
{
    sql_pos pos = st->tok.pos;
    sql_search *first = kind == SQL_SEARCH_OR ? search_chain(st, SQL_SEARCH_AND) : search_unary(st);
    if (!first) return NULL;
    ast_list *list = NULL;
    search_tok_kind sep = kind == SQL_SEARCH_OR ? SEARCH_OR : SEARCH_AND;
    for (;;) {
        if (st->tok.kind == sep) {
            if (!search_next(st)) return NULL;
        } else if (kind == SQL_SEARCH_OR || !search_starts_unary(st->tok.kind)) {
            break;
        }
        sql_search *next =
            kind == SQL_SEARCH_OR ? search_chain(st, SQL_SEARCH_AND) : search_unary(st);
        if (!next) return NULL;
        list = list ? ast_list_add(st->ctx, list, next) : ast_list_new(st->ctx, first);
        if (list && list->count == 1) list = ast_list_add(st->ctx, list, next);
        if (!list) return NULL;
    }
    if (!list) return first;
    sql_search *node = search_node(st, kind, pos);
    if (!node) return NULL;
    node->children = (sql_search **)ast_list_array(st->ctx, list, &node->child_count);
    return node;
}

static sql_search *search_or(search_state *st)
{
    return search_chain(st, SQL_SEARCH_OR);
}

sql_search *search_parse(parse_ctx *ctx, const lex_token *tok)
{
    if (ctx->err) return NULL;
    search_state st;
    memset(&st, 0, sizeof st);
    st.ctx = ctx;
    st.s = tok->str;
    st.n = tok->str_len;
    st.quote = tok->quote;
    st.raw = tok->text + 1;
    st.raw_len = tok->len >= 2 ? tok->len - 2 : 0;
    sql_pos body_pos = tok->pos;
    body_pos.offset++;
    body_pos.column++;
    ast_pos_cursor_init(&st.cursor, ctx->src, st.raw, body_pos);
    if (!search_next(&st)) return NULL;
    if (st.tok.kind == SEARCH_EOF) {
        parse_error_at(ctx, tok->pos, QR_ESYNTAX, "empty search string");
        return NULL;
    }
    sql_search *root = search_or(&st);
    if (!root) return NULL;
    if (st.tok.kind != SEARCH_EOF) {
        search_expected(&st);
        return NULL;
    }
    return root;
}

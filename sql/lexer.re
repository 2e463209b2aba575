/* lexer — tokens of both query faces (re2c; generated into the build directory with -W).
 *
 * The text ends in a NUL sentinel (sql_parse copies it into the arena and rejects embedded
 * NULs), so the scanner needs no bounds checks: the only NUL it can meet is the end.
 *
 * Tokens (codes TK_* from the lemon-generated parse.h):
 *   identifiers   [A-Za-z_][A-Za-z0-9_]*(.[A-Za-z0-9_]+)*  -> ID, a keyword (case-insensitive),
 *                 or, in LogQL, LQFUNC for a LogQL function name
 *   "quoted"      SQL: QID, a field name ("" is a quote); LogQL: STRING with Go-style escapes
 *   'string'      STRING, '' is a quote, no other escapes (so regexes keep their backslashes)
 *   `raw`         LogQL only: STRING without escapes
 *   numbers       INTEGER (int64), FLOAT (1.5, .5, 1e3), DURATION (5m, 250ms, 1h30m; units
 *                 ns us ms s m h d w); digits followed by other letters are an error
 *   operators     ( ) , ; * + - / % = == != <> < <= > >= ~ !~ =~ | |= |~ { } [ ]
 *   comments      -- to end of line, block comments
 * Errors (QR_ESYNTAX unless noted), each at the offending position: unterminated string,
 * quoted identifier or comment; bad escape; bad number or duration; out-of-range number;
 * unexpected character; nesting deeper than SQL_MAX_DEPTH (QR_ELIMIT). */
#include "sql/sql_int.h"
#include "sql/parse.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/qr_time.h"
#include "storage/event.h"

typedef struct lex_keyword_entry {
    const char *name;
    int code;
} lex_keyword_entry;

/* Sorted by name (lower case) for bsearch. */
static const lex_keyword_entry lex_keywords[] = {
    {"alert", TK_ALERT},
    {"alertmanager", TK_ALERTMANAGER},
    {"alerts", TK_ALERTS},
    {"and", TK_AND},
    {"annotations", TK_ANNOTATIONS},
    {"as", TK_AS},
    {"asc", TK_ASC},
    {"between", TK_BETWEEN},
    {"by", TK_BY},
    {"contains", TK_CONTAINS},
    {"cooldown", TK_COOLDOWN},
    {"create", TK_CREATE},
    {"desc", TK_DESC},
    {"describe", TK_DESCRIBE},
    {"drop", TK_DROP},
    {"every", TK_EVERY},
    {"explain", TK_EXPLAIN},
    {"false", TK_FALSE},
    {"fields", TK_FIELDS},
    {"for", TK_FOR},
    {"from", TK_FROM},
    {"group", TK_GROUP},
    {"having", TK_HAVING},
    {"in", TK_IN},
    {"is", TK_IS},
    {"json", TK_JSON},
    {"labels", TK_LABELS},
    {"like", TK_LIKE},
    {"limit", TK_LIMIT},
    {"line_format", TK_LINE_FORMAT},
    {"logfmt", TK_LOGFMT},
    {"match", TK_MATCH},
    {"mute", TK_MUTE},
    {"not", TK_NOT},
    {"notify", TK_NOTIFY},
    {"null", TK_NULL},
    {"offset", TK_OFFSET},
    {"or", TK_OR},
    {"order", TK_ORDER},
    {"pagerduty", TK_PAGERDUTY},
    {"rollup", TK_ROLLUP},
    {"rollups", TK_ROLLUPS},
    {"select", TK_SELECT},
    {"services", TK_SERVICES},
    {"show", TK_SHOW},
    {"slack", TK_SLACK},
    {"tables", TK_TABLES},
    {"true", TK_TRUE},
    {"unmute", TK_UNMUTE},
    {"unwrap", TK_UNWRAP},
    {"url", TK_URL},
    {"webhook", TK_WEBHOOK},
    {"when", TK_WHEN},
    {"where", TK_WHERE},
    {"window", TK_WINDOW},
    {"with", TK_WITH},
    {"without", TK_WITHOUT},
};

int lex_keyword(const char *s, size_t len)
{
    char lower[16];
    if (len == 0 || len >= sizeof lower) return 0;
    for (size_t idx = 0; idx < len; idx++) {
        char c = s[idx];
        lower[idx] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    lower[len] = '\0';
    size_t lo = 0, hi = sizeof lex_keywords / sizeof lex_keywords[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = strcmp(lower, lex_keywords[mid].name);
        if (cmp == 0) return lex_keywords[mid].code;
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return 0;
}

int lex_level_word(const char *s, size_t len)
{
    static const char *const words[] = {"UNKNOWN", "TRACE", "DEBUG", "INFO",
                                        "WARN",    "ERROR", "FATAL"};
    for (size_t level = 0; level < sizeof words / sizeof words[0]; level++) {
        if (strlen(words[level]) == len && memcmp(words[level], s, len) == 0) return (int)level;
    }
    return -1;
}

static bool lex_is_ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool lex_is_ident_char(unsigned char c)
{
    return lex_is_ident_start(c) || (c >= '0' && c <= '9');
}

bool lex_ident_is_bare(const char *name, size_t len)
{
    if (len == 0 || !lex_is_ident_start((unsigned char)name[0])) return false;
    for (size_t idx = 1; idx < len; idx++) {
        unsigned char c = (unsigned char)name[idx];
        if (c == '.') {
            /* a dot must be followed by at least one identifier character */
            if (idx + 1 >= len || !lex_is_ident_char((unsigned char)name[idx + 1])) return false;
        } else if (!lex_is_ident_char(c)) {
            return false;
        }
    }
    return lex_keyword(name, len) == 0 && lex_level_word(name, len) < 0;
}

static int lex_hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int lex_utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int lex_string_unit(char quote, const char *raw, size_t raw_len, size_t *raw_idx, char out[4])
{
    size_t idx = *raw_idx;
    char c = raw[idx];
    if ((quote == '\'' || quote == 'q') && c == (quote == 'q' ? '"' : '\'')) {
        out[0] = c; /* a doubled quote */
        *raw_idx = idx + 2;
        return 1;
    }
    if (quote != '"' || c != '\\') {
        out[0] = c;
        *raw_idx = idx + 1;
        return 1;
    }
    if (idx + 1 >= raw_len) return -1;
    char e = raw[idx + 1];
    int digits = 0;
    switch (e) {
    case 'n': out[0] = '\n'; break;
    case 't': out[0] = '\t'; break;
    case 'r': out[0] = '\r'; break;
    case 'a': out[0] = '\a'; break;
    case 'b': out[0] = '\b'; break;
    case 'f': out[0] = '\f'; break;
    case 'v': out[0] = '\v'; break;
    case '\\': out[0] = '\\'; break;
    case '"': out[0] = '"'; break;
    case '\'': out[0] = '\''; break;
    case 'x': digits = 2; break;
    case 'u': digits = 4; break;
    case 'U': digits = 8; break;
    default: return -1;
    }
    if (digits == 0) {
        *raw_idx = idx + 2;
        return 1;
    }
    if (idx + 2 + (size_t)digits > raw_len) return -1;
    uint32_t cp = 0;
    for (int digit_idx = 0; digit_idx < digits; digit_idx++) {
        int h = lex_hex(raw[idx + 2 + (size_t)digit_idx]);
        if (h < 0) return -1;
        cp = cp * 16 + (uint32_t)h;
    }
    /* NUL stays out of decoded strings so every string is a C string too */
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    *raw_idx = idx + 2 + (size_t)digits;
    if (e == 'x') {
        out[0] = (char)cp; /* a raw byte, as in Go */
        return 1;
    }
    return lex_utf8_encode(cp, out);
}

void lex_init(lex_state *lx, parse_ctx *ctx)
{
    sql_pos start = {0, 1, 1};
    lx->ctx = ctx;
    lx->cur = ctx->src;
    lx->end = ctx->src + ctx->len;
    lx->depth = 0;
    ast_pos_cursor_init(&lx->pos, ctx->src, ctx->src, start);
}

/* Finds the end of a quoted body starting after the opening quote; returns the pointer to the
 * closing quote or NULL when the text ends first. */
static const char *lex_string_close(const lex_state *lx, const char *body, char quote)
{
    const char *p = body;
    char close = quote == 'q' ? '"' : quote;
    while (p < lx->end) {
        if (*p == close) {
            if ((quote == '\'' || quote == 'q') && p + 1 < lx->end && p[1] == close) {
                p += 2;
                continue;
            }
            return p;
        }
        if (quote == '"' && *p == '\\' && p + 1 < lx->end) {
            p += 2;
            continue;
        }
        p++;
    }
    return NULL;
}

static int lex_string(lex_state *lx, lex_token *tok, char quote)
{
    parse_ctx *ctx = lx->ctx;
    const char *body = tok->text + 1;
    const char *close = lex_string_close(lx, body, quote);
    if (!close) {
        return parse_error_at(ctx, tok->pos, QR_ESYNTAX, "unterminated %s",
                              quote == 'q' ? "quoted identifier" : "string");
    }
    size_t raw_len = (size_t)(close - body);
    char *out = qr_arena_alloc(ctx->arena, raw_len + 1);
    if (!out) return parse_error_oom(ctx, tok->pos);
    size_t raw_idx = 0, out_len = 0;
    while (raw_idx < raw_len) {
        int n = lex_string_unit(quote, body, raw_len, &raw_idx, out + out_len);
        if (n < 0) {
            ast_pos_cursor c = lx->pos;
            sql_pos pos = ast_pos_cursor_at(&c, body + raw_idx);
            size_t show = raw_len - raw_idx < 2 ? raw_len - raw_idx : 2;
            return parse_error_at(ctx, pos, QR_ESYNTAX, "bad escape '%.*s' in string", (int)show,
                                  body + raw_idx);
        }
        out_len += (size_t)n;
    }
    out[out_len] = '\0';
    if (quote == 'q' && out_len == 0)
        return parse_error_at(ctx, tok->pos, QR_ESYNTAX, "empty quoted identifier");
    tok->str = out;
    tok->str_len = (uint32_t)out_len;
    tok->quote = quote;
    lx->cur = close + 1;
    tok->len = (uint32_t)(lx->cur - tok->text);
    return quote == 'q' ? TK_QID : TK_STRING;
}

static int lex_open(lex_state *lx, lex_token *tok, int code)
{
    if (++lx->depth > SQL_MAX_DEPTH) {
        return parse_error_at(lx->ctx, tok->pos, QR_ELIMIT, "nesting deeper than %d levels",
                              SQL_MAX_DEPTH);
    }
    return code;
}

static int lex_close(lex_state *lx, int code)
{
    if (lx->depth > 0) lx->depth--;
    return code;
}

static int lex_ident(lex_state *lx, lex_token *tok)
{
    parse_ctx *ctx = lx->ctx;
    tok->str = ast_strdup(ctx, tok->text, tok->len);
    if (!tok->str) return parse_error_oom(ctx, tok->pos);
    tok->str_len = tok->len;
    int code = lex_keyword(tok->text, tok->len);
    if (code) return code;
    bool is_range;
    if (ctx->logql && sql_lq_func_lookup(tok->text, tok->len, &is_range)) return TK_LQFUNC;
    return TK_ID;
}

static int lex_number(lex_state *lx, lex_token *tok, int code)
{
    parse_ctx *ctx = lx->ctx;
    if (code == TK_INTEGER) {
        int64_t v = 0;
        for (uint32_t idx = 0; idx < tok->len; idx++) {
            int digit = tok->text[idx] - '0';
            if (v > (INT64_MAX - digit) / 10)
                return parse_error_at(ctx, tok->pos, QR_ESYNTAX, "integer %.*s out of range",
                                      (int)(tok->len > 40 ? 40 : tok->len), tok->text);
            v = v * 10 + digit;
        }
        tok->v.i = v;
    } else if (code == TK_FLOAT) {
        char *copy = ast_strdup(ctx, tok->text, tok->len);
        if (!copy) return parse_error_oom(ctx, tok->pos);
        double f = strtod(copy, NULL);
        if (!isfinite(f))
            return parse_error_at(ctx, tok->pos, QR_ESYNTAX, "number %.*s out of range",
                                  (int)(tok->len > 40 ? 40 : tok->len), tok->text);
        tok->v.f = f;
    } else {
        if (qr_duration_parse(tok->text, tok->len, &tok->v.i) != 0)
            return parse_error_at(ctx, tok->pos, QR_ESYNTAX, "duration %.*s out of range",
                                  (int)(tok->len > 40 ? 40 : tok->len), tok->text);
    }
    return code;
}

int lex_next(lex_state *lx, lex_token *tok)
{
    parse_ctx *ctx = lx->ctx;
    for (;;) {
        const unsigned char *cur = (const unsigned char *)lx->cur;
        const unsigned char *mar = cur;
        memset(tok, 0, sizeof *tok);
        tok->text = lx->cur;
        tok->pos = ast_pos_cursor_at(&lx->pos, lx->cur);
#define LEX_TOKEN(code)                                                                            \
    do {                                                                                           \
        lx->cur = (const char *)cur;                                                               \
        tok->len = (uint32_t)(lx->cur - tok->text);                                                \
        return (code);                                                                             \
    } while (0)
        /*!re2c
        re2c:define:YYCTYPE = "unsigned char";
        re2c:define:YYCURSOR = cur;
        re2c:define:YYMARKER = mar;
        re2c:yyfill:enable = 0;

        ident    = [a-zA-Z_] [a-zA-Z0-9_]* ("." [a-zA-Z0-9_]+)*;
        digits   = [0-9]+;
        exponent = [eE] [+-]? digits;
        float    = digits "." digits? exponent? | "." digits exponent? | digits exponent;
        unit     = "ns" | "us" | "ms" | "s" | "m" | "h" | "d" | "w";
        duration = (digits unit)+;
        badnum   = [0-9] [0-9a-zA-Z_.]* | "." [0-9] [0-9a-zA-Z_.]*;

        "\x00" {
            lx->cur = (const char *)cur - 1;
            return 0;
        }
        [ \t\r\n\f\v]+ { lx->cur = (const char *)cur; continue; }
        "--" [^\n\x00]* { lx->cur = (const char *)cur; continue; }
        "/*" ([^*\x00] | "*"+ [^*/\x00])* "*"+ "/" { lx->cur = (const char *)cur; continue; }
        "/*" { return parse_error_at(ctx, tok->pos, QR_ESYNTAX, "unterminated comment"); }

        ident {
            lx->cur = (const char *)cur;
            tok->len = (uint32_t)(lx->cur - tok->text);
            return lex_ident(lx, tok);
        }
        digits   { lx->cur = (const char *)cur; tok->len = (uint32_t)(lx->cur - tok->text);
                   return lex_number(lx, tok, TK_INTEGER); }
        float    { lx->cur = (const char *)cur; tok->len = (uint32_t)(lx->cur - tok->text);
                   return lex_number(lx, tok, TK_FLOAT); }
        duration { lx->cur = (const char *)cur; tok->len = (uint32_t)(lx->cur - tok->text);
                   return lex_number(lx, tok, TK_DURATION); }
        badnum {
            int n = (int)((const char *)cur - tok->text);
            return parse_error_at(ctx, tok->pos, QR_ESYNTAX, "bad number or duration '%.*s'",
                                  n > 40 ? 40 : n, tok->text);
        }

        "'" { return lex_string(lx, tok, '\''); }
        "\"" { return lex_string(lx, tok, ctx->logql ? '"' : 'q'); }
        "`" {
            if (ctx->logql) return lex_string(lx, tok, '`');
            return parse_error_at(ctx, tok->pos, QR_ESYNTAX,
                                  "unexpected character '`' (quote fields with \")");
        }

        "(" { lx->cur = (const char *)cur; tok->len = 1; return lex_open(lx, tok, TK_LP); }
        ")" { lx->cur = (const char *)cur; tok->len = 1; return lex_close(lx, TK_RP); }
        "[" { lx->cur = (const char *)cur; tok->len = 1; return lex_open(lx, tok, TK_LBRACKET); }
        "]" { lx->cur = (const char *)cur; tok->len = 1; return lex_close(lx, TK_RBRACKET); }
        "{" { lx->cur = (const char *)cur; tok->len = 1; return lex_open(lx, tok, TK_LBRACE); }
        "}" { lx->cur = (const char *)cur; tok->len = 1; return lex_close(lx, TK_RBRACE); }
        ","  { LEX_TOKEN(TK_COMMA); }
        ";"  { LEX_TOKEN(TK_SEMI); }
        "*"  { LEX_TOKEN(TK_STAR); }
        "+"  { LEX_TOKEN(TK_PLUS); }
        "-"  { LEX_TOKEN(TK_MINUS); }
        "/"  { LEX_TOKEN(TK_SLASH); }
        "%"  { LEX_TOKEN(TK_PERCENT); }
        "=" | "==" { LEX_TOKEN(TK_EQ); }
        "!=" | "<>" { LEX_TOKEN(TK_NE); }
        "<"  { LEX_TOKEN(TK_LT); }
        "<=" { LEX_TOKEN(TK_LE); }
        ">"  { LEX_TOKEN(TK_GT); }
        ">=" { LEX_TOKEN(TK_GE); }
        "~"  { LEX_TOKEN(TK_TILDE); }
        "!~" { LEX_TOKEN(TK_NOTTILDE); }
        "=~" {
            if (!ctx->logql) {
                cur--; /* SQL has no =~: read '=' and leave '~' */
                LEX_TOKEN(TK_EQ);
            }
            LEX_TOKEN(TK_EQTILDE);
        }
        "|"  { LEX_TOKEN(TK_PIPE); }
        "|=" { LEX_TOKEN(TK_PIPEEQ); }
        "|~" { LEX_TOKEN(TK_PIPETILDE); }

        * {
            unsigned char c = (unsigned char)tok->text[0];
            if (c >= 0x21 && c < 0x7f)
                return parse_error_at(ctx, tok->pos, QR_ESYNTAX, "unexpected character '%c'", c);
            return parse_error_at(ctx, tok->pos, QR_ESYNTAX, "unexpected byte 0x%02x", c);
        }
        */
#undef LEX_TOKEN
    }
}

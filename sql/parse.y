/* parse — the grammar of both query faces (lemon; parse.c/parse.h are generated into the
 * build directory, never committed).
 *
 * One statement per text, optional trailing ';'. The SQL face starts with a keyword (SELECT,
 * SHOW, EXPLAIN, CREATE, DROP, MUTE, UNMUTE, DESCRIBE); the LogQL face starts with '{' or a
 * LogQL function name (the lexer emits LQFUNC for those only in LogQL mode, which sql_parse
 * picks from the first token). Actions build nodes through ast_* (ast.c), which tolerate
 * NULL children after an error so an action never has to test what it was given.
 * The first syntax error stops the parse (YYNOERRORRECOVERY); %syntax_error lists the tokens
 * the parser state accepts, computed by simulating the LALR automaton for each terminal. */

%name parse_lemon
%token_prefix TK_
%token_type {lex_token}
%extra_argument {parse_ctx *ctx}
%stack_size 1000
%start_symbol cmd

%include {
#include "sql/sql_int.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#define YYNOERRORRECOVERY 1

typedef struct parse_limit {
    int64_t limit;
    int64_t offset;
} parse_limit;

typedef struct parse_lq_arg {
    sql_pos pos;
    sql_lq_log *log;
    int64_t range_ns; /* 0: no [range] */
    sql_pos range_pos;
    sql_lq_metric *metric;
} parse_lq_arg;

static void parse_syntax_error(void *parser, int major, const lex_token *tok, parse_ctx *ctx);
static sql_select *parse_select(parse_ctx *ctx, sql_pos pos, ast_list *items, lex_token from,
                                sql_expr *where, ast_list *group, sql_expr *having,
                                ast_list *order, parse_limit limit);
static sql_lq_metric *parse_lq_metric(parse_ctx *ctx, const lex_token *func, ast_list *group,
                                      sql_lq_grouping grouping, const lex_token *param,
                                      parse_lq_arg arg);
static sql_lq_stage *parse_lq_stage(parse_ctx *ctx, sql_lq_stage_kind kind, sql_pos pos,
                                    sql_expr *filter, const lex_token *text);
static sql_expr *parse_line_filter(parse_ctx *ctx, sql_op op, bool negated, const lex_token *op_tok,
                                   const lex_token *str);
static sql_expr *parse_lq_matcher(parse_ctx *ctx, const lex_token *name, sql_op op, bool negated,
                                  const lex_token *value);
static sql_option *parse_option(parse_ctx *ctx, const lex_token *key, sql_expr *value);
static sql_channel *parse_channel(parse_ctx *ctx, sql_channel_kind kind, const lex_token *kw,
                                  const lex_token *target, const lex_token *url);
}

/* Nodes live in the arena: nothing to destroy (this only marks the argument as used). */
%token_destructor { (void)ctx; }

%syntax_error { parse_syntax_error(yypParser, yymajor, &TOKEN, ctx); }
%stack_overflow {
    parse_error_at(ctx, ctx->tok_pos, QR_ELIMIT, "query nested too deeply");
}

/* Terminal order is the order "expected ..." lists them in. */
%token SEMI SELECT SHOW EXPLAIN CREATE DROP MUTE UNMUTE DESCRIBE LBRACE LQFUNC
       FROM WHERE GROUP BY HAVING ORDER ASC DESC LIMIT OFFSET AS COMMA
       SERVICES FIELDS TABLES ALERTS ROLLUPS ROLLUP ALERT WITH WINDOW EVERY WHEN FOR COOLDOWN
       LABELS ANNOTATIONS NOTIFY WEBHOOK SLACK PAGERDUTY ALERTMANAGER URL
       RBRACE LBRACKET RBRACKET PIPE PIPEEQ PIPETILDE JSON LOGFMT LINE_FORMAT UNWRAP WITHOUT
       ID QID STRING INTEGER FLOAT DURATION NULL TRUE FALSE LP RP.

%fallback ID SERVICES FIELDS TABLES ALERTS ROLLUPS ROLLUP ALERT WINDOW EVERY COOLDOWN LABELS
             ANNOTATIONS NOTIFY WEBHOOK SLACK PAGERDUTY ALERTMANAGER URL MUTE UNMUTE DESCRIBE
             JSON LOGFMT LINE_FORMAT UNWRAP WITHOUT LQFUNC.

%left OR.
%left AND.
%right NOT.
%nonassoc EQ NE LT LE GT GE LIKE TILDE NOTTILDE EQTILDE CONTAINS MATCH BETWEEN IN IS.
%left PLUS MINUS.
%left STAR SLASH PERCENT.
%right UMINUS.

cmd ::= stmt(S) semi_opt. { ctx->result = S; }
semi_opt ::= .
semi_opt ::= SEMI.

/* ---- statements ---------------------------------------------------------------------------- */

%type stmt {sql_stmt *}
stmt(A) ::= select(S). {
    A = ast_stmt_new(ctx, SQL_STMT_SELECT, S ? S->pos : ctx->tok_pos);
    if (A) A->u.select = S;
}
stmt(A) ::= lq_query(Q). {
    A = Q;
}
stmt(A) ::= EXPLAIN(E) select(S). {
    sql_stmt *inner = ast_stmt_new(ctx, SQL_STMT_SELECT, S ? S->pos : E.pos);
    if (inner) inner->u.select = S;
    A = ast_stmt_new(ctx, SQL_STMT_EXPLAIN, E.pos);
    if (A) A->u.explain = inner;
}
stmt(A) ::= EXPLAIN(E) lq_query(Q). {
    A = ast_stmt_new(ctx, SQL_STMT_EXPLAIN, E.pos);
    if (A) A->u.explain = Q;
}
stmt(A) ::= SHOW(K) show_what(W). {
    A = ast_stmt_new(ctx, SQL_STMT_SHOW, K.pos);
    if (A) A->u.show = (sql_show_what)W;
}
%type show_what {int}
show_what(A) ::= SERVICES. { A = SQL_SHOW_SERVICES; }
show_what(A) ::= FIELDS. { A = SQL_SHOW_FIELDS; }
show_what(A) ::= TABLES. { A = SQL_SHOW_TABLES; }
show_what(A) ::= ALERTS. { A = SQL_SHOW_ALERTS; }
show_what(A) ::= ROLLUPS. { A = SQL_SHOW_ROLLUPS; }

stmt(A) ::= CREATE(K) ROLLUP name(N) AS select(S) with_opt(W). {
    A = ast_stmt_new(ctx, SQL_STMT_CREATE_ROLLUP, K.pos);
    sql_rollup *r = ctx->err ? NULL : qr_arena_calloc(ctx->arena, 1, sizeof *r);
    if (A && r) {
        r->name = N.str;
        r->select = S;
        r->options = ast_list_copy(ctx, W, sizeof *r->options, &r->option_count);
        A->u.rollup = r;
    } else if (A) {
        A = NULL;
        parse_error_oom(ctx, K.pos);
    }
}
%type with_opt {ast_list *}
with_opt(A) ::= . { A = NULL; }
with_opt(A) ::= WITH LP options(L) RP. { A = L; }
%type options {ast_list *}
options(A) ::= option(O). { A = ast_list_new(ctx, O); }
options(A) ::= options(L) COMMA option(O). { A = ast_list_add(ctx, L, O); }
%type option {sql_option *}
option(A) ::= name(K) EQ optvalue(V). { A = parse_option(ctx, &K, V); }
%type optvalue {sql_expr *}
optvalue(A) ::= STRING(X). { A = ast_string(ctx, &X); }
optvalue(A) ::= INTEGER(X). { A = ast_literal(ctx, TK_INTEGER, &X); }
optvalue(A) ::= FLOAT(X). { A = ast_literal(ctx, TK_FLOAT, &X); }
optvalue(A) ::= DURATION(X). { A = ast_literal(ctx, TK_DURATION, &X); }
optvalue(A) ::= TRUE(X). { A = ast_literal(ctx, TK_TRUE, &X); }
optvalue(A) ::= FALSE(X). { A = ast_literal(ctx, TK_FALSE, &X); }

stmt(A) ::= CREATE(K) ALERT name(N) AS select(S) WINDOW DURATION(W) EVERY DURATION(E)
            WHEN expr(C) for_opt(F) cooldown_opt(D) labels_opt(L) annotations_opt(M)
            NOTIFY channels(H). {
    A = ast_stmt_new(ctx, SQL_STMT_CREATE_ALERT, K.pos);
    sql_alert *al = ctx->err ? NULL : qr_arena_calloc(ctx->arena, 1, sizeof *al);
    if (A && al) {
        al->name = N.str;
        al->name_pos = N.pos;
        al->select = S;
        al->window_ns = W.v.i;
        al->window_pos = W.pos;
        al->every_ns = E.v.i;
        al->every_pos = E.pos;
        al->when = C;
        al->for_ns = F;
        al->cooldown_ns = D;
        al->labels = ast_list_copy(ctx, L, sizeof *al->labels, &al->label_count);
        al->annotations = ast_list_copy(ctx, M, sizeof *al->annotations, &al->annotation_count);
        al->channels = ast_list_copy(ctx, H, sizeof *al->channels, &al->channel_count);
        A->u.alert = al;
        if (W.v.i <= 0)
            parse_error_at(ctx, W.pos, QR_ESYNTAX, "WINDOW must be a positive duration");
        else if (E.v.i <= 0)
            parse_error_at(ctx, E.pos, QR_ESYNTAX, "EVERY must be a positive duration");
    } else if (A) {
        A = NULL;
        parse_error_oom(ctx, K.pos);
    }
}
%type for_opt {int64_t}
for_opt(A) ::= . { A = 0; }
for_opt(A) ::= FOR DURATION(D). { A = D.v.i; }
%type cooldown_opt {int64_t}
cooldown_opt(A) ::= . { A = -1; }
cooldown_opt(A) ::= COOLDOWN DURATION(D). { A = D.v.i; }
%type labels_opt {ast_list *}
labels_opt(A) ::= . { A = NULL; }
labels_opt(A) ::= LABELS LP labels(L) RP. { A = L; }
%type annotations_opt {ast_list *}
annotations_opt(A) ::= . { A = NULL; }
annotations_opt(A) ::= ANNOTATIONS LP labels(L) RP. { A = L; }
%type labels {ast_list *}
labels(A) ::= label(O). { A = ast_list_new(ctx, O); }
labels(A) ::= labels(L) COMMA label(O). { A = ast_list_add(ctx, L, O); }
%type label {sql_option *}
label(A) ::= name(K) EQ STRING(V). { A = parse_option(ctx, &K, ast_string(ctx, &V)); }
%type channels {ast_list *}
channels(A) ::= channel(C). { A = ast_list_new(ctx, C); }
channels(A) ::= channels(L) COMMA channel(C). { A = ast_list_add(ctx, L, C); }
%type channel {sql_channel *}
channel(A) ::= WEBHOOK(K) STRING(T). { A = parse_channel(ctx, SQL_CHANNEL_WEBHOOK, &K, &T, NULL); }
channel(A) ::= SLACK(K) STRING(T). { A = parse_channel(ctx, SQL_CHANNEL_SLACK, &K, &T, NULL); }
channel(A) ::= PAGERDUTY(K) STRING(T). {
    A = parse_channel(ctx, SQL_CHANNEL_PAGERDUTY, &K, &T, NULL);
}
channel(A) ::= PAGERDUTY(K) STRING(T) URL STRING(U). {
    A = parse_channel(ctx, SQL_CHANNEL_PAGERDUTY, &K, &T, &U);
}
channel(A) ::= ALERTMANAGER(K) STRING(T). {
    A = parse_channel(ctx, SQL_CHANNEL_ALERTMANAGER, &K, &T, NULL);
}

stmt(A) ::= DROP(K) ALERT name(N). {
    A = ast_stmt_new(ctx, SQL_STMT_DROP, K.pos);
    if (A) { A->u.drop.object = SQL_OBJECT_ALERT; A->u.drop.name = N.str; A->name_pos = N.pos; }
}
stmt(A) ::= DROP(K) ROLLUP name(N). {
    A = ast_stmt_new(ctx, SQL_STMT_DROP, K.pos);
    if (A) { A->u.drop.object = SQL_OBJECT_ROLLUP; A->u.drop.name = N.str; A->name_pos = N.pos; }
}
stmt(A) ::= MUTE(K) ALERT name(N) FOR DURATION(D). {
    A = ast_stmt_new(ctx, SQL_STMT_MUTE, K.pos);
    if (A) { A->u.mute.name = N.str; A->u.mute.duration_ns = D.v.i; A->name_pos = N.pos; }
    if (D.v.i <= 0) parse_error_at(ctx, D.pos, QR_ESYNTAX, "MUTE needs a positive duration");
}
stmt(A) ::= UNMUTE(K) ALERT name(N). {
    A = ast_stmt_new(ctx, SQL_STMT_UNMUTE, K.pos);
    if (A) { A->u.unmute = N.str; A->name_pos = N.pos; }
}
stmt(A) ::= DESCRIBE(K) name(N). {
    A = ast_stmt_new(ctx, SQL_STMT_DESCRIBE, K.pos);
    if (A) { A->u.describe = N.str; A->name_pos = N.pos; }
}

%type name {lex_token}
name(A) ::= ID(X). { A = X; }
name(A) ::= QID(X). { A = X; }

/* ---- SELECT ---------------------------------------------------------------------------------- */

%type select {sql_select *}
select(A) ::= SELECT(K) selitems(I) from_opt(F) where_opt(W) groupby_opt(G) having_opt(H)
              orderby_opt(O) limit_opt(L). {
    A = parse_select(ctx, K.pos, I, F, W, G, H, O, L);
}

%type selitems {ast_list *}
selitems(A) ::= selitem(X). { A = ast_list_new(ctx, X); }
selitems(A) ::= selitems(L) COMMA selitem(X). { A = ast_list_add(ctx, L, X); }

%type selitem {sql_select_item *}
selitem(A) ::= expr(E) alias_opt(N). {
    A = (E && !ctx->err) ? qr_arena_calloc(ctx->arena, 1, sizeof *A) : NULL;
    if (A) {
        A->expr = E;
        A->alias = N.str;
        A->alias_pos = N.pos;
    } else if (E) {
        parse_error_oom(ctx, E->pos);
    }
}
selitem(A) ::= STAR(S). {
    sql_expr *star = ast_expr_new(ctx, SQL_EXPR_STAR, S.pos);
    A = star ? qr_arena_calloc(ctx->arena, 1, sizeof *A) : NULL;
    if (A) A->expr = star;
    else if (star) parse_error_oom(ctx, S.pos);
}

%type alias_opt {lex_token}
alias_opt(A) ::= . { memset(&A, 0, sizeof A); }
alias_opt(A) ::= AS name(N). { A = N; }
alias_opt(A) ::= ID(N). { A = N; }
alias_opt(A) ::= QID(N). { A = N; }

%type from_opt {lex_token}
from_opt(A) ::= . { memset(&A, 0, sizeof A); }
from_opt(A) ::= FROM name(N). { A = N; }

%type where_opt {sql_expr *}
where_opt(A) ::= . { A = NULL; }
where_opt(A) ::= WHERE expr(E). { A = E; }

%type groupby_opt {ast_list *}
groupby_opt(A) ::= . { A = NULL; }
groupby_opt(A) ::= GROUP BY exprlist(L). { A = L; }

%type having_opt {sql_expr *}
having_opt(A) ::= . { A = NULL; }
having_opt(A) ::= HAVING expr(E). { A = E; }

%type orderby_opt {ast_list *}
orderby_opt(A) ::= . { A = NULL; }
orderby_opt(A) ::= ORDER BY orderlist(L). { A = L; }
%type orderlist {ast_list *}
orderlist(A) ::= orderitem(X). { A = ast_list_new(ctx, X); }
orderlist(A) ::= orderlist(L) COMMA orderitem(X). { A = ast_list_add(ctx, L, X); }
%type orderitem {sql_order_item *}
orderitem(A) ::= expr(E) dir(D). {
    A = (E && !ctx->err) ? qr_arena_calloc(ctx->arena, 1, sizeof *A) : NULL;
    if (A) {
        A->expr = E;
        A->desc = D;
    } else if (E) {
        parse_error_oom(ctx, E->pos);
    }
}
%type dir {bool}
dir(A) ::= . { A = false; }
dir(A) ::= ASC. { A = false; }
dir(A) ::= DESC. { A = true; }

%type limit_opt {parse_limit}
limit_opt(A) ::= . { A.limit = -1; A.offset = -1; }
limit_opt(A) ::= LIMIT INTEGER(N). { A.limit = N.v.i; A.offset = -1; }
limit_opt(A) ::= LIMIT INTEGER(N) OFFSET INTEGER(M). { A.limit = N.v.i; A.offset = M.v.i; }

/* ---- expressions ----------------------------------------------------------------------------- */

%type exprlist {ast_list *}
exprlist(A) ::= expr(E). { A = ast_list_new(ctx, E); }
exprlist(A) ::= exprlist(L) COMMA expr(E). { A = ast_list_add(ctx, L, E); }

%type expr {sql_expr *}
expr(A) ::= LP expr(E) RP. { A = E; }
expr(A) ::= INTEGER(X). { A = ast_literal(ctx, TK_INTEGER, &X); }
expr(A) ::= FLOAT(X). { A = ast_literal(ctx, TK_FLOAT, &X); }
expr(A) ::= DURATION(X). { A = ast_literal(ctx, TK_DURATION, &X); }
expr(A) ::= NULL(X). { A = ast_literal(ctx, TK_NULL, &X); }
expr(A) ::= TRUE(X). { A = ast_literal(ctx, TK_TRUE, &X); }
expr(A) ::= FALSE(X). { A = ast_literal(ctx, TK_FALSE, &X); }
expr(A) ::= STRING(X). { A = ast_string(ctx, &X); }
expr(A) ::= ID(X). { A = ast_field(ctx, &X); }
expr(A) ::= QID(X). { A = ast_field(ctx, &X); }
expr(A) ::= ID(F) LP RP. { A = ast_call(ctx, &F, NULL, false); }
expr(A) ::= ID(F) LP STAR RP. { A = ast_call(ctx, &F, NULL, true); }
expr(A) ::= ID(F) LP exprlist(L) RP. { A = ast_call(ctx, &F, L, false); }

expr(A) ::= expr(X) OR expr(Y). { A = ast_logical(ctx, SQL_EXPR_OR, X, Y); }
expr(A) ::= expr(X) AND expr(Y). { A = ast_logical(ctx, SQL_EXPR_AND, X, Y); }
expr(A) ::= NOT(K) expr(X). { A = ast_unary(ctx, SQL_OP_NOT, X, K.pos); }
expr(A) ::= MINUS(K) expr(X). [UMINUS] { A = ast_unary(ctx, SQL_OP_NEG, X, K.pos); }

expr(A) ::= expr(X) PLUS expr(Y). { A = ast_binary(ctx, SQL_OP_ADD, X, Y); }
expr(A) ::= expr(X) MINUS expr(Y). { A = ast_binary(ctx, SQL_OP_SUB, X, Y); }
expr(A) ::= expr(X) STAR expr(Y). { A = ast_binary(ctx, SQL_OP_MUL, X, Y); }
expr(A) ::= expr(X) SLASH expr(Y). { A = ast_binary(ctx, SQL_OP_DIV, X, Y); }
expr(A) ::= expr(X) PERCENT expr(Y). { A = ast_binary(ctx, SQL_OP_MOD, X, Y); }
expr(A) ::= expr(X) EQ expr(Y). { A = ast_binary(ctx, SQL_OP_EQ, X, Y); }
expr(A) ::= expr(X) NE expr(Y). { A = ast_binary(ctx, SQL_OP_NE, X, Y); }
expr(A) ::= expr(X) LT expr(Y). { A = ast_binary(ctx, SQL_OP_LT, X, Y); }
expr(A) ::= expr(X) LE expr(Y). { A = ast_binary(ctx, SQL_OP_LE, X, Y); }
expr(A) ::= expr(X) GT expr(Y). { A = ast_binary(ctx, SQL_OP_GT, X, Y); }
expr(A) ::= expr(X) GE expr(Y). { A = ast_binary(ctx, SQL_OP_GE, X, Y); }
expr(A) ::= expr(X) LIKE expr(Y). { A = ast_binary(ctx, SQL_OP_LIKE, X, Y); }
expr(A) ::= expr(X) NOT LIKE expr(Y). [LIKE] {
    A = ast_binary(ctx, SQL_OP_LIKE, X, Y);
    if (A) A->u.binary.negated = true;
}
expr(A) ::= expr(X) TILDE expr(Y). { A = ast_binary(ctx, SQL_OP_REGEX, X, Y); }
expr(A) ::= expr(X) NOTTILDE expr(Y). {
    A = ast_binary(ctx, SQL_OP_REGEX, X, Y);
    if (A) A->u.binary.negated = true;
}
expr(A) ::= expr(X) CONTAINS expr(Y). { A = ast_binary(ctx, SQL_OP_CONTAINS, X, Y); }
expr(A) ::= expr(X) NOT CONTAINS expr(Y). [CONTAINS] {
    A = ast_binary(ctx, SQL_OP_CONTAINS, X, Y);
    if (A) A->u.binary.negated = true;
}
expr(A) ::= expr(X) MATCH STRING(S). { A = ast_match(ctx, X, &S, false); }
expr(A) ::= expr(X) NOT MATCH STRING(S). [MATCH] { A = ast_match(ctx, X, &S, true); }
expr(A) ::= expr(X) IN LP exprlist(L) RP. { A = ast_in(ctx, X, L, false); }
expr(A) ::= expr(X) NOT IN LP exprlist(L) RP. [IN] { A = ast_in(ctx, X, L, true); }
expr(A) ::= expr(X) BETWEEN expr(L) AND expr(H). [BETWEEN] {
    A = ast_between(ctx, X, L, H, false);
}
expr(A) ::= expr(X) NOT BETWEEN expr(L) AND expr(H). [BETWEEN] {
    A = ast_between(ctx, X, L, H, true);
}
expr(A) ::= expr(X) IS NULL. { A = ast_is_null(ctx, X, false); }
expr(A) ::= expr(X) IS NOT NULL. [IS] { A = ast_is_null(ctx, X, true); }

/* ---- LogQL ----------------------------------------------------------------------------------- */

%type lq_query {sql_stmt *}
lq_query(A) ::= lq_log(L). {
    A = ast_stmt_new(ctx, SQL_STMT_LOGQL, L ? L->pos : ctx->tok_pos);
    sql_logql *q = A ? qr_arena_calloc(ctx->arena, 1, sizeof *q) : NULL;
    if (q) {
        q->log = L;
        A->u.logql = q;
    } else if (A) {
        A = NULL;
        parse_error_oom(ctx, ctx->tok_pos);
    }
}
lq_query(A) ::= lq_metric(M). {
    A = ast_stmt_new(ctx, SQL_STMT_LOGQL, M ? M->pos : ctx->tok_pos);
    sql_logql *q = A ? qr_arena_calloc(ctx->arena, 1, sizeof *q) : NULL;
    if (q) {
        q->metric = M;
        A->u.logql = q;
    } else if (A) {
        A = NULL;
        parse_error_oom(ctx, ctx->tok_pos);
    }
}

%type lq_log {sql_lq_log *}
lq_log(A) ::= LBRACE(B) lq_matchers(M) RBRACE lq_stages(S). {
    A = ctx->err ? NULL : qr_arena_calloc(ctx->arena, 1, sizeof *A);
    if (A) {
        A->pos = B.pos;
        A->matchers = (sql_expr **)ast_list_array(ctx, M, &A->matcher_count);
        A->stages = ast_list_copy(ctx, S, sizeof *A->stages, &A->stage_count);
        if (ctx->err) A = NULL;
    } else if (!ctx->err) {
        parse_error_oom(ctx, B.pos);
    }
}

%type lq_matchers {ast_list *}
lq_matchers(A) ::= lq_matcher(M). { A = ast_list_new(ctx, M); }
lq_matchers(A) ::= lq_matchers(L) COMMA lq_matcher(M). { A = ast_list_add(ctx, L, M); }

%type lq_matcher {sql_expr *}
lq_matcher(A) ::= lq_name(N) EQ STRING(S). { A = parse_lq_matcher(ctx, &N, SQL_OP_EQ, false, &S); }
lq_matcher(A) ::= lq_name(N) NE STRING(S). { A = parse_lq_matcher(ctx, &N, SQL_OP_NE, false, &S); }
lq_matcher(A) ::= lq_name(N) EQTILDE STRING(S). {
    A = parse_lq_matcher(ctx, &N, SQL_OP_REGEX, false, &S);
}
lq_matcher(A) ::= lq_name(N) NOTTILDE STRING(S). {
    A = parse_lq_matcher(ctx, &N, SQL_OP_REGEX, true, &S);
}

%type lq_name {lex_token}
lq_name(A) ::= ID(X). { A = X; }

%type lq_stages {ast_list *}
lq_stages(A) ::= . { A = NULL; }
lq_stages(A) ::= lq_stages(L) lq_stage(S). {
    A = L ? ast_list_add(ctx, L, S) : ast_list_new(ctx, S);
}

%type lq_stage {sql_lq_stage *}
lq_stage(A) ::= PIPEEQ(O) STRING(S). {
    A = parse_lq_stage(ctx, SQL_LQ_LINE_FILTER, O.pos,
                       parse_line_filter(ctx, SQL_OP_CONTAINS, false, &O, &S), NULL);
}
lq_stage(A) ::= NE(O) STRING(S). {
    A = parse_lq_stage(ctx, SQL_LQ_LINE_FILTER, O.pos,
                       parse_line_filter(ctx, SQL_OP_CONTAINS, true, &O, &S), NULL);
}
lq_stage(A) ::= PIPETILDE(O) STRING(S). {
    A = parse_lq_stage(ctx, SQL_LQ_LINE_FILTER, O.pos,
                       parse_line_filter(ctx, SQL_OP_REGEX, false, &O, &S), NULL);
}
lq_stage(A) ::= NOTTILDE(O) STRING(S). {
    A = parse_lq_stage(ctx, SQL_LQ_LINE_FILTER, O.pos,
                       parse_line_filter(ctx, SQL_OP_REGEX, true, &O, &S), NULL);
}
lq_stage(A) ::= PIPE(P) JSON. { A = parse_lq_stage(ctx, SQL_LQ_JSON, P.pos, NULL, NULL); }
lq_stage(A) ::= PIPE(P) LOGFMT. { A = parse_lq_stage(ctx, SQL_LQ_LOGFMT, P.pos, NULL, NULL); }
lq_stage(A) ::= PIPE(P) LINE_FORMAT STRING(S). {
    A = parse_lq_stage(ctx, SQL_LQ_LINE_FORMAT, P.pos, NULL, &S);
}
lq_stage(A) ::= PIPE(P) UNWRAP lq_name(N). {
    A = parse_lq_stage(ctx, SQL_LQ_UNWRAP, P.pos, NULL, &N);
}
lq_stage(A) ::= PIPE(P) lq_lf_or(F). {
    A = parse_lq_stage(ctx, SQL_LQ_LABEL_FILTER, P.pos, F, NULL);
}

/* Label filters: or < and (also written ',') < comparison; stratified, no precedence. */
%type lq_lf_or {sql_expr *}
lq_lf_or(A) ::= lq_lf_or(X) OR lq_lf_and(Y). { A = ast_logical(ctx, SQL_EXPR_OR, X, Y); }
lq_lf_or(A) ::= lq_lf_and(X). { A = X; }
%type lq_lf_and {sql_expr *}
lq_lf_and(A) ::= lq_lf_and(X) AND lq_lf_prim(Y). { A = ast_logical(ctx, SQL_EXPR_AND, X, Y); }
lq_lf_and(A) ::= lq_lf_and(X) COMMA lq_lf_prim(Y). { A = ast_logical(ctx, SQL_EXPR_AND, X, Y); }
lq_lf_and(A) ::= lq_lf_prim(X). { A = X; }
%type lq_lf_prim {sql_expr *}
lq_lf_prim(A) ::= LP lq_lf_or(X) RP. { A = X; }
lq_lf_prim(A) ::= lq_name(N) lq_cmpop(O) lq_value(V). {
    A = ast_binary(ctx, (sql_op)O, ast_field_named(ctx, N.str, N.pos), V);
}
lq_lf_prim(A) ::= lq_name(N) EQTILDE STRING(S). {
    A = parse_lq_matcher(ctx, &N, SQL_OP_REGEX, false, &S);
}
lq_lf_prim(A) ::= lq_name(N) NOTTILDE STRING(S). {
    A = parse_lq_matcher(ctx, &N, SQL_OP_REGEX, true, &S);
}
%type lq_cmpop {int}
lq_cmpop(A) ::= EQ. { A = SQL_OP_EQ; }
lq_cmpop(A) ::= NE. { A = SQL_OP_NE; }
lq_cmpop(A) ::= LT. { A = SQL_OP_LT; }
lq_cmpop(A) ::= LE. { A = SQL_OP_LE; }
lq_cmpop(A) ::= GT. { A = SQL_OP_GT; }
lq_cmpop(A) ::= GE. { A = SQL_OP_GE; }
%type lq_value {sql_expr *}
lq_value(A) ::= STRING(X). { A = ast_string(ctx, &X); }
lq_value(A) ::= INTEGER(X). { A = ast_literal(ctx, TK_INTEGER, &X); }
lq_value(A) ::= FLOAT(X). { A = ast_literal(ctx, TK_FLOAT, &X); }
lq_value(A) ::= DURATION(X). { A = ast_literal(ctx, TK_DURATION, &X); }
lq_value(A) ::= MINUS(K) INTEGER(X). {
    A = ast_unary(ctx, SQL_OP_NEG, ast_literal(ctx, TK_INTEGER, &X), K.pos);
}
lq_value(A) ::= MINUS(K) FLOAT(X). {
    A = ast_unary(ctx, SQL_OP_NEG, ast_literal(ctx, TK_FLOAT, &X), K.pos);
}

%type lq_metric {sql_lq_metric *}
lq_metric(A) ::= LQFUNC(F) LP lq_arg(X) RP lq_group_opt(G). {
    A = parse_lq_metric(ctx, &F, G.list, (sql_lq_grouping)G.kind, NULL, X);
}
lq_metric(A) ::= LQFUNC(F) lq_group(G) LP lq_arg(X) RP. {
    A = parse_lq_metric(ctx, &F, G.list, (sql_lq_grouping)G.kind, NULL, X);
}
lq_metric(A) ::= LQFUNC(F) LP lq_num(N) COMMA lq_arg(X) RP lq_group_opt(G). {
    A = parse_lq_metric(ctx, &F, G.list, (sql_lq_grouping)G.kind, &N, X);
}
lq_metric(A) ::= LQFUNC(F) lq_group(G) LP lq_num(N) COMMA lq_arg(X) RP. {
    A = parse_lq_metric(ctx, &F, G.list, (sql_lq_grouping)G.kind, &N, X);
}

%include {
typedef struct parse_lq_group {
    int kind;
    ast_list *list;
} parse_lq_group;
}
%type lq_group {parse_lq_group}
lq_group(A) ::= BY LP lq_labels_opt(L) RP. { A.kind = SQL_LQ_GROUP_BY; A.list = L; }
lq_group(A) ::= WITHOUT LP lq_labels_opt(L) RP. { A.kind = SQL_LQ_GROUP_WITHOUT; A.list = L; }
%type lq_group_opt {parse_lq_group}
lq_group_opt(A) ::= . { A.kind = SQL_LQ_GROUP_NONE; A.list = NULL; }
lq_group_opt(A) ::= lq_group(G). { A = G; }
%type lq_labels_opt {ast_list *}
lq_labels_opt(A) ::= . { A = NULL; }
lq_labels_opt(A) ::= lq_labels(L). { A = L; }
%type lq_labels {ast_list *}
lq_labels(A) ::= lq_name(N). { A = ast_list_new(ctx, (void *)N.str); }
lq_labels(A) ::= lq_labels(L) COMMA lq_name(N). { A = ast_list_add(ctx, L, (void *)N.str); }

%type lq_num {lex_token}
lq_num(A) ::= INTEGER(X). { A = X; A.v.f = (double)X.v.i; }
lq_num(A) ::= FLOAT(X). { A = X; }

%type lq_arg {parse_lq_arg}
lq_arg(A) ::= lq_log(L) LBRACKET(B) DURATION(D) RBRACKET. {
    memset(&A, 0, sizeof A);
    A.pos = L ? L->pos : D.pos;
    A.range_pos = B.pos;
    A.log = L;
    A.range_ns = D.v.i;
    if (D.v.i <= 0) parse_error_at(ctx, D.pos, QR_ESYNTAX, "range must be a positive duration");
}
lq_arg(A) ::= lq_log(L). {
    memset(&A, 0, sizeof A);
    A.pos = L ? L->pos : ctx->tok_pos;
    A.range_pos = ctx->tok_pos; /* the lookahead: where '[' was expected */
    A.log = L;
}
lq_arg(A) ::= lq_metric(M). {
    memset(&A, 0, sizeof A);
    A.pos = M ? M->pos : ctx->tok_pos;
    A.metric = M;
}

%code {

/* ---- action helpers ------------------------------------------------------------------------ */

static sql_select *parse_select(parse_ctx *ctx, sql_pos pos, ast_list *items, lex_token from,
                                sql_expr *where, ast_list *group, sql_expr *having,
                                ast_list *order, parse_limit limit)
{
    if (ctx->err) return NULL;
    sql_select *s = qr_arena_calloc(ctx->arena, 1, sizeof *s);
    if (!s) {
        parse_error_oom(ctx, pos);
        return NULL;
    }
    s->pos = pos;
    s->items = ast_list_copy(ctx, items, sizeof *s->items, &s->item_count);
    s->order_by = ast_list_copy(ctx, order, sizeof *s->order_by, &s->order_count);
    if (ctx->err) return NULL;
    s->from = from.str;
    s->from_pos = from.pos;
    s->where = where;
    s->group_by = (sql_expr **)ast_list_array(ctx, group, &s->group_count);
    s->having = having;
    s->limit = limit.limit;
    s->offset = limit.offset;
    return s;
}

static sql_option *parse_option(parse_ctx *ctx, const lex_token *key, sql_expr *value)
{
    if (ctx->err || !value) return NULL;
    sql_option *o = qr_arena_calloc(ctx->arena, 1, sizeof *o);
    if (!o) {
        parse_error_oom(ctx, key->pos);
        return NULL;
    }
    o->key = key->str;
    o->pos = key->pos;
    o->value = value;
    return o;
}

static sql_channel *parse_channel(parse_ctx *ctx, sql_channel_kind kind, const lex_token *kw,
                                  const lex_token *target, const lex_token *url)
{
    if (ctx->err) return NULL;
    sql_channel *c = qr_arena_calloc(ctx->arena, 1, sizeof *c);
    if (!c) {
        parse_error_oom(ctx, kw->pos);
        return NULL;
    }
    c->kind = kind;
    c->pos = kw->pos;
    c->target = target->str;
    c->url = url ? url->str : NULL;
    return c;
}

static sql_expr *parse_lq_matcher(parse_ctx *ctx, const lex_token *name, sql_op op, bool negated,
                                  const lex_token *value)
{
    sql_expr *e =
        ast_binary(ctx, op, ast_field_named(ctx, name->str, name->pos), ast_string(ctx, value));
    if (e && op == SQL_OP_REGEX) {
        e->u.binary.negated = negated;
        e->u.binary.anchored = true;
    }
    return e;
}

static sql_expr *parse_line_filter(parse_ctx *ctx, sql_op op, bool negated, const lex_token *op_tok,
                                   const lex_token *str)
{
    sql_expr *e = ast_binary(ctx, op, ast_field_named(ctx, "msg", op_tok->pos),
                             ast_string(ctx, str));
    if (e) e->u.binary.negated = negated;
    return e;
}

static sql_lq_stage *parse_lq_stage(parse_ctx *ctx, sql_lq_stage_kind kind, sql_pos pos,
                                    sql_expr *filter, const lex_token *text)
{
    if (ctx->err) return NULL;
    sql_lq_stage *s = qr_arena_calloc(ctx->arena, 1, sizeof *s);
    if (!s) {
        parse_error_oom(ctx, pos);
        return NULL;
    }
    s->kind = kind;
    s->pos = pos;
    s->filter = filter;
    if (text) {
        s->text = text->str;
        s->text_len = text->str_len;
    }
    return s;
}

static sql_lq_metric *parse_lq_metric(parse_ctx *ctx, const lex_token *func, ast_list *group,
                                      sql_lq_grouping grouping, const lex_token *param,
                                      parse_lq_arg arg)
{
    if (ctx->err) return NULL;
    sql_lq_metric *m = qr_arena_calloc(ctx->arena, 1, sizeof *m);
    char *name = ast_strdup(ctx, func->text, func->len);
    if (!m || !name) {
        parse_error_oom(ctx, func->pos);
        return NULL;
    }
    for (char *p = name; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    m->pos = func->pos;
    m->func = name;
    sql_lq_func_lookup(func->text, func->len, &m->is_range);
    if (param) {
        m->has_param = true;
        m->param = param->v.f;
        m->param_pos = param->pos;
    }
    m->log = arg.log;
    m->range_ns = arg.range_ns;
    m->range_pos = arg.range_pos;
    m->inner = arg.metric;
    m->grouping = grouping;
    m->labels = (const char **)ast_list_array(ctx, group, &m->label_count);
    return m;
}

/* ---- syntax errors: which terminals would the parser accept here? ---------------------------- */

/* The parser's state stack as it was before the current token: the error is detected only
 * after the default reductions that token triggered, which would hide alternatives. */
typedef struct parse_snapshot {
    int top;
    YYACTIONTYPE states[YYSTACKDEPTH];
} parse_snapshot;

static void parse_snapshot_take(parse_snapshot *snap, const yyParser *p)
{
    snap->top = (int)(p->yytos - p->yystack);
    for (int idx = 0; idx <= snap->top; idx++) snap->states[idx] = p->yystack[idx].stateno;
}

/* Replays the LALR automaton from a copy of the snapshot: reduce while the table says
 * reduce, and report whether token is finally shifted or accepted. */
static bool parse_token_acceptable(const parse_snapshot *snap, int token)
{
    YYACTIONTYPE stack[YYSTACKDEPTH + 8];
    int top = snap->top;
    if (top < 0 || top >= YYSTACKDEPTH) return false;
    memcpy(stack, snap->states, (size_t)(top + 1) * sizeof stack[0]);
    for (int step = 0; step < 4 * YYSTACKDEPTH; step++) {
        YYACTIONTYPE act = yy_find_shift_action((YYCODETYPE)token, stack[top]);
        if (act >= YY_MIN_REDUCE) {
            unsigned rule = act - YY_MIN_REDUCE;
            top += yyRuleInfoNRhs[rule];
            if (top < 0 || top + 1 >= YYSTACKDEPTH + 8) return false;
            stack[top + 1] = yy_find_reduce_action(stack[top], yyRuleInfoLhs[rule]);
            top++;
        } else if (act <= YY_MAX_SHIFTREDUCE) {
            return true;
        } else {
            return act == YY_ACCEPT_ACTION;
        }
    }
    return false;
}

static const char *parse_token_display(int token)
{
    switch (token) {
    case 0: return "end of input";
    case TK_SEMI: return "\";\"";
    case TK_COMMA: return "\",\"";
    case TK_LP: return "\"(\"";
    case TK_RP: return "\")\"";
    case TK_LBRACE: return "\"{\"";
    case TK_RBRACE: return "\"}\"";
    case TK_LBRACKET: return "\"[\"";
    case TK_RBRACKET: return "\"]\"";
    case TK_PIPE: return "\"|\"";
    case TK_PIPEEQ: return "\"|=\"";
    case TK_PIPETILDE: return "\"|~\"";
    case TK_STAR: return "\"*\"";
    case TK_PLUS: return "\"+\"";
    case TK_MINUS: return "\"-\"";
    case TK_SLASH: return "\"/\"";
    case TK_PERCENT: return "\"%\"";
    case TK_EQ: return "\"=\"";
    case TK_NE: return "\"!=\"";
    case TK_LT: return "\"<\"";
    case TK_LE: return "\"<=\"";
    case TK_GT: return "\">\"";
    case TK_GE: return "\">=\"";
    case TK_TILDE: return "\"~\"";
    case TK_NOTTILDE: return "\"!~\"";
    case TK_EQTILDE: return "\"=~\"";
    case TK_ID: return "name";
    case TK_QID: return "quoted name";
    case TK_STRING: return "string";
    case TK_INTEGER: return "integer";
    case TK_FLOAT: return "number";
    case TK_DURATION: return "duration";
    case TK_LQFUNC: return "LogQL function";
    case TK_SELECT: return "SELECT";
    case TK_SHOW: return "SHOW";
    case TK_EXPLAIN: return "EXPLAIN";
    case TK_CREATE: return "CREATE";
    case TK_DROP: return "DROP";
    case TK_MUTE: return "MUTE";
    case TK_UNMUTE: return "UNMUTE";
    case TK_DESCRIBE: return "DESCRIBE";
    case TK_FROM: return "FROM";
    case TK_WHERE: return "WHERE";
    case TK_GROUP: return "GROUP";
    case TK_BY: return "BY";
    case TK_HAVING: return "HAVING";
    case TK_ORDER: return "ORDER";
    case TK_ASC: return "ASC";
    case TK_DESC: return "DESC";
    case TK_LIMIT: return "LIMIT";
    case TK_OFFSET: return "OFFSET";
    case TK_AS: return "AS";
    case TK_SERVICES: return "SERVICES";
    case TK_FIELDS: return "FIELDS";
    case TK_TABLES: return "TABLES";
    case TK_ALERTS: return "ALERTS";
    case TK_ROLLUPS: return "ROLLUPS";
    case TK_ROLLUP: return "ROLLUP";
    case TK_ALERT: return "ALERT";
    case TK_WITH: return "WITH";
    case TK_WINDOW: return "WINDOW";
    case TK_EVERY: return "EVERY";
    case TK_WHEN: return "WHEN";
    case TK_FOR: return "FOR";
    case TK_COOLDOWN: return "COOLDOWN";
    case TK_LABELS: return "LABELS";
    case TK_ANNOTATIONS: return "ANNOTATIONS";
    case TK_NOTIFY: return "NOTIFY";
    case TK_WEBHOOK: return "WEBHOOK";
    case TK_SLACK: return "SLACK";
    case TK_PAGERDUTY: return "PAGERDUTY";
    case TK_ALERTMANAGER: return "ALERTMANAGER";
    case TK_URL: return "URL";
    case TK_JSON: return "json";
    case TK_LOGFMT: return "logfmt";
    case TK_LINE_FORMAT: return "line_format";
    case TK_UNWRAP: return "unwrap";
    case TK_WITHOUT: return "without";
    case TK_NULL: return "NULL";
    case TK_TRUE: return "TRUE";
    case TK_FALSE: return "FALSE";
    case TK_OR: return "OR";
    case TK_AND: return "AND";
    case TK_NOT: return "NOT";
    case TK_LIKE: return "LIKE";
    case TK_CONTAINS: return "CONTAINS";
    case TK_MATCH: return "MATCH";
    case TK_BETWEEN: return "BETWEEN";
    case TK_IN: return "IN";
    case TK_IS: return "IS";
    }
    return NULL;
}

#define PARSE_EXPECTED_MAX 12

static void parse_syntax_error(void *parser, int major, const lex_token *tok, parse_ctx *ctx)
{
    (void)parser;
    const parse_snapshot *p = ctx->snapshot;
    if (ctx->err || !p) return;
    char expected[400];
    size_t used = 0;
    int shown = 0, left = 0;
    bool id_ok = parse_token_acceptable(p, TK_ID);
    bool int_ok = parse_token_acceptable(p, TK_INTEGER);
    expected[0] = '\0';
    for (int token = 0; token < YYNTOKEN; token++) {
        const char *display = parse_token_display(token);
        if (!display || !parse_token_acceptable(p, token)) continue;
        /* keywords usable as names show up as "name" once */
        if (token != TK_ID && id_ok && parse_lemonFallback(token) == TK_ID) continue;
        if (token == TK_QID && id_ok) continue;
        if (token == TK_INTEGER && parse_token_acceptable(p, TK_FLOAT)) continue;
        if (token == TK_FLOAT && !int_ok) display = "number";
        if (shown == PARSE_EXPECTED_MAX) {
            left++;
            continue;
        }
        int n = snprintf(expected + used, sizeof expected - used, "%s%s", shown ? ", " : "",
                         display);
        if (n > 0 && (size_t)n < sizeof expected - used) used += (size_t)n;
        shown++;
    }
    if (left) snprintf(expected + used, sizeof expected - used, ", ...");
    const char *sep = shown ? ", expected " : "";
    if (major == 0) {
        parse_error_at(ctx, tok->pos, QR_ESYNTAX, "syntax error at end of input%s%s", sep,
                       expected);
        return;
    }
    int near_len = tok->len > 40 ? 40 : (int)tok->len;
    parse_error_at(ctx, tok->pos, QR_ESYNTAX, "syntax error near \"%.*s%s\"%s%s", near_len,
                   tok->text, tok->len > 40 ? "..." : "", sep, expected);
}

/* ---- driver ---------------------------------------------------------------------------------- */

void parse_run(parse_ctx *ctx)
{
    yyParser *p = qr_arena_alloc(ctx->arena, sizeof *p);
    parse_snapshot *snap = qr_arena_alloc(ctx->arena, sizeof *snap);
    if (!p || !snap) {
        sql_pos start = {0, 1, 1};
        parse_error_oom(ctx, start);
        return;
    }
    parse_lemonInit(p);
    lex_state lx;
    lex_init(&lx, ctx);
    for (;;) {
        lex_token tok;
        int code = lex_next(&lx, &tok);
        if (code < 0) break;
        ctx->tok_pos = tok.pos;
        parse_snapshot_take(snap, p);
        ctx->snapshot = snap;
        parse_lemon(p, code, tok, ctx);
        if (ctx->err || code == 0) break;
    }
    /* no destructors and a fixed stack in the arena: nothing to finalize */
}

}

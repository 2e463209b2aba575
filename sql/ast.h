/* ast — the syntax tree both query faces (SQL-like and LogQL-like) produce.
 *
 * Included by sql/query.h, the module's public header; consumers (binder, engine, REPL) read
 * these structs but never build them. Every node lives in the qr_arena passed to sql_parse and
 * carries its position in the query text (byte offset, 1-based line and column; the column
 * counts UTF-8 characters). Strings are NUL-terminated arena copies with an explicit length.
 *
 * One meaning, one node: a LogQL matcher service="x" is the SQL comparison service = 'x'
 * (SQL_EXPR_BINARY, SQL_OP_EQ, field, string); the line filter |= "x" is msg CONTAINS 'x'.
 * docs/query.md lists the full mapping. AND/OR chains are flattened into n-ary nodes. */
#ifndef SQL_AST_H
#define SQL_AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sql_pos {
    uint32_t offset; /* bytes from the start of the query text */
    uint32_t line;   /* 1-based */
    uint32_t column; /* 1-based, in UTF-8 characters */
} sql_pos;

/* ---- MATCH search strings ---------------------------------------------------------------- */

typedef enum sql_search_kind {
    SQL_SEARCH_AND,    /* children: all must match (juxtaposition or AND) */
    SQL_SEARCH_OR,     /* children: any */
    SQL_SEARCH_NOT,    /* one child; written NOT x or -x */
    SQL_SEARCH_TERM,   /* text: one token, lower-cased as storage/tokenize.h makes it */
    SQL_SEARCH_PREFIX, /* text: one lower-cased token that indexed tokens start with (pay*) */
    SQL_SEARCH_PHRASE, /* text: the phrase as written; tokens: its tokens, adjacent in order */
    SQL_SEARCH_REGEX,  /* text: the pattern between the slashes (\/ unescaped) */
    SQL_SEARCH_FIELD,  /* text: field name; one child (TERM, PREFIX, PHRASE or REGEX) */
} sql_search_kind;

typedef struct sql_search sql_search;
struct sql_search {
    sql_search_kind kind;
    sql_pos pos;
    const char *text;
    uint32_t text_len;
    uint32_t child_count;
    sql_search **children;
    uint32_t token_count; /* PHRASE only */
    const char **tokens;  /* lower-cased, NUL-terminated */
};

/* ---- expressions ------------------------------------------------------------------------- */

typedef enum sql_expr_kind {
    SQL_EXPR_NULL,
    SQL_EXPR_BOOL,     /* u.b */
    SQL_EXPR_INT,      /* u.i */
    SQL_EXPR_FLOAT,    /* u.f */
    SQL_EXPR_STRING,   /* u.str; is_time/time_ns set when compared with ts */
    SQL_EXPR_DURATION, /* u.duration_ns: 5m, 1h30m, 250ms */
    SQL_EXPR_LEVEL,    /* u.level (qr_level): a bare TRACE..FATAL/UNKNOWN in capitals */
    SQL_EXPR_FIELD,    /* u.name: a field or label, bare or "quoted" */
    SQL_EXPR_STAR,     /* SELECT * (never an operand) */
    SQL_EXPR_UNARY,    /* u.unary: NOT x, -x */
    SQL_EXPR_BINARY,   /* u.binary: arithmetic, comparison, pattern operators */
    SQL_EXPR_AND,      /* u.list: n >= 2 operands */
    SQL_EXPR_OR,       /* u.list */
    SQL_EXPR_IN,       /* u.in */
    SQL_EXPR_BETWEEN,  /* u.between (inclusive) */
    SQL_EXPR_IS_NULL,  /* u.is_null */
    SQL_EXPR_CALL,     /* u.call */
} sql_expr_kind;

typedef enum sql_op {
    SQL_OP_NOT,
    SQL_OP_NEG,
    SQL_OP_ADD,
    SQL_OP_SUB,
    SQL_OP_MUL,
    SQL_OP_DIV,
    SQL_OP_MOD,
    SQL_OP_EQ,
    SQL_OP_NE,
    SQL_OP_LT,
    SQL_OP_LE,
    SQL_OP_GT,
    SQL_OP_GE,
    SQL_OP_LIKE,     /* SQL LIKE pattern, % and _ */
    SQL_OP_REGEX,    /* ~ ; anchored when it came from a LogQL =~ / !~ label matcher */
    SQL_OP_CONTAINS, /* substring, case-sensitive; LogQL |= and != */
    SQL_OP_MATCH,    /* full-text search; binary.search holds the parsed search string */
} sql_op;

typedef struct sql_func sql_func;
typedef struct sql_expr sql_expr;

struct sql_expr {
    sql_expr_kind kind;
    sql_pos pos;
    uint32_t depth; /* 1 for leaves; bounded by SQL_MAX_DEPTH */
    union {
        bool b;
        int64_t i;
        double f;
        int64_t duration_ns;
        uint8_t level;
        struct {
            const char *s;
            uint32_t len;
            bool is_time;    /* an RFC 3339 literal compared with ts */
            int64_t time_ns; /* its value when is_time */
        } str;
        struct {
            const char *s;
            uint32_t len;
        } name;
        struct {
            sql_op op;
            sql_expr *arg;
        } unary;
        struct {
            sql_op op;
            bool negated;  /* NOT LIKE, !~, NOT CONTAINS, NOT MATCH */
            bool anchored; /* REGEX must match the whole value (LogQL label matchers) */
            sql_expr *lhs;
            sql_expr *rhs;
            sql_search *search; /* MATCH only */
        } binary;
        struct {
            uint32_t count;
            sql_expr **items;
        } list;
        struct {
            bool negated;
            sql_expr *arg;
            uint32_t count;
            sql_expr **items;
        } in;
        struct {
            bool negated;
            sql_expr *arg, *lo, *hi;
        } between;
        struct {
            bool negated;
            sql_expr *arg;
        } is_null;
        struct {
            const char *name; /* lower-cased */
            uint32_t name_len;
            bool star; /* count(*) */
            uint32_t arg_count;
            sql_expr **args;
            const sql_func *func; /* resolved by the early checks; never NULL after sql_parse */
        } call;
    } u;
};

/* ---- SQL SELECT -------------------------------------------------------------------------- */

typedef struct sql_select_item {
    sql_expr *expr;
    const char *alias; /* NULL when none */
    sql_pos alias_pos;
} sql_select_item;

typedef struct sql_order_item {
    sql_expr *expr; /* an INT literal is an ordinal into the select list (checked in range) */
    bool desc;
} sql_order_item;

typedef struct sql_select {
    sql_pos pos;
    uint32_t item_count;
    sql_select_item *items;
    const char *from; /* NULL when no FROM; "logs" or a rollup table */
    sql_pos from_pos;
    sql_expr *where;
    uint32_t group_count;
    sql_expr **group_by;
    sql_expr *having;
    uint32_t order_count;
    sql_order_item *order_by;
    int64_t limit;  /* -1 when absent */
    int64_t offset; /* -1 when absent */
} sql_select;

/* ---- LogQL ------------------------------------------------------------------------------- */

typedef enum sql_lq_stage_kind {
    SQL_LQ_LINE_FILTER,  /* filter: msg CONTAINS / REGEX s, maybe negated */
    SQL_LQ_LABEL_FILTER, /* filter: comparisons over fields with AND/OR */
    SQL_LQ_JSON,
    SQL_LQ_LOGFMT,
    SQL_LQ_LINE_FORMAT, /* text: the template */
    SQL_LQ_UNWRAP,      /* text: the field */
} sql_lq_stage_kind;

typedef struct sql_lq_stage {
    sql_lq_stage_kind kind;
    sql_pos pos;
    sql_expr *filter;
    const char *text;
    uint32_t text_len;
} sql_lq_stage;

typedef struct sql_lq_log {
    sql_pos pos;
    uint32_t matcher_count;
    sql_expr **matchers; /* each field EQ/NE string, or field REGEX anchored [negated] string */
    uint32_t stage_count;
    sql_lq_stage *stages;
} sql_lq_log;

typedef enum sql_lq_grouping {
    SQL_LQ_GROUP_NONE,
    SQL_LQ_GROUP_BY,
    SQL_LQ_GROUP_WITHOUT,
} sql_lq_grouping;

typedef struct sql_lq_metric sql_lq_metric;
struct sql_lq_metric {
    sql_pos pos;
    const char *func; /* lower-cased LogQL function: count_over_time, sum, topk, ... */
    bool is_range;    /* a range aggregation over log (func(log [range])) */
    bool has_param;   /* quantile_over_time(q, ...), topk(k, ...) */
    double param;
    sql_pos param_pos;
    /* range aggregation */
    sql_lq_log *log;
    int64_t range_ns;  /* 0 when the [d] was missing (rejected by the checks) */
    sql_pos range_pos; /* where the [d] is, or where it was expected */
    /* vector aggregation */
    sql_lq_metric *inner;
    sql_lq_grouping grouping;
    uint32_t label_count;
    const char **labels;
};

typedef struct sql_logql {
    sql_lq_log *log;       /* a log query ... */
    sql_lq_metric *metric; /* ... or a metric query: exactly one is set */
} sql_logql;

/* ---- statements -------------------------------------------------------------------------- */

typedef enum sql_stmt_kind {
    SQL_STMT_SELECT,
    SQL_STMT_LOGQL,
    SQL_STMT_SHOW,
    SQL_STMT_EXPLAIN,
    SQL_STMT_CREATE_ROLLUP,
    SQL_STMT_CREATE_ALERT,
    SQL_STMT_DROP,
    SQL_STMT_MUTE,
    SQL_STMT_UNMUTE,
    SQL_STMT_DESCRIBE,
} sql_stmt_kind;

typedef enum sql_show_what {
    SQL_SHOW_SERVICES,
    SQL_SHOW_FIELDS,
    SQL_SHOW_TABLES,
    SQL_SHOW_ALERTS,
    SQL_SHOW_ROLLUPS,
} sql_show_what;

typedef enum sql_object_kind {
    SQL_OBJECT_ALERT,
    SQL_OBJECT_ROLLUP,
} sql_object_kind;

typedef struct sql_option {
    const char *key;
    sql_pos pos;
    sql_expr *value; /* a literal: string, number, duration, TRUE/FALSE */
} sql_option;

typedef enum sql_channel_kind {
    SQL_CHANNEL_WEBHOOK,
    SQL_CHANNEL_SLACK,
    SQL_CHANNEL_PAGERDUTY,
    SQL_CHANNEL_ALERTMANAGER,
} sql_channel_kind;

typedef struct sql_channel {
    sql_channel_kind kind;
    sql_pos pos;
    const char *target; /* URL, or the PagerDuty routing key */
    const char *url;    /* PagerDuty's optional URL, else NULL */
} sql_channel;

typedef struct sql_rollup {
    const char *name;
    sql_select *select;
    uint32_t option_count;
    sql_option *options; /* WITH (k = v, ...) */
} sql_rollup;

typedef struct sql_alert {
    const char *name;
    sql_pos name_pos;
    sql_select *select;
    int64_t window_ns;
    sql_pos window_pos;
    int64_t every_ns;
    sql_pos every_pos;
    sql_expr *when;
    int64_t for_ns;      /* 0 when absent */
    int64_t cooldown_ns; /* -1 when absent */
    uint32_t label_count;
    sql_option *labels; /* values are strings */
    uint32_t annotation_count;
    sql_option *annotations;
    uint32_t channel_count;
    sql_channel *channels; /* at least one */
} sql_alert;

typedef struct sql_stmt sql_stmt;
struct sql_stmt {
    sql_stmt_kind kind;
    sql_pos pos;
    sql_pos name_pos; /* DROP, MUTE, UNMUTE, DESCRIBE: where the name is */
    union {
        sql_select *select;
        sql_logql *logql;
        sql_show_what show;
        sql_stmt *explain; /* a SELECT or LOGQL statement */
        sql_rollup *rollup;
        sql_alert *alert;
        struct {
            sql_object_kind object;
            const char *name;
        } drop;
        struct {
            const char *name;
            int64_t duration_ns;
        } mute;
        const char *unmute; /* alert name */
        const char *describe;
    } u;
};

#endif

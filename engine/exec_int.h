/* exec_int — internals shared by the engine's files (not part of the public API).
 *
 * Pipeline and the file that owns each step:
 *   exec.c      exec_run: parse, snapshot, dispatch, limits, EXPLAIN text
 *   bind.c      SQL SELECT → plan (names, types, aggregates, ORDER BY, ranges)
 *   logql.c     LogQL log / metric query → the same plan
 *   eval.c      one expression over one row (three-valued logic), value compare, LIKE, regex
 *   match.c     MATCH search strings: posting-list plans, bloom checks, row verification
 *   filter.c    per part: label tables; per block: pruning, then the row selection
 *   scan.c      visits parts/blocks (newest first when it pays), feeds an operator
 *   op_topk.c   sort / top-k + offset/limit over row references
 *   op_agg.c    hash aggregate (+ answers from block metadata)
 *   op_project.c materializes the winning rows' output columns
 *   show.c      SHOW SERVICES / FIELDS / TABLES
 *   result.c    result formats (table, JSON, NDJSON, CSV)
 * Memory: `qa` is the query's arena (budgeted; the result lives there); `scratch` is reset
 * per block. Regexes are compiled once per query and freed by exec_ctx_fini. */
#ifndef QR_EXEC_INT_H
#define QR_EXEC_INT_H

#include "common/qr_hash.h"
#include "common/qr_time.h"
#include "engine/engine.h"
#include "sql/query.h"
#include "storage/part.h"
#include "storage/tokenize.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <roaring/roaring.h>
#include <stdbool.h>
#include <stdint.h>

/* Column ids: the built-in columns, then the query's fields (COL_FIELD0 + field index). */
enum {
    COL_TS = 0,
    COL_INGEST_TS,
    COL_SERVICE,
    COL_LEVEL,
    COL_HOST,
    COL_MSG,
    COL_FIELD0,
};
/* Column masks (bx.cols): one bit per built-in column, one for "some field". */
#define CM_BIT(col) (1u << (col))
#define CM_FIELD (1u << 6)
#define CM_AGG (1u << 7) /* refers to an aggregate or group slot (post-aggregation) */

typedef enum bx_kind {
    BX_CONST,
    BX_COL,
    BX_NOT,
    BX_NEG,
    BX_BIN, /* op: arithmetic, comparison, LIKE, REGEX, CONTAINS */
    BX_AND,
    BX_OR,
    BX_IN,
    BX_BETWEEN,
    BX_ISNULL,
    BX_MATCH,
    BX_CALL,
    BX_AGG,     /* slot: an aggregate's value (post-aggregation expressions) */
    BX_GROUP,   /* slot: a group key's value */
    BX_EXTRACT, /* LogQL after | json / | logfmt: field col, else parsed from msg (op: parsers) */
} bx_kind;

/* LogQL parsers, as nibbles of bx.op / exec_ctx.lq_parsers (latest in the low nibble). */
enum { LQ_PARSER_JSON = 1, LQ_PARSER_LOGFMT = 2 };

typedef enum fn_id {
    FN_LOWER,
    FN_UPPER,
    FN_LENGTH,
    FN_COALESCE,
    FN_BUCKET,
    FN_NOW,
    FN_LINE_FORMAT, /* LogQL | line_format: items are text constants and references */
    FN_NUMBER,      /* LogQL | unwrap: the value as a number, else NULL */
} fn_id;

/* A MATCH search node, compiled: hashes for blooms, regexes, resolved field columns. */
typedef struct ms_node ms_node;
struct ms_node {
    sql_search_kind kind;
    const char *text; /* TERM/PREFIX: one lower-cased token; REGEX: pattern */
    uint32_t len;
    uint64_t hash; /* TERM */
    uint32_t token_count;
    const char **tokens; /* PHRASE */
    uint32_t *token_lens;
    uint64_t *token_hashes;
    pcre2_code *re; /* REGEX */
    int field_col;  /* FIELD: column id; -1 when the field exists nowhere */
    uint32_t child_count;
    ms_node **children;
};

typedef struct bx bx;
struct bx {
    uint8_t kind; /* bx_kind */
    uint8_t op;   /* sql_op for BX_BIN */
    bool negated;
    uint8_t type;  /* static type when known, else EXEC_NULL */
    uint32_t cols; /* CM_* mask of what it reads */
    sql_pos pos;
    const sql_expr *src; /* for printing (may be NULL) */
    exec_value k;        /* BX_CONST */
    int col;             /* BX_COL */
    int fn;              /* BX_CALL: fn_id */
    int slot;            /* BX_AGG / BX_GROUP */
    int64_t width_ns;    /* bucket width */
    bx *a, *b, *c;
    uint32_t n;
    bx **items;     /* AND/OR/IN/CALL args */
    pcre2_code *re; /* BX_BIN REGEX with a constant pattern */
    ms_node *ms;    /* BX_MATCH */
};

typedef enum agg_fn {
    AGG_COUNT_STAR,
    AGG_COUNT,
    AGG_SUM,
    AGG_AVG,
    AGG_MIN,
    AGG_MAX,
    AGG_COUNT_DISTINCT,
    AGG_QUANTILE,
    AGG_RATE, /* count per second of the bucket width (LogQL rate) */
} agg_fn;

typedef struct agg_spec {
    agg_fn fn;
    bx *arg;      /* row-context argument (NULL for count(*)) */
    double q;     /* quantile */
    double per_s; /* AGG_RATE: divide the count by this many seconds */
    const sql_expr *src;
} agg_spec;

/* Classes of WHERE conjuncts (top-level AND). */
typedef enum conj_class {
    CONJ_TS,    /* a ts comparison; folded into [ts_lo, ts_hi] */
    CONJ_SL,    /* reads only service and/or level: a table over (service id, level) */
    CONJ_HOST,  /* reads only host: a table over host ids */
    CONJ_MATCH, /* msg MATCH '...': posting lists / blooms, then verification */
    CONJ_ROW,   /* anything else, evaluated per row */
} conj_class;

typedef struct conj {
    bx *e;
    conj_class cls;
    bool needs_msg;
} conj;

typedef enum plan_kind { PLAN_ROWS, PLAN_AGG, PLAN_CONST } plan_kind;

/* LogQL vector aggregation / topk over the rows of a range aggregation (op_lqvec.c). The
 * input columns are t, labels..., value. */
typedef struct lq_post {
    const char *vec_fn; /* "sum" "avg" "min" "max" "count", or NULL: none */
    uint32_t by_count;
    uint32_t *by_cols; /* input columns of the by (...) labels */
    int64_t topk;      /* k > 0: topk; k < 0: bottomk |k|; 0: none */
} lq_post;

typedef struct plan {
    plan_kind kind;
    uint32_t out_count;
    const char **out_names;
    bx **out; /* PLAN_ROWS: row context; PLAN_AGG/CONST: post-aggregation context */
    uint32_t conj_count;
    conj *conjs;
    int64_t ts_lo, ts_hi; /* inclusive; INT64_MIN/MAX when open */
    bool has_sl, has_host, has_match;
    uint32_t order_count;
    bx **order; /* PLAN_ROWS: row context; PLAN_AGG: post-aggregation context */
    bool *order_desc;
    uint32_t order_implicit; /* trailing order keys added as tie-breaks (not in EXPLAIN) */
    int64_t limit;           /* -1: none */
    int64_t offset;          /* 0 when absent */
    /* aggregation */
    uint32_t group_count;
    bx **groups; /* row context */
    uint32_t agg_count;
    agg_spec *aggs;
    bx *having;      /* post-aggregation */
    bool meta_ok;    /* counts may come from block metadata (see op_agg.c) */
    bool count_fast; /* only counts, grouped by service / level / one bucket(ts, d) */
    /* row queries ordered by ts first: visit blocks by ts and stop early */
    int ts_order;      /* 0 no, 1 ascending, -1 descending */
    const char *label; /* "SQL" or "LogQL", for EXPLAIN */
    lq_post *lq_post;  /* LogQL: series → vector aggregation / topk after the aggregation */
} plan;

typedef struct qfield {
    const char *name;
    uint32_t len;
} qfield;

typedef struct part_ctx {
    qr_part *p;
    uint32_t idx;
    uint8_t *sl_ok;         /* [service_id * QR_LEVEL_COUNT + level]; NULL: no SL conjunct */
    uint8_t *host_ok;       /* [host_id]; NULL: no host conjunct */
    roaring_bitmap_t *cand; /* candidate rows of the MATCH conjuncts (postings), or NULL */
    bool has_cand;
    bool cand_exact; /* cand is exactly the matching rows: no verification */
    bool cand_lazy;  /* filter_part_prepare leaves cand to filter_part_match (scan.c) */
    bool cand_ready; /* filter_part_match ran */
    int32_t **fvar;  /* per query field: indexes into p->fields (one per value type) */
    uint32_t *fvar_n;
} part_ctx;

typedef struct exec_ctx exec_ctx;

/* A decoded next_cursor (cursor.c). */
typedef struct exec_cursor {
    uint64_t query_hash;
    int64_t now_ns;
    uint32_t key_count;
    exec_value *keys; /* ORDER BY key values of the last row returned */
    uint64_t skip;    /* rows with exactly these keys returned so far */
} exec_cursor;

typedef struct blk_ctx {
    exec_ctx *q;
    part_ctx *pc;
    qr_part *p;
    uint32_t block_idx;
    qr_block_meta meta;
    uint32_t n;
    const int64_t *ts, *ingest;
    const uint8_t *level;
    const uint32_t *svc, *host;
    qr_str *msg;
    uint8_t *msg_have; /* per row: msg[row] is loaded */
    uint8_t *ts_have;  /* non-NULL: ts holds only the rows marked here (blk_need_ts) */
    bool msg_full;
    qr_column **fcols; /* per query field: fvar_n columns, NULL until loaded */
    int err;           /* sticky storage error from a lazy load */
    /* post-aggregation evaluation (p == NULL): values of BX_GROUP / BX_AGG slots */
    const exec_value *post_groups;
    const exec_value *post_aggs;
} blk_ctx;

struct exec_ctx {
    qr_arena *qa;
    qr_arena scratch;
    qr_diag *d;
    const char *text;
    exec_opts opts;
    int64_t now_ns;
    int64_t start_mono_ns;
    int64_t deadline_mono_ns; /* 0: none */
    db_snapshot *snap;
    size_t part_count;
    part_ctx *parts;
    qfield *fields;
    uint32_t field_count, field_cap;
    bool lenient_fields;  /* LogQL: an unknown field is NULL, not an error */
    uint8_t lq_parsers;   /* LogQL parsers seen so far in the pipeline being bound */
    pcre2_code **regexes; /* compiled by this query; freed at the end (regex.c) */
    uint32_t regex_count, regex_cap;
    pcre2_match_data *re_md;
    pcre2_match_context *re_mctx; /* match limits */
    plan *pl;
    exec_stats st;
    uint64_t hits, scanned;
    bool stopped; /* partial: stop scanning */
    const char *stop_reason;
    uint64_t query_hash;  /* xxh3 of the query text: binds cursors to their query */
    uint64_t tenant_hash; /* xxh3 of the tenant name: part of msg cache keys */
    bool has_cursor;
    exec_cursor cursor; /* opts.cursor, decoded */
    /* FROM <rollup> (rollup_exec.c): names bind to the rollup's row slots */
    struct rollup *table;
    const struct ru_def *table_def;
    const char *rollup_note; /* EXPLAIN: "rollup: name" or "rollup: not used (...)" */
    /* scan workers (scan.c): workers[0] is this context; the others are copies with their own
     * arenas, diag, statistics and regex match data, merged back by the operators */
    uint32_t worker_count;
    exec_ctx **workers;
};

/* ---- exec.c ---- */
/* Positioned query error: "line L, column C: ..." with diag line/column/offset. */
int exec_error_at(exec_ctx *q, sql_pos pos, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Budget exhausted: sets the diag, returns QR_ELIMIT (scan.c turns it into a partial stop
 * when the caller allowed partial results). */
int exec_over_budget(exec_ctx *q);
/* Deadline check between blocks: QR_ELIMIT with "query timed out after N ms", or 0. */
int exec_check_deadline(exec_ctx *q);
/* Unknown field error with a "did you mean" suggestion (bind.c). */
int bind_unknown_field(exec_ctx *q, const char *name, size_t len, sql_pos pos);
/* ---- regex.c ---- */
/* A match context with the engine's match limits and a one-pair match data block. */
int exec_regex_match_init(pcre2_match_context **mctx, pcre2_match_data **md);
/* Compiles and JITs a pattern with the engine's options (UTF-8, invalid UTF-8 subjects
 * allowed, anchored at both ends when asked); NULL with the reason in why when it is bad. */
pcre2_code *exec_regex_build(const char *pattern, size_t len, bool anchored, char *why,
                             size_t why_cap);
/* Compiles (and JITs) a regex for the query; freed by exec_regex_fini. A bad pattern is
 * QR_ESYNTAX at pos with PCRE2's message. */
int exec_regex_compile(exec_ctx *q, const char *pattern, size_t len, bool anchored, sql_pos pos,
                       pcre2_code **out);
/* 1 match, 0 no match, QR_ELIMIT past the match limit (diag set). */
int exec_regex_match(exec_ctx *q, const pcre2_code *re, qr_str s);
void exec_regex_fini(exec_ctx *q);
/* Index of the field in the query's field table, adding it; -1 on OOM. */
int exec_field_intern(exec_ctx *q, const char *name, size_t len);
/* True when some part's schema has the key. */
bool exec_field_known(exec_ctx *q, const char *name, size_t len);

/* ---- cursor.c ---- */
/* Text of the cursor (in q->qa). QR_ELIMIT over budget. */
int cursor_encode(exec_ctx *q, const exec_cursor *c, const char **out);
/* QR_EINVAL "invalid cursor: ..." when damaged or from another query. */
int cursor_decode(exec_ctx *q, const char *text, exec_cursor *out);

/* ---- bind.c / logql.c ---- */
int bind_select(exec_ctx *q, const sql_select *s, plan **out);
int bind_logql(exec_ctx *q, const sql_logql *l, plan **out);
/* Shared by both faces. */
int bind_expr(exec_ctx *q, const sql_expr *e, bx **out);
int bind_where(exec_ctx *q, plan *pl, bx **conjs, uint32_t count); /* classify + ranges */
bx *bx_new(exec_ctx *q, bx_kind kind, sql_pos pos);
plan *plan_new(exec_ctx *q);
void bind_meta_ok(plan *pl);
/* Column name as users write it ("ts", "latency_ms"). */
const char *bind_col_name(exec_ctx *q, int col);

/* ---- lq_extract.c ---- */
exec_value lq_extract_eval(const bx *e, blk_ctx *bc, uint32_t row);
exec_value lq_line_format_eval(const bx *e, blk_ctx *bc, uint32_t row);
exec_value lq_number_eval(const bx *e, blk_ctx *bc, uint32_t row);
int lq_line_format_bind(exec_ctx *q, const char *tmpl, size_t len, sql_pos pos, bx **out);

/* ---- eval.c ---- */
exec_value ev_eval(const bx *e, blk_ctx *bc, uint32_t row);
exec_value ev_col(blk_ctx *bc, int col, uint32_t row);
/* Total order for sorting and grouping: NULL first, then by type family, then value. */
int ev_cmp(const exec_value *a, const exec_value *b);
/* Appends the value's grouping/distinct key (type byte + bytes); equal values, equal keys
 * (-0 and 0 alike). Non-string keys take at most 9 bytes. */
void exec_value_key(qr_buf *b, const exec_value *v);
/* SQL comparison: -2 when incomparable (NULL or mismatched types), else -1/0/1. */
int ev_compare(const exec_value *a, const exec_value *b);
bool ev_truthy(const exec_value *v);
/* Text of a value for string operators (level names, numbers as text); scratch arena. */
qr_str ev_text(blk_ctx *bc, const exec_value *v);
bool ev_like(const char *s, size_t n, const char *pat, size_t pn);
exec_value ev_copy(qr_arena *a, const exec_value *v, bool *ok);
static inline exec_value ev_null(void)
{
    exec_value v = {0};
    return v;
}
static inline exec_value ev_bool(bool b)
{
    exec_value v = {.type = EXEC_BOOL};
    v.v.b = b;
    return v;
}
static inline exec_value ev_int(uint8_t type, int64_t i)
{
    exec_value v = {.type = type};
    v.v.i = i;
    return v;
}

/* ---- blk (filter.c) ---- */
void blk_init(blk_ctx *bc, exec_ctx *q, part_ctx *pc, uint32_t block_idx);
int blk_load(blk_ctx *bc, int col); /* loads a built-in column */
int blk_need_msgs(blk_ctx *bc, const uint32_t *sel, uint32_t n);
/* ts of the selected rows: a few rows of a part that can (load_ts_rows) are decoded alone,
 * otherwise the column; ev_col loads the column for any other row. */
int blk_need_ts(blk_ctx *bc, const uint32_t *sel, uint32_t n);
/* exec_msgcache.c: rows' messages of one segment block. get copies hits into a (found[i] = 1
 * for a hit; QR_ELIMIT when a is over budget); put copies the messages in, evicting the
 * least recently used to stay within the budget. */
int exec_msg_cache_get(exec_msg_cache *c, uint64_t tenant, uint64_t part_id, uint32_t block_idx,
                       const uint32_t *rows, uint32_t n, qr_arena *a, qr_str *out, uint8_t *found);
void exec_msg_cache_put(exec_msg_cache *c, uint64_t tenant, uint64_t part_id, uint32_t block_idx,
                        const uint32_t *rows, uint32_t n, const qr_str *msgs);
const qr_column *blk_field(blk_ctx *bc, uint32_t qf, uint32_t *count);
/* Per part: resolve fields, build label tables and (unless pc->cand_lazy) MATCH candidates.
 * Until the candidates are made, block pruning uses the blocks' token blooms. */
int filter_part_prepare(exec_ctx *q, part_ctx *pc);
/* The MATCH candidates of the part (posting lists), once. */
int filter_part_match(exec_ctx *q, part_ctx *pc);
void filter_part_fini(part_ctx *pc);
/* Block pruning: 0 keep, else which counter it counts against. */
typedef enum prune_why { PRUNE_NONE, PRUNE_TIME, PRUNE_LABELS, PRUNE_INDEX } prune_why;
prune_why filter_block_prune(exec_ctx *q, part_ctx *pc, const qr_block_meta *m, uint32_t bi);
/* The index part of it (posting lists, else token blooms): true when no row can match. With
 * pc->cand_lazy, filter_block_prune leaves this to the block's visit. */
bool filter_block_prune_index(exec_ctx *q, part_ctx *pc, const qr_block_meta *m, uint32_t bi);
/* True when every row of the block passes every conjunct, as far as metadata says
 * (whole block in range, all its (service, level) pairs accepted, no other conjunct). */
bool filter_block_all_match_meta(exec_ctx *q, part_ctx *pc, const qr_block_meta *m);
/* The selection: block-relative rows that pass every conjunct, ascending. */
int filter_block_select(blk_ctx *bc, uint32_t **sel, uint32_t *n);

/* ---- match.c ---- */
int match_compile(exec_ctx *q, const sql_search *s, ms_node **out);
/* Rows of the part that may match (superset) and whether the set is exact. *out NULL when the
 * part has no postings. */
int match_part_candidates(exec_ctx *q, qr_part *p, const ms_node *m, roaring_bitmap_t **out,
                          bool *exact);
bool match_block_may(qr_part *p, uint32_t block_idx, const ms_node *m);
/* Does the text (the msg or another value) satisfy the search? */
bool match_row(const ms_node *m, blk_ctx *bc, uint32_t row, qr_str text);

/* ---- scan.c ---- */
/* Sets up q->workers (opts.threads of them, fewer for small snapshots); call before the sinks
 * are made (one sink context per worker). Freed by scan_workers_fini (exec_run). */
int scan_workers_init(exec_ctx *q);
void scan_workers_fini(exec_ctx *q);
typedef struct scan_sink {
    /* rows of a block that passed the filter */
    int (*rows)(void *ctx, blk_ctx *bc, const uint32_t *sel, uint32_t n);
    /* a block answered from metadata (NULL: never) */
    int (*meta)(void *ctx, part_ctx *pc, const qr_block_meta *m);
    /* ts order early stop: true and *out = the first key (ts) of the worst row kept, when the
     * sink is full (no row with a worse ts can enter any more) */
    bool (*worst_ts)(void *ctx, int64_t *out);
    void **ctxs; /* one per worker: ctxs[w] belongs to q->workers[w] */
} scan_sink;
/* Runs the workers over the parts and blocks; each calls the sink with its own context.
 * Statistics, hits and scanned are summed into q; errors and partial stops reported in q. */
int scan_run(exec_ctx *q, const scan_sink *sink);
/* Runs fn(q->workers[w], w, arg) on every worker at once (w = 0 on the calling thread); fn
 * shares the work out itself. The first error by worker index, its diag copied to q. */
typedef int (*scan_task_fn)(exec_ctx *wq, uint32_t w, void *arg);
int scan_parallel(exec_ctx *q, scan_task_fn fn, void *arg);
/* QR_ELIMIT with allow_partial: marks the query partial (stop_reason from the diag), 0. */
int scan_partial(exec_ctx *q, int rc);

/* ---- operators ---- */
typedef struct row_ref {
    exec_value *keys;
    uint32_t part_idx, block_idx, row;
} row_ref;
typedef struct op_topk op_topk;
int op_topk_new(exec_ctx *q, uint32_t key_count, const bool *desc, uint64_t cap, op_topk **out);
int op_topk_push(op_topk *t, const exec_value *keys, uint32_t part_idx, uint32_t block_idx,
                 uint32_t row);
/* The worst row's first key when full, else NULL. */
const exec_value *op_topk_worst_key(const op_topk *t);
/* Sorted rows (best first). */
row_ref *op_topk_finish(op_topk *t, uint64_t *count);

int run_rows(exec_ctx *q, exec_result *r);                     /* op_project.c: the row pipeline */
int run_agg(exec_ctx *q, exec_result *r);                      /* op_agg.c */
int lq_post_run(exec_ctx *q, exec_result *r);                  /* op_lqvec.c */
int run_show(exec_ctx *q, sql_show_what what, exec_result *r); /* show.c */

/* ---- rollup_exec.c ---- */
/* CREATE/DROP ROLLUP, SHOW ROLLUPS, DESCRIBE (QR_ENOTFOUND: not a rollup, nothing set). */
int rollup_exec_stmt(exec_ctx *q, const char *tenant, const sql_stmt *stmt, exec_result *r);
/* FROM name: binds q->table to the tenant's rollup (QR_ENOTFOUND when none). */
int rollup_bind_table(exec_ctx *q, const char *tenant, const char *name);
void rollup_unbind_table(exec_ctx *q);
/* Row slot of a rollup column (t 0, labels, aggregates) and its type; -1 when none. */
int rollup_table_col(const struct ru_def *def, const char *name, size_t len, uint8_t *type);
const char *rollup_table_col_name(const struct ru_def *def, int slot);
uint32_t rollup_table_width(const struct ru_def *def);
const char *rollup_table_name(const struct ru_def *def);
/* Appends the tenant's rollups (name, rows) to SHOW TABLES' result. */
int rollup_show_tables(exec_ctx *q, const char *tenant, exec_result *r);
const char *rollup_table_names(exec_ctx *q, const char *tenant);
int rollup_run_select(exec_ctx *q, exec_result *r);
/* Answers q->pl (an aggregate over logs) from a rollup when one covers it (*used). */
int rollup_try_rewrite(exec_ctx *q, const char *tenant, exec_result *r, bool *used);
/* Sorts output rows (cells) by the plan's post-aggregation ORDER BY, else by group keys. */

#endif

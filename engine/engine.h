/* engine — query execution: query text in, result table out (DESIGN.md §5).
 *
 * exec_run parses the text (sql/query.h), binds names and types against the tenant's snapshot
 * (storage/db.h: segments + memtables, read through storage/part.h), plans and runs it:
 *   prune parts and blocks by time range, by block (service × level) counts and by token
 *   blooms or posting lists → evaluate the predicates into a selection of rows per block
 *   (label predicates as lookups over dictionary ids; MATCH through posting lists, verifying
 *   phrases/regexes only on candidate rows) → operators over the selected rows (top-k/sort,
 *   hash aggregate, project, limit). Counts by service/level/time bucket are answered from
 *   block metadata where a block lies wholly inside the query's range.
 * Statements: SELECT, LogQL log and metric queries, SHOW SERVICES/FIELDS/TABLES, EXPLAIN.
 * docs/query.md ("Execution") states the semantics: NULLs, ordering, defaults, limits.
 *
 * Limits: every query has a memory budget (opts->mem_budget_bytes) and a deadline
 * (opts->timeout_ms). Exceeding one is QR_ELIMIT ("query memory budget exceeded", "query
 * timed out after N ms"), or, with opts->allow_partial, a result whose `partial` is set with
 * `partial_reason` holding what was gathered until then.
 *
 * Ownership: exec_run allocates *out (one arena holds everything in it); exec_result_free
 * frees it (NULL is a no-op). Thread safety: exec_run may run in many threads at once, each
 * with its own result; it takes its own snapshot of the tenant. Within one query, the scan is
 * split across opts->threads workers (the caller's thread and threads it starts and joins
 * before returning) by part and block; the result is the same for any thread count.
 * Errors: 0 or a negative QR_E* code. Query errors (syntax, unknown field, bad level, bad
 * regex) are QR_ESYNTAX with a diag whose message starts "line L, column C: " and whose
 * line/column/offset point into the query text. QR_ELIMIT as above; QR_EIO/QR_ECORRUPT from
 * storage, with the storage diag; QR_ENOMEM. *out is untouched on failure. */
#ifndef QR_ENGINE_H
#define QR_ENGINE_H

#include "common/qr_arena.h"
#include "common/qr_buf.h"
#include "common/qr_err.h"
#include "storage/db.h"
#include "storage/event.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXEC_DEFAULT_MEM_BUDGET (512u * 1024 * 1024)
#define EXEC_DEFAULT_LOGQL_LIMIT 100 /* LogQL log queries without a limit, as Loki */
#define EXEC_MAX_THREADS 16

struct rollup_mgr; /* engine/rollup.h */
typedef struct exec_msg_cache exec_msg_cache;
struct alert_mgr; /* engine/alert.h */

typedef struct exec_opts {
    size_t mem_budget_bytes; /* 0 = EXEC_DEFAULT_MEM_BUDGET */
    uint32_t timeout_ms;     /* 0 = no deadline */
    bool allow_partial;      /* over budget or deadline: partial result instead of QR_ELIMIT */
    int64_t now_ns;          /* what now() means; 0 = the real clock */
    uint32_t logql_limit;    /* rows of a LogQL log query; 0 = EXEC_DEFAULT_LOGQL_LIMIT */
    const char *cursor;      /* next_cursor of a previous page of the same query, or NULL */
    /* paging a row query for a stream (0 = off): at most page_rows rows per call, with a
     * next_cursor while more remain; rows_done = rows the earlier pages returned, so that
     * the query's own LIMIT counts across pages (no next_cursor once it is reached) */
    uint64_t page_rows;
    uint64_t rows_done;
    const volatile sig_atomic_t *cancel; /* when it becomes non-zero (e.g. from a SIGINT
                                            handler) the query stops with QR_ECANCELED */
    /* the continuous queries this process runs over db (opened after db_open); NULL: the
     * statements that define or show rollups / alerts fail with a clear error */
    struct rollup_mgr *rollups;
    struct alert_mgr *alerts;
    uint32_t threads; /* scan workers (the calling thread is one); 0 = one per core, at most
                         EXEC_MAX_THREADS. Results do not depend on it. */
    /* messages of segment rows read one by one (result rows, needle hits) kept between
     * queries; NULL = none. Use one cache with one db_t (keys are tenant, segment id, row). */
    exec_msg_cache *msg_cache;
} exec_opts;

/* A bounded LRU of single messages of segment rows (segments are immutable, so an entry
 * never goes stale; a segment replaced by compaction leaves its entries to age out).
 * A query's selective msg read (at most EXEC_MSG_CACHE_ROWS rows of a block: result rows,
 * needle hits, not the bulk verification of a phrase) looks rows up here before
 * decompressing their 64 KiB frames, and adds the rows it had to read. Cost against the
 * budget: the message bytes plus ~56 B per entry. Thread-safe (one mutex). */
#define EXEC_MSG_CACHE_ROWS 128
#define EXEC_MSG_CACHE_DEFAULT_BYTES (16u * 1024 * 1024)
typedef struct exec_msg_cache_stat {
    size_t budget_bytes, used_bytes;
    uint64_t entries, hits, misses, evictions;
} exec_msg_cache_stat;
/* NULL on out of memory. budget_bytes 0 keeps nothing. */
exec_msg_cache *exec_msg_cache_new(size_t budget_bytes);
void exec_msg_cache_free(exec_msg_cache *c);
void exec_msg_cache_stats(exec_msg_cache *c, exec_msg_cache_stat *out);

/* Value types of result cells. */
typedef enum exec_type {
    EXEC_NULL = 0,
    EXEC_BOOL,
    EXEC_INT,
    EXEC_FLOAT,
    EXEC_STRING,
    EXEC_TS,       /* i: ns since the epoch, printed RFC 3339 */
    EXEC_LEVEL,    /* i: qr_level, printed by name */
    EXEC_DURATION, /* i: ns, printed like 5m */
} exec_type;

typedef struct exec_value {
    uint8_t type; /* exec_type */
    union {
        bool b;
        int64_t i;
        double f;
        qr_str s;
    } v;
} exec_value;

/* Pruning and work figures, shown by EXPLAIN. */
typedef struct exec_stats {
    uint64_t parts_total;
    uint64_t parts_pruned;
    uint64_t blocks_total;
    uint64_t blocks_pruned_time;   /* outside the time range */
    uint64_t blocks_pruned_labels; /* no (service, level) pair of the block can match */
    uint64_t blocks_pruned_index;  /* bloom or posting lists: no candidate row */
    uint64_t blocks_skipped;       /* never visited: ORDER BY ts ... LIMIT stopped early */
    uint64_t blocks_scanned;       /* columns read */
    uint64_t blocks_meta;          /* answered from block metadata alone */
    uint64_t rows_verified;        /* candidate rows whose text was checked */
    uint32_t threads;              /* threads that scanned (the caller's included) */
} exec_stats;

typedef struct exec_result {
    qr_arena arena; /* everything below lives here */
    uint32_t col_count;
    const char **col_names;
    uint8_t *col_types; /* exec_type of the column (cells may also be EXEC_NULL) */
    uint64_t row_count;
    exec_value *cells; /* row-major: cells[row * col_count + col] */
    uint64_t hits;     /* rows that matched the filter (groups' inputs for aggregates) */
    uint64_t scanned;  /* rows in the blocks whose columns were read */
    double took_ms;
    bool partial;
    const char *partial_reason; /* NULL unless partial */
    const char *next_cursor;    /* NULL when there is no next page */
    bool is_explain;            /* one column "plan", one line per row */
    exec_stats stats;
} exec_result;

int exec_run(db_t *db, const char *tenant, const char *query_text, const exec_opts *opts,
             exec_result **out, qr_diag *d);
void exec_result_free(exec_result *r);

typedef enum exec_format {
    EXEC_FORMAT_TABLE,
    EXEC_FORMAT_JSON,   /* {"columns": [...], "rows": [[...]], "hits", ...} */
    EXEC_FORMAT_NDJSON, /* one {"col": value, ...} object per row */
    EXEC_FORMAT_CSV,    /* header line, RFC 4180 quoting */
} exec_format;

/* Appends the result in the format to out. Returns 0 or QR_ENOMEM. */
int exec_result_format(const exec_result *r, exec_format fmt, qr_buf *out);
/* Appends one value as JSON: numbers and booleans as such, times, levels and durations as
 * their text. */
void exec_value_json(const exec_value *v, qr_buf *out);
/* Appends one value as text (the table/CSV form: RFC 3339 times, level names). */
void exec_value_text(const exec_value *v, qr_buf *out);
/* "table", "json", "ndjson", "csv" → format; false when unknown. */
bool exec_format_parse(const char *name, exec_format *out);

#endif

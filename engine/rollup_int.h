/* rollup_int — internals shared by rollup.c (manager, windows, persistence), rollup_file.c
 * (the file formats) and rollup_exec.c (statements, queries, rewrite). Not a public API.
 *
 * Locking: mgr->list_lock (rwlock) guards the list of rollups; each rollup's mu guards its
 * windows, watermark, late counts and file list. Lock order: list_lock, then a rollup's mu.
 * A rollup is reference counted so queries and backfills can use it without the list lock. */
#ifndef QR_ROLLUP_INT_H
#define QR_ROLLUP_INT_H

#include "common/qr_buf.h"
#include "engine/cq_agg.h"
#include "engine/cq_batch.h"
#include "engine/engine.h"
#include "engine/evfilter.h"
#include "engine/rollup.h"
#include "sql/query.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

#define RU_NAME_MAX 128
#define RU_MAX_COLUMNS 64            /* labels + aggregates of one rollup */
#define RU_FILE_MAX_BYTES (1u << 30) /* one rollup file; bounds what a reader allocates */
#define RU_MERGE_FILES 16            /* more small files than this: merge them into one */
#define RU_FILE_VERSION 1
#define RU_MANIFEST_VERSION 1

typedef enum ru_label_src {
    RU_LABEL_SERVICE,
    RU_LABEL_HOST,
    RU_LABEL_LEVEL,
    RU_LABEL_FIELD,
} ru_label_src;

typedef struct ru_label {
    char name[RU_NAME_MAX + 1];  /* column name: the alias, else the label */
    char field[RU_NAME_MAX + 1]; /* the label read from events (service, host, level, a field) */
    uint32_t field_len;
    uint8_t src; /* ru_label_src */
} ru_label;

typedef struct ru_agg {
    char name[RU_NAME_MAX + 1]; /* column name: alias, else the call's canonical text */
    cq_agg_spec spec;
} ru_agg;

typedef enum ru_col_kind { RU_COL_T, RU_COL_LABEL, RU_COL_AGG } ru_col_kind;

/* Columns in select-list order (SELECT * over the rollup). */
typedef struct ru_col {
    uint8_t kind; /* ru_col_kind */
    uint32_t idx; /* into labels / aggs */
} ru_col;

/* A compiled definition. */
typedef struct ru_def {
    char name[RU_NAME_MAX + 1];
    char tenant[QR_TENANT_MAX_BYTES + 1];
    char *text; /* the CREATE statement (malloc) */
    char t_name[RU_NAME_MAX + 1];
    int64_t interval_ns;
    int64_t lateness_ns;
    int64_t retention_ns; /* 0 = forever */
    uint32_t label_count;
    ru_label labels[RU_MAX_COLUMNS];
    uint32_t agg_count;
    ru_agg aggs[RU_MAX_COLUMNS];
    uint32_t col_count;
    ru_col cols[RU_MAX_COLUMNS * 2 + 1];
    /* WHERE, split at top-level AND into canonical texts, sorted (for the rewrite); malloc */
    uint32_t conj_count;
    char **conj_texts;
    bool where_has_ts;  /* a conjunct reads ts: never used by the rewrite */
    bool needs_msg;     /* the filter reads msg (the backfill loads it) */
    bool where_other;   /* the filter reads something besides service and level ... */
    bool where_other_h; /* ... besides service, host and level */
    bool uses_host;     /* the filter or a label reads host */
    bool labels_sl;     /* every label is service or level ... */
    bool labels_slh;    /* ... service, host or level */
    bool all_fields;    /* the filter may read any field (MATCH field:value) */
    uint32_t field_count;
    char **fields;   /* fields the filter, labels and aggregates read (malloc) */
    qr_arena *arena; /* the parsed statement: a compiled filter points into it */
    cqb_where where; /* the WHERE by conjunct (compiled with the filter) */
} ru_def;

/* Compiles the CREATE ROLLUP statement text: checks aggregates and (when snap has rows) that
 * fields exist in snap, fills def and, when filter is not NULL, compiles the WHERE into it
 * (the filter points into def's arena: free it before ru_def_fini). Positioned QR_ESYNTAX
 * errors. ru_def_fini frees what it holds. */
int ru_def_compile(const char *text, const char *tenant, db_snapshot *snap, ru_def *def,
                   evf **filter, qr_diag *d);
void ru_def_fini(ru_def *def);
/* 1-128 of [A-Za-z0-9_-]: names that are also directory names. */
bool ru_name_ok(const char *s);

/* Label values of a window are kept as a key: per label a type byte (exec_type) and the value
 * (STRING: u32 length + bytes; INT/LEVEL/TS: 8 bytes; FLOAT: 8 bytes; BOOL: 1 byte). */
void ru_key_add(qr_buf *key, const exec_value *v);
/* Decodes label_count values of a key (strings point into key). false if malformed. */
bool ru_key_decode(const uint8_t *key, size_t len, uint32_t label_count, exec_value *out);

/* One window: (bucket start, labels) → states. */
typedef struct ru_win ru_win;
struct ru_win {
    ru_win *next; /* hash chain */
    int64_t t;
    uint64_t hash;
    uint32_t key_len;
    uint8_t *key;
    cq_agg_state **st; /* agg_count */
};

typedef struct ru_table {
    ru_win **slots;
    size_t cap; /* power of two */
    size_t count;
} ru_table;

ru_win *ru_table_get(ru_table *t, const ru_def *def, int64_t bucket_t, const uint8_t *key,
                     uint32_t key_len, int *err);
void ru_table_fini(ru_table *t, const ru_def *def);
void ru_win_free(ru_win *w, const ru_def *def);

/* An immutable closed-window file, held in memory (reference counted). */
typedef struct ru_file {
    atomic_int refs;
    uint64_t seq;
    int64_t min_t, max_t;
    uint64_t rows;
    uint64_t buckets; /* distinct bucket starts */
    uint32_t checksum;
    uint8_t *bytes;
    size_t len;
} ru_file;

typedef struct ru_late {
    int64_t t;
    uint64_t n;
} ru_late;

typedef struct rollup rollup;
struct rollup {
    ru_def def;
    atomic_int refs;
    char dir[PATH_MAX];
    pthread_mutex_t mu;
    evf *filter;     /* under mu */
    bool registered; /* the observer adds batches */
    bool live;       /* the rebuild/backfill finished */
    bool dropped;
    atomic_uint_fast64_t backfill_events;
    int64_t closed_through_ns; /* buckets ending at or before it are closed; INT64_MIN none */
    ru_table open;
    ru_win **closing; /* taken out of open, being written (queries still see them) */
    size_t closing_n;
    uint64_t late_total;
    ru_late *late;
    size_t late_n, late_cap;
    bool late_dirty;
    int64_t late_published_mono_ns; /* late-only MANIFEST updates: at most every few seconds */
    ru_file **files;                /* ascending seq; disjoint buckets (merges skip large files) */
    size_t file_count;
    uint64_t next_seq;
    qr_buf key;            /* observer scratch */
    pthread_mutex_t io_mu; /* serializes writers of files and MANIFEST */
};

struct rollup_mgr {
    db_t *db;
    rollup_opts opts;
    pthread_rwlock_t list_lock;
    rollup **list;
    size_t count, cap;
    bool closed;
    bool final_tick; /* rollup_mgr_close: publish late counts whatever their age */
    pthread_t thread;
    bool has_thread;
    pthread_mutex_t tick_mu;
    pthread_cond_t tick_cv;
    bool stop;
    /* the observer's per-batch scratch, reused by whichever call holds scratch_mu (a call
     * that finds it busy, another tenant's ingest, allocates its own) */
    pthread_mutex_t scratch_mu;
    cqb_batch *scratch_cqb;
    struct win_cache *scratch_cache; /* CQB_CLASS_MAX */
    uint32_t scratch_gen;            /* the last rollup turn given out with scratch_cache */
};

int64_t ru_now(const rollup_mgr *m);
static inline int64_t ru_bucket(int64_t t, int64_t w)
{
    int64_t b = t / w * w;
    return (t < 0 && b != t) ? b - w : b;
}

/* Finds a rollup by tenant and name and takes a reference (NULL when none). */
rollup *ru_find(rollup_mgr *m, const char *tenant, const char *name, size_t name_len);
void ru_unref(rollup *r);
/* The tenant's rollups, referenced (free with ru_unref_all). */
int ru_find_all(rollup_mgr *m, const char *tenant, rollup ***out, size_t *count);
void ru_unref_all(rollup **list, size_t count);

/* ---- rows for queries -------------------------------------------------------------------- */

typedef struct ru_row {
    int64_t t;
    exec_value *labels; /* label_count */
    cq_agg_state **st;  /* agg_count, owned by the row set */
} ru_row;

typedef struct ru_rows {
    ru_row *rows;
    size_t count, cap;
    qr_arena arena;         /* label values and keys */
    struct ru_file **files; /* held: file rows' label strings point into them */
    size_t file_n;
    uint64_t agg_mask; /* the aggregates whose states were read (others are NULL) */
    uint32_t agg_count;
    const ru_def *def;
    bool exact;          /* no late events in the range, live, not cut by retention */
    const char *inexact; /* why not (static text) */
} ru_rows;

/* Closed windows (files) and open windows (memory) with t_lo <= t <= t_hi, copies of the
 * states of the aggregates in agg_mask (bit per aggregate; the others are NULL), in (t,
 * labels) order when sorted. ru_rows_fini frees. */
int ru_rows_collect(rollup *r, rollup_mgr *m, int64_t t_lo, int64_t t_hi, uint64_t agg_mask,
                    bool sorted, ru_rows *out, qr_diag *d);
/* Why rows of [t_lo, t_hi] would not equal the raw aggregation (NULL: they do): backfilling,
 * late events dropped in the range, or the range reaching past retention. */
const char *ru_inexact(rollup *r, rollup_mgr *m, int64_t t_lo, int64_t t_hi);
void ru_rows_fini(ru_rows *rs);

/* ---- files (rollup_file.c) --------------------------------------------------------------- */

/* Encodes windows (sorted by (t, key)) as one rollup file into out. */
int ru_file_encode(const ru_def *def, ru_win *const *wins, size_t n, qr_buf *out);
/* Validates a whole file (untrusted bytes); fills min/max t and rows. QR_ECORRUPT + diag. */
int ru_file_check(const uint8_t *p, size_t len, int64_t *min_t, int64_t *max_t, uint64_t *rows,
                  uint64_t *buckets, qr_diag *d);
/* Decodes the rows of a checked file: fn per row (labels point into arena or p; states of
 * the aggregates in agg_mask, NULL for the others, are the callee's to keep or free). */
typedef int (*ru_row_fn)(void *ctx, int64_t t, const exec_value *labels, cq_agg_state **st);
int ru_file_decode(const ru_def *def, const uint8_t *p, size_t len, qr_arena *arena,
                   uint64_t agg_mask, ru_row_fn fn, void *ctx, qr_diag *d);

typedef struct ru_manifest_file {
    uint64_t seq;
    int64_t min_t, max_t;
    uint64_t rows, bytes;
    uint32_t checksum;
} ru_manifest_file;

typedef struct ru_manifest {
    int64_t closed_through_ns;
    uint64_t next_seq;
    uint64_t late_total;
    size_t late_n;
    ru_late *late; /* malloc */
    size_t file_n;
    ru_manifest_file *files; /* malloc */
} ru_manifest;

int ru_manifest_encode(const ru_manifest *mf, qr_buf *out);
int ru_manifest_decode(const uint8_t *p, size_t len, ru_manifest *out, qr_diag *d);
void ru_manifest_fini(ru_manifest *mf);

#endif

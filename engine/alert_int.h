/* alert_int — what alert.c (manager, observer, evaluator, files) and alert_sql.c (compiling
 * definitions, the WHEN evaluator, statement results) share. Not a public header. */
#ifndef QR_ALERT_INT_H
#define QR_ALERT_INT_H

#include "common/qr_arena.h"
#include "common/qr_buf.h"
#include "engine/alert.h"
#include "engine/cq_agg.h"
#include "engine/cq_batch.h"
#include "engine/evfilter.h"

#include <pthread.h>

typedef enum alert_state {
    ALERT_OK = 0,
    ALERT_PENDING = 1,
    ALERT_FIRING = 2,
    ALERT_RESOLVED = 3, /* only in history records: firing → resolved, then the instance is ok */
} alert_state;

const char *alert_state_name(uint8_t s);
bool alert_state_parse(const char *s, size_t len, uint8_t *out);

typedef struct alert_group {
    uint64_t hash;
    char *key; /* each GROUP BY value as text + 0x1f (0x1e for NULL): equality, history */
    uint32_t key_len;
    char *display;         /* "service=payment,host=a" ("" without GROUP BY) */
    char **values;         /* one printed value per GROUP BY label ("" when NULL) */
    cq_agg_state **states; /* nslots × agg_count, NULL until first used */
    int64_t *slot_ids;     /* nslots; INT64_MIN when empty */
    qr_buf samples[ALERT_MAX_SAMPLES];
    uint32_t sample_next;
    uint32_t sample_count;
    uint32_t fresh_samples; /* captured since the last evaluation: at most ALERT_MAX_SAMPLES */
    /* state machine */
    uint8_t state;
    int64_t since_ns;    /* pending: since when WHEN holds; firing: when it started firing */
    bool fired_notified; /* the current firing was notified */
    int64_t last_fire_notify_ns; /* for COOLDOWN */
    bool has_value;
    double value;
    int64_t last_eval_ns;
    int64_t last_notify_ns;
    char last_error[200];
    bool dirty;
} alert_group;

typedef struct alert_rule alert_rule;
struct alert_rule {
    alert_rule *next;
    char tenant[QR_TENANT_MAX_BYTES + 1];
    char name[65];
    qr_arena arena;   /* the parsed statement, texts, channels */
    const char *text; /* canonical CREATE ALERT text */
    const char *select_text;
    const char *cond_text;
    const sql_alert *al;
    evf *filter;     /* the whole WHERE (rebuild, reference path) */
    cqb_where where; /* the WHERE by conjunct: shared per batch with the other rules */
    uint32_t agg_count;
    cq_agg_spec *aggs;
    const sql_expr **agg_calls; /* the call each spec came from (to match in WHEN) */
    uint32_t value_agg;         /* the SELECT's aggregate: the reported value */
    uint32_t group_count;
    const char **group_fields;
    int64_t window_ns, every_ns, slot_ns, for_ns, cooldown_ns;
    uint32_t nslots;
    int64_t muted_until_ns;
    notify_kv *labels;
    notify_kv *annotations;
    /* instances: open addressing on hash */
    alert_group **groups;
    uint32_t group_cap;
    uint32_t group_n;
    qr_buf keybuf;
    /* observer caches (under mu): the last event's slot and group */
    int64_t last_slot_start_ns, last_slot_id;
    uint32_t last_ring;
    alert_group *last_group; /* cleared whenever groups are freed */
    int64_t next_eval_ns;
    int64_t last_eval_ns;
    bool dirty;
};

/* ---- alert_sql.c --------------------------------------------------------------------------- */

/* Checks and compiles a CREATE ALERT statement into a new rule (not yet registered). text is
 * the statement text; snap (may be NULL) supplies the tenant's field names for the unknown
 * field check. The rule's arena holds a reparse of the canonical text. */
int alert_rule_compile(const char *tenant, const char *text, db_snapshot *snap, alert_rule **out,
                       qr_diag *d);
void alert_rule_free(alert_rule *r);
/* Frees one group instance of r (its slot states, samples, label values). */
void alert_group_free(const alert_rule *r, alert_group *g);
/* Evaluates WHEN with the merged aggregate values (vals[agg_idx], has[agg_idx]):
 * 1 true, 0 false or NULL. */
int alert_when_eval(const alert_rule *r, const double *vals, const bool *has);
bool alert_name_ok(const char *name);

/* result building */
int alert_result_columns(exec_result *r, uint32_t n, const char *const *names,
                         const uint8_t *types);
/* Appends one row of n cells (copied; strings copied into r->arena). */
int alert_result_row(exec_result *r, const exec_value *cells);

#endif

/* cq_batch — one acknowledged batch seen by many continuous queries (rollups and alert rules,
 * DESIGN.md §5): what each definition would otherwise compute per event is computed once per
 * batch and shared by every definition of the batch, so the per-batch cost grows with the
 * distinct predicates, not with the number of definitions.
 *
 * A definition's WHERE is split at its top-level AND into conjuncts, each compiled alone and
 * keyed by its canonical text (sql_print_expr). Per batch, each distinct conjunct is evaluated
 * once into a bitmap over the batch's events: once per label class (equal service, host and
 * level) when it reads only those labels, else once per event. A definition's events are the
 * AND of its conjuncts' bitmaps. A WHERE is TRUE exactly when each of its top-level conjuncts
 * is TRUE (SQL three-valued AND), so the selection equals evf_match of the whole WHERE event by
 * event. Column values read by aggregates are looked up once per batch and column, as
 * cq_agg_event_value reads them.
 *
 * Ownership: cqb_where_compile fills *out (cqb_where_fini frees it; a zeroed cqb_where is
 * valid and empty); its filters point into the statement, whose arena must outlive it.
 * cqb_batch_new allocates per-batch scratch reused across batches (cqb_batch_free; NULL ok).
 * Thread safety: a cqb_batch is used by one thread at a time; evaluating a conjunct runs its
 * filter, so the caller holds whatever guards the where it passes (one thread per filter).
 * Errors: QR_ENOMEM; cqb_where_compile also QR_ESYNTAX from evf_compile_where. */
#ifndef QR_CQ_BATCH_H
#define QR_CQ_BATCH_H

#include "common/qr_err.h"
#include "engine/engine.h"
#include "engine/evfilter.h"
#include "sql/query.h"
#include "storage/event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cqb_conj {
    uint64_t key;     /* xxh3 of text */
    char *text;       /* canonical text (malloc) */
    evf *filter;      /* the conjunct alone */
    bool labels_only; /* reads only service, host and level */
    bool reads_host;
} cqb_conj;

typedef struct cqb_where {
    uint32_t count; /* 0: every event */
    cqb_conj *conj;
} cqb_where;

/* where may be NULL (every event). text: the statement the positions point into. */
int cqb_where_compile(const char *text, const sql_expr *where, cqb_where *out, qr_diag *d);
void cqb_where_fini(cqb_where *w);

typedef struct cqb_batch cqb_batch;

cqb_batch *cqb_batch_new(void);
void cqb_batch_free(cqb_batch *x);
/* Starts a batch: forgets what was computed for the previous one. b must stay valid and
 * unchanged until the next begin. */
void cqb_batch_begin(cqb_batch *x, const qr_batch *b);
/* The events of the batch matching every conjunct of w, as ascending indexes into
 * b->events; valid until the next select or begin. 0 or QR_ENOMEM. */
int cqb_batch_select(cqb_batch *x, const cqb_where *w, const uint32_t **rows, size_t *n);
/* The label class of every event and the number of classes: equal (service, level) ⇔ equal
 * class, or equal (service, host, level) with with_host; NULL when the batch has more than
 * CQB_CLASS_MAX classes (or no memory). */
#define CQB_CLASS_MAX 4096
const uint16_t *cqb_batch_classes(cqb_batch *x, bool with_host, uint32_t *count);
/* The batch's events grouped by (label class, bucket of interval_ns): group g holds class
 * cls[g], bucket start t[g] (floor of ts to a multiple of interval_ns) and the events
 * rows[off[g] .. off[g + 1]) in batch order; groups come in the order of their first event.
 * Computed once per batch, class set and interval. Valid until the next begin. */
typedef struct cqb_groups {
    size_t n;
    const uint16_t *cls;
    const int64_t *t;
    const uint32_t *off; /* n + 1 */
    const uint32_t *rows;
} cqb_groups;
/* QR_ENOMEM, or QR_ELIMIT when the batch has no classes (too many). */
int cqb_batch_groups(cqb_batch *x, bool with_host, int64_t interval_ns, cqb_groups *out);
/* Whether w can be decided per class of that class set (every conjunct reads only labels, and
 * host only when with_host). */
bool cqb_where_by_class(const cqb_where *w, bool with_host);
/* For such a w: pass[c] = 1 when the events of class c match w (0 or QR_ENOMEM / QR_ELIMIT). */
int cqb_batch_class_pass(cqb_batch *x, const cqb_where *w, bool with_host, uint8_t *pass);
/* The value of column name for every event (cq_agg_event_value), computed once per batch and
 * name; NULL when out of memory. */
const exec_value *cqb_batch_column(cqb_batch *x, const char *name);

#endif

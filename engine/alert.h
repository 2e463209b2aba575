/* alert — alert rules: continuous queries over the ingest stream that notify (DESIGN.md §5,
 * docs/alerts.md).
 *
 * A rule (CREATE ALERT) is a compiled filter (engine/evfilter.h), one or more mergeable
 * aggregates (engine/cq_agg.h), optional GROUP BY labels, WINDOW/EVERY, a WHEN condition over
 * the aggregates, FOR, COOLDOWN, LABELS, ANNOTATIONS and notification channels.
 *
 * Data path: the manager is a db observer (storage/db.h). Each acknowledged batch passes every
 * rule of its tenant: matching events update their group's state in a ring of time slots
 * (slot width gcd(WINDOW, EVERY), by event ts); the observer allocates only when a group or
 * a slot's aggregate state appears for the first time, never blocks on I/O and never waits
 * for the notifier. Evaluation merges the slots inside [now - WINDOW, now] and applies WHEN.
 *
 * Evaluation: a thread evaluates each rule every EVERY (aligned to EVERY), and promptly after a
 * batch changed one of its groups (at most every min(EVERY, 200 ms)). Per instance (rule ×
 * group) the state machine is ok → pending (WHEN true, waiting FOR) → firing → resolved (→ ok);
 * FOR 0 goes ok → firing directly. Notifications go out on firing and on resolved (resolved
 * only when the firing was notified); COOLDOWN suppresses a firing notification within
 * COOLDOWN of the previous one; MUTE suppresses notifications until it expires (an instance
 * still firing when the mute or cooldown ends is notified then).
 *
 * Files under <dir>/cq/<tenant>/alerts/:
 *   <name>.def    the definition: "quarry-alert 1\n" "muted_until <ns>\n" then the
 *                 canonical CREATE ALERT text (written atomically)
 *   history.log   one JSON object per state change, appended and fsync'd:
 *                 {"ts","alert","group","from_state","to_state","value","notified","error"}
 *   outbox/       notifications not yet delivered (engine/notify.h)
 * Restart: definitions are reloaded, each instance's state is restored from the last history
 * record of (alert, group), and the window state is rebuilt from the stored events of the last
 * WINDOW through db_snapshot_open_sync (no gap, no double count), so a restart neither fires
 * twice nor loses a notification (undelivered ones are in the outbox).
 *
 * Ownership: alert_mgr_open/alert_mgr_close (close before db_close). Thread safety: every
 * function may be called from any thread. Errors: 0 or QR_E*; statement errors are
 * QR_ESYNTAX/QR_EINVAL/QR_EEXIST/QR_ENOTFOUND with diag "line L, column C: ..." pointing into
 * the statement text; QR_EIO with the path. */
#ifndef QR_ALERT_H
#define QR_ALERT_H

#include "common/qr_err.h"
#include "engine/engine.h"
#include "engine/notify.h"
#include "sql/query.h"
#include "storage/db.h"

#include <stdbool.h>
#include <stdint.h>

#define ALERT_MAX_RULES 1000   /* per process */
#define ALERT_MAX_GROUPS 10000 /* instances per rule; events of more groups are dropped */
#define ALERT_MAX_SLOTS 4096   /* WINDOW / gcd(WINDOW, EVERY) + 2 */
#define ALERT_MAX_SAMPLES 5    /* matching events kept per instance for payloads */
#define ALERT_HISTORY_MAX_BYTES (64u << 20) /* history read back at open / alert_events */

typedef struct alert_mgr alert_mgr;

typedef struct alert_mgr_opts {
    notify_opts notify;   /* sender settings */
    const char *base_url; /* for query links in payloads, e.g. "http://127.0.0.1:7070" */
    bool no_thread;       /* tests: no evaluator thread; call alert_mgr_tick */
    bool per_event;       /* tests: every event through each rule's own filter (the reference
                           * path), not the per-batch shared evaluation */
    /* tests: the clock (wall time, ns); NULL = qr_now_ns */
    int64_t (*clock)(void *ctx);
    void *clock_ctx;
} alert_mgr_opts;

/* Opens the manager for db: loads every tenant's definitions, restores states, rebuilds
 * windows, re-queues the outboxes, registers the observer and starts the threads. Call after
 * db_open and before the first ingest. */
int alert_mgr_open(db_t *db, const alert_mgr_opts *opts, alert_mgr **out, qr_diag *d);
/* Stops the threads (undelivered notifications stay in the outbox). NULL is a no-op. */
void alert_mgr_close(alert_mgr *m);

/* True when the statement is one of ours: CREATE ALERT, DROP ALERT, MUTE, UNMUTE, SHOW ALERTS,
 * DESCRIBE of an existing alert, SELECT ... FROM alert_events. */
bool alert_stmt_is_ours(alert_mgr *m, const char *tenant, const sql_stmt *stmt);
/* Runs one of those statements for tenant; text is the statement text the positions point
 * into. Fills r (r->arena is initialized by the caller; columns and rows go into it). */
int alert_mgr_exec(alert_mgr *m, const char *tenant, const char *text, const sql_stmt *stmt,
                   exec_result *r, qr_diag *d);

/* CREATE ALERT text that replaces the alert name (or creates it): the new definition is
 * checked first, and the old one stays when it is rejected. Instances keep their states. */
int alert_mgr_replace(alert_mgr *m, const char *tenant, const char *name, const char *text,
                      exec_result *r, qr_diag *d);

/* Evaluates every rule due at now_ns (or every rule with force) in the calling thread and
 * performs the resulting history appends and notifications. The evaluator thread calls it;
 * tests with no_thread call it with an injected clock. */
void alert_mgr_tick(alert_mgr *m, int64_t now_ns, bool force);

typedef struct alert_mgr_stats {
    uint64_t rules;
    uint64_t instances;
    uint64_t pending;
    uint64_t firing;
    uint64_t evaluations;
    uint64_t transitions;
    uint64_t events_matched;
    uint64_t events_dropped; /* late (slot already reused) or over ALERT_MAX_GROUPS */
    notify_stats notify;
} alert_mgr_stats;
void alert_mgr_stats_get(alert_mgr *m, alert_mgr_stats *out);

/* Prometheus text of the instances not ok: ALERTS{alertname="...",alertstate="firing",
 * <group labels>,<rule labels>} 1 — like Prometheus' ALERTS series. Appends to out. */
int alert_mgr_state_prometheus(alert_mgr *m, qr_buf *out);
/* true when tenant has an alert of that name. */
bool alert_mgr_has(alert_mgr *m, const char *tenant, const char *name);
/* Waits until the notifier has nothing queued (tests, benchmarks). */
bool alert_mgr_wait_idle(alert_mgr *m, uint32_t timeout_ms);

#endif

/* alert_routes — the /v1/alerts REST routes turned into alert statements (docs/http.md):
 *
 *   GET    /v1/alerts                 SHOW ALERTS
 *   POST   /v1/alerts                 body: CREATE ALERT text, or {"sql": "CREATE ALERT ..."}
 *   GET    /v1/alerts/state           Prometheus text of the pending/firing instances
 *   GET    /v1/alerts/{name}          DESCRIBE name
 *   PUT    /v1/alerts/{name}          body as POST: replaces (or creates) the alert
 *   DELETE /v1/alerts/{name}          DROP ALERT name
 *   POST   /v1/alerts/{name}/mute     body {"for": "1h"}: MUTE ALERT name FOR 1h
 *   POST   /v1/alerts/{name}/unmute   UNMUTE ALERT name
 *   GET    /v1/alerts/history         SELECT * FROM alert_events ORDER BY ts DESC LIMIT 1000
 *
 * Names from the path must be alert names ([A-Za-z0-9_-], 1-64 bytes) and are written into
 * the statement as quoted identifiers; durations are parsed and printed back, so no request
 * text reaches SQL unchecked except a CREATE ALERT body, which is the statement itself.
 * Errors: QR_ENOTFOUND (no such route: 404), QR_EINVAL with diag (bad name, body or method:
 * 400/405 — method_ok says which), QR_ENOMEM. Reentrant. */
#ifndef QR_ALERT_ROUTES_H
#define QR_ALERT_ROUTES_H

#include "common/qr_buf.h"
#include "common/qr_err.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum alert_route_kind {
    ALERT_ROUTE_SQL,   /* run sql with exec_run */
    ALERT_ROUTE_STATE, /* alert_mgr_state_prometheus */
    ALERT_ROUTE_PUT,   /* alert_mgr_replace(name, sql) */
} alert_route_kind;

typedef struct alert_route {
    alert_route_kind kind;
    qr_buf sql; /* NUL-terminated */
    char name[65];
    int ok_status; /* 200, or 201 for a creation */
    bool method_ok;
} alert_route;

/* true for /v1/alerts and /v1/alerts/... */
bool alert_route_match(const char *path);
void alert_route_init(alert_route *r);
void alert_route_fini(alert_route *r);
int alert_route_build(const char *method, const char *path, const char *body, size_t body_len,
                      alert_route *r, qr_diag *d);

#endif

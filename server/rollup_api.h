/* rollup_api — the /v1/rollups routes (docs/http.md, "Rollups") over the engine's rollup
 * manager (engine/rollup.h):
 *   GET    /v1/rollups          → 200 {"rollups": [<rollup>...]}
 *   POST   /v1/rollups          {"sql": "CREATE ROLLUP ..."} → 201 <rollup> (after backfill)
 *   GET    /v1/rollups/{name}   → 200 <rollup> with "columns"
 *   DELETE /v1/rollups/{name}   → 200 {"dropped": "name"}
 * Every error is {"error": {"code", "message"}} (definition errors add "line", "column",
 * "offset" into the statement); codes: invalid_request 400, syntax 400, not_found 404,
 * already_exists 409, method_not_allowed 405, rollups_unavailable 503, internal 500.
 * Runs on a worker thread (it may backfill); reentrant. */
#ifndef QR_ROLLUP_API_H
#define QR_ROLLUP_API_H

#include "common/qr_buf.h"
#include "engine/rollup.h"
#include "storage/db.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rollup_api_reply {
    int status;
    char allow[32]; /* 405: the methods the path accepts */
    qr_buf body;    /* JSON; the caller initializes and frees it */
} rollup_api_reply;

/* True when path is /v1/rollups or /v1/rollups/{name}. */
bool rollup_api_path(const char *path);
/* Whether the method needs the admin scope (POST, DELETE) rather than query (GET). */
bool rollup_api_is_admin(const char *method);
/* Handles one request; m may be NULL (503). Always fills out (status and body). */
void rollup_api_handle(db_t *db, rollup_mgr *m, const char *tenant, const char *method,
                       const char *path, const uint8_t *body, size_t len, rollup_api_reply *out);

#endif

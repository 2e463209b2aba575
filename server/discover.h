/* discover — GET /v1/services and GET /v1/fields, answered from a snapshot's part metadata
 * (dictionaries, per-block service × level counts, field schemas): no rows are read and no
 * query engine is involved, so both stay fast whatever the data size.
 *
 * services: per service name over every part: rows, rows per level, first/last seen (min and
 * max ts of the blocks holding it: block precision, not row precision).
 * fields: the built-in columns, then every (field key, type) with the rows that have it.
 * Both append one JSON object to out (format in docs/http.md).
 * Thread safety: any thread (the snapshot is private). Errors: QR_ENOMEM, QR_ECORRUPT (a part
 * failed to give its block metadata; diag says which). */
#ifndef QR_DISCOVER_H
#define QR_DISCOVER_H

#include "common/qr_buf.h"
#include "common/qr_err.h"
#include "storage/db.h"

int discover_services_json(db_t *db, const char *tenant, qr_buf *out, qr_diag *d);
int discover_fields_json(db_t *db, const char *tenant, qr_buf *out, qr_diag *d);

#endif

/* repl — the interactive shell (`quarry`, `quarry repl`): libedit line editing with persistent
 * history and tab completion (keywords, functions, fields, services, backslash commands),
 * multi-line statements ending with ';', results as aligned tables fitted to the terminal
 * (long values cut with "…"; \x for one record per block), \format, \timing, \explain,
 * \tail, \import, \help; errors with a caret under their position; Ctrl-C cancels the running
 * query or \tail, not the shell.
 * Remote mode (`--connect URL [--key K]`, key also from QUARRY_KEY; or, without --data and
 * --connect, when DIR/server.addr of ./quarry-data names a server answering /healthz):
 * statements go to POST /v1/query (JSON parsed back into rows for the same rendering; server
 * errors print with the caret), \tail reads GET /v1/tail (SSE) until Ctrl-C ({...} as query=,
 * other text as q=), completion words come from /v1/fields and /v1/services, \import posts
 * NDJSON batches to /v1/ingest/ndjson. A remote query is not canceled by Ctrl-C (the server's
 * deadline bounds it); Ctrl-C at once ends \tail.
 * repl_render_table is exposed for tests. Not thread-safe: one REPL per process. */
#ifndef QR_REPL_H
#define QR_REPL_H

#include "common/qr_buf.h"
#include "engine/engine.h"

#include <stdbool.h>
#include <stddef.h>

/* `quarry repl [--data DIR] [--tenant T] | --connect URL [--key K]`; also `quarry` alone. */
int cli_repl(int argc, char **argv);

/* Renders r as an aligned table no wider than width columns (expanded: one "column | value"
 * block per row). Appends to out. */
void repl_render_table(const exec_result *r, size_t width, bool expanded, qr_buf *out);

#endif

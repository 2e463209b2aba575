/* repl — the interactive shell (`quarry`, `quarry repl`): libedit line editing with persistent
 * history and tab completion (keywords, functions, fields, services, backslash commands),
 * multi-line statements ending with ';', results as aligned tables fitted to the terminal
 * (long values cut with "…"; \x for one record per block), \format, \timing, \explain,
 * \tail, \import, \help; errors with a caret under their position; Ctrl-C cancels the running
 * query or \tail, not the shell.
 * repl_render_table is exposed for tests. Not thread-safe: one REPL per process. */
#ifndef QR_REPL_H
#define QR_REPL_H

#include "common/qr_buf.h"
#include "engine/engine.h"

#include <stdbool.h>
#include <stddef.h>

/* `quarry repl [--data DIR] [--tenant T]`; also `quarry` with no arguments. */
int cli_repl(int argc, char **argv);

/* Renders r as an aligned table no wider than width columns (expanded: one "column | value"
 * block per row). Appends to out. */
void repl_render_table(const exec_result *r, size_t width, bool expanded, qr_buf *out);

#endif

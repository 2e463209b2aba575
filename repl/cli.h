/* cli — the `quarry` subcommands (one file each) and their shared helpers.
 * Each cli_* function takes argc/argv after the subcommand name and returns the exit status:
 * 0 ok, 1 failure (the subcommand says what), 2 usage error. Messages go to stderr. */
#ifndef QR_CLI_H
#define QR_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/rollup.h"
#include "storage/db.h"

int cli_gen(int argc, char **argv);
int cli_ingest(int argc, char **argv);
int cli_check(int argc, char **argv);
int cli_compact(int argc, char **argv);
int cli_export(int argc, char **argv);
int cli_query(int argc, char **argv);
int cli_serve(int argc, char **argv);

/* "--name value" and "--name=value" parsing: returns the value or NULL and advances *idx. */
const char *cli_opt_value(int argc, char **argv, int *idx, const char *name);
bool cli_parse_u64(const char *s, uint64_t *out);
/* Prints the line `line` of text and a caret under `column` (1-based, UTF-8 characters) —
 * how every positioned query error is shown. Nothing when line or column is not positive. */
void cli_print_caret(FILE *f, const char *text, int32_t line, int32_t column);
/* Opens the alert manager of an open data directory (engine/alert.h); on failure prints why
 * to stderr and returns NULL (the command goes on without alerts). */
struct db;
struct alert_mgr;
struct alert_mgr *cli_alerts_open(struct db *db, const char *who);
/* Opens the rollups of an open data directory (right after db_open; rollup_mgr_close before
 * db_close). On failure prints a warning and returns NULL: the process runs without them
 * (a later open rebuilds what it missed from the stored events). */
rollup_mgr *cli_rollups_open(db_t *db, bool no_thread);
/* 1234567 → "1,234,567" */
const char *cli_group_digits(uint64_t v, char *buf, size_t cap);

#endif

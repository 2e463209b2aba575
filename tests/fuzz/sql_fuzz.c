/* sql_fuzz — sql_parse on arbitrary bytes.
 *
 * Properties checked on every input: no crash, no leak (everything lives in one arena), the
 * result is 0, QR_ESYNTAX or QR_ELIMIT; an error carries a position inside the text; and a
 * parsed statement prints canonically: its printed text parses again and prints the same. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qr_arena.h"
#include "common/qr_buf.h"
#include "common/qr_err.h"
#include "sql/query.h"

static void fuzz_fail(const char *what, const qr_buf *a, const qr_buf *b)
{
    fprintf(stderr, "sql_fuzz: %s\n", what);
    if (a) fprintf(stderr, "  first:  %.*s\n", (int)a->len, (const char *)a->data);
    if (b) fprintf(stderr, "  second: %.*s\n", (int)b->len, (const char *)b->data);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qr_arena arena;
    qr_arena_init(&arena, 4096, 0);
    qr_diag d;
    qr_diag_init(&d);
    sql_stmt *stmt = NULL;
    int rc = sql_parse((const char *)data, size, &arena, &stmt, &d);
    if (rc != 0 && rc != QR_ESYNTAX && rc != QR_ELIMIT) fuzz_fail("unexpected error code", 0, 0);
    if (rc != 0 &&
        (d.code != rc || d.line < 1 || d.column < 1 || d.offset < 0 || (size_t)d.offset > size))
        fuzz_fail("error without a position inside the text", 0, 0);
    if (rc == 0) {
        qr_buf first, second;
        qr_buf_init(&first);
        qr_buf_init(&second);
        if (sql_print(stmt, &first) != 0) fuzz_fail("print failed", 0, 0);
        qr_arena again;
        qr_arena_init(&again, 4096, 0);
        sql_stmt *stmt2 = NULL;
        qr_diag_init(&d);
        int rc2 = sql_parse((const char *)first.data, first.len, &again, &stmt2, &d);
        /* printing may lengthen text (quotes, 0.5 for .5): only a full-size input may not fit */
        if (rc2 != 0 && !(rc2 == QR_ELIMIT && first.len > SQL_MAX_TEXT_BYTES)) {
            fprintf(stderr, "reparse error: %s\n", d.msg);
            fuzz_fail("printed text does not parse", &first, 0);
        }
        if (rc2 == 0) {
            if (sql_print(stmt2, &second) != 0) fuzz_fail("print failed", 0, 0);
            if (first.len != second.len || memcmp(first.data, second.data, first.len) != 0)
                fuzz_fail("printer is not canonical", &first, &second);
        }
        qr_arena_fini(&again);
        qr_buf_fini(&first);
        qr_buf_fini(&second);
    }
    qr_arena_fini(&arena);
    return 0;
}

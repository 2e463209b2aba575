/* qr_input — reads lines from a file, stdin ("-"), or a .gz / .zst file (by extension).
 *
 * Lines are split on '\n' (a trailing '\r' is dropped); the last line needs no newline.
 * A line longer than max_line_bytes is reported once as too long (qr_input_next returns
 * QR_ELIMIT for it, with its line number) and skipped, so one bad line never stops a load.
 * Ownership: qr_input_open/qr_input_close. Line pointers are valid until the next call.
 * Thread safety: one reader per thread. Errors: QR_EIO, QR_ECORRUPT (bad compressed data),
 * QR_ELIMIT (line too long), QR_ENOMEM. */
#ifndef QR_INPUT_H
#define QR_INPUT_H

#include "common/qr_err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct qr_input qr_input;

int qr_input_open(const char *path, size_t max_line_bytes, qr_input **out, qr_diag *d);
void qr_input_close(qr_input *in);
/* Returns 1 with the next line, 0 at the end, or a negative error. *line_no is 1-based. */
int qr_input_next(qr_input *in, const char **line, size_t *len, uint64_t *line_no, qr_diag *d);
/* Compressed/raw bytes consumed from the file so far, and its size if known (else 0). */
uint64_t qr_input_bytes_read(const qr_input *in);
uint64_t qr_input_file_bytes(const qr_input *in);
/* Uncompressed bytes delivered (lines + separators). */
uint64_t qr_input_bytes_decoded(const qr_input *in);

#endif

/* qr_jsonw — writing JSON text into a qr_buf: strings escaped per RFC 8259 (control bytes as
 * \uXXXX, invalid UTF-8 bytes replaced with U+FFFD so the output is always valid JSON),
 * numbers that round-trip (doubles with 17 significant digits; NaN/Inf as null).
 * Reentrant. Out-of-memory is sticky in the buffer (qr_buf_ok). */
#ifndef QR_JSONW_H
#define QR_JSONW_H

#include "common/qr_buf.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

void qr_jsonw_str(qr_buf *b, const char *s, size_t len);
void qr_jsonw_cstr(qr_buf *b, const char *s);
void qr_jsonw_int(qr_buf *b, int64_t v);
void qr_jsonw_uint(qr_buf *b, uint64_t v);
void qr_jsonw_double(qr_buf *b, double v);
static inline void qr_jsonw_raw(qr_buf *b, const char *s) { qr_buf_append(b, s, strlen(s)); }

#endif

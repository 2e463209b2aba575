#include "common/qr_jsonw.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* Length of a valid UTF-8 sequence starting at p (1-4), or 0 if invalid. */
static size_t utf8_valid_len(const unsigned char *p, size_t left)
{
    unsigned char c = p[0];
    if (c < 0x80) return 1;
    size_t n;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0)
        n = 2, cp = c & 0x1f;
    else if ((c & 0xf0) == 0xe0)
        n = 3, cp = c & 0x0f;
    else if ((c & 0xf8) == 0xf0)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if (n > left) return 0;
    for (size_t idx = 1; idx < n; idx++) {
        if ((p[idx] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[idx] & 0x3f);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void qr_jsonw_str(qr_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    if (!qr_buf_reserve(b, len + 2)) return;
    qr_buf_u8(b, '"');
    size_t run = 0; /* bytes copied verbatim, flushed in one append */
    size_t pos = 0;
    while (pos < len) {
        unsigned char c = p[pos];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            run++;
            pos++;
            continue;
        }
        size_t n = c >= 0x80 ? utf8_valid_len(p + pos, len - pos) : 0;
        if (n) {
            run += n;
            pos += n;
            continue;
        }
        qr_buf_append(b, p + pos - run, run);
        run = 0;
        char esc[8];
        switch (c) {
        case '"':
            qr_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            qr_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            qr_buf_append(b, "\\n", 2);
            break;
        case '\r':
            qr_buf_append(b, "\\r", 2);
            break;
        case '\t':
            qr_buf_append(b, "\\t", 2);
            break;
        default:
            if (c < 0x20) {
                esc[0] = '\\', esc[1] = 'u', esc[2] = '0', esc[3] = '0';
                esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
                qr_buf_append(b, esc, 6);
            } else {
                qr_buf_append(b, "\xef\xbf\xbd", 3); /* invalid UTF-8 byte → U+FFFD */
            }
        }
        pos++;
    }
    qr_buf_append(b, p + pos - run, run);
    qr_buf_u8(b, '"');
}

void qr_jsonw_cstr(qr_buf *b, const char *s) { qr_jsonw_str(b, s, strlen(s)); }

void qr_jsonw_int(qr_buf *b, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    qr_buf_append(b, tmp, (size_t)n);
}

void qr_jsonw_uint(qr_buf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    qr_buf_append(b, tmp, (size_t)n);
}

void qr_jsonw_double(qr_buf *b, double v)
{
    if (!isfinite(v)) {
        qr_buf_append(b, "null", 4);
        return;
    }
    /* shortest of 15 / 17 significant digits that reads back as the same double */
    char tmp[40];
    int n = snprintf(tmp, sizeof tmp, "%.15g", v);
    if (strtod(tmp, NULL) != v) n = snprintf(tmp, sizeof tmp, "%.17g", v);
    /* keep a float looking like a float so it reads back as one */
    bool has_dot = false;
    for (int idx = 0; idx < n; idx++)
        if (tmp[idx] == '.' || tmp[idx] == 'e' || tmp[idx] == 'n' || tmp[idx] == 'i')
            has_dot = true;
    qr_buf_append(b, tmp, (size_t)n);
    if (!has_dot) qr_buf_append(b, ".0", 2);
}

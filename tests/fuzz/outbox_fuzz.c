/* Fuzz driver: arbitrary bytes as an alert outbox file (engine/notify.h) → notify_outbox_decode
 * returns 0 or QR_ECORRUPT (never crashes, never reads outside the input), and what decodes
 * encodes back to the same bytes. */
#include "engine/notify.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *ref, *url, *body;
    size_t ref_len, url_len, body_len;
    qr_diag d;
    qr_diag_init(&d);
    int rc = notify_outbox_decode(data, size, &ref, &ref_len, &url, &url_len, &body, &body_len, &d);
    if (rc != 0 && rc != QR_ECORRUPT) abort();
    if (rc != 0) return 0;
    /* ref and url are C strings in the encoder: only those without NUL round-trip */
    if (memchr(ref, 0, ref_len) || memchr(url, 0, url_len)) return 0;
    char *r = strndup(ref, ref_len), *u = strndup(url, url_len);
    qr_buf back;
    qr_buf_init(&back);
    if (!r || !u || notify_outbox_encode(r, u, body, body_len, &back) != 0) abort();
    if (back.len != size || memcmp(back.data, data, size) != 0) abort();
    qr_buf_fini(&back);
    free(r);
    free(u);
    return 0;
}

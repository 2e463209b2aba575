/* hclient — a tiny blocking HTTP/1.1 client for `quarry query --connect` (no libcurl).
 *
 * One request per connection (Connection: close): connects to http://HOST:PORT (IPv4, IPv6 in
 * brackets, or a name through getaddrinfo), sends the request with Content-Length, reads the
 * whole response (Content-Length, chunked, or until close), bounded by max_body bytes.
 * Plain http only. Errors: QR_EINVAL (bad URL), QR_EIO (connect/read/write failed, with diag),
 * QR_ECORRUPT (unparseable response), QR_ELIMIT (response over max_body), QR_ENOMEM.
 * Reentrant. */
#ifndef QR_HCLIENT_H
#define QR_HCLIENT_H

#include "common/qr_buf.h"
#include "common/qr_err.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hclient_response {
    int status;
    qr_buf headers; /* raw header lines, NUL-terminated */
    qr_buf body;
} hclient_response;

void hclient_response_init(hclient_response *r);
void hclient_response_fini(hclient_response *r);
/* Value of header `name` (case-insensitive) copied into out; false when absent. */
int hclient_header(const hclient_response *r, const char *name, char *out, size_t cap);

/* extra_headers: "" or lines each ending in "\r\n". timeout_ms: per socket operation. */
int hclient_request(const char *url, const char *method, const char *path,
                    const char *extra_headers, const void *body, size_t body_len,
                    uint32_t timeout_ms, size_t max_body, hclient_response *out, qr_diag *d);
/* The same, stopping with QR_ECANCELED (diag "request canceled") once *cancel is non-zero
 * (e.g. set by a SIGINT handler; looked at every 100 ms and after each interrupted wait).
 * The connection is closed then, which cancels a query the server runs for it. */
int hclient_request_cancelable(const char *url, const char *method, const char *path,
                               const char *extra_headers, const void *body, size_t body_len,
                               uint32_t timeout_ms, size_t max_body,
                               const volatile sig_atomic_t *cancel, hclient_response *out,
                               qr_diag *d);

#endif

/* hclient — blocking HTTP/1.1 requests over a socket (contract in hclient.h). */
#include "server/hclient.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

void hclient_response_init(hclient_response *r)
{
    r->status = 0;
    qr_buf_init(&r->headers);
    qr_buf_init(&r->body);
}

void hclient_response_fini(hclient_response *r)
{
    qr_buf_fini(&r->headers);
    qr_buf_fini(&r->body);
}

int hclient_header(const hclient_response *r, const char *name, char *out, size_t cap)
{
    if (!r->headers.len) return 0;
    const char *p = (const char *)r->headers.data;
    size_t nlen = strlen(name);
    while (*p) {
        const char *eol = strstr(p, "\r\n");
        if (!eol) eol = p + strlen(p);
        if ((size_t)(eol - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            while (v < eol && *v == ' ') v++;
            size_t n = (size_t)(eol - v) < cap - 1 ? (size_t)(eol - v) : cap - 1;
            memcpy(out, v, n);
            out[n] = 0;
            return 1;
        }
        p = *eol ? eol + 2 : eol;
    }
    return 0;
}

static int url_split(const char *url, char *host, size_t hcap, char *port, size_t pcap)
{
    if (strncmp(url, "http://", 7) != 0) return QR_EINVAL;
    const char *h = url + 7;
    const char *end = h + strcspn(h, "/");
    const char *colon;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb) return QR_EINVAL;
        if ((size_t)(rb - h - 1) >= hcap) return QR_EINVAL;
        memcpy(host, h + 1, (size_t)(rb - h - 1));
        host[rb - h - 1] = 0;
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        const char *he = colon ? colon : end;
        if ((size_t)(he - h) >= hcap || he == h) return QR_EINVAL;
        memcpy(host, h, (size_t)(he - h));
        host[he - h] = 0;
    }
    if (colon) {
        if ((size_t)(end - colon - 1) >= pcap || end == colon + 1) return QR_EINVAL;
        memcpy(port, colon + 1, (size_t)(end - colon - 1));
        port[end - colon - 1] = 0;
    } else {
        snprintf(port, pcap, "80");
    }
    return 0;
}

#define CANCEL_POLL_MS                                                                             \
    100 /* how often a wait looks at the cancel flag (a signal may come                            \
           between the look and poll) */

/* 0 when fd is ready, -1 on timeout or error, -2 once *cancel is non-zero. */
static int wait_fd(int fd, short ev, uint32_t timeout_ms, const volatile sig_atomic_t *cancel)
{
    struct pollfd p = {fd, ev, 0};
    int64_t left_ms = timeout_ms ? (int64_t)timeout_ms : -1;
    for (;;) {
        if (cancel && *cancel) return -2;
        int slice = left_ms < 0 ? -1 : (int)left_ms;
        if (cancel && (slice < 0 || slice > CANCEL_POLL_MS)) slice = CANCEL_POLL_MS;
        int n = poll(&p, 1, slice);
        if (n > 0) return 0;
        if (n < 0 && errno != EINTR) return -1;
        if (n == 0 && left_ms >= 0) {
            left_ms -= slice;
            if (left_ms <= 0) return -1;
        }
    }
}

static int send_all(int fd, const char *p, size_t n, uint32_t timeout_ms,
                    const volatile sig_atomic_t *cancel)
{
    while (n) {
        int wr = wait_fd(fd, POLLOUT, timeout_ms, cancel);
        if (wr) return wr;
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* De-chunks raw[0..n) into out. */
static int dechunk(const char *raw, size_t n, qr_buf *out)
{
    size_t pos = 0;
    for (;;) {
        char *end = NULL;
        if (pos >= n) return QR_ECORRUPT;
        unsigned long long sz = strtoull(raw + pos, &end, 16);
        const char *eol = memmem(raw + pos, n - pos, "\r\n", 2);
        if (!eol || end == raw + pos) return QR_ECORRUPT;
        pos = (size_t)(eol - raw) + 2;
        if (sz == 0) return 0;
        if (sz > n - pos || n - pos - sz < 2) return QR_ECORRUPT;
        qr_buf_append(out, raw + pos, (size_t)sz);
        pos += (size_t)sz + 2;
    }
}

int hclient_request(const char *url, const char *method, const char *path,
                    const char *extra_headers, const void *body, size_t body_len,
                    uint32_t timeout_ms, size_t max_body, hclient_response *out, qr_diag *d)
{
    return hclient_request_cancelable(url, method, path, extra_headers, body, body_len, timeout_ms,
                                      max_body, NULL, out, d);
}

int hclient_request_cancelable(const char *url, const char *method, const char *path,
                               const char *extra_headers, const void *body, size_t body_len,
                               uint32_t timeout_ms, size_t max_body,
                               const volatile sig_atomic_t *cancel, hclient_response *out,
                               qr_diag *d)
{
    char host[256], port[16];
    if (url_split(url, host, sizeof host, port, sizeof port))
        return qr_diag_set(d, QR_EINVAL, "bad URL \"%s\": expected http://HOST:PORT", url);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int gr = getaddrinfo(host, port, &hints, &ai);
    if (gr) return qr_diag_set(d, QR_EIO, "cannot resolve %s: %s", host, gai_strerror(gr));
    int fd = -1, err = 0;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return qr_diag_set(d, QR_EIO, "cannot connect to %s: %s", url,
                           strerror(err ? err : ECONNREFUSED));
    qr_buf req, raw;
    qr_buf_init(&req);
    qr_buf_init(&raw);
    char head[1024];
    int hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n"
                      "Content-Length: %zu\r\nUser-Agent: quarry\r\n%s\r\n",
                      method, path, host, port, body_len, extra_headers ? extra_headers : "");
    int rc = 0;
    if (hn < 0 || (size_t)hn >= sizeof head) {
        rc = qr_diag_set(d, QR_EINVAL, "request head too long");
        goto out;
    }
    qr_buf_append(&req, head, (size_t)hn);
    if (body_len) qr_buf_append(&req, body, body_len);
    if (!qr_buf_ok(&req)) {
        rc = QR_ENOMEM;
        goto out;
    }
    int wr = send_all(fd, (const char *)req.data, req.len, timeout_ms, cancel);
    if (wr == -2) {
        rc = qr_diag_set(d, QR_ECANCELED, "request canceled");
        goto out;
    }
    if (wr) {
        rc = qr_diag_set(d, QR_EIO, "cannot send to %s: %s", url, strerror(errno));
        goto out;
    }
    for (;;) {
        wr = wait_fd(fd, POLLIN, timeout_ms, cancel);
        if (wr == -2) { /* closing the connection tells the server to stop */
            rc = qr_diag_set(d, QR_ECANCELED, "request canceled");
            goto out;
        }
        if (wr) {
            rc = qr_diag_set(d, QR_EIO, "no answer from %s within %u ms", url, timeout_ms);
            goto out;
        }
        uint8_t *p = qr_buf_extend(&raw, 65536);
        if (!p) {
            rc = QR_ENOMEM;
            goto out;
        }
        ssize_t n = recv(fd, p, 65536, 0);
        if (n < 0 && errno == EINTR) { /* not the end of the answer: wait again */
            raw.len -= 65536;
            continue;
        }
        if (n < 0) {
            rc = qr_diag_set(d, QR_EIO, "read from %s failed: %s", url, strerror(errno));
            goto out;
        }
        raw.len -= 65536 - (size_t)n;
        if (n == 0) break;
        if (raw.len > max_body + 65536) {
            rc = qr_diag_set(d, QR_ELIMIT, "the answer is over %zu bytes", max_body);
            goto out;
        }
    }
    const char *text = (const char *)raw.data;
    const char *hend = raw.len ? memmem(text, raw.len, "\r\n\r\n", 4) : NULL;
    int minor = 0;
    if (!hend || sscanf(text, "HTTP/1.%d %d", &minor, &out->status) != 2) {
        rc = qr_diag_set(d, QR_ECORRUPT, "not an HTTP answer from %s", url);
        goto out;
    }
    const char *first_eol = strstr(text, "\r\n");
    qr_buf_append(&out->headers, first_eol + 2, (size_t)(hend - first_eol));
    qr_buf_u8(&out->headers, 0);
    const char *b = hend + 4;
    size_t blen = raw.len - (size_t)(b - text);
    char te[64], cl[32];
    if (hclient_header(out, "transfer-encoding", te, sizeof te) && strcasestr(te, "chunked")) {
        if (dechunk(b, blen, &out->body)) {
            rc = qr_diag_set(d, QR_ECORRUPT, "bad chunked body from %s", url);
            goto out;
        }
    } else if (hclient_header(out, "content-length", cl, sizeof cl)) {
        unsigned long long want = strtoull(cl, NULL, 10);
        if (want > blen) {
            rc = qr_diag_set(d, QR_EIO, "the answer from %s was cut short", url);
            goto out;
        }
        qr_buf_append(&out->body, b, (size_t)want);
    } else {
        qr_buf_append(&out->body, b, blen);
    }
    if (!qr_buf_ok(&out->body) || !qr_buf_ok(&out->headers)) rc = QR_ENOMEM;
out:
    close(fd);
    qr_buf_fini(&req);
    qr_buf_fini(&raw);
    return rc;
}

/* http — an HTTP/1.1 server on a libuv loop: keep-alive, pipelining, bounded requests.
 *
 * Parsing is Debian's http-parser (libhttp-parser-dev; see server/README.md for why not re2c).
 * Each connection handles one request at a time: when a request is complete the parser is
 * paused until the handler has responded, then the bytes already read (a pipelined next
 * request) are parsed; meanwhile reading goes on only to notice the client leaving
 * (http_req.peer_closed) and stops at a bounded read-ahead (64 KiB). Responses therefore
 * leave in request order without any reordering queue, and a client that pipelines faster
 * than we answer is held back by TCP.
 *
 * A request goes through two hooks, both on the loop thread:
 *   head(ctx, req)  after the request line and headers. The handler may respond here (routing,
 *                   auth, quota, limits) without the body being read: the connection then
 *                   closes after the response when a body was announced (lingering briefly so
 *                   the client can read the answer), and stays open otherwise.
 *   body(ctx, req)  once the whole body is in req->body (de-chunked, still content-encoded).
 * The handler answers exactly once, now or later (e.g. after a worker thread), with
 * http_respond / http_respond_error or the http_stream_* trio, always on the loop thread.
 * Until then req stays valid even if the client disconnects (the answer is then dropped).
 *
 * Limits (http_limits): request line + headers over header_bytes → 431; a body over
 * body_bytes → 413 (an announced Content-Length is refused before any body byte is read; a
 * chunked body as soon as it passes the limit), connection closed; malformed → 400; every
 * error body is {"error":{"code":"...","message":"..."}}. `Expect: 100-continue` is answered
 * after the head hook let the request through. Idle connections close after idle_timeout_ms;
 * connections past max_connections are closed at accept.
 *
 * Ownership: http_server_new/http_server_free (free after the loop has run the close
 * callbacks: call http_server_close, run the loop until http_server_done). Thread safety:
 * everything on the loop thread only. Errors: QR_EIO (bind/listen, with diag), QR_ENOMEM,
 * QR_EINVAL (bad address). */
#ifndef QR_HTTP_H
#define QR_HTTP_H

#include "common/qr_buf.h"
#include "common/qr_err.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define HTTP_HEADERS_MAX 64

typedef struct http_limits {
    size_t header_bytes;      /* request line + headers; 0 = 16 KiB */
    size_t body_bytes;        /* body as sent (compressed or not); 0 = 32 MiB */
    uint32_t idle_timeout_ms; /* 0 = 60000 */
    uint32_t max_connections; /* 0 = 1024 */
} http_limits;

typedef struct http_server http_server;
typedef struct http_conn http_conn;

typedef struct http_header {
    const char *name; /* lower-cased, NUL-terminated */
    const char *value;
    size_t value_len;
} http_header;

typedef struct http_req {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* NUL-terminated, without the query */
    const char *query;  /* after '?', "" when none */
    http_header headers[HTTP_HEADERS_MAX];
    uint32_t header_count;
    uint64_t content_length; /* UINT64_MAX when not announced (chunked or none) */
    bool has_body;           /* Content-Length > 0 or chunked */
    int http_minor;          /* HTTP/1.<minor> */
    const uint8_t *body;     /* valid in the body hook and until the response */
    size_t body_len;
    uint64_t start_ns; /* monotonic, when the head was complete */
    void *user;        /* the handler's; e.g. the route */
    int user_route;    /* the handler's; e.g. a route index for metrics */
    int status;        /* set once a response starts */
    /* set (loop thread) to 1 when the client closed or reset its side of the connection while
     * this request was unanswered (also a half-close: its answer is still sent if the socket
     * takes it). Work nobody may wait for can poll it from any thread, e.g. as
     * exec_opts.cancel. */
    volatile sig_atomic_t peer_closed;
    /* internal */
    http_conn *conn;
    qr_buf store; /* url, header names and values */
    qr_buf body_buf;
    bool responded, streaming, keep_alive, wants_continue;
} http_req;

typedef struct http_handlers {
    void *ctx;
    void (*head)(void *ctx, http_req *req);
    void (*body)(void *ctx, http_req *req);
    /* called once per response, when its status line is written (metrics); may be NULL */
    void (*on_response)(void *ctx, http_req *req, int status);
} http_handlers;

/* Binds and listens on host:port ("127.0.0.1:7070", "[::1]:7070"; port 0 picks a free one). */
int http_server_new(uv_loop_t *loop, const char *listen_addr, const http_limits *limits,
                    const http_handlers *handlers, http_server **out, qr_diag *d);
/* The address actually bound, e.g. "127.0.0.1:43211". */
const char *http_server_addr(const http_server *s);
/* Stops accepting; idle connections close now, busy ones after their current response. */
void http_server_close(http_server *s);
/* Closes every connection now (second signal, shutdown deadline). */
void http_server_close_all(http_server *s);
/* true once closed and every connection handle is gone. */
bool http_server_done(const http_server *s);
uint64_t http_server_open_connections(const http_server *s);
uint64_t http_server_accepted_connections(const http_server *s);
void http_server_free(http_server *s);

/* Header value (name lower-case), NULL when absent; *len gets its length. */
const char *http_req_header(const http_req *req, const char *name, size_t *len);
/* Query parameter `name`, percent-decoded into out (NUL-terminated); false when absent. */
bool http_req_query_param(const http_req *req, const char *name, char *out, size_t cap);

/* Sends a complete response. extra_headers: "" or lines each ending in "\r\n". The body is
 * copied. Ends the request. */
void http_respond(http_req *req, int status, const char *content_type, const char *extra_headers,
                  const void *body, size_t body_len);
/* {"error":{"code":code,"message":message}} with extra members (extra_json: "" or
 * ",\"offset\":12" style text appended inside the error object). */
void http_respond_error(http_req *req, int status, const char *code, const char *message,
                        const char *extra_json, const char *extra_headers);
/* A chunked streaming response (HTTP/1.0 clients get a close-delimited body instead). */
void http_stream_begin(http_req *req, int status, const char *content_type,
                       const char *extra_headers);
/* Writes one chunk (copied). Returns false once the client is gone (stop producing). */
bool http_stream_write(http_req *req, const void *data, size_t len);
/* Bytes queued to the client and not yet written (for slow-consumer policies). */
size_t http_stream_pending_bytes(const http_req *req);
void http_stream_end(http_req *req);
/* After http_respond*: closes the connection once the response is written. Call before
 * responding. */
void http_req_close_after(http_req *req);

const char *http_status_text(int status);

#endif

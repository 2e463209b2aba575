/* http — HTTP/1.1 connections on libuv (contract in http.h).
 *
 * Per connection: read → conn_feed → http_parser_execute. Parser callbacks build the current
 * request; on_headers_complete runs the head hook (which may answer at once), on_body appends
 * to the body buffer under the limit, on_message_complete pauses the parser so that
 * conn_feed hands the request to the body hook and stops. Bytes read after the end of a
 * request stay in conn->pending until the response is out; then conn_feed resumes on them.
 *
 * Closing: conn_close_soon marks the connection; once every queued write is done the write
 * side is shut down and the connection lingers (reading and discarding at most
 * LINGER_BYTES for LINGER_MS) so a client still sending a refused body can read our answer
 * instead of getting a reset. */
#include "server/http.h"

#include "common/qr_jsonw.h"
#include "common/qr_time.h"

#include <ctype.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_BUF_BYTES (64 * 1024)
#define WRITE_BACKLOG_BYTES (4u * 1024 * 1024) /* stop parsing pipelined requests past this */
#define LINGER_MS 1000
#define LINGER_BYTES (256 * 1024)
#define READ_AHEAD_BYTES (64 * 1024) /* read while a request is handled, to see the client leave   \
                                      */

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool closing;
    bool listener_closed;
    http_limits lim;
    http_handlers h;
    char addr[80];
    http_conn *conns;
    uint64_t open;
    uint64_t accepted;
};

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    http_server *srv;
    http_conn *prev, *next;
    http_parser parser;
    http_req *req;  /* being parsed or handled; NULL between requests */
    qr_buf pending; /* bytes read but not yet parsed */
    size_t pending_off;
    size_t head_bytes;    /* request line + headers of the current request */
    size_t write_pending; /* bytes queued to uv_write and not yet written */
    int handles_open;
    bool in_feed;
    bool in_handler;    /* req handed to a hook that has not answered yet */
    bool head_answered; /* the head hook answered (set by req_finish) */
    bool req_ready;     /* on_message_complete seen; body hook due */
    bool close_after;   /* close once the current response is written */
    bool closing;       /* uv_close called */
    bool lingering;
    bool shut;
    bool reading;
    bool last_was_value;
    size_t linger_bytes;
    size_t hdr_name_off, hdr_value_off;
    size_t url_end; /* offset of the url terminator in req->store, 0 until set */
    char rbuf[READ_BUF_BYTES];
};

typedef struct write_req {
    uv_write_t w;
    http_conn *conn;
    size_t len;
    char data[];
} write_req;

static void conn_feed(http_conn *c);
static void conn_close(http_conn *c);
static void conn_close_now(http_conn *c);
static void conn_update_reading(http_conn *c);

/* ---- small helpers ---- */

/* http_parser_pause asserts when the parser is already in an error state: then it is stopped
 * anyway, and nothing is left to pause or resume. */
static void parser_pause(http_parser *p, int paused)
{
    enum http_errno err = HTTP_PARSER_ERRNO(p);
    if (err == HPE_OK || err == HPE_PAUSED) http_parser_pause(p, paused);
}

const char *http_status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 499:
        return "Client Closed Request";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

static void req_free(http_req *r)
{
    if (!r) return;
    qr_buf_fini(&r->store);
    qr_buf_fini(&r->body_buf);
    free(r);
}

const char *http_req_header(const http_req *req, const char *name, size_t *len)
{
    for (uint32_t idx = 0; idx < req->header_count; idx++) {
        if (strcmp(req->headers[idx].name, name) == 0) {
            if (len) *len = req->headers[idx].value_len;
            return req->headers[idx].value;
        }
    }
    return NULL;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool http_req_query_param(const http_req *req, const char *name, char *out, size_t cap)
{
    size_t name_len = strlen(name);
    const char *p = req->query;
    while (*p) {
        const char *end = strchr(p, '&');
        if (!end) end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *key_end = eq ? eq : end;
        if ((size_t)(key_end - p) == name_len && memcmp(p, name, name_len) == 0) {
            size_t n = 0;
            for (const char *v = eq ? eq + 1 : end; v < end && n + 1 < cap; v++) {
                int ch = (unsigned char)*v;
                if (ch == '+')
                    ch = ' ';
                else if (ch == '%' && end - v >= 3 && hexval(v[1]) >= 0 && hexval(v[2]) >= 0) {
                    ch = hexval(v[1]) * 16 + hexval(v[2]);
                    v += 2;
                }
                out[n++] = (char)ch;
            }
            if (cap) out[n] = '\0';
            return true;
        }
        p = *end ? end + 1 : end;
    }
    return false;
}

/* ---- writing ---- */

static void on_write(uv_write_t *w, int status)
{
    write_req *wr = (write_req *)w;
    http_conn *c = wr->conn;
    c->write_pending -= wr->len;
    free(wr);
    if (status < 0 && !c->closing) {
        conn_close_now(c);
        return;
    }
    if (c->closing) return;
    if (c->write_pending == 0 && c->close_after && !c->req) {
        conn_close(c); /* conn_close lingers when a request body may still be arriving */
        return;
    }
    if (c->write_pending < WRITE_BACKLOG_BYTES && !c->in_feed) conn_feed(c);
}

/* Queues hdr+body as one write. */
static void conn_write(http_conn *c, const char *hdr, size_t hdr_len, const void *body,
                       size_t body_len)
{
    if (!c || c->closing || c->shut) return;
    write_req *wr = malloc(sizeof *wr + hdr_len + body_len);
    if (!wr) {
        conn_close_now(c);
        return;
    }
    wr->conn = c;
    wr->len = hdr_len + body_len;
    memcpy(wr->data, hdr, hdr_len);
    if (body_len) memcpy(wr->data + hdr_len, body, body_len);
    uv_buf_t buf = uv_buf_init(wr->data, (unsigned)wr->len);
    if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &buf, 1, on_write) != 0) {
        free(wr);
        conn_close_now(c);
        return;
    }
    c->write_pending += wr->len;
}

static void req_begin_response(http_req *req, int status)
{
    req->status = status;
    http_conn *c = req->conn;
    if (c && (c->srv->closing || c->close_after)) req->keep_alive = false;
    if (c && c->srv->h.on_response) c->srv->h.on_response(c->srv->h.ctx, req, status);
}

/* The request has been answered completely. Answered from the head hook (body not complete):
 * without a body the parser goes on to on_message_complete and conn_feed frees it there; with
 * one the body is not read and the connection closes. Otherwise the request is freed and the
 * parser resumes on any pipelined bytes. */
static void req_finish(http_req *req)
{
    http_conn *c = req->conn;
    if (!c) { /* the client went away while the handler worked */
        req_free(req);
        return;
    }
    if (!req->keep_alive) c->close_after = true;
    bool head_phase = !c->req_ready;
    c->in_handler = false;
    if (head_phase) {
        c->head_answered = true;
        if (req->has_body) c->close_after = true;
        if (!c->close_after) {
            req->responded = true;
            return;
        }
    }
    if (c->req == req) c->req = NULL;
    req_free(req);
    c->req_ready = false;
    if (c->closing) return;
    if (c->close_after) {
        parser_pause(&c->parser, 1);
        if (c->write_pending == 0 && !c->in_feed) conn_close(c);
        return;
    }
    parser_pause(&c->parser, 0);
    uv_timer_again(&c->timer);
    if (!c->in_feed) conn_feed(c);
}

void http_req_close_after(http_req *req) { req->keep_alive = false; }

void http_respond(http_req *req, int status, const char *content_type, const char *extra_headers,
                  const void *body, size_t body_len)
{
    if (req->responded || req->streaming) return;
    req_begin_response(req, status);
    char hdr[1024];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Connection: %s\r\n\r\n",
                     status, http_status_text(status), content_type ? content_type : "text/plain",
                     body_len, extra_headers ? extra_headers : "",
                     req->keep_alive ? "keep-alive" : "close");
    if (n < 0 || (size_t)n >= sizeof hdr) n = 0;
    conn_write(req->conn, hdr, (size_t)n, body, body_len);
    req_finish(req);
}

void http_respond_error(http_req *req, int status, const char *code, const char *message,
                        const char *extra_json, const char *extra_headers)
{
    qr_buf b;
    qr_buf_init(&b);
    qr_jsonw_raw(&b, "{\"error\":{\"code\":");
    qr_jsonw_cstr(&b, code);
    qr_jsonw_raw(&b, ",\"message\":");
    qr_jsonw_cstr(&b, message);
    if (extra_json) qr_jsonw_raw(&b, extra_json);
    qr_jsonw_raw(&b, "}}\n");
    http_respond(req, status, "application/json", extra_headers, b.data, qr_buf_ok(&b) ? b.len : 0);
    qr_buf_fini(&b);
}

void http_stream_begin(http_req *req, int status, const char *content_type,
                       const char *extra_headers)
{
    if (req->responded || req->streaming) return;
    req->streaming = true;
    if (req->http_minor == 0) req->keep_alive = false;
    req_begin_response(req, status);
    char hdr[1024];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s%sConnection: %s\r\n\r\n", status,
                     http_status_text(status), content_type, extra_headers ? extra_headers : "",
                     req->http_minor ? "Transfer-Encoding: chunked\r\n" : "",
                     req->keep_alive ? "keep-alive" : "close");
    if (n < 0 || (size_t)n >= sizeof hdr) n = 0;
    conn_write(req->conn, hdr, (size_t)n, NULL, 0);
}

bool http_stream_write(http_req *req, const void *data, size_t len)
{
    http_conn *c = req->conn;
    if (!req->streaming || !c || c->closing) return false;
    if (len == 0) return true;
    if (req->http_minor == 0) {
        conn_write(c, "", 0, data, len);
    } else {
        char head[32];
        int n = snprintf(head, sizeof head, "%zx\r\n", len);
        write_req *wr = malloc(sizeof *wr + (size_t)n + len + 2);
        if (!wr) {
            conn_close_now(c);
            return false;
        }
        wr->conn = c;
        wr->len = (size_t)n + len + 2;
        memcpy(wr->data, head, (size_t)n);
        memcpy(wr->data + n, data, len);
        memcpy(wr->data + n + len, "\r\n", 2);
        uv_buf_t buf = uv_buf_init(wr->data, (unsigned)wr->len);
        if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &buf, 1, on_write) != 0) {
            free(wr);
            conn_close_now(c);
            return false;
        }
        c->write_pending += wr->len;
    }
    return req->conn && !req->conn->closing;
}

size_t http_stream_pending_bytes(const http_req *req)
{
    return req->conn ? req->conn->write_pending : 0;
}

void http_stream_end(http_req *req)
{
    if (!req->streaming) return;
    if (req->conn && req->http_minor) conn_write(req->conn, "0\r\n\r\n", 5, NULL, 0);
    req_finish(req);
}

/* ---- connection lifetime ---- */

static void on_handle_closed(uv_handle_t *h)
{
    http_conn *c = h->data;
    if (--c->handles_open > 0) return;
    http_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->open--;
    qr_buf_fini(&c->pending);
    free(c);
}

static void conn_close_now(http_conn *c)
{
    if (c->closing) return;
    c->closing = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (c->req) {
        if (c->in_handler)
            c->req->conn = NULL; /* the handler still owns it; dropped at answer */
        else
            req_free(c->req);
        c->req = NULL;
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_linger_timer(uv_timer_t *t) { conn_close_now(t->data); }

static void on_shutdown(uv_shutdown_t *sr, int status)
{
    http_conn *c = sr->data;
    free(sr);
    if (c->closing) return;
    if (status < 0) {
        conn_close_now(c);
        return;
    }
    /* keep reading (discarding) a little so the client sees our answer, not a reset */
    c->lingering = true;
    uv_timer_start(&c->timer, on_linger_timer, LINGER_MS, 0);
    if (!c->reading) {
        c->reading = true;
        conn_update_reading(c);
    }
}

/* Graceful close: after pending writes, shut down the write side and linger. */
static void conn_close(http_conn *c)
{
    if (c->closing || c->shut) return;
    if (c->in_handler && c->req) { /* answer first */
        c->close_after = true;
        return;
    }
    c->shut = true;
    uv_shutdown_t *sr = malloc(sizeof *sr);
    if (!sr) {
        conn_close_now(c);
        return;
    }
    sr->data = c;
    if (uv_shutdown(sr, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(sr);
        conn_close_now(c);
    }
}

static void on_idle_timer(uv_timer_t *t)
{
    http_conn *c = t->data;
    if (c->in_handler || (c->req && c->req->streaming)) return; /* repeat fires again */
    conn_close_now(c);
}

/* An error found by the HTTP layer itself: answer and close. */
static void conn_fail(http_conn *c, int status, const char *code, const char *msg)
{
    http_req *req = c->req;
    c->close_after = true;
    parser_pause(&c->parser, 1);
    if (!req) {
        req = calloc(1, sizeof *req);
        if (!req) {
            conn_close_now(c);
            return;
        }
        qr_buf_init(&req->store);
        qr_buf_init(&req->body_buf);
        req->conn = c;
        req->method = "";
        req->path = "";
        req->query = "";
        c->req = req;
    }
    if (!req->path) req->path = "";
    if (!req->query) req->query = "";
    if (!req->method) req->method = "";
    if (req->responded || req->streaming) { /* already answered: just close */
        if (c->write_pending == 0 && !c->in_feed) conn_close(c);
        return;
    }
    req->keep_alive = false;
    c->in_handler = true; /* let req_finish free it */
    c->req_ready = true;
    http_respond_error(req, status, code, msg, NULL, NULL);
}

/* ---- parser callbacks ---- */

static http_conn *conn_of(http_parser *p) { return p->data; }

static int head_grow(http_conn *c, size_t n)
{
    c->head_bytes += n;
    if (c->head_bytes > c->srv->lim.header_bytes) {
        conn_fail(c, 431, "headers_too_large", "request line and headers are over the limit");
        return -1;
    }
    return 0;
}

static int on_message_begin(http_parser *p)
{
    http_conn *c = conn_of(p);
    http_req *req = calloc(1, sizeof *req);
    if (!req) return -1;
    qr_buf_init(&req->store);
    qr_buf_init(&req->body_buf);
    req->conn = c;
    req->content_length = UINT64_MAX;
    c->req = req;
    c->head_bytes = 0;
    c->last_was_value = false;
    c->url_end = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    http_conn *c = conn_of(p);
    if (head_grow(c, len)) return 0;
    qr_buf_append(&c->req->store, at, len);
    return 0;
}

static void terminate_url(http_conn *c)
{
    if (c->url_end) return;
    qr_buf_u8(&c->req->store, 0);
    c->url_end = c->req->store.len; /* > 0 always (the NUL) */
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    http_conn *c = conn_of(p);
    http_req *req = c->req;
    if (head_grow(c, len)) return 0;
    terminate_url(c);
    if (c->last_was_value || req->header_count == 0) {
        if (req->header_count > 0) {
            http_header *prev = &req->headers[req->header_count - 1];
            prev->value_len = req->store.len - c->hdr_value_off;
            qr_buf_u8(&req->store, 0);
        }
        if (req->header_count == HTTP_HEADERS_MAX) {
            conn_fail(c, 431, "headers_too_large", "more than 64 request headers");
            return 0;
        }
        req->header_count++;
        c->hdr_name_off = req->store.len;
        c->hdr_value_off = SIZE_MAX;
        c->last_was_value = false;
    }
    for (size_t pos = 0; pos < len; pos++)
        qr_buf_u8(&req->store, (uint8_t)tolower((unsigned char)at[pos]));
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    http_conn *c = conn_of(p);
    http_req *req = c->req;
    if (head_grow(c, len)) return 0;
    if (!c->last_was_value) {
        qr_buf_u8(&req->store, 0);
        c->hdr_value_off = req->store.len;
        c->last_was_value = true;
        /* stash offsets in the pointers' place until the store stops moving */
        req->headers[req->header_count - 1].name = (const char *)(uintptr_t)c->hdr_name_off;
        req->headers[req->header_count - 1].value = (const char *)(uintptr_t)c->hdr_value_off;
    }
    qr_buf_append(&req->store, at, len);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    http_conn *c = conn_of(p);
    http_req *req = c->req;
    http_server *s = c->srv;
    terminate_url(c);
    if (req->header_count > 0) {
        http_header *last = &req->headers[req->header_count - 1];
        if (!c->last_was_value) { /* a name without value: give it an empty one */
            qr_buf_u8(&req->store, 0);
            last->name = (const char *)(uintptr_t)c->hdr_name_off;
            last->value = (const char *)(uintptr_t)req->store.len;
            c->hdr_value_off = req->store.len;
        }
        last->value_len = req->store.len - c->hdr_value_off;
        qr_buf_u8(&req->store, 0);
    }
    if (!qr_buf_ok(&req->store)) {
        conn_fail(c, 500, "out_of_memory", "out of memory reading the request");
        return 0;
    }
    char *base = (char *)req->store.data;
    for (uint32_t idx = 0; idx < req->header_count; idx++) {
        req->headers[idx].name = base + (uintptr_t)req->headers[idx].name;
        req->headers[idx].value = base + (uintptr_t)req->headers[idx].value;
    }
    char *url = base;
    if (strncmp(url, "http://", 7) == 0) { /* absolute-form: drop scheme and authority */
        char *slash = strchr(url + 7, '/');
        url = slash ? slash : (char *)"/";
    }
    char *q = strchr(url, '?');
    if (q) *q++ = '\0';
    req->path = url;
    req->query = q ? q : "";
    req->method = http_method_str((enum http_method)p->method);
    req->http_minor = p->http_minor;
    req->keep_alive = http_should_keep_alive(p) != 0;
    req->start_ns = (uint64_t)qr_monotonic_ns();
    if (p->flags & F_CHUNKED) {
        req->has_body = true;
    } else if (p->flags & F_CONTENTLENGTH) {
        req->content_length = p->content_length;
        req->has_body = p->content_length > 0;
    }
    size_t ev_len = 0;
    const char *expect = http_req_header(req, "expect", &ev_len);
    req->wants_continue = expect && ev_len == 12 && strncasecmp(expect, "100-continue", 12) == 0;
    if (req->content_length != UINT64_MAX && req->content_length > s->lim.body_bytes) {
        char msg[160];
        snprintf(msg, sizeof msg, "request body of %llu bytes is over the limit of %zu bytes",
                 (unsigned long long)req->content_length, s->lim.body_bytes);
        conn_fail(c, 413, "body_too_large", msg);
        return 0;
    }
    c->in_handler = true;
    c->head_answered = false;
    s->h.head(s->h.ctx, req);
    if (c->head_answered) {
        if (c->close_after) parser_pause(p, 1);
        return 0;
    }
    c->in_handler = false;
    if (req->wants_continue && req->has_body)
        conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25, NULL, 0);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    http_conn *c = conn_of(p);
    http_req *req = c->req;
    if (!req || req->responded) return 0;
    if (req->body_buf.len + len > c->srv->lim.body_bytes) {
        char msg[160];
        snprintf(msg, sizeof msg, "request body is over the limit of %zu bytes",
                 c->srv->lim.body_bytes);
        conn_fail(c, 413, "body_too_large", msg);
        return 0;
    }
    qr_buf_append(&req->body_buf, at, len);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_conn *c = conn_of(p);
    c->req_ready = true;
    parser_pause(p, 1);
    return 0;
}

static const http_parser_settings g_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- reading and feeding ---- */

static void conn_update_reading(http_conn *c);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    http_conn *c = h->data;
    *buf = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    http_conn *c = st->data;
    if (nread < 0) {
        /* the client closed (or reset) while its request is handled: the handler may stop
         * work nobody waits for (a half-close looks the same: the answer is still sent) */
        if (c->req && (c->in_handler || c->req_ready) && !c->lingering) c->req->peer_closed = 1;
        if (nread == UV_EOF && !c->lingering && (c->in_handler || c->req_ready) && !c->shut) {
            /* the client half-closed after its request: answer, then close */
            c->close_after = true;
            uv_read_stop(st);
            c->reading = false;
            return;
        }
        conn_close_now(c);
        return;
    }
    if (nread == 0) return;
    if (c->lingering) {
        c->linger_bytes += (size_t)nread;
        if (c->linger_bytes > LINGER_BYTES) conn_close_now(c);
        return;
    }
    if (c->shut || c->close_after) return; /* answer sent; the rest is not read */
    uv_timer_again(&c->timer);
    if (c->pending_off == c->pending.len) {
        c->pending.len = 0;
        c->pending_off = 0;
    }
    qr_buf_append(&c->pending, buf->base, (size_t)nread);
    if (!qr_buf_ok(&c->pending)) {
        conn_close_now(c);
        return;
    }
    conn_feed(c);
}

static void conn_update_reading(http_conn *c)
{
    if (c->closing) return;
    /* while a request is handled, read on (a bounded read-ahead) only to notice a close */
    bool busy = c->in_handler || c->req_ready;
    bool want =
        c->lingering || (!c->shut && !c->close_after && c->write_pending < WRITE_BACKLOG_BYTES &&
                         (!busy || c->pending.len - c->pending_off < READ_AHEAD_BYTES));
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void conn_feed(http_conn *c)
{
    if (c->in_feed || c->closing) return;
    c->in_feed = true;
    while (!c->closing && !c->shut && !c->close_after && !c->in_handler &&
           c->write_pending < WRITE_BACKLOG_BYTES) {
        if (c->req_ready) { /* a complete request: hand it over */
            http_req *req = c->req;
            req->body = req->body_buf.data;
            req->body_len = req->body_buf.len;
            if (!qr_buf_ok(&req->body_buf)) {
                conn_fail(c, 500, "out_of_memory", "out of memory reading the body");
                break;
            }
            if (req->responded) { /* answered at head time; body consumed: next request */
                c->req = NULL;
                c->req_ready = false;
                req_free(req);
                parser_pause(&c->parser, 0);
                continue;
            }
            c->in_handler = true;
            c->srv->h.body(c->srv->h.ctx, req);
            continue; /* req_finish cleared in_handler if it answered synchronously */
        }
        size_t avail = c->pending.len - c->pending_off;
        if (avail == 0) break;
        const char *data = (const char *)c->pending.data + c->pending_off;
        size_t n = http_parser_execute(&c->parser, &g_settings, data, avail);
        c->pending_off += n;
        enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);
        if (err == HPE_PAUSED) {
            if (c->req_ready || c->close_after || c->closing) continue;
            parser_pause(&c->parser, 0);
            continue;
        }
        if (err != HPE_OK) {
            if (c->close_after || c->closing) break;
            char msg[200];
            snprintf(msg, sizeof msg, "malformed HTTP request: %s", http_errno_description(err));
            if (err == HPE_HEADER_OVERFLOW)
                conn_fail(c, 431, "headers_too_large", "request headers are over the limit");
            else
                conn_fail(c, 400, "bad_request", msg);
            break;
        }
        if (n < avail) break; /* should not happen without an error */
    }
    c->in_feed = false;
    if (!c->closing && c->close_after && !c->in_handler && !c->req && c->write_pending == 0)
        conn_close(c);
    else
        conn_update_reading(c);
}

/* ---- server ---- */

static void on_connection(uv_stream_t *listener, int status)
{
    http_server *s = listener->data;
    if (status < 0 || s->closing) return;
    http_conn *c = calloc(1, sizeof *c);
    if (!c) return;
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->open++;
    qr_buf_init(&c->pending);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 || s->open > s->lim.max_connections) {
        conn_close_now(c);
        return;
    }
    s->accepted++;
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_timer_start(&c->timer, on_idle_timer, s->lim.idle_timeout_ms, s->lim.idle_timeout_ms);
    conn_update_reading(c);
}

int http_server_new(uv_loop_t *loop, const char *listen_addr, const http_limits *limits,
                    const http_handlers *handlers, http_server **out, qr_diag *d)
{
    char host[64];
    const char *colon = strrchr(listen_addr, ':');
    if (!colon || colon == listen_addr || (size_t)(colon - listen_addr) >= sizeof host)
        return qr_diag_set(d, QR_EINVAL, "listen address \"%s\" is not HOST:PORT", listen_addr);
    const char *h = listen_addr;
    size_t hlen = (size_t)(colon - listen_addr);
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || colon[1] == '\0')
        return qr_diag_set(d, QR_EINVAL, "listen address \"%s\": bad port", listen_addr);
    struct sockaddr_storage sa;
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&sa) != 0 &&
        uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&sa) != 0)
        return qr_diag_set(d, QR_EINVAL, "listen address \"%s\": host must be an IP address",
                           listen_addr);
    http_server *s = calloc(1, sizeof *s);
    if (!s) return QR_ENOMEM;
    s->loop = loop;
    s->h = *handlers;
    if (limits) s->lim = *limits;
    if (!s->lim.header_bytes) s->lim.header_bytes = 16 * 1024;
    if (!s->lim.body_bytes) s->lim.body_bytes = 32u * 1024 * 1024;
    if (!s->lim.idle_timeout_ms) s->lim.idle_timeout_ms = 60000;
    if (!s->lim.max_connections) s->lim.max_connections = 1024;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    int rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    if (rc != 0) {
        qr_diag_set(d, QR_EIO, "cannot listen on %s: %s", listen_addr, uv_strerror(rc));
        s->closing = true;
        uv_close((uv_handle_t *)&s->listener, NULL);
        uv_run(loop, UV_RUN_NOWAIT); /* let the close callback run before freeing */
        free(s);
        return QR_EIO;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
    char ip[64] = "";
    int bport = 0;
    if (bound.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&bound, ip, sizeof ip);
        bport = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
        snprintf(s->addr, sizeof s->addr, "[%s]:%d", ip, bport);
    } else {
        uv_ip4_name((struct sockaddr_in *)&bound, ip, sizeof ip);
        bport = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        snprintf(s->addr, sizeof s->addr, "%s:%d", ip, bport);
    }
    *out = s;
    return 0;
}

const char *http_server_addr(const http_server *s) { return s->addr; }

static void on_listener_closed(uv_handle_t *h)
{
    http_server *s = h->data;
    s->listener_closed = true;
}

void http_server_close(http_server *s)
{
    if (s->closing) return;
    s->closing = true;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    http_conn *next;
    for (http_conn *c = s->conns; c; c = next) {
        next = c->next;
        if (!c->req && !c->in_handler) conn_close_now(c);
        /* others answer their current request with Connection: close, then close */
    }
}

void http_server_close_all(http_server *s)
{
    http_server_close(s);
    http_conn *next;
    for (http_conn *c = s->conns; c; c = next) {
        next = c->next;
        conn_close_now(c);
    }
}

bool http_server_done(const http_server *s) { return s->listener_closed && s->open == 0; }
uint64_t http_server_open_connections(const http_server *s) { return s->open; }
uint64_t http_server_accepted_connections(const http_server *s) { return s->accepted; }

void http_server_free(http_server *s) { free(s); }

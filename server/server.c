/* server — routes, auth, quotas, workers and the life cycle of `quarry serve` (server.h).
 *
 * Request path: http head hook (loop thread) → route lookup (404/405) → auth (401/403) →
 * readiness (503) → quota and memory admission (429/503) → body hook → a job on the libuv
 * thread pool (decompress, decode into batches) → the commit queue: a committer thread takes
 * every queued job of the tenant and makes their batches durable together (one
 * tail_hub_ingest → db_ingest_take: one WAL record and fsync for the group) → the loop
 * (commit_async): charge the quota, count, answer 202. Workers never wait for the disk, so
 * under load the group grows instead of the number of blocked threads; a client that
 * closes before its 202 does not cancel its ingest.
 *
 * Quotas are token buckets per tenant (events/s and bytes/s, depth burst_seconds of quota).
 * The cost of a request is only known after decoding, so admission asks for a non-negative
 * balance and the decoded cost is charged afterwards (the balance may go negative: a big
 * batch borrows from the next seconds, and Retry-After says when the debt is repaid).
 *
 * lag_hint: "critical" when a tenant's flushes lag (frozen memtables at the limit, so the
 * next ingest waits), the job queue is 4x the workers, or this request itself waited
 * LAG_CRITICAL_NS (queue + commit: backpressure, group commit, fsync); "elevated" when a
 * flush is pending, the queue exceeds the workers or the request waited LAG_ELEVATED_NS;
 * else "normal". The request's own wait is measured, not sampled: a shipper is told to slow
 * down by the very answer that was slow. */
#include "server/server.h"

#include "common/qr_fs.h"
#include "common/qr_gen.h"
#include "common/qr_jsonw.h"
#include "common/qr_time.h"
#include "engine/alert.h"
#include "engine/engine.h"
#include "server/alert_routes.h"
#include "server/api.h"
#include "server/discover.h"
#include "server/http.h"
#include "server/ingest.h"
#include "server/metrics.h"
#include "server/rollup_api.h"
#include "server/tail.h"
#include "storage/evdec.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum route_id {
    R_OTHER = 0, /* unknown paths and requests that failed before routing */
    R_INGEST,
    R_INGEST_NDJSON,
    R_SERVICES,
    R_FIELDS,
    R_METRICS,
    R_HEALTHZ,
    R_READYZ,
    R_QUERY,
    R_SEARCH,
    R_AGGREGATE,
    R_TAIL,
    R_ALERTS,        /* /v1/alerts and everything under it; methods checked by alert_routes */
    R_ROLLUPS,       /* GET /v1/rollups[/{name}] */
    R_ROLLUPS_ADMIN, /* POST /v1/rollups, DELETE /v1/rollups/{name} */
    R_COUNT
};

typedef struct route {
    const char *path;
    const char *method;
    const char *name; /* metrics label */
    uint32_t scope;   /* CONFIG_SCOPE_* needed; 0 = none */
    bool needs_db;
} route;

static const route ROUTES[R_COUNT] = {
    [R_OTHER] = {"", "", "other", 0, false},
    [R_INGEST] = {"/v1/ingest", "POST", "ingest", CONFIG_SCOPE_INGEST, true},
    [R_INGEST_NDJSON] = {"/v1/ingest/ndjson", "POST", "ingest_ndjson", CONFIG_SCOPE_INGEST, true},
    [R_SERVICES] = {"/v1/services", "GET", "services", CONFIG_SCOPE_QUERY, true},
    [R_FIELDS] = {"/v1/fields", "GET", "fields", CONFIG_SCOPE_QUERY, true},
    [R_METRICS] = {"/metrics", "GET", "metrics", CONFIG_SCOPE_ADMIN, false},
    [R_HEALTHZ] = {"/healthz", "GET", "healthz", 0, false},
    [R_READYZ] = {"/readyz", "GET", "readyz", 0, false},
    [R_QUERY] = {"/v1/query", "POST", "query", CONFIG_SCOPE_QUERY, true},
    [R_SEARCH] = {"/v1/search", "POST", "search", CONFIG_SCOPE_QUERY, true},
    [R_AGGREGATE] = {"/v1/aggregate", "POST", "aggregate", CONFIG_SCOPE_QUERY, true},
    [R_TAIL] = {"/v1/tail", "GET", "tail", CONFIG_SCOPE_QUERY, true},
    [R_ALERTS] = {"/v1/alerts", "*", "alerts", CONFIG_SCOPE_QUERY, true},
    [R_ROLLUPS] = {"/v1/rollups", "GET", "rollups", CONFIG_SCOPE_QUERY, true},
    [R_ROLLUPS_ADMIN] = {"/v1/rollups", "POST", "rollups_admin", CONFIG_SCOPE_ADMIN, true},
};

static bool route_is_query(int r) { return r == R_QUERY || r == R_SEARCH || r == R_AGGREGATE; }

static const int STATUSES[] = {200, 202, 400, 401, 403, 404, 405, 408, 413,
                               415, 422, 429, 431, 499, 500, 501, 503};
#define STATUS_COUNT (sizeof STATUSES / sizeof STATUSES[0] + 1) /* + "other" */

/* Group commit (see work_ingest and committer_main): ingest jobs are decoded on the worker
 * pool, then made durable by committer threads (as many as workers: a WAL append encodes and
 * compresses its batch on the calling thread, so fewer committers would serialize that CPU
 * work), each taking every queued job of one tenant (up to GROUP_MAX_BYTES of events) into
 * one batch: one WAL record, one fsync, one memtable append for the lot. */
#define GROUP_MAX_BYTES (8u * 1024 * 1024)

typedef struct tenant_state {
    const char *name;
    const config_tenant *cfg; /* NULL: no quota */
    double event_tokens, byte_tokens;
    int64_t refill_ns;
    atomic_uint_fast64_t events, bytes, rejected, throttled, requests;
} tenant_state;

/* An open GET /v1/tail stream (loop thread). */
typedef struct tail_client tail_client;
struct tail_client {
    tail_client *prev, *next;
    http_req *req;
    tail_sub *sub;
    uint64_t sent_last_id; /* last event id handed to the socket */
};

typedef struct server {
    uv_loop_t loop;
    const config *cfg;
    server_opts opts;
    const char *data_dir;
    FILE *log;
    http_server *http;
    db_t *db;
    alert_mgr *alerts; /* NULL when it could not start (logged) */
    qr_diag alerts_diag;
    rollup_mgr *rollups; /* opened with db (NULL when that failed: logged) */
    qr_diag rollups_diag;
    exec_msg_cache *msg_cache; /* result rows' messages across queries (NULL: none) */
    bool ready;
    bool open_done;
    int exit_code;
    qr_diag open_diag;
    wal_replay_report replay;
    char addr_path[4200];
    bool addr_written;
    uv_signal_t sig_term, sig_int;
    uv_timer_t stats_timer, demo_timer, shutdown_timer, drain_timer;
    bool shutting_down;
    tenant_state *tenants;
    size_t tenant_count;
    bool open_mode;
    /* ingest group commit (see "group commit" below) */
    pthread_mutex_t commit_mu;
    pthread_cond_t commit_cv;
    struct job *commit_head, *commit_tail; /* decoded, waiting for a committer */
    struct job *done_head, *done_tail;     /* committed, waiting for the loop */
    bool commit_stop;
    pthread_t *committers;
    size_t committer_count;
    uv_async_t commit_async;
    /* loop-thread state */
    uint64_t inflight_bytes;
    uint64_t jobs_pending;
    uint64_t jobs_committing; /* of jobs_pending: decoded, not yet durable (off the workers) */
    db_stats last_stats;
    int64_t start_ns;
    /* metrics */
    atomic_uint_fast64_t requests[R_COUNT][STATUS_COUNT];
    metrics_hist ingest_latency;
    metrics_hist ingest_stage[3]; /* queue (body read → worker), decode, commit (durable) */
    metrics_hist wal_fsync;
    /* queries and live tail */
    uint64_t queries_running;
    atomic_uint_fast64_t streams_abandoned; /* streamed results whose client left */
    atomic_uint_fast64_t queries_cancelled; /* queries stopped because their client left */
    uint32_t queries_max;
    metrics_hist query_latency[3]; /* query, search, aggregate */
    tail_hub *tail;
    tail_client *tail_clients;
    uv_async_t tail_async;
    uv_timer_t heartbeat_timer;
    /* demo */
    bool demo;
    bool demo_busy;
    qr_gen *gen;
    uint64_t demo_events;
    size_t demo_tenant;
} server;

typedef struct job {
    uv_work_t work;
    server *srv;
    http_req *req;
    int route;
    size_t tenant_idx;
    char encoding[40];
    size_t encoding_len;
    const uint8_t *body;
    size_t body_len;
    int64_t queued_ns; /* monotonic, when the job was queued */
    int64_t queue_ns;  /* ingest: queued → a worker took it */
    int64_t commit_ns; /* ingest: decoded → durable (commit queue, WAL, fsync, memtable) */
    /* ingest group commit: the decoded batches, handed to a committer */
    qr_batch *batches;
    size_t batch_count, batch_cap;
    int64_t commit_queued_ns;
    uint64_t durable;  /* events of this job made durable */
    uint64_t in_group; /* committer: events of this job in the group batch being built */
    int commit_rc;     /* first commit error */
    qr_diag commit_diag;
    bool commit_queued; /* worker: handed to the committers (answered when they are done) */
    bool commit_done;   /* loop: the committers are done with it */
    bool work_done;     /* loop: the worker's after-work callback ran */
    struct job *commit_next;
    /* results, filled on the worker */
    int rc;
    int status;
    qr_diag diag;
    char code[40];
    char extra[160];
    qr_buf out;
    ingest_result *res;
    /* queries */
    bool ndjson;
    char headers[400];
    /* a streamed /v1/query (NDJSON): the worker runs the query page by page
     * (exec_opts.page_rows) and hands each page's text to the loop through stream_buf */
    bool stream_handles; /* stream_async and stream_timer initialized (every R_QUERY job) */
    bool streaming;      /* worker: the answer is a stream (set before the first page) */
    uv_async_t stream_async;
    uv_timer_t stream_timer;
    pthread_mutex_t stream_mu;
    pthread_cond_t stream_cv;
    qr_buf stream_buf; /* produced, not yet written; bounded by STREAM_BUF_BYTES */
    bool stream_begun; /* loop: status line and headers written */
    bool stream_gone;  /* loop → worker: the client left, stop producing */
    int closing_handles;
} job;

static void server_begin_shutdown(server *s);

/* ---- helpers ---- */

static void logf_(server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(server *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(s->log, "quarry serve: ");
    vfprintf(s->log, fmt, ap);
    fprintf(s->log, "\n");
    fflush(s->log);
    va_end(ap);
}

bool server_addr_is_loopback(const char *addr)
{
    if (!strncmp(addr, "127.", 4) || !strncmp(addr, "[::1]:", 6) ||
        !strncmp(addr, "localhost:", 10))
        return true;
    return false;
}

static size_t status_idx(int status)
{
    for (size_t idx = 0; idx < STATUS_COUNT - 1; idx++)
        if (STATUSES[idx] == status) return idx;
    return STATUS_COUNT - 1;
}

static void on_response(void *ctx, http_req *req, int status)
{
    server *s = ctx;
    int r = req->user_route >= 0 && req->user_route < R_COUNT ? req->user_route : R_OTHER;
    atomic_fetch_add_explicit(&s->requests[r][status_idx(status)], 1, memory_order_relaxed);
}

#define LAG_ELEVATED_NS (100 * QR_NS_PER_MS)
#define LAG_CRITICAL_NS (1000 * QR_NS_PER_MS)

static const char *lag_hint(server *s, int64_t waited_ns)
{
    uint32_t max_frozen = s->cfg->db.max_frozen ? s->cfg->db.max_frozen : 2;
    uint64_t workers = s->cfg->workers;
    uint64_t queued = s->jobs_pending - s->jobs_committing; /* waiting for or on a worker */
    if (s->last_stats.frozen_memtables >= max_frozen || queued >= 4 * workers ||
        waited_ns >= LAG_CRITICAL_NS)
        return "critical";
    if (s->last_stats.frozen_memtables > 0 || queued > workers || waited_ns >= LAG_ELEVATED_NS)
        return "elevated";
    return "normal";
}

/* ---- quotas (loop thread) ---- */

static void quota_refill(tenant_state *t, int64_t now_ns)
{
    const config_tenant *c = t->cfg;
    if (!c) return;
    double dt = (double)(now_ns - t->refill_ns) / 1e9;
    t->refill_ns = now_ns;
    if (dt <= 0) return;
    double burst = c->burst_seconds > 0 ? c->burst_seconds : 1;
    if (c->events_per_sec > 0)
        t->event_tokens = fmin(t->event_tokens + dt * c->events_per_sec, c->events_per_sec * burst);
    if (c->bytes_per_sec > 0)
        t->byte_tokens = fmin(t->byte_tokens + dt * c->bytes_per_sec, c->bytes_per_sec * burst);
}

/* 0 when admitted, else the seconds to wait. */
static uint32_t quota_wait_seconds(tenant_state *t)
{
    const config_tenant *c = t->cfg;
    if (!c) return 0;
    quota_refill(t, qr_monotonic_ns());
    double wait = 0;
    if (c->events_per_sec > 0 && t->event_tokens < 0) wait = -t->event_tokens / c->events_per_sec;
    if (c->bytes_per_sec > 0 && t->byte_tokens < 0)
        wait = fmax(wait, -t->byte_tokens / c->bytes_per_sec);
    if (wait <= 0) return 0;
    double secs = ceil(wait);
    return secs < 1 ? 1 : secs > 3600 ? 3600 : (uint32_t)secs;
}

static void quota_charge(tenant_state *t, uint64_t events, uint64_t bytes)
{
    if (!t->cfg) return;
    quota_refill(t, qr_monotonic_ns());
    if (t->cfg->events_per_sec > 0) t->event_tokens -= (double)events;
    if (t->cfg->bytes_per_sec > 0) t->byte_tokens -= (double)bytes;
}

/* ---- workers ---- */

/* Decoded events: kept in the job for the committers (no copy: the batch moves). */
static int emit_to_job(void *ctx, qr_batch *b, qr_diag *d)
{
    job *j = ctx;
    if (j->batch_count == j->batch_cap) {
        size_t cap = j->batch_cap ? 2 * j->batch_cap : 2;
        qr_batch *p = realloc(j->batches, cap * sizeof *p);
        if (!p) return qr_diag_set(d, QR_ENOMEM, "out of memory queueing events");
        j->batches = p;
        j->batch_cap = cap;
    }
    j->batches[j->batch_count++] = *b;
    qr_batch_init(b);
    return 0;
}

static void job_batches_free(job *j)
{
    for (size_t bi = 0; bi < j->batch_count; bi++) qr_batch_fini(&j->batches[bi]);
    free(j->batches);
    j->batches = NULL;
    j->batch_count = j->batch_cap = 0;
}

/* ---- group commit (committer threads) ---- */

/* Makes the group batch durable and credits (or fails) the jobs that put events in it. */
static void group_flush(server *s, job *list, qr_batch *group)
{
    if (!group->count) return;
    qr_diag d;
    qr_diag_init(&d);
    size_t tenant = list->tenant_idx;
    int rc = tail_hub_ingest(s->tail, s->db, tenant, s->tenants[tenant].name, group, &d);
    for (job *j = list; j; j = j->commit_next) {
        if (!j->in_group) continue;
        if (rc == 0) {
            j->durable += j->in_group;
        } else if (!j->commit_rc) {
            j->commit_rc = rc;
            j->commit_diag = d;
        }
        j->in_group = 0;
    }
    qr_batch_reset(group);
}

/* Absorbs every batch of the jobs in list (one tenant) into group, flushing it whenever the
 * next batch would take it past GROUP_MAX_BYTES, then flushes the rest. */
static void group_commit(server *s, job *list, qr_batch *group)
{
    for (job *j = list; j; j = j->commit_next) {
        for (size_t bi = 0; bi < j->batch_count; bi++) {
            qr_batch *b = &j->batches[bi];
            size_t count = b->count;
            if (group->count && group->bytes + b->bytes > GROUP_MAX_BYTES)
                group_flush(s, list, group);
            int rc = qr_batch_absorb(group, b);
            if (rc && group->count) {
                group_flush(s, list, group);
                rc = qr_batch_absorb(group, b);
            }
            if (rc) {
                if (!j->commit_rc) {
                    j->commit_rc = rc;
                    qr_diag_set(&j->commit_diag, rc, "out of memory committing events");
                }
                continue;
            }
            j->in_group += count;
        }
    }
    group_flush(s, list, group);
    int64_t now = qr_monotonic_ns();
    for (job *j = list; j; j = j->commit_next) {
        j->commit_ns = now - j->commit_queued_ns;
        metrics_hist_observe(&s->ingest_stage[2], (uint64_t)j->commit_ns, 1);
        job_batches_free(j);
    }
}

static void *committer_main(void *arg)
{
    server *s = arg;
    qr_batch group;
    qr_batch_init(&group);
    pthread_mutex_lock(&s->commit_mu);
    for (;;) {
        while (!s->commit_head && !s->commit_stop) pthread_cond_wait(&s->commit_cv, &s->commit_mu);
        if (!s->commit_head) break; /* stopping, and nothing is left */
        /* the oldest job and every later one of its tenant, up to GROUP_MAX_BYTES */
        size_t tenant = s->commit_head->tenant_idx;
        job *taken = NULL, **taken_end = &taken, *kept_last = NULL;
        size_t bytes = 0;
        for (job **pp = &s->commit_head; *pp;) {
            job *j = *pp;
            size_t jb = 0;
            for (size_t bi = 0; bi < j->batch_count; bi++) jb += j->batches[bi].bytes;
            if (j->tenant_idx == tenant && (!taken || bytes + jb <= GROUP_MAX_BYTES)) {
                *pp = j->commit_next;
                j->commit_next = NULL;
                *taken_end = j;
                taken_end = &j->commit_next;
                bytes += jb;
            } else {
                kept_last = j;
                pp = &j->commit_next;
            }
        }
        s->commit_tail = kept_last;
        pthread_mutex_unlock(&s->commit_mu);
        group_commit(s, taken, &group);
        pthread_mutex_lock(&s->commit_mu);
        if (s->done_tail)
            s->done_tail->commit_next = taken;
        else
            s->done_head = taken;
        job *last = taken;
        while (last->commit_next) last = last->commit_next;
        s->done_tail = last;
        uv_async_send(&s->commit_async);
    }
    pthread_mutex_unlock(&s->commit_mu);
    qr_batch_fini(&group);
    return NULL;
}

static void commit_enqueue(server *s, job *j)
{
    j->commit_queued_ns = qr_monotonic_ns();
    pthread_mutex_lock(&s->commit_mu);
    j->commit_next = NULL;
    if (s->commit_tail)
        s->commit_tail->commit_next = j;
    else
        s->commit_head = j;
    s->commit_tail = j;
    pthread_cond_signal(&s->commit_cv);
    pthread_mutex_unlock(&s->commit_mu);
}

static void line_col(const uint8_t *p, size_t len, size_t off, int64_t *line, int64_t *col)
{
    int64_t l = 1, c = 1;
    for (size_t pos = 0; pos < off && pos < len; pos++) {
        if (p[pos] == '\n') {
            l++;
            c = 1;
        } else if ((p[pos] & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static void job_fail(job *j, int status, const char *code)
{
    j->status = status;
    snprintf(j->code, sizeof j->code, "%s", code);
}

static void work_ingest(uv_work_t *w)
{
    job *j = w->data;
    int64_t start_ns = qr_monotonic_ns();
    j->queue_ns = start_ns - j->queued_ns;
    metrics_hist_observe(&j->srv->ingest_stage[0], (uint64_t)j->queue_ns, 1);
    qr_buf plain;
    qr_buf_init(&plain);
    const uint8_t *data = NULL;
    size_t data_len = 0;
    int rc = ingest_decompress(j->encoding, j->encoding_len, j->body, j->body_len,
                               j->srv->cfg->decoded_bytes, &plain, &data, &data_len, &j->diag);
    if (rc) {
        if (rc == QR_EINVAL)
            job_fail(j, 415, "unsupported_encoding");
        else if (rc == QR_ELIMIT)
            job_fail(j, 413, "body_too_large");
        else if (rc == QR_ENOMEM)
            job_fail(j, 503, "out_of_memory");
        else
            job_fail(j, 400, "bad_encoding");
        qr_buf_fini(&plain);
        return;
    }
    j->res = calloc(1, sizeof *j->res);
    if (!j->res) {
        job_fail(j, 503, "out_of_memory");
        qr_buf_fini(&plain);
        return;
    }
    qr_batch b;
    qr_batch_init(&b);
    ingest_opts io = {qr_now_ns(), j->srv->cfg->batch_events, 0, emit_to_job, j};
    if (j->route == R_INGEST)
        rc = ingest_decode_json((const char *)data, data_len, &io, &b, j->res, &j->diag);
    else
        rc = ingest_decode_ndjson((const char *)data, data_len, &io, &b, j->res, &j->diag);
    qr_batch_fini(&b);
    j->rc = rc;
    if (rc == QR_ESYNTAX) {
        job_fail(j, 400, "malformed_json");
        int64_t line, col;
        size_t off = j->diag.offset >= 0 ? (size_t)j->diag.offset : 0;
        line_col(data, data_len, off, &line, &col);
        snprintf(j->extra, sizeof j->extra, ",\"offset\":%lld,\"line\":%lld,\"column\":%lld",
                 (long long)off, (long long)line, (long long)col);
    } else if (rc == QR_EINVAL) {
        job_fail(j, 400, "invalid_body");
    } else if (rc == QR_ELIMIT && j->res->accepted == 0) {
        job_fail(j, 413,
                 j->diag.msg[0] && strstr(j->diag.msg, "limit is") ? "too_many_events"
                                                                   : "batch_too_large");
    } else if (rc == QR_ENOMEM) {
        job_fail(j, 503, "out_of_memory");
    } else if (rc) {
        job_fail(j, 503, "internal");
    } else {
        j->status = 202;
    }
    qr_buf_fini(&plain);
    metrics_hist_observe(&j->srv->ingest_stage[1], (uint64_t)(qr_monotonic_ns() - start_ns), 1);
    if (rc || !j->batch_count) { /* nothing to commit (what was decoded before an error is
                                    dropped with it: the answer is an error) */
        job_batches_free(j);
        j->res->accepted = 0;
        return;
    }
    j->commit_queued = true;
    if (!j->srv->committer_count) { /* no committer thread could start: commit here */
        qr_batch group;
        qr_batch_init(&group);
        j->commit_queued_ns = qr_monotonic_ns();
        j->commit_next = NULL;
        group_commit(j->srv, j, &group);
        qr_batch_fini(&group);
        j->commit_done = true;
        return;
    }
    commit_enqueue(j->srv, j); /* from here the committers own j until the loop gets it back */
}

static void work_discover(uv_work_t *w)
{
    job *j = w->data;
    const char *tenant = j->srv->tenants[j->tenant_idx].name;
    int rc = j->route == R_SERVICES ? discover_services_json(j->srv->db, tenant, &j->out, &j->diag)
                                    : discover_fields_json(j->srv->db, tenant, &j->out, &j->diag);
    if (rc)
        job_fail(j, 500, "internal");
    else
        j->status = 200;
}

static void job_destroy(job *j)
{
    qr_buf_fini(&j->out);
    if (j->stream_handles) {
        qr_buf_fini(&j->stream_buf);
        pthread_mutex_destroy(&j->stream_mu);
        pthread_cond_destroy(&j->stream_cv);
    }
    job_batches_free(j);
    free(j->res);
    free(j);
}

static void on_stream_handle_closed(uv_handle_t *h)
{
    job *j = h->data;
    if (--j->closing_handles == 0) job_destroy(j);
}

/* Frees the job, once its stream handles (if any) are closed. Loop thread. */
static void job_free(job *j)
{
    if (!j->stream_handles) {
        job_destroy(j);
        return;
    }
    j->closing_handles = 2;
    uv_close((uv_handle_t *)&j->stream_async, on_stream_handle_closed);
    uv_close((uv_handle_t *)&j->stream_timer, on_stream_handle_closed);
}

static void after_job_common(job *j)
{
    server *s = j->srv;
    s->jobs_pending--;
    s->inflight_bytes -= j->body_len;
}

/* Loop: the answer, once decoded and (when there was something to commit) durable. */
static void ingest_finish(job *j)
{
    server *s = j->srv;
    after_job_common(j);
    tenant_state *t = &s->tenants[j->tenant_idx];
    ingest_result *res = j->res;
    if (j->commit_queued) {
        s->jobs_committing--;
        res->accepted = j->durable;
        if (j->commit_rc) {
            j->diag = j->commit_diag;
            j->rc = j->commit_rc;
            if (j->commit_rc == QR_ENOMEM) {
                job_fail(j, 503, "out_of_memory");
            } else {
                job_fail(j, 503, "storage_error");
                snprintf(j->extra, sizeof j->extra, ",\"accepted\":%llu",
                         (unsigned long long)j->durable);
            }
        }
    }
    if (res) {
        atomic_fetch_add(&t->events, res->accepted);
        atomic_fetch_add(&t->bytes, res->decoded_bytes);
        atomic_fetch_add(&t->rejected, res->failed);
        quota_charge(t, res->accepted + res->failed, res->decoded_bytes);
    }
    metrics_hist_observe(&s->ingest_latency, (uint64_t)qr_monotonic_ns() - j->req->start_ns, 1);
    if (j->status != 202) {
        http_respond_error(j->req, j->status, j->code,
                           j->diag.msg[0] ? j->diag.msg : qr_strerror(j->rc), j->extra, NULL);
        job_free(j);
        return;
    }
    qr_buf *o = &j->out;
    qr_jsonw_raw(o, "{\"accepted\":");
    qr_jsonw_uint(o, res->accepted);
    qr_jsonw_raw(o, ",\"failed\":");
    qr_jsonw_uint(o, res->failed);
    qr_jsonw_raw(o, ",\"errors\":[");
    const char *idx_key = j->route == R_INGEST ? "{\"index\":" : "{\"line\":";
    for (size_t idx = 0; idx < res->error_count; idx++) {
        if (idx) qr_jsonw_raw(o, ",");
        qr_jsonw_raw(o, idx_key);
        qr_jsonw_uint(o, res->errors[idx].index);
        qr_jsonw_raw(o, ",\"reason\":");
        qr_jsonw_cstr(o, res->errors[idx].reason);
        qr_jsonw_raw(o, "}");
    }
    qr_jsonw_raw(o, "]");
    if (res->failed > res->error_count) qr_jsonw_raw(o, ",\"errors_truncated\":true");
    qr_jsonw_raw(o, ",\"lag_hint\":");
    qr_jsonw_cstr(o, lag_hint(s, j->queue_ns + j->commit_ns));
    qr_jsonw_raw(o, "}\n");
    if (!qr_buf_ok(o))
        http_respond_error(j->req, 503, "out_of_memory", "out of memory", NULL, NULL);
    else
        http_respond(j->req, 202, "application/json", NULL, o->data, o->len);
    job_free(j);
}

static void after_ingest(uv_work_t *w, int status)
{
    job *j = w->data;
    j->work_done = true;
    if (j->commit_queued) {
        j->srv->jobs_committing++;   /* ingest_finish counts it down */
        if (!j->commit_done) return; /* answered from on_commit_async */
    }
    ingest_finish(j);
}

static void on_commit_async(uv_async_t *a)
{
    server *s = a->data;
    pthread_mutex_lock(&s->commit_mu);
    job *list = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->commit_mu);
    while (list) {
        job *j = list;
        list = j->commit_next;
        j->commit_done = true;
        if (j->work_done) ingest_finish(j);
    }
}

static void work_rollups(uv_work_t *w)
{
    job *j = w->data;
    server *s = j->srv;
    rollup_api_reply reply;
    qr_buf_init(&reply.body);
    rollup_api_handle(s->db, s->rollups, s->tenants[j->tenant_idx].name, j->req->method,
                      j->req->path, j->body, j->body_len, &reply);
    j->status = reply.status;
    snprintf(j->extra, sizeof j->extra, "%s", reply.allow);
    qr_buf_fini(&j->out);
    j->out = reply.body;
}

static void after_rollups(uv_work_t *w, int status)
{
    (void)status;
    job *j = w->data;
    after_job_common(j);
    char allow[64] = "";
    if (j->extra[0]) snprintf(allow, sizeof allow, "Allow: %s\r\n", j->extra);
    http_respond(j->req, j->status, "application/json", allow[0] ? allow : NULL, j->out.data,
                 j->out.len);
    job_free(j);
}

static void after_discover(uv_work_t *w, int status)
{
    job *j = w->data;
    after_job_common(j);
    if (j->status == 200)
        http_respond(j->req, 200, "application/json", NULL, j->out.data, j->out.len);
    else
        http_respond_error(j->req, j->status, j->code, j->diag.msg, NULL, NULL);
    job_free(j);
}

/* ---- query routes (worker) ---- */

static void query_error(job *j, int rc, const char *sql)
{
    qr_buf x;
    qr_buf_init(&x);
    if (rc == QR_ESYNTAX) {
        job_fail(j, 400, "syntax");
        if (j->diag.line > 0) {
            qr_jsonw_raw(&x, ",\"line\":");
            qr_jsonw_int(&x, j->diag.line);
            qr_jsonw_raw(&x, ",\"column\":");
            qr_jsonw_int(&x, j->diag.column);
            qr_jsonw_raw(&x, ",\"offset\":");
            qr_jsonw_int(&x, j->diag.offset);
        }
    } else if (rc == QR_ELIMIT) {
        job_fail(j, 422, "limit_exceeded");
    } else if (rc == QR_ENOMEM) {
        job_fail(j, 503, "out_of_memory");
    } else if (rc == QR_ECANCELED) {
        /* the client left (eo.cancel is req->peer_closed): nobody reads this answer */
        job_fail(j, 499, "client_closed_request");
        atomic_fetch_add_explicit(&j->srv->queries_cancelled, 1, memory_order_relaxed);
    } else {
        job_fail(j, 500, "internal");
    }
    if (sql) {
        qr_jsonw_raw(&x, ",\"sql\":");
        qr_jsonw_cstr(&x, sql);
    }
    /* the error members go into j->out, answered by after_query */
    qr_buf_fini(&j->out);
    j->out = x;
}

static void body_error(job *j, int rc, const uint8_t *data, size_t len)
{
    if (rc == QR_ESYNTAX) {
        job_fail(j, 400, "malformed_json");
        int64_t line, col;
        size_t off = j->diag.offset >= 0 ? (size_t)j->diag.offset : 0;
        line_col(data, len, off, &line, &col);
        snprintf(j->extra, sizeof j->extra, ",\"offset\":%lld,\"line\":%lld,\"column\":%lld",
                 (long long)off, (long long)line, (long long)col);
    } else if (rc == QR_ENOMEM) {
        job_fail(j, 503, "out_of_memory");
    } else {
        job_fail(j, 400, "invalid_request");
    }
}

/* ---- streamed query results ---- */

#define STREAM_PAGE_ROWS 10000 /* rows per page of a streamed query */

enum { STREAM_PUSHED, STREAM_GONE, STREAM_LATE };

/* Worker: queues text for the client, waiting while the loop has too much of it, until the
 * query's deadline (monotonic ns, 0 = none). STREAM_GONE once the client left (stop: that
 * cancels the query); STREAM_LATE when the reader kept it waiting past the deadline (nothing
 * queued). With force the text is queued whatever is pending (the last, short, error line). */
static int stream_push(job *j, const void *data, size_t len, int64_t deadline_ns, bool force)
{
    pthread_mutex_lock(&j->stream_mu);
    size_t cap = (size_t)j->srv->cfg->stream_buffer_bytes;
    int res = STREAM_PUSHED;
    while (!force && !j->stream_gone && j->stream_buf.len && j->stream_buf.len + len > cap) {
        if (!deadline_ns) {
            pthread_cond_wait(&j->stream_cv, &j->stream_mu);
            continue;
        }
        struct timespec until = {(time_t)(deadline_ns / QR_NS_PER_SEC),
                                 (long)(deadline_ns % QR_NS_PER_SEC)};
        if (pthread_cond_timedwait(&j->stream_cv, &j->stream_mu, &until) == ETIMEDOUT) {
            res = STREAM_LATE;
            break;
        }
    }
    if (j->stream_gone) res = STREAM_GONE;
    if (res == STREAM_PUSHED) qr_buf_append(&j->stream_buf, data, len);
    if (!qr_buf_ok(&j->stream_buf)) res = STREAM_GONE;
    pthread_mutex_unlock(&j->stream_mu);
    uv_async_send(&j->stream_async);
    return res;
}

/* The last line of a stream that ends on an error. */
static void stream_error_line(qr_buf *out, int rc, const char *msg)
{
    qr_buf_clear(out);
    qr_jsonw_raw(out, "{\"error\":{\"code\":");
    qr_jsonw_cstr(out, rc == QR_ELIMIT ? "limit_exceeded" : "internal");
    qr_jsonw_raw(out, ",\"message\":");
    qr_jsonw_cstr(out, msg);
    qr_jsonw_raw(out, "}}\n");
}

/* Loop: moves what the worker produced to the socket while the socket keeps up; with too
 * much unsent, retries on a short timer (the HTTP layer has no drain callback). */
static void on_stream_timer(uv_timer_t *t);

static void stream_drain(job *j, bool final)
{
    if (!j->stream_begun) {
        pthread_mutex_lock(&j->stream_mu);
        bool streaming = j->streaming;
        pthread_mutex_unlock(&j->stream_mu);
        if (!streaming) return;
        http_stream_begin(j->req, 200, "application/x-ndjson", j->headers);
        j->stream_begun = true;
    }
    bool ok = true;
    if (!final && http_stream_pending_bytes(j->req) > j->srv->cfg->stream_buffer_bytes) {
        ok = http_stream_write(j->req, "", 0); /* still connected? (a write error closes) */
        if (ok) {
            uv_timer_start(&j->stream_timer, on_stream_timer, 2, 0);
            return;
        }
    } else {
        pthread_mutex_lock(&j->stream_mu);
        qr_buf out = j->stream_buf;
        qr_buf_init(&j->stream_buf);
        pthread_cond_broadcast(&j->stream_cv);
        pthread_mutex_unlock(&j->stream_mu);
        for (size_t off = 0; ok && off < out.len; off += 64 * 1024) {
            size_t n = out.len - off < 64 * 1024 ? out.len - off : 64 * 1024;
            ok = http_stream_write(j->req, out.data + off, n);
        }
        qr_buf_fini(&out);
    }
    if (!ok && !j->stream_gone) {
        atomic_fetch_add_explicit(&j->srv->streams_abandoned, 1, memory_order_relaxed);
        pthread_mutex_lock(&j->stream_mu);
        j->stream_gone = true;
        pthread_cond_broadcast(&j->stream_cv);
        pthread_mutex_unlock(&j->stream_mu);
    }
}

static void on_stream_async(uv_async_t *a) { stream_drain(a->data, false); }

static void on_stream_timer(uv_timer_t *t) { stream_drain(t->data, false); }

/* Worker: the rows of a row query as NDJSON, page after page (each page a fresh snapshot
 * resuming at the cursor: no row twice, none skipped, memory bounded by one page). An error
 * after the first page ends the stream with one {"error": {...}} line. */
static void stream_query(job *j, const char *text, exec_opts eo, const char *cursor)
{
    server *s = j->srv;
    const char *tenant = s->tenants[j->tenant_idx].name;
    int64_t deadline =
        eo.timeout_ms ? qr_monotonic_ns() + (int64_t)eo.timeout_ms * QR_NS_PER_MS : 0;
    char *next = cursor ? strdup(cursor) : NULL;
    qr_buf page;
    qr_buf_init(&page);
    eo.page_rows = STREAM_PAGE_ROWS;
    uint64_t rows = 0, pages = 0;
    for (;;) {
        if (deadline) {
            int64_t left_ms = (deadline - qr_monotonic_ns()) / QR_NS_PER_MS;
            eo.timeout_ms = left_ms > 0 ? (uint32_t)left_ms : 1;
        }
        eo.cursor = next;
        eo.rows_done = rows;
        exec_result *res = NULL;
        qr_diag d;
        qr_diag_init(&d);
        int rc = exec_run(s->db, tenant, text, &eo, &res, &d);
        if (rc && pages == 0) {
            j->diag = d;
            query_error(j, rc, NULL);
            break;
        }
        qr_buf_clear(&page);
        if (rc == QR_ECANCELED) {
            atomic_fetch_add_explicit(&s->queries_cancelled, 1, memory_order_relaxed);
            break;
        }
        if (rc) {
            stream_error_line(&page, rc, d.msg[0] ? d.msg : qr_strerror(rc));
        } else {
            if (pages == 0) {
                snprintf(j->headers, sizeof j->headers, "X-Quarry-Streamed: pages of %u rows\r\n",
                         STREAM_PAGE_ROWS);
                j->status = 200;
                snprintf(j->code, sizeof j->code, "application/x-ndjson");
                pthread_mutex_lock(&j->stream_mu);
                j->streaming = true;
                pthread_mutex_unlock(&j->stream_mu);
            }
            if (exec_result_format(res, EXEC_FORMAT_NDJSON, &page)) rc = QR_ENOMEM;
        }
        pages++;
        rows += res ? res->row_count : 0;
        free(next);
        next = res && res->next_cursor && !res->partial ? strdup(res->next_cursor) : NULL;
        exec_result_free(res);
        int pushed = stream_push(j, page.data, page.len, deadline, rc != 0);
        if (pushed == STREAM_LATE) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "query timed out after %u ms: the client read the stream too slowly",
                     s->cfg->query_timeout_ms);
            stream_error_line(&page, QR_ELIMIT, msg);
            stream_push(j, page.data, page.len, 0, true);
            break;
        }
        if (pushed != STREAM_PUSHED || rc || !next) break;
    }
    free(next);
    qr_buf_fini(&page);
}

static void work_query(uv_work_t *w)
{
    job *j = w->data;
    server *s = j->srv;
    qr_buf plain;
    qr_buf_init(&plain);
    const uint8_t *data = NULL;
    size_t len = 0;
    int rc = ingest_decompress(j->encoding, j->encoding_len, j->body, j->body_len,
                               s->cfg->decoded_bytes, &plain, &data, &len, &j->diag);
    if (rc) {
        job_fail(j,
                 rc == QR_EINVAL   ? 415
                 : rc == QR_ELIMIT ? 413
                                   : 400,
                 rc == QR_EINVAL   ? "unsupported_encoding"
                 : rc == QR_ELIMIT ? "body_too_large"
                                   : "bad_encoding");
        qr_buf_fini(&plain);
        return;
    }
    const char *tenant = s->tenants[j->tenant_idx].name;
    exec_opts eo;
    memset(&eo, 0, sizeof eo);
    eo.mem_budget_bytes = (size_t)s->cfg->query_mem_bytes;
    eo.timeout_ms = s->cfg->query_timeout_ms;
    eo.alerts = s->alerts;
    eo.rollups = s->rollups;
    eo.msg_cache = s->msg_cache;
    eo.cancel = &j->req->peer_closed; /* a client that hangs up cancels its query */
    exec_result *res = NULL;
    if (j->route == R_QUERY) {
        api_query q;
        api_query_init(&q);
        rc = api_query_parse((const char *)data, len, &q, &j->diag);
        if (rc) {
            body_error(j, rc, data, len);
        } else {
            eo.allow_partial = q.allow_partial;
            eo.cursor = q.cursor.len > 1 ? (const char *)q.cursor.data : NULL;
            bool stream = j->ndjson || q.format == EXEC_FORMAT_NDJSON;
            rc = stream ? 0
                        : exec_run(s->db, tenant, (const char *)q.text.data, &eo, &res, &j->diag);
            if (stream) {
                j->ndjson = true;
                stream_query(j, (const char *)q.text.data, eo, eo.cursor);
            } else if (rc) {
                query_error(j, rc, NULL);
            } else {
                exec_format fmt = j->ndjson ? EXEC_FORMAT_NDJSON : q.format;
                j->ndjson = fmt == EXEC_FORMAT_NDJSON;
                rc = exec_result_format(res, fmt, &j->out);
                snprintf(j->headers, sizeof j->headers,
                         "X-Quarry-Rows: %llu\r\nX-Quarry-Hits: %llu\r\nX-Quarry-Scanned: "
                         "%llu\r\nX-Quarry-Took-Ms: %.3f\r\nX-Quarry-Partial: %s\r\n",
                         (unsigned long long)res->row_count, (unsigned long long)res->hits,
                         (unsigned long long)res->scanned, res->took_ms,
                         res->partial ? "true" : "false");
                if (res->next_cursor && strlen(res->next_cursor) < 200 &&
                    !strpbrk(res->next_cursor, "\r\n")) {
                    size_t hl = strlen(j->headers);
                    snprintf(j->headers + hl, sizeof j->headers - hl,
                             "X-Quarry-Next-Cursor: %s\r\n", res->next_cursor);
                }
                if (!rc) {
                    j->status = 200;
                    snprintf(j->code, sizeof j->code, "%s",
                             fmt == EXEC_FORMAT_JSON     ? "application/json"
                             : fmt == EXEC_FORMAT_NDJSON ? "application/x-ndjson"
                             : fmt == EXEC_FORMAT_CSV    ? "text/csv; charset=utf-8"
                                                         : "text/plain; charset=utf-8");
                } else {
                    job_fail(j, 503, "out_of_memory");
                }
            }
        }
        api_query_fini(&q);
    } else if (j->route == R_SEARCH) {
        api_search q;
        api_search_init(&q);
        rc = api_search_build((const char *)data, len, &q, &j->diag);
        if (rc) {
            body_error(j, rc, data, len);
        } else {
            rc = exec_run(s->db, tenant, (const char *)q.sql.data, &eo, &res, &j->diag);
            if (rc)
                query_error(j, rc, (const char *)q.sql.data);
            else if (api_search_render(&q, res, &j->out))
                job_fail(j, 503, "out_of_memory");
            else
                j->status = 200;
        }
        api_search_fini(&q);
    } else {
        api_aggregate q;
        api_aggregate_init(&q);
        rc = api_aggregate_build((const char *)data, len, &q, &j->diag);
        if (rc) {
            body_error(j, rc, data, len);
        } else {
            rc = exec_run(s->db, tenant, (const char *)q.sql.data, &eo, &res, &j->diag);
            if (rc)
                query_error(j, rc, (const char *)q.sql.data);
            else if (api_aggregate_render(&q, res, &j->out))
                job_fail(j, 503, "out_of_memory");
            else
                j->status = 200;
        }
        api_aggregate_fini(&q);
    }
    if (j->status == 200 && j->route != R_QUERY)
        snprintf(j->code, sizeof j->code, "application/json");
    exec_result_free(res);
    qr_buf_fini(&plain);
}

/* ---- /v1/alerts (worker) ---- */

static void work_alerts(uv_work_t *w)
{
    job *j = w->data;
    server *s = j->srv;
    const char *tenant = s->tenants[j->tenant_idx].name;
    if (!s->alerts) {
        job_fail(j, 503, "alerts_unavailable");
        snprintf(j->diag.msg, sizeof j->diag.msg, "alerts are not running: %s", s->alerts_diag.msg);
        return;
    }
    alert_route ar;
    alert_route_init(&ar);
    int rc = alert_route_build(j->req->method, j->req->path, (const char *)j->body, j->body_len,
                               &ar, &j->diag);
    exec_result *res = NULL;
    if (rc) {
        if (rc == QR_ENOTFOUND)
            job_fail(j, 404, "not_found");
        else if (!ar.method_ok)
            job_fail(j, 405, "method_not_allowed");
        else
            job_fail(j, rc == QR_ENOMEM ? 503 : 400,
                     rc == QR_ENOMEM ? "out_of_memory" : "invalid_request");
    } else if (ar.kind == ALERT_ROUTE_STATE) {
        rc = alert_mgr_state_prometheus(s->alerts, &j->out);
        if (rc) {
            job_fail(j, 503, "out_of_memory");
        } else {
            j->status = 200;
            snprintf(j->code, sizeof j->code, "text/plain; version=0.0.4; charset=utf-8");
        }
    } else if (ar.name[0] && !strncmp((const char *)ar.sql.data, "DESCRIBE", 8) &&
               !alert_mgr_has(s->alerts, tenant, ar.name)) {
        job_fail(j, 404, "not_found");
        snprintf(j->diag.msg, sizeof j->diag.msg, "no alert named \"%s\"", ar.name);
    } else {
        if (ar.kind == ALERT_ROUTE_PUT) {
            res = calloc(1, sizeof *res);
            if (!res) {
                rc = QR_ENOMEM;
            } else {
                qr_arena_init(&res->arena, 4096, 1u << 20);
                rc = alert_mgr_replace(s->alerts, tenant, ar.name, (const char *)ar.sql.data, res,
                                       &j->diag);
            }
        } else {
            exec_opts eo;
            memset(&eo, 0, sizeof eo);
            eo.mem_budget_bytes = (size_t)s->cfg->query_mem_bytes;
            eo.timeout_ms = s->cfg->query_timeout_ms;
            eo.alerts = s->alerts;
            rc = exec_run(s->db, tenant, (const char *)ar.sql.data, &eo, &res, &j->diag);
        }
        if (rc == QR_ENOTFOUND) {
            job_fail(j, 404, "not_found");
        } else if (rc == QR_EEXIST) {
            job_fail(j, 409, "conflict");
        } else if (rc == QR_EINVAL) {
            job_fail(j, 400, "invalid_request");
        } else if (rc) {
            query_error(j, rc, NULL);
        } else if (exec_result_format(res, EXEC_FORMAT_JSON, &j->out)) {
            job_fail(j, 503, "out_of_memory");
        } else {
            j->status = ar.ok_status;
            snprintf(j->code, sizeof j->code, "application/json");
        }
    }
    exec_result_free(res);
    alert_route_fini(&ar);
}

static void after_alerts(uv_work_t *w, int status)
{
    job *j = w->data;
    after_job_common(j);
    if (j->status == 200 || j->status == 201) {
        http_respond(j->req, j->status, j->code, NULL, j->out.data, j->out.len);
    } else {
        qr_buf_u8(&j->out, 0);
        char extra[2048];
        snprintf(extra, sizeof extra, "%s%s", j->extra,
                 qr_buf_ok(&j->out) && j->out.len < 1800 ? (const char *)j->out.data : "");
        http_respond_error(j->req, j->status, j->code,
                           j->diag.msg[0] ? j->diag.msg : qr_strerror(j->rc), extra,
                           j->status == 405 ? "Allow: GET, POST, PUT, DELETE\r\n" : NULL);
    }
    job_free(j);
}

static void after_query(uv_work_t *w, int status)
{
    job *j = w->data;
    server *s = j->srv;
    after_job_common(j);
    s->queries_running--;
    int hi = j->route == R_QUERY ? 0 : j->route == R_SEARCH ? 1 : 2;
    metrics_hist_observe(&s->query_latency[hi], (uint64_t)qr_monotonic_ns() - j->req->start_ns, 1);
    if (j->status != 200) {
        qr_buf_u8(&j->out, 0);
        char extra[2048];
        snprintf(extra, sizeof extra, "%s%s", j->extra,
                 qr_buf_ok(&j->out) && j->out.len < 1800 ? (const char *)j->out.data : "");
        http_respond_error(j->req, j->status, j->code,
                           j->diag.msg[0] ? j->diag.msg : qr_strerror(j->rc), extra, NULL);
    } else if (j->ndjson) {
        uv_timer_stop(&j->stream_timer);
        stream_drain(j, true); /* the worker is done: the rest goes out whatever is queued */
        http_stream_end(j->req);
    } else {
        http_respond(j->req, 200, j->code, j->headers, j->out.data, j->out.len);
    }
    job_free(j);
}

/* ---- live tail (loop thread) ---- */

static void tail_client_close(server *s, tail_client *tc, bool dropped)
{
    if (tc->prev)
        tc->prev->next = tc->next;
    else
        s->tail_clients = tc->next;
    if (tc->next) tc->next->prev = tc->prev;
    tail_hub_unsubscribe(tc->sub, dropped);
    http_req_close_after(tc->req); /* a tail that ends is a disconnect */
    http_stream_end(tc->req);
    free(tc);
}

static void tail_notice(tail_client *tc, const char *kind, const char *message)
{
    qr_buf b;
    qr_buf_init(&b);
    qr_jsonw_raw(&b, "event: notice\ndata: {\"notice\":");
    qr_jsonw_cstr(&b, kind);
    qr_jsonw_raw(&b, ",\"message\":");
    qr_jsonw_cstr(&b, message);
    if (tc->sent_last_id) {
        qr_jsonw_raw(&b, ",\"last_id\":\"");
        qr_jsonw_uint(&b, tc->sent_last_id);
        qr_jsonw_raw(&b, "\"");
    }
    qr_jsonw_raw(&b, "}\n\n");
    if (qr_buf_ok(&b)) http_stream_write(tc->req, b.data, b.len);
    qr_buf_fini(&b);
}

/* Moves pending events to the socket; drops a subscriber that cannot keep up. */
static void tail_client_flush(server *s, tail_client *tc)
{
    if (!tc->req->conn) { /* the client went away */
        tail_client_close(s, tc, false);
        return;
    }
    qr_buf out;
    qr_buf_init(&out);
    uint64_t last = 0;
    bool overflow = tail_sub_take(tc->sub, &out, &last);
    bool slow = overflow;
    if (out.len) {
        if (http_stream_pending_bytes(tc->req) + out.len > s->cfg->tail_subscriber_bytes) {
            slow = true; /* the socket does not drain: do not queue more */
        } else if (!http_stream_write(tc->req, out.data, out.len)) {
            qr_buf_fini(&out);
            tail_client_close(s, tc, false);
            return;
        } else {
            tc->sent_last_id = last;
        }
    }
    qr_buf_fini(&out);
    if (slow) {
        tail_notice(tc, "slow_subscriber",
                    "disconnected: events arrived faster than this client read them; reconnect "
                    "with Last-Event-ID to resume");
        tail_client_close(s, tc, true);
    }
}

static void on_tail_async(uv_async_t *a)
{
    server *s = a->data;
    tail_client *tc = s->tail_clients;
    while (tc) {
        tail_client *next = tc->next;
        tail_client_flush(s, tc);
        tc = next;
    }
}

static void on_heartbeat_timer(uv_timer_t *t)
{
    server *s = t->data;
    tail_client *tc = s->tail_clients;
    while (tc) {
        tail_client *next = tc->next;
        if (!tc->req->conn || !http_stream_write(tc->req, ": heartbeat\n\n", 13))
            tail_client_close(s, tc, false);
        tc = next;
        (void)next;
    }
}

static void tail_wake(void *ctx)
{
    server *s = ctx;
    uv_async_send(&s->tail_async);
}

static void tail_close_all(server *s, const char *why)
{
    while (s->tail_clients) {
        tail_notice(s->tail_clients, "shutting_down", why);
        tail_client_close(s, s->tail_clients, false);
    }
}

static void tail_start(server *s, http_req *req, size_t tenant_idx)
{
    if (!s->tail) {
        http_respond_error(req, 503, "out_of_memory", "live tail is unavailable", NULL, NULL);
        return;
    }
    char query[8192], service[2048], level[256], q[4096], last[64];
    bool has_query = http_req_query_param(req, "query", query, sizeof query);
    bool has_service = http_req_query_param(req, "service", service, sizeof service);
    bool has_level = http_req_query_param(req, "level", level, sizeof level);
    bool has_q = http_req_query_param(req, "q", q, sizeof q);
    if ((has_query && strlen(query) >= sizeof query - 1) || (has_q && strlen(q) >= sizeof q - 1) ||
        (has_service && strlen(service) >= sizeof service - 1)) {
        http_respond_error(req, 400, "invalid_request", "a tail parameter is too long", NULL, NULL);
        return;
    }
    if (has_query && (has_service || has_level || has_q)) {
        http_respond_error(req, 400, "invalid_request",
                           "use either query= or service=/level=/q=, not both", NULL, NULL);
        return;
    }
    evf *f = NULL;
    qr_diag d;
    qr_diag_init(&d);
    int rc = has_query ? evf_compile_logql(query, strlen(query), &f, &d)
                       : evf_compile_params(has_service ? service : NULL, has_level ? level : NULL,
                                            has_q ? q : NULL, &f, &d);
    if (rc) {
        char extra[120] = "";
        if (rc == QR_ESYNTAX && d.line > 0)
            snprintf(extra, sizeof extra, ",\"line\":%d,\"column\":%d,\"offset\":%lld", d.line,
                     d.column, (long long)d.offset);
        http_respond_error(req, rc == QR_ENOMEM ? 503 : 400,
                           rc == QR_ENOMEM    ? "out_of_memory"
                           : rc == QR_ESYNTAX ? "syntax"
                                              : "invalid_request",
                           d.msg[0] ? d.msg : qr_strerror(rc), extra, NULL);
        return;
    }
    tail_hub_stats st;
    tail_hub_get_stats(s->tail, &st);
    if (st.subscribers >= s->cfg->tail_subscribers) {
        evf_free(f);
        http_respond_error(req, 503, "overloaded", "too many live tail subscribers", NULL,
                           "Retry-After: 5\r\n");
        return;
    }
    size_t ll = 0;
    const char *lh = http_req_header(req, "last-event-id", &ll);
    bool has_last = false;
    uint64_t last_id = 0;
    if (lh && ll && ll < sizeof last) {
        memcpy(last, lh, ll);
        last[ll] = 0;
        has_last = true;
    } else if (http_req_query_param(req, "last_event_id", last, sizeof last) && last[0]) {
        has_last = true;
    }
    if (has_last) {
        char *end = NULL;
        unsigned long long v = strtoull(last, &end, 10);
        if (!end || *end || last[0] == '-') {
            evf_free(f);
            http_respond_error(req, 400, "invalid_request",
                               "Last-Event-ID must be an id of an earlier tail event", NULL, NULL);
            return;
        }
        last_id = v;
    }
    tail_client *tc = calloc(1, sizeof *tc);
    if (!tc) {
        evf_free(f);
        http_respond_error(req, 503, "out_of_memory", "out of memory", NULL, NULL);
        return;
    }
    tc->req = req;
    tc->sent_last_id = last_id;
    http_stream_begin(req, 200, "text/event-stream",
                      "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
    char hello[96];
    int n = snprintf(hello, sizeof hello, "retry: 1000\n: subscribed at id %llu\n\n",
                     (unsigned long long)st.next_id);
    http_stream_write(req, hello, (size_t)n);
    tc->sub = tail_hub_subscribe(s->tail, tenant_idx, f, has_last, last_id, tc);
    if (!tc->sub) {
        free(tc);
        http_stream_end(req);
        return;
    }
    tc->next = s->tail_clients;
    if (s->tail_clients) s->tail_clients->prev = tc;
    s->tail_clients = tc;
    tail_client_flush(s, tc); /* the replay, if any */
}

static job *job_new(server *s, http_req *req)
{
    job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->srv = s;
    j->req = req;
    j->route = req->user_route;
    j->tenant_idx = (size_t)(uintptr_t)req->user;
    j->work.data = j;
    qr_diag_init(&j->diag);
    qr_buf_init(&j->out);
    return j;
}

/* ---- small routes ---- */

static void respond_text(http_req *req, int status, const char *ctype, const char *text)
{
    http_respond(req, status, ctype, NULL, text, strlen(text));
}

static void render_metrics(server *s, qr_buf *o)
{
    db_stats st;
    memset(&st, 0, sizeof st);
    if (s->ready) db_get_stats(s->db, &st);
    char lab[400];
    metrics_head(o, "quarry_up", "gauge", "1 while the server runs; quarry_ready is 1 once open");
    metrics_sample_u64(o, "quarry_up", "", 1);
    metrics_head(o, "quarry_ready", "gauge", "1 once the data directory is open and recovered");
    metrics_sample_u64(o, "quarry_ready", "", s->ready && !s->shutting_down);
    metrics_head(o, "quarry_uptime_seconds", "gauge", "seconds since start");
    metrics_sample_f64(o, "quarry_uptime_seconds", "",
                       (double)(qr_monotonic_ns() - s->start_ns) / 1e9);

    static const struct {
        const char *name, *help;
        size_t off;
    } tc[] = {
        {"quarry_ingest_events_total", "events accepted (durable)", offsetof(tenant_state, events)},
        {"quarry_ingest_bytes_total", "decoded event bytes accepted",
         offsetof(tenant_state, bytes)},
        {"quarry_ingest_rejected_events_total", "events rejected individually (bad event)",
         offsetof(tenant_state, rejected)},
        {"quarry_ingest_throttled_requests_total", "ingest requests answered 429 (quota)",
         offsetof(tenant_state, throttled)},
    };
    for (size_t m = 0; m < sizeof tc / sizeof tc[0]; m++) {
        metrics_head(o, tc[m].name, "counter", tc[m].help);
        for (size_t t = 0; t < s->tenant_count; t++) {
            qr_buf lb;
            qr_buf_init(&lb);
            qr_jsonw_raw(&lb, "tenant=\"");
            metrics_label_escape(&lb, s->tenants[t].name);
            qr_jsonw_raw(&lb, "\"");
            qr_buf_u8(&lb, 0);
            atomic_uint_fast64_t *ctr =
                (atomic_uint_fast64_t *)((char *)&s->tenants[t] + tc[m].off);
            if (qr_buf_ok(&lb))
                metrics_sample_u64(o, tc[m].name, (char *)lb.data, atomic_load(ctr));
            qr_buf_fini(&lb);
        }
    }
    metrics_head(o, "quarry_http_requests_total", "counter", "HTTP responses by route and status");
    for (int r = 0; r < R_COUNT; r++) {
        for (size_t si = 0; si < STATUS_COUNT; si++) {
            uint64_t v = atomic_load_explicit(&s->requests[r][si], memory_order_relaxed);
            if (!v) continue;
            if (si < STATUS_COUNT - 1)
                snprintf(lab, sizeof lab, "route=\"%s\",status=\"%d\"", ROUTES[r].name,
                         STATUSES[si]);
            else
                snprintf(lab, sizeof lab, "route=\"%s\",status=\"other\"", ROUTES[r].name);
            metrics_sample_u64(o, "quarry_http_requests_total", lab, v);
        }
    }
    metrics_head(o, "quarry_http_connections_open", "gauge", "open client connections");
    metrics_sample_u64(o, "quarry_http_connections_open", "",
                       http_server_open_connections(s->http));
    metrics_head(o, "quarry_http_connections_total", "counter", "accepted client connections");
    metrics_sample_u64(o, "quarry_http_connections_total", "",
                       http_server_accepted_connections(s->http));
    metrics_head(o, "quarry_ingest_request_duration_seconds", "histogram",
                 "ingest request time from headers received to durable answer");
    metrics_hist_render(o, "quarry_ingest_request_duration_seconds", "", &s->ingest_latency);
    metrics_head(o, "quarry_ingest_stage_seconds", "histogram",
                 "ingest request time by stage: queue (waiting for a worker), decode "
                 "(decompress + JSON to events), commit (WAL append, fsync, memtable; includes "
                 "waiting for flushes)");
    static const char *const stages[3] = {"stage=\"queue\"", "stage=\"decode\"",
                                          "stage=\"commit\""};
    for (size_t si = 0; si < 3; si++)
        metrics_hist_render(o, "quarry_ingest_stage_seconds", stages[si], &s->ingest_stage[si]);
    metrics_head(o, "quarry_query_duration_seconds", "histogram",
                 "query request time from headers received to answer, by route");
    static const char *const qroutes[3] = {"route=\"query\"", "route=\"search\"",
                                           "route=\"aggregate\""};
    for (int q = 0; q < 3; q++)
        metrics_hist_render(o, "quarry_query_duration_seconds", qroutes[q], &s->query_latency[q]);
    metrics_head(o, "quarry_queries_running", "gauge", "queries on the worker pool");
    metrics_sample_u64(o, "quarry_queries_running", "", s->queries_running);
    metrics_head(o, "quarry_query_streams_abandoned_total", "counter",
                 "streamed /v1/query results stopped because the client left");
    metrics_sample_u64(o, "quarry_query_streams_abandoned_total", "",
                       atomic_load_explicit(&s->streams_abandoned, memory_order_relaxed));
    if (s->msg_cache) {
        exec_msg_cache_stat mc;
        exec_msg_cache_stats(s->msg_cache, &mc);
        metrics_head(o, "quarry_msg_cache_bytes", "gauge",
                     "result rows' messages kept across queries ([limits] msg_cache_bytes)");
        metrics_sample_u64(o, "quarry_msg_cache_bytes", "", mc.used_bytes);
        metrics_head(o, "quarry_msg_cache_hits_total", "counter",
                     "result rows whose message came from the cache");
        metrics_sample_u64(o, "quarry_msg_cache_hits_total", "", mc.hits);
        metrics_head(o, "quarry_msg_cache_misses_total", "counter",
                     "result rows whose message was read from a segment");
        metrics_sample_u64(o, "quarry_msg_cache_misses_total", "", mc.misses);
    }
    metrics_head(o, "quarry_queries_cancelled_total", "counter",
                 "queries stopped because their client closed the connection");
    metrics_sample_u64(o, "quarry_queries_cancelled_total", "",
                       atomic_load_explicit(&s->queries_cancelled, memory_order_relaxed));
    if (s->tail) {
        tail_hub_stats ts;
        tail_hub_get_stats(s->tail, &ts);
        metrics_head(o, "quarry_tail_subscribers", "gauge", "open GET /v1/tail streams");
        metrics_sample_u64(o, "quarry_tail_subscribers", "", ts.subscribers);
        metrics_head(o, "quarry_tail_events_published_total", "counter",
                     "acknowledged events given tail ids (while tail is in use)");
        metrics_sample_u64(o, "quarry_tail_events_published_total", "", ts.events_published);
        metrics_head(o, "quarry_tail_events_delivered_total", "counter",
                     "matching events queued to subscribers");
        metrics_sample_u64(o, "quarry_tail_events_delivered_total", "", ts.events_delivered);
        metrics_head(o, "quarry_tail_subscribers_dropped_total", "counter",
                     "slow subscribers disconnected with a notice");
        metrics_sample_u64(o, "quarry_tail_subscribers_dropped_total", "", ts.subscribers_dropped);
        metrics_head(o, "quarry_tail_ring_events", "gauge", "recent events held for resume");
        metrics_sample_u64(o, "quarry_tail_ring_events", "", ts.ring_events);
        metrics_head(o, "quarry_tail_ring_bytes", "gauge",
                     "bytes of recent events held for resume");
        metrics_sample_u64(o, "quarry_tail_ring_bytes", "", ts.ring_bytes);
    }
    metrics_head(o, "quarry_worker_jobs_pending", "gauge",
                 "decode/ingest/read jobs queued or running");
    metrics_sample_u64(o, "quarry_worker_jobs_pending", "", s->jobs_pending);
    metrics_head(o, "quarry_inflight_body_bytes", "gauge", "request bodies held by pending jobs");
    metrics_sample_u64(o, "quarry_inflight_body_bytes", "", s->inflight_bytes);

    metrics_head(o, "quarry_wal_appends_total", "counter", "WAL records made durable");
    metrics_sample_u64(o, "quarry_wal_appends_total", "", st.wal.appends);
    metrics_head(o, "quarry_wal_fsyncs_total", "counter", "WAL fdatasync calls (group commits)");
    metrics_sample_u64(o, "quarry_wal_fsyncs_total", "", st.wal.fsyncs);
    metrics_head(
        o, "quarry_wal_fsync_seconds", "histogram",
        "WAL fdatasync latency, each call observed (group commits, rotations, interval syncs)");
    metrics_hist_render(o, "quarry_wal_fsync_seconds", "", &s->wal_fsync);
    metrics_head(o, "quarry_wal_bytes_written_total", "counter", "WAL bytes written (compressed)");
    metrics_sample_u64(o, "quarry_wal_bytes_written_total", "", st.wal.bytes_written);
    metrics_head(o, "quarry_wal_files", "gauge", "WAL files on disk");
    metrics_sample_u64(o, "quarry_wal_files", "", st.wal.files);
    metrics_head(o, "quarry_wal_failed", "gauge", "1 once a WAL write or fsync failed");
    metrics_sample_u64(o, "quarry_wal_failed", "", st.wal.is_failed ? 1 : 0);
    metrics_head(o, "quarry_tenants", "gauge", "tenants with data");
    metrics_sample_u64(o, "quarry_tenants", "", st.tenants);
    metrics_head(o, "quarry_segments", "gauge", "live segment files");
    metrics_sample_u64(o, "quarry_segments", "", st.segments);
    metrics_head(o, "quarry_segment_rows", "gauge", "rows in segments");
    metrics_sample_u64(o, "quarry_segment_rows", "", st.segment_rows);
    metrics_head(o, "quarry_segment_bytes", "gauge", "bytes of segment files");
    metrics_sample_u64(o, "quarry_segment_bytes", "", st.segment_bytes);
    metrics_head(o, "quarry_memtable_rows", "gauge", "rows in memtables (active + frozen)");
    metrics_sample_u64(o, "quarry_memtable_rows", "", st.memtable_rows);
    metrics_head(o, "quarry_memtable_bytes", "gauge", "bytes held by memtables");
    metrics_sample_u64(o, "quarry_memtable_bytes", "", st.memtable_bytes);
    metrics_head(o, "quarry_memtables_frozen", "gauge", "memtables waiting for flush");
    metrics_sample_u64(o, "quarry_memtables_frozen", "", st.frozen_memtables);
    metrics_head(o, "quarry_flushes_total", "counter", "memtable flushes into segments");
    metrics_sample_u64(o, "quarry_flushes_total", "", st.flushes);
    if (s->alerts) {
        alert_mgr_stats as;
        alert_mgr_stats_get(s->alerts, &as);
        static const struct {
            const char *name, *type, *help;
        } am[] = {
            {"quarry_alert_rules", "gauge", "alert rules defined"},
            {"quarry_alert_instances", "gauge", "alert instances (rule x group) tracked"},
            {"quarry_alert_pending", "gauge", "alert instances pending (waiting FOR)"},
            {"quarry_alert_firing", "gauge", "alert instances firing"},
            {"quarry_alert_evaluations_total", "counter", "rule evaluations"},
            {"quarry_alert_transitions_total", "counter", "alert state changes"},
            {"quarry_alert_events_matched_total", "counter", "events that updated an alert"},
            {"quarry_alert_events_dropped_total", "counter",
             "events too late for their slot, or of groups over the limit"},
            {"quarry_alert_notifications_sent_total", "counter", "notifications delivered"},
            {"quarry_alert_notifications_failed_total", "counter",
             "notifications given up after retries"},
            {"quarry_alert_notifications_dropped_total", "counter",
             "notifications refused: queue full"},
            {"quarry_alert_notification_retries_total", "counter", "notification retries"},
            {"quarry_alert_notification_queue_depth", "gauge",
             "notifications queued, in flight or waiting to retry"},
        };
        const uint64_t vals[] = {as.rules,          as.instances,      as.pending,
                                 as.firing,         as.evaluations,    as.transitions,
                                 as.events_matched, as.events_dropped, as.notify.sent,
                                 as.notify.failed,  as.notify.dropped, as.notify.retries,
                                 as.notify.depth};
        for (size_t idx = 0; idx < sizeof vals / sizeof vals[0]; idx++) {
            metrics_head(o, am[idx].name, am[idx].type, am[idx].help);
            metrics_sample_u64(o, am[idx].name, "", vals[idx]);
        }
    }
    if (s->demo) {
        metrics_head(o, "quarry_demo_events_total", "counter", "events generated by --demo");
        metrics_sample_u64(o, "quarry_demo_events_total", "", s->demo_events);
    }
}

/* ---- hooks ---- */

static int route_find(const char *path, const char *method, bool *method_ok)
{
    if (alert_route_match(path)) {
        *method_ok = true; /* alert_routes answers 405 itself */
        return R_ALERTS;
    }
    if (rollup_api_path(path)) { /* one path with a name, several methods: rollup_api checks */
        *method_ok = true;
        return rollup_api_is_admin(method) ? R_ROLLUPS_ADMIN : R_ROLLUPS;
    }
    for (int r = 1; r < R_COUNT; r++) {
        if (strcmp(ROUTES[r].path, path) == 0) {
            *method_ok = strcmp(ROUTES[r].method, method) == 0;
            return r;
        }
    }
    return R_OTHER;
}

static void on_head(void *ctx, http_req *req)
{
    server *s = ctx;
    bool method_ok = false;
    int r = route_find(req->path, req->method, &method_ok);
    req->user_route = r;
    if (r == R_OTHER) {
        char msg[200];
        snprintf(msg, sizeof msg, "no route for %.100s", req->path);
        http_respond_error(req, 404, "not_found", msg, NULL, NULL);
        return;
    }
    if (!method_ok) {
        char msg[160], allow[64];
        snprintf(msg, sizeof msg, "%s does not accept %s (only %s)", ROUTES[r].path, req->method,
                 ROUTES[r].method);
        snprintf(allow, sizeof allow, "Allow: %s\r\n", ROUTES[r].method);
        http_respond_error(req, 405, "method_not_allowed", msg, NULL, allow);
        return;
    }
    size_t tenant_idx = 0;
    if (!s->open_mode && ROUTES[r].scope) {
        size_t len = 0;
        const char *auth = http_req_header(req, "authorization", &len);
        const char *key = NULL;
        size_t key_len = 0;
        if (auth && len > 7 && strncasecmp(auth, "Bearer ", 7) == 0) {
            key = auth + 7;
            key_len = len - 7;
            while (key_len && *key == ' ') key++, key_len--;
        }
        if (!key || !key_len) {
            http_respond_error(req, 401, "unauthorized",
                               "missing API key: send Authorization: Bearer <key>", NULL,
                               "WWW-Authenticate: Bearer\r\n");
            return;
        }
        uint32_t scopes = 0;
        int t = config_key_lookup(s->cfg, key, key_len, &scopes);
        if (t < 0) {
            http_respond_error(req, 401, "unauthorized", "unknown API key", NULL,
                               "WWW-Authenticate: Bearer\r\n");
            return;
        }
        uint32_t need = ROUTES[r].scope;
        if (r == R_ALERTS && strcmp(req->method, "GET") != 0) need = CONFIG_SCOPE_ADMIN;
        if (!(scopes & need)) {
            char msg[160];
            snprintf(msg, sizeof msg, "this API key lacks the \"%s\" scope",
                     need == CONFIG_SCOPE_INGEST  ? "ingest"
                     : need == CONFIG_SCOPE_QUERY ? "query"
                                                  : "admin");
            http_respond_error(req, 403, "forbidden", msg, NULL, NULL);
            return;
        }
        tenant_idx = (size_t)t;
    }
    req->user = (void *)(uintptr_t)tenant_idx;
    switch (r) {
    case R_HEALTHZ:
        respond_text(req, 200, "application/json", "{\"status\":\"ok\"}\n");
        return;
    case R_READYZ:
        if (s->shutting_down)
            http_respond_error(req, 503, "shutting_down", "the server is shutting down", NULL,
                               NULL);
        else if (!s->ready)
            http_respond_error(req, 503, "not_ready", "recovering the data directory", NULL,
                               "Retry-After: 1\r\n");
        else
            respond_text(req, 200, "application/json", "{\"status\":\"ready\"}\n");
        return;
    case R_METRICS: {
        qr_buf o;
        qr_buf_init(&o);
        render_metrics(s, &o);
        if (qr_buf_ok(&o))
            http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, o.data, o.len);
        else
            http_respond_error(req, 503, "out_of_memory", "out of memory", NULL, NULL);
        qr_buf_fini(&o);
        return;
    }
    default:
        break;
    }
    if (ROUTES[r].needs_db && !s->ready) {
        http_respond_error(req, 503, s->shutting_down ? "shutting_down" : "not_ready",
                           s->shutting_down ? "the server is shutting down"
                                            : "recovering the data directory",
                           NULL, "Retry-After: 1\r\n");
        return;
    }
    if (route_is_query(r) && s->queries_running >= s->queries_max) {
        http_respond_error(req, 503, "overloaded", "too many queries running; retry shortly", NULL,
                           "Retry-After: 1\r\n");
        return;
    }
    if (r == R_INGEST || r == R_INGEST_NDJSON) {
        tenant_state *t = &s->tenants[tenant_idx];
        atomic_fetch_add(&t->requests, 1);
        uint32_t wait = quota_wait_seconds(t);
        if (wait) {
            atomic_fetch_add(&t->throttled, 1);
            char hdr[48], msg[160];
            snprintf(hdr, sizeof hdr, "Retry-After: %u\r\n", wait);
            snprintf(msg, sizeof msg, "tenant \"%s\" is over its ingest quota; retry in %u s",
                     t->name, wait);
            http_respond_error(req, 429, "quota_exceeded", msg, NULL, hdr);
            return;
        }
        size_t enc_len = 0;
        const char *enc = http_req_header(req, "content-encoding", &enc_len);
        if (enc && enc_len) {
            qr_diag dd;
            qr_diag_init(&dd);
            const uint8_t *dp;
            size_t dl;
            /* probe the encoding name only (empty body) */
            qr_buf tmp;
            qr_buf_init(&tmp);
            int rc =
                ingest_decompress(enc, enc_len, (const uint8_t *)"", 0, 0, &tmp, &dp, &dl, &dd);
            qr_buf_fini(&tmp);
            if (rc == QR_EINVAL) {
                http_respond_error(req, 415, "unsupported_encoding", dd.msg, NULL, NULL);
                return;
            }
        }
        if (req->content_length != UINT64_MAX &&
            s->inflight_bytes + req->content_length > s->cfg->inflight_bytes) {
            http_respond_error(req, 503, "overloaded",
                               "too many request bodies in progress; retry shortly", NULL,
                               "Retry-After: 1\r\n");
            return;
        }
    }
}

static void on_body(void *ctx, http_req *req)
{
    server *s = ctx;
    int r = req->user_route;
    if (!s->ready) { /* shut down between head and body */
        http_respond_error(req, 503, "shutting_down", "the server is shutting down", NULL, NULL);
        return;
    }
    if (r == R_TAIL) {
        tail_start(s, req, (size_t)(uintptr_t)req->user);
        return;
    }
    if (route_is_query(r) && s->queries_running >= s->queries_max) {
        http_respond_error(req, 503, "overloaded", "too many queries running; retry shortly", NULL,
                           "Retry-After: 1\r\n");
        return;
    }
    if ((r == R_INGEST || r == R_INGEST_NDJSON) &&
        s->inflight_bytes + req->body_len > s->cfg->inflight_bytes) {
        http_respond_error(req, 503, "overloaded",
                           "too many request bodies in progress; retry shortly", NULL,
                           "Retry-After: 1\r\n");
        return;
    }
    job *j = job_new(s, req);
    if (!j) {
        http_respond_error(req, 503, "out_of_memory", "out of memory", NULL, NULL);
        return;
    }
    int rc;
    if (r == R_INGEST || r == R_INGEST_NDJSON) {
        size_t enc_len = 0;
        const char *enc = http_req_header(req, "content-encoding", &enc_len);
        if (enc && enc_len >= sizeof j->encoding) enc_len = sizeof j->encoding - 1;
        if (enc) memcpy(j->encoding, enc, enc_len);
        j->encoding_len = enc_len;
        j->body = req->body;
        j->body_len = req->body_len;
        j->queued_ns = qr_monotonic_ns();
        rc = uv_queue_work(&s->loop, &j->work, work_ingest, after_ingest);
    } else if (r == R_SERVICES || r == R_FIELDS) {
        rc = uv_queue_work(&s->loop, &j->work, work_discover, after_discover);
    } else if (r == R_ALERTS) {
        j->body = req->body;
        j->body_len = req->body_len;
        rc = uv_queue_work(&s->loop, &j->work, work_alerts, after_alerts);
    } else if (r == R_ROLLUPS || r == R_ROLLUPS_ADMIN) {
        j->body = req->body;
        j->body_len = req->body_len;
        rc = uv_queue_work(&s->loop, &j->work, work_rollups, after_rollups);
    } else if (route_is_query(r)) {
        size_t enc_len = 0, acc_len = 0;
        const char *enc = http_req_header(req, "content-encoding", &enc_len);
        if (enc && enc_len >= sizeof j->encoding) enc_len = sizeof j->encoding - 1;
        if (enc) memcpy(j->encoding, enc, enc_len);
        j->encoding_len = enc_len;
        const char *acc = http_req_header(req, "accept", &acc_len);
        j->ndjson = r == R_QUERY && acc && acc_len >= 20 &&
                    memmem(acc, acc_len, "application/x-ndjson", 20) != NULL;
        j->body = req->body;
        j->body_len = req->body_len;
        rc = 0;
        if (r == R_QUERY) {
            pthread_mutex_init(&j->stream_mu, NULL);
            pthread_condattr_t ca;
            pthread_condattr_init(&ca);
            pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* deadlines are monotonic */
            pthread_cond_init(&j->stream_cv, &ca);
            pthread_condattr_destroy(&ca);
            qr_buf_init(&j->stream_buf);
            uv_async_init(&s->loop, &j->stream_async, on_stream_async);
            uv_timer_init(&s->loop, &j->stream_timer);
            j->stream_async.data = j->stream_timer.data = j;
            j->stream_handles = true;
        }
        if (!rc) rc = uv_queue_work(&s->loop, &j->work, work_query, after_query);
        if (!rc) s->queries_running++;
    } else {
        rc = -1;
    }
    if (rc) {
        job_free(j);
        http_respond_error(req, 500, "internal", "cannot queue the request", NULL, NULL);
        return;
    }
    s->jobs_pending++;
    s->inflight_bytes += j->body_len;
}

/* ---- demo trickle ---- */

typedef struct demo_job {
    uv_work_t work;
    server *srv;
    int64_t until_ns;
    uint64_t events;
    int rc;
    qr_diag diag;
} demo_job;

static void work_demo(uv_work_t *w)
{
    demo_job *dj = w->data;
    server *s = dj->srv;
    qr_buf line;
    qr_buf_init(&line);
    qr_batch b;
    qr_batch_init(&b);
    evdec_opts eo = {NULL, NULL, qr_now_ns()};
    uint64_t cap = (uint64_t)(s->cfg->demo_rate * 2) + 10; /* at most 2 s of catch-up per tick */
    while (qr_gen_next_ts(s->gen) <= dj->until_ns && b.count < cap) {
        line.len = 0;
        qr_gen_next_ndjson(s->gen, &line);
        qr_diag dd;
        qr_diag_init(&dd);
        evdec_ndjson_line((const char *)line.data, line.len, &eo, &b, &dd);
    }
    /* skip what could not be generated in time rather than fall further behind */
    while (qr_gen_next_ts(s->gen) <= dj->until_ns - QR_NS_PER_SEC) {
        line.len = 0;
        qr_gen_next_ndjson(s->gen, &line);
    }
    dj->events = b.count;
    if (b.count)
        dj->rc = tail_hub_ingest(s->tail, s->db, s->demo_tenant, s->tenants[s->demo_tenant].name,
                                 &b, &dj->diag);
    qr_batch_fini(&b);
    qr_buf_fini(&line);
}

static void after_demo(uv_work_t *w, int status)
{
    demo_job *dj = w->data;
    server *s = dj->srv;
    s->demo_busy = false;
    s->jobs_pending--;
    if (dj->rc)
        logf_(s, "demo: ingest failed: %s", dj->diag.msg);
    else {
        s->demo_events += dj->events;
        atomic_fetch_add(&s->tenants[s->demo_tenant].events, dj->events);
    }
    free(dj);
}

static void on_demo_timer(uv_timer_t *t)
{
    server *s = t->data;
    if (s->demo_busy || !s->ready || s->shutting_down) return;
    demo_job *dj = calloc(1, sizeof *dj);
    if (!dj) return;
    dj->srv = s;
    dj->until_ns = qr_now_ns();
    dj->work.data = dj;
    qr_diag_init(&dj->diag);
    if (uv_queue_work(&s->loop, &dj->work, work_demo, after_demo) != 0) {
        free(dj);
        return;
    }
    s->demo_busy = true;
    s->jobs_pending++;
}

/* ---- life cycle ---- */

static void on_stats_timer(uv_timer_t *t)
{
    server *s = t->data;
    if (!s->ready) return;
    db_get_stats(s->db, &s->last_stats);
}

/* Every WAL fdatasync, from the thread that ran it (the histogram is atomics). */
static void on_wal_fsync(void *ctx, uint64_t ns)
{
    server *s = ctx;
    metrics_hist_observe(&s->wal_fsync, ns, 1);
}

static int write_addr_file(server *s)
{
    char text[128];
    int n = snprintf(text, sizeof text, "%s\n", http_server_addr(s->http));
    qr_diag d;
    qr_diag_init(&d);
    int rc = qr_fs_write_atomic(s->addr_path, text, (size_t)n, &d);
    if (rc)
        logf_(s, "cannot write %s: %s", s->addr_path, d.msg);
    else
        s->addr_written = true;
    return rc;
}

static void work_open(uv_work_t *w)
{
    server *s = w->data;
    qr_diag_init(&s->open_diag);
    db_opts dbo = s->cfg->db;
    dbo.wal.on_fsync = on_wal_fsync;
    dbo.wal.on_fsync_ctx = s;
    int rc = db_open(s->data_dir, &dbo, &s->db, &s->replay, &s->open_diag);
    if (!rc) {
        /* alert rules observe every batch: open them before the first ingest */
        char base[160];
        snprintf(base, sizeof base, "http://%s", http_server_addr(s->http));
        alert_mgr_opts ao;
        memset(&ao, 0, sizeof ao);
        ao.base_url = base;
        qr_diag_init(&s->alerts_diag);
        if (alert_mgr_open(s->db, &ao, &s->alerts, &s->alerts_diag) != 0) s->alerts = NULL;
        if (s->cfg->msg_cache_bytes) s->msg_cache = exec_msg_cache_new(s->cfg->msg_cache_bytes);
    }
    if (rc) {
        s->db = NULL;
        if (!s->open_diag.msg[0])
            snprintf(s->open_diag.msg, sizeof s->open_diag.msg, "%s", qr_strerror(rc));
        s->open_diag.code = rc;
        return;
    }
    /* rollups before any ingest; a failure leaves the server up without them */
    qr_diag_init(&s->rollups_diag);
    rc = rollup_mgr_open(s->db, NULL, &s->rollups, &s->rollups_diag);
    if (rc) {
        s->rollups = NULL;
        if (!s->rollups_diag.msg[0])
            snprintf(s->rollups_diag.msg, sizeof s->rollups_diag.msg, "%s", qr_strerror(rc));
    }
}

static void after_open(uv_work_t *w, int status)
{
    server *s = w->data;
    s->open_done = true;
    s->jobs_pending--;
    if (!s->db) {
        logf_(s, "cannot open %s: %s", s->data_dir, s->open_diag.msg);
        s->exit_code = s->open_diag.code == QR_EBUSY ? QR_EBUSY : QR_EIO;
        server_begin_shutdown(s);
        return;
    }
    if (!s->alerts) logf_(s, "alerts are not running: %s", s->alerts_diag.msg);
    if (s->replay.events)
        logf_(s, "recovered %llu events from %llu WAL records",
              (unsigned long long)s->replay.events, (unsigned long long)s->replay.records);
    if (s->replay.skipped_offset >= 0 && s->replay.skipped_file[0])
        logf_(s, "WAL: skipped %llu bytes from %s offset %lld (%s)",
              (unsigned long long)s->replay.skipped_bytes, s->replay.skipped_file,
              (long long)s->replay.skipped_offset, s->replay.skipped_reason);
    if (!s->rollups)
        logf_(s, "rollups not opened: %s", s->rollups_diag.msg);
    else if (s->rollups_diag.code)
        logf_(s, "%s", s->rollups_diag.msg);
    if (s->shutting_down) return;
    s->ready = true;
    write_addr_file(s);
    on_stats_timer(&s->stats_timer);
    logf_(s, "ready: http://%s (data %s)", http_server_addr(s->http), s->data_dir);
    if (s->opts.on_ready) s->opts.on_ready(s->opts.ctx, http_server_addr(s->http));
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void close_walk(uv_handle_t *h, void *arg) { close_handle(h); }

static void on_drain_timer(uv_timer_t *t)
{
    server *s = t->data;
    if (!http_server_done(s->http) || s->jobs_pending) return;
    /* everything answered: close the remaining handles so uv_run returns */
    close_handle((uv_handle_t *)&s->drain_timer);
    close_handle((uv_handle_t *)&s->shutdown_timer);
    close_handle((uv_handle_t *)&s->stats_timer);
    close_handle((uv_handle_t *)&s->demo_timer);
    close_handle((uv_handle_t *)&s->heartbeat_timer);
    close_handle((uv_handle_t *)&s->tail_async);
    close_handle((uv_handle_t *)&s->commit_async);
    close_handle((uv_handle_t *)&s->sig_term);
    close_handle((uv_handle_t *)&s->sig_int);
}

static void on_shutdown_timer(uv_timer_t *t)
{
    server *s = t->data;
    logf_(s, "shutdown timeout: closing %llu connections",
          (unsigned long long)http_server_open_connections(s->http));
    http_server_close_all(s->http);
}

static void server_begin_shutdown(server *s)
{
    if (s->shutting_down) return;
    s->shutting_down = true;
    uv_timer_stop(&s->demo_timer);
    tail_close_all(s, "the server is shutting down");
    http_server_close(s->http);
    uv_timer_start(&s->shutdown_timer, on_shutdown_timer, s->cfg->shutdown_timeout_ms, 0);
    uv_timer_start(&s->drain_timer, on_drain_timer, 0, 10);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    server *s = sig->data;
    if (s->shutting_down) {
        logf_(s, "second signal: closing every connection now");
        tail_close_all(s, "the server is shutting down");
        http_server_close_all(s->http);
        return;
    }
    logf_(s, "%s: finishing in-flight requests, then flushing",
          signum == SIGINT ? "SIGINT" : "SIGTERM");
    server_begin_shutdown(s);
}

static int tenants_init(server *s)
{
    const config *c = s->cfg;
    s->open_mode = c->key_count == 0;
    if (s->open_mode) {
        s->tenant_count = 1;
        s->tenants = calloc(1, sizeof *s->tenants);
        if (!s->tenants) return QR_ENOMEM;
        s->tenants[0].name = DB_DEFAULT_TENANT;
        s->tenants[0].cfg = config_tenant_find(c, DB_DEFAULT_TENANT);
    } else {
        s->tenant_count = c->tenant_count;
        s->tenants = calloc(c->tenant_count, sizeof *s->tenants);
        if (!s->tenants) return QR_ENOMEM;
        for (size_t idx = 0; idx < c->tenant_count; idx++) {
            s->tenants[idx].name = c->tenants[idx].name;
            s->tenants[idx].cfg = &c->tenants[idx];
        }
        /* the demo writes to "default" when such a tenant is configured, else the first one */
        const config_tenant *def = config_tenant_find(c, DB_DEFAULT_TENANT);
        s->demo_tenant = def ? (size_t)(def - c->tenants) : 0;
    }
    int64_t now = qr_monotonic_ns();
    for (size_t idx = 0; idx < s->tenant_count; idx++) {
        tenant_state *t = &s->tenants[idx];
        t->refill_ns = now;
        if (t->cfg) {
            double burst = t->cfg->burst_seconds > 0 ? t->cfg->burst_seconds : 1;
            t->event_tokens = t->cfg->events_per_sec * burst;
            t->byte_tokens = t->cfg->bytes_per_sec * burst;
        }
    }
    return 0;
}

int server_run(const server_opts *o, qr_diag *d)
{
    const config *c = o->cfg;
    if (c->key_count == 0 && !server_addr_is_loopback(c->listen))
        return qr_diag_set(d, QR_EINVAL,
                           "no API keys are configured, so the server only listens on loopback "
                           "(127.0.0.1 or [::1]), not %s: add [tenant NAME] keys to the config",
                           c->listen);
    server *s = calloc(1, sizeof *s);
    if (!s) return QR_ENOMEM;
    s->cfg = c;
    s->opts = *o;
    s->data_dir = o->data_dir;
    s->log = o->log ? o->log : stderr;
    s->demo = o->demo;
    s->start_ns = qr_monotonic_ns();
    snprintf(s->addr_path, sizeof s->addr_path, "%s/server.addr", o->data_dir);
    int rc = tenants_init(s);
    if (rc) {
        free(s);
        return qr_diag_set(d, rc, "out of memory");
    }
    /* a client that closes while we write must not kill the process: libuv's writes report
     * EPIPE instead (the default SIGPIPE action terminates, silently) */
    signal(SIGPIPE, SIG_IGN);
    /* libuv sizes its thread pool once, from the environment, at the first queued work */
    char nthreads[16];
    snprintf(nthreads, sizeof nthreads, "%u", c->workers + 1);
    setenv("UV_THREADPOOL_SIZE", nthreads, 1);
    uv_loop_init(&s->loop);
    http_handlers h = {s, on_head, on_body, on_response};
    rc = http_server_new(&s->loop, c->listen, &c->http, &h, &s->http, d);
    if (rc) {
        uv_loop_close(&s->loop);
        free(s->tenants);
        free(s);
        return rc;
    }
    uv_signal_init(&s->loop, &s->sig_term);
    uv_signal_init(&s->loop, &s->sig_int);
    s->sig_term.data = s->sig_int.data = s;
    uv_signal_start(&s->sig_term, on_signal, SIGTERM);
    uv_signal_start(&s->sig_int, on_signal, SIGINT);
    uv_timer_init(&s->loop, &s->stats_timer);
    uv_timer_init(&s->loop, &s->demo_timer);
    uv_timer_init(&s->loop, &s->shutdown_timer);
    uv_timer_init(&s->loop, &s->drain_timer);
    s->stats_timer.data = s->demo_timer.data = s->shutdown_timer.data = s->drain_timer.data = s;
    uv_timer_start(&s->stats_timer, on_stats_timer, 250, 250);
    s->queries_max = c->queries_max ? c->queries_max : (c->workers / 2 ? c->workers / 2 : 1);
    tail_hub_opts to = {(size_t)c->tail_ring_bytes, (size_t)c->tail_subscriber_bytes,
                        (int64_t)c->tail_resume_window_ms * QR_NS_PER_MS, tail_wake, s};
    if (tail_hub_new(&to, &s->tail) != 0) logf_(s, "live tail disabled: out of memory");
    uv_async_init(&s->loop, &s->tail_async, on_tail_async);
    s->tail_async.data = s;
    pthread_mutex_init(&s->commit_mu, NULL);
    pthread_cond_init(&s->commit_cv, NULL);
    uv_async_init(&s->loop, &s->commit_async, on_commit_async);
    s->commit_async.data = s;
    size_t committers = c->workers > 2 ? c->workers : 2;
    s->committers = calloc(committers, sizeof *s->committers);
    for (size_t ci = 0; s->committers && ci < committers; ci++)
        if (pthread_create(&s->committers[s->committer_count], NULL, committer_main, s) == 0)
            s->committer_count++;
    if (!s->committer_count) logf_(s, "cannot start committer threads: ingest will fail");
    uv_timer_init(&s->loop, &s->heartbeat_timer);
    s->heartbeat_timer.data = s;
    uv_timer_start(&s->heartbeat_timer, on_heartbeat_timer, c->tail_heartbeat_ms,
                   c->tail_heartbeat_ms);

    logf_(s, "listening on http://%s (data %s, fsync %s, %u workers)", http_server_addr(s->http),
          o->data_dir, config_fsync_name(c->db.wal.fsync_policy), c->workers);
    if (s->open_mode)
        logf_(s, "no API keys configured: single-tenant open mode (tenant \"default\", loopback "
                 "only)");
    else
        logf_(s, "%zu tenants, %zu API keys", c->tenant_count, c->key_count);

    if (o->demo) {
        qr_gen_opts go = {c->demo_seed ? c->demo_seed : (uint64_t)qr_now_ns(), qr_now_ns(),
                          c->demo_rate > 0 ? c->demo_rate : 200};
        s->gen = qr_gen_new(&go);
        if (s->gen) uv_timer_start(&s->demo_timer, on_demo_timer, 100, 100);
    }

    uv_work_t open_work;
    open_work.data = s;
    s->jobs_pending++;
    uv_queue_work(&s->loop, &open_work, work_open, after_open);

    uv_run(&s->loop, UV_RUN_DEFAULT);

    int exit_rc = s->exit_code;
    /* every ingest job was answered (jobs_pending reached 0): the committers are idle */
    pthread_mutex_lock(&s->commit_mu);
    s->commit_stop = true;
    pthread_cond_broadcast(&s->commit_cv);
    pthread_mutex_unlock(&s->commit_mu);
    for (size_t ci = 0; ci < s->committer_count; ci++) pthread_join(s->committers[ci], NULL);
    free(s->committers);
    pthread_mutex_destroy(&s->commit_mu);
    pthread_cond_destroy(&s->commit_cv);
    if (s->db) {
        rollup_mgr_close(s->rollups);
        s->rollups = NULL;
        logf_(s, "flushing memtables");
        alert_mgr_close(s->alerts); /* undelivered notifications stay in the outbox */
        s->alerts = NULL;
        db_close(s->db);
        exec_msg_cache_free(s->msg_cache);
        s->msg_cache = NULL;
    }
    if (s->addr_written) unlink(s->addr_path);
    http_server_free(s->http);
    /* close whatever is left (nothing normally) so uv_loop_close succeeds */
    uv_walk(&s->loop, close_walk, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    qr_gen_free(s->gen);
    tail_hub_free(s->tail);
    free(s->tenants);
    free(s);
    if (exit_rc) return qr_diag_set(d, exit_rc, "the data directory could not be opened");
    return 0;
}

/* http_ingest_bench — N keep-alive clients (one libuv loop) POSTing 1,000-event /v1/ingest
 * batches to a `quarry serve` it starts itself, for a bounded time. Prints events/s, MB/s,
 * ack latency p50/p99/max (request sent → 202 read), and client vs server CPU (getrusage for
 * this process, /proc/<pid>/stat for the server) — they share the machine's cores.
 *
 * usage: http_ingest_bench --bin build/quarry [--clients 8] [--seconds 10] [--batch 1000]
 *                          [--fsync always|interval|never] [--workers 8] [--data DIR]
 *                          [--rate EVENTS_PER_S]
 * Batches come from qr_gen (8 different bodies, reused round-robin), wrapped as
 * {"source":{"service":"bench"},"logs":[...]}.
 * --rate R offers R events/s open-loop instead of each client sending again at once: a
 * 1 ms timer releases batches on schedule to idle clients, and a batch's latency counts from
 * the moment it was due (a batch waiting for an idle client is late, not unsent — no
 * coordinated omission). It shows ack latency at a given load rather than at saturation.
 * --probe 1 (default) also runs a probe thread during the load, a plain blocking client
 * (server/hclient.h) doing one thing at a time, every ~100 ms:
 *   freshness: POST one event carrying a unique token, then POST /v1/search for that token
 *              until it is found; the figure is the time from the 202 to the first search
 *              that returns it (goal ≤ 100 ms);
 *   search latency under ingest: /v1/search for a common word (newest 100), and /v1/query
 *              counting by service × level over everything, each timed end to end. */
#include "common/qr_buf.h"
#include "common/qr_gen.h"
#include "common/qr_time.h"
#include "server/hclient.h"

#include <pthread.h>
#include <stdatomic.h>

#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

extern char **environ;

#define BODIES 8
#define MAX_SAMPLES (1 << 20)

typedef struct client {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    struct bench *b;
    int body_idx;
    int64_t sent_ns;
    qr_buf in;
    bool busy;
} client;

typedef struct bench {
    uv_loop_t *loop;
    qr_buf reqs[BODIES]; /* full HTTP requests */
    int64_t end_ns;
    uint64_t acks, errors, bytes;
    uint64_t *lat_ns;
    size_t lat_count;
    int batch;
    int open;
    /* open-loop mode (--rate): batches released by the timer so far, from t0_ns */
    double rate_batches_per_s;
    int64_t t0_ns;
    uint64_t released;
    uv_timer_t timer;
    client *clients;
    int client_count;
    uint64_t late; /* batches sent > 5 ms after due (no idle client; the timer ticks at 1 ms) */
} bench;

static void client_send(client *c, int64_t due_ns);
static void rate_dispatch(bench *b);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    client *c = h->data;
    qr_buf_reserve(&c->in, 65536);
    *buf = uv_buf_init((char *)c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len));
}

static void on_close(uv_handle_t *h)
{
    client *c = h->data;
    c->b->open--;
}

/* One complete response in c->in? Returns its length or 0. */
static size_t response_len(const client *c, int *status)
{
    const char *p = (const char *)c->in.data;
    size_t n = c->in.len;
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head = (size_t)(end - p) + 4;
    const char *cl = memmem(p, head, "Content-Length: ", 16);
    size_t body = cl ? strtoul(cl + 16, NULL, 10) : 0;
    if (n < head + body) return 0;
    *status = atoi(p + 9);
    return head + body;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    client *c = s->data;
    bench *b = c->b;
    if (nread < 0) {
        b->errors++;
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    c->in.len += (size_t)nread;
    int status = 0;
    size_t len = response_len(c, &status);
    if (!len) return;
    int64_t now = qr_monotonic_ns();
    if (status == 202) {
        b->acks++;
        b->bytes += b->reqs[c->body_idx].len;
        if (b->lat_count < MAX_SAMPLES) b->lat_ns[b->lat_count++] = (uint64_t)(now - c->sent_ns);
    } else {
        b->errors++;
        if (b->errors < 5) fprintf(stderr, "status %d: %.*s\n", status, (int)len, c->in.data);
    }
    memmove(c->in.data, c->in.data + len, c->in.len - len);
    c->in.len -= len;
    c->busy = false;
    c->body_idx = (c->body_idx + 1) % BODIES;
    if (b->rate_batches_per_s > 0) {
        rate_dispatch(b);
        return;
    }
    if (now >= b->end_ns) {
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    client_send(c, now);
}

static void on_write(uv_write_t *w, int status)
{
    client *c = w->data;
    if (status < 0) {
        c->b->errors++;
        uv_close((uv_handle_t *)&c->tcp, on_close);
    }
}

/* due_ns: when the batch was due (latency counts from there). */
static void client_send(client *c, int64_t due_ns)
{
    qr_buf *r = &c->b->reqs[c->body_idx];
    uv_buf_t buf = uv_buf_init((char *)r->data, (unsigned)r->len);
    c->sent_ns = due_ns;
    c->busy = true;
    c->write.data = c;
    uv_write(&c->write, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
}

static void on_connect(uv_connect_t *req, int status)
{
    client *c = req->data;
    if (status < 0) {
        fprintf(stderr, "connect: %s\n", uv_strerror(status));
        c->b->errors++;
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (c->b->rate_batches_per_s > 0) return; /* the timer sends */
    client_send(c, qr_monotonic_ns());
}

/* Open loop: sends every batch due by now to an idle client, oldest due first; after the end,
 * closes the idle clients and the timer once nothing is in flight. */
static void rate_dispatch(bench *b)
{
    int64_t now = qr_monotonic_ns();
    if (now >= b->end_ns) {
        int busy = 0;
        for (int ci = 0; ci < b->client_count; ci++) busy += b->clients[ci].busy;
        if (busy) return;
        for (int ci = 0; ci < b->client_count; ci++)
            if (!uv_is_closing((uv_handle_t *)&b->clients[ci].tcp))
                uv_close((uv_handle_t *)&b->clients[ci].tcp, on_close);
        if (!uv_is_closing((uv_handle_t *)&b->timer)) uv_close((uv_handle_t *)&b->timer, NULL);
        return;
    }
    double per_ns = b->rate_batches_per_s / 1e9;
    uint64_t due = (uint64_t)((double)(now - b->t0_ns) * per_ns) + 1;
    for (int ci = 0; ci < b->client_count && b->released < due; ci++) {
        client *c = &b->clients[ci];
        if (c->busy || !uv_is_readable((uv_stream_t *)&c->tcp)) continue;
        int64_t due_ns = b->t0_ns + (int64_t)((double)b->released / per_ns);
        if (now - due_ns > 5000000) b->late++;
        b->released++;
        client_send(c, due_ns);
    }
}

static void on_timer(uv_timer_t *t) { rate_dispatch(t->data); }

/* ---- probe thread: freshness and search latency under load ---- */

#define PROBE_MAX 4096

typedef struct probe {
    char url[128];
    atomic_bool stop;
    double fresh_ms[PROBE_MAX], search_ms[PROBE_MAX], agg_ms[PROBE_MAX];
    size_t fresh_n, search_n, agg_n;
    uint64_t failures;
} probe;

static double ms_since(int64_t t0) { return (double)(qr_monotonic_ns() - t0) / 1e6; }

static int probe_post(probe *p, const char *path, const char *body, hclient_response *r)
{
    hclient_response_fini(r);
    hclient_response_init(r);
    qr_diag d;
    qr_diag_init(&d);
    int rc = hclient_request(p->url, "POST", path, "Content-Type: application/json\r\n", body,
                             strlen(body), 10000, 1 << 24, r, &d);
    if (rc) p->failures++;
    return rc;
}

static void *probe_main(void *arg)
{
    probe *p = arg;
    hclient_response r;
    hclient_response_init(&r);
    char body[512];
    struct timespec pause = {0, 100 * 1000 * 1000};
    for (unsigned seq = 0; !atomic_load(&p->stop) && p->fresh_n < PROBE_MAX; seq++) {
        nanosleep(&pause, NULL);
        /* freshness */
        snprintf(body, sizeof body,
                 "{\"source\":{\"service\":\"probe\"},\"logs\":[{\"level\":\"info\","
                 "\"msg\":\"probe freshtok%ux%u\"}]}",
                 (unsigned)getpid(), seq);
        if (probe_post(p, "/v1/ingest", body, &r) || r.status != 202) continue;
        int64_t acked = qr_monotonic_ns();
        snprintf(body, sizeof body, "{\"query\":\"freshtok%ux%u\",\"limit\":1}", (unsigned)getpid(),
                 seq);
        bool found = false;
        while (!found && ms_since(acked) < 5000) {
            if (probe_post(p, "/v1/search", body, &r) || r.status != 200) break;
            qr_buf_u8(&r.body, 0);
            found = strstr((const char *)r.body.data, "\"hits\":1") != NULL;
        }
        if (found)
            p->fresh_ms[p->fresh_n++] = ms_since(acked);
        else
            p->failures++;
        /* search latency under ingest */
        int64_t t0 = qr_monotonic_ns();
        if (!probe_post(p, "/v1/search", "{\"query\":\"timeout\",\"limit\":100}", &r) &&
            r.status == 200 && p->search_n < PROBE_MAX)
            p->search_ms[p->search_n++] = ms_since(t0);
        t0 = qr_monotonic_ns();
        if (!probe_post(p, "/v1/query",
                        "{\"query\":\"SELECT service, level, count(*) FROM logs GROUP BY "
                        "service, level\"}",
                        &r) &&
            r.status == 200 && p->agg_n < PROBE_MAX)
            p->agg_ms[p->agg_n++] = ms_since(t0);
    }
    hclient_response_fini(&r);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void print_pcts(const char *what, double *v, size_t n)
{
    if (!n) {
        printf("  %-30s no samples\n", what);
        return;
    }
    qsort(v, n, sizeof *v, cmp_double);
    printf("  %-30s p50 %.1f ms, p99 %.1f ms, max %.1f ms (%zu samples)\n", what, v[n / 2],
           v[(size_t)((double)n * 0.99)], v[n - 1], n);
}

static double proc_cpu_s(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char buf[2048];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* fields after the command name */
    if (!p) return 0;
    unsigned long utime = 0, stime = 0;
    /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime);
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* One histogram of the server's /metrics text: mean and the bucket bounds holding p50 and
 * p99 (the histogram's resolution: 1-2.5-5 steps). series = name + "{labels" prefix. */
static void print_hist(const char *text, const char *name, const char *labels, const char *what)
{
    char key[160];
    double les[32], counts[32], sum = 0, count = 0;
    size_t n = 0;
    snprintf(key, sizeof key, "%s_bucket{%s%sle=\"", name, labels, *labels ? "," : "");
    for (const char *p = strstr(text, key); p && n < 32; p = strstr(p + 1, key)) {
        const char *v = p + strlen(key);
        les[n] = strncmp(v, "+Inf", 4) == 0 ? 1e9 : strtod(v, NULL);
        const char *sp = strchr(v, ' ');
        counts[n++] = sp ? strtod(sp + 1, NULL) : 0;
    }
    snprintf(key, sizeof key, *labels ? "%s_sum{%s} " : "%s_sum%s ", name, labels);
    const char *p = strstr(text, key);
    if (p) sum = strtod(p + strlen(key), NULL);
    snprintf(key, sizeof key, *labels ? "%s_count{%s} " : "%s_count%s ", name, labels);
    p = strstr(text, key);
    if (p) count = strtod(p + strlen(key), NULL);
    double p50 = 0, p99 = 0;
    for (size_t bi = 0; bi < n && count > 0; bi++) { /* cumulative counts */
        if (p50 == 0 && counts[bi] >= count * 0.5) p50 = les[bi];
        if (p99 == 0 && counts[bi] >= count * 0.99) p99 = les[bi];
    }
    printf("    %-12s mean %.2f ms, p50 <= %g ms, p99 <= %g ms (%.0f)\n", what,
           count > 0 ? sum / count * 1e3 : 0, p50 * 1e3, p99 * 1e3, count);
}

/* Where the server's ingest time goes, from its /metrics. */
static void print_stages(const char *url)
{
    hclient_response r;
    hclient_response_init(&r);
    qr_diag d;
    qr_diag_init(&d);
    if (!hclient_request(url, "GET", "/metrics", "", NULL, 0, 10000, 1 << 24, &r, &d) &&
        r.status == 200) {
        qr_buf_u8(&r.body, 0);
        const char *text = (const char *)r.body.data;
        printf("  server, from /metrics (p50/p99 are histogram bucket bounds):\n");
        print_hist(text, "quarry_ingest_stage_seconds", "stage=\"queue\"", "queue");
        print_hist(text, "quarry_ingest_stage_seconds", "stage=\"decode\"", "decode");
        print_hist(text, "quarry_ingest_stage_seconds", "stage=\"commit\"", "commit");
        print_hist(text, "quarry_wal_fsync_seconds", "", "WAL fsync");
        const char *k = "\nquarry_wal_appends_total ", *f = "\nquarry_wal_fsyncs_total ";
        const char *pa = strstr(text, k), *pf = strstr(text, f);
        if (pa && pf)
            printf("    WAL          %.0f appends, %.0f fsyncs\n", strtod(pa + strlen(k), NULL),
                   strtod(pf + strlen(f), NULL));
    }
    hclient_response_fini(&r);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *bin = NULL, *fsync = "always", *data = NULL, *workers = "8", *config = NULL;
    int probing = 1;
    int clients = 8, seconds = 10, batch = 1000;
    double rate = 0;
    for (int idx = 1; idx + 1 < argc; idx += 2) {
        if (!strcmp(argv[idx], "--bin"))
            bin = argv[idx + 1];
        else if (!strcmp(argv[idx], "--clients"))
            clients = atoi(argv[idx + 1]);
        else if (!strcmp(argv[idx], "--seconds"))
            seconds = atoi(argv[idx + 1]);
        else if (!strcmp(argv[idx], "--batch"))
            batch = atoi(argv[idx + 1]);
        else if (!strcmp(argv[idx], "--fsync"))
            fsync = argv[idx + 1];
        else if (!strcmp(argv[idx], "--data"))
            data = argv[idx + 1];
        else if (!strcmp(argv[idx], "--workers"))
            workers = argv[idx + 1];
        else if (!strcmp(argv[idx], "--config"))
            config = argv[idx + 1];
        else if (!strcmp(argv[idx], "--rate"))
            rate = atof(argv[idx + 1]);
        else if (!strcmp(argv[idx], "--probe"))
            probing = atoi(argv[idx + 1]);
    }
    if (!bin || clients < 1 || clients > 1000 || seconds < 1 || seconds > 600 || batch < 1) {
        fprintf(stderr, "usage: http_ingest_bench --bin QUARRY [--clients N] [--seconds S] "
                        "[--batch N] [--fsync P] [--workers N] [--data DIR] [--probe 0|1] "
                        "[--config FILE] [--rate EVENTS_PER_S]\n");
        return 2;
    }
    char dir[256];
    if (data)
        snprintf(dir, sizeof dir, "%s", data);
    else
        snprintf(dir, sizeof dir, "/tmp/http_ingest_bench.%d", (int)getpid());
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0) return 1;
    char *sargv[] = {(char *)bin,   "serve",   "--data",      dir,         "--listen",
                     "127.0.0.1:0", "--fsync", (char *)fsync, "--workers", (char *)workers,
                     NULL,          NULL,      NULL};
    if (config) {
        sargv[10] = "--config";
        sargv[11] = (char *)config;
    }
    pid_t pid;
    if (posix_spawn(&pid, bin, NULL, NULL, sargv, environ) != 0) {
        perror("spawn");
        return 1;
    }
    char addr_path[300], addr[80] = "";
    snprintf(addr_path, sizeof addr_path, "%s/server.addr", dir);
    for (int tries = 0; tries < 1000 && !addr[0]; tries++) {
        FILE *f = fopen(addr_path, "r");
        if (f) {
            if (!fgets(addr, sizeof addr, f)) addr[0] = '\0';
            fclose(f);
        }
        if (!addr[0]) usleep(10000);
    }
    addr[strcspn(addr, "\n")] = '\0';
    if (!addr[0]) {
        fprintf(stderr, "server did not start\n");
        kill(pid, SIGKILL);
        return 1;
    }
    char host[64];
    char *colon = strrchr(addr, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
    int port = atoi(colon + 1);

    bench b;
    memset(&b, 0, sizeof b);
    b.batch = batch;
    b.lat_ns = malloc(MAX_SAMPLES * sizeof *b.lat_ns);
    qr_gen_opts go = {42, qr_now_ns() - 3600 * QR_NS_PER_SEC, 1000};
    qr_gen *g = qr_gen_new(&go);
    qr_buf line;
    qr_buf_init(&line);
    uint64_t body_bytes = 0;
    for (int bi = 0; bi < BODIES; bi++) {
        qr_buf body;
        qr_buf_init(&body);
        const char *head = "{\"source\":{\"service\":\"bench\",\"host\":\"loadgen\"},\"logs\":[";
        qr_buf_append(&body, head, strlen(head));
        for (int e = 0; e < batch; e++) {
            line.len = 0;
            qr_gen_next_ndjson(g, &line);
            if (e) qr_buf_u8(&body, ',');
            qr_buf_append(&body, line.data, line.len - 1); /* without '\n' */
        }
        qr_buf_append(&body, "]}", 2);
        qr_buf_init(&b.reqs[bi]);
        char hdr[200];
        int n =
            snprintf(hdr, sizeof hdr,
                     "POST /v1/ingest HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     addr, body.len);
        qr_buf_append(&b.reqs[bi], hdr, (size_t)n);
        qr_buf_append(&b.reqs[bi], body.data, body.len);
        body_bytes += body.len;
        qr_buf_fini(&body);
    }
    qr_buf_fini(&line);
    qr_gen_free(g);

    uv_loop_t *loop = uv_default_loop();
    b.loop = loop;
    client *cs = calloc((size_t)clients, sizeof *cs);
    struct sockaddr_in sa;
    uv_ip4_addr(host, port, &sa);
    probe *pr = calloc(1, sizeof *pr);
    pthread_t probe_tid;
    snprintf(pr->url, sizeof pr->url, "http://%s", addr);
    if (probing) pthread_create(&probe_tid, NULL, probe_main, pr);
    double srv_cpu0 = proc_cpu_s(pid), cli_cpu0 = self_cpu_s();
    int64_t t0 = qr_monotonic_ns();
    b.end_ns = t0 + (int64_t)seconds * QR_NS_PER_SEC;
    b.t0_ns = t0;
    b.clients = cs;
    b.client_count = clients;
    b.rate_batches_per_s = rate / batch;
    if (rate > 0) {
        uv_timer_init(loop, &b.timer);
        b.timer.data = &b;
        uv_timer_start(&b.timer, on_timer, 1, 1);
    }
    for (int ci = 0; ci < clients; ci++) {
        client *c = &cs[ci];
        c->b = &b;
        c->body_idx = ci % BODIES;
        qr_buf_init(&c->in);
        uv_tcp_init(loop, &c->tcp);
        uv_tcp_nodelay(&c->tcp, 1);
        c->tcp.data = c;
        c->connect.data = c;
        uv_tcp_connect(&c->connect, &c->tcp, (struct sockaddr *)&sa, on_connect);
        b.open++;
    }
    uv_run(loop, UV_RUN_DEFAULT);
    double elapsed = (double)(qr_monotonic_ns() - t0) / 1e9;
    double srv_cpu = proc_cpu_s(pid) - srv_cpu0, cli_cpu = self_cpu_s() - cli_cpu0;
    atomic_store(&pr->stop, true);
    if (probing) pthread_join(probe_tid, NULL);

    qsort(b.lat_ns, b.lat_count, sizeof *b.lat_ns, cmp_u64);
    double p50 = b.lat_count ? (double)b.lat_ns[b.lat_count / 2] / 1e6 : 0;
    double p99 = b.lat_count ? (double)b.lat_ns[(size_t)((double)b.lat_count * 0.99)] / 1e6 : 0;
    double pmax = b.lat_count ? (double)b.lat_ns[b.lat_count - 1] / 1e6 : 0;
    uint64_t events = b.acks * (uint64_t)batch;
    printf("http_ingest_bench: %d clients, %d-event batches (%.0f B/event JSON), fsync %s, "
           "%s workers, %.1f s\n",
           clients, batch, (double)body_bytes / BODIES / batch, fsync, workers, elapsed);
    printf("  acked     %llu batches, %llu events, %llu errors\n", (unsigned long long)b.acks,
           (unsigned long long)events, (unsigned long long)b.errors);
    printf("  rate      %.0f events/s, %.1f MB/s of JSON\n", (double)events / elapsed,
           (double)b.bytes / elapsed / 1e6);
    if (rate > 0)
        printf(
            "  offered   %.0f events/s open-loop; %llu batches sent > 5 ms late (no idle client), "
            "%llu never sent\n",
            rate, (unsigned long long)b.late,
            (unsigned long long)((uint64_t)(b.rate_batches_per_s * seconds) > b.released
                                     ? (uint64_t)(b.rate_batches_per_s * seconds) - b.released
                                     : 0));
    printf("  ack latency  p50 %.2f ms, p99 %.2f ms, max %.2f ms%s\n", p50, p99, pmax,
           rate > 0 ? " (from when each batch was due)" : "");
    printf("  CPU       server %.2f s (%.0f%% of one core), client %.2f s (%.0f%%); "
           "server %.0f ns/event\n",
           srv_cpu, 100 * srv_cpu / elapsed, cli_cpu, 100 * cli_cpu / elapsed,
           events ? srv_cpu * 1e9 / (double)events : 0);
    if (probing) {
        printf("  under this load (client CPU above includes the probe):\n");
        print_pcts("freshness 202 -> searchable", pr->fresh_ms, pr->fresh_n);
        print_pcts("/v1/search 'timeout' newest 100", pr->search_ms, pr->search_n);
        print_pcts("/v1/query service x level", pr->agg_ms, pr->agg_n);
        if (pr->failures) printf("  probe failures: %llu\n", (unsigned long long)pr->failures);
    }
    print_stages(pr->url);
    free(pr);
    kill(pid, SIGTERM);
    int wstatus = 0;
    waitpid(pid, &wstatus, 0);
    if (!data) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) return 1;
    }
    for (int bi = 0; bi < BODIES; bi++) qr_buf_fini(&b.reqs[bi]);
    for (int ci = 0; ci < clients; ci++) qr_buf_fini(&cs[ci].in);
    free(cs);
    free(b.lat_ns);
    uv_loop_close(loop);
    return WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0 ? 0 : 1;
}

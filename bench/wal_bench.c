/* wal_bench — WAL append throughput and latency with group commit.
 *
 * usage: wal_bench [-d DIR] [-b BATCHES_PER_THREAD] [-e EVENTS_PER_BATCH] [-p
 * always|interval|never]
 *                  [-t THREADS[,THREADS...]] [-l LEVEL[,LEVEL...]]
 * Defaults: DIR = $QR_TMP or /tmp, 150 batches per thread of 1,000 events, fsync=always,
 * threads 1,2,8, zstd levels 1,-1,-3.
 *
 * First, per zstd level (3, 1, -1, -3, -5), the CPU cost of encode + compress (thread CPU
 * time, so other load on the machine does not inflate it; no I/O). Then, per
 * (threads, level), appends of prebuilt synthetic batches (~250 B/event encoded: message from
 * templates with ids and numbers, service/host/level labels, five typed fields) through
 * wal_append: events/s, MB/s raw (qr_batch_encode bytes) and compressed (written), fsyncs/s,
 * average fdatasync time, records per group write, append latency p50/p99, and process CPU
 * use (100% = one core busy). Files are released as the run goes. */
#include "common/qr_time.h"
#include "storage/wal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define BENCH_BATCH_VARIANTS 8

typedef struct bench_rng {
    uint64_t state;
} bench_rng;

static uint64_t bench_rand(bench_rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A realistic-ish batch: web/API service logs. */
static void bench_batch_build(qr_batch *b, uint64_t seed, size_t event_count)
{
    static const char *const services[] = {"api-gateway", "auth",      "billing", "search",
                                           "checkout",    "inventory", "mailer",  "frontend"};
    static const char *const paths[] = {"/v1/users",       "/v1/orders",     "/v2/search",
                                        "/health",         "/v1/cart/items", "/login",
                                        "/v1/invoices/pdf"};
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
    static const char *const errors[] = {"connection reset by peer", "upstream timed out",
                                         "invalid token signature", "deadlock detected",
                                         "no such key"};
    bench_rng rng = {seed};
    int64_t ts_ns = 1750000000000000000LL + (int64_t)(seed % 1000) * QR_NS_PER_SEC;
    char msg[512], host[32], hex[40], path[64];
    for (size_t row = 0; row < event_count; row++) {
        qr_event *e = qr_batch_push(b);
        ts_ns += (int64_t)(bench_rand(&rng) % 2000000);
        e->ts_ns = ts_ns;
        e->ingest_ts_ns = ts_ns + (int64_t)(bench_rand(&rng) % 50000000);
        uint64_t roll = bench_rand(&rng) % 100;
        e->level = roll < 2    ? QR_LEVEL_ERROR
                   : roll < 8  ? QR_LEVEL_WARN
                   : roll < 20 ? QR_LEVEL_DEBUG
                               : QR_LEVEL_INFO;
        const char *svc = services[bench_rand(&rng) % 8];
        int host_len = snprintf(host, sizeof host, "%s-%u", svc, (unsigned)(bench_rand(&rng) % 12));
        e->service = qr_batch_str(b, svc, strlen(svc));
        e->host = qr_batch_str(b, host, (size_t)host_len);
        int status = e->level == QR_LEVEL_ERROR ? 500 + (int)(bench_rand(&rng) % 4)
                     : roll % 7 == 0            ? 404
                                                : 200;
        double latency_ms = (double)(bench_rand(&rng) % 250000) / 1000.0;
        uint64_t user_id = bench_rand(&rng) % 5000000;
        int path_len = snprintf(path, sizeof path, "%s/%llu", paths[bench_rand(&rng) % 7],
                                (unsigned long long)(bench_rand(&rng) % 100000));
        int msg_len;
        if (e->level == QR_LEVEL_ERROR)
            msg_len = snprintf(msg, sizeof msg,
                               "request failed: %s %s user=%llu status=%d after %.3f ms: %s "
                               "(attempt %u of 3, pool %s)",
                               methods[bench_rand(&rng) % 4], path, (unsigned long long)user_id,
                               status, latency_ms, errors[bench_rand(&rng) % 5],
                               (unsigned)(bench_rand(&rng) % 3 + 1), host);
        else
            msg_len =
                snprintf(msg, sizeof msg,
                         "%s %s HTTP/1.1 %d %llu bytes in %.3f ms client=10.%u.%u.%u "
                         "ua=\"Mozilla/5.0 (X11; Linux x86_64)\" user=%llu",
                         methods[bench_rand(&rng) % 4], path, status,
                         (unsigned long long)(bench_rand(&rng) % 90000), latency_ms,
                         (unsigned)(bench_rand(&rng) % 256), (unsigned)(bench_rand(&rng) % 256),
                         (unsigned)(bench_rand(&rng) % 256), (unsigned long long)user_id);
        e = &b->events[b->count - 1];
        e->msg = qr_batch_str(b, msg, (size_t)msg_len);
        qr_field f;
        memset(&f, 0, sizeof f);
        int hex_len =
            snprintf(hex, sizeof hex, "%016llx%016llx", (unsigned long long)bench_rand(&rng),
                     (unsigned long long)bench_rand(&rng));
        f.key = qr_batch_str(b, "trace_id", 8);
        f.type = QR_FT_STRING;
        f.v.s = qr_batch_str(b, hex, (size_t)hex_len);
        qr_batch_add_field(b, &f);
        f.key = qr_batch_str(b, "user_id", 7);
        f.type = QR_FT_INT;
        f.v.i = (int64_t)user_id;
        qr_batch_add_field(b, &f);
        f.key = qr_batch_str(b, "latency_ms", 10);
        f.type = QR_FT_FLOAT;
        f.v.f = latency_ms;
        qr_batch_add_field(b, &f);
        f.key = qr_batch_str(b, "status", 6);
        f.type = QR_FT_INT;
        f.v.i = status;
        qr_batch_add_field(b, &f);
        f.key = qr_batch_str(b, "path", 4);
        f.type = QR_FT_STRING;
        f.v.s = qr_batch_str(b, path, (size_t)path_len);
        qr_batch_add_field(b, &f);
    }
}

typedef struct bench_thread {
    wal_t *w;
    const qr_batch *batches;
    int batch_count;
    int thread_idx;
    uint64_t *lat_ns;
    int failures;
} bench_thread;

static void *bench_thread_main(void *p)
{
    bench_thread *t = p;
    char tenant[16];
    snprintf(tenant, sizeof tenant, "tenant-%d", t->thread_idx % 4);
    for (int batch_idx = 0; batch_idx < t->batch_count; batch_idx++) {
        const qr_batch *b = &t->batches[(batch_idx + t->thread_idx) % BENCH_BATCH_VARIANTS];
        int64_t start_ns = qr_monotonic_ns();
        qr_diag d;
        qr_diag_init(&d);
        uint64_t lsn = 0;
        if (wal_append(t->w, tenant, b, &lsn, &d) != 0) {
            fprintf(stderr, "append: %s\n", d.msg);
            t->failures++;
        }
        t->lat_ns[batch_idx] = (uint64_t)(qr_monotonic_ns() - start_ns);
        /* keep the disk footprint small: segments would have absorbed older records */
        if (t->thread_idx == 0 && batch_idx % 64 == 63 && lsn > 64)
            wal_release(t->w, lsn - 64, NULL);
    }
    return NULL;
}

static int64_t cpu_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * QR_NS_PER_SEC + ts.tv_nsec;
}
static int64_t process_cpu_ns(void)
{
    return cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
}
/* thread CPU time: immune to other processes taking the cores */
static int64_t thread_cpu_ns(void)
{
    return cpu_ns(CLOCK_THREAD_CPUTIME_ID);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int parse_list(const char *s, int *out, int cap)
{
    int count = 0;
    while (*s && count < cap) {
        char *end;
        out[count++] = (int)strtol(s, &end, 10);
        if (*end != ',') break;
        s = end + 1;
    }
    return count;
}

/* CPU cost of what wal_append does before taking the queue: encode + compress. */
static void bench_compress_only(const qr_batch *batches, size_t events_per_batch, int level)
{
    qr_buf enc;
    qr_buf_init(&enc);
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    size_t rounds = 40, raw_bytes = 0, z_bytes = 0;
    void *dst = NULL;
    size_t dst_cap = 0;
    int64_t encode_ns = 0, compress_ns = 0;
    for (size_t round = 0; round < rounds; round++) {
        const qr_batch *b = &batches[round % BENCH_BATCH_VARIANTS];
        int64_t t0 = thread_cpu_ns();
        qr_buf_clear(&enc);
        qr_batch_encode(b, &enc);
        int64_t t1 = thread_cpu_ns();
        size_t bound = ZSTD_compressBound(enc.len);
        if (bound > dst_cap) {
            free(dst);
            dst = malloc(bound);
            dst_cap = bound;
        }
        size_t zn = ZSTD_compressCCtx(cctx, dst, dst_cap, enc.data, enc.len, level);
        int64_t t2 = thread_cpu_ns();
        encode_ns += t1 - t0;
        compress_ns += t2 - t1;
        raw_bytes += enc.len;
        z_bytes += ZSTD_isError(zn) ? 0 : zn;
    }
    double events = (double)(rounds * events_per_batch);
    printf("zstd %3d  encode %5.0f ns/event  compress %5.0f ns/event (%4.0f MB/s)  "
           "%5.1f B/event raw -> %5.1f B/event (ratio %.2f)  => %.2f M events/s per core\n",
           level, (double)encode_ns / events, (double)compress_ns / events,
           (double)raw_bytes / ((double)compress_ns / 1e3), (double)raw_bytes / events,
           (double)z_bytes / events, (double)raw_bytes / (double)z_bytes,
           events / ((double)(encode_ns + compress_ns) / 1e3));
    free(dst);
    ZSTD_freeCCtx(cctx);
    qr_buf_fini(&enc);
}

int main(int argc, char **argv)
{
    const char *base = getenv("QR_TMP");
    if (!base || !*base) base = "/tmp";
    int batches_per_thread = 150;
    size_t events_per_batch = 1000;
    wal_fsync_policy policy = WAL_FSYNC_ALWAYS;
    int thread_list[16] = {1, 2, 8}, thread_count = 3;
    int level_list[16] = {1, -1, -3}, level_count = 3;
    int opt;
    while ((opt = getopt(argc, argv, "d:b:e:p:t:l:")) != -1) {
        switch (opt) {
        case 'd':
            base = optarg;
            break;
        case 'b':
            batches_per_thread = atoi(optarg);
            break;
        case 'e':
            events_per_batch = (size_t)atoi(optarg);
            break;
        case 'p':
            policy = strcmp(optarg, "never") == 0      ? WAL_FSYNC_NEVER
                     : strcmp(optarg, "interval") == 0 ? WAL_FSYNC_INTERVAL
                                                       : WAL_FSYNC_ALWAYS;
            break;
        case 't':
            thread_count = parse_list(optarg, thread_list, 16);
            break;
        case 'l':
            level_count = parse_list(optarg, level_list, 16);
            break;
        default:
            fprintf(stderr,
                    "usage: %s [-d DIR] [-b N] [-e N] [-p always|interval|never] "
                    "[-t T,T] [-l L,L]\n",
                    argv[0]);
            return 2;
        }
    }
    qr_batch batches[BENCH_BATCH_VARIANTS];
    for (int idx = 0; idx < BENCH_BATCH_VARIANTS; idx++) {
        qr_batch_init(&batches[idx]);
        bench_batch_build(&batches[idx], (uint64_t)idx + 1, events_per_batch);
    }
    printf("# encode + compress, %zu-event batches, thread CPU time (no I/O)\n", events_per_batch);
    static const int cpu_levels[] = {3, 1, -1, -3, -5};
    for (size_t li = 0; li < sizeof cpu_levels / sizeof cpu_levels[0]; li++)
        bench_compress_only(batches, events_per_batch, cpu_levels[li]);

    printf("# wal_append, fsync=%s, %d batches/thread of %zu events\n",
           policy == WAL_FSYNC_ALWAYS  ? "always"
           : policy == WAL_FSYNC_NEVER ? "never"
                                       : "interval",
           batches_per_thread, events_per_batch);
    printf("%7s %5s %12s %9s %9s %9s %8s %6s %8s %8s %6s %10s\n", "threads", "zstd", "events/s",
           "raw MB/s", "disk MB/s", "fsyncs/s", "fsync ms", "grp", "p50 ms", "p99 ms", "cpu%",
           "M ev/cpu-s");
    for (int ti = 0; ti < thread_count; ti++) {
        for (int li = 0; li < level_count; li++) {
            int threads = thread_list[ti];
            char dir[600];
            snprintf(dir, sizeof dir, "%s/wal_bench.%d", base, (int)getpid());
            char cmd[700];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
            if (system(cmd) != 0) return 1;
            wal_opts o;
            memset(&o, 0, sizeof o);
            o.fsync_policy = policy;
            o.zstd_level = level_list[li];
            wal_t *w = NULL;
            qr_diag d;
            qr_diag_init(&d);
            if (wal_open(dir, &o, &w, &d) != 0) {
                fprintf(stderr, "wal_open: %s\n", d.msg);
                return 1;
            }
            bench_thread *ts = calloc((size_t)threads, sizeof *ts);
            pthread_t *tids = calloc((size_t)threads, sizeof *tids);
            uint64_t *lat = calloc((size_t)threads * (size_t)batches_per_thread, sizeof *lat);
            int64_t start_ns = qr_monotonic_ns();
            int64_t cpu_start_ns = process_cpu_ns();
            for (int t = 0; t < threads; t++) {
                ts[t].w = w;
                ts[t].batches = batches;
                ts[t].batch_count = batches_per_thread;
                ts[t].thread_idx = t;
                ts[t].lat_ns = lat + (size_t)t * (size_t)batches_per_thread;
                pthread_create(&tids[t], NULL, bench_thread_main, &ts[t]);
            }
            int failures = 0;
            for (int t = 0; t < threads; t++) {
                pthread_join(tids[t], NULL);
                failures += ts[t].failures;
            }
            double secs = (double)(qr_monotonic_ns() - start_ns) / 1e9;
            double cpu_secs = (double)(process_cpu_ns() - cpu_start_ns) / 1e9;
            wal_stats st;
            wal_get_stats(w, &st);
            wal_close(w);
            system(cmd);
            size_t lat_count = (size_t)threads * (size_t)batches_per_thread;
            qsort(lat, lat_count, sizeof *lat, cmp_u64);
            double events = (double)st.appends * (double)events_per_batch;
            printf("%7d %5d %12.0f %9.1f %9.1f %9.0f %8.2f %6.1f %8.2f %8.2f %6.0f %10.2f%s\n",
                   threads, level_list[li], events / secs, (double)st.bytes_raw / 1e6 / secs,
                   (double)st.bytes_written / 1e6 / secs, (double)st.fsyncs / secs,
                   st.fsyncs ? (double)st.fsync_ns_total / 1e6 / (double)st.fsyncs : 0.0,
                   st.group_writes ? (double)st.appends / (double)st.group_writes : 0.0,
                   (double)lat[lat_count / 2] / 1e6, (double)lat[lat_count * 99 / 100] / 1e6,
                   100.0 * cpu_secs / secs, events / cpu_secs / 1e6,
                   failures ? "  (FAILURES)" : "");
            fflush(stdout);
            free(ts);
            free(tids);
            free(lat);
        }
    }
    for (int idx = 0; idx < BENCH_BATCH_VARIANTS; idx++) qr_batch_fini(&batches[idx]);
    return 0;
}

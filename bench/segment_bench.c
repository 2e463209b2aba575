/* segment_bench — writes segments from realistic synthetic events and reports write rate,
 * bytes per event per concern, size against `zstd -3` of the same events as NDJSON, needle
 * lookups and block-metadata aggregates.
 *
 *   segment_bench [EVENTS=1000000] [EVENTS_PER_SEGMENT=250000] [DIR=/tmp] [ZSTD_LEVEL=1]
 * Times are CPU time of this process (the machine is shared).
 *
 * The generator is a small stand-in for common/qr_gen (Zipf-ish services, realistic level
 * mix, templated messages with ids/IPs/durations/paths, trace_id/span_id hex on most events,
 * long-tailed latency_ms with 3 decimals, http fields). */
#include "common/qr_hash.h"
#include "storage/segment.h"
#include "storage/tokenize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static const char *services[] = {"api-gateway",    "payment",      "checkout", "auth",
                                 "search",         "inventory",    "shipping", "notification",
                                 "recommendation", "user-profile", "billing",  "analytics"};
static const char *paths[] = {"/api/v1/orders", "/api/v1/users/me", "/api/v1/cart",   "/health",
                              "/api/v2/search", "/api/v1/payments", "/static/app.js", "/login"};
static const char *methods[] = {"GET", "GET", "GET", "POST", "PUT", "DELETE"};

static void hex(char *out, size_t n, uint64_t *s)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) out[i] = d[rnd(s) % 16];
}

typedef struct gen {
    uint64_t s;
    int64_t ts;
    int64_t ingest;
} gen;

static void add_s(qr_batch *b, const char *k, const char *v, size_t n)
{
    qr_field f = {.key = qr_batch_str(b, k, strlen(k)), .type = QR_FT_STRING};
    f.v.s = qr_batch_str(b, v, n);
    qr_batch_add_field(b, &f);
}

/* One event into the batch and its NDJSON line into nd. */
static void gen_event(gen *g, qr_batch *b, qr_buf *nd)
{
    uint64_t *s = &g->s;
    g->ts += 200000 + (int64_t)(rnd(s) % 1600000);     /* ~1000 events/s with jitter */
    int64_t ts = g->ts - (int64_t)(rnd(s) % 50000000); /* slightly out of order */
    ts -= ts % 1000000; /* clients send ms precision (RFC 3339 with .sss) */
    /* Zipf-ish: service i with weight 1/(i+1) */
    uint64_t r = rnd(s) % 1000;
    int svc = r < 320   ? 0
              : r < 480 ? 1
              : r < 590 ? 2
              : r < 670 ? 3
              : r < 735 ? 4
              : r < 790 ? 5
              : r < 835 ? 6
              : r < 875 ? 7
              : r < 910 ? 8
              : r < 940 ? 9
              : r < 970 ? 10
                        : 11;
    uint64_t lr = rnd(s) % 1000;
    int level = lr < 150   ? QR_LEVEL_DEBUG
                : lr < 900 ? QR_LEVEL_INFO
                : lr < 970 ? QR_LEVEL_WARN
                : lr < 998 ? QR_LEVEL_ERROR
                           : QR_LEVEL_FATAL;
    char host[32];
    int hn = snprintf(host, sizeof host, "%s-%d", services[svc], (int)(rnd(s) % 4));
    char msg[512];
    int mn;
    double latency = (double)(rnd(s) % 1000) / 10.0;
    if (rnd(s) % 10 == 0) latency *= (double)(1 + rnd(s) % 40);
    latency = (double)(int64_t)(latency * 1000) / 1000.0;
    int status = level >= QR_LEVEL_ERROR ? 500 + (int)(rnd(s) % 4) : (rnd(s) % 20 ? 200 : 404);
    const char *path = paths[rnd(s) % 8];
    const char *method = methods[rnd(s) % 6];
    unsigned ip = (unsigned)rnd(s);
    unsigned long long user = (unsigned long long)(rnd(s) % 50000);
    switch (rnd(s) % 8) {
    case 0:
        mn = snprintf(msg, sizeof msg, "%s %s %d %.3fms from 10.%u.%u.%u user=%llu", method, path,
                      status, latency, ip >> 16 & 255, ip >> 8 & 255, ip & 255, user);
        break;
    case 1:
        mn = snprintf(msg, sizeof msg, "order %llu created for user %llu total=%llu.%02llu EUR",
                      (unsigned long long)(rnd(s) % 100000000), user,
                      (unsigned long long)(rnd(s) % 900), (unsigned long long)(rnd(s) % 100));
        break;
    case 2:
        mn = snprintf(msg, sizeof msg, "connection to db-%d.internal:5432 %s after %llums",
                      (int)(rnd(s) % 3), level >= QR_LEVEL_WARN ? "timed out" : "established",
                      (unsigned long long)(rnd(s) % 5000));
        break;
    case 3:
        mn = snprintf(msg, sizeof msg, "cache %s for key session:%llx (ttl %llus)",
                      rnd(s) % 3 ? "hit" : "miss", (unsigned long long)rnd(s),
                      (unsigned long long)(rnd(s) % 3600));
        break;
    case 4:
        mn = snprintf(msg, sizeof msg,
                      "payment %s: card ending %04llu, amount %llu.%02llu, attempt %d",
                      level >= QR_LEVEL_WARN ? "declined" : "authorized",
                      (unsigned long long)(rnd(s) % 10000), (unsigned long long)(rnd(s) % 2000),
                      (unsigned long long)(rnd(s) % 100), (int)(rnd(s) % 3) + 1);
        break;
    case 5:
        mn = snprintf(msg, sizeof msg, "user %llu logged in from 192.168.%u.%u via %s", user,
                      ip >> 8 & 255, ip & 255, rnd(s) % 2 ? "password" : "sso");
        break;
    case 6:
        mn = snprintf(msg, sizeof msg, "processed batch of %llu messages from queue %s in %.3fms",
                      (unsigned long long)(rnd(s) % 500), services[rnd(s) % 12], latency);
        break;
    default:
        mn = snprintf(msg, sizeof msg,
                      "request failed: upstream %s returned %d (retry %d/3) request_id=%016llx",
                      services[rnd(s) % 12], status, (int)(rnd(s) % 3), (unsigned long long)rnd(s));
        break;
    }
    qr_event *e = qr_batch_push(b);
    e->ts_ns = ts;
    e->ingest_ts_ns = g->ingest; /* the server stamps a whole batch at once */
    e->level = (uint8_t)level;
    e->service = qr_batch_str(b, services[svc], strlen(services[svc]));
    e = &b->events[b->count - 1];
    e->host = qr_batch_str(b, host, (size_t)hn);
    e = &b->events[b->count - 1];
    e->msg = qr_batch_str(b, msg, (size_t)mn);
    char trace[32], span[16];
    bool has_trace = rnd(s) % 10 < 7;
    if (has_trace) {
        hex(trace, 32, s);
        hex(span, 16, s);
        add_s(b, "trace_id", trace, 32);
        add_s(b, "span_id", span, 16);
    }
    qr_field f = {.key = qr_batch_str(b, "latency_ms", 10), .type = QR_FT_FLOAT};
    f.v.f = latency;
    qr_batch_add_field(b, &f);
    qr_field st = {.key = qr_batch_str(b, "status", 6), .type = QR_FT_INT};
    st.v.i = status;
    qr_batch_add_field(b, &st);
    add_s(b, "method", method, strlen(method));
    char uid[24];
    int un = snprintf(uid, sizeof uid, "u%llu", user);
    add_s(b, "user_id", uid, (size_t)un);
    /* NDJSON as a client would send it */
    char line[1024];
    static const char *lvl[] = {"unknown", "trace", "debug", "info", "warn", "error", "fatal"};
    int ln = snprintf(
        line, sizeof line,
        "{\"ts\":\"%lld\",\"service\":\"%s\",\"host\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\","
        "\"meta\":{%s%.*s%s%.*s%s\"latency_ms\":%.3f,\"status\":%d,\"method\":\"%s\","
        "\"user_id\":\"%s\"}}\n",
        (long long)ts, services[svc], host, lvl[level], msg, has_trace ? "\"trace_id\":\"" : "",
        has_trace ? 32 : 0, trace, has_trace ? "\",\"span_id\":\"" : "", has_trace ? 16 : 0, span,
        has_trace ? "\"," : "", latency, status, method, uid);
    qr_buf_append(nd, line, (size_t)ln);
}

int main(int argc, char **argv)
{
    size_t events = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    size_t per_seg = argc > 2 ? strtoull(argv[2], NULL, 10) : 250000;
    const char *dir = argc > 3 ? argv[3] : "/tmp";
    int level = argc > 4 ? atoi(argv[4]) : 0;
    gen g = {.s = 42, .ts = 1750000000000000000LL};
    qr_buf nd;
    qr_buf_init(&nd);
    seg_stats total;
    memset(&total, 0, sizeof total);
    double write_s = 0;
    size_t nseg = 0;
    char paths[64][512];
    for (size_t done = 0; done < events && nseg < 64; nseg++) {
        size_t n = events - done < per_seg ? events - done : per_seg;
        /* batches of 1000 events, as the memtable would hand them over */
        size_t nb = (n + 999) / 1000;
        qr_batch *batches = calloc(nb, sizeof *batches);
        const qr_batch **ptrs = calloc(nb, sizeof *ptrs);
        for (size_t b = 0; b < nb; b++) {
            qr_batch_init(&batches[b]);
            ptrs[b] = &batches[b];
            g.ingest = g.ts + 50000000 + (int64_t)(rnd(&g.s) % 1000000000);
            for (size_t i = 0; i < 1000 && b * 1000 + i < n; i++) gen_event(&g, &batches[b], &nd);
        }
        snprintf(paths[nseg], sizeof paths[nseg], "%s/bench_%d_%zu" SEG_FILE_SUFFIX, dir,
                 (int)getpid(), nseg);
        seg_stats st;
        qr_diag d;
        qr_diag_init(&d);
        seg_write_opts opts = {.segment_id = nseg, .zstd_level = level};
        double t0 = cpu_s();
        if (seg_write(paths[nseg], ptrs, nb, &opts, &st, &d) != 0) {
            fprintf(stderr, "seg_write: %s\n", d.msg);
            return 1;
        }
        write_s += cpu_s() - t0;
        uint64_t *dst = (uint64_t *)&total, *src = (uint64_t *)&st;
        for (size_t k = 0; k < sizeof st / 8; k++) dst[k] += src[k];
        for (size_t b = 0; b < nb; b++) qr_batch_fini(&batches[b]);
        free(batches);
        free(ptrs);
        done += n;
    }
    double e = (double)total.rows;
    size_t zcap = ZSTD_compressBound(nd.len);
    void *z = malloc(zcap);
    double t0 = cpu_s();
    size_t zlen = ZSTD_compress(z, zcap, nd.data, nd.len, 3);
    double zs = cpu_s() - t0;
    free(z);
    printf("events %.0f in %zu segments; write %.2f s CPU = %.0f K events/s (sort, encode, index; "
           "fsync not counted)\n",
           e, nseg, write_s, e / write_s / 1000);
    printf("ndjson %.1f MB = %.1f B/event; zstd -3 %.1f MB = %.2f B/event (%.2f s)\n", nd.len / 1e6,
           nd.len / e, zlen / 1e6, zlen / e, zs);
    printf("segments %.1f MB = %.2f B/event = %.2f x zstd -3 (goal <= 0.8)\n",
           total.file_bytes / 1e6, total.file_bytes / e, (double)total.file_bytes / (double)zlen);
    const char *names[] = {"ts",  "ingest_ts", "level", "service",  "host",
                           "msg", "fields",    "bloom", "postings", "meta"};
    uint64_t vals[] = {total.ts_bytes,      total.ingest_ts_bytes, total.level_bytes,
                       total.service_bytes, total.host_bytes,      total.msg_bytes,
                       total.field_bytes,   total.bloom_bytes,     total.postings_bytes,
                       total.meta_bytes};
    for (int i = 0; i < 10; i++)
        printf("  %-10s %8.2f B/event  %5.1f %%\n", names[i], vals[i] / e,
               100.0 * vals[i] / total.file_bytes);

    /* per-field bytes and reads */
    double lookups_s = 0, meta_s = 0, scan_s = 0;
    size_t lookups = 0;
    uint64_t counted = 0;
    for (size_t sidx = 0; sidx < nseg; sidx++) {
        qr_part *p;
        qr_diag d;
        qr_diag_init(&d);
        if (seg_open(paths[sidx], &p, &d) != 0) {
            fprintf(stderr, "seg_open: %s\n", d.msg);
            return 1;
        }
        if (sidx == 0) {
            seg_stats vs;
            t0 = now_s();
            if (seg_verify(p, &vs, &d) != 0) fprintf(stderr, "seg_verify: %s\n", d.msg);
            printf("seg_verify of one %u-row segment: %.1f ms\n", p->row_count,
                   (now_s() - t0) * 1e3);
        }
        /* needles: tokens of a few random-ish msgs that are unique (cache keys) */
        const char *needles[] = {"deadbeef", "1a2b3c4d5e6f7a8b", "zzzzzz", "u49999",
                                 "timed",    "declined"};
        for (int rep = 0; rep < 200; rep++) {
            for (int k = 0; k < 6; k++) {
                roaring_bitmap_t *bm = NULL;
                t0 = now_s();
                qr_part_postings(p, needles[k], strlen(needles[k]), &bm, NULL);
                lookups_s += now_s() - t0;
                lookups++;
                if (bm) roaring_bitmap_free(bm);
            }
        }
        /* count by service x level from block metadata only */
        t0 = now_s();
        uint64_t grid[16][8] = {{0}};
        for (int rep = 0; rep < 100; rep++) {
            for (uint32_t blk = 0; blk < p->block_count; blk++) {
                qr_block_meta m;
                qr_part_block_meta(p, blk, &m);
                for (uint32_t c = 0; c < m.count_n; c++)
                    grid[m.counts[c].service_id & 15][m.counts[c].level] += m.counts[c].row_count;
            }
        }
        meta_s += (now_s() - t0) / 100;
        for (int a = 0; a < 16; a++)
            for (int b = 0; b < 8; b++) counted += grid[a][b] / 100;
        /* label scan: decode service + level of every block */
        qr_arena ar;
        qr_arena_init(&ar, 1 << 20, 0);
        t0 = now_s();
        for (uint32_t blk = 0; blk < p->block_count; blk++) {
            qr_column c1, c2;
            qr_part_load_column(p, blk, QR_COL_SERVICE, 0, &ar, &c1, NULL);
            qr_part_load_column(p, blk, QR_COL_LEVEL, 0, &ar, &c2, NULL);
            qr_arena_reset(&ar);
        }
        scan_s += now_s() - t0;
        qr_arena_fini(&ar);
        qr_part_unref(p);
        unlink(paths[sidx]);
    }
    printf("needle postings lookup: %.1f us per segment (avg of %zu)\n", lookups_s / lookups * 1e6,
           lookups);
    printf("count by service x level from block meta: %.1f us for %.0f events (%llu counted)\n",
           meta_s * 1e6, e, (unsigned long long)counted);
    printf("decode service+level columns: %.2f ms for %.0f events (%.2f ns/event)\n", scan_s * 1e3,
           e, scan_s / e * 1e9);
    qr_buf_fini(&nd);
    return 0;
}

/* json_bench — the input side's speed on generator output, one core:
 *   gen      qr_gen_next_ndjson                         (lines/s, MB/s)
 *   qr_json  qr_json_parse per line, tape reused         (ns/event, MB/s)
 *   jansson  json_loadb + json_decref per line           (ns/event, MB/s; when found)
 *   evdec    evdec_ndjson_line into a batch reset every 4096 events (ns/event)
 *   ingest   /v1/ingest bodies of 1,000 events ({"source": {...}, "logs": [...]}) through
 *            ingest_decode_json: the one-pass decoder, then the same events with "logs"
 *            before "source", which takes the general path (whole-body tape, then evdec)
 * Usage: json_bench [events=200000] [seed=1] [stage: all|json|jansson|evdec|ingest].
 * Best of 5 runs per stage, timed in thread CPU time (the machine is shared, so wall time would
 * count other processes' slices). */
#include "common/qr_gen.h"
#include "common/qr_json.h"
#include "common/qr_time.h"
#include "server/ingest.h"
#include "storage/evdec.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if QR_HAVE_JANSSON
#include <jansson.h>
#endif

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

typedef struct lines {
    qr_buf text;
    size_t *off; /* line i spans off[i] .. off[i+1]-1 (newline excluded) */
    size_t count;
} lines;

static int emit_count(void *ctx, qr_batch *b, qr_diag *d)
{
    (void)d;
    *(size_t *)ctx += b->count;
    return 0;
}

static void report(const char *what, double ns, size_t count, size_t bytes)
{
    printf("%-8s %8.1f ns/event  %8.1f MB/s  %7.2f M events/s\n", what, ns / (double)count,
           (double)bytes / (ns / 1e9) / 1e6, (double)count / (ns / 1e9) / 1e6);
}

int main(int argc, char **argv)
{
    size_t count = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    const char *stage = argc > 3 ? argv[3] : "all";
    bool all = strcmp(stage, "all") == 0;
    lines L;
    qr_buf_init(&L.text);
    L.off = malloc((count + 1) * sizeof *L.off);
    L.count = count;

    double best = 1e30;
    for (int run = 0; run < (all ? 5 : 1); run++) {
        qr_gen_opts go = {seed, 0, 0};
        qr_gen *g = qr_gen_new(&go);
        qr_buf_clear(&L.text);
        int64_t t0 = cpu_ns();
        for (size_t row = 0; row < count; row++) {
            L.off[row] = L.text.len;
            qr_gen_next_ndjson(g, &L.text);
        }
        double ns = (double)(cpu_ns() - t0);
        if (ns < best) best = ns;
        L.off[count] = L.text.len;
        qr_gen_free(g);
    }
    size_t bytes = L.text.len;
    printf("%zu events, %zu bytes, %.1f bytes/event\n", count, bytes, (double)bytes / count);
    report("gen", best, count, bytes);

    /* qr_json */
    if (all || strcmp(stage, "json") == 0) {
        qr_arena arena;
        qr_arena_init(&arena, 1 << 20, 0);
        qr_json_doc doc;
        qr_json_doc_init(&doc, &arena, NULL, 0);
        best = 1e30;
        size_t nodes = 0;
        for (int run = 0; run < 5; run++) {
            int64_t t0 = cpu_ns();
            for (size_t row = 0; row < count; row++) {
                const char *p = (const char *)L.text.data + L.off[row];
                size_t n = L.off[row + 1] - L.off[row] - 1;
                if (qr_json_parse(&doc, p, n, NULL, NULL) != 0) {
                    fprintf(stderr, "qr_json failed on line %zu\n", row);
                    return 1;
                }
                nodes += doc.count;
                if ((row & 1023) == 0) qr_arena_reset(&arena);
            }
            double ns = (double)(cpu_ns() - t0);
            if (ns < best) best = ns;
        }
        report("qr_json", best, count, bytes);
        printf("         (%.1f JSON values per event)\n", (double)nodes / 5 / count);
        qr_json_doc_fini(&doc);
        qr_arena_fini(&arena);
    }

#if QR_HAVE_JANSSON
    if (all || strcmp(stage, "jansson") == 0) {
        best = 1e30;
        for (int run = 0; run < 5; run++) {
            int64_t t0 = cpu_ns();
            for (size_t row = 0; row < count; row++) {
                const char *p = (const char *)L.text.data + L.off[row];
                size_t n = L.off[row + 1] - L.off[row] - 1;
                json_error_t err;
                json_t *j = json_loadb(p, n, 0, &err);
                if (!j) {
                    fprintf(stderr, "jansson failed on line %zu: %s\n", row, err.text);
                    return 1;
                }
                json_decref(j);
            }
            double ns = (double)(cpu_ns() - t0);
            if (ns < best) best = ns;
        }
        report("jansson", best, count, bytes);
    }
#else
    printf("jansson  not found at build time\n");
#endif

    /* evdec */
    if (all || strcmp(stage, "evdec") == 0) {
        qr_batch b;
        qr_batch_init(&b);
        evdec_opts eo = {"unknown", NULL, 1750000000LL * QR_NS_PER_SEC};
        best = 1e30;
        size_t fields = 0;
        qr_diag d; /* untouched by successful lines: initialized once, as a server loop would */
        qr_diag_init(&d);
        for (int run = 0; run < 5; run++) {
            qr_batch_reset(&b);
            int64_t t0 = cpu_ns();
            for (size_t row = 0; row < count; row++) {
                const char *p = (const char *)L.text.data + L.off[row];
                size_t n = L.off[row + 1] - L.off[row] - 1;
                if (evdec_ndjson_line(p, n, &eo, &b, &d) != 0) {
                    fprintf(stderr, "evdec failed on line %zu: %s\n", row, d.msg);
                    return 1;
                }
                if (b.count == 4096) {
                    fields += b.field_count;
                    qr_batch_reset(&b);
                }
            }
            fields += b.field_count;
            double ns = (double)(cpu_ns() - t0);
            if (ns < best) best = ns;
        }
        report("evdec", best, count, bytes);
        printf("         (%.1f fields per event)\n", (double)fields / 5 / (double)count);
        qr_batch_fini(&b);
    }
    /* /v1/ingest bodies */
    if (all || strcmp(stage, "ingest") == 0) {
        const char *src = "{\"service\":\"bench\",\"host\":\"loadgen\"}";
        size_t body_count = (count + 999) / 1000;
        qr_buf *bodies[2];
        for (int order = 0; order < 2; order++) {
            bodies[order] = calloc(body_count, sizeof(qr_buf));
            for (size_t bi = 0; bi < body_count; bi++) {
                qr_buf *body = &bodies[order][bi];
                qr_buf_init(body);
                if (order == 0) {
                    qr_buf_append(body, "{\"source\":", 10);
                    qr_buf_append(body, src, strlen(src));
                    qr_buf_append(body, ",\"logs\":[", 9);
                } else {
                    qr_buf_append(body, "{\"logs\":[", 9);
                }
                for (size_t row = bi * 1000; row < count && row < bi * 1000 + 1000; row++) {
                    if (row > bi * 1000) qr_buf_u8(body, ',');
                    qr_buf_append(body, L.text.data + L.off[row], L.off[row + 1] - L.off[row] - 1);
                }
                qr_buf_u8(body, ']');
                if (order == 1) {
                    qr_buf_append(body, ",\"source\":", 10);
                    qr_buf_append(body, src, strlen(src));
                }
                qr_buf_u8(body, '}');
            }
        }
        ingest_result *res = calloc(1, sizeof *res);
        qr_batch b;
        qr_batch_init(&b);
        for (int order = 0; order < 2; order++) {
            best = 1e30;
            for (int run = 0; run < 5; run++) {
                size_t events = 0;
                int64_t t0 = cpu_ns();
                for (size_t bi = 0; bi < body_count; bi++) {
                    qr_diag d;
                    qr_diag_init(&d);
                    ingest_opts io = {1750000000LL * QR_NS_PER_SEC, 0, 0, emit_count, &events};
                    res->accepted = res->failed = res->error_count = 0;
                    const qr_buf *body = &bodies[order][bi];
                    if (ingest_decode_json((const char *)body->data, body->len, &io, &b, res, &d) !=
                            0 ||
                        res->failed) {
                        fprintf(stderr, "ingest failed on body %zu: %s\n", bi, d.msg);
                        return 1;
                    }
                }
                double ns = (double)(cpu_ns() - t0);
                if (events != count) {
                    fprintf(stderr, "ingest decoded %zu of %zu events\n", events, count);
                    return 1;
                }
                if (ns < best) best = ns;
            }
            report(order == 0 ? "ingest1" : "ingest2", best, count, bytes);
        }
        printf("         (ingest1: one pass, source first; ingest2: \"logs\" first, general "
               "path)\n");
        for (int order = 0; order < 2; order++) {
            for (size_t bi = 0; bi < body_count; bi++) qr_buf_fini(&bodies[order][bi]);
            free(bodies[order]);
        }
        qr_batch_fini(&b);
        free(res);
    }
    qr_buf_fini(&L.text);
    free(L.off);
    return 0;
}

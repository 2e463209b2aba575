/* segment_bench — writes segments from realistic generated events (common/qr_gen, decoded
 * by storage/evdec into 4096-event batches as the memtable hands them to seg_write) and
 * reports write CPU per event, bytes per event per section, size against `zstd -3` of the
 * same NDJSON, needle lookups and block-metadata aggregates.
 *
 *   segment_bench [EVENTS=1000000] [EVENTS_PER_SEGMENT=262144] [DIR=/tmp] [ZSTD_LEVEL=0]
 *                 [SEED=5] [REPEAT=1]
 * Times are CPU time of this process (the machine is shared); with REPEAT > 1 each segment
 * is written REPEAT times and the fastest write counts. */
#include "common/qr_gen.h"
#include "common/qr_hash.h"
#include "storage/evdec.h"
#include "storage/segment.h"
#include "storage/tokenize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define CHUNK_ROWS 4096 /* MEMTAB_CHUNK_ROWS */

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

int main(int argc, char **argv)
{
    size_t events = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    size_t per_seg = argc > 2 ? strtoull(argv[2], NULL, 10) : 262144;
    const char *dir = argc > 3 ? argv[3] : "/tmp";
    int level = argc > 4 ? atoi(argv[4]) : 0;
    uint64_t seed = argc > 5 ? strtoull(argv[5], NULL, 10) : 5;
    int repeat = argc > 6 ? atoi(argv[6]) : 1;
    if (repeat < 1) repeat = 1;
    qr_gen_opts go = {.seed = seed};
    qr_gen *g = qr_gen_new(&go);
    qr_buf nd;
    qr_buf_init(&nd);
    seg_stats total;
    memset(&total, 0, sizeof total);
    double write_s = 0;
    size_t nseg = 0;
    char paths[64][512];
    int64_t now_ns = 1750000000000000000LL;
    for (size_t done = 0; done < events && nseg < 64; nseg++) {
        size_t n = events - done < per_seg ? events - done : per_seg;
        size_t nb = (n + CHUNK_ROWS - 1) / CHUNK_ROWS;
        qr_batch *batches = calloc(nb, sizeof *batches);
        const qr_batch **ptrs = calloc(nb, sizeof *ptrs);
        for (size_t b = 0; b < nb; b++) {
            qr_batch_init(&batches[b]);
            ptrs[b] = &batches[b];
            for (size_t row_idx = 0; row_idx < CHUNK_ROWS && b * CHUNK_ROWS + row_idx < n;
                 row_idx++) {
                size_t line_off = nd.len;
                qr_gen_next_ndjson(g, &nd);
                if ((b * CHUNK_ROWS + row_idx) % 1000 == 0) now_ns += 1000000000LL;
                evdec_opts eo = {.now_ns = now_ns};
                qr_diag d;
                qr_diag_init(&d);
                if (evdec_ndjson_line((const char *)nd.data + line_off, nd.len - line_off, &eo,
                                      &batches[b], &d) != 0) {
                    fprintf(stderr, "evdec: %s\n", d.msg);
                    return 1;
                }
            }
        }
        snprintf(paths[nseg], sizeof paths[nseg], "%s/bench_%d_%zu" SEG_FILE_SUFFIX, dir,
                 (int)getpid(), nseg);
        seg_stats st;
        double best = 1e30;
        for (int rep = 0; rep < repeat; rep++) {
            qr_diag d;
            qr_diag_init(&d);
            seg_write_opts opts = {.segment_id = nseg, .zstd_level = level};
            double t0 = cpu_s();
            if (seg_write(paths[nseg], ptrs, nb, &opts, &st, &d) != 0) {
                fprintf(stderr, "seg_write: %s\n", d.msg);
                return 1;
            }
            double t = cpu_s() - t0;
            if (t < best) best = t;
        }
        write_s += best;
        uint64_t *dst = (uint64_t *)&total, *src = (uint64_t *)&st;
        for (size_t k = 0; k < sizeof st / 8; k++) dst[k] += src[k];
        for (size_t b = 0; b < nb; b++) qr_batch_fini(&batches[b]);
        free(batches);
        free(ptrs);
        done += n;
    }
    qr_gen_free(g);
    double e = (double)total.rows;
    size_t zcap = ZSTD_compressBound(nd.len);
    void *z = malloc(zcap);
    double t0 = cpu_s();
    size_t zlen = ZSTD_compress(z, zcap, nd.data, nd.len, 3);
    double zs = cpu_s() - t0;
    free(z);
    printf("events %.0f in %zu segments; seg_write %.3f us/event CPU = %.0f K events/s (fsync "
           "included, its wait not)\n",
           e, nseg, write_s / e * 1e6, e / write_s / 1000);
    printf("ndjson %.1f MB = %.1f B/event; zstd -3 %.1f MB = %.2f B/event (%.2f s)\n", nd.len / 1e6,
           nd.len / e, zlen / 1e6, zlen / e, zs);
    printf("segments %.1f MB = %.2f B/event = %.3f x zstd -3 (goal <= 0.8)\n",
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

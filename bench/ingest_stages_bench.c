/* ingest_stages_bench — CPU time per event of each stage of `quarry ingest`, one thread.
 *
 *   ingest_stages_bench FILE.ndjson [BATCH=1000] [FLUSH_ROWS=262144] [DIR=/tmp]
 *                       [WAL_LEVEL=DB_WAL_ZSTD_LEVEL]
 *
 * Runs the stages the ingest path runs, in the same order and on the same batch sizes, but
 * one after the other on one thread so each is timed alone (thread CPU time: the machine is
 * shared): evdec (NDJSON → qr_batch), WAL encode (qr_batch_encode), WAL compress (zstd at
 * WAL_LEVEL), memtable (memtab_append_take), seg_write (every FLUSH_ROWS rows, as the flush
 * thread does). No fsync, no locks: their cost is what the CLI figure adds. seg_write runs
 * its index job on a second thread: its figure is process CPU time, and its wall time is
 * printed too. */
#include "common/qr_time.h"
#include "storage/db.h"
#include "storage/evdec.h"
#include "storage/memtable.h"
#include "storage/segment.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

enum { ST_DECODE, ST_ENCODE, ST_COMPRESS, ST_MEMTAB, ST_SEGMENT, ST_COUNT };
static const char *const stage_names[ST_COUNT] = {"evdec", "wal encode", "wal zstd", "memtable",
                                                  "seg_write"};

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double thread_cpu_s(void) { return clock_s(CLOCK_THREAD_CPUTIME_ID); }

typedef struct bench {
    double stage_s[ST_COUNT];
    double seg_wall_s;
    uint64_t raw_bytes, wal_bytes;
    ZSTD_CCtx *cctx;
    int wal_level;
    qr_buf enc, comp;
    memtab *m;
    uint64_t memtab_seq;
    const char *dir;
    uint64_t segments;
    uint64_t seg_bytes;
} bench;

static int flush_memtab(bench *bn)
{
    const qr_batch **chunks;
    size_t count;
    if (memtab_chunks(bn->m, &chunks, &count)) return 1;
    char path[4096];
    snprintf(path, sizeof path, "%s/ingest_stages_%llu.qseg", bn->dir,
             (unsigned long long)bn->segments);
    seg_write_opts so = {.segment_id = bn->segments + 1};
    seg_stats st;
    qr_diag d;
    qr_diag_init(&d);
    double t0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), w0 = clock_s(CLOCK_MONOTONIC);
    int rc = seg_write(path, chunks, count, &so, &st, &d);
    bn->stage_s[ST_SEGMENT] += clock_s(CLOCK_PROCESS_CPUTIME_ID) - t0;
    bn->seg_wall_s += clock_s(CLOCK_MONOTONIC) - w0;
    free(chunks);
    if (rc) {
        fprintf(stderr, "seg_write: %s\n", d.msg);
        return 1;
    }
    remove(path);
    bn->seg_bytes += st.file_bytes;
    bn->segments++;
    memtab_free(bn->m);
    bn->m = memtab_new(++bn->memtab_seq);
    return bn->m ? 0 : 1;
}

static int run_batch(bench *bn, qr_batch *b, uint64_t flush_rows)
{
    double t0 = thread_cpu_s();
    qr_buf_clear(&bn->enc);
    if (qr_batch_encode(b, &bn->enc)) return 1;
    double t1 = thread_cpu_s();
    size_t bound = ZSTD_compressBound(bn->enc.len);
    qr_buf_clear(&bn->comp);
    if (!qr_buf_reserve(&bn->comp, bound)) return 1;
    size_t zn =
        ZSTD_compressCCtx(bn->cctx, bn->comp.data, bound, bn->enc.data, bn->enc.len, bn->wal_level);
    if (ZSTD_isError(zn)) return 1;
    double t2 = thread_cpu_s();
    if (memtab_append_take(bn->m, b, 1)) return 1;
    double t3 = thread_cpu_s();
    bn->stage_s[ST_ENCODE] += t1 - t0;
    bn->stage_s[ST_COMPRESS] += t2 - t1;
    bn->stage_s[ST_MEMTAB] += t3 - t2;
    bn->raw_bytes += bn->enc.len;
    bn->wal_bytes += zn;
    if (memtab_rows(bn->m) >= flush_rows) return flush_memtab(bn);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: ingest_stages_bench FILE [BATCH] [FLUSH_ROWS] [DIR] [LEVEL]\n");
        return 2;
    }
    size_t batch_rows = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000;
    uint64_t flush_rows = argc > 3 ? strtoull(argv[3], NULL, 10) : 262144;
    db_malloc_tune(); /* as under db_open */
    bench bn;
    memset(&bn, 0, sizeof bn);
    bn.dir = argc > 4 ? argv[4] : "/tmp";
    bn.wal_level = argc > 5 ? atoi(argv[5]) : DB_WAL_ZSTD_LEVEL;
    bn.cctx = ZSTD_createCCtx();
    qr_buf_init(&bn.enc);
    qr_buf_init(&bn.comp);
    bn.m = memtab_new(++bn.memtab_seq);
    FILE *f = fopen(argv[1], "r");
    if (!f || !bn.cctx || !bn.m) {
        perror(argv[1]);
        return 1;
    }
    evdec_opts eo = {.now_ns = qr_now_ns()};
    qr_batch b;
    qr_batch_init(&b);
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t got;
    uint64_t events = 0, rejected = 0;
    /* lines of one batch, read before the decode is timed (clock reads per line would cost
     * more than some stages) */
    qr_buf text;
    qr_buf_init(&text);
    size_t *ends = malloc(batch_rows * sizeof *ends);
    bool eof = false;
    while (!eof) {
        qr_buf_clear(&text);
        size_t nlines = 0;
        while (nlines < batch_rows) {
            if ((got = getline(&line, &line_cap, f)) <= 0) {
                eof = true;
                break;
            }
            size_t len = (size_t)got;
            if (line[len - 1] == '\n') len--;
            qr_buf_append(&text, line, len);
            ends[nlines++] = text.len;
        }
        if (!qr_buf_ok(&text)) return 1;
        double t0 = thread_cpu_s();
        for (size_t idx = 0; idx < nlines; idx++) {
            size_t start = idx ? ends[idx - 1] : 0;
            qr_diag d;
            qr_diag_init(&d);
            if (evdec_ndjson_line((const char *)text.data + start, ends[idx] - start, &eo, &b, &d))
                rejected++;
        }
        bn.stage_s[ST_DECODE] += thread_cpu_s() - t0;
        if (b.count == batch_rows) {
            events += b.count;
            if (run_batch(&bn, &b, flush_rows)) return 1;
            qr_batch_reset(&b);
            eo.now_ns += 1000000;
        }
    }
    qr_buf_fini(&text);
    free(ends);
    if (b.count) {
        events += b.count;
        if (run_batch(&bn, &b, flush_rows)) return 1;
    }
    if (memtab_rows(bn.m) && flush_memtab(&bn)) return 1;
    double total = 0;
    printf("%llu events (%llu rejected), batch %zu, flush %llu rows, %llu segments\n",
           (unsigned long long)events, (unsigned long long)rejected, batch_rows,
           (unsigned long long)flush_rows, (unsigned long long)bn.segments);
    for (int st = 0; st < ST_COUNT; st++) {
        double us = bn.stage_s[st] * 1e6 / (double)(events ? events : 1);
        total += us;
        printf("  %-11s %6.3f us/event\n", stage_names[st], us);
    }
    printf("  %-11s %6.3f us/event\n", "total", total);
    printf("  seg_write wall %.3f us/event (index job on a second thread)\n",
           bn.seg_wall_s * 1e6 / (double)(events ? events : 1));
    printf("  wal raw %.1f B/event, compressed %.1f B/event (level %d); segment %.1f B/event\n",
           (double)bn.raw_bytes / (double)events, (double)bn.wal_bytes / (double)events,
           bn.wal_level, (double)bn.seg_bytes / (double)events);
    free(line);
    fclose(f);
    qr_batch_fini(&b);
    qr_buf_fini(&bn.enc);
    qr_buf_fini(&bn.comp);
    memtab_free(bn.m);
    ZSTD_freeCCtx(bn.cctx);
    return 0;
}

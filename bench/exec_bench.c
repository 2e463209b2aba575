/* exec_bench — one query run many times in one process over a data directory, as a server
 * would run it (segments stay open between runs): the engine's took_ms, best and median.
 *
 * Usage: exec_bench DATA_DIR "QUERY" [--runs N] [--threads T] [--msg-cache MB] [--explain]
 * --msg-cache MB: an exec_msg_cache of MB MiB shared by the runs, as a server keeps one
 * (default: none, every run decompresses the frames of its result rows).
 * The first run is a warm-up (it opens the segments' indexes) and is reported on its own.
 * "cpu" is the process CPU time per run (all threads): on a shared machine it moves less
 * than the wall time.
 * The directory is opened like `quarry query` opens it (no flush on close, no compaction); it
 * takes the directory's lock, so copy a directory another process is using. */
#include "engine/engine.h"
#include "storage/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: exec_bench DATA_DIR \"QUERY\" [--runs N] [--threads T] "
                        "[--msg-cache MB] [--explain]\n");
        return 2;
    }
    const char *dir = argv[1], *query = argv[2];
    int runs = 20;
    bool explain = false;
    int cache_mb = 0;
    exec_opts opts;
    memset(&opts, 0, sizeof opts);
    for (int idx = 3; idx < argc; idx++) {
        if (strcmp(argv[idx], "--runs") == 0 && idx + 1 < argc)
            runs = atoi(argv[++idx]);
        else if (strcmp(argv[idx], "--threads") == 0 && idx + 1 < argc)
            opts.threads = (uint32_t)atoi(argv[++idx]);
        else if (strcmp(argv[idx], "--msg-cache") == 0 && idx + 1 < argc)
            cache_mb = atoi(argv[++idx]);
        else if (strcmp(argv[idx], "--explain") == 0)
            explain = true;
    }
    if (cache_mb > 0 && !(opts.msg_cache = exec_msg_cache_new((size_t)cache_mb * 1024 * 1024))) {
        fprintf(stderr, "exec_bench: out of memory\n");
        return 1;
    }
    if (runs < 1) runs = 1;
    db_opts dbo;
    memset(&dbo, 0, sizeof dbo);
    dbo.no_flush_on_close = true;
    dbo.compact_off = true; /* as `quarry query`: a background merge would change the data */
    dbo.flush_age_ms = 24u * 3600 * 1000;
    db_t *db;
    qr_diag d;
    qr_diag_init(&d);
    if (db_open(dir, &dbo, &db, NULL, &d) != 0) {
        fprintf(stderr, "exec_bench: cannot open %s: %s\n", dir, d.msg);
        return 1;
    }
    double *took = calloc((size_t)runs, sizeof *took);
    exec_result *r = NULL;
    int status = 0;
    struct timespec cpu0 = {0}, cpu1 = {0};
    for (int run = 0; run <= runs && took; run++) {
        if (run == 1) clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
        if (exec_run(db, NULL, query, &opts, &r, &d) != 0) {
            fprintf(stderr, "exec_bench: %s\n", d.msg);
            status = 1;
            break;
        }
        if (run == 0)
            printf("first run: %.3f ms, %llu rows, hits %llu, scanned %llu\n", r->took_ms,
                   (unsigned long long)r->row_count, (unsigned long long)r->hits,
                   (unsigned long long)r->scanned);
        else
            took[run - 1] = r->took_ms;
        exec_result_free(r);
        r = NULL;
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
    if (!status && took) {
        double cpu_ms =
            (double)(cpu1.tv_sec - cpu0.tv_sec) * 1e3 + (double)(cpu1.tv_nsec - cpu0.tv_nsec) / 1e6;
        qsort(took, (size_t)runs, sizeof *took, dbl_cmp);
        printf("%d runs, threads %u: best %.3f ms, median %.3f ms, cpu %.3f ms per run\n", runs,
               opts.threads, took[0], took[runs / 2], cpu_ms / runs);
        if (opts.msg_cache) {
            exec_msg_cache_stat st;
            exec_msg_cache_stats(opts.msg_cache, &st);
            printf("msg cache: %llu entries, %zu of %zu bytes, %llu hits, %llu misses\n",
                   (unsigned long long)st.entries, st.used_bytes, st.budget_bytes,
                   (unsigned long long)st.hits, (unsigned long long)st.misses);
        }
    }
    if (!status && explain) {
        char *text = malloc(strlen(query) + 9);
        if (text) {
            sprintf(text, "EXPLAIN %s", query);
            if (exec_run(db, NULL, text, &opts, &r, &d) == 0) {
                for (uint64_t row = 0; row < r->row_count; row++)
                    printf("%.*s\n", (int)r->cells[row].v.s.len, r->cells[row].v.s.ptr);
                exec_result_free(r);
            }
            free(text);
        }
    }
    free(took);
    db_close(db);
    exec_msg_cache_free(opts.msg_cache);
    return status;
}

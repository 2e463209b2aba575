/* quarry ingest: load NDJSON (or text lines) into a data directory.
 *
 * The reading thread cuts the input into jobs of --batch lines; worker threads decode a job
 * into an event batch (storage/evdec.h) and hand it to db_ingest, which returns once the batch
 * is durable. Several workers keep several batches in the WAL's group commit at once, so
 * decoding overlaps with fsync. Rejected lines are counted and the first few reported with
 * their line number and reason. `--acks FILE` appends "FIRST LAST" line ranges after each
 * durable batch (used by crash tests: every line in FILE survived). */
#include "common/qr_input.h"
#include "common/qr_time.h"
#include "repl/cli.h"

#include "engine/alert.h"
#include "storage/db.h"
#include "storage/evdec.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LINE_BYTES (QR_MSG_MAX_BYTES + 64 * 1024)
#define REPORT_REJECTS 5
#define QUEUE_JOBS 8

typedef struct job {
    char *text;           /* lines separated by '\0' */
    size_t text_len, text_cap;
    uint32_t *offsets;    /* start of each line in text */
    uint64_t *line_nos;
    size_t line_count, line_cap;
    struct job *next;
} job;

typedef struct ingest_state {
    db_t *db;
    const char *tenant;
    bool text_format;
    evdec_opts dec;
    FILE *acks;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    job *queue_head, *queue_tail;
    size_t queued;
    job *free_jobs;
    bool done;
    int fatal_rc;
    qr_diag fatal;
    uint64_t accepted, rejected;
    uint64_t reject_lines[REPORT_REJECTS];
    char reject_reasons[REPORT_REJECTS][200];
} ingest_state;

static void ingest_usage(FILE *f)
{
    fprintf(f,
            "usage: quarry ingest --data DIR [options] [FILE ...]\n"
            "  FILE            NDJSON (or text) files; '-' or none reads stdin; .gz/.zst by name\n"
            "  --data DIR      data directory (created if missing)\n"
            "  --tenant T      tenant to load into (default \"default\")\n"
            "  --format F      ndjson (default) or text (one event per line)\n"
            "  --service S     service for events that name none (text lines)\n"
            "  --host H        host for events that name none\n"
            "  --batch N       events per durable batch (default 1000)\n"
            "  --fsync P       always (default) | interval | never\n"
            "  --workers N     decoding threads (default: number of cores)\n"
            "  --acks FILE     append \"FIRST LAST\" line ranges once durable\n"
            "  --flush-rows N  memtable rows before a segment is written (default 262144)\n"
            "  --no-compact    no background compaction while loading (quarry compact later)\n"
            "  --no-compact    no background compaction while loading (quarry compact later)\n"
            "  --quiet         no progress line\n");
}

static job *job_get(ingest_state *st)
{
    job *j = st->free_jobs;
    if (j) {
        st->free_jobs = j->next;
        j->text_len = 0;
        j->line_count = 0;
        return j;
    }
    return calloc(1, sizeof(job));
}

static int job_add_line(job *j, const char *line, size_t len, uint64_t line_no)
{
    if (j->text_len + len + 1 > j->text_cap) {
        size_t cap = j->text_cap ? j->text_cap : 512 * 1024;
        while (cap < j->text_len + len + 1) cap *= 2;
        char *p = realloc(j->text, cap);
        if (!p) return QR_ENOMEM;
        j->text = p;
        j->text_cap = cap;
    }
    if (j->line_count == j->line_cap) {
        size_t cap = j->line_cap ? j->line_cap * 2 : 1024;
        uint32_t *o = realloc(j->offsets, cap * sizeof *o);
        if (!o) return QR_ENOMEM;
        j->offsets = o;
        uint64_t *l = realloc(j->line_nos, cap * sizeof *l);
        if (!l) return QR_ENOMEM;
        j->line_nos = l;
        j->line_cap = cap;
    }
    j->offsets[j->line_count] = (uint32_t)j->text_len;
    j->line_nos[j->line_count++] = line_no;
    memcpy(j->text + j->text_len, line, len);
    j->text_len += len;
    j->text[j->text_len++] = '\0';
    return 0;
}

static void job_free(job *j)
{
    free(j->text);
    free(j->offsets);
    free(j->line_nos);
    free(j);
}

static void note_reject(ingest_state *st, uint64_t line_no, const char *reason)
{
    if (st->rejected < REPORT_REJECTS) {
        st->reject_lines[st->rejected] = line_no;
        snprintf(st->reject_reasons[st->rejected], sizeof st->reject_reasons[0], "%s", reason);
    }
    st->rejected++;
}

static void *worker_main(void *arg)
{
    ingest_state *st = arg;
    qr_batch batch;
    qr_batch_init(&batch);
    for (;;) {
        pthread_mutex_lock(&st->mu);
        while (!st->queue_head && !st->done) pthread_cond_wait(&st->cond, &st->mu);
        job *j = st->queue_head;
        if (!j) {
            pthread_mutex_unlock(&st->mu);
            break;
        }
        st->queue_head = j->next;
        if (!st->queue_head) st->queue_tail = NULL;
        st->queued--;
        pthread_cond_broadcast(&st->cond);
        bool stop = st->fatal_rc != 0;
        pthread_mutex_unlock(&st->mu);

        qr_batch_reset(&batch);
        uint64_t rejected_here = 0;
        uint64_t bad_lines[64];
        char bad_reasons[REPORT_REJECTS][200];
        /* one diag for the job, cleared only after a rejected line (clearing it per line
         * was ~1 % of ingest CPU: it is a few hundred bytes) */
        qr_diag d;
        qr_diag_init(&d);
        for (size_t idx = 0; !stop && idx < j->line_count; idx++) {
            const char *line = j->text + j->offsets[idx];
            size_t len = (idx + 1 < j->line_count ? j->offsets[idx + 1] : j->text_len) -
                         j->offsets[idx] - 1;
            if (len == 0) continue; /* blank lines are not events */
            if (d.code) qr_diag_init(&d);
            int rc = st->text_format ? evdec_text_line(line, len, &st->dec, &batch, &d)
                                     : evdec_ndjson_line(line, len, &st->dec, &batch, &d);
            if (rc) {
                if (rejected_here < 64) bad_lines[rejected_here] = j->line_nos[idx];
                if (rejected_here < REPORT_REJECTS)
                    snprintf(bad_reasons[rejected_here], sizeof bad_reasons[0], "%s",
                             d.msg[0] ? d.msg : qr_strerror(rc));
                rejected_here++;
                d.code = d.code ? d.code : rc; /* cleared before the next line */
            }
        }
        qr_diag_init(&d);
        size_t batch_rows = batch.count;
        int rc = stop ? 0 : db_ingest_take(st->db, st->tenant, &batch, &d);
        pthread_mutex_lock(&st->mu);
        if (rc) {
            if (!st->fatal_rc) {
                st->fatal_rc = rc;
                st->fatal = d;
            }
        } else if (!stop) {
            st->accepted += batch_rows;
            for (uint64_t r = 0; r < rejected_here; r++)
                note_reject(st, r < 64 ? bad_lines[r] : 0,
                            r < REPORT_REJECTS ? bad_reasons[r] : "");
            if (st->acks && j->line_count) {
                fprintf(st->acks, "%llu %llu\n", (unsigned long long)j->line_nos[0],
                        (unsigned long long)j->line_nos[j->line_count - 1]);
                fflush(st->acks);
            }
        }
        j->next = st->free_jobs;
        st->free_jobs = j;
        pthread_mutex_unlock(&st->mu);
    }
    qr_batch_fini(&batch);
    return NULL;
}

static void enqueue(ingest_state *st, job *j)
{
    pthread_mutex_lock(&st->mu);
    while (st->queued >= QUEUE_JOBS) pthread_cond_wait(&st->cond, &st->mu);
    j->next = NULL;
    if (st->queue_tail) st->queue_tail->next = j;
    else st->queue_head = j;
    st->queue_tail = j;
    st->queued++;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->mu);
}

static void progress(ingest_state *st, uint64_t bytes, int64_t start_ns, bool final)
{
    double secs = (double)(qr_monotonic_ns() - start_ns) / 1e9;
    if (secs <= 0) secs = 1e-9;
    pthread_mutex_lock(&st->mu);
    uint64_t acc = st->accepted, rej = st->rejected;
    pthread_mutex_unlock(&st->mu);
    char a[32];
    fprintf(stderr, "\r%s events  %.0f events/s  %.1f MB/s  %llu rejected%s",
            cli_group_digits(acc, a, sizeof a), acc / secs, bytes / secs / 1e6,
            (unsigned long long)rej, final ? "\n" : "   ");
}

int cli_ingest(int argc, char **argv)
{
    const char *data = NULL, *tenant = NULL, *format = "ndjson", *service = NULL, *host = NULL;
    const char *fsync_policy = "always", *acks_path = NULL;
    bool no_compact = false;
    uint64_t flush_rows = 0, batch_size = 1000, workers = (uint64_t)sysconf(_SC_NPROCESSORS_ONLN);
    bool quiet = false;
    const char **files = calloc((size_t)argc + 1, sizeof *files);
    size_t file_count = 0;
    if (!files) return 1;
    for (int idx = 0; idx < argc; idx++) {
        const char *v;
        if (strcmp(argv[idx], "--help") == 0 || strcmp(argv[idx], "-h") == 0) {
            ingest_usage(stdout);
            free(files);
            return 0;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--data"))) data = v;
        else if ((v = cli_opt_value(argc, argv, &idx, "--tenant"))) tenant = v;
        else if ((v = cli_opt_value(argc, argv, &idx, "--format"))) format = v;
        else if ((v = cli_opt_value(argc, argv, &idx, "--service"))) service = v;
        else if ((v = cli_opt_value(argc, argv, &idx, "--host"))) host = v;
        else if ((v = cli_opt_value(argc, argv, &idx, "--fsync"))) fsync_policy = v;
        else if ((v = cli_opt_value(argc, argv, &idx, "--acks"))) acks_path = v;
        else if ((v = cli_opt_value(argc, argv, &idx, "--batch"))) {
            if (!cli_parse_u64(v, &batch_size) || batch_size == 0 || batch_size > 100000) {
                fprintf(stderr, "quarry ingest: --batch wants 1..100000, not \"%s\"\n", v);
                free(files);
                return 2;
            }
        } else if ((v = cli_opt_value(argc, argv, &idx, "--flush-rows"))) {
            if (!cli_parse_u64(v, &flush_rows) || flush_rows == 0 || flush_rows > 4000000) {
                fprintf(stderr, "quarry ingest: --flush-rows wants 1..4000000, not \"%s\"\n", v);
                free(files);
                return 2;
            }
        } else if ((v = cli_opt_value(argc, argv, &idx, "--workers"))) {
            if (!cli_parse_u64(v, &workers) || workers == 0 || workers > 64) {
                fprintf(stderr, "quarry ingest: --workers wants 1..64, not \"%s\"\n", v);
                free(files);
                return 2;
            }
        } else if (strcmp(argv[idx], "--no-compact") == 0) {
            no_compact = true;
        } else if (strcmp(argv[idx], "--quiet") == 0 || strcmp(argv[idx], "-q") == 0) {
            quiet = true;
        } else if (argv[idx][0] == '-' && argv[idx][1] == '-') {
            fprintf(stderr, "quarry ingest: unknown option \"%s\"\n", argv[idx]);
            ingest_usage(stderr);
            free(files);
            return 2;
        } else {
            files[file_count++] = argv[idx];
        }
    }
    if (!data) {
        fprintf(stderr, "quarry ingest: --data DIR is required\n");
        ingest_usage(stderr);
        free(files);
        return 2;
    }
    bool text_format = strcmp(format, "text") == 0;
    if (!text_format && strcmp(format, "ndjson") != 0) {
        fprintf(stderr, "quarry ingest: --format is ndjson or text, not \"%s\"\n", format);
        free(files);
        return 2;
    }
    if (tenant && !db_tenant_name_ok(tenant)) {
        fprintf(stderr, "quarry ingest: bad tenant name \"%s\": use 1-64 letters, digits, "
                        "'_' or '-'\n", tenant);
        free(files);
        return 2;
    }
    db_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.flush_rows = (uint32_t)flush_rows;
    opts.compact_off = no_compact;
    if (strcmp(fsync_policy, "always") == 0) opts.wal.fsync_policy = WAL_FSYNC_ALWAYS;
    else if (strcmp(fsync_policy, "interval") == 0) opts.wal.fsync_policy = WAL_FSYNC_INTERVAL;
    else if (strcmp(fsync_policy, "never") == 0) opts.wal.fsync_policy = WAL_FSYNC_NEVER;
    else {
        fprintf(stderr, "quarry ingest: --fsync is always, interval or never, not \"%s\"\n",
                fsync_policy);
        free(files);
        return 2;
    }
    if (file_count == 0) files[file_count++] = "-";

    ingest_state st;
    memset(&st, 0, sizeof st);
    st.tenant = tenant;
    st.text_format = text_format;
    st.dec.default_service = service;
    st.dec.default_host = host;
    pthread_mutex_init(&st.mu, NULL);
    pthread_cond_init(&st.cond, NULL);
    qr_diag_init(&st.fatal);
    if (acks_path && !(st.acks = fopen(acks_path, "a"))) {
        perror(acks_path);
        free(files);
        return 1;
    }

    qr_diag d;
    qr_diag_init(&d);
    wal_replay_report rep;
    memset(&rep, 0, sizeof rep);
    int rc = db_open(data, &opts, &st.db, &rep, &d);
    if (rc) {
        fprintf(stderr, "quarry ingest: cannot open %s: %s\n", data,
                d.msg[0] ? d.msg : qr_strerror(rc));
        if (st.acks) fclose(st.acks);
        free(files);
        return 1;
    }
    struct alert_mgr *alerts = cli_alerts_open(st.db, "quarry ingest");
    if (rep.skipped_offset >= 0 && rep.skipped_file[0])
        fprintf(stderr, "quarry ingest: recovery stopped at %s offset %lld (%s); %llu bytes "
                        "of an unacknowledged tail were dropped\n", rep.skipped_file,
                (long long)rep.skipped_offset, rep.skipped_reason,
                (unsigned long long)rep.skipped_bytes);
    rollup_mgr *rollups = cli_rollups_open(st.db, false); /* rollups see what is ingested */

    pthread_t *threads = calloc(workers, sizeof *threads);
    for (uint64_t w = 0; w < workers; w++) pthread_create(&threads[w], NULL, worker_main, &st);

    bool show_progress = !quiet && isatty(STDERR_FILENO);
    int64_t start_ns = qr_monotonic_ns(), last_progress = start_ns;
    uint64_t bytes_total = 0;
    int exit_code = 0;
    for (size_t f = 0; f < file_count && !st.fatal_rc; f++) {
        qr_input *in;
        qr_diag_init(&d);
        st.dec.now_ns = qr_now_ns();
        if ((rc = qr_input_open(files[f], MAX_LINE_BYTES, &in, &d))) {
            fprintf(stderr, "quarry ingest: %s\n", d.msg);
            exit_code = 1;
            continue;
        }
        pthread_mutex_lock(&st.mu);
        job *j = job_get(&st);
        pthread_mutex_unlock(&st.mu);
        for (;;) {
            const char *line;
            size_t len;
            uint64_t line_no;
            qr_diag_init(&d);
            int got = qr_input_next(in, &line, &len, &line_no, &d);
            if (got == QR_ELIMIT) {
                pthread_mutex_lock(&st.mu);
                note_reject(&st, line_no, d.msg);
                pthread_mutex_unlock(&st.mu);
                continue;
            }
            if (got < 0) {
                fprintf(stderr, "\nquarry ingest: %s\n", d.msg);
                exit_code = 1;
                break;
            }
            if (got == 0) break;
            if (!j || job_add_line(j, line, len, line_no)) {
                fprintf(stderr, "\nquarry ingest: out of memory\n");
                exit_code = 1;
                break;
            }
            if (j->line_count >= batch_size) {
                enqueue(&st, j);
                pthread_mutex_lock(&st.mu);
                j = job_get(&st);
                bool fatal = st.fatal_rc != 0;
                pthread_mutex_unlock(&st.mu);
                if (fatal) break;
                st.dec.now_ns = qr_now_ns();
                if (show_progress && qr_monotonic_ns() - last_progress > 500 * QR_NS_PER_MS) {
                    last_progress = qr_monotonic_ns();
                    progress(&st, bytes_total + qr_input_bytes_decoded(in), start_ns, false);
                }
            }
        }
        if (j && j->line_count) enqueue(&st, j);
        else if (j) job_free(j);
        bytes_total += qr_input_bytes_decoded(in);
        qr_input_close(in);
    }
    pthread_mutex_lock(&st.mu);
    st.done = true;
    pthread_cond_broadcast(&st.cond);
    pthread_mutex_unlock(&st.mu);
    for (uint64_t w = 0; w < workers; w++) pthread_join(threads[w], NULL);
    free(threads);
    while (st.free_jobs) {
        job *j = st.free_jobs;
        st.free_jobs = j->next;
        job_free(j);
    }
    int64_t load_end_ns = qr_monotonic_ns();
    alert_mgr_close(alerts);
    rollup_mgr_close(rollups);
    db_close(st.db);
    if (st.acks) fclose(st.acks);

    double secs = (double)(load_end_ns - start_ns) / 1e9;
    if (secs <= 0) secs = 1e-9;
    char a[32], r[32];
    if (show_progress) fprintf(stderr, "\r\033[K");
    if (st.fatal_rc) {
        fprintf(stderr, "quarry ingest: stopped: %s\n",
                st.fatal.msg[0] ? st.fatal.msg : qr_strerror(st.fatal_rc));
        exit_code = 1;
    }
    fprintf(stderr, "accepted %s events, rejected %s, in %.2f s: %.0f events/s, %.1f MB/s\n",
            cli_group_digits(st.accepted, a, sizeof a), cli_group_digits(st.rejected, r, sizeof r),
            secs, st.accepted / secs, bytes_total / secs / 1e6);
    for (uint64_t idx = 0; idx < st.rejected && idx < REPORT_REJECTS; idx++)
        fprintf(stderr, "  line %llu: %s\n", (unsigned long long)st.reject_lines[idx],
                st.reject_reasons[idx]);
    if (st.rejected > REPORT_REJECTS)
        fprintf(stderr, "  ... and %llu more\n",
                (unsigned long long)(st.rejected - REPORT_REJECTS));
    if (st.rejected && !exit_code) exit_code = 1;
    pthread_mutex_destroy(&st.mu);
    pthread_cond_destroy(&st.cond);
    free(files);
    return exit_code;
}

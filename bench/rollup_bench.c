/* rollup_bench — a long-range 5-minute aggregate answered from a rollup vs from raw events,
 * the rollup's backfill, and ingest throughput with 0, 10 and 100 active rollups, then with
 * 0, 10 and 100 rules + rollups.
 *
 *   rollup_bench [EVENTS=1000000] [DAYS=30] [DIR=/tmp] [RUNS=5] [INGEST_EVENTS=300000]
 *                [MIXED_RUNS=3]
 *
 * EVENTS = 0 skips the query part. *
 * EVENTS generated events (common/qr_gen) spread over the last DAYS days are ingested and
 * flushed; then each query runs RUNS times over the whole range (5-minute buckets per
 * service: count(*) and p99(latency_ms)) from the raw events, a rollup
 * `bucket(ts, 5m), service, count(*), p99(latency_ms)` is created (backfilled), and the same
 * query runs again, rewritten to read the rollup (checked by EXPLAIN; the answers must be
 * equal). Medians of wall time are printed. Ingest: INGEST_EVENTS events with ts near now
 * into a fresh directory (fsync never, 4,096-event batches) with N rollups of varied filters
 * and labels; events per CPU second of the ingesting thread (db_ingest_take: WAL append,
 * memtable, observers). Rules + rollups: the definitions of `bench/alert_bench.py --mixed`
 * (half alert rules, half rollups, listed by mixed_definition), INGEST_EVENTS events per run,
 * MIXED_RUNS runs of each count interleaved (0, 10, 100, 0, ...); CPU µs per event of the
 * ingesting thread inside db_ingest_take (the observers run there; the alert evaluator thread
 * is off: it runs per evaluation period, not per event). */
#include "common/qr_gen.h"
#include "common/qr_time.h"
#include "engine/alert.h"
#include "engine/engine.h"
#include "engine/rollup.h"
#include "storage/db.h"
#include "storage/evdec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* CPU time of the calling thread: what ingest costs the ingesting thread (the observers run
 * there), steady on a shared machine. */
static double thread_cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static db_t *open_db(const char *dir)
{
    db_opts o;
    memset(&o, 0, sizeof o);
    o.wal.fsync_policy = WAL_FSYNC_NEVER;
    db_t *db = NULL;
    qr_diag d;
    qr_diag_init(&d);
    if (db_open(dir, &o, &db, NULL, &d)) {
        fprintf(stderr, "db_open %s: %s\n", dir, d.msg);
        exit(1);
    }
    return db;
}

/* Generates n events from start_ns at rate per second and ingests them; the ingesting
 * thread's CPU seconds inside db_ingest_take. */
static double load(db_t *db, size_t n, int64_t start_ns, double rate, uint64_t seed)
{
    qr_gen_opts go = {.seed = seed, .start_ns = start_ns, .rate_per_sec = rate};
    qr_gen *g = qr_gen_new(&go);
    qr_buf line;
    qr_buf_init(&line);
    qr_batch b;
    qr_batch_init(&b);
    evdec_opts eo = {.now_ns = qr_now_ns()};
    double ingest_s = 0;
    for (size_t idx = 0; idx < n; idx++) {
        qr_buf_clear(&line);
        qr_gen_next_ndjson(g, &line);
        qr_diag d;
        qr_diag_init(&d);
        evdec_ndjson_line((const char *)line.data, line.len - 1, &eo, &b, &d);
        if (b.count == 4096 || idx + 1 == n) {
            double t0 = thread_cpu_s();
            if (db_ingest_take(db, NULL, &b, &d)) {
                fprintf(stderr, "ingest: %s\n", d.msg);
                exit(1);
            }
            ingest_s += thread_cpu_s() - t0;
            qr_batch_reset(&b);
        }
    }
    qr_batch_fini(&b);
    qr_buf_fini(&line);
    qr_gen_free(g);
    return ingest_s;
}

static exec_result *run(db_t *db, rollup_mgr *m, const char *sql)
{
    exec_opts o;
    memset(&o, 0, sizeof o);
    o.rollups = m;
    o.mem_budget_bytes = (size_t)4 << 30; /* raw p99 per (5m, service) over 30 days is big */
    exec_result *r = NULL;
    qr_diag d;
    qr_diag_init(&d);
    if (exec_run(db, NULL, sql, &o, &r, &d)) {
        fprintf(stderr, "%s\n  -> %s\n", sql, d.msg);
        exit(1);
    }
    return r;
}

static double median_ms(db_t *db, rollup_mgr *m, const char *sql, int runs, qr_buf *csv)
{
    double *t = calloc((size_t)runs, sizeof *t);
    for (int idx = 0; idx < runs; idx++) {
        double t0 = now_s();
        exec_result *r = run(db, m, sql);
        t[idx] = (now_s() - t0) * 1e3;
        if (idx == 0 && csv) {
            qr_buf_clear(csv);
            exec_result_format(r, EXEC_FORMAT_CSV, csv);
        }
        exec_result_free(r);
    }
    qsort(t, (size_t)runs, sizeof *t, dbl_cmp);
    double med = t[runs / 2];
    free(t);
    return med;
}

static bool body_equal(const qr_buf *a, const qr_buf *b)
{
    const char *x = memchr(a->data, '\n', a->len), *y = memchr(b->data, '\n', b->len);
    if (!x || !y) return false;
    size_t xl = a->len - (size_t)(x - (const char *)a->data);
    size_t yl = b->len - (size_t)(y - (const char *)b->data);
    return xl == yl && memcmp(x, y, xl) == 0;
}

/* The i-th definition of `bench/alert_bench.py --mixed` (keep the two in step). */
static void mixed_definition(int i, char *out, size_t cap)
{
    static const char *const svcs[] = {"auth",     "search",    "api-gateway", "payment",
                                       "checkout", "inventory", "user",        "notification",
                                       "shipping", "catalog"};
    int k = i / 2;
    const char *svc = svcs[k % 10];
    if (i % 2 == 0) {
        const char *sel = NULL, *when = "count(*) > 1000000000";
        char buf[300];
        switch (k % 4) {
        case 0:
            snprintf(buf, sizeof buf,
                     "SELECT count(*) FROM logs WHERE service = '%s' AND level >= ERROR", svc);
            sel = buf;
            break;
        case 1:
            sel = "SELECT service, count(*) FROM logs WHERE level = 'WARN' GROUP BY service";
            break;
        case 2:
            snprintf(buf, sizeof buf, "SELECT p99(latency_ms) FROM logs WHERE service = '%s'", svc);
            sel = buf;
            when = "p99(latency_ms) > 1000000000";
            break;
        default:
            sel = "SELECT count(*) FROM logs WHERE msg MATCH 'timeout'";
        }
        snprintf(out, cap,
                 "CREATE ALERT r%d AS %s WINDOW 5m EVERY 30s WHEN %s NOTIFY WEBHOOK "
                 "'http://127.0.0.1:9/hook'",
                 k, sel, when);
        return;
    }
    switch (k % 4) {
    case 0:
        snprintf(out, cap,
                 "CREATE ROLLUP ru%d AS SELECT bucket(ts, 5m) AS t, service, level, count(*) AS n "
                 "FROM logs GROUP BY t, service, level",
                 k);
        return;
    case 1:
        snprintf(out, cap,
                 "CREATE ROLLUP ru%d AS SELECT bucket(ts, 1m) AS t, host, count(*) AS n, "
                 "p99(latency_ms) AS p FROM logs WHERE service = '%s' GROUP BY t, host",
                 k, svc);
        return;
    case 2:
        snprintf(out, cap,
                 "CREATE ROLLUP ru%d AS SELECT bucket(ts, 5m) AS t, service, count(*) AS n, "
                 "avg(latency_ms) AS a FROM logs WHERE level >= WARN GROUP BY t, service",
                 k);
        return;
    default:
        snprintf(out, cap,
                 "CREATE ROLLUP ru%d AS SELECT bucket(ts, 1h) AS t, service, count(*) AS n FROM "
                 "logs WHERE msg MATCH 'timeout' GROUP BY t, service",
                 k);
    }
}

/* One run of the rules + rollups benchmark: CPU µs per event of the ingesting thread. */
static double mixed_run(const char *dir, int count, size_t n, int run)
{
    char sub[600];
    snprintf(sub, sizeof sub, "%s/mixed%d-%d", dir, count, run);
    db_t *db = open_db(sub);
    rollup_opts ro = {.no_thread = true};
    rollup_mgr *rm = NULL;
    alert_mgr_opts ao;
    memset(&ao, 0, sizeof ao);
    ao.no_thread = true;
    alert_mgr *am = NULL;
    qr_diag d;
    qr_diag_init(&d);
    if (rollup_mgr_open(db, &ro, &rm, &d) || alert_mgr_open(db, &ao, &am, &d)) {
        fprintf(stderr, "managers: %s\n", d.msg);
        exit(1);
    }
    for (int k = 0; k < count; k++) {
        char sql[600];
        mixed_definition(k, sql, sizeof sql);
        exec_opts o;
        memset(&o, 0, sizeof o);
        o.rollups = rm;
        o.alerts = am;
        exec_result *r = NULL;
        if (exec_run(db, NULL, sql, &o, &r, &d)) {
            fprintf(stderr, "%s\n  -> %s\n", sql, d.msg);
            exit(1);
        }
        exec_result_free(r);
    }
    double secs = load(db, n, qr_now_ns() - 30 * QR_NS_PER_SEC, 100000, 42);
    alert_mgr_close(am);
    rollup_mgr_close(rm);
    db_close(db);
    return 1e6 * secs / (double)n;
}

int main(int argc, char **argv)
{
    size_t events = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    int days = argc > 2 ? atoi(argv[2]) : 30;
    const char *base = argc > 3 ? argv[3] : "/tmp";
    int runs = argc > 4 ? atoi(argv[4]) : 5;
    size_t ingest_events = argc > 5 ? strtoull(argv[5], NULL, 10) : 300000;
    int mixed_runs = argc > 6 ? atoi(argv[6]) : 3;
    char dir[512], cmd[1100];
    snprintf(dir, sizeof dir, "%s/rollup_bench.%d", base, (int)getpid());
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0) return 1;

    int64_t now = qr_now_ns();
    int64_t span_ns = (int64_t)days * 86400 * QR_NS_PER_SEC;
    int64_t start = (now - span_ns - 3600 * QR_NS_PER_SEC) / (300 * QR_NS_PER_SEC) * 300 *
                    QR_NS_PER_SEC; /* a 5-minute boundary, an hour before the span */
    double rate = (double)events / ((double)span_ns / 1e9);
    char sub[600];
    snprintf(sub, sizeof sub, "%s/history", dir);
    db_t *db = open_db(sub);
    rollup_opts ro = {.no_thread = true};
    rollup_mgr *m = NULL;
    qr_diag d;
    qr_diag_init(&d);
    if (rollup_mgr_open(db, &ro, &m, &d)) {
        fprintf(stderr, "rollups: %s\n", d.msg);
        return 1;
    }
    if (events > 0) { /* the query part */
        double t0 = now_s();
        load(db, events, start, rate, 11);
        db_flush(db, &d);
        printf("loaded %zu events over %d days (%.3f events/s of event time) in %.2f s\n", events,
               days, rate, now_s() - t0);

        char lo[40], hi[40];
        qr_time_format(start, lo, sizeof lo, false);
        qr_time_format(start + span_ns, hi, sizeof hi, false);
        char q_count[512], q_p99[512];
        char q_svc[512];
        snprintf(q_count, sizeof q_count,
                 "SELECT bucket(ts, 5m) AS t, count(*) FROM logs WHERE ts >= '%s' AND ts < '%s' "
                 "GROUP BY t",
                 lo, hi);
        snprintf(q_p99, sizeof q_p99,
                 "SELECT bucket(ts, 5m) AS t, count(*), p99(latency_ms) FROM logs WHERE ts >= '%s' "
                 "AND ts < '%s' GROUP BY t",
                 lo, hi);
        snprintf(
            q_svc, sizeof q_svc,
            "SELECT bucket(ts, 5m) AS t, service, count(*), p99(latency_ms) FROM logs WHERE ts "
            ">= '%s' AND ts < '%s' GROUP BY t, service",
            lo, hi);
        qr_buf raw1, raw2, raw3, ru1, ru2, ru3;
        qr_buf_init(&raw1);
        qr_buf_init(&raw2);
        qr_buf_init(&raw3);
        qr_buf_init(&ru1);
        qr_buf_init(&ru2);
        qr_buf_init(&ru3);
        double raw_count = median_ms(db, NULL, q_count, runs, &raw1);
        double raw_p99 = median_ms(db, NULL, q_p99, runs, &raw2);
        double raw_svc = median_ms(db, NULL, q_svc, runs, &raw3);

        t0 = now_s();
        exec_result *r =
            run(db, m,
                "CREATE ROLLUP r5m AS SELECT bucket(ts, 5m) AS t, service, count(*) AS "
                "n, p99(latency_ms) AS p FROM logs GROUP BY t, service");
        double backfill_s = now_s() - t0;
        exec_result_free(r);
        rollup_info *infos = NULL;
        size_t n_infos = 0;
        rollup_list(m, NULL, &infos, &n_infos);
        printf("rollup r5m: backfill of %llu events in %.2f s; %llu rows, %llu windows, %llu files "
               "(%llu bytes)\n",
               (unsigned long long)(n_infos ? infos[0].backfill_events : 0), backfill_s,
               (unsigned long long)(n_infos ? infos[0].rows : 0),
               (unsigned long long)(n_infos ? infos[0].windows : 0),
               (unsigned long long)(n_infos ? infos[0].files : 0),
               (unsigned long long)(n_infos ? infos[0].file_bytes : 0));
        rollup_infos_free(infos, n_infos);

        char explain[600];
        snprintf(explain, sizeof explain, "EXPLAIN %s", q_p99);
        r = run(db, m, explain);
        bool used = false;
        for (uint64_t row = 0; row < r->row_count; row++)
            used |=
                r->cells[row].v.s.len >= 11 && !memcmp(r->cells[row].v.s.ptr, "rollup: r5m", 11);
        exec_result_free(r);
        double ru_count = median_ms(db, m, q_count, runs, &ru1);
        double ru_p99 = median_ms(db, m, q_p99, runs, &ru2);
        double ru_svc = median_ms(db, m, q_svc, runs, &ru3);
        printf("30-day 5-minute aggregate (%d runs, median wall ms):\n", runs);
        printf("  count(*) per 5m:                raw %8.2f ms   rollup %8.2f ms   (%.1fx) %s\n",
               raw_count, ru_count, raw_count / ru_count,
               body_equal(&raw1, &ru1) ? "same rows" : "ROWS DIFFER");
        printf("  count(*), p99(latency_ms):      raw %8.2f ms   rollup %8.2f ms   (%.1fx) %s\n",
               raw_p99, ru_p99, raw_p99 / ru_p99,
               body_equal(&raw2, &ru2) ? "same rows" : "ROWS DIFFER");
        printf("  same per service:               raw %8.2f ms   rollup %8.2f ms   (%.1fx) %s\n",
               raw_svc, ru_svc, raw_svc / ru_svc,
               body_equal(&raw3, &ru3) ? "same rows" : "ROWS DIFFER");
        printf("  EXPLAIN: %s\n", used ? "rollup: r5m" : "ROLLUP NOT USED");
        qr_buf_fini(&raw1);
        qr_buf_fini(&raw2);
        qr_buf_fini(&ru1);
        qr_buf_fini(&ru2);
        qr_buf_fini(&raw3);
        qr_buf_fini(&ru3);
    }
    rollup_mgr_close(m);
    db_close(db);

    /* ingest with 0, 10, 100 rollups */
    static const char *const filters[] = {"", "WHERE level >= WARN", "WHERE service = 'payment'",
                                          "WHERE latency_ms > 200",
                                          "WHERE service IN ('api', 'auth') AND level >= ERROR"};
    static const char *const labels[] = {"service", "service, level", "level", "host"};
    int counts[] = {0, 10, 100};
    double base_rate = 0;
    for (int ci = 0; ci < 3; ci++) {
        snprintf(sub, sizeof sub, "%s/ingest%d", dir, counts[ci]);
        db = open_db(sub);
        if (rollup_mgr_open(db, &ro, &m, &d)) return 1;
        for (int k = 0; k < counts[ci]; k++) {
            char sql[600];
            const char *lb = labels[k % 4];
            snprintf(sql, sizeof sql,
                     "CREATE ROLLUP r%d AS SELECT bucket(ts, %dm) AS t, %s, count(*) AS n%s FROM "
                     "logs %s GROUP BY t, %s",
                     k, 1 + k % 5, lb, k % 3 == 0 ? ", p99(latency_ms) AS p" : "", filters[k % 5],
                     lb);
            exec_result_free(run(db, m, sql));
        }
        double secs = load(db, ingest_events, qr_now_ns() - 60 * QR_NS_PER_SEC, 20000, 3);
        double ev_s = (double)ingest_events / secs;
        if (ci == 0) base_rate = ev_s;
        printf("ingest with %3d rollups: %9.0f events/s (%.1f%% of 0 rollups)\n", counts[ci], ev_s,
               100.0 * ev_s / base_rate);
        rollup_mgr_close(m);
        db_close(db);
    }

    /* rules + rollups, counts interleaved run by run */
    if (mixed_runs > 0) {
        double cpu[3][64];
        int nr = mixed_runs > 64 ? 64 : mixed_runs;
        for (int run_idx = 0; run_idx < nr; run_idx++)
            for (int ci = 0; ci < 3; ci++)
                cpu[ci][run_idx] = mixed_run(dir, counts[ci], ingest_events, run_idx);
        double base_min = 0, base_med = 0;
        for (int ci = 0; ci < 3; ci++) {
            printf("rules+rollups %3d: CPU us/event of the ingesting thread:", counts[ci]);
            for (int run_idx = 0; run_idx < nr; run_idx++) printf(" %.3f", cpu[ci][run_idx]);
            qsort(cpu[ci], (size_t)nr, sizeof cpu[ci][0], dbl_cmp);
            double mn = cpu[ci][0], med = cpu[ci][nr / 2];
            if (ci == 0) {
                base_min = mn;
                base_med = med;
            }
            printf(" (min %.3f, median %.3f; +%.1f%% / +%.1f%% vs 0)\n", mn, med,
                   100.0 * (mn / base_min - 1), 100.0 * (med / base_med - 1));
        }
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) return 1;
    return 0;
}

/* quarry check: verify a data directory (every segment and WAL checksum) and report sizes. */
#include "repl/cli.h"
#include "storage/db.h"

#include <stdio.h>
#include <string.h>

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static double per_event(uint64_t bytes, uint64_t events)
{
    return events ? (double)bytes / (double)events : 0.0;
}

int cli_check(int argc, char **argv)
{
    const char *data = NULL;
    bool json = false;
    for (int idx = 0; idx < argc; idx++) {
        const char *v;
        if (strcmp(argv[idx], "--help") == 0 || strcmp(argv[idx], "-h") == 0) {
            printf("usage: quarry check --data DIR [--json]\n"
                   "Verifies every checksum of every segment and WAL record (read-only; safe\n"
                   "while a server runs). Exit status 1 on any corruption.\n");
            return 0;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--data"))) {
            data = v;
        } else if (strcmp(argv[idx], "--json") == 0) {
            json = true;
        } else {
            fprintf(stderr, "quarry check: unknown option \"%s\"\n", argv[idx]);
            return 2;
        }
    }
    if (!data) {
        fprintf(stderr, "usage: quarry check --data DIR [--json]\n");
        return 2;
    }
    db_check_report r;
    qr_diag d;
    qr_diag_init(&d);
    int rc = db_check(data, &r, &d);
    if (rc && rc != QR_ECORRUPT) {
        if (json) {
            printf("{\"ok\": false, \"error\": ");
            json_str(stdout, d.msg[0] ? d.msg : qr_strerror(rc));
            printf("}\n");
        } else {
            fprintf(stderr, "quarry check: %s\n", d.msg[0] ? d.msg : qr_strerror(rc));
        }
        return 1;
    }
    const seg_stats *c = &r.columns;
    struct {
        const char *name;
        uint64_t bytes;
    } cols[] = {
        {"ts", c->ts_bytes},
        {"ingest_ts", c->ingest_ts_bytes},
        {"level", c->level_bytes},
        {"service", c->service_bytes},
        {"host", c->host_bytes},
        {"msg", c->msg_bytes},
        {"fields", c->field_bytes},
        {"bloom", c->bloom_bytes},
        {"postings", c->postings_bytes},
        {"meta", c->meta_bytes},
    };
    size_t ncols = sizeof cols / sizeof cols[0];
    if (json) {
        printf("{\"ok\": %s, \"events\": %llu, \"segments\": %llu, \"bytes\": %llu, "
               "\"tenants\": %llu, \"segment_events\": %llu, \"wal_events\": %llu, "
               "\"wal_files\": %llu, \"wal_records\": %llu, \"wal_bytes\": %llu, "
               "\"wal_torn_tail_bytes\": %llu, "
               "\"bytes_per_event\": %.2f, \"columns\": {",
               r.ok ? "true" : "false", (unsigned long long)r.events,
               (unsigned long long)r.segments, (unsigned long long)r.bytes,
               (unsigned long long)r.tenants, (unsigned long long)r.segment_rows,
               (unsigned long long)r.wal_events, (unsigned long long)r.wal_files,
               (unsigned long long)r.wal_records, (unsigned long long)r.wal_bytes,
               (unsigned long long)r.wal_torn_tail_bytes, per_event(r.bytes, r.events));
        for (size_t idx = 0; idx < ncols; idx++)
            printf("%s\"%s\": {\"bytes\": %llu, \"bytes_per_event\": %.3f}", idx ? ", " : "",
                   cols[idx].name, (unsigned long long)cols[idx].bytes,
                   per_event(cols[idx].bytes, r.segment_rows));
        printf("}, \"problems\": [");
        for (uint32_t idx = 0; idx < r.problem_count && idx < 8; idx++) {
            if (idx) printf(", ");
            json_str(stdout, r.problems[idx]);
        }
        printf("]}\n");
    } else {
        char a[32], b[32], s[32];
        printf("%s: %s\n", data, r.ok ? "ok" : "CORRUPT");
        printf("  events      %s (%s in segments, %s in the WAL)\n",
               cli_group_digits(r.events, a, sizeof a),
               cli_group_digits(r.segment_rows, b, sizeof b),
               cli_group_digits(r.wal_events, s, sizeof s));
        printf("  tenants     %llu\n", (unsigned long long)r.tenants);
        printf("  segments    %llu\n", (unsigned long long)r.segments);
        printf("  bytes       %s on disk (%s WAL), %.1f bytes/event\n",
               cli_group_digits(r.bytes, a, sizeof a), cli_group_digits(r.wal_bytes, b, sizeof b),
               per_event(r.bytes, r.events));
        if (r.segment_rows) {
            printf("  per column (bytes/event in segments):\n");
            for (size_t idx = 0; idx < ncols; idx++)
                printf("    %-10s %12s  %8.2f\n", cols[idx].name,
                       cli_group_digits(cols[idx].bytes, a, sizeof a),
                       per_event(cols[idx].bytes, r.segment_rows));
        }
        if (r.wal_torn_tail_bytes)
            printf("  note        the WAL ends with %llu bytes of an append cut short by a crash "
                   "(never acknowledged; dropped at the next open)\n",
                   (unsigned long long)r.wal_torn_tail_bytes);
        for (uint32_t idx = 0; idx < r.problem_count && idx < 8; idx++)
            printf("  problem: %s\n", r.problems[idx]);
        if (r.problem_count > 8) printf("  ... and %u more problems\n", r.problem_count - 8);
    }
    return r.ok ? 0 : 1;
}

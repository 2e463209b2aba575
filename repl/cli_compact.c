/* quarry compact: merge small segments into large compacted ones now (storage/compact.h). */
#include "common/qr_time.h"
#include "repl/cli.h"
#include "storage/db.h"

#include <stdio.h>
#include <string.h>

static void compact_usage(FILE *f)
{
    fprintf(f, "usage: quarry compact --data DIR [--tenant T] [--rows N] [--level L]\n"
               "Merges runs of small segments into compacted segments (stronger zstd, sparse\n"
               "index) and publishes them; replaced files are removed. --rows bounds the rows\n"
               "of one merged segment (default 1048576), --level is the zstd level (default 9).\n");
}

int cli_compact(int argc, char **argv)
{
    const char *data = NULL, *tenant = NULL;
    uint64_t rows = 0, level = 0;
    for (int idx = 0; idx < argc; idx++) {
        const char *v;
        if (strcmp(argv[idx], "--help") == 0 || strcmp(argv[idx], "-h") == 0) {
            compact_usage(stdout);
            return 0;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--data"))) {
            data = v;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--tenant"))) {
            tenant = v;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--rows"))) {
            if (!cli_parse_u64(v, &rows) || rows < 2 || rows > (1u << 30)) {
                fprintf(stderr, "quarry compact: --rows is 2..1073741824\n");
                return 2;
            }
        } else if ((v = cli_opt_value(argc, argv, &idx, "--level"))) {
            if (!cli_parse_u64(v, &level) || level < 1 || level > 22) {
                fprintf(stderr, "quarry compact: --level is 1..22\n");
                return 2;
            }
        } else {
            fprintf(stderr, "quarry compact: unknown option \"%s\"\n", argv[idx]);
            return 2;
        }
    }
    if (!data) {
        compact_usage(stderr);
        return 2;
    }
    if (tenant && !db_tenant_name_ok(tenant)) {
        fprintf(stderr, "quarry compact: bad tenant name \"%s\"\n", tenant);
        return 2;
    }
    db_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.compact_off = true; /* this command does the merging itself */
    opts.compact_rows = (uint32_t)rows;
    opts.compact_zstd_level = (int)level;
    qr_diag d;
    qr_diag_init(&d);
    db_t *db = NULL;
    int rc = db_open(data, &opts, &db, NULL, &d);
    if (rc) {
        fprintf(stderr, "quarry compact: %s\n", d.msg[0] ? d.msg : qr_strerror(rc));
        return 1;
    }
    int64_t t0 = qr_monotonic_ns();
    db_compact_report r;
    rc = db_compact(db, tenant, &r, &d);
    double secs = (double)(qr_monotonic_ns() - t0) / 1e9;
    db_close(db);
    char a[32], b[32], c[32], e[32];
    printf("merged %s segments into %llu, %s rows, %s -> %s bytes in %.2f s",
           cli_group_digits(r.segments_in, a, sizeof a), (unsigned long long)r.merges,
           cli_group_digits(r.rows, b, sizeof b), cli_group_digits(r.bytes_in, c, sizeof c),
           cli_group_digits(r.bytes_out, e, sizeof e), secs);
    if (secs > 0 && r.rows) printf(" (%.0f rows/s)", (double)r.rows / secs);
    printf("\n");
    if (rc) {
        fprintf(stderr, "quarry compact: %s\n", d.msg[0] ? d.msg : qr_strerror(rc));
        return 1;
    }
    return 0;
}

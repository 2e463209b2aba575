/* quarry gen: realistic generated logs as NDJSON on stdout (common/qr_gen.h). */
#include "common/qr_buf.h"
#include "common/qr_gen.h"
#include "common/qr_time.h"
#include "repl/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void gen_usage(FILE *f)
{
    fprintf(f, "usage: quarry gen --events N [--seed S] [--start TS] [--rate R]\n"
               "  --events N   how many events (required)\n"
               "  --seed S     PRNG seed; the same seed gives the same bytes (default 1)\n"
               "  --start TS   time of the first event, RFC 3339 (default 2025-06-15T00:00:00Z)\n"
               "  --rate R     events per second of event time (default 1000)\n");
}

int cli_gen(int argc, char **argv)
{
    uint64_t events = 0, seed = 1;
    bool have_events = false;
    qr_gen_opts opts = {0};
    for (int idx = 0; idx < argc; idx++) {
        const char *v;
        if (strcmp(argv[idx], "--help") == 0 || strcmp(argv[idx], "-h") == 0) {
            gen_usage(stdout);
            return 0;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--events"))) {
            if (!cli_parse_u64(v, &events)) {
                fprintf(stderr, "quarry gen: --events wants a whole number, not \"%s\"\n", v);
                return 2;
            }
            have_events = true;
        } else if ((v = cli_opt_value(argc, argv, &idx, "--seed"))) {
            if (!cli_parse_u64(v, &seed)) {
                fprintf(stderr, "quarry gen: --seed wants a whole number, not \"%s\"\n", v);
                return 2;
            }
        } else if ((v = cli_opt_value(argc, argv, &idx, "--start"))) {
            if (qr_time_parse_rfc3339(v, strlen(v), &opts.start_ns) != 0) {
                fprintf(stderr, "quarry gen: --start wants an RFC 3339 time, not \"%s\"\n", v);
                return 2;
            }
        } else if ((v = cli_opt_value(argc, argv, &idx, "--rate"))) {
            char *end;
            opts.rate_per_sec = strtod(v, &end);
            if (*end || opts.rate_per_sec <= 0) {
                fprintf(stderr, "quarry gen: --rate wants a positive number, not \"%s\"\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "quarry gen: unknown option \"%s\"\n", argv[idx]);
            gen_usage(stderr);
            return 2;
        }
    }
    if (!have_events) {
        fprintf(stderr, "quarry gen: --events is required\n");
        gen_usage(stderr);
        return 2;
    }
    opts.seed = seed;
    qr_gen *g = qr_gen_new(&opts);
    if (!g) {
        fprintf(stderr, "quarry gen: out of memory\n");
        return 1;
    }
    qr_buf buf;
    qr_buf_init(&buf);
    for (uint64_t n = 0; n < events; n++) {
        qr_gen_next_ndjson(g, &buf);
        if (buf.len >= (1u << 20) || n + 1 == events) {
            if (fwrite(buf.data, 1, buf.len, stdout) != buf.len) {
                qr_buf_fini(&buf);
                qr_gen_free(g);
                return 1; /* stdout closed (e.g. piped into head): stop quietly */
            }
            qr_buf_clear(&buf);
        }
    }
    qr_buf_fini(&buf);
    qr_gen_free(g);
    return fflush(stdout) == 0 ? 0 : 1;
}

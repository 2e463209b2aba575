/* quarry serve: the HTTP server over one data directory (server/server.h, docs/http.md).
 * Options override the config file; `--hash-key KEY` prints the line to put in a config. */
#include "common/qr_fs.h"
#include "repl/cli.h"
#include "server/config.h"
#include "server/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void serve_usage(FILE *f)
{
    fprintf(f, "usage: quarry serve --data DIR [options]\n"
               "       quarry serve --hash-key KEY\n"
               "  --data DIR        data directory (created if missing)\n"
               "  --listen H:P      listen address (default 127.0.0.1:7070; port 0 = any free)\n"
               "  --config FILE     settings, tenants and API keys (docs/config.md)\n"
               "  --fsync P         always (default) | interval | never\n"
               "  --workers N       decode/ingest threads (default 8)\n"
               "  --demo            generate a live trickle of realistic events\n"
               "  --demo-rate N     events per second for --demo (default 200)\n"
               "  --hash-key KEY    print the config line for API key KEY and exit\n"
               "The address in use is written to DIR/server.addr while the server runs.\n"
               "SIGTERM or Ctrl-C: finish in-flight requests, flush, exit 0.\n");
}

typedef struct serve_ctx {
    const char *data;
    bool demo;
    double rate;
} serve_ctx;

/* Printed once the server is ready, with the address actually bound. */
static void on_ready(void *ctx, const char *addr)
{
    const serve_ctx *sc = ctx;
    if (!sc->demo) return;
    printf(
        "\n"
        "  Quarry demo: ~%.0f generated events/s (with error bursts) flow into %s\n"
        "  API:   http://%s   (every route: docs/http.md)\n"
        "  Try:   curl -s http://%s/v1/services\n"
        "         curl -s -X POST http://%s/v1/search -d '{\"query\": \"timeout\", \"limit\": 5}'\n"
        "         curl -sN 'http://%s/v1/tail?level=error'      (live; Ctrl-C stops)\n"
        "         curl -s -X POST http://%s/v1/query -d '{\"query\": \"SELECT service, "
        "count(*) FROM logs WHERE level >= ERROR GROUP BY service\"}'\n"
        "         curl -s -X POST http://%s/v1/ingest -d "
        "'{\"source\":{\"service\":\"me\"},\"logs\":[{\"level\":\"warn\",\"msg\":\"hello\"}]}'\n"
        "  REPL:  quarry repl --data %s   (connects to this server by itself)\n"
        "         try: CREATE ROLLUP errors_5m AS SELECT bucket(ts, 5m) AS t, service, "
        "count(*) AS n FROM logs WHERE level >= ERROR GROUP BY t, service;\n"
        "  Stop:  Ctrl-C (finishes requests, flushes, exits 0)\n\n",
        sc->rate, sc->data, addr, addr, addr, addr, addr, addr, sc->data);
    fflush(stdout);
}

int cli_serve(int argc, char **argv)
{
    const char *data = NULL, *config_path = NULL, *listen = NULL, *fsync = NULL;
    const char *workers = NULL, *demo_rate = NULL;
    bool demo = false;
    for (int idx = 0; idx < argc; idx++) {
        const char *v;
        if ((v = cli_opt_value(argc, argv, &idx, "--data")))
            data = v;
        else if ((v = cli_opt_value(argc, argv, &idx, "--config")))
            config_path = v;
        else if ((v = cli_opt_value(argc, argv, &idx, "--listen")))
            listen = v;
        else if ((v = cli_opt_value(argc, argv, &idx, "--fsync")))
            fsync = v;
        else if ((v = cli_opt_value(argc, argv, &idx, "--workers")))
            workers = v;
        else if ((v = cli_opt_value(argc, argv, &idx, "--demo-rate")))
            demo_rate = v, demo = true;
        else if ((v = cli_opt_value(argc, argv, &idx, "--hash-key"))) {
            char out[72];
            config_key_hash_text(v, strlen(v), out);
            printf("key = %.71s ingest,query\n", out);
            return 0;
        } else if (!strcmp(argv[idx], "--demo"))
            demo = true;
        else if (!strcmp(argv[idx], "--help") || !strcmp(argv[idx], "-h")) {
            serve_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "quarry serve: unknown option \"%s\"\n", argv[idx]);
            serve_usage(stderr);
            return 2;
        }
    }
    if (!data) {
        fprintf(stderr, "quarry serve: --data DIR is required\n");
        serve_usage(stderr);
        return 2;
    }
    config cfg;
    config_init(&cfg);
    qr_diag d;
    qr_diag_init(&d);
    if (config_path && config_load(&cfg, config_path, &d) != 0) {
        fprintf(stderr, "quarry serve: %s\n", d.msg);
        config_fini(&cfg);
        return 2;
    }
    int status = 0;
    if (listen) {
        if (strlen(listen) >= sizeof cfg.listen) {
            fprintf(stderr, "quarry serve: --listen: address too long\n");
            status = 2;
        } else {
            snprintf(cfg.listen, sizeof cfg.listen, "%s", listen);
        }
    }
    if (fsync) {
        if (!strcmp(fsync, "always"))
            cfg.db.wal.fsync_policy = WAL_FSYNC_ALWAYS;
        else if (!strcmp(fsync, "interval"))
            cfg.db.wal.fsync_policy = WAL_FSYNC_INTERVAL;
        else if (!strcmp(fsync, "never"))
            cfg.db.wal.fsync_policy = WAL_FSYNC_NEVER;
        else {
            fprintf(stderr, "quarry serve: --fsync must be always, interval or never\n");
            status = 2;
        }
    }
    uint64_t n;
    if (workers) {
        if (!cli_parse_u64(workers, &n) || n < 1 || n > 128) {
            fprintf(stderr, "quarry serve: --workers must be 1-128\n");
            status = 2;
        } else {
            cfg.workers = (uint32_t)n;
        }
    }
    if (demo_rate) {
        char *end;
        double r = strtod(demo_rate, &end);
        if (*end || !(r > 0) || r > 1e7) {
            fprintf(stderr, "quarry serve: --demo-rate must be a positive number\n");
            status = 2;
        } else {
            cfg.demo_rate = r;
        }
    }
    if (status) {
        config_fini(&cfg);
        return status;
    }
    if (qr_fs_mkdirs(data, &d) != 0) {
        fprintf(stderr, "quarry serve: %s\n", d.msg);
        config_fini(&cfg);
        return 1;
    }
    serve_ctx sc = {data, demo, cfg.demo_rate};
    server_opts so = {data, &cfg, demo, stderr, on_ready, &sc};
    int rc = server_run(&so, &d);
    if (rc) fprintf(stderr, "quarry serve: %s\n", d.msg);
    config_fini(&cfg);
    return rc ? 1 : 0;
}

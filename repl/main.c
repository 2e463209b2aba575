/* quarry — one binary, subcommands (DESIGN.md §1). */
#include "repl/cli.h"
#include "repl/repl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef QR_VERSION
#define QR_VERSION "0.1.0"
#endif

static void usage(FILE *f)
{
    fprintf(f,
            "quarry %s — a log database\n"
            "\n"
            "usage: quarry <command> [options]\n"
            "\n"
            "commands:\n"
            "  repl    [--data DIR] [--tenant T] | --connect URL [--key K]\n"
            "          interactive shell; `quarry` alone opens it (connects when a server\n"
            "          holds ./quarry-data)\n"
            "  ingest  --data DIR [--tenant T] [--format ndjson|text] [--service S] [FILE ...]\n"
            "          load NDJSON events (or plain text lines) from files or stdin (-);\n"
            "          .gz and .zst files are decompressed by extension\n"
            "  check   --data DIR [--json]   verify every checksum; print events, segments, bytes\n"
            "  compact --data DIR [--tenant T]   merge small segments into compacted ones now\n"
            "  export  --data DIR [--tenant T]   every event as NDJSON on stdout\n"
            "  query   --data DIR [--tenant T] [--format table|json|ndjson|csv] \"<query>\"\n"
            "  gen     --events N [--seed S] [--start TS] [--rate R]\n"
            "          write realistic generated logs as NDJSON to stdout\n"
            "  serve   --data DIR [--listen 127.0.0.1:7070] [--config FILE] [--demo]\n"
            "          the HTTP API (docs/http.md); --hash-key KEY makes a config key line\n"
            "  version print the version\n"
            "\n"
            "Run `quarry <command> --help` for the options of one command.\n",
            QR_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) return cli_repl(0, argv + 1); /* `quarry`: the REPL on ./quarry-data */
    const char *cmd = argv[1];
    if (strcmp(cmd, "ingest") == 0) return cli_ingest(argc - 2, argv + 2);
    if (strcmp(cmd, "check") == 0) return cli_check(argc - 2, argv + 2);
    if (strcmp(cmd, "compact") == 0) return cli_compact(argc - 2, argv + 2);
    if (strcmp(cmd, "export") == 0) return cli_export(argc - 2, argv + 2);
    if (strcmp(cmd, "gen") == 0) return cli_gen(argc - 2, argv + 2);
    if (strcmp(cmd, "repl") == 0) return cli_repl(argc - 2, argv + 2);
    if (strcmp(cmd, "query") == 0) return cli_query(argc - 2, argv + 2);
    if (strcmp(cmd, "serve") == 0) return cli_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("quarry %s\n", QR_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "quarry: unknown command \"%s\"\n\n", cmd);
    usage(stderr);
    return 2;
}

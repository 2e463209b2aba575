/* server — `quarry serve`: one data directory behind the HTTP API (DESIGN.md §6).
 *
 * server_run binds the listen address, opens the data directory on a worker thread (WAL
 * recovery can take a while: /healthz answers meanwhile, /readyz says 503 until it is done),
 * writes DIR/server.addr once the directory is open, and serves until SIGTERM or SIGINT.
 * Then it stops accepting, lets in-flight requests finish (up to shutdown_timeout_ms),
 * flushes memtables into segments, removes server.addr and returns 0. A second signal
 * closes every connection at once (acknowledged data is durable either way).
 *
 * Threads: the libuv loop does all network I/O, routing, auth and quotas; decoding,
 * decompression, db_ingest (which waits for fsync) and snapshot reads run on libuv's thread
 * pool (cfg->workers threads, set through UV_THREADPOOL_SIZE before the pool starts).
 * Routes, status codes and bodies: docs/http.md. Settings: docs/config.md.
 * Errors: QR_EIO (cannot listen, cannot open the directory: diag says why), QR_EINVAL
 * (no API keys and a non-loopback listen address), QR_EBUSY (directory in use), QR_ENOMEM. */
#ifndef QR_SERVER_H
#define QR_SERVER_H

#include "common/qr_err.h"
#include "server/config.h"

#include <stdbool.h>
#include <stdio.h>

typedef struct server_opts {
    const char *data_dir;
    const config *cfg;
    bool demo; /* generate a live trickle of events (cfg->demo_rate per second) */
    FILE *log; /* start-up and shutdown messages; NULL = stderr */
    /* called on the loop thread once the directory is open, with the bound address */
    void (*on_ready)(void *ctx, const char *addr);
    void *ctx;
} server_opts;

int server_run(const server_opts *opts, qr_diag *d);

/* true for 127.0.0.0/8, ::1 and "localhost" hosts of a HOST:PORT address. */
bool server_addr_is_loopback(const char *listen_addr);

#endif

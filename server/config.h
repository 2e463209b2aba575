/* config — `quarry serve` settings: defaults, the config file, tenants and API keys.
 *
 * File format (docs/config.md lists every key and default): UTF-8 text, one setting per line,
 * `key = value`; `# comment` lines and blank lines are ignored; `[section]` starts a section:
 * [server], [limits], [storage], [tail], [demo], and `[tenant NAME]` (one per tenant, repeatable
 * keys `key = sha256:<64 hex> SCOPES`). Sizes accept KiB/MiB/GiB suffixes (also K, M, G = binary).
 * Unknown sections or keys, bad values and duplicate tenants are errors with the line number,
 * so a typo never silently leaves a default in force.
 *
 * Ownership: config_init fills defaults (nothing to free before a tenant is added);
 * config_load adds to it; config_fini frees tenants. Reentrant.
 * Errors: QR_EIO (cannot read the file), QR_EINVAL (with "FILE:LINE: what"), QR_ENOMEM. */
#ifndef QR_CONFIG_H
#define QR_CONFIG_H

#include "common/qr_err.h"
#include "server/http.h"
#include "storage/db.h"

#include <stdbool.h>
#include <stdint.h>

enum { CONFIG_SCOPE_INGEST = 1, CONFIG_SCOPE_QUERY = 2, CONFIG_SCOPE_ADMIN = 4 };
#define CONFIG_SCOPE_ALL (CONFIG_SCOPE_INGEST | CONFIG_SCOPE_QUERY | CONFIG_SCOPE_ADMIN)

typedef struct config_key {
    uint8_t sha256[32];
    uint32_t scopes; /* CONFIG_SCOPE_* */
} config_key;

typedef struct config_tenant {
    char name[QR_TENANT_MAX_BYTES + 1];
    config_key *keys;
    size_t key_count;
    double events_per_sec; /* ingest quota; 0 = unlimited */
    double bytes_per_sec;  /* decoded body bytes; 0 = unlimited */
    double burst_seconds;  /* bucket depth in seconds of quota; default 1 */
} config_tenant;

typedef struct config {
    char listen[80];              /* default 127.0.0.1:7070 */
    uint32_t workers;             /* decode + ingest threads; default 8 */
    uint32_t shutdown_timeout_ms; /* in-flight requests get this long at SIGTERM; 10000 */
    http_limits http;        /* header_bytes 16 KiB, body_bytes 32 MiB, idle 60 s, 1024 conns */
    uint64_t decoded_bytes;  /* request body after gzip/zstd; default 256 MiB */
    uint32_t batch_events;   /* events (or NDJSON lines) per request; default 100000 */
    uint64_t inflight_bytes; /* bodies held by requests being processed; default 512 MiB */
    db_opts db;              /* fsync policy, memtable flush */
    /* queries ([limits]) */
    uint32_t query_timeout_ms;    /* deadline of one query; default 30000 */
    uint64_t query_mem_bytes;     /* memory budget of one query; default 256 MiB */
    uint32_t queries_max;         /* queries running at once; 0 = half the workers, at least 1 */
    uint64_t stream_buffer_bytes; /* a streamed result's unsent bytes before the query waits;
                                     default 4 MiB */
    uint64_t msg_cache_bytes;     /* result rows' messages kept across queries; default 16 MiB,
                                     0 = none */
    /* live tail ([tail]) */
    uint32_t tail_subscribers;      /* open /v1/tail streams; default 256 */
    uint64_t tail_subscriber_bytes; /* queued SSE bytes per subscriber; default 1 MiB */
    uint64_t tail_ring_bytes;       /* recent events held for Last-Event-ID; default 64 MiB */
    uint32_t tail_resume_window_ms; /* keep recording after the last subscriber; 60000 */
    uint32_t tail_heartbeat_ms;     /* ": heartbeat" comment interval; default 15000 */
    double demo_rate;               /* --demo events/s; default 200 */
    uint64_t demo_seed;             /* 0 = from the clock */
    config_tenant *tenants;
    size_t tenant_count;
    size_t key_count; /* over all tenants: 0 = open single-tenant mode */
} config;

void config_init(config *cfg);
void config_fini(config *cfg);
/* Reads path into cfg (on top of its current values). */
int config_load(config *cfg, const char *path, qr_diag *d);
/* Parses text as a config file named `name` in messages. */
int config_parse(config *cfg, const char *name, const char *text, size_t len, qr_diag *d);
/* The tenant named name, or NULL. */
config_tenant *config_tenant_find(const config *cfg, const char *name);

/* "sha256:<64 lowercase hex>" of key into out (72 bytes). The form used in config files. */
void config_key_hash_text(const char *key, size_t key_len, char out[72]);
/* Finds the key whose hash matches; compares every configured hash in constant time so the
 * lookup's duration says nothing about which prefix matched. Returns the tenant index or -1;
 * *scopes gets the key's scopes. */
int config_key_lookup(const config *cfg, const char *key, size_t key_len, uint32_t *scopes);

/* "always" | "interval" | "never" */
const char *config_fsync_name(wal_fsync_policy p);

#endif

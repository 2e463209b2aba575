/* config — defaults and the `key = value` config file (contract in config.h).
 *
 * API keys are stored as SHA-256 (nettle). Why not xxh3, the project's hash: xxh3 is built
 * for speed, not to resist inversion, so someone who reads the config file could construct a
 * string with the same 64- or 128-bit xxh3 and use it as a key. SHA-256 has no known way back
 * from the digest, and since keys are long random tokens (no dictionary to try) one unsalted
 * hash is enough — a slow password hash (scrypt, argon2) would cost every request for no gain.
 * Lookups hash the presented key once and compare against every stored digest with
 * memeql_sec (constant time). */
#include "server/config.h"

#include "common/qr_buf.h"
#include "common/qr_fs.h"
#include "engine/engine.h"

#include <ctype.h>
#include <errno.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void config_init(config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->listen, sizeof cfg->listen, "127.0.0.1:7070");
    cfg->workers = 8;
    cfg->shutdown_timeout_ms = 10000;
    cfg->http.header_bytes = 16 * 1024;
    cfg->http.body_bytes = 32u * 1024 * 1024;
    cfg->http.idle_timeout_ms = 60000;
    cfg->http.max_connections = 1024;
    cfg->decoded_bytes = 256ull * 1024 * 1024;
    cfg->batch_events = 100000;
    cfg->inflight_bytes = 512ull * 1024 * 1024;
    cfg->db.wal.fsync_policy = WAL_FSYNC_ALWAYS;
    cfg->demo_rate = 200;
    cfg->query_timeout_ms = 30000;
    cfg->query_mem_bytes = 256ull * 1024 * 1024;
    cfg->stream_buffer_bytes = 4ull * 1024 * 1024;
    cfg->msg_cache_bytes = EXEC_MSG_CACHE_DEFAULT_BYTES;
    cfg->tail_subscribers = 256;
    cfg->tail_subscriber_bytes = 1024 * 1024;
    cfg->tail_ring_bytes = 64ull * 1024 * 1024;
    cfg->tail_resume_window_ms = 60000;
    cfg->tail_heartbeat_ms = 15000;
}

void config_fini(config *cfg)
{
    for (size_t idx = 0; idx < cfg->tenant_count; idx++) free(cfg->tenants[idx].keys);
    free(cfg->tenants);
    cfg->tenants = NULL;
    cfg->tenant_count = 0;
    cfg->key_count = 0;
}

const char *config_fsync_name(wal_fsync_policy p)
{
    switch (p) {
    case WAL_FSYNC_ALWAYS:
        return "always";
    case WAL_FSYNC_INTERVAL:
        return "interval";
    case WAL_FSYNC_NEVER:
        return "never";
    }
    return "?";
}

config_tenant *config_tenant_find(const config *cfg, const char *name)
{
    for (size_t idx = 0; idx < cfg->tenant_count; idx++)
        if (strcmp(cfg->tenants[idx].name, name) == 0) return &cfg->tenants[idx];
    return NULL;
}

static void key_sha256(const char *key, size_t len, uint8_t out[32])
{
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, len, (const uint8_t *)key);
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, out);
}

void config_key_hash_text(const char *key, size_t key_len, char out[72])
{
    uint8_t h[32];
    key_sha256(key, key_len, h);
    memcpy(out, "sha256:", 7);
    for (int idx = 0; idx < 32; idx++) snprintf(out + 7 + idx * 2, 3, "%02x", h[idx]);
}

int config_key_lookup(const config *cfg, const char *key, size_t key_len, uint32_t *scopes)
{
    uint8_t h[32];
    key_sha256(key, key_len, h);
    int found = -1;
    uint32_t found_scopes = 0;
    for (size_t t = 0; t < cfg->tenant_count; t++) {
        const config_tenant *ten = &cfg->tenants[t];
        for (size_t k = 0; k < ten->key_count; k++) {
            if (memeql_sec(h, ten->keys[k].sha256, 32) && found < 0) {
                found = (int)t;
                found_scopes = ten->keys[k].scopes;
            }
        }
    }
    if (found >= 0) *scopes = found_scopes;
    return found;
}

/* ---- parsing ---- */

typedef struct parse_ctx {
    config *cfg;
    const char *name;
    int line_no;
    qr_diag *d;
} parse_ctx;

#define PARSE_FAIL(pc, ...) parse_fail(pc, __VA_ARGS__)

__attribute__((format(printf, 2, 3))) static int parse_fail(parse_ctx *pc, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int rc = qr_diag_set(pc->d, QR_EINVAL, "%s:%d: %s", pc->name, pc->line_no, msg);
    if (pc->d && pc->d->code == rc) pc->d->line = pc->line_no;
    return rc;
}

static bool parse_u64(const char *s, uint64_t *out, bool sizes)
{
    if (!*s || *s == '-') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) return false;
    while (*end == ' ') end++;
    uint64_t mul = 1;
    if (*end && sizes) {
        if (!strcasecmp(end, "k") || !strcasecmp(end, "kib") || !strcasecmp(end, "kb"))
            mul = 1024;
        else if (!strcasecmp(end, "m") || !strcasecmp(end, "mib") || !strcasecmp(end, "mb"))
            mul = 1024 * 1024;
        else if (!strcasecmp(end, "g") || !strcasecmp(end, "gib") || !strcasecmp(end, "gb"))
            mul = 1024ull * 1024 * 1024;
        else
            return false;
    } else if (*end) {
        return false;
    }
    if (v > UINT64_MAX / mul) return false;
    *out = v * mul;
    return true;
}

static bool parse_double(const char *s, double *out)
{
    if (!*s) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || v < 0 || v != v) return false;
    *out = v;
    return true;
}

static int hexdig(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* "sha256:<hex> ingest,query" (scopes separated by ',' or spaces; none = every scope) */
static int parse_key(parse_ctx *pc, config_tenant *t, char *value)
{
    if (strncmp(value, "sha256:", 7) != 0)
        return PARSE_FAIL(pc, "key must be \"sha256:<64 hex digits> [scopes]\" (make one with "
                              "`quarry serve --hash-key KEY`)");
    char *hex = value + 7;
    config_key k;
    memset(&k, 0, sizeof k);
    for (int idx = 0; idx < 32; idx++) {
        int hi = hexdig((unsigned char)hex[idx * 2]);
        int lo = hi < 0 ? -1 : hexdig((unsigned char)hex[idx * 2 + 1]);
        if (hi < 0 || lo < 0) return PARSE_FAIL(pc, "key hash must be 64 hex digits");
        k.sha256[idx] = (uint8_t)(hi * 16 + lo);
    }
    char *rest = hex + 64;
    if (*rest && *rest != ' ' && *rest != '\t' && *rest != ',')
        return PARSE_FAIL(pc, "key hash must be 64 hex digits");
    char *save = NULL;
    for (char *tok = strtok_r(rest, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
        if (!strcmp(tok, "ingest"))
            k.scopes |= CONFIG_SCOPE_INGEST;
        else if (!strcmp(tok, "query"))
            k.scopes |= CONFIG_SCOPE_QUERY;
        else if (!strcmp(tok, "admin"))
            k.scopes |= CONFIG_SCOPE_ADMIN;
        else
            return PARSE_FAIL(pc, "unknown scope \"%s\" (ingest, query, admin)", tok);
    }
    if (!k.scopes) k.scopes = CONFIG_SCOPE_ALL;
    config_key *keys = realloc(t->keys, (t->key_count + 1) * sizeof *keys);
    if (!keys) return QR_ENOMEM;
    t->keys = keys;
    t->keys[t->key_count++] = k;
    pc->cfg->key_count++;
    return 0;
}

static int set_u64(parse_ctx *pc, const char *key, const char *value, uint64_t *out, bool sizes,
                   uint64_t min, uint64_t max)
{
    uint64_t v = 0;
    if (!parse_u64(value, &v, sizes) || v < min || v > max)
        return PARSE_FAIL(pc, "%s: \"%s\" is not a %s between %llu and %llu", key, value,
                          sizes ? "size" : "number", (unsigned long long)min,
                          (unsigned long long)max);
    *out = v;
    return 0;
}

static int set_u32(parse_ctx *pc, const char *key, const char *value, uint32_t *out, uint64_t min,
                   uint64_t max)
{
    uint64_t v = 0;
    int rc = set_u64(pc, key, value, &v, false, min, max);
    if (!rc) *out = (uint32_t)v;
    return rc;
}

static int set_size(parse_ctx *pc, const char *key, const char *value, size_t *out, uint64_t min,
                    uint64_t max)
{
    uint64_t v = 0;
    int rc = set_u64(pc, key, value, &v, true, min, max);
    if (!rc) *out = (size_t)v;
    return rc;
}

static int set_double(parse_ctx *pc, const char *key, const char *value, double *out)
{
    if (!parse_double(value, out))
        return PARSE_FAIL(pc, "%s: \"%s\" is not a non-negative number", key, value);
    return 0;
}

static int apply(parse_ctx *pc, const char *section, config_tenant *t, const char *key, char *value)
{
    config *c = pc->cfg;
    const uint64_t GIB = 1024ull * 1024 * 1024;
    if (t) {
        if (!strcmp(key, "key")) return parse_key(pc, t, value);
        if (!strcmp(key, "events_per_sec")) return set_double(pc, key, value, &t->events_per_sec);
        if (!strcmp(key, "bytes_per_sec")) {
            uint64_t v = 0;
            int rc = set_u64(pc, key, value, &v, true, 0, UINT64_MAX / 2);
            if (!rc) t->bytes_per_sec = (double)v;
            return rc;
        }
        if (!strcmp(key, "burst_seconds")) return set_double(pc, key, value, &t->burst_seconds);
    } else if (!strcmp(section, "server")) {
        if (!strcmp(key, "listen")) {
            if (strlen(value) >= sizeof c->listen) return PARSE_FAIL(pc, "listen: too long");
            snprintf(c->listen, sizeof c->listen, "%s", value);
            return 0;
        }
        if (!strcmp(key, "workers")) return set_u32(pc, key, value, &c->workers, 1, 128);
        if (!strcmp(key, "shutdown_timeout_ms"))
            return set_u32(pc, key, value, &c->shutdown_timeout_ms, 0, 3600000);
    } else if (!strcmp(section, "limits")) {
        if (!strcmp(key, "body_bytes"))
            return set_size(pc, key, value, &c->http.body_bytes, 1024, 4 * GIB);
        if (!strcmp(key, "header_bytes"))
            return set_size(pc, key, value, &c->http.header_bytes, 1024, 1024 * 1024);
        if (!strcmp(key, "decoded_bytes")) {
            size_t v = 0;
            int rc = set_size(pc, key, value, &v, 1024, 16 * GIB);
            if (!rc) c->decoded_bytes = v;
            return rc;
        }
        if (!strcmp(key, "inflight_bytes")) {
            size_t v = 0;
            int rc = set_size(pc, key, value, &v, 1024 * 1024, 64 * GIB);
            if (!rc) c->inflight_bytes = v;
            return rc;
        }
        if (!strcmp(key, "batch_events"))
            return set_u32(pc, key, value, &c->batch_events, 1, 10000000);
        if (!strcmp(key, "max_connections"))
            return set_u32(pc, key, value, &c->http.max_connections, 1, 1000000);
        if (!strcmp(key, "idle_timeout_ms"))
            return set_u32(pc, key, value, &c->http.idle_timeout_ms, 100, 86400000);
        if (!strcmp(key, "query_timeout_ms"))
            return set_u32(pc, key, value, &c->query_timeout_ms, 0, 86400000);
        if (!strcmp(key, "query_mem_bytes")) {
            size_t v = 0;
            int rc = set_size(pc, key, value, &v, 1024 * 1024, 64 * GIB);
            if (!rc) c->query_mem_bytes = v;
            return rc;
        }
        if (!strcmp(key, "queries_max")) return set_u32(pc, key, value, &c->queries_max, 0, 1024);
        if (!strcmp(key, "stream_buffer_bytes")) {
            size_t v = 0;
            int rc = set_size(pc, key, value, &v, 4096, 1 * GIB);
            if (!rc) c->stream_buffer_bytes = v;
            return rc;
        }
        if (!strcmp(key, "msg_cache_bytes")) {
            size_t v = 0;
            int rc = set_size(pc, key, value, &v, 0, 16 * GIB);
            if (!rc) c->msg_cache_bytes = v;
            return rc;
        }
    } else if (!strcmp(section, "tail")) {
        if (!strcmp(key, "subscribers"))
            return set_u32(pc, key, value, &c->tail_subscribers, 0, 100000);
        if (!strcmp(key, "subscriber_bytes")) {
            size_t v = 0;
            int rc = set_size(pc, key, value, &v, 4096, 1 * GIB);
            if (!rc) c->tail_subscriber_bytes = v;
            return rc;
        }
        if (!strcmp(key, "ring_bytes")) {
            size_t v = 0;
            int rc = set_size(pc, key, value, &v, 64 * 1024, 16 * GIB);
            if (!rc) c->tail_ring_bytes = v;
            return rc;
        }
        if (!strcmp(key, "resume_window_ms"))
            return set_u32(pc, key, value, &c->tail_resume_window_ms, 0, 86400000);
        if (!strcmp(key, "heartbeat_ms"))
            return set_u32(pc, key, value, &c->tail_heartbeat_ms, 100, 3600000);
    } else if (!strcmp(section, "storage")) {
        if (!strcmp(key, "fsync")) {
            if (!strcmp(value, "always"))
                c->db.wal.fsync_policy = WAL_FSYNC_ALWAYS;
            else if (!strcmp(value, "interval"))
                c->db.wal.fsync_policy = WAL_FSYNC_INTERVAL;
            else if (!strcmp(value, "never"))
                c->db.wal.fsync_policy = WAL_FSYNC_NEVER;
            else
                return PARSE_FAIL(pc, "fsync: \"%s\" is not always, interval or never", value);
            return 0;
        }
        if (!strcmp(key, "fsync_interval_ms"))
            return set_u32(pc, key, value, &c->db.wal.fsync_interval_ms, 1, 60000);
        if (!strcmp(key, "flush_rows"))
            return set_u32(pc, key, value, &c->db.flush_rows, 1000, 100000000);
        if (!strcmp(key, "flush_age_ms"))
            return set_u32(pc, key, value, &c->db.flush_age_ms, 10, 86400000);
        if (!strcmp(key, "compact")) {
            if (strcmp(value, "on") != 0 && strcmp(value, "off") != 0)
                return PARSE_FAIL(pc, "compact: \"%s\" is not on or off", value);
            c->db.compact_off = !strcmp(value, "off");
            return 0;
        }
        if (!strcmp(key, "compact_min_segments"))
            return set_u32(pc, key, value, &c->db.compact_min_segments, 2, 1000000);
        if (!strcmp(key, "compact_rows"))
            return set_u32(pc, key, value, &c->db.compact_rows, 1000, 1u << 30);
        if (!strcmp(key, "compact_zstd_level")) {
            uint32_t level = 0;
            int rc = set_u32(pc, key, value, &level, 1, 22);
            c->db.compact_zstd_level = (int)level;
            return rc;
        }
    } else if (!strcmp(section, "demo")) {
        if (!strcmp(key, "rate")) return set_double(pc, key, value, &c->demo_rate);
        if (!strcmp(key, "seed"))
            return set_u64(pc, key, value, &c->demo_seed, false, 0, UINT64_MAX);
    }
    return PARSE_FAIL(pc, "unknown key \"%s\" in [%s]", key, t ? "tenant" : section);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = '\0';
    return s;
}

int config_parse(config *cfg, const char *name, const char *text, size_t len, qr_diag *d)
{
    parse_ctx pc = {cfg, name, 0, d};
    char section[32] = "server";
    config_tenant *tenant = NULL;
    size_t tenant_idx = 0;
    char line[4096];
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        pc.line_no++;
        if (n >= sizeof line) return PARSE_FAIL(&pc, "line too long");
        memcpy(line, text + pos, n);
        line[n] = '\0';
        pos += n + (nl ? 1 : 0);
        if (memchr(line, '\0', n)) return PARSE_FAIL(&pc, "NUL byte in line");
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *s = trim(line);
        if (!*s) continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close || close[1]) return PARSE_FAIL(&pc, "section header must be [name]");
            *close = '\0';
            char *sec = trim(s + 1);
            if (!strncmp(sec, "tenant", 6) && (sec[6] == ' ' || sec[6] == '\t')) {
                char *tname = trim(sec + 6);
                if (!db_tenant_name_ok(tname))
                    return PARSE_FAIL(&pc, "tenant name \"%s\" must be 1-64 of [A-Za-z0-9_-]",
                                      tname);
                if (config_tenant_find(cfg, tname))
                    return PARSE_FAIL(&pc, "tenant \"%s\" appears twice", tname);
                config_tenant *ts = realloc(cfg->tenants, (cfg->tenant_count + 1) * sizeof *ts);
                if (!ts) return QR_ENOMEM;
                cfg->tenants = ts;
                tenant_idx = cfg->tenant_count++;
                memset(&cfg->tenants[tenant_idx], 0, sizeof cfg->tenants[tenant_idx]);
                snprintf(cfg->tenants[tenant_idx].name, sizeof cfg->tenants[tenant_idx].name, "%s",
                         tname);
                cfg->tenants[tenant_idx].burst_seconds = 1;
                tenant = &cfg->tenants[tenant_idx];
                snprintf(section, sizeof section, "tenant");
                continue;
            }
            if (strcmp(sec, "server") && strcmp(sec, "limits") && strcmp(sec, "storage") &&
                strcmp(sec, "tail") && strcmp(sec, "demo"))
                return PARSE_FAIL(&pc,
                                  "unknown section [%s] (server, limits, storage, tail, demo, "
                                  "tenant NAME)",
                                  sec);
            snprintf(section, sizeof section, "%s", sec);
            tenant = NULL;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) return PARSE_FAIL(&pc, "expected key = value");
        *eq = '\0';
        char *key = trim(s);
        char *value = trim(eq + 1);
        if (!*key) return PARSE_FAIL(&pc, "expected key = value");
        if (tenant) tenant = &cfg->tenants[tenant_idx]; /* the array may have moved */
        int rc = apply(&pc, section, tenant, key, value);
        if (rc) return rc;
    }
    return 0;
}

int config_load(config *cfg, const char *path, qr_diag *d)
{
    qr_buf text;
    qr_buf_init(&text);
    int rc = qr_fs_read_all(path, 16 * 1024 * 1024, &text, d);
    if (rc == QR_ENOTFOUND) rc = qr_diag_set(d, QR_EIO, "config file %s does not exist", path);
    if (rc == 0) rc = config_parse(cfg, path, (const char *)text.data, text.len, d);
    qr_buf_fini(&text);
    return rc;
}

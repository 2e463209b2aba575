/* qr_gen — realistic deterministic logs (contract in qr_gen.h).
 *
 * Randomness: xoshiro256** seeded through splitmix64; no libc rand, no global state, so the
 * same seed gives the same bytes on any run (floating point only goes through snprintf-free
 * integer formatting; log/exp/cos come from libm and are deterministic on one platform).
 *
 * The model, per event:
 * - service: Zipf(s = 1.1) over SERVICES (api-gateway busiest); host: one of the service's
 *   2-8 hosts (k8s pod names or EC2 ip-10-0-x-y names, fixed at qr_gen_new from the seed);
 * - level: INFO 70%, DEBUG 18%, WARN 8%, ERROR 3.5%, TRACE 0.4%, FATAL 0.1%;
 * - msg: a template for (service, level) — service-specific ones weighted 3:1 over generic
 *   ones — with variables filled in; ERROR (12%) and FATAL (60%) may carry a multi-line stack
 *   trace in the service's language (Java, Python, Go, Node);
 * - meta: trace_id (32 hex; 35% reuse a recent trace, as a request crossing services does),
 *   span_id (16 hex) on 70% of events (request-scoped ones), user_id (45%), latency_ms (log-normal,
 * median ~18 ms, 1% tail x10, with one decimal so the field is always a float), nested http
 * {method, status, path} for gateway-ish services (status follows the level);
 * - error bursts: about every 40k events one service starts a burst of 300-2000 events during
 *   which a fifth of all events are ERRORs from that service with one identical message;
 * - time: the clock advances by U(0, 2) / rate seconds; 3% of events are stamped up to
 *   250 ms in the past (out of order, as shippers deliver them). */
#include "common/qr_gen.h"

#include "common/qr_json.h"
#include "common/qr_time.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- tables ---- */

enum lang { LANG_JAVA, LANG_PY, LANG_GO, LANG_NODE };

static const struct service_def {
    const char *name;
    uint8_t lang;
    bool is_k8s;
    bool is_http; /* emits meta.http */
} SERVICES[] = {
    {"api-gateway", LANG_GO, true, true},     {"frontend", LANG_NODE, true, true},
    {"auth", LANG_JAVA, true, false},         {"search", LANG_JAVA, true, false},
    {"cart", LANG_PY, true, false},           {"checkout", LANG_JAVA, true, false},
    {"payment", LANG_JAVA, false, false},     {"inventory", LANG_GO, true, false},
    {"user", LANG_PY, true, false},           {"recommendation", LANG_PY, true, false},
    {"notification", LANG_NODE, true, false}, {"shipping", LANG_GO, false, false},
    {"db-proxy", LANG_GO, false, false},      {"session", LANG_GO, true, false},
    {"billing", LANG_JAVA, false, false},     {"email-worker", LANG_PY, false, false},
};
#define SVC_COUNT (sizeof SERVICES / sizeof SERVICES[0])
#define S(idx) (1u << (idx))
enum {
    GW = S(0) | S(1),
    FRONT = S(1),
    AUTH = S(2),
    SEARCH = S(3),
    SRCH = S(3) | S(9),
    CART = S(4),
    CHK = S(4) | S(5),
    PAY = S(6) | S(14),
    BILL = S(14),
    INV = S(7) | S(11),
    SHIP = S(11),
    USER = S(8) | S(13),
    USERONLY = S(8),
    SESS = S(13),
    RECO = S(9),
    NOTIF = S(10) | S(15),
    PUSH = S(10),
    DB = S(12),
    JAVA = S(2) | S(3) | S(5) | S(6) | S(14),
    ANY = 0,
};

/* Levels as in storage/event.h (common/ depends on nothing, so they are restated here). */
enum { GL_TRACE = 1, GL_DEBUG, GL_INFO, GL_WARN, GL_ERROR, GL_FATAL, GL_COUNT };
static const char *const LEVEL_NAMES[GL_COUNT] = {"UNKNOWN", "TRACE", "DEBUG", "INFO",
                                                  "WARN",    "ERROR", "FATAL"};
enum {
    LT = 1 << GL_TRACE,
    LD = 1 << GL_DEBUG,
    LI = 1 << GL_INFO,
    LW = 1 << GL_WARN,
    LE = 1 << GL_ERROR,
    LF = 1 << GL_FATAL
};

static const struct template_def {
    uint8_t levels;
    uint32_t services; /* 0 = any */
    const char *text;
} TEMPLATES[] = {
    /* gateway / frontend */
    {LI, GW, "request completed method={method} path={path} status={status} duration={ms}ms"},
    {LI, GW, "{method} {path} {status} {ms}ms {bytes}B ip={ip}"},
    {LD, GW, "incoming request {method} {path} from {ip}:{port} request_id={uuid}"},
    {LD, GW, "proxying {method} {path} to {svc}:{port}"},
    {LI, GW, "rate limiter: client {ip} at {pct}% of quota"},
    {LW, GW, "{method} {path} {status} {ms}ms client={ip}: upstream returned client error"},
    {LE, GW, "{method} {path} {status} {ms}ms: upstream {svc} unavailable"},
    {LI, FRONT, "served static asset /static/js/main.{hex8}.js ({bytes} bytes, cache=HIT)"},
    {LI, FRONT, "rendered page /products/{sku} in {ms}ms (ssr)"},
    /* auth */
    {LI, AUTH, "user {uid} logged in from {ip} (method=password, mfa=true)"},
    {LI, AUTH, "issued access token for user {uid}, expires_in=3600s, scope=read write"},
    {LD, AUTH, "refresh token rotated for session {sess}"},
    {LD, AUTH, "password hash verified for {uid} in {ms}ms (bcrypt cost=12)"},
    {LW, AUTH, "login failed for user {email} from {ip}: invalid password (attempt {retry}/5)"},
    {LW, AUTH, "account {uid} locked after 5 failed login attempts"},
    {LW, AUTH, "JWT validation failed: token expired {n}s ago (kid={hex8})"},
    {LE, AUTH, "LDAP bind failed: connection reset by peer ({ip}:636)"},
    /* payment / billing */
    {LI, PAY,
     "payment authorized order={oid} amount={amount} {cur} card=**** {last4} provider={gw}"},
    {LI, PAY, "charging card ending {last4} for order {oid}: {amount} {cur}"},
    {LI, PAY, "refund issued for order {oid}: {amount} {cur} (reason=customer_request)"},
    {LI, PAY, "3DS challenge required for card ending {last4} (order {oid})"},
    {LD, PAY, "payment provider {gw} responded in {ms}ms (auth_code={code})"},
    {LW, PAY, "card declined for order {oid}: insufficient_funds (card ending {last4})"},
    {LW, PAY, "retrying payment capture for {oid} (attempt {retry}/3) after {gw} timeout"},
    {LW, PAY, "fraud check flagged order {oid} score={pct} rule=velocity_ip ip={ip}"},
    {LE, PAY, "payment capture failed for order {oid}: provider {gw} returned 502 Bad Gateway"},
    {LI, BILL, "invoice INV-{n6} generated for customer {uid} total={amount} {cur}"},
    /* cart / checkout */
    {LI, CHK, "checkout started cart={uuid} user={uid} items={n}"},
    {LI, CHK, "order {oid} placed by {uid}: {n} items, total {amount} {cur}"},
    {LI, CART, "added {sku} x{n} to cart {uuid}"},
    {LD, CART, "removed {sku} from cart {uuid}"},
    {LD, CHK, "cart {uuid} recalculated: subtotal={amount} discount=0.00 tax={amount}"},
    {LW, CHK, "coupon code SUMMER{n} rejected for {uid}: expired"},
    {LE, CHK, "order {oid} failed: inventory reservation timed out after {ms}ms"},
    /* search / recommendation */
    {LI, SRCH, "search query=\"{query}\" results={count} took={ms}ms"},
    {LI, SEARCH, "index refresh completed for products_v{n}: {count} docs in {ms}ms"},
    {LW, SRCH, "slow query detected: \"{query}\" took {ms}ms (threshold 500ms)"},
    {LI, RECO, "generated {n} recommendations for user {uid} using model rec-v{n} in {ms}ms"},
    {LD, RECO, "feature store lookup miss for user {uid}, falling back to popular items"},
    /* inventory / shipping */
    {LI, INV, "reserved {n} units of {sku} for order {oid} (warehouse {wh})"},
    {LW, INV, "stock level for {sku} dropped below threshold: {n} left"},
    {LI, SHIP, "shipment {oid} label created carrier=UPS tracking=1Z{HEX8}"},
    {LW, SHIP, "carrier API rate limited (429), backing off {ms}ms"},
    /* db-proxy */
    {LD, DB, "query ok: {sql} rows={count} time={ms}ms"},
    {LD, DB, "executed {sql} in {ms}ms"},
    {LW, DB, "slow query ({ms}ms): {sql}"},
    {LE, DB, "connection to primary {ip}:5432 lost, failing over to replica"},
    {LI, DB, "pool stats: open={n} in_use={n} idle={n} wait_count=0"},
    /* notification / email */
    {LI, NOTIF,
     "sent email template=order_confirmation to={email} message_id=<{uuid}@mail.shop.example>"},
    {LI, PUSH, "push notification delivered to device {hex16} in {ms}ms"},
    {LW, NOTIF, "SMTP 421 4.7.0 try again later, requeueing message {uuid}"},
    /* user / session */
    {LI, USERONLY, "user profile updated for {uid}: fields=[email,address]"},
    {LD, USER, "session {sess} created for user {uid}, ttl=1800s"},
    {LI, SESS, "session {sess} expired for user {uid}"},
    {LI, USERONLY, "GDPR export requested by {uid}, job {uuid} queued"},
    /* any service */
    {LD, ANY, "health check passed ({ms}ms)"},
    {LI, ANY, "config reloaded: {n} keys changed"},
    {LI, ANY, "connected to redis-cache.internal:6379 (db={n})"},
    {LI, ANY, "kafka consumer group {self}-group rebalanced: assigned partitions [{n}, {n}]"},
    {LD, ANY, "published event order.updated to topic orders partition={n} offset={count}"},
    {LD, ANY, "consumed {n} messages from topic events in {ms}ms (lag={count})"},
    {LD, ANY, "cache miss for key user:{uidnum}:profile, loading from db"},
    {LI, ANY, "cache hit ratio {pct}% over last 60s ({count} lookups)"},
    {LD, JAVA, "GC pause {ms}ms (G1 Young Generation), heap {n}MB/2048MB"},
    {LD, ANY, "worker {n} picked up job {uuid} (queue=default)"},
    {LI, ANY, "job {uuid} finished in {ms}ms"},
    {LT, ANY, "feature flag new-checkout-flow evaluated to true for {uid}"},
    {LT, ANY, "entering handler {path}"},
    {LT, ANY, "span {hex16} started parent={hex16}"},
    {LD, ANY, "outbound call to {svc} took {ms}ms status={status}"},
    {LW, ANY, "retrying request to {svc} (attempt {retry}/3): connection reset by peer"},
    {LW, ANY, "high memory usage: {pct}% of container limit"},
    {LW, ANY, "TLS certificate for {svc}.internal expires in {n} days"},
    {LW, ANY, "deprecated API version v1 called by client {ip}"},
    {LE, ANY, "request to {svc} timed out after {ms}ms"},
    {LE, ANY, "unhandled exception processing request {uuid}"},
    {LE, ANY, "failed to publish message to topic orders: Local: Message timed out"},
    {LE, ANY, "dial tcp {ip}:{port}: connect: connection refused"},
    {LE, ANY, "deadline exceeded calling {svc} after {ms}ms"},
    {LF, ANY, "panic: runtime error: invalid memory address or nil pointer dereference"},
    {LF, ANY, "fatal: could not bind to 0.0.0.0:{port}: address already in use"},
    {LF, ANY, "out of memory: unable to allocate {bytes} bytes, shutting down"},
    {LF, ANY, "shutting down after unrecoverable error in {svc} client"},
    {LI, ANY, "received SIGTERM, draining {n} connections"},
    {LI, ANY, "started {self} v2.{n}.{n} (commit {hex8}) listening on :{port}"},
};
#define TEMPLATE_COUNT (sizeof TEMPLATES / sizeof TEMPLATES[0])

static const char *const BURST_MSGS[] = {
    "card authorization failed: provider stripe returned 503 Service Unavailable",
    "upstream connect error or disconnect/reset before headers. reset reason: connection timeout",
    "database connection pool exhausted (max=50, waiting=128)",
    "circuit breaker OPEN for inventory-api: failure rate 87% over 20 calls",
    "TLS handshake failed: x509: certificate has expired or is not yet valid",
    "redis: connection refused (redis-cache.internal:6379)",
    "kafka producer error: Broker: Not enough in-sync replicas (topic=orders)",
    "OOMKilled: container exceeded memory limit 2Gi, restarting",
};
#define BURST_MSG_COUNT (sizeof BURST_MSGS / sizeof BURST_MSGS[0])

static const char *const METHODS[] = {"GET",  "GET", "GET",    "GET",  "POST",
                                      "POST", "PUT", "DELETE", "PATCH"};
static const char *const PATHS[] = {"/api/v1/orders",
                                    "/api/v1/orders/{oid}",
                                    "/api/v1/cart",
                                    "/api/v1/products/{sku}",
                                    "/api/v1/search",
                                    "/api/v1/users/{uidnum}",
                                    "/api/v1/checkout",
                                    "/api/v1/payments",
                                    "/api/v2/recommendations",
                                    "/api/v1/session",
                                    "/login",
                                    "/",
                                    "/products/{sku}"};
static const char *const GATEWAYS[] = {"stripe", "adyen", "braintree", "paypal"};
static const char *const CURRENCIES[] = {"USD", "USD", "EUR", "GBP", "JPY"};
static const char *const WAREHOUSES[] = {"fra-1", "iad-2", "sfo-1", "nrt-1"};
static const char *const QUERY_WORDS[] = {
    "running", "shoes", "wireless", "headphones", "usb-c", "cable", "laptop", "stand",
    "coffee",  "mug",   "red",      "dress",      "kids",  "lego",  "4k",     "monitor"};
static const char *const TABLES[] = {"orders", "users",    "products",
                                     "carts",  "payments", "inventory"};
static const int STATUS_OK[] = {200, 200, 200, 200, 200, 200, 201, 204, 304};
static const int STATUS_WARN[] = {400, 401, 403, 404, 404, 409, 429};
static const int STATUS_ERR[] = {500, 502, 503, 503, 504};
#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- template compilation ---- */

enum var {
    V_NONE,
    V_METHOD,
    V_PATH,
    V_STATUS,
    V_MS,
    V_BYTES,
    V_IP,
    V_PORT,
    V_UUID,
    V_SVC,
    V_SELF,
    V_PCT,
    V_HEX8,
    V_HEX8U,
    V_HEX16,
    V_SKU,
    V_UID,
    V_UIDNUM,
    V_SESS,
    V_N,
    V_N6,
    V_EMAIL,
    V_OID,
    V_AMOUNT,
    V_CUR,
    V_LAST4,
    V_GW,
    V_CODE,
    V_RETRY,
    V_COUNT,
    V_QUERY,
    V_WH,
    V_SQL,
};

static const struct {
    const char *name;
    uint8_t var;
} VAR_NAMES[] = {
    {"method", V_METHOD}, {"path", V_PATH},   {"status", V_STATUS}, {"ms", V_MS},
    {"bytes", V_BYTES},   {"ip", V_IP},       {"port", V_PORT},     {"uuid", V_UUID},
    {"svc", V_SVC},       {"self", V_SELF},   {"pct", V_PCT},       {"hex8", V_HEX8},
    {"HEX8", V_HEX8U},    {"hex16", V_HEX16}, {"sku", V_SKU},       {"uid", V_UID},
    {"uidnum", V_UIDNUM}, {"sess", V_SESS},   {"n", V_N},           {"n6", V_N6},
    {"email", V_EMAIL},   {"oid", V_OID},     {"amount", V_AMOUNT}, {"cur", V_CUR},
    {"last4", V_LAST4},   {"gw", V_GW},       {"code", V_CODE},     {"retry", V_RETRY},
    {"count", V_COUNT},   {"query", V_QUERY}, {"wh", V_WH},         {"sql", V_SQL},
};

#define SEG_MAX 16
typedef struct seg {
    const char *lit; /* literal text before the variable */
    uint16_t lit_len;
    uint8_t var; /* V_NONE for the trailing literal */
} seg;

typedef struct compiled {
    seg segs[SEG_MAX];
    uint8_t seg_count;
} compiled;

static void template_compile(const char *text, compiled *c)
{
    c->seg_count = 0;
    const char *p = text, *lit = text;
    while (*p && c->seg_count < SEG_MAX - 1) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            uint8_t var = V_NONE;
            for (size_t v = 0; close && v < COUNT_OF(VAR_NAMES); v++)
                if (strlen(VAR_NAMES[v].name) == (size_t)(close - p - 1) &&
                    memcmp(VAR_NAMES[v].name, p + 1, (size_t)(close - p - 1)) == 0)
                    var = VAR_NAMES[v].var;
            if (var != V_NONE) {
                seg *s = &c->segs[c->seg_count++];
                s->lit = lit;
                s->lit_len = (uint16_t)(p - lit);
                s->var = var;
                p = lit = close + 1;
                continue;
            }
        }
        p++;
    }
    seg *s = &c->segs[c->seg_count++];
    s->lit = lit;
    s->lit_len = (uint16_t)strlen(lit);
    s->var = V_NONE;
}

/* ---- generator state ---- */

#define HOSTS_MAX 8
#define CAND_MAX 40
#define TRACE_RING 32

struct qr_gen {
    uint64_t rng[4];
    int64_t clock_ns;
    int64_t next_ts_ns; /* stamped time of the next event */
    double interval_ns;
    double svc_cdf[SVC_COUNT];
    char hosts[SVC_COUNT][HOSTS_MAX][48];
    uint8_t host_count[SVC_COUNT];
    compiled templates[TEMPLATE_COUNT];
    compiled paths[COUNT_OF(PATHS)];
    /* per (service, level): candidate templates and their cumulative weights */
    uint8_t cand[SVC_COUNT][GL_COUNT][CAND_MAX];
    uint32_t cand_cdf[SVC_COUNT][GL_COUNT][CAND_MAX];
    uint8_t cand_count[SVC_COUNT][GL_COUNT];
    char trace_ring[TRACE_RING][32];
    uint32_t trace_filled;
    uint32_t burst_left; /* events left in the current burst */
    uint8_t burst_svc;
    uint8_t burst_msg;
    int64_t cached_sec;
    char cached_prefix[20]; /* "2025-06-15T00:00:00" */
    /* per-event values shared by msg and meta */
    int level;
    int svc;
    uint32_t latency_tenths;
    int status;
    const char *method;
    uint32_t user_num;
    bool has_user;
    bool has_trace;
};

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(qr_gen *g)
{
    uint64_t *s = g->rng;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static inline double rng_unit(qr_gen *g)
{
    return (double)(rng_next(g) >> 11) * 0x1.0p-53;
}
static inline uint32_t rng_below(qr_gen *g, uint32_t n)
{
    return (uint32_t)(((rng_next(g) >> 32) * (uint64_t)n) >> 32);
}
static double rng_normal(qr_gen *g)
{
    double u1 = rng_unit(g), u2 = rng_unit(g);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* ---- message builder (bounded; the longest message is far below MSG_CAP) ---- */

#define MSG_CAP 4096
typedef struct mb {
    char buf[MSG_CAP];
    size_t len;
} mb;

static inline void mb_put(mb *m, const char *s, size_t n)
{
    if (n > MSG_CAP - m->len) n = MSG_CAP - m->len;
    memcpy(m->buf + m->len, s, n);
    m->len += n;
}
static inline void mb_str(mb *m, const char *s)
{
    mb_put(m, s, strlen(s));
}
static void mb_u64(mb *m, uint64_t v)
{
    char tmp[24];
    char *q = tmp + sizeof tmp;
    do {
        *--q = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    mb_put(m, q, (size_t)(tmp + sizeof tmp - q));
}
static void mb_u64_pad(mb *m, uint64_t v, int width)
{
    char tmp[24];
    for (int pos = width - 1; pos >= 0; pos--) {
        tmp[pos] = (char)('0' + v % 10);
        v /= 10;
    }
    mb_put(m, tmp, (size_t)width);
}
static void mb_hex(mb *m, qr_gen *g, int n, bool upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char tmp[32];
    uint64_t r = 0;
    for (int pos = 0; pos < n; pos++) {
        if (pos % 16 == 0) r = rng_next(g);
        tmp[pos] = digits[r & 15];
        r >>= 4;
    }
    mb_put(m, tmp, (size_t)n);
}
static void mb_base36(mb *m, qr_gen *g, int n)
{
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    char tmp[16];
    for (int pos = 0; pos < n; pos++) tmp[pos] = digits[rng_below(g, 36)];
    mb_put(m, tmp, (size_t)n);
}
static void mb_tenths(mb *m, uint32_t tenths)
{
    mb_u64(m, tenths / 10);
    char frac[2] = {'.', (char)('0' + tenths % 10)};
    mb_put(m, frac, 2);
}

static void mb_template(mb *m, qr_gen *g, const compiled *c);

static void mb_var(mb *m, qr_gen *g, uint8_t var)
{
    switch (var) {
    case V_METHOD:
        mb_str(m, g->method);
        break;
    case V_PATH:
        mb_template(m, g, &g->paths[rng_below(g, COUNT_OF(PATHS))]);
        break;
    case V_STATUS:
        mb_u64(m, (uint64_t)g->status);
        break;
    case V_MS:
        mb_u64(m, g->latency_tenths / 10);
        break;
    case V_BYTES:
        mb_u64(m, (uint64_t)exp(7.0 + 1.5 * rng_normal(g)) + 64);
        break;
    case V_IP:
        mb_str(m, "10.");
        mb_u64(m, rng_below(g, 4));
        mb_str(m, ".");
        mb_u64(m, rng_below(g, 256));
        mb_str(m, ".");
        mb_u64(m, 1 + rng_below(g, 254));
        break;
    case V_PORT:
        mb_u64(m, 1024 + rng_below(g, 64511));
        break;
    case V_UUID:
        mb_hex(m, g, 8, false);
        mb_str(m, "-");
        mb_hex(m, g, 4, false);
        mb_str(m, "-4");
        mb_hex(m, g, 3, false);
        mb_str(m, "-a");
        mb_hex(m, g, 3, false);
        mb_str(m, "-");
        mb_hex(m, g, 12, false);
        break;
    case V_SVC:
        mb_str(m, SERVICES[rng_below(g, SVC_COUNT)].name);
        break;
    case V_SELF:
        mb_str(m, SERVICES[g->svc].name);
        break;
    case V_PCT:
        mb_u64(m, rng_below(g, 101));
        break;
    case V_HEX8:
        mb_hex(m, g, 8, false);
        break;
    case V_HEX8U:
        mb_hex(m, g, 8, true);
        break;
    case V_HEX16:
        mb_hex(m, g, 16, false);
        break;
    case V_SKU:
        mb_str(m, "SKU-");
        mb_u64_pad(m, rng_below(g, 1000000), 6);
        break;
    case V_UID:
        mb_str(m, "u_");
        mb_u64(m, g->user_num);
        break;
    case V_UIDNUM:
        mb_u64(m, g->user_num);
        break;
    case V_SESS:
        mb_hex(m, g, 16, false);
        break;
    case V_N:
        mb_u64(m, 1 + rng_below(g, 48));
        break;
    case V_N6:
        mb_u64_pad(m, rng_below(g, 1000000), 6);
        break;
    case V_EMAIL:
        mb_str(m, "user");
        mb_u64(m, g->user_num);
        mb_str(m, "@example.com");
        break;
    case V_OID:
        mb_str(m, "ord_");
        mb_base36(m, g, 10);
        break;
    case V_AMOUNT:
        mb_u64(m, (uint64_t)exp(3.5 + rng_normal(g)) + 1);
        mb_str(m, ".");
        mb_u64_pad(m, rng_below(g, 100), 2);
        break;
    case V_CUR:
        mb_str(m, CURRENCIES[rng_below(g, COUNT_OF(CURRENCIES))]);
        break;
    case V_LAST4:
        mb_u64_pad(m, rng_below(g, 10000), 4);
        break;
    case V_GW:
        mb_str(m, GATEWAYS[rng_below(g, COUNT_OF(GATEWAYS))]);
        break;
    case V_CODE:
        mb_hex(m, g, 6, true);
        break;
    case V_RETRY:
        mb_u64(m, 1 + rng_below(g, 3));
        break;
    case V_COUNT:
        mb_u64(m, (uint64_t)exp(4.0 + 1.8 * rng_normal(g)));
        break;
    case V_QUERY: {
        uint32_t words = 1 + rng_below(g, 3);
        for (uint32_t word_idx = 0; word_idx < words; word_idx++) {
            if (word_idx) mb_str(m, " ");
            mb_str(m, QUERY_WORDS[rng_below(g, COUNT_OF(QUERY_WORDS))]);
        }
        break;
    }
    case V_WH:
        mb_str(m, WAREHOUSES[rng_below(g, COUNT_OF(WAREHOUSES))]);
        break;
    case V_SQL: {
        const char *table = TABLES[rng_below(g, COUNT_OF(TABLES))];
        switch (rng_below(g, 4)) {
        case 0:
            mb_str(m, "SELECT * FROM ");
            mb_str(m, table);
            mb_str(m, " WHERE id = ");
            mb_u64(m, rng_below(g, 10000000));
            break;
        case 1:
            mb_str(m, "UPDATE ");
            mb_str(m, table);
            mb_str(m, " SET updated_at = now() WHERE id = ");
            mb_u64(m, rng_below(g, 10000000));
            break;
        case 2:
            mb_str(m, "INSERT INTO ");
            mb_str(m, table);
            mb_str(m, " (user_id, status) VALUES (");
            mb_u64(m, g->user_num);
            mb_str(m, ", 'pending')");
            break;
        default:
            mb_str(m, "SELECT count(*) FROM ");
            mb_str(m, table);
            mb_str(m, " WHERE user_id = ");
            mb_u64(m, g->user_num);
            break;
        }
        break;
    }
    default:
        break;
    }
}

static void mb_template(mb *m, qr_gen *g, const compiled *c)
{
    for (uint8_t seg_idx = 0; seg_idx < c->seg_count; seg_idx++) {
        const seg *s = &c->segs[seg_idx];
        mb_put(m, s->lit, s->lit_len);
        if (s->var != V_NONE) mb_var(m, g, s->var);
    }
}

static void mb_stack_trace(mb *m, qr_gen *g)
{
    const char *svc = SERVICES[g->svc].name;
    switch (SERVICES[g->svc].lang) {
    case LANG_JAVA:
        mb_str(m, rng_below(g, 2) ? "\njava.net.SocketTimeoutException: Read timed out"
                                  : "\njava.lang.NullPointerException: Cannot invoke "
                                    "\"Order.getItems()\" because \"order\" is null");
        mb_str(m, "\n\tat com.shop.");
        mb_str(m, svc);
        mb_str(m, ".client.UpstreamClient.call(UpstreamClient.java:");
        mb_u64(m, 40 + rng_below(g, 300));
        mb_str(m, ")\n\tat com.shop.");
        mb_str(m, svc);
        mb_str(m, ".service.Handler.process(Handler.java:");
        mb_u64(m, 40 + rng_below(g, 300));
        mb_str(m,
               ")\n\tat org.springframework.web.servlet.FrameworkServlet.service("
               "FrameworkServlet.java:897)\n\tat java.base/java.lang.Thread.run(Thread.java:833)");
        break;
    case LANG_PY:
        mb_str(m, "\nTraceback (most recent call last):\n  File \"/app/");
        mb_str(m, svc);
        mb_str(m, "/handlers.py\", line ");
        mb_u64(m, 20 + rng_below(g, 400));
        mb_str(m, ", in handle\n    result = self.process(request)\n  File \"/app/");
        mb_str(m, svc);
        mb_str(m, "/service.py\", line ");
        mb_u64(m, 20 + rng_below(g, 400));
        mb_str(m, ", in process\n    row = self.db.fetch_one(query, params)\n");
        mb_str(m, rng_below(g, 2) ? "KeyError: 'user_id'"
                                  : "psycopg2.OperationalError: server closed the connection "
                                    "unexpectedly");
        break;
    case LANG_GO:
        mb_str(m, "\ngoroutine ");
        mb_u64(m, 1 + rng_below(g, 5000));
        mb_str(m, " [running]:\nmain.(*Server).handle(0xc000");
        mb_hex(m, g, 6, false);
        mb_str(m, ", 0x0)\n\t/src/");
        mb_str(m, svc);
        mb_str(m, "/server.go:");
        mb_u64(m, 30 + rng_below(g, 500));
        mb_str(m, " +0x");
        mb_hex(m, g, 3, false);
        mb_str(m, "\nnet/http.HandlerFunc.ServeHTTP(...)\n\t/usr/local/go/src/net/http/"
                  "server.go:2136 +0x29");
        break;
    default:
        mb_str(m, "\nError: connect ECONNREFUSED 10.0.");
        mb_u64(m, rng_below(g, 4));
        mb_str(m, ".");
        mb_u64(m, 1 + rng_below(g, 254));
        mb_str(m, ":");
        mb_u64(m, 1024 + rng_below(g, 60000));
        mb_str(m, "\n    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)"
                  "\n    at /app/src/");
        mb_str(m, svc);
        mb_str(m, "/client.js:");
        mb_u64(m, 10 + rng_below(g, 300));
        mb_str(m, ":");
        mb_u64(m, 5 + rng_below(g, 40));
        break;
    }
}

/* ---- setup ---- */

static void gen_advance_clock(qr_gen *g)
{
    g->clock_ns += (int64_t)(g->interval_ns * 2.0 * rng_unit(g));
    int64_t ts = g->clock_ns;
    if (rng_below(g, 100) < 3) ts -= (int64_t)rng_below(g, 250) * QR_NS_PER_MS;
    int64_t rem = ts % QR_NS_PER_MS; /* stamped with ms precision: floor to the ms */
    g->next_ts_ns = ts - (rem < 0 ? rem + QR_NS_PER_MS : rem);
}

qr_gen *qr_gen_new(const qr_gen_opts *opts)
{
    qr_gen *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    uint64_t sm = opts ? opts->seed : 0;
    for (int word = 0; word < 4; word++) g->rng[word] = splitmix64(&sm);
    g->clock_ns = opts && opts->start_ns ? opts->start_ns : 1749945600LL * QR_NS_PER_SEC;
    double rate = opts && opts->rate_per_sec > 0 ? opts->rate_per_sec : 1000.0;
    g->interval_ns = 1e9 / rate;
    g->cached_sec = INT64_MIN;

    double total = 0;
    for (size_t svc = 0; svc < SVC_COUNT; svc++) total += 1.0 / pow((double)(svc + 1), 1.1);
    double acc = 0;
    for (size_t svc = 0; svc < SVC_COUNT; svc++) {
        acc += 1.0 / pow((double)(svc + 1), 1.1) / total;
        g->svc_cdf[svc] = acc;
    }
    g->svc_cdf[SVC_COUNT - 1] = 1.0;

    for (size_t svc = 0; svc < SVC_COUNT; svc++) {
        uint8_t hosts = (uint8_t)(svc < 3   ? 8
                                  : svc < 8 ? 4 + rng_below(g, 3)
                                            : 2 + rng_below(g, 3));
        g->host_count[svc] = hosts;
        for (uint8_t host_idx = 0; host_idx < hosts; host_idx++) {
            mb m;
            m.len = 0;
            if (SERVICES[svc].is_k8s) {
                mb_str(&m, SERVICES[svc].name);
                mb_str(&m, "-");
                mb_hex(&m, g, 6, false);
                mb_str(&m, "-");
                mb_base36(&m, g, 5);
            } else {
                mb_str(&m, "ip-10-0-");
                mb_u64(&m, 1 + rng_below(g, 40));
                mb_str(&m, "-");
                mb_u64(&m, 2 + rng_below(g, 250));
            }
            if (m.len > 47) m.len = 47;
            memcpy(g->hosts[svc][host_idx], m.buf, m.len);
            g->hosts[svc][host_idx][m.len] = '\0';
        }
    }

    for (size_t t = 0; t < TEMPLATE_COUNT; t++)
        template_compile(TEMPLATES[t].text, &g->templates[t]);
    for (size_t p = 0; p < COUNT_OF(PATHS); p++) template_compile(PATHS[p], &g->paths[p]);
    for (size_t svc = 0; svc < SVC_COUNT; svc++) {
        for (int lv = 0; lv < GL_COUNT; lv++) {
            uint32_t weight_acc = 0;
            uint8_t n = 0;
            for (size_t t = 0; t < TEMPLATE_COUNT && n < CAND_MAX; t++) {
                const struct template_def *td = &TEMPLATES[t];
                if (!(td->levels & (1 << lv))) continue;
                if (td->services && !(td->services & S(svc))) continue;
                weight_acc += td->services ? 3 : 1;
                g->cand[svc][lv][n] = (uint8_t)t;
                g->cand_cdf[svc][lv][n] = weight_acc;
                n++;
            }
            g->cand_count[svc][lv] = n;
        }
    }
    gen_advance_clock(g);
    return g;
}

void qr_gen_free(qr_gen *g)
{
    free(g);
}

int64_t qr_gen_next_ts(const qr_gen *g)
{
    return g->next_ts_ns;
}

/* ---- one event ---- */

static int pick_service(qr_gen *g)
{
    double u = rng_unit(g);
    for (size_t svc = 0; svc < SVC_COUNT; svc++)
        if (u < g->svc_cdf[svc]) return (int)svc;
    return (int)SVC_COUNT - 1;
}

static int pick_level(qr_gen *g)
{
    uint32_t u = rng_below(g, 100000);
    if (u < 100) return GL_FATAL;   /* 0.1% */
    if (u < 3600) return GL_ERROR;  /* 3.5% */
    if (u < 11600) return GL_WARN;  /* 8% */
    if (u < 29600) return GL_DEBUG; /* 18% */
    if (u < 30000) return GL_TRACE; /* 0.4% */
    return GL_INFO;                 /* 70% */
}

static void out_str(qr_buf *out, const char *s)
{
    qr_buf_append(out, s, strlen(s));
}

static void out_ts(qr_gen *g, qr_buf *out, int64_t ts_ns)
{
    int64_t sec = ts_ns / QR_NS_PER_SEC, ms = (ts_ns % QR_NS_PER_SEC) / QR_NS_PER_MS;
    if (ms < 0) {
        ms += 1000;
        sec -= 1;
    }
    if (sec != g->cached_sec) {
        char buf[40];
        qr_time_format(sec * QR_NS_PER_SEC, buf, sizeof buf, false);
        memcpy(g->cached_prefix, buf, 19);
        g->cached_sec = sec;
    }
    char tmp[26];
    memcpy(tmp, g->cached_prefix, 19);
    tmp[19] = '.';
    tmp[20] = (char)('0' + ms / 100);
    tmp[21] = (char)('0' + ms / 10 % 10);
    tmp[22] = (char)('0' + ms % 10);
    tmp[23] = 'Z';
    qr_buf_append(out, tmp, 24);
}

void qr_gen_next_ndjson(qr_gen *g, qr_buf *out)
{
    int64_t ts_ns = g->next_ts_ns;
    bool is_burst = false;
    if (g->burst_left) {
        g->burst_left--;
        is_burst = rng_below(g, 5) == 0;
    } else if (rng_below(g, 40000) == 0) {
        g->burst_left = 300 + rng_below(g, 1700);
        g->burst_svc = (uint8_t)pick_service(g);
        g->burst_msg = (uint8_t)rng_below(g, BURST_MSG_COUNT);
    }
    g->svc = is_burst ? g->burst_svc : pick_service(g);
    g->level = is_burst ? GL_ERROR : pick_level(g);
    const struct service_def *sd = &SERVICES[g->svc];

    double lat = exp(log(18.0) + 1.1 * rng_normal(g));
    if (rng_below(g, 100) == 0) lat *= 10;
    if (g->level >= GL_ERROR) lat *= 3;
    if (lat > 120000) lat = 120000;
    g->latency_tenths = (uint32_t)(lat * 10) + 1;
    g->method = METHODS[rng_below(g, COUNT_OF(METHODS))];
    if (g->level >= GL_ERROR)
        g->status = STATUS_ERR[rng_below(g, COUNT_OF(STATUS_ERR))];
    else if (g->level == GL_WARN)
        g->status = STATUS_WARN[rng_below(g, COUNT_OF(STATUS_WARN))];
    else
        g->status = STATUS_OK[rng_below(g, COUNT_OF(STATUS_OK))];
    double ur = rng_unit(g);
    g->user_num = 1 + (uint32_t)(99999.0 * ur * ur * ur);
    g->has_user = rng_below(g, 100) < 45;
    g->has_trace = rng_below(g, 100) < 70;

    mb m;
    m.len = 0;
    if (is_burst) {
        mb_str(&m, BURST_MSGS[g->burst_msg]);
    } else {
        uint8_t n = g->cand_count[g->svc][g->level];
        uint32_t pick = rng_below(g, g->cand_cdf[g->svc][g->level][n - 1]);
        uint8_t cand_idx = 0;
        while (g->cand_cdf[g->svc][g->level][cand_idx] <= pick) cand_idx++;
        uint8_t t = g->cand[g->svc][g->level][cand_idx];
        mb_template(&m, g, &g->templates[t]);
        bool trace = (g->level == GL_ERROR && rng_below(g, 100) < 12) ||
                     (g->level == GL_FATAL && rng_below(g, 100) < 60) ||
                     strncmp(TEMPLATES[t].text, "unhandled exception", 19) == 0;
        if (trace) mb_stack_trace(&m, g);
    }

    qr_buf_reserve(out, 512 + m.len);
    out_str(out, "{\"ts\":\"");
    out_ts(g, out, ts_ns);
    out_str(out, "\",\"service\":\"");
    out_str(out, sd->name);
    out_str(out, "\",\"level\":\"");
    out_str(out, LEVEL_NAMES[g->level]);
    out_str(out, "\",\"host\":\"");
    out_str(out, g->hosts[g->svc][rng_below(g, g->host_count[g->svc])]);
    out_str(out, "\",\"msg\":");
    qr_json_write_str(out, m.buf, m.len);

    /* meta */
    mb meta;
    meta.len = 0;
    mb_str(&meta, ",\"meta\":{");
    if (g->has_trace) {
        mb_str(&meta, "\"trace_id\":\"");
        if (g->trace_filled && rng_below(g, 100) < 35) {
            uint32_t n = g->trace_filled < TRACE_RING ? g->trace_filled : TRACE_RING;
            mb_put(&meta, g->trace_ring[rng_below(g, n)], 32);
        } else {
            size_t at = meta.len;
            mb_hex(&meta, g, 32, false);
            memcpy(g->trace_ring[g->trace_filled % TRACE_RING], meta.buf + at, 32);
            g->trace_filled++;
        }
        mb_str(&meta, "\",\"span_id\":\"");
        mb_hex(&meta, g, 16, false);
        mb_str(&meta, "\",");
    }
    if (g->has_user) {
        mb_str(&meta, "\"user_id\":\"u_");
        mb_u64(&meta, g->user_num);
        mb_str(&meta, "\",");
    }
    mb_str(&meta, "\"latency_ms\":");
    mb_tenths(&meta, g->latency_tenths);
    if (sd->is_http) {
        mb_str(&meta, ",\"http\":{\"method\":\"");
        mb_str(&meta, g->method);
        mb_str(&meta, "\",\"status\":");
        mb_u64(&meta, (uint64_t)g->status);
        mb_str(&meta, "}");
    }
    mb_str(&meta, "}}\n");
    qr_buf_append(out, meta.buf, meta.len);
    gen_advance_clock(g);
}

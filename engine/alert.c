/* alert — the alert manager: observer, window slots, evaluator thread, state machine, files
 * (alert.h, docs/alerts.md).
 *
 * Locks: mu guards the rule list, every group and every window slot; the observer takes it
 * per batch (under the tenant's lock: order tenant lock → mu, never the reverse, so nothing
 * here calls db_* while holding mu). ddl_mu serializes CREATE/DROP/MUTE/UNMUTE and the
 * evaluations' file work (history appends, outbox writes), which happen with mu released:
 * an evaluation turns state changes into a list of actions under mu, then performs them.
 *
 * Slots: a group has nslots = WINDOW/slot + 2 ring entries, entry slot_id % nslots holding the
 * aggregate states of events whose ts falls in [slot_id·slot, (slot_id+1)·slot). An entry is
 * reused (its states freed) when a newer slot id maps onto it; an event older than the entry's
 * slot is late and dropped (counted). Events more than one slot in the future count in the
 * slot after now's, so a wrong client clock cannot evict the current window. */
#include "engine/alert_int.h"

#include "common/qr_fs.h"
#include "common/qr_hash.h"
#include "common/qr_json.h"
#include "common/qr_jsonw.h"
#include "common/qr_time.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define ALERT_PROMPT_MIN_NS (200 * QR_NS_PER_MS)
#define KEY_SEP '\x1f'
#define KEY_NULL '\x1e'

struct alert_mgr {
    db_t *db;
    cqb_batch *cqb;       /* the current batch shared by the rules (under mu) */
    alert_group **gcache; /* CQB_CLASS_MAX: a rule's group per label class (under mu) */
    uint32_t *gcache_gen; /* CQB_CLASS_MAX: gcache[c] is valid when == the rule's turn */
    uint32_t gen;
    alert_mgr_opts opts;
    char base_url[256];
    char source[256];
    notify *notifier;
    pthread_mutex_t mu;
    pthread_mutex_t ddl_mu;
    pthread_cond_t cv;
    alert_rule *rules;
    uint32_t rule_count;
    bool stop;
    bool wake;
    pthread_t thread;
    bool thread_started;
    uint64_t evaluations;
    uint64_t transitions;
    uint64_t events_matched;
    uint64_t events_dropped;
};

static int64_t mgr_now(alert_mgr *m)
{
    return m->opts.clock ? m->opts.clock(m->opts.clock_ctx) : qr_now_ns();
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static void alerts_dir(alert_mgr *m, const char *tenant, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/cq/%s/alerts", db_dir(m->db), tenant);
}

/* ---- groups -------------------------------------------------------------------------------- */

static alert_group *group_new(alert_rule *r, const char *key, size_t key_len, uint64_t hash)
{
    alert_group *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->hash = hash;
    g->key = malloc(key_len + 1);
    g->key_len = (uint32_t)key_len;
    g->values = r->group_count ? calloc(r->group_count, sizeof *g->values) : NULL;
    g->states = calloc((size_t)r->nslots * (r->agg_count ? r->agg_count : 1), sizeof *g->states);
    g->slot_ids = malloc(r->nslots * sizeof *g->slot_ids);
    qr_buf disp;
    qr_buf_init(&disp);
    bool ok = g->key && g->states && g->slot_ids && (!r->group_count || g->values);
    if (ok) {
        memcpy(g->key, key, key_len);
        g->key[key_len] = 0;
        for (uint32_t si = 0; si < r->nslots; si++) g->slot_ids[si] = INT64_MIN;
        const char *p = key, *end = key + key_len;
        for (uint32_t fi = 0; fi < r->group_count && ok; fi++) {
            const char *sep = memchr(p, KEY_SEP, (size_t)(end - p));
            size_t len = sep ? (size_t)(sep - p) : (size_t)(end - p);
            bool is_null = len == 1 && *p == KEY_NULL;
            g->values[fi] = strndup(is_null ? "" : p, is_null ? 0 : len);
            ok = g->values[fi] != NULL;
            if (fi) qr_buf_u8(&disp, ',');
            qr_buf_append(&disp, r->group_fields[fi], strlen(r->group_fields[fi]));
            qr_buf_u8(&disp, '=');
            if (ok) qr_buf_append(&disp, g->values[fi], strlen(g->values[fi]));
            p = sep ? sep + 1 : end;
        }
        qr_buf_u8(&disp, 0);
        g->display = ok && qr_buf_ok(&disp) ? strdup((const char *)disp.data) : NULL;
        ok = g->display != NULL;
    }
    qr_buf_fini(&disp);
    if (!ok) {
        for (uint32_t fi = 0; g->values && fi < r->group_count; fi++) free(g->values[fi]);
        free(g->values);
        free(g->states);
        free(g->slot_ids);
        free(g->key);
        free(g);
        return NULL;
    }
    for (uint32_t idx = 0; idx < ALERT_MAX_SAMPLES; idx++) qr_buf_init(&g->samples[idx]);
    return g;
}

static bool group_table_grow(alert_rule *r)
{
    uint32_t cap = r->group_cap * 2;
    alert_group **t = calloc(cap, sizeof *t);
    if (!t) return false;
    for (uint32_t idx = 0; idx < r->group_cap; idx++) {
        alert_group *g = r->groups[idx];
        if (!g) continue;
        uint32_t pos = (uint32_t)g->hash & (cap - 1);
        while (t[pos]) pos = (pos + 1) & (cap - 1);
        t[pos] = g;
    }
    free(r->groups);
    r->groups = t;
    r->group_cap = cap;
    return true;
}

/* The group of key, created when absent (NULL: over ALERT_MAX_GROUPS or out of memory). */
static alert_group *group_get(alert_rule *r, const char *key, size_t key_len)
{
    uint64_t hash = qr_hash64(key, key_len);
    uint32_t mask = r->group_cap - 1;
    uint32_t pos = (uint32_t)hash & mask;
    for (alert_group *g; (g = r->groups[pos]); pos = (pos + 1) & mask)
        if (g->hash == hash && g->key_len == key_len && memcmp(g->key, key, key_len) == 0) return g;
    if (r->group_n >= ALERT_MAX_GROUPS) return NULL;
    if ((r->group_n + 1) * 2 > r->group_cap) {
        if (!group_table_grow(r)) return NULL;
        mask = r->group_cap - 1;
        pos = (uint32_t)hash & mask;
        while (r->groups[pos]) pos = (pos + 1) & mask;
    }
    alert_group *g = group_new(r, key, key_len, hash);
    if (!g) return NULL;
    r->groups[pos] = g;
    r->group_n++;
    return g;
}

/* Builds the event's group key into r->keybuf. */
static void group_key(alert_rule *r, const qr_batch *b, const qr_event *e)
{
    qr_buf_clear(&r->keybuf);
    for (uint32_t fi = 0; fi < r->group_count; fi++) {
        if (fi) qr_buf_u8(&r->keybuf, KEY_SEP);
        double num;
        qr_str str = {0};
        bool is_num = false;
        const char *name = r->group_fields[fi];
        if (!evf_event_value(b, e, name, strlen(name), &num, &str, &is_num)) {
            qr_buf_u8(&r->keybuf, KEY_NULL);
        } else if (is_num) {
            char t[40];
            int n = snprintf(t, sizeof t, "%.15g", num);
            qr_buf_append(&r->keybuf, t, (size_t)n);
        } else {
            /* separators inside values would split the key: they become '?' */
            size_t start = r->keybuf.len;
            if (str.len) qr_buf_append(&r->keybuf, str.ptr, str.len);
            for (size_t idx = start; idx < r->keybuf.len && qr_buf_ok(&r->keybuf); idx++)
                if (r->keybuf.data[idx] == KEY_SEP || r->keybuf.data[idx] == KEY_NULL)
                    r->keybuf.data[idx] = '?';
        }
    }
}

/* A sample is kept as the event's bytes (copies, no formatting: capturing runs on the ingest
 * path) and written as JSON only when a notification is built (sample_json). Strings are cut
 * as the JSON will be: labels at QR_LABEL_MAX_BYTES, msg at 1,000, field keys at
 * QR_KEY_MAX_BYTES, string values at 200, at most 32 fields. */
static void raw_str(qr_buf *s, qr_str v, size_t max_len)
{
    uint32_t n = (uint32_t)(v.ptr ? (v.len > max_len ? max_len : v.len) : 0);
    qr_buf_append(s, &n, sizeof n);
    if (n) qr_buf_append(s, v.ptr, n);
}

static void sample_capture(alert_rule *r, alert_group *g, const qr_batch *b, const qr_event *e)
{
    (void)r;
    /* at most ALERT_MAX_SAMPLES per evaluation period: the cost stays off the busy path */
    if (g->fresh_samples >= ALERT_MAX_SAMPLES) return;
    g->fresh_samples++;
    qr_buf *s = &g->samples[g->sample_next];
    g->sample_next = (g->sample_next + 1) % ALERT_MAX_SAMPLES;
    if (g->sample_count < ALERT_MAX_SAMPLES) g->sample_count++;
    qr_buf_clear(s);
    qr_buf_append(s, &e->ts_ns, sizeof e->ts_ns);
    qr_buf_u8(s, e->level);
    raw_str(s, e->service, QR_LABEL_MAX_BYTES);
    raw_str(s, e->host, QR_LABEL_MAX_BYTES);
    raw_str(s, e->msg, 1000);
    const qr_field *f = qr_event_fields(b, e);
    uint8_t nf = (uint8_t)(e->field_count < 32 ? e->field_count : 32);
    qr_buf_u8(s, nf);
    for (uint32_t fi = 0; fi < nf; fi++) {
        raw_str(s, f[fi].key, QR_KEY_MAX_BYTES);
        qr_buf_u8(s, f[fi].type);
        switch (f[fi].type) {
        case QR_FT_STRING:
            raw_str(s, f[fi].v.s, 200);
            break;
        case QR_FT_INT:
            qr_buf_append(s, &f[fi].v.i, sizeof f[fi].v.i);
            break;
        case QR_FT_FLOAT:
            qr_buf_append(s, &f[fi].v.f, sizeof f[fi].v.f);
            break;
        case QR_FT_BOOL:
            qr_buf_u8(s, f[fi].v.b ? 1 : 0);
            break;
        default:
            break;
        }
    }
}

static qr_str rd_str(qr_rd *rd)
{
    uint32_t n = 0;
    const uint8_t *p = qr_rd_take(rd, sizeof n);
    if (p) memcpy(&n, p, sizeof n);
    const uint8_t *q = n ? qr_rd_take(rd, n) : NULL;
    return q ? qr_str_make((const char *)q, n) : qr_str_make("", 0);
}

/* The JSON object of a captured sample into out (NUL-terminated); false if malformed. */
static bool sample_json(const qr_buf *raw, qr_buf *out)
{
    qr_rd rd;
    qr_rd_init(&rd, raw->data, raw->len);
    int64_t ts = 0;
    const uint8_t *p = qr_rd_take(&rd, sizeof ts);
    if (!p) return false;
    memcpy(&ts, p, sizeof ts);
    uint8_t level = qr_rd_u8(&rd);
    qr_str service = rd_str(&rd), host = rd_str(&rd), msg = rd_str(&rd);
    char t[40];
    qr_time_format(ts, t, sizeof t, true);
    qr_jsonw_raw(out, "{\"ts\":");
    qr_jsonw_cstr(out, t);
    qr_jsonw_raw(out, ",\"service\":");
    qr_jsonw_str(out, service.ptr, service.len);
    qr_jsonw_raw(out, ",\"host\":");
    qr_jsonw_str(out, host.ptr, host.len);
    qr_jsonw_raw(out, ",\"level\":");
    qr_jsonw_cstr(out, qr_level_name((qr_level)level));
    qr_jsonw_raw(out, ",\"msg\":");
    qr_jsonw_str(out, msg.ptr, msg.len);
    uint8_t nf = qr_rd_u8(&rd);
    for (uint32_t fi = 0; fi < nf; fi++) {
        qr_str key = rd_str(&rd);
        uint8_t type = qr_rd_u8(&rd);
        qr_buf_u8(out, ',');
        qr_jsonw_str(out, key.ptr, key.len);
        qr_buf_u8(out, ':');
        switch (type) {
        case QR_FT_STRING: {
            qr_str v = rd_str(&rd);
            qr_jsonw_str(out, v.ptr, v.len);
            break;
        }
        case QR_FT_INT: {
            int64_t v = 0;
            const uint8_t *q = qr_rd_take(&rd, sizeof v);
            if (q) memcpy(&v, q, sizeof v);
            qr_jsonw_int(out, v);
            break;
        }
        case QR_FT_FLOAT: {
            double v = 0;
            const uint8_t *q = qr_rd_take(&rd, sizeof v);
            if (q) memcpy(&v, q, sizeof v);
            qr_jsonw_double(out, v);
            break;
        }
        case QR_FT_BOOL:
            qr_jsonw_raw(out, qr_rd_u8(&rd) ? "true" : "false");
            break;
        default:
            qr_jsonw_raw(out, "null");
        }
    }
    qr_buf_u8(out, '}');
    qr_buf_u8(out, 0);
    return !rd.bad && qr_buf_ok(out);
}

/* One matching event through one rule (caller holds mu). vals: per aggregate, the batch's
 * column (NULL: read the event); gslot: the rule's group of the event's label class when
 * known, filled when found (NULL: no class cache). */
static void rule_feed_event(alert_mgr *m, alert_rule *r, const qr_batch *b, size_t ei,
                            int64_t now_slot, const exec_value *const *vals, alert_group **gslot)
{
    const qr_event *e = &b->events[ei];
    /* consecutive events mostly share a slot: divide only when the slot changes */
    int64_t slot_id;
    uint32_t ring;
    if (e->ts_ns >= r->last_slot_start_ns && e->ts_ns - r->last_slot_start_ns < r->slot_ns) {
        slot_id = r->last_slot_id;
        ring = r->last_ring;
    } else {
        slot_id = floor_div(e->ts_ns, r->slot_ns);
        ring = (uint32_t)(((slot_id % r->nslots) + r->nslots) % r->nslots);
        r->last_slot_id = slot_id;
        r->last_slot_start_ns = slot_id * r->slot_ns;
        r->last_ring = ring;
    }
    if (slot_id > now_slot + 1) {
        slot_id = now_slot + 1;
        ring = (uint32_t)(((slot_id % r->nslots) + r->nslots) % r->nslots);
    }
    if (slot_id < now_slot + 2 - (int64_t)r->nslots) return; /* older than any window */
    alert_group *g;
    if (gslot && *gslot) {
        g = *gslot;
    } else if (r->group_count == 0) {
        g = r->last_group ? r->last_group : group_get(r, "", 0);
    } else {
        group_key(r, b, e);
        const char *key = r->keybuf.data ? (const char *)r->keybuf.data : "";
        /* runs of one group (a batch of one service) skip the hash and the probe */
        g = r->last_group;
        if (!g || g->key_len != r->keybuf.len || memcmp(g->key, key, g->key_len) != 0)
            g = qr_buf_ok(&r->keybuf) ? group_get(r, key, r->keybuf.len) : NULL;
    }
    r->last_group = g;
    if (gslot) *gslot = g;
    if (!g) {
        m->events_dropped++;
        return;
    }
    cq_agg_state **st = &g->states[(size_t)ring * r->agg_count];
    if (g->slot_ids[ring] != slot_id) {
        if (g->slot_ids[ring] > slot_id) {
            m->events_dropped++;
            return;
        }
        for (uint32_t ai = 0; ai < r->agg_count; ai++) {
            cq_agg_free(st[ai]);
            st[ai] = NULL;
        }
        g->slot_ids[ring] = slot_id;
    }
    for (uint32_t ai = 0; ai < r->agg_count; ai++) {
        if (!st[ai] && !(st[ai] = cq_agg_new(&r->aggs[ai]))) {
            m->events_dropped++;
            return;
        }
        if (vals && vals[ai])
            cq_agg_add_value(&r->aggs[ai], st[ai], &vals[ai][ei]);
        else
            cq_agg_add_event(&r->aggs[ai], st[ai], b, e);
    }
    sample_capture(r, g, b, e);
    g->dirty = true;
    r->dirty = true;
    m->events_matched++;
}

/* Every event of b through the rule's own filter (the rebuild and the reference path). */
static void rule_feed_batch(alert_mgr *m, alert_rule *r, const qr_batch *b, int64_t now_ns)
{
    int64_t now_slot = floor_div(now_ns, r->slot_ns);
    for (size_t idx = 0; idx < b->count; idx++)
        if (evf_match(r->filter, b, &b->events[idx]) == 1)
            rule_feed_event(m, r, b, idx, now_slot, NULL, NULL);
}

/* True when every GROUP BY label is service, host or level: a label class has one group
 * (*host: one of them is host). */
static bool groups_by_class(const alert_rule *r, bool *host)
{
    *host = false;
    for (uint32_t fi = 0; fi < r->group_count; fi++) {
        const char *f = r->group_fields[fi];
        if (!strcmp(f, "host")) *host = true;
        if (strcmp(f, "service") && strcmp(f, "host") && strcmp(f, "level")) return false;
    }
    return true;
}

/* The rule over the batch of m->cqb: its WHERE's events, columns and classes are shared by
 * the rules of the batch; events are fed in order, so the states equal the per-event path's.
 * QR_ENOMEM: nothing was fed (the caller takes the per-event path). */
static int rule_feed_shared(alert_mgr *m, alert_rule *r, const qr_batch *b, int64_t now_ns)
{
    const uint32_t *rows;
    size_t n;
    if (cqb_batch_select(m->cqb, &r->where, &rows, &n)) return QR_ENOMEM;
    if (!n) return 0;
    const exec_value *stack_vals[8];
    const exec_value **vals = r->agg_count <= 8 ? stack_vals : malloc(r->agg_count * sizeof *vals);
    if (!vals) return QR_ENOMEM;
    for (uint32_t ai = 0; ai < r->agg_count; ai++) {
        vals[ai] = NULL;
        if (r->aggs[ai].kind != CQ_AGG_COUNT_STAR &&
            !(vals[ai] = cqb_batch_column(m->cqb, r->aggs[ai].field))) {
            if (vals != stack_vals) free(vals);
            return QR_ENOMEM;
        }
    }
    uint32_t ncls = 0;
    bool host = false;
    const uint16_t *cls = NULL;
    if (m->gcache && groups_by_class(r, &host)) cls = cqb_batch_classes(m->cqb, host, &ncls);
    uint32_t gen = ++m->gen;
    if (gen == 0) { /* wrapped: forget every slot */
        memset(m->gcache_gen, 0, CQB_CLASS_MAX * sizeof *m->gcache_gen);
        gen = m->gen = 1;
    }
    int64_t now_slot = floor_div(now_ns, r->slot_ns);
    for (size_t ri = 0; ri < n; ri++) {
        uint32_t ei = rows[ri];
        alert_group **gslot = NULL;
        if (cls) {
            uint16_t c = cls[ei];
            if (m->gcache_gen[c] != gen) {
                m->gcache_gen[c] = gen;
                m->gcache[c] = NULL;
            }
            gslot = &m->gcache[c];
        }
        rule_feed_event(m, r, b, ei, now_slot, vals, gslot);
    }
    if (vals != stack_vals) free(vals);
    return 0;
}

static void observe(void *ctx, const char *tenant, const qr_batch *batch, uint64_t lsn)
{
    (void)lsn;
    alert_mgr *m = ctx;
    pthread_mutex_lock(&m->mu);
    if (m->rules) {
        int64_t now = mgr_now(m);
        bool dirty = false;
        if (!m->opts.per_event && !m->cqb && (m->cqb = cqb_batch_new())) {
            m->gcache = calloc(CQB_CLASS_MAX, sizeof *m->gcache);
            m->gcache_gen = calloc(CQB_CLASS_MAX, sizeof *m->gcache_gen);
            if (!m->gcache || !m->gcache_gen) {
                free(m->gcache);
                free(m->gcache_gen);
                m->gcache = NULL;
                m->gcache_gen = NULL;
            }
        }
        if (m->cqb) cqb_batch_begin(m->cqb, batch);
        for (alert_rule *r = m->rules; r; r = r->next) {
            if (strcmp(r->tenant, tenant) != 0) continue;
            bool was_dirty = r->dirty;
            if (!m->cqb || rule_feed_shared(m, r, batch, now)) rule_feed_batch(m, r, batch, now);
            dirty |= r->dirty && !was_dirty; /* wake the evaluator once per evaluation */
        }
        if (dirty) {
            m->wake = true;
            pthread_cond_signal(&m->cv);
        }
    }
    pthread_mutex_unlock(&m->mu);
}

/* ---- evaluation ---------------------------------------------------------------------------- */

typedef struct action_notify {
    char *url;
    char *body;
    size_t body_len;
} action_notify;

typedef struct action {
    char tenant[QR_TENANT_MAX_BYTES + 1];
    char rule[65];
    char *group;
    char *key;
    uint8_t from, to;
    bool has_value;
    double value;
    bool notified;
    char error[64];
    int64_t ts_ns;
    uint32_t notify_count;
    action_notify *notifies;
    char *ref;
} action;

typedef struct action_list {
    action *items;
    size_t count, cap;
} action_list;

static void action_list_free(action_list *l)
{
    for (size_t idx = 0; idx < l->count; idx++) {
        action *a = &l->items[idx];
        free(a->group);
        free(a->key);
        free(a->ref);
        for (uint32_t ni = 0; ni < a->notify_count; ni++) {
            free(a->notifies[ni].url);
            free(a->notifies[ni].body);
        }
        free(a->notifies);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

static char *channel_url(const sql_channel *ch)
{
    switch (ch->kind) {
    case SQL_CHANNEL_PAGERDUTY:
        return strdup(ch->url ? ch->url : "https://events.pagerduty.com/v2/enqueue");
    case SQL_CHANNEL_ALERTMANAGER: {
        size_t len = strlen(ch->target);
        while (len && ch->target[len - 1] == '/') len--;
        const char *suffix = "/api/v2/alerts";
        size_t slen = strlen(suffix);
        bool has = len >= slen && memcmp(ch->target + len - slen, suffix, slen) == 0;
        char *u = malloc(len + slen + 1);
        if (!u) return NULL;
        memcpy(u, ch->target, len);
        memcpy(u + len, has ? "" : suffix, has ? 1 : slen + 1);
        return u;
    }
    default:
        return strdup(ch->target);
    }
}

/* Builds the payloads of one notification of g (caller holds mu). */
static int build_notifies_with(alert_mgr *m, const alert_rule *r, const alert_group *g,
                               const char *state, int64_t now, action *a, const notify_kv *group_kv,
                               uint32_t gc, const char *const *samples, uint32_t sc);

static int build_notifies(alert_mgr *m, const alert_rule *r, const alert_group *g,
                          const char *state, int64_t now, action *a)
{
    notify_kv group_kv[64];
    uint32_t gc = r->group_count < 64 ? r->group_count : 64;
    for (uint32_t idx = 0; idx < gc; idx++) {
        group_kv[idx].key = r->group_fields[idx];
        group_kv[idx].value = g->values[idx];
    }
    const char *samples[ALERT_MAX_SAMPLES];
    qr_buf json[ALERT_MAX_SAMPLES];
    uint32_t sc = 0;
    for (uint32_t idx = 0; idx < g->sample_count; idx++) {
        /* oldest first */
        uint32_t pos =
            (g->sample_next + ALERT_MAX_SAMPLES - g->sample_count + idx) % ALERT_MAX_SAMPLES;
        const qr_buf *s = &g->samples[pos];
        qr_buf_init(&json[sc]);
        if (s->len && qr_buf_ok(s) && sample_json(s, &json[sc])) {
            samples[sc] = (const char *)json[sc].data;
            sc++;
        } else {
            qr_buf_fini(&json[sc]);
        }
    }
    int rc_all = build_notifies_with(m, r, g, state, now, a, group_kv, gc, samples, sc);
    for (uint32_t idx = 0; idx < sc; idx++) qr_buf_fini(&json[idx]);
    return rc_all;
}

static int build_notifies_with(alert_mgr *m, const alert_rule *r, const alert_group *g,
                               const char *state, int64_t now, action *a, const notify_kv *group_kv,
                               uint32_t gc, const char *const *samples, uint32_t sc)
{
    notify_alert na = {
        .rule = r->name,
        .state = state,
        .condition = r->cond_text,
        .query_sql = r->select_text,
        .base_url = m->base_url[0] ? m->base_url : NULL,
        .source = m->source,
        .group_count = gc,
        .group = group_kv,
        .label_count = r->al->label_count,
        .labels = r->labels,
        .annotation_count = r->al->annotation_count,
        .annotations = r->annotations,
        .has_value = g->has_value,
        .value = g->value,
        .window_ns = r->window_ns,
        .eval_ts_ns = now,
        .starts_at_ns = g->since_ns,
        .ends_at_ns = strcmp(state, "resolved") == 0 ? now : 0,
        .sample_count = sc,
        .samples = samples,
    };
    a->notifies = calloc(r->al->channel_count, sizeof *a->notifies);
    if (!a->notifies) return QR_ENOMEM;
    for (uint32_t ci = 0; ci < r->al->channel_count; ci++) {
        const sql_channel *ch = &r->al->channels[ci];
        qr_buf body;
        qr_buf_init(&body);
        int rc;
        switch (ch->kind) {
        case SQL_CHANNEL_SLACK:
            rc = notify_payload_slack(&na, &body);
            break;
        case SQL_CHANNEL_PAGERDUTY:
            rc = notify_payload_pagerduty(&na, ch->target, &body);
            break;
        case SQL_CHANNEL_ALERTMANAGER:
            rc = notify_payload_alertmanager(&na, &body);
            break;
        default:
            rc = notify_payload_webhook(&na, &body);
        }
        action_notify *an = &a->notifies[a->notify_count];
        an->url = rc ? NULL : channel_url(ch);
        if (rc || !an->url) {
            free(an->url);
            qr_buf_fini(&body);
            return QR_ENOMEM;
        }
        an->body = (char *)body.data; /* taken over */
        an->body_len = body.len;
        a->notify_count++;
    }
    return 0;
}

static action *action_add(action_list *l, const alert_rule *r, const alert_group *g, uint8_t from,
                          uint8_t to, int64_t now)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        action *items = realloc(l->items, cap * sizeof *items);
        if (!items) return NULL;
        l->items = items;
        l->cap = cap;
    }
    action *a = &l->items[l->count];
    memset(a, 0, sizeof *a);
    snprintf(a->tenant, sizeof a->tenant, "%s", r->tenant);
    snprintf(a->rule, sizeof a->rule, "%s", r->name);
    a->group = strdup(g->display);
    a->key = strdup(g->key);
    if (!a->group || !a->key) {
        free(a->group);
        free(a->key);
        return NULL;
    }
    a->from = from;
    a->to = to;
    a->has_value = g->has_value;
    a->value = g->value;
    a->ts_ns = now;
    l->count++;
    return a;
}

/* Decides whether a firing (or resolved) notification goes out; fills the action. */
static void decide_notify(alert_mgr *m, alert_rule *r, alert_group *g, action *a, bool resolved,
                          int64_t now)
{
    if (resolved) {
        if (!g->fired_notified) {
            snprintf(a->error, sizeof a->error, "firing was not notified");
            return;
        }
        if (now < r->muted_until_ns) {
            snprintf(a->error, sizeof a->error, "muted");
            return;
        }
    } else {
        if (now < r->muted_until_ns) {
            snprintf(a->error, sizeof a->error, "muted");
            return;
        }
        if (r->cooldown_ns > 0 && g->last_fire_notify_ns &&
            now - g->last_fire_notify_ns < r->cooldown_ns) {
            snprintf(a->error, sizeof a->error, "cooldown");
            return;
        }
    }
    if (build_notifies(m, r, g, resolved ? "resolved" : "firing", now, a) != 0) {
        snprintf(a->error, sizeof a->error, "out of memory");
        return;
    }
    a->notified = true;
    if (!resolved) {
        g->fired_notified = true;
        g->last_fire_notify_ns = now;
    }
}

/* The state machine of one instance for condition value cond at now (caller holds mu). */
static void instance_step(alert_mgr *m, alert_rule *r, alert_group *g, bool cond, int64_t now,
                          action_list *out)
{
    uint8_t from = g->state;
    action *a;
    switch (g->state) {
    case ALERT_OK:
        if (!cond) return;
        if (r->for_ns > 0) {
            g->state = ALERT_PENDING;
            g->since_ns = now;
            if ((a = action_add(out, r, g, from, ALERT_PENDING, now)))
                snprintf(a->error, sizeof a->error, "%s", "");
            return;
        }
        g->state = ALERT_FIRING;
        g->since_ns = now;
        g->fired_notified = false;
        if ((a = action_add(out, r, g, from, ALERT_FIRING, now)))
            decide_notify(m, r, g, a, false, now);
        return;
    case ALERT_PENDING:
        if (!cond) {
            g->state = ALERT_OK;
            action_add(out, r, g, from, ALERT_OK, now);
            return;
        }
        if (now - g->since_ns < r->for_ns) return;
        g->state = ALERT_FIRING;
        g->since_ns = now;
        g->fired_notified = false;
        if ((a = action_add(out, r, g, from, ALERT_FIRING, now)))
            decide_notify(m, r, g, a, false, now);
        return;
    case ALERT_FIRING:
        if (!cond) {
            if ((a = action_add(out, r, g, from, ALERT_RESOLVED, now)))
                decide_notify(m, r, g, a, true, now);
            g->state = ALERT_OK;
            g->fired_notified = false;
            return;
        }
        /* still firing, not notified (mute or cooldown then): notify once they are over */
        if (!g->fired_notified && now >= r->muted_until_ns &&
            !(r->cooldown_ns > 0 && g->last_fire_notify_ns &&
              now - g->last_fire_notify_ns < r->cooldown_ns)) {
            if ((a = action_add(out, r, g, from, ALERT_FIRING, now)))
                decide_notify(m, r, g, a, false, now);
        }
        return;
    default:
        g->state = ALERT_OK;
    }
}

static bool group_window_empty(const alert_rule *r, const alert_group *g, int64_t lo, int64_t hi)
{
    for (uint32_t si = 0; si < r->nslots; si++)
        if (g->slot_ids[si] >= lo && g->slot_ids[si] <= hi) return false;
    return true;
}

void alert_group_free(const alert_rule *r, alert_group *g)
{
    for (uint32_t si = 0; si < r->nslots * r->agg_count; si++) cq_agg_free(g->states[si]);
    for (uint32_t idx = 0; idx < ALERT_MAX_SAMPLES; idx++) qr_buf_fini(&g->samples[idx]);
    for (uint32_t idx = 0; idx < r->group_count; idx++) free(g->values[idx]);
    free(g->values);
    free(g->states);
    free(g->slot_ids);
    free(g->key);
    free(g->display);
    free(g);
}

/* Removes idle groups (ok, nothing in the window, no error to show) of a grouped rule. */
static void rule_gc(alert_rule *r, int64_t lo, int64_t hi)
{
    if (r->group_count == 0 || r->group_n < 64) return;
    uint32_t idle = 0;
    for (uint32_t idx = 0; idx < r->group_cap; idx++) {
        alert_group *g = r->groups[idx];
        if (g && g->state == ALERT_OK && !g->last_error[0] && group_window_empty(r, g, lo, hi))
            idle++;
    }
    if (idle < r->group_n / 4) return; /* not worth a rebuild yet */
    /* survivors go into a new table: linear probing has no tombstones */
    uint32_t cap = r->group_cap;
    alert_group **t = calloc(cap, sizeof *t);
    if (!t) return; /* try again at the next evaluation */
    r->last_group = NULL;
    for (uint32_t idx = 0; idx < cap; idx++) {
        alert_group *g = r->groups[idx];
        if (!g) continue;
        if (g->state == ALERT_OK && !g->last_error[0] && group_window_empty(r, g, lo, hi)) {
            alert_group_free(r, g);
            r->group_n--;
            continue;
        }
        uint32_t pos = (uint32_t)g->hash & (cap - 1);
        while (t[pos]) pos = (pos + 1) & (cap - 1);
        t[pos] = g;
    }
    free(r->groups);
    r->groups = t;
}

/* Evaluates one rule at now (caller holds mu). */
static void rule_eval(alert_mgr *m, alert_rule *r, int64_t now, action_list *out)
{
    int64_t cur = floor_div(now, r->slot_ns);
    int64_t lo = floor_div(now - r->window_ns + r->slot_ns - 1, r->slot_ns);
    int64_t hi = cur + 1;
    double vals[64];
    bool has[64];
    uint32_t na = r->agg_count < 64 ? r->agg_count : 64;
    if (r->group_count == 0 && r->group_n == 0) group_get(r, "", 0);
    for (uint32_t gi = 0; gi < r->group_cap; gi++) {
        alert_group *g = r->groups[gi];
        if (!g) continue;
        for (uint32_t ai = 0; ai < na; ai++) {
            cq_agg_state *merged = cq_agg_new(&r->aggs[ai]);
            if (!merged) {
                has[ai] = false;
                continue;
            }
            for (uint32_t si = 0; si < r->nslots; si++) {
                cq_agg_state *st = g->states[(size_t)si * r->agg_count + ai];
                if (st && g->slot_ids[si] >= lo && g->slot_ids[si] <= hi)
                    cq_agg_merge(&r->aggs[ai], merged, st);
            }
            exec_value v = cq_agg_final(&r->aggs[ai], merged);
            cq_agg_free(merged);
            has[ai] = v.type == EXEC_INT || v.type == EXEC_FLOAT;
            vals[ai] = v.type == EXEC_INT ? (double)v.v.i : v.type == EXEC_FLOAT ? v.v.f : 0;
        }
        g->has_value = has[r->value_agg];
        g->value = vals[r->value_agg];
        g->last_eval_ns = now;
        g->dirty = false;
        g->fresh_samples = 0;
        bool cond = alert_when_eval(r, vals, has) == 1;
        size_t before = out->count;
        instance_step(m, r, g, cond, now, out);
        m->transitions += out->count - before;
    }
    rule_gc(r, lo, hi);
    r->dirty = false;
    r->last_eval_ns = now;
    r->next_eval_ns = (floor_div(now, r->every_ns) + 1) * r->every_ns;
    m->evaluations++;
}

static void history_append(alert_mgr *m, const action *a)
{
    char dir[4096], path[4200];
    alerts_dir(m, a->tenant, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/history.log", dir);
    qr_buf line;
    qr_buf_init(&line);
    char t[40];
    qr_time_format(a->ts_ns, t, sizeof t, true);
    qr_jsonw_raw(&line, "{\"ts\":");
    qr_jsonw_cstr(&line, t);
    qr_jsonw_raw(&line, ",\"alert\":");
    qr_jsonw_cstr(&line, a->rule);
    qr_jsonw_raw(&line, ",\"group\":");
    qr_jsonw_cstr(&line, a->group);
    qr_jsonw_raw(&line, ",\"key\":");
    qr_jsonw_cstr(&line, a->key);
    qr_jsonw_raw(&line, ",\"from_state\":");
    qr_jsonw_cstr(&line, alert_state_name(a->from));
    qr_jsonw_raw(&line, ",\"to_state\":");
    qr_jsonw_cstr(&line, alert_state_name(a->to));
    qr_jsonw_raw(&line, ",\"value\":");
    if (a->has_value)
        qr_jsonw_double(&line, a->value);
    else
        qr_jsonw_raw(&line, "null");
    qr_jsonw_raw(&line, a->notified ? ",\"notified\":true" : ",\"notified\":false");
    qr_jsonw_raw(&line, ",\"error\":");
    qr_jsonw_cstr(&line, a->error);
    qr_jsonw_raw(&line, "}\n");
    if (qr_buf_ok(&line)) {
        qr_diag d;
        qr_diag_init(&d);
        qr_fs_mkdirs(dir, &d);
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ssize_t w = write(fd, line.data, line.len);
            (void)w;
            fdatasync(fd);
            close(fd);
        }
    }
    qr_buf_fini(&line);
}

static void set_group_error(alert_mgr *m, const char *tenant, const char *rule, const char *group,
                            const char *error, bool delivered, int64_t now)
{
    pthread_mutex_lock(&m->mu);
    for (alert_rule *r = m->rules; r; r = r->next) {
        if (strcmp(r->tenant, tenant) || strcmp(r->name, rule)) continue;
        for (uint32_t gi = 0; gi < r->group_cap; gi++) {
            alert_group *g = r->groups[gi];
            if (!g || strcmp(g->display, group) != 0) continue;
            if (delivered) {
                g->last_notify_ns = now;
                g->last_error[0] = 0;
            } else {
                snprintf(g->last_error, sizeof g->last_error, "%s", error ? error : "failed");
            }
        }
    }
    pthread_mutex_unlock(&m->mu);
}

/* ref: tenant \x1f rule \x1f group display */
static void on_notify_result(void *ctx, const notify_result *res)
{
    alert_mgr *m = ctx;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", res->ref);
    char *rule = strchr(buf, KEY_SEP);
    char *group = rule ? strchr(rule + 1, KEY_SEP) : NULL;
    if (!group) return;
    *rule++ = 0;
    *group++ = 0;
    char err[300];
    if (!res->delivered)
        snprintf(err, sizeof err, "notification failed after %u attempts: %s", res->attempts,
                 res->error ? res->error : "?");
    set_group_error(m, buf, rule, group, res->delivered ? NULL : err, res->delivered, mgr_now(m));
}

/* Sends the notifications (outbox first), then appends the history records. Caller holds
 * ddl_mu, not mu. */
static void actions_perform(alert_mgr *m, action_list *l)
{
    for (size_t idx = 0; idx < l->count; idx++) {
        action *a = &l->items[idx];
        char dir[4096], outbox[4200];
        alerts_dir(m, a->tenant, dir, sizeof dir);
        snprintf(outbox, sizeof outbox, "%s/outbox", dir);
        qr_buf ref;
        qr_buf_init(&ref);
        qr_buf_append(&ref, a->tenant, strlen(a->tenant));
        qr_buf_u8(&ref, KEY_SEP);
        qr_buf_append(&ref, a->rule, strlen(a->rule));
        qr_buf_u8(&ref, KEY_SEP);
        qr_buf_append(&ref, a->group, strlen(a->group));
        qr_buf_u8(&ref, 0);
        for (uint32_t ni = 0; ni < a->notify_count && qr_buf_ok(&ref); ni++) {
            qr_diag d;
            qr_diag_init(&d);
            int rc = notify_send(m->notifier, outbox, (const char *)ref.data, a->notifies[ni].url,
                                 a->notifies[ni].body, a->notifies[ni].body_len, &d);
            if (rc) {
                snprintf(a->error, sizeof a->error, "%.63s", d.msg);
                set_group_error(m, a->tenant, a->rule, a->group, d.msg, false, a->ts_ns);
            }
        }
        qr_buf_fini(&ref);
        history_append(m, a);
    }
}

void alert_mgr_tick(alert_mgr *m, int64_t now, bool force)
{
    action_list l = {0};
    pthread_mutex_lock(&m->ddl_mu);
    pthread_mutex_lock(&m->mu);
    for (alert_rule *r = m->rules; r; r = r->next) {
        int64_t prompt = r->every_ns < ALERT_PROMPT_MIN_NS ? r->every_ns : ALERT_PROMPT_MIN_NS;
        bool due = force || now >= r->next_eval_ns || (r->dirty && now - r->last_eval_ns >= prompt);
        if (due) rule_eval(m, r, now, &l);
    }
    pthread_mutex_unlock(&m->mu);
    actions_perform(m, &l);
    pthread_mutex_unlock(&m->ddl_mu);
    action_list_free(&l);
}

static void *evaluator_main(void *arg)
{
    alert_mgr *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        int64_t now = mgr_now(m);
        int64_t next = now + QR_NS_PER_SEC;
        bool due = false;
        for (alert_rule *r = m->rules; r; r = r->next) {
            int64_t prompt = r->every_ns < ALERT_PROMPT_MIN_NS ? r->every_ns : ALERT_PROMPT_MIN_NS;
            int64_t at = r->next_eval_ns;
            if (r->dirty && r->last_eval_ns + prompt < at) at = r->last_eval_ns + prompt;
            if (at <= now) due = true;
            if (at < next) next = at;
        }
        if (due) {
            pthread_mutex_unlock(&m->mu);
            alert_mgr_tick(m, now, false);
            pthread_mutex_lock(&m->mu);
            continue;
        }
        m->wake = false;
        int64_t wait_ns = next - now;
        if (wait_ns < QR_NS_PER_MS) wait_ns = QR_NS_PER_MS;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t abs_ns = (int64_t)until.tv_sec * QR_NS_PER_SEC + until.tv_nsec + wait_ns;
        until.tv_sec = abs_ns / QR_NS_PER_SEC;
        until.tv_nsec = abs_ns % QR_NS_PER_SEC;
        while (!m->stop && !m->wake)
            if (pthread_cond_timedwait(&m->cv, &m->mu, &until) != 0) break;
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* ---- window rebuild from stored events ----------------------------------------------------- */

typedef struct rebuild_ctx {
    alert_mgr *m;
    alert_rule **rules;
    size_t count;
} rebuild_ctx;

/* Runs under the tenant's lock (db_snapshot_open_sync): from here on the rules see every
 * batch the snapshot does not hold. */
static void rebuild_register(void *ctx)
{
    rebuild_ctx *rc = ctx;
    alert_mgr *m = rc->m;
    pthread_mutex_lock(&m->mu);
    for (size_t idx = 0; idx < rc->count; idx++) {
        alert_rule *r = rc->rules[idx];
        alert_rule **tail = &m->rules;
        while (*tail) tail = &(*tail)->next;
        r->next = NULL;
        *tail = r;
        m->rule_count++;
    }
    pthread_mutex_unlock(&m->mu);
}

static int feed_block(alert_mgr *m, rebuild_ctx *rc, qr_part *p, uint32_t block_idx, int64_t min_ts,
                      qr_arena *arena, qr_batch *b, qr_diag *d)
{
    qr_column ts, lv, svc, host, msg;
    int rc2 = qr_part_load_column(p, block_idx, QR_COL_TS, 0, arena, &ts, d);
    if (!rc2) rc2 = qr_part_load_column(p, block_idx, QR_COL_LEVEL, 0, arena, &lv, d);
    if (!rc2) rc2 = qr_part_load_column(p, block_idx, QR_COL_SERVICE, 0, arena, &svc, d);
    if (!rc2) rc2 = qr_part_load_column(p, block_idx, QR_COL_HOST, 0, arena, &host, d);
    if (!rc2) rc2 = qr_part_load_column(p, block_idx, QR_COL_MSG, 0, arena, &msg, d);
    if (rc2) return rc2;
    qr_column *fcols =
        p->field_count ? qr_arena_calloc(arena, p->field_count, sizeof *fcols) : NULL;
    if (p->field_count && !fcols) return QR_ENOMEM;
    for (uint32_t fi = 0; fi < p->field_count; fi++) {
        rc2 = qr_part_load_column(p, block_idx, QR_COL_FIELD, fi, arena, &fcols[fi], d);
        if (rc2) return rc2;
    }
    uint32_t rows = ts.row_count;
    qr_batch_reset(b);
    for (uint32_t row = 0; row < rows; row++) {
        if (ts.i64[row] < min_ts) continue;
        qr_event *e = qr_batch_push(b);
        if (!e) return QR_ENOMEM;
        e->ts_ns = ts.i64[row];
        e->level = lv.u8 ? lv.u8[row] : 0;
        if (svc.ids && svc.ids[row] < svc.dict_count) e->service = svc.dict[svc.ids[row]];
        if (host.ids && host.ids[row] < host.dict_count) e->host = host.dict[host.ids[row]];
        if (msg.strs) e->msg = msg.strs[row];
        for (uint32_t fi = 0; fi < p->field_count; fi++) {
            const qr_column *c = &fcols[fi];
            if (row >= c->row_count || !qr_column_has(c, row)) continue;
            qr_field f = {.key = p->fields[fi].key, .type = p->fields[fi].type};
            switch (f.type) {
            case QR_FT_STRING:
                if (c->ids && c->ids[row] < c->dict_count)
                    f.v.s = c->dict[c->ids[row]];
                else if (c->strs)
                    f.v.s = c->strs[row];
                else
                    continue;
                break;
            case QR_FT_INT:
                if (!c->i64) continue;
                f.v.i = c->i64[row];
                break;
            case QR_FT_FLOAT:
                if (!c->f64) continue;
                f.v.f = c->f64[row];
                break;
            case QR_FT_BOOL:
                if (!c->u8) continue;
                f.v.b = c->u8[row] != 0;
                break;
            default:
                continue;
            }
            if (qr_batch_add_field(b, &f) != 0) break;
        }
    }
    if (b->count == 0) return 0;
    pthread_mutex_lock(&m->mu);
    int64_t now = mgr_now(m);
    for (size_t idx = 0; idx < rc->count; idx++) rule_feed_batch(m, rc->rules[idx], b, now);
    pthread_mutex_unlock(&m->mu);
    return 0;
}

/* Registers rules (all of one tenant) and feeds them the stored events of their windows. On
 * failure the rules are registered anyway (their windows start empty) and the error is
 * returned for the caller to report. */
static int rules_register_rebuild(alert_mgr *m, const char *tenant, alert_rule **rules,
                                  size_t count, qr_diag *d)
{
    rebuild_ctx rc = {m, rules, count};
    db_snapshot *snap = NULL;
    int err = db_snapshot_open_sync(m->db, tenant, rebuild_register, &rc, &snap);
    if (err) return qr_diag_set(d, err, "cannot open a snapshot of tenant \"%s\"", tenant);
    int64_t widest = 0;
    for (size_t idx = 0; idx < count; idx++)
        if (rules[idx]->window_ns + 2 * rules[idx]->slot_ns > widest)
            widest = rules[idx]->window_ns + 2 * rules[idx]->slot_ns;
    int64_t min_ts = mgr_now(m) - widest;
    qr_arena arena;
    qr_arena_init(&arena, 256 * 1024, 0);
    qr_batch b;
    qr_batch_init(&b);
    for (size_t pi = 0; pi < db_snapshot_part_count(snap) && !err; pi++) {
        qr_part *p = db_snapshot_part(snap, pi);
        if (p->max_ts_ns < min_ts) continue;
        for (uint32_t bi = 0; bi < p->block_count && !err; bi++) {
            qr_block_meta meta;
            err = qr_part_block_meta(p, bi, &meta);
            if (err || meta.max_ts_ns < min_ts) continue;
            err = feed_block(m, &rc, p, bi, min_ts, &arena, &b, d);
            qr_arena_reset(&arena);
        }
    }
    qr_batch_fini(&b);
    qr_arena_fini(&arena);
    db_snapshot_free(snap);
    return err;
}

/* ---- definitions and history on disk ------------------------------------------------------- */

static int def_write(alert_mgr *m, const alert_rule *r, qr_diag *d)
{
    char dir[4096], path[4200];
    alerts_dir(m, r->tenant, dir, sizeof dir);
    int rc = qr_fs_mkdirs(dir, d);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/%s.def", dir, r->name);
    qr_buf b;
    qr_buf_init(&b);
    char head[64];
    int n = snprintf(head, sizeof head, "quarry-alert 1\nmuted_until %lld\n",
                     (long long)r->muted_until_ns);
    qr_buf_append(&b, head, (size_t)n);
    qr_buf_append(&b, r->text, strlen(r->text));
    qr_buf_u8(&b, '\n');
    rc = qr_buf_ok(&b) ? qr_fs_write_atomic(path, b.data, b.len, d)
                       : qr_diag_set(d, QR_ENOMEM, "out of memory");
    qr_buf_fini(&b);
    return rc;
}

/* Restores instance states from history.log (last record per alert × group). */
static void history_restore(alert_mgr *m, const char *tenant, alert_rule **rules, size_t count)
{
    char dir[4096], path[4200];
    alerts_dir(m, tenant, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/history.log", dir);
    qr_buf raw;
    qr_buf_init(&raw);
    if (qr_fs_read_all(path, ALERT_HISTORY_MAX_BYTES, &raw, NULL) != 0) {
        qr_buf_fini(&raw);
        return;
    }
    qr_arena arena;
    qr_arena_init(&arena, 16 * 1024, 0);
    qr_json_doc doc;
    qr_json_doc_init(&doc, &arena, NULL, 0);
    const char *p = (const char *)raw.data, *end = p + raw.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (len && qr_json_parse(&doc, p, len, NULL, NULL) == 0 &&
            qr_json_root(&doc)->type == QR_JSON_OBJECT) {
            const qr_json_val *root = qr_json_root(&doc);
            qr_str alert = {0}, key = {0}, to = {0}, ts = {0};
            bool notified = false, has_value = false;
            double value = 0;
            const qr_json_val *v = root + 1;
            for (uint32_t mi = 0; mi < root->len; mi++) {
                const qr_json_val *k = v, *val = v + 1;
                v = val + val->skip;
                qr_str ks = {k->u.str, k->len};
                if (val->type == QR_JSON_STRING) {
                    qr_str vs = {val->u.str, val->len};
                    if (qr_str_eq_cstr(ks, "alert")) alert = vs;
                    if (qr_str_eq_cstr(ks, "key")) key = vs;
                    if (qr_str_eq_cstr(ks, "to_state")) to = vs;
                    if (qr_str_eq_cstr(ks, "ts")) ts = vs;
                } else if (qr_str_eq_cstr(ks, "notified")) {
                    notified = val->type == QR_JSON_TRUE;
                } else if (qr_str_eq_cstr(ks, "value") &&
                           (val->type == QR_JSON_INT || val->type == QR_JSON_FLOAT)) {
                    has_value = true;
                    value = val->type == QR_JSON_INT ? (double)val->u.i : val->u.f;
                }
            }
            uint8_t to_state;
            int64_t ts_ns = 0;
            if (alert.ptr && key.ptr && to.ptr && ts.ptr &&
                alert_state_parse(to.ptr, to.len, &to_state) &&
                qr_time_parse_rfc3339(ts.ptr, ts.len, &ts_ns) == 0) {
                for (size_t idx = 0; idx < count; idx++) {
                    alert_rule *r = rules[idx];
                    if (!qr_str_eq_cstr(alert, r->name)) continue;
                    alert_group *g = group_get(r, key.ptr, key.len);
                    if (!g) break;
                    bool same_firing = to_state == ALERT_FIRING && g->state == ALERT_FIRING;
                    g->state = to_state == ALERT_RESOLVED ? ALERT_OK : to_state;
                    if (!same_firing) g->since_ns = ts_ns;
                    g->has_value = has_value;
                    g->value = value;
                    if (to_state == ALERT_FIRING) {
                        if (!same_firing) g->fired_notified = false;
                        if (notified) {
                            g->fired_notified = true;
                            g->last_fire_notify_ns = ts_ns;
                        }
                    } else if (to_state == ALERT_RESOLVED || to_state == ALERT_OK) {
                        g->fired_notified = false;
                    }
                    if (notified) g->last_notify_ns = ts_ns;
                }
            }
        }
        p += len + 1;
    }
    qr_json_doc_fini(&doc);
    qr_arena_fini(&arena);
    qr_buf_fini(&raw);
}

static int def_load(const char *tenant, const char *path, alert_rule **out, qr_diag *d)
{
    qr_buf raw;
    qr_buf_init(&raw);
    int rc = qr_fs_read_all(path, 1u << 20, &raw, d);
    if (rc) {
        qr_buf_fini(&raw);
        return rc;
    }
    qr_buf_u8(&raw, 0);
    long long muted = 0;
    int used = 0;
    const char *text = (const char *)raw.data;
    if (!qr_buf_ok(&raw) ||
        sscanf(text, "quarry-alert 1\nmuted_until %lld\n%n", &muted, &used) < 1 || used <= 0) {
        qr_buf_fini(&raw);
        return qr_diag_set(d, QR_ECORRUPT, "%s: not an alert definition", path);
    }
    rc = alert_rule_compile(tenant, text + used, NULL, out, d);
    if (!rc) (*out)->muted_until_ns = muted;
    qr_buf_fini(&raw);
    return rc;
}

static int tenant_load(alert_mgr *m, const char *tenant, qr_diag *d)
{
    char dir[4096];
    alerts_dir(m, tenant, dir, sizeof dir);
    DIR *dh = opendir(dir);
    if (!dh) return 0;
    alert_rule **rules = NULL;
    size_t count = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(dh)) && !rc) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".def") != 0) continue;
        char path[8300];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        alert_rule *r = NULL;
        qr_diag ld;
        qr_diag_init(&ld);
        if (def_load(tenant, path, &r, &ld) != 0) {
            /* a definition that no longer compiles is skipped, not fatal: keep the others */
            fprintf(stderr, "quarry: alert %s skipped: %s\n", path, ld.msg);
            continue;
        }
        if (count == cap) {
            cap = cap ? cap * 2 : 8;
            alert_rule **grown = realloc(rules, cap * sizeof *rules);
            if (!grown) {
                alert_rule_free(r);
                rc = qr_diag_set(d, QR_ENOMEM, "out of memory");
                break;
            }
            rules = grown;
        }
        rules[count++] = r;
    }
    closedir(dh);
    if (!rc && count) {
        history_restore(m, tenant, rules, count);
        rc = rules_register_rebuild(m, tenant, rules, count, d);
    } else {
        for (size_t idx = 0; idx < count; idx++) alert_rule_free(rules[idx]);
    }
    free(rules);
    char outbox[4200];
    snprintf(outbox, sizeof outbox, "%s/outbox", dir);
    if (!rc) rc = notify_outbox_load(m->notifier, outbox, NULL, d);
    return rc;
}

/* ---- life cycle ---------------------------------------------------------------------------- */

int alert_mgr_open(db_t *db, const alert_mgr_opts *opts, alert_mgr **out, qr_diag *d)
{
    alert_mgr *m = calloc(1, sizeof *m);
    if (!m) return qr_diag_set(d, QR_ENOMEM, "out of memory");
    m->db = db;
    if (opts) m->opts = *opts;
    if (m->opts.base_url) snprintf(m->base_url, sizeof m->base_url, "%s", m->opts.base_url);
    m->opts.base_url = NULL;
    if (gethostname(m->source, sizeof m->source - 1) != 0) snprintf(m->source, 8, "quarry");
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->ddl_mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    int rc = notify_new(&m->opts.notify, on_notify_result, m, &m->notifier, d);
    if (!rc) rc = db_observer_add(db, observe, m);
    if (rc == QR_ELIMIT) qr_diag_set(d, rc, "too many ingest observers");
    if (!rc) {
        char cq[4096];
        snprintf(cq, sizeof cq, "%s/cq", db_dir(db));
        DIR *dh = opendir(cq);
        struct dirent *de;
        while (dh && !rc && (de = readdir(dh)))
            if (de->d_name[0] != '.' && db_tenant_name_ok(de->d_name))
                rc = tenant_load(m, de->d_name, d);
        if (dh) closedir(dh);
    }
    if (!rc && !m->opts.no_thread) {
        if (pthread_create(&m->thread, NULL, evaluator_main, m) != 0)
            rc = qr_diag_set(d, QR_ENOMEM, "cannot start the alert evaluator");
        else
            m->thread_started = true;
    }
    if (rc) {
        alert_mgr_close(m);
        return rc;
    }
    *out = m;
    return 0;
}

void alert_mgr_close(alert_mgr *m)
{
    if (!m) return;
    if (m->thread_started) {
        pthread_mutex_lock(&m->mu);
        m->stop = true;
        pthread_cond_broadcast(&m->cv);
        pthread_mutex_unlock(&m->mu);
        pthread_join(m->thread, NULL);
    }
    notify_free(m->notifier);
    /* the observer stays registered until db_close: leave no rule for it to visit */
    pthread_mutex_lock(&m->mu);
    alert_rule *r = m->rules;
    m->rules = NULL;
    pthread_mutex_unlock(&m->mu);
    while (r) {
        alert_rule *next = r->next;
        alert_rule_free(r);
        r = next;
    }
    cqb_batch_free(m->cqb);
    free(m->gcache);
    free(m->gcache_gen);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->ddl_mu);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* ---- statements ---------------------------------------------------------------------------- */

static alert_rule *rule_find(alert_mgr *m, const char *tenant, const char *name)
{
    for (alert_rule *r = m->rules; r; r = r->next)
        if (strcmp(r->tenant, tenant) == 0 && strcmp(r->name, name) == 0) return r;
    return NULL;
}

bool alert_mgr_has(alert_mgr *m, const char *tenant, const char *name)
{
    if (!tenant) tenant = DB_DEFAULT_TENANT;
    pthread_mutex_lock(&m->mu);
    bool has = rule_find(m, tenant, name) != NULL;
    pthread_mutex_unlock(&m->mu);
    return has;
}

bool alert_stmt_is_ours(alert_mgr *m, const char *tenant, const sql_stmt *stmt)
{
    switch (stmt->kind) {
    case SQL_STMT_CREATE_ALERT:
    case SQL_STMT_MUTE:
    case SQL_STMT_UNMUTE:
        return true;
    case SQL_STMT_DROP:
        return stmt->u.drop.object == SQL_OBJECT_ALERT;
    case SQL_STMT_SHOW:
        return stmt->u.show == SQL_SHOW_ALERTS;
    case SQL_STMT_DESCRIBE:
        return m && alert_mgr_has(m, tenant, stmt->u.describe);
    case SQL_STMT_SELECT:
        return stmt->u.select->from && strcasecmp(stmt->u.select->from, "alert_events") == 0;
    default:
        return false;
    }
}

static exec_value ev_str(const char *s)
{
    exec_value v = {.type = EXEC_STRING};
    v.v.s.ptr = s ? s : "";
    v.v.s.len = s ? (uint32_t)strlen(s) : 0;
    return v;
}

static exec_value ev_ts(int64_t ns)
{
    exec_value v = {.type = ns ? EXEC_TS : EXEC_NULL};
    v.v.i = ns;
    return v;
}

static exec_value ev_num(bool has, double x)
{
    exec_value v = {.type = has ? EXEC_FLOAT : EXEC_NULL};
    if (has && x == (double)(int64_t)x && x > -9e15 && x < 9e15) {
        v.type = EXEC_INT;
        v.v.i = (int64_t)x;
    } else {
        v.v.f = x;
    }
    return v;
}

static int message_result(exec_result *r, const char *msg)
{
    static const char *const names[] = {"result"};
    static const uint8_t types[] = {EXEC_STRING};
    int rc = alert_result_columns(r, 1, names, types);
    exec_value v = ev_str(msg);
    return rc ? rc : alert_result_row(r, &v);
}

static int show_alerts(alert_mgr *m, const char *tenant, exec_result *r)
{
    static const char *const names[] = {"name",       "group",      "state",
                                        "value",      "last_eval",  "last_notification",
                                        "last_error", "muted_until"};
    static const uint8_t types[] = {EXEC_STRING, EXEC_STRING, EXEC_STRING, EXEC_FLOAT,
                                    EXEC_TS,     EXEC_TS,     EXEC_STRING, EXEC_TS};
    int rc = alert_result_columns(r, 8, names, types);
    if (rc) return rc;
    int64_t now = mgr_now(m);
    pthread_mutex_lock(&m->mu);
    for (alert_rule *ru = m->rules; ru && !rc; ru = ru->next) {
        if (strcmp(ru->tenant, tenant) != 0) continue;
        int64_t muted = ru->muted_until_ns > now ? ru->muted_until_ns : 0;
        bool any = false;
        for (uint32_t gi = 0; gi < ru->group_cap && !rc; gi++) {
            const alert_group *g = ru->groups[gi];
            if (!g) continue;
            any = true;
            exec_value row[8] = {ev_str(ru->name),
                                 ev_str(g->display),
                                 ev_str(alert_state_name(g->state)),
                                 ev_num(g->has_value, g->value),
                                 ev_ts(g->last_eval_ns),
                                 ev_ts(g->last_notify_ns),
                                 ev_str(g->last_error),
                                 ev_ts(muted)};
            rc = alert_result_row(r, row);
        }
        if (!any && !rc) {
            exec_value row[8] = {
                ev_str(ru->name),        ev_str(""), ev_str("ok"), ev_num(false, 0),
                ev_ts(ru->last_eval_ns), ev_ts(0),   ev_str(""),   ev_ts(muted)};
            rc = alert_result_row(r, row);
        }
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int describe_alert(alert_mgr *m, const char *tenant, const char *name, exec_result *r)
{
    static const char *const names[] = {"property", "value"};
    static const uint8_t types[] = {EXEC_STRING, EXEC_STRING};
    int rc = alert_result_columns(r, 2, names, types);
    if (rc) return rc;
    pthread_mutex_lock(&m->mu);
    alert_rule *ru = rule_find(m, tenant, name);
    if (ru) {
        char w[32], e[32], f[32], c[32], muted[40] = "", inst[32];
        exec_value dv = {.type = EXEC_DURATION};
        const int64_t durs[4] = {ru->window_ns, ru->every_ns, ru->for_ns, ru->cooldown_ns};
        char *outs[4] = {w, e, f, c};
        for (int idx = 0; idx < 4; idx++) {
            qr_buf b;
            qr_buf_init(&b);
            dv.v.i = durs[idx];
            exec_value_text(&dv, &b);
            snprintf(outs[idx], 32, "%.*s", (int)b.len, b.data ? (const char *)b.data : "");
            qr_buf_fini(&b);
        }
        if (ru->muted_until_ns > mgr_now(m))
            qr_time_format(ru->muted_until_ns, muted, sizeof muted, false);
        snprintf(inst, sizeof inst, "%u", ru->group_n);
        const char *props[][2] = {{"name", ru->name},
                                  {"statement", ru->text},
                                  {"query", ru->select_text},
                                  {"condition", ru->cond_text},
                                  {"window", w},
                                  {"every", e},
                                  {"for", f},
                                  {"cooldown", c},
                                  {"muted_until", muted},
                                  {"instances", inst}};
        for (size_t idx = 0; idx < sizeof props / sizeof props[0] && !rc; idx++) {
            exec_value row[2] = {ev_str(props[idx][0]), ev_str(props[idx][1])};
            rc = alert_result_row(r, row);
        }
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* SELECT <cols> FROM alert_events [WHERE ...] [ORDER BY ts [DESC]] [LIMIT n]: the history
 * records become events (fields alert, group, from_state, to_state, value, notified, error;
 * ts), filtered by the engine's per-event filter. */
static int alert_events(alert_mgr *m, const char *tenant, const char *text, const sql_select *s,
                        exec_result *r, qr_diag *d)
{
    static const char *const all[] = {"ts",       "alert", "group",    "from_state",
                                      "to_state", "value", "notified", "error"};
    static const uint8_t all_types[] = {EXEC_TS,     EXEC_STRING, EXEC_STRING, EXEC_STRING,
                                        EXEC_STRING, EXEC_FLOAT,  EXEC_BOOL,   EXEC_STRING};
    int cols[8];
    uint32_t ncols = 0;
    for (uint32_t idx = 0; idx < s->item_count; idx++) {
        const sql_expr *e = s->items[idx].expr;
        if (e->kind == SQL_EXPR_STAR) {
            for (int c = 0; c < 8 && ncols < 8; c++) cols[ncols++] = c;
            continue;
        }
        int found = -1;
        for (int c = 0; e->kind == SQL_EXPR_FIELD && c < 8; c++)
            if (strcmp(e->u.name.s, all[c]) == 0) found = c;
        if (found < 0)
            return sql_diag_at(d, e->pos, QR_ESYNTAX,
                               "alert_events has the columns ts, alert, group, from_state, "
                               "to_state, value, notified, error");
        if (ncols < 8) cols[ncols++] = found;
    }
    if (s->group_count || s->having)
        return sql_diag_at(d, s->pos, QR_ESYNTAX,
                           "alert_events takes WHERE, ORDER BY ts and LIMIT only");
    bool desc = false;
    for (uint32_t idx = 0; idx < s->order_count; idx++) {
        const sql_expr *e = s->order_by[idx].expr;
        if (e->kind != SQL_EXPR_FIELD || strcmp(e->u.name.s, "ts") != 0)
            return sql_diag_at(d, e->pos, QR_ESYNTAX, "alert_events is ordered by ts only");
        desc = s->order_by[idx].desc;
    }
    const char *names[8];
    uint8_t types[8];
    for (uint32_t c = 0; c < ncols; c++) {
        names[c] = all[cols[c]];
        types[c] = all_types[cols[c]];
    }
    int rc = alert_result_columns(r, ncols, names, types);
    if (rc) return rc;
    evf *filter = NULL;
    rc = evf_compile_where(text, s->where, &filter, d);
    if (rc) return rc;
    char dir[4096], path[4200];
    alerts_dir(m, tenant, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/history.log", dir);
    qr_buf raw;
    qr_buf_init(&raw);
    pthread_mutex_lock(&m->ddl_mu); /* no append in the middle of the read */
    rc = qr_fs_read_all(path, ALERT_HISTORY_MAX_BYTES, &raw, d);
    pthread_mutex_unlock(&m->ddl_mu);
    if (rc == QR_ENOTFOUND) rc = 0;
    qr_arena arena;
    qr_arena_init(&arena, 16 * 1024, 0);
    qr_json_doc doc;
    qr_json_doc_init(&doc, &arena, NULL, 0);
    qr_batch b;
    qr_batch_init(&b);
    const char *p = (const char *)raw.data, *end = p + raw.len;
    while (!rc && p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *line = p;
        p += len + 1;
        if (!len || qr_json_parse(&doc, line, len, NULL, NULL) != 0) continue;
        const qr_json_val *root = qr_json_root(&doc);
        if (root->type != QR_JSON_OBJECT) continue;
        qr_batch_reset(&b);
        qr_event *e = qr_batch_push(&b);
        if (!e) {
            rc = QR_ENOMEM;
            break;
        }
        exec_value row[8];
        for (int c = 0; c < 8; c++) row[c].type = EXEC_NULL;
        const qr_json_val *v = root + 1;
        for (uint32_t mi = 0; mi < root->len; mi++) {
            const qr_json_val *k = v, *val = v + 1;
            v = val + val->skip;
            qr_str ks = {k->u.str, k->len};
            int c = -1;
            for (int ci = 0; ci < 8; ci++)
                if (qr_str_eq_cstr(ks, all[ci])) c = ci;
            if (c < 0) continue;
            qr_field f = {.key = qr_batch_str(&b, all[c], strlen(all[c]))};
            if (c == 0 && val->type == QR_JSON_STRING) {
                int64_t ts = 0;
                if (qr_time_parse_rfc3339(val->u.str, val->len, &ts) == 0) {
                    e = &b.events[0];
                    e->ts_ns = ts;
                    e->ingest_ts_ns = ts;
                    row[0] = ev_ts(ts);
                }
                continue;
            }
            if (val->type == QR_JSON_STRING) {
                f.type = QR_FT_STRING;
                f.v.s = qr_batch_str(&b, val->u.str, val->len);
                row[c] = ev_str(NULL);
                row[c].v.s = f.v.s;
            } else if (val->type == QR_JSON_INT || val->type == QR_JSON_FLOAT) {
                f.type = QR_FT_FLOAT;
                f.v.f = val->type == QR_JSON_INT ? (double)val->u.i : val->u.f;
                row[c] = ev_num(true, f.v.f);
                if (row[c].type == EXEC_INT) {
                    row[c].type = EXEC_FLOAT;
                    row[c].v.f = f.v.f;
                }
            } else if (val->type == QR_JSON_TRUE || val->type == QR_JSON_FALSE) {
                f.type = QR_FT_BOOL;
                f.v.b = val->type == QR_JSON_TRUE;
                row[c].type = EXEC_BOOL;
                row[c].v.b = f.v.b;
            } else {
                continue;
            }
            qr_batch_add_field(&b, &f);
        }
        e = &b.events[0];
        e->service = qr_str_make("quarry", 6);
        if (evf_match(filter, &b, e) != 1) continue;
        exec_value out[8];
        for (uint32_t c = 0; c < ncols; c++) out[c] = row[cols[c]];
        rc = alert_result_row(r, out);
    }
    qr_batch_fini(&b);
    qr_json_doc_fini(&doc);
    qr_arena_fini(&arena);
    qr_buf_fini(&raw);
    evf_free(filter);
    if (rc) return rc;
    if (desc) /* the history is in ts order: reverse */
        for (uint64_t lo = 0, hi = r->row_count ? r->row_count - 1 : 0; lo < hi; lo++, hi--)
            for (uint32_t c = 0; c < ncols; c++) {
                exec_value t = r->cells[lo * ncols + c];
                r->cells[lo * ncols + c] = r->cells[hi * ncols + c];
                r->cells[hi * ncols + c] = t;
            }
    if (s->offset > 0 || s->limit >= 0) {
        uint64_t off = s->offset > 0 ? (uint64_t)s->offset : 0;
        if (off > r->row_count) off = r->row_count;
        uint64_t n = r->row_count - off;
        if (s->limit >= 0 && (uint64_t)s->limit < n) n = (uint64_t)s->limit;
        r->cells += off * ncols;
        r->row_count = n;
    }
    r->hits = r->row_count;
    return 0;
}

static int create_alert(alert_mgr *m, const char *tenant, const char *text, const sql_stmt *stmt,
                        bool replace, exec_result *r, qr_diag *d)
{
    const sql_alert *al = stmt->u.alert;
    pthread_mutex_lock(&m->mu);
    bool exists = !replace && rule_find(m, tenant, al->name) != NULL;
    bool full = m->rule_count >= ALERT_MAX_RULES;
    pthread_mutex_unlock(&m->mu);
    if (exists)
        return sql_diag_at(d, al->name_pos, QR_EEXIST, "alert \"%s\" already exists", al->name);
    if (full) return sql_diag_at(d, stmt->pos, QR_ELIMIT, "too many alerts (%d)", ALERT_MAX_RULES);
    db_snapshot *snap = NULL;
    int rc = db_snapshot_open(m->db, tenant, &snap);
    if (rc) return qr_diag_set(d, rc, "cannot open a snapshot of tenant \"%s\"", tenant);
    alert_rule *rule = NULL;
    rc = alert_rule_compile(tenant, text, snap, &rule, d);
    db_snapshot_free(snap);
    if (rc) return rc;
    rc = def_write(m, rule, d);
    if (rc) {
        alert_rule_free(rule);
        return rc;
    }
    if (replace) { /* the new definition is on disk: the old rule goes */
        alert_rule *old = NULL;
        pthread_mutex_lock(&m->mu);
        for (alert_rule **pp = &m->rules; *pp; pp = &(*pp)->next)
            if (strcmp((*pp)->tenant, tenant) == 0 && strcmp((*pp)->name, al->name) == 0) {
                old = *pp;
                *pp = old->next;
                m->rule_count--;
                break;
            }
        pthread_mutex_unlock(&m->mu);
        alert_rule_free(old);
    }
    /* instances keep the states of a previous rule of that name (history); the window is
     * rebuilt from what is stored */
    char dir[4096], path[4200];
    alerts_dir(m, tenant, dir, sizeof dir);
    history_restore(m, tenant, &rule, 1); /* a re-created rule: its instances' last states */
    rc = rules_register_rebuild(m, tenant, &rule, 1, d);
    snprintf(path, sizeof path, "%s/%s.def", dir, rule->name);
    if (rc) {
        /* registered but not rebuilt: take it back out so nothing is half-created */
        pthread_mutex_lock(&m->mu);
        for (alert_rule **pp = &m->rules; *pp; pp = &(*pp)->next)
            if (*pp == rule) {
                *pp = rule->next;
                m->rule_count--;
                break;
            }
        pthread_mutex_unlock(&m->mu);
        alert_rule_free(rule);
        unlink(path);
        return rc;
    }
    char msg[128];
    snprintf(msg, sizeof msg, "%s alert %s", replace ? "replaced" : "created", al->name);
    pthread_mutex_lock(&m->mu);
    m->wake = true;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    return message_result(r, msg);
}

static int drop_alert(alert_mgr *m, const char *tenant, const sql_stmt *stmt, exec_result *r,
                      qr_diag *d)
{
    const char *name = stmt->u.drop.name;
    pthread_mutex_lock(&m->mu);
    alert_rule *found = NULL;
    for (alert_rule **pp = &m->rules; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->tenant, tenant) == 0 && strcmp((*pp)->name, name) == 0) {
            found = *pp;
            *pp = found->next;
            m->rule_count--;
            break;
        }
    pthread_mutex_unlock(&m->mu);
    if (!found) return sql_diag_at(d, stmt->name_pos, QR_ENOTFOUND, "no alert named \"%s\"", name);
    /* close the history of instances that were not ok, so a rule created later under the same
     * name does not inherit their states */
    action_list closing = {0};
    int64_t now = mgr_now(m);
    for (uint32_t gi = 0; gi < found->group_cap; gi++) {
        alert_group *g = found->groups[gi];
        if (!g || g->state == ALERT_OK) continue;
        action *a = action_add(&closing, found, g, g->state, ALERT_OK, now);
        if (a) snprintf(a->error, sizeof a->error, "alert dropped");
    }
    for (size_t idx = 0; idx < closing.count; idx++) history_append(m, &closing.items[idx]);
    action_list_free(&closing);
    char dir[4096], path[4200];
    alerts_dir(m, tenant, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/%s.def", dir, name);
    unlink(path);
    qr_fs_fsync_dir(dir, NULL);
    alert_rule_free(found);
    char msg[128];
    snprintf(msg, sizeof msg, "dropped alert %s", name);
    return message_result(r, msg);
}

static int mute_alert(alert_mgr *m, const char *tenant, const sql_stmt *stmt, exec_result *r,
                      qr_diag *d)
{
    bool mute = stmt->kind == SQL_STMT_MUTE;
    const char *name = mute ? stmt->u.mute.name : stmt->u.unmute;
    int64_t now = mgr_now(m);
    pthread_mutex_lock(&m->mu);
    alert_rule *ru = rule_find(m, tenant, name);
    int rc = 0;
    int64_t old = 0;
    if (ru) {
        old = ru->muted_until_ns;
        ru->muted_until_ns = mute ? now + stmt->u.mute.duration_ns : 0;
    }
    pthread_mutex_unlock(&m->mu);
    if (!ru) return sql_diag_at(d, stmt->name_pos, QR_ENOTFOUND, "no alert named \"%s\"", name);
    /* the rule cannot go away meanwhile: DROP takes ddl_mu too */
    rc = def_write(m, ru, d);
    if (rc) {
        pthread_mutex_lock(&m->mu);
        ru->muted_until_ns = old;
        pthread_mutex_unlock(&m->mu);
        return rc;
    }
    char msg[160], t[40];
    if (mute) {
        qr_time_format(now + stmt->u.mute.duration_ns, t, sizeof t, false);
        snprintf(msg, sizeof msg, "muted alert %s until %s", name, t);
    } else {
        snprintf(msg, sizeof msg, "unmuted alert %s", name);
        pthread_mutex_lock(&m->mu);
        ru->next_eval_ns = 0; /* notify what is firing now */
        m->wake = true;
        pthread_cond_signal(&m->cv);
        pthread_mutex_unlock(&m->mu);
    }
    return message_result(r, msg);
}

int alert_mgr_exec(alert_mgr *m, const char *tenant, const char *text, const sql_stmt *stmt,
                   exec_result *r, qr_diag *d)
{
    if (!tenant) tenant = DB_DEFAULT_TENANT;
    int rc;
    switch (stmt->kind) {
    case SQL_STMT_CREATE_ALERT:
        pthread_mutex_lock(&m->ddl_mu);
        rc = create_alert(m, tenant, text, stmt, false, r, d);
        pthread_mutex_unlock(&m->ddl_mu);
        return rc;
    case SQL_STMT_DROP:
        pthread_mutex_lock(&m->ddl_mu);
        rc = drop_alert(m, tenant, stmt, r, d);
        pthread_mutex_unlock(&m->ddl_mu);
        return rc;
    case SQL_STMT_MUTE:
    case SQL_STMT_UNMUTE:
        pthread_mutex_lock(&m->ddl_mu);
        rc = mute_alert(m, tenant, stmt, r, d);
        pthread_mutex_unlock(&m->ddl_mu);
        return rc;
    case SQL_STMT_SHOW:
        return show_alerts(m, tenant, r);
    case SQL_STMT_DESCRIBE:
        return describe_alert(m, tenant, stmt->u.describe, r);
    case SQL_STMT_SELECT:
        return alert_events(m, tenant, text, stmt->u.select, r, d);
    default:
        return sql_diag_at(d, stmt->pos, QR_EINVAL, "not an alert statement");
    }
}

/* ---- state, stats -------------------------------------------------------------------------- */

static void prom_label(qr_buf *b, const char *k, const char *v)
{
    qr_buf_u8(b, ',');
    for (const char *p = k; *p; p++)
        qr_buf_u8(b, (isalnum((unsigned char)*p) || *p == '_') ? (uint8_t)*p : '_');
    qr_buf_append(b, "=\"", 2);
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '"') qr_buf_u8(b, '\\');
        if (*p == '\n') {
            qr_buf_append(b, "\\n", 2);
            continue;
        }
        qr_buf_u8(b, (uint8_t)*p);
    }
    qr_buf_u8(b, '"');
}

int alert_mgr_state_prometheus(alert_mgr *m, qr_buf *out)
{
    qr_jsonw_raw(out, "# HELP ALERTS Alert instances that are pending or firing.\n"
                      "# TYPE ALERTS gauge\n");
    pthread_mutex_lock(&m->mu);
    for (alert_rule *r = m->rules; r; r = r->next)
        for (uint32_t gi = 0; gi < r->group_cap; gi++) {
            const alert_group *g = r->groups[gi];
            if (!g || (g->state != ALERT_PENDING && g->state != ALERT_FIRING)) continue;
            qr_jsonw_raw(out, "ALERTS{alertname=\"");
            qr_jsonw_raw(out, r->name);
            qr_jsonw_raw(out, "\"");
            prom_label(out, "alertstate", alert_state_name(g->state));
            prom_label(out, "tenant", r->tenant);
            for (uint32_t fi = 0; fi < r->group_count; fi++)
                prom_label(out, r->group_fields[fi], g->values[fi]);
            for (uint32_t li = 0; li < r->al->label_count; li++)
                prom_label(out, r->labels[li].key, r->labels[li].value);
            qr_jsonw_raw(out, "} 1\n");
        }
    pthread_mutex_unlock(&m->mu);
    return qr_buf_ok(out) ? 0 : QR_ENOMEM;
}

void alert_mgr_stats_get(alert_mgr *m, alert_mgr_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&m->mu);
    out->rules = m->rule_count;
    for (alert_rule *r = m->rules; r; r = r->next) {
        out->instances += r->group_n;
        for (uint32_t gi = 0; gi < r->group_cap; gi++) {
            const alert_group *g = r->groups[gi];
            if (g && g->state == ALERT_PENDING) out->pending++;
            if (g && g->state == ALERT_FIRING) out->firing++;
        }
    }
    out->evaluations = m->evaluations;
    out->transitions = m->transitions;
    out->events_matched = m->events_matched;
    out->events_dropped = m->events_dropped;
    pthread_mutex_unlock(&m->mu);
    notify_stats_get(m->notifier, &out->notify);
}

bool alert_mgr_wait_idle(alert_mgr *m, uint32_t timeout_ms)
{
    return notify_wait_idle(m->notifier, timeout_ms);
}

int alert_mgr_replace(alert_mgr *m, const char *tenant, const char *name, const char *text,
                      exec_result *r, qr_diag *d)
{
    if (!tenant) tenant = DB_DEFAULT_TENANT;
    qr_arena arena;
    qr_arena_init(&arena, 16 * 1024, 16u << 20);
    sql_stmt *stmt = NULL;
    int rc = sql_parse(text, strlen(text), &arena, &stmt, d);
    if (!rc && stmt->kind != SQL_STMT_CREATE_ALERT)
        rc = sql_diag_at(d, stmt->pos, QR_ESYNTAX, "expected CREATE ALERT");
    if (!rc && strcmp(stmt->u.alert->name, name) != 0)
        rc = sql_diag_at(d, stmt->u.alert->name_pos, QR_EINVAL,
                         "the statement defines \"%s\", not \"%s\"", stmt->u.alert->name, name);
    if (!rc) {
        pthread_mutex_lock(&m->ddl_mu);
        rc = create_alert(m, tenant, text, stmt, true, r, d);
        pthread_mutex_unlock(&m->ddl_mu);
    }
    qr_arena_fini(&arena);
    return rc;
}

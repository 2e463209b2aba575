/* tail — the subscriber hub and the resume ring (contract in tail.h). */
#include "server/tail.h"

#include "common/qr_arena.h"
#include "common/qr_jsonw.h"
#include "common/qr_time.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tail_event_json(const qr_batch *b, const qr_event *e, int64_t id, qr_buf *out)
{
    char ts[40];
    qr_jsonw_raw(out, "{");
    if (id >= 0) {
        qr_jsonw_raw(out, "\"id\":\"");
        qr_jsonw_int(out, id);
        qr_jsonw_raw(out, "\",");
    }
    qr_jsonw_raw(out, "\"ts\":");
    size_t n = qr_time_format(e->ts_ns, ts, sizeof ts, e->ts_ns % QR_NS_PER_MS != 0);
    qr_jsonw_str(out, ts, n);
    qr_jsonw_raw(out, ",\"service\":");
    qr_jsonw_str(out, e->service.ptr, e->service.len);
    qr_jsonw_raw(out, ",\"level\":");
    qr_jsonw_cstr(out, qr_level_name((qr_level)e->level));
    qr_jsonw_raw(out, ",\"host\":");
    qr_jsonw_str(out, e->host.ptr, e->host.len);
    qr_jsonw_raw(out, ",\"msg\":");
    qr_jsonw_str(out, e->msg.ptr, e->msg.len);
    qr_jsonw_raw(out, ",\"meta\":{");
    const qr_field *fs = qr_event_fields(b, e);
    for (uint32_t idx = 0; idx < e->field_count; idx++) {
        const qr_field *fl = &fs[idx];
        if (idx) qr_jsonw_raw(out, ",");
        qr_jsonw_str(out, fl->key.ptr, fl->key.len);
        qr_jsonw_raw(out, ":");
        switch (fl->type) {
        case QR_FT_STRING:
            qr_jsonw_str(out, fl->v.s.ptr, fl->v.s.len);
            break;
        case QR_FT_INT:
            qr_jsonw_int(out, fl->v.i);
            break;
        case QR_FT_FLOAT:
            qr_jsonw_double(out, fl->v.f);
            break;
        case QR_FT_BOOL:
            qr_jsonw_raw(out, fl->v.b ? "true" : "false");
            break;
        default:
            qr_jsonw_raw(out, "null");
        }
    }
    qr_jsonw_raw(out, "}}");
}

/* ---- hub ---- */

typedef struct tail_chunk tail_chunk;
struct tail_chunk {
    tail_chunk *next;
    uint64_t first_id;
    size_t tenant_idx;
    size_t bytes;
    qr_batch batch;
};

struct tail_sub {
    tail_hub *hub;
    tail_sub *prev, *next;
    size_t tenant_idx;
    evf *filter;
    qr_buf pending;
    uint64_t last_id; /* last id queued to pending */
    bool overflow;
    void *user;
};

struct tail_hub {
    tail_hub_opts o;
    pthread_mutex_t mu;
    tail_chunk *head, *tail;
    size_t ring_bytes, ring_events;
    uint64_t first_id, next_id;
    tail_sub *subs;
    atomic_uint_fast64_t sub_count;
    atomic_int_fast64_t record_until_ns; /* monotonic */
    atomic_bool lapsed;                  /* events were acknowledged while not recording */
    uint64_t published, delivered, dropped;
};

int tail_hub_new(const tail_hub_opts *o, tail_hub **out)
{
    tail_hub *h = calloc(1, sizeof *h);
    if (!h) return QR_ENOMEM;
    h->o = *o;
    if (!h->o.ring_bytes) h->o.ring_bytes = 64u << 20;
    if (!h->o.sub_bytes) h->o.sub_bytes = 1u << 20;
    pthread_mutex_init(&h->mu, NULL);
    h->next_id = h->first_id = (uint64_t)(qr_now_ns() / 1000);
    atomic_init(&h->sub_count, 0);
    atomic_init(&h->record_until_ns, 0);
    atomic_init(&h->lapsed, false);
    *out = h;
    return 0;
}

static void chunk_free(tail_chunk *c)
{
    qr_batch_fini(&c->batch);
    free(c);
}

static void sub_free(tail_sub *s)
{
    evf_free(s->filter);
    qr_buf_fini(&s->pending);
    free(s);
}

void tail_hub_free(tail_hub *h)
{
    if (!h) return;
    while (h->head) {
        tail_chunk *c = h->head;
        h->head = c->next;
        chunk_free(c);
    }
    while (h->subs) {
        tail_sub *s = h->subs;
        h->subs = s->next;
        sub_free(s);
    }
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static bool hub_recording(tail_hub *h)
{
    if (atomic_load(&h->sub_count) > 0) return true;
    return qr_monotonic_ns() < atomic_load(&h->record_until_ns);
}

static void sse_notice(qr_buf *out, const char *kind, const char *message, uint64_t last_id)
{
    qr_jsonw_raw(out, "event: notice\ndata: {\"notice\":");
    qr_jsonw_cstr(out, kind);
    qr_jsonw_raw(out, ",\"message\":");
    qr_jsonw_cstr(out, message);
    if (last_id) {
        qr_jsonw_raw(out, ",\"last_id\":\"");
        qr_jsonw_uint(out, last_id);
        qr_jsonw_raw(out, "\"");
    }
    qr_jsonw_raw(out, "}\n\n");
}

/* Queues the chunk's matching events to s (mutex held). Returns true when something queued. */
static bool sub_feed(tail_hub *h, tail_sub *s, const tail_chunk *c, uint64_t after_id)
{
    if (s->overflow || s->tenant_idx != c->tenant_idx) return false;
    bool any = false;
    for (size_t idx = 0; idx < c->batch.count; idx++) {
        uint64_t id = c->first_id + idx;
        if (id <= after_id) continue;
        const qr_event *e = &c->batch.events[idx];
        if (!evf_match(s->filter, &c->batch, e)) continue;
        size_t before = s->pending.len;
        qr_jsonw_raw(&s->pending, "id: ");
        qr_jsonw_uint(&s->pending, id);
        qr_jsonw_raw(&s->pending, "\ndata: ");
        tail_event_json(&c->batch, e, (int64_t)id, &s->pending);
        qr_jsonw_raw(&s->pending, "\n\n");
        if (!qr_buf_ok(&s->pending) || s->pending.len > h->o.sub_bytes) {
            s->pending.len = before; /* keep whole events only */
            if (!qr_buf_ok(&s->pending)) {
                qr_buf_fini(&s->pending);
                qr_buf_init(&s->pending);
            }
            s->overflow = true;
            return true;
        }
        s->last_id = id;
        h->delivered++;
        any = true;
    }
    return any;
}

int tail_hub_ingest(tail_hub *h, db_t *db, size_t tenant_idx, const char *tenant, qr_batch *b,
                    qr_diag *d)
{
    if (!h || !hub_recording(h)) {
        int rc = db_ingest_take(db, tenant, b, d);
        if (!rc && h && b) atomic_store(&h->lapsed, true);
        return rc;
    }
    int rc = db_ingest(db, tenant, b, d);
    if (rc) return rc;
    if (b->count == 0) return 0;
    tail_chunk *c = malloc(sizeof *c);
    if (!c) { /* durable, but not published: the next subscriber's resume sees a gap */
        atomic_store(&h->lapsed, true);
        qr_batch_reset(b);
        return 0;
    }
    c->next = NULL;
    c->tenant_idx = tenant_idx;
    c->batch = *b; /* take the events; the caller gets a fresh batch */
    c->bytes = b->bytes + sizeof *c;
    qr_batch_init(b);
    bool wake = false;
    pthread_mutex_lock(&h->mu);
    if (atomic_exchange(&h->lapsed, false)) { /* some events were never held: a hole */
        while (h->head) {
            tail_chunk *old = h->head;
            h->head = old->next;
            chunk_free(old);
        }
        h->tail = NULL;
        h->ring_bytes = h->ring_events = 0;
        h->next_id++;
        h->first_id = h->next_id;
    }
    c->first_id = h->next_id;
    h->next_id += c->batch.count;
    h->published += c->batch.count;
    if (h->tail)
        h->tail->next = c;
    else
        h->head = c;
    h->tail = c;
    h->ring_bytes += c->bytes;
    h->ring_events += c->batch.count;
    for (tail_sub *s = h->subs; s; s = s->next)
        if (sub_feed(h, s, c, 0)) wake = true;
    while (h->ring_bytes > h->o.ring_bytes && h->head && h->head != h->tail) {
        tail_chunk *old = h->head;
        h->head = old->next;
        h->ring_bytes -= old->bytes;
        h->ring_events -= old->batch.count;
        h->first_id = h->head->first_id;
        chunk_free(old);
    }
    if (!h->head) h->first_id = h->next_id;
    pthread_mutex_unlock(&h->mu);
    if (wake && h->o.wake) h->o.wake(h->o.wake_ctx);
    return 0;
}

tail_sub *tail_hub_subscribe(tail_hub *h, size_t tenant_idx, evf *f, bool has_last,
                             uint64_t last_id, void *user)
{
    tail_sub *s = calloc(1, sizeof *s);
    if (!s) {
        evf_free(f);
        return NULL;
    }
    s->hub = h;
    s->tenant_idx = tenant_idx;
    s->filter = f;
    s->user = user;
    qr_buf_init(&s->pending);
    pthread_mutex_lock(&h->mu);
    if (has_last) {
        bool lapsed = atomic_load(&h->lapsed);
        if (lapsed || last_id + 1 < h->first_id || last_id >= h->next_id) {
            char msg[200];
            snprintf(msg, sizeof msg,
                     "events after id %llu are no longer held; following from id %llu",
                     (unsigned long long)last_id, (unsigned long long)h->first_id);
            sse_notice(&s->pending, "gap", msg, 0);
        }
        if (!lapsed)
            for (tail_chunk *c = h->head; c; c = c->next) {
                if (c->first_id + c->batch.count <= last_id + 1) continue;
                sub_feed(h, s, c, last_id);
            }
    }
    s->next = h->subs;
    if (h->subs) h->subs->prev = s;
    h->subs = s;
    atomic_fetch_add(&h->sub_count, 1);
    pthread_mutex_unlock(&h->mu);
    return s;
}

bool tail_sub_take(tail_sub *s, qr_buf *out, uint64_t *last_id)
{
    tail_hub *h = s->hub;
    pthread_mutex_lock(&h->mu);
    if (s->pending.len) {
        qr_buf_append(out, s->pending.data, s->pending.len);
        s->pending.len = 0;
    }
    bool ov = s->overflow;
    if (last_id) *last_id = s->last_id;
    pthread_mutex_unlock(&h->mu);
    return ov;
}

void *tail_sub_user(const tail_sub *s) { return s->user; }

void tail_hub_unsubscribe(tail_sub *s, bool dropped)
{
    if (!s) return;
    tail_hub *h = s->hub;
    pthread_mutex_lock(&h->mu);
    if (s->prev)
        s->prev->next = s->next;
    else
        h->subs = s->next;
    if (s->next) s->next->prev = s->prev;
    if (dropped) h->dropped++;
    if (atomic_fetch_sub(&h->sub_count, 1) == 1)
        atomic_store(&h->record_until_ns, qr_monotonic_ns() + h->o.resume_window_ns);
    pthread_mutex_unlock(&h->mu);
    sub_free(s);
}

void tail_hub_get_stats(tail_hub *h, tail_hub_stats *st)
{
    pthread_mutex_lock(&h->mu);
    st->subscribers = atomic_load(&h->sub_count);
    st->events_published = h->published;
    st->events_delivered = h->delivered;
    st->subscribers_dropped = h->dropped;
    st->ring_events = h->ring_events;
    st->ring_bytes = h->ring_bytes;
    st->first_id = h->first_id;
    st->next_id = h->next_id;
    pthread_mutex_unlock(&h->mu);
}

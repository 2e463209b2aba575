/* notify — payload builders and the libcurl sender thread (notify.h).
 *
 * The sender keeps every message in one list; each is either waiting (due_mono_ns says when
 * it may start: now for a new message, later for a retry) or in flight (an easy handle in the
 * multi handle). The thread loop: start due messages (at most NOTIFY_MAX_IN_FLIGHT), let
 * curl_multi_perform move the transfers, finish the completed ones (delivered, retry later or
 * give up), then curl_multi_poll until a socket is ready, the next retry is due or
 * notify_send wakes it (curl_multi_wakeup). */
#include "engine/notify.h"

#include "common/qr_fs.h"
#include "common/qr_hash.h"
#include "common/qr_jsonw.h"
#include "common/qr_time.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- payloads ------------------------------------------------------------------------------ */

static void json_kv_object(qr_buf *b, uint32_t count, const notify_kv *kv)
{
    qr_buf_u8(b, '{');
    for (uint32_t idx = 0; idx < count; idx++) {
        if (idx) qr_buf_u8(b, ',');
        qr_jsonw_cstr(b, kv[idx].key);
        qr_buf_u8(b, ':');
        qr_jsonw_cstr(b, kv[idx].value ? kv[idx].value : "");
    }
    qr_buf_u8(b, '}');
}

static void json_time(qr_buf *b, int64_t ts_ns)
{
    char t[40];
    qr_time_format(ts_ns, t, sizeof t, false);
    qr_jsonw_cstr(b, t);
}

static void duration_text(int64_t ns, char *buf, size_t cap)
{
    static const struct {
        int64_t ns;
        const char *unit;
    } units[] = {{86400 * QR_NS_PER_SEC, "d"},
                 {3600 * QR_NS_PER_SEC, "h"},
                 {60 * QR_NS_PER_SEC, "m"},
                 {QR_NS_PER_SEC, "s"},
                 {QR_NS_PER_MS, "ms"}};
    for (size_t idx = 0; idx < sizeof units / sizeof units[0]; idx++)
        if (ns >= units[idx].ns && ns % units[idx].ns == 0) {
            snprintf(buf, cap, "%lld%s", (long long)(ns / units[idx].ns), units[idx].unit);
            return;
        }
    snprintf(buf, cap, "%lldns", (long long)ns);
}

static void value_text(const notify_alert *a, char *buf, size_t cap)
{
    if (!a->has_value)
        snprintf(buf, cap, "null");
    else
        snprintf(buf, cap, "%.15g", a->value);
}

static const char *kv_find(uint32_t count, const notify_kv *kv, const char *key)
{
    for (uint32_t idx = 0; idx < count; idx++)
        if (strcmp(kv[idx].key, key) == 0) return kv[idx].value;
    return NULL;
}

void notify_dedup_key(const notify_alert *a, qr_buf *out)
{
    qr_buf_append(out, a->rule, strlen(a->rule));
    for (uint32_t idx = 0; idx < a->group_count; idx++) {
        qr_buf_u8(out, idx ? ',' : '/');
        qr_buf_append(out, a->group[idx].key, strlen(a->group[idx].key));
        qr_buf_u8(out, '=');
        qr_buf_append(out, a->group[idx].value, strlen(a->group[idx].value));
    }
}

void notify_query_link(const char *base_url, const char *sql, qr_buf *out)
{
    if (!base_url || !*base_url) return;
    size_t blen = strlen(base_url);
    while (blen && base_url[blen - 1] == '/') blen--;
    qr_buf_append(out, base_url, blen);
    qr_buf_append(out, "/v1/query?q=", 12);
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)sql; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            qr_buf_u8(out, *p);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            qr_buf_append(out, esc, 3);
        }
    }
}

bool notify_url_ok(const char *url)
{
    if (!url) return false;
    const char *rest;
    if (strncmp(url, "http://", 7) == 0)
        rest = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        rest = url + 8;
    else
        return false;
    if (!*rest || *rest == '/' || *rest == ':') return false;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= ' ' || *p >= 0x7f) return false;
    return strlen(url) <= 2048;
}

static void summary_text(const notify_alert *a, qr_buf *out)
{
    const char *summary = kv_find(a->annotation_count, a->annotations, "summary");
    char v[64];
    value_text(a, v, sizeof v);
    qr_buf_append(out, "[", 1);
    qr_buf_append(out, a->state, strlen(a->state));
    qr_buf_append(out, "] ", 2);
    notify_dedup_key(a, out);
    qr_buf_append(out, ": ", 2);
    if (summary) {
        qr_buf_append(out, summary, strlen(summary));
        qr_buf_append(out, " (", 2);
    }
    qr_buf_append(out, a->condition, strlen(a->condition));
    qr_buf_append(out, ", value ", 8);
    qr_buf_append(out, v, strlen(v));
    if (summary) qr_buf_u8(out, ')');
}

static void json_value(qr_buf *b, const notify_alert *a)
{
    if (a->has_value)
        qr_jsonw_double(b, a->value);
    else
        qr_jsonw_raw(b, "null");
}

int notify_payload_webhook(const notify_alert *a, qr_buf *b)
{
    char w[32];
    duration_text(a->window_ns, w, sizeof w);
    qr_jsonw_raw(b, "{\"rule\":");
    qr_jsonw_cstr(b, a->rule);
    qr_jsonw_raw(b, ",\"state\":");
    qr_jsonw_cstr(b, a->state);
    qr_jsonw_raw(b, ",\"group\":");
    json_kv_object(b, a->group_count, a->group);
    qr_jsonw_raw(b, ",\"labels\":");
    json_kv_object(b, a->label_count, a->labels);
    qr_jsonw_raw(b, ",\"annotations\":");
    json_kv_object(b, a->annotation_count, a->annotations);
    qr_jsonw_raw(b, ",\"value\":");
    json_value(b, a);
    qr_jsonw_raw(b, ",\"condition\":");
    qr_jsonw_cstr(b, a->condition);
    qr_jsonw_raw(b, ",\"window\":");
    qr_jsonw_cstr(b, w);
    qr_jsonw_raw(b, ",\"ts\":");
    json_time(b, a->eval_ts_ns);
    qr_jsonw_raw(b, ",\"starts_at\":");
    json_time(b, a->starts_at_ns);
    qr_jsonw_raw(b, ",\"ends_at\":");
    if (a->ends_at_ns)
        json_time(b, a->ends_at_ns);
    else
        qr_jsonw_raw(b, "null");
    qr_jsonw_raw(b, ",\"samples\":[");
    for (uint32_t idx = 0; idx < a->sample_count; idx++) {
        if (idx) qr_buf_u8(b, ',');
        qr_jsonw_raw(b, a->samples[idx]);
    }
    qr_jsonw_raw(b, "],\"query\":");
    qr_jsonw_cstr(b, a->query_sql ? a->query_sql : "");
    qr_jsonw_raw(b, ",\"query_url\":");
    if (a->base_url && *a->base_url) {
        qr_buf link;
        qr_buf_init(&link);
        notify_query_link(a->base_url, a->query_sql ? a->query_sql : "", &link);
        qr_jsonw_str(b, (const char *)link.data, link.len);
        if (!qr_buf_ok(&link)) b->oom = true;
        qr_buf_fini(&link);
    } else {
        qr_jsonw_raw(b, "null");
    }
    qr_buf_u8(b, '}');
    return qr_buf_ok(b) ? 0 : QR_ENOMEM;
}

int notify_payload_slack(const notify_alert *a, qr_buf *b)
{
    qr_buf text;
    qr_buf_init(&text);
    summary_text(a, &text);
    char v[64], w[32];
    value_text(a, v, sizeof v);
    duration_text(a->window_ns, w, sizeof w);
    qr_jsonw_raw(b, "{\"text\":");
    qr_jsonw_str(b, (const char *)text.data, text.len);
    qr_jsonw_raw(b, ",\"blocks\":[{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":");
    qr_jsonw_str(b, (const char *)text.data, text.len);
    qr_jsonw_raw(b, "}},{\"type\":\"section\",\"fields\":[");
    const char *names[4] = {"*State*", "*Value*", "*Condition*", "*Window*"};
    const char *vals[4] = {a->state, v, a->condition, w};
    for (int idx = 0; idx < 4; idx++) {
        qr_buf f;
        qr_buf_init(&f);
        qr_buf_append(&f, names[idx], strlen(names[idx]));
        qr_buf_u8(&f, '\n');
        qr_buf_append(&f, vals[idx], strlen(vals[idx]));
        if (idx) qr_buf_u8(b, ',');
        qr_jsonw_raw(b, "{\"type\":\"mrkdwn\",\"text\":");
        qr_jsonw_str(b, (const char *)f.data, f.len);
        qr_buf_u8(b, '}');
        if (!qr_buf_ok(&f)) b->oom = true;
        qr_buf_fini(&f);
    }
    qr_jsonw_raw(b, "]}");
    qr_buf link;
    qr_buf_init(&link);
    notify_query_link(a->base_url, a->query_sql ? a->query_sql : "", &link);
    qr_jsonw_raw(b, ",{\"type\":\"context\",\"elements\":[{\"type\":\"mrkdwn\",\"text\":");
    if (link.len) {
        qr_buf ctx;
        qr_buf_init(&ctx);
        qr_buf_u8(&ctx, '<');
        qr_buf_append(&ctx, link.data, link.len);
        qr_buf_append(&ctx, "|query>", 7);
        qr_jsonw_str(b, (const char *)ctx.data, ctx.len);
        qr_buf_fini(&ctx);
    } else {
        qr_jsonw_cstr(b, a->query_sql ? a->query_sql : "");
    }
    qr_jsonw_raw(b, "}]}]}");
    if (!qr_buf_ok(&text) || !qr_buf_ok(&link)) b->oom = true;
    qr_buf_fini(&link);
    qr_buf_fini(&text);
    return qr_buf_ok(b) ? 0 : QR_ENOMEM;
}

int notify_payload_pagerduty(const notify_alert *a, const char *routing_key, qr_buf *b)
{
    bool resolve = strcmp(a->state, "resolved") == 0;
    const char *severity = kv_find(a->label_count, a->labels, "severity");
    if (!severity || (strcmp(severity, "critical") && strcmp(severity, "error") &&
                      strcmp(severity, "warning") && strcmp(severity, "info")))
        severity = "error";
    qr_buf tmp;
    qr_buf_init(&tmp);
    qr_jsonw_raw(b, "{\"routing_key\":");
    qr_jsonw_cstr(b, routing_key);
    qr_jsonw_raw(b, ",\"event_action\":");
    qr_jsonw_cstr(b, resolve ? "resolve" : "trigger");
    qr_jsonw_raw(b, ",\"dedup_key\":");
    notify_dedup_key(a, &tmp);
    qr_jsonw_str(b, (const char *)tmp.data, tmp.len);
    qr_buf_clear(&tmp);
    qr_jsonw_raw(b, ",\"payload\":{\"summary\":");
    summary_text(a, &tmp);
    qr_jsonw_str(b, (const char *)tmp.data, tmp.len > 1024 ? 1024 : tmp.len);
    qr_jsonw_raw(b, ",\"source\":");
    qr_jsonw_cstr(b, a->source && *a->source ? a->source : "quarry");
    qr_jsonw_raw(b, ",\"severity\":");
    qr_jsonw_cstr(b, severity);
    qr_jsonw_raw(b, ",\"timestamp\":");
    json_time(b, a->eval_ts_ns);
    qr_jsonw_raw(b, ",\"component\":\"quarry\",\"group\":");
    qr_jsonw_cstr(b, a->rule);
    qr_jsonw_raw(b, ",\"class\":\"alert\",\"custom_details\":{\"value\":");
    json_value(b, a);
    qr_jsonw_raw(b, ",\"condition\":");
    qr_jsonw_cstr(b, a->condition);
    qr_jsonw_raw(b, ",\"group\":");
    json_kv_object(b, a->group_count, a->group);
    qr_jsonw_raw(b, ",\"labels\":");
    json_kv_object(b, a->label_count, a->labels);
    qr_jsonw_raw(b, ",\"annotations\":");
    json_kv_object(b, a->annotation_count, a->annotations);
    qr_jsonw_raw(b, ",\"query\":");
    qr_jsonw_cstr(b, a->query_sql ? a->query_sql : "");
    qr_jsonw_raw(b, "}}");
    qr_buf_clear(&tmp);
    notify_query_link(a->base_url, a->query_sql ? a->query_sql : "", &tmp);
    if (tmp.len) {
        qr_jsonw_raw(b, ",\"links\":[{\"href\":");
        qr_jsonw_str(b, (const char *)tmp.data, tmp.len);
        qr_jsonw_raw(b, ",\"text\":\"query\"}]");
    }
    qr_buf_u8(b, '}');
    if (!qr_buf_ok(&tmp)) b->oom = true;
    qr_buf_fini(&tmp);
    return qr_buf_ok(b) ? 0 : QR_ENOMEM;
}

int notify_payload_alertmanager(const notify_alert *a, qr_buf *b)
{
    qr_jsonw_raw(b, "[{\"labels\":{\"alertname\":");
    qr_jsonw_cstr(b, a->rule);
    for (uint32_t idx = 0; idx < a->group_count; idx++) {
        qr_buf_u8(b, ',');
        qr_jsonw_cstr(b, a->group[idx].key);
        qr_buf_u8(b, ':');
        qr_jsonw_cstr(b, a->group[idx].value);
    }
    for (uint32_t idx = 0; idx < a->label_count; idx++) {
        if (strcmp(a->labels[idx].key, "alertname") == 0 ||
            kv_find(a->group_count, a->group, a->labels[idx].key))
            continue;
        qr_buf_u8(b, ',');
        qr_jsonw_cstr(b, a->labels[idx].key);
        qr_buf_u8(b, ':');
        qr_jsonw_cstr(b, a->labels[idx].value);
    }
    char v[64];
    value_text(a, v, sizeof v);
    qr_jsonw_raw(b, "},\"annotations\":{\"value\":");
    qr_jsonw_cstr(b, v);
    qr_jsonw_raw(b, ",\"condition\":");
    qr_jsonw_cstr(b, a->condition);
    for (uint32_t idx = 0; idx < a->annotation_count; idx++) {
        if (!strcmp(a->annotations[idx].key, "value") ||
            !strcmp(a->annotations[idx].key, "condition"))
            continue;
        qr_buf_u8(b, ',');
        qr_jsonw_cstr(b, a->annotations[idx].key);
        qr_buf_u8(b, ':');
        qr_jsonw_cstr(b, a->annotations[idx].value);
    }
    qr_jsonw_raw(b, "},\"startsAt\":");
    json_time(b, a->starts_at_ns ? a->starts_at_ns : a->eval_ts_ns);
    if (a->ends_at_ns) {
        qr_jsonw_raw(b, ",\"endsAt\":");
        json_time(b, a->ends_at_ns);
    }
    qr_jsonw_raw(b, ",\"generatorURL\":");
    qr_buf link;
    qr_buf_init(&link);
    notify_query_link(a->base_url, a->query_sql ? a->query_sql : "", &link);
    qr_jsonw_str(b, link.data ? (const char *)link.data : "", link.len);
    if (!qr_buf_ok(&link)) b->oom = true;
    qr_buf_fini(&link);
    qr_jsonw_raw(b, "}]");
    return qr_buf_ok(b) ? 0 : QR_ENOMEM;
}

/* ---- sender -------------------------------------------------------------------------------- */

typedef struct nmsg nmsg;
struct nmsg {
    nmsg *next;
    char *ref;
    char *url;
    char *body;
    size_t body_len;
    char *outbox_path; /* NULL when not persisted */
    int64_t due_mono_ns;
    uint32_t attempts;
    long last_status;
    char error[CURL_ERROR_SIZE];
    CURL *easy; /* non-NULL while in flight */
    struct curl_slist *headers;
};

struct notify {
    notify_opts opts;
    notify_result_fn on_result;
    void *ctx;
    CURLM *multi;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t idle_cv;
    nmsg *head; /* every message: waiting and in flight */
    uint64_t count;
    uint64_t in_flight;
    bool stop;
    uint64_t seq;
    uint64_t rng;
    notify_stats st;
};

static void nmsg_free(nmsg *m)
{
    if (!m) return;
    free(m->ref);
    free(m->url);
    free(m->body);
    free(m->outbox_path);
    free(m);
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

static int64_t backoff_ns(notify *n, uint32_t attempts)
{
    uint64_t ms = n->opts.backoff_base_ms;
    for (uint32_t idx = 1; idx < attempts && ms < n->opts.backoff_max_ms; idx++) ms *= 2;
    if (ms > n->opts.backoff_max_ms) ms = n->opts.backoff_max_ms;
    /* jitter: ±20 % */
    uint64_t span = ms * 2 / 5 + 1;
    int64_t jitter = (int64_t)(rng_next(&n->rng) % span) - (int64_t)(span / 2);
    return ((int64_t)ms + jitter) * QR_NS_PER_MS;
}

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    (void)ptr;
    (void)ud;
    return size * nmemb;
}

static void msg_start(notify *n, nmsg *m)
{
    CURL *e = curl_easy_init();
    if (!e) {
        m->due_mono_ns = qr_monotonic_ns() + QR_NS_PER_SEC;
        return;
    }
    m->headers = curl_slist_append(NULL, "Content-Type: application/json");
    m->headers = curl_slist_append(m->headers, "User-Agent: quarry-alerts/1");
    m->error[0] = 0;
    curl_easy_setopt(e, CURLOPT_URL, m->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, m->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)m->body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, m->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)n->opts.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)n->opts.timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, m->error);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_PRIVATE, m);
    m->easy = e;
    m->attempts++;
    if (m->attempts > 1) n->st.retries++;
    n->in_flight++;
    curl_multi_add_handle(n->multi, e);
}

static void msg_unlink_locked(notify *n, nmsg *m)
{
    for (nmsg **pp = &n->head; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            n->count--;
            return;
        }
}

/* Called with n->mu held; the callback runs with it released. */
static void msg_finish(notify *n, nmsg *m, CURLcode cc)
{
    long status = 0;
    curl_easy_getinfo(m->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(n->multi, m->easy);
    curl_easy_cleanup(m->easy);
    curl_slist_free_all(m->headers);
    m->headers = NULL;
    m->easy = NULL;
    n->in_flight--;
    m->last_status = status;
    bool ok = cc == CURLE_OK && status >= 200 && status < 300;
    bool retryable = cc != CURLE_OK || status == 408 || status == 429 || status >= 500;
    if (!ok) {
        if (cc != CURLE_OK && !m->error[0])
            snprintf(m->error, sizeof m->error, "%s", curl_easy_strerror(cc));
        else if (cc == CURLE_OK)
            snprintf(m->error, sizeof m->error, "HTTP %ld", status);
    }
    if (!ok && retryable && m->attempts < n->opts.max_attempts && !n->stop) {
        m->due_mono_ns = qr_monotonic_ns() + backoff_ns(n, m->attempts);
        return;
    }
    if (ok)
        n->st.sent++;
    else
        n->st.failed++;
    if (m->outbox_path) {
        if (ok) {
            unlink(m->outbox_path);
        } else {
            char failed[4200];
            snprintf(failed, sizeof failed, "%.*s.failed", (int)(strlen(m->outbox_path) - 4),
                     m->outbox_path);
            rename(m->outbox_path, failed);
        }
    }
    /* the callback runs before the message leaves the list, so notify_wait_idle returning
     * true means every result was reported */
    notify_result res = {m->ref, ok, status, m->attempts, ok ? NULL : m->error};
    pthread_mutex_unlock(&n->mu);
    if (n->on_result) n->on_result(n->ctx, &res);
    pthread_mutex_lock(&n->mu);
    msg_unlink_locked(n, m);
    nmsg_free(m);
    if (n->count == 0) pthread_cond_broadcast(&n->idle_cv);
}

static void *sender_main(void *arg)
{
    notify *n = arg;
    pthread_mutex_lock(&n->mu);
    while (!n->stop) {
        int64_t now = qr_monotonic_ns();
        int64_t next_due = now + QR_NS_PER_SEC;
        for (nmsg *m = n->head; m; m = m->next) {
            if (m->easy) continue;
            if (m->due_mono_ns <= now && n->in_flight < NOTIFY_MAX_IN_FLIGHT)
                msg_start(n, m);
            else if (m->due_mono_ns < next_due)
                next_due = m->due_mono_ns;
        }
        pthread_mutex_unlock(&n->mu);
        int running = 0;
        curl_multi_perform(n->multi, &running);
        pthread_mutex_lock(&n->mu);
        CURLMsg *cm;
        int left;
        while ((cm = curl_multi_info_read(n->multi, &left))) {
            if (cm->msg != CURLMSG_DONE) continue;
            nmsg *m = NULL;
            CURLcode cc = cm->data.result;
            curl_easy_getinfo(cm->easy_handle, CURLINFO_PRIVATE, (char **)&m);
            if (m) msg_finish(n, m, cc);
        }
        if (n->stop) break;
        int64_t wait_ns = next_due - qr_monotonic_ns();
        int wait_ms = wait_ns <= 0 ? 0 : (int)(wait_ns / QR_NS_PER_MS) + 1;
        if (wait_ms > 1000) wait_ms = 1000;
        pthread_mutex_unlock(&n->mu);
        curl_multi_poll(n->multi, NULL, 0, wait_ms, NULL);
        pthread_mutex_lock(&n->mu);
    }
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

/* libcurl's global state is set up once per process (curl_global_init is not thread-safe). */
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

int notify_new(const notify_opts *opts, notify_result_fn on_result, void *ctx, notify **out,
               qr_diag *d)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, curl_init_once);
    notify *n = calloc(1, sizeof *n);
    if (!n) return qr_diag_set(d, QR_ENOMEM, "out of memory");
    if (opts) n->opts = *opts;
    if (!n->opts.queue_max) n->opts.queue_max = NOTIFY_DEFAULT_QUEUE_MAX;
    if (!n->opts.timeout_ms) n->opts.timeout_ms = NOTIFY_DEFAULT_TIMEOUT_MS;
    if (!n->opts.max_attempts) n->opts.max_attempts = NOTIFY_DEFAULT_MAX_ATTEMPTS;
    if (!n->opts.backoff_base_ms) n->opts.backoff_base_ms = NOTIFY_DEFAULT_BACKOFF_BASE_MS;
    if (!n->opts.backoff_max_ms) n->opts.backoff_max_ms = NOTIFY_DEFAULT_BACKOFF_MAX_MS;
    n->on_result = on_result;
    n->ctx = ctx;
    n->rng = (uint64_t)qr_now_ns() ^ (uint64_t)(uintptr_t)n ^ 0x9e3779b97f4a7c15ull;
    if (!n->rng) n->rng = 1;
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->idle_cv, NULL);
    n->multi = curl_multi_init();
    if (!n->multi) {
        notify_free(n);
        return qr_diag_set(d, QR_ENOMEM, "cannot create a libcurl multi handle");
    }
    if (pthread_create(&n->thread, NULL, sender_main, n) != 0) {
        notify_free(n);
        return qr_diag_set(d, QR_ENOMEM, "cannot start the notification thread");
    }
    n->thread_started = true;
    *out = n;
    return 0;
}

void notify_free(notify *n)
{
    if (!n) return;
    if (n->thread_started) {
        pthread_mutex_lock(&n->mu);
        n->stop = true;
        pthread_mutex_unlock(&n->mu);
        curl_multi_wakeup(n->multi);
        pthread_join(n->thread, NULL);
    }
    for (nmsg *m = n->head, *next; m; m = next) {
        next = m->next;
        if (m->easy) {
            curl_multi_remove_handle(n->multi, m->easy);
            curl_easy_cleanup(m->easy);
            curl_slist_free_all(m->headers);
        }
        nmsg_free(m); /* its outbox file stays: it is sent again after the next start */
    }
    if (n->multi) curl_multi_cleanup(n->multi);
    pthread_cond_destroy(&n->idle_cv);
    pthread_mutex_destroy(&n->mu);
    free(n);
}

int notify_outbox_encode(const char *ref, const char *url, const char *body, size_t body_len,
                         qr_buf *out)
{
    qr_buf_append(out, "QNOB", 4);
    qr_buf_u8(out, 1);
    qr_buf_bytes(out, ref, strlen(ref));
    qr_buf_bytes(out, url, strlen(url));
    qr_buf_bytes(out, body, body_len);
    qr_buf_u32(out, qr_checksum32(out->data, out->len));
    return qr_buf_ok(out) ? 0 : QR_ENOMEM;
}

int notify_outbox_decode(const uint8_t *p, size_t len, const char **ref, size_t *ref_len,
                         const char **url, size_t *url_len, const char **body, size_t *body_len,
                         qr_diag *d)
{
    if (len < 9 || memcmp(p, "QNOB", 4) != 0)
        return qr_diag_set(d, QR_ECORRUPT, "outbox message: bad magic at offset 0");
    if (p[4] != 1)
        return qr_diag_set(d, QR_ECORRUPT, "outbox message: version %u at offset 4", p[4]);
    if (qr_load_u32(p + len - 4) != qr_checksum32(p, len - 4))
        return qr_diag_set(d, QR_ECORRUPT, "outbox message: checksum mismatch at offset %zu",
                           len - 4);
    qr_rd r;
    qr_rd_init(&r, p + 5, len - 9);
    const uint8_t *a = qr_rd_bytes(&r, ref_len);
    const uint8_t *b = qr_rd_bytes(&r, url_len);
    const uint8_t *c = qr_rd_bytes(&r, body_len);
    if (r.bad || qr_rd_left(&r) != 0)
        return qr_diag_set(d, QR_ECORRUPT, "outbox message: bad framing before offset %zu",
                           len - 4);
    *ref = (const char *)a;
    *url = (const char *)b;
    *body = (const char *)c;
    return 0;
}

static char *dup_n(const void *p, size_t len)
{
    char *s = malloc(len + 1);
    if (!s) return NULL;
    if (len) memcpy(s, p, len);
    s[len] = 0;
    return s;
}

/* Queues a message (copies everything); outbox_path is taken over. */
static int enqueue(notify *n, const char *ref, size_t ref_len, const char *url, size_t url_len,
                   const char *body, size_t body_len, char *outbox_path, qr_diag *d)
{
    nmsg *m = calloc(1, sizeof *m);
    if (m) {
        m->ref = dup_n(ref, ref_len);
        m->url = dup_n(url, url_len);
        m->body = dup_n(body, body_len);
        m->body_len = body_len;
    }
    if (!m || !m->ref || !m->url || !m->body) {
        nmsg_free(m);
        free(outbox_path);
        return qr_diag_set(d, QR_ENOMEM, "out of memory");
    }
    m->outbox_path = outbox_path;
    m->due_mono_ns = qr_monotonic_ns();
    pthread_mutex_lock(&n->mu);
    /* append at the tail: messages start in the order they were sent */
    nmsg **pp = &n->head;
    while (*pp) pp = &(*pp)->next;
    *pp = m;
    n->count++;
    n->st.queued++;
    pthread_mutex_unlock(&n->mu);
    curl_multi_wakeup(n->multi);
    return 0;
}

int notify_send(notify *n, const char *outbox_dir, const char *ref, const char *url,
                const char *body, size_t body_len, qr_diag *d)
{
    if (!notify_url_ok(url)) return qr_diag_set(d, QR_EINVAL, "invalid URL \"%s\"", url);
    pthread_mutex_lock(&n->mu);
    bool full = n->count >= n->opts.queue_max;
    uint64_t seq = ++n->seq;
    if (full) n->st.dropped++;
    pthread_mutex_unlock(&n->mu);
    if (full)
        return qr_diag_set(d, QR_ELIMIT, "notification queue full (%u): dropped",
                           n->opts.queue_max);
    char *path = NULL;
    if (outbox_dir) {
        int rc = qr_fs_mkdirs(outbox_dir, d);
        if (rc) return rc;
        size_t cap = strlen(outbox_dir) + 64;
        path = malloc(cap);
        if (!path) return qr_diag_set(d, QR_ENOMEM, "out of memory");
        /* wall-clock ns first so names sort by creation across restarts */
        snprintf(path, cap, "%s/%020lld-%06llu.msg", outbox_dir, (long long)qr_now_ns(),
                 (unsigned long long)(seq % 1000000));
        qr_buf enc;
        qr_buf_init(&enc);
        rc = notify_outbox_encode(ref, url, body, body_len, &enc);
        if (!rc) rc = qr_fs_write_atomic(path, enc.data, enc.len, d);
        qr_buf_fini(&enc);
        if (rc) {
            free(path);
            return rc;
        }
    }
    return enqueue(n, ref, strlen(ref), url, strlen(url), body, body_len, path, d);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int notify_outbox_load(notify *n, const char *outbox_dir, uint32_t *loaded, qr_diag *d)
{
    if (loaded) *loaded = 0;
    DIR *dir = opendir(outbox_dir);
    if (!dir) return errno == ENOENT ? 0 : qr_diag_errno(d, QR_EIO, "opendir %s", outbox_dir);
    char **names = NULL;
    size_t count = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".msg") != 0) continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) {
                rc = QR_ENOMEM;
                break;
            }
            names = grown;
        }
        if (!(names[count] = strdup(de->d_name))) {
            rc = QR_ENOMEM;
            break;
        }
        count++;
    }
    closedir(dir);
    if (count) qsort(names, count, sizeof *names, name_cmp);
    for (size_t idx = 0; idx < count && !rc; idx++) {
        size_t cap_path = strlen(outbox_dir) + strlen(names[idx]) + 2;
        char *path = malloc(cap_path);
        if (!path) {
            rc = QR_ENOMEM;
            break;
        }
        snprintf(path, cap_path, "%s/%s", outbox_dir, names[idx]);
        qr_buf raw;
        qr_buf_init(&raw);
        qr_diag ld;
        qr_diag_init(&ld);
        int lrc = qr_fs_read_all(path, 64u << 20, &raw, &ld);
        bool good = false;
        const char *ref, *url, *body;
        size_t ref_len, url_len, body_len;
        if (!lrc && notify_outbox_decode(raw.data, raw.len, &ref, &ref_len, &url, &url_len, &body,
                                         &body_len, NULL) == 0) {
            good = true;
            rc = enqueue(n, ref, ref_len, url, url_len, body, body_len, path, d);
            path = NULL;
            if (!rc && loaded) (*loaded)++;
        }
        if (!good && path) {
            char bad[4200];
            snprintf(bad, sizeof bad, "%.*s.corrupt", (int)(strlen(path) - 4), path);
            rename(path, bad);
        }
        free(path);
        qr_buf_fini(&raw);
    }
    for (size_t idx = 0; idx < count; idx++) free(names[idx]);
    free(names);
    return rc == QR_ENOMEM ? qr_diag_set(d, rc, "out of memory") : rc;
}

void notify_stats_get(notify *n, notify_stats *out)
{
    pthread_mutex_lock(&n->mu);
    *out = n->st;
    out->depth = n->count;
    out->in_flight = n->in_flight;
    pthread_mutex_unlock(&n->mu);
}

bool notify_wait_idle(notify *n, uint32_t timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&n->mu);
    while (n->count)
        if (pthread_cond_timedwait(&n->idle_cv, &n->mu, &until) != 0) break;
    bool idle = n->count == 0;
    pthread_mutex_unlock(&n->mu);
    return idle;
}

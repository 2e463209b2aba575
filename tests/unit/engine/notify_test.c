/* notify_test — payload shapes of the four channels, URL checks, and the sender against a
 * real HTTP receiver on loopback: retries until the receiver recovers, permanent failures,
 * a full queue, and the outbox surviving a restart. */
#include "common/qr_arena.h"
#include "common/qr_json.h"
#include "common/qr_time.h"
#include "engine/notify.h"
#include "http_receiver.h"
#include "qr_test.h"

/* ---- payloads ------------------------------------------------------------------------------ */

static const notify_kv k_group[] = {{"service", "payment"}};
static const notify_kv k_labels[] = {{"severity", "critical"}, {"team", "pay"}};
static const notify_kv k_annot[] = {{"summary", "too many \"errors\""}};
static const char *const k_samples[] = {"{\"msg\":\"card declined\"}", "{\"msg\":\"timeout\"}"};

static notify_alert sample_alert(const char *state)
{
    notify_alert a = {0};
    a.rule = "payment_errors";
    a.state = state;
    a.condition = "count(*) > 100";
    a.query_sql = "SELECT count(*) FROM logs WHERE service = 'payment'";
    a.base_url = "http://127.0.0.1:7070";
    a.source = "host1";
    a.group_count = 1;
    a.group = k_group;
    a.label_count = 2;
    a.labels = k_labels;
    a.annotation_count = 1;
    a.annotations = k_annot;
    a.has_value = true;
    a.value = 150;
    a.window_ns = 300 * QR_NS_PER_SEC;
    return a;
}

static bool json_valid(const qr_buf *b)
{
    qr_arena arena;
    qr_arena_init(&arena, 4096, 0);
    qr_json_doc doc;
    qr_json_doc_init(&doc, &arena, NULL, 0);
    int rc = qr_json_parse(&doc, (const char *)b->data, b->len, NULL, NULL);
    qr_json_doc_fini(&doc);
    qr_arena_fini(&arena);
    return rc == 0;
}

static bool has(const qr_buf *b, const char *needle)
{
    char *s = strndup((const char *)b->data, b->len);
    bool found = s && strstr(s, needle) != NULL;
    if (!found) fprintf(stderr, "  missing %s in %s\n", needle, s ? s : "");
    free(s);
    return found;
}

TEST(webhook_payload)
{
    notify_alert a = sample_alert("firing");
    a.eval_ts_ns = 1750000000LL * 1000000000LL;
    a.starts_at_ns = a.eval_ts_ns;
    a.sample_count = 2;
    a.samples = k_samples;
    qr_buf b;
    qr_buf_init(&b);
    CHECK_EQ_INT(notify_payload_webhook(&a, &b), 0);
    CHECK(json_valid(&b));
    CHECK(has(&b, "\"rule\":\"payment_errors\""));
    CHECK(has(&b, "\"state\":\"firing\""));
    CHECK(has(&b, "\"group\":{\"service\":\"payment\"}"));
    CHECK(has(&b, "\"value\":150"));
    CHECK(has(&b, "\"condition\":\"count(*) > 100\""));
    CHECK(has(&b, "\"window\":\"5m\""));
    CHECK(has(&b, "\"samples\":[{\"msg\":\"card declined\"},{\"msg\":\"timeout\"}]"));
    CHECK(has(&b, "\"query_url\":\"http://127.0.0.1:7070/v1/query?q=SELECT%20count%28%2A%29"));
    CHECK(has(&b, "\"ends_at\":null"));
    qr_buf_fini(&b);
}

TEST(slack_payload)
{
    notify_alert a = sample_alert("resolved");
    qr_buf b;
    qr_buf_init(&b);
    CHECK_EQ_INT(notify_payload_slack(&a, &b), 0);
    CHECK(json_valid(&b));
    CHECK(has(&b, "{\"text\":\"[resolved] payment_errors/service=payment: too many"));
    CHECK(has(&b, "\"blocks\":[{\"type\":\"section\""));
    CHECK(has(&b, "|query>"));
    qr_buf_fini(&b);
}

TEST(pagerduty_payload)
{
    notify_alert a = sample_alert("firing");
    qr_buf b;
    qr_buf_init(&b);
    CHECK_EQ_INT(notify_payload_pagerduty(&a, "R0UTING", &b), 0);
    CHECK(json_valid(&b));
    CHECK(has(&b, "\"routing_key\":\"R0UTING\""));
    CHECK(has(&b, "\"event_action\":\"trigger\""));
    CHECK(has(&b, "\"dedup_key\":\"payment_errors/service=payment\""));
    CHECK(has(&b, "\"severity\":\"critical\""));
    CHECK(has(&b, "\"source\":\"host1\""));
    qr_buf_clear(&b);
    a.state = "resolved";
    a.labels = NULL;
    a.label_count = 0;
    CHECK_EQ_INT(notify_payload_pagerduty(&a, "R0UTING", &b), 0);
    CHECK(has(&b, "\"event_action\":\"resolve\""));
    CHECK(has(&b, "\"severity\":\"error\""));
    qr_buf_fini(&b);
}

TEST(alertmanager_payload)
{
    notify_alert a = sample_alert("firing");
    a.starts_at_ns = 1750000000LL * 1000000000LL;
    qr_buf b;
    qr_buf_init(&b);
    CHECK_EQ_INT(notify_payload_alertmanager(&a, &b), 0);
    CHECK(json_valid(&b));
    CHECK(has(&b, "[{\"labels\":{\"alertname\":\"payment_errors\",\"service\":\"payment\","
                  "\"severity\":\"critical\",\"team\":\"pay\"}"));
    CHECK(has(&b, "\"startsAt\":\"2025-06-15T15:06:40.000Z\""));
    CHECK(memmem(b.data, b.len, "endsAt", 6) == NULL);
    CHECK(has(&b, "\"generatorURL\":\"http://127.0.0.1:7070/v1/query?q="));
    qr_buf_clear(&b);
    a.state = "resolved";
    a.ends_at_ns = a.starts_at_ns + 60 * QR_NS_PER_SEC;
    CHECK_EQ_INT(notify_payload_alertmanager(&a, &b), 0);
    CHECK(has(&b, "\"endsAt\":\"2025-06-15T15:07:40.000Z\""));
    /* outside the server there is no link: every payload still is valid JSON */
    a.base_url = NULL;
    qr_buf_clear(&b);
    CHECK_EQ_INT(notify_payload_alertmanager(&a, &b), 0);
    CHECK(json_valid(&b));
    CHECK(has(&b, "\"generatorURL\":\"\""));
    qr_buf_clear(&b);
    CHECK_EQ_INT(notify_payload_webhook(&a, &b), 0);
    CHECK(json_valid(&b) && has(&b, "\"query_url\":null"));
    qr_buf_clear(&b);
    CHECK_EQ_INT(notify_payload_slack(&a, &b), 0);
    CHECK(json_valid(&b));
    qr_buf_clear(&b);
    CHECK_EQ_INT(notify_payload_pagerduty(&a, "k", &b), 0);
    CHECK(json_valid(&b) && memmem(b.data, b.len, "links", 5) == NULL);
    qr_buf_fini(&b);
}

TEST(url_checks)
{
    CHECK(notify_url_ok("http://127.0.0.1:9000/hook"));
    CHECK(notify_url_ok("https://hooks.slack.com/services/T/B/X"));
    CHECK(!notify_url_ok("ftp://x/y"));
    CHECK(!notify_url_ok("http://"));
    CHECK(!notify_url_ok("http://a b/"));
    CHECK(!notify_url_ok("hook"));
    CHECK(!notify_url_ok(NULL));
}

/* ---- sender -------------------------------------------------------------------------------- */

typedef struct results {
    pthread_mutex_t mu;
    int delivered, failed;
    long last_status;
    uint32_t last_attempts;
    char last_ref[64];
} results;

static void on_result(void *ctx, const notify_result *res)
{
    results *r = ctx;
    pthread_mutex_lock(&r->mu);
    if (res->delivered)
        r->delivered++;
    else
        r->failed++;
    r->last_status = res->http_status;
    r->last_attempts = res->attempts;
    snprintf(r->last_ref, sizeof r->last_ref, "%s", res->ref);
    pthread_mutex_unlock(&r->mu);
}

static const notify_opts k_fast = {
    .timeout_ms = 2000, .max_attempts = 4, .backoff_base_ms = 20, .backoff_max_ms = 100};

TEST(retries_until_receiver_recovers)
{
    receiver rcv;
    REQUIRE(receiver_start(&rcv, 0, 2, 503) == 0);
    results res = {.mu = PTHREAD_MUTEX_INITIALIZER};
    notify *n = NULL;
    REQUIRE(notify_new(&k_fast, on_result, &res, &n, NULL) == 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", rcv.port);
    CHECK_EQ_INT(notify_send(n, NULL, "r1", url, "{\"a\":1}", 7, NULL), 0);
    CHECK(notify_wait_idle(n, 10000));
    CHECK_EQ_INT(res.delivered, 1);
    CHECK_EQ_INT(res.last_attempts, 3);
    CHECK_EQ_STR(res.last_ref, "r1");
    CHECK_EQ_STR(rcv.last_body, "{\"a\":1}");
    CHECK_EQ_STR(rcv.last_path, "/hook");
    notify_stats st;
    notify_stats_get(n, &st);
    CHECK_EQ_INT(st.sent, 1);
    CHECK_EQ_INT(st.retries, 2);
    CHECK_EQ_INT(st.depth, 0);
    notify_free(n);
    receiver_stop(&rcv);
}

TEST(client_error_is_not_retried)
{
    receiver rcv;
    REQUIRE(receiver_start(&rcv, 0, 100, 400) == 0);
    results res = {.mu = PTHREAD_MUTEX_INITIALIZER};
    notify *n = NULL;
    REQUIRE(notify_new(&k_fast, on_result, &res, &n, NULL) == 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", rcv.port);
    CHECK_EQ_INT(notify_send(n, NULL, "r2", url, "{}", 2, NULL), 0);
    CHECK(notify_wait_idle(n, 10000));
    CHECK_EQ_INT(res.failed, 1);
    CHECK_EQ_INT(res.last_status, 400);
    CHECK_EQ_INT(atomic_load(&rcv.requests), 1);
    notify_free(n);
    receiver_stop(&rcv);
}

TEST(gives_up_after_max_attempts)
{
    int port = free_port();
    results res = {.mu = PTHREAD_MUTEX_INITIALIZER};
    notify *n = NULL;
    REQUIRE(notify_new(&k_fast, on_result, &res, &n, NULL) == 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", port);
    CHECK_EQ_INT(notify_send(n, NULL, "r3", url, "{}", 2, NULL), 0);
    CHECK(notify_wait_idle(n, 10000));
    CHECK_EQ_INT(res.failed, 1);
    CHECK_EQ_INT(res.last_attempts, 4);
    CHECK_EQ_INT(notify_send(n, NULL, "r3", "nope", "{}", 2, NULL), QR_EINVAL);
    notify_free(n);
}

TEST(full_queue_drops)
{
    int port = free_port();
    notify_opts o = k_fast;
    o.queue_max = 2;
    o.backoff_base_ms = 5000;
    o.backoff_max_ms = 5000;
    notify *n = NULL;
    REQUIRE(notify_new(&o, NULL, NULL, &n, NULL) == 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", port);
    CHECK_EQ_INT(notify_send(n, NULL, "a", url, "{}", 2, NULL), 0);
    CHECK_EQ_INT(notify_send(n, NULL, "b", url, "{}", 2, NULL), 0);
    CHECK_EQ_INT(notify_send(n, NULL, "c", url, "{}", 2, NULL), QR_ELIMIT);
    notify_stats st;
    notify_stats_get(n, &st);
    CHECK_EQ_INT(st.dropped, 1);
    CHECK_EQ_INT(st.depth, 2);
    notify_free(n);
}

TEST(outbox_survives_restart)
{
    char dir[512];
    REQUIRE(qr_test_tmpdir("notify_outbox", dir, sizeof dir));
    char outbox[600];
    snprintf(outbox, sizeof outbox, "%s/outbox", dir);
    int port = free_port();
    notify_opts o = k_fast;
    o.backoff_base_ms = 60000;
    o.backoff_max_ms = 60000;
    notify *n = NULL;
    REQUIRE(notify_new(&o, NULL, NULL, &n, NULL) == 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/late", port);
    CHECK_EQ_INT(notify_send(n, outbox, "kept", url, "{\"k\":2}", 7, NULL), 0);
    notify_free(n); /* "crash": undelivered */

    receiver rcv;
    REQUIRE(receiver_start(&rcv, port, 0, 503) == 0);
    results res = {.mu = PTHREAD_MUTEX_INITIALIZER};
    REQUIRE(notify_new(&k_fast, on_result, &res, &n, NULL) == 0);
    uint32_t loaded = 0;
    CHECK_EQ_INT(notify_outbox_load(n, outbox, &loaded, NULL), 0);
    CHECK_EQ_INT(loaded, 1);
    CHECK(notify_wait_idle(n, 10000));
    CHECK_EQ_INT(res.failed, 0);
    CHECK_EQ_INT(res.delivered, 1);
    CHECK_EQ_STR(res.last_ref, "kept");
    CHECK_EQ_STR(rcv.last_body, "{\"k\":2}");
    notify_free(n);
    /* delivered: the outbox is empty, a third start sends nothing */
    REQUIRE(notify_new(&k_fast, NULL, NULL, &n, NULL) == 0);
    CHECK_EQ_INT(notify_outbox_load(n, outbox, &loaded, NULL), 0);
    CHECK_EQ_INT(loaded, 0);
    notify_free(n);
    receiver_stop(&rcv);
    CHECK_EQ_INT(atomic_load(&rcv.ok_count), 1);
    qr_test_rmdir(dir);
}

int main(void)
{
    RUN(webhook_payload);
    RUN(slack_payload);
    RUN(pagerduty_payload);
    RUN(alertmanager_payload);
    RUN(url_checks);
    RUN(retries_until_receiver_recovers);
    RUN(client_error_is_not_retried);
    RUN(gives_up_after_max_attempts);
    RUN(full_queue_drops);
    RUN(outbox_survives_restart);
    QR_TEST_MAIN_END();
}

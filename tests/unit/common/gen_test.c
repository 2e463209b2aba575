#include "common/qr_gen.h"
#include "common/qr_hash.h"
#include "common/qr_time.h"
#include "qr_test.h"
#include "storage/evdec.h"

static void gen_lines(uint64_t seed, size_t count, qr_buf *out)
{
    qr_gen_opts opts = {seed, 0, 0};
    qr_gen *g = qr_gen_new(&opts);
    for (size_t row = 0; row < count; row++) qr_gen_next_ndjson(g, out);
    qr_gen_free(g);
}

TEST(deterministic)
{
    qr_buf a, b, c;
    qr_buf_init(&a);
    qr_buf_init(&b);
    qr_buf_init(&c);
    gen_lines(42, 3000, &a);
    gen_lines(42, 3000, &b);
    gen_lines(43, 3000, &c);
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    CHECK(a.len != c.len || memcmp(a.data, c.data, a.len) != 0);
    qr_buf_fini(&a);
    qr_buf_fini(&b);
    qr_buf_fini(&c);
    qr_gen_free(NULL);
}

typedef struct stats {
    size_t events;
    size_t bytes;
    size_t level[QR_LEVEL_COUNT];
    size_t per_service[64];
    char service_names[64][32];
    size_t service_count;
    size_t with_trace, with_span, with_user, with_latency, with_http, multiline;
    size_t out_of_order;
    int64_t first_ts, last_ts;
    size_t max_same_error; /* most identical ERROR msgs from one service in 2000 events */
} stats;

static size_t service_slot(stats *st, qr_str name)
{
    for (size_t s = 0; s < st->service_count; s++)
        if (qr_str_eq_cstr(name, st->service_names[s])) return s;
    if (st->service_count == 64 || name.len >= 32) return 63;
    memcpy(st->service_names[st->service_count], name.ptr, name.len);
    st->service_names[st->service_count][name.len] = '\0';
    return st->service_count++;
}

static const qr_field *find(const qr_batch *b, const qr_event *e, const char *key)
{
    if (!e->field_count) return NULL;
    const qr_field *f = qr_event_fields(b, e);
    for (uint32_t fi = 0; fi < e->field_count; fi++)
        if (qr_str_eq_cstr(f[fi].key, key)) return &f[fi];
    return NULL;
}

static bool is_hex(qr_str s, size_t len)
{
    if (s.len != len) return false;
    for (size_t pos = 0; pos < len; pos++)
        if (!((s.ptr[pos] >= '0' && s.ptr[pos] <= '9') || (s.ptr[pos] >= 'a' && s.ptr[pos] <= 'f')))
            return false;
    return true;
}

/* Decodes every line with evdec and gathers what a user of the data would look at. */
static void gen_stats(uint64_t seed, size_t count, stats *st)
{
    memset(st, 0, sizeof *st);
    qr_buf text;
    qr_buf_init(&text);
    qr_gen_opts opts = {seed, 0, 0};
    qr_gen *g = qr_gen_new(&opts);
    qr_batch b;
    qr_batch_init(&b);
    evdec_opts eo = {NULL, NULL, 1};
    int64_t max_ts = INT64_MIN;
    /* error messages: a tiny open-addressing count table keyed by hash */
    enum { SLOTS = 1 << 14 };
    uint64_t *keys = calloc(SLOTS, sizeof *keys);
    size_t *counts = calloc(SLOTS, sizeof *counts);
    for (size_t row = 0; row < count; row++) {
        qr_buf_clear(&text);
        int64_t want_ts = qr_gen_next_ts(g);
        qr_gen_next_ndjson(g, &text);
        st->bytes += text.len;
        CHECK(text.len > 0 && text.data[text.len - 1] == '\n');
        CHECK(memchr(text.data, '\n', text.len) == text.data + text.len - 1);
        qr_batch_reset(&b);
        qr_diag d;
        qr_diag_init(&d);
        int rc = evdec_ndjson_line((const char *)text.data, text.len - 1, &eo, &b, &d);
        if (rc != 0) {
            fprintf(stderr, "line %zu does not decode: %s\n%.*s", row, d.msg, (int)text.len,
                    text.data);
            CHECK(false);
            break;
        }
        const qr_event *e = &b.events[0];
        CHECK_EQ_INT(e->ts_ns, want_ts);
        if (row == 0) st->first_ts = e->ts_ns;
        st->last_ts = e->ts_ns;
        if (e->ts_ns < max_ts) st->out_of_order++;
        if (e->ts_ns > max_ts) max_ts = e->ts_ns;
        st->events++;
        st->level[e->level]++;
        st->per_service[service_slot(st, e->service)]++;
        CHECK(e->host.len > 0 && e->msg.len > 0);
        CHECK(find(&b, e, "_ts_invalid") == NULL);
        const qr_field *f;
        if ((f = find(&b, e, "trace_id")) && f->type == QR_FT_STRING && is_hex(f->v.s, 32))
            st->with_trace++;
        if ((f = find(&b, e, "span_id")) && f->type == QR_FT_STRING && is_hex(f->v.s, 16))
            st->with_span++;
        if ((f = find(&b, e, "user_id")) && f->type == QR_FT_STRING && f->v.s.len > 2)
            st->with_user++;
        if ((f = find(&b, e, "latency_ms")) && f->type == QR_FT_FLOAT && f->v.f > 0)
            st->with_latency++;
        if ((f = find(&b, e, "http.status")) && f->type == QR_FT_INT && f->v.i >= 200 &&
            f->v.i < 600 && find(&b, e, "http.method"))
            st->with_http++;
        if (memchr(e->msg.ptr, '\n', e->msg.len)) st->multiline++;
        if (row % 2000 == 0) { /* per window of 2000 events (2 s at the default rate) */
            memset(keys, 0, SLOTS * sizeof *keys);
            memset(counts, 0, SLOTS * sizeof *counts);
        }
        if (e->level == QR_LEVEL_ERROR) {
            uint64_t h =
                qr_hash64(e->msg.ptr, e->msg.len) ^ qr_hash64(e->service.ptr, e->service.len);
            size_t slot = h & (SLOTS - 1);
            while (keys[slot] && keys[slot] != h) slot = (slot + 1) & (SLOTS - 1);
            keys[slot] = h;
            if (++counts[slot] > st->max_same_error) st->max_same_error = counts[slot];
        }
    }
    free(keys);
    free(counts);
    qr_batch_fini(&b);
    qr_gen_free(g);
    qr_buf_fini(&text);
}

static double share(const stats *st, size_t n)
{
    return (double)n / (double)st->events;
}

TEST(realistic_shape)
{
    stats st;
    gen_stats(7, 20000, &st);
    REQUIRE(st.events == 20000);
    double info = share(&st, st.level[QR_LEVEL_INFO]), debug = share(&st, st.level[QR_LEVEL_DEBUG]);
    double warn = share(&st, st.level[QR_LEVEL_WARN]), err = share(&st, st.level[QR_LEVEL_ERROR]);
    double fatal = share(&st, st.level[QR_LEVEL_FATAL]),
           trace = share(&st, st.level[QR_LEVEL_TRACE]);
    printf("levels: info %.3f debug %.3f warn %.3f error %.3f fatal %.4f trace %.4f\n", info, debug,
           warn, err, fatal, trace);
    CHECK(info > 0.64 && info < 0.74);
    CHECK(debug > 0.15 && debug < 0.21);
    CHECK(warn > 0.065 && warn < 0.095);
    CHECK(err > 0.025 && err < 0.07);
    CHECK(fatal > 0.0001 && fatal < 0.004);
    CHECK(trace > 0.001 && trace < 0.01);
    CHECK_EQ_INT(st.level[QR_LEVEL_UNKNOWN], 0);

    /* 12-20 services, Zipf-skewed: the busiest far above the median and the quietest */
    printf("services: %zu, bytes/event %.1f\n", st.service_count, (double)st.bytes / st.events);
    CHECK(st.service_count >= 12 && st.service_count <= 20);
    size_t top = 0, bottom = SIZE_MAX;
    for (size_t s = 0; s < st.service_count; s++) {
        if (st.per_service[s] > top) top = st.per_service[s];
        if (st.per_service[s] < bottom) bottom = st.per_service[s];
    }
    CHECK(share(&st, top) > 0.2);
    CHECK(top > 10 * bottom);
    CHECK(bottom > 0);

    /* fields */
    CHECK(share(&st, st.with_trace) > 0.6 && st.with_trace == st.with_span);
    CHECK(share(&st, st.with_user) > 0.35 && share(&st, st.with_user) < 0.55);
    CHECK_EQ_INT(st.with_latency, st.events);
    CHECK(share(&st, st.with_http) > 0.2);
    CHECK(st.multiline > 0);

    /* lines average ~250-300 bytes */
    double avg = (double)st.bytes / st.events;
    CHECK(avg > 200 && avg < 320);

    /* time: 1000/s by default, starting 2025-06-15, a few events slightly out of order */
    CHECK(st.first_ts >= 1749945600LL * QR_NS_PER_SEC);
    double secs = (double)(st.last_ts - st.first_ts) / 1e9;
    CHECK(secs > 18 && secs < 22);
    CHECK(st.out_of_order > 0 && share(&st, st.out_of_order) < 0.1);
}

TEST(error_bursts)
{
    /* a burst: one service repeats one ERROR message many times within a short window
     * (without bursts the most repeated message shows up a handful of times per window) */
    stats st;
    gen_stats(11, 100000, &st);
    printf("largest identical error group: %zu\n", st.max_same_error);
    CHECK(st.max_same_error >= 40);
    gen_stats(7, 20000, &st);
    printf("largest identical error group without a burst: %zu\n", st.max_same_error);
}

TEST(options)
{
    qr_gen_opts opts = {1, 1700000000LL * QR_NS_PER_SEC, 10};
    qr_gen *g = qr_gen_new(&opts);
    int64_t start = qr_gen_next_ts(g);
    CHECK(start >= 1700000000LL * QR_NS_PER_SEC - QR_NS_PER_SEC);
    qr_buf out;
    qr_buf_init(&out);
    for (int row = 0; row < 1000; row++) qr_gen_next_ndjson(g, &out);
    double secs = (double)(qr_gen_next_ts(g) - start) / 1e9;
    CHECK(secs > 80 && secs < 120); /* 1000 events at 10/s */
    qr_buf_fini(&out);
    qr_gen_free(g);
}

int main(void)
{
    RUN(deterministic);
    RUN(realistic_shape);
    RUN(error_bursts);
    RUN(options);
    QR_TEST_MAIN_END();
}

/* metrics — Prometheus text rendering and lock-free histograms (contract in metrics.h). */
#include "server/metrics.h"

#include <stdio.h>
#include <string.h>

/* upper bounds in seconds; the last bucket (index METRICS_BUCKETS-1) is +Inf */
static const double METRICS_BOUNDS_S[METRICS_BUCKETS - 1] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};

void metrics_hist_observe(metrics_hist *h, uint64_t ns, uint64_t count)
{
    if (!count) return;
    double s = (double)ns / 1e9;
    int idx = 0;
    while (idx < METRICS_BUCKETS - 1 && s > METRICS_BOUNDS_S[idx]) idx++;
    atomic_fetch_add_explicit(&h->buckets[idx], count, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, count, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns * count, memory_order_relaxed);
}

void metrics_head(qr_buf *out, const char *name, const char *type, const char *help)
{
    char line[512];
    int n = snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    if (n > 0) qr_buf_append(out, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void sample_name(qr_buf *out, const char *name, const char *labels)
{
    qr_buf_append(out, name, strlen(name));
    if (labels && *labels) {
        qr_buf_u8(out, '{');
        qr_buf_append(out, labels, strlen(labels));
        qr_buf_u8(out, '}');
    }
    qr_buf_u8(out, ' ');
}

void metrics_sample_u64(qr_buf *out, const char *name, const char *labels, uint64_t v)
{
    sample_name(out, name, labels);
    char num[32];
    int n = snprintf(num, sizeof num, "%llu\n", (unsigned long long)v);
    qr_buf_append(out, num, (size_t)n);
}

void metrics_sample_f64(qr_buf *out, const char *name, const char *labels, double v)
{
    sample_name(out, name, labels);
    char num[48];
    int n = snprintf(num, sizeof num, "%.9g\n", v);
    qr_buf_append(out, num, (size_t)n);
}

void metrics_hist_render(qr_buf *out, const char *name, const char *labels, const metrics_hist *h)
{
    char bname[160], lab[400];
    snprintf(bname, sizeof bname, "%s_bucket", name);
    uint64_t cum = 0;
    for (int idx = 0; idx < METRICS_BUCKETS; idx++) {
        cum += atomic_load_explicit(&h->buckets[idx], memory_order_relaxed);
        char le[32];
        if (idx < METRICS_BUCKETS - 1)
            snprintf(le, sizeof le, "%g", METRICS_BOUNDS_S[idx]);
        else
            snprintf(le, sizeof le, "+Inf");
        snprintf(lab, sizeof lab, "%s%sle=\"%s\"", labels ? labels : "",
                 labels && *labels ? "," : "", le);
        metrics_sample_u64(out, bname, lab, cum);
    }
    snprintf(bname, sizeof bname, "%s_sum", name);
    metrics_sample_f64(out, bname, labels,
                       (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9);
    snprintf(bname, sizeof bname, "%s_count", name);
    /* the count must equal the +Inf bucket: report the cumulative sum read above */
    metrics_sample_u64(out, bname, labels, cum);
}

void metrics_label_escape(qr_buf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') {
            qr_buf_u8(out, '\\');
            qr_buf_u8(out, (uint8_t)*s);
        } else if (*s == '\n') {
            qr_buf_append(out, "\\n", 2);
        } else {
            qr_buf_u8(out, (uint8_t)*s);
        }
    }
}

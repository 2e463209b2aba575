/* metrics — counters and histograms for GET /metrics, in the Prometheus text format (0.0.4).
 *
 * A histogram has fixed bucket bounds (METRICS_BOUNDS_S: 100 µs .. 10 s, a 1-2.5-5 ladder),
 * counts in atomics so worker threads can observe without locks. Rendering appends
 * `# HELP`, `# TYPE` and samples to a qr_buf; label values are escaped as the format says.
 * Thread safety: metrics_hist_observe from any thread; rendering reads atomics (a scrape
 * sees each counter at some instant, not all at one instant). No allocation. */
#ifndef QR_METRICS_H
#define QR_METRICS_H

#include "common/qr_buf.h"

#include <stdatomic.h>
#include <stdint.h>

#define METRICS_BUCKETS 16

typedef struct metrics_hist {
    atomic_uint_fast64_t buckets[METRICS_BUCKETS]; /* not cumulative; the +Inf overflow is last */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_ns;
} metrics_hist;

/* Adds `count` observations of duration ns each. */
void metrics_hist_observe(metrics_hist *h, uint64_t ns, uint64_t count);

/* "# HELP name help\n# TYPE name type\n" */
void metrics_head(qr_buf *out, const char *name, const char *type, const char *help);
/* name{labels} value — labels is "" or `route="x",status="200"` (already escaped). */
void metrics_sample_u64(qr_buf *out, const char *name, const char *labels, uint64_t v);
void metrics_sample_f64(qr_buf *out, const char *name, const char *labels, double v);
/* name_bucket{labels,le=...}, name_sum, name_count in seconds. */
void metrics_hist_render(qr_buf *out, const char *name, const char *labels, const metrics_hist *h);
/* Appends s escaped for a label value (\\, \", \n). */
void metrics_label_escape(qr_buf *out, const char *s);

#endif

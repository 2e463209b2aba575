/* agg_sketch — mergeable summaries for aggregates: a DDSketch-style quantile sketch and a
 * HyperLogLog distinct counter (engine-internal).
 *
 * dd_sketch: values map to logarithmic buckets of ratio gamma = (1 + a) / (1 - a) with
 * a = DD_REL_ERROR (1 %); a bucket's estimate 2 gamma^i / (gamma + 1) is within a relative
 * error a of every value in it, so a quantile is within 1 % of the order statistic it stands
 * for (negative values mirror positive ones; |v| < DD_MIN_VALUE counts as 0). Memory: one
 * counter per occupied bucket range: ~1,200 counters (9.6 KiB) per factor of 10^10 of value
 * range, whatever the number of values. Sketches merge by adding counters.
 * hll: 2^HLL_P one-byte registers (16 KiB); standard error 1.04 / sqrt(2^14) = 0.81 %, with
 * linear counting for small cardinalities. Registers merge by maximum.
 * Memory comes from the caller's arena; functions return 0 or -1 when the arena is out of
 * budget. Not thread-safe (one sketch per aggregate state). */
#ifndef QR_AGG_SKETCH_H
#define QR_AGG_SKETCH_H

#include "common/qr_arena.h"

#include <stdint.h>

#define DD_REL_ERROR 0.01
#define DD_MIN_VALUE 1e-9
#define HLL_P 14
#define HLL_REGISTERS (1u << HLL_P)

typedef struct dd_store {
    uint64_t *counts; /* counts[idx - lo] for bucket idx */
    int32_t lo;
    uint32_t cap;
} dd_store;

typedef struct dd_sketch {
    dd_store pos, neg;
    uint64_t zero;
    uint64_t count;
} dd_sketch;

int dd_add(qr_arena *a, dd_sketch *s, double v);
int dd_merge(qr_arena *a, dd_sketch *into, const dd_sketch *from);
/* The q-quantile (0 <= q <= 1) of what was added: the value at rank q * (count - 1) rounded
 * to the nearest, within DD_REL_ERROR. NAN when empty. */
double dd_quantile(const dd_sketch *s, double q);

void hll_add(uint8_t *regs, uint64_t hash);
void hll_merge(uint8_t *into, const uint8_t *from);
uint64_t hll_estimate(const uint8_t *regs);

#endif

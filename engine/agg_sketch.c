/* agg_sketch — DDSketch-style quantiles and HyperLogLog (see agg_sketch.h for the bounds).
 *
 * dd: bucket index i = ceil(log(v) / log(gamma)); stores are dense counter arrays over the
 * occupied index range, grown by doubling around it. A quantile walks the negative store from
 * the largest magnitude down, the zeros, then the positive store up, to the bucket holding the
 * wanted rank. hll: the top HLL_P bits of the 64-bit hash pick the register, the rank of the
 * first set bit of the rest is kept as a maximum; the estimate is the harmonic mean with the
 * usual bias constant, or linear counting while registers are still empty (E <= 2.5 m). */
#include "engine/agg_sketch.h"

#include <math.h>
#include <string.h>

static double dd_gamma(void) { return (1 + DD_REL_ERROR) / (1 - DD_REL_ERROR); }

static int32_t dd_index(double v) { return (int32_t)ceil(log(v) / log(dd_gamma())); }

static double dd_value(int32_t idx)
{
    double g = dd_gamma();
    return 2 * pow(g, idx) / (g + 1);
}

static int store_add(qr_arena *a, dd_store *st, int32_t idx, uint64_t n)
{
    int64_t lo = st->lo, hi = (int64_t)st->lo + st->cap;
    if (!st->counts || idx < lo || idx >= hi) {
        int64_t new_lo, need_lo = st->counts && lo < idx ? lo : idx;
        int64_t need_hi = st->counts && hi > idx + 1 ? hi : (int64_t)idx + 1;
        uint32_t cap = st->cap ? st->cap : 64;
        while ((int64_t)cap < need_hi - need_lo) cap *= 2;
        if (!st->counts)
            new_lo = (int64_t)idx - cap / 2; /* room on both sides */
        else if (idx < lo)
            new_lo = need_hi - cap; /* grew downwards: room below */
        else
            new_lo = need_lo;
        uint64_t *counts = qr_arena_calloc(a, cap, sizeof *counts);
        if (!counts) return -1;
        if (st->counts) memcpy(counts + (lo - new_lo), st->counts, st->cap * sizeof *counts);
        st->counts = counts;
        st->lo = (int32_t)new_lo;
        st->cap = cap;
    }
    st->counts[idx - st->lo] += n;
    return 0;
}

int dd_add(qr_arena *a, dd_sketch *s, double v)
{
    if (isnan(v)) return 0;
    s->count++;
    if (fabs(v) < DD_MIN_VALUE) {
        s->zero++;
        return 0;
    }
    if (isinf(v)) v = v > 0 ? 1e300 : -1e300;
    return store_add(a, v > 0 ? &s->pos : &s->neg, dd_index(fabs(v)), 1);
}

int dd_merge(qr_arena *a, dd_sketch *into, const dd_sketch *from)
{
    const dd_store *src[2] = {&from->pos, &from->neg};
    dd_store *dst[2] = {&into->pos, &into->neg};
    for (int side = 0; side < 2; side++)
        for (uint32_t k = 0; k < src[side]->cap; k++)
            if (src[side]->counts[k] &&
                store_add(a, dst[side], src[side]->lo + (int32_t)k, src[side]->counts[k]))
                return -1;
    into->zero += from->zero;
    into->count += from->count;
    return 0;
}

double dd_quantile(const dd_sketch *s, double q)
{
    if (!s->count) return NAN;
    if (q < 0) q = 0;
    if (q > 1) q = 1;
    uint64_t rank = (uint64_t)llround(q * (double)(s->count - 1)), seen = 0;
    for (uint32_t k = s->neg.cap; k-- > 0;) {
        seen += s->neg.counts[k];
        if (seen > rank) return -dd_value(s->neg.lo + (int32_t)k);
    }
    seen += s->zero;
    if (seen > rank) return 0;
    for (uint32_t k = 0; k < s->pos.cap; k++) {
        seen += s->pos.counts[k];
        if (seen > rank) return dd_value(s->pos.lo + (int32_t)k);
    }
    return NAN; /* unreachable: counts add up to count */
}

void hll_add(uint8_t *regs, uint64_t hash)
{
    uint32_t idx = (uint32_t)(hash >> (64 - HLL_P));
    uint64_t rest = hash << HLL_P | (1ull << (HLL_P - 1)); /* a stop bit bounds the rank */
    uint8_t rank = (uint8_t)(__builtin_clzll(rest) + 1);
    if (rank > regs[idx]) regs[idx] = rank;
}

void hll_merge(uint8_t *into, const uint8_t *from)
{
    for (uint32_t idx = 0; idx < HLL_REGISTERS; idx++)
        if (from[idx] > into[idx]) into[idx] = from[idx];
}

uint64_t hll_estimate(const uint8_t *regs)
{
    double m = HLL_REGISTERS, sum = 0;
    uint32_t zeros = 0;
    for (uint32_t idx = 0; idx < HLL_REGISTERS; idx++) {
        sum += ldexp(1.0, -regs[idx]);
        zeros += regs[idx] == 0;
    }
    double alpha = 0.7213 / (1 + 1.079 / m);
    double e = alpha * m * m / sum;
    if (e <= 2.5 * m && zeros) e = m * log(m / zeros);
    return (uint64_t)llround(e);
}

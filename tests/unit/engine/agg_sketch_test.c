/* agg_sketch: quantiles within the stated 1 % relative error of the exact order statistics on
 * random data of several shapes, merging equals adding everything to one sketch; HyperLogLog
 * within 4 standard errors (0.81 % each) over several cardinalities, and merges. */
#include "engine/agg_sketch.h"
#include "qr_test.h"

#include <math.h>
#include <stdlib.h>

static uint64_t g_rng = 88172645463325252ull;
static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}
static double unit(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* |est - exact| within DD_REL_ERROR of the exact order statistic at the sketch's rank. */
static bool within(double est, double exact)
{
    return fabs(est - exact) <= DD_REL_ERROR * fabs(exact) + 1e-12;
}

static void check_shape(int shape, size_t n)
{
    qr_arena a;
    qr_arena_init(&a, 4096, 64u << 20);
    dd_sketch whole = {0}, left = {0}, right = {0};
    double *vals = malloc(n * sizeof *vals);
    REQUIRE(vals);
    for (size_t idx = 0; idx < n; idx++) {
        double v;
        switch (shape) {
        case 0: /* uniform latencies */
            v = unit() * 1000;
            break;
        case 1: /* log-normal-ish, heavy tail over 8 decades */
            v = exp(unit() * 18 - 4);
            break;
        case 2: /* signed, with zeros */
            v = rnd() % 10 == 0 ? 0 : (unit() - 0.5) * 2e6;
            break;
        default: /* few distinct integers */
            v = (double)(rnd() % 7);
            break;
        }
        vals[idx] = v;
        CHECK_EQ_INT(dd_add(&a, &whole, v), 0);
        CHECK_EQ_INT(dd_add(&a, idx % 3 ? &left : &right, v), 0);
    }
    CHECK_EQ_INT(dd_merge(&a, &left, &right), 0);
    qsort(vals, n, sizeof *vals, dbl_cmp);
    static const double qs[] = {0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1};
    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        size_t rank = (size_t)llround(qs[k] * (double)(n - 1));
        double est = dd_quantile(&whole, qs[k]);
        if (!within(est, vals[rank]))
            fprintf(stderr, "shape %d q %g: est %.17g exact %.17g\n", shape, qs[k], est,
                    vals[rank]);
        CHECK(within(est, vals[rank]));
        CHECK(dd_quantile(&left, qs[k]) == est); /* merged = one sketch */
    }
    free(vals);
    qr_arena_fini(&a);
}

TEST(quantiles_within_bound)
{
    for (int shape = 0; shape < 4; shape++) check_shape(shape, 20000);
    check_shape(1, 1);
    dd_sketch empty = {0};
    CHECK(isnan(dd_quantile(&empty, 0.5)));
}

TEST(hll_within_bound)
{
    static const uint32_t ns[] = {100, 2000, 30000, 300000};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        uint8_t *regs = calloc(HLL_REGISTERS, 1), *half = calloc(HLL_REGISTERS, 1);
        REQUIRE(regs && half);
        for (uint32_t idx = 0; idx < ns[k]; idx++) {
            uint64_t h = rnd();
            hll_add(regs, h);
            hll_add(regs, h); /* duplicates do not count */
            if (idx % 2) hll_add(half, h);
        }
        double est = (double)hll_estimate(regs), err = fabs(est - ns[k]) / ns[k];
        if (err > 4 * 0.0081) fprintf(stderr, "n %u: est %.0f\n", ns[k], est);
        CHECK(err <= 4 * 0.0081);
        uint8_t *other = calloc(HLL_REGISTERS, 1);
        REQUIRE(other);
        hll_merge(other, half);
        hll_merge(other, regs);
        CHECK_EQ_INT(hll_estimate(other), hll_estimate(regs));
        free(other);
        free(regs);
        free(half);
    }
}

int main(void)
{
    RUN(quantiles_within_bound);
    RUN(hll_within_bound);
    QR_TEST_MAIN_END();
}

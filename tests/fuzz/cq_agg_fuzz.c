/* libFuzzer driver: cq_agg_decode on arbitrary bytes (first byte: the aggregate kind). What
 * decodes must give a value, merge, and re-encode to bytes that decode to the same bytes. */
#include "engine/cq_agg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    cq_agg_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.kind = (uint8_t)(data[0] % (CQ_AGG_COUNT_DISTINCT + 1));
    spec.q = 0.9;
    strcpy(spec.field, "x");
    qr_rd rd;
    qr_rd_init(&rd, data + 1, size - 1);
    cq_agg_state *st = NULL;
    if (cq_agg_decode(&spec, &rd, &st, NULL) != 0) return 0;
    (void)cq_agg_final(&spec, st);
    qr_buf a, b;
    qr_buf_init(&a);
    qr_buf_init(&b);
    if (cq_agg_encode(&spec, st, &a) != 0) abort();
    qr_rd_init(&rd, a.data, a.len);
    cq_agg_state *again = NULL;
    if (cq_agg_decode(&spec, &rd, &again, NULL) != 0) abort();
    if (cq_agg_encode(&spec, again, &b) != 0) abort();
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) abort();
    cq_agg_state *sum = cq_agg_new(&spec);
    if (!sum || cq_agg_merge(&spec, sum, st) != 0 || cq_agg_merge(&spec, sum, again) != 0) abort();
    (void)cq_agg_final(&spec, sum);
    cq_agg_free(sum);
    cq_agg_free(again);
    cq_agg_free(st);
    qr_buf_fini(&a);
    qr_buf_fini(&b);
    return 0;
}

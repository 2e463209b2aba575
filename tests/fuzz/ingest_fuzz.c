/* ingest_fuzz — HTTP ingest bodies and config files from untrusted bytes. The first byte picks:
 * 0 /v1/ingest JSON, 1 NDJSON, 2 gzip or zstd (by magic) decompression, bounded, then JSON, 3 a
 * config file. Checks: no crash, no out-of-bounds read, no leak; accepted + failed never exceed the
 * element count; every emitted batch respects the decoded-size cut; the decompressor never
 * returns more than its bound. */
#include "server/config.h"
#include "server/ingest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int emit_check(void *ctx, qr_batch *b, qr_diag *d)
{
    size_t *events = ctx;
    *events += b->count;
    if (b->bytes > QR_BATCH_MAX_BYTES) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    int mode = data[0] & 3;
    data++;
    size--;
    qr_diag d;
    qr_diag_init(&d);
    if (mode == 3) {
        config c;
        config_init(&c);
        config_parse(&c, "fuzz.conf", (const char *)data, size, &d);
        config_fini(&c);
        return 0;
    }
    qr_buf plain;
    qr_buf_init(&plain);
    const uint8_t *body = data;
    size_t len = size;
    if (mode == 2) {
        const char *enc = size > 1 && data[0] == 0x28 && data[1] == 0xb5 ? "zstd" : "gzip";
        if (ingest_decompress(enc, 4, data, size, 1 << 20, &plain, &body, &len, &d) != 0) {
            qr_buf_fini(&plain);
            return 0;
        }
        if (len > (1 << 20)) abort();
    }
    size_t events = 0;
    ingest_result *r = calloc(1, sizeof *r);
    qr_batch b;
    qr_batch_init(&b);
    ingest_opts o = {1, 10000, 4096, emit_check, &events};
    if (mode == 1)
        ingest_decode_ndjson((const char *)body, len, &o, &b, r, &d);
    else
        ingest_decode_json((const char *)body, len, &o, &b, r, &d);
    if (r->accepted != events || r->error_count > INGEST_ERRORS_MAX) abort();
    qr_batch_fini(&b);
    free(r);
    qr_buf_fini(&plain);
    return 0;
}

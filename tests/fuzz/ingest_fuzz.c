/* ingest_fuzz — HTTP ingest bodies and config files from untrusted bytes. The first byte picks:
 * 0 /v1/ingest JSON, 1 NDJSON, 2 gzip or zstd (by magic) decompression, bounded, then JSON, 3 a
 * config file; with bit 2 set (4-7) the rest is the text of "logs" and /v1/ingest decodes it
 * twice: {"source": S, "logs": L} (the one-pass path when L is well-formed) and
 * {"logs": L, "source": S} (always the general path); the answers must be identical (status,
 * accepted, failed, every error's index and reason, every event byte for byte).
 * Checks: no crash, no out-of-bounds read, no leak; accepted + failed never exceed the
 * element count; every emitted batch respects the decoded-size cut; the decompressor never
 * returns more than its bound. */
#include "common/qr_json.h"
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

/* Every event of b, canonically (strings with their lengths, numbers exact). */
static int emit_canon(void *ctx, qr_batch *b, qr_diag *d)
{
    qr_buf *out = ctx;
    for (size_t idx = 0; idx < b->count; idx++) {
        const qr_event *e = &b->events[idx];
        qr_buf_append(out, &e->ts_ns, sizeof e->ts_ns);
        qr_buf_append(out, &e->ingest_ts_ns, sizeof e->ingest_ts_ns);
        qr_buf_u8(out, e->level);
        const qr_str strs[3] = {e->service, e->host, e->msg};
        for (int si = 0; si < 3; si++) {
            qr_buf_uvarint(out, strs[si].len);
            qr_buf_append(out, strs[si].ptr, strs[si].len);
        }
        qr_buf_uvarint(out, e->field_count);
        const qr_field *f = qr_event_fields(b, e);
        for (uint32_t fi = 0; fi < e->field_count; fi++) {
            qr_buf_uvarint(out, f[fi].key.len);
            qr_buf_append(out, f[fi].key.ptr, f[fi].key.len);
            qr_buf_u8(out, f[fi].type);
            if (f[fi].type == QR_FT_STRING) {
                qr_buf_uvarint(out, f[fi].v.s.len);
                qr_buf_append(out, f[fi].v.s.ptr, f[fi].v.s.len);
            } else if (f[fi].type == QR_FT_BOOL) {
                qr_buf_u8(out, f[fi].v.b);
            } else {
                qr_buf_append(out, &f[fi].v.i, sizeof f[fi].v.i);
            }
        }
    }
    return 0;
}

static const char FUZZ_SOURCE[] = "{\"service\":\"svc\",\"env\":\"prod\",\"m\":{\"k\":1}}";

/* Decodes {"source": S, "logs": L} (source_first) or {"logs": L, "source": S}. */
static int decode_order(const uint8_t *logs, size_t len, bool source_first, qr_buf *events,
                        ingest_result *r, qr_diag *d)
{
    qr_buf body;
    qr_buf_init(&body);
    const char *s1 = source_first ? "{\"source\":" : "{\"logs\":";
    qr_buf_append(&body, s1, strlen(s1));
    if (source_first) {
        qr_buf_append(&body, FUZZ_SOURCE, strlen(FUZZ_SOURCE));
        qr_buf_append(&body, ",\"logs\":", 8);
    }
    qr_buf_append(&body, logs, len);
    if (!source_first) {
        qr_buf_append(&body, ",\"source\":", 10);
        qr_buf_append(&body, FUZZ_SOURCE, strlen(FUZZ_SOURCE));
    }
    qr_buf_u8(&body, '}');
    qr_batch b;
    qr_batch_init(&b);
    qr_diag_init(d);
    ingest_opts o = {1, 10000, 1 << 20, emit_canon, events};
    int rc = ingest_decode_json((const char *)body.data, body.len, &o, &b, r, d);
    qr_batch_fini(&b);
    qr_buf_fini(&body);
    return rc;
}

static void check_orders_agree(const uint8_t *data, size_t size)
{
    /* only when L is one JSON value: otherwise it could hold members of its own (`[],
     * "source": null`) and the two bodies would mean different things */
    qr_arena a;
    qr_arena_init(&a, 0, 0);
    qr_json_doc doc;
    qr_json_doc_init(&doc, &a, NULL, 0);
    int prc = qr_json_parse(&doc, (const char *)data, size, NULL, NULL);
    qr_json_doc_fini(&doc);
    qr_arena_fini(&a);
    if (prc) return;
    ingest_result *r1 = calloc(1, sizeof *r1), *r2 = calloc(1, sizeof *r2);
    qr_buf e1, e2;
    qr_buf_init(&e1);
    qr_buf_init(&e2);
    qr_diag d1, d2;
    int rc1 = decode_order(data, size, true, &e1, r1, &d1);
    int rc2 = decode_order(data, size, false, &e2, r2, &d2);
    if (rc1 != rc2 || r1->accepted != r2->accepted || r1->failed != r2->failed ||
        r1->error_count != r2->error_count || e1.len != e2.len ||
        (e1.len && memcmp(e1.data, e2.data, e1.len) != 0))
        abort();
    if (rc1 != QR_ESYNTAX && strcmp(d1.msg, d2.msg) != 0) abort();
    for (size_t idx = 0; idx < r1->error_count; idx++)
        if (r1->errors[idx].index != r2->errors[idx].index ||
            strcmp(r1->errors[idx].reason, r2->errors[idx].reason) != 0)
            abort();
    qr_buf_fini(&e1);
    qr_buf_fini(&e2);
    free(r1);
    free(r2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    int mode = data[0] & 3;
    bool differential = data[0] & 4;
    data++;
    size--;
    if (differential) {
        check_orders_agree(data, size);
        return 0;
    }
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

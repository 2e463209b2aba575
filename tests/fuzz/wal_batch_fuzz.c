/* libFuzzer driver: qr_batch_decode on arbitrary bytes. Whatever decodes must re-encode and
 * decode again to the same events (the WAL relies on encode/decode being inverse). */
#include "storage/event.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int fields_equal(const qr_field *a, const qr_field *b)
{
    if (!qr_str_eq(a->key, b->key) || a->type != b->type) return 0;
    switch (a->type) {
    case QR_FT_STRING:
        return qr_str_eq(a->v.s, b->v.s);
    case QR_FT_INT:
        return a->v.i == b->v.i;
    case QR_FT_FLOAT:
        return memcmp(&a->v.f, &b->v.f, 8) == 0;
    case QR_FT_BOOL:
        return a->v.b == b->v.b;
    default:
        return 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qr_batch first, second;
    qr_batch_init(&first);
    qr_batch_init(&second);
    qr_diag d;
    qr_diag_init(&d);
    if (qr_batch_decode(data, size, &first, &d) == 0) {
        qr_buf buf;
        qr_buf_init(&buf);
        if (qr_batch_encode(&first, &buf) != 0) abort(); /* decoded means within limits */
        if (qr_batch_decode(buf.data, buf.len, &second, NULL) != 0) abort();
        if (first.count != second.count) abort();
        for (size_t row = 0; row < first.count; row++) {
            const qr_event *a = &first.events[row], *b = &second.events[row];
            if (a->ts_ns != b->ts_ns || a->ingest_ts_ns != b->ingest_ts_ns ||
                a->level != b->level || !qr_str_eq(a->service, b->service) ||
                !qr_str_eq(a->host, b->host) || !qr_str_eq(a->msg, b->msg) ||
                a->field_count != b->field_count)
                abort();
            for (uint32_t fi = 0; fi < a->field_count; fi++)
                if (!fields_equal(&qr_event_fields(&first, a)[fi],
                                  &qr_event_fields(&second, b)[fi]))
                    abort();
        }
        qr_buf_fini(&buf);
    } else if (d.code == 0) {
        abort(); /* a failure always says why */
    }
    qr_batch_fini(&first);
    qr_batch_fini(&second);
    return 0;
}

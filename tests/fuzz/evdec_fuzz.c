/* evdec_fuzz — the first byte picks the format (even: NDJSON, odd: text); the rest is split
 * into lines, each decoded into one batch. Checks: no crash or out-of-bounds read; a failed
 * line leaves count, fields and bytes unchanged; every decoded string is valid UTF-8 and
 * within the event.h limits; the batch survives the WAL encoding round trip. */
#include "common/qr_json.h"
#include "storage/evdec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_str(qr_str s, size_t max)
{
    if (s.len > max || !qr_json_utf8_valid(s.ptr, s.len)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    bool text_format = data[0] & 1;
    data++;
    size--;
    /* batches persist across runs (reset each time): their first allocations are large, and
     * paying them per input would cut the fuzzer's speed tenfold */
    static qr_batch b, back;
    static bool batches_ready;
    if (!batches_ready) {
        qr_batch_init(&b);
        qr_batch_init(&back);
        batches_ready = true;
    }
    qr_batch_reset(&b);
    qr_batch_reset(&back);
    evdec_opts opts = {"fuzz", NULL, 1750000000000000000LL};
    size_t start = 0;
    while (start <= size) {
        const uint8_t *nl = memchr(data + start, '\n', size - start);
        size_t end = nl ? (size_t)(nl - data) : size;
        size_t len = end - start;
        char *line = malloc(len ? len : 1); /* exact size: ASan sees over-reads */
        if (len) memcpy(line, data + start, len);
        size_t count = b.count, fields = b.field_count, bytes = b.bytes;
        qr_diag d;
        qr_diag_init(&d);
        int rc = text_format ? evdec_text_line(line, len, &opts, &b, &d)
                             : evdec_ndjson_line(line, len, &opts, &b, &d);
        if (rc != 0 &&
            (b.count != count || b.field_count != fields || b.bytes != bytes || d.code != rc))
            abort();
        if (rc == 0 && b.count > count + 1) abort();
        free(line);
        start = end + 1;
    }
    for (size_t row = 0; row < b.count; row++) {
        const qr_event *e = &b.events[row];
        if (e->level >= QR_LEVEL_COUNT || e->field_count > QR_FIELDS_MAX) abort();
        check_str(e->msg, QR_MSG_MAX_BYTES);
        check_str(e->service, QR_LABEL_MAX_BYTES);
        check_str(e->host, QR_LABEL_MAX_BYTES);
        /* qr_event_fields is b->fields + off: NULL + 0 is UB before any field exists */
        const qr_field *f = e->field_count ? qr_event_fields(&b, e) : NULL;
        for (uint32_t fi = 0; fi < e->field_count; fi++) {
            check_str(f[fi].key, QR_KEY_MAX_BYTES);
            if (f[fi].type == QR_FT_STRING) check_str(f[fi].v.s, QR_MSG_MAX_BYTES);
        }
    }
    qr_buf enc;
    qr_buf_init(&enc);
    if (qr_batch_encode(&b, &enc) != 0) abort();
    qr_diag d;
    qr_diag_init(&d);
    if (qr_batch_decode(enc.data, enc.len, &back, &d) != 0 || back.count != b.count ||
        back.field_count != b.field_count)
        abort();
    qr_buf_fini(&enc);
    return 0;
}

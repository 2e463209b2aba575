/* json_fuzz — qr_json_parse on arbitrary bytes must never crash or read out of bounds; a
 * successful parse must write back to JSON that parses again to the same text (round trip),
 * every string must be valid UTF-8, and errors must carry an offset within the input. */
#include "common/qr_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_strings(const qr_json_val *v, size_t count)
{
    for (size_t idx = 0; idx < count; idx++)
        if (v[idx].type == QR_JSON_STRING && !qr_json_utf8_valid(v[idx].u.str, v[idx].len)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* own copy of exactly `size` bytes: ASan flags any read past the end */
    char *text = malloc(size ? size : 1);
    if (size) memcpy(text, data, size);
    qr_arena arena;
    qr_arena_init(&arena, 4096, 0);
    qr_json_val storage[16];
    qr_json_doc doc;
    qr_json_doc_init(&doc, &arena, storage, 16);
    qr_json_opts opts = {32, 0};
    qr_diag d;
    qr_diag_init(&d);
    int rc = qr_json_parse(&doc, text, size, &opts, &d);
    if (rc != 0) {
        if (d.code != rc || d.offset < 0 || (size_t)d.offset > size || !d.msg[0]) abort();
    } else {
        const qr_json_val *root = qr_json_root(&doc);
        if (root->skip != doc.count) abort();
        check_strings(doc.vals, doc.count);
        qr_buf once, twice;
        qr_buf_init(&once);
        qr_buf_init(&twice);
        if (qr_json_write(root, &once) != 0) abort();
        qr_json_doc doc2;
        qr_json_doc_init(&doc2, &arena, NULL, 0);
        if (qr_json_parse(&doc2, (const char *)once.data, once.len, &opts, NULL) != 0) abort();
        if (doc2.count != doc.count) abort();
        qr_json_write(qr_json_root(&doc2), &twice);
        if (once.len != twice.len || memcmp(once.data, twice.data, once.len) != 0) abort();
        qr_json_doc_fini(&doc2);
        qr_buf_fini(&once);
        qr_buf_fini(&twice);
    }
    qr_json_doc_fini(&doc);
    qr_arena_fini(&arena);
    free(text);
    return 0;
}

/* ingest — request bodies to event batches (contract in ingest.h).
 *
 * /v1/ingest parses the whole body once with qr_json (tape DOM), then hands each element of
 * `logs` to evdec_json_object: the same decoder as NDJSON lines (every alias and limit in
 * evdec.c), over the already parsed object — each event is parsed once, not twice (the
 * second parse cost ~300 ns per event, ~8 % of the server's CPU per event). */
#include "server/ingest.h"

#include "common/qr_json.h"
#include "storage/evdec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>
#include <zstd.h>

#define CUT_BYTES_DEFAULT (8u * 1024 * 1024)

/* ---- decompression ---- */

static int inflate_bounded(const uint8_t *in, size_t len, size_t max_out, qr_buf *out, qr_diag *d)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 32) != Z_OK) /* +32: gzip or zlib header, detected */
        return qr_diag_set(d, QR_ENOMEM, "cannot start gzip decoder");
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)(len > UINT32_MAX ? UINT32_MAX : len);
    size_t in_left = len - z.avail_in;
    int rc = 0;
    for (;;) {
        if (!qr_buf_reserve(out, 256 * 1024)) {
            rc = qr_diag_set(d, QR_ENOMEM, "out of memory decompressing the body");
            break;
        }
        size_t room = out->cap - out->len;
        z.next_out = out->data + out->len;
        z.avail_out = (uInt)(room > UINT32_MAX ? UINT32_MAX : room);
        size_t before = z.avail_out;
        int zr = inflate(&z, Z_NO_FLUSH);
        out->len += before - z.avail_out;
        if (out->len > max_out) {
            rc = qr_diag_set(d, QR_ELIMIT, "decompressed body is over the limit of %zu bytes",
                             max_out);
            break;
        }
        if (z.avail_in == 0 && in_left) {
            z.avail_in = (uInt)(in_left > UINT32_MAX ? UINT32_MAX : in_left);
            in_left -= z.avail_in;
        }
        if (zr == Z_STREAM_END) {
            if (z.avail_in == 0 && in_left == 0) break;
            if (inflateReset(&z) != Z_OK) { /* concatenated gzip members */
                rc = qr_diag_set(d, QR_ECORRUPT, "gzip: cannot continue after a member");
                break;
            }
            continue;
        }
        if (zr == Z_BUF_ERROR && z.avail_in == 0 && in_left == 0) {
            rc = qr_diag_set(d, QR_ECORRUPT, "gzip body is truncated");
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rc = qr_diag_set(d, QR_ECORRUPT, "gzip body is damaged: %s",
                             z.msg ? z.msg : "inflate failed");
            break;
        }
    }
    inflateEnd(&z);
    return rc;
}

static int zstd_bounded(const uint8_t *in, size_t len, size_t max_out, qr_buf *out, qr_diag *d)
{
    ZSTD_DStream *ds = ZSTD_createDStream();
    if (!ds) return qr_diag_set(d, QR_ENOMEM, "cannot start zstd decoder");
    ZSTD_DCtx_setParameter(ds, ZSTD_d_windowLogMax, 27); /* refuse 2 GiB windows from clients */
    ZSTD_inBuffer ib = {in, len, 0};
    int rc = 0;
    size_t last = 1;
    while (ib.pos < ib.size || last != 0) {
        if (!qr_buf_reserve(out, 256 * 1024)) {
            rc = qr_diag_set(d, QR_ENOMEM, "out of memory decompressing the body");
            break;
        }
        ZSTD_outBuffer ob = {out->data + out->len, out->cap - out->len, 0};
        size_t in_before = ib.pos;
        last = ZSTD_decompressStream(ds, &ob, &ib);
        out->len += ob.pos;
        if (ZSTD_isError(last)) {
            rc = qr_diag_set(d, QR_ECORRUPT, "zstd body is damaged: %s", ZSTD_getErrorName(last));
            break;
        }
        if (out->len > max_out) {
            rc = qr_diag_set(d, QR_ELIMIT, "decompressed body is over the limit of %zu bytes",
                             max_out);
            break;
        }
        if (ib.pos == ib.size && ob.pos == 0 && ib.pos == in_before && last != 0) {
            rc = qr_diag_set(d, QR_ECORRUPT, "zstd body is truncated");
            break;
        }
    }
    ZSTD_freeDStream(ds);
    return rc;
}

int ingest_decompress(const char *encoding, size_t encoding_len, const uint8_t *body, size_t len,
                      size_t max_out, qr_buf *out, const uint8_t **data, size_t *data_len,
                      qr_diag *d)
{
    while (encoding_len && (encoding[encoding_len - 1] == ' ')) encoding_len--;
    while (encoding_len && *encoding == ' ') encoding++, encoding_len--;
#define ENC_IS(s) (encoding_len == sizeof(s) - 1 && strncasecmp(encoding, s, encoding_len) == 0)
    int rc;
    if (!encoding || encoding_len == 0 || ENC_IS("identity")) {
        if (len > max_out)
            return qr_diag_set(d, QR_ELIMIT, "body is over the limit of %zu bytes", max_out);
        *data = body;
        *data_len = len;
        return 0;
    }
    if (ENC_IS("gzip") || ENC_IS("x-gzip") || ENC_IS("deflate"))
        rc = inflate_bounded(body, len, max_out, out, d);
    else if (ENC_IS("zstd"))
        rc = zstd_bounded(body, len, max_out, out, d);
    else
        return qr_diag_set(d, QR_EINVAL,
                           "Content-Encoding \"%.*s\" is not supported (gzip, deflate, zstd)",
                           (int)(encoding_len > 40 ? 40 : encoding_len), encoding);
#undef ENC_IS
    if (rc) return rc;
    *data = out->data ? out->data : (const uint8_t *)"";
    *data_len = out->len;
    return 0;
}

/* ---- shared ---- */

static void note_error(ingest_result *res, uint64_t index, const qr_diag *dd)
{
    res->failed++;
    if (res->error_count < INGEST_ERRORS_MAX) {
        ingest_error *e = &res->errors[res->error_count++];
        e->index = index;
        snprintf(e->reason, sizeof e->reason, "%s", dd->msg[0] ? dd->msg : qr_strerror(dd->code));
    }
}

static int emit_batch(const ingest_opts *o, qr_batch *b, ingest_result *res, qr_diag *d)
{
    if (b->count == 0) return 0;
    size_t count = b->count, bytes = b->bytes;
    int rc = o->emit(o->emit_ctx, b, d);
    if (rc) return rc;
    res->accepted += count;
    res->decoded_bytes += bytes;
    qr_batch_reset(b);
    return 0;
}

/* ---- /v1/ingest ---- */

typedef struct src_field {
    const char *key; /* NUL-terminated, in fields_text */
    size_t key_len;
    qr_field_type type;
    int64_t i;
    double f;
    bool b;
    const char *s;
    size_t s_len;
} src_field;

typedef struct source_info {
    char service[QR_LABEL_MAX_BYTES + 1];
    char host[QR_LABEL_MAX_BYTES + 1];
    bool has_service, has_host;
    src_field fields[QR_FIELDS_MAX];
    size_t field_count;
    qr_buf text; /* keys and array texts */
    size_t key_offs[QR_FIELDS_MAX], str_offs[QR_FIELDS_MAX];
} source_info;

static int source_add(source_info *si, const char *prefix, size_t plen, const qr_json_val *k,
                      const qr_json_val *v, qr_diag *d)
{
    if (v->type == QR_JSON_NULL) return 0;
    size_t klen = plen ? plen + 1 + k->len : k->len;
    if (klen > QR_KEY_MAX_BYTES)
        return qr_diag_set(d, QR_EINVAL, "source key \"%.*s\" is over the limit of %d bytes",
                           (int)(k->len > 40 ? 40 : k->len), k->u.str, QR_KEY_MAX_BYTES);
    char key[QR_KEY_MAX_BYTES + 1];
    if (plen) {
        memcpy(key, prefix, plen);
        key[plen] = '.';
        memcpy(key + plen + 1, k->u.str, k->len);
    } else {
        memcpy(key, k->u.str, k->len);
    }
    key[klen] = '\0';
    if (v->type == QR_JSON_OBJECT) {
        const qr_json_val *mk = qr_json_first(v);
        for (uint32_t member_idx = 0; member_idx < v->len; member_idx++) {
            int rc = source_add(si, key, klen, mk, mk + 1, d);
            if (rc) return rc;
            mk = qr_json_next(mk + 1);
        }
        return 0;
    }
    if (si->field_count == QR_FIELDS_MAX)
        return qr_diag_set(d, QR_EINVAL, "source has more than %d fields", QR_FIELDS_MAX);
    size_t idx = si->field_count++;
    src_field *f = &si->fields[idx];
    memset(f, 0, sizeof *f);
    si->key_offs[idx] = si->text.len;
    qr_buf_append(&si->text, key, klen + 1);
    f->key_len = klen;
    si->str_offs[idx] = SIZE_MAX;
    switch (v->type) {
    case QR_JSON_TRUE:
    case QR_JSON_FALSE:
        f->type = QR_FT_BOOL;
        f->b = v->type == QR_JSON_TRUE;
        break;
    case QR_JSON_INT:
        f->type = QR_FT_INT;
        f->i = v->u.i;
        break;
    case QR_JSON_FLOAT:
        f->type = QR_FT_FLOAT;
        f->f = v->u.f;
        break;
    case QR_JSON_STRING:
        f->type = QR_FT_STRING;
        si->str_offs[idx] = si->text.len;
        qr_buf_append(&si->text, v->u.str, v->len);
        f->s_len = v->len;
        break;
    default: { /* array: compact JSON text */
        f->type = QR_FT_STRING;
        si->str_offs[idx] = si->text.len;
        size_t before = si->text.len;
        if (qr_json_write(v, &si->text)) return QR_ENOMEM;
        f->s_len = si->text.len - before;
        break;
    }
    }
    if (f->type == QR_FT_STRING && f->s_len > QR_MSG_MAX_BYTES)
        return qr_diag_set(d, QR_EINVAL, "source value of \"%s\" is over the limit of %d bytes",
                           key, QR_MSG_MAX_BYTES);
    return qr_buf_ok(&si->text) ? 0 : QR_ENOMEM;
}

static int source_label(const qr_json_val *v, const char *what, char *out, bool *has, qr_diag *d)
{
    if (v->type != QR_JSON_STRING)
        return qr_diag_set(d, QR_EINVAL, "source.%s must be a string", what);
    if (v->len > QR_LABEL_MAX_BYTES)
        return qr_diag_set(d, QR_EINVAL, "source.%s is over the limit of %d bytes", what,
                           QR_LABEL_MAX_BYTES);
    memcpy(out, v->u.str, v->len);
    out[v->len] = '\0';
    if (memchr(out, '\0', v->len))
        return qr_diag_set(d, QR_EINVAL, "source.%s contains a NUL character", what);
    *has = true;
    return 0;
}

static int source_parse(source_info *si, const qr_json_val *src, qr_diag *d)
{
    if (src->type != QR_JSON_OBJECT)
        return qr_diag_set(d, QR_EINVAL, "\"source\" must be an object");
    const qr_json_val *k = qr_json_first(src);
    for (uint32_t member_idx = 0; member_idx < src->len; member_idx++) {
        const qr_json_val *v = k + 1;
        int rc = 0;
        if (k->len == 7 && memcmp(k->u.str, "service", 7) == 0 && v->type != QR_JSON_NULL)
            rc = source_label(v, "service", si->service, &si->has_service, d);
        else if (k->len == 4 && memcmp(k->u.str, "host", 4) == 0 && v->type != QR_JSON_NULL)
            rc = source_label(v, "host", si->host, &si->has_host, d);
        else
            rc = source_add(si, NULL, 0, k, v, d);
        if (rc) return rc;
        k = qr_json_next(v);
    }
    const char *base = (const char *)si->text.data;
    for (size_t idx = 0; idx < si->field_count; idx++) {
        si->fields[idx].key = base + si->key_offs[idx];
        if (si->str_offs[idx] != SIZE_MAX) si->fields[idx].s = base + si->str_offs[idx];
    }
    return 0;
}

/* Adds the source fields the last event of b lacks. */
static int source_apply(const source_info *si, qr_batch *b, qr_diag *d)
{
    if (!si->field_count) return 0;
    qr_event *e = &b->events[b->count - 1];
    uint32_t own = e->field_count;
    for (size_t idx = 0; idx < si->field_count; idx++) {
        const src_field *sf = &si->fields[idx];
        bool present = false;
        const qr_field *ef = qr_event_fields(b, e);
        for (uint32_t fi = 0; fi < own && !present; fi++)
            present =
                ef[fi].key.len == sf->key_len && memcmp(ef[fi].key.ptr, sf->key, sf->key_len) == 0;
        if (present) continue;
        qr_field f;
        memset(&f, 0, sizeof f);
        f.key = qr_batch_str(b, sf->key, sf->key_len);
        f.type = (uint8_t)sf->type;
        switch (sf->type) {
        case QR_FT_INT:
            f.v.i = sf->i;
            break;
        case QR_FT_FLOAT:
            f.v.f = sf->f;
            break;
        case QR_FT_BOOL:
            f.v.b = sf->b;
            break;
        default:
            f.v.s = qr_batch_str(b, sf->s, sf->s_len);
            break;
        }
        if (!f.key.len || (sf->type == QR_FT_STRING && sf->s_len && !f.v.s.len))
            return qr_diag_set(d, QR_ENOMEM, "out of memory adding source fields");
        int rc = qr_batch_add_field(b, &f);
        if (rc == QR_ELIMIT)
            return qr_diag_set(d, QR_ELIMIT,
                               "event has more than %d fields with the source's (the limit)",
                               QR_FIELDS_MAX);
        if (rc) return qr_diag_set(d, rc, "out of memory adding source fields");
        /* e may have moved? no: fields live in their own array; events are not pushed here */
    }
    return 0;
}

int ingest_decode_json(const char *body, size_t len, const ingest_opts *opts, qr_batch *b,
                       ingest_result *res, qr_diag *d)
{
    size_t cut = opts->cut_bytes ? opts->cut_bytes : CUT_BYTES_DEFAULT;
    qr_arena arena;
    qr_arena_init(&arena, 64 * 1024, 0);
    qr_json_doc doc;
    qr_json_doc_init(&doc, &arena, NULL, 0);
    source_info *si = NULL;
    qr_json_opts jo = {QR_JSON_DEPTH_DEFAULT, len + 1};
    int rc = qr_json_parse(&doc, body, len, &jo, d);
    if (rc == QR_ELIMIT) rc = QR_ESYNTAX; /* only nesting depth can hit a limit here */
    if (rc) goto out;
    const qr_json_val *root = qr_json_root(&doc);
    if (root->type != QR_JSON_OBJECT) {
        rc = qr_diag_set(d, QR_EINVAL,
                         "the body must be a JSON object {\"source\": {...}, "
                         "\"logs\": [...]}");
        goto out;
    }
    const qr_json_val *logs = qr_json_obj_get(root, "logs", 4);
    if (!logs || logs->type != QR_JSON_ARRAY) {
        rc = qr_diag_set(d, QR_EINVAL, "\"logs\" must be an array of events");
        goto out;
    }
    if (opts->max_events && logs->len > opts->max_events) {
        rc = qr_diag_set(d, QR_ELIMIT, "%u events in one request; the limit is %u", logs->len,
                         opts->max_events);
        goto out;
    }
    si = calloc(1, sizeof *si);
    if (!si) {
        rc = qr_diag_set(d, QR_ENOMEM, "out of memory");
        goto out;
    }
    qr_buf_init(&si->text);
    const qr_json_val *src = qr_json_obj_get(root, "source", 6);
    if (src && src->type != QR_JSON_NULL) {
        rc = source_parse(si, src, d);
        if (rc) goto out;
    }
    evdec_opts eo = {si->has_service ? si->service : NULL, si->has_host ? si->host : NULL,
                     opts->now_ns};
    const qr_json_val *ev = logs->len ? qr_json_first(logs) : NULL;
    for (uint32_t ev_idx = 0; ev_idx < logs->len; ev_idx++, ev = qr_json_next(ev)) {
        qr_diag ed;
        qr_diag_init(&ed);
        size_t bytes_before = b->bytes;
        int erc;
        if (ev->type == QR_JSON_OBJECT) {
            erc = evdec_json_object(ev, &eo, b, &ed);
            if (erc == 0) {
                erc = source_apply(si, b, &ed);
                if (erc) {
                    qr_batch_pop(b);
                    b->bytes = bytes_before;
                }
            }
        } else if (ev->type == QR_JSON_STRING) {
            size_t count_before = b->count;
            erc = evdec_text_line(ev->u.str, ev->len, &eo, b, &ed);
            if (erc == 0 && b->count == count_before)
                erc = qr_diag_set(&ed, QR_EINVAL, "an empty log line");
            else if (erc == 0) {
                erc = source_apply(si, b, &ed);
                if (erc) {
                    qr_batch_pop(b);
                    b->bytes = bytes_before;
                }
            }
        } else {
            erc = qr_diag_set(&ed, QR_EINVAL,
                              "an event must be a JSON object (or a string), "
                              "not %s",
                              ev->type == QR_JSON_ARRAY                              ? "an array"
                              : ev->type == QR_JSON_NULL                             ? "null"
                              : ev->type == QR_JSON_INT || ev->type == QR_JSON_FLOAT ? "a number"
                                                                                     : "a boolean");
        }
        if (erc == QR_ENOMEM) {
            rc = qr_diag_set(d, QR_ENOMEM, "out of memory decoding events");
            goto out;
        }
        if (erc) {
            note_error(res, ev_idx, &ed);
            continue;
        }
        if (b->bytes >= cut) {
            rc = emit_batch(opts, b, res, d);
            if (rc) goto out;
        }
    }
    rc = emit_batch(opts, b, res, d);
out:
    if (si) qr_buf_fini(&si->text);
    free(si);
    qr_json_doc_fini(&doc);
    qr_arena_fini(&arena);
    return rc;
}

/* ---- /v1/ingest/ndjson ---- */

int ingest_decode_ndjson(const char *body, size_t len, const ingest_opts *opts, qr_batch *b,
                         ingest_result *res, qr_diag *d)
{
    size_t cut = opts->cut_bytes ? opts->cut_bytes : CUT_BYTES_DEFAULT;
    if (opts->max_events) {
        uint64_t lines = 0;
        const char *p = body, *end = body + len;
        while (p < end && (p = memchr(p, '\n', (size_t)(end - p)))) {
            lines++;
            p++;
        }
        if (len && body[len - 1] != '\n') lines++;
        if (lines > opts->max_events)
            return qr_diag_set(d, QR_ELIMIT, "%llu lines in one request; the limit is %u",
                               (unsigned long long)lines, opts->max_events);
    }
    evdec_opts eo = {NULL, NULL, opts->now_ns};
    uint64_t line_no = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *line = body + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        line_no++;
        if (n && line[n - 1] == '\r') n--;
        qr_diag ed;
        qr_diag_init(&ed);
        int erc = evdec_ndjson_line(line, n, &eo, b, &ed);
        if (erc == QR_ENOMEM) return qr_diag_set(d, QR_ENOMEM, "out of memory decoding events");
        if (erc) {
            note_error(res, line_no, &ed);
            continue;
        }
        if (b->bytes >= cut) {
            int rc = emit_batch(opts, b, res, d);
            if (rc) return rc;
        }
    }
    return emit_batch(opts, b, res, d);
}

/* ingest — request bodies to event batches (contract in ingest.h).
 *
 * /v1/ingest, the usual body ({"source": {...}, "logs": [...]}, source first or absent):
 * one pass over the bytes (decode_json_stream). The top-level object is walked by hand; each
 * element of `logs` is parsed on its own (qr_json_parse_at) into a small stack tape whose
 * decoded strings land in the batch's arena, and handed at once to evdec — the same decoder
 * as NDJSON lines (every alias and limit in evdec.c) — which copies the event's text into the
 * batch once. No tape of the whole body (~30 B per JSON value, ~0.8 MB per 1,000 events,
 * written then read back from memory) and no copy per string.
 * Anything else (malformed JSON, wrong shapes, "source" after "logs", over the limits) falls
 * back, before anything is emitted, to the general path (decode_json_tree: the whole body
 * into one tape, then evdec_json_object per element), which reports every error as before. */
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

/* One element of logs into b; a rejected element is noted in res. ev was parsed with the
 * batch's arena (same_arena: decoded strings already in b) or another one. Returns 0 or
 * QR_ENOMEM (d filled). */
static int decode_element(const qr_json_val *ev, bool same_arena, uint64_t ev_idx,
                          const source_info *si, const evdec_opts *eo, qr_batch *b,
                          ingest_result *res, qr_diag *d)
{
    qr_diag ed; /* as qr_diag_init, without clearing all 512 message bytes per event */
    ed.code = 0;
    ed.offset = -1;
    ed.line = ed.column = 0;
    ed.index = -1;
    ed.msg[0] = '\0';
    size_t bytes_before = b->bytes;
    int erc;
    if (ev->type == QR_JSON_OBJECT) {
        erc = same_arena ? evdec_json_object_same_arena(ev, eo, b, &ed)
                         : evdec_json_object(ev, eo, b, &ed);
        if (erc == 0) {
            erc = source_apply(si, b, &ed);
            if (erc) {
                qr_batch_pop(b);
                b->bytes = bytes_before;
            }
        }
    } else if (ev->type == QR_JSON_STRING) {
        size_t count_before = b->count;
        erc = evdec_text_line(ev->u.str, ev->len, eo, b, &ed);
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
    if (erc == QR_ENOMEM) return qr_diag_set(d, QR_ENOMEM, "out of memory decoding events");
    if (erc) note_error(res, ev_idx, &ed);
    return 0;
}

/* The general path: the whole body parsed into one tape, then each element of logs decoded
 * from it. Handles every shape and reports every error (see ingest.h). */
static int decode_json_tree(const char *body, size_t len, const ingest_opts *opts, qr_batch *b,
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
        rc = decode_element(ev, false, ev_idx, si, &eo, b, res, d);
        if (rc) goto out;
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

/* ---- the one-pass path for the usual body ---- */

#define STREAM_FALLBACK 1      /* not a QR_E* code: "take the general path" */
#define STREAM_TAPE_INLINE 256 /* tape nodes of one event kept on the stack */

static size_t skip_ws(const char *p, size_t len, size_t pos)
{
    while (pos < len && (p[pos] == ' ' || p[pos] == '\t' || p[pos] == '\n' || p[pos] == '\r'))
        pos++;
    return pos;
}

/* The usual body in one pass: {"source": {...} (optional, before "logs"), "logs": [...]},
 * each element parsed on its own into a small stack tape whose strings go straight into the
 * batch's arena, then decoded at once (no tape of the whole body, one copy of each event's
 * text). Nothing is emitted before the closing brace, so anything this path does not handle
 * the way decode_json_tree does — malformed JSON, a wrong shape, "source" after "logs", more
 * than max_events or cut_bytes of events — returns STREAM_FALLBACK with b and res untouched
 * as far as the caller can tell (it resets them) and no diag, and the general path then
 * gives the answer (and the exact error) it always gave. */
static int decode_json_stream(const char *body, size_t len, const ingest_opts *opts, qr_batch *b,
                              ingest_result *res, qr_diag *d)
{
    size_t cut = opts->cut_bytes ? opts->cut_bytes : CUT_BYTES_DEFAULT;
    size_t pos = len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    pos = skip_ws(body, len, pos);
    if (pos >= len || body[pos] != '{') return STREAM_FALLBACK;
    pos++;
    qr_arena arena;
    qr_arena_init(&arena, 16 * 1024, 0);
    qr_json_doc side; /* keys, source and members that are not events */
    qr_json_doc_init(&side, &arena, NULL, 0);
    qr_json_val tape[STREAM_TAPE_INLINE];
    qr_json_doc evdoc; /* one event at a time; its decoded strings go into the batch */
    qr_json_doc_init(&evdoc, &b->arena, tape, STREAM_TAPE_INLINE);
    qr_json_opts jo = {QR_JSON_DEPTH_DEFAULT, len + 1};
    source_info *si = calloc(1, sizeof *si);
    if (!si) {
        qr_json_doc_fini(&side);
        qr_json_doc_fini(&evdoc);
        qr_arena_fini(&arena);
        return qr_diag_set(d, QR_ENOMEM, "out of memory");
    }
    qr_buf_init(&si->text);
    bool seen_source = false, seen_logs = false;
    int rc = STREAM_FALLBACK;
    pos = skip_ws(body, len, pos);
    if (pos < len && body[pos] == '}') goto out; /* no "logs": the general path says so */
    for (;;) {
        qr_diag pd; /* parse errors are the general path's to report */
        qr_diag_init(&pd);
        if (pos >= len || body[pos] != '"') goto out;
        if (qr_json_parse_at(&side, body, len, pos, 1, &jo, &pos, &pd)) goto out;
        const qr_json_val *key = qr_json_root(&side);
        bool is_logs = key->len == 4 && memcmp(key->u.str, "logs", 4) == 0;
        bool is_source = key->len == 6 && memcmp(key->u.str, "source", 6) == 0;
        pos = skip_ws(body, len, pos);
        if (pos >= len || body[pos] != ':') goto out;
        pos = skip_ws(body, len, pos + 1);
        if (is_source && !seen_source) {
            if (seen_logs) goto out; /* the events needed it: decode them again */
            seen_source = true;
            if (qr_json_parse_at(&side, body, len, pos, 1, &jo, &pos, &pd)) goto out;
            const qr_json_val *src = qr_json_root(&side);
            if (src->type != QR_JSON_NULL) {
                qr_diag sd;
                qr_diag_init(&sd);
                if (source_parse(si, src, &sd)) goto out;
            }
        } else if (is_logs && !seen_logs) {
            seen_logs = true;
            if (pos >= len || body[pos] != '[') goto out;
            evdec_opts eo = {si->has_service ? si->service : NULL, si->has_host ? si->host : NULL,
                             opts->now_ns};
            pos = skip_ws(body, len, pos + 1);
            bool empty = pos < len && body[pos] == ']';
            if (empty) pos++;
            for (uint64_t ev_idx = 0; !empty; ev_idx++) {
                if (opts->max_events && ev_idx >= opts->max_events) goto out;
                if (pos >= len) goto out;
                bool own = body[pos] == '{' || body[pos] == '"';
                qr_json_doc *doc = own ? &evdoc : &side;
                if (qr_json_parse_at(doc, body, len, pos, 2, &jo, &pos, &pd)) goto out;
                int erc = decode_element(qr_json_root(doc), own, ev_idx, si, &eo, b, res, d);
                if (erc) {
                    rc = erc;
                    goto out;
                }
                if (b->bytes >= cut) goto out; /* the general path emits in several batches */
                pos = skip_ws(body, len, pos);
                if (pos < len && body[pos] == ',') {
                    pos = skip_ws(body, len, pos + 1);
                    continue;
                }
                if (pos < len && body[pos] == ']') {
                    pos++;
                    break;
                }
                goto out;
            }
        } else { /* another member, or a repeated one (the first counts): check and skip */
            if (qr_json_parse_at(&side, body, len, pos, 1, &jo, &pos, &pd)) goto out;
        }
        pos = skip_ws(body, len, pos);
        if (pos < len && body[pos] == ',') {
            pos = skip_ws(body, len, pos + 1);
            continue;
        }
        if (pos < len && body[pos] == '}') {
            pos++;
            break;
        }
        goto out;
    }
    if (skip_ws(body, len, pos) != len || !seen_logs) goto out;
    rc = emit_batch(opts, b, res, d);
out:
    qr_buf_fini(&si->text);
    free(si);
    qr_json_doc_fini(&side);
    qr_json_doc_fini(&evdoc);
    qr_arena_fini(&arena);
    return rc;
}

int ingest_decode_json(const char *body, size_t len, const ingest_opts *opts, qr_batch *b,
                       ingest_result *res, qr_diag *d)
{
    size_t count_before = b->count, bytes_before = b->bytes;
    ingest_result res_before = *res;
    int rc = decode_json_stream(body, len, opts, b, res, d);
    if (rc != STREAM_FALLBACK) return rc;
    /* nothing was emitted: start over on the general path */
    if (count_before == 0 && bytes_before == 0) {
        qr_batch_reset(b);
    } else {
        while (b->count > count_before) qr_batch_pop(b);
        b->bytes = bytes_before;
    }
    *res = res_before;
    return decode_json_tree(body, len, opts, b, res, d);
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

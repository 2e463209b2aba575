/* cursor — the opaque next_cursor of a row query: where a page ended, as text.
 *
 * A page ends after a row; the next page starts right after it in the query's order. Physical
 * row locations (part, row id) do not survive a memtable flush or later snapshots, so the
 * cursor holds the ORDER BY key values of the last row returned, plus how many rows with
 * exactly those keys were returned so far (ties are ordered by location, and a tie group keeps
 * its relative order across flushes: segments sort by ts stably). The next page keeps rows
 * whose keys come after the cursor's, and rows with equal keys minus the first `skip` of them.
 * With ORDER BY ts the cursor's ts also narrows the scan's time range, so paging newest-first
 * through data that keeps growing at the new end reads only the blocks of the page.
 *
 * Bytes (then base64url, no padding):
 *   u8 version (1) | u64 query hash (xxh3 of the query text) | svarint now_ns (now() of the
 *   first page, so `ts > now() - 1h` means the same window on every page) | uvarint key_count |
 *   key_count x (u8 exec_type, value: nothing for NULL, u8 for BOOL, u64 bits for FLOAT,
 *   uvarint length + bytes for STRING, svarint otherwise) | uvarint skip |
 *   u32 checksum (xxh3 of everything before it)
 * A cursor from another query (hash differs), a damaged one (checksum, lengths) or one whose
 * key count does not fit the query is rejected with QR_EINVAL and a message saying which. */
#include "engine/exec_int.h"

#include <string.h>

#define CURSOR_VERSION 1

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void b64url_encode(const uint8_t *in, size_t n, qr_buf *out)
{
    for (size_t idx = 0; idx < n; idx += 3) {
        uint32_t v = (uint32_t)in[idx] << 16;
        size_t left = n - idx;
        if (left > 1) v |= (uint32_t)in[idx + 1] << 8;
        if (left > 2) v |= in[idx + 2];
        char quad[4] = {b64_alphabet[v >> 18 & 63], b64_alphabet[v >> 12 & 63],
                        b64_alphabet[v >> 6 & 63], b64_alphabet[v & 63]};
        qr_buf_append(out, quad, left > 2 ? 4 : left + 1);
    }
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

static bool b64url_decode(const char *s, size_t n, qr_buf *out)
{
    if (n % 4 == 1) return false;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t idx = 0; idx < n; idx++) {
        int v = b64_value(s[idx]);
        if (v < 0) return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            qr_buf_u8(out, (uint8_t)(acc >> bits));
        }
    }
    return qr_buf_ok(out);
}

int cursor_encode(exec_ctx *q, const exec_cursor *c, const char **out)
{
    qr_buf b, text;
    qr_buf_init(&b);
    qr_buf_init(&text);
    qr_buf_u8(&b, CURSOR_VERSION);
    qr_buf_u64(&b, c->query_hash);
    qr_buf_svarint(&b, c->now_ns);
    qr_buf_uvarint(&b, c->key_count);
    for (uint32_t k = 0; k < c->key_count; k++) {
        const exec_value *v = &c->keys[k];
        qr_buf_u8(&b, v->type);
        switch (v->type) {
        case EXEC_NULL:
            break;
        case EXEC_BOOL:
            qr_buf_u8(&b, v->v.b);
            break;
        case EXEC_FLOAT: {
            uint64_t bits;
            memcpy(&bits, &v->v.f, 8);
            qr_buf_u64(&b, bits);
            break;
        }
        case EXEC_STRING:
            qr_buf_bytes(&b, v->v.s.ptr, v->v.s.len);
            break;
        default:
            qr_buf_svarint(&b, v->v.i);
            break;
        }
    }
    qr_buf_uvarint(&b, c->skip);
    if (qr_buf_ok(&b)) qr_buf_u32(&b, (uint32_t)qr_hash64(b.data, b.len));
    if (qr_buf_ok(&b)) b64url_encode(b.data, b.len, &text);
    const char *s = qr_buf_ok(&b) && qr_buf_ok(&text)
                        ? qr_arena_strndup(q->qa, (const char *)text.data, text.len)
                        : NULL;
    qr_buf_fini(&b);
    qr_buf_fini(&text);
    if (!s) return exec_over_budget(q);
    *out = s;
    return 0;
}

static int bad_cursor(exec_ctx *q, const char *why)
{
    return qr_diag_set(q->d, QR_EINVAL, "invalid cursor: %s", why);
}

int cursor_decode(exec_ctx *q, const char *text, exec_cursor *out)
{
    qr_buf b;
    qr_buf_init(&b);
    if (!b64url_decode(text, strlen(text), &b) || b.len < 1 + 8 + 4) {
        qr_buf_fini(&b);
        return bad_cursor(q, "not a cursor of this server (bad encoding)");
    }
    int rc = 0;
    uint32_t sum = qr_load_u32(b.data + b.len - 4);
    qr_rd r;
    qr_rd_init(&r, b.data, b.len - 4);
    exec_cursor c;
    memset(&c, 0, sizeof c);
    if ((uint32_t)qr_hash64(b.data, b.len - 4) != sum) {
        rc = bad_cursor(q, "damaged (checksum mismatch)");
    } else if (qr_rd_u8(&r) != CURSOR_VERSION) {
        rc = bad_cursor(q, "unknown version");
    } else if ((c.query_hash = qr_rd_u64(&r)) != q->query_hash) {
        rc = bad_cursor(q, "it belongs to another query (a cursor resumes the query that "
                           "returned it, with the same text)");
    } else {
        c.now_ns = qr_rd_svarint(&r);
        uint64_t key_count = qr_rd_uvarint(&r);
        if (r.bad || key_count > 1024 || key_count > qr_rd_left(&r)) {
            rc = bad_cursor(q, "damaged (key count)");
        } else {
            c.key_count = (uint32_t)key_count;
            c.keys = qr_arena_calloc(q->qa, key_count + 1, sizeof *c.keys);
            if (!c.keys) rc = exec_over_budget(q);
        }
        for (uint32_t k = 0; !rc && k < c.key_count && !r.bad; k++) {
            exec_value *v = &c.keys[k];
            v->type = qr_rd_u8(&r);
            switch (v->type) {
            case EXEC_NULL:
                break;
            case EXEC_BOOL:
                v->v.b = qr_rd_u8(&r) != 0;
                break;
            case EXEC_FLOAT: {
                uint64_t bits = qr_rd_u64(&r);
                memcpy(&v->v.f, &bits, 8);
                break;
            }
            case EXEC_STRING: {
                size_t len = 0;
                const uint8_t *p = qr_rd_bytes(&r, &len);
                char *s = p ? qr_arena_strndup(q->qa, (const char *)p, len) : NULL;
                if (p && !s) rc = exec_over_budget(q);
                v->v.s = qr_str_make(s ? s : "", s ? len : 0);
                break;
            }
            case EXEC_INT:
            case EXEC_TS:
            case EXEC_LEVEL:
            case EXEC_DURATION:
                v->v.i = qr_rd_svarint(&r);
                break;
            default:
                r.bad = true;
                break;
            }
        }
        if (!rc) c.skip = qr_rd_uvarint(&r);
        if (!rc && (r.bad || qr_rd_left(&r) != 0)) rc = bad_cursor(q, "damaged (values)");
    }
    qr_buf_fini(&b);
    if (rc) return rc;
    *out = c;
    return 0;
}

#include "common/qr_buf.h"

#include <stdlib.h>

void qr_buf_init(qr_buf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

void qr_buf_fini(qr_buf *b)
{
    free(b->data);
    qr_buf_init(b);
}

bool qr_buf_reserve(qr_buf *b, size_t extra)
{
    if (b->oom) return false;
    if (b->cap - b->len >= extra) return true;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return false;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra) cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void qr_buf_append(qr_buf *b, const void *p, size_t n)
{
    if (!n || !qr_buf_reserve(b, n)) return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

uint8_t *qr_buf_extend(qr_buf *b, size_t n)
{
    if (!qr_buf_reserve(b, n)) return NULL;
    uint8_t *p = b->data + b->len;
    memset(p, 0, n);
    b->len += n;
    return p;
}

void qr_buf_u16(qr_buf *b, uint16_t v) { qr_buf_append(b, &v, 2); }
void qr_buf_u32(qr_buf *b, uint32_t v) { qr_buf_append(b, &v, 4); }
void qr_buf_u64(qr_buf *b, uint64_t v) { qr_buf_append(b, &v, 8); }

void qr_buf_uvarint(qr_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    qr_buf_append(b, tmp, n);
}

void qr_buf_svarint(qr_buf *b, int64_t v) { qr_buf_uvarint(b, qr_zigzag_enc(v)); }

void qr_buf_bytes(qr_buf *b, const void *p, size_t n)
{
    qr_buf_uvarint(b, n);
    qr_buf_append(b, p, n);
}

void qr_buf_put_u32_at(qr_buf *b, size_t off, uint32_t v)
{
    if (b->oom || off + 4 > b->len) return;
    memcpy(b->data + off, &v, 4);
}

const uint8_t *qr_rd_take(qr_rd *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

uint8_t qr_rd_u8(qr_rd *r)
{
    const uint8_t *p = qr_rd_take(r, 1);
    return p ? p[0] : 0;
}
uint16_t qr_rd_u16(qr_rd *r)
{
    const uint8_t *p = qr_rd_take(r, 2);
    return p ? qr_load_u16(p) : 0;
}
uint32_t qr_rd_u32(qr_rd *r)
{
    const uint8_t *p = qr_rd_take(r, 4);
    return p ? qr_load_u32(p) : 0;
}
uint64_t qr_rd_u64(qr_rd *r)
{
    const uint8_t *p = qr_rd_take(r, 8);
    return p ? qr_load_u64(p) : 0;
}

uint64_t qr_rd_uvarint(qr_rd *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->bad || r->p >= r->end) break;
        uint8_t byte = *r->p++;
        if (shift == 63 && byte > 1) break;
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) return v;
    }
    r->bad = true;
    return 0;
}

int64_t qr_rd_svarint(qr_rd *r) { return qr_zigzag_dec(qr_rd_uvarint(r)); }

const uint8_t *qr_rd_bytes(qr_rd *r, size_t *len)
{
    uint64_t n = qr_rd_uvarint(r);
    if (r->bad || n > qr_rd_left(r)) {
        r->bad = true;
        *len = 0;
        return NULL;
    }
    *len = (size_t)n;
    return qr_rd_take(r, (size_t)n);
}

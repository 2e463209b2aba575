/* qr_buf — growable byte buffer for building encodings, plus a bounds-checked reader.
 *
 * qr_buf owns its heap bytes (qr_buf_fini frees them). Appends that cannot grow the buffer
 * set `oom` and become no-ops, so an encoder checks once at the end (qr_buf_ok).
 * qr_rd reads little-endian fixed ints and LEB128 varints from borrowed bytes; a read past
 * the end or a malformed varint sets `bad` and yields 0, so a decoder of untrusted bytes
 * checks once and returns QR_ECORRUPT. Thread safety: none. */
#ifndef QR_BUF_H
#define QR_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct qr_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool oom;
} qr_buf;

void qr_buf_init(qr_buf *b);
void qr_buf_fini(qr_buf *b);
static inline void qr_buf_clear(qr_buf *b) { b->len = 0; }
static inline bool qr_buf_ok(const qr_buf *b) { return !b->oom; }
/* Ensures room for `extra` more bytes; false (and oom) on failure. */
bool qr_buf_reserve(qr_buf *b, size_t extra);
void qr_buf_append(qr_buf *b, const void *p, size_t n);
/* Appends n zero bytes and returns a pointer to them (NULL on oom). */
uint8_t *qr_buf_extend(qr_buf *b, size_t n);

static inline void qr_buf_u8(qr_buf *b, uint8_t v) { qr_buf_append(b, &v, 1); }
void qr_buf_u16(qr_buf *b, uint16_t v);
void qr_buf_u32(qr_buf *b, uint32_t v);
void qr_buf_u64(qr_buf *b, uint64_t v);
void qr_buf_uvarint(qr_buf *b, uint64_t v);
void qr_buf_svarint(qr_buf *b, int64_t v); /* zigzag */
/* uvarint length followed by the bytes */
void qr_buf_bytes(qr_buf *b, const void *p, size_t n);
/* Overwrites 4 bytes at off (for back-patching lengths). */
void qr_buf_put_u32_at(qr_buf *b, size_t off, uint32_t v);

static inline uint64_t qr_zigzag_enc(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t qr_zigzag_dec(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

static inline uint16_t qr_load_u16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static inline uint32_t qr_load_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint64_t qr_load_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static inline void qr_store_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void qr_store_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

typedef struct qr_rd {
    const uint8_t *p;
    const uint8_t *end;
    bool bad;
} qr_rd;

static inline void qr_rd_init(qr_rd *r, const void *p, size_t n)
{
    r->p = p;
    r->end = (const uint8_t *)p + n;
    r->bad = false;
}
static inline size_t qr_rd_left(const qr_rd *r) { return (size_t)(r->end - r->p); }
uint8_t qr_rd_u8(qr_rd *r);
uint16_t qr_rd_u16(qr_rd *r);
uint32_t qr_rd_u32(qr_rd *r);
uint64_t qr_rd_u64(qr_rd *r);
uint64_t qr_rd_uvarint(qr_rd *r);
int64_t qr_rd_svarint(qr_rd *r);
/* Borrowed pointer to the next n bytes (NULL and bad if fewer are left). */
const uint8_t *qr_rd_take(qr_rd *r, size_t n);
/* uvarint length + bytes, as written by qr_buf_bytes; *len receives the length. */
const uint8_t *qr_rd_bytes(qr_rd *r, size_t *len);

#endif

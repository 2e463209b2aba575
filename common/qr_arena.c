#include "common/qr_arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct qr_arena_chunk {
    qr_arena_chunk *next;
    size_t cap;
    size_t used;
    _Alignas(16) unsigned char data[];
};

#define ARENA_SPARE_MAX_BYTES (16u << 20)

void qr_arena_init(qr_arena *a, size_t chunk_bytes, size_t budget_bytes)
{
    a->head = NULL;
    a->spare = NULL;
    a->chunk_bytes = chunk_bytes ? chunk_bytes : 64 * 1024;
    a->total_bytes = 0;
    a->budget_bytes = budget_bytes;
    a->over_budget = false;
}

static void chunk_list_free(qr_arena_chunk *c)
{
    while (c) {
        qr_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
}

void qr_arena_fini(qr_arena *a)
{
    chunk_list_free(a->head);
    chunk_list_free(a->spare);
    a->head = a->spare = NULL;
    a->total_bytes = 0;
}

void qr_arena_reset(qr_arena *a)
{
    size_t kept = 0;
    for (qr_arena_chunk *c = a->spare; c; c = c->next) kept += c->cap;
    qr_arena_chunk *c = a->head;
    while (c) {
        qr_arena_chunk *next = c->next;
        if (c->cap == a->chunk_bytes && kept + c->cap <= ARENA_SPARE_MAX_BYTES) {
            c->next = a->spare;
            a->spare = c;
            kept += c->cap;
        } else {
            free(c);
        }
        c = next;
    }
    a->head = NULL;
    a->total_bytes = 0;
    a->over_budget = false;
}

void qr_arena_adopt(qr_arena *dst, qr_arena *src)
{
    if (!src->head) return;
    qr_arena_chunk *last = src->head;
    while (last->next) last = last->next;
    if (dst->head) { /* behind dst's current chunk, which stays the one allocated from */
        last->next = dst->head->next;
        dst->head->next = src->head;
    } else {
        dst->head = src->head;
    }
    dst->total_bytes += src->total_bytes;
    src->head = NULL;
    src->total_bytes = 0;
}

void *qr_arena_alloc(qr_arena *a, size_t bytes)
{
    bytes = (bytes + 15) & ~(size_t)15;
    if (bytes == 0) bytes = 16;
    qr_arena_chunk *c = a->head;
    if (c && c->cap - c->used >= bytes) {
        void *p = c->data + c->used;
        c->used += bytes;
        return p;
    }
    size_t cap = bytes > a->chunk_bytes ? bytes : a->chunk_bytes;
    if (cap > SIZE_MAX - sizeof(qr_arena_chunk)) return NULL;
    if (a->budget_bytes && a->total_bytes + cap > a->budget_bytes) {
        a->over_budget = true;
        return NULL;
    }
    if (cap == a->chunk_bytes && a->spare) {
        c = a->spare;
        a->spare = c->next;
    } else {
        c = malloc(sizeof(qr_arena_chunk) + cap);
        if (!c) return NULL;
    }
    c->cap = cap;
    c->used = bytes;
    a->total_bytes += cap;
    if (a->head && cap > a->chunk_bytes) {
        /* Oversized chunk: insert behind the head so the head's free space stays usable. */
        c->next = a->head->next;
        a->head->next = c;
    } else {
        c->next = a->head;
        a->head = c;
    }
    return c->data;
}

void *qr_arena_calloc(qr_arena *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size) return NULL;
    void *p = qr_arena_alloc(a, count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

char *qr_arena_strndup(qr_arena *a, const char *s, size_t len)
{
    char *p = qr_arena_alloc(a, len + 1);
    if (!p) return NULL;
    if (len) memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *qr_arena_strdup(qr_arena *a, const char *s) { return qr_arena_strndup(a, s, strlen(s)); }

char *qr_arena_printf(qr_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *p = qr_arena_alloc(a, (size_t)n + 1);
    if (!p) return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

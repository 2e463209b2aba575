/* qr_arena — bump allocator: many allocations, one free.
 *
 * Used for per-query memory (tokens, AST, plan, operator state, result strings) and per-batch
 * event strings. An arena may carry a byte budget: an allocation that would take the arena's
 * total chunk bytes past it fails (returns NULL) and sets `over_budget`, so a query over its
 * memory budget ends with QR_ELIMIT rather than an out-of-memory crash.
 * Ownership: memory from qr_arena_alloc lives until qr_arena_reset or qr_arena_fini.
 * Thread safety: none; one arena belongs to one thread at a time. */
#ifndef QR_ARENA_H
#define QR_ARENA_H

#include <stdbool.h>
#include <stddef.h>

typedef struct qr_arena_chunk qr_arena_chunk;

typedef struct qr_arena {
    qr_arena_chunk *head;  /* current chunk (newest first) */
    qr_arena_chunk *spare; /* default-size chunks kept by qr_arena_reset for reuse */
    size_t chunk_bytes;    /* default size of a new chunk */
    size_t total_bytes;    /* bytes held in chunks */
    size_t budget_bytes;   /* 0 = unlimited */
    bool over_budget;
} qr_arena;

void qr_arena_init(qr_arena *a, size_t chunk_bytes, size_t budget_bytes);
void qr_arena_fini(qr_arena *a);
/* Makes all memory reusable: default-size chunks are kept (up to 16 MiB) so a reused arena
 * does not fault its pages in again; oversized chunks are freed. */
void qr_arena_reset(qr_arena *a);
/* Moves every allocation of src into dst (its chunks join dst's; nothing is copied): they
 * live until dst is reset or finished. src is left empty (its spare chunks stay with it).
 * dst's budget is not checked. */
void qr_arena_adopt(qr_arena *dst, qr_arena *src);
/* 16-byte aligned; NULL on OOM or over budget. */
void *qr_arena_alloc(qr_arena *a, size_t bytes);
void *qr_arena_calloc(qr_arena *a, size_t count, size_t size);
/* Copies len bytes and appends a NUL. */
char *qr_arena_strndup(qr_arena *a, const char *s, size_t len);
char *qr_arena_strdup(qr_arena *a, const char *s);
char *qr_arena_printf(qr_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

/* memtable — a tenant's newest rows, in memory, searchable at once.
 *
 * Rows arrive in acknowledged batches (db_ingest, after the WAL) and are appended into chunks
 * of up to MEMTAB_CHUNK_ROWS rows. A chunk keeps the rows (a qr_batch whose arrays are sized
 * once and never move), hot columns side by side (ts, ingest ts, level, service id, host id),
 * a token bloom over msg, block metadata (min/max ts, per service×level counts) and, once the
 * chunk is complete, a token index (token hash → rows) that answers qr_part_postings with
 * candidates the engine verifies (postings_exact is false; the open chunk answers from its
 * bloom). Service
 * and host names map to ids in memtable-wide dictionaries.
 *
 * One writer (the caller holds the tenant's lock) appends; readers take a memtab snapshot
 * (memtab_part), a qr_part over the rows present at that moment, and read it without locks:
 * rows below the snapshot's count never change. A memtable is frozen when full and flushed
 * into a segment (memtab_chunks gives the batches to seg_write).
 *
 * Ownership: memtab_new/memtab_free (the memtable is reference counted: parts made from it
 * hold a reference, memtab_free drops the owner's). Errors: QR_ENOMEM. */
#ifndef QR_MEMTABLE_H
#define QR_MEMTABLE_H

#include "common/qr_err.h"
#include "storage/event.h"
#include "storage/part.h"

#include <stdbool.h>
#include <stdint.h>

#define MEMTAB_CHUNK_ROWS 4096
/* Batches this large become chunks of their own (memtab_append_take) instead of copies. */
#define MEMTAB_TAKE_MIN_ROWS 512
/* Field slots per chunk, sized once; a chunk that cannot take an event's fields is sealed. */
#define MEMTAB_CHUNK_FIELDS (MEMTAB_CHUNK_ROWS * 12)

typedef struct memtab memtab;

memtab *memtab_new(uint64_t id);
void memtab_free(memtab *m);

/* Appends every event of b (copied). lsn is the WAL record the batch came from. */
int memtab_append(memtab *m, const qr_batch *b, uint64_t lsn);
/* Like memtab_append, but a batch of at least MEMTAB_TAKE_MIN_ROWS rows is moved into the
 * memtable as a chunk of its own (no copy): b is left empty and re-initialized. Smaller
 * batches are copied and b is left as it was. */
int memtab_append_take(memtab *m, qr_batch *b, uint64_t lsn);

/* No more appends: the open chunk is sealed and gets its token index (call when freezing,
 * with the writer's lock held; parts taken before keep answering from its bloom). */
void memtab_seal(memtab *m);

uint64_t memtab_rows(const memtab *m);
uint64_t memtab_bytes(const memtab *m);
uint64_t memtab_min_lsn(const memtab *m);   /* UINT64_MAX when empty */
uint64_t memtab_max_lsn(const memtab *m);   /* 0 when empty */
int64_t memtab_created_ns(const memtab *m); /* monotonic clock at creation */
uint64_t memtab_id(const memtab *m);

/* The chunks' batches, oldest first, for seg_write. Valid while m lives; call on a frozen
 * memtable (no concurrent appends). *out is malloc'd: the caller frees the array. */
int memtab_chunks(memtab *m, const qr_batch ***out, size_t *count);

/* A read-only part over the rows present now. Call with the writer's lock held (it copies
 * the dictionaries and the open chunk's metadata); read it from any thread without locks. */
int memtab_part(memtab *m, qr_part **out);

#endif

/* exec_msgcache — the messages of single segment rows read selectively (result rows, needle
 * hits), kept between queries so that a repeated query (a dashboard's newest-100, a page
 * reloaded) does not decompress the same 64 KiB msg frames again. See engine/engine.h.
 *
 * One mutex; a chained hash table over (tenant, part id, block, row) and an LRU list. Entries
 * are one allocation each (header + bytes); their cost against the budget is both. */
#include "engine/exec_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct mc_entry {
    struct mc_entry *chain;       /* next in the bucket */
    struct mc_entry *prev, *next; /* LRU: head = most recent */
    uint64_t tenant;
    uint64_t part_id;
    uint32_t block_idx;
    uint32_t row;
    uint32_t len;
    char bytes[];
} mc_entry;

struct exec_msg_cache {
    pthread_mutex_t mu;
    size_t budget_bytes;
    size_t used_bytes;
    uint64_t entries;
    uint64_t hits, misses, evictions;
    mc_entry **buckets;
    size_t bucket_mask;
    mc_entry *head, *tail;
};

exec_msg_cache *exec_msg_cache_new(size_t budget_bytes)
{
    exec_msg_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    /* one bucket per ~512 budget bytes (messages are ~100-300 B), a power of two */
    size_t buckets = 64;
    while (buckets < budget_bytes / 512 && buckets < ((size_t)1 << 24)) buckets <<= 1;
    c->buckets = calloc(buckets, sizeof *c->buckets);
    if (!c->buckets || pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c->buckets);
        free(c);
        return NULL;
    }
    c->bucket_mask = buckets - 1;
    c->budget_bytes = budget_bytes;
    return c;
}

void exec_msg_cache_free(exec_msg_cache *c)
{
    if (!c) return;
    mc_entry *e = c->head;
    while (e) {
        mc_entry *next = e->next;
        free(e);
        e = next;
    }
    free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void exec_msg_cache_stats(exec_msg_cache *c, exec_msg_cache_stat *out)
{
    memset(out, 0, sizeof *out);
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    out->budget_bytes = c->budget_bytes;
    out->used_bytes = c->used_bytes;
    out->entries = c->entries;
    out->hits = c->hits;
    out->misses = c->misses;
    out->evictions = c->evictions;
    pthread_mutex_unlock(&c->mu);
}

static size_t entry_cost(uint32_t len) { return sizeof(mc_entry) + len; }

static size_t bucket_of(const exec_msg_cache *c, uint64_t tenant, uint64_t part_id,
                        uint32_t block_idx, uint32_t row)
{
    uint64_t k[3] = {tenant, part_id, (uint64_t)block_idx << 32 | row};
    return (size_t)qr_hash64(k, sizeof k) & c->bucket_mask;
}

static mc_entry **slot_find(exec_msg_cache *c, uint64_t tenant, uint64_t part_id,
                            uint32_t block_idx, uint32_t row)
{
    mc_entry **sp = &c->buckets[bucket_of(c, tenant, part_id, block_idx, row)];
    while (*sp && !((*sp)->row == row && (*sp)->block_idx == block_idx &&
                    (*sp)->part_id == part_id && (*sp)->tenant == tenant))
        sp = &(*sp)->chain;
    return sp;
}

static void lru_unlink(exec_msg_cache *c, mc_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(exec_msg_cache *c, mc_entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head) c->head->prev = e;
    c->head = e;
    if (!c->tail) c->tail = e;
}

static void evict_tail(exec_msg_cache *c)
{
    mc_entry *e = c->tail;
    mc_entry **sp = slot_find(c, e->tenant, e->part_id, e->block_idx, e->row);
    *sp = e->chain;
    lru_unlink(c, e);
    c->used_bytes -= entry_cost(e->len);
    c->entries--;
    c->evictions++;
    free(e);
}

int exec_msg_cache_get(exec_msg_cache *c, uint64_t tenant, uint64_t part_id, uint32_t block_idx,
                       const uint32_t *rows, uint32_t n, qr_arena *a, qr_str *out, uint8_t *found)
{
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    for (uint32_t idx = 0; idx < n; idx++) {
        found[idx] = 0;
        mc_entry *e = *slot_find(c, tenant, part_id, block_idx, rows[idx]);
        if (!e) {
            c->misses++;
            continue;
        }
        char *p = qr_arena_alloc(a, e->len ? e->len : 1);
        if (!p) {
            rc = QR_ELIMIT;
            break;
        }
        memcpy(p, e->bytes, e->len);
        out[idx] = qr_str_make(p, e->len);
        found[idx] = 1;
        c->hits++;
        if (c->head != e) {
            lru_unlink(c, e);
            lru_push_front(c, e);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void exec_msg_cache_put(exec_msg_cache *c, uint64_t tenant, uint64_t part_id, uint32_t block_idx,
                        const uint32_t *rows, uint32_t n, const qr_str *msgs)
{
    for (uint32_t idx = 0; idx < n; idx++) {
        size_t len = msgs[idx].len;
        /* one message may take at most 1/8 of the budget */
        if (len > UINT32_MAX || entry_cost((uint32_t)len) > c->budget_bytes / 8) continue;
        mc_entry *e = malloc(entry_cost((uint32_t)len));
        if (!e) return; /* a cache: dropping the entry is the answer to no memory */
        e->tenant = tenant;
        e->part_id = part_id;
        e->block_idx = block_idx;
        e->row = rows[idx];
        e->len = (uint32_t)len;
        memcpy(e->bytes, msgs[idx].ptr, len);
        pthread_mutex_lock(&c->mu);
        mc_entry **sp = slot_find(c, tenant, part_id, block_idx, rows[idx]);
        if (*sp) { /* another thread put it first */
            pthread_mutex_unlock(&c->mu);
            free(e);
            continue;
        }
        while (c->tail && c->used_bytes + entry_cost(e->len) > c->budget_bytes) {
            evict_tail(c);
            sp = slot_find(c, tenant, part_id, block_idx, rows[idx]); /* chain may have moved */
        }
        e->chain = NULL;
        *sp = e;
        lru_push_front(c, e);
        c->used_bytes += entry_cost(e->len);
        c->entries++;
        pthread_mutex_unlock(&c->mu);
    }
}

/* Memtable: chunked append-only rows with per-chunk blooms and token indexes, read lock-free
 * by snapshots.
 *
 * Layout: chunks of rows. Small ingest batches are copied into an open chunk of
 * MEMTAB_CHUNK_ROWS rows whose events array is allocated once at full size; its fields array
 * grows by doubling, and a replaced array is kept (not freed) until the memtable dies, because
 * a reader may still hold it. A large batch becomes a sealed chunk of its own, moved rather
 * than copied (memtab_append_take). A chunk publishes its row count with a release store after
 * the row is complete, so a reader that loads the count (acquire) sees whole rows. The bloom
 * has 64 bits per row (a power of two, 16 Ki to 16 Mi bits) and 4 probes: at ~5 distinct new
 * tokens per row that is ~13 bits per token, ~0.5 % false positives. Readers may race with
 * bit-setting for the open chunk; they only test bits of tokens of rows they can see, which
 * were set before those rows were published. */
#include "storage/memtable.h"

#include "common/qr_hash.h"
#include "common/qr_time.h"
#include "storage/tokenize.h"

#include <stdlib.h>
#include <string.h>

#define BLOOM_PROBES 4
/* 64 bits per row: ~13 bits per distinct token at ~5 distinct new tokens per row */
#define BLOOM_BITS_PER_ROW 64

/* Token index of a complete chunk: the rows of each token, found by the token's hash. An open
 * addressing table of 32-bit keys (the high half of qr_token_hash; 0 = empty) in slot order,
 * with start[slot]..start[slot + 1] the slot's rows (chunk-local, ascending) in rows[].
 * Built once when the chunk is complete, immutable after, published under the writer's lock
 * (memtab_part copies the pointer). Keys are 32 bits: two tokens may share one, so its rows
 * are candidates that the engine verifies (qr_part.postings_exact is false). */
typedef struct mt_tokidx {
    uint32_t slot_mask;
    uint32_t *keys;
    uint32_t *start; /* slot_mask + 2 entries */
    uint32_t *rows;
} mt_tokidx;

typedef struct mt_chunk {
    qr_batch rows;     /* events: fixed capacity; fields: grows, old arrays kept in graveyard */
    uint32_t capacity; /* rows the events array holds */
    bool sealed;       /* taken whole from an ingest batch: never appended to */
    uint32_t *service_id;
    uint32_t *host_id;
    uint64_t *bloom;
    uint32_t bloom_mask; /* bits - 1 (a power of two) */
    int64_t min_ts_ns;
    int64_t max_ts_ns;
    qr_svc_level_count *counts; /* sorted by (service_id, level) */
    uint32_t count_n;
    uint32_t count_cap;
    uint32_t first_row;
    atomic_uint published_rows;
    /* token keys (tok_key) of the rows so far (row r's are hashes[hash_end[r - 1] ..
     * hash_end[r])), kept until the chunk is complete and its token index built */
    uint32_t *hashes;
    uint32_t hash_count, hash_cap;
    uint32_t *hash_end;
    mt_tokidx *tokidx;
} mt_chunk;

typedef struct mt_dict {
    qr_str *names;
    uint64_t *rows;
    uint32_t count;
    uint32_t cap;
    uint32_t *slots; /* open addressing: id + 1, 0 = empty */
    uint32_t slot_mask;
} mt_dict;

typedef struct mt_schema_entry {
    qr_str key;
    uint8_t type;
    uint32_t row_count;
} mt_schema_entry;

struct memtab {
    uint64_t id;
    atomic_int refs;
    int64_t created_ns;
    qr_arena names_arena; /* dictionary and schema strings */
    mt_chunk **chunks;
    size_t chunk_count;
    size_t chunk_cap;
    mt_dict services;
    mt_dict hosts;
    mt_schema_entry *schema;
    uint32_t schema_count;
    uint32_t schema_cap;
    uint32_t *schema_slots; /* hash of (key,type) → index + 1 */
    uint32_t schema_slot_mask;
    uint64_t level_rows[QR_LEVEL_COUNT];
    int64_t min_ts_ns;
    int64_t max_ts_ns;
    uint64_t row_count;
    uint64_t bytes;
    uint64_t min_lsn;
    uint64_t max_lsn;
    void **graveyard;  /* replaced field arrays, freed with the memtable */
    uint32_t *scratch; /* token index builds: 2 arrays of scratch_slots (writer only) */
    uint32_t scratch_slots;
    size_t graveyard_count;
    size_t graveyard_cap;
};

static void memtab_unref(memtab *m);
static void chunk_free(mt_chunk *c);

memtab *memtab_new(uint64_t id)
{
    memtab *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->id = id;
    atomic_init(&m->refs, 1);
    m->created_ns = qr_monotonic_ns();
    qr_arena_init(&m->names_arena, 16 * 1024, 0);
    m->min_ts_ns = INT64_MAX;
    m->max_ts_ns = INT64_MIN;
    m->min_lsn = UINT64_MAX;
    return m;
}

static void dict_fini(mt_dict *d)
{
    free(d->names);
    free(d->rows);
    free(d->slots);
}

static void memtab_destroy(memtab *m)
{
    for (size_t chunk_idx = 0; chunk_idx < m->chunk_count; chunk_idx++)
        chunk_free(m->chunks[chunk_idx]);
    for (size_t idx = 0; idx < m->graveyard_count; idx++) free(m->graveyard[idx]);
    free(m->graveyard);
    free(m->chunks);
    dict_fini(&m->services);
    dict_fini(&m->hosts);
    free(m->schema);
    free(m->schema_slots);
    free(m->scratch);
    qr_arena_fini(&m->names_arena);
    free(m);
}

static void memtab_unref(memtab *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) memtab_destroy(m);
}

void memtab_free(memtab *m) { memtab_unref(m); }

uint64_t memtab_rows(const memtab *m) { return m->row_count; }
uint64_t memtab_bytes(const memtab *m) { return m->bytes; }
uint64_t memtab_min_lsn(const memtab *m) { return m->min_lsn; }
uint64_t memtab_max_lsn(const memtab *m) { return m->max_lsn; }
int64_t memtab_created_ns(const memtab *m) { return m->created_ns; }
uint64_t memtab_id(const memtab *m) { return m->id; }

/* --- dictionaries ------------------------------------------------------------------------ */

static int dict_grow_slots(mt_dict *d)
{
    uint32_t nslots = d->slot_mask ? (d->slot_mask + 1) * 2 : 64;
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots) return QR_ENOMEM;
    for (uint32_t id = 0; id < d->count; id++) {
        uint64_t h = qr_hash64(d->names[id].ptr, d->names[id].len);
        uint32_t pos = (uint32_t)h & (nslots - 1);
        while (slots[pos]) pos = (pos + 1) & (nslots - 1);
        slots[pos] = id + 1;
    }
    free(d->slots);
    d->slots = slots;
    d->slot_mask = nslots - 1;
    return 0;
}

static int dict_intern(memtab *m, mt_dict *d, qr_str s, uint32_t *out_id)
{
    if (!d->slots || (d->count + 1) * 2 > d->slot_mask + 1) {
        if (dict_grow_slots(d)) return QR_ENOMEM;
    }
    uint64_t h = qr_hash64(s.ptr, s.len);
    uint32_t pos = (uint32_t)h & d->slot_mask;
    while (d->slots[pos]) {
        uint32_t id = d->slots[pos] - 1;
        if (qr_str_eq(d->names[id], s)) {
            *out_id = id;
            return 0;
        }
        pos = (pos + 1) & d->slot_mask;
    }
    if (d->count == d->cap) {
        uint32_t cap = d->cap ? d->cap * 2 : 16;
        qr_str *names = realloc(d->names, cap * sizeof *names);
        if (!names) return QR_ENOMEM;
        d->names = names;
        uint64_t *rows = realloc(d->rows, cap * sizeof *rows);
        if (!rows) return QR_ENOMEM;
        d->rows = rows;
        d->cap = cap;
    }
    char *copy = qr_arena_strndup(&m->names_arena, s.ptr ? s.ptr : "", s.len);
    if (!copy) return QR_ENOMEM;
    d->names[d->count] = qr_str_make(copy, s.len);
    d->rows[d->count] = 0;
    d->slots[pos] = d->count + 1;
    *out_id = d->count++;
    return 0;
}

/* --- field schema -------------------------------------------------------------------------- */

static uint64_t schema_hash(qr_str key, uint8_t type)
{
    return qr_hash64_seed(key.ptr, key.len, type);
}

static int schema_note(memtab *m, qr_str key, uint8_t type)
{
    if (!m->schema_slots || (m->schema_count + 1) * 2 > m->schema_slot_mask + 1) {
        uint32_t nslots = m->schema_slot_mask ? (m->schema_slot_mask + 1) * 2 : 64;
        uint32_t *slots = calloc(nslots, sizeof *slots);
        if (!slots) return QR_ENOMEM;
        for (uint32_t idx = 0; idx < m->schema_count; idx++) {
            uint32_t pos =
                (uint32_t)schema_hash(m->schema[idx].key, m->schema[idx].type) & (nslots - 1);
            while (slots[pos]) pos = (pos + 1) & (nslots - 1);
            slots[pos] = idx + 1;
        }
        free(m->schema_slots);
        m->schema_slots = slots;
        m->schema_slot_mask = nslots - 1;
    }
    uint32_t pos = (uint32_t)schema_hash(key, type) & m->schema_slot_mask;
    while (m->schema_slots[pos]) {
        mt_schema_entry *e = &m->schema[m->schema_slots[pos] - 1];
        if (e->type == type && qr_str_eq(e->key, key)) {
            e->row_count++;
            return 0;
        }
        pos = (pos + 1) & m->schema_slot_mask;
    }
    if (m->schema_count == m->schema_cap) {
        uint32_t cap = m->schema_cap ? m->schema_cap * 2 : 32;
        mt_schema_entry *s = realloc(m->schema, cap * sizeof *s);
        if (!s) return QR_ENOMEM;
        m->schema = s;
        m->schema_cap = cap;
    }
    char *copy = qr_arena_strndup(&m->names_arena, key.ptr, key.len);
    if (!copy) return QR_ENOMEM;
    mt_schema_entry *e = &m->schema[m->schema_count];
    e->key = qr_str_make(copy, key.len);
    e->type = type;
    e->row_count = 1;
    m->schema_slots[pos] = ++m->schema_count;
    return 0;
}

/* --- chunks ---------------------------------------------------------------------------- */

static void bloom_add(uint64_t *bloom, uint32_t mask, uint64_t h)
{
    uint32_t h1 = (uint32_t)h, h2 = (uint32_t)(h >> 32) | 1;
    for (int probe = 0; probe < BLOOM_PROBES; probe++) {
        uint32_t bit = (h1 + (uint32_t)probe * h2) & mask;
        bloom[bit >> 6] |= 1ULL << (bit & 63);
    }
}

static bool bloom_test(const uint64_t *bloom, uint32_t mask, uint64_t h)
{
    uint32_t h1 = (uint32_t)h, h2 = (uint32_t)(h >> 32) | 1;
    for (int probe = 0; probe < BLOOM_PROBES; probe++) {
        uint32_t bit = (h1 + (uint32_t)probe * h2) & mask;
        if (!(bloom[bit >> 6] >> (bit & 63) & 1)) return false;
    }
    return true;
}

static inline uint32_t tok_key(uint64_t h)
{
    uint32_t k = (uint32_t)(h >> 32);
    return k ? k : 1;
}

/* Adds the row's tokens to the bloom and keeps their keys for the token index. */
static int chunk_add_tokens(mt_chunk *c, uint32_t local, qr_str text)
{
    uint64_t hashes[64];
    size_t pos = 0;
    while (pos < text.len) {
        size_t n = qr_tokenize_hashes(text.ptr, text.len, &pos, hashes, 64);
        if (c->hash_count + n > c->hash_cap) {
            uint32_t cap = c->hash_cap ? c->hash_cap * 2 : 4096;
            while (cap < c->hash_count + n) cap *= 2;
            uint32_t *h = realloc(c->hashes, (size_t)cap * sizeof *h);
            if (!h) return QR_ENOMEM;
            c->hashes = h;
            c->hash_cap = cap;
        }
        uint32_t *keys = c->hashes + c->hash_count;
        for (size_t idx = 0; idx < n; idx++) {
            bloom_add(c->bloom, c->bloom_mask, hashes[idx]);
            keys[idx] = tok_key(hashes[idx]);
        }
        c->hash_count += (uint32_t)n;
    }
    c->hash_end[local] = c->hash_count;
    return 0;
}

static void tokidx_free(mt_tokidx *t)
{
    if (!t) return;
    free(t->keys);
    free(t->start);
    free(t->rows);
    free(t);
}

static inline uint32_t tokidx_slot(const mt_tokidx *t, uint32_t key)
{
    uint32_t slot = (key * 0x9E3779B1u) & t->slot_mask;
    while (t->keys[slot] && t->keys[slot] != key) slot = (slot + 1) & t->slot_mask;
    return slot;
}

/* Counts the rows of each key into t (keys) and count[], with last[] the last row + 1 that
 * counted (a token repeated in a row counts once). false when the table got over 3/4 full. */
static bool tokidx_count(const mt_chunk *c, mt_tokidx *t, uint32_t *count, uint32_t *last,
                         uint32_t *refs)
{
    uint32_t slots = t->slot_mask + 1, distinct = 0;
    *refs = 0;
    for (uint32_t row = 0, h = 0; row < c->rows.count; row++) {
        for (; h < c->hash_end[row]; h++) {
            uint32_t key = c->hashes[h], slot = tokidx_slot(t, key);
            if (!t->keys[slot]) {
                if (++distinct * 4 > slots * 3) return false;
                t->keys[slot] = key;
            }
            if (last[slot] != row + 1) {
                last[slot] = row + 1;
                count[slot]++;
                (*refs)++;
            }
        }
    }
    return true;
}

/* Builds the token index of a complete chunk from the kept keys, then drops them: a count
 * pass (the table sized for about half the tokens being distinct, doubled and redone when
 * that was too few), prefix sums in slot order, and a fill pass in row order (so each token's
 * rows come out ascending). On OOM the chunk just keeps its bloom: answers stay right, only
 * slower. Cost ~0.2 µs per event (bench/ingest_stages_bench, "memtable"). */
static void chunk_build_tokidx(memtab *m, mt_chunk *c)
{
    mt_tokidx *t = calloc(1, sizeof *t);
    uint32_t slots = 64, refs = 0;
    while (slots < 2u * c->hash_count / 3 + 1 && slots < (1u << 30)) slots <<= 1;
    bool ok = t != NULL;
    while (ok) {
        if (slots > m->scratch_slots) {
            free(m->scratch);
            m->scratch = malloc((size_t)slots * 2 * sizeof *m->scratch);
            m->scratch_slots = m->scratch ? slots : 0;
        }
        free(t->keys);
        t->keys = calloc(slots, sizeof *t->keys);
        t->slot_mask = slots - 1;
        ok = t->keys && m->scratch;
        if (!ok) break;
        memset(m->scratch, 0, (size_t)slots * 2 * sizeof *m->scratch);
        if (tokidx_count(c, t, m->scratch, m->scratch + slots, &refs)) break;
        slots <<= 1;
    }
    if (ok) {
        uint32_t *count = m->scratch, *seen = m->scratch + slots;
        t->start = malloc(((size_t)slots + 2) * sizeof *t->start);
        t->rows = malloc(((size_t)refs + 1) * sizeof *t->rows);
        ok = t->start && t->rows;
        if (ok) {
            t->start[0] = 0;
            for (uint32_t slot = 0; slot < slots; slot++) {
                t->start[slot + 1] = t->start[slot] + count[slot];
                count[slot] = t->start[slot]; /* now: the next free position */
            }
            t->start[slots + 1] = t->start[slots];
            memset(seen, 0, (size_t)slots * sizeof *seen);
            for (uint32_t row = 0, h = 0; row < c->rows.count; row++) {
                for (; h < c->hash_end[row]; h++) {
                    uint32_t slot = tokidx_slot(t, c->hashes[h]);
                    if (seen[slot] == row + 1) continue;
                    seen[slot] = row + 1;
                    t->rows[count[slot]++] = row;
                }
            }
            c->tokidx = t;
            m->bytes += (uint64_t)slots * 8 + (uint64_t)refs * 4;
        }
    }
    if (!ok) tokidx_free(t);
    free(c->hashes);
    free(c->hash_end);
    c->hashes = NULL;
    c->hash_end = NULL;
    c->hash_count = c->hash_cap = 0;
}

static void chunk_free(mt_chunk *c)
{
    if (!c) return;
    qr_batch_fini(&c->rows);
    free(c->service_id);
    free(c->host_id);
    free(c->bloom);
    free(c->counts);
    free(c->hashes);
    free(c->hash_end);
    tokidx_free(c->tokidx);
    free(c);
}

/* A chunk for `capacity` rows; with `take`, the caller moves a batch into c->rows. */
static mt_chunk *chunk_new(uint32_t first_row, uint32_t capacity, bool take)
{
    mt_chunk *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->capacity = capacity;
    uint64_t bits = 1u << 14;
    while (bits < (uint64_t)capacity * BLOOM_BITS_PER_ROW && bits < (1u << 24)) bits <<= 1;
    c->bloom_mask = (uint32_t)(bits - 1);
    c->bloom = calloc(bits / 64, sizeof(uint64_t));
    c->service_id = malloc(capacity * sizeof(uint32_t));
    c->host_id = malloc(capacity * sizeof(uint32_t));
    c->hash_end = malloc(capacity * sizeof(uint32_t));
    if (!take) {
        qr_batch_init(&c->rows);
        c->rows.events = malloc(capacity * sizeof(qr_event));
        c->rows.cap = capacity;
        c->rows.fields = malloc((size_t)capacity * 4 * sizeof(qr_field));
        c->rows.field_cap = (size_t)capacity * 4;
    }
    if (!c->bloom || !c->service_id || !c->host_id || !c->hash_end ||
        (!take && (!c->rows.events || !c->rows.fields))) {
        chunk_free(c);
        return NULL;
    }
    c->min_ts_ns = INT64_MAX;
    c->max_ts_ns = INT64_MIN;
    c->first_row = first_row;
    atomic_init(&c->published_rows, 0);
    return c;
}

static int chunk_reserve_fields(memtab *m, mt_chunk *c, size_t extra)
{
    if (c->rows.field_count + extra <= c->rows.field_cap) return 0;
    size_t cap = c->rows.field_cap * 2;
    while (cap < c->rows.field_count + extra) cap *= 2;
    qr_field *fields = malloc(cap * sizeof *fields);
    if (!fields) return QR_ENOMEM;
    memcpy(fields, c->rows.fields, c->rows.field_count * sizeof *fields);
    if (m->graveyard_count == m->graveyard_cap) {
        size_t gcap = m->graveyard_cap ? m->graveyard_cap * 2 : 16;
        void **g = realloc(m->graveyard, gcap * sizeof *g);
        if (!g) {
            free(fields);
            return QR_ENOMEM;
        }
        m->graveyard = g;
        m->graveyard_cap = gcap;
    }
    m->graveyard[m->graveyard_count++] = c->rows.fields;
    m->bytes += c->rows.field_cap * sizeof(qr_field);
    /* Readers copy the fields pointer while holding the writer's lock (memtab_part), so a
     * plain store suffices; the old array stays valid until the memtable is destroyed. */
    c->rows.fields = fields;
    c->rows.field_cap = cap;
    return 0;
}

static int counts_add(mt_chunk *c, uint32_t service_id, uint8_t level)
{
    /* binary search for (service_id, level) */
    uint32_t lo = 0, hi = c->count_n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        const qr_svc_level_count *e = &c->counts[mid];
        if (e->service_id < service_id || (e->service_id == service_id && e->level < level))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < c->count_n && c->counts[lo].service_id == service_id && c->counts[lo].level == level) {
        c->counts[lo].row_count++;
        return 0;
    }
    if (c->count_n == c->count_cap) {
        uint32_t cap = c->count_cap ? c->count_cap * 2 : 16;
        qr_svc_level_count *p = realloc(c->counts, cap * sizeof *p);
        if (!p) return QR_ENOMEM;
        c->counts = p;
        c->count_cap = cap;
    }
    memmove(&c->counts[lo + 1], &c->counts[lo], (c->count_n - lo) * sizeof *c->counts);
    c->counts[lo].service_id = service_id;
    c->counts[lo].level = level;
    c->counts[lo].row_count = 1;
    c->count_n++;
    return 0;
}

static int chunks_reserve(memtab *m)
{
    if (m->chunk_count < m->chunk_cap) return 0;
    size_t cap = m->chunk_cap ? m->chunk_cap * 2 : 64;
    mt_chunk **p = realloc(m->chunks, cap * sizeof *p);
    if (!p) return QR_ENOMEM;
    m->chunks = p;
    m->chunk_cap = cap;
    return 0;
}

static uint64_t chunk_fixed_bytes(const mt_chunk *c)
{
    return sizeof *c + (uint64_t)c->capacity * 2 * sizeof(uint32_t) +
           ((uint64_t)c->bloom_mask + 1) / 8;
}

static mt_chunk *open_chunk(memtab *m)
{
    if (m->chunk_count) {
        mt_chunk *last = m->chunks[m->chunk_count - 1];
        if (!last->sealed && last->rows.count < last->capacity) return last;
    }
    if (chunks_reserve(m)) return NULL;
    mt_chunk *c = chunk_new((uint32_t)m->row_count, MEMTAB_CHUNK_ROWS, false);
    if (!c) return NULL;
    m->chunks[m->chunk_count++] = c;
    m->bytes += chunk_fixed_bytes(c) + MEMTAB_CHUNK_ROWS * sizeof(qr_event) +
                c->rows.field_cap * sizeof(qr_field);
    return c;
}

/* Indexes row `local` of chunk c (already in c->rows) and publishes it to readers. */
static int chunk_index_row(memtab *m, mt_chunk *c, uint32_t local)
{
    const qr_event *e = &c->rows.events[local];
    uint32_t service_id, host_id;
    if (dict_intern(m, &m->services, e->service, &service_id) ||
        dict_intern(m, &m->hosts, e->host, &host_id))
        return QR_ENOMEM;
    m->services.rows[service_id]++;
    m->hosts.rows[host_id]++;
    c->service_id[local] = service_id;
    c->host_id[local] = host_id;
    const qr_field *fields = qr_event_fields(&c->rows, e);
    for (uint32_t fi = 0; fi < e->field_count; fi++)
        if (schema_note(m, fields[fi].key, fields[fi].type)) return QR_ENOMEM;
    if (chunk_add_tokens(c, local, e->msg) || counts_add(c, service_id, e->level)) return QR_ENOMEM;
    if (e->ts_ns < c->min_ts_ns) c->min_ts_ns = e->ts_ns;
    if (e->ts_ns > c->max_ts_ns) c->max_ts_ns = e->ts_ns;
    if (e->ts_ns < m->min_ts_ns) m->min_ts_ns = e->ts_ns;
    if (e->ts_ns > m->max_ts_ns) m->max_ts_ns = e->ts_ns;
    m->level_rows[e->level < QR_LEVEL_COUNT ? e->level : 0]++;
    m->row_count++;
    atomic_store_explicit(&c->published_rows, local + 1, memory_order_release);
    return 0;
}

static void note_lsn(memtab *m, uint64_t lsn)
{
    if (lsn < m->min_lsn) m->min_lsn = lsn;
    if (lsn > m->max_lsn) m->max_lsn = lsn;
}

int memtab_append(memtab *m, const qr_batch *b, uint64_t lsn)
{
    for (size_t row_idx = 0; row_idx < b->count; row_idx++) {
        const qr_event *src = &b->events[row_idx];
        mt_chunk *c = open_chunk(m);
        if (!c) return QR_ENOMEM;
        if (chunk_reserve_fields(m, c, src->field_count)) return QR_ENOMEM;
        size_t arena_before = c->rows.arena.total_bytes;
        if (qr_batch_copy_event(&c->rows, b, row_idx)) return QR_ENOMEM;
        m->bytes += sizeof(qr_event) + (c->rows.arena.total_bytes - arena_before);
        int rc = chunk_index_row(m, c, (uint32_t)(c->rows.count - 1));
        if (rc) return rc;
        if (c->rows.count == c->capacity) chunk_build_tokidx(m, c);
    }
    if (b->count) note_lsn(m, lsn);
    return 0;
}

int memtab_append_take(memtab *m, qr_batch *b, uint64_t lsn)
{
    if (b->count < MEMTAB_TAKE_MIN_ROWS || b->count > UINT32_MAX / 2)
        return memtab_append(m, b, lsn);
    if (chunks_reserve(m)) return QR_ENOMEM;
    mt_chunk *c = chunk_new((uint32_t)m->row_count, (uint32_t)b->count, true);
    if (!c) return QR_ENOMEM;
    c->rows = *b;
    c->sealed = true;
    qr_batch_init(b);
    m->chunks[m->chunk_count++] = c;
    m->bytes += chunk_fixed_bytes(c) + c->rows.cap * sizeof(qr_event) +
                c->rows.field_cap * sizeof(qr_field) + c->rows.arena.total_bytes;
    for (uint32_t local = 0; local < c->rows.count; local++) {
        int rc = chunk_index_row(m, c, local);
        if (rc) return rc;
    }
    chunk_build_tokidx(m, c);
    note_lsn(m, lsn);
    return 0;
}

void memtab_seal(memtab *m)
{
    if (!m->chunk_count) return;
    mt_chunk *c = m->chunks[m->chunk_count - 1];
    if (c->sealed) return;
    c->sealed = true;
    if (!c->tokidx && c->hash_end && c->rows.count) chunk_build_tokidx(m, c);
}

int memtab_chunks(memtab *m, const qr_batch ***out, size_t *count)
{
    const qr_batch **arr = malloc((m->chunk_count ? m->chunk_count : 1) * sizeof *arr);
    if (!arr) return QR_ENOMEM;
    for (size_t chunk_idx = 0; chunk_idx < m->chunk_count; chunk_idx++)
        arr[chunk_idx] = &m->chunks[chunk_idx]->rows;
    *out = arr;
    *count = m->chunk_count;
    return 0;
}

/* --- the part ------------------------------------------------------------------------------ */

typedef struct mt_block {
    mt_chunk *chunk;
    const qr_event *events; /* snapshot of the chunk's arrays */
    const qr_field *fields;
    const mt_tokidx *tokidx; /* NULL: the chunk was still open (bloom only) */
    qr_block_meta meta;
} mt_block;

typedef struct mt_part {
    qr_part part;
    memtab *m;
    mt_block *blocks;
    qr_str *services;
    uint64_t *service_rows;
    qr_str *hosts;
    qr_field_schema *fields;
    qr_svc_level_count *open_counts; /* copy of the open chunk's counts */
} mt_part;

static int mtp_block_meta(qr_part *p, uint32_t block_idx, qr_block_meta *out)
{
    mt_part *mp = p->impl;
    if (block_idx >= p->block_count) return QR_EINVAL;
    *out = mp->blocks[block_idx].meta;
    return 0;
}

static uint64_t *present_alloc(qr_arena *a, uint32_t rows)
{
    return qr_arena_calloc(a, (rows + 63) / 64, sizeof(uint64_t));
}

static int mtp_load_column(qr_part *p, uint32_t block_idx, qr_col_kind kind, uint32_t field_idx,
                           qr_arena *arena, qr_column *out, qr_diag *d)
{
    mt_part *mp = p->impl;
    if (block_idx >= p->block_count) return qr_diag_set(d, QR_EINVAL, "block out of range");
    const mt_block *blk = &mp->blocks[block_idx];
    uint32_t rows = blk->meta.row_count;
    memset(out, 0, sizeof *out);
    out->row_count = rows;
    switch (kind) {
    case QR_COL_TS:
    case QR_COL_INGEST_TS: {
        int64_t *v = qr_arena_alloc(arena, (rows ? rows : 1) * sizeof *v);
        if (!v) return qr_diag_set(d, QR_ELIMIT, "query memory budget exceeded");
        for (uint32_t row_idx = 0; row_idx < rows; row_idx++)
            v[row_idx] =
                kind == QR_COL_TS ? blk->events[row_idx].ts_ns : blk->events[row_idx].ingest_ts_ns;
        out->type = QR_FT_INT;
        out->i64 = v;
        return 0;
    }
    case QR_COL_LEVEL: {
        uint8_t *v = qr_arena_alloc(arena, rows ? rows : 1);
        if (!v) return qr_diag_set(d, QR_ELIMIT, "query memory budget exceeded");
        for (uint32_t row_idx = 0; row_idx < rows; row_idx++)
            v[row_idx] = blk->events[row_idx].level;
        out->type = QR_FT_INT;
        out->u8 = v;
        return 0;
    }
    case QR_COL_SERVICE:
        out->type = QR_FT_STRING;
        out->ids = blk->chunk->service_id;
        out->dict = p->services;
        out->dict_count = p->service_count;
        return 0;
    case QR_COL_HOST:
        out->type = QR_FT_STRING;
        out->ids = blk->chunk->host_id;
        out->dict = p->hosts;
        out->dict_count = p->host_count;
        return 0;
    case QR_COL_MSG: {
        qr_str *v = qr_arena_alloc(arena, (rows ? rows : 1) * sizeof *v);
        if (!v) return qr_diag_set(d, QR_ELIMIT, "query memory budget exceeded");
        for (uint32_t row_idx = 0; row_idx < rows; row_idx++) v[row_idx] = blk->events[row_idx].msg;
        out->type = QR_FT_STRING;
        out->strs = v;
        return 0;
    }
    case QR_COL_FIELD: {
        if (field_idx >= p->field_count) return qr_diag_set(d, QR_EINVAL, "no such field");
        const qr_field_schema *fs = &p->fields[field_idx];
        uint64_t *present = present_alloc(arena, rows);
        void *values = NULL;
        size_t width = fs->type == QR_FT_STRING ? sizeof(qr_str) : fs->type == QR_FT_BOOL ? 1 : 8;
        values = qr_arena_calloc(arena, rows ? rows : 1, width);
        if (!present || !values) return qr_diag_set(d, QR_ELIMIT, "query memory budget exceeded");
        for (uint32_t row_idx = 0; row_idx < rows; row_idx++) {
            const qr_event *e = &blk->events[row_idx];
            const qr_field *f = blk->fields + e->field_off;
            for (uint32_t fi = 0; fi < e->field_count; fi++) {
                if (f[fi].type != fs->type || !qr_str_eq(f[fi].key, fs->key)) continue;
                present[row_idx >> 6] |= 1ULL << (row_idx & 63);
                switch (fs->type) {
                case QR_FT_STRING:
                    ((qr_str *)values)[row_idx] = f[fi].v.s;
                    break;
                case QR_FT_INT:
                    ((int64_t *)values)[row_idx] = f[fi].v.i;
                    break;
                case QR_FT_FLOAT:
                    ((double *)values)[row_idx] = f[fi].v.f;
                    break;
                case QR_FT_BOOL:
                    ((uint8_t *)values)[row_idx] = f[fi].v.b;
                    break;
                default:
                    break;
                }
                break;
            }
        }
        out->type = fs->type;
        out->present = present;
        switch (fs->type) {
        case QR_FT_STRING:
            out->strs = values;
            break;
        case QR_FT_INT:
            out->i64 = values;
            break;
        case QR_FT_FLOAT:
            out->f64 = values;
            break;
        default:
            out->u8 = values;
            break;
        }
        return 0;
    }
    }
    return qr_diag_set(d, QR_EINVAL, "unknown column kind");
}

static int mtp_load_msgs(qr_part *p, uint32_t block_idx, const uint32_t *rows, uint32_t n,
                         qr_arena *arena, qr_str *out, qr_diag *d)
{
    mt_part *mp = p->impl;
    if (block_idx >= p->block_count) return qr_diag_set(d, QR_EINVAL, "block out of range");
    const mt_block *blk = &mp->blocks[block_idx];
    for (uint32_t idx = 0; idx < n; idx++) {
        if (rows[idx] >= blk->meta.row_count) return qr_diag_set(d, QR_EINVAL, "row out of range");
        out[idx] = blk->events[rows[idx]].msg;
    }
    return 0;
}

static bool mtp_block_may_contain_token(qr_part *p, uint32_t block_idx, uint64_t token_hash)
{
    mt_part *mp = p->impl;
    if (block_idx >= p->block_count) return false;
    const mt_chunk *c = mp->blocks[block_idx].chunk;
    return bloom_test(c->bloom, c->bloom_mask, token_hash);
}

/* Candidate rows of a term: from the token index of complete chunks, every row of an open
 * chunk whose bloom may hold it. A superset (see mt_tokidx): the engine verifies them. */
static int mtp_postings(qr_part *p, const char *term, size_t len, roaring_bitmap_t **out,
                        qr_diag *d)
{
    mt_part *mp = p->impl;
    (void)d;
    uint64_t hash = qr_token_hash(term, len);
    uint32_t key = tok_key(hash);
    roaring_bitmap_t *b = roaring_bitmap_create();
    if (!b) return QR_ENOMEM;
    for (uint32_t block_idx = 0; block_idx < p->block_count; block_idx++) {
        const mt_block *blk = &mp->blocks[block_idx];
        uint32_t first = blk->meta.first_row, n = blk->meta.row_count;
        if (!n) continue;
        if (!blk->tokidx) {
            if (bloom_test(blk->chunk->bloom, blk->chunk->bloom_mask, hash))
                roaring_bitmap_add_range(b, first, (uint64_t)first + n);
            continue;
        }
        const mt_tokidx *t = blk->tokidx;
        uint32_t slot = tokidx_slot(t, key);
        if (!t->keys[slot]) continue;
        for (uint32_t at = t->start[slot]; at < t->start[slot + 1] && t->rows[at] < n; at++)
            roaring_bitmap_add(b, first + t->rows[at]);
    }
    *out = b;
    return 0;
}

static int mtp_terms_with_prefix(qr_part *p, const char *prefix, size_t len, qr_term_fn fn,
                                 void *ctx, qr_diag *d)
{
    return QR_ENOTFOUND;
}

static void mtp_destroy(qr_part *p)
{
    mt_part *mp = p->impl;
    memtab_unref(mp->m);
    free(mp->blocks);
    free(mp->services);
    free(mp->service_rows);
    free(mp->hosts);
    free(mp->fields);
    free(mp->open_counts);
    free(mp);
}

static const qr_part_ops mt_part_ops = {
    .block_meta = mtp_block_meta,
    .load_column = mtp_load_column,
    .load_msgs = mtp_load_msgs,
    .block_may_contain_token = mtp_block_may_contain_token,
    .postings = mtp_postings,
    .terms_with_prefix = mtp_terms_with_prefix,
    .destroy = mtp_destroy,
};

int memtab_part(memtab *m, qr_part **out)
{
    mt_part *mp = calloc(1, sizeof *mp);
    if (!mp) return QR_ENOMEM;
    size_t nblocks = m->chunk_count;
    mp->blocks = calloc(nblocks ? nblocks : 1, sizeof *mp->blocks);
    mp->services = malloc((m->services.count + 1) * sizeof(qr_str));
    mp->service_rows = malloc((m->services.count + 1) * sizeof(uint64_t));
    mp->hosts = malloc((m->hosts.count + 1) * sizeof(qr_str));
    mp->fields = malloc((m->schema_count + 1) * sizeof(qr_field_schema));
    if (!mp->blocks || !mp->services || !mp->service_rows || !mp->hosts || !mp->fields) {
        free(mp->blocks);
        free(mp->services);
        free(mp->service_rows);
        free(mp->hosts);
        free(mp->fields);
        free(mp);
        return QR_ENOMEM;
    }
    if (m->services.count) {
        memcpy(mp->services, m->services.names, m->services.count * sizeof(qr_str));
        memcpy(mp->service_rows, m->services.rows, m->services.count * sizeof(uint64_t));
    }
    if (m->hosts.count) memcpy(mp->hosts, m->hosts.names, m->hosts.count * sizeof(qr_str));
    for (uint32_t idx = 0; idx < m->schema_count; idx++) {
        mp->fields[idx].key = m->schema[idx].key;
        mp->fields[idx].type = m->schema[idx].type;
        mp->fields[idx].row_count = m->schema[idx].row_count;
    }
    for (size_t chunk_idx = 0; chunk_idx < nblocks; chunk_idx++) {
        mt_chunk *c = m->chunks[chunk_idx];
        mt_block *blk = &mp->blocks[chunk_idx];
        blk->chunk = c;
        blk->events = c->rows.events;
        blk->fields = c->rows.fields;
        blk->tokidx = c->tokidx;
        blk->meta.first_row = c->first_row;
        blk->meta.row_count = atomic_load_explicit(&c->published_rows, memory_order_acquire);
        blk->meta.min_ts_ns = c->min_ts_ns;
        blk->meta.max_ts_ns = c->max_ts_ns;
        blk->meta.count_n = c->count_n;
        if (chunk_idx + 1 == nblocks && !c->sealed && c->rows.count < c->capacity) {
            /* the open chunk keeps counting: give the snapshot its own copy */
            mp->open_counts = malloc((c->count_n + 1) * sizeof *mp->open_counts);
            if (!mp->open_counts) {
                mp->m = m;
                atomic_fetch_add(&m->refs, 1);
                mtp_destroy(&mp->part);
                return QR_ENOMEM;
            }
            memcpy(mp->open_counts, c->counts, c->count_n * sizeof *c->counts);
            blk->meta.counts = mp->open_counts;
        } else {
            blk->meta.counts = c->counts;
        }
    }
    atomic_fetch_add(&m->refs, 1);
    mp->m = m;
    qr_part *p = &mp->part;
    p->ops = &mt_part_ops;
    p->impl = mp;
    atomic_init(&p->refs, 1);
    p->kind = QR_PART_MEMTABLE;
    p->id = m->id;
    p->min_ts_ns = m->row_count ? m->min_ts_ns : 0;
    p->max_ts_ns = m->row_count ? m->max_ts_ns : 0;
    p->row_count = (uint32_t)m->row_count;
    p->block_count = (uint32_t)nblocks;
    p->has_postings = true; /* candidates by token hash, verified by the engine */
    p->postings_exact = false;
    p->services = mp->services;
    p->service_count = m->services.count;
    p->hosts = mp->hosts;
    p->host_count = m->hosts.count;
    memcpy(p->level_rows, m->level_rows, sizeof p->level_rows);
    p->service_rows = mp->service_rows;
    p->fields = mp->fields;
    p->field_count = m->schema_count;
    p->path = NULL;
    *out = p;
    return 0;
}

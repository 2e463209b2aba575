/* cq_batch — one batch shared by the continuous queries that see it (contract in cq_batch.h). */
#include "engine/cq_batch.h"

#include "common/qr_buf.h"
#include "common/qr_hash.h"
#include "engine/cq_agg.h"

#include <stdlib.h>
#include <string.h>

#define CQB_CLASS_SLOTS (2 * CQB_CLASS_MAX) /* open addressing over class hashes (power of 2) */

/* ---- compiling a WHERE into conjuncts -------------------------------------------------------- */

static bool is_label(const sql_expr *e)
{
    const char *s = e->u.name.s;
    uint32_t len = e->u.name.len;
    return (len == 7 && !memcmp(s, "service", 7)) || (len == 5 && !memcmp(s, "level", 5)) ||
           (len == 4 && !memcmp(s, "host", 4));
}

/* True when e reads no column but service, host and level (and nothing else per event);
 * *host set when it reads host. */
static bool labels_only(const sql_expr *e, bool *host)
{
    if (!e) return true;
    switch (e->kind) {
    case SQL_EXPR_NULL:
    case SQL_EXPR_BOOL:
    case SQL_EXPR_INT:
    case SQL_EXPR_FLOAT:
    case SQL_EXPR_STRING:
    case SQL_EXPR_DURATION:
    case SQL_EXPR_LEVEL:
        return true;
    case SQL_EXPR_FIELD:
        if (e->u.name.len == 4 && !memcmp(e->u.name.s, "host", 4)) *host = true;
        return is_label(e);
    case SQL_EXPR_UNARY:
        return labels_only(e->u.unary.arg, host);
    case SQL_EXPR_BINARY:
        return e->u.binary.op != SQL_OP_MATCH && labels_only(e->u.binary.lhs, host) &&
               labels_only(e->u.binary.rhs, host);
    case SQL_EXPR_AND:
    case SQL_EXPR_OR:
        for (uint32_t idx = 0; idx < e->u.list.count; idx++)
            if (!labels_only(e->u.list.items[idx], host)) return false;
        return true;
    case SQL_EXPR_IN:
        if (!labels_only(e->u.in.arg, host)) return false;
        for (uint32_t idx = 0; idx < e->u.in.count; idx++)
            if (!labels_only(e->u.in.items[idx], host)) return false;
        return true;
    case SQL_EXPR_BETWEEN:
        return labels_only(e->u.between.arg, host) && labels_only(e->u.between.lo, host) &&
               labels_only(e->u.between.hi, host);
    case SQL_EXPR_IS_NULL:
        return labels_only(e->u.is_null.arg, host);
    default:
        return false; /* calls and anything new: per event */
    }
}

void cqb_where_fini(cqb_where *w)
{
    if (!w) return;
    for (uint32_t idx = 0; idx < w->count; idx++) {
        evf_free(w->conj[idx].filter);
        free(w->conj[idx].text);
    }
    free(w->conj);
    w->conj = NULL;
    w->count = 0;
}

int cqb_where_compile(const char *text, const sql_expr *where, cqb_where *out, qr_diag *d)
{
    memset(out, 0, sizeof *out);
    if (!where) return 0;
    uint32_t n = where->kind == SQL_EXPR_AND ? where->u.list.count : 1;
    out->conj = calloc(n, sizeof *out->conj);
    if (!out->conj) return QR_ENOMEM;
    qr_buf b;
    qr_buf_init(&b);
    int rc = 0;
    for (uint32_t idx = 0; idx < n && !rc; idx++) {
        const sql_expr *c = where->kind == SQL_EXPR_AND ? where->u.list.items[idx] : where;
        cqb_conj *cj = &out->conj[idx];
        out->count++;
        qr_buf_clear(&b);
        sql_print_expr(c, &b);
        cj->text = qr_buf_ok(&b) ? strndup(b.data ? (const char *)b.data : "", b.len) : NULL;
        if (!cj->text) {
            rc = QR_ENOMEM;
            break;
        }
        cj->key = qr_hash64(cj->text, strlen(cj->text));
        cj->labels_only = labels_only(c, &cj->reads_host);
        rc = evf_compile_where(text, c, &cj->filter, d);
    }
    qr_buf_fini(&b);
    if (rc) cqb_where_fini(out);
    return rc;
}

/* ---- per batch ------------------------------------------------------------------------------- */

typedef struct cqb_memo {
    uint64_t key;
    const char *text; /* the first conjunct's: equal texts share the entry */
    uint64_t *bits;   /* one bit per event */
    size_t bits_cap;  /* words */
} cqb_memo;

typedef struct cqb_classes {
    bool done;
    bool ok;
    uint16_t *cls; /* per event */
    size_t cls_cap;
    uint32_t count;
    uint32_t rep[CQB_CLASS_MAX]; /* an event of each class */
} cqb_classes;

typedef struct str_key {
    uint64_t a, b, c;
} str_key;

typedef struct cqb_str {
    str_key key;
    qr_str s;
} cqb_str;

typedef struct cqb_strtab {
    bool done, ok;
    uint16_t *ids; /* per event */
    size_t ids_cap;
    uint16_t *slots; /* CQB_CLASS_SLOTS: string + 1, 0 = empty */
    size_t mask;     /* slots in use - 1 */
    cqb_str *strs;   /* CQB_CLASS_MAX */
    uint32_t count;
} cqb_strtab;

typedef struct cqb_grp {
    bool with_host;
    int64_t interval_ns;
    size_t n;
    uint16_t *cls;
    int64_t *t;
    uint32_t *off, *rows, *gid;
    size_t cap;      /* groups and events: at most the batch's events */
    uint32_t *slots; /* group + 1 by (class, bucket) hash */
    size_t slots_cap;
} cqb_grp;

typedef struct cqb_col {
    char name[QR_KEY_MAX_BYTES + 1];
    exec_value *vals;
    size_t cap;
} cqb_col;

struct cqb_batch {
    const qr_batch *b;
    size_t words;
    /* classes: [0] (service, level), [1] (service, host, level) */
    cqb_classes cs[2];
    cqb_strtab tabs[2];          /* [0] service, [1] host */
    uint16_t *slots;             /* CQB_CLASS_SLOTS: class + 1, 0 = empty */
    uint64_t *slot_keys;         /* CQB_CLASS_SLOTS: the (service, host, level) of a slot */
    size_t slot_mask;            /* slots in use - 1: twice the batch, at most CQB_CLASS_SLOTS */
    uint8_t pass[CQB_CLASS_MAX]; /* one conjunct's result per class */
    /* conjunct results */
    cqb_memo *memo;
    size_t memo_n, memo_cap;
    /* a selection */
    uint64_t *sel;
    size_t sel_cap;
    uint32_t *rows;
    size_t rows_cap;
    /* columns */
    cqb_col *cols;
    size_t col_n, col_cap;
    /* groups by (class, bucket) */
    cqb_grp *grps;
    size_t grp_n, grp_cap;
};

cqb_batch *cqb_batch_new(void) { return calloc(1, sizeof(cqb_batch)); }

void cqb_batch_free(cqb_batch *x)
{
    if (!x) return;
    free(x->cs[0].cls);
    free(x->cs[1].cls);
    free(x->slots);
    free(x->slot_keys);
    for (int k = 0; k < 2; k++) {
        free(x->tabs[k].ids);
        free(x->tabs[k].slots);
        free(x->tabs[k].strs);
    }
    for (size_t idx = 0; idx < x->memo_cap; idx++) free(x->memo[idx].bits);
    free(x->memo);
    free(x->sel);
    free(x->rows);
    for (size_t idx = 0; idx < x->col_cap; idx++) free(x->cols[idx].vals);
    for (size_t idx = 0; idx < x->grp_cap; idx++) {
        cqb_grp *g = &x->grps[idx];
        free(g->cls);
        free(g->t);
        free(g->off);
        free(g->rows);
        free(g->gid);
        free(g->slots);
    }
    free(x->grps);
    free(x->cols);
    free(x);
}

void cqb_batch_begin(cqb_batch *x, const qr_batch *b)
{
    x->b = b;
    x->words = (b->count + 63) / 64;
    size_t slots = 64;
    while (slots < 2 * b->count && slots < CQB_CLASS_SLOTS) slots *= 2;
    x->slot_mask = slots - 1;
    for (int k = 0; k < 2; k++) {
        x->cs[k].done = x->cs[k].ok = false;
        x->cs[k].count = 0;
        x->tabs[k].done = x->tabs[k].ok = false;
    }
    x->memo_n = 0;
    x->col_n = 0;
    x->grp_n = 0;
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return true;
    size_t cap2 = *cap ? *cap : 64;
    while (cap2 < need) cap2 *= 2;
    void *q = realloc(*p, cap2 * elem);
    if (!q) return false;
    *p = q;
    *cap = cap2;
    return true;
}

/* ---- label classes ----
 * Each event's service (and host) is interned into a small id first: a string of at most 24
 * bytes is identified by its length and three (overlapping) 8-byte loads, or two 4-byte ones,
 * compared as words; longer ones by the same words and memcmp. A class is then a (service id, host
 * id, level) triple, found in an integer table. */

static inline str_key str_key_of(qr_str s)
{
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t n = s.len;
    str_key k = {0, 0, 0};
    if (n >= 8) {
        memcpy(&k.a, p, 8);
        memcpy(&k.b, p + n - 8, 8);
        if (n > 16) memcpy(&k.c, p + 8, 8);
    } else if (n >= 4) {
        uint32_t x, y;
        memcpy(&x, p, 4);
        memcpy(&y, p + n - 4, 4);
        k.a = x;
        k.b = y;
    } else if (n > 0) {
        k.a = (uint64_t)p[0] | (uint64_t)p[n / 2] << 8 | (uint64_t)p[n - 1] << 16;
    }
    return k;
}

static inline uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

/* The id of s in t (added when new); UINT32_MAX when the table is full. */
static uint32_t intern(cqb_strtab *t, qr_str s)
{
    str_key k = str_key_of(s);
    uint64_t h = mix64((k.a * 0x9e3779b97f4a7c15ULL) ^ k.b ^ (k.c * 0xc4ceb9fe1a85ec53ULL) ^
                       ((uint64_t)s.len << 56));
    size_t pos = h & t->mask;
    for (;;) {
        uint16_t slot = t->slots[pos];
        if (!slot) break;
        const cqb_str *e = &t->strs[slot - 1];
        if (e->key.a == k.a && e->key.b == k.b && e->key.c == k.c && e->s.len == s.len &&
            (s.len <= 24 || e->s.ptr == s.ptr || !memcmp(e->s.ptr, s.ptr, s.len)))
            return slot - 1u;
        pos = (pos + 1) & t->mask;
    }
    if (t->count == CQB_CLASS_MAX) return UINT32_MAX;
    t->strs[t->count].key = k;
    t->strs[t->count].s = s;
    t->slots[pos] = (uint16_t)(t->count + 1);
    return t->count++;
}

/* Per event ids of service (which = 0) or host (1); NULL when more than CQB_CLASS_MAX. */
static const uint16_t *ids_of(cqb_batch *x, int which)
{
    cqb_strtab *t = &x->tabs[which];
    if (t->done) return t->ok ? t->ids : NULL;
    t->done = true;
    t->ok = false;
    t->count = 0;
    const qr_batch *b = x->b;
    if (!grow((void **)&t->ids, &t->ids_cap, b->count ? b->count : 1, sizeof *t->ids)) return NULL;
    if (!t->slots && !(t->slots = malloc(CQB_CLASS_SLOTS * sizeof *t->slots))) return NULL;
    if (!t->strs && !(t->strs = malloc(CQB_CLASS_MAX * sizeof *t->strs))) return NULL;
    t->mask = x->slot_mask;
    memset(t->slots, 0, (t->mask + 1) * sizeof *t->slots);
    for (size_t idx = 0; idx < b->count; idx++) {
        uint32_t id = intern(t, which ? b->events[idx].host : b->events[idx].service);
        if (id == UINT32_MAX) return NULL;
        t->ids[idx] = (uint16_t)id;
    }
    t->ok = true;
    return t->ids;
}

static void classes_compute(cqb_batch *x, bool with_host)
{
    const qr_batch *b = x->b;
    cqb_classes *cs = &x->cs[with_host];
    cs->done = true;
    cs->ok = false;
    cs->count = 0;
    const uint16_t *sid = ids_of(x, 0);
    const uint16_t *hid = with_host ? ids_of(x, 1) : NULL;
    if (!sid || (with_host && !hid)) return;
    if (!grow((void **)&cs->cls, &cs->cls_cap, b->count ? b->count : 1, sizeof *cs->cls)) return;
    if (!x->slots && !(x->slots = malloc(CQB_CLASS_SLOTS * sizeof *x->slots))) return;
    if (!x->slot_keys && !(x->slot_keys = malloc(CQB_CLASS_SLOTS * sizeof *x->slot_keys))) return;
    memset(x->slots, 0, (x->slot_mask + 1) * sizeof *x->slots);
    uint64_t prev_key = UINT64_MAX;
    uint16_t prev = 0;
    for (size_t idx = 0; idx < b->count; idx++) {
        const qr_event *e = &b->events[idx];
        uint64_t key =
            (uint64_t)sid[idx] | (uint64_t)(hid ? hid[idx] : 0) << 16 | (uint64_t)e->level << 32;
        if (key == prev_key) { /* runs of one source */
            cs->cls[idx] = prev;
            continue;
        }
        size_t pos = mix64(key * 0x9e3779b97f4a7c15ULL) & x->slot_mask;
        uint32_t c = UINT32_MAX;
        while (x->slots[pos]) {
            if (x->slot_keys[pos] == key) {
                c = x->slots[pos] - 1u;
                break;
            }
            pos = (pos + 1) & x->slot_mask;
        }
        if (c == UINT32_MAX) {
            if (cs->count == CQB_CLASS_MAX) return; /* too many: per-event evaluation */
            c = cs->count;
            cs->rep[cs->count++] = (uint32_t)idx;
            x->slots[pos] = (uint16_t)(c + 1);
            x->slot_keys[pos] = key;
        }
        cs->cls[idx] = (uint16_t)c;
        prev = (uint16_t)c;
        prev_key = key;
    }
    cs->ok = true;
}

const uint16_t *cqb_batch_classes(cqb_batch *x, bool with_host, uint32_t *count)
{
    cqb_classes *cs = &x->cs[with_host];
    if (!cs->done) classes_compute(x, with_host);
    *count = cs->ok ? cs->count : 0;
    return cs->ok ? cs->cls : NULL;
}

/* The bitmap of the events for which conjunct c is TRUE; NULL when out of memory. */
static const uint64_t *conj_bits(cqb_batch *x, const cqb_conj *c)
{
    for (size_t idx = 0; idx < x->memo_n; idx++)
        if (x->memo[idx].key == c->key && !strcmp(x->memo[idx].text, c->text))
            return x->memo[idx].bits;
    if (x->memo_n == x->memo_cap) {
        size_t cap = x->memo_cap ? x->memo_cap * 2 : 16;
        cqb_memo *m = realloc(x->memo, cap * sizeof *m);
        if (!m) return NULL;
        memset(m + x->memo_cap, 0, (cap - x->memo_cap) * sizeof *m);
        x->memo = m;
        x->memo_cap = cap;
    }
    cqb_memo *me = &x->memo[x->memo_n];
    if (!grow((void **)&me->bits, &me->bits_cap, x->words ? x->words : 1, sizeof *me->bits))
        return NULL;
    uint64_t *bits = me->bits;
    memset(bits, 0, x->words * sizeof *bits);
    const qr_batch *b = x->b;
    uint32_t ncls = 0;
    /* (service, level) classes unless the conjunct reads host or those are at hand */
    bool host = c->reads_host || (x->cs[1].done && x->cs[1].ok);
    const uint16_t *cls = c->labels_only ? cqb_batch_classes(x, host, &ncls) : NULL;
    if (cls) {
        const uint32_t *rep = x->cs[host].rep;
        for (uint32_t k = 0; k < ncls; k++)
            x->pass[k] = evf_match(c->filter, b, &b->events[rep[k]]) == 1;
        for (size_t idx = 0; idx < b->count; idx++)
            bits[idx >> 6] |= (uint64_t)x->pass[cls[idx]] << (idx & 63);
    } else {
        for (size_t idx = 0; idx < b->count; idx++)
            if (evf_match(c->filter, b, &b->events[idx]) == 1) bits[idx >> 6] |= 1ull << (idx & 63);
    }
    me->key = c->key;
    me->text = c->text;
    x->memo_n++;
    return bits;
}

int cqb_batch_select(cqb_batch *x, const cqb_where *w, const uint32_t **rows, size_t *n)
{
    const qr_batch *b = x->b;
    if (!grow((void **)&x->rows, &x->rows_cap, b->count ? b->count : 1, sizeof *x->rows))
        return QR_ENOMEM;
    size_t cnt = 0;
    if (w->count == 0) {
        for (size_t idx = 0; idx < b->count; idx++) x->rows[idx] = (uint32_t)idx;
        *rows = x->rows;
        *n = b->count;
        return 0;
    }
    const uint64_t *sel = conj_bits(x, &w->conj[0]);
    if (!sel) return QR_ENOMEM;
    if (w->count > 1) {
        if (!grow((void **)&x->sel, &x->sel_cap, x->words ? x->words : 1, sizeof *x->sel))
            return QR_ENOMEM;
        memcpy(x->sel, sel, x->words * sizeof *sel);
        for (uint32_t ci = 1; ci < w->count; ci++) {
            const uint64_t *o = conj_bits(x, &w->conj[ci]);
            if (!o) return QR_ENOMEM;
            for (size_t wi = 0; wi < x->words; wi++) x->sel[wi] &= o[wi];
        }
        sel = x->sel;
    }
    for (size_t wi = 0; wi < x->words; wi++) {
        uint64_t word = sel[wi];
        while (word) {
            x->rows[cnt++] = (uint32_t)(wi * 64 + (size_t)__builtin_ctzll(word));
            word &= word - 1;
        }
    }
    *rows = x->rows;
    *n = cnt;
    return 0;
}

const exec_value *cqb_batch_column(cqb_batch *x, const char *name)
{
    for (size_t idx = 0; idx < x->col_n; idx++)
        if (!strcmp(x->cols[idx].name, name)) return x->cols[idx].vals;
    if (strlen(name) > QR_KEY_MAX_BYTES) return NULL;
    if (x->col_n == x->col_cap) {
        size_t cap = x->col_cap ? x->col_cap * 2 : 8;
        cqb_col *c = realloc(x->cols, cap * sizeof *c);
        if (!c) return NULL;
        memset(c + x->col_cap, 0, (cap - x->col_cap) * sizeof *c);
        x->cols = c;
        x->col_cap = cap;
    }
    cqb_col *c = &x->cols[x->col_n];
    const qr_batch *b = x->b;
    if (!grow((void **)&c->vals, &c->cap, b->count ? b->count : 1, sizeof *c->vals)) return NULL;
    strcpy(c->name, name);
    if (cq_agg_name_is_label(name)) {
        for (size_t idx = 0; idx < b->count; idx++)
            c->vals[idx] = cq_agg_event_value(b, &b->events[idx], name);
    } else {
        size_t len = strlen(name);
        for (size_t idx = 0; idx < b->count; idx++)
            c->vals[idx] = cq_agg_field_value(b, &b->events[idx], name, len);
    }
    x->col_n++;
    return c->vals;
}

/* ---- groups by (class, bucket) ----------------------------------------------------------------
 */

static int64_t bucket_of(int64_t t, int64_t w)
{
    int64_t b = t / w * w;
    return (t < 0 && b != t) ? b - w : b;
}

int cqb_batch_groups(cqb_batch *x, bool with_host, int64_t interval_ns, cqb_groups *out)
{
    cqb_grp *g = NULL;
    for (size_t idx = 0; idx < x->grp_n && !g; idx++)
        if (x->grps[idx].with_host == with_host && x->grps[idx].interval_ns == interval_ns)
            g = &x->grps[idx];
    if (!g) {
        uint32_t ncls = 0;
        const uint16_t *cls = cqb_batch_classes(x, with_host, &ncls);
        if (!cls) return QR_ELIMIT;
        if (x->grp_n == x->grp_cap) {
            size_t cap = x->grp_cap ? x->grp_cap * 2 : 4;
            cqb_grp *grown = realloc(x->grps, cap * sizeof *grown);
            if (!grown) return QR_ENOMEM;
            memset(grown + x->grp_cap, 0, (cap - x->grp_cap) * sizeof *grown);
            x->grps = grown;
            x->grp_cap = cap;
        }
        g = &x->grps[x->grp_n];
        const qr_batch *b = x->b;
        size_t n = b->count ? b->count : 1;
        size_t slots = 64;
        while (slots < 2 * n) slots *= 2;
        if (n > g->cap) {
            free(g->cls);
            free(g->t);
            free(g->off);
            free(g->rows);
            free(g->gid);
            g->cls = malloc(n * sizeof *g->cls);
            g->t = malloc(n * sizeof *g->t);
            g->off = malloc((n + 1) * sizeof *g->off);
            g->rows = malloc(n * sizeof *g->rows);
            g->gid = malloc(n * sizeof *g->gid);
            g->cap = g->cls && g->t && g->off && g->rows && g->gid ? n : 0;
            if (!g->cap) return QR_ENOMEM;
        }
        if (slots > g->slots_cap) {
            free(g->slots);
            g->slots = malloc(slots * sizeof *g->slots);
            g->slots_cap = g->slots ? slots : 0;
            if (!g->slots) return QR_ENOMEM;
        }
        memset(g->slots, 0, slots * sizeof *g->slots);
        g->with_host = with_host;
        g->interval_ns = interval_ns;
        size_t ng = 0;
        uint32_t prev = UINT32_MAX;
        for (size_t idx = 0; idx < b->count; idx++) {
            int64_t ts = b->events[idx].ts_ns;
            uint16_t c = cls[idx];
            if (prev != UINT32_MAX && g->cls[prev] == c && ts >= g->t[prev] &&
                ts - g->t[prev] < interval_ns) {
                g->gid[idx] = prev;
                g->off[prev]++;
                continue;
            }
            int64_t t = bucket_of(ts, interval_ns);
            size_t pos = mix64(((uint64_t)t * 0x9e3779b97f4a7c15ULL) ^ c) & (slots - 1);
            uint32_t gi = UINT32_MAX;
            while (g->slots[pos]) {
                uint32_t cand = g->slots[pos] - 1;
                if (g->cls[cand] == c && g->t[cand] == t) {
                    gi = cand;
                    break;
                }
                pos = (pos + 1) & (slots - 1);
            }
            if (gi == UINT32_MAX) {
                gi = (uint32_t)ng++;
                g->cls[gi] = c;
                g->t[gi] = t;
                g->off[gi] = 0;
                g->slots[pos] = gi + 1;
            }
            g->gid[idx] = gi;
            g->off[gi]++;
            prev = gi;
        }
        /* counts to offsets, then the events in batch order per group */
        uint32_t sum = 0;
        for (size_t gi = 0; gi < ng; gi++) {
            uint32_t cnt = g->off[gi];
            g->off[gi] = sum;
            sum += cnt;
        }
        g->off[ng] = sum;
        for (size_t idx = 0; idx < b->count; idx++) g->rows[g->off[g->gid[idx]]++] = (uint32_t)idx;
        for (size_t gi = ng; gi > 0; gi--) g->off[gi] = g->off[gi - 1];
        g->off[0] = 0;
        g->n = ng;
        x->grp_n++;
    }
    out->n = g->n;
    out->cls = g->cls;
    out->t = g->t;
    out->off = g->off;
    out->rows = g->rows;
    return 0;
}

bool cqb_where_by_class(const cqb_where *w, bool with_host)
{
    for (uint32_t ci = 0; ci < w->count; ci++)
        if (!w->conj[ci].labels_only || (w->conj[ci].reads_host && !with_host)) return false;
    return true;
}

int cqb_batch_class_pass(cqb_batch *x, const cqb_where *w, bool with_host, uint8_t *pass)
{
    uint32_t ncls = 0;
    if (!cqb_batch_classes(x, with_host, &ncls)) return QR_ELIMIT;
    const uint32_t *rep = x->cs[with_host].rep;
    memset(pass, 1, ncls);
    for (uint32_t ci = 0; ci < w->count; ci++) {
        /* a conjunct of labels only has one value per class: its bit at the class's event */
        const uint64_t *bits = conj_bits(x, &w->conj[ci]);
        if (!bits) return QR_ENOMEM;
        for (uint32_t k = 0; k < ncls; k++)
            pass[k] &= (uint8_t)(bits[rep[k] >> 6] >> (rep[k] & 63) & 1);
    }
    return 0;
}

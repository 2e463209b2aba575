/* match — MATCH search strings: compiled once, answered by posting lists where a part has an
 * inverted index, by token blooms per block where it does not, verified row by row only where
 * the index cannot decide.
 *
 * Candidates (match_part_candidates) are a superset of the matching rows of a part, with a flag
 * saying whether they are exact:
 *   term     postings(term)                                    exact (memtables: by token
 *                                                               hash, a superset: verified)
 *   prefix*  OR of postings(t) for t in terms_with_prefix       exact
 *            (a sparse index lists only some terms: every row)  not exact
 *   "phrase" AND of its tokens' postings                        exact for one token, or
 *                                                               where the segment's
 *                                                               adjacency pairs say so
 *   /regex/, field:value   every row                            not exact
 *   a AND b  intersection; a OR b union      exact when both are
 *   NOT a    all rows minus a when a is exact, else all rows    exact when a is
 * Rows outside an exact set never need their text; the others are verified with match_row on
 * the text the storage tokenizer splits the same way the index did.
 * Regexes are PCRE2 (engine/regex.c); they match the raw text, case-sensitively. */
#include "engine/exec_int.h"

#include <string.h>

static int resolve_field(exec_ctx *q, const char *name, size_t len, sql_pos pos, int *col)
{
    static const char *const builtin[] = {"ts", "ingest_ts", "service", "level", "host", "msg"};
    for (int idx = 0; idx < 6; idx++) {
        if (strlen(builtin[idx]) == len && memcmp(builtin[idx], name, len) == 0) {
            *col = idx;
            return 0;
        }
    }
    if (exec_field_known(q, name, len) || q->lenient_fields) {
        int qf = exec_field_intern(q, name, len);
        if (qf < 0) return exec_over_budget(q);
        *col = COL_FIELD0 + qf;
        return 0;
    }
    return bind_unknown_field(q, name, len, pos);
}

int match_compile(exec_ctx *q, const sql_search *s, ms_node **out)
{
    ms_node *m = qr_arena_calloc(q->qa, 1, sizeof *m);
    if (!m) return exec_over_budget(q);
    m->kind = s->kind;
    m->text = s->text;
    m->len = s->text_len;
    int rc = 0;
    switch (s->kind) {
    case SQL_SEARCH_TERM:
        m->hash = qr_token_hash(s->text, s->text_len);
        break;
    case SQL_SEARCH_PREFIX:
        break;
    case SQL_SEARCH_PHRASE:
        m->token_count = s->token_count;
        m->tokens = s->tokens;
        m->token_lens = qr_arena_calloc(q->qa, s->token_count + 1, sizeof *m->token_lens);
        m->token_hashes = qr_arena_calloc(q->qa, s->token_count + 1, sizeof *m->token_hashes);
        if (!m->token_lens || !m->token_hashes) return exec_over_budget(q);
        for (uint32_t idx = 0; idx < s->token_count; idx++) {
            m->token_lens[idx] = (uint32_t)strlen(s->tokens[idx]);
            m->token_hashes[idx] = qr_token_hash(s->tokens[idx], m->token_lens[idx]);
        }
        break;
    case SQL_SEARCH_REGEX:
        rc = exec_regex_compile(q, s->text, s->text_len, false, s->pos, &m->re);
        break;
    case SQL_SEARCH_FIELD:
        rc = resolve_field(q, s->text, s->text_len, s->pos, &m->field_col);
        break;
    default:
        break;
    }
    if (rc) return rc;
    if (s->child_count) {
        m->children = qr_arena_calloc(q->qa, s->child_count, sizeof *m->children);
        if (!m->children) return exec_over_budget(q);
        m->child_count = s->child_count;
        for (uint32_t idx = 0; idx < s->child_count; idx++) {
            rc = match_compile(q, s->children[idx], &m->children[idx]);
            if (rc) return rc;
        }
    }
    *out = m;
    return 0;
}

/* ---- candidates from posting lists ------------------------------------------------------------
 */

static void bm_free(roaring_bitmap_t *b)
{
    if (b) roaring_bitmap_free(b); /* Debian's 0.2.66 crashes on NULL */
}

static roaring_bitmap_t *bm_all(qr_part *p)
{
    return p->row_count ? roaring_bitmap_from_range(0, p->row_count, 1) : roaring_bitmap_create();
}

static int postings(exec_ctx *q, qr_part *p, const char *term, size_t len, roaring_bitmap_t **out)
{
    roaring_bitmap_t *b = NULL;
    int rc = qr_part_postings(p, term, len, &b, q->d);
    if (rc) return rc;
    *out = b ? b : roaring_bitmap_create();
    return *out ? 0 : QR_ENOMEM;
}

typedef struct prefix_acc {
    exec_ctx *q;
    qr_part *p;
    roaring_bitmap_t *acc;
    int rc;
} prefix_acc;

static int prefix_term(void *ctx, const char *term, size_t len)
{
    prefix_acc *pa = ctx;
    roaring_bitmap_t *b;
    int rc = postings(pa->q, pa->p, term, len, &b);
    if (rc) {
        pa->rc = rc;
        return 1;
    }
    roaring_bitmap_or_inplace(pa->acc, b);
    roaring_bitmap_free(b);
    return 0;
}

static int cand(exec_ctx *q, qr_part *p, const ms_node *m, roaring_bitmap_t **out, bool *exact)
{
    roaring_bitmap_t *acc = NULL;
    int rc = 0;
    *exact = true;
    switch (m->kind) {
    case SQL_SEARCH_TERM:
        rc = postings(q, p, m->text, m->len, &acc);
        *exact = p->postings_exact;
        break;
    case SQL_SEARCH_PREFIX: {
        if (p->postings_sparse) { /* terms of few blocks are not listed: verify rows */
            *exact = false;
            acc = bm_all(p);
            break;
        }
        prefix_acc pa = {q, p, roaring_bitmap_create(), 0};
        if (!pa.acc) return QR_ENOMEM;
        rc = qr_part_terms_with_prefix(p, m->text, m->len, prefix_term, &pa, q->d);
        if (!rc) rc = pa.rc;
        acc = pa.acc;
        break;
    }
    case SQL_SEARCH_PHRASE:
        *exact = m->token_count == 1 && p->postings_exact;
        for (uint32_t idx = 0; idx < m->token_count && !rc; idx++) {
            roaring_bitmap_t *b;
            rc = postings(q, p, m->tokens[idx], m->token_lens[idx], &b);
            if (rc) break;
            if (!acc) {
                acc = b;
            } else {
                roaring_bitmap_and_inplace(acc, b);
                roaring_bitmap_free(b);
            }
            if (roaring_bitmap_is_empty(acc)) break;
        }
        if (!acc && !rc) acc = bm_all(p);
        /* Words that, wherever they meet in this segment, stand next to each other: the
         * intersection is the answer (storage/phrase.h). */
        if (!rc && !*exact && m->token_count >= 2 && p->postings_exact &&
            qr_part_phrase_exact(p, (const char *const *)m->tokens, m->token_lens,
                                 m->token_count))
            *exact = true;
        break;
    case SQL_SEARCH_REGEX:
    case SQL_SEARCH_FIELD:
        *exact = false;
        acc = bm_all(p);
        break;
    case SQL_SEARCH_AND:
    case SQL_SEARCH_OR: {
        bool is_and = m->kind == SQL_SEARCH_AND;
        for (uint32_t idx = 0; idx < m->child_count; idx++) {
            roaring_bitmap_t *b;
            bool ex;
            rc = cand(q, p, m->children[idx], &b, &ex);
            if (rc) break;
            *exact = *exact && ex;
            if (!acc) {
                acc = b;
            } else {
                if (is_and)
                    roaring_bitmap_and_inplace(acc, b);
                else
                    roaring_bitmap_or_inplace(acc, b);
                roaring_bitmap_free(b);
            }
            if (is_and && roaring_bitmap_is_empty(acc)) {
                *exact = true; /* nothing can match, whatever the rest says */
                break;
            }
        }
        if (!acc && !rc) acc = is_and ? bm_all(p) : roaring_bitmap_create();
        break;
    }
    case SQL_SEARCH_NOT: {
        roaring_bitmap_t *b;
        bool ex;
        rc = cand(q, p, m->children[0], &b, &ex);
        if (rc) break;
        acc = bm_all(p);
        if (acc && ex) roaring_bitmap_andnot_inplace(acc, b);
        *exact = ex;
        roaring_bitmap_free(b);
        break;
    }
    }
    if (rc) {
        bm_free(acc);
        return rc;
    }
    if (!acc) return QR_ENOMEM;
    *out = acc;
    return 0;
}

int match_part_candidates(exec_ctx *q, qr_part *p, const ms_node *m, roaring_bitmap_t **out,
                          bool *exact)
{
    *out = NULL;
    *exact = false;
    if (!p->has_postings) return 0;
    int rc = cand(q, p, m, out, exact);
    if (rc == QR_ENOTFOUND) { /* no index after all: blooms + verification */
        *out = NULL;
        *exact = false;
        if (q->d) q->d->code = 0;
        return 0;
    }
    return rc;
}

bool match_block_may(qr_part *p, uint32_t block_idx, const ms_node *m)
{
    if (p->postings_sparse) return true; /* its blooms complete the index, they are not whole */
    switch (m->kind) {
    case SQL_SEARCH_TERM:
        return qr_part_block_may_contain_token(p, block_idx, m->hash);
    case SQL_SEARCH_PHRASE:
        for (uint32_t idx = 0; idx < m->token_count; idx++)
            if (!qr_part_block_may_contain_token(p, block_idx, m->token_hashes[idx])) return false;
        return true;
    case SQL_SEARCH_AND:
        for (uint32_t idx = 0; idx < m->child_count; idx++)
            if (!match_block_may(p, block_idx, m->children[idx])) return false;
        return true;
    case SQL_SEARCH_OR:
        for (uint32_t idx = 0; idx < m->child_count; idx++)
            if (match_block_may(p, block_idx, m->children[idx])) return true;
        return false;
    default:
        return true;
    }
}

/* ---- verification on one row's text -----------------------------------------------------------
 */

typedef struct row_tokens {
    char *buf;
    size_t used, cap;
    qr_str *toks;
    uint32_t n, tok_cap;
} row_tokens;

static int collect(void *ctx, const char *tok, size_t len, size_t offset)
{
    (void)offset;
    row_tokens *rt = ctx;
    if (rt->n == rt->tok_cap || rt->used + len > rt->cap) return 1;
    memcpy(rt->buf + rt->used, tok, len);
    rt->toks[rt->n++] = qr_str_make(rt->buf + rt->used, len);
    rt->used += len;
    return 0;
}

static bool tok_eq(qr_str t, const char *s, size_t n)
{
    return t.len == n && memcmp(t.ptr, s, n) == 0;
}

static bool eval_node(const ms_node *m, blk_ctx *bc, uint32_t row, qr_str text,
                      const row_tokens *rt)
{
    switch (m->kind) {
    case SQL_SEARCH_TERM:
        for (uint32_t idx = 0; idx < rt->n; idx++)
            if (tok_eq(rt->toks[idx], m->text, m->len)) return true;
        return false;
    case SQL_SEARCH_PREFIX:
        for (uint32_t idx = 0; idx < rt->n; idx++)
            if (rt->toks[idx].len >= m->len && memcmp(rt->toks[idx].ptr, m->text, m->len) == 0)
                return true;
        return false;
    case SQL_SEARCH_PHRASE:
        if (m->token_count == 0) return true;
        for (uint32_t start = 0; start + m->token_count <= rt->n; start++) {
            uint32_t k = 0;
            while (k < m->token_count &&
                   tok_eq(rt->toks[start + k], m->tokens[k], m->token_lens[k]))
                k++;
            if (k == m->token_count) return true;
        }
        return false;
    case SQL_SEARCH_REGEX: {
        int rc = exec_regex_match(bc->q, m->re, text);
        if (rc < 0) bc->err = rc;
        return rc == 1;
    }
    case SQL_SEARCH_FIELD: {
        if (m->field_col < 0 || !bc->p) return false;
        exec_value v = ev_col(bc, m->field_col, row);
        if (v.type == EXEC_NULL) return false;
        return match_row(m->children[0], bc, row, ev_text(bc, &v));
    }
    case SQL_SEARCH_AND:
        for (uint32_t idx = 0; idx < m->child_count; idx++)
            if (!eval_node(m->children[idx], bc, row, text, rt)) return false;
        return true;
    case SQL_SEARCH_OR:
        for (uint32_t idx = 0; idx < m->child_count; idx++)
            if (eval_node(m->children[idx], bc, row, text, rt)) return true;
        return false;
    case SQL_SEARCH_NOT:
        return !eval_node(m->children[0], bc, row, text, rt);
    }
    return false;
}

bool match_row(const ms_node *m, blk_ctx *bc, uint32_t row, qr_str text)
{
    char local_buf[2048];
    qr_str local_toks[512];
    row_tokens rt = {local_buf, 0, sizeof local_buf, local_toks, 0, 512};
    if (text.len > sizeof local_buf || text.len / 2 + 1 > 512) {
        rt.buf = qr_arena_alloc(&bc->q->scratch, text.len + 1);
        rt.tok_cap = (uint32_t)(text.len / 2 + 2);
        rt.toks = qr_arena_alloc(&bc->q->scratch, rt.tok_cap * sizeof *rt.toks);
        rt.cap = text.len + 1;
        if (!rt.buf || !rt.toks) {
            bc->err = exec_over_budget(bc->q);
            return false;
        }
    }
    qr_tokenize(text.ptr, text.len, collect, &rt);
    bc->q->st.rows_verified++;
    return eval_node(m, bc, row, text, &rt);
}

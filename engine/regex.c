/* regex — the query's regular expressions: PCRE2 with JIT, compiled once per query.
 *
 * Every regex of a query (`~`, `!~`, LogQL `|~ !~ =~ !~`, MATCH `/re/`) is compiled when the
 * query is bound, JIT-compiled when the platform allows (falling back to the interpreter), and
 * freed when the query ends. Patterns are UTF-8 (PCRE2_UTF); subjects are log bytes that may
 * not be UTF-8, so PCRE2_MATCH_INVALID_UTF lets them match wherever they are valid instead of
 * failing. LogQL label matchers are anchored at both ends (PCRE2_ANCHORED | ENDANCHORED), the
 * others unanchored.
 * Limits: a match may take EXEC_REGEX_MATCH_LIMIT backtracking steps and EXEC_REGEX_HEAP_KB of
 * backtracking memory; a pathological pattern (`(a+)+$` on a long run of a's) stops there with
 * QR_ELIMIT "regex ... exceeded its match limit", which a query with allow_partial turns into a
 * partial result like any other limit. One match data block serves every match of the query
 * (queries run on one thread). */
#include "engine/exec_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXEC_REGEX_MATCH_LIMIT 1000000u /* steps per match: ~ms of work, far above real use */
#define EXEC_REGEX_HEAP_KB 8192u        /* backtracking memory per match (interpreter) */

int exec_regex_match_init(pcre2_match_context **mctx, pcre2_match_data **md)
{
    *mctx = pcre2_match_context_create(NULL);
    *md = pcre2_match_data_create(1, NULL);
    if (!*mctx || !*md) return QR_ENOMEM; /* the caller's fini frees what was made */
    pcre2_set_match_limit(*mctx, EXEC_REGEX_MATCH_LIMIT);
    pcre2_set_heap_limit(*mctx, EXEC_REGEX_HEAP_KB);
    return 0;
}

pcre2_code *exec_regex_build(const char *pattern, size_t len, bool anchored, char *why,
                             size_t why_cap)
{
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
    if (anchored) opts |= PCRE2_ANCHORED | PCRE2_ENDANCHORED;
    int err = 0;
    PCRE2_SIZE err_off = 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, opts, &err, &err_off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(err, msg, sizeof msg) < 0)
            snprintf((char *)msg, sizeof msg, "error %d", err);
        snprintf(why, why_cap, "bad regex /%.*s/: %s at pattern offset %zu",
                 (int)(len > 60 ? 60 : len), pattern, (const char *)msg, (size_t)err_off);
        return NULL;
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* no JIT: the interpreter runs it */
    return re;
}

int exec_regex_compile(exec_ctx *q, const char *pattern, size_t len, bool anchored, sql_pos pos,
                       pcre2_code **out)
{
    if (!q->re_mctx && exec_regex_match_init(&q->re_mctx, &q->re_md)) return QR_ENOMEM;
    if (q->regex_count == q->regex_cap) {
        uint32_t cap = q->regex_cap ? q->regex_cap * 2 : 8;
        pcre2_code **res = realloc(q->regexes, cap * sizeof *res);
        if (!res) return QR_ENOMEM;
        q->regexes = res;
        q->regex_cap = cap;
    }
    char why[400];
    pcre2_code *re = exec_regex_build(pattern, len, anchored, why, sizeof why);
    if (!re) return exec_error_at(q, pos, QR_ESYNTAX, "%s", why);
    q->regexes[q->regex_count++] = re;
    *out = re;
    return 0;
}

int exec_regex_match(exec_ctx *q, const pcre2_code *re, qr_str s)
{
    /* PCRE2 takes (pointer, length): the bytes need no NUL (msg bytes point into blocks) */
    int rc = pcre2_match(re, (PCRE2_SPTR)(s.len ? s.ptr : ""), s.len, 0, 0, q->re_md, q->re_mctx);
    if (rc >= 0) return 1;
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT ||
        rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT)
        return qr_diag_set(q->d, QR_ELIMIT,
                           "a regex exceeded its match limit (%u steps) on a row: simplify it "
                           "(nested repetition like (a+)+ backtracks without end)",
                           EXEC_REGEX_MATCH_LIMIT);
    return qr_diag_set(q->d, QR_EINVAL, "regex match failed (PCRE2 error %d)", rc);
}

void exec_regex_fini(exec_ctx *q)
{
    for (uint32_t idx = 0; idx < q->regex_count; idx++) pcre2_code_free(q->regexes[idx]);
    free(q->regexes);
    q->regexes = NULL;
    q->regex_count = q->regex_cap = 0;
    pcre2_match_data_free(q->re_md);
    pcre2_match_context_free(q->re_mctx);
    q->re_md = NULL;
    q->re_mctx = NULL;
}

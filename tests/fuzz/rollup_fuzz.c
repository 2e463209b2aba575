/* libFuzzer driver: the rollup file formats (engine/rollup_file.c) on arbitrary bytes. The
 * first byte picks the decoder: 0 the MANIFEST, else a window file of a fixed rollup (the
 * definition below; the corpus was written by that rollup). What decodes must re-encode to
 * bytes that decode and re-encode to the same bytes, and pass the file check. */
#include "engine/rollup_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DEF_SQL                                                                                    \
    "CREATE ROLLUP f AS SELECT bucket(ts, 1m) AS t, service, level, user, count(*) AS n, "         \
    "sum(x) AS s, min(x) AS lo, max(x) AS hi, avg(x) AS av, p99(x) AS p, count_distinct(u) "       \
    "AS d, count(x) AS c FROM logs GROUP BY t, service, level, user"

typedef struct wins {
    const ru_def *def;
    ru_win **list;
    size_t n, cap;
    qr_buf key;
} wins;

static int keep_row(void *ctx, int64_t t, const exec_value *labels, cq_agg_state **st)
{
    wins *w = ctx;
    qr_buf_clear(&w->key);
    for (uint32_t li = 0; li < w->def->label_count; li++) ru_key_add(&w->key, &labels[li]);
    ru_win *win = calloc(1, sizeof *win);
    if (!win) abort();
    win->t = t;
    win->key_len = (uint32_t)w->key.len;
    win->key = malloc(w->key.len + 1);
    win->st = calloc(w->def->agg_count + 1, sizeof *win->st);
    if (!win->key || !win->st) abort();
    if (w->key.len) memcpy(win->key, w->key.data, w->key.len);
    memcpy(win->st, st, w->def->agg_count * sizeof *st);
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 16;
        w->list = realloc(w->list, w->cap * sizeof *w->list);
        if (!w->list) abort();
    }
    w->list[w->n++] = win;
    return 0;
}

static void wins_free(wins *w)
{
    for (size_t idx = 0; idx < w->n; idx++) ru_win_free(w->list[idx], w->def);
    free(w->list);
    w->list = NULL;
    w->n = w->cap = 0;
}

/* Decodes p into windows and encodes them again into out; false when p does not decode. */
static bool round_trip(const ru_def *def, const uint8_t *p, size_t len, qr_buf *out)
{
    qr_arena arena;
    qr_arena_init(&arena, 4096, 0);
    wins w = {def, NULL, 0, 0, {0}};
    qr_buf_init(&w.key);
    bool ok = ru_file_decode(def, p, len, &arena, UINT64_MAX, keep_row, &w, NULL) == 0;
    if (ok && ru_file_encode(def, w.list, w.n, out) != 0) abort();
    wins_free(&w);
    qr_buf_fini(&w.key);
    qr_arena_fini(&arena);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    if (data[0] == 0) {
        ru_manifest mf;
        if (ru_manifest_decode(data + 1, size - 1, &mf, NULL) != 0) return 0;
        qr_buf a;
        qr_buf_init(&a);
        if (ru_manifest_encode(&mf, &a) != 0) abort();
        ru_manifest again;
        if (ru_manifest_decode(a.data, a.len, &again, NULL) != 0) abort();
        if (again.file_n != mf.file_n || again.late_n != mf.late_n) abort();
        ru_manifest_fini(&again);
        ru_manifest_fini(&mf);
        qr_buf_fini(&a);
        return 0;
    }
    ru_def def;
    if (ru_def_compile(DEF_SQL, "default", NULL, &def, NULL, NULL) != 0) abort();
    int64_t min_t, max_t;
    uint64_t rows, buckets;
    (void)ru_file_check(data + 1, size - 1, &min_t, &max_t, &rows, &buckets, NULL);
    qr_buf a, b;
    qr_buf_init(&a);
    qr_buf_init(&b);
    if (round_trip(&def, data + 1, size - 1, &a)) {
        if (ru_file_check(a.data, a.len, &min_t, &max_t, &rows, &buckets, NULL) != 0) abort();
        if (!round_trip(&def, a.data, a.len, &b)) abort();
        if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) abort();
    }
    qr_buf_fini(&a);
    qr_buf_fini(&b);
    ru_def_fini(&def);
    return 0;
}

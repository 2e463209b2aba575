/* segment_fuzz — bytes → a segment file → seg_open → seg_verify → read everything.
 *
 * Each input is opened twice: normally (checksums guard everything, so most mutations stop
 * at open), and with SEG_OPEN_NO_CHECKSUMS so mutated bytes reach the footer parser and
 * the column decoders, which must stay memory-safe and bounded without checksums.
 * The file lives in a memfd (no disk writes); seg_open sees it as /proc/self/fd/N.
 * Corpus: tests/fuzz/segment_fuzz/ (tiny segments written by segment_test with
 * QR_WRITE_CORPUS=dir). */
#include "common/qr_err.h"
#include "storage/seg_int.h"
#include "storage/segment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct term_list {
    char terms[32][256];
    size_t lens[32];
    int n;
} term_list;

static int term_cb(void *ctx, const char *term, size_t len)
{
    term_list *t = ctx;
    if (len > 255) return 1;
    memcpy(t->terms[t->n], term, len);
    t->lens[t->n++] = len;
    return t->n == 32;
}

static void read_everything(qr_part *p)
{
    qr_arena a;
    qr_arena_init(&a, 1 << 16, 512u << 20);
    for (uint32_t blk = 0; blk < p->block_count; blk++) {
        qr_block_meta m;
        if (qr_part_block_meta(p, blk, &m)) continue;
        qr_column c;
        static const qr_col_kind kinds[] = {QR_COL_TS,      QR_COL_INGEST_TS, QR_COL_LEVEL,
                                            QR_COL_SERVICE, QR_COL_HOST,      QR_COL_MSG};
        for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
            (void)qr_part_load_column(p, blk, kinds[k], 0, &a, &c, NULL);
        for (uint32_t f = 0; f < p->field_count; f++)
            (void)qr_part_load_column(p, blk, QR_COL_FIELD, f, &a, &c, NULL);
        uint32_t *rows = qr_arena_alloc(&a, (size_t)m.row_count * sizeof *rows);
        qr_str *out = qr_arena_alloc(&a, (size_t)m.row_count * sizeof *out);
        if (rows && out) {
            for (uint32_t r = 0; r < m.row_count; r++) rows[r] = r;
            (void)qr_part_load_msgs(p, blk, rows, m.row_count, &a, out, NULL);
        }
        (void)qr_part_block_may_contain_token(p, blk, 0x1234567890abcdefull);
        qr_arena_reset(&a);
    }
    term_list t;
    t.n = 0;
    if (qr_part_terms_with_prefix(p, "", 0, term_cb, &t, NULL) == 0) {
        for (int i = 0; i < t.n; i++) {
            roaring_bitmap_t *bm = NULL;
            if (qr_part_postings(p, t.terms[i], t.lens[i], &bm, NULL) == 0 && bm)
                roaring_bitmap_free(bm);
        }
    }
    roaring_bitmap_t *bm = NULL;
    if (qr_part_postings(p, "error", 5, &bm, NULL) == 0 && bm) roaring_bitmap_free(bm);
    qr_arena_fini(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("segment_fuzz", 0);
    if (fd < 0) return 0;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) break;
        done += (size_t)n;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    for (unsigned flags = 0; flags <= SEG_OPEN_NO_CHECKSUMS; flags += SEG_OPEN_NO_CHECKSUMS) {
        qr_part *p = NULL;
        qr_diag d;
        qr_diag_init(&d);
        if (seg_open_ex(path, flags, &p, &d) != 0) continue;
        seg_stats st;
        (void)seg_verify(p, &st, &d);
        read_everything(p);
        qr_part_unref(p);
    }
    close(fd);
    return 0;
}

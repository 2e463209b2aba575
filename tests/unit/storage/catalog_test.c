#include "common/qr_fs.h"
#include "qr_test.h"
#include "storage/catalog.h"

TEST(store_load_roundtrip)
{
    char dir[512];
    REQUIRE(qr_test_tmpdir("catalog", dir, sizeof dir));
    catalog_state s, back;
    catalog_state_init(&s);
    qr_diag d;
    qr_diag_init(&d);
    CHECK_EQ_INT(catalog_load(dir, &back, &d), 0); /* missing file: empty */
    CHECK_EQ_INT(back.count, 0);
    CHECK_EQ_INT(back.next_segment_id, 1);
    catalog_state_fini(&back);
    s.flushed_lsn = 12345;
    s.next_segment_id = 9;
    for (int n = 0; n < 5; n++) {
        catalog_seg seg = {.id = (uint64_t)n + 1, .rows = 1000u * (uint64_t)n,
                           .min_ts_ns = -5 + n, .max_ts_ns = 1749997381123456789LL + n,
                           .bytes = 77};
        snprintf(seg.file, sizeof seg.file, "%016d.qseg", n + 1);
        CHECK_EQ_INT(catalog_state_add(&s, &seg), 0);
    }
    CHECK_EQ_INT(catalog_store(dir, &s, &d), 0);
    CHECK_EQ_INT(catalog_load(dir, &back, &d), 0);
    CHECK_EQ_INT(back.flushed_lsn, 12345);
    CHECK_EQ_INT(back.next_segment_id, 9);
    REQUIRE(back.count == 5);
    for (size_t n = 0; n < 5; n++) {
        CHECK_EQ_INT(back.segs[n].id, s.segs[n].id);
        CHECK_EQ_STR(back.segs[n].file, s.segs[n].file);
        CHECK_EQ_INT(back.segs[n].rows, s.segs[n].rows);
        CHECK_EQ_INT(back.segs[n].min_ts_ns, s.segs[n].min_ts_ns);
        CHECK_EQ_INT(back.segs[n].max_ts_ns, s.segs[n].max_ts_ns);
    }
    catalog_state_fini(&back);

    /* every flipped byte and every truncation is reported, never half-loaded */
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, CATALOG_FILE);
    qr_buf orig;
    qr_buf_init(&orig);
    REQUIRE(qr_fs_read_all(path, 1 << 20, &orig, &d) == 0);
    for (size_t off = 0; off < orig.len; off++) {
        for (int mode = 0; mode < 2; mode++) {
            FILE *f = fopen(path, "wb");
            REQUIRE(f);
            if (mode == 0) {
                fwrite(orig.data, 1, orig.len, f);
                fseek(f, (long)off, SEEK_SET);
                fputc(orig.data[off] ^ 0x20, f);
            } else {
                fwrite(orig.data, 1, off, f);
            }
            fclose(f);
            qr_diag_init(&d);
            int rc = catalog_load(dir, &back, &d);
            if (rc == 0) {
                fprintf(stderr, "undetected %s at offset %zu\n", mode ? "truncation" : "flip", off);
                CHECK(rc != 0);
                catalog_state_fini(&back);
            } else {
                CHECK_EQ_INT(rc, QR_ECORRUPT);
                CHECK(d.msg[0] != '\0');
            }
        }
    }
    qr_buf_fini(&orig);
    catalog_state_fini(&s);
    qr_test_rmdir(dir);
}

int main(void)
{
    RUN(store_load_roundtrip);
    QR_TEST_MAIN_END();
}

/* Fuzz driver: arbitrary bytes as a tenant's CATALOG file → catalog_load must return 0 or
 * QR_ECORRUPT (never crash, never leak), and a loaded catalog must store and load back equal. */
#include "common/qr_fs.h"
#include "storage/catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[256];
    snprintf(dir, sizeof dir, "/tmp/qr_catalog_fuzz.%d", (int)getpid());
    if (qr_fs_mkdirs(dir, NULL)) return 0;
    char path[300];
    snprintf(path, sizeof path, "%s/%s", dir, CATALOG_FILE);
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    catalog_state s;
    qr_diag d;
    qr_diag_init(&d);
    int rc = catalog_load(dir, &s, &d);
    if (rc != 0 && rc != QR_ECORRUPT) abort();
    if (rc == 0) {
        catalog_state back;
        if (catalog_store(dir, &s, NULL) != 0 || catalog_load(dir, &back, NULL) != 0) abort();
        if (back.count != s.count || back.flushed_lsn != s.flushed_lsn) abort();
        for (size_t idx = 0; idx < s.count; idx++)
            if (memcmp(&back.segs[idx], &s.segs[idx], sizeof s.segs[idx]) != 0) abort();
        catalog_state_fini(&back);
        catalog_state_fini(&s);
    }
    unlink(path);
    return 0;
}

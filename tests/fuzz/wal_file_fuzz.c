/* libFuzzer driver: arbitrary bytes as the only WAL file (LSN 1) of a directory.
 * wal_verify_dir and wal_replay must agree, never crash, and after replay's repair the log
 * must verify clean and take an append that continues right after the last good record. */
#include "storage/wal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_fuzz_dir[512]; /* set once, on the first input */

static void fuzz_dir_remove(void)
{
    rmdir(g_fuzz_dir);
}

static const char *fuzz_dir(void)
{
    char *dir = g_fuzz_dir;
    if (!dir[0]) {
        const char *base = getenv("QR_TMP");
        if (!base || !*base) base = "/tmp";
        snprintf(dir, sizeof g_fuzz_dir, "%s/wal_file_fuzz.%d", base, (int)getpid());
        mkdir(dir, 0755);
        atexit(fuzz_dir_remove);
    }
    return dir;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_dir();
    char path[600];
    snprintf(path, sizeof path, "%s/00000000000000000001.wal", dir);
    unlink(path);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);

    wal_replay_report vrep, rep;
    qr_diag d;
    qr_diag_init(&d);
    int vrc = wal_verify_dir(dir, &vrep, &d);
    if (vrc != 0 && vrc != QR_ECORRUPT) abort();
    if ((vrc == 0) != (vrep.skipped_offset < 0)) abort();

    wal_opts o;
    memset(&o, 0, sizeof o);
    o.fsync_policy = WAL_FSYNC_NEVER;
    wal_t *w = NULL;
    if (wal_open(dir, &o, &w, &d) != 0) abort();
    if (wal_replay(w, NULL, NULL, &rep, &d) != 0) abort();
    if (rep.records != vrep.records || rep.last_lsn != vrep.last_lsn ||
        rep.skipped_offset != vrep.skipped_offset || rep.skipped_bytes != vrep.skipped_bytes)
        abort();
    qr_batch b;
    qr_batch_init(&b);
    qr_event *e = qr_batch_push(&b);
    e->ts_ns = 1;
    e->msg = qr_batch_str(&b, "after replay", 12);
    uint64_t lsn = 0;
    if (wal_append(w, "fuzz", &b, &lsn, &d) != 0) abort();
    if (lsn != rep.last_lsn + 1) abort();
    qr_batch_fini(&b);
    wal_close(w);
    if (wal_verify_dir(dir, &vrep, &d) != 0 || vrep.records != rep.records + 1) abort();
    unlink(path);
    return 0;
}

/* wal — write-ahead log: on-disk format, group commit, recovery.
 *
 * FILES. DIR/NNNNNNNNNNNNNNNNNNNN.wal, NNN = the file's first LSN, 20 decimal digits, so the
 * names sort in LSN order. Other names in DIR are ignored. All integers little endian.
 *
 * File header, 32 bytes:
 *   0  u32 magic         "QWAL" (0x4C415751)
 *   4  u16 version       1
 *   6  u16 header_bytes  32
 *   8  u64 first_lsn     LSN of the file's first record; equals the number in the file name
 *  16  i64 created_ns    wall clock at creation (informational)
 *  24  u32 reserved      0
 *  28  u32 checksum      qr_checksum32 of bytes 0..27
 *
 * Records follow back to back, no padding:
 *   0  u32 body_bytes    bytes from offset 8 to the record's end; 16 <= body_bytes <=
 *                        WAL_RECORD_BODY_MAX (the compress bound of QR_BATCH_MAX_BYTES + 128)
 *   4  u32 checksum      qr_checksum32 of the body_bytes bytes starting at offset 8
 *   8  u8  type          1 = event batch (the only type in version 1)
 *   9  u64 lsn           previous record's LSN + 1 (the first record: the header's first_lsn)
 *  17  payload of an event batch record:
 *        u8  tenant_bytes  1..QR_TENANT_MAX_BYTES, no NUL bytes
 *        ... tenant        tenant name
 *        u32 raw_bytes     length of the qr_batch_encode bytes, <= QR_BATCH_MAX_BYTES
 *        ... zstd frame    one frame (content size set) holding those raw_bytes bytes;
 *                          it runs to the end of the record
 *
 * A file may end after its header (no records yet). A crash can leave a zero-length last file,
 * a torn last record, or garbage (zeros) after the last complete record.
 *
 * RECOVERY. Files are read in name order. Each header must be intact and its first_lsn must
 * match the name and continue the previous file. Each record must fit in the file, have a
 * valid length, checksum, type, tenant, consecutive LSN, a zstd frame that decompresses to
 * exactly raw_bytes, and bytes that qr_batch_decode accepts. The first record failing any
 * check ends the log: wal_replay reports it (file, offset, reason, bytes skipped), truncates
 * the file there (removing the file if not even its header is intact) and deletes every later
 * file, fsyncing the directory, so appends continue right after the last good record.
 * wal_verify_dir runs the same checks and changes nothing.
 *
 * GROUP COMMIT. wal_append encodes and compresses in the caller's thread, outside any lock,
 * into a record buffer taken from a small pool (a zstd context plus buffers, one per
 * concurrent appender). Under the queue mutex it takes the next LSN and joins a FIFO queue;
 * queue order is LSN order is file order. The appender at the head of the queue is the
 * leader: it takes every queued record (up to WAL_GROUP_MAX_BYTES), drops the mutex, stamps
 * the checksums, writes them with pwritev and syncs once (fsync=always), then retakes the
 * mutex, marks the group done, wakes its members and hands leadership to the new head.
 * Arrivals during a sync queue up and share the next one. Rotation happens inside a group:
 * before a record that would take a non-empty file past file_bytes, the file is written out
 * and synced, and a new file named by that record's LSN is created (directory fsync'd).
 * Any failed write or sync poisons the WAL: the failing group, everything queued and every
 * later append get QR_EIO, and nothing is written after the failure.
 * fsync=interval: a background thread fdatasyncs a dup of the current fd every interval_ms
 * when something was written; a failure there poisons the WAL too. */
#include "storage/wal.h"

#include "common/qr_buf.h"
#include "common/qr_hash.h"
#include "common/qr_time.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#define WAL_FILE_MAGIC 0x4C415751u /* "QWAL" */
#define WAL_FILE_VERSION 1
#define WAL_FILE_HEADER_BYTES 32
#define WAL_REC_PREFIX_BYTES 8  /* body_bytes + checksum */
#define WAL_REC_HEADER_BYTES 17 /* prefix + type + lsn */
#define WAL_REC_BATCH 1
/* type + lsn + tenant length byte + 1-byte tenant + raw_bytes + at least 1 frame byte */
#define WAL_REC_BODY_MIN 16
/* A record holds at most one batch of QR_BATCH_MAX_BYTES encoded bytes, compressed. */
#define WAL_RECORD_BODY_MAX ((uint32_t)(ZSTD_COMPRESSBOUND(QR_BATCH_MAX_BYTES) + 128))
/* A leader writes at most this much per group (then hands over to the next leader). */
#define WAL_GROUP_MAX_BYTES (32u * 1024 * 1024)
#define WAL_IOV_MAX 64
#define WAL_NAME_DIGITS 20
/* Pooled record buffers bigger than this are freed after use rather than kept. */
#define WAL_SCRATCH_KEEP_BYTES (4u * 1024 * 1024)

typedef struct wal_scratch {
    struct wal_scratch *next;
    ZSTD_CCtx *cctx;
    qr_buf enc; /* qr_batch_encode output */
    qr_buf rec; /* the framed record */
} wal_scratch;

typedef struct wal_waiter {
    struct wal_waiter *next;
    pthread_cond_t cv;
    uint8_t *rec;
    size_t rec_bytes;
    uint64_t raw_bytes;
    uint64_t lsn;
    int rc;
    bool done;
} wal_waiter;

struct wal {
    char *dir;
    int dir_fd;
    wal_opts opts;

    /* mu guards the queue, LSN counter, state flags, failure message and stats. */
    pthread_mutex_t mu;
    wal_waiter *head;
    wal_waiter *tail;
    uint64_t next_lsn;
    bool need_replay; /* files exist and wal_replay has not run */
    bool appended;    /* an append was accepted (replay no longer allowed) */
    bool failed;
    char fail_msg[256];
    wal_stats stats;

    /* file_mu guards fd, the files list and the interval syncer's state. The leader is the
     * only writer of fd/cur_bytes; it takes file_mu when it swaps fd or edits the list. */
    pthread_mutex_t file_mu;
    int fd;
    uint64_t cur_bytes;       /* current file size (header included) */
    uint64_t *file_first_lsn; /* ascending; the last entry is the current file */
    size_t file_count;
    size_t file_cap;
    bool unsynced;
    bool syncer_stop;
    bool syncer_started;
    pthread_cond_t syncer_cv;
    pthread_t syncer;

    pthread_mutex_t pool_mu;
    wal_scratch *pool;
};

/* ---------------------------------------------------------------- small helpers */

static void wal_path(char *buf, size_t cap, const char *dir, uint64_t first_lsn)
{
    snprintf(buf, cap, "%s/%020" PRIu64 ".wal", dir, first_lsn);
}

/* Parses "NNNNNNNNNNNNNNNNNNNN.wal"; false for any other name. */
static bool wal_name_parse(const char *name, uint64_t *out)
{
    if (strlen(name) != WAL_NAME_DIGITS + 4 || strcmp(name + WAL_NAME_DIGITS, ".wal") != 0)
        return false;
    uint64_t v = 0;
    for (int pos = 0; pos < WAL_NAME_DIGITS; pos++) {
        char c = name[pos];
        if (c < '0' || c > '9') return false;
        uint64_t digit = (uint64_t)(c - '0');
        if (v > (UINT64_MAX - digit) / 10) return false;
        v = v * 10 + digit;
    }
    *out = v;
    return true;
}

/* strlcpy: truncation is fine for report strings */
static void copy_trunc(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the first LSNs of the WAL files in dir, ascending. *out is malloc'd (may be NULL
 * when there are none). */
static int wal_dir_list(const char *dir, uint64_t **out, size_t *out_count, qr_diag *d)
{
    DIR *dh = opendir(dir);
    if (!dh) return qr_diag_errno(d, QR_EIO, "wal: cannot read directory %s", dir);
    uint64_t *lsns = NULL;
    size_t count = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        uint64_t lsn;
        if (!wal_name_parse(de->d_name, &lsn)) continue;
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            uint64_t *p = realloc(lsns, ncap * sizeof *p);
            if (!p) {
                free(lsns);
                closedir(dh);
                return qr_diag_set(d, QR_ENOMEM, "wal: out of memory listing %s", dir);
            }
            lsns = p;
            cap = ncap;
        }
        lsns[count++] = lsn;
    }
    closedir(dh);
    if (count) qsort(lsns, count, sizeof *lsns, cmp_u64);
    *out = lsns;
    *out_count = count;
    return 0;
}

static int wal_dir_sync(int dir_fd, const char *dir, qr_diag *d)
{
    if (fsync(dir_fd) != 0) return qr_diag_errno(d, QR_EIO, "wal: fsync of directory %s", dir);
    return 0;
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = EIO; /* shorter than fstat said */
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Writes every byte of iov[0..cnt) at off, resuming after short writes. Modifies iov. */
static int pwritev_full(int fd, struct iovec *iov, int cnt, uint64_t off)
{
    while (cnt > 0) {
        ssize_t n = pwritev(fd, iov, cnt, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = EIO;
            return -1;
        }
        off += (uint64_t)n;
        size_t left = (size_t)n;
        while (cnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

static void wal_header_build(uint8_t hdr[WAL_FILE_HEADER_BYTES], uint64_t first_lsn)
{
    memset(hdr, 0, WAL_FILE_HEADER_BYTES);
    qr_store_u32(hdr, WAL_FILE_MAGIC);
    uint16_t version = WAL_FILE_VERSION, hbytes = WAL_FILE_HEADER_BYTES;
    memcpy(hdr + 4, &version, 2);
    memcpy(hdr + 6, &hbytes, 2);
    qr_store_u64(hdr + 8, first_lsn);
    qr_store_u64(hdr + 16, (uint64_t)qr_now_ns());
    qr_store_u32(hdr + 28, qr_checksum32(hdr, 28));
}

/* ---------------------------------------------------------------- scanning (recovery) */

typedef struct wal_scan {
    const char *dir;
    bool repair; /* truncate/delete after the first bad record */
    wal_replay_fn fn;
    void *ctx;
    wal_replay_report *report;

    ZSTD_DCtx *dctx;
    uint8_t *body; /* record body buffer */
    size_t body_cap;
    uint8_t *raw; /* decompressed batch */
    size_t raw_cap;
    qr_batch batch;
    char tenant[QR_TENANT_MAX_BYTES + 1];

    /* results */
    uint64_t expect_lsn;  /* next LSN expected, 0 = anything (nothing read yet) */
    uint64_t last_lsn;    /* last good LSN, 0 if none */
    uint64_t *kept_first; /* first LSNs of files that survive */
    size_t kept_count;
    uint64_t tail_bytes;     /* good size of the last kept file */
    uint64_t first_name_lsn; /* LSN in the first file's name, 0 if no files */
    bool found_bad;
    int cb_rc; /* non-zero value returned by the callback */
} wal_scan;

enum { SCAN_GOOD = 0, SCAN_BAD = 1, SCAN_STOP = 2 };

static bool scan_grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (*cap >= need) return true;
    uint8_t *p = realloc(*buf, need);
    if (!p) return false;
    *buf = p;
    *cap = need;
    return true;
}

/* Checks one record body (type, lsn, payload) and hands it to the callback. Returns
 * SCAN_GOOD, SCAN_BAD (reason in why), SCAN_STOP (the callback's value in s->cb_rc) or
 * QR_ENOMEM. */
static int scan_record_body(wal_scan *s, const uint8_t *body, uint32_t body_bytes, char *why,
                            size_t why_cap)
{
    uint8_t type = body[0];
    uint64_t lsn = qr_load_u64(body + 1);
    if (type != WAL_REC_BATCH) {
        snprintf(why, why_cap, "unknown record type %u", type);
        return SCAN_BAD;
    }
    if (s->expect_lsn && lsn != s->expect_lsn) {
        snprintf(why, why_cap, "LSN %" PRIu64 " where %" PRIu64 " was expected", lsn,
                 s->expect_lsn);
        return SCAN_BAD;
    }
    qr_rd r;
    qr_rd_init(&r, body + 9, body_bytes - 9);
    uint8_t tenant_bytes = qr_rd_u8(&r);
    const uint8_t *tenant = qr_rd_take(&r, tenant_bytes);
    uint32_t raw_bytes = qr_rd_u32(&r);
    if (r.bad || tenant_bytes == 0 || tenant_bytes > QR_TENANT_MAX_BYTES ||
        memchr(tenant, 0, tenant_bytes) != NULL) {
        snprintf(why, why_cap, "bad tenant name");
        return SCAN_BAD;
    }
    if (raw_bytes > QR_BATCH_MAX_BYTES || qr_rd_left(&r) == 0) {
        snprintf(why, why_cap, "bad batch size %" PRIu32, raw_bytes);
        return SCAN_BAD;
    }
    if (!scan_grow(&s->raw, &s->raw_cap, raw_bytes ? raw_bytes : 1)) return QR_ENOMEM;
    size_t got = ZSTD_decompressDCtx(s->dctx, s->raw, raw_bytes, r.p, qr_rd_left(&r));
    if (ZSTD_isError(got)) {
        if (ZSTD_getErrorCode(got) == ZSTD_error_memory_allocation) return QR_ENOMEM;
        snprintf(why, why_cap, "zstd: %s", ZSTD_getErrorName(got));
        return SCAN_BAD;
    }
    if (got != raw_bytes) {
        snprintf(why, why_cap, "zstd frame holds %zu bytes, record says %" PRIu32, got, raw_bytes);
        return SCAN_BAD;
    }
    qr_batch_reset(&s->batch);
    qr_diag bd;
    qr_diag_init(&bd);
    int rc = qr_batch_decode(s->raw, raw_bytes, &s->batch, &bd);
    if (rc == QR_ENOMEM) return QR_ENOMEM;
    if (rc) {
        copy_trunc(why, why_cap, bd.msg);
        return SCAN_BAD;
    }
    memcpy(s->tenant, tenant, tenant_bytes);
    s->tenant[tenant_bytes] = 0;
    s->report->records++;
    s->report->events += s->batch.count;
    s->report->last_lsn = lsn;
    s->last_lsn = lsn;
    s->expect_lsn = lsn + 1;
    if (s->fn) {
        int cb = s->fn(s->ctx, lsn, s->tenant, &s->batch);
        if (cb) {
            s->cb_rc = cb;
            return SCAN_STOP;
        }
    }
    return SCAN_GOOD;
}

static void scan_mark_bad(wal_scan *s, const char *path, uint64_t off, uint64_t file_size,
                          const char *why)
{
    wal_replay_report *rep = s->report;
    s->found_bad = true;
    copy_trunc(rep->skipped_file, sizeof rep->skipped_file, path);
    rep->skipped_offset = (int64_t)off;
    copy_trunc(rep->skipped_reason, sizeof rep->skipped_reason, why);
    rep->skipped_bytes += file_size - off;
}

/* Scans one file. Returns 0 (file fully good or bad spot recorded in s), or <0 on I/O,
 * memory or callback error. *good_end receives the offset where good data ends. */
static int scan_file(wal_scan *s, uint64_t name_lsn, bool is_last, uint64_t *good_end, qr_diag *d)
{
    char path[4200];
    wal_path(path, sizeof path, s->dir, name_lsn);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return qr_diag_errno(d, QR_EIO, "wal: cannot open %s", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = qr_diag_errno(d, QR_EIO, "wal: cannot stat %s", path);
        close(fd);
        return rc;
    }
    uint64_t size = (uint64_t)st.st_size;
    s->report->files++;
    *good_end = 0;
    int rc = 0;
    char why[160];
    if (size == 0) {
        /* A crash right after creating the last file leaves it empty; elsewhere it is a
         * hole in the log. */
        if (!is_last) scan_mark_bad(s, path, 0, size, "empty file before the last one");
        close(fd);
        return 0;
    }
    uint8_t hdr[WAL_FILE_HEADER_BYTES];
    if (size < WAL_FILE_HEADER_BYTES) {
        scan_mark_bad(s, path, 0, size, "torn file header");
        close(fd);
        return 0;
    }
    if (pread_full(fd, hdr, sizeof hdr, 0) != 0) {
        rc = qr_diag_errno(d, QR_EIO, "wal: cannot read %s", path);
        close(fd);
        return rc;
    }
    uint16_t version, hbytes;
    memcpy(&version, hdr + 4, 2);
    memcpy(&hbytes, hdr + 6, 2);
    uint64_t first_lsn = qr_load_u64(hdr + 8);
    why[0] = 0;
    if (qr_load_u32(hdr) != WAL_FILE_MAGIC)
        snprintf(why, sizeof why, "bad file magic");
    else if (qr_load_u32(hdr + 28) != qr_checksum32(hdr, 28))
        snprintf(why, sizeof why, "file header checksum mismatch");
    else if (version != WAL_FILE_VERSION || hbytes != WAL_FILE_HEADER_BYTES)
        snprintf(why, sizeof why, "unsupported file version %u", version);
    else if (first_lsn != name_lsn || first_lsn == 0)
        snprintf(why, sizeof why, "header first LSN %" PRIu64 " does not match the name",
                 first_lsn);
    else if (s->expect_lsn && first_lsn != s->expect_lsn)
        snprintf(why, sizeof why, "file starts at LSN %" PRIu64 " where %" PRIu64 " was expected",
                 first_lsn, s->expect_lsn);
    if (why[0]) {
        scan_mark_bad(s, path, 0, size, why);
        close(fd);
        return 0;
    }
    s->expect_lsn = first_lsn;
    uint64_t off = WAL_FILE_HEADER_BYTES;
    *good_end = off;
    while (off < size) {
        uint64_t left = size - off;
        uint8_t prefix[WAL_REC_PREFIX_BYTES];
        if (left < WAL_REC_PREFIX_BYTES) {
            scan_mark_bad(s, path, off, size, "torn record header");
            s->report->torn_tail = is_last;
            break;
        }
        if (pread_full(fd, prefix, sizeof prefix, off) != 0) {
            rc = qr_diag_errno(d, QR_EIO, "wal: cannot read %s", path);
            break;
        }
        uint32_t body_bytes = qr_load_u32(prefix);
        uint32_t checksum = qr_load_u32(prefix + 4);
        if (body_bytes < WAL_REC_BODY_MIN || body_bytes > WAL_RECORD_BODY_MAX) {
            snprintf(why, sizeof why, "bad record length %" PRIu32, body_bytes);
            scan_mark_bad(s, path, off, size, why);
            break;
        }
        if (body_bytes > left - WAL_REC_PREFIX_BYTES) {
            snprintf(why, sizeof why,
                     "record of %" PRIu32 " bytes runs past the end of the file (torn write)",
                     body_bytes);
            scan_mark_bad(s, path, off, size, why);
            s->report->torn_tail = is_last;
            break;
        }
        if (!scan_grow(&s->body, &s->body_cap, body_bytes)) {
            rc = qr_diag_set(d, QR_ENOMEM, "wal: out of memory reading %s", path);
            break;
        }
        if (pread_full(fd, s->body, body_bytes, off + WAL_REC_PREFIX_BYTES) != 0) {
            rc = qr_diag_errno(d, QR_EIO, "wal: cannot read %s", path);
            break;
        }
        if (qr_checksum32(s->body, body_bytes) != checksum) {
            scan_mark_bad(s, path, off, size, "record checksum mismatch");
            break;
        }
        int brc = scan_record_body(s, s->body, body_bytes, why, sizeof why);
        if (brc == SCAN_BAD) {
            scan_mark_bad(s, path, off, size, why);
            break;
        }
        if (brc == SCAN_STOP) {
            rc = s->cb_rc;
            break;
        }
        if (brc) {
            rc = qr_diag_set(d, brc, "wal: out of memory replaying %s", path);
            break;
        }
        off += WAL_REC_PREFIX_BYTES + (uint64_t)body_bytes;
        *good_end = off;
    }
    close(fd);
    return rc;
}

/* Cuts the log at the bad spot: truncates (or removes) the bad file and removes all later
 * files, then syncs the directory. */
static int scan_repair(wal_scan *s, int dir_fd, const uint64_t *lsns, size_t count, size_t bad_idx,
                       uint64_t good_end, qr_diag *d)
{
    char path[4200];
    wal_path(path, sizeof path, s->dir, lsns[bad_idx]);
    if (good_end < WAL_FILE_HEADER_BYTES) {
        if (unlink(path) != 0) return qr_diag_errno(d, QR_EIO, "wal: cannot remove %s", path);
    } else {
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0) return qr_diag_errno(d, QR_EIO, "wal: cannot open %s", path);
        if (ftruncate(fd, (off_t)good_end) != 0 || fdatasync(fd) != 0) {
            int rc = qr_diag_errno(d, QR_EIO, "wal: cannot truncate %s", path);
            close(fd);
            return rc;
        }
        close(fd);
    }
    for (size_t idx = bad_idx + 1; idx < count; idx++) {
        wal_path(path, sizeof path, s->dir, lsns[idx]);
        if (unlink(path) != 0) return qr_diag_errno(d, QR_EIO, "wal: cannot remove %s", path);
    }
    return wal_dir_sync(dir_fd, s->dir, d);
}

static uint64_t file_size_or_zero(const char *dir, uint64_t lsn)
{
    char path[4200];
    wal_path(path, sizeof path, dir, lsn);
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Scans the directory: every file, in order, until the first bad record. */
static int scan_dir(wal_scan *s, int dir_fd, qr_diag *d)
{
    wal_replay_report *rep = s->report;
    memset(rep, 0, sizeof *rep);
    rep->skipped_offset = -1;
    uint64_t *lsns = NULL;
    size_t count = 0;
    int rc = wal_dir_list(s->dir, &lsns, &count, d);
    if (rc) return rc;
    s->dctx = ZSTD_createDCtx();
    s->kept_first = malloc((count ? count : 1) * sizeof *s->kept_first);
    if (!s->dctx || !s->kept_first) {
        free(lsns);
        return qr_diag_set(d, QR_ENOMEM, "wal: out of memory");
    }
    qr_batch_init(&s->batch);
    if (count) s->first_name_lsn = lsns[0];
    for (size_t idx = 0; idx < count; idx++) {
        uint64_t good_end = 0;
        bool is_last = idx + 1 == count;
        rc = scan_file(s, lsns[idx], is_last, &good_end, d);
        if (rc) break;
        if (s->found_bad) {
            for (size_t later = idx + 1; later < count; later++)
                rep->skipped_bytes += file_size_or_zero(s->dir, lsns[later]);
            if (s->repair) rc = scan_repair(s, dir_fd, lsns, count, idx, good_end, d);
            if (good_end >= WAL_FILE_HEADER_BYTES) {
                s->kept_first[s->kept_count++] = lsns[idx];
                s->tail_bytes = good_end;
            }
            break;
        }
        if (good_end == 0) { /* zero-length last file */
            if (s->repair) {
                char path[4200];
                wal_path(path, sizeof path, s->dir, lsns[idx]);
                if (unlink(path) != 0)
                    rc = qr_diag_errno(d, QR_EIO, "wal: cannot remove %s", path);
                else
                    rc = wal_dir_sync(dir_fd, s->dir, d);
            }
            break;
        }
        s->kept_first[s->kept_count++] = lsns[idx];
        s->tail_bytes = good_end;
    }
    free(lsns);
    return rc;
}

static void scan_fini(wal_scan *s)
{
    ZSTD_freeDCtx(s->dctx);
    free(s->body);
    free(s->raw);
    free(s->kept_first);
    qr_batch_fini(&s->batch);
}

int wal_scan_dir(const char *dir, wal_replay_fn fn, void *ctx, wal_replay_report *report,
                 qr_diag *d)
{
    wal_replay_report local;
    if (!report) report = &local;
    wal_scan s;
    memset(&s, 0, sizeof s);
    s.dir = dir;
    s.fn = fn;
    s.ctx = ctx;
    s.report = report;
    int rc = scan_dir(&s, -1, d);
    bool bad = s.found_bad;
    if (!rc && s.cb_rc) rc = s.cb_rc;
    scan_fini(&s);
    if (rc) return rc;
    if (bad)
        return qr_diag_set(d, QR_ECORRUPT, "wal: %s at offset %" PRId64 ": %s",
                           report->skipped_file, report->skipped_offset, report->skipped_reason);
    return 0;
}

int wal_verify_dir(const char *dir, wal_replay_report *report, qr_diag *d)
{
    return wal_scan_dir(dir, NULL, NULL, report, d);
}

/* ---------------------------------------------------------------- open / close */

static void wal_fail_locked(wal_t *w, const char *msg)
{
    if (!w->failed) {
        w->failed = true;
        copy_trunc(w->fail_msg, sizeof w->fail_msg, msg);
    }
}

/* Accounts one fdatasync that started at start_ns: returns its duration and tells the
 * on_fsync callback. */
static uint64_t wal_fsync_done(const wal_t *w, int64_t start_ns)
{
    uint64_t ns = (uint64_t)(qr_monotonic_ns() - start_ns);
    if (w->opts.on_fsync) w->opts.on_fsync(w->opts.on_fsync_ctx, ns);
    return ns;
}

static void *wal_syncer_main(void *arg)
{
    wal_t *w = arg;
    pthread_mutex_lock(&w->file_mu);
    while (!w->syncer_stop) {
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        uint64_t ns = (uint64_t)deadline.tv_nsec + (uint64_t)w->opts.fsync_interval_ms * 1000000u;
        deadline.tv_sec += (time_t)(ns / 1000000000u);
        deadline.tv_nsec = (long)(ns % 1000000000u);
        while (!w->syncer_stop &&
               pthread_cond_timedwait(&w->syncer_cv, &w->file_mu, &deadline) != ETIMEDOUT) {
        }
        if (w->syncer_stop) break;
        if (w->fd < 0 || !w->unsynced) continue;
        int fd = dup(w->fd);
        w->unsynced = false;
        pthread_mutex_unlock(&w->file_mu);
        int64_t start_ns = qr_monotonic_ns();
        int ok = fd >= 0 && fdatasync(fd) == 0;
        char msg[200];
        if (!ok) snprintf(msg, sizeof msg, "wal: background fdatasync failed: %s", strerror(errno));
        if (fd >= 0) close(fd);
        uint64_t took_ns = wal_fsync_done(w, start_ns);
        pthread_mutex_lock(&w->mu);
        w->stats.fsyncs++;
        w->stats.fsync_ns_total += took_ns;
        if (!ok) wal_fail_locked(w, msg);
        pthread_mutex_unlock(&w->mu);
        pthread_mutex_lock(&w->file_mu);
    }
    pthread_mutex_unlock(&w->file_mu);
    return NULL;
}

int wal_open(const char *dir, const wal_opts *opts, wal_t **out, qr_diag *d)
{
    wal_opts o;
    memset(&o, 0, sizeof o);
    if (opts) o = *opts;
    if (o.fsync_policy != WAL_FSYNC_ALWAYS && o.fsync_policy != WAL_FSYNC_INTERVAL &&
        o.fsync_policy != WAL_FSYNC_NEVER)
        return qr_diag_set(d, QR_EINVAL, "wal: bad fsync policy %d", (int)o.fsync_policy);
    if (o.fsync_interval_ms == 0) o.fsync_interval_ms = 200;
    if (o.file_bytes == 0) o.file_bytes = 64u * 1024 * 1024;
    if (o.zstd_level == 0) o.zstd_level = 1;
    if (o.zstd_level < ZSTD_minCLevel() || o.zstd_level > ZSTD_maxCLevel())
        return qr_diag_set(d, QR_EINVAL, "wal: zstd level %d out of range", o.zstd_level);

    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return qr_diag_errno(d, QR_EIO, "wal: cannot create directory %s", dir);
    int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) return qr_diag_errno(d, QR_EIO, "wal: cannot open directory %s", dir);
    uint64_t *lsns = NULL;
    size_t count = 0;
    int rc = wal_dir_list(dir, &lsns, &count, d);
    if (rc) {
        close(dir_fd);
        return rc;
    }
    free(lsns);

    wal_t *w = calloc(1, sizeof *w);
    if (w) w->dir = strdup(dir);
    if (!w || !w->dir) {
        if (w) free(w);
        close(dir_fd);
        return qr_diag_set(d, QR_ENOMEM, "wal: out of memory");
    }
    w->dir_fd = dir_fd;
    w->opts = o;
    w->fd = -1;
    w->next_lsn = 1;
    w->need_replay = count > 0;
    pthread_mutex_init(&w->mu, NULL);
    pthread_mutex_init(&w->file_mu, NULL);
    pthread_mutex_init(&w->pool_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->syncer_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (o.fsync_policy == WAL_FSYNC_INTERVAL) {
        if (pthread_create(&w->syncer, NULL, wal_syncer_main, w) != 0) {
            wal_close(w);
            return qr_diag_set(d, QR_ENOMEM, "wal: cannot start the fsync thread");
        }
        w->syncer_started = true;
    }
    *out = w;
    return 0;
}

void wal_close(wal_t *w)
{
    if (!w) return;
    if (w->syncer_started) {
        pthread_mutex_lock(&w->file_mu);
        w->syncer_stop = true;
        pthread_cond_signal(&w->syncer_cv);
        pthread_mutex_unlock(&w->file_mu);
        pthread_join(w->syncer, NULL);
    }
    if (w->fd >= 0) {
        /* appends are synchronous: nothing is queued; under fsync=interval, make what was
         * written since the last tick durable (fsync=never leaves it to the OS) */
        if (!w->failed && w->opts.fsync_policy == WAL_FSYNC_INTERVAL) (void)fdatasync(w->fd);
        close(w->fd);
    }
    close(w->dir_fd);
    while (w->pool) {
        wal_scratch *s = w->pool;
        w->pool = s->next;
        ZSTD_freeCCtx(s->cctx);
        qr_buf_fini(&s->enc);
        qr_buf_fini(&s->rec);
        free(s);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_mutex_destroy(&w->file_mu);
    pthread_mutex_destroy(&w->pool_mu);
    pthread_cond_destroy(&w->syncer_cv);
    free(w->file_first_lsn);
    free(w->dir);
    free(w);
}

/* ---------------------------------------------------------------- replay */

int wal_replay(wal_t *w, wal_replay_fn fn, void *ctx, wal_replay_report *report, qr_diag *d)
{
    wal_replay_report local;
    if (!report) report = &local;
    pthread_mutex_lock(&w->mu);
    bool too_late = w->appended;
    pthread_mutex_unlock(&w->mu);
    if (too_late) return qr_diag_set(d, QR_EINVAL, "wal: replay after the first append");

    wal_scan s;
    memset(&s, 0, sizeof s);
    s.dir = w->dir;
    s.repair = true;
    s.fn = fn;
    s.ctx = ctx;
    s.report = report;
    int rc = scan_dir(&s, w->dir_fd, d);
    if (rc) {
        scan_fini(&s);
        return rc;
    }
    /* Open the last surviving file for appending right after its last good record. */
    int fd = -1;
    if (s.kept_count) {
        char path[4200];
        wal_path(path, sizeof path, w->dir, s.kept_first[s.kept_count - 1]);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = qr_diag_errno(d, QR_EIO, "wal: cannot open %s", path);
            scan_fini(&s);
            return rc;
        }
    }
    uint64_t next_lsn = 1;
    if (s.last_lsn)
        next_lsn = s.last_lsn + 1;
    else if (s.kept_count)
        next_lsn = s.kept_first[s.kept_count - 1]; /* header-only file(s) */
    else if (s.expect_lsn)
        next_lsn = s.expect_lsn;
    else if (s.first_name_lsn)
        next_lsn = s.first_name_lsn; /* even the first file was unreadable */

    pthread_mutex_lock(&w->file_mu);
    if (w->fd >= 0) close(w->fd);
    w->fd = fd;
    w->cur_bytes = s.tail_bytes;
    free(w->file_first_lsn);
    w->file_first_lsn = s.kept_first;
    w->file_count = w->file_cap = s.kept_count;
    s.kept_first = NULL;
    pthread_mutex_unlock(&w->file_mu);

    pthread_mutex_lock(&w->mu);
    /* after a clean log with files but no records, keep LSNs continuing from the names */
    w->next_lsn = next_lsn > w->next_lsn ? next_lsn : w->next_lsn;
    w->stats.last_lsn = s.last_lsn;
    w->need_replay = false;
    pthread_mutex_unlock(&w->mu);
    scan_fini(&s);
    return 0;
}

int wal_advance_lsn(wal_t *w, uint64_t next_lsn, qr_diag *d)
{
    pthread_mutex_lock(&w->mu);
    int rc = 0;
    if (w->need_replay || w->appended) {
        rc = qr_diag_set(d, QR_EINVAL, "wal: advance only between replay and the first append");
    } else if (next_lsn > w->next_lsn) {
        pthread_mutex_lock(&w->file_mu);
        bool has_file = w->fd >= 0 || w->file_count > 0;
        pthread_mutex_unlock(&w->file_mu);
        if (has_file)
            rc = qr_diag_set(d, QR_ECORRUPT,
                             "wal: the log ends at LSN %" PRIu64 " but segments already hold "
                             "LSN %" PRIu64 ": WAL files are missing",
                             w->next_lsn - 1, next_lsn - 1);
        else {
            w->next_lsn = next_lsn;
            w->stats.last_lsn = next_lsn - 1;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* ---------------------------------------------------------------- append (group commit) */

static wal_scratch *wal_scratch_get(wal_t *w)
{
    pthread_mutex_lock(&w->pool_mu);
    wal_scratch *s = w->pool;
    if (s) w->pool = s->next;
    pthread_mutex_unlock(&w->pool_mu);
    if (s) return s;
    s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->cctx = ZSTD_createCCtx();
    if (!s->cctx) {
        free(s);
        return NULL;
    }
    qr_buf_init(&s->enc);
    qr_buf_init(&s->rec);
    return s;
}

static void wal_scratch_put(wal_t *w, wal_scratch *s)
{
    if (s->enc.cap > WAL_SCRATCH_KEEP_BYTES) qr_buf_fini(&s->enc);
    if (s->rec.cap > WAL_SCRATCH_KEEP_BYTES) qr_buf_fini(&s->rec);
    qr_buf_clear(&s->enc);
    qr_buf_clear(&s->rec);
    pthread_mutex_lock(&w->pool_mu);
    s->next = w->pool;
    w->pool = s;
    pthread_mutex_unlock(&w->pool_mu);
}

/* Encodes and compresses the batch into s->rec as a framed record without LSN/checksum. */
static int wal_record_build(wal_t *w, wal_scratch *s, const char *tenant, size_t tenant_bytes,
                            const qr_batch *batch, qr_diag *d)
{
    qr_buf_clear(&s->enc);
    int rc = qr_batch_encode(batch, &s->enc);
    if (rc == QR_ENOMEM) return qr_diag_set(d, rc, "wal: out of memory encoding the batch");
    if (rc) return qr_diag_set(d, rc, "wal: batch cannot be encoded (%s)", qr_strerror(rc));
    if (s->enc.len > QR_BATCH_MAX_BYTES)
        return qr_diag_set(d, QR_ELIMIT, "wal: batch of %zu encoded bytes exceeds %d", s->enc.len,
                           QR_BATCH_MAX_BYTES);
    size_t bound = ZSTD_compressBound(s->enc.len);
    size_t head_bytes = WAL_REC_HEADER_BYTES + 1 + tenant_bytes + 4;
    qr_buf_clear(&s->rec);
    if (!qr_buf_reserve(&s->rec, head_bytes + bound))
        return qr_diag_set(d, QR_ENOMEM, "wal: out of memory building a record");
    uint8_t *p = s->rec.data;
    memset(p, 0, WAL_REC_HEADER_BYTES);
    p[8] = WAL_REC_BATCH;
    p[WAL_REC_HEADER_BYTES] = (uint8_t)tenant_bytes;
    memcpy(p + WAL_REC_HEADER_BYTES + 1, tenant, tenant_bytes);
    qr_store_u32(p + WAL_REC_HEADER_BYTES + 1 + tenant_bytes, (uint32_t)s->enc.len);
    size_t zn = ZSTD_compressCCtx(s->cctx, p + head_bytes, bound, s->enc.data, s->enc.len,
                                  w->opts.zstd_level);
    if (ZSTD_isError(zn)) return qr_diag_set(d, QR_ENOMEM, "wal: zstd: %s", ZSTD_getErrorName(zn));
    s->rec.len = head_bytes + zn;
    qr_store_u32(p, (uint32_t)(s->rec.len - WAL_REC_PREFIX_BYTES));
    return 0;
}

/* Leader only: creates the file for first_lsn, header written, directory synced, and makes
 * it current (after syncing the old one). */
static int wal_file_rotate(wal_t *w, uint64_t first_lsn, char *err, size_t err_cap)
{
    if (w->fd >= 0 && w->opts.fsync_policy != WAL_FSYNC_NEVER && fdatasync(w->fd) != 0) {
        snprintf(err, err_cap, "wal: fdatasync before rotation: %s", strerror(errno));
        return QR_EIO;
    }
    char path[4200];
    wal_path(path, sizeof path, w->dir, first_lsn);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, err_cap, "wal: cannot create %.160s: %s", path, strerror(errno));
        return QR_EIO;
    }
    uint8_t hdr[WAL_FILE_HEADER_BYTES];
    wal_header_build(hdr, first_lsn);
    if (pwrite_full(fd, hdr, sizeof hdr, 0) != 0 || fsync(w->dir_fd) != 0) {
        snprintf(err, err_cap, "wal: cannot initialise %.160s: %s", path, strerror(errno));
        close(fd);
        return QR_EIO;
    }
    /* wal_release edits the list concurrently: every access under file_mu */
    pthread_mutex_lock(&w->file_mu);
    if (w->file_count == w->file_cap) {
        size_t cap = w->file_cap ? w->file_cap * 2 : 16;
        uint64_t *lsns = realloc(w->file_first_lsn, cap * sizeof *lsns);
        if (!lsns) {
            pthread_mutex_unlock(&w->file_mu);
            close(fd);
            snprintf(err, err_cap, "wal: out of memory rotating");
            return QR_EIO;
        }
        w->file_first_lsn = lsns;
        w->file_cap = cap;
    }
    if (w->fd >= 0) close(w->fd);
    w->fd = fd;
    w->cur_bytes = WAL_FILE_HEADER_BYTES;
    w->file_first_lsn[w->file_count++] = first_lsn;
    w->unsynced = true;
    pthread_mutex_unlock(&w->file_mu);
    return 0;
}

/* Leader only, no lock held: writes records first..last (queue links) and syncs per policy.
 * Returns 0 or QR_EIO with a message in err. */
static int wal_group_write(wal_t *w, wal_waiter *first, wal_waiter *last, uint64_t *sync_ns,
                           uint64_t *syncs, char *err, size_t err_cap)
{
    struct iovec iov[WAL_IOV_MAX];
    int iov_count = 0;
    uint64_t pending = 0;
    for (wal_waiter *r = first;; r = r->next) {
        qr_store_u64(r->rec + 9, r->lsn);
        qr_store_u32(r->rec + 4, qr_checksum32(r->rec + WAL_REC_PREFIX_BYTES,
                                               r->rec_bytes - WAL_REC_PREFIX_BYTES));
        bool rotate = w->fd < 0 || (w->cur_bytes + pending > WAL_FILE_HEADER_BYTES &&
                                    w->cur_bytes + pending + r->rec_bytes > w->opts.file_bytes);
        if (rotate || iov_count == WAL_IOV_MAX) {
            if (iov_count && pwritev_full(w->fd, iov, iov_count, w->cur_bytes) != 0) {
                snprintf(err, err_cap, "wal: write failed: %s", strerror(errno));
                return QR_EIO;
            }
            w->cur_bytes += pending;
            iov_count = 0;
            pending = 0;
        }
        if (rotate) {
            int64_t start_ns = qr_monotonic_ns();
            bool had_file = w->fd >= 0;
            int rc = wal_file_rotate(w, r->lsn, err, err_cap);
            if (had_file && w->opts.fsync_policy != WAL_FSYNC_NEVER) {
                (*syncs)++;
                *sync_ns += wal_fsync_done(w, start_ns);
            }
            if (rc) return rc;
        }
        iov[iov_count].iov_base = r->rec;
        iov[iov_count].iov_len = r->rec_bytes;
        iov_count++;
        pending += r->rec_bytes;
        if (r == last) break;
    }
    if (pwritev_full(w->fd, iov, iov_count, w->cur_bytes) != 0) {
        snprintf(err, err_cap, "wal: write failed: %s", strerror(errno));
        return QR_EIO;
    }
    w->cur_bytes += pending;
    if (w->opts.fsync_policy == WAL_FSYNC_ALWAYS) {
        int64_t start_ns = qr_monotonic_ns();
        if (fdatasync(w->fd) != 0) {
            snprintf(err, err_cap, "wal: fdatasync failed: %s", strerror(errno));
            return QR_EIO;
        }
        (*syncs)++;
        *sync_ns += wal_fsync_done(w, start_ns);
    } else if (w->opts.fsync_policy == WAL_FSYNC_INTERVAL) {
        pthread_mutex_lock(&w->file_mu);
        w->unsynced = true;
        pthread_mutex_unlock(&w->file_mu);
    }
    return 0;
}

int wal_append(wal_t *w, const char *tenant, const qr_batch *batch, uint64_t *out_lsn, qr_diag *d)
{
    size_t tenant_bytes = tenant ? strlen(tenant) : 0;
    if (tenant_bytes == 0 || tenant_bytes > QR_TENANT_MAX_BYTES)
        return qr_diag_set(d, QR_EINVAL, "wal: tenant name must be 1..%d bytes",
                           QR_TENANT_MAX_BYTES);
    wal_scratch *s = wal_scratch_get(w);
    if (!s) return qr_diag_set(d, QR_ENOMEM, "wal: out of memory");
    int rc = wal_record_build(w, s, tenant, tenant_bytes, batch, d);
    if (rc) {
        wal_scratch_put(w, s);
        return rc;
    }

    wal_waiter me;
    memset(&me, 0, sizeof me);
    pthread_cond_init(&me.cv, NULL);
    me.rec = s->rec.data;
    me.rec_bytes = s->rec.len;
    me.raw_bytes = s->enc.len;

    pthread_mutex_lock(&w->mu);
    if (w->failed || w->need_replay) {
        rc = w->failed ? qr_diag_set(d, QR_EIO, "%s", w->fail_msg)
                       : qr_diag_set(d, QR_EINVAL, "wal: wal_replay must run before appending");
        pthread_mutex_unlock(&w->mu);
        pthread_cond_destroy(&me.cv);
        wal_scratch_put(w, s);
        return rc;
    }
    w->appended = true;
    me.lsn = w->next_lsn++;
    if (w->tail)
        w->tail->next = &me;
    else
        w->head = &me;
    w->tail = &me;
    while (!me.done && w->head != &me) pthread_cond_wait(&me.cv, &w->mu);

    if (!me.done) {
        /* Leader: take the queue (bounded), write it outside the lock. */
        wal_waiter *last = &me;
        uint64_t group_bytes = me.rec_bytes;
        while (last->next && group_bytes + last->next->rec_bytes <= WAL_GROUP_MAX_BYTES) {
            last = last->next;
            group_bytes += last->rec_bytes;
        }
        bool already_failed = w->failed;
        pthread_mutex_unlock(&w->mu);

        char err[256] = "";
        uint64_t sync_ns = 0, syncs = 0;
        int wrc = already_failed ? QR_EIO
                                 : wal_group_write(w, &me, last, &sync_ns, &syncs, err, sizeof err);

        pthread_mutex_lock(&w->mu);
        if (wrc) wal_fail_locked(w, err);
        w->stats.fsyncs += syncs;
        w->stats.fsync_ns_total += sync_ns;
        uint64_t record_count = 0, raw_total = 0;
        for (wal_waiter *r = &me;; r = r->next) {
            record_count++;
            raw_total += r->raw_bytes;
            if (r == last) break;
        }
        if (!wrc) {
            w->stats.appends += record_count;
            w->stats.bytes_written += group_bytes;
            w->stats.bytes_raw += raw_total;
            w->stats.group_writes++;
            w->stats.last_lsn = last->lsn;
        }
        wal_waiter *next_head = last->next;
        for (wal_waiter *r = &me; r != next_head;) {
            wal_waiter *after = r->next;
            r->rc = wrc ? QR_EIO : 0;
            r->done = true;
            if (r != &me) pthread_cond_signal(&r->cv);
            r = after;
        }
        w->head = next_head;
        if (!next_head)
            w->tail = NULL;
        else
            pthread_cond_signal(&next_head->cv);
    }
    rc = me.rc;
    if (rc) qr_diag_set(d, QR_EIO, "%s", w->fail_msg);
    pthread_mutex_unlock(&w->mu);
    pthread_cond_destroy(&me.cv);
    wal_scratch_put(w, s);
    if (!rc && out_lsn) *out_lsn = me.lsn;
    return rc;
}

/* ---------------------------------------------------------------- release, stats */

int wal_release(wal_t *w, uint64_t lsn, qr_diag *d)
{
    /* File idx holds LSNs [first[idx], first[idx+1]); the current (last) file is never
     * removed. Entries are taken out under file_mu so concurrent releases never race. */
    pthread_mutex_lock(&w->file_mu);
    size_t drop = 0;
    while (drop + 1 < w->file_count && w->file_first_lsn[drop + 1] - 1 <= lsn) drop++;
    uint64_t *victims = NULL;
    if (drop) {
        victims = malloc(drop * sizeof *victims);
        if (!victims) {
            pthread_mutex_unlock(&w->file_mu);
            return qr_diag_set(d, QR_ENOMEM, "wal: out of memory");
        }
        memcpy(victims, w->file_first_lsn, drop * sizeof *victims);
        memmove(w->file_first_lsn, w->file_first_lsn + drop,
                (w->file_count - drop) * sizeof *victims);
        w->file_count -= drop;
    }
    pthread_mutex_unlock(&w->file_mu);
    int rc = 0;
    for (size_t idx = 0; idx < drop; idx++) {
        char path[4200];
        wal_path(path, sizeof path, w->dir, victims[idx]);
        if (unlink(path) != 0 && errno != ENOENT && !rc)
            rc = qr_diag_errno(d, QR_EIO, "wal: cannot remove %s", path);
    }
    free(victims);
    if (drop) {
        int src = wal_dir_sync(w->dir_fd, w->dir, d);
        if (!rc) rc = src;
        pthread_mutex_lock(&w->mu);
        w->stats.files_deleted += drop;
        pthread_mutex_unlock(&w->mu);
    }
    return rc;
}

void wal_get_stats(wal_t *w, wal_stats *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->stats;
    out->is_failed = w->failed;
    pthread_mutex_unlock(&w->mu);
    pthread_mutex_lock(&w->file_mu);
    out->files = w->file_count;
    pthread_mutex_unlock(&w->file_mu);
}

#include "common/qr_input.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define RAW_CHUNK (1u << 20)

typedef enum { IN_PLAIN, IN_GZIP, IN_ZSTD } in_kind;

struct qr_input {
    in_kind kind;
    int fd;
    char path[1024];
    size_t max_line;
    /* decoded bytes window: data[start..len) not yet consumed */
    char *data;
    size_t start, len, cap;
    bool eof;
    bool skipping; /* inside an over-long line */
    uint64_t line_no;
    uint64_t bytes_read, file_bytes, bytes_decoded;
    /* compressed input */
    unsigned char *raw;
    size_t raw_len, raw_pos;
    bool raw_eof;
    z_stream z;
    bool z_init;
    ZSTD_DStream *zs;
};

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n > m && strcmp(s + n - m, suf) == 0;
}

int qr_input_open(const char *path, size_t max_line_bytes, qr_input **out, qr_diag *d)
{
    qr_input *in = calloc(1, sizeof *in);
    if (!in) return QR_ENOMEM;
    snprintf(in->path, sizeof in->path, "%s", path);
    in->max_line = max_line_bytes;
    in->cap = max_line_bytes + RAW_CHUNK * 2;
    in->data = malloc(in->cap);
    in->raw = malloc(RAW_CHUNK);
    if (!in->data || !in->raw) {
        qr_input_close(in);
        return QR_ENOMEM;
    }
    if (strcmp(path, "-") == 0) {
        in->fd = STDIN_FILENO;
    } else {
        in->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (in->fd < 0) {
            int rc = qr_diag_errno(d, QR_EIO, "cannot open %s", path);
            in->fd = -1;
            qr_input_close(in);
            return rc;
        }
        struct stat st;
        if (fstat(in->fd, &st) == 0 && S_ISREG(st.st_mode)) in->file_bytes = (uint64_t)st.st_size;
    }
    if (has_suffix(path, ".gz")) {
        in->kind = IN_GZIP;
        if (inflateInit2(&in->z, 15 + 32) != Z_OK) {
            qr_input_close(in);
            return qr_diag_set(d, QR_ENOMEM, "cannot start gzip decoder");
        }
        in->z_init = true;
    } else if (has_suffix(path, ".zst")) {
        in->kind = IN_ZSTD;
        in->zs = ZSTD_createDStream();
        if (!in->zs) {
            qr_input_close(in);
            return qr_diag_set(d, QR_ENOMEM, "cannot start zstd decoder");
        }
        ZSTD_initDStream(in->zs);
    }
    *out = in;
    return 0;
}

void qr_input_close(qr_input *in)
{
    if (!in) return;
    if (in->fd > STDIN_FILENO) close(in->fd);
    if (in->z_init) inflateEnd(&in->z);
    if (in->zs) ZSTD_freeDStream(in->zs);
    free(in->data);
    free(in->raw);
    free(in);
}

static int read_raw(qr_input *in, qr_diag *d)
{
    if (in->raw_pos < in->raw_len || in->raw_eof) return 0;
    for (;;) {
        ssize_t n = read(in->fd, in->raw, RAW_CHUNK);
        if (n < 0) {
            if (errno == EINTR) continue;
            return qr_diag_errno(d, QR_EIO, "cannot read %s", in->path);
        }
        in->raw_len = (size_t)n;
        in->raw_pos = 0;
        in->bytes_read += (uint64_t)n;
        if (n == 0) in->raw_eof = true;
        return 0;
    }
}

/* Appends up to `room` decoded bytes at data+len. Sets eof when the input is exhausted. */
static int fill(qr_input *in, qr_diag *d)
{
    if (in->start > 0 && in->start == in->len) in->start = in->len = 0;
    if (in->cap - in->len < RAW_CHUNK) {
        memmove(in->data, in->data + in->start, in->len - in->start);
        in->len -= in->start;
        in->start = 0;
    }
    size_t room = in->cap - in->len;
    if (in->kind == IN_PLAIN) {
        for (;;) {
            ssize_t n = read(in->fd, in->data + in->len, room);
            if (n < 0) {
                if (errno == EINTR) continue;
                return qr_diag_errno(d, QR_EIO, "cannot read %s", in->path);
            }
            if (n == 0) in->eof = true;
            in->len += (size_t)n;
            in->bytes_read += (uint64_t)n;
            in->bytes_decoded += (uint64_t)n;
            return 0;
        }
    }
    int rc = read_raw(in, d);
    if (rc) return rc;
    if (in->raw_eof && in->raw_pos >= in->raw_len) {
        in->eof = true;
        return 0;
    }
    size_t produced;
    if (in->kind == IN_GZIP) {
        in->z.next_in = in->raw + in->raw_pos;
        in->z.avail_in = (uInt)(in->raw_len - in->raw_pos);
        in->z.next_out = (Bytef *)in->data + in->len;
        in->z.avail_out = (uInt)room;
        int zrc = inflate(&in->z, Z_NO_FLUSH);
        if (zrc == Z_STREAM_END) {
            /* concatenated gzip members: start the next one */
            inflateReset(&in->z);
        } else if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            return qr_diag_set(d, QR_ECORRUPT, "%s: bad gzip data (%s)", in->path,
                               in->z.msg ? in->z.msg : "inflate failed");
        }
        in->raw_pos = in->raw_len - in->z.avail_in;
        produced = room - in->z.avail_out;
    } else {
        ZSTD_inBuffer ib = {in->raw, in->raw_len, in->raw_pos};
        ZSTD_outBuffer ob = {in->data + in->len, room, 0};
        size_t zrc = ZSTD_decompressStream(in->zs, &ob, &ib);
        if (ZSTD_isError(zrc))
            return qr_diag_set(d, QR_ECORRUPT, "%s: bad zstd data (%s)", in->path,
                               ZSTD_getErrorName(zrc));
        in->raw_pos = ib.pos;
        produced = ob.pos;
    }
    in->len += produced;
    in->bytes_decoded += produced;
    return 0;
}

int qr_input_next(qr_input *in, const char **line, size_t *len, uint64_t *line_no, qr_diag *d)
{
    for (;;) {
        char *begin = in->data + in->start;
        size_t avail = in->len - in->start;
        char *nl = avail ? memchr(begin, '\n', avail) : NULL;
        if (nl || (in->eof && avail)) {
            size_t n = nl ? (size_t)(nl - begin) : avail;
            in->start += nl ? n + 1 : n;
            in->line_no++;
            if (in->skipping) {
                in->skipping = false;
                continue; /* the tail of an over-long line already reported */
            }
            if (n && begin[n - 1] == '\r') n--;
            *line = begin;
            *len = n;
            *line_no = in->line_no;
            return 1;
        }
        if (in->eof) return 0;
        if (avail > in->max_line) {
            /* report once, then drop bytes until the next newline */
            uint64_t reported = in->line_no + 1;
            if (!in->skipping) {
                in->skipping = true;
                in->start = in->len;
                *line_no = reported;
                *line = NULL;
                *len = 0;
                return qr_diag_set(d, QR_ELIMIT, "line %llu is longer than %zu bytes",
                                   (unsigned long long)reported, in->max_line);
            }
            in->start = in->len;
        }
        int rc = fill(in, d);
        if (rc) return rc;
    }
}

uint64_t qr_input_bytes_read(const qr_input *in) { return in->bytes_read; }
uint64_t qr_input_file_bytes(const qr_input *in) { return in->file_bytes; }
uint64_t qr_input_bytes_decoded(const qr_input *in) { return in->bytes_decoded; }

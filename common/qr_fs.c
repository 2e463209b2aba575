#include "common/qr_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int qr_fs_mkdirs(const char *path, qr_diag *d)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf) return qr_diag_set(d, QR_EINVAL, "bad path \"%s\"", path);
    memcpy(buf, path, len + 1);
    for (size_t pos = 1; pos <= len; pos++) {
        if (buf[pos] != '/' && buf[pos] != '\0') continue;
        char saved = buf[pos];
        buf[pos] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return qr_diag_errno(d, QR_EIO, "cannot create directory %s", buf);
        buf[pos] = saved;
    }
    return 0;
}

int qr_fs_fsync_dir(const char *dir, qr_diag *d)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return qr_diag_errno(d, QR_EIO, "cannot open directory %s", dir);
    int rc = fsync(fd);
    close(fd);
    if (rc != 0) return qr_diag_errno(d, QR_EIO, "cannot fsync directory %s", dir);
    return 0;
}

void qr_fs_dirname(const char *path, char *buf, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(buf, cap, ".");
    } else if (slash == path) {
        snprintf(buf, cap, "/");
    } else {
        snprintf(buf, cap, "%.*s", (int)(slash - path), path);
    }
}

int qr_fs_write_atomic(const char *path, const void *data, size_t len, qr_diag *d)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return qr_diag_errno(d, QR_EIO, "cannot create %s", tmp);
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t n = write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            close(fd);
            unlink(tmp);
            return qr_diag_errno(d, QR_EIO, "cannot write %s", tmp);
        }
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) != 0) {
        close(fd);
        unlink(tmp);
        return qr_diag_errno(d, QR_EIO, "cannot fsync %s", tmp);
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return qr_diag_errno(d, QR_EIO, "cannot rename %s", tmp);
    }
    char dir[4200];
    qr_fs_dirname(path, dir, sizeof dir);
    return qr_fs_fsync_dir(dir, d);
}

int qr_fs_read_all(const char *path, size_t max_bytes, qr_buf *out, qr_diag *d)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return QR_ENOTFOUND;
        return qr_diag_errno(d, QR_EIO, "cannot open %s", path);
    }
    for (;;) {
        if (!qr_buf_reserve(out, 64 * 1024)) {
            close(fd);
            return qr_diag_set(d, QR_ENOMEM, "out of memory reading %s", path);
        }
        ssize_t n = read(fd, out->data + out->len, out->cap - out->len);
        if (n < 0) {
            if (errno == EINTR) continue;
            close(fd);
            return qr_diag_errno(d, QR_EIO, "cannot read %s", path);
        }
        if (n == 0) break;
        out->len += (size_t)n;
        if (out->len > max_bytes) {
            close(fd);
            return qr_diag_set(d, QR_ELIMIT, "%s is larger than %zu bytes", path, max_bytes);
        }
    }
    close(fd);
    return 0;
}

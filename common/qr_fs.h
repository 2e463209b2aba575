/* qr_fs — small file-system helpers with the durability steps spelled out.
 * All return 0 or QR_EIO with a diag naming the path and errno. Reentrant. */
#ifndef QR_FS_H
#define QR_FS_H

#include "common/qr_buf.h"
#include "common/qr_err.h"

#include <stddef.h>

/* mkdir -p */
int qr_fs_mkdirs(const char *path, qr_diag *d);
/* fsync a directory so a create/rename/unlink in it is durable */
int qr_fs_fsync_dir(const char *dir, qr_diag *d);
/* Writes path.tmp, fsyncs it, renames it over path, fsyncs the directory. */
int qr_fs_write_atomic(const char *path, const void *data, size_t len, qr_diag *d);
/* Reads a whole file (up to max_bytes, else QR_ELIMIT) into out. QR_ENOTFOUND if absent. */
int qr_fs_read_all(const char *path, size_t max_bytes, qr_buf *out, qr_diag *d);
/* Directory part of path into buf ("." when none). */
void qr_fs_dirname(const char *path, char *buf, size_t cap);

#endif

/* qr_err — error codes and user-facing diagnostics for all of Quarry.
 *
 * Contract: functions return 0 on success or a negative QR_E* code. Where a user will read
 * the error, they also fill a caller-supplied qr_diag with a message and, when it applies,
 * a position (1-based line/column for query text, byte offset for files, index for batch
 * items). A qr_diag is plain caller storage; nothing in it needs freeing.
 * Thread safety: qr_strerror is reentrant; a qr_diag belongs to one thread at a time. */
#ifndef QR_ERR_H
#define QR_ERR_H

#include <stdarg.h>
#include <stdint.h>

enum {
    QR_OK = 0,
    QR_EIO = -1,      /* an operating-system call failed (errno kept in diag) */
    QR_ECORRUPT = -2, /* bytes read from disk or network are not what the format says */
    QR_ENOMEM = -3,   /* allocation failed */
    QR_ESYNTAX = -4,  /* query or input text does not parse */
    QR_ELIMIT = -5,   /* a configured limit (size, count, budget, deadline) was exceeded */
    QR_EINVAL = -6,   /* invalid argument or value */
    QR_ENOTFOUND = -7,
    QR_EEXIST = -8,
    QR_EBUSY = -9,   /* resource held by someone else (e.g. data directory lock) */
    QR_EAGAIN = -10, /* try again later (quota, shutting down) */
    QR_ECANCELED = -11,
};

const char *qr_strerror(int err);

#define QR_DIAG_MSG_MAX 512

typedef struct qr_diag {
    int code;       /* the QR_E* code of the first error recorded, 0 if none */
    int64_t offset; /* byte offset into the input/file, -1 if not applicable */
    int32_t line;   /* 1-based, 0 if not applicable */
    int32_t column; /* 1-based, 0 if not applicable */
    int64_t index;  /* item index in a batch (event, line number), -1 if not applicable */
    char msg[QR_DIAG_MSG_MAX];
} qr_diag;

void qr_diag_init(qr_diag *d);
/* Records the error (first one wins unless d->code == 0) and returns code, so callers can
 * write `return qr_diag_set(d, QR_EINVAL, "bad thing %d", x);`. d may be NULL. */
int qr_diag_set(qr_diag *d, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int qr_diag_vset(qr_diag *d, int code, const char *fmt, va_list ap);
/* Like qr_diag_set, appending ": strerror(errno)". */
int qr_diag_errno(qr_diag *d, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif

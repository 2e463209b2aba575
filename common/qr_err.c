#include "common/qr_err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *qr_strerror(int err)
{
    switch (err) {
    case QR_OK:
        return "ok";
    case QR_EIO:
        return "I/O error";
    case QR_ECORRUPT:
        return "corrupt data";
    case QR_ENOMEM:
        return "out of memory";
    case QR_ESYNTAX:
        return "syntax error";
    case QR_ELIMIT:
        return "limit exceeded";
    case QR_EINVAL:
        return "invalid argument";
    case QR_ENOTFOUND:
        return "not found";
    case QR_EEXIST:
        return "already exists";
    case QR_EBUSY:
        return "busy";
    case QR_EAGAIN:
        return "try again";
    case QR_ECANCELED:
        return "canceled";
    }
    return "unknown error";
}

void qr_diag_init(qr_diag *d)
{
    memset(d, 0, sizeof *d);
    d->offset = -1;
    d->index = -1;
}

int qr_diag_vset(qr_diag *d, int code, const char *fmt, va_list ap)
{
    if (!d || d->code != 0) return code;
    d->code = code;
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    return code;
}

int qr_diag_set(qr_diag *d, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qr_diag_vset(d, code, fmt, ap);
    va_end(ap);
    return code;
}

int qr_diag_errno(qr_diag *d, int code, const char *fmt, ...)
{
    int saved = errno;
    if (!d || d->code != 0) return code;
    va_list ap;
    va_start(ap, fmt);
    qr_diag_vset(d, code, fmt, ap);
    va_end(ap);
    size_t n = strlen(d->msg);
    snprintf(d->msg + n, sizeof d->msg - n, ": %s", strerror(saved));
    return code;
}

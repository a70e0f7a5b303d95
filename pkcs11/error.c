#include "error.h"

#include <stdarg.h>
#include <stdio.h>

int kpsa_err_set(struct kpsa_err *err, enum kpsa_err_kind kind, const char *fmt,
                 ...)
{
    va_list ap;

    err->kind = kind;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return -1;
}

void kpsa_err_clear(struct kpsa_err *err)
{
    err->kind = KPSA_ERR_NONE;
    err->msg[0] = '\0';
}

/* One error per object, set where it happens, read by the caller. */
#ifndef KPSA_ERROR_H
#define KPSA_ERROR_H

#define KPSA_ERR_MAX 320

enum kpsa_err_kind {
    KPSA_ERR_NONE = 0,
    KPSA_ERR_USER = 1,  /* a rule broken or input the user can correct */
    KPSA_ERR_TOKEN = 3, /* the token or its module failed */
};

struct kpsa_err {
    enum kpsa_err_kind kind;
    char msg[KPSA_ERR_MAX];
};

#if defined(__GNUC__)
#define KPSA_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define KPSA_PRINTF(a, b)
#endif

/* Sets the error and returns -1, so that a failure is one line. */
int kpsa_err_set(struct kpsa_err *err, enum kpsa_err_kind kind, const char *fmt,
                 ...) KPSA_PRINTF(3, 4);
void kpsa_err_clear(struct kpsa_err *err);

#endif

/* The kpsa OpenSSL provider: shared state and the key store. */
#ifndef KPSA_PROV_H
#define KPSA_PROV_H

#include <pthread.h>
#include <stdarg.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/crypto.h>

#include "family.h"
#include "token.h"

/* Reason codes on OpenSSL's error stack (ERR_GET_REASON). */
enum kpsa_reason {
    KPSA_R_HANDLE_UNRESOLVED = 100,
    KPSA_R_TOKEN = 101,
    KPSA_R_UNSUPPORTED = 102,
    KPSA_R_CONFIG = 103,
    KPSA_R_INTERNAL = 104,
};

struct kpsa_prov {
    const OSSL_CORE_HANDLE *core;
    OSSL_LIB_CTX *libctx; /* a child of the application's */
    OSSL_FUNC_core_new_error_fn *new_error;
    OSSL_FUNC_core_set_error_debug_fn *set_error_debug;
    OSSL_FUNC_core_vset_error_fn *vset_error;
    OSSL_FUNC_core_set_error_mark_fn *set_error_mark;
    OSSL_FUNC_core_pop_error_to_mark_fn *pop_error_to_mark;
    char *module, *uri, *pin_source;

    /* The key store: opened at first use, reopened after a fork or a
     * token failure. One session, so token calls are serialised. */
    pthread_mutex_t lock;
    struct kpsa_token *tok;
    struct family_index *idx;
    struct timespec built; /* when idx was read from the token */
    pid_t pid;
    int pin_rejected;
};

/* Raises an error on OpenSSL's stack at the caller's file and line. */
#define prov_error(prov, reason, ...)                                          \
    prov_error_at(prov, OPENSSL_FILE, OPENSSL_LINE, OPENSSL_FUNC, reason,      \
                  __VA_ARGS__)
void prov_error_at(struct kpsa_prov *prov, const char *file, int line,
                   const char *func, int reason, const char *fmt, ...)
    KPSA_PRINTF(6, 7);

/*
 * The PKCS#11 module may share the process's libcrypto (SoftHSM2 does) and
 * leave its own errors on the thread's queue, which libssl and applications
 * then take for theirs. prov_mark before token work and prov_drop_foreign
 * after it discard them; kpsa's own error is raised afterwards.
 */
void prov_mark(struct kpsa_prov *prov);
void prov_drop_foreign(struct kpsa_prov *prov);

/* 256 or 384 for a digest name of SHA-256 or SHA-384, else 0. */
unsigned prov_hash(struct kpsa_prov *prov, const char *name);

/*
 * Locks the store and finds the family a handle names; on success the
 * caller uses the token and calls keystore_release. On failure the error
 * is raised and the store is not locked.
 */
int keystore_acquire(struct kpsa_prov *prov, const char *handle_id,
                     struct kpsa_token **tok, const struct family **fam);
/* failed: the token call failed; its error is raised and the token is
 * reopened before the next use. */
void keystore_release(struct kpsa_prov *prov, int failed, const char *kpsaid);
void keystore_close(struct kpsa_prov *prov);
/* At teardown: the process is exiting and libcrypto is half gone. */
void keystore_abandon(struct kpsa_prov *prov);

extern const OSSL_DISPATCH kpsa_tls1_prf_functions[];
extern const OSSL_DISPATCH kpsa_tls13_kdf_functions[];
extern const OSSL_DISPATCH kpsa_hmac_keymgmt_functions[];
extern const OSSL_DISPATCH kpsa_hmac_signature_functions[];

#endif

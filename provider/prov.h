/* The kpsa OpenSSL provider: shared state and the key store. */
#ifndef KPSA_PROV_H
#define KPSA_PROV_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
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

/* Sessions a process opens at most: handshakes beyond that many at once
 * wait for one. */
#define KEYSTORE_SESSIONS 8

struct keystore_slot {
    struct kpsa_token *tok; /* NULL: not open */
    int busy;
    /* Session copies of the members used in this session. */
    CK_OBJECT_HANDLE *from, *to;
    size_t n_copies, cap_copies;
    int no_copies; /* the token refused to copy: use token objects */
};

/* The default provider's algorithms kpsa computes plain calls and digest
 * names with (prov_fetched). */
enum prov_alg {
    ALG_TLS1_PRF,  /* EVP_KDF */
    ALG_TLS13_KDF, /* EVP_KDF */
    ALG_SHA256,    /* EVP_MD */
    ALG_SHA384,    /* EVP_MD */
    ALG_COUNT
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
    /* Fetched at first use and kept until teardown: libssl makes a KDF
     * context per key-schedule step, and a fetch for each was half of
     * what kpsa cost a TLS 1.3 handshake beyond its token calls. */
    _Atomic(void *) fetched[ALG_COUNT];
    pthread_mutex_t fetch_lock;

    /* The key store (keystore.c): opened at first use, reopened after a
     * fork or a token failure. lock guards all of it and is never held
     * across a handshake's token calls, nor across a reread of the index
     * for an unknown handle. */
    pthread_mutex_t lock;
    pthread_cond_t idle;        /* a session was given back */
    struct kpsa_token *primary; /* reads the index */
    struct family_index *idx;
    struct timespec built; /* when idx was last read from the token */
    int rereading;         /* a thread reads idx again, without lock */
    pthread_cond_t reread; /* ... and has finished */
    struct keystore_slot slot[KEYSTORE_SESSIONS];
    unsigned generation; /* bumped whenever the store starts afresh */
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

/* A UTF-8 parameter into a field of cap bytes, which stays a string
 * whatever happens: a name too long is refused and leaves it empty. */
int prov_take_name(const OSSL_PARAM *p, char *field, size_t cap);
/* A UTF-8 parameter's length as OpenSSL reads it; (size_t)-1 if none. */
size_t prov_utf8_len(const OSSL_PARAM *p);

/* The default provider's algorithm, fetched once; NULL with the error
 * raised if it has none. The pointer is the provider's: do not free. */
void *prov_fetched(struct kpsa_prov *prov, enum prov_alg alg);

/* 256 or 384 for any name of SHA-256 or SHA-384, else 0; fetches
 * nothing after the first call. */
unsigned prov_hash(struct kpsa_prov *prov, const char *name);

/* A family and a session of the pool, for one handshake step. */
struct keystore_use {
    struct family fam; /* a copy: the index may change meanwhile */
    struct keystore_slot *slot;
    unsigned generation;
    int fresh; /* the slot's session is opened by keystore_acquire */
};

/*
 * Finds the family a handle names and takes a session for its token
 * calls; the caller computes, then calls keystore_release. On failure the
 * error is raised and nothing is taken.
 */
int keystore_acquire(struct kpsa_prov *prov, const char *handle_id,
                     struct keystore_use *use);
struct kpsa_token *keystore_token(struct keystore_use *use);
/* The object to compute with: the member's session copy, made at its
 * first use in this session, or the token object. */
CK_OBJECT_HANDLE keystore_object(struct keystore_use *use, int member);
/* failed: a token call failed; its error is raised, and the store starts
 * afresh at the next use. */
void keystore_release(struct kpsa_prov *prov, struct keystore_use *use,
                      int failed);
/* One HMAC (SHA-256 for 32 bytes of output, SHA-384 for 48) with a
 * member of the family a handle names. Returns 1, or 0 with the error
 * raised. */
int keystore_hmac(struct kpsa_prov *prov, const char *handle_id, int member,
                  const unsigned char *msg, size_t len, unsigned char *out,
                  size_t out_len);
/* The family alone, without a session. */
int keystore_find(struct kpsa_prov *prov, const char *handle_id,
                  struct family *fam);
void keystore_close(struct kpsa_prov *prov);
/* At teardown: the process is exiting and libcrypto is half gone. */
void keystore_abandon(struct kpsa_prov *prov);

extern const OSSL_DISPATCH kpsa_tls1_prf_functions[];
extern const OSSL_DISPATCH kpsa_tls13_kdf_functions[];
extern const OSSL_DISPATCH kpsa_hmac_keymgmt_functions[];
extern const OSSL_DISPATCH kpsa_hmac_signature_functions[];

#endif

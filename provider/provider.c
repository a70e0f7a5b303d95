/*
 * kpsa: an OpenSSL 3 provider whose TLS1-PRF, TLS13-KDF and HMAC run the
 * PSK-dependent steps of the (D)TLS 1.2 and TLS 1.3 key schedules on a
 * PKCS#11 token. The application gives
 * OpenSSL a handle instead of Kpsa; everything else passes through to the
 * default provider unchanged. See kpsa-provider(7).
 */
#define _GNU_SOURCE /* dladdr, RTLD_NODELETE */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include "prov.h"

#define KPSA_PROV_NAME    "kpsa"
#define KPSA_PROV_VERSION KPSA_VERSION
/* HMACs and key digests asked of the token so far (uint64), for
 * benchmarks: OSSL_PROVIDER_get_params. */
#define KPSA_PARAM_TOKEN_OPS "kpsa-token-ops"

void prov_error_at(struct kpsa_prov *prov, const char *file, int line,
                   const char *func, int reason, const char *fmt, ...)
{
    va_list ap;

    if (prov->new_error == NULL || prov->vset_error == NULL)
        return;
    prov->new_error(prov->core);
    if (prov->set_error_debug != NULL)
        prov->set_error_debug(prov->core, file, line, func);
    va_start(ap, fmt);
    prov->vset_error(prov->core, (uint32_t)reason, fmt, ap);
    va_end(ap);
}

void prov_mark(struct kpsa_prov *prov)
{
    if (prov->set_error_mark != NULL && prov->pop_error_to_mark != NULL)
        prov->set_error_mark(prov->core);
}

void prov_drop_foreign(struct kpsa_prov *prov)
{
    if (prov->set_error_mark != NULL && prov->pop_error_to_mark != NULL)
        prov->pop_error_to_mark(prov->core);
}

/* OpenSSL's own KDFs read a UTF-8 parameter up to its NUL, whatever its
 * size says (OSSL_PARAM_utf8_string() initialisers give 0); so does kpsa,
 * within the size when there is one. */
size_t prov_utf8_len(const OSSL_PARAM *p)
{
    const char *s = p->data;

    if (p->data_type != OSSL_PARAM_UTF8_STRING || s == NULL)
        return (size_t)-1;
    return p->data_size > 0 ? strnlen(s, p->data_size) : strlen(s);
}

int prov_take_name(const OSSL_PARAM *p, char *field, size_t cap)
{
    size_t len = prov_utf8_len(p);

    if (len == (size_t)-1 || len >= cap) {
        field[0] = '\0';
        return 0;
    }
    memcpy(field, p->data, len);
    field[len] = '\0';
    return 1;
}

static const struct {
    const char *name, *what;
    int is_md;
} alg_defs[ALG_COUNT] = {
    [ALG_TLS1_PRF] = {"TLS1-PRF", "TLS1-PRF", 0},
    [ALG_TLS13_KDF] = {"TLS13-KDF", "TLS13-KDF", 0},
    [ALG_SHA256] = {"SHA2-256", "SHA-256", 1},
    [ALG_SHA384] = {"SHA2-384", "SHA-384", 1},
};

static void *fetch_default(struct kpsa_prov *prov, enum prov_alg alg)
{
    if (alg_defs[alg].is_md)
        return EVP_MD_fetch(prov->libctx, alg_defs[alg].name,
                            "provider=default");
    return EVP_KDF_fetch(prov->libctx, alg_defs[alg].name, "provider=default");
}

void *prov_fetched(struct kpsa_prov *prov, enum prov_alg alg)
{
    void *got = atomic_load_explicit(&prov->fetched[alg], memory_order_acquire);

    if (got != NULL)
        return got;
    /* One fetch per algorithm even when threads race to the first. */
    pthread_mutex_lock(&prov->fetch_lock);
    got = atomic_load_explicit(&prov->fetched[alg], memory_order_relaxed);
    if (got == NULL) {
        got = fetch_default(prov, alg);
        atomic_store_explicit(&prov->fetched[alg], got, memory_order_release);
    }
    pthread_mutex_unlock(&prov->fetch_lock);
    if (got == NULL)
        prov_error(prov, KPSA_R_INTERNAL,
                   "cannot fetch the default provider's %s",
                   alg_defs[alg].what);
    return got;
}

static void fetched_free(struct kpsa_prov *prov)
{
    for (int alg = 0; alg < ALG_COUNT; alg++) {
        void *got = atomic_exchange(&prov->fetched[alg], NULL);

        if (alg_defs[alg].is_md)
            EVP_MD_free(got);
        else
            EVP_KDF_free(got);
    }
}

/* EVP_MD_is_a looks the name up among the fetched digest's names (every
 * alias: SHA256, SHA-256, SHA2-256, its OID), so no digest is fetched per
 * call. */
unsigned prov_hash(struct kpsa_prov *prov, const char *name)
{
    const EVP_MD *sha256, *sha384;

    if (name == NULL || name[0] == '\0')
        return 0;
    sha256 = prov_fetched(prov, ALG_SHA256);
    if (sha256 != NULL && EVP_MD_is_a(sha256, name))
        return 256;
    sha384 = prov_fetched(prov, ALG_SHA384);
    if (sha384 != NULL && EVP_MD_is_a(sha384, name))
        return 384;
    return 0;
}

static const OSSL_ITEM reason_strings[] = {
    {KPSA_R_HANDLE_UNRESOLVED, "kpsa handle does not resolve"},
    {KPSA_R_TOKEN, "kpsa token failure"},
    {KPSA_R_UNSUPPORTED, "not possible with a kpsa handle"},
    {KPSA_R_CONFIG, "kpsa configuration"},
    {KPSA_R_INTERNAL, "kpsa internal error"},
    {0, NULL},
};

static const OSSL_ITEM *get_reason_strings(void *provctx)
{
    (void)provctx;
    return reason_strings;
}

static const OSSL_ALGORITHM kdfs[] = {
    {"TLS1-PRF", "provider=kpsa", kpsa_tls1_prf_functions,
     "TLS 1.2 PRF with the premaster on a PKCS#11 token"},
    {"TLS13-KDF", "provider=kpsa", kpsa_tls13_kdf_functions,
     "TLS 1.3 key schedule with the PSK-constant secrets on a token"},
    {NULL, NULL, NULL, NULL},
};

/* The TLS 1.3 binder is an HMAC EVP_PKEY; both halves must be kpsa's, or
 * EVP would export the key to the other provider. */
static const OSSL_ALGORITHM keymgmts[] = {
    {"HMAC", "provider=kpsa", kpsa_hmac_keymgmt_functions,
     "HMAC keys; binder keys stay on the token"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM signatures[] = {
    {"HMAC", "provider=kpsa", kpsa_hmac_signature_functions,
     "HMAC; the TLS 1.3 binder computed on the token"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM *query_operation(void *provctx, int id,
                                             int *no_store)
{
    (void)provctx;
    *no_store = 0;
    switch (id) {
    case OSSL_OP_KDF:
        return kdfs;
    case OSSL_OP_KEYMGMT:
        return keymgmts;
    case OSSL_OP_SIGNATURE:
        return signatures;
    default:
        return NULL;
    }
}

static const OSSL_PARAM *gettable_params(void *provctx)
{
    static const OSSL_PARAM table[] = {
        OSSL_PARAM_DEFN(OSSL_PROV_PARAM_NAME, OSSL_PARAM_UTF8_PTR, NULL, 0),
        OSSL_PARAM_DEFN(OSSL_PROV_PARAM_VERSION, OSSL_PARAM_UTF8_PTR, NULL, 0),
        OSSL_PARAM_DEFN(OSSL_PROV_PARAM_BUILDINFO, OSSL_PARAM_UTF8_PTR, NULL,
                        0),
        OSSL_PARAM_DEFN(OSSL_PROV_PARAM_STATUS, OSSL_PARAM_INTEGER, NULL, 0),
        OSSL_PARAM_DEFN(KPSA_PARAM_TOKEN_OPS, OSSL_PARAM_UNSIGNED_INTEGER, NULL,
                        0),
        OSSL_PARAM_END,
    };

    (void)provctx;
    return table;
}

static int get_params(void *provctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p;

    (void)provctx;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, KPSA_PROV_NAME))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, KPSA_PROV_VERSION))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, KPSA_PROV_VERSION))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS);
    if (p != NULL && !OSSL_PARAM_set_int(p, 1))
        return 0;
    p = OSSL_PARAM_locate(params, KPSA_PARAM_TOKEN_OPS);
    if (p != NULL && !OSSL_PARAM_set_uint64(p, token_op_count()))
        return 0;
    return 1;
}

/*
 * A provider unloaded while the program runs closes its sessions and
 * finalizes the module; one torn down by OPENSSL_cleanup at exit must not
 * call a module that uses libcrypto itself (SoftHSM2 does), since
 * libcrypto is half gone by then. OPENSSL_atexit handlers run first in
 * OPENSSL_cleanup; this library stays loaded once it registered one, so
 * that the handler outlives an unloaded provider.
 */
static int process_exiting;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void mark_exiting(void)
{
    process_exiting = 1;
}

static void watch_exit(void)
{
    Dl_info self;

    if (dladdr(&process_exiting, &self) != 0 && self.dli_fname != NULL &&
        dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) != NULL)
        OPENSSL_atexit(mark_exiting);
}

static void teardown(void *provctx)
{
    struct kpsa_prov *prov = provctx;

    if (process_exiting)
        keystore_abandon(prov);
    else
        keystore_close(prov);
    fetched_free(prov);
    pthread_mutex_destroy(&prov->fetch_lock);
    pthread_cond_destroy(&prov->reread);
    pthread_cond_destroy(&prov->idle);
    pthread_mutex_destroy(&prov->lock);
    OSSL_LIB_CTX_free(prov->libctx);
    free(prov->module);
    free(prov->uri);
    free(prov->pin_source);
    free(prov);
}

static const OSSL_DISPATCH provider_functions[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))teardown},
    {OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))gettable_params},
    {OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))get_params},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))query_operation},
    {OSSL_FUNC_PROVIDER_GET_REASON_STRINGS, (void (*)(void))get_reason_strings},
    {0, NULL},
};

static void take_core_functions(struct kpsa_prov *prov, const OSSL_DISPATCH *in,
                                OSSL_FUNC_core_get_params_fn **get_params_fn)
{
    for (; in->function_id != 0; in++) {
        switch (in->function_id) {
        case OSSL_FUNC_CORE_GET_PARAMS:
            *get_params_fn = OSSL_FUNC_core_get_params(in);
            break;
        case OSSL_FUNC_CORE_NEW_ERROR:
            prov->new_error = OSSL_FUNC_core_new_error(in);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
            prov->set_error_debug = OSSL_FUNC_core_set_error_debug(in);
            break;
        case OSSL_FUNC_CORE_VSET_ERROR:
            prov->vset_error = OSSL_FUNC_core_vset_error(in);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_MARK:
            prov->set_error_mark = OSSL_FUNC_core_set_error_mark(in);
            break;
        case OSSL_FUNC_CORE_POP_ERROR_TO_MARK:
            prov->pop_error_to_mark = OSSL_FUNC_core_pop_error_to_mark(in);
            break;
        default:
            break;
        }
    }
}

/* openssl.cnf's provider section first, then the environment. */
static char *setting(const char *from_config, const char *env)
{
    const char *v = from_config != NULL ? from_config : getenv(env);

    return v != NULL && v[0] != '\0' ? strdup(v) : NULL;
}

static void read_config(struct kpsa_prov *prov,
                        OSSL_FUNC_core_get_params_fn *get_params_fn)
{
    const char *module = NULL, *uri = NULL, *pin = NULL;
    OSSL_PARAM request[] = {
        OSSL_PARAM_utf8_ptr("kpsa-pkcs11-module", (char **)&module, 0),
        OSSL_PARAM_utf8_ptr("kpsa-token", (char **)&uri, 0),
        OSSL_PARAM_utf8_ptr("kpsa-pin-source", (char **)&pin, 0),
        OSSL_PARAM_END,
    };

    if (get_params_fn != NULL)
        get_params_fn(prov->core, request);
    prov->module = setting(module, "KPSA_MODULE");
    prov->uri = setting(uri, "KPSA_TOKEN");
    prov->pin_source = setting(pin, "KPSA_PIN_SOURCE");
}

__attribute__((visibility("default"))) int
OSSL_provider_init(const OSSL_CORE_HANDLE *core, const OSSL_DISPATCH *in,
                   const OSSL_DISPATCH **out, void **provctx)
{
    OSSL_FUNC_core_get_params_fn *get_params_fn = NULL;
    struct kpsa_prov *prov = calloc(1, sizeof(*prov));

    if (prov == NULL)
        return 0;
    prov->core = core;
    take_core_functions(prov, in, &get_params_fn);
    /* Inner algorithms are fetched here with provider=default: never from
     * the application's context, whose preference would pick kpsa again. */
    prov->libctx = OSSL_LIB_CTX_new_child(core, in);
    if (prov->libctx == NULL || pthread_mutex_init(&prov->lock, NULL) != 0 ||
        pthread_mutex_init(&prov->fetch_lock, NULL) != 0 ||
        pthread_cond_init(&prov->idle, NULL) != 0 ||
        pthread_cond_init(&prov->reread, NULL) != 0) {
        OSSL_LIB_CTX_free(prov->libctx);
        free(prov);
        return 0;
    }
    read_config(prov, get_params_fn);
    pthread_once(&exit_once, watch_exit);
    *out = provider_functions;
    *provctx = prov;
    return 1;
}

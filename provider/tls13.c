/*
 * TLS13-KDF, as a guard. kpsa does not run the TLS 1.3 key schedule on the
 * token yet, and libssl hands the external PSK to TLS13-KDF as the key of
 * the early-secret extract (RFC 8446 7.1). Routed through the default
 * provider, a handle there would be used as key bytes: a handshake that
 * can only fail, and a handle treated as a secret. So a key that looks
 * like a handle is refused with an error that says to use TLS 1.2; every
 * other call goes to the default provider's TLS13-KDF unchanged.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "handle.h"
#include "prov.h"

struct tls13_ctx {
    struct kpsa_prov *prov;
    EVP_KDF_CTX *inner;
    int key_is_handle;
};

static void *tls13_new(void *provctx)
{
    struct tls13_ctx *ctx = calloc(1, sizeof(*ctx));
    EVP_KDF *kdf = NULL;

    if (ctx == NULL)
        return NULL;
    ctx->prov = provctx;
    kdf = EVP_KDF_fetch(ctx->prov->libctx, "TLS13-KDF", "provider=default");
    if (kdf != NULL)
        ctx->inner = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    if (ctx->inner == NULL) {
        prov_error(ctx->prov, KPSA_R_INTERNAL,
                   "cannot fetch the default provider's TLS13-KDF");
        free(ctx);
        return NULL;
    }
    return ctx;
}

static void tls13_free(void *vctx)
{
    struct tls13_ctx *ctx = vctx;

    if (ctx == NULL)
        return;
    EVP_KDF_CTX_free(ctx->inner);
    free(ctx);
}

static void *tls13_dup(void *vctx)
{
    const struct tls13_ctx *src = vctx;
    struct tls13_ctx *dst = calloc(1, sizeof(*dst));

    if (dst == NULL)
        return NULL;
    *dst = *src;
    dst->inner = EVP_KDF_CTX_dup(src->inner);
    if (dst->inner == NULL) {
        free(dst);
        return NULL;
    }
    return dst;
}

static void tls13_reset(void *vctx)
{
    struct tls13_ctx *ctx = vctx;

    ctx->key_is_handle = 0;
    EVP_KDF_CTX_reset(ctx->inner);
}

static int tls13_set_params(void *vctx, const OSSL_PARAM params[])
{
    struct tls13_ctx *ctx = vctx;
    const OSSL_PARAM *p;

    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_KDF_PARAM_KEY);
    if (p != NULL)
        ctx->key_is_handle =
            p->data_type == OSSL_PARAM_OCTET_STRING &&
            handle_looks_like(p->data, p->data != NULL ? p->data_size : 0);
    return EVP_KDF_CTX_set_params(ctx->inner, params);
}

static int tls13_derive(void *vctx, unsigned char *out, size_t out_len,
                        const OSSL_PARAM params[])
{
    struct tls13_ctx *ctx = vctx;

    if (!tls13_set_params(ctx, params))
        return 0;
    if (ctx->key_is_handle) {
        prov_error(ctx->prov, KPSA_R_UNSUPPORTED,
                   "a kpsa handle was offered as a TLS 1.3 PSK; kpsa serves "
                   "TLS 1.2 and DTLS 1.2 only, so limit the program to them "
                   "(for openssl s_client and s_server: -tls1_2 or -dtls1_2)");
        return 0;
    }
    return EVP_KDF_derive(ctx->inner, out, out_len, NULL);
}

static const OSSL_PARAM *tls13_settable(void *vctx, void *provctx)
{
    static const OSSL_PARAM table[] = {
        OSSL_PARAM_utf8_string(OSSL_KDF_PARAM_MODE, NULL, 0),
        OSSL_PARAM_int(OSSL_KDF_PARAM_MODE, NULL),
        OSSL_PARAM_utf8_string(OSSL_KDF_PARAM_PROPERTIES, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_KDF_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_KDF_PARAM_KEY, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_KDF_PARAM_SALT, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_KDF_PARAM_PREFIX, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_KDF_PARAM_LABEL, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_KDF_PARAM_DATA, NULL, 0),
        OSSL_PARAM_END,
    };

    (void)vctx;
    (void)provctx;
    return table;
}

static const OSSL_PARAM *tls13_gettable(void *vctx, void *provctx)
{
    static const OSSL_PARAM table[] = {
        OSSL_PARAM_size_t(OSSL_KDF_PARAM_SIZE, NULL),
        OSSL_PARAM_END,
    };

    (void)vctx;
    (void)provctx;
    return table;
}

static int tls13_get_params(void *vctx, OSSL_PARAM params[])
{
    struct tls13_ctx *ctx = vctx;

    return EVP_KDF_CTX_get_params(ctx->inner, params);
}

const OSSL_DISPATCH kpsa_tls13_kdf_functions[] = {
    {OSSL_FUNC_KDF_NEWCTX, (void (*)(void))tls13_new},
    {OSSL_FUNC_KDF_DUPCTX, (void (*)(void))tls13_dup},
    {OSSL_FUNC_KDF_FREECTX, (void (*)(void))tls13_free},
    {OSSL_FUNC_KDF_RESET, (void (*)(void))tls13_reset},
    {OSSL_FUNC_KDF_DERIVE, (void (*)(void))tls13_derive},
    {OSSL_FUNC_KDF_SETTABLE_CTX_PARAMS, (void (*)(void))tls13_settable},
    {OSSL_FUNC_KDF_SET_CTX_PARAMS, (void (*)(void))tls13_set_params},
    {OSSL_FUNC_KDF_GETTABLE_CTX_PARAMS, (void (*)(void))tls13_gettable},
    {OSSL_FUNC_KDF_GET_CTX_PARAMS, (void (*)(void))tls13_get_params},
    {0, NULL},
};

#include "unknown.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

int unknown_handle_refused(OSSL_LIB_CTX *libctx, const unsigned char *handle,
                           size_t len)
{
    unsigned char pms[4 + 2 * 64] = {0}, seed[16] = {0}, out[48];
    EVP_KDF *kdf = len <= 64 ? EVP_KDF_fetch(libctx, "TLS1-PRF", NULL) : NULL;
    EVP_KDF_CTX *kctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, pms,
                                          4 + 2 * len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed,
                                          sizeof(seed)),
        OSSL_PARAM_construct_end(),
    };
    int refused;

    if (kctx != NULL) {
        pms[1] = pms[3 + len] = (unsigned char)len;
        memcpy(pms + 4 + len, handle, len);
        pms[3 + 2 * len] = pms[3 + 2 * len] == '0' ? '1' : '0';
    }
    refused =
        kctx != NULL && EVP_KDF_derive(kctx, out, sizeof(out), params) <= 0;
    ERR_clear_error();
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return refused;
}

/*
 * OpenSSL 3.0.19, default provider, no kpsa involved: TLS13-KDF drops the
 * context (the data parameter) at every set_params call that does not give
 * it again, whatever the call sets. kpsa's TLS13-KDF keeps it, so the two
 * differ after such a call (fuzz/findings/kdf/tls13-data-kept-across-sets).
 *
 *     cc openssl_tls13_kdf_data_dropped.c -lcrypto && ./a.out
 */
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

static EVP_KDF_CTX *context_with_data(EVP_KDF *kdf)
{
    static unsigned char key[32], data[32] = {1};
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, "EXPAND_ONLY", 0),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, key, 32),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX, "tls13 ", 6),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL, "res master",
                                          10),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_DATA, data, 32),
        OSSL_PARAM_construct_end(),
    };

    EVP_KDF_CTX_set_params(ctx, params);
    return ctx;
}

int main(void)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "TLS13-KDF", "provider=default");
    EVP_KDF_CTX *once = context_with_data(kdf), *again = context_with_data(kdf);
    OSSL_PARAM mode[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, "EXPAND_ONLY", 0),
        OSSL_PARAM_construct_end(),
    };
    unsigned char a[32], b[32];

    EVP_KDF_derive(once, a, sizeof(a), NULL);
    EVP_KDF_CTX_set_params(again, mode); /* the mode again, nothing else */
    EVP_KDF_derive(again, b, sizeof(b), NULL);
    printf("after a set without the data: %s\n",
           memcmp(a, b, sizeof(a)) != 0 ? "different bytes (data dropped)"
                                        : "the same bytes");
    EVP_KDF_CTX_free(once);
    EVP_KDF_CTX_free(again);
    EVP_KDF_free(kdf);
    return 0;
}

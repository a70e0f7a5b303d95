/*
 * OpenSSL 3.0.19, default provider, no kpsa involved: TLS13-KDF's
 * set_ctx_params frees the label, then refuses a label of the wrong type
 * and leaves the old length, so the next expand copies from NULL.
 *
 *     cc tls13_kdf_stale_label.c -lcrypto && ./a.out    # SIGSEGV
 *
 * Prefix and data behave the same. Found by fuzz/fuzz_kdf.c through kpsa's
 * TLS13-KDF, which hands the parameters on unchanged; the target no longer
 * sends these three with a wrong type.
 */
#include <stdio.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

int main(void)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "TLS13-KDF", "provider=default");
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
    unsigned char key[32] = {0}, out[32];
    OSSL_PARAM first[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, "EXPAND_ONLY", 0),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, key, 32),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX, "tls13 ", 6),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL, "exp master",
                                          10),
        OSSL_PARAM_construct_end(),
    };
    /* The label again, as a UTF-8 string: refused after the old is freed. */
    OSSL_PARAM second[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_LABEL, "", 0),
        OSSL_PARAM_construct_end(),
    };

    printf("set: %d\n", EVP_KDF_CTX_set_params(ctx, first));
    printf("set wrong type: %d\n", EVP_KDF_CTX_set_params(ctx, second));
    fflush(stdout);
    printf("derive: %d\n", EVP_KDF_derive(ctx, out, sizeof(out), NULL));
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return 0;
}

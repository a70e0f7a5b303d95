/*
 * kdf/prf-repeated-secret-first-wins and kdf/prf-secret-kept-after-refused-set
 * without the fuzz harness. Prints the default provider's TLS1-PRF of a
 * plain PSK premaster whose psk is a kpsa handle, the handle's bytes taken
 * as the key, then kpsa's output after each sequence. Before 94f5316 kpsa
 * printed the same bytes twice; now it refuses the first sequence and
 * computes the second from the plain secret it was last given.
 *
 *     cc prf_handle_as_key.c -lcrypto && ./a.out $PWD/build/provider/kpsa.so
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#define HANDLE "kpsa1.0123456789abcdef0123456789"

static OSSL_LIB_CTX *libctx;
static unsigned char premaster[2 + 32 + 2 + 32], plain[48];

static OSSL_PARAM octets(const char *name, unsigned char *p, size_t len)
{
    return OSSL_PARAM_construct_octet_string(name, p, len);
}

static OSSL_PARAM text(const char *name, const char *s)
{
    return OSSL_PARAM_construct_utf8_string(name, (char *)s, 0);
}

static void show(const char *what, int ok, const unsigned char out[32])
{
    printf("%-34s", what);
    if (!ok) {
        printf("refused\n");
        return;
    }
    for (int i = 0; i < 32; i++)
        printf("%02x", out[i]);
    printf("\n");
}

static EVP_KDF_CTX *prf(const char *props)
{
    EVP_KDF *kdf = EVP_KDF_fetch(libctx, "TLS1-PRF", props);
    EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;

    EVP_KDF_free(kdf);
    if (ctx == NULL) {
        ERR_print_errors_fp(stderr);
        exit(1);
    }
    return ctx;
}

int main(int argc, char **argv)
{
    unsigned char out[32];
    char seed[] = "master secret";
    EVP_KDF_CTX *ctx;
    int ok;

    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH/kpsa.so\n", argv[0]);
        return 2;
    }
    unsetenv("KPSA_MODULE"); /* no token: kpsa can only refuse */
    libctx = OSSL_LIB_CTX_new();
    if (OSSL_PROVIDER_load(libctx, "default") == NULL ||
        OSSL_PROVIDER_load(libctx, argv[1]) == NULL) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    /* RFC 4279 2: a plain PSK premaster, the handle as the psk. */
    premaster[1] = 32;
    premaster[35] = 32;
    memcpy(premaster + 36, HANDLE, 32);
    memset(plain, 0x11, sizeof(plain));

    ctx = prf("provider=default");
    ok = EVP_KDF_derive(
        ctx, out, sizeof(out),
        (OSSL_PARAM[]){
            text(OSSL_KDF_PARAM_DIGEST, "SHA256"),
            octets(OSSL_KDF_PARAM_SECRET, premaster, sizeof(premaster)),
            octets(OSSL_KDF_PARAM_SEED, (unsigned char *)seed, strlen(seed)),
            OSSL_PARAM_construct_end(),
        });
    show("default, handle as key bytes:", ok, out);
    EVP_KDF_CTX_free(ctx);

    ctx = prf("provider=kpsa");
    ok = EVP_KDF_derive(
        ctx, out, sizeof(out),
        (OSSL_PARAM[]){
            text(OSSL_KDF_PARAM_DIGEST, "SHA256"),
            octets(OSSL_KDF_PARAM_SECRET, premaster, sizeof(premaster)),
            octets(OSSL_KDF_PARAM_SECRET, plain, sizeof(plain)),
            octets(OSSL_KDF_PARAM_SEED, (unsigned char *)seed, strlen(seed)),
            OSSL_PARAM_construct_end(),
        });
    show("kpsa, secret given twice:", ok, out);
    EVP_KDF_CTX_free(ctx);

    ctx = prf("provider=kpsa");
    EVP_KDF_CTX_set_params(
        ctx,
        (OSSL_PARAM[]){
            text(OSSL_KDF_PARAM_DIGEST, "SHA256"),
            octets(OSSL_KDF_PARAM_SECRET, premaster, sizeof(premaster)),
            octets(OSSL_KDF_PARAM_SEED, (unsigned char *)seed, strlen(seed)),
            OSSL_PARAM_construct_end(),
        });
    /* refused by the inner PRF at the digest, before it reaches the secret */
    EVP_KDF_CTX_set_params(
        ctx, (OSSL_PARAM[]){
                 text(OSSL_KDF_PARAM_DIGEST, "NOPE"),
                 octets(OSSL_KDF_PARAM_SECRET, plain, sizeof(plain)),
                 OSSL_PARAM_construct_end(),
             });
    EVP_KDF_CTX_set_params(ctx, (OSSL_PARAM[]){
                                    text(OSSL_KDF_PARAM_DIGEST, "SHA256"),
                                    OSSL_PARAM_construct_end(),
                                });
    ok = EVP_KDF_derive(ctx, out, sizeof(out), NULL);
    show("kpsa, after a refused set:", ok, out);
    EVP_KDF_CTX_free(ctx);
    ERR_clear_error();
    return 0;
}

#include "kat.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

/* Only for the names of the members; every value is computed here. */
#include "schedule.h"

/* ---- TAP ---- */

static int tap_n, tap_failed;

static void tap_line(int cond, const char *fmt, va_list ap)
{
    printf("%sok %d - ", cond ? "" : "not ", ++tap_n);
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
}

int tap_check(int cond, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    tap_line(cond, fmt, ap);
    va_end(ap);
    if (!cond)
        tap_failed++;
    return cond;
}

void tap_diag(const char *fmt, ...)
{
    va_list ap;

    fputs("# ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

void tap_diag_hex(const char *what, const unsigned char *p, size_t n)
{
    fputs("#   ", stdout);
    fputs(what, stdout);
    fputs(": ", stdout);
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    putchar('\n');
}

int tap_finish(void)
{
    printf("1..%d\n", tap_n);
    if (tap_failed > 0)
        tap_diag("%d of %d checks failed", tap_failed, tap_n);
    return tap_failed > 0 ? 1 : 0;
}

/* ---- small helpers ---- */

unsigned kat_member_hash(int member)
{
    switch (member) {
    case MEMBER_KPSA:
        return 0;
    case MEMBER_KPSA_SHA256:
    case MEMBER_TLS12_PMS_SHA256:
        return 256;
    case MEMBER_TLS12_PMS_SHA384:
        return 384;
    default:
        return member >= MEMBER_TLS13_SHA384_EARLY ? 384 : 256;
    }
}

size_t kat_hash_len(unsigned hash)
{
    return hash == 384 ? 48 : 32;
}

size_t kat_block_len(unsigned hash)
{
    return hash == 384 ? 128 : 64;
}

static const char *digest_name(unsigned hash)
{
    return hash == 384 ? "SHA2-384" : "SHA2-256";
}

/* Bytes that are never zero, so that a zero-padding mistake shows. */
void kat_fill(unsigned char *buf, size_t len, unsigned seed)
{
    unsigned x = seed * 2654435761u + 0x9e3779b9u;

    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)((x >> 16) | 1u);
    }
}

int kat_digest(unsigned hash, const unsigned char *msg, size_t len,
               unsigned char *out)
{
    size_t out_len = 0;

    return EVP_Q_digest(NULL, digest_name(hash), NULL, msg, len, out,
                        &out_len) == 1 &&
                   out_len == kat_hash_len(hash)
               ? 0
               : -1;
}

int kat_hmac(unsigned hash, const unsigned char *key, size_t key_len,
             const unsigned char *msg, size_t len, unsigned char *out)
{
    size_t out_len = 0;

    return EVP_Q_mac(NULL, "HMAC", NULL, digest_name(hash), NULL, key, key_len,
                     msg, len, out, KAT_HASH_MAX, &out_len) != NULL &&
                   out_len == kat_hash_len(hash)
               ? 0
               : -1;
}

size_t kat_premaster(const unsigned char *kpsa, size_t len,
                     unsigned char out[KAT_SECRET_MAX])
{
    size_t n = 0;

    out[n++] = (unsigned char)(len >> 8);
    out[n++] = (unsigned char)(len & 0xff);
    memset(out + n, 0, len);
    n += len;
    out[n++] = (unsigned char)(len >> 8);
    out[n++] = (unsigned char)(len & 0xff);
    memcpy(out + n, kpsa, len);
    return n + len;
}

/* ---- TLS 1.3 with OpenSSL's TLS13-KDF ---- */

struct kdf_args {
    int mode;
    const unsigned char *key, *salt, *data;
    size_t key_len, salt_len, data_len;
    const char *label;
};

static int tls13_kdf(unsigned hash, const struct kdf_args *a,
                     unsigned char *out)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "TLS13-KDF", NULL);
    EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM p[8], *q = p;
    int mode = a->mode, ret = -1;

    *q++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    *q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                            (char *)digest_name(hash), 0);
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX,
                                             (void *)"tls13 ", 6);
    if (a->key != NULL)
        *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                                 (void *)a->key, a->key_len);
    if (a->salt != NULL)
        *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                 (void *)a->salt, a->salt_len);
    if (a->label != NULL)
        *q++ = OSSL_PARAM_construct_octet_string(
            OSSL_KDF_PARAM_LABEL, (void *)a->label, strlen(a->label));
    if (a->data != NULL)
        *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_DATA,
                                                 (void *)a->data, a->data_len);
    *q = OSSL_PARAM_construct_end();
    if (ctx != NULL && EVP_KDF_derive(ctx, out, kat_hash_len(hash), p) == 1)
        ret = 0;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return ret;
}

/* HKDF-Extract(0, Kpsa): libssl's only use of the PSK itself. */
static int early_secret(unsigned hash, const unsigned char *kpsa, size_t len,
                        unsigned char *out)
{
    struct kdf_args a = {
        .mode = EVP_KDF_HKDF_MODE_EXTRACT_ONLY, .key = kpsa, .key_len = len};

    return tls13_kdf(hash, &a, out);
}

/* With a salt and no key, OpenSSL runs Derive-Secret(salt, "derived", "")
 * itself and extracts from a zero input: psk_ke has no (EC)DHE. */
static int next_extract(unsigned hash, const unsigned char *prev,
                        unsigned char *out)
{
    struct kdf_args a = {.mode = EVP_KDF_HKDF_MODE_EXTRACT_ONLY,
                         .salt = prev,
                         .salt_len = kat_hash_len(hash),
                         .label = "derived"};

    return tls13_kdf(hash, &a, out);
}

/* HKDF-Expand-Label(secret, label, context, Hash.length). */
static int expand(unsigned hash, const unsigned char *secret, const char *label,
                  const unsigned char *ctx, size_t ctx_len, unsigned char *out)
{
    struct kdf_args a = {.mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY,
                         .key = secret,
                         .key_len = kat_hash_len(hash),
                         .label = label,
                         .data = ctx,
                         .data_len = ctx_len};

    return tls13_kdf(hash, &a, out);
}

/* Derive-Secret(secret, label, "") is an expansion over Hash(""). */
static int derive_empty(unsigned hash, const unsigned char *secret,
                        const char *label, unsigned char *out)
{
    unsigned char empty[KAT_HASH_MAX];

    if (kat_digest(hash, (const unsigned char *)"", 0, empty) != 0)
        return -1;
    return expand(hash, secret, label, empty, kat_hash_len(hash), out);
}

enum tls13_step { STEP_EARLY, STEP_BINDER, STEP_DERIVED, STEP_HS, STEP_MS };

static int tls13_secret(unsigned hash, enum tls13_step step,
                        const unsigned char *kpsa, size_t len,
                        unsigned char *out)
{
    unsigned char early[KAT_HASH_MAX], mid[KAT_HASH_MAX];

    if (early_secret(hash, kpsa, len, early) != 0)
        return -1;
    switch (step) {
    case STEP_EARLY:
        memcpy(out, early, kat_hash_len(hash));
        return 0;
    case STEP_BINDER: /* RFC 8446 4.2.11.2: the external binder's key */
        return derive_empty(hash, early, "ext binder", mid) ||
                       expand(hash, mid, "finished", NULL, 0, out)
                   ? -1
                   : 0;
    case STEP_DERIVED:
        return derive_empty(hash, early, "derived", out);
    case STEP_HS:
        return next_extract(hash, early, out);
    case STEP_MS:
        return next_extract(hash, early, mid) || next_extract(hash, mid, out)
                   ? -1
                   : 0;
    }
    return -1;
}

int kat_member_secret(int member, const unsigned char *kpsa, size_t len,
                      unsigned char out[KAT_SECRET_MAX], size_t *out_len)
{
    unsigned hash = kat_member_hash(member);

    if (len > 64 || member < 0 || member >= MEMBER_COUNT)
        return -1;
    switch (member) {
    case MEMBER_KPSA:
    case MEMBER_KPSA_SHA256:
        memcpy(out, kpsa, len);
        *out_len = len;
        return 0;
    case MEMBER_TLS12_PMS_SHA256:
    case MEMBER_TLS12_PMS_SHA384:
        *out_len = kat_premaster(kpsa, len, out);
        return 0;
    default:
        *out_len = kat_hash_len(hash);
        member -=
            hash == 384 ? MEMBER_TLS13_SHA384_EARLY : MEMBER_TLS13_SHA256_EARLY;
        return tls13_secret(hash, (enum tls13_step)member, kpsa, len, out);
    }
}

/* ---- TLS 1.2 ---- */

int kat_tls1_prf(unsigned hash, const unsigned char *secret, size_t len,
                 const unsigned char *seed, size_t seed_len, unsigned char *out,
                 size_t out_len)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "TLS1-PRF", NULL);
    EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM p[4];
    int ret = -1;

    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                            (char *)digest_name(hash), 0);
    p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET,
                                             (void *)secret, len);
    p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, (void *)seed,
                                             seed_len);
    p[3] = OSSL_PARAM_construct_end();
    if (ctx != NULL && EVP_KDF_derive(ctx, out, out_len, p) == 1)
        ret = 0;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return ret;
}

int kat_soft_mac(void *arg, const unsigned char *msg, size_t len,
                 unsigned char *out)
{
    const struct kat_soft_key *k = arg;

    return kat_hmac(k->hash, k->key, k->len, msg, len, out);
}

/* A(0) = seed, A(i) = HMAC(A(i-1)); output HMAC(A(1) || seed) || ... */
int kat_p_hash(unsigned hash, kat_mac_fn *mac, void *arg,
               const unsigned char *seed, size_t seed_len, unsigned char *out,
               size_t out_len)
{
    unsigned char buf[KAT_HASH_MAX + 256], block[KAT_HASH_MAX];
    unsigned char next[KAT_HASH_MAX];
    size_t hl = kat_hash_len(hash), done = 0;

    if (seed_len > 256 || mac(arg, seed, seed_len, buf) != 0)
        return -1;
    memcpy(buf + hl, seed, seed_len);
    while (done < out_len) {
        size_t take = out_len - done < hl ? out_len - done : hl;

        if (mac(arg, buf, hl + seed_len, block) != 0 ||
            mac(arg, buf, hl, next) != 0)
            return -1;
        memcpy(buf, next, hl);
        memcpy(out + done, block, take);
        done += take;
    }
    return 0;
}

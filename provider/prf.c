/*
 * TLS1-PRF. libssl calls it once per handshake with the premaster as
 * secret (RFC 4279 2, RFC 5246 8.1) and three more times with the master
 * secret. A premaster whose PSK is a kpsa handle is computed with HMACs on
 * the token; every other call goes to the default provider's TLS1-PRF.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "handle.h"
#include "prov.h"

#define HASH_MAX 48

struct prf_ctx {
    struct kpsa_prov *prov;
    EVP_KDF_CTX *inner;
    unsigned char *secret;
    size_t secret_len;
    unsigned char *seed;
    size_t seed_len;
    char digest[64];
};

/* What the premaster says, RFC 4279 2: u16 N, other, u16 M, psk. */
struct premaster {
    const unsigned char *other;
    size_t other_len;
    const unsigned char *psk;
    size_t psk_len;
};

static int parse_premaster(const unsigned char *s, size_t len,
                           struct premaster *pm)
{
    size_t n, m;

    if (len < 4)
        return -1;
    n = (size_t)s[0] << 8 | s[1];
    if (2 + n + 2 > len)
        return -1;
    m = (size_t)s[2 + n] << 8 | s[3 + n];
    if (4 + n + m != len)
        return -1;
    pm->other = s + 2;
    pm->other_len = n;
    pm->psk = s + 4 + n;
    pm->psk_len = m;
    return 0;
}

/* Made for the first call that passes through: a call on a handle never
 * needs one. */
static EVP_KDF_CTX *inner_ctx(struct prf_ctx *ctx)
{
    EVP_KDF *kdf;

    if (ctx->inner != NULL)
        return ctx->inner;
    kdf = prov_fetched(ctx->prov, ALG_TLS1_PRF);
    if (kdf != NULL && (ctx->inner = EVP_KDF_CTX_new(kdf)) == NULL)
        prov_error(ctx->prov, KPSA_R_INTERNAL, "out of memory");
    return ctx->inner;
}

static void *prf_new(void *provctx)
{
    struct prf_ctx *ctx = calloc(1, sizeof(*ctx));

    if (ctx != NULL)
        ctx->prov = provctx;
    return ctx;
}

static void clear_fields(struct prf_ctx *ctx)
{
    OPENSSL_clear_free(ctx->secret, ctx->secret_len);
    OPENSSL_clear_free(ctx->seed, ctx->seed_len);
    ctx->secret = ctx->seed = NULL;
    ctx->secret_len = ctx->seed_len = 0;
    ctx->digest[0] = '\0';
}

static void prf_free(void *vctx)
{
    struct prf_ctx *ctx = vctx;

    if (ctx == NULL)
        return;
    clear_fields(ctx);
    EVP_KDF_CTX_free(ctx->inner);
    free(ctx);
}

static void prf_reset(void *vctx)
{
    struct prf_ctx *ctx = vctx;

    clear_fields(ctx);
}

static void *prf_dup(void *vctx)
{
    const struct prf_ctx *src = vctx;
    struct prf_ctx *dst = prf_new(src->prov);

    if (dst == NULL)
        return NULL;
    memcpy(dst->digest, src->digest, sizeof(dst->digest));
    /* The inner context holds nothing between calls: dst makes its own
     * when it needs one. */
    if ((src->secret != NULL && (dst->secret = OPENSSL_memdup(
                                     src->secret, src->secret_len)) == NULL) ||
        (src->seed != NULL &&
         (dst->seed = OPENSSL_memdup(src->seed, src->seed_len)) == NULL)) {
        prf_free(dst);
        return NULL;
    }
    dst->secret_len = src->secret_len;
    dst->seed_len = src->seed_len;
    return dst;
}

static int keep_secret(struct prf_ctx *ctx, const OSSL_PARAM *p)
{
    OPENSSL_clear_free(ctx->secret, ctx->secret_len);
    ctx->secret = NULL;
    ctx->secret_len = 0;
    return OSSL_PARAM_get_octet_string(p, (void **)&ctx->secret, 0,
                                       &ctx->secret_len);
}

/* Repeated seed parameters concatenate, as in the default TLS1-PRF. */
static int append_seed(struct prf_ctx *ctx, const OSSL_PARAM *p)
{
    unsigned char *grown;

    if (p->data_type != OSSL_PARAM_OCTET_STRING)
        return 0;
    if (p->data_size == 0)
        return 1;
    grown = OPENSSL_malloc(ctx->seed_len + p->data_size);
    if (grown == NULL)
        return 0;
    if (ctx->seed_len > 0)
        memcpy(grown, ctx->seed, ctx->seed_len);
    memcpy(grown + ctx->seed_len, p->data, p->data_size);
    OPENSSL_clear_free(ctx->seed, ctx->seed_len);
    ctx->seed = grown;
    ctx->seed_len += p->data_size;
    return 1;
}

/*
 * kpsa's copy of the parameters is the only one: a call without a handle is
 * replayed into the inner context at derive (see prf_replay), so that the
 * default PRF computes with exactly what kpsa judged plain. Of a secret or
 * digest given twice in one call the first counts, and seeds concatenate,
 * as in OpenSSL's TLS1-PRF.
 */
static int prf_set_params(void *vctx, const OSSL_PARAM params[])
{
    struct prf_ctx *ctx = vctx;
    int secret = 0, digest = 0, ok = 1;

    for (const OSSL_PARAM *p = params; p != NULL && ok && p->key != NULL; p++) {
        if (strcmp(p->key, OSSL_KDF_PARAM_SECRET) == 0 && !secret++)
            ok = keep_secret(ctx, p);
        else if (strcmp(p->key, OSSL_KDF_PARAM_SEED) == 0)
            ok = append_seed(ctx, p);
        else if (strcmp(p->key, OSSL_KDF_PARAM_DIGEST) == 0 && !digest++)
            ok = prov_take_name(p, ctx->digest, sizeof(ctx->digest));
    }
    return ok;
}

/* The call as kpsa sees it, with secret in place of the one given. */
static int prf_replay(struct prf_ctx *ctx, const unsigned char *secret,
                      size_t secret_len, unsigned char *out, size_t out_len)
{
    OSSL_PARAM params[5], *p = params;

    if (inner_ctx(ctx) == NULL)
        return 0;
    if (ctx->digest[0] != '\0')
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                                ctx->digest, 0);
    if (secret != NULL)
        *p++ = OSSL_PARAM_construct_octet_string(
            OSSL_KDF_PARAM_SECRET, (unsigned char *)secret, secret_len);
    if (ctx->seed != NULL)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, ctx->seed,
                                                 ctx->seed_len);
    *p = OSSL_PARAM_construct_end();
    EVP_KDF_CTX_reset(ctx->inner);
    return EVP_KDF_derive(ctx->inner, out, out_len, params);
}

/* The PRF hash: SHA-256 or SHA-384 in TLS 1.2; TLS 1.0 and 1.1's MD5-SHA1
 * has no family member and is refused. */
static unsigned prf_hash(struct prf_ctx *ctx)
{
    return prov_hash(ctx->prov, ctx->digest);
}

/* RFC 5246 5: P_hash(secret, seed), each HMAC computed by the token with
 * the family's premaster object as the key. */
static int token_p_hash(struct kpsa_token *tok, unsigned hash,
                        CK_OBJECT_HANDLE key, const unsigned char *seed,
                        size_t seed_len, unsigned char *out, size_t out_len)
{
    CK_MECHANISM_TYPE mech = hash == 384 ? CKM_SHA384_HMAC : CKM_SHA256_HMAC;
    size_t hl = hash == 384 ? 48 : 32, done = 0, n;
    unsigned char *buf = OPENSSL_malloc(hl + seed_len), block[HASH_MAX];
    int ret = -1;

    if (buf == NULL)
        return -1;
    memcpy(buf + hl, seed, seed_len);
    /* A(1) = HMAC(secret, seed) */
    if (token_hmac(tok, mech, key, seed, seed_len, buf, hl) != 0)
        goto out;
    while (done < out_len) {
        if (token_hmac(tok, mech, key, buf, hl + seed_len, block, hl) != 0)
            goto out;
        n = out_len - done < hl ? out_len - done : hl;
        memcpy(out + done, block, n);
        done += n;
        /* A(i+1) = HMAC(secret, A(i)), needed only for more output */
        if (done < out_len && token_hmac(tok, mech, key, buf, hl, buf, hl) != 0)
            goto out;
    }
    ret = 0;
out:
    OPENSSL_cleanse(block, sizeof(block));
    OPENSSL_clear_free(buf, hl + seed_len);
    return ret;
}

static int all_zero(const unsigned char *p, size_t len)
{
    unsigned char acc = 0;

    for (size_t i = 0; i < len; i++)
        acc |= p[i];
    return acc == 0;
}

/*
 * (EC)DHE-PSK and RSA-PSK (RFC 4279 3 and 4, RFC 5489 2): the premaster is
 * u16 N, other, u16 len(Kpsa), Kpsa. When it is longer than a hash block,
 * HMAC keys with its hash (RFC 2104 2), which the token computes from the
 * per-connection prefix and the stored Kpsa; that hash depends on the
 * connection's secret, so it may leave the token and feed the default PRF.
 */
static int derive_mixed(struct prf_ctx *ctx, struct keystore_use *use,
                        unsigned hash, const struct premaster *pm,
                        unsigned char *out, size_t out_len)
{
    const struct family *fam = &use->fam;
    size_t block = hash == 384 ? 128 : 64, hl = hash == 384 ? 48 : 32;
    size_t total = 2 + pm->other_len + 2 + fam->key_len;
    unsigned char *prefix = NULL, key[HASH_MAX];
    int ret = -1;

    if (total <= block) {
        /* A longer key helps only if one within RFC 4279's 64 octets
         * would push the premaster past the block. */
        int longer = 4 + pm->other_len + 64 > block;

        prov_error(ctx->prov, KPSA_R_UNSUPPORTED,
                   "%s: a %zu-byte premaster ((EC)DHE-PSK or RSA-PSK) fits "
                   "in one SHA-%u block, so the token would have to join it "
                   "to Kpsa; use %s",
                   fam->kpsaid, total, hash,
                   longer ? "a longer key or a plain PSK suite"
                          : "a plain PSK suite or a SHA-256 one");
        return -1;
    }
    prefix = OPENSSL_malloc(4 + pm->other_len);
    if (prefix == NULL)
        return -1;
    prefix[0] = (unsigned char)(pm->other_len >> 8);
    prefix[1] = (unsigned char)pm->other_len;
    memcpy(prefix + 2, pm->other, pm->other_len);
    prefix[2 + pm->other_len] = (unsigned char)(fam->key_len >> 8);
    prefix[3 + pm->other_len] = (unsigned char)fam->key_len;
    prov_mark(ctx->prov);
    ret = token_digest_key(keystore_token(use),
                           hash == 384 ? CKM_SHA384 : CKM_SHA256, prefix,
                           4 + pm->other_len, keystore_object(use, MEMBER_KPSA),
                           key, hl) == 0
              ? 0
              : -2;
    prov_drop_foreign(ctx->prov);
    if (ret != 0)
        goto out;
    ret = prf_replay(ctx, key, hl, out, out_len) == 1 ? 0 : -1;
out:
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_clear_free(prefix, 4 + pm->other_len);
    return ret;
}

/* Returns 1 done, 0 failed (error raised). */
static int derive_with_handle(struct prf_ctx *ctx, const struct premaster *pm,
                              const char *id, unsigned char *out,
                              size_t out_len)
{
    unsigned hash = prf_hash(ctx);
    struct keystore_use use;
    int rc;

    if (hash == 0) {
        prov_error(ctx->prov, KPSA_R_UNSUPPORTED,
                   "handle kpsa1.%s with PRF digest %s: kpsa serves TLS 1.2, "
                   "DTLS 1.2 and TLS 1.3; TLS 1.0 and 1.1 have no key here",
                   id, ctx->digest[0] ? ctx->digest : "(none)");
        return 0;
    }
    if (keystore_acquire(ctx->prov, id, &use) != 0)
        return 0;
    if (pm->other_len == pm->psk_len && all_zero(pm->other, pm->other_len)) {
        prov_mark(ctx->prov);
        rc = token_p_hash(keystore_token(&use), hash,
                          keystore_object(&use, hash == 384
                                                    ? MEMBER_TLS12_PMS_SHA384
                                                    : MEMBER_TLS12_PMS_SHA256),
                          ctx->seed, ctx->seed_len, out, out_len) == 0
                 ? 0
                 : -2;
        prov_drop_foreign(ctx->prov);
    } else {
        rc = derive_mixed(ctx, &use, hash, pm, out, out_len);
    }
    keystore_release(ctx->prov, &use, rc == -2);
    if (rc != 0)
        OPENSSL_cleanse(out, out_len);
    return rc == 0;
}

static int prf_derive(void *vctx, unsigned char *out, size_t out_len,
                      const OSSL_PARAM params[])
{
    struct prf_ctx *ctx = vctx;
    struct premaster pm;
    char id[HANDLE_ID_LEN + 1];

    if (!prf_set_params(ctx, params))
        return 0;
    if (ctx->secret != NULL &&
        parse_premaster(ctx->secret, ctx->secret_len, &pm) == 0 &&
        handle_looks_like(pm.psk, pm.psk_len)) {
        if (handle_parse(pm.psk, pm.psk_len, id) == 0)
            return derive_with_handle(ctx, &pm, id, out, out_len);
        prov_error(ctx->prov, KPSA_R_HANDLE_UNRESOLVED,
                   "a PSK starts like a kpsa handle but is not one (%zu "
                   "bytes); refusing to use it as key bytes",
                   pm.psk_len);
        return 0;
    }
    return prf_replay(ctx, ctx->secret, ctx->secret_len, out, out_len);
}

static const OSSL_PARAM *prf_settable(void *vctx, void *provctx)
{
    static const OSSL_PARAM table[] = {
        OSSL_PARAM_utf8_string(OSSL_KDF_PARAM_PROPERTIES, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_KDF_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_KDF_PARAM_SECRET, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_KDF_PARAM_SEED, NULL, 0),
        OSSL_PARAM_END,
    };

    (void)vctx;
    (void)provctx;
    return table;
}

static const OSSL_PARAM *prf_gettable(void *vctx, void *provctx)
{
    static const OSSL_PARAM table[] = {
        OSSL_PARAM_size_t(OSSL_KDF_PARAM_SIZE, NULL),
        OSSL_PARAM_END,
    };

    (void)vctx;
    (void)provctx;
    return table;
}

static int prf_get_params(void *vctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p = OSSL_PARAM_locate(params, OSSL_KDF_PARAM_SIZE);

    (void)vctx;
    return p == NULL || OSSL_PARAM_set_size_t(p, SIZE_MAX);
}

const OSSL_DISPATCH kpsa_tls1_prf_functions[] = {
    {OSSL_FUNC_KDF_NEWCTX, (void (*)(void))prf_new},
    {OSSL_FUNC_KDF_DUPCTX, (void (*)(void))prf_dup},
    {OSSL_FUNC_KDF_FREECTX, (void (*)(void))prf_free},
    {OSSL_FUNC_KDF_RESET, (void (*)(void))prf_reset},
    {OSSL_FUNC_KDF_DERIVE, (void (*)(void))prf_derive},
    {OSSL_FUNC_KDF_SETTABLE_CTX_PARAMS, (void (*)(void))prf_settable},
    {OSSL_FUNC_KDF_SET_CTX_PARAMS, (void (*)(void))prf_set_params},
    {OSSL_FUNC_KDF_GETTABLE_CTX_PARAMS, (void (*)(void))prf_gettable},
    {OSSL_FUNC_KDF_GET_CTX_PARAMS, (void (*)(void))prf_get_params},
    {0, NULL},
};

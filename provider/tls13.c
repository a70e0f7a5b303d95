/*
 * TLS13-KDF. libssl runs every step of the TLS 1.3 key schedule (RFC 8446
 * 7.1) as one call: an extract whose salt is the previous secret, or an
 * expansion of a secret with a label and a transcript hash. When the
 * external PSK is a kpsa handle, each secret that depends on Kpsa alone
 * (the early secret, the binder keys, and in psk_ke mode the handshake and
 * master secrets) is handed back as a derived handle that names it; the
 * token holds its value (docs/key-format.md). A step that mixes in a
 * transcript hash or an (EC)DHE secret is one HMAC on the token, and its
 * result may leave. Any other step on a handle is refused. Calls without a
 * handle go to the default provider's TLS13-KDF unchanged.
 *
 * kpsa's copy of the parameters is the only one: a call without a handle
 * is replayed into a fresh inner context at derive, so that the default
 * KDF computes with exactly what kpsa judged plain. (Handing parameters on
 * as they came let the two disagree: a repeated key, of which OpenSSL keeps
 * the first, or a set refused half way, left a handle in the inner context
 * while kpsa saw plain bytes.) Of a parameter given twice in one call,
 * the first counts, as in OpenSSL's KDFs. A properties parameter is not
 * kept: the inner KDF takes its digest from the default provider, which is
 * all libssl asks.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "handle.h"
#include "prov.h"

#define HASH_MAX  48
#define LABEL_MAX 255

struct tls13_ctx {
    struct kpsa_prov *prov;
    EVP_KDF_CTX *inner; /* made at the first plain call; see replay */
    int mode;
    char digest[64];
    /* A copy of each octet parameter; have_* tells absent from empty. */
    unsigned char *key, *salt, *prefix, *label, *data;
    size_t key_len, salt_len, prefix_len, label_len, data_len;
    int have_key, have_salt;
};

/* What a key or salt parameter is. */
struct secret_ref {
    enum { REF_NONE, REF_PLAIN, REF_BASE, REF_DERIVED, REF_BAD } kind;
    enum handle_stage stage;
    char id[HANDLE_ID_LEN + 1];
};

static void clear_fields(struct tls13_ctx *ctx)
{
    OPENSSL_clear_free(ctx->key, ctx->key_len);
    OPENSSL_clear_free(ctx->salt, ctx->salt_len);
    OPENSSL_free(ctx->prefix);
    OPENSSL_free(ctx->label);
    OPENSSL_free(ctx->data);
    ctx->key = ctx->salt = ctx->prefix = ctx->label = ctx->data = NULL;
    ctx->key_len = ctx->salt_len = ctx->prefix_len = 0;
    ctx->label_len = ctx->data_len = 0;
    ctx->have_key = ctx->have_salt = 0;
    ctx->mode = EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND;
    ctx->digest[0] = '\0';
}

/* libssl makes a context for every step of the schedule (22 per
 * handshake and end); most are steps on a handle, which need no inner
 * context, so it is made at the first plain call. */
static void *tls13_new(void *provctx)
{
    struct tls13_ctx *ctx;

    if (prov_fetched(provctx, ALG_TLS13_KDF) == NULL)
        return NULL;
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return NULL;
    ctx->prov = provctx;
    ctx->mode = EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND;
    return ctx;
}

static void tls13_free(void *vctx)
{
    struct tls13_ctx *ctx = vctx;

    if (ctx == NULL)
        return;
    clear_fields(ctx);
    EVP_KDF_CTX_free(ctx->inner);
    free(ctx);
}

static int copy_field(unsigned char **dst, size_t *dst_len,
                      const unsigned char *src, size_t len)
{
    *dst = NULL;
    *dst_len = len;
    if (src == NULL)
        return 1;
    *dst = OPENSSL_memdup(src, len > 0 ? len : 1);
    return *dst != NULL;
}

static void *tls13_dup(void *vctx)
{
    const struct tls13_ctx *src = vctx;
    struct tls13_ctx *dst = calloc(1, sizeof(*dst));

    if (dst == NULL)
        return NULL;
    *dst = *src;
    /* Nothing shared with src, so that a failure frees only dst's. */
    dst->key = dst->salt = dst->prefix = dst->label = dst->data = NULL;
    dst->inner = NULL; /* stateless between calls: made when needed */
    if (!copy_field(&dst->key, &dst->key_len, src->key, src->key_len) ||
        !copy_field(&dst->salt, &dst->salt_len, src->salt, src->salt_len) ||
        !copy_field(&dst->prefix, &dst->prefix_len, src->prefix,
                    src->prefix_len) ||
        !copy_field(&dst->label, &dst->label_len, src->label, src->label_len) ||
        !copy_field(&dst->data, &dst->data_len, src->data, src->data_len)) {
        tls13_free(dst);
        return NULL;
    }
    return dst;
}

static void tls13_reset(void *vctx)
{
    struct tls13_ctx *ctx = vctx;

    clear_fields(ctx);
}

static int take_octets(const OSSL_PARAM *p, unsigned char **field, size_t *len)
{
    OPENSSL_clear_free(*field, *len);
    *field = NULL;
    *len = 0;
    if (p->data == NULL || p->data_size == 0) {
        *field = OPENSSL_zalloc(1);
        return *field != NULL;
    }
    return OSSL_PARAM_get_octet_string(p, (void **)field, 0, len);
}

/* The mode by name (the string need not end in a NUL within the
 * parameter) or by number; an unknown one is refused, as by OpenSSL. */
static int take_mode(struct tls13_ctx *ctx, const OSSL_PARAM *p)
{
    static const struct {
        const char *name;
        int mode;
    } modes[] = {
        {"EXTRACT_AND_EXPAND", EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND},
        {"EXTRACT_ONLY", EVP_KDF_HKDF_MODE_EXTRACT_ONLY},
        {"EXPAND_ONLY", EVP_KDF_HKDF_MODE_EXPAND_ONLY},
    };
    char name[24] = "";

    if (p->data_type != OSSL_PARAM_UTF8_STRING)
        return OSSL_PARAM_get_int(p, &ctx->mode);
    if (!prov_take_name(p, name, sizeof(name)))
        return 0;
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        if (OPENSSL_strcasecmp(name, modes[i].name) == 0) {
            ctx->mode = modes[i].mode;
            return 1;
        }
    return 0;
}

enum {
    SEEN_KEY = 1,
    SEEN_SALT = 2,
    SEEN_PREFIX = 4,
    SEEN_LABEL = 8,
    SEEN_DATA = 16,
    SEEN_MODE = 32,
    SEEN_DIGEST = 64,
};

/* The first of a name in this call; later ones are ignored. */
static int first(unsigned *seen, unsigned bit)
{
    int is_first = !(*seen & bit);

    *seen |= bit;
    return is_first;
}

static int take_param(struct tls13_ctx *ctx, const OSSL_PARAM *p,
                      unsigned *seen)
{
    if (strcmp(p->key, OSSL_KDF_PARAM_KEY) == 0 && first(seen, SEEN_KEY))
        return ctx->have_key = take_octets(p, &ctx->key, &ctx->key_len);
    if (strcmp(p->key, OSSL_KDF_PARAM_SALT) == 0 && first(seen, SEEN_SALT))
        return ctx->have_salt = take_octets(p, &ctx->salt, &ctx->salt_len);
    if (strcmp(p->key, OSSL_KDF_PARAM_PREFIX) == 0 && first(seen, SEEN_PREFIX))
        return take_octets(p, &ctx->prefix, &ctx->prefix_len);
    if (strcmp(p->key, OSSL_KDF_PARAM_LABEL) == 0 && first(seen, SEEN_LABEL))
        return take_octets(p, &ctx->label, &ctx->label_len);
    if (strcmp(p->key, OSSL_KDF_PARAM_DATA) == 0 && first(seen, SEEN_DATA))
        return take_octets(p, &ctx->data, &ctx->data_len);
    if (strcmp(p->key, OSSL_KDF_PARAM_MODE) == 0 && first(seen, SEEN_MODE))
        return take_mode(ctx, p);
    if (strcmp(p->key, OSSL_KDF_PARAM_DIGEST) == 0 && first(seen, SEEN_DIGEST))
        return prov_take_name(p, ctx->digest, sizeof(ctx->digest));
    return 1;
}

static int tls13_set_params(void *vctx, const OSSL_PARAM params[])
{
    struct tls13_ctx *ctx = vctx;
    unsigned seen = 0;
    int ok = 1;

    if (params == NULL)
        return 1;
    /* OpenSSL's TLS13-KDF drops its data at every set that names none. */
    OPENSSL_free(ctx->data);
    ctx->data = NULL;
    ctx->data_len = 0;
    for (const OSSL_PARAM *p = params; ok && p->key != NULL; p++)
        ok = take_param(ctx, p, &seen);
    return ok;
}

/* kpsa's view of the call, for the default KDF (at most 9 entries). */
static void replay(const struct tls13_ctx *ctx, OSSL_PARAM *p)
{
    *p++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, (int *)&ctx->mode);
    if (ctx->digest[0] != '\0')
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                                (char *)ctx->digest, 0);
    if (ctx->have_key)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, ctx->key,
                                                 ctx->key_len);
    if (ctx->have_salt)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, ctx->salt,
                                                 ctx->salt_len);
    if (ctx->prefix != NULL)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX,
                                                 ctx->prefix, ctx->prefix_len);
    if (ctx->label != NULL)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL,
                                                 ctx->label, ctx->label_len);
    if (ctx->data != NULL)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_DATA, ctx->data,
                                                 ctx->data_len);
    *p = OSSL_PARAM_construct_end();
}

static int derive_plain(struct tls13_ctx *ctx, unsigned char *out,
                        size_t out_len)
{
    OSSL_PARAM params[10];

    if (ctx->inner == NULL && (ctx->inner = EVP_KDF_CTX_new(prov_fetched(
                                   ctx->prov, ALG_TLS13_KDF))) == NULL)
        return 0;
    replay(ctx, params);
    EVP_KDF_CTX_reset(ctx->inner);
    return EVP_KDF_derive(ctx->inner, out, out_len, params);
}

static struct secret_ref classify(int present, const unsigned char *p,
                                  size_t len)
{
    struct secret_ref ref = {.kind = REF_NONE};

    if (!present)
        return ref;
    ref.kind = REF_PLAIN;
    if (!handle_looks_like_any(p, len))
        return ref;
    if (handle_parse(p, len, ref.id) == 0)
        ref.kind = REF_BASE;
    else if (handle_derived_parse(p, len, &ref.stage, ref.id) == 0)
        ref.kind = REF_DERIVED;
    else
        ref.kind = REF_BAD;
    return ref;
}

static int all_zero(const unsigned char *p, size_t len)
{
    unsigned char acc = 0;

    for (size_t i = 0; i < len; i++)
        acc |= p[i];
    return acc == 0;
}

/* The (EC)DHE input of an extract is absent in psk_ke (RFC 8446 7.1: a
 * string of Hash.length zeros). */
static int no_dhe(const struct tls13_ctx *ctx)
{
    return !ctx->have_key || all_zero(ctx->key, ctx->key_len);
}

static int label_is(const struct tls13_ctx *ctx, const char *want)
{
    return ctx->label_len == strlen(want) &&
           memcmp(ctx->label, want, ctx->label_len) == 0;
}

static int refuse(struct tls13_ctx *ctx, const char *why)
{
    prov_error(ctx->prov, KPSA_R_UNSUPPORTED,
               "TLS 1.3 with a kpsa handle: %s (label '%.*s')", why,
               (int)(ctx->label_len < 40 ? ctx->label_len : 40),
               ctx->label != NULL ? (const char *)ctx->label : "");
    return 0;
}

/* The family's member for a stage's secret under the hash. */
static int stage_member(unsigned hash, int offset)
{
    return (hash == 384 ? MEMBER_TLS13_SHA384_EARLY
                        : MEMBER_TLS13_SHA256_EARLY) +
           offset;
}

enum { OFF_EARLY, OFF_BINDER, OFF_DERIVED, OFF_HS_KE, OFF_MS_KE };

/* The family must hold the TLS 1.3 members of this hash. */
static int family_serves(struct kpsa_prov *prov, const char *id, unsigned hash)
{
    struct family fam;
    unsigned want = hash == 384 ? MEMBERS_TLS13_SHA384 : MEMBERS_TLS13_SHA256;
    int ok;

    if (keystore_find(prov, id, &fam) != 0)
        return 0;
    ok = (fam.members & want) == want;
    if (!ok)
        prov_error(prov, KPSA_R_UNSUPPORTED,
                   "%s: the family holds no TLS 1.3 SHA-%u members; "
                   "import the key with --tls13-sha%u",
                   fam.kpsaid, hash, hash);
    return ok;
}

static int emit(struct tls13_ctx *ctx, enum handle_stage stage, const char *id,
                unsigned hash, unsigned char *out, size_t out_len)
{
    if (!family_serves(ctx->prov, id, hash))
        return 0;
    return handle_derived(stage, id, out_len, out) == 0;
}

static int token_mac(struct tls13_ctx *ctx, const char *id, int member,
                     const unsigned char *msg, size_t len, unsigned char *out,
                     size_t out_len)
{
    return keystore_hmac(ctx->prov, id, member, msg, len, out, out_len);
}

/* RFC 8446 7.1 HKDF-Expand-Label for one hash length, RFC 5869 2.3:
 * T(1) = HMAC(secret, HkdfLabel || 0x01), the secret on the token. */
static int token_expand(struct tls13_ctx *ctx, const char *id, int member,
                        unsigned char *out, size_t out_len)
{
    unsigned char info[2 + 1 + LABEL_MAX + 1 + LABEL_MAX + 1];
    size_t n = 0, text = ctx->prefix_len + ctx->label_len;
    int ok;

    if (text > LABEL_MAX || ctx->data_len > LABEL_MAX)
        return refuse(ctx, "a label or context too long for HkdfLabel");
    info[n++] = (unsigned char)(out_len >> 8);
    info[n++] = (unsigned char)out_len;
    info[n++] = (unsigned char)text;
    if (ctx->prefix_len > 0)
        memcpy(info + n, ctx->prefix, ctx->prefix_len);
    n += ctx->prefix_len;
    if (ctx->label_len > 0)
        memcpy(info + n, ctx->label, ctx->label_len);
    n += ctx->label_len;
    info[n++] = (unsigned char)ctx->data_len;
    if (ctx->data_len > 0)
        memcpy(info + n, ctx->data, ctx->data_len);
    n += ctx->data_len;
    info[n++] = 0x01;
    ok = token_mac(ctx, id, member, info, n, out, out_len);
    OPENSSL_cleanse(info, sizeof(info));
    return ok;
}

static int is_empty_hash(const struct tls13_ctx *ctx, unsigned hash)
{
    unsigned char md[HASH_MAX];
    unsigned int md_len = 0;

    return ctx->data_len == (hash == 384 ? 48u : 32u) &&
           EVP_Digest("", 0, md, &md_len,
                      hash == 384 ? EVP_sha384() : EVP_sha256(), NULL) &&
           memcmp(md, ctx->data, md_len) == 0;
}

/* Extract steps: early secret from Kpsa, then the handshake secret and
 * the master secret, each with the previous secret as salt. */
static int extract(struct tls13_ctx *ctx, const struct secret_ref *key,
                   const struct secret_ref *salt, unsigned hash,
                   unsigned char *out, size_t out_len)
{
    if (key->kind == REF_BASE &&
        (salt->kind == REF_NONE ||
         (salt->kind == REF_PLAIN && all_zero(ctx->salt, ctx->salt_len))))
        return emit(ctx, STAGE_EARLY, key->id, hash, out, out_len);
    if (salt->kind != REF_DERIVED || key->kind == REF_BASE ||
        key->kind == REF_DERIVED)
        return refuse(ctx, "an extract outside kpsa's key schedule");
    if (salt->stage == STAGE_EARLY && no_dhe(ctx))
        return emit(ctx, STAGE_HANDSHAKE_KE, salt->id, hash, out, out_len);
    /* psk_dhe_ke: HMAC(Derive-Secret(early, "derived", ""), (EC)DHE); an
     * FFDHE secret is as long as its prime, up to 1024 bytes. */
    if (salt->stage == STAGE_EARLY)
        return token_mac(ctx, salt->id, stage_member(hash, OFF_DERIVED),
                         ctx->key, ctx->key_len, out, out_len);
    if (salt->stage == STAGE_HANDSHAKE_KE && no_dhe(ctx))
        return emit(ctx, STAGE_MASTER_KE, salt->id, hash, out, out_len);
    return refuse(ctx, "an extract outside kpsa's key schedule");
}

static int expand(struct tls13_ctx *ctx, const struct secret_ref *key,
                  unsigned hash, unsigned char *out, size_t out_len)
{
    if (key->kind != REF_DERIVED)
        return refuse(ctx, "a kpsa handle expanded without an extract");
    switch (key->stage) {
    case STAGE_EARLY:
        if (label_is(ctx, "ext binder") && is_empty_hash(ctx, hash))
            return emit(ctx, STAGE_BINDER_KEY, key->id, hash, out, out_len);
        if (label_is(ctx, "c e traffic") || label_is(ctx, "e exp master"))
            return refuse(ctx, "0-RTT early data is not supported; turn "
                               "early data off");
        break;
    case STAGE_BINDER_KEY:
        if (label_is(ctx, "finished") && ctx->data_len == 0)
            return emit(ctx, STAGE_BINDER_FINISHED, key->id, hash, out,
                        out_len);
        break;
    case STAGE_HANDSHAKE_KE:
        if (label_is(ctx, "c hs traffic") || label_is(ctx, "s hs traffic"))
            return token_expand(ctx, key->id, stage_member(hash, OFF_HS_KE),
                                out, out_len);
        break;
    case STAGE_MASTER_KE:
        if (label_is(ctx, "c ap traffic") || label_is(ctx, "s ap traffic") ||
            label_is(ctx, "exp master") || label_is(ctx, "res master"))
            return token_expand(ctx, key->id, stage_member(hash, OFF_MS_KE),
                                out, out_len);
        break;
    default:
        break;
    }
    return refuse(ctx, "an expansion outside kpsa's key schedule");
}

static int derive_on_token(struct tls13_ctx *ctx, const struct secret_ref *key,
                           const struct secret_ref *salt, unsigned char *out,
                           size_t out_len)
{
    unsigned hash = prov_hash(ctx->prov, ctx->digest);
    size_t hl = hash == 384 ? 48 : 32;

    if (key->kind == REF_BAD || salt->kind == REF_BAD)
        return refuse(ctx, "a secret starts like a handle but is none; "
                           "it is never used as key bytes");
    if (hash == 0)
        return refuse(ctx, "the digest is neither SHA-256 nor SHA-384");
    if (out_len != hl)
        return refuse(ctx, "a secret of the schedule is one hash long");
    if ((key->kind == REF_DERIVED && ctx->key_len != hl) ||
        (salt->kind == REF_DERIVED && ctx->salt_len != hl))
        return refuse(ctx, "a handle of another hash than the suite's");
    if (ctx->mode == EVP_KDF_HKDF_MODE_EXTRACT_ONLY)
        return extract(ctx, key, salt, hash, out, out_len);
    if (ctx->mode == EVP_KDF_HKDF_MODE_EXPAND_ONLY)
        return expand(ctx, key, hash, out, out_len);
    return refuse(ctx, "extract-and-expand is no step of TLS 1.3");
}

static int tls13_derive(void *vctx, unsigned char *out, size_t out_len,
                        const OSSL_PARAM params[])
{
    struct tls13_ctx *ctx = vctx;
    struct secret_ref key, salt;
    int ok;

    if (!tls13_set_params(ctx, params))
        return 0;
    key = classify(ctx->have_key, ctx->key, ctx->key_len);
    salt = classify(ctx->have_salt, ctx->salt, ctx->salt_len);
    if (key.kind <= REF_PLAIN && salt.kind <= REF_PLAIN)
        return derive_plain(ctx, out, out_len);
    ok = derive_on_token(ctx, &key, &salt, out, out_len);
    if (!ok)
        OPENSSL_cleanse(out, out_len);
    return ok;
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

/* As the default TLS13-KDF: an expansion has no fixed size, an extract
 * gives one hash of the digest, and none without a digest. */
static int tls13_get_params(void *vctx, OSSL_PARAM params[])
{
    struct tls13_ctx *ctx = vctx;
    OSSL_PARAM *p = OSSL_PARAM_locate(params, OSSL_KDF_PARAM_SIZE);
    unsigned hash;
    EVP_MD *md = NULL;
    int size = 0;

    if (p == NULL)
        return -2;
    if (ctx->mode != EVP_KDF_HKDF_MODE_EXTRACT_ONLY)
        return OSSL_PARAM_set_size_t(p, SIZE_MAX);
    /* The suite's two digests without a fetch; any other as OpenSSL. */
    hash = prov_hash(ctx->prov, ctx->digest);
    if (hash != 0)
        return OSSL_PARAM_set_size_t(p, hash / 8);
    if (ctx->digest[0] != '\0')
        md = EVP_MD_fetch(ctx->prov->libctx, ctx->digest, "provider=default");
    if (md != NULL)
        size = EVP_MD_get_size(md);
    EVP_MD_free(md);
    return size > 0 && OSSL_PARAM_set_size_t(p, (size_t)size);
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

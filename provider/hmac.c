/*
 * HMAC as an EVP_PKEY key type and signature, for the TLS 1.3 PSK binder
 * (RFC 8446 4.2.11.2): libssl makes an HMAC key from the binder's finished
 * key, which with a kpsa handle is a derived handle, and signs the
 * transcript hash with it. kpsa signs on the token with the family's
 * binder member. Every other HMAC key (TLS 1.2 CBC record MACs, say) is
 * computed with the default provider's HMAC, as if kpsa were not loaded;
 * a handle key is never exported, so EVP cannot hand it to another
 * provider as key bytes.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "handle.h"
#include "prov.h"

#define HASH_MAX   48
#define BINDER_MAX 256

struct hmac_key {
    struct kpsa_prov *prov;
    int refs;
    unsigned char *raw; /* a handle's bytes, or a plain key */
    size_t raw_len;
    int is_handle;
    char id[HANDLE_ID_LEN + 1];
};

struct hmac_sig {
    struct kpsa_prov *prov;
    struct hmac_key *key;
    EVP_MAC_CTX *mac;              /* plain keys */
    unsigned char msg[BINDER_MAX]; /* handle keys: the transcript hash */
    size_t msg_len;
};

/* ---- key management ---- */

static void *key_new(void *provctx)
{
    struct hmac_key *key = OPENSSL_zalloc(sizeof(*key));

    if (key != NULL) {
        key->prov = provctx;
        key->refs = 1;
    }
    return key;
}

static void key_free(void *vkey)
{
    struct hmac_key *key = vkey;

    if (key == NULL || __atomic_sub_fetch(&key->refs, 1, __ATOMIC_ACQ_REL))
        return;
    OPENSSL_clear_free(key->raw, key->raw_len);
    OPENSSL_free(key);
}

static struct hmac_key *key_up(struct hmac_key *key)
{
    __atomic_add_fetch(&key->refs, 1, __ATOMIC_ACQ_REL);
    return key;
}

static int key_has(const void *vkey, int selection)
{
    const struct hmac_key *key = vkey;

    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        return key->raw != NULL;
    return 1;
}

/* A handle is only ever the binder's finished key here; any other handle
 * as an HMAC key would be a handle taken for key bytes. */
static int take_raw(struct hmac_key *key, const OSSL_PARAM *p)
{
    enum handle_stage stage;

    if (!OSSL_PARAM_get_octet_string(p, (void **)&key->raw, 0, &key->raw_len))
        return 0;
    if (!handle_looks_like_any(key->raw, key->raw_len))
        return 1;
    if (handle_derived_parse(key->raw, key->raw_len, &stage, key->id) != 0 ||
        stage != STAGE_BINDER_FINISHED) {
        prov_error(key->prov, KPSA_R_UNSUPPORTED,
                   "a kpsa handle given as an HMAC key that is no binder "
                   "key; refusing to use it as key bytes");
        return 0;
    }
    key->is_handle = 1;
    return 1;
}

static int key_import(void *vkey, int selection, const OSSL_PARAM params[])
{
    struct hmac_key *key = vkey;
    const OSSL_PARAM *p;

    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) == 0)
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PRIV_KEY);
    if (p == NULL || key->raw != NULL)
        return 0;
    return take_raw(key, p);
}

static const OSSL_PARAM key_types[] = {
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PRIV_KEY, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *key_io_types(int selection)
{
    return (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) ? key_types : NULL;
}

static int key_export(void *vkey, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    struct hmac_key *key = vkey;
    OSSL_PARAM params[2];

    if (key->is_handle) {
        prov_error(key->prov, KPSA_R_UNSUPPORTED,
                   "a kpsa binder key stays with kpsa: it cannot be "
                   "exported to another provider");
        return 0;
    }
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) == 0 || key->raw == NULL)
        return 0;
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PRIV_KEY,
                                                  key->raw, key->raw_len);
    params[1] = OSSL_PARAM_construct_end();
    return cb(params, cbarg);
}

static void *key_dup(const void *vsrc, int selection)
{
    const struct hmac_key *src = vsrc;
    struct hmac_key *dst = key_new(src->prov);

    (void)selection;
    if (dst == NULL)
        return NULL;
    memcpy(dst->id, src->id, sizeof(dst->id));
    dst->is_handle = src->is_handle;
    if (src->raw != NULL) {
        dst->raw = OPENSSL_memdup(src->raw, src->raw_len);
        dst->raw_len = src->raw_len;
        if (dst->raw == NULL) {
            key_free(dst);
            return NULL;
        }
    }
    return dst;
}

static int key_match(const void *va, const void *vb, int selection)
{
    const struct hmac_key *a = va, *b = vb;

    (void)selection;
    return a->raw_len == b->raw_len &&
           (a->raw_len == 0 || CRYPTO_memcmp(a->raw, b->raw, a->raw_len) == 0);
}

/* "Generation" of an HMAC key is the legacy way of making one from given
 * bytes (EVP_PKEY_new_mac_key, openssl dgst -mac HMAC -macopt hexkey:):
 * the bytes come as a parameter, as in an import. */
struct hmac_gen {
    struct kpsa_prov *prov;
    unsigned char *raw;
    size_t raw_len;
};

static int gen_set_params(void *vgen, const OSSL_PARAM params[])
{
    struct hmac_gen *gen = vgen;
    const OSSL_PARAM *p =
        OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PRIV_KEY);

    if (p == NULL)
        return 1;
    OPENSSL_clear_free(gen->raw, gen->raw_len);
    gen->raw = NULL;
    gen->raw_len = 0;
    return OSSL_PARAM_get_octet_string(p, (void **)&gen->raw, 0, &gen->raw_len);
}

static void *gen_init(void *provctx, int selection, const OSSL_PARAM params[])
{
    struct hmac_gen *gen = OPENSSL_zalloc(sizeof(*gen));

    if (gen == NULL)
        return NULL;
    gen->prov = provctx;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) == 0 ||
        !gen_set_params(gen, params)) {
        OPENSSL_free(gen);
        return NULL;
    }
    return gen;
}

static const OSSL_PARAM *gen_settable(void *vgen, void *provctx)
{
    (void)vgen;
    (void)provctx;
    return key_types;
}

static void *gen_key(void *vgen, OSSL_CALLBACK *cb, void *cbarg)
{
    struct hmac_gen *gen = vgen;
    struct hmac_key *key;
    OSSL_PARAM p;

    (void)cb;
    (void)cbarg;
    if (gen->raw == NULL || (key = key_new(gen->prov)) == NULL)
        return NULL;
    p = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PRIV_KEY, gen->raw,
                                          gen->raw_len);
    if (!take_raw(key, &p)) {
        key_free(key);
        return NULL;
    }
    return key;
}

static void gen_cleanup(void *vgen)
{
    struct hmac_gen *gen = vgen;

    if (gen == NULL)
        return;
    OPENSSL_clear_free(gen->raw, gen->raw_len);
    OPENSSL_free(gen);
}

const OSSL_DISPATCH kpsa_hmac_keymgmt_functions[] = {
    {OSSL_FUNC_KEYMGMT_GEN_INIT, (void (*)(void))gen_init},
    {OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS, (void (*)(void))gen_set_params},
    {OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS, (void (*)(void))gen_settable},
    {OSSL_FUNC_KEYMGMT_GEN, (void (*)(void))gen_key},
    {OSSL_FUNC_KEYMGMT_GEN_CLEANUP, (void (*)(void))gen_cleanup},
    {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))key_new},
    {OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))key_free},
    {OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))key_has},
    {OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))key_match},
    {OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))key_import},
    {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))key_io_types},
    {OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))key_export},
    {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))key_io_types},
    {OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))key_dup},
    {0, NULL},
};

/* ---- signature ---- */

static void *sig_new(void *provctx, const char *propq)
{
    struct hmac_sig *sig = OPENSSL_zalloc(sizeof(*sig));

    (void)propq;
    if (sig != NULL)
        sig->prov = provctx;
    return sig;
}

static void sig_free(void *vsig)
{
    struct hmac_sig *sig = vsig;

    if (sig == NULL)
        return;
    EVP_MAC_CTX_free(sig->mac);
    key_free(sig->key);
    OPENSSL_clear_free(sig, sizeof(*sig));
}

static void *sig_dup(void *vsrc)
{
    const struct hmac_sig *src = vsrc;
    struct hmac_sig *dst = OPENSSL_memdup(src, sizeof(*src));

    if (dst == NULL)
        return NULL;
    dst->mac = NULL;
    if (src->key != NULL)
        key_up(src->key);
    if (src->mac != NULL && (dst->mac = EVP_MAC_CTX_dup(src->mac)) == NULL) {
        sig_free(dst);
        return NULL;
    }
    return dst;
}

static int sig_set_params(void *vsig, const OSSL_PARAM params[])
{
    struct hmac_sig *sig = vsig;

    /* e.g. tls-data-size of a TLS 1.2 CBC record MAC */
    if (sig->mac == NULL || params == NULL)
        return 1;
    return EVP_MAC_CTX_set_params(sig->mac, params);
}

static const OSSL_PARAM *sig_settable(void *vsig, void *provctx)
{
    static const OSSL_PARAM table[] = {
        OSSL_PARAM_utf8_string(OSSL_MAC_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_MAC_PARAM_PROPERTIES, NULL, 0),
        OSSL_PARAM_size_t(OSSL_MAC_PARAM_TLS_DATA_SIZE, NULL),
        OSSL_PARAM_END,
    };

    (void)vsig;
    (void)provctx;
    return table;
}

static int plain_init(struct hmac_sig *sig, const char *mdname)
{
    EVP_MAC *mac = EVP_MAC_fetch(sig->prov->libctx, "HMAC", "provider=default");
    OSSL_PARAM params[2];

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *)mdname, 0);
    params[1] = OSSL_PARAM_construct_end();
    sig->mac = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac);
    return sig->mac != NULL &&
           EVP_MAC_init(sig->mac, sig->key->raw, sig->key->raw_len, params);
}

static int sig_init(void *vsig, const char *mdname, void *vkey,
                    const OSSL_PARAM params[])
{
    struct hmac_sig *sig = vsig;
    struct hmac_key *key = vkey;
    unsigned hash = prov_hash(sig->prov, mdname);

    if (key == NULL || key->raw == NULL || mdname == NULL)
        return 0;
    key_free(sig->key);
    sig->key = key_up(key);
    sig->msg_len = 0;
    EVP_MAC_CTX_free(sig->mac);
    sig->mac = NULL;
    if (key->is_handle) {
        if (hash == 0 || key->raw_len != (hash == 384 ? 48u : 32u)) {
            prov_error(sig->prov, KPSA_R_UNSUPPORTED,
                       "a kpsa binder key signed with %s, not its hash",
                       mdname);
            return 0;
        }
        return 1;
    }
    return plain_init(sig, mdname) && sig_set_params(sig, params);
}

static int sig_update(void *vsig, const unsigned char *data, size_t len)
{
    struct hmac_sig *sig = vsig;

    if (sig->mac != NULL)
        return EVP_MAC_update(sig->mac, data, len);
    /* The binder signs one transcript hash (RFC 8446 4.2.11.2). */
    if (len > sizeof(sig->msg) - sig->msg_len)
        return 0;
    memcpy(sig->msg + sig->msg_len, data, len);
    sig->msg_len += len;
    return 1;
}

static int binder_on_token(struct hmac_sig *sig, unsigned char *out,
                           size_t out_len)
{
    int member =
        out_len == 48 ? MEMBER_TLS13_SHA384_BINDER : MEMBER_TLS13_SHA256_BINDER;

    return keystore_hmac(sig->prov, sig->key->id, member, sig->msg,
                         sig->msg_len, out, out_len);
}

static int sig_final(void *vsig, unsigned char *out, size_t *out_len,
                     size_t out_size)
{
    struct hmac_sig *sig = vsig;
    size_t len = sig->key != NULL ? sig->key->raw_len : 0;

    if (sig->mac != NULL)
        return EVP_MAC_final(sig->mac, out, out_len, out_size);
    if (sig->key == NULL)
        return 0;
    *out_len = len;
    if (out == NULL)
        return 1;
    return out_size >= len && binder_on_token(sig, out, len);
}

const OSSL_DISPATCH kpsa_hmac_signature_functions[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))sig_new},
    {OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_free},
    {OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dup},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))sig_init},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))sig_update},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))sig_final},
    {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))sig_set_params},
    {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))sig_settable},
    {0, NULL},
};

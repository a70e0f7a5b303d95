#include "token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

#include "pin.h"

/* One loaded module, shared by the sessions opened through it: object
 * handles are only valid within the module instance that gave them. */
struct token_module {
    CK_FUNCTION_LIST *fl;
    int initialized;
    int refs;
};

struct kpsa_token {
    CK_FUNCTION_LIST *fl; /* mod->fl */
    struct token_module *mod;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE session;
    int have_session;
    int pin_rejected;
    CK_RV last_rv;
    char label[33];
    char uri_pin_source[PIN_MAX];
    struct kpsa_err err;
};

/* KPSA_DEBUG=1 logs every call and its result; never an argument. */
static CK_RV logged(const char *fn, CK_RV rv)
{
    static int debug = -1;

    if (debug < 0) {
        const char *env = getenv("KPSA_DEBUG");

        debug = env != NULL && env[0] != '\0' && strcmp(env, "0") != 0;
    }
    if (debug)
        fprintf(stderr, "kpsa: debug: %s -> %s\n", fn, token_rv_name(rv));
    return rv;
}

#define P11(tok, fn, ...) logged(#fn, (tok)->fl->fn(__VA_ARGS__))

static int p11_fail(struct kpsa_token *tok, const char *fn, CK_RV rv,
                    const char *what)
{
    tok->last_rv = rv;
    if (what != NULL)
        return kpsa_err_set(&tok->err, KPSA_ERR_TOKEN, "%s: %s failed: %s",
                            what, fn, token_rv_name(rv));
    return kpsa_err_set(&tok->err, KPSA_ERR_TOKEN, "token '%s': %s failed: %s",
                        tok->label, fn, token_rv_name(rv));
}

struct kpsa_token *token_new(void)
{
    return calloc(1, sizeof(struct kpsa_token));
}

static void module_put(struct token_module *mod, int call_module)
{
    if (mod == NULL || __atomic_sub_fetch(&mod->refs, 1, __ATOMIC_ACQ_REL))
        return;
    if (call_module && mod->initialized)
        p11_kit_module_finalize(mod->fl);
    if (call_module && mod->fl != NULL)
        p11_kit_module_release(mod->fl);
    free(mod);
}

void token_free(struct kpsa_token *tok)
{
    if (tok == NULL)
        return;
    if (tok->have_session)
        P11(tok, C_CloseSession, tok->session);
    module_put(tok->mod, 1);
    free(tok);
}

void token_abandon(struct kpsa_token *tok)
{
    if (tok == NULL)
        return;
    module_put(tok->mod, 0);
    free(tok);
}

struct kpsa_token *token_sibling(struct kpsa_token *base)
{
    struct kpsa_token *tok = token_new();

    if (tok == NULL)
        return NULL;
    tok->mod = base->mod;
    tok->fl = base->fl;
    __atomic_add_fetch(&tok->mod->refs, 1, __ATOMIC_ACQ_REL);
    tok->slot = base->slot;
    memcpy(tok->label, base->label, sizeof(tok->label));
    return tok;
}

/* PKCS#11 2.40 5.6: a login holds for every session of the application,
 * so a sibling session needs none of its own. */
int token_sibling_open(struct kpsa_token *tok)
{
    CK_RV rv =
        P11(tok, C_OpenSession, tok->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
            NULL, NULL, &tok->session);

    if (rv != CKR_OK)
        return p11_fail(tok, "C_OpenSession", rv, NULL);
    tok->have_session = 1;
    return 0;
}

const struct kpsa_err *token_err(const struct kpsa_token *tok)
{
    return &tok->err;
}

struct kpsa_err *token_err_mut(struct kpsa_token *tok)
{
    return &tok->err;
}

CK_RV token_last_rv(const struct kpsa_token *tok)
{
    return tok->last_rv;
}

int token_pin_rejected(const struct kpsa_token *tok)
{
    return tok->pin_rejected;
}

const char *token_label(const struct kpsa_token *tok)
{
    return tok->label;
}

static void copy_padded(char *dst, const unsigned char *src, size_t n)
{
    memcpy(dst, src, n);
    while (n > 0 && dst[n - 1] == ' ')
        n--;
    dst[n] = '\0';
}

static int load_module(struct kpsa_token *tok, const char *path)
{
    CK_RV rv;

    if (path == NULL || path[0] == '\0')
        return kpsa_err_set(&tok->err, KPSA_ERR_USER,
                            "no PKCS#11 module: give --module PATH or set "
                            "KPSA_MODULE");
    tok->mod = calloc(1, sizeof(*tok->mod));
    if (tok->mod == NULL)
        return kpsa_err_set(&tok->err, KPSA_ERR_TOKEN, "out of memory");
    tok->mod->refs = 1;
    tok->fl = tok->mod->fl = p11_kit_module_load(path, 0);
    if (tok->fl == NULL)
        return kpsa_err_set(&tok->err, KPSA_ERR_TOKEN,
                            "%s: cannot load PKCS#11 module: %s", path,
                            p11_kit_message() ? p11_kit_message() : "");
    rv = p11_kit_module_initialize(tok->fl);
    if (rv != CKR_OK)
        return kpsa_err_set(&tok->err, KPSA_ERR_TOKEN,
                            "%s: C_Initialize failed: %s", path,
                            token_rv_name(rv));
    tok->mod->initialized = 1;
    return 0;
}

static int parse_uri(struct kpsa_token *tok, const char *text, P11KitUri *uri)
{
    int rc;

    if (text == NULL || text[0] == '\0')
        return 0;
    rc = p11_kit_uri_parse(text, P11_KIT_URI_FOR_TOKEN | P11_KIT_URI_FOR_SLOT,
                           uri);
    if (rc != P11_KIT_URI_OK)
        return kpsa_err_set(&tok->err, KPSA_ERR_USER, "token URI '%s': %s",
                            text, p11_kit_uri_message(rc));
    if (p11_kit_uri_get_pin_value(uri) != NULL)
        return kpsa_err_set(&tok->err, KPSA_ERR_USER,
                            "token URI carries pin-value; give the PIN "
                            "with --pin-source file:PATH instead");
    if (p11_kit_uri_any_unrecognized(uri))
        return kpsa_err_set(&tok->err, KPSA_ERR_USER,
                            "token URI '%s' has an attribute that does not "
                            "select a token (RFC 7512)",
                            text);
    return 0;
}

static int slot_matches(struct kpsa_token *tok, P11KitUri *uri, CK_SLOT_ID slot,
                        CK_TOKEN_INFO *info)
{
    CK_SLOT_ID want = p11_kit_uri_get_slot_id(uri);
    CK_SLOT_INFO slot_info;
    CK_RV rv;

    if (want != (CK_SLOT_ID)-1 && want != slot)
        return 0;
    rv = P11(tok, C_GetSlotInfo, slot, &slot_info);
    if (rv != CKR_OK || !p11_kit_uri_match_slot_info(uri, &slot_info))
        return 0;
    rv = P11(tok, C_GetTokenInfo, slot, info);
    /* A blank token (SoftHSM2 always offers one) holds no keys. */
    if (rv != CKR_OK || !(info->flags & CKF_TOKEN_INITIALIZED))
        return 0;
    return p11_kit_uri_match_token_info(uri, info);
}

static void describe_match(char *buf, size_t cap, size_t *used,
                           CK_TOKEN_INFO *info)
{
    char label[33], serial[17];

    copy_padded(label, info->label, 32);
    copy_padded(serial, info->serialNumber, 16);
    if (*used < cap)
        *used +=
            (size_t)snprintf(buf + *used, cap - *used, "%s'%s' (serial %s)",
                             *used ? ", " : "", label, serial);
}

static int choose_slot(struct kpsa_token *tok, P11KitUri *uri, const char *text,
                       CK_SLOT_ID *slots, CK_ULONG n)
{
    CK_TOKEN_INFO info;
    char names[200] = "";
    size_t used = 0, matches = 0;

    for (CK_ULONG i = 0; i < n; i++) {
        if (!slot_matches(tok, uri, slots[i], &info))
            continue;
        matches++;
        tok->slot = slots[i];
        copy_padded(tok->label, info.label, 32);
        describe_match(names, sizeof(names), &used, &info);
    }
    if (matches == 0)
        return kpsa_err_set(&tok->err, KPSA_ERR_USER, "no token matches '%s'",
                            text ? text : "pkcs11:");
    if (matches > 1)
        return kpsa_err_set(&tok->err, KPSA_ERR_USER,
                            "'%s' matches %zu tokens: %s; name one with "
                            "--token pkcs11:token=... or serial=...",
                            text ? text : "pkcs11:", matches, names);
    return 0;
}

/* RFC 7512 2.4: a pin-source in the URI serves when none was given. */
static void keep_pin_source(struct kpsa_token *tok, P11KitUri *uri)
{
    const char *src = p11_kit_uri_get_pin_source(uri);

    if (src != NULL)
        snprintf(tok->uri_pin_source, sizeof(tok->uri_pin_source), "%s%s",
                 strncmp(src, "file:", 5) == 0 ? "" : "file:", src);
}

static int select_token(struct kpsa_token *tok, const char *text)
{
    P11KitUri *uri = p11_kit_uri_new();
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0;
    CK_RV rv;
    int ret = -1;

    if (uri == NULL || parse_uri(tok, text, uri) != 0)
        goto out;
    rv = P11(tok, C_GetSlotList, CK_TRUE, NULL, &n);
    if (rv == CKR_OK && n > 0) {
        slots = calloc(n, sizeof(*slots));
        rv = slots ? P11(tok, C_GetSlotList, CK_TRUE, slots, &n)
                   : CKR_HOST_MEMORY;
    }
    if (rv != CKR_OK) {
        p11_fail(tok, "C_GetSlotList", rv, "PKCS#11 module");
        goto out;
    }
    ret = choose_slot(tok, uri, text, slots, n);
    keep_pin_source(tok, uri);
out:
    free(slots);
    p11_kit_uri_free(uri);
    return ret;
}

/* A rejected PIN is never sent again: retries could lock the token. */
static int login(struct kpsa_token *tok, const struct token_config *cfg)
{
    const char *source = cfg->pin_source;
    char pin[PIN_MAX];
    size_t len = 0;
    CK_RV rv;
    int ret = -1;

    if ((source == NULL || source[0] == '\0') && tok->uri_pin_source[0])
        source = tok->uri_pin_source;
    if (tok->pin_rejected)
        return kpsa_err_set(&tok->err, KPSA_ERR_TOKEN,
                            "token '%s': PIN was rejected before; not "
                            "trying it again",
                            tok->label);
    if (pin_read(source, cfg->flags & TOKEN_PROMPT_PIN, tok->label, pin, &len,
                 &tok->err) != 0)
        return -1;
    rv = P11(tok, C_Login, tok->session, CKU_USER, (CK_UTF8CHAR *)pin,
             (CK_ULONG)len);
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED)
        tok->pin_rejected = 1;
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        p11_fail(tok, "C_Login", rv, NULL);
        goto out;
    }
    ret = 0;
out:
    OPENSSL_cleanse(pin, sizeof(pin));
    return ret;
}

int token_open(struct kpsa_token *tok, const struct token_config *cfg)
{
    CK_RV rv;

    kpsa_err_clear(&tok->err);
    if (load_module(tok, cfg->module) != 0 || select_token(tok, cfg->uri) != 0)
        return -1;
    rv = P11(tok, C_OpenSession, tok->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
             NULL, NULL, &tok->session);
    if (rv != CKR_OK)
        return p11_fail(tok, "C_OpenSession", rv, NULL);
    tok->have_session = 1;
    return login(tok, cfg);
}

int token_create(struct kpsa_token *tok, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                 CK_OBJECT_HANDLE *out, const char *what)
{
    CK_RV rv = P11(tok, C_CreateObject, tok->session, tmpl, n, out);

    return rv == CKR_OK ? 0 : p11_fail(tok, "C_CreateObject", rv, what);
}

int token_destroy(struct kpsa_token *tok, CK_OBJECT_HANDLE obj,
                  const char *what)
{
    CK_RV rv = P11(tok, C_DestroyObject, tok->session, obj);

    return rv == CKR_OK ? 0 : p11_fail(tok, "C_DestroyObject", rv, what);
}

static int find_batches(struct kpsa_token *tok, CK_OBJECT_HANDLE **out,
                        size_t *count)
{
    CK_OBJECT_HANDLE *all = NULL, *grown;
    size_t cap = 0, used = 0;
    CK_ULONG got;
    CK_RV rv;

    do {
        if (used + 256 > cap) {
            cap = cap ? cap * 2 : 256;
            grown = realloc(all, cap * sizeof(*all));
            if (grown == NULL) {
                free(all);
                return p11_fail(tok, "C_FindObjects", CKR_HOST_MEMORY, NULL);
            }
            all = grown;
        }
        rv = P11(tok, C_FindObjects, tok->session, all + used, 256, &got);
        if (rv != CKR_OK) {
            free(all);
            return p11_fail(tok, "C_FindObjects", rv, NULL);
        }
        used += got;
    } while (got > 0);
    *out = all;
    *count = used;
    return 0;
}

int token_find(struct kpsa_token *tok, CK_ATTRIBUTE *tmpl, CK_ULONG n,
               CK_OBJECT_HANDLE **out, size_t *count)
{
    CK_RV rv = P11(tok, C_FindObjectsInit, tok->session, tmpl, n);
    int ret;

    if (rv != CKR_OK)
        return p11_fail(tok, "C_FindObjectsInit", rv, NULL);
    ret = find_batches(tok, out, count);
    /* A search left open would refuse the session's next one
     * (CKR_OPERATION_ACTIVE): a failure to end it is a failure. */
    rv = P11(tok, C_FindObjectsFinal, tok->session);
    if (ret == 0 && rv != CKR_OK) {
        free(*out);
        *out = NULL;
        *count = 0;
        ret = p11_fail(tok, "C_FindObjectsFinal", rv, NULL);
    }
    return ret;
}

int token_get_attributes(struct kpsa_token *tok, CK_OBJECT_HANDLE obj,
                         CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    CK_RV rv;

    for (CK_ULONG i = 0; i < n; i++)
        if (tmpl[i].type == CKA_VALUE)
            return kpsa_err_set(&tok->err, KPSA_ERR_TOKEN,
                                "refusing to read an object's value");
    rv = P11(tok, C_GetAttributeValue, tok->session, obj, tmpl, n);
    if (rv == CKR_BUFFER_TOO_SMALL || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
        rv == CKR_ATTRIBUTE_SENSITIVE)
        return 1;
    return rv == CKR_OK ? 0 : p11_fail(tok, "C_GetAttributeValue", rv, NULL);
}

int token_read_data(struct kpsa_token *tok, CK_OBJECT_HANDLE obj,
                    unsigned char *buf, size_t cap, size_t *len)
{
    CK_OBJECT_CLASS cls = 0;
    CK_ATTRIBUTE cls_attr = {CKA_CLASS, &cls, sizeof(cls)};
    CK_ATTRIBUTE data = {CKA_VALUE, buf, (CK_ULONG)cap};
    CK_RV rv;

    int rc = token_get_attributes(tok, obj, &cls_attr, 1);

    if (rc < 0)
        return -1; /* the failed call is named already */
    if (rc > 0)
        return kpsa_err_set(&tok->err, KPSA_ERR_TOKEN,
                            "cannot read the class of a data object");
    if (cls != CKO_DATA)
        return kpsa_err_set(&tok->err, KPSA_ERR_TOKEN,
                            "refusing to read the value of a non-data "
                            "object");
    rv = P11(tok, C_GetAttributeValue, tok->session, obj, &data, 1);
    if (rv == CKR_BUFFER_TOO_SMALL)
        return 1;
    if (rv != CKR_OK)
        return p11_fail(tok, "C_GetAttributeValue", rv, "data object");
    *len = data.ulValueLen;
    return 0;
}

/* Token operations (HMACs and key digests) of this process, for
 * benchmarks: a counter, not a log. */
static unsigned long long op_count;

unsigned long long token_op_count(void)
{
    return __atomic_load_n(&op_count, __ATOMIC_RELAXED);
}

static void count_op(void)
{
    __atomic_add_fetch(&op_count, 1, __ATOMIC_RELAXED);
}

/*
 * A session object with the key's value, made on the token from the token
 * object: it stays sensitive and unextractable (PKCS#11 2.40 4.1.1: a copy
 * cannot weaken either), and SoftHSM2 computes with one about twice as
 * fast as with a token object, whose file it checks on every use.
 */
int token_copy_session(struct kpsa_token *tok, CK_OBJECT_HANDLE obj,
                       CK_OBJECT_HANDLE *out)
{
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {{CKA_TOKEN, &no, sizeof(no)}};
    CK_RV rv = P11(tok, C_CopyObject, tok->session, obj, tmpl, 1, out);

    return rv == CKR_OK ? 0 : p11_fail(tok, "C_CopyObject", rv, NULL);
}

int token_hmac(struct kpsa_token *tok, CK_MECHANISM_TYPE mech,
               CK_OBJECT_HANDLE key, const unsigned char *data, size_t len,
               unsigned char *mac, size_t mac_len)
{
    CK_MECHANISM m = {mech, NULL, 0};
    CK_ULONG out_len = (CK_ULONG)mac_len;
    CK_RV rv = P11(tok, C_SignInit, tok->session, &m, key);

    count_op();
    if (rv != CKR_OK)
        return p11_fail(tok, "C_SignInit", rv, NULL);
    rv = P11(tok, C_Sign, tok->session, (CK_BYTE *)data, (CK_ULONG)len, mac,
             &out_len);
    if (rv != CKR_OK)
        return p11_fail(tok, "C_Sign", rv, NULL);
    if (out_len != mac_len)
        return kpsa_err_set(&tok->err, KPSA_ERR_TOKEN,
                            "token '%s': HMAC of %lu bytes, expected %zu",
                            tok->label, (unsigned long)out_len, mac_len);
    return 0;
}

static int digest_steps(struct kpsa_token *tok, CK_MECHANISM_TYPE mech,
                        const unsigned char *prefix, size_t prefix_len,
                        CK_OBJECT_HANDLE key)
{
    CK_MECHANISM m = {mech, NULL, 0};
    CK_RV rv = P11(tok, C_DigestInit, tok->session, &m);

    if (rv != CKR_OK)
        return p11_fail(tok, "C_DigestInit", rv, NULL);
    if (prefix_len > 0) {
        rv = P11(tok, C_DigestUpdate, tok->session, (CK_BYTE *)prefix,
                 (CK_ULONG)prefix_len);
        if (rv != CKR_OK)
            return p11_fail(tok, "C_DigestUpdate", rv, NULL);
    }
    rv = P11(tok, C_DigestKey, tok->session, key);
    if (rv != CKR_OK)
        return p11_fail(tok, "C_DigestKey", rv, NULL);
    return 0;
}

int token_digest_key(struct kpsa_token *tok, CK_MECHANISM_TYPE mech,
                     const unsigned char *prefix, size_t prefix_len,
                     CK_OBJECT_HANDLE key, unsigned char *out, size_t out_len)
{
    CK_ULONG len = (CK_ULONG)out_len;
    CK_RV rv;

    count_op();
    /* PKCS#11 2.40 5.10: a failed update or C_DigestKey ends the
     * operation, so nothing is left active for the next handshake. */
    if (digest_steps(tok, mech, prefix, prefix_len, key) != 0)
        return -1;
    rv = P11(tok, C_DigestFinal, tok->session, out, &len);
    if (rv != CKR_OK)
        return p11_fail(tok, "C_DigestFinal", rv, NULL);
    if (len != out_len)
        return kpsa_err_set(&tok->err, KPSA_ERR_TOKEN,
                            "token '%s': digest of %lu bytes, expected %zu",
                            tok->label, (unsigned long)len, out_len);
    return 0;
}

int token_random(struct kpsa_token *tok, unsigned char *buf, size_t len)
{
    CK_RV rv = P11(tok, C_GenerateRandom, tok->session, buf, (CK_ULONG)len);

    return rv == CKR_OK ? 0 : p11_fail(tok, "C_GenerateRandom", rv, NULL);
}

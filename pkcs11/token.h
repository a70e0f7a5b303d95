/*
 * The token layer: one PKCS#11 module, one token chosen by an RFC 7512 URI,
 * one logged-in session. Nothing here ever reads the value of a key: the
 * only attribute reads allowed are of names, sizes and flags, and of the
 * value of kpsa's own data objects (family manifests).
 */
#ifndef KPSA_TOKEN_H
#define KPSA_TOKEN_H

#include <stddef.h>

#include <p11-kit/pkcs11.h>

#include "error.h"

struct kpsa_token;

enum token_flags {
    /* The CLI may ask for the PIN on a terminal; the provider never does. */
    TOKEN_PROMPT_PIN = 1u << 0,
};

struct token_config {
    const char *module;     /* path of the PKCS#11 module */
    const char *uri;        /* RFC 7512 token URI, NULL for "the only one" */
    const char *pin_source; /* "file:PATH", NULL to prompt (CLI only) */
    unsigned flags;
};

struct kpsa_token *token_new(void);
void token_free(struct kpsa_token *tok);
/* Frees our memory without a call to the module: for a provider torn down
 * inside OPENSSL_cleanup, when a module that uses libcrypto itself (as
 * SoftHSM2 does) can no longer run. */
void token_abandon(struct kpsa_token *tok);
const struct kpsa_err *token_err(const struct kpsa_token *tok);
struct kpsa_err *token_err_mut(struct kpsa_token *tok);

/* Another session on base's token through the same module instance, in
 * which base's object handles hold: token_sibling copies what it needs
 * without a token call, token_sibling_open opens the session. */
struct kpsa_token *token_sibling(struct kpsa_token *base);
int token_sibling_open(struct kpsa_token *tok);

/* Loads the module, selects the token, opens a session and logs in. */
int token_open(struct kpsa_token *tok, const struct token_config *cfg);
const char *token_label(const struct kpsa_token *tok);
/* The CKR_* of the last failed call, CKR_OK if none failed. */
CK_RV token_last_rv(const struct kpsa_token *tok);
/* Set once the token refused the PIN: a caller that reopens the token must
 * not send it again. */
int token_pin_rejected(const struct kpsa_token *tok);

/* what names the object in errors: a KpsaId and member, never a value. */
int token_create(struct kpsa_token *tok, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                 CK_OBJECT_HANDLE *out, const char *what);
int token_destroy(struct kpsa_token *tok, CK_OBJECT_HANDLE obj,
                  const char *what);
int token_find(struct kpsa_token *tok, CK_ATTRIBUTE *tmpl, CK_ULONG n,
               CK_OBJECT_HANDLE **out, size_t *count);
/* Refuses CKA_VALUE: key values are never read. Returns 1, setting no
 * error, when an attribute is absent, sensitive or larger than its buffer
 * (its ulValueLen is then CK_UNAVAILABLE_INFORMATION). */
int token_get_attributes(struct kpsa_token *tok, CK_OBJECT_HANDLE obj,
                         CK_ATTRIBUTE *tmpl, CK_ULONG n);
/* Reads the value of a CKO_DATA object, and of no other class. */
/* Returns 1, setting no error, when the value is larger than cap. */
int token_read_data(struct kpsa_token *tok, CK_OBJECT_HANDLE obj,
                    unsigned char *buf, size_t cap, size_t *len);

int token_hmac(struct kpsa_token *tok, CK_MECHANISM_TYPE mech,
               CK_OBJECT_HANDLE key, const unsigned char *data, size_t len,
               unsigned char *mac, size_t mac_len);
/* Hash(prefix || key value), the key digested inside the token: RFC 4279
 * 3 and RFC 5489 2 premasters hold Kpsa after per-connection bytes. */
int token_digest_key(struct kpsa_token *tok, CK_MECHANISM_TYPE mech,
                     const unsigned char *prefix, size_t prefix_len,
                     CK_OBJECT_HANDLE key, unsigned char *out, size_t out_len);
int token_random(struct kpsa_token *tok, unsigned char *buf, size_t len);
/* A session copy (CKA_TOKEN false) of a key: as sensitive and as
 * unextractable as the original. */
int token_copy_session(struct kpsa_token *tok, CK_OBJECT_HANDLE obj,
                       CK_OBJECT_HANDLE *out);
/* HMACs and key digests this process asked of tokens so far. */
unsigned long long token_op_count(void);

const char *token_rv_name(CK_RV rv);
CK_RV token_rv_from_name(const char *name);

#endif

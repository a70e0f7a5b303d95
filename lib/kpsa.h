/*
 * libkpsa: oneM2M TS-0003 8.2.2.1 security associations for OpenSSL
 * programs, with Kpsa kept in a PKCS#11 token by the kpsa provider.
 *
 * A client (Entity A) is set up with the KpsaId it holds, the entity it
 * means to reach (IdB) and the host name for SNI; a server (Entity B) looks
 * the client's psk_identity up on its token and binds the connection to the
 * Credential-ID "12-<KpsaId>" and to the AE-ID or CSE-ID an operator's map
 * gives for it. Neither side ever holds Kpsa: OpenSSL is handed the key's
 * handle, which the provider resolves on the token. See kpsa(3).
 */
#ifndef KPSA_H
#define KPSA_H

#include <stddef.h>

#include <openssl/ssl.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Room for any error message the library writes. */
#define KPSA_ERRLEN 320

/* ---- the token's key index ---- */

struct kpsa_store;

struct kpsa_store_config {
    const char *module;     /* PKCS#11 module path; NULL: KPSA_MODULE */
    const char *token;      /* RFC 7512 token URI; NULL: KPSA_TOKEN */
    const char *pin_source; /* "file:PATH"; NULL: KPSA_PIN_SOURCE */
};

/*
 * Opens the token and reads the index of its KpsaIds once. The store
 * answers which KpsaIds exist without a token search; an unknown KpsaId
 * makes it read the token again at most once per refresh interval.
 * Returns NULL with a one-line reason in err.
 */
struct kpsa_store *kpsa_store_open(const struct kpsa_store_config *cfg,
                                   char err[KPSA_ERRLEN]);
void kpsa_store_free(struct kpsa_store *store);
/* Seconds between two reads of the token for unknown KpsaIds; default 2. */
void kpsa_store_set_refresh(struct kpsa_store *store, unsigned seconds);
/* Reads the index again now; 0, or -1 with err (the old index stays). */
int kpsa_store_refresh(struct kpsa_store *store, char err[KPSA_ERRLEN]);
/* The number of whole key families in the index. */
size_t kpsa_store_count(struct kpsa_store *store);

/* ---- the operator's map from Credential-ID to entity (8.2.1) ---- */

enum kpsa_entity {
    KPSA_ENTITY_NONE = 0, /* no line for this Credential-ID */
    KPSA_ENTITY_AE = 1,
    KPSA_ENTITY_CSE = 2,
};

struct kpsa_map;

/*
 * Reads lines "CREDENTIAL-ID AE|CSE ENTITY-ID"; '#' starts a comment.
 * A malformed line refuses the whole file: NULL, with
 * "PATH:LINE: what is wrong" in err.
 */
struct kpsa_map *kpsa_map_load(const char *path, char err[KPSA_ERRLEN]);
void kpsa_map_free(struct kpsa_map *map);
/* The entity for a Credential-ID, and its ID in *entity_id (valid while
 * the map lives); KPSA_ENTITY_NONE when the map has no line for it. */
enum kpsa_entity kpsa_map_lookup(const struct kpsa_map *map,
                                 const char *credential_id,
                                 const char **entity_id);
size_t kpsa_map_count(const struct kpsa_map *map);

/* ---- the provider ---- */

struct kpsa_providers;

/*
 * Loads the default provider and kpsa into libctx and makes libctx prefer
 * kpsa ("?provider=kpsa"). provider is a path or a name in OpenSSL's
 * modules directory; NULL means "kpsa". The provider reads its token
 * settings from KPSA_MODULE, KPSA_TOKEN and KPSA_PIN_SOURCE. Not needed
 * when openssl.cnf loads kpsa already. Returns NULL with err on failure;
 * kpsa_provider_unload before OSSL_LIB_CTX_free unloads both, and kpsa
 * then closes its token sessions.
 */
struct kpsa_providers *kpsa_provider_load(OSSL_LIB_CTX *libctx,
                                          const char *provider,
                                          char err[KPSA_ERRLEN]);
void kpsa_provider_unload(struct kpsa_providers *loaded);

/*
 * Makes an SSL_CTX for kpsa associations. It is refused unless TLS1-PRF
 * and TLS13-KDF, fetched as libssl will fetch them (libctx, propq), come
 * from the kpsa provider: without it OpenSSL would take a handle for key
 * bytes. kpsa_client_setup and kpsa_server_setup accept only contexts made
 * here. libctx may be NULL (the default context, with kpsa loaded by
 * openssl.cnf). Returns NULL with err on failure.
 */
SSL_CTX *kpsa_ssl_ctx_new(OSSL_LIB_CTX *libctx, const char *propq,
                          const SSL_METHOD *method, char err[KPSA_ERRLEN]);

/* ---- Entity A: the client ---- */

/* Flags of a client or a server. */
enum kpsa_flags {
    /* Offer TLS 1.3 (RFC 8446 external PSK) besides TLS 1.2. TS-0003
     * 10.2.1 names (D)TLS 1.2 only; OpenSSL 3.0 has no DTLS 1.3. A key
     * imported with --tls13-sha384 uses SHA-384 suites in TLS 1.3, any
     * other SHA-256 ones; both ends must agree. */
    KPSA_TLS13 = 1u << 0,
};

struct kpsa_client_config {
    const char *kpsa_id;  /* the KpsaId to authenticate with */
    const char *id_b;     /* the AE-ID or CSE-ID the client means to reach */
    const char *sni_host; /* HostName for SNI (TS-0003 10.2.1); required */
    /* Cipher suites; NULL: the TS-0003 10.2.2 profile, TLS
     * PSK-AES128-CBC-SHA256 first, DTLS PSK-AES128-CCM8 first. */
    const char *ciphers;
    unsigned flags; /* enum kpsa_flags */
};

/*
 * Sets ssl (of a context from kpsa_ssl_ctx_new) up as Entity A: its PSK
 * callback hands OpenSSL the handle of
 * kpsa_id, which must be stored on the token; SNI; the cipher suites; and
 * (D)TLS 1.2, with TLS 1.3 too under KPSA_TLS13. Returns 0, or -1 with
 * err.
 */
int kpsa_client_setup(SSL *ssl, struct kpsa_store *store,
                      const struct kpsa_client_config *cfg,
                      char err[KPSA_ERRLEN]);
/* After the handshake, the IdB the connection is bound to; else NULL. */
const char *kpsa_ssl_id_b(const SSL *ssl);

/* ---- Entity B: the server ---- */

struct kpsa_server;

/* The server keeps a reference to store (not owned) and takes map (may be
 * NULL: every connection is then bound to its Credential-ID only). */
struct kpsa_server *kpsa_server_new(struct kpsa_store *store,
                                    struct kpsa_map *map);
void kpsa_server_free(struct kpsa_server *srv);
/* enum kpsa_flags for contexts set up after this call. */
void kpsa_server_set_flags(struct kpsa_server *srv, unsigned flags);
/* Swaps in a new map (owned from now on) for later connections, e.g. after
 * a reload; connections already bound keep what they were bound to. */
void kpsa_server_set_map(struct kpsa_server *srv, struct kpsa_map *map);

/*
 * Sets ctx (from kpsa_ssl_ctx_new) up as Entity B: the PSK callback looks
 * the client's psk_identity up in the store (an unknown or malformed
 * identity ends a (D)TLS 1.2 handshake with the unknown_psk_identity
 * alert, and gets no PSK in TLS 1.3, which then ends in handshake_failure
 * unless the context has a certificate; it costs no token search beyond
 * the store's rate-limited reread); the TS-0003 profile's suites unless
 * ciphers is given; (D)TLS 1.2, with TLS 1.3 too under KPSA_TLS13.
 * Session resumption is off (no session cache, no tickets, none in TLS
 * 1.3 either), so that every association proves possession of the key
 * and is bound anew. srv must outlive ctx. Returns 0, or -1 with err.
 */
int kpsa_server_setup(SSL_CTX *ctx, struct kpsa_server *srv,
                      const char *ciphers, char err[KPSA_ERRLEN]);
/* After the handshake: "12-<KpsaId>" (TS-0003 10.4); else NULL. NULL
 * after a completed handshake means no PSK association (a certificate
 * handshake, should the context allow one): close the connection. */
const char *kpsa_ssl_credential_id(const SSL *ssl);
/* After the handshake: the entity the Credential-ID maps to. */
enum kpsa_entity kpsa_ssl_entity(const SSL *ssl, const char **entity_id);

#ifdef __cplusplus
}
#endif

#endif

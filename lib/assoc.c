/*
 * TS-0003 8.2.2.1, the Provisioned Symmetric Key SAEF over (D)TLS 1.2:
 * psk_identity is the KpsaId and the psk is Kpsa. Here OpenSSL is given
 * the key's handle instead, which the kpsa provider resolves on the token;
 * these callbacks never see a key byte.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>

#include "handle.h"
#include "kpsa.h"
#include "kpsaid.h"
#include "store.h"

#define KPSA_API __attribute__((visibility("default")))

/* TS-0003 10.2.2: TLS implements at least PSK-AES128-CBC-SHA256 and DTLS
 * at least PSK-AES128-CCM8; an infrastructure node serves both. */
#define PROFILE_TLS  "PSK-AES128-CBC-SHA256:PSK-AES128-CCM8"
#define PROFILE_DTLS "PSK-AES128-CCM8:PSK-AES128-CBC-SHA256"
/* A server prefers the profile and also accepts the plain PSK suites that
 * peers offer by default (GnuTLS's NORMAL has neither CBC-SHA256 nor
 * CCM-8); the key schedule is the same for all of them. */
#define SERVER_EXTRA                                                           \
    ":PSK-AES128-GCM-SHA256:PSK-AES256-GCM-SHA384:PSK-CHACHA20-POLY1305"

/* TS-0003 10.4: "12-" and the KpsaId. */
#define CREDENTIAL_PREFIX "12-"
#define CREDENTIAL_MAX    (sizeof(CREDENTIAL_PREFIX) - 1 + KPSAID_MAX)
#define ENTITY_MAX        256
#define IDB_MAX           256

struct kpsa_server {
    struct kpsa_store *store;
    unsigned flags;
    pthread_mutex_t lock; /* guards map against a reload */
    struct kpsa_map *map;
};

/* What one connection is bound to, kept in the SSL's ex_data. */
struct binding {
    char kpsa_id[KPSAID_MAX + 1];
    char handle[HANDLE_LEN + 1];
    char id_b[IDB_MAX + 1];                 /* client side */
    char credential_id[CREDENTIAL_MAX + 1]; /* server side */
    unsigned tls13_hash;
    int identity_nul; /* the ClientKeyExchange's identity holds a NUL */
    enum kpsa_entity entity;
    char entity_id[ENTITY_MAX + 1];
};

static int binding_index = -1, server_index = -1, kpsa_ctx_index = -1;
static pthread_once_t index_once = PTHREAD_ONCE_INIT;

static void binding_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                         long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    OPENSSL_clear_free(ptr, sizeof(struct binding));
}

static void make_indexes(void)
{
    binding_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, binding_free);
    server_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    kpsa_ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static int indexes(void)
{
    pthread_once(&index_once, make_indexes);
    return binding_index >= 0 && server_index >= 0 && kpsa_ctx_index >= 0;
}

static void set_err(char err[KPSA_ERRLEN], const char *fmt, const char *arg)
{
    if (err != NULL)
        snprintf(err, KPSA_ERRLEN, fmt, arg);
}

static void set_err2(char err[KPSA_ERRLEN], const char *fmt, const char *a,
                     const char *b)
{
    if (err != NULL)
        snprintf(err, KPSA_ERRLEN, fmt, a, b);
}

/* The first error OpenSSL queued, for a message a user can act on. */
static const char *ossl_reason(void)
{
    static __thread char buf[256];
    unsigned long e = ERR_peek_error();

    if (e == 0)
        return "no reason given";
    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return buf;
}

/* Returns the SSL's binding, made on first use; NULL when out of memory. */
static struct binding *binding_of(SSL *ssl)
{
    struct binding *b = SSL_get_ex_data(ssl, binding_index);

    if (b != NULL)
        return b;
    b = OPENSSL_zalloc(sizeof(*b));
    if (b != NULL && !SSL_set_ex_data(ssl, binding_index, b)) {
        OPENSSL_free(b);
        b = NULL;
    }
    return b;
}

static const struct binding *finished_binding(const SSL *ssl)
{
    if (binding_index < 0 || !SSL_is_init_finished(ssl))
        return NULL;
    return SSL_get_ex_data(ssl, binding_index);
}

struct kpsa_providers {
    OSSL_PROVIDER *fallback, *kpsa;
};

KPSA_API void kpsa_provider_unload(struct kpsa_providers *loaded)
{
    if (loaded == NULL)
        return;
    OSSL_PROVIDER_unload(loaded->kpsa);
    OSSL_PROVIDER_unload(loaded->fallback);
    free(loaded);
}

KPSA_API struct kpsa_providers *kpsa_provider_load(OSSL_LIB_CTX *libctx,
                                                   const char *provider,
                                                   char err[KPSA_ERRLEN])
{
    const char *name = provider != NULL ? provider : "kpsa";
    struct kpsa_providers *loaded = calloc(1, sizeof(*loaded));

    if (loaded == NULL) {
        set_err(err, "%s", "out of memory");
        return NULL;
    }
    loaded->fallback = OSSL_PROVIDER_load(libctx, "default");
    if (loaded->fallback == NULL) {
        set_err(err, "cannot load OpenSSL's default provider: %s",
                ossl_reason());
        goto fail;
    }
    loaded->kpsa = OSSL_PROVIDER_load(libctx, name);
    if (loaded->kpsa == NULL) {
        set_err2(err, "%s: cannot load the kpsa provider: %s", name,
                 ossl_reason());
        goto fail;
    }
    /* Optional ("?"): what kpsa does not implement still comes from the
     * default provider. */
    if (!EVP_set_default_properties(libctx, "?provider=kpsa")) {
        set_err(err, "cannot prefer the kpsa provider: %s", ossl_reason());
        goto fail;
    }
    return loaded;
fail:
    kpsa_provider_unload(loaded);
    return NULL;
}

/* The provider's own name, whatever path or section name loaded it. */
static int from_kpsa(const OSSL_PROVIDER *prov)
{
    const char *name = NULL;
    OSSL_PARAM params[2];

    params[0] =
        OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_NAME, (char **)&name, 0);
    params[1] = OSSL_PARAM_construct_end();
    return prov != NULL &&
           OSSL_PROVIDER_get_params((OSSL_PROVIDER *)prov, params) &&
           name != NULL && strcmp(name, "kpsa") == 0;
}

static int kdf_from_kpsa(OSSL_LIB_CTX *libctx, const char *propq,
                         const char *alg)
{
    EVP_KDF *kdf = EVP_KDF_fetch(libctx, alg, propq);
    int ok = kdf != NULL && from_kpsa(EVP_KDF_get0_provider(kdf));

    EVP_KDF_free(kdf);
    return ok;
}

KPSA_API SSL_CTX *kpsa_ssl_ctx_new(OSSL_LIB_CTX *libctx, const char *propq,
                                   const SSL_METHOD *method,
                                   char err[KPSA_ERRLEN])
{
    SSL_CTX *ctx;

    if (!indexes()) {
        set_err(err, "%s", "out of memory");
        return NULL;
    }
    if (!kdf_from_kpsa(libctx, propq, "TLS1-PRF") ||
        !kdf_from_kpsa(libctx, propq, "TLS13-KDF")) {
        ERR_clear_error();
        set_err(err, "%s",
                "the kpsa provider does not serve this library context: "
                "load it (kpsa_provider_load or openssl.cnf) and prefer it "
                "(?provider=kpsa), or a handle would be taken for a key");
        return NULL;
    }
    ctx = SSL_CTX_new_ex(libctx, propq, method);
    if (ctx == NULL || !SSL_CTX_set_ex_data(ctx, kpsa_ctx_index, ctx)) {
        set_err(err, "cannot make an SSL_CTX: %s", ossl_reason());
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int made_for_kpsa(SSL_CTX *ctx, char err[KPSA_ERRLEN])
{
    if (indexes() && SSL_CTX_get_ex_data(ctx, kpsa_ctx_index) == ctx)
        return 1;
    set_err(err, "%s",
            "the SSL_CTX was not made by kpsa_ssl_ctx_new, so nothing "
            "shows that the kpsa provider serves it");
    return 0;
}

/* (D)TLS 1.2: TS-0003 10.2.1 names no other version, and the family holds
 * no TLS 1.0 or 1.1 PRF secret; TLS 1.3 when the caller asks for it. */
static int limit_versions(SSL_CTX *ctx, SSL *ssl, int dtls, unsigned flags,
                          char err[KPSA_ERRLEN])
{
    int v = dtls ? DTLS1_2_VERSION : TLS1_2_VERSION;
    int max = (flags & KPSA_TLS13) ? TLS1_3_VERSION : v;
    int ok;

    if (dtls && (flags & KPSA_TLS13)) {
        set_err(err, "%s",
                "TLS 1.3 was asked for over DTLS, and OpenSSL "
                "3.0 has no DTLS 1.3");
        return 0;
    }
    ok = ssl != NULL ? SSL_set_min_proto_version(ssl, v) &&
                           SSL_set_max_proto_version(ssl, max)
                     : SSL_CTX_set_min_proto_version(ctx, v) &&
                           SSL_CTX_set_max_proto_version(ctx, max);
    if (!ok)
        set_err(err, "%s", "cannot set the protocol versions");
    return ok;
}

/* RFC 8446 B.4: TLS_AES_128_GCM_SHA256 and TLS_AES_256_GCM_SHA384. */
static const SSL_CIPHER *tls13_suite(SSL *ssl, unsigned hash)
{
    static const unsigned char sha256[] = {0x13, 0x01}, sha384[] = {0x13, 0x02};

    return SSL_CIPHER_find(ssl, hash == 384 ? sha384 : sha256);
}

/* An external PSK session whose master key is the handle (RFC 8446
 * 4.2.11): the kpsa provider turns it into the early secret's handle. */
static SSL_SESSION *tls13_session(SSL *ssl, const struct binding *b,
                                  unsigned hash)
{
    const SSL_CIPHER *suite = tls13_suite(ssl, hash);
    SSL_SESSION *sess = SSL_SESSION_new();

    if (sess == NULL || suite == NULL ||
        !SSL_SESSION_set1_master_key(sess, (const unsigned char *)b->handle,
                                     HANDLE_LEN) ||
        !SSL_SESSION_set_cipher(sess, suite) ||
        !SSL_SESSION_set_protocol_version(sess, TLS1_3_VERSION)) {
        SSL_SESSION_free(sess);
        return NULL;
    }
    return sess;
}

/* ---- Entity A ---- */

static unsigned int client_psk(SSL *ssl, const char *hint, char *identity,
                               unsigned int max_identity, unsigned char *psk,
                               unsigned int max_psk)
{
    const struct binding *b = SSL_get_ex_data(ssl, binding_index);
    size_t id_len;

    (void)hint;
    if (b == NULL)
        return 0;
    id_len = strlen(b->kpsa_id);
    if (id_len + 1 > max_identity || HANDLE_LEN > max_psk)
        return 0;
    memcpy(identity, b->kpsa_id, id_len + 1);
    memcpy(psk, b->handle, HANDLE_LEN);
    return HANDLE_LEN;
}

/* TLS 1.3: the client offers the KpsaId with a session of the family's
 * hash; after a HelloRetryRequest for another hash it offers none. */
static int client_session(SSL *ssl, const EVP_MD *md, const unsigned char **id,
                          size_t *id_len, SSL_SESSION **sess)
{
    const struct binding *b = SSL_get_ex_data(ssl, binding_index);

    *sess = NULL;
    if (b == NULL)
        return 0;
    if (md != NULL && EVP_MD_get_size(md) != (b->tls13_hash == 384 ? 48 : 32))
        return 1;
    *sess = tls13_session(ssl, b, b->tls13_hash);
    if (*sess == NULL)
        return 0;
    *id = (const unsigned char *)b->kpsa_id;
    *id_len = strlen(b->kpsa_id);
    return 1;
}

static int client_names(struct binding *b, struct kpsa_store *store,
                        const struct kpsa_client_config *cfg,
                        char err[KPSA_ERRLEN])
{
    char why[KPSAID_ERR_MAX];

    if (cfg->kpsa_id == NULL ||
        kpsaid_canonicalize(cfg->kpsa_id, strlen(cfg->kpsa_id),
                            KPSAID_ALLOW_UNDERSCORE, b->kpsa_id, why) != 0) {
        set_err2(err, "%s: %s", cfg->kpsa_id ? "KpsaId" : "(none)",
                 cfg->kpsa_id ? why : "a client needs its KpsaId");
        return -1;
    }
    if (!store_has(store, b->kpsa_id)) {
        set_err(err, "%s: no whole key family of this KpsaId on the token",
                b->kpsa_id);
        return -1;
    }
    /* TS-0003 8.2.2.1: the client binds the association to IdB. */
    if (cfg->id_b == NULL || cfg->id_b[0] == '\0' ||
        strlen(cfg->id_b) > IDB_MAX) {
        set_err(err, "%s: IdB, the entity to reach, is missing or too long",
                b->kpsa_id);
        return -1;
    }
    if (cfg->sni_host == NULL || cfg->sni_host[0] == '\0') {
        set_err(err, "%s: SNI is required (TS-0003 10.2.1): give a host name",
                b->kpsa_id);
        return -1;
    }
    snprintf(b->id_b, sizeof(b->id_b), "%s", cfg->id_b);
    b->tls13_hash = store_tls13_hash(store, b->kpsa_id);
    return handle_of(b->kpsa_id, b->handle);
}

KPSA_API int kpsa_client_setup(SSL *ssl, struct kpsa_store *store,
                               const struct kpsa_client_config *cfg,
                               char err[KPSA_ERRLEN])
{
    int dtls = SSL_is_dtls(ssl);
    const char *ciphers = cfg->ciphers ? cfg->ciphers
                          : dtls       ? PROFILE_DTLS
                                       : PROFILE_TLS;
    struct binding *b;

    if (!made_for_kpsa(SSL_get_SSL_CTX(ssl), err))
        return -1;
    if ((b = binding_of(ssl)) == NULL) {
        set_err(err, "%s", "out of memory");
        return -1;
    }
    if (client_names(b, store, cfg, err) != 0)
        return -1;
    if (!SSL_set_tlsext_host_name(ssl, cfg->sni_host)) {
        set_err(err, "%s: not a host name OpenSSL can send in SNI",
                cfg->sni_host);
        return -1;
    }
    if (!SSL_set_cipher_list(ssl, ciphers)) {
        set_err(err, "%s: no usable cipher suite in this list", ciphers);
        return -1;
    }
    if (!limit_versions(NULL, ssl, dtls, cfg->flags, err))
        return -1;
    if ((cfg->flags & KPSA_TLS13) &&
        !SSL_set_ciphersuites(ssl, b->tls13_hash == 384
                                       ? "TLS_AES_256_GCM_SHA384"
                                       : "TLS_AES_128_GCM_SHA256:"
                                         "TLS_CHACHA20_POLY1305_SHA256")) {
        set_err(err, "%s", "cannot set the TLS 1.3 suites");
        return -1;
    }
    SSL_set_psk_client_callback(ssl, client_psk);
    SSL_set_psk_use_session_callback(ssl, client_session);
    return 0;
}

KPSA_API const char *kpsa_ssl_id_b(const SSL *ssl)
{
    const struct binding *b = finished_binding(ssl);

    return b != NULL && b->id_b[0] != '\0' ? b->id_b : NULL;
}

/* ---- Entity B ---- */

KPSA_API struct kpsa_server *kpsa_server_new(struct kpsa_store *store,
                                             struct kpsa_map *map)
{
    struct kpsa_server *srv = calloc(1, sizeof(*srv));

    if (srv == NULL)
        return NULL;
    srv->store = store;
    srv->map = map;
    pthread_mutex_init(&srv->lock, NULL);
    return srv;
}

KPSA_API void kpsa_server_free(struct kpsa_server *srv)
{
    if (srv == NULL)
        return;
    kpsa_map_free(srv->map);
    pthread_mutex_destroy(&srv->lock);
    free(srv);
}

KPSA_API void kpsa_server_set_flags(struct kpsa_server *srv, unsigned flags)
{
    srv->flags = flags;
}

KPSA_API void kpsa_server_set_map(struct kpsa_server *srv, struct kpsa_map *map)
{
    struct kpsa_map *old;

    pthread_mutex_lock(&srv->lock);
    old = srv->map;
    srv->map = map;
    pthread_mutex_unlock(&srv->lock);
    kpsa_map_free(old);
}

/* TS-0003 8.2.1: bind to the Credential-ID, and to the entity the
 * operator's map gives for it. */
static void bind_entity(struct kpsa_server *srv, struct binding *b)
{
    const char *entity_id = NULL;

    snprintf(b->credential_id, sizeof(b->credential_id), "%s%s",
             CREDENTIAL_PREFIX, b->kpsa_id);
    pthread_mutex_lock(&srv->lock);
    b->entity = kpsa_map_lookup(srv->map, b->credential_id, &entity_id);
    snprintf(b->entity_id, sizeof(b->entity_id), "%s",
             entity_id != NULL ? entity_id : "");
    pthread_mutex_unlock(&srv->lock);
}

/*
 * Returning 0 makes libssl end the handshake with unknown_psk_identity
 * (RFC 4279 2): for a malformed identity and for one the index does not
 * hold, neither of which reaches the token.
 */
static unsigned int server_psk(SSL *ssl, const char *identity,
                               unsigned char *psk, unsigned int max_psk)
{
    struct kpsa_server *srv =
        SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), server_index);
    const struct binding *seen = SSL_get_ex_data(ssl, binding_index);
    char canonical[KPSAID_MAX + 1], why[KPSAID_ERR_MAX];
    struct binding *b;

    /* TLS 1.3 identities go to server_session alone: libssl would offer a
     * refused one here again, cut at its first NUL. */
    if ((!SSL_is_dtls(ssl) && SSL_version(ssl) >= TLS1_3_VERSION) ||
        (seen != NULL && seen->identity_nul))
        return 0;
    if (srv == NULL || identity == NULL || max_psk < HANDLE_LEN ||
        kpsaid_canonicalize(identity, strlen(identity), KPSAID_ALLOW_UNDERSCORE,
                            canonical, why) != 0 ||
        !store_has(srv->store, canonical) || (b = binding_of(ssl)) == NULL)
        return 0;
    memcpy(b->kpsa_id, canonical, sizeof(canonical));
    if (handle_of(b->kpsa_id, b->handle) != 0)
        return 0;
    bind_entity(srv, b);
    memcpy(psk, b->handle, HANDLE_LEN);
    return HANDLE_LEN;
}

/* TLS 1.3 (RFC 8446 4.2.11): the identity as sent, not NUL-terminated.
 * An unknown one gives no session, and the handshake fails without a
 * token search; a known one a session of its family's hash. */
static int server_session(SSL *ssl, const unsigned char *identity,
                          size_t identity_len, SSL_SESSION **sess)
{
    struct kpsa_server *srv =
        SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), server_index);
    char canonical[KPSAID_MAX + 1], why[KPSAID_ERR_MAX];
    struct binding *b;

    *sess = NULL;
    if (srv == NULL ||
        kpsaid_canonicalize((const char *)identity, identity_len,
                            KPSAID_ALLOW_UNDERSCORE, canonical, why) != 0 ||
        !store_has(srv->store, canonical) || (b = binding_of(ssl)) == NULL)
        return 1;
    memcpy(b->kpsa_id, canonical, sizeof(canonical));
    if (handle_of(b->kpsa_id, b->handle) != 0)
        return 0;
    b->tls13_hash = store_tls13_hash(srv->store, b->kpsa_id);
    *sess = tls13_session(ssl, b, b->tls13_hash);
    if (*sess == NULL)
        return 0;
    bind_entity(srv, b);
    return 1;
}

/*
 * libssl hands the TLS 1.2 PSK callback the identity as a C string, cut at
 * its first NUL, so "a@b.example\0junk" would pass for a@b.example. The
 * ClientKeyExchange (RFC 4279 2: psk_identity<0..2^16-1> first, whatever
 * the key exchange) is seen here before it is processed.
 */
static void watch_identity(int write_p, int version, int content_type,
                           const void *buf, size_t len, SSL *ssl, void *arg)
{
    const unsigned char *m = buf;
    size_t n;
    struct binding *b;

    (void)version;
    (void)arg;
    if (write_p || content_type != SSL3_RT_HANDSHAKE || len < 6 ||
        m[0] != SSL3_MT_CLIENT_KEY_EXCHANGE)
        return;
    /* DTLS handshake headers are 12 bytes, TLS ones 4. */
    m += SSL_is_dtls(ssl) ? 12 : 4;
    len -= SSL_is_dtls(ssl) ? 12 : 4;
    if (len < 2)
        return;
    n = (size_t)m[0] << 8 | m[1];
    if (n <= len - 2 && memchr(m + 2, 0, n) != NULL &&
        (b = binding_of(ssl)) != NULL)
        b->identity_nul = 1;
}

static int ctx_is_dtls(SSL_CTX *ctx)
{
    SSL *probe = SSL_new(ctx);
    int dtls = probe != NULL && SSL_is_dtls(probe);

    SSL_free(probe);
    return dtls;
}

KPSA_API int kpsa_server_setup(SSL_CTX *ctx, struct kpsa_server *srv,
                               const char *ciphers, char err[KPSA_ERRLEN])
{
    int dtls = ctx_is_dtls(ctx);

    if (ciphers == NULL)
        ciphers = dtls ? PROFILE_DTLS SERVER_EXTRA : PROFILE_TLS SERVER_EXTRA;
    if (!made_for_kpsa(ctx, err))
        return -1;
    if (!SSL_CTX_set_ex_data(ctx, server_index, srv)) {
        set_err(err, "%s", "out of memory");
        return -1;
    }
    if (!SSL_CTX_set_cipher_list(ctx, ciphers)) {
        set_err(err, "%s: no usable cipher suite in this list", ciphers);
        return -1;
    }
    if (!limit_versions(ctx, NULL, dtls, srv->flags, err))
        return -1;
    /* No resumption: every association runs the PSK exchange, so it
     * proves possession of Kpsa and is bound to its Credential-ID. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* TLS 1.3 sends tickets whatever SSL_OP_NO_TICKET says. */
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_options(ctx,
                        SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
    SSL_CTX_set_psk_server_callback(ctx, server_psk);
    SSL_CTX_set_msg_callback(ctx, watch_identity);
    if (srv->flags & KPSA_TLS13)
        SSL_CTX_set_psk_find_session_callback(ctx, server_session);
    return 0;
}

KPSA_API const char *kpsa_ssl_credential_id(const SSL *ssl)
{
    const struct binding *b = finished_binding(ssl);

    return b != NULL && b->credential_id[0] != '\0' ? b->credential_id : NULL;
}

KPSA_API enum kpsa_entity kpsa_ssl_entity(const SSL *ssl,
                                          const char **entity_id)
{
    const struct binding *b = finished_binding(ssl);

    if (entity_id != NULL)
        *entity_id =
            b != NULL && b->entity != KPSA_ENTITY_NONE ? b->entity_id : NULL;
    return b != NULL ? b->entity : KPSA_ENTITY_NONE;
}

/*
 * Whole handshakes with both ends in this process: TLS over a BIO pair,
 * DTLS over two connected non-blocking UDP sockets on 127.0.0.1 (OpenSSL
 * 3.0 has no datagram BIO pair). The same code drives the baseline (raw
 * key, default provider) and kpsa (handle, kpsa preferred): only the
 * library context and the PSK bytes differ.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>

#include "bench.h"

const struct proto_def bench_protos[PROTO_COUNT] = {
    [PROTO_TLS12_CBC] = {"tls1.2-cbc", "TLS 1.2 PSK-AES128-CBC-SHA256", 0, 0,
                         "PSK-AES128-CBC-SHA256"},
    [PROTO_TLS12_CCM8] = {"tls1.2-ccm8", "TLS 1.2 PSK-AES128-CCM8", 0, 0,
                          "PSK-AES128-CCM8"},
    [PROTO_DTLS12_CCM8] = {"dtls1.2-ccm8", "DTLS 1.2 PSK-AES128-CCM8", 1, 0,
                           "PSK-AES128-CCM8"},
    [PROTO_TLS13] = {"tls1.3-dhe", "TLS 1.3 psk_dhe_ke, SHA-256", 0, 1,
                     "TLS_AES_128_GCM_SHA256"},
};

/* ---- library contexts ---- */

static void lib_err(char err[BENCH_ERRLEN], const char *what)
{
    unsigned long e = ERR_get_error();
    char reason[256] = "no reason given";

    if (e != 0)
        ERR_error_string_n(e, reason, sizeof(reason));
    snprintf(err, BENCH_ERRLEN, "%s: %s", what, reason);
    ERR_clear_error();
}

int bench_lib_plain(struct bench_lib *lib, char err[BENCH_ERRLEN])
{
    memset(lib, 0, sizeof(*lib));
    lib->ctx = OSSL_LIB_CTX_new();
    if (lib->ctx != NULL)
        lib->fallback = OSSL_PROVIDER_load(lib->ctx, "default");
    if (lib->fallback == NULL) {
        lib_err(err, "cannot load OpenSSL's default provider");
        bench_lib_free(lib);
        return -1;
    }
    return 0;
}

/* Without kpsa's TLS1-PRF a handle would be taken for key bytes. The
 * provider's own name, whatever path loaded it. */
static int kdf_is_kpsa(OSSL_LIB_CTX *ctx, const char *alg)
{
    EVP_KDF *kdf = EVP_KDF_fetch(ctx, alg, NULL);
    const char *name = NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_NAME, (char **)&name, 0),
        OSSL_PARAM_END,
    };
    int ok = kdf != NULL &&
             OSSL_PROVIDER_get_params(
                 (OSSL_PROVIDER *)EVP_KDF_get0_provider(kdf), params) &&
             name != NULL && strcmp(name, "kpsa") == 0;

    EVP_KDF_free(kdf);
    return ok;
}

int bench_lib_kpsa(struct bench_lib *lib, const char *provider,
                   char err[BENCH_ERRLEN])
{
    if (bench_lib_plain(lib, err) != 0)
        return -1;
    lib->kpsa = OSSL_PROVIDER_load(lib->ctx, provider);
    if (lib->kpsa == NULL) {
        lib_err(err, "cannot load the kpsa provider");
        goto fail;
    }
    if (!EVP_set_default_properties(lib->ctx, "?provider=kpsa")) {
        lib_err(err, "cannot prefer kpsa");
        goto fail;
    }
    if (!kdf_is_kpsa(lib->ctx, "TLS1-PRF") ||
        !kdf_is_kpsa(lib->ctx, "TLS13-KDF")) {
        snprintf(err, BENCH_ERRLEN, "%s: TLS1-PRF does not come from kpsa",
                 provider);
        goto fail;
    }
    return 0;
fail:
    bench_lib_free(lib);
    return -1;
}

void bench_lib_free(struct bench_lib *lib)
{
    if (lib->kpsa != NULL)
        OSSL_PROVIDER_unload(lib->kpsa);
    if (lib->fallback != NULL)
        OSSL_PROVIDER_unload(lib->fallback);
    OSSL_LIB_CTX_free(lib->ctx);
    memset(lib, 0, sizeof(*lib));
}

uint64_t bench_token_ops(void *kpsa_provider)
{
    uint64_t ops = 0;
    OSSL_PARAM params[] = {
        OSSL_PARAM_uint64("kpsa-token-ops", &ops),
        OSSL_PARAM_END,
    };

    if (kpsa_provider == NULL ||
        !OSSL_PROVIDER_get_params(kpsa_provider, params))
        return 0;
    return ops;
}

/* ---- PSK callbacks ---- */

static const struct bench_psk *psk_of(SSL *ssl)
{
    return SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
}

/* A client may be told to send another identity (the flood's). */
static const char *identity_of(SSL *ssl, const struct bench_psk *psk)
{
    const char *forced = SSL_get_app_data(ssl);

    return forced != NULL ? forced : psk->identity;
}

static unsigned int server_psk(SSL *ssl, const char *identity,
                               unsigned char *out, unsigned int max)
{
    const struct bench_psk *psk = psk_of(ssl);

    if (identity == NULL || strcmp(identity, psk->identity) != 0 ||
        psk->len > max)
        return 0;
    memcpy(out, psk->bytes, psk->len);
    return (unsigned int)psk->len;
}

static unsigned int client_psk(SSL *ssl, const char *hint, char *identity,
                               unsigned int max_identity, unsigned char *out,
                               unsigned int max)
{
    const struct bench_psk *psk = psk_of(ssl);
    const char *id = identity_of(ssl, psk);
    size_t id_len = strlen(id);

    (void)hint;
    if (id_len + 1 > max_identity || psk->len > max)
        return 0;
    memcpy(identity, id, id_len + 1);
    memcpy(out, psk->bytes, psk->len);
    return (unsigned int)psk->len;
}

/* RFC 8446 4.2.11: an external PSK is a session whose master key is the
 * PSK; TLS_AES_128_GCM_SHA256 fixes its hash to SHA-256. */
static SSL_SESSION *psk_session(SSL *ssl, const struct bench_psk *psk)
{
    static const unsigned char aes128gcm[] = {0x13, 0x01};
    const SSL_CIPHER *suite = SSL_CIPHER_find(ssl, aes128gcm);
    SSL_SESSION *sess = SSL_SESSION_new();

    if (sess == NULL || suite == NULL ||
        !SSL_SESSION_set1_master_key(sess, psk->bytes, psk->len) ||
        !SSL_SESSION_set_cipher(sess, suite) ||
        !SSL_SESSION_set_protocol_version(sess, TLS1_3_VERSION)) {
        SSL_SESSION_free(sess);
        return NULL;
    }
    return sess;
}

static int client_session(SSL *ssl, const EVP_MD *md, const unsigned char **id,
                          size_t *id_len, SSL_SESSION **sess)
{
    const struct bench_psk *psk = psk_of(ssl);
    const char *name = identity_of(ssl, psk);

    *sess = NULL;
    if (md != NULL && EVP_MD_get_size(md) != 32)
        return 1;
    *sess = psk_session(ssl, psk);
    if (*sess == NULL)
        return 0;
    *id = (const unsigned char *)name;
    *id_len = strlen(name);
    return 1;
}

static int server_session(SSL *ssl, const unsigned char *id, size_t id_len,
                          SSL_SESSION **sess)
{
    const struct bench_psk *psk = psk_of(ssl);

    *sess = NULL;
    if (id_len == strlen(psk->identity) &&
        memcmp(id, psk->identity, id_len) == 0)
        *sess = psk_session(ssl, psk);
    return 1;
}

SSL_CTX *hs_ctx_new(OSSL_LIB_CTX *libctx, enum bench_proto proto, int server,
                    const struct bench_psk *psk)
{
    const struct proto_def *d = &bench_protos[proto];
    const SSL_METHOD *method =
        d->dtls ? (server ? DTLS_server_method() : DTLS_client_method())
                : (server ? TLS_server_method() : TLS_client_method());
    int v = d->dtls    ? DTLS1_2_VERSION
            : d->tls13 ? TLS1_3_VERSION
                       : TLS1_2_VERSION;
    SSL_CTX *ctx = SSL_CTX_new_ex(libctx, NULL, method);
    int ok;

    if (ctx == NULL)
        return NULL;
    ok = SSL_CTX_set_min_proto_version(ctx, v) &&
         SSL_CTX_set_max_proto_version(ctx, v) &&
         SSL_CTX_set_app_data(ctx, (void *)psk) &&
         (d->tls13 ? SSL_CTX_set_ciphersuites(ctx, d->ciphers)
                   : SSL_CTX_set_cipher_list(ctx, d->ciphers));
    /* Every handshake a full one: no session cache, no tickets. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (d->tls13 && server)
        SSL_CTX_set_psk_find_session_callback(ctx, server_session);
    else if (d->tls13)
        SSL_CTX_set_psk_use_session_callback(ctx, client_session);
    else if (server)
        SSL_CTX_set_psk_server_callback(ctx, server_psk);
    else
        SSL_CTX_set_psk_client_callback(ctx, client_psk);
    if (!ok) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* ---- carriers ---- */

static int udp_socket(struct sockaddr_in *addr)
{
    socklen_t len = sizeof(*addr);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) != 0 ||
        getsockname(fd, (struct sockaddr *)addr, &len) != 0 ||
        fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int udp_open(struct hs_pair *pair)
{
    struct sockaddr_in addr[2];

    for (int i = 0; i < 2; i++) {
        if ((pair->fd[i] = udp_socket(&addr[i])) < 0)
            return -1;
        pair->sockets++;
    }
    for (int i = 0; i < 2; i++) {
        const struct sockaddr_in *to = &addr[1 - i];

        if (connect(pair->fd[i], (const struct sockaddr *)to, sizeof(*to)) != 0)
            return -1;
        pair->peer[i] = BIO_ADDR_new();
        if (pair->peer[i] == NULL ||
            !BIO_ADDR_rawmake(pair->peer[i], AF_INET, &to->sin_addr,
                              sizeof(to->sin_addr), to->sin_port))
            return -1;
    }
    return 0;
}

/* A failed attempt may leave datagrams behind; none may reach the next. */
static void udp_drain(int fd)
{
    unsigned char buf[2048];

    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
        ;
}

int hs_pair_init(struct hs_pair *pair, enum bench_proto proto, SSL_CTX *cctx,
                 SSL_CTX *sctx)
{
    memset(pair, 0, sizeof(*pair));
    pair->proto = proto;
    pair->cctx = cctx;
    pair->sctx = sctx;
    pair->fd[0] = pair->fd[1] = -1;
    pair->rng = (uint64_t)(bench_now() * 1e9) ^ (uint64_t)(uintptr_t)pair;
    if (cctx == NULL || sctx == NULL ||
        (bench_protos[proto].dtls && udp_open(pair) != 0)) {
        hs_pair_clear(pair);
        return -1;
    }
    return 0;
}

void hs_pair_clear(struct hs_pair *pair)
{
    SSL_CTX_free(pair->cctx);
    SSL_CTX_free(pair->sctx);
    for (int i = 0; i < 2; i++) {
        if (i < pair->sockets)
            close(pair->fd[i]);
        BIO_ADDR_free(pair->peer[i]);
        pair->fd[i] = -1;
        pair->peer[i] = NULL;
    }
    pair->sockets = 0;
    pair->cctx = pair->sctx = NULL;
}

static int attach_dgram(struct hs_pair *pair, SSL *ssl, int i)
{
    BIO *bio = BIO_new_dgram(pair->fd[i], BIO_NOCLOSE);

    if (bio == NULL)
        return 0;
    BIO_ctrl_set_connected(bio, pair->peer[i]);
    SSL_set_bio(ssl, bio, bio);
    return 1;
}

static int attach(struct hs_pair *pair, SSL *client, SSL *server)
{
    BIO *a = NULL, *b = NULL;

    if (bench_protos[pair->proto].dtls) {
        udp_drain(pair->fd[0]);
        udp_drain(pair->fd[1]);
        return attach_dgram(pair, client, 0) && attach_dgram(pair, server, 1);
    }
    if (!BIO_new_bio_pair(&a, 0, &b, 0))
        return 0;
    SSL_set_bio(client, a, a);
    SSL_set_bio(server, b, b);
    return 1;
}

/* ---- one handshake ---- */

/* -1 failed, 0 wants more, 1 finished. */
static int advance(SSL *ssl)
{
    int rc;

    /* SSL_get_error reads the thread's queue, which lazy initialisation
     * elsewhere may have left behind. */
    ERR_clear_error();
    rc = SSL_do_handshake(ssl);
    if (rc == 1)
        return 1;
    return SSL_get_error(ssl, rc) == SSL_ERROR_WANT_READ ? 0 : -1;
}

/* DTLS cannot lose datagrams on the loopback unless a buffer overflows;
 * then the retransmission timer recovers, and a stuck attempt gives up. */
static int pump(struct hs_pair *pair, SSL *client, SSL *server)
{
    int dtls = bench_protos[pair->proto].dtls;
    double give_up = dtls ? bench_now() + 3.0 : 0;

    for (int round = 0;; round++) {
        int c = advance(client), s = advance(server);

        if (c < 0 || s < 0)
            return 0;
        if (c == 1 && s == 1)
            return 1;
        if (!dtls && round > 64)
            return 0;
        if (dtls && round % 256 == 255) {
            if (bench_now() > give_up)
                return 0;
            DTLSv1_handle_timeout(client);
            DTLSv1_handle_timeout(server);
        }
    }
}

/* xorshift64: made-up identities need no cryptographic randomness. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

int hs_once(struct hs_pair *pair)
{
    double t0 = bench_now();
    SSL *client = SSL_new(pair->cctx), *server = SSL_new(pair->sctx);
    int ok = 0;

    if (client == NULL || server == NULL || !attach(pair, client, server))
        goto out;
    if (pair->random_identity) {
        snprintf(pair->identity, sizeof(pair->identity),
                 "flood-%016llx@flood.example.com",
                 (unsigned long long)next_random(&pair->rng));
        SSL_set_app_data(client, pair->identity);
    }
    SSL_set_connect_state(client);
    SSL_set_accept_state(server);
    ok = pump(pair, client, server);
out:
    SSL_free(client);
    SSL_free(server);
    ERR_clear_error();
    if (ok && bench_now() - t0 > pair->longest)
        pair->longest = bench_now() - t0;
    return ok;
}

int hs_step(void *state)
{
    return hs_once(state);
}

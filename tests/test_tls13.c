/*
 * TLS 1.3 external PSK through libkpsa and the kpsa provider, in memory,
 * against a peer in a library context of its own that has only OpenSSL's
 * default provider and the raw key: SHA-256 and SHA-384 PSKs (RFC 8446
 * 4.2.11), psk_dhe_ke and psk_ke, kpsa as server and as client, and a
 * wrong key. Environment: KPSA_PROVIDER (path of kpsa.so), the token's
 * KPSA_MODULE, KPSA_TOKEN and KPSA_PIN_SOURCE; KPSA_ID256 and KPSA_KEY256
 * (hex), KPSA_ID384 and KPSA_KEY384, whose family holds the SHA-384
 * members.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>

#include "kat.h"
#include "kpsa.h"
#include "tlspair.h"

struct peer_key {
    const char *id;
    unsigned char key[64];
    size_t len;
    unsigned hash;
};

static struct peer_key peer;
static OSSL_LIB_CTX *kpsa_ctx, *plain_ctx;
static struct kpsa_store *store;

static SSL_SESSION *raw_session(SSL *ssl)
{
    static const unsigned char sha256[] = {0x13, 0x01}, sha384[] = {0x13, 0x02};
    const SSL_CIPHER *suite =
        SSL_CIPHER_find(ssl, peer.hash == 384 ? sha384 : sha256);
    SSL_SESSION *sess = SSL_SESSION_new();

    if (sess == NULL || suite == NULL ||
        !SSL_SESSION_set1_master_key(sess, peer.key, peer.len) ||
        !SSL_SESSION_set_cipher(sess, suite) ||
        !SSL_SESSION_set_protocol_version(sess, TLS1_3_VERSION)) {
        SSL_SESSION_free(sess);
        return NULL;
    }
    return sess;
}

static int peer_use(SSL *ssl, const EVP_MD *md, const unsigned char **id,
                    size_t *id_len, SSL_SESSION **sess)
{
    (void)md;
    *sess = raw_session(ssl);
    *id = (const unsigned char *)peer.id;
    *id_len = strlen(peer.id);
    return *sess != NULL;
}

static int peer_find(SSL *ssl, const unsigned char *id, size_t id_len,
                     SSL_SESSION **sess)
{
    *sess = NULL;
    if (id_len == strlen(peer.id) && memcmp(id, peer.id, id_len) == 0)
        *sess = raw_session(ssl);
    return 1;
}

static SSL *plain_end(int server, int ke)
{
    SSL_CTX *ctx = SSL_CTX_new_ex(
        plain_ctx, NULL, server ? TLS_server_method() : TLS_client_method());
    SSL *ssl = NULL;

    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_ciphersuites(ctx, peer.hash == 384 ? "TLS_AES_256_GCM_SHA384"
                                                   : "TLS_AES_128_GCM_SHA256");
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    /* psk_ke: both ends allow it and share no group (RFC 8446 4.2.9). */
    if (ke) {
        SSL_CTX_set_options(ctx, SSL_OP_ALLOW_NO_DHE_KEX);
        SSL_CTX_set1_groups_list(ctx, server ? "X448" : "P-256");
    }
    if (server)
        SSL_CTX_set_psk_find_session_callback(ctx, peer_find);
    else
        SSL_CTX_set_psk_use_session_callback(ctx, peer_use);
    ssl = SSL_new(ctx);
    SSL_CTX_free(ctx);
    return ssl;
}

static SSL *kpsa_end(int server, int ke, struct kpsa_server *srv)
{
    char err[KPSA_ERRLEN];
    SSL_CTX *ctx = kpsa_ssl_ctx_new(
        kpsa_ctx, NULL, server ? TLS_server_method() : TLS_client_method(),
        err);
    struct kpsa_client_config cfg = {peer.id, "/in-cse", "in-cse.example.net",
                                     NULL, KPSA_TLS13};
    SSL *ssl = NULL;
    int ok;

    if (ctx == NULL) {
        tap_diag("%s", err);
        return NULL;
    }
    if (ke) {
        SSL_CTX_set_options(ctx, SSL_OP_ALLOW_NO_DHE_KEX);
        SSL_CTX_set1_groups_list(ctx, server ? "X448" : "P-256");
    }
    if (server)
        kpsa_server_set_flags(srv, KPSA_TLS13);
    ok = !server || kpsa_server_setup(ctx, srv, NULL, err) == 0;
    if (ok)
        ssl = SSL_new(ctx);
    if (ssl != NULL && !server &&
        kpsa_client_setup(ssl, store, &cfg, err) != 0) {
        SSL_free(ssl);
        ssl = NULL;
        ok = 0;
    }
    if (!ok)
        tap_diag("%s", err);
    SSL_CTX_free(ctx);
    return ssl;
}

static int run(SSL *client, SSL *server)
{
    return tlspair_run(client, server) && SSL_version(client) == TLS1_3_VERSION;
}

static int diag_error(const char *line, size_t len, void *arg)
{
    (void)arg;
    tap_diag("%.*s", (int)len - 1, line);
    return 1;
}

static void cell(int kpsa_server, int ke, int wrong)
{
    struct kpsa_server *srv = kpsa_server_new(store, NULL);
    SSL *k = kpsa_end(kpsa_server, ke, srv), *p = plain_end(!kpsa_server, ke);
    const char *want = NULL, *got;
    int ok;

    if (wrong)
        peer.key[0] ^= 0x01;
    ok = k != NULL && p != NULL && (kpsa_server ? run(p, k) : run(k, p));
    if (wrong)
        peer.key[0] ^= 0x01;
    if (ok && kpsa_server) {
        got = kpsa_ssl_credential_id(k);
        ok = got != NULL && strncmp(got, "12-", 3) == 0 &&
             strcmp(got + 3, peer.id) == 0;
    } else if (ok) {
        want = "/in-cse";
        got = kpsa_ssl_id_b(k);
        ok = got != NULL && strcmp(got, want) == 0;
    }
    tap_check(wrong ? !ok : ok, "TLS 1.3, SHA-%u PSK, %s, %s: %s", peer.hash,
              ke ? "psk_ke" : "psk_dhe_ke",
              kpsa_server ? "OpenSSL client -> kpsa server"
                          : "kpsa client -> OpenSSL server",
              wrong ? "a wrong key fails" : "bound and a record each way");
    if (!(wrong ? !ok : ok))
        ERR_print_errors_cb(diag_error, NULL);
    ERR_clear_error();
    SSL_free(k);
    SSL_free(p);
    kpsa_server_free(srv);
}

static int take_key(const char *id_var, const char *key_var, unsigned hash)
{
    long len = 0;
    unsigned char *key = OPENSSL_hexstr2buf(getenv(key_var), &len);

    peer.id = getenv(id_var);
    peer.hash = hash;
    if (peer.id == NULL || key == NULL || len <= 0 || len > 64) {
        OPENSSL_free(key);
        return -1;
    }
    memcpy(peer.key, key, (size_t)len);
    peer.len = (size_t)len;
    OPENSSL_clear_free(key, (size_t)len);
    return 0;
}

int main(void)
{
    struct kpsa_store_config cfg = {NULL, NULL, NULL};
    struct kpsa_providers *loaded;
    OSSL_PROVIDER *fallback;
    char err[KPSA_ERRLEN] = "";

    kpsa_ctx = OSSL_LIB_CTX_new();
    plain_ctx = OSSL_LIB_CTX_new();
    loaded = kpsa_provider_load(kpsa_ctx, getenv("KPSA_PROVIDER"), err);
    fallback = OSSL_PROVIDER_load(plain_ctx, "default");
    if (loaded == NULL || fallback == NULL ||
        (store = kpsa_store_open(&cfg, err)) == NULL) {
        printf("Bail out! %s\n", err);
        return 1;
    }
    for (unsigned hash = 256; hash <= 384; hash += 128) {
        if (take_key(hash == 256 ? "KPSA_ID256" : "KPSA_ID384",
                     hash == 256 ? "KPSA_KEY256" : "KPSA_KEY384", hash) != 0) {
            printf("Bail out! KPSA_ID%u and KPSA_KEY%u\n", hash, hash);
            return 1;
        }
        for (int side = 0; side < 2; side++)
            for (int ke = 0; ke < 2; ke++)
                cell(side, ke, 0);
        cell(1, 0, 1);
        cell(0, 0, 1);
    }
    OPENSSL_cleanse(peer.key, sizeof(peer.key));
    kpsa_store_free(store);
    kpsa_provider_unload(loaded);
    OSSL_LIB_CTX_free(kpsa_ctx);
    OSSL_PROVIDER_unload(fallback);
    OSSL_LIB_CTX_free(plain_ctx);
    return tap_finish();
}

/*
 * One kpsa provider shared by several threads, each running TLS 1.2 PSK
 * handshakes in memory against a peer that holds the raw key; then a child
 * made by fork() after the provider was used runs handshakes of its own;
 * last, handshakes run while another thread keeps asking for a handle the
 * token does not hold, which makes the provider reread its index beside
 * them.
 * Run under ThreadSanitizer by scripts/test. Environment: OPENSSL_CONF_KPSA
 * (an openssl.cnf loading kpsa), KPSA_HANDLE and KPSA_KEY (hex), KPSA_ID.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>

#include "unknown.h"

#define THREADS    4
#define HANDSHAKES 25

static OSSL_LIB_CTX *kpsa_ctx;
static unsigned char handle[64], key[64];
static long handle_len, key_len;
static const char *kpsa_id;

static unsigned int server_psk(SSL *ssl, const char *identity,
                               unsigned char *psk, unsigned int max)
{
    (void)ssl;
    if (strcmp(identity, kpsa_id) != 0 || (unsigned)handle_len > max)
        return 0;
    memcpy(psk, handle, (size_t)handle_len);
    return (unsigned int)handle_len;
}

static unsigned int client_psk(SSL *ssl, const char *hint, char *identity,
                               unsigned int max_identity, unsigned char *psk,
                               unsigned int max)
{
    (void)ssl;
    (void)hint;
    snprintf(identity, max_identity, "%s", kpsa_id);
    if ((unsigned)key_len > max)
        return 0;
    memcpy(psk, key, (size_t)key_len);
    return (unsigned int)key_len;
}

static SSL_CTX *make_ctx(OSSL_LIB_CTX *libctx, int server)
{
    SSL_CTX *ctx = SSL_CTX_new_ex(libctx, NULL, TLS_method());

    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(ctx, "PSK-AES128-CBC-SHA256");
    if (server)
        SSL_CTX_set_psk_server_callback(ctx, server_psk);
    else
        SSL_CTX_set_psk_client_callback(ctx, client_psk);
    return ctx;
}

static int pump(SSL *client, SSL *server)
{
    for (int i = 0; i < 100; i++) {
        int c, s;

        /* SSL_get_error reads the thread's error queue, which lazy
         * initialisation elsewhere in libcrypto may have left behind. */
        ERR_clear_error();
        c = SSL_do_handshake(client);
        if (c <= 0 && SSL_get_error(client, c) != SSL_ERROR_WANT_READ)
            return 0;
        ERR_clear_error();
        s = SSL_do_handshake(server);
        if (s <= 0 && SSL_get_error(server, s) != SSL_ERROR_WANT_READ)
            return 0;
        if (c == 1 && s == 1)
            return 1;
    }
    return 0;
}

/* One handshake over a BIO pair; 1 when both sides finished. */
static int handshake(SSL_CTX *cctx, SSL_CTX *sctx)
{
    SSL *client = SSL_new(cctx), *server = SSL_new(sctx);
    BIO *cbio = NULL, *sbio = NULL;
    int ok = 0;

    if (client != NULL && server != NULL &&
        BIO_new_bio_pair(&cbio, 0, &sbio, 0) == 1) {
        SSL_set_bio(client, cbio, cbio);
        SSL_set_bio(server, sbio, sbio);
        SSL_set_connect_state(client);
        SSL_set_accept_state(server);
        ok = pump(client, server);
    }
    if (!ok)
        ERR_print_errors_fp(stderr);
    SSL_free(client);
    SSL_free(server);
    return ok;
}

static void *worker(void *arg)
{
    SSL_CTX *sctx = make_ctx(kpsa_ctx, 1), *cctx = make_ctx(NULL, 0);
    long *done = arg;

    for (int i = 0; sctx != NULL && cctx != NULL && i < HANDSHAKES; i++)
        *done += handshake(cctx, sctx);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    OPENSSL_thread_stop();
    return NULL;
}

static int run_threads(int n)
{
    pthread_t t[THREADS];
    long done[THREADS] = {0}, total = 0;

    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, worker, &done[i]);
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        total += done[i];
    }
    return total == (long)n * HANDSHAKES;
}

static atomic_int stop_unknown;

/* Keeps asking for a handle of no key: each call once the index is a
 * second old rereads it. */
static void *unknown_worker(void *arg)
{
    long *refused = arg;

    while (!atomic_load(&stop_unknown)) {
        *refused +=
            unknown_handle_refused(kpsa_ctx, handle, (size_t)handle_len);
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000L}, NULL);
    }
    OPENSSL_thread_stop();
    return NULL;
}

/* Two threads of handshakes for about 2.5 s beside the unknown handle. */
static int beside_rereads(void)
{
    pthread_t t;
    long refused = 0;
    int ok = pthread_create(&t, NULL, unknown_worker, &refused) == 0;
    double end;
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    end = (double)now.tv_sec + now.tv_nsec / 1e9 + 2.5;
    while (ok) {
        ok = run_threads(2);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)now.tv_sec + now.tv_nsec / 1e9 >= end)
            break;
    }
    atomic_store(&stop_unknown, 1);
    pthread_join(t, NULL);
    return ok && refused > 0;
}

static int child_after_fork(void)
{
    pid_t pid = fork();
    int status = 0;

    if (pid == 0)
        _exit(run_threads(2) ? 0 : 1);
    return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
           WEXITSTATUS(status) == 0;
}

static int load(void)
{
    const char *cnf = getenv("OPENSSL_CONF_KPSA");
    unsigned char *h = OPENSSL_hexstr2buf(getenv("KPSA_HANDLE"), &handle_len);
    unsigned char *k = OPENSSL_hexstr2buf(getenv("KPSA_KEY"), &key_len);
    int ok = cnf != NULL && h != NULL && k != NULL && handle_len <= 64 &&
             key_len <= 64 && (kpsa_id = getenv("KPSA_ID")) != NULL;

    if (ok) {
        memcpy(handle, h, (size_t)handle_len);
        memcpy(key, k, (size_t)key_len);
        kpsa_ctx = OSSL_LIB_CTX_new();
        ok = kpsa_ctx != NULL && OSSL_LIB_CTX_load_config(kpsa_ctx, cnf);
    }
    OPENSSL_free(h);
    OPENSSL_clear_free(k, (size_t)key_len);
    return ok;
}

/* Without kpsa's TLS1-PRF the handle would meet the default one. */
static int kpsa_selected(void)
{
    EVP_KDF *kdf = EVP_KDF_fetch(kpsa_ctx, "TLS1-PRF", NULL);
    const char *name =
        kdf ? OSSL_PROVIDER_get0_name(EVP_KDF_get0_provider(kdf)) : "";
    int ok = strcmp(name, "kpsa") == 0;

    if (!ok)
        fprintf(stderr, "TLS1-PRF comes from '%s'\n", name);
    EVP_KDF_free(kdf);
    return ok;
}

int main(void)
{
    int n = 0, failed = 0;

    if (!load()) {
        printf("Bail out! environment or configuration\n");
        ERR_print_errors_fp(stderr);
        return 1;
    }
#define CHECK(cond, desc)                                                      \
    do {                                                                       \
        int ok_ = (cond);                                                      \
        failed += !ok_;                                                        \
        printf("%sok %d - %s\n", ok_ ? "" : "not ", ++n, desc);                \
        fflush(stdout);                                                        \
    } while (0)
    CHECK(kpsa_selected(), "the configuration selects kpsa's TLS1-PRF");
    CHECK(run_threads(1), "one thread, 25 handshakes with a handle");
    CHECK(run_threads(THREADS), "4 threads share the provider");
    CHECK(child_after_fork(), "a child forked after use runs handshakes");
    CHECK(run_threads(2), "the parent still works after the fork");
    CHECK(beside_rereads(), "2 threads of handshakes beside rereads for an "
                            "unknown handle");
    printf("1..%d\n", n);
    OSSL_LIB_CTX_free(kpsa_ctx);
    return failed ? 1 : 0;
}

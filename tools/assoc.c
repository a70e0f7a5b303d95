/*
 * kpsa serve and kpsa connect: the two ends of a TS-0003 8.2.2.1
 * association, built on libkpsa. The server prints what each connection
 * is bound to and echoes what the client sends; the client prints the IdB
 * it is bound to, sends its standard input and prints the reply.
 * Connections are served one at a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "assoc.h"
#include "kpsa.h"
#include "output.h"

/* A handshake must end within IDLE_SECONDS, and an association that sends
 * nothing for that long is closed. Reads wait at most TICK_SECONDS, so a
 * peer that sends a byte now and then cannot hold the server longer. */
#define IDLE_SECONDS 10
#define TICK_SECONDS 1
#define RECORD_MAX   16384
#define COOKIE_LEN   16

enum { EXIT_OK = 0, EXIT_REFUSED = 1, EXIT_USAGE = 2, EXIT_TOKEN = 3 };

static volatile sig_atomic_t stopping, reloading;
static unsigned char cookie_secret[32];

static void on_stop(int sig)
{
    (void)sig;
    stopping = 1;
}

static void on_reload(int sig)
{
    (void)sig;
    reloading = 1;
}

/* No SA_RESTART: a signal ends a blocking read, so a stop is prompt. */
static void catch_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_reload;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* OpenSSL's first queued reason, cleared from the queue. */
static const char *ossl_reason(char buf[256])
{
    unsigned long e = ERR_get_error();

    if (e == 0)
        return "the connection closed";
    ERR_error_string_n(e, buf, 256);
    ERR_clear_error();
    return buf;
}

/* ---- addresses ---- */

/* "HOST:PORT" or "[V6]:PORT" into host and port. */
static int split_address(const char *text, char *host, size_t cap,
                         const char **port)
{
    const char *colon = strrchr(text, ':');
    size_t len;

    if (colon == NULL || colon[1] == '\0')
        return -1;
    len = (size_t)(colon - text);
    if (len >= 2 && text[0] == '[' && text[len - 1] == ']') {
        text++;
        len -= 2;
    }
    if (len == 0 || len >= cap)
        return -1;
    memcpy(host, text, len);
    host[len] = '\0';
    *port = colon + 1;
    return 0;
}

static struct addrinfo *resolve(const char *address, int dtls, int passive,
                                char *host, size_t cap)
{
    struct addrinfo hints, *res = NULL;
    const char *port;

    if (split_address(address, host, cap, &port) != 0) {
        fail(address, EXIT_USAGE, "expected HOST:PORT");
        return NULL;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = dtls ? SOCK_DGRAM : SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL) {
        fail(address, EXIT_USAGE, "cannot resolve this address");
        return NULL;
    }
    return res;
}

static void peer_name(const struct sockaddr *sa, char out[80])
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;

        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
        snprintf(out, 80, "%s:%u", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;

        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
        snprintf(out, 80, "[%s]:%u", ip, port);
    } else {
        snprintf(out, 80, "?");
    }
}

static void set_timeouts(int fd, int seconds)
{
    struct timeval tv = {.tv_sec = seconds, .tv_usec = 0};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* ---- what both ends share ---- */

struct endpoint {
    OSSL_LIB_CTX *libctx;
    struct kpsa_providers *providers;
    struct kpsa_store *store;
    SSL_CTX *ctx;
};

/* The provider reads its token settings from the environment; the
 * global options, when given, take their place. */
static int export_settings(const struct assoc_opts *o)
{
    if ((o->module && setenv("KPSA_MODULE", o->module, 1) != 0) ||
        (o->token && setenv("KPSA_TOKEN", o->token, 1) != 0) ||
        (o->pin_source && setenv("KPSA_PIN_SOURCE", o->pin_source, 1) != 0))
        return fail(NULL, EXIT_TOKEN, "cannot pass settings to the provider");
    if (getenv("KPSA_PIN_SOURCE") == NULL)
        return fail(NULL, EXIT_USAGE,
                    "a TLS end needs --pin-source or KPSA_PIN_SOURCE: "
                    "the provider cannot prompt for the PIN");
    return EXIT_OK;
}

static int endpoint_open(struct endpoint *ep, const struct assoc_opts *o,
                         const SSL_METHOD *method)
{
    struct kpsa_store_config cfg = {o->module, o->token, o->pin_source};
    char err[KPSA_ERRLEN];
    int ret = export_settings(o);

    if (ret != EXIT_OK)
        return ret;
    ep->libctx = OSSL_LIB_CTX_new();
    if (ep->libctx == NULL)
        return fail(NULL, EXIT_TOKEN, "out of memory");
    ep->providers =
        kpsa_provider_load(ep->libctx, getenv("KPSA_PROVIDER"), err);
    if (ep->providers == NULL)
        return fail(NULL, EXIT_TOKEN, err);
    ep->store = kpsa_store_open(&cfg, err);
    if (ep->store == NULL)
        return fail(NULL, EXIT_TOKEN, err);
    ep->ctx = kpsa_ssl_ctx_new(ep->libctx, NULL, method, err);
    if (ep->ctx == NULL)
        return fail(NULL, EXIT_TOKEN, err);
    return EXIT_OK;
}

static void endpoint_close(struct endpoint *ep)
{
    SSL_CTX_free(ep->ctx);
    kpsa_store_free(ep->store);
    kpsa_provider_unload(ep->providers);
    OSSL_LIB_CTX_free(ep->libctx);
}

/* ---- DTLS cookies (RFC 6347 4.2.1): an HMAC of the peer's address ---- */

static int cookie_of(SSL *ssl, unsigned char out[COOKIE_LEN])
{
    BIO_ADDR *peer = BIO_ADDR_new();
    unsigned char data[sizeof(struct in6_addr) + 2], mac[32];
    size_t len = 0, mac_len = 0;
    unsigned short port;
    int ok = peer != NULL && BIO_dgram_get_peer(SSL_get_rbio(ssl), peer) > 0 &&
             BIO_ADDR_rawaddress(peer, data, &len) && len <= 16;

    if (ok) {
        port = BIO_ADDR_rawport(peer);
        memcpy(data + len, &port, 2);
        ok = EVP_Q_mac(NULL, "HMAC", NULL, "SHA2-256", NULL, cookie_secret,
                       sizeof(cookie_secret), data, len + 2, mac, sizeof(mac),
                       &mac_len) != NULL;
    }
    if (ok)
        memcpy(out, mac, COOKIE_LEN);
    BIO_ADDR_free(peer);
    return ok;
}

static int cookie_generate(SSL *ssl, unsigned char *cookie, unsigned int *len)
{
    if (!cookie_of(ssl, cookie))
        return 0;
    *len = COOKIE_LEN;
    return 1;
}

static int cookie_verify(SSL *ssl, const unsigned char *cookie,
                         unsigned int len)
{
    unsigned char want[COOKIE_LEN];

    return len == COOKIE_LEN && cookie_of(ssl, want) &&
           CRYPTO_memcmp(want, cookie, COOKIE_LEN) == 0;
}

/* ---- Entity B ---- */

static void print_binding(SSL *ssl, const char *peer)
{
    const char *entity_id = NULL, *sni;
    enum kpsa_entity kind = kpsa_ssl_entity(ssl, &entity_id);

    printf("peer=%s protocol=%s cipher=%s", peer, SSL_get_version(ssl),
           SSL_get_cipher_name(ssl));
    sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (sni != NULL) {
        fputs(" sni=", stdout);
        print_safe(stdout, sni);
    }
    printf(" credential-id=%s", kpsa_ssl_credential_id(ssl));
    if (kind != KPSA_ENTITY_NONE)
        printf(" %s=%s", kind == KPSA_ENTITY_AE ? "ae-id" : "cse-id",
               entity_id);
    putchar('\n');
    fflush(stdout);
}

static long long now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* A read that timed out (a tick) rather than failed. */
static int ticked(SSL *ssl, int rc)
{
    return SSL_get_error(ssl, rc) == SSL_ERROR_WANT_READ;
}

/* Echoes records until the client closes, stays quiet for IDLE_SECONDS
 * or we stop. */
static void echo(SSL *ssl)
{
    unsigned char buf[RECORD_MAX];
    long long last = now_ms();
    int n;

    while (!stopping && now_ms() - last < IDLE_SECONDS * 1000) {
        n = SSL_read(ssl, buf, sizeof(buf));
        if (n <= 0 && ticked(ssl, n))
            continue;
        if (n <= 0 || SSL_write(ssl, buf, n) <= 0)
            break;
        last = now_ms();
    }
    OPENSSL_cleanse(buf, sizeof(buf));
}

/* The whole handshake within IDLE_SECONDS, however the peer paces it. */
static int accept_in_time(SSL *ssl, const char *peer)
{
    long long end = now_ms() + IDLE_SECONDS * 1000;
    char why[256];
    int rc;

    while ((rc = SSL_accept(ssl)) != 1 && ticked(ssl, rc) && !stopping &&
           now_ms() < end)
        ;
    if (rc == 1)
        return 1;
    if (ticked(ssl, rc)) {
        ERR_clear_error();
        fail(peer, 0, "no handshake within 10 s; closed");
    } else {
        fail(peer, 0, ossl_reason(why));
    }
    return 0;
}

static void serve_connection(SSL *ssl, const char *peer)
{
    if (!accept_in_time(ssl, peer))
        return;
    /* Only a PSK handshake is an association (a certificate one, should
     * the context allow it, is bound to nothing). */
    if (kpsa_ssl_credential_id(ssl) == NULL) {
        fail(peer, 0, "not a PSK association; closed");
        SSL_shutdown(ssl);
        return;
    }
    print_binding(ssl, peer);
    echo(ssl);
    SSL_shutdown(ssl);
}

static int reload(const struct assoc_opts *o, struct kpsa_server *srv,
                  struct kpsa_store *store)
{
    char err[KPSA_ERRLEN];
    struct kpsa_map *map = NULL;

    reloading = 0;
    if (kpsa_store_refresh(store, err) != 0)
        fail(NULL, 0, err);
    if (o->map == NULL)
        return 0;
    map = kpsa_map_load(o->map, err);
    if (map == NULL)
        return fail(NULL, 0, err); /* the map in use stays */
    kpsa_server_set_map(srv, map);
    fprintf(stderr, "kpsa: %s: reloaded, %zu Credential-IDs\n", o->map,
            kpsa_map_count(map));
    return 0;
}

static int open_listener(const struct assoc_opts *o, char *host, size_t cap)
{
    struct addrinfo *res = resolve(o->address, o->dtls, 1, host, cap), *ai;
    int fd = -1, one = 1;

    if (res == NULL)
        return -1;
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
            (!o->dtls && listen(fd, 16) != 0)) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        fail(o->address, 0, strerror(errno));
    /* DTLSv1_listen then returns once the datagrams that are there have
     * been answered, instead of waiting for a client's second ClientHello. */
    if (fd >= 0 && o->dtls)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static void accept_tls(SSL_CTX *ctx, int lfd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char peer[80];
    int fd = accept(lfd, (struct sockaddr *)&ss, &sl);
    SSL *ssl;

    if (fd < 0)
        return;
    set_timeouts(fd, TICK_SECONDS);
    peer_name((struct sockaddr *)&ss, peer);
    ssl = SSL_new(ctx);
    if (ssl != NULL && SSL_set_fd(ssl, fd))
        serve_connection(ssl, peer);
    SSL_free(ssl);
    close(fd);
}

/* libcrypto keeps a BIO_ADDR's sockaddr to itself. */
static socklen_t sockaddr_of(const BIO_ADDR *a, struct sockaddr_storage *ss)
{
    size_t len = 0;

    memset(ss, 0, sizeof(*ss));
    if (BIO_ADDR_family(a) == AF_INET) {
        struct sockaddr_in *in = (void *)ss;

        in->sin_family = AF_INET;
        in->sin_port = BIO_ADDR_rawport(a);
        BIO_ADDR_rawaddress(a, &in->sin_addr, &len);
        return sizeof(*in);
    }
    if (BIO_ADDR_family(a) == AF_INET6) {
        struct sockaddr_in6 *in6 = (void *)ss;

        in6->sin6_family = AF_INET6;
        in6->sin6_port = BIO_ADDR_rawport(a);
        BIO_ADDR_rawaddress(a, &in6->sin6_addr, &len);
        return sizeof(*in6);
    }
    return 0;
}

/* A socket of its own for a DTLS client that proved its address: bound to
 * the server's address and connected to the client's, so that the
 * listener goes on receiving only new ClientHellos. */
static int connected_socket(int lfd, const BIO_ADDR *client)
{
    struct sockaddr_storage local, remote;
    socklen_t ll = sizeof(local), rl = sockaddr_of(client, &remote);
    int fd, one = 1;

    if (rl == 0 || getsockname(lfd, (struct sockaddr *)&local, &ll) != 0)
        return -1;
    fd = socket(local.ss_family, SOCK_DGRAM, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&local, ll) != 0 ||
        connect(fd, (struct sockaddr *)&remote, rl) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void accept_dtls(SSL_CTX *ctx, int lfd)
{
    BIO_ADDR *client = BIO_ADDR_new();
    SSL *ssl = SSL_new(ctx);
    BIO *bio = BIO_new_dgram(lfd, BIO_NOCLOSE);
    struct sockaddr_storage ss;
    char peer[80];
    int fd = -1;

    if (client == NULL || ssl == NULL || bio == NULL) {
        BIO_free(bio);
        goto out;
    }
    SSL_set_bio(ssl, bio, bio);
    SSL_set_options(ssl, SSL_OP_COOKIE_EXCHANGE);
    /* <= 0: a HelloVerifyRequest went out, or the datagram was no
     * ClientHello; the client's next one comes back to the listener. */
    if (DTLSv1_listen(ssl, client) <= 0)
        goto out;
    sockaddr_of(client, &ss);
    peer_name((struct sockaddr *)&ss, peer);
    fd = connected_socket(lfd, client);
    if (fd < 0) {
        fail(peer, 0, "cannot open a socket for this client");
        goto out;
    }
    set_timeouts(fd, TICK_SECONDS);
    BIO_set_fd(bio, fd, BIO_NOCLOSE);
    BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, client);
    serve_connection(ssl, peer);
out:
    ERR_clear_error();
    SSL_free(ssl);
    BIO_ADDR_free(client);
    if (fd >= 0)
        close(fd);
}

static int serve_loop(const struct assoc_opts *o, struct endpoint *ep,
                      struct kpsa_server *srv)
{
    char host[256];
    int lfd = open_listener(o, host, sizeof(host));
    struct pollfd pfd;

    if (lfd < 0)
        return EXIT_USAGE;
    fprintf(stderr, "kpsa: listening on %s (%s), %zu KpsaIds on the token\n",
            o->address,
            o->dtls    ? "DTLS 1.2"
            : o->tls13 ? "TLS 1.2 and 1.3"
                       : "TLS 1.2",
            kpsa_store_count(ep->store));
    pfd.fd = lfd;
    pfd.events = POLLIN;
    while (!stopping) {
        if (reloading)
            reload(o, srv, ep->store);
        if (poll(&pfd, 1, 250) <= 0)
            continue;
        if (o->dtls)
            accept_dtls(ep->ctx, lfd);
        else
            accept_tls(ep->ctx, lfd);
    }
    close(lfd);
    return EXIT_OK;
}

int assoc_serve(const struct assoc_opts *o)
{
    struct endpoint ep = {0};
    struct kpsa_server *srv = NULL;
    struct kpsa_map *map = NULL;
    char err[KPSA_ERRLEN];
    int ret;

    setvbuf(stdout, NULL, _IOLBF, 0);
    catch_signals();
    if (o->map != NULL && (map = kpsa_map_load(o->map, err)) == NULL)
        return fail(NULL, EXIT_REFUSED, err);
    ret = endpoint_open(&ep, o,
                        o->dtls ? DTLS_server_method() : TLS_server_method());
    if (ret == EXIT_OK && (srv = kpsa_server_new(ep.store, map)) == NULL)
        ret = fail(NULL, EXIT_TOKEN, "out of memory");
    if (srv != NULL)
        map = NULL; /* the server owns it now */
    if (srv != NULL)
        kpsa_server_set_flags(srv, o->tls13 ? KPSA_TLS13 : 0);
    if (ret == EXIT_OK && kpsa_server_setup(ep.ctx, srv, NULL, err) != 0)
        ret = fail(NULL, EXIT_TOKEN, err);
    if (ret == EXIT_OK && o->dtls) {
        if (RAND_bytes(cookie_secret, sizeof(cookie_secret)) != 1)
            ret = fail(NULL, EXIT_TOKEN, "no random bytes for DTLS cookies");
        SSL_CTX_set_cookie_generate_cb(ep.ctx, cookie_generate);
        SSL_CTX_set_cookie_verify_cb(ep.ctx, cookie_verify);
    }
    if (ret == EXIT_OK)
        ret = serve_loop(o, &ep, srv);
    endpoint_close(&ep);
    kpsa_server_free(srv);
    kpsa_map_free(map);
    OPENSSL_cleanse(cookie_secret, sizeof(cookie_secret));
    return ret;
}

/* ---- Entity A ---- */

static int is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, host, buf) == 1 ||
           inet_pton(AF_INET6, host, buf) == 1;
}

static int connect_socket(const struct assoc_opts *o, char *host, size_t cap)
{
    struct addrinfo *res = resolve(o->address, o->dtls, 0, host, cap), *ai;
    int fd = -1;

    if (res == NULL)
        return -1;
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        fail(o->address, 0, strerror(errno));
    else
        set_timeouts(fd, IDLE_SECONDS);
    return fd;
}

/* Sends standard input a line at a time; prints each echo as it comes. */
static int converse(SSL *ssl)
{
    char line[RECORD_MAX], reply[RECORD_MAX], why[256];
    int ret = EXIT_OK;

    while (ret == EXIT_OK && !stopping && fgets(line, sizeof(line), stdin)) {
        int len = (int)strlen(line), got = 0, n;

        if (SSL_write(ssl, line, len) != len)
            ret = fail(NULL, ASSOC_EXIT_FAILED, ossl_reason(why));
        while (ret == EXIT_OK && got < len) {
            n = SSL_read(ssl, reply, sizeof(reply));
            if (n <= 0) {
                ret = fail(NULL, ASSOC_EXIT_FAILED, "no reply from the peer");
                break;
            }
            fwrite(reply, 1, (size_t)n, stdout);
            got += n;
        }
        fflush(stdout);
    }
    OPENSSL_cleanse(line, sizeof(line));
    OPENSSL_cleanse(reply, sizeof(reply));
    return ret;
}

/* A dgram BIO on the connected socket, told the peer's address. */
static int dtls_attach(SSL *ssl, int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    BIO_ADDR *peer = BIO_ADDR_new();
    BIO *bio = BIO_new_dgram(fd, BIO_NOCLOSE);
    int ok = peer != NULL && bio != NULL &&
             getpeername(fd, (struct sockaddr *)&ss, &sl) == 0;

    if (ok && ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (void *)&ss;

        ok = BIO_ADDR_rawmake(peer, AF_INET, &in->sin_addr,
                              sizeof(in->sin_addr), in->sin_port);
    } else if (ok) {
        struct sockaddr_in6 *in6 = (void *)&ss;

        ok = BIO_ADDR_rawmake(peer, AF_INET6, &in6->sin6_addr,
                              sizeof(in6->sin6_addr), in6->sin6_port);
    }
    if (ok) {
        BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, peer);
        SSL_set_bio(ssl, bio, bio);
        bio = NULL;
    }
    BIO_free(bio);
    BIO_ADDR_free(peer);
    return ok;
}

static int associate(SSL *ssl, const struct assoc_opts *o)
{
    char why[256];

    if (SSL_connect(ssl) != 1)
        return fail(o->address, ASSOC_EXIT_FAILED, ossl_reason(why));
    /* TS-0003 8.2.2.1: the client binds the association to IdB. */
    printf("peer=%s protocol=%s cipher=%s kpsa-id=%s id-b=%s\n", o->address,
           SSL_get_version(ssl), SSL_get_cipher_name(ssl), o->kpsa_id,
           kpsa_ssl_id_b(ssl));
    fflush(stdout);
    if (converse(ssl) != EXIT_OK)
        return ASSOC_EXIT_FAILED;
    SSL_shutdown(ssl);
    return EXIT_OK;
}

/* Everything that can be refused before the network is touched. */
static int client_prepare(const struct assoc_opts *o, struct endpoint *ep,
                          SSL **ssl)
{
    struct kpsa_client_config cfg = {o->kpsa_id, o->id_b, o->sni, NULL,
                                     o->tls13 ? KPSA_TLS13 : 0};
    char host[256], err[KPSA_ERRLEN];
    const char *port;

    if (split_address(o->address, host, sizeof(host), &port) != 0)
        return fail(o->address, EXIT_USAGE, "expected HOST:PORT");
    if (cfg.sni_host == NULL && !is_ip_literal(host))
        cfg.sni_host = host;
    if (cfg.sni_host == NULL)
        return fail(o->address, EXIT_USAGE,
                    "SNI needs a host name, not an IP address (TS-0003 "
                    "10.2.1): give --sni NAME");
    *ssl = SSL_new(ep->ctx);
    if (*ssl == NULL)
        return fail(NULL, EXIT_TOKEN, "out of memory");
    if (kpsa_client_setup(*ssl, ep->store, &cfg, err) != 0)
        return fail(NULL, EXIT_REFUSED, err);
    return EXIT_OK;
}

int assoc_connect(const struct assoc_opts *o)
{
    struct endpoint ep = {0};
    char host[256], why[256];
    SSL *ssl = NULL;
    int fd = -1, ret;

    catch_signals();
    ret = endpoint_open(&ep, o,
                        o->dtls ? DTLS_client_method() : TLS_client_method());
    if (ret == EXIT_OK)
        ret = client_prepare(o, &ep, &ssl);
    if (ret == EXIT_OK && (fd = connect_socket(o, host, sizeof(host))) < 0)
        ret = ASSOC_EXIT_FAILED;
    if (ret == EXIT_OK) {
        if (o->dtls ? dtls_attach(ssl, fd) : SSL_set_fd(ssl, fd))
            ret = associate(ssl, o);
        else
            ret = fail(NULL, EXIT_TOKEN, ossl_reason(why));
    }
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    endpoint_close(&ep);
    return ret;
}

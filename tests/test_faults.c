/*
 * Faults in every PKCS#11 call of a handshake. The kpsa provider reaches
 * SoftHSM2 through faultmod, which fails the Nth call of one function
 * with a chosen CKR_*; for each function a cold TLS 1.2 and TLS 1.3
 * handshake makes, each N and each fault: the handshake either succeeds
 * (a fault kpsa can work around) or fails with an error that names it,
 * nothing crashes or leaks (the sanitizer build runs this too), and once
 * the fault stops the next handshake in the same process succeeds.
 * Last, with faultmod making every search slow: a reread of the index for
 * an unknown handle holds up no handshake with a known key.
 * Environment: KPSA_PROVIDER, FAULTMOD, KPSA_FAULT_MODULE (SoftHSM2),
 * KPSA_TOKEN, KPSA_PIN_SOURCE, KPSA_ID, KPSA_KEY and KPSA_HANDLE (hex).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>

#include "kat.h"
#include "tlspair.h"
#include "unknown.h"

#define MAX_FUNCS 40

struct secret {
    unsigned char bytes[64];
    long len;
};

static struct secret key, handle;
static const char *kpsa_id;
static OSSL_LIB_CTX *plain_ctx;

static const char *const faults[] = {
    "CKR_DEVICE_REMOVED", "CKR_SESSION_CLOSED", "CKR_USER_NOT_LOGGED_IN",
    "CKR_DEVICE_MEMORY",  "CKR_GENERAL_ERROR",
};

struct count {
    char func[48];
    int n;
};

/* ---- the two ends ---- */

static SSL_SESSION *psk_session(SSL *ssl, const struct secret *s)
{
    static const unsigned char sha256[] = {0x13, 0x01};
    SSL_SESSION *sess = SSL_SESSION_new();

    if (sess == NULL || !SSL_SESSION_set1_master_key(sess, s->bytes, s->len) ||
        !SSL_SESSION_set_cipher(sess, SSL_CIPHER_find(ssl, sha256)) ||
        !SSL_SESSION_set_protocol_version(sess, TLS1_3_VERSION)) {
        SSL_SESSION_free(sess);
        return NULL;
    }
    return sess;
}

static unsigned int server_psk(SSL *ssl, const char *id, unsigned char *psk,
                               unsigned int max)
{
    (void)ssl;
    if (strcmp(id, kpsa_id) != 0 || (unsigned long)handle.len > max)
        return 0;
    memcpy(psk, handle.bytes, (size_t)handle.len);
    return (unsigned int)handle.len;
}

static int server_find(SSL *ssl, const unsigned char *id, size_t len,
                       SSL_SESSION **sess)
{
    *sess = NULL;
    if (len == strlen(kpsa_id) && memcmp(id, kpsa_id, len) == 0)
        *sess = psk_session(ssl, &handle);
    return 1;
}

static unsigned int client_psk(SSL *ssl, const char *hint, char *id,
                               unsigned int max_id, unsigned char *psk,
                               unsigned int max)
{
    (void)ssl;
    (void)hint;
    snprintf(id, max_id, "%s", kpsa_id);
    if ((unsigned long)key.len > max)
        return 0;
    memcpy(psk, key.bytes, (size_t)key.len);
    return (unsigned int)key.len;
}

static int client_use(SSL *ssl, const EVP_MD *md, const unsigned char **id,
                      size_t *len, SSL_SESSION **sess)
{
    (void)md;
    *sess = psk_session(ssl, &key);
    *id = (const unsigned char *)kpsa_id;
    *len = strlen(kpsa_id);
    return *sess != NULL;
}

/* psk_ke for TLS 1.3: every secret of the schedule comes from the token. */
static SSL_CTX *end_ctx(OSSL_LIB_CTX *libctx, int server, int tls13)
{
    SSL_CTX *ctx = SSL_CTX_new_ex(
        libctx, NULL, server ? TLS_server_method() : TLS_client_method());
    int v = tls13 ? TLS1_3_VERSION : TLS1_2_VERSION;

    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, v);
    SSL_CTX_set_max_proto_version(ctx, v);
    SSL_CTX_set_cipher_list(ctx, "PSK-AES128-CBC-SHA256");
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_ALLOW_NO_DHE_KEX);
    SSL_CTX_set1_groups_list(ctx, server ? "X448" : "P-256");
    if (server) {
        SSL_CTX_set_psk_server_callback(ctx, server_psk);
        SSL_CTX_set_psk_find_session_callback(ctx, server_find);
    } else {
        SSL_CTX_set_psk_client_callback(ctx, client_psk);
        SSL_CTX_set_psk_use_session_callback(ctx, client_use);
    }
    return ctx;
}

static int collect(const char *line, size_t len, void *arg)
{
    char *buf = arg;
    size_t used = strlen(buf);

    if (used + len + 1 < 4096)
        memcpy(buf + used, line, len + 1);
    return 1;
}

/* One handshake; the error queue's text in errs (4096 bytes). */
static int handshake(OSSL_LIB_CTX *kpsa_ctx, int tls13, char *errs)
{
    SSL_CTX *sctx = end_ctx(kpsa_ctx, 1, tls13);
    SSL_CTX *cctx = end_ctx(plain_ctx, 0, tls13);
    SSL *server = sctx ? SSL_new(sctx) : NULL;
    SSL *client = cctx ? SSL_new(cctx) : NULL;
    int ok = server != NULL && client != NULL && tlspair_run(client, server);

    errs[0] = '\0';
    ERR_print_errors_cb(collect, errs);
    SSL_free(server);
    SSL_free(client);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return ok;
}

/* ---- a provider of its own per case, so each case starts cold ---- */

struct kpsa_instance {
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *fallback, *kpsa;
};

static int instance_open(struct kpsa_instance *in)
{
    in->libctx = OSSL_LIB_CTX_new();
    in->fallback = OSSL_PROVIDER_load(in->libctx, "default");
    in->kpsa = OSSL_PROVIDER_load(in->libctx, getenv("KPSA_PROVIDER"));
    return in->fallback != NULL && in->kpsa != NULL &&
           EVP_set_default_properties(in->libctx, "?provider=kpsa");
}

static void instance_close(struct kpsa_instance *in)
{
    OSSL_PROVIDER_unload(in->kpsa);
    OSSL_PROVIDER_unload(in->fallback);
    OSSL_LIB_CTX_free(in->libctx);
}

static void set_fault(const char *func, int at, const char *rv)
{
    char n[16];

    snprintf(n, sizeof(n), "%d", at);
    setenv("KPSA_FAULT_FUNC", func, 1);
    setenv("KPSA_FAULT_AT", n, 1);
    setenv("KPSA_FAULT_RV", rv, 1);
}

/* The calls of one cold handshake, from faultmod's count at C_Finalize. */
static int count_calls(int tls13, struct count *counts, int *n)
{
    const char *path = getenv("KPSA_FAULT_COUNT_FILE");
    struct kpsa_instance in;
    char errs[4096], line[128];
    FILE *f;
    int ok;

    remove(path);
    set_fault("", 1, "CKR_GENERAL_ERROR");
    ok = instance_open(&in) && handshake(in.libctx, tls13, errs);
    instance_close(&in);
    f = fopen(path, "r");
    *n = 0;
    while (f != NULL && *n < MAX_FUNCS && fgets(line, sizeof(line), f))
        if (sscanf(line, "%47s %d", counts[*n].func, &counts[*n].n) == 2 &&
            strcmp(counts[*n].func, "C_Initialize") != 0 &&
            strcmp(counts[*n].func, "C_Finalize") != 0 &&
            strcmp(counts[*n].func, "C_GetFunctionList") != 0)
            (*n)++;
    if (f != NULL)
        fclose(f);
    unsetenv("KPSA_FAULT_COUNT_FILE");
    return ok && *n > 0;
}

/* A failed handshake must say why: the CKR_* name, or for a fault while
 * the token is chosen, that no token matched. */
static int explained(const char *errs, const char *rv)
{
    return strstr(errs, "kpsa") != NULL &&
           (strstr(errs, rv) != NULL || strstr(errs, "no token matches"));
}

/* One fault in a cold provider: a failed first handshake names it, and
 * once the fault stops a handshake succeeds again (the second try, when
 * the fault fired only after the first handshake was done). */
static int one_case(int tls13, const char *func, int at, const char *rv,
                    char *why, size_t why_len)
{
    struct kpsa_instance in;
    char errs[4096] = "";
    int ok = instance_open(&in);

    set_fault(func, at, rv);
    if (ok && !handshake(in.libctx, tls13, errs) && !explained(errs, rv)) {
        snprintf(why, why_len, "call %d: failed without naming %s: %.200s", at,
                 rv, errs);
        ok = 0;
    }
    set_fault("", 1, rv);
    if (ok && !handshake(in.libctx, tls13, errs) &&
        !handshake(in.libctx, tls13, errs)) {
        snprintf(why, why_len, "call %d: no recovery: %.200s", at, errs);
        ok = 0;
    }
    instance_close(&in);
    return ok;
}

static void every_fault(int tls13, const struct count *c)
{
    for (size_t r = 0; r < sizeof(faults) / sizeof(faults[0]); r++) {
        char why[320] = "";
        int ok = 1;

        for (int at = 1; at <= c->n && ok; at++)
            ok = one_case(tls13, c->func, at, faults[r], why, sizeof(why));
        tap_check(ok,
                  "TLS 1.%d: %s fails with %s at each of its %d calls: "
                  "explained, then recovered",
                  tls13 ? 3 : 2, c->func, faults[r], c->n);
        if (!ok)
            tap_diag("%s", why);
    }
}

/* ---- a slow reread beside handshakes ---- */

struct unknown_call {
    OSSL_LIB_CTX *libctx;
    atomic_int done;
    int refused;
};

static void *unknown_handle(void *arg)
{
    struct unknown_call *u = arg;

    u->refused =
        unknown_handle_refused(u->libctx, handle.bytes, (size_t)handle.len);
    OPENSSL_thread_stop();
    atomic_store(&u->done, 1);
    return NULL;
}

/*
 * Every C_FindObjectsInit after the first index read waits 1 s, so the
 * reread of an unknown handle takes 2 s or more. Handshakes with the known
 * key started meanwhile must all finish before it does: the provider does
 * not hold its lock across the reread.
 */
static void reread_beside_handshakes(void)
{
    struct unknown_call u = {0};
    struct kpsa_instance in;
    char errs[4096] = "";
    pthread_t t;
    int ok = instance_open(&in), hs = 0, during = 0;

    set_fault("C_FindObjectsInit", 3, "CKR_GENERAL_ERROR");
    setenv("KPSA_FAULT_STICKY", "1", 1);
    setenv("KPSA_FAULT_DELAY_MS", "1000", 1);
    /* The first handshake reads the index; a reread is due 1 s later. */
    ok = ok && handshake(in.libctx, 0, errs);
    sleep(2);
    u.libctx = in.libctx;
    ok = ok && pthread_create(&t, NULL, unknown_handle, &u) == 0;
    if (ok) {
        nanosleep(&(struct timespec){0, 300 * 1000 * 1000L}, NULL);
        for (int i = 0; i < 5; i++)
            hs += handshake(in.libctx, 0, errs);
        during = !atomic_load(&u.done);
        pthread_join(t, NULL);
    }
    tap_check(ok && hs == 5 && during,
              "5 handshakes with a known key finish while a slow reread for "
              "an unknown handle runs");
    if (!ok || hs != 5 || !during)
        tap_diag(
            "first handshake %d, %d of 5, reread still running: %d: %.200s", ok,
            hs, during, errs);
    tap_check(ok && u.refused,
              "the unknown handle is refused after the reread");
    unsetenv("KPSA_FAULT_STICKY");
    unsetenv("KPSA_FAULT_DELAY_MS");
    set_fault("", 1, "CKR_GENERAL_ERROR");
    instance_close(&in);
}

static int take(const char *var, struct secret *s)
{
    unsigned char *b = OPENSSL_hexstr2buf(getenv(var), &s->len);
    int ok = b != NULL && s->len > 0 && s->len <= 64;

    if (ok)
        memcpy(s->bytes, b, (size_t)s->len);
    OPENSSL_free(b);
    return ok;
}

int main(void)
{
    struct count counts[MAX_FUNCS];
    char path[] = "/tmp/kpsa-faults-XXXXXX";
    OSSL_PROVIDER *fallback;
    int n = 0, fd;

    kpsa_id = getenv("KPSA_ID");
    if (kpsa_id == NULL || !take("KPSA_KEY", &key) ||
        !take("KPSA_HANDLE", &handle) || getenv("FAULTMOD") == NULL) {
        printf("Bail out! KPSA_ID, KPSA_KEY, KPSA_HANDLE, FAULTMOD\n");
        return 1;
    }
    setenv("KPSA_MODULE", getenv("FAULTMOD"), 1);
    plain_ctx = OSSL_LIB_CTX_new();
    fallback = OSSL_PROVIDER_load(plain_ctx, "default");
    for (int tls13 = 0; tls13 <= 1; tls13++) {
        fd = mkstemp(path);
        if (fd >= 0)
            close(fd);
        setenv("KPSA_FAULT_COUNT_FILE", path, 1);
        if (!tap_check(count_calls(tls13, counts, &n),
                       "TLS 1.%d: a handshake through faultmod, counted",
                       tls13 ? 3 : 2))
            continue;
        for (int i = 0; i < n; i++)
            every_fault(tls13, &counts[i]);
        remove(path);
        memcpy(path + strlen(path) - 6, "XXXXXX", 6);
    }
    reread_beside_handshakes();
    OSSL_PROVIDER_unload(fallback);
    OSSL_LIB_CTX_free(plain_ctx);
    OPENSSL_cleanse(&key, sizeof(key));
    return tap_finish();
}

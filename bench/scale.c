/*
 * The scale mode: N key families on one token. Creates them with
 * family_import in one session and sets the rate against the token's own
 * object-creation rate; times one index build and two rereads (nothing
 * new, one new family); measures the index's memory per key; compares
 * handshakes and lookups with 10 keys and with N; and imports a key while a
 * libkpsa server runs, timing until a handshake with it succeeds.
 */
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "bench.h"
#include "family.h"
#include "handle.h"
#include "kpsa.h"
#include "token.h"

#define FEW_KEYS     10
#define PROBE_OBJS   50
#define LOOKUPS      2000000
#define LIVE_TIMEOUT 15.0

struct scale {
    const struct bench_opts *o;
    struct kpsa_token *tok;
    struct family_index *idx;
    struct bench_psk raw, handle;
    struct bench_lib plain;
    char handle_id[HANDLE_ID_LEN + 1];
    unsigned long next_id; /* for scale-NNNNNNN@scale.example.com */
};

static int objects_per_family(void)
{
    return __builtin_popcount(MEMBERS_BASE) + 1; /* and the manifest */
}

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();

    /* Large blocks are mapped apart and counted in hblkhd. */
    return mi.uordblks + mi.hblkhd;
}

static int scale_open(struct scale *s, char err[BENCH_ERRLEN])
{
    struct token_config cfg = {getenv("KPSA_MODULE"), getenv("KPSA_TOKEN"),
                               getenv("KPSA_PIN_SOURCE"), 0};

    s->tok = token_new();
    s->idx = family_index_new();
    if (s->tok == NULL || s->idx == NULL || token_open(s->tok, &cfg) != 0 ||
        family_index_build(s->idx, s->tok) != 0) {
        snprintf(err, BENCH_ERRLEN, "%s",
                 s->tok ? token_err(s->tok)->msg : "out of memory");
        return -1;
    }
    return 0;
}

/* ---- creating keys ---- */

/* The token's own rate: plain C_CreateObject of token secret keys. */
static double create_rate(struct scale *s)
{
    CK_OBJECT_HANDLE obj[PROBE_OBJS];
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    unsigned char value[32];
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_LABEL, "kpsa-bench-probe", 16},
        {CKA_VALUE, value, sizeof(value)},
    };
    int made = 0;
    double t0 = bench_now(), dt;

    for (; made < PROBE_OBJS; made++) {
        RAND_bytes(value, sizeof(value));
        if (token_create(s->tok, t, 8, &obj[made], "probe object") != 0)
            break;
    }
    dt = bench_now() - t0;
    OPENSSL_cleanse(value, sizeof(value));
    for (int i = 0; i < made; i++)
        token_destroy(s->tok, obj[i], "probe object");
    return made == PROBE_OBJS ? made / dt : -1;
}

static int import_one(struct scale *s, const char *kpsaid,
                      const unsigned char *key, size_t len)
{
    if (family_import(s->tok, s->idx, kpsaid, key, len, 0) == 0)
        return 0;
    fprintf(stderr, "kpsa-bench: import %s: %s\n", kpsaid,
            token_err(s->tok)->msg);
    return -1;
}

static int import_random(struct scale *s)
{
    unsigned char key[32];
    char id[KPSAID_MAX + 1];
    int ret;

    do
        snprintf(id, sizeof(id), "scale-%07lu@scale.example.com", s->next_id++);
    while (family_lookup_folded(s->idx, id) != NULL);
    RAND_bytes(key, sizeof(key));
    ret = import_one(s, id, key, sizeof(key));
    OPENSSL_cleanse(key, sizeof(key));
    return ret;
}

/* Imports until the token holds target families; reports the rate. */
static int grow_to(struct scale *s, size_t target)
{
    size_t have = family_count(s->idx), todo = target - have, done = 0;
    double t0 = bench_now(), dt;

    if (have >= target)
        return 0;
    for (; done < todo; done++) {
        if (import_random(s) != 0)
            return -1;
        if ((done + 1) % 500 == 0)
            fprintf(stderr, "kpsa-bench: %zu of %zu keys, %.0f keys/min\n",
                    have + done + 1, target,
                    60.0 * (double)(done + 1) / (bench_now() - t0));
    }
    dt = bench_now() - t0;
    if (todo >= 100) {
        printf("Created %zu families in %.1f s:\n", todo, dt);
        bench_metric(s->o, "scale", "family_import rate", 60.0 * todo / dt,
                     "keys/min");
        bench_metric(s->o, "scale", "family_import objects",
                     (double)todo * objects_per_family() / dt, "objects/s");
    }
    return 0;
}

/* ---- the index ---- */

static double index_build_ms(struct scale *s, size_t *bytes)
{
    double best[3];
    int reps = s->o->reps < 3 ? s->o->reps : 3;

    for (int i = 0; i < reps; i++) {
        struct family_index *idx = family_index_new();
        size_t before = heap_in_use();
        double t0 = bench_now();

        if (idx == NULL || family_index_build(idx, s->tok) != 0) {
            family_index_free(idx);
            return -1;
        }
        best[i] = (bench_now() - t0) * 1e3;
        /* The module's caches are warm after the first build: later
         * builds show the index's own memory. */
        if (bytes != NULL)
            *bytes = heap_in_use() - before;
        family_index_free(idx);
    }
    return bench_median_of(best, reps);
}

static double refresh_ms(struct scale *s, const struct family_index *old,
                         const char *want)
{
    struct family_index *idx = family_index_new();
    double t0 = bench_now(), ms;
    int ok = idx != NULL && family_index_refresh(idx, old, s->tok) == 0 &&
             (want == NULL || family_lookup(idx, want) != NULL);

    ms = (bench_now() - t0) * 1e3;
    family_index_free(idx);
    return ok ? ms : -1;
}

/* A reread for an unknown identity (family_index_refresh): with nothing
 * new, and with one family imported since the old index was read, which
 * is deleted again afterwards. */
static int measure_refresh(struct scale *s)
{
    struct family_index *before = family_index_copy(s->idx);
    unsigned char key[32];
    char id[KPSAID_MAX + 1];
    double same, one = -1;

    snprintf(id, sizeof(id), "refresh-%ld@scale.example.com", (long)getpid());
    RAND_bytes(key, sizeof(key));
    same = before != NULL ? refresh_ms(s, before, NULL) : -1;
    if (same >= 0 && import_one(s, id, key, sizeof(key)) == 0) {
        one = refresh_ms(s, before, id);
        family_delete(s->tok, s->idx, id);
    }
    OPENSSL_cleanse(key, sizeof(key));
    family_index_free(before);
    if (same < 0 || one < 0) {
        fprintf(stderr, "kpsa-bench: index refresh: %s\n",
                token_err(s->tok)->msg);
        return -1;
    }
    bench_metric(s->o, "scale", "index reread, nothing new", same, "ms");
    bench_metric(s->o, "scale", "index reread, one new family", one, "ms");
    return 0;
}

static double lookup_ns(struct scale *s)
{
    const struct family *volatile sink = NULL;
    double t0 = bench_now();

    for (int i = 0; i < LOOKUPS; i++)
        sink = family_lookup_handle(s->idx, s->handle_id);
    (void)sink;
    return (bench_now() - t0) * 1e9 / LOOKUPS;
}

/* What dominates the index's memory: the family array, grown by
 * doubling, and two hash tables of twice the count (family.c). */
static void index_estimate(const struct bench_opts *o, size_t n)
{
    size_t cap = 64, slots = 16;

    while (cap < n)
        cap *= 2;
    while (slots < 2 * (n + 1))
        slots *= 2;
    printf("  struct family is %zu bytes; array capacity %zu for %zu keys; "
           "2 tables of %zu slots\n",
           sizeof(struct family), cap, n, slots);
    bench_metric(o, "scale", "index bytes per key, from the layout",
                 (double)(cap * sizeof(struct family) + 2 * slots * 8) /
                     (double)n,
                 "bytes");
}

static int measure_index(struct scale *s, const char *tag)
{
    size_t n = family_count(s->idx), bytes = 0;
    char name[96];
    double ms = index_build_ms(s, &bytes);

    if (ms < 0) {
        fprintf(stderr, "kpsa-bench: index build: %s\n",
                token_err(s->tok)->msg);
        return -1;
    }
    snprintf(name, sizeof(name), "index build, %s keys (%zu)", tag, n);
    bench_metric(s->o, "scale", name, ms, "ms");
    snprintf(name, sizeof(name), "index lookup, %s keys (%zu)", tag, n);
    bench_metric(s->o, "scale", name, lookup_ns(s), "ns");
    if (n >= 100) {
        bench_metric(s->o, "scale", "index memory per key (measured)",
                     (double)bytes / (double)n, "bytes");
        index_estimate(s->o, n);
        return measure_refresh(s);
    }
    return 0;
}

/* ---- handshakes with a fresh provider, so its index holds them all ---- */

static int handshakes_at(struct scale *s, const char *tag)
{
    struct bench_lib kpsa;
    struct hs_pair pair;
    struct bench_job job = {.threads = 1,
                            .step = {hs_step},
                            .state = {&pair},
                            .warmup = s->o->warmup,
                            .seconds = s->o->seconds,
                            .counter = bench_token_ops};
    struct bench_result r;
    struct csv_row row;
    char err[BENCH_ERRLEN], name[96];
    double t0, first;
    int ret = -1;

    if (bench_lib_kpsa(&kpsa, s->o->provider, err) != 0) {
        fprintf(stderr, "kpsa-bench: %s\n", err);
        return -1;
    }
    job.counter_arg = kpsa.kpsa;
    if (hs_pair_init(&pair, PROTO_TLS12_CBC,
                     hs_ctx_new(s->plain.ctx, PROTO_TLS12_CBC, 0, &s->raw),
                     hs_ctx_new(kpsa.ctx, PROTO_TLS12_CBC, 1, &s->handle)) != 0)
        goto out;
    t0 = bench_now();
    if (!hs_once(&pair)) {
        fprintf(stderr, "kpsa-bench: a handshake fails\n");
        goto pair;
    }
    first = (bench_now() - t0) * 1e3;
    if (bench_median(&job, s->o->reps, -1, &r) != 0 || r.done_all == 0)
        goto pair;
    snprintf(name, sizeof(name),
             "first handshake of a new provider, %s keys (%zu)", tag,
             family_count(s->idx));
    bench_metric(s->o, "scale", name, first, "ms");
    csv_row_init(&row, "handshake", tag);
    row.protocol = bench_protos[PROTO_TLS12_CBC].name;
    row.kpsa = "server";
    row.threads = 1;
    row.hs_per_s = bench_rate(&r, -1);
    row.us_per_hs = r.elapsed * 1e6 / (double)r.done_all;
    row.ops_per_hs = (double)r.counted / (double)r.done_all;
    row.value = (double)family_count(s->idx);
    row.unit = "keys";
    printf("  handshake, %s keys (%zu): %.1f hs/s, %.1f us/hs, %.2f ops/hs\n",
           tag, family_count(s->idx), row.hs_per_s, row.us_per_hs,
           row.ops_per_hs);
    csv_write(s->o, &row);
    ret = 0;
pair:
    hs_pair_clear(&pair);
out:
    bench_lib_free(&kpsa);
    return ret;
}

/* ---- a key imported while a server runs ---- */

struct live {
    struct kpsa_store *store;
    struct kpsa_server *srv;
    struct bench_lib kpsa;
    SSL_CTX *sctx;
};

static int live_start(struct scale *s, struct live *l, char err[BENCH_ERRLEN])
{
    struct kpsa_store_config cfg = {NULL, NULL, NULL};

    memset(l, 0, sizeof(*l));
    if (bench_lib_kpsa(&l->kpsa, s->o->provider, err) != 0 ||
        (l->store = kpsa_store_open(&cfg, err)) == NULL)
        return -1;
    kpsa_store_set_refresh(l->store, 1);
    l->srv = kpsa_server_new(l->store, NULL);
    l->sctx = kpsa_ssl_ctx_new(l->kpsa.ctx, NULL, TLS_server_method(), err);
    if (l->srv == NULL || l->sctx == NULL ||
        kpsa_server_setup(l->sctx, l->srv, "PSK-AES128-CBC-SHA256", err) != 0)
        return -1;
    return 0;
}

static void live_stop(struct live *l)
{
    SSL_CTX_free(l->sctx);
    kpsa_server_free(l->srv);
    kpsa_store_free(l->store);
    bench_lib_free(&l->kpsa);
}

/* Known-identity handshakes on a thread of their own, meanwhile: the
 * slowest before the import, and while the new key is being found. */
struct watcher {
    struct hs_pair pair;
    atomic_int phase; /* 0 before, 1 during, 2 stop */
    double slowest[2];
    long done[2];
};

static void *watch_main(void *arg)
{
    struct watcher *w = arg;
    int phase;

    while ((phase = atomic_load(&w->phase)) < 2) {
        double t0 = bench_now();

        if (!hs_once(&w->pair))
            continue;
        if (bench_now() - t0 > w->slowest[phase])
            w->slowest[phase] = bench_now() - t0;
        w->done[phase]++;
    }
    OPENSSL_thread_stop();
    return NULL;
}

static int watch_start(struct scale *s, struct live *l, struct watcher *w,
                       pthread_t *t)
{
    memset(w, 0, sizeof(*w));
    atomic_init(&w->phase, 0);
    SSL_CTX_up_ref(l->sctx);
    if (hs_pair_init(&w->pair, PROTO_TLS12_CBC,
                     hs_ctx_new(s->plain.ctx, PROTO_TLS12_CBC, 0, &s->raw),
                     l->sctx) != 0)
        return -1;
    if (pthread_create(t, NULL, watch_main, w) != 0) {
        hs_pair_clear(&w->pair);
        return -1;
    }
    bench_sleep(0.5);
    atomic_store(&w->phase, 1);
    return 0;
}

static void watch_stop(struct watcher *w, pthread_t t)
{
    atomic_store(&w->phase, 2);
    pthread_join(t, NULL);
    hs_pair_clear(&w->pair);
}

/* Handshakes with psk against the running server until one succeeds. */
static double until_found(struct scale *s, struct live *l,
                          const struct bench_psk *psk, long *attempts)
{
    struct hs_pair pair;
    double t0 = bench_now(), waited = -1;
    struct timespec pause = {0, 2000000};

    SSL_CTX_up_ref(l->sctx);
    if (hs_pair_init(&pair, PROTO_TLS12_CBC,
                     hs_ctx_new(s->plain.ctx, PROTO_TLS12_CBC, 0, psk),
                     l->sctx) != 0)
        return -1;
    for (*attempts = 1; bench_now() - t0 < LIVE_TIMEOUT; ++*attempts) {
        if (hs_once(&pair)) {
            waited = bench_now() - t0;
            break;
        }
        nanosleep(&pause, NULL);
    }
    hs_pair_clear(&pair);
    return waited;
}

static int live_import(struct scale *s)
{
    struct bench_psk fresh;
    struct watcher w;
    struct live l;
    pthread_t t;
    char err[BENCH_ERRLEN] = "";
    long attempts = 0;
    double t0, import_ms, waited;
    int ret = -1, watching = 0;

    memset(&fresh, 0, sizeof(fresh));
    if (live_start(s, &l, err) != 0 ||
        until_found(s, &l, &s->raw, &attempts) < 0) {
        fprintf(stderr, "kpsa-bench: live server: %s\n",
                err[0] ? err : "the known key does not connect");
        goto out;
    }
    snprintf(fresh.identity, sizeof(fresh.identity),
             "live-%ld-%ld@scale.example.com", (long)time(NULL),
             (long)getpid());
    fresh.len = 32;
    RAND_bytes(fresh.bytes, (int)fresh.len);
    watching = watch_start(s, &l, &w, &t) == 0;
    t0 = bench_now();
    if (import_one(s, fresh.identity, fresh.bytes, fresh.len) != 0)
        goto out;
    import_ms = (bench_now() - t0) * 1e3;
    waited = until_found(s, &l, &fresh, &attempts);
    if (watching) {
        watch_stop(&w, t);
        watching = 0;
    }
    printf("Key imported while a libkpsa server runs (store refresh 1 s, "
           "provider 1 s):\n");
    bench_metric(s->o, "scale", "import of one family", import_ms, "ms");
    bench_metric(s->o, "scale", "time until the new key connects",
                 waited < 0 ? NAN : waited * 1e3, "ms");
    bench_metric(s->o, "scale", "attempts until it connects", (double)attempts,
                 "attempts");
    bench_metric(s->o, "scale", "slowest known handshake before the import",
                 w.slowest[0] * 1e3, "ms");
    bench_metric(s->o, "scale", "slowest known handshake until it connects",
                 w.slowest[1] * 1e3, "ms");
    bench_metric(s->o, "scale", "known handshakes until it connects",
                 (double)w.done[1], "handshakes");
    ret = waited < 0 ? -1 : 0;
out:
    if (watching)
        watch_stop(&w, t);
    OPENSSL_cleanse(&fresh, sizeof(fresh));
    live_stop(&l);
    return ret;
}

/* ---- the mode ---- */

/* The measured family: the one --kpsa-id names, imported if missing. */
static int ensure_family(struct scale *s)
{
    if (family_lookup(s->idx, s->raw.identity) != NULL)
        return 0;
    return import_one(s, s->raw.identity, s->raw.bytes, s->raw.len);
}

static int scale_steps(struct scale *s)
{
    size_t n = (size_t)s->o->scale;
    double rate;

    printf("kpsa-bench %s: scale, token %s, %zu families on it now\n",
           s->o->started, s->o->token_label, family_count(s->idx));
    rate = create_rate(s);
    bench_metric(s->o, "scale", "token C_CreateObject rate, token secret key",
                 rate, "objects/s");
    if (ensure_family(s) != 0)
        return -1;
    if (family_count(s->idx) <= FEW_KEYS) {
        if (grow_to(s, FEW_KEYS) != 0 || measure_index(s, "10") != 0 ||
            handshakes_at(s, "scale-10") != 0)
            return -1;
    } else
        printf("  (more than %d keys already: no 10-key figures)\n", FEW_KEYS);
    if (grow_to(s, n) != 0 || measure_index(s, "N") != 0 ||
        handshakes_at(s, "scale-N") != 0)
        return -1;
    bench_metric(s->o, "scale",
                 "token C_CreateObject rate, token secret key, at N",
                 create_rate(s), "objects/s");
    return live_import(s);
}

int scale_run(const struct bench_opts *o)
{
    struct scale s = {.o = o};
    char err[BENCH_ERRLEN];
    int ret = 1;

    if (bench_keys(o, &s.raw, &s.handle, err) != 0 ||
        bench_lib_plain(&s.plain, err) != 0 || scale_open(&s, err) != 0) {
        fprintf(stderr, "kpsa-bench: %s\n", err);
        goto out;
    }
    memcpy(s.handle_id, s.handle.bytes + HANDLE_PREFIX_LEN, HANDLE_ID_LEN);
    s.handle_id[HANDLE_ID_LEN] = '\0';
    s.next_id = (unsigned long)family_count(s.idx);
    ret = scale_steps(&s) == 0 ? 0 : 1;
out:
    OPENSSL_cleanse(&s.raw, sizeof(s.raw));
    family_index_free(s.idx);
    token_free(s.tok);
    bench_lib_free(&s.plain);
    return ret;
}

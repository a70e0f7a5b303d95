/*
 * The library's view of the token: which KpsaIds have a whole key family.
 * A server asks this on every ClientHello's psk_identity, so the answer
 * comes from an index read once, never from a token search; an unknown
 * identity rereads the token at most once per refresh interval, so that a
 * flood of made-up identities cannot make the server search per attempt.
 * The interval grows with the token: a reread waits at least REREAD_SHARE
 * times as long as the last one took, so that rereading takes at most one
 * part in REREAD_SHARE + 1 of the token's time, however many keys it
 * holds. With 10,000 keys on SoftHSM2 (a reread of about 2 s) a key
 * imported while the server runs is found within about 40 s.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "family.h"
#include "kpsa.h"
#include "store.h"
#include "token.h"

#define KPSA_API     __attribute__((visibility("default")))
#define REREAD_SHARE 20

struct kpsa_store {
    pthread_mutex_t lock;  /* idx, built, refresh_seconds; held briefly */
    pthread_mutex_t build; /* tok: one index read at a time */
    struct kpsa_token *tok;
    struct family_index *idx;
    struct timespec built;
    long long read_ms; /* how long the last reread took */
    unsigned refresh_seconds;
};

static const char *env_or(const char *value, const char *name)
{
    return value != NULL ? value : getenv(name);
}

static void set_err(char err[KPSA_ERRLEN], const char *msg)
{
    if (err != NULL)
        snprintf(err, KPSA_ERRLEN, "%s", msg);
}

static long long ms_since(const struct timespec *t)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)(now.tv_sec - t->tv_sec) * 1000 +
           (now.tv_nsec - t->tv_nsec) / 1000000;
}

/*
 * Reads a fresh index with the build lock held and swaps it in under the
 * store's lock, so lookups of known KpsaIds go on while the token is
 * searched. The old index is replaced only on success; only the build
 * lock's holder replaces it, so it may read the old one without the
 * store's lock. whole: read every object, else only what the old index
 * lacks (family_index_refresh).
 */
static int store_read(struct kpsa_store *store, int whole,
                      char err[KPSA_ERRLEN])
{
    struct family_index *fresh = family_index_new(), *old = store->idx;
    struct timespec start;
    int failed;

    if (fresh == NULL) {
        set_err(err, "out of memory");
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    failed = (whole || old == NULL
                  ? family_index_build(fresh, store->tok)
                  : family_index_refresh(fresh, old, store->tok)) != 0;
    if (failed) {
        set_err(err, token_err(store->tok)->msg);
        family_index_free(fresh);
        return -1;
    }
    pthread_mutex_lock(&store->lock);
    store->idx = fresh;
    /* What a reread for an unknown KpsaId costs; a whole read is dearer. */
    if (!whole)
        store->read_ms = ms_since(&start);
    pthread_mutex_unlock(&store->lock);
    family_index_free(old);
    return 0;
}

static void mark_built(struct kpsa_store *store)
{
    clock_gettime(CLOCK_MONOTONIC, &store->built);
}

KPSA_API struct kpsa_store *kpsa_store_open(const struct kpsa_store_config *cfg,
                                            char err[KPSA_ERRLEN])
{
    struct token_config tc = {
        .module = env_or(cfg->module, "KPSA_MODULE"),
        .uri = env_or(cfg->token, "KPSA_TOKEN"),
        .pin_source = env_or(cfg->pin_source, "KPSA_PIN_SOURCE"),
        .flags = 0,
    };
    struct kpsa_store *store = calloc(1, sizeof(*store));

    if (store == NULL || (store->tok = token_new()) == NULL) {
        set_err(err, "out of memory");
        free(store);
        return NULL;
    }
    pthread_mutex_init(&store->lock, NULL);
    pthread_mutex_init(&store->build, NULL);
    store->refresh_seconds = 2;
    mark_built(store);
    if (token_open(store->tok, &tc) != 0) {
        set_err(err, token_err(store->tok)->msg);
        goto fail;
    }
    if (store_read(store, 1, err) != 0)
        goto fail;
    return store;
fail:
    kpsa_store_free(store);
    return NULL;
}

KPSA_API void kpsa_store_free(struct kpsa_store *store)
{
    if (store == NULL)
        return;
    family_index_free(store->idx);
    token_free(store->tok);
    pthread_mutex_destroy(&store->build);
    pthread_mutex_destroy(&store->lock);
    free(store);
}

KPSA_API void kpsa_store_set_refresh(struct kpsa_store *store, unsigned seconds)
{
    pthread_mutex_lock(&store->lock);
    store->refresh_seconds = seconds;
    pthread_mutex_unlock(&store->lock);
}

KPSA_API int kpsa_store_refresh(struct kpsa_store *store, char err[KPSA_ERRLEN])
{
    int ret;

    pthread_mutex_lock(&store->lock);
    mark_built(store); /* the next reread is an interval away */
    pthread_mutex_unlock(&store->lock);
    pthread_mutex_lock(&store->build);
    ret = store_read(store, 1, err);
    pthread_mutex_unlock(&store->build);
    return ret;
}

KPSA_API size_t kpsa_store_count(struct kpsa_store *store)
{
    size_t n = 0;

    pthread_mutex_lock(&store->lock);
    for (size_t i = 0; i < family_count(store->idx); i++)
        n += family_is_whole(family_at(store->idx, i)) != 0;
    pthread_mutex_unlock(&store->lock);
    return n;
}

static int whole(const struct family_index *idx, const char *kpsaid)
{
    const struct family *fam = family_lookup(idx, kpsaid);

    return fam != NULL && family_is_whole(fam);
}

/* Called with the lock held: claims the next reread when it is due, so
 * that one caller per interval does it. */
static int claim_refresh(struct kpsa_store *store)
{
    long long wait = (long long)store->refresh_seconds * 1000;

    if (wait < REREAD_SHARE * store->read_ms)
        wait = REREAD_SHARE * store->read_ms;
    if (ms_since(&store->built) < wait)
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &store->built);
    return 1;
}

/* An unknown KpsaId costs a lookup; at most one per interval rereads the
 * token, and a caller that finds a reread under way does not wait. */
int store_has(struct kpsa_store *store, const char *kpsaid)
{
    int found, reread;

    pthread_mutex_lock(&store->lock);
    found = whole(store->idx, kpsaid);
    reread = !found && claim_refresh(store);
    pthread_mutex_unlock(&store->lock);
    if (!reread || pthread_mutex_trylock(&store->build) != 0)
        return found;
    found = store_read(store, 0, NULL) == 0;
    pthread_mutex_unlock(&store->build);
    if (!found)
        return 0;
    pthread_mutex_lock(&store->lock);
    found = whole(store->idx, kpsaid);
    pthread_mutex_unlock(&store->lock);
    return found;
}

unsigned store_tls13_hash(struct kpsa_store *store, const char *kpsaid)
{
    const struct family *fam;
    unsigned hash = 256;

    pthread_mutex_lock(&store->lock);
    fam = family_lookup(store->idx, kpsaid);
    if (fam != NULL &&
        (fam->members & MEMBERS_TLS13_SHA384) == MEMBERS_TLS13_SHA384)
        hash = 384;
    pthread_mutex_unlock(&store->lock);
    return hash;
}

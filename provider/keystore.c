/*
 * The key store: the index of the token's key families, and a pool of
 * logged-in sessions. A handshake takes a session of its own for its token
 * calls, so handshakes on several threads run on the token at the same
 * time; the store's lock is held only to look a family up or to take and
 * return a session, never across a token call. In each session the
 * members a handshake uses are copied once into session objects, which
 * the token computes with faster than with token objects.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "prov.h"

/*
 * A handle the index does not know may name a key imported since it was
 * read. Reading the token again costs a search of every object, so it is
 * done at most once per REFRESH_SECONDS; an unknown handle in between
 * costs nothing. A failed read keeps the index there is.
 */
#define REFRESH_SECONDS 1

static struct token_config config_of(const struct kpsa_prov *prov)
{
    struct token_config cfg = {
        .module = prov->module,
        .uri = prov->uri,
        .pin_source = prov->pin_source,
        .flags = 0,
    };

    return cfg;
}

/* ---- session copies: token object -> session object, per session ---- */

static void copies_clear(struct keystore_slot *slot)
{
    free(slot->from);
    free(slot->to);
    slot->from = slot->to = NULL;
    slot->n_copies = slot->cap_copies = 0;
    slot->no_copies = 0;
}

static size_t copy_pos(const struct keystore_slot *slot, CK_OBJECT_HANDLE obj)
{
    size_t mask = slot->cap_copies - 1, i = (size_t)(obj * 2654435761u) & mask;

    while (slot->from[i] != CK_INVALID_HANDLE && slot->from[i] != obj)
        i = (i + 1) & mask;
    return i;
}

static int copies_grow(struct keystore_slot *slot)
{
    struct keystore_slot old = *slot;
    size_t cap = old.cap_copies ? old.cap_copies * 2 : 64;

    slot->from = calloc(cap, sizeof(*slot->from));
    slot->to = calloc(cap, sizeof(*slot->to));
    slot->cap_copies = cap;
    slot->n_copies = 0;
    if (slot->from == NULL || slot->to == NULL) {
        free(slot->from);
        free(slot->to);
        *slot = old;
        return -1;
    }
    for (size_t i = 0; i < old.cap_copies; i++) {
        size_t j;

        if (old.from[i] == CK_INVALID_HANDLE)
            continue;
        j = copy_pos(slot, old.from[i]);
        slot->from[j] = old.from[i];
        slot->to[j] = old.to[i];
        slot->n_copies++;
    }
    free(old.from);
    free(old.to);
    return 0;
}

static void copies_add(struct keystore_slot *slot, CK_OBJECT_HANDLE from,
                       CK_OBJECT_HANDLE to)
{
    size_t i;

    if (2 * (slot->n_copies + 1) > slot->cap_copies && copies_grow(slot) != 0)
        return;
    i = copy_pos(slot, from);
    slot->from[i] = from;
    slot->to[i] = to;
    slot->n_copies++;
}

CK_OBJECT_HANDLE keystore_object(struct keystore_use *use, int member)
{
    struct keystore_slot *slot = use->slot;
    CK_OBJECT_HANDLE obj = use->fam.handle[member], copy;
    size_t i;

    if (slot->no_copies)
        return obj;
    if (slot->cap_copies > 0) {
        i = copy_pos(slot, obj);
        if (slot->from[i] == obj)
            return slot->to[i];
    }
    /* A token that will not copy (CKA_COPYABLE false, or no C_CopyObject)
     * is used with its token objects. */
    if (token_copy_session(slot->tok, obj, &copy) != 0) {
        slot->no_copies = 1;
        return obj;
    }
    copies_add(slot, obj, copy);
    return copy;
}

/* ---- sessions ---- */

static void slot_close(struct keystore_slot *slot, int abandon)
{
    if (abandon)
        token_abandon(slot->tok);
    else
        token_free(slot->tok);
    slot->tok = NULL;
    copies_clear(slot);
}

static void index_drop(struct kpsa_prov *prov, int abandon)
{
    family_index_free(prov->idx);
    prov->idx = NULL;
    if (abandon)
        token_abandon(prov->primary);
    else
        token_free(prov->primary);
    prov->primary = NULL;
}

static void store_drop(struct kpsa_prov *prov, int abandon)
{
    index_drop(prov, abandon);
    for (int i = 0; i < KEYSTORE_SESSIONS; i++)
        if (!prov->slot[i].busy)
            slot_close(&prov->slot[i], abandon);
    prov->generation++;
}

void keystore_close(struct kpsa_prov *prov)
{
    store_drop(prov, 0);
}

void keystore_abandon(struct kpsa_prov *prov)
{
    store_drop(prov, 1);
}

/* A child after fork must not use its parent's sessions (PKCS#11 2.40
 * 6.7.7): it opens its own. */
static void forget_after_fork(struct kpsa_prov *prov)
{
    if (prov->pid != 0 && prov->pid != getpid()) {
        /* The parent's other threads, mid-handshake or mid-reread, are
         * not in the child. */
        prov->rereading = 0;
        for (int i = 0; i < KEYSTORE_SESSIONS; i++)
            prov->slot[i].busy = 0;
        store_drop(prov, 0);
        prov->pid = 0;
    }
}

static int refused_pin(struct kpsa_prov *prov)
{
    if (!prov->pin_rejected)
        return 0;
    prov_error(prov, KPSA_R_TOKEN,
               "the token refused the PIN before; kpsa does not send it "
               "again until the program restarts");
    return 1;
}

/* Opens the primary session and logs in; the error is raised here. */
static struct kpsa_token *session_open(struct kpsa_prov *prov)
{
    struct token_config cfg = config_of(prov);
    struct kpsa_token *tok = token_new();
    int failed;

    if (tok == NULL) {
        prov_error(prov, KPSA_R_INTERNAL, "out of memory");
        return NULL;
    }
    prov_mark(prov);
    failed = token_open(tok, &cfg) != 0;
    prov_drop_foreign(prov);
    if (failed) {
        prov_error(prov, KPSA_R_TOKEN, "%s", token_err(tok)->msg);
        if (token_pin_rejected(tok))
            prov->pin_rejected = 1;
        token_free(tok);
        return NULL;
    }
    return tok;
}

/* Reads an index with the session tok: all of it, or when old is given,
 * only what old does not hold (family_index_refresh). The error is raised
 * when report is set. */
static struct family_index *index_read(struct kpsa_prov *prov,
                                       struct kpsa_token *tok,
                                       const struct family_index *old,
                                       int report)
{
    struct family_index *fresh = family_index_new();
    int failed;

    if (fresh == NULL) {
        prov_error(prov, KPSA_R_INTERNAL, "out of memory");
        return NULL;
    }
    prov_mark(prov);
    failed = (old != NULL ? family_index_refresh(fresh, old, tok)
                          : family_index_build(fresh, tok)) != 0;
    prov_drop_foreign(prov);
    if (failed) {
        if (report)
            prov_error(prov, KPSA_R_TOKEN, "%s", token_err(tok)->msg);
        family_index_free(fresh);
        return NULL;
    }
    return fresh;
}

static int store_open(struct kpsa_prov *prov)
{
    if (refused_pin(prov))
        return -1;
    /* The first read is made with the lock held: no handshake can go on
     * without an index. */
    clock_gettime(CLOCK_MONOTONIC, &prov->built);
    prov->primary = session_open(prov);
    if (prov->primary == NULL ||
        (prov->idx = index_read(prov, prov->primary, NULL, 1)) == NULL) {
        index_drop(prov, 0);
        return -1;
    }
    prov->pid = getpid();
    return 0;
}

static int refresh_due(const struct kpsa_prov *prov)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec - prov->built.tv_sec >= REFRESH_SECONDS;
}

/* Takes a session for the caller's token calls: an idle open one if
 * there is one, else a closed slot, which the caller opens. */
static struct keystore_slot *slot_take(struct kpsa_prov *prov)
{
    struct keystore_slot *closed = NULL;

    for (;;) {
        for (int i = 0; i < KEYSTORE_SESSIONS; i++) {
            struct keystore_slot *slot = &prov->slot[i];

            if (slot->busy)
                continue;
            if (slot->tok != NULL) {
                slot->busy = 1;
                return slot;
            }
            if (closed == NULL)
                closed = slot;
        }
        if (closed != NULL) {
            closed->busy = 1;
            return closed;
        }
        pthread_cond_wait(&prov->idle, &prov->lock);
    }
}

static void slot_give_back(struct kpsa_prov *prov, struct keystore_slot *slot,
                           int close)
{
    if (close)
        slot_close(slot, 0);
    slot->busy = 0;
    pthread_cond_signal(&prov->idle);
}

/* Reads the index again in a session of the pool. Called with the lock
 * held; releases it meanwhile. A failed read keeps the index there is and
 * stays quiet: the error to report is the unknown handle. */
static void reread_unlocked(struct kpsa_prov *prov)
{
    unsigned generation = prov->generation;
    struct keystore_slot *slot = slot_take(prov);
    /* A copy: the store may start afresh and free its index meanwhile. */
    struct family_index *old = family_index_copy(prov->idx), *fresh = NULL;
    int opened = slot->tok != NULL, unusable = 0;

    if (old == NULL ||
        (!opened && (slot->tok = token_sibling(prov->primary)) == NULL)) {
        family_index_free(old);
        slot_give_back(prov, slot, 0);
        return;
    }
    pthread_mutex_unlock(&prov->lock);
    prov_mark(prov);
    if (opened || token_sibling_open(slot->tok) == 0)
        fresh = index_read(prov, slot->tok, old, 0);
    else
        unusable = 1;
    prov_drop_foreign(prov);
    family_index_free(old);
    pthread_mutex_lock(&prov->lock);
    /* Object handles hold in the instance the index was read in: a store
     * started afresh meanwhile keeps its own. */
    if (fresh != NULL && generation == prov->generation) {
        family_index_free(prov->idx);
        prov->idx = fresh;
        fresh = NULL;
    }
    family_index_free(fresh);
    /* A session opened for the reread stays in the pool. */
    slot_give_back(prov, slot, unusable || generation != prov->generation);
}

/*
 * A handle the index does not know may name a key imported since it was
 * read. The reread runs without the lock, so that handshakes with known
 * keys go on meanwhile, and reads only the objects the index lacks (on
 * SoftHSM2 two searches, about 3.6 s with 10,000 keys, against 9 s for a
 * whole read); one at a time, and a thread that misses during one waits
 * for it and looks again.
 */
static const struct family *find(struct kpsa_prov *prov, const char *id)
{
    const struct family *fam = family_lookup_handle(prov->idx, id);

    if (fam != NULL)
        return fam;
    if (prov->rereading) {
        while (prov->rereading)
            pthread_cond_wait(&prov->reread, &prov->lock);
    } else if (refresh_due(prov)) {
        prov->rereading = 1;
        clock_gettime(CLOCK_MONOTONIC, &prov->built);
        reread_unlocked(prov);
        prov->rereading = 0;
        pthread_cond_broadcast(&prov->reread);
    }
    return prov->idx != NULL ? family_lookup_handle(prov->idx, id) : NULL;
}

/* The store may have started afresh during a reread, its token gone. */
static const char *store_label(const struct kpsa_prov *prov)
{
    return prov->primary != NULL ? token_label(prov->primary) : "(closed)";
}

static int look_up(struct kpsa_prov *prov, const char *id,
                   struct keystore_use *use)
{
    const struct family *fam;

    forget_after_fork(prov);
    if (prov->idx == NULL && store_open(prov) != 0)
        return -1;
    fam = find(prov, id);
    if (fam == NULL) {
        prov_error(prov, KPSA_R_HANDLE_UNRESOLVED,
                   "handle kpsa1.%s names no key on token '%s'; it is never "
                   "used as key bytes",
                   id, store_label(prov));
        return -1;
    }
    if (!family_is_whole(fam)) {
        prov_error(prov, KPSA_R_HANDLE_UNRESOLVED,
                   "%s: key family is incomplete on token '%s'", fam->kpsaid,
                   store_label(prov));
        return -1;
    }
    use->fam = *fam;
    use->generation = prov->generation;
    return 0;
}

/* Sessions of the pool go through the primary session's module instance,
 * in which the index's object handles hold. */
static int take_session(struct kpsa_prov *prov, struct keystore_use *use)
{
    use->slot = slot_take(prov);
    use->fresh = use->slot->tok == NULL;
    if (use->fresh && (use->slot->tok = token_sibling(prov->primary)) == NULL) {
        use->slot->busy = 0;
        pthread_cond_signal(&prov->idle);
        prov_error(prov, KPSA_R_INTERNAL, "out of memory");
        return -1;
    }
    return 0;
}

int keystore_find(struct kpsa_prov *prov, const char *handle_id,
                  struct family *fam)
{
    struct keystore_use use;
    int ret;

    pthread_mutex_lock(&prov->lock);
    ret = look_up(prov, handle_id, &use);
    pthread_mutex_unlock(&prov->lock);
    if (ret == 0)
        *fam = use.fam;
    return ret;
}

int keystore_acquire(struct kpsa_prov *prov, const char *handle_id,
                     struct keystore_use *use)
{
    int ret;

    pthread_mutex_lock(&prov->lock);
    ret = look_up(prov, handle_id, use);
    if (ret == 0)
        ret = take_session(prov, use);
    pthread_mutex_unlock(&prov->lock);
    if (ret != 0 || !use->fresh)
        return ret;
    /* Outside the lock: the slot is ours. */
    prov_mark(prov);
    ret = token_sibling_open(use->slot->tok);
    prov_drop_foreign(prov);
    if (ret == 0)
        return 0;
    prov_error(prov, KPSA_R_TOKEN, "%s: %s", use->fam.kpsaid,
               token_err(use->slot->tok)->msg);
    pthread_mutex_lock(&prov->lock);
    slot_close(use->slot, 0);
    use->slot->busy = 0;
    pthread_cond_signal(&prov->idle);
    pthread_mutex_unlock(&prov->lock);
    return -1;
}

struct kpsa_token *keystore_token(struct keystore_use *use)
{
    return use->slot->tok;
}

void keystore_release(struct kpsa_prov *prov, struct keystore_use *use,
                      int failed)
{
    struct keystore_slot *slot = use->slot;

    if (failed)
        prov_error(prov, KPSA_R_TOKEN, "%s: %s", use->fam.kpsaid,
                   token_err(slot->tok)->msg);
    pthread_mutex_lock(&prov->lock);
    /* Removed token, lost session or login: every session and the index
     * start afresh, since object handles may have changed too. */
    if (failed && use->generation == prov->generation)
        store_drop(prov, 0);
    if (failed || use->generation != prov->generation)
        slot_close(slot, 0);
    slot->busy = 0;
    pthread_cond_signal(&prov->idle);
    pthread_mutex_unlock(&prov->lock);
}

int keystore_hmac(struct kpsa_prov *prov, const char *handle_id, int member,
                  const unsigned char *msg, size_t len, unsigned char *out,
                  size_t out_len)
{
    CK_MECHANISM_TYPE mech = out_len == 48 ? CKM_SHA384_HMAC : CKM_SHA256_HMAC;
    struct keystore_use use;
    int failed;

    if (keystore_acquire(prov, handle_id, &use) != 0)
        return 0;
    if (!(use.fam.found & MEMBER_BIT(member))) {
        prov_error(prov, KPSA_R_UNSUPPORTED,
                   "%s: the family lacks the %s member", use.fam.kpsaid,
                   member_defs[member].name);
        keystore_release(prov, &use, 0);
        return 0;
    }
    prov_mark(prov);
    failed = token_hmac(use.slot->tok, mech, keystore_object(&use, member), msg,
                        len, out, out_len) != 0;
    prov_drop_foreign(prov);
    keystore_release(prov, &use, failed);
    return !failed;
}

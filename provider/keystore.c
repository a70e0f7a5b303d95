#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "prov.h"

void keystore_close(struct kpsa_prov *prov)
{
    family_index_free(prov->idx);
    token_free(prov->tok);
    prov->idx = NULL;
    prov->tok = NULL;
}

void keystore_abandon(struct kpsa_prov *prov)
{
    family_index_free(prov->idx);
    token_abandon(prov->tok);
    prov->idx = NULL;
    prov->tok = NULL;
}

/* A child after fork must not use its parent's sessions (PKCS#11 2.40
 * 6.7.7): it opens its own. */
static void forget_after_fork(struct kpsa_prov *prov)
{
    if (prov->tok != NULL && prov->pid != getpid())
        keystore_close(prov);
}

static int keystore_open(struct kpsa_prov *prov)
{
    struct token_config cfg = {
        .module = prov->module,
        .uri = prov->uri,
        .pin_source = prov->pin_source,
        .flags = 0,
    };
    int failed;

    if (prov->pin_rejected) {
        prov_error(prov, KPSA_R_TOKEN,
                   "the token refused the PIN before; kpsa does not send "
                   "it again until the program restarts");
        return -1;
    }
    prov->tok = token_new();
    prov->idx = family_index_new();
    if (prov->tok == NULL || prov->idx == NULL) {
        prov_error(prov, KPSA_R_INTERNAL, "out of memory");
        keystore_close(prov);
        return -1;
    }
    prov_mark(prov);
    failed = token_open(prov->tok, &cfg) != 0 ||
             family_index_build(prov->idx, prov->tok) != 0;
    prov_drop_foreign(prov);
    if (failed) {
        prov_error(prov, KPSA_R_TOKEN, "%s", token_err(prov->tok)->msg);
        prov->pin_rejected = token_pin_rejected(prov->tok);
        keystore_close(prov);
        return -1;
    }
    prov->pid = getpid();
    clock_gettime(CLOCK_MONOTONIC, &prov->built);
    return 0;
}

/*
 * A handle the index does not know may name a key imported since it was
 * read. Reading the token again costs a search of every object, so it is
 * done at most once per REFRESH_SECONDS; an unknown handle in between
 * costs nothing. A failed read keeps the index there is.
 */
#define REFRESH_SECONDS 1

static void keystore_refresh(struct kpsa_prov *prov)
{
    struct timespec now;
    struct family_index *fresh;
    int failed;

    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - prov->built.tv_sec < REFRESH_SECONDS)
        return;
    prov->built = now;
    fresh = family_index_new();
    if (fresh == NULL)
        return;
    prov_mark(prov);
    failed = family_index_build(fresh, prov->tok) != 0;
    prov_drop_foreign(prov);
    if (failed) {
        family_index_free(fresh);
        return;
    }
    family_index_free(prov->idx);
    prov->idx = fresh;
}

int keystore_acquire(struct kpsa_prov *prov, const char *handle_id,
                     struct kpsa_token **tok, const struct family **fam)
{
    pthread_mutex_lock(&prov->lock);
    forget_after_fork(prov);
    if (prov->tok == NULL && keystore_open(prov) != 0)
        goto fail;
    *fam = family_lookup_handle(prov->idx, handle_id);
    if (*fam == NULL) {
        keystore_refresh(prov);
        *fam = family_lookup_handle(prov->idx, handle_id);
    }
    if (*fam == NULL) {
        prov_error(prov, KPSA_R_HANDLE_UNRESOLVED,
                   "handle kpsa1.%s names no key on token '%s'; it is never "
                   "used as key bytes",
                   handle_id, token_label(prov->tok));
        goto fail;
    }
    if (!family_is_whole(*fam)) {
        prov_error(prov, KPSA_R_HANDLE_UNRESOLVED,
                   "%s: key family is incomplete on token '%s'", (*fam)->kpsaid,
                   token_label(prov->tok));
        goto fail;
    }
    *tok = prov->tok;
    return 0;
fail:
    pthread_mutex_unlock(&prov->lock);
    return -1;
}

void keystore_release(struct kpsa_prov *prov, int failed, const char *kpsaid)
{
    if (failed) {
        prov_error(prov, KPSA_R_TOKEN, "%s: %s", kpsaid,
                   token_err(prov->tok)->msg);
        /* Removed token, lost session or login: start afresh next time. */
        keystore_close(prov);
    }
    pthread_mutex_unlock(&prov->lock);
}

/*
 * Key families: per KpsaId, Kpsa and its PSK-constant secrets as token
 * objects, plus a manifest that is written last and so marks a family as
 * whole. The index is built by one enumeration of the token; lookups after
 * that never search the token. Format: docs/key-format.md.
 */
#ifndef KPSA_FAMILY_H
#define KPSA_FAMILY_H

#include <stddef.h>

#include "handle.h"
#include "kpsaid.h"
#include "schedule.h"
#include "token.h"

#define FAMILY_FORMAT      1
#define FAMILY_APPLICATION "kpsa"
#define FAMILY_ID_PREFIX   "kpsa1:"

struct family {
    char kpsaid[KPSAID_MAX + 1];
    char folded[KPSAID_MAX + 1];
    unsigned version;
    size_t key_len;
    char created[32];
    char check[CHECK_HEX_LEN + 1];
    char handle_id[HANDLE_ID_LEN + 1]; /* set by the index */
    unsigned members; /* what the manifest says the family holds */
    unsigned found;   /* what the enumeration found on the token */
    CK_OBJECT_HANDLE manifest;
    CK_OBJECT_HANDLE handle[MEMBER_COUNT];
};

struct family_index;

struct family_index *family_index_new(void);
void family_index_free(struct family_index *idx);
/* A copy that outlives idx; NULL when out of memory. */
struct family_index *family_index_copy(const struct family_index *idx);
int family_index_build(struct family_index *idx, struct kpsa_token *tok);
/* Into the empty idx, the token's families as they are now, reading only
 * the objects old does not hold; old must come from the same session's
 * module instance. */
int family_index_refresh(struct family_index *idx,
                         const struct family_index *old,
                         struct kpsa_token *tok);

size_t family_count(const struct family_index *idx);
const struct family *family_at(const struct family_index *idx, size_t i);
const struct family *family_lookup(const struct family_index *idx,
                                   const char *canonical);
/* Families whose KpsaId folds to the same as canonical's. */
const struct family *family_lookup_folded(const struct family_index *idx,
                                          const char *canonical);
/* The family a handle names (handle_parse gives the id). */
const struct family *family_lookup_handle(const struct family_index *idx,
                                          const char *handle_id);
/* Objects labelled kpsaid that no manifest claims: an interrupted write. */
size_t family_orphans(const struct family_index *idx, const char *kpsaid);

/* Whole when every member the manifest names is on the token. */
int family_is_whole(const struct family *fam);
/* "tls1.2 tls1.3-sha256 ..." for show and list. */
void family_protocols(const struct family *fam, char *buf, size_t cap);

enum import_flags {
    IMPORT_ALLOW_SHARED_KEY = 1u << 0,
    IMPORT_TLS13_SHA384 = 1u << 1,
};

/*
 * Stores a whole family or nothing. kpsaid must be canonical. On a refusal
 * (duplicate, shared key) nothing is written; on a token failure every
 * object written so far is destroyed again.
 */
int family_import(struct kpsa_token *tok, struct family_index *idx,
                  const char *kpsaid, const unsigned char *key, size_t len,
                  unsigned flags);
int family_delete(struct kpsa_token *tok, struct family_index *idx,
                  const char *kpsaid);
/* The check value computed now, on the token, with the stored key. */
int family_token_check(struct kpsa_token *tok, const struct family *fam,
                       char hex[CHECK_HEX_LEN + 1]);

#endif

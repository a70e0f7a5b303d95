#include "family.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#define MANIFEST_MAX 1024

struct orphan {
    char label[KPSAID_MAX + 1];
    CK_OBJECT_HANDLE handle;
};

/* The index's two tables: by folded KpsaId and by handle. */
enum { BY_NAME, BY_HANDLE, N_TABLES };

struct family_index {
    struct family *fam;
    size_t n, cap;
    size_t *slot; /* N_TABLES tables of open addressing; 0 is empty */
    size_t nslots;
    struct orphan *orphan;
    size_t n_orphans, cap_orphans;
};

struct family_index *family_index_new(void)
{
    return calloc(1, sizeof(struct family_index));
}

void family_index_free(struct family_index *idx)
{
    if (idx == NULL)
        return;
    free(idx->fam);
    free(idx->slot);
    free(idx->orphan);
    free(idx);
}

static void *dup_array(const void *src, size_t n, size_t size)
{
    void *dst = malloc(n > 0 ? n * size : 1);

    if (dst != NULL && n > 0)
        memcpy(dst, src, n * size);
    return dst;
}

struct family_index *family_index_copy(const struct family_index *idx)
{
    struct family_index *copy = calloc(1, sizeof(*copy));

    if (copy == NULL)
        return NULL;
    copy->fam = dup_array(idx->fam, idx->n, sizeof(*idx->fam));
    copy->slot = dup_array(idx->slot, N_TABLES * idx->nslots, sizeof(size_t));
    copy->orphan = dup_array(idx->orphan, idx->n_orphans, sizeof(*idx->orphan));
    if (copy->fam == NULL || copy->slot == NULL || copy->orphan == NULL) {
        family_index_free(copy);
        return NULL;
    }
    copy->n = copy->cap = idx->n;
    copy->nslots = idx->nslots;
    copy->n_orphans = copy->cap_orphans = idx->n_orphans;
    return copy;
}

size_t family_count(const struct family_index *idx)
{
    return idx->n;
}

const struct family *family_at(const struct family_index *idx, size_t i)
{
    return i < idx->n ? &idx->fam[i] : NULL;
}

/* FNV-1a: short keys, no adversary who can see the table. */
static size_t hash_str(const char *s)
{
    size_t h = (size_t)14695981039346656037ull;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * (size_t)1099511628211ull;
    return h;
}

static const char *table_key(const struct family *fam, int table)
{
    return table == BY_NAME ? fam->folded : fam->handle_id;
}

static void slot_insert(struct family_index *idx, size_t i)
{
    size_t mask = idx->nslots - 1;

    for (int t = 0; t < N_TABLES; t++) {
        size_t *slot = idx->slot + t * idx->nslots;
        size_t s = hash_str(table_key(&idx->fam[i], t)) & mask;

        while (slot[s] != 0)
            s = (s + 1) & mask;
        slot[s] = i + 1;
    }
}

static int rehash(struct family_index *idx)
{
    size_t want = 16;

    while (want < 2 * (idx->n + 1))
        want *= 2;
    if (want <= idx->nslots)
        return 0;
    free(idx->slot);
    idx->slot = calloc(N_TABLES * want, sizeof(*idx->slot));
    if (idx->slot == NULL)
        return -1;
    idx->nslots = want;
    for (size_t i = 0; i < idx->n; i++)
        slot_insert(idx, i);
    return 0;
}

static int index_add(struct family_index *idx, const struct family *fam)
{
    char handle[HANDLE_LEN + 1];

    if (idx->n == idx->cap) {
        size_t cap = idx->cap ? idx->cap * 2 : 64;
        struct family *grown = realloc(idx->fam, cap * sizeof(*grown));

        if (grown == NULL)
            return -1;
        idx->fam = grown;
        idx->cap = cap;
    }
    if (handle_of(fam->kpsaid, handle) != 0)
        return -1;
    idx->fam[idx->n] = *fam;
    memcpy(idx->fam[idx->n].handle_id, handle + HANDLE_PREFIX_LEN,
           HANDLE_ID_LEN + 1);
    if (rehash(idx) != 0)
        return -1;
    slot_insert(idx, idx->n);
    idx->n++;
    return 0;
}

static const struct family *table_find(const struct family_index *idx,
                                       int table, const char *key)
{
    size_t mask = idx->nslots - 1, s;
    const size_t *slot = idx->slot + table * idx->nslots;

    if (idx->nslots == 0)
        return NULL;
    for (s = hash_str(key) & mask; slot[s] != 0; s = (s + 1) & mask)
        if (strcmp(table_key(&idx->fam[slot[s] - 1], table), key) == 0)
            return &idx->fam[slot[s] - 1];
    return NULL;
}

const struct family *family_lookup_folded(const struct family_index *idx,
                                          const char *canonical)
{
    char folded[KPSAID_MAX + 1];

    kpsaid_fold(canonical, folded);
    return table_find(idx, BY_NAME, folded);
}

const struct family *family_lookup_handle(const struct family_index *idx,
                                          const char *handle_id)
{
    return table_find(idx, BY_HANDLE, handle_id);
}

const struct family *family_lookup(const struct family_index *idx,
                                   const char *canonical)
{
    const struct family *fam = family_lookup_folded(idx, canonical);

    return fam != NULL && strcmp(fam->kpsaid, canonical) == 0 ? fam : NULL;
}

size_t family_orphans(const struct family_index *idx, const char *kpsaid)
{
    size_t n = 0;

    for (size_t i = 0; i < idx->n_orphans; i++)
        n += strcmp(idx->orphan[i].label, kpsaid) == 0;
    return n;
}

int family_is_whole(const struct family *fam)
{
    return fam->version == FAMILY_FORMAT &&
           (fam->found & fam->members) == fam->members;
}

void family_protocols(const struct family *fam, char *buf, size_t cap)
{
    unsigned m = fam->members;

    /* The raw Kpsa member serves (EC)DHE-PSK only when the premaster is
     * longer than a hash block; whether a handshake can use it is the
     * provider's to say, so it is not claimed here. */
    snprintf(buf, cap, "%s%s%s%s",
             m & MEMBER_BIT(MEMBER_TLS12_PMS_SHA256) ? "tls1.2-sha256 " : "",
             m & MEMBER_BIT(MEMBER_TLS12_PMS_SHA384) ? "tls1.2-sha384 " : "",
             m & MEMBERS_TLS13_SHA256 ? "tls1.3-sha256 " : "",
             m & MEMBERS_TLS13_SHA384 ? "tls1.3-sha384 " : "");
    if (buf[0] != '\0')
        buf[strlen(buf) - 1] = '\0';
}

/* ---- manifest: the family's description, written last ---- */

static size_t manifest_format(const struct family *fam, char *buf, size_t cap)
{
    int n = snprintf(buf, cap,
                     "kpsa-family %u\nkpsa-id %s\nkey-length %zu\n"
                     "created %s\ncheck %s\nmembers",
                     fam->version, fam->kpsaid, fam->key_len, fam->created,
                     fam->check);

    for (int m = 0; m < MEMBER_COUNT && n > 0 && (size_t)n < cap; m++)
        if (fam->members & MEMBER_BIT(m))
            n += snprintf(buf + n, cap - (size_t)n, " %s", member_defs[m].name);
    if (n > 0 && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n, "\n");
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static void manifest_members(struct family *fam, const char *list)
{
    while (*list != '\0') {
        size_t len = strcspn(list, " ");
        int m = member_by_name(list, len);

        if (m >= 0)
            fam->members |= MEMBER_BIT(m);
        list += len;
        list += strspn(list, " ");
    }
}

static void manifest_field(struct family *fam, const char *key, const char *val)
{
    if (strcmp(key, "kpsa-family") == 0)
        fam->version = (unsigned)strtoul(val, NULL, 10);
    else if (strcmp(key, "kpsa-id") == 0)
        snprintf(fam->kpsaid, sizeof(fam->kpsaid), "%s", val);
    else if (strcmp(key, "key-length") == 0)
        fam->key_len = (size_t)strtoul(val, NULL, 10);
    else if (strcmp(key, "created") == 0)
        snprintf(fam->created, sizeof(fam->created), "%s", val);
    else if (strcmp(key, "check") == 0)
        snprintf(fam->check, sizeof(fam->check), "%s", val);
    else if (strcmp(key, "members") == 0)
        manifest_members(fam, val);
}

/* Unknown lines are skipped, so later versions can add fields. */
static int manifest_parse(char *text, struct family *fam)
{
    char *line = text, *next, *sp;

    memset(fam, 0, sizeof(*fam));
    for (; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        sp = strchr(line, ' ');
        if (sp == NULL)
            continue;
        *sp = '\0';
        manifest_field(fam, line, sp + 1);
    }
    if (fam->version == 0 || fam->kpsaid[0] == '\0')
        return -1;
    kpsaid_fold(fam->kpsaid, fam->folded);
    return 0;
}

/* ---- index: one enumeration of manifests, one of secret keys ---- */

static int out_of_memory(struct kpsa_token *tok)
{
    return kpsa_err_set(token_err_mut(tok), KPSA_ERR_TOKEN,
                        "out of memory building the key index");
}

static int load_manifest(struct family_index *idx, struct kpsa_token *tok,
                         CK_OBJECT_HANDLE obj)
{
    char text[MANIFEST_MAX + 1];
    size_t len = 0;
    struct family fam;
    int rc =
        token_read_data(tok, obj, (unsigned char *)text, MANIFEST_MAX, &len);

    if (rc != 0)
        return rc < 0 ? -1 : 0; /* larger than any manifest: not ours */
    text[len] = '\0';
    if (manifest_parse(text, &fam) != 0)
        return 0; /* not ours to judge; list and show will not see it */
    fam.manifest = obj;
    if (index_add(idx, &fam) != 0)
        return out_of_memory(tok);
    return 0;
}

static int add_orphan(struct family_index *idx, const char *label,
                      CK_OBJECT_HANDLE obj)
{
    if (idx->n_orphans == idx->cap_orphans) {
        size_t cap = idx->cap_orphans ? idx->cap_orphans * 2 : 16;
        struct orphan *grown = realloc(idx->orphan, cap * sizeof(*grown));

        if (grown == NULL)
            return -1;
        idx->orphan = grown;
        idx->cap_orphans = cap;
    }
    snprintf(idx->orphan[idx->n_orphans].label, KPSAID_MAX + 1, "%s", label);
    idx->orphan[idx->n_orphans++].handle = obj;
    return 0;
}

static int attach_key(struct family_index *idx, struct kpsa_token *tok,
                      CK_OBJECT_HANDLE obj)
{
    char label[KPSAID_MAX + 1], id[48];
    CK_ATTRIBUTE tmpl[] = {
        {CKA_LABEL, label, KPSAID_MAX},
        {CKA_ID, id, sizeof(id) - 1},
    };
    size_t plen = strlen(FAMILY_ID_PREFIX);
    struct family *fam;
    int rc = token_get_attributes(tok, obj, tmpl, 2), m;

    if (rc != 0)
        return rc < 0 ? -1 : 0; /* a foreign object's long label or id */
    label[tmpl[0].ulValueLen] = '\0';
    if (tmpl[1].ulValueLen < plen || memcmp(id, FAMILY_ID_PREFIX, plen) != 0)
        return 0;
    m = member_by_name(id + plen, tmpl[1].ulValueLen - plen);
    fam = (struct family *)family_lookup(idx, label);
    if (m >= 0 && fam != NULL && !(fam->found & MEMBER_BIT(m))) {
        fam->handle[m] = obj;
        fam->found |= MEMBER_BIT(m);
        return 0;
    }
    if (add_orphan(idx, label, obj) != 0)
        return out_of_memory(tok);
    return 0;
}

/*
 * The index is built from two searches: manifests, then secret keys. An
 * old index may be given, from a read with the same module instance: a
 * family whose manifest it holds is taken from it as it was, and only
 * the objects it does not hold are read (family_index_refresh).
 */

/* An object the old index holds, and its family there. */
struct seen {
    CK_OBJECT_HANDLE obj;
    size_t fam;
};

static int cmp_seen(const void *a, const void *b)
{
    CK_OBJECT_HANDLE x = ((const struct seen *)a)->obj;
    CK_OBJECT_HANDLE y = ((const struct seen *)b)->obj;

    return (x > y) - (x < y);
}

/* The old index's manifests, or its key members, sorted by handle; none
 * without an old index. */
static struct seen *seen_objects(const struct family_index *old, int members,
                                 size_t *n)
{
    size_t count = old != NULL ? old->n : 0;
    struct seen *v =
        malloc((count * (members ? MEMBER_COUNT : 1) + 1) * sizeof(*v));

    *n = 0;
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        const struct family *fam = &old->fam[i];

        if (!members)
            v[(*n)++] = (struct seen){fam->manifest, i};
        for (int m = 0; members && m < MEMBER_COUNT; m++)
            if (fam->found & MEMBER_BIT(m))
                v[(*n)++] = (struct seen){fam->handle[m], i};
    }
    qsort(v, *n, sizeof(*v), cmp_seen);
    return v;
}

static const struct seen *seen_find(const struct seen *v, size_t n,
                                    CK_OBJECT_HANDLE obj)
{
    struct seen key = {obj, 0};

    return bsearch(&key, v, n, sizeof(*v), cmp_seen);
}

/* The manifests; *fresh counts those old did not hold, which are read. */
static int load_manifests(struct family_index *idx,
                          const struct family_index *old,
                          struct kpsa_token *tok, size_t *fresh)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_APPLICATION, FAMILY_APPLICATION, strlen(FAMILY_APPLICATION)},
    };
    CK_OBJECT_HANDLE *objs = NULL;
    size_t n = 0, n_known;
    struct seen *known = seen_objects(old, 0, &n_known);
    const struct seen *was;
    int ret = known == NULL ? out_of_memory(tok) : 0;

    if (ret == 0 && token_find(tok, tmpl, 2, &objs, &n) != 0)
        ret = -1;
    for (size_t i = 0; i < n && ret == 0; i++) {
        was = seen_find(known, n_known, objs[i]);
        if (was == NULL) {
            ++*fresh;
            ret = load_manifest(idx, tok, objs[i]);
        } else if (index_add(idx, &old->fam[was->fam]) != 0) {
            ret = out_of_memory(tok);
        }
    }
    free(objs);
    free(known);
    return ret;
}

/* The secret keys old did not hold, attached to their families or kept
 * as orphans. */
static int load_keys(struct family_index *idx, const struct family_index *old,
                     struct kpsa_token *tok)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)}};
    CK_OBJECT_HANDLE *objs = NULL;
    size_t n = 0, n_known;
    struct seen *known = seen_objects(old, 1, &n_known);
    int ret = known == NULL ? out_of_memory(tok) : 0;

    if (ret == 0 && token_find(tok, tmpl, 1, &objs, &n) != 0)
        ret = -1;
    for (size_t i = 0; i < n && ret == 0; i++)
        if (seen_find(known, n_known, objs[i]) == NULL)
            ret = attach_key(idx, tok, objs[i]);
    free(objs);
    free(known);
    return ret;
}

static int keep_orphans(struct family_index *idx,
                        const struct family_index *old, struct kpsa_token *tok)
{
    for (size_t i = 0; i < old->n_orphans; i++)
        if (add_orphan(idx, old->orphan[i].label, old->orphan[i].handle) != 0)
            return out_of_memory(tok);
    return 0;
}

int family_index_build(struct family_index *idx, struct kpsa_token *tok)
{
    size_t fresh = 0;

    return load_manifests(idx, NULL, tok, &fresh) != 0 ||
                   load_keys(idx, NULL, tok) != 0
               ? -1
               : 0;
}

/*
 * One search for the manifests; only when there are new ones are the
 * secret keys listed, and only the new ones read. On SoftHSM2 with 10,000
 * keys this is one or two searches instead of two searches and 100,000
 * attribute reads. It trusts that an object handle is not given to
 * another object while the session lasts (PKCS#11 3.0 2.7: handles are
 * valid for the lifetime of the application's sessions); a member gone
 * since gives an error at its first use, after which the caller builds
 * its index afresh.
 */
int family_index_refresh(struct family_index *idx,
                         const struct family_index *old, struct kpsa_token *tok)
{
    size_t fresh = 0;
    int ret = load_manifests(idx, old, tok, &fresh);

    if (ret == 0)
        ret =
            fresh > 0 ? load_keys(idx, old, tok) : keep_orphans(idx, old, tok);
    return ret;
}

/* ---- writing ---- */

/* Names a member in errors, for the user to tell which object failed. */
static const char *member_what(int m, char buf[48])
{
    snprintf(buf, 48, "member %s", member_defs[m].name);
    return buf;
}

static CK_KEY_TYPE member_key_type(int m)
{
    switch (member_defs[m].hash) {
    case 256:
        return CKK_SHA256_HMAC;
    case 384:
        return CKK_SHA384_HMAC;
    default:
        return CKK_GENERIC_SECRET;
    }
}

/* Each member may only sign (HMAC) or, for the raw key, nothing but be
 * digested; never leave the token, never change. */
static int create_member(struct kpsa_token *tok, const char *kpsaid, int m,
                         const struct schedule_values *vals,
                         CK_OBJECT_HANDLE *out)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = member_key_type(m);
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_BBOOL sign = member_defs[m].hash != 0 ? CK_TRUE : CK_FALSE;
    char id[48], what[48];
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_MODIFIABLE, &no, sizeof(no)},
        {CKA_SIGN, &sign, sizeof(sign)},
        {CKA_VERIFY, &no, sizeof(no)},
        {CKA_ENCRYPT, &no, sizeof(no)},
        {CKA_DECRYPT, &no, sizeof(no)},
        {CKA_WRAP, &no, sizeof(no)},
        {CKA_UNWRAP, &no, sizeof(no)},
        {CKA_DERIVE, &no, sizeof(no)},
        {CKA_LABEL, (void *)kpsaid, strlen(kpsaid)},
        {CKA_ID, id, 0},
        {CKA_VALUE, (void *)vals->value[m], vals->len[m]},
    };

    t[15].ulValueLen = (CK_ULONG)snprintf(
        id, sizeof(id), "%s%s", FAMILY_ID_PREFIX, member_defs[m].name);
    return token_create(tok, t, sizeof(t) / sizeof(t[0]), out,
                        member_what(m, what));
}

static int create_manifest(struct kpsa_token *tok, struct family *fam)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    char text[MANIFEST_MAX];
    size_t len = manifest_format(fam, text, sizeof(text));
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_MODIFIABLE, &no, sizeof(no)},
        {CKA_LABEL, fam->kpsaid, strlen(fam->kpsaid)},
        {CKA_APPLICATION, FAMILY_APPLICATION, strlen(FAMILY_APPLICATION)},
        {CKA_VALUE, text, len},
    };

    return token_create(tok, t, sizeof(t) / sizeof(t[0]), &fam->manifest,
                        "manifest");
}

/* Undoes a partial write, keeping the error that caused it. */
static void rollback(struct kpsa_token *tok, const struct family *fam)
{
    struct kpsa_err cause = *token_err(tok);
    size_t left = 0;
    char what[48];

    for (int m = MEMBER_COUNT - 1; m >= 0; m--)
        if ((fam->found & MEMBER_BIT(m)) &&
            token_destroy(tok, fam->handle[m], member_what(m, what)) != 0)
            left++;
    *token_err_mut(tok) = cause;
    if (left > 0) {
        size_t used = strlen(cause.msg);

        snprintf(token_err_mut(tok)->msg + used, KPSA_ERR_MAX - used,
                 "; %zu objects left behind, removed by the next import or "
                 "delete of this KpsaId",
                 left);
    }
}

static int write_family(struct kpsa_token *tok, struct family *fam,
                        const struct schedule_values *vals)
{
    for (int m = 0; m < MEMBER_COUNT; m++) {
        if (!(fam->members & MEMBER_BIT(m)))
            continue;
        if (create_member(tok, fam->kpsaid, m, vals, &fam->handle[m]) != 0)
            goto fail;
        fam->found |= MEMBER_BIT(m);
    }
    if (create_manifest(tok, fam) == 0)
        return 0;
fail:
    rollback(tok, fam);
    return -1;
}

/* TS-0003 10.6: the issuer never hands out two keys under one
 * Issuer_Relative_KpsaId; a case variant would be the same name to many
 * peers' eyes, so it is refused too. */
static int refuse_duplicate(struct kpsa_token *tok,
                            const struct family_index *idx, const char *kpsaid)
{
    const struct family *fam = family_lookup_folded(idx, kpsaid);

    if (fam == NULL)
        return 0;
    if (strcmp(fam->kpsaid, kpsaid) == 0)
        return kpsa_err_set(token_err_mut(tok), KPSA_ERR_USER,
                            "already stored on token '%s'; delete it first "
                            "(TS-0003 10.6: one Kpsa per KpsaId)",
                            token_label(tok));
    return kpsa_err_set(token_err_mut(tok), KPSA_ERR_USER,
                        "differs only in letter case from stored '%s' "
                        "(TS-0003 10.6: relative parts must be unique)",
                        fam->kpsaid);
}

/* TS-0003 10.6 NOTE 3: one Kpsa in several entities is a risk the operator
 * must choose. The stored check value narrows the candidates; the token
 * confirms with the full HMAC so a 48-bit collision is no false alarm. */
static int refuse_shared_key(struct kpsa_token *tok,
                             const struct family_index *idx,
                             const unsigned char full[32], const char *check,
                             size_t key_len)
{
    unsigned char mac[32];

    for (size_t i = 0; i < idx->n; i++) {
        const struct family *fam = &idx->fam[i];

        /* HMAC pads keys with zeros: K and K || 00 share every MAC. */
        if (strcmp(fam->check, check) != 0 || fam->key_len != key_len ||
            !(fam->found & MEMBER_BIT(MEMBER_KPSA_SHA256)))
            continue;
        if (token_hmac(tok, CKM_SHA256_HMAC, fam->handle[MEMBER_KPSA_SHA256],
                       (const unsigned char *)CHECK_MESSAGE,
                       strlen(CHECK_MESSAGE), mac, sizeof(mac)) != 0)
            return -1;
        if (CRYPTO_memcmp(mac, full, sizeof(mac)) == 0)
            return kpsa_err_set(token_err_mut(tok), KPSA_ERR_USER,
                                "the same key is stored under '%s' (TS-0003 "
                                "10.6 NOTE 3); --allow-shared-key to store "
                                "it anyway",
                                fam->kpsaid);
    }
    return 0;
}

/* Leftovers of an interrupted write carry no manifest and serve no one. */
static int remove_orphans(struct kpsa_token *tok, struct family_index *idx,
                          const char *kpsaid)
{
    size_t kept = 0;
    int ret = 0;

    for (size_t i = 0; i < idx->n_orphans; i++) {
        struct orphan *o = &idx->orphan[i];

        if (ret == 0 && strcmp(o->label, kpsaid) == 0)
            ret = token_destroy(tok, o->handle, "leftover object");
        else
            idx->orphan[kept++] = *o;
    }
    idx->n_orphans = kept;
    return ret;
}

static void family_init(struct family *fam, const char *kpsaid, size_t len,
                        unsigned flags, const char *check)
{
    time_t now = time(NULL);
    struct tm tm;

    memset(fam, 0, sizeof(*fam));
    snprintf(fam->kpsaid, sizeof(fam->kpsaid), "%s", kpsaid);
    kpsaid_fold(kpsaid, fam->folded);
    fam->version = FAMILY_FORMAT;
    fam->key_len = len;
    gmtime_r(&now, &tm);
    strftime(fam->created, sizeof(fam->created), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(fam->check, sizeof(fam->check), "%s", check);
    fam->members = MEMBERS_BASE;
    if (flags & IMPORT_TLS13_SHA384)
        fam->members |= MEMBERS_TLS13_SHA384;
}

int family_import(struct kpsa_token *tok, struct family_index *idx,
                  const char *kpsaid, const unsigned char *key, size_t len,
                  unsigned flags)
{
    struct schedule_values *vals = malloc(sizeof(*vals));
    unsigned char full[32];
    char check[CHECK_HEX_LEN + 1];
    struct family fam;
    int ret = -1;

    if (vals == NULL || schedule_check_value(key, len, full, check) != 0) {
        kpsa_err_set(token_err_mut(tok), KPSA_ERR_TOKEN,
                     "cannot compute the key schedule");
        goto out;
    }
    if (refuse_duplicate(tok, idx, kpsaid) != 0 ||
        (!(flags & IMPORT_ALLOW_SHARED_KEY) &&
         refuse_shared_key(tok, idx, full, check, len) != 0) ||
        remove_orphans(tok, idx, kpsaid) != 0)
        goto out;
    family_init(&fam, kpsaid, len, flags, check);
    if (schedule_compute(key, len, fam.members, vals) != 0) {
        kpsa_err_set(token_err_mut(tok), KPSA_ERR_TOKEN,
                     "cannot compute the key schedule");
        goto out;
    }
    if (write_family(tok, &fam, vals) != 0)
        goto out;
    if (index_add(idx, &fam) != 0) {
        kpsa_err_set(token_err_mut(tok), KPSA_ERR_TOKEN, "out of memory");
        goto out;
    }
    ret = 0;
out:
    if (vals != NULL)
        OPENSSL_cleanse(vals, sizeof(*vals));
    free(vals);
    OPENSSL_cleanse(full, sizeof(full));
    return ret;
}

static void index_remove(struct family_index *idx, const struct family *fam)
{
    size_t i = (size_t)(fam - idx->fam);

    idx->fam[i] = idx->fam[--idx->n];
    memset(idx->slot, 0, N_TABLES * idx->nslots * sizeof(*idx->slot));
    for (size_t j = 0; j < idx->n; j++)
        slot_insert(idx, j);
}

/* The manifest goes first: from then on the family no longer exists for
 * anyone, and members left by a failure are orphans that import or delete
 * will remove. */
int family_delete(struct kpsa_token *tok, struct family_index *idx,
                  const char *kpsaid)
{
    const struct family *fam = family_lookup(idx, kpsaid);
    char what[48];
    int ret = 0;

    if (fam == NULL && family_orphans(idx, kpsaid) == 0)
        return kpsa_err_set(token_err_mut(tok), KPSA_ERR_USER,
                            "not stored on token '%s'", token_label(tok));
    if (fam != NULL) {
        if (token_destroy(tok, fam->manifest, "manifest") != 0)
            return -1;
        for (int m = 0; m < MEMBER_COUNT; m++)
            if ((fam->found & MEMBER_BIT(m)) && ret == 0)
                ret = token_destroy(tok, fam->handle[m], member_what(m, what));
        index_remove(idx, fam);
    }
    if (ret == 0)
        ret = remove_orphans(tok, idx, kpsaid);
    return ret;
}

int family_token_check(struct kpsa_token *tok, const struct family *fam,
                       char hex[CHECK_HEX_LEN + 1])
{
    unsigned char mac[32];

    if (!(fam->found & MEMBER_BIT(MEMBER_KPSA_SHA256)))
        return kpsa_err_set(token_err_mut(tok), KPSA_ERR_TOKEN,
                            "family is missing its %s member",
                            member_defs[MEMBER_KPSA_SHA256].name);
    if (token_hmac(tok, CKM_SHA256_HMAC, fam->handle[MEMBER_KPSA_SHA256],
                   (const unsigned char *)CHECK_MESSAGE, strlen(CHECK_MESSAGE),
                   mac, sizeof(mac)) != 0)
        return -1;
    schedule_hex(mac, CHECK_HEX_LEN / 2, hex);
    return 0;
}

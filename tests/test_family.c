/*
 * Key families on a real token: import, index, and then every member used
 * the way the provider uses it (HMAC, C_DigestKey), compared with secrets
 * OpenSSL computes from the raw Kpsa (kat.c). The caller prepares the
 * token: KPSA_MODULE, KPSA_TOKEN (may be unset), KPSA_PIN_SOURCE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "family.h"
#include "kat.h"

static const size_t lengths[] = {16, 31, 32, 48, 63, 64};
#define N_FAM (sizeof(lengths) / sizeof(lengths[0]))

#define ALL_MEMBERS  (MEMBERS_BASE | MEMBERS_TLS13_SHA384)
#define IMPORT_FLAGS (IMPORT_TLS13_SHA384 | IMPORT_ALLOW_SHARED_KEY)

struct fixture {
    struct kpsa_token *tok;
    struct family_index *idx;
    struct family_index *before_delete; /* for the refresh after deletes */
    char id[N_FAM][KPSAID_MAX + 1];
    unsigned char key[N_FAM][KPSA_KEY_MAX];
    int stored[N_FAM];
};

static void diag_err(struct kpsa_token *tok)
{
    tap_diag("token error: %s", token_err(tok)->msg);
}

static CK_MECHANISM_TYPE hmac_mech(unsigned hash)
{
    return hash == 384 ? CKM_SHA384_HMAC : CKM_SHA256_HMAC;
}

/* ---- one member ---- */

struct flag_want {
    CK_ATTRIBUTE_TYPE type;
    const char *name;
    int want; /* -1: true exactly for the HMAC members */
};

static const struct flag_want flags[] = {
    {CKA_TOKEN, "CKA_TOKEN", 1},
    {CKA_PRIVATE, "CKA_PRIVATE", 1},
    {CKA_SENSITIVE, "CKA_SENSITIVE", 1},
    {CKA_EXTRACTABLE, "CKA_EXTRACTABLE", 0},
    {CKA_MODIFIABLE, "CKA_MODIFIABLE", 0},
    {CKA_SIGN, "CKA_SIGN", -1},
    {CKA_VERIFY, "CKA_VERIFY", 0},
    {CKA_ENCRYPT, "CKA_ENCRYPT", 0},
    {CKA_DECRYPT, "CKA_DECRYPT", 0},
    {CKA_WRAP, "CKA_WRAP", 0},
    {CKA_UNWRAP, "CKA_UNWRAP", 0},
    {CKA_DERIVE, "CKA_DERIVE", 0},
};
#define N_FLAGS (sizeof(flags) / sizeof(flags[0]))

static void check_flags(struct kpsa_token *tok, CK_OBJECT_HANDLE obj,
                        const char *tag, int m)
{
    CK_BBOOL val[N_FLAGS];
    CK_ATTRIBUTE t[N_FLAGS];
    int rc, good = 1;

    for (size_t i = 0; i < N_FLAGS; i++) {
        t[i].type = flags[i].type;
        t[i].pValue = &val[i];
        t[i].ulValueLen = sizeof(val[i]);
    }
    rc = token_get_attributes(tok, obj, t, N_FLAGS);
    for (size_t i = 0; rc == 0 && i < N_FLAGS; i++) {
        int want = flags[i].want < 0 ? member_defs[m].hash != 0 : flags[i].want;

        if ((val[i] == CK_TRUE) != want) {
            tap_diag("%s is %s", flags[i].name, val[i] ? "true" : "false");
            good = 0;
        }
    }
    if (rc != 0)
        diag_err(tok);
    tap_check(rc == 0 && good, "%s: may only %s, never leave or change", tag,
              member_defs[m].hash ? "sign" : "be digested");
}

/*
 * CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE: the token sets them, and
 * PKCS#11 forbids them in a C_CreateObject template. Returns 1 when both
 * are true, 0 when not, -1 when they cannot be read.
 */
static int born_sealed(struct kpsa_token *tok, CK_OBJECT_HANDLE obj)
{
    CK_BBOOL always = CK_FALSE, never = CK_FALSE;
    CK_ATTRIBUTE t[] = {
        {CKA_ALWAYS_SENSITIVE, &always, sizeof(always)},
        {CKA_NEVER_EXTRACTABLE, &never, sizeof(never)},
    };

    if (token_get_attributes(tok, obj, t, 2) != 0)
        return -1;
    return always == CK_TRUE && never == CK_TRUE;
}

/* The names and sizes the index and the provider rely on. */
static void check_shape(struct kpsa_token *tok, CK_OBJECT_HANDLE obj,
                        const char *tag, const char *kpsaid, int m,
                        size_t key_len)
{
    CK_OBJECT_CLASS cls = 0;
    CK_KEY_TYPE type = 0;
    CK_ULONG value_len = 0;
    char label[KPSAID_MAX + 1] = "", id[48] = "", want_id[48];
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_VALUE_LEN, &value_len, sizeof(value_len)},
        {CKA_LABEL, label, sizeof(label) - 1},
        {CKA_ID, id, sizeof(id) - 1},
    };
    unsigned hash = member_defs[m].hash;
    CK_KEY_TYPE want_type = hash == 384   ? CKK_SHA384_HMAC
                            : hash == 256 ? CKK_SHA256_HMAC
                                          : CKK_GENERIC_SECRET;
    size_t want_len = hash ? kat_block_len(hash) : key_len;
    int rc = token_get_attributes(tok, obj, t, 5);

    if (rc == 0) {
        label[t[3].ulValueLen] = '\0';
        id[t[4].ulValueLen] = '\0';
    }
    snprintf(want_id, sizeof(want_id), "kpsa1:%s", member_defs[m].name);
    if (!tap_check(rc == 0 && cls == CKO_SECRET_KEY && type == want_type &&
                       value_len == want_len && strcmp(label, kpsaid) == 0 &&
                       strcmp(id, want_id) == 0,
                   "%s: class, key type, %zu octets, label and id", tag,
                   want_len))
        tap_diag("rc %d, class %lu, type %lu, length %lu, label '%s', "
                 "id '%s'",
                 rc, (unsigned long)cls, (unsigned long)type,
                 (unsigned long)value_len, label, id);
}

/* The token's HMAC under the member equals the HMAC under the secret. */
static void check_hmac(struct kpsa_token *tok, CK_OBJECT_HANDLE obj,
                       const char *tag, int m, const unsigned char *kpsa,
                       size_t len)
{
    unsigned hash = member_defs[m].hash;
    size_t hl = kat_hash_len(hash), secret_len = 0;
    unsigned char secret[KAT_SECRET_MAX], msg[300];
    unsigned char got[KAT_HASH_MAX], want[KAT_HASH_MAX];
    size_t msg_len[] = {23, sizeof(msg)};
    int ok = kat_member_secret(m, kpsa, len, secret, &secret_len) == 0;

    memcpy(msg, "kpsa token test message", 23);
    for (int i = 0; i < 2 && ok; i++) {
        if (i == 1)
            kat_fill(msg, sizeof(msg), (unsigned)m);
        if (token_hmac(tok, hmac_mech(hash), obj, msg, msg_len[i], got, hl) !=
            0) {
            diag_err(tok);
            ok = 0;
        } else {
            ok = kat_hmac(hash, secret, secret_len, msg, msg_len[i], want) ==
                     0 &&
                 memcmp(got, want, hl) == 0;
        }
    }
    tap_check(ok, "%s: token HMAC-SHA-%u equals HMAC under the secret", tag,
              hash);
}

struct token_key {
    struct kpsa_token *tok;
    CK_MECHANISM_TYPE mech;
    CK_OBJECT_HANDLE obj;
    size_t mac_len;
};

static int token_mac(void *arg, const unsigned char *msg, size_t len,
                     unsigned char *out)
{
    const struct token_key *k = arg;

    return token_hmac(k->tok, k->mech, k->obj, msg, len, out, k->mac_len);
}

/* RFC 5246 8.1: the master secret as P_hash over token HMACs equals
 * OpenSSL's TLS1-PRF over the raw premaster. */
static void check_prf(struct kpsa_token *tok, CK_OBJECT_HANDLE obj,
                      const char *tag, int m, const unsigned char *kpsa,
                      size_t len)
{
    unsigned hash = member_defs[m].hash;
    struct token_key k = {tok, hmac_mech(hash), obj, kat_hash_len(hash)};
    unsigned char pms[KAT_SECRET_MAX], seed[13 + 64], want[48], got[48];
    size_t pms_len = kat_premaster(kpsa, len, pms);

    memcpy(seed, "master secret", 13);
    kat_fill(seed + 13, 64, (unsigned)len);
    tap_check(kat_tls1_prf(hash, pms, pms_len, seed, sizeof(seed), want,
                           sizeof(want)) == 0 &&
                  kat_p_hash(hash, token_mac, &k, seed, sizeof(seed), got,
                             sizeof(got)) == 0 &&
                  memcmp(want, got, sizeof(want)) == 0,
              "%s: master secret from token HMACs equals TLS1-PRF", tag);
}

/* RFC 4279 3: the DHE-PSK premaster ends in Kpsa; the token hashes it. */
static void check_digest(struct kpsa_token *tok, CK_OBJECT_HANDLE obj,
                         const char *tag, const unsigned char *kpsa, size_t len)
{
    unsigned char pms[2 + 32 + 2 + KPSA_KEY_MAX];
    unsigned char got[KAT_HASH_MAX], want[KAT_HASH_MAX];
    size_t prefix_len = 2 + 32 + 2;

    pms[0] = 0;
    pms[1] = 32;
    kat_fill(pms + 2, 32, 4242);
    pms[34] = 0;
    pms[35] = (unsigned char)len;
    memcpy(pms + prefix_len, kpsa, len);
    for (unsigned hash = 256; hash <= 384; hash += 128) {
        CK_MECHANISM_TYPE mech = hash == 384 ? CKM_SHA384 : CKM_SHA256;
        size_t hl = kat_hash_len(hash);
        int rc = token_digest_key(tok, mech, pms, prefix_len, obj, got, hl);

        if (rc != 0)
            diag_err(tok);
        tap_check(
            rc == 0 && kat_digest(hash, pms, prefix_len + len, want) == 0 &&
                memcmp(got, want, hl) == 0,
            "%s: token SHA-%u(DHE-PSK prefix || Kpsa) matches", tag, hash);
        rc = token_digest_key(tok, mech, NULL, 0, obj, got, hl);
        tap_check(rc == 0 && kat_digest(hash, kpsa, len, want) == 0 &&
                      memcmp(got, want, hl) == 0,
                  "%s: token SHA-%u(Kpsa) with no prefix matches", tag, hash);
    }
}

/* Returns what born_sealed says of the member. */
static int check_member(struct kpsa_token *tok, const struct family *fam, int m,
                        const unsigned char *kpsa)
{
    CK_OBJECT_HANDLE obj = fam->handle[m];
    unsigned char mac[32];
    char tag[KPSAID_MAX + 40];

    snprintf(tag, sizeof(tag), "%zu/%s", fam->key_len, member_defs[m].name);
    check_flags(tok, obj, tag, m);
    check_shape(tok, obj, tag, fam->kpsaid, m, fam->key_len);
    if (member_defs[m].hash == 0) {
        tap_check(token_hmac(tok, CKM_SHA256_HMAC, obj,
                             (const unsigned char *)"x", 1, mac,
                             sizeof(mac)) != 0,
                  "%s: the token refuses to sign with the raw key", tag);
        check_digest(tok, obj, tag, kpsa, fam->key_len);
    } else {
        check_hmac(tok, obj, tag, m, kpsa, fam->key_len);
    }
    if (m == MEMBER_TLS12_PMS_SHA256 || m == MEMBER_TLS12_PMS_SHA384)
        check_prf(tok, obj, tag, m, kpsa, fam->key_len);
    return born_sealed(tok, obj);
}

/* One verdict per family: the answer is the token's, the same for all. */
/* PKCS#11 2.40 4.9: a key made by C_CreateObject was known outside the
 * token, so it is never "always sensitive" nor "never extractable"; what
 * keeps it in is CKA_SENSITIVE and CKA_EXTRACTABLE, checked above. */
static void check_births(const struct family *fam, int unreadable, int sealed)
{
    tap_check(unreadable == 0,
              "%zu: CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE readable",
              fam->key_len);
    tap_diag("%d of %d members were born on the token", sealed, MEMBER_COUNT);
}

/* ---- one family ---- */

/* Alone or behind a harmless attribute, CKA_VALUE is never asked for. */
static void check_value_read(struct kpsa_token *tok, const struct family *fam)
{
    unsigned char buf[KAT_BLOCK_MAX];
    char label[KPSAID_MAX];
    CK_ATTRIBUTE t[] = {
        {CKA_LABEL, label, sizeof(label)},
        {CKA_VALUE, buf, sizeof(buf)},
    };
    int refused = 1, untouched = 1;

    memset(buf, 0x5a, sizeof(buf));
    for (int i = 1; i >= 0; i--) {
        kpsa_err_clear(token_err_mut(tok));
        refused &= token_get_attributes(tok, fam->handle[MEMBER_KPSA], t + i,
                                        2 - (CK_ULONG)i) == -1 &&
                   strcmp(token_err(tok)->msg,
                          "refusing to read an object's value") == 0;
    }
    for (size_t i = 0; i < sizeof(buf); i++)
        untouched &= buf[i] == 0x5a;
    tap_check(refused && untouched,
              "%zu: token_get_attributes refuses CKA_VALUE", fam->key_len);
}

static void check_lookups(const struct family_index *idx,
                          const struct family *fam)
{
    char variant[KPSAID_MAX + 1];

    /* "kat-..." becomes "KAT-...": only the relative part's case */
    snprintf(variant, sizeof(variant), "%s", fam->kpsaid);
    for (size_t i = 0; variant[i] != '@'; i++)
        if (variant[i] >= 'a' && variant[i] <= 'z')
            variant[i] = (char)(variant[i] - 'a' + 'A');
    tap_check(family_lookup(idx, variant) == NULL,
              "%zu: family_lookup is exact about the relative part's case",
              fam->key_len);
    tap_check(family_lookup_folded(idx, variant) == fam,
              "%zu: family_lookup_folded finds the case variant", fam->key_len);
    tap_check(family_orphans(idx, fam->kpsaid) == 0, "%zu: no orphans",
              fam->key_len);
}

/* What a family with every member serves, whatever else is listed. */
static int has_protocols(const char *list)
{
    static const char *const want[] = {"tls1.2-sha256", "tls1.2-sha384",
                                       "tls1.3-sha256", "tls1.3-sha384"};
    char padded[160];

    snprintf(padded, sizeof(padded), " %s ", list);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char word[32];

        snprintf(word, sizeof(word), " %s ", want[i]);
        if (strstr(padded, word) == NULL)
            return 0;
    }
    return 1;
}

static void check_manifest(struct kpsa_token *tok, const struct family *fam,
                           const unsigned char *kpsa)
{
    unsigned char full[32];
    char want[CHECK_HEX_LEN + 1], got[CHECK_HEX_LEN + 1] = "";
    char protocols[128];
    size_t n = fam->key_len;

    tap_check(family_is_whole(fam), "%zu: family is whole", n);
    tap_check(fam->version == FAMILY_FORMAT && fam->members == ALL_MEMBERS &&
                  fam->found == ALL_MEMBERS,
              "%zu: manifest version %u, all %d members found", n, fam->version,
              MEMBER_COUNT);
    family_protocols(fam, protocols, sizeof(protocols));
    tap_check(has_protocols(protocols), "%zu: protocols %s", n, protocols);
    schedule_check_value(kpsa, n, full, want);
    tap_check(strcmp(fam->check, want) == 0, "%zu: manifest check value %s", n,
              want);
    if (family_token_check(tok, fam, got) != 0)
        diag_err(tok);
    tap_check(strcmp(got, want) == 0,
              "%zu: family_token_check gives the check value", n);
}

static void check_family(struct fixture *fx, size_t i)
{
    const struct family *fam = family_lookup(fx->idx, fx->id[i]);
    int birth, unreadable = 0, sealed = 0;

    if (!tap_check(fam != NULL, "%s found after a fresh index", fx->id[i]))
        return;
    tap_check(fam->key_len == lengths[i], "%zu: key length in manifest",
              lengths[i]);
    check_manifest(fx->tok, fam, fx->key[i]);
    check_lookups(fx->idx, fam);
    check_value_read(fx->tok, fam);
    for (int m = 0; m < MEMBER_COUNT; m++) {
        if (!(fam->found & MEMBER_BIT(m)))
            continue;
        birth = check_member(fx->tok, fam, m, fx->key[i]);
        unreadable += birth < 0;
        sealed += birth > 0;
    }
    check_births(fam, unreadable, sealed);
}

/* ---- import, refusals, clean-up ---- */

static int user_refusal(struct kpsa_token *tok, int rc, const char *want)
{
    const struct kpsa_err *err = token_err(tok);

    if (rc == -1 && err->kind == KPSA_ERR_USER && strcmp(err->msg, want) == 0)
        return 1;
    tap_diag("rc %d, kind %d, \"%s\"", rc, (int)err->kind, err->msg);
    tap_diag("want \"%s\"", want);
    return 0;
}

static void import_all(struct fixture *fx)
{
    for (size_t i = 0; i < N_FAM; i++) {
        int rc = family_import(fx->tok, fx->idx, fx->id[i], fx->key[i],
                               lengths[i], IMPORT_FLAGS);

        if (rc != 0)
            diag_err(fx->tok);
        fx->stored[i] = tap_check(rc == 0, "import %s", fx->id[i]);
    }
}

/* TS-0003 10.6: nothing is written when an import is refused. */
static void check_refusals(struct fixture *fx, const char *shared_id)
{
    char want[KPSA_ERR_MAX], variant[KPSAID_MAX + 1];
    struct kpsa_token *tok = fx->tok;
    int rc;

    snprintf(want, sizeof(want),
             "already stored on token '%s'; delete it first (TS-0003 10.6: "
             "one Kpsa per KpsaId)",
             token_label(tok));
    rc = family_import(tok, fx->idx, fx->id[0], fx->key[1], lengths[1],
                       IMPORT_FLAGS);
    tap_check(user_refusal(tok, rc, want), "a second import is refused");

    snprintf(variant, sizeof(variant), "K%s", fx->id[0] + 1);
    snprintf(want, sizeof(want),
             "differs only in letter case from stored '%s' (TS-0003 10.6: "
             "relative parts must be unique)",
             fx->id[0]);
    rc = family_import(tok, fx->idx, variant, fx->key[1], lengths[1],
                       IMPORT_FLAGS);
    tap_check(user_refusal(tok, rc, want), "a case variant is refused");

    snprintf(want, sizeof(want),
             "the same key is stored under '%s' (TS-0003 10.6 NOTE 3); "
             "--allow-shared-key to store it anyway",
             fx->id[0]);
    rc = family_import(tok, fx->idx, shared_id, fx->key[0], lengths[0],
                       IMPORT_TLS13_SHA384);
    tap_check(user_refusal(tok, rc, want),
              "a shared key is refused without IMPORT_ALLOW_SHARED_KEY");
    tap_check(family_lookup(fx->idx, shared_id) == NULL &&
                  family_lookup(fx->idx, variant) == NULL,
              "refused imports are not in the index");
}

static struct family_index *fresh_index(struct kpsa_token *tok,
                                        const char *what)
{
    struct family_index *idx = family_index_new();

    if (idx != NULL && family_index_build(idx, tok) != 0) {
        diag_err(tok);
        family_index_free(idx);
        idx = NULL;
    }
    tap_check(idx != NULL, "%s", what);
    return idx;
}

static int same_family(const struct family *a, const struct family *b)
{
    return b != NULL && a->manifest == b->manifest && a->found == b->found &&
           a->members == b->members &&
           strcmp(a->handle_id, b->handle_id) == 0 &&
           memcmp(a->handle, b->handle, sizeof(a->handle)) == 0;
}

/* A refresh from an older index finds what a whole read finds. */
static void check_refresh(struct kpsa_token *tok,
                          const struct family_index *old,
                          const struct family_index *whole, const char *what)
{
    struct family_index *idx = family_index_new();
    int ok = idx != NULL && family_index_refresh(idx, old, tok) == 0;

    if (idx != NULL && !ok)
        diag_err(tok);
    ok = ok && family_count(idx) == family_count(whole);
    for (size_t i = 0; ok && i < family_count(whole); i++) {
        const struct family *fam = family_at(whole, i);

        ok = same_family(fam, family_lookup(idx, fam->kpsaid)) &&
             same_family(fam, family_lookup_handle(idx, fam->handle_id));
    }
    tap_check(ok, "a refresh %s finds what a whole read finds (%zu families)",
              what, family_count(whole));
    family_index_free(idx);
}

static void delete_all(struct fixture *fx, const char *shared_id)
{
    struct family_index *idx;

    for (size_t i = 0; i < N_FAM; i++) {
        if (!fx->stored[i])
            continue;
        if (family_delete(fx->tok, fx->idx, fx->id[i]) != 0)
            diag_err(fx->tok);
        else
            fx->stored[i] = 0;
        tap_check(!fx->stored[i], "delete %s", fx->id[i]);
    }
    idx = fresh_index(fx->tok, "an index built after the deletes");
    if (idx != NULL && fx->before_delete != NULL)
        check_refresh(fx->tok, fx->before_delete, idx, "after the deletes");
    for (size_t i = 0; idx != NULL && i < N_FAM; i++)
        tap_check(family_lookup_folded(idx, fx->id[i]) == NULL &&
                      family_orphans(idx, fx->id[i]) == 0,
                  "%s gone, no objects left", fx->id[i]);
    if (idx != NULL)
        tap_check(family_lookup(idx, shared_id) == NULL &&
                      family_orphans(idx, shared_id) == 0,
                  "the refused shared key left no objects");
    family_index_free(idx);
}

static int open_token(struct fixture *fx, const char *module)
{
    struct token_config cfg = {module, getenv("KPSA_TOKEN"),
                               getenv("KPSA_PIN_SOURCE"), 0};

    fx->tok = token_new();
    if (fx->tok == NULL)
        return tap_check(0, "token_new");
    if (token_open(fx->tok, &cfg) != 0) {
        diag_err(fx->tok);
        return tap_check(0, "token_open");
    }
    tap_check(1, "token '%s' open", token_label(fx->tok));
    fx->idx = fresh_index(fx->tok, "an index of the token as found");
    return fx->idx != NULL;
}

static void run(struct fixture *fx)
{
    char shared_id[KPSAID_MAX + 1];
    struct family_index *fresh, *as_found = family_index_copy(fx->idx);

    for (size_t i = 0; i < N_FAM; i++) {
        /* the pid keeps reruns and parallel runs apart */
        snprintf(fx->id[i], sizeof(fx->id[i]), "kat-%zu-%ld@test.example",
                 lengths[i], (long)getpid());
        kat_fill(fx->key[i], lengths[i],
                 (unsigned)getpid() * 131u + (unsigned)lengths[i]);
    }
    snprintf(shared_id, sizeof(shared_id), "kat-shared-%ld@test.example",
             (long)getpid());
    import_all(fx);
    if (fx->stored[0])
        check_refusals(fx, shared_id);
    fresh = fresh_index(fx->tok, "a fresh index after the imports");
    if (fresh != NULL && as_found != NULL) {
        check_refresh(fx->tok, as_found, fresh,
                      "from the index before imports");
        check_refresh(fx->tok, fresh, fresh, "with nothing new");
    }
    family_index_free(as_found);
    if (fresh != NULL) {
        family_index_free(fx->idx);
        fx->idx = fresh;
        for (size_t i = 0; i < N_FAM; i++)
            if (fx->stored[i])
                check_family(fx, i);
    }
    fx->before_delete = family_index_copy(fx->idx);
    delete_all(fx, shared_id);
    family_index_free(fx->before_delete);
}

int main(void)
{
    const char *module = getenv("KPSA_MODULE");
    struct fixture fx;

    if (module == NULL || module[0] == '\0') {
        puts("1..0 # SKIP no token");
        return 0;
    }
    memset(&fx, 0, sizeof(fx));
    if (open_token(&fx, module))
        run(&fx);
    family_index_free(fx.idx);
    token_free(fx.tok);
    return tap_finish();
}

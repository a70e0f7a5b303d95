#include "schedule.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define HASH_MAX 48

const struct member_def member_defs[MEMBER_COUNT] = {
    [MEMBER_KPSA] = {"kpsa", 0},
    [MEMBER_KPSA_SHA256] = {"kpsa-sha256", 256},
    [MEMBER_TLS12_PMS_SHA256] = {"tls12-pms-sha256", 256},
    [MEMBER_TLS12_PMS_SHA384] = {"tls12-pms-sha384", 384},
    [MEMBER_TLS13_SHA256_EARLY] = {"tls13-sha256-early", 256},
    [MEMBER_TLS13_SHA256_BINDER] = {"tls13-sha256-binder", 256},
    [MEMBER_TLS13_SHA256_DERIVED] = {"tls13-sha256-derived", 256},
    [MEMBER_TLS13_SHA256_HS_KE] = {"tls13-sha256-hs-ke", 256},
    [MEMBER_TLS13_SHA256_MS_KE] = {"tls13-sha256-ms-ke", 256},
    [MEMBER_TLS13_SHA384_EARLY] = {"tls13-sha384-early", 384},
    [MEMBER_TLS13_SHA384_BINDER] = {"tls13-sha384-binder", 384},
    [MEMBER_TLS13_SHA384_DERIVED] = {"tls13-sha384-derived", 384},
    [MEMBER_TLS13_SHA384_HS_KE] = {"tls13-sha384-hs-ke", 384},
    [MEMBER_TLS13_SHA384_MS_KE] = {"tls13-sha384-ms-ke", 384},
};

int member_by_name(const char *name, size_t len)
{
    for (int m = 0; m < MEMBER_COUNT; m++)
        if (strlen(member_defs[m].name) == len &&
            memcmp(member_defs[m].name, name, len) == 0)
            return m;
    return -1;
}

static const EVP_MD *md_of(unsigned hash)
{
    return hash == 384 ? EVP_sha384() : EVP_sha256();
}

static size_t hash_len(unsigned hash)
{
    return hash == 384 ? 48 : 32;
}

static size_t block_len(unsigned hash)
{
    return hash == 384 ? 128 : 64;
}

static int hmac(unsigned hash, const unsigned char *key, size_t key_len,
                const unsigned char *data, size_t len, unsigned char *out)
{
    unsigned int out_len = 0;

    return HMAC(md_of(hash), key, (int)key_len, data, len, out, &out_len) ==
                   NULL
               ? -1
               : 0;
}

/* RFC 2104 2: a longer key is hashed, a shorter one padded with zeros, so
 * one block gives the same MAC and satisfies tokens' minimum key sizes. */
int schedule_block_key(unsigned hash, const unsigned char *key, size_t len,
                       unsigned char *block, size_t *out_len)
{
    size_t b = block_len(hash);
    unsigned int dlen = 0;

    memset(block, 0, b);
    if (len <= b)
        memcpy(block, key, len);
    else if (EVP_Digest(key, len, block, &dlen, md_of(hash), NULL) != 1)
        return -1;
    *out_len = b;
    return 0;
}

/* RFC 8446 7.1: HKDF-Expand-Label for outputs of at most one hash. */
static int expand_label(unsigned hash, const unsigned char *secret,
                        const char *label, const unsigned char *ctx,
                        size_t ctx_len, unsigned char *out)
{
    unsigned char info[2 + 1 + 6 + 32 + 1 + HASH_MAX + 1];
    size_t hl = hash_len(hash), label_len = strlen(label), n = 0;
    unsigned char full[HASH_MAX];
    int ret;

    info[n++] = 0;
    info[n++] = (unsigned char)hl;
    info[n++] = (unsigned char)(6 + label_len);
    memcpy(info + n, "tls13 ", 6);
    memcpy(info + n + 6, label, label_len);
    n += 6 + label_len;
    info[n++] = (unsigned char)ctx_len;
    if (ctx_len > 0) /* C11 7.24.1: no null pointer even for no bytes */
        memcpy(info + n, ctx, ctx_len);
    n += ctx_len;
    info[n++] = 1; /* RFC 5869 2.3: T(1) = HMAC(PRK, info | 0x01) */
    ret = hmac(hash, secret, hl, info, n, full);
    memcpy(out, full, hl);
    OPENSSL_cleanse(full, sizeof(full));
    return ret;
}

/* RFC 8446 7.1: Derive-Secret(secret, label, "") */
static int derive_empty(unsigned hash, const unsigned char *secret,
                        const char *label, unsigned char *out)
{
    unsigned char empty_hash[HASH_MAX];
    unsigned int len = 0;

    if (EVP_Digest("", 0, empty_hash, &len, md_of(hash), NULL) != 1)
        return -1;
    return expand_label(hash, secret, label, empty_hash, len, out);
}

struct tls13_secrets {
    unsigned char early[HASH_MAX], binder_key[HASH_MAX];
    unsigned char binder[HASH_MAX], derived[HASH_MAX];
    unsigned char hs_ke[HASH_MAX], derived_hs[HASH_MAX], ms_ke[HASH_MAX];
};

/* RFC 8446 7.1: the schedule up to the master secret with no (EC)DHE input
 * (psk_ke), plus the binder's finished key for an external PSK (4.2.11.2). */
static int tls13_chain(unsigned hash, const unsigned char *kpsa, size_t len,
                       struct tls13_secrets *s)
{
    unsigned char zeros[HASH_MAX] = {0};
    size_t hl = hash_len(hash);

    return hmac(hash, zeros, hl, kpsa, len, s->early) ||
           derive_empty(hash, s->early, "ext binder", s->binder_key) ||
           expand_label(hash, s->binder_key, "finished", NULL, 0, s->binder) ||
           derive_empty(hash, s->early, "derived", s->derived) ||
           hmac(hash, s->derived, hl, zeros, hl, s->hs_ke) ||
           derive_empty(hash, s->hs_ke, "derived", s->derived_hs) ||
           hmac(hash, s->derived_hs, hl, zeros, hl, s->ms_ke);
}

static int store_tls13(unsigned hash, int first, const unsigned char *kpsa,
                       size_t len, struct schedule_values *out)
{
    struct tls13_secrets s;
    const unsigned char *order[5] = {s.early, s.binder, s.derived, s.hs_ke,
                                     s.ms_ke};
    int ret = tls13_chain(hash, kpsa, len, &s);

    for (int i = 0; ret == 0 && i < 5; i++)
        ret = schedule_block_key(hash, order[i], hash_len(hash),
                                 out->value[first + i], &out->len[first + i]);
    OPENSSL_cleanse(&s, sizeof(s));
    return ret;
}

/* RFC 4279 2: premaster = u16 N, N zero octets, u16 N, PSK. */
static int store_tls12_pms(unsigned hash, int member, const unsigned char *kpsa,
                           size_t len, struct schedule_values *out)
{
    unsigned char pms[2 * KPSA_KEY_MAX + 4];
    size_t n = 0;
    int ret;

    memset(pms, 0, sizeof(pms));
    pms[n++] = (unsigned char)(len >> 8);
    pms[n++] = (unsigned char)len;
    n += len;
    pms[n++] = (unsigned char)(len >> 8);
    pms[n++] = (unsigned char)len;
    memcpy(pms + n, kpsa, len);
    n += len;
    ret =
        schedule_block_key(hash, pms, n, out->value[member], &out->len[member]);
    OPENSSL_cleanse(pms, sizeof(pms));
    return ret;
}

int schedule_compute(const unsigned char *kpsa, size_t len, unsigned mask,
                     struct schedule_values *out)
{
    int ret = 0;

    if (len == 0 || len > KPSA_KEY_MAX)
        return -1;
    memset(out, 0, sizeof(*out));
    memcpy(out->value[MEMBER_KPSA], kpsa, len);
    out->len[MEMBER_KPSA] = len;
    ret |= schedule_block_key(256, kpsa, len, out->value[MEMBER_KPSA_SHA256],
                              &out->len[MEMBER_KPSA_SHA256]);
    ret |= store_tls12_pms(256, MEMBER_TLS12_PMS_SHA256, kpsa, len, out);
    ret |= store_tls12_pms(384, MEMBER_TLS12_PMS_SHA384, kpsa, len, out);
    if (mask & MEMBERS_TLS13_SHA256)
        ret |= store_tls13(256, MEMBER_TLS13_SHA256_EARLY, kpsa, len, out);
    if (mask & MEMBERS_TLS13_SHA384)
        ret |= store_tls13(384, MEMBER_TLS13_SHA384_EARLY, kpsa, len, out);
    return ret ? -1 : 0;
}

void schedule_hex(const unsigned char *bytes, size_t len, char *hex)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        hex[2 * i] = digits[bytes[i] >> 4];
        hex[2 * i + 1] = digits[bytes[i] & 15];
    }
    hex[2 * len] = '\0';
}

int schedule_check_value(const unsigned char *kpsa, size_t len,
                         unsigned char full[32], char hex[CHECK_HEX_LEN + 1])
{
    if (hmac(256, kpsa, len, (const unsigned char *)CHECK_MESSAGE,
             strlen(CHECK_MESSAGE), full) != 0)
        return -1;
    schedule_hex(full, CHECK_HEX_LEN / 2, hex);
    return 0;
}

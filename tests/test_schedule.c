/*
 * Known answers for the key schedule. Every stored member is an HMAC key
 * normalised to one hash block, so the property that matters is that an
 * HMAC under it equals the HMAC under the secret it stands for, as
 * OpenSSL's own TLS13-KDF and TLS1-PRF compute that secret (see kat.c).
 */
#include <stdio.h>
#include <string.h>

#include "kat.h"
#include "schedule.h"

static const size_t lengths[] = {1, 16, 30, 31, 32, 48, 62, 63, 64};

/* The masks family_import uses: TLS 1.3 with SHA-384 is optional. */
static const unsigned masks[] = {MEMBERS_BASE,
                                 MEMBERS_BASE | MEMBERS_TLS13_SHA384};

static int from_hex(const char *hex, unsigned char *out)
{
    size_t n = strlen(hex) / 2;
    unsigned v;

    for (size_t i = 0; i < n; i++) {
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    return (int)n;
}

/* Messages shorter and longer than either hash block. */
static int same_macs(unsigned hash, const unsigned char *stored,
                     size_t stored_len, const unsigned char *secret,
                     size_t secret_len)
{
    static const char text[] = "client finished";
    unsigned char msg[300], a[KAT_HASH_MAX], b[KAT_HASH_MAX];
    size_t hl = kat_hash_len(hash);

    memcpy(msg, text, sizeof(text) - 1);
    if (kat_hmac(hash, stored, stored_len, msg, sizeof(text) - 1, a) != 0 ||
        kat_hmac(hash, secret, secret_len, msg, sizeof(text) - 1, b) != 0 ||
        memcmp(a, b, hl) != 0)
        return 0;
    kat_fill(msg, sizeof(msg), 7);
    if (kat_hmac(hash, stored, stored_len, msg, sizeof(msg), a) != 0 ||
        kat_hmac(hash, secret, secret_len, msg, sizeof(msg), b) != 0 ||
        memcmp(a, b, hl) != 0)
        return 0;
    return 1;
}

static void check_raw(const struct schedule_values *v, const char *tag,
                      const unsigned char *kpsa, size_t len)
{
    tap_check(v->len[MEMBER_KPSA] == len &&
                  memcmp(v->value[MEMBER_KPSA], kpsa, len) == 0,
              "%s: %s holds Kpsa as is", tag, member_defs[MEMBER_KPSA].name);
}

static void check_hashed(const struct schedule_values *v, int m,
                         const char *tag, const unsigned char *kpsa, size_t len)
{
    unsigned hash = kat_member_hash(m);
    unsigned char secret[KAT_SECRET_MAX];
    size_t secret_len = 0, block = kat_block_len(hash);
    const char *name = member_defs[m].name;

    tap_check(v->len[m] == block, "%s: %s is one %zu-octet block", tag, name,
              block);
    if (kat_member_secret(m, kpsa, len, secret, &secret_len) != 0) {
        tap_check(0, "%s: %s reference computed with OpenSSL", tag, name);
        return;
    }
    if (!tap_check(same_macs(hash, v->value[m], v->len[m], secret, secret_len),
                   "%s: HMAC under %s equals HMAC under the secret", tag,
                   name)) {
        tap_diag_hex("expected secret", secret, secret_len);
        tap_diag_hex("stored", v->value[m], v->len[m]);
    }
}

/* RFC 5246 8.1 and RFC 7627 4: both master secret derivations libssl
 * runs over the premaster, as P_hash on the stored member. */
static void check_prf(const struct schedule_values *v, int m, const char *tag,
                      const unsigned char *kpsa, size_t len)
{
    static const char *labels[] = {"master secret", "extended master secret"};
    unsigned hash = kat_member_hash(m);
    struct kat_soft_key key = {hash, v->value[m], v->len[m]};
    unsigned char pms[KAT_SECRET_MAX], seed[22 + 64];
    unsigned char want[48], got[48];
    size_t pms_len = kat_premaster(kpsa, len, pms);

    for (int i = 0; i < 2; i++) {
        size_t label_len = strlen(labels[i]);
        size_t seed_len = label_len + (i == 0 ? 64 : kat_hash_len(hash));

        memcpy(seed, labels[i], label_len);
        kat_fill(seed + label_len, seed_len - label_len, (unsigned)len);
        tap_check(kat_tls1_prf(hash, pms, pms_len, seed, seed_len, want,
                               sizeof(want)) == 0 &&
                      kat_p_hash(hash, kat_soft_mac, &key, seed, seed_len, got,
                                 sizeof(got)) == 0 &&
                      memcmp(want, got, sizeof(want)) == 0,
                  "%s: %s gives TLS1-PRF's %s", tag, member_defs[m].name,
                  labels[i]);
    }
}

static void check_one(size_t len, unsigned mask)
{
    struct schedule_values v;
    unsigned char kpsa[KPSA_KEY_MAX];
    char tag[64];

    snprintf(tag, sizeof(tag), "%zu-octet Kpsa, %s", len,
             mask & MEMBERS_TLS13_SHA384 ? "SHA-384 too" : "base");
    kat_fill(kpsa, len, (unsigned)len);
    memset(&v, 0xa5, sizeof(v));
    if (!tap_check(schedule_compute(kpsa, len, mask, &v) == 0,
                   "%s: schedule_compute", tag))
        return;
    check_raw(&v, tag, kpsa, len);
    for (int m = MEMBER_KPSA + 1; m < MEMBER_COUNT; m++) {
        if (m >= MEMBER_TLS13_SHA384_EARLY && !(mask & MEMBERS_TLS13_SHA384))
            tap_check(v.len[m] == 0, "%s: no %s", tag, member_defs[m].name);
        else
            check_hashed(&v, m, tag, kpsa, len);
    }
    check_prf(&v, MEMBER_TLS12_PMS_SHA256, tag, kpsa, len);
    check_prf(&v, MEMBER_TLS12_PMS_SHA384, tag, kpsa, len);
}

/*
 * A third opinion besides OpenSSL and the code under test: the TLS 1.3
 * secrets of Kpsa = 00 01 .. 1f, computed once with Python's hmac module
 * and checked against `openssl kdf ... TLS13-KDF`.
 */
static const char *const literal[2][5] = {
    {"46bd320605c5a6b6163ab70bc6345b92a5f908e79fe58979c23ebb47d1a5e307",
     "9f94e68d1b920e77b42694d80e5fc6dcff43270d23f8af4913c18252436fcd74",
     "00ee17cb81695a54611530cff810a20eafbddc504e6cf7fa8a7129242d29e943",
     "9859803b3c3ddc750d3be02a2b1f673e7173cbeaa722d48391b7998cb96cb771",
     "cf751cac9ef5e9ffa867320f801568f0acc0d7394dd2d4d8fa7fcbaa47a16641"},
    {"79faab675751f724f82634db3212fedb20fc76151305be0d"
     "12c946a7f62a9aac22af76ea232f604fb4a30c23e291fb53",
     "0000cbdb64582be330338850ffb5a1a1d02c684429fa0a19"
     "4de39698f6ed52b9c9415f40452a4113675d0eaf1daa5d7f",
     "db03271ed859a3d67d90a6559ecf8f4bc4cae7050e5e7e7b"
     "327e85ef84bbc7b68c9f5b9a5e7c4304c0beec1c8572d997",
     "8764b051444f91e781990d6baceb1818103043cb57180588"
     "fd17a28294bdded17e2055e4ad7a411c7f6da72f92459688",
     "e765a8aad5fffb50665f5e55f31d1e3f482fe8ff0ec1efb1"
     "de83a5171976cfce7bbae633da0b4c26b8d774fcf5758cad"},
};

static int zeros(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

static void check_literals(void)
{
    struct schedule_values v;
    unsigned char kpsa[32], want[KAT_HASH_MAX];
    int ok;

    for (int i = 0; i < 32; i++)
        kpsa[i] = (unsigned char)i;
    ok = schedule_compute(kpsa, sizeof(kpsa),
                          MEMBERS_BASE | MEMBERS_TLS13_SHA384, &v) == 0;
    for (int h = 0; h < 2; h++) {
        unsigned hash = h ? 384 : 256;
        int first = h ? MEMBER_TLS13_SHA384_EARLY : MEMBER_TLS13_SHA256_EARLY;
        size_t hl = kat_hash_len(hash);

        for (int i = 0; i < 5; i++) {
            const unsigned char *got = v.value[first + i];

            from_hex(literal[h][i], want);
            /* a hash-length secret is padded with zeros, not hashed */
            tap_check(ok && memcmp(got, want, hl) == 0 &&
                          zeros(got + hl, kat_block_len(hash) - hl),
                      "Kpsa 00..1f: %s is the literal secret, zero-padded",
                      member_defs[first + i].name);
        }
    }
}

static void check_value_literal(void)
{
    unsigned char kpsa[32], full[32], want[32];
    char hex[CHECK_HEX_LEN + 1];

    for (int i = 0; i < 32; i++)
        kpsa[i] = (unsigned char)i;
    from_hex("ffb3ef4233a6a8b7699dba4528b3669a"
             "042eb887cd1f4afd3db8333280b3d563",
             want);
    tap_check(schedule_check_value(kpsa, sizeof(kpsa), full, hex) == 0 &&
                  memcmp(full, want, 32) == 0 &&
                  strcmp(hex, "ffb3ef4233a6") == 0,
              "Kpsa 00..1f: check value ffb3ef4233a6 (openssl dgst -hmac)");
}

static void check_values(void)
{
    static const char msg[] = CHECK_MESSAGE;
    unsigned char kpsa[KPSA_KEY_MAX], full[32], want[KAT_HASH_MAX];
    char hex[CHECK_HEX_LEN + 1], want_hex[CHECK_HEX_LEN + 1];

    tap_check(strcmp(msg, "kpsa check value") == 0,
              "the check message is the documented one");
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        size_t len = lengths[i];
        int rc;

        kat_fill(kpsa, len, (unsigned)len);
        memset(hex, 'X', sizeof(hex));
        rc = schedule_check_value(kpsa, len, full, hex);
        kat_hmac(256, kpsa, len, (const unsigned char *)msg, sizeof(msg) - 1,
                 want);
        for (int j = 0; j < CHECK_HEX_LEN / 2; j++)
            snprintf(want_hex + 2 * j, 3, "%02x", want[j]);
        if (!tap_check(rc == 0 && memcmp(full, want, 32) == 0 &&
                           strcmp(hex, want_hex) == 0,
                       "%zu-octet Kpsa: check value %s", len, want_hex))
            tap_diag("got \"%.*s\"", CHECK_HEX_LEN, hex);
    }
    check_value_literal();
}

/* RFC 2104 2: K0 is the key padded to a block, or its hash padded. */
static void check_block_key(unsigned hash, size_t key_len)
{
    unsigned char key[300], block[2 * KAT_BLOCK_MAX], k0[KAT_BLOCK_MAX];
    size_t b = kat_block_len(hash), got_len = 0;
    int hashed = key_len > b, ok = 1;

    kat_fill(key, key_len, (unsigned)(key_len + hash));
    memset(k0, 0, sizeof(k0));
    if (hashed)
        ok = kat_digest(hash, key, key_len, k0) == 0;
    else
        memcpy(k0, key, key_len);
    memset(block, 0xa5, sizeof(block));
    ok = ok && schedule_block_key(hash, key, key_len, block, &got_len) == 0;
    tap_check(ok && got_len == b && memcmp(block, k0, b) == 0,
              "SHA-%u block key of %zu octets is the key %s", hash, key_len,
              hashed ? "hashed, then zero-padded" : "zero-padded");
    tap_check(block[b] == 0xa5,
              "SHA-%u block key of %zu octets writes one block only", hash,
              key_len);
    tap_check(ok && same_macs(hash, block, got_len, key, key_len),
              "SHA-%u block key of %zu octets gives the key's HMAC", hash,
              key_len);
}

static void check_block_keys(void)
{
    check_block_key(256, 20);
    check_block_key(256, 64);
    check_block_key(256, 65);
    check_block_key(256, 100);
    /* longer than SHA-256's block, not SHA-384's: kept */
    check_block_key(384, 100);
    check_block_key(384, 128);
    check_block_key(384, 129);
    check_block_key(384, 200);
}

static void check_limits(void)
{
    struct schedule_values v;
    unsigned char kpsa[KPSA_KEY_MAX + 1];

    kat_fill(kpsa, sizeof(kpsa), 1);
    tap_check(schedule_compute(kpsa, 0, MEMBERS_BASE, &v) == -1,
              "schedule_compute refuses an empty Kpsa");
    tap_check(schedule_compute(kpsa, KPSA_KEY_MAX + 1, MEMBERS_BASE, &v) == -1,
              "schedule_compute refuses a 65-octet Kpsa");
}

/* The table the token objects are named and typed by. */
static void check_member_table(void)
{
    int names = 1, hashes = 1;

    for (int m = 0; m < MEMBER_COUNT; m++) {
        const char *name = member_defs[m].name;

        names &= member_by_name(name, strlen(name)) == m;
        hashes &= member_defs[m].hash == kat_member_hash(m);
    }
    tap_check(names, "member_by_name finds every member by its name");
    tap_check(hashes, "member_defs gives every member its hash");
    tap_check(member_by_name("kpsa-sha256x", 11) == MEMBER_KPSA_SHA256 &&
                  member_by_name("kpsa-sha25", 10) == -1 &&
                  member_by_name("kpsa-sha2566", 12) == -1 &&
                  member_by_name("", 0) == -1,
              "member_by_name matches the whole name and nothing else");
}

int main(void)
{
    check_member_table();
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++)
        for (size_t j = 0; j < sizeof(masks) / sizeof(masks[0]); j++)
            check_one(lengths[i], masks[j]);
    check_literals();
    check_values();
    check_block_keys();
    check_limits();
    return tap_finish();
}

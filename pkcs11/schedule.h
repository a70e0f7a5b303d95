/*
 * The PSK-constant secrets of the (D)TLS key schedules, computed in software
 * while the importer holds Kpsa anyway, so that the token only ever has to
 * compute HMACs over per-connection data (see docs/key-format.md).
 */
#ifndef KPSA_SCHEDULE_H
#define KPSA_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

/* RFC 4279 5.3: PSKs up to 64 octets must be accepted; we store no more. */
#define KPSA_KEY_MAX 64
/* The largest HMAC block: SHA-384's. Every HMAC member is one block. */
#define SCHEDULE_BLOCK_MAX 128

enum member {
    MEMBER_KPSA,               /* Kpsa as is, for C_DigestKey */
    MEMBER_KPSA_SHA256,        /* Kpsa as an HMAC-SHA-256 key */
    MEMBER_TLS12_PMS_SHA256,   /* plain PSK premaster, SHA-256 PRF */
    MEMBER_TLS12_PMS_SHA384,   /* plain PSK premaster, SHA-384 PRF */
    MEMBER_TLS13_SHA256_EARLY, /* first of five TLS 1.3 members */
    MEMBER_TLS13_SHA256_BINDER,
    MEMBER_TLS13_SHA256_DERIVED,
    MEMBER_TLS13_SHA256_HS_KE,
    MEMBER_TLS13_SHA256_MS_KE,
    MEMBER_TLS13_SHA384_EARLY,
    MEMBER_TLS13_SHA384_BINDER,
    MEMBER_TLS13_SHA384_DERIVED,
    MEMBER_TLS13_SHA384_HS_KE,
    MEMBER_TLS13_SHA384_MS_KE,
    MEMBER_COUNT
};

#define MEMBER_BIT(m)        (1u << (m))
#define MEMBERS_TLS13_SHA256 (0x1fu << MEMBER_TLS13_SHA256_EARLY)
#define MEMBERS_TLS13_SHA384 (0x1fu << MEMBER_TLS13_SHA384_EARLY)
#define MEMBERS_BASE                                                           \
    (MEMBER_BIT(MEMBER_KPSA) | MEMBER_BIT(MEMBER_KPSA_SHA256) |                \
     MEMBER_BIT(MEMBER_TLS12_PMS_SHA256) |                                     \
     MEMBER_BIT(MEMBER_TLS12_PMS_SHA384) | MEMBERS_TLS13_SHA256)

struct member_def {
    const char *name; /* stored in CKA_ID as "kpsa1:<name>" */
    unsigned hash;    /* 0 for the raw key, else 256 or 384 */
};

extern const struct member_def member_defs[MEMBER_COUNT];

/* Looks a member up by its stored name; -1 if unknown. */
int member_by_name(const char *name, size_t len);

struct schedule_values {
    unsigned char value[MEMBER_COUNT][SCHEDULE_BLOCK_MAX];
    size_t len[MEMBER_COUNT];
};

/*
 * Fills the members in mask from Kpsa. Returns 0, or -1 if OpenSSL failed.
 * The caller wipes out with OPENSSL_cleanse whatever happens.
 */
int schedule_compute(const unsigned char *kpsa, size_t kpsa_len, unsigned mask,
                     struct schedule_values *out);

/* HMAC's key normalised to exactly one block of the hash (RFC 2104 2). */
int schedule_block_key(unsigned hash, const unsigned char *key, size_t len,
                       unsigned char *block, size_t *block_len);

/* Writes 2 * len lower-case hex digits and a NUL. */
void schedule_hex(const unsigned char *bytes, size_t len, char *hex);

/* The documented key check value: first 6 bytes, in hex, of
 * HMAC-SHA-256(Kpsa, "kpsa check value"). full gets all 32 bytes. */
#define CHECK_MESSAGE "kpsa check value"
#define CHECK_HEX_LEN 12
int schedule_check_value(const unsigned char *kpsa, size_t len,
                         unsigned char full[32], char hex[CHECK_HEX_LEN + 1]);

#endif

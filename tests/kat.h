/*
 * Shared by the unit and token tests: TAP output, and reference values for
 * the key family computed with OpenSSL's own KDF implementations
 * (TLS13-KDF, TLS1-PRF) and HMAC, never with pkcs11/schedule.c, so that a
 * mistake there cannot hide behind the same mistake here.
 */
#ifndef KPSA_TEST_KAT_H
#define KPSA_TEST_KAT_H

#include <stddef.h>

#if defined(__GNUC__)
#define KAT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define KAT_PRINTF(a, b)
#endif

#define KAT_HASH_MAX  48
#define KAT_BLOCK_MAX 128
/* The RFC 4279 2 premaster of the longest Kpsa (64 octets). */
#define KAT_SECRET_MAX (2 * 64 + 4)

/* ---- TAP ---- */

/* Prints "ok N - desc" or "not ok N - desc"; returns cond. */
int tap_check(int cond, const char *fmt, ...) KAT_PRINTF(2, 3);
void tap_diag(const char *fmt, ...) KAT_PRINTF(1, 2);
void tap_diag_hex(const char *what, const unsigned char *p, size_t n);
/* Prints the plan; returns the exit status (1 if any check failed). */
int tap_finish(void);

/* ---- reference values ---- */

/* 256 or 384; the member's hash by the key format, 0 for the raw key. */
unsigned kat_member_hash(int member);
size_t kat_hash_len(unsigned hash);
size_t kat_block_len(unsigned hash);

/* Deterministic test bytes, different for every seed. */
void kat_fill(unsigned char *buf, size_t len, unsigned seed);

int kat_digest(unsigned hash, const unsigned char *msg, size_t len,
               unsigned char *out);
int kat_hmac(unsigned hash, const unsigned char *key, size_t key_len,
             const unsigned char *msg, size_t len, unsigned char *out);
/* RFC 4279 2: u16 N, N zero octets, u16 N, Kpsa. Returns its length. */
size_t kat_premaster(const unsigned char *kpsa, size_t len,
                     unsigned char out[KAT_SECRET_MAX]);

/*
 * The secret member stands for, before any normalisation to a block:
 * Kpsa, the premaster or a TLS 1.3 secret. Returns 0, or -1 when OpenSSL
 * failed or the member is unknown.
 */
int kat_member_secret(int member, const unsigned char *kpsa, size_t len,
                      unsigned char out[KAT_SECRET_MAX], size_t *out_len);

/* OpenSSL's TLS1-PRF over a raw secret; seed is label and randoms. */
int kat_tls1_prf(unsigned hash, const unsigned char *secret, size_t len,
                 const unsigned char *seed, size_t seed_len, unsigned char *out,
                 size_t out_len);

/* An HMAC with a key the caller holds somewhere: in memory or a token. */
typedef int kat_mac_fn(void *arg, const unsigned char *msg, size_t len,
                       unsigned char *out);

struct kat_soft_key {
    unsigned hash;
    const unsigned char *key;
    size_t len;
};
/* kat_mac_fn over a struct kat_soft_key. */
int kat_soft_mac(void *arg, const unsigned char *msg, size_t len,
                 unsigned char *out);

/* RFC 5246 5 P_hash, every HMAC through mac, so that the result can be
 * compared with kat_tls1_prf on the raw secret. */
int kat_p_hash(unsigned hash, kat_mac_fn *mac, void *arg,
               const unsigned char *seed, size_t seed_len, unsigned char *out,
               size_t out_len);

#endif

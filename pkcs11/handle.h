/*
 * The handle an application gives OpenSSL instead of Kpsa: 32 printable
 * bytes, "kpsa1." and 26 hex digits of a digest of the canonical KpsaId.
 * It names a key family, is typed as easily as a hex PSK, and holds nothing
 * secret. A handle that names no stored family is an error, never key bytes.
 */
#ifndef KPSA_HANDLE_H
#define KPSA_HANDLE_H

#include <stddef.h>

#define HANDLE_LEN        32
#define HANDLE_PREFIX     "kpsa1."
#define HANDLE_PREFIX_LEN 6
#define HANDLE_ID_LEN     (HANDLE_LEN - HANDLE_PREFIX_LEN)

/* Writes the handle of a canonical KpsaId: HANDLE_LEN bytes and a NUL. */
int handle_of(const char *kpsaid, char out[HANDLE_LEN + 1]);

/* 1 when the bytes start like a handle, whether or not the rest is valid:
 * such bytes are never taken for a key. */
int handle_looks_like(const unsigned char *bytes, size_t len);

/* 0 and the family's id in id when bytes are a well-formed handle. */
int handle_parse(const unsigned char *bytes, size_t len,
                 char id[HANDLE_ID_LEN + 1]);

/*
 * TLS 1.3 (RFC 8446 7.1): the secrets of the key schedule that depend on
 * Kpsa alone are named by derived handles, which the provider hands libssl
 * in their place: hash-length (32 or 48 bytes) like the secrets, "kpsa1",
 * the stage letter, the family's 26 hex digits, and '.' up to the length.
 * They are a function of the family and the stage, so they never pile up.
 */
#define DERIVED_PREFIX     "kpsa1"
#define DERIVED_PREFIX_LEN 5

enum handle_stage {
    STAGE_EARLY = 'e',           /* early secret */
    STAGE_BINDER_KEY = 'b',      /* Derive-Secret(early, "ext binder", "") */
    STAGE_BINDER_FINISHED = 'f', /* its "finished" key: the binder's key */
    STAGE_HANDSHAKE_KE = 'h',    /* psk_ke: handshake secret */
    STAGE_MASTER_KE = 'm',       /* psk_ke: master secret */
};

/* Writes len (32 or 48) bytes of the stage's handle for a family id. */
int handle_derived(enum handle_stage stage, const char id[HANDLE_ID_LEN + 1],
                   size_t len, unsigned char *out);

/* 1 when the bytes start like any kpsa handle, base or derived. */
int handle_looks_like_any(const unsigned char *bytes, size_t len);

/* 0, the stage and the id when bytes are a well-formed derived handle. */
int handle_derived_parse(const unsigned char *bytes, size_t len,
                         enum handle_stage *stage, char id[HANDLE_ID_LEN + 1]);

#endif

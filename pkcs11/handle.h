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

#endif

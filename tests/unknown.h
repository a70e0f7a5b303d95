/* A TLS1-PRF call with a handle that names no key, for the tests of the
 * provider's index reread. */
#ifndef KPSA_TEST_UNKNOWN_H
#define KPSA_TEST_UNKNOWN_H

#include <stddef.h>

#include <openssl/crypto.h>

/*
 * Derives with libctx's TLS1-PRF from a plain-PSK premaster (RFC 4279 2)
 * whose PSK is handle (len <= 64 bytes) with its last hex digit changed:
 * well formed, and of no key, so kpsa rereads its index when that is due.
 * Returns 1 when the call is refused, as it must be; the error queue is
 * cleared.
 */
int unknown_handle_refused(OSSL_LIB_CTX *libctx, const unsigned char *handle,
                           size_t len);

#endif

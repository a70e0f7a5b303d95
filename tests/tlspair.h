/* In-memory (D)TLS handshakes for the tests: both ends in one thread. */
#ifndef KPSA_TEST_TLSPAIR_H
#define KPSA_TEST_TLSPAIR_H

#include <openssl/ssl.h>

/*
 * Joins client and server with a BIO pair, runs the handshake, then sends
 * a record each way. Returns 1 when all of it worked. The SSLs keep the
 * BIOs.
 */
int tlspair_run(SSL *client, SSL *server);

#endif

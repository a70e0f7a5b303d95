/* Inside libkpsa: what the association code asks of the store. */
#ifndef KPSA_LIB_STORE_H
#define KPSA_LIB_STORE_H

#include "kpsa.h"

/* 1 when a whole key family is stored under the canonical kpsaid. An
 * unknown KpsaId rereads the token, at most once per refresh interval. */
int store_has(struct kpsa_store *store, const char *kpsaid);
/* 384 when the family holds the TLS 1.3 SHA-384 members, else 256. */
unsigned store_tls13_hash(struct kpsa_store *store, const char *kpsaid);

#endif

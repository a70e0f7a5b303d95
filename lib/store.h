/* Inside libkpsa: what the association code asks of the store. */
#ifndef KPSA_LIB_STORE_H
#define KPSA_LIB_STORE_H

#include "kpsa.h"

/* 1 when a whole key family is stored under the canonical kpsaid. An
 * unknown KpsaId rereads the token, at most once per refresh interval. */
int store_has(struct kpsa_store *store, const char *kpsaid);

#endif

/* KpsaId naming rules: TS-0003 10.6 (change request), 10.5 in V3.18. */
#ifndef KPSA_KPSAID_H
#define KPSA_KPSAID_H

#include <stddef.h>

/* RFC 4279 5.3: every implementation accepts identities up to 128 octets. */
#define KPSAID_MAX       128
#define KPSAID_FQDN_MAX  253
#define KPSAID_LABEL_MAX 63
#define KPSAID_ERR_MAX   160

enum kpsaid_flags {
    /* TS-0003 V3.18 10.5 adds '_' to the relative part. */
    KPSAID_ALLOW_UNDERSCORE = 1u << 0,
};

/*
 * Checks the len bytes at in against the KpsaId rules and writes the
 * canonical form (Issuer_FQDN in lower case, trailing dot dropped) to out.
 * Returns 0, or -1 with a one-line reason naming the broken rule in err.
 */
int kpsaid_canonicalize(const char *in, size_t len, unsigned flags,
                        char out[KPSAID_MAX + 1], char err[KPSAID_ERR_MAX]);

/*
 * The form two KpsaIds are compared in for uniqueness: the issuer must not
 * hand out two keys under relative parts that differ only in letter case.
 */
void kpsaid_fold(const char *canonical, char out[KPSAID_MAX + 1]);

#endif

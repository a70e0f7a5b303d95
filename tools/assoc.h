/* kpsa serve and kpsa connect: TS-0003 8.2.2.1 associations over (D)TLS. */
#ifndef KPSA_TOOLS_ASSOC_H
#define KPSA_TOOLS_ASSOC_H

struct assoc_opts {
    const char *module, *token, *pin_source; /* NULL: the environment */
    const char *address;                     /* serve: --listen */
    const char *map;                         /* serve: --map */
    const char *kpsa_id, *id_b, *sni;        /* connect */
    int dtls;
    int tls13; /* offer TLS 1.3 besides TLS 1.2 */
};

/* Exit codes beyond kpsa's own 0 to 3: the association failed. */
enum { ASSOC_EXIT_FAILED = 4 };

int assoc_serve(const struct assoc_opts *o);
int assoc_connect(const struct assoc_opts *o);

#endif

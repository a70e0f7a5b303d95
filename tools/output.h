/* How kpsa's commands write to the user: one line per error. */
#ifndef KPSA_TOOLS_OUTPUT_H
#define KPSA_TOOLS_OUTPUT_H

#include <stdio.h>

/* Anything a user or a peer typed may be echoed, but only as printable
 * text: other bytes as \xNN. */
void print_safe(FILE *f, const char *s);

/* "kpsa: SUBJECT: MSG" on standard error; returns code. The subject is
 * escaped; the message is kpsa's own words. */
int fail(const char *subject, int code, const char *msg);

#endif

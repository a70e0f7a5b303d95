/* Where a PIN comes from. Never a command-line value, never logged. */
#ifndef KPSA_PIN_H
#define KPSA_PIN_H

#include <stddef.h>

#include "error.h"

#define PIN_MAX 256

/*
 * source is "file:PATH" (the first line of PATH), or NULL to prompt without
 * echo on the terminal when may_prompt is set and standard input is one.
 */
int pin_read(const char *source, int may_prompt, const char *token_label,
             char pin[PIN_MAX], size_t *len, struct kpsa_err *err);

#endif

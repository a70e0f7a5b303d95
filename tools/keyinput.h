/* Parsing a key as given by an operator: hex, base64 or raw bytes. */
#ifndef KPSA_KEYINPUT_H
#define KPSA_KEYINPUT_H

#include <stddef.h>

#include "schedule.h"

#define KEYINPUT_MAX     4096 /* more is no key of ours, whatever the format */
#define KEYINPUT_ERR_MAX 160

enum key_format { KEY_HEX, KEY_BASE64, KEY_RAW };

/* Returns 0, or -1 with a reason that never shows a byte of the input. */
int key_parse(const unsigned char *in, size_t len, enum key_format fmt,
              unsigned char out[KPSA_KEY_MAX], size_t *out_len,
              char err[KEYINPUT_ERR_MAX]);
int key_format_from_name(const char *name, enum key_format *fmt);

#endif

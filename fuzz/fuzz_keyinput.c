/*
 * libFuzzer target: the key input of `kpsa import` (key_parse and
 * key_format_from_name, tools/keyinput.c).
 *
 * Every input is parsed as hex, as base64 and as raw bytes, into a buffer
 * of exactly KPSA_KEY_MAX bytes. A key is 1 to 64 bytes; hex and raw keys
 * must be what a second decoder written here makes of the input, a base64
 * key must survive encoding and decoding again, and base64 that is plainly
 * valid must be taken. A refusal leaves no key bytes behind and says why
 * in words of its own, never with a byte of the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "keyinput.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond, const char *what)
{
    if (cond)
        return;
    fprintf(stderr, "fuzz_keyinput: invariant broken: %s\n", what);
    abort();
}

/* ---- second decoders ---- */

static int model_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void model_trim(const uint8_t **s, size_t *len)
{
    while (*len > 0 && model_space(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && model_space((*s)[*len - 1]))
        (*len)--;
}

static int model_nibble(uint8_t c)
{
    static const char digits[] = "0123456789abcdef";
    const char *at;

    if (c >= 'A' && c <= 'F')
        c = (uint8_t)(c - 'A' + 'a');
    at = c != '\0' ? strchr(digits, c) : NULL;
    return at != NULL ? (int)(at - digits) : -1;
}

/* The key in out and its length, or 0 when the input is no hex key. */
static size_t model_hex(const uint8_t *s, size_t len, uint8_t out[64])
{
    model_trim(&s, &len);
    if (len == 0 || len % 2 != 0 || len > 128)
        return 0;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = model_nibble(s[2 * i]), lo = model_nibble(s[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return 0;
        out[i] = (uint8_t)(hi * 16 + lo);
    }
    return len / 2;
}

static int model_b64_value(uint8_t c)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *at = c != '\0' ? strchr(alphabet, c) : NULL;

    return at != NULL ? (int)(at - alphabet) : -1;
}

/*
 * Plainly valid base64 (RFC 4648 4): one line of quads, '=' only as the
 * padding of the last one. The decoded length, or 0 for anything else,
 * which the parser may still take.
 */
static size_t model_base64(const uint8_t *s, size_t len, uint8_t *out)
{
    size_t n = 0, pad = 0;

    model_trim(&s, &len);
    if (len == 0 || len % 4 != 0 || len > 88)
        return 0;
    if (s[len - 1] == '=')
        pad = s[len - 2] == '=' ? 2 : 1;
    for (size_t q = 0; q < len; q += 4) {
        int v[4];

        for (size_t i = 0; i < 4; i++) {
            int last = q + 4 == len && i >= 4 - pad;

            v[i] = last ? 0 : model_b64_value(s[q + i]);
            if (v[i] < 0)
                return 0;
        }
        out[n++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
        if (q + 4 < len || pad < 2)
            out[n++] = (uint8_t)((v[1] & 15) << 4 | v[2] >> 2);
        if (q + 4 < len || pad < 1)
            out[n++] = (uint8_t)((v[2] & 3) << 6 | v[3]);
    }
    return n <= 64 ? n : 0;
}

/* ---- the checks ---- */

/* keyinput.h: a reason never shows a byte of the input. */
static void check_reason(const char err[KEYINPUT_ERR_MAX])
{
    static const char *const reasons[] = {
        "odd number of hex digits",
        "not hex: a non-hex character at offset ",
        "not valid base64",
        "key input is over ",
        "key is ",
        "out of memory",
    };
    int known = 0;

    must(memchr(err, '\0', KEYINPUT_ERR_MAX) != NULL, "the reason ends");
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        known |= strncmp(err, reasons[i], strlen(reasons[i])) == 0;
    must(known, "a refusal gives one of keyinput.c's reasons");
    for (const char *c = err; *c != '\0'; c++)
        must(*c >= 0x20 && *c < 0x7f, "the reason is printable");
}

/* Parses into a heap buffer of exactly KPSA_KEY_MAX bytes. */
static int parse(const uint8_t *data, size_t size, enum key_format fmt,
                 uint8_t copy[KPSA_KEY_MAX], size_t *len)
{
    unsigned char *out = malloc(KPSA_KEY_MAX);
    char err[KEYINPUT_ERR_MAX];
    int rc;

    must(out != NULL, "memory for the key");
    memset(out, 0x5a, KPSA_KEY_MAX);
    memset(err, 0x5a, sizeof(err));
    *len = 0;
    rc = key_parse(data, size, fmt, out, len, err);
    must(rc == 0 || rc == -1, "key_parse returns 0 or -1");
    if (rc == 0) {
        must(*len >= 1 && *len <= KPSA_KEY_MAX, "a key is 1 to 64 bytes");
        memcpy(copy, out, *len);
    } else {
        /* Wiped, or never written (input over KEYINPUT_MAX). */
        size_t zeros = 0, untouched = 0;

        for (size_t i = 0; i < KPSA_KEY_MAX; i++) {
            zeros += out[i] == 0;
            untouched += out[i] == 0x5a;
        }
        must(zeros == KPSA_KEY_MAX || untouched == KPSA_KEY_MAX,
             "a refused key leaves no key bytes behind");
        check_reason(err);
    }
    free(out);
    return rc;
}

static void check_hex(const uint8_t *data, size_t size)
{
    uint8_t key[KPSA_KEY_MAX], want[64];
    size_t len,
        want_len = size <= KEYINPUT_MAX ? model_hex(data, size, want) : 0;
    int rc = parse(data, size, KEY_HEX, key, &len);

    must((rc == 0) == (want_len > 0), "hex: taken exactly when it is hex");
    if (rc == 0)
        must(len == want_len && memcmp(key, want, len) == 0,
             "hex: the key is the digits' bytes");
}

static void check_base64(const uint8_t *data, size_t size)
{
    uint8_t key[KPSA_KEY_MAX], want[66], again[KPSA_KEY_MAX];
    char text[4 * (KPSA_KEY_MAX / 3 + 1) + 1];
    size_t len, again_len, want_len;
    int rc = parse(data, size, KEY_BASE64, key, &len);

    want_len = size <= KEYINPUT_MAX ? model_base64(data, size, want) : 0;
    if (want_len > 0) {
        must(rc == 0, "base64: plainly valid base64 is taken");
        must(len == want_len && memcmp(key, want, len) == 0,
             "base64: the key is what RFC 4648 decodes");
    }
    if (rc != 0)
        return;
    EVP_EncodeBlock((unsigned char *)text, key, (int)len);
    must(parse((const uint8_t *)text, strlen(text), KEY_BASE64, again,
               &again_len) == 0,
         "base64: a key encoded again is taken");
    must(again_len == len && memcmp(again, key, len) == 0,
         "base64: a key encoded again decodes to itself");
}

static void check_raw(const uint8_t *data, size_t size)
{
    uint8_t key[KPSA_KEY_MAX];
    size_t len;
    int rc = parse(data, size, KEY_RAW, key, &len);

    must((rc == 0) == (size >= 1 && size <= KPSA_KEY_MAX),
         "raw: 1 to 64 bytes are taken as they are");
    if (rc == 0)
        must(len == size && memcmp(key, data, size) == 0,
             "raw: the key is the input");
}

static void check_format_name(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"hex", "base64", "raw"};
    char name[16];
    enum key_format fmt = KEY_RAW;
    int want = -1;

    if (size >= sizeof(name))
        return;
    memcpy(name, data, size);
    name[size] = '\0';
    for (int i = 0; i < 3; i++)
        if (strcmp(name, names[i]) == 0)
            want = i;
    must(key_format_from_name(name, &fmt) == (want >= 0 ? 0 : -1),
         "a format is hex, base64 or raw");
    if (want >= 0)
        must((int)fmt == (want == 0   ? (int)KEY_HEX
                          : want == 1 ? (int)KEY_BASE64
                                      : (int)KEY_RAW),
             "a format name gives its format");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_hex(data, size);
    check_base64(data, size);
    check_raw(data, size);
    check_format_name(data, size);
    return 0;
}

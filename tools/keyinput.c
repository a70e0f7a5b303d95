#include "keyinput.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A file written by an editor or echo ends in a newline; that is no key. */
static void trim(const unsigned char **in, size_t *len)
{
    while (*len > 0 && is_space((*in)[0])) {
        (*in)++;
        (*len)--;
    }
    while (*len > 0 && is_space((*in)[*len - 1]))
        (*len)--;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int parse_hex(const unsigned char *in, size_t len, unsigned char *out,
                     size_t *out_len, char err[KEYINPUT_ERR_MAX])
{
    if (len % 2 != 0) {
        snprintf(err, KEYINPUT_ERR_MAX, "odd number of hex digits");
        return -1;
    }
    if (len / 2 > KPSA_KEY_MAX) {
        snprintf(err, KEYINPUT_ERR_MAX,
                 "key is %zu bytes; at most 64 (RFC 4279 5.3)", len / 2);
        return -1;
    }
    for (size_t i = 0; i < len; i += 2) {
        int hi = hex_value(in[i]), lo = hex_value(in[i + 1]);

        if (hi < 0 || lo < 0) {
            snprintf(err, KEYINPUT_ERR_MAX,
                     "not hex: a non-hex character at offset %zu",
                     i + (hi < 0 ? 0 : 1));
            return -1;
        }
        out[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    *out_len = len / 2;
    return 0;
}

static int parse_base64(const unsigned char *in, size_t len, unsigned char *out,
                        size_t *out_len, char err[KEYINPUT_ERR_MAX])
{
    unsigned char buf[KEYINPUT_MAX];
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    int n = 0, tail = 0, ret = -1;

    if (ctx == NULL) {
        snprintf(err, KEYINPUT_ERR_MAX, "out of memory");
        return -1;
    }
    EVP_DecodeInit(ctx);
    if (EVP_DecodeUpdate(ctx, buf, &n, in, (int)len) < 0 ||
        EVP_DecodeFinal(ctx, buf + n, &tail) != 1) {
        snprintf(err, KEYINPUT_ERR_MAX, "not valid base64");
        goto out;
    }
    n += tail;
    if ((size_t)n > KPSA_KEY_MAX) {
        snprintf(err, KEYINPUT_ERR_MAX,
                 "key is %d bytes; at most 64 (RFC 4279 5.3)", n);
        goto out;
    }
    memcpy(out, buf, (size_t)n);
    *out_len = (size_t)n;
    ret = 0;
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    EVP_ENCODE_CTX_free(ctx);
    return ret;
}

static int parse_raw(const unsigned char *in, size_t len, unsigned char *out,
                     size_t *out_len, char err[KEYINPUT_ERR_MAX])
{
    if (len > KPSA_KEY_MAX) {
        snprintf(err, KEYINPUT_ERR_MAX,
                 "key is %zu bytes; at most 64 (RFC 4279 5.3)", len);
        return -1;
    }
    memcpy(out, in, len);
    *out_len = len;
    return 0;
}

int key_parse(const unsigned char *in, size_t len, enum key_format fmt,
              unsigned char out[KPSA_KEY_MAX], size_t *out_len,
              char err[KEYINPUT_ERR_MAX])
{
    int ret;

    if (len > KEYINPUT_MAX) {
        snprintf(err, KEYINPUT_ERR_MAX, "key input is over %d bytes",
                 KEYINPUT_MAX);
        return -1;
    }
    if (fmt != KEY_RAW)
        trim(&in, &len);
    if (fmt == KEY_HEX)
        ret = parse_hex(in, len, out, out_len, err);
    else if (fmt == KEY_BASE64)
        ret = parse_base64(in, len, out, out_len, err);
    else
        ret = parse_raw(in, len, out, out_len, err);
    if (ret == 0 && *out_len == 0) {
        snprintf(err, KEYINPUT_ERR_MAX, "key is empty");
        ret = -1;
    }
    if (ret != 0)
        OPENSSL_cleanse(out, KPSA_KEY_MAX);
    return ret;
}

int key_format_from_name(const char *name, enum key_format *fmt)
{
    if (strcmp(name, "hex") == 0)
        *fmt = KEY_HEX;
    else if (strcmp(name, "base64") == 0)
        *fmt = KEY_BASE64;
    else if (strcmp(name, "raw") == 0)
        *fmt = KEY_RAW;
    else
        return -1;
    return 0;
}

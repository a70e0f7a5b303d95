/*
 * libFuzzer target: the KpsaId rules (TS-0003 10.6, pkcs11/kpsaid.c).
 *
 * Every input is a candidate KpsaId, tried with and without
 * KPSAID_ALLOW_UNDERSCORE. Besides the sanitizers, it checks that a
 * canonical form is at most 128 octets and canonicalizes to itself, that
 * allowing '_' only ever accepts more, that kpsaid_fold is idempotent, and
 * that the verdict and the output agree with a second reading of the rules
 * written here from the specifications, not from kpsaid.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kpsaid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond, const char *what)
{
    if (cond)
        return;
    fprintf(stderr, "fuzz_kpsaid: invariant broken: %s\n", what);
    abort();
}

/* ---- the rules again, read from TS-0003 10.6, RFC 1035 and RFC 1123 ---- */

static int model_alnum(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z');
}

static int model_relative_ok(const uint8_t *s, size_t len, int underscore)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!model_alnum(s[i]) && s[i] != '.' && s[i] != '-' &&
            !(underscore && s[i] == '_'))
            return 0;
    return 1;
}

/* RFC 1123 2.1 host name label; RFC 1035 2.3.4: 63 octets at most. */
static int model_label_ok(const uint8_t *s, size_t len)
{
    if (len < 1 || len > 63 || s[0] == '-' || s[len - 1] == '-')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!model_alnum(s[i]) && s[i] != '-')
            return 0;
    return 1;
}

static int model_fqdn_ok(const uint8_t *s, size_t len)
{
    size_t labels = 0, begin = 0, top_begin = 0, top_len = 0;
    int top_digits = 1;

    if (len == 0 || len > 253)
        return 0;
    while (begin <= len) {
        const uint8_t *dot = memchr(s + begin, '.', len - begin);
        size_t end = dot != NULL ? (size_t)(dot - s) : len;

        if (!model_label_ok(s + begin, end - begin))
            return 0;
        labels++;
        top_begin = begin;
        top_len = end - begin;
        begin = end + 1;
    }
    for (size_t i = 0; i < top_len; i++)
        if (s[top_begin + i] < '0' || s[top_begin + i] > '9')
            top_digits = 0;
    return labels >= 2 && !top_digits;
}

/* 0 and the canonical form in out, or -1. */
static int model_canonical(const uint8_t *in, size_t len, int underscore,
                           char out[KPSAID_MAX + 1])
{
    size_t ats = 0, at = 0, fqdn_len;

    for (size_t i = 0; i < len; i++)
        if (in[i] == '@') {
            ats++;
            at = i;
        }
    if (ats != 1 || !model_relative_ok(in, at, underscore))
        return -1;
    fqdn_len = len - at - 1;
    if (fqdn_len > 0 && in[len - 1] == '.')
        fqdn_len--;
    if (!model_fqdn_ok(in + at + 1, fqdn_len) || at + 1 + fqdn_len > 128)
        return -1;
    for (size_t i = 0; i <= at; i++)
        out[i] = (char)in[i];
    for (size_t i = 0; i < fqdn_len; i++) {
        uint8_t c = in[at + 1 + i];

        out[at + 1 + i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    out[at + 1 + fqdn_len] = '\0';
    return 0;
}

/* ---- the checks ---- */

static void check_error_text(const char err[KPSAID_ERR_MAX])
{
    must(memchr(err, '\0', KPSAID_ERR_MAX) != NULL,
         "the error is NUL-terminated within KPSAID_ERR_MAX");
    must(err[0] != '\0', "a refusal says why");
}

static void check_fold(const char *canonical)
{
    char folded[KPSAID_MAX + 1], again[KPSAID_MAX + 1];
    size_t len = strlen(canonical);

    memset(folded, 0x5a, sizeof(folded));
    kpsaid_fold(canonical, folded);
    must(strlen(folded) == len, "folding keeps the length");
    for (size_t i = 0; i < len; i++) {
        char c = canonical[i];

        must(folded[i] == (c >= 'A' && c <= 'Z' ? c + 32 : c),
             "folding lowers letters and nothing else");
    }
    kpsaid_fold(folded, again);
    must(strcmp(folded, again) == 0, "folding is idempotent");
}

/* Returns 0 and the canonical form, or -1. */
static int check_one(const uint8_t *data, size_t size, unsigned flags,
                     char out[KPSAID_MAX + 1])
{
    char err[KPSAID_ERR_MAX], again[KPSAID_MAX + 1], model[KPSAID_MAX + 1];
    int rc, model_rc;
    size_t len;

    memset(err, 0x5a, sizeof(err));
    memset(out, 0x5a, KPSAID_MAX + 1);
    rc = kpsaid_canonicalize((const char *)data, size, flags, out, err);
    model_rc =
        model_canonical(data, size, flags & KPSAID_ALLOW_UNDERSCORE, model);
    must(rc == 0 || rc == -1, "kpsaid_canonicalize returns 0 or -1");
    must(rc == model_rc, "kpsaid.c and the model agree on the verdict");
    if (rc != 0) {
        check_error_text(err);
        return -1;
    }

    must(memchr(out, '\0', KPSAID_MAX + 1) != NULL, "the output ends");
    len = strlen(out);
    must(len <= KPSAID_MAX, "a canonical KpsaId is at most 128 octets");
    must(strcmp(out, model) == 0, "kpsaid.c and the model agree on the form");
    must(kpsaid_canonicalize(out, len, flags, again, err) == 0,
         "a canonical KpsaId is accepted");
    must(strcmp(out, again) == 0, "a canonical KpsaId is its own form");
    check_fold(out);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char strict[KPSAID_MAX + 1], relaxed[KPSAID_MAX + 1];
    char folded[KPSAID_MAX + 1], *text;
    int strict_rc = check_one(data, size, 0, strict);
    int relaxed_rc = check_one(data, size, KPSAID_ALLOW_UNDERSCORE, relaxed);

    if (strict_rc == 0) {
        must(relaxed_rc == 0, "allowing '_' never refuses more");
        must(strcmp(strict, relaxed) == 0, "allowing '_' keeps the form");
    }

    /* kpsaid_fold promises to stop at 128 bytes whatever it is given. */
    text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    kpsaid_fold(text, folded);
    must(strlen(folded) <= KPSAID_MAX, "folding stops at 128 bytes");
    free(text);
    return 0;
}

#include "kpsaid.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail(char err[KPSAID_ERR_MAX], const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, KPSAID_ERR_MAX, fmt, ap);
    va_end(ap);
    return -1;
}

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Prints a character a user can read back, whatever byte the peer sent. */
static void show_char(unsigned char c, char buf[8])
{
    if (c > 0x20 && c < 0x7f)
        snprintf(buf, 8, "'%c'", c);
    else
        snprintf(buf, 8, "0x%02x", c);
}

/* TS-0003 10.6: the Roman alphabet, numerals, '.' and '-'. */
static int check_relative(const char *s, size_t len, unsigned flags,
                          char err[KPSAID_ERR_MAX])
{
    char shown[8];

    if (len == 0)
        return fail(err, "Issuer_Relative_KpsaId is empty");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (is_alpha(c) || is_digit(c) || c == '.' || c == '-')
            continue;
        if (c == '_' && (flags & KPSAID_ALLOW_UNDERSCORE))
            continue;
        if (c == '_')
            return fail(err,
                        "Issuer_Relative_KpsaId has '_' at position %zu; "
                        "only TS-0003 V3.18 allows it (--allow-underscore)",
                        i + 1);
        show_char(c, shown);
        return fail(err,
                    "Issuer_Relative_KpsaId has %s at position %zu; allowed "
                    "are letters, digits, '.' and '-' (TS-0003 10.6)",
                    shown, i + 1);
    }
    return 0;
}

static int check_label(const char *s, size_t len, char err[KPSAID_ERR_MAX])
{
    char shown[8];

    if (len == 0)
        return fail(err, "Issuer_FQDN has an empty label");
    if (len > KPSAID_LABEL_MAX)
        return fail(err,
                    "Issuer_FQDN label %.20s... is %zu characters; "
                    "at most 63 (RFC 1035 2.3.4)",
                    s, len);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (is_alpha(c) || is_digit(c) || c == '-')
            continue;
        show_char(c, shown);
        return fail(err,
                    "Issuer_FQDN has %s; labels hold letters, digits "
                    "and '-' (RFC 1123 2.1)",
                    shown);
    }
    if (s[0] == '-' || s[len - 1] == '-')
        return fail(err,
                    "Issuer_FQDN label '%.*s' starts or ends with '-' "
                    "(RFC 1123 2.1)",
                    (int)len, s);
    return 0;
}

static int all_digits(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_digit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* RFC 1035 2.3.1 and RFC 1123 2.1, trailing dot already dropped. */
static int check_fqdn(const char *s, size_t len, char err[KPSAID_ERR_MAX])
{
    size_t start = 0, labels = 0, top = 0;

    if (len == 0)
        return fail(err, "Issuer_FQDN is empty");
    if (len > KPSAID_FQDN_MAX)
        return fail(err,
                    "Issuer_FQDN is %zu characters; at most 253 "
                    "(RFC 1035 2.3.4)",
                    len);
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.')
            continue;
        if (check_label(s + start, i - start, err) != 0)
            return -1;
        labels++;
        top = start;
        start = i + 1;
    }
    if (labels < 2)
        return fail(err,
                    "Issuer_FQDN '%.*s' has one label; a fully "
                    "qualified name has at least two",
                    (int)len, s);
    if (all_digits(s + top, len - top))
        return fail(err,
                    "Issuer_FQDN top label '%.*s' is all digits; an "
                    "IP address is not an FQDN",
                    (int)(len - top), s + top);
    return 0;
}

int kpsaid_canonicalize(const char *in, size_t len, unsigned flags,
                        char out[KPSAID_MAX + 1], char err[KPSAID_ERR_MAX])
{
    const char *at = len ? memchr(in, '@', len) : NULL;
    size_t rel_len, fqdn_len;

    if (len == 0)
        return fail(err, "KpsaId is empty");
    if (at == NULL)
        return fail(err, "KpsaId has no '@'; the form is "
                         "Issuer_Relative_KpsaId@Issuer_FQDN (TS-0003 10.6)");
    rel_len = (size_t)(at - in);
    fqdn_len = len - rel_len - 1;
    if (memchr(at + 1, '@', fqdn_len) != NULL)
        return fail(err, "KpsaId has more than one '@'");
    if (check_relative(in, rel_len, flags, err) != 0)
        return -1;
    if (fqdn_len > 0 && at[fqdn_len] == '.')
        fqdn_len--;
    if (check_fqdn(at + 1, fqdn_len, err) != 0)
        return -1;
    if (rel_len + 1 + fqdn_len > KPSAID_MAX)
        return fail(err, "KpsaId is %zu octets; at most 128 (RFC 4279 5.3)",
                    rel_len + 1 + fqdn_len);

    memcpy(out, in, rel_len + 1);
    for (size_t i = 0; i < fqdn_len; i++)
        out[rel_len + 1 + i] = lower(at[1 + i]);
    out[rel_len + 1 + fqdn_len] = '\0';
    return 0;
}

void kpsaid_fold(const char *canonical, char out[KPSAID_MAX + 1])
{
    size_t i = 0;

    for (; canonical[i] != '\0' && i < KPSAID_MAX; i++)
        out[i] = lower(canonical[i]);
    out[i] = '\0';
}

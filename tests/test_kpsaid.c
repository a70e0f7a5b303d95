/*
 * KpsaId rules (TS-0003 10.6, RFC 1035, RFC 1123, RFC 4279 5.3): every
 * row is one identifier with its exact canonical form or its exact error
 * line, since users and scripts read those lines.
 */
#include <stdio.h>
#include <string.h>

#include "kat.h"
#include "kpsaid.h"

/* Inputs carry their length, so embedded NULs reach the code under test. */
#define IN(s) s, sizeof(s) - 1
#define OK(s, flags, want)                                                     \
    {                                                                          \
        IN(s), flags, want, NULL                                               \
    }
#define BAD(s, flags, err)                                                     \
    {                                                                          \
        IN(s), flags, NULL, err                                                \
    }
#define US KPSAID_ALLOW_UNDERSCORE

/* Building blocks for the length limits. */
#define C10  "abcdefghij"
#define C60  C10 C10 C10 C10 C10 C10
#define L61  C60 "a"
#define L62  C60 "ab"
#define L63  C60 "abc"
#define L64  C60 "abcd"
#define R116 C60 C10 C10 C10 C10 C10 "abcdef"
/* 63 + 1 + 63 + 1 + 63 + 1 + 61 or 62 characters */
#define FQDN253 L63 "." L63 "." L63 "." L61
#define FQDN254 L63 "." L63 "." L63 "." L62

/* The fixed parts of the messages, as kpsaid.c words them. */
#define REL_CHARS  "; allowed are letters, digits, '.' and '-' (TS-0003 10.6)"
#define REL_US     "; only TS-0003 V3.18 allows it (--allow-underscore)"
#define FQDN_CHARS "; labels hold letters, digits and '-' (RFC 1123 2.1)"
#define ONE_LABEL  " has one label; a fully qualified name has at least two"
#define DIGITS     " is all digits; an IP address is not an FQDN"
#define HYPHEN     " starts or ends with '-' (RFC 1123 2.1)"
#define NO_AT                                                                  \
    "KpsaId has no '@'; the form is "                                          \
    "Issuer_Relative_KpsaId@Issuer_FQDN (TS-0003 10.6)"
#define EMPTY_LABEL "Issuer_FQDN has an empty label"
#define TOO_LONG(n) "KpsaId is " #n " octets; at most 128 (RFC 4279 5.3)"

struct row {
    const char *in;
    size_t len;
    unsigned flags;
    const char *want; /* the canonical form, NULL when refused */
    const char *err;  /* the exact reason when refused */
};

static const struct row rows[] = {
    /* accepted; only the Issuer_FQDN changes */
    OK("cse01@example.com", 0, "cse01@example.com"),
    OK("CSE-01.Node@Example.COM", 0, "CSE-01.Node@example.com"),
    OK("a@b.com.", 0, "a@b.com"),
    OK("Ab@EXAMPLE.ORG.", 0, "Ab@example.org"),
    OK("ZZ@A-1.B-2.", 0, "ZZ@a-1.b-2"),
    OK("..--@a.b", 0, "..--@a.b"),
    OK("0123456789@a1.b2", 0, "0123456789@a1.b2"),
    OK("a@123.com", 0, "a@123.com"),
    OK("a@b.0c", 0, "a@b.0c"),
    OK("a@xn--bcher-kva.example", 0, "a@xn--bcher-kva.example"),
    OK("a@b-c.d-e.f", 0, "a@b-c.d-e.f"),
    OK("a_b@x.example", US, "a_b@x.example"),
    OK("_@X.Example", US, "_@x.example"),
    OK("plain@x.example", US, "plain@x.example"),
    OK("a@" L63 ".com", 0, "a@" L63 ".com"),
    OK(R116 "@example.com", 0, R116 "@example.com"),
    /* the limit applies to the canonical form, without the dot */
    OK(R116 "@EXAMPLE.com.", 0, R116 "@example.com"),

    /* the '@' */
    BAD("", 0, "KpsaId is empty"),
    BAD("\0", 0, NO_AT),
    BAD("example.com", 0, NO_AT),
    BAD("a@b@c.com", 0, "KpsaId has more than one '@'"),
    BAD("@@", 0, "KpsaId has more than one '@'"),
    BAD("a@b.com@", 0, "KpsaId has more than one '@'"),

    /* Issuer_Relative_KpsaId */
    BAD("@example.com", 0, "Issuer_Relative_KpsaId is empty"),
    BAD("a b@x.com", 0,
        "Issuer_Relative_KpsaId has 0x20 at position 2" REL_CHARS),
    BAD("ab\x01@x.com", 0,
        "Issuer_Relative_KpsaId has 0x01 at position 3" REL_CHARS),
    BAD("a\0b@x.com", 0,
        "Issuer_Relative_KpsaId has 0x00 at position 2" REL_CHARS),
    BAD("a\n@x.com", 0,
        "Issuer_Relative_KpsaId has 0x0a at position 2" REL_CHARS),
    BAD("a\x7f@x.com", 0,
        "Issuer_Relative_KpsaId has 0x7f at position 2" REL_CHARS),
    BAD("caf\xc3\xa9@x.com", 0,
        "Issuer_Relative_KpsaId has 0xc3 at position 4" REL_CHARS),
    BAD("a+b@x.com", 0,
        "Issuer_Relative_KpsaId has '+' at position 2" REL_CHARS),
    BAD("a_b@x.com", 0, "Issuer_Relative_KpsaId has '_' at position 2" REL_US),
    BAD("a_b!@x.com", US,
        "Issuer_Relative_KpsaId has '!' at position 4" REL_CHARS),
    /* the relative part is judged before the Issuer_FQDN */
    BAD("a b@-", 0, "Issuer_Relative_KpsaId has 0x20 at position 2" REL_CHARS),

    /* Issuer_FQDN */
    BAD("a@", 0, "Issuer_FQDN is empty"),
    BAD("a@.", 0, "Issuer_FQDN is empty"),
    BAD("a@localhost", 0, "Issuer_FQDN 'localhost'" ONE_LABEL),
    BAD("a@LocalHost.", 0, "Issuer_FQDN 'LocalHost'" ONE_LABEL),
    BAD("a@b..com", 0, EMPTY_LABEL),
    BAD("a@.b.com", 0, EMPTY_LABEL),
    BAD("a@b.com..", 0, EMPTY_LABEL),
    BAD("a@" L64 ".com", 0,
        "Issuer_FQDN label abcdefghijabcdefghij... is 64 characters; "
        "at most 63 (RFC 1035 2.3.4)"),
    BAD("a@b_c.com", US, "Issuer_FQDN has '_'" FQDN_CHARS),
    BAD("a@b c.com", 0, "Issuer_FQDN has 0x20" FQDN_CHARS),
    BAD("a@b:443.com", 0, "Issuer_FQDN has ':'" FQDN_CHARS),
    BAD("a@b.c\t", 0, "Issuer_FQDN has 0x09" FQDN_CHARS),
    BAD("a@ex\xc3\xa4mple.com", 0, "Issuer_FQDN has 0xc3" FQDN_CHARS),
    BAD("a@b\0.com", 0, "Issuer_FQDN has 0x00" FQDN_CHARS),
    /* a C string would end before this NUL and look valid */
    BAD("a@b.com\0", 0, "Issuer_FQDN has 0x00" FQDN_CHARS),
    BAD("a@-b.com", 0, "Issuer_FQDN label '-b'" HYPHEN),
    BAD("a@b-.com", 0, "Issuer_FQDN label 'b-'" HYPHEN),
    BAD("a@b.com-", 0, "Issuer_FQDN label 'com-'" HYPHEN),
    BAD("a@-.com", 0, "Issuer_FQDN label '-'" HYPHEN),
    BAD("a@192.168.1.1", 0, "Issuer_FQDN top label '1'" DIGITS),
    BAD("a@10.0.0.254.", 0, "Issuer_FQDN top label '254'" DIGITS),
    BAD("a@example.123", 0, "Issuer_FQDN top label '123'" DIGITS),

    /* lengths */
    BAD(R116 "g@example.com", 0, TOO_LONG(129)),
    BAD("a@" FQDN253, 0, TOO_LONG(255)),
    BAD("a@" FQDN253 ".", 0, TOO_LONG(255)),
    BAD("a@" FQDN254, 0,
        "Issuer_FQDN is 254 characters; at most 253 (RFC 1035 2.3.4)"),
    BAD("a@" FQDN254 ".", 0,
        "Issuer_FQDN is 254 characters; at most 253 (RFC 1035 2.3.4)"),
};

/* The input as a reader can see it: escapes, and long ones shortened. */
static const char *shown(const char *s, size_t len)
{
    static char buf[160];
    size_t n = 0;

    for (size_t i = 0; i < len && n < 60; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c > 0x20 && c < 0x7f && c != '\\')
            buf[n++] = (char)c;
        else
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\\x%02x", c);
    }
    if (n >= 60)
        snprintf(buf + n, sizeof(buf) - n, "...(%zu octets)", len);
    else
        buf[n] = '\0';
    return buf;
}

/* A canary after out: the code must write at most KPSAID_MAX + 1 bytes. */
struct out_buf {
    char out[KPSAID_MAX + 1];
    char canary[16];
};

static void run_row(const struct row *r)
{
    struct out_buf o;
    char err[KPSAID_ERR_MAX] = "";
    int rc;

    memset(&o, 'X', sizeof(o));
    rc = kpsaid_canonicalize(r->in, r->len, r->flags, o.out, err);
    if (r->want != NULL) {
        int good = rc == 0 && strcmp(o.out, r->want) == 0;

        if (!tap_check(good, "accepts \"%s\"%s", shown(r->in, r->len),
                       r->flags & US ? " (underscore allowed)" : ""))
            tap_diag("rc %d, out \"%.*s\", err \"%s\"", rc, KPSAID_MAX,
                     rc == 0 ? o.out : "", err);
    } else if (!tap_check(rc == -1 && strcmp(err, r->err) == 0,
                          "refuses \"%s\"%s", shown(r->in, r->len),
                          r->flags & US ? " (underscore allowed)" : "")) {
        tap_diag("rc %d, err \"%s\"", rc, err);
        tap_diag("want   \"%s\"", r->err);
    }
    for (size_t i = 0; i < sizeof(o.canary); i++)
        if (o.canary[i] != 'X') {
            tap_check(0, "\"%s\" wrote past the output buffer",
                      shown(r->in, r->len));
            break;
        }
}

struct fold_row {
    const char *in, *want;
};

static const struct fold_row fold_rows[] = {
    {"CSE-01.Node@example.com", "cse-01.node@example.com"},
    {"already-lower@x.example", "already-lower@x.example"},
    {"", ""},
    /* the bytes either side of 'A'..'Z' stay as they are */
    {"@AZ[`az{", "@az[`az{"},
    /* ASCII only: no locale turns these into something else */
    {"\xc3\x89t\xc3\xa9@x.example", "\xc3\x89t\xc3\xa9@x.example"},
};

static void fold_table(void)
{
    char out[KPSAID_MAX + 1];

    for (size_t i = 0; i < sizeof(fold_rows) / sizeof(fold_rows[0]); i++) {
        const struct fold_row *r = &fold_rows[i];

        kpsaid_fold(r->in, out);
        if (!tap_check(strcmp(out, r->want) == 0, "folds \"%s\"",
                       shown(r->in, strlen(r->in))))
            tap_diag("got \"%s\"", out);
    }
}

/* Input longer than any canonical KpsaId: at most KPSAID_MAX come out. */
static void fold_lengths(void)
{
    char in[KPSAID_MAX + 20], want[KPSAID_MAX + 1];
    struct out_buf o;

    memset(in, 'Q', KPSAID_MAX);
    in[KPSAID_MAX] = '\0';
    memset(want, 'q', KPSAID_MAX);
    want[KPSAID_MAX] = '\0';
    kpsaid_fold(in, o.out);
    tap_check(strcmp(o.out, want) == 0, "folds a 128-octet KpsaId whole");

    memset(in, 'Q', sizeof(in) - 1);
    in[sizeof(in) - 1] = '\0';
    memset(&o, 'X', sizeof(o));
    kpsaid_fold(in, o.out);
    tap_check(strcmp(o.out, want) == 0 && o.canary[0] == 'X',
              "folds a longer string to its first 128 octets only");
}

/* Two spellings that canonicalize apart must fold together: that is what
 * refuses a second key under a case variant of a relative part. */
static void fold_variants(void)
{
    char a[KPSAID_MAX + 1], b[KPSAID_MAX + 1], err[KPSAID_ERR_MAX];
    char fa[KPSAID_MAX + 1], fb[KPSAID_MAX + 1];
    int rc = kpsaid_canonicalize(IN("Node-7@Example.com"), 0, a, err) |
             kpsaid_canonicalize(IN("NODE-7@example.COM."), 0, b, err);

    tap_check(rc == 0 && strcmp(a, b) != 0,
              "case variants of a relative part stay distinct canonically");
    kpsaid_fold(a, fa);
    kpsaid_fold(b, fb);
    tap_check(rc == 0 && strcmp(fa, fb) == 0 &&
                  strcmp(fa, "node-7@example.com") == 0,
              "case variants of a relative part fold to one form");
}

int main(void)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        run_row(&rows[i]);
    fold_table();
    fold_lengths();
    fold_variants();
    return tap_finish();
}

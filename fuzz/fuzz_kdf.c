/*
 * libFuzzer target: the kpsa provider's TLS1-PRF and TLS13-KDF, and its
 * HMAC, driven through EVP with parameter sequences chosen by the input.
 *
 * The provider is built in and registered in a library context of its own
 * beside the default provider, with "?provider=kpsa" as the default
 * properties, as an application's openssl.cnf would have it. KPSA_MODULE
 * is unset, so every call that reaches for the token fails with an error,
 * which is one of the paths under test.
 *
 * Each input runs one algorithm on three contexts that get the same
 * calls: kpsa's, the default provider's, and the default provider's with
 * every value kpsa would take for a handle changed in one byte ("kpsA1").
 * When the last two disagree, the default computed with the handle's bytes
 * as key bytes; kpsa must then not produce that output (README: a handle
 * "is never used as key bytes"). When no handle was given and kpsa's inner
 * context saw every call the default one did, kpsa must behave as the
 * default provider: same verdict, same bytes.
 *
 * KPSA_FUZZ_AVOID, a comma-separated list, steps around the findings in
 * fuzz/findings/kdf/ so that fuzzing goes on past them:
 *   tls13-dup    no EVP_KDF_CTX_dup of a TLS13-KDF context
 *   repeats      no parameter name twice in one call
 *   refused-set  every context reset after a call kpsa refused
 *   size         no comparison of EVP_KDF_CTX_get_kdf_size
 *   data-reset   no comparison of TLS13-KDF output after a call that set
 *                parameters without the data, which OpenSSL then drops
 *   properties   no properties parameter
 *   mode-case    mode strings in upper case only
 *
 * KPSA_FUZZ_TRACE=1 prints every call, its parameters and verdicts.
 *
 * KPSA_FUZZ_STRICT=1 also changes a TLS1-PRF psk that starts with "kpsa1"
 * without the dot (a derived handle) and a secret that is itself a
 * handle, which kpsa passes to the default provider by design.
 *
 * UTF-8 parameters are always NUL-terminated and never NULL, as libssl
 * makes them: OpenSSL's own providers read them as C strings too. A
 * prefix, label or data of the wrong type is never sent: it crashes
 * OpenSSL 3.0's own TLS13-KDF (fuzz/findings/programs/).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/provider.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OPS_MAX    24
#define PARAMS_MAX 8
#define VALUE_MAX  512
#define OUT_MAX    512
#define MSG_MAX    128

enum alg { ALG_PRF, ALG_TLS13, ALGS };
enum side { KPSA, DFLT, SUBST, SIDES };

static const char *const side_props[SIDES] = {NULL, "provider=default",
                                              "provider=default"};
static const char *const alg_names[ALGS] = {"TLS1-PRF", "TLS13-KDF"};

static OSSL_LIB_CTX *libctx;
static EVP_KDF *kdfs[ALGS][SIDES];
static int strict, trace;
static int avoid_tls13_dup, avoid_repeats, avoid_refused_set, avoid_size;
static int avoid_data_reset, avoid_properties, avoid_mode_case;

static void must(int cond, const char *what)
{
    if (cond)
        return;
    fprintf(stderr, "fuzz_kdf: invariant broken: %s\n", what);
    ERR_print_errors_fp(stderr);
    abort();
}

/* Prints a call with its parameters as the kpsa side gets them. */
static void trace_params(const char *what, const OSSL_PARAM *params)
{
    fprintf(stderr, "fuzz_kdf: %s", what);
    for (const OSSL_PARAM *p = params; p != NULL && p->key != NULL; p++) {
        fprintf(stderr, " %s(%u,%zu)=", p->key, p->data_type, p->data_size);
        if (p->data_type == OSSL_PARAM_INTEGER && p->data_size == 4)
            fprintf(stderr, "%d", *(const int *)p->data);
        else if (p->data_type == OSSL_PARAM_INTEGER)
            fprintf(stderr, "%lld", (long long)*(const int64_t *)p->data);
        else
            for (size_t i = 0; p->data != NULL && i < p->data_size; i++) {
                unsigned char c = ((const unsigned char *)p->data)[i];

                fprintf(stderr, c > 0x20 && c < 0x7f ? "%c" : "\\x%02x", c);
            }
    }
    fputc('\n', stderr);
}

static void trace_result(const char *what, const int rc[3])
{
    fprintf(stderr, "fuzz_kdf:   %s: kpsa %d default %d subst %d\n", what,
            rc[0], rc[1], rc[2]);
    if (rc[0] != 1 || rc[1] != 1 || rc[2] != 1)
        ERR_print_errors_fp(stderr);
    ERR_clear_error();
}

/* ---- reading the input ---- */

struct input {
    const uint8_t *p;
    size_t n;
};

static uint8_t take(struct input *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

/* Exactly len bytes: the input's, then zeros when it runs out. */
static void take_bytes(struct input *in, unsigned char *out, size_t len)
{
    size_t n = len < in->n ? len : in->n;

    memcpy(out, in->p, n);
    memset(out + n, 0, len - n);
    in->p += n;
    in->n -= n;
}

/* ---- parameter values ---- */

enum kind {
    K_MODE,
    K_MODE_INT,
    K_DIGEST,
    K_PROPERTIES,
    K_KEY,
    K_SALT,
    K_PREFIX,
    K_LABEL,
    K_DATA,
    K_SECRET,
    K_SEED,
};

static const char *const kind_names[] = {
    [K_MODE] = OSSL_KDF_PARAM_MODE,
    [K_MODE_INT] = OSSL_KDF_PARAM_MODE,
    [K_DIGEST] = OSSL_KDF_PARAM_DIGEST,
    [K_PROPERTIES] = OSSL_KDF_PARAM_PROPERTIES,
    [K_KEY] = OSSL_KDF_PARAM_KEY,
    [K_SALT] = OSSL_KDF_PARAM_SALT,
    [K_PREFIX] = OSSL_KDF_PARAM_PREFIX,
    [K_LABEL] = OSSL_KDF_PARAM_LABEL,
    [K_DATA] = OSSL_KDF_PARAM_DATA,
    [K_SECRET] = OSSL_KDF_PARAM_SECRET,
    [K_SEED] = OSSL_KDF_PARAM_SEED,
};

/* What each algorithm reads, and one parameter it ignores. */
static const enum kind prf_kinds[] = {K_DIGEST, K_SECRET,     K_SEED, K_SECRET,
                                      K_SEED,   K_PROPERTIES, K_KEY};
static const enum kind tls13_kinds[] = {
    K_MODE,   K_MODE_INT, K_DIGEST, K_KEY,        K_SALT,  K_KEY,
    K_SALT,   K_PREFIX,   K_LABEL,  K_DATA,       K_LABEL, K_DATA,
    K_DIGEST, K_MODE,     K_SECRET, K_PROPERTIES,
};

static const char *const digests[] = {
    "SHA256",   "SHA2-256", "SHA384", "SHA2-384", "SHA-384", "SHA1",
    "MD5-SHA1", "MD5",      "SHA512", "SHA3-256", "sha256",  "",
};
static const char *const modes[] = {
    "EXTRACT_ONLY", "EXPAND_ONLY", "EXTRACT_AND_EXPAND",
    "extract_only", "expand_only", "",
};
static const char *const properties[] = {
    "", "provider=default", "provider=kpsa", "?provider=kpsa", "fips=yes",
};
static const char *const labels[] = {
    "ext binder",   "res binder",   "finished",     "c e traffic",
    "e exp master", "derived",      "c hs traffic", "s hs traffic",
    "c ap traffic", "s ap traffic", "exp master",   "res master",
    "key",          "iv",           "traffic upd",
};
static const char *const prefixes[] = {"tls13 ", "dtls13"};
static const char *const seeds[] = {
    "master secret",   "extended master secret", "key expansion",
    "client finished", "server finished",
};
static const char stages[] = "ebfhm";

/* SHA-256("") and SHA-384(""): the context of "ext binder" and "derived". */
static const unsigned char empty_sha256[32] = {
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
    0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
    0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
static const unsigned char empty_sha384[48] = {
    0x38, 0xb0, 0x60, 0xa7, 0x51, 0xac, 0x96, 0x38, 0x4c, 0xd9, 0x32, 0x7e,
    0xb1, 0xb1, 0xe3, 0x6a, 0x21, 0xfd, 0xb7, 0x11, 0x14, 0xbe, 0x07, 0x43,
    0x4c, 0x0c, 0xc7, 0xbf, 0x63, 0xf6, 0xe1, 0xda, 0x27, 0x4e, 0xde, 0xbf,
    0xe7, 0x6f, 0x65, 0xfb, 0xd5, 0x1a, 0xd2, 0xf1, 0x48, 0x98, 0xb9, 0x5b};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

struct value {
    unsigned char bytes[VALUE_MAX + 1]; /* strings end in a NUL */
    unsigned char subst[VALUE_MAX + 1]; /* the SUBST side's bytes */
    size_t len;
    int ival;
    int64_t i64;
    int sees; /* kpsa takes it for a handle */
};

static void put(struct value *v, const void *bytes, size_t len)
{
    if (len > VALUE_MAX - v->len)
        len = VALUE_MAX - v->len;
    memcpy(v->bytes + v->len, bytes, len);
    v->len += len;
}

static void put_hex_id(struct value *v, struct input *in)
{
    for (size_t i = 0; i < 26; i++)
        put(v, &"0123456789abcdef"[take(in) & 15], 1);
}

/* A string from the list, or up to 255 bytes of input without a NUL. */
static void gen_string(struct value *v, struct input *in,
                       const char *const *list, size_t count)
{
    size_t pick = take(in) % (count + 1);

    v->len = 0;
    if (pick < count) {
        put(v, list[pick], strlen(list[pick]));
    } else {
        v->len = take(in);
        take_bytes(in, v->bytes, v->len);
        for (size_t i = 0; i < v->len; i++)
            if (v->bytes[i] == '\0')
                v->bytes[i] = 'x';
    }
    v->bytes[v->len] = '\0';
}

static void gen_octets(struct value *v, struct input *in, int depth);

/* RFC 4279 2 and 3: u16 N, other, u16 M, psk. */
static void gen_premaster(struct value *v, struct input *in, int depth)
{
    struct value psk = {.len = 0};
    unsigned char other[VALUE_MAX];
    size_t other_len;
    uint8_t shape = take(in);

    if (shape & 1)
        gen_octets(&psk, in, depth + 1);
    else {
        psk.len = 0;
        put(&psk, "kpsa1.", 6);
        put_hex_id(&psk, in);
    }
    other_len = shape & 2 ? psk.len : take(in) % 128;
    if (shape & 4)
        take_bytes(in, other, other_len);
    else
        memset(other, 0, other_len);
    v->len = 0;
    put(v, (unsigned char[]){(uint8_t)(other_len >> 8), (uint8_t)other_len}, 2);
    put(v, other, other_len);
    put(v, (unsigned char[]){(uint8_t)(psk.len >> 8), (uint8_t)psk.len}, 2);
    put(v, psk.bytes, psk.len);
}

/* Key material: raw bytes, zeros, handles and near-handles, premasters. */
static void gen_octets(struct value *v, struct input *in, int depth)
{
    uint8_t how = take(in) % 8;

    v->len = 0;
    if (depth > 0 && how >= 6)
        how = 1;
    switch (how) {
    case 0: /* raw */
        v->len = take(in);
        take_bytes(in, v->bytes, v->len);
        break;
    case 1: /* a base handle */
        put(v, "kpsa1.", 6);
        put_hex_id(v, in);
        break;
    case 2: { /* a derived handle */
        uint8_t s = take(in), len = take(in) & 1 ? 48 : 32;

        put(v, "kpsa1", 5);
        put(v, s < 0xf0 ? &stages[s % 5] : (const char *)&s, 1);
        put_hex_id(v, in);
        while (v->len < len)
            put(v, ".", 1);
        break;
    }
    case 3: { /* zeros: psk_ke's absent (EC)DHE secret or salt */
        uint8_t len = take(in);

        v->len = len & 1 ? 48 : len & 2 ? 32 : len % 100;
        memset(v->bytes, 0, v->len);
        break;
    }
    case 4: { /* starts like a handle and goes on as it will */
        size_t tail = take(in) % 48;

        put(v, "kpsa1", 5);
        take_bytes(in, v->bytes + 5, tail);
        v->len += tail;
        break;
    }
    case 5: { /* a base handle with one byte changed */
        uint8_t at = take(in) % 32, to = take(in);

        put(v, "kpsa1.", 6);
        put_hex_id(v, in);
        v->bytes[at] = to;
        break;
    }
    default: /* a premaster, most often with a handle for the psk */
        gen_premaster(v, in, depth);
        break;
    }
}

/* RFC 8446 7.1 contexts: empty, a transcript hash, or up to 511 bytes
 * of input (HkdfLabel holds 255). */
static void gen_data(struct value *v, struct input *in)
{
    uint8_t how = take(in) % 4;

    v->len = 0;
    if (how == 1)
        put(v, empty_sha256, sizeof(empty_sha256));
    else if (how == 2)
        put(v, empty_sha384, sizeof(empty_sha384));
    else if (how == 3) {
        v->len = take(in);
        v->len |= (size_t)(take(in) & 1) << 8;
        take_bytes(in, v->bytes, v->len);
    }
}

static int starts(const struct value *v, const char *prefix)
{
    size_t n = strlen(prefix);

    return v->len >= n && memcmp(v->bytes, prefix, n) == 0;
}

/* The psk of a premaster, or -1 when the secret is none. */
static long premaster_psk(const struct value *v, size_t *psk_len)
{
    size_t n, m;

    if (v->len < 4)
        return -1;
    n = (size_t)v->bytes[0] << 8 | v->bytes[1];
    if (n + 4 > v->len)
        return -1;
    m = (size_t)v->bytes[2 + n] << 8 | v->bytes[3 + n];
    if (n + 4 + m != v->len)
        return -1;
    *psk_len = m;
    return (long)(4 + n);
}

/*
 * Marks what kpsa takes for a handle (tls13.c classify, prf.c prf_derive)
 * and changes it on the SUBST side: 'k' becomes 'K', so the bytes differ
 * only where a handle would be taken for key bytes.
 */
static void mark_handle(struct value *v, enum alg alg, enum kind kind)
{
    memcpy(v->subst, v->bytes, v->len + 1);
    v->sees = 0;
    if (alg == ALG_TLS13 && (kind == K_KEY || kind == K_SALT) &&
        starts(v, "kpsa1")) {
        v->sees = 1;
        v->subst[0] = 'K';
    }
    if (alg == ALG_PRF && kind == K_SECRET) {
        size_t psk_len = 0;
        long psk = premaster_psk(v, &psk_len);
        struct value p = {.len = 0};

        if (psk >= 0) {
            put(&p, v->bytes + psk, psk_len);
            v->sees = starts(&p, "kpsa1.");
            if (v->sees || (strict && starts(&p, "kpsa1")))
                v->subst[psk] = 'K';
        }
        if (strict && starts(v, "kpsa1"))
            v->subst[0] = 'K';
    }
}

static void gen_value(struct value *v, struct input *in, enum alg alg,
                      enum kind kind)
{
    switch (kind) {
    case K_MODE:
        gen_string(v, in, modes, COUNT(modes));
        for (size_t i = 0; avoid_mode_case && i < v->len; i++)
            if (v->bytes[i] >= 'a' && v->bytes[i] <= 'z')
                v->bytes[i] = (unsigned char)(v->bytes[i] - 'a' + 'A');
        break;
    case K_MODE_INT: {
        uint8_t how = take(in);

        v->ival = how % 4 < 3 ? how % 4 : (int)(how * 0x01010101u);
        v->i64 = v->ival;
        v->len = how >= 0x80; /* int64 instead of int */
        break;
    }
    case K_DIGEST:
        gen_string(v, in, digests, COUNT(digests));
        break;
    case K_PROPERTIES:
        gen_string(v, in, properties, COUNT(properties));
        break;
    case K_PREFIX:
        gen_string(v, in, prefixes, COUNT(prefixes));
        break;
    case K_LABEL:
        gen_string(v, in, labels, COUNT(labels));
        break;
    case K_SEED:
        gen_string(v, in, seeds, COUNT(seeds));
        break;
    case K_DATA:
        gen_data(v, in);
        break;
    default:
        gen_octets(v, in, 0);
        break;
    }
    if (kind != K_MODE_INT)
        mark_handle(v, alg, kind);
}

/* A parameter of its own type, or (rarely) of the wrong one or empty. */
static OSSL_PARAM make_param(enum kind kind, uint8_t form, struct value *v,
                             enum side side)
{
    const char *name = kind_names[kind];
    unsigned char *bytes = side == SUBST ? v->subst : v->bytes;
    int string = kind == K_MODE || kind == K_DIGEST || kind == K_PROPERTIES;

    if (kind == K_MODE_INT && form % 16 != 15)
        return v->len ? OSSL_PARAM_construct_int64(name, &v->i64)
                      : OSSL_PARAM_construct_int(name, &v->ival);
    if (kind == K_MODE_INT)
        return OSSL_PARAM_construct_utf8_string(name, (char *)"1", 0);
    /* OpenSSL 3.0's TLS13-KDF crashes on these with a wrong type, with or
     * without kpsa (fuzz/findings/programs/). */
    if (form % 16 == 15 &&
        (kind == K_PREFIX || kind == K_LABEL || kind == K_DATA))
        form = 0;
    if (form % 16 == 15)
        string = !string;
    else if (form % 16 == 14 && !string)
        return OSSL_PARAM_construct_octet_string(name, NULL, 0);
    if (string)
        return OSSL_PARAM_construct_utf8_string(name, (char *)bytes, v->len);
    return OSSL_PARAM_construct_octet_string(name, bytes, v->len);
}

struct param_set {
    struct value values[PARAMS_MAX];
    OSSL_PARAM params[SIDES][PARAMS_MAX + 1];
    int has_data;
    int sees;
    /* a wrong type, no data, or a name given twice: OpenSSL reads the
     * first of a name and kpsa the last, and kpsa checks every one */
    int odd;
};

static void gen_params(struct param_set *set, struct input *in, enum alg alg)
{
    const enum kind *kinds = alg == ALG_PRF ? prf_kinds : tls13_kinds;
    size_t nkinds = alg == ALG_PRF ? COUNT(prf_kinds) : COUNT(tls13_kinds);
    size_t wanted = take(in) % (PARAMS_MAX + 1), count = 0;

    set->sees = set->odd = set->has_data = 0;
    for (size_t i = 0; i < wanted; i++) {
        enum kind kind = kinds[take(in) % nkinds];
        uint8_t form = take(in);
        struct value *v = &set->values[count];
        int repeat = 0;

        memset(v, 0, sizeof(*v));
        gen_value(v, in, alg, kind);
        for (size_t j = 0; j < count; j++)
            repeat |= strcmp(set->params[KPSA][j].key, kind_names[kind]) == 0;
        if ((repeat && avoid_repeats) ||
            (kind == K_PROPERTIES && avoid_properties))
            continue;
        set->sees |= v->sees;
        set->has_data |= kind == K_DATA;
        set->odd |= repeat || form % 16 >= 14;
        for (int s = 0; s < SIDES; s++)
            set->params[s][count] = make_param(kind, form, v, (enum side)s);
        count++;
    }
    for (int s = 0; s < SIDES; s++)
        set->params[s][count] = OSSL_PARAM_construct_end();
}

/* ---- one input: a session of calls on the three contexts ---- */

struct session {
    enum alg alg;
    EVP_KDF_CTX *ctx[SIDES];
    /* kpsa's inner context may have missed calls the default one got */
    int desync;
    /* kpsa was given a value it takes for a handle */
    int sees;
    /* kpsa was given a parameter set struct param_set calls odd */
    int odd;
};

static void op_reset(struct session *ss)
{
    for (int s = 0; s < SIDES; s++)
        EVP_KDF_CTX_reset(ss->ctx[s]);
    ss->desync = ss->sees = ss->odd = 0;
    if (trace)
        fprintf(stderr, "fuzz_kdf: reset\n");
}

/* OpenSSL's TLS13-KDF drops the data at a set without it; kpsa keeps
 * its copy (fuzz/findings/kdf/tls13-data-kept-across-sets). */
static int drops_data(const struct session *ss, const struct param_set *set)
{
    return avoid_data_reset && ss->alg == ALG_TLS13 && !set->has_data;
}

static void op_set(struct session *ss, struct input *in)
{
    struct param_set *set = malloc(sizeof(*set));
    int rc[SIDES];

    must(set != NULL, "memory for parameters");
    gen_params(set, in, ss->alg);
    for (int s = 0; s < SIDES; s++)
        rc[s] = EVP_KDF_CTX_set_params(ss->ctx[s], set->params[s]);
    if (trace) {
        trace_params("set", set->params[KPSA]);
        trace_result("set", rc);
    }
    must(rc[DFLT] == rc[SUBST], "harness: the default contexts agree");
    ss->sees |= set->sees;
    ss->odd |= set->odd;
    if (rc[KPSA] != 1 || rc[DFLT] != 1 || drops_data(ss, set))
        ss->desync = 1;
    free(set);
    if (ss->desync && avoid_refused_set)
        op_reset(ss);
}

static size_t gen_out_len(struct input *in)
{
    static const size_t lens[] = {32, 48, 12, 0, 104, 64, 1};
    uint8_t pick = take(in) % (COUNT(lens) + 1);

    return pick < COUNT(lens) ? lens[pick] : (size_t)take(in) * 2 % OUT_MAX;
}

static void check_derived(const struct session *ss, const int rc[SIDES],
                          unsigned char *const out[SIDES], size_t len)
{
    /* At least 8 bytes, or kpsa's may equal the default's by chance. */
    int on_handle = len >= 8 && rc[DFLT] == 1 && rc[SUBST] == 1 &&
                    memcmp(out[DFLT], out[SUBST], len) != 0;

    /* README: a handle "is never used as key bytes". */
    if (rc[KPSA] == 1 && on_handle)
        must(memcmp(out[KPSA], out[DFLT], len) != 0,
             "kpsa gave the default provider's output for a handle "
             "taken as key bytes");
    if (ss->desync)
        return;
    /* Without a handle, kpsa is the default provider unchanged; of odd
     * parameters (no data, say) it may take what OpenSSL refuses. */
    if (rc[KPSA] == 1 && (rc[DFLT] == 1 || !ss->odd))
        must(rc[DFLT] == 1 && memcmp(out[KPSA], out[DFLT], len) == 0,
             "kpsa's output without a handle is the default provider's");
    if (!ss->sees && !ss->odd)
        must(rc[KPSA] == rc[DFLT],
             "kpsa refuses or takes a call without a handle as the "
             "default provider does");
}

static void op_derive(struct session *ss, struct input *in, int with_params)
{
    struct param_set *set = with_params ? malloc(sizeof(*set)) : NULL;
    size_t len = gen_out_len(in);
    unsigned char *out[SIDES];
    int rc[SIDES];

    must(!with_params || set != NULL, "memory for parameters");
    if (set != NULL) {
        gen_params(set, in, ss->alg);
        ss->sees |= set->sees;
        ss->odd |= set->odd;
        if (drops_data(ss, set))
            ss->desync = 1;
    }
    for (int s = 0; s < SIDES; s++) {
        out[s] = malloc(len > 0 ? len : 1);
        must(out[s] != NULL, "memory for output");
        memset(out[s], 0x5a, len);
        rc[s] = EVP_KDF_derive(ss->ctx[s], out[s], len,
                               set != NULL ? set->params[s] : NULL);
    }
    if (trace) {
        fprintf(stderr, "fuzz_kdf: derive %zu bytes\n", len);
        trace_params("  with", set != NULL ? set->params[KPSA] : NULL);
        trace_result("derive", rc);
        fprintf(stderr, "fuzz_kdf:   desync %d sees %d odd %d\n", ss->desync,
                ss->sees, ss->odd);
    }
    must(rc[DFLT] == rc[SUBST], "harness: the default contexts agree");
    check_derived(ss, rc, out, len);
    /* With parameters, a refusal may have come before kpsa passed them
     * on to its inner context. */
    if (set != NULL && (rc[KPSA] != 1 || rc[DFLT] != 1))
        ss->desync = 1;
    for (int s = 0; s < SIDES; s++)
        free(out[s]);
    free(set);
    if (ss->desync && avoid_refused_set)
        op_reset(ss);
}

static void op_dup(struct session *ss)
{
    EVP_KDF_CTX *copy[SIDES];
    int ok = 1;

    if (ss->alg == ALG_TLS13 && avoid_tls13_dup)
        return;
    for (int s = 0; s < SIDES; s++) {
        copy[s] = EVP_KDF_CTX_dup(ss->ctx[s]);
        ok &= copy[s] != NULL;
    }
    if (trace)
        fprintf(stderr, "fuzz_kdf: dup %s\n", ok ? "done" : "failed");
    for (int s = 0; s < SIDES; s++) {
        EVP_KDF_CTX *old = ok ? ss->ctx[s] : copy[s];

        if (ok)
            ss->ctx[s] = copy[s];
        EVP_KDF_CTX_free(old);
    }
}

static void op_size(const struct session *ss)
{
    size_t size[SIDES];

    for (int s = 0; s < SIDES; s++)
        size[s] = EVP_KDF_CTX_get_kdf_size(ss->ctx[s]);
    if (trace)
        fprintf(stderr, "fuzz_kdf: size: kpsa %zu default %zu\n", size[KPSA],
                size[DFLT]);
    if (!ss->desync && !avoid_size)
        must(size[KPSA] == size[DFLT], "kpsa's output size is the default's");
}

enum hmac_how {
    HMAC_GENERATE = 1, /* the key generated from bytes, not imported */
    HMAC_DUP = 2,      /* an EVP_PKEY_dup of it signs */
    HMAC_EXPORT = 4,   /* kpsa's key signed by the default provider */
};

/* An HMAC key imported, or generated from given bytes (the path of
 * EVP_PKEY_new_mac_key), in the side's provider. */
static EVP_PKEY *hmac_key(enum side side, unsigned how,
                          const unsigned char *bytes, size_t len)
{
    EVP_PKEY_CTX *gen;
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM params[2];

    if (!(how & HMAC_GENERATE))
        return EVP_PKEY_new_raw_private_key_ex(libctx, "HMAC", side_props[side],
                                               bytes, len);
    gen = EVP_PKEY_CTX_new_from_name(libctx, "HMAC", side_props[side]);
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PRIV_KEY,
                                                  (unsigned char *)bytes, len);
    params[1] = OSSL_PARAM_construct_end();
    if (gen == NULL || EVP_PKEY_keygen_init(gen) != 1 ||
        EVP_PKEY_CTX_set_params(gen, params) != 1 ||
        EVP_PKEY_generate(gen, &pkey) != 1)
        pkey = NULL;
    EVP_PKEY_CTX_free(gen);
    return pkey;
}

/* HMAC (hmac.c): a key kpsa takes for a handle is never key bytes. */
static void op_hmac(struct input *in)
{
    struct value key = {.len = 0}, digest = {.len = 0};
    unsigned char msg[MSG_MAX], out[SIDES][EVP_MAX_MD_SIZE];
    size_t out_len[SIDES], msg_len;
    EVP_PKEY *pkeys[SIDES];
    unsigned how = take(in) & 7;
    int rc[SIDES], generate = how & HMAC_GENERATE;

    gen_octets(&key, in, 0);
    memcpy(key.subst, key.bytes, key.len);
    if (starts(&key, "kpsa1"))
        key.subst[0] = 'K';
    gen_string(&digest, in, digests, COUNT(digests));
    msg_len = take(in) % MSG_MAX;
    take_bytes(in, msg, msg_len);

    for (int s = 0; s < SIDES; s++)
        pkeys[s] = hmac_key((enum side)s, how,
                            s == SUBST ? key.subst : key.bytes, key.len);
    /* keymgmt match: kpsa's key equals the default's of the same bytes
     * only through an export, which a handle never allows */
    if (pkeys[KPSA] != NULL && pkeys[DFLT] != NULL &&
        EVP_PKEY_eq(pkeys[KPSA], pkeys[DFLT]) == 1)
        must(!starts(&key, "kpsa1"), "kpsa's handle key equals its bytes");
    for (int s = 0; s < SIDES; s++) {
        EVP_PKEY *pkey = pkeys[s];
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        const char *props =
            s == KPSA && (how & HMAC_EXPORT) ? side_props[DFLT] : side_props[s];

        if (pkey != NULL && (how & HMAC_DUP)) {
            pkey = EVP_PKEY_dup(pkeys[s]);
            EVP_PKEY_free(pkeys[s]);
        }
        out_len[s] = sizeof(out[s]);
        rc[s] = pkey != NULL && md != NULL &&
                EVP_DigestSignInit_ex(md, NULL, (char *)digest.bytes, libctx,
                                      props, pkey, NULL) == 1 &&
                EVP_DigestSignUpdate(md, msg, msg_len) == 1 &&
                EVP_DigestSignFinal(md, out[s], &out_len[s]) == 1;
        EVP_MD_CTX_free(md);
        EVP_PKEY_free(pkey);
    }
    if (trace) {
        OSSL_PARAM shown[] = {
            OSSL_PARAM_construct_octet_string("key", key.bytes, key.len),
            OSSL_PARAM_construct_utf8_string("digest", (char *)digest.bytes, 0),
            OSSL_PARAM_construct_end(),
        };

        fprintf(stderr, "fuzz_kdf: hmac,%s%s%s key\n",
                generate ? " generated" : " imported",
                how & HMAC_DUP ? ", duplicated" : "",
                how & HMAC_EXPORT ? ", exported for signing" : "");
        trace_params("hmac", shown);
        trace_result("hmac", rc);
    }
    must(rc[DFLT] == rc[SUBST], "harness: the default HMACs agree");
    if (rc[KPSA] && rc[DFLT] && rc[SUBST] && out_len[DFLT] == out_len[SUBST] &&
        memcmp(out[DFLT], out[SUBST], out_len[DFLT]) != 0)
        must(out_len[KPSA] != out_len[DFLT] ||
                 memcmp(out[KPSA], out[DFLT], out_len[DFLT]) != 0,
             "kpsa's HMAC took a handle for key bytes");
    /* An empty key: OpenSSL's HMAC key generation refuses it and kpsa's
     * takes it; kpsa's key_dup fails on it (OPENSSL_memdup of 0 bytes). */
    if (!starts(&key, "kpsa1") && key.len > 0) {
        must(rc[KPSA] == rc[DFLT], "kpsa's HMAC without a handle is the "
                                   "default's (verdict)");
        if (rc[KPSA])
            must(out_len[KPSA] == out_len[DFLT] &&
                     memcmp(out[KPSA], out[DFLT], out_len[DFLT]) == 0,
                 "kpsa's HMAC without a handle is the default's (bytes)");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size};
    struct session ss = {.alg = (enum alg)(take(&in) % ALGS)};

    if (trace)
        fprintf(stderr, "fuzz_kdf: %s\n", alg_names[ss.alg]);

    for (int s = 0; s < SIDES; s++) {
        ss.ctx[s] = EVP_KDF_CTX_new(kdfs[ss.alg][s]);
        must(ss.ctx[s] != NULL, "a KDF context");
    }
    for (int op = 0; op < OPS_MAX && in.n > 0; op++) {
        switch (take(&in) % 8) {
        case 0:
        case 1:
            op_set(&ss, &in);
            break;
        case 2:
            op_derive(&ss, &in, 0);
            break;
        case 3:
            op_derive(&ss, &in, 1);
            break;
        case 4:
            op_reset(&ss);
            break;
        case 5:
            op_dup(&ss);
            break;
        case 6:
            op_size(&ss);
            break;
        default:
            op_hmac(&in);
            break;
        }
    }
    for (int s = 0; s < SIDES; s++)
        EVP_KDF_CTX_free(ss.ctx[s]);
    ERR_clear_error();
    return 0;
}

static int env_is_1(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && strcmp(v, "1") == 0;
}

/* 1 when KPSA_FUZZ_AVOID lists the word. */
static int avoids(const char *word)
{
    const char *list = getenv("KPSA_FUZZ_AVOID");
    size_t len = strlen(word);

    for (const char *at = list; at != NULL && *at != '\0';) {
        const char *end = strchr(at, ',');
        size_t n = end != NULL ? (size_t)(end - at) : strlen(at);

        if (n == len && memcmp(at, word, len) == 0)
            return 1;
        at = end != NULL ? end + 1 : NULL;
    }
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    strict = env_is_1("KPSA_FUZZ_STRICT");
    avoid_tls13_dup = avoids("tls13-dup");
    avoid_repeats = avoids("repeats");
    avoid_refused_set = avoids("refused-set");
    avoid_size = avoids("size");
    avoid_data_reset = avoids("data-reset");
    avoid_properties = avoids("properties");
    avoid_mode_case = avoids("mode-case");
    trace = env_is_1("KPSA_FUZZ_TRACE");
    /* No token: every use of one fails, at once and with an error. */
    unsetenv("KPSA_MODULE");
    unsetenv("KPSA_TOKEN");
    unsetenv("KPSA_PIN_SOURCE");

    libctx = OSSL_LIB_CTX_new();
    must(libctx != NULL &&
             OSSL_PROVIDER_add_builtin(libctx, "kpsa", OSSL_provider_init) &&
             OSSL_PROVIDER_load(libctx, "default") != NULL &&
             OSSL_PROVIDER_load(libctx, "kpsa") != NULL &&
             EVP_set_default_properties(libctx, "?provider=kpsa"),
         "the kpsa and default providers load");
    for (int a = 0; a < ALGS; a++) {
        for (int s = 0; s < SIDES; s++) {
            kdfs[a][s] = EVP_KDF_fetch(libctx, alg_names[a], side_props[s]);
            must(kdfs[a][s] != NULL, "the KDFs are there");
        }
        must(strcmp(
                 OSSL_PROVIDER_get0_name(EVP_KDF_get0_provider(kdfs[a][KPSA])),
                 "kpsa") == 0,
             "the default properties pick kpsa");
    }
    return 0;
}

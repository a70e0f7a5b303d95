/*
 * The cost of one token operation, measured in the same run as the
 * handshakes: HMAC-SHA-256 over a master-secret-sized seed with the
 * family's TLS 1.2 premaster member, through the token layer as the
 * provider calls it, on 1 and 2 threads (a session each). Then, in
 * sessions of our own, the same token object against a session key from
 * C_GenerateKey (CKA_TOKEN false): what a token that allowed C_CopyObject
 * would give the provider's session copies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

#include "bench.h"
#include "family.h"
#include "pin.h"
#include "token.h"

/* RFC 7627 4: "extended master secret" and a SHA-256 session hash. */
#define SEED_LEN 54

struct hmac_thread {
    struct kpsa_token *tok; /* token layer */
    CK_FUNCTION_LIST *fl;   /* or a session of our own */
    CK_SESSION_HANDLE session;
    CK_OBJECT_HANDLE key;
    unsigned char seed[SEED_LEN];
};

static int layer_step(void *arg)
{
    struct hmac_thread *t = arg;
    unsigned char mac[32];

    return token_hmac(t->tok, CKM_SHA256_HMAC, t->key, t->seed, SEED_LEN, mac,
                      sizeof(mac)) == 0;
}

static int raw_step(void *arg)
{
    struct hmac_thread *t = arg;
    CK_MECHANISM mech = {CKM_SHA256_HMAC, NULL, 0};
    unsigned char mac[32];
    CK_ULONG len = sizeof(mac);

    return t->fl->C_SignInit(t->session, &mech, t->key) == CKR_OK &&
           t->fl->C_Sign(t->session, t->seed, SEED_LEN, mac, &len) == CKR_OK;
}

/* Per operation and thread, the median of reps runs. */
static int time_hmacs(const struct bench_opts *o, bench_step_fn *step,
                      struct hmac_thread *t, int threads, int reps,
                      struct op_cost *out)
{
    struct bench_job job = {
        .threads = threads, .warmup = o->warmup, .seconds = o->seconds / 2};
    struct bench_result r;

    for (int i = 0; i < threads; i++) {
        job.step[i] = step;
        job.state[i] = &t[i];
    }
    out->wall_us = out->cpu_us = -1;
    if (bench_median(&job, reps, -1, &r) != 0 || r.done_all == 0 ||
        r.failed_all > 0)
        return -1;
    out->wall_us = (double)threads * r.elapsed * 1e6 / (double)r.done_all;
    out->cpu_us = r.cpu * 1e6 / (double)r.done_all;
    return 0;
}

static struct token_config env_config(void)
{
    struct token_config cfg = {
        .module = getenv("KPSA_MODULE"),
        .uri = getenv("KPSA_TOKEN"),
        .pin_source = getenv("KPSA_PIN_SOURCE"),
        .flags = 0,
    };

    return cfg;
}

/* ---- through the token layer ---- */

static int member_of(struct kpsa_token *tok, const char *kpsaid,
                     CK_OBJECT_HANDLE *out, char err[BENCH_ERRLEN])
{
    struct family_index *idx = family_index_new();
    const struct family *fam;
    int ret = -1;

    if (idx == NULL || family_index_build(idx, tok) != 0) {
        snprintf(err, BENCH_ERRLEN, "index: %.280s", token_err(tok)->msg);
        goto out;
    }
    fam = family_lookup(idx, kpsaid);
    if (fam == NULL || !(fam->found & MEMBER_BIT(MEMBER_TLS12_PMS_SHA256))) {
        snprintf(err, BENCH_ERRLEN, "%s: no whole key family on the token",
                 kpsaid);
        goto out;
    }
    *out = fam->handle[MEMBER_TLS12_PMS_SHA256];
    ret = 0;
out:
    family_index_free(idx);
    return ret;
}

struct cost_ctx {
    struct kpsa_token *tok; /* the first session; siblings for the rest */
    struct hmac_thread t[BENCH_THREADS_MAX];
};

struct cost_ctx *cost_open(const char *kpsaid, char err[BENCH_ERRLEN])
{
    struct token_config cfg = env_config();
    struct cost_ctx *c = calloc(1, sizeof(*c));
    CK_OBJECT_HANDLE key;

    if (c == NULL || (c->tok = token_new()) == NULL) {
        snprintf(err, BENCH_ERRLEN, "out of memory");
        goto fail;
    }
    if (token_open(c->tok, &cfg) != 0) {
        snprintf(err, BENCH_ERRLEN, "%s", token_err(c->tok)->msg);
        goto fail;
    }
    if (member_of(c->tok, kpsaid, &key, err) != 0)
        goto fail;
    c->t[0].tok = c->tok;
    for (int i = 1; i < BENCH_THREADS_MAX; i++) {
        struct kpsa_token *s = token_sibling(c->tok);

        c->t[i].tok = s;
        if (s == NULL || token_sibling_open(s) != 0) {
            snprintf(err, BENCH_ERRLEN, "another session: %.280s",
                     s ? token_err(s)->msg : "out of memory");
            goto fail;
        }
    }
    for (int i = 0; i < BENCH_THREADS_MAX; i++) {
        c->t[i].key = key;
        RAND_bytes(c->t[i].seed, SEED_LEN);
    }
    return c;
fail:
    cost_close(c);
    return NULL;
}

void cost_close(struct cost_ctx *c)
{
    if (c == NULL)
        return;
    for (int i = BENCH_THREADS_MAX - 1; i > 0; i--)
        token_free(c->t[i].tok);
    token_free(c->tok);
    free(c);
}

int cost_layer(struct cost_ctx *c, const struct bench_opts *o, int threads,
               int reps, struct op_cost *out)
{
    return time_hmacs(o, layer_step, c->t, threads, reps, out);
}

int cost_hmac(struct cost_ctx *c, int thread)
{
    return layer_step(&c->t[thread]);
}

/* ---- in sessions of our own ---- */

struct raw_token {
    CK_FUNCTION_LIST *fl;
    int initialized;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE session[2];
    int sessions;
    char label[33];
};

static int raw_slot(struct raw_token *raw, const char *uri_text,
                    char err[BENCH_ERRLEN])
{
    P11KitUri *uri = p11_kit_uri_new();
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    int found = 0;

    if (uri == NULL ||
        (uri_text != NULL && p11_kit_uri_parse(uri_text, P11_KIT_URI_FOR_TOKEN,
                                               uri) != P11_KIT_URI_OK)) {
        snprintf(err, BENCH_ERRLEN, "token URI '%s' does not parse",
                 uri_text ? uri_text : "");
        p11_kit_uri_free(uri);
        return -1;
    }
    if (raw->fl->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
        n = 0;
    for (CK_ULONG i = 0; i < n && !found; i++) {
        CK_TOKEN_INFO info;

        if (raw->fl->C_GetTokenInfo(slots[i], &info) != CKR_OK ||
            !(info.flags & CKF_TOKEN_INITIALIZED) ||
            !p11_kit_uri_match_token_info(uri, &info))
            continue;
        raw->slot = slots[i];
        memcpy(raw->label, info.label, 32);
        found = 1;
    }
    p11_kit_uri_free(uri);
    if (!found)
        snprintf(err, BENCH_ERRLEN, "no token matches '%s'",
                 uri_text ? uri_text : "pkcs11:");
    return found ? 0 : -1;
}

static int raw_login(struct raw_token *raw, const char *pin_source,
                     char err[BENCH_ERRLEN])
{
    struct kpsa_err perr = {0};
    char pin[PIN_MAX];
    size_t len = 0;
    CK_RV rv = CKR_OK;

    if (pin_read(pin_source, 0, raw->label, pin, &len, &perr) != 0) {
        snprintf(err, BENCH_ERRLEN, "%s", perr.msg);
        return -1;
    }
    rv = raw->fl->C_Login(raw->session[0], CKU_USER, (CK_UTF8CHAR *)pin,
                          (CK_ULONG)len);
    OPENSSL_cleanse(pin, sizeof(pin));
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        snprintf(err, BENCH_ERRLEN, "C_Login: %s", token_rv_name(rv));
        return -1;
    }
    return 0;
}

static int raw_open(struct raw_token *raw, char err[BENCH_ERRLEN])
{
    struct token_config cfg = env_config();

    memset(raw, 0, sizeof(*raw));
    raw->fl = cfg.module ? p11_kit_module_load(cfg.module, 0) : NULL;
    if (raw->fl == NULL || p11_kit_module_initialize(raw->fl) != CKR_OK) {
        snprintf(err, BENCH_ERRLEN, "cannot load and initialise '%s'",
                 cfg.module ? cfg.module : "(KPSA_MODULE unset)");
        return -1;
    }
    raw->initialized = 1;
    if (raw_slot(raw, cfg.uri, err) != 0)
        return -1;
    for (; raw->sessions < 2; raw->sessions++)
        if (raw->fl->C_OpenSession(
                raw->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                &raw->session[raw->sessions]) != CKR_OK) {
            snprintf(err, BENCH_ERRLEN, "C_OpenSession failed");
            return -1;
        }
    return raw_login(raw, cfg.pin_source, err);
}

static void raw_close(struct raw_token *raw)
{
    for (int i = 0; i < raw->sessions; i++)
        raw->fl->C_CloseSession(raw->session[i]);
    if (raw->initialized)
        p11_kit_module_finalize(raw->fl);
    if (raw->fl != NULL)
        p11_kit_module_release(raw->fl);
}

/* The member by its label and CKA_ID (docs/key-format.md). */
static CK_OBJECT_HANDLE raw_member(struct raw_token *raw, const char *kpsaid)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    char id[48];
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_LABEL, (void *)kpsaid, strlen(kpsaid)},
        {CKA_ID, id, 0},
    };
    CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
    CK_ULONG n = 0;

    tmpl[2].ulValueLen =
        (CK_ULONG)snprintf(id, sizeof(id), "%s%s", FAMILY_ID_PREFIX,
                           member_defs[MEMBER_TLS12_PMS_SHA256].name);
    if (raw->fl->C_FindObjectsInit(raw->session[0], tmpl, 3) != CKR_OK)
        return CK_INVALID_HANDLE;
    if (raw->fl->C_FindObjects(raw->session[0], &obj, 1, &n) != CKR_OK ||
        n != 1)
        obj = CK_INVALID_HANDLE;
    raw->fl->C_FindObjectsFinal(raw->session[0]);
    return obj;
}

/* Sensitive and unextractable like a family member, but a session
 * object: PKCS#11 2.40 4.4, visible to every session of this process. */
static CK_OBJECT_HANDLE raw_session_key(struct raw_token *raw)
{
    CK_MECHANISM mech = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG len = 64;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},     {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_TOKEN, &no, sizeof(no)},       {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)}, {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_SIGN, &yes, sizeof(yes)},      {CKA_VALUE_LEN, &len, sizeof(len)},
    };
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;

    if (raw->fl->C_GenerateKey(raw->session[0], &mech, tmpl, 8, &key) != CKR_OK)
        return CK_INVALID_HANDLE;
    return key;
}

static void raw_copy_answer(struct raw_token *raw, CK_OBJECT_HANDLE obj,
                            struct token_costs *out)
{
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {{CKA_TOKEN, &no, sizeof(no)}};
    CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE;
    CK_RV rv = raw->fl->C_CopyObject(raw->session[0], obj, tmpl, 1, &copy);

    snprintf(out->copy_rv, sizeof(out->copy_rv), "%s", token_rv_name(rv));
    if (rv == CKR_OK)
        raw->fl->C_DestroyObject(raw->session[0], copy);
}

static void raw_time(const struct bench_opts *o, struct raw_token *raw,
                     CK_OBJECT_HANDLE key, int threads, struct op_cost *out)
{
    struct hmac_thread t[2];

    memset(t, 0, sizeof(t));
    for (int i = 0; i < 2; i++) {
        t[i].fl = raw->fl;
        t[i].session = raw->session[i];
        t[i].key = key;
        RAND_bytes(t[i].seed, SEED_LEN);
    }
    time_hmacs(o, raw_step, t, threads, o->reps, out);
}

void cost_raw(const struct bench_opts *o, const char *kpsaid,
              struct token_costs *out)
{
    struct raw_token raw;
    CK_OBJECT_HANDLE obj, key = CK_INVALID_HANDLE;
    char err[BENCH_ERRLEN];

    memset(out, 0, sizeof(*out));
    snprintf(out->copy_rv, sizeof(out->copy_rv), "not tried");
    if (raw_open(&raw, err) != 0) {
        fprintf(stderr, "kpsa-bench: own sessions: %s\n", err);
        goto out;
    }
    obj = raw_member(&raw, kpsaid);
    key = raw_session_key(&raw);
    if (obj == CK_INVALID_HANDLE || key == CK_INVALID_HANDLE) {
        fprintf(stderr, "kpsa-bench: own sessions: no member or no "
                        "session key\n");
        goto out;
    }
    raw_copy_answer(&raw, obj, out);
    for (int n = 1; n <= 2; n++) {
        raw_time(o, &raw, obj, n, &out->token_obj[n - 1]);
        raw_time(o, &raw, key, n, &out->session_obj[n - 1]);
    }
    out->have_raw = 1;
out:
    if (key != CK_INVALID_HANDLE)
        raw.fl->C_DestroyObject(raw.session[0], key);
    raw_close(&raw);
}

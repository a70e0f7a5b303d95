/*
 * libFuzzer target: kpsa handles (pkcs11/handle.c).
 *
 * Every input is offered to handle_looks_like, handle_parse,
 * handle_looks_like_any and handle_derived_parse, each checked against
 * the format handle.h describes. A parsed handle must round-trip: a base
 * handle's id gives every stage's derived handle, which parses back to
 * that stage and id; a derived handle is rebuilt byte for byte by
 * handle_derived. An input that is a KpsaId gets its handle_of checked too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handle.h"
#include "kpsaid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char stages[] = {STAGE_EARLY, STAGE_BINDER_KEY,
                              STAGE_BINDER_FINISHED, STAGE_HANDSHAKE_KE,
                              STAGE_MASTER_KE};

static void must(int cond, const char *what)
{
    if (cond)
        return;
    fprintf(stderr, "fuzz_handle: invariant broken: %s\n", what);
    abort();
}

static int model_is_stage(uint8_t c)
{
    return memchr(stages, c, sizeof(stages)) != NULL;
}

static int model_lower_hex(const uint8_t *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* handle.h: "kpsa1.", then the family's 26 lowercase hex digits. */
static int model_base(const uint8_t *s, size_t len)
{
    return len == 32 && memcmp(s, "kpsa1.", 6) == 0 &&
           model_lower_hex(s + 6, 26);
}

/* handle.h: 32 or 48 bytes, "kpsa1", a stage, 26 hex digits, then dots. */
static int model_derived(const uint8_t *s, size_t len)
{
    if ((len != 32 && len != 48) || memcmp(s, "kpsa1", 5) != 0 ||
        !model_is_stage(s[5]) || !model_lower_hex(s + 6, 26))
        return 0;
    for (size_t i = 32; i < len; i++)
        if (s[i] != '.')
            return 0;
    return 1;
}

static void check_id(const char id[HANDLE_ID_LEN + 1], const uint8_t *from)
{
    must(id[HANDLE_ID_LEN] == '\0', "the id ends after 26 digits");
    must(memcmp(id, from, HANDLE_ID_LEN) == 0, "the id is the handle's");
}

/* Every stage and length of an id derives a handle that parses back. */
static void check_derivations(const char id[HANDLE_ID_LEN + 1])
{
    static const size_t lens[] = {32, 48};

    for (size_t s = 0; s < sizeof(stages); s++) {
        for (size_t l = 0; l < 2; l++) {
            unsigned char buf[48];
            char back[HANDLE_ID_LEN + 1];
            enum handle_stage stage = STAGE_EARLY;

            must(handle_derived((enum handle_stage)stages[s], id, lens[l],
                                buf) == 0,
                 "handle_derived accepts a stage and 32 or 48");
            must(handle_derived_parse(buf, lens[l], &stage, back) == 0,
                 "a derived handle parses");
            must(stage == (enum handle_stage)stages[s], "the stage survives");
            must(strcmp(back, id) == 0, "the id survives derivation");
            must(handle_looks_like_any(buf, lens[l]),
                 "a derived handle looks like a handle");
            must(!handle_looks_like(buf, lens[l]),
                 "a derived handle is no base handle");
            must(handle_parse(buf, lens[l], back) != 0,
                 "a derived handle does not parse as a base handle");
        }
    }
}

/* handle_derived refuses every other stage and length without writing. */
static void check_derived_refusal(const uint8_t *data, size_t size)
{
    unsigned char buf[256];
    char id[HANDLE_ID_LEN + 1];
    size_t len;
    uint8_t stage;

    if (size < 2)
        return;
    stage = data[0];
    len = data[1];
    memset(id, 'a', HANDLE_ID_LEN);
    id[HANDLE_ID_LEN] = '\0';
    memset(buf, 0x5a, sizeof(buf));
    if (model_is_stage(stage) && (len == 32 || len == 48))
        return;
    must(handle_derived((enum handle_stage)stage, id, len, buf) == -1,
         "handle_derived refuses other stages and lengths");
    for (size_t i = 0; i < sizeof(buf); i++)
        must(buf[i] == 0x5a, "a refused derivation writes nothing");
}

/* An input that is a KpsaId names a family; its handle parses. */
static void check_handle_of(const uint8_t *data, size_t size)
{
    char canonical[KPSAID_MAX + 1], err[KPSAID_ERR_MAX];
    char handle[HANDLE_LEN + 1], id[HANDLE_ID_LEN + 1];

    if (kpsaid_canonicalize((const char *)data, size, KPSAID_ALLOW_UNDERSCORE,
                            canonical, err) != 0)
        return;
    must(handle_of(canonical, handle) == 0, "a KpsaId has a handle");
    must(strlen(handle) == HANDLE_LEN, "a handle is 32 bytes");
    must(handle_parse((const unsigned char *)handle, HANDLE_LEN, id) == 0,
         "handle_of writes a handle that parses");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char id[HANDLE_ID_LEN + 1];
    enum handle_stage stage = STAGE_EARLY;
    int looks = handle_looks_like(data, size);
    int looks_any = handle_looks_like_any(data, size);
    int base, derived;

    must(looks == (size >= 6 && memcmp(data, "kpsa1.", 6) == 0),
         "handle_looks_like is the 'kpsa1.' prefix");
    must(looks_any == (size >= 5 && memcmp(data, "kpsa1", 5) == 0),
         "handle_looks_like_any is the 'kpsa1' prefix");

    memset(id, 0x5a, sizeof(id));
    base = handle_parse(data, size, id) == 0;
    must(base == model_base(data, size), "handle_parse follows handle.h");
    if (base) {
        must(looks && looks_any, "a parsed handle looks like one");
        check_id(id, data + HANDLE_PREFIX_LEN);
        check_derivations(id);
    }

    memset(id, 0x5a, sizeof(id));
    derived = handle_derived_parse(data, size, &stage, id) == 0;
    must(derived == model_derived(data, size),
         "handle_derived_parse follows handle.h");
    must(!(base && derived), "no handle is both base and derived");
    if (derived) {
        unsigned char rebuilt[48];

        must(looks_any, "a derived handle looks like a handle");
        check_id(id, data + DERIVED_PREFIX_LEN + 1);
        must(handle_derived(stage, id, size, rebuilt) == 0,
             "a parsed stage and id derive again");
        must(memcmp(rebuilt, data, size) == 0,
             "handle_derived rebuilds the parsed handle");
    }

    check_derived_refusal(data, size);
    check_handle_of(data, size);
    return 0;
}

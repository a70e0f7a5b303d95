/*
 * libFuzzer target: the RFC 4279 premaster parser of the TLS1-PRF
 * (parse_premaster, static in provider/prf.c, reached by including it).
 *
 * RFC 4279 2: struct { uint16 N; opaque other[N]; uint16 M; opaque
 * psk[M]; }, nothing after it. The parse must accept exactly the inputs
 * that are one such struct, point inside the input, and rebuild it byte
 * for byte; on the psk it finds, the provider's handle test must decide as
 * handle.h says (the input is then never taken for key bytes).
 */
#include <stdint.h>
#include <stdio.h>

/* prf.c's dispatch table is linked from the provider as well. */
#define kpsa_tls1_prf_functions fuzz_premaster_prf_functions
#include "../provider/prf.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond, const char *what)
{
    if (cond)
        return;
    fprintf(stderr, "fuzz_premaster: invariant broken: %s\n", what);
    abort();
}

static size_t model_u16(const uint8_t *p)
{
    return (size_t)p[0] * 256 + p[1];
}

/* 1 when data is exactly one premaster struct. */
static int model_premaster(const uint8_t *data, size_t size)
{
    size_t n, m;

    if (size < 2)
        return 0;
    n = model_u16(data);
    if (size - 2 < n || size - 2 - n < 2)
        return 0;
    m = model_u16(data + 2 + n);
    return size - 4 - n == m;
}

static void check_inside(const uint8_t *data, size_t size,
                         const unsigned char *p, size_t len)
{
    must(p >= data && p <= data + size, "a field starts inside the input");
    must(len <= (size_t)(data + size - p), "a field ends inside the input");
}

static void check_rebuilt(const uint8_t *data, size_t size,
                          const struct premaster *pm)
{
    uint8_t *again = malloc(size);

    if (again == NULL)
        return;
    must(4 + pm->other_len + pm->psk_len == size, "the fields fill the input");
    again[0] = (uint8_t)(pm->other_len >> 8);
    again[1] = (uint8_t)pm->other_len;
    memcpy(again + 2, pm->other, pm->other_len);
    again[2 + pm->other_len] = (uint8_t)(pm->psk_len >> 8);
    again[3 + pm->other_len] = (uint8_t)pm->psk_len;
    memcpy(again + 4 + pm->other_len, pm->psk, pm->psk_len);
    must(memcmp(again, data, size) == 0, "the fields rebuild the premaster");
    free(again);
}

/* prf_derive: a psk that starts like a handle is a handle or an error. */
static void check_handle_test(const struct premaster *pm)
{
    char id[HANDLE_ID_LEN + 1];
    int looks = handle_looks_like(pm->psk, pm->psk_len);

    must(looks == (pm->psk_len >= HANDLE_PREFIX_LEN &&
                   memcmp(pm->psk, HANDLE_PREFIX, HANDLE_PREFIX_LEN) == 0),
         "a psk looks like a handle when it starts with 'kpsa1.'");
    if (handle_parse(pm->psk, pm->psk_len, id) == 0)
        must(looks && pm->psk_len == HANDLE_LEN,
             "only a 32-byte psk that looks like a handle parses as one");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct premaster pm;
    int ok;

    memset(&pm, 0, sizeof(pm));
    ok = parse_premaster(data, size, &pm) == 0;
    must(ok == model_premaster(data, size),
         "parse_premaster accepts exactly one RFC 4279 premaster");
    if (!ok)
        return 0;
    must(pm.other == data + 2, "other follows its length");
    must(pm.other_len == model_u16(data), "N is big-endian");
    check_inside(data, size, pm.other, pm.other_len);
    check_inside(data, size, pm.psk, pm.psk_len);
    check_rebuilt(data, size, &pm);
    check_handle_test(&pm);
    return 0;
}

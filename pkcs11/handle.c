#include "handle.h"

#include <string.h>

#include <openssl/evp.h>

#include "schedule.h"

/* Domain-separated, so a handle is no digest anyone else computes. */
#define HANDLE_DOMAIN "kpsa handle v1\n"

int handle_of(const char *kpsaid, char out[HANDLE_LEN + 1])
{
    unsigned char md[32];
    unsigned int md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(ctx, HANDLE_DOMAIN, strlen(HANDLE_DOMAIN)) &&
             EVP_DigestUpdate(ctx, kpsaid, strlen(kpsaid)) &&
             EVP_DigestFinal_ex(ctx, md, &md_len);
    char hex[2 * sizeof(md) + 1];

    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -1;
    schedule_hex(md, sizeof(md), hex);
    memcpy(out, HANDLE_PREFIX, HANDLE_PREFIX_LEN);
    memcpy(out + HANDLE_PREFIX_LEN, hex, HANDLE_ID_LEN);
    out[HANDLE_LEN] = '\0';
    return 0;
}

int handle_looks_like(const unsigned char *bytes, size_t len)
{
    return len >= HANDLE_PREFIX_LEN &&
           memcmp(bytes, HANDLE_PREFIX, HANDLE_PREFIX_LEN) == 0;
}

static int take_id(const unsigned char *hex, char id[HANDLE_ID_LEN + 1])
{
    for (size_t i = 0; i < HANDLE_ID_LEN; i++) {
        unsigned char c = hex[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -1;
    }
    memcpy(id, hex, HANDLE_ID_LEN);
    id[HANDLE_ID_LEN] = '\0';
    return 0;
}

int handle_parse(const unsigned char *bytes, size_t len,
                 char id[HANDLE_ID_LEN + 1])
{
    if (len != HANDLE_LEN || !handle_looks_like(bytes, len))
        return -1;
    return take_id(bytes + HANDLE_PREFIX_LEN, id);
}

static int is_stage(int c)
{
    return c == STAGE_EARLY || c == STAGE_BINDER_KEY ||
           c == STAGE_BINDER_FINISHED || c == STAGE_HANDSHAKE_KE ||
           c == STAGE_MASTER_KE;
}

int handle_derived(enum handle_stage stage, const char id[HANDLE_ID_LEN + 1],
                   size_t len, unsigned char *out)
{
    if ((len != 32 && len != 48) || !is_stage((int)stage))
        return -1;
    memcpy(out, DERIVED_PREFIX, DERIVED_PREFIX_LEN);
    out[DERIVED_PREFIX_LEN] = (unsigned char)stage;
    memcpy(out + DERIVED_PREFIX_LEN + 1, id, HANDLE_ID_LEN);
    memset(out + HANDLE_LEN, '.', len - HANDLE_LEN);
    return 0;
}

int handle_looks_like_any(const unsigned char *bytes, size_t len)
{
    return len >= DERIVED_PREFIX_LEN &&
           memcmp(bytes, DERIVED_PREFIX, DERIVED_PREFIX_LEN) == 0;
}

int handle_derived_parse(const unsigned char *bytes, size_t len,
                         enum handle_stage *stage, char id[HANDLE_ID_LEN + 1])
{
    if ((len != 32 && len != 48) || !handle_looks_like_any(bytes, len) ||
        !is_stage(bytes[DERIVED_PREFIX_LEN]))
        return -1;
    for (size_t i = HANDLE_LEN; i < len; i++)
        if (bytes[i] != '.')
            return -1;
    *stage = (enum handle_stage)bytes[DERIVED_PREFIX_LEN];
    return take_id(bytes + DERIVED_PREFIX_LEN + 1, id);
}

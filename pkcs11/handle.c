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

int handle_parse(const unsigned char *bytes, size_t len,
                 char id[HANDLE_ID_LEN + 1])
{
    if (len != HANDLE_LEN || !handle_looks_like(bytes, len))
        return -1;
    for (size_t i = HANDLE_PREFIX_LEN; i < HANDLE_LEN; i++) {
        unsigned char c = bytes[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -1;
    }
    memcpy(id, bytes + HANDLE_PREFIX_LEN, HANDLE_ID_LEN);
    id[HANDLE_ID_LEN] = '\0';
    return 0;
}

/*
 * libFuzzer target: the operator's Credential-ID map (kpsa_map_load,
 * lib/map.c).
 *
 * Every input is written whole to a memory file and loaded as a map. A
 * second reading of the file format (kpsa.h, the comment atop map.c) says
 * whether the file is to be taken, and if not, which line the error must
 * name: the first wrong line, or the earliest repeat of a Credential-ID
 * before it. A taken map must hold every line and find each Credential-ID
 * with its entity; an error must be one line of printable text.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kpsa.h"
#include "kpsaid.h"

#define LINE_MAX_BYTES 1024
#define ENTITY_MAX     256
#define CRED_MAX       (3 + KPSAID_MAX)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct model_entry {
    char credential_id[CRED_MAX + 1];
    enum kpsa_entity entity;
    char entity_id[ENTITY_MAX + 1];
    unsigned long line;
};

struct model {
    struct model_entry *entries;
    size_t count;
    unsigned long bad_line; /* 0: every line is good */
};

static void must(int cond, const char *what)
{
    if (cond)
        return;
    fprintf(stderr, "fuzz_map: invariant broken: %s\n", what);
    abort();
}

/* ---- the file format again ---- */

static int model_blank(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* Up to three blank-separated fields of s; returns how many there are. */
static size_t model_fields(const uint8_t *s, size_t len,
                           const uint8_t *start[3], size_t flen[3])
{
    size_t count = 0;

    for (size_t i = 0; i < len;) {
        size_t j = i;

        if (model_blank(s[i])) {
            i++;
            continue;
        }
        while (j < len && !model_blank(s[j]))
            j++;
        if (count < 3) {
            start[count] = s + i;
            flen[count] = j - i;
        }
        count++;
        i = j;
    }
    return count;
}

/* 1 and the entry when the line maps, 0 when it holds nothing, -1. */
static int model_line(const uint8_t *s, size_t len, struct model_entry *e)
{
    const uint8_t *f[3], *hash;
    size_t fl[3];
    char kpsaid[KPSAID_MAX + 1], err[KPSAID_ERR_MAX];

    if (memchr(s, '\0', len) != NULL)
        return -1;
    if (len > 0 && s[len - 1] == '\r')
        len--;
    if (len > LINE_MAX_BYTES)
        return -1;
    hash = memchr(s, '#', len);
    if (hash != NULL)
        len = (size_t)(hash - s);
    switch (model_fields(s, len, f, fl)) {
    case 0:
        return 0;
    case 3:
        break;
    default:
        return -1;
    }

    if (fl[0] < 3 || memcmp(f[0], "12-", 3) != 0 ||
        kpsaid_canonicalize((const char *)f[0] + 3, fl[0] - 3,
                            KPSAID_ALLOW_UNDERSCORE, kpsaid, err) != 0)
        return -1;
    snprintf(e->credential_id, sizeof(e->credential_id), "12-%s", kpsaid);
    if (fl[1] == 2 && memcmp(f[1], "AE", 2) == 0)
        e->entity = KPSA_ENTITY_AE;
    else if (fl[1] == 3 && memcmp(f[1], "CSE", 3) == 0)
        e->entity = KPSA_ENTITY_CSE;
    else
        return -1;
    if (fl[2] > ENTITY_MAX)
        return -1;
    for (size_t i = 0; i < fl[2]; i++)
        if (f[2][i] < 0x21 || f[2][i] > 0x7e)
            return -1;
    memcpy(e->entity_id, f[2], fl[2]);
    e->entity_id[fl[2]] = '\0';
    return 1;
}

/* The error line a reader meets first: an earlier repeat, else bad_line. */
static unsigned long model_error_line(const struct model *m)
{
    unsigned long first = m->bad_line;

    for (size_t i = 0; i < m->count; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->entries[i].credential_id,
                       m->entries[j].credential_id) == 0 &&
                (first == 0 || m->entries[i].line < first))
                first = m->entries[i].line;
    return first;
}

static void model_read(const uint8_t *data, size_t size, struct model *m)
{
    unsigned long line = 0;
    size_t pos = 0;

    memset(m, 0, sizeof(*m));
    m->entries = calloc(size / 2 + 1, sizeof(*m->entries));
    must(m->entries != NULL, "memory for the model");
    while (pos < size) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t end = nl != NULL ? (size_t)(nl - data) : size;
        int rc = model_line(data + pos, end - pos, &m->entries[m->count]);

        line++;
        if (rc < 0) {
            m->bad_line = line;
            return;
        }
        if (rc > 0)
            m->entries[m->count++].line = line;
        pos = end + 1;
    }
}

/* ---- the checks ---- */

static void check_error(const char *path, const char err[KPSA_ERRLEN],
                        unsigned long want_line)
{
    size_t path_len = strlen(path);
    char *end = NULL;
    unsigned long line;

    must(memchr(err, '\0', KPSA_ERRLEN) != NULL, "the error ends");
    for (const char *c = err; *c != '\0'; c++)
        must(*c >= 0x20 && *c < 0x7f, "the error is one printable line");
    must(strncmp(err, path, path_len) == 0 && err[path_len] == ':',
         "the error starts with the path");
    line = strtoul(err + path_len + 1, &end, 10);
    must(end != NULL && *end == ':', "the error names a line");
    must(line == want_line, "the error names the first wrong line");
}

static void check_map(const struct kpsa_map *map, const struct model *m)
{
    const char *entity_id = NULL;

    must(kpsa_map_count(map) == m->count, "the map holds every line");
    for (size_t i = 0; i < m->count; i++) {
        const struct model_entry *e = &m->entries[i];

        must(kpsa_map_lookup(map, e->credential_id, &entity_id) == e->entity,
             "a mapped Credential-ID has its entity type");
        must(entity_id != NULL && strcmp(entity_id, e->entity_id) == 0,
             "a mapped Credential-ID has its ENTITY-ID");
    }
    /* Stored Credential-IDs are canonical: their Issuer_FQDN is lower case
     * and is compared as given. */
    must(kpsa_map_lookup(map, "12-nobody@FUZZ.invalid", &entity_id) ==
                 KPSA_ENTITY_NONE &&
             entity_id == NULL,
         "an unmapped Credential-ID maps to nothing");
    must(kpsa_map_lookup(map, NULL, &entity_id) == KPSA_ENTITY_NONE,
         "no Credential-ID maps to nothing");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    char err[KPSA_ERRLEN];
    struct kpsa_map *map;
    struct model m;
    unsigned long want_line;

    if (fd < 0) {
        fd = memfd_create("fuzz_map", MFD_CLOEXEC);
        must(fd >= 0, "a memory file");
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    must(ftruncate(fd, 0) == 0 &&
             (size == 0 || pwrite(fd, data, size, 0) == (ssize_t)size),
         "the input is written");

    memset(err, 0x5a, sizeof(err));
    map = kpsa_map_load(path, err);
    model_read(data, size, &m);
    want_line = model_error_line(&m);
    if (want_line != 0) {
        must(map == NULL, "a wrong file is refused whole");
        check_error(path, err, want_line);
    } else {
        must(map != NULL, "a good file is taken");
        must(err[0] == '\0', "a taken map clears the error");
        check_map(map, &m);
    }
    kpsa_map_free(map);

    /* Inputs of odd length once more without an error buffer, which
     * map.c takes: the same verdict and the same map. */
    if (size % 2 == 1) {
        map = kpsa_map_load(path, NULL);
        must((map == NULL) == (want_line != 0),
             "no error buffer, the same verdict");
        if (map != NULL)
            check_map(map, &m);
        kpsa_map_free(map);
    }
    free(m.entries);
    return 0;
}

/*
 * The operator's map from Credential-ID to entity. TS-0003 8.2.1: Entity B
 * binds a security association to the Credential-ID and maps it to an
 * AE-ID or CSE-ID, among other ways by operator configuration; this file
 * is that configuration, one line per Credential-ID:
 *
 *     12-<KpsaId>  AE|CSE  ENTITY-ID    # comment
 *
 * A file is taken whole or not at all, so that a typo never leaves a
 * server with half a map. Errors name the first wrong line in file order.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "kpsa.h"
#include "kpsaid.h"

#define KPSA_API __attribute__((visibility("default")))

/* The longest line, without its LF or CRLF. */
#define MAP_LINE_MAX   1024
#define MAP_ENTITY_MAX 256
/* TS-0003 10.4: Credential-ID "<type>-<value>"; type 12 is the symmetric
 * key of a SAEF, whose value is the KpsaId. */
#define MAP_CRED_PREFIX     "12-"
#define MAP_CRED_PREFIX_LEN 3
#define MAP_CRED_MAX        (MAP_CRED_PREFIX_LEN + KPSAID_MAX)
/* How much of a path, a field or a KpsaId error an error line shows. */
#define MAP_SHOW_PATH   128
#define MAP_SHOW_FIELD  40
#define MAP_SHOW_REASON 200

struct map_entry {
    char *credential_id;   /* canonical; entity_id shares its allocation */
    const char *entity_id; /* as written in the file */
    enum kpsa_entity entity;
    unsigned long line;
};

struct kpsa_map {
    struct map_entry *entries; /* sorted by credential_id */
    size_t count;
};

struct map_reader {
    FILE *file;
    const char *path;
    char *err; /* KPSA_ERRLEN bytes, or NULL */
    unsigned long line;
    int read_failed; /* the error is about the file, not a line */
    struct map_entry *entries;
    size_t count, cap;
};

struct field {
    const char *s;
    size_t len;
};

static size_t escaped_width(unsigned char c)
{
    return (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : 4;
}

/*
 * Writes the len bytes at s to out (max + 1 bytes, max > 3) so that an
 * error stays one readable line: bytes outside 0x20..0x7e, and '\' itself,
 * become \xHH. What does not fit in max characters is cut, ending "...".
 */
static void escape(const char *s, size_t len, char *out, size_t max)
{
    size_t need = 0, n = 0;

    for (size_t i = 0; i < len; i++)
        need += escaped_width((unsigned char)s[i]);

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t w = escaped_width(c);

        if (need > max && n + w > max - 3)
            break;
        if (w == 1)
            out[n] = (char)c;
        else
            snprintf(out + n, 5, "\\x%02x", c);
        n += w;
    }
    if (need > max) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

static void set_err(char *err, const char *msg)
{
    if (err != NULL)
        snprintf(err, KPSA_ERRLEN, "%s", msg);
}

/* Sets "PATH:LINE: what" as the error; returns -1. */
static int fail_at(const struct map_reader *r, unsigned long line,
                   const char *fmt, ...) KPSA_PRINTF(3, 4);

static int fail_at(const struct map_reader *r, unsigned long line,
                   const char *fmt, ...)
{
    char path[MAP_SHOW_PATH + 1];
    va_list ap;
    int n;

    if (r->err == NULL)
        return -1;
    escape(r->path, strlen(r->path), path, MAP_SHOW_PATH);
    n = snprintf(r->err, KPSA_ERRLEN, "%s:%lu: ", path, line);
    if (n < 0 || n >= KPSA_ERRLEN)
        return -1;
    va_start(ap, fmt);
    vsnprintf(r->err + n, KPSA_ERRLEN - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* Sets "PATH: cannot read: why" as the error; returns -1. */
static int fail_read(struct map_reader *r, int errnum)
{
    char path[MAP_SHOW_PATH + 1], why[128];

    r->read_failed = 1;
    if (r->err == NULL)
        return -1;
    if (strerror_r(errnum, why, sizeof(why)) != 0)
        snprintf(why, sizeof(why), "error %d", errnum);
    escape(r->path, strlen(r->path), path, MAP_SHOW_PATH);
    snprintf(r->err, KPSA_ERRLEN, "%s: cannot read: %s", path, why);
    return -1;
}

/*
 * Reads the next line into buf without its LF or CRLF and counts it.
 * Returns 1, 0 at the end of the file, or -1 with the error.
 */
static int read_line(struct map_reader *r, char buf[MAP_LINE_MAX + 2],
                     size_t *len)
{
    size_t n = 0;
    int c;

    r->line++;
    while ((c = getc(r->file)) != EOF && c != '\n') {
        if (c == '\0')
            return fail_at(r, r->line,
                           "NUL byte at position %zu; a map is a text file",
                           n + 1);
        /* Room for MAP_LINE_MAX bytes and a CR. */
        if (n > MAP_LINE_MAX)
            return fail_at(r, r->line, "line is longer than %d bytes",
                           MAP_LINE_MAX);
        buf[n++] = (char)c;
    }
    if (ferror(r->file))
        return fail_read(r, errno);
    if (c == EOF && n == 0)
        return 0;

    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n > MAP_LINE_MAX)
        return fail_at(r, r->line, "line is longer than %d bytes",
                       MAP_LINE_MAX);
    buf[n] = '\0';
    *len = n;
    return 1;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Returns how many blank-separated fields s holds; keeps the first three. */
static size_t split_fields(const char *s, size_t len, struct field f[3])
{
    size_t count = 0, i = 0;

    while (i < len) {
        size_t start;

        while (i < len && is_blank(s[i]))
            i++;
        if (i == len)
            break;
        start = i;
        while (i < len && !is_blank(s[i]))
            i++;
        if (count < 3) {
            f[count].s = s + start;
            f[count].len = i - start;
        }
        count++;
    }
    return count;
}

static int field_is(const struct field *f, const char *word)
{
    return f->len == strlen(word) && memcmp(f->s, word, f->len) == 0;
}

/* TS-0003 10.4: "12-<KpsaId>", stored with the KpsaId in canonical form
 * so that every spelling of an Issuer_FQDN finds the same line. */
static int parse_credential_id(const struct map_reader *r,
                               const struct field *f,
                               char out[MAP_CRED_MAX + 1])
{
    char kpsaid[KPSAID_MAX + 1], why[KPSAID_ERR_MAX];
    char shown[MAP_SHOW_REASON + 1];

    if (f->len < MAP_CRED_PREFIX_LEN ||
        memcmp(f->s, MAP_CRED_PREFIX, MAP_CRED_PREFIX_LEN) != 0) {
        escape(f->s, f->len, shown, MAP_SHOW_FIELD);
        return fail_at(r, r->line,
                       "Credential-ID '%s' does not start with '12-'; only "
                       "type 12 (symmetric key of a SAEF, TS-0003 10.4) is "
                       "handled",
                       shown);
    }

    if (kpsaid_canonicalize(f->s + MAP_CRED_PREFIX_LEN,
                            f->len - MAP_CRED_PREFIX_LEN,
                            KPSAID_ALLOW_UNDERSCORE, kpsaid, why) != 0) {
        /* Some reasons quote the KpsaId before its bytes are checked. */
        escape(why, strlen(why), shown, MAP_SHOW_REASON);
        return fail_at(r, r->line, "%s", shown);
    }
    snprintf(out, MAP_CRED_MAX + 1, "%s%s", MAP_CRED_PREFIX, kpsaid);
    return 0;
}

static int parse_entity_type(const struct map_reader *r, const struct field *f,
                             enum kpsa_entity *entity)
{
    char shown[MAP_SHOW_FIELD + 1];

    if (field_is(f, "AE")) {
        *entity = KPSA_ENTITY_AE;
        return 0;
    }
    if (field_is(f, "CSE")) {
        *entity = KPSA_ENTITY_CSE;
        return 0;
    }
    escape(f->s, f->len, shown, MAP_SHOW_FIELD);
    return fail_at(r, r->line, "entity type '%s' is neither AE nor CSE", shown);
}

/*
 * The AE-ID or CSE-ID is kept as the operator wrote it: printable ASCII
 * without blanks, at most 256 characters. No further syntax is enforced
 * (the forms of TS-0001 are not checked), and several Credential-IDs may
 * name one entity, as they do while its key is being replaced.
 */
static int check_entity_id(const struct map_reader *r, const struct field *f)
{
    if (f->len > MAP_ENTITY_MAX)
        return fail_at(r, r->line, "ENTITY-ID is %zu characters; at most %d",
                       f->len, MAP_ENTITY_MAX);

    for (size_t i = 0; i < f->len; i++) {
        unsigned char c = (unsigned char)f->s[i];

        if (c > 0x20 && c < 0x7f)
            continue;
        return fail_at(r, r->line,
                       "ENTITY-ID has 0x%02x at position %zu; allowed are "
                       "printable ASCII characters (0x21 to 0x7e)",
                       c, i + 1);
    }
    return 0;
}

static int add_entry(struct map_reader *r, const char *credential_id,
                     enum kpsa_entity entity, const struct field *entity_id)
{
    size_t cred_len = strlen(credential_id);
    struct map_entry *e;
    char *text;

    if (r->count == r->cap) {
        size_t cap = r->cap > 0 ? r->cap * 2 : 64;
        struct map_entry *grown;

        if (cap > SIZE_MAX / sizeof(*grown))
            return fail_at(r, r->line, "out of memory");
        grown = realloc(r->entries, cap * sizeof(*grown));
        if (grown == NULL)
            return fail_at(r, r->line, "out of memory");
        r->entries = grown;
        r->cap = cap;
    }

    text = malloc(cred_len + 1 + entity_id->len + 1);
    if (text == NULL)
        return fail_at(r, r->line, "out of memory");
    memcpy(text, credential_id, cred_len + 1);
    memcpy(text + cred_len + 1, entity_id->s, entity_id->len);
    text[cred_len + 1 + entity_id->len] = '\0';

    e = &r->entries[r->count++];
    e->credential_id = text;
    e->entity_id = text + cred_len + 1;
    e->entity = entity;
    e->line = r->line;
    return 0;
}

/* One line of len bytes: a mapping, or nothing but blanks and a comment. */
static int parse_line(struct map_reader *r, const char *line, size_t len)
{
    const char *comment = memchr(line, '#', len);
    char credential_id[MAP_CRED_MAX + 1];
    enum kpsa_entity entity = KPSA_ENTITY_NONE;
    struct field f[3];
    size_t count;

    if (comment != NULL)
        len = (size_t)(comment - line);
    count = split_fields(line, len, f);
    if (count == 0)
        return 0;
    if (count != 3)
        return fail_at(r, r->line,
                       "expected CREDENTIAL-ID AE|CSE ENTITY-ID, found %zu "
                       "field%s",
                       count, count == 1 ? "" : "s");

    if (parse_credential_id(r, &f[0], credential_id) != 0 ||
        parse_entity_type(r, &f[1], &entity) != 0 ||
        check_entity_id(r, &f[2]) != 0)
        return -1;
    return add_entry(r, credential_id, entity, &f[2]);
}

static int read_entries(struct map_reader *r)
{
    char line[MAP_LINE_MAX + 2];
    size_t len = 0;
    int rc;

    while ((rc = read_line(r, line, &len)) == 1)
        if (parse_line(r, line, len) != 0)
            return -1;
    return rc;
}

/* By Credential-ID, and by line within one, for the duplicate check. */
static int entry_order(const void *a, const void *b)
{
    const struct map_entry *x = a, *y = b;
    int c = strcmp(x->credential_id, y->credential_id);

    if (c != 0)
        return c;
    return (x->line > y->line) - (x->line < y->line);
}

static int entry_match(const void *key, const void *elem)
{
    const struct map_entry *e = elem;

    return strcmp(key, e->credential_id);
}

/*
 * The entries must be sorted. Reports the repeat on the earliest line, so
 * that the error is the first a reader of the file would meet.
 */
static int check_duplicates(const struct map_reader *r)
{
    const struct map_entry *first = NULL, *again = NULL;

    for (size_t i = 1; i < r->count; i++) {
        const struct map_entry *a = &r->entries[i - 1], *b = &r->entries[i];

        if (strcmp(a->credential_id, b->credential_id) != 0)
            continue;
        if (again == NULL || b->line < again->line) {
            first = a;
            again = b;
        }
    }
    if (again == NULL)
        return 0;
    /* Canonical, so every byte is printable. */
    return fail_at(r, again->line,
                   "Credential-ID %s is already mapped on line %lu",
                   again->credential_id, first->line);
}

static void free_entries(struct map_entry *entries, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(entries[i].credential_id);
    free(entries);
}

KPSA_API struct kpsa_map *kpsa_map_load(const char *path, char err[KPSA_ERRLEN])
{
    struct map_reader r = {.path = path, .err = err};
    struct kpsa_map *map = NULL;
    int rc;

    if (path == NULL) {
        set_err(err, "no path given for the map");
        return NULL;
    }
    r.file = fopen(path, "r");
    if (r.file == NULL) {
        fail_read(&r, errno);
        return NULL;
    }

    rc = read_entries(&r);
    fclose(r.file);
    if (r.read_failed)
        goto fail;

    /* Every entry read precedes a line error, so a repeat among them is
     * the earlier error. */
    if (r.count > 0)
        qsort(r.entries, r.count, sizeof(r.entries[0]), entry_order);
    if (check_duplicates(&r) != 0 || rc != 0)
        goto fail;

    map = malloc(sizeof(*map));
    if (map == NULL) {
        set_err(err, "out of memory");
        goto fail;
    }
    map->entries = r.entries;
    map->count = r.count;
    set_err(err, "");
    return map;

fail:
    free_entries(r.entries, r.count);
    return NULL;
}

KPSA_API void kpsa_map_free(struct kpsa_map *map)
{
    if (map == NULL)
        return;
    free_entries(map->entries, map->count);
    free(map);
}

/* The Credential-ID is compared as given: callers build it from the
 * canonical KpsaId, as the map stores it. */
KPSA_API enum kpsa_entity kpsa_map_lookup(const struct kpsa_map *map,
                                          const char *credential_id,
                                          const char **entity_id)
{
    const struct map_entry *e = NULL;

    if (map != NULL && credential_id != NULL && map->count > 0)
        e = bsearch(credential_id, map->entries, map->count,
                    sizeof(map->entries[0]), entry_match);
    if (entity_id != NULL)
        *entity_id = e != NULL ? e->entity_id : NULL;
    return e != NULL ? e->entity : KPSA_ENTITY_NONE;
}

KPSA_API size_t kpsa_map_count(const struct kpsa_map *map)
{
    return map != NULL ? map->count : 0;
}

/*
 * The operator's map from Credential-ID to entity (TS-0003 8.2.1, 10.4):
 * files written to a temporary directory and read back. Every refused file
 * is a row with its exact error line, since operators and scripts read
 * those lines.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kat.h"
#include "kpsa.h"

#define PATH_LEN 512

/* Texts carry their length, so embedded NULs reach the file. */
#define IN(s) s, sizeof(s) - 1
#define BAD(what, s, err)                                                      \
    {                                                                          \
        what, IN(s), err                                                       \
    }

/* Building blocks for the length limits. */
#define C10   "abcdefghij"
#define C50   C10 C10 C10 C10 C10
#define C60   C50 C10
#define C250  C50 C50 C50 C50 C50
#define C1000 C250 C250 C250 C250
#define R116  C50 C50 C10 "abcdef"
/* 24 characters of mapping and comment, then padding up to the length. */
#define LINE1024  "12-a@example.com AE Ca #" C1000
#define LINE1025  LINE1024 "x"
#define ENTITY256 C250 "abcdef"
#define ENTITY257 ENTITY256 "g"

/* The fixed parts of the messages. */
#define FIELDS "expected CREDENTIAL-ID AE|CSE ENTITY-ID, found "
#define NOT_12                                                                 \
    "' does not start with '12-'; only type 12 (symmetric key of "             \
    "a SAEF, TS-0003 10.4) is handled"
#define NOT_TYPE  "' is neither AE nor CSE"
#define PRINTABLE "; allowed are printable ASCII characters (0x21 to 0x7e)"
#define REL_CHARS "; allowed are letters, digits, '.' and '-' (TS-0003 10.6)"
#define MAPPED    " is already mapped on line "
#define TOO_LONG  "line is longer than 1024 bytes"
#define NUL_BYTE  "; a map is a text file"

struct bad_row {
    const char *what;
    const char *text;
    size_t len;
    const char *err; /* after "PATH:" */
};

static const struct bad_row bad_rows[] = {
    /* the three fields */
    BAD("two fields", "12-a@example.com AE\n", "1: " FIELDS "2 fields"),
    BAD("one field after a comment and a blank line",
        "# header\n\n12-a@example.com\n", "3: " FIELDS "1 field"),
    BAD("four fields", "12-a@example.com AE Ca extra\n",
        "1: " FIELDS "4 fields"),
    BAD("a comment that hides the third field", "12-a@example.com AE #Ca\n",
        "1: " FIELDS "2 fields"),
    BAD("two fields on the third of CRLF lines",
        "12-a@example.com AE Ca\r\n\r\n12-b@x.example CSE\r\n",
        "3: " FIELDS "2 fields"),
    BAD("a vertical tab, which separates nothing", "12-a@example.com\vAE Ca\n",
        "1: " FIELDS "2 fields"),

    /* CREDENTIAL-ID: type 12 only (TS-0003 10.4) */
    BAD("type 13", "13-a@example.com AE Ca\n",
        "1: Credential-ID '13-a@example.com" NOT_12),
    BAD("a bare KpsaId", "a@example.com AE Ca\n",
        "1: Credential-ID 'a@example.com" NOT_12),
    BAD("type 12 without its dash", "12a@example.com AE Ca\n",
        "1: Credential-ID '12a@example.com" NOT_12),
    BAD("a control sequence in the type", "\x1b[2J-a@x.example AE Ca\n",
        "1: Credential-ID '\\x1b[2J-a@x.example" NOT_12),
    BAD("a backslash in the type", "1\\2-a@x.example AE Ca\n",
        "1: Credential-ID '1\\x5c2-a@x.example" NOT_12),
    BAD("a long Credential-ID shortened", "13-" C50 "@x.example AE Ca\n",
        "1: Credential-ID '13-" C10 C10 C10 "abcd..." NOT_12),

    /* CREDENTIAL-ID: the KpsaId rules, as kpsaid.c words them */
    BAD("an empty KpsaId", "12- AE Ca\n", "1: KpsaId is empty"),
    BAD("an empty relative part", "12-@example.com AE Ca\n",
        "1: Issuer_Relative_KpsaId is empty"),
    BAD("'!' in the relative part", "12-a!b@example.com AE Ca\n",
        "1: Issuer_Relative_KpsaId has '!' at position 2" REL_CHARS),
    BAD("a one-label Issuer_FQDN", "12-a@localhost AE Ca\n",
        "1: Issuer_FQDN 'localhost' has one label; a fully qualified name "
        "has at least two"),
    BAD("'_' in the Issuer_FQDN", "12-a@b_c.example AE Ca\n",
        "1: Issuer_FQDN has '_'; labels hold letters, digits and '-' "
        "(RFC 1123 2.1)"),
    BAD("a 129-octet KpsaId", "12-" R116 "g@example.com AE Ca\n",
        "1: KpsaId is 129 octets; at most 128 (RFC 4279 5.3)"),
    /* the label is quoted before its bytes are checked */
    BAD("a raw byte quoted by a KpsaId rule", "12-a@\x01" C60 "abc.com AE Ca\n",
        "1: Issuer_FQDN label \\x01abcdefghijabcdefghi... is 64 characters; "
        "at most 63 (RFC 1035 2.3.4)"),

    /* AE|CSE */
    BAD("type XY", "12-a@example.com XY Ca\n", "1: entity type 'XY" NOT_TYPE),
    BAD("type ae in lower case", "12-a@example.com ae Ca\n",
        "1: entity type 'ae" NOT_TYPE),
    BAD("type AES", "12-a@example.com AES Ca\n",
        "1: entity type 'AES" NOT_TYPE),
    BAD("a control byte in the type", "12-a@example.com AE\x01 Ca\n",
        "1: entity type 'AE\\x01" NOT_TYPE),

    /* ENTITY-ID */
    BAD("a 257-character ENTITY-ID", "12-a@example.com AE " ENTITY257 "\n",
        "1: ENTITY-ID is 257 characters; at most 256"),
    BAD("DEL in the ENTITY-ID", "12-a@example.com CSE C\x7f\n",
        "1: ENTITY-ID has 0x7f at position 2" PRINTABLE),
    BAD("UTF-8 in the ENTITY-ID", "12-a@example.com CSE caf\xc3\xa9\n",
        "1: ENTITY-ID has 0xc3 at position 4" PRINTABLE),
    BAD("a bare CR in the ENTITY-ID", "12-a@example.com AE x\ry\n",
        "1: ENTITY-ID has 0x0d at position 2" PRINTABLE),
    BAD("a form feed in the ENTITY-ID", "12-a@example.com AE C1\f2\n",
        "1: ENTITY-ID has 0x0c at position 3" PRINTABLE),

    /* one line per Credential-ID */
    BAD("a repeated Credential-ID",
        "12-b@example.com AE Cb\n12-a@example.com AE Ca\n\n#\n"
        "12-c@example.com AE Cc\n\n12-a@example.com CSE Ca2\n",
        "7: Credential-ID 12-a@example.com" MAPPED "2"),
    BAD("a Credential-ID repeated in another spelling",
        "12-Dev@example.com AE C1\n12-Dev@EXAMPLE.com. AE C1\n",
        "2: Credential-ID 12-Dev@example.com" MAPPED "1"),
    BAD("the first of two repeats in file order",
        "12-b@x.example AE B\n12-c@x.example AE C\n12-d@x.example AE D\n"
        "12-a@x.example AE A\n12-b@x.example AE B\n12-a@x.example AE A\n",
        "5: Credential-ID 12-b@x.example" MAPPED "1"),
    BAD("a Credential-ID three times",
        "12-a@x.example AE A\n12-b@x.example AE B\n12-a@x.example AE A\n"
        "12-a@x.example AE A\n",
        "3: Credential-ID 12-a@x.example" MAPPED "1"),
    BAD("a repeat before a malformed line",
        "12-a@x.example AE A\n12-a@x.example AE A\n12-b@x.example\n",
        "2: Credential-ID 12-a@x.example" MAPPED "1"),
    BAD("a malformed line before a repeat",
        "12-a@x.example AE A\nbad\n12-a@x.example AE A\n",
        "2: " FIELDS "1 field"),

    /* the file itself */
    BAD("a 1025-byte line", "12-b@x.example AE B\n" LINE1025 "\n",
        "2: " TOO_LONG),
    BAD("a 1025-byte line with CRLF", LINE1025 "\r\n", "1: " TOO_LONG),
    BAD("a 1025-byte last line without a line end", LINE1025, "1: " TOO_LONG),
    BAD("a 1026-byte comment", "#" LINE1025 "\n", "1: " TOO_LONG),
    BAD("a NUL byte in a mapping",
        "12-a@example.com AE Ca\n12-b\0@example.com AE Cb\n",
        "2: NUL byte at position 5" NUL_BYTE),
    BAD("a NUL byte in a comment", "# a\0b\n",
        "1: NUL byte at position 4" NUL_BYTE),
    BAD("a NUL byte as the last byte", "12-a@example.com AE Ca\0",
        "1: NUL byte at position 23" NUL_BYTE),
};

/* Writes len bytes to a new file under $TMPDIR or /tmp. */
static int write_temp(const char *text, size_t len, char path[PATH_LEN])
{
    const char *dir = getenv("TMPDIR");
    FILE *f;
    int fd, n;

    if (dir == NULL || dir[0] == '\0')
        dir = "/tmp";
    n = snprintf(path, PATH_LEN, "%s/kpsa-map-XXXXXX", dir);
    if (n < 0 || n >= PATH_LEN || (fd = mkstemp(path)) < 0)
        return -1;
    f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        unlink(path);
        return -1;
    }
    if (fwrite(text, 1, len, f) != len) {
        fclose(f);
        unlink(path);
        return -1;
    }
    if (fclose(f) != 0) {
        unlink(path);
        return -1;
    }
    return 0;
}

/* Loads len bytes written to a temporary file, which is removed again;
 * *written says whether the file could be written at all. */
static struct kpsa_map *load_text(const char *text, size_t len,
                                  char path[PATH_LEN], char err[KPSA_ERRLEN],
                                  int *written)
{
    struct kpsa_map *map;

    strcpy(err, "unset");
    *written = write_temp(text, len, path) == 0;
    if (!*written) {
        tap_diag("cannot write a temporary file: %s", strerror(errno));
        return NULL;
    }
    map = kpsa_map_load(path, err);
    unlink(path);
    return map;
}

static int one_printable_line(const char *err)
{
    size_t len = strlen(err);

    if (len == 0 || len >= KPSA_ERRLEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (err[i] < 0x20 || err[i] > 0x7e)
            return 0;
    return 1;
}

static void refused(const char *what, struct kpsa_map *map, const char *err,
                    const char *want)
{
    int good = map == NULL && strcmp(err, want) == 0 && one_printable_line(err);

    if (!tap_check(good, "refuses %s", what)) {
        tap_diag("map %s, err \"%s\"", map != NULL ? "loaded" : "NULL", err);
        tap_diag("want     \"%s\"", want);
    }
    kpsa_map_free(map);
}

static void bad_table(void)
{
    char path[PATH_LEN], err[KPSA_ERRLEN], want[KPSA_ERRLEN + PATH_LEN];

    for (size_t i = 0; i < sizeof(bad_rows) / sizeof(bad_rows[0]); i++) {
        const struct bad_row *r = &bad_rows[i];
        int written;
        struct kpsa_map *map = load_text(r->text, r->len, path, err, &written);

        snprintf(want, sizeof(want), "%s:%s", path, r->err);
        refused(r->what, map, err, written ? want : "a written file");
    }
}

/* ---- files that load ---- */

struct lookup_row {
    const char *credential_id;
    enum kpsa_entity entity;
    const char *entity_id; /* NULL when unmapped */
};

static const char valid_text[] =
    "# the operator's map (TS-0003 8.2.1)\n"
    "\n"
    "12-sensor-01@m2m.example.com AE Csensor01\n"
    "   \t  \n"
    "\t12-Dev@EXAMPLE.com.\tCSE\t/in-cse-01   # canonical: example.com\r\n"
    "12-gw_7@Example.Net  AE   C-gw7#no blank before the comment\r\n"
    "  # an indented comment\n"
    "\r\n"
    "12-meter-17@maker.example.net CSE mn-cse-17 \t \n"
    "12-" R116 "@example.com AE " ENTITY256 "\n" LINE1024 "\n"
    "12-b@example.com CSE Cb#" C1000 "\r\n"
    "12-last@x.example AE Clast";

static const struct lookup_row lookup_rows[] = {
    {"12-sensor-01@m2m.example.com", KPSA_ENTITY_AE, "Csensor01"},
    {"12-Dev@example.com", KPSA_ENTITY_CSE, "/in-cse-01"},
    {"12-gw_7@example.net", KPSA_ENTITY_AE, "C-gw7"},
    {"12-meter-17@maker.example.net", KPSA_ENTITY_CSE, "mn-cse-17"},
    {"12-" R116 "@example.com", KPSA_ENTITY_AE, ENTITY256},
    {"12-a@example.com", KPSA_ENTITY_AE, "Ca"},
    {"12-b@example.com", KPSA_ENTITY_CSE, "Cb"},
    {"12-last@x.example", KPSA_ENTITY_AE, "Clast"},
    /* lookups compare the canonical form exactly */
    {"12-Dev@EXAMPLE.com.", KPSA_ENTITY_NONE, NULL},
    {"12-Dev@example.com.", KPSA_ENTITY_NONE, NULL},
    {"12-dev@example.com", KPSA_ENTITY_NONE, NULL},
    {"12-nobody@m2m.example.com", KPSA_ENTITY_NONE, NULL},
    {"sensor-01@m2m.example.com", KPSA_ENTITY_NONE, NULL},
    {"13-sensor-01@m2m.example.com", KPSA_ENTITY_NONE, NULL},
    {"12-sensor-01@m2m.example.com ", KPSA_ENTITY_NONE, NULL},
    {"", KPSA_ENTITY_NONE, NULL},
};

static void check_lookup(const struct kpsa_map *map, const struct lookup_row *r)
{
    const char *entity_id = "unset";
    enum kpsa_entity entity =
        kpsa_map_lookup(map, r->credential_id, &entity_id);
    int good =
        entity == r->entity &&
        (r->entity_id == NULL
             ? entity_id == NULL
             : entity_id != NULL && strcmp(entity_id, r->entity_id) == 0);

    if (!tap_check(good, "\"%.40s%s\" -> %s", r->credential_id,
                   strlen(r->credential_id) > 40 ? "..." : "",
                   r->entity == KPSA_ENTITY_NONE ? "no entity"
                   : r->entity == KPSA_ENTITY_AE ? "AE"
                                                 : "CSE"))
        tap_diag("entity %d, entity_id %.60s", (int)entity,
                 entity_id != NULL ? entity_id : "(null)");
}

static void valid_file(void)
{
    char path[PATH_LEN], err[KPSA_ERRLEN];
    int written;
    struct kpsa_map *map = load_text(IN(valid_text), path, err, &written);

    if (!tap_check(map != NULL && err[0] == '\0',
                   "loads comments, blanks, tabs, CRLF and 1024-byte lines"))
        tap_diag("err \"%s\"", err);
    tap_check(kpsa_map_count(map) == 8, "counts 8 mappings, got %zu",
              kpsa_map_count(map));
    for (size_t i = 0; i < sizeof(lookup_rows) / sizeof(lookup_rows[0]); i++)
        check_lookup(map, &lookup_rows[i]);
    tap_check(kpsa_map_lookup(map, "12-Dev@example.com", NULL) ==
                  KPSA_ENTITY_CSE,
              "looks up without asking for the ENTITY-ID");
    tap_check(kpsa_map_lookup(map, NULL, NULL) == KPSA_ENTITY_NONE,
              "a NULL Credential-ID maps to no entity");
    kpsa_map_free(map);
}

struct empty_row {
    const char *what;
    const char *text;
    size_t len;
};

static const struct empty_row empty_rows[] = {
    {"an empty file", IN("")},
    {"a file of comments",
     IN("# nothing mapped yet\n#\n  # 12-a@x.example AE A\n")},
    {"a file of blank CRLF lines", IN("\r\n \t\r\n\r\n")},
    {"a lone CR", IN("\r")},
};

static void empty_files(void)
{
    char path[PATH_LEN], err[KPSA_ERRLEN];

    for (size_t i = 0; i < sizeof(empty_rows) / sizeof(empty_rows[0]); i++) {
        const struct empty_row *r = &empty_rows[i];
        const char *entity_id = "unset";
        int written;
        struct kpsa_map *map = load_text(r->text, r->len, path, err, &written);
        int good = map != NULL && kpsa_map_count(map) == 0 &&
                   kpsa_map_lookup(map, "12-a@x.example", &entity_id) ==
                       KPSA_ENTITY_NONE &&
                   entity_id == NULL;

        if (!tap_check(good, "loads %s with 0 mappings", r->what))
            tap_diag("err \"%s\"", err);
        kpsa_map_free(map);
    }
}

static void no_map(void)
{
    const char *entity_id = "unset";

    tap_check(kpsa_map_lookup(NULL, "12-a@x.example", &entity_id) ==
                      KPSA_ENTITY_NONE &&
                  entity_id == NULL,
              "no map maps nothing");
    tap_check(kpsa_map_count(NULL) == 0, "no map counts 0");
    kpsa_map_free(NULL);
    tap_check(1, "freeing no map is harmless");
}

/* ---- files that cannot be read ---- */

static void unreadable(void)
{
    char path[PATH_LEN], err[KPSA_ERRLEN], want[KPSA_ERRLEN + PATH_LEN];
    const char *dir = getenv("TMPDIR");
    struct kpsa_map *map;
    int written;

    /* load_text removes the file before returning */
    map = load_text(IN("12-a@x.example AE A\n"), path, err, &written);
    kpsa_map_free(map);
    map = kpsa_map_load(path, err);
    snprintf(want, sizeof(want), "%s: cannot read: %s", path, strerror(ENOENT));
    refused("a missing file", map, err, want);

    if (dir == NULL || dir[0] == '\0')
        dir = "/tmp";
    map = kpsa_map_load(dir, err);
    snprintf(want, sizeof(want), "%s: cannot read: %s", dir, strerror(EISDIR));
    refused("a directory", map, err, want);

    map = kpsa_map_load("/nonexistent/kpsa\nmap", err);
    snprintf(want, sizeof(want), "/nonexistent/kpsa\\x0amap: cannot read: %s",
             strerror(ENOENT));
    refused("a missing file, its path escaped", map, err, want);

    strcpy(err, "unset");
    map = kpsa_map_load(NULL, err);
    refused("no path", map, err, "no path given for the map");
}

/* ---- a map of an operator's size ---- */

#define BIG_LINES 20000
/* Coprime with BIG_LINES: the file is in no particular order. */
#define BIG_STEP 7919

static unsigned big_node(size_t line)
{
    return (unsigned)(((line - 1) * BIG_STEP) % BIG_LINES);
}

/* Lines 1..BIG_LINES, then the line from line `again` once more if > 0. */
static char *big_text(size_t again, size_t *len)
{
    size_t cap = (BIG_LINES + 1) * 80, n = 0;
    char *text = malloc(cap);

    if (text == NULL)
        return NULL;
    for (size_t line = 1; line <= BIG_LINES + (again > 0); line++) {
        unsigned node = big_node(line <= BIG_LINES ? line : again);

        n += (size_t)snprintf(text + n, cap - n,
                              "12-node-%05u@Fleet.Example.COM. %s %s%u\n", node,
                              node % 2 ? "CSE" : "AE",
                              node % 2 ? "/mn-cse-" : "Cnode", node);
    }
    *len = n;
    return text;
}

static void big_file(void)
{
    char path[PATH_LEN], err[KPSA_ERRLEN], want[KPSA_ERRLEN + PATH_LEN];
    char credential_id[64], entity_id_want[32];
    size_t len = 0, wrong = 0;
    struct kpsa_map *map;
    char *text = big_text(0, &len);
    int written;

    if (!tap_check(text != NULL, "builds a %d-line map", BIG_LINES))
        return;
    map = load_text(text, len, path, err, &written);
    free(text);
    if (!tap_check(map != NULL && kpsa_map_count(map) == BIG_LINES,
                   "loads %d lines", BIG_LINES))
        tap_diag("count %zu, err \"%s\"", kpsa_map_count(map), err);

    for (unsigned node = 0; node < BIG_LINES; node++) {
        const char *entity_id = NULL;
        enum kpsa_entity entity;

        snprintf(credential_id, sizeof(credential_id),
                 "12-node-%05u@fleet.example.com", node);
        snprintf(entity_id_want, sizeof(entity_id_want), "%s%u",
                 node % 2 ? "/mn-cse-" : "Cnode", node);
        entity = kpsa_map_lookup(map, credential_id, &entity_id);
        if (entity != (node % 2 ? KPSA_ENTITY_CSE : KPSA_ENTITY_AE) ||
            entity_id == NULL || strcmp(entity_id, entity_id_want) != 0)
            wrong++;
    }
    tap_check(wrong == 0, "finds all %d entries (%zu wrong)", BIG_LINES, wrong);
    tap_check(kpsa_map_lookup(map, "12-node-20000@fleet.example.com", NULL) ==
                  KPSA_ENTITY_NONE,
              "an unmapped Credential-ID among %d", BIG_LINES);
    kpsa_map_free(map);

    text = big_text(12345, &len);
    if (text == NULL)
        return;
    map = load_text(text, len, path, err, &written);
    free(text);
    snprintf(want, sizeof(want),
             "%s:%d: Credential-ID 12-node-%05u@fleet.example.com" MAPPED
             "12345",
             path, BIG_LINES + 1, big_node(12345));
    refused("a repeat at the end of a big map", map, err, want);
}

int main(void)
{
    bad_table();
    valid_file();
    empty_files();
    no_map();
    unreadable();
    big_file();
    return tap_finish();
}

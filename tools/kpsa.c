/*
 * kpsa: stores oneM2M TS-0003 provisioned symmetric keys (Kpsa) in a
 * PKCS#11 token under their KpsaId, and manages what is stored. No key
 * value ever comes back out of the token.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "assoc.h"
#include "batch.h"
#include "family.h"
#include "handle.h"
#include "keyinput.h"
#include "kpsaid.h"
#include "output.h"
#include "token.h"

enum exit_code {
    EXIT_OK = 0,
    EXIT_REFUSED = 1, /* a rule, a duplicate, bad key input */
    EXIT_USAGE = 2,
    EXIT_TOKEN = 3, /* the token or its PKCS#11 module failed */
};

enum opt_bit {
    O_IN = 1u << 0,
    O_FORMAT = 1u << 1,
    O_ALLOW_SHORT = 1u << 2,
    O_ALLOW_UNDERSCORE = 1u << 3,
    O_ALLOW_SHARED = 1u << 4,
    O_TLS13_SHA384 = 1u << 5,
    O_BYTES = 1u << 6,
    O_OUT = 1u << 7,
    O_JSON = 1u << 8,
    O_YES = 1u << 9,
    O_TEXT = 1u << 10,
    O_LISTEN = 1u << 11,
    O_DTLS = 1u << 12,
    O_MAP = 1u << 13,
    O_KPSA_ID = 1u << 14,
    O_ID_B = 1u << 15,
    O_SNI = 1u << 16,
    O_TLS13 = 1u << 17,
    O_BATCH = 1u << 18,
};

/* What a command takes besides its options. */
enum positional { ARG_NONE, ARG_KPSAID, ARG_ADDRESS };

#define O_STORE       (O_ALLOW_UNDERSCORE | O_ALLOW_SHARED | O_TLS13_SHA384)
#define MIN_KEY_BYTES 16
#define BATCH_MSG_MAX (KPSA_ERR_MAX + 4096) /* room for a key file's path */

/* Options that stand for the positional argument: import --batch reads the
 * KpsaIds from its input. */
#define O_INSTEAD_OF_ARG O_BATCH

struct opts {
    const char *module, *token, *pin_source;
    const char *in, *out, *format, *bytes, *batch;
    const char *listen, *map, *kpsa_id, *id_b, *sni;
    unsigned seen;
    const char *arg;             /* the KpsaId as typed, or the address */
    char kpsaid[KPSAID_MAX + 1]; /* canonical */
};

struct session {
    struct kpsa_token *tok;
    struct family_index *idx;
};

struct command {
    const char *name;
    const char *args;
    const char *help;
    int (*run)(struct opts *o);
    unsigned allowed;
    enum positional takes;
};

static int cmd_import(struct opts *o);
static int cmd_generate(struct opts *o);
static int cmd_list(struct opts *o);
static int cmd_show(struct opts *o);
static int cmd_check(struct opts *o);
static int cmd_delete(struct opts *o);
static int cmd_validate(struct opts *o);
static int cmd_handle(struct opts *o);
static int cmd_serve(struct opts *o);
static int cmd_connect(struct opts *o);

static const struct command commands[] = {
    {"import",
     "KPSAID [--in FILE|-] | --batch FILE|-\n"
     "        [--format hex|base64|raw] [--allow-short] [--allow-underscore]\n"
     "        [--allow-shared-key] [--tls13-sha384]",
     "store a key read from FILE or standard input; with --batch, one key\n"
     "      a line: KPSAID KEY-HEX or KPSAID @PATH (a key file in --format)",
     cmd_import, O_IN | O_FORMAT | O_ALLOW_SHORT | O_STORE | O_BATCH,
     ARG_KPSAID},
    {"generate",
     "KPSAID [--bytes N] [--out FILE] [--allow-short] [--allow-underscore]\n"
     "        [--allow-shared-key] [--tls13-sha384]",
     "store N random bytes from the token, written once to FILE", cmd_generate,
     O_BYTES | O_OUT | O_ALLOW_SHORT | O_STORE, ARG_KPSAID},
    {"list", "[--json]", "list the stored KpsaIds", cmd_list, O_JSON, ARG_NONE},
    {"show", "KPSAID", "describe one stored key, never its value", cmd_show, 0,
     ARG_KPSAID},
    {"check", "KPSAID", "print the key check value computed on the token",
     cmd_check, 0, ARG_KPSAID},
    {"handle", "KPSAID [--text]",
     "print the handle a TLS program is given instead of the key: hex, "
     "or\n      printable text with --text",
     cmd_handle, O_TEXT, ARG_KPSAID},
    {"delete", "KPSAID [--yes]", "remove a key and its whole family",
     cmd_delete, O_YES, ARG_KPSAID},
    {"validate", "KPSAID [--allow-underscore]",
     "apply the KpsaId rules; no token needed", cmd_validate,
     O_ALLOW_UNDERSCORE, ARG_KPSAID},
    {"serve", "--listen ADDR:PORT [--dtls|--tls1.3] [--map FILE]",
     "accept TS-0003 associations; print what each is bound to, echo "
     "its data",
     cmd_serve, O_LISTEN | O_DTLS | O_TLS13 | O_MAP, ARG_NONE},
    {"connect",
     "HOST:PORT --kpsa-id KPSAID --id-b IDB [--sni NAME]\n"
     "        [--dtls|--tls1.3]",
     "associate with IdB, send standard input, print the reply", cmd_connect,
     O_KPSA_ID | O_ID_B | O_SNI | O_DTLS | O_TLS13, ARG_ADDRESS},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: kpsa [--module PATH] [--token URI] "
               "[--pin-source file:PATH] COMMAND ...\n\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  kpsa %s %s\n      %s\n", commands[i].name,
                commands[i].args, commands[i].help);
    fprintf(f, "\nThe global options fall back to KPSA_MODULE, KPSA_TOKEN "
               "and KPSA_PIN_SOURCE.\nExit status: 0 done, 1 refused, "
               "2 usage, 3 token failure. See kpsa(1).\n");
}

static int fail_err(const char *subject, const struct kpsa_err *err)
{
    return fail(subject, err->kind == KPSA_ERR_USER ? EXIT_REFUSED : EXIT_TOKEN,
                err->msg);
}

static const char *env_or(const char *value, const char *name)
{
    return value != NULL ? value : getenv(name);
}

static int session_open(struct opts *o, struct session *s)
{
    struct token_config cfg = {
        .module = env_or(o->module, "KPSA_MODULE"),
        .uri = env_or(o->token, "KPSA_TOKEN"),
        .pin_source = env_or(o->pin_source, "KPSA_PIN_SOURCE"),
        .flags = TOKEN_PROMPT_PIN,
    };

    s->tok = token_new();
    s->idx = family_index_new();
    if (s->tok == NULL || s->idx == NULL)
        return fail(NULL, EXIT_TOKEN, "out of memory");
    if (token_open(s->tok, &cfg) != 0 ||
        family_index_build(s->idx, s->tok) != 0)
        return fail_err(o->arg ? o->kpsaid : NULL, token_err(s->tok));
    return EXIT_OK;
}

static void session_close(struct session *s)
{
    family_index_free(s->idx);
    token_free(s->tok);
}

static unsigned store_flags(const struct opts *o)
{
    return (o->seen & O_ALLOW_SHARED ? IMPORT_ALLOW_SHARED_KEY : 0) |
           (o->seen & O_TLS13_SHA384 ? IMPORT_TLS13_SHA384 : 0);
}

/* Import and generate enforce the '_' rule (TS-0003 10.6). */
static unsigned underscore_flag(const struct opts *o)
{
    return (o->seen & O_ALLOW_UNDERSCORE) ? KPSAID_ALLOW_UNDERSCORE : 0;
}

static int store_key(struct opts *o, const unsigned char *key, size_t len)
{
    struct session s = {0};
    int ret = session_open(o, &s);

    if (ret == EXIT_OK &&
        family_import(s.tok, s.idx, o->kpsaid, key, len, store_flags(o)) != 0)
        ret = fail_err(o->kpsaid, token_err(s.tok));
    session_close(&s);
    return ret;
}

/* The seed's NOTE 3 warns against low-entropy keys in TLS-PSK. */
static int key_too_short(const struct opts *o, size_t len, char *msg,
                         size_t cap)
{
    if (len >= MIN_KEY_BYTES || (o->seen & O_ALLOW_SHORT))
        return 0;
    snprintf(msg, cap,
             "key is %zu bytes; at least 16 unless --allow-short (TS-0003 "
             "10.6 NOTE 3)",
             len);
    return 1;
}

static int check_key_length(const struct opts *o, size_t len)
{
    char msg[128];

    if (!key_too_short(o, len, msg, sizeof(msg)))
        return EXIT_OK;
    return fail(o->kpsaid, EXIT_REFUSED, msg);
}

static int readable_by_others(int fd)
{
    struct stat st;

    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
           (st.st_mode & (S_IRWXG | S_IRWXO));
}

static void warn_if_readable(const char *path, int fd)
{
    if (readable_by_others(fd))
        fprintf(stderr, "kpsa: %s: warning: key file is readable by others\n",
                path);
}

/* Returns 0, or -1 with errno set. */
static int read_fd(int fd, unsigned char *buf, size_t cap, size_t *len)
{
    ssize_t n = 1;

    *len = 0;
    while (*len < cap && (n = read(fd, buf + *len, cap - *len)) > 0)
        *len += (size_t)n;
    return n < 0 ? -1 : 0;
}

static int read_all(const char *path, unsigned char *buf, size_t cap,
                    size_t *len)
{
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY);
    int ret = EXIT_OK;

    if (fd < 0)
        return fail(path, EXIT_REFUSED, strerror(errno));
    if (fd != STDIN_FILENO)
        warn_if_readable(path, fd);
    if (read_fd(fd, buf, cap, len) != 0)
        ret = fail(path, EXIT_REFUSED, strerror(errno));
    if (fd != STDIN_FILENO)
        close(fd);
    return ret;
}

static int key_format_of(const struct opts *o, enum key_format *fmt)
{
    *fmt = KEY_HEX;
    if (o->format != NULL && key_format_from_name(o->format, fmt) != 0)
        return fail(o->format, EXIT_USAGE, "format is hex, base64 or raw");
    return EXIT_OK;
}

/* "KPSAID @PATH": the key has a file of its own, read as --in reads. */
static int read_key_file(const struct opts *o, struct batch *b,
                         const struct batch_line *line, const char *path,
                         unsigned char raw[KEYINPUT_MAX + 1], size_t *len,
                         char msg[BATCH_MSG_MAX])
{
    int fd = open(path, O_RDONLY), ret = 0;

    if (fd < 0) {
        snprintf(msg, BATCH_MSG_MAX, "key file %s: %s", path, strerror(errno));
        return -1;
    }
    if (readable_by_others(fd)) {
        snprintf(msg, BATCH_MSG_MAX,
                 "warning: key file %s is readable by others", path);
        batch_say(b, line, o->kpsaid, msg);
    }
    if (read_fd(fd, raw, KEYINPUT_MAX + 1, len) != 0) {
        snprintf(msg, BATCH_MSG_MAX, "key file %s: %s", path, strerror(errno));
        ret = -1;
    }
    close(fd);
    return ret;
}

/* The key of a batch line: hex on the line, or a key file in --format. */
static int batch_key(const struct opts *o, struct batch *b,
                     const struct batch_line *line, enum key_format fmt,
                     unsigned char key[KPSA_KEY_MAX], size_t *len,
                     char msg[BATCH_MSG_MAX])
{
    unsigned char raw[KEYINPUT_MAX + 1];
    const char *path = line->key[0] == '@' ? line->key + 1 : NULL;
    char err[KEYINPUT_ERR_MAX];
    size_t raw_len = 0;
    int ret = -1;

    if (path == NULL) {
        ret = key_parse((const unsigned char *)line->key, strlen(line->key),
                        KEY_HEX, key, len, err);
        if (ret != 0)
            snprintf(msg, BATCH_MSG_MAX, "%s", err);
        return ret;
    }
    if (read_key_file(o, b, line, path, raw, &raw_len, msg) != 0)
        goto out;
    if (key_parse(raw, raw_len, fmt, key, len, err) != 0) {
        snprintf(msg, BATCH_MSG_MAX, "key file %s: %s", path, err);
        goto out;
    }
    ret = 0;
out:
    OPENSSL_cleanse(raw, sizeof(raw));
    return ret;
}

/* A refusal shows the KpsaId as typed until it passes the rules, but never
 * a first field without '@': that may be a key written first. */
static const char *shown_kpsaid(const char *field)
{
    return field != NULL && strchr(field, '@') != NULL ? field : NULL;
}

/* One batch line, under every rule of a single import. The index knows the
 * lines imported before it. EXIT_TOKEN stops the batch. */
static int import_line(struct opts *o, struct session *s, struct batch *b,
                       const struct batch_line *line, enum key_format fmt)
{
    unsigned char key[KPSA_KEY_MAX];
    const char *shown = shown_kpsaid(line->kpsaid);
    char msg[BATCH_MSG_MAX];
    size_t len = 0;
    int ret = EXIT_REFUSED;

    if (line->malformed != NULL) {
        snprintf(msg, sizeof(msg), "%s", line->malformed);
        goto out;
    }
    if (kpsaid_canonicalize(line->kpsaid, strlen(line->kpsaid),
                            underscore_flag(o), o->kpsaid, msg) != 0)
        goto out;
    shown = o->kpsaid;
    if (batch_key(o, b, line, fmt, key, &len, msg) != 0 ||
        key_too_short(o, len, msg, sizeof(msg)))
        goto out;
    if (family_import(s->tok, s->idx, o->kpsaid, key, len, store_flags(o)) !=
        0) {
        const struct kpsa_err *err = token_err(s->tok);

        snprintf(msg, sizeof(msg), "%s", err->msg);
        ret = err->kind == KPSA_ERR_USER ? EXIT_REFUSED : EXIT_TOKEN;
        goto out;
    }
    ret = EXIT_OK;
out:
    if (ret != EXIT_OK)
        batch_say(b, line, shown, msg);
    OPENSSL_cleanse(key, sizeof(key));
    return ret;
}

/* A refused line does not stop the batch; a token failure does, since the
 * lines after it would most likely fail the same way. */
static int import_lines(struct opts *o, struct session *s, struct batch *b,
                        enum key_format fmt)
{
    struct batch_line line;
    int ret = EXIT_OK;

    batch_start(b);
    while (batch_next(b, &line) == 0) {
        ret = import_line(o, s, b, &line, fmt);
        if (ret == EXIT_TOKEN) {
            batch_stopped(b, &line);
            break;
        }
        batch_count(b, ret == EXIT_OK);
    }
    batch_summary(b);
    if (ret == EXIT_TOKEN)
        return EXIT_TOKEN;
    return batch_refused(b) > 0 ? EXIT_REFUSED : EXIT_OK;
}

/* Read whole before the token is opened: an input that cannot be read
 * costs no login, and the progress bar knows its total. */
static int read_batch(const struct opts *o, struct batch **b)
{
    int std_in = strcmp(o->batch, "-") == 0;
    int fd = std_in ? STDIN_FILENO : open(o->batch, O_RDONLY);
    const char *name = std_in ? "standard input" : o->batch;
    char err[BATCH_ERR_MAX];

    if (fd < 0)
        return fail(name, EXIT_REFUSED, strerror(errno));
    if (!std_in)
        warn_if_readable(name, fd);
    *b = batch_read(fd, name, err);
    if (!std_in)
        close(fd);
    return *b != NULL ? EXIT_OK : fail(name, EXIT_REFUSED, err);
}

/* Many keys in one session: one login and one enumeration of the token. */
static int import_batch(struct opts *o)
{
    struct session s = {0};
    struct batch *b = NULL;
    enum key_format fmt = KEY_HEX;
    int ret;

    if (o->seen & O_IN)
        return fail("import", EXIT_USAGE,
                    "--batch and --in exclude each other; a batch line "
                    "names its key file");
    ret = key_format_of(o, &fmt);
    if (ret == EXIT_OK)
        ret = read_batch(o, &b);
    if (ret == EXIT_OK)
        ret = session_open(o, &s);
    if (ret == EXIT_OK)
        ret = import_lines(o, &s, b, fmt);
    session_close(&s);
    batch_free(b);
    return ret;
}

static int cmd_import(struct opts *o)
{
    unsigned char raw[KEYINPUT_MAX + 1], key[KPSA_KEY_MAX];
    const char *path = o->in ? o->in : "-";
    enum key_format fmt = KEY_HEX;
    char err[KEYINPUT_ERR_MAX];
    size_t raw_len = 0, len = 0;
    int ret;

    if (o->seen & O_BATCH)
        return import_batch(o);
    ret = key_format_of(o, &fmt);
    if (ret != EXIT_OK)
        goto out;
    ret = read_all(path, raw, sizeof(raw), &raw_len);
    if (ret != EXIT_OK)
        goto out;
    if (key_parse(raw, raw_len, fmt, key, &len, err) != 0) {
        ret = fail(strcmp(path, "-") ? path : "standard input", EXIT_REFUSED,
                   err);
        goto out;
    }
    ret = check_key_length(o, len);
    if (ret == EXIT_OK)
        ret = store_key(o, key, len);
out:
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(key, sizeof(key));
    return ret;
}

static int parse_bytes(const struct opts *o, size_t *n)
{
    char *end = NULL;
    long v = o->bytes ? strtol(o->bytes, &end, 10) : 32;

    if (o->bytes != NULL &&
        (end == o->bytes || *end != '\0' || v < 1 || v > KPSA_KEY_MAX))
        return fail(o->bytes, EXIT_USAGE, "--bytes takes 1 to 64");
    *n = (size_t)v;
    return check_key_length(o, *n);
}

static int write_hex(int fd, const unsigned char *key, size_t len)
{
    char hex[2 * KPSA_KEY_MAX + 1];
    int ret;

    schedule_hex(key, len, hex);
    hex[2 * len] = '\n';
    ret =
        write(fd, hex, 2 * len + 1) == (ssize_t)(2 * len + 1) && fsync(fd) == 0
            ? 0
            : -1;
    OPENSSL_cleanse(hex, sizeof(hex));
    return ret;
}

static int generate_into(struct opts *o, struct session *s, int fd, size_t len)
{
    unsigned char key[KPSA_KEY_MAX];
    int ret = EXIT_OK;

    if (token_random(s->tok, key, len) != 0 ||
        family_import(s->tok, s->idx, o->kpsaid, key, len, store_flags(o)) !=
            0) {
        ret = fail_err(o->kpsaid, token_err(s->tok));
        goto out;
    }
    if (fd >= 0 && write_hex(fd, key, len) != 0) {
        ret = fail(o->out, EXIT_REFUSED, strerror(errno));
        if (family_delete(s->tok, s->idx, o->kpsaid) != 0)
            fail_err(o->kpsaid, token_err(s->tok));
    }
out:
    OPENSSL_cleanse(key, sizeof(key));
    return ret;
}

/* The file is created before the token is touched, so a name that is
 * taken costs nothing, and is removed again if the key is not stored. */
static int cmd_generate(struct opts *o)
{
    struct session s = {0};
    size_t len = 0;
    int fd = -1, ret = parse_bytes(o, &len);

    if (ret != EXIT_OK)
        return ret;
    if (o->out != NULL) {
        fd = open(o->out, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd < 0)
            return fail(o->out, EXIT_REFUSED,
                        errno == EEXIST ? "exists; a key file is never "
                                          "overwritten"
                                        : strerror(errno));
    }
    ret = session_open(o, &s);
    if (ret == EXIT_OK)
        ret = generate_into(o, &s, fd, len);
    if (fd >= 0) {
        close(fd);
        if (ret != EXIT_OK)
            unlink(o->out);
    }
    if (ret == EXIT_OK && o->out == NULL)
        fprintf(stderr,
                "kpsa: %s: no --out: no copy of the key was kept "
                "for a peer\n",
                o->kpsaid);
    session_close(&s);
    return ret;
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void print_json(const struct family *fam, int first)
{
    char protocols[128];

    family_protocols(fam, protocols, sizeof(protocols));
    printf("%s\n  {\"kpsa-id\": ", first ? "" : ",");
    json_string(fam->kpsaid);
    printf(", \"key-length\": %zu, \"created\": ", fam->key_len);
    json_string(fam->created);
    printf(", \"check\": ");
    json_string(fam->check);
    printf(", \"protocols\": ");
    json_string(protocols);
    printf(", \"whole\": %s}", family_is_whole(fam) ? "true" : "false");
}

static void print_row(const struct family *fam)
{
    char protocols[128];

    family_protocols(fam, protocols, sizeof(protocols));
    print_safe(stdout, fam->kpsaid);
    printf("  %zu  %s  %s  %s%s\n", fam->key_len, fam->created, fam->check,
           protocols, family_is_whole(fam) ? "" : "  (incomplete)");
}

static int cmd_list(struct opts *o)
{
    struct session s = {0};
    int ret = session_open(o, &s), json = (o->seen & O_JSON) != 0;
    size_t n;

    if (ret != EXIT_OK)
        goto out;
    n = family_count(s.idx);
    if (json)
        printf("[");
    for (size_t i = 0; i < n; i++) {
        if (json)
            print_json(family_at(s.idx, i), i == 0);
        else
            print_row(family_at(s.idx, i));
    }
    if (json)
        printf("%s]\n", n ? "\n" : "");
out:
    session_close(&s);
    return ret;
}

static int find_family(struct opts *o, struct session *s,
                       const struct family **fam)
{
    int ret = session_open(o, s);

    if (ret != EXIT_OK)
        return ret;
    *fam = family_lookup(s->idx, o->kpsaid);
    if (*fam == NULL)
        return fail(o->kpsaid, EXIT_REFUSED, "not stored on this token");
    return EXIT_OK;
}

static int cmd_show(struct opts *o)
{
    struct session s = {0};
    const struct family *fam = NULL;
    int ret = find_family(o, &s, &fam);
    char protocols[128];

    if (ret == EXIT_OK) {
        family_protocols(fam, protocols, sizeof(protocols));
        printf("kpsa-id: ");
        print_safe(stdout, fam->kpsaid);
        printf("\nkey-length: %zu\ncreated: %s\n"
               "protocols: %s\ncheck: %s\nformat: %u\nwhole: %s\n",
               fam->key_len, fam->created, protocols, fam->check, fam->version,
               family_is_whole(fam) ? "yes" : "no");
    }
    session_close(&s);
    return ret;
}

static int cmd_check(struct opts *o)
{
    struct session s = {0};
    const struct family *fam = NULL;
    char hex[CHECK_HEX_LEN + 1];
    int ret = find_family(o, &s, &fam);

    if (ret == EXIT_OK && family_token_check(s.tok, fam, hex) != 0)
        ret = fail_err(o->kpsaid, token_err(s.tok));
    if (ret == EXIT_OK)
        printf("%s\n", hex);
    session_close(&s);
    return ret;
}

static int confirm(const char *kpsaid)
{
    char answer[8] = "";
    FILE *tty;

    if (!isatty(STDIN_FILENO) || (tty = fopen("/dev/tty", "r+")) == NULL)
        return 0;
    fprintf(tty, "Delete %s and its whole key family? [y/N] ", kpsaid);
    fflush(tty);
    if (fgets(answer, sizeof(answer), tty) == NULL)
        answer[0] = '\0';
    fclose(tty);
    return answer[0] == 'y' || answer[0] == 'Y';
}

static int cmd_delete(struct opts *o)
{
    struct session s = {0};
    int ret;

    if (!(o->seen & O_YES) && !confirm(o->kpsaid))
        return fail(o->kpsaid, EXIT_REFUSED,
                    "not deleted; confirm on a terminal or give --yes");
    ret = session_open(o, &s);
    if (ret != EXIT_OK)
        goto out;
    if (family_delete(s.tok, s.idx, o->kpsaid) != 0)
        ret = fail_err(o->kpsaid, token_err(s.tok));
out:
    session_close(&s);
    return ret;
}

/* The handle works as a hex PSK (openssl -psk, mosquitto) and, in its text
 * form, where a program takes the key as a string (stunnel, libcoap). */
static int cmd_handle(struct opts *o)
{
    struct session s = {0};
    const struct family *fam = NULL;
    char handle[HANDLE_LEN + 1], hex[2 * HANDLE_LEN + 1];
    int ret = find_family(o, &s, &fam);

    if (ret == EXIT_OK && !family_is_whole(fam))
        ret = fail(o->kpsaid, EXIT_REFUSED,
                   "key family is incomplete; delete and import it again");
    if (ret == EXIT_OK && handle_of(fam->kpsaid, handle) != 0)
        ret = fail(o->kpsaid, EXIT_TOKEN, "cannot compute the handle");
    if (ret == EXIT_OK) {
        schedule_hex((const unsigned char *)handle, HANDLE_LEN, hex);
        printf("%s\n", (o->seen & O_TEXT) ? handle : hex);
    }
    session_close(&s);
    return ret;
}

static int cmd_validate(struct opts *o)
{
    printf("%s\n", o->kpsaid);
    return EXIT_OK;
}

static void assoc_opts_of(const struct opts *o, struct assoc_opts *a)
{
    a->module = o->module;
    a->token = o->token;
    a->pin_source = o->pin_source;
    a->dtls = (o->seen & O_DTLS) != 0;
    a->tls13 = (o->seen & O_TLS13) != 0;
    a->map = o->map;
    a->kpsa_id = o->kpsa_id;
    a->id_b = o->id_b;
    a->sni = o->sni;
}

static int cmd_serve(struct opts *o)
{
    struct assoc_opts a = {0};

    if (o->listen == NULL)
        return fail("serve", EXIT_USAGE, "needs --listen ADDR:PORT");
    assoc_opts_of(o, &a);
    a.address = o->listen;
    return assoc_serve(&a);
}

static int cmd_connect(struct opts *o)
{
    struct assoc_opts a = {0};

    if (o->kpsa_id == NULL || o->id_b == NULL)
        return fail("connect", EXIT_USAGE, "needs --kpsa-id and --id-b");
    assoc_opts_of(o, &a);
    a.address = o->arg;
    return assoc_connect(&a);
}

static const struct option long_opts[] = {
    {"module", required_argument, NULL, 'm'},
    {"token", required_argument, NULL, 't'},
    {"pin-source", required_argument, NULL, 'p'},
    {"in", required_argument, NULL, 'i'},
    {"format", required_argument, NULL, 'f'},
    {"allow-short", no_argument, NULL, 'S'},
    {"allow-underscore", no_argument, NULL, 'U'},
    {"allow-shared-key", no_argument, NULL, 'K'},
    {"tls13-sha384", no_argument, NULL, '3'},
    {"bytes", required_argument, NULL, 'b'},
    {"out", required_argument, NULL, 'o'},
    {"json", no_argument, NULL, 'j'},
    {"yes", no_argument, NULL, 'y'},
    {"text", no_argument, NULL, 'x'},
    {"listen", required_argument, NULL, 'l'},
    {"dtls", no_argument, NULL, 'd'},
    {"map", required_argument, NULL, 'M'},
    {"kpsa-id", required_argument, NULL, 'k'},
    {"id-b", required_argument, NULL, 'B'},
    {"sni", required_argument, NULL, 'n'},
    {"tls1.3", no_argument, NULL, 'T'},
    {"batch", required_argument, NULL, 'A'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Returns the option's bit, 0 for a global option, -1 for help or error. */
static int take_option(int c, struct opts *o)
{
    switch (c) {
    case 'm':
        o->module = optarg;
        return 0;
    case 't':
        o->token = optarg;
        return 0;
    case 'p':
        o->pin_source = optarg;
        return 0;
    case 'i':
        o->in = optarg;
        return O_IN;
    case 'f':
        o->format = optarg;
        return O_FORMAT;
    case 'S':
        return O_ALLOW_SHORT;
    case 'U':
        return O_ALLOW_UNDERSCORE;
    case 'K':
        return O_ALLOW_SHARED;
    case '3':
        return O_TLS13_SHA384;
    case 'b':
        o->bytes = optarg;
        return O_BYTES;
    case 'o':
        o->out = optarg;
        return O_OUT;
    case 'j':
        return O_JSON;
    case 'y':
        return O_YES;
    case 'x':
        return O_TEXT;
    case 'l':
        o->listen = optarg;
        return O_LISTEN;
    case 'd':
        return O_DTLS;
    case 'M':
        o->map = optarg;
        return O_MAP;
    case 'k':
        o->kpsa_id = optarg;
        return O_KPSA_ID;
    case 'B':
        o->id_b = optarg;
        return O_ID_B;
    case 'n':
        o->sni = optarg;
        return O_SNI;
    case 'T':
        return O_TLS13;
    case 'A':
        o->batch = optarg;
        return O_BATCH;
    default:
        return -1;
    }
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; name != NULL && i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* Import and generate enforce the '_' rule; looking a name up does not, so
 * a key stored under V3.18's rules can always be shown and deleted. */
static int take_kpsaid(const struct command *cmd, struct opts *o)
{
    char err[KPSAID_ERR_MAX];
    unsigned flags = KPSAID_ALLOW_UNDERSCORE;

    if (cmd->allowed & O_ALLOW_UNDERSCORE)
        flags = underscore_flag(o);
    if (kpsaid_canonicalize(o->arg, strlen(o->arg), flags, o->kpsaid, err))
        return fail(o->arg, EXIT_REFUSED, err);
    return EXIT_OK;
}

/* Called once o->seen is known to hold only options cmd allows. */
static enum positional positional_of(const struct command *cmd,
                                     const struct opts *o)
{
    return (o->seen & O_INSTEAD_OF_ARG) ? ARG_NONE : cmd->takes;
}

static const char *arg_count_error(const struct command *cmd,
                                   enum positional takes)
{
    if (takes != cmd->takes)
        return "takes no KpsaId with --batch; its lines name them";
    return takes == ARG_KPSAID    ? "takes one KpsaId"
           : takes == ARG_ADDRESS ? "takes one HOST:PORT"
                                  : "takes no argument";
}

static int parse_args(int argc, char **argv, struct opts *o,
                      const struct command **cmd)
{
    enum positional takes;
    int c, bit, want;

    opterr = 0; /* errors are ours, in our format */
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            exit(EXIT_OK);
        }
        if ((bit = take_option(c, o)) < 0)
            return fail(argv[optind - 1], EXIT_USAGE,
                        "unknown option or missing value; see kpsa --help");
        o->seen |= (unsigned)bit;
    }
    *cmd = find_command(optind < argc ? argv[optind] : NULL);
    if (*cmd == NULL)
        return fail(optind < argc ? argv[optind] : NULL, EXIT_USAGE,
                    "unknown command; see kpsa --help");
    if (o->seen & ~(*cmd)->allowed)
        return fail((*cmd)->name, EXIT_USAGE,
                    "an option does not apply; see kpsa --help");
    takes = positional_of(*cmd, o);
    want = 1 + (takes != ARG_NONE);
    if (argc - optind != want)
        return fail((*cmd)->name, EXIT_USAGE, arg_count_error(*cmd, takes));
    o->arg = takes != ARG_NONE ? argv[optind + 1] : NULL;
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    struct opts o = {0};
    const struct command *cmd = NULL;
    int ret = parse_args(argc, argv, &o, &cmd);

    if (ret != EXIT_OK) {
        if (cmd == NULL)
            usage(stderr);
        return ret;
    }
    if (positional_of(cmd, &o) == ARG_KPSAID &&
        (ret = take_kpsaid(cmd, &o)) != EXIT_OK)
        return ret;
    return cmd->run(&o);
}

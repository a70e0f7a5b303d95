#include "batch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "output.h"

#define READ_CHUNK   (64u << 10)
#define BAR_CELLS    30
#define BAR_INTERVAL 0.1 /* seconds between redraws of the bar */

struct batch {
    char *text; /* the whole input, NUL-terminated */
    size_t len, cap;
    size_t pos;     /* where batch_next reads on */
    size_t line_no; /* lines before pos */
    size_t total, imported, refused;
    const char *name;
    int tty, bar_shown;
    struct timespec start;
    double drawn; /* seconds after start of the last redraw */
};

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* A line is blank, a comment (first non-blank is '#') or names a key. */
static int names_key(const char *p, const char *end)
{
    while (p < end && is_blank(*p))
        p++;
    return p < end && *p != '#';
}

static const char *line_end(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));

    return nl != NULL ? nl : end;
}

static size_t count_keys(const struct batch *b)
{
    const char *p = b->text, *end = b->text + b->len;
    size_t n = 0;

    while (p < end) {
        const char *e = line_end(p, end);

        n += (size_t)names_key(p, e);
        p = e + 1;
    }
    return n;
}

static size_t count_lines(const char *p, size_t len)
{
    const char *end = p + len;
    size_t n = 0;

    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        n++;
        p++;
    }
    return n;
}

/* The old buffer is wiped as it is replaced: it holds keys. */
static int grow(struct batch *b, char err[BATCH_ERR_MAX])
{
    size_t cap = b->cap ? 2 * b->cap : READ_CHUNK;
    char *text;

    if (b->cap > BATCH_BYTES_MAX) {
        snprintf(err, BATCH_ERR_MAX, "over %u MiB; split the batch",
                 BATCH_BYTES_MAX >> 20);
        return -1;
    }
    if (cap > BATCH_BYTES_MAX + 1)
        cap = BATCH_BYTES_MAX + 1; /* one more octet tells it is over */
    text = OPENSSL_clear_realloc(b->text, b->cap, cap + 1);
    if (text == NULL) {
        snprintf(err, BATCH_ERR_MAX, "out of memory");
        return -1;
    }
    b->text = text;
    b->cap = cap;
    return 0;
}

static int read_input(struct batch *b, int fd, char err[BATCH_ERR_MAX])
{
    size_t lines = 0;
    ssize_t n;

    for (;;) {
        if (b->len == b->cap && grow(b, err) != 0)
            return -1;
        n = read(fd, b->text + b->len, b->cap - b->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, BATCH_ERR_MAX, "%s", strerror(errno));
            return -1;
        }
        if (n == 0)
            break;
        lines += count_lines(b->text + b->len, (size_t)n);
        b->len += (size_t)n;
        if (lines > BATCH_LINES_MAX)
            break;
    }
    b->text[b->len] = '\0';
    if (b->len > 0 && b->text[b->len - 1] != '\n')
        lines++;
    if (lines > BATCH_LINES_MAX) {
        snprintf(err, BATCH_ERR_MAX, "over %d lines; split the batch",
                 BATCH_LINES_MAX);
        return -1;
    }
    return 0;
}

struct batch *batch_read(int fd, const char *name, char err[BATCH_ERR_MAX])
{
    struct batch *b = calloc(1, sizeof(*b));

    if (b == NULL) {
        snprintf(err, BATCH_ERR_MAX, "out of memory");
        return NULL;
    }
    b->name = name;
    if (read_input(b, fd, err) != 0) {
        batch_free(b);
        return NULL;
    }
    b->total = count_keys(b);
    return b;
}

void batch_free(struct batch *b)
{
    if (b == NULL)
        return;
    OPENSSL_clear_free(b->text, b->cap + 1);
    free(b);
}

size_t batch_total(const struct batch *b)
{
    return b->total;
}

static double elapsed(const struct batch *b)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - b->start.tv_sec) +
           (double)(now.tv_nsec - b->start.tv_nsec) / 1e9;
}

static void bar_clear(struct batch *b)
{
    if (b->bar_shown)
        fputs("\r\033[K", stderr);
    b->bar_shown = 0;
}

/* "[#######.....] 700/1000 keys, 95 keys/min", redrawn in place. */
static void bar_draw(struct batch *b, int force)
{
    size_t done = b->imported + b->refused;
    size_t full = b->total ? done * BAR_CELLS / b->total : BAR_CELLS;
    double t = elapsed(b);
    char cells[BAR_CELLS + 1];

    if (!b->tty || (!force && b->bar_shown && t - b->drawn < BAR_INTERVAL))
        return;
    memset(cells, '#', full);
    memset(cells + full, '.', BAR_CELLS - full);
    cells[BAR_CELLS] = '\0';
    fprintf(stderr, "\r[%s] %zu/%zu keys", cells, done, b->total);
    if (t >= 1.0)
        fprintf(stderr, ", %.0f keys/min", (double)done * 60.0 / t);
    fputs("\033[K", stderr);
    b->bar_shown = 1;
    b->drawn = t;
}

void batch_start(struct batch *b)
{
    clock_gettime(CLOCK_MONOTONIC, &b->start);
    b->tty = isatty(STDERR_FILENO);
    bar_draw(b, 1);
}

/* Fields are split in place: each ends where a NUL is written. */
static void split_fields(char *p, char *end, struct batch_line *line)
{
    size_t n = 0;

    if (memchr(p, '\0', (size_t)(end - p)) != NULL) {
        line->malformed = "holds a NUL octet";
        return;
    }
    while (n < 3) {
        while (p < end && is_blank(*p))
            p++;
        if (p == end)
            break;
        if (n == 0)
            line->kpsaid = p;
        else if (n == 1)
            line->key = p;
        n++;
        while (p < end && !is_blank(*p))
            p++;
        *p = '\0'; /* a blank, the newline, or the input's own NUL */
        if (p < end)
            p++;
    }
    if (n == 1)
        line->malformed = "one field, not two: a line is KPSAID KEY-HEX or "
                          "KPSAID @PATH";
    else if (n > 2)
        line->malformed = "more than two fields: a line is KPSAID KEY-HEX "
                          "or KPSAID @PATH";
}

int batch_next(struct batch *b, struct batch_line *line)
{
    char *end = b->text + b->len;

    while (b->pos < b->len) {
        char *p = b->text + b->pos;
        char *e = (char *)line_end(p, end);

        b->pos = (size_t)(e - b->text) + 1;
        b->line_no++;
        if (!names_key(p, e))
            continue;
        memset(line, 0, sizeof(*line));
        line->number = b->line_no;
        split_fields(p, e, line);
        return 0;
    }
    return -1;
}

void batch_say(struct batch *b, const struct batch_line *line,
               const char *kpsaid, const char *msg)
{
    bar_clear(b);
    fputs("kpsa: ", stderr);
    print_safe(stderr, b->name);
    if (line != NULL)
        fprintf(stderr, ":%zu", line->number);
    fputs(": ", stderr);
    if (kpsaid != NULL) {
        print_safe(stderr, kpsaid);
        fputs(": ", stderr);
    }
    print_safe(stderr, msg);
    fputc('\n', stderr);
}

void batch_count(struct batch *b, int imported)
{
    if (imported)
        b->imported++;
    else
        b->refused++;
    bar_draw(b, b->imported + b->refused == b->total);
}

size_t batch_refused(const struct batch *b)
{
    return b->refused;
}

void batch_stopped(struct batch *b, const struct batch_line *line)
{
    char msg[128];
    size_t after = b->total - b->imported - b->refused - 1;

    snprintf(msg, sizeof(msg),
             "batch stopped; this key and the %zu after it were not "
             "imported",
             after);
    batch_say(b, line, NULL, msg);
}

void batch_summary(struct batch *b)
{
    double t = elapsed(b);
    size_t done = b->imported + b->refused;

    if (b->tty) {
        bar_draw(b, 1);
        fputc('\n', stderr);
    }
    printf("imported %zu, refused %zu, in %.1f s (%.0f keys per minute)\n",
           b->imported, b->refused, t, t > 0 ? (double)done * 60.0 / t : 0.0);
}

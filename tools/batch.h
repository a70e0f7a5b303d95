/*
 * kpsa import --batch: the input, one key per line, held in memory so that
 * the number of keys is known before the first is stored; and what a run
 * writes: one line per refusal, a progress bar on a terminal, a summary.
 * The rules a key must pass are the caller's.
 */
#ifndef KPSA_TOOLS_BATCH_H
#define KPSA_TOOLS_BATCH_H

#include <stddef.h>

#define BATCH_LINES_MAX 1000000
#define BATCH_BYTES_MAX (256u << 20)
#define BATCH_ERR_MAX   96

/* A line that names a key: "KPSAID KEY-HEX" or "KPSAID @PATH". */
struct batch_line {
    size_t number;         /* 1 for the first line of the input */
    const char *kpsaid;    /* the first field, or NULL */
    const char *key;       /* the second field, or NULL */
    const char *malformed; /* why the line is not two fields, or NULL */
};

struct batch;

/* Reads all of fd; name is what messages call it. NULL with a reason in
 * err when the input cannot be read or is over the limits above. */
struct batch *batch_read(int fd, const char *name, char err[BATCH_ERR_MAX]);
/* Wipes the input, which holds keys, and frees it. */
void batch_free(struct batch *b);

/* Lines that name a key, counted before the first is handled. */
size_t batch_total(const struct batch *b);
/* Starts the clock, and the progress bar when standard error is a tty. */
void batch_start(struct batch *b);
/* The next line that names a key: 0, or -1 after the last one. */
int batch_next(struct batch *b, struct batch_line *line);

/* "kpsa: NAME:LINE: KPSAID: MSG" on standard error, every part escaped;
 * line and kpsaid may be NULL. */
void batch_say(struct batch *b, const struct batch_line *line,
               const char *kpsaid, const char *msg);
/* One more line handled, imported or refused; redraws the bar. */
void batch_count(struct batch *b, int imported);
size_t batch_refused(const struct batch *b);
/* A token failure at line: says which keys were not tried. */
void batch_stopped(struct batch *b, const struct batch_line *line);
/* Ends the bar; "imported N, refused M, in S s (K keys per minute)" on
 * standard output. */
void batch_summary(struct batch *b);

#endif

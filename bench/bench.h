/*
 * kpsa-bench: the benchmark of issue 6. Handshake rates with and without
 * kpsa, the cost of one token operation measured in the same run, the
 * index at scale, and the server under a flood of unknown identities.
 * Figures are printed and appended to a CSV file; nothing here is a test.
 * See docs/performance.md.
 */
#ifndef KPSA_BENCH_H
#define KPSA_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/provider.h>
#include <openssl/ssl.h>

#include "kpsaid.h"

#define BENCH_THREADS_MAX 8
#define BENCH_PSK_MAX     64
#define BENCH_ERRLEN      320

/* ---- options (kpsa-bench.c) ---- */

struct bench_opts {
    const char *token_label; /* names the configuration in every row */
    const char *csv;         /* NULL: print only */
    const char *provider;    /* path of kpsa.so, or a name */
    const char *kpsa_id;     /* the family every handshake uses */
    const char *key_file;    /* its key in hex, for the raw-key peers */
    const char *protos;      /* comma-separated names; NULL: all */
    const char *threads;     /* comma-separated counts; default "1,2" */
    const char *sides;       /* none,pass,server,both; NULL: all */
    double seconds, warmup;
    int reps;
    long scale;       /* > 0: the scale mode with this many key families */
    int flood;        /* the flood mode */
    int probe;        /* internal: the flood's index-read count, re-executed */
    int refresh;      /* flood: the store's refresh interval; < 0: default */
    long count;       /* > 0: that many units per line, untimed, for
                       * callgrind --toggle-collect=count_step */
    char started[32]; /* UTC time of the run, in every CSV row */
};

/* ---- timed runs (timed.c) ---- */

/* One unit of work on one thread: 1 when it completed, 0 when it failed
 * (failures are counted apart and do not stop the run). */
typedef int bench_step_fn(void *state);
/* Read just before and just after the measured interval. */
typedef uint64_t bench_counter_fn(void *arg);

struct bench_job {
    int threads;
    bench_step_fn *step[BENCH_THREADS_MAX];
    void *state[BENCH_THREADS_MAX];
    double warmup, seconds;
    bench_counter_fn *counter; /* may be NULL */
    void *counter_arg;
};

struct bench_result {
    uint64_t done[BENCH_THREADS_MAX], failed[BENCH_THREADS_MAX];
    double thread_cpu[BENCH_THREADS_MAX]; /* CPU seconds of each thread */
    uint64_t done_all, failed_all;
    uint64_t counted; /* the counter's increase over the interval */
    double elapsed;   /* seconds, CLOCK_MONOTONIC */
    double cpu;       /* CPU seconds the process used meanwhile */
    long vcsw, ivcsw; /* voluntary and involuntary context switches */
};

double bench_now(void);
void bench_sleep(double seconds);
/* Runs the job once: warm-up, then the measured interval. 0, or -1 when
 * threads could not be started. */
int bench_run(const struct bench_job *job, struct bench_result *out);
/* The repetition with the median rate of thread `rank` (-1: all). */
int bench_median(const struct bench_job *job, int reps, int rank,
                 struct bench_result *out);
double bench_rate(const struct bench_result *r, int rank);
/* Sorts n results by that rate and copies the median one. */
void bench_pick_median(struct bench_result *all, int n, int rank,
                       struct bench_result *out);
#define BENCH_REPS_MAX 15
/* Sorts v[0..n) in place, ascending, and returns its median (v[n / 2]). */
double bench_median_of(double *v, int n);

/* ---- library contexts (handshake.c) ---- */

/* A library context with the default provider only, or with kpsa loaded
 * and preferred ("?provider=kpsa"). */
struct bench_lib {
    OSSL_LIB_CTX *ctx;
    OSSL_PROVIDER *fallback, *kpsa;
};

int bench_lib_plain(struct bench_lib *lib, char err[BENCH_ERRLEN]);
int bench_lib_kpsa(struct bench_lib *lib, const char *provider,
                   char err[BENCH_ERRLEN]);
void bench_lib_free(struct bench_lib *lib);
/* The provider's kpsa-token-ops parameter: HMACs and key digests. */
uint64_t bench_token_ops(void *kpsa_provider);

/* ---- handshakes (handshake.c) ---- */

enum bench_proto {
    PROTO_TLS12_CBC,
    PROTO_TLS12_CCM8,
    PROTO_DTLS12_CCM8,
    PROTO_TLS13,
    PROTO_COUNT
};

struct proto_def {
    const char *name;  /* in rows and on the command line */
    const char *title; /* for people */
    int dtls, tls13;
    const char *ciphers; /* TLS 1.2 cipher list or TLS 1.3 suites */
};

extern const struct proto_def bench_protos[PROTO_COUNT];

/* What a PSK callback hands OpenSSL: the raw key or the handle. */
struct bench_psk {
    char identity[KPSAID_MAX + 1];
    unsigned char bytes[BENCH_PSK_MAX];
    size_t len;
};

/* A context of our own whose PSK callbacks (TLS 1.2) or external-PSK
 * session callbacks (TLS 1.3) give psk, which must outlive it. */
SSL_CTX *hs_ctx_new(OSSL_LIB_CTX *libctx, enum bench_proto proto, int server,
                    const struct bench_psk *psk);

/* A client and a server context and what carries their records: a BIO
 * pair for TLS, two connected non-blocking UDP sockets for DTLS. */
struct hs_pair {
    enum bench_proto proto;
    SSL_CTX *cctx, *sctx; /* owned */
    int fd[2];            /* DTLS: client, server */
    int sockets;          /* how many of fd are open */
    BIO_ADDR *peer[2];    /* DTLS: each socket's peer */
    int random_identity;  /* the client sends a made-up KpsaId */
    uint64_t rng;
    char identity[KPSAID_MAX + 1];
    double longest; /* seconds: the slowest successful handshake */
};

/* Takes both contexts (freed by hs_pair_clear, also on failure). */
int hs_pair_init(struct hs_pair *pair, enum bench_proto proto, SSL_CTX *cctx,
                 SSL_CTX *sctx);
void hs_pair_clear(struct hs_pair *pair);
/* One whole handshake, both ends: 1 when both finished. Updates
 * pair->longest, which the caller may reset to 0. */
int hs_once(struct hs_pair *pair);
bench_step_fn hs_step;

/* ---- token costs (cost.c) ---- */

/* HMAC-SHA-256 through the token layer on a family member (a token
 * object), as the provider calls it: a session per thread. */
struct cost_ctx;

struct cost_ctx *cost_open(const char *kpsaid, char err[BENCH_ERRLEN]);
void cost_close(struct cost_ctx *c);
/* Per operation: wall microseconds per thread, and CPU microseconds. */
struct op_cost {
    double wall_us, cpu_us;
};

/* The median of reps runs of half --seconds each on 1 or 2 threads; 0,
 * or -1 when an HMAC failed. */
int cost_layer(struct cost_ctx *c, const struct bench_opts *o, int threads,
               int reps, struct op_cost *out);
/* One HMAC in thread's own session: 1 done, 0 failed. */
int cost_hmac(struct cost_ctx *c, int thread);

/* In sessions of our own: C_SignInit + C_Sign on the same token object,
 * and on a session key from C_GenerateKey (CKA_TOKEN false), which shows
 * what a token that allowed C_CopyObject would give. */
struct token_costs {
    struct op_cost token_obj[2], session_obj[2]; /* 1 and 2 threads */
    int have_raw;
    char copy_rv[48]; /* what C_CopyObject answers for the member */
};

void cost_raw(const struct bench_opts *o, const char *kpsaid,
              struct token_costs *out);

/* ---- output (kpsa-bench.c) ---- */

/* One CSV row; NULL or NAN fields stay empty. */
struct csv_row {
    const char *kind, *test, *protocol, *kpsa;
    int threads;
    double hs_per_s, us_per_hs, ratio, ops_per_hs;
    /* wall: cost of one operation alone and within handshakes, extra
     * time over the baseline, and the bound with either cost */
    double op_us, op_hs_us, extra_us, bound_us, bound_hs_us;
    const char *within, *within_hs;
    double cpu_us_per_hs, cpu_op_us, cpu_op_hs_us, cpu_extra_us;
    double cpu_bound_us, cpu_bound_hs_us;
    const char *cpu_within, *cpu_within_hs;
    double cores, vcsw_per_hs;
    double value;
    const char *unit;
};

void csv_row_init(struct csv_row *row, const char *kind, const char *test);
void csv_write(const struct bench_opts *o, const struct csv_row *row);
/* A metric row with a value and a unit, printed as well. */
void bench_metric(const struct bench_opts *o, const char *kind,
                  const char *test, double value, const char *unit);

/* The raw key and the handle of --kpsa-id. */
int bench_keys(const struct bench_opts *o, struct bench_psk *raw,
               struct bench_psk *handle, char err[BENCH_ERRLEN]);

/* ---- modes ---- */

int count_step(bench_step_fn *step, void *state);

int scale_run(const struct bench_opts *o);
int flood_run(const struct bench_opts *o);
int flood_probe(const struct bench_opts *o);

#endif

/*
 * The flood mode: a libkpsa server (kpsa_ssl_ctx_new, kpsa_server_setup)
 * runs known-identity handshakes on one thread while a second thread
 * sends it handshakes with made-up KpsaIds. Reported: the known rate
 * alone, under the flood, and beside a second thread of raw-key handshakes
 * in another library context (what sharing the CPU costs) and in kpsa's
 * (what sharing OpenSSL's locks costs too); the flood's attempts; and
 * how often the token was searched, counted in a copy of this program run
 * with KPSA_DEBUG=1 (the call log of every token call).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bench.h"
#include "kpsa.h"

struct flood {
    const struct bench_opts *o;
    struct bench_psk raw, handle;
    struct bench_lib plain, kpsa;
    struct kpsa_store *store;
    struct kpsa_server *srv;
    struct hs_pair known, unknown, plain_pair, pass_pair;
};

/* A server context as a libkpsa program makes one. */
static SSL_CTX *server_ctx(struct flood *f, char err[BENCH_ERRLEN])
{
    SSL_CTX *ctx =
        kpsa_ssl_ctx_new(f->kpsa.ctx, NULL, TLS_server_method(), err);

    if (ctx != NULL &&
        kpsa_server_setup(ctx, f->srv, "PSK-AES128-CBC-SHA256", err) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int flood_open(struct flood *f, char err[BENCH_ERRLEN])
{
    struct kpsa_store_config cfg = {NULL, NULL, NULL};
    const enum bench_proto p = PROTO_TLS12_CBC;

    if (bench_keys(f->o, &f->raw, &f->handle, err) != 0 ||
        bench_lib_plain(&f->plain, err) != 0 ||
        bench_lib_kpsa(&f->kpsa, f->o->provider, err) != 0 ||
        (f->store = kpsa_store_open(&cfg, err)) == NULL)
        return -1;
    if (f->o->refresh >= 0)
        kpsa_store_set_refresh(f->store, (unsigned)f->o->refresh);
    if ((f->srv = kpsa_server_new(f->store, NULL)) == NULL) {
        snprintf(err, BENCH_ERRLEN, "out of memory");
        return -1;
    }
    if (hs_pair_init(&f->known, p, hs_ctx_new(f->plain.ctx, p, 0, &f->raw),
                     server_ctx(f, err)) != 0 ||
        hs_pair_init(&f->unknown, p, hs_ctx_new(f->plain.ctx, p, 0, &f->raw),
                     server_ctx(f, err)) != 0 ||
        hs_pair_init(&f->plain_pair, p, hs_ctx_new(f->plain.ctx, p, 0, &f->raw),
                     hs_ctx_new(f->plain.ctx, p, 1, &f->raw)) != 0 ||
        hs_pair_init(&f->pass_pair, p, hs_ctx_new(f->plain.ctx, p, 0, &f->raw),
                     hs_ctx_new(f->kpsa.ctx, p, 1, &f->raw)) != 0) {
        if (err[0] == '\0')
            snprintf(err, BENCH_ERRLEN, "cannot make the contexts");
        return -1;
    }
    f->unknown.random_identity = 1;
    if (!hs_once(&f->known)) {
        snprintf(err, BENCH_ERRLEN, "%s: the known identity does not connect",
                 f->raw.identity);
        return -1;
    }
    return 0;
}

static void flood_close(struct flood *f)
{
    hs_pair_clear(&f->known);
    hs_pair_clear(&f->unknown);
    hs_pair_clear(&f->plain_pair);
    hs_pair_clear(&f->pass_pair);
    kpsa_server_free(f->srv);
    kpsa_store_free(f->store);
    bench_lib_free(&f->kpsa);
    bench_lib_free(&f->plain);
    OPENSSL_cleanse(&f->raw, sizeof(f->raw));
}

static void flood_job(struct flood *f, struct bench_job *job,
                      struct hs_pair *second)
{
    memset(job, 0, sizeof(*job));
    job->threads = second != NULL ? 2 : 1;
    job->step[0] = hs_step;
    job->state[0] = &f->known;
    job->step[1] = hs_step;
    job->state[1] = second;
    job->warmup = f->o->warmup;
    job->seconds = f->o->seconds;
}

/* Long enough for the store's refresh interval to pass several times. */
static double probe_seconds(const struct bench_opts *o)
{
    return o->seconds * 2 > 6 ? o->seconds * 2 : 6;
}

/* ---- the index reads, counted from the call log of a second run ---- */

static uint64_t mark(void *arg)
{
    (void)arg;
    fprintf(stderr, "kpsa-bench: mark\n");
    return 0;
}

/* Run with KPSA_DEBUG=1: one flood interval between two marks. */
int flood_probe(const struct bench_opts *o)
{
    struct flood f = {.o = o};
    struct bench_job job;
    struct bench_result r;
    char err[BENCH_ERRLEN] = "";
    int ret = 1;

    if (flood_open(&f, err) != 0) {
        fprintf(stderr, "kpsa-bench: %s\n", err);
        goto out;
    }
    flood_job(&f, &job, &f.unknown);
    job.seconds = o->seconds;
    job.counter = mark;
    if (bench_run(&job, &r) != 0)
        goto out;
    fprintf(stderr, "kpsa-bench: probe %llu %.6f\n",
            (unsigned long long)(r.done[1] + r.failed[1]), r.elapsed);
    ret = 0;
out:
    flood_close(&f);
    return ret;
}

struct probe_count {
    unsigned long finds, attempts;
    double seconds;
};

static void count_line(const char *line, int *marks, struct probe_count *c)
{
    unsigned long long attempts;
    double secs;

    if (strcmp(line, "kpsa-bench: mark\n") == 0)
        ++*marks;
    else if (*marks == 1 && strstr(line, "C_FindObjectsInit") != NULL)
        c->finds++;
    else if (sscanf(line, "kpsa-bench: probe %llu %lf", &attempts, &secs) ==
             2) {
        c->attempts = (unsigned long)attempts;
        c->seconds = secs;
    }
}

static void probe_exec(const struct bench_opts *o, int fd)
{
    char secs[32], refresh[16];
    char *argv[16];
    int n = 0;

    snprintf(secs, sizeof(secs), "%g", probe_seconds(o));
    snprintf(refresh, sizeof(refresh), "%d", o->refresh);
    argv[n++] = "kpsa-bench";
    argv[n++] = "--flood-probe";
    argv[n++] = "--kpsa-id";
    argv[n++] = (char *)o->kpsa_id;
    argv[n++] = "--key-file";
    argv[n++] = (char *)o->key_file;
    argv[n++] = "--provider";
    argv[n++] = (char *)o->provider;
    argv[n++] = "--seconds";
    argv[n++] = secs;
    argv[n++] = "--refresh";
    argv[n++] = refresh;
    argv[n] = NULL;
    dup2(fd, STDERR_FILENO);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    setenv("KPSA_DEBUG", "1", 1);
    execv("/proc/self/exe", argv);
    _exit(127);
}

static int probe_count(const struct bench_opts *o, struct probe_count *c)
{
    char line[512];
    int fds[2], marks = 0, status = 0;
    FILE *in;
    pid_t pid;

    memset(c, 0, sizeof(*c));
    fflush(NULL);
    if (pipe(fds) != 0 || (pid = fork()) < 0)
        return -1;
    if (pid == 0) {
        close(fds[0]);
        probe_exec(o, fds[1]);
    }
    close(fds[1]);
    in = fdopen(fds[0], "r");
    while (in != NULL && fgets(line, sizeof(line), in) != NULL)
        count_line(line, &marks, c);
    if (in != NULL)
        fclose(in);
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 && marks == 2 ? 0 : -1;
}

/* ---- the mode ---- */

static void report_reads(struct flood *f)
{
    struct probe_count c;

    if (probe_count(f->o, &c) != 0 || c.seconds <= 0) {
        fprintf(stderr, "kpsa-bench: the KPSA_DEBUG run failed\n");
        return;
    }
    /* A reread that finds nothing new is one search (the manifests); a
     * whole read, or one that finds a new family, is two. */
    printf("Token searches during a %.1f s flood (KPSA_DEBUG=1 run):\n",
           c.seconds);
    bench_metric(f->o, "flood", "unknown attempts (logged run)",
                 (double)c.attempts, "attempts");
    bench_metric(f->o, "flood", "token searches (logged run)", (double)c.finds,
                 "searches");
    bench_metric(f->o, "flood", "token searches per second",
                 (double)c.finds / c.seconds, "searches/s");
}

/* The known rate beside each second thread, alone first. */
enum { C_ALONE, C_FLOOD, C_PLAIN, C_PASS, N_COND };

static void *second_of(struct flood *f, int cond)
{
    void *state[N_COND] = {NULL, &f->unknown, &f->plain_pair, &f->pass_pair};

    return state[cond];
}

/*
 * The four measurements run in rounds, one of each per round, so that a
 * drifting machine load shifts them alike. A drop is computed within a
 * round, against that round's rate alone; the median over the rounds is
 * reported, and the spread (highest minus lowest). The slowest handshake
 * is the slowest of all rounds; the other figures are the last round's.
 */
static int flood_rounds(struct flood *f, struct bench_result res[N_COND],
                        double longest[N_COND], double drop[N_COND][2])
{
    int rounds = f->o->reps < 1 ? 1 : f->o->reps > 15 ? 15 : f->o->reps;
    double d[N_COND][15];
    struct bench_job job;

    for (int i = 0; i < rounds; i++) {
        for (int c = 0; c < N_COND; c++) {
            flood_job(f, &job, second_of(f, c));
            f->known.longest = 0;
            if (bench_run(&job, &res[c]) != 0)
                return -1;
            if (f->known.longest > longest[c])
                longest[c] = f->known.longest;
            d[c][i] =
                100 * (1 - bench_rate(&res[c], 0) / bench_rate(&res[0], 0));
        }
    }
    for (int c = 1; c < N_COND; c++) {
        drop[c][0] = bench_median_of(d[c], rounds); /* sorts d[c] */
        drop[c][1] = d[c][rounds - 1] - d[c][0];
    }
    return 0;
}

static int flood_steps(struct flood *f)
{
    struct bench_result res[N_COND];
    struct bench_result *alone = &res[C_ALONE], *flooded = &res[C_FLOOD];
    struct bench_result *plain = &res[C_PLAIN], *pass = &res[C_PASS];
    double a, b, longest[N_COND] = {0}, drop[N_COND][2] = {{0}};
    struct bench_result *all[4] = {alone, flooded, plain, pass};
    static const char *const what[4] = {"alone", "under the flood",
                                        "beside raw-key, own context",
                                        "beside raw-key, kpsa's context"};

    if (flood_rounds(f, res, longest, drop) != 0)
        return -1;
    a = bench_rate(alone, 0);
    b = bench_rate(flooded, 0);
    printf("kpsa-bench %s: flood, token %s, TLS 1.2 PSK-AES128-CBC-SHA256, "
           "libkpsa server, store refresh %s s\n",
           f->o->started, f->o->token_label,
           f->o->refresh >= 0 ? "as given" : "2 (default)");
    bench_metric(f->o, "flood", "known identities alone", a, "hs/s");
    bench_metric(f->o, "flood", "known identities under the flood", b, "hs/s");
    bench_metric(f->o, "flood", "drop under the flood", drop[C_FLOOD][0], "%");
    bench_metric(f->o, "flood", "drop under the flood, spread of the rounds",
                 drop[C_FLOOD][1], "points");
    bench_metric(f->o, "flood", "unknown-identity attempts",
                 (double)(flooded->done[1] + flooded->failed[1]) /
                     flooded->elapsed,
                 "attempts/s");
    bench_metric(f->o, "flood", "unknown identities that connected",
                 (double)flooded->done[1], "handshakes");
    bench_metric(f->o, "flood", "drop beside raw-key handshakes, own context",
                 drop[C_PLAIN][0], "%");
    bench_metric(f->o, "flood", "... spread of the rounds", drop[C_PLAIN][1],
                 "points");
    bench_metric(f->o, "flood",
                 "drop beside raw-key handshakes, kpsa's context",
                 drop[C_PASS][0], "%");
    bench_metric(f->o, "flood", "... spread of the rounds", drop[C_PASS][1],
                 "points");
    bench_metric(f->o, "flood", "second thread's rate beside: flood",
                 (double)(flooded->done[1] + flooded->failed[1]) /
                     flooded->elapsed,
                 "per s");
    bench_metric(f->o, "flood", "second thread's rate beside: own context",
                 bench_rate(plain, 1), "per s");
    bench_metric(f->o, "flood", "second thread's rate beside: kpsa's context",
                 bench_rate(pass, 1), "per s");
    /* The rate drops when two threads share one core; whether the flood
     * makes a known handshake cost more shows in its thread's CPU. */
    for (int i = 0; i < 4; i++) {
        char name[96];

        snprintf(name, sizeof(name), "known thread CPU per handshake, %s",
                 what[i]);
        bench_metric(f->o, "flood", name,
                     all[i]->done[0]
                         ? all[i]->thread_cpu[0] * 1e6 / (double)all[i]->done[0]
                         : NAN,
                     "us");
    }
    if (alone->done[0] > 0 && flooded->done[0] > 0 &&
        flooded->thread_cpu[0] > 0)
        bench_metric(
            f->o, "flood", "drop in known handshakes per CPU second, flood",
            100 * (1 - (alone->thread_cpu[0] / (double)alone->done[0]) /
                           (flooded->thread_cpu[0] / (double)flooded->done[0])),
            "%");
    bench_metric(f->o, "flood", "slowest known handshake, alone",
                 longest[0] * 1e3, "ms");
    bench_metric(f->o, "flood", "slowest known handshake, under the flood",
                 longest[1] * 1e3, "ms");
    bench_metric(f->o, "flood", "slowest known handshake, beside raw-key ones",
                 (longest[2] > longest[3] ? longest[2] : longest[3]) * 1e3,
                 "ms");
    return 0;
}

int flood_run(const struct bench_opts *o)
{
    struct flood f = {.o = o};
    char err[BENCH_ERRLEN] = "";
    int ret = 1;

    if (flood_open(&f, err) != 0) {
        fprintf(stderr, "kpsa-bench: %s\n", err);
        goto out;
    }
    if (flood_steps(&f) == 0)
        ret = 0;
out:
    flood_close(&f);
    if (ret == 0)
        report_reads(&f);
    return ret;
}

/*
 * Timed runs: every thread warms up, all wait at a barrier, the counter
 * and the clock are read, and the threads run until told to stop. Nothing
 * is in flight when either reading is taken, so the counter's increase
 * belongs to the units counted.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <openssl/crypto.h>

#include "bench.h"

double bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_sleep(double seconds)
{
    double until = bench_now() + seconds;
    struct timespec ts;

    ts.tv_sec = (time_t)until;
    ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

struct runner {
    const struct bench_job *job;
    pthread_barrier_t warmed, go;
    atomic_int stop;
    double warm_until;
    struct bench_result *out;
};

struct worker {
    struct runner *run;
    int rank;
};

static double thread_cpu(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct runner *run = w->run;
    bench_step_fn *step = run->job->step[w->rank];
    void *state = run->job->state[w->rank];
    uint64_t done = 0, failed = 0;
    double cpu0;

    while (bench_now() < run->warm_until)
        step(state);
    pthread_barrier_wait(&run->warmed);
    pthread_barrier_wait(&run->go);
    cpu0 = thread_cpu();
    while (!atomic_load_explicit(&run->stop, memory_order_relaxed)) {
        if (step(state))
            done++;
        else
            failed++;
    }
    run->out->thread_cpu[w->rank] = thread_cpu() - cpu0;
    run->out->done[w->rank] = done;
    run->out->failed[w->rank] = failed;
    OPENSSL_thread_stop();
    return NULL;
}

/* CPU seconds and context switches of the whole process: the workers,
 * while main sleeps. A thread that waits for a lock switches voluntarily;
 * one the machine has no core for is switched out involuntarily. */
struct usage {
    double cpu;
    long vcsw, ivcsw;
};

static struct usage usage_now(void)
{
    struct rusage ru;
    struct usage u;

    getrusage(RUSAGE_SELF, &ru);
    u.cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
            (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    u.vcsw = ru.ru_nvcsw;
    u.ivcsw = ru.ru_nivcsw;
    return u;
}

static uint64_t read_counter(const struct bench_job *job)
{
    return job->counter != NULL ? job->counter(job->counter_arg) : 0;
}

static void add_up(struct bench_result *out, int threads)
{
    out->done_all = out->failed_all = 0;
    for (int i = 0; i < threads; i++) {
        out->done_all += out->done[i];
        out->failed_all += out->failed[i];
    }
}

int bench_run(const struct bench_job *job, struct bench_result *out)
{
    struct runner run = {.job = job, .out = out};
    struct worker w[BENCH_THREADS_MAX];
    pthread_t t[BENCH_THREADS_MAX];
    int started = 0, n = job->threads;
    struct usage u0, u1;
    uint64_t c0;
    double t0;

    if (n < 1 || n > BENCH_THREADS_MAX)
        return -1;
    memset(out, 0, sizeof(*out));
    atomic_init(&run.stop, 0);
    pthread_barrier_init(&run.warmed, NULL, (unsigned)n + 1);
    pthread_barrier_init(&run.go, NULL, (unsigned)n + 1);
    run.warm_until = bench_now() + job->warmup;
    for (; started < n; started++) {
        w[started].run = &run;
        w[started].rank = started;
        if (pthread_create(&t[started], NULL, worker_main, &w[started]) != 0)
            abort(); /* the barriers wait for n: no way back */
    }
    pthread_barrier_wait(&run.warmed);
    c0 = read_counter(job);
    u0 = usage_now();
    t0 = bench_now();
    pthread_barrier_wait(&run.go);
    bench_sleep(job->seconds);
    atomic_store(&run.stop, 1);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    out->elapsed = bench_now() - t0;
    u1 = usage_now();
    out->cpu = u1.cpu - u0.cpu;
    out->vcsw = u1.vcsw - u0.vcsw;
    out->ivcsw = u1.ivcsw - u0.ivcsw;
    out->counted = read_counter(job) - c0;
    add_up(out, n);
    pthread_barrier_destroy(&run.warmed);
    pthread_barrier_destroy(&run.go);
    return 0;
}

double bench_rate(const struct bench_result *r, int rank)
{
    uint64_t n = rank < 0 ? r->done_all : r->done[rank];

    return r->elapsed > 0 ? (double)n / r->elapsed : 0;
}

void bench_pick_median(struct bench_result *all, int n, int rank,
                       struct bench_result *out)
{
    /* Insertion sort by rate: n is small. */
    for (int i = 1; i < n; i++) {
        struct bench_result key = all[i];
        int j = i - 1;

        for (; j >= 0 && bench_rate(&all[j], rank) > bench_rate(&key, rank);
             j--)
            all[j + 1] = all[j];
        all[j + 1] = key;
    }
    *out = all[n / 2];
}

int bench_median(const struct bench_job *job, int reps, int rank,
                 struct bench_result *out)
{
    struct bench_result *all = calloc((size_t)reps, sizeof(*all));
    int ret = -1;

    if (all == NULL || reps < 1)
        goto out;
    for (int i = 0; i < reps; i++)
        if (bench_run(job, &all[i]) != 0)
            goto out;
    bench_pick_median(all, reps, rank, out);
    ret = 0;
out:
    free(all);
    return ret;
}

double bench_median_of(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];

            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v[n / 2];
}

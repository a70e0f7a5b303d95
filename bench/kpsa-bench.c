/*
 * kpsa-bench: handshakes per second with and without kpsa, and what the
 * token's own work explains of the difference (issue 6). The token is the
 * one KPSA_MODULE, KPSA_TOKEN and KPSA_PIN_SOURCE name, as for the
 * provider; --token-label names the configuration in the output. See
 * docs/performance.md for the method and scripts/bench for a whole run.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "bench.h"
#include "handle.h"
#include "kpsaid.h"

/* Issue 6: what kpsa adds to a handshake may exceed the token's own work
 * by 10% at most. */
#define BOUND_FACTOR 1.1

enum side {
    SIDE_NONE,   /* baseline: raw key, default provider, both ends */
    SIDE_TOKEN,  /* the baseline plus as many token HMACs per handshake as
                  * kpsa on the server makes, through the token layer:
                  * what one costs amid handshakes */
    SIDE_PASS,   /* the server in kpsa's context with the raw key: what
                  * passing through kpsa costs without the token */
    SIDE_SERVER, /* the server holds the handle, the client the key */
    SIDE_BOTH,   /* both ends hold the handle */
    SIDE_COUNT
};

static const char *const side_names[SIDE_COUNT] = {"none", "token", "pass",
                                                   "server", "both"};

/* ---- options: one table drives parsing and the usage text ---- */

enum opt_kind { OPT_STR, OPT_DOUBLE, OPT_INT, OPT_LONG, OPT_FLAG };

struct opt_def {
    const char *name, *arg, *help;
    enum opt_kind kind;
    size_t offset;
};

#define OFF(field) offsetof(struct bench_opts, field)

static const struct opt_def opt_defs[] = {
    {"--kpsa-id", "ID", "the stored KpsaId every handshake uses (required)",
     OPT_STR, OFF(kpsa_id)},
    {"--key-file", "FILE", "its key in hex, for the raw-key peers (required)",
     OPT_STR, OFF(key_file)},
    {"--token-label", "NAME", "names the configuration (softhsm, p11kit)",
     OPT_STR, OFF(token_label)},
    {"--csv", "FILE", "append rows to FILE (a header when it is new)", OPT_STR,
     OFF(csv)},
    {"--provider", "PATH", "kpsa.so (default $KPSA_PROVIDER, else \"kpsa\")",
     OPT_STR, OFF(provider)},
    {"--seconds", "S", "length of one measurement (default 2)", OPT_DOUBLE,
     OFF(seconds)},
    {"--warmup", "S", "warm-up before each measurement (default 0.3)",
     OPT_DOUBLE, OFF(warmup)},
    {"--reps", "N", "repetitions; the median is reported (default 3)", OPT_INT,
     OFF(reps)},
    {"--protocols", "LIST", "tls1.2-cbc,tls1.2-ccm8,dtls1.2-ccm8,tls1.3-dhe",
     OPT_STR, OFF(protos)},
    {"--threads", "LIST", "thread counts (default 1,2)", OPT_STR, OFF(threads)},
    {"--sides", "LIST", "none,token,pass,server,both (default all); hmac",
     OPT_STR, OFF(sides)},
    {"--scale", "N", "scale mode: N key families on the token", OPT_LONG,
     OFF(scale)},
    {"--flood", NULL, "flood mode: unknown identities against a server",
     OPT_FLAG, OFF(flood)},
    {"--refresh", "S", "flood: the store's refresh interval (default 2)",
     OPT_INT, OFF(refresh)},
    {"--count", "K", "K handshakes per line, untimed (bench/count.py)",
     OPT_LONG, OFF(count)},
    {"--flood-probe", NULL, NULL, OPT_FLAG, OFF(probe)},
};

#define N_OPTS (sizeof(opt_defs) / sizeof(opt_defs[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: kpsa-bench --kpsa-id ID --key-file FILE [options]\n"
               "The token: KPSA_MODULE, KPSA_TOKEN, KPSA_PIN_SOURCE.\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        char left[40];

        if (opt_defs[i].help == NULL)
            continue;
        snprintf(left, sizeof(left), "%s%s%s", opt_defs[i].name,
                 opt_defs[i].arg ? " " : "",
                 opt_defs[i].arg ? opt_defs[i].arg : "");
        fprintf(f, "  %-22s %s\n", left, opt_defs[i].help);
    }
}

static int set_opt(struct bench_opts *o, const struct opt_def *d,
                   const char *val)
{
    char *end = NULL;
    void *field = (char *)o + d->offset;

    switch (d->kind) {
    case OPT_STR:
        *(const char **)field = val;
        return 0;
    case OPT_DOUBLE:
        *(double *)field = strtod(val, &end);
        break;
    case OPT_INT:
        *(int *)field = (int)strtol(val, &end, 10);
        break;
    case OPT_LONG:
        *(long *)field = strtol(val, &end, 10);
        break;
    case OPT_FLAG:
        *(int *)field = 1;
        return 0;
    }
    return end != NULL && end != val && *end == '\0' ? 0 : -1;
}

static int parse_args(int argc, char **argv, struct bench_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const struct opt_def *d = NULL;

        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        for (size_t j = 0; j < N_OPTS && d == NULL; j++)
            if (strcmp(argv[i], opt_defs[j].name) == 0)
                d = &opt_defs[j];
        if (d == NULL || (d->kind != OPT_FLAG && i + 1 >= argc)) {
            fprintf(stderr, "kpsa-bench: %s: %s\n", argv[i],
                    d ? "needs a value" : "unknown option");
            return -1;
        }
        if (set_opt(o, d, d->kind == OPT_FLAG ? "" : argv[++i]) != 0) {
            fprintf(stderr, "kpsa-bench: %s: not a number: %s\n", d->name,
                    argv[i]);
            return -1;
        }
    }
    if (o->kpsa_id == NULL || o->key_file == NULL) {
        usage(stderr);
        return -1;
    }
    if (o->seconds <= 0 || o->reps < 1 || o->reps > BENCH_REPS_MAX ||
        o->warmup < 0) {
        fprintf(stderr, "kpsa-bench: --seconds, --reps or --warmup out of "
                        "range\n");
        return -1;
    }
    return 0;
}

static void defaults(struct bench_opts *o)
{
    time_t now = time(NULL);
    struct tm tm;

    memset(o, 0, sizeof(*o));
    o->token_label = "token";
    o->provider = getenv("KPSA_PROVIDER") ? getenv("KPSA_PROVIDER") : "kpsa";
    o->threads = "1,2";
    o->seconds = 2;
    o->warmup = 0.3;
    o->reps = 3;
    o->refresh = -1;
    gmtime_r(&now, &tm);
    strftime(o->started, sizeof(o->started), "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- keys ---- */

static int read_key(const char *path, unsigned char *key, size_t *len,
                    char err[BENCH_ERRLEN])
{
    char text[2 * BENCH_PSK_MAX + 8];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
    unsigned char *bytes;
    long blen = 0;
    int ret = -1;

    if (f == NULL) {
        snprintf(err, BENCH_ERRLEN, "%s: cannot open", path);
        return -1;
    }
    fclose(f);
    while (n > 0 &&
           (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
        n--;
    text[n] = '\0';
    bytes = OPENSSL_hexstr2buf(text, &blen);
    if (bytes == NULL || blen < 1 || blen > BENCH_PSK_MAX)
        snprintf(err, BENCH_ERRLEN, "%s: not a key in hex", path);
    else {
        memcpy(key, bytes, (size_t)blen);
        *len = (size_t)blen;
        ret = 0;
    }
    OPENSSL_cleanse(text, sizeof(text));
    OPENSSL_clear_free(bytes, blen > 0 ? (size_t)blen : 0);
    return ret;
}

int bench_keys(const struct bench_opts *o, struct bench_psk *raw,
               struct bench_psk *handle, char err[BENCH_ERRLEN])
{
    char why[KPSAID_ERR_MAX], text[HANDLE_LEN + 1];

    memset(raw, 0, sizeof(*raw));
    memset(handle, 0, sizeof(*handle));
    if (kpsaid_canonicalize(o->kpsa_id, strlen(o->kpsa_id),
                            KPSAID_ALLOW_UNDERSCORE, raw->identity, why) != 0) {
        snprintf(err, BENCH_ERRLEN, "%s: %s", o->kpsa_id, why);
        return -1;
    }
    if (read_key(o->key_file, raw->bytes, &raw->len, err) != 0)
        return -1;
    memcpy(handle->identity, raw->identity, sizeof(raw->identity));
    if (handle_of(raw->identity, text) != 0) {
        snprintf(err, BENCH_ERRLEN, "%s: no handle", raw->identity);
        return -1;
    }
    memcpy(handle->bytes, text, HANDLE_LEN);
    handle->len = HANDLE_LEN;
    return 0;
}

/* ---- CSV ---- */

static const char csv_header[] =
    "date,token,kind,test,protocol,kpsa,threads,hs_per_s,us_per_hs,ratio,"
    "ops_per_hs,op_us,op_hs_us,extra_us,bound_us,within,bound_hs_us,"
    "within_hs,cpu_us_per_hs,cpu_op_us,cpu_op_hs_us,cpu_extra_us,"
    "cpu_bound_us,cpu_within,cpu_bound_hs_us,cpu_within_hs,cores,"
    "vcsw_per_hs,value,unit\n";

void csv_row_init(struct csv_row *row, const char *kind, const char *test)
{
    memset(row, 0, sizeof(*row));
    row->kind = kind;
    row->test = test;
    row->hs_per_s = row->us_per_hs = row->ratio = NAN;
    row->ops_per_hs = row->op_us = row->op_hs_us = NAN;
    row->extra_us = row->bound_us = row->bound_hs_us = NAN;
    row->cpu_us_per_hs = row->cpu_op_us = row->cpu_op_hs_us = NAN;
    row->cpu_extra_us = row->cpu_bound_us = row->cpu_bound_hs_us = NAN;
    row->cores = row->vcsw_per_hs = NAN;
    row->value = NAN;
}

static void csv_str(FILE *f, const char *s)
{
    for (; s != NULL && *s; s++)
        fputc(*s == ',' || *s == '\n' ? ' ' : *s, f);
    fputc(',', f);
}

static void csv_num(FILE *f, double v, const char *fmt)
{
    if (!isnan(v))
        fprintf(f, fmt, v);
    fputc(',', f);
}

void csv_write(const struct bench_opts *o, const struct csv_row *row)
{
    FILE *f;

    if (o->csv == NULL || (f = fopen(o->csv, "a")) == NULL)
        return;
    if (ftell(f) == 0)
        fputs(csv_header, f);
    csv_str(f, o->started);
    csv_str(f, o->token_label);
    csv_str(f, row->kind);
    csv_str(f, row->test);
    csv_str(f, row->protocol);
    csv_str(f, row->kpsa);
    if (row->threads > 0)
        fprintf(f, "%d", row->threads);
    fputc(',', f);
    csv_num(f, row->hs_per_s, "%.1f");
    csv_num(f, row->us_per_hs, "%.2f");
    csv_num(f, row->ratio, "%.3f");
    csv_num(f, row->ops_per_hs, "%.2f");
    csv_num(f, row->op_us, "%.2f");
    csv_num(f, row->op_hs_us, "%.2f");
    csv_num(f, row->extra_us, "%.2f");
    csv_num(f, row->bound_us, "%.2f");
    csv_str(f, row->within);
    csv_num(f, row->bound_hs_us, "%.2f");
    csv_str(f, row->within_hs);
    csv_num(f, row->cpu_us_per_hs, "%.2f");
    csv_num(f, row->cpu_op_us, "%.2f");
    csv_num(f, row->cpu_op_hs_us, "%.2f");
    csv_num(f, row->cpu_extra_us, "%.2f");
    csv_num(f, row->cpu_bound_us, "%.2f");
    csv_str(f, row->cpu_within);
    csv_num(f, row->cpu_bound_hs_us, "%.2f");
    csv_str(f, row->cpu_within_hs);
    csv_num(f, row->cores, "%.2f");
    csv_num(f, row->vcsw_per_hs, "%.3f");
    csv_num(f, row->value, "%.6g");
    fprintf(f, "%s\n", row->unit ? row->unit : "");
    fclose(f);
}

void bench_metric(const struct bench_opts *o, const char *kind,
                  const char *test, double value, const char *unit)
{
    struct csv_row row;

    csv_row_init(&row, kind, test);
    row.value = value;
    row.unit = unit;
    printf("  %-44s %12.6g %s\n", test, value, unit);
    csv_write(o, &row);
}

/* ---- the handshake matrix ---- */

struct line {
    enum bench_proto proto;
    enum side side;
    int threads;
    int skip;   /* not asked for with --sides */
    int failed; /* handshakes failed while measured */
    double hs_per_s, us_per_hs, ops_per_hs;
    double cpu_us;      /* CPU per handshake, both ends and all threads */
    double cores;       /* CPU used over wall time */
    double vcsw;        /* voluntary context switches per handshake */
    struct op_cost op;  /* one token operation alone, measured beside */
    struct line *group; /* the group's lines, indexed by side */
};

struct matrix {
    const struct bench_opts *o;
    struct bench_lib plain, kpsa;
    struct bench_psk raw, handle;
    struct cost_ctx *cost;
    struct token_costs raw_costs;
};

/* The token operations kpsa makes per handshake on the server: TLS 1.2
 * P_hash for a 48-byte master secret with SHA-256 (A(1), A(2), two
 * blocks); TLS 1.3 psk_dhe_ke the binder and the "derived" extract. */
static int server_ops(enum bench_proto p)
{
    return bench_protos[p].tls13 ? 2 : 4;
}

/* SIDE_TOKEN: a baseline handshake, then its token operations. */
struct synth {
    struct hs_pair *pair;
    struct cost_ctx *cost;
    int thread, ops;
};

static int synth_step(void *arg)
{
    struct synth *st = arg;
    int ok = hs_once(st->pair);

    for (int i = 0; i < st->ops; i++)
        ok &= cost_hmac(st->cost, st->thread);
    return ok;
}

static int make_pairs(struct matrix *m, const struct line *ln,
                      struct hs_pair *pairs)
{
    int kpsa_server = ln->side == SIDE_PASS || ln->side == SIDE_SERVER ||
                      ln->side == SIDE_BOTH;
    OSSL_LIB_CTX *cl = ln->side == SIDE_BOTH ? m->kpsa.ctx : m->plain.ctx;
    OSSL_LIB_CTX *sl = kpsa_server ? m->kpsa.ctx : m->plain.ctx;
    const struct bench_psk *cp = ln->side == SIDE_BOTH ? &m->handle : &m->raw;
    const struct bench_psk *sp =
        ln->side == SIDE_SERVER || ln->side == SIDE_BOTH ? &m->handle : &m->raw;
    int ok = 1;

    for (int i = 0; i < ln->threads; i++)
        ok &=
            hs_pair_init(&pairs[i], ln->proto, hs_ctx_new(cl, ln->proto, 0, cp),
                         hs_ctx_new(sl, ln->proto, 1, sp)) == 0;
    if (ok && !hs_once(&pairs[0])) {
        fprintf(stderr, "kpsa-bench: %s, kpsa %s: a handshake fails\n",
                bench_protos[ln->proto].name, side_names[ln->side]);
        ok = 0;
    }
    return ok ? 0 : -1;
}

static void make_job(struct matrix *m, const struct line *ln,
                     struct hs_pair *pairs, struct synth *synth,
                     struct bench_job *job)
{
    memset(job, 0, sizeof(*job));
    job->threads = ln->threads;
    job->warmup = m->o->warmup;
    job->seconds = m->o->seconds;
    job->counter = bench_token_ops;
    job->counter_arg = m->kpsa.kpsa;
    for (int i = 0; i < ln->threads; i++) {
        job->step[i] = hs_step;
        job->state[i] = &pairs[i];
        if (ln->side != SIDE_TOKEN)
            continue;
        synth[i].pair = &pairs[i];
        synth[i].cost = m->cost;
        synth[i].thread = i;
        synth[i].ops = server_ops(ln->proto);
        job->step[i] = synth_step;
        job->state[i] = &synth[i];
    }
}

static void fill_line(struct line *ln, const struct bench_result *r)
{
    ln->failed = (int)r->failed_all;
    ln->hs_per_s = bench_rate(r, -1);
    /* Per thread: what one handshake costs the thread that runs it. */
    ln->us_per_hs =
        (double)ln->threads * r->elapsed * 1e6 / (double)r->done_all;
    ln->ops_per_hs = ln->side == SIDE_TOKEN
                         ? server_ops(ln->proto)
                         : (double)r->counted / (double)r->done_all;
    ln->cores = r->cpu / r->elapsed;
    ln->vcsw = (double)r->vcsw / (double)r->done_all;
}

static int median_line(const struct bench_opts *o, struct line *ln,
                       struct bench_result *r)
{
    double hs_cpu[BENCH_REPS_MAX];
    struct bench_result med;

    for (int rep = 0; rep < o->reps; rep++)
        hs_cpu[rep] = r[rep].done_all
                          ? r[rep].cpu * 1e6 / (double)r[rep].done_all
                          : INFINITY;
    bench_pick_median(r, o->reps, -1, &med);
    if (med.done_all == 0) {
        fprintf(stderr, "kpsa-bench: no handshake completed\n");
        return -1;
    }
    fill_line(ln, &med);
    ln->cpu_us = bench_median_of(hs_cpu, o->reps);
    return 0;
}

/*
 * The lines of one protocol and thread count, and the token's cost alone,
 * measured in turns (cost, then each line; again), so that a machine
 * whose load drifts shifts all of them alike.
 */
static int measure_group(struct matrix *m, struct line *lines)
{
    static struct hs_pair pairs[SIDE_COUNT][BENCH_THREADS_MAX];
    static struct bench_result r[SIDE_COUNT][BENCH_REPS_MAX];
    struct synth synth[SIDE_COUNT][BENCH_THREADS_MAX];
    const struct bench_opts *o = m->o;
    struct bench_job job[SIDE_COUNT];
    double wall[BENCH_REPS_MAX], cpu[BENCH_REPS_MAX];
    int ret = -1;

    memset(pairs, 0, sizeof(pairs));
    for (int s = 0; s < SIDE_COUNT; s++) {
        if (lines[s].skip)
            continue;
        if (make_pairs(m, &lines[s], pairs[s]) != 0)
            goto out;
        make_job(m, &lines[s], pairs[s], synth[s], &job[s]);
    }
    for (int rep = 0; rep < o->reps; rep++) {
        struct op_cost c;

        if (cost_layer(m->cost, o, lines[0].threads, 1, &c) != 0) {
            fprintf(stderr, "kpsa-bench: token_hmac failed\n");
            goto out;
        }
        wall[rep] = c.wall_us;
        cpu[rep] = c.cpu_us;
        for (int s = 0; s < SIDE_COUNT; s++)
            if (!lines[s].skip && bench_run(&job[s], &r[s][rep]) != 0)
                goto out;
    }
    for (int s = 0; s < SIDE_COUNT; s++) {
        if (lines[s].skip)
            continue;
        if (median_line(o, &lines[s], r[s]) != 0)
            goto out;
        lines[s].op.wall_us = bench_median_of(wall, o->reps);
        lines[s].op.cpu_us = bench_median_of(cpu, o->reps);
    }
    ret = 0;
out:
    for (int s = 0; s < SIDE_COUNT; s++)
        for (int i = 0; i < BENCH_THREADS_MAX; i++)
            hs_pair_clear(&pairs[s][i]);
    return ret;
}

/*
 * The bound: what kpsa adds over the baseline against 1.1 x (its
 * token operations) x (the cost of one), in wall time per thread and in
 * CPU time. The cost of one is taken two ways: alone (HMACs in a row,
 * caches warm), and amid handshakes (the token line over the baseline,
 * per operation).
 */
struct derived {
    double ratio, extra, cpu_extra;
    struct op_cost amid;
    double bound, bound_hs, cpu_bound, cpu_bound_hs;
    const char *within, *within_hs, *cpu_within, *cpu_within_hs;
};

static const char *verdict(double extra, double bound)
{
    return isnan(extra) || isnan(bound) ? "" : extra <= bound ? "yes" : "no";
}

static int measured(const struct line *ln)
{
    return !ln->skip && ln->hs_per_s > 0;
}

static void derive(const struct line *ln, struct derived *d)
{
    const struct line *b = &ln->group[SIDE_NONE];
    const struct line *t = &ln->group[SIDE_TOKEN];
    int kpsa = ln->side == SIDE_SERVER || ln->side == SIDE_BOTH;

    memset(d, 0, sizeof(*d));
    d->ratio = d->extra = d->cpu_extra = d->amid.wall_us = NAN;
    d->amid.cpu_us = d->bound = d->bound_hs = NAN;
    d->cpu_bound = d->cpu_bound_hs = NAN;
    if (!measured(b) || !measured(ln))
        goto verdicts;
    d->ratio = ln->us_per_hs / b->us_per_hs;
    if (ln->side == SIDE_NONE)
        goto verdicts;
    d->extra = ln->us_per_hs - b->us_per_hs;
    d->cpu_extra = ln->cpu_us - b->cpu_us;
    if (measured(t)) {
        d->amid.wall_us = (t->us_per_hs - b->us_per_hs) / t->ops_per_hs;
        d->amid.cpu_us = (t->cpu_us - b->cpu_us) / t->ops_per_hs;
    }
    if (!kpsa)
        goto verdicts;
    d->bound = BOUND_FACTOR * ln->ops_per_hs * ln->op.wall_us;
    d->cpu_bound = BOUND_FACTOR * ln->ops_per_hs * ln->op.cpu_us;
    d->bound_hs = BOUND_FACTOR * ln->ops_per_hs * d->amid.wall_us;
    d->cpu_bound_hs = BOUND_FACTOR * ln->ops_per_hs * d->amid.cpu_us;
verdicts:
    d->within = verdict(d->extra, d->bound);
    d->within_hs = verdict(d->extra, d->bound_hs);
    d->cpu_within = verdict(d->cpu_extra, d->cpu_bound);
    d->cpu_within_hs = verdict(d->cpu_extra, d->cpu_bound_hs);
}

static void print_num(double v, int width, int prec)
{
    if (isnan(v))
        printf(" %*s", width, "-");
    else
        printf(" %*.*f", width, prec, v);
}

static void print_word(const char *w, int width)
{
    printf(" %*s", width, w[0] ? w : "-");
}

static void print_header(void)
{
    printf("%-8s %-12s %-6s %3s %7s %7s %5s %3s |%6s %6s %6s %6s %3s %6s "
           "%3s |%7s %5s %5s %6s %6s %3s %6s %3s |%5s %4s\n",
           "token", "protocol", "kpsa", "thr", "hs/s", "us/hs", "ratio", "ops",
           "alone", "amid", "extra", "bound", "ok", "bound", "ok", "cpu_us",
           "alone", "amid", "extra", "bound", "ok", "bound", "ok", "cores",
           "vcs");
}

static void print_line(const struct matrix *m, const struct line *ln)
{
    int kpsa = ln->side == SIDE_SERVER || ln->side == SIDE_BOTH;
    int has_ops = kpsa || ln->side == SIDE_TOKEN;
    struct derived d;

    derive(ln, &d);
    printf("%-8s %-12s %-6s %3d", m->o->token_label,
           bench_protos[ln->proto].name, side_names[ln->side], ln->threads);
    print_num(ln->hs_per_s, 7, 0);
    print_num(ln->us_per_hs, 7, 1);
    print_num(d.ratio, 5, 2);
    print_num(has_ops ? ln->ops_per_hs : NAN, 3, 1);
    printf(" |");
    print_num(has_ops ? ln->op.wall_us : NAN, 5, 1);
    print_num(has_ops ? d.amid.wall_us : NAN, 6, 1);
    print_num(d.extra, 6, 1);
    print_num(d.bound, 6, 1);
    print_word(d.within, 3);
    print_num(d.bound_hs, 6, 1);
    print_word(d.within_hs, 3);
    printf(" |");
    print_num(ln->cpu_us, 6, 1);
    print_num(has_ops ? ln->op.cpu_us : NAN, 5, 1);
    print_num(has_ops ? d.amid.cpu_us : NAN, 5, 1);
    print_num(d.cpu_extra, 6, 1);
    print_num(d.cpu_bound, 6, 1);
    print_word(d.cpu_within, 3);
    print_num(d.cpu_bound_hs, 6, 1);
    print_word(d.cpu_within_hs, 3);
    printf(" |");
    print_num(ln->cores, 4, 2);
    print_num(ln->vcsw, 4, 2);
    printf("%s\n", ln->failed ? "  (failures)" : "");
}

static void csv_line(const struct matrix *m, const struct line *ln)
{
    int has_ops = ln->side == SIDE_SERVER || ln->side == SIDE_BOTH ||
                  ln->side == SIDE_TOKEN;
    struct derived d;
    struct csv_row row;

    derive(ln, &d);
    csv_row_init(&row, "handshake", "matrix");
    row.protocol = bench_protos[ln->proto].name;
    row.kpsa = side_names[ln->side];
    row.threads = ln->threads;
    row.hs_per_s = ln->hs_per_s;
    row.us_per_hs = ln->us_per_hs;
    row.ratio = d.ratio;
    row.cpu_us_per_hs = ln->cpu_us;
    row.cores = ln->cores;
    row.vcsw_per_hs = ln->vcsw;
    row.extra_us = d.extra;
    row.cpu_extra_us = d.cpu_extra;
    if (has_ops) {
        row.ops_per_hs = ln->ops_per_hs;
        row.op_us = ln->op.wall_us;
        row.op_hs_us = d.amid.wall_us;
        row.cpu_op_us = ln->op.cpu_us;
        row.cpu_op_hs_us = d.amid.cpu_us;
    }
    row.bound_us = d.bound;
    row.bound_hs_us = d.bound_hs;
    row.cpu_bound_us = d.cpu_bound;
    row.cpu_bound_hs_us = d.cpu_bound_hs;
    row.within = d.within;
    row.within_hs = d.within_hs;
    row.cpu_within = d.cpu_within;
    row.cpu_within_hs = d.cpu_within_hs;
    csv_write(m->o, &row);
}

static int listed(const char *list, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = list; p != NULL && *p; p += strcspn(p, ",")) {
        p += *p == ',';
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return 1;
    }
    return 0;
}

static void cost_metric(const struct bench_opts *o, const char *what,
                        int threads, const struct op_cost *c)
{
    char name[96];

    snprintf(name, sizeof(name), "%s, %d thread%s, wall", what, threads,
             threads > 1 ? "s" : "");
    bench_metric(o, "token-op", name, c->wall_us, "us");
    snprintf(name, sizeof(name), "%s, %d thread%s, cpu", what, threads,
             threads > 1 ? "s" : "");
    bench_metric(o, "token-op", name, c->cpu_us, "us");
}

static void report_costs(struct matrix *m)
{
    const struct token_costs *c = &m->raw_costs;
    const struct bench_opts *o = m->o;

    printf("\nToken operation cost (HMAC-SHA-256 over 54 bytes; us per "
           "operation, wall per thread and CPU):\n");
    for (int t = 1; t <= 2; t++) {
        struct op_cost layer;

        if (cost_layer(m->cost, o, t, o->reps, &layer) == 0)
            cost_metric(o, "token layer, token object", t, &layer);
    }
    if (!c->have_raw)
        return;
    for (int t = 1; t <= 2; t++) {
        cost_metric(o, "own session, token object", t, &c->token_obj[t - 1]);
        cost_metric(o, "own session, session object (C_GenerateKey)", t,
                    &c->session_obj[t - 1]);
    }
    printf("  C_CopyObject of a family member (CKA_TOKEN false): %s\n",
           c->copy_rv);
}

static int run_lines(struct matrix *m, struct line *lines, size_t *n_lines)
{
    const struct bench_opts *o = m->o;
    size_t n = 0;

    print_header();
    for (int p = 0; p < PROTO_COUNT; p++) {
        if (o->protos != NULL && !listed(o->protos, bench_protos[p].name))
            continue;
        for (int t = 1; t <= BENCH_THREADS_MAX; t++) {
            char num[8];

            snprintf(num, sizeof(num), "%d", t);
            if (!listed(o->threads, num))
                continue;
            for (int s = 0; s < SIDE_COUNT; s++) {
                lines[n + s].skip =
                    o->sides != NULL && !listed(o->sides, side_names[s]);
                lines[n + s].proto = (enum bench_proto)p;
                lines[n + s].side = (enum side)s;
                lines[n + s].threads = t;
                lines[n + s].group = &lines[n];
            }
            if (measure_group(m, &lines[n]) != 0)
                return -1;
            for (int s = 0; s < SIDE_COUNT; s++) {
                if (lines[n + s].skip)
                    continue;
                print_line(m, &lines[n + s]);
                csv_line(m, &lines[n + s]);
            }
            n += SIDE_COUNT;
        }
    }
    *n_lines = n;
    return 0;
}

/* Two threads reach 2x one thread's rate only with two free cores; the
 * CPU per handshake tells whether they cost more work each (contention
 * that spins) and vcs whether they wait (a lock, or the token). */
static void scaling(const struct matrix *m, const struct line *lines, size_t n)
{
    printf("\nTwo threads against one (target 1.7x where the token "
           "allows):\n");
    for (size_t i = 0; i < n; i++) {
        char name[96];

        if (lines[i].threads != 2)
            continue;
        for (size_t j = 0; j < n; j++) {
            if (lines[j].threads != 1 || lines[j].proto != lines[i].proto ||
                lines[j].side != lines[i].side || lines[i].skip)
                continue;
            snprintf(name, sizeof(name), "2/1 threads rate, %s kpsa=%s",
                     bench_protos[lines[i].proto].name,
                     side_names[lines[i].side]);
            bench_metric(m->o, "scaling", name,
                         lines[i].hs_per_s / lines[j].hs_per_s, "x");
            snprintf(name, sizeof(name), "2/1 threads CPU/hs, %s kpsa=%s",
                     bench_protos[lines[i].proto].name,
                     side_names[lines[i].side]);
            bench_metric(m->o, "scaling", name,
                         lines[i].cpu_us / lines[j].cpu_us, "x");
        }
    }
}

/* ---- --count: instructions, not time ---- */

/* The only function whose cost callgrind collects (--toggle-collect):
 * one handshake, or one HMAC for the "hmac" side. */
__attribute__((noinline)) int count_step(bench_step_fn *step, void *state)
{
    return step(state);
}

static int hmac_unit(void *cost)
{
    return cost_hmac(cost, 0);
}

static int count_line(struct matrix *m, struct line *ln, long k)
{
    struct hs_pair pairs[BENCH_THREADS_MAX];
    struct synth synth[BENCH_THREADS_MAX];
    struct bench_job job;
    long done = 0;

    memset(pairs, 0, sizeof(pairs));
    ln->threads = 1;
    if (make_pairs(m, ln, pairs) != 0)
        return -1;
    make_job(m, ln, pairs, synth, &job);
    for (long i = 0; i < k; i++)
        done += count_step(job.step[0], job.state[0]);
    printf("count %s %s %ld %ld\n", bench_protos[ln->proto].name,
           side_names[ln->side], k, done);
    hs_pair_clear(&pairs[0]);
    return done == k ? 0 : -1;
}

static int count_run(struct matrix *m)
{
    const struct bench_opts *o = m->o;
    long done = 0;

    if (o->sides != NULL && listed(o->sides, "hmac")) {
        for (long i = 0; i < o->count; i++)
            done += count_step(hmac_unit, m->cost);
        printf("count hmac hmac %ld %ld\n", o->count, done);
    }
    for (int p = 0; p < PROTO_COUNT; p++) {
        if (o->protos != NULL && !listed(o->protos, bench_protos[p].name))
            continue;
        for (int s = 0; s < SIDE_COUNT; s++) {
            struct line ln = {.proto = (enum bench_proto)p,
                              .side = (enum side)s};

            if (o->sides != NULL && !listed(o->sides, side_names[s]))
                continue;
            if (count_line(m, &ln, o->count) != 0)
                return -1;
        }
    }
    return 0;
}

static int matrix_run(const struct bench_opts *o)
{
    static struct line lines[PROTO_COUNT * BENCH_THREADS_MAX * SIDE_COUNT];
    struct matrix m = {.o = o};
    char err[BENCH_ERRLEN];
    size_t n = 0;
    int ret = 1;

    if (bench_keys(o, &m.raw, &m.handle, err) != 0 ||
        bench_lib_plain(&m.plain, err) != 0 ||
        bench_lib_kpsa(&m.kpsa, o->provider, err) != 0 ||
        (m.cost = cost_open(m.raw.identity, err)) == NULL) {
        fprintf(stderr, "kpsa-bench: %s\n", err);
        goto out;
    }
    if (o->count > 0) {
        ret = count_run(&m) == 0 ? 0 : 1;
        goto out;
    }
    printf("kpsa-bench %s: token %s, %g s per measurement, median of %d\n",
           o->started, o->token_label, o->seconds, o->reps);
    cost_raw(o, m.raw.identity, &m.raw_costs);
    report_costs(&m);
    printf("\nHandshakes. Wall: us/hs per thread; CPU: cpu_us per handshake. "
           "One token\noperation costs 'alone' (in a row) or 'amid' "
           "handshakes (the token line).\nextra = kpsa - baseline; bound "
           "= %.1f x ops x cost (alone, then amid);\ncores = CPU / wall; "
           "vcs = voluntary context switches per handshake.\n",
           BOUND_FACTOR);
    if (run_lines(&m, lines, &n) != 0)
        goto out;
    scaling(&m, lines, n);
    ret = 0;
out:
    OPENSSL_cleanse(&m.raw, sizeof(m.raw));
    cost_close(m.cost);
    bench_lib_free(&m.kpsa);
    bench_lib_free(&m.plain);
    return ret;
}

int main(int argc, char **argv)
{
    struct bench_opts o;

    defaults(&o);
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (o.probe)
        return flood_probe(&o);
    if (o.flood)
        return flood_run(&o);
    if (o.scale > 0)
        return scale_run(&o);
    return matrix_run(&o);
}

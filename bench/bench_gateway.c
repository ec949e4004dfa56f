/*
 * bench_gateway.c: load on a running gateway (`make bench-gateway`).
 *
 * Two real gateways (NG_BIN) on loopback, each with its embedded Redis:
 * "a" holds tenant alice, whose backend is this program, "b" holds bob,
 * whose backend is the sink below. A third configuration, "c" (carol), is
 * set up but never started: alice's messages to carol stay in a's outbox,
 * so that the accept figure measures gateway a and nothing downstream.
 *
 *   accepted      POST /v1/tenants/alice/messages to carol, signed v1 here
 *                 (a fresh webhook-id each), 32 keep-alive connections
 *                 through libcurl multi, closed loop: 202s a second and the
 *                 p50/p99 latency of the 202. Then again with gateway a's
 *                 threads on CPU 0 alone and every other process on the
 *                 other CPUs: the figure held to the seal rate of one core
 *                 (pin_gateway_a says why).
 *   end to end    the same to bob: b polls a's outbox, opens, delivers to
 *                 the sink (libmicrohttpd in this process), which notes the
 *                 arrival of each webhook-id; latency is arrival minus the
 *                 start of the POST that made that message id, on one
 *                 monotonic clock. The rate is taken at saturation (about
 *                 e2e_s worth of messages in a closed loop, then until the
 *                 last arrived); the latency at half that rate, offered at
 *                 a steady pace, since at saturation it only measures how
 *                 long the backlog grew.
 *   baselines     (1) ng_parcel_seal X with an ss cache, as the gateway
 *                 seals, on 1 thread on CPU 0 (compared with the accept
 *                 rate on one core) and on one thread per core (printed:
 *                 the machine's seal rate, which the generator and Redis
 *                 share with the gateway in the unpinned run);
 *                 (2) redis-benchmark XADD -c 50 -P 1 on gateway a's own
 *                 redis-server; (3) a trivial libmicrohttpd handler with the
 *                 gateway's threading (epoll, a pool of one thread per core)
 *                 answering 202 with a small JSON, driven by the same load
 *                 generator with the same signed requests.
 *
 * Every figure is the median of REPS runs; a ratio is the median of the
 * ratios of runs taken side by side (the machine's speed swings between
 * minutes). The CPU each process used during the accept and end-to-end runs
 * is read from /proc, to see where the time goes.
 *
 * NG_BIN names the gateway binary. NG_KEEP=1 keeps the temporary directory
 * (configurations, logs, data). Exits 0 whether the target is met or not,
 * 1 if the setup fails or a run gets answers other than 202.
 */
#define _GNU_SOURCE /* sched_setaffinity and cpu_set_t, to give gateway a one core of its own */
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <microhttpd.h>
#include <sodium.h>

#include "bench_common.h"
#include "ng_envelope.h"
#include "ng_webhook.h"

enum {
    REPS = 3,
    CONC = 32,          /* connections of the load generator */
    REDIS_CLIENTS = 50, /* redis-benchmark -c */
    REDIS_REQUESTS = 50000,
    E2E_MIN = 300, /* messages in an end-to-end run, at least */
    E2E_MAX = 30000,
    MSG_ID_HEX = 32,
    RESP_MAX = 1024,
    N_SIZES = 2,
    MAX_THREADS = 64,
    HTTP_TIMEOUT_MS = 30000,
    START_TIMEOUT_MS = 30000, /* for a gateway's /readyz */
    STOP_TIMEOUT_MS = 20000,  /* from SIGTERM to SIGKILL */
    DRAIN_TIMEOUT_MS = 60000, /* for accepted messages to reach the sink */
    N_PROCS = 6,              /* ours, and "other": whatever else kept the machine busy */
};

static const double accept_s = 2.0; /* each accept and trivial-handler run */
static const double e2e_s = 3.0;    /* what each end-to-end run should take, at the rate seen before */
static const double paced_s = 2.0;  /* the paced end-to-end run, for latency */
static const double seal_s = 0.5;
static const double warm_s = 0.5;
static const double target = 0.5;

static const size_t sizes[N_SIZES] = {64, 1024};
static const char *const size_names[N_SIZES] = {"64 B", "1 KiB"};

/* ---- statistics ---- */

/* The p-quantile (0..1) of v[0..n), which it sorts; 0 for none. */
static double
quantile(double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, bench_cmp_double);
    return v[(size_t)(p * (double)(n - 1) + 0.5)];
}

static double
median(const double *v, size_t n)
{
    double c[REPS * 2];

    memcpy(c, v, n * sizeof *v);
    return quantile(c, n, 0.5);
}

/* a and b run; c is only configured (carol's gateway, which never polls a's outbox). */
static struct bench_gw gw_a = {.name = "a"}, gw_b = {.name = "b"}, gw_c = {.name = "c"};
/* The CPUs this process may use (a container's cpuset need not start at 0), and the first of them. */
static cpu_set_t allowed;
static int first_cpu;

/* ---- the sink: bob's backend, noting when each webhook-id arrives ---- */

struct arrival {
    char id[MSG_ID_HEX + 1];
    uint64_t t_ns;
};

static struct {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    struct arrival *a;
    size_t n, cap;
    char pattern[16]; /* ce-ngpattern of the first webhook */
} sink = {.mu = PTHREAD_MUTEX_INITIALIZER};

static enum MHD_Result
sink_answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
            const char *upload, size_t *upload_size, void **state)
{
    uint64_t t = bench_now_ns();
    const char *id, *pat;

    (void)cls, (void)url, (void)method, (void)version, (void)upload;
    if (!bench_mhd_body_done(state, upload_size))
        return MHD_YES;
    id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "webhook-id");
    pat = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "ce-ngpattern");
    pthread_mutex_lock(&sink.mu);
    if (sink.n == sink.cap) {
        sink.cap = sink.cap > 0 ? sink.cap * 2 : 65536;
        sink.a = bench_xrealloc(sink.a, sink.cap * sizeof *sink.a);
    }
    snprintf(sink.a[sink.n].id, sizeof sink.a[sink.n].id, "%s", id != NULL ? id : "");
    sink.a[sink.n++].t_ns = t;
    if (sink.pattern[0] == '\0' && pat != NULL)
        snprintf(sink.pattern, sizeof sink.pattern, "%s", pat);
    pthread_mutex_unlock(&sink.mu);
    return bench_mhd_reply(conn, 204, NULL, 0, NULL);
}

static size_t
sink_count(void)
{
    size_t n;

    pthread_mutex_lock(&sink.mu);
    n = sink.n;
    pthread_mutex_unlock(&sink.mu);
    return n;
}

static void
sink_reset(void)
{
    pthread_mutex_lock(&sink.mu);
    sink.n = 0;
    pthread_mutex_unlock(&sink.mu);
}

/* ---- baseline: the trivial handler, with the gateway's threading (gateway/ng_server.c) ---- */

static enum MHD_Result
trivial_answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
               const char *upload, size_t *upload_size, void **state)
{
    static const char body[] =
        "{\"id\":\"00000000000000000000000000000000\",\"expires\":1700000000000,\"recipient\":\"carol\"}";

    (void)cls, (void)url, (void)method, (void)version, (void)upload;
    if (!bench_mhd_body_done(state, upload_size))
        return MHD_YES;
    return bench_mhd_reply(conn, 202, body, sizeof body - 1, NULL);
}

/* ---- the load generator ---- */

struct sent {
    char id[MSG_ID_HEX + 1];
    uint64_t t_ns;
};

struct slot {
    CURL *h;
    struct curl_slist *hdr;
    uint64_t t0;
    char resp[RESP_MAX];
    struct bench_buf reply; /* into resp */
};

struct load {
    /* what to send */
    char url[160];
    const struct bench_secret *key;
    const char *body;
    size_t body_len;
    double seconds;
    size_t max_msgs; /* 0: as many as fit in seconds */
    double rate;     /* 0: closed loop; else requests started per second */
    int keep_ids;    /* note (message id, start) of every 202 */
    /* what came of it */
    size_t ok, bad;
    long bad_status;
    char bad_body[200];
    double elapsed; /* from the first start to the last answer */
    double *lat_ms;
    size_t nlat, caplat;
    struct sent *sent;
    size_t nsent, capsent;
};

static char id_prefix[20];
static unsigned long long id_counter;

/* A fresh webhook-id, timestamp and v1 signature on s. */
static void
sign_request(struct load *l, struct slot *s)
{
    char id[48];

    snprintf(id, sizeof id, "%s%llu", id_prefix, ++id_counter);
    bench_sign(&s->hdr, l->key, id, l->body, l->body_len);
    curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, s->hdr);
}

static void
finish(struct load *l, struct slot *s, CURLcode res, uint64_t t1)
{
    long status = -1;

    if (res == CURLE_OK)
        curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 202) {
        l->bad++;
        l->bad_status = status;
        snprintf(l->bad_body, sizeof l->bad_body, "%.150s", res == CURLE_OK ? s->resp : curl_easy_strerror(res));
        return;
    }
    l->ok++;
    if (l->nlat == l->caplat) {
        l->caplat = l->caplat > 0 ? l->caplat * 2 : 16384;
        l->lat_ms = bench_xrealloc(l->lat_ms, l->caplat * sizeof *l->lat_ms);
    }
    l->lat_ms[l->nlat++] = (double)(t1 - s->t0) / 1e6;
    if (l->keep_ids) {
        const char *p = strstr(s->resp, "\"id\":\"");

        if (p == NULL || strlen(p + 6) < MSG_ID_HEX)
            bench_die("a 202 without a message id: %s", s->resp);
        if (l->nsent == l->capsent) {
            l->capsent = l->capsent > 0 ? l->capsent * 2 : 16384;
            l->sent = bench_xrealloc(l->sent, l->capsent * sizeof *l->sent);
        }
        memcpy(l->sent[l->nsent].id, p + 6, MSG_ID_HEX);
        l->sent[l->nsent].id[MSG_ID_HEX] = '\0';
        l->sent[l->nsent++].t_ns = s->t0;
    }
}

/*
 * Drives l->url with CONC connections for l->seconds: closed loop (each
 * answer starts the next request at once) or, with l->rate, requests
 * started at that pace while a connection is free.
 */
static void
load_run(struct load *l)
{
    struct slot *slots = calloc(CONC, sizeof *slots);
    size_t free_n = 0, started = 0, i;
    struct slot *free_list[CONC];
    uint64_t start, deadline, next, last = 0, step;
    CURLM *m = curl_multi_init();
    int running, inflight = 0;

    if (slots == NULL || m == NULL)
        bench_die("out of memory");
    l->ok = l->bad = l->nlat = l->nsent = 0;
    for (i = 0; i < CONC; i++) {
        struct slot *s = &slots[i];

        s->h = bench_easy(HTTP_TIMEOUT_MS, &s->reply);
        curl_easy_setopt(s->h, CURLOPT_URL, l->url);
        curl_easy_setopt(s->h, CURLOPT_POST, 1L);
        curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, l->body);
        curl_easy_setopt(s->h, CURLOPT_POSTFIELDSIZE, (long)l->body_len);
        curl_easy_setopt(s->h, CURLOPT_PRIVATE, s);
        free_list[free_n++] = s;
    }
    start = bench_now_ns();
    deadline = start + (uint64_t)(l->seconds * 1e9);
    step = l->rate > 0 ? (uint64_t)(1e9 / l->rate) : 0;
    next = start;
    for (;;) {
        uint64_t now = bench_now_ns();
        CURLMsg *msg;
        int left;
        long wait_ms;

        if (l->max_msgs > 0 && started >= l->max_msgs)
            deadline = now;
        while (free_n > 0 && now < deadline && now >= next && (l->max_msgs == 0 || started < l->max_msgs)) {
            struct slot *s = free_list[--free_n];

            sign_request(l, s);
            bench_buf_init(&s->reply, s->resp, sizeof s->resp);
            s->t0 = now;
            if (curl_multi_add_handle(m, s->h) != CURLM_OK)
                bench_die("curl_multi_add_handle failed");
            inflight++;
            started++;
            next = step > 0 ? next + step : now;
        }
        if (inflight == 0 && now >= deadline)
            break;
        /* After adding handles, perform before polling: a poll alone does not start them (DESIGN.md, pitfalls). */
        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            struct slot *s;

            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            last = bench_now_ns();
            finish(l, s, msg->data.result, last);
            curl_multi_remove_handle(m, s->h);
            free_list[free_n++] = s;
            inflight--;
        }
        now = bench_now_ns();
        if (free_n > 0 && now < deadline && now >= next && (l->max_msgs == 0 || started < l->max_msgs))
            continue;
        wait_ms = 100;
        if (free_n > 0 && now < deadline && next > now)
            wait_ms = (long)((next - now + 999999) / 1000000);
        curl_multi_poll(m, NULL, 0, (int)(wait_ms < 100 ? wait_ms : 100), NULL);
    }
    l->elapsed = (double)(last - start) / 1e9;
    for (i = 0; i < CONC; i++) {
        curl_easy_cleanup(slots[i].h);
        curl_slist_free_all(slots[i].hdr);
    }
    curl_multi_cleanup(m);
    free(slots);
    if (l->bad > 0)
        bench_die("%zu of %zu requests to %s were not answered 202; the last: %ld %s", l->bad, l->bad + l->ok, l->url,
                  l->bad_status, l->bad_body);
}

/* ---- baselines: sealing, redis-benchmark ---- */

struct sealer {
    ng_seal_params sp;
    int cpu; /* the one CPU to seal on, -1 for any */
    uint8_t *out;
    size_t cap;
    unsigned long n;
    double seconds;
};

static void *
seal_loop(void *arg)
{
    struct sealer *s = arg;
    uint64_t t0 = bench_now_ns(), until = t0 + (uint64_t)(seal_s * 1e9), t = t0;
    size_t len;

    if (s->cpu >= 0) {
        cpu_set_t set;

        CPU_ZERO(&set);
        CPU_SET(s->cpu, &set);
        if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
            bench_die("pthread_setaffinity_np failed");
        t0 = t = bench_now_ns(), until = t0 + (uint64_t)(seal_s * 1e9);
    }
    while (t < until) {
        int i;

        for (i = 0; i < 16; i++) {
            if (ng_parcel_seal(s->out, s->cap, &len, &s->sp) != NG_OK)
                bench_die("ng_parcel_seal failed");
            s->n++;
        }
        t = bench_now_ns();
    }
    s->seconds = (double)(t - t0) / 1e9;
    return NULL;
}

/* Seals a second on `threads` threads, as the gateway seals: X, default suite, the meta it writes, one shared ss
 * cache; on CPU cpu alone if it is not -1. */
static double
seal_rate(const ng_seal_params *sp, unsigned threads, int cpu)
{
    struct sealer s[MAX_THREADS];
    pthread_t t[MAX_THREADS];
    double rate = 0;
    unsigned i;

    for (i = 0; i < threads; i++) {
        memset(&s[i], 0, sizeof s[i]);
        s[i].sp = *sp;
        s[i].cpu = cpu;
        s[i].cap = ng_parcel_sealed_size(sp);
        s[i].out = bench_xmalloc(s[i].cap);
        if (pthread_create(&t[i], NULL, seal_loop, &s[i]) != 0)
            bench_die("pthread_create failed");
    }
    for (i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        rate += (double)s[i].n / s[i].seconds;
        free(s[i].out);
    }
    return rate;
}

/* redis-benchmark XADD of a value of `size` bytes on gateway a's embedded server: its requests per second, 0 if it
 * failed. */
static double
xadd_rate(const char *sock, size_t size)
{
    char n[16], c[16], *value = bench_xmalloc(size + 1), *out = bench_xmalloc(1 << 20), *p, *q;
    const char *argv[] = {"redis-benchmark", "-s", sock, "-n",  n,   "-c", c, "-P", "1", "-q", "XADD",
                          "ngbench:stream",  "*",  "f",  value, NULL};
    char log[PATH_MAX + 32];
    double rate = 0;
    redisContext *r;

    memset(value, 'x', size);
    value[size] = '\0';
    snprintf(n, sizeof n, "%d", REDIS_REQUESTS);
    snprintf(c, sizeof c, "%d", REDIS_CLIENTS);
    snprintf(log, sizeof log, "%s/redis-benchmark.log", bench.dir);
    if (bench_exited_zero(bench_run(argv, out, 1 << 20, log))) {
        /* "XADD ...: 12345.67 requests per second, p50=..." after carriage-return progress lines. */
        for (p = out; (q = strstr(p, " requests per second")) != NULL; p = q + 1) {
            char *num = q;

            while (num > out && num[-1] != ' ')
                num--;
            rate = strtod(num, NULL);
        }
    }
    free(value);
    free(out);
    /* The stream goes; the gateway's data stays. */
    r = redisConnectUnix(sock);
    if (r != NULL && r->err == 0)
        freeReplyObject(redisCommand(r, "DEL ngbench:stream"));
    if (r != NULL)
        redisFree(r);
    return rate;
}

/* ---- where the time goes: CPU of each process from /proc ---- */

/* The machine's busy time (all CPUs, every process and the kernel) from the first line of /proc/stat. */
static double
machine_busy_seconds(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    int n;

    if (f == NULL)
        return 0;
    /* user nice system idle iowait irq softirq steal */
    n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
               &v[7]);
    fclose(f);
    if (n != 8)
        return 0;
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

struct procs {
    const char *name[N_PROCS];
    pid_t pid[N_PROCS];
    double cpu_s[N_PROCS]; /* summed over the runs */
    double wall_s;
    double msgs;
};

/* User and system time of pid; with children, also of the children it waited for (redis-benchmark). */
static double
cpu_seconds(pid_t pid, int children)
{
    char path[64], buf[1024], *p;
    unsigned long long ut = 0, st = 0, cut = 0, cst = 0;
    FILE *f;
    size_t n;
    int i;

    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    /* After the name: state, then fields 4-13, then utime, stime, cutime and cstime (14-17), in clock ticks. */
    for (i = 0; p != NULL && i < 12; i++)
        p = strchr(p + 1, ' ');
    if (p == NULL || sscanf(p, " %llu %llu %llu %llu", &ut, &st, &cut, &cst) != 4)
        return 0;
    return (double)(ut + st + (children ? cut + cst : 0)) / (double)sysconf(_SC_CLK_TCK);
}

static void
procs_init(struct procs *ps)
{
    memset(ps, 0, sizeof *ps);
    ps->name[0] = "gateway a", ps->pid[0] = gw_a.pid;
    ps->name[1] = "redis a", ps->pid[1] = bench_redis_pid(&gw_a);
    ps->name[2] = "gateway b", ps->pid[2] = gw_b.pid;
    ps->name[3] = "redis b", ps->pid[3] = bench_redis_pid(&gw_b);
    ps->name[4] = "this program", ps->pid[4] = getpid();
    ps->name[5] = "other", ps->pid[5] = 0; /* the machine's busy time less the above */
}

static void
procs_sample(const struct procs *ps, double *out)
{
    int i;

    out[N_PROCS - 1] = machine_busy_seconds();
    for (i = 0; i < N_PROCS - 1; i++) {
        out[i] = cpu_seconds(ps->pid[i], ps->pid[i] == getpid());
        out[N_PROCS - 1] -= out[i];
    }
}

/* What each process used since before was sampled at t_before. */
static void
procs_add(struct procs *ps, const double *before, uint64_t t_before, double msgs)
{
    double after[N_PROCS];
    int i;

    procs_sample(ps, after);
    for (i = 0; i < N_PROCS; i++)
        ps->cpu_s[i] += after[i] - before[i];
    ps->wall_s += (double)(bench_now_ns() - t_before) / 1e9;
    ps->msgs += msgs;
}

static void
procs_print(const struct procs *ps, const char *what, const char *size, long cores)
{
    double ours = 0;
    int i;

    printf("  during %s, %s: %.0f messages in %.1f s; %% of one core (of %ld00%%), and us of CPU per message\n", what,
           size, ps->msgs, ps->wall_s, cores);
    for (i = 0; i < N_PROCS - 1; i++) {
        ours += ps->cpu_s[i];
        printf("    %-14s %5.0f%%  %7.1f us\n", ps->name[i], 100 * ps->cpu_s[i] / ps->wall_s,
               ps->msgs > 0 ? 1e6 * ps->cpu_s[i] / ps->msgs : 0);
    }
    printf("    %-14s %5.0f%%  %7.1f us\n", "sum", 100 * ours / ps->wall_s, ps->msgs > 0 ? 1e6 * ours / ps->msgs : 0);
    printf("    %-14s %5.0f%%  (other processes and the kernel: a busy machine skews every figure)\n", "other",
           100 * ps->cpu_s[N_PROCS - 1] / ps->wall_s);
}

/* ---- one core for gateway a ---- */

/*
 * The seal rate is a figure for one core, and on a small machine the load
 * generator and the Redis servers take cores the gateway would otherwise
 * seal on. So the accept rate that is held to the seal rate is measured with
 * gateway a's threads on CPU 0 and everything else on the other CPUs: what
 * the gateway does with one core against what sealing does with one core.
 */
static void
pin_tasks(pid_t pid, const cpu_set_t *set)
{
    char path[64];
    struct dirent *d;
    DIR *dir;

    snprintf(path, sizeof path, "/proc/%ld/task", (long)pid);
    dir = opendir(path);
    if (dir == NULL)
        return;
    while ((d = readdir(dir)) != NULL) {
        long tid = strtol(d->d_name, NULL, 10);

        /* A thread may end between the listing and the call. */
        if (tid > 0 && sched_setaffinity((pid_t)tid, sizeof *set, set) != 0 && errno != ESRCH)
            bench_die("sched_setaffinity failed");
    }
    closedir(dir);
}

/* pinned: gateway a on the first allowed CPU, the rest on the others; else everything on every allowed CPU. */
static void
pin_gateway_a(int pinned)
{
    cpu_set_t one, rest = allowed;
    pid_t others[] = {bench_redis_pid(&gw_a), gw_b.pid, bench_redis_pid(&gw_b), getpid()};
    size_t i;

    CPU_ZERO(&one);
    CPU_SET(first_cpu, &one);
    CPU_CLR(first_cpu, &rest);
    pin_tasks(gw_a.pid, pinned ? &one : &allowed);
    for (i = 0; i < sizeof others / sizeof others[0]; i++)
        if (others[i] > 0)
            pin_tasks(others[i], pinned ? &rest : &allowed);
}

/* ---- end to end ---- */

static int
cmp_id(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

struct e2e {
    double rate; /* delivered per second, from the first POST to the last arrival */
    double *lat_ms;
    size_t nlat;
    size_t lost; /* accepted, not arrived in time */
};

/* Waits for the sink to have what l accepted, then joins each message id's POST with its first arrival. */
static void
e2e_collect(const struct load *l, struct e2e *e)
{
    uint64_t t0 = bench_now_ns(), first = UINT64_MAX, last = 0;
    size_t i = 0, j = 0, n;
    struct arrival *a;

    while (sink_count() < l->nsent && bench_now_ns() - t0 < (uint64_t)DRAIN_TIMEOUT_MS * 1000000u)
        bench_sleep_ms(20);
    pthread_mutex_lock(&sink.mu);
    n = sink.n;
    a = bench_xmalloc((n > 0 ? n : 1) * sizeof *a);
    memcpy(a, sink.a, n * sizeof *a);
    pthread_mutex_unlock(&sink.mu);
    qsort(a, n, sizeof *a, cmp_id);
    qsort(l->sent, l->nsent, sizeof *l->sent, cmp_id);
    e->lat_ms = bench_xmalloc((l->nsent > 0 ? l->nsent : 1) * sizeof *e->lat_ms);
    e->nlat = 0;
    while (i < l->nsent && j < n) {
        int c = strcmp(l->sent[i].id, a[j].id);

        if (c < 0) {
            i++;
        } else if (c > 0) {
            j++;
        } else {
            /* At least once: the first arrival of an id counts. */
            e->lat_ms[e->nlat++] = (double)(a[j].t_ns - l->sent[i].t_ns) / 1e6;
            first = l->sent[i].t_ns < first ? l->sent[i].t_ns : first;
            last = a[j].t_ns > last ? a[j].t_ns : last;
            while (j < n && strcmp(a[j].id, l->sent[i].id) == 0)
                j++;
            i++;
        }
    }
    e->lost = l->nsent - e->nlat;
    e->rate = e->nlat > 0 && last > first ? (double)e->nlat / ((double)(last - first) / 1e9) : 0;
    free(a);
}

/* ---- main ---- */

struct figures {
    double accepted[REPS], p50[REPS], p99[REPS];
    double accepted1[REPS], p50_1[REPS], p99_1[REPS]; /* gateway a on one core */
    double e2e[REPS], e2e_p50[REPS], e2e_p99[REPS], paced[REPS];
    double seal1[REPS], sealn[REPS], xadd[REPS], trivial[REPS];
    double r_seal[REPS], r_seal1[REPS], r_xadd[REPS], r_trivial[REPS];
    size_t lost;
};

/* {"recipient": to, "content_type": "text/plain", "body": size x's} */
static char *
make_body(const char *to, size_t size, size_t *len)
{
    size_t cap = size + 128;
    char *b = bench_xmalloc(cap);
    int n = snprintf(b, cap, "{\"recipient\":\"%s\",\"content_type\":\"text/plain\",\"body\":\"", to);

    memset(b + n, 'x', size);
    snprintf(b + (size_t)n + size, cap - (size_t)n - size, "\"}");
    *len = strlen(b);
    return b;
}

int
main(void)
{
    char out[BENCH_OUT_MAX], params_a[BENCH_OUT_MAX], params_b[BENCH_OUT_MAX], params_c[BENCH_OUT_MAX], url[160],
        sock[PATH_MAX];
    struct bench_secret alice_key;
    uint8_t run_id[6];
    size_t si;
    long cores;
    unsigned threads;
    struct figures fig[N_SIZES];
    struct procs cpu_accept[N_SIZES], cpu_pinned[N_SIZES], cpu_e2e[N_SIZES];
    struct MHD_Daemon *trivial;
    int trivial_port, rep;
    ng_keypair recipient, sender;
    ng_ss_cache *cache;
    uint64_t t_begin = bench_now_ns();
    static const char meta[] = "{\"content_type\":\"text/plain\"}";
    char *bodies_carol[N_SIZES], *bodies_bob[N_SIZES];
    size_t len_carol[N_SIZES], len_bob[N_SIZES];
    double e2e_rate[N_SIZES], whole_before[N_PROCS];
    struct procs whole;
    uint64_t t_whole;

    bench_init("bench_gateway", START_TIMEOUT_MS, STOP_TIMEOUT_MS);
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 || CPU_COUNT(&allowed) < 1)
        bench_die("sched_getaffinity failed");
    for (first_cpu = 0; !CPU_ISSET(first_cpu, &allowed); first_cpu++)
        ;
    cores = CPU_COUNT(&allowed);
    threads = (unsigned)(cores < MAX_THREADS ? cores : MAX_THREADS);
    bench_begin("make bench-gateway", "ngbench");
    randombytes_buf(run_id, sizeof run_id);
    {
        char hex[2 * sizeof run_id + 1];

        sodium_bin2hex(hex, sizeof hex, run_id, sizeof run_id);
        snprintf(id_prefix, sizeof id_prefix, "b%s_", hex);
    }
    memset(fig, 0, sizeof fig);

    /* The sink first: its URL goes into bob's backend. Threads per connection, as the harness's sinks. */
    sink.d = bench_mhd_start(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL,
                             sink_answer, 0, 30, &sink.port);
    trivial = bench_mhd_start(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG, trivial_answer, threads,
                              30, &trivial_port);
    if (sink.d == NULL || trivial == NULL)
        bench_die("cannot start libmicrohttpd on 127.0.0.1");
    bench_gw_init(&gw_a, BENCH_POLL_FAST);
    bench_gw_init(&gw_b, BENCH_POLL_FAST);
    bench_gw_init(&gw_c, BENCH_POLL_FAST);

    /* Offline, as an operator would: vaults, tenants, backends, connection parameters. */
    BENCH_CLI(&gw_a, out, "vault", "init");
    BENCH_CLI(&gw_b, out, "vault", "init");
    BENCH_CLI(&gw_c, out, "vault", "init");
    BENCH_CLI(&gw_a, out, "tenant", "create", "alice");
    BENCH_CLI(&gw_b, out, "tenant", "create", "bob");
    BENCH_CLI(&gw_c, out, "tenant", "create", "carol");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook/alice", sink.port);
    bench_backend_add(&gw_a, "alice", url, &alice_key);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook/bob", sink.port);
    BENCH_CLI(&gw_b, out, "backend", "add", "bob", "--url", url);
    bench_peer_export(&gw_a, "alice", params_a, sizeof params_a);
    bench_peer_export(&gw_b, "bob", params_b, sizeof params_b);
    bench_peer_export(&gw_c, "carol", params_c, sizeof params_c);
    BENCH_CLI(&gw_a, out, "peer", "import", "alice", params_b, "--name", "bob");
    BENCH_CLI(&gw_a, out, "peer", "import", "alice", params_c, "--name", "carol");
    BENCH_CLI(&gw_b, out, "peer", "import", "bob", params_a, "--name", "alice");
    bench_gw_start(&gw_a);
    bench_gw_start(&gw_b);
    snprintf(sock, sizeof sock, "%s/redis/redis.sock", gw_a.data);

    /* The seal baseline's keys and cache, as the gateway has them. */
    ng_keypair_generate(&recipient);
    ng_keypair_generate(&sender);
    if (ng_ss_cache_new(&cache, NG_SS_CACHE_DEFAULT_ENTRIES) != NG_OK)
        bench_die("ng_ss_cache_new failed");

    for (si = 0; si < N_SIZES; si++) {
        bodies_carol[si] = make_body("carol", sizes[si], &len_carol[si]);
        bodies_bob[si] = make_body("bob", sizes[si], &len_bob[si]);
        procs_init(&cpu_accept[si]);
        procs_init(&cpu_pinned[si]);
        procs_init(&cpu_e2e[si]);
    }

    printf("gateway load benchmark: gateways a and b on 127.0.0.1, each with its embedded redis-server (AOF "
           "everysec),\n%d connections, %ld cores, medians of %d runs\n",
           CONC, cores, REPS);
    fflush(stdout);

    /*
     * Warm up: connections, caches, the pollers' first rounds, and a first
     * end-to-end rate, which sizes the end-to-end runs: a closed loop for a
     * fixed time would leave a backlog to drain as long as the gateway is
     * slower end to end than at accepting.
     */
    for (si = 0; si < N_SIZES; si++) {
        struct load l;
        struct e2e e;

        memset(&l, 0, sizeof l);
        snprintf(l.url, sizeof l.url, "http://127.0.0.1:%d/v1/tenants/alice/messages", gw_a.port);
        l.key = &alice_key;
        l.body = bodies_carol[si], l.body_len = len_carol[si];
        l.seconds = warm_s;
        load_run(&l);
        l.body = bodies_bob[si], l.body_len = len_bob[si];
        l.keep_ids = 1;
        l.max_msgs = E2E_MIN;
        l.seconds = 60;
        sink_reset();
        load_run(&l);
        e2e_collect(&l, &e);
        e2e_rate[si] = e.rate;
        free(e.lat_ms);
        free(l.lat_ms);
        free(l.sent);
    }

    procs_init(&whole);
    procs_sample(&whole, whole_before);
    t_whole = bench_now_ns();
    for (rep = 0; rep < REPS; rep++) {
        for (si = 0; si < N_SIZES; si++) {
            struct figures *f = &fig[si];
            struct load l;
            struct e2e e;
            double before[N_PROCS];
            uint64_t t_before;
            ng_seal_params sp;

            memset(&l, 0, sizeof l);
            l.key = &alice_key;

            /* Baseline: the trivial handler, same requests, same generator. */
            snprintf(l.url, sizeof l.url, "http://127.0.0.1:%d/v1/tenants/alice/messages", trivial_port);
            l.body = bodies_carol[si], l.body_len = len_carol[si];
            l.seconds = accept_s;
            load_run(&l);
            f->trivial[rep] = (double)l.ok / l.elapsed;

            /* Accepted: gateway a, to carol (whose gateway never runs, so nothing downstream works). */
            snprintf(l.url, sizeof l.url, "http://127.0.0.1:%d/v1/tenants/alice/messages", gw_a.port);
            procs_sample(&cpu_accept[si], before);
            t_before = bench_now_ns();
            load_run(&l);
            procs_add(&cpu_accept[si], before, t_before, (double)l.ok);
            f->accepted[rep] = (double)l.ok / l.elapsed;
            f->p50[rep] = quantile(l.lat_ms, l.nlat, 0.50);
            f->p99[rep] = quantile(l.lat_ms, l.nlat, 0.99);

            /* Accepted again, gateway a given CPU 0 alone (pin_gateway_a). */
            if (cores > 1) {
                pin_gateway_a(1);
                procs_sample(&cpu_pinned[si], before);
                t_before = bench_now_ns();
                load_run(&l);
                procs_add(&cpu_pinned[si], before, t_before, (double)l.ok);
                pin_gateway_a(0);
                f->accepted1[rep] = (double)l.ok / l.elapsed;
                f->p50_1[rep] = quantile(l.lat_ms, l.nlat, 0.50);
                f->p99_1[rep] = quantile(l.lat_ms, l.nlat, 0.99);
            }

            /* Baselines: redis-benchmark on a's redis-server, and sealing. */
            f->xadd[rep] = xadd_rate(sock, sizes[si]);
            memset(&sp, 0, sizeof sp);
            sp.pattern = NG_PATTERN_X;
            sp.recipient_pub = recipient.pub;
            sp.sender = &sender;
            sp.meta = (const uint8_t *)meta;
            sp.meta_len = sizeof meta - 1;
            sp.body = (const uint8_t *)bodies_carol[si];
            sp.body_len = sizes[si];
            sp.ttl_ms = 86400000u;
            sp.cache = cache;
            f->seal1[rep] = seal_rate(&sp, 1, cores > 1 ? first_cpu : -1);
            f->sealn[rep] = seal_rate(&sp, threads, -1);

            /*
             * End to end at saturation: a closed loop to bob of about e2e_s
             * worth of messages at the last rate seen, then until every
             * accepted message arrived.
             */
            l.body = bodies_bob[si], l.body_len = len_bob[si];
            l.keep_ids = 1;
            l.seconds = 60;
            l.max_msgs = (size_t)(e2e_s * e2e_rate[si]);
            l.max_msgs = l.max_msgs < E2E_MIN ? E2E_MIN : l.max_msgs > E2E_MAX ? E2E_MAX : l.max_msgs;
            sink_reset();
            procs_sample(&cpu_e2e[si], before);
            t_before = bench_now_ns();
            load_run(&l);
            e2e_collect(&l, &e);
            procs_add(&cpu_e2e[si], before, t_before, (double)e.nlat);
            f->e2e[rep] = e.rate;
            e2e_rate[si] = e.rate;
            f->lost += e.lost;
            free(e.lat_ms);

            /* End-to-end latency at half that rate, offered at a steady pace. */
            l.rate = e.rate / 2 > 10 ? e.rate / 2 : 10;
            l.seconds = paced_s;
            l.max_msgs = 0;
            sink_reset();
            load_run(&l);
            e2e_collect(&l, &e);
            f->paced[rep] = l.rate;
            f->e2e_p50[rep] = quantile(e.lat_ms, e.nlat, 0.50);
            f->e2e_p99[rep] = quantile(e.lat_ms, e.nlat, 0.99);
            f->lost += e.lost;
            free(e.lat_ms);
            free(l.lat_ms);
            free(l.sent);

            f->r_seal[rep] = f->accepted[rep] / f->sealn[rep];
            f->r_seal1[rep] = (cores > 1 ? f->accepted1[rep] : f->accepted[rep]) / f->seal1[rep];
            f->r_xadd[rep] = f->xadd[rep] > 0 ? f->accepted[rep] / f->xadd[rep] : 0;
            f->r_trivial[rep] = f->accepted[rep] / f->trivial[rep];
            printf("run %d, %-5s: accepted %7.0f/s (p50 %.2f ms, p99 %.2f ms), on one core %7.0f/s, end to end "
                   "%6.0f/s (p50 %.1f ms, p99 %.1f ms at %.0f/s); seal %.0f/s x1, %.0f/s x%u; XADD %.0f/s; trivial "
                   "handler %.0f/s\n",
                   rep + 1, size_names[si], f->accepted[rep], f->p50[rep], f->p99[rep], f->accepted1[rep], f->e2e[rep],
                   f->e2e_p50[rep], f->e2e_p99[rep], f->paced[rep], f->seal1[rep], f->sealn[rep], threads, f->xadd[rep],
                   f->trivial[rep]);
            fflush(stdout);
        }
    }

    printf("\nmedians of %d runs (%s sealed by the gateway, per the webhooks' ce-ngpattern)\n", REPS,
           sink.pattern[0] != '\0' ? sink.pattern : "pattern unknown");
    printf("  %-46s %14s %14s\n", "", size_names[0], size_names[1]);
#define ROW(label, fmt, field)                                                                                         \
    printf("  %-46s " fmt " " fmt "\n", label, median(fig[0].field, REPS), median(fig[1].field, REPS))
    ROW("accepted (202) per second", "%14.0f", accepted);
    ROW("  202 latency p50, ms", "%14.2f", p50);
    ROW("  202 latency p99, ms", "%14.2f", p99);
    if (cores > 1) {
        ROW("accepted per second, gateway a on one core", "%14.0f", accepted1);
        ROW("  202 latency p50, ms", "%14.2f", p50_1);
        ROW("  202 latency p99, ms", "%14.2f", p99_1);
    }
    ROW("end to end per second (saturated)", "%14.0f", e2e);
    ROW("  end-to-end latency p50, ms (at half rate)", "%14.1f", e2e_p50);
    ROW("  end-to-end latency p99, ms (at half rate)", "%14.1f", e2e_p99);
    ROW("  (the half rate offered, per second)", "%14.0f", paced);
    ROW("baseline: seal X, 1 thread, per second", "%14.0f", seal1);
    printf("  %-46s %14.0f %14.0f\n", threads > 1 ? "baseline: seal X, all cores, per second" : "baseline: seal X",
           median(fig[0].sealn, REPS), median(fig[1].sealn, REPS));
    ROW("baseline: redis-benchmark XADD -c 50, per second", "%14.0f", xadd);
    ROW("baseline: trivial MHD handler, per second", "%14.0f", trivial);
    ROW(cores > 1 ? "ratio accepted (one core) / seal (1 thread)" : "ratio accepted / seal (1 thread)", "%14.2f",
        r_seal1);
    if (threads > 1)
        ROW("ratio accepted / seal (all cores)", "%14.2f", r_seal);
    ROW("ratio accepted / XADD", "%14.2f", r_xadd);
    ROW("ratio accepted / trivial handler", "%14.2f", r_trivial);
#undef ROW
    for (si = 0; si < N_SIZES; si++) {
        const struct figures *f = &fig[si];
        double ms = median(f->seal1, REPS), mx = median(f->xadd, REPS), mt = median(f->trivial, REPS);
        const char *name = cores > 1 ? "seal X on one core, against gateway a on one core" : "seal X";
        double ratio = median(f->r_seal1, REPS), smallest = ms;

        if (mx > 0 && mx < smallest)
            smallest = mx, name = "XADD", ratio = median(f->r_xadd, REPS);
        if (mt < smallest)
            smallest = mt, name = "trivial handler", ratio = median(f->r_trivial, REPS);
        printf("%-5s: the smallest baseline is %s (%.0f/s): accepted/baseline %.2f, target >= %.2f: %s\n",
               size_names[si], name, smallest, ratio, target, ratio >= target ? "MET" : "NOT MET");
        if (f->lost > 0)
            printf("%-5s: %zu accepted messages did not reach the sink within %d ms\n", size_names[si], f->lost,
                   DRAIN_TIMEOUT_MS);
    }
    procs_add(&whole, whole_before, t_whole, 0);
    printf("\nwhere the time goes (CPU by process, summed over the runs):\n");
    printf("  over all the runs, other processes and the kernel kept %.0f%% of one core busy (of %ld00%%)\n",
           100 * whole.cpu_s[N_PROCS - 1] / whole.wall_s, cores);
    for (si = 0; si < N_SIZES; si++) {
        procs_print(&cpu_accept[si], "the accept runs", size_names[si], cores);
        if (cores > 1)
            procs_print(&cpu_pinned[si], "the accept runs with gateway a on CPU 0", size_names[si], cores);
        procs_print(&cpu_e2e[si], "the end-to-end runs", size_names[si], cores);
    }

    bench_stop_all();
    MHD_stop_daemon(trivial);
    MHD_stop_daemon(sink.d);
    free(sink.a);
    for (si = 0; si < N_SIZES; si++) {
        free(bodies_carol[si]);
        free(bodies_bob[si]);
    }
    ng_ss_cache_free(cache);
    ng_keypair_wipe(&recipient);
    ng_keypair_wipe(&sender);
    sodium_memzero(&alice_key, sizeof alice_key);
    curl_global_cleanup();
    printf("%.0f s in all\n", (double)(bench_now_ns() - t_begin) / 1e9);
    return bench_remove_dir() == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

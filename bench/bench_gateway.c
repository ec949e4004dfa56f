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
 *                 p50/p99 latency of the 202.
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
 *                 seals, on 1 thread and on one thread per core (the fair
 *                 one: the gateway seals on its libmicrohttpd pool);
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
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <microhttpd.h>
#include <sodium.h>

#include "ng_envelope.h"
#include "ng_webhook.h"

extern char **environ;

enum {
    REPS = 3,
    CONC = 32,          /* connections of the load generator */
    REDIS_CLIENTS = 50, /* redis-benchmark -c */
    REDIS_REQUESTS = 50000,
    E2E_MIN = 300, /* messages in an end-to-end run, at least */
    E2E_MAX = 30000,
    MSG_ID_HEX = 32,
    RESP_MAX = 1024,
    OUT_MAX = 8192, /* what a CLI command prints */
    N_SIZES = 2,
    MAX_THREADS = 64,
    HTTP_TIMEOUT_MS = 30000,
    START_TIMEOUT_MS = 30000,
    STOP_TIMEOUT_MS = 20000,
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

/* ---- clock and statistics ---- */

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* The p-quantile (0..1) of v[0..n), which it sorts; 0 for none. */
static double
quantile(double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return v[(size_t)(p * (double)(n - 1) + 0.5)];
}

static double
median(const double *v, size_t n)
{
    double c[REPS * 2];

    memcpy(c, v, n * sizeof *v);
    return quantile(c, n, 0.5);
}

/* ---- failure ---- */

struct gw {
    const char *name;
    char cfg[PATH_MAX], data[PATH_MAX / 2], log[PATH_MAX];
    int port;
    pid_t pid;
};

static char ng_bin[PATH_MAX], dir[PATH_MAX / 4];
static struct gw gw_a = {.name = "a"}, gw_b = {.name = "b"}, gw_c = {.name = "c"};

static void stop_all(void);

static _Noreturn void
die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "bench_gateway: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    stop_all();
    if (dir[0] != '\0')
        fprintf(stderr, "bench_gateway: kept %s (logs, configurations)\n", dir);
    exit(EXIT_FAILURE);
}

static void *
xmalloc(size_t n)
{
    void *p = malloc(n);

    if (p == NULL)
        die("out of memory");
    return p;
}

static void *
xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL)
        die("out of memory");
    return p;
}

/* ---- processes: the CLI and the gateways ---- */

/* Spawns argv (PATH searched) with stdin from /dev/null, stdout to out_fd (-1: /dev/null), stderr appended to log. */
static pid_t
spawn(const char *const *argv, int out_fd, const char *log)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t set;
    pid_t pid;
    int rc;

    if (posix_spawn_file_actions_init(&fa) != 0 || posix_spawnattr_init(&attr) != 0)
        die("posix_spawn setup failed");
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (out_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    else
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    /* The child gets default signal actions and mask, whatever this process ignores. */
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    posix_spawnattr_setsigdefault(&attr, &set);
    sigemptyset(&set);
    posix_spawnattr_setsigmask(&attr, &set);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    rc = posix_spawnp(&pid, argv[0], &fa, &attr, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return rc == 0 ? pid : -1;
}

/* Runs argv to its end; its stdout into out (cap bytes, NUL-terminated); the exit status, or -1. */
static int
run(const char *const *argv, char *out, size_t cap, const char *log)
{
    int fds[2], st;
    size_t len = 0;
    ssize_t n;
    pid_t pid;

    if (pipe(fds) != 0)
        die("pipe: %s", strerror(errno));
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    pid = spawn(argv, fds[1], log);
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return -1;
    }
    /* Read to the end whatever the room: a child blocked on a full pipe would never exit. */
    for (;;) {
        char sink[4096];
        n = read(fds[0], len + 1 < cap ? out + len : sink, len + 1 < cap ? cap - 1 - len : sizeof sink);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (len + 1 < cap)
            len += (size_t)n;
    }
    out[len] = '\0';
    close(fds[0]);
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* `noisegate ARGS --config g->cfg`, which must exit 0; its stdout in out. */
static void
cli(const struct gw *g, char *out, size_t cap, const char *const *args)
{
    const char *argv[16];
    size_t n = 0;

    argv[n++] = ng_bin;
    while (*args != NULL && n < 13)
        argv[n++] = *args++;
    argv[n++] = "--config";
    argv[n++] = g->cfg;
    argv[n] = NULL;
    if (run(argv, out, cap, g->log) != 0)
        die("`noisegate %s %s ...` on %s failed; see %s", argv[1], argv[2], g->name, g->log);
}

#define CLI(g, out, ...) cli((g), (out), sizeof(out), (const char *const[]){__VA_ARGS__, NULL})

/* A port nothing listens on now (the kernel's choice, as nginx_server_free_port in tests/unit does). */
static int
free_port(void)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/*
 * g's configuration: loopback, its data directory, webhooks and polling
 * allowed to 127.0.0.1, polls every 50-200 ms; every other field at its
 * default (embedded Redis with AOF everysec, a pool of one thread per core,
 * info logs).
 */
static void
gw_init(struct gw *g, int port)
{
    FILE *f;

    snprintf(g->cfg, sizeof g->cfg, "%s/%s.json", dir, g->name);
    snprintf(g->data, sizeof g->data, "%s/%s", dir, g->name);
    snprintf(g->log, sizeof g->log, "%s/%s.log", dir, g->name);
    g->port = port;
    f = fopen(g->cfg, "w");
    if (f == NULL)
        die("cannot write %s: %s", g->cfg, strerror(errno));
    fprintf(f,
            "{\"data_dir\": \"%s\", \"public_url\": \"http://127.0.0.1:%d\",\n"
            " \"listen\": {\"address\": \"127.0.0.1\", \"port\": %d},\n"
            " \"delivery\": {\"allow_private\": [\"127.0.0.1\"]},\n"
            " \"poll\": {\"interval_ms\": 50, \"max_interval_ms\": 200},\n"
            " \"log\": {\"format\": \"json\"}}\n",
            g->data, port, port);
    if (fclose(f) != 0)
        die("cannot write %s", g->cfg);
}

static size_t
discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

static long
get_status(const char *url)
{
    CURL *c = curl_easy_init();
    long status = -1;

    if (c == NULL)
        return -1;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

/* `noisegate serve` on g, and waits for /readyz. */
static void
gw_start(struct gw *g)
{
    const char *argv[] = {ng_bin, "serve", "--config", g->cfg, NULL};
    char url[128];
    uint64_t t0 = now_ns();

    g->pid = spawn(argv, -1, g->log);
    if (g->pid < 0)
        die("cannot start %s", ng_bin);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", g->port);
    while (get_status(url) != 200) {
        if (waitpid(g->pid, NULL, WNOHANG) == g->pid) {
            g->pid = 0;
            die("gateway %s exited at start; see %s", g->name, g->log);
        }
        if (now_ns() - t0 > (uint64_t)START_TIMEOUT_MS * 1000000u)
            die("gateway %s is not ready after %d ms; see %s", g->name, START_TIMEOUT_MS, g->log);
        sleep_ms(50);
    }
}

/* The pid of g's embedded redis-server if one runs (its pid file, and a redis-server at that pid); else 0. */
static pid_t
redis_pid(const struct gw *g)
{
    char path[PATH_MAX + 32], cmd[256] = "";
    FILE *f;
    long pid = 0;
    size_t n = 0;

    snprintf(path, sizeof path, "%s/redis/redis.pid", g->data);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    if (pid <= 0 || kill((pid_t)pid, 0) != 0)
        return 0;
    snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
    f = fopen(path, "r");
    if (f != NULL) {
        n = fread(cmd, 1, sizeof cmd - 1, f);
        fclose(f);
    }
    cmd[n] = '\0';
    return strstr(cmd, "redis-server") != NULL ? (pid_t)pid : 0;
}

/* SIGTERM (a gateway drains and stops its redis-server), then SIGKILL after STOP_TIMEOUT_MS; then its redis too. */
static void
gw_stop(struct gw *g)
{
    uint64_t t0 = now_ns();
    pid_t r;

    if (g->pid > 0 && kill(g->pid, SIGTERM) == 0) {
        while (waitpid(g->pid, NULL, WNOHANG) == 0) {
            if (now_ns() - t0 > (uint64_t)STOP_TIMEOUT_MS * 1000000u) {
                kill(g->pid, SIGKILL);
                waitpid(g->pid, NULL, 0);
                break;
            }
            sleep_ms(10);
        }
    }
    g->pid = 0;
    if (g->data[0] != '\0' && (r = redis_pid(g)) > 0) {
        t0 = now_ns();
        kill(r, SIGTERM);
        while (kill(r, 0) == 0 && now_ns() - t0 < 5000000000u)
            sleep_ms(10);
        if (kill(r, 0) == 0)
            kill(r, SIGKILL);
    }
}

static void
stop_all(void)
{
    gw_stop(&gw_a);
    gw_stop(&gw_b);
}

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
    static char empty[] = "";
    uint64_t t = now_ns();
    struct MHD_Response *r;
    enum MHD_Result rc;
    const char *id, *pat;

    (void)cls, (void)url, (void)method, (void)version, (void)upload;
    if (*state == NULL) { /* headers only: answer after the body (DESIGN.md, pitfalls) */
        *state = &sink;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        *upload_size = 0;
        return MHD_YES;
    }
    id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "webhook-id");
    pat = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "ce-ngpattern");
    pthread_mutex_lock(&sink.mu);
    if (sink.n == sink.cap) {
        sink.cap = sink.cap > 0 ? sink.cap * 2 : 65536;
        sink.a = xrealloc(sink.a, sink.cap * sizeof *sink.a);
    }
    snprintf(sink.a[sink.n].id, sizeof sink.a[sink.n].id, "%s", id != NULL ? id : "");
    sink.a[sink.n++].t_ns = t;
    if (sink.pattern[0] == '\0' && pat != NULL)
        snprintf(sink.pattern, sizeof sink.pattern, "%s", pat);
    pthread_mutex_unlock(&sink.mu);
    r = MHD_create_response_from_buffer(0, empty, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    rc = MHD_queue_response(conn, 204, r);
    MHD_destroy_response(r);
    return rc;
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

/* An MHD daemon on 127.0.0.1, port chosen by the kernel; its port, or -1. */
static struct MHD_Daemon *
mhd_start(unsigned flags, MHD_AccessHandlerCallback fn, unsigned pool, int *port)
{
    const union MHD_DaemonInfo *info;
    struct sockaddr_in sa;
    struct MHD_Daemon *d;

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (pool >= 2)
        d = MHD_start_daemon(flags, 0, NULL, NULL, fn, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_THREAD_POOL_SIZE,
                             pool, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    else
        d = MHD_start_daemon(flags, 0, NULL, NULL, fn, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_CONNECTION_TIMEOUT,
                             30u, MHD_OPTION_END);
    if (d == NULL)
        return NULL;
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL) {
        MHD_stop_daemon(d);
        return NULL;
    }
    *port = info->port;
    return d;
}

/* ---- baseline: the trivial handler, with the gateway's threading (gateway/ng_server.c) ---- */

static enum MHD_Result
trivial_answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
               const char *upload, size_t *upload_size, void **state)
{
    static char body[] =
        "{\"id\":\"00000000000000000000000000000000\",\"expires\":1700000000000,\"recipient\":\"carol\"}";
    static int marker;
    struct MHD_Response *r;
    enum MHD_Result rc;

    (void)cls, (void)url, (void)method, (void)version, (void)upload;
    if (*state == NULL) {
        *state = &marker;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        *upload_size = 0;
        return MHD_YES;
    }
    r = MHD_create_response_from_buffer(sizeof body - 1, body, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    rc = MHD_queue_response(conn, 202, r);
    MHD_destroy_response(r);
    return rc;
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
    size_t resp_len;
};

struct load {
    /* what to send */
    char url[160];
    const uint8_t *secret;
    size_t secret_len;
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

static size_t
collect(char *p, size_t size, size_t n, void *ctx)
{
    struct slot *s = ctx;
    size_t len = size * n, room = sizeof s->resp - 1 - s->resp_len;

    memcpy(s->resp + s->resp_len, p, len < room ? len : room);
    s->resp_len += len < room ? len : room;
    return len;
}

/* A fresh webhook-id, timestamp and v1 signature on s, as a backend's Standard Webhooks library makes them. */
static void
sign_request(struct load *l, struct slot *s)
{
    char id[48], sig[NG_WEBHOOK_SIGNATURE_BYTES], line[NG_WEBHOOK_SIGNATURE_BYTES + 64];
    int64_t ts = (int64_t)time(NULL);

    snprintf(id, sizeof id, "%s%llu", id_prefix, ++id_counter);
    if (ng_webhook_sign_v1(sig, l->secret, l->secret_len, id, ts, (const uint8_t *)l->body, l->body_len) != NG_OK)
        die("ng_webhook_sign_v1 failed");
    curl_slist_free_all(s->hdr);
    s->hdr = curl_slist_append(NULL, "Content-Type: application/json");
    s->hdr = curl_slist_append(s->hdr, "Expect:");
    snprintf(line, sizeof line, "webhook-id: %s", id);
    s->hdr = curl_slist_append(s->hdr, line);
    snprintf(line, sizeof line, "webhook-timestamp: %lld", (long long)ts);
    s->hdr = curl_slist_append(s->hdr, line);
    snprintf(line, sizeof line, "webhook-signature: %s", sig);
    s->hdr = curl_slist_append(s->hdr, line);
    if (s->hdr == NULL)
        die("out of memory");
    curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, s->hdr);
}

static void
finish(struct load *l, struct slot *s, CURLcode res, uint64_t t1)
{
    long status = -1;

    if (res == CURLE_OK)
        curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
    s->resp[s->resp_len] = '\0';
    if (status != 202) {
        l->bad++;
        l->bad_status = status;
        snprintf(l->bad_body, sizeof l->bad_body, "%.150s", res == CURLE_OK ? s->resp : curl_easy_strerror(res));
        return;
    }
    l->ok++;
    if (l->nlat == l->caplat) {
        l->caplat = l->caplat > 0 ? l->caplat * 2 : 16384;
        l->lat_ms = xrealloc(l->lat_ms, l->caplat * sizeof *l->lat_ms);
    }
    l->lat_ms[l->nlat++] = (double)(t1 - s->t0) / 1e6;
    if (l->keep_ids) {
        const char *p = strstr(s->resp, "\"id\":\"");

        if (p == NULL || strlen(p + 6) < MSG_ID_HEX)
            die("a 202 without a message id: %s", s->resp);
        if (l->nsent == l->capsent) {
            l->capsent = l->capsent > 0 ? l->capsent * 2 : 16384;
            l->sent = xrealloc(l->sent, l->capsent * sizeof *l->sent);
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
        die("out of memory");
    l->ok = l->bad = l->nlat = l->nsent = 0;
    for (i = 0; i < CONC; i++) {
        struct slot *s = &slots[i];

        s->h = curl_easy_init();
        if (s->h == NULL)
            die("curl_easy_init failed");
        curl_easy_setopt(s->h, CURLOPT_URL, l->url);
        curl_easy_setopt(s->h, CURLOPT_POST, 1L);
        curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, l->body);
        curl_easy_setopt(s->h, CURLOPT_POSTFIELDSIZE, (long)l->body_len);
        curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
        curl_easy_setopt(s->h, CURLOPT_PRIVATE, s);
        curl_easy_setopt(s->h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(s->h, CURLOPT_PROXY, "");
        curl_easy_setopt(s->h, CURLOPT_TIMEOUT_MS, (long)HTTP_TIMEOUT_MS);
        free_list[free_n++] = s;
    }
    start = now_ns();
    deadline = start + (uint64_t)(l->seconds * 1e9);
    step = l->rate > 0 ? (uint64_t)(1e9 / l->rate) : 0;
    next = start;
    for (;;) {
        uint64_t now = now_ns();
        CURLMsg *msg;
        int left;
        long wait_ms;

        if (l->max_msgs > 0 && started >= l->max_msgs)
            deadline = now;
        while (free_n > 0 && now < deadline && now >= next && (l->max_msgs == 0 || started < l->max_msgs)) {
            struct slot *s = free_list[--free_n];

            sign_request(l, s);
            s->resp_len = 0;
            s->t0 = now;
            if (curl_multi_add_handle(m, s->h) != CURLM_OK)
                die("curl_multi_add_handle failed");
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
            last = now_ns();
            finish(l, s, msg->data.result, last);
            curl_multi_remove_handle(m, s->h);
            free_list[free_n++] = s;
            inflight--;
        }
        now = now_ns();
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
        die("%zu of %zu requests to %s were not answered 202; the last: %ld %s", l->bad, l->bad + l->ok, l->url,
            l->bad_status, l->bad_body);
}

/* ---- baselines: sealing, redis-benchmark ---- */

struct sealer {
    ng_seal_params sp;
    uint8_t *out;
    size_t cap;
    unsigned long n;
    double seconds;
};

static void *
seal_loop(void *arg)
{
    struct sealer *s = arg;
    uint64_t t0 = now_ns(), until = t0 + (uint64_t)(seal_s * 1e9), t = t0;
    size_t len;

    while (t < until) {
        int i;

        for (i = 0; i < 16; i++) {
            if (ng_parcel_seal(s->out, s->cap, &len, &s->sp) != NG_OK)
                die("ng_parcel_seal failed");
            s->n++;
        }
        t = now_ns();
    }
    s->seconds = (double)(t - t0) / 1e9;
    return NULL;
}

/* Seals a second on `threads` threads, as the gateway seals: X, default suite, the meta it writes, one shared ss
 * cache. */
static double
seal_rate(const ng_seal_params *sp, unsigned threads)
{
    struct sealer s[MAX_THREADS];
    pthread_t t[MAX_THREADS];
    double rate = 0;
    unsigned i;

    for (i = 0; i < threads; i++) {
        memset(&s[i], 0, sizeof s[i]);
        s[i].sp = *sp;
        s[i].cap = ng_parcel_sealed_size(sp);
        s[i].out = xmalloc(s[i].cap);
        if (pthread_create(&t[i], NULL, seal_loop, &s[i]) != 0)
            die("pthread_create failed");
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
    char n[16], c[16], *value = xmalloc(size + 1), *out = xmalloc(1 << 20), *p, *q;
    const char *argv[] = {"redis-benchmark", "-s", sock, "-n",  n,   "-c", c, "-P", "1", "-q", "XADD",
                          "ngbench:stream",  "*",  "f",  value, NULL};
    char log[PATH_MAX + 32];
    double rate = 0;
    redisContext *r;

    memset(value, 'x', size);
    value[size] = '\0';
    snprintf(n, sizeof n, "%d", REDIS_REQUESTS);
    snprintf(c, sizeof c, "%d", REDIS_CLIENTS);
    snprintf(log, sizeof log, "%s/redis-benchmark.log", dir);
    if (run(argv, out, 1 << 20, log) == 0) {
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
    ps->name[1] = "redis a", ps->pid[1] = redis_pid(&gw_a);
    ps->name[2] = "gateway b", ps->pid[2] = gw_b.pid;
    ps->name[3] = "redis b", ps->pid[3] = redis_pid(&gw_b);
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
    ps->wall_s += (double)(now_ns() - t_before) / 1e9;
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
    uint64_t t0 = now_ns(), first = UINT64_MAX, last = 0;
    size_t i = 0, j = 0, n;
    struct arrival *a;

    while (sink_count() < l->nsent && now_ns() - t0 < (uint64_t)DRAIN_TIMEOUT_MS * 1000000u)
        sleep_ms(20);
    pthread_mutex_lock(&sink.mu);
    n = sink.n;
    a = xmalloc((n > 0 ? n : 1) * sizeof *a);
    memcpy(a, sink.a, n * sizeof *a);
    pthread_mutex_unlock(&sink.mu);
    qsort(a, n, sizeof *a, cmp_id);
    qsort(l->sent, l->nsent, sizeof *l->sent, cmp_id);
    e->lat_ms = xmalloc((l->nsent > 0 ? l->nsent : 1) * sizeof *e->lat_ms);
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
    double e2e[REPS], e2e_p50[REPS], e2e_p99[REPS], paced[REPS];
    double seal1[REPS], sealn[REPS], xadd[REPS], trivial[REPS];
    double r_seal[REPS], r_xadd[REPS], r_trivial[REPS];
    size_t lost;
};

/* {"recipient": to, "content_type": "text/plain", "body": size x's} */
static char *
make_body(const char *to, size_t size, size_t *len)
{
    size_t cap = size + 128;
    char *b = xmalloc(cap);
    int n = snprintf(b, cap, "{\"recipient\":\"%s\",\"content_type\":\"text/plain\",\"body\":\"", to);

    memset(b + n, 'x', size);
    snprintf(b + (size_t)n + size, cap - (size_t)n - size, "\"}");
    *len = strlen(b);
    return b;
}

static const char *
word_after(const char *text, const char *prefix, char *out, size_t cap)
{
    const char *p = strstr(text, prefix);
    size_t n;

    if (p == NULL)
        return NULL;
    n = strcspn(p, " \t\r\n");
    if (n >= cap)
        return NULL;
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

int
main(void)
{
    char out[OUT_MAX], whsec[128], params_a[OUT_MAX], params_b[OUT_MAX], params_c[OUT_MAX], url[160], sock[PATH_MAX];
    uint8_t secret[NG_WEBHOOK_SECRET_MAX], run_id[6];
    size_t secret_len, si;
    const char *bin = getenv("NG_BIN");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned threads = cores > 0 ? (unsigned)(cores < MAX_THREADS ? cores : MAX_THREADS) : 1;
    struct figures fig[N_SIZES];
    struct procs cpu_accept[N_SIZES], cpu_e2e[N_SIZES];
    struct MHD_Daemon *trivial;
    int trivial_port, port_a, port_b, port_c, rep;
    ng_keypair recipient, sender;
    ng_ss_cache *cache;
    uint64_t t_begin = now_ns();
    static const char meta[] = "{\"content_type\":\"text/plain\"}";
    char *bodies_carol[N_SIZES], *bodies_bob[N_SIZES];
    size_t len_carol[N_SIZES], len_bob[N_SIZES];
    double e2e_rate[N_SIZES], whole_before[N_PROCS];
    struct procs whole;
    uint64_t t_whole;

    if (bin == NULL) {
        fprintf(stderr, "bench_gateway: NG_BIN is not set: run it through make bench-gateway\n");
        return EXIT_FAILURE;
    }
    snprintf(ng_bin, sizeof ng_bin, "%s", bin);
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return EXIT_FAILURE;
    signal(SIGPIPE, SIG_IGN);
    randombytes_buf(run_id, sizeof run_id);
    {
        char hex[2 * sizeof run_id + 1];

        sodium_bin2hex(hex, sizeof hex, run_id, sizeof run_id);
        snprintf(id_prefix, sizeof id_prefix, "b%s_", hex);
    }
    snprintf(dir, sizeof dir, "%s/ngbench-XXXXXX", getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL)
        die("mkdtemp: %s", strerror(errno));
    memset(fig, 0, sizeof fig);

    /* The sink first: its URL goes into bob's backend. Threads per connection, as the harness's sinks. */
    sink.d = mhd_start(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL, sink_answer, 0,
                       &sink.port);
    trivial = mhd_start(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG, trivial_answer, threads,
                        &trivial_port);
    if (sink.d == NULL || trivial == NULL)
        die("cannot start libmicrohttpd on 127.0.0.1");
    port_a = free_port();
    do
        port_b = free_port();
    while (port_b == port_a);
    do
        port_c = free_port();
    while (port_c == port_a || port_c == port_b);
    if (port_a <= 0 || port_b <= 0 || port_c <= 0)
        die("no free port on 127.0.0.1");
    gw_init(&gw_a, port_a);
    gw_init(&gw_b, port_b);
    gw_init(&gw_c, port_c);

    /* Offline, as an operator would: vaults, tenants, backends, connection parameters. */
    CLI(&gw_a, out, "vault", "init");
    CLI(&gw_b, out, "vault", "init");
    CLI(&gw_c, out, "vault", "init");
    CLI(&gw_a, out, "tenant", "create", "alice");
    CLI(&gw_b, out, "tenant", "create", "bob");
    CLI(&gw_c, out, "tenant", "create", "carol");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook/alice", sink.port);
    CLI(&gw_a, out, "backend", "add", "alice", "--url", url);
    if (word_after(out, "whsec_", whsec, sizeof whsec) == NULL ||
        ng_webhook_secret_parse(whsec, secret, sizeof secret, &secret_len) != NG_OK)
        die("`backend add` printed no whsec_ secret: %s", out);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook/bob", sink.port);
    CLI(&gw_b, out, "backend", "add", "bob", "--url", url);
    CLI(&gw_a, out, "peer", "export", "alice");
    if (word_after(out, "ngcp1:", params_a, sizeof params_a) == NULL)
        die("`peer export alice` printed no parameters");
    CLI(&gw_b, out, "peer", "export", "bob");
    if (word_after(out, "ngcp1:", params_b, sizeof params_b) == NULL)
        die("`peer export bob` printed no parameters");
    CLI(&gw_c, out, "peer", "export", "carol");
    if (word_after(out, "ngcp1:", params_c, sizeof params_c) == NULL)
        die("`peer export carol` printed no parameters");
    CLI(&gw_a, out, "peer", "import", "alice", params_b, "--name", "bob");
    CLI(&gw_a, out, "peer", "import", "alice", params_c, "--name", "carol");
    CLI(&gw_b, out, "peer", "import", "bob", params_a, "--name", "alice");
    gw_start(&gw_a);
    gw_start(&gw_b);
    snprintf(sock, sizeof sock, "%s/redis/redis.sock", gw_a.data);

    /* The seal baseline's keys and cache, as the gateway has them. */
    ng_keypair_generate(&recipient);
    ng_keypair_generate(&sender);
    if (ng_ss_cache_new(&cache, NG_SS_CACHE_DEFAULT_ENTRIES) != NG_OK)
        die("ng_ss_cache_new failed");

    for (si = 0; si < N_SIZES; si++) {
        bodies_carol[si] = make_body("carol", sizes[si], &len_carol[si]);
        bodies_bob[si] = make_body("bob", sizes[si], &len_bob[si]);
        procs_init(&cpu_accept[si]);
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
        snprintf(l.url, sizeof l.url, "http://127.0.0.1:%d/v1/tenants/alice/messages", port_a);
        l.secret = secret, l.secret_len = secret_len;
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
    t_whole = now_ns();
    for (rep = 0; rep < REPS; rep++) {
        for (si = 0; si < N_SIZES; si++) {
            struct figures *f = &fig[si];
            struct load l;
            struct e2e e;
            double before[N_PROCS];
            uint64_t t_before;
            ng_seal_params sp;

            memset(&l, 0, sizeof l);
            l.secret = secret, l.secret_len = secret_len;

            /* Baseline: the trivial handler, same requests, same generator. */
            snprintf(l.url, sizeof l.url, "http://127.0.0.1:%d/v1/tenants/alice/messages", trivial_port);
            l.body = bodies_carol[si], l.body_len = len_carol[si];
            l.seconds = accept_s;
            load_run(&l);
            f->trivial[rep] = (double)l.ok / l.elapsed;

            /* Accepted: gateway a, to carol (whose gateway never runs, so nothing downstream works). */
            snprintf(l.url, sizeof l.url, "http://127.0.0.1:%d/v1/tenants/alice/messages", port_a);
            procs_sample(&cpu_accept[si], before);
            t_before = now_ns();
            load_run(&l);
            procs_add(&cpu_accept[si], before, t_before, (double)l.ok);
            f->accepted[rep] = (double)l.ok / l.elapsed;
            f->p50[rep] = quantile(l.lat_ms, l.nlat, 0.50);
            f->p99[rep] = quantile(l.lat_ms, l.nlat, 0.99);

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
            f->seal1[rep] = seal_rate(&sp, 1);
            f->sealn[rep] = seal_rate(&sp, threads);

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
            t_before = now_ns();
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
            f->r_xadd[rep] = f->xadd[rep] > 0 ? f->accepted[rep] / f->xadd[rep] : 0;
            f->r_trivial[rep] = f->accepted[rep] / f->trivial[rep];
            printf("run %d, %-5s: accepted %7.0f/s (p50 %.2f ms, p99 %.2f ms), end to end %6.0f/s (p50 %.1f ms, "
                   "p99 %.1f ms at %.0f/s); seal %.0f/s x1, %.0f/s x%u; XADD %.0f/s; trivial handler %.0f/s\n",
                   rep + 1, size_names[si], f->accepted[rep], f->p50[rep], f->p99[rep], f->e2e[rep], f->e2e_p50[rep],
                   f->e2e_p99[rep], f->paced[rep], f->seal1[rep], f->sealn[rep], threads, f->xadd[rep],
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
    ROW("end to end per second (saturated)", "%14.0f", e2e);
    ROW("  end-to-end latency p50, ms (at half rate)", "%14.1f", e2e_p50);
    ROW("  end-to-end latency p99, ms (at half rate)", "%14.1f", e2e_p99);
    ROW("  (the half rate offered, per second)", "%14.0f", paced);
    ROW("baseline: seal X, 1 thread, per second", "%14.0f", seal1);
    printf("  %-46s %14.0f %14.0f\n", threads > 1 ? "baseline: seal X, all cores, per second" : "baseline: seal X",
           median(fig[0].sealn, REPS), median(fig[1].sealn, REPS));
    ROW("baseline: redis-benchmark XADD -c 50, per second", "%14.0f", xadd);
    ROW("baseline: trivial MHD handler, per second", "%14.0f", trivial);
    ROW("ratio accepted / seal (all cores)", "%14.2f", r_seal);
    ROW("ratio accepted / XADD", "%14.2f", r_xadd);
    ROW("ratio accepted / trivial handler", "%14.2f", r_trivial);
#undef ROW
    for (si = 0; si < N_SIZES; si++) {
        const struct figures *f = &fig[si];
        double ms = median(f->sealn, REPS), mx = median(f->xadd, REPS), mt = median(f->trivial, REPS);
        const char *name = "seal (all cores)";
        double ratio = median(f->r_seal, REPS), smallest = ms;

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
        procs_print(&cpu_e2e[si], "the end-to-end runs", size_names[si], cores);
    }

    stop_all();
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
    curl_global_cleanup();
    printf("%.0f s in all\n", (double)(now_ns() - t_begin) / 1e9);
    if (getenv("NG_KEEP") != NULL) {
        printf("kept %s\n", dir);
    } else {
        char cmd[PATH_MAX];

        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}

/*
 * bench_common.h: what the benchmarks that run real gateways share
 * (bench_gateway.c, bench_memory.c).
 *
 * - A run has one temporary directory (bench.dir) with each gateway's
 *   configuration, log and data directory, and one gateway binary
 *   (bench.ng_bin, from NG_BIN) that serves and is the CLI.
 * - Gateways are processes started and stopped by their PID, each with its
 *   embedded redis-server; bench_die stops every gateway bench_gw_init set
 *   up, and any redis-server one left, so that a failed run leaves nothing
 *   running.
 * - Backends' requests are signed with the library's Standard Webhooks code,
 *   as a backend's library would sign them; backends, sinks and stub peers
 *   are libmicrohttpd servers in the benchmark's own process.
 * Everything is static inline, as in tests/cli/gateway_harness.h: each
 * benchmark uses a part.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* For loopback_free_port, so that the tree has one copy. */
#include "../tests/unit/loopback.h"

#include <curl/curl.h>
#include <microhttpd.h>
#include <sodium.h>

#include "ng_webhook.h"

extern char **environ;

enum {
    BENCH_MAX_GATEWAYS = 4,
    BENCH_OUT_MAX = 16384, /* what a CLI command prints */
    BENCH_LOG_TAIL = 12000,
};

struct bench_gw {
    const char *name;
    char cfg[PATH_MAX], data[PATH_MAX / 2], log[PATH_MAX];
    int port;
    pid_t pid;
};

/* The run, set by bench_init and bench_begin; global because bench_die, called from anywhere, needs it. */
static struct {
    const char *prog; /* the prefix of every message */
    char ng_bin[PATH_MAX];
    char dir[PATH_MAX / 4];
    int start_timeout_ms, stop_timeout_ms;
    struct bench_gw *gw[BENCH_MAX_GATEWAYS]; /* what bench_stop_all stops */
    size_t ngw;
} bench;

/* ---- time ---- */

static inline uint64_t
bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t
bench_now_ms(void)
{
    return bench_now_ns() / 1000000u;
}

static inline void
bench_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static inline int
bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* ---- stopping gateways ---- */

/* The pid of g's embedded redis-server if one runs (its pid file, and a redis-server at that pid); else 0. */
static inline pid_t
bench_redis_pid(const struct bench_gw *g)
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

/* Stops a redis-server g left running (SIGTERM, then SIGKILL after 5 s); 1 if there was one. */
static inline int
bench_stop_redis(const struct bench_gw *g)
{
    pid_t r = g->data[0] != '\0' ? bench_redis_pid(g) : 0;
    uint64_t t0 = bench_now_ms();

    if (r <= 0)
        return 0;
    kill(r, SIGTERM);
    while (kill(r, 0) == 0 && bench_now_ms() - t0 < 5000)
        bench_sleep_ms(10);
    if (kill(r, 0) == 0)
        kill(r, SIGKILL);
    return 1;
}

/*
 * SIGTERM (the gateway drains and stops its redis-server), SIGKILL after
 * bench.stop_timeout_ms. The wait status, or -1 if it had to be killed.
 */
static inline int
bench_gw_stop(struct bench_gw *g)
{
    uint64_t t0 = bench_now_ms();
    int st = -1;

    if (g->pid > 0 && kill(g->pid, SIGTERM) == 0) {
        while (waitpid(g->pid, &st, WNOHANG) == 0) {
            if (bench_now_ms() - t0 > (uint64_t)bench.stop_timeout_ms) {
                kill(g->pid, SIGKILL);
                waitpid(g->pid, NULL, 0);
                st = -1;
                break;
            }
            bench_sleep_ms(10);
        }
    }
    g->pid = 0;
    return st;
}

static inline int
bench_exited_zero(int st)
{
    return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Every gateway of the run, then the redis-servers any left behind. */
static inline void
bench_stop_all(void)
{
    size_t i;

    for (i = 0; i < bench.ngw; i++)
        bench_gw_stop(bench.gw[i]);
    for (i = 0; i < bench.ngw; i++)
        bench_stop_redis(bench.gw[i]);
}

/* ---- failure ---- */

static inline _Noreturn void
bench_die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", bench.prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    bench_stop_all();
    if (bench.dir[0] != '\0')
        fprintf(stderr, "%s: kept %s (configurations, logs, data)\n", bench.prog, bench.dir);
    exit(EXIT_FAILURE);
}

static inline void *
bench_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL)
        bench_die("out of memory");
    return p;
}

static inline void *
bench_xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL)
        bench_die("out of memory");
    return p;
}

/* ---- the run ---- */

/*
 * What a benchmark does first: libsodium, libcurl, SIGPIPE ignored (a peer
 * hanging up must not kill the benchmark; children get the default back,
 * see bench_spawn), and the timeouts of bench_gw_start and bench_gw_stop.
 */
static inline void
bench_init(const char *prog, int start_timeout_ms, int stop_timeout_ms)
{
    bench.prog = prog;
    bench.start_timeout_ms = start_timeout_ms;
    bench.stop_timeout_ms = stop_timeout_ms;
    if (sodium_init() < 0)
        bench_die("sodium_init failed");
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        bench_die("curl_global_init failed");
}

/* The binary from NG_BIN (how: the make target that sets it) and a fresh $TMPDIR/prefix-XXXXXX. */
static inline void
bench_begin(const char *how, const char *prefix)
{
    const char *bin = getenv("NG_BIN"), *tmp = getenv("TMPDIR");

    if (bin == NULL)
        bench_die("NG_BIN is not set: run it through %s", how);
    snprintf(bench.ng_bin, sizeof bench.ng_bin, "%s", bin);
    if (access(bench.ng_bin, X_OK) != 0)
        bench_die("NG_BIN=%s: %s", bin, strerror(errno));
    snprintf(bench.dir, sizeof bench.dir, "%s/%s-XXXXXX", tmp != NULL ? tmp : "/tmp", prefix);
    if (mkdtemp(bench.dir) == NULL)
        bench_die("mkdtemp: %s", strerror(errno));
}

/* The run's directory removed, or kept with NG_KEEP=1; -1 if it could not be removed. */
static inline int
bench_remove_dir(void)
{
    char cmd[PATH_MAX + 32];

    if (getenv("NG_KEEP") != NULL) {
        printf("kept %s\n", bench.dir);
        return 0;
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", bench.dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "%s: could not remove %s\n", bench.prog, bench.dir);
        return -1;
    }
    return 0;
}

/* ---- processes ---- */

/* Spawns argv (PATH searched) with stdin from /dev/null, stdout to out_fd (-1: /dev/null), stderr appended to log. */
static inline pid_t
bench_spawn(const char *const *argv, int out_fd, const char *log)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t set;
    pid_t pid;
    int rc;

    if (posix_spawn_file_actions_init(&fa) != 0 || posix_spawnattr_init(&attr) != 0)
        bench_die("posix_spawn setup failed");
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

/* Runs argv to its end; its stdout into out (cap bytes, NUL-terminated). Its wait status, or -1 if it did not run. */
static inline int
bench_run(const char *const *argv, char *out, size_t cap, const char *log)
{
    int fds[2], st;
    size_t len = 0;
    ssize_t n;
    pid_t pid;

    if (pipe(fds) != 0)
        bench_die("pipe: %s", strerror(errno));
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    pid = bench_spawn(argv, fds[1], log);
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return -1;
    }
    /* Read to the end whatever the room: a child blocked on a full pipe would never exit. */
    for (;;) {
        char skip[4096];

        n = read(fds[0], len + 1 < cap ? out + len : skip, len + 1 < cap ? cap - 1 - len : sizeof skip);
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
    return st;
}

/* `noisegate ARGS --config g->cfg`, which must exit 0; its stdout in out (cap bytes, NUL-terminated). */
static inline void
bench_cli(const struct bench_gw *g, char *out, size_t cap, const char *const *args)
{
    const char *argv[16];
    size_t n = 0;
    int st;

    argv[n++] = bench.ng_bin;
    while (*args != NULL && n < 13)
        argv[n++] = *args++;
    argv[n++] = "--config";
    argv[n++] = g->cfg;
    argv[n] = NULL;
    st = bench_run(argv, out, cap, g->log);
    if (st == -1)
        bench_die("cannot run `%s %s %s`", bench.ng_bin, argv[1], argv[2]);
    if (!bench_exited_zero(st))
        bench_die("`noisegate %s %s` on %s: %s %d; see %s", argv[1], argv[2], g->name,
                  WIFEXITED(st) ? "exit status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), g->log);
}

#define BENCH_CLI(g, out, ...) bench_cli((g), (out), sizeof(out), (const char *const[]){__VA_ARGS__, NULL})

/* ---- gateways ---- */

/*
 * A port nothing listens on now, chosen by the kernel, that no gateway of
 * the run has: nothing holds a port between bench_gw_init and the start.
 * Never 8081, 8082 or 9002, the ports `make demo` takes.
 */
static inline int
bench_free_port(void)
{
    int i, port;
    size_t k;

    for (i = 0; i < 20; i++) {
        port = loopback_free_port();
        if (port <= 0)
            break;
        if (port == 8081 || port == 8082 || port == 9002)
            continue;
        for (k = 0; k < bench.ngw && bench.gw[k]->port != port; k++)
            ;
        if (k == bench.ngw)
            return port;
    }
    bench_die("no free port on 127.0.0.1");
}

/* For bench_gw_init: polls every 50-200 ms, as in tests/cli/test_e2e.c, so that messages cross at once. */
#define BENCH_POLL_FAST "\"poll\": {\"interval_ms\": 50, \"max_interval_ms\": 200},"

/*
 * g's files under bench.dir (NAME.json, NAME.log, data directory NAME/), on
 * a free port of 127.0.0.1 with the embedded Redis; webhooks and polls may
 * reach 127.0.0.1. more: further sections, each followed by a comma. Every
 * other field at its default (AOF everysec, a pool of one thread per core,
 * info logs).
 */
static inline void
bench_gw_init(struct bench_gw *g, const char *more)
{
    FILE *f;
    size_t k;

    snprintf(g->cfg, sizeof g->cfg, "%s/%s.json", bench.dir, g->name);
    snprintf(g->data, sizeof g->data, "%s/%s", bench.dir, g->name);
    snprintf(g->log, sizeof g->log, "%s/%s.log", bench.dir, g->name);
    g->port = 0;
    g->port = bench_free_port();
    for (k = 0; k < bench.ngw && bench.gw[k] != g; k++)
        ;
    if (k == bench.ngw) {
        if (bench.ngw == BENCH_MAX_GATEWAYS)
            bench_die("more than %d gateways", BENCH_MAX_GATEWAYS);
        bench.gw[bench.ngw++] = g;
    }
    f = fopen(g->cfg, "w");
    if (f == NULL)
        bench_die("cannot write %s: %s", g->cfg, strerror(errno));
    fprintf(f,
            "{\"data_dir\": \"%s\", \"public_url\": \"http://127.0.0.1:%d\",\n"
            " \"listen\": {\"address\": \"127.0.0.1\", \"port\": %d},\n"
            " \"delivery\": {\"allow_private\": [\"127.0.0.1\"]},\n"
            " %s\n"
            " \"log\": {\"format\": \"json\"}}\n",
            g->data, g->port, g->port, more != NULL ? more : "");
    if (fclose(f) != 0)
        bench_die("cannot write %s", g->cfg);
}

/* The last cap - 1 bytes of the file at path, NUL-terminated (empty if it cannot be read); their length. */
static inline size_t
bench_read_tail(const char *path, char *text, size_t cap)
{
    FILE *f = fopen(path, "r");
    long size;
    size_t n;

    text[0] = '\0';
    if (f == NULL)
        return 0;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, size > (long)(cap - 1) ? size - (long)(cap - 1) : 0, SEEK_SET);
    n = fread(text, 1, cap - 1, f);
    text[n] = '\0';
    fclose(f);
    return n;
}

/* The end of g's log (where a sanitizer's report is), on stderr. */
static inline void
bench_show_log_tail(const struct bench_gw *g)
{
    static char text[BENCH_LOG_TAIL + 1];

    bench_read_tail(g->log, text, sizeof text);
    fprintf(stderr, "---- the end of %s ----\n%s\n---- end ----\n", g->log, text);
}

/* ---- HTTP ---- */

/* A reply's body, cut at cap - 1 bytes, always NUL-terminated. */
struct bench_buf {
    char *data;
    size_t len, cap;
};

static inline void
bench_buf_init(struct bench_buf *b, char *data, size_t cap)
{
    b->data = data;
    b->len = 0;
    b->cap = cap;
    data[0] = '\0';
}

static inline size_t
bench_collect(char *p, size_t size, size_t n, void *ctx)
{
    struct bench_buf *b = ctx;
    size_t len = size * n, room = b->cap - 1 - b->len;

    memcpy(b->data + b->len, p, len < room ? len : room);
    b->len += len < room ? len : room;
    b->data[b->len] = '\0';
    return len;
}

/* A libcurl handle whose replies go into into; no proxy (whatever the environment says), no signals. */
static inline CURL *
bench_easy(long timeout_ms, struct bench_buf *into)
{
    CURL *h = curl_easy_init();

    if (h == NULL)
        bench_die("curl_easy_init failed");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, bench_collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, into);
    return h;
}

/* GET url into out (cap bytes, may be NULL); the status, -1 if nothing answered. */
static inline long
bench_http_get(const char *url, char *out, size_t cap)
{
    char skip[256];
    struct bench_buf b;
    CURL *c;
    long status = -1;

    bench_buf_init(&b, out != NULL ? out : skip, out != NULL ? cap : sizeof skip);
    c = bench_easy(5000L, &b);
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

/* `noisegate serve` on g; waits for /readyz, bench.start_timeout_ms at most. */
static inline void
bench_gw_start(struct bench_gw *g)
{
    const char *argv[] = {bench.ng_bin, "serve", "--config", g->cfg, NULL};
    char url[128];
    uint64_t t0 = bench_now_ms();

    g->pid = bench_spawn(argv, -1, g->log);
    if (g->pid < 0)
        bench_die("cannot start %s", bench.ng_bin);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", g->port);
    while (bench_http_get(url, NULL, 0) != 200) {
        if (waitpid(g->pid, NULL, WNOHANG) == g->pid) {
            g->pid = 0;
            bench_show_log_tail(g);
            bench_die("gateway %s exited at start; see %s", g->name, g->log);
        }
        if (bench_now_ms() - t0 > (uint64_t)bench.start_timeout_ms)
            bench_die("gateway %s is not ready after %d ms; see %s", g->name, bench.start_timeout_ms, g->log);
        bench_sleep_ms(50);
    }
}

/* ---- backends ---- */

/* A backend's whsec_ secret, decoded. */
struct bench_secret {
    uint8_t secret[NG_WEBHOOK_SECRET_MAX];
    size_t len;
};

/* `backend add SLUG --url URL` on g, and the secret it printed. */
static inline void
bench_backend_add(const struct bench_gw *g, const char *slug, const char *url, struct bench_secret *s)
{
    char out[BENCH_OUT_MAX], whsec[128];
    const char *p;
    size_t n;

    BENCH_CLI(g, out, "backend", "add", slug, "--url", url);
    p = strstr(out, "whsec_");
    n = p != NULL ? strcspn(p, " \t\r\n\"") : 0;
    if (p == NULL || n >= sizeof whsec)
        bench_die("`backend add` printed no whsec_ secret: %s", out);
    memcpy(whsec, p, n);
    whsec[n] = '\0';
    if (ng_webhook_secret_parse(whsec, s->secret, sizeof s->secret, &s->len) != NG_OK)
        bench_die("\"%s\" is not a whsec_ secret", whsec);
    sodium_memzero(whsec, sizeof whsec);
}

/* The connection parameters (the ngcp1: word) `peer export SLUG` prints on g, in out. */
static inline void
bench_peer_export(const struct bench_gw *g, const char *slug, char *out, size_t cap)
{
    const char *p;
    size_t n;

    bench_cli(g, out, cap, (const char *const[]){"peer", "export", slug, NULL});
    p = strstr(out, "ngcp1:");
    if (p == NULL)
        bench_die("`peer export %s` printed %.100s", slug, out);
    n = strcspn(p, " \t\r\n");
    memmove(out, p, n);
    out[n] = '\0';
}

/*
 * The headers of a request with body, signed v1 by key under webhook-id id
 * as a backend's Standard Webhooks library signs, in place of *hdr.
 */
static inline void
bench_sign(struct curl_slist **hdr, const struct bench_secret *key, const char *id, const char *body, size_t body_len)
{
    char sig[NG_WEBHOOK_SIGNATURE_BYTES], line[NG_WEBHOOK_SIGNATURE_BYTES + 64];
    int64_t ts = (int64_t)time(NULL);
    struct curl_slist *h;

    if (ng_webhook_sign_v1(sig, key->secret, key->len, id, ts, (const uint8_t *)body, body_len) != NG_OK)
        bench_die("ng_webhook_sign_v1 failed");
    curl_slist_free_all(*hdr);
    h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    snprintf(line, sizeof line, "webhook-id: %s", id);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "webhook-timestamp: %lld", (long long)ts);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "webhook-signature: %s", sig);
    h = curl_slist_append(h, line);
    if (h == NULL)
        bench_die("out of memory");
    *hdr = h;
}

/* ---- servers in this process: sinks, stub peers, baselines ---- */

/* A libmicrohttpd daemon on 127.0.0.1, port chosen by the kernel (into *port), a pool if pool >= 2; NULL if none. */
static inline struct MHD_Daemon *
bench_mhd_start(unsigned flags, MHD_AccessHandlerCallback fn, unsigned pool, unsigned timeout_s, int *port)
{
    const union MHD_DaemonInfo *info;
    struct sockaddr_in sa;
    struct MHD_Daemon *d;

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (pool >= 2)
        d = MHD_start_daemon(flags, 0, NULL, NULL, fn, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_THREAD_POOL_SIZE,
                             pool, MHD_OPTION_CONNECTION_TIMEOUT, timeout_s, MHD_OPTION_END);
    else
        d = MHD_start_daemon(flags, 0, NULL, NULL, fn, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_CONNECTION_TIMEOUT,
                             timeout_s, MHD_OPTION_END);
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

/*
 * 1 once a handler's request is read whole, when it may answer; until then
 * the handler returns MHD_YES. An answer queued with the headers alone
 * costs the connection its keep-alive (DESIGN.md, pitfalls). The body is
 * dropped.
 */
static inline int
bench_mhd_body_done(void **state, size_t *upload_size)
{
    static int marker;

    if (*state == NULL) {
        *state = &marker;
        return 0;
    }
    if (*upload_size > 0) {
        *upload_size = 0;
        return 0;
    }
    return 1;
}

/* An answer of status with json (len bytes, static; NULL: no body) and, if retry_after, that Retry-After. */
static inline enum MHD_Result
bench_mhd_reply(struct MHD_Connection *conn, unsigned status, const char *json, size_t len, const char *retry_after)
{
    /* The cast drops a const that libmicrohttpd keeps: it never writes a persistent buffer. */
    struct MHD_Response *r = MHD_create_response_from_buffer(json != NULL ? len : 0, (void *)(json != NULL ? json : ""),
                                                             MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc;

    if (r == NULL)
        return MHD_NO;
    if (json != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (retry_after != NULL)
        MHD_add_response_header(r, "Retry-After", retry_after);
    rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

#endif

/*
 * gateway_harness.h: running `noisegate serve` from a cmocka test and
 * meeting it as its backends, peers and operators do. Shared by the suites
 * that start gateways, on top of cli_harness.h.
 *
 * - A gateway is a process of the real binary (NG_BIN) with its own
 *   directory, config, log and embedded redis-server, started and stopped
 *   by its PID (never waitpid(-1): other children belong to the suite).
 * - Requests go through libcurl, as a backend's or a peer's would; the
 *   answers (and the JSON parsed from them) live until the test's teardown
 *   (blobs_free, keep_clear), so that a test never frees what it checks.
 * - Backends' requests are signed here with the library's Standard Webhooks
 *   code (the bytes a backend's library would send), and webhooks are
 *   checked with a verifier written here from the specification instead,
 *   so that a bug shared by the gateway's signer and verifier still shows.
 * - A sink is a tenant's backend: an HTTP server on 127.0.0.1 that records
 *   every webhook and answers as the test tells it.
 * Everything is static inline, as in cli_harness.h: each suite uses a part.
 */
#ifndef TEST_GATEWAY_HARNESS_H
#define TEST_GATEWAY_HARNESS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/socket.h>

#include "cli_harness.h"
#include "../unit/nginx_server.h" /* loopback_free_port, for every suite */

#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <sodium.h>

#include "ng_webhook.h"

enum {
    /* Generous: the binary may be an ASan build on a loaded 2-core machine. */
    HTTP_TIMEOUT_MS = 20000,
    START_TIMEOUT_MS = 30000,
    STOP_TIMEOUT_MS = 20000,
    /* The ttl of a msg that names none. */
    MSG_TTL_S = 600,
    MSG_ID_HEX = 32,
    SINK_MAX_HITS = 16384,
    SINK_MAX_HEADERS = 48,
    SINK_MAX_RULES = 32,
    SINK_MAX_SEQ = 8,
    /* A backend's id as `backend add` prints it ("b" and a number), NUL included. */
    BACKEND_ID_BYTES = 16,
    /* A sink's answer for a request that must hang until released. */
    HANG = -1,
};

/*
 * What every suite's main does first: the binary from NG_BIN, libsodium,
 * SIGPIPE ignored (a peer hanging up must not kill the suite; children get
 * the default back, see spawn_attr) and libcurl. 0, or -1 with a message.
 */
static inline int
suite_init(void)
{
    const char *b = getenv("NG_BIN");

    if (b == NULL) {
        fprintf(stderr, "NG_BIN is not set: run through make test\n");
        return -1;
    }
    snprintf(ng_bin, sizeof ng_bin, "%s", b);
    if (sodium_init() < 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return 0;
}

/* ---- time ---- */

static inline void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The clock the gateway stamps parcels and webhooks with (now_ms is monotonic). */
static inline uint64_t
wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the run's files and tag ---- */

/* A random tag in every body, so that bodies of different runs cannot be confused, nor found in a log by chance. */
static char tag[17];

static inline void
tag_init(void)
{
    uint8_t t[8];

    randombytes_buf(t, sizeof t);
    sodium_bin2hex(tag, sizeof tag, t, sizeof t);
}

/* A fresh directory under $TMPDIR (or /tmp) named prefix-XXXXXX; 0 or -1. */
static inline int
make_temp_dir(char *out, size_t cap, const char *prefix)
{
    const char *base = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";

    snprintf(out, cap, "%s/%s-XXXXXX", base, prefix);
    return mkdtemp(out) != NULL ? 0 : -1;
}

/* Removes dir, unless NG_KEEP is set (then says where it is, for a look at configs, data and logs). */
static inline int
remove_temp_dir(const char *dir)
{
    char cmd[PATH_MAX + 32];

    if (dir[0] == '\0')
        return 0;
    if (getenv("NG_KEEP") != NULL) {
        fprintf(stderr, "kept %s\n", dir);
        return 0;
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- ports ---- */

/* 1 if nothing listens on 127.0.0.1:port now. */
static inline int
port_free(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

    if (fd < 0)
        return 0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/*
 * A port for a gateway that must keep it across restarts (public_url
 * travels in connection parameters), below the kernel's ephemeral range:
 * sinks on port 0 and every outgoing connection take ports from that
 * range, and one of them could otherwise land on the port while the
 * gateway is down. Not `not`; -1 if none is found.
 */
static inline int
gateway_port(int not )
{
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    int low = 32768, high = 60999, i, p;

    if (f != NULL) {
        if (fscanf(f, "%d %d", &low, &high) != 2)
            low = 32768;
        fclose(f);
    }
    for (i = 0; i < 200; i++) {
        p = low > 11024 ? 10000 + (int)randombytes_uniform((uint32_t)(low - 10000))
                        : 1024 + (int)randombytes_uniform(64000);
        if (p != not &&(p < low || p > high) && port_free(p))
            return p;
    }
    return -1;
}

/* ---- JSON ---- */

/* The teardown of every test: what it kept is gone, even when an assertion jumped out. */
static inline int
test_teardown(void **state)
{
    (void)state;
    blobs_free();
    keep_clear();
    return 0;
}

/* The last request, for failure messages. */
static char last_req[256];

static inline const char *
jstr(const json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));

    if (s == NULL) {
        char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
        const char *shown = text_of(blob_str(text != NULL ? text : "(none)"));

        free(text);
        fail_msg("%s: no string \"%s\" in %.300s", last_req, key, shown);
    }
    return s;
}

/* A JSON text (in a blob) of a document built here; takes the reference. */
static inline const char *
dump(json_t *doc)
{
    char *s;
    const char *t;

    assert_non_null(doc);
    s = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    assert_non_null(s);
    t = text_of(blob_str(s));
    free(s);
    return t;
}

/* A metric's value in a Prometheus text exposition; -1 if the series is absent. */
static inline double
sample(const char *metrics, const char *series)
{
    size_t n = strlen(series);
    const char *p = metrics;

    while ((p = strstr(p, series)) != NULL) {
        if ((p == metrics || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p += n;
    }
    return -1;
}

/* A counter's value in a Prometheus text exposition: 0 while it has no series, which comes at its first count. */
static inline double
counter_of(const char *metrics, const char *series)
{
    double v = sample(metrics, series);

    return v < 0 ? 0 : v;
}

/* ---- HTTP ---- */

typedef struct reply {
    long status; /* -1: nothing answered */
    blob *body, *head;
    json_t *json;     /* the body, if it is JSON */
    const char *code; /* error.code, or "" */
} reply;

static inline size_t
collect(char *p, size_t size, size_t n, void *ctx)
{
    blob_append(ctx, p, size * n);
    return size * n;
}

/* One request to url, or over unix_sock when not NULL; headers are "Name: value" lines. */
static inline reply
http_request(const char *unix_sock, const char *method, const char *url, const char *const *headers, const void *data,
             size_t len)
{
    struct curl_slist *h = NULL;
    reply r = {-1, blob_new(), blob_new(), NULL, ""};
    CURL *c = curl_easy_init();
    size_t i;

    assert_non_null(c);
    snprintf(last_req, sizeof last_req, "%s %s%.200s", method, unix_sock != NULL ? "(admin) " : "", url);
    /* No 100-continue round trip, and no form content type curl would add on its own. */
    h = curl_slist_append(h, "Expect:");
    for (i = 0; headers != NULL && headers[i] != NULL; i++)
        h = curl_slist_append(h, headers[i]);
    if (unix_sock != NULL)
        curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, unix_sock);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)HTTP_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r.head);
    if (data != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, data);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    r.json = kept(json_loadb(text_of(r.body), r.body->len, 0, NULL));
    if (r.json != NULL) {
        const char *code = json_string_value(json_object_get(json_object_get(r.json, "error"), "code"));

        r.code = code != NULL ? code : "";
    }
    return r;
}

/* A response header's value (in a blob), or NULL. */
static inline const char *
header_of(const reply *r, const char *name)
{
    const char *line = text_of(r->head);
    size_t n = strlen(name);

    while (line != NULL && *line != '\0') {
        const char *end = strstr(line, "\r\n");
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);

        if (len > n && strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;

            while (*v == ' ')
                v++;
            return text_of(blob_of(v, len - (size_t)(v - line)));
        }
        line = end != NULL ? end + 2 : NULL;
    }
    return NULL;
}

#define EXPECT_REPLY(r, status, code) expect_reply_at((r), (status), (code), __LINE__)
#define EXPECT_STATUS(r, status)      expect_status_at((r), (status), __LINE__)

/* The status and, for an error, its code: a refusal for another reason must not pass. */
static inline void
expect_reply_at(reply r, long status, const char *code, int line)
{
    if (r.status != status || (code != NULL && strcmp(r.code, code) != 0))
        fail_msg("line %d: %s: got %ld \"%s\", expected %ld \"%s\"; body: %.300s", line, last_req, r.status, r.code,
                 status, code != NULL ? code : "", text_of(r.body));
    if (status >= 400 && (r.json == NULL || r.code[0] == '\0' ||
                          !json_is_string(json_object_get(json_object_get(r.json, "error"), "message"))))
        fail_msg("line %d: %s: %ld without {\"error\": {\"code\", \"message\"}}: %.300s", line, last_req, r.status,
                 text_of(r.body));
}

static inline void
expect_status_at(reply r, long status, int line)
{
    if (r.status != status)
        fail_msg("line %d: %s: got %ld, expected %ld; body: %.300s", line, last_req, r.status, status, text_of(r.body));
}

/* ---- gateways ---- */

typedef struct gateway {
    const char *name;
    char cfg[PATH_MAX], data[PATH_MAX / 2 + 16], log[PATH_MAX], sock[PATH_MAX];
    int port;
    pid_t pid;
    char token[80]; /* the admin token, once it has started */
} gateway;

/*
 * g's files under dir, named after it: NAME.json, NAME.log and the data
 * directory NAME/ (vault, embedded Redis, admin socket and token at their
 * default places).
 */
static inline void
gateway_init(gateway *g, const char *dir, int port)
{
    snprintf(g->cfg, sizeof g->cfg, "%s/%s.json", dir, g->name);
    snprintf(g->data, sizeof g->data, "%s/%s", dir, g->name);
    snprintf(g->log, sizeof g->log, "%s/%s.log", dir, g->name);
    snprintf(g->sock, sizeof g->sock, "%s/admin.sock", g->data);
    g->port = port;
}

/*
 * What every suite's gateway has: loopback only, JSON logs, g's data
 * directory. listen_more goes into "listen" (", \"timeout_s\": 3"), and
 * sections before "log" (each one followed by a comma).
 */
static inline void
write_config(const gateway *g, const char *listen_more, const char *sections)
{
    FILE *f = fopen(g->cfg, "w");

    if (f == NULL)
        fail_msg("cannot write %s: %s", g->cfg, strerror(errno));
    fprintf(f,
            "{\"data_dir\": \"%s\", \"public_url\": \"http://127.0.0.1:%d\",\n"
            " \"listen\": {\"address\": \"127.0.0.1\", \"port\": %d%s},\n"
            " %s\n"
            " \"log\": {\"format\": \"json\"}}\n",
            g->data, g->port, g->port, listen_more != NULL ? listen_more : "", sections != NULL ? sections : "");
    assert_int_equal(fclose(f), 0);
}

/*
 * g under dir on a port of its own below the ephemeral range, never `not`
 * (another gateway's), configured as write_config: listen_more (NULL:
 * ", \"timeout_s\": 5") and the sections from fmt.
 */
static inline void gateway_config(gateway *g, const char *dir, int not, const char *listen_more, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static inline void
gateway_config(gateway *g, const char *dir, int not, const char *listen_more, const char *fmt, ...)
{
    va_list ap;
    const char *sections;

    gateway_init(g, dir, gateway_port(not ));
    assert_true(g->port > 0);
    va_start(ap, fmt);
    sections = vtextf(fmt, ap);
    va_end(ap);
    write_config(g, listen_more != NULL ? listen_more : ", \"timeout_s\": 5", sections);
}

/* A request to g's public listener. */
static inline reply
gw_http(const gateway *g, const char *method, const char *path, const char *const *headers, const void *data,
        size_t len)
{
    char url[512];

    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", g->port, path);
    return http_request(NULL, method, url, headers, data, len);
}

#define GW_GET(g, path) gw_http((g), "GET", (path), NULL, NULL, 0)

/* A request on g's admin socket as auth (NULL: no Authorization header); body is JSON or NULL. */
static inline reply
admin_as(const gateway *g, const char *auth, const char *method, const char *path, const char *body)
{
    char url[512], line[128];
    const char *h[3];
    size_t n = 0;

    snprintf(url, sizeof url, "http://localhost%s", path);
    if (auth != NULL) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", auth);
        h[n++] = line;
    }
    if (body != NULL)
        h[n++] = "Content-Type: application/json";
    h[n] = NULL;
    return http_request(g->sock, method, url, h, body, body != NULL ? strlen(body) : 0);
}

/* The same with g's admin token. */
static inline reply
admin(const gateway *g, const char *method, const char *path, const char *body)
{
    return admin_as(g, g->token, method, path, body);
}

/* A process that exists and is not a zombie. */
static inline int
alive(pid_t pid)
{
    char path[64], buf[512];
    FILE *f;
    char *p;

    if (pid <= 0 || kill(pid, 0) != 0)
        return 0;
    /* A zombie nobody reaps (an orphan in a container without init) is gone for our purposes. */
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    p = fgets(buf, sizeof buf, f);
    fclose(f);
    p = p != NULL ? strrchr(buf, ')') : NULL;
    return p == NULL || p[2] != 'Z';
}

/* What the pid file of g's embedded redis-server says, alive or not; 0 without one. */
static inline pid_t
redis_pid_file(const gateway *g)
{
    char path[PATH_MAX + 32];
    blob *b;

    snprintf(path, sizeof path, "%s/redis/redis.pid", g->data);
    b = slurp(path);
    return b == NULL ? 0 : (pid_t)strtol(text_of(b), NULL, 10);
}

/* The embedded redis-server of g's data directory, if one runs; 0 otherwise. */
static inline pid_t
redis_of(const gateway *g)
{
    char cmd[64];
    pid_t pid = redis_pid_file(g);
    blob *c;

    if (!alive(pid))
        return 0;
    /* The pid may have been reused since: only a redis-server is ours to stop. */
    snprintf(cmd, sizeof cmd, "/proc/%ld/cmdline", (long)pid);
    c = slurp(cmd);
    return c != NULL && strstr(text_of(c), "redis-server") != NULL ? pid : 0;
}

/* sig, then SIGKILL if pid still runs after ms. */
static inline void
stop_pid(pid_t pid, int sig, long ms)
{
    long t0 = now_ms();

    if (pid <= 0 || kill(pid, sig) != 0)
        return;
    while (alive(pid) && now_ms() - t0 < ms)
        sleep_ms(20);
    if (alive(pid))
        kill(pid, SIGKILL);
}

/* `noisegate serve` on g's config, its stderr appended to g's log; does not wait for it. */
static inline pid_t
spawn_serve(const gateway *g)
{
    return spawn_bg(ARGS("serve", "--config", g->cfg), g->log);
}

/*
 * Starts g and waits until it is ready: /readyz on the public listener
 * (its store answers) and /healthz on the admin socket. Then g->token is
 * the admin token it wrote on its first start.
 */
static inline void
start_gateway(gateway *g)
{
    char path[PATH_MAX + 32];
    long t0 = now_ms();
    blob *tok;

    g->pid = spawn_serve(g);
    for (;;) {
        if (GW_GET(g, "/readyz").status == 200 && admin_as(g, NULL, "GET", "/healthz", NULL).status == 200)
            break;
        if (waitpid(g->pid, NULL, WNOHANG) == g->pid) {
            blob *log = slurp(g->log);
            size_t len = log != NULL ? log->len : 0;

            g->pid = 0;
            fail_msg("gateway %s exited at start; the end of %s: %s", g->name, g->log,
                     log != NULL ? text_of(log) + (len > 1500 ? len - 1500 : 0) : "(none)");
        }
        if (now_ms() - t0 > START_TIMEOUT_MS)
            fail_msg("gateway %s is not ready after %d ms; see %s", g->name, START_TIMEOUT_MS, g->log);
        sleep_ms(50);
    }
    snprintf(path, sizeof path, "%s/admin.token", g->data);
    tok = slurp(path);
    assert_non_null(tok);
    snprintf(g->token, sizeof g->token, "%.*s", (int)strcspn(text_of(tok), " \r\n"), text_of(tok));
    assert_true(is_lower_hex(g->token, 64));
}

/* SIGTERM drains and exits 0; how long it took. */
static inline long
stop_gateway(gateway *g)
{
    long t0 = now_ms();
    int st = 0;
    pid_t pid = g->pid;

    assert_true(pid > 0);
    assert_int_equal(kill(pid, SIGTERM), 0);
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (now_ms() - t0 > STOP_TIMEOUT_MS) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            g->pid = 0;
            fail_msg("gateway %s did not stop within %d ms of SIGTERM", g->name, STOP_TIMEOUT_MS);
        }
        sleep_ms(10);
    }
    g->pid = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("gateway %s stopped with %s %d; see %s", g->name, WIFEXITED(st) ? "status" : "signal",
                 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), g->log);
    return now_ms() - t0;
}

/* For teardowns: whatever of g still runs, gateway and redis-server, is gone after this. */
static inline void
kill_gateway(gateway *g)
{
    if (g->pid > 0) {
        kill(g->pid, SIGKILL);
        waitpid(g->pid, NULL, 0);
        g->pid = 0;
    }
    if (g->data[0] != '\0')
        stop_pid(redis_of(g), SIGTERM, 5000);
}

/* ---- what a gateway says: its counters and its log ---- */

/* A counter of g from its /metrics: 0 while it has no series. */
static inline double
metric(const gateway *g, const char *series)
{
    reply r = GW_GET(g, "/metrics");

    EXPECT_STATUS(r, 200);
    return counter_of(text_of(r.body), series);
}

/* The refusals of one error code a suite saw; a table of them ends with {NULL}. */
typedef struct refusal {
    const char *code;
    long n;
} refusal;

/* Counts a refusal with code, if t has that code. */
static inline void
refusal_add(refusal *t, const char *code)
{
    for (; t->code != NULL; t++)
        if (strcmp(t->code, code) == 0)
            t->n++;
}

/* ng_messages_refused_total{reason} in metrics is, for every code of t, what the suite saw. */
static inline void
expect_refusals(const char *metrics, const refusal *t)
{
    char series[128];
    double v;

    for (; t->code != NULL; t++) {
        snprintf(series, sizeof series, "ng_messages_refused_total{reason=\"%s\"}", t->code);
        v = counter_of(metrics, series);
        if (v != (double)t->n)
            fail_msg("%s is %g; the suite saw %ld such refusals", series, v, t->n);
    }
}

/* Lines of g's log that hold every one of needles (NULL-terminated); 0 while it has no log. */
static inline int
log_count(const gateway *g, const char *const *needles)
{
    blob *b = slurp(g->log);
    char *line, *end;
    int n = 0;
    size_t i;

    if (b == NULL)
        return 0;
    for (line = (char *)b->data; *line != '\0'; line = end + 1) {
        end = strchr(line, '\n');
        if (end == NULL)
            end = line + strlen(line) - 1; /* the last line, without its newline yet */
        else
            *end = '\0';
        for (i = 0; needles[i] != NULL && strstr(line, needles[i]) != NULL; i++)
            ;
        n += needles[i] == NULL;
    }
    return n;
}

#define LOG_COUNT(g, ...) log_count((g), ARGS(__VA_ARGS__))

/*
 * Waits until a line of g's log holds both a and b: a JSON log says a thing
 * and its fields on one line, so the same line ties a field to what was
 * said. Fails after ms.
 */
static inline void
wait_log(const gateway *g, const char *a, const char *b, long ms)
{
    long t0 = now_ms();

    while (LOG_COUNT(g, a, b) == 0) {
        if (now_ms() - t0 > ms)
            fail_msg("%s's log has no line with \"%s\" and \"%s\" after %ld ms; see %s", g->name, a, b, ms, g->log);
        sleep_ms(50);
    }
}

/* ---- the operator's CLI on a gateway's config ---- */

/* The CLI with --config g->cfg after args; must exit 0; its stdout. */
static inline blob *
gcli(const gateway *g, const char *const *args)
{
    const char *argv[MAX_ARGS + 1];
    size_t n = 0;
    result r;

    while (args[n] != NULL) {
        assert_true(n + 3 < MAX_ARGS);
        argv[n] = args[n];
        n++;
    }
    argv[n++] = "--config";
    argv[n++] = g->cfg;
    argv[n] = NULL;
    r = ng(NULL, argv);
    EXPECT_EXIT(r, 0);
    return r.out;
}

#define GCLI(g, ...) gcli((g), ARGS(__VA_ARGS__))

static inline json_t *
gcli_json(const gateway *g, const char *const *args)
{
    blob *out = gcli(g, args);
    json_t *j = kept(json_loadb(text_of(out), out->len, 0, NULL));

    if (j == NULL)
        fail_msg("`%s` printed no JSON: %s", last_cmd, text_of(out));
    return j;
}

/* The one line of `peer export` (outbox NULL: the gateway's own), without its newline. */
static inline const char *
export_params(const gateway *g, const char *slug, const char *outbox)
{
    blob *out = outbox != NULL ? GCLI(g, "peer", "export", slug, "--outbox", outbox) : GCLI(g, "peer", "export", slug);

    assert_true(out->len > 7 && strncmp(text_of(out), "ngcp1:", 6) == 0);
    return text_of(blob_of(out->data, strcspn(text_of(out), "\r\n")));
}

/* The newest key id of a tenant (64 hex and a NUL): what peers seal to. */
static inline void
key_id_of(const gateway *g, const char *slug, char out[65])
{
    json_t *keys = json_object_get(gcli_json(g, ARGS("tenant", "show", slug, "--json")), "keys");
    json_t *k = json_array_get(keys, json_array_size(keys) - 1);
    const char *s = json_string_value(json_object_get(k, "key_id"));

    assert_true(is_lower_hex(s, 64));
    memcpy(out, s, 65);
}

/* ---- signed submissions, as a backend's Standard Webhooks library makes them ---- */

/* A backend's signing key: the whsec_ secret `backend add` printed (v1), or an Ed25519 key (v1a). */
typedef struct signer {
    char whsec[96];
    uint8_t secret[NG_WEBHOOK_SECRET_MAX];
    size_t secret_len;
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    int v1a;
} signer;

/*
 * The secret decoded as a backend developer would (base64 after the
 * prefix) and as the library does: the same bytes, or the tests would sign
 * and verify with a key no backend has. s->v1a is left alone: a v1a
 * backend gets a whsec_ too.
 */
static inline void
signer_whsec(signer *s, const char *whsec, size_t len)
{
    uint8_t lib[NG_WEBHOOK_SECRET_MAX];
    size_t lib_len;

    assert_true(len < sizeof s->whsec);
    memcpy(s->whsec, whsec, len);
    s->whsec[len] = '\0';
    if (strncmp(s->whsec, "whsec_", 6) != 0 ||
        sodium_base642bin(s->secret, sizeof s->secret, s->whsec + 6, strlen(s->whsec + 6), NULL, &s->secret_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        s->secret_len < 24)
        fail_msg("\"%s\" is not a whsec_ secret", s->whsec);
    assert_int_equal(ng_webhook_secret_parse(s->whsec, lib, sizeof lib, &lib_len), NG_OK);
    assert_int_equal(lib_len, s->secret_len);
    assert_memory_equal(lib, s->secret, lib_len);
}

/* A webhook-id no request used before. */
static inline void
fresh_id(char out[40])
{
    uint8_t r[12];
    char hex[25];

    randombytes_buf(r, sizeof r);
    sodium_bin2hex(hex, sizeof hex, r, sizeof r);
    snprintf(out, 40, "msg_%s", hex);
}

/* "v1,<base64>" or "v1a,<base64>" by s. */
static inline void
sign(char out[NG_WEBHOOK_SIGNATURE_BYTES], const signer *s, const char *id, int64_t ts, const void *body, size_t len)
{
    if (s->v1a)
        assert_int_equal(ng_webhook_sign_v1a(out, s->sk, id, ts, body, len), NG_OK);
    else
        assert_int_equal(ng_webhook_sign_v1(out, s->secret, s->secret_len, id, ts, body, len), NG_OK);
}

/* webhook-id, webhook-timestamp and webhook-signature as header lines at h[n..n+2], the texts as they are; n + 3. */
static inline size_t
webhook_headers(const char **h, size_t n, const char *id, const char *ts, const char *sig)
{
    char line[NG_WEBHOOK_HEADER_MAX + 64];

    snprintf(line, sizeof line, "webhook-id: %s", id);
    h[n++] = text_of(blob_str(line));
    snprintf(line, sizeof line, "webhook-timestamp: %s", ts);
    h[n++] = text_of(blob_str(line));
    snprintf(line, sizeof line, "webhook-signature: %s", sig);
    h[n++] = text_of(blob_str(line));
    return n;
}

/* POST path on g, signed now by s with a fresh id; extra headers "Name: value". */
static inline reply
post_signed_to(const gateway *g, const char *path, const signer *s, const char *content_type, const void *body,
               size_t len, const char *const *extra)
{
    char id[40], sig[NG_WEBHOOK_SIGNATURE_BYTES], ts[32], ct[300];
    const char *h[24];
    int64_t now = (int64_t)(wall_ms() / 1000);
    size_t n = 0, i;

    fresh_id(id);
    sign(sig, s, id, now, body, len);
    snprintf(ts, sizeof ts, "%lld", (long long)now);
    snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
    h[n++] = ct;
    n = webhook_headers(h, n, id, ts, sig);
    for (i = 0; extra != NULL && extra[i] != NULL; i++) {
        assert_true(n < sizeof h / sizeof h[0] - 1);
        h[n++] = extra[i];
    }
    h[n] = NULL;
    return gw_http(g, "POST", path, h, body, len);
}

/* POST /v1/tenants/{slug}/messages on g, as post_signed_to. */
static inline reply
post_signed(const gateway *g, const char *slug, const signer *s, const char *content_type, const void *body, size_t len,
            const char *const *extra)
{
    char path[128];

    snprintf(path, sizeof path, "/v1/tenants/%s/messages", slug);
    return post_signed_to(g, path, s, content_type, body, len, extra);
}

/* ---- sinks: a tenant's backend, recording every webhook and answering as told ---- */

typedef struct hit {
    char path[128];
    int nh;
    char *name[SINK_MAX_HEADERS], *value[SINK_MAX_HEADERS];
    uint8_t *body;
    size_t body_len;
    char wid[NG_WEBHOOK_ID_MAX + 1]; /* webhook-id as received */
    char subject[256];               /* ce-subject, percent-decoded */
    long t_ms;                       /* monotonic arrival */
    uint64_t wall;                   /* wall-clock arrival, ms */
    int status;                      /* the answer; HANG for one that never got one the gateway could read */
} hit;

/* How to answer the requests whose ce-subject is subject: seq in order, then `then`. */
typedef struct rule {
    char subject[64];
    int seq[SINK_MAX_SEQ];
    int nseq, used, then;
    char retry_after[16]; /* sent with a 429 or 503 when not empty */
} rule;

typedef struct sink {
    const char *name;
    struct MHD_Daemon *d;
    char url[96];
    pthread_mutex_t mu;
    rule rules[SINK_MAX_RULES];
    int nrules;
    int released; /* hanging requests may answer */
    int hanging;
    hit *hits[SINK_MAX_HITS];
    int nhits, dropped;
    atomic_int stopping;
} sink;

/* A request's body as it arrives in pieces. */
struct sink_upload {
    uint8_t *data;
    size_t len, cap;
};

static inline int
unhex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The CloudEvents HTTP binding percent-encodes attribute values; out gets the text as the sender gave it. */
static inline void
pct_decode(char *out, size_t cap, const char *in)
{
    size_t o = 0;

    while (*in != '\0' && o + 1 < cap) {
        if (in[0] == '%' && unhex(in[1]) >= 0 && unhex(in[2]) >= 0) {
            out[o++] = (char)(unhex(in[1]) * 16 + unhex(in[2]));
            in += 3;
        } else {
            out[o++] = *in++;
        }
    }
    out[o] = '\0';
}

static inline enum MHD_Result
sink_keep_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    hit *h = cls;

    (void)kind;
    if (h->nh < SINK_MAX_HEADERS) {
        h->name[h->nh] = strdup(key);
        h->value[h->nh] = strdup(value != NULL ? value : "");
        h->nh++;
    }
    return MHD_YES;
}

/* The first value of a header of h, or NULL; count (if given) gets how many there were. */
static inline const char *
hit_header(const hit *h, const char *name, int *count)
{
    const char *v = NULL;
    int i, n = 0;

    for (i = 0; i < h->nh; i++) {
        if (h->name[i] != NULL && strcasecmp(h->name[i], name) == 0) {
            if (v == NULL)
                v = h->value[i];
            n++;
        }
    }
    if (count != NULL)
        *count = n;
    return v;
}

static inline void
hit_free(hit *h)
{
    int i;

    for (i = 0; i < h->nh; i++) {
        free(h->name[i]);
        free(h->value[i]);
    }
    free(h->body);
    free(h);
}

/* Called under the sink's lock. */
static inline int
sink_decide(sink *s, const char *subject, char retry_after[16])
{
    int i;

    retry_after[0] = '\0';
    for (i = 0; i < s->nrules; i++) {
        rule *r = &s->rules[i];

        if (strcmp(r->subject, subject) == 0) {
            memcpy(retry_after, r->retry_after, sizeof r->retry_after);
            return r->used < r->nseq ? r->seq[r->used++] : r->then;
        }
    }
    return 204;
}

static inline enum MHD_Result
sink_answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
            const char *upload, size_t *upload_size, void **state)
{
    static char empty[] = "";
    sink *s = cls;
    struct sink_upload *u = *state;
    struct MHD_Response *r;
    enum MHD_Result rc;
    char retry_after[16];
    const char *v;
    hit *h;
    int status;

    (void)version;
    if (u == NULL) {
        u = calloc(1, sizeof *u);
        if (u == NULL)
            return MHD_NO;
        *state = u;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (u->len + *upload_size > u->cap) {
            size_t cap = u->cap > 0 ? u->cap * 2 : 65536;
            uint8_t *more;

            while (cap < u->len + *upload_size)
                cap *= 2;
            more = realloc(u->data, cap);
            if (more == NULL)
                return MHD_NO;
            u->data = more;
            u->cap = cap;
        }
        memcpy(u->data + u->len, upload, *upload_size);
        u->len += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    h = calloc(1, sizeof *h);
    if (h == NULL)
        return MHD_NO;
    h->t_ms = now_ms();
    h->wall = wall_ms();
    snprintf(h->path, sizeof h->path, "%s %s", method, url);
    MHD_get_connection_values(conn, MHD_HEADER_KIND, sink_keep_header, h);
    h->body = u->data;
    h->body_len = u->len;
    u->data = NULL;
    v = hit_header(h, "webhook-id", NULL);
    snprintf(h->wid, sizeof h->wid, "%s", v != NULL ? v : "");
    v = hit_header(h, "ce-subject", NULL);
    pct_decode(h->subject, sizeof h->subject, v != NULL ? v : "");

    pthread_mutex_lock(&s->mu);
    status = sink_decide(s, h->subject, retry_after);
    h->status = status;
    if (s->nhits < SINK_MAX_HITS) {
        s->hits[s->nhits++] = h;
    } else {
        s->dropped++;
        hit_free(h);
    }
    if (status == HANG)
        s->hanging++;
    pthread_mutex_unlock(&s->mu);

    if (status == HANG) {
        /* Until the test lets go (it kills the gateway first), or a minute, so that a failed test cannot wedge. */
        long until = now_ms() + 60000;
        int go = 0;

        while (!go && !atomic_load(&s->stopping) && now_ms() < until) {
            sleep_ms(10);
            pthread_mutex_lock(&s->mu);
            go = s->released;
            pthread_mutex_unlock(&s->mu);
        }
        pthread_mutex_lock(&s->mu);
        s->hanging--;
        pthread_mutex_unlock(&s->mu);
        status = 503;
    }
    r = MHD_create_response_from_buffer(0, empty, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    if ((status == 429 || status == 503) && retry_after[0] != '\0')
        MHD_add_response_header(r, "Retry-After", retry_after);
    rc = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

static inline void
sink_completed(void *cls, struct MHD_Connection *conn, void **state, enum MHD_RequestTerminationCode code)
{
    struct sink_upload *u = *state;

    (void)cls;
    (void)conn;
    (void)code;
    if (u != NULL) {
        free(u->data);
        free(u);
        *state = NULL;
    }
}

/*
 * An HTTP server on 127.0.0.1, on a port the kernel picks, answering with
 * answer(cls) and calling completed(cls) (may be NULL) when a request ends;
 * *port is its port. NULL if it does not start.
 */
static inline struct MHD_Daemon *
loopback_daemon(MHD_AccessHandlerCallback answer, MHD_RequestCompletedCallback completed, void *cls, int *port)
{
    const union MHD_DaemonInfo *info;
    struct sockaddr_in sa;
    struct MHD_Daemon *d;

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    /* A thread per connection: a hanging answer holds only its own connection. */
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL, 0, NULL, NULL,
                         answer, cls, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED, completed, cls,
                         MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
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

static inline int
sink_start(sink *s, const char *name)
{
    int port;

    s->name = name;
    pthread_mutex_init(&s->mu, NULL);
    atomic_init(&s->stopping, 0);
    s->d = loopback_daemon(sink_answer, sink_completed, s, &port);
    if (s->d == NULL)
        return -1;
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d/hook/%s", port, name);
    return 0;
}

static inline void
sink_stop(sink *s)
{
    int i;

    if (s->d == NULL)
        return;
    atomic_store(&s->stopping, 1);
    MHD_stop_daemon(s->d);
    s->d = NULL;
    for (i = 0; i < s->nhits; i++)
        hit_free(s->hits[i]);
    s->nhits = 0;
    pthread_mutex_destroy(&s->mu);
}

/* Requests with ce-subject `subject` are answered seq[0], seq[1], ..., then `then`. */
static inline void
sink_rule(sink *s, const char *subject, int then, const int *seq, int nseq)
{
    rule *r = NULL;
    int i;

    assert_true(nseq <= SINK_MAX_SEQ);
    pthread_mutex_lock(&s->mu);
    for (i = 0; i < s->nrules && r == NULL; i++)
        if (strcmp(s->rules[i].subject, subject) == 0)
            r = &s->rules[i];
    if (r == NULL && s->nrules < SINK_MAX_RULES)
        r = &s->rules[s->nrules++];
    if (r != NULL) {
        memset(r, 0, sizeof *r);
        snprintf(r->subject, sizeof r->subject, "%s", subject);
        if (nseq > 0)
            memcpy(r->seq, seq, sizeof r->seq[0] * (size_t)nseq);
        r->nseq = nseq;
        r->then = then;
        /* A new hang holds until the test lets go of it, whatever it let go of before. */
        for (i = 0; i < nseq; i++)
            if (seq[i] == HANG)
                s->released = 0;
    }
    pthread_mutex_unlock(&s->mu);
    assert_non_null(r);
}

#define RULE(s, subject, then, ...)                                                                                    \
    sink_rule((s), (subject), (then), (const int[]){__VA_ARGS__}, (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)))

static inline void
sink_retry_after(sink *s, const char *subject, const char *seconds)
{
    int i;

    pthread_mutex_lock(&s->mu);
    for (i = 0; i < s->nrules; i++)
        if (strcmp(s->rules[i].subject, subject) == 0)
            snprintf(s->rules[i].retry_after, sizeof s->rules[i].retry_after, "%s", seconds);
    pthread_mutex_unlock(&s->mu);
}

static inline void
sink_release(sink *s)
{
    pthread_mutex_lock(&s->mu);
    s->released = 1;
    pthread_mutex_unlock(&s->mu);
}

/*
 * The requests s received for webhook-id id, oldest first, into out (up to
 * max); how many there were. A hit never changes once recorded and is freed
 * only when the sink stops, so the pointers stay valid outside the lock.
 */
static inline int
sink_find(sink *s, const char *id, const hit **out, int max)
{
    int i, n = 0;

    pthread_mutex_lock(&s->mu);
    for (i = 0; i < s->nhits; i++) {
        if (strcmp(s->hits[i]->wid, id) == 0) {
            if (n < max)
                out[n] = s->hits[i];
            n++;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

static inline int
sink_count(sink *s, const char *id)
{
    return sink_find(s, id, NULL, 0);
}

static inline int
sink_total(sink *s)
{
    int n;

    pthread_mutex_lock(&s->mu);
    n = s->nhits;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static inline const hit *
sink_at(sink *s, int i)
{
    const hit *h;

    pthread_mutex_lock(&s->mu);
    h = i < s->nhits ? s->hits[i] : NULL;
    pthread_mutex_unlock(&s->mu);
    return h;
}

static inline int
sink_hanging(sink *s)
{
    int n;

    pthread_mutex_lock(&s->mu);
    n = s->hanging;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Requests s received whose ce-id is id whatever their webhook-id: what a wrong webhook-id hides. */
static inline int
sink_count_ce(sink *s, const char *id)
{
    int i, n = 0;

    pthread_mutex_lock(&s->mu);
    for (i = 0; i < s->nhits; i++) {
        const char *v = hit_header(s->hits[i], "ce-id", NULL);

        n += v != NULL && strcmp(v, id) == 0;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Waits until s has received at least n requests for id; fails after ms. */
static inline void
wait_hits_at(sink *s, const char *id, int n, long ms, int line)
{
    long t0 = now_ms();

    while (sink_count(s, id) < n) {
        if (now_ms() - t0 > ms)
            fail_msg("line %d: %s's backend got %d requests with webhook-id %s in %ld ms, expected %d (%d with that "
                     "ce-id)",
                     line, s->name, sink_count(s, id), id, ms, n, sink_count_ce(s, id));
        sleep_ms(10);
    }
}

#define WAIT_HITS(s, id, n, ms) wait_hits_at((s), (id), (n), (ms), __LINE__)

/* ---- tenants: a gateway's tenant with a sink as its backend ---- */

typedef struct tenant {
    const char *slug;
    gateway *g;
    sink sink;
    char backend[BACKEND_ID_BYTES]; /* the id of its backend */
    signer key;                     /* its backend's whsec_: signs submissions, and v1 on webhooks verifies under it */
    uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES]; /* signing_public of `tenant show`: v1a verifies under it */
} tenant;

/* What `backend add` printed: the whsec_ secret it shows once into key, and the backend's id into id (if not NULL). */
static inline void
backend_added(const blob *out, signer *key, char id[BACKEND_ID_BYTES])
{
    const char *p = strstr(text_of(out), "whsec_"), *b = strstr(text_of(out), "backend ");
    size_t n;

    assert_non_null(p);
    assert_non_null(b);
    signer_whsec(key, p, strcspn(p, " \t\r\n"));
    b += strlen("backend ");
    n = strcspn(b, " ");
    assert_true(n > 0 && n < BACKEND_ID_BYTES);
    if (id != NULL) {
        memcpy(id, b, n);
        id[n] = '\0';
    }
}

/* `backend add` with t's sink as the URL: the backend's id, and the whsec_ secret it prints once. */
static inline void
add_backend(tenant *t)
{
    backend_added(GCLI(t->g, "backend", "add", t->slug, "--url", t->sink.url), &t->key, t->backend);
}

/* The tenant's webhook signing key, from `tenant show`, as a backend gets it. */
static inline void
signing_key(tenant *t)
{
    json_t *j = gcli_json(t->g, ARGS("tenant", "show", t->slug, "--json"));
    const char *hex, *whpk;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    size_t len;

    hex = jstr(j, "signing_public");
    whpk = jstr(j, "signing_key");
    assert_true(is_lower_hex(hex, 2 * crypto_sign_PUBLICKEYBYTES));
    assert_int_equal(sodium_hex2bin(t->sign_pk, sizeof t->sign_pk, hex, strlen(hex), NULL, &len, NULL), 0);
    assert_int_equal(len, sizeof t->sign_pk);
    /* The whpk_ form a Standard Webhooks library takes is the same key. */
    assert_true(strncmp(whpk, "whpk_", 5) == 0);
    assert_int_equal(
        sodium_base642bin(pk, sizeof pk, whpk + 5, strlen(whpk + 5), NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL),
        0);
    assert_int_equal(len, sizeof pk);
    assert_memory_equal(pk, t->sign_pk, sizeof pk);
}

/* Starts the sink of each of the n tenants of all (its backend); -1 if one does not start. */
static inline int
sinks_start(tenant *const *all, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (sink_start(&all[i]->sink, all[i]->slug) != 0)
            return -1;
    return 0;
}

/*
 * After a and b are configured: the sinks of the n tenants started and
 * both vaults made. 0, or -1 if a sink does not start.
 */
static inline int
two_gateways_init(gateway *a, gateway *b, tenant *const *tenants, size_t n)
{
    if (sinks_start(tenants, n) != 0)
        return -1;
    GCLI(a, "vault", "init");
    GCLI(b, "vault", "init");
    return 0;
}

/*
 * What a suite with two gateways does first, a and b configured alike: the
 * run's tag, dir made (prefix-XXXXXX), a and b on ports of their own with
 * listen_more and the sections from fmt (as gateway_config), then
 * two_gateways_init. 0, or -1 if something does not start.
 */
static inline int two_gateways_begin(char *dir, size_t cap, const char *prefix, gateway *a, gateway *b,
                                     tenant *const *tenants, size_t n, const char *listen_more, const char *fmt, ...)
    __attribute__((format(printf, 9, 10)));

static inline int
two_gateways_begin(char *dir, size_t cap, const char *prefix, gateway *a, gateway *b, tenant *const *tenants, size_t n,
                   const char *listen_more, const char *fmt, ...)
{
    va_list ap;
    const char *sections;

    tag_init();
    if (make_temp_dir(dir, cap, prefix) != 0)
        return -1;
    va_start(ap, fmt);
    sections = vtextf(fmt, ap);
    va_end(ap);
    gateway_config(a, dir, 0, listen_more, "%s", sections);
    gateway_config(b, dir, a->port, listen_more, "%s", sections);
    return two_gateways_init(a, b, tenants, n);
}

/*
 * Every tenant of all gets its sink as its backend and its signing key
 * read; from and each other one import each other's connection parameters,
 * under their slugs. from's are exported with from_outbox as its outbox
 * (NULL: its own gateway's, as configured).
 */
static inline void
connect_tenants(tenant *from, const char *from_outbox, tenant *const *all, size_t n)
{
    const char *params = export_params(from->g, from->slug, from_outbox);
    size_t i;

    for (i = 0; i < n; i++) {
        tenant *x = all[i];

        add_backend(x);
        signing_key(x);
        if (x == from)
            continue;
        GCLI(from->g, "peer", "import", from->slug, export_params(x->g, x->slug, NULL), "--name", x->slug);
        GCLI(x->g, "peer", "import", x->slug, params, "--name", from->slug);
    }
}

/*
 * The end of a suite (group teardown): the gateways and their embedded
 * redis-servers gone, the tenants' sinks let go of and stopped, what the
 * tests kept freed, and dir removed (unless NG_KEEP). Both lists end with
 * NULL; what else a suite started is its own to stop first.
 */
static inline int
suite_teardown(const char *dir, gateway *const *gateways, tenant *const *tenants)
{
    size_t i;

    for (i = 0; gateways[i] != NULL; i++)
        kill_gateway(gateways[i]);
    for (i = 0; tenants[i] != NULL; i++) {
        sink_release(&tenants[i]->sink);
        sink_stop(&tenants[i]->sink);
    }
    blobs_free();
    keep_free();
    return remove_temp_dir(dir);
}

/* POST /v1/tenants/{from}/messages, signed v1 by from's backend; extra headers "Name: value". */
static inline reply
submit(const tenant *from, const char *content_type, const void *body, size_t len, const char *const *extra)
{
    return post_signed(from->g, from->slug, &from->key, content_type, body, len, extra);
}

/* {"waiting", "dead"} of a tenant's inbox, from the admin API. */
static inline void
queue_of(const tenant *t, long *waiting, long *dead)
{
    char path[128];
    reply r;

    snprintf(path, sizeof path, "/v1/admin/tenants/%s/queue", t->slug);
    r = admin(t->g, "GET", path, NULL);
    EXPECT_STATUS(r, 200);
    assert_true(json_is_integer(json_object_get(r.json, "waiting")));
    assert_true(json_is_integer(json_object_get(r.json, "dead")));
    *waiting = (long)json_integer_value(json_object_get(r.json, "waiting"));
    *dead = (long)json_integer_value(json_object_get(r.json, "dead"));
}

/* Waits until t's inbox has want_waiting waiting and (unless want_dead < 0) want_dead dead; fails after ms. */
static inline void
wait_queue_at(const tenant *t, long want_waiting, long want_dead, long ms, int line)
{
    long t0 = now_ms(), waiting, dead;

    for (;;) {
        queue_of(t, &waiting, &dead);
        if (waiting == want_waiting && (want_dead < 0 || dead == want_dead))
            return;
        if (now_ms() - t0 > ms)
            fail_msg("line %d: %s's queue has waiting %ld, dead %ld after %ld ms; expected %ld, %ld", line, t->slug,
                     waiting, dead, ms, want_waiting, want_dead);
        sleep_ms(50);
    }
}

#define WAIT_QUEUE(t, waiting, dead, ms) wait_queue_at((t), (waiting), (dead), (ms), __LINE__)

/* ---- a tally: what one backend must have received ---- */

enum { TALLY_MAX = 64 };

/* Messages stored for one backend, each with how often it must arrive: 1; 0 for one that must not; -1 for one no test
 * can vouch for (counted, not checked). */
typedef struct tally {
    struct {
        char id[MSG_ID_HEX + 1];
        int want;
    } e[TALLY_MAX];
    size_t n;
} tally;

static inline void
tally_add(tally *l, const char *id, int want)
{
    assert_true(l->n < TALLY_MAX);
    snprintf(l->e[l->n].id, sizeof l->e[l->n].id, "%s", id);
    l->e[l->n++].want = want;
}

/* So far, each message reached s as often as l says, nothing else reached s, and nothing reached silent. */
static inline void
expect_tally_at(const tally *l, sink *s, sink *silent, int line)
{
    int want = 0, n;
    size_t i;

    for (i = 0; i < l->n; i++) {
        n = sink_count(s, l->e[i].id);
        if (l->e[i].want < 0) {
            want += n;
            continue;
        }
        if (n != l->e[i].want)
            fail_msg("line %d: message %s reached the backend %d times, expected %d", line, l->e[i].id, n,
                     l->e[i].want);
        want += l->e[i].want;
    }
    /* A message stored after all behind a 503 would show here. */
    if (sink_total(s) != want)
        fail_msg("line %d: the backend got %d requests; the tally accounts for %d", line, sink_total(s), want);
    assert_int_equal(sink_total(silent), 0);
}

/* ---- messages from one tenant's backend to another's ---- */

/* What a test sent and expects to arrive. */
typedef struct msg {
    tenant *from, *to;
    const char *from_as; /* the sender's peer name at the recipient's gateway; NULL: its slug */
    const char *pattern; /* NULL: the peer's choice */
    const char *content_type;
    const uint8_t *body;
    size_t len;
    int binary; /* sent as body_base64 */
    const char *type, *subject;
    int ttl;                 /* 0: MSG_TTL_S */
    char id[MSG_ID_HEX + 1]; /* from the 202 */
    long long expires;       /* from the 202 */
    long sent_ms;
    uint64_t sent_wall;
} msg;

/* The JSON form of m, one message. */
static inline json_t *
msg_json(const msg *m)
{
    json_t *j = json_pack("{s:s, s:s, s:i}", "recipient", m->to->slug, "content_type", m->content_type, "ttl",
                          m->ttl > 0 ? m->ttl : MSG_TTL_S);

    assert_non_null(j);
    if (m->binary) {
        size_t cap = sodium_base64_ENCODED_LEN(m->len, sodium_base64_VARIANT_ORIGINAL);
        char *b64 = malloc(cap);

        assert_non_null(b64);
        sodium_bin2base64(b64, cap, m->body, m->len, sodium_base64_VARIANT_ORIGINAL);
        json_object_set_new(j, "body_base64", json_string(b64));
        free(b64);
    } else {
        json_object_set_new(j, "body", json_stringn((const char *)m->body, m->len));
    }
    if (m->pattern != NULL)
        json_object_set_new(j, "pattern", json_string(m->pattern));
    if (m->type != NULL)
        json_object_set_new(j, "type", json_string(m->type));
    if (m->subject != NULL)
        json_object_set_new(j, "subject", json_string(m->subject));
    return j;
}

/* m from m->from's backend, with extra headers; on a 202, m->id and m->expires are what the gateway said. */
static inline reply
submit_msg(msg *m, const char *const *extra)
{
    const char *body = dump(msg_json(m));
    reply r;

    m->sent_ms = now_ms();
    m->sent_wall = wall_ms();
    r = submit(m->from, "application/json", body, strlen(body), extra);
    if (r.status == 202) {
        snprintf(m->id, sizeof m->id, "%s", jstr(r.json, "id"));
        m->expires = (long long)json_integer_value(json_object_get(r.json, "expires"));
        assert_string_equal(jstr(r.json, "recipient"), m->to->slug);
        assert_true(is_lower_hex(m->id, MSG_ID_HEX));
    }
    return r;
}

/* m, which must be accepted. */
static inline void
send_message(msg *m)
{
    EXPECT_STATUS(submit_msg(m, NULL), 202);
}

/* A text body of a test, unique to this run, with UTF-8 and the characters JSON escapes. */
static inline void
text_body(msg *m, const char *what)
{
    char buf[512];
    const char *b;

    snprintf(buf, sizeof buf, "%s \xc3\xa9t\xc3\xa9 \xe2\x82\xac %s \"quoted\" \\ end", what, tag);
    b = text_of(blob_str(buf));
    m->body = (const uint8_t *)b;
    m->len = strlen(b);
    m->binary = 0;
}

/* A binary body: every byte value, NULs first and inside, then random bytes. */
static inline void
binary_body(msg *m, size_t len)
{
    blob *b = blob_new();
    uint8_t x;
    size_t i;

    for (i = 0; i < len; i++) {
        if (i < 256)
            x = (uint8_t)i;
        else if (i % 7 == 0)
            x = 0;
        else
            x = (uint8_t)randombytes_uniform(256);
        blob_append(b, &x, 1);
    }
    m->body = b->data;
    m->len = b->len;
    m->binary = 1;
}

/* ---- the Standard Webhooks verifier of a backend, written here ---- */

/* "<id>.<timestamp>.<body>", the signed content. */
static inline blob *
signed_content(const char *id, const char *ts, const uint8_t *body, size_t len)
{
    blob *b = blob_new();

    blob_append(b, id, strlen(id));
    blob_append(b, ".", 1);
    blob_append(b, ts, strlen(ts));
    blob_append(b, ".", 1);
    blob_append(b, body, len);
    return b;
}

static inline int
verify_v1(const uint8_t *key, size_t key_len, const blob *content, const char *b64)
{
    crypto_auth_hmacsha256_state st;
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    char want[sodium_base64_ENCODED_LEN(crypto_auth_hmacsha256_BYTES, sodium_base64_VARIANT_ORIGINAL)];

    crypto_auth_hmacsha256_init(&st, key, key_len);
    crypto_auth_hmacsha256_update(&st, content->data, content->len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2base64(want, sizeof want, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    return strcmp(want, b64) == 0;
}

static inline int
verify_v1a(const uint8_t pk[crypto_sign_PUBLICKEYBYTES], const blob *content, const char *b64)
{
    uint8_t sig[crypto_sign_BYTES];
    size_t len;

    if (sodium_base642bin(sig, sizeof sig, b64, strlen(b64), NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        len != sizeof sig)
        return 0;
    return crypto_sign_verify_detached(sig, content->data, content->len, pk) == 0;
}

/*
 * 1 if webhook-signature holds exactly one v1 and one v1a entry, and both
 * verify over body (which a test may change to see them fail).
 */
static inline int
signatures_ok(const hit *h, const tenant *t, const uint8_t *body, size_t len, char *why, size_t why_cap)
{
    const char *id = hit_header(h, "webhook-id", NULL), *ts = hit_header(h, "webhook-timestamp", NULL);
    const char *sig = hit_header(h, "webhook-signature", NULL);
    char entries[NG_WEBHOOK_HEADER_MAX + 1], *save = NULL, *e;
    int v1 = 0, v1a = 0, ok1 = 0, ok1a = 0;
    blob *content;

    if (id == NULL || ts == NULL || sig == NULL) {
        snprintf(why, why_cap, "webhook-id, -timestamp or -signature missing");
        return 0;
    }
    content = signed_content(id, ts, body, len);
    snprintf(entries, sizeof entries, "%s", sig);
    for (e = strtok_r(entries, " ", &save); e != NULL; e = strtok_r(NULL, " ", &save)) {
        if (strncmp(e, "v1,", 3) == 0) {
            v1++;
            ok1 |= verify_v1(t->key.secret, t->key.secret_len, content, e + 3);
        } else if (strncmp(e, "v1a,", 4) == 0) {
            v1a++;
            ok1a |= verify_v1a(t->sign_pk, content, e + 4);
        }
    }
    snprintf(why, why_cap, "webhook-signature \"%.300s\": %d v1 (%s), %d v1a (%s)", sig, v1,
             ok1 ? "verifies" : "does not verify", v1a, ok1a ? "verifies" : "does not verify");
    return v1 == 1 && v1a == 1 && ok1 && ok1a;
}

static inline void
expect_header_at(const hit *h, const char *name, const char *want, int line)
{
    int count;
    const char *v = hit_header(h, name, &count);

    if (v == NULL)
        fail_msg("line %d: the webhook has no %s header", line, name);
    if (count != 1)
        fail_msg("line %d: the webhook has %d %s headers", line, count, name);
    if (strcmp(v, want) != 0)
        fail_msg("line %d: the webhook's %s is \"%s\", expected \"%s\"", line, name, v, want);
}

#define EXPECT_HEADER(h, name, want) expect_header_at((h), (name), (want), __LINE__)

/* Unix ms of "YYYY-MM-DDTHH:MM:SS.mmmZ", or -1. */
static inline long long
rfc3339_ms(const char *s)
{
    int y, mo, d, h, mi, sec, ms, n = 0;
    long long days;

    if (strlen(s) != 24 || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &y, &mo, &d, &h, &mi, &sec, &ms, &n) != 7 ||
        n != 24 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    /* Days from the civil date (Howard Hinnant's algorithm), so no timegm is needed. */
    y -= mo <= 2;
    {
        long long era = (y >= 0 ? y : y - 399) / 400;
        long long yoe = y - era * 400;
        long long doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

        days = era * 146097 + doe - 719468;
    }
    return ((days * 24 + h) * 60 + mi) * 60000LL + sec * 1000LL + ms;
}

/* One attempt of m as its backend must see it: CloudEvents binary mode, signed both ways, the body as sent. */
static inline void
expect_webhook_at(const hit *h, const msg *m, int line)
{
    char path[160], source[128], why[600], decoded[512];
    const char *ts = hit_header(h, "webhook-timestamp", NULL), *v;
    long long tsv;

    snprintf(path, sizeof path, "POST /hook/%s", m->to->slug);
    if (strcmp(h->path, path) != 0)
        fail_msg("line %d: message %s came as \"%s\", expected \"%s\"", line, m->id, h->path, path);
    if (h->body_len != m->len || (m->len > 0 && memcmp(h->body, m->body, m->len) != 0))
        fail_msg("line %d: message %s arrived with a body of %zu bytes that differs from the %zu sent", line, m->id,
                 h->body_len, m->len);
    EXPECT_HEADER(h, "content-type", m->content_type);
    EXPECT_HEADER(h, "ce-specversion", "1.0");
    EXPECT_HEADER(h, "ce-id", m->id);
    EXPECT_HEADER(h, "webhook-id", m->id);
    if (m->pattern != NULL)
        EXPECT_HEADER(h, "ce-ngpattern", m->pattern);
    v = hit_header(h, "ce-type", NULL);
    pct_decode(decoded, sizeof decoded, v != NULL ? v : "");
    if (v == NULL || strcmp(decoded, m->type != NULL ? m->type : "org.noisegate.message") != 0)
        fail_msg("line %d: ce-type \"%s\", expected \"%s\"", line, v != NULL ? v : "(none)",
                 m->type != NULL ? m->type : "org.noisegate.message");
    if (m->subject != NULL && strcmp(h->subject, m->subject) != 0)
        fail_msg("line %d: ce-subject decodes to \"%s\", expected \"%s\"", line, h->subject, m->subject);
    /* The sending peer; an N parcel authenticates no sender, so it may not name one. */
    snprintf(source, sizeof source, "urn:noisegate:%s:%s", m->to->slug,
             m->pattern != NULL && m->pattern[0] == 'N' ? "anonymous"
             : m->from_as != NULL                       ? m->from_as
                                                        : m->from->slug);
    EXPECT_HEADER(h, "ce-source", source);
    v = hit_header(h, "ce-time", NULL);
    if (v == NULL || rfc3339_ms(v) < 0)
        fail_msg("line %d: ce-time \"%s\" is not RFC 3339 UTC with milliseconds", line, v != NULL ? v : "(none)");
    /* When the message was made: at its submission, not at an attempt. */
    if (m->sent_wall != 0 &&
        (rfc3339_ms(v) + 2000 < (long long)m->sent_wall || rfc3339_ms(v) > (long long)m->sent_wall + 2000))
        fail_msg("line %d: ce-time %s, but the message was sent at %llu ms", line, v, (unsigned long long)m->sent_wall);
    if (m->expires != 0) {
        char want[32];

        snprintf(want, sizeof want, "%lld", m->expires);
        EXPECT_HEADER(h, "ce-ngexpires", want);
    }
    /* Fresh per attempt: the time it was sent, not the time the message was made. */
    if (ts == NULL || sscanf(ts, "%lld", &tsv) != 1 || tsv < (long long)(h->wall / 1000) - 2 ||
        tsv > (long long)(h->wall / 1000) + 1)
        fail_msg("line %d: webhook-timestamp \"%s\" is not the time of the attempt (%llu)", line,
                 ts != NULL ? ts : "(none)", (unsigned long long)(h->wall / 1000));
    if (!signatures_ok(h, m->to, h->body, h->body_len, why, sizeof why))
        fail_msg("line %d: message %s: %s", line, m->id, why);
}

#define EXPECT_WEBHOOK(h, m) expect_webhook_at((h), (m), __LINE__)

/* Exactly one attempt of m, answered 2xx, as its backend must see it. */
static inline const hit *
expect_once_at(const msg *m, int line)
{
    const hit *h[4];
    int n = sink_find(&m->to->sink, m->id, h, 4);

    if (n != 1)
        fail_msg("line %d: message %s reached %s's backend %d times, expected once", line, m->id, m->to->slug, n);
    if (h[0]->status < 200 || h[0]->status > 299)
        fail_msg("line %d: message %s was answered %d", line, m->id, h[0]->status);
    expect_webhook_at(h[0], m, line);
    return h[0];
}

#define EXPECT_ONCE(m) expect_once_at((m), __LINE__)

#endif

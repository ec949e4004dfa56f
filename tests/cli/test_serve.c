/*
 * noisegate serve as an operator runs it: the real binary (NG_BIN) with a
 * config on a free loopback port and its embedded redis-server, driven
 * over HTTP with libcurl. Health, readiness (503 while Redis is down, back
 * once the supervisor restarted it), metrics, the error shapes, the body
 * limit, JSON logs with request ids, and SIGTERM: exit 0 with nothing left
 * running.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

extern char **environ;

static char dir[256], bin[PATH_MAX], cfg[400], logpath[400], sock[400];
static pid_t gw;
static int port;

struct body {
    char *data;
    size_t len;
};

static size_t
collect(char *p, size_t size, size_t n, void *ctx)
{
    struct body *b = ctx;
    char *more = realloc(b->data, b->len + size * n + 1);

    if (more == NULL)
        return 0;
    b->data = more;
    memcpy(b->data + b->len, p, size * n);
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* One request to the public listener (or the admin socket); the status, or -1 if nothing answered. */
static long
http(const char *method, const char *path, const char *payload, size_t payload_len, int admin, struct body *out,
     char *request_id, size_t id_cap)
{
    char url[256];
    struct curl_slist *hdrs = NULL;
    struct body b = {NULL, 0}, h = {NULL, 0};
    CURL *c = curl_easy_init();
    long status = -1;

    if (admin)
        snprintf(url, sizeof url, "http://localhost%s", path);
    else
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (admin)
        curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    if (payload != NULL) {
        hdrs = curl_slist_append(hdrs, "content-type: application/json");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)payload_len);
    }
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (request_id != NULL && h.data != NULL) {
        char *p = strstr(h.data, "x-request-id: ");
        request_id[0] = '\0';
        if (p != NULL)
            snprintf(request_id, id_cap, "%.32s", p + 14);
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    free(h.data);
    if (out != NULL)
        *out = b;
    else
        free(b.data);
    return status;
}

#define GET(path) http("GET", (path), NULL, 0, 0, NULL, NULL, 0)

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static int
free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), p;

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    p = ntohs(a.sin_port);
    close(fd);
    return p;
}

/* Runs the binary to completion; its exit status. */
static int
run(const char *const *args)
{
    const char *argv[16];
    pid_t pid;
    int st, i, n = 0;

    argv[n++] = bin;
    for (i = 0; args[i] != NULL; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    if (posix_spawn(&pid, bin, NULL, NULL, (char *const *)argv, environ) != 0)
        return -1;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Starts serve with its stderr into logpath; waits until /healthz answers. */
static void
start_gateway(void)
{
    posix_spawn_file_actions_t fa;
    const char *argv[] = {bin, "serve", "--config", cfg, NULL};
    int i;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
    assert_int_equal(posix_spawn(&gw, bin, &fa, NULL, (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    for (i = 0; i < 300; i++) {
        if (GET("/healthz") == 200)
            return;
        if (waitpid(gw, NULL, WNOHANG) == gw)
            fail_msg("noisegate serve exited at start; see %s", logpath);
        sleep_ms(50);
    }
    fail_msg("noisegate serve did not answer /healthz");
}

/* SIGTERM: exit status 0 within 15 s. */
static void
stop_gateway(void)
{
    int st = 0, i;

    if (gw <= 0)
        return;
    kill(gw, SIGTERM);
    for (i = 0; i < 300 && waitpid(gw, &st, WNOHANG) == 0; i++)
        sleep_ms(50);
    if (i == 300) {
        kill(gw, SIGKILL);
        waitpid(gw, &st, 0);
        gw = 0;
        fail_msg("noisegate serve did not stop on SIGTERM");
    }
    gw = 0;
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static long
redis_pid(void)
{
    char path[500], buf[32] = "";
    FILE *f;

    snprintf(path, sizeof path, "%s/data/redis/redis.pid", dir);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    if (fgets(buf, sizeof buf, f) == NULL)
        buf[0] = '\0';
    fclose(f);
    return strtol(buf, NULL, 10);
}

static int
setup(void **state)
{
    FILE *f;

    (void)state;
    snprintf(dir, sizeof dir, "%s/ngserve-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL)
        return -1;
    port = free_port();
    snprintf(cfg, sizeof cfg, "%s/gw.json", dir);
    snprintf(logpath, sizeof logpath, "%s/gw.log", dir);
    snprintf(sock, sizeof sock, "%s/data/admin.sock", dir);
    f = fopen(cfg, "w");
    if (f == NULL || port <= 0)
        return -1;
    fprintf(f,
            "{\"data_dir\": \"data\", \"listen\": {\"address\": \"127.0.0.1\", \"port\": %d, \"max_body\": 65536, "
            "\"timeout_s\": 5}, \"log\": {\"format\": \"json\"}}\n",
            port);
    fclose(f);
    {
        const char *const init[] = {"vault", "init", "--config", cfg, NULL};
        if (run(init) != 0)
            return -1;
    }
    start_gateway();
    return 0;
}

static int
teardown(void **state)
{
    char cmd[400];

    (void)state;
    if (gw > 0) {
        kill(gw, SIGKILL);
        waitpid(gw, NULL, 0);
        gw = 0;
    }
    if (redis_pid() > 0)
        kill((pid_t)redis_pid(), SIGKILL);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void
test_health_metrics_errors(void **state)
{
    struct body b;
    json_t *j;
    char *big;

    (void)state;
    assert_int_equal(GET("/readyz"), 200);
    assert_int_equal(http("GET", "/nope", NULL, 0, 0, &b, NULL, 0), 404);
    j = json_loads(b.data, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")), "not_found");
    json_decref(j);
    free(b.data);
    assert_int_equal(http("POST", "/healthz", "{}", 2, 0, NULL, NULL, 0), 405);
    /* Over listen.max_body: 413, and the gateway goes on. */
    big = malloc(200000);
    assert_non_null(big);
    memset(big, 'a', 200000);
    assert_int_equal(http("POST", "/healthz", big, 200000, 0, &b, NULL, 0), 413);
    assert_non_null(strstr(b.data, "too_large"));
    free(b.data);
    free(big);
    assert_int_equal(GET("/healthz"), 200);
    /* Metrics count what happened, labelled by route, never by the raw path. */
    assert_int_equal(http("GET", "/metrics", NULL, 0, 0, &b, NULL, 0), 200);
    assert_non_null(strstr(b.data, "# TYPE ng_http_requests_total counter"));
    assert_non_null(strstr(b.data, "route=\"/healthz\""));
    assert_non_null(strstr(b.data, "status=\"413\""));
    assert_null(strstr(b.data, "/nope"));
    free(b.data);
    /* The admin listener is a unix socket under data_dir, mode 0600. */
    {
        struct stat st;
        assert_int_equal(stat(sock, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(http("GET", "/healthz", NULL, 0, 1, NULL, NULL, 0), 200);
    }
    /* Admin routes want the token, whichever handler is behind them; the CLI sends it. */
    {
        const char *const list[] = {"admin", "GET", "/v1/admin/tenants", "--config", cfg, NULL};
        const char *const replay[] = {"dead", "replay", "nobody", "1-0", "--config", cfg, NULL};

        assert_int_equal(http("GET", "/v1/admin/tenants", NULL, 0, 1, &b, NULL, 0), 401);
        assert_non_null(strstr(b.data, "unauthorized"));
        free(b.data);
        assert_int_equal(http("POST", "/v1/admin/tenants/x/dead/1-0/replay", "{}", 2, 1, NULL, NULL, 0), 401);
        assert_int_equal(http("POST", "/v1/admin/tenants/x/pairings", "{}", 2, 1, NULL, NULL, 0), 401);
        assert_int_equal(run(list), 0);
        assert_int_equal(run(replay), 1); /* authorised, and refused: no such dead letter */
    }
    stop_gateway();
}

/* Each request is logged once, as JSON, with the id the response carried. */
static void
test_logs(void **state)
{
    char id[64], line[4096];
    int found = 0, lines = 0;
    FILE *f;

    (void)state;
    assert_int_equal(http("GET", "/healthz", NULL, 0, 0, NULL, id, sizeof id), 200);
    assert_int_equal(strlen(id), 32);
    stop_gateway();
    f = fopen(logpath, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f) != NULL) {
        json_t *j = json_loads(line, 0, NULL);
        if (j == NULL)
            fail_msg("a log line is not JSON: %s", line);
        lines++;
        if (json_is_string(json_object_get(j, "request_id")) &&
            strcmp(json_string_value(json_object_get(j, "request_id")), id) == 0)
            found++;
        json_decref(j);
    }
    fclose(f);
    assert_int_equal(found, 1);
    assert_true(lines >= 4); /* listening, the requests, draining, stopped */
}

/* The embedded Redis dies: /readyz says 503 until the supervisor has it back. */
static void
test_redis_dies(void **state)
{
    long pid = redis_pid(), status = 0;
    int i;

    (void)state;
    assert_true(pid > 0);
    kill((pid_t)pid, SIGKILL);
    for (i = 0; i < 200 && (status = GET("/readyz")) == 200; i++)
        sleep_ms(10);
    assert_int_equal(status, 503);
    for (i = 0; i < 300 && (status = GET("/readyz")) != 200; i++)
        sleep_ms(50);
    assert_int_equal(status, 200);
    assert_true(redis_pid() != pid);
    pid = redis_pid();
    stop_gateway();
    /* Stopped with the gateway. */
    assert_true(kill((pid_t)pid, 0) != 0);
}

/* Without the master key nothing starts listening. */
static void
test_refuses_without_key(void **state)
{
    char key[500];
    const char *const serve[] = {"serve", "--config", cfg, NULL};

    (void)state;
    stop_gateway();
    snprintf(key, sizeof key, "%s/data/vault.key", dir);
    assert_int_equal(unlink(key), 0);
    assert_int_equal(run(serve), 1);
    assert_int_equal(GET("/healthz"), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_health_metrics_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_dies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_without_key, setup, teardown),
    };
    const char *b = getenv("NG_BIN");

    if (b == NULL) {
        fprintf(stderr, "NG_BIN is not set: run through make test\n");
        return 1;
    }
    snprintf(bin, sizeof bin, "%s", b);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return cmocka_run_group_tests_name("serve", tests, NULL, NULL);
}

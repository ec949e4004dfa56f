/*
 * noisegate serve as an operator runs it: the real binary (NG_BIN) with a
 * config on a free loopback port and its embedded redis-server, driven
 * over HTTP with libcurl. Health, readiness (503 while Redis is down, back
 * once the supervisor restarted it), metrics, the error shapes, the body
 * limit, JSON logs with request ids, and SIGTERM: exit 0 with nothing left
 * running.
 */
#include "gateway_harness.h"

static char dir[PATH_MAX / 2];
static gateway gw = {.name = "gw"};

#define GET(path) GW_GET(&gw, (path))

static int
setup(void **state)
{
    (void)state;
    if (make_temp_dir(dir, sizeof dir, "ngserve") != 0)
        return -1;
    gateway_init(&gw, dir, loopback_free_port());
    if (gw.port <= 0)
        return -1;
    write_config(&gw, ", \"max_body\": 65536, \"timeout_s\": 5", "");
    GCLI(&gw, "vault", "init");
    start_gateway(&gw);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    kill_gateway(&gw);
    blobs_free();
    keep_clear();
    return remove_temp_dir(dir);
}

#define JSON_TYPE "content-type: application/json"

static void
test_health_metrics_errors(void **state)
{
    reply r;
    char *big;

    (void)state;
    assert_int_equal(GET("/readyz").status, 200);
    r = GET("/nope");
    assert_int_equal(r.status, 404);
    assert_non_null(r.json);
    assert_string_equal(r.code, "not_found");
    assert_int_equal(gw_http(&gw, "POST", "/healthz", ARGS(JSON_TYPE), "{}", 2).status, 405);
    /* Over listen.max_body: 413, and the gateway goes on. */
    big = malloc(200000);
    assert_non_null(big);
    memset(big, 'a', 200000);
    r = gw_http(&gw, "POST", "/healthz", ARGS(JSON_TYPE), big, 200000);
    free(big);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(text_of(r.body), "too_large"));
    assert_int_equal(GET("/healthz").status, 200);
    /* Metrics count what happened, labelled by route, never by the raw path. */
    r = GET("/metrics");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(text_of(r.body), "# TYPE ng_http_requests_total counter"));
    assert_non_null(strstr(text_of(r.body), "route=\"/healthz\""));
    assert_non_null(strstr(text_of(r.body), "status=\"413\""));
    assert_null(strstr(text_of(r.body), "/nope"));
    /* The admin listener is a unix socket under data_dir, mode 0600. */
    {
        struct stat st;
        assert_int_equal(stat(gw.sock, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(admin_as(&gw, NULL, "GET", "/healthz", NULL).status, 200);
    }
    /* Admin routes want the token, whichever handler is behind them; the CLI sends it. */
    r = admin_as(&gw, NULL, "GET", "/v1/admin/tenants", NULL);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(text_of(r.body), "unauthorized"));
    assert_int_equal(admin_as(&gw, NULL, "POST", "/v1/admin/tenants/x/dead/1-0/replay", "{}").status, 401);
    assert_int_equal(admin_as(&gw, NULL, "POST", "/v1/admin/tenants/x/pairings", "{}").status, 401);
    EXPECT_EXIT(ng(NULL, ARGS("admin", "GET", "/v1/admin/tenants", "--config", gw.cfg)), 0);
    /* Authorised, and refused: no such dead letter. */
    EXPECT_EXIT(ng(NULL, ARGS("dead", "replay", "nobody", "1-0", "--config", gw.cfg)), 1);
    stop_gateway(&gw);
}

/* Each request is logged once, as JSON, with the id the response carried. */
static void
test_logs(void **state)
{
    char line[4096];
    int found = 0, lines = 0;
    const char *id;
    reply r;
    FILE *f;

    (void)state;
    r = GET("/healthz");
    assert_int_equal(r.status, 200);
    id = header_of(&r, "x-request-id");
    assert_non_null(id);
    assert_int_equal(strlen(id), 32);
    stop_gateway(&gw);
    f = fopen(gw.log, "r");
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
    pid_t pid = redis_pid_file(&gw);
    long status = 0;
    int i;

    (void)state;
    assert_true(pid > 0);
    kill(pid, SIGKILL);
    for (i = 0; i < 200 && (status = GET("/readyz").status) == 200; i++)
        sleep_ms(10);
    assert_int_equal(status, 503);
    for (i = 0; i < 300 && (status = GET("/readyz").status) != 200; i++)
        sleep_ms(50);
    assert_int_equal(status, 200);
    assert_true(redis_pid_file(&gw) != pid);
    pid = redis_pid_file(&gw);
    stop_gateway(&gw);
    /* Stopped with the gateway. */
    assert_true(kill(pid, 0) != 0);
}

/* Without the master key nothing starts listening. */
static void
test_refuses_without_key(void **state)
{
    char key[PATH_MAX];

    (void)state;
    stop_gateway(&gw);
    snprintf(key, sizeof key, "%s/vault.key", gw.data);
    assert_int_equal(unlink(key), 0);
    EXPECT_EXIT(ng(NULL, ARGS("serve", "--config", gw.cfg)), 1);
    assert_int_equal(GET("/healthz").status, -1);
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

    if (suite_init() != 0)
        return 1;
    return cmocka_run_group_tests_name("serve", tests, NULL, NULL);
}

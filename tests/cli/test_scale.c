/*
 * Scale-out: three `noisegate serve` processes of one configuration ("b")
 * share one Redis that this suite starts on a unix socket (queues and, with
 * vault.store "redis", the vault: they share tenant bob). Gateway "a"
 * (tenant alice, embedded Redis) sends to bob. The three differ only by
 * what their environment says: listen port and admin socket
 * (NOISEGATE_LISTEN_PORT, NOISEGATE_ADMIN_SOCKET); each has its own log.
 *
 * - Spread: under load every process delivers some of bob's messages
 *   (its ng_deliveries_total{outcome="acked"}), one poller at a time reads
 *   alice's outbox (the lease), and each message arrives exactly once.
 * - One killed: with SIGKILL, under load. Every accepted message still
 *   arrives. A message may arrive twice only if its first attempt was made
 *   before the kill (the killed process had it in flight or unacked);
 *   everything after arrives once.
 *
 * NG_KEEP=1 keeps the temporary directory (configurations, data, logs).
 */
#include "gateway_harness.h"
#include "../unit/redis_server.h"

enum {
    DELIVERY_WAIT_MS = 20000,
    /* The claim lease of a killed process (2 * delivery.timeout_ms + 10 s) and some. */
    SETTLE_MS = 60000,
    DELIVERY_TIMEOUT_MS = 1000,
    PROCESSES = 3,
    KILL_GRACE_MS = 500,
    LOAD = 600,
};

static char dir[PATH_MAX / 2];
static struct redis_server shared;
static gateway gw_a = {.name = "a"};
/* One configuration, b.json, and one data directory, b/; the names give each process its log and socket. */
static gateway gw_b[PROCESSES] = {{.name = "b1"}, {.name = "b2"}, {.name = "b3"}};
static tenant alice = {.slug = "alice", .g = &gw_a}, bob = {.slug = "bob", .g = &gw_b[0]};

static void
start_process(gateway *g)
{
    char port[16];

    /* Only the environment tells the three apart. */
    snprintf(port, sizeof port, "%d", g->port);
    setenv("NOISEGATE_LISTEN_PORT", port, 1);
    setenv("NOISEGATE_ADMIN_SOCKET", g->sock, 1);
    start_gateway(g);
    unsetenv("NOISEGATE_LISTEN_PORT");
    unsetenv("NOISEGATE_ADMIN_SOCKET");
}

static int
group_setup(void **state)
{
    char sections[1024];
    int i, port = 0;

    (void)state;
    tag_init();
    if (make_temp_dir(dir, sizeof dir, "ngscale") != 0 || redis_server_start(&shared, NULL) != 0)
        return -1;
    gateway_config(&gw_a, dir, 0, NULL,
                   "\"delivery\": {\"allow_private\": [\"127.0.0.1\"]},\n"
                   " \"poll\": {\"interval_ms\": 50, \"max_interval_ms\": 200},");
    /* b.json and b/ for all three; the names give each its log and admin socket. */
    for (i = 0; i < PROCESSES; i++) {
        gateway *g = &gw_b[i];

        port = gateway_port(i == 0 ? gw_a.port : port);
        if (port <= 0)
            return -1;
        g->port = port;
        snprintf(g->cfg, sizeof g->cfg, "%s/b.json", dir);
        snprintf(g->data, sizeof g->data, "%s/b", dir);
        snprintf(g->log, sizeof g->log, "%s/%s.log", dir, g->name);
        snprintf(g->sock, sizeof g->sock, "%s/%s.sock", dir, g->name);
    }
    snprintf(sections, sizeof sections,
             "\"redis\": {\"url\": \"%s\"},\n"
             " \"vault\": {\"store\": \"redis\"},\n"
             " \"outbox\": {\"http_timeout_ms\": 1000},\n"
             " \"delivery\": {\"allow_private\": [\"127.0.0.1\"], \"retry_schedule_s\": [1, 1, 2],\n"
             "              \"max_attempts\": 100, \"timeout_ms\": %d},\n"
             " \"poll\": {\"interval_ms\": 50, \"max_interval_ms\": 200},",
             shared.url, DELIVERY_TIMEOUT_MS);
    write_config(&gw_b[0], ", \"timeout_s\": 5", sections);
    if (two_gateways_init(&gw_a, &gw_b[0], (tenant *const[]){&alice, &bob}, 2) != 0)
        return -1;
    GCLI(&gw_a, "tenant", "create", "alice");
    GCLI(&gw_b[0], "tenant", "create", "bob");
    connect_tenants(&alice, NULL, (tenant *const[]){&alice, &bob}, 2);
    start_gateway(&gw_a);
    for (i = 0; i < PROCESSES; i++)
        start_process(&gw_b[i]);
    return test_teardown(state);
}

static int
group_teardown(void **state)
{
    (void)state;
    redis_server_stop(&shared);
    return suite_teardown(dir, (gateway *const[]){&gw_a, &gw_b[0], &gw_b[1], &gw_b[2], NULL},
                          (tenant *const[]){&alice, &bob, NULL});
}

static double
acked_by(const gateway *g)
{
    return metric(g, "ng_deliveries_total{outcome=\"acked\"}");
}

/* n messages from alice's backend to bob's; their ids into ids. */
static void
send_load(char (*ids)[MSG_ID_HEX + 1], size_t n, const char *what)
{
    size_t i;

    for (i = 0; i < n; i++) {
        msg m = {.from = &alice, .to = &bob, .content_type = "text/plain", .subject = what};
        char body[64];

        snprintf(body, sizeof body, "%s %zu", what, i);
        m.body = (const uint8_t *)text_of(blob_str(body));
        m.len = strlen(body);
        send_message(&m);
        snprintf(ids[i], sizeof ids[i], "%s", m.id);
    }
}

/* Waits until each of ids reached bob's backend, acked; fails after SETTLE_MS. */
static void
wait_all(char (*ids)[MSG_ID_HEX + 1], size_t n)
{
    long t0 = now_ms();
    size_t i, missing;

    do {
        for (missing = 0, i = 0; i < n; i++) {
            const hit *h[8];
            int k, got = sink_find(&bob.sink, ids[i], h, 8), acked = 0;

            for (k = 0; k < got && k < 8; k++)
                acked |= h[k]->status >= 200 && h[k]->status < 300;
            missing += !acked;
        }
        if (missing == 0)
            return;
        sleep_ms(100);
    } while (now_ms() - t0 < SETTLE_MS);
    fail_msg("%zu of %zu messages did not reach bob's backend in %d ms", missing, n, SETTLE_MS);
}

/* ==== 1. deliveries spread over the three, each message once ==== */

static void
test_spread(void **state)
{
    static char ids[LOAD][MSG_ID_HEX + 1];
    double before[PROCESSES], share[PROCESSES];
    int i;
    size_t k;

    (void)state;
    for (i = 0; i < PROCESSES; i++)
        before[i] = acked_by(&gw_b[i]);
    send_load(ids, LOAD, "spread");
    wait_all(ids, LOAD);
    sleep_ms(1500);
    for (k = 0; k < LOAD; k++)
        if (sink_count(&bob.sink, ids[k]) != 1)
            fail_msg("message %s reached bob's backend %d times with all three processes up", ids[k],
                     sink_count(&bob.sink, ids[k]));
    for (i = 0; i < PROCESSES; i++)
        share[i] = acked_by(&gw_b[i]) - before[i];
    print_message("acked by b1, b2, b3: %.0f, %.0f, %.0f of %d\n", share[0], share[1], share[2], LOAD);
    for (i = 0; i < PROCESSES; i++)
        if (share[i] <= 0)
            fail_msg("process %s delivered none of %d messages", gw_b[i].name, LOAD);
    assert_true(share[0] + share[1] + share[2] == LOAD);
}

/* ==== 2. one of them killed under load ==== */

static void
test_one_killed(void **state)
{
    static char ids[2 * LOAD][MSG_ID_HEX + 1];
    gateway *victim = &gw_b[1];
    long killed_at;
    int dup = 0, late_dup = 0;
    size_t k;

    (void)state;
    send_load(ids, LOAD, "before-kill");
    assert_int_equal(kill(victim->pid, SIGKILL), 0);
    killed_at = now_ms();
    assert_int_equal(waitpid(victim->pid, NULL, 0), victim->pid);
    victim->pid = 0;
    send_load(ids + LOAD, LOAD, "after-kill");
    wait_all(ids, 2 * LOAD);
    sleep_ms(1500);
    for (k = 0; k < 2 * LOAD; k++) {
        const hit *h[8];
        int n = sink_find(&bob.sink, ids[k], h, 8);

        if (n > 1) {
            dup += n - 1;
            /*
             * Its first attempt was made before the kill: the killed process
             * had it and never acked it. Such a request may still reach the
             * backend a moment after kill() returned: KILL_GRACE_MS.
             */
            if (h[0]->t_ms > killed_at + KILL_GRACE_MS)
                late_dup++;
        }
    }
    print_message("%d messages, process %s killed after %d: %d repeated deliveries, all of attempts made before "
                  "the kill\n",
                  2 * LOAD, victim->name, LOAD, dup);
    assert_int_equal(late_dup, 0);
    /* The two left did the rest; the killed one's redis is the shared one, which it did not own. */
    assert_true(acked_by(&gw_b[0]) + acked_by(&gw_b[2]) > 0);
    assert_int_equal(bob.sink.dropped, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_spread, test_teardown),
        cmocka_unit_test_teardown(test_one_killed, test_teardown),
    };

    if (suite_init() != 0)
        return 1;
    return cmocka_run_group_tests_name("scale", tests, group_setup, group_teardown);
}

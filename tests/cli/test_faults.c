/*
 * Faults under load: what a crash, a store that stops, a backend that hangs
 * or a peer with a wrong clock may cost. Gateway "a" (tenant alice) sends to
 * gateway "b" (tenants bob and bob2); both run their embedded Redis with
 * appendfsync "always".
 *
 * - Killed at random: while a backend of alice sends a few thousand
 *   messages, a thread kills gateway a or b with SIGKILL at random moments,
 *   and each is started again (the restart stops the redis-server the killed
 *   one left behind). The backend does what a 503 or a cut connection asks
 *   of it: the same message again, with a fresh webhook-id and the same
 *   Idempotency-Key, until it is accepted. Every accepted message reaches
 *   bob's backend at least once, and the set of webhook-ids received is the
 *   set of message ids accepted.
 * - Redis stopped: the same load while a thread freezes one gateway's Redis
 *   (SIGSTOP) for longer than redis.timeout_ms and then kills it, so that
 *   the gateway's supervisor restarts it from its AOF. Requests get 503
 *   meanwhile, and nothing accepted is lost.
 * - A backend that hangs holds only its own deliveries: bob2's messages
 *   arrive at once while every attempt to bob's backend hangs, and bob's
 *   arrive once it answers again. (Retries on the schedule, Retry-After,
 *   410 and dead letters are tests/cli/test_e2e.c's.)
 * - A peer's clock: a parcel created 4 minutes ahead of ours is taken,
 *   6 minutes ahead is refused (messages.clock_skew_s, 300 s).
 *
 * NG_KEEP=1 keeps the temporary directory (configurations, data, logs).
 */
#include <fcntl.h>

#include "gateway_harness.h"
#include "ng_parcel.h"

enum {
    DELIVERY_WAIT_MS = 20000,
    /* Under load, after the last fault: claims and poll leases of killed processes run out first. */
    SETTLE_MS = 90000,
    DELIVERY_TIMEOUT_MS = 1000,
    REDIS_TIMEOUT_MS = 300,
    LOAD_MESSAGES = 5000,
    FREEZE_MS = 1200,
};

static char dir[PATH_MAX / 2];
static gateway gw_a = {.name = "a"}, gw_b = {.name = "b"};
static tenant alice = {.slug = "alice", .g = &gw_a}, bob = {.slug = "bob", .g = &gw_b},
              bob2 = {.slug = "bob2", .g = &gw_b};
static tenant *const tenants[] = {&alice, &bob, &bob2};
static gateway *const gateways[] = {&gw_a, &gw_b};

static int
group_setup(void **state)
{
    (void)state;
    /* Short leases, so that what a killed process held comes back within SETTLE_MS. */
    if (two_gateways_begin(dir, sizeof dir, "ngfaults", &gw_a, &gw_b, tenants, sizeof tenants / sizeof tenants[0], NULL,
                           "\"redis\": {\"appendfsync\": \"always\", \"timeout_ms\": %d},\n"
                           " \"outbox\": {\"http_timeout_ms\": 1000},\n"
                           " \"delivery\": {\"allow_private\": [\"127.0.0.1\"], \"retry_schedule_s\": [1, 1, 2],\n"
                           "              \"max_attempts\": 100, \"timeout_ms\": %d},\n"
                           " \"poll\": {\"interval_ms\": 50, \"max_interval_ms\": 200},",
                           REDIS_TIMEOUT_MS, DELIVERY_TIMEOUT_MS) != 0)
        return -1;
    GCLI(&gw_a, "tenant", "create", "alice");
    GCLI(&gw_b, "tenant", "create", "bob", "--allow-anonymous");
    GCLI(&gw_b, "tenant", "create", "bob2");
    connect_tenants(&alice, NULL, tenants, sizeof tenants / sizeof tenants[0]);
    start_gateway(&gw_a);
    start_gateway(&gw_b);
    return test_teardown(state);
}

static int
group_teardown(void **state)
{
    (void)state;
    return suite_teardown(dir, (gateway *const[]){&gw_a, &gw_b, NULL}, (tenant *const[]){&alice, &bob, &bob2, NULL});
}

/* ---- load with faults injected from a thread ---- */

/*
 * What the fault thread may touch: pids, published by the test thread once a
 * process is up (ready) and taken back (0) by whoever acts on it first. The
 * harness's helpers are the test thread's alone.
 */
typedef struct faults {
    pthread_t thread;
    void (*inject)(struct faults *f, int which);
    atomic_int ready[2]; /* gateway pid, 0 while it is down or being restarted */
    atomic_int stop, injected;
    int min_ms, spread_ms, round;
    char redis_pidfile[2][PATH_MAX + 32];
} faults;

static void *
fault_thread(void *arg)
{
    faults *f = arg;

    while (!atomic_load(&f->stop)) {
        long until = now_ms() + f->min_ms + (long)randombytes_uniform((uint32_t)f->spread_ms);

        while (!atomic_load(&f->stop) && now_ms() < until)
            sleep_ms(10);
        /* a and b in turn, so that each gets its share whatever the count. */
        if (!atomic_load(&f->stop))
            f->inject(f, f->round++ % 2);
    }
    return NULL;
}

static void
kill_one(faults *f, int which)
{
    pid_t pid = (pid_t)atomic_exchange(&f->ready[which], 0);

    if (pid > 0 && kill(pid, SIGKILL) == 0)
        atomic_fetch_add(&f->injected, 1);
}

/* The pid in a redis.pid, read without the harness (this runs on the fault thread). */
static pid_t
read_pid(const char *path)
{
    char buf[32];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return (pid_t)strtol(buf, NULL, 10);
}

/* Frozen past redis.timeout_ms, then killed while frozen: the gateway's supervisor starts it again. */
static void
freeze_redis(faults *f, int which)
{
    pid_t pid = read_pid(f->redis_pidfile[which]);

    if (pid <= 0 || atomic_load(&f->ready[which]) == 0 || kill(pid, SIGSTOP) != 0)
        return;
    sleep_ms(FREEZE_MS);
    kill(pid, SIGKILL);
    kill(pid, SIGCONT);
    atomic_fetch_add(&f->injected, 1);
}

/* On the test thread: a gateway that died is started again, and published. */
static void
revive(faults *f)
{
    size_t i;

    for (i = 0; i < 2; i++) {
        gateway *g = gateways[i];

        if (g->pid > 0 && waitpid(g->pid, NULL, WNOHANG) == g->pid) {
            g->pid = 0;
            start_gateway(g);
            atomic_store(&f->ready[i], g->pid);
        }
    }
}

static void
start_faults(faults *f, void (*inject)(faults *, int), int min_ms, int spread_ms)
{
    size_t i;

    memset(f, 0, sizeof *f);
    f->inject = inject;
    f->min_ms = min_ms;
    f->spread_ms = spread_ms;
    for (i = 0; i < 2; i++) {
        snprintf(f->redis_pidfile[i], sizeof f->redis_pidfile[i], "%s/redis/redis.pid", gateways[i]->data);
        atomic_store(&f->ready[i], gateways[i]->pid);
    }
    assert_int_equal(pthread_create(&f->thread, NULL, fault_thread, f), 0);
}

/* Stops injecting; once this returns, both gateways run and nothing else will be done to them. */
static int
stop_faults(faults *f)
{
    long t0 = now_ms();
    size_t i;

    atomic_store(&f->stop, 1);
    pthread_join(f->thread, NULL);
    for (i = 0; i < 2; i++)
        atomic_store(&f->ready[i], 0);
    for (;;) {
        int up = 1;

        for (i = 0; i < 2; i++) {
            gateway *g = gateways[i];

            if (g->pid > 0 && waitpid(g->pid, NULL, WNOHANG) == g->pid)
                g->pid = 0;
            if (g->pid == 0)
                start_gateway(g);
            up &= GW_GET(g, "/readyz").status == 200;
        }
        if (up)
            break;
        if (now_ms() - t0 > DELIVERY_WAIT_MS)
            fail_msg("the gateways are not ready %d ms after the last fault", DELIVERY_WAIT_MS);
        sleep_ms(50);
    }
    return atomic_load(&f->injected);
}

typedef struct load {
    char (*ids)[MSG_ID_HEX + 1];
    size_t n;
    int refused, cut; /* answers 503, and requests with no answer (a killed gateway) */
} load;

/*
 * Sends at least n messages from alice's backend to bob's, each until it is
 * accepted, and goes on until f has injected min_faults faults. Accepted ids
 * go to l->ids.
 */
static void
send_under_faults(faults *f, load *l, size_t n, int min_faults, const char *what)
{
    char rnd[40];
    size_t i, cap = n;
    long start = now_ms();

    fresh_id(rnd);
    l->ids = calloc(cap, sizeof *l->ids);
    assert_non_null(l->ids);
    for (i = 0; i < n || atomic_load(&f->injected) < min_faults; i++) {
        msg m = {.from = &alice, .to = &bob, .content_type = "text/plain", .subject = what};
        char key[96], body[96];
        long t0 = now_ms();
        reply r;

        if (now_ms() - start > SETTLE_MS)
            fail_msg("%d faults were injected in %d ms, %d wanted", atomic_load(&f->injected), SETTLE_MS, min_faults);
        if (i == cap) {
            void *more = realloc(l->ids, 2 * cap * sizeof *l->ids);

            assert_non_null(more);
            l->ids = more;
            cap *= 2;
        }
        snprintf(key, sizeof key, "Idempotency-Key: %s-%s-%zu", what, rnd, i);
        snprintf(body, sizeof body, "%s %zu", what, i);
        m.body = (const uint8_t *)text_of(blob_str(body));
        m.len = strlen(body);
        for (;;) {
            revive(f);
            r = submit_msg(&m, ARGS(key));
            if (r.status == 202)
                break;
            if (r.status == 503)
                l->refused++;
            else if (r.status == -1)
                l->cut++;
            else
                fail_msg("message %zu was answered %ld: %s", i, r.status, text_of(r.body));
            if (now_ms() - t0 > 2 * DELIVERY_WAIT_MS)
                fail_msg("message %zu was not accepted within %d ms", i, 2 * DELIVERY_WAIT_MS);
            sleep_ms(20);
        }
        snprintf(l->ids[i], sizeof l->ids[i], "%s", m.id);
        l->n = i + 1;
    }
}

/* Every accepted id reached bob's backend at least once, and nothing else did; the duplicates. */
static int
expect_all_received(load *l, size_t hits_before)
{
    long t0 = now_ms();
    size_t i, missing;
    int dup = 0, j;

    for (;;) {
        missing = 0;
        for (i = 0; i < l->n; i++)
            if (sink_count(&bob.sink, l->ids[i]) == 0)
                missing++;
        if (missing == 0)
            break;
        if (now_ms() - t0 > SETTLE_MS)
            fail_msg("%zu of %zu accepted messages never reached bob's backend", missing, l->n);
        sleep_ms(200);
    }
    sleep_ms(1500);
    for (i = 0; i < l->n; i++) {
        const hit *h[8];
        int n = sink_find(&bob.sink, l->ids[i], h, 8), ok = 0;

        for (j = 0; j < n && j < 8; j++)
            ok += h[j]->status >= 200 && h[j]->status < 300;
        if (ok == 0)
            fail_msg("message %s reached bob's backend but was never acked", l->ids[i]);
        dup += n - 1;
    }
    /*
     * The set received is the set accepted: no webhook-id bob's backend got
     * is unaccounted for. One an earlier test accepted may come again now
     * (its first attempt was cut by a kill, and its claim lease ran out
     * since): it is no new message.
     */
    for (j = (int)hits_before; j < sink_total(&bob.sink); j++) {
        const hit *h = sink_at(&bob.sink, j);
        int k;

        for (i = 0; i < l->n && strcmp(l->ids[i], h->wid) != 0; i++)
            ;
        for (k = 0; i == l->n && k < (int)hits_before && strcmp(sink_at(&bob.sink, k)->wid, h->wid) != 0; k++)
            ;
        if (i == l->n && k == (int)hits_before)
            fail_msg("bob's backend got webhook-id %s, which no 202 gave", h->wid);
    }
    assert_int_equal(bob.sink.dropped, 0);
    return dup;
}

/*
 * The load of the two tests below: n messages at least, and on until
 * min_faults faults were injected; every accepted one must arrive. What
 * went on is printed; l->refused counts the 503s.
 */
static void
load_with_faults(load *l, void (*inject)(faults *, int), int min_ms, int spread_ms, size_t n, int min_faults,
                 const char *what)
{
    size_t before = (size_t)sink_total(&bob.sink);
    long t0 = now_ms();
    faults f;
    int done, dup;

    start_faults(&f, inject, min_ms, spread_ms);
    send_under_faults(&f, l, n, min_faults, what);
    done = stop_faults(&f);
    dup = expect_all_received(l, before);
    print_message("%s: %zu messages accepted in %ld ms through %d faults (%d answers 503, %d cut); all delivered, "
                  "%d repeated deliveries\n",
                  what, l->n, now_ms() - t0, done, l->refused, l->cut, dup);
    free(l->ids);
}

/* ==== 1. gateways killed at random under load ==== */

static void
test_killed_under_load(void **state)
{
    load l = {0};

    (void)state;
    load_with_faults(&l, kill_one, 150, 350, LOAD_MESSAGES, 6, "killed");
}

/* ==== 2. Redis frozen and killed under load ==== */

static void
test_redis_down_under_load(void **state)
{
    load l = {0};

    (void)state;
    load_with_faults(&l, freeze_redis, 200, 500, LOAD_MESSAGES / 2, 4, "redis-down");
    /* While alice's Redis was frozen her gateway said so, instead of taking what it could not keep. */
    assert_true(l.refused > 0);
}

/* ==== 3. a backend that hangs holds only its own deliveries ==== */

static void
test_hanging_backend_isolated(void **state)
{
    enum { HUNG = 12, OTHERS = 5 };
    msg hung[HUNG], other[OTHERS];
    const hit *h[1] = {NULL};
    long worst = 0;
    size_t i;

    (void)state;
    /* More than delivery.concurrency_per_endpoint (8) attempts, every one of them hanging. */
    RULE(&bob.sink, "hang", 204, HANG, HANG, HANG, HANG, HANG, HANG, HANG, HANG);
    memset(hung, 0, sizeof hung);
    memset(other, 0, sizeof other);
    for (i = 0; i < HUNG; i++) {
        hung[i].from = &alice;
        hung[i].to = &bob;
        hung[i].content_type = "text/plain";
        hung[i].subject = "hang";
        text_body(&hung[i], "to a backend that hangs");
        send_message(&hung[i]);
    }
    WAIT_HITS(&bob.sink, hung[0].id, 1, DELIVERY_WAIT_MS);
    for (i = 0; i < OTHERS; i++) {
        other[i].from = &alice;
        other[i].to = &bob2;
        other[i].content_type = "text/plain";
        other[i].subject = "beside-a-hang";
        text_body(&other[i], "to a backend that answers");
        send_message(&other[i]);
    }
    for (i = 0; i < OTHERS; i++) {
        long took;

        WAIT_HITS(&bob2.sink, other[i].id, 1, DELIVERY_WAIT_MS);
        assert_int_equal(sink_find(&bob2.sink, other[i].id, h, 1), 1);
        took = h[0]->t_ms - other[i].sent_ms;
        worst = took > worst ? took : worst;
        EXPECT_ONCE(&other[i]);
    }
    print_message("bob2's messages arrived within %ld ms while bob's backend hung %d times\n", worst,
                  sink_hanging(&bob.sink));
    /* Sooner than one attempt to bob's backend can time out: nothing of bob2's waited behind them. */
    if (worst >= DELIVERY_TIMEOUT_MS)
        fail_msg("bob2's messages took %ld ms, as long as an attempt to the hanging backend", worst);
    assert_true(sink_hanging(&bob.sink) > 0);
    /* What waits shows in the gateway's metrics (counted every 10 s). */
    {
        long t0 = now_ms();
        double waiting = 0;

        while ((waiting = sample(text_of(GW_GET(&gw_b, "/metrics").body), "ng_queue_depth{queue=\"waiting\"}")) <
                   HUNG &&
               now_ms() - t0 < DELIVERY_WAIT_MS)
            sleep_ms(200);
        if (waiting < HUNG)
            fail_msg("ng_queue_depth{queue=\"waiting\"} is %.0f with %d messages waiting for bob's backend", waiting,
                     HUNG);
    }

    /* bob's backend answers again: every message arrives, acked once. */
    sink_release(&bob.sink);
    for (i = 0; i < HUNG; i++) {
        const hit *all[16];
        int n, acked = 0, k;

        for (;;) {
            n = sink_find(&bob.sink, hung[i].id, all, 16);
            for (acked = 0, k = 0; k < n && k < 16; k++)
                acked += all[k]->status == 204;
            if (acked > 0)
                break;
            WAIT_HITS(&bob.sink, hung[i].id, n + 1, DELIVERY_WAIT_MS);
        }
        assert_int_equal(acked, 1);
    }
    WAIT_QUEUE(&bob, 0, 0, DELIVERY_WAIT_MS);
}

/* ==== 4. a peer's clock 4 minutes ahead is taken, 6 minutes ahead refused ==== */

/* An N parcel to bob's newest key, created at created_ms (wall clock), for an hour. */
static blob *
seal_for_bob(uint64_t created_ms, const char *what)
{
    json_t *keys = json_object_get(gcli_json(&gw_b, ARGS("tenant", "show", "bob", "--json")), "keys");
    const char *hex = jstr(json_array_get(keys, json_array_size(keys) - 1), "public");
    static const char meta[] = "{\"content_type\":\"text/plain\"}";
    uint8_t pub[NG_KEY_BYTES];
    ng_seal_params sp;
    blob *parcel = blob_new();
    size_t size, len;

    assert_int_equal(sodium_hex2bin(pub, sizeof pub, hex, strlen(hex), NULL, &len, NULL), 0);
    assert_int_equal(len, sizeof pub);
    memset(&sp, 0, sizeof sp);
    sp.pattern = NG_PATTERN_N;
    sp.recipient_pub = pub;
    sp.meta = (const uint8_t *)meta;
    sp.meta_len = strlen(meta);
    sp.body = (const uint8_t *)what;
    sp.body_len = strlen(what);
    sp.created_ms = created_ms;
    sp.ttl_ms = 3600000;
    size = ng_parcel_sealed_size(&sp);
    assert_true(size > 0);
    blob_reserve(parcel, size);
    assert_int_equal(ng_parcel_seal(parcel->data, size, &len, &sp), NG_OK);
    parcel->len = len;
    return parcel;
}

static reply
push(const blob *parcel)
{
    return gw_http(&gw_b, "POST", "/v1/parcels", ARGS("Content-Type: application/vnd.noisegate.parcel"), parcel->data,
                   parcel->len);
}

static void
test_peer_clock(void **state)
{
    const uint64_t minute = 60000;
    blob *ahead4 = seal_for_bob(wall_ms() + 4 * minute, "from a clock 4 minutes fast"),
         *ahead6 = seal_for_bob(wall_ms() + 6 * minute, "from a clock 6 minutes fast"),
         *behind4 = seal_for_bob(wall_ms() - 4 * minute, "from a clock 4 minutes slow");
    double refused = metric(&gw_b, "ng_parcels_refused_total{reason=\"not_yet_valid\"}");
    const char *id4, *id_behind;
    reply r;

    (void)state;
    r = push(ahead4);
    EXPECT_STATUS(r, 202);
    id4 = text_of(blob_str(jstr(r.json, "id")));
    r = push(behind4);
    EXPECT_STATUS(r, 202);
    id_behind = text_of(blob_str(jstr(r.json, "id")));
    r = push(ahead6);
    EXPECT_STATUS(r, 400);
    print_message("6 minutes ahead: %ld %s\n", r.status, text_of(r.body));
    assert_true(metric(&gw_b, "ng_parcels_refused_total{reason=\"not_yet_valid\"}") == refused + 1);
    WAIT_HITS(&bob.sink, id4, 1, DELIVERY_WAIT_MS);
    WAIT_HITS(&bob.sink, id_behind, 1, DELIVERY_WAIT_MS);
    sleep_ms(500);
    assert_int_equal(sink_count(&bob.sink, id4), 1);
    assert_int_equal(sink_count(&bob.sink, id_behind), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_peer_clock, test_teardown),
        cmocka_unit_test_teardown(test_hanging_backend_isolated, test_teardown),
        cmocka_unit_test_teardown(test_killed_under_load, test_teardown),
        cmocka_unit_test_teardown(test_redis_down_under_load, test_teardown),
    };

    if (suite_init() != 0)
        return 1;
    return cmocka_run_group_tests_name("faults", tests, group_setup, group_teardown);
}

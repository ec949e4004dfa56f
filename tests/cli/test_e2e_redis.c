/*
 * End to end through a shared Redis: one redis-server that this suite
 * starts on loopback (AOF, fsync always) holds the store of gateway "a"
 * (tenant alice) and of gateway "c" (tenant carol). Alice's connection
 * parameters name that Redis as her outbox, so her peers read her outbox
 * streams there instead of asking gateway a:
 *   - gateway "b" (tenant bob) keeps its own store in its embedded Redis
 *     and reads alice's outbox at redis://127.0.0.1:PORT/0, which its
 *     operator listed in poll.peer_redis;
 *   - gateway "c" reads it in its own store: alice gave carol
 *     redis://127.0.0.3:PORT, which is c's redis.url spelled otherwise
 *     (redis://127.0.0.3:PORT/0), and needs no listing.
 * Backends are sinks (gateway_harness.h); webhooks are checked with the
 * harness's own Standard Webhooks verifier.
 *
 * What matters on this path besides the way through: the shared Redis
 * stops and comes back (alice's submissions get 503 meanwhile; bob's
 * poller backs off, then carries on from its cursor without reading a
 * parcel twice), entries altered in the stream are refused and counted
 * while the ones after them are delivered, a Redis the operator did not
 * allow is never contacted, a peer in c's own Redis cannot pass for one of
 * c's tenants, and a redis:// outbox URL with user info or another form is
 * refused at export.
 *
 * NG_KEEP=1 keeps the temporary directory (configurations, data, logs).
 */
#include "gateway_harness.h"
#include "../unit/redis_server.h"

#include <hiredis/hiredis.h>

#include "ng_parcel.h"
#include "ng_peer.h"

enum {
    DELIVERY_WAIT_MS = 20000,
    /* Long enough for a duplicate or a late delivery to show: polls come every 50-200 ms. */
    QUIET_MS = 1500,
};

static char dir[PATH_MAX / 2], shared_url[128], c_url[128], port_arg[16];
/* Three loopback addresses: 127.0.0.1 for a and b, 127.0.0.3 for c, 127.0.0.2 for a peer that names it unasked. */
static const char *const shared_args[] = {"--port",    port_arg,       "--bind", "127.0.0.1",     "127.0.0.2",
                                          "127.0.0.3", "--appendonly", "yes",    "--appendfsync", "always",
                                          NULL};
static struct redis_server shared;
static gateway gw_a = {.name = "a"}, gw_b = {.name = "b"}, gw_c = {.name = "c"};
static tenant alice = {.slug = "alice", .g = &gw_a}, bob = {.slug = "bob", .g = &gw_b},
              carol = {.slug = "carol", .g = &gw_c};
/* What alice seals to for bob: the stream of her outbox that bob's gateway reads. */
static char bob_kid[65], bob_stream[128];

/* Every message accepted for bob and how often it must reach his backend (1, or 0 for one refused on the way). */
static tally sent_to_bob;

static void
send_to(msg *m, tenant *to, const char *pattern, const char *subject, const char *what)
{
    m->from = &alice;
    m->from_as = to == &bob ? "al" : NULL;
    m->to = to;
    m->pattern = pattern;
    m->content_type = "text/plain; charset=utf-8";
    m->subject = subject;
    text_body(m, what);
    send_message(m);
    if (to == &bob)
        tally_add(&sent_to_bob, m->id, 1);
}

/*
 * As a backend does after a 503: the same message again, with a fresh
 * webhook-id and the same Idempotency-Key, until it is accepted. A
 * connection to a Redis that just came back is retried after a backoff of
 * up to 2 s (ng_queue_redis.h), so the first tries may still fail.
 */
static void
send_retrying(msg *m, const char *subject, const char *what)
{
    char key[80], rnd[40];
    long t0 = now_ms();
    int tries = 0;
    reply r;

    fresh_id(rnd);
    snprintf(key, sizeof key, "Idempotency-Key: retry-%s", rnd);
    m->from = &alice;
    m->from_as = "al";
    m->to = &bob;
    m->content_type = "text/plain; charset=utf-8";
    m->subject = subject;
    text_body(m, what);
    for (;;) {
        r = submit_msg(m, ARGS(key));
        tries++;
        if (r.status == 202)
            break;
        EXPECT_REPLY(r, 503, "store_unavailable");
        if (now_ms() - t0 > DELIVERY_WAIT_MS)
            fail_msg("alice's gateway still answers 503 %ld ms after its Redis came back", now_ms() - t0);
        sleep_ms(100);
    }
    print_message("accepted at try %d, %ld ms after the Redis came back\n", tries, now_ms() - t0);
    tally_add(&sent_to_bob, m->id, 1);
}

#define EXPECT_LEDGER() expect_tally_at(&sent_to_bob, &bob.sink, &alice.sink, __LINE__)

/* ---- the shared Redis, as the test sees it (over its unix socket) ---- */

static redisReply *
shared_cmd(int argc, const char **argv, const size_t *lens)
{
    redisContext *c = redisConnectUnix(shared.sock);
    redisReply *r;

    if (c == NULL || c->err)
        fail_msg("cannot reach the shared redis-server at %s", shared.sock);
    r = redisCommandArgv(c, argc, argv, lens);
    redisFree(c);
    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        fail_msg("%s on the shared Redis failed: %s", argv[0], r != NULL ? r->str : "no reply");
    return r;
}

static long long
stream_length(void)
{
    const char *argv[] = {"XLEN", bob_stream};
    redisReply *r = shared_cmd(2, argv, NULL);
    long long n = r->integer;

    freeReplyObject(r);
    return n;
}

/* Appends an entry of fields p (len bytes) and e to bob's stream in alice's outbox, as a writer of that Redis could. */
static void
stream_add(const char *field, const void *p, size_t len, long long expires)
{
    char e[24];
    const char *argv[] = {"XADD", bob_stream, "*", field, p, "e", e};
    size_t lens[] = {4, strlen(bob_stream), 1, strlen(field), len, 1, 0};
    redisReply *r;

    snprintf(e, sizeof e, "%lld", expires);
    lens[6] = strlen(e);
    r = shared_cmd(7, argv, lens);
    freeReplyObject(r);
}

/* The parcel of message id in bob's stream, removed from it (in blobs); fails if it is not there. */
static blob *
stream_take(const char *id)
{
    const char *argv[] = {"XRANGE", bob_stream, "-", "+"};
    redisReply *r = shared_cmd(4, argv, NULL);
    blob *found = NULL;
    char entry[64] = "";
    size_t i, j;

    for (i = 0; i < r->elements && found == NULL; i++) {
        const redisReply *e = r->element[i], *f = e->element[1];

        for (j = 0; j + 1 < f->elements; j += 2) {
            const redisReply *v = f->element[j + 1];
            ng_parcel_header h;
            char hex[MSG_ID_HEX + 1];

            if (strcmp(f->element[j]->str, "p") != 0 ||
                ng_parcel_inspect(&h, (const uint8_t *)v->str, v->len, 0) != NG_OK)
                continue;
            sodium_bin2hex(hex, sizeof hex, h.message_id, sizeof h.message_id);
            if (strcmp(hex, id) == 0) {
                found = blob_of(v->str, v->len);
                snprintf(entry, sizeof entry, "%s", e->element[0]->str);
            }
        }
    }
    freeReplyObject(r);
    if (found == NULL)
        fail_msg("message %s is not in %s", id, bob_stream);
    {
        const char *del[] = {"XDEL", bob_stream, entry};

        freeReplyObject(shared_cmd(3, del, NULL));
    }
    return found;
}

/* ---- setup ---- */

static void
write_e2e_config(gateway *g, int not, const char *redis, const char *peer_redis)
{
    /* Polling every 50-200 ms so that a message crosses in well under a second. */
    gateway_config(g, dir, not, NULL,
                   "%s"
                   " \"delivery\": {\"allow_private\": [\"127.0.0.1\"], \"timeout_ms\": 2000},\n"
                   " \"poll\": {\"interval_ms\": 50, \"max_interval_ms\": 200, \"peer_redis\": [%s]},",
                   redis, peer_redis);
}

static int
group_setup(void **state)
{
    char redis[256], listed[160];
    int port = loopback_free_port();

    (void)state;
    tag_init();
    if (port <= 0 || make_temp_dir(dir, sizeof dir, "nge2eredis") != 0)
        return -1;
    snprintf(port_arg, sizeof port_arg, "%d", port);
    if (redis_server_start(&shared, shared_args) != 0)
        return -1;
    snprintf(shared_url, sizeof shared_url, "redis://127.0.0.1:%d/0", port);
    snprintf(redis, sizeof redis, "\"redis\": {\"url\": \"%s\", \"timeout_ms\": 1000},\n", shared_url);
    write_e2e_config(&gw_a, 0, redis, "");
    snprintf(listed, sizeof listed, "\"%s\"", shared_url);
    write_e2e_config(&gw_b, gw_a.port, "", listed);
    snprintf(redis, sizeof redis, "\"redis\": {\"url\": \"redis://127.0.0.3:%d/0\", \"timeout_ms\": 1000},\n", port);
    write_e2e_config(&gw_c, gw_b.port, redis, "");
    snprintf(c_url, sizeof c_url, "redis://127.0.0.3:%d", port);
    if (gw_c.port == gw_a.port || sinks_start((tenant *const[]){&alice, &bob, &carol}, 3) != 0)
        return -1;
    GCLI(&gw_a, "vault", "init");
    GCLI(&gw_b, "vault", "init");
    GCLI(&gw_c, "vault", "init");
    GCLI(&gw_a, "tenant", "create", "alice");
    GCLI(&gw_b, "tenant", "create", "bob", "--allow-anonymous");
    GCLI(&gw_c, "tenant", "create", "carol");
    add_backend(&alice);
    add_backend(&bob);
    add_backend(&carol);
    signing_key(&bob);
    signing_key(&carol);
    key_id_of(&gw_b, "bob", bob_kid);
    snprintf(bob_stream, sizeof bob_stream, "ng:{alice}:out:%s", bob_kid);
    /* Alice's outbox is the shared Redis; bob knows her as "al", so only her parameters carry her own name. */
    GCLI(&gw_b, "peer", "import", "bob", export_params(&gw_a, "alice", shared_url), "--name", "al");
    GCLI(&gw_c, "peer", "import", "carol", export_params(&gw_a, "alice", c_url), "--name", "alice");
    GCLI(&gw_a, "peer", "import", "alice", export_params(&gw_b, "bob", NULL), "--name", "bob");
    GCLI(&gw_a, "peer", "import", "alice", export_params(&gw_c, "carol", NULL), "--name", "carol");
    start_gateway(&gw_a);
    start_gateway(&gw_b);
    start_gateway(&gw_c);
    return test_teardown(state);
}

static int
group_teardown(void **state)
{
    (void)state;
    redis_server_stop(&shared);
    return suite_teardown(dir, (gateway *const[]){&gw_a, &gw_b, &gw_c, NULL},
                          (tenant *const[]){&alice, &bob, &carol, NULL});
}

/* ==== 1. redis:// outboxes in connection parameters: the forms taken and refused ==== */

static void
test_outbox_urls(void **state)
{
    static const char *const refused[] = {"redis://user:pw@127.0.0.1:6379/0",
                                          "redis://:pw@127.0.0.1",
                                          "unix:/tmp/x",
                                          "redis://",
                                          "redis://127.0.0.1:0",
                                          "rediss://127.0.0.1",
                                          NULL};
    json_t *peers, *doc = NULL;
    size_t i;
    reply r;

    (void)state;
    /* What bob's and carol's gateways hold: alice's outbox as she exported it, under her own name. */
    peers = gcli_json(&gw_b, ARGS("peer", "list", "bob", "--json"));
    assert_int_equal(json_array_size(peers), 1);
    assert_string_equal(jstr(json_array_get(peers, 0), "name"), "al");
    assert_string_equal(jstr(json_array_get(peers, 0), "peer_name"), "alice");
    assert_string_equal(jstr(json_array_get(peers, 0), "outbox"), shared_url);
    peers = gcli_json(&gw_c, ARGS("peer", "list", "carol", "--json"));
    assert_string_equal(jstr(json_array_get(peers, 0), "outbox"), c_url);

    /* The admin API exports one as well, and it survives the trip. */
    r = admin(&gw_a, "GET", "/v1/admin/tenants/alice/params?outbox=redis%3A%2F%2F%5B%3A%3A1%5D%3A6380%2F3", NULL);
    EXPECT_STATUS(r, 200);
    assert_int_equal(ng_peer_decode(jstr(r.json, "params"), &doc), NG_OK);
    assert_string_equal(jstr(doc, "outbox"), "redis://[::1]:6380/3");
    json_decref(doc);

    for (i = 0; refused[i] != NULL; i++) {
        char *esc = curl_easy_escape(NULL, refused[i], 0), path[256];
        result x = ng(NULL, ARGS("peer", "export", "alice", "--outbox", refused[i], "--config", gw_a.cfg));

        EXPECT_EXIT(x, 2);
        if (strstr(text_of(x.err), "redis://") == NULL)
            fail_msg("`peer export --outbox %s` does not say which URLs it takes: %s", refused[i], text_of(x.err));
        snprintf(path, sizeof path, "/v1/admin/tenants/alice/params?outbox=%s", esc);
        curl_free(esc);
        EXPECT_REPLY(admin(&gw_a, "GET", path, NULL), 400, "bad_request");
    }
}

/* ==== 2. through the shared Redis: stored in alice's stream, read there, delivered once ==== */

static void
test_delivered_once(void **state)
{
    static const char *const patterns[] = {"N", "K", "X"};
    msg m[4];
    long long before = stream_length();
    size_t i;

    (void)state;
    memset(m, 0, sizeof m);
    for (i = 0; i < 3; i++) {
        char what[64];

        snprintf(what, sizeof what, "a note sealed %s through a shared Redis", patterns[i]);
        send_to(&m[i], &bob, patterns[i], "via-redis", what);
    }
    send_to(&m[3], &carol, "X", "via-own-store", "read by carol's gateway in its own store");
    /* In alice's outbox for bob's key, in the shared Redis, under her name. */
    assert_int_equal(stream_length(), before + 3);

    for (i = 0; i < 3; i++)
        WAIT_HITS(&bob.sink, m[i].id, 1, DELIVERY_WAIT_MS);
    WAIT_HITS(&carol.sink, m[3].id, 1, DELIVERY_WAIT_MS);
    sleep_ms(QUIET_MS);
    /* Byte for byte, signed v1 and v1a, as each backend verifies them. */
    for (i = 0; i < 4; i++)
        EXPECT_ONCE(&m[i]);
    EXPECT_LEDGER();
    assert_int_equal(sink_total(&carol.sink), 1);
    assert_true(metric(&gw_b, "ng_parcels_polled_total") == 3);
    assert_true(metric(&gw_b, "ng_parcels_opened_total") == 3);
    assert_true(metric(&gw_c, "ng_parcels_opened_total") == 1);
    assert_true(metric(&gw_a, "ng_messages_accepted_total") == 4);
    /* Gateway a was never asked: its outbox API is not where alice's parcels are read. */
    {
        reply r = GW_GET(&gw_a, "/metrics");

        EXPECT_STATUS(r, 200);
        assert_null(strstr(text_of(r.body), "/v1/outbox"));
    }
}

/* ==== 3. the shared Redis stops, and comes back ==== */

static void
test_redis_down(void **state)
{
    msg lost = {0}, after = {0};
    const char *log;
    double polled = metric(&gw_b, "ng_parcels_polled_total");
    int hits = sink_total(&bob.sink);
    long long len = stream_length();

    (void)state;
    redis_server_kill(&shared, SIGTERM);

    /* Alice's gateway refuses what it cannot store; bob's poller meets the same silence. */
    lost.from = &alice;
    lost.from_as = "al";
    lost.to = &bob;
    lost.content_type = "text/plain";
    text_body(&lost, "sent while the shared Redis was down");
    EXPECT_REPLY(submit_msg(&lost, NULL), 503, "store_unavailable");
    sleep_ms(QUIET_MS);
    assert_int_equal(sink_total(&bob.sink), hits);
    assert_int_equal(GW_GET(&gw_b, "/readyz").status, 200); /* its own store is elsewhere */

    assert_int_equal(redis_server_spawn(&shared, shared_args), 0);
    /* Everything acknowledged before is still there (AOF), and nothing was added. */
    assert_int_equal(stream_length(), len);
    send_retrying(&after, "after-down", "sent once the shared Redis was back");
    WAIT_HITS(&bob.sink, after.id, 1, DELIVERY_WAIT_MS);
    sleep_ms(QUIET_MS);
    EXPECT_ONCE(&after);
    EXPECT_LEDGER();
    /* From its cursor: one parcel more read, none twice, none refused as a replay. */
    assert_true(metric(&gw_b, "ng_parcels_polled_total") == polled + 1);
    assert_true(metric(&gw_b, "ng_parcels_refused_total{reason=\"replayed\"}") <= 0);
    log = text_of(slurp(gw_b.log));
    assert_non_null(strstr(log, "polling a peer failed"));
    assert_non_null(strstr(log, "polling a peer works again"));
}

/* ==== 4. entries altered in the stream: refused and counted, and the ones after them go through ==== */

static void
test_tampered(void **state)
{
    msg flipped = {0}, after = {0};
    const char *log;
    blob *b;

    (void)state;
    /* bob's gateway is down, so that nothing is read before it is altered. */
    stop_gateway(&gw_b);
    send_to(&flipped, &bob, NULL, "flipped", "altered in the stream");
    sent_to_bob.e[sent_to_bob.n - 1].want = 0;
    /* Streams are append-only: the parcel goes, and comes back with its last byte (the MAC's) flipped. */
    b = stream_take(flipped.id);
    b->data[b->len - 1] ^= 0x01;
    stream_add("p", b->data, b->len, flipped.expires * 1000);
    stream_add("p", "not a parcel at all", 19, flipped.expires * 1000);
    stream_add("x", "no parcel field", 15, flipped.expires * 1000);
    send_to(&after, &bob, NULL, "after-flipped", "stored after the altered ones");

    start_gateway(&gw_b);
    WAIT_HITS(&bob.sink, after.id, 1, DELIVERY_WAIT_MS);
    sleep_ms(QUIET_MS);
    EXPECT_ONCE(&after);
    EXPECT_LEDGER();
    /* Counted since the restart: the flipped byte fails authentication, the junk does not parse. */
    assert_true(metric(&gw_b, "ng_parcels_refused_total{reason=\"auth\"}") == 1);
    assert_true(metric(&gw_b, "ng_parcels_refused_total{reason=\"malformed\"}") == 1);
    assert_true(metric(&gw_b, "ng_parcels_opened_total") == 1);
    WAIT_QUEUE(&bob, 0, 0, 5000);
    log = text_of(slurp(gw_b.log));
    if (strstr(log, flipped.id) == NULL || strstr(log, "parcel refused") == NULL)
        fail_msg("bob's log does not say that parcel %s was refused", flipped.id);
}

/* ==== 5. Redis servers a peer may not make us read ==== */

/* Connections the shared Redis holds to one of its addresses ("127.0.0.2:PORT"). */
static int
connections_to(const char *laddr)
{
    const char *argv[] = {"CLIENT", "LIST"};
    redisReply *r = shared_cmd(2, argv, NULL);
    char needle[80];
    const char *p;
    int n = 0;

    snprintf(needle, sizeof needle, "laddr=%s ", laddr);
    for (p = r->str; (p = strstr(p, needle)) != NULL; p++)
        n++;
    freeReplyObject(r);
    return n;
}

static void
test_redis_not_allowed(void **state)
{
    char far[128], laddr[64];
    int before = sink_total(&bob.sink);

    (void)state;
    /* The same server at an address bob's operator did not list: never connected to, however long. */
    snprintf(far, sizeof far, "redis://127.0.0.2:%s/0", port_arg);
    snprintf(laddr, sizeof laddr, "127.0.0.2:%s", port_arg);
    GCLI(&gw_b, "peer", "import", "bob", export_params(&gw_a, "alice", far), "--name", "far");
    wait_log(&gw_b, "peer outbox in a Redis not allowed (poll.peer_redis)", "\"far\"", DELIVERY_WAIT_MS);
    sleep_ms(QUIET_MS);
    assert_int_equal(connections_to(laddr), 0);
    GCLI(&gw_b, "peer", "remove", "bob", "far");

    /*
     * In c's own Redis, a peer whose parameters carry the name of one of c's
     * tenants would have c read that tenant's own outbox streams: refused.
     */
    GCLI(&gw_a, "tenant", "create", "carol");
    GCLI(&gw_c, "peer", "import", "carol", export_params(&gw_a, "carol", c_url), "--name", "mimic");
    wait_log(&gw_c, "peer outbox refused: in this gateway's own Redis, the peer's name is one of its tenants",
             "\"mimic\"", DELIVERY_WAIT_MS);
    GCLI(&gw_c, "peer", "remove", "carol", "mimic");
    GCLI(&gw_a, "tenant", "delete", "carol");
    assert_int_equal(sink_total(&bob.sink), before);
    EXPECT_LEDGER();
}

/* ==== 6. SIGTERM, and the whole run against the ledger ==== */

static void
test_stop(void **state)
{
    (void)state;
    stop_gateway(&gw_b);
    stop_gateway(&gw_c);
    stop_gateway(&gw_a);
    assert_int_equal(redis_of(&gw_b), 0);
    assert_int_equal(bob.sink.dropped, 0);
    EXPECT_LEDGER();
    print_message("%zu ledger entries checked against what bob's backend received\n", sent_to_bob.n);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_outbox_urls, test_teardown),
        cmocka_unit_test_teardown(test_delivered_once, test_teardown),
        cmocka_unit_test_teardown(test_redis_down, test_teardown),
        cmocka_unit_test_teardown(test_tampered, test_teardown),
        cmocka_unit_test_teardown(test_redis_not_allowed, test_teardown),
        cmocka_unit_test_teardown(test_stop, test_teardown),
    };

    if (suite_init() != 0)
        return 1;
    return cmocka_run_group_tests_name("e2e_redis", tests, group_setup, group_teardown);
}

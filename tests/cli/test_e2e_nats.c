/*
 * End to end with a NATS backend: two real gateways (NG_BIN) and a real
 * `nats-server -js` on loopback, started and stopped by the suite.
 * Tenant alice on gateway a has a webhook backend (a sink); bob on gateway
 * b has his backend on NATS (adapter "nats"): his messages arrive on
 * noisegate.bob.deliver and he hands his own in on noisegate.bob.submit.
 * carol, also on b, keeps a webhook backend, to show that a NATS outage
 * holds only bob's deliveries.
 *
 * What bob receives is read back from the stream itself (js_GetMsg by
 * sequence), so a message stored twice shows as two, and is checked the
 * way a backend would: the CloudEvents headers, and the Standard Webhooks
 * signature with the harness's own verifier (v1 under bob's whsec_, v1a
 * under bob's published signing key).
 * NG_KEEP=1 keeps the temporary directory (configurations, data, logs).
 */
#include "gateway_harness.h"

#include <nats/nats.h>

#include "../unit/nats_server.h"

enum {
    WAIT_MS = 20000,
    DELIVERY_TIMEOUT_MS = 1000,
    /* webhooks.tolerance_s, short so that a gateway can be down longer than it */
    TOLERANCE_S = 3,
};

static char dir[PATH_MAX / 2];
static gateway gw_a = {.name = "a"}, gw_b = {.name = "b"};
static tenant alice = {.slug = "alice", .g = &gw_a}, bob = {.slug = "bob", .g = &gw_b},
              carol = {.slug = "carol", .g = &gw_b};
static tenant *const tenants[] = {&alice, &bob, &carol};
static struct nats_server ns;
static signer bob_bus;                          /* the whsec_ of bob's NATS backend */
static char bob_nats_backend[BACKEND_ID_BYTES]; /* its id */
static natsConnection *nc;                      /* the suite's own client, as bob's backend */
static jsCtx *js;
static uint64_t bob_seen; /* messages of bob's stream checked so far */

static void
client_connect(void)
{
    natsOptions *o = NULL;

    assert_int_equal(natsOptions_Create(&o), NATS_OK);
    assert_int_equal(natsOptions_SetURL(o, ns.url), NATS_OK);
    assert_int_equal(natsOptions_SetMaxReconnect(o, -1), NATS_OK);
    assert_int_equal(natsOptions_SetReconnectWait(o, 100), NATS_OK);
    assert_int_equal(natsConnection_Connect(&nc, o), NATS_OK);
    natsOptions_Destroy(o);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
}

static int
group_setup(void **state)
{
    blob *out;

    (void)state;
    if (two_gateways_begin(dir, sizeof dir, "ngnats", &gw_a, &gw_b, tenants, sizeof tenants / sizeof tenants[0], NULL,
                           "\"delivery\": {\"allow_private\": [\"127.0.0.1\"], \"retry_schedule_s\": [1, 1, 1],\n"
                           "              \"max_attempts\": 100, \"timeout_ms\": %d},\n"
                           " \"poll\": {\"interval_ms\": 50, \"max_interval_ms\": 200},\n"
                           " \"messages\": {\"default_ttl_s\": %d},\n"
                           " \"webhooks\": {\"tolerance_s\": %d},",
                           DELIVERY_TIMEOUT_MS, MSG_TTL_S, TOLERANCE_S) != 0 ||
        nats_server_start(&ns) != 0)
        return -1;
    GCLI(&gw_a, "tenant", "create", "alice");
    GCLI(&gw_b, "tenant", "create", "bob");
    GCLI(&gw_b, "tenant", "create", "carol");
    connect_tenants(&alice, NULL, tenants, sizeof tenants / sizeof tenants[0]);
    /* bob's webhook backend makes way for his NATS one. */
    GCLI(&gw_b, "backend", "remove", "bob", bob.backend);
    out = GCLI(&gw_b, "backend", "add", "bob", "--url", ns.url, "--adapter", "nats");
    assert_non_null(strstr(text_of(out), "(nats, opened)"));
    backend_added(out, &bob_bus, bob_nats_backend);
    start_gateway(&gw_a);
    start_gateway(&gw_b);
    client_connect();
    return test_teardown(state);
}

static int
group_teardown(void **state)
{
    (void)state;
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nats_server_stop(&ns);
    nats_CloseAndWait(2000);
    return suite_teardown(dir, (gateway *const[]){&gw_a, &gw_b, NULL}, (tenant *const[]){&alice, &bob, &carol, NULL});
}

/* ---- bob's stream, read as his backend would ---- */

/* Messages in bob's stream; 0 while it does not exist. */
static uint64_t
stream_count(void)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    uint64_t n = 0;

    if (js_GetStreamInfo(&si, js, "noisegate-bob", NULL, &jerr) == NATS_OK)
        n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
}

static void
wait_stream_count(uint64_t want, long ms)
{
    long t0 = now_ms();
    uint64_t n;

    while ((n = stream_count()) < want && now_ms() - t0 < ms)
        sleep_ms(50);
    if (n != want)
        fail_msg("bob's stream holds %llu messages, want %llu", (unsigned long long)n, (unsigned long long)want);
}

static const char *
hdr(natsMsg *m, const char *name)
{
    const char *v = NULL;

    if (natsMsgHeader_Get(m, name, &v) != NATS_OK)
        return NULL;
    return v;
}

/* One v1 entry under bob's whsec_ and one v1a under his tenant's signing key, both verifying. */
static void
expect_signatures(const char *header, const blob *content)
{
    char copy[NG_WEBHOOK_HEADER_MAX + 1], *save = NULL, *e;
    int v1 = 0, v1a = 0;

    assert_true(strlen(header) < sizeof copy);
    strcpy(copy, header);
    for (e = strtok_r(copy, " ", &save); e != NULL; e = strtok_r(NULL, " ", &save)) {
        if (strncmp(e, "v1,", 3) == 0) {
            assert_true(verify_v1(bob_bus.secret, bob_bus.secret_len, content, e + 3));
            v1++;
        } else if (strncmp(e, "v1a,", 4) == 0) {
            assert_true(verify_v1a(bob.sign_pk, content, e + 4));
            v1a++;
        } else {
            fail_msg("unexpected signature entry %s", e);
        }
    }
    assert_int_equal(v1, 1);
    assert_int_equal(v1a, 1);
}

/* Message seq of bob's stream: a delivery of m, signed by the gateway for bob's backend. */
static void
expect_delivery(uint64_t seq, const msg *m)
{
    natsMsg *got = NULL;
    jsErrCode jerr = 0;
    const char *sig, *ts;
    char source[128];
    blob *content;
    int64_t age;

    assert_int_equal(js_GetMsg(&got, js, "noisegate-bob", seq, NULL, &jerr), NATS_OK);
    assert_string_equal(natsMsg_GetSubject(got), "noisegate.bob.deliver");
    assert_string_equal(hdr(got, "ce-specversion"), "1.0");
    assert_string_equal(hdr(got, "ce-id"), m->id);
    assert_string_equal(hdr(got, "webhook-id"), m->id);
    snprintf(source, sizeof source, "urn:noisegate:bob:%s", m->from->slug);
    assert_string_equal(hdr(got, "ce-source"), source);
    assert_string_equal(hdr(got, "content-type"), m->content_type);
    assert_non_null(hdr(got, "ce-time"));
    assert_non_null(hdr(got, "ce-ngpattern"));
    assert_int_equal(natsMsg_GetDataLength(got), (int)m->len);
    assert_memory_equal(natsMsg_GetData(got), m->body, m->len);
    ts = hdr(got, "webhook-timestamp");
    sig = hdr(got, "webhook-signature");
    assert_non_null(ts);
    assert_non_null(sig);
    age = (int64_t)(wall_ms() / 1000) - strtoll(ts, NULL, 10);
    assert_true(age >= -5 && age < 120);
    content = signed_content(m->id, ts, (const uint8_t *)natsMsg_GetData(got), (size_t)natsMsg_GetDataLength(got));
    expect_signatures(sig, content);
    natsMsg_Destroy(got);
}

static void
text_msg(msg *m, tenant *to, const char *what)
{
    memset(m, 0, sizeof *m);
    m->from = &alice;
    m->to = to;
    m->content_type = "text/plain; charset=utf-8";
    text_body(m, what);
}

/* ---- submissions, as bob's backend publishes them ---- */

/* Publishes body on bob's submit subject, signed by s at ts (0: now) with webhook-id id (NULL: fresh). */
static void
publish_submission(const signer *s, const char *id, int64_t ts, const char *body)
{
    char wid[40], sig[NG_WEBHOOK_SIGNATURE_BYTES], tss[24];
    natsMsg *m = NULL;
    jsPubAck *ack = NULL;
    jsErrCode jerr = 0;

    if (id == NULL) {
        fresh_id(wid);
        id = wid;
    }
    if (ts == 0)
        ts = (int64_t)(wall_ms() / 1000);
    sign(sig, s, id, ts, body, strlen(body));
    snprintf(tss, sizeof tss, "%lld", (long long)ts);
    assert_int_equal(natsMsg_Create(&m, "noisegate.bob.submit", NULL, body, (int)strlen(body)), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(m, "content-type", "application/json"), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(m, "webhook-id", id), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(m, "webhook-timestamp", tss), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(m, "webhook-signature", sig), NATS_OK);
    assert_int_equal(js_PublishMsg(&ack, js, m, NULL, &jerr), NATS_OK);
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(m);
}

/* bob's durable: nothing waiting and nothing out, so every message was acked or terminated. */
static void
wait_consumer_settled(uint64_t delivered_at_least, long ms)
{
    char durable[64];
    long t0 = now_ms();

    snprintf(durable, sizeof durable, "noisegate-bob-%s", bob_nats_backend);
    for (;;) {
        jsConsumerInfo *ci = NULL;
        jsErrCode jerr = 0;
        int settled = 0;

        if (js_GetConsumerInfo(&ci, js, "noisegate-bob", durable, NULL, &jerr) == NATS_OK)
            settled = ci->NumPending == 0 && ci->NumAckPending == 0 && ci->Delivered.Consumer >= delivered_at_least;
        jsConsumerInfo_Destroy(ci);
        if (settled)
            return;
        if (now_ms() - t0 > ms)
            fail_msg("bob's consumer %s has not settled", durable);
        sleep_ms(50);
    }
}

static const char *
submission_json(const char *to, const char *body)
{
    return dump(json_pack("{s:s, s:s, s:s}", "recipient", to, "content_type", "text/plain", "body", body));
}

/* ---- tests ---- */

/* A message to bob lands once in his stream, with its headers and signatures. */
static void
test_deliver(void **state)
{
    msg m;

    (void)state;
    text_msg(&m, &bob, "to bob on the bus");
    send_message(&m);
    wait_stream_count(bob_seen + 1, WAIT_MS);
    expect_delivery(++bob_seen, &m);
    /* acked by the publish ack: nothing waits in bob's inbox */
    WAIT_QUEUE(&bob, 0, 0, WAIT_MS);
    sleep_ms(1500);
    assert_int_equal(stream_count(), bob_seen);
    assert_int_equal(sink_total(&bob.sink), 0);
}

/*
 * NATS down: bob's messages wait and are retried, carol's webhooks go on;
 * NATS back: each of bob's arrives once.
 */
static void
test_outage(void **state)
{
    msg m[3], c;
    int i;

    (void)state;
    nats_server_halt(&ns);
    for (i = 0; i < 3; i++) {
        text_msg(&m[i], &bob, "while the bus is down");
        send_message(&m[i]);
    }
    wait_log(&gw_b, "delivery failed", "NATS not connected", WAIT_MS);
    text_msg(&c, &carol, "carol meanwhile");
    send_message(&c);
    WAIT_HITS(&carol.sink, c.id, 1, 5000);
    assert_int_equal(nats_server_restart(&ns), 0);
    wait_stream_count(bob_seen + 3, WAIT_MS);
    /* In the order the retries happened to run: find each once. */
    for (i = 0; i < 3; i++) {
        uint64_t seq;
        int found = 0;

        for (seq = bob_seen + 1; seq <= bob_seen + 3; seq++) {
            natsMsg *got = NULL;
            jsErrCode jerr = 0;

            assert_int_equal(js_GetMsg(&got, js, "noisegate-bob", seq, NULL, &jerr), NATS_OK);
            if (strcmp(hdr(got, "ce-id"), m[i].id) == 0) {
                expect_delivery(seq, &m[i]);
                found++;
            }
            natsMsg_Destroy(got);
        }
        assert_int_equal(found, 1);
    }
    bob_seen += 3;
    WAIT_QUEUE(&bob, 0, 0, WAIT_MS);
    sleep_ms(2000);
    assert_int_equal(stream_count(), bob_seen);
}

/* bob hands a message in on NATS: alice's backend gets it once; the bus message is acked. */
static void
test_submit(void **state)
{
    const char *body = submission_json("alice", "from bob, over the bus");
    char id[40];

    (void)state;
    wait_stream_count(bob_seen, WAIT_MS); /* the stream exists: the gateway made it */
    fresh_id(id);
    publish_submission(&bob_bus, id, 0, body);
    /* The same message again (a backend that lost its publish ack): the webhook-id makes it one. */
    publish_submission(&bob_bus, id, 0, body);
    bob_seen += 2;
    wait_consumer_settled(2, WAIT_MS);
    {
        long t0 = now_ms();

        while (sink_total(&alice.sink) < 1 && now_ms() - t0 < WAIT_MS)
            sleep_ms(50);
    }
    sleep_ms(1500);
    assert_int_equal(sink_total(&alice.sink), 1);
    assert_int_equal(sink_at(&alice.sink, 0)->body_len, strlen("from bob, over the bus"));
    assert_memory_equal(sink_at(&alice.sink, 0)->body, "from bob, over the bus", strlen("from bob, over the bus"));
}

/* Bad submissions are terminated with their reason logged; nothing reaches alice; a good one after them does. */
static void
test_submit_refused(void **state)
{
    signer wrong = bob_bus;
    int before = sink_total(&alice.sink);
    int64_t old = (int64_t)(wall_ms() / 1000) - 3600;

    (void)state;
    wrong.secret[0] ^= 1;
    publish_submission(&wrong, NULL, 0, submission_json("alice", "forged"));
    publish_submission(&bob_bus, NULL, 0, "{\"recipient\": \"alice\", ");
    publish_submission(&bob_bus, NULL, 0, submission_json("nobody", "to a stranger"));
    /* signed an hour before the bus stored it */
    publish_submission(&bob_bus, NULL, old, submission_json("alice", "stale"));
    bob_seen += 4;
    wait_consumer_settled(6, WAIT_MS);
    wait_log(&gw_b, "NATS submission refused", "bad_signature", WAIT_MS);
    wait_log(&gw_b, "NATS submission refused", "bad_request", WAIT_MS);
    wait_log(&gw_b, "NATS submission refused", "unknown_peer", WAIT_MS);
    wait_log(&gw_b, "NATS submission refused", "stale_timestamp", WAIT_MS);
    publish_submission(&bob_bus, NULL, 0, submission_json("alice", "fine again"));
    bob_seen++;
    wait_consumer_settled(7, WAIT_MS);
    {
        long t0 = now_ms();

        while (sink_total(&alice.sink) < before + 1 && now_ms() - t0 < WAIT_MS)
            sleep_ms(50);
    }
    sleep_ms(1000);
    assert_int_equal(sink_total(&alice.sink), before + 1);
    assert_memory_equal(sink_at(&alice.sink, before)->body, "fine again", strlen("fine again"));
    assert_true(alive(gw_b.pid));
}

/* A submission that waited in the stream while the gateway was down is taken when it is back. */
static void
test_submit_while_down(void **state)
{
    int before = sink_total(&alice.sink);

    (void)state;
    stop_gateway(&gw_b);
    publish_submission(&bob_bus, NULL, 0, submission_json("alice", "sent while b was down"));
    bob_seen++;
    /* Down longer than webhooks.tolerance_s: its signature's age counts to when the stream stored it, not to now. */
    sleep_ms(1000L * (TOLERANCE_S + 1));
    start_gateway(&gw_b);
    wait_consumer_settled(8, WAIT_MS);
    {
        long t0 = now_ms();

        while (sink_total(&alice.sink) < before + 1 && now_ms() - t0 < WAIT_MS)
            sleep_ms(50);
    }
    assert_int_equal(sink_total(&alice.sink), before + 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_deliver, test_teardown),
        cmocka_unit_test_teardown(test_outage, test_teardown),
        cmocka_unit_test_teardown(test_submit, test_teardown),
        cmocka_unit_test_teardown(test_submit_refused, test_teardown),
        cmocka_unit_test_teardown(test_submit_while_down, test_teardown),
    };

    suite_init();
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/*
 * End to end through HTTP storage: gateway "a" (tenant alice) keeps its
 * outbox in a WebDAV collection (outbox.store "http") on a private nginx
 * that this suite starts on 127.0.0.1 (tests/unit/nginx_server.h), and
 * gateway "b" (tenant bob) polls that collection itself: the outbox URL in
 * alice's connection parameters is the storage, not gateway a. Backends
 * are sinks (gateway_harness.h); webhooks are checked with the harness's
 * own Standard Webhooks verifier.
 *
 * Besides the way through (the parcel stored where the design says, read
 * once, delivered once, byte for byte, signed both ways), what matters on
 * this path: the storage stops answering (the submission is refused with
 * 503 and nothing is stored or delivered; once it is back, the retry the
 * 503 asks for goes through and bob's poller carries on from its cursor
 * without reading anything twice; a submission taken from NATS meanwhile
 * waits on the bus and is stored once when it is back), and objects
 * altered on the storage (a flipped byte, junk under a parcel's name) are
 * refused and counted while the parcels after them are delivered.
 *
 * The tests run in order on the same gateways; the ledger holds every
 * message a gateway accepted for bob and whether it must arrive, and is
 * checked against bob's backend once both gateways have stopped.
 * NG_KEEP=1 keeps the temporary directory (configurations, data, logs);
 * nginx's directory goes with nginx.
 */
#include <dirent.h>

#include "gateway_harness.h"

#include <nats/nats.h>

#include "../unit/nats_server.h"

enum {
    DELIVERY_WAIT_MS = 20000,
    /* outbox.http_timeout_ms of both gateways: how long a store that does not answer takes to become a 503. */
    STORE_TIMEOUT_MS = 1000,
    /* Long enough for a duplicate or a late delivery to show: polls come every 50-200 ms. */
    QUIET_MS = 1500,
    /* client_max_body_size of the storage in test_batch_all_or_none. */
    STORE_MAX_OBJECT = 16384,
};

static char dir[PATH_MAX / 2], store_url[128];
/* The storage: nginx with dav and dav_ext; gateway a's outbox is store_url, its collection /outbox. */
static struct nginx_server store;
/* For test_bus_storage_down: a bus alice's NATS backend publishes on, and the suite's client as that backend. */
static struct nats_server ns;
static signer alice_bus;                          /* the whsec_ of alice's NATS backend */
static char alice_nats_backend[BACKEND_ID_BYTES]; /* its id */
static natsConnection *nc;
static jsCtx *js;
static gateway gw_a = {.name = "a"}, gw_b = {.name = "b"};
static tenant alice = {.slug = "alice", .g = &gw_a}, bob = {.slug = "bob", .g = &gw_b};
/* What alice's gateway seals to: the name of bob's collection on the storage. */
static char bob_kid[65];

/*
 * Every message a gateway stored for bob, and how often it must reach his
 * backend: 1, 0 for one that must not, -1 for one no test can vouch for
 * (see test_batch_all_or_none).
 */
static tally sent_to_bob;

static void
send_to_bob(msg *m, const char *subject, const char *what)
{
    m->from = &alice;
    m->to = &bob;
    m->content_type = "text/plain; charset=utf-8";
    m->subject = subject;
    text_body(m, what);
    send_message(m);
    tally_add(&sent_to_bob, m->id, 1);
}

/* ---- the storage, as the files nginx serves ---- */

enum { MAX_OBJECTS = 64, NAME_BYTES = 13 + 1 + MSG_ID_HEX + 4 + 1 };

/* The names of the objects in bob's collection (up to MAX_OBJECTS of them into names, if given); how many. */
static int
list_objects(char names[][NAME_BYTES])
{
    char path[PATH_MAX];
    struct dirent *e;
    int n = 0;
    DIR *d;

    snprintf(path, sizeof path, "%s/outbox/%s", store.root, bob_kid);
    d = opendir(path);
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (names != NULL && n < MAX_OBJECTS)
            snprintf(names[n], NAME_BYTES, "%.*s", NAME_BYTES - 1, e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

static int
object_count(void)
{
    return list_objects(NULL);
}

/* The file of message id's object, its name in *name if given (both in blobs); NULL if there is none. */
static const char *
object_of(const char *id, const char **name)
{
    char names[MAX_OBJECTS][NAME_BYTES], path[PATH_MAX + NAME_BYTES + 1];
    int n = list_objects(names), i;

    for (i = 0; i < n && i < MAX_OBJECTS; i++) {
        if (strlen(names[i]) == NAME_BYTES - 1 && strncmp(names[i] + 14, id, MSG_ID_HEX) == 0) {
            snprintf(path, sizeof path, "%s/outbox/%s/%s", store.root, bob_kid, names[i]);
            if (name != NULL)
                *name = text_of(blob_str(names[i]));
            return text_of(blob_str(path));
        }
    }
    return NULL;
}

/* Requests for message id's object in nginx's access log: "GET" or "PUT". */
static int
object_requests(const char *method, const char *id)
{
    char needle[256];
    const char *name;

    if (object_of(id, &name) == NULL)
        fail_msg("message %s has no object in %s/outbox/%s", id, store.root, bob_kid);
    snprintf(needle, sizeof needle, "%s /outbox/%s/%s ", method, bob_kid, name);
    return nginx_server_count(&store, needle);
}

#define EXPECT_LEDGER() expect_tally_at(&sent_to_bob, &bob.sink, &alice.sink, __LINE__)

/* ---- setup ---- */

static void
write_e2e_config(gateway *g, int not, const char *outbox)
{
    /* Polling every 50-200 ms so that a message crosses in well under a second. */
    gateway_config(g, dir, not, NULL,
                   "\"outbox\": {%s\"http_timeout_ms\": %d},\n"
                   " \"delivery\": {\"allow_private\": [\"127.0.0.1\"], \"timeout_ms\": 2000},\n"
                   " \"poll\": {\"interval_ms\": 50, \"max_interval_ms\": 200},",
                   outbox, STORE_TIMEOUT_MS);
}

static int
group_setup(void **state)
{
    char outbox[256];

    (void)state;
    tag_init();
    if (make_temp_dir(dir, sizeof dir, "nge2ehttp") != 0 || nginx_server_start(&store, NULL) != 0 ||
        nats_server_start(&ns) != 0)
        return -1;
    snprintf(store_url, sizeof store_url, "%s/outbox", store.url);
    snprintf(outbox, sizeof outbox, "\"store\": \"http\", \"http_url\": \"%s\", ", store_url);
    write_e2e_config(&gw_a, 0, outbox);
    write_e2e_config(&gw_b, gw_a.port, "");
    if (two_gateways_init(&gw_a, &gw_b, (tenant *const[]){&alice, &bob}, 2) != 0)
        return -1;
    GCLI(&gw_a, "tenant", "create", "alice");
    GCLI(&gw_b, "tenant", "create", "bob");
    key_id_of(&gw_b, "bob", bob_kid);
    /* Exported as it is configured: alice's outbox is the storage. */
    connect_tenants(&alice, NULL, (tenant *const[]){&alice, &bob}, 2);
    start_gateway(&gw_a);
    start_gateway(&gw_b);
    /* Through the running gateway's admin API, which must be given the adapter too. */
    backend_added(GCLI(&gw_a, "backend", "add", "alice", "--url", ns.url, "--adapter", "nats"), &alice_bus,
                  alice_nats_backend);
    return test_teardown(state);
}

static int
group_teardown(void **state)
{
    (void)state;
    nginx_server_stop(&store);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nats_server_stop(&ns);
    nats_CloseAndWait(2000);
    return suite_teardown(dir, (gateway *const[]){&gw_a, &gw_b, NULL}, (tenant *const[]){&alice, &bob, NULL});
}

/* ==== 1. through the storage: stored as the design says, read once, delivered once ==== */

static void
test_delivered_once(void **state)
{
    msg m[2];
    json_t *peers;
    int i;

    (void)state;
    /* bob's gateway reads alice's parcels from the storage, not from gateway a. */
    peers = gcli_json(&gw_b, ARGS("peer", "list", "bob", "--json"));
    assert_int_equal(json_array_size(peers), 1);
    assert_string_equal(jstr(json_array_get(peers, 0), "name"), "alice");
    assert_string_equal(jstr(json_array_get(peers, 0), "outbox"), store_url);

    memset(m, 0, sizeof m);
    send_to_bob(&m[0], "via-storage", "a note through the storage");
    m[1].from = &alice;
    m[1].to = &bob;
    m[1].content_type = "application/octet-stream";
    m[1].subject = "via-storage-bin";
    binary_body(&m[1], 3000);
    send_message(&m[1]);
    tally_add(&sent_to_bob, m[1].id, 1);

    for (i = 0; i < 2; i++) {
        const char *path, *name;
        result r;
        json_t *h;

        /* <base>/<recipient key id>/<created ms, 13 digits>-<message id>.ngp, put once. */
        path = object_of(m[i].id, &name);
        if (path == NULL)
            fail_msg("message %s is not in %s/outbox/%s", m[i].id, store.root, bob_kid);
        assert_int_equal(object_requests("PUT", m[i].id), 1);
        /* The parcel as sealed: its header names the message, bob's key and the expiry the 202 gave. */
        r = ng(NULL, ARGS("inspect", path));
        EXPECT_EXIT(r, 0);
        h = kept(json_loadb(text_of(r.out), r.out->len, 0, NULL));
        assert_non_null(h);
        assert_string_equal(jstr(h, "message_id"), m[i].id);
        assert_string_equal(jstr(h, "recipient_key_id"), bob_kid);
        assert_string_equal(jstr(h, "pattern"), "X");
        assert_int_equal(json_integer_value(json_object_get(h, "expires")), m[i].expires);
        assert_int_equal(strtoll(name, NULL, 10), json_integer_value(json_object_get(h, "created")));
    }
    for (i = 0; i < 2; i++)
        WAIT_HITS(&bob.sink, m[i].id, 1, DELIVERY_WAIT_MS);
    sleep_ms(QUIET_MS);
    /* Byte for byte, signed v1 and v1a, as bob's backend verifies them. */
    for (i = 0; i < 2; i++) {
        EXPECT_ONCE(&m[i]);
        assert_int_equal(object_requests("GET", m[i].id), 1);
    }
    EXPECT_LEDGER();
    assert_true(metric(&gw_b, "ng_parcels_opened_total") == 2);
    assert_true(metric(&gw_a, "ng_messages_accepted_total") == 2);
}

/* ==== 2. the storage stops answering, and comes back ==== */

static void
test_storage_down(void **state)
{
    msg lost = {0}, retried = {0}, after = {0};
    const char *key, *log;
    char line[80], rnd[40];
    int objects = object_count(), hits = sink_total(&bob.sink);
    size_t i, before = sent_to_bob.n;
    long t0, took;
    reply r;

    (void)state;
    fresh_id(rnd);
    snprintf(line, sizeof line, "Idempotency-Key: down-%s", rnd);
    key = text_of(blob_str(line));
    nginx_server_halt(&store);

    /* Refused as the store's failure, soon, with nothing stored. */
    lost.from = &alice;
    lost.to = &bob;
    lost.content_type = "text/plain";
    lost.subject = "while-down";
    text_body(&lost, "sent while the storage was down");
    t0 = now_ms();
    r = submit_msg(&lost, ARGS(key));
    took = now_ms() - t0;
    EXPECT_REPLY(r, 503, "store_unavailable");
    print_message("a submission to a storage that does not answer: 503 after %ld ms (outbox.http_timeout_ms %d)\n",
                  took, STORE_TIMEOUT_MS);
    if (took > STORE_TIMEOUT_MS + 5000)
        fail_msg("the 503 took %ld ms with outbox.http_timeout_ms %d", took, STORE_TIMEOUT_MS);
    /* bob's poller meets the same silence meanwhile; nothing arrives. */
    sleep_ms(QUIET_MS);
    assert_int_equal(sink_total(&bob.sink), hits);

    assert_int_equal(nginx_server_run(&store), 0);
    assert_int_equal(object_count(), objects);

    /* The retry the 503 asks for (a fresh webhook-id, the same Idempotency-Key) is a first attempt: stored now. */
    retried = lost;
    r = submit_msg(&retried, ARGS(key));
    EXPECT_REPLY(r, 202, NULL);
    assert_null(header_of(&r, "idempotent-replayed"));
    tally_add(&sent_to_bob, retried.id, 1);
    send_to_bob(&after, "after-down", "sent once the storage was back");
    WAIT_HITS(&bob.sink, retried.id, 1, DELIVERY_WAIT_MS);
    WAIT_HITS(&bob.sink, after.id, 1, DELIVERY_WAIT_MS);
    sleep_ms(QUIET_MS);
    EXPECT_ONCE(&retried);
    EXPECT_ONCE(&after);
    assert_int_equal(object_count(), objects + 2);
    EXPECT_LEDGER();

    /* bob's poller carried on from its cursor: nothing before it read again, nothing refused as a replay. */
    for (i = 0; i < before; i++)
        if (object_requests("GET", sent_to_bob.e[i].id) != 1)
            fail_msg("message %s was read %d times from the storage", sent_to_bob.e[i].id,
                     object_requests("GET", sent_to_bob.e[i].id));
    assert_true(metric(&gw_b, "ng_parcels_refused_total{reason=\"replayed\"}") <= 0);
    log = text_of(slurp(gw_b.log));
    assert_non_null(strstr(log, "polling a peer failed"));
    assert_non_null(strstr(log, "polling a peer works again"));
}

/*
 * The same outage for a submission from NATS. Its webhook-id stands in for
 * the Idempotency-Key, and the bus redelivers the very same bytes: were
 * the webhook-id recorded as seen before the storage failed, the retry
 * would be refused as a replay, terminated, and the message lost.
 */
static void
test_bus_storage_down(void **state)
{
    char durable[64], wid[40], tss[24], sig[NG_WEBHOOK_SIGNATURE_BYTES];
    const char *body;
    int objects = object_count(), hits = sink_total(&bob.sink);
    jsConsumerInfo *ci = NULL;
    jsPubAck *ack = NULL;
    jsErrCode jerr = 0;
    natsMsg *pub = NULL;
    msg m = {0};
    long t0;

    (void)state;
    assert_int_equal(natsConnection_ConnectTo(&nc, ns.url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    /* Published before gateway a made the stream, the submission would go nowhere. */
    snprintf(durable, sizeof durable, "noisegate-alice-%s", alice_nats_backend);
    for (t0 = now_ms(); js_GetConsumerInfo(&ci, js, "noisegate-alice", durable, NULL, &jerr) != NATS_OK; sleep_ms(50))
        if (now_ms() - t0 > DELIVERY_WAIT_MS)
            fail_msg("gateway a did not consume %s", durable);
    jsConsumerInfo_Destroy(ci);

    nginx_server_halt(&store);
    m.from = &alice;
    m.to = &bob;
    m.content_type = "text/plain";
    m.subject = "bus-while-down";
    text_body(&m, "published on NATS while the storage was down");
    body = dump(msg_json(&m));
    fresh_id(wid);
    snprintf(tss, sizeof tss, "%lld", (long long)(wall_ms() / 1000));
    sign(sig, &alice_bus, wid, strtoll(tss, NULL, 10), body, strlen(body));
    assert_int_equal(natsMsg_Create(&pub, "noisegate.alice.submit", NULL, body, (int)strlen(body)), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(pub, "content-type", "application/json"), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(pub, "webhook-id", wid), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(pub, "webhook-timestamp", tss), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(pub, "webhook-signature", sig), NATS_OK);
    assert_int_equal(js_PublishMsg(&ack, js, pub, NULL, &jerr), NATS_OK);
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(pub);

    wait_log(&gw_a, "NATS submission not stored: retried", "store_unavailable", DELIVERY_WAIT_MS);
    assert_int_equal(nginx_server_run(&store), 0);
    assert_int_equal(object_count(), objects);
    assert_int_equal(sink_total(&bob.sink), hits);

    /* The redelivery comes 5 s after the nak: stored this time, not refused as a replay. */
    for (t0 = now_ms(); sink_total(&bob.sink) == hits; sleep_ms(50)) {
        if (LOG_COUNT(&gw_a, "NATS submission refused: terminated") > 0)
            fail_msg("the redelivered submission was terminated, and the message lost; see %s", gw_a.log);
        if (now_ms() - t0 > DELIVERY_WAIT_MS)
            fail_msg("bob's backend got nothing in %d ms", DELIVERY_WAIT_MS);
    }
    snprintf(m.id, sizeof m.id, "%.*s", MSG_ID_HEX, sink_at(&bob.sink, hits)->wid);
    tally_add(&sent_to_bob, m.id, 1);
    sleep_ms(QUIET_MS);
    EXPECT_ONCE(&m);
    EXPECT_LEDGER();
    assert_int_equal(object_count(), objects + 1);
    assert_int_equal(object_requests("PUT", m.id), 1);
    /* Acked: the bus holds nothing more to redeliver. */
    assert_int_equal(js_GetConsumerInfo(&ci, js, "noisegate-alice", durable, NULL, &jerr), NATS_OK);
    assert_int_equal(ci->NumPending + ci->NumAckPending, 0);
    jsConsumerInfo_Destroy(ci);
    assert_int_equal(LOG_COUNT(&gw_a, "NATS submission refused"), 0);
    assert_true(metric(&gw_a, "ng_nats_submissions_total{outcome=\"retried\"}") >= 1);
    assert_true(metric(&gw_a, "ng_nats_submissions_total{outcome=\"stored\"}") == 1);
}

/* ==== 3. objects altered on the storage: refused and counted, and the parcels after them go through ==== */

static void
test_tampered(void **state)
{
    msg flipped = {0}, after = {0};
    char junk[PATH_MAX + 64], path[PATH_MAX + 300];
    const char *name, *log;
    size_t i, before = sent_to_bob.n;
    blob *b;

    (void)state;
    /* bob's gateway is down, so that nothing is read before it is altered. */
    stop_gateway(&gw_b);
    send_to_bob(&flipped, "flipped", "altered on the storage");
    sent_to_bob.e[sent_to_bob.n - 1].want = 0; /* refused by bob's gateway */
    send_to_bob(&after, "after-flipped", "stored after the altered one");

    /* One byte of the last Noise message (its MAC), overwritten in place. */
    snprintf(path, sizeof path, "%s", object_of(flipped.id, &name));
    b = slurp(path);
    assert_non_null(b);
    b->data[b->len - 1] ^= 0x01;
    put_file(path, b->data, b->len);
    /* And junk under a parcel's name, sorting right after it. */
    snprintf(junk, sizeof junk, "%s/outbox/%s/%.13s-ffffffffffffffffffffffffffffffff.ngp", store.root, bob_kid, name);
    put_text(junk, "not a parcel at all");
    tally_add(&sent_to_bob, "ffffffffffffffffffffffffffffffff", 0);

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
    /* Restarted, bob's gateway went on from its cursor: nothing before it read again. */
    for (i = 0; i < before; i++)
        if (object_requests("GET", sent_to_bob.e[i].id) != 1)
            fail_msg("message %s was read %d times from the storage", sent_to_bob.e[i].id,
                     object_requests("GET", sent_to_bob.e[i].id));
    assert_int_equal(object_requests("GET", flipped.id), 1);
}

/* ==== 5. a batch the storage takes only in part ==== */

/* Set while nginx runs with a size limit: the teardown takes it away, whatever happened. */
static int store_limited;

/*
 * KNOWN BUG, skipped unless NG_KNOWN_BUGS=1: with outbox.store "http" a
 * batch is not stored all or none (README, "A batch ... stored all or
 * none"). gateway/ng_api_backend.c, store(): the parcels are PUT one after
 * the other, and when one is refused the request is answered 500 (503 if
 * the storage stopped answering) with the parcels before it left on the
 * storage, where the recipient's gateway finds and delivers them; the
 * backend, told the batch failed, sends it again, and those messages
 * arrive twice (fresh message ids without an Idempotency-Key).
 */
static void
test_batch_all_or_none(void **state)
{
    msg m[2];
    json_t *list = json_array();
    const char *body;
    char limit[64];
    int objects = object_count(), hits = sink_total(&bob.sink);
    reply r;
    size_t i;

    (void)state;
    if (getenv("NG_KNOWN_BUGS") == NULL) {
        json_decref(list);
        print_message("known bug: a batch to HTTP storage is stored in part (NG_KNOWN_BUGS=1 runs this)\n");
        skip();
    }
    /* A storage that takes small objects only (a quota, a size limit): the second parcel is refused with 413. */
    snprintf(limit, sizeof limit, "    client_max_body_size %d;", STORE_MAX_OBJECT);
    store_limited = 1;
    assert_int_equal(nginx_server_write_conf(&store, limit), 0);
    assert_int_equal(nginx_server_restart(&store), 0);
    memset(m, 0, sizeof m);
    for (i = 0; i < 2; i++) {
        m[i].from = &alice;
        m[i].to = &bob;
        m[i].subject = "batch";
    }
    m[0].content_type = "text/plain; charset=utf-8";
    text_body(&m[0], "the small half of a batch");
    m[1].content_type = "application/octet-stream";
    binary_body(&m[1], 2 * STORE_MAX_OBJECT);
    for (i = 0; i < 2; i++)
        json_array_append_new(list, msg_json(&m[i]));
    body = dump(json_pack("{s:o}", "messages", list));
    r = submit(&alice, "application/json", body, strlen(body), NULL);
    print_message("a batch whose second parcel the storage refuses: %ld %s\n", r.status, text_of(r.body));
    assert_true(r.status >= 500);
    sleep_ms(QUIET_MS);
    if (object_count() != objects) {
        char names[MAX_OBJECTS][NAME_BYTES], id[MSG_ID_HEX + 1];
        int n = list_objects(names), k;

        /* What stayed behind is no test's to count at the end: its message id is in its name. */
        for (k = 0; k < n && k < MAX_OBJECTS; k++) {
            snprintf(id, sizeof id, "%.*s", MSG_ID_HEX, names[k] + 14);
            for (i = 0; i < sent_to_bob.n && strcmp(sent_to_bob.e[i].id, id) != 0; i++)
                ;
            if (i == sent_to_bob.n)
                tally_add(&sent_to_bob, id, -1);
        }
        fail_msg("the batch was answered %ld, and %d of its parcels stayed on the storage (%d delivered to bob)",
                 r.status, object_count() - objects, sink_total(&bob.sink) - hits);
    }
    assert_int_equal(sink_total(&bob.sink), hits);
    EXPECT_LEDGER();
}

static int
batch_teardown(void **state)
{
    /* The storage as the other tests know it. */
    if (store_limited && (nginx_server_write_conf(&store, NULL) != 0 || nginx_server_restart(&store) != 0))
        fprintf(stderr, "nginx did not come back\n");
    store_limited = 0;
    return test_teardown(state);
}

/* ==== 4. SIGTERM, and the whole run against the ledger ==== */

static void
test_stop(void **state)
{
    (void)state;
    stop_gateway(&gw_b);
    stop_gateway(&gw_a);
    assert_int_equal(redis_of(&gw_a), 0);
    assert_int_equal(redis_of(&gw_b), 0);
    assert_int_equal(bob.sink.dropped, 0);
    EXPECT_LEDGER();
    print_message("%zu ledger entries checked against what bob's backend received\n", sent_to_bob.n);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_delivered_once, test_teardown),
        cmocka_unit_test_teardown(test_storage_down, test_teardown),
        cmocka_unit_test_teardown(test_bus_storage_down, test_teardown),
        cmocka_unit_test_teardown(test_tampered, test_teardown),
        cmocka_unit_test_teardown(test_batch_all_or_none, batch_teardown),
        cmocka_unit_test_teardown(test_stop, test_teardown),
    };

    if (suite_init() != 0)
        return 1;
    return cmocka_run_group_tests_name("e2e_http", tests, group_setup, group_teardown);
}

/*
 * End to end: two real gateways (NG_BIN), "a" with tenant alice and "b"
 * with tenants bob (X, K), bob2, bobn (--allow-anonymous: also N) and
 * bobpsk (--psk --allow-anonymous: Xpsk1, Kpsk0, Npsk0), each gateway with
 * its own data_dir, vault and embedded Redis on its own loopback port. The
 * tenants exchanged connection parameters with the CLI; alice's backend
 * posts signed messages to gateway a, gateway b polls alice's outboxes and
 * delivers to the recipients' backends: sinks (gateway_harness.h,
 * libmicrohttpd on 127.0.0.1) that record every request and answer as each
 * test tells them (a status N times, or hang).
 *
 * Webhooks are checked the way a backend would check them, with the
 * harness's Standard Webhooks verifier (HMAC-SHA256 under the whsec_
 * secret, Ed25519 under the tenant's published signing key), not the
 * gateway's own code, so that a bug shared by signer and verifier shows.
 *
 * Beyond the happy path: retries on the schedule and after Retry-After,
 * dead letters and their replay (attempts counted afresh), a 410 that
 * disables the backend until an operator enables it, a message that
 * expires between retries, gateway b killed with an attempt in flight
 * (its orphaned redis-server, the lease, a message sent while it was down),
 * end-to-end mode (bob2's private key exported to its backend: an opened
 * backend's delivery dead-letters, a sealed one gets the parcel, which only
 * the exported key opens) and SIGTERM with an attempt in flight.
 *
 * The tests run in order on the same two gateways. A ledger records every
 * message the gateways accepted and, once its test has settled it, how
 * many attempts and how many 2xx answers it must have had; after both
 * gateways stopped, every sink is compared with the ledger, which catches
 * a late duplicate, an attempt past max_attempts, a delivery after expiry
 * and a message at the wrong tenant's backend, whichever test sent it.
 * NG_KEEP=1 keeps the temporary directory (configurations, data, logs).
 */
#include "gateway_harness.h"

#include "ng_hex.h"
#include "ng_key.h"
#include "ng_parcel.h"

enum {
    DELIVERY_WAIT_MS = 20000,
    /* The configuration both gateways share (see group_setup). */
    DELIVERY_TIMEOUT_MS = 500,
    MAX_ATTEMPTS = 3,
    /* The claim lease of ng_deliverer.c: 2 * delivery.timeout_ms + 10 s. */
    LEASE_MS = 2 * DELIVERY_TIMEOUT_MS + 10000,
    /* How late a due retry may start: the deliverer's idle claim round. */
    CLAIM_IDLE_MS = 1000,
    MAX_SENT = 512,
};

/* delivery.retry_schedule_s; the third entry is long enough to outlive the ttl of test_expiry. */
static const int schedule_s[] = {1, 1, 4};

static char dir[PATH_MAX / 2];
static gateway gw_a = {.name = "a"}, gw_b = {.name = "b"};
static tenant alice = {.slug = "alice", .g = &gw_a}, bob = {.slug = "bob", .g = &gw_b},
              bob2 = {.slug = "bob2", .g = &gw_b}, bobn = {.slug = "bobn", .g = &gw_b},
              bobpsk = {.slug = "bobpsk", .g = &gw_b};
static tenant *const tenants[] = {&alice, &bob, &bob2, &bobn, &bobpsk};

/* The dead letter of message id in t's list, or NULL. */
static json_t *
dead_letter(const tenant *t, const char *id)
{
    char path[128];
    json_t *list;
    reply r;
    size_t i;

    snprintf(path, sizeof path, "/v1/admin/tenants/%s/dead?limit=1000", t->slug);
    r = admin(t->g, "GET", path, NULL);
    EXPECT_STATUS(r, 200);
    list = json_object_get(r.json, "dead");
    assert_true(json_is_array(list));
    for (i = 0; i < json_array_size(list); i++)
        if (strcmp(jstr(json_array_get(list, i), "message_id"), id) == 0)
            return json_array_get(list, i);
    return NULL;
}

static size_t
dead_count(const tenant *t)
{
    char path[128];
    reply r;

    snprintf(path, sizeof path, "/v1/admin/tenants/%s/dead?limit=1000", t->slug);
    r = admin(t->g, "GET", path, NULL);
    EXPECT_STATUS(r, 200);
    assert_true(json_is_array(json_object_get(r.json, "dead")));
    return json_array_size(json_object_get(r.json, "dead"));
}

/* The status of t's backend in GET /v1/admin/tenants/{t}. */
static const char *
backend_status(const tenant *t)
{
    char path[128];
    json_t *list;
    reply r;
    size_t i;

    snprintf(path, sizeof path, "/v1/admin/tenants/%s", t->slug);
    r = admin(t->g, "GET", path, NULL);
    EXPECT_STATUS(r, 200);
    list = json_object_get(r.json, "backends");
    assert_true(json_is_array(list));
    for (i = 0; i < json_array_size(list); i++)
        if (strcmp(jstr(json_array_get(list, i), "id"), t->backend) == 0)
            return jstr(json_array_get(list, i), "status");
    fail_msg("backend %s of %s is not in %s", t->backend, t->slug, text_of(r.body));
    return NULL;
}

static int
group_setup(void **state)
{
    (void)state;
    /* Polling every 50-200 ms so that a message crosses in well under a second. */
    if (two_gateways_begin(dir, sizeof dir, "nge2e", &gw_a, &gw_b, tenants, sizeof tenants / sizeof tenants[0], NULL,
                           "\"delivery\": {\"allow_private\": [\"127.0.0.1\"], \"retry_schedule_s\": [%d, %d, %d],\n"
                           "              \"max_attempts\": %d, \"timeout_ms\": %d},\n"
                           " \"poll\": {\"interval_ms\": 50, \"max_interval_ms\": 200},\n"
                           " \"messages\": {\"default_ttl_s\": %d},",
                           schedule_s[0], schedule_s[1], schedule_s[2], MAX_ATTEMPTS, DELIVERY_TIMEOUT_MS,
                           MSG_TTL_S) != 0)
        return -1;
    GCLI(&gw_a, "tenant", "create", "alice");
    GCLI(&gw_b, "tenant", "create", "bob");
    GCLI(&gw_b, "tenant", "create", "bob2");
    GCLI(&gw_b, "tenant", "create", "bobn", "--allow-anonymous");
    GCLI(&gw_b, "tenant", "create", "bobpsk", "--psk", "--allow-anonymous");
    connect_tenants(&alice, NULL, tenants, sizeof tenants / sizeof tenants[0]);
    start_gateway(&gw_a);
    start_gateway(&gw_b);
    return test_teardown(state);
}

static int
group_teardown(void **state)
{
    (void)state;
    return suite_teardown(dir, (gateway *const[]){&gw_a, &gw_b, NULL},
                          (tenant *const[]){&alice, &bob, &bob2, &bobn, &bobpsk, NULL});
}

/* A failed test_gone must not leave bob's backend disabled for the tests after it. */
static int
gone_teardown(void **state)
{
    char path[128];

    snprintf(path, sizeof path, "/v1/admin/tenants/bob/backends/%s/enable", bob.backend);
    if (gw_b.pid > 0)
        admin(&gw_b, "POST", path, "");
    return test_teardown(state);
}

/* ---- sending, and the ledger ---- */

typedef struct sent {
    char id[MSG_ID_HEX + 1];
    tenant *to;
    int hits; /* requests its backend must have received in all; -1 until its test settles it */
    int acks; /* of which answered 2xx */
} sent;

static sent ledger[MAX_SENT];
static size_t nsent;

static sent *
ledger_add(tenant *to, const char *id)
{
    sent *s;

    assert_true(nsent < MAX_SENT);
    assert_true(is_lower_hex(id, MSG_ID_HEX));
    s = &ledger[nsent++];
    snprintf(s->id, sizeof s->id, "%s", id);
    s->to = to;
    s->hits = -1;
    s->acks = -1;
    return s;
}

static sent *
ledger_find(const char *id)
{
    size_t i;

    for (i = 0; i < nsent; i++)
        if (strcmp(ledger[i].id, id) == 0)
            return &ledger[i];
    return NULL;
}

static void
settle(const char *id, int hits, int acks)
{
    sent *s = ledger_find(id);

    assert_non_null(s);
    s->hits = hits;
    s->acks = acks;
}

/* m, from alice unless it says otherwise, into the ledger. */
static void
send_msg(msg *m)
{
    if (m->from == NULL)
        m->from = &alice;
    send_message(m);
    ledger_add(m->to, m->id);
}

/* ==== 1. every pattern, byte for byte, signed both ways ==== */

static void
test_patterns(void **state)
{
    static const struct {
        tenant *to;
        const char *pattern;
    } cases[] = {{&bob, "X"},        {&bob, "K"},        {&bobn, "N"},      {&bobn, "X"},
                 {&bobpsk, "Xpsk1"}, {&bobpsk, "Kpsk0"}, {&bobpsk, "Npsk0"}};
    enum { N_CASES = sizeof cases / sizeof cases[0] };
    msg m[2 * N_CASES + 1];
    const hit *h;
    long worst = 0;
    size_t i;
    char why[600];

    (void)state;
    memset(m, 0, sizeof m);
    for (i = 0; i < N_CASES; i++) {
        msg *t = &m[2 * i], *b = &m[2 * i + 1];
        char what[64];

        t->to = b->to = cases[i].to;
        t->pattern = b->pattern = cases[i].pattern;
        snprintf(what, sizeof what, "a note sealed %s", cases[i].pattern);
        text_body(t, what);
        t->content_type = "text/plain; charset=utf-8";
        t->type = "com.example.note";
        /* A space, a quote, a percent sign and UTF-8: all percent-encoded on the way, all restored here. */
        t->subject = text_of(blob_str("order 17 \"r\xc3\xa9sum\xc3\xa9\" 100%"));
        binary_body(b, 700 + 13 * i);
        b->content_type = "application/x-noisegate-test; v=1";
        b->type = "com.example.blob";
        b->subject = "blob-1";
        send_msg(t);
        send_msg(b);
    }
    /* One more in CloudEvents binary mode: the raw body and its own content type. */
    {
        msg *c = &m[2 * N_CASES];
        reply r;

        c->from = &alice;
        c->to = &bob;
        c->pattern = "X";
        binary_body(c, 300);
        c->content_type = "application/cbor";
        c->type = "com.example.ce";
        c->subject = "ce-1";
        c->sent_ms = now_ms();
        c->sent_wall = wall_ms();
        r = submit(&alice, c->content_type, c->body, c->len,
                   ARGS("ce-specversion: 1.0", "ce-recipient: bob", "ce-type: com.example.ce", "ce-subject: ce-1",
                        "ce-pattern: X"));
        EXPECT_STATUS(r, 202);
        snprintf(c->id, sizeof c->id, "%s", jstr(r.json, "id"));
        c->expires = (long long)json_integer_value(json_object_get(r.json, "expires"));
        ledger_add(&bob, c->id);
    }
    for (i = 0; i < 2 * N_CASES + 1; i++) {
        const hit *first[1] = {NULL};

        WAIT_HITS(&m[i].to->sink, m[i].id, 1, DELIVERY_WAIT_MS);
        sink_find(&m[i].to->sink, m[i].id, first, 1);
        if (first[0]->t_ms - m[i].sent_ms > worst)
            worst = first[0]->t_ms - m[i].sent_ms;
    }
    print_message("slowest of %d messages crossed in %ld ms\n", 2 * N_CASES + 1, worst);
    if (worst > 5000)
        fail_msg("a message took %ld ms from alice's backend to bob's; polling every 50-200 ms", worst);
    /* Late duplicates would show by now. */
    sleep_ms(2000);
    for (i = 0; i < 2 * N_CASES + 1; i++) {
        h = EXPECT_ONCE(&m[i]);
        settle(m[i].id, 1, 1);
    }

    /* The verifier is not a rubber stamp: one changed byte of the body, or another key, and it refuses. */
    h = EXPECT_ONCE(&m[1]);
    {
        blob *b = blob_of(h->body, h->body_len);

        b->data[b->len / 2] ^= 0x01;
        assert_false(signatures_ok(h, m[1].to, b->data, b->len, why, sizeof why));
        assert_false(signatures_ok(h, &bob2, h->body, h->body_len, why, sizeof why));
        assert_true(signatures_ok(h, m[1].to, h->body, h->body_len, why, sizeof why));
    }
    /* Each tenant signs with its own key: bob's webhook does not verify under bobn's. */
    assert_false(verify_v1a(bobn.sign_pk,
                            signed_content(hit_header(h, "webhook-id", NULL), hit_header(h, "webhook-timestamp", NULL),
                                           h->body, h->body_len),
                            strstr(hit_header(h, "webhook-signature", NULL), "v1a,") + 4));
}

/* ==== 2. many at once: each exactly once ==== */

static void
test_many(void **state)
{
    enum { BATCH = 50, SINGLES = 50, ALL = BATCH + SINGLES };
    static msg m[ALL];
    json_t *list = json_array(), *ids;
    const char *body;
    long t0;
    reply r;
    size_t i;
    int distinct, raw;

    (void)state;
    memset(m, 0, sizeof m);
    for (i = 0; i < ALL; i++) {
        char what[64];

        m[i].from = &alice;
        m[i].to = &bob;
        if (i % 3 == 2) {
            binary_body(&m[i], 64 + i);
            m[i].content_type = "application/octet-stream";
        } else {
            snprintf(what, sizeof what, "many #%zu", i);
            text_body(&m[i], what);
            m[i].content_type = "text/plain; charset=utf-8";
        }
        m[i].subject = "many";
    }
    for (i = 0; i < BATCH; i++)
        json_array_append_new(list, msg_json(&m[i]));
    body = dump(json_pack("{s:o}", "messages", list));
    t0 = now_ms();
    r = submit(&alice, "application/json", body, strlen(body), NULL);
    EXPECT_STATUS(r, 202);
    ids = json_object_get(r.json, "messages");
    assert_true(json_is_array(ids));
    assert_int_equal(json_array_size(ids), BATCH);
    for (i = 0; i < BATCH; i++) {
        snprintf(m[i].id, sizeof m[i].id, "%s", jstr(json_array_get(ids, i), "id"));
        m[i].expires = (long long)json_integer_value(json_object_get(json_array_get(ids, i), "expires"));
        m[i].sent_ms = t0;
        m[i].sent_wall = wall_ms();
        ledger_add(&bob, m[i].id);
    }
    for (i = BATCH; i < ALL; i++)
        send_msg(&m[i]);
    for (i = 0; i < ALL; i++) {
        if (ledger_find(m[i].id) != &ledger[nsent - ALL + i])
            fail_msg("message id %s was given twice", m[i].id);
        WAIT_HITS(&bob.sink, m[i].id, 1, DELIVERY_WAIT_MS);
    }
    print_message("%d messages delivered %ld ms after the batch was sent\n", ALL, now_ms() - t0);
    if (now_ms() - t0 > 15000)
        fail_msg("%d messages took %ld ms to cross", ALL, now_ms() - t0);
    sleep_ms(1000);
    distinct = 0;
    raw = 0;
    for (i = 0; i < ALL; i++) {
        int n = sink_count(&bob.sink, m[i].id);

        distinct += n > 0;
        raw += n;
    }
    if (raw != distinct || distinct != ALL)
        fail_msg("%d messages: %d distinct webhook-ids arrived in %d requests", ALL, distinct, raw);
    for (i = 0; i < ALL; i++) {
        EXPECT_ONCE(&m[i]);
        settle(m[i].id, 1, 1);
    }
    WAIT_QUEUE(&bob, 0, -1, 5000);
}

/* ==== 3. retries follow the schedule ==== */

static void
test_retry(void **state)
{
    msg m = {.from = &alice, .to = &bob, .content_type = "text/plain", .subject = "retry-1"};
    msg ra = {.from = &alice, .to = &bob, .content_type = "text/plain", .subject = "retry-after-1"};
    msg now = {.from = &alice, .to = &bob, .content_type = "text/plain", .subject = "retry-after-0"};
    const hit *h[4];
    long long ts[3];
    long gap;
    int i;

    (void)state;
    RULE(&bob.sink, "retry-1", 204, 500, 500);
    /* A 503 with Retry-After: 3 overrides the 1 s of the schedule. */
    RULE(&bob.sink, "retry-after-1", 204, 503);
    sink_retry_after(&bob.sink, "retry-after-1", "3");
    /* Retry-After: 0 asks for no wait at all: a second still, or the attempts would all be spent at once. */
    RULE(&bob.sink, "retry-after-0", 204, 503, 503);
    sink_retry_after(&bob.sink, "retry-after-0", "0");
    text_body(&m, "retried");
    text_body(&ra, "retried after");
    text_body(&now, "retried at once, asked the backend");
    send_msg(&m);
    send_msg(&ra);
    send_msg(&now);
    WAIT_HITS(&bob.sink, m.id, 3, DELIVERY_WAIT_MS + 10000);
    WAIT_HITS(&bob.sink, ra.id, 2, DELIVERY_WAIT_MS + 10000);
    WAIT_QUEUE(&bob, 0, -1, 5000);
    assert_int_equal(sink_find(&bob.sink, m.id, h, 4), 3);
    assert_int_equal(h[0]->status, 500);
    assert_int_equal(h[1]->status, 500);
    assert_int_equal(h[2]->status, 204);
    for (i = 0; i < 3; i++) {
        /* Same webhook-id and ce-id each time (so the backend can dedupe), each signed afresh. */
        EXPECT_WEBHOOK(h[i], &m);
        ts[i] = strtoll(hit_header(h[i], "webhook-timestamp", NULL), NULL, 10);
    }
    for (i = 1; i < 3; i++) {
        long lo = schedule_s[i - 1] * 800L, hi = schedule_s[i - 1] * 1200L + CLAIM_IDLE_MS + 800;

        gap = h[i]->t_ms - h[i - 1]->t_ms;
        print_message("retry %d came %ld ms after the attempt before (schedule %d s)\n", i, gap, schedule_s[i - 1]);
        if (gap < lo || gap > hi)
            fail_msg("retry %d came %ld ms after the attempt before; schedule %d s +-20%% allows %ld-%ld ms", i, gap,
                     schedule_s[i - 1], lo, hi);
        if (ts[i] < ts[i - 1])
            fail_msg("webhook-timestamp went back from %lld to %lld", ts[i - 1], ts[i]);
    }
    if (ts[2] <= ts[0])
        fail_msg("webhook-timestamp %lld on the first attempt and %lld on the third, %ld ms later: not fresh", ts[0],
                 ts[2], h[2]->t_ms - h[0]->t_ms);
    settle(m.id, 3, 1);

    assert_int_equal(sink_find(&bob.sink, ra.id, h, 4), 2);
    assert_int_equal(h[0]->status, 503);
    assert_int_equal(h[1]->status, 204);
    EXPECT_WEBHOOK(h[0], &ra);
    EXPECT_WEBHOOK(h[1], &ra);
    gap = h[1]->t_ms - h[0]->t_ms;
    print_message("after a 503 with Retry-After: 3, the retry came %ld ms later\n", gap);
    if (gap < 2950 || gap > 3000 + CLAIM_IDLE_MS + 800)
        fail_msg("after a 503 with Retry-After: 3, the retry came %ld ms later", gap);
    settle(ra.id, 2, 1);

    WAIT_HITS(&bob.sink, now.id, 3, DELIVERY_WAIT_MS);
    assert_int_equal(sink_find(&bob.sink, now.id, h, 4), 3);
    assert_int_equal(h[2]->status, 204);
    for (i = 1; i < 3; i++) {
        gap = h[i]->t_ms - h[i - 1]->t_ms;
        if (gap < 950)
            fail_msg("after a 503 with Retry-After: 0, retry %d came %ld ms later, not a second", i, gap);
    }
    settle(now.id, 3, 1);
}

/* ==== 4. dead letters, and their replay ==== */

/* Waits for message id to be in t's dead letters; the entry. */
static json_t *
wait_dead_at(const tenant *t, const char *id, long ms, int line)
{
    long t0 = now_ms();
    json_t *d;

    while ((d = dead_letter(t, id)) == NULL) {
        if (now_ms() - t0 > ms)
            fail_msg("line %d: message %s is not among %s's dead letters after %ld ms", line, id, t->slug, ms);
        sleep_ms(50);
    }
    print_message("dead letter: %s\n", dump(json_incref(d)));
    return d;
}

#define WAIT_DEAD(t, id, ms) wait_dead_at((t), (id), (ms), __LINE__)

static void
replay(const tenant *t, const json_t *d, long want)
{
    char path[256];

    snprintf(path, sizeof path, "/v1/admin/tenants/%s/dead/%s/replay", t->slug, jstr(d, "id"));
    EXPECT_STATUS(admin(t->g, "POST", path, ""), want);
}

static void
test_dead_letter(void **state)
{
    msg m = {.from = &alice, .to = &bob, .content_type = "text/plain", .subject = "dead-1"};
    const hit *h[16];
    json_t *d;
    long waiting, dead, dead0;
    size_t before = dead_count(&bob);
    int i, n;

    (void)state;
    queue_of(&bob, &waiting, &dead0);
    assert_int_equal(dead0, (long)before);
    sink_rule(&bob.sink, "dead-1", 500, NULL, 0);
    text_body(&m, "to the dead letters");
    send_msg(&m);
    WAIT_HITS(&bob.sink, m.id, MAX_ATTEMPTS, DELIVERY_WAIT_MS + 10000);
    d = WAIT_DEAD(&bob, m.id, 10000);
    assert_int_equal(json_integer_value(json_object_get(d, "last_status")), 500);
    assert_string_equal(jstr(d, "peer"), "alice");
    assert_true(strlen(jstr(d, "reason")) > 0);
    assert_true(strlen(jstr(d, "id")) > 0);
    queue_of(&bob, &waiting, &dead);
    assert_int_equal(waiting, 0);
    assert_int_equal(dead, dead0 + 1);

    /* Replayed while the backend still fails: the attempts start again from zero, then it is dead again. */
    replay(&bob, d, 200);
    WAIT_HITS(&bob.sink, m.id, 2 * MAX_ATTEMPTS, DELIVERY_WAIT_MS + 10000);
    d = WAIT_DEAD(&bob, m.id, 10000);
    assert_int_equal(json_integer_value(json_object_get(d, "last_status")), 500);
    assert_int_equal(dead_count(&bob), before + 1);
    n = sink_find(&bob.sink, m.id, h, 16);
    assert_int_equal(n, 2 * MAX_ATTEMPTS);
    for (i = 0; i < n; i++) {
        assert_int_equal(h[i]->status, 500);
        EXPECT_WEBHOOK(h[i], &m);
    }

    /* The backend is fixed; the operator replays: delivered once more, and the dead letter is gone. */
    sink_rule(&bob.sink, "dead-1", 204, NULL, 0);
    replay(&bob, d, 200);
    WAIT_HITS(&bob.sink, m.id, 2 * MAX_ATTEMPTS + 1, DELIVERY_WAIT_MS);
    WAIT_QUEUE(&bob, 0, dead0, 5000);
    assert_null(dead_letter(&bob, m.id));
    assert_int_equal(dead_count(&bob), before);
    n = sink_find(&bob.sink, m.id, h, 16);
    assert_int_equal(n, 2 * MAX_ATTEMPTS + 1);
    assert_int_equal(h[n - 1]->status, 204);
    EXPECT_WEBHOOK(h[n - 1], &m);
    /* A replayed dead letter is no longer one: a second replay finds nothing. */
    replay(&bob, d, 404);
    settle(m.id, 2 * MAX_ATTEMPTS + 1, 1);
}

/* ==== 5. 410 disables the backend until an operator enables it ==== */

static void
test_gone(void **state)
{
    msg m[3];
    char path[256];
    long t0;
    int i;

    (void)state;
    memset(m, 0, sizeof m);
    for (i = 0; i < 3; i++) {
        char what[32];

        m[i].from = &alice;
        m[i].to = &bob;
        m[i].content_type = "text/plain";
        snprintf(what, sizeof what, "gone %d", i);
        text_body(&m[i], what);
    }
    m[0].subject = "gone-1";
    m[1].subject = "gone-2";
    m[2].subject = "gone-3";
    RULE(&bob.sink, "gone-1", 204, 410);
    assert_string_equal(backend_status(&bob), "active");
    send_msg(&m[0]);
    WAIT_HITS(&bob.sink, m[0].id, 1, DELIVERY_WAIT_MS);
    t0 = now_ms();
    while (strcmp(backend_status(&bob), "disabled") != 0) {
        if (now_ms() - t0 > 5000)
            fail_msg("bob's backend is \"%s\" 5 s after it answered 410", backend_status(&bob));
        sleep_ms(50);
    }
    send_msg(&m[1]);
    send_msg(&m[2]);
    /* Received and waiting, but not attempted: the 410'd one and the two new ones. */
    WAIT_QUEUE(&bob, 3, -1, 5000);
    sleep_ms(2500);
    for (i = 0; i < 3; i++)
        if (sink_count(&bob.sink, m[i].id) != (i == 0))
            fail_msg("message %d was attempted %d times while the backend was disabled", i,
                     sink_count(&bob.sink, m[i].id) - (i == 0));
    WAIT_QUEUE(&bob, 3, -1, 100);

    snprintf(path, sizeof path, "/v1/admin/tenants/bob/backends/%s/enable", bob.backend);
    EXPECT_STATUS(admin(&gw_b, "POST", path, ""), 200);
    assert_string_equal(backend_status(&bob), "active");
    WAIT_HITS(&bob.sink, m[0].id, 2, DELIVERY_WAIT_MS);
    WAIT_HITS(&bob.sink, m[1].id, 1, DELIVERY_WAIT_MS);
    WAIT_HITS(&bob.sink, m[2].id, 1, DELIVERY_WAIT_MS);
    WAIT_QUEUE(&bob, 0, -1, 5000);
    EXPECT_ONCE(&m[1]);
    EXPECT_ONCE(&m[2]);
    {
        const hit *h[4];

        assert_int_equal(sink_find(&bob.sink, m[0].id, h, 4), 2);
        assert_int_equal(h[0]->status, 410);
        assert_int_equal(h[1]->status, 204);
        EXPECT_WEBHOOK(h[1], &m[0]);
    }
    settle(m[0].id, 2, 1);
    settle(m[1].id, 1, 1);
    settle(m[2].id, 1, 1);
}

/* ==== 6. a message that expires while it waits for a retry ==== */

static void
test_expiry(void **state)
{
    msg m = {.from = &alice, .to = &bob, .content_type = "text/plain", .subject = "expire-1", .ttl = 2};
    const hit *h[8];
    json_t *d;
    long waiting, dead0;
    int i, n;

    (void)state;
    queue_of(&bob, &waiting, &dead0);
    /* Should a retry come after all, it would be acked: the 2xx that must not happen would show. */
    RULE(&bob.sink, "expire-1", 204, 500, 500);
    text_body(&m, "short-lived");
    send_msg(&m);
    WAIT_HITS(&bob.sink, m.id, 1, DELIVERY_WAIT_MS);
    d = WAIT_DEAD(&bob, m.id, 15000);
    if (strstr(jstr(d, "reason"), "expir") == NULL)
        fail_msg("dead letter of an expired message with reason \"%s\"", jstr(d, "reason"));
    assert_string_equal(jstr(d, "peer"), "alice");
    n = sink_find(&bob.sink, m.id, h, 8);
    assert_true(n >= 1 && n <= 2);
    for (i = 0; i < n; i++) {
        assert_int_equal(h[i]->status, 500);
        EXPECT_WEBHOOK(h[i], &m);
        if ((long long)h[i]->wall >= m.expires)
            fail_msg("attempt %d came %lld ms after the message expired", i, (long long)h[i]->wall - m.expires);
    }
    WAIT_QUEUE(&bob, 0, dead0 + 1, 2000);
    settle(m.id, n, 0);
}

/* ==== 8. one tenant's messages never reach another's backend ==== */

static void
test_isolation(void **state)
{
    enum { EACH = 4 };
    msg m[2 * EACH + 2];
    int i, j;

    (void)state;
    memset(m, 0, sizeof m);
    for (i = 0; i < 2 * EACH; i++) {
        char what[32];

        m[i].from = &alice;
        m[i].to = i % 2 ? &bob2 : &bob;
        m[i].content_type = "text/plain";
        m[i].subject = "isolation";
        snprintf(what, sizeof what, "for %s #%d", m[i].to->slug, i);
        text_body(&m[i], what);
        send_msg(&m[i]);
    }
    /* And the other way, from gateway b to alice on gateway a. */
    for (i = 2 * EACH; i < 2 * EACH + 2; i++) {
        m[i].from = i % 2 ? &bob2 : &bob;
        m[i].to = &alice;
        m[i].content_type = "text/plain";
        m[i].subject = "reply";
        text_body(&m[i], "a reply to alice");
        send_msg(&m[i]);
    }
    for (i = 0; i < 2 * EACH + 2; i++)
        WAIT_HITS(&m[i].to->sink, m[i].id, 1, DELIVERY_WAIT_MS);
    sleep_ms(500);
    for (i = 0; i < 2 * EACH + 2; i++) {
        EXPECT_ONCE(&m[i]);
        for (j = 0; j < (int)(sizeof tenants / sizeof tenants[0]); j++)
            if (tenants[j] != m[i].to && sink_count(&tenants[j]->sink, m[i].id) != 0)
                fail_msg("message %s for %s reached %s's backend", m[i].id, m[i].to->slug, tenants[j]->slug);
        settle(m[i].id, 1, 1);
    }
}

/* ==== 8b. end-to-end: bob2's backend holds its private key ==== */

/* The body of the parcel a sealed backend got, opened with the key handed to it; sender_pub for K. */
static void
expect_opens_with(const hit *h, const ng_keypair *kp, const uint8_t *sender_pub, const msg *m)
{
    ng_open_params op;
    ng_opened o;
    uint8_t *out = malloc(h->body_len + 1);
    ng_err err;

    assert_non_null(out);
    assert_string_equal(hit_header(h, "content-type", NULL), "application/vnd.noisegate.parcel");
    ng_open_params_init(&op);
    op.recipient = kp;
    op.sender_pub = sender_pub;
    err = ng_parcel_open(out, h->body_len + 1, &o, h->body, h->body_len, &op);
    if (err != NG_OK)
        fail_msg("message %s: the parcel bob2's backend got does not open with the exported key: %s", m->id,
                 ng_strerror(err));
    assert_int_equal(o.body_len, m->len);
    assert_memory_equal(o.body, m->body, m->len);
    sodium_memzero(out, h->body_len + 1);
    free(out);
}

static void
test_end_to_end_key(void **state)
{
    msg opened = {.from = &alice, .to = &bob2, .pattern = "X", .content_type = "text/plain", .subject = "e2e-1"};
    msg sealed = {.from = &alice, .to = &bob2, .pattern = "K", .content_type = "text/plain", .subject = "e2e-2"};
    uint8_t priv[NG_KEY_BYTES], alice_pub[NG_KEY_BYTES];
    const hit *h[4];
    ng_keypair kp;
    json_t *d, *keys;
    const char *hex;
    char path[256];
    reply r;

    (void)state;
    r = admin(&gw_b, "POST", "/v1/admin/tenants/bob2/keys/export", NULL);
    EXPECT_STATUS(r, 200);
    hex = jstr(r.json, "private_key");
    assert_int_equal(ng_hex_decode(priv, sizeof priv, hex, strlen(hex)), NG_OK);
    assert_int_equal(ng_keypair_from_private(&kp, priv), NG_OK);
    keys = gcli_json(&gw_a, ARGS("key", "list", "alice", "--json"));
    hex = jstr(json_array_get(keys, json_array_size(keys) - 1), "public");
    assert_int_equal(ng_hex_decode(alice_pub, sizeof alice_pub, hex, strlen(hex)), NG_OK);

    /* Taken in on its header (gateway b cannot open it), then dead-lettered by the opened backend's deliverer. */
    text_body(&opened, "sealed to a key the gateway gave away");
    send_msg(&opened);
    d = WAIT_DEAD(&bob2, opened.id, DELIVERY_WAIT_MS);
    if (strstr(jstr(d, "reason"), "the private key is held by the tenant's backend") == NULL)
        fail_msg("dead letter of %s: reason \"%s\"", opened.id, jstr(d, "reason"));
    assert_int_equal(sink_count(&bob2.sink, opened.id), 0);

    /* The backend in sealed mode instead: the replayed parcel, and a new one, reach it unopened. */
    snprintf(path, sizeof path, "/v1/admin/tenants/bob2/backends/%s", bob2.backend);
    EXPECT_STATUS(admin(&gw_b, "DELETE", path, NULL), 200);
    r = admin(&gw_b, "POST", "/v1/admin/tenants/bob2/backends",
              dump(json_pack("{s:s, s:s}", "url", bob2.sink.url, "mode", "sealed")));
    EXPECT_STATUS(r, 201);
    snprintf(bob2.backend, sizeof bob2.backend, "%s", jstr(r.json, "id"));
    signer_whsec(&bob2.key, jstr(r.json, "whsec"), strlen(jstr(r.json, "whsec")));
    replay(&bob2, d, 200);
    WAIT_HITS(&bob2.sink, opened.id, 1, DELIVERY_WAIT_MS);
    assert_int_equal(sink_find(&bob2.sink, opened.id, h, 4), 1);
    expect_opens_with(h[0], &kp, NULL, &opened);
    settle(opened.id, 1, 1);

    text_body(&sealed, "K, sealed with alice's key to bob2's exported one");
    send_msg(&sealed);
    WAIT_HITS(&bob2.sink, sealed.id, 1, DELIVERY_WAIT_MS);
    sleep_ms(500);
    assert_int_equal(sink_find(&bob2.sink, sealed.id, h, 4), 1);
    expect_opens_with(h[0], &kp, alice_pub, &sealed);
    settle(sealed.id, 1, 1);
    WAIT_QUEUE(&bob2, 0, -1, 5000);
    sodium_memzero(priv, sizeof priv);
    ng_keypair_wipe(&kp);
}

/* ==== 7. gateway b killed while an attempt is in flight ==== */

static void
test_killed(void **state)
{
    msg m = {.from = &alice, .to = &bob, .content_type = "text/plain", .subject = "killed-1"};
    msg later = {.from = &alice, .to = &bob, .content_type = "text/plain", .subject = "while-down"};
    const hit *h[4];
    long t_claim, t_restart;
    pid_t redis;
    int st = 0, n;

    (void)state;
    RULE(&bob.sink, "killed-1", 204, HANG);
    text_body(&m, "in flight when the gateway died");
    send_msg(&m);
    WAIT_HITS(&bob.sink, m.id, 1, DELIVERY_WAIT_MS);
    assert_int_equal(sink_find(&bob.sink, m.id, h, 4), 1);
    t_claim = h[0]->t_ms;
    assert_int_equal(sink_hanging(&bob.sink), 1);
    assert_int_equal(kill(gw_b.pid, SIGKILL), 0);
    /* Past delivery.timeout_ms the attempt would have ended as a plain failure, and this test would test nothing. */
    if (now_ms() - t_claim >= DELIVERY_TIMEOUT_MS)
        fail_msg("gateway b was killed %ld ms into the attempt, after delivery.timeout_ms", now_ms() - t_claim);
    assert_int_equal(waitpid(gw_b.pid, &st, 0), gw_b.pid);
    gw_b.pid = 0;
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    sink_release(&bob.sink);

    /* Store and forward: alice's gateway takes a message while bob's is down. */
    text_body(&later, "sent while bob's gateway was down");
    send_msg(&later);

    /*
     * The killed gateway's redis-server outlives it, holding the data
     * directory's lock: the restart stops it (cleanly, so nothing written is
     * lost), says so, and runs a server of its own, with no operator.
     */
    redis = redis_of(&gw_b);
    t_restart = now_ms();
    start_gateway(&gw_b);
    if (redis > 0) {
        char pid_text[40];

        assert_false(alive(redis));
        assert_true(redis_of(&gw_b) != redis);
        snprintf(pid_text, sizeof pid_text, "\"pid\":\"%ld\"", (long)redis);
        if (strstr(text_of(slurp(gw_b.log)), "stopped the redis-server a killed gateway left running") == NULL ||
            strstr(text_of(slurp(gw_b.log)), pid_text) == NULL)
            fail_msg("the restart does not say it stopped redis-server %ld; see %s", (long)redis, gw_b.log);
    } else {
        print_message("the killed gateway's redis-server did not outlive it\n");
    }

    /* Claimed by a dead process: back once the lease ends, with the same webhook-id. */
    WAIT_HITS(&bob.sink, m.id, 2, LEASE_MS + DELIVERY_WAIT_MS);
    assert_int_equal(sink_find(&bob.sink, m.id, h, 4), 2);
    print_message("delivered again %ld ms after the attempt the kill cut (lease %d ms)\n", h[1]->t_ms - t_claim,
                  LEASE_MS);
    assert_int_equal(h[0]->status, HANG);
    assert_int_equal(h[1]->status, 204);
    /* Not before: a claim still leased may belong to a live worker that is only slow. */
    if (h[1]->t_ms - t_claim < LEASE_MS - 500)
        fail_msg("delivered again %ld ms after the cut attempt, before the lease of %d ms ended", h[1]->t_ms - t_claim,
                 LEASE_MS);
    EXPECT_WEBHOOK(h[0], &m);
    EXPECT_WEBHOOK(h[1], &m);
    /*
     * Polled from alice's outbox once bob's gateway is back; allowing for the
     * 30 s poll lease the killed process may have held, should it have died
     * in the middle of a poll.
     */
    WAIT_HITS(&bob.sink, later.id, 1, 30000 + DELIVERY_WAIT_MS);
    {
        const hit *first[1] = {NULL};

        sink_find(&bob.sink, later.id, first, 1);
        print_message("the message sent while gateway b was down arrived %ld ms after its restart\n",
                      first[0]->t_ms - t_restart);
    }
    WAIT_QUEUE(&bob, 0, -1, 5000);
    sleep_ms(2000);
    n = sink_count(&bob.sink, m.id);
    if (n != 2)
        fail_msg("message %s reached the backend %d times after it was acked", m.id, n - 2);
    EXPECT_ONCE(&later);
    settle(m.id, 2, 1);
    settle(later.id, 1, 1);
}

/* ==== 9. SIGTERM, and the whole run against the ledger ==== */

static void
test_stop(void **state)
{
    msg m = {.from = &alice, .to = &bob, .content_type = "text/plain", .subject = "at-sigterm"};
    long ms_b, ms_a;
    size_t i, t, unsettled = 0;

    (void)state;
    /* An attempt still in flight at SIGTERM: the drain waits for it, up to delivery.timeout_ms. */
    RULE(&bob.sink, "at-sigterm", 204, HANG);
    text_body(&m, "in flight at SIGTERM");
    send_msg(&m);
    WAIT_HITS(&bob.sink, m.id, 1, DELIVERY_WAIT_MS);
    ms_b = stop_gateway(&gw_b);
    sink_release(&bob.sink);
    ms_a = stop_gateway(&gw_a);
    print_message("SIGTERM to exit: gateway b %ld ms (an attempt in flight), gateway a %ld ms\n", ms_b, ms_a);
    if (ms_b > DELIVERY_TIMEOUT_MS + 1000 + 3000)
        fail_msg("gateway b took %ld ms to drain with delivery.timeout_ms %d", ms_b, DELIVERY_TIMEOUT_MS);
    assert_int_equal(redis_of(&gw_a), 0);
    assert_int_equal(redis_of(&gw_b), 0);
    settle(m.id, 1, 0);

    /* Nothing can arrive any more: every request any backend ever got, against the ledger. */
    for (t = 0; t < sizeof tenants / sizeof tenants[0]; t++) {
        sink *s = &tenants[t]->sink;
        int n = sink_total(s), k;

        assert_int_equal(s->dropped, 0);
        for (k = 0; k < n; k++) {
            const hit *h = sink_at(s, k);
            sent *e = ledger_find(h->wid);

            if (e == NULL)
                fail_msg("%s's backend got webhook-id \"%s\", which no test sent", s->name, h->wid);
            if (e->to != tenants[t])
                fail_msg("message %s for %s reached %s's backend", e->id, e->to->slug, s->name);
        }
    }
    for (i = 0; i < nsent; i++) {
        const hit *h[16];
        int n = sink_find(&ledger[i].to->sink, ledger[i].id, h, 16), acks = 0, k;

        /* A test that failed left its messages unsettled; its own failure says why. */
        if (ledger[i].hits < 0) {
            unsettled++;
            continue;
        }
        for (k = 0; k < n && k < 16; k++)
            acks += h[k]->status >= 200 && h[k]->status <= 299;
        if (n != ledger[i].hits || acks != ledger[i].acks)
            fail_msg("message %s for %s: %d attempts and %d acks by the end, %d and %d when its test ended",
                     ledger[i].id, ledger[i].to->slug, n, acks, ledger[i].hits, ledger[i].acks);
    }
    print_message("%zu messages checked against what the backends received (%zu left unsettled by failed tests)\n",
                  nsent - unsettled, unsettled);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_patterns, test_teardown),
        cmocka_unit_test_teardown(test_many, test_teardown),
        cmocka_unit_test_teardown(test_retry, test_teardown),
        cmocka_unit_test_teardown(test_dead_letter, test_teardown),
        cmocka_unit_test_teardown(test_gone, gone_teardown),
        cmocka_unit_test_teardown(test_expiry, test_teardown),
        /* Before the kill: a poller killed mid-poll holds its lease for 30 s, which would stall later sends. */
        cmocka_unit_test_teardown(test_isolation, test_teardown),
        cmocka_unit_test_teardown(test_end_to_end_key, test_teardown),
        cmocka_unit_test_teardown(test_killed, test_teardown),
        cmocka_unit_test_teardown(test_stop, test_teardown),
    };

    if (suite_init() != 0)
        return 1;
    return cmocka_run_group_tests_name("e2e", tests, group_setup, group_teardown);
}

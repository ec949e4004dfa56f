/*
 * The public HTTP API of a running gateway, as backends and peers meet it:
 * the real binary (NG_BIN) serving one configuration on a free loopback
 * port with its embedded redis-server, tenants alice, bob and carol made
 * with the CLI, and requests signed here with the library's Standard
 * Webhooks code (the same bytes a backend's library would send).
 *
 * One gateway serves the whole group, since starting one costs half a
 * second, so the tests run in order and later ones build on what earlier
 * ones stored. The suite keeps its own ledger: every message the gateway
 * accepted from alice for bob, in order, and every refusal by reason. The
 * alice -> bob outbox must always hold exactly the ledger's messages (so a
 * refused or replayed request that stored something anyway is caught), and
 * the metrics are checked against the ledger at the end, before the log is
 * searched for secrets and bodies that must never be written there.
 * NG_KEEP=1 keeps the temporary directory (configuration, data, gw.log).
 */
#include "gateway_harness.h"

#include "ng_hex.h"
#include "ng_key.h"
#include "ng_parcel.h"
#include "ng_submit.h"
#include "ng_webhook.h"

enum {
    TOLERANCE_S = 300,
    TTL_S = 600,
    MAX_TTL_S = 3600,
    LISTEN_MAX_BODY = 65536,
    MESSAGE_MAX_BODY = 16384,
    /* Short, so that a stopped Redis turns into a 503 quickly. */
    REDIS_TIMEOUT_MS = 500,
    ID_HEX = 2 * NG_PARCEL_MESSAGE_ID_BYTES,
    KID_HEX = 2 * NG_KEY_ID_BYTES,
    TOKEN_HEX = 64,
    MAX_SENT = 64,
    MAX_PARCELS = 256,
    MAX_BODIES = 64,
    CURSOR_BYTES = 64,
};

/* ---- the suite's state ---- */

static char dir[PATH_MAX / 2];
static gateway gw = {.name = "gw"};
/* The redis-server this suite stopped with SIGSTOP, to be resumed whatever happens. */
static pid_t stopped_redis;
/* v1a backends sign with their Ed25519 key instead of the secret. */
static signer alice_v1, alice_ed = {.v1a = 1}, carol_v1;
static char alice_token[TOKEN_HEX + 1], bob_token[TOKEN_HEX + 1], carol_token[TOKEN_HEX + 1];
static char alice_kid[KID_HEX + 1], bob_kid[KID_HEX + 1], carol_kid[KID_HEX + 1];

/* The ledger: what the gateway said it stored. */
typedef struct sent {
    char id[ID_HEX + 1];
    uint64_t expires;
} sent;

static sent to_bob[MAX_SENT]; /* alice's, in the order the gateway accepted them */
static size_t n_to_bob;
static long accepted;
static char bodies[MAX_BODIES][128];
static size_t n_bodies;

/* The refusals ng_messages_refused_total counts, as the suite saw them. */
static refusal refused[] = {
    {"missing_signature", 0}, {"stale_timestamp", 0},      {"bad_signature", 0},          {"bad_signature_headers", 0},
    {"replayed", 0},          {"unknown_tenant", 0},       {"unknown_peer", 0},           {"bad_request", 0},
    {"bad_ttl", 0},           {"pattern_not_accepted", 0}, {"batch_too_large", 0},        {"idempotency_mismatch", 0},
    {"store_unavailable", 0}, {"bad_idempotency_key", 0},  {"unsupported_media_type", 0}, {NULL, 0},
};

/* Bodies of messages the tests send; none of them may reach the log. */
static const char *
body_text(const char *what)
{
    assert_true(n_bodies < MAX_BODIES);
    snprintf(bodies[n_bodies], sizeof bodies[n_bodies], "%s %s, for bob's eyes only", what, tag);
    return bodies[n_bodies++];
}

/* ---- time ---- */

/*
 * Unix seconds from the clock the gateway reads. Not time(): that may be
 * the coarse clock, a few milliseconds behind, so that a timestamp one
 * second past the tolerance would be only just at it.
 */
static int64_t
now_s(void)
{
    return (int64_t)(wall_ms() / 1000);
}

/*
 * Waits until a second has just begun: a timestamp one second past the
 * tolerance must still be past it when the gateway reads its clock.
 */
static void
at_second_start(void)
{
    while (wall_ms() % 1000 > 100)
        sleep_ms(20);
}

/* ---- signed submissions ---- */

/* A request to POST /v1/tenants/{tenant}/messages; zero fields take the defaults named. */
typedef struct msg_req {
    const char *tenant; /* alice */
    const signer *by;   /* alice_v1 */
    const char *body;
    const char *content_type; /* application/json */
    const char *signed_body;  /* what the signature covers, if not the body */
    const char *id;           /* a fresh webhook-id */
    const char *signed_id;    /* the id the signature covers, if not the one sent */
    int64_t ts;               /* now + ts_shift */
    int64_t ts_shift;         /* seconds */
    const char *timestamp;    /* sent as the webhook-timestamp header as it is */
    const char *signature;    /* sent as the webhook-signature header as it is */
    int forge;                /* one byte of the signature changed */
    int bare;                 /* no webhook-* headers at all */
    const char *const *extra; /* more "Name: value" headers, NULL-terminated */
} msg_req;

#define POST_MSG(...) post_msg(&(msg_req){__VA_ARGS__})

/* The same signature with one bit of its first byte changed: still well-formed, no longer valid. */
static void
forge(char sig[NG_WEBHOOK_SIGNATURE_BYTES])
{
    uint8_t raw[crypto_sign_BYTES];
    char *b64 = strchr(sig, ',') + 1;
    size_t len;

    assert_int_equal(
        sodium_base642bin(raw, sizeof raw, b64, strlen(b64), NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL), 0);
    raw[0] ^= 0x01;
    sodium_bin2base64(b64, NG_WEBHOOK_SIGNATURE_BYTES - (size_t)(b64 - sig), raw, len, sodium_base64_VARIANT_ORIGINAL);
}

/* Enters a 202 into the ledger: each message stored once, and alice's to bob in order. */
static void
ledger_add(const char *slug, const reply *r)
{
    json_t *list = json_object_get(r->json, "messages"), *m;
    size_t i, n = json_is_array(list) ? json_array_size(list) : 1;

    if (header_of(r, "idempotent-replayed") != NULL)
        return;
    accepted += (long)n;
    for (i = 0; i < n; i++) {
        m = json_is_array(list) ? json_array_get(list, i) : r->json;
        if (strcmp(slug, "alice") != 0 || strcmp(jstr(m, "recipient"), "bob") != 0)
            continue;
        assert_true(n_to_bob < MAX_SENT);
        assert_true(is_lower_hex(jstr(m, "id"), ID_HEX));
        snprintf(to_bob[n_to_bob].id, sizeof to_bob[n_to_bob].id, "%s", jstr(m, "id"));
        to_bob[n_to_bob++].expires = (uint64_t)json_integer_value(json_object_get(m, "expires"));
    }
}

static reply
post_msg(const msg_req *q)
{
    const char *slug = q->tenant != NULL ? q->tenant : "alice";
    const signer *by = q->by != NULL ? q->by : &alice_v1;
    size_t len = strlen(q->body), n = 0, i;
    const char *signed_body = q->signed_body != NULL ? q->signed_body : q->body;
    size_t signed_len = q->signed_body != NULL ? strlen(q->signed_body) : len;
    int64_t ts = q->ts != 0 ? q->ts : now_s() + q->ts_shift;
    char id[40], sig[NG_WEBHOOK_SIGNATURE_BYTES], path[200], ct[300];
    const char *h[24];
    reply r;

    if (q->id != NULL)
        snprintf(id, sizeof id, "%s", q->id);
    else
        fresh_id(id);
    sign(sig, by, q->signed_id != NULL ? q->signed_id : id, ts, signed_body, signed_len);
    if (q->forge)
        forge(sig);
    snprintf(ct, sizeof ct, "Content-Type: %s", q->content_type != NULL ? q->content_type : "application/json");
    h[n++] = ct;
    if (!q->bare) {
        char tstext[32];

        snprintf(tstext, sizeof tstext, "%lld", (long long)ts);
        n = webhook_headers(h, n, id, q->timestamp != NULL ? q->timestamp : tstext,
                            q->signature != NULL ? q->signature : sig);
    }
    for (i = 0; q->extra != NULL && q->extra[i] != NULL; i++) {
        assert_true(n < sizeof h / sizeof h[0] - 1);
        h[n++] = q->extra[i];
    }
    h[n] = NULL;
    snprintf(path, sizeof path, "/v1/tenants/%s/messages", slug);
    r = gw_http(&gw, "POST", path, h, q->body, len);
    if (r.status == 202)
        ledger_add(slug, &r);
    else if (r.code[0] != '\0')
        refusal_add(refused, r.code);
    return r;
}

/* One message from alice to bob: body text, ttl. */
static const char *
note(const char *body)
{
    return dump(json_pack("{s:s, s:s, s:i}", "recipient", "bob", "body", body, "ttl", TTL_S));
}

/* ---- outboxes ---- */

typedef struct parcel {
    char cursor[CURSOR_BYTES];
    char id[ID_HEX + 1];
    blob *bytes;
    ng_parcel_header h;
} parcel;

static parcel got[MAX_PARCELS];

/* An outbox entry {"id", "parcel"}: the parcel must inspect as a parcel. */
static void
entry(const json_t *e, parcel *p)
{
    const char *b64 = jstr(e, "parcel");
    size_t cap = strlen(b64), len;
    uint8_t *raw = malloc(cap + 1);

    assert_non_null(raw);
    if (sodium_base642bin(raw, cap, b64, cap, NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
        free(raw);
        fail_msg("%s: a parcel that is not base64", last_req);
    }
    p->bytes = blob_of(raw, len);
    free(raw);
    assert_true(strlen(jstr(e, "id")) < CURSOR_BYTES);
    snprintf(p->cursor, sizeof p->cursor, "%s", jstr(e, "id"));
    if (ng_parcel_inspect(&p->h, p->bytes->data, p->bytes->len, 0) != NG_OK)
        fail_msg("%s: an entry that is not a parcel", last_req);
    ng_hex_encode(p->id, sizeof p->id, p->h.message_id, sizeof p->h.message_id);
}

static reply
outbox_get(const char *kid, const char *token, const char *query)
{
    char path[256], auth[128];
    const char *h[] = {auth, NULL};

    snprintf(path, sizeof path, "/v1/outbox/%s%s", kid, query != NULL ? query : "");
    if (token != NULL)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    return gw_http(&gw, "GET", path, token != NULL ? h : NULL, NULL, 0);
}

/* Everything token's tenant sealed for kid, oldest first, into got. */
static size_t
outbox_all(const char *kid, const char *token)
{
    reply r = outbox_get(kid, token, "?limit=1000");
    json_t *list;
    size_t i, n;

    EXPECT_REPLY(r, 200, NULL);
    list = json_object_get(r.json, "parcels");
    assert_true(json_is_array(list));
    n = json_array_size(list);
    assert_true(n < MAX_PARCELS);
    for (i = 0; i < n; i++)
        entry(json_array_get(list, i), &got[i]);
    return n;
}

#define EXPECT_LEDGER() expect_ledger_at(__LINE__)

/*
 * alice's outbox for bob holds exactly what the gateway said it stored, in
 * that order, less what has expired since.
 */
static void
expect_ledger_at(int line)
{
    size_t n = outbox_all(bob_kid, alice_token), i, k = 0;
    uint64_t now = wall_ms();

    for (i = 0; i < n_to_bob; i++) {
        if (to_bob[i].expires <= now)
            continue;
        if (k == n)
            fail_msg("line %d: message %s (%zu of the ledger) is not in alice's outbox for bob", line, to_bob[i].id, i);
        if (strcmp(got[k].id, to_bob[i].id) != 0)
            fail_msg("line %d: parcel %zu of alice's outbox is message %s, expected %s", line, k, got[k].id,
                     to_bob[i].id);
        if (got[k].h.expires_ms != to_bob[i].expires)
            fail_msg("line %d: parcel %zu expires at %llu, the 202 said %llu", line, k,
                     (unsigned long long)got[k].h.expires_ms, (unsigned long long)to_bob[i].expires);
        k++;
    }
    if (k != n)
        fail_msg("line %d: alice's outbox for bob holds %zu parcels; the gateway accepted %zu still live", line, n, k);
}

static const parcel *
find_parcel(const char *id)
{
    size_t n = outbox_all(bob_kid, alice_token), i;

    for (i = 0; i < n; i++)
        if (strcmp(got[i].id, id) == 0)
            return &got[i];
    fail_msg("message %s is not in alice's outbox for bob", id);
    return NULL;
}

/* ---- the CLI ---- */

#define CLI(...) GCLI(&gw, __VA_ARGS__)

/* The read token inside connection parameters: what a peer presents to read the tenant's outbox. */
static void
read_token_of(const char *params, char out[TOKEN_HEX + 1])
{
    size_t len = strlen(params + 6), got_len;
    uint8_t *raw = malloc(len + 1);
    json_t *doc;
    const char *t;

    assert_non_null(raw);
    assert_int_equal(
        sodium_base642bin(raw, len, params + 6, len, NULL, &got_len, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
        0);
    doc = kept(json_loadb((const char *)raw, got_len, 0, NULL));
    free(raw);
    assert_non_null(doc);
    t = json_string_value(json_object_get(doc, "read_token"));
    assert_true(is_lower_hex(t, TOKEN_HEX));
    memcpy(out, t, TOKEN_HEX + 1);
}

/* The webhook secret `backend add` prints once. */
static void
backend_add(signer *b, const char *slug, const char *url, const char *whpk)
{
    blob *out = whpk != NULL ? CLI("backend", "add", slug, "--url", url, "--public-key", whpk)
                             : CLI("backend", "add", slug, "--url", url);
    const char *p = strstr(text_of(out), "whsec_");

    assert_non_null(p);
    signer_whsec(b, p, strcspn(p, " \t\r\n"));
}

/* `noisegate open --tenant bob` on a parcel: bob's key from the vault; the body on stdout, the report on stderr. */
static result
open_as_bob(const parcel *p)
{
    char path[PATH_MAX + 16];
    result r;

    snprintf(path, sizeof path, "%s/parcel.ngp", dir);
    put_file(path, p->bytes->data, p->bytes->len);
    r = ng(NULL, ARGS("open", "--tenant", "bob", "--config", gw.cfg, "--json", path));
    EXPECT_EXIT(r, 0);
    return r;
}

/* ---- the gateway ---- */

static int
group_setup(void **state)
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    char whpk[80], listen[128], sections[512];

    (void)state;
    tag_init();
    if (make_temp_dir(dir, sizeof dir, "ngapi") != 0)
        return -1;
    gateway_init(&gw, dir, loopback_free_port());
    if (gw.port <= 0)
        return -1;
    /*
     * listen.timeout_s is short because SIGTERM waits for the pollers' idle
     * keep-alive connections until it runs out (see the report on this suite).
     */
    snprintf(listen, sizeof listen, ", \"max_body\": %d, \"timeout_s\": 3", LISTEN_MAX_BODY);
    snprintf(sections, sizeof sections,
             "\"redis\": {\"timeout_ms\": %d},\n"
             " \"messages\": {\"max_body\": %d, \"max_ttl_s\": %d, \"default_ttl_s\": %d},\n"
             " \"webhooks\": {\"tolerance_s\": %d},\n"
             " \"outbox\": {\"trim_interval_s\": 1},",
             REDIS_TIMEOUT_MS, MESSAGE_MAX_BODY, MAX_TTL_S, TTL_S, TOLERANCE_S);
    write_config(&gw, listen, sections);
    CLI("vault", "init");
    CLI("tenant", "create", "alice");
    CLI("tenant", "create", "bob");
    CLI("tenant", "create", "carol");
    /* Nothing is ever delivered to these: nobody sends to alice or carol, and bob has no backend. */
    backend_add(&alice_v1, "alice", "http://127.0.0.1:9/alice", NULL);
    crypto_sign_keypair(pk, alice_ed.sk);
    memcpy(whpk, "whpk_", 5);
    sodium_bin2base64(whpk + 5, sizeof whpk - 5, pk, sizeof pk, sodium_base64_VARIANT_ORIGINAL);
    backend_add(&alice_ed, "alice", "http://127.0.0.1:9/alice-ed", whpk);
    backend_add(&carol_v1, "carol", "http://127.0.0.1:9/carol", NULL);
    {
        const char *bob = export_params(&gw, "bob", NULL), *alice = export_params(&gw, "alice", NULL);

        read_token_of(bob, bob_token);
        read_token_of(alice, alice_token);
        read_token_of(export_params(&gw, "carol", NULL), carol_token);
        CLI("peer", "import", "alice", bob, "--name", "bob");
        CLI("peer", "import", "carol", bob, "--name", "bob");
        /*
         * bob must know alice to accept her parcels when they are pushed, but
         * its poller must not fetch them first (a push would then be a
         * replay): it is told an outbox where nothing listens.
         */
        CLI("peer", "import", "bob", export_params(&gw, "alice", "http://127.0.0.1:1/v1/outbox"), "--name", "alice");
    }
    key_id_of(&gw, "alice", alice_kid);
    key_id_of(&gw, "bob", bob_kid);
    key_id_of(&gw, "carol", carol_kid);
    start_gateway(&gw);
    return test_teardown(state);
}

static int
group_teardown(void **state)
{
    (void)state;
    if (stopped_redis > 0)
        kill(stopped_redis, SIGCONT);
    kill_gateway(&gw);
    blobs_free();
    keep_free();
    return remove_temp_dir(dir);
}

/* A redis-server test_store_down stopped runs again, whatever happened. */
static int
api_teardown(void **state)
{
    if (stopped_redis > 0) {
        kill(stopped_redis, SIGCONT);
        stopped_redis = 0;
    }
    return test_teardown(state);
}

/* ==== 1. submitting ==== */

static char id_text[ID_HEX + 1], id_ce[ID_HEX + 1], id_bin[ID_HEX + 1];
static const char *first_body, *ce_body;
static uint8_t bin_body[64];

static void
test_submit(void **state)
{
    uint64_t t0 = wall_ms(), t1, expires;
    char other[NG_WEBHOOK_SIGNATURE_BYTES], good[NG_WEBHOOK_SIGNATURE_BYTES], both[2 * NG_WEBHOOK_SIGNATURE_BYTES];
    char b64[128], id[40];
    const char *body;
    json_t *list;
    reply r;
    size_t i, j;
    int64_t ts;

    (void)state;
    /* One message, v1 (HMAC under the whsec_ secret). */
    first_body = body_text("the first note");
    r = POST_MSG(.body = dump(json_pack("{s:s, s:s, s:s, s:i}", "recipient", "bob", "content_type",
                                        "text/plain; charset=utf-8", "body", first_body, "ttl", TTL_S)));
    t1 = wall_ms();
    EXPECT_REPLY(r, 202, NULL);
    assert_true(is_lower_hex(jstr(r.json, "id"), ID_HEX));
    assert_string_equal(jstr(r.json, "recipient"), "bob");
    assert_null(header_of(&r, "idempotent-replayed"));
    expires = (uint64_t)json_integer_value(json_object_get(r.json, "expires"));
    if (expires + 1000 < t0 + TTL_S * 1000u || expires > t1 + TTL_S * 1000u + 1000)
        fail_msg("expires %llu is not the request time + ttl (%llu..%llu)", (unsigned long long)expires,
                 (unsigned long long)(t0 + TTL_S * 1000u), (unsigned long long)(t1 + TTL_S * 1000u));
    memcpy(id_text, jstr(r.json, "id"), ID_HEX + 1);

    /* v1a: the Ed25519 backend signs; no shared secret involved. */
    EXPECT_REPLY(POST_MSG(.by = &alice_ed, .body = note(body_text("signed with Ed25519"))), 202, NULL);

    /* Several signatures in one header: one that verifies is enough (a rotation in progress). */
    body = note(body_text("signed twice"));
    fresh_id(id);
    ts = now_s();
    sign(other, &carol_v1, id, ts, body, strlen(body));
    sign(good, &alice_ed, id, ts, body, strlen(body));
    snprintf(both, sizeof both, "%s %s", other, good);
    EXPECT_REPLY(POST_MSG(.body = body, .id = id, .ts = ts, .signature = both), 202, NULL);

    /* A batch: one id per message, all different, in the order given. */
    r = POST_MSG(.body = dump(json_pack("{s:[{s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:i}]}", "messages", "recipient",
                                        "bob", "body", body_text("batch 1"), "recipient", "bob", "body",
                                        body_text("batch 2"), "type", "com.example.note", "recipient", "bob", "body",
                                        body_text("batch 3"), "ttl", 300)));
    EXPECT_REPLY(r, 202, NULL);
    list = json_object_get(r.json, "messages");
    assert_int_equal(json_array_size(list), 3);
    for (i = 0; i < 3; i++) {
        assert_true(is_lower_hex(jstr(json_array_get(list, i), "id"), ID_HEX));
        assert_string_equal(jstr(json_array_get(list, i), "recipient"), "bob");
        for (j = 0; j < i; j++)
            assert_string_not_equal(jstr(json_array_get(list, i), "id"), jstr(json_array_get(list, j), "id"));
    }
    /* Each message keeps its own ttl. */
    assert_true(json_integer_value(json_object_get(json_array_get(list, 2), "expires")) <
                json_integer_value(json_object_get(json_array_get(list, 0), "expires")));

    /* CloudEvents binary mode: attributes in headers, the body as it is. */
    ce_body = body_text("a CloudEvent");
    r = POST_MSG(.body = ce_body, .content_type = "text/plain",
                 .extra = ARGS("ce-specversion: 1.0", "ce-recipient: bob", "ce-type: com.example.ce",
                               "ce-id: ignored-by-the-gateway", "ce-ttl: 600"));
    EXPECT_REPLY(r, 202, NULL);
    assert_string_equal(jstr(r.json, "recipient"), "bob");
    memcpy(id_ce, jstr(r.json, "id"), ID_HEX + 1);
    assert_string_not_equal(id_ce, "ignored-by-the-gateway");

    /* Bytes that are not text, NULs included, through body_base64. */
    for (i = 0; i < sizeof bin_body; i++)
        bin_body[i] = (uint8_t)(i * 37);
    bin_body[0] = bin_body[10] = bin_body[sizeof bin_body - 1] = 0;
    sodium_bin2base64(b64, sizeof b64, bin_body, sizeof bin_body, sodium_base64_VARIANT_ORIGINAL);
    r = POST_MSG(.body = dump(json_pack("{s:s, s:s}", "recipient", "bob", "body_base64", b64)));
    EXPECT_REPLY(r, 202, NULL);
    memcpy(id_bin, jstr(r.json, "id"), ID_HEX + 1);
    assert_int_equal(n_to_bob, 8);
}

/* ==== 2. reading the outbox as bob's gateway would, and opening what is there ==== */

static void
test_outbox(void **state)
{
    char cursor[CURSOR_BYTES] = "", query[CURSOR_BYTES + 32];
    const parcel *p;
    json_t *list;
    result o;
    json_t *report, *meta;
    reply r;
    size_t i;

    (void)state;
    EXPECT_LEDGER();
    for (i = 0; i < n_to_bob; i++) {
        char kid[KID_HEX + 1];

        ng_hex_encode(kid, sizeof kid, got[i].h.recipient_key_id, NG_KEY_ID_BYTES);
        assert_string_equal(kid, bob_kid);
        /* bob accepts X and K, X first: what is sealed when the backend names no pattern. */
        assert_int_equal(got[i].h.pattern, NG_PATTERN_X);
    }

    /* One at a time: every parcel in order, then an empty page that hands the cursor back. */
    for (i = 0; i <= n_to_bob; i++) {
        snprintf(query, sizeof query, "?limit=1%s%s", cursor[0] ? "&after=" : "", cursor);
        r = outbox_get(bob_kid, alice_token, query);
        EXPECT_REPLY(r, 200, NULL);
        list = json_object_get(r.json, "parcels");
        if (i == n_to_bob) {
            assert_int_equal(json_array_size(list), 0);
            assert_string_equal(jstr(r.json, "next"), cursor);
            break;
        }
        assert_int_equal(json_array_size(list), 1);
        entry(json_array_get(list, 0), &got[0]);
        assert_string_equal(got[0].id, to_bob[i].id);
        assert_string_equal(jstr(r.json, "next"), got[0].cursor);
        assert_string_not_equal(got[0].cursor, cursor);
        snprintf(cursor, sizeof cursor, "%s", got[0].cursor);
    }

    /* bob opens them with his key from the vault: the bodies as sent, byte for byte. */
    p = find_parcel(id_text);
    o = open_as_bob(p);
    assert_int_equal(o.out->len, strlen(first_body));
    assert_memory_equal(o.out->data, first_body, strlen(first_body));
    report = kept(json_loadb(text_of(o.err), o.err->len, 0, NULL));
    assert_non_null(report);
    meta = json_object_get(report, "meta");
    assert_string_equal(json_string_value(json_object_get(meta, "content_type")), "text/plain; charset=utf-8");

    o = open_as_bob(find_parcel(id_ce));
    assert_int_equal(o.out->len, strlen(ce_body));
    assert_memory_equal(o.out->data, ce_body, strlen(ce_body));
    report = kept(json_loadb(text_of(o.err), o.err->len, 0, NULL));
    assert_non_null(report);
    meta = json_object_get(report, "meta");
    assert_string_equal(json_string_value(json_object_get(meta, "content_type")), "text/plain");
    assert_string_equal(json_string_value(json_object_get(meta, "type")), "com.example.ce");

    o = open_as_bob(find_parcel(id_bin));
    assert_int_equal(o.out->len, sizeof bin_body);
    assert_memory_equal(o.out->data, bin_body, sizeof bin_body);
    report = kept(json_loadb(text_of(o.err), o.err->len, 0, NULL));
    assert_non_null(report);
    assert_string_equal(json_string_value(json_object_get(json_object_get(report, "meta"), "content_type")),
                        "application/octet-stream");
}

/* ==== 3. signatures ==== */

static void
test_bad_signatures(void **state)
{
    const char *body = note(body_text("refused, whoever sends it"));
    char id[40];
    int64_t ts;

    (void)state;
    EXPECT_REPLY(POST_MSG(.body = body, .bare = 1), 401, "missing_signature");

    /* One second past the tolerance either way; one inside it still passes. */
    at_second_start();
    EXPECT_REPLY(POST_MSG(.body = body, .ts_shift = TOLERANCE_S + 1), 401, "stale_timestamp");
    EXPECT_REPLY(POST_MSG(.body = body, .ts_shift = -(TOLERANCE_S + 1)), 401, "stale_timestamp");
    EXPECT_REPLY(POST_MSG(.body = note(body_text("late but in time")), .ts_shift = -(TOLERANCE_S - 10)), 202, NULL);
    EXPECT_REPLY(POST_MSG(.body = note(body_text("early but in time")), .ts_shift = TOLERANCE_S - 10), 202, NULL);

    EXPECT_REPLY(POST_MSG(.body = body, .forge = 1), 401, "bad_signature");
    EXPECT_REPLY(POST_MSG(.by = &alice_ed, .body = body, .forge = 1), 401, "bad_signature");
    /* The body, or the webhook-id, changed after signing. */
    EXPECT_REPLY(POST_MSG(.body = note(body_text("changed in transit")), .signed_body = body), 401, "bad_signature");
    EXPECT_REPLY(POST_MSG(.body = body, .signed_id = "msg_another"), 401, "bad_signature");
    /* Another tenant's backend is nobody to alice. */
    EXPECT_REPLY(POST_MSG(.by = &carol_v1, .body = body), 401, "bad_signature");
    /* The right key under the wrong scheme. */
    {
        char sig[NG_WEBHOOK_SIGNATURE_BYTES + 8], *comma;

        fresh_id(id);
        ts = now_s();
        sign(sig, &alice_ed, id, ts, body, strlen(body));
        comma = strchr(sig, ',');
        memmove(sig + 2, comma, strlen(comma) + 1); /* "v1a,..." becomes "v1,...": 64 bytes where 32 belong */
        EXPECT_REPLY(POST_MSG(.body = body, .id = id, .ts = ts, .signature = sig), 401, "bad_signature_headers");
    }

    /* The same request twice: the second is a replay, whatever it carries. */
    fresh_id(id);
    ts = now_s();
    body = note(body_text("sent once, replayed once"));
    EXPECT_REPLY(POST_MSG(.body = body, .id = id, .ts = ts), 202, NULL);
    EXPECT_REPLY(POST_MSG(.body = body, .id = id, .ts = ts), 401, "replayed");
    /* Nor by another of the tenant's backends, with a valid signature of its own. */
    EXPECT_REPLY(POST_MSG(.by = &alice_ed, .body = body, .id = id, .ts = ts), 401, "replayed");

    /* Headers that do not parse. */
    EXPECT_REPLY(POST_MSG(.body = body, .signature = "v1,not*base64"), 401, "bad_signature_headers");
    EXPECT_REPLY(POST_MSG(.body = body, .signature = "no-comma-at-all"), 401, "bad_signature_headers");
    EXPECT_REPLY(POST_MSG(.body = body, .timestamp = "yesterday"), 401, "bad_signature_headers");
    EXPECT_REPLY(POST_MSG(.body = body, .id = "spaces are not allowed", .signed_id = "msg_spaces"), 401,
                 "bad_signature_headers");
    /* A signature of an unknown version alone verifies nothing. */
    EXPECT_REPLY(POST_MSG(.body = body, .signature = "v2,AAAA"), 401, "bad_signature");

    /* None of the refused ones was stored. */
    EXPECT_LEDGER();
}

/* ==== 4. input ==== */

static void
test_bad_input(void **state)
{
    json_t *batch;
    char *big;
    reply r;
    size_t i;

    (void)state;
    EXPECT_REPLY(POST_MSG(.tenant = "nosuch", .body = note("x")), 404, "unknown_tenant");
    /* Known tenant, signed by another tenant's backend: the signature is checked against alice's alone. */
    EXPECT_REPLY(POST_MSG(.tenant = "carol", .body = note("x")), 401, "bad_signature");
    EXPECT_REPLY(POST_MSG(.body = dump(json_pack("{s:s, s:s}", "recipient", "dave", "body", "x"))), 404,
                 "unknown_peer");
    EXPECT_REPLY(POST_MSG(.body = "{\"recipient\": \"bob\", \"body\": "), 400, "bad_request");
    EXPECT_REPLY(POST_MSG(.body = "[]"), 400, "bad_request");
    EXPECT_REPLY(POST_MSG(.body = dump(json_pack("{s:s, s:s, s:s}", "recipient", "bob", "body", "x", "bdoy", "y"))),
                 400, "bad_request");
    EXPECT_REPLY(POST_MSG(.body = "{\"recipient\": \"bob\", \"body\": \"x\", \"body\": \"y\"}"), 400, "bad_request");
    EXPECT_REPLY(
        POST_MSG(.body = dump(json_pack("{s:s, s:s, s:s}", "recipient", "bob", "body", "x", "body_base64", "eA=="))),
        400, "bad_request");
    EXPECT_REPLY(POST_MSG(.body = note("x"), .content_type = "text/plain"), 415, "unsupported_media_type");
    EXPECT_REPLY(POST_MSG(.body = note("x"), .content_type = "application/jsonx"), 415, "unsupported_media_type");
    EXPECT_REPLY(
        POST_MSG(.body = dump(json_pack("{s:s, s:s, s:i}", "recipient", "bob", "body", "x", "ttl", MAX_TTL_S + 1))),
        400, "bad_ttl");
    EXPECT_REPLY(POST_MSG(.body = dump(json_pack("{s:s, s:s, s:i}", "recipient", "bob", "body", "x", "ttl", 0))), 400,
                 "bad_request");
    EXPECT_REPLY(POST_MSG(.body = dump(json_pack("{s:s, s:s, s:s}", "recipient", "bob", "body", "x", "pattern", "N"))),
                 400, "pattern_not_accepted");
    /* bob has no psk, so the psk forms cannot be sealed to him. */
    EXPECT_REPLY(
        POST_MSG(.body = dump(json_pack("{s:s, s:s, s:s}", "recipient", "bob", "body", "x", "pattern", "Xpsk1"))), 400,
        "pattern_not_accepted");
    EXPECT_REPLY(POST_MSG(.body = dump(json_pack("{s:s, s:s, s:s}", "recipient", "bob", "body", "x", "pattern", "Q"))),
                 400, "bad_request");
    /* A batch is all or nothing: one unknown recipient refuses the lot. */
    EXPECT_REPLY(POST_MSG(.body = dump(json_pack("{s:[{s:s, s:s}, {s:s, s:s}]}", "messages", "recipient", "bob", "body",
                                                 "x", "recipient", "dave", "body", "y"))),
                 404, "unknown_peer");
    EXPECT_REPLY(POST_MSG(.body = "{\"messages\": []}"), 400, "bad_request");
    batch = json_array();
    for (i = 0; i < NG_SUBMIT_MAX_BATCH + 1; i++)
        json_array_append_new(batch, json_pack("{s:s, s:s}", "recipient", "bob", "body", ""));
    EXPECT_REPLY(POST_MSG(.body = dump(json_pack("{s:o}", "messages", batch))), 413, "batch_too_large");

    /* A body over messages.max_body but within listen.max_body: refused by the API. */
    big = calloc(1, MESSAGE_MAX_BODY + 2);
    assert_non_null(big);
    memset(big, 'b', MESSAGE_MAX_BODY + 1);
    r = POST_MSG(.body = note(text_of(blob_str(big))));
    free(big);
    EXPECT_REPLY(r, 413, "too_large");
    /* Over listen.max_body: refused before it is read, and the gateway goes on. */
    big = calloc(1, 4 * LISTEN_MAX_BODY);
    assert_non_null(big);
    memset(big, 'a', 4 * LISTEN_MAX_BODY - 1);
    r = POST_MSG(.body = note(text_of(blob_str(big))));
    free(big);
    EXPECT_REPLY(r, 413, "too_large");
    EXPECT_REPLY(GW_GET(&gw, "/healthz"), 200, NULL);
    EXPECT_REPLY(POST_MSG(.body = note(body_text("after the big one"))), 202, NULL);
    EXPECT_LEDGER();
}

/* ==== 5. Idempotency-Key ==== */

static void
test_idempotency(void **state)
{
    const char *body = note(body_text("exactly once")), *key;
    char line[80], rnd[40];
    reply first, again;
    size_t before;

    (void)state;
    fresh_id(rnd);
    snprintf(line, sizeof line, "Idempotency-Key: order-%s", rnd);
    key = text_of(blob_str(line));
    first = POST_MSG(.body = body, .extra = ARGS(key));
    EXPECT_REPLY(first, 202, NULL);
    assert_null(header_of(&first, "idempotent-replayed"));
    before = n_to_bob;
    EXPECT_LEDGER();

    /* A retry, signed afresh as a backend would: the first answer, byte for byte, and nothing new stored. */
    again = POST_MSG(.body = body, .extra = ARGS(key));
    EXPECT_REPLY(again, 202, NULL);
    assert_non_null(header_of(&again, "idempotent-replayed"));
    assert_string_equal(header_of(&again, "idempotent-replayed"), "true");
    assert_int_equal(again.body->len, first.body->len);
    assert_memory_equal(again.body->data, first.body->data, first.body->len);
    assert_int_equal(n_to_bob, before);
    EXPECT_LEDGER();

    EXPECT_REPLY(POST_MSG(.body = note(body_text("not what was asked first")), .extra = ARGS(key)), 422,
                 "idempotency_mismatch");
    EXPECT_REPLY(POST_MSG(.body = body, .extra = ARGS("Idempotency-Key: two words")), 400, "bad_idempotency_key");
    {
        char longkey[300];

        memcpy(longkey, "Idempotency-Key: ", 17);
        memset(longkey + 17, 'k', 256);
        longkey[17 + 256] = '\0';
        EXPECT_REPLY(POST_MSG(.body = body, .extra = ARGS(longkey)), 400, "bad_idempotency_key");
    }
    EXPECT_LEDGER();
}

/* ==== 6. one tenant's token reads that tenant's parcels only ==== */

static char id_carol[ID_HEX + 1];

static void
test_isolation(void **state)
{
    reply r;
    size_t n, i;

    (void)state;
    r = POST_MSG(.tenant = "carol", .by = &carol_v1, .body = note(body_text("from carol")));
    EXPECT_REPLY(r, 202, NULL);
    memcpy(id_carol, jstr(r.json, "id"), ID_HEX + 1);

    /* Same recipient key, different readers: each sees what its own tenant sealed. */
    EXPECT_LEDGER();
    n = outbox_all(bob_kid, alice_token);
    for (i = 0; i < n; i++)
        assert_string_not_equal(got[i].id, id_carol);
    n = outbox_all(bob_kid, carol_token);
    assert_int_equal(n, 1);
    assert_string_equal(got[0].id, id_carol);
    /* Nobody sealed anything to carol or alice, and bob sent nothing at all. */
    assert_int_equal(outbox_all(carol_kid, alice_token), 0);
    assert_int_equal(outbox_all(alice_kid, carol_token), 0);
    assert_int_equal(outbox_all(bob_kid, bob_token), 0);
    assert_int_equal(outbox_all(alice_kid, bob_token), 0);
}

/* ==== 7. the peer API ==== */

#define PARCEL_TYPE "Content-Type: application/vnd.noisegate.parcel"

static void
test_peer_api(void **state)
{
    char auth[128], hex[ID_HEX + 1], path[128];
    ng_keypair stranger;
    const parcel *p;
    blob *b;
    reply r;

    (void)state;
    EXPECT_REPLY(outbox_get("zz", alice_token, NULL), 400, "bad_key_id");
    EXPECT_REPLY(outbox_get("g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", alice_token, NULL), 400,
                 "bad_key_id");
    EXPECT_REPLY(outbox_get(bob_kid, NULL, NULL), 401, "unauthorized");
    EXPECT_REPLY(outbox_get(bob_kid, "not-hex", NULL), 401, "unauthorized");
    EXPECT_REPLY(outbox_get(bob_kid, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", NULL), 401,
                 "unauthorized");
    /* The token is right, the scheme is not. */
    snprintf(auth, sizeof auth, "Authorization: Basic %s", alice_token);
    snprintf(path, sizeof path, "/v1/outbox/%s", bob_kid);
    EXPECT_REPLY(gw_http(&gw, "GET", path, ARGS(auth), NULL, 0), 401, "unauthorized");
    EXPECT_REPLY(outbox_get(bob_kid, alice_token, "?limit=0"), 400, "bad_limit");
    EXPECT_REPLY(outbox_get(bob_kid, alice_token, "?limit=1001"), 400, "bad_limit");
    EXPECT_REPLY(outbox_get(bob_kid, alice_token, "?limit=-1"), 400, "bad_limit");
    EXPECT_REPLY(outbox_get(bob_kid, alice_token, "?limit=10abc"), 400, "bad_limit");
    EXPECT_REPLY(outbox_get(bob_kid, alice_token, "?after=garbage"), 400, "bad_cursor");
    EXPECT_REPLY(outbox_get(bob_kid, alice_token, "?limit=1000"), 200, NULL);

    /* Pushes. */
    p = find_parcel(to_bob[0].id);
    b = blob_of(p->bytes->data, p->bytes->len);
    EXPECT_REPLY(gw_http(&gw, "POST", "/v1/parcels", ARGS("Content-Type: application/octet-stream"), b->data, b->len),
                 415, "unsupported_media_type");
    EXPECT_REPLY(gw_http(&gw, "POST", "/v1/parcels", ARGS(PARCEL_TYPE), b->data, 50), 400, "malformed");
    EXPECT_REPLY(gw_http(&gw, "POST", "/v1/parcels", ARGS(PARCEL_TYPE), "", 0), 400, "malformed");

    /* Addressed to a key nobody here holds. */
    {
        static const char meta[] = "{\"content_type\":\"text/plain\"}";
        uint8_t out[1024];
        ng_seal_params sp;
        size_t len;

        ng_keypair_generate(&stranger);
        memset(&sp, 0, sizeof sp);
        sp.pattern = NG_PATTERN_N;
        sp.recipient_pub = stranger.pub;
        sp.meta = (const uint8_t *)meta;
        sp.meta_len = sizeof meta - 1;
        sp.body = (const uint8_t *)"x";
        sp.body_len = 1;
        sp.ttl_ms = 60000;
        assert_int_equal(ng_parcel_seal(out, sizeof out, &len, &sp), NG_OK);
        ng_keypair_wipe(&stranger);
        EXPECT_REPLY(gw_http(&gw, "POST", "/v1/parcels", ARGS(PARCEL_TYPE), out, len), 404, "unknown_recipient");
    }

    /* carol is not one of bob's peers: her parcel is refused once opened, for its sender. */
    {
        size_t n = outbox_all(bob_kid, carol_token);

        assert_int_equal(n, 1);
        EXPECT_REPLY(gw_http(&gw, "POST", "/v1/parcels", ARGS(PARCEL_TYPE), got[0].bytes->data, got[0].bytes->len), 403,
                     "sender");
    }

    /* One of alice's, pushed as her gateway would: accepted once, then a replay. */
    p = find_parcel(to_bob[0].id);
    b = blob_of(p->bytes->data, p->bytes->len);
    r = gw_http(&gw, "POST", "/v1/parcels", ARGS(PARCEL_TYPE), b->data, b->len);
    EXPECT_REPLY(r, 202, NULL);
    assert_string_equal(jstr(r.json, "id"), to_bob[0].id);
    assert_int_equal(json_integer_value(json_object_get(r.json, "expires")), (json_int_t)to_bob[0].expires);
    EXPECT_REPLY(gw_http(&gw, "POST", "/v1/parcels", ARGS(PARCEL_TYPE "; charset=binary"), b->data, b->len), 409,
                 "replayed");

    /* One flipped ciphertext byte fails authentication, and does not use up the message id. */
    p = find_parcel(to_bob[1].id);
    b = blob_of(p->bytes->data, p->bytes->len);
    b->data[b->len - 1] ^= 0x80;
    EXPECT_REPLY(gw_http(&gw, "POST", "/v1/parcels", ARGS(PARCEL_TYPE), b->data, b->len), 403, "auth");
    b->data[b->len - 1] ^= 0x80;
    r = gw_http(&gw, "POST", "/v1/parcels", ARGS(PARCEL_TYPE), b->data, b->len);
    EXPECT_REPLY(r, 202, NULL);
    ng_hex_encode(hex, sizeof hex, p->h.message_id, sizeof p->h.message_id);
    assert_string_equal(jstr(r.json, "id"), hex);
}

/* ==== 8. expiry ==== */

static void
test_expiry(void **state)
{
    reply r;
    blob *b;
    uint64_t expires;

    (void)state;
    r = POST_MSG(.body = dump(
                     json_pack("{s:s, s:s, s:i}", "recipient", "bob", "body", body_text("short-lived"), "ttl", 1)));
    EXPECT_REPLY(r, 202, NULL);
    expires = (uint64_t)json_integer_value(json_object_get(r.json, "expires"));
    b = find_parcel(jstr(r.json, "id"))->bytes;
    while (wall_ms() < expires + 200)
        sleep_ms(50);
    /* Served no more, and refused if pushed anyway. */
    EXPECT_LEDGER();
    EXPECT_REPLY(gw_http(&gw, "POST", "/v1/parcels", ARGS(PARCEL_TYPE), b->data, b->len), 400, "expired");
}

/*
 * Expired parcels are removed from the outbox (trimmed oldest first, up to
 * the first still alive), so the test gives the short-lived one an outbox of
 * its own: bob's new key, which only carol learns (alice's outbox for bob,
 * which the ledger follows, stays as it was).
 */
static void
test_trimmed(void **state)
{
    uint64_t t0;
    reply r, m;

    (void)state;
    CLI("key", "rotate", "bob");
    CLI("peer", "import", "carol", export_params(&gw, "bob", NULL), "--name", "bob");
    r = POST_MSG(.tenant = "carol", .by = &carol_v1,
                 .body = dump(
                     json_pack("{s:s, s:s, s:i}", "recipient", "bob", "body", body_text("trimmed soon"), "ttl", 1)));
    EXPECT_REPLY(r, 202, NULL);
    t0 = wall_ms();
    do {
        sleep_ms(100);
        m = GW_GET(&gw, "/metrics");
    } while (sample(text_of(m.body), "ng_parcels_trimmed_total") < 1 && wall_ms() - t0 < 10000);
    if (sample(text_of(m.body), "ng_parcels_trimmed_total") != 1)
        fail_msg("expected the one expired parcel trimmed within 10 s (trim_interval_s 1); metrics:\n%s",
                 text_of(m.body));
}

/* ==== 9. the store stops answering ==== */

static void
test_store_down(void **state)
{
    const char *body = note(body_text("sent while redis slept"));
    char line[80], rnd[40];
    const char *key;
    long t0;
    reply r;
    pid_t pid = redis_of(&gw);
    size_t before = n_to_bob;

    (void)state;
    assert_true(pid > 0);
    EXPECT_REPLY(GW_GET(&gw, "/readyz"), 200, NULL);
    fresh_id(rnd);
    snprintf(line, sizeof line, "Idempotency-Key: asleep-%s", rnd);
    key = text_of(blob_str(line));

    assert_int_equal(kill(pid, SIGSTOP), 0);
    stopped_redis = pid;
    t0 = now_ms();
    r = POST_MSG(.body = body, .extra = ARGS(key));
    EXPECT_REPLY(r, 503, "store_unavailable");
    if (now_ms() - t0 > 10 * REDIS_TIMEOUT_MS)
        fail_msg("a 503 took %ld ms with redis.timeout_ms %d", now_ms() - t0, REDIS_TIMEOUT_MS);
    EXPECT_REPLY(GW_GET(&gw, "/readyz"), 503, "store_unavailable");
    EXPECT_REPLY(outbox_get(bob_kid, alice_token, NULL), 503, "store_unavailable");
    EXPECT_REPLY(GW_GET(&gw, "/healthz"), 200, NULL);

    assert_int_equal(kill(pid, SIGCONT), 0);
    stopped_redis = 0;
    t0 = now_ms();
    while ((r = GW_GET(&gw, "/readyz")).status != 200 && now_ms() - t0 < 10000)
        sleep_ms(50);
    EXPECT_REPLY(r, 200, NULL);

    /*
     * A timeout cannot tell whether the request reached Redis: the retry
     * with the same Idempotency-Key stores the message once either way.
     */
    r = POST_MSG(.body = body, .extra = ARGS(key));
    EXPECT_REPLY(r, 202, NULL);
    if (header_of(&r, "idempotent-replayed") != NULL) {
        /*
         * The attempt answered 503 ran once Redis resumed, and stored the
         * message after all: it joins the ledger here. (The 503 says "nothing
         * was stored": see the report on this suite.)
         */
        assert_true(n_to_bob < MAX_SENT);
        snprintf(to_bob[n_to_bob].id, sizeof to_bob[n_to_bob].id, "%s", jstr(r.json, "id"));
        to_bob[n_to_bob++].expires = (uint64_t)json_integer_value(json_object_get(r.json, "expires"));
    }
    assert_int_equal(n_to_bob, before + 1);
    assert_string_equal(to_bob[before].id, jstr(r.json, "id"));
    EXPECT_LEDGER();
    EXPECT_REPLY(POST_MSG(.body = note(body_text("redis is back"))), 202, NULL);
    EXPECT_LEDGER();
}

/* ==== 10. metrics, the log, and SIGTERM ==== */

static void
test_metrics_and_log(void **state)
{
    static const struct {
        const char *code;
        double n;
    } pushed[] = {{"malformed", 2}, {"unknown_recipient", 1}, {"sender", 1}, {"replayed", 1}, {"auth", 1},
                  {"expired", 1}};
    const char *m, *log;
    char series[128], line[8192];
    reply r;
    size_t i;
    FILE *f;

    (void)state;
    r = GW_GET(&gw, "/metrics");
    EXPECT_REPLY(r, 200, NULL);
    m = text_of(r.body);
    if (sample(m, "ng_messages_accepted_total") != (double)accepted)
        fail_msg("ng_messages_accepted_total is %g; the gateway answered 202 for %ld messages",
                 sample(m, "ng_messages_accepted_total"), accepted);
    expect_refusals(m, refused);
    assert_true(sample(m, "ng_messages_refused_total{reason=\"bad_signature\"}") >= 5);
    /* The pushes of the peer API tests; no poller here ever gets a parcel. */
    for (i = 0; i < sizeof pushed / sizeof pushed[0]; i++) {
        snprintf(series, sizeof series, "ng_parcels_refused_total{reason=\"%s\"}", pushed[i].code);
        if (sample(m, series) != pushed[i].n)
            fail_msg("%s is %g, expected %g", series, sample(m, series), pushed[i].n);
    }
    assert_true(sample(m, "ng_parcels_opened_total") == 2);

    stop_gateway(&gw);

    /* Every line JSON; no secret, token or body anywhere. */
    f = fopen(gw.log, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f) != NULL) {
        json_t *j = json_loads(line, 0, NULL);

        if (j == NULL)
            fail_msg("a log line is not JSON: %s", line);
        json_decref(j);
    }
    fclose(f);
    log = text_of(slurp(gw.log));
    assert_null(strstr(log, "whsec_"));
    assert_null(strstr(log, alice_v1.whsec + 6));
    assert_null(strstr(log, alice_ed.whsec + 6));
    assert_null(strstr(log, carol_v1.whsec + 6));
    assert_null(strstr(log, alice_token));
    assert_null(strstr(log, bob_token));
    assert_null(strstr(log, carol_token));
    assert_null(strstr(log, tag));
    /*
     * Peers' outboxes here are on 127.0.0.1 and this config allows no private
     * address: the pollers must refuse to connect, as webhooks would.
     */
    assert_non_null(strstr(log, "peer outbox address not allowed"));
    for (i = 0; i < n_bodies; i++)
        if (strstr(log, bodies[i]) != NULL)
            fail_msg("the log holds a message body: %s", bodies[i]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_submit, api_teardown),
        cmocka_unit_test_teardown(test_outbox, api_teardown),
        cmocka_unit_test_teardown(test_bad_signatures, api_teardown),
        cmocka_unit_test_teardown(test_bad_input, api_teardown),
        cmocka_unit_test_teardown(test_idempotency, api_teardown),
        cmocka_unit_test_teardown(test_isolation, api_teardown),
        cmocka_unit_test_teardown(test_peer_api, api_teardown),
        cmocka_unit_test_teardown(test_expiry, api_teardown),
        cmocka_unit_test_teardown(test_trimmed, api_teardown),
        cmocka_unit_test_teardown(test_store_down, api_teardown),
        cmocka_unit_test_teardown(test_metrics_and_log, api_teardown),
    };

    if (suite_init() != 0)
        return 1;
    return cmocka_run_group_tests_name("api", tests, group_setup, group_teardown);
}

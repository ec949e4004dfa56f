/*
 * Parcels a backend sealed itself: POST /v1/tenants/{tenant}/parcels on two
 * real gateways (NG_BIN). Gateway "a" has tenants alice and amy
 * (--max-message), gateway "b" has bob (X, K), bobn (--allow-anonymous:
 * also N) and bobpsk (--psk --allow-anonymous: Xpsk1, Kpsk0, Npsk0); alice
 * and the b tenants exchanged connection parameters, amy knows bob but bob
 * does not know amy. Each tenant's backend is a sink (gateway_harness.h).
 *
 * alice's backend seals with libnoisegate-envelope, as a backend linking it
 * would: to the recipient's public key and psk from the recipient's
 * connection parameters, and for K and X with alice's own static key, which
 * the suite reads from gateway a's vault with the operator's master key
 * (`key export` would hand it over too, but then gateway a could no longer
 * seal as alice, which the other tests need). Without it a backend can only
 * send N parcels (to tenants that allow them) that the recipient opens: its X
 * parcels sealed with a key of its own pass gateway a, which cannot see an
 * X sender, and are refused by gateway b (test_foreign_x_sender).
 *
 * The gateway checks the header only: what it refuses it must not store
 * (alice's and amy's outboxes, read over the peer API, and
 * ng_parcels_stored_total stay as they were) and it must stay up. Every
 * parcel it accepted goes into a ledger with how often its recipient's
 * backend must get it; after both gateways stopped, every sink is compared
 * with the ledger, so a parcel that was stored although refused, stored
 * twice or delivered to the wrong tenant shows whichever test sent it.
 * NG_KEEP=1 keeps the temporary directory (configurations, data, logs).
 */
#include "gateway_harness.h"

#include "ng_cli_vault.h"
#include "ng_hex.h"
#include "ng_key.h"
#include "ng_parcel.h"
#include "ng_tenant.h"

enum {
    DELIVERY_WAIT_MS = 20000,
    TTL_S = 600,
    MAX_TTL_S = 3600,
    SKEW_S = 60,
    LISTEN_MAX_BODY = 65536,
    MESSAGE_MAX_BODY = 16384,
    AMY_MAX_MESSAGE = 4096,
    TOLERANCE_S = 300,
    ID_HEX = 2 * NG_PARCEL_MESSAGE_ID_BYTES,
    KID_HEX = 2 * NG_KEY_ID_BYTES,
    TOKEN_HEX = 64,
    MAX_SENT = 64,
    MAX_BODY_TEXT = 24000,
};

static char dir[PATH_MAX / 2];
static gateway gw_a = {.name = "a"}, gw_b = {.name = "b"};
static tenant alice = {.slug = "alice", .g = &gw_a}, amy = {.slug = "amy", .g = &gw_a},
              bob = {.slug = "bob", .g = &gw_b}, bobn = {.slug = "bobn", .g = &gw_b},
              bobpsk = {.slug = "bobpsk", .g = &gw_b};
static tenant *const tenants[] = {&alice, &amy, &bob, &bobn, &bobpsk};

/* What a backend of alice (or amy) knows: its tenant's static key, the recipients' public keys and psk. */
static ng_keypair alice_kp;
static uint8_t bob_pub[NG_KEY_BYTES], bobn_pub[NG_KEY_BYTES], bobpsk_pub[NG_KEY_BYTES], bobpsk_psk[NG_PSK_BYTES];
/* Read tokens, to look into the outboxes as a peer would. */
static char alice_token[TOKEN_HEX + 1], amy_token[TOKEN_HEX + 1];

/* ---- the ledger ---- */

typedef struct sent {
    char id[ID_HEX + 1];
    tenant *to;
    int want; /* deliveries its backend must get: 1, or 0 for one the recipient must refuse */
} sent;

static sent ledger[MAX_SENT];
static size_t nsent;
static long stored; /* 202s that stored a parcel (not the replayed answers) */

static void
ledger_add(tenant *to, const char *id, int want)
{
    size_t i;

    for (i = 0; i < nsent; i++)
        if (strcmp(ledger[i].id, id) == 0)
            fail_msg("message id %s was accepted and stored twice", id);
    assert_true(nsent < MAX_SENT);
    snprintf(ledger[nsent].id, sizeof ledger[nsent].id, "%s", id);
    ledger[nsent].to = to;
    ledger[nsent++].want = want;
    stored++;
}

/* The refusals ng_messages_refused_total must count, as the suite saw them. */
static refusal refused[] = {
    {"missing_signature", 0},
    {"bad_signature", 0},
    {"stale_timestamp", 0},
    {"replayed", 0},
    {"unknown_tenant", 0},
    {"unknown_peer", 0},
    {"pattern_not_accepted", 0},
    {"wrong_sender", 0},
    {"expired", 0},
    {"not_yet_valid", 0},
    {"bad_ttl", 0},
    {"too_large", 0},
    {"malformed_parcel", 0},
    {"unsupported_media_type", 0},
    {NULL, 0},
};

/* ---- setup ---- */

static void
hex_field(const json_t *doc, const char *key, uint8_t *out, size_t len)
{
    const char *s = jstr(doc, key);

    assert_true(is_lower_hex(s, 2 * len));
    assert_int_equal(ng_hex_decode(out, len, s, 2 * len), NG_OK);
}

/* A tenant's newest public key, its psk (if psk is not NULL) and its read token (if token is not NULL). */
static void
from_params(const tenant *t, uint8_t pub[NG_KEY_BYTES], uint8_t *psk, char *token)
{
    json_t *doc = params_doc(export_params(t->g, t->slug, NULL)), *keys = json_object_get(doc, "keys");

    assert_true(json_array_size(keys) > 0);
    hex_field(json_array_get(keys, json_array_size(keys) - 1), "public", pub, NG_KEY_BYTES);
    if (psk != NULL)
        hex_field(doc, "psk", psk, NG_PSK_BYTES);
    if (token != NULL)
        memcpy(token, jstr(doc, "read_token"), TOKEN_HEX + 1);
}

/* The tenant's newest static key pair from its gateway's vault, with the operator's master key. */
static void
vault_keypair(const tenant *t, ng_keypair *kp)
{
    ng_cli_ctx c;
    ng_vault *v = NULL;
    int rc = ng_cli_ctx_open(&c, "test", t->g->cfg, 1);
    ng_err err = NG_ERR_INVALID_ARG;

    if (rc == 0)
        rc = ng_cli_ctx_vault(&c, &v);
    if (rc == 0)
        err = ng_tenant_keypair(v, t->slug, 0, kp);
    ng_vault_close(v);
    ng_cli_ctx_close(&c);
    assert_int_equal(rc, 0);
    assert_int_equal(err, NG_OK);
}

static int
group_setup(void **state)
{
    uint8_t pub[NG_KEY_BYTES];

    (void)state;
    if (two_gateways_begin(
            dir, sizeof dir, "ngsealed", &gw_a, &gw_b, tenants, sizeof tenants / sizeof tenants[0],
            textf(", \"max_body\": %d, \"timeout_s\": 3", LISTEN_MAX_BODY),
            "\"delivery\": {\"allow_private\": [\"127.0.0.1\"], \"timeout_ms\": 2000},\n"
            " \"poll\": {\"interval_ms\": 50, \"max_interval_ms\": 200},\n"
            " \"messages\": {\"max_body\": %d, \"default_ttl_s\": %d, \"max_ttl_s\": %d, \"clock_skew_s\": %d},\n"
            " \"webhooks\": {\"tolerance_s\": %d},",
            MESSAGE_MAX_BODY, TTL_S, MAX_TTL_S, SKEW_S, TOLERANCE_S) != 0)
        return -1;
    GCLI(&gw_a, "tenant", "create", "alice");
    {
        char max[16];

        snprintf(max, sizeof max, "%d", AMY_MAX_MESSAGE);
        GCLI(&gw_a, "tenant", "create", "amy", "--max-message", max);
    }
    GCLI(&gw_b, "tenant", "create", "bob");
    GCLI(&gw_b, "tenant", "create", "bobn", "--allow-anonymous");
    GCLI(&gw_b, "tenant", "create", "bobpsk", "--psk", "--allow-anonymous");
    connect_tenants(&alice, NULL, (tenant *const[]){&alice, &bob, &bobn, &bobpsk}, 4);
    add_backend(&amy);
    GCLI(&gw_a, "peer", "import", "amy", export_params(&gw_b, "bob", NULL), "--name", "bob");
    vault_keypair(&alice, &alice_kp);
    from_params(&alice, pub, NULL, alice_token);
    assert_memory_equal(pub, alice_kp.pub, NG_KEY_BYTES);
    from_params(&amy, pub, NULL, amy_token);
    from_params(&bob, bob_pub, NULL, NULL);
    from_params(&bobn, bobn_pub, NULL, NULL);
    from_params(&bobpsk, bobpsk_pub, bobpsk_psk, NULL);
    start_gateway(&gw_a);
    start_gateway(&gw_b);
    return test_teardown(state);
}

static int
group_teardown(void **state)
{
    (void)state;
    ng_keypair_wipe(&alice_kp);
    return suite_teardown(dir, (gateway *const[]){&gw_a, &gw_b, NULL},
                          (tenant *const[]){&alice, &amy, &bob, &bobn, &bobpsk, NULL});
}

/* ---- sealing, as a backend does ---- */

/* What to seal; zero fields take the defaults named. */
typedef struct seal_req {
    tenant *to;                /* bob */
    const uint8_t *to_pub;     /* to's key from its parameters */
    const char *pattern;       /* "X" */
    const ng_keypair *from;    /* alice's key, for K and X */
    const uint8_t *psk;        /* bobpsk's for the psk forms */
    const char *what;          /* the body: "what" and the run's tag */
    size_t body_len;           /* a body of this many bytes instead */
    int64_t created_shift_ms;  /* created = now + this */
    uint64_t ttl_ms;           /* TTL_S */
    const uint8_t *message_id; /* random */
} seal_req;

typedef struct sealed {
    blob *bytes;
    ng_parcel_header h;
    char id[ID_HEX + 1];
    msg m; /* what the recipient's backend must get */
} sealed;

static const uint8_t *
pub_of(const tenant *t)
{
    return t == &bobn ? bobn_pub : t == &bobpsk ? bobpsk_pub : bob_pub;
}

static sealed
seal_at(const seal_req *q, int line)
{
    tenant *to = q->to != NULL ? q->to : &bob;
    const char *pname = q->pattern != NULL ? q->pattern : "X";
    char subject[64], *meta;
    ng_seal_params sp;
    sealed s;
    size_t cap, len;
    ng_pattern p;
    uint64_t now = wall_ms();

    memset(&s, 0, sizeof s);
    if (ng_pattern_parse(pname, &p) != NG_OK)
        fail_msg("line %d: no pattern %s", line, pname);
    if (q->body_len > 0) {
        blob *b = blob_new();

        while (b->len < q->body_len)
            blob_append(b, tag, q->body_len - b->len < 16 ? q->body_len - b->len : 16);
        s.m.body = b->data;
        s.m.len = b->len;
    } else {
        char text[256];

        snprintf(text, sizeof text, "%s, sealed by the backend %s \xe2\x82\xac", q->what != NULL ? q->what : "a note",
                 tag);
        s.m.body = (const uint8_t *)text_of(blob_str(text));
        s.m.len = strlen(text);
    }
    snprintf(subject, sizeof subject, "sealed-%s-%zu", pname, nsent);
    meta = json_dumps(kept(json_pack("{s:s, s:s, s:s}", "content_type", "text/plain; charset=utf-8", "type",
                                     "com.example.sealed", "subject", subject)),
                      JSON_COMPACT);
    assert_non_null(meta);
    memset(&sp, 0, sizeof sp);
    sp.pattern = p;
    sp.recipient_pub = q->to_pub != NULL ? q->to_pub : pub_of(to);
    sp.sender = ng_pattern_base(p) == NG_PATTERN_N ? NULL : q->from != NULL ? q->from : &alice_kp;
    sp.psk = ng_pattern_has_psk(p) ? (q->psk != NULL ? q->psk : bobpsk_psk) : NULL;
    sp.meta = (const uint8_t *)meta;
    sp.meta_len = strlen(meta);
    sp.body = s.m.body;
    sp.body_len = s.m.len;
    sp.created_ms = (uint64_t)((int64_t)now + q->created_shift_ms);
    sp.ttl_ms = q->ttl_ms != 0 ? q->ttl_ms : TTL_S * 1000u;
    sp.message_id = q->message_id;
    cap = ng_parcel_sealed_size(&sp);
    assert_true(cap > 0);
    {
        uint8_t *buf = malloc(cap);

        assert_non_null(buf);
        if (ng_parcel_seal(buf, cap, &len, &sp) != NG_OK) {
            free(buf);
            free(meta);
            fail_msg("line %d: ng_parcel_seal failed", line);
        }
        s.bytes = blob_of(buf, len);
        free(buf);
    }
    free(meta);
    assert_int_equal(ng_parcel_inspect(&s.h, s.bytes->data, s.bytes->len, 0), NG_OK);
    ng_hex_encode(s.id, sizeof s.id, s.h.message_id, sizeof s.h.message_id);
    s.m.from = &alice;
    s.m.to = to;
    s.m.pattern = ng_pattern_name(p);
    s.m.content_type = "text/plain; charset=utf-8";
    s.m.type = "com.example.sealed";
    s.m.subject = text_of(blob_str(subject));
    memcpy(s.m.id, s.id, sizeof s.m.id);
    s.m.expires = (long long)s.h.expires_ms;
    s.m.sent_wall = s.h.created_ms; /* ce-time is when it was sealed */
    return s;
}

#define SEAL(...) seal_at(&(seal_req){__VA_ARGS__}, __LINE__)

/* ---- posting ---- */

/* A request to POST /v1/tenants/{tenant}/parcels; zero fields take the defaults named. */
typedef struct post_req {
    const char *tenant; /* alice */
    const signer *by;   /* alice's backend */
    const void *body;   /* with len */
    size_t len;
    const char *content_type; /* NG_PARCEL_CONTENT_TYPE; "" for none at all */
    int bare;                 /* no webhook-* headers */
    int forge;                /* the signature of other bytes */
    int64_t ts_shift;         /* seconds added to the timestamp */
    int uncounted;            /* refused by the HTTP server before any route: not in ng_messages_refused_total */
    const char *id;           /* the webhook-id; fresh if NULL */
} post_req;

static reply
post_parcel(const post_req *q)
{
    const char *slug = q->tenant != NULL ? q->tenant : "alice";
    const signer *by = q->by != NULL ? q->by : &alice.key;
    const char *ct = q->content_type != NULL ? q->content_type : NG_PARCEL_CONTENT_TYPE;
    char id[40], sig[NG_WEBHOOK_SIGNATURE_BYTES], ts[32], path[160], ctline[300];
    const char *h[8];
    int64_t now = (int64_t)(wall_ms() / 1000) + q->ts_shift;
    size_t n = 0;
    reply r;

    if (q->id != NULL)
        snprintf(id, sizeof id, "%s", q->id);
    else
        fresh_id(id);
    if (q->forge)
        sign(sig, by, id, now, "not these bytes", 15);
    else
        sign(sig, by, id, now, q->body, q->len);
    snprintf(ts, sizeof ts, "%lld", (long long)now);
    /* "Content-Type:" with no value makes curl send none. */
    snprintf(ctline, sizeof ctline, "Content-Type:%s%s", ct[0] != '\0' ? " " : "", ct);
    h[n++] = ctline;
    if (!q->bare)
        n = webhook_headers(h, n, id, ts, sig);
    h[n] = NULL;
    snprintf(path, sizeof path, "/v1/tenants/%s/parcels", slug);
    r = gw_http(&gw_a, "POST", path, h, q->body, q->len);
    if (r.status >= 400 && r.code[0] != '\0' && !q->uncounted)
        refusal_add(refused, r.code);
    return r;
}

#define POST(...) post_parcel(&(post_req){__VA_ARGS__})

/* The first answer for s: 202 with its id, its expires and the peer's name. */
static void
expect_accepted_at(reply r, const sealed *s, const char *recipient, int line)
{
    if (r.status != 202)
        fail_msg("line %d: %s: got %ld \"%s\", expected 202; body: %.300s", line, last_req, r.status, r.code,
                 text_of(r.body));
    if (strcmp(jstr(r.json, "id"), s->id) != 0)
        fail_msg("line %d: the 202 names message %s, the parcel carries %s", line, jstr(r.json, "id"), s->id);
    if ((uint64_t)json_integer_value(json_object_get(r.json, "expires")) != s->h.expires_ms)
        fail_msg("line %d: the 202 says expires %lld, the parcel %llu", line,
                 (long long)json_integer_value(json_object_get(r.json, "expires")),
                 (unsigned long long)s->h.expires_ms);
    if (strcmp(jstr(r.json, "recipient"), recipient) != 0)
        fail_msg("line %d: the 202 names recipient %s, expected %s", line, jstr(r.json, "recipient"), recipient);
    if (json_object_size(r.json) != 3)
        fail_msg("line %d: the 202 has other fields: %s", line, text_of(r.body));
    if (header_of(&r, "idempotent-replayed") != NULL)
        fail_msg("line %d: a first answer says idempotent-replayed", line);
}

#define EXPECT_ACCEPTED(r, s, recipient) expect_accepted_at((r), (s), (recipient), __LINE__)

/* ---- what gateway a holds ---- */

/* How often message id (NULL: any) is in token's tenant's outbox for key pub. */
static long
outbox_count(const char *token, const uint8_t pub[NG_KEY_BYTES], const char *id)
{
    uint8_t kid[NG_KEY_ID_BYTES];
    char kidhex[KID_HEX + 1], path[256], auth[128];
    const char *h[] = {auth, NULL};
    json_t *list;
    long n = 0;
    size_t i;
    reply r;

    ng_key_id(kid, pub);
    ng_hex_encode(kidhex, sizeof kidhex, kid, sizeof kid);
    snprintf(path, sizeof path, "/v1/outbox/%s?limit=1000", kidhex);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    r = gw_http(&gw_a, "GET", path, h, NULL, 0);
    EXPECT_REPLY(r, 200, NULL);
    list = json_object_get(r.json, "parcels");
    assert_true(json_is_array(list));
    for (i = 0; i < json_array_size(list); i++) {
        const char *b64 = jstr(json_array_get(list, i), "parcel");
        size_t cap = strlen(b64), len;
        uint8_t *raw = malloc(cap + 1);
        ng_parcel_header hd;
        char hex[ID_HEX + 1];
        int ok;

        assert_non_null(raw);
        ok = sodium_base642bin(raw, cap, b64, cap, NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL) == 0 &&
             ng_parcel_inspect(&hd, raw, len, 0) == NG_OK;
        free(raw);
        if (!ok)
            fail_msg("%s: an outbox entry that is not a parcel", last_req);
        ng_hex_encode(hex, sizeof hex, hd.message_id, sizeof hd.message_id);
        n += id == NULL || strcmp(hex, id) == 0;
    }
    return n;
}

/* Everything the refused requests must leave as it was. */
typedef struct snapshot {
    long alice_bob, alice_bobn, alice_bobpsk, amy_bob;
    double stored;
} snapshot;

static snapshot
snap(void)
{
    snapshot s;

    s.alice_bob = outbox_count(alice_token, bob_pub, NULL);
    s.alice_bobn = outbox_count(alice_token, bobn_pub, NULL);
    s.alice_bobpsk = outbox_count(alice_token, bobpsk_pub, NULL);
    s.amy_bob = outbox_count(amy_token, bob_pub, NULL);
    s.stored = metric(&gw_a, "ng_parcels_stored_total");
    return s;
}

/* Gateway a still runs and answers, and stored nothing since before. */
static void
expect_unchanged_at(const snapshot *before, int line)
{
    snapshot now;

    if (!alive(gw_a.pid))
        fail_msg("line %d: gateway a is gone; see %s", line, gw_a.log);
    if (GW_GET(&gw_a, "/healthz").status != 200)
        fail_msg("line %d: gateway a does not answer /healthz", line);
    now = snap();
    if (now.alice_bob != before->alice_bob || now.alice_bobn != before->alice_bobn ||
        now.alice_bobpsk != before->alice_bobpsk || now.amy_bob != before->amy_bob)
        fail_msg("line %d: the outboxes changed: alice->bob %ld -> %ld, alice->bobn %ld -> %ld, alice->bobpsk %ld -> "
                 "%ld, amy->bob %ld -> %ld",
                 line, before->alice_bob, now.alice_bob, before->alice_bobn, now.alice_bobn, before->alice_bobpsk,
                 now.alice_bobpsk, before->amy_bob, now.amy_bob);
    if (now.stored != before->stored)
        fail_msg("line %d: ng_parcels_stored_total went from %g to %g", line, before->stored, now.stored);
}

#define EXPECT_UNCHANGED(before) expect_unchanged_at((before), __LINE__)

/* A refusal with this status and code that changed nothing. */
#define EXPECT_REFUSED_POST(r, status, code, before)                                                                   \
    do {                                                                                                               \
        EXPECT_REPLY((r), (status), (code));                                                                           \
        EXPECT_UNCHANGED(before);                                                                                      \
    } while (0)

/* ==== 1. every pattern a peer accepts, sealed by alice's backend, delivered once ==== */

static void
test_patterns(void **state)
{
    static const struct {
        tenant *to;
        const char *pattern;
    } cases[] = {
        {&bob, "X"},        {&bob, "K"},        {&bobn, "N"},       {&bobn, "X"},
        {&bobpsk, "Xpsk1"}, {&bobpsk, "Kpsk0"}, {&bobpsk, "Npsk0"},
    };
    sealed s[sizeof cases / sizeof cases[0]];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snapshot before = snap();
        double accepted = metric(&gw_a, "ng_messages_accepted_total");
        long in_outbox;
        reply r;

        s[i] = SEAL(.to = cases[i].to, .pattern = cases[i].pattern, .what = cases[i].pattern);
        r = POST(.body = s[i].bytes->data, .len = s[i].bytes->len);
        EXPECT_ACCEPTED(r, &s[i], cases[i].to->slug);
        ledger_add(cases[i].to, s[i].id, 1);
        /* Stored once, unopened: the very bytes the backend posted are what the peer reads. */
        in_outbox = outbox_count(alice_token, pub_of(cases[i].to), s[i].id);
        if (in_outbox != 1)
            fail_msg("%s parcel %s is %ld times in alice's outbox for %s", cases[i].pattern, s[i].id, in_outbox,
                     cases[i].to->slug);
        assert_true(metric(&gw_a, "ng_parcels_stored_total") == before.stored + 1);
        assert_true(metric(&gw_a, "ng_messages_accepted_total") == accepted + 1);
    }
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        WAIT_HITS(&cases[i].to->sink, s[i].id, 1, DELIVERY_WAIT_MS);
        EXPECT_ONCE(&s[i].m);
    }
}

/* The outbox holds the posted bytes themselves, not a copy made by the gateway. */
static void
test_stored_unopened(void **state)
{
    sealed s = SEAL(.pattern = "K", .what = "stored as posted");
    uint8_t kid[NG_KEY_ID_BYTES];
    char kidhex[KID_HEX + 1], path[256], auth[128];
    const char *h[] = {auth, NULL};
    json_t *list;
    size_t i, found = 0;
    reply r;

    (void)state;
    EXPECT_ACCEPTED(POST(.body = s.bytes->data, .len = s.bytes->len), &s, "bob");
    ledger_add(&bob, s.id, 1);
    ng_key_id(kid, bob_pub);
    ng_hex_encode(kidhex, sizeof kidhex, kid, sizeof kid);
    snprintf(path, sizeof path, "/v1/outbox/%s?limit=1000", kidhex);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", alice_token);
    r = gw_http(&gw_a, "GET", path, h, NULL, 0);
    EXPECT_REPLY(r, 200, NULL);
    list = json_object_get(r.json, "parcels");
    for (i = 0; i < json_array_size(list); i++) {
        const char *b64 = jstr(json_array_get(list, i), "parcel");
        size_t cap = strlen(b64), len;
        uint8_t *raw = malloc(cap + 1);

        assert_non_null(raw);
        assert_int_equal(sodium_base642bin(raw, cap, b64, cap, NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL), 0);
        found += len == s.bytes->len && memcmp(raw, s.bytes->data, len) == 0;
        free(raw);
    }
    assert_int_equal(found, 1);
    WAIT_HITS(&bob.sink, s.id, 1, DELIVERY_WAIT_MS);
    EXPECT_ONCE(&s.m);
}

/* ==== 2. what the header allows the gateway to refuse ==== */

static void
test_refusals(void **state)
{
    snapshot before = snap();
    ng_keypair stranger, stranger_to;
    sealed s;

    (void)state;
    ng_keypair_generate(&stranger);
    ng_keypair_generate(&stranger_to);

    /* Sealed to a key none of alice's peers has, or to alice's own. */
    s = SEAL(.to_pub = stranger_to.pub);
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = s.bytes->len), 404, "unknown_peer", &before);
    s = SEAL(.to_pub = alice_kp.pub, .pattern = "N");
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = s.bytes->len), 404, "unknown_peer", &before);
    /* bobn is a peer of alice's, not of amy's. */
    s = SEAL(.to = &bobn, .pattern = "X");
    EXPECT_REFUSED_POST(POST(.tenant = "amy", .by = &amy.key, .body = s.bytes->data, .len = s.bytes->len), 404,
                        "unknown_peer", &before);

    /* Patterns the peer does not accept. */
    s = SEAL(.to = &bob, .pattern = "N");
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = s.bytes->len), 400, "pattern_not_accepted", &before);
    s = SEAL(.to = &bob, .pattern = "Xpsk1", .psk = bobpsk_psk);
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = s.bytes->len), 400, "pattern_not_accepted", &before);
    s = SEAL(.to = &bobpsk, .pattern = "X");
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = s.bytes->len), 400, "pattern_not_accepted", &before);
    s = SEAL(.to = &bobpsk, .pattern = "K");
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = s.bytes->len), 400, "pattern_not_accepted", &before);

    /* K names its sender in clear: only alice's own keys may send as alice. */
    s = SEAL(.pattern = "K", .from = &stranger);
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = s.bytes->len), 400, "wrong_sender", &before);
    s = SEAL(.to = &bobpsk, .pattern = "Kpsk0", .from = &stranger);
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = s.bytes->len), 400, "wrong_sender", &before);
    /* alice's K parcel posted by amy's backend: amy's sender must be amy. */
    s = SEAL(.pattern = "K");
    EXPECT_REFUSED_POST(POST(.tenant = "amy", .by = &amy.key, .body = s.bytes->data, .len = s.bytes->len), 400,
                        "wrong_sender", &before);

    /* Times: expired, from too far in the future, living too long. */
    s = SEAL(.created_shift_ms = -120000, .ttl_ms = 60000);
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = s.bytes->len), 400, "expired", &before);
    s = SEAL(.created_shift_ms = -(int64_t)TTL_S * 1000, .ttl_ms = TTL_S * 1000u - 1000);
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = s.bytes->len), 400, "expired", &before);
    s = SEAL(.created_shift_ms = (SKEW_S + 30) * 1000);
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = s.bytes->len), 400, "not_yet_valid", &before);
    s = SEAL(.ttl_ms = (MAX_TTL_S + 1) * 1000u);
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = s.bytes->len), 400, "bad_ttl", &before);

    /* Sizes: amy's own limit, the gateway's message limit, the request limit. */
    s = SEAL(.body_len = AMY_MAX_MESSAGE + 1);
    EXPECT_REFUSED_POST(POST(.tenant = "amy", .by = &amy.key, .body = s.bytes->data, .len = s.bytes->len), 413,
                        "too_large", &before);
    s = SEAL(.body_len = MESSAGE_MAX_BODY + 1);
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = s.bytes->len), 413, "too_large", &before);
    s = SEAL(.body_len = LISTEN_MAX_BODY);
    assert_true(s.bytes->len > LISTEN_MAX_BODY);
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = s.bytes->len, .uncounted = 1), 413, "too_large", &before);

    /* Not posted as a parcel. */
    s = SEAL(.what = "posted as something else");
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = s.bytes->len, .content_type = "application/octet-stream"),
                        415, "unsupported_media_type", &before);
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = s.bytes->len, .content_type = "application/json"), 415,
                        "unsupported_media_type", &before);
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = s.bytes->len, .content_type = ""), 415,
                        "unsupported_media_type", &before);
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = s.bytes->len, .content_type = NG_PARCEL_CONTENT_TYPE "x"),
                        415, "unsupported_media_type", &before);
    ng_keypair_wipe(&stranger);
    ng_keypair_wipe(&stranger_to);
}

/* Just inside each limit is accepted: the refusals above are not off by one the other way. */
static void
test_limits_inside(void **state)
{
    sealed s[4];
    reply r;
    size_t i;

    (void)state;
    s[0] = SEAL(.created_shift_ms = (SKEW_S - 15) * 1000, .what = "from a clock ahead");
    s[1] = SEAL(.ttl_ms = MAX_TTL_S * 1000u, .what = "living as long as allowed");
    s[2] = SEAL(.created_shift_ms = -(int64_t)(TTL_S / 2) * 1000, .what = "sealed a while ago");
    s[3] = SEAL(.body_len = MESSAGE_MAX_BODY - 200, .what = "large");
    for (i = 0; i < 4; i++) {
        r = POST(.body = s[i].bytes->data, .len = s[i].bytes->len);
        EXPECT_ACCEPTED(r, &s[i], "bob");
        ledger_add(&bob, s[i].id, 1);
    }
    /* amy's limit: at most AMY_MAX_MESSAGE of plaintext passes; bob does not know amy, so nothing arrives. */
    {
        snapshot before = snap();
        sealed a = SEAL(.body_len = AMY_MAX_MESSAGE - 200);

        a.m.from = &amy;
        EXPECT_ACCEPTED(POST(.tenant = "amy", .by = &amy.key, .body = a.bytes->data, .len = a.bytes->len), &a, "bob");
        ledger_add(&bob, a.id, 0);
        assert_int_equal(outbox_count(amy_token, bob_pub, a.id), 1);
        assert_int_equal(outbox_count(amy_token, bob_pub, NULL), before.amy_bob + 1);
        assert_int_equal(outbox_count(alice_token, bob_pub, NULL), before.alice_bob);
    }
    for (i = 0; i < 4; i++) {
        WAIT_HITS(&bob.sink, s[i].id, 1, DELIVERY_WAIT_MS);
        EXPECT_ONCE(&s[i].m);
    }
}

/* ==== 3. the message id is the idempotency key ==== */

static void
test_idempotent(void **state)
{
    sealed s = SEAL(.what = "posted twice"), other, to_other, patched;
    snapshot before;
    reply first, again;
    char wid[40], first_id[ID_HEX + 1];

    (void)state;
    first = POST(.body = s.bytes->data, .len = s.bytes->len);
    EXPECT_ACCEPTED(first, &s, "bob");
    ledger_add(&bob, s.id, 1);
    memcpy(first_id, s.id, sizeof first_id);
    before = snap();

    /* The same parcel again, a fresh webhook-id: the first answer, nothing stored. */
    again = POST(.body = s.bytes->data, .len = s.bytes->len);
    EXPECT_STATUS(again, 202);
    assert_int_equal(again.body->len, first.body->len);
    assert_memory_equal(again.body->data, first.body->data, first.body->len);
    assert_non_null(header_of(&again, "idempotent-replayed"));
    assert_string_equal(header_of(&again, "idempotent-replayed"), "true");
    EXPECT_UNCHANGED(&before);
    assert_int_equal(outbox_count(alice_token, bob_pub, s.id), 1);

    /* Another parcel with that message id (another body, then another recipient): a replay. */
    other = SEAL(.what = "another body, the same id", .message_id = s.h.message_id);
    assert_string_equal(other.id, s.id);
    EXPECT_REFUSED_POST(POST(.body = other.bytes->data, .len = other.bytes->len), 409, "replayed", &before);
    to_other = SEAL(.to = &bobn, .pattern = "N", .message_id = s.h.message_id);
    EXPECT_REFUSED_POST(POST(.body = to_other.bytes->data, .len = to_other.bytes->len), 409, "replayed", &before);
    /* The first parcel with one header byte changed (its tag no longer verifies; the gateway cannot know). */
    patched = s;
    patched.bytes = blob_of(s.bytes->data, s.bytes->len);
    patched.bytes->data[39] ^= 0x01; /* the last byte of expires */
    EXPECT_REFUSED_POST(POST(.body = patched.bytes->data, .len = patched.bytes->len), 409, "replayed", &before);

    /* The refusals did not replace the first answer. */
    again = POST(.body = s.bytes->data, .len = s.bytes->len);
    EXPECT_STATUS(again, 202);
    assert_memory_equal(again.body->data, first.body->data, first.body->len);
    EXPECT_UNCHANGED(&before);

    /*
     * A webhook-id used again: with the same parcel it is the same request
     * retried, which gets the first answer (the message id is looked up
     * before the webhook-id, ng_queue_outbox_submit); with another parcel
     * it is a replayed request.
     */
    fresh_id(wid);
    s = SEAL(.what = "one webhook-id, twice");
    first = POST(.body = s.bytes->data, .len = s.bytes->len, .id = wid);
    EXPECT_ACCEPTED(first, &s, "bob");
    ledger_add(&bob, s.id, 1);
    before = snap();
    again = POST(.body = s.bytes->data, .len = s.bytes->len, .id = wid);
    EXPECT_STATUS(again, 202);
    assert_int_equal(again.body->len, first.body->len);
    assert_memory_equal(again.body->data, first.body->data, first.body->len);
    other = SEAL(.what = "another parcel under a used webhook-id");
    EXPECT_REFUSED_POST(POST(.body = other.bytes->data, .len = other.bytes->len, .id = wid), 401, "replayed", &before);
    assert_int_equal(outbox_count(alice_token, bob_pub, other.id), 0);

    WAIT_HITS(&bob.sink, first_id, 1, DELIVERY_WAIT_MS);
    WAIT_HITS(&bob.sink, s.id, 1, DELIVERY_WAIT_MS);
}

/* ==== 4. who may post ==== */

static void
test_auth(void **state)
{
    sealed s = SEAL(.what = "unsigned");
    snapshot before = snap();

    (void)state;
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = s.bytes->len, .bare = 1), 401, "missing_signature", &before);
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = s.bytes->len, .forge = 1), 401, "bad_signature", &before);
    /* amy's backend is not alice's. */
    EXPECT_REFUSED_POST(POST(.by = &amy.key, .body = s.bytes->data, .len = s.bytes->len), 401, "bad_signature",
                        &before);
    /* bob's backend, of another gateway altogether. */
    EXPECT_REFUSED_POST(POST(.by = &bob.key, .body = s.bytes->data, .len = s.bytes->len), 401, "bad_signature",
                        &before);
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = s.bytes->len, .ts_shift = -(TOLERANCE_S + 60)), 401,
                        "stale_timestamp", &before);
    EXPECT_REFUSED_POST(POST(.tenant = "nobody", .body = s.bytes->data, .len = s.bytes->len), 404, "unknown_tenant",
                        &before);
    /* A tenant of the other gateway is unknown here. */
    EXPECT_REFUSED_POST(POST(.tenant = "bob", .by = &bob.key, .body = s.bytes->data, .len = s.bytes->len), 404,
                        "unknown_tenant", &before);
    /* Refused ones did not use up the parcel: signed properly it is accepted. */
    EXPECT_ACCEPTED(POST(.body = s.bytes->data, .len = s.bytes->len), &s, "bob");
    ledger_add(&bob, s.id, 1);
    WAIT_HITS(&bob.sink, s.id, 1, DELIVERY_WAIT_MS);
    EXPECT_ONCE(&s.m);
}

/* ==== 5. bytes that are not a parcel ==== */

static void
test_malformed(void **state)
{
    sealed s = SEAL(.what = "to be damaged");
    snapshot before = snap();
    uint8_t junk[300];
    blob *b;

    (void)state;
    randombytes_buf(junk, sizeof junk);
    EXPECT_REFUSED_POST(POST(.body = junk, .len = sizeof junk), 400, "malformed_parcel", &before);
    EXPECT_REFUSED_POST(POST(.body = "", .len = 0), 400, "malformed_parcel", &before);
    /* Truncated: the last byte, the framing, everything after the header. */
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = s.bytes->len - 1), 400, "malformed_parcel", &before);
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = NG_PARCEL_HEADER_BYTES + 1), 400, "malformed_parcel",
                        &before);
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = NG_PARCEL_HEADER_BYTES), 400, "malformed_parcel", &before);
    EXPECT_REFUSED_POST(POST(.body = s.bytes->data, .len = 10), 400, "malformed_parcel", &before);
    /* A byte too many. */
    b = blob_of(s.bytes->data, s.bytes->len);
    blob_append(b, "", 1);
    EXPECT_REFUSED_POST(POST(.body = b->data, .len = b->len), 400, "malformed_parcel", &before);
    /* Header fields out of their ranges: magic, pattern, suite, flags, n. */
    {
        static const struct {
            size_t at;
            uint8_t value;
        } bad[] = {{0, 'X'}, {4, 0x07}, {5, 0x09}, {7, 0x01}, {104, 0}, {105, 0}};
        size_t i;

        for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            b = blob_of(s.bytes->data, s.bytes->len);
            b->data[bad[i].at] = bad[i].value;
            if (bad[i].at == 104) /* n = 0: both bytes */
                b->data[105] = 0;
            EXPECT_REFUSED_POST(POST(.body = b->data, .len = b->len), 400, "malformed_parcel", &before);
        }
    }
    /* An X parcel claiming a sender key id (only K carries one). */
    b = blob_of(s.bytes->data, s.bytes->len);
    b->data[72] = 0x01;
    EXPECT_REFUSED_POST(POST(.body = b->data, .len = b->len), 400, "malformed_parcel", &before);
    /* And the parcel itself, undamaged, still goes. */
    EXPECT_ACCEPTED(POST(.body = s.bytes->data, .len = s.bytes->len), &s, "bob");
    ledger_add(&bob, s.id, 1);
    WAIT_HITS(&bob.sink, s.id, 1, DELIVERY_WAIT_MS);
}

/* ==== 6. what only the recipient can check ==== */

/*
 * An X parcel sealed with a key alice's backend owns (not alice's): its
 * sender is encrypted, so gateway a stores it; gateway b opens it, finds a
 * sender that is none of its peers, refuses and counts it, delivers nothing.
 */
static void
test_foreign_x_sender(void **state)
{
    const char *series = "ng_parcels_refused_total{reason=\"sender\"}";
    double was = metric(&gw_b, series);
    ng_keypair own;
    sealed s, after;
    long t0 = now_ms();

    (void)state;
    ng_keypair_generate(&own);
    s = SEAL(.pattern = "X", .from = &own, .what = "from the backend's own key");
    ng_keypair_wipe(&own);
    EXPECT_ACCEPTED(POST(.body = s.bytes->data, .len = s.bytes->len), &s, "bob");
    ledger_add(&bob, s.id, 0);
    while (metric(&gw_b, series) < was + 1) {
        if (now_ms() - t0 > DELIVERY_WAIT_MS)
            fail_msg("gateway b did not refuse the X parcel from an unknown sender (%s %g)", series,
                     metric(&gw_b, series));
        sleep_ms(50);
    }
    /* A parcel behind it still arrives: the refused one did not stall the outbox. */
    after = SEAL(.what = "behind a refused one");
    EXPECT_ACCEPTED(POST(.body = after.bytes->data, .len = after.bytes->len), &after, "bob");
    ledger_add(&bob, after.id, 1);
    WAIT_HITS(&bob.sink, after.id, 1, DELIVERY_WAIT_MS);
    EXPECT_ONCE(&after.m);
    assert_int_equal(sink_count(&bob.sink, s.id), 0);
}

/* ==== 7. the metrics, SIGTERM, and every sink against the ledger ==== */

static void
test_stop(void **state)
{
    const char *m;
    size_t i, t;
    reply r;

    (void)state;
    r = GW_GET(&gw_a, "/metrics");
    EXPECT_STATUS(r, 200);
    m = text_of(r.body);
    if (sample(m, "ng_parcels_stored_total") != (double)stored)
        fail_msg("ng_parcels_stored_total is %g; the suite saw %ld parcels stored",
                 sample(m, "ng_parcels_stored_total"), stored);
    expect_refusals(m, refused);
    /* Polls at 50-200 ms: time for a late duplicate to show before the gateways stop. */
    sleep_ms(1500);
    stop_gateway(&gw_b);
    stop_gateway(&gw_a);
    for (t = 0; t < sizeof tenants / sizeof tenants[0]; t++) {
        sink *s = &tenants[t]->sink;
        int n = sink_total(s), k;

        assert_int_equal(s->dropped, 0);
        for (k = 0; k < n; k++) {
            const hit *h = sink_at(s, k);
            const sent *e = NULL;

            for (i = 0; i < nsent && e == NULL; i++)
                if (strcmp(ledger[i].id, h->wid) == 0)
                    e = &ledger[i];
            if (e == NULL)
                fail_msg("%s's backend got webhook-id \"%s\", which no accepted parcel had", s->name, h->wid);
            if (e->to != tenants[t])
                fail_msg("message %s for %s reached %s's backend", e->id, e->to->slug, s->name);
        }
    }
    for (i = 0; i < nsent; i++) {
        int n = sink_count(&ledger[i].to->sink, ledger[i].id);

        if (n != ledger[i].want)
            fail_msg("message %s reached %s's backend %d times, expected %d", ledger[i].id, ledger[i].to->slug, n,
                     ledger[i].want);
    }
    print_message("%zu accepted parcels checked against what the backends received\n", nsent);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_patterns, test_teardown),
        cmocka_unit_test_teardown(test_stored_unopened, test_teardown),
        cmocka_unit_test_teardown(test_refusals, test_teardown),
        cmocka_unit_test_teardown(test_limits_inside, test_teardown),
        cmocka_unit_test_teardown(test_idempotent, test_teardown),
        cmocka_unit_test_teardown(test_auth, test_teardown),
        cmocka_unit_test_teardown(test_malformed, test_teardown),
        cmocka_unit_test_teardown(test_foreign_x_sender, test_teardown),
        cmocka_unit_test_teardown(test_stop, test_teardown),
    };

    if (suite_init() != 0)
        return 1;
    return cmocka_run_group_tests_name("sealed_send", tests, group_setup, group_teardown);
}

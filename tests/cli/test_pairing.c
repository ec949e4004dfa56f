/*
 * Automatic backend pairing against the real binary (NG_BIN): one gateway
 * with its embedded redis-server on a free loopback port, tenants alice,
 * bob and carol made with the CLI, and a backend played by this suite (a
 * sink on ng_server that records every offer it is sent and answers 200,
 * 500, or completes the pairing from inside its handler as
 * examples/demo_backend does).
 *
 * The operator's side goes through the admin socket with the token; the
 * backend's side posts to the complete_url of the offer. What a paired
 * backend can do is checked end to end: a message to alice's peer, signed
 * v1a with the key it paired with (and v1 with the whsec it got back), is
 * accepted. The last test restarts the gateway with no
 * delivery.allow_private, so that an offer to the loopback sink is refused
 * before any connection; then the log is searched for codes and secrets.
 * NG_KEEP=1 keeps the temporary directory.
 */
#include "gateway_harness.h"

#include "ng_hex.h"
#include "ng_pairing.h"
#include "ng_server.h"
#include "ng_webhook.h"

enum {
    OFFER_TIMEOUT_MS = 5000, /* delivery.timeout_ms */
    CODE_HEX = 2 * NG_PAIRING_CODE_BYTES,
    MAX_OFFERS = 64,
    MAX_SECRETS = 64,
    WHPK_BYTES = 64,
};

/* ---- the suite's state ---- */

static char dir[PATH_MAX / 2], public_url[64];
static gateway gw = {.name = "gw"};
/* Every code and whsec_ the suite saw: none may reach the log. */
static char secrets[MAX_SECRETS][128];
static size_t n_secrets;

static void
remember_secret(const char *s)
{
    assert_true(n_secrets < MAX_SECRETS);
    assert_true(strlen(s) < sizeof secrets[0]);
    snprintf(secrets[n_secrets++], sizeof secrets[0], "%s", s);
}

/* ---- a backend key ---- */

typedef struct bkey {
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    char whpk[WHPK_BYTES];
} bkey;

static void
bkey_new(bkey *k)
{
    crypto_sign_keypair(k->pk, k->sk);
    memcpy(k->whpk, "whpk_", 5);
    sodium_bin2base64(k->whpk + 5, sizeof k->whpk - 5, k->pk, sizeof k->pk, sodium_base64_VARIANT_ORIGINAL);
}

/* The hex BLAKE2b-256 of the raw key inside a whpk_: what a backend answers an offer with. */
static void
digest_of(const char *whpk, char out[65])
{
    uint8_t pk[NG_WEBHOOK_PK_BYTES], d[32];

    assert_int_equal(ng_webhook_public_parse(whpk, pk), NG_OK);
    crypto_generichash(d, sizeof d, pk, sizeof pk, NULL, 0);
    ng_hex_encode(out, 65, d, sizeof d);
}

/* ---- HTTP ---- */

static reply
public_req(const char *method, const char *path, const char *const *headers, const char *body)
{
    return gw_http(&gw, method, path, headers, body, body != NULL ? strlen(body) : 0);
}

#define ADMIN(method, path, body) admin(&gw, (method), (path), (body))

/* ---- the backend: a sink for offers ---- */

typedef enum offers_mode {
    OFFERS_OK,       /* 200 */
    OFFERS_FAIL,     /* 500 */
    OFFERS_COMPLETE, /* completes the pairing before answering 200, as demo_backend does */
} offers_mode;

typedef struct offer_record {
    char *body;
    char content_type[128];
    char path[128];
    long complete_status; /* OFFERS_COMPLETE: the gateway's answer to the completion */
    char *complete_body;
    bkey key;
} offer_record;

static struct {
    pthread_mutex_t lock;
    offers_mode mode;
    offer_record got[MAX_OFFERS];
    size_t n;
    ng_server *srv;
    int port;
} offers = {.lock = PTHREAD_MUTEX_INITIALIZER};

static size_t
offers_collect(char *p, size_t size, size_t n, void *ctx)
{
    char **s = ctx;
    size_t old = *s != NULL ? strlen(*s) : 0;
    char *more = realloc(*s, old + size * n + 1);

    if (more == NULL)
        return 0;
    memcpy(more + old, p, size * n);
    more[old + size * n] = '\0';
    *s = more;
    return size * n;
}

/* What a backend does with an offer: a fresh key and the digest of the key offered, to complete_url. */
static void
offers_complete(offer_record *o)
{
    json_t *doc = json_loads(o->body, 0, NULL), *answer;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    char digest[65], *text;
    CURL *c = curl_easy_init();

    o->complete_status = -1;
    if (doc == NULL || c == NULL || h == NULL) {
        json_decref(doc);
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        return;
    }
    bkey_new(&o->key);
    {
        uint8_t pk[NG_WEBHOOK_PK_BYTES], d[32];
        const char *gk = json_string_value(json_object_get(doc, "gateway_key"));

        if (gk == NULL || ng_webhook_public_parse(gk, pk) != NG_OK)
            memset(pk, 0, sizeof pk);
        crypto_generichash(d, sizeof d, pk, sizeof pk, NULL, 0);
        ng_hex_encode(digest, sizeof digest, d, sizeof d);
    }
    answer = json_pack("{s:s, s:s}", "public_key", o->key.whpk, "gateway_key_digest", digest);
    text = json_dumps(answer, JSON_COMPACT);
    curl_easy_setopt(c, CURLOPT_URL, json_string_value(json_object_get(doc, "complete_url")));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)HTTP_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, offers_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &o->complete_body);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &o->complete_status);
    free(text);
    json_decref(answer);
    json_decref(doc);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

/* Runs on the sink's threads: records the request, then answers as the mode says. */
static void
offers_handle(void *ctx, const ng_request *req, ng_response *res)
{
    const char *ct = ng_request_header(req, "Content-Type");
    offer_record *o = NULL;
    offers_mode mode;

    (void)ctx;
    pthread_mutex_lock(&offers.lock);
    mode = offers.mode;
    if (offers.n < MAX_OFFERS) {
        o = &offers.got[offers.n++];
        o->body = strndup(req->body != NULL ? (const char *)req->body : "", req->body_len);
        snprintf(o->content_type, sizeof o->content_type, "%s", ct != NULL ? ct : "");
        snprintf(o->path, sizeof o->path, "%s", req->path);
    }
    pthread_mutex_unlock(&offers.lock);
    if (o != NULL && mode == OFFERS_COMPLETE)
        offers_complete(o); /* o is this request's alone until the answer is sent */
    if (mode == OFFERS_FAIL)
        ng_response_error(res, 500, "down", "the backend is down");
    else
        ng_response_text(res, 200, NULL, "{\"received\":true}");
}

static size_t
offers_count(void)
{
    size_t n;

    pthread_mutex_lock(&offers.lock);
    n = offers.n;
    pthread_mutex_unlock(&offers.lock);
    return n;
}

static void
offers_set(offers_mode m)
{
    pthread_mutex_lock(&offers.lock);
    offers.mode = m;
    pthread_mutex_unlock(&offers.lock);
}

/* The offer the sink received last, as JSON (kept for the test). */
static json_t *
last_offer(void)
{
    json_t *j;

    pthread_mutex_lock(&offers.lock);
    assert_true(offers.n > 0);
    j = json_loads(offers.got[offers.n - 1].body, JSON_REJECT_DUPLICATES, NULL);
    pthread_mutex_unlock(&offers.lock);
    if (j == NULL)
        fail_msg("the offer is not JSON: %s", offers.got[offers.n - 1].body);
    return kept(j);
}

static const char *
offers_url(const char *host)
{
    char u[128];

    snprintf(u, sizeof u, "http://%s:%d/noisegate", host, offers.port);
    return text_of(blob_str(u));
}

/* ---- the CLI and the gateway ---- */

#define CLI(...) GCLI(&gw, __VA_ARGS__)

/* allow is the inside of delivery.allow_private. */
static void
write_pairing_config(const char *allow)
{
    char sections[256];

    snprintf(sections, sizeof sections, "\"delivery\": {\"timeout_ms\": %d, \"allow_private\": [%s]},",
             OFFER_TIMEOUT_MS, allow);
    write_config(&gw, ", \"timeout_s\": 3", sections);
}

static int
group_setup(void **state)
{
    ng_server_opts o;

    (void)state;
    if (make_temp_dir(dir, sizeof dir, "ngpair") != 0)
        return -1;
    gateway_init(&gw, dir, loopback_free_port());
    if (gw.port <= 0)
        return -1;
    snprintf(public_url, sizeof public_url, "http://127.0.0.1:%d", gw.port);

    memset(&o, 0, sizeof o);
    o.address = "127.0.0.1";
    o.port = 0;
    o.threads = 2;
    o.max_body = 65536;
    o.timeout_s = 5;
    o.handler = offers_handle;
    if (ng_server_start(&offers.srv, &o) != NG_OK)
        return -1;
    offers.port = ng_server_port(offers.srv);

    write_pairing_config("\"127.0.0.1\"");
    CLI("vault", "init");
    CLI("tenant", "create", "alice");
    CLI("tenant", "create", "bob");
    CLI("tenant", "create", "carol");
    CLI("peer", "import", "alice", export_params(&gw, "bob", NULL), "--name", "bob");
    start_gateway(&gw);
    return test_teardown(state);
}

static int
group_teardown(void **state)
{
    size_t i;

    (void)state;
    kill_gateway(&gw);
    ng_server_stop(offers.srv);
    for (i = 0; i < offers.n; i++) {
        free(offers.got[i].body);
        free(offers.got[i].complete_body);
    }
    blobs_free();
    keep_free();
    return remove_temp_dir(dir);
}

static int
pairing_teardown(void **state)
{
    offers_set(OFFERS_OK);
    return test_teardown(state);
}

/* ---- pairing steps ---- */

/* The operator's request: a 202 with a fresh code (remembered), or fails. */
static const json_t *
offer_to(const char *slug, const char *url)
{
    char path[128];
    reply r;

    snprintf(path, sizeof path, "/v1/admin/tenants/%s/pairings", slug);
    r = ADMIN("POST", path, dump(json_pack("{s:s}", "url", url)));
    EXPECT_REPLY(r, 202, NULL);
    assert_true(is_lower_hex(jstr(r.json, "code"), CODE_HEX));
    assert_true(json_is_integer(json_object_get(r.json, "offer_status")));
    assert_true(json_is_integer(json_object_get(r.json, "expires")));
    assert_int_equal(json_object_size(r.json), 3);
    remember_secret(jstr(r.json, "code"));
    return r.json;
}

static const char *
code_of(const json_t *answer)
{
    return json_string_value(json_object_get(answer, "code"));
}

static long
offer_status(const json_t *answer)
{
    return (long)json_integer_value(json_object_get(answer, "offer_status"));
}

/* The backend's completion with a key and a digest (hex). */
static reply
complete(const char *code, const char *whpk, const char *digest)
{
    char path[128];

    snprintf(path, sizeof path, "/v1/pairing/%s", code);
    return public_req("POST", path, ARGS("Content-Type: application/json"),
                      dump(json_pack("{s:s, s:s}", "public_key", whpk, "gateway_key_digest", digest)));
}

static reply
complete_raw(const char *code, const char *body)
{
    char path[128];

    snprintf(path, sizeof path, "/v1/pairing/%s", code);
    return public_req("POST", path, ARGS("Content-Type: application/json"), body);
}

static const json_t *
tenant_show(const char *slug)
{
    char path[128];
    reply r;

    snprintf(path, sizeof path, "/v1/admin/tenants/%s", slug);
    r = ADMIN("GET", path, NULL);
    EXPECT_REPLY(r, 200, NULL);
    return r.json;
}

/* The tenant's signing key (whpk_) and its digest, as the operator sees them. */
static void
gateway_key(const char *slug, char whpk[WHPK_BYTES], char digest[65])
{
    const char *k = jstr(tenant_show(slug), "signing_key");

    assert_true(strlen(k) < WHPK_BYTES);
    snprintf(whpk, WHPK_BYTES, "%s", k);
    digest_of(whpk, digest);
}

static size_t
backend_count(const char *slug)
{
    return json_array_size(json_object_get(tenant_show(slug), "backends"));
}

/* The backend of tenant with this id, or NULL. */
static const json_t *
backend_of(const char *slug, const char *id)
{
    json_t *list = json_object_get(tenant_show(slug), "backends");
    size_t i;

    for (i = 0; i < json_array_size(list); i++)
        if (strcmp(jstr(json_array_get(list, i), "id"), id) == 0)
            return json_array_get(list, i);
    return NULL;
}

/* A message from alice to bob, signed by the backend as Standard Webhooks libraries do: v1a with k, or v1 with whsec.
 */
static reply
send_signed(const bkey *k, const char *whsec)
{
    const char *body = dump(json_pack("{s:s, s:s}", "recipient", "bob", "body", "hello from a paired backend"));
    signer s = {.v1a = k != NULL};

    if (k != NULL)
        memcpy(s.sk, k->sk, sizeof s.sk);
    else
        signer_whsec(&s, whsec, strlen(whsec));
    return post_signed(&gw, "alice", &s, "application/json", body, strlen(body), NULL);
}

/* ==== 1. the operator's route refuses what it should ==== */

static void
test_admin_refusals(void **state)
{
    const char *path = "/v1/admin/tenants/alice/pairings",
               *good = dump(json_pack("{s:s}", "url", offers_url("127.0.0.1")));
    char wrong[65];
    size_t before = offers_count();
    reply r;

    (void)state;
    /* No token, another token, a malformed one: 401, and nothing offered. */
    EXPECT_REPLY(admin_as(&gw, NULL, "POST", path, good), 401, "unauthorized");
    memset(wrong, 'a', 64);
    wrong[64] = '\0';
    EXPECT_REPLY(admin_as(&gw, wrong, "POST", path, good), 401, "unauthorized");
    EXPECT_REPLY(admin_as(&gw, "not-a-token", "POST", path, good), 401, "unauthorized");
    /* Unknown tenants, and names that cannot be tenants. */
    EXPECT_REPLY(ADMIN("POST", "/v1/admin/tenants/nobody/pairings", good), 404, "not_found");
    EXPECT_REPLY(ADMIN("POST", "/v1/admin/tenants/Alice/pairings", good), 404, "not_found");
    /* Bad bodies. */
    EXPECT_REPLY(ADMIN("POST", path, "not json"), 400, "bad_request");
    EXPECT_REPLY(ADMIN("POST", path, ""), 400, "bad_request");
    EXPECT_REPLY(ADMIN("POST", path, "[\"http://x.example/\"]"), 400, "bad_request");
    EXPECT_REPLY(ADMIN("POST", path, "{}"), 400, "bad_request");
    EXPECT_REPLY(ADMIN("POST", path, "{\"url\": 7}"), 400, "bad_request");
    EXPECT_REPLY(ADMIN("POST", path, dump(json_pack("{s:s, s:s}", "url", offers_url("127.0.0.1"), "secret", "x"))), 400,
                 "bad_request");
    EXPECT_REPLY(ADMIN("POST", path, "{\"url\": \"http://a.example/\", \"url\": \"http://b.example/\"}"), 400,
                 "bad_request");
    /* Bad URLs: another scheme, user info, spaces, no host. */
    EXPECT_REPLY(ADMIN("POST", path, "{\"url\": \"ftp://backend.example/\"}"), 400, "bad_url");
    EXPECT_REPLY(ADMIN("POST", path, "{\"url\": \"https://user:pw@backend.example/\"}"), 400, "bad_url");
    EXPECT_REPLY(ADMIN("POST", path, "{\"url\": \"https://backend.example/a b\"}"), 400, "bad_url");
    EXPECT_REPLY(ADMIN("POST", path, "{\"url\": \"https:///x\"}"), 400, "bad_url");
    EXPECT_REPLY(ADMIN("POST", path, "{\"url\": \"backend.example\"}"), 400, "bad_url");
    /* A body over the limit. */
    {
        char big[NG_PAIRING_MAX_BODY + 64];

        memset(big, ' ', sizeof big - 1);
        big[sizeof big - 1] = '\0';
        memcpy(big, "{\"url\": \"http://x.example/\"", 27);
        big[sizeof big - 2] = '}';
        EXPECT_REPLY(ADMIN("POST", path, big), 413, "too_large");
    }
    /* Only POST. */
    r = ADMIN("GET", path, NULL);
    EXPECT_REPLY(r, 405, "method_not_allowed");
    /* The route is not on the public listener. */
    EXPECT_REPLY(public_req("POST", path, NULL, good), 404, "not_found");
    assert_int_equal(offers_count(), before);
}

/* ==== 2. offer, completion, and a message signed with the paired key ==== */

static void
test_pair_and_send(void **state)
{
    char whpk[WHPK_BYTES], digest[65], url[256];
    uint64_t t0 = wall_ms();
    const json_t *answer, *b;
    const char *code, *id, *whsec;
    json_t *offer;
    size_t before = offers_count(), backends = backend_count("alice");
    bkey k;
    reply r;

    (void)state;
    gateway_key("alice", whpk, digest);
    answer = offer_to("alice", offers_url("127.0.0.1"));
    code = code_of(answer);
    assert_int_equal(offer_status(answer), 200);
    /* The sink got exactly one offer, as JSON, with everything a backend needs. */
    assert_int_equal(offers_count(), before + 1);
    assert_string_equal(offers.got[before].path, "/noisegate");
    assert_true(strncasecmp(offers.got[before].content_type, "application/json", 16) == 0);
    offer = last_offer();
    assert_int_equal(json_object_size(offer), 6);
    assert_string_equal(jstr(offer, "type"), "noisegate.pairing.offer");
    assert_string_equal(jstr(offer, "tenant"), "alice");
    assert_string_equal(jstr(offer, "code"), code);
    snprintf(url, sizeof url, "%s/v1/pairing/%s", public_url, code);
    assert_string_equal(jstr(offer, "complete_url"), url);
    assert_string_equal(jstr(offer, "gateway_key"), whpk);
    assert_int_equal(json_integer_value(json_object_get(offer, "expires")),
                     json_integer_value(json_object_get(answer, "expires")));
    /* Ten minutes. */
    assert_true((uint64_t)json_integer_value(json_object_get(offer, "expires")) >=
                t0 + NG_PAIRING_TTL_S * 1000u - 1000);
    assert_true((uint64_t)json_integer_value(json_object_get(offer, "expires")) <=
                wall_ms() + NG_PAIRING_TTL_S * 1000u + 1000);

    /* The backend completes with a fresh key and the digest of the key it was offered. */
    bkey_new(&k);
    digest_of(jstr(offer, "gateway_key"), digest);
    r = complete(code, k.whpk, digest);
    EXPECT_REPLY(r, 201, NULL);
    assert_int_equal(json_object_size(r.json), 3);
    assert_string_equal(jstr(r.json, "tenant"), "alice");
    id = jstr(r.json, "backend_id");
    whsec = jstr(r.json, "whsec");
    remember_secret(whsec);
    assert_true(strncmp(whsec, "whsec_", 6) == 0);
    {
        uint8_t secret[NG_WEBHOOK_SECRET_MAX];
        size_t len;

        assert_int_equal(ng_webhook_secret_parse(whsec, secret, sizeof secret, &len), NG_OK);
        assert_int_equal(len, 32);
    }
    /* The operator sees it: the URL offered, the key it paired with, active. */
    assert_int_equal(backend_count("alice"), backends + 1);
    b = backend_of("alice", id);
    assert_non_null(b);
    assert_string_equal(jstr(b, "url"), offers_url("127.0.0.1"));
    assert_string_equal(jstr(b, "public_key"), k.whpk);
    assert_string_equal(jstr(b, "status"), "active");

    /* The code was used: a second completion, even the same one, finds nothing. */
    EXPECT_REPLY(complete(code, k.whpk, digest), 404, "unknown_code");
    assert_int_equal(backend_count("alice"), backends + 1);

    /* The backend now sends: v1a with its key, v1 with the whsec it got. */
    EXPECT_REPLY(send_signed(&k, NULL), 202, NULL);
    EXPECT_REPLY(send_signed(NULL, whsec), 202, NULL);
    /* And another key does not. */
    {
        bkey other;

        bkey_new(&other);
        EXPECT_REPLY(send_signed(&other, NULL), 401, "bad_signature");
    }
}

/* ==== 3. a backend that completes while the gateway waits for its answer to the offer ==== */

static void
test_complete_during_offer(void **state)
{
    size_t before = offers_count(), backends = backend_count("carol");
    const json_t *answer, *b, *done;
    offer_record *o;

    (void)state;
    offers_set(OFFERS_COMPLETE);
    answer = offer_to("carol", offers_url("127.0.0.1"));
    assert_int_equal(offer_status(answer), 200);
    assert_int_equal(offers_count(), before + 1);
    o = &offers.got[before];
    if (o->complete_status != 201)
        fail_msg("the completion inside the offer got %ld: %s", o->complete_status,
                 o->complete_body != NULL ? o->complete_body : "");
    done = kept(json_loads(o->complete_body, 0, NULL));
    assert_non_null(done);
    remember_secret(jstr(done, "whsec"));
    assert_string_equal(jstr(done, "tenant"), "carol");
    /* Paired by the time the operator hears 202. */
    assert_int_equal(backend_count("carol"), backends + 1);
    b = backend_of("carol", jstr(done, "backend_id"));
    assert_non_null(b);
    assert_string_equal(jstr(b, "public_key"), o->key.whpk);
    EXPECT_REPLY(complete(code_of(answer), o->key.whpk, "00"), 404, "unknown_code");
}

/* ==== 4. a digest of another key: refused, and the code is gone ==== */

static void
test_wrong_digest(void **state)
{
    char whpk[WHPK_BYTES], digest[65], bob_whpk[WHPK_BYTES], bob_digest[65];
    size_t backends = backend_count("alice");
    const char *code;
    bkey k;

    (void)state;
    gateway_key("alice", whpk, digest);
    gateway_key("bob", bob_whpk, bob_digest);
    bkey_new(&k);
    /* The backend was offered bob's key (someone in between): 403. */
    code = code_of(offer_to("alice", offers_url("127.0.0.1")));
    EXPECT_REPLY(complete(code, k.whpk, bob_digest), 403, "key_mismatch");
    /* Used up: the right digest now finds nothing. */
    EXPECT_REPLY(complete(code, k.whpk, digest), 404, "unknown_code");
    /* A digest of zeros: the same. */
    code = code_of(offer_to("alice", offers_url("127.0.0.1")));
    EXPECT_REPLY(complete(code, k.whpk, "0000000000000000000000000000000000000000000000000000000000000000"), 403,
                 "key_mismatch");
    EXPECT_REPLY(complete(code, k.whpk, digest), 404, "unknown_code");
    assert_int_equal(backend_count("alice"), backends);
}

/* ==== 5. codes that are not (or no longer) codes ==== */

static void
test_unknown_codes(void **state)
{
    char whpk[WHPK_BYTES], digest[65], upper[CODE_HEX + 1];
    const char *code;
    bkey k;
    size_t i;
    reply r;

    (void)state;
    gateway_key("alice", whpk, digest);
    bkey_new(&k);
    EXPECT_REPLY(complete("0123456789abcdef0123456789abcdef", k.whpk, digest), 404, "unknown_code");
    EXPECT_REPLY(complete("short", k.whpk, digest), 404, "unknown_code");
    EXPECT_REPLY(complete("0123456789abcdef0123456789abcdef00", k.whpk, digest), 404, "unknown_code");
    EXPECT_REPLY(complete("0123456789abcdef0123456789abcdeg", k.whpk, digest), 404, "unknown_code");
    /* A live code in capitals is not that code, and does not use it up. */
    code = code_of(offer_to("alice", offers_url("127.0.0.1")));
    for (i = 0; i < CODE_HEX; i++)
        upper[i] = (char)(code[i] >= 'a' && code[i] <= 'f' ? code[i] - 'a' + 'A' : code[i]);
    upper[CODE_HEX] = '\0';
    if (strcmp(upper, code) != 0)
        EXPECT_REPLY(complete(upper, k.whpk, digest), 404, "unknown_code");
    r = complete(code, k.whpk, digest);
    EXPECT_REPLY(r, 201, NULL);
    remember_secret(jstr(r.json, "whsec"));
    /* Only POST; the path takes exactly one segment. */
    EXPECT_REPLY(public_req("GET", "/v1/pairing/0123456789abcdef0123456789abcdef", NULL, NULL), 405,
                 "method_not_allowed");
    EXPECT_REPLY(public_req("POST", "/v1/pairing/", NULL, "{}"), 404, "not_found");
    EXPECT_REPLY(public_req("POST", "/v1/pairing/a/b", NULL, "{}"), 404, "not_found");
}

/* ==== 6. malformed completions: 400 (or 413), and the code is used up all the same ==== */

static void
test_bad_bodies(void **state)
{
    char whpk[WHPK_BYTES], digest[65], big[NG_PAIRING_MAX_BODY + 64];
    size_t backends = backend_count("alice"), i;
    bkey k;
    uint8_t off_curve[32];
    char off_whpk[WHPK_BYTES];
    const char *bodies[16];
    const char *codes[16];
    size_t n = 0;

    (void)state;
    gateway_key("alice", whpk, digest);
    bkey_new(&k);
    /* A point that is not on the curve, in the right form. */
    memset(off_curve, 0, sizeof off_curve);
    off_curve[0] = 2;
    memcpy(off_whpk, "whpk_", 5);
    sodium_bin2base64(off_whpk + 5, sizeof off_whpk - 5, off_curve, sizeof off_curve, sodium_base64_VARIANT_ORIGINAL);
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "{\"public_key\": \"x\"", 18);
    big[sizeof big - 2] = '}';

    bodies[n++] = "not json";
    bodies[n++] = "";
    bodies[n++] = "[]";
    bodies[n++] = dump(json_pack("{s:s}", "public_key", k.whpk));
    bodies[n++] = dump(json_pack("{s:s}", "gateway_key_digest", digest));
    bodies[n++] = dump(json_pack("{s:s, s:s, s:s}", "public_key", k.whpk, "gateway_key_digest", digest, "url",
                                 "http://evil.example/"));
    bodies[n++] = dump(json_pack("{s:s, s:i}", "public_key", k.whpk, "gateway_key_digest", 7));
    bodies[n++] = dump(json_pack("{s:s, s:s}", "public_key", k.whpk, "gateway_key_digest", "abcd"));
    bodies[n++] = dump(json_pack("{s:s, s:s}", "public_key", k.whpk, "gateway_key_digest",
                                 "zz00000000000000000000000000000000000000000000000000000000000000"));
    {
        char dup[512];

        snprintf(dup, sizeof dup, "{\"public_key\": \"%s\", \"public_key\": \"%s\", \"gateway_key_digest\": \"%s\"}",
                 k.whpk, k.whpk, digest);
        bodies[n++] = text_of(blob_str(dup));
    }
    for (i = 0; i < n; i++) {
        codes[i] = code_of(offer_to("alice", offers_url("127.0.0.1")));
        EXPECT_REPLY(complete_raw(codes[i], bodies[i]), 400, "bad_request");
    }
    /* Bad keys, with the right digest: not base64, the wrong length, another prefix, off the curve. */
    {
        const char *keys[] = {"whpk_!!!", "whpk_AAAA", "whsk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", off_whpk,
                              ""};

        for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            codes[n] = code_of(offer_to("alice", offers_url("127.0.0.1")));
            EXPECT_REPLY(complete(codes[n], keys[i], digest), 400, "bad_public_key");
            n++;
        }
    }
    /* Too large. */
    codes[n] = code_of(offer_to("alice", offers_url("127.0.0.1")));
    EXPECT_REPLY(complete_raw(codes[n], big), 413, "too_large");
    n++;
    /* Each of those codes was tried once: used up, even with a good body now. */
    for (i = 0; i < n; i++)
        EXPECT_REPLY(complete(codes[i], k.whpk, digest), 404, "unknown_code");
    assert_int_equal(backend_count("alice"), backends);
}

/* ==== 7. a backend that does not take the offer: the code still works out of band ==== */

static void
test_offer_not_accepted(void **state)
{
    char whpk[WHPK_BYTES], digest[65], closed[64];
    size_t before = offers_count(), backends = backend_count("alice");
    const json_t *answer;
    bkey k;
    reply r;

    (void)state;
    gateway_key("alice", whpk, digest);
    offers_set(OFFERS_FAIL);
    answer = offer_to("alice", offers_url("127.0.0.1"));
    assert_int_equal(offer_status(answer), 500);
    assert_int_equal(offers_count(), before + 1);
    bkey_new(&k);
    r = complete(code_of(answer), k.whpk, digest);
    EXPECT_REPLY(r, 201, NULL);
    remember_secret(jstr(r.json, "whsec"));
    assert_int_equal(backend_count("alice"), backends + 1);

    /* Nothing listens: offer_status 0, the code is made all the same. */
    snprintf(closed, sizeof closed, "http://127.0.0.1:%d/", loopback_free_port());
    answer = offer_to("alice", closed);
    assert_int_equal(offer_status(answer), 0);
    r = complete(code_of(answer), k.whpk, digest);
    EXPECT_REPLY(r, 201, NULL);
    remember_secret(jstr(r.json, "whsec"));
    assert_int_equal(backend_count("alice"), backends + 2);
    assert_int_equal(offers_count(), before + 1);
}

/* ==== 8. the operator's shorthand: noisegate pair TENANT URL ==== */

static void
test_cli_pair(void **state)
{
    char whpk[WHPK_BYTES], digest[65];
    size_t before = offers_count();
    result res;
    json_t *out;
    bkey k;
    reply r;

    (void)state;
    res = ng(NULL, ARGS("pair", "carol", offers_url("127.0.0.1"), "--config", gw.cfg));
    EXPECT_EXIT(res, 0);
    out = kept(json_loadb(text_of(res.out), res.out->len, 0, NULL));
    if (out == NULL)
        fail_msg("noisegate pair printed no JSON: %s", text_of(res.out));
    assert_true(is_lower_hex(jstr(out, "code"), CODE_HEX));
    remember_secret(jstr(out, "code"));
    assert_int_equal(json_integer_value(json_object_get(out, "offer_status")), 200);
    assert_int_equal(offers_count(), before + 1);
    gateway_key("carol", whpk, digest);
    bkey_new(&k);
    r = complete(jstr(out, "code"), k.whpk, digest);
    EXPECT_REPLY(r, 201, NULL);
    remember_secret(jstr(r.json, "whsec"));
    /* A refusal exits 1, with the gateway's answer. */
    res = ng(NULL, ARGS("pair", "nobody", offers_url("127.0.0.1"), "--config", gw.cfg));
    EXPECT_EXIT(res, 1);
    assert_non_null(strstr(text_of(res.out), "not_found"));
}

/* ==== 9. no delivery.allow_private: offers to loopback are refused before connecting ==== */

static void
test_blocked_address(void **state)
{
    char whpk[WHPK_BYTES], digest[65];
    const char *pending, *log;
    const json_t *answer;
    size_t before, i;
    bkey k;
    reply r;

    (void)state;
    /* A code made before the restart outlives it (it is in Redis, not in the process). */
    pending = code_of(offer_to("bob", offers_url("127.0.0.1")));
    stop_gateway(&gw);
    write_pairing_config("");
    start_gateway(&gw);
    gateway_key("bob", whpk, digest);
    bkey_new(&k);
    r = complete(pending, k.whpk, digest);
    EXPECT_REPLY(r, 201, NULL);
    remember_secret(jstr(r.json, "whsec"));

    before = offers_count();
    answer = offer_to("bob", offers_url("127.0.0.1"));
    assert_int_equal(offer_status(answer), 0);
    answer = offer_to("bob", offers_url("localhost"));
    assert_int_equal(offer_status(answer), 0);
    /* The sink is there (the suite reaches it), the gateway did not. */
    assert_int_equal(http_request(NULL, "POST", offers_url("127.0.0.1"), NULL, "{}", 2).status, 200);
    assert_int_equal(offers_count(), before + 1);
    /* The code of a refused offer can still be passed on out of band. */
    r = complete(code_of(answer), k.whpk, digest);
    EXPECT_REPLY(r, 201, NULL);
    remember_secret(jstr(r.json, "whsec"));

    stop_gateway(&gw);
    log = text_of(slurp(gw.log));
    assert_non_null(strstr(log, "address 127.0.0.1 not allowed"));
    assert_non_null(strstr(log, "pairing offer not accepted"));
    assert_non_null(strstr(log, "backend paired"));
    assert_null(strstr(log, "whsec_"));
    for (i = 0; i < n_secrets; i++)
        if (secrets[i][0] != '\0' && strstr(log, strncmp(secrets[i], "whsec_", 6) == 0 ? secrets[i] + 6 : secrets[i]))
            fail_msg("the log holds a code or a secret: %s", secrets[i]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_admin_refusals, pairing_teardown),
        cmocka_unit_test_teardown(test_pair_and_send, pairing_teardown),
        cmocka_unit_test_teardown(test_complete_during_offer, pairing_teardown),
        cmocka_unit_test_teardown(test_wrong_digest, pairing_teardown),
        cmocka_unit_test_teardown(test_unknown_codes, pairing_teardown),
        cmocka_unit_test_teardown(test_bad_bodies, pairing_teardown),
        cmocka_unit_test_teardown(test_offer_not_accepted, pairing_teardown),
        cmocka_unit_test_teardown(test_cli_pair, pairing_teardown),
        cmocka_unit_test_teardown(test_blocked_address, pairing_teardown),
    };

    if (suite_init() != 0)
        return 1;
    return cmocka_run_group_tests_name("pairing", tests, group_setup, group_teardown);
}

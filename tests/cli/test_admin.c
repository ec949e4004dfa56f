/*
 * The admin API's tenants, backends, peers and keys on a running gateway
 * (the real binary, NG_BIN, on a free loopback port with its embedded
 * redis-server), over its admin socket with the bearer token, and the CLI
 * commands that go through it while it runs.
 *
 * One gateway serves the group; the tests run in order and each uses its
 * own tenants. Every change must be visible to the very next request (no
 * sleep): a backend's secret signs submissions at once, an imported peer is
 * a recipient at once, a deleted tenant is gone at once, an exported key no
 * longer seals at once. The last test stops the gateway and reads offline
 * what the online CLI wrote.
 * NG_KEEP=1 keeps the temporary directory (configuration, data, gw.log).
 */
#include "gateway_harness.h"
#include "ng_hex.h"
#include "ng_key.h"
#include "ng_peer.h"

static char dir[PATH_MAX / 2];
static gateway gw = {.name = "gw"};
/* Every whsec_ secret and params string the gateway gave: no refusal nor log line may hold one. */
static char secrets[32][200];
static size_t n_secrets;

static void
remember(const char *s)
{
    assert_true(n_secrets < sizeof secrets / sizeof secrets[0]);
    snprintf(secrets[n_secrets++], sizeof secrets[0], "%s", s);
}

static int
group_setup(void **state)
{
    tag_init();
    if (make_temp_dir(dir, sizeof dir, "ngadmin") != 0)
        return -1;
    gateway_init(&gw, dir, loopback_free_port());
    if (gw.port <= 0)
        return -1;
    write_config(&gw, ", \"timeout_s\": 3", "");
    GCLI(&gw, "vault", "init");
    start_gateway(&gw);
    return test_teardown(state);
}

static int
group_teardown(void **state)
{
    (void)state;
    kill_gateway(&gw);
    blobs_free();
    keep_free();
    return remove_temp_dir(dir);
}

/* ---- helpers ---- */

static const char *
path_of(const char *fmt, const char *a, const char *b)
{
    char p[512];

    snprintf(p, sizeof p, fmt, a, b != NULL ? b : "");
    return text_of(blob_str(p));
}

/* A message from slug's backend signed with s, to recipient, with a pattern (NULL: the peer's choice). */
static reply
submit_with(const char *slug, const signer *s, const char *recipient, const char *pattern)
{
    json_t *doc = json_pack("{s:s, s:s, s:s, s:i}", "recipient", recipient, "content_type", "text/plain", "body",
                            "hello", "ttl", 600);
    const char *body;

    if (pattern != NULL)
        json_object_set_new(doc, "pattern", json_string(pattern));
    body = dump(doc);
    return post_signed(&gw, slug, s, "application/json", body, strlen(body), NULL);
}

static reply
submit_as(const char *slug, const signer *s, const char *recipient)
{
    return submit_with(slug, s, recipient, NULL);
}

/* The signature held: whatever the gateway answers, it is not a 401 about it. */
static void
expect_signature_ok_at(reply r, int line)
{
    if (r.status == 401 || r.status <= 0)
        fail_msg("line %d: %s: %ld \"%s\", the signature should hold; body: %.300s", line, last_req, r.status, r.code,
                 text_of(r.body));
}

#define EXPECT_SIGNATURE_OK(r) expect_signature_ok_at((r), __LINE__)

/* The element of an array whose field `key` is the string `want`, or NULL. */
static json_t *
find_in(const json_t *arr, const char *key, const char *want)
{
    size_t i;
    json_t *e;

    assert_true(json_is_array(arr));
    json_array_foreach(arr, i, e)
    {
        const char *s = json_string_value(json_object_get(e, key));

        if (s != NULL && strcmp(s, want) == 0)
            return e;
    }
    return NULL;
}

/* Both listeners still answer. */
static void
still_up(void)
{
    EXPECT_STATUS(admin_as(&gw, NULL, "GET", "/healthz", NULL), 200);
    EXPECT_STATUS(GW_GET(&gw, "/healthz"), 200);
}

/* A refusal: its status and code, no secret in it, and the gateway goes on. */
static void
refused_at(reply r, long status, const char *code, int line)
{
    size_t i;

    expect_reply_at(r, status, code, line);
    if (strstr(text_of(r.body), "whsec_") != NULL)
        fail_msg("line %d: %s: a refusal holds a secret: %.300s", line, last_req, text_of(r.body));
    for (i = 0; i < n_secrets; i++)
        if (strstr(text_of(r.body), secrets[i]) != NULL)
            fail_msg("line %d: %s: a refusal holds a secret: %.300s", line, last_req, text_of(r.body));
    still_up();
}

#define REFUSED(r, status, code) refused_at((r), (status), (code), __LINE__)

static void
create_tenant(const char *slug)
{
    reply r = admin(&gw, "POST", "/v1/admin/tenants", dump(json_pack("{s:s}", "tenant", slug)));

    EXPECT_STATUS(r, 201);
    assert_string_equal(jstr(r.json, "slug"), slug);
}

/* POST .../backends: its id, and its secret in s. */
static void
add_backend_api(const char *slug, const char *url, signer *s, char id[16])
{
    reply r =
        admin(&gw, "POST", path_of("/v1/admin/tenants/%s/backends", slug, NULL), dump(json_pack("{s:s}", "url", url)));

    EXPECT_STATUS(r, 201);
    assert_string_equal(jstr(r.json, "url"), url);
    snprintf(id, 16, "%s", jstr(r.json, "id"));
    signer_whsec(s, jstr(r.json, "whsec"), strlen(jstr(r.json, "whsec")));
    remember(s->whsec);
}

/* ==== 1. every route, and each change visible at once ==== */

static void
test_routes(void **state)
{
    signer s1 = {0}, s2 = {0};
    char b1[16], b2[16];
    const char *params, *params_out, *fp, *outbox = "http://127.0.0.1:1/v1/outbox";
    json_t *t, *e;
    reply r;
    size_t i;

    (void)state;
    /* create: 201, the tenant as `tenant show` gives it. */
    r = admin(&gw, "POST", "/v1/admin/tenants",
              dump(json_pack("{s:s, s:b, s:I}", "tenant", "ra", "psk", 1, "rate", 7)));
    EXPECT_STATUS(r, 201);
    assert_string_equal(jstr(r.json, "slug"), "ra");
    assert_true(json_is_array(json_object_get(r.json, "keys")));
    assert_int_equal(json_array_size(json_object_get(r.json, "keys")), 1);
    assert_true(strncmp(jstr(r.json, "signing_key"), "whpk_", 5) == 0);
    assert_true(is_lower_hex(jstr(r.json, "signing_public"), 64));
    assert_true(json_is_array(json_object_get(r.json, "backends")));
    assert_true(json_is_array(json_object_get(r.json, "peers")));
    create_tenant("rb");

    /* list, show */
    r = admin(&gw, "GET", "/v1/admin/tenants", NULL);
    EXPECT_STATUS(r, 200);
    assert_non_null(e = find_in(json_object_get(r.json, "tenants"), "slug", "ra"));
    assert_true(is_lower_hex(jstr(e, "key_id"), 64));
    assert_int_equal(json_integer_value(json_object_get(e, "epoch")), 1);
    assert_non_null(find_in(json_object_get(r.json, "tenants"), "slug", "rb"));
    r = admin(&gw, "GET", "/v1/admin/tenants/ra", NULL);
    EXPECT_STATUS(r, 200);
    assert_string_equal(jstr(r.json, "slug"), "ra");
    assert_true(is_lower_hex(jstr(r.json, "signing_public"), 64));

    /* Before any backend, no signature can hold for ra. */
    memset(&s1, 0, sizeof s1);
    signer_whsec(&s1, "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
                 strlen("whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="));
    EXPECT_STATUS(submit_as("ra", &s1, "rb"), 401);

    /* backends add: 201 with its secret, which signs at once (ra knows no rb yet: unknown_peer) */
    add_backend_api("ra", "http://127.0.0.1:9/ra", &s1, b1);
    assert_true(strncmp(s1.whsec, "whsec_", 6) == 0);
    r = submit_as("ra", &s1, "rb");
    EXPECT_SIGNATURE_OK(r);
    EXPECT_REPLY(r, 404, "unknown_peer");
    add_backend_api("ra", "http://127.0.0.1:9/ra2", &s2, b2);
    assert_string_not_equal(b1, b2);
    assert_string_not_equal(s1.whsec, s2.whsec);

    /* list: both, and no secret */
    r = admin(&gw, "GET", "/v1/admin/tenants/ra/backends", NULL);
    EXPECT_STATUS(r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "backends")), 2);
    assert_non_null(e = find_in(json_object_get(r.json, "backends"), "id", b1));
    assert_string_equal(jstr(e, "url"), "http://127.0.0.1:9/ra");
    assert_null(strstr(text_of(r.body), "whsec"));
    assert_null(strstr(text_of(r.body), s1.whsec + 6));
    assert_null(strstr(text_of(r.body), s2.whsec + 6));
    /* nor in show */
    r = admin(&gw, "GET", "/v1/admin/tenants/ra", NULL);
    EXPECT_STATUS(r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "backends")), 2);
    assert_null(strstr(text_of(r.body), "whsec"));

    /* rotate-secret: a new secret, which signs at once */
    r = admin(&gw, "POST", path_of("/v1/admin/tenants/ra/backends/%s/rotate-secret", b1, NULL), NULL);
    EXPECT_STATUS(r, 200);
    assert_string_equal(jstr(r.json, "id"), b1);
    {
        signer s3 = {0};

        signer_whsec(&s3, jstr(r.json, "whsec"), strlen(jstr(r.json, "whsec")));
        remember(s3.whsec);
        assert_string_not_equal(s3.whsec, s1.whsec);
        EXPECT_SIGNATURE_OK(submit_as("ra", &s3, "rb"));
        s1 = s3;
    }

    /* remove: its secret no longer signs, at once; the other one does */
    r = admin(&gw, "DELETE", path_of("/v1/admin/tenants/ra/backends/%s", b1, NULL), NULL);
    EXPECT_STATUS(r, 200);
    assert_string_equal(jstr(r.json, "removed"), b1);
    EXPECT_STATUS(submit_as("ra", &s1, "rb"), 401);
    EXPECT_SIGNATURE_OK(submit_as("ra", &s2, "rb"));
    r = admin(&gw, "GET", "/v1/admin/tenants/ra/backends", NULL);
    EXPECT_STATUS(r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "backends")), 1);
    assert_null(find_in(json_object_get(r.json, "backends"), "id", b1));

    /* params: the gateway's own outbox, and one given */
    r = admin(&gw, "GET", "/v1/admin/tenants/rb/params", NULL);
    EXPECT_STATUS(r, 200);
    params = jstr(r.json, "params");
    fp = jstr(r.json, "fingerprint");
    assert_true(strncmp(params, "ngcp1:", 6) == 0);
    assert_true(strlen(fp) > 0);
    remember(params);
    r = admin(&gw, "GET", "/v1/admin/tenants/rb/params?outbox=http%3A%2F%2F127.0.0.1%3A1%2Fv1%2Foutbox", NULL);
    EXPECT_STATUS(r, 200);
    params_out = jstr(r.json, "params");
    assert_true(strncmp(params_out, "ngcp1:", 6) == 0);
    assert_string_not_equal(params_out, params);
    remember(params_out);
    /* `peer export` (through the gateway here) gives the same, but for its time (a second may pass). */
    {
        json_t *a = NULL, *b = NULL;

        assert_int_equal(ng_peer_decode(export_params(&gw, "rb", NULL), &a), NG_OK);
        assert_int_equal(ng_peer_decode(params, &b), NG_OK);
        json_object_del(a, "created");
        json_object_del(b, "created");
        json_object_del(a, "sig");
        json_object_del(b, "sig");
        assert_true(json_equal(a, b));
        json_decref(a);
        json_decref(b);
    }

    /* peers import: 201, the fingerprint the export showed; rb is a recipient at once */
    r = admin(&gw, "POST", "/v1/admin/tenants/ra/peers",
              dump(json_pack("{s:s, s:s}", "params", params_out, "name", "rb")));
    EXPECT_STATUS(r, 201);
    assert_string_equal(jstr(r.json, "peer"), "rb");
    assert_string_equal(jstr(r.json, "fingerprint"), fp);
    assert_null(strstr(text_of(r.body), "ngcp1:"));
    EXPECT_STATUS(submit_as("ra", &s2, "rb"), 202);
    r = admin(&gw, "GET", "/v1/admin/tenants/ra/peers", NULL);
    EXPECT_STATUS(r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "peers")), 1);
    assert_non_null(e = find_in(json_object_get(r.json, "peers"), "name", "rb"));
    assert_string_equal(jstr(e, "fingerprint"), fp);
    assert_string_equal(jstr(e, "outbox"), outbox);
    assert_null(strstr(text_of(r.body), "ngcp1:"));
    for (i = 0; i < n_secrets; i++)
        assert_null(strstr(text_of(r.body), secrets[i]));
    r = admin(&gw, "DELETE", "/v1/admin/tenants/ra/peers/rb", NULL);
    EXPECT_STATUS(r, 200);
    assert_string_equal(jstr(r.json, "removed"), "rb");
    EXPECT_REPLY(submit_as("ra", &s2, "rb"), 404, "unknown_peer");
    r = admin(&gw, "GET", "/v1/admin/tenants/ra/peers", NULL);
    EXPECT_STATUS(r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "peers")), 0);

    /* keys: list, rotate, retire the old epoch */
    r = admin(&gw, "GET", "/v1/admin/tenants/ra/keys", NULL);
    EXPECT_STATUS(r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "keys")), 1);
    e = json_array_get(json_object_get(r.json, "keys"), 0);
    assert_int_equal(json_integer_value(json_object_get(e, "epoch")), 1);
    assert_true(json_is_true(json_object_get(e, "sending")));
    r = admin(&gw, "POST", "/v1/admin/tenants/ra/keys/rotate", NULL);
    EXPECT_STATUS(r, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "epoch")), 2);
    r = admin(&gw, "GET", "/v1/admin/tenants/ra/keys", NULL);
    EXPECT_STATUS(r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "keys")), 2);
    json_array_foreach(json_object_get(r.json, "keys"), i, e)
    {
        long ep = (long)json_integer_value(json_object_get(e, "epoch"));

        assert_true(ep == 1 || ep == 2);
        assert_int_equal(json_is_true(json_object_get(e, "sending")), ep == 2);
    }
    r = admin(&gw, "GET", "/v1/admin/tenants", NULL);
    assert_int_equal(
        json_integer_value(json_object_get(find_in(json_object_get(r.json, "tenants"), "slug", "ra"), "epoch")), 2);
    r = admin(&gw, "POST", "/v1/admin/tenants/ra/keys/1/retire", NULL);
    EXPECT_STATUS(r, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "retired")), 1);
    r = admin(&gw, "GET", "/v1/admin/tenants/ra/keys", NULL);
    EXPECT_STATUS(r, 200);
    /* Retired: gone from the list, epoch 2 alone and sending. */
    t = json_object_get(r.json, "keys");
    assert_int_equal(json_array_size(t), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(t, 0), "epoch")), 2);
    assert_true(json_is_true(json_object_get(json_array_get(t, 0), "sending")));
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/ra/keys/1/retire", NULL), 404, "not_found");

    /* tenant delete: gone at once, with its backends */
    r = admin(&gw, "DELETE", "/v1/admin/tenants/ra", NULL);
    EXPECT_STATUS(r, 200);
    assert_string_equal(jstr(r.json, "deleted"), "ra");
    REFUSED(admin(&gw, "GET", "/v1/admin/tenants/ra", NULL), 404, "not_found");
    r = admin(&gw, "GET", "/v1/admin/tenants", NULL);
    EXPECT_STATUS(r, 200);
    assert_null(find_in(json_object_get(r.json, "tenants"), "slug", "ra"));
    r = submit_as("ra", &s2, "rb");
    assert_true(r.status == 401 || r.status == 404);
    still_up();
}

/* ==== 2. refusals ==== */

static void
test_refusals(void **state)
{
    signer s = {0};
    char b[16];
    const char *params, *bad;
    char *tampered;
    size_t n;
    reply r;

    (void)state;
    create_tenant("fa");
    create_tenant("fb");
    add_backend_api("fa", "http://127.0.0.1:9/fa", &s, b);
    r = admin(&gw, "GET", "/v1/admin/tenants/fb/params", NULL);
    EXPECT_STATUS(r, 200);
    params = jstr(r.json, "params");
    remember(params);

    /* No token, a wrong one: 401 on a write, and nothing is written. */
    REFUSED(admin_as(&gw, NULL, "POST", "/v1/admin/tenants", "{\"tenant\": \"fx\"}"), 401, "unauthorized");
    REFUSED(admin_as(&gw, "0000000000000000000000000000000000000000000000000000000000000000", "POST",
                     "/v1/admin/tenants", "{\"tenant\": \"fx\"}"),
            401, "unauthorized");
    REFUSED(admin_as(&gw, "nope", "DELETE", "/v1/admin/tenants/fa", NULL), 401, "unauthorized");
    REFUSED(admin_as(&gw, NULL, "POST", "/v1/admin/tenants/fa/backends/b1/rotate-secret", NULL), 401, "unauthorized");
    REFUSED(admin_as(&gw, NULL, "GET", "/v1/admin/tenants/fb/params", NULL), 401, "unauthorized");
    REFUSED(admin(&gw, "GET", "/v1/admin/tenants/fx", NULL), 404, "not_found");
    EXPECT_STATUS(admin(&gw, "GET", "/v1/admin/tenants/fa", NULL), 200);

    /* Bodies: malformed, unknown field, wrong type, missing field, not an object. */
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants", "{\"tenant\": "), 400, "bad_request");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants", "{\"tenant\": \"fx\", \"color\": \"red\"}"), 400, "bad_request");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants", "{\"tenant\": 5}"), 400, "bad_request");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants", "{\"tenant\": \"fx\", \"psk\": \"yes\"}"), 400, "bad_request");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants", "{}"), 400, "bad_request");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants", "[\"fx\"]"), 400, "bad_request");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants", "{\"tenant\": \"fx\", \"tenant\": \"fy\"}"), 400, "bad_request");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants", "{\"tenant\": \"Not A Slug!\"}"), 400, "bad_request");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/fa/backends", "{}"), 400, "bad_request");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/fa/backends", "{\"url\": 7}"), 400, "bad_request");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/fa/backends", "{\"url\": \"not a url\"}"), 400, "bad_request");
    REFUSED(
        admin(&gw, "POST", "/v1/admin/tenants/fa/backends", "{\"url\": \"http://127.0.0.1:9/x\", \"secret\": \"s\"}"),
        400, "bad_request");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/fa/peers", "{\"name\": \"fb\"}"), 400, "bad_request");
    /* An unknown field next to real params: refused, and the params are not echoed. */
    REFUSED(
        admin(&gw, "POST", "/v1/admin/tenants/fa/peers", dump(json_pack("{s:s, s:s}", "params", params, "extra", "x"))),
        400, "bad_request");
    REFUSED(
        admin(&gw, "POST", "/v1/admin/tenants/fa/peers", dump(json_pack("{s:s, s:i}", "params", params, "name", 3))),
        400, "bad_request");
    r = admin(&gw, "GET", "/v1/admin/tenants", NULL);
    assert_null(find_in(json_object_get(r.json, "tenants"), "slug", "fx"));
    assert_null(find_in(json_object_get(r.json, "tenants"), "slug", "fy"));

    /* A bad slug in the path: 400 or 404, with the error shape. */
    r = admin(&gw, "GET", "/v1/admin/tenants/BAD%21slug", NULL);
    assert_true(r.status == 400 || r.status == 404);
    REFUSED(r, r.status, NULL);
    r = admin(&gw, "POST", "/v1/admin/tenants/..%2Ffa/backends", "{\"url\": \"http://127.0.0.1:9/x\"}");
    assert_true(r.status == 400 || r.status == 404);
    REFUSED(r, r.status, NULL);
    r = admin(&gw, "POST", "/v1/admin/tenants/fa/backends/NOT%20AN%20ID/rotate-secret", NULL);
    assert_true(r.status == 400 || r.status == 404);
    REFUSED(r, r.status, NULL);

    /* Unknown tenant, backend, peer, epoch: 404. */
    REFUSED(admin(&gw, "GET", "/v1/admin/tenants/nosuch", NULL), 404, "not_found");
    REFUSED(admin(&gw, "DELETE", "/v1/admin/tenants/nosuch", NULL), 404, "not_found");
    REFUSED(admin(&gw, "GET", "/v1/admin/tenants/nosuch/backends", NULL), 404, "not_found");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/nosuch/backends", "{\"url\": \"http://127.0.0.1:9/x\"}"), 404,
            "not_found");
    REFUSED(admin(&gw, "GET", "/v1/admin/tenants/nosuch/params", NULL), 404, "not_found");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/nosuch/keys/rotate", NULL), 404, "not_found");
    REFUSED(admin(&gw, "DELETE", "/v1/admin/tenants/fa/backends/b99", NULL), 404, "not_found");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/fa/backends/b99/rotate-secret", NULL), 404, "not_found");
    REFUSED(admin(&gw, "DELETE", "/v1/admin/tenants/fa/peers/nobody", NULL), 404, "not_found");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/fa/keys/9/retire", NULL), 404, "not_found");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/nosuch/peers", dump(json_pack("{s:s}", "params", params))), 404,
            "not_found");

    /* A duplicate tenant: 409 exists, the first one untouched. */
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants", "{\"tenant\": \"fa\"}"), 409, "exists");
    r = admin(&gw, "GET", "/v1/admin/tenants/fa/backends", NULL);
    EXPECT_STATUS(r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "backends")), 1);

    /* The sending key cannot be retired, even after a rotation made it 2. */
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/fa/keys/1/retire", NULL), 409, "sending_key");
    EXPECT_STATUS(admin(&gw, "POST", "/v1/admin/tenants/fa/keys/rotate", NULL), 200);
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/fa/keys/2/retire", NULL), 409, "sending_key");
    r = admin(&gw, "POST", "/v1/admin/tenants/fa/keys/0/retire", NULL);
    assert_true(r.status == 400 || r.status == 404);
    REFUSED(r, r.status, NULL);
    r = admin(&gw, "POST", "/v1/admin/tenants/fa/keys/x1/retire", NULL);
    assert_true(r.status == 400 || r.status == 404);
    REFUSED(r, r.status, NULL);

    /* Tampered parameters: one character in the middle changed, within base64's alphabet. */
    n = strlen(params);
    tampered = strdup(params);
    assert_non_null(tampered);
    tampered[n / 2] = tampered[n / 2] == 'A' ? 'B' : 'A';
    bad = text_of(blob_str(tampered));
    free(tampered);
    remember(bad);
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/fa/peers", dump(json_pack("{s:s}", "params", bad))), 400,
            "bad_params");
    /* Truncated, and not parameters at all. */
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/fa/peers",
                  dump(json_pack("{s:s}", "params", text_of(blob_of(params, n - 10))))),
            400, "bad_params");
    r = admin(&gw, "POST", "/v1/admin/tenants/fa/peers", "{\"params\": \"hello\"}");
    assert_true(strcmp(r.code, "bad_params") == 0 || strcmp(r.code, "bad_request") == 0);
    REFUSED(r, 400, NULL);
    r = admin(&gw, "GET", "/v1/admin/tenants/fa/peers", NULL);
    EXPECT_STATUS(r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "peers")), 0);

    /* A wrong method on a route: 405. */
    REFUSED(admin(&gw, "PUT", "/v1/admin/tenants", "{}"), 405, "method_not_allowed");
    REFUSED(admin(&gw, "PATCH", "/v1/admin/tenants/fa", "{}"), 405, "method_not_allowed");
    REFUSED(admin(&gw, "GET", "/v1/admin/tenants/fa/keys/rotate", NULL), 405, "method_not_allowed");
    REFUSED(admin(&gw, "DELETE", "/v1/admin/tenants/fa/params", NULL), 405, "method_not_allowed");
    REFUSED(admin(&gw, "GET", "/v1/admin/tenants/fa/backends/b1/rotate-secret", NULL), 405, "method_not_allowed");

    /* The admin routes are not on the public listener. */
    r = gw_http(&gw, "GET", "/v1/admin/tenants", NULL, NULL, 0);
    assert_true(r.status == 404 || r.status == 401 || r.status == 405);
    assert_null(strstr(text_of(r.body), "\"fa\""));

    /* After all that, fa is as it was and its secret still signs. */
    EXPECT_SIGNATURE_OK(submit_as("fa", &s, "fb"));
    still_up();
}

/* ==== 2b. end-to-end mode: the backend holds the tenant's private key ==== */

/* The keys of slug as the admin API lists them. */
static json_t *
keys_of(const char *slug)
{
    reply r = admin(&gw, "GET", path_of("/v1/admin/tenants/%s/keys", slug, NULL), NULL);

    EXPECT_STATUS(r, 200);
    return json_object_get(r.json, "keys");
}

/* The X25519 public key (hex) of a private key given as hex. */
static const char *
public_of(const char *priv_hex)
{
    uint8_t priv[NG_KEY_BYTES];
    char hex[2 * NG_KEY_BYTES + 1];
    ng_keypair kp;

    assert_int_equal(ng_hex_decode(priv, sizeof priv, priv_hex, strlen(priv_hex)), NG_OK);
    assert_int_equal(ng_keypair_from_private(&kp, priv), NG_OK);
    ng_hex_encode(hex, sizeof hex, kp.pub, sizeof kp.pub);
    ng_keypair_wipe(&kp);
    sodium_memzero(priv, sizeof priv);
    return text_of(blob_str(hex));
}

static const char *
fresh_public(void)
{
    char hex[2 * NG_KEY_BYTES + 1];
    ng_keypair kp;

    ng_keypair_generate(&kp);
    ng_hex_encode(hex, sizeof hex, kp.pub, sizeof kp.pub);
    ng_keypair_wipe(&kp);
    return text_of(blob_str(hex));
}

static void
test_key_export_import(void **state)
{
    const char *params, *pub1, *priv, *imported, *line, *why;
    char want[512];
    signer s = {0};
    json_t *keys, *k;
    result res;
    reply r;
    size_t i;
    char b[16];

    (void)state;
    create_tenant("ka");
    r = admin(&gw, "POST", "/v1/admin/tenants", dump(json_pack("{s:s, s:b}", "tenant", "kb", "allow_anonymous", 1)));
    EXPECT_STATUS(r, 201);
    add_backend_api("ka", "http://127.0.0.1:9/ka", &s, b);
    r = admin(&gw, "GET", "/v1/admin/tenants/kb/params", NULL);
    EXPECT_STATUS(r, 200);
    params = jstr(r.json, "params");
    remember(params);
    EXPECT_STATUS(
        admin(&gw, "POST", "/v1/admin/tenants/ka/peers", dump(json_pack("{s:s, s:s}", "params", params, "name", "kb"))),
        201);
    EXPECT_STATUS(submit_with("ka", &s, "kb", NULL), 202);
    EXPECT_STATUS(submit_with("ka", &s, "kb", "X"), 202);
    pub1 = jstr(json_array_get(keys_of("ka"), 0), "public");

    /* export: 200 with the private key of the newest epoch, which is then held by the backend only */
    r = admin(&gw, "POST", "/v1/admin/tenants/ka/keys/export", NULL);
    EXPECT_STATUS(r, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "epoch")), 1);
    priv = jstr(r.json, "private_key");
    assert_true(is_lower_hex(priv, 64));
    remember(priv);
    assert_string_equal(public_of(priv), pub1);
    assert_string_equal(jstr(r.json, "public_key"), pub1);
    assert_string_equal(jstr(r.json, "key_id"), jstr(json_array_get(keys_of("ka"), 0), "key_id"));
    k = json_array_get(keys_of("ka"), 0);
    assert_true(json_is_true(json_object_get(k, "held_by_backend")));
    assert_true(json_is_true(json_object_get(k, "sending")));
    assert_null(strstr(text_of(admin(&gw, "GET", "/v1/admin/tenants/ka", NULL).body), priv));
    /* once only */
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/ka/keys/export", NULL), 409, "key_held_by_backend");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/nosuch/keys/export", NULL), 404, "not_found");
    REFUSED(admin_as(&gw, NULL, "POST", "/v1/admin/tenants/kb/keys/export", NULL), 401, "unauthorized");
    REFUSED(admin(&gw, "GET", "/v1/admin/tenants/kb/keys/export", NULL), 405, "method_not_allowed");

    /* At once the gateway no longer seals as ka: K and X (asked for, or the peer's choice) are 409, N still works. */
    r = submit_with("ka", &s, "kb", "X");
    REFUSED(r, 409, "key_held_by_backend");
    why = json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
    assert_non_null(strstr(why, "/v1/tenants/ka/parcels"));
    REFUSED(submit_with("ka", &s, "kb", "K"), 409, "key_held_by_backend");
    REFUSED(submit_with("ka", &s, "kb", NULL), 409, "key_held_by_backend");
    EXPECT_STATUS(submit_with("ka", &s, "kb", "N"), 202);

    /* import: the backend's public key, a new sending epoch held by the backend */
    imported = fresh_public();
    r = admin(&gw, "POST", "/v1/admin/tenants/ka/keys/import", dump(json_pack("{s:s}", "public_key", imported)));
    EXPECT_STATUS(r, 201);
    assert_int_equal(json_integer_value(json_object_get(r.json, "epoch")), 2);
    assert_true(is_lower_hex(jstr(r.json, "key_id"), 64));
    keys = keys_of("ka");
    assert_int_equal(json_array_size(keys), 2);
    k = json_array_get(keys, 1);
    assert_string_equal(jstr(k, "public"), imported);
    assert_string_equal(jstr(k, "key_id"), jstr(r.json, "key_id"));
    assert_true(json_is_true(json_object_get(k, "held_by_backend")));
    assert_true(json_is_true(json_object_get(k, "sending")));
    REFUSED(submit_with("ka", &s, "kb", "X"), 409, "key_held_by_backend");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/ka/keys/import", "{}"), 400, "bad_request");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/ka/keys/import", "{\"public_key\": 5}"), 400, "bad_request");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/ka/keys/import", "{\"public_key\": \"zz\"}"), 400, "bad_request");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/ka/keys/import",
                  dump(json_pack("{s:s, s:s}", "public_key", fresh_public(), "extra", "x"))),
            400, "bad_request");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/ka/keys/import",
                  "{\"public_key\": \"0000000000000000000000000000000000000000000000000000000000000000\"}"),
            400, "bad_request");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/kb/keys/import", dump(json_pack("{s:s}", "public_key", imported))),
            409, "exists");
    REFUSED(admin(&gw, "POST", "/v1/admin/tenants/nosuch/keys/import",
                  dump(json_pack("{s:s}", "public_key", fresh_public()))),
            404, "not_found");
    assert_int_equal(json_array_size(keys_of("kb")), 1);

    /* The CLI, through the gateway: export refused while the newest is the backend's, then after a rotation. */
    res = ng(NULL, ARGS("key", "export", "ka", "--config", gw.cfg));
    EXPECT_EXIT(res, 1);
    assert_int_equal(res.out->len, 0);
    assert_non_null(strstr(text_of(res.err), "held by the tenant's backend"));
    GCLI(&gw, "key", "rotate", "ka");
    EXPECT_STATUS(submit_with("ka", &s, "kb", "X"), 202); /* the gateway's key again */
    res = ng(NULL, ARGS("key", "export", "ka", "--config", gw.cfg));
    EXPECT_EXIT(res, 0);
    line = text_of(res.out);
    snprintf(want, sizeof want, "private key of tenant ka, epoch 3 (shown once; give it to the backend): ");
    assert_true(strncmp(line, want, strlen(want)) == 0);
    priv = text_of(blob_of(line + strlen(want), 64));
    assert_true(is_lower_hex(priv, 64));
    remember(priv);
    k = json_array_get(keys_of("ka"), 2);
    assert_int_equal(json_integer_value(json_object_get(k, "epoch")), 3);
    assert_true(json_is_true(json_object_get(k, "held_by_backend")));
    assert_string_equal(public_of(priv), jstr(k, "public"));
    snprintf(want, sizeof want, "public key %s, key id %s\n", jstr(k, "public"), jstr(k, "key_id"));
    assert_non_null(strstr(line, want));
    assert_non_null(strstr(line, "epoch 3 is now held only by the backend: the gateway can no longer open parcels "
                                 "sealed to it"));
    REFUSED(submit_with("ka", &s, "kb", "X"), 409, "key_held_by_backend");

    imported = fresh_public();
    res = ng(NULL, ARGS("key", "import", "ka", "--public-key", imported, "--config", gw.cfg));
    EXPECT_EXIT(res, 0);
    assert_true(strncmp(text_of(res.out), "tenant ka now sends with epoch 4, key id ", 41) == 0);
    k = json_array_get(keys_of("ka"), 3);
    assert_string_equal(jstr(k, "public"), imported);
    assert_non_null(strstr(text_of(res.out), jstr(k, "key_id")));
    /* the same key again is the gateway's refusal; a malformed one, the command's */
    res = ng(NULL, ARGS("key", "import", "ka", "--public-key", imported, "--config", gw.cfg));
    EXPECT_EXIT(res, 1);
    assert_non_null(strstr(text_of(res.err), "already a live key"));
    EXPECT_EXIT(ng(NULL, ARGS("key", "import", "ka", "--public-key", "abcd", "--config", gw.cfg)), 2);
    EXPECT_EXIT(ng(NULL, ARGS("key", "import", "ka", "--config", gw.cfg)), 2);
    EXPECT_EXIT(ng(NULL, ARGS("key", "export", "ka", "--public-key", imported, "--config", gw.cfg)), 2);

    /* key list: who holds each private key (1 and 3 exported, 2 and 4 imported; 5 made by the gateway) */
    keys = gcli_json(&gw, ARGS("key", "list", "ka", "--json"));
    assert_int_equal(json_array_size(keys), 4);
    json_array_foreach(keys, i, k) assert_true(json_is_true(json_object_get(k, "held_by_backend")));
    assert_null(strstr(text_of(GCLI(&gw, "key", "list", "ka")), "gateway"));
    GCLI(&gw, "key", "rotate", "ka");
    line = text_of(GCLI(&gw, "key", "list", "ka"));
    assert_non_null(strstr(line, "HELD BY"));
    assert_non_null(strstr(line, "backend"));
    assert_non_null(strstr(line, "gateway"));
    keys = gcli_json(&gw, ARGS("key", "list", "ka", "--json"));
    assert_true(json_is_false(json_object_get(json_array_get(keys, 4), "held_by_backend")));
    /* An export that could not be written out is a failure that says the key is lost, not a silent success. */
    {
        char cmd[4 * PATH_MAX], err_path[PATH_MAX];
        int st;

        snprintf(err_path, sizeof err_path, "%s/export.err", dir);
        snprintf(cmd, sizeof cmd, "'%s' key export ka --config '%s' >/dev/full 2>'%s'", ng_bin, gw.cfg, err_path);
        st = system(cmd);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 2);
        assert_non_null(strstr(text_of(slurp(err_path)), "could not be written out, so it is lost: run key rotate"));
        assert_true(json_is_true(json_object_get(json_array_get(keys_of("ka"), 4), "held_by_backend")));
    }
    /* held epochs retire like the others */
    EXPECT_STATUS(admin(&gw, "POST", "/v1/admin/tenants/ka/keys/1/retire", NULL), 200);
    EXPECT_STATUS(admin(&gw, "POST", "/v1/admin/tenants/ka/keys/2/retire", NULL), 200);
    assert_int_equal(json_array_size(keys_of("ka")), 3);
    still_up();
}

/* ==== 3. the CLI through the running gateway, then offline ==== */

/* The names of a JSON object's fields, sorted, as one string. */
static const char *
shape_of(const json_t *j)
{
    const char *names[64], *k;
    blob *b = blob_new();
    size_t n = 0, i, x;
    json_t *v;

    assert_true(json_is_object(j));
    json_object_foreach((json_t *)j, k, v)
    {
        assert_true(n < 64);
        names[n++] = k;
    }
    for (i = 1; i < n; i++)
        for (x = i; x > 0 && strcmp(names[x - 1], names[x]) > 0; x--) {
            const char *t = names[x];

            names[x] = names[x - 1];
            names[x - 1] = t;
        }
    for (i = 0; i < n; i++) {
        blob_append(b, names[i], strlen(names[i]));
        blob_append(b, ",", 1);
    }
    return text_of(b);
}

/* `backend add`'s two lines: the id and the secret. */
static void
cli_backend_add(const char *slug, const char *url, signer *s, char id[16])
{
    blob *out = GCLI(&gw, "backend", "add", slug, "--url", url);
    const char *p = strstr(text_of(out), "whsec_");
    char want[256];
    size_t n;

    snprintf(want, sizeof want, "backend b");
    assert_true(strncmp(text_of(out), want, strlen(want)) == 0);
    snprintf(want, sizeof want,
             " of tenant %s: %s (webhook, opened)\nwebhook secret (shown once, give it to the backend): whsec_", slug,
             url);
    assert_non_null(strstr(text_of(out), want));
    assert_non_null(p);
    signer_whsec(s, p, strcspn(p, " \t\r\n"));
    remember(s->whsec);
    n = strcspn(text_of(out) + 8, " ");
    assert_true(n > 0 && n < 15);
    memcpy(id, text_of(out) + 8, n);
    id[n] = '\0';
}

/* `peer import TENANT - --name NAME` with the params on stdin; its stdout. */
static const char *
cli_import(const char *slug, const char *params, const char *name, const char *fp)
{
    char want[256];
    result res = ng(blob_str(params), ARGS("peer", "import", slug, "-", "--name", name, "--config", gw.cfg));

    EXPECT_EXIT(res, 0);
    snprintf(want, sizeof want,
             "imported peer %s into tenant %s\nfingerprint %s: compare it with what the exporter saw\n", name, slug,
             fp);
    assert_string_equal(text_of(res.out), want);
    return text_of(res.out);
}

/* The fingerprint `peer export` writes on stderr. */
static const char *
cli_export(const char *slug, const char **fp)
{
    result res = ng(NULL, ARGS("peer", "export", slug, "--config", gw.cfg));
    const char *f;

    EXPECT_EXIT(res, 0);
    assert_true(strncmp(text_of(res.out), "ngcp1:", 6) == 0);
    assert_int_equal(strcspn(text_of(res.out), "\n") + 1, res.out->len);
    f = strstr(text_of(res.err), "fingerprint ");
    assert_non_null(f);
    f += strlen("fingerprint ");
    *fp = text_of(blob_of(f, strcspn(f, ":")));
    remember(text_of(blob_of(res.out->data, res.out->len - 1)));
    return text_of(blob_of(res.out->data, res.out->len - 1));
}

/* How many request lines of the log have this method, route and status. */
static int
logged(const char *method, const char *route, const char *status)
{
    blob *log = slurp(gw.log);
    const char *p = log != NULL ? text_of(log) : "";
    int n = 0;

    while (*p != '\0') {
        size_t len = strcspn(p, "\n");
        json_t *j = json_loadb(p, len, 0, NULL);
        const char *m = json_string_value(json_object_get(j, "method"));
        const char *r = json_string_value(json_object_get(j, "route"));
        const char *s = json_string_value(json_object_get(j, "status"));

        if (m != NULL && r != NULL && s != NULL && strcmp(m, method) == 0 && strcmp(r, route) == 0 &&
            strcmp(s, status) == 0)
            n++;
        json_decref(j);
        p += len;
        if (*p == '\n')
            p++;
    }
    return n;
}

static void
test_cli_online(void **state)
{
    char key[PATH_MAX], key_away[PATH_MAX + 8], b[16], b2[16];
    const char *params, *fp, *online_shape, *log;
    signer s = {0}, s2 = {0};
    json_t *j, *e;
    blob *out;
    size_t i;
    int n_create, n_backend, n_params, n_peers, n_rotate;

    (void)state;
    snprintf(key, sizeof key, "%s/vault.key", gw.data);
    snprintf(key_away, sizeof key_away, "%s.away", key);
    assert_true(exists(key));

    n_create = logged("POST", "/v1/admin/tenants", "201");
    n_backend = logged("POST", "/v1/admin/tenants/*/backends", "201");
    n_params = logged("GET", "/v1/admin/tenants/*/params", "200");
    n_peers = logged("POST", "/v1/admin/tenants/*/peers", "201");
    n_rotate = logged("POST", "/v1/admin/tenants/*/keys/rotate", "200");

    /* Online: the same outputs as offline, and the gateway sees each change at once. */
    j = gcli_json(&gw, ARGS("tenant", "create", "ca"));
    assert_string_equal(jstr(j, "slug"), "ca");
    online_shape = shape_of(j);
    GCLI(&gw, "tenant", "create", "cb");
    EXPECT_STATUS(admin(&gw, "GET", "/v1/admin/tenants/ca", NULL), 200);
    cli_backend_add("ca", "http://127.0.0.1:9/ca", &s, b);
    EXPECT_REPLY(submit_as("ca", &s, "cb"), 404, "unknown_peer");
    params = cli_export("cb", &fp);
    cli_import("ca", params, "cb", fp);
    EXPECT_STATUS(submit_as("ca", &s, "cb"), 202);
    out = GCLI(&gw, "key", "rotate", "ca");
    assert_string_equal(text_of(out),
                        "tenant ca now sends with epoch 2; older keys still open parcels until retired\n");
    EXPECT_STATUS(admin(&gw, "POST", "/v1/admin/tenants/ca/keys/1/retire", NULL), 200);

    /* The gateway logged each as an admin request. */
    assert_int_equal(logged("POST", "/v1/admin/tenants", "201"), n_create + 2);
    assert_int_equal(logged("POST", "/v1/admin/tenants/*/backends", "201"), n_backend + 1);
    assert_int_equal(logged("GET", "/v1/admin/tenants/*/params", "200"), n_params + 1);
    assert_int_equal(logged("POST", "/v1/admin/tenants/*/peers", "201"), n_peers + 1);
    assert_int_equal(logged("POST", "/v1/admin/tenants/*/keys/rotate", "200"), n_rotate + 1);

    /* Without the master key on disk, the CLI still works: the gateway holds the key. */
    assert_int_equal(rename(key, key_away), 0);
    GCLI(&gw, "tenant", "create", "cc");
    cli_backend_add("cc", "http://127.0.0.1:9/cc", &s2, b2);
    EXPECT_SIGNATURE_OK(submit_as("cc", &s2, "ca"));
    params = cli_export("ca", &fp);
    cli_import("cc", params, "ca", fp);
    EXPECT_STATUS(submit_as("cc", &s2, "ca"), 202);
    out = GCLI(&gw, "key", "rotate", "cc");
    assert_string_equal(text_of(out),
                        "tenant cc now sends with epoch 2; older keys still open parcels until retired\n");
    out = GCLI(&gw, "tenant", "list");
    assert_non_null(strstr(text_of(out), "cc"));

    /* Stopped: offline, with the key back, the CLI reads what the online one wrote. */
    stop_gateway(&gw);
    log = text_of(slurp(gw.log));
    for (i = 0; i < n_secrets; i++)
        if (strstr(log, secrets[i]) != NULL)
            fail_msg("the log holds a secret: %.60s", secrets[i]);
    assert_null(strstr(log, "whsec_"));
    assert_int_equal(logged("POST", "/v1/admin/tenants", "201"), n_create + 3);
    /* Offline without the key: refused (so the commands above did go online). */
    {
        result res = ng(NULL, ARGS("tenant", "show", "ca", "--config", gw.cfg));

        assert_int_equal(res.sig, 0);
        assert_int_not_equal(res.status, 0);
        assert_int_equal(res.out->len, 0);
    }
    assert_int_equal(rename(key_away, key), 0);

    j = gcli_json(&gw, ARGS("tenant", "show", "ca", "--json"));
    assert_int_equal(json_array_size(json_object_get(j, "keys")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(j, "keys"), 0), "epoch")), 2);
    assert_non_null(find_in(json_object_get(j, "backends"), "id", b));
    assert_non_null(e = find_in(json_object_get(j, "peers"), "name", "cb"));
    j = gcli_json(&gw, ARGS("tenant", "show", "cc", "--json"));
    assert_non_null(find_in(json_object_get(j, "backends"), "id", b2));
    assert_non_null(find_in(json_object_get(j, "peers"), "name", "ca"));
    j = gcli_json(&gw, ARGS("peer", "list", "ca", "--json"));
    assert_non_null(find_in(j, "name", "cb"));
    assert_null(strstr(text_of(GCLI(&gw, "backend", "list", "ca")), "whsec_"));

    /* The same commands offline, with the same outputs. */
    j = gcli_json(&gw, ARGS("tenant", "create", "cd"));
    assert_string_equal(jstr(j, "slug"), "cd");
    assert_string_equal(shape_of(j), online_shape);
    cli_backend_add("cd", "http://127.0.0.1:9/cd", &s, b);
    params = cli_export("cd", &fp);
    cli_import("ca", params, "cd", fp);
    out = GCLI(&gw, "key", "rotate", "ca");
    assert_string_equal(text_of(out),
                        "tenant ca now sends with epoch 3; older keys still open parcels until retired\n");
    /* end-to-end, offline: the same outputs as through the gateway */
    j = gcli_json(&gw, ARGS("key", "export", "cd", "--json"));
    assert_int_equal(json_integer_value(json_object_get(j, "epoch")), 1);
    remember(jstr(j, "private_key"));
    assert_string_equal(public_of(jstr(j, "private_key")), jstr(j, "public_key"));
    out = GCLI(&gw, "key", "import", "cd", "--public-key", fresh_public());
    assert_true(strncmp(text_of(out), "tenant cd now sends with epoch 2, key id ", 41) == 0);
    EXPECT_EXIT(ng(NULL, ARGS("key", "export", "cd", "--config", gw.cfg)), 1);

    /* And the gateway, started again, has all of it. */
    start_gateway(&gw);
    EXPECT_REPLY(submit_as("cd", &s, "ca"), 404, "unknown_peer");
    EXPECT_STATUS(submit_as("cc", &s2, "ca"), 202);
    e = admin(&gw, "GET", "/v1/admin/tenants/ca/peers", NULL).json;
    assert_non_null(find_in(json_object_get(e, "peers"), "name", "cd"));
    e = keys_of("cd");
    assert_int_equal(json_array_size(e), 2);
    assert_true(json_is_true(json_object_get(json_array_get(e, 0), "held_by_backend")));
    assert_true(json_is_true(json_object_get(json_array_get(e, 1), "held_by_backend")));
    stop_gateway(&gw);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_routes, test_teardown),
        cmocka_unit_test_teardown(test_refusals, test_teardown),
        cmocka_unit_test_teardown(test_key_export_import, test_teardown),
        cmocka_unit_test_teardown(test_cli_online, test_teardown),
    };

    if (suite_init() != 0)
        return 1;
    return cmocka_run_group_tests_name("admin", tests, group_setup, group_teardown);
}

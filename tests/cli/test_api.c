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
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>

#include "cli_harness.h"

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

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
    /* Generous: the binary may be an ASan build on a loaded 2-core machine. */
    HTTP_TIMEOUT_MS = 20000,
    START_TIMEOUT_MS = 30000,
    STOP_TIMEOUT_MS = 20000,
    ID_HEX = 2 * NG_PARCEL_MESSAGE_ID_BYTES,
    KID_HEX = 2 * NG_KEY_ID_BYTES,
    TOKEN_HEX = 64,
    MAX_SENT = 64,
    MAX_PARCELS = 256,
    MAX_BODIES = 64,
    CURSOR_BYTES = 64,
};

/* ---- the suite's state ---- */

static char dir[PATH_MAX / 2], cfg[PATH_MAX], logpath[PATH_MAX], admin_sock[PATH_MAX];
static int port;
static pid_t gw;
/* The redis-server this suite stopped with SIGSTOP, to be resumed whatever happens. */
static pid_t stopped_redis;
/* JSON documents of the running test, released by its teardown. */
static json_t *keep;
/* A random tag in every body, so that the log search cannot match by chance. */
static char tag[17];

typedef struct backend {
    char whsec[80];
    uint8_t secret[NG_WEBHOOK_SECRET_MAX];
    size_t secret_len;
    uint8_t sk[crypto_sign_SECRETKEYBYTES]; /* v1a backends: signs instead of the secret */
    int v1a;
} backend;

static backend alice_v1, alice_ed = {.v1a = 1}, carol_v1;
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
static struct {
    const char *code;
    long n;
} refused[] = {
    {"missing_signature", 0}, {"stale_timestamp", 0},      {"bad_signature", 0},          {"bad_signature_headers", 0},
    {"replayed", 0},          {"unknown_tenant", 0},       {"unknown_peer", 0},           {"bad_request", 0},
    {"bad_ttl", 0},           {"pattern_not_accepted", 0}, {"batch_too_large", 0},        {"idempotency_mismatch", 0},
    {"store_unavailable", 0}, {"bad_idempotency_key", 0},  {"unsupported_media_type", 0},
};

/* Bodies of messages the tests send; none of them may reach the log. */
static const char *
body_text(const char *what)
{
    assert_true(n_bodies < MAX_BODIES);
    snprintf(bodies[n_bodies], sizeof bodies[n_bodies], "%s %s, for bob's eyes only", what, tag);
    return bodies[n_bodies++];
}

/* ---- time, processes ---- */

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static uint64_t
wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

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

static int
free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), p = -1;

    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        p = ntohs(a.sin_port);
    close(fd);
    return p;
}

static pid_t
redis_pid(void)
{
    char path[PATH_MAX + 32];
    blob *b;

    snprintf(path, sizeof path, "%s/data/redis/redis.pid", dir);
    b = slurp(path);
    return b == NULL ? 0 : (pid_t)strtol(text_of(b), NULL, 10);
}

/* ---- HTTP ---- */

typedef struct reply {
    long status; /* -1: nothing answered */
    blob *body, *head;
    json_t *json;     /* the body, if it is JSON */
    const char *code; /* error.code, or "" */
} reply;

/* The last request, for failure messages. */
static char last_req[256];

static size_t
collect(char *p, size_t size, size_t n, void *ctx)
{
    blob_append(ctx, p, size * n);
    return size * n;
}

static json_t *
kept(json_t *j)
{
    if (j != NULL)
        json_array_append_new(keep, j);
    return j;
}

static const char *
jstr(const json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));

    if (s == NULL)
        fail_msg("%s: no string \"%s\" in the answer", last_req, key);
    return s;
}

/* One request to the public listener; headers are "Name: value" lines. */
static reply
http(const char *method, const char *path, const char *const *headers, const void *data, size_t len)
{
    char url[512];
    struct curl_slist *h = NULL;
    reply r = {-1, blob_new(), blob_new(), NULL, ""};
    CURL *c = curl_easy_init();
    size_t i;

    assert_non_null(c);
    snprintf(last_req, sizeof last_req, "%s %.200s", method, path);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    /* No 100-continue round trip, and no form content type curl would add on its own. */
    h = curl_slist_append(h, "Expect:");
    for (i = 0; headers != NULL && headers[i] != NULL; i++)
        h = curl_slist_append(h, headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)HTTP_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r.head);
    if (data != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, data);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    r.json = kept(json_loadb(text_of(r.body), r.body->len, 0, NULL));
    if (r.json != NULL) {
        const char *code = json_string_value(json_object_get(json_object_get(r.json, "error"), "code"));
        r.code = code != NULL ? code : "";
    }
    return r;
}

#define GET(path) http("GET", (path), NULL, NULL, 0)

/* A response header's value (in a blob), or NULL. */
static const char *
header_of(const reply *r, const char *name)
{
    const char *line = text_of(r->head);
    size_t n = strlen(name);

    while (line != NULL && *line != '\0') {
        const char *end = strstr(line, "\r\n");
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);

        if (len > n && strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;

            while (*v == ' ')
                v++;
            return text_of(blob_of(v, len - (size_t)(v - line)));
        }
        line = end != NULL ? end + 2 : NULL;
    }
    return NULL;
}

#define EXPECT_REPLY(r, status, code) expect_reply_at((r), (status), (code), __LINE__)

/* The status and, for an error, its code: a refusal for another reason must not pass. */
static void
expect_reply_at(reply r, long status, const char *code, int line)
{
    if (r.status != status || (code != NULL && strcmp(r.code, code) != 0))
        fail_msg("line %d: %s: got %ld \"%s\", expected %ld \"%s\"; body: %.300s", line, last_req, r.status, r.code,
                 status, code != NULL ? code : "", text_of(r.body));
    if (status >= 400 && (r.json == NULL || r.code[0] == '\0' ||
                          !json_is_string(json_object_get(json_object_get(r.json, "error"), "message"))))
        fail_msg("line %d: %s: %ld without {\"error\": {\"code\", \"message\"}}: %.300s", line, last_req, r.status,
                 text_of(r.body));
}

/* ---- signed submissions ---- */

/* A request to POST /v1/tenants/{tenant}/messages; zero fields take the defaults named. */
typedef struct msg_req {
    const char *tenant; /* alice */
    const backend *by;  /* alice_v1 */
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

static void
fresh_id(char out[40])
{
    uint8_t r[12];
    char hex[25];

    randombytes_buf(r, sizeof r);
    ng_hex_encode(hex, sizeof hex, r, sizeof r);
    snprintf(out, 40, "msg_%s", hex);
}

/* "v1,<base64>" or "v1a,<base64>" by b, as a backend's Standard Webhooks library would send it. */
static void
sign(char out[NG_WEBHOOK_SIGNATURE_BYTES], const backend *b, const char *id, int64_t ts, const void *body, size_t len)
{
    if (b->v1a)
        assert_int_equal(ng_webhook_sign_v1a(out, b->sk, id, ts, body, len), NG_OK);
    else
        assert_int_equal(ng_webhook_sign_v1(out, b->secret, b->secret_len, id, ts, body, len), NG_OK);
}

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

static void
refused_add(const char *code)
{
    size_t i;

    for (i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (strcmp(refused[i].code, code) == 0)
            refused[i].n++;
}

/* Enters a 202 into the ledger: each message stored once, and alice's to bob in order. */
static void
ledger_add(const char *tenant, const reply *r)
{
    json_t *list = json_object_get(r->json, "messages"), *m;
    size_t i, n = json_is_array(list) ? json_array_size(list) : 1;

    if (header_of(r, "idempotent-replayed") != NULL)
        return;
    accepted += (long)n;
    for (i = 0; i < n; i++) {
        m = json_is_array(list) ? json_array_get(list, i) : r->json;
        if (strcmp(tenant, "alice") != 0 || strcmp(jstr(m, "recipient"), "bob") != 0)
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
    const char *tenant = q->tenant != NULL ? q->tenant : "alice";
    const backend *by = q->by != NULL ? q->by : &alice_v1;
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
        char line[NG_WEBHOOK_HEADER_MAX + 64];

        snprintf(line, sizeof line, "webhook-id: %s", id);
        h[n++] = text_of(blob_str(line));
        if (q->timestamp != NULL)
            snprintf(line, sizeof line, "webhook-timestamp: %s", q->timestamp);
        else
            snprintf(line, sizeof line, "webhook-timestamp: %lld", (long long)ts);
        h[n++] = text_of(blob_str(line));
        snprintf(line, sizeof line, "webhook-signature: %s", q->signature != NULL ? q->signature : sig);
        h[n++] = text_of(blob_str(line));
    }
    for (i = 0; q->extra != NULL && q->extra[i] != NULL; i++) {
        assert_true(n < sizeof h / sizeof h[0] - 1);
        h[n++] = q->extra[i];
    }
    h[n] = NULL;
    snprintf(path, sizeof path, "/v1/tenants/%s/messages", tenant);
    r = http("POST", path, h, q->body, len);
    if (r.status == 202)
        ledger_add(tenant, &r);
    else if (r.code[0] != '\0')
        refused_add(r.code);
    return r;
}

/* A JSON text (in a blob) of a document built here. */
static const char *
dump(json_t *doc)
{
    char *s;
    const char *t;

    assert_non_null(doc);
    s = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    assert_non_null(s);
    t = text_of(blob_str(s));
    free(s);
    return t;
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
    return http("GET", path, token != NULL ? h : NULL, NULL, 0);
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

#define CLI(...) cli(ARGS(__VA_ARGS__, "--config", cfg))

static blob *
cli(const char *const *args)
{
    result r = ng(NULL, args);

    EXPECT_EXIT(r, 0);
    return r.out;
}

static json_t *
cli_json(const char *const *args)
{
    blob *out = cli(args);
    json_t *j = kept(json_loadb(text_of(out), out->len, 0, NULL));

    if (j == NULL)
        fail_msg("`%s` printed no JSON: %s", last_cmd, text_of(out));
    return j;
}

/* The newest key id of a tenant: what peers seal to. */
static void
key_id_of(const char *slug, char out[KID_HEX + 1])
{
    json_t *keys = json_object_get(cli_json(ARGS("tenant", "show", slug, "--json", "--config", cfg)), "keys");
    json_t *k = json_array_get(keys, json_array_size(keys) - 1);
    const char *s = json_string_value(json_object_get(k, "key_id"));

    assert_true(is_lower_hex(s, KID_HEX));
    memcpy(out, s, KID_HEX + 1);
}

/* The one line of `peer export`, without its newline. */
static const char *
export_params(const char *slug, const char *outbox)
{
    blob *out = outbox != NULL ? CLI("peer", "export", slug, "--outbox", outbox) : CLI("peer", "export", slug);

    assert_true(out->len > 7 && strncmp(text_of(out), "ngcp1:", 6) == 0);
    return text_of(blob_of(out->data, strcspn(text_of(out), "\n")));
}

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
add_backend(backend *b, const char *slug, const char *url, const char *whpk)
{
    blob *out = whpk != NULL ? CLI("backend", "add", slug, "--url", url, "--public-key", whpk)
                             : CLI("backend", "add", slug, "--url", url);
    const char *p = strstr(text_of(out), "whsec_");
    size_t n;

    assert_non_null(p);
    n = strcspn(p, " \t\r\n");
    assert_true(n < sizeof b->whsec);
    memcpy(b->whsec, p, n);
    b->whsec[n] = '\0';
    assert_int_equal(ng_webhook_secret_parse(b->whsec, b->secret, sizeof b->secret, &b->secret_len), NG_OK);
}

/* `noisegate open --tenant bob` on a parcel: bob's key from the vault; the body on stdout, the report on stderr. */
static result
open_as_bob(const parcel *p)
{
    char path[PATH_MAX + 16];
    result r;

    snprintf(path, sizeof path, "%s/parcel.ngp", dir);
    put_file(path, p->bytes->data, p->bytes->len);
    r = ng(NULL, ARGS("open", "--tenant", "bob", "--config", cfg, "--json", path));
    EXPECT_EXIT(r, 0);
    return r;
}

/* ---- the gateway ---- */

static void
start_gateway(void)
{
    const char *argv[] = {ng_bin, "serve", "--config", cfg, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    long t0 = now_ms();
    int rc;

    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, 2, logpath, O_WRONLY | O_CREAT | O_APPEND, 0600), 0);
    spawn_attr(&attr);
    rc = posix_spawn(&gw, ng_bin, &fa, &attr, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
        fail_msg("posix_spawn %s: %s", ng_bin, strerror(rc));
    while (now_ms() - t0 < START_TIMEOUT_MS) {
        if (GET("/healthz").status == 200)
            return;
        if (waitpid(gw, NULL, WNOHANG) == gw) {
            gw = 0;
            fail_msg("noisegate serve exited at start; see %s", logpath);
        }
        sleep_ms(50);
    }
    fail_msg("noisegate serve did not answer /healthz");
}

/* SIGTERM drains and exits 0. */
static void
stop_gateway(void)
{
    long t0 = now_ms();
    int st = 0;
    pid_t pid = gw;

    assert_true(pid > 0);
    assert_int_equal(kill(pid, SIGTERM), 0);
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (now_ms() - t0 > STOP_TIMEOUT_MS) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            gw = 0;
            fail_msg("noisegate serve did not stop on SIGTERM");
        }
        sleep_ms(20);
    }
    gw = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("noisegate serve stopped with %s %d; see %s", WIFEXITED(st) ? "status" : "signal",
                 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), logpath);
}

static int
group_setup(void **state)
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], t[8];
    char whpk[80];
    const char *base = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";

    (void)state;
    keep = json_array();
    randombytes_buf(t, sizeof t);
    ng_hex_encode(tag, sizeof tag, t, sizeof t);
    snprintf(dir, sizeof dir, "%s/ngapi-XXXXXX", base);
    if (mkdtemp(dir) == NULL || (port = free_port()) <= 0)
        return -1;
    snprintf(cfg, sizeof cfg, "%s/gw.json", dir);
    snprintf(logpath, sizeof logpath, "%s/gw.log", dir);
    snprintf(admin_sock, sizeof admin_sock, "%s/admin.sock", dir);
    /*
     * listen.timeout_s is short because SIGTERM waits for the pollers' idle
     * keep-alive connections until it runs out (see the report on this suite).
     */
    {
        FILE *f = fopen(cfg, "w");

        if (f == NULL)
            return -1;
        fprintf(f,
                "{\"data_dir\": \"data\", \"public_url\": \"http://127.0.0.1:%d\",\n"
                " \"listen\": {\"address\": \"127.0.0.1\", \"port\": %d, \"max_body\": %d, \"timeout_s\": 3},\n"
                " \"admin\": {\"socket\": \"%s\"},\n"
                " \"redis\": {\"timeout_ms\": %d},\n"
                " \"messages\": {\"max_body\": %d, \"max_ttl_s\": %d, \"default_ttl_s\": %d},\n"
                " \"webhooks\": {\"tolerance_s\": %d},\n"
                " \"log\": {\"format\": \"json\"}}\n",
                port, port, LISTEN_MAX_BODY, admin_sock, REDIS_TIMEOUT_MS, MESSAGE_MAX_BODY, MAX_TTL_S, TTL_S,
                TOLERANCE_S);
        if (fclose(f) != 0)
            return -1;
    }
    CLI("vault", "init");
    CLI("tenant", "create", "alice");
    CLI("tenant", "create", "bob");
    CLI("tenant", "create", "carol");
    /* Nothing is ever delivered to these: nobody sends to alice or carol, and bob has no backend. */
    add_backend(&alice_v1, "alice", "http://127.0.0.1:9/alice", NULL);
    crypto_sign_keypair(pk, alice_ed.sk);
    memcpy(whpk, "whpk_", 5);
    sodium_bin2base64(whpk + 5, sizeof whpk - 5, pk, sizeof pk, sodium_base64_VARIANT_ORIGINAL);
    add_backend(&alice_ed, "alice", "http://127.0.0.1:9/alice-ed", whpk);
    add_backend(&carol_v1, "carol", "http://127.0.0.1:9/carol", NULL);
    {
        const char *bob = export_params("bob", NULL), *alice = export_params("alice", NULL);

        read_token_of(bob, bob_token);
        read_token_of(alice, alice_token);
        read_token_of(export_params("carol", NULL), carol_token);
        CLI("peer", "import", "alice", bob, "--name", "bob");
        CLI("peer", "import", "carol", bob, "--name", "bob");
        /*
         * bob must know alice to accept her parcels when they are pushed, but
         * its poller must not fetch them first (a push would then be a
         * replay): it is told an outbox where nothing listens.
         */
        CLI("peer", "import", "bob", export_params("alice", "http://127.0.0.1:1/v1/outbox"), "--name", "alice");
    }
    key_id_of("alice", alice_kid);
    key_id_of("bob", bob_kid);
    key_id_of("carol", carol_kid);
    start_gateway();
    blobs_free();
    json_array_clear(keep);
    return 0;
}

static int
group_teardown(void **state)
{
    char cmd[PATH_MAX + 32];
    pid_t r;

    (void)state;
    if (stopped_redis > 0)
        kill(stopped_redis, SIGCONT);
    if (gw > 0) {
        kill(gw, SIGKILL);
        waitpid(gw, NULL, 0);
        gw = 0;
    }
    r = redis_pid();
    if (r > 0)
        kill(r, SIGKILL);
    blobs_free();
    json_decref(keep);
    keep = NULL;
    if (getenv("NG_KEEP") != NULL) {
        fprintf(stderr, "kept %s\n", dir);
        return 0;
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int
test_teardown(void **state)
{
    (void)state;
    if (stopped_redis > 0) {
        kill(stopped_redis, SIGCONT);
        stopped_redis = 0;
    }
    blobs_free();
    json_array_clear(keep);
    return 0;
}

/* ==== 1. submitting ==== */

static char id_text[ID_HEX + 1], id_ce[ID_HEX + 1], id_bin[ID_HEX + 1];
static const char *text_body, *ce_body;
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
    text_body = body_text("the first note");
    r = POST_MSG(.body = dump(json_pack("{s:s, s:s, s:s, s:i}", "recipient", "bob", "content_type",
                                        "text/plain; charset=utf-8", "body", text_body, "ttl", TTL_S)));
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
    assert_int_equal(o.out->len, strlen(text_body));
    assert_memory_equal(o.out->data, text_body, strlen(text_body));
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
    EXPECT_REPLY(GET("/healthz"), 200, NULL);
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
    EXPECT_REPLY(http("GET", path, ARGS(auth), NULL, 0), 401, "unauthorized");
    EXPECT_REPLY(outbox_get(bob_kid, alice_token, "?limit=0"), 400, "bad_limit");
    EXPECT_REPLY(outbox_get(bob_kid, alice_token, "?limit=1001"), 400, "bad_limit");
    EXPECT_REPLY(outbox_get(bob_kid, alice_token, "?limit=-1"), 400, "bad_limit");
    EXPECT_REPLY(outbox_get(bob_kid, alice_token, "?limit=10abc"), 400, "bad_limit");
    EXPECT_REPLY(outbox_get(bob_kid, alice_token, "?after=garbage"), 400, "bad_cursor");
    EXPECT_REPLY(outbox_get(bob_kid, alice_token, "?limit=1000"), 200, NULL);

    /* Pushes. */
    p = find_parcel(to_bob[0].id);
    b = blob_of(p->bytes->data, p->bytes->len);
    EXPECT_REPLY(http("POST", "/v1/parcels", ARGS("Content-Type: application/octet-stream"), b->data, b->len), 415,
                 "unsupported_media_type");
    EXPECT_REPLY(http("POST", "/v1/parcels", ARGS(PARCEL_TYPE), b->data, 50), 400, "malformed");
    EXPECT_REPLY(http("POST", "/v1/parcels", ARGS(PARCEL_TYPE), "", 0), 400, "malformed");

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
        EXPECT_REPLY(http("POST", "/v1/parcels", ARGS(PARCEL_TYPE), out, len), 404, "unknown_recipient");
    }

    /* carol is not one of bob's peers: her parcel is refused once opened, for its sender. */
    {
        size_t n = outbox_all(bob_kid, carol_token);

        assert_int_equal(n, 1);
        EXPECT_REPLY(http("POST", "/v1/parcels", ARGS(PARCEL_TYPE), got[0].bytes->data, got[0].bytes->len), 403,
                     "sender");
    }

    /* One of alice's, pushed as her gateway would: accepted once, then a replay. */
    p = find_parcel(to_bob[0].id);
    b = blob_of(p->bytes->data, p->bytes->len);
    r = http("POST", "/v1/parcels", ARGS(PARCEL_TYPE), b->data, b->len);
    EXPECT_REPLY(r, 202, NULL);
    assert_string_equal(jstr(r.json, "id"), to_bob[0].id);
    assert_int_equal(json_integer_value(json_object_get(r.json, "expires")), (json_int_t)to_bob[0].expires);
    EXPECT_REPLY(http("POST", "/v1/parcels", ARGS(PARCEL_TYPE "; charset=binary"), b->data, b->len), 409, "replayed");

    /* One flipped ciphertext byte fails authentication, and does not use up the message id. */
    p = find_parcel(to_bob[1].id);
    b = blob_of(p->bytes->data, p->bytes->len);
    b->data[b->len - 1] ^= 0x80;
    EXPECT_REPLY(http("POST", "/v1/parcels", ARGS(PARCEL_TYPE), b->data, b->len), 403, "auth");
    b->data[b->len - 1] ^= 0x80;
    r = http("POST", "/v1/parcels", ARGS(PARCEL_TYPE), b->data, b->len);
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
    EXPECT_REPLY(http("POST", "/v1/parcels", ARGS(PARCEL_TYPE), b->data, b->len), 400, "expired");
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
    pid_t pid = redis_pid();
    size_t before = n_to_bob;

    (void)state;
    assert_true(pid > 0);
    EXPECT_REPLY(GET("/readyz"), 200, NULL);
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
    EXPECT_REPLY(GET("/readyz"), 503, "store_unavailable");
    EXPECT_REPLY(outbox_get(bob_kid, alice_token, NULL), 503, "store_unavailable");
    EXPECT_REPLY(GET("/healthz"), 200, NULL);

    assert_int_equal(kill(pid, SIGCONT), 0);
    stopped_redis = 0;
    t0 = now_ms();
    while ((r = GET("/readyz")).status != 200 && now_ms() - t0 < 10000)
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

/* A sample's value; -1 if the series is absent. */
static double
sample(const char *metrics, const char *series)
{
    size_t n = strlen(series);
    const char *p = metrics;

    while ((p = strstr(p, series)) != NULL) {
        if ((p == metrics || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p += n;
    }
    return -1;
}

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
    r = GET("/metrics");
    EXPECT_REPLY(r, 200, NULL);
    m = text_of(r.body);
    if (sample(m, "ng_messages_accepted_total") != (double)accepted)
        fail_msg("ng_messages_accepted_total is %g; the gateway answered 202 for %ld messages",
                 sample(m, "ng_messages_accepted_total"), accepted);
    for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        double v;

        snprintf(series, sizeof series, "ng_messages_refused_total{reason=\"%s\"}", refused[i].code);
        v = sample(m, series);
        if (v != (double)refused[i].n && !(refused[i].n == 0 && v == -1))
            fail_msg("%s is %g; the suite saw %ld such refusals", series, v, refused[i].n);
    }
    assert_true(sample(m, "ng_messages_refused_total{reason=\"bad_signature\"}") >= 5);
    /* The pushes of the peer API tests; no poller here ever gets a parcel. */
    for (i = 0; i < sizeof pushed / sizeof pushed[0]; i++) {
        snprintf(series, sizeof series, "ng_parcels_refused_total{reason=\"%s\"}", pushed[i].code);
        if (sample(m, series) != pushed[i].n)
            fail_msg("%s is %g, expected %g", series, sample(m, series), pushed[i].n);
    }
    assert_true(sample(m, "ng_parcels_opened_total") == 2);

    stop_gateway();

    /* Every line JSON; no secret, token or body anywhere. */
    f = fopen(logpath, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f) != NULL) {
        json_t *j = json_loads(line, 0, NULL);

        if (j == NULL)
            fail_msg("a log line is not JSON: %s", line);
        json_decref(j);
    }
    fclose(f);
    log = text_of(slurp(logpath));
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
        cmocka_unit_test_teardown(test_submit, test_teardown),
        cmocka_unit_test_teardown(test_outbox, test_teardown),
        cmocka_unit_test_teardown(test_bad_signatures, test_teardown),
        cmocka_unit_test_teardown(test_bad_input, test_teardown),
        cmocka_unit_test_teardown(test_idempotency, test_teardown),
        cmocka_unit_test_teardown(test_isolation, test_teardown),
        cmocka_unit_test_teardown(test_peer_api, test_teardown),
        cmocka_unit_test_teardown(test_expiry, test_teardown),
        cmocka_unit_test_teardown(test_store_down, test_teardown),
        cmocka_unit_test_teardown(test_metrics_and_log, test_teardown),
    };
    const char *b = getenv("NG_BIN");

    if (b == NULL) {
        fprintf(stderr, "NG_BIN is not set: run through make test\n");
        return 1;
    }
    snprintf(ng_bin, sizeof ng_bin, "%s", b);
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return cmocka_run_group_tests_name("api", tests, group_setup, group_teardown);
}

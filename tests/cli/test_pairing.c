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
#include <netinet/in.h>
#include <pthread.h>
#include <strings.h>
#include <sys/socket.h>

#include "cli_harness.h"

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "ng_hex.h"
#include "ng_pairing.h"
#include "ng_server.h"
#include "ng_webhook.h"

enum {
    HTTP_TIMEOUT_MS = 20000,
    START_TIMEOUT_MS = 30000,
    STOP_TIMEOUT_MS = 20000,
    OFFER_TIMEOUT_MS = 5000, /* delivery.timeout_ms */
    CODE_HEX = 2 * NG_PAIRING_CODE_BYTES,
    MAX_OFFERS = 64,
    MAX_SECRETS = 64,
    WHPK_BYTES = 64,
};

/* ---- the suite's state ---- */

static char dir[PATH_MAX / 2], cfg[PATH_MAX], logpath[PATH_MAX], admin_sock[PATH_MAX], token_path[PATH_MAX];
static char token[65], public_url[64];
static int port;
static pid_t gw;
static json_t *keep;
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

static json_t *
kept(json_t *j)
{
    if (j != NULL)
        json_array_append_new(keep, j);
    return j;
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

typedef struct reply {
    long status; /* -1: nothing answered */
    blob *body;
    json_t *json;
    const char *code; /* error.code, or "" */
} reply;

static char last_req[256];

static size_t
collect(char *p, size_t size, size_t n, void *ctx)
{
    blob_append(ctx, p, size * n);
    return size * n;
}

/* One request: to url (absolute), or over unix_path; headers "Name: value". */
static reply
request(const char *unix_path, const char *method, const char *url, const char *const *headers, const char *body)
{
    struct curl_slist *h = NULL;
    reply r = {-1, blob_new(), NULL, ""};
    CURL *c = curl_easy_init();
    size_t i;

    assert_non_null(c);
    snprintf(last_req, sizeof last_req, "%s %.200s", method, url);
    h = curl_slist_append(h, "Expect:");
    for (i = 0; headers != NULL && headers[i] != NULL; i++)
        h = curl_slist_append(h, headers[i]);
    if (unix_path != NULL)
        curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, unix_path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)HTTP_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r.body);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
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

static reply
public_req(const char *method, const char *path, const char *const *headers, const char *body)
{
    char url[512];

    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    return request(NULL, method, url, headers, body);
}

/* An admin request over the admin socket, with the token or without (auth NULL), or with another. */
static reply
admin_req(const char *method, const char *path, const char *body, const char *auth)
{
    char url[512], line[128];
    const char *h[] = {line, "Content-Type: application/json", NULL};

    snprintf(url, sizeof url, "http://localhost%s", path);
    snprintf(line, sizeof line, "Authorization: Bearer %s", auth != NULL ? auth : "");
    return request(admin_sock, method, url, auth != NULL ? h : h + 1, body);
}

#define ADMIN(method, path, body) admin_req((method), (path), (body), token)

#define EXPECT_REPLY(r, status, code) expect_reply_at((r), (status), (code), __LINE__)

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

static const char *
jstr(const json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));

    if (s == NULL)
        fail_msg("%s: no string \"%s\" in %s", last_req, key, json_dumps(j, JSON_COMPACT));
    return s;
}

/* A JSON text (in a blob) of a document built here. */
static const char *
dump(json_t *doc)
{
    char *s;
    const char *t;

    assert_non_null(doc);
    s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    assert_non_null(s);
    t = text_of(blob_str(s));
    free(s);
    return t;
}

/* ---- the backend: a sink for offers ---- */

typedef enum sink_mode {
    SINK_OK,       /* 200 */
    SINK_FAIL,     /* 500 */
    SINK_COMPLETE, /* completes the pairing before answering 200, as demo_backend does */
} sink_mode;

typedef struct sink_offer {
    char *body;
    char content_type[128];
    char path[128];
    long complete_status; /* SINK_COMPLETE: the gateway's answer to the completion */
    char *complete_body;
    bkey key;
} sink_offer;

static struct {
    pthread_mutex_t lock;
    sink_mode mode;
    sink_offer got[MAX_OFFERS];
    size_t n;
    ng_server *srv;
    int port;
} sink = {.lock = PTHREAD_MUTEX_INITIALIZER};

static size_t
sink_collect(char *p, size_t size, size_t n, void *ctx)
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
sink_complete(sink_offer *o)
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
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_collect);
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
sink_handle(void *ctx, const ng_request *req, ng_response *res)
{
    const char *ct = ng_request_header(req, "Content-Type");
    sink_offer *o = NULL;
    sink_mode mode;

    (void)ctx;
    pthread_mutex_lock(&sink.lock);
    mode = sink.mode;
    if (sink.n < MAX_OFFERS) {
        o = &sink.got[sink.n++];
        o->body = strndup(req->body != NULL ? (const char *)req->body : "", req->body_len);
        snprintf(o->content_type, sizeof o->content_type, "%s", ct != NULL ? ct : "");
        snprintf(o->path, sizeof o->path, "%s", req->path);
    }
    pthread_mutex_unlock(&sink.lock);
    if (o != NULL && mode == SINK_COMPLETE)
        sink_complete(o); /* o is this request's alone until the answer is sent */
    if (mode == SINK_FAIL)
        ng_response_error(res, 500, "down", "the backend is down");
    else
        ng_response_text(res, 200, NULL, "{\"received\":true}");
}

static size_t
sink_count(void)
{
    size_t n;

    pthread_mutex_lock(&sink.lock);
    n = sink.n;
    pthread_mutex_unlock(&sink.lock);
    return n;
}

static void
sink_set(sink_mode m)
{
    pthread_mutex_lock(&sink.lock);
    sink.mode = m;
    pthread_mutex_unlock(&sink.lock);
}

/* The offer the sink received last, as JSON (kept for the test). */
static json_t *
last_offer(void)
{
    json_t *j;

    pthread_mutex_lock(&sink.lock);
    assert_true(sink.n > 0);
    j = json_loads(sink.got[sink.n - 1].body, JSON_REJECT_DUPLICATES, NULL);
    pthread_mutex_unlock(&sink.lock);
    if (j == NULL)
        fail_msg("the offer is not JSON: %s", sink.got[sink.n - 1].body);
    return kept(j);
}

static const char *
sink_url(const char *host)
{
    char u[128];

    snprintf(u, sizeof u, "http://%s:%d/noisegate", host, sink.port);
    return text_of(blob_str(u));
}

/* ---- the CLI and the gateway ---- */

#define CLI(...) cli(ARGS(__VA_ARGS__, "--config", cfg))

static blob *
cli(const char *const *args)
{
    result r = ng(NULL, args);

    EXPECT_EXIT(r, 0);
    return r.out;
}

static const char *
export_params(const char *slug)
{
    blob *out = CLI("peer", "export", slug);

    assert_true(out->len > 7 && strncmp(text_of(out), "ngcp1:", 6) == 0);
    return text_of(blob_of(out->data, strcspn(text_of(out), "\n")));
}

static void
write_config(const char *allow)
{
    FILE *f = fopen(cfg, "w");

    assert_non_null(f);
    fprintf(f,
            "{\"data_dir\": \"data\", \"public_url\": \"%s\",\n"
            " \"listen\": {\"address\": \"127.0.0.1\", \"port\": %d, \"timeout_s\": 3},\n"
            " \"admin\": {\"socket\": \"%s\", \"token_file\": \"%s\"},\n"
            " \"delivery\": {\"timeout_ms\": %d, \"allow_private\": [%s]},\n"
            " \"log\": {\"format\": \"json\"}}\n",
            public_url, port, admin_sock, token_path, OFFER_TIMEOUT_MS, allow);
    assert_int_equal(fclose(f), 0);
}

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
        if (public_req("GET", "/healthz", NULL, NULL).status == 200 &&
            admin_req("GET", "/healthz", NULL, NULL).status == 200)
            break;
        if (waitpid(gw, NULL, WNOHANG) == gw) {
            gw = 0;
            fail_msg("noisegate serve exited at start; see %s", logpath);
        }
        sleep_ms(50);
    }
    if (now_ms() - t0 >= START_TIMEOUT_MS)
        fail_msg("noisegate serve did not answer /healthz");
    if (token[0] == '\0') {
        blob *t = slurp(token_path);

        assert_non_null(t);
        assert_true(t->len >= 64);
        memcpy(token, t->data, 64);
        token[64] = '\0';
        assert_true(is_lower_hex(token, 64));
    }
}

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
    const char *base = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    ng_server_opts o;

    (void)state;
    keep = json_array();
    snprintf(dir, sizeof dir, "%s/ngpair-XXXXXX", base);
    if (mkdtemp(dir) == NULL || (port = free_port()) <= 0)
        return -1;
    snprintf(cfg, sizeof cfg, "%s/gw.json", dir);
    snprintf(logpath, sizeof logpath, "%s/gw.log", dir);
    snprintf(admin_sock, sizeof admin_sock, "%s/admin.sock", dir);
    snprintf(token_path, sizeof token_path, "%s/admin.token", dir);
    snprintf(public_url, sizeof public_url, "http://127.0.0.1:%d", port);

    memset(&o, 0, sizeof o);
    o.address = "127.0.0.1";
    o.port = 0;
    o.threads = 2;
    o.max_body = 65536;
    o.timeout_s = 5;
    o.handler = sink_handle;
    if (ng_server_start(&sink.srv, &o) != NG_OK)
        return -1;
    sink.port = ng_server_port(sink.srv);

    write_config("\"127.0.0.1\"");
    CLI("vault", "init");
    CLI("tenant", "create", "alice");
    CLI("tenant", "create", "bob");
    CLI("tenant", "create", "carol");
    CLI("peer", "import", "alice", export_params("bob"), "--name", "bob");
    start_gateway();
    blobs_free();
    json_array_clear(keep);
    return 0;
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

static int
group_teardown(void **state)
{
    char cmd[PATH_MAX + 32];
    size_t i;
    pid_t r;

    (void)state;
    if (gw > 0) {
        kill(gw, SIGKILL);
        waitpid(gw, NULL, 0);
        gw = 0;
    }
    r = redis_pid();
    if (r > 0)
        kill(r, SIGKILL);
    ng_server_stop(sink.srv);
    for (i = 0; i < sink.n; i++) {
        free(sink.got[i].body);
        free(sink.got[i].complete_body);
    }
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
    sink_set(SINK_OK);
    blobs_free();
    json_array_clear(keep);
    return 0;
}

/* ---- pairing steps ---- */

/* The operator's request: a 202 with a fresh code (remembered), or fails. */
static const json_t *
offer_to(const char *tenant, const char *url)
{
    char path[128];
    reply r;

    snprintf(path, sizeof path, "/v1/admin/tenants/%s/pairings", tenant);
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
tenant_show(const char *tenant)
{
    char path[128];
    reply r;

    snprintf(path, sizeof path, "/v1/admin/tenants/%s", tenant);
    r = ADMIN("GET", path, NULL);
    EXPECT_REPLY(r, 200, NULL);
    return r.json;
}

/* The tenant's signing key (whpk_) and its digest, as the operator sees them. */
static void
gateway_key(const char *tenant, char whpk[WHPK_BYTES], char digest[65])
{
    const char *k = jstr(tenant_show(tenant), "signing_key");

    assert_true(strlen(k) < WHPK_BYTES);
    snprintf(whpk, WHPK_BYTES, "%s", k);
    digest_of(whpk, digest);
}

static size_t
backend_count(const char *tenant)
{
    return json_array_size(json_object_get(tenant_show(tenant), "backends"));
}

/* The backend of tenant with this id, or NULL. */
static const json_t *
backend_of(const char *tenant, const char *id)
{
    json_t *list = json_object_get(tenant_show(tenant), "backends");
    size_t i;

    for (i = 0; i < json_array_size(list); i++)
        if (strcmp(jstr(json_array_get(list, i), "id"), id) == 0)
            return json_array_get(list, i);
    return NULL;
}

/* A message from alice to bob, signed by the backend as Standard Webhooks libraries do. */
static reply
send_signed(const bkey *k, const char *whsec)
{
    const char *body = dump(json_pack("{s:s, s:s}", "recipient", "bob", "body", "hello from a paired backend"));
    char sig[NG_WEBHOOK_SIGNATURE_BYTES], id[40], l_id[64], l_ts[64], l_sig[NG_WEBHOOK_SIGNATURE_BYTES + 32];
    uint8_t rnd[12], secret[NG_WEBHOOK_SECRET_MAX];
    int64_t ts = (int64_t)(wall_ms() / 1000);
    size_t len;

    randombytes_buf(rnd, sizeof rnd);
    memcpy(id, "msg_", 4);
    ng_hex_encode(id + 4, sizeof id - 4, rnd, sizeof rnd);
    if (k != NULL) {
        assert_int_equal(ng_webhook_sign_v1a(sig, k->sk, id, ts, (const uint8_t *)body, strlen(body)), NG_OK);
    } else {
        assert_int_equal(ng_webhook_secret_parse(whsec, secret, sizeof secret, &len), NG_OK);
        assert_int_equal(ng_webhook_sign_v1(sig, secret, len, id, ts, (const uint8_t *)body, strlen(body)), NG_OK);
    }
    snprintf(l_id, sizeof l_id, "webhook-id: %s", id);
    snprintf(l_ts, sizeof l_ts, "webhook-timestamp: %lld", (long long)ts);
    snprintf(l_sig, sizeof l_sig, "webhook-signature: %s", sig);
    return public_req("POST", "/v1/tenants/alice/messages", ARGS("Content-Type: application/json", l_id, l_ts, l_sig),
                      body);
}

/* ==== 1. the operator's route refuses what it should ==== */

static void
test_admin_refusals(void **state)
{
    const char *path = "/v1/admin/tenants/alice/pairings",
               *good = dump(json_pack("{s:s}", "url", sink_url("127.0.0.1")));
    char wrong[65];
    size_t before = sink_count();
    reply r;

    (void)state;
    /* No token, another token, a malformed one: 401, and nothing offered. */
    EXPECT_REPLY(admin_req("POST", path, good, NULL), 401, "unauthorized");
    memset(wrong, 'a', 64);
    wrong[64] = '\0';
    EXPECT_REPLY(admin_req("POST", path, good, wrong), 401, "unauthorized");
    EXPECT_REPLY(admin_req("POST", path, good, "not-a-token"), 401, "unauthorized");
    /* Unknown tenants, and names that cannot be tenants. */
    EXPECT_REPLY(ADMIN("POST", "/v1/admin/tenants/nobody/pairings", good), 404, "not_found");
    EXPECT_REPLY(ADMIN("POST", "/v1/admin/tenants/Alice/pairings", good), 404, "not_found");
    /* Bad bodies. */
    EXPECT_REPLY(ADMIN("POST", path, "not json"), 400, "bad_request");
    EXPECT_REPLY(ADMIN("POST", path, ""), 400, "bad_request");
    EXPECT_REPLY(ADMIN("POST", path, "[\"http://x.example/\"]"), 400, "bad_request");
    EXPECT_REPLY(ADMIN("POST", path, "{}"), 400, "bad_request");
    EXPECT_REPLY(ADMIN("POST", path, "{\"url\": 7}"), 400, "bad_request");
    EXPECT_REPLY(ADMIN("POST", path, dump(json_pack("{s:s, s:s}", "url", sink_url("127.0.0.1"), "secret", "x"))), 400,
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
    assert_int_equal(sink_count(), before);
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
    size_t before = sink_count(), backends = backend_count("alice");
    bkey k;
    reply r;

    (void)state;
    gateway_key("alice", whpk, digest);
    answer = offer_to("alice", sink_url("127.0.0.1"));
    code = code_of(answer);
    assert_int_equal(offer_status(answer), 200);
    /* The sink got exactly one offer, as JSON, with everything a backend needs. */
    assert_int_equal(sink_count(), before + 1);
    assert_string_equal(sink.got[before].path, "/noisegate");
    assert_true(strncasecmp(sink.got[before].content_type, "application/json", 16) == 0);
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
    assert_string_equal(jstr(b, "url"), sink_url("127.0.0.1"));
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
    size_t before = sink_count(), backends = backend_count("carol");
    const json_t *answer, *b, *done;
    sink_offer *o;

    (void)state;
    sink_set(SINK_COMPLETE);
    answer = offer_to("carol", sink_url("127.0.0.1"));
    assert_int_equal(offer_status(answer), 200);
    assert_int_equal(sink_count(), before + 1);
    o = &sink.got[before];
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
    code = code_of(offer_to("alice", sink_url("127.0.0.1")));
    EXPECT_REPLY(complete(code, k.whpk, bob_digest), 403, "key_mismatch");
    /* Used up: the right digest now finds nothing. */
    EXPECT_REPLY(complete(code, k.whpk, digest), 404, "unknown_code");
    /* A digest of zeros: the same. */
    code = code_of(offer_to("alice", sink_url("127.0.0.1")));
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
    code = code_of(offer_to("alice", sink_url("127.0.0.1")));
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
        codes[i] = code_of(offer_to("alice", sink_url("127.0.0.1")));
        EXPECT_REPLY(complete_raw(codes[i], bodies[i]), 400, "bad_request");
    }
    /* Bad keys, with the right digest: not base64, the wrong length, another prefix, off the curve. */
    {
        const char *keys[] = {"whpk_!!!", "whpk_AAAA", "whsk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", off_whpk,
                              ""};

        for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            codes[n] = code_of(offer_to("alice", sink_url("127.0.0.1")));
            EXPECT_REPLY(complete(codes[n], keys[i], digest), 400, "bad_public_key");
            n++;
        }
    }
    /* Too large. */
    codes[n] = code_of(offer_to("alice", sink_url("127.0.0.1")));
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
    size_t before = sink_count(), backends = backend_count("alice");
    const json_t *answer;
    bkey k;
    reply r;

    (void)state;
    gateway_key("alice", whpk, digest);
    sink_set(SINK_FAIL);
    answer = offer_to("alice", sink_url("127.0.0.1"));
    assert_int_equal(offer_status(answer), 500);
    assert_int_equal(sink_count(), before + 1);
    bkey_new(&k);
    r = complete(code_of(answer), k.whpk, digest);
    EXPECT_REPLY(r, 201, NULL);
    remember_secret(jstr(r.json, "whsec"));
    assert_int_equal(backend_count("alice"), backends + 1);

    /* Nothing listens: offer_status 0, the code is made all the same. */
    snprintf(closed, sizeof closed, "http://127.0.0.1:%d/", free_port());
    answer = offer_to("alice", closed);
    assert_int_equal(offer_status(answer), 0);
    r = complete(code_of(answer), k.whpk, digest);
    EXPECT_REPLY(r, 201, NULL);
    remember_secret(jstr(r.json, "whsec"));
    assert_int_equal(backend_count("alice"), backends + 2);
    assert_int_equal(sink_count(), before + 1);
}

/* ==== 8. the operator's shorthand: noisegate pair TENANT URL ==== */

static void
test_cli_pair(void **state)
{
    char whpk[WHPK_BYTES], digest[65];
    size_t before = sink_count();
    result res;
    json_t *out;
    bkey k;
    reply r;

    (void)state;
    res = ng(NULL, ARGS("pair", "carol", sink_url("127.0.0.1"), "--config", cfg));
    EXPECT_EXIT(res, 0);
    out = kept(json_loadb(text_of(res.out), res.out->len, 0, NULL));
    if (out == NULL)
        fail_msg("noisegate pair printed no JSON: %s", text_of(res.out));
    assert_true(is_lower_hex(jstr(out, "code"), CODE_HEX));
    remember_secret(jstr(out, "code"));
    assert_int_equal(json_integer_value(json_object_get(out, "offer_status")), 200);
    assert_int_equal(sink_count(), before + 1);
    gateway_key("carol", whpk, digest);
    bkey_new(&k);
    r = complete(jstr(out, "code"), k.whpk, digest);
    EXPECT_REPLY(r, 201, NULL);
    remember_secret(jstr(r.json, "whsec"));
    /* A refusal exits 1, with the gateway's answer. */
    res = ng(NULL, ARGS("pair", "nobody", sink_url("127.0.0.1"), "--config", cfg));
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
    pending = code_of(offer_to("bob", sink_url("127.0.0.1")));
    stop_gateway();
    write_config("");
    start_gateway();
    gateway_key("bob", whpk, digest);
    bkey_new(&k);
    r = complete(pending, k.whpk, digest);
    EXPECT_REPLY(r, 201, NULL);
    remember_secret(jstr(r.json, "whsec"));

    before = sink_count();
    answer = offer_to("bob", sink_url("127.0.0.1"));
    assert_int_equal(offer_status(answer), 0);
    answer = offer_to("bob", sink_url("localhost"));
    assert_int_equal(offer_status(answer), 0);
    /* The sink is there (the suite reaches it), the gateway did not. */
    assert_int_equal(request(NULL, "POST", sink_url("127.0.0.1"), NULL, "{}").status, 200);
    assert_int_equal(sink_count(), before + 1);
    /* The code of a refused offer can still be passed on out of band. */
    r = complete(code_of(answer), k.whpk, digest);
    EXPECT_REPLY(r, 201, NULL);
    remember_secret(jstr(r.json, "whsec"));

    stop_gateway();
    log = text_of(slurp(logpath));
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
        cmocka_unit_test_teardown(test_admin_refusals, test_teardown),
        cmocka_unit_test_teardown(test_pair_and_send, test_teardown),
        cmocka_unit_test_teardown(test_complete_during_offer, test_teardown),
        cmocka_unit_test_teardown(test_wrong_digest, test_teardown),
        cmocka_unit_test_teardown(test_unknown_codes, test_teardown),
        cmocka_unit_test_teardown(test_bad_bodies, test_teardown),
        cmocka_unit_test_teardown(test_offer_not_accepted, test_teardown),
        cmocka_unit_test_teardown(test_cli_pair, test_teardown),
        cmocka_unit_test_teardown(test_blocked_address, test_teardown),
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
    return cmocka_run_group_tests_name("pairing", tests, group_setup, group_teardown);
}

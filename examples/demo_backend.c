/*
 * demo_backend: the smallest backend a tenant can have, for `make demo`.
 *
 *   demo_backend serve --port PORT --state DIR
 *       Listens on 127.0.0.1:PORT. A pairing offer from the gateway
 *       ({"type": "noisegate.pairing.offer", ...}) is completed at once: a
 *       fresh Ed25519 key is made, and its public half sent with the digest
 *       of the gateway's key to complete_url; the webhook secret that comes
 *       back is kept in DIR. Every other POST is a webhook: its Standard
 *       Webhooks signatures are checked (v1 with the secret, v1a with the
 *       gateway's key from the offer) and the message is printed.
 *   demo_backend send --gateway URL --tenant T --state DIR --to PEER TEXT
 *       Posts TEXT as a message to PEER, signed v1a with the key of DIR.
 *
 * It keeps its state in DIR: sk (the Ed25519 secret key, hex), whsec, and
 * gateway_key (the tenant's whpk_). A real backend would use a Standard
 * Webhooks library instead of ng_webhook.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "ng_curlbuf.h"
#include "ng_io.h"
#include "ng_server.h"
#include "ng_webhook.h"

/* The gateway's answers here are a few hundred bytes; anything near this is not one. */
enum { REPLY_MAX = 1 << 20 };

static const char *state_dir;

static int
save(const char *name, const char *text)
{
    char path[4200];

    snprintf(path, sizeof path, "%s/%s", state_dir, name);
    return ng_io_write_all(path, (const uint8_t *)text, strlen(text), 0600) == NG_OK ? 0 : -1;
}

/* The file's text without its trailing newline, or NULL. */
static char *
load(const char *name)
{
    char path[4200];
    uint8_t *buf;
    size_t len;

    snprintf(path, sizeof path, "%s/%s", state_dir, name);
    if (ng_io_read_all(path, 4096, &buf, &len) != NG_OK)
        return NULL;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    buf = realloc(buf, len + 1);
    buf[len] = '\0';
    return (char *)buf;
}

/* The status, 0 if no answer came; the reply in out (free it with ng_curlbuf_free either way). */
static long
post(const char *url, struct curl_slist *headers, const char *body, ng_curlbuf *out)
{
    CURL *c = curl_easy_init();
    long status = 0;

    ng_curlbuf_init(out, REPLY_MAX);
    headers = curl_slist_append(headers, "content-type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    if (ng_curlbuf_attach(c, out) == CURLE_OK && curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    return status;
}

/* The offer: make our key, answer with it and the digest of the key we were offered. */
static void
pair(json_t *offer, ng_response *res)
{
    const char *gw = json_string_value(json_object_get(offer, "gateway_key"));
    const char *url = json_string_value(json_object_get(offer, "complete_url"));
    uint8_t gpk[32], pk[32], sk[64], digest[32];
    char b64[64], whpk[80], skhex[129], dhex[65], *body;
    ng_curlbuf r;
    json_t *answer;
    long status;

    if (gw == NULL || url == NULL || ng_webhook_public_parse(gw, gpk) != NG_OK) {
        ng_response_error(res, 400, "bad_offer", "not a pairing offer");
        return;
    }
    crypto_sign_keypair(pk, sk);
    sodium_bin2base64(b64, sizeof b64, pk, sizeof pk, sodium_base64_VARIANT_ORIGINAL);
    snprintf(whpk, sizeof whpk, "whpk_%s", b64);
    crypto_generichash(digest, sizeof digest, gpk, sizeof gpk, NULL, 0);
    sodium_bin2hex(dhex, sizeof dhex, digest, sizeof digest);
    sodium_bin2hex(skhex, sizeof skhex, sk, sizeof sk);
    answer = json_pack("{s:s, s:s}", "public_key", whpk, "gateway_key_digest", dhex);
    body = json_dumps(answer, JSON_COMPACT);
    json_decref(answer);
    if (save("sk", skhex) != 0 || save("gateway_key", gw) != 0) {
        ng_response_error(res, 500, "state", "cannot write the state directory");
        free(body);
        return;
    }
    status = post(url, NULL, body, &r);
    free(body);
    answer = r.data != NULL ? json_loads(r.data, 0, NULL) : NULL;
    if (status == 201 && json_string_value(json_object_get(answer, "whsec")) != NULL &&
        save("whsec", json_string_value(json_object_get(answer, "whsec"))) == 0) {
        printf("paired with tenant %s as backend %s\n", json_string_value(json_object_get(offer, "tenant")),
               json_string_value(json_object_get(answer, "backend_id")));
        ng_response_text(res, 200, NULL, "{\"paired\":true}");
    } else {
        printf("pairing failed: status %ld %s\n", status, r.data != NULL ? r.data : "");
        ng_response_error(res, 502, "pairing_failed", "the gateway refused the completion");
    }
    fflush(stdout);
    json_decref(answer);
    ng_curlbuf_free(&r);
    sodium_memzero(sk, sizeof sk);
    sodium_memzero(skhex, sizeof skhex);
}

static void
webhook(const ng_request *req, ng_response *res)
{
    char *whsec = load("whsec"), *gw = load("gateway_key");
    uint8_t secret[NG_WEBHOOK_SECRET_MAX], pk[32];
    ng_webhook_keys k;
    size_t len = 0;
    ng_err err;

    memset(&k, 0, sizeof k);
    if (whsec != NULL && ng_webhook_secret_parse(whsec, secret, sizeof secret, &len) == NG_OK) {
        k.secret = secret;
        k.secret_len = len;
    }
    if (gw != NULL && ng_webhook_public_parse(gw, pk) == NG_OK)
        k.pk = pk;
    err = ng_webhook_verify(&k, ng_request_header(req, "webhook-id"), ng_request_header(req, "webhook-timestamp"),
                            ng_request_header(req, "webhook-signature"), req->body, req->body_len, (int64_t)time(NULL),
                            300);
    if (err != NG_OK) {
        printf("refused a webhook: %s\n", ng_strerror(err));
        ng_response_error(res, 401, "bad_signature", ng_strerror(err));
    } else {
        printf("verified message %s from %s (%s): %.*s\n", ng_request_header(req, "ce-id"),
               ng_request_header(req, "ce-source"), ng_request_header(req, "ce-type"), (int)req->body_len,
               (const char *)req->body);
        res->status = 204;
    }
    fflush(stdout);
    sodium_memzero(secret, sizeof secret);
    free(whsec);
    free(gw);
}

static void
handle(void *ctx, const ng_request *req, ng_response *res)
{
    json_t *doc = json_loadb((const char *)req->body, req->body_len, 0, NULL);

    (void)ctx;
    if (json_is_object(doc) && json_string_value(json_object_get(doc, "type")) != NULL &&
        strcmp(json_string_value(json_object_get(doc, "type")), "noisegate.pairing.offer") == 0)
        pair(doc, res);
    else
        webhook(req, res);
    json_decref(doc);
}

static int
serve(int port)
{
    ng_server_opts o;
    ng_server *s;
    sigset_t stop;
    int sig;

    memset(&o, 0, sizeof o);
    o.address = "127.0.0.1";
    o.port = port;
    o.threads = 1;
    o.max_body = 1 << 20;
    o.timeout_s = 30;
    o.handler = handle;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    if (ng_server_start(&s, &o) != NG_OK) {
        fprintf(stderr, "demo_backend: cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }
    printf("demo backend listening on 127.0.0.1:%d\n", port);
    fflush(stdout);
    sigwait(&stop, &sig);
    ng_server_stop(s);
    return 0;
}

static int
send_message(const char *gateway, const char *tenant, const char *to, const char *text)
{
    char *skhex = load("sk"), url[1024], id[64], sig[NG_WEBHOOK_SIGNATURE_BYTES], h[3][200], *body;
    uint8_t sk[64], raw[12];
    struct curl_slist *hdrs = NULL;
    ng_curlbuf r;
    json_t *msg;
    int64_t ts = (int64_t)time(NULL);
    long status;

    if (skhex == NULL || sodium_hex2bin(sk, sizeof sk, skhex, strlen(skhex), NULL, NULL, NULL) != 0) {
        fprintf(stderr, "demo_backend: no key in %s/sk: pair first\n", state_dir);
        free(skhex);
        return 1;
    }
    free(skhex);
    msg = json_pack("{s:s, s:s, s:s, s:s}", "recipient", to, "content_type", "text/plain", "type", "org.noisegate.demo",
                    "body", text);
    body = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    randombytes_buf(raw, sizeof raw);
    memcpy(id, "msg_", 4);
    sodium_bin2hex(id + 4, sizeof id - 4, raw, sizeof raw);
    if (body == NULL || ng_webhook_sign_v1a(sig, sk, id, ts, (const uint8_t *)body, strlen(body)) != NG_OK) {
        sodium_memzero(sk, sizeof sk);
        free(body);
        return 1;
    }
    sodium_memzero(sk, sizeof sk);
    snprintf(h[0], sizeof h[0], "webhook-id: %s", id);
    snprintf(h[1], sizeof h[1], "webhook-timestamp: %lld", (long long)ts);
    snprintf(h[2], sizeof h[2], "webhook-signature: %s", sig);
    hdrs = curl_slist_append(hdrs, h[0]);
    hdrs = curl_slist_append(hdrs, h[1]);
    hdrs = curl_slist_append(hdrs, h[2]);
    snprintf(url, sizeof url, "%s/v1/tenants/%s/messages", gateway, tenant);
    status = post(url, hdrs, body, &r);
    printf("%ld %s\n", status, r.data != NULL ? r.data : "");
    free(body);
    ng_curlbuf_free(&r);
    return status == 202 ? 0 : 1;
}

static const char *
opt(int argc, char **argv, const char *name)
{
    int i;

    for (i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

int
main(int argc, char **argv)
{
    const char *port, *gateway, *tenant, *to;

    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    state_dir = argc > 2 ? opt(argc, argv, "--state") : NULL;
    /* Made here, so that a walkthrough needs no mkdir; it holds a secret key: the owner's only. */
    if (state_dir != NULL && mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "demo_backend: cannot create %s: %s\n", state_dir, strerror(errno));
        return 2;
    }
    if (argc > 1 && strcmp(argv[1], "serve") == 0 && state_dir != NULL && (port = opt(argc, argv, "--port")) != NULL)
        return serve((int)strtol(port, NULL, 10));
    if (argc > 1 && strcmp(argv[1], "send") == 0 && state_dir != NULL &&
        (gateway = opt(argc, argv, "--gateway")) != NULL && (tenant = opt(argc, argv, "--tenant")) != NULL &&
        (to = opt(argc, argv, "--to")) != NULL)
        return send_message(gateway, tenant, to, argv[argc - 1]);
    fprintf(stderr, "usage: demo_backend serve --port PORT --state DIR\n"
                    "       demo_backend send --gateway URL --tenant T --state DIR --to PEER TEXT\n");
    return 2;
}

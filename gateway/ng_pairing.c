#include "ng_pairing.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "ng_deliver.h"
#include "ng_hex.h"
#include "ng_jsonbody.h"
#include "ng_parcel.h"
#include "ng_tenant.h"
#include "ng_webhook.h"

enum {
    DIGEST_BYTES = 32, /* BLAKE2b-256 */
    CODE_HEX = 2 * NG_PAIRING_CODE_BYTES,
    WHPK_BYTES = 5 + sodium_base64_ENCODED_LEN(NG_WEBHOOK_PK_BYTES, sodium_base64_VARIANT_ORIGINAL),
    WHSEC_BYTES = 128,
    WHY_BYTES = 256,
};

_Static_assert((int)DIGEST_BYTES == (int)NG_QUEUE_GUARD_BYTES, "a code's digest is the once store's key");
_Static_assert((int)NG_WEBHOOK_PK_BYTES == crypto_sign_PUBLICKEYBYTES, "whpk_ keys are Ed25519 public keys");

/* Codes live in one namespace of the queue store: the completion URL names no tenant. */
static const char namespace[] = "pairing";
static const char code_context[] = "noisegate-pairing-v1";

/* ---- common ---- */

/*
 * The tenant's Ed25519 signing public key, from the directory; a tenant
 * missing there is looked for once more after a reload, since one made by
 * the CLI a moment ago shows only within a second. -1 if there is none.
 */
static int
signing_key(ng_gateway *g, const char *slug, uint8_t pk[NG_WEBHOOK_PK_BYTES])
{
    int pass, found = 0;

    for (pass = 0; pass < 2 && !found; pass++) {
        ng_directory *dir;
        const ng_dir_tenant *t;

        if (pass == 1 && ng_gateway_reload(g) != NG_OK)
            break;
        dir = ng_gateway_directory(g);
        t = ng_directory_tenant(dir, slug);
        if (t != NULL) {
            memcpy(pk, t->sign_pk, NG_WEBHOOK_PK_BYTES);
            found = 1;
        }
        ng_directory_release(dir);
    }
    return found ? 0 : -1;
}

/* BLAKE2b-256("noisegate-pairing-v1" || code): what the store keeps in place of the code. */
static void
code_digest(uint8_t out[DIGEST_BYTES], const char *code)
{
    crypto_generichash_state st;

    crypto_generichash_init(&st, NULL, 0, DIGEST_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)code_context, sizeof code_context - 1);
    crypto_generichash_update(&st, (const uint8_t *)code, CODE_HEX);
    crypto_generichash_final(&st, out, DIGEST_BYTES);
    sodium_memzero(&st, sizeof st);
}

/* 32 lower-case hex characters: anything else cannot be a code, and is not looked up. */
static int
code_ok(const char *s)
{
    return strlen(s) == CODE_HEX && strspn(s, "0123456789abcdef") == CODE_HEX;
}

static void
whpk_of(char out[WHPK_BYTES], const uint8_t pk[NG_WEBHOOK_PK_BYTES])
{
    memcpy(out, "whpk_", 5);
    sodium_bin2base64(out + 5, WHPK_BYTES - 5, pk, NG_WEBHOOK_PK_BYTES, sodium_base64_VARIANT_ORIGINAL);
}

/* ---- the offer ---- */

struct offer_io {
    size_t read;
    ng_deliver_guard guard; /* the same address rule as webhook deliveries */
};

/* The backend's answer is read and dropped; one that talks on is cut off. */
static size_t
discard(char *data, size_t size, size_t n, void *ctx)
{
    struct offer_io *io = ctx;
    size_t len = size * n;

    (void)data;
    if (len > NG_PAIRING_REPLY_MAX - io->read)
        return 0;
    io->read += len;
    return len;
}

#define SET(opt, val)                                                                                                  \
    do {                                                                                                               \
        if (rc == CURLE_OK)                                                                                            \
            rc = curl_easy_setopt(c, opt, val);                                                                        \
    } while (0)

/*
 * POSTs the offer to url and waits for the answer (delivery.timeout_ms at
 * most): the HTTP status, 0 if none came, with why (for the log) when it is
 * not a 2xx. why never holds the URL's path or query.
 */
static long
post_offer(const ng_config *cfg, const char *url, const char *body, char why[WHY_BYTES])
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *h = NULL, *next;
    struct offer_io io;
    CURLcode rc = CURLE_OK;
    long status = 0;
    size_t n;
    CURL *c;

    memset(&io, 0, sizeof io);
    why[0] = '\0';
    c = curl_easy_init();
    if (c == NULL) {
        snprintf(why, WHY_BYTES, "out of memory");
        return 0;
    }
    h = curl_slist_append(NULL, "content-type: application/json");
    /* No 100-continue round trip; a backend need not know about it. */
    next = h != NULL ? curl_slist_append(h, "Expect:") : NULL;
    if (next == NULL)
        rc = CURLE_OUT_OF_MEMORY;
    io.guard.allow = (const char *const *)cfg->delivery.allow_private;
    io.guard.allow_len = cfg->delivery.allow_private_len;
    if (rc == CURLE_OK)
        rc = (CURLcode)ng_deliver_guard_install(c, &io.guard);
    SET(CURLOPT_URL, url);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TIMEOUT_MS, (long)cfg->delivery.timeout_ms);
    SET(CURLOPT_USERAGENT, "noisegate/0.1");
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDS, body);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    SET(CURLOPT_HTTPHEADER, h);
    SET(CURLOPT_WRITEFUNCTION, discard);
    SET(CURLOPT_WRITEDATA, &io);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (io.guard.refused && status == 0)
        snprintf(why, WHY_BYTES, "address %s not allowed (delivery.allow_private)", io.guard.refused_addr);
    else if (status != 0 && (status < 200 || status > 299))
        snprintf(why, WHY_BYTES, "status %ld", status);
    else if (status == 0)
        snprintf(why, WHY_BYTES, "%s", errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
    n = strlen(why);
    while (n > 0 && (why[n - 1] == '\n' || why[n - 1] == '\r'))
        why[--n] = '\0';
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

#undef SET

int
ng_pairing_offer_body(const ng_request *req, ng_response *res, const char **url, json_t **doc)
{
    const ng_jsonbody_field fields[] = {{"url", NG_JSONBODY_STRING, 1, url, NULL, NULL, 0},
                                        {NULL, 0, 0, NULL, NULL, NULL, 0}};

    return ng_jsonbody_parse(req, res, NG_PAIRING_MAX_BODY, fields, doc);
}

void
ng_pairing_offer(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    const ng_config *cfg = ng_gateway_config(g);
    const char *slug = params[0], *url = NULL;
    uint8_t raw[NG_PAIRING_CODE_BYTES], digest[DIGEST_BYTES], pk[NG_WEBHOOK_PK_BYTES];
    char code[CODE_HEX + 1] = "", whpk[WHPK_BYTES], why[WHY_BYTES], status_text[24];
    char *complete = NULL, *rec_text = NULL, *offer_text = NULL;
    json_t *doc = NULL, *rec = NULL, *offer = NULL, *answer;
    size_t complete_cap;
    uint64_t expires;
    ng_queue *q;
    long status;
    ng_err err;

    if (!ng_tenant_slug_ok(slug) || signing_key(g, slug, pk) != 0) {
        ng_response_error(res, 404, "not_found", "no such tenant");
        return;
    }
    if (ng_pairing_offer_body(req, res, &url, &doc) != 0)
        goto out;
    if (!ng_tenant_url_ok(url)) {
        ng_response_error(res, 400, "bad_url", "url: expected an http:// or https:// URL without spaces or user info");
        goto out;
    }

    /* The code, kept only as its digest, with what the completion needs. */
    randombytes_buf(raw, sizeof raw);
    ng_hex_encode(code, sizeof code, raw, sizeof raw);
    code_digest(digest, code);
    expires = ng_parcel_now_ms() + (uint64_t)NG_PAIRING_TTL_S * 1000u;
    rec = json_pack("{s:s, s:s, s:I}", "tenant", slug, "url", url, "expires", (json_int_t)expires);
    rec_text = rec != NULL ? json_dumps(rec, JSON_COMPACT) : NULL;
    if (rec_text == NULL) {
        ng_response_error(res, 500, "internal", "out of memory");
        goto out;
    }
    err = ng_gateway_queue_take(g, &q);
    if (err == NG_OK) {
        err = ng_queue_once_put(q, namespace, digest, (const uint8_t *)rec_text, strlen(rec_text),
                                (uint64_t)NG_PAIRING_TTL_S * 1000u);
        ng_gateway_queue_give(g, q);
    }
    if (err) {
        ng_gateway_store_error(res, err, "queue");
        goto out;
    }

    /* Stored before it is offered: a backend may complete before its answer to the offer. */
    whpk_of(whpk, pk);
    complete_cap = strlen(cfg->public_url) + sizeof "/v1/pairing/" + CODE_HEX;
    complete = malloc(complete_cap);
    if (complete != NULL) {
        snprintf(complete, complete_cap, "%s/v1/pairing/%s", cfg->public_url, code);
        offer = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "type", "noisegate.pairing.offer", "tenant", slug, "code",
                          code, "complete_url", complete, "gateway_key", whpk, "expires", (json_int_t)expires);
    }
    offer_text = offer != NULL ? json_dumps(offer, JSON_COMPACT) : NULL;
    if (offer_text == NULL) {
        ng_response_error(res, 500, "internal", "out of memory");
        goto out;
    }
    status = post_offer(cfg, url, offer_text, why);
    snprintf(status_text, sizeof status_text, "%ld", status);
    if (status < 200 || status > 299)
        ng_log_event(ng_gateway_log(g), NG_LOG_WARN,
                     "pairing offer not accepted by the backend; the code stays valid and may be passed on out of band",
                     "tenant", slug, "offer_status", status_text, "error", why, NULL);
    else
        ng_log_event(ng_gateway_log(g), NG_LOG_INFO, "pairing offered", "tenant", slug, "offer_status", status_text,
                     NULL);
    answer = json_pack("{s:s, s:I, s:i}", "code", code, "expires", (json_int_t)expires, "offer_status", (int)status);
    ng_response_json(res, 202, answer);
out:
    if (offer_text != NULL)
        sodium_memzero(offer_text, strlen(offer_text));
    free(offer_text);
    if (complete != NULL)
        sodium_memzero(complete, strlen(complete));
    free(complete);
    free(rec_text);
    json_decref(offer);
    json_decref(rec);
    json_decref(doc);
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(code, sizeof code);
}

/* ---- the completion ---- */

struct completion {
    const char *slug, *url, *whpk;
    int64_t now;
    char id[NG_TENANT_ID_BYTES];
    char whsec[WHSEC_BYTES];
};

/* May run more than once (ng_vault_update): each run decides afresh. */
static ng_err
add_backend(ng_vault *v, void *ctx)
{
    struct completion *c = ctx;

    sodium_memzero(c->whsec, sizeof c->whsec);
    return ng_tenant_backend_add(v, c->slug, c->url, c->whpk, c->now, c->id, c->whsec, sizeof c->whsec);
}

static void
vault_error(ng_response *res, ng_err err)
{
    if (err == NG_ERR_NOT_FOUND)
        ng_response_error(res, 404, "unknown_tenant", "the tenant of this pairing no longer exists");
    else if (err == NG_ERR_TOO_LARGE)
        ng_response_error(res, 409, "too_many_backends", "the tenant has as many backends as it may have");
    else
        ng_gateway_store_error(res, err, "vault");
}

int
ng_pairing_complete_body(const ng_request *req, ng_response *res, const char *values[2], json_t **doc)
{
    const ng_jsonbody_field fields[] = {{"public_key", NG_JSONBODY_STRING, 1, &values[0], NULL, NULL, 0},
                                        {"gateway_key_digest", NG_JSONBODY_STRING, 1, &values[1], NULL, NULL, 0},
                                        {NULL, 0, 0, NULL, NULL, NULL, 0}};

    return ng_jsonbody_parse(req, res, NG_PAIRING_MAX_BODY, fields, doc);
}

void
ng_pairing_complete(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    const char *values[2] = {NULL, NULL};
    uint8_t digest[DIGEST_BYTES], want[DIGEST_BYTES], got[DIGEST_BYTES];
    uint8_t gateway_pk[NG_WEBHOOK_PK_BYTES], backend_pk[NG_WEBHOOK_PK_BYTES];
    const char *slug, *url;
    const ng_vault_secret *secret;
    ng_vault_store *store;
    char whpk[WHPK_BYTES];
    struct completion c;
    json_t *rec = NULL, *doc = NULL;
    json_int_t expires;
    uint8_t *val = NULL;
    size_t len = 0;
    ng_queue *q;
    ng_err err;

    memset(&c, 0, sizeof c);
    if (!code_ok(params[0])) {
        ng_response_error(res, 404, "unknown_code", "no such pairing code, or it expired or was used");
        return;
    }
    /* Taken first, whatever follows: a code can be tried once. */
    code_digest(digest, params[0]);
    err = ng_gateway_queue_take(g, &q);
    if (err == NG_OK) {
        err = ng_queue_once_take(q, namespace, digest, &val, &len);
        ng_gateway_queue_give(g, q);
    }
    if (err == NG_ERR_NOT_FOUND) {
        ng_response_error(res, 404, "unknown_code", "no such pairing code, or it expired or was used");
        return;
    }
    if (err) {
        ng_gateway_store_error(res, err, "queue");
        return;
    }
    rec = json_loadb((const char *)val, len, JSON_REJECT_DUPLICATES, NULL);
    if (json_unpack(rec, "{s:s, s:s, s:I}", "tenant", &slug, "url", &url, "expires", &expires) != 0 ||
        !ng_tenant_slug_ok(slug)) {
        ng_response_error(res, 500, "internal", "a pairing record that does not parse");
        goto out;
    }
    if (expires <= (json_int_t)ng_parcel_now_ms()) {
        ng_response_error(res, 404, "unknown_code", "no such pairing code, or it expired or was used");
        goto out;
    }
    if (ng_pairing_complete_body(req, res, values, &doc) != 0)
        goto out;
    if (strlen(values[1]) != 2 * DIGEST_BYTES || ng_hex_decode(got, sizeof got, values[1], 2 * DIGEST_BYTES) != NG_OK) {
        ng_response_error(res, 400, "bad_request", "gateway_key_digest: expected 64 hex characters");
        goto out;
    }
    if (signing_key(g, slug, gateway_pk) != 0) {
        ng_response_error(res, 404, "unknown_tenant", "the tenant of this pairing no longer exists");
        goto out;
    }
    /* The key the backend was offered must be ours: another one means someone in between. */
    crypto_generichash(want, sizeof want, gateway_pk, sizeof gateway_pk, NULL, 0);
    if (sodium_memcmp(want, got, sizeof want) != 0) {
        ng_log_event(ng_gateway_log(g), NG_LOG_WARN,
                     "pairing refused: the backend was offered another gateway key (intercepted?); the code is used up",
                     "tenant", slug, NULL);
        ng_response_error(res, 403, "key_mismatch",
                          "gateway_key_digest is not the digest of this tenant's key: the offer may have been "
                          "intercepted; ask the operator for a new pairing");
        goto out;
    }
    err = ng_webhook_public_parse(values[0], backend_pk);
    if (err) {
        ng_response_error(res, 400, "bad_public_key", "public_key: expected whpk_ and the base64 of an Ed25519 key");
        goto out;
    }
    whpk_of(whpk, backend_pk);
    c.slug = slug;
    c.url = url;
    c.whpk = whpk;
    c.now = (int64_t)(ng_parcel_now_ms() / 1000);
    ng_gateway_vault_lock(g, &store, &secret);
    err = ng_vault_update(store, secret, add_backend, &c);
    ng_gateway_vault_unlock(g);
    if (err) {
        vault_error(res, err);
        goto out;
    }
    /* Stored: the answer is 201 even if the reload fails (it logs that; the next change reloads). */
    err = ng_gateway_reload(g);
    ng_gateway_inbox_changed(g);
    ng_log_event(ng_gateway_log(g), NG_LOG_INFO, "backend paired", "tenant", slug, "backend", c.id, NULL);
    ng_response_json(res, 201, json_pack("{s:s, s:s, s:s}", "tenant", slug, "backend_id", c.id, "whsec", c.whsec));
out:
    sodium_memzero(&c, sizeof c);
    json_decref(doc);
    json_decref(rec);
    if (val != NULL)
        sodium_memzero(val, len);
    free(val);
}

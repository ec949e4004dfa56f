#include "ng_api_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "ng_hex.h"
#include "ng_parcel.h"
#include "ng_submit.h"
#include "ng_webhook.h"

enum { DIGEST = 32, IDEM_MAX = 255 };

/* One request on its way through: what it asked for and what was made of it. */
struct job {
    ng_gateway *g;
    const ng_request *req;
    const ng_dir_tenant *t;
    const ng_dir_backend *backend;
    ng_submit sub;
    const ng_dir_peer **peers;
    ng_pattern *patterns;
    uint64_t *ttl_ms;
    ng_queue_parcel *parcels;
    uint8_t **sealed;
    uint8_t request[DIGEST], idem[DIGEST], fingerprint[DIGEST];
    int has_idem;
    int sealed_by_backend; /* POST .../parcels: the idempotency key is the parcel's message id */
    uint64_t now;
};

static const char *
header_of(void *ctx, const char *name)
{
    return ng_request_header(ctx, name);
}

static void
refuse(struct job *j, ng_response *res, int status, const char *code, const char *message)
{
    ng_metrics_add(ng_gateway_metrics(j->g), "ng_messages_refused_total", (const char *[]){"reason", code, NULL}, 1);
    ng_response_error(res, status, code, message);
}

/*
 * Which backend signed the request; one that verifies is enough. A disabled
 * backend (a 410 from its URL) still submits: only deliveries to it stop.
 */
static int
authenticate(struct job *j, ng_response *res)
{
    const ng_config *cfg = ng_gateway_config(j->g);
    const char *id = ng_request_header(j->req, "webhook-id");
    const char *ts = ng_request_header(j->req, "webhook-timestamp");
    const char *sig = ng_request_header(j->req, "webhook-signature");
    ng_err err = NG_ERR_AUTH;
    size_t i;

    if (id == NULL || ts == NULL || sig == NULL) {
        refuse(j, res, 401, "missing_signature",
               "sign the request: webhook-id, webhook-timestamp and webhook-signature (Standard Webhooks)");
        return -1;
    }
    for (i = 0; i < j->t->nbackends; i++) {
        const ng_dir_backend *b = &j->t->backends[i];
        ng_webhook_keys k = {b->whsec, b->whsec_len, b->whsec_prev, b->whsec_prev_len, b->has_pk ? b->pk : NULL};

        err = ng_webhook_verify(&k, id, ts, sig, j->req->body, j->req->body_len,
                                (int64_t)((j->req->signed_at_ms != 0 ? j->req->signed_at_ms : j->now) / 1000),
                                cfg->webhooks.tolerance_s);
        if (err != NG_ERR_AUTH)
            break;
    }
    if (err == NG_OK) {
        crypto_generichash_state st;

        j->backend = &j->t->backends[i];
        crypto_generichash_init(&st, NULL, 0, DIGEST);
        crypto_generichash_update(&st, (const uint8_t *)"noisegate-request-v1", 20);
        crypto_generichash_update(&st, (const uint8_t *)id, strlen(id));
        crypto_generichash_final(&st, j->request, DIGEST);
        return 0;
    }
    if (err == NG_ERR_EXPIRED || err == NG_ERR_NOT_YET_VALID)
        refuse(j, res, 401, "stale_timestamp", "webhook-timestamp is outside the tolerance (webhooks.tolerance_s)");
    else if (err == NG_ERR_MALFORMED)
        refuse(j, res, 401, "bad_signature_headers", "webhook-id, webhook-timestamp or webhook-signature do not parse");
    else
        refuse(j, res, 401, "bad_signature", "no backend of this tenant signed this request");
    return -1;
}

static int
parse(struct job *j, ng_response *res)
{
    const char *ct = ng_request_header(j->req, "Content-Type");
    char err[NG_SUBMIT_ERR_BYTES];
    ng_err e;

    if (ng_submit_is_binary(header_of, (void *)j->req)) {
        e = ng_submit_parse_binary(&j->sub, header_of, (void *)j->req, j->req->body, j->req->body_len, err, sizeof err);
    } else if (ct != NULL && !ng_request_type_is(j->req, "application/json")) {
        refuse(j, res, 415, "unsupported_media_type",
               "expected application/json, or CloudEvents binary mode (ce-specversion)");
        return -1;
    } else {
        e = ng_submit_parse_json(&j->sub, j->req->body, j->req->body_len, err, sizeof err);
    }
    if (e == NG_ERR_TOO_LARGE) {
        refuse(j, res, 413, "batch_too_large", err);
        return -1;
    }
    if (e == NG_ERR_NOMEM) { /* the request may be fine: a 5xx tells the bus to send it again */
        refuse(j, res, 500, "internal", "out of memory");
        return -1;
    }
    if (e) {
        refuse(j, res, 400, "bad_request", err);
        return -1;
    }
    return 0;
}

/* The pattern for a message to peer p: the one asked for, else the first p accepts that we can seal. */
static int
choose_pattern(const ng_dir_peer *p, const ng_submit_msg *m, ng_pattern *out)
{
    if (m->has_pattern) {
        if ((p->patterns & NG_DIR_PATTERN_BIT(m->pattern)) == 0)
            return -1;
        *out = m->pattern;
        return 0;
    }
    if (p->nprefer == 0)
        return -1;
    *out = p->prefer[0];
    return 0;
}

static int
check_messages(struct job *j, ng_response *res)
{
    const ng_config *cfg = ng_gateway_config(j->g);
    uint64_t limit = (uint64_t)cfg->listen.max_body;
    char msg[NG_SUBMIT_ERR_BYTES + 256], where[48] = "";
    size_t i, n = j->sub.n;
    /* The newest key seals (seal_all); the backend may hold it (end-to-end mode, ng_tenant_key_export). */
    int can_send = j->t->keys[j->t->nkeys - 1].kp != NULL;

    if (cfg->messages.max_body > 0 && (uint64_t)cfg->messages.max_body < limit)
        limit = (uint64_t)cfg->messages.max_body;
    if (j->t->max_message > 0 && j->t->max_message < limit)
        limit = j->t->max_message;
    j->peers = calloc(n, sizeof *j->peers);
    j->patterns = calloc(n, sizeof *j->patterns);
    j->ttl_ms = calloc(n, sizeof *j->ttl_ms);
    j->parcels = calloc(n, sizeof *j->parcels);
    j->sealed = calloc(n, sizeof *j->sealed);
    if (j->peers == NULL || j->patterns == NULL || j->ttl_ms == NULL || j->parcels == NULL || j->sealed == NULL) {
        refuse(j, res, 500, "internal", "out of memory");
        return -1;
    }
    for (i = 0; i < n; i++) {
        const ng_submit_msg *m = &j->sub.msgs[i];
        int64_t ttl = m->ttl_s > 0 ? m->ttl_s : cfg->messages.default_ttl_s;

        if (j->sub.batch)
            snprintf(where, sizeof where, "messages[%zu]: ", i);
        j->peers[i] = ng_directory_peer(j->t, m->recipient);
        if (j->peers[i] == NULL) {
            snprintf(msg, sizeof msg, "%sno peer named \"%s\"", where, m->recipient);
            refuse(j, res, 404, "unknown_peer", msg);
            return -1;
        }
        if (choose_pattern(j->peers[i], m, &j->patterns[i]) != 0) {
            snprintf(msg, sizeof msg, "%sthe peer does not accept %s (or it needs a psk it has not given)", where,
                     m->has_pattern ? ng_pattern_name(m->pattern) : "any pattern we can seal");
            refuse(j, res, 400, "pattern_not_accepted", msg);
            return -1;
        }
        /*
         * K and X seal with the tenant's static private key. Refused, not
         * replaced by N when no pattern was asked for: a recipient would
         * then see an anonymous sender where it expected the tenant.
         */
        if (ng_pattern_base(j->patterns[i]) != NG_PATTERN_N && !can_send) {
            snprintf(msg, sizeof msg,
                     "%s%s needs the tenant's private key, which its backend holds: seal the parcel yourself and POST "
                     "it to /v1/tenants/%s/parcels (or ask for pattern N or Npsk0, if the peer accepts it)",
                     where, ng_pattern_name(j->patterns[i]), j->t->slug);
            refuse(j, res, 409, "key_held_by_backend", msg);
            return -1;
        }
        if (ttl > cfg->messages.max_ttl_s) {
            snprintf(msg, sizeof msg, "%sttl: at most %d seconds (messages.max_ttl_s)", where, cfg->messages.max_ttl_s);
            refuse(j, res, 400, "bad_ttl", msg);
            return -1;
        }
        if ((uint64_t)m->body_len > limit) {
            snprintf(msg, sizeof msg, "%sbody: over the limit of %llu bytes", where, (unsigned long long)limit);
            refuse(j, res, 413, "too_large", msg);
            return -1;
        }
        j->ttl_ms[i] = (uint64_t)ttl * 1000u;
    }
    return 0;
}

/* limits.rate of the tenant, per process; a batch takes as many tokens as it has messages. */
static int
rate_limit(struct job *j, ng_response *res)
{
    uint32_t after;
    char s[16];

    if (ng_ratelimit_take(ng_gateway_rates(j->g), j->t->slug, j->t->rate, j->sub.n, j->now, &after))
        return 0;
    if (after == 0) {
        refuse(j, res, 413, "batch_too_large", "this batch is larger than the tenant's rate allows at once");
        return -1;
    }
    snprintf(s, sizeof s, "%u", after);
    ng_response_header(res, "Retry-After", s);
    refuse(j, res, 429, "rate_limited", "over the tenant's message rate (limits.rate): retry later");
    return -1;
}

/* What the request asks, whatever its form: two requests with one fingerprint store the same messages. */
static void
fingerprint(struct job *j)
{
    crypto_generichash_state st;
    size_t i;

    crypto_generichash_init(&st, NULL, 0, DIGEST);
    for (i = 0; i < j->sub.n; i++) {
        const ng_submit_msg *m = &j->sub.msgs[i];
        uint8_t lens[16];
        uint64_t b = m->body_len, t = j->ttl_ms[i];
        int k;

        for (k = 0; k < 8; k++) {
            lens[k] = (uint8_t)(b >> (8 * k));
            lens[8 + k] = (uint8_t)(t >> (8 * k));
        }
        crypto_generichash_update(&st, lens, sizeof lens);
        crypto_generichash_update(&st, (const uint8_t *)m->recipient, strlen(m->recipient) + 1);
        crypto_generichash_update(&st, (const uint8_t *)m->meta, m->meta_len + 1);
        crypto_generichash_update(&st, (const uint8_t *)ng_pattern_name(j->patterns[i]),
                                  strlen(ng_pattern_name(j->patterns[i])) + 1);
        crypto_generichash_update(&st, m->body, m->body_len);
    }
    crypto_generichash_final(&st, j->fingerprint, DIGEST);
}

static int
idempotency(struct job *j, ng_response *res)
{
    const char *k = ng_request_header(j->req, "Idempotency-Key");
    crypto_generichash_state st;
    size_t i, len;

    if (k == NULL)
        return 0;
    len = strlen(k);
    for (i = 0; i < len && k[i] >= 0x21 && k[i] <= 0x7e; i++)
        ;
    if (len == 0 || len > IDEM_MAX || i != len) {
        refuse(j, res, 400, "bad_idempotency_key", "Idempotency-Key: expected 1-255 printable characters");
        return -1;
    }
    crypto_generichash_init(&st, NULL, 0, DIGEST);
    crypto_generichash_update(&st, (const uint8_t *)"noisegate-idem-v1", 17);
    crypto_generichash_update(&st, (const uint8_t *)j->backend->id, strlen(j->backend->id) + 1);
    crypto_generichash_update(&st, (const uint8_t *)k, len);
    crypto_generichash_final(&st, j->idem, DIGEST);
    j->has_idem = 1;
    return 0;
}

/* A repeat of an idempotent request seals the same message ids: keyed by the tenant's signing key, so nobody else can
 * predict them. */
static void
derived_id(const struct job *j, size_t i, uint8_t id[NG_PARCEL_MESSAGE_ID_BYTES])
{
    crypto_generichash_state st;
    uint8_t idx[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};

    crypto_generichash_init(&st, j->t->sign_sk, 64, NG_PARCEL_MESSAGE_ID_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)"noisegate-message-id-v1", 23);
    crypto_generichash_update(&st, j->idem, DIGEST);
    crypto_generichash_update(&st, j->fingerprint, DIGEST);
    crypto_generichash_update(&st, idx, sizeof idx);
    crypto_generichash_final(&st, id, NG_PARCEL_MESSAGE_ID_BYTES);
}

/* What the store keeps of a parcel, from its header. */
static void
parcel_of(ng_queue_parcel *out, const ng_parcel_header *h, const uint8_t *data, size_t len)
{
    memcpy(out->key_id, h->recipient_key_id, sizeof out->key_id);
    memcpy(out->msg_id, h->message_id, sizeof out->msg_id);
    out->created_ms = h->created_ms;
    out->expires_ms = h->expires_ms;
    out->data = data;
    out->len = len;
}

static int
seal_all(struct job *j, ng_response *res)
{
    const ng_dir_key *mine = &j->t->keys[j->t->nkeys - 1];
    size_t i;

    for (i = 0; i < j->sub.n; i++) {
        const ng_submit_msg *m = &j->sub.msgs[i];
        const ng_dir_peer *p = j->peers[i];
        ng_queue_parcel *out = &j->parcels[i];
        uint8_t id[NG_PARCEL_MESSAGE_ID_BYTES];
        ng_parcel_header h;
        ng_seal_params sp;
        size_t size, len;
        ng_err err;

        if (j->has_idem)
            derived_id(j, i, id);
        memset(&sp, 0, sizeof sp);
        sp.pattern = j->patterns[i];
        sp.recipient_pub = p->keys[p->nkeys - 1].pub;
        sp.sender = ng_pattern_base(sp.pattern) == NG_PATTERN_N ? NULL : mine->kp;
        sp.psk = ng_pattern_has_psk(sp.pattern) ? p->psk : NULL;
        sp.meta = (const uint8_t *)m->meta;
        sp.meta_len = m->meta_len;
        sp.body = m->body;
        sp.body_len = m->body_len;
        sp.created_ms = j->now;
        sp.ttl_ms = j->ttl_ms[i];
        sp.message_id = j->has_idem ? id : NULL;
        sp.cache = ng_gateway_cache(j->g);
        size = ng_parcel_sealed_size(&sp);
        if (size == 0) {
            refuse(j, res, 413, "too_large", "the message does not fit in a parcel");
            return -1;
        }
        j->sealed[i] = malloc(size);
        if (j->sealed[i] == NULL) {
            refuse(j, res, 500, "internal", "out of memory");
            return -1;
        }
        err = ng_parcel_seal(j->sealed[i], size, &len, &sp);
        if (err == NG_OK)
            err = ng_parcel_inspect(&h, j->sealed[i], len, len);
        if (err) {
            ng_log_event(ng_gateway_log(j->g), NG_LOG_ERROR, "seal failed", "request_id", j->req->request_id, "error",
                         ng_strerror(err), NULL);
            refuse(j, res, 500, "internal", "the message could not be sealed");
            return -1;
        }
        parcel_of(out, &h, j->sealed[i], len);
    }
    return 0;
}

/* One message of a 202 body: its id, expiry and recipient. */
static json_t *
answer_entry(const ng_queue_parcel *p, const char *recipient)
{
    char hex[2 * NG_PARCEL_MESSAGE_ID_BYTES + 1];

    ng_hex_encode(hex, sizeof hex, p->msg_id, NG_PARCEL_MESSAGE_ID_BYTES);
    return json_pack("{s:s, s:I, s:s}", "id", hex, "expires", (json_int_t)p->expires_ms, "recipient", recipient);
}

/* The 202 body: kept as the idempotency answer behind the fingerprint. */
static char *
answer_text(const struct job *j)
{
    json_t *list = json_array(), *doc;
    char *text;
    size_t i;

    for (i = 0; list != NULL && i < j->sub.n; i++)
        json_array_append_new(list, answer_entry(&j->parcels[i], j->sub.msgs[i].recipient));
    if (list == NULL)
        return NULL;
    if (j->sub.batch)
        doc = json_pack("{s:o}", "messages", list);
    else {
        doc = json_incref(json_array_get(list, 0));
        json_decref(list);
    }
    text = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    return text;
}

static void
store_failed(struct job *j, ng_response *res, ng_err err)
{
    if (err == NG_ERR_UNAVAILABLE) {
        /* A command sent to a store that then went quiet may still run: nobody can say it did not. */
        refuse(j, res, 503, "store_unavailable",
               j->sealed_by_backend
                   ? "the outbox store did not answer in time: the parcel may or may not be stored; post it again "
                     "with a fresh webhook-id (its message id makes it one)"
                   : "the outbox store did not answer in time: the messages may or may not be stored; retry with a "
                     "fresh webhook-id and the same Idempotency-Key");
        return;
    }
    ng_log_event(ng_gateway_log(j->g), NG_LOG_ERROR, "outbox store failed", "request_id", j->req->request_id, "error",
                 ng_strerror(err), NULL);
    refuse(j, res, 500, "internal", "the outbox store failed");
}

/* An earlier request's answer: the same one if it asked the same, else a refusal (which differs by route). */
static void
replay_answer(struct job *j, ng_response *res, const uint8_t *prev, size_t len)
{
    if (len < DIGEST || sodium_memcmp(prev, j->fingerprint, DIGEST) != 0) {
        if (j->sealed_by_backend)
            refuse(j, res, 409, "replayed", "a different parcel with this message id was sent before");
        else
            refuse(j, res, 422, "idempotency_mismatch", "this Idempotency-Key was used for a different request");
        return;
    }
    res->status = 202;
    res->body = malloc(len - DIGEST + 1);
    if (res->body == NULL) {
        ng_response_error(res, 500, "internal", "out of memory");
        return;
    }
    memcpy(res->body, prev + DIGEST, len - DIGEST);
    res->body[len - DIGEST] = '\0';
    res->len = len - DIGEST;
    ng_response_header(res, "idempotent-replayed", "true");
}

/* Store the parcels with the guards; *done is 1 when the answer is already in res. */
static ng_err
store(struct job *j, ng_response *res, const uint8_t *answer, size_t answer_len, int *done, uint64_t idem_expires_ms)
{
    const ng_config *cfg = ng_gateway_config(j->g);
    ng_queue_submit s;
    ng_queue *q, *http = NULL;
    ng_err err;
    size_t i;

    *done = 0;
    memset(&s, 0, sizeof s);
    s.request = j->req->redelivered_until_stored ? NULL : j->request;
    s.request_expires_ms = j->now + 2000u * (uint64_t)cfg->webhooks.tolerance_s;
    if (j->has_idem) {
        s.idem = j->idem;
        s.idem_expires_ms = idem_expires_ms;
    }
    err = ng_gateway_outbox_take(j->g, &http);
    if (err != NG_OK && err != NG_ERR_UNSUPPORTED)
        return err;
    if (http == NULL) { /* everything in one atomic step */
        s.answer = answer;
        s.answer_len = answer_len;
        s.parcels = j->parcels;
        s.n = j->sub.n;
    }
    err = ng_gateway_queue_take(j->g, &q);
    if (err == NG_OK) {
        err = ng_queue_outbox_submit(q, j->t->slug, &s);
        if (err == NG_OK && s.previous == NULL && http != NULL) {
            for (i = 0; i < j->sub.n && err == NG_OK; i++) {
                ng_queue_parcel *p = &j->parcels[i];

                err = ng_queue_outbox_append(http, j->t->slug, p->key_id, p->msg_id, p->created_ms, p->expires_ms,
                                             p->data, p->len, p->id);
            }
            if (err == NG_OK && j->has_idem) {
                ng_queue_submit keep = s;

                keep.request = NULL;
                keep.answer = answer;
                keep.answer_len = answer_len;
                err = ng_queue_outbox_submit(q, j->t->slug, &keep);
                free(keep.previous);
            }
        }
        ng_gateway_queue_give(j->g, q);
    }
    if (http != NULL)
        ng_gateway_outbox_give(j->g, http);
    if (err == NG_ERR_EXISTS) {
        refuse(j, res, 401, "replayed", "this webhook-id was used before: sign each request with a fresh one");
        *done = 1;
        return NG_OK;
    }
    if (err == NG_OK && s.previous != NULL) {
        replay_answer(j, res, s.previous, s.previous_len);
        free(s.previous);
        *done = 1;
    }
    return err;
}

static void
job_free(struct job *j)
{
    size_t i;

    for (i = 0; j->sealed != NULL && i < j->sub.n; i++)
        free(j->sealed[i]);
    free(j->sealed);
    free(j->parcels);
    free(j->ttl_ms);
    free(j->patterns);
    free(j->peers);
    ng_submit_free(&j->sub);
}

/*
 * Stores the job's parcels with text as the answer (kept under the
 * idempotency key until idem_expires_ms, with the request's fingerprint)
 * and answers 202 with it, or the earlier answer, or the store's refusal.
 */
static void
store_answered(struct job *j, ng_response *res, const char *text, uint64_t idem_expires_ms)
{
    size_t answer_len = text != NULL ? DIGEST + strlen(text) : 0;
    uint8_t *answer = text != NULL ? malloc(answer_len) : NULL;
    int done;
    ng_err err;

    if (answer == NULL) {
        refuse(j, res, 500, "internal", "out of memory");
        return;
    }
    memcpy(answer, j->fingerprint, DIGEST);
    memcpy(answer + DIGEST, text, answer_len - DIGEST);
    err = store(j, res, answer, answer_len, &done, idem_expires_ms);
    free(answer);
    if (err) {
        store_failed(j, res, err);
        return;
    }
    if (!done) {
        /* /parcels counts as /messages does: its refusals already are, in ng_messages_refused_total. */
        ng_metrics_add(ng_gateway_metrics(j->g), "ng_messages_accepted_total", NULL, (double)j->sub.n);
        ng_metrics_add(ng_gateway_metrics(j->g), "ng_parcels_stored_total", NULL, (double)j->sub.n);
        ng_response_text(res, 202, NULL, text);
    }
}

void
ng_api_messages(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    ng_directory *dir = ng_gateway_directory(g);
    struct job j;
    char *text = NULL;

    memset(&j, 0, sizeof j);
    j.g = g;
    j.req = req;
    j.now = ng_parcel_now_ms();
    j.t = ng_directory_tenant(dir, params[0]);
    if (j.t == NULL) {
        refuse(&j, res, 404, "unknown_tenant", "no such tenant");
        goto out;
    }
    if (authenticate(&j, res) != 0 || parse(&j, res) != 0 || check_messages(&j, res) != 0 ||
        idempotency(&j, res) != 0 || rate_limit(&j, res) != 0)
        goto out;
    fingerprint(&j);
    if (seal_all(&j, res) != 0)
        goto out;
    text = answer_text(&j);
    store_answered(&j, res, text, j.now + 1000u * NG_API_IDEMPOTENCY_TTL_S);
out:
    free(text);
    job_free(&j);
    ng_directory_release(dir);
}

/* ---- sealed by the backend: POST /v1/tenants/{tenant}/parcels ---- */

/*
 * What the header of a parcel the backend sealed itself allows the gateway
 * to check: its framing and size, a recipient that is one of the tenant's
 * peers and accepts the pattern, a K sender that is the tenant, and its
 * times. The rest (the tag, an X sender) only the recipient can check.
 */
static int
check_sealed(struct job *j, const ng_directory *dir, ng_response *res, ng_parcel_header *h, const ng_dir_peer **peer)
{
    const ng_config *cfg = ng_gateway_config(j->g);
    uint64_t max_plain = 0;
    ng_receive_opts o;
    ng_err err;

    if (!ng_request_type_is(j->req, NG_PARCEL_CONTENT_TYPE)) {
        refuse(j, res, 415, "unsupported_media_type", "expected " NG_PARCEL_CONTENT_TYPE);
        return -1;
    }
    /* The rules the recipient's gateway will apply, so that what it would refuse is not stored. */
    ng_gateway_receive_opts(j->g, &o);
    o.now_ms = j->now;
    err = ng_parcel_inspect(h, j->req->body, j->req->body_len, o.max_bytes);
    if (err == NG_ERR_TOO_LARGE) {
        refuse(j, res, 413, "too_large", "the parcel is over listen.max_body");
        return -1;
    }
    if (err) {
        refuse(j, res, 400, "malformed_parcel", "not a parcel: its header or framing does not parse");
        return -1;
    }
    /*
     * The limits /messages puts on a body, or sealing it oneself would get
     * round them. Only the plaintext's length shows (meta and body), so
     * that is what counts.
     */
    if (cfg->messages.max_body > 0)
        max_plain = (uint64_t)cfg->messages.max_body;
    if (j->t->max_message > 0 && (max_plain == 0 || j->t->max_message < max_plain))
        max_plain = j->t->max_message;
    if (max_plain > 0 && h->plaintext_len > max_plain) {
        refuse(j, res, 413, "too_large",
               "the parcel's plaintext is over the message limit (messages.max_body, the tenant's max_message)");
        return -1;
    }
    /* Any epoch of the peer's keys: it opens with older ones until it retires them. */
    *peer = ng_directory_sender(dir, j->t, h->recipient_key_id, NULL);
    if (*peer == NULL) {
        refuse(j, res, 404, "unknown_peer", "the parcel is sealed to a key of none of the tenant's peers");
        return -1;
    }
    if (((*peer)->patterns & NG_DIR_PATTERN_BIT(h->pattern)) == 0) {
        refuse(j, res, 400, "pattern_not_accepted", "the peer does not accept the parcel's pattern");
        return -1;
    }
    /* Key ids are unique across tenants (ng_directory_load), so this is "one of t's live keys". */
    if (ng_pattern_base(h->pattern) == NG_PATTERN_K && ng_directory_recipient(dir, h->sender_key_id, NULL) != j->t) {
        refuse(j, res, 400, "wrong_sender", "a K parcel must be sealed with one of the tenant's keys");
        return -1;
    }
    /* The checks a recipient makes of the times, here before anything is stored. */
    err = ng_receive_check_time(h, &o);
    if (err == NG_ERR_EXPIRED) {
        refuse(j, res, 400, "expired", "the parcel has expired");
        return -1;
    }
    if (err == NG_ERR_NOT_YET_VALID) {
        refuse(j, res, 400, "not_yet_valid", "the parcel was created in the future (messages.clock_skew_s)");
        return -1;
    }
    if (err) {
        refuse(j, res, 400, "bad_ttl", "the parcel lives longer than messages.max_ttl_s");
        return -1;
    }
    return 0;
}

/*
 * A parcel the backend sealed itself, appended to the outbox unopened. Its
 * message id is its idempotency key: the same parcel again gets the first
 * answer and is not stored twice; another parcel with that id is a replay.
 */
void
ng_api_tenant_parcels(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    ng_directory *dir = ng_gateway_directory(g);
    const ng_config *cfg = ng_gateway_config(g);
    const ng_dir_peer *peer = NULL;
    crypto_generichash_state st;
    ng_parcel_header h;
    struct job j;
    char *text = NULL;
    json_t *doc;

    memset(&j, 0, sizeof j);
    j.g = g;
    j.req = req;
    j.now = ng_parcel_now_ms();
    j.t = ng_directory_tenant(dir, params[0]);
    if (j.t == NULL) {
        refuse(&j, res, 404, "unknown_tenant", "no such tenant");
        goto out;
    }
    if (authenticate(&j, res) != 0 || check_sealed(&j, dir, res, &h, &peer) != 0)
        goto out;
    j.sub.n = 1;
    if (rate_limit(&j, res) != 0)
        goto out;
    j.parcels = calloc(1, sizeof *j.parcels);
    if (j.parcels == NULL) {
        refuse(&j, res, 500, "internal", "out of memory");
        goto out;
    }
    parcel_of(&j.parcels[0], &h, req->body, req->body_len);
    crypto_generichash_init(&st, NULL, 0, DIGEST);
    crypto_generichash_update(&st, (const uint8_t *)"noisegate-parcel-id-v1", 22);
    crypto_generichash_update(&st, h.message_id, sizeof h.message_id);
    crypto_generichash_final(&st, j.idem, DIGEST);
    j.has_idem = 1;
    j.sealed_by_backend = 1;
    crypto_generichash(j.fingerprint, DIGEST, req->body, req->body_len, NULL, 0);
    doc = answer_entry(&j.parcels[0], peer->name);
    text = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    /* Kept while the recipient could still take a copy: until the parcel expires, and the skew after. */
    store_answered(&j, res, text, h.expires_ms + 1000u * (uint64_t)cfg->messages.clock_skew_s);
out:
    free(text);
    free(j.parcels);
    ng_directory_release(dir);
}

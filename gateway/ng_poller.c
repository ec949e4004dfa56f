#include "ng_poller.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "ng_b64.h"
#include "ng_curlbuf.h"
#include "ng_deliver.h"
#include "ng_hex.h"
#include "ng_jsonload.h"
#include "ng_queue_http.h"
#include "ng_queue_redis.h"
#include "ng_redis.h"
#include "ng_stop.h"

enum {
    FETCH_MAX = NG_QUEUE_ACCEPT_MAX, /* parcels per request: what one inbox step takes */
    DRAIN_ROUNDS = 16,               /* full batches read in a row before others get their turn */
    LEASE_EXTRA_MS = 5000,           /* beyond two fetch timeouts: renewed each round, released after a poll */
    MAX_STORES = 64,                 /* peer storage and Redis handles kept, one per outbox URL */
    CURSOR_NAME = 33,
};

/* Where we are with one (tenant, peer). Kept sorted like the directory: by slug, then peer name. */
struct pair {
    char slug[NG_QUEUE_NAME_BYTES];
    char peer[NG_QUEUE_NAME_BYTES];
    uint64_t next_ms;
    uint64_t interval_ms;
    int failing;
};

struct store {
    char url[NG_QUEUE_HTTP_URL_BYTES];
    ng_queue *q;
};

struct ng_poller {
    ng_gateway *g;
    pthread_t thread;
    ng_stop stop;
    CURL *curl;
    struct pair *pairs;
    size_t npairs;
    ng_directory *dir; /* the one pairs was built from */
    struct store stores[MAX_STORES];
    size_t nstores;
    ng_deliver_guard store_guard; /* of the peer storage request in progress: one at a time, on this thread */
};

static int
pair_cmp(const char *slug, const char *peer, const struct pair *p)
{
    int c = strcmp(slug, p->slug);

    return c != 0 ? c : strcmp(peer, p->peer);
}

/* The pairs of a new directory, each keeping the state it had in the old one. */
static ng_err
rebuild(ng_poller *p, ng_directory *d)
{
    const ng_config *cfg = ng_gateway_config(p->g);
    struct pair *fresh;
    size_t i, j, n = 0, k = 0;

    for (i = 0; i < ng_directory_count(d); i++)
        n += ng_directory_at(d, i)->npeers;
    fresh = calloc(n ? n : 1, sizeof *fresh);
    if (fresh == NULL)
        return NG_ERR_NOMEM;
    for (i = 0; i < ng_directory_count(d); i++) {
        const ng_dir_tenant *t = ng_directory_at(d, i);

        for (j = 0; j < t->npeers; j++) {
            struct pair *f = &fresh[k++];
            size_t lo = 0, hi = p->npairs;

            snprintf(f->slug, sizeof f->slug, "%s", t->slug);
            snprintf(f->peer, sizeof f->peer, "%s", t->peers[j].name);
            f->interval_ms = (uint64_t)cfg->poll.interval_ms;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = pair_cmp(f->slug, f->peer, &p->pairs[mid]);

                if (c == 0) {
                    f->next_ms = p->pairs[mid].next_ms;
                    f->interval_ms = p->pairs[mid].interval_ms;
                    f->failing = p->pairs[mid].failing;
                    break;
                }
                if (c < 0)
                    hi = mid;
                else
                    lo = mid + 1;
            }
        }
    }
    free(p->pairs);
    p->pairs = fresh;
    p->npairs = n;
    return NG_OK;
}

/*
 * A cursor per (peer, outbox, our key id): a peer may still seal to a key we
 * rotated away from, and a cursor means something only in the outbox it came
 * from. A peer that moves its outbox is read from the start of the new one;
 * the replay check drops what was already taken in.
 */
static void
cursor_name(char out[CURSOR_NAME], const ng_dir_peer *peer, const uint8_t kid[NG_KEY_ID_BYTES])
{
    uint8_t h[16];
    crypto_generichash_state st;

    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const uint8_t *)peer->name, strlen(peer->name) + 1);
    crypto_generichash_update(&st, (const uint8_t *)peer->outbox, strlen(peer->outbox) + 1);
    crypto_generichash_update(&st, kid, NG_KEY_ID_BYTES);
    crypto_generichash_final(&st, h, sizeof h);
    ng_hex_encode(out, CURSOR_NAME, h, sizeof h);
}

static int
is_redis_outbox(const char *url)
{
    return strncmp(url, "redis://", 8) == 0;
}

static int
is_gateway_outbox(const char *url)
{
    size_t len = strlen(url), suffix = strlen("/v1/outbox");

    return len >= suffix && strcmp(url + len - suffix, "/v1/outbox") == 0;
}

/* The same line whichever way a peer's outbox is read, so that one search finds every refusal. */
static void
log_refused(ng_poller *p, const ng_dir_peer *peer, const char *addr)
{
    ng_log_event(ng_gateway_log(p->g), NG_LOG_WARN, "peer outbox address not allowed (delivery.allow_private)", "peer",
                 peer->name, "address", addr, NULL);
}

/* A string without U+0000 (which strlen would cut short), or NULL. */
static const char *
plain_string(const json_t *v)
{
    const char *s = json_string_value(v);

    return s != NULL && strlen(s) == json_string_length(v) ? s : NULL;
}

/*
 * {"parcels": [{"id", "parcel"}], "next"} into out, no more than the limit
 * asked for (itself at most FETCH_MAX); what a peer sends is checked like
 * any input. ng_jsonload, not json_loadb: a listing is mostly
 * base64, which jansson reads a byte at a time.
 */
static ng_err
parse_listing(const ng_curlbuf *b, size_t limit, ng_queue_batch *out)
{
    json_t *doc, *list, *e;
    const char *next;
    size_t i;
    ng_err err = NG_OK;

    memset(out, 0, sizeof *out);
    if ((err = ng_jsonload((const uint8_t *)b->data, b->len, &doc, NULL)) != NG_OK)
        return err;
    list = json_object_get(doc, "parcels");
    next = plain_string(json_object_get(doc, "next"));
    if (!json_is_array(list) || next == NULL || strlen(next) >= NG_QUEUE_ID_BYTES || json_array_size(list) > limit) {
        json_decref(doc);
        return NG_ERR_PARSE;
    }
    out->items = calloc(json_array_size(list) ? json_array_size(list) : 1, sizeof *out->items);
    if (out->items == NULL) {
        json_decref(doc);
        return NG_ERR_NOMEM;
    }
    json_array_foreach(list, i, e)
    {
        const char *id = plain_string(json_object_get(e, "id"));
        const char *b64 = json_string_value(json_object_get(e, "parcel"));
        /* Not strlen: a "\u0000" would cut the text short, and what follows it would go unchecked. */
        size_t b64_len = json_string_length(json_object_get(e, "parcel")), len, cap;
        ng_queue_item *it = &out->items[out->n];

        if (id == NULL || b64 == NULL || strlen(id) >= NG_QUEUE_ID_BYTES) {
            err = NG_ERR_PARSE;
            break;
        }
        cap = b64_len / 4 * 3 + 3;
        it->data = malloc(cap);
        if (it->data == NULL) {
            err = NG_ERR_NOMEM;
            break;
        }
        if (ng_b64_decode(it->data, cap, &len, b64, b64_len, sodium_base64_VARIANT_ORIGINAL) != NG_OK) {
            free(it->data);
            it->data = NULL;
            err = NG_ERR_PARSE;
            break;
        }
        it->len = len;
        snprintf(it->id, sizeof it->id, "%s", id);
        out->n++;
    }
    snprintf(out->next, sizeof out->next, "%s", next);
    json_decref(doc);
    if (err)
        ng_queue_batch_free(out);
    return err;
}

/* GET <outbox>/<kid hex>?limit=&after= from a peer gateway. */
static ng_err
fetch_gateway(ng_poller *p, const ng_dir_peer *peer, const uint8_t kid[NG_KEY_ID_BYTES], const char *after,
              size_t limit, ng_queue_batch *out)
{
    const ng_config *cfg = ng_gateway_config(p->g);
    char url[NG_QUEUE_HTTP_URL_BYTES + 256], hex[2 * NG_KEY_ID_BYTES + 1], auth[128], tok[65];
    struct curl_slist *hdrs = NULL;
    ng_curlbuf b;
    ng_deliver_guard guard;
    char *esc;
    long status = 0;
    CURLcode rc;
    ng_err err;

    memset(out, 0, sizeof *out);
    if (p->curl == NULL && (p->curl = curl_easy_init()) == NULL)
        return NG_ERR_NOMEM;
    ng_hex_encode(hex, sizeof hex, kid, NG_KEY_ID_BYTES);
    esc = curl_easy_escape(p->curl, after, 0);
    if (esc == NULL)
        return NG_ERR_NOMEM;
    snprintf(url, sizeof url, "%s/%s?limit=%zu%s%s", peer->outbox, hex, limit, after[0] ? "&after=" : "", esc);
    curl_free(esc);
    ng_hex_encode(tok, sizeof tok, peer->read_token, 32);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
    sodium_memzero(tok, sizeof tok);
    hdrs = curl_slist_append(hdrs, auth);
    sodium_memzero(auth, sizeof auth);
    /* A full batch of the largest parcels, base64, and the JSON around them. */
    ng_curlbuf_init(&b, limit * ((size_t)cfg->listen.max_body / 3 * 4 + 256) + 4096);
    curl_easy_reset(p->curl);
    curl_easy_setopt(p->curl, CURLOPT_URL, url);
    curl_easy_setopt(p->curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(p->curl, CURLOPT_TIMEOUT_MS, (long)cfg->outbox.http_timeout_ms);
    curl_easy_setopt(p->curl, CURLOPT_NOSIGNAL, 1L);
    /* The outbox URL comes from a peer's connection parameters: the same address rule as webhooks. */
    guard.allow = (const char *const *)cfg->delivery.allow_private;
    guard.allow_len = cfg->delivery.allow_private_len;
    rc = (CURLcode)ng_deliver_guard_install(p->curl, &guard);
    if (rc == CURLE_OK)
        rc = (CURLcode)ng_curlbuf_attach(p->curl, &b);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(p->curl);
    curl_slist_free_all(hdrs); /* curl keeps no copy of the token past the transfer */
    if (rc == CURLE_OK)
        curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status >= 500) {
        char st[24];

        /* Said here, because the caller's "unavailable" would read as our own store. */
        snprintf(st, sizeof st, "%ld", status);
        if (guard.refused)
            log_refused(p, peer, guard.refused_addr);
        else
            ng_log_event(ng_gateway_log(p->g), NG_LOG_DEBUG, "peer outbox did not answer", "peer", peer->name, "status",
                         st, "error", rc != CURLE_OK ? curl_easy_strerror(rc) : "server error", NULL);
        err = NG_ERR_UNAVAILABLE;
    } else if (status != 200)
        err = NG_ERR_AUTH; /* 401, 404: the operator must look; logged by the caller */
    else
        err = parse_listing(&b, limit, out);
    if (err && rc == CURLE_OK && status != 200 && status < 500) {
        char st[24];

        snprintf(st, sizeof st, "%ld", status);
        ng_log_event(ng_gateway_log(p->g), NG_LOG_WARN, "peer outbox refused the read", "peer", peer->name, "status",
                     st, NULL);
    }
    ng_curlbuf_free(&b);
    return err;
}

/* A peer's storage is where the peer said: the webhooks' address rule, set again on each request. */
static ng_err
store_prepare(void *curl, void *user)
{
    ng_poller *p = user;
    const ng_config *cfg = ng_gateway_config(p->g);
    int rc;

    p->store_guard.allow = (const char *const *)cfg->delivery.allow_private;
    p->store_guard.allow_len = cfg->delivery.allow_private_len;
    rc = ng_deliver_guard_install(curl, &p->store_guard);
    return rc == CURLE_OK ? NG_OK : rc == CURLE_OUT_OF_MEMORY ? NG_ERR_NOMEM : NG_ERR_IO;
}

/* A refused address is final for this poll: reported as a peer gateway's would be, and the pair backs off. */
static ng_err
store_failed(void *curl, int curl_code, void *user)
{
    ng_poller *p = user;

    (void)curl;
    (void)curl_code;
    return p->store_guard.refused ? NG_ERR_UNAVAILABLE : NG_OK;
}

/* outbox.http_url, trailing slashes aside: the operator's own store, not an address a peer chose. */
static int
is_own_store(const ng_config *cfg, const char *url)
{
    size_t a = strlen(url), b = strlen(cfg->outbox.http_url);

    if (cfg->outbox.store != NG_CONFIG_OUTBOX_STORE_HTTP)
        return 0;
    while (a > 0 && url[a - 1] == '/')
        a--;
    while (b > 0 && cfg->outbox.http_url[b - 1] == '/')
        b--;
    return a > 0 && a == b && memcmp(url, cfg->outbox.http_url, a) == 0;
}

static ng_err
http_open(ng_poller *p, const char *url, ng_queue **q)
{
    const ng_config *cfg = ng_gateway_config(p->g);
    ng_queue_http_options o;

    ng_queue_http_options_init(&o, cfg->outbox.http_timeout_ms);
    if (!is_own_store(cfg, url)) {
        o.prepare = store_prepare;
        o.failed = store_failed;
        o.hook_user = p;
    }
    return ng_queue_http_new_with(q, url, &o);
}

/* The same server and database, the host's case aside; "" and unix: URLs match no peer's. */
static int
redis_same(const ng_redis_url *a, const char *url)
{
    ng_redis_url b;

    return ng_redis_parse_url(&b, url) == NG_OK && b.host[0] != '\0' && strcasecmp(a->host, b.host) == 0 &&
           a->port == b.port && a->db == b.db;
}

/*
 * A peer's Redis is read only where the operator allowed it: this gateway's
 * own (redis.url) or one listed in poll.peer_redis. A server a peer chose
 * could hold the poller with slow replies, or answer without bound. And in
 * our own Redis a peer may not pass for one of our tenants: their outboxes
 * are there too, under the same names.
 */
static ng_err
redis_allowed(ng_poller *p, ng_directory *d, const ng_dir_peer *peer)
{
    const ng_config *cfg = ng_gateway_config(p->g);
    const char *why = NULL;
    ng_redis_url u;
    int own, listed = 0;
    size_t i;

    if (ng_redis_parse_url(&u, peer->outbox) != NG_OK || u.host[0] == '\0')
        return NG_ERR_INVALID_ARG; /* import checked it: only a hand-edited vault gets here */
    own = redis_same(&u, cfg->redis.url);
    for (i = 0; i < cfg->poll.peer_redis_len && !own && !listed; i++)
        listed = redis_same(&u, cfg->poll.peer_redis[i]);
    if (!own && !listed)
        why = "peer outbox in a Redis not allowed (poll.peer_redis)";
    else if (own && ng_directory_tenant(d, peer->remote) != NULL)
        why = "peer outbox refused: in this gateway's own Redis, the peer's name is one of its tenants";
    if (why == NULL)
        return NG_OK;
    ng_log_event(ng_gateway_log(p->g), NG_LOG_WARN, why, "peer", peer->name, "outbox", peer->outbox, NULL);
    return NG_ERR_UNAVAILABLE;
}

static ng_err
storage(ng_poller *p, const ng_dir_peer *peer, ng_queue **q)
{
    size_t i;
    ng_err err;

    for (i = 0; i < p->nstores; i++)
        if (strcmp(p->stores[i].url, peer->outbox) == 0) {
            *q = p->stores[i].q;
            return NG_OK;
        }
    if (p->nstores == MAX_STORES) { /* forget the oldest: a handle is only a reused connection */
        ng_queue_free(p->stores[0].q);
        memmove(&p->stores[0], &p->stores[1], (MAX_STORES - 1) * sizeof p->stores[0]);
        p->nstores--;
    }
    err = is_redis_outbox(peer->outbox) ? ng_queue_redis_new(q, peer->outbox, ng_gateway_config(p->g)->redis.timeout_ms)
                                        : http_open(p, peer->outbox, q);
    if (err)
        return err;
    snprintf(p->stores[p->nstores].url, sizeof p->stores[p->nstores].url, "%s", peer->outbox);
    p->stores[p->nstores++].q = *q;
    return NG_OK;
}

/* After a failure: the next poll connects afresh, resolving the host again in case it moved. */
static void
storage_forget(ng_poller *p, const ng_queue *q)
{
    size_t i;

    for (i = 0; i < p->nstores; i++)
        if (p->stores[i].q == q) {
            ng_queue_free(p->stores[i].q);
            memmove(&p->stores[i], &p->stores[i + 1], (p->nstores - i - 1) * sizeof p->stores[0]);
            p->nstores--;
            return;
        }
}

static ng_err
fetch(ng_poller *p, ng_directory *d, const ng_dir_peer *peer, const uint8_t kid[NG_KEY_ID_BYTES], const char *after,
      size_t limit, ng_queue_batch *out)
{
    ng_queue *q;
    ng_err err;

    if (is_gateway_outbox(peer->outbox))
        return fetch_gateway(p, peer, kid, after, limit, out);
    memset(out, 0, sizeof *out);
    p->store_guard.refused = 0; /* the own store has no guard to clear it */
    err = is_redis_outbox(peer->outbox) ? redis_allowed(p, d, peer) : NG_OK;
    if (err == NG_OK)
        err = storage(p, peer, &q);
    if (err == NG_OK) {
        /* The outbox is the peer's, so its streams are under its name; HTTP storage has no names. */
        err = ng_queue_outbox_read(q, peer->remote, kid, after, limit, out);
        if (err == NG_ERR_UNAVAILABLE && is_redis_outbox(peer->outbox))
            storage_forget(p, q);
    }
    if (err && p->store_guard.refused)
        log_refused(p, peer, p->store_guard.refused_addr);
    return err;
}

/* Checks a batch, puts what passes in the inbox, then moves the cursor. NG_OK once the cursor moved. */
static ng_err
take_in(ng_poller *p, ng_directory *d, ng_queue *q, const ng_dir_tenant *t, const ng_dir_peer *peer, const char *cname,
        const ng_queue_batch *b)
{
    ng_metrics *m = ng_gateway_metrics(p->g);
    ng_queue_msg *msgs = calloc(b->n ? b->n : 1, sizeof *msgs);
    uint8_t **recs = calloc(b->n ? b->n : 1, sizeof *recs);
    ng_receive_opts o;
    size_t i, n = 0, opened = 0;
    ng_err err = NG_OK;

    if (msgs == NULL || recs == NULL) {
        free(msgs);
        free(recs);
        return NG_ERR_NOMEM;
    }
    ng_gateway_receive_opts(p->g, &o);
    o.from_peer = peer->name;
    for (i = 0; i < b->n && err == NG_OK; i++) {
        ng_received r;
        ng_err e = ng_receive_check(d, b->items[i].data, b->items[i].len, &o, &r);

        if (e == NG_OK && r.tenant != t)
            e = NG_ERR_WRONG_RECIPIENT; /* sealed for another of our tenants: not this outbox's to give */
        if (e == NG_ERR_NOMEM) {
            err = e;
            break;
        }
        if (e) {
            char hex[2 * NG_PARCEL_MESSAGE_ID_BYTES + 1] = "";

            if (r.header.n_messages > 0)
                ng_hex_encode(hex, sizeof hex, r.header.message_id, NG_PARCEL_MESSAGE_ID_BYTES);
            ng_metrics_add(m, "ng_parcels_refused_total", (const char *[]){"reason", ng_receive_reason(e), NULL}, 1);
            ng_log_event(ng_gateway_log(p->g), NG_LOG_INFO, "parcel refused", "tenant", t->slug, "peer", peer->name,
                         "message_id", hex, "reason", ng_receive_reason(e), NULL);
            continue;
        }
        err = ng_receive_record(&recs[n], &msgs[n].len, peer->name, b->items[i].data, b->items[i].len);
        if (err)
            break;
        memcpy(msgs[n].msg_id, r.header.message_id, NG_QUEUE_MSG_ID_BYTES);
        msgs[n].expires_ms = r.header.expires_ms;
        msgs[n].data = recs[n];
        n++;
    }
    if (err == NG_OK && n > 0)
        err = ng_queue_inbox_accept_many(q, t->slug, msgs, n);
    for (i = 0; err == NG_OK && i < n; i++) {
        if (msgs[i].result == NG_OK)
            opened++;
        else
            ng_metrics_add(m, "ng_parcels_refused_total", (const char *[]){"reason", "replayed", NULL}, 1);
    }
    if (err == NG_OK && b->next[0] != '\0')
        err = ng_queue_cursor_set(q, t->slug, cname, b->next);
    ng_metrics_add(m, "ng_parcels_polled_total", NULL, (double)b->n);
    ng_metrics_add(m, "ng_parcels_opened_total", NULL, (double)opened);
    if (opened > 0)
        ng_gateway_inbox_changed(p->g);
    for (i = 0; i < n; i++)
        free(recs[i]);
    free(recs);
    free(msgs);
    return err;
}

/* One (tenant, peer): every live key's outbox, draining full batches. */
static void
poll_pair(ng_poller *p, ng_directory *d, const ng_dir_tenant *t, const ng_dir_peer *peer, struct pair *st)
{
    const ng_config *cfg = ng_gateway_config(p->g);
    size_t limit = cfg->poll.batch < FETCH_MAX ? (size_t)cfg->poll.batch : FETCH_MAX, k, round;
    uint64_t max = (uint64_t)cfg->poll.max_interval_ms, min = (uint64_t)cfg->poll.interval_ms;
    /* One round (a fetch and an accept) at most; what a crash leaves behind frees itself this soon. */
    uint64_t lease_ms =
        2u * (uint64_t)(cfg->outbox.http_timeout_ms > cfg->redis.timeout_ms ? cfg->outbox.http_timeout_ms
                                                                            : cfg->redis.timeout_ms) +
        LEASE_EXTRA_MS;
    int got = 0;
    ng_queue *q;
    ng_err err;

    if (peer->read_token == NULL) {
        st->next_ms = ng_stop_mono_ms() + max;
        return;
    }
    err = ng_gateway_queue_take(p->g, &q);
    if (err) {
        st->next_ms = ng_stop_mono_ms() + max;
        return;
    }
    err = ng_queue_lease_take(q, t->slug, peer->name, ng_gateway_owner(p->g), lease_ms);
    if (err == NG_ERR_CONFLICT) { /* another gateway polls this one */
        ng_gateway_queue_give(p->g, q);
        st->next_ms = ng_stop_mono_ms() + max;
        return;
    }
    for (k = 0; k < t->nkeys && err == NG_OK; k++) {
        char cname[CURSOR_NAME], cursor[NG_QUEUE_ID_BYTES];

        cursor_name(cname, peer, t->keys[k].id);
        for (round = 0; round < DRAIN_ROUNDS && err == NG_OK; round++) {
            ng_queue_batch b;

            if (round > 0)
                err = ng_queue_lease_take(q, t->slug, peer->name, ng_gateway_owner(p->g), lease_ms);
            if (err == NG_OK)
                err = ng_queue_cursor_get(q, t->slug, cname, cursor);
            if (err == NG_OK)
                err = fetch(p, d, peer, t->keys[k].id, cursor, limit, &b);
            if (err)
                break;
            err = take_in(p, d, q, t, peer, cname, &b);
            got |= b.n > 0;
            round = b.n < limit ? DRAIN_ROUNDS : round;
            ng_queue_batch_free(&b);
        }
    }
    /* Free for whichever process comes first next time; a lost lease (NG_ERR_CONFLICT) is not ours to free. */
    if (err != NG_ERR_CONFLICT && ng_queue_lease_release(q, t->slug, peer->name, ng_gateway_owner(p->g)) != NG_OK)
        err = err ? err : NG_ERR_UNAVAILABLE;
    ng_gateway_queue_give(p->g, q);
    if (err && !st->failing)
        ng_log_event(ng_gateway_log(p->g), NG_LOG_WARN, "polling a peer failed; backing off", "tenant", t->slug, "peer",
                     peer->name, "outbox", peer->outbox, "error",
                     err == NG_ERR_UNAVAILABLE ? "the peer's outbox or our store did not answer (debug log says which)"
                                               : ng_strerror(err),
                     NULL);
    else if (!err && st->failing)
        ng_log_event(ng_gateway_log(p->g), NG_LOG_INFO, "polling a peer works again", "tenant", t->slug, "peer",
                     peer->name, NULL);
    st->failing = err != NG_OK;
    if (got && !err)
        st->interval_ms = min;
    else
        st->interval_ms = st->interval_ms * 2 > max ? max : st->interval_ms * 2;
    st->next_ms = ng_stop_mono_ms() + st->interval_ms;
}

static int
wait_until(ng_poller *p, uint64_t wake_ms)
{
    uint64_t now = ng_stop_mono_ms();

    return ng_stop_sleep(&p->stop, wake_ms > now ? wake_ms - now : 0);
}

static void *
run(void *arg)
{
    ng_poller *p = arg;
    const ng_config *cfg = ng_gateway_config(p->g);

    for (;;) {
        ng_directory *d = ng_gateway_directory(p->g);
        uint64_t wake = ng_stop_mono_ms() + (uint64_t)cfg->poll.max_interval_ms;
        size_t i, j, at = 0;

        if (d != p->dir && rebuild(p, d) == NG_OK) {
            ng_directory_release(p->dir);
            p->dir = ng_directory_hold(d);
        }
        for (i = 0; i < ng_directory_count(d) && d == p->dir; i++) {
            const ng_dir_tenant *t = ng_directory_at(d, i);

            for (j = 0; j < t->npeers; j++, at++) {
                struct pair *st = &p->pairs[at];

                if (st->next_ms <= ng_stop_mono_ms()) {
                    if (ng_stop_requested(&p->stop)) {
                        ng_directory_release(d);
                        return NULL;
                    }
                    poll_pair(p, d, t, &t->peers[j], st);
                }
                if (st->next_ms < wake)
                    wake = st->next_ms;
            }
        }
        ng_directory_release(d);
        if (wait_until(p, wake))
            return NULL;
    }
}

ng_err
ng_poller_start(ng_poller **out, ng_gateway *g)
{
    ng_poller *p = calloc(1, sizeof *p);

    *out = NULL;
    if (p == NULL)
        return NG_ERR_NOMEM;
    p->g = g;
    if (ng_stop_init(&p->stop) != NG_OK) {
        free(p);
        return NG_ERR_NOMEM;
    }
    if (pthread_create(&p->thread, NULL, run, p) != 0) {
        ng_stop_destroy(&p->stop);
        free(p);
        return NG_ERR_NOMEM;
    }
    *out = p;
    return NG_OK;
}

void
ng_poller_stop(ng_poller *p)
{
    size_t i;

    if (p == NULL)
        return;
    ng_stop_request(&p->stop);
    pthread_join(p->thread, NULL);
    for (i = 0; i < p->nstores; i++)
        ng_queue_free(p->stores[i].q);
    if (p->curl != NULL)
        curl_easy_cleanup(p->curl);
    ng_directory_release(p->dir);
    free(p->pairs);
    ng_stop_destroy(&p->stop);
    free(p);
}

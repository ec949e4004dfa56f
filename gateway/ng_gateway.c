#include "ng_gateway.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__ /* defined by any glibc header above */
#include <malloc.h>
#endif

#include <sodium.h>

#include "ng_api_backend.h"
#include "ng_api_admin.h"
#include "ng_api_manage.h"
#include "ng_api_peer.h"
#include "ng_io.h"
#include "ng_pairing.h"
#include "ng_queue_http.h"
#include "ng_queue_pool.h"
#include "ng_queue_redis.h"
#include "ng_redis_embed.h"
#include "ng_stop.h"

enum {
    RELOAD_EVERY_MS = 1000,
    DEPTH_EVERY = 10, /* reload checks between two queue depth counts: one XLEN pair per tenant each */
    SS_CACHE_ENTRIES = 4096,
    POOL_EXTRA = 12, /* handles beyond the listener's threads: pollers, deliverers, the reloader, the admin's 4 */
};

struct ng_gateway {
    const ng_config *cfg;
    ng_log *log;
    ng_metrics *metrics;
    ng_redis_embed *embed;
    char redis_url[PATH_MAX + 64];
    ng_queue_pool *queues;
    ng_queue_pool *outboxes; /* NULL: outboxes are in Redis */
    ng_ss_cache *cache;
    ng_ratelimit *rates;

    pthread_mutex_t dir_lock;
    ng_directory *dir;

    pthread_mutex_t vault_lock; /* the store is used by one thread at a time */
    ng_vault_store *store;
    const ng_vault_secret *secret;
    uint8_t stamp[NG_VAULT_STORE_STAMP_BYTES];

    char owner[96];
    uint8_t *admin_token; /* sodium_malloc, NG_GATEWAY_ADMIN_TOKEN_BYTES */
    void (*on_inbox)(void *ctx);
    void *on_inbox_ctx;
    pthread_t reloader;
    int reloader_running;
    ng_stop stop; /* of the reloader */
    int stop_ready;
};

/* Request latency wants finer than the milliseconds of ng_stop_mono_ms. */
static double
seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static ng_err
make_redis(void *ctx, ng_queue **out)
{
    ng_gateway *g = ctx;

    return ng_queue_redis_new(out, g->redis_url, g->cfg->redis.timeout_ms);
}

static ng_err
make_http(void *ctx, ng_queue **out)
{
    ng_gateway *g = ctx;

    return ng_queue_http_new(out, g->cfg->outbox.http_url, g->cfg->outbox.http_timeout_ms);
}

static const struct {
    const char *name;
    ng_metric_type type;
    const char *help;
} families[] = {
    {"ng_http_requests_total", NG_METRIC_COUNTER, "HTTP requests by listener, route and status."},
    {"ng_http_request_seconds", NG_METRIC_HISTOGRAM,
     "Time from the whole request read to the response handed over, by route."},
    {"ng_store_up", NG_METRIC_GAUGE, "1 if the queue store answered the last check."},
    {"ng_directory_tenants", NG_METRIC_GAUGE, "Tenants in the directory in use."},
    {"ng_directory_reloads_total", NG_METRIC_COUNTER, "Directory reloads from the vault, by result."},
    {"ng_messages_accepted_total", NG_METRIC_COUNTER, "Messages from backends sealed and stored in an outbox."},
    {"ng_messages_refused_total", NG_METRIC_COUNTER, "Backend requests refused, by reason."},
    {"ng_parcels_stored_total", NG_METRIC_COUNTER, "Parcels appended to outboxes."},
    {"ng_parcels_trimmed_total", NG_METRIC_COUNTER, "Expired parcels removed from our outboxes."},
    {"ng_parcels_served_total", NG_METRIC_COUNTER, "Parcels read from our outboxes by peers."},
    {"ng_parcels_polled_total", NG_METRIC_COUNTER, "Parcels fetched from peers' outboxes or pushed to us."},
    {"ng_parcels_opened_total", NG_METRIC_COUNTER, "Parcels opened and queued for delivery."},
    {"ng_parcels_refused_total", NG_METRIC_COUNTER, "Parcels refused, by reason (expired, replayed, sender, ...)."},
    {"ng_deliveries_total", NG_METRIC_COUNTER, "Webhook delivery attempts by outcome."},
    {"ng_delivery_retries_total", NG_METRIC_COUNTER, "Deliveries scheduled for another attempt."},
    {"ng_dead_letters_total", NG_METRIC_COUNTER, "Messages moved to the dead letters, by reason."},
    {"ng_delivery_seconds", NG_METRIC_HISTOGRAM, "Duration of webhook delivery attempts."},
    {"ng_queue_depth", NG_METRIC_GAUGE, "Inbox messages waiting and dead letters (queue), summed over tenants."},
    {"ng_nats_submissions_total", NG_METRIC_COUNTER,
     "Submissions taken from NATS, by outcome (stored, retried, "
     "terminated)."},
};

static ng_err
define_metrics(ng_metrics *m)
{
    size_t i;
    ng_err err = NG_OK;

    for (i = 0; i < sizeof families / sizeof *families && err == NG_OK; i++)
        err = ng_metrics_define(m, families[i].name, families[i].type, families[i].help);
    return err;
}

/* Opens the vault and loads a directory from it. Called with vault_lock held. */
static ng_err
load_directory(ng_gateway *g, ng_directory **out)
{
    ng_vault *v;
    ng_err err;

    *out = NULL;
    /* The stamp first: a change after it is caught by the next check. */
    err = ng_vault_store_stamp(g->store, g->stamp);
    if (err == NG_OK)
        err = ng_vault_open(&v, g->store, g->secret);
    if (err)
        return err;
    err = ng_directory_load(out, v);
    ng_vault_close(v);
    return err;
}

static void
swap_directory(ng_gateway *g, ng_directory *d)
{
    ng_directory *old;
    char n[24];

    pthread_mutex_lock(&g->dir_lock);
    old = g->dir;
    g->dir = d;
    pthread_mutex_unlock(&g->dir_lock);
    ng_directory_release(old);
#ifdef __GLIBC__
    /*
     * A load holds the whole decrypted vault beside the directory it
     * builds, on whichever thread asked for it; glibc keeps such a peak in
     * that thread's arena (about 80 MB at 10,000 tenants) unless told to
     * give it back, and RSS grew by that much per reload.
     */
    malloc_trim(0);
#endif
    ng_metrics_set(g->metrics, "ng_directory_tenants", NULL, (double)ng_directory_count(d));
    snprintf(n, sizeof n, "%zu", ng_directory_count(d));
    ng_log_event(g->log, NG_LOG_INFO, "directory loaded", "tenants", n, NULL);
}

ng_err
ng_gateway_reload(ng_gateway *g)
{
    ng_directory *d;
    ng_err err;

    pthread_mutex_lock(&g->vault_lock);
    err = load_directory(g, &d);
    pthread_mutex_unlock(&g->vault_lock);
    ng_metrics_add(g->metrics, "ng_directory_reloads_total",
                   (const char *[]){"result", err == NG_OK ? "ok" : "failed", NULL}, 1);
    if (err) {
        ng_log_event(g->log, NG_LOG_WARN, "directory reload failed; the previous one stays in use", "error",
                     ng_strerror(err), NULL);
        return err;
    }
    swap_directory(g, d);
    return NG_OK;
}

/* ng_queue_depth: inbox messages waiting and dead letters, summed over our tenants; left as it was if Redis fails. */
static void
count_depths(ng_gateway *g)
{
    ng_directory *d = ng_gateway_directory(g);
    uint64_t waiting = 0, dead = 0, w, x;
    ng_err err = NG_OK;
    ng_queue *q;
    size_t i;

    if (ng_gateway_queue_take(g, &q) == NG_OK) {
        for (i = 0; i < ng_directory_count(d) && err == NG_OK; i++) {
            err = ng_queue_inbox_depth(q, ng_directory_at(d, i)->slug, &w, &x);
            waiting += err == NG_OK ? w : 0;
            dead += err == NG_OK ? x : 0;
        }
        ng_gateway_queue_give(g, q);
        if (err == NG_OK) {
            ng_metrics_set(g->metrics, "ng_queue_depth", (const char *[]){"queue", "waiting", NULL}, (double)waiting);
            ng_metrics_set(g->metrics, "ng_queue_depth", (const char *[]){"queue", "dead", NULL}, (double)dead);
        }
    }
    ng_directory_release(d);
}

/*
 * Reloads when the vault's stamp moves; an operator's change shows within a
 * second or so. Every DEPTH_EVERY checks it also counts the queues.
 */
static void *
reloader(void *arg)
{
    ng_gateway *g = arg;
    uint8_t now[NG_VAULT_STORE_STAMP_BYTES];
    int failing = 0;
    unsigned round = 0;

    for (;;) {
        int changed;
        ng_err err;

        if (ng_stop_sleep(&g->stop, RELOAD_EVERY_MS))
            return NULL;
        if (round++ % DEPTH_EVERY == 0)
            count_depths(g);

        pthread_mutex_lock(&g->vault_lock);
        err = ng_vault_store_stamp(g->store, now);
        changed = err == NG_OK && sodium_memcmp(now, g->stamp, sizeof now) != 0;
        pthread_mutex_unlock(&g->vault_lock);
        if (err && !failing)
            ng_log_event(g->log, NG_LOG_WARN, "cannot check the vault for changes", "error", ng_strerror(err), NULL);
        failing = err != NG_OK;
        /* A failed reload is logged and counted; the next change tries again. */
        if (changed && ng_gateway_reload(g) != NG_OK)
            continue;
    }
}

/* The admin API's bearer token: read from admin.token_file, made there (0600) on the first start. */
static ng_err
admin_token(ng_gateway *g, char *err, size_t errlen)
{
    uint8_t raw[NG_GATEWAY_ADMIN_TOKEN_BYTES];
    char hex[2 * NG_GATEWAY_ADMIN_TOKEN_BYTES + 2];
    ng_err e;

    g->admin_token = sodium_malloc(NG_GATEWAY_ADMIN_TOKEN_BYTES);
    if (g->admin_token == NULL)
        return NG_ERR_NOMEM;
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
    hex[2 * NG_GATEWAY_ADMIN_TOKEN_BYTES] = '\n';
    e = ng_io_create_excl(g->cfg->admin.token_file, (const uint8_t *)hex, sizeof hex - 1, 0600);
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(hex, sizeof hex);
    if (e == NG_OK || e == NG_ERR_EXISTS)
        e = ng_io_read_hex_file(g->cfg->admin.token_file, g->admin_token, NG_GATEWAY_ADMIN_TOKEN_BYTES);
    if (e)
        snprintf(err, errlen, "admin token %s: %s (64 hex characters expected)", g->cfg->admin.token_file,
                 ng_strerror(e));
    return e;
}

/* The admin routes' bearer token, compared in constant time. */
static int
admin_token_ok(const ng_gateway *g, const ng_request *req)
{
    uint8_t token[NG_GATEWAY_ADMIN_TOKEN_BYTES];
    int ok =
        ng_request_bearer(req, token, sizeof token) == 0 && sodium_memcmp(token, g->admin_token, sizeof token) == 0;

    sodium_memzero(token, sizeof token);
    return ok;
}

ng_err
ng_gateway_new(ng_gateway **out, const ng_config *cfg, ng_log *log, ng_vault_store *store,
               const ng_vault_secret *secret, char *err, size_t errlen)
{
    struct ng_gateway *g;
    char msg[NG_REDIS_EMBED_ERROR_BYTES];
    size_t handles;
    ng_queue *probe;
    ng_err e;

    *out = NULL;
    g = calloc(1, sizeof *g);
    if (g == NULL)
        return NG_ERR_NOMEM;
    g->cfg = cfg;
    g->log = log;
    g->store = store;
    {
        char host[64] = "host";

        (void)gethostname(host, sizeof host - 1);
        host[strcspn(host, ".")] = '\0';
        snprintf(g->owner, sizeof g->owner, "%.40s-%ld-%08x", host, (long)getpid(), randombytes_random());
    }
    g->secret = secret;
    pthread_mutex_init(&g->dir_lock, NULL);
    pthread_mutex_init(&g->vault_lock, NULL);
    e = ng_stop_init(&g->stop);
    g->stop_ready = e == NG_OK;
    if (e == NG_OK)
        e = ng_metrics_new(&g->metrics);
    if (e == NG_OK)
        e = define_metrics(g->metrics);
    if (e == NG_OK)
        e = ng_ss_cache_new(&g->cache, SS_CACHE_ENTRIES);
    if (e == NG_OK)
        e = ng_ratelimit_new(&g->rates);
    if (e) {
        snprintf(err, errlen, "setting up: %s", ng_strerror(e));
        ng_gateway_free(g);
        return e;
    }
    snprintf(g->redis_url, sizeof g->redis_url, "%s", cfg->redis.url);
    if (cfg->redis.url[0] == '\0') {
        e = ng_redis_embed_start(&g->embed, cfg->data_dir, (ng_redis_embed_fsync)cfg->redis.appendfsync, msg,
                                 sizeof msg);
        if (e) {
            snprintf(err, errlen, "embedded redis-server: %s", msg);
            ng_gateway_free(g);
            return e;
        }
        snprintf(g->redis_url, sizeof g->redis_url, "%s", ng_redis_embed_url(g->embed));
        {
            ng_redis_embed_status st;
            char pid[24];

            ng_redis_embed_get_status(g->embed, &st);
            snprintf(pid, sizeof pid, "%ld", (long)st.orphan_stopped);
            if (st.orphan_stopped > 0)
                ng_log_event(g->log, NG_LOG_WARN,
                             "stopped the redis-server a killed gateway left running, then started a new one", "pid",
                             pid, NULL);
        }
    }
    handles = (size_t)ng_server_threads((unsigned)cfg->listen.threads) + POOL_EXTRA;
    e = ng_queue_pool_new(&g->queues, handles, make_redis, g);
    if (e == NG_OK && cfg->outbox.store == NG_CONFIG_OUTBOX_STORE_HTTP)
        e = ng_queue_pool_new(&g->outboxes, handles, make_http, g);
    if (e) {
        snprintf(err, errlen, "queue pool: %s", ng_strerror(e));
        ng_gateway_free(g);
        return e;
    }
    /* One connection now, so that a wrong URL stops the start rather than every request. */
    e = ng_queue_pool_take(g->queues, &probe);
    if (e == NG_OK) {
        e = ng_queue_ping(probe);
        ng_queue_pool_give(g->queues, probe);
    }
    if (e) {
        snprintf(err, errlen, "redis %s: %s", g->redis_url, ng_strerror(e));
        ng_gateway_free(g);
        return e;
    }
    e = admin_token(g, err, errlen);
    if (e) {
        ng_gateway_free(g);
        return e;
    }
    pthread_mutex_lock(&g->vault_lock);
    e = load_directory(g, &g->dir);
    pthread_mutex_unlock(&g->vault_lock);
    if (e) {
        snprintf(err, errlen, "%s: %s", ng_vault_store_where(store), ng_strerror(e));
        ng_gateway_free(g);
        return e;
    }
    ng_metrics_set(g->metrics, "ng_directory_tenants", NULL, (double)ng_directory_count(g->dir));
    if (pthread_create(&g->reloader, NULL, reloader, g) != 0) {
        snprintf(err, errlen, "cannot start a thread");
        ng_gateway_free(g);
        return NG_ERR_NOMEM;
    }
    g->reloader_running = 1;
    *out = g;
    return NG_OK;
}

void
ng_gateway_free(ng_gateway *g)
{
    if (g == NULL)
        return;
    if (g->reloader_running) {
        ng_stop_request(&g->stop);
        pthread_join(g->reloader, NULL);
    }
    ng_directory_release(g->dir);
    if (g->admin_token != NULL)
        sodium_free(g->admin_token); /* sodium_free wipes */
    ng_queue_pool_free(g->outboxes);
    ng_queue_pool_free(g->queues);
    ng_redis_embed_free(g->embed);
    ng_ss_cache_free(g->cache);
    ng_ratelimit_free(g->rates);
    ng_metrics_free(g->metrics);
    if (g->stop_ready)
        ng_stop_destroy(&g->stop);
    pthread_mutex_destroy(&g->vault_lock);
    pthread_mutex_destroy(&g->dir_lock);
    free(g);
}

void
ng_gateway_receive_opts(ng_gateway *g, ng_receive_opts *o)
{
    memset(o, 0, sizeof *o);
    o->skew_ms = (uint64_t)g->cfg->messages.clock_skew_s * 1000u;
    o->max_lifetime_ms = (uint64_t)g->cfg->messages.max_ttl_s * 1000u;
    o->max_bytes = (size_t)g->cfg->listen.max_body;
    o->cache = g->cache;
}

void
ng_gateway_on_inbox(ng_gateway *g, void (*fn)(void *ctx), void *ctx)
{
    g->on_inbox = fn;
    g->on_inbox_ctx = ctx;
}

void
ng_gateway_inbox_changed(ng_gateway *g)
{
    if (g->on_inbox != NULL)
        g->on_inbox(g->on_inbox_ctx);
}

const char *
ng_gateway_owner(const ng_gateway *g)
{
    return g->owner;
}

const ng_config *
ng_gateway_config(const ng_gateway *g)
{
    return g->cfg;
}

ng_log *
ng_gateway_log(ng_gateway *g)
{
    return g->log;
}

ng_metrics *
ng_gateway_metrics(ng_gateway *g)
{
    return g->metrics;
}

ng_ss_cache *
ng_gateway_cache(ng_gateway *g)
{
    return g->cache;
}

ng_ratelimit *
ng_gateway_rates(ng_gateway *g)
{
    return g->rates;
}

ng_directory *
ng_gateway_directory(ng_gateway *g)
{
    ng_directory *d;

    pthread_mutex_lock(&g->dir_lock);
    d = ng_directory_hold(g->dir);
    pthread_mutex_unlock(&g->dir_lock);
    return d;
}

ng_err
ng_gateway_queue_take(ng_gateway *g, ng_queue **q)
{
    ng_err err = ng_queue_pool_take(g->queues, q);

    return err == NG_OK || err == NG_ERR_NOMEM ? err : NG_ERR_UNAVAILABLE;
}

void
ng_gateway_queue_give(ng_gateway *g, ng_queue *q)
{
    ng_queue_pool_give(g->queues, q);
}

ng_err
ng_gateway_outbox_take(ng_gateway *g, ng_queue **q)
{
    ng_err err;

    *q = NULL;
    if (g->outboxes == NULL)
        return NG_ERR_UNSUPPORTED;
    err = ng_queue_pool_take(g->outboxes, q);
    return err == NG_OK || err == NG_ERR_NOMEM ? err : NG_ERR_UNAVAILABLE;
}

void
ng_gateway_outbox_give(ng_gateway *g, ng_queue *q)
{
    ng_queue_pool_give(g->outboxes, q);
}

void
ng_gateway_vault_lock(ng_gateway *g, ng_vault_store **store, const ng_vault_secret **secret)
{
    pthread_mutex_lock(&g->vault_lock);
    *store = g->store;
    *secret = g->secret;
}

void
ng_gateway_vault_unlock(ng_gateway *g)
{
    pthread_mutex_unlock(&g->vault_lock);
}

static void
healthz(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    (void)g;
    (void)req;
    (void)params;
    ng_response_text(res, 200, NULL, "{\"status\":\"ok\"}");
}

static void
readyz(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    ng_queue *q;
    ng_err err;

    (void)req;
    (void)params;
    err = ng_gateway_queue_take(g, &q);
    if (err == NG_OK) {
        err = ng_queue_ping(q);
        ng_gateway_queue_give(g, q);
    }
    ng_metrics_set(g->metrics, "ng_store_up", NULL, err == NG_OK);
    if (err == NG_OK)
        ng_response_text(res, 200, NULL, "{\"status\":\"ready\"}");
    else
        ng_gateway_store_error(res, NG_ERR_UNAVAILABLE, "queue");
}

void
ng_gateway_store_error(ng_response *res, ng_err err, const char *what)
{
    char msg[64];

    snprintf(msg, sizeof msg, "the %s store does not answer; try again", what);
    if (err == NG_ERR_UNAVAILABLE)
        ng_response_error(res, 503, "store_unavailable", msg);
    else
        ng_response_error(res, 500, "internal", ng_strerror(err));
}

static void
metrics(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    char *text;
    size_t len;

    (void)req;
    (void)params;
    if (ng_metrics_render(g->metrics, &text, &len) != NG_OK) {
        ng_response_error(res, 500, "internal", "metrics could not be rendered");
        return;
    }
    res->status = 200;
    res->content_type = "text/plain; version=0.0.4";
    res->body = text;
    res->len = len;
}

struct route {
    const char *method, *path;
    ng_route_fn *fn;
    int token; /* wants the admin token */
};

static const struct route public_routes[] = {
    {"GET", "/healthz", healthz, 0},
    {"GET", "/readyz", readyz, 0},
    {"GET", "/metrics", metrics, 0},
    {"POST", "/v1/tenants/*/messages", ng_api_messages, 0},
    {"POST", "/v1/tenants/*/parcels", ng_api_tenant_parcels, 0},
    {"GET", "/v1/outbox/*", ng_api_outbox, 0},
    {"POST", "/v1/parcels", ng_api_parcels, 0},
    {"POST", "/v1/pairing/*", ng_pairing_complete, 0},
    {NULL, NULL, NULL, 0},
};

static const struct route admin_routes[] = {
    {"GET", "/healthz", healthz, 0},
    {"GET", "/readyz", readyz, 0},
    {"GET", "/metrics", metrics, 0},
    {"GET", "/v1/admin/tenants", ng_api_manage_tenants, 1},
    {"POST", "/v1/admin/tenants", ng_api_manage_tenant_create, 1},
    {"GET", "/v1/admin/tenants/*", ng_api_manage_tenant, 1},
    {"DELETE", "/v1/admin/tenants/*", ng_api_manage_tenant_delete, 1},
    {"GET", "/v1/admin/tenants/*/backends", ng_api_manage_backends, 1},
    {"POST", "/v1/admin/tenants/*/backends", ng_api_manage_backend_add, 1},
    {"DELETE", "/v1/admin/tenants/*/backends/*", ng_api_manage_backend_remove, 1},
    {"POST", "/v1/admin/tenants/*/backends/*/rotate-secret", ng_api_manage_backend_rotate, 1},
    {"GET", "/v1/admin/tenants/*/peers", ng_api_manage_peers, 1},
    {"POST", "/v1/admin/tenants/*/peers", ng_api_manage_peer_import, 1},
    {"DELETE", "/v1/admin/tenants/*/peers/*", ng_api_manage_peer_remove, 1},
    {"GET", "/v1/admin/tenants/*/params", ng_api_manage_params, 1},
    {"GET", "/v1/admin/tenants/*/keys", ng_api_manage_keys, 1},
    {"POST", "/v1/admin/tenants/*/keys/rotate", ng_api_manage_key_rotate, 1},
    {"POST", "/v1/admin/tenants/*/keys/*/retire", ng_api_manage_key_retire, 1},
    {"POST", "/v1/admin/tenants/*/keys/export", ng_api_manage_key_export, 1},
    {"POST", "/v1/admin/tenants/*/keys/import", ng_api_manage_key_import, 1},
    {"GET", "/v1/admin/tenants/*/queue", ng_api_admin_queue, 1},
    {"GET", "/v1/admin/tenants/*/dead", ng_api_admin_dead, 1},
    {"POST", "/v1/admin/tenants/*/dead/*/replay", ng_api_admin_replay, 1},
    {"POST", "/v1/admin/tenants/*/backends/*/enable", ng_api_admin_enable, 1},
    {"POST", "/v1/admin/tenants/*/backends/*/disable", ng_api_admin_disable, 1},
    {"POST", "/v1/admin/tenants/*/pairings", ng_pairing_offer, 1},
    {NULL, NULL, NULL, 0},
};

/* Matches path against a pattern whose "*" segments capture into params. */
static int
match(const char *pattern, const char *path, char params[NG_ROUTE_MAX_PARAMS][NG_ROUTE_PARAM_BYTES])
{
    int n = 0;

    while (*pattern != '\0') {
        if (*pattern == '*') {
            size_t len = strcspn(path, "/");

            if (len == 0 || len >= NG_ROUTE_PARAM_BYTES || n == NG_ROUTE_MAX_PARAMS)
                return 0;
            memcpy(params[n], path, len);
            params[n++][len] = '\0';
            path += len;
            pattern++;
        } else if (*pattern++ != *path++) {
            return 0;
        }
    }
    return *path == '\0';
}

/*
 * Finds the route; unknown paths are 404 and known paths with another
 * method 405. The route label of the metrics is the route's pattern, never
 * the request's path, so that request data cannot create series.
 */
static void
dispatch(ng_gateway *g, const char *listener, const struct route *routes, const ng_request *req, ng_response *res)
{
    char params[NG_ROUTE_MAX_PARAMS][NG_ROUTE_PARAM_BYTES];
    const char *argv[NG_ROUTE_MAX_PARAMS] = {params[0], params[1]};
    const struct route *r, *hit = NULL;
    const char *label = "unmatched";
    char status[8];
    double t0 = seconds();
    int path_known = 0;

    for (r = routes; r->method != NULL && hit == NULL; r++) {
        if (!match(r->path, req->path, params))
            continue;
        path_known = 1;
        label = r->path;
        if (strcmp(r->method, req->method) == 0)
            hit = r;
    }
    if (hit != NULL && hit->token && !admin_token_ok(g, req)) {
        ng_response_header(res, "WWW-Authenticate", "Bearer");
        ng_response_error(res, 401, "unauthorized", "expected Authorization: Bearer <the token in admin.token_file>");
    } else if (req->too_large)
        ng_response_error(res, 413, "too_large", "request body over the configured limit (listen.max_body)");
    else if (hit != NULL)
        hit->fn(g, req, res, argv);
    else if (path_known)
        ng_response_error(res, 405, "method_not_allowed", "this path does not take that method");
    else
        ng_response_error(res, 404, "not_found", "no such route");
    snprintf(status, sizeof status, "%d", res->status);
    ng_metrics_add(g->metrics, "ng_http_requests_total",
                   (const char *[]){"listener", listener, "route", label, "status", status, NULL}, 1);
    ng_metrics_observe(g->metrics, "ng_http_request_seconds", (const char *[]){"route", label, NULL}, seconds() - t0);
    ng_log_event(g->log, res->status >= 500 ? NG_LOG_WARN : NG_LOG_INFO, "request", "request_id", req->request_id,
                 "listener", listener, "method", req->method, "route", label, "status", status, NULL);
}

void
ng_gateway_server_log(void *ctx, const char *line)
{
    ng_gateway *g = ctx;

    ng_log_event(g->log, NG_LOG_WARN, "http server", "detail", line, NULL);
}

void
ng_gateway_public(void *ctx, const ng_request *req, ng_response *res)
{
    dispatch(ctx, "public", public_routes, req, res);
}

void
ng_gateway_admin(void *ctx, const ng_request *req, ng_response *res)
{
    dispatch(ctx, "admin", admin_routes, req, res);
}

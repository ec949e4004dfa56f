#include "ng_gateway.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ng_queue.h"
#include "ng_queue_redis.h"
#include "ng_redis_embed.h"

struct ng_gateway {
    const ng_config *cfg;
    ng_log *log;
    ng_metrics *metrics;
    ng_redis_embed *embed;
    /* One connection for now, so one request at a time uses it. */
    pthread_mutex_t queue_lock;
    ng_queue *queue;
};

static double
seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

ng_err
ng_gateway_new(ng_gateway **out, const ng_config *cfg, ng_log *log, char *err, size_t errlen)
{
    struct ng_gateway *g;
    char msg[NG_REDIS_EMBED_ERROR_BYTES];
    const char *url = cfg->redis.url;
    ng_err e;

    *out = NULL;
    g = calloc(1, sizeof *g);
    if (g == NULL)
        return NG_ERR_NOMEM;
    g->cfg = cfg;
    g->log = log;
    pthread_mutex_init(&g->queue_lock, NULL);
    e = ng_metrics_new(&g->metrics);
    if (e == NG_OK)
        e = ng_metrics_define(g->metrics, "ng_http_requests_total", NG_METRIC_COUNTER,
                              "HTTP requests by listener, route and status.");
    if (e == NG_OK)
        e = ng_metrics_define(g->metrics, "ng_http_request_seconds", NG_METRIC_HISTOGRAM,
                              "Time from the whole request read to the response handed over, by route.");
    if (e == NG_OK)
        e = ng_metrics_define(g->metrics, "ng_store_up", NG_METRIC_GAUGE,
                              "1 if the queue store answered the last check.");
    if (e) {
        snprintf(err, errlen, "metrics: %s", ng_strerror(e));
        ng_gateway_free(g);
        return e;
    }
    if (url[0] == '\0') {
        e = ng_redis_embed_start(&g->embed, cfg->data_dir, (ng_redis_embed_fsync)cfg->redis.appendfsync, msg,
                                 sizeof msg);
        if (e) {
            snprintf(err, errlen, "embedded redis-server: %s", msg);
            ng_gateway_free(g);
            return e;
        }
        url = ng_redis_embed_url(g->embed);
    }
    e = ng_queue_redis_new(&g->queue, url, cfg->redis.timeout_ms);
    if (e) {
        snprintf(err, errlen, "redis %s: %s", url, ng_strerror(e));
        ng_gateway_free(g);
        return e;
    }
    *out = g;
    return NG_OK;
}

void
ng_gateway_free(ng_gateway *g)
{
    if (g == NULL)
        return;
    ng_queue_free(g->queue);
    ng_redis_embed_free(g->embed);
    ng_metrics_free(g->metrics);
    pthread_mutex_destroy(&g->queue_lock);
    free(g);
}

static void
healthz(ng_gateway *g, const ng_request *req, ng_response *res)
{
    (void)g;
    (void)req;
    ng_response_text(res, 200, NULL, "{\"status\":\"ok\"}");
}

static void
readyz(ng_gateway *g, const ng_request *req, ng_response *res)
{
    ng_err err;

    (void)req;
    pthread_mutex_lock(&g->queue_lock);
    err = ng_queue_ping(g->queue);
    pthread_mutex_unlock(&g->queue_lock);
    ng_metrics_set(g->metrics, "ng_store_up", NULL, err == NG_OK);
    if (err == NG_OK)
        ng_response_text(res, 200, NULL, "{\"status\":\"ready\"}");
    else
        ng_response_error(res, 503, "store_unavailable", "the queue store does not answer");
}

static void
metrics(ng_gateway *g, const ng_request *req, ng_response *res)
{
    char *text;
    size_t len;

    (void)req;
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
    void (*fn)(ng_gateway *g, const ng_request *req, ng_response *res);
};

static const struct route common_routes[] = {
    {"GET", "/healthz", healthz},
    {"GET", "/readyz", readyz},
    {"GET", "/metrics", metrics},
    {NULL, NULL, NULL},
};

/*
 * Finds the route; unknown paths are 404 and known paths with another
 * method 405. The route label of the metrics is the route's path, never
 * the request's, so that request data cannot create series.
 */
static void
dispatch(ng_gateway *g, const char *listener, const struct route *routes, const ng_request *req, ng_response *res)
{
    const struct route *r, *hit = NULL;
    const char *label = "unmatched";
    char status[8];
    double t0 = seconds();
    int path_known = 0;

    for (r = routes; r->method != NULL; r++) {
        if (strcmp(r->path, req->path) != 0)
            continue;
        path_known = 1;
        label = r->path;
        if (strcmp(r->method, req->method) == 0)
            hit = r;
    }
    if (req->too_large)
        ng_response_error(res, 413, "too_large", "request body over the configured limit (listen.max_body)");
    else if (hit != NULL)
        hit->fn(g, req, res);
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
    dispatch(ctx, "public", common_routes, req, res);
}

void
ng_gateway_admin(void *ctx, const ng_request *req, ng_response *res)
{
    dispatch(ctx, "admin", common_routes, req, res);
}

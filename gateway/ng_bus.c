#include "ng_bus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>

#include "ng_api_backend.h"
#include "ng_log.h"
#include "ng_metrics.h"
#include "ng_tenant.h"

/* One backend whose submissions are taken: what its callback needs, alive until unconsumed. */
struct route {
    struct route *next;
    ng_bus *bus;
    char slug[NG_TENANT_MAX_SLUG + 1];
    char durable[NG_BUS_NAME_BYTES];
    int seen; /* in the directory at the last sync */
};

struct ng_bus {
    ng_gateway *g;
    ng_nats *n;
    struct route *routes;
};

void
ng_bus_subject(const ng_dir_backend *b, const char *what, char out[NG_BUS_NAME_BYTES])
{
    snprintf(out, NG_BUS_NAME_BYTES, "%s.%s", b->subject, what);
}

void
ng_bus_stream(const ng_dir_tenant *t, const ng_dir_backend *b, ng_nats_stream *out, char name[NG_BUS_NAME_BYTES],
              char subjects[NG_BUS_NAME_BYTES])
{
    char *dot;

    (void)t;
    /* Named after the prefix (the default's "noisegate-<tenant>"): one stream per prefix, however many a tenant has. */
    snprintf(name, NG_BUS_NAME_BYTES, "%s", b->subject);
    for (dot = strchr(name, '.'); dot != NULL; dot = strchr(dot, '.'))
        *dot = '-';
    snprintf(subjects, NG_BUS_NAME_BYTES, "%s.>", b->subject);
    out->url = b->url;
    out->name = name;
    out->subjects = subjects;
}

/* A submission's headers; the webhook-id stands in for a missing Idempotency-Key (see the header). */
static const char *
header_of(const void *ctx, const char *name)
{
    const ng_nats_msg *m = ctx;
    const char *v = ng_nats_msg_header(m, name);

    if (v == NULL && strcasecmp(name, "Idempotency-Key") == 0)
        v = ng_nats_msg_header(m, "webhook-id");
    return v;
}

/* The "code" of an error answer, for the log. */
static void
error_code(const ng_response *res, char *out, size_t cap)
{
    json_t *doc = res->body != NULL ? json_loadb(res->body, res->len, 0, NULL) : NULL;
    const char *code = json_string_value(json_object_get(json_object_get(doc, "error"), "code"));

    snprintf(out, cap, "%s", code != NULL ? code : "");
    json_decref(doc);
}

static ng_nats_verdict
submit(void *ctx, const ng_nats_msg *m, int64_t *retry_ms)
{
    struct route *r = ctx;
    ng_gateway *g = r->bus->g;
    const char *params[2] = {r->slug, NULL};
    char request_id[NG_SERVER_REQUEST_ID_BYTES], status[8], code[64], deliveries[24];
    ng_request req;
    ng_response res;
    ng_nats_verdict v;

    memset(&req, 0, sizeof req);
    memset(&res, 0, sizeof res);
    ng_request_id_new(request_id);
    req.method = "POST";
    req.path = "nats";
    req.request_id = request_id;
    req.body = ng_nats_msg_body(m, &req.body_len);
    if (req.body == NULL)
        req.body = (const uint8_t *)"";
    req.header = header_of;
    req.header_ctx = m;
    req.signed_at_ms = (uint64_t)ng_nats_msg_stored_ms(m);
    req.redelivered_until_stored = 1;
    res.status = 500;
    /* The limit an HTTP request meets before it is read (ng_gateway's dispatch), before its signature is checked. */
    if (req.body_len > (size_t)ng_gateway_config(g)->listen.max_body)
        ng_response_error(&res, 413, "too_large", "request body over the configured limit (listen.max_body)");
    else
        ng_api_messages(g, &req, &res, params);
    if (res.status >= 200 && res.status < 300) {
        v = NG_NATS_ACK;
    } else if (res.status >= 500 || res.status == 429) {
        /* The store is down, or the tenant over its rate: the message is fine, later it goes. */
        *retry_ms = res.status == 429 ? 1000 : 5000;
        v = NG_NATS_RETRY;
    } else {
        v = NG_NATS_TERM;
    }
    if (v != NG_NATS_ACK) {
        snprintf(status, sizeof status, "%d", res.status);
        snprintf(deliveries, sizeof deliveries, "%llu", (unsigned long long)ng_nats_msg_deliveries(m));
        error_code(&res, code, sizeof code);
        ng_log_event(ng_gateway_log(g), v == NG_NATS_TERM ? NG_LOG_WARN : NG_LOG_INFO,
                     v == NG_NATS_TERM ? "NATS submission refused: terminated" : "NATS submission not stored: retried",
                     "tenant", r->slug, "consumer", r->durable, "status", status, "error", code, "deliveries",
                     deliveries, "request_id", request_id, NULL);
    }
    ng_metrics_add(ng_gateway_metrics(g), "ng_nats_submissions_total",
                   (const char *[]){"outcome",
                                    v == NG_NATS_ACK    ? "stored"
                                    : v == NG_NATS_TERM ? "terminated"
                                                        : "retried",
                                    NULL},
                   1);
    ng_response_free(&res);
    return v;
}

ng_err
ng_bus_new(ng_bus **out, ng_gateway *g, ng_nats *n)
{
    ng_bus *b = calloc(1, sizeof *b);

    *out = b;
    if (b == NULL)
        return NG_ERR_NOMEM;
    b->g = g;
    b->n = n;
    return NG_OK;
}

static void
route_start(ng_bus *bus, const ng_dir_tenant *t, const ng_dir_backend *b, const char *durable)
{
    char name[NG_BUS_NAME_BYTES], subjects[NG_BUS_NAME_BYTES], subject[NG_BUS_NAME_BYTES];
    ng_nats_stream s;
    struct route *r = calloc(1, sizeof *r);
    ng_err err;

    if (r == NULL)
        return; /* the next sync tries again */
    r->bus = bus;
    snprintf(r->slug, sizeof r->slug, "%s", t->slug);
    snprintf(r->durable, sizeof r->durable, "%s", durable);
    r->seen = 1;
    ng_bus_stream(t, b, &s, name, subjects);
    ng_bus_subject(b, "submit", subject);
    err = ng_nats_consume(bus->n, &s, subject, durable, submit, r);
    if (err) {
        ng_log_event(ng_gateway_log(bus->g), NG_LOG_WARN, "cannot consume NATS submissions", "tenant", t->slug,
                     "consumer", durable, "error", ng_strerror(err), NULL);
        free(r);
        return;
    }
    r->next = bus->routes;
    bus->routes = r;
}

void
ng_bus_sync(ng_bus *bus, const ng_directory *dir)
{
    struct route *r, **pp;
    size_t i, k;

    for (r = bus->routes; r != NULL; r = r->next)
        r->seen = 0;
    for (i = 0; i < ng_directory_count(dir); i++) {
        const ng_dir_tenant *t = ng_directory_at(dir, i);

        for (k = 0; k < t->nbackends; k++) {
            const ng_dir_backend *b = &t->backends[k];
            char durable[NG_BUS_NAME_BYTES];

            if (!b->nats || !b->active)
                continue;
            snprintf(durable, sizeof durable, "noisegate-%s-%s", t->slug, b->id);
            for (r = bus->routes; r != NULL && strcmp(r->durable, durable) != 0; r = r->next)
                ;
            if (r != NULL)
                r->seen = 1;
            else
                route_start(bus, t, b, durable);
        }
    }
    for (pp = &bus->routes; (r = *pp) != NULL;) {
        if (r->seen) {
            pp = &r->next;
            continue;
        }
        ng_nats_unconsume(bus->n, r->durable);
        *pp = r->next;
        free(r);
    }
}

void
ng_bus_free(ng_bus *bus)
{
    struct route *r, *next;

    if (bus == NULL)
        return;
    for (r = bus->routes; r != NULL; r = next) {
        next = r->next;
        ng_nats_unconsume(bus->n, r->durable);
        free(r);
    }
    free(bus);
}

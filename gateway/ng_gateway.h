/*
 * ng_gateway.h: the running gateway: its configuration, stores, directory
 * of tenants, logs and metrics, and the routing of requests from both
 * listeners to the API modules (ng_api_*.h).
 *
 * Routes common to both listeners: GET /healthz (the process answers),
 * GET /readyz (the queue store answers: 503 otherwise), GET /metrics
 * (Prometheus text). Errors are JSON {"error": {"code", "message"}} with
 * the right status.
 *
 * The directory is reloaded when the vault changes (its stamp is checked
 * every second) or when ng_gateway_reload is called; requests in flight
 * keep the snapshot they started with.
 */
#ifndef NG_GATEWAY_H
#define NG_GATEWAY_H

#include <stddef.h>

#include "ng_config.h"
#include "ng_directory.h"
#include "ng_error.h"
#include "ng_log.h"
#include "ng_metrics.h"
#include "ng_queue.h"
#include "ng_ratelimit.h"
#include "ng_receive.h"
#include "ng_server.h"
#include "ng_sscache.h"
#include "ng_vault.h"
#include "ng_vault_store.h"

typedef struct ng_gateway ng_gateway;

/*
 * Connects the queue store (the Redis at cfg->redis.url, or the embedded
 * redis-server under cfg->data_dir, started now and stopped by
 * ng_gateway_free) and the outbox store, and loads the directory from the
 * vault. cfg, log, store and secret are borrowed and must outlive the
 * gateway. On failure err holds one line for the operator.
 */
NG_MUST_CHECK ng_err ng_gateway_new(ng_gateway **out, const ng_config *cfg, ng_log *log, ng_vault_store *store,
                                    const ng_vault_secret *secret, char *err, size_t errlen);
void ng_gateway_free(ng_gateway *g);

/* The handlers of the public and the admin listener (ctx is the gateway). */
void ng_gateway_public(void *ctx, const ng_request *req, ng_response *res);
void ng_gateway_admin(void *ctx, const ng_request *req, ng_response *res);
/* Where the listeners' own error lines go (ng_server_opts.error_log). */
void ng_gateway_server_log(void *ctx, const char *line);

/* ---- for the API modules ---- */

enum { NG_ROUTE_MAX_PARAMS = 2, NG_ROUTE_PARAM_BYTES = 128 };

/*
 * A route's handler. params are the path's "*" segments in order, each
 * non-empty, without '/', at most NG_ROUTE_PARAM_BYTES - 1 bytes (a longer
 * one does not match the route), percent-escapes already decoded by libmicrohttpd.
 */
typedef void ng_route_fn(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params);

const ng_config *ng_gateway_config(const ng_gateway *g);
ng_log *ng_gateway_log(ng_gateway *g);
ng_metrics *ng_gateway_metrics(ng_gateway *g);
/* The ss cache every seal and open shares. */
ng_ss_cache *ng_gateway_cache(ng_gateway *g);
/* The tenants' submission rates (limits.rate). */
ng_ratelimit *ng_gateway_rates(ng_gateway *g);
/* The current directory, held for the caller: ng_directory_release it. */
ng_directory *ng_gateway_directory(ng_gateway *g);
/* Loads the directory from the vault now and swaps it in. */
NG_MUST_CHECK ng_err ng_gateway_reload(ng_gateway *g);
/*
 * A Redis queue handle for this thread alone, and back. take waits while
 * every handle is busy; NG_ERR_UNAVAILABLE if a new one cannot connect.
 */
NG_MUST_CHECK ng_err ng_gateway_queue_take(ng_gateway *g, ng_queue **q);
void ng_gateway_queue_give(ng_gateway *g, ng_queue *q);
/* The same for the outbox store when it is HTTP storage; NG_ERR_UNSUPPORTED when outboxes are in Redis. */
NG_MUST_CHECK ng_err ng_gateway_outbox_take(ng_gateway *g, ng_queue **q);
void ng_gateway_outbox_give(ng_gateway *g, ng_queue *q);
/* The master key and the vault's store, for the admin API's writes; one writer at a time holds the lock. */
void ng_gateway_vault_lock(ng_gateway *g, ng_vault_store **store, const ng_vault_secret **secret);
void ng_gateway_vault_unlock(ng_gateway *g);

/* How parcels are checked here (skew, lifetime, size, the ss cache), for pushes, polls and deliveries. */
void ng_gateway_receive_opts(ng_gateway *g, ng_receive_opts *o);
/* An id for this process among those sharing a Redis (leases, consumer names): host-pid-random. */
const char *ng_gateway_owner(const ng_gateway *g);

/*
 * Something to wake when messages enter an inbox (the deliverer), so that
 * it need not poll Redis hard. Set once, before the listeners start.
 */
void ng_gateway_on_inbox(ng_gateway *g, void (*fn)(void *ctx), void *ctx);
void ng_gateway_inbox_changed(ng_gateway *g);

/* Admin routes (the ones under /v1/admin) are answered only with this bearer token; dispatch checks it. */
enum { NG_GATEWAY_ADMIN_TOKEN_BYTES = 32 };

/*
 * Answers a store's failure that means nothing more to the route: 503
 * store_unavailable when it did not answer (what names it: "queue" or
 * "vault"), else 500 with the error's name.
 */
void ng_gateway_store_error(ng_response *res, ng_err err, const char *what);

#endif

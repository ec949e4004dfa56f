/*
 * ng_gateway.h: the running gateway: its configuration, store, logs and
 * metrics, and the routing of requests from both listeners.
 *
 * Routes so far: GET /healthz (the process answers), GET /readyz (the
 * queue store answers: 503 otherwise), GET /metrics (Prometheus text).
 * Errors are JSON {"error": {"code", "message"}} with the right status.
 */
#ifndef NG_GATEWAY_H
#define NG_GATEWAY_H

#include <stddef.h>

#include "ng_config.h"
#include "ng_error.h"
#include "ng_log.h"
#include "ng_metrics.h"
#include "ng_server.h"

typedef struct ng_gateway ng_gateway;

/*
 * Connects the queue store: the Redis at cfg->redis.url, or the embedded
 * redis-server under cfg->data_dir (started now, supervised, stopped by
 * ng_gateway_free). cfg and log are borrowed and must outlive the gateway.
 * On failure err holds one line for the operator.
 */
NG_MUST_CHECK ng_err ng_gateway_new(ng_gateway **out, const ng_config *cfg, ng_log *log, char *err, size_t errlen);
void ng_gateway_free(ng_gateway *g);

/* The handlers of the public and the admin listener (ctx is the gateway). */
void ng_gateway_public(void *ctx, const ng_request *req, ng_response *res);
void ng_gateway_admin(void *ctx, const ng_request *req, ng_response *res);
/* Where the listeners' own error lines go (ng_server_opts.error_log). */
void ng_gateway_server_log(void *ctx, const char *line);

#endif

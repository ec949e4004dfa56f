/*
 * ng_api_admin.h: the admin API, on the admin listener only (a unix socket
 * by default). Every /v1/admin route wants
 * "Authorization: Bearer <the hex token in admin.token_file>", made on the
 * gateway's first start (mode 0600); the dispatcher checks it before any
 * handler runs.
 *
 *   GET  /v1/admin/tenants/{t}/queue                     {"waiting": N, "dead": N}
 *   GET  /v1/admin/tenants/{t}/dead?after=&limit=        dead letters, oldest first:
 *        {"dead": [{"id", "message_id", "peer", "reason", "last_status"}], "next"}
 *   POST /v1/admin/tenants/{t}/dead/{id}/replay          back into the inbox, attempts reset
 *   POST /v1/admin/tenants/{t}/backends/{b}/enable       after a 410 disabled it
 *   POST /v1/admin/tenants/{t}/backends/{b}/disable
 *
 * Changes to the vault made here are seen by the gateway at once. Tenants,
 * backends, peers and keys are in ng_api_manage.h.
 */
#ifndef NG_API_ADMIN_H
#define NG_API_ADMIN_H

#include "ng_gateway.h"

ng_route_fn ng_api_admin_queue;
ng_route_fn ng_api_admin_dead;
ng_route_fn ng_api_admin_replay;
ng_route_fn ng_api_admin_enable;
ng_route_fn ng_api_admin_disable;

#endif

/*
 * ng_api_manage.h: the admin API's tenants, backends, peers and keys: what
 * the CLI does offline on the vault, done by the running gateway (see
 * ng_manage.h for the answers). Admin listener only, admin token required.
 *
 *   GET    /v1/admin/tenants                          {"tenants": [...]}
 *   POST   /v1/admin/tenants                          {"tenant", "psk"?, "allow_anonymous"?,
 *                                                      "max_message"?, "rate"?} -> 201 the tenant
 *   GET    /v1/admin/tenants/{t}                      keys, backends, peers (public parts)
 *   DELETE /v1/admin/tenants/{t}                      the tenant and every key, backend and peer
 *   GET    /v1/admin/tenants/{t}/backends             {"backends": [...]}
 *   POST   /v1/admin/tenants/{t}/backends             {"url", "public_key"?} -> 201 {"id", "url", "whsec"}
 *   DELETE /v1/admin/tenants/{t}/backends/{b}
 *   POST   /v1/admin/tenants/{t}/backends/{b}/rotate-secret   {"id", "whsec"}
 *   GET    /v1/admin/tenants/{t}/peers                {"peers": [...]}
 *   POST   /v1/admin/tenants/{t}/peers                {"params", "name"?} -> 201 {"peer", "fingerprint"}
 *   DELETE /v1/admin/tenants/{t}/peers/{p}
 *   GET    /v1/admin/tenants/{t}/params[?outbox=URL]  {"params", "fingerprint"}: to give a peer
 *   GET    /v1/admin/tenants/{t}/keys                 {"keys": [...]}
 *   POST   /v1/admin/tenants/{t}/keys/rotate          {"epoch"}
 *   POST   /v1/admin/tenants/{t}/keys/{epoch}/retire  {"retired"}
 *   POST   /v1/admin/tenants/{t}/keys/export          {"epoch", "private_key", "public_key", "key_id"}:
 *                                                     the newest private key, handed to the backend once
 *   POST   /v1/admin/tenants/{t}/keys/import          {"public_key"} -> 201 {"epoch", "key_id"}
 *
 * Refusals are {"error": {"code", "message"}}: 400 bad value, 404 unknown
 * tenant/backend/peer/epoch, 409 exists, a limit, a peer's signing key
 * changed, or a key exported before, 503 the vault's store is down. A
 * change is in the gateway's directory before the answer is sent.
 */
#ifndef NG_API_MANAGE_H
#define NG_API_MANAGE_H

#include "ng_gateway.h"
#include "ng_manage.h"
#include "ng_peer.h"

/* Connection parameters are the largest body: 16 KiB, JSON-escaped at most twice as long. */
enum { NG_API_MANAGE_MAX_BODY = 2 * NG_PEER_MAX_PARAMS + 1024 };

ng_route_fn ng_api_manage_tenants;
ng_route_fn ng_api_manage_tenant_create;
ng_route_fn ng_api_manage_tenant;
ng_route_fn ng_api_manage_tenant_delete;
ng_route_fn ng_api_manage_backends;
ng_route_fn ng_api_manage_backend_add;
ng_route_fn ng_api_manage_backend_remove;
ng_route_fn ng_api_manage_backend_rotate;
ng_route_fn ng_api_manage_peers;
ng_route_fn ng_api_manage_peer_import;
ng_route_fn ng_api_manage_peer_remove;
ng_route_fn ng_api_manage_params;
ng_route_fn ng_api_manage_keys;
ng_route_fn ng_api_manage_key_rotate;
ng_route_fn ng_api_manage_key_retire;
ng_route_fn ng_api_manage_key_export;
ng_route_fn ng_api_manage_key_import;

/*
 * The bodies of the routes that take one (tenant create, backend add, peer
 * import, key import), each against its own fields, into op (apart so that
 * the fuzzer checks the routes' real specs): 0 with *doc to json_decref
 * (op's strings point into it), or -1 with the 400 or 413 answer in res and
 * op untouched.
 */
int ng_api_manage_tenant_create_body(const ng_request *req, ng_response *res, ng_manage_op *op, json_t **doc);
int ng_api_manage_backend_add_body(const ng_request *req, ng_response *res, ng_manage_op *op, json_t **doc);
int ng_api_manage_peer_import_body(const ng_request *req, ng_response *res, ng_manage_op *op, json_t **doc);
int ng_api_manage_key_import_body(const ng_request *req, ng_response *res, ng_manage_op *op, json_t **doc);

#endif

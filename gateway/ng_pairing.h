/*
 * ng_pairing.h: automatic backend pairing (DESIGN.md, "Pairing").
 *
 * The operator names a backend URL for a tenant; the gateway makes a
 * one-time code, keeps {"tenant", "url", "expires"} under it in the queue
 * store for NG_PAIRING_TTL_S, and POSTs an offer to the URL:
 *
 *   {"type": "noisegate.pairing.offer", "tenant": T, "code": CODE,
 *    "complete_url": "<public_url>/v1/pairing/CODE",
 *    "gateway_key": "whpk_<base64 of T's Ed25519 signing public key>",
 *    "expires": <unix ms>}
 *
 * The backend completes at complete_url with its own Ed25519 public key and
 * the BLAKE2b-256 digest of the raw gateway key it was offered; if the code
 * is live and the digest matches T's key, the backend is stored (as
 * `backend add --public-key` would) and gets its whsec_ secret back.
 *
 *   admin:  POST /v1/admin/tenants/{t}/pairings   {"url": "https://backend.example/noisegate"}
 *           202 {"code", "expires", "offer_status"}  (the backend's HTTP status, 0 if none)
 *   public: POST /v1/pairing/{code}   {"public_key": "whpk_...", "gateway_key_digest": "<64 hex>"}
 *           201 {"tenant", "backend_id", "whsec"}
 *
 * The code is the capability: 16 random bytes as 32 lower-case hex,
 * stored only as BLAKE2b-256("noisegate-pairing-v1" || code), in one
 * namespace ("pairing"), since the completion URL carries only the code.
 * It is single use: any request to its URL uses it up, whether it then
 * succeeds or not. It is never logged.
 *
 * The offer is sent like a webhook: libcurl, blocking, delivery.timeout_ms,
 * http and https only, no redirects, no proxy, and addresses refused after
 * DNS by ng_deliver_address_blocked unless delivery.allow_private covers
 * them.
 */
#ifndef NG_PAIRING_H
#define NG_PAIRING_H

#include "ng_gateway.h"

enum {
    NG_PAIRING_CODE_BYTES = 16,       /* random bytes of a code, sent as 32 lower-case hex characters */
    NG_PAIRING_TTL_S = 600,           /* a code lives 10 minutes */
    NG_PAIRING_MAX_BODY = 4096,       /* bytes of a request body to either route; more is 413 */
    NG_PAIRING_REPLY_MAX = 64 * 1024, /* bytes of the backend's answer to an offer read before hanging up */
};

/* POST /v1/admin/tenants/{t}/pairings (admin listener, admin token). */
ng_route_fn ng_pairing_offer;
/* POST /v1/pairing/{code} (public listener; the code is the credential). */
ng_route_fn ng_pairing_complete;

/*
 * The two routes' bodies, each against its own fields (apart so that the
 * fuzzer checks the real specs): 0 with *doc to json_decref (the strings
 * point into it), or -1 with the 400 or 413 answer in res and the outputs
 * untouched. Offer: {"url"}; completion: {"public_key", "gateway_key_digest"}
 * into values[0] and values[1].
 */
int ng_pairing_offer_body(const ng_request *req, ng_response *res, const char **url, json_t **doc);
int ng_pairing_complete_body(const ng_request *req, ng_response *res, const char *values[2], json_t **doc);

#endif

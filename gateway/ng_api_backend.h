/*
 * ng_api_backend.h: the backend API, on the public listener.
 *
 *   POST /v1/tenants/{tenant}/messages
 *     Signed by one of the tenant's backends (a disabled one too: a 410 stops deliveries, not submissions) in Standard
 * Webhooks form (webhook-id, webhook-timestamp, webhook-signature: v1 HMAC with its whsec_ secret, or v1a Ed25519 with
 * its key), the timestamp within webhooks.tolerance_s of ours, the webhook-id never used before by this tenant's
 * backends while it could still verify. Body: one message or a batch (JSON), or CloudEvents binary mode; see
 *     ng_submit.h. Each message is sealed to the newest key of the named
 *     peer, with the pattern asked for or the first the peer accepts (and
 *     the peer's psk for the psk forms), and all are appended to the
 *     outbox together.
 *     202 {"id", "expires", "recipient"}, or for a batch
 *     {"messages": [{"id", "expires", "recipient"}, ...]}: only once every
 *     parcel is stored.
 *     Idempotency-Key (1-255 printable characters): a request repeated with
 *     the same key and the same content within 24 hours gets the first
 *     answer (with "idempotent-replayed: true") and stores nothing; with
 *     other content, 422. Its parcels' message ids derive from the key, so
 *     even a parcel stored twice (a crash between storing and answering,
 *     HTTP storage) is opened once by the recipient.
 */
#ifndef NG_API_BACKEND_H
#define NG_API_BACKEND_H

#include "ng_gateway.h"

enum { NG_API_IDEMPOTENCY_TTL_S = 24 * 3600 };

ng_route_fn ng_api_messages;
ng_route_fn ng_api_tenant_parcels;

#endif

/*
 * ng_api_peer.h: the peer API, on the public listener.
 *
 *   GET /v1/outbox/{recipient key id hex}?after=CURSOR&limit=N
 *       Authorization: Bearer <the sending tenant's read token, hex>
 *     200 {"parcels": [{"id": CURSOR, "parcel": base64}, ...], "next": CURSOR}
 *     The parcels the token's tenant sealed for that key, oldest first,
 *     after the cursor (none: from the start), at most limit (1-1000,
 *     default 100); expired ones are left out. "next" is the cursor to
 *     pass on (the same one when nothing came).
 *   POST /v1/parcels   (content-type application/vnd.noisegate.parcel)
 *     a parcel pushed for a local tenant; 202 {"id", "expires"} once it is
 *     in the tenant's inbox, 409 if it was seen before.
 */
#ifndef NG_API_PEER_H
#define NG_API_PEER_H

#include "ng_gateway.h"

ng_route_fn ng_api_outbox;
ng_route_fn ng_api_parcels;

/* The status and error code for a parcel refused with err (shared with the backend API). */
int ng_api_parcel_status(ng_err err, const char **code);

#endif

/*
 * ng_poller.h: fetching what peers sealed for our tenants.
 *
 * For every tenant and every peer that gave a read token, and for each of
 * the tenant's live keys (a peer may still seal to an older one), a poller
 * thread reads the peer's outbox after the saved cursor:
 *   - a peer gateway: GET <outbox>/<key id hex>?after=&limit= with the
 *     peer's read token (the outbox URL ends in /v1/outbox);
 *   - a shared Redis: redis://HOST[:PORT][/DB], the peer's own outbox
 *     streams read there (ng_queue_redis, under the name in its parameters);
 *   - HTTP storage: any other outbox URL, read with WebDAV (ng_queue_http).
 * An address a peer chose for its gateway or storage is judged like a
 * webhook's (delivery.allow_private); our own outbox.http_url is exempt. A
 * Redis is read only if it is our own (redis.url) or listed in
 * poll.peer_redis: a peer cannot make us connect to a server of its choice.
 * Each parcel is checked (ng_receive_check, as coming from that peer); the
 * accepted ones go into the tenant's inbox in one step, with the replay
 * check, and only then does the cursor move. A parcel that is refused is
 * counted (ng_parcels_refused_total by reason) and skipped for good: it is
 * behind the cursor once the batch is in.
 *
 * A lease per (tenant, peer) in Redis keeps one poller per outbox across
 * gateway processes sharing a Redis. Polling backs off from
 * poll.interval_ms, doubling up to poll.max_interval_ms while an outbox is
 * empty or failing, and drains at once while batches come back full.
 */
#ifndef NG_POLLER_H
#define NG_POLLER_H

#include "ng_error.h"
#include "ng_gateway.h"

typedef struct ng_poller ng_poller;

NG_MUST_CHECK ng_err ng_poller_start(ng_poller **out, ng_gateway *g);
/* Stops after the poll in progress (its batch is finished or not begun) and frees. NULL is a no-op. */
void ng_poller_stop(ng_poller *p);

#endif

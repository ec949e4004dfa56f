/*
 * ng_deliverer.h: from the inboxes to the backends.
 *
 * One thread claims messages from the inbox of every tenant that has an
 * active backend (the first active one, by id, receives its webhooks),
 * opens each parcel again (what waits in the inbox is sealed), and hands
 * the attempt to the webhook adapter (ng_deliver.h): CloudEvents binary
 * mode, signed v1 with the backend's whsec_ secret (and the previous one
 * during a rotation) and v1a with the tenant's signing key.
 *
 * Outcomes: 2xx acks the message; 410 disables the backend in the vault
 * (messages wait, then expire); 429 and 503 retry after Retry-After;
 * anything else retries on delivery.retry_schedule_s with jitter, until
 * delivery.max_attempts or the parcel's expiry, then dead-letters it with
 * the last status. A message that expired while waiting is dead-lettered,
 * not delivered; so is one that cannot be opened any more (its key retired)
 * or whose URL the SSRF guard refuses.
 *
 * Claims are leased (2 * delivery.timeout_ms + 10 s): a message claimed
 * by a gateway that died is claimed again by another, or by it once it is
 * back; the webhook-id stays the same, so backends drop the duplicate.
 */
#ifndef NG_DELIVERER_H
#define NG_DELIVERER_H

#include "ng_error.h"
#include "ng_gateway.h"

typedef struct ng_deliverer ng_deliverer;

NG_MUST_CHECK ng_err ng_deliverer_start(ng_deliverer **out, ng_gateway *g);
/*
 * Stops claiming, lets the attempts in flight finish (up to
 * delivery.timeout_ms), records their outcome, and frees. What was
 * claimed and not finished stays claimed until its lease ends.
 */
void ng_deliverer_stop(ng_deliverer *d);
/* Wakes the thread: messages arrived (ng_gateway_on_inbox). */
void ng_deliverer_kick(void *d);

#endif

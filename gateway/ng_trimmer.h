/*
 * ng_trimmer.h: removing what expired from this gateway's outboxes, so that
 * they stay bounded by the messages still alive (an expired parcel is
 * never opened: keeping it only costs the store).
 *
 * Every outbox.trim_interval_s, for every tenant, every peer and each of
 * the peer's live keys (the recipient key ids our parcels are addressed
 * to), the outbox store (Redis, or the HTTP storage) drops the parcels
 * whose expiry has passed, oldest first up to the first still alive (a
 * short-lived parcel behind a long-lived one waits for it: an outbox holds
 * at most about messages.max_ttl_s of traffic). Counted in ng_parcels_trimmed_total. Several
 * gateways sharing a store may trim the same outbox: a trim removes only
 * what has expired, so the repetition is harmless. Outboxes of a peer key
 * that is no longer in its parameters are left (a rotated-away key's
 * parcels expire unread; removing the peer or tenant does not trim).
 */
#ifndef NG_TRIMMER_H
#define NG_TRIMMER_H

#include "ng_error.h"
#include "ng_gateway.h"

typedef struct ng_trimmer ng_trimmer;

NG_MUST_CHECK ng_err ng_trimmer_start(ng_trimmer **out, ng_gateway *g);
/* Stops after the outbox in progress and frees. NULL is a no-op. */
void ng_trimmer_stop(ng_trimmer *t);

#endif

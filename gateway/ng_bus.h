/*
 * ng_bus.h: the tenants' backends on NATS JetStream (adapter "nats").
 *
 * Names. A backend with subject prefix P (by default "noisegate.<tenant>")
 * gets its messages on P.deliver and hands in its own on P.submit, both in
 * the stream named P with '-' for '.' ("noisegate-<tenant>" by default;
 * subjects "P.>") unless the operator made one that takes them. Its
 * durable consumer is "noisegate-<tenant>-<id>".
 *
 * Submit. A message on P.submit is what a POST /v1/tenants/T/messages
 * would carry (the same body and content type, signed the same way, with
 * the Standard Webhooks headers as NATS headers) and goes through the same
 * checks, limits and store. Two things differ: the signature's age is
 * measured at the time JetStream stored the message, so a message that
 * waited in the stream while the gateway was down is still good; and
 * without an Idempotency-Key the webhook-id is one, so a message
 * redelivered after a crash gets its first answer instead of a second
 * parcel. It is acked once its parcels are stored; a refusal (4xx) is
 * terminated with the reason logged; a store that is down (5xx, 429) is
 * retried later.
 *
 * THREAD SAFETY: ng_bus_sync and ng_bus_free from one thread (the
 * deliverer's); submissions run on libnats's threads.
 */
#ifndef NG_BUS_H
#define NG_BUS_H

#include "ng_directory.h"
#include "ng_gateway.h"
#include "ng_nats.h"

enum {
    NG_BUS_NAME_BYTES = NG_NATS_NAME_MAX + 1,
};

/* Where backend b of tenant t takes its messages: names into the caller's buffers, pointed to by *out. */
void ng_bus_stream(const ng_dir_tenant *t, const ng_dir_backend *b, ng_nats_stream *out, char name[NG_BUS_NAME_BYTES],
                   char subjects[NG_BUS_NAME_BYTES]);
/* P.<what> for backend b: "deliver" or "submit". */
void ng_bus_subject(const ng_dir_backend *b, const char *what, char out[NG_BUS_NAME_BYTES]);

typedef struct ng_bus ng_bus;

/* n outlives the bus. NG_ERR_NOMEM. */
NG_MUST_CHECK ng_err ng_bus_new(ng_bus **out, ng_gateway *g, ng_nats *n);
/* Consumes the submit subject of every active NATS backend in dir, and stops consuming for the others. */
void ng_bus_sync(ng_bus *b, const ng_directory *dir);
/* Stops every consumer (their durables stay on the server). NULL: nothing. */
void ng_bus_free(ng_bus *b);

#endif

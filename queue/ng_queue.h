/*
 * ng_queue.h: the queues of a store-and-forward gateway, behind one
 * function table.
 *
 *   outbox   parcels a tenant sealed for a recipient key id, read by peers
 *            after a cursor, trimmed once expired
 *   inbox    opened messages of a tenant waiting for delivery: claimed in
 *            batches under a lease, acked, retried later, dead-lettered
 *   replay   (tenant, message id) seen until the parcel expires
 *   cursors  per (tenant, peer): how far that peer's outbox has been read
 *   leases   per (tenant, peer): one poller at a time
 *
 * Backends: Redis Streams (everything) and HTTP storage (WebDAV; the outbox
 * only: the other operations answer NG_ERR_UNSUPPORTED). A gateway uses
 * one store for its outboxes and Redis for the rest.
 *
 * Items are opaque bytes to the queue: a parcel in an outbox, whatever the
 * gateway serialises for a delivery in an inbox. Ids are strings the
 * backend gives (a Redis stream id, an object name) and that sort in the
 * order the items were added; a cursor is the id of the last item read.
 *
 * Cursors belong to the backend that gave them (a Redis stream id means
 * nothing to HTTP storage, and is refused there with NG_ERR_INVALID_ARG).
 *
 * Every call may fail with NG_ERR_UNAVAILABLE when the store does not
 * answer; the next call tries to reconnect (with backoff), and nothing is
 * half-done, except that a trim may stop partway (what it removed is in
 * *removed). THREAD SAFETY: a handle is used by one thread at a time.
 */
#ifndef NG_QUEUE_H
#define NG_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "ng_error.h"

enum {
    NG_QUEUE_ID_BYTES = 96,     /* an id or cursor, NUL included */
    NG_QUEUE_NAME_BYTES = 64,   /* tenant slugs and peer names, NUL included */
    NG_QUEUE_KEY_ID_BYTES = 32, /* a recipient key id */
    NG_QUEUE_MSG_ID_BYTES = 16, /* a parcel's message id */
    NG_QUEUE_REASON_BYTES = 256,
    NG_QUEUE_ACK_MAX = 1000,
    NG_QUEUE_ACCEPT_MAX = 1000, /* messages per ng_queue_inbox_accept_many */
};

typedef struct ng_queue ng_queue;

/* One item of a read or a claim. */
typedef struct ng_queue_item {
    char id[NG_QUEUE_ID_BYTES];
    uint8_t *data; /* malloc'd, freed by ng_queue_batch_free */
    size_t len;
    uint64_t expires_ms;                /* outbox: the parcel's expiry, when the store keeps it */
    uint32_t attempts;                  /* inbox: deliveries tried before this claim */
    char reason[NG_QUEUE_REASON_BYTES]; /* dead letters: why */
    int last_status;                    /* dead letters: the last HTTP status, 0 if none */
} ng_queue_item;

/* One message to accept into an inbox, and what became of it. */
typedef struct ng_queue_msg {
    uint8_t msg_id[NG_QUEUE_MSG_ID_BYTES];
    uint64_t expires_ms;
    const uint8_t *data;
    size_t len;
    ng_err result;              /* out: NG_OK, or NG_ERR_EXISTS for a replay */
    char id[NG_QUEUE_ID_BYTES]; /* out: its inbox id when accepted */
} ng_queue_msg;

/* One parcel of a submission, and the outbox id it got. */
typedef struct ng_queue_parcel {
    uint8_t key_id[NG_QUEUE_KEY_ID_BYTES];
    uint8_t msg_id[NG_QUEUE_MSG_ID_BYTES];
    uint64_t created_ms, expires_ms;
    const uint8_t *data;
    size_t len;
    char id[NG_QUEUE_ID_BYTES]; /* out */
} ng_queue_parcel;

/*
 * What a backend's request stores, with the guards that make it safe to
 * repeat (see ng_queue_outbox_submit). Any guard may be absent (NULL).
 */
typedef struct ng_queue_submit {
    const uint8_t *request; /* the request's identity (a digest of its signed id) */
    uint64_t request_expires_ms;
    const uint8_t *idem; /* the digest of its Idempotency-Key */
    uint64_t idem_expires_ms;
    const uint8_t *answer; /* kept under idem once the parcels are stored; NULL: keep nothing */
    size_t answer_len;
    ng_queue_parcel *parcels;
    size_t n;
    uint8_t *previous; /* out, malloc'd: the answer an earlier request kept under idem */
    size_t previous_len;
} ng_queue_submit;

enum { NG_QUEUE_GUARD_BYTES = 32 }; /* request and idem digests */

typedef struct ng_queue_batch {
    ng_queue_item *items;
    size_t n;
    char next[NG_QUEUE_ID_BYTES]; /* the cursor after this batch ("" if nothing was read) */
} ng_queue_batch;

void ng_queue_batch_free(ng_queue_batch *b);

/* The operations a backend provides; NULL for what it cannot do. */
struct ng_queue_ops {
    const char *name;
    ng_err (*outbox_append)(ng_queue *q, const char *tenant, const uint8_t key_id[NG_QUEUE_KEY_ID_BYTES],
                            const uint8_t msg_id[NG_QUEUE_MSG_ID_BYTES], uint64_t created_ms, uint64_t expires_ms,
                            const uint8_t *parcel, size_t len, char id[NG_QUEUE_ID_BYTES]);
    ng_err (*outbox_read)(ng_queue *q, const char *tenant, const uint8_t key_id[NG_QUEUE_KEY_ID_BYTES],
                          const char *after, size_t limit, ng_queue_batch *out);
    ng_err (*outbox_submit)(ng_queue *q, const char *tenant, ng_queue_submit *s);
    ng_err (*outbox_trim)(ng_queue *q, const char *tenant, const uint8_t key_id[NG_QUEUE_KEY_ID_BYTES], uint64_t now_ms,
                          size_t *removed);

    ng_err (*inbox_accept)(ng_queue *q, const char *tenant, ng_queue_msg *msgs, size_t n);
    ng_err (*inbox_claim)(ng_queue *q, const char *tenant, const char *consumer, size_t limit, uint64_t lease_ms,
                          ng_queue_batch *out);
    ng_err (*inbox_ack)(ng_queue *q, const char *tenant, const char *const *ids, size_t n, size_t *acked);
    ng_err (*inbox_retry)(ng_queue *q, const char *tenant, const char *id, uint64_t at_ms);
    ng_err (*inbox_dead)(ng_queue *q, const char *tenant, const char *id, const char *reason, int last_status);
    ng_err (*inbox_depth)(ng_queue *q, const char *tenant, uint64_t *waiting, uint64_t *dead);
    ng_err (*dead_list)(ng_queue *q, const char *tenant, const char *after, size_t limit, ng_queue_batch *out);
    ng_err (*dead_replay)(ng_queue *q, const char *tenant, const char *id);

    ng_err (*replay_check)(ng_queue *q, const char *tenant, const uint8_t msg_id[NG_QUEUE_MSG_ID_BYTES],
                           uint64_t expires_ms);
    ng_err (*cursor_get)(ng_queue *q, const char *tenant, const char *peer, char cursor[NG_QUEUE_ID_BYTES]);
    ng_err (*cursor_set)(ng_queue *q, const char *tenant, const char *peer, const char *cursor);
    ng_err (*lease_take)(ng_queue *q, const char *tenant, const char *peer, const char *owner, uint64_t ttl_ms);
    ng_err (*lease_release)(ng_queue *q, const char *tenant, const char *peer, const char *owner);

    ng_err (*once_put)(ng_queue *q, const char *tenant, const uint8_t digest[NG_QUEUE_GUARD_BYTES],
                       const uint8_t *value, size_t len, uint64_t ttl_ms);
    ng_err (*once_take)(ng_queue *q, const char *tenant, const uint8_t digest[NG_QUEUE_GUARD_BYTES], uint8_t **value,
                        size_t *len);

    ng_err (*ping)(ng_queue *q);
    void (*destroy)(ng_queue *q);
};

/* Every backend's handle starts with this. */
struct ng_queue {
    const struct ng_queue_ops *ops;
};

/*
 * Outbox. append stores a parcel for the recipient key id, in tenant's
 * outbox; id receives its id. HTTP storage keeps only the parcel and reads
 * its expiry back from the header, so there parcel must be a real parcel
 * whose header matches msg_id, created_ms and expires_ms. read returns up to
 * limit items after the cursor (after "" or NULL: from the start), oldest
 * first. trim removes what expired by now_ms and nothing else.
 */
NG_MUST_CHECK ng_err ng_queue_outbox_append(ng_queue *q, const char *tenant,
                                            const uint8_t key_id[NG_QUEUE_KEY_ID_BYTES],
                                            const uint8_t msg_id[NG_QUEUE_MSG_ID_BYTES], uint64_t created_ms,
                                            uint64_t expires_ms, const uint8_t *parcel, size_t len,
                                            char id[NG_QUEUE_ID_BYTES]);
/*
 * Stores a request's parcels in tenant's outboxes, all or none, in one
 * atomic step with its guards, checked in this order:
 *   1. idem: if an earlier request left an answer under it, nothing is
 *      stored and that answer is copied to s->previous (free it);
 *   2. request: if it was seen before it expired, NG_ERR_EXISTS and
 *      nothing is stored;
 *   3. the parcels are appended (each id in parcels[i].id), then the answer
 *      is kept under idem and the request marked seen.
 * With n == 0 only the guards run: a store whose outbox lives elsewhere
 * (HTTP storage) checks first, appends there, and keeps the answer after.
 * Redis only; others answer NG_ERR_UNSUPPORTED.
 */
NG_MUST_CHECK ng_err ng_queue_outbox_submit(ng_queue *q, const char *tenant, ng_queue_submit *s);
NG_MUST_CHECK ng_err ng_queue_outbox_read(ng_queue *q, const char *tenant, const uint8_t key_id[NG_QUEUE_KEY_ID_BYTES],
                                          const char *after, size_t limit, ng_queue_batch *out);
NG_MUST_CHECK ng_err ng_queue_outbox_trim(ng_queue *q, const char *tenant, const uint8_t key_id[NG_QUEUE_KEY_ID_BYTES],
                                          uint64_t now_ms, size_t *removed);

/*
 * Inbox. accept is the replay check and the enqueue in one atomic step:
 * NG_ERR_EXISTS (and nothing queued) if tenant has seen msg_id before it
 * expired, so a crash can never leave a message marked seen but not queued.
 * claim hands out up to limit items to consumer: new ones, due retries, and
 * items another consumer claimed more than lease_ms ago without an ack (it
 * died). ack removes an item for good; retry hands it out again at at_ms
 * with one more attempt; dead moves it to the dead letters with a reason
 * and the last status; dead_replay moves a dead letter back, attempts reset.
 */
NG_MUST_CHECK ng_err ng_queue_inbox_accept(ng_queue *q, const char *tenant, const uint8_t msg_id[NG_QUEUE_MSG_ID_BYTES],
                                           uint64_t expires_ms, const uint8_t *data, size_t len,
                                           char id[NG_QUEUE_ID_BYTES]);
/*
 * Accepts up to NG_QUEUE_ACCEPT_MAX messages in one round trip, each as
 * ng_queue_inbox_accept would (its outcome in result): what a poller does
 * with the parcels of one fetch. The return value is for the call itself.
 */
NG_MUST_CHECK ng_err ng_queue_inbox_accept_many(ng_queue *q, const char *tenant, ng_queue_msg *msgs, size_t n);
NG_MUST_CHECK ng_err ng_queue_inbox_claim(ng_queue *q, const char *tenant, const char *consumer, size_t limit,
                                          uint64_t lease_ms, ng_queue_batch *out);
/* NG_ERR_NOT_FOUND if id was not claimed (already acked, retried or dead). */
NG_MUST_CHECK ng_err ng_queue_inbox_ack(ng_queue *q, const char *tenant, const char *id);
/* Acks up to NG_QUEUE_ACK_MAX ids in one round trip; how many were claimed and are now gone in *acked. */
NG_MUST_CHECK ng_err ng_queue_inbox_ack_many(ng_queue *q, const char *tenant, const char *const *ids, size_t n,
                                             size_t *acked);
NG_MUST_CHECK ng_err ng_queue_inbox_retry(ng_queue *q, const char *tenant, const char *id, uint64_t at_ms);
NG_MUST_CHECK ng_err ng_queue_inbox_dead(ng_queue *q, const char *tenant, const char *id, const char *reason,
                                         int last_status);
/* waiting: new, claimed and scheduled items; dead: dead letters. */
NG_MUST_CHECK ng_err ng_queue_inbox_depth(ng_queue *q, const char *tenant, uint64_t *waiting, uint64_t *dead);
NG_MUST_CHECK ng_err ng_queue_dead_list(ng_queue *q, const char *tenant, const char *after, size_t limit,
                                        ng_queue_batch *out);
NG_MUST_CHECK ng_err ng_queue_dead_replay(ng_queue *q, const char *tenant, const char *id);

/* Marks msg_id seen for tenant until expires_ms; NG_ERR_EXISTS if it already was. */
NG_MUST_CHECK ng_err ng_queue_replay_check(ng_queue *q, const char *tenant, const uint8_t msg_id[NG_QUEUE_MSG_ID_BYTES],
                                           uint64_t expires_ms);

/* The cursor of (tenant, peer); "" if none. Save it only once what it covers is in the inbox. */
NG_MUST_CHECK ng_err ng_queue_cursor_get(ng_queue *q, const char *tenant, const char *peer,
                                         char cursor[NG_QUEUE_ID_BYTES]);
NG_MUST_CHECK ng_err ng_queue_cursor_set(ng_queue *q, const char *tenant, const char *peer, const char *cursor);

/*
 * Takes or renews the lease on polling (tenant, peer) for owner, for ttl_ms:
 * NG_ERR_CONFLICT while another owner holds it.
 */
NG_MUST_CHECK ng_err ng_queue_lease_take(ng_queue *q, const char *tenant, const char *peer, const char *owner,
                                         uint64_t ttl_ms);
NG_MUST_CHECK ng_err ng_queue_lease_release(ng_queue *q, const char *tenant, const char *peer, const char *owner);

/*
 * A single-use value store (pairing codes): put keeps value under digest in
 * tenant's namespace for ttl_ms (> 0), NG_ERR_EXISTS if something is there
 * already; take returns it and deletes it in one atomic step, so of two
 * takers only one gets it: NG_ERR_NOT_FOUND if absent, expired or taken.
 * *value is malloc'd (free it; wipe it first if it is secret). Values are
 * bytes, up to NG_QUEUE_ONCE_MAX. Redis only (6.2 or newer: GETDEL);
 * others answer NG_ERR_UNSUPPORTED.
 */
enum { NG_QUEUE_ONCE_MAX = 64 * 1024 };
NG_MUST_CHECK ng_err ng_queue_once_put(ng_queue *q, const char *tenant, const uint8_t digest[NG_QUEUE_GUARD_BYTES],
                                       const uint8_t *value, size_t len, uint64_t ttl_ms);
NG_MUST_CHECK ng_err ng_queue_once_take(ng_queue *q, const char *tenant, const uint8_t digest[NG_QUEUE_GUARD_BYTES],
                                        uint8_t **value, size_t *len);

/* NG_OK if the store answers now (readiness). */
NG_MUST_CHECK ng_err ng_queue_ping(ng_queue *q);

/* NULL is a no-op. */
void ng_queue_free(ng_queue *q);

#endif

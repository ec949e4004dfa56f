/*
 * ng_nats.h: NATS JetStream for backends that take their messages from a
 * bus instead of webhooks, and may hand in their outgoing messages there.
 *
 * Deliver. A job (the same ng_deliver_job as a webhook) is published to a
 * subject with its CloudEvents attributes and Standard Webhooks signature as
 * message headers (ng_deliver_headers, then webhook-timestamp and
 * webhook-signature made at the attempt), and with Nats-Msg-Id set to its
 * id so that JetStream drops a second copy within the stream's duplicate
 * window (a publish whose ack was lost, then retried). The publish ack is
 * the delivery ack: NG_DELIVER_ACKED once JetStream has stored it (or had
 * it already); anything else is NG_DELIVER_RETRY with the reason, and the
 * caller's schedule decides.
 *
 * Submit. ng_nats_consume binds a durable push consumer of a subject (with
 * a queue group of the same name, so that gateways sharing the bus share
 * the work) and hands each message to a callback, which says ack, retry
 * later or terminate. Messages are acked explicitly, so one whose callback
 * never ran (a crash) is redelivered after the consumer's ack wait.
 *
 * Streams. Before its first publish or subscription on a connection, a
 * stream is created (file storage) with the given wildcard subject unless
 * it exists or another stream already takes those subjects: operators may
 * create their own with the limits they want.
 *
 * Connections. One per URL, each with its own thread, so a NATS server that
 * is down or slow holds only the jobs for it. A connection is made in the
 * background and remade after a loss with growing delays (250 ms doubling to
 * 5 s, with jitter); while it is down, publishes fail at once (RETRY,
 * "NATS not connected") instead of waiting in a buffer.
 *
 * NATS URLs are the operator's (the admin API), never a peer's, so they are
 * not held to the webhooks' private-address rule: a bus usually lives on a
 * private network.
 *
 * THREAD SAFETY: one thread at a time calls ng_nats_publish, ng_nats_collect,
 * ng_nats_pending, ng_nats_consume and ng_nats_unconsume (the deliverer's).
 * Submit callbacks run on libnats's delivery threads, up to four at once
 * (one consumer's in order, on one of them).
 */
#ifndef NG_NATS_H
#define NG_NATS_H

#include <stddef.h>
#include <stdint.h>

#include "ng_deliver.h"
#include "ng_error.h"

enum {
    NG_NATS_NAME_MAX = 128, /* characters of a stream, subject or durable name */
    NG_NATS_URL_MAX = 1024, /* characters of a URL */
    NG_NATS_DEFAULT_TIMEOUT_MS = 5000,
    NG_NATS_ACK_WAIT_MS = 30000,   /* a submission not answered in this long is redelivered */
    NG_NATS_MAX_ACK_PENDING = 256, /* submissions of one consumer out at once */
};

typedef struct ng_nats ng_nats;

typedef struct ng_nats_opts {
    unsigned timeout_ms; /* one publish until its ack; 0: NG_NATS_DEFAULT_TIMEOUT_MS */
    size_t max_queued;   /* published and not yet collected; 0: NG_DELIVER_DEFAULT_MAX_QUEUED */
    /* A result is ready to collect; called from the connection threads. */
    void (*wakeup)(void *ctx);
    void *wakeup_ctx;
    /* Connection events, one line each; warn for a loss or a failure, else news; any thread. */
    void (*log)(void *ctx, int warn, const char *event, const char *url, const char *detail);
    void *log_ctx;
} ng_nats_opts;

/* Where a backend's messages go: a NATS URL and the stream that holds its subjects. */
typedef struct ng_nats_stream {
    const char *url;      /* nats://host:port */
    const char *name;     /* the stream: [A-Za-z0-9_-] */
    const char *subjects; /* what the stream takes, "noisegate.alice.>" */
} ng_nats_stream;

/* NG_ERR_NOMEM. Nothing connects until the first publish or consumer. */
NG_MUST_CHECK ng_err ng_nats_new(ng_nats **out, const ng_nats_opts *o) NG_NONNULL(1);
/*
 * Closes every connection; jobs not yet published are dropped without a
 * result (what they deliver stays claimed by the caller and comes back).
 * Waits for submit callbacks that are running and for libnats's last
 * callback of each connection. NULL: nothing.
 */
void ng_nats_free(ng_nats *n);
/*
 * Stops libnats's own threads and frees its memory, for the whole process:
 * once, at exit, after every handle is freed (so that a leak check sees
 * nothing left).
 */
void ng_nats_library_close(void);

/*
 * Queues one publish of job to subject (job->url is not used). A ce-*
 * extension with an empty value is left out: libnats 3.4 readers cannot
 * parse an empty header value. Copies what
 * it needs. NG_ERR_INVALID_ARG for a job ng_deliver_submit would refuse or
 * a name out of bounds; NG_ERR_TOO_LARGE at max_queued; NG_ERR_NOMEM.
 */
NG_MUST_CHECK ng_err ng_nats_publish(ng_nats *n, const ng_nats_stream *s, const char *subject,
                                     const ng_deliver_job *job) NG_NONNULL(1, 2, 3, 4);
/* Published or queued, and not yet collected. */
size_t ng_nats_pending(ng_nats *n) NG_NONNULL(1);
/* Calls cb once for each publish that has finished since the last call; never waits. */
void ng_nats_collect(ng_nats *n, ng_deliver_cb cb, void *ctx) NG_NONNULL(1, 2);

/* ---- submissions ---- */

typedef struct ng_nats_msg ng_nats_msg;

/* A header of the message, name compared without case; NULL if absent. */
const char *ng_nats_msg_header(const ng_nats_msg *m, const char *name);
const uint8_t *ng_nats_msg_body(const ng_nats_msg *m, size_t *len);
/* When JetStream stored it (unix ms): what a signature's age is measured at. */
int64_t ng_nats_msg_stored_ms(const ng_nats_msg *m);
/* How many times it has been delivered, this time included. */
uint64_t ng_nats_msg_deliveries(const ng_nats_msg *m);

typedef enum ng_nats_verdict {
    NG_NATS_ACK,   /* taken: never again */
    NG_NATS_RETRY, /* not now (a store that is down): again after *retry_ms */
    NG_NATS_TERM,  /* never: a bad message, its reason logged by the callback */
} ng_nats_verdict;

typedef ng_nats_verdict (*ng_nats_submit_cb)(void *ctx, const ng_nats_msg *m, int64_t *retry_ms);

/*
 * Takes the messages of subject through the durable consumer of that name,
 * created (explicit acks, NG_NATS_ACK_WAIT_MS, NG_NATS_MAX_ACK_PENDING) if
 * it does not exist, and bound again after every reconnect. A durable
 * already consumed here is left as it is. ctx must stay valid until
 * ng_nats_unconsume or ng_nats_free returns.
 */
NG_MUST_CHECK ng_err ng_nats_consume(ng_nats *n, const ng_nats_stream *s, const char *subject, const char *durable,
                                     ng_nats_submit_cb cb, void *ctx) NG_NONNULL(1, 2, 3, 4, 5);
/*
 * Stops taking messages for durable: no callback with its ctx after this
 * returns. The consumer stays on the server, with what it holds; for 2 s
 * the subscription stays too and hands back (nak) what comes, so that
 * ng_nats_consume of the same durable soon after loses nothing.
 */
void ng_nats_unconsume(ng_nats *n, const char *durable) NG_NONNULL(1, 2);
/* 1 if durable is bound now (for tests and readiness). */
int ng_nats_consuming(ng_nats *n, const char *durable) NG_NONNULL(1, 2);

/* 1 if name may be a stream or durable name: 1-NG_NATS_NAME_MAX of [A-Za-z0-9_-]. */
int ng_nats_name_ok(const char *name);
/* 1 if s may be a subject to publish to: tokens of [A-Za-z0-9_-] joined by '.'. */
int ng_nats_subject_ok(const char *s);

#endif

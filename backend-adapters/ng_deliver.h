/*
 * ng_deliver.h: the webhook delivery engine. One attempt per job, many jobs
 * at once, on one libcurl multi handle.
 *
 * A job is POSTed in CloudEvents binary content mode (ce-specversion 1.0,
 * ce-id, ce-source, ce-type, ce-time, ce-subject, extensions, content-type,
 * the body as given) and signed in Standard Webhooks form (webhook-id equal
 * to ce-id, webhook-timestamp, webhook-signature with one "v1,<b64>" per
 * HMAC secret and one "v1a,<b64>" per Ed25519 key, see ng_webhook.h; left
 * out when the job has no key). Also "user-agent: noisegate/0.1", no
 * "Expect: 100-continue", no redirects followed, http and https only, no
 * proxy (the environment's is ignored).
 * The signature is made when the transfer starts, not at submit, so that
 * webhook-timestamp is the time of the attempt even after a wait in the
 * queue; the keys are wiped as soon as they have signed.
 *
 * Retries, acks and dead letters are the caller's: the outcome says which
 * (ng_deliver_backoff_ms gives the delay before the next attempt).
 *
 * Scheduling. An endpoint is scheme://host:port. At most per_endpoint jobs
 * of an endpoint are in flight; more wait in that endpoint's FIFO. At most
 * max_in_flight are in flight in all; endpoints with jobs waiting take
 * free slots in turn, so a slow or hung endpoint holds per_endpoint slots
 * at most and never delays another endpoint's jobs (unless max_in_flight is
 * smaller than per_endpoint times the number of hung endpoints).
 *
 * SSRF guard. Each address libcurl is about to connect to is checked, after
 * DNS, so a name that resolves (or rebinds) to loopback, private,
 * link-local, CGNAT, multicast or reserved space is refused unless
 * allow_private covers it (see ng_deliver_address_blocked). Such a job
 * ends NG_DELIVER_REFUSED with "address X not allowed".
 *
 * THREAD SAFETY: one thread at a time calls everything but
 * ng_deliver_wakeup, which any thread may call while the handle exists
 * (not during or after ng_deliver_free). Callbacks run on the thread that
 * calls ng_deliver_run; they may call ng_deliver_submit and
 * ng_deliver_pending, not ng_deliver_run or ng_deliver_free.
 */
#ifndef NG_DELIVER_H
#define NG_DELIVER_H

#include <stddef.h>
#include <stdint.h>

#include "ng_error.h"
#include "ng_webhook.h"

enum {
    NG_DELIVER_ERROR_BYTES = 160,
    NG_DELIVER_DEFAULT_TIMEOUT_MS = 30000,
    NG_DELIVER_DEFAULT_PER_ENDPOINT = 4,
    NG_DELIVER_DEFAULT_MAX_IN_FLIGHT = 256,
    NG_DELIVER_DEFAULT_MAX_QUEUED = 10000,
    NG_DELIVER_URL_MAX = 4096,           /* characters of a URL; a longer one is refused */
    NG_DELIVER_MAX_EXTRAS = 32,          /* extension headers of one job */
    NG_DELIVER_EXTRA_NAME_MAX = 64,      /* characters of one extension header name */
    NG_DELIVER_REPLY_MAX = 65536,        /* reply body bytes read (and dropped) before the connection is cut */
    NG_DELIVER_RETRY_AFTER_MAX_S = 86400 /* a longer Retry-After is cut to this */
};

typedef struct ng_deliver ng_deliver;

/* Zero in a field means its default; NULL options mean all defaults. */
typedef struct ng_deliver_opts {
    unsigned timeout_ms;    /* one attempt, connect and response; 0: NG_DELIVER_DEFAULT_TIMEOUT_MS */
    unsigned per_endpoint;  /* in flight per scheme://host:port; 0: NG_DELIVER_DEFAULT_PER_ENDPOINT */
    unsigned max_in_flight; /* in flight in all; 0: NG_DELIVER_DEFAULT_MAX_IN_FLIGHT */
    size_t max_queued;      /* submitted and not yet reported; 0: NG_DELIVER_DEFAULT_MAX_QUEUED */
    /* IP literals ("127.0.0.1", "::1") or CIDRs ("10.0.0.0/8", "fd00::/8") allowed although private;
       an entry that does not parse makes ng_deliver_new fail. Copied. */
    const char *const *allow_private;
    size_t allow_private_len;
} ng_deliver_opts;

/*
 * One delivery attempt. Everything is copied at submit; the caller may free
 * the job and what it points to as soon as submit returns. Values of ce-*
 * headers are percent-encoded as the CloudEvents HTTP binding requires
 * (space, '"', '%', bytes outside 0x21-0x7e), so they may hold any text.
 */
typedef struct ng_deliver_job {
    const char *url;          /* http:// or https://; anything else ends NG_DELIVER_REFUSED */
    const char *id;           /* ce-id and webhook-id, stable across attempts: ng_webhook_id_ok() */
    const char *source;       /* ce-source */
    const char *type;         /* ce-type */
    const char *subject;      /* ce-subject; NULL: none */
    const char *content_type; /* of the body, no control characters; NULL: application/octet-stream */
    int64_t time_ms;          /* ce-time, unix ms, >= 0: written 2026-11-24T10:00:00.123Z */
    /* More CloudEvents attributes: names "ce-" and token characters, not one of the above; values any text. */
    const char *const *extra_names;
    const char *const *extra_values;
    size_t extras;
    const uint8_t *body; /* NULL only with body_len 0 */
    size_t body_len;
    const uint8_t *secret; /* v1 HMAC key (a decoded whsec_), up to NG_WEBHOOK_SECRET_MAX bytes; NULL or 0: none */
    size_t secret_len;
    const uint8_t *secret_prev; /* v1, the old key during a rotation; NULL or 0: none */
    size_t secret_prev_len;
    const uint8_t *sk;      /* v1a Ed25519 secret key, NG_WEBHOOK_SK_BYTES; NULL: none */
    const uint8_t *sk_prev; /* v1a, the old key during a rotation; NULL: none */
    void *user;             /* handed back in the result */
} ng_deliver_job;

typedef enum ng_deliver_outcome {
    NG_DELIVER_ACKED = 0, /* 2xx */
    NG_DELIVER_GONE,      /* 410: the caller disables the backend */
    NG_DELIVER_RETRY,     /* any other status (3xx included), a timeout, a connection or TLS error */
    NG_DELIVER_REFUSED,   /* cannot succeed as addressed: address not allowed, bad URL, not http(s) */
} ng_deliver_outcome;

typedef struct ng_deliver_result {
    ng_deliver_outcome outcome;
    int status;             /* the HTTP status, 0 if none came */
    int64_t retry_after_ms; /* Retry-After of a 429 or 503 (seconds or HTTP-date), capped; else -1 */
    /* One line for logs, empty for ACKED: "status 500", "address 10.0.0.1 not allowed", libcurl's
       error text (which may name the host). Never a secret, a body, or the URL's path or query. */
    char error[NG_DELIVER_ERROR_BYTES];
    double seconds; /* the attempt, from the start of its transfer; 0 if never started */
    void *user;
} ng_deliver_result;

typedef void (*ng_deliver_cb)(void *ctx, const ng_deliver_result *r);

/* NG_ERR_INVALID_ARG for an allow_private entry that does not parse; NG_ERR_NOMEM. */
NG_MUST_CHECK ng_err ng_deliver_new(ng_deliver **out, const ng_deliver_opts *o) NG_NONNULL(1);
/* Aborts what is in flight and drops what waits, without callbacks; wipes every copy. NULL: nothing. */
void ng_deliver_free(ng_deliver *d);

/*
 * Queues one attempt; it starts at once if its endpoint and the total have
 * room. NG_ERR_TOO_LARGE when max_queued jobs are pending; NG_ERR_NOMEM;
 * NG_ERR_INVALID_ARG for a job that breaks the contract above (no url,
 * source or type, a bad id, secret length, content type, time or extension
 * name). A URL that does not parse or is not http(s) is accepted here and
 * reported NG_DELIVER_REFUSED by the next ng_deliver_run, like any job
 * that cannot be delivered as addressed.
 */
NG_MUST_CHECK ng_err ng_deliver_submit(ng_deliver *d, const ng_deliver_job *job) NG_NONNULL(1, 2);
/* Submitted and not yet reported. */
size_t ng_deliver_pending(const ng_deliver *d) NG_NONNULL(1);

/*
 * Drives the transfers for up to timeout_ms (0 or less: only what is ready now),
 * returning sooner once something has finished or on ng_deliver_wakeup,
 * then calls cb once for each job finished, in order of finishing.
 * NG_ERR_INVALID_ARG when called from a callback; NG_ERR_NOMEM or
 * NG_ERR_IO when libcurl fails (jobs stay pending).
 */
NG_MUST_CHECK ng_err ng_deliver_run(ng_deliver *d, int timeout_ms, ng_deliver_cb cb, void *ctx) NG_NONNULL(1, 3);
/* Any thread: makes a blocked ng_deliver_run return, or the next one return at once. */
void ng_deliver_wakeup(ng_deliver *d) NG_NONNULL(1);

/*
 * The headers every adapter sends with a job, in order: ce-specversion,
 * ce-id, ce-source, ce-type, ce-time, ce-subject, the extensions (ce-*
 * values percent-encoded), content-type and webhook-id; not the
 * timestamp and signature, which belong to each attempt
 * (ng_webhook_sign_all). emit returns nonzero to stop: NG_ERR_NOMEM.
 * NG_ERR_INVALID_ARG for a job ng_deliver_submit would refuse (its url aside,
 * which only a webhook uses).
 */
typedef int (*ng_deliver_emit)(void *ctx, const char *name, const char *value);

/*
 * An adapter's copy of a job's signing keys, kept until the attempt signs
 * and wiped then: the job's own may be freed as soon as it is submitted.
 */
typedef struct ng_deliver_keys {
    uint8_t secret[NG_WEBHOOK_SECRET_MAX], secret_prev[NG_WEBHOOK_SECRET_MAX];
    size_t secret_len, secret_prev_len;
    uint8_t sk[NG_WEBHOOK_SK_BYTES], sk_prev[NG_WEBHOOK_SK_BYTES];
    int has_sk, has_sk_prev;
} ng_deliver_keys;

/* Copies job's keys (lengths as ng_deliver_submit checks them). */
void ng_deliver_keys_copy(ng_deliver_keys *k, const ng_deliver_job *job) NG_NONNULL(1, 2);
/* The webhook-signature value for id, timestamp and body, then wipes k. */
NG_MUST_CHECK ng_err ng_deliver_keys_sign(ng_deliver_keys *k, char out[NG_WEBHOOK_SIGNERS_BYTES], const char *id,
                                          int64_t timestamp, const uint8_t *body, size_t body_len) NG_NONNULL(1, 2, 3);
void ng_deliver_keys_wipe(ng_deliver_keys *k) NG_NONNULL(1);
NG_MUST_CHECK ng_err ng_deliver_headers(const ng_deliver_job *job, ng_deliver_emit emit, void *ctx) NG_NONNULL(1, 2);

/*
 * The delay before retry number attempt + 1 (attempt 0: after the first
 * failure): schedule_s[attempt], the last entry repeating, in ms, with
 * +-20% jitter drawn from random32 (0: -20%, UINT32_MAX: +20%). Negative
 * entries count as 0; n == 0 or no schedule gives 0.
 */
int64_t ng_deliver_backoff_ms(const int *schedule_s, size_t n, uint32_t attempt, uint32_t random32);

/*
 * 1 if addr, an IPv4 or IPv6 literal, may not be connected to: loopback
 * (127/8, ::1), unspecified or "this network" (0/8, ::), RFC 1918 private,
 * CGNAT 100.64/10, link-local (169.254/16, fe80::/10), unique local
 * fc00::/7, site-local fec0::/10, multicast (224/4, ff00::/8), reserved and
 * broadcast 240/4, and those IPv4 ranges inside ::ffff:0:0/96 (mapped),
 * ::/96 (compatible), 64:ff9b::/96 (NAT64) and 2002::/16 (6to4), unless an
 * entry of allow (IP literal or CIDR; ones that do not parse are skipped)
 * covers it. A mapped address is matched against allow as IPv4. Input that
 * is not an IP literal (a name, a zone id, spaces) is blocked.
 */
int ng_deliver_address_blocked(const char *addr, const char *const *allow, size_t allow_len);

/* The address check for a request of one's own to a backend (a pairing offer). */
typedef struct ng_deliver_guard {
    const char *const *allow; /* as ng_deliver_address_blocked */
    size_t allow_len;
    int refused;           /* out: an address was refused */
    char refused_addr[64]; /* out: which, for the log */
} ng_deliver_guard;

/*
 * Sets on a libcurl easy handle (CURL *) what every request to a backend
 * needs: http and https only, no redirects, no proxy from the environment,
 * and ng_deliver_address_blocked at connect time, after DNS. g must outlive
 * the transfer. CURLE_OK (0) or the CURLcode of the option that failed.
 */
int ng_deliver_guard_install(void *curl, ng_deliver_guard *g);

#endif

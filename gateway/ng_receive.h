/*
 * ng_receive.h: what a tenant accepts. A parcel is opened with the key its
 * header names and checked against the tenant's rules (DESIGN.md, "Who may
 * send"):
 *   - the recipient key id is a live key of a local tenant;
 *   - the pattern is one the tenant opens (N and Npsk0 only if it allows
 *     anonymous senders), with the tenant's psk for the psk forms;
 *   - K: the sender key id names a key of one of the tenant's peers;
 *     X: the static key the parcel reveals is a key of one of its peers;
 *   - fetched from a peer's outbox, a K or X parcel must come from that peer;
 *   - created - skew <= now < expires, and expires - created within the
 *     allowed lifetime.
 * The replay window is the inbox's (ng_queue_inbox_accept).
 *
 * What waits in an inbox is the sealed parcel, never its plaintext: the
 * deliverer opens it again (ng_receive_open), so messages at rest in the
 * store are as safe as in transit.
 *
 * THREAD SAFETY: reentrant; the directory is read-only.
 */
#ifndef NG_RECEIVE_H
#define NG_RECEIVE_H

#include <stddef.h>
#include <stdint.h>

#include "ng_directory.h"
#include "ng_error.h"
#include "ng_parcel.h"
#include "ng_sscache.h"

enum {
    NG_RECEIVE_PEER_BYTES = 64,
    NG_RECEIVE_RECORD_OVERHEAD = 2 + NG_RECEIVE_PEER_BYTES,
};

typedef struct ng_receive_opts {
    uint64_t now_ms;          /* 0: the clock */
    uint64_t skew_ms;         /* allowance for a sender's clock ahead of ours */
    uint64_t max_lifetime_ms; /* 0: no limit */
    size_t max_bytes;         /* largest parcel; 0: NG_PARCEL_DEFAULT_MAX_BYTES */
    const char *from_peer;    /* NULL: pushed to us, any allowed sender; else fetched from this peer's outbox */
    int ignore_expiry;        /* for operators looking at dead letters */
    ng_ss_cache *cache;       /* optional */
} ng_receive_opts;

typedef struct ng_received {
    const ng_dir_tenant *tenant; /* into the directory passed in */
    const ng_dir_peer *peer;     /* NULL for an anonymous sender (N, Npsk0) */
    ng_parcel_header header;
} ng_received;

/*
 * Opens the parcel for the tenant it is addressed to, checks the rules
 * above, and wipes the plaintext. NG_ERR_NOT_FOUND: no local tenant has the
 * recipient key; NG_ERR_BAD_PATTERN: the tenant does not open that
 * pattern; NG_ERR_WRONG_SENDER: not a peer (or not the peer it was fetched
 * from); otherwise the parcel's own errors (NG_ERR_MALFORMED, NG_ERR_AUTH,
 * NG_ERR_EXPIRED, NG_ERR_NOT_YET_VALID, NG_ERR_LIFETIME, NG_ERR_TOO_LARGE,
 * NG_ERR_PSK_REQUIRED, ...). out->tenant is set as soon as it is known.
 *
 * A parcel sealed to a key the tenant's backend holds (end-to-end mode,
 * ng_tenant_key_export) cannot be opened here: it gets ng_receive_inspect's
 * header-only checks instead, so a sealed tenant still receives. What only
 * opening shows then passes the gateway: a changed body or tag, a wrong psk,
 * an X sender who is no peer. The backend, which opens it, must refuse
 * those; the replay window (the inbox's) is the same for both.
 */
NG_MUST_CHECK ng_err ng_receive_check(const ng_directory *d, const uint8_t *parcel, size_t len,
                                      const ng_receive_opts *o, ng_received *out);

/*
 * What the header alone allows, without opening: the recipient, the
 * pattern, a K sender (and the peer it was fetched from), the times. An X
 * sender and the tag are left to whoever holds the tenant's private key.
 * For parcels forwarded sealed (end-to-end mode).
 */
NG_MUST_CHECK ng_err ng_receive_inspect(const ng_directory *d, const uint8_t *parcel, size_t len,
                                        const ng_receive_opts *o, ng_received *out);

/* The times of a header under o's rules (now, skew, longest lifetime): ng_parcel_check_time's errors. */
NG_MUST_CHECK ng_err ng_receive_check_time(const ng_parcel_header *h, const ng_receive_opts *o);

/*
 * Checks and opens: the plaintext (meta and body point into it) in *plain,
 * malloc'd; the caller wipes and frees it. NG_ERR_KEY_ELSEWHERE (after the
 * header's checks of recipient, pattern and K sender) if the recipient key's
 * private half is held by the tenant's backend.
 */
NG_MUST_CHECK ng_err ng_receive_open(const ng_directory *d, const uint8_t *parcel, size_t len, const ng_receive_opts *o,
                                     ng_received *out, ng_opened *opened, uint8_t **plain, size_t *plain_len);

/* A metric label for a refusal: "unknown_recipient", "pattern", "sender", "expired", ... */
const char *ng_receive_reason(ng_err err);

/*
 * The inbox record: u8 version 1 || u8 peer name length || peer name ||
 * parcel. The peer is the one it was fetched from, "" if pushed. *out is
 * malloc'd.
 */
NG_MUST_CHECK ng_err ng_receive_record(uint8_t **out, size_t *len, const char *peer, const uint8_t *parcel,
                                       size_t parcel_len);
/* Splits a record; NG_ERR_MALFORMED if it is not one. */
NG_MUST_CHECK ng_err ng_receive_unrecord(const uint8_t *rec, size_t len, char peer[NG_RECEIVE_PEER_BYTES],
                                         const uint8_t **parcel, size_t *parcel_len);

#endif

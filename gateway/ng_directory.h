/*
 * ng_directory.h: every tenant, its keys, backends and peers, as one
 * read-only snapshot of the vault that request handlers, pollers and
 * deliverers consult without touching the vault.
 *
 * A snapshot never changes once loaded. When the vault changes, the gateway
 * loads a new one and swaps it in; whoever still holds the old one keeps a
 * consistent view until it lets go (ng_directory_hold / _release).
 *
 * Secrets (private keys, the signing key, psks, read tokens, webhook
 * secrets) live in one sodium_malloc arena, readable for the snapshot's
 * whole life since every request needs some of them, and wiped on release.
 * Fields marked "secret" point into it: never log them.
 *
 * THREAD SAFETY: a held snapshot may be read by any number of threads;
 * hold and release are atomic.
 */
#ifndef NG_DIRECTORY_H
#define NG_DIRECTORY_H

#include <stddef.h>
#include <stdint.h>

#include "ng_error.h"
#include "ng_key.h"
#include "ng_suite.h"
#include "ng_vault.h"

/* The bit of a pattern in the pattern sets below. */
#define NG_DIR_PATTERN_BIT(p) (1u << (((unsigned)(p)&3u) - 1u + (((unsigned)(p)&0x80u) ? 3u : 0u)))

enum {
    NG_DIR_MAX_PATTERNS = 6,
};

typedef struct ng_dir_key {
    uint32_t epoch;
    uint8_t pub[NG_KEY_BYTES];
    uint8_t id[NG_KEY_ID_BYTES];
    /*
     * Secret; NULL when the tenant's backend holds the private key
     * (end-to-end mode, ng_tenant_key_export): nothing sealed to this key
     * opens here, and the tenant cannot be a K or X sender with it.
     */
    const ng_keypair *kp;
} ng_dir_key;

typedef struct ng_dir_backend {
    const char *id; /* "b1" */
    const char *url;
    int active;          /* 0 once disabled (a 410 from its URL) */
    int nats;            /* delivered to (and submitting from) NATS JetStream, not webhooks */
    int sealed;          /* end-to-end: parcels are delivered unopened */
    const char *subject; /* nats: the subject prefix ("noisegate.<tenant>" unless set) */
    int has_pk;          /* it signs with Ed25519 (v1a) */
    uint8_t pk[32];
    const uint8_t *whsec; /* secret: the v1 HMAC key */
    size_t whsec_len;
    const uint8_t *whsec_prev; /* secret, NULL unless a rotation is under way */
    size_t whsec_prev_len;
} ng_dir_backend;

typedef struct ng_dir_peer_key {
    uint32_t epoch;
    uint8_t pub[NG_KEY_BYTES];
    uint8_t id[NG_KEY_ID_BYTES];
} ng_dir_peer_key;

typedef struct ng_dir_peer {
    const char *name;   /* ours for it: unique among the tenant's peers */
    const char *remote; /* its own name (the one in its parameters): its outbox streams in a shared Redis */
    const char *outbox; /* where its parcels for us are read */
    const ng_dir_peer_key *keys;
    size_t nkeys;                           /* ascending epochs: keys[nkeys - 1] is the one to seal to */
    unsigned patterns;                      /* what can be sealed to it: no psk pattern unless it gave a psk */
    ng_pattern prefer[NG_DIR_MAX_PATTERNS]; /* the same, in its order of preference */
    size_t nprefer;
    const uint8_t *psk;        /* secret, NULL if it has none */
    const uint8_t *read_token; /* secret: presented to read its outbox; NULL if none */
    uint8_t signing_key[32];
} ng_dir_peer;

typedef struct ng_dir_tenant {
    const char *slug;
    const ng_dir_key *keys;
    size_t nkeys;           /* ascending epochs: keys[nkeys - 1] seals */
    const uint8_t *sign_sk; /* secret: Ed25519, 64 bytes */
    uint8_t sign_pk[32];
    const uint8_t *psk;        /* secret, NULL if it has none */
    const uint8_t *read_token; /* secret */
    unsigned patterns;         /* NG_DIR_PATTERN_BIT of each pattern it opens */
    uint64_t max_message;      /* 0: the gateway's limit */
    uint32_t rate;             /* 0: unlimited */
    const ng_dir_backend *backends;
    size_t nbackends;
    const ng_dir_peer *peers;
    size_t npeers;
} ng_dir_tenant;

typedef struct ng_directory ng_directory;

/*
 * Reads every tenant of an open vault. NG_ERR_CORRUPT if a record does not
 * have the shape ng_tenant and ng_peer write, NG_ERR_NOMEM. The snapshot
 * comes held once.
 */
NG_MUST_CHECK ng_err ng_directory_load(ng_directory **out, ng_vault *v);
/* One more holder; returns d. */
ng_directory *ng_directory_hold(ng_directory *d);
/* One holder fewer; the last one frees and wipes. NULL is a no-op. */
void ng_directory_release(ng_directory *d);

size_t ng_directory_count(const ng_directory *d);
/* Tenants in slug order. */
const ng_dir_tenant *ng_directory_at(const ng_directory *d, size_t i);
const ng_dir_tenant *ng_directory_tenant(const ng_directory *d, const char *slug);
/* The tenant that owns the live key with this id (and the key), or NULL. */
const ng_dir_tenant *ng_directory_recipient(const ng_directory *d, const uint8_t key_id[NG_KEY_ID_BYTES],
                                            const ng_dir_key **key);
/* The tenant whose read token this is (compared in constant time), or NULL. */
const ng_dir_tenant *ng_directory_reader(const ng_directory *d, const uint8_t *token, size_t len);
const ng_dir_peer *ng_directory_peer(const ng_dir_tenant *t, const char *name);
/* The peer of t with a static key of this id (and the key), or NULL. */
const ng_dir_peer *ng_directory_sender(const ng_directory *d, const ng_dir_tenant *t,
                                       const uint8_t key_id[NG_KEY_ID_BYTES], const ng_dir_peer_key **key);
const ng_dir_backend *ng_directory_backend(const ng_dir_tenant *t, const char *id);

#endif

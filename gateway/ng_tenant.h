/*
 * ng_tenant.h: tenants, their keys and their backends, kept in the vault.
 *
 * A tenant is a slug with Noise static keys by epoch (the newest sends;
 * older ones still open parcels until retired), an Ed25519 signing key, the
 * patterns it accepts, an optional psk, a read token for its outboxes,
 * limits, and the backends paired with it. Peers are in ng_peer.h.
 *
 * Vault entries of tenant T (names are the contract between processes that
 * share a vault; public parts are JSON, secrets raw bytes):
 *   tenant/T                    record: keys (public), patterns, limits
 *   tenant/T/key/E              X25519 private key of epoch E, unless that
 *                               epoch is "held_by_backend" in the record
 *   tenant/T/sign               Ed25519 secret key
 *   tenant/T/psk                32 bytes, if the tenant uses one
 *   tenant/T/read_token         32 bytes peers present to read its outboxes
 *   tenant/T/backend/B          backend record: url, public key, status
 *   tenant/T/backend/B/whsec    its webhook secret (and whsec.prev while rotating)
 *   tenant/T/peer/P...          see ng_peer.h
 *
 * Functions act on an open vault (inside ng_vault_update to persist), and
 * report with ng_err; NG_ERR_NOT_FOUND names no tenant, backend or epoch,
 * NG_ERR_EXISTS a duplicate, NG_ERR_INVALID_ARG a refused value. Outputs
 * that are JSON are new references for the caller to json_decref; they
 * never contain a private key or a secret.
 */
#ifndef NG_TENANT_H
#define NG_TENANT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ng_error.h"
#include "ng_key.h"
#include "ng_vault.h"

enum {
    NG_TENANT_MAX_SLUG = 63,
    NG_TENANT_MAX_KEYS = 16, /* live epochs at once: retire before rotating more */
    NG_TENANT_MAX_BACKENDS = 32,
    NG_TENANT_MAX_URL = 2048,
    NG_TENANT_SECRET_BYTES = 32,      /* psk, read token, whsec */
    NG_TENANT_ID_BYTES = 16,          /* room for a backend id such as "b12" */
    NG_TENANT_NATS_SUBJECT_MAX = 100, /* characters of a NATS backend's subject prefix */
};

typedef struct ng_tenant_opts {
    int psk;              /* give the tenant a psk: it then accepts only psk patterns */
    int allow_anonymous;  /* also accept N (Npsk0 with a psk): senders nobody knows */
    uint64_t max_message; /* largest message body in bytes; 0: the gateway's limit */
    uint32_t rate;        /* messages per second from its backends; 0: unlimited */
} ng_tenant_opts;

/* 1 if s is a slug: 1-63 of [a-z0-9-], starting with a letter or digit. */
int ng_tenant_slug_ok(const char *s);

NG_MUST_CHECK ng_err ng_tenant_create(ng_vault *v, const char *slug, const ng_tenant_opts *o, int64_t now);
/* Removes the tenant and every entry under it. */
NG_MUST_CHECK ng_err ng_tenant_delete(ng_vault *v, const char *slug);

/* An array of summaries (slug, created, sending epoch and key id, counts). */
NG_MUST_CHECK ng_err ng_tenant_list(ng_vault *v, json_t **out);
/* Everything public about one tenant, its backends and peers included. */
NG_MUST_CHECK ng_err ng_tenant_show(ng_vault *v, const char *slug, json_t **out);
/*
 * The public records under tenant/T/<kind>/ ("backend", "peer"), each with
 * its own name under id_field. NG_ERR_NOT_FOUND if there is no tenant.
 */
NG_MUST_CHECK ng_err ng_tenant_records(ng_vault *v, const char *slug, const char *kind, const char *id_field,
                                       json_t **out);
/* The stored record itself (see above); for ng_peer. */
NG_MUST_CHECK ng_err ng_tenant_record(ng_vault *v, const char *slug, json_t **out);

/*
 * A new newest epoch, its key pair made here and held by the gateway (also
 * after an export: rotating takes the tenant out of end-to-end mode for what
 * peers seal from then on); NG_ERR_TOO_LARGE at NG_TENANT_MAX_KEYS live keys.
 */
NG_MUST_CHECK ng_err ng_tenant_key_rotate(ng_vault *v, const char *slug, int64_t now, uint32_t *epoch);
/*
 * Forgets an old epoch, its private key if the gateway holds it. The newest
 * (sending) one cannot be retired.
 */
NG_MUST_CHECK ng_err ng_tenant_key_retire(ng_vault *v, const char *slug, uint32_t epoch);

/*
 * End-to-end mode: the tenant's backend, not the gateway, holds the private
 * key, so that only the backend can open what peers seal to the tenant. An
 * epoch so held keeps its public key in the record, marked
 * "held_by_backend": true, and has no tenant/T/key/E entry; the gateway
 * still checks the headers of parcels sealed to it (ng_receive_check) and
 * forwards them unopened to a backend in sealed mode.
 */
/*
 * Hands the newest epoch's key pair over, once: in *out (the caller shows
 * the private half and wipes it), deleted from the vault, the epoch marked
 * held by the backend. NG_ERR_KEY_ELSEWHERE if the newest epoch is held by
 * the backend already; NG_ERR_CORRUPT if the vault's key is missing or does
 * not match the record's public key. *out is wiped on any error.
 */
NG_MUST_CHECK ng_err ng_tenant_key_export(ng_vault *v, const char *slug, uint32_t *epoch, ng_keypair *out);
/*
 * A new newest epoch with a public key the backend made (it keeps the
 * private one). NG_ERR_BAD_KEY for a key peers cannot seal to (all zero, of
 * low order, or not canonical: 2^255 - 19 or above); NG_ERR_EXISTS if its key
 * id is a live key's of any tenant (a parcel's recipient would be ambiguous,
 * and ng_directory_load refuses it); NG_ERR_TOO_LARGE at NG_TENANT_MAX_KEYS.
 */
NG_MUST_CHECK ng_err ng_tenant_key_import_public(ng_vault *v, const char *slug, const uint8_t pub[NG_KEY_BYTES],
                                                 int64_t now, uint32_t *epoch);
/*
 * The key pair of an epoch (0: the newest); wipe it with ng_keypair_wipe.
 * NG_ERR_KEY_ELSEWHERE if that epoch's private key is held by the backend;
 * NG_ERR_CORRUPT if the vault's key is not the one the record publishes.
 */
NG_MUST_CHECK ng_err ng_tenant_keypair(ng_vault *v, const char *slug, uint32_t epoch, ng_keypair *out);
/*
 * The key pair of the live epoch whose key id is key_id; NG_ERR_WRONG_RECIPIENT
 * if none, NG_ERR_KEY_ELSEWHERE if the backend holds it.
 */
NG_MUST_CHECK ng_err ng_tenant_keypair_for(ng_vault *v, const char *slug, const uint8_t key_id[NG_KEY_ID_BYTES],
                                           ng_keypair *out);
/* Copies a secret of the tenant: which is "sign" (64 bytes), "psk" or "read_token" (32). */
NG_MUST_CHECK ng_err ng_tenant_secret(ng_vault *v, const char *slug, const char *which, uint8_t *out, size_t len);

/*
 * Pairs a backend by hand: url (http or https) and optionally its Ed25519
 * public key as "whpk_" and base64. A fresh webhook secret is made; id
 * receives the backend's id, whsec (if not NULL) the secret as "whsec_" and
 * base64, which the caller shows once and wipes.
 */
NG_MUST_CHECK ng_err ng_tenant_backend_add(ng_vault *v, const char *slug, const char *url, const char *whpk,
                                           int64_t now, char id[NG_TENANT_ID_BYTES], char *whsec, size_t whsec_cap);

/* How a backend takes its messages; NULL fields are the defaults. */
typedef struct ng_tenant_backend_opts {
    const char *adapter; /* "webhook" (the default; url http or https) or "nats" (url nats://host:port) */
    const char *mode;    /* "opened" (the default: the gateway opens parcels) or "sealed" (forwarded unopened) */
    const char *subject; /* nats: the subject prefix, "<subject>.deliver" and "<subject>.submit";
                            default "noisegate.<tenant>" */
} ng_tenant_backend_opts;

/* As ng_tenant_backend_add, with the adapter and mode: NG_ERR_INVALID_ARG for one not known or not fitting the URL. */
NG_MUST_CHECK ng_err ng_tenant_backend_add_with(ng_vault *v, const char *slug, const char *url, const char *whpk,
                                                const ng_tenant_backend_opts *bo, int64_t now,
                                                char id[NG_TENANT_ID_BYTES], char *whsec, size_t whsec_cap);
/* Why a backend with this URL and these options cannot be added (one line for an operator), or NULL. */
const char *ng_tenant_backend_problem(const char *url, const ng_tenant_backend_opts *bo);
/* 1 if url is nats://host[:port], nothing after, no credentials. */
int ng_tenant_nats_url_ok(const char *url);
NG_MUST_CHECK ng_err ng_tenant_backend_remove(ng_vault *v, const char *slug, const char *id);
/* A new webhook secret; the old one stays as whsec.prev so deliveries can carry both during the change. */
NG_MUST_CHECK ng_err ng_tenant_backend_rotate_secret(ng_vault *v, const char *slug, const char *id, int64_t now,
                                                     char *whsec, size_t whsec_cap);
/* Marks a backend active or disabled (a 410 from its URL disables it; deliveries wait until it is active again). */
NG_MUST_CHECK ng_err ng_tenant_backend_set_active(ng_vault *v, const char *slug, const char *id, int active,
                                                  int64_t now);
NG_MUST_CHECK ng_err ng_tenant_backend_list(ng_vault *v, const char *slug, json_t **out);

/* Reads a JSON entry of the vault (NG_ERR_CORRUPT if it is not a JSON object). */
NG_MUST_CHECK ng_err ng_tenant_get_json(ng_vault *v, const char *name, json_t **out);
/* Writes a JSON entry of the vault, compact with sorted keys. */
NG_MUST_CHECK ng_err ng_tenant_put_json(ng_vault *v, const char *name, json_t *obj);
/* Deletes every entry whose name starts with prefix; how many in *count (may be NULL). */
NG_MUST_CHECK ng_err ng_tenant_delete_prefix(ng_vault *v, const char *prefix, size_t *count);

/* 1 if url is an http:// or https:// URL noisegate will store: printable, no spaces or user info. */
int ng_tenant_url_ok(const char *url);
/* 1 if url, of any scheme, may be stored: NG_TENANT_MAX_URL bytes at most, no space, control, '"' or '\\'. */
int ng_tenant_url_text_ok(const char *url);

#endif

/*
 * ng_peer.h: connection parameters and the peers imported from them.
 *
 * A tenant's connection parameters tell a peer how to send to it and how
 * to read what it sends: its name, its live Noise static public keys by
 * epoch, the patterns and suites it accepts, its outbox URL, its read
 * token, its psk if it has one, and its Ed25519 signing key. They travel as
 * one string:
 *
 *   "ngcp1:" base64url(canonical JSON of the parameters and "sig")
 *
 * where canonical means compact with sorted keys (a document that is not
 * canonical is refused, so each set of parameters has one encoding) and sig
 * is the lower-case hex Ed25519 signature (plain Ed25519, crypto_sign_detached),
 * by signing_key, of "noisegate-cp-v1\n" followed by the canonical JSON
 * without "sig". All hex in the document is lower case. A change in transit fails
 * the signature; an importer that already knows the peer refuses a
 * different signing key (so a substituted string is caught on update) and
 * parameters older than those it has. The first import trusts the string,
 * so operators compare the fingerprint that export and import both print.
 *
 * The string carries the read token and the psk: treat it as a secret.
 *
 * Vault entries of peer P of tenant T: tenant/T/peer/P (public record),
 * tenant/T/peer/P/psk and tenant/T/peer/P/read_token.
 */
#ifndef NG_PEER_H
#define NG_PEER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ng_error.h"
#include "ng_vault.h"

enum {
    NG_PEER_MAX_PARAMS = 16 * 1024, /* bytes of an ngcp1 string */
    NG_PEER_FINGERPRINT_BYTES = 40, /* "XXXX-XXXX-..." text, NUL included */
};

/*
 * Exports tenant slug's parameters with outbox as its outbox URL. *out is
 * malloc'd and NUL-terminated; the caller wipes (it holds secrets) and
 * frees it. fingerprint (may be NULL) gets the signing key's fingerprint.
 */
NG_MUST_CHECK ng_err ng_peer_export(ng_vault *v, const char *slug, const char *outbox, int64_t now, char **out,
                                    char fingerprint[NG_PEER_FINGERPRINT_BYTES]);

/*
 * Checks a string and returns its parameters without the secrets (psk and
 * read token become booleans "psk" and "read_token"). NG_ERR_BAD_VERSION for
 * another version, NG_ERR_PARSE for bad framing or content, NG_ERR_AUTH for
 * a bad signature.
 */
NG_MUST_CHECK ng_err ng_peer_decode(const char *params, json_t **out);

/*
 * Imports a string as peer name of tenant slug (name NULL: the name in the
 * parameters); the name used goes to used (may be NULL). A peer already
 * known under that name is updated only by parameters signed by the same
 * key and no older than those stored: NG_ERR_EXISTS otherwise, or
 * NG_ERR_AUTH for a different signing key. NG_ERR_BAD_KEY if a static key
 * is a low-order point.
 */
NG_MUST_CHECK ng_err ng_peer_import(ng_vault *v, const char *slug, const char *params, const char *name, int64_t now,
                                    char used[64]);

NG_MUST_CHECK ng_err ng_peer_remove(ng_vault *v, const char *slug, const char *name);
/* The public records of a tenant's peers, each with its "name" and "fingerprint". */
NG_MUST_CHECK ng_err ng_peer_list(ng_vault *v, const char *slug, json_t **out);

/*
 * Where a peer's parcels for us are read, as connection parameters may say:
 * a peer gateway ("http[s]://.../v1/outbox"), HTTP storage (any other
 * http[s]:// URL) or a shared Redis ("redis://HOST[:PORT][/DB]", read as
 * the peer's own outbox streams). No user info, no unix sockets: an
 * address chosen by a peer must be one the address guard can judge.
 */
int ng_peer_outbox_ok(const char *url);

/* "ab12-cd34-..." : the first 16 bytes of BLAKE2b-256 of an Ed25519 public key, grouped for reading aloud. */
void ng_peer_fingerprint(char out[NG_PEER_FINGERPRINT_BYTES], const uint8_t pk[32]);

#endif

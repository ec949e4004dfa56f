/*
 * ng_key.h: X25519 static key pairs, key ids and the Diffie-Hellman step.
 */
#ifndef NG_KEY_H
#define NG_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "ng_error.h"

enum {
    NG_KEY_BYTES = 32,    /* X25519 public or private key */
    NG_KEY_ID_BYTES = 32, /* BLAKE2b-256("noisegate-key-id-v1" || public key) */
    NG_PSK_BYTES = 32,
    NG_DH_BYTES = 32,
};

/*
 * A static key pair. Keeping the public half beside the private one spares a
 * base-point multiplication (as costly as a DH) on every open. Wipe it with
 * ng_keypair_wipe.
 */
typedef struct ng_keypair {
    uint8_t pub[NG_KEY_BYTES];
    uint8_t priv[NG_KEY_BYTES];
} ng_keypair;

/* A fresh random key pair (Noise GENERATE_KEYPAIR). */
void ng_keypair_generate(ng_keypair *kp) NG_NONNULL(1);
/* Derives the public key from a private one; NG_ERR_BAD_KEY if it is degenerate. */
NG_MUST_CHECK ng_err ng_keypair_from_private(ng_keypair *kp, const uint8_t priv[NG_KEY_BYTES]) NG_NONNULL(1, 2);
void ng_keypair_wipe(ng_keypair *kp);

/* The key id of a public key, as the parcel header carries it. */
void ng_key_id(uint8_t id[NG_KEY_ID_BYTES], const uint8_t pub[NG_KEY_BYTES]) NG_NONNULL(1, 2);

/*
 * out = X25519(priv, pub). NG_ERR_BAD_KEY (and out wiped) when the result is
 * all zero, i.e. pub is a small-order point: a peer must not be able to force
 * a known shared secret.
 */
NG_MUST_CHECK ng_err ng_dh(uint8_t out[NG_DH_BYTES], const uint8_t priv[NG_KEY_BYTES], const uint8_t pub[NG_KEY_BYTES])
    NG_NONNULL(1, 2, 3);

/*
 * NG_OK if pub may stand as someone's static key: canonical (below 2^255 - 19,
 * top bit clear, so that one key has one key id) and not of low order.
 * NG_ERR_BAD_KEY otherwise. X25519 never makes a key it refuses.
 */
NG_MUST_CHECK ng_err ng_key_public_ok(const uint8_t pub[NG_KEY_BYTES]) NG_NONNULL(1);

#endif

/*
 * ng_noise.h: the one-way Noise handshakes N, K, X, Npsk0, Kpsk0 and Xpsk1
 * (revision 34): one handshake message from initiator to responder, then
 * transport messages under the first CipherState of Split().
 *
 * Internal to libnoisegate-envelope; ng_parcel builds on it, and the vector
 * tests drive it directly with fixed ephemeral keys.
 */
#ifndef NG_NOISE_H
#define NG_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "ng_cipher.h"
#include "ng_error.h"
#include "ng_hash.h"
#include "ng_key.h"
#include "ng_sscache.h"
#include "ng_suite.h"

enum {
    NG_NOISE_MAX_MESSAGE = 65535,
    NG_NOISE_E_BYTES = NG_KEY_BYTES,
    NG_NOISE_S_BYTES = NG_KEY_BYTES + NG_CIPHER_TAG_BYTES, /* encrypted static key */
};

typedef struct ng_noise_params {
    ng_pattern pattern;
    ng_suite suite;
    const uint8_t *prologue;
    size_t prologue_len;
    const uint8_t *psk; /* NG_PSK_BYTES; required exactly for the psk patterns */
    /*
     * Initiator: its static key (K, X) and the responder's public key.
     * Responder: its static key and, for K, the initiator's public key
     * (remote_pub may be NULL for N and X).
     */
    const ng_keypair *local;
    const uint8_t *remote_pub;
    /* Responder, X only: the one sender accepted, checked as soon as s is
     * decrypted so that a refused sender costs no further DH. */
    const uint8_t *expected_rs;
    /* Initiator only; NULL means a fresh random one. Tests inject fixed keys. */
    const uint8_t *fixed_ephemeral;
    /* Optional, for the ss token. The responder inserts only once the
     * handshake message has authenticated, so forged parcels cannot evict
     * real peers' entries. */
    ng_ss_cache *cache;
} ng_noise_params;

/*
 * Bytes a handshake message adds to its payload: e, the encrypted s for X, and
 * the payload's tag. The payload ciphertext starts at
 * msg + overhead - NG_CIPHER_TAG_BYTES.
 */
size_t ng_noise_handshake_overhead(ng_pattern p);

/*
 * Writes the handshake message for `payload` (overhead + plen bytes) to msg.
 * payload may already sit where its ciphertext goes (in place). c1 receives
 * the transport CipherState; hash_out (optional, NG_HASH_MAX_BYTES) the final
 * handshake hash.
 */
NG_MUST_CHECK ng_err ng_noise_write(const ng_noise_params *p, uint8_t *msg, const uint8_t *payload, size_t plen,
                                    ng_cipher_state *c1, uint8_t *hash_out);

/*
 * Reads a handshake message of mlen bytes; writes the payload (mlen - overhead
 * bytes) to payload_out. rs_out (for X and Xpsk1) receives the initiator's
 * static public key. On error nothing useful is left in the outputs.
 * NG_ERR_WRONG_SENDER when expected_rs is set and s is another key.
 */
NG_MUST_CHECK ng_err ng_noise_read(const ng_noise_params *p, const uint8_t *msg, size_t mlen, uint8_t *payload_out,
                                   ng_cipher_state *c1, uint8_t *rs_out, uint8_t *hash_out);

ng_hash_kind ng_suite_hash(ng_suite s);
ng_cipher_kind ng_suite_cipher(ng_suite s);

#endif

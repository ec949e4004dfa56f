/*
 * ng_cipher.h: the Noise CipherState (spec section 5.1) over ChaChaPoly or
 * AESGCM from libsodium. Internal to libnoisegate-envelope.
 */
#ifndef NG_CIPHER_H
#define NG_CIPHER_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "ng_error.h"

enum {
    NG_CIPHER_KEY_BYTES = 32,
    NG_CIPHER_TAG_BYTES = 16,
};

typedef enum ng_cipher_kind {
    NG_CIPHER_CHACHAPOLY = 0,
    NG_CIPHER_AESGCM = 1,
} ng_cipher_kind;

typedef struct ng_cipher_state {
    /* AESGCM keeps the expanded key schedule, so MixKey pays for it once. */
    crypto_aead_aes256gcm_state aes;
    uint8_t k[NG_CIPHER_KEY_BYTES];
    uint64_t n;
    ng_cipher_kind kind;
    int has_key;
} ng_cipher_state;

/* Whether libsodium can run `kind` on this CPU. */
int ng_cipher_available(ng_cipher_kind kind);

void ng_cipher_clear(ng_cipher_state *cs, ng_cipher_kind kind);
/* InitializeKey(k): sets the key, n = 0. */
void ng_cipher_init_key(ng_cipher_state *cs, const uint8_t k[NG_CIPHER_KEY_BYTES]);

/*
 * EncryptWithAd: writes inlen + 16 bytes to out (only inlen if no key).
 * out may equal in. NG_ERR_NONCE_EXHAUSTED once n reaches 2^64-1.
 */
NG_MUST_CHECK ng_err ng_cipher_encrypt(ng_cipher_state *cs, uint8_t *out, const uint8_t *ad, size_t adlen,
                                       const uint8_t *in, size_t inlen);
/*
 * DecryptWithAd: in is inlen bytes including the tag; writes inlen - 16 bytes.
 * NG_ERR_AUTH on a bad tag (out is then wiped) and n is not advanced.
 */
NG_MUST_CHECK ng_err ng_cipher_decrypt(ng_cipher_state *cs, uint8_t *out, const uint8_t *ad, size_t adlen,
                                       const uint8_t *in, size_t inlen);

void ng_cipher_wipe(ng_cipher_state *cs);

#endif

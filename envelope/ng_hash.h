/*
 * ng_hash.h: the three Noise hash functions, and HMAC and HKDF exactly as
 * section 4.3 of the Noise spec (revision 34) defines them.
 *
 * Internal to libnoisegate-envelope. HMAC is built generically on the
 * streaming hash so that BLAKE2b gets RFC 2104 HMAC with its 128-byte block
 * (not BLAKE2b's keyed mode, which Noise does not use).
 */
#ifndef NG_HASH_H
#define NG_HASH_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

enum {
    NG_HASH_MAX_BYTES = 64,  /* HASHLEN of SHA512 and BLAKE2b */
    NG_HASH_MAX_BLOCK = 128, /* BLOCKLEN of SHA512 and BLAKE2b */
};

typedef enum ng_hash_kind {
    NG_HASH_BLAKE2B = 0,
    NG_HASH_SHA256 = 1,
    NG_HASH_SHA512 = 2,
} ng_hash_kind;

/* Streaming state; fits on the stack. Wipe it if it absorbed a secret. */
typedef struct ng_hash_state {
    ng_hash_kind kind;
    union {
        crypto_generichash_blake2b_state blake2b;
        crypto_hash_sha256_state sha256;
        crypto_hash_sha512_state sha512;
    } u;
} ng_hash_state;

size_t ng_hash_len(ng_hash_kind kind);
size_t ng_hash_block_len(ng_hash_kind kind);

void ng_hash_init(ng_hash_state *st, ng_hash_kind kind);
void ng_hash_update(ng_hash_state *st, const uint8_t *in, size_t len);
/* Writes ng_hash_len(kind) bytes and wipes the state. */
void ng_hash_final(ng_hash_state *st, uint8_t *out);

/* out = HASH(a || b); b may be NULL when blen is 0. */
void ng_hash2(ng_hash_kind kind, uint8_t *out, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* out = HMAC-HASH(key, data1 || data2), out is ng_hash_len(kind) bytes. */
void ng_hmac(ng_hash_kind kind, uint8_t *out, const uint8_t *key, size_t keylen, const uint8_t *data1, size_t len1,
             const uint8_t *data2, size_t len2);

/*
 * Noise HKDF(chaining_key, input_key_material, num_outputs) with
 * num_outputs 2 or 3. ck is ng_hash_len(kind) bytes; out1, out2 (and out3
 * unless NULL) receive ng_hash_len(kind) bytes each. Every intermediate is
 * wiped. ck may alias out1.
 */
void ng_hkdf(ng_hash_kind kind, const uint8_t *ck, const uint8_t *ikm, size_t ikmlen, uint8_t *out1, uint8_t *out2,
             uint8_t *out3);

#endif

#include "ng_key.h"

#include <string.h>

#include <sodium.h>

static const char key_id_context[] = "noisegate-key-id-v1";

void
ng_keypair_generate(ng_keypair *kp)
{
    /* A random scalar is never degenerate after clamping, so this cannot fail
     * in practice; loop rather than return an error nobody could act on. */
    do {
        randombytes_buf(kp->priv, sizeof kp->priv);
    } while (crypto_scalarmult_curve25519_base(kp->pub, kp->priv) != 0);
}

ng_err
ng_keypair_from_private(ng_keypair *kp, const uint8_t priv[NG_KEY_BYTES])
{
    if (kp->priv != priv)
        memcpy(kp->priv, priv, NG_KEY_BYTES);
    if (crypto_scalarmult_curve25519_base(kp->pub, kp->priv) != 0) {
        ng_keypair_wipe(kp);
        return NG_ERR_BAD_KEY;
    }
    return NG_OK;
}

void
ng_keypair_wipe(ng_keypair *kp)
{
    if (kp != NULL)
        sodium_memzero(kp, sizeof *kp);
}

void
ng_key_id(uint8_t id[NG_KEY_ID_BYTES], const uint8_t pub[NG_KEY_BYTES])
{
    crypto_generichash_blake2b_state st;

    crypto_generichash_blake2b_init(&st, NULL, 0, NG_KEY_ID_BYTES);
    crypto_generichash_blake2b_update(&st, (const uint8_t *)key_id_context, sizeof key_id_context - 1);
    crypto_generichash_blake2b_update(&st, pub, NG_KEY_BYTES);
    crypto_generichash_blake2b_final(&st, id, NG_KEY_ID_BYTES);
}

ng_err
ng_dh(uint8_t out[NG_DH_BYTES], const uint8_t priv[NG_KEY_BYTES], const uint8_t pub[NG_KEY_BYTES])
{
    /* libsodium already returns -1 for an all-zero result; the explicit
     * constant-time check keeps the rule visible and independent of that. */
    if (crypto_scalarmult_curve25519(out, priv, pub) != 0 || sodium_is_zero(out, NG_DH_BYTES)) {
        sodium_memzero(out, NG_DH_BYTES);
        return NG_ERR_BAD_KEY;
    }
    return NG_OK;
}

ng_err
ng_key_public_ok(const uint8_t pub[NG_KEY_BYTES])
{
    /* 2^255 - 19, little-endian: an encoding at or above it is another encoding of a smaller value. */
    static const uint8_t p[NG_KEY_BYTES] = {0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    uint8_t shared[NG_DH_BYTES];
    ng_keypair probe;
    ng_err err;
    int i;

    /*
     * Non-canonical encodings name the same point as a canonical one under
     * another key id: two ids for one key would let the same parcel be
     * addressed twice. X25519 never makes one, so no one's key is one.
     */
    if (pub[31] & 0x80)
        return NG_ERR_BAD_KEY;
    for (i = NG_KEY_BYTES - 1; i >= 0 && pub[i] == p[i]; i--)
        ;
    if (i < 0 || pub[i] > p[i])
        return NG_ERR_BAD_KEY;
    /* A clamped scalar is a multiple of the cofactor: DH with a point of low order is all zero whatever the scalar. */
    ng_keypair_generate(&probe);
    err = ng_dh(shared, probe.priv, pub);
    sodium_memzero(shared, sizeof shared);
    ng_keypair_wipe(&probe);
    return err;
}

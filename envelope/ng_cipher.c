#include "ng_cipher.h"

#include <string.h>

int
ng_cipher_available(ng_cipher_kind kind)
{
    return kind == NG_CIPHER_CHACHAPOLY || crypto_aead_aes256gcm_is_available();
}

void
ng_cipher_clear(ng_cipher_state *cs, ng_cipher_kind kind)
{
    cs->kind = kind;
    cs->has_key = 0;
    cs->n = 0;
}

void
ng_cipher_init_key(ng_cipher_state *cs, const uint8_t k[NG_CIPHER_KEY_BYTES])
{
    if (cs->kind == NG_CIPHER_AESGCM)
        crypto_aead_aes256gcm_beforenm(&cs->aes, k);
    else
        memcpy(cs->k, k, NG_CIPHER_KEY_BYTES);
    cs->has_key = 1;
    cs->n = 0;
}

/* Noise section 12: ChaChaPoly takes 32 zero bits and the counter little-endian,
 * AESGCM 32 zero bits and the counter big-endian. */
static void
make_nonce(uint8_t nonce[12], ng_cipher_kind kind, uint64_t n)
{
    int i;

    memset(nonce, 0, 4);
    for (i = 0; i < 8; i++) {
        uint8_t b = (uint8_t)(n >> (8 * i));
        if (kind == NG_CIPHER_AESGCM)
            nonce[11 - i] = b;
        else
            nonce[4 + i] = b;
    }
}

ng_err
ng_cipher_encrypt(ng_cipher_state *cs, uint8_t *out, const uint8_t *ad, size_t adlen, const uint8_t *in, size_t inlen)
{
    uint8_t nonce[12];

    if (!cs->has_key) {
        if (out != in)
            memmove(out, in, inlen);
        return NG_OK;
    }
    if (cs->n == UINT64_MAX)
        return NG_ERR_NONCE_EXHAUSTED;
    make_nonce(nonce, cs->kind, cs->n);
    if (cs->kind == NG_CIPHER_AESGCM)
        crypto_aead_aes256gcm_encrypt_afternm(out, NULL, in, inlen, ad, adlen, NULL, nonce, &cs->aes);
    else
        crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, in, inlen, ad, adlen, NULL, nonce, cs->k);
    cs->n++;
    return NG_OK;
}

ng_err
ng_cipher_decrypt(ng_cipher_state *cs, uint8_t *out, const uint8_t *ad, size_t adlen, const uint8_t *in, size_t inlen)
{
    uint8_t nonce[12];
    int rc;

    if (!cs->has_key) {
        if (out != in)
            memmove(out, in, inlen);
        return NG_OK;
    }
    if (inlen < NG_CIPHER_TAG_BYTES)
        return NG_ERR_AUTH;
    if (cs->n == UINT64_MAX)
        return NG_ERR_NONCE_EXHAUSTED;
    make_nonce(nonce, cs->kind, cs->n);
    if (cs->kind == NG_CIPHER_AESGCM)
        rc = crypto_aead_aes256gcm_decrypt_afternm(out, NULL, NULL, in, inlen, ad, adlen, nonce, &cs->aes);
    else
        rc = crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, in, inlen, ad, adlen, nonce, cs->k);
    if (rc != 0) {
        sodium_memzero(out, inlen - NG_CIPHER_TAG_BYTES);
        return NG_ERR_AUTH;
    }
    cs->n++;
    return NG_OK;
}

void
ng_cipher_wipe(ng_cipher_state *cs)
{
    sodium_memzero(cs, sizeof *cs);
}

#include "ng_hash.h"

#include <string.h>

size_t
ng_hash_len(ng_hash_kind kind)
{
    return kind == NG_HASH_SHA256 ? crypto_hash_sha256_BYTES : 64;
}

size_t
ng_hash_block_len(ng_hash_kind kind)
{
    return kind == NG_HASH_SHA256 ? 64 : 128;
}

void
ng_hash_init(ng_hash_state *st, ng_hash_kind kind)
{
    st->kind = kind;
    switch (kind) {
    case NG_HASH_BLAKE2B: crypto_generichash_blake2b_init(&st->u.blake2b, NULL, 0, 64); break;
    case NG_HASH_SHA256: crypto_hash_sha256_init(&st->u.sha256); break;
    case NG_HASH_SHA512: crypto_hash_sha512_init(&st->u.sha512); break;
    }
}

void
ng_hash_update(ng_hash_state *st, const uint8_t *in, size_t len)
{
    if (len == 0)
        return;
    switch (st->kind) {
    case NG_HASH_BLAKE2B: crypto_generichash_blake2b_update(&st->u.blake2b, in, len); break;
    case NG_HASH_SHA256: crypto_hash_sha256_update(&st->u.sha256, in, len); break;
    case NG_HASH_SHA512: crypto_hash_sha512_update(&st->u.sha512, in, len); break;
    }
}

void
ng_hash_final(ng_hash_state *st, uint8_t *out)
{
    switch (st->kind) {
    case NG_HASH_BLAKE2B: crypto_generichash_blake2b_final(&st->u.blake2b, out, 64); break;
    case NG_HASH_SHA256: crypto_hash_sha256_final(&st->u.sha256, out); break;
    case NG_HASH_SHA512: crypto_hash_sha512_final(&st->u.sha512, out); break;
    }
    sodium_memzero(&st->u, sizeof st->u);
}

void
ng_hash2(ng_hash_kind kind, uint8_t *out, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    ng_hash_state st;

    ng_hash_init(&st, kind);
    ng_hash_update(&st, a, alen);
    ng_hash_update(&st, b, blen);
    ng_hash_final(&st, out);
}

void
ng_hmac(ng_hash_kind kind, uint8_t *out, const uint8_t *key, size_t keylen, const uint8_t *data1, size_t len1,
        const uint8_t *data2, size_t len2)
{
    const size_t block = ng_hash_block_len(kind);
    const size_t hlen = ng_hash_len(kind);
    uint8_t pad[NG_HASH_MAX_BLOCK];
    uint8_t inner[NG_HASH_MAX_BYTES];
    ng_hash_state st;
    size_t i;

    /* RFC 2104: a key longer than the block is first hashed. Noise keys are
     * never longer, but HMAC is only HMAC if this holds for every key. */
    memset(pad, 0, sizeof pad);
    if (keylen > block)
        ng_hash2(kind, pad, key, keylen, NULL, 0);
    else if (keylen > 0)
        memcpy(pad, key, keylen);

    for (i = 0; i < block; i++)
        pad[i] ^= 0x36;
    ng_hash_init(&st, kind);
    ng_hash_update(&st, pad, block);
    ng_hash_update(&st, data1, len1);
    ng_hash_update(&st, data2, len2);
    ng_hash_final(&st, inner);

    for (i = 0; i < block; i++)
        pad[i] ^= 0x36 ^ 0x5c;
    ng_hash_init(&st, kind);
    ng_hash_update(&st, pad, block);
    ng_hash_update(&st, inner, hlen);
    ng_hash_final(&st, out);

    sodium_memzero(pad, sizeof pad);
    sodium_memzero(inner, sizeof inner);
}

void
ng_hkdf(ng_hash_kind kind, const uint8_t *ck, const uint8_t *ikm, size_t ikmlen, uint8_t *out1, uint8_t *out2,
        uint8_t *out3)
{
    const size_t hlen = ng_hash_len(kind);
    uint8_t temp_key[NG_HASH_MAX_BYTES];
    uint8_t o1[NG_HASH_MAX_BYTES];
    uint8_t o2[NG_HASH_MAX_BYTES];
    const uint8_t one = 0x01, two = 0x02, three = 0x03;

    ng_hmac(kind, temp_key, ck, hlen, ikm, ikmlen, NULL, 0);
    ng_hmac(kind, o1, temp_key, hlen, &one, 1, NULL, 0);
    ng_hmac(kind, o2, temp_key, hlen, o1, hlen, &two, 1);
    if (out3 != NULL)
        ng_hmac(kind, out3, temp_key, hlen, o2, hlen, &three, 1);
    memcpy(out1, o1, hlen);
    memcpy(out2, o2, hlen);

    sodium_memzero(temp_key, sizeof temp_key);
    sodium_memzero(o1, sizeof o1);
    sodium_memzero(o2, sizeof o2);
}

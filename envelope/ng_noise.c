/*
 * One-way handshake patterns (Noise revision 34, section 7.4 and 9):
 *
 *   N:  <- s  ...  -> e, es
 *   K:  -> s  <- s  ...  -> e, es, ss
 *   X:  <- s  ...  -> e, es, s, ss
 *   Npsk0: -> psk, e, es     Kpsk0: -> psk, e, es, ss     Xpsk1: -> e, es, s, ss, psk
 *
 * The patterns are token tables run by one loop for each side. Everything
 * secret lives in struct handshake, wiped as a whole on the way out.
 */
#include "ng_noise.h"

#include <string.h>

#include <sodium.h>

enum token { T_END = 0, T_E, T_ES, T_S, T_SS, T_PSK };

static const uint8_t *
tokens_of(ng_pattern p)
{
    static const uint8_t n[] = {T_E, T_ES, T_END};
    static const uint8_t k[] = {T_E, T_ES, T_SS, T_END};
    static const uint8_t x[] = {T_E, T_ES, T_S, T_SS, T_END};
    static const uint8_t npsk0[] = {T_PSK, T_E, T_ES, T_END};
    static const uint8_t kpsk0[] = {T_PSK, T_E, T_ES, T_SS, T_END};
    static const uint8_t xpsk1[] = {T_E, T_ES, T_S, T_SS, T_PSK, T_END};

    switch (p) {
    case NG_PATTERN_N: return n;
    case NG_PATTERN_K: return k;
    case NG_PATTERN_X: return x;
    case NG_PATTERN_NPSK0: return npsk0;
    case NG_PATTERN_KPSK0: return kpsk0;
    case NG_PATTERN_XPSK1: return xpsk1;
    }
    return NULL;
}

ng_hash_kind
ng_suite_hash(ng_suite s)
{
    switch (s) {
    case NG_SUITE_CHACHAPOLY_SHA256:
    case NG_SUITE_AESGCM_SHA256: return NG_HASH_SHA256;
    case NG_SUITE_CHACHAPOLY_SHA512:
    case NG_SUITE_AESGCM_SHA512: return NG_HASH_SHA512;
    default: return NG_HASH_BLAKE2B;
    }
}

ng_cipher_kind
ng_suite_cipher(ng_suite s)
{
    return s >= NG_SUITE_AESGCM_BLAKE2B ? NG_CIPHER_AESGCM : NG_CIPHER_CHACHAPOLY;
}

size_t
ng_noise_handshake_overhead(ng_pattern p)
{
    size_t o = NG_NOISE_E_BYTES + NG_CIPHER_TAG_BYTES;

    if (ng_pattern_base(p) == NG_PATTERN_X)
        o += NG_NOISE_S_BYTES;
    return o;
}

/* SymmetricState plus the handshake's own keys. */
struct handshake {
    ng_cipher_state cs;
    uint8_t ck[NG_HASH_MAX_BYTES];
    uint8_t h[NG_HASH_MAX_BYTES];
    ng_keypair e;             /* initiator: own ephemeral */
    uint8_t re[NG_KEY_BYTES]; /* responder: initiator's ephemeral */
    uint8_t rs[NG_KEY_BYTES]; /* the other side's static public key */
    uint8_t dh[NG_DH_BYTES];
    uint8_t ss[NG_DH_BYTES]; /* responder: computed ss, cached once authenticated */
    int ss_to_cache;
    uint8_t t1[NG_HASH_MAX_BYTES], t2[NG_HASH_MAX_BYTES], t3[NG_HASH_MAX_BYTES];
    ng_hash_kind hash;
    size_t hlen;
    int psk;
};

static void
mix_hash(struct handshake *hs, const uint8_t *data, size_t len)
{
    ng_hash2(hs->hash, hs->h, hs->h, hs->hlen, data, len);
}

/* MixKey: HKDF(ck, ikm, 2); a 64-byte temp_k is truncated to 32 (section 5.2). */
static void
mix_key(struct handshake *hs, const uint8_t *ikm, size_t len)
{
    ng_hkdf(hs->hash, hs->ck, ikm, len, hs->ck, hs->t2, NULL);
    ng_cipher_init_key(&hs->cs, hs->t2);
}

static void
mix_key_and_hash(struct handshake *hs, const uint8_t *ikm, size_t len)
{
    ng_hkdf(hs->hash, hs->ck, ikm, len, hs->ck, hs->t2, hs->t3);
    mix_hash(hs, hs->t2, hs->hlen);
    ng_cipher_init_key(&hs->cs, hs->t3);
}

static ng_err
encrypt_and_hash(struct handshake *hs, uint8_t *out, const uint8_t *in, size_t len)
{
    ng_err err = ng_cipher_encrypt(&hs->cs, out, hs->h, hs->hlen, in, len);

    if (err)
        return err;
    mix_hash(hs, out, len + (hs->cs.has_key ? NG_CIPHER_TAG_BYTES : 0));
    return NG_OK;
}

static ng_err
decrypt_and_hash(struct handshake *hs, uint8_t *out, const uint8_t *in, size_t len)
{
    /* h must absorb the ciphertext, which `out` may not keep: hash it into a
     * copy of h first and commit only once the tag has verified. */
    uint8_t next_h[NG_HASH_MAX_BYTES];
    ng_err err;

    ng_hash2(hs->hash, next_h, hs->h, hs->hlen, in, len);
    err = ng_cipher_decrypt(&hs->cs, out, hs->h, hs->hlen, in, len);
    if (err == NG_OK)
        memcpy(hs->h, next_h, hs->hlen);
    sodium_memzero(next_h, sizeof next_h);
    return err;
}

/* Split(): only c1 is used, in one direction. */
static void
split(struct handshake *hs, ng_cipher_state *c1, ng_cipher_kind kind)
{
    ng_hkdf(hs->hash, hs->ck, NULL, 0, hs->t1, hs->t2, NULL);
    ng_cipher_clear(c1, kind);
    ng_cipher_init_key(c1, hs->t1);
}

static ng_err
start(struct handshake *hs, const ng_noise_params *p)
{
    char name[NG_PROTOCOL_NAME_MAX];
    size_t len;

    if (!ng_pattern_valid(p->pattern) || tokens_of(p->pattern) == NULL)
        return NG_ERR_BAD_PATTERN;
    if (!ng_suite_valid(p->suite))
        return NG_ERR_BAD_SUITE;
    if (!ng_suite_available(p->suite))
        return NG_ERR_UNSUPPORTED;
    hs->psk = ng_pattern_has_psk(p->pattern);
    if (hs->psk != (p->psk != NULL))
        return NG_ERR_PSK_REQUIRED;

    hs->hash = ng_suite_hash(p->suite);
    hs->hlen = ng_hash_len(hs->hash);
    ng_cipher_clear(&hs->cs, ng_suite_cipher(p->suite));

    /* InitializeSymmetric: a name up to HASHLEN is zero-padded, else hashed. */
    len = ng_protocol_name(name, sizeof name, p->pattern, p->suite);
    memset(hs->h, 0, sizeof hs->h);
    if (len <= hs->hlen)
        memcpy(hs->h, name, len);
    else
        ng_hash2(hs->hash, hs->h, (const uint8_t *)name, len, NULL, 0);
    memcpy(hs->ck, hs->h, hs->hlen);
    mix_hash(hs, p->prologue, p->prologue_len);
    return NG_OK;
}

static ng_err
finish(struct handshake *hs, ng_err err, ng_cipher_state *c1, uint8_t *hash_out)
{
    if (err == NG_OK && hash_out != NULL)
        memcpy(hash_out, hs->h, hs->hlen);
    if (err != NG_OK)
        ng_cipher_wipe(c1);
    sodium_memzero(hs, sizeof *hs);
    return err;
}

ng_err
ng_noise_write(const ng_noise_params *p, uint8_t *msg, const uint8_t *payload, size_t plen, ng_cipher_state *c1,
               uint8_t *hash_out)
{
    struct handshake hs;
    const uint8_t *t;
    uint8_t *w = msg;
    ng_err err;

    memset(&hs, 0, sizeof hs);
    /* The initiator always needs the responder's key, and its own for K and X. */
    if (p->remote_pub == NULL || (p->local == NULL && ng_pattern_base(p->pattern) != NG_PATTERN_N))
        return finish(&hs, NG_ERR_INVALID_ARG, c1, NULL);
    if (plen > NG_NOISE_MAX_MESSAGE || plen + ng_noise_handshake_overhead(p->pattern) > NG_NOISE_MAX_MESSAGE)
        return finish(&hs, NG_ERR_TOO_LARGE, c1, NULL);
    err = start(&hs, p);
    if (err)
        return finish(&hs, err, c1, NULL);

    /* Pre-messages: the initiator's static first (K only), then the responder's. */
    if (ng_pattern_base(p->pattern) == NG_PATTERN_K)
        mix_hash(&hs, p->local->pub, NG_KEY_BYTES);
    mix_hash(&hs, p->remote_pub, NG_KEY_BYTES);

    for (t = tokens_of(p->pattern); *t != T_END && err == NG_OK; t++) {
        switch (*t) {
        case T_E:
            if (p->fixed_ephemeral != NULL)
                err = ng_keypair_from_private(&hs.e, p->fixed_ephemeral);
            else
                ng_keypair_generate(&hs.e);
            if (err)
                break;
            memcpy(w, hs.e.pub, NG_KEY_BYTES);
            w += NG_KEY_BYTES;
            mix_hash(&hs, hs.e.pub, NG_KEY_BYTES);
            if (hs.psk)
                mix_key(&hs, hs.e.pub, NG_KEY_BYTES);
            break;
        case T_ES:
            err = ng_dh(hs.dh, hs.e.priv, p->remote_pub);
            if (err == NG_OK)
                mix_key(&hs, hs.dh, NG_DH_BYTES);
            break;
        case T_S:
            err = encrypt_and_hash(&hs, w, p->local->pub, NG_KEY_BYTES);
            w += NG_NOISE_S_BYTES;
            break;
        case T_SS:
            err = ng_ss_cache_dh(p->cache, hs.dh, p->local, p->remote_pub);
            if (err == NG_OK)
                mix_key(&hs, hs.dh, NG_DH_BYTES);
            break;
        case T_PSK: mix_key_and_hash(&hs, p->psk, NG_PSK_BYTES); break;
        }
    }
    if (err == NG_OK)
        err = encrypt_and_hash(&hs, w, payload, plen);
    if (err == NG_OK)
        split(&hs, c1, hs.cs.kind);
    return finish(&hs, err, c1, hash_out);
}

ng_err
ng_noise_read(const ng_noise_params *p, const uint8_t *msg, size_t mlen, uint8_t *payload_out, ng_cipher_state *c1,
              uint8_t *rs_out, uint8_t *hash_out)
{
    struct handshake hs;
    const uint8_t *t;
    const uint8_t *r = msg;
    ng_pattern base = ng_pattern_base(p->pattern);
    ng_err err;

    memset(&hs, 0, sizeof hs);
    /* The responder always needs its own key, and the initiator's for K only. */
    if (p->local == NULL || (p->remote_pub == NULL && base == NG_PATTERN_K))
        return finish(&hs, NG_ERR_INVALID_ARG, c1, NULL);
    if (mlen > NG_NOISE_MAX_MESSAGE || mlen < ng_noise_handshake_overhead(p->pattern))
        return finish(&hs, NG_ERR_MALFORMED, c1, NULL);
    err = start(&hs, p);
    if (err)
        return finish(&hs, err, c1, NULL);

    if (base == NG_PATTERN_K) {
        mix_hash(&hs, p->remote_pub, NG_KEY_BYTES);
        memcpy(hs.rs, p->remote_pub, NG_KEY_BYTES);
    }
    mix_hash(&hs, p->local->pub, NG_KEY_BYTES);

    for (t = tokens_of(p->pattern); *t != T_END && err == NG_OK; t++) {
        switch (*t) {
        case T_E:
            memcpy(hs.re, r, NG_KEY_BYTES);
            r += NG_KEY_BYTES;
            mix_hash(&hs, hs.re, NG_KEY_BYTES);
            if (hs.psk)
                mix_key(&hs, hs.re, NG_KEY_BYTES);
            break;
        case T_ES:
            err = ng_dh(hs.dh, p->local->priv, hs.re);
            if (err == NG_OK)
                mix_key(&hs, hs.dh, NG_DH_BYTES);
            break;
        case T_S:
            err = decrypt_and_hash(&hs, hs.rs, r, NG_NOISE_S_BYTES);
            r += NG_NOISE_S_BYTES;
            if (err == NG_OK && p->expected_rs != NULL && sodium_memcmp(hs.rs, p->expected_rs, NG_KEY_BYTES) != 0)
                err = NG_ERR_WRONG_SENDER;
            break;
        case T_SS:
            if (!ng_ss_cache_lookup(p->cache, hs.ss, p->local->pub, hs.rs)) {
                err = ng_dh(hs.ss, p->local->priv, hs.rs);
                hs.ss_to_cache = p->cache != NULL;
            }
            if (err == NG_OK)
                mix_key(&hs, hs.ss, NG_DH_BYTES);
            break;
        case T_PSK: mix_key_and_hash(&hs, p->psk, NG_PSK_BYTES); break;
        }
    }
    if (err == NG_OK)
        err = decrypt_and_hash(&hs, payload_out, r, mlen - (size_t)(r - msg));
    if (err == NG_OK) {
        split(&hs, c1, hs.cs.kind);
        if (hs.ss_to_cache)
            ng_ss_cache_insert(p->cache, p->local->pub, hs.rs, hs.ss);
        if (rs_out != NULL && base == NG_PATTERN_X)
            memcpy(rs_out, hs.rs, NG_KEY_BYTES);
    }
    return finish(&hs, err, c1, hash_out);
}

/*
 * Small-order Curve25519 points. A peer who sends one forces an all-zero,
 * publicly known DH result; the contract says such keys are refused
 * (NG_ERR_BAD_KEY) wherever a peer's key enters a DH: ng_dh itself, the
 * recipient of a seal, the sender a K parcel is opened against, the
 * ephemeral key inside a parcel and the static key an X parcel carries.
 *
 * The points: the seven canonical encodings of the points of order 1, 2, 4
 * and 8 (0, 1, the two order-8 points, p - 1, p, p + 1), and the same seven
 * with bit 255 set, which X25519 ignores (RFC 7748, section 5) and so maps
 * onto the same points. djb's list of twelve "values to reject"
 * (cr.yp.to/ecdh.html) has five more, p + 325606..., p + 393823...,
 * 2p - 1, 2p and 2p + 1; those are only small order for an implementation
 * that reads all 256 bits. Under RFC 7748 masking they are ordinary
 * points, and test_unmasked_values_are_ordinary checks that ng_dh does
 * not refuse them.
 *
 * test_known_dh_forgery is the attack itself: a forger who puts a
 * small-order point where a DH will use it knows that DH result (zero)
 * and can build a parcel that opens unless the recipient refuses the key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "ng_cipher.h"
#include "ng_hash.h"
#include "ng_noise.h"
#include "ng_parcel.h"
#include "parcel_checks.h"

#define T0  UINT64_C(1700000000000)
#define TTL UINT64_C(3600000)

enum {
    N_SMALL = 14,
    N_UNMASKED = 5,
    OFF_EPHEMERAL = NG_PARCEL_HEADER_BYTES + 2,
};

static const char *const g_small_hex[N_SMALL] = {
    "0000000000000000000000000000000000000000000000000000000000000000", /* 0, order 4 */
    "0100000000000000000000000000000000000000000000000000000000000000", /* 1, order 1 */
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", /* order 8 */
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", /* order 8 */
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* p - 1, order 2 */
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* p = 0, order 4 */
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* p + 1 = 1, order 1 */
    /* The same with bit 255 set. */
    "0000000000000000000000000000000000000000000000000000000000000080",
    "0100000000000000000000000000000000000000000000000000000000000080",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
};

/* djb's extra five: 256-bit values >= 2^255 whose low 255 bits are not a small-order point. */
static const char *const g_unmasked_hex[N_UNMASKED] = {
    "cdeb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880", /* p + 3256... */
    "4c9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7", /* p + 3938... */
    "d9ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", /* 2p - 1 */
    "daffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", /* 2p */
    "dbffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", /* 2p + 1 */
};

static const ng_pattern g_patterns[] = {
    NG_PATTERN_N, NG_PATTERN_K, NG_PATTERN_X, NG_PATTERN_NPSK0, NG_PATTERN_KPSK0, NG_PATTERN_XPSK1,
};
#define N_PATTERNS (sizeof g_patterns / sizeof g_patterns[0])

static const char g_meta[] = "{\"content_type\":\"text/plain\"}";
static const uint8_t g_body[] = "attack at dawn";

static uint8_t g_small[N_SMALL][NG_KEY_BYTES];
static uint8_t g_unmasked[N_UNMASKED][NG_KEY_BYTES];
static ng_keypair g_recipient, g_sender;
static uint8_t g_psk[NG_PSK_BYTES];

static void
seal_params(ng_seal_params *sp, ng_pattern pattern, const uint8_t *recipient_pub, const ng_keypair *sender)
{
    memset(sp, 0, sizeof *sp);
    sp->pattern = pattern;
    sp->suite = NG_SUITE_DEFAULT;
    sp->recipient_pub = recipient_pub;
    sp->sender = ng_pattern_base(pattern) == NG_PATTERN_N ? NULL : sender;
    sp->psk = ng_pattern_has_psk(pattern) ? g_psk : NULL;
    sp->meta = (const uint8_t *)g_meta;
    sp->meta_len = sizeof g_meta - 1;
    sp->body = g_body;
    sp->body_len = sizeof g_body - 1;
    sp->created_ms = T0;
    sp->ttl_ms = TTL;
}

static void
open_params(ng_open_params *op, ng_pattern pattern, const uint8_t *sender_pub)
{
    ng_open_params_init(op);
    op->recipient = &g_recipient;
    op->sender_pub = ng_pattern_base(pattern) == NG_PATTERN_K ? sender_pub : NULL;
    op->psk = ng_pattern_has_psk(pattern) ? g_psk : NULL;
    op->now_ms = T0 + 1000;
}

static void
test_dh_refuses_small_order(void **state)
{
    uint8_t out[NG_DH_BYTES], expect[NG_DH_BYTES];
    ng_keypair kp, peer;
    size_t i, k;

    (void)state;
    for (k = 0; k < 4; k++) {
        ng_keypair_generate(&kp);
        for (i = 0; i < N_SMALL; i++) {
            memset(out, 0xaa, sizeof out);
            if (ng_dh(out, kp.priv, g_small[i]) != NG_ERR_BAD_KEY) {
                print_error("ng_dh accepted small-order point %zu (%s)\n", i, g_small_hex[i]);
                fail();
            }
            assert_true(sodium_is_zero(out, sizeof out));
        }
    }
    /* The control: an ordinary key agrees with libsodium, from both sides. */
    ng_keypair_generate(&peer);
    assert_int_equal(ng_dh(out, kp.priv, peer.pub), NG_OK);
    assert_int_equal(crypto_scalarmult_curve25519(expect, kp.priv, peer.pub), 0);
    assert_memory_equal(out, expect, sizeof out);
    assert_int_equal(ng_dh(expect, peer.priv, kp.pub), NG_OK);
    assert_memory_equal(out, expect, sizeof out);
    ng_keypair_wipe(&kp);
    ng_keypair_wipe(&peer);
}

/* Not small order under RFC 7748 masking: refusing them would break interoperability. */
static void
test_unmasked_values_are_ordinary(void **state)
{
    uint8_t out[NG_DH_BYTES], expect[NG_DH_BYTES];
    ng_keypair kp;
    size_t i;

    (void)state;
    ng_keypair_generate(&kp);
    for (i = 0; i < N_UNMASKED; i++) {
        assert_int_equal(ng_dh(out, kp.priv, g_unmasked[i]), NG_OK);
        assert_false(sodium_is_zero(out, sizeof out));
        assert_int_equal(crypto_scalarmult_curve25519(expect, kp.priv, g_unmasked[i]), 0);
        assert_memory_equal(out, expect, sizeof out);
    }
    ng_keypair_wipe(&kp);
}

/* Clamping makes every private key a multiple of 8 below the group order: no key pair has a small-order public
 * key, even from degenerate private bytes. */
static void
test_keypair_never_small_order(void **state)
{
    uint8_t priv[NG_KEY_BYTES];
    ng_keypair kp;
    size_t i, j;

    (void)state;
    for (i = 0; i < N_SMALL + 2; i++) {
        if (i < N_SMALL)
            memcpy(priv, g_small[i], sizeof priv);
        else
            memset(priv, i == N_SMALL ? 0x00 : 0xff, sizeof priv);
        assert_int_equal(ng_keypair_from_private(&kp, priv), NG_OK);
        for (j = 0; j < N_SMALL; j++)
            assert_memory_not_equal(kp.pub, g_small[j], NG_KEY_BYTES);
        assert_false(sodium_is_zero(kp.pub, NG_KEY_BYTES));
    }
    ng_keypair_wipe(&kp);
}

static void
test_seal_to_small_order_recipient(void **state)
{
    uint8_t out[1024];
    ng_seal_params sp;
    size_t i, p, len;
    ng_err err;

    (void)state;
    for (p = 0; p < N_PATTERNS; p++) {
        for (i = 0; i < N_SMALL; i++) {
            seal_params(&sp, g_patterns[p], g_small[i], &g_sender);
            assert_true(ng_parcel_sealed_size(&sp) <= sizeof out);
            memset(out, 0, sizeof out);
            len = 99;
            err = ng_parcel_seal(out, sizeof out, &len, &sp);
            if (err != NG_ERR_BAD_KEY) {
                print_error("%s to small-order point %zu: %s\n", ng_pattern_name(g_patterns[p]), i, ng_strerror(err));
                fail();
            }
            assert_int_equal(len, 0);
            /* No partial parcel left in the buffer. */
            assert_true(sodium_is_zero(out, sizeof out));
        }
    }
}

static void
test_k_opened_against_small_order_sender(void **state)
{
    static const ng_pattern ks[] = {NG_PATTERN_K, NG_PATTERN_KPSK0};
    ng_seal_params sp;
    ng_open_params op;
    ng_keypair claimed;
    uint8_t *parcel;
    size_t i, k, len;
    ng_err err;

    (void)state;
    for (k = 0; k < 2; k++) {
        /* A genuine parcel, opened by a recipient that expects a small-order sender. */
        seal_params(&sp, ks[k], g_recipient.pub, &g_sender);
        parcel = seal_ok(&sp, &len);
        for (i = 0; i < N_SMALL; i++) {
            open_params(&op, ks[k], g_small[i]);
            expect_refused(parcel, len, &op, ANY_ERROR, "K, small-order expected sender", i);
        }
        free(parcel);

        /* A parcel that names a small-order sender in its header (sealed with an inconsistent key pair, as only
         * an attacker would): the key id matches, so the ss DH must refuse it. */
        for (i = 0; i < N_SMALL; i++) {
            memcpy(claimed.pub, g_small[i], NG_KEY_BYTES);
            randombytes_buf(claimed.priv, NG_KEY_BYTES);
            seal_params(&sp, ks[k], g_recipient.pub, &claimed);
            len = ng_parcel_sealed_size(&sp);
            parcel = malloc(len);
            assert_non_null(parcel);
            err = ng_parcel_seal(parcel, len, &len, &sp);
            if (err == NG_OK) {
                open_params(&op, ks[k], g_small[i]);
                err = expect_refused(parcel, len, &op, ANY_ERROR, "K, header names a small-order sender", i);
                assert_true(err == NG_ERR_BAD_KEY || err == NG_ERR_AUTH);
            } else {
                assert_int_equal(err, NG_ERR_BAD_KEY);
            }
            free(parcel);
        }
    }
    ng_keypair_wipe(&claimed);
}

/* The first 32 bytes of the handshake message are the sender's ephemeral key: es must refuse a small-order one. */
static void
test_small_order_ephemeral(void **state)
{
    ng_seal_params sp;
    ng_open_params op;
    uint8_t *parcel, *bad;
    size_t i, p, len;
    ng_err err;
    char what[64];

    (void)state;
    for (p = 0; p < N_PATTERNS; p++) {
        seal_params(&sp, g_patterns[p], g_recipient.pub, &g_sender);
        parcel = seal_ok(&sp, &len);
        bad = malloc(len);
        assert_non_null(bad);
        open_params(&op, g_patterns[p], g_sender.pub);
        snprintf(what, sizeof what, "%s, small-order ephemeral", ng_pattern_name(g_patterns[p]));
        for (i = 0; i < N_SMALL; i++) {
            memcpy(bad, parcel, len);
            memcpy(bad + OFF_EPHEMERAL, g_small[i], NG_KEY_BYTES);
            err = expect_refused(bad, len, &op, ANY_ERROR, what, i);
            if (err != NG_ERR_BAD_KEY && err != NG_ERR_AUTH) {
                print_error("%s, point %zu: %s\n", what, i, ng_strerror(err));
                fail();
            }
        }
        free(bad);
        free(parcel);
    }
}

/*
 * An X parcel that carries a small-order static key. No real key pair has
 * one (see test_keypair_never_small_order), so the sender here is an
 * inconsistent pair; seal may refuse it or not, but the recipient's ss DH
 * must never accept it, whether or not it expects a particular sender.
 */
static void
test_x_small_order_sender_static(void **state)
{
    static const ng_pattern xs[] = {NG_PATTERN_X, NG_PATTERN_XPSK1};
    ng_seal_params sp;
    ng_open_params op;
    ng_keypair claimed;
    uint8_t *parcel;
    size_t i, k, len;
    ng_err err;

    (void)state;
    for (k = 0; k < 2; k++) {
        for (i = 0; i < N_SMALL; i++) {
            memcpy(claimed.pub, g_small[i], NG_KEY_BYTES);
            randombytes_buf(claimed.priv, NG_KEY_BYTES);
            seal_params(&sp, xs[k], g_recipient.pub, &claimed);
            len = ng_parcel_sealed_size(&sp);
            parcel = calloc(1, len);
            assert_non_null(parcel);
            err = ng_parcel_seal(parcel, len, &len, &sp);
            if (err != NG_OK) {
                assert_int_equal(err, NG_ERR_BAD_KEY);
                free(parcel);
                continue;
            }
            open_params(&op, xs[k], NULL);
            err = expect_refused(parcel, len, &op, ANY_ERROR, "X from a small-order static key", i);
            assert_true(err == NG_ERR_BAD_KEY || err == NG_ERR_AUTH);
            op.sender_pub = g_small[i];
            expect_refused(parcel, len, &op, ANY_ERROR, "X expecting a small-order static key", i);
            free(parcel);
        }
    }
    ng_keypair_wipe(&claimed);
}

/* Is pub one of the small-order points (so that any DH with it is zero)? */
static int
is_small(const uint8_t pub[NG_KEY_BYTES])
{
    size_t i;

    for (i = 0; i < N_SMALL; i++)
        if (memcmp(pub, g_small[i], NG_KEY_BYTES) == 0)
            return 1;
    return 0;
}

/*
 * A Noise initiator for the default suite (25519_ChaChaPoly_BLAKE2b), written
 * out here step by step (Noise revision 34, sections 5 and 9) so that it
 * can use DH results the real one would refuse to compute: the forger's DH
 * with a small-order key is the known value zero, which the recipient
 * computes too unless it refuses the key.
 */
struct forger {
    ng_cipher_state cs;
    uint8_t ck[64], h[64], t1[64], t2[64], t3[64];
};

static void
f_mix_hash(struct forger *f, const uint8_t *data, size_t len)
{
    ng_hash2(NG_HASH_BLAKE2B, f->h, f->h, 64, data, len);
}

static void
f_mix_key(struct forger *f, const uint8_t *ikm, size_t len)
{
    ng_hkdf(NG_HASH_BLAKE2B, f->ck, ikm, len, f->ck, f->t2, NULL);
    ng_cipher_init_key(&f->cs, f->t2);
}

static void
f_mix_key_and_hash(struct forger *f, const uint8_t *ikm, size_t len)
{
    ng_hkdf(NG_HASH_BLAKE2B, f->ck, ikm, len, f->ck, f->t2, f->t3);
    f_mix_hash(f, f->t2, 64);
    ng_cipher_init_key(&f->cs, f->t3);
}

static size_t
f_encrypt_and_hash(struct forger *f, uint8_t *out, const uint8_t *in, size_t len)
{
    size_t olen = len + (f->cs.has_key ? NG_CIPHER_TAG_BYTES : 0);

    assert_int_equal(ng_cipher_encrypt(&f->cs, out, f->h, 64, in, len), NG_OK);
    f_mix_hash(f, out, olen);
    return olen;
}

/* DH as the forger knows it: zero when the recipient's side uses a small-order point. */
static void
f_dh(uint8_t out[NG_DH_BYTES], const ng_keypair *local, const uint8_t *remote)
{
    if (is_small(local->pub))
        memset(out, 0, NG_DH_BYTES);
    else
        assert_int_equal(crypto_scalarmult_curve25519(out, local->priv, remote), 0);
}

static void
put_u64(uint8_t *p, uint64_t v)
{
    int i;

    for (i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* A one-message parcel to g_recipient with ephemeral e and (K, X) static s, either of which may be small order. */
static uint8_t *
forge_parcel(ng_pattern pattern, const ng_keypair *e, const ng_keypair *s, size_t *len)
{
    const ng_pattern base = ng_pattern_base(pattern);
    const int psk = ng_pattern_has_psk(pattern);
    uint8_t plain[3 + sizeof g_meta - 1 + sizeof g_body - 1];
    uint8_t dh[NG_DH_BYTES];
    char name[NG_PROTOCOL_NAME_MAX];
    struct forger f;
    size_t total, name_len;
    uint8_t *b, *w;

    plain[0] = NG_PARCEL_VERSION;
    plain[1] = 0;
    plain[2] = (uint8_t)(sizeof g_meta - 1);
    memcpy(plain + 3, g_meta, sizeof g_meta - 1);
    memcpy(plain + 3 + sizeof g_meta - 1, g_body, sizeof g_body - 1);
    total = NG_PARCEL_HEADER_BYTES + 2 + ng_noise_handshake_overhead(pattern) + sizeof plain;
    b = calloc(1, total);
    assert_non_null(b);

    memcpy(b, "NGP1", 4);
    b[4] = (uint8_t)pattern;
    b[5] = NG_SUITE_CHACHAPOLY_BLAKE2B;
    randombytes_buf(b + 8, NG_PARCEL_MESSAGE_ID_BYTES);
    put_u64(b + 24, T0);
    put_u64(b + 32, T0 + TTL);
    ng_key_id(b + 40, g_recipient.pub);
    if (base == NG_PATTERN_K)
        ng_key_id(b + 72, s->pub);
    b[105] = 1;

    memset(&f, 0, sizeof f);
    ng_cipher_clear(&f.cs, NG_CIPHER_CHACHAPOLY);
    name_len = ng_protocol_name(name, sizeof name, pattern, NG_SUITE_CHACHAPOLY_BLAKE2B);
    assert_true(name_len <= 64);
    memcpy(f.h, name, name_len);
    memcpy(f.ck, f.h, 64);
    f_mix_hash(&f, b, NG_PARCEL_HEADER_BYTES);
    if (base == NG_PATTERN_K)
        f_mix_hash(&f, s->pub, NG_KEY_BYTES);
    f_mix_hash(&f, g_recipient.pub, NG_KEY_BYTES);

    w = b + NG_PARCEL_HEADER_BYTES + 2;
    if (psk && base != NG_PATTERN_X) /* psk0 */
        f_mix_key_and_hash(&f, g_psk, NG_PSK_BYTES);
    memcpy(w, e->pub, NG_KEY_BYTES); /* e */
    w += NG_KEY_BYTES;
    f_mix_hash(&f, e->pub, NG_KEY_BYTES);
    if (psk)
        f_mix_key(&f, e->pub, NG_KEY_BYTES);
    f_dh(dh, e, g_recipient.pub); /* es */
    f_mix_key(&f, dh, sizeof dh);
    if (base == NG_PATTERN_X) /* s */
        w += f_encrypt_and_hash(&f, w, s->pub, NG_KEY_BYTES);
    if (base != NG_PATTERN_N) { /* ss */
        f_dh(dh, s, g_recipient.pub);
        f_mix_key(&f, dh, sizeof dh);
    }
    if (psk && base == NG_PATTERN_X) /* psk1 */
        f_mix_key_and_hash(&f, g_psk, NG_PSK_BYTES);
    w += f_encrypt_and_hash(&f, w, plain, sizeof plain);
    assert_int_equal((size_t)(w - b), total);
    b[NG_PARCEL_HEADER_BYTES] = (uint8_t)((total - NG_PARCEL_HEADER_BYTES - 2) >> 8);
    b[NG_PARCEL_HEADER_BYTES + 1] = (uint8_t)(total - NG_PARCEL_HEADER_BYTES - 2);
    ng_cipher_wipe(&f.cs);
    sodium_memzero(&f, sizeof f);
    *len = total;
    return b;
}

static void
test_known_dh_forgery(void **state)
{
    ng_keypair e, s;
    ng_open_params op;
    ng_opened o;
    uint8_t *parcel, out[512];
    size_t p, i, len;
    ng_err err;
    char what[64];

    (void)state;
    for (p = 0; p < N_PATTERNS; p++) {
        ng_pattern pattern = g_patterns[p];
        int has_s = ng_pattern_base(pattern) != NG_PATTERN_N;

        /* The control: with honest keys the forger's parcel opens, so a refusal below is the key's doing. */
        ng_keypair_generate(&e);
        parcel = forge_parcel(pattern, &e, &g_sender, &len);
        open_params(&op, pattern, g_sender.pub);
        err = ng_parcel_open(out, sizeof out, &o, parcel, len, &op);
        if (err != NG_OK)
            print_error("%s: the forger's honest parcel does not open: %s\n", ng_pattern_name(pattern),
                        ng_strerror(err));
        assert_int_equal(err, NG_OK);
        assert_int_equal(o.body_len, sizeof g_body - 1);
        assert_memory_equal(o.body, g_body, sizeof g_body - 1);
        free(parcel);

        for (i = 0; i < N_SMALL; i++) {
            /* A small-order ephemeral: es is zero. */
            memcpy(e.pub, g_small[i], NG_KEY_BYTES);
            parcel = forge_parcel(pattern, &e, &g_sender, &len);
            snprintf(what, sizeof what, "%s, known es", ng_pattern_name(pattern));
            err = expect_refused(parcel, len, &op, ANY_ERROR, what, i);
            if (err != NG_ERR_BAD_KEY) {
                print_error("%s, point %zu: %s\n", what, i, ng_strerror(err));
                fail();
            }
            free(parcel);
            if (!has_s)
                continue;

            /* A small-order static key (named in the header for K, carried for X): ss is zero. */
            ng_keypair_generate(&e);
            memcpy(s.pub, g_small[i], NG_KEY_BYTES);
            randombytes_buf(s.priv, NG_KEY_BYTES);
            parcel = forge_parcel(pattern, &e, &s, &len);
            open_params(&op, pattern, s.pub);
            snprintf(what, sizeof what, "%s, known ss", ng_pattern_name(pattern));
            err = expect_refused(parcel, len, &op, ANY_ERROR, what, i);
            if (err != NG_ERR_BAD_KEY) {
                print_error("%s, point %zu: %s\n", what, i, ng_strerror(err));
                fail();
            }
            free(parcel);
            open_params(&op, pattern, g_sender.pub);
        }
    }
    ng_keypair_wipe(&e);
    ng_keypair_wipe(&s);
}

static int
setup(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < N_SMALL; i++)
        if (sodium_hex2bin(g_small[i], NG_KEY_BYTES, g_small_hex[i], 64, NULL, NULL, NULL) != 0)
            return -1;
    for (i = 0; i < N_UNMASKED; i++)
        if (sodium_hex2bin(g_unmasked[i], NG_KEY_BYTES, g_unmasked_hex[i], 64, NULL, NULL, NULL) != 0)
            return -1;
    ng_keypair_generate(&g_recipient);
    ng_keypair_generate(&g_sender);
    randombytes_buf(g_psk, sizeof g_psk);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    ng_keypair_wipe(&g_recipient);
    ng_keypair_wipe(&g_sender);
    return 0;
}

/*
 * The tables themselves, checked against libsodium (which refuses an
 * all-zero result): a typo in a hex string would quietly weaken every
 * other test here.
 */
static void
test_point_tables(void **state)
{
    uint8_t b[NG_KEY_BYTES], out[NG_DH_BYTES], priv[NG_KEY_BYTES];
    size_t i;

    (void)state;
    randombytes_buf(priv, sizeof priv);
    for (i = 0; i < N_SMALL; i++) {
        assert_int_equal(crypto_scalarmult_curve25519(out, priv, g_small[i]), -1);
        if (i >= 7) {
            /* The second half is the first with bit 255 set. */
            memcpy(b, g_small[i], sizeof b);
            assert_int_equal(b[31] & 0x80, 0x80);
            b[31] &= 0x7f;
            assert_memory_equal(b, g_small[i - 7], NG_KEY_BYTES);
        }
    }
    for (i = 0; i < N_UNMASKED; i++) {
        assert_int_equal(g_unmasked[i][31] & 0x80, 0x80);
        assert_int_equal(crypto_scalarmult_curve25519(out, priv, g_unmasked[i]), 0);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_point_tables),
        cmocka_unit_test(test_dh_refuses_small_order),
        cmocka_unit_test(test_unmasked_values_are_ordinary),
        cmocka_unit_test(test_keypair_never_small_order),
        cmocka_unit_test(test_seal_to_small_order_recipient),
        cmocka_unit_test(test_k_opened_against_small_order_sender),
        cmocka_unit_test(test_small_order_ephemeral),
        cmocka_unit_test(test_x_small_order_sender_static),
        cmocka_unit_test(test_known_dh_forgery),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests_name("x25519", tests, setup, teardown);
}

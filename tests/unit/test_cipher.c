/*
 * CipherState limits: the nonce stops at 2^64-1, a failed decryption does
 * not advance it and leaves no plaintext, and the handshake refuses
 * messages over 65535 bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "ng_cipher.h"
#include "ng_noise.h"

static void
keyed(ng_cipher_state *cs, ng_cipher_kind kind)
{
    uint8_t k[32];

    memset(k, 7, sizeof k);
    ng_cipher_clear(cs, kind);
    ng_cipher_init_key(cs, k);
}

static void
test_nonce_exhaustion(void **state)
{
    ng_cipher_state enc, dec;
    uint8_t msg[4] = {1, 2, 3, 4}, ct[20], pt[4];
    int kind;

    (void)state;
    for (kind = NG_CIPHER_CHACHAPOLY; kind <= NG_CIPHER_AESGCM; kind++) {
        if (!ng_cipher_available((ng_cipher_kind)kind))
            continue;
        keyed(&enc, (ng_cipher_kind)kind);
        keyed(&dec, (ng_cipher_kind)kind);
        enc.n = dec.n = UINT64_MAX - 1;
        assert_int_equal(ng_cipher_encrypt(&enc, ct, NULL, 0, msg, sizeof msg), NG_OK);
        assert_int_equal(ng_cipher_decrypt(&dec, pt, NULL, 0, ct, sizeof ct), NG_OK);
        assert_memory_equal(pt, msg, sizeof msg);
        /* n is now 2^64-1, which the spec reserves. */
        assert_int_equal(ng_cipher_encrypt(&enc, ct, NULL, 0, msg, sizeof msg), NG_ERR_NONCE_EXHAUSTED);
        assert_int_equal(ng_cipher_decrypt(&dec, pt, NULL, 0, ct, sizeof ct), NG_ERR_NONCE_EXHAUSTED);
        ng_cipher_wipe(&enc);
        ng_cipher_wipe(&dec);
    }
}

static void
test_bad_tag_keeps_nonce(void **state)
{
    ng_cipher_state enc, dec;
    uint8_t msg[16], ct[32], pt[16];
    int kind;

    (void)state;
    for (kind = NG_CIPHER_CHACHAPOLY; kind <= NG_CIPHER_AESGCM; kind++) {
        if (!ng_cipher_available((ng_cipher_kind)kind))
            continue;
        memset(msg, 0x41, sizeof msg);
        keyed(&enc, (ng_cipher_kind)kind);
        keyed(&dec, (ng_cipher_kind)kind);
        assert_int_equal(ng_cipher_encrypt(&enc, ct, NULL, 0, msg, sizeof msg), NG_OK);
        ct[31] ^= 1;
        memset(pt, 0xee, sizeof pt);
        assert_int_equal(ng_cipher_decrypt(&dec, pt, NULL, 0, ct, sizeof ct), NG_ERR_AUTH);
        assert_true(sodium_is_zero(pt, sizeof pt));
        assert_int_equal(dec.n, 0);
        ct[31] ^= 1;
        assert_int_equal(ng_cipher_decrypt(&dec, pt, NULL, 0, ct, sizeof ct), NG_OK);
        assert_int_equal(dec.n, 1);
        /* Shorter than a tag is an authentication failure, not an overread. */
        assert_int_equal(ng_cipher_decrypt(&dec, pt, NULL, 0, ct, 15), NG_ERR_AUTH);
    }
}

static void
test_handshake_size_limit(void **state)
{
    static uint8_t payload[NG_NOISE_MAX_MESSAGE], msg[NG_NOISE_MAX_MESSAGE + 100];
    ng_keypair r;
    ng_noise_params p;
    ng_cipher_state c1;
    size_t max = NG_NOISE_MAX_MESSAGE - ng_noise_handshake_overhead(NG_PATTERN_N);

    (void)state;
    ng_keypair_generate(&r);
    memset(&p, 0, sizeof p);
    p.pattern = NG_PATTERN_N;
    p.suite = NG_SUITE_CHACHAPOLY_BLAKE2B;
    p.remote_pub = r.pub;
    assert_int_equal(ng_noise_write(&p, msg, payload, max, &c1, NULL), NG_OK);
    ng_cipher_wipe(&c1);
    assert_int_equal(ng_noise_write(&p, msg, payload, max + 1, &c1, NULL), NG_ERR_TOO_LARGE);

    p.local = &r;
    p.remote_pub = NULL;
    assert_int_equal(ng_noise_read(&p, msg, NG_NOISE_MAX_MESSAGE + 1, payload, &c1, NULL, NULL), NG_ERR_MALFORMED);
    assert_int_equal(ng_noise_read(&p, msg, ng_noise_handshake_overhead(NG_PATTERN_N) - 1, payload, &c1, NULL, NULL),
                     NG_ERR_MALFORMED);
    ng_keypair_wipe(&r);
}

/* Which keys each side must supply: the initiator always needs the
 * responder's, the responder needs the initiator's for K only. */
static void
test_required_keys(void **state)
{
    static const ng_pattern patterns[] = {NG_PATTERN_N, NG_PATTERN_K, NG_PATTERN_X};
    uint8_t msg[256], payload[8] = {0}, out[8];
    ng_keypair r, i;
    ng_noise_params w, rd;
    ng_cipher_state c1;
    size_t k, mlen;

    (void)state;
    ng_keypair_generate(&r);
    ng_keypair_generate(&i);
    for (k = 0; k < sizeof patterns / sizeof patterns[0]; k++) {
        memset(&w, 0, sizeof w);
        w.pattern = patterns[k];
        w.suite = NG_SUITE_CHACHAPOLY_BLAKE2B;
        w.local = &i;
        assert_int_equal(ng_noise_write(&w, msg, payload, sizeof payload, &c1, NULL), NG_ERR_INVALID_ARG);
        w.remote_pub = r.pub;
        assert_int_equal(ng_noise_write(&w, msg, payload, sizeof payload, &c1, NULL), NG_OK);
        ng_cipher_wipe(&c1);
        mlen = ng_noise_handshake_overhead(patterns[k]) + sizeof payload;

        rd = w;
        rd.local = &r;
        rd.remote_pub = NULL;
        assert_int_equal(ng_noise_read(&rd, msg, mlen, out, &c1, NULL, NULL),
                         patterns[k] == NG_PATTERN_K ? NG_ERR_INVALID_ARG : NG_OK);
        ng_cipher_wipe(&c1);
        rd.local = NULL;
        rd.remote_pub = i.pub;
        assert_int_equal(ng_noise_read(&rd, msg, mlen, out, &c1, NULL, NULL), NG_ERR_INVALID_ARG);
    }
    ng_keypair_wipe(&r);
    ng_keypair_wipe(&i);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nonce_exhaustion),
        cmocka_unit_test(test_bad_tag_keeps_nonce),
        cmocka_unit_test(test_handshake_size_limit),
        cmocka_unit_test(test_required_keys),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests_name("cipher", tests, NULL, NULL);
}

/*
 * HMAC and HKDF as Noise defines them: known answers from RFC 4231 and
 * RFC 5869, and agreement with libsodium's own HMAC-SHA256/512 for keys
 * shorter than, equal to and longer than the block.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "ng_hash.h"
#include "ng_hex.h"

static void
unhex(uint8_t *out, size_t len, const char *hex)
{
    assert_int_equal(ng_hex_decode(out, len, hex, strlen(hex)), NG_OK);
}

/* RFC 4231 test cases 2 ("Jefe") and 6 (131-byte key, longer than the block). */
static void
test_hmac_rfc4231(void **state)
{
    uint8_t out[64], want[64], key[131];
    static const char data6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
    static const char jefe_data[] = "what do ya want for nothing?";

    (void)state;
    ng_hmac(NG_HASH_SHA256, out, (const uint8_t *)"Jefe", 4, (const uint8_t *)jefe_data, strlen(jefe_data), NULL, 0);
    unhex(want, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    assert_memory_equal(out, want, 32);

    ng_hmac(NG_HASH_SHA512, out, (const uint8_t *)"Jefe", 4, (const uint8_t *)jefe_data, 10,
            (const uint8_t *)jefe_data + 10, strlen(jefe_data) - 10);
    unhex(want, 64,
          "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a"
          "6b4b636e070a38bce737");
    assert_memory_equal(out, want, 64);

    memset(key, 0xaa, sizeof key);
    ng_hmac(NG_HASH_SHA256, out, key, sizeof key, (const uint8_t *)data6, strlen(data6), NULL, 0);
    unhex(want, 32, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    assert_memory_equal(out, want, 32);
    ng_hmac(NG_HASH_SHA512, out, key, sizeof key, (const uint8_t *)data6, strlen(data6), NULL, 0);
    unhex(want, 64,
          "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f"
          "0aec8b915a985d786598");
    assert_memory_equal(out, want, 64);
}

static void
test_hmac_matches_libsodium(void **state)
{
    static const size_t keylens[] = {0, 1, 32, 63, 64, 65, 127, 128, 129, 200};
    uint8_t key[200], msg[300], ours[64], theirs[64];
    size_t i;

    (void)state;
    randombytes_buf(key, sizeof key);
    randombytes_buf(msg, sizeof msg);
    for (i = 0; i < sizeof keylens / sizeof keylens[0]; i++) {
        crypto_auth_hmacsha256_state s256;
        crypto_auth_hmacsha512_state s512;

        ng_hmac(NG_HASH_SHA256, ours, key, keylens[i], msg, 100, msg + 100, 200);
        crypto_auth_hmacsha256_init(&s256, key, keylens[i]);
        crypto_auth_hmacsha256_update(&s256, msg, sizeof msg);
        crypto_auth_hmacsha256_final(&s256, theirs);
        assert_memory_equal(ours, theirs, 32);

        ng_hmac(NG_HASH_SHA512, ours, key, keylens[i], msg, sizeof msg, NULL, 0);
        crypto_auth_hmacsha512_init(&s512, key, keylens[i]);
        crypto_auth_hmacsha512_update(&s512, msg, sizeof msg);
        crypto_auth_hmacsha512_final(&s512, theirs);
        assert_memory_equal(ours, theirs, 64);
    }
}

/* HMAC-BLAKE2b has no RFC vectors; check the construction against a
 * transcription of RFC 2104 with BLAKE2b's 128-byte block. */
static void
test_hmac_blake2b_construction(void **state)
{
    uint8_t key[64], msg[50], pad[128], inner[64], want[64], out[64];
    crypto_generichash_blake2b_state st;
    size_t i;

    (void)state;
    randombytes_buf(key, sizeof key);
    randombytes_buf(msg, sizeof msg);
    memset(pad, 0x36, sizeof pad);
    for (i = 0; i < sizeof key; i++)
        pad[i] ^= key[i];
    crypto_generichash_blake2b_init(&st, NULL, 0, 64);
    crypto_generichash_blake2b_update(&st, pad, sizeof pad);
    crypto_generichash_blake2b_update(&st, msg, sizeof msg);
    crypto_generichash_blake2b_final(&st, inner, 64);
    memset(pad, 0x5c, sizeof pad);
    for (i = 0; i < sizeof key; i++)
        pad[i] ^= key[i];
    crypto_generichash_blake2b_init(&st, NULL, 0, 64);
    crypto_generichash_blake2b_update(&st, pad, sizeof pad);
    crypto_generichash_blake2b_update(&st, inner, sizeof inner);
    crypto_generichash_blake2b_final(&st, want, 64);

    ng_hmac(NG_HASH_BLAKE2B, out, key, sizeof key, msg, sizeof msg, NULL, 0);
    assert_memory_equal(out, want, 64);
}

/* RFC 5869 test case 3: empty salt (a zero chaining key) and empty info;
 * Noise's HKDF outputs are the first HashLen-sized blocks of the OKM. */
static void
test_hkdf_rfc5869(void **state)
{
    uint8_t ck[32], ikm[22], o1[64], o2[64], o3[64], o3b[64], okm[42];

    (void)state;
    memset(ck, 0, sizeof ck);
    memset(ikm, 0x0b, sizeof ikm);
    unhex(okm, sizeof okm, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
    ng_hkdf(NG_HASH_SHA256, ck, ikm, sizeof ikm, o1, o2, NULL);
    assert_memory_equal(o1, okm, 32);
    assert_memory_equal(o2, okm + 32, 10);

    /* Three outputs agree with two on the first two, and the third is
     * HMAC(temp_key, output2 || 0x03). */
    ng_hkdf(NG_HASH_SHA256, ck, ikm, sizeof ikm, o1, o2, o3);
    assert_memory_equal(o1, okm, 32);
    {
        uint8_t temp[32];
        const uint8_t three = 3;
        ng_hmac(NG_HASH_SHA256, temp, ck, 32, ikm, sizeof ikm, NULL, 0);
        ng_hmac(NG_HASH_SHA256, o3b, temp, 32, o2, 32, &three, 1);
        assert_memory_equal(o3, o3b, 32);
    }

    /* The chaining key may be overwritten by the first output. */
    memcpy(o3, ck, sizeof ck);
    ng_hkdf(NG_HASH_SHA256, o3, ikm, sizeof ikm, o3, o2, NULL);
    assert_memory_equal(o3, okm, 32);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_hmac_matches_libsodium),
        cmocka_unit_test(test_hmac_blake2b_construction),
        cmocka_unit_test(test_hkdf_rfc5869),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests_name("hash", tests, NULL, NULL);
}

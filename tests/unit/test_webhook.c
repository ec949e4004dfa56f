/*
 * Standard Webhooks signatures: the specification's own v1 vector, v1a
 * round trips, every header mutated, time bounds, rotation, and the key
 * formats.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "ng_webhook.h"

/* The test vector of the Standard Webhooks specification. */
static const char vec_secret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
static const char vec_id[] = "msg_p5jXN8AQM9LWM0D4loKWxJek";
static const int64_t vec_ts = 1614265330;
static const char vec_body[] = "{\"test\": 2432232314}";
static const char vec_sig[] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

static ng_webhook_keys
hmac_keys(const uint8_t *secret, size_t len)
{
    ng_webhook_keys k = {secret, len, NULL, 0, NULL};

    return k;
}

static void
test_spec_vector(void **state)
{
    uint8_t secret[NG_WEBHOOK_SECRET_MAX];
    char sig[NG_WEBHOOK_SIGNATURE_BYTES];
    size_t len;
    ng_webhook_keys k;

    (void)state;
    assert_int_equal(ng_webhook_secret_parse(vec_secret, secret, sizeof secret, &len), NG_OK);
    assert_int_equal(len, 24);
    assert_int_equal(ng_webhook_sign_v1(sig, secret, len, vec_id, vec_ts, (const uint8_t *)vec_body, strlen(vec_body)),
                     NG_OK);
    assert_string_equal(sig, vec_sig);
    k = hmac_keys(secret, len);
    assert_int_equal(
        ng_webhook_verify(&k, vec_id, "1614265330", vec_sig, (const uint8_t *)vec_body, strlen(vec_body), vec_ts, 300),
        NG_OK);
}

static void
test_tampering_and_time(void **state)
{
    uint8_t secret[NG_WEBHOOK_SECRET_MAX], other[32];
    const uint8_t *body = (const uint8_t *)vec_body;
    size_t len, blen = strlen(vec_body), i;
    char sig[sizeof vec_sig], two[200];
    ng_webhook_keys k, wrong;

    (void)state;
    assert_int_equal(ng_webhook_secret_parse(vec_secret, secret, sizeof secret, &len), NG_OK);
    k = hmac_keys(secret, len);
    randombytes_buf(other, sizeof other);
    wrong = hmac_keys(other, sizeof other);
    assert_int_equal(ng_webhook_verify(&wrong, vec_id, "1614265330", vec_sig, body, blen, vec_ts, 300), NG_ERR_AUTH);
    assert_int_equal(ng_webhook_verify(&k, "msg_other", "1614265330", vec_sig, body, blen, vec_ts, 300), NG_ERR_AUTH);
    assert_int_equal(ng_webhook_verify(&k, vec_id, "1614265331", vec_sig, body, blen, vec_ts, 300), NG_ERR_AUTH);
    assert_int_equal(ng_webhook_verify(&k, vec_id, "1614265330", vec_sig, body, blen - 1, vec_ts, 300), NG_ERR_AUTH);
    /* Every character of the signature changed in turn. */
    for (i = 3; i < strlen(vec_sig) - 1; i++) {
        memcpy(sig, vec_sig, sizeof sig);
        sig[i] = sig[i] == 'A' ? 'B' : 'A';
        if (ng_webhook_verify(&k, vec_id, "1614265330", sig, body, blen, vec_ts, 300) == NG_OK)
            fail_msg("verified with signature byte %zu changed", i);
    }
    /* Time: 5 minutes either way, not one second more. */
    assert_int_equal(ng_webhook_verify(&k, vec_id, "1614265330", vec_sig, body, blen, vec_ts + 300, 300), NG_OK);
    assert_int_equal(ng_webhook_verify(&k, vec_id, "1614265330", vec_sig, body, blen, vec_ts - 300, 300), NG_OK);
    assert_int_equal(ng_webhook_verify(&k, vec_id, "1614265330", vec_sig, body, blen, vec_ts + 301, 300),
                     NG_ERR_EXPIRED);
    assert_int_equal(ng_webhook_verify(&k, vec_id, "1614265330", vec_sig, body, blen, vec_ts - 301, 300),
                     NG_ERR_NOT_YET_VALID);
    /* Several entries: one good one is enough; other versions are skipped. */
    snprintf(two, sizeof two, "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v2,whatever %s", vec_sig);
    assert_int_equal(ng_webhook_verify(&k, vec_id, "1614265330", two, body, blen, vec_ts, 300), NG_OK);
    assert_int_equal(ng_webhook_verify(&k, vec_id, "1614265330", "v2,whatever", body, blen, vec_ts, 300), NG_ERR_AUTH);
}

static void
test_malformed_headers(void **state)
{
    static const char *const bad_sig[] = {"", " ", "v1", "v1,", "v1,not base64!", "v1,AAAA", ",abc", "v1a,AAAA", NULL};
    static const char *const bad_ts[] = {"", "-1", "16142653x0", "1614265330.5", "9999999999999", " 1614265330", NULL};
    static const char *const bad_id[] = {"", "a.b", "a b", "ü", NULL};
    uint8_t secret[NG_WEBHOOK_SECRET_MAX];
    const uint8_t *body = (const uint8_t *)vec_body;
    size_t len, blen = strlen(vec_body);
    char many[NG_WEBHOOK_HEADER_MAX + 2], id[NG_WEBHOOK_ID_MAX + 2];
    ng_webhook_keys k;
    int i;

    (void)state;
    assert_int_equal(ng_webhook_secret_parse(vec_secret, secret, sizeof secret, &len), NG_OK);
    k = hmac_keys(secret, len);
    for (i = 0; bad_sig[i] != NULL; i++)
        if (ng_webhook_verify(&k, vec_id, "1614265330", bad_sig[i], body, blen, vec_ts, 300) != NG_ERR_MALFORMED)
            fail_msg("signature header \"%s\" not refused as malformed", bad_sig[i]);
    for (i = 0; bad_ts[i] != NULL; i++)
        assert_int_equal(ng_webhook_verify(&k, vec_id, bad_ts[i], vec_sig, body, blen, vec_ts, 300), NG_ERR_MALFORMED);
    for (i = 0; bad_id[i] != NULL; i++)
        assert_int_equal(ng_webhook_verify(&k, bad_id[i], "1614265330", vec_sig, body, blen, vec_ts, 300),
                         NG_ERR_MALFORMED);
    memset(id, 'a', NG_WEBHOOK_ID_MAX + 1);
    id[NG_WEBHOOK_ID_MAX + 1] = '\0';
    assert_int_equal(ng_webhook_verify(&k, id, "1614265330", vec_sig, body, blen, vec_ts, 300), NG_ERR_MALFORMED);
    assert_int_equal(ng_webhook_verify(&k, vec_id, "1614265330", NULL, body, blen, vec_ts, 300), NG_ERR_MALFORMED);
    /* Too long a header, and too many entries, even with the good one last. */
    memset(many, 'v', sizeof many - 1);
    many[sizeof many - 1] = '\0';
    assert_int_equal(ng_webhook_verify(&k, vec_id, "1614265330", many, body, blen, vec_ts, 300), NG_ERR_MALFORMED);
    many[0] = '\0';
    for (i = 0; i < NG_WEBHOOK_MAX_ENTRIES; i++)
        strcat(many, "v2,x ");
    strcat(many, vec_sig);
    assert_int_equal(ng_webhook_verify(&k, vec_id, "1614265330", many, body, blen, vec_ts, 300), NG_ERR_MALFORMED);
}

static void
test_v1a_and_rotation(void **state)
{
    uint8_t pk[32], sk[64], pk2[32], sk2[64], old_secret[32], new_secret[32], parsed[32];
    char sig[NG_WEBHOOK_SIGNATURE_BYTES], sig_old[NG_WEBHOOK_SIGNATURE_BYTES], header[300], whpk[64];
    const uint8_t body[] = "binary\0body";
    ng_webhook_keys k = {NULL, 0, NULL, 0, NULL};

    (void)state;
    crypto_sign_keypair(pk, sk);
    crypto_sign_keypair(pk2, sk2);
    assert_int_equal(ng_webhook_sign_v1a(sig, sk, "evt_1", 1700000000, body, sizeof body), NG_OK);
    assert_memory_equal(sig, "v1a,", 4);
    k.pk = pk;
    assert_int_equal(ng_webhook_verify(&k, "evt_1", "1700000000", sig, body, sizeof body, 1700000000, 300), NG_OK);
    assert_int_equal(ng_webhook_verify(&k, "evt_1", "1700000000", sig, body, sizeof body - 1, 1700000000, 300),
                     NG_ERR_AUTH);
    k.pk = pk2;
    assert_int_equal(ng_webhook_verify(&k, "evt_1", "1700000000", sig, body, sizeof body, 1700000000, 300),
                     NG_ERR_AUTH);
    /* A v1 entry alone does not satisfy a verifier that has only a public key. */
    randombytes_buf(old_secret, sizeof old_secret);
    randombytes_buf(new_secret, sizeof new_secret);
    assert_int_equal(ng_webhook_sign_v1(sig_old, old_secret, 32, "evt_1", 1700000000, body, sizeof body), NG_OK);
    assert_int_equal(ng_webhook_verify(&k, "evt_1", "1700000000", sig_old, body, sizeof body, 1700000000, 300),
                     NG_ERR_AUTH);
    /* During a rotation the old secret still verifies, until it is dropped. */
    k.pk = NULL;
    k.secret = new_secret;
    k.secret_len = 32;
    k.secret_prev = old_secret;
    k.secret_prev_len = 32;
    assert_int_equal(ng_webhook_verify(&k, "evt_1", "1700000000", sig_old, body, sizeof body, 1700000000, 300), NG_OK);
    k.secret_prev = NULL;
    assert_int_equal(ng_webhook_verify(&k, "evt_1", "1700000000", sig_old, body, sizeof body, 1700000000, 300),
                     NG_ERR_AUTH);
    /* Both schemes in one header, as deliveries carry them. */
    k.pk = pk;
    snprintf(header, sizeof header, "%s %s", sig_old, sig);
    assert_int_equal(ng_webhook_verify(&k, "evt_1", "1700000000", header, body, sizeof body, 1700000000, 300), NG_OK);

    /* Key formats. */
    memcpy(whpk, "whpk_", 5);
    sodium_bin2base64(whpk + 5, sizeof whpk - 5, pk, 32, sodium_base64_VARIANT_ORIGINAL);
    assert_int_equal(ng_webhook_public_parse(whpk, parsed), NG_OK);
    assert_memory_equal(parsed, pk, 32);
    whpk[0] = 'x';
    assert_int_equal(ng_webhook_public_parse(whpk, parsed), NG_ERR_PARSE);
    assert_int_equal(ng_webhook_public_parse("whpk_AAAA", parsed), NG_ERR_PARSE);
    assert_int_equal(ng_webhook_public_parse("whpk_//////////////////////////////////////////8=", parsed),
                     NG_ERR_BAD_KEY);
}

static void
test_secret_formats(void **state)
{
    static const char *const bad[] = {"",
                                      "whsec_",
                                      "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                      "whsec_MfKQ9r8GKYqrTwjU",
                                      "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw!",
                                      "whsec_ MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                      NULL};
    uint8_t out[NG_WEBHOOK_SECRET_MAX], big[NG_WEBHOOK_SECRET_MAX + 1];
    char text[200];
    size_t len;
    int i;

    (void)state;
    for (i = 0; bad[i] != NULL; i++)
        if (ng_webhook_secret_parse(bad[i], out, sizeof out, &len) != NG_ERR_PARSE)
            fail_msg("secret \"%s\" accepted", bad[i]);
    memcpy(text, "whsec_", 6);
    randombytes_buf(big, sizeof big);
    sodium_bin2base64(text + 6, sizeof text - 6, big, sizeof big, sodium_base64_VARIANT_ORIGINAL);
    assert_int_equal(ng_webhook_secret_parse(text, out, sizeof out, &len), NG_ERR_PARSE);
    sodium_bin2base64(text + 6, sizeof text - 6, big, NG_WEBHOOK_SECRET_MAX, sodium_base64_VARIANT_ORIGINAL);
    assert_int_equal(ng_webhook_secret_parse(text, out, sizeof out, &len), NG_OK);
    assert_int_equal(len, NG_WEBHOOK_SECRET_MAX);
    assert_int_equal(ng_webhook_secret_parse(text, out, 10, &len), NG_ERR_BUFFER_TOO_SMALL);
}

/* What tests/fuzz/fuzz_webhook found (its corpus keeps the inputs as regress-*). */
static void
test_fuzz_regressions(void **state)
{
    uint8_t secret[NG_WEBHOOK_SECRET_MAX], other[NG_WEBHOOK_SECRET_MAX], pk[NG_WEBHOOK_PK_BYTES];
    const uint8_t *body = (const uint8_t *)vec_body;
    char header[400];
    size_t len, blen = strlen(vec_body);
    ng_webhook_keys k;

    (void)state;
    assert_int_equal(ng_webhook_secret_parse(vec_secret, secret, sizeof secret, &len), NG_OK);
    k = hmac_keys(secret, len);
    /* libsodium 1.0.18 decodes any byte over 0x7f as '/': base64 with one in it was accepted. */
    assert_int_equal(ng_webhook_secret_parse("whsec_IiIiIiIiIiIiIiIiIiIiIiI\xbaIiIiIiIi", other, sizeof other, &len),
                     NG_ERR_PARSE);
    assert_int_equal(ng_webhook_public_parse("whpk_\x80/////////////////////////////////////////8=", pk), NG_ERR_PARSE);
    assert_int_equal(ng_webhook_verify(&k, vec_id, "1614265330",
                                       "v1,g0hM9SsE+OTPJTGt\xfftmIKtSyZlE3uFJELVlNIOLJ1OE=", body, blen, vec_ts, 300),
                     NG_ERR_MALFORMED);
    /* An entry of an unknown scheme longer than a v1a one made the verifier give up before the good entry. */
    snprintf(header, sizeof header, "v2,%0200d %s", 0, vec_sig);
    assert_int_equal(ng_webhook_verify(&k, vec_id, "1614265330", header, body, blen, vec_ts, 300), NG_OK);
    snprintf(header, sizeof header, "v1b,%0200d", 0);
    assert_int_equal(ng_webhook_verify(&k, vec_id, "1614265330", header, body, blen, vec_ts, 300), NG_ERR_AUTH);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_vector),       cmocka_unit_test(test_tampering_and_time),
        cmocka_unit_test(test_malformed_headers), cmocka_unit_test(test_v1a_and_rotation),
        cmocka_unit_test(test_secret_formats),    cmocka_unit_test(test_fuzz_regressions),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests_name("webhook signatures", tests, NULL, NULL);
}

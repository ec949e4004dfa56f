/*
 * Strict base64 decoding of text from outside: what libsodium 1.0.18 would
 * let through (bytes over 0x7f decoded as '/' or '_') is refused, as are
 * whitespace, trailing text, a wrong variant and text too long for the
 * buffer; good text of each variant decodes to its bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "ng_b64.h"

static ng_err
decode(const char *in, int variant, uint8_t *out, size_t cap, size_t *len)
{
    return ng_b64_decode(out, cap, len, in, strlen(in), variant);
}

static void
test_good(void **state)
{
    uint8_t out[16];
    size_t len = 99;

    (void)state;
    assert_int_equal(decode("aGk/", sodium_base64_VARIANT_ORIGINAL, out, sizeof out, &len), NG_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(out, "hi?", 3);
    assert_int_equal(decode("aGk_", sodium_base64_VARIANT_URLSAFE_NO_PADDING, out, sizeof out, &len), NG_OK);
    assert_memory_equal(out, "hi?", 3);
    assert_int_equal(decode("aA==", sodium_base64_VARIANT_ORIGINAL, out, sizeof out, &len), NG_OK);
    assert_int_equal(len, 1);
    assert_int_equal(decode("", sodium_base64_VARIANT_ORIGINAL, out, sizeof out, &len), NG_OK);
    assert_int_equal(len, 0);
}

static void
test_refused(void **state)
{
    /* Refused: bytes libsodium 1.0.18 would take ("aGk\xbf" as "aGk/"), whitespace, trailing text,
     * cut padding, the other variant, a partial group. */
    static const char *const bad[] = {"aGk\xbf", "\xff\xff", "aGk/ ", " aGk/", "aGk/\n",
                                      "aG k/",   "aGk/=",    "aA=",   "aGk_",  "aGk/aGk"};
    uint8_t out[16];
    size_t i, len;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        len = 99;
        if (decode(bad[i], sodium_base64_VARIANT_ORIGINAL, out, sizeof out, &len) != NG_ERR_PARSE || len != 0)
            fail_msg("bad[%zu] \"%s\" was not refused", i, bad[i]);
    }
    /* A NUL inside the given length is not base64 either. */
    assert_int_equal(ng_b64_decode(out, sizeof out, &len, "aGk/\0aGk/", 9, sodium_base64_VARIANT_ORIGINAL),
                     NG_ERR_PARSE);
    /* A refusal after most of the text decoded leaves nothing of it behind: eight good bytes, then junk. */
    memset(out, 0xaa, sizeof out);
    assert_int_equal(decode("aGk/aGk/aGk/!", sodium_base64_VARIANT_ORIGINAL, out, sizeof out, &len), NG_ERR_PARSE);
    for (i = 0; i < sizeof out; i++)
        if (out[i] != 0)
            fail_msg("byte %zu of the output is %#x after a refusal", i, out[i]);
    /* Six bytes do not fit in five. */
    assert_int_equal(decode("aGk/aGk/", sodium_base64_VARIANT_ORIGINAL, out, 5, &len), NG_ERR_PARSE);
    assert_int_equal(len, 0);
    assert_int_equal(decode("aGk/aGk/", sodium_base64_VARIANT_ORIGINAL, out, 6, &len), NG_OK);
    assert_int_equal(len, 6);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_refused),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests_name("b64", tests, NULL, NULL);
}

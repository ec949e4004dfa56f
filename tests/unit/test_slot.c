/*
 * The string slot hash shared by the rate limiter and the deliverer: the
 * published FNV-1a values (so a change to the hash is seen, since slots of
 * running tables depend on it), slots always in range, and bytes above 0x7f
 * hashed as unsigned.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "ng_slot.h"

static void
test_known_values(void **state)
{
    (void)state;
    /* From the FNV reference test suite (32-bit FNV-1a). */
    assert_int_equal(ng_slot_hash(""), 0x811c9dc5u);
    assert_int_equal(ng_slot_hash("a"), 0xe40c292cu);
    assert_int_equal(ng_slot_hash("foobar"), 0xbf9cf968u);
    /* A byte over 0x7f counts as itself, not as a negative char. */
    assert_int_equal(ng_slot_hash("\xff"), (0x811c9dc5u ^ 0xffu) * 16777619u);
}

static void
test_slots_in_range(void **state)
{
    static const unsigned sizes[] = {1, 2, 7, 4096, 65521};
    char key[32];
    size_t i, k;

    (void)state;
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (k = 0; k < 1000; k++) {
            snprintf(key, sizeof key, "tenant-%zu", k);
            assert_true(ng_slot_of(key, sizes[i]) < sizes[i]);
            assert_int_equal(ng_slot_of(key, sizes[i]), ng_slot_hash(key) % sizes[i]);
        }
    assert_int_equal(ng_slot_of("anything", 1), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_slots_in_range),
    };

    return cmocka_run_group_tests_name("slot hash", tests, NULL, NULL);
}

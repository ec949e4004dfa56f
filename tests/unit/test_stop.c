/*
 * ng_stop: a sleep ends at its deadline (not before), a stop request wakes
 * a sleeper at once and ends every later sleep at once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ng_stop.h"

static void
test_sleeps_until_deadline(void **state)
{
    ng_stop s;
    uint64_t t0;

    (void)state;
    assert_int_equal(ng_stop_init(&s), NG_OK);
    t0 = ng_stop_mono_ms();
    assert_int_equal(ng_stop_sleep(&s, 120), 0);
    assert_true(ng_stop_mono_ms() - t0 >= 120);
    assert_int_equal(ng_stop_sleep(&s, 0), 0);
    assert_int_equal(ng_stop_requested(&s), 0);
    ng_stop_destroy(&s);
}

static void *
sleeper(void *arg)
{
    static int stopped;

    stopped = ng_stop_sleep(arg, 60000);
    return &stopped;
}

static void
test_request_wakes(void **state)
{
    pthread_t th;
    ng_stop s;
    uint64_t t0;
    void *ret;

    (void)state;
    assert_int_equal(ng_stop_init(&s), NG_OK);
    assert_int_equal(pthread_create(&th, NULL, sleeper, &s), 0);
    t0 = ng_stop_mono_ms();
    while (ng_stop_mono_ms() - t0 < 50)
        ; /* let it sleep first (if it has not, the request still ends its sleep at once) */
    ng_stop_request(&s);
    assert_int_equal(pthread_join(th, &ret), 0);
    assert_int_equal(*(int *)ret, 1);
    assert_true(ng_stop_mono_ms() - t0 < 5000);
    /* Sticky: later sleeps end at once. */
    t0 = ng_stop_mono_ms();
    assert_int_equal(ng_stop_sleep(&s, 60000), 1);
    assert_true(ng_stop_mono_ms() - t0 < 1000);
    assert_int_equal(ng_stop_requested(&s), 1);
    ng_stop_destroy(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sleeps_until_deadline),
        cmocka_unit_test(test_request_wakes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

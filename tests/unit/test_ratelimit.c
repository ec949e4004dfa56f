/*
 * The per-tenant token bucket: bursts up to the rate, refill over time,
 * Retry-After, batches, tenants independent, rate 0 unlimited, and threads
 * sharing one table.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ng_ratelimit.h"

static void
test_bucket(void **state)
{
    ng_ratelimit *r;
    uint32_t after;
    int i;

    (void)state;
    assert_int_equal(ng_ratelimit_new(&r), NG_OK);
    for (i = 0; i < 5; i++)
        assert_true(ng_ratelimit_take(r, "acme", 5, 1, 1000, &after));
    assert_false(ng_ratelimit_take(r, "acme", 5, 1, 1000, &after));
    assert_int_equal(after, 1);
    /* another tenant has its own bucket */
    assert_true(ng_ratelimit_take(r, "other", 5, 5, 1000, &after));
    /* 200 ms later one token is back, not two */
    assert_true(ng_ratelimit_take(r, "acme", 5, 1, 1200, &after));
    assert_false(ng_ratelimit_take(r, "acme", 5, 1, 1200, &after));
    /* never more than the burst, however long the wait */
    assert_true(ng_ratelimit_take(r, "acme", 5, 5, 100000, &after));
    assert_false(ng_ratelimit_take(r, "acme", 5, 1, 100000, &after));
    /* a batch over the burst can never pass: retry_after 0 */
    assert_false(ng_ratelimit_take(r, "acme", 5, 6, 200000, &after));
    assert_int_equal(after, 0);
    /* a batch waits for all its tokens: 3 needed at 5/s from 0 is 1 s (rounded up) */
    assert_true(ng_ratelimit_take(r, "acme", 5, 5, 300000, &after));
    assert_false(ng_ratelimit_take(r, "acme", 5, 3, 300000, &after));
    assert_int_equal(after, 1);
    /* rate 0: unlimited */
    for (i = 0; i < 1000; i++)
        assert_true(ng_ratelimit_take(r, "free", 0, 1000, 0, &after));
    /* a clock that goes back does not mint tokens */
    assert_true(ng_ratelimit_take(r, "back", 1, 1, 5000, &after));
    assert_false(ng_ratelimit_take(r, "back", 1, 1, 1000, &after));
    ng_ratelimit_free(r);
    ng_ratelimit_free(NULL);
}

static ng_ratelimit *shared;
static int granted[4];

static void *
taker(void *arg)
{
    int *n = arg, i;
    uint32_t after;

    for (i = 0; i < 1000; i++)
        *n += ng_ratelimit_take(shared, "busy", 100, 1, 1000, &after);
    return NULL;
}

/* Four threads at one instant: exactly the burst is granted. */
static void
test_threads(void **state)
{
    pthread_t t[4];
    int i;

    (void)state;
    assert_int_equal(ng_ratelimit_new(&shared), NG_OK);
    for (i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, taker, &granted[i]);
    for (i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(granted[0] + granted[1] + granted[2] + granted[3], 100);
    ng_ratelimit_free(shared);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_bucket), cmocka_unit_test(test_threads)};

    return cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
}

/*
 * The static-static DH cache: it must always give what ng_dh gives, count
 * its hits and misses, stay within its capacity, forget retired keys,
 * never hold a refused (small-order) result, and stay correct when many
 * threads share it. K and X parcels sealed and opened through it must be
 * indistinguishable from those made without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sodium.h>

#include "ng_parcel.h"
#include "ng_sscache.h"

#define T0  UINT64_C(1700000000000)
#define TTL UINT64_C(3600000)

enum {
    N_REMOTES = 100,
    N_THREADS = 4,
    THREAD_CALLS = 400,
    THREAD_REMOTES = 24,
};

static const char g_meta[] = "{\"content_type\":\"application/json\"}";
static const uint8_t g_body[] = "{\"hello\":\"world\"}";

static ng_keypair g_local, g_other_local, g_remote[N_REMOTES];

/* The canonical small-order points (see test_x25519.c for the full list). */
static const char *const g_small_hex[] = {
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
};
#define N_SMALL (sizeof g_small_hex / sizeof g_small_hex[0])

static void
stats(ng_ss_cache *c, uint64_t *hits, uint64_t *misses)
{
    *hits = *misses = 99;
    ng_ss_cache_stats(c, hits, misses);
}

/* One call through the cache, checked against a plain ng_dh. */
static void
dh_checked(ng_ss_cache *c, const ng_keypair *local, const uint8_t *remote)
{
    uint8_t got[NG_DH_BYTES], want[NG_DH_BYTES];

    assert_int_equal(ng_dh(want, local->priv, remote), NG_OK);
    memset(got, 0xaa, sizeof got);
    assert_int_equal(ng_ss_cache_dh(c, got, local, remote), NG_OK);
    assert_memory_equal(got, want, sizeof got);
}

static void
test_matches_ng_dh(void **state)
{
    ng_ss_cache *c;
    size_t i, round;

    (void)state;
    assert_int_equal(ng_ss_cache_new(&c, NG_SS_CACHE_DEFAULT_ENTRIES), NG_OK);
    assert_non_null(c);
    for (round = 0; round < 3; round++) /* a miss, then hits */
        for (i = 0; i < 10; i++)
            dh_checked(c, &g_local, g_remote[i].pub);
    /* The same remote from another local key is another secret. */
    for (i = 0; i < 10; i++)
        dh_checked(c, &g_other_local, g_remote[i].pub);
    for (i = 0; i < 10; i++)
        dh_checked(c, &g_local, g_remote[i].pub);
    /* And without a cache it only computes. */
    for (i = 0; i < 10; i++)
        dh_checked(NULL, &g_local, g_remote[i].pub);
    ng_ss_cache_free(c);
}

static void
test_hits_and_misses(void **state)
{
    ng_ss_cache *c;
    uint64_t hits, misses;

    (void)state;
    /* One set of four: every pair lands in the same set, so the lookup itself must tell them apart. */
    assert_int_equal(ng_ss_cache_new(&c, 4), NG_OK);
    stats(c, &hits, &misses);
    assert_true(hits == 0 && misses == 0);
    dh_checked(c, &g_local, g_remote[0].pub);
    stats(c, &hits, &misses);
    assert_true(hits == 0 && misses == 1);
    dh_checked(c, &g_local, g_remote[0].pub);
    stats(c, &hits, &misses);
    assert_true(hits == 1 && misses == 1);
    dh_checked(c, &g_local, g_remote[1].pub);
    dh_checked(c, &g_local, g_remote[1].pub);
    dh_checked(c, &g_local, g_remote[0].pub);
    stats(c, &hits, &misses);
    assert_true(hits == 3 && misses == 2);
    /* Keyed by both keys: another local key with a known remote is a miss. */
    dh_checked(c, &g_other_local, g_remote[0].pub);
    stats(c, &hits, &misses);
    assert_true(hits == 3 && misses == 3);
    ng_ss_cache_free(c);
}

/*
 * 100 remote keys through 8 entries: every result right, and no more than 8
 * of them still cached afterwards. Asking for them newest first counts
 * what survived: under any LRU-like policy the survivors are the newest,
 * and they are all asked for before a miss can evict one of them.
 */
static void
test_capacity_bound(void **state)
{
    ng_ss_cache *c;
    uint64_t hits, misses;
    size_t i;

    (void)state;
    assert_int_equal(ng_ss_cache_new(&c, 8), NG_OK);
    for (i = 0; i < N_REMOTES; i++)
        dh_checked(c, &g_local, g_remote[i].pub);
    stats(c, &hits, &misses);
    assert_true(hits == 0 && misses == N_REMOTES);
    for (i = N_REMOTES; i-- > 0;)
        dh_checked(c, &g_local, g_remote[i].pub);
    stats(c, &hits, &misses);
    if (hits > 8 || hits == 0)
        print_error("%llu of %d keys still cached in a cache of 8 entries\n", (unsigned long long)hits, N_REMOTES);
    assert_true(hits <= 8);
    /* It does cache: the newest key is always there. */
    assert_true(hits > 0);
    assert_true(hits + misses == 2 * N_REMOTES);
    /* The entry just used is the last one an LRU would evict. */
    {
        uint64_t h0 = hits;
        dh_checked(c, &g_local, g_remote[0].pub);
        stats(c, &hits, &misses);
        assert_true(hits == h0 + 1);
    }
    ng_ss_cache_free(c);

    /* A tiny capacity is rounded up, never down to nothing. */
    assert_int_equal(ng_ss_cache_new(&c, 1), NG_OK);
    dh_checked(c, &g_local, g_remote[0].pub);
    dh_checked(c, &g_local, g_remote[0].pub);
    stats(c, &hits, &misses);
    assert_true(hits == 1 && misses == 1);
    ng_ss_cache_free(c);
}

static void
test_forget(void **state)
{
    ng_ss_cache *c;
    uint64_t hits, misses, h0, m0;

    (void)state;
    assert_int_equal(ng_ss_cache_new(&c, 64), NG_OK);
    dh_checked(c, &g_local, g_remote[0].pub);
    dh_checked(c, &g_local, g_remote[1].pub);
    dh_checked(c, &g_other_local, g_remote[1].pub);
    stats(c, &h0, &m0);
    assert_true(h0 == 0 && m0 == 3);

    /* A retired remote key: its entry goes, the others stay. */
    ng_ss_cache_forget(c, g_remote[0].pub);
    dh_checked(c, &g_local, g_remote[0].pub);
    stats(c, &hits, &misses);
    assert_true(hits == h0 && misses == m0 + 1);
    dh_checked(c, &g_local, g_remote[1].pub);
    stats(c, &hits, &misses);
    assert_true(hits == h0 + 1 && misses == m0 + 1);

    /* A retired local key: every entry it made goes, another local's stays. */
    ng_ss_cache_forget(c, g_local.pub);
    stats(c, &h0, &m0);
    dh_checked(c, &g_local, g_remote[0].pub);
    dh_checked(c, &g_local, g_remote[1].pub);
    stats(c, &hits, &misses);
    assert_true(hits == h0 && misses == m0 + 2);
    dh_checked(c, &g_other_local, g_remote[1].pub);
    stats(c, &hits, &misses);
    assert_true(hits == h0 + 1);

    /* A key the cache never saw changes nothing. */
    stats(c, &h0, &m0);
    ng_ss_cache_forget(c, g_remote[50].pub);
    dh_checked(c, &g_other_local, g_remote[1].pub);
    stats(c, &hits, &misses);
    assert_true(hits == h0 + 1 && misses == m0);
    ng_ss_cache_free(c);
}

static void
test_small_order_not_cached(void **state)
{
    uint8_t point[NG_KEY_BYTES], out[NG_DH_BYTES];
    uint64_t hits, misses;
    ng_ss_cache *c;
    size_t i, k;

    (void)state;
    assert_int_equal(ng_ss_cache_new(&c, 64), NG_OK);
    for (i = 0; i < N_SMALL; i++) {
        assert_int_equal(sodium_hex2bin(point, sizeof point, g_small_hex[i], 64, NULL, NULL, NULL), 0);
        for (k = 0; k < 3; k++) {
            memset(out, 0xaa, sizeof out);
            assert_int_equal(ng_ss_cache_dh(c, out, &g_local, point), NG_ERR_BAD_KEY);
            assert_true(sodium_is_zero(out, sizeof out));
        }
        memset(out, 0xaa, sizeof out);
        assert_int_equal(ng_ss_cache_dh(NULL, out, &g_local, point), NG_ERR_BAD_KEY);
        assert_true(sodium_is_zero(out, sizeof out));
    }
    /* Asked three times each, never answered from the cache. */
    stats(c, &hits, &misses);
    assert_true(hits == 0);
    /* And the refused keys did not take the place of good ones: the cache still works. */
    dh_checked(c, &g_local, g_remote[0].pub);
    dh_checked(c, &g_local, g_remote[0].pub);
    stats(c, &hits, &misses);
    assert_true(hits == 1);
    ng_ss_cache_free(c);
}

static void
test_null_cache(void **state)
{
    uint64_t hits = 5, misses = 5;

    (void)state;
    ng_ss_cache_free(NULL);
    ng_ss_cache_forget(NULL, g_remote[0].pub);
    ng_ss_cache_stats(NULL, &hits, &misses);
    assert_true(hits == 0 && misses == 0);
}

static uint8_t *
seal_with(ng_pattern pattern, const ng_keypair *sender, const ng_keypair *recipient, const uint8_t *psk,
          ng_ss_cache *cache, size_t *len)
{
    ng_seal_params sp;
    uint8_t *parcel;
    size_t size;

    memset(&sp, 0, sizeof sp);
    sp.pattern = pattern;
    sp.recipient_pub = recipient->pub;
    sp.sender = sender;
    sp.psk = psk;
    sp.meta = (const uint8_t *)g_meta;
    sp.meta_len = sizeof g_meta - 1;
    sp.body = g_body;
    sp.body_len = sizeof g_body - 1;
    sp.created_ms = T0;
    sp.ttl_ms = TTL;
    sp.cache = cache;
    size = ng_parcel_sealed_size(&sp);
    parcel = malloc(size);
    assert_non_null(parcel);
    assert_int_equal(ng_parcel_seal(parcel, size, len, &sp), NG_OK);
    assert_int_equal(*len, size);
    return parcel;
}

/* Opens with and without the cache; both must succeed and agree byte for byte. */
static void
open_both_ways(const uint8_t *parcel, size_t len, ng_pattern pattern, const ng_keypair *recipient,
               const uint8_t *sender_pub, const uint8_t *psk, ng_ss_cache *cache)
{
    ng_open_params op;
    ng_opened a, b;
    uint8_t *outa = malloc(len), *outb = malloc(len);

    assert_non_null(outa);
    assert_non_null(outb);
    ng_open_params_init(&op);
    op.recipient = recipient;
    op.sender_pub = ng_pattern_base(pattern) == NG_PATTERN_K ? sender_pub : NULL;
    op.psk = psk;
    op.now_ms = T0 + 1;
    op.cache = cache;
    assert_int_equal(ng_parcel_open(outa, len, &a, parcel, len, &op), NG_OK);
    op.cache = NULL;
    assert_int_equal(ng_parcel_open(outb, len, &b, parcel, len, &op), NG_OK);
    assert_int_equal(a.body_len, sizeof g_body - 1);
    assert_memory_equal(a.body, g_body, sizeof g_body - 1);
    assert_int_equal(a.meta_len, b.meta_len);
    assert_memory_equal(a.meta, b.meta, a.meta_len);
    assert_int_equal(a.body_len, b.body_len);
    assert_memory_equal(a.body, b.body, a.body_len);
    assert_int_equal(a.has_sender, 1);
    assert_int_equal(b.has_sender, 1);
    assert_memory_equal(a.sender_pub, sender_pub, NG_KEY_BYTES);
    assert_memory_equal(b.sender_pub, sender_pub, NG_KEY_BYTES);
    free(outa);
    free(outb);
}

static void
test_parcels_through_cache(void **state)
{
    static const ng_pattern patterns[] = {NG_PATTERN_K, NG_PATTERN_X, NG_PATTERN_KPSK0, NG_PATTERN_XPSK1};
    uint8_t psk[NG_PSK_BYTES];
    ng_ss_cache *send_cache, *recv_cache, *shared;
    ng_keypair *sender = &g_local, *recipient = &g_remote[0];
    uint64_t hits, misses;
    uint8_t *parcel;
    size_t p, k, len;

    (void)state;
    randombytes_buf(psk, sizeof psk);
    for (p = 0; p < sizeof patterns / sizeof patterns[0]; p++) {
        const uint8_t *pk = ng_pattern_has_psk(patterns[p]) ? psk : NULL;
        assert_int_equal(ng_ss_cache_new(&send_cache, 16), NG_OK);
        assert_int_equal(ng_ss_cache_new(&recv_cache, 16), NG_OK);
        for (k = 0; k < 3; k++) {
            parcel = seal_with(patterns[p], sender, recipient, pk, send_cache, &len);
            open_both_ways(parcel, len, patterns[p], recipient, sender->pub, pk, recv_cache);
            free(parcel);
            /* Sealed without a cache, opened with one. */
            parcel = seal_with(patterns[p], sender, recipient, pk, NULL, &len);
            open_both_ways(parcel, len, patterns[p], recipient, sender->pub, pk, recv_cache);
            free(parcel);
        }
        /* One ss per direction: computed once, then reused. */
        stats(send_cache, &hits, &misses);
        assert_true(misses == 1 && hits == 2);
        stats(recv_cache, &hits, &misses);
        assert_true(misses == 1 && hits == 5);
        ng_ss_cache_free(send_cache);
        ng_ss_cache_free(recv_cache);

        /* One cache shared by both ends (a gateway sending to its own tenant): entries are per key pair. */
        assert_int_equal(ng_ss_cache_new(&shared, 16), NG_OK);
        for (k = 0; k < 2; k++) {
            parcel = seal_with(patterns[p], sender, recipient, pk, shared, &len);
            open_both_ways(parcel, len, patterns[p], recipient, sender->pub, pk, shared);
            free(parcel);
        }
        stats(shared, &hits, &misses);
        assert_true(misses == 2 && hits == 2);
        ng_ss_cache_free(shared);
    }

    /* N has no ss: the cache is not touched. */
    assert_int_equal(ng_ss_cache_new(&shared, 16), NG_OK);
    parcel = seal_with(NG_PATTERN_N, NULL, recipient, NULL, shared, &len);
    free(parcel);
    stats(shared, &hits, &misses);
    assert_true(hits == 0 && misses == 0);
    ng_ss_cache_free(shared);
}

/* A cached secret must not outlive the key that made it: after forget, the entry is gone, and a fresh DH still
 * gives a parcel that opens. */
static void
test_forget_then_parcel(void **state)
{
    ng_ss_cache *c;
    uint64_t hits, misses;
    uint8_t *parcel;
    size_t len;

    (void)state;
    assert_int_equal(ng_ss_cache_new(&c, 16), NG_OK);
    parcel = seal_with(NG_PATTERN_X, &g_local, &g_remote[1], NULL, c, &len);
    free(parcel);
    ng_ss_cache_forget(c, g_remote[1].pub);
    parcel = seal_with(NG_PATTERN_X, &g_local, &g_remote[1], NULL, c, &len);
    stats(c, &hits, &misses);
    assert_true(hits == 0 && misses == 2);
    open_both_ways(parcel, len, NG_PATTERN_X, &g_remote[1], g_local.pub, NULL, NULL);
    free(parcel);
    ng_ss_cache_free(c);
}

struct worker {
    pthread_t thread;
    ng_ss_cache *cache;
    int index;
    int wrong;
    int errors;
};

/*
 * An X sender's static key is proven only by the handshake tag. A parcel
 * whose tag fails (a forger who encrypted someone's public key, or any
 * tampering) must not put that key into the recipient's cache, or forgers
 * could evict real peers' entries at will.
 */
static void
test_forged_x_not_cached(void **state)
{
    ng_ss_cache *cache;
    ng_open_params op;
    ng_opened o;
    uint8_t ss[NG_DH_BYTES], out[256];
    uint8_t *parcel;
    size_t len;

    (void)state;
    assert_int_equal(ng_ss_cache_new(&cache, 64), NG_OK);
    parcel = seal_with(NG_PATTERN_X, &g_remote[0], &g_local, NULL, NULL, &len);
    parcel[len - 1] ^= 1; /* the handshake payload's tag: n is 1 for this small body */

    ng_open_params_init(&op);
    op.recipient = &g_local;
    op.now_ms = T0;
    op.cache = cache;
    assert_int_equal(ng_parcel_open(out, sizeof out, &o, parcel, len, &op), NG_ERR_AUTH);
    assert_int_equal(ng_ss_cache_lookup(cache, ss, g_local.pub, g_remote[0].pub), 0);

    parcel[len - 1] ^= 1;
    assert_int_equal(ng_parcel_open(out, sizeof out, &o, parcel, len, &op), NG_OK);
    assert_int_equal(ng_ss_cache_lookup(cache, ss, g_local.pub, g_remote[0].pub), 1);
    free(parcel);
    ng_ss_cache_free(cache);
}

/* An X parcel from a sender other than the expected one is refused as soon
 * as its static key is decrypted: before the ss DH, so nothing is cached. */
static void
test_unexpected_x_sender_refused_early(void **state)
{
    ng_ss_cache *cache;
    ng_open_params op;
    ng_opened o;
    uint8_t ss[NG_DH_BYTES], out[256];
    uint8_t *parcel;
    uint64_t hits, misses;
    size_t len;

    (void)state;
    assert_int_equal(ng_ss_cache_new(&cache, 64), NG_OK);
    parcel = seal_with(NG_PATTERN_X, &g_remote[1], &g_local, NULL, NULL, &len);
    ng_open_params_init(&op);
    op.recipient = &g_local;
    op.now_ms = T0;
    op.cache = cache;
    op.sender_pub = g_remote[2].pub;
    assert_int_equal(ng_parcel_open(out, sizeof out, &o, parcel, len, &op), NG_ERR_WRONG_SENDER);
    stats(cache, &hits, &misses);
    assert_true(hits == 0 && misses == 0); /* the ss step was never reached */
    assert_int_equal(ng_ss_cache_lookup(cache, ss, g_local.pub, g_remote[1].pub), 0);
    free(parcel);
    ng_ss_cache_free(cache);
}

static uint8_t g_expected[THREAD_REMOTES][NG_DH_BYTES];

static void *
hammer(void *arg)
{
    struct worker *w = arg;
    uint8_t out[NG_DH_BYTES];
    int i;

    for (i = 0; i < THREAD_CALLS; i++) {
        size_t r = (size_t)(i * 7 + w->index * 5) % THREAD_REMOTES;
        if (ng_ss_cache_dh(w->cache, out, &g_local, g_remote[r].pub) != NG_OK)
            w->errors++;
        else if (memcmp(out, g_expected[r], NG_DH_BYTES) != 0)
            w->wrong++;
        /* One thread keeps retiring keys under the others' feet. */
        if (w->index == 0 && i % 37 == 0)
            ng_ss_cache_forget(w->cache, g_remote[(size_t)i % THREAD_REMOTES].pub);
    }
    return NULL;
}

static void
test_threads(void **state)
{
    struct worker w[N_THREADS];
    uint64_t hits, misses;
    ng_ss_cache *c;
    size_t i;

    (void)state;
    for (i = 0; i < THREAD_REMOTES; i++)
        assert_int_equal(ng_dh(g_expected[i], g_local.priv, g_remote[i].pub), NG_OK);
    /* Fewer entries than remote keys, so that threads also evict each other's entries. */
    assert_int_equal(ng_ss_cache_new(&c, 16), NG_OK);
    for (i = 0; i < N_THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].cache = c;
        w[i].index = (int)i;
        assert_int_equal(pthread_create(&w[i].thread, NULL, hammer, &w[i]), 0);
    }
    for (i = 0; i < N_THREADS; i++) {
        assert_int_equal(pthread_join(w[i].thread, NULL), 0);
        assert_int_equal(w[i].errors, 0);
        assert_int_equal(w[i].wrong, 0);
    }
    stats(c, &hits, &misses);
    assert_true(hits + misses == (uint64_t)N_THREADS * THREAD_CALLS);
    assert_true(hits > 0);
    ng_ss_cache_free(c);
}

static int
setup(void **state)
{
    size_t i;

    (void)state;
    ng_keypair_generate(&g_local);
    ng_keypair_generate(&g_other_local);
    for (i = 0; i < N_REMOTES; i++)
        ng_keypair_generate(&g_remote[i]);
    return 0;
}

static int
teardown(void **state)
{
    size_t i;

    (void)state;
    ng_keypair_wipe(&g_local);
    ng_keypair_wipe(&g_other_local);
    for (i = 0; i < N_REMOTES; i++)
        ng_keypair_wipe(&g_remote[i]);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_ng_dh),
        cmocka_unit_test(test_hits_and_misses),
        cmocka_unit_test(test_capacity_bound),
        cmocka_unit_test(test_forget),
        cmocka_unit_test(test_small_order_not_cached),
        cmocka_unit_test(test_null_cache),
        cmocka_unit_test(test_parcels_through_cache),
        cmocka_unit_test(test_forget_then_parcel),
        cmocka_unit_test(test_forged_x_not_cached),
        cmocka_unit_test(test_unexpected_x_sender_refused_early),
        cmocka_unit_test(test_threads),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests_name("sscache", tests, setup, teardown);
}

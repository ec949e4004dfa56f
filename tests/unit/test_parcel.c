/*
 * Parcel version 1 against the contract in DESIGN.md ("Envelope (contract)")
 * and ng_parcel.h, written from the contract rather than from ng_parcel.c:
 *
 *   - round trips for every pattern and suite at the sizes where the split
 *     changes (everything in the handshake message, or meta there and the
 *     body in transport messages), and at any chunk size;
 *   - every way a parcel can be wrong gives its error code, leaves no
 *     plaintext in the output buffer, a zeroed ng_opened, and the parcel
 *     itself untouched;
 *   - tampering that keeps the framing valid (moved, swapped, dropped or
 *     spliced messages) is caught by authentication;
 *   - the plaintext prefix (version, meta_len) is checked, using parcels
 *     built directly with the Noise layer, since nobody without the keys
 *     could forge one.
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
#include "ng_noise.h"
#include "ng_parcel.h"
#include "parcel_checks.h"

/* A fixed clock: parcels are created at T0 and live for TTL. */
#define T0  UINT64_C(1700000000000)
#define TTL UINT64_C(3600000)
#define MIB ((size_t)1 << 20)

enum {
    OFF_ID = 8,
    OFF_CREATED = 24,
    OFF_EXPIRES = 32,
    OFF_RECIPIENT = 40,
    OFF_SENDER = 72,
    OFF_COUNT = 104,
    OFF_FIRST_LEN = NG_PARCEL_HEADER_BYTES,
    OFF_EPHEMERAL = NG_PARCEL_HEADER_BYTES + 2,
    TAG = 16,
    MAX_MESSAGE = 65535,
    MAX_FRAMES = 64,
};

static const char g_meta[] = "{\"content_type\":\"application/octet-stream\",\"type\":\"test.parcel\"}";
#define META     ((const uint8_t *)g_meta)
#define META_LEN (sizeof g_meta - 1)

static const ng_pattern g_patterns[] = {
    NG_PATTERN_N, NG_PATTERN_K, NG_PATTERN_X, NG_PATTERN_NPSK0, NG_PATTERN_KPSK0, NG_PATTERN_XPSK1,
};
static const ng_suite g_suites[] = {
    NG_SUITE_CHACHAPOLY_BLAKE2B, NG_SUITE_CHACHAPOLY_SHA256, NG_SUITE_CHACHAPOLY_SHA512,
    NG_SUITE_AESGCM_BLAKE2B,     NG_SUITE_AESGCM_SHA256,     NG_SUITE_AESGCM_SHA512,
};
#define N_PATTERNS (sizeof g_patterns / sizeof g_patterns[0])
#define N_SUITES   (sizeof g_suites / sizeof g_suites[0])

static ng_keypair g_recipient, g_sender, g_stranger;
static uint8_t g_psk[NG_PSK_BYTES], g_other_psk[NG_PSK_BYTES];
/* Random bytes that every body is taken from: 1 MiB and a little more. */
static uint8_t *g_body;
#define BODY_BYTES (MIB + 4096)

static int
is_k(ng_pattern p)
{
    return ng_pattern_base(p) == NG_PATTERN_K;
}

static void
put_u16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static size_t
get_u16(const uint8_t *p)
{
    return (size_t)p[0] << 8 | p[1];
}

static uint64_t
get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static size_t
min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* The usual, valid parameters for a pattern: the sender, psk and clock the contract asks for. */
static void
seal_params(ng_seal_params *sp, ng_pattern pattern, ng_suite suite, size_t body_len)
{
    memset(sp, 0, sizeof *sp);
    sp->pattern = pattern;
    sp->suite = suite;
    sp->recipient_pub = g_recipient.pub;
    sp->sender = ng_pattern_base(pattern) == NG_PATTERN_N ? NULL : &g_sender;
    sp->psk = ng_pattern_has_psk(pattern) ? g_psk : NULL;
    sp->meta = META;
    sp->meta_len = META_LEN;
    sp->body = g_body;
    sp->body_len = body_len;
    sp->created_ms = T0;
    sp->ttl_ms = TTL;
}

static void
open_params(ng_open_params *op, ng_pattern pattern)
{
    ng_open_params_init(op);
    op->recipient = &g_recipient;
    op->sender_pub = is_k(pattern) ? g_sender.pub : NULL;
    op->psk = ng_pattern_has_psk(pattern) ? g_psk : NULL;
    op->now_ms = T0 + 1000;
}

/* The split policy (ng_parcel.c): all plaintext in the handshake message when
 * it fits, else version || meta_len || meta there and the body in transport
 * messages of at most 65535 - 16 payload bytes; max_chunk caps both. */
static size_t
expected_messages(ng_pattern pattern, size_t meta_len, size_t body_len, size_t max_chunk)
{
    size_t hs_cap = MAX_MESSAGE - ng_noise_handshake_overhead(pattern);
    size_t tr_cap = MAX_MESSAGE - TAG;
    size_t plain = NG_PARCEL_PREFIX_BYTES + meta_len + body_len, hs;

    if (max_chunk != 0) {
        hs_cap = min_size(hs_cap, max_chunk);
        tr_cap = min_size(tr_cap, max_chunk);
    }
    hs = plain <= hs_cap ? plain : min_size(NG_PARCEL_PREFIX_BYTES + meta_len, hs_cap);
    return 1 + (plain - hs + tr_cap - 1) / tr_cap;
}

/* Header, n length prefixes, the handshake overhead, the plaintext and a tag per transport message. */
static size_t
expected_size(ng_pattern pattern, size_t plain, size_t n)
{
    return NG_PARCEL_HEADER_BYTES + 2 * n + ng_noise_handshake_overhead(pattern) + plain + TAG * (n - 1);
}

/* A small parcel with the usual parameters. */
static uint8_t *
seal_small(ng_pattern pattern, ng_suite suite, size_t body_len, size_t max_chunk, size_t *len)
{
    ng_seal_params sp;

    seal_params(&sp, pattern, suite, body_len);
    sp.max_chunk = max_chunk;
    return seal_ok(&sp, len);
}

/* Opens a parcel that must open, into a buffer of exactly plaintext_len bytes, and checks the body. */
static void
expect_opened(const uint8_t *parcel, size_t len, const ng_open_params *op, size_t body_len)
{
    ng_parcel_header h;
    ng_opened o;
    uint8_t *out, *copy = malloc(len);
    ng_err err;

    assert_non_null(copy);
    memcpy(copy, parcel, len);
    assert_int_equal(ng_parcel_inspect(&h, parcel, len, 0), NG_OK);
    out = malloc(h.plaintext_len);
    assert_non_null(out);
    err = ng_parcel_open(out, h.plaintext_len, &o, parcel, len, op);
    if (err != NG_OK)
        print_error("open: %s\n", ng_strerror(err));
    assert_int_equal(err, NG_OK);
    assert_int_equal(o.meta_len, META_LEN);
    assert_memory_equal(o.meta, META, META_LEN);
    assert_int_equal(o.body_len, body_len);
    if (body_len > 0)
        assert_memory_equal(o.body, g_body, body_len);
    assert_memory_equal(copy, parcel, len);
    free(out);
    free(copy);
}

/*
 * Seals and opens one parcel and checks everything the contract fixes about
 * it: size, n, every header field, meta and body, and the sender's key.
 */
static void
round_trip(ng_pattern pattern, ng_suite suite, const uint8_t *meta, size_t meta_len, size_t body_len, size_t max_chunk)
{
    ng_seal_params sp;
    ng_open_params op;
    ng_parcel_header h;
    ng_opened o;
    uint8_t id[NG_KEY_ID_BYTES], mid[NG_PARCEL_MESSAGE_ID_BYTES];
    uint8_t *parcel, *copy, *out;
    size_t n = expected_messages(pattern, meta_len, body_len, max_chunk);
    size_t plain = NG_PARCEL_PREFIX_BYTES + meta_len + body_len;
    size_t size, len;
    ng_err err;

    seal_params(&sp, pattern, suite, body_len);
    sp.meta = meta;
    sp.meta_len = meta_len;
    sp.max_chunk = max_chunk;
    randombytes_buf(mid, sizeof mid);
    sp.message_id = mid;
    size = ng_parcel_sealed_size(&sp);
    if (size != expected_size(pattern, plain, n))
        print_error("%s %s body %zu chunk %zu: sealed_size %zu, want %zu\n", ng_pattern_name(pattern),
                    ng_suite_name(suite), body_len, max_chunk, size, expected_size(pattern, plain, n));
    assert_int_equal(size, expected_size(pattern, plain, n));
    parcel = malloc(size);
    assert_non_null(parcel);
    err = ng_parcel_seal(parcel, size, &len, &sp);
    if (err != NG_OK)
        print_error("%s %s body %zu: seal: %s\n", ng_pattern_name(pattern), ng_suite_name(suite), body_len,
                    ng_strerror(err));
    assert_int_equal(err, NG_OK);
    assert_int_equal(len, size);

    assert_int_equal(ng_parcel_inspect(&h, parcel, len, 0), NG_OK);
    assert_int_equal(h.pattern, pattern);
    assert_int_equal(h.suite, suite);
    assert_int_equal(h.flags, 0);
    assert_memory_equal(h.message_id, mid, sizeof mid);
    assert_true(h.created_ms == T0);
    assert_true(h.expires_ms == T0 + TTL);
    ng_key_id(id, g_recipient.pub);
    assert_memory_equal(h.recipient_key_id, id, NG_KEY_ID_BYTES);
    if (is_k(pattern)) {
        ng_key_id(id, g_sender.pub);
        assert_memory_equal(h.sender_key_id, id, NG_KEY_ID_BYTES);
    } else {
        assert_true(sodium_is_zero(h.sender_key_id, NG_KEY_ID_BYTES));
    }
    assert_int_equal(h.n_messages, n);
    assert_int_equal(h.plaintext_len, plain);
    /* The header as bytes, where the contract puts each field. */
    assert_memory_equal(parcel, "NGP1", 4);
    assert_int_equal(parcel[4], (unsigned)pattern);
    assert_int_equal(parcel[5], (unsigned)suite);
    assert_true(get_u64(parcel + OFF_CREATED) == T0);
    assert_true(get_u64(parcel + OFF_EXPIRES) == T0 + TTL);
    assert_int_equal(get_u16(parcel + OFF_COUNT), n);

    copy = malloc(len);
    assert_non_null(copy);
    memcpy(copy, parcel, len);
    /* Exactly plaintext_len bytes, so that ASan sees any write past it. */
    out = malloc(plain);
    assert_non_null(out);
    open_params(&op, pattern);
    memset(&o, 0xa5, sizeof o);
    err = ng_parcel_open(out, plain, &o, parcel, len, &op);
    if (err != NG_OK)
        print_error("%s %s body %zu chunk %zu: open: %s\n", ng_pattern_name(pattern), ng_suite_name(suite), body_len,
                    max_chunk, ng_strerror(err));
    assert_int_equal(err, NG_OK);
    assert_memory_equal(copy, parcel, len);

    assert_int_equal(o.meta_len, meta_len);
    assert_true(o.meta >= out && o.meta + meta_len <= out + plain);
    assert_memory_equal(o.meta, meta, meta_len);
    assert_int_equal(o.body_len, body_len);
    assert_true(o.body >= out && o.body + body_len <= out + plain);
    if (body_len > 0)
        assert_memory_equal(o.body, g_body, body_len);
    assert_int_equal(o.header.pattern, pattern);
    assert_int_equal(o.header.suite, suite);
    assert_int_equal(o.header.n_messages, n);
    assert_int_equal(o.header.plaintext_len, plain);
    assert_memory_equal(o.header.message_id, mid, sizeof mid);
    assert_memory_equal(o.header.recipient_key_id, h.recipient_key_id, NG_KEY_ID_BYTES);
    assert_memory_equal(o.header.sender_key_id, h.sender_key_id, NG_KEY_ID_BYTES);
    assert_true(o.header.created_ms == T0 && o.header.expires_ms == T0 + TTL);
    if (ng_pattern_base(pattern) == NG_PATTERN_N) {
        assert_int_equal(o.has_sender, 0);
    } else {
        /* K: the key the recipient gave; X: the key learned from the parcel. */
        assert_int_equal(o.has_sender, 1);
        assert_memory_equal(o.sender_pub, g_sender.pub, NG_KEY_BYTES);
    }
    free(out);
    free(copy);
    free(parcel);
}

/* Runs fn for each of the 36 pattern and suite pairs; suites this CPU lacks must be refused by seal. */
static void
each_pair(void (*fn)(ng_pattern, ng_suite, size_t), size_t arg)
{
    size_t i, j;

    for (i = 0; i < N_PATTERNS; i++) {
        for (j = 0; j < N_SUITES; j++) {
            if (!ng_suite_available(g_suites[j])) {
                ng_seal_params sp;
                uint8_t out[1024];
                size_t len = 99;

                seal_params(&sp, g_patterns[i], g_suites[j], 0);
                assert_int_equal(ng_parcel_seal(out, sizeof out, &len, &sp), NG_ERR_UNSUPPORTED);
                assert_int_equal(len, 0);
                continue;
            }
            fn(g_patterns[i], g_suites[j], arg);
        }
    }
}

static void
rt_sizes(ng_pattern pattern, ng_suite suite, size_t body_len)
{
    round_trip(pattern, suite, META, META_LEN, body_len, 0);
}

/* The largest body that still fits the handshake message, from the contract. */
static size_t
largest_fit(ng_pattern pattern)
{
    return MAX_MESSAGE - ng_noise_handshake_overhead(pattern) - NG_PARCEL_PREFIX_BYTES - META_LEN;
}

static void
rt_boundary(ng_pattern pattern, ng_suite suite, size_t unused)
{
    size_t fit = largest_fit(pattern);

    (void)unused;
    assert_int_equal(expected_messages(pattern, META_LEN, fit, 0), 1);
    assert_int_equal(expected_messages(pattern, META_LEN, fit + 1, 0), 2);
    round_trip(pattern, suite, META, META_LEN, fit, 0);
    round_trip(pattern, suite, META, META_LEN, fit + 1, 0);
}

static void
rt_chunks(ng_pattern pattern, ng_suite suite, size_t unused)
{
    static const size_t chunks[] = {1, 7, 100};
    static const size_t bodies[] = {0, 1, 300};
    size_t i, j;

    (void)unused;
    for (i = 0; i < sizeof chunks / sizeof chunks[0]; i++)
        for (j = 0; j < sizeof bodies / sizeof bodies[0]; j++)
            round_trip(pattern, suite, META, META_LEN, bodies[j], chunks[i]);
}

static void
test_overhead(void **state)
{
    (void)state;
    /* e and the payload tag; X adds its encrypted static key. */
    assert_int_equal(ng_noise_handshake_overhead(NG_PATTERN_N), 48);
    assert_int_equal(ng_noise_handshake_overhead(NG_PATTERN_K), 48);
    assert_int_equal(ng_noise_handshake_overhead(NG_PATTERN_NPSK0), 48);
    assert_int_equal(ng_noise_handshake_overhead(NG_PATTERN_KPSK0), 48);
    assert_int_equal(ng_noise_handshake_overhead(NG_PATTERN_X), 96);
    assert_int_equal(ng_noise_handshake_overhead(NG_PATTERN_XPSK1), 96);
}

static void
test_round_trip_empty_and_one(void **state)
{
    (void)state;
    each_pair(rt_sizes, 0);
    each_pair(rt_sizes, 1);
}

static void
test_round_trip_handshake_boundary(void **state)
{
    (void)state;
    each_pair(rt_boundary, 0);
}

static void
test_round_trip_1mib(void **state)
{
    (void)state;
    each_pair(rt_sizes, MIB);
}

static void
test_round_trip_any_chunk(void **state)
{
    (void)state;
    each_pair(rt_chunks, 0);
}

/* meta at its limit no longer fits the handshake message and must straddle into transport messages. */
static void
test_round_trip_max_meta(void **state)
{
    static const char head[] = "{\"content_type\":\"text/plain\",\"pad\":\"";
    uint8_t *meta = malloc(NG_PARCEL_MAX_META + 1);
    size_t i;
    ng_seal_params sp;
    size_t len = 99;

    (void)state;
    assert_non_null(meta);
    memcpy(meta, head, sizeof head - 1);
    memset(meta + sizeof head - 1, 'x', NG_PARCEL_MAX_META - (sizeof head - 1) - 2);
    memcpy(meta + NG_PARCEL_MAX_META - 2, "\"}", 2);
    for (i = 0; i < N_PATTERNS; i++) {
        round_trip(g_patterns[i], NG_SUITE_DEFAULT, meta, NG_PARCEL_MAX_META, 0, 0);
        round_trip(g_patterns[i], NG_SUITE_DEFAULT, meta, NG_PARCEL_MAX_META, 1000, 0);
        round_trip(g_patterns[i], NG_SUITE_DEFAULT, meta, NG_PARCEL_MAX_META, 1000, 30000);
    }
    /* One byte more cannot be described by the u16 meta_len. */
    seal_params(&sp, NG_PATTERN_N, NG_SUITE_DEFAULT, 0);
    meta[NG_PARCEL_MAX_META] = ' ';
    sp.meta = meta;
    sp.meta_len = NG_PARCEL_MAX_META + 1;
    assert_int_equal(ng_parcel_sealed_size(&sp), 0);
    {
        uint8_t out[256];
        assert_int_not_equal(ng_parcel_seal(out, sizeof out, &len, &sp), NG_OK);
        assert_int_equal(len, 0);
    }
    free(meta);
}

/* n is a u16: 65535 messages is the most a parcel can hold, and seal must say so rather than wrap. */
static void
test_max_messages(void **state)
{
    size_t body = NG_PARCEL_MAX_MESSAGES - NG_PARCEL_PREFIX_BYTES - META_LEN, len = 99;
    ng_seal_params sp;
    uint8_t *parcel;

    (void)state;
    /* With max_chunk 1 every plaintext byte is a message of its own. */
    assert_int_equal(expected_messages(NG_PATTERN_N, META_LEN, body, 1), NG_PARCEL_MAX_MESSAGES);
    round_trip(NG_PATTERN_N, NG_SUITE_DEFAULT, META, META_LEN, body, 1);

    seal_params(&sp, NG_PATTERN_N, NG_SUITE_DEFAULT, body + 1);
    sp.max_chunk = 1;
    assert_int_equal(ng_parcel_sealed_size(&sp), 0);
    parcel = calloc(1, 4 * MIB);
    assert_non_null(parcel);
    assert_int_equal(ng_parcel_seal(parcel, 4 * MIB, &len, &sp), NG_ERR_TOO_LARGE);
    assert_int_equal(len, 0);
    /* Nothing that could pass for a parcel is left behind. */
    assert_true(sodium_is_zero(parcel, 4 * MIB));
    free(parcel);
}

/* Seal with the default suite (0) writes suite 1. */
static void
test_default_suite(void **state)
{
    ng_seal_params sp;
    ng_parcel_header h;
    ng_open_params op;
    uint8_t *parcel;
    size_t len;

    (void)state;
    seal_params(&sp, NG_PATTERN_X, 0, 10);
    parcel = seal_ok(&sp, &len);
    assert_int_equal(ng_parcel_inspect(&h, parcel, len, 0), NG_OK);
    assert_int_equal(h.suite, NG_SUITE_CHACHAPOLY_BLAKE2B);
    open_params(&op, NG_PATTERN_X);
    expect_opened(parcel, len, &op, 10);
    free(parcel);
}

/* N has no sender: a sender key passed anyway must not leak into the header. */
static void
test_n_ignores_sender(void **state)
{
    ng_seal_params sp;
    ng_parcel_header h;
    ng_open_params op;
    uint8_t *parcel;
    size_t len;

    (void)state;
    seal_params(&sp, NG_PATTERN_N, NG_SUITE_DEFAULT, 5);
    sp.sender = &g_sender;
    parcel = seal_ok(&sp, &len);
    assert_int_equal(ng_parcel_inspect(&h, parcel, len, 0), NG_OK);
    assert_true(sodium_is_zero(h.sender_key_id, NG_KEY_ID_BYTES));
    assert_true(sodium_is_zero(parcel + OFF_SENDER, NG_KEY_ID_BYTES));
    open_params(&op, NG_PATTERN_N);
    expect_opened(parcel, len, &op, 5);
    free(parcel);
}

/* Empty meta and body may come as NULL pointers, also when the split is forced small. */
static void
test_null_meta_and_body(void **state)
{
    static const size_t chunks[] = {0, 1, 2};
    ng_seal_params sp;
    ng_open_params op;
    ng_opened o;
    uint8_t *parcel, out[NG_PARCEL_PREFIX_BYTES];
    size_t i, c, len;

    (void)state;
    for (i = 0; i < N_PATTERNS; i++) {
        for (c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            seal_params(&sp, g_patterns[i], NG_SUITE_DEFAULT, 0);
            sp.meta = NULL;
            sp.meta_len = 0;
            sp.body = NULL;
            sp.max_chunk = chunks[c];
            parcel = seal_ok(&sp, &len);
            assert_int_equal(get_u16(parcel + OFF_COUNT), expected_messages(g_patterns[i], 0, 0, chunks[c]));
            open_params(&op, g_patterns[i]);
            assert_int_equal(ng_parcel_open(out, sizeof out, &o, parcel, len, &op), NG_OK);
            assert_int_equal(o.meta_len, 0);
            assert_int_equal(o.body_len, 0);
            free(parcel);
        }
    }
}

static void
test_message_id(void **state)
{
    uint8_t mid[NG_PARCEL_MESSAGE_ID_BYTES];
    ng_seal_params sp;
    ng_parcel_header h1, h2;
    uint8_t *a, *b;
    size_t alen, blen;

    (void)state;
    randombytes_buf(mid, sizeof mid);
    seal_params(&sp, NG_PATTERN_N, NG_SUITE_DEFAULT, 3);
    sp.message_id = mid;
    a = seal_ok(&sp, &alen);
    b = seal_ok(&sp, &blen);
    assert_memory_equal(a + OFF_ID, mid, sizeof mid);
    assert_memory_equal(b + OFF_ID, mid, sizeof mid);
    /* Same id, same header; the ephemeral key still differs. */
    assert_memory_equal(a, b, NG_PARCEL_HEADER_BYTES);
    assert_memory_not_equal(a + OFF_EPHEMERAL, b + OFF_EPHEMERAL, NG_KEY_BYTES);
    free(a);
    free(b);

    sp.message_id = NULL;
    a = seal_ok(&sp, &alen);
    b = seal_ok(&sp, &blen);
    assert_int_equal(ng_parcel_inspect(&h1, a, alen, 0), NG_OK);
    assert_int_equal(ng_parcel_inspect(&h2, b, blen, 0), NG_OK);
    assert_memory_not_equal(h1.message_id, h2.message_id, NG_PARCEL_MESSAGE_ID_BYTES);
    assert_false(sodium_is_zero(h1.message_id, NG_PARCEL_MESSAGE_ID_BYTES));
    assert_false(sodium_is_zero(h2.message_id, NG_PARCEL_MESSAGE_ID_BYTES));
    free(a);
    free(b);
}

/* created 0 means now, and now_ms 0 on open means the clock. */
static void
test_created_defaults_to_now(void **state)
{
    ng_seal_params sp;
    ng_open_params op;
    ng_parcel_header h;
    uint64_t before, after;
    uint8_t *parcel;
    size_t len;

    (void)state;
    seal_params(&sp, NG_PATTERN_K, NG_SUITE_DEFAULT, 7);
    sp.created_ms = 0;
    before = ng_parcel_now_ms();
    parcel = seal_ok(&sp, &len);
    after = ng_parcel_now_ms();
    assert_int_equal(ng_parcel_inspect(&h, parcel, len, 0), NG_OK);
    assert_true(h.created_ms >= before && h.created_ms <= after);
    assert_true(h.expires_ms == h.created_ms + TTL);
    open_params(&op, NG_PATTERN_K);
    op.now_ms = 0;
    expect_opened(parcel, len, &op, 7);
    free(parcel);
}

/* A seal that fails writes no length and no parcel. */
static void
expect_seal_error(const ng_seal_params *sp, int want, const char *what)
{
    uint8_t out[2048];
    size_t len = 99;
    ng_err err;

    memset(out, 0, sizeof out);
    err = ng_parcel_seal(out, sizeof out, &len, sp);
    if ((want == ANY_ERROR && err == NG_OK) || (want != ANY_ERROR && (int)err != want)) {
        print_error("seal %s: got %d (%s), want %d\n", what, (int)err, ng_strerror(err), want);
        fail();
    }
    assert_int_equal(len, 0);
    assert_true(sodium_is_zero(out, sizeof out));
}

/* ng_parcel.h: created < expires <= INT64_MAX, so that no signed consumer of the times sees them negative. */
static void
test_times_past_int64_max(void **state)
{
    ng_seal_params sp;
    ng_parcel_header h;
    ng_open_params op;
    uint8_t *parcel;
    size_t len;

    (void)state;
    parcel = seal_small(NG_PATTERN_N, NG_SUITE_DEFAULT, 10, 0, &len);
    put_u16(parcel + OFF_EXPIRES, 0x8000);
    assert_int_equal(ng_parcel_inspect(&h, parcel, len, 0), NG_ERR_MALFORMED);
    open_params(&op, NG_PATTERN_N);
    op.ignore_expiry = 1;
    expect_refused(parcel, len, &op, NG_ERR_MALFORMED, "expires past INT64_MAX", 0);
    free(parcel);

    seal_params(&sp, NG_PATTERN_N, NG_SUITE_DEFAULT, 10);
    sp.created_ms = (uint64_t)INT64_MAX - 5;
    sp.ttl_ms = 10;
    expect_seal_error(&sp, ANY_ERROR, "expires past INT64_MAX");
    sp.ttl_ms = 5;
    parcel = seal_ok(&sp, &len);
    assert_int_equal(ng_parcel_inspect(&h, parcel, len, 0), NG_OK);
    assert_true(h.expires_ms == (uint64_t)INT64_MAX);
    free(parcel);
}

/*
 * The code each header byte flip must give when opened one second after
 * creation, from the contract: magic, pattern, suite and flags are checked
 * as such, created and expires by the time rules, key ids against the keys,
 * n by the framing; everything else is caught by the prologue (AUTH).
 */
static int
header_flip_code(ng_pattern pattern, const uint8_t *flipped, size_t off)
{
    uint64_t created = get_u64(flipped + OFF_CREATED), expires = get_u64(flipped + OFF_EXPIRES);
    uint64_t now = T0 + 1000;

    if (off < 4)
        return NG_ERR_BAD_MAGIC;
    if (off == 4)
        return ng_pattern_valid(flipped[4]) ? ANY_ERROR : NG_ERR_BAD_PATTERN;
    if (off == 5) {
        if (!ng_suite_valid(flipped[5]))
            return NG_ERR_BAD_SUITE;
        return ng_suite_available((ng_suite)flipped[5]) ? NG_ERR_AUTH : NG_ERR_UNSUPPORTED;
    }
    if (off < OFF_ID)
        return NG_ERR_BAD_FLAGS;
    if (off < OFF_CREATED)
        return NG_ERR_AUTH;
    if (off < OFF_RECIPIENT) {
        if (expires <= created || expires > INT64_MAX)
            return NG_ERR_MALFORMED;
        if (now >= expires)
            return NG_ERR_EXPIRED;
        if (created > now + NG_PARCEL_DEFAULT_SKEW_MS)
            return NG_ERR_NOT_YET_VALID;
        return NG_ERR_AUTH;
    }
    if (off < OFF_SENDER)
        return NG_ERR_WRONG_RECIPIENT;
    if (off < OFF_COUNT)
        return is_k(pattern) ? NG_ERR_WRONG_SENDER : ANY_ERROR;
    return NG_ERR_MALFORMED;
}

static void
test_header_byte_flips(void **state)
{
    static const ng_suite suites[] = {NG_SUITE_CHACHAPOLY_BLAKE2B, NG_SUITE_CHACHAPOLY_SHA256, NG_SUITE_AESGCM_SHA512};
    size_t i, s, off, len;
    ng_open_params op;
    ng_parcel_header h;
    char what[64];

    (void)state;
    for (i = 0; i < N_PATTERNS; i++) {
        for (s = 0; s < sizeof suites / sizeof suites[0]; s++) {
            uint8_t *parcel, *bad;
            if (!ng_suite_available(suites[s]))
                continue;
            parcel = seal_small(g_patterns[i], suites[s], 20, 0, &len);
            bad = malloc(len);
            assert_non_null(bad);
            open_params(&op, g_patterns[i]);
            snprintf(what, sizeof what, "%s %s header flip", ng_pattern_name(g_patterns[i]), ng_suite_name(suites[s]));
            for (off = 0; off < NG_PARCEL_HEADER_BYTES; off++) {
                int want;
                memcpy(bad, parcel, len);
                bad[off] ^= 0x01;
                want = header_flip_code(g_patterns[i], bad, off);
                expect_refused(bad, len, &op, want, what, off);
                /* What needs no key must be caught by inspect too. */
                if (want == NG_ERR_BAD_MAGIC || want == NG_ERR_BAD_PATTERN || want == NG_ERR_BAD_SUITE ||
                    want == NG_ERR_BAD_FLAGS || want == NG_ERR_MALFORMED)
                    assert_int_equal(ng_parcel_inspect(&h, bad, len, 0), want);
                /* A sender key id where the pattern has none breaks inspect's own rule. */
                if (off >= OFF_SENDER && off < OFF_COUNT && !is_k(g_patterns[i]))
                    assert_int_not_equal(ng_parcel_inspect(&h, bad, len, 0), NG_OK);
            }
            free(bad);
            free(parcel);
        }
    }
}

/* Offsets of the length prefixes of a well-formed parcel, as flags in `is_prefix`. */
static void
mark_prefixes(const uint8_t *parcel, size_t len, uint8_t *is_prefix)
{
    size_t pos = NG_PARCEL_HEADER_BYTES, n = get_u16(parcel + OFF_COUNT), i;

    memset(is_prefix, 0, len);
    for (i = 0; i < n; i++) {
        assert_true(pos + 2 <= len);
        is_prefix[pos] = is_prefix[pos + 1] = 1;
        pos += 2 + get_u16(parcel + pos);
    }
    assert_int_equal(pos, len);
}

/*
 * Every byte after the header, flipped in two bit positions. A length
 * prefix that changes breaks the framing (the total no longer adds up);
 * anything else must fail authentication, including the top bit of the
 * ephemeral key, which X25519 ignores but the handshake hash does not.
 */
static void
flip_every_message_byte(ng_pattern pattern, size_t body_len, size_t max_chunk)
{
    static const uint8_t masks[] = {0x01, 0x80};
    size_t len, off, m;
    uint8_t *parcel = seal_small(pattern, NG_SUITE_DEFAULT, body_len, max_chunk, &len);
    uint8_t *bad = malloc(len), *is_prefix = malloc(len);
    ng_open_params op;
    char what[64];

    assert_non_null(bad);
    assert_non_null(is_prefix);
    mark_prefixes(parcel, len, is_prefix);
    open_params(&op, pattern);
    snprintf(what, sizeof what, "%s chunk %zu message flip", ng_pattern_name(pattern), max_chunk);
    for (off = NG_PARCEL_HEADER_BYTES; off < len; off++) {
        for (m = 0; m < sizeof masks; m++) {
            memcpy(bad, parcel, len);
            bad[off] ^= masks[m];
            if (is_prefix[off]) {
                /* Almost always MALFORMED; the shifted framing could by chance add up, and then it is AUTH. */
                ng_err err = expect_refused(bad, len, &op, ANY_ERROR, what, off);
                assert_true(err == NG_ERR_MALFORMED || err == NG_ERR_AUTH);
            } else {
                expect_refused(bad, len, &op, NG_ERR_AUTH, what, off);
            }
        }
    }
    free(is_prefix);
    free(bad);
    free(parcel);
}

static void
test_message_byte_flips(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < N_PATTERNS; i++) {
        flip_every_message_byte(g_patterns[i], 10, 0);
        /* Several transport messages: a bad tag in the last must not leave the earlier plaintext behind. */
        flip_every_message_byte(g_patterns[i], 40, 16);
    }
}

static void
test_truncation(void **state)
{
    size_t i, cut, len;
    ng_open_params op;
    ng_parcel_header h;
    char what[64];

    (void)state;
    for (i = 0; i < N_PATTERNS; i++) {
        uint8_t *parcel = seal_small(g_patterns[i], NG_SUITE_DEFAULT, 40, 16, &len);
        open_params(&op, g_patterns[i]);
        snprintf(what, sizeof what, "%s truncated to", ng_pattern_name(g_patterns[i]));
        for (cut = 0; cut < len; cut++) {
            /* A copy of exactly `cut` bytes, so that ASan catches a read past the end. */
            uint8_t *t = malloc(cut + 1);
            assert_non_null(t);
            memcpy(t, parcel, cut);
            if (cut < 4) {
                ng_err err = expect_refused(t, cut, &op, ANY_ERROR, what, cut);
                assert_true(err == NG_ERR_BAD_MAGIC || err == NG_ERR_MALFORMED);
            } else {
                expect_refused(t, cut, &op, NG_ERR_MALFORMED, what, cut);
                assert_int_equal(ng_parcel_inspect(&h, t, cut, 0), NG_ERR_MALFORMED);
            }
            free(t);
        }
        free(parcel);
    }
}

static void
test_trailing_bytes(void **state)
{
    static const size_t extra[] = {1, 100};
    size_t i, e, len;
    ng_open_params op;
    ng_parcel_header h;

    (void)state;
    for (i = 0; i < N_PATTERNS; i++) {
        uint8_t *parcel = seal_small(g_patterns[i], NG_SUITE_DEFAULT, 40, 0, &len);
        open_params(&op, g_patterns[i]);
        for (e = 0; e < sizeof extra / sizeof extra[0]; e++) {
            uint8_t *t = malloc(len + extra[e]);
            assert_non_null(t);
            memcpy(t, parcel, len);
            memset(t + len, 0, extra[e]);
            expect_refused(t, len + extra[e], &op, NG_ERR_MALFORMED, "trailing bytes", extra[e]);
            assert_int_equal(ng_parcel_inspect(&h, t, len + extra[e], 0), NG_ERR_MALFORMED);
            free(t);
        }
        free(parcel);
    }
}

static void
test_wrong_recipient(void **state)
{
    size_t i, len;
    ng_open_params op;
    ng_keypair impostor;

    (void)state;
    /* An impostor with the recipient's public key but another private key passes the key id check. */
    memcpy(impostor.pub, g_recipient.pub, NG_KEY_BYTES);
    memcpy(impostor.priv, g_stranger.priv, NG_KEY_BYTES);
    for (i = 0; i < N_PATTERNS; i++) {
        uint8_t *parcel = seal_small(g_patterns[i], NG_SUITE_DEFAULT, 10, 0, &len);
        open_params(&op, g_patterns[i]);
        op.recipient = &g_stranger;
        expect_refused(parcel, len, &op, NG_ERR_WRONG_RECIPIENT, ng_pattern_name(g_patterns[i]), 0);
        op.recipient = &impostor;
        expect_refused(parcel, len, &op, NG_ERR_AUTH, ng_pattern_name(g_patterns[i]), 1);
        op.recipient = NULL;
        expect_refused(parcel, len, &op, NG_ERR_INVALID_ARG, ng_pattern_name(g_patterns[i]), 2);
        free(parcel);
    }
    ng_keypair_wipe(&impostor);
}

static void
test_psk_errors(void **state)
{
    size_t i, len;
    ng_open_params op;

    (void)state;
    for (i = 0; i < N_PATTERNS; i++) {
        ng_pattern p = g_patterns[i];
        uint8_t *parcel = seal_small(p, NG_SUITE_DEFAULT, 10, 0, &len);
        open_params(&op, p);
        if (ng_pattern_has_psk(p)) {
            op.psk = g_other_psk;
            expect_refused(parcel, len, &op, NG_ERR_AUTH, "wrong psk", i);
            op.psk = NULL;
            expect_refused(parcel, len, &op, NG_ERR_PSK_REQUIRED, "missing psk", i);
        } else {
            op.psk = g_psk;
            expect_refused(parcel, len, &op, NG_ERR_PSK_REQUIRED, "psk for a plain pattern", i);
        }
        free(parcel);
    }
}

static void
test_k_sender_errors(void **state)
{
    static const ng_pattern ks[] = {NG_PATTERN_K, NG_PATTERN_KPSK0};
    ng_keypair forger;
    ng_seal_params sp;
    ng_open_params op;
    uint8_t *parcel;
    size_t i, len;

    (void)state;
    for (i = 0; i < 2; i++) {
        parcel = seal_small(ks[i], NG_SUITE_DEFAULT, 10, 0, &len);
        open_params(&op, ks[i]);
        op.sender_pub = g_stranger.pub;
        expect_refused(parcel, len, &op, NG_ERR_WRONG_SENDER, "K other sender", i);
        op.sender_pub = NULL;
        expect_refused(parcel, len, &op, NG_ERR_SENDER_REQUIRED, "K no sender", i);
        free(parcel);

        /* A forger who claims the sender's key id (and public key) without its
         * private key: only the ss token can tell, and it must. */
        memcpy(forger.pub, g_sender.pub, NG_KEY_BYTES);
        memcpy(forger.priv, g_stranger.priv, NG_KEY_BYTES);
        seal_params(&sp, ks[i], NG_SUITE_DEFAULT, 10);
        sp.sender = &forger;
        parcel = seal_ok(&sp, &len);
        open_params(&op, ks[i]);
        expect_refused(parcel, len, &op, NG_ERR_AUTH, "K forged sender", i);
        free(parcel);
    }
    ng_keypair_wipe(&forger);
}

static void
test_x_expected_sender(void **state)
{
    static const ng_pattern xs[] = {NG_PATTERN_X, NG_PATTERN_XPSK1};
    ng_seal_params sp;
    ng_open_params op;
    uint8_t *parcel;
    size_t i, len;

    (void)state;
    for (i = 0; i < 2; i++) {
        parcel = seal_small(xs[i], NG_SUITE_DEFAULT, 10, 0, &len);
        open_params(&op, xs[i]);
        op.sender_pub = g_stranger.pub;
        expect_refused(parcel, len, &op, NG_ERR_WRONG_SENDER, "X other expected sender", i);
        op.sender_pub = g_sender.pub;
        expect_opened(parcel, len, &op, 10);
        free(parcel);

        /* Sealed by the stranger, who is not the one expected. */
        seal_params(&sp, xs[i], NG_SUITE_DEFAULT, 10);
        sp.sender = &g_stranger;
        parcel = seal_ok(&sp, &len);
        open_params(&op, xs[i]);
        op.sender_pub = g_sender.pub;
        expect_refused(parcel, len, &op, NG_ERR_WRONG_SENDER, "X from the stranger", i);
        free(parcel);
    }
}

static void
test_n_expected_sender(void **state)
{
    static const ng_pattern ns[] = {NG_PATTERN_N, NG_PATTERN_NPSK0};
    ng_open_params op;
    uint8_t *parcel;
    size_t i, len;

    (void)state;
    for (i = 0; i < 2; i++) {
        parcel = seal_small(ns[i], NG_SUITE_DEFAULT, 10, 0, &len);
        open_params(&op, ns[i]);
        op.sender_pub = g_sender.pub;
        expect_refused(parcel, len, &op, NG_ERR_WRONG_SENDER, "N with an expected sender", i);
        free(parcel);
    }
}

/* created - skew <= now < expires, for each pattern. */
static void
test_expiry(void **state)
{
    const uint64_t skew = NG_PARCEL_DEFAULT_SKEW_MS;
    ng_open_params op;
    uint8_t *parcel;
    size_t i, len;

    (void)state;
    for (i = 0; i < N_PATTERNS; i++) {
        parcel = seal_small(g_patterns[i], NG_SUITE_DEFAULT, 10, 0, &len);
        open_params(&op, g_patterns[i]);
        assert_true(op.skew_ms == skew);

        op.now_ms = T0 + TTL;
        expect_refused(parcel, len, &op, NG_ERR_EXPIRED, "now == expires", i);
        op.now_ms = T0 + TTL + 1000000;
        expect_refused(parcel, len, &op, NG_ERR_EXPIRED, "now > expires", i);
        op.now_ms = T0 + TTL - 1;
        expect_opened(parcel, len, &op, 10);
        op.now_ms = T0;
        expect_opened(parcel, len, &op, 10);

        /* A sender clock ahead of ours by up to the skew. */
        op.now_ms = T0 - skew;
        expect_opened(parcel, len, &op, 10);
        op.now_ms = T0 - skew - 1;
        expect_refused(parcel, len, &op, NG_ERR_NOT_YET_VALID, "created = now + skew + 1", i);
        op.skew_ms = 0;
        op.now_ms = T0 - 1;
        expect_refused(parcel, len, &op, NG_ERR_NOT_YET_VALID, "skew 0, created = now + 1", i);
        op.now_ms = T0;
        expect_opened(parcel, len, &op, 10);

        /* ignore_expiry: for reading old parcels back from storage. */
        open_params(&op, g_patterns[i]);
        op.ignore_expiry = 1;
        op.now_ms = T0 + TTL;
        expect_opened(parcel, len, &op, 10);
        op.now_ms = T0 + 100 * TTL;
        expect_opened(parcel, len, &op, 10);
        free(parcel);
    }
}

static void
test_lifetime(void **state)
{
    ng_open_params op;
    uint8_t *parcel;
    size_t i, len;

    (void)state;
    for (i = 0; i < N_PATTERNS; i++) {
        parcel = seal_small(g_patterns[i], NG_SUITE_DEFAULT, 10, 0, &len);
        open_params(&op, g_patterns[i]);
        op.max_lifetime_ms = TTL - 1;
        expect_refused(parcel, len, &op, NG_ERR_LIFETIME, "lifetime over the maximum", i);
        op.max_lifetime_ms = TTL;
        expect_opened(parcel, len, &op, 10);
        op.max_lifetime_ms = TTL + 1;
        expect_opened(parcel, len, &op, 10);
        free(parcel);
    }
}

static void
test_max_bytes(void **state)
{
    ng_open_params op;
    ng_parcel_header h;
    uint8_t *parcel;
    size_t i, len;

    (void)state;
    for (i = 0; i < N_PATTERNS; i++) {
        parcel = seal_small(g_patterns[i], NG_SUITE_DEFAULT, 300, 0, &len);
        open_params(&op, g_patterns[i]);
        op.max_bytes = len - 1;
        expect_refused(parcel, len, &op, NG_ERR_TOO_LARGE, "over max_bytes", i);
        assert_int_equal(ng_parcel_inspect(&h, parcel, len, len - 1), NG_ERR_TOO_LARGE);
        op.max_bytes = len;
        expect_opened(parcel, len, &op, 300);
        assert_int_equal(ng_parcel_inspect(&h, parcel, len, len), NG_OK);
        free(parcel);
    }
}

static void
test_buffer_too_small(void **state)
{
    ng_open_params op;
    ng_parcel_header h;
    ng_opened o;
    uint8_t *parcel, *out;
    size_t i, len;

    (void)state;
    for (i = 0; i < N_PATTERNS; i++) {
        parcel = seal_small(g_patterns[i], NG_SUITE_DEFAULT, 300, 100, &len);
        assert_int_equal(ng_parcel_inspect(&h, parcel, len, 0), NG_OK);
        open_params(&op, g_patterns[i]);
        out = calloc(1, h.plaintext_len);
        assert_non_null(out);
        memset(&o, 0xa5, sizeof o);
        assert_int_equal(ng_parcel_open(out, h.plaintext_len - 1, &o, parcel, len, &op), NG_ERR_BUFFER_TOO_SMALL);
        assert_true(sodium_is_zero(out, h.plaintext_len));
        assert_true(sodium_is_zero((const unsigned char *)&o, sizeof o));
        assert_int_equal(ng_parcel_open(NULL, 0, &o, parcel, len, &op), NG_ERR_BUFFER_TOO_SMALL);
        assert_int_equal(ng_parcel_open(out, h.plaintext_len, &o, parcel, len, &op), NG_OK);
        assert_int_equal(o.body_len, 300);
        assert_memory_equal(o.body, g_body, 300);
        free(out);
        free(parcel);
    }
}

static void
test_seal_errors(void **state)
{
    static const unsigned bad_patterns[] = {0x00, 0x04, 0x7f, 0x80, 0x84, 0xc1, 0xff};
    static const unsigned bad_suites[] = {7, 8, 0x41, 0xff};
    ng_seal_params sp;
    size_t i, len = 99;
    uint8_t out[2048];

    (void)state;
    for (i = 0; i < N_PATTERNS; i++) {
        ng_pattern p = g_patterns[i];
        seal_params(&sp, p, NG_SUITE_DEFAULT, 10);
        sp.psk = ng_pattern_has_psk(p) ? NULL : g_psk;
        expect_seal_error(&sp, NG_ERR_PSK_REQUIRED, ng_pattern_has_psk(p) ? "psk missing" : "psk given");

        seal_params(&sp, p, NG_SUITE_DEFAULT, 10);
        sp.ttl_ms = 0;
        expect_seal_error(&sp, NG_ERR_INVALID_ARG, "ttl 0");

        /* created + ttl would wrap around. */
        seal_params(&sp, p, NG_SUITE_DEFAULT, 10);
        sp.created_ms = UINT64_MAX - 10;
        sp.ttl_ms = 100;
        expect_seal_error(&sp, ANY_ERROR, "expires overflows");

        seal_params(&sp, p, NG_SUITE_DEFAULT, 10);
        sp.recipient_pub = NULL;
        expect_seal_error(&sp, NG_ERR_INVALID_ARG, "no recipient");

        if (ng_pattern_base(p) != NG_PATTERN_N) {
            seal_params(&sp, p, NG_SUITE_DEFAULT, 10);
            sp.sender = NULL;
            expect_seal_error(&sp, NG_ERR_INVALID_ARG, "no sender for K or X");
        }

        seal_params(&sp, p, NG_SUITE_DEFAULT, 10);
        sp.meta = NULL;
        expect_seal_error(&sp, NG_ERR_INVALID_ARG, "meta_len without meta");
        seal_params(&sp, p, NG_SUITE_DEFAULT, 10);
        sp.body = NULL;
        expect_seal_error(&sp, NG_ERR_INVALID_ARG, "body_len without body");

        seal_params(&sp, p, NG_SUITE_DEFAULT, 10);
        assert_int_equal(ng_parcel_seal(out, ng_parcel_sealed_size(&sp) - 1, &len, &sp), NG_ERR_BUFFER_TOO_SMALL);
        assert_int_equal(len, 0);

        for (size_t s = 0; s < sizeof bad_suites / sizeof bad_suites[0]; s++) {
            seal_params(&sp, p, (ng_suite)bad_suites[s], 10);
            expect_seal_error(&sp, NG_ERR_BAD_SUITE, "bad suite");
        }
    }
    for (i = 0; i < sizeof bad_patterns / sizeof bad_patterns[0]; i++) {
        seal_params(&sp, NG_PATTERN_N, NG_SUITE_DEFAULT, 10);
        sp.pattern = (ng_pattern)bad_patterns[i];
        sp.sender = &g_sender;
        expect_seal_error(&sp, NG_ERR_BAD_PATTERN, "bad pattern");
    }
}

/* A parcel cut into its messages, to be put back together differently. */
struct framed {
    uint8_t header[NG_PARCEL_HEADER_BYTES];
    size_t n;
    uint8_t *msg[MAX_FRAMES];
    size_t len[MAX_FRAMES];
};

static void
unframe(struct framed *f, const uint8_t *parcel, size_t len)
{
    size_t pos = NG_PARCEL_HEADER_BYTES, i;

    memcpy(f->header, parcel, NG_PARCEL_HEADER_BYTES);
    f->n = get_u16(parcel + OFF_COUNT);
    assert_true(f->n <= MAX_FRAMES);
    for (i = 0; i < f->n; i++) {
        f->len[i] = get_u16(parcel + pos);
        pos += 2;
        f->msg[i] = malloc(f->len[i] + 2);
        assert_non_null(f->msg[i]);
        memcpy(f->msg[i], parcel + pos, f->len[i]);
        pos += f->len[i];
    }
    assert_int_equal(pos, len);
}

/* The header as it stands (n is not touched), then each message with its length. */
static uint8_t *
reframe(const struct framed *f, size_t *len)
{
    size_t total = NG_PARCEL_HEADER_BYTES, i;
    uint8_t *b, *w;

    for (i = 0; i < f->n; i++)
        total += 2 + f->len[i];
    b = malloc(total);
    assert_non_null(b);
    memcpy(b, f->header, NG_PARCEL_HEADER_BYTES);
    w = b + NG_PARCEL_HEADER_BYTES;
    for (i = 0; i < f->n; i++) {
        put_u16(w, f->len[i]);
        memcpy(w + 2, f->msg[i], f->len[i]);
        w += 2 + f->len[i];
    }
    *len = total;
    return b;
}

static void
framed_free(struct framed *f)
{
    size_t i;

    for (i = 0; i < f->n; i++)
        free(f->msg[i]);
    f->n = 0;
}

/* Moves the boundary between messages i and i + 1 by one byte: forward (the last byte of i becomes the first of
 * i + 1) or backward. Both length prefixes change, so the framing stays valid. */
static void
move_byte(struct framed *f, size_t i, int forward)
{
    uint8_t *a = f->msg[i], *b = f->msg[i + 1];

    if (forward) {
        memmove(b + 1, b, f->len[i + 1]);
        b[0] = a[f->len[i] - 1];
        f->len[i]--;
        f->len[i + 1]++;
    } else {
        a[f->len[i]] = b[0];
        memmove(b, b + 1, f->len[i + 1] - 1);
        f->len[i]++;
        f->len[i + 1]--;
    }
}

static void
set_count(struct framed *f, size_t n)
{
    put_u16(f->header + OFF_COUNT, n);
}

/* Body 300, chunk 100: a handshake message carrying the meta, then three transport messages of 100 bytes. */
static uint8_t *
seal_four_messages(ng_pattern pattern, size_t *len)
{
    uint8_t *parcel = seal_small(pattern, NG_SUITE_DEFAULT, 300, 100, len);

    assert_int_equal(get_u16(parcel + OFF_COUNT), 4);
    return parcel;
}

static void
test_reframed_messages(void **state)
{
    static const struct {
        size_t i;
        int forward;
    } moves[] = {{0, 1}, {0, 0}, {1, 1}, {1, 0}, {2, 1}, {2, 0}};
    struct framed f;
    ng_open_params op;
    ng_parcel_header h;
    uint8_t *parcel, *bad;
    size_t p, m, len, blen;

    (void)state;
    for (p = 0; p < N_PATTERNS; p++) {
        parcel = seal_four_messages(g_patterns[p], &len);
        open_params(&op, g_patterns[p]);

        /* Unchanged, the round trip through unframe and reframe must give the parcel back. */
        unframe(&f, parcel, len);
        bad = reframe(&f, &blen);
        assert_int_equal(blen, len);
        assert_memory_equal(bad, parcel, len);
        free(bad);
        framed_free(&f);

        for (m = 0; m < sizeof moves / sizeof moves[0]; m++) {
            unframe(&f, parcel, len);
            move_byte(&f, moves[m].i, moves[m].forward);
            bad = reframe(&f, &blen);
            assert_int_equal(blen, len);
            /* The framing is valid: only authentication can catch it. */
            assert_int_equal(ng_parcel_inspect(&h, bad, blen, 0), NG_OK);
            expect_refused(bad, blen, &op, NG_ERR_AUTH, "moved byte", m);
            free(bad);
            framed_free(&f);
        }
        free(parcel);
    }
}

static void
test_swapped_messages(void **state)
{
    static const size_t swaps[][2] = {{1, 2}, {2, 3}, {1, 3}};
    struct framed f;
    ng_open_params op;
    uint8_t *parcel, *bad, *tmp;
    size_t p, s, len, blen;

    (void)state;
    for (p = 0; p < N_PATTERNS; p++) {
        parcel = seal_four_messages(g_patterns[p], &len);
        open_params(&op, g_patterns[p]);
        for (s = 0; s < sizeof swaps / sizeof swaps[0]; s++) {
            size_t a = swaps[s][0], b = swaps[s][1], l;
            unframe(&f, parcel, len);
            tmp = f.msg[a];
            f.msg[a] = f.msg[b];
            f.msg[b] = tmp;
            l = f.len[a];
            f.len[a] = f.len[b];
            f.len[b] = l;
            bad = reframe(&f, &blen);
            expect_refused(bad, blen, &op, NG_ERR_AUTH, "swapped messages", s);
            free(bad);
            framed_free(&f);
        }
        free(parcel);
    }
}

/* n is in the prologue: dropping or adding a transport message and fixing n breaks the handshake. */
static void
test_dropped_and_added_messages(void **state)
{
    struct framed f;
    ng_open_params op;
    uint8_t *parcel, *bad;
    size_t p, len, blen;

    (void)state;
    for (p = 0; p < N_PATTERNS; p++) {
        parcel = seal_four_messages(g_patterns[p], &len);
        open_params(&op, g_patterns[p]);

        unframe(&f, parcel, len);
        free(f.msg[3]);
        f.n = 3;
        bad = reframe(&f, &blen);
        expect_refused(bad, blen, &op, NG_ERR_MALFORMED, "dropped last, n kept", p);
        free(bad);
        set_count(&f, 3);
        bad = reframe(&f, &blen);
        expect_refused(bad, blen, &op, NG_ERR_AUTH, "dropped last, n fixed", p);
        free(bad);
        framed_free(&f);

        unframe(&f, parcel, len);
        free(f.msg[2]);
        f.msg[2] = f.msg[3];
        f.len[2] = f.len[3];
        f.n = 3;
        set_count(&f, 3);
        bad = reframe(&f, &blen);
        expect_refused(bad, blen, &op, NG_ERR_AUTH, "dropped a middle one, n fixed", p);
        free(bad);
        framed_free(&f);

        /* The handshake alone, n = 1: would be a truncated body if n were not authenticated. */
        unframe(&f, parcel, len);
        set_count(&f, 1);
        {
            size_t keep = f.n;
            f.n = 1;
            bad = reframe(&f, &blen);
            f.n = keep;
        }
        expect_refused(bad, blen, &op, NG_ERR_AUTH, "handshake only, n fixed", p);
        free(bad);
        framed_free(&f);

        /* The last message repeated, n fixed. */
        unframe(&f, parcel, len);
        f.msg[4] = malloc(f.len[3]);
        assert_non_null(f.msg[4]);
        memcpy(f.msg[4], f.msg[3], f.len[3]);
        f.len[4] = f.len[3];
        f.n = 5;
        set_count(&f, 5);
        bad = reframe(&f, &blen);
        expect_refused(bad, blen, &op, NG_ERR_AUTH, "repeated last, n fixed", p);
        free(bad);
        framed_free(&f);
        free(parcel);
    }
}

/* Two parcels with identical headers (same id and time): their transport messages must not mix. */
static void
test_spliced_messages(void **state)
{
    uint8_t mid[NG_PARCEL_MESSAGE_ID_BYTES];
    struct framed fa, fb;
    ng_seal_params sp;
    ng_open_params op;
    uint8_t *a, *b, *bad, *tmp;
    size_t p, alen, blen, len;

    (void)state;
    randombytes_buf(mid, sizeof mid);
    for (p = 0; p < N_PATTERNS; p++) {
        seal_params(&sp, g_patterns[p], NG_SUITE_DEFAULT, 300);
        sp.max_chunk = 100;
        sp.message_id = mid;
        a = seal_ok(&sp, &alen);
        b = seal_ok(&sp, &blen);
        assert_memory_equal(a, b, NG_PARCEL_HEADER_BYTES);
        open_params(&op, g_patterns[p]);
        unframe(&fa, a, alen);
        unframe(&fb, b, blen);
        /* a with b's second transport message. */
        tmp = fa.msg[2];
        fa.msg[2] = fb.msg[2];
        fb.msg[2] = tmp;
        bad = reframe(&fa, &len);
        expect_refused(bad, len, &op, NG_ERR_AUTH, "spliced transport message", p);
        free(bad);
        tmp = fa.msg[2];
        fa.msg[2] = fb.msg[2];
        fb.msg[2] = tmp;
        /* b's handshake message with a's transport messages. */
        tmp = fa.msg[0];
        fa.msg[0] = fb.msg[0];
        fb.msg[0] = tmp;
        bad = reframe(&fa, &len);
        expect_refused(bad, len, &op, NG_ERR_AUTH, "spliced handshake", p);
        free(bad);
        framed_free(&fa);
        framed_free(&fb);
        free(a);
        free(b);
    }
}

/*
 * Builds a parcel directly with the Noise layer, as a sender holding the
 * keys could: any header (its n is set to nchunks), any plaintext, split
 * into messages of the given payload sizes (chunks[0] in the handshake).
 */
static uint8_t *
forge(const uint8_t *header, const uint8_t *plain, size_t plen, const size_t *chunks, size_t nchunks, size_t *len)
{
    ng_pattern pattern = (ng_pattern)header[4];
    ng_suite suite = (ng_suite)header[5];
    size_t overhead = ng_noise_handshake_overhead(pattern), total, off, i;
    ng_noise_params np;
    ng_cipher_state c1;
    uint8_t *b, *w;

    total = NG_PARCEL_HEADER_BYTES + 2 * nchunks + overhead + plen + TAG * (nchunks - 1);
    b = calloc(1, total);
    assert_non_null(b);
    memcpy(b, header, NG_PARCEL_HEADER_BYTES);
    put_u16(b + OFF_COUNT, nchunks);
    memset(&np, 0, sizeof np);
    np.pattern = pattern;
    np.suite = suite;
    np.prologue = b;
    np.prologue_len = NG_PARCEL_HEADER_BYTES;
    np.psk = ng_pattern_has_psk(pattern) ? g_psk : NULL;
    np.local = ng_pattern_base(pattern) == NG_PATTERN_N ? NULL : &g_sender;
    np.remote_pub = g_recipient.pub;
    w = b + NG_PARCEL_HEADER_BYTES;
    put_u16(w, overhead + chunks[0]);
    w += 2;
    assert_int_equal(ng_noise_write(&np, w, plain, chunks[0], &c1, NULL), NG_OK);
    w += overhead + chunks[0];
    off = chunks[0];
    for (i = 1; i < nchunks; i++) {
        put_u16(w, chunks[i] + TAG);
        w += 2;
        assert_true(off + chunks[i] <= plen);
        assert_int_equal(ng_cipher_encrypt(&c1, w, NULL, 0, plain + off, chunks[i]), NG_OK);
        w += chunks[i] + TAG;
        off += chunks[i];
    }
    ng_cipher_wipe(&c1);
    assert_int_equal(off, plen);
    assert_int_equal((size_t)(w - b), total);
    *len = total;
    return b;
}

/* version || meta_len || meta || body, with the fields as given. */
static uint8_t *
plaintext(unsigned version, size_t meta_len_field, size_t body_len, size_t *plen)
{
    uint8_t *p;

    *plen = NG_PARCEL_PREFIX_BYTES + META_LEN + body_len;
    p = malloc(*plen);
    assert_non_null(p);
    p[0] = (uint8_t)version;
    put_u16(p + 1, meta_len_field);
    memcpy(p + NG_PARCEL_PREFIX_BYTES, META, META_LEN);
    memcpy(p + NG_PARCEL_PREFIX_BYTES + META_LEN, g_body, body_len);
    return p;
}

static void
template_header(ng_pattern pattern, uint8_t header[NG_PARCEL_HEADER_BYTES])
{
    size_t len;
    uint8_t *parcel = seal_small(pattern, NG_SUITE_DEFAULT, 0, 0, &len);

    memcpy(header, parcel, NG_PARCEL_HEADER_BYTES);
    free(parcel);
}

/* Splits seal never makes (empty handshake payload, empty transport messages, one byte each) must open. */
static void
test_receiver_accepts_any_split(void **state)
{
    uint8_t header[NG_PARCEL_HEADER_BYTES];
    ng_open_params op;
    size_t p, k, plen, len;
    uint8_t *plain = plaintext(NG_PARCEL_VERSION, META_LEN, 20, &plen);
    size_t ones[MAX_FRAMES];

    (void)state;
    assert_true(plen < MAX_FRAMES * 2);
    for (p = 0; p < N_PATTERNS; p++) {
        template_header(g_patterns[p], header);
        open_params(&op, g_patterns[p]);
        {
            const size_t s1[] = {0, plen};
            const size_t s2[] = {0, 0, 1, 0, 2, plen - 3, 0};
            const size_t s3[] = {plen};
            const size_t s4[] = {2, 1, plen - 3};
            const size_t *splits[] = {s1, s2, s3, s4};
            const size_t counts[] = {2, 7, 1, 3};
            for (k = 0; k < 4; k++) {
                uint8_t *parcel = forge(header, plain, plen, splits[k], counts[k], &len);
                expect_opened(parcel, len, &op, 20);
                free(parcel);
            }
        }
        /* Pairs of bytes, as many messages as MAX_FRAMES allows. */
        for (k = 0; k < plen / 2; k++)
            ones[k] = 2;
        ones[plen / 2] = plen % 2;
        {
            uint8_t *parcel = forge(header, plain, plen, ones, plen / 2 + 1, &len);
            expect_opened(parcel, len, &op, 20);
            free(parcel);
        }
    }
    free(plain);
}

/* The plaintext prefix, which only a key holder can set: version must be 1, meta_len must fit. */
static void
test_plaintext_prefix(void **state)
{
    uint8_t header[NG_PARCEL_HEADER_BYTES];
    ng_open_params op;
    ng_opened o;
    ng_parcel_header h;
    uint8_t *plain, *parcel, *out;
    size_t p, plen, len;

    (void)state;
    for (p = 0; p < N_PATTERNS; p++) {
        template_header(g_patterns[p], header);
        open_params(&op, g_patterns[p]);

        /* The control: the same construction with a good prefix opens. */
        plain = plaintext(NG_PARCEL_VERSION, META_LEN, 20, &plen);
        parcel = forge(header, plain, plen, (const size_t[]){plen}, 1, &len);
        expect_opened(parcel, len, &op, 20);
        free(parcel);
        free(plain);

        plain = plaintext(2, META_LEN, 20, &plen);
        parcel = forge(header, plain, plen, (const size_t[]){plen}, 1, &len);
        expect_refused(parcel, len, &op, NG_ERR_BAD_VERSION, "version 2", p);
        free(parcel);
        /* Also when the version byte travels in a message of its own. */
        parcel = forge(header, plain, plen, (const size_t[]){1, 1, plen - 2}, 3, &len);
        expect_refused(parcel, len, &op, NG_ERR_BAD_VERSION, "version 2, split", p);
        free(parcel);
        free(plain);

        plain = plaintext(0, META_LEN, 20, &plen);
        parcel = forge(header, plain, plen, (const size_t[]){0, plen}, 2, &len);
        expect_refused(parcel, len, &op, NG_ERR_BAD_VERSION, "version 0", p);
        free(parcel);
        free(plain);

        /* meta_len one past the end of the plaintext, and at its maximum. */
        plain = plaintext(NG_PARCEL_VERSION, META_LEN + 20 + 1, 20, &plen);
        parcel = forge(header, plain, plen, (const size_t[]){plen}, 1, &len);
        expect_refused(parcel, len, &op, NG_ERR_MALFORMED, "meta_len past the end", p);
        free(parcel);
        free(plain);
        plain = plaintext(NG_PARCEL_VERSION, 0xffff, 20, &plen);
        parcel = forge(header, plain, plen, (const size_t[]){3, plen - 3}, 2, &len);
        expect_refused(parcel, len, &op, NG_ERR_MALFORMED, "meta_len 65535", p);
        free(parcel);
        free(plain);

        /* meta_len exactly to the end: all meta, no body. */
        plain = plaintext(NG_PARCEL_VERSION, META_LEN + 20, 20, &plen);
        parcel = forge(header, plain, plen, (const size_t[]){plen}, 1, &len);
        out = malloc(plen);
        assert_non_null(out);
        assert_int_equal(ng_parcel_open(out, plen, &o, parcel, len, &op), NG_OK);
        assert_int_equal(o.meta_len, META_LEN + 20);
        assert_int_equal(o.body_len, 0);
        free(out);
        free(parcel);
        free(plain);

        /* Fewer than the three prefix bytes in all: the framing itself is short. */
        plain = plaintext(NG_PARCEL_VERSION, 0, 0, &plen);
        parcel = forge(header, plain, 2, (const size_t[]){2}, 1, &len);
        expect_refused(parcel, len, &op, NG_ERR_MALFORMED, "two plaintext bytes", p);
        assert_int_equal(ng_parcel_inspect(&h, parcel, len, 0), NG_ERR_MALFORMED);
        free(parcel);
        free(plain);
    }
}

static int
setup(void **state)
{
    (void)state;
    ng_keypair_generate(&g_recipient);
    ng_keypair_generate(&g_sender);
    ng_keypair_generate(&g_stranger);
    randombytes_buf(g_psk, sizeof g_psk);
    randombytes_buf(g_other_psk, sizeof g_other_psk);
    g_body = malloc(BODY_BYTES);
    if (g_body == NULL)
        return -1;
    randombytes_buf(g_body, BODY_BYTES);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    free(g_body);
    ng_keypair_wipe(&g_recipient);
    ng_keypair_wipe(&g_sender);
    ng_keypair_wipe(&g_stranger);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overhead),
        cmocka_unit_test(test_round_trip_empty_and_one),
        cmocka_unit_test(test_round_trip_handshake_boundary),
        cmocka_unit_test(test_round_trip_1mib),
        cmocka_unit_test(test_round_trip_any_chunk),
        cmocka_unit_test(test_round_trip_max_meta),
        cmocka_unit_test(test_max_messages),
        cmocka_unit_test(test_default_suite),
        cmocka_unit_test(test_n_ignores_sender),
        cmocka_unit_test(test_null_meta_and_body),
        cmocka_unit_test(test_message_id),
        cmocka_unit_test(test_created_defaults_to_now),
        cmocka_unit_test(test_times_past_int64_max),
        cmocka_unit_test(test_header_byte_flips),
        cmocka_unit_test(test_message_byte_flips),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_wrong_recipient),
        cmocka_unit_test(test_psk_errors),
        cmocka_unit_test(test_k_sender_errors),
        cmocka_unit_test(test_x_expected_sender),
        cmocka_unit_test(test_n_expected_sender),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_lifetime),
        cmocka_unit_test(test_max_bytes),
        cmocka_unit_test(test_buffer_too_small),
        cmocka_unit_test(test_seal_errors),
        cmocka_unit_test(test_reframed_messages),
        cmocka_unit_test(test_swapped_messages),
        cmocka_unit_test(test_dropped_and_added_messages),
        cmocka_unit_test(test_spliced_messages),
        cmocka_unit_test(test_receiver_accepts_any_split),
        cmocka_unit_test(test_plaintext_prefix),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests_name("parcel", tests, setup, teardown);
}

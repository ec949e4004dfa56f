/*
 * fuzz_parcel_inspect: ng_parcel_inspect on arbitrary bytes.
 *
 * Besides ASan and UBSan, the target holds inspect against a reference model
 * written here from DESIGN.md ("Parcel, version 1") rather than from
 * ng_parcel.c: the two must agree on accept or reject for every input, and on
 * acceptance every header field must be the bytes at its offset and
 * plaintext_len exactly what the framing leaves. A violation aborts, which
 * libFuzzer reports as a crash with the input saved.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "ng_parcel.h"

/* Sizes restated from the contract so the model does not borrow them from the code under test. */
enum {
    HEADER = 106,
    LEN_FIELD = 2,
    TAG = 16,
    E_BYTES = 32,
    S_BYTES = 32 + TAG, /* X carries its static key encrypted */
    PREFIX = 3,         /* version and meta_len */
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint16_t
be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint64_t
be64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static int
all_zero(const uint8_t *p, size_t len)
{
    uint8_t acc = 0;

    while (len-- > 0)
        acc |= *p++;
    return acc == 0;
}

static int
model_pattern(unsigned v)
{
    return v == 0x01 || v == 0x02 || v == 0x03 || v == 0x81 || v == 0x82 || v == 0x83;
}

/* Handshake message minimum: e and the payload tag, plus the encrypted s for X. */
static size_t
model_overhead(unsigned pattern)
{
    return E_BYTES + TAG + ((pattern & 0x7f) == 0x03 ? S_BYTES : 0);
}

/* The contract's acceptance rule. Returns 1 and the plaintext length if the parcel parses. */
static int
model_inspect(const uint8_t *d, size_t size, size_t *plain)
{
    size_t pos = HEADER, i, n, sum = 0;

    if (size < HEADER || memcmp(d, "NGP1", 4) != 0)
        return 0;
    if (!model_pattern(d[4]) || d[5] < 1 || d[5] > 6 || be16(d + 6) != 0)
        return 0;
    /* Times are signed-safe: nothing past INT64_MAX milliseconds. */
    if (be64(d + 32) <= be64(d + 24) || be64(d + 32) > INT64_MAX)
        return 0;
    /* The sender key id is there exactly for K and Kpsk0. */
    if (((d[4] & 0x7f) == 0x02) == all_zero(d + 72, 32))
        return 0;
    n = be16(d + 104);
    if (n == 0)
        return 0;
    for (i = 0; i < n; i++) {
        size_t mlen, min = i == 0 ? model_overhead(d[4]) : TAG;

        if (size - pos < LEN_FIELD)
            return 0;
        mlen = be16(d + pos);
        pos += LEN_FIELD;
        if (mlen < min || mlen > size - pos)
            return 0;
        pos += mlen;
        sum += mlen - min;
    }
    if (pos != size || sum < PREFIX)
        return 0;
    *plain = sum;
    return 1;
}

static void
check_header(const ng_parcel_header *h, const uint8_t *d, size_t size, size_t plain)
{
    size_t framing;

    CHECK(ng_pattern_valid(h->pattern) && (unsigned)h->pattern == d[4]);
    CHECK(ng_suite_valid(h->suite) && (unsigned)h->suite == d[5]);
    CHECK(h->flags == 0);
    CHECK(memcmp(h->message_id, d + 8, NG_PARCEL_MESSAGE_ID_BYTES) == 0);
    CHECK(h->created_ms == be64(d + 24) && h->expires_ms == be64(d + 32));
    CHECK(h->expires_ms > h->created_ms);
    CHECK(memcmp(h->recipient_key_id, d + 40, NG_KEY_ID_BYTES) == 0);
    CHECK(memcmp(h->sender_key_id, d + 72, NG_KEY_ID_BYTES) == 0);
    CHECK(h->n_messages >= 1 && h->n_messages == be16(d + 104));
    CHECK(h->plaintext_len == plain);
    CHECK(h->plaintext_len >= PREFIX && h->plaintext_len < size);
    /* The messages fill the parcel exactly, so the plaintext is whatever the
     * header, the length fields and the per-message overheads leave. */
    framing = HEADER + LEN_FIELD * (size_t)h->n_messages + model_overhead(d[4]) + TAG * ((size_t)h->n_messages - 1);
    CHECK(size >= framing && h->plaintext_len == size - framing);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ng_parcel_header hdr, again;
    size_t plain = 0;
    int model_ok = model_inspect(data, size, &plain);
    ng_err err;

    err = ng_parcel_inspect(&hdr, data, size, 0);
    CHECK((err == NG_OK) == model_ok);
    if (err != NG_OK) {
        /* No cryptography happens here, so only framing errors are possible
         * (and libFuzzer inputs are far below the default size ceiling). */
        CHECK(err == NG_ERR_BAD_MAGIC || err == NG_ERR_MALFORMED || err == NG_ERR_BAD_PATTERN ||
              err == NG_ERR_BAD_SUITE || err == NG_ERR_BAD_FLAGS);
        return 0;
    }
    check_header(&hdr, data, size, plain);

    /* The ceiling is inclusive, and one byte under it refuses the parcel
     * (size > HEADER here, so size - 1 is never 0, which means the default). */
    CHECK(ng_parcel_inspect(&again, data, size, size) == NG_OK && again.plaintext_len == hdr.plaintext_len);
    CHECK(ng_parcel_inspect(&again, data, size, size - 1) == NG_ERR_TOO_LARGE);
    return 0;
}

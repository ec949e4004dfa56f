/*
 * fuzz_parcel_open: ng_parcel_open on arbitrary bytes, as the fixed recipient
 * of fuzz_keys.h. The seed corpus holds real parcels sealed to that key, so
 * mutations reach the handshake, the transport messages and the plaintext
 * parsing instead of stopping at the recipient key id.
 *
 * What the target holds the library to (a violation aborts):
 *   - the parcel bytes are never written to (noise-c decrypts in place; we must not);
 *   - out is exactly hdr.plaintext_len bytes on the heap, so any overrun is an ASan report;
 *   - on success meta and body lie in out and fill it after the 3-byte prefix;
 *   - on failure out is all zero again and the ng_opened is zeroed;
 *   - a buffer one byte short, a missing or surplus psk, a sender named for an
 *     anonymous pattern and a K parcel without its sender are all refused;
 *   - for X, naming the sender opens exactly when the anonymous open learns that sender.
 *
 * Set NG_FUZZ_STATS=1 to print at exit how many inputs parsed and how many opened:
 * a figure near zero means the corpus no longer matches the keys.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fuzz_keys.h"
#include "fuzz_check.h"
#include "ng_parcel.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ng_keypair recipient, sender;
static uint8_t sender_id[NG_KEY_ID_BYTES];
static unsigned long long n_parsed, n_opened;

struct attempt {
    ng_err err;
    ng_opened o;
    uint8_t *out; /* cap bytes, at least 1; the caller frees it */
    size_t cap;
};

static int
all_zero(const void *p, size_t len)
{
    const uint8_t *b = p;
    uint8_t acc = 0;

    while (len-- > 0)
        acc |= *b++;
    return acc == 0;
}

/* Whether [p, p + len) lies within [base, base + cap), without comparing
 * pointers into different objects (undefined in C). */
static int
inside(const uint8_t *base, size_t cap, const uint8_t *p, size_t len)
{
    uintptr_t b = (uintptr_t)base, q = (uintptr_t)p;

    return q >= b && q - b <= cap && len <= cap - (q - b);
}

static void
print_stats(void)
{
    fprintf(stderr, "fuzz_parcel_open: %llu inputs parsed, %llu opened\n", n_parsed, n_opened);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        abort();
    if (ng_keypair_from_private(&recipient, fuzz_recipient_priv) != NG_OK ||
        ng_keypair_from_private(&sender, fuzz_sender_priv) != NG_OK)
        abort();
    ng_key_id(sender_id, sender.pub);
    if (getenv("NG_FUZZ_STATS") != NULL)
        atexit(print_stats);
    return 0;
}

/*
 * One ng_parcel_open of data into a fresh zeroed buffer of cap bytes. The
 * parcel is a heap copy of exactly size bytes, so an over-read past its end
 * is caught, and it is compared with data afterwards.
 */
static void
open_once(struct attempt *a, const uint8_t *data, size_t size, size_t cap, const uint8_t *sender_pub,
          const uint8_t *psk)
{
    uint8_t *parcel = malloc(size > 0 ? size : 1);
    ng_open_params p;

    a->cap = cap;
    a->out = calloc(cap > 0 ? cap : 1, 1);
    CHECK(parcel != NULL && a->out != NULL);
    if (size > 0)
        memcpy(parcel, data, size);
    ng_open_params_init(&p);
    p.recipient = &recipient;
    p.sender_pub = sender_pub;
    p.psk = psk;
    p.ignore_expiry = 1;
    /* Garbage in, so that a failure which forgets to zero it shows. */
    memset(&a->o, 0xa5, sizeof a->o);

    a->err = ng_parcel_open(a->out, cap, &a->o, parcel, size, &p);

    CHECK(size == 0 || memcmp(parcel, data, size) == 0);
    free(parcel);
    if (a->err != NG_OK) {
        CHECK(a->err < NG_ERR__COUNT);
        CHECK(all_zero(a->out, cap));
        CHECK(all_zero(&a->o, sizeof a->o));
    }
}

/* A successful open, checked against the inspected header and the keys used. */
static void
check_opened(const struct attempt *a, const ng_parcel_header *h, const uint8_t *sender_pub)
{
    const ng_opened *o = &a->o;
    ng_pattern base = ng_pattern_base(h->pattern);

    CHECK(a->cap == h->plaintext_len);
    CHECK(inside(a->out, a->cap, o->meta, o->meta_len));
    CHECK(inside(a->out, a->cap, o->body, o->body_len));
    CHECK(o->meta == a->out + NG_PARCEL_PREFIX_BYTES && o->body == o->meta + o->meta_len);
    CHECK(o->meta_len + o->body_len + NG_PARCEL_PREFIX_BYTES == h->plaintext_len);
    CHECK(a->out[0] == NG_PARCEL_VERSION && (size_t)((a->out[1] << 8) | a->out[2]) == o->meta_len);

    CHECK(o->header.pattern == h->pattern && o->header.suite == h->suite && o->header.flags == 0);
    CHECK(memcmp(o->header.message_id, h->message_id, NG_PARCEL_MESSAGE_ID_BYTES) == 0);
    CHECK(o->header.created_ms == h->created_ms && o->header.expires_ms == h->expires_ms);
    CHECK(memcmp(o->header.recipient_key_id, h->recipient_key_id, NG_KEY_ID_BYTES) == 0);
    CHECK(memcmp(o->header.sender_key_id, h->sender_key_id, NG_KEY_ID_BYTES) == 0);
    CHECK(o->header.n_messages == h->n_messages && o->header.plaintext_len == h->plaintext_len);

    if (base == NG_PATTERN_N) {
        CHECK(!o->has_sender && all_zero(o->sender_pub, NG_KEY_BYTES));
    } else {
        CHECK(o->has_sender);
        if (sender_pub != NULL)
            CHECK(memcmp(o->sender_pub, sender_pub, NG_KEY_BYTES) == 0);
    }
    if (base == NG_PATTERN_K)
        CHECK(memcmp(h->sender_key_id, sender_id, NG_KEY_ID_BYTES) == 0);
}

/* Opens that must fail before any cryptography; their buffers stay untouched. */
static void
must_refuse(const uint8_t *data, size_t size, size_t cap, const uint8_t *sender_pub, const uint8_t *psk)
{
    struct attempt a;

    open_once(&a, data, size, cap, sender_pub, psk);
    CHECK(a.err != NG_OK);
    free(a.out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ng_parcel_header hdr;
    ng_pattern base;
    const uint8_t *psk, *wrong_psk;
    struct attempt a, named;
    ng_err err;
    size_t cap;

    err = ng_parcel_inspect(&hdr, data, size, 0);
    if (err != NG_OK) {
        /* open must refuse what inspect refuses, with the same error. */
        open_once(&a, data, size, 0, NULL, NULL);
        CHECK(a.err == err);
        free(a.out);
        return 0;
    }
    n_parsed++;
    cap = hdr.plaintext_len;
    base = ng_pattern_base(hdr.pattern);
    psk = ng_pattern_has_psk(hdr.pattern) ? fuzz_psk : NULL;
    wrong_psk = psk != NULL ? NULL : fuzz_psk;

    open_once(&a, data, size, cap - 1, base == NG_PATTERN_K ? sender.pub : NULL, psk);
    CHECK(a.err == NG_ERR_BUFFER_TOO_SMALL);
    free(a.out);
    must_refuse(data, size, cap, base == NG_PATTERN_K ? sender.pub : NULL, wrong_psk);

    switch (base) {
    case NG_PATTERN_N:
        open_once(&a, data, size, cap, NULL, psk);
        if (a.err == NG_OK)
            check_opened(&a, &hdr, NULL);
        /* An expected sender rules out anonymous parcels. */
        must_refuse(data, size, cap, sender.pub, psk);
        break;
    case NG_PATTERN_K:
        open_once(&a, data, size, cap, sender.pub, psk);
        if (a.err == NG_OK)
            check_opened(&a, &hdr, sender.pub);
        must_refuse(data, size, cap, NULL, psk);
        break;
    default: /* X */
        open_once(&a, data, size, cap, NULL, psk);
        if (a.err == NG_OK)
            check_opened(&a, &hdr, NULL);
        open_once(&named, data, size, cap, sender.pub, psk);
        if (named.err == NG_OK)
            check_opened(&named, &hdr, sender.pub);
        CHECK((named.err == NG_OK) == (a.err == NG_OK && memcmp(a.o.sender_pub, sender.pub, NG_KEY_BYTES) == 0));
        if (named.err == NG_OK)
            CHECK(named.o.meta_len == a.o.meta_len && memcmp(named.out, a.out, cap) == 0);
        else if (a.err == NG_OK)
            CHECK(named.err == NG_ERR_WRONG_SENDER);
        free(named.out);
        break;
    }
    if (a.err == NG_OK)
        n_opened++;
    free(a.out);
    return 0;
}

#include "ng_parcel.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "ng_noise.h"

_Static_assert(NG_PARCEL_HEADER_BYTES == 4 + 1 + 1 + 2 + NG_PARCEL_MESSAGE_ID_BYTES + 8 + 8 + 2 * NG_KEY_ID_BYTES + 2,
               "parcel header layout");

enum {
    OFF_PATTERN = 4,
    OFF_SUITE = 5,
    OFF_FLAGS = 6,
    OFF_ID = 8,
    OFF_CREATED = 24,
    OFF_EXPIRES = 32,
    OFF_RECIPIENT = 40,
    OFF_SENDER = 72,
    OFF_COUNT = 104,
    LEN_BYTES = 2,
    TRANSPORT_MAX_PAYLOAD = NG_NOISE_MAX_MESSAGE - NG_CIPHER_TAG_BYTES,
};

static void
put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint16_t
get_u16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static void
put_u64(uint8_t *p, uint64_t v)
{
    int i;

    for (i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t
get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

uint64_t
ng_parcel_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

ng_err
ng_parcel_inspect(ng_parcel_header *hdr, const uint8_t *parcel, size_t len, size_t max_bytes)
{
    size_t pos, i, overhead, plain = 0;

    memset(hdr, 0, sizeof *hdr);
    if (max_bytes == 0)
        max_bytes = NG_PARCEL_DEFAULT_MAX_BYTES;
    if (len > max_bytes)
        return NG_ERR_TOO_LARGE;
    if (parcel == NULL || len < 4 || memcmp(parcel, NG_PARCEL_MAGIC, 4) != 0)
        return NG_ERR_BAD_MAGIC;
    if (len < NG_PARCEL_HEADER_BYTES)
        return NG_ERR_MALFORMED;
    if (!ng_pattern_valid(parcel[OFF_PATTERN]))
        return NG_ERR_BAD_PATTERN;
    if (!ng_suite_valid(parcel[OFF_SUITE]))
        return NG_ERR_BAD_SUITE;
    hdr->pattern = (ng_pattern)parcel[OFF_PATTERN];
    hdr->suite = (ng_suite)parcel[OFF_SUITE];
    hdr->flags = get_u16(parcel + OFF_FLAGS);
    if (hdr->flags != 0)
        return NG_ERR_BAD_FLAGS;
    memcpy(hdr->message_id, parcel + OFF_ID, NG_PARCEL_MESSAGE_ID_BYTES);
    hdr->created_ms = get_u64(parcel + OFF_CREATED);
    hdr->expires_ms = get_u64(parcel + OFF_EXPIRES);
    memcpy(hdr->recipient_key_id, parcel + OFF_RECIPIENT, NG_KEY_ID_BYTES);
    memcpy(hdr->sender_key_id, parcel + OFF_SENDER, NG_KEY_ID_BYTES);
    hdr->n_messages = get_u16(parcel + OFF_COUNT);
    /* Times past INT64_MAX (the year 292 million) would turn negative in
     * every signed consumer, JSON included: refuse them as malformed. */
    if (hdr->expires_ms <= hdr->created_ms || hdr->expires_ms > INT64_MAX || hdr->n_messages == 0)
        return NG_ERR_MALFORMED;
    if ((ng_pattern_base(hdr->pattern) == NG_PATTERN_K) == sodium_is_zero(hdr->sender_key_id, NG_KEY_ID_BYTES))
        return NG_ERR_MALFORMED;

    overhead = ng_noise_handshake_overhead(hdr->pattern);
    pos = NG_PARCEL_HEADER_BYTES;
    for (i = 0; i < hdr->n_messages; i++) {
        size_t mlen, min = i == 0 ? overhead : NG_CIPHER_TAG_BYTES;
        if (len - pos < LEN_BYTES)
            return NG_ERR_MALFORMED;
        mlen = get_u16(parcel + pos);
        pos += LEN_BYTES;
        if (mlen < min || mlen > len - pos)
            return NG_ERR_MALFORMED;
        pos += mlen;
        plain += mlen - min;
    }
    if (pos != len)
        return NG_ERR_MALFORMED;
    if (plain < NG_PARCEL_PREFIX_BYTES)
        return NG_ERR_MALFORMED;
    hdr->plaintext_len = plain;
    return NG_OK;
}

/* The split: everything in the handshake message when it fits. Otherwise the
 * handshake carries only version, meta_len and meta, and the body travels in
 * transport messages: the handshake payload is hashed as well as encrypted,
 * so keeping bulk out of it keeps chunking as cheap as the bare AEAD. */
struct layout {
    size_t plain, hs_payload, tr_cap, n_transport, total;
};

static int
plan(struct layout *l, const ng_seal_params *p)
{
    size_t overhead = ng_noise_handshake_overhead(p->pattern);
    size_t hs_cap = NG_NOISE_MAX_MESSAGE - overhead;
    size_t rest;

    l->tr_cap = TRANSPORT_MAX_PAYLOAD;
    if (p->max_chunk != 0) {
        if (p->max_chunk < hs_cap)
            hs_cap = p->max_chunk;
        if (p->max_chunk < l->tr_cap)
            l->tr_cap = p->max_chunk;
    }
    if (p->meta_len > NG_PARCEL_MAX_META || p->body_len > SIZE_MAX / 2)
        return -1;
    l->plain = NG_PARCEL_PREFIX_BYTES + p->meta_len + p->body_len;
    if (l->plain <= hs_cap) {
        l->hs_payload = l->plain;
    } else {
        l->hs_payload = NG_PARCEL_PREFIX_BYTES + p->meta_len;
        if (l->hs_payload > hs_cap)
            l->hs_payload = hs_cap;
    }
    rest = l->plain - l->hs_payload;
    l->n_transport = rest / l->tr_cap + (rest % l->tr_cap != 0);
    if (l->n_transport > NG_PARCEL_MAX_MESSAGES - 1)
        return -1;
    l->total = NG_PARCEL_HEADER_BYTES + LEN_BYTES * (1 + l->n_transport) + overhead + l->hs_payload + rest +
               NG_CIPHER_TAG_BYTES * l->n_transport;
    return 0;
}

size_t
ng_parcel_sealed_size(const ng_seal_params *p)
{
    struct layout l;

    if (!ng_pattern_valid(p->pattern) || plan(&l, p) != 0)
        return 0;
    return l.total;
}

/* Copies plaintext bytes [off, off + len) out of prefix || meta || body. */
static void
copy_plain(uint8_t *dst, size_t off, size_t len, const uint8_t prefix[NG_PARCEL_PREFIX_BYTES], const ng_seal_params *p)
{
    while (len > 0) {
        const uint8_t *src;
        size_t avail;

        if (off < NG_PARCEL_PREFIX_BYTES) {
            src = prefix + off;
            avail = NG_PARCEL_PREFIX_BYTES - off;
        } else if (off < NG_PARCEL_PREFIX_BYTES + p->meta_len) {
            src = p->meta + (off - NG_PARCEL_PREFIX_BYTES);
            avail = NG_PARCEL_PREFIX_BYTES + p->meta_len - off;
        } else {
            src = p->body + (off - NG_PARCEL_PREFIX_BYTES - p->meta_len);
            avail = len;
        }
        if (avail > len)
            avail = len;
        memcpy(dst, src, avail);
        dst += avail;
        off += avail;
        len -= avail;
    }
}

static ng_err
check_seal(const ng_seal_params *p, ng_suite suite)
{
    ng_pattern base;

    if (!ng_pattern_valid(p->pattern))
        return NG_ERR_BAD_PATTERN;
    if (!ng_suite_valid(suite))
        return NG_ERR_BAD_SUITE;
    if (!ng_suite_available(suite))
        return NG_ERR_UNSUPPORTED;
    base = ng_pattern_base(p->pattern);
    if (p->recipient_pub == NULL || (base != NG_PATTERN_N && p->sender == NULL))
        return NG_ERR_INVALID_ARG;
    if (ng_pattern_has_psk(p->pattern) != (p->psk != NULL))
        return NG_ERR_PSK_REQUIRED;
    if ((p->meta_len > 0 && p->meta == NULL) || (p->body_len > 0 && p->body == NULL))
        return NG_ERR_INVALID_ARG;
    if (p->ttl_ms == 0)
        return NG_ERR_INVALID_ARG;
    return NG_OK;
}

ng_err
ng_parcel_seal(uint8_t *out, size_t cap, size_t *out_len, const ng_seal_params *p)
{
    const ng_suite suite = p->suite != 0 ? p->suite : (ng_suite)NG_SUITE_DEFAULT;
    const size_t overhead = ng_noise_handshake_overhead(p->pattern);
    uint8_t prefix[NG_PARCEL_PREFIX_BYTES];
    ng_cipher_state c1;
    ng_noise_params np;
    struct layout l;
    uint64_t created;
    uint8_t *w, *payload;
    size_t off, i;
    ng_err err;

    *out_len = 0;
    err = check_seal(p, suite);
    if (err)
        return err;
    if (plan(&l, p) != 0)
        return NG_ERR_TOO_LARGE;
    if (cap < l.total)
        return NG_ERR_BUFFER_TOO_SMALL;
    created = p->created_ms != 0 ? p->created_ms : ng_parcel_now_ms();
    if (created > INT64_MAX || p->ttl_ms > (uint64_t)INT64_MAX - created)
        return NG_ERR_INVALID_ARG;

    memcpy(out, NG_PARCEL_MAGIC, 4);
    out[OFF_PATTERN] = (uint8_t)p->pattern;
    out[OFF_SUITE] = (uint8_t)suite;
    put_u16(out + OFF_FLAGS, 0);
    if (p->message_id != NULL)
        memcpy(out + OFF_ID, p->message_id, NG_PARCEL_MESSAGE_ID_BYTES);
    else
        randombytes_buf(out + OFF_ID, NG_PARCEL_MESSAGE_ID_BYTES);
    put_u64(out + OFF_CREATED, created);
    put_u64(out + OFF_EXPIRES, created + p->ttl_ms);
    ng_key_id(out + OFF_RECIPIENT, p->recipient_pub);
    if (ng_pattern_base(p->pattern) == NG_PATTERN_K)
        ng_key_id(out + OFF_SENDER, p->sender->pub);
    else
        memset(out + OFF_SENDER, 0, NG_KEY_ID_BYTES);
    put_u16(out + OFF_COUNT, (uint16_t)(1 + l.n_transport));

    prefix[0] = NG_PARCEL_VERSION;
    put_u16(prefix + 1, (uint16_t)p->meta_len);

    memset(&np, 0, sizeof np);
    np.pattern = p->pattern;
    np.suite = suite;
    np.prologue = out;
    np.prologue_len = NG_PARCEL_HEADER_BYTES;
    np.psk = p->psk;
    np.local = p->sender;
    np.remote_pub = p->recipient_pub;
    np.cache = p->cache;

    w = out + NG_PARCEL_HEADER_BYTES;
    put_u16(w, (uint16_t)(overhead + l.hs_payload));
    w += LEN_BYTES;
    payload = w + overhead - NG_CIPHER_TAG_BYTES;
    copy_plain(payload, 0, l.hs_payload, prefix, p);
    err = ng_noise_write(&np, w, payload, l.hs_payload, &c1, NULL);
    w += overhead + l.hs_payload;

    off = l.hs_payload;
    for (i = 0; i < l.n_transport && err == NG_OK; i++) {
        size_t n = l.plain - off < l.tr_cap ? l.plain - off : l.tr_cap;
        const uint8_t *src;

        put_u16(w, (uint16_t)(n + NG_CIPHER_TAG_BYTES));
        w += LEN_BYTES;
        /* Body-only chunks encrypt straight from the caller's body; only a
         * chunk that straddles meta and body is gathered first. */
        if (off >= NG_PARCEL_PREFIX_BYTES + p->meta_len) {
            src = p->body + (off - NG_PARCEL_PREFIX_BYTES - p->meta_len);
        } else {
            copy_plain(w, off, n, prefix, p);
            src = w;
        }
        err = ng_cipher_encrypt(&c1, w, NULL, 0, src, n);
        w += n + NG_CIPHER_TAG_BYTES;
        off += n;
    }
    ng_cipher_wipe(&c1);
    if (err) {
        sodium_memzero(out, l.total);
        return err;
    }
    *out_len = l.total;
    return NG_OK;
}

void
ng_open_params_init(ng_open_params *p)
{
    memset(p, 0, sizeof *p);
    p->skew_ms = NG_PARCEL_DEFAULT_SKEW_MS;
}

ng_err
ng_parcel_check_time(const ng_parcel_header *h, const ng_open_params *p)
{
    uint64_t now = p->now_ms != 0 ? p->now_ms : ng_parcel_now_ms();

    if (p->max_lifetime_ms != 0 && h->expires_ms - h->created_ms > p->max_lifetime_ms)
        return NG_ERR_LIFETIME;
    if (p->ignore_expiry)
        return NG_OK;
    if (now >= h->expires_ms)
        return NG_ERR_EXPIRED;
    if (h->created_ms > now && h->created_ms - now > p->skew_ms)
        return NG_ERR_NOT_YET_VALID;
    return NG_OK;
}

/* The checks that need keys but no cryptography beyond a key id. */
static ng_err
check_open(const ng_parcel_header *h, const ng_open_params *p)
{
    uint8_t id[NG_KEY_ID_BYTES];

    if (!ng_suite_available(h->suite))
        return NG_ERR_UNSUPPORTED;
    ng_key_id(id, p->recipient->pub);
    if (sodium_memcmp(id, h->recipient_key_id, NG_KEY_ID_BYTES) != 0)
        return NG_ERR_WRONG_RECIPIENT;
    /* An expected sender rules out anonymous parcels as well as other keys. */
    if (ng_pattern_base(h->pattern) == NG_PATTERN_N && p->sender_pub != NULL)
        return NG_ERR_WRONG_SENDER;
    if (ng_pattern_base(h->pattern) == NG_PATTERN_K) {
        if (p->sender_pub == NULL)
            return NG_ERR_SENDER_REQUIRED;
        ng_key_id(id, p->sender_pub);
        if (sodium_memcmp(id, h->sender_key_id, NG_KEY_ID_BYTES) != 0)
            return NG_ERR_WRONG_SENDER;
    }
    if (ng_pattern_has_psk(h->pattern) != (p->psk != NULL))
        return NG_ERR_PSK_REQUIRED;
    return ng_parcel_check_time(h, p);
}

ng_err
ng_parcel_open(uint8_t *out, size_t cap, ng_opened *o, const uint8_t *parcel, size_t len, const ng_open_params *p)
{
    ng_parcel_header h;
    ng_cipher_state c1;
    ng_noise_params np;
    uint8_t rs[NG_KEY_BYTES];
    const uint8_t *r;
    uint8_t *w = out;
    size_t i, mlen, meta_len;
    ng_err err;

    memset(o, 0, sizeof *o);
    memset(&c1, 0, sizeof c1);
    if (p->recipient == NULL)
        return NG_ERR_INVALID_ARG;
    err = ng_parcel_inspect(&h, parcel, len, p->max_bytes);
    if (err)
        return err;
    if (out == NULL || cap < h.plaintext_len)
        return NG_ERR_BUFFER_TOO_SMALL;
    err = check_open(&h, p);
    if (err)
        return err;

    memset(&np, 0, sizeof np);
    np.pattern = h.pattern;
    np.suite = h.suite;
    np.prologue = parcel;
    np.prologue_len = NG_PARCEL_HEADER_BYTES;
    np.psk = p->psk;
    np.local = p->recipient;
    np.remote_pub = p->sender_pub;
    np.cache = p->cache;
    if (ng_pattern_base(h.pattern) == NG_PATTERN_X)
        np.expected_rs = p->sender_pub;

    r = parcel + NG_PARCEL_HEADER_BYTES;
    mlen = get_u16(r);
    r += LEN_BYTES;
    err = ng_noise_read(&np, r, mlen, w, &c1, rs, NULL);
    w += mlen - ng_noise_handshake_overhead(h.pattern);
    r += mlen;
    for (i = 1; i < h.n_messages && err == NG_OK; i++) {
        mlen = get_u16(r);
        r += LEN_BYTES;
        err = ng_cipher_decrypt(&c1, w, NULL, 0, r, mlen);
        w += mlen - NG_CIPHER_TAG_BYTES;
        r += mlen;
    }
    ng_cipher_wipe(&c1);
    if (err)
        goto fail;

    if (ng_pattern_base(h.pattern) == NG_PATTERN_X) {
        memcpy(o->sender_pub, rs, NG_KEY_BYTES);
        o->has_sender = 1;
    } else if (ng_pattern_base(h.pattern) == NG_PATTERN_K) {
        memcpy(o->sender_pub, p->sender_pub, NG_KEY_BYTES);
        o->has_sender = 1;
    }

    if (out[0] != NG_PARCEL_VERSION) {
        err = NG_ERR_BAD_VERSION;
        goto fail;
    }
    meta_len = get_u16(out + 1);
    if (meta_len > h.plaintext_len - NG_PARCEL_PREFIX_BYTES) {
        err = NG_ERR_MALFORMED;
        goto fail;
    }
    o->header = h;
    o->meta = out + NG_PARCEL_PREFIX_BYTES;
    o->meta_len = meta_len;
    o->body = o->meta + meta_len;
    o->body_len = h.plaintext_len - NG_PARCEL_PREFIX_BYTES - meta_len;
    return NG_OK;

fail:
    sodium_memzero(out, h.plaintext_len);
    memset(o, 0, sizeof *o);
    return err;
}

/*
 * ng_parcel.h: parcel version 1 (DESIGN.md, "Envelope (contract)").
 *
 *   0    4  magic "NGP1"          40  32  recipient key id
 *   4    1  pattern               72  32  sender key id (K, Kpsk0), else zero
 *   5    1  suite                104   2  n, number of Noise messages (>= 1)
 *   6    2  flags (0)            106   …  n times: u16 length, Noise message
 *   8   16  message id
 *  24    8  created (unix ms)
 *  32    8  expires (unix ms)
 *
 * All integers big-endian. The 106 header bytes are the Noise prologue. The
 * first Noise message is the handshake message, the rest are transport
 * messages of the first CipherState. Together they carry
 * `u8 version = 1 || u16 meta_len || meta || body`, split at any byte.
 *
 * No I/O, no global state. THREAD SAFETY: every function is reentrant; an
 * ng_ss_cache passed in may be shared.
 */
#ifndef NG_PARCEL_H
#define NG_PARCEL_H

#include <stddef.h>
#include <stdint.h>

#include "ng_error.h"
#include "ng_key.h"
#include "ng_sscache.h"
#include "ng_suite.h"

enum {
    NG_PARCEL_HEADER_BYTES = 106,
    NG_PARCEL_MESSAGE_ID_BYTES = 16,
    NG_PARCEL_MAX_MESSAGES = 65535,
    NG_PARCEL_MAX_META = 65535,
    NG_PARCEL_PREFIX_BYTES = 3, /* version and meta_len */
    NG_PARCEL_VERSION = 1,
    NG_PARCEL_DEFAULT_SKEW_MS = 5 * 60 * 1000,
};

/* Default ceiling on a whole parcel, for open and inspect. */
#define NG_PARCEL_DEFAULT_MAX_BYTES ((size_t)64 * 1024 * 1024)
#define NG_PARCEL_MAGIC             "NGP1"

/* The media type of a parcel over HTTP. */
#define NG_PARCEL_CONTENT_TYPE "application/vnd.noisegate.parcel"

typedef struct ng_parcel_header {
    ng_pattern pattern;
    ng_suite suite;
    uint16_t flags;
    uint8_t message_id[NG_PARCEL_MESSAGE_ID_BYTES];
    uint64_t created_ms;
    uint64_t expires_ms;
    uint8_t recipient_key_id[NG_KEY_ID_BYTES];
    uint8_t sender_key_id[NG_KEY_ID_BYTES];
    uint16_t n_messages;
    size_t plaintext_len; /* what the messages carry once opened */
} ng_parcel_header;

/*
 * Parses the header and walks the message framing without any cryptography:
 * magic, known pattern and suite, zero flags, created < expires <= INT64_MAX, sender
 * key id zero unless K, n >= 1, every length at least its minimum, no
 * trailing bytes, len <= max_bytes (0: NG_PARCEL_DEFAULT_MAX_BYTES).
 */
NG_MUST_CHECK ng_err ng_parcel_inspect(ng_parcel_header *hdr, const uint8_t *parcel, size_t len, size_t max_bytes)
    NG_NONNULL(1);

typedef struct ng_seal_params {
    ng_pattern pattern;           /* N, K, X or a psk form */
    ng_suite suite;               /* 0: NG_SUITE_DEFAULT */
    const uint8_t *recipient_pub; /* NG_KEY_BYTES */
    const ng_keypair *sender;     /* K, X and their psk forms */
    const uint8_t *psk;           /* NG_PSK_BYTES; exactly for the psk forms */
    const uint8_t *meta;          /* a UTF-8 JSON object with content_type */
    size_t meta_len;              /* <= NG_PARCEL_MAX_META */
    const uint8_t *body;
    size_t body_len;
    uint64_t created_ms;       /* 0: now */
    uint64_t ttl_ms;           /* > 0; expires = created + ttl */
    const uint8_t *message_id; /* NULL: random */
    ng_ss_cache *cache;        /* optional: reuse ss for K and X */
    size_t max_chunk;          /* 0: largest messages; tests pick other splits */
} ng_seal_params;

/* The exact size ng_parcel_seal will write, or 0 if the parameters cannot fit a parcel. */
size_t ng_parcel_sealed_size(const ng_seal_params *p) NG_NONNULL(1);

/* Seals into out (cap bytes); *out_len receives ng_parcel_sealed_size(p). */
NG_MUST_CHECK ng_err ng_parcel_seal(uint8_t *out, size_t cap, size_t *out_len, const ng_seal_params *p)
    NG_NONNULL(1, 3, 4);

typedef struct ng_open_params {
    const ng_keypair *recipient; /* whose key id the parcel must carry */
    const uint8_t *sender_pub;   /* K: required; X: if set, the only sender; N: if set, refused */
    const uint8_t *psk;          /* required for the psk forms, refused otherwise */
    uint64_t now_ms;             /* 0: the clock */
    uint64_t skew_ms;            /* allowance for a sender clock ahead of ours */
    uint64_t max_lifetime_ms;    /* 0: no limit on expires - created */
    int ignore_expiry;
    size_t max_bytes; /* 0: NG_PARCEL_DEFAULT_MAX_BYTES */
    ng_ss_cache *cache;
} ng_open_params;

/* Zeroes p and sets the defaults (skew 5 minutes). */
void ng_open_params_init(ng_open_params *p) NG_NONNULL(1);

typedef struct ng_opened {
    ng_parcel_header header;
    const uint8_t *meta; /* into the caller's buffer */
    size_t meta_len;
    const uint8_t *body; /* into the caller's buffer */
    size_t body_len;
    uint8_t sender_pub[NG_KEY_BYTES]; /* K: the given key; X: the learned one */
    int has_sender;
} ng_opened;

/*
 * Opens a parcel into out (cap >= header.plaintext_len; len always suffices).
 * Every length is checked before any cryptography, and the whole parcel is
 * authenticated before anything is returned: on any error out is wiped and
 * *o zeroed. The parcel itself is never written to.
 */
NG_MUST_CHECK ng_err ng_parcel_open(uint8_t *out, size_t cap, ng_opened *o, const uint8_t *parcel, size_t len,
                                    const ng_open_params *p) NG_NONNULL(3, 6);

/*
 * The time checks ng_parcel_open makes, on a header alone (p's now_ms,
 * skew_ms, max_lifetime_ms and ignore_expiry): NG_ERR_LIFETIME,
 * NG_ERR_EXPIRED, NG_ERR_NOT_YET_VALID. For whoever forwards a parcel it
 * cannot open.
 */
NG_MUST_CHECK ng_err ng_parcel_check_time(const ng_parcel_header *h, const ng_open_params *p) NG_NONNULL(1, 2);

/* Unix time in milliseconds from the realtime clock. */
uint64_t ng_parcel_now_ms(void);

#endif

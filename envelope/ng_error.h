/*
 * ng_error.h: the one error enum of noisegate.
 *
 * Every fallible function in every module returns an ng_err. NG_OK is 0 so
 * that `if (err) return err;` reads naturally. Values are part of the ABI of
 * libnoisegate-envelope: append new codes at the end, never renumber.
 *
 * Codes that describe a parcel which did not open are deliberately coarse:
 * NG_ERR_AUTH covers every AEAD failure, so a forger learns nothing about
 * which byte or key was wrong.
 */
#ifndef NG_ERROR_H
#define NG_ERROR_H

#if defined(__GNUC__) || defined(__clang__)
#define NG_MUST_CHECK   __attribute__((warn_unused_result))
#define NG_NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))
#else
#define NG_MUST_CHECK
#define NG_NONNULL(...)
#endif

typedef enum ng_err {
    NG_OK = 0,
    NG_ERR_INVALID_ARG = 1,      /* a caller broke a documented contract */
    NG_ERR_NOMEM = 2,            /* allocation failed */
    NG_ERR_UNSUPPORTED = 3,      /* e.g. AESGCM without AES-NI in libsodium */
    NG_ERR_TOO_LARGE = 4,        /* over a size limit */
    NG_ERR_BUFFER_TOO_SMALL = 5, /* caller's output buffer cannot hold it */
    NG_ERR_MALFORMED = 6,        /* framing or lengths do not parse */
    NG_ERR_BAD_MAGIC = 7,        /* not a parcel */
    NG_ERR_BAD_PATTERN = 8,      /* unknown pattern byte or name */
    NG_ERR_BAD_SUITE = 9,        /* unknown suite byte or name */
    NG_ERR_BAD_FLAGS = 10,       /* flags other than 0 in version 1 */
    NG_ERR_AUTH = 11,            /* decryption or authentication failed */
    NG_ERR_EXPIRED = 12,         /* now >= expires */
    NG_ERR_NOT_YET_VALID = 13,   /* created - skew > now */
    NG_ERR_LIFETIME = 14,        /* expires - created over the allowed maximum */
    NG_ERR_WRONG_RECIPIENT = 15, /* addressed to another key id */
    NG_ERR_WRONG_SENDER = 16,    /* sender is not the expected static key */
    NG_ERR_SENDER_REQUIRED = 17, /* K needs the sender's public key to open */
    NG_ERR_PSK_REQUIRED = 18,    /* psk parcel but no psk, or psk expected but parcel has none */
    NG_ERR_BAD_KEY = 19,         /* public key gives an all-zero DH result */
    NG_ERR_NONCE_EXHAUSTED = 20, /* cipher state nonce reached 2^64-1 */
    NG_ERR_BAD_VERSION = 21,     /* plaintext version byte is not 1 */
    NG_ERR_IO = 22,              /* read or write failed */
    NG_ERR_PARSE = 23,           /* text input (hex, key file, JSON) does not parse */
    NG_ERR_EXISTS = 24,          /* refusing to overwrite */
    NG_ERR_VAULT_KEY = 25,       /* the master key or passphrase does not open this vault */
    NG_ERR_CORRUPT = 26,         /* stored data failed its integrity check */
    NG_ERR_NOT_FOUND = 27,       /* no such entry */
    NG_ERR_UNAVAILABLE = 28,     /* a store (Redis, HTTP storage) did not answer */
    NG_ERR_CONFLICT = 29,        /* changed concurrently too many times; try again */
    NG_ERR_KEY_ELSEWHERE = 30,   /* the private key is not here: the tenant's backend holds it */
    NG_ERR__COUNT                /* not a code: keep last */
} ng_err;

/* A static, human-readable description. Never NULL. Never contains data. */
const char *ng_strerror(ng_err err);

#endif

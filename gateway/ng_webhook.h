/*
 * ng_webhook.h: Standard Webhooks signatures, both ways.
 *
 * The signed content is "<webhook-id>.<webhook-timestamp>.<body>".
 *   v1   HMAC-SHA256 under the secret of a "whsec_" key (base64 after the
 *        prefix): what off-the-shelf Standard Webhooks libraries verify.
 *   v1a  Ed25519 under a "whsk_"-style secret key; verified with the
 *        "whpk_" public key (base64 of 32 bytes).
 * The webhook-signature header carries one or more space-separated
 * "v1,<base64>" / "v1a,<base64>" entries; one that verifies is enough, so
 * both an old and a new key can sign during a rotation.
 */
#ifndef NG_WEBHOOK_H
#define NG_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "ng_error.h"

enum {
    NG_WEBHOOK_SECRET_MIN = 24, /* bytes of a whsec_ secret */
    NG_WEBHOOK_SECRET_MAX = 64,
    NG_WEBHOOK_PK_BYTES = 32,
    NG_WEBHOOK_SK_BYTES = 64,
    NG_WEBHOOK_ID_MAX = 128,                                   /* characters of a webhook-id */
    NG_WEBHOOK_HEADER_MAX = 4096,                              /* characters of a webhook-signature header */
    NG_WEBHOOK_MAX_ENTRIES = 16,                               /* signatures in one header */
    NG_WEBHOOK_SIGNATURE_BYTES = 100,                          /* room for one "v1a,<base64>" and a NUL */
    NG_WEBHOOK_SIGNERS_BYTES = 4 * NG_WEBHOOK_SIGNATURE_BYTES, /* a whole header from ng_webhook_sign_all */
};

/* Decodes "whsec_<base64>" into out (cap bytes); NG_ERR_PARSE unless 24-64 bytes of valid base64. */
NG_MUST_CHECK ng_err ng_webhook_secret_parse(const char *whsec, uint8_t *out, size_t cap, size_t *len);
/* Decodes "whpk_<base64>" into an Ed25519 public key; NG_ERR_PARSE, or NG_ERR_BAD_KEY off the curve. */
NG_MUST_CHECK ng_err ng_webhook_public_parse(const char *whpk, uint8_t pk[NG_WEBHOOK_PK_BYTES]);

/* 1 if id is a usable webhook-id: 1-128 of [A-Za-z0-9_-]. */
int ng_webhook_id_ok(const char *id);

/* "v1,<base64 HMAC-SHA256>" into out. */
NG_MUST_CHECK ng_err ng_webhook_sign_v1(char out[NG_WEBHOOK_SIGNATURE_BYTES], const uint8_t *secret, size_t secret_len,
                                        const char *id, int64_t timestamp, const uint8_t *body, size_t body_len);
/* "v1a,<base64 Ed25519>" into out. */
NG_MUST_CHECK ng_err ng_webhook_sign_v1a(char out[NG_WEBHOOK_SIGNATURE_BYTES], const uint8_t sk[NG_WEBHOOK_SK_BYTES],
                                         const char *id, int64_t timestamp, const uint8_t *body, size_t body_len);

/* Who signs one delivery; any field may be absent (NULL or length 0). */
typedef struct ng_webhook_signers {
    const uint8_t *secret; /* v1 */
    size_t secret_len;
    const uint8_t *secret_prev; /* v1, during a rotation */
    size_t secret_prev_len;
    const uint8_t *sk;      /* v1a */
    const uint8_t *sk_prev; /* v1a, during a rotation */
} ng_webhook_signers;

/*
 * The value of a webhook-signature header: one space-separated entry per
 * signer, in the order above; "" when there is none.
 */
NG_MUST_CHECK ng_err ng_webhook_sign_all(char out[NG_WEBHOOK_SIGNERS_BYTES], const ng_webhook_signers *s,
                                         const char *id, int64_t timestamp, const uint8_t *body, size_t body_len);

/* What a request may be signed with; any field may be absent (NULL or length 0). */
typedef struct ng_webhook_keys {
    const uint8_t *secret; /* v1 */
    size_t secret_len;
    const uint8_t *secret_prev; /* v1, during a rotation */
    size_t secret_prev_len;
    const uint8_t *pk; /* v1a */
} ng_webhook_keys;

/*
 * Verifies the three headers against body. The timestamp must be within
 * tolerance_s of now (NG_ERR_EXPIRED if older, NG_ERR_NOT_YET_VALID if
 * newer); NG_ERR_MALFORMED for headers that do not parse; NG_ERR_AUTH if no
 * entry verifies with any key. Comparisons are constant-time.
 */
NG_MUST_CHECK ng_err ng_webhook_verify(const ng_webhook_keys *keys, const char *id, const char *timestamp,
                                       const char *signature, const uint8_t *body, size_t body_len, int64_t now,
                                       int64_t tolerance_s);

#endif

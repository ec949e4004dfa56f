/*
 * ng_submit.h: what a backend asks to send, parsed from the body of
 * POST /v1/tenants/{tenant}/messages, in one of three forms:
 *
 *   one message, JSON:
 *     {"recipient": "bob", "content_type": "text/plain", "body": "hi",
 *      "ttl": 3600, "pattern": "X", "type": "com.example.note", "subject": "s1"}
 *     with "body_base64" instead of "body" for bytes that are not text;
 *   a batch, JSON: {"messages": [ <one message>, ... ]} (1 to
 *     NG_SUBMIT_MAX_BATCH), all valid or the whole request is refused;
 *   CloudEvents binary mode: the raw body, its content-type header, and the
 *     attributes as headers: ce-specversion "1.0" and ce-recipient required;
 *     ce-type, ce-subject, ce-ttl, ce-pattern optional; ce-id and ce-source,
 *     if present, are ignored (the gateway names the message).
 *
 * Field rules (the same in every form):
 *   recipient     the local name of a peer: 1-63 of [a-z0-9-], not starting with '-'
 *   content_type  1-255 printable ASCII; default "text/plain; charset=utf-8" for
 *                 "body", "application/octet-stream" for "body_base64" and binary mode
 *   body          a JSON string (any UTF-8), or body_base64 (standard base64,
 *                 padded); exactly one of the two; may be empty
 *   ttl           seconds, an integer 1-2^31; absent: 0 (the caller's default)
 *   pattern       a pattern name (N, K, X, Npsk0, Kpsk0, Xpsk1); absent: the peer's choice
 *   type, subject 1-255 bytes of UTF-8 without control characters
 * Unknown fields are refused, so a misspelt field is never silently dropped;
 * so are duplicate keys.
 *
 * Parsing is pure (no I/O, no clock): whether the peer exists, accepts the
 * pattern, or the ttl and size are within the tenant's limits is the
 * caller's to check. THREAD SAFETY: reentrant.
 */
#ifndef NG_SUBMIT_H
#define NG_SUBMIT_H

#include <stddef.h>
#include <stdint.h>

#include "ng_error.h"
#include "ng_suite.h"

enum {
    NG_SUBMIT_MAX_BATCH = 1000,
    NG_SUBMIT_MAX_NAME = 63,   /* bytes of a recipient */
    NG_SUBMIT_MAX_FIELD = 255, /* bytes of content_type, type, subject */
    NG_SUBMIT_ERR_BYTES = 256,
};

typedef struct ng_submit_msg {
    char recipient[NG_SUBMIT_MAX_NAME + 1];
    char content_type[NG_SUBMIT_MAX_FIELD + 1];
    char type[NG_SUBMIT_MAX_FIELD + 1];    /* "" if absent */
    char subject[NG_SUBMIT_MAX_FIELD + 1]; /* "" if absent */
    int64_t ttl_s;                         /* 0 if absent */
    int has_pattern;
    ng_pattern pattern;
    const uint8_t *body; /* owned by the ng_submit (or the caller's body, in binary mode) */
    size_t body_len;
    /*
     * The parcel's meta: a compact JSON object with content_type, and type
     * and subject when given, in that order. NUL-terminated.
     */
    char *meta;
    size_t meta_len;
} ng_submit_msg;

typedef struct ng_submit {
    ng_submit_msg *msgs;
    size_t n;
    int batch;     /* the {"messages": [...]} form: answer with a list */
    void *private; /* what the bodies point into */
} ng_submit;

/*
 * Parses a JSON body (either JSON form). On failure *out is empty (safe to
 * free), the return is NG_ERR_PARSE (bad JSON, a missing, unknown,
 * duplicated or ill-typed field, bad base64) or NG_ERR_TOO_LARGE (a batch
 * over NG_SUBMIT_MAX_BATCH) or NG_ERR_NOMEM, and err holds one line for the
 * client naming the field ("messages[3].ttl: expected an integer
 * 1-2147483648"), never the body's content.
 */
NG_MUST_CHECK ng_err ng_submit_parse_json(ng_submit *out, const uint8_t *body, size_t len, char *err, size_t errlen);

/* Request headers for the binary form: the value of a header (case-insensitive name), or NULL. */
typedef const char *(*ng_submit_header_fn)(void *ctx, const char *name);

/*
 * Parses the CloudEvents binary form: the attributes from the headers, the
 * body as given (not copied: it must outlive *out). Errors as above, naming
 * the header ("ce-ttl: expected an integer 1-2147483648").
 */
NG_MUST_CHECK ng_err ng_submit_parse_binary(ng_submit *out, ng_submit_header_fn header, void *ctx, const uint8_t *body,
                                            size_t len, char *err, size_t errlen);

/* 1 if the request is in binary mode: it has a ce-specversion header. */
int ng_submit_is_binary(ng_submit_header_fn header, void *ctx);

/* Frees and wipes the bodies it owns; a zeroed or failed *s is a no-op. */
void ng_submit_free(ng_submit *s);

#endif

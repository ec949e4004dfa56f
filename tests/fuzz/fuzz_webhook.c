/*
 * fuzz_webhook: ng_webhook_verify with fuzzer-chosen headers and body
 * against fixed keys, and ng_webhook_secret_parse and
 * ng_webhook_public_parse on fuzzer-chosen text. These read what every
 * backend request carries, before anything else looks at it.
 *
 * The input:
 *   byte 0   bit 0-2  the v1 secret, the previous v1 secret, the v1a public
 *                     key: which of them the verifier holds;
 *            bit 3-4  a canned valid webhook-id, a canned timestamp (now)
 *                     instead of the fuzzed ones;
 *            bit 5-6  put a correct signature after / before the fuzzed
 *                     header (bit 7: v1a rather than v1; byte 1 bit 0: v1
 *                     under the previous secret);
 *   byte 1   bit 1    the timestamp is given as now + (signed) byte 2 * 4,
 *                     which reaches both ends of the tolerance;
 *   then     webhook-id, webhook-timestamp, webhook-signature and a key
 *            text for the two parse functions, each ended by '\n' (cut at
 *            a NUL, since a header value is a C string);
 *   the rest the body, as an exact-size heap block.
 *
 * What the target holds the code to (a violation aborts):
 *   - verify's answer is exactly what a model written here from
 *     ng_webhook.h and the Standard Webhooks spec says: MALFORMED for an id,
 *     timestamp or header that does not parse, EXPIRED / NOT_YET_VALID out
 *     of tolerance, else the entries are read left to right: a correct
 *     v1 or v1a entry (equal to what the signer makes, recomputed here)
 *     verifies, a malformed one stops with MALFORMED, an entry of another
 *     scheme is skipped, and no entry that verifies is AUTH. So a header
 *     verifies only if it holds a correct signature;
 *   - ng_webhook_sign_v1 / v1a refuse a bad id and make "v1,<44>" /
 *     "v1a,<88>" otherwise; what they make verifies, alone and after other
 *     well-formed entries, and fails with AUTH under a key not held;
 *   - secret_parse accepts exactly "whsec_" and 24-64 bytes of base64
 *     (decoded here by a strict decoder of our own), else leaves the output
 *     zeroed; public_parse accepts exactly "whpk_" and 32 bytes that are an
 *     Ed25519 point (BAD_KEY when they are not one).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fuzz_check.h"
#include "ng_webhook.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { N_FIELDS = 4, NOW = 1700000000, TOLERANCE = 300, MAC_B64 = 44, SIG_B64 = 88 };

static uint8_t secret[32], secret_prev[24], pk[32], sk[64];
static unsigned long long n_runs, n_ok, n_auth, n_malformed;

static void
print_stats(void)
{
    fprintf(stderr, "fuzz_webhook: %llu inputs, %llu verified, %llu AUTH, %llu MALFORMED\n", n_runs, n_ok, n_auth,
            n_malformed);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    uint8_t seed[32];

    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        abort();
    memset(secret, 0x11, sizeof secret);
    memset(secret_prev, 0x22, sizeof secret_prev);
    memset(seed, 0x33, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
    if (getenv("NG_FUZZ_STATS") != NULL)
        atexit(print_stats);
    return 0;
}

/* ---- a strict base64 (RFC 4648, padded, canonical), written again here ---- */

static int
b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* -1 unless s (n chars) is padded base64 with zero trailing bits that fits cap bytes; else the byte count. */
static long
b64_strict(const char *s, size_t n, uint8_t *out, size_t cap)
{
    size_t i, pad = 0, o = 0;
    uint32_t acc = 0;

    if (n % 4 != 0)
        return -1;
    if (n > 0 && s[n - 1] == '=')
        pad++;
    if (n > 1 && s[n - 2] == '=')
        pad++;
    for (i = 0; i < n - pad; i++) {
        int v = b64_value(s[i]);

        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        if (i % 4 == 3) {
            if (o + 3 > cap)
                return -1;
            out[o++] = (uint8_t)(acc >> 16);
            out[o++] = (uint8_t)(acc >> 8);
            out[o++] = (uint8_t)acc;
            acc = 0;
        }
    }
    if (pad == 2) {
        if ((acc & 0xf) != 0 || o + 1 > cap)
            return -1;
        out[o++] = (uint8_t)(acc >> 4);
    } else if (pad == 1) {
        if ((acc & 0x3) != 0 || o + 2 > cap)
            return -1;
        out[o++] = (uint8_t)(acc >> 10);
        out[o++] = (uint8_t)(acc >> 2);
    }
    return (long)o;
}

/* ---- the model of verify ---- */

static int
model_id(const char *id)
{
    size_t i, n = strlen(id);

    if (n < 1 || n > 128)
        return 0;
    for (i = 0; i < n; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') || (id[i] >= '0' && id[i] <= '9') ||
              id[i] == '_' || id[i] == '-'))
            return 0;
    return 1;
}

struct expected {
    char v1[MAC_B64 + 1], v1_prev[MAC_B64 + 1], v1a[SIG_B64 + 1]; /* "" when the verifier lacks that key */
};

/* The signatures of "<id>.<ts>.<body>", computed here without the code under test. */
static void
expected_of(struct expected *x, int keys, const char *id, const char *ts, const uint8_t *body, size_t blen)
{
    size_t plen = strlen(id) + strlen(ts) + 2;
    uint8_t *m = malloc(plen + blen + 1), mac[32], sig[64];

    CHECK(m != NULL);
    snprintf((char *)m, plen + 1, "%s.%s.", id, ts);
    if (blen > 0)
        memcpy(m + plen, body, blen);
    memset(x, 0, sizeof *x);
    if (keys & 1) {
        crypto_auth_hmacsha256_state st;

        crypto_auth_hmacsha256_init(&st, secret, sizeof secret);
        crypto_auth_hmacsha256_update(&st, m, plen + blen);
        crypto_auth_hmacsha256_final(&st, mac);
        sodium_bin2base64(x->v1, sizeof x->v1, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    }
    if (keys & 2) {
        crypto_auth_hmacsha256_state st;

        crypto_auth_hmacsha256_init(&st, secret_prev, sizeof secret_prev);
        crypto_auth_hmacsha256_update(&st, m, plen + blen);
        crypto_auth_hmacsha256_final(&st, mac);
        sodium_bin2base64(x->v1_prev, sizeof x->v1_prev, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    }
    if (keys & 4) {
        crypto_sign_detached(sig, NULL, m, plen + blen, sk);
        sodium_bin2base64(x->v1a, sizeof x->v1a, sig, sizeof sig, sodium_base64_VARIANT_ORIGINAL);
    }
    free(m);
}

static int
equal_text(const char *s, size_t n, const char *want)
{
    return want[0] != '\0' && strlen(want) == n && memcmp(s, want, n) == 0;
}

static ng_err
model_verify(int keys, const char *id, const char *ts, const char *header, const uint8_t *body, size_t blen)
{
    struct expected x;
    size_t i, n = strlen(ts), entries = 0;
    const char *p = header;
    long long t = 0;

    if (!model_id(id) || n < 1 || n > 12 || strspn(ts, "0123456789") != n || strlen(header) > 4096)
        return NG_ERR_MALFORMED;
    for (i = 0; i < n; i++)
        t = t * 10 + (ts[i] - '0');
    if (t < NOW - TOLERANCE)
        return NG_ERR_EXPIRED;
    if (t > NOW + TOLERANCE)
        return NG_ERR_NOT_YET_VALID;
    expected_of(&x, keys, id, ts, body, blen);
    for (;;) {
        const char *comma, *value;
        uint8_t raw[64];
        size_t len, vlen;

        p += strspn(p, " ");
        if (*p == '\0')
            break;
        len = strcspn(p, " ");
        comma = memchr(p, ',', len);
        if (comma == NULL || comma == p || ++entries > 16)
            return NG_ERR_MALFORMED;
        value = comma + 1;
        vlen = len - (size_t)(value - p);
        if (comma - p == 2 && memcmp(p, "v1", 2) == 0) {
            if (b64_strict(value, vlen, raw, sizeof raw) != 32)
                return NG_ERR_MALFORMED;
            if (equal_text(value, vlen, x.v1) || equal_text(value, vlen, x.v1_prev))
                return NG_OK;
        } else if (comma - p == 3 && memcmp(p, "v1a", 3) == 0) {
            if (b64_strict(value, vlen, raw, sizeof raw) != 64)
                return NG_ERR_MALFORMED;
            if (equal_text(value, vlen, x.v1a))
                return NG_OK;
        }
        /* Another scheme: skipped, whatever its value (Standard Webhooks: verifiers ignore unknown versions). */
        p += len;
    }
    return entries == 0 ? NG_ERR_MALFORMED : NG_ERR_AUTH;
}

/* ---- the checks ---- */

static ng_err
verify(int keys, const char *id, const char *ts, const char *header, const uint8_t *body, size_t blen)
{
    ng_webhook_keys k;
    ng_err err, want;

    memset(&k, 0, sizeof k);
    if (keys & 1) {
        k.secret = secret;
        k.secret_len = sizeof secret;
    }
    if (keys & 2) {
        k.secret_prev = secret_prev;
        k.secret_prev_len = sizeof secret_prev;
    }
    if (keys & 4)
        k.pk = pk;
    err = ng_webhook_verify(&k, id, ts, header, body, blen, NOW, TOLERANCE);
    want = model_verify(keys, id, ts, header, body, blen);
    if (err != want)
        fprintf(stderr, "ng_webhook_verify: %s, the model: %s\n", ng_strerror(err), ng_strerror(want));
    CHECK(err == want);
    return err;
}

/* What the signers make: its shape, and that it verifies where it should. */
static void
check_signers(int keys, const char *id, const char *ts, const char *header, const uint8_t *body, size_t blen)
{
    char v1[NG_WEBHOOK_SIGNATURE_BYTES], v1a[NG_WEBHOOK_SIGNATURE_BYTES], both[2 * NG_WEBHOOK_SIGNATURE_BYTES];
    int64_t t = strtoll(ts, NULL, 10);
    ng_err e1, e2;

    e1 = ng_webhook_sign_v1(v1, secret, sizeof secret, id, t, body, blen);
    e2 = ng_webhook_sign_v1a(v1a, sk, id, t, body, blen);
    if (!model_id(id) || t < 0) {
        CHECK(e1 == NG_ERR_INVALID_ARG && v1[0] == '\0');
        CHECK(e2 == NG_ERR_INVALID_ARG && v1a[0] == '\0');
        return;
    }
    CHECK(e1 == NG_OK && e2 == NG_OK);
    CHECK(strlen(v1) == 3 + MAC_B64 && memcmp(v1, "v1,", 3) == 0);
    CHECK(strlen(v1a) == 4 + SIG_B64 && memcmp(v1a, "v1a,", 4) == 0);
    /* Only a timestamp as the signer writes it (no leading zeros) is the same signed text. */
    if (strspn(ts, "0123456789") != strlen(ts) || strlen(ts) < 1 || strlen(ts) > 12 || (ts[0] == '0' && ts[1] != 0) ||
        t < NOW - TOLERANCE || t > NOW + TOLERANCE)
        return;
    CHECK(verify(1, id, ts, v1, body, blen) == NG_OK);
    CHECK(verify(4, id, ts, v1a, body, blen) == NG_OK);
    CHECK(verify(2 | 4, id, ts, v1, body, blen) == NG_ERR_AUTH);
    CHECK(verify(1 | 2, id, ts, v1a, body, blen) == NG_ERR_AUTH);
    snprintf(both, sizeof both, "%s %s", v1, v1a);
    CHECK(verify(keys & 4 ? 4 : 1, id, ts, both, body, blen) == NG_OK);
    /* After the fuzzed header: verifies unless the header is malformed first. */
    if (strlen(header) + 1 + strlen(v1a) <= NG_WEBHOOK_HEADER_MAX) {
        char *h = malloc(strlen(header) + 2 + strlen(v1a));
        ng_err e;

        CHECK(h != NULL);
        snprintf(h, strlen(header) + 2 + strlen(v1a), "%s %s", header, v1a);
        e = verify(4, id, ts, h, body, blen);
        CHECK(e == NG_OK || e == NG_ERR_MALFORMED);
        free(h);
    }
}

static void
check_secret_parse(const char *text)
{
    uint8_t out[NG_WEBHOOK_SECRET_MAX], model[NG_WEBHOOK_SECRET_MAX + 3], zero[NG_WEBHOOK_SECRET_MAX] = {0};
    size_t len = 99, n = strlen(text);
    long want = -1;
    ng_err err;

    memset(out, 0xa5, sizeof out);
    err = ng_webhook_secret_parse(text, out, sizeof out, &len);
    if (n >= 6 && memcmp(text, "whsec_", 6) == 0)
        want = b64_strict(text + 6, n - 6, model, sizeof model);
    if (want >= NG_WEBHOOK_SECRET_MIN && want <= NG_WEBHOOK_SECRET_MAX) {
        CHECK(err == NG_OK);
        CHECK(len == (size_t)want && memcmp(out, model, len) == 0);
    } else {
        CHECK(err == NG_ERR_PARSE);
        CHECK(len == 0 && memcmp(out, zero, sizeof out) == 0);
    }
    len = 99;
    CHECK(ng_webhook_secret_parse(text, out, sizeof out - 1, &len) == NG_ERR_BUFFER_TOO_SMALL && len == 0);
}

static void
check_public_parse(const char *text)
{
    uint8_t out[NG_WEBHOOK_PK_BYTES], model[NG_WEBHOOK_PK_BYTES + 3];
    size_t n = strlen(text);
    long want = -1;
    ng_err err;

    err = ng_webhook_public_parse(text, out);
    if (n >= 5 && memcmp(text, "whpk_", 5) == 0)
        want = b64_strict(text + 5, n - 5, model, sizeof model);
    if (want != NG_WEBHOOK_PK_BYTES) {
        CHECK(err == NG_ERR_PARSE);
    } else if (!crypto_core_ed25519_is_valid_point(model)) {
        CHECK(err == NG_ERR_BAD_KEY);
    } else {
        CHECK(err == NG_OK);
        CHECK(memcmp(out, model, sizeof out) == 0);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *field[N_FIELDS], *header, canned_ts[24], sig[NG_WEBHOOK_SIGNATURE_BYTES];
    const char *id, *ts;
    const uint8_t *p, *end = data + size;
    uint8_t *body;
    size_t i, blen;
    int keys;
    ng_err err;

    if (size < 3)
        return 0;
    n_runs++;
    keys = data[0] & 7;
    p = data + 3;
    for (i = 0; i < N_FIELDS; i++) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p)), *stop = nl != NULL ? nl : end, *nul;

        nul = memchr(p, 0, (size_t)(stop - p));
        field[i] = strndup((const char *)p, (size_t)((nul != NULL ? nul : stop) - p));
        CHECK(field[i] != NULL);
        p = nl != NULL ? nl + 1 : end;
    }
    blen = (size_t)(end - p);
    body = malloc(blen > 0 ? blen : 1);
    CHECK(body != NULL);
    if (blen > 0)
        memcpy(body, p, blen);

    id = data[0] & 8 ? "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W" : field[0];
    ts = field[1];
    if (data[0] & 16) {
        snprintf(canned_ts, sizeof canned_ts, "%d", NOW);
        ts = canned_ts;
    } else if (data[1] & 2) {
        snprintf(canned_ts, sizeof canned_ts, "%d", NOW + 4 * (int8_t)data[2]);
        ts = canned_ts;
    }
    /* A correct signature after or before the fuzzed header, when the signer takes these. */
    header = field[2];
    sig[0] = '\0';
    if ((data[0] & 0x60) && model_id(id) && strspn(ts, "0123456789") == strlen(ts) && strlen(ts) >= 1 &&
        strlen(ts) <= 12) {
        int64_t t = strtoll(ts, NULL, 10);
        size_t hlen;

        if (data[0] & 0x80)
            err = ng_webhook_sign_v1a(sig, sk, id, t, body, blen);
        else if (data[1] & 1)
            err = ng_webhook_sign_v1(sig, secret_prev, sizeof secret_prev, id, t, body, blen);
        else
            err = ng_webhook_sign_v1(sig, secret, sizeof secret, id, t, body, blen);
        CHECK(err == NG_OK);
        hlen = strlen(field[2]) + strlen(sig) + 2;
        header = malloc(hlen);
        CHECK(header != NULL);
        if (data[0] & 0x20)
            snprintf(header, hlen, "%s %s", field[2], sig);
        else
            snprintf(header, hlen, "%s %s", sig, field[2]);
    }

    err = verify(keys, id, ts, header, body, blen);
    n_ok += err == NG_OK;
    n_auth += err == NG_ERR_AUTH;
    n_malformed += err == NG_ERR_MALFORMED;
    check_signers(keys, id, ts, field[2], body, blen);
    check_secret_parse(field[3]);
    check_public_parse(field[3]);

    if (header != field[2])
        free(header);
    free(body);
    for (i = 0; i < N_FIELDS; i++)
        free(field[i]);
    return 0;
}

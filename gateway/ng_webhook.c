#include "ng_webhook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ng_b64.h"

enum {
    MAC_BYTES = crypto_auth_hmacsha256_BYTES,
    SIG_BYTES = crypto_sign_BYTES,
    TS_MAX = 20,
};

static ng_err
b64_prefixed(const char *s, const char *prefix, uint8_t *out, size_t cap, size_t *len)
{
    size_t plen = strlen(prefix), slen = strlen(s);

    if (strncmp(s, prefix, plen) != 0 || slen - plen > 4 * ((cap + 2) / 3))
        return NG_ERR_PARSE;
    return ng_b64_decode(out, cap, len, s + plen, slen - plen, sodium_base64_VARIANT_ORIGINAL);
}

ng_err
ng_webhook_secret_parse(const char *whsec, uint8_t *out, size_t cap, size_t *len)
{
    ng_err err;

    *len = 0;
    if (cap < NG_WEBHOOK_SECRET_MAX)
        return NG_ERR_BUFFER_TOO_SMALL;
    err = b64_prefixed(whsec, "whsec_", out, NG_WEBHOOK_SECRET_MAX, len);
    if (err == NG_OK && *len < NG_WEBHOOK_SECRET_MIN)
        err = NG_ERR_PARSE;
    if (err) {
        sodium_memzero(out, cap);
        *len = 0;
    }
    return err;
}

ng_err
ng_webhook_public_parse(const char *whpk, uint8_t pk[NG_WEBHOOK_PK_BYTES])
{
    size_t len;
    ng_err err = b64_prefixed(whpk, "whpk_", pk, NG_WEBHOOK_PK_BYTES, &len);

    if (err == NG_OK && len != NG_WEBHOOK_PK_BYTES)
        err = NG_ERR_PARSE;
    if (err == NG_OK && !crypto_core_ed25519_is_valid_point(pk))
        err = NG_ERR_BAD_KEY;
    return err;
}

int
ng_webhook_id_ok(const char *id)
{
    size_t i, len = id != NULL ? strlen(id) : 0;

    if (len == 0 || len > NG_WEBHOOK_ID_MAX)
        return 0;
    /* No '.': it separates the parts of the signed content. */
    for (i = 0; i < len; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') || (id[i] >= '0' && id[i] <= '9') ||
              id[i] == '_' || id[i] == '-'))
            return 0;
    return 1;
}

/* "<id>.<timestamp>." into prefix (the body follows it in the signed content). */
static int
content_prefix(char *prefix, size_t cap, const char *id, const char *ts)
{
    int n = snprintf(prefix, cap, "%s.%s.", id, ts);

    return n > 0 && (size_t)n < cap ? n : -1;
}

static void
hmac(uint8_t mac[MAC_BYTES], const uint8_t *secret, size_t slen, const char *prefix, size_t plen, const uint8_t *body,
     size_t blen)
{
    crypto_auth_hmacsha256_state st;

    crypto_auth_hmacsha256_init(&st, secret, slen);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)prefix, plen);
    crypto_auth_hmacsha256_update(&st, body, blen);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
}

/* Ed25519 (not Ed25519ph) signs one contiguous message. */
static uint8_t *
whole_content(const char *prefix, size_t plen, const uint8_t *body, size_t blen)
{
    uint8_t *m = malloc(plen + blen + 1);

    if (m == NULL)
        return NULL;
    memcpy(m, prefix, plen);
    if (blen > 0)
        memcpy(m + plen, body, blen);
    return m;
}

static ng_err
encode(char out[NG_WEBHOOK_SIGNATURE_BYTES], const char *scheme, const uint8_t *raw, size_t len)
{
    size_t slen = strlen(scheme);

    memcpy(out, scheme, slen);
    out[slen] = ',';
    sodium_bin2base64(out + slen + 1, NG_WEBHOOK_SIGNATURE_BYTES - slen - 1, raw, len, sodium_base64_VARIANT_ORIGINAL);
    return NG_OK;
}

ng_err
ng_webhook_sign_v1(char out[NG_WEBHOOK_SIGNATURE_BYTES], const uint8_t *secret, size_t secret_len, const char *id,
                   int64_t timestamp, const uint8_t *body, size_t body_len)
{
    char ts[TS_MAX + 1], prefix[NG_WEBHOOK_ID_MAX + TS_MAX + 3];
    uint8_t mac[MAC_BYTES];
    int plen;

    out[0] = '\0';
    if (!ng_webhook_id_ok(id) || timestamp < 0 || secret == NULL || secret_len == 0)
        return NG_ERR_INVALID_ARG;
    snprintf(ts, sizeof ts, "%lld", (long long)timestamp);
    plen = content_prefix(prefix, sizeof prefix, id, ts);
    if (plen < 0)
        return NG_ERR_INVALID_ARG;
    hmac(mac, secret, secret_len, prefix, (size_t)plen, body, body_len);
    return encode(out, "v1", mac, sizeof mac);
}

ng_err
ng_webhook_sign_v1a(char out[NG_WEBHOOK_SIGNATURE_BYTES], const uint8_t sk[NG_WEBHOOK_SK_BYTES], const char *id,
                    int64_t timestamp, const uint8_t *body, size_t body_len)
{
    char ts[TS_MAX + 1], prefix[NG_WEBHOOK_ID_MAX + TS_MAX + 3];
    uint8_t sig[SIG_BYTES], *m;
    int plen;

    out[0] = '\0';
    if (!ng_webhook_id_ok(id) || timestamp < 0)
        return NG_ERR_INVALID_ARG;
    snprintf(ts, sizeof ts, "%lld", (long long)timestamp);
    plen = content_prefix(prefix, sizeof prefix, id, ts);
    if (plen < 0)
        return NG_ERR_INVALID_ARG;
    m = whole_content(prefix, (size_t)plen, body, body_len);
    if (m == NULL)
        return NG_ERR_NOMEM;
    crypto_sign_detached(sig, NULL, m, (size_t)plen + body_len, sk);
    free(m);
    return encode(out, "v1a", sig, sizeof sig);
}

ng_err
ng_webhook_sign_all(char out[NG_WEBHOOK_SIGNERS_BYTES], const ng_webhook_signers *s, const char *id, int64_t timestamp,
                    const uint8_t *body, size_t body_len)
{
    char sig[NG_WEBHOOK_SIGNATURE_BYTES];
    size_t o = 0;
    int k;
    ng_err err = NG_OK;

    out[0] = '\0';
    for (k = 0; k < 4 && err == NG_OK; k++) {
        if (k == 0 && s->secret != NULL && s->secret_len > 0)
            err = ng_webhook_sign_v1(sig, s->secret, s->secret_len, id, timestamp, body, body_len);
        else if (k == 1 && s->secret_prev != NULL && s->secret_prev_len > 0)
            err = ng_webhook_sign_v1(sig, s->secret_prev, s->secret_prev_len, id, timestamp, body, body_len);
        else if (k == 2 && s->sk != NULL)
            err = ng_webhook_sign_v1a(sig, s->sk, id, timestamp, body, body_len);
        else if (k == 3 && s->sk_prev != NULL)
            err = ng_webhook_sign_v1a(sig, s->sk_prev, id, timestamp, body, body_len);
        else
            continue;
        if (err == NG_OK)
            o += (size_t)snprintf(out + o, NG_WEBHOOK_SIGNERS_BYTES - o, "%s%s", o > 0 ? " " : "", sig);
    }
    if (err)
        out[0] = '\0';
    return err;
}

/* The timestamp header: digits only, a plausible length. */
static int
parse_ts(const char *s, int64_t *out)
{
    size_t i, len = s != NULL ? strlen(s) : 0;
    int64_t v = 0;

    if (len == 0 || len > 12)
        return -1;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

ng_err
ng_webhook_verify(const ng_webhook_keys *keys, const char *id, const char *timestamp, const char *signature,
                  const uint8_t *body, size_t body_len, int64_t now, int64_t tolerance_s)
{
    char prefix[NG_WEBHOOK_ID_MAX + TS_MAX + 3];
    uint8_t mac[MAC_BYTES], mac_prev[MAC_BYTES], raw[SIG_BYTES], *whole = NULL;
    const char *p;
    int64_t ts;
    int plen, entries = 0, ok = 0;
    size_t len;

    if (!ng_webhook_id_ok(id) || parse_ts(timestamp, &ts) != 0 || signature == NULL ||
        strlen(signature) > NG_WEBHOOK_HEADER_MAX)
        return NG_ERR_MALFORMED;
    if (ts < now - tolerance_s)
        return NG_ERR_EXPIRED;
    if (ts > now + tolerance_s)
        return NG_ERR_NOT_YET_VALID;
    plen = content_prefix(prefix, sizeof prefix, id, timestamp);
    if (plen < 0)
        return NG_ERR_MALFORMED;
    if (keys->secret != NULL && keys->secret_len > 0)
        hmac(mac, keys->secret, keys->secret_len, prefix, (size_t)plen, body, body_len);
    if (keys->secret_prev != NULL && keys->secret_prev_len > 0)
        hmac(mac_prev, keys->secret_prev, keys->secret_prev_len, prefix, (size_t)plen, body, body_len);
    for (p = signature; *p != '\0';) {
        const char *end, *comma;
        char b64[4 * ((SIG_BYTES + 2) / 3) + 1];
        size_t n;

        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        end = strchr(p, ' ');
        if (end == NULL)
            end = p + strlen(p);
        comma = memchr(p, ',', (size_t)(end - p));
        if (comma == NULL || comma == p || ++entries > NG_WEBHOOK_MAX_ENTRIES) {
            ok = -1;
            break;
        }
        n = (size_t)(end - comma - 1);
        /* An entry of another version is skipped, however long: a later scheme must not make today's verifier fail. */
        if (!((comma - p == 2 && memcmp(p, "v1", 2) == 0) || (comma - p == 3 && memcmp(p, "v1a", 3) == 0))) {
            p = end;
            continue;
        }
        if (n >= sizeof b64) {
            ok = -1;
            break;
        }
        memcpy(b64, comma + 1, n);
        b64[n] = '\0';
        if ((size_t)(comma - p) == 2 && memcmp(p, "v1", 2) == 0) {
            if (ng_b64_decode(raw, sizeof raw, &len, b64, n, sodium_base64_VARIANT_ORIGINAL) != NG_OK ||
                len != MAC_BYTES) {
                ok = -1;
                break;
            }
            if (keys->secret != NULL && keys->secret_len > 0 && sodium_memcmp(raw, mac, MAC_BYTES) == 0)
                ok = 1;
            if (keys->secret_prev != NULL && keys->secret_prev_len > 0 && sodium_memcmp(raw, mac_prev, MAC_BYTES) == 0)
                ok = 1;
        } else if ((size_t)(comma - p) == 3 && memcmp(p, "v1a", 3) == 0) {
            if (ng_b64_decode(raw, sizeof raw, &len, b64, n, sodium_base64_VARIANT_ORIGINAL) != NG_OK ||
                len != SIG_BYTES) {
                ok = -1;
                break;
            }
            if (keys->pk != NULL) {
                if (whole == NULL)
                    whole = whole_content(prefix, (size_t)plen, body, body_len);
                if (whole != NULL && crypto_sign_verify_detached(raw, whole, (size_t)plen + body_len, keys->pk) == 0)
                    ok = 1;
            }
        }
        if (ok == 1)
            break;
        p = end;
    }
    free(whole);
    sodium_memzero(mac, sizeof mac);
    sodium_memzero(mac_prev, sizeof mac_prev);
    if (ok < 0 || entries == 0)
        return NG_ERR_MALFORMED;
    return ok == 1 ? NG_OK : NG_ERR_AUTH;
}

#include "ng_peer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ng_b64.h"
#include "ng_hex.h"
#include "ng_key.h"
#include "ng_redis.h"
#include "ng_suite.h"
#include "ng_tenant.h"

enum {
    NAME_CAP = NG_VAULT_MAX_NAME + 1,
    PK_BYTES = crypto_sign_PUBLICKEYBYTES,
    SIG_BYTES = crypto_sign_BYTES,
    SECRET = NG_TENANT_SECRET_BYTES,
    MAX_PATTERNS = 6,
    MAX_SUITES = 6,
};

static const char prefix[] = "ngcp1:";
static const char sig_context[] = "noisegate-cp-v1\n";
#define JSON_CANONICAL (JSON_COMPACT | JSON_SORT_KEYS)

int
ng_peer_outbox_ok(const char *url)
{
    ng_redis_url u;

    if (strncmp(url, "redis://", 8) != 0)
        return ng_tenant_url_ok(url);
    return ng_tenant_url_text_ok(url) && ng_redis_parse_url(&u, url) == NG_OK && u.host[0] != '\0';
}

void
ng_peer_fingerprint(char out[NG_PEER_FINGERPRINT_BYTES], const uint8_t pk[32])
{
    uint8_t h[32];
    char hex[33];
    int i, o = 0;

    crypto_generichash(h, sizeof h, pk, 32, NULL, 0);
    ng_hex_encode(hex, sizeof hex, h, 16);
    for (i = 0; i < 32; i++) {
        if (i > 0 && i % 4 == 0)
            out[o++] = '-';
        out[o++] = hex[i];
    }
    out[o] = '\0';
}

/*
 * Lower-case hex only: "sig" is outside the signed text, and hex that also
 * took upper case would give one document many valid encodings.
 */
static int
hex_field(json_t *doc, const char *key, uint8_t *out, size_t len)
{
    const char *s = json_string_value(json_object_get(doc, key));
    size_t i;

    if (s == NULL || ng_hex_decode(out, len, s, strlen(s)) != NG_OK)
        return 0;
    for (i = 0; s[i] != '\0'; i++)
        if (s[i] >= 'A' && s[i] <= 'F')
            return 0;
    return 1;
}

static json_t *
hex_string(const uint8_t *bytes, size_t len)
{
    char hex[2 * SIG_BYTES + 1];

    ng_hex_encode(hex, sizeof hex, bytes, len);
    return json_string(hex);
}

/* Ed25519 over the context and the canonical text of doc without "sig". */
static ng_err
signed_text(json_t *doc, char **text)
{
    json_t *copy = json_copy(doc);

    *text = NULL;
    if (copy == NULL)
        return NG_ERR_NOMEM;
    json_object_del(copy, "sig");
    *text = json_dumps(copy, JSON_CANONICAL);
    json_decref(copy);
    return *text == NULL ? NG_ERR_NOMEM : NG_OK;
}

/* The message signed: the context, then the canonical text without "sig". Plain Ed25519, not Ed25519ph. */
static ng_err
signed_message(json_t *doc, uint8_t **msg, size_t *len)
{
    char *text;
    ng_err err = signed_text(doc, &text);

    *msg = NULL;
    if (err)
        return err;
    *len = strlen(sig_context) + strlen(text);
    *msg = malloc(*len);
    if (*msg != NULL) {
        memcpy(*msg, sig_context, strlen(sig_context));
        memcpy(*msg + strlen(sig_context), text, strlen(text));
    }
    sodium_memzero(text, strlen(text));
    free(text);
    return *msg == NULL ? NG_ERR_NOMEM : NG_OK;
}

static ng_err
sign_doc(json_t *doc, const uint8_t sk[crypto_sign_SECRETKEYBYTES])
{
    uint8_t sig[SIG_BYTES], *msg;
    size_t len;
    ng_err err = signed_message(doc, &msg, &len);

    if (err)
        return err;
    crypto_sign_detached(sig, NULL, msg, len, sk);
    sodium_memzero(msg, len);
    free(msg);
    return json_object_set_new(doc, "sig", hex_string(sig, sizeof sig)) == 0 ? NG_OK : NG_ERR_NOMEM;
}

static ng_err
verify_doc(json_t *doc, const uint8_t pk[PK_BYTES])
{
    uint8_t sig[SIG_BYTES], *msg;
    size_t len;
    ng_err err;

    if (!hex_field(doc, "sig", sig, sizeof sig))
        return NG_ERR_PARSE;
    err = signed_message(doc, &msg, &len);
    if (err)
        return err;
    err = crypto_sign_verify_detached(sig, msg, len, pk) == 0 ? NG_OK : NG_ERR_AUTH;
    sodium_memzero(msg, len);
    free(msg);
    return err;
}

ng_err
ng_peer_export(ng_vault *v, const char *slug, const char *outbox, int64_t now, char **out,
               char fingerprint[NG_PEER_FINGERPRINT_BYTES])
{
    uint8_t sk[crypto_sign_SECRETKEYBYTES], secret[SECRET], pk[PK_BYTES];
    json_t *rec, *doc = NULL, *keys, *k;
    char *text = NULL;
    size_t i, b64len;
    ng_err err;

    *out = NULL;
    if (!ng_peer_outbox_ok(outbox))
        return NG_ERR_INVALID_ARG;
    err = ng_tenant_record(v, slug, &rec);
    if (err)
        return err;
    keys = json_array();
    json_array_foreach(json_object_get(rec, "keys"), i, k) json_array_append_new(
        keys, json_pack("{s:O, s:O}", "epoch", json_object_get(k, "epoch"), "public", json_object_get(k, "public")));
    doc = json_pack("{s:i, s:s, s:o, s:O, s:[s], s:s, s:O, s:I}", "v", 1, "name", slug, "keys", keys, "patterns",
                    json_object_get(rec, "patterns"), "suites", ng_suite_name(NG_SUITE_DEFAULT), "outbox", outbox,
                    "signing_key", json_object_get(rec, "signing_public"), "created", (json_int_t)now);
    if (doc == NULL)
        err = NG_ERR_CORRUPT;
    if (err == NG_OK && (err = ng_tenant_secret(v, slug, "read_token", secret, sizeof secret)) == NG_OK)
        json_object_set_new(doc, "read_token", hex_string(secret, sizeof secret));
    if (err == NG_OK && json_is_true(json_object_get(rec, "psk")) &&
        (err = ng_tenant_secret(v, slug, "psk", secret, sizeof secret)) == NG_OK)
        json_object_set_new(doc, "psk", hex_string(secret, sizeof secret));
    sodium_memzero(secret, sizeof secret);
    if (err == NG_OK && (err = ng_tenant_secret(v, slug, "sign", sk, sizeof sk)) == NG_OK)
        err = sign_doc(doc, sk);
    sodium_memzero(sk, sizeof sk);
    if (err == NG_OK && (text = json_dumps(doc, JSON_CANONICAL)) == NULL)
        err = NG_ERR_NOMEM;
    if (err == NG_OK) {
        b64len = sodium_base64_ENCODED_LEN(strlen(text), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        *out = malloc(sizeof prefix - 1 + b64len);
        if (*out == NULL) {
            err = NG_ERR_NOMEM;
        } else {
            memcpy(*out, prefix, sizeof prefix - 1);
            sodium_bin2base64(*out + sizeof prefix - 1, b64len, (const uint8_t *)text, strlen(text),
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        }
    }
    if (err == NG_OK && fingerprint != NULL && hex_field(rec, "signing_public", pk, sizeof pk))
        ng_peer_fingerprint(fingerprint, pk);
    if (text != NULL) {
        sodium_memzero(text, strlen(text));
        free(text);
    }
    json_decref(doc);
    json_decref(rec);
    return err;
}

/* Every field present, of its type and form; nothing else. */
static ng_err
check_params(json_t *doc)
{
    static const char *const known[] = {"v",       "name", "keys",       "patterns",    "suites", "outbox",
                                        "created", "psk",  "read_token", "signing_key", "sig",    NULL};
    uint8_t buf[SIG_BYTES];
    const char *key, *s;
    json_t *val, *k;
    size_t i, j;

    /* The version first: a later version may well have other fields. */
    if (!json_is_integer(json_object_get(doc, "v")))
        return NG_ERR_PARSE;
    if (json_integer_value(json_object_get(doc, "v")) != 1)
        return NG_ERR_BAD_VERSION;
    json_object_foreach(doc, key, val)
    {
        for (j = 0; known[j] != NULL && strcmp(known[j], key) != 0; j++)
            ;
        if (known[j] == NULL)
            return NG_ERR_PARSE;
    }
    s = json_string_value(json_object_get(doc, "name"));
    if (s == NULL || !ng_tenant_slug_ok(s))
        return NG_ERR_PARSE;
    s = json_string_value(json_object_get(doc, "outbox"));
    if (s == NULL || !ng_peer_outbox_ok(s))
        return NG_ERR_PARSE;
    if (!json_is_integer(json_object_get(doc, "created")) || json_integer_value(json_object_get(doc, "created")) < 0)
        return NG_ERR_PARSE;
    val = json_object_get(doc, "keys");
    if (!json_is_array(val) || json_array_size(val) == 0 || json_array_size(val) > NG_TENANT_MAX_KEYS)
        return NG_ERR_PARSE;
    json_array_foreach(val, i, k)
    {
        json_int_t e = json_integer_value(json_object_get(k, "epoch"));
        if (json_object_size(k) != 2 || !json_is_integer(json_object_get(k, "epoch")) || e < 1 || e > UINT32_MAX ||
            !hex_field(k, "public", buf, NG_KEY_BYTES))
            return NG_ERR_PARSE;
    }
    val = json_object_get(doc, "patterns");
    if (!json_is_array(val) || json_array_size(val) == 0 || json_array_size(val) > MAX_PATTERNS)
        return NG_ERR_PARSE;
    json_array_foreach(val, i, k)
    {
        ng_pattern p;
        if (!json_is_string(k) || ng_pattern_parse(json_string_value(k), &p) != NG_OK)
            return NG_ERR_PARSE;
    }
    val = json_object_get(doc, "suites");
    if (!json_is_array(val) || json_array_size(val) == 0 || json_array_size(val) > MAX_SUITES)
        return NG_ERR_PARSE;
    json_array_foreach(val, i, k)
    {
        ng_suite su;
        if (!json_is_string(k) || ng_suite_parse(json_string_value(k), &su) != NG_OK)
            return NG_ERR_PARSE;
    }
    if (!hex_field(doc, "read_token", buf, SECRET) || !hex_field(doc, "signing_key", buf, PK_BYTES) ||
        !crypto_core_ed25519_is_valid_point(buf))
        return NG_ERR_PARSE;
    if (json_object_get(doc, "psk") != NULL && !hex_field(doc, "psk", buf, SECRET))
        return NG_ERR_PARSE;
    sodium_memzero(buf, sizeof buf);
    return NG_OK;
}

/* Decodes, checks and verifies; *out holds the secrets still. */
static ng_err
parse_params(const char *params, json_t **out)
{
    uint8_t pk[PK_BYTES];
    char *text, *canon;
    size_t len, plen = strlen(params);
    json_t *doc;
    ng_err err;

    *out = NULL;
    if (plen > NG_PEER_MAX_PARAMS)
        return NG_ERR_TOO_LARGE;
    if (strncmp(params, "ngcp", 4) == 0 && strncmp(params, prefix, sizeof prefix - 1) != 0 &&
        strchr(params, ':') != NULL)
        return NG_ERR_BAD_VERSION;
    if (strncmp(params, prefix, sizeof prefix - 1) != 0)
        return NG_ERR_PARSE;
    text = malloc(plen + 1);
    if (text == NULL)
        return NG_ERR_NOMEM;
    if (ng_b64_decode((uint8_t *)text, plen, &len, params + sizeof prefix - 1, plen - (sizeof prefix - 1),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != NG_OK) {
        free(text);
        return NG_ERR_PARSE;
    }
    text[len] = '\0';
    doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    err = json_is_object(doc) ? check_params(doc) : NG_ERR_PARSE;
    /* One encoding per document: nothing can ride along outside the signed text. */
    if (err == NG_OK) {
        canon = json_dumps(doc, JSON_CANONICAL);
        if (canon == NULL || strlen(canon) != len || memcmp(canon, text, len) != 0)
            err = NG_ERR_PARSE;
        if (canon != NULL) {
            sodium_memzero(canon, strlen(canon));
            free(canon);
        }
    }
    if (err == NG_OK && hex_field(doc, "signing_key", pk, sizeof pk))
        err = verify_doc(doc, pk);
    sodium_memzero(text, len);
    free(text);
    if (err) {
        json_decref(doc);
        return err;
    }
    *out = doc;
    return NG_OK;
}

/* The parameters as shown: secrets become booleans, the fingerprint is added. */
static void
strip_secrets(json_t *doc)
{
    uint8_t pk[PK_BYTES];
    char fp[NG_PEER_FINGERPRINT_BYTES];

    json_object_set_new(doc, "psk", json_boolean(json_object_get(doc, "psk") != NULL));
    json_object_set_new(doc, "read_token", json_boolean(json_object_get(doc, "read_token") != NULL));
    json_object_del(doc, "sig");
    if (hex_field(doc, "signing_key", pk, sizeof pk)) {
        ng_peer_fingerprint(fp, pk);
        json_object_set_new(doc, "fingerprint", json_string(fp));
    }
}

ng_err
ng_peer_decode(const char *params, json_t **out)
{
    ng_err err = parse_params(params, out);

    if (err == NG_OK)
        strip_secrets(*out);
    return err;
}

static ng_err
peer_name(char name[NAME_CAP], const char *slug, const char *peer, const char *suffix)
{
    int n;

    if (!ng_tenant_slug_ok(slug) || !ng_tenant_slug_ok(peer))
        return NG_ERR_INVALID_ARG;
    n = snprintf(name, NAME_CAP, "tenant/%s/peer/%s%s", slug, peer, suffix);
    return n < 0 || n >= NAME_CAP ? NG_ERR_INVALID_ARG : NG_OK;
}

/* Stores a hex secret of doc under name, or deletes the entry if doc has none. */
static ng_err
put_secret(ng_vault *v, json_t *doc, const char *field, const char *name)
{
    uint8_t secret[SECRET];
    ng_err err;

    if (json_object_get(doc, field) == NULL) {
        err = ng_vault_delete(v, name);
        return err == NG_ERR_NOT_FOUND ? NG_OK : err;
    }
    if (!hex_field(doc, field, secret, sizeof secret))
        return NG_ERR_PARSE;
    err = ng_vault_put(v, name, secret, sizeof secret);
    sodium_memzero(secret, sizeof secret);
    return err;
}

/* Refuses static keys of low order (a DH with them is all zero) and non-canonical encodings of a key. */
static ng_err
check_keys(json_t *keys)
{
    uint8_t pub[NG_KEY_BYTES];
    size_t i;
    json_t *k;
    ng_err err;

    json_array_foreach(keys, i, k)
    {
        if (!hex_field(k, "public", pub, sizeof pub))
            return NG_ERR_PARSE;
        if ((err = ng_key_public_ok(pub)) != NG_OK)
            return err;
    }
    return NG_OK;
}

ng_err
ng_peer_import(ng_vault *v, const char *slug, const char *params, const char *name, int64_t now, char used[64])
{
    char rec_name[NAME_CAP], secret_name[NAME_CAP];
    json_t *doc, *old = NULL, *rec = NULL;
    ng_err err = parse_params(params, &doc);

    if (used != NULL)
        used[0] = '\0';
    if (err)
        return err;
    if (name == NULL)
        name = json_string_value(json_object_get(doc, "name"));
    err = peer_name(rec_name, slug, name, "");
    if (err == NG_OK) {
        json_t *tenant;
        err = ng_tenant_record(v, slug, &tenant);
        json_decref(tenant);
    }
    if (err == NG_OK)
        err = check_keys(json_object_get(doc, "keys"));
    if (err == NG_OK && ng_tenant_get_json(v, rec_name, &old) == NG_OK) {
        if (!json_equal(json_object_get(old, "signing_key"), json_object_get(doc, "signing_key")))
            err = NG_ERR_AUTH;
        else if (json_integer_value(json_object_get(old, "created")) >
                 json_integer_value(json_object_get(doc, "created")))
            err = NG_ERR_EXISTS; /* older parameters than those we hold: a rollback */
    }
    if (err == NG_OK) {
        rec = json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:b, s:I}", "peer_name", json_object_get(doc, "name"),
                        "keys", json_object_get(doc, "keys"), "patterns", json_object_get(doc, "patterns"), "suites",
                        json_object_get(doc, "suites"), "outbox", json_object_get(doc, "outbox"), "signing_key",
                        json_object_get(doc, "signing_key"), "created", json_object_get(doc, "created"), "psk",
                        json_object_get(doc, "psk") != NULL, "imported", (json_int_t)now);
        err = rec == NULL ? NG_ERR_NOMEM : ng_tenant_put_json(v, rec_name, rec);
    }
    if (err == NG_OK && (err = peer_name(secret_name, slug, name, "/psk")) == NG_OK)
        err = put_secret(v, doc, "psk", secret_name);
    if (err == NG_OK && (err = peer_name(secret_name, slug, name, "/read_token")) == NG_OK)
        err = put_secret(v, doc, "read_token", secret_name);
    if (err == NG_OK && used != NULL)
        snprintf(used, 64, "%s", name);
    json_decref(rec);
    json_decref(old);
    json_decref(doc);
    return err;
}

ng_err
ng_peer_remove(ng_vault *v, const char *slug, const char *name)
{
    char rec_name[NAME_CAP];
    ng_err err = peer_name(rec_name, slug, name, "");

    if (err == NG_OK)
        err = ng_vault_delete(v, rec_name);
    if (err == NG_OK && (err = peer_name(rec_name, slug, name, "/")) == NG_OK)
        err = ng_tenant_delete_prefix(v, rec_name, NULL);
    return err;
}

ng_err
ng_peer_list(ng_vault *v, const char *slug, json_t **out)
{
    json_t *p;
    size_t i;
    ng_err err = ng_tenant_records(v, slug, "peer", "name", out);

    if (err)
        return err;
    json_array_foreach(*out, i, p)
    {
        uint8_t pk[PK_BYTES];
        char fp[NG_PEER_FINGERPRINT_BYTES];
        if (hex_field(p, "signing_key", pk, sizeof pk)) {
            ng_peer_fingerprint(fp, pk);
            json_object_set_new(p, "fingerprint", json_string(fp));
        }
    }
    return NG_OK;
}

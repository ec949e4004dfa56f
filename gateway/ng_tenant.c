#include "ng_tenant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ng_hex.h"
#include "ng_nats.h"
#include "ng_suite.h"
#include "ng_webhook.h"

enum {
    NAME_CAP = NG_VAULT_MAX_NAME + 1,
    SIGN_SK_BYTES = crypto_sign_SECRETKEYBYTES,
};

int
ng_tenant_slug_ok(const char *s)
{
    size_t i, len = strlen(s);

    if (len == 0 || len > NG_TENANT_MAX_SLUG || s[0] == '-')
        return 0;
    for (i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

int
ng_tenant_url_text_ok(const char *url)
{
    size_t i, len = strlen(url);

    if (len > NG_TENANT_MAX_URL)
        return 0;
    for (i = 0; i < len; i++)
        if (url[i] <= ' ' || url[i] == 0x7f || url[i] == '"' || url[i] == '\\')
            return 0;
    return 1;
}

int
ng_tenant_url_ok(const char *url)
{
    const char *host;

    if (strncmp(url, "http://", 7) == 0)
        host = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        host = url + 8;
    else
        return 0;
    if (*host == '\0' || strchr("/:?#", *host) != NULL || !ng_tenant_url_text_ok(url))
        return 0;
    /* Credentials in a URL end up in logs and listings. */
    return memchr(host, '@', strcspn(host, "/?#")) == NULL;
}

int
ng_tenant_nats_url_ok(const char *url)
{
    const char *host = url + 7;
    size_t i;

    if (strncmp(url, "nats://", 7) != 0 || *host == '\0' || strlen(url) > NG_NATS_URL_MAX ||
        !ng_tenant_url_text_ok(url))
        return 0;
    /* One server, as host or host:port: credentials would end up in logs and listings, and libnats reads a list. */
    for (i = 0; host[i] != '\0'; i++)
        if (strchr("/?#@,", host[i]) != NULL)
            return 0;
    return host[0] != ':';
}

/* "tenant/<slug>" followed by a formatted suffix. */
static ng_err
name_of(char name[NAME_CAP], const char *slug, const char *fmt, const char *arg)
{
    char suffix[NAME_CAP];
    int n;

    if (!ng_tenant_slug_ok(slug))
        return NG_ERR_INVALID_ARG;
    n = snprintf(suffix, sizeof suffix, fmt, arg);
    if (n < 0 || (size_t)n >= sizeof suffix)
        return NG_ERR_INVALID_ARG;
    n = snprintf(name, NAME_CAP, "tenant/%s%s", slug, suffix);
    return n < 0 || n >= NAME_CAP ? NG_ERR_INVALID_ARG : NG_OK;
}

ng_err
ng_tenant_get_json(ng_vault *v, const char *name, json_t **out)
{
    uint8_t probe[1], *buf;
    size_t len;
    ng_err err = ng_vault_get(v, name, probe, 0, &len);

    *out = NULL;
    if (err != NG_ERR_BUFFER_TOO_SMALL)
        return err == NG_OK ? NG_ERR_CORRUPT : err; /* an empty value is no JSON object */
    buf = malloc(len);
    if (buf == NULL)
        return NG_ERR_NOMEM;
    err = ng_vault_get(v, name, buf, len, &len);
    if (err == NG_OK) {
        *out = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(*out)) {
            json_decref(*out);
            *out = NULL;
            err = NG_ERR_CORRUPT;
        }
    }
    free(buf);
    return err;
}

ng_err
ng_tenant_put_json(ng_vault *v, const char *name, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    ng_err err;

    if (text == NULL)
        return NG_ERR_NOMEM;
    err = ng_vault_put(v, name, (const uint8_t *)text, strlen(text));
    free(text);
    return err;
}

ng_err
ng_tenant_delete_prefix(ng_vault *v, const char *prefix, size_t *count)
{
    size_t i = ng_vault_lower_bound(v, prefix), plen = strlen(prefix), n = 0;

    /* The entries under prefix are one run in name order; deleting shifts the next one to i. */
    while (i < ng_vault_count(v) && strncmp(ng_vault_name(v, i), prefix, plen) == 0) {
        ng_err err = ng_vault_delete(v, ng_vault_name(v, i));
        if (err)
            return err;
        n++;
    }
    if (count != NULL)
        *count = n;
    return NG_OK;
}

ng_err
ng_tenant_record(ng_vault *v, const char *slug, json_t **out)
{
    char name[NAME_CAP];
    ng_err err = name_of(name, slug, "%s", "");

    *out = NULL;
    return err ? err : ng_tenant_get_json(v, name, out);
}

/* Stores a fresh random secret of len bytes under name, wiping the copy. */
static ng_err
put_random(ng_vault *v, const char *name, size_t len)
{
    uint8_t secret[64];
    ng_err err;

    randombytes_buf(secret, len);
    err = ng_vault_put(v, name, secret, len);
    sodium_memzero(secret, sizeof secret);
    return err;
}

static json_t *
hex_string(const uint8_t *bytes, size_t len)
{
    char hex[2 * 64 + 1];

    ng_hex_encode(hex, sizeof hex, bytes, len);
    return json_string(hex);
}

/* Makes the key pair of a new epoch: the private key into the vault, the public key into keys. */
static ng_err
add_epoch(ng_vault *v, const char *slug, json_t *keys, uint32_t epoch, int64_t now)
{
    char name[NAME_CAP], num[16];
    ng_keypair kp;
    ng_err err;

    snprintf(num, sizeof num, "%u", epoch);
    err = name_of(name, slug, "/key/%s", num);
    if (err)
        return err;
    ng_keypair_generate(&kp);
    err = ng_vault_put(v, name, kp.priv, sizeof kp.priv);
    if (err == NG_OK &&
        json_array_append_new(keys, json_pack("{s:I, s:o, s:I}", "epoch", (json_int_t)epoch, "public",
                                              hex_string(kp.pub, sizeof kp.pub), "created", (json_int_t)now)) != 0)
        err = NG_ERR_NOMEM;
    ng_keypair_wipe(&kp);
    return err;
}

static json_t *
default_patterns(const ng_tenant_opts *o)
{
    json_t *a = json_array();

    if (o->psk) {
        json_array_append_new(a, json_string("Xpsk1"));
        json_array_append_new(a, json_string("Kpsk0"));
        if (o->allow_anonymous)
            json_array_append_new(a, json_string("Npsk0"));
    } else {
        json_array_append_new(a, json_string("X"));
        json_array_append_new(a, json_string("K"));
        if (o->allow_anonymous)
            json_array_append_new(a, json_string("N"));
    }
    return a;
}

ng_err
ng_tenant_create(ng_vault *v, const char *slug, const ng_tenant_opts *o, int64_t now)
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[SIGN_SK_BYTES];
    char name[NAME_CAP];
    json_t *rec, *keys;
    uint8_t probe[1];
    size_t len;
    ng_err err;

    err = name_of(name, slug, "%s", "");
    if (err)
        return err;
    if (ng_vault_get(v, name, probe, 0, &len) != NG_ERR_NOT_FOUND)
        return NG_ERR_EXISTS;
    /* Leftovers of a tenant of the same name must not leak into the new one. */
    err = name_of(name, slug, "%s", "/");
    if (err == NG_OK)
        err = ng_tenant_delete_prefix(v, name, NULL);
    if (err)
        return err;

    keys = json_array();
    rec = json_pack("{s:i, s:s, s:I, s:o, s:o, s:b, s:{s:I, s:I}, s:i}", "v", 1, "slug", slug, "created",
                    (json_int_t)now, "keys", keys, "patterns", default_patterns(o), "psk", o->psk != 0, "limits",
                    "max_message", (json_int_t)o->max_message, "rate", (json_int_t)o->rate, "next_backend", 1);
    if (rec == NULL)
        return NG_ERR_NOMEM;
    err = add_epoch(v, slug, keys, 1, now);
    if (err == NG_OK) {
        crypto_sign_keypair(pk, sk);
        err = name_of(name, slug, "%s", "/sign");
        if (err == NG_OK)
            err = ng_vault_put(v, name, sk, sizeof sk);
        sodium_memzero(sk, sizeof sk);
        if (err == NG_OK && json_object_set_new(rec, "signing_public", hex_string(pk, sizeof pk)) != 0)
            err = NG_ERR_NOMEM;
    }
    if (err == NG_OK && (err = name_of(name, slug, "%s", "/read_token")) == NG_OK)
        err = put_random(v, name, NG_TENANT_SECRET_BYTES);
    if (err == NG_OK && o->psk && (err = name_of(name, slug, "%s", "/psk")) == NG_OK)
        err = put_random(v, name, NG_TENANT_SECRET_BYTES);
    if (err == NG_OK && (err = name_of(name, slug, "%s", "")) == NG_OK)
        err = ng_tenant_put_json(v, name, rec);
    json_decref(rec);
    return err;
}

ng_err
ng_tenant_delete(ng_vault *v, const char *slug)
{
    char name[NAME_CAP];
    ng_err err = name_of(name, slug, "%s", "");

    if (err)
        return err;
    err = ng_vault_delete(v, name);
    if (err)
        return err;
    err = name_of(name, slug, "%s", "/");
    return err ? err : ng_tenant_delete_prefix(v, name, NULL);
}

/* The number of entries under a tenant's prefix, such as "/peer/" records. */
static size_t
count_records(ng_vault *v, const char *slug, const char *kind)
{
    char prefix[NAME_CAP];
    size_t i, n = 0, plen;

    if (name_of(prefix, slug, "/%s/", kind) != NG_OK)
        return 0;
    plen = strlen(prefix);
    for (i = ng_vault_lower_bound(v, prefix); i < ng_vault_count(v); i++) {
        const char *name = ng_vault_name(v, i);
        if (strncmp(name, prefix, plen) != 0)
            break;
        /* Records only: "tenant/T/peer/P", not "tenant/T/peer/P/psk". */
        if (strchr(name + plen, '/') == NULL)
            n++;
    }
    return n;
}

/* The key entry of the newest epoch, for summaries. */
static json_t *
newest_key(json_t *rec)
{
    json_t *keys = json_object_get(rec, "keys");
    size_t n = json_array_size(keys);

    return n > 0 ? json_array_get(keys, n - 1) : NULL;
}

/* 1 if the epoch of key entry k is in end-to-end mode: its private key is with the backend, not in the vault. */
static int
held(const json_t *k)
{
    return json_is_true(json_object_get(k, "held_by_backend"));
}

/* A key entry as shown: epoch, public key, key id, created, whether it sends, who holds its private key. */
static json_t *
shown_key(json_t *k, int sending)
{
    const char *hex = json_string_value(json_object_get(k, "public"));
    uint8_t pub[NG_KEY_BYTES], id[NG_KEY_ID_BYTES];
    json_t *out = json_deep_copy(k);

    if (out == NULL || hex == NULL || ng_hex_decode(pub, sizeof pub, hex, strlen(hex)) != NG_OK) {
        json_decref(out);
        return NULL;
    }
    ng_key_id(id, pub);
    json_object_set_new(out, "key_id", hex_string(id, sizeof id));
    json_object_set_new(out, "sending", json_boolean(sending));
    json_object_set_new(out, "held_by_backend", json_boolean(held(k)));
    return out;
}

ng_err
ng_tenant_list(ng_vault *v, json_t **out)
{
    json_t *list = json_array();
    size_t i;

    *out = NULL;
    if (list == NULL)
        return NG_ERR_NOMEM;
    for (i = ng_vault_lower_bound(v, "tenant/"); i < ng_vault_count(v); i++) {
        const char *name = ng_vault_name(v, i), *slug = name + 7;
        json_t *rec, *k, *item;

        if (strncmp(name, "tenant/", 7) != 0)
            break;
        if (strchr(slug, '/') != NULL)
            continue;
        if (ng_tenant_get_json(v, name, &rec) != NG_OK) {
            json_decref(list);
            return NG_ERR_CORRUPT;
        }
        k = shown_key(newest_key(rec), 1);
        item = json_pack("{s:s, s:O, s:O, s:O, s:I, s:I}", "slug", slug, "created", json_object_get(rec, "created"),
                         "epoch", json_object_get(k, "epoch"), "key_id", json_object_get(k, "key_id"), "backends",
                         (json_int_t)count_records(v, slug, "backend"), "peers",
                         (json_int_t)count_records(v, slug, "peer"));
        json_decref(k);
        json_decref(rec);
        if (item == NULL || json_array_append_new(list, item) != 0) {
            json_decref(list);
            return NG_ERR_CORRUPT;
        }
    }
    *out = list;
    return NG_OK;
}

/* The public records under tenant/T/<kind>/ as an array, each with its id. */
static ng_err
records(ng_vault *v, const char *slug, const char *kind, const char *id_field, json_t **out)
{
    char prefix[NAME_CAP];
    json_t *list;
    size_t i, plen;
    ng_err err = name_of(prefix, slug, "/%s/", kind);

    *out = NULL;
    if (err)
        return err;
    list = json_array();
    if (list == NULL)
        return NG_ERR_NOMEM;
    plen = strlen(prefix);
    for (i = ng_vault_lower_bound(v, prefix); i < ng_vault_count(v); i++) {
        const char *name = ng_vault_name(v, i);
        json_t *rec;

        if (strncmp(name, prefix, plen) != 0)
            break;
        if (strchr(name + plen, '/') != NULL)
            continue;
        err = ng_tenant_get_json(v, name, &rec);
        if (err == NG_OK && json_object_set_new(rec, id_field, json_string(name + plen)) != 0)
            err = NG_ERR_NOMEM;
        if (err == NG_OK && json_array_append_new(list, rec) != 0)
            err = NG_ERR_NOMEM;
        if (err) {
            json_decref(list);
            return err;
        }
    }
    *out = list;
    return NG_OK;
}

ng_err
ng_tenant_records(ng_vault *v, const char *slug, const char *kind, const char *id_field, json_t **out)
{
    json_t *rec;
    ng_err err = ng_tenant_record(v, slug, &rec);

    *out = NULL;
    if (err)
        return err;
    json_decref(rec);
    return records(v, slug, kind, id_field, out);
}

ng_err
ng_tenant_backend_list(ng_vault *v, const char *slug, json_t **out)
{
    return ng_tenant_records(v, slug, "backend", "id", out);
}

ng_err
ng_tenant_show(ng_vault *v, const char *slug, json_t **out)
{
    json_t *rec, *keys, *shown, *backends, *peers, *k, *newest;
    const char *spk;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    char b64[sodium_base64_ENCODED_LEN(crypto_sign_PUBLICKEYBYTES, sodium_base64_VARIANT_ORIGINAL)];
    char whpk[sizeof b64 + 5];
    size_t i;
    ng_err err = ng_tenant_record(v, slug, &rec);

    *out = NULL;
    if (err)
        return err;
    keys = json_object_get(rec, "keys");
    newest = newest_key(rec);
    shown = json_array();
    json_array_foreach(keys, i, k) json_array_append_new(shown, shown_key(k, k == newest));
    json_object_set_new(rec, "keys", shown);
    /* The signing key in the form Standard Webhooks libraries take for v1a. */
    spk = json_string_value(json_object_get(rec, "signing_public"));
    if (spk != NULL && ng_hex_decode(pk, sizeof pk, spk, strlen(spk)) == NG_OK) {
        sodium_bin2base64(b64, sizeof b64, pk, sizeof pk, sodium_base64_VARIANT_ORIGINAL);
        snprintf(whpk, sizeof whpk, "whpk_%s", b64);
        json_object_set_new(rec, "signing_key", json_string(whpk));
    }
    json_object_del(rec, "next_backend");
    json_object_del(rec, "v");
    err = records(v, slug, "backend", "id", &backends);
    if (err == NG_OK)
        err = records(v, slug, "peer", "name", &peers);
    if (err == NG_OK) {
        json_object_set_new(rec, "backends", backends);
        json_object_set_new(rec, "peers", peers);
        *out = rec;
        return NG_OK;
    }
    json_decref(backends);
    json_decref(rec);
    return err;
}

/* The index in keys of an epoch, or -1. */
static long
find_epoch(json_t *keys, uint32_t epoch)
{
    size_t i;
    json_t *k;

    json_array_foreach(keys, i,
                       k) if (json_integer_value(json_object_get(k, "epoch")) == (json_int_t)epoch) return (long)i;
    return -1;
}

ng_err
ng_tenant_key_rotate(ng_vault *v, const char *slug, int64_t now, uint32_t *epoch)
{
    char name[NAME_CAP];
    json_t *rec, *keys;
    json_int_t last;
    ng_err err = ng_tenant_record(v, slug, &rec);

    if (err)
        return err;
    keys = json_object_get(rec, "keys");
    last = json_integer_value(json_object_get(newest_key(rec), "epoch"));
    if (json_array_size(keys) >= NG_TENANT_MAX_KEYS)
        err = NG_ERR_TOO_LARGE;
    else if (last < 1 || last >= UINT32_MAX)
        err = NG_ERR_CORRUPT;
    if (err == NG_OK)
        err = add_epoch(v, slug, keys, (uint32_t)last + 1, now);
    if (err == NG_OK && (err = name_of(name, slug, "%s", "")) == NG_OK)
        err = ng_tenant_put_json(v, name, rec);
    if (err == NG_OK)
        *epoch = (uint32_t)last + 1;
    json_decref(rec);
    return err;
}

ng_err
ng_tenant_key_retire(ng_vault *v, const char *slug, uint32_t epoch)
{
    char name[NAME_CAP], num[16];
    json_t *rec, *keys;
    long at;
    int was_held = 0;
    ng_err err = ng_tenant_record(v, slug, &rec);

    if (err)
        return err;
    keys = json_object_get(rec, "keys");
    at = find_epoch(keys, epoch);
    if (at < 0)
        err = NG_ERR_NOT_FOUND;
    else if ((size_t)at + 1 == json_array_size(keys))
        err = NG_ERR_INVALID_ARG; /* the sending key: rotate first */
    if (err == NG_OK) {
        was_held = held(json_array_get(keys, (size_t)at));
        json_array_remove(keys, (size_t)at);
        snprintf(num, sizeof num, "%u", epoch);
        err = name_of(name, slug, "/key/%s", num);
    }
    if (err == NG_OK)
        err = ng_vault_delete(v, name);
    /* The backend holds the private key of a held epoch: the gateway has none to forget. */
    if (err == NG_ERR_NOT_FOUND && was_held)
        err = NG_OK;
    if (err == NG_OK && (err = name_of(name, slug, "%s", "")) == NG_OK)
        err = ng_tenant_put_json(v, name, rec);
    json_decref(rec);
    return err;
}

/* NG_ERR_EXISTS if a live key of any tenant has this key id: the directory must map each id to one key. */
static ng_err
key_id_free(ng_vault *v, const uint8_t id[NG_KEY_ID_BYTES])
{
    uint8_t pub[NG_KEY_BYTES], other[NG_KEY_ID_BYTES];
    ng_err err = NG_OK;
    size_t i, j;

    for (i = ng_vault_lower_bound(v, "tenant/"); i < ng_vault_count(v) && err == NG_OK; i++) {
        const char *name = ng_vault_name(v, i);
        json_t *rec, *k;

        if (strncmp(name, "tenant/", 7) != 0)
            break;
        if (strchr(name + 7, '/') != NULL)
            continue;
        if (ng_tenant_get_json(v, name, &rec) != NG_OK)
            return NG_ERR_CORRUPT;
        json_array_foreach(json_object_get(rec, "keys"), j, k)
        {
            const char *hex = json_string_value(json_object_get(k, "public"));

            if (hex == NULL || ng_hex_decode(pub, sizeof pub, hex, strlen(hex)) != NG_OK) {
                err = NG_ERR_CORRUPT;
                break;
            }
            ng_key_id(other, pub);
            if (sodium_memcmp(other, id, sizeof other) == 0) {
                err = NG_ERR_EXISTS;
                break;
            }
        }
        json_decref(rec);
    }
    return err;
}

ng_err
ng_tenant_key_export(ng_vault *v, const char *slug, uint32_t *epoch, ng_keypair *out)
{
    char name[NAME_CAP], num[16];
    json_t *rec = NULL, *k;
    json_int_t e;
    ng_err err = ng_tenant_keypair(v, slug, 0, out);

    *epoch = 0;
    if (err == NG_ERR_NOT_FOUND && ng_tenant_record(v, slug, &rec) == NG_OK)
        err = NG_ERR_CORRUPT; /* the record promises the vault holds its newest key */
    if (err == NG_OK)
        err = ng_tenant_record(v, slug, &rec);
    k = newest_key(rec);
    e = json_integer_value(json_object_get(k, "epoch"));
    if (err == NG_OK) {
        snprintf(num, sizeof num, "%u", (unsigned)e);
        err = name_of(name, slug, "/key/%s", num);
    }
    if (err == NG_OK)
        err = ng_vault_delete(v, name);
    if (err == NG_OK && json_object_set_new(k, "held_by_backend", json_true()) != 0)
        err = NG_ERR_NOMEM;
    if (err == NG_OK && (err = name_of(name, slug, "%s", "")) == NG_OK)
        err = ng_tenant_put_json(v, name, rec);
    if (err == NG_OK)
        *epoch = (uint32_t)e;
    else
        ng_keypair_wipe(out);
    json_decref(rec);
    return err;
}

ng_err
ng_tenant_key_import_public(ng_vault *v, const char *slug, const uint8_t pub[NG_KEY_BYTES], int64_t now,
                            uint32_t *epoch)
{
    char name[NAME_CAP], num[16];
    uint8_t id[NG_KEY_ID_BYTES];
    json_t *rec, *keys, *k;
    json_int_t last;
    ng_err err;

    *epoch = 0;
    if ((err = ng_key_public_ok(pub)) != NG_OK)
        return err;
    if ((err = ng_tenant_record(v, slug, &rec)) != NG_OK)
        return err;
    keys = json_object_get(rec, "keys");
    last = json_integer_value(json_object_get(newest_key(rec), "epoch"));
    ng_key_id(id, pub);
    if (json_array_size(keys) >= NG_TENANT_MAX_KEYS)
        err = NG_ERR_TOO_LARGE;
    else if (last < 1 || last >= UINT32_MAX)
        err = NG_ERR_CORRUPT;
    else
        err = key_id_free(v, id);
    if (err == NG_OK) {
        snprintf(num, sizeof num, "%u", (unsigned)(last + 1));
        err = name_of(name, slug, "/key/%s", num);
    }
    /* A private key left under the new epoch's name (by a damaged write) must not pass for the backend's. */
    if (err == NG_OK && (err = ng_vault_delete(v, name)) == NG_ERR_NOT_FOUND)
        err = NG_OK;
    if (err == NG_OK) {
        k = json_pack("{s:I, s:o, s:I, s:b}", "epoch", last + 1, "public", hex_string(pub, NG_KEY_BYTES), "created",
                      (json_int_t)now, "held_by_backend", 1);
        if (k == NULL || json_array_append_new(keys, k) != 0)
            err = NG_ERR_NOMEM;
    }
    if (err == NG_OK && (err = name_of(name, slug, "%s", "")) == NG_OK)
        err = ng_tenant_put_json(v, name, rec);
    if (err == NG_OK)
        *epoch = (uint32_t)(last + 1);
    json_decref(rec);
    return err;
}

ng_err
ng_tenant_keypair(ng_vault *v, const char *slug, uint32_t epoch, ng_keypair *out)
{
    char name[NAME_CAP], num[16];
    uint8_t priv[NG_KEY_BYTES], pub[NG_KEY_BYTES];
    const char *hex = NULL;
    json_t *rec, *k = NULL;
    size_t len;
    long at;
    ng_err err = ng_tenant_record(v, slug, &rec);

    memset(out, 0, sizeof *out);
    if (err)
        return err;
    if (epoch == 0)
        epoch = (uint32_t)json_integer_value(json_object_get(newest_key(rec), "epoch"));
    at = find_epoch(json_object_get(rec, "keys"), epoch);
    if (at >= 0) {
        k = json_array_get(json_object_get(rec, "keys"), (size_t)at);
        hex = json_string_value(json_object_get(k, "public"));
    }
    if (k == NULL)
        err = NG_ERR_NOT_FOUND;
    else if (held(k))
        err = NG_ERR_KEY_ELSEWHERE;
    else if (hex == NULL || ng_hex_decode(pub, sizeof pub, hex, strlen(hex)) != NG_OK)
        err = NG_ERR_CORRUPT;
    json_decref(rec);
    if (err)
        return err;
    snprintf(num, sizeof num, "%u", epoch);
    err = name_of(name, slug, "/key/%s", num);
    if (err == NG_OK)
        err = ng_vault_get(v, name, priv, sizeof priv, &len);
    if (err == NG_ERR_BUFFER_TOO_SMALL || (err == NG_OK && len != sizeof priv))
        err = NG_ERR_CORRUPT;
    if (err == NG_OK)
        err = ng_keypair_from_private(out, priv);
    /* Peers seal to the record's key: a vault key that is another opens nothing of theirs. */
    if (err == NG_OK && sodium_memcmp(out->pub, pub, sizeof pub) != 0) {
        ng_keypair_wipe(out);
        err = NG_ERR_CORRUPT;
    }
    sodium_memzero(priv, sizeof priv);
    return err;
}

ng_err
ng_tenant_keypair_for(ng_vault *v, const char *slug, const uint8_t key_id[NG_KEY_ID_BYTES], ng_keypair *out)
{
    uint8_t pub[NG_KEY_BYTES], id[NG_KEY_ID_BYTES];
    json_t *rec, *k;
    const char *hex;
    size_t i;
    long epoch = -1;
    ng_err err = ng_tenant_record(v, slug, &rec);

    memset(out, 0, sizeof *out);
    if (err)
        return err;
    json_array_foreach(json_object_get(rec, "keys"), i, k)
    {
        hex = json_string_value(json_object_get(k, "public"));
        if (hex == NULL || ng_hex_decode(pub, sizeof pub, hex, strlen(hex)) != NG_OK)
            continue;
        ng_key_id(id, pub);
        if (sodium_memcmp(id, key_id, sizeof id) == 0)
            epoch = (long)json_integer_value(json_object_get(k, "epoch"));
    }
    json_decref(rec);
    if (epoch < 1)
        return NG_ERR_WRONG_RECIPIENT;
    return ng_tenant_keypair(v, slug, (uint32_t)epoch, out);
}

ng_err
ng_tenant_secret(ng_vault *v, const char *slug, const char *which, uint8_t *out, size_t len)
{
    char name[NAME_CAP];
    size_t want = strcmp(which, "sign") == 0 ? SIGN_SK_BYTES : NG_TENANT_SECRET_BYTES, got;
    ng_err err;

    if (len != want || (strcmp(which, "sign") != 0 && strcmp(which, "psk") != 0 && strcmp(which, "read_token") != 0))
        return NG_ERR_INVALID_ARG;
    err = name_of(name, slug, "/%s", which);
    if (err == NG_OK)
        err = ng_vault_get(v, name, out, len, &got);
    if (err == NG_OK && got != len) {
        sodium_memzero(out, len);
        err = NG_ERR_CORRUPT;
    }
    return err;
}

/* A new webhook secret under name, shown to the caller once as whsec_ and base64. */
static ng_err
new_whsec(ng_vault *v, const char *name, char *whsec, size_t cap)
{
    uint8_t secret[NG_TENANT_SECRET_BYTES];
    char b64[sodium_base64_ENCODED_LEN(NG_TENANT_SECRET_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    ng_err err;
    int n = 0;

    randombytes_buf(secret, sizeof secret);
    err = ng_vault_put(v, name, secret, sizeof secret);
    if (err == NG_OK && whsec != NULL) {
        sodium_bin2base64(b64, sizeof b64, secret, sizeof secret, sodium_base64_VARIANT_ORIGINAL);
        n = snprintf(whsec, cap, "whsec_%s", b64);
        if (n < 0 || (size_t)n >= cap)
            err = NG_ERR_BUFFER_TOO_SMALL;
    }
    sodium_memzero(secret, sizeof secret);
    sodium_memzero(b64, sizeof b64);
    return err;
}

ng_err
ng_tenant_backend_add(ng_vault *v, const char *slug, const char *url, const char *whpk, int64_t now,
                      char id[NG_TENANT_ID_BYTES], char *whsec, size_t whsec_cap)
{
    return ng_tenant_backend_add_with(v, slug, url, whpk, NULL, now, id, whsec, whsec_cap);
}

const char *
ng_tenant_backend_problem(const char *url, const ng_tenant_backend_opts *bo)
{
    const char *adapter = bo != NULL && bo->adapter != NULL ? bo->adapter : "webhook";
    const char *mode = bo != NULL && bo->mode != NULL ? bo->mode : "opened";
    const char *subject = bo != NULL ? bo->subject : NULL;

    if (strcmp(mode, "opened") != 0 && strcmp(mode, "sealed") != 0)
        return "mode: expected opened or sealed";
    if (strcmp(adapter, "webhook") == 0) {
        if (url == NULL || !ng_tenant_url_ok(url))
            return "url: expected an http:// or https:// URL without user info";
        if (subject != NULL)
            return "subject: only for the nats adapter";
    } else if (strcmp(adapter, "nats") == 0) {
        if (url == NULL || !ng_tenant_nats_url_ok(url))
            return "url: expected nats://host:port, one server, without user info";
        if (subject != NULL && (!ng_nats_subject_ok(subject) || strlen(subject) > NG_TENANT_NATS_SUBJECT_MAX))
            return "subject: expected up to 100 characters of tokens of A-Z, a-z, 0-9, '_' and '-' joined by '.'";
    } else {
        return "adapter: expected webhook or nats";
    }
    return NULL;
}

/* The adapter and mode fields of a backend record. */
static json_t *
backend_fields(const ng_tenant_backend_opts *bo)
{
    json_t *f = json_pack("{s:s, s:s}", "adapter", bo != NULL && bo->adapter != NULL ? bo->adapter : "webhook", "mode",
                          bo != NULL && bo->mode != NULL ? bo->mode : "opened");

    if (f != NULL && bo != NULL && bo->subject != NULL)
        json_object_set_new(f, "subject", json_string(bo->subject));
    return f;
}

ng_err
ng_tenant_backend_add_with(ng_vault *v, const char *slug, const char *url, const char *whpk,
                           const ng_tenant_backend_opts *bo, int64_t now, char id[NG_TENANT_ID_BYTES], char *whsec,
                           size_t whsec_cap)
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    char name[NAME_CAP];
    json_t *rec, *b, *fields;
    json_int_t next;
    ng_err err;

    id[0] = '\0';
    if (ng_tenant_backend_problem(url, bo) != NULL)
        return NG_ERR_INVALID_ARG;
    if (whpk != NULL && (err = ng_webhook_public_parse(whpk, pk)) != NG_OK)
        return err;
    err = ng_tenant_record(v, slug, &rec);
    if (err)
        return err;
    next = json_integer_value(json_object_get(rec, "next_backend"));
    if (count_records(v, slug, "backend") >= NG_TENANT_MAX_BACKENDS)
        err = NG_ERR_TOO_LARGE;
    else if (next < 1 || next > 999999999)
        err = NG_ERR_CORRUPT;
    if (err == NG_OK) {
        snprintf(id, NG_TENANT_ID_BYTES, "b%d", (int)next);
        json_object_set_new(rec, "next_backend", json_integer(next + 1));
        b = json_pack("{s:s, s:s, s:s, s:I}", "url", url, "public_key", whpk != NULL ? whpk : "", "status", "active",
                      "created", (json_int_t)now);
        fields = backend_fields(bo);
        if (b != NULL && (fields == NULL || json_object_update(b, fields) != 0)) {
            json_decref(b);
            b = NULL;
        }
        json_decref(fields);
        err = b == NULL ? NG_ERR_NOMEM : name_of(name, slug, "/backend/%s", id);
        if (err == NG_OK)
            err = ng_tenant_put_json(v, name, b);
        json_decref(b);
    }
    if (err == NG_OK && (err = name_of(name, slug, "/backend/%s/whsec", id)) == NG_OK)
        err = new_whsec(v, name, whsec, whsec_cap);
    if (err == NG_OK && (err = name_of(name, slug, "%s", "")) == NG_OK)
        err = ng_tenant_put_json(v, name, rec);
    json_decref(rec);
    if (err)
        id[0] = '\0';
    return err;
}

/* The backend record's name, once the tenant and the backend are known to exist. */
static ng_err
backend_name(ng_vault *v, const char *slug, const char *id, char name[NAME_CAP])
{
    uint8_t probe[1];
    size_t len;
    json_t *rec;
    ng_err err;

    if (id[0] != 'b' || strlen(id) >= NG_TENANT_ID_BYTES || strchr(id, '/') != NULL)
        return NG_ERR_NOT_FOUND;
    err = ng_tenant_record(v, slug, &rec);
    json_decref(rec);
    if (err == NG_OK)
        err = name_of(name, slug, "/backend/%s", id);
    if (err == NG_OK && ng_vault_get(v, name, probe, 0, &len) == NG_ERR_NOT_FOUND)
        err = NG_ERR_NOT_FOUND;
    return err;
}

ng_err
ng_tenant_backend_remove(ng_vault *v, const char *slug, const char *id)
{
    char name[NAME_CAP];
    ng_err err = backend_name(v, slug, id, name);

    if (err == NG_OK)
        err = ng_vault_delete(v, name);
    if (err == NG_OK && (err = name_of(name, slug, "/backend/%s/", id)) == NG_OK)
        err = ng_tenant_delete_prefix(v, name, NULL);
    return err;
}

ng_err
ng_tenant_backend_rotate_secret(ng_vault *v, const char *slug, const char *id, int64_t now, char *whsec,
                                size_t whsec_cap)
{
    uint8_t old[NG_TENANT_SECRET_BYTES];
    char name[NAME_CAP], prev[NAME_CAP];
    json_t *b = NULL;
    size_t len;
    ng_err err = backend_name(v, slug, id, name);

    if (err == NG_OK)
        err = ng_tenant_get_json(v, name, &b);
    if (err == NG_OK) {
        json_object_set_new(b, "secret_rotated", json_integer((json_int_t)now));
        err = ng_tenant_put_json(v, name, b);
    }
    json_decref(b);
    if (err == NG_OK && (err = name_of(name, slug, "/backend/%s/whsec", id)) == NG_OK &&
        (err = name_of(prev, slug, "/backend/%s/whsec.prev", id)) == NG_OK)
        err = ng_vault_get(v, name, old, sizeof old, &len);
    if (err == NG_OK)
        err = ng_vault_put(v, prev, old, len);
    sodium_memzero(old, sizeof old);
    return err ? err : new_whsec(v, name, whsec, whsec_cap);
}

ng_err
ng_tenant_backend_set_active(ng_vault *v, const char *slug, const char *id, int active, int64_t now)
{
    char name[NAME_CAP];
    json_t *b = NULL;
    ng_err err = backend_name(v, slug, id, name);

    if (err == NG_OK)
        err = ng_tenant_get_json(v, name, &b);
    if (err == NG_OK) {
        json_object_set_new(b, "status", json_string(active ? "active" : "disabled"));
        json_object_set_new(b, "status_changed", json_integer((json_int_t)now));
        err = ng_tenant_put_json(v, name, b);
    }
    json_decref(b);
    return err;
}

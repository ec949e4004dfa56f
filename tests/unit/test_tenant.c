/*
 * Tenants, their keys and backends (ng_tenant) and peers (ng_peer), called
 * directly on open vaults in memory: the entries each call leaves and
 * removes, that shown and listed JSON never carries a secret, key rotation
 * end to end with a parcel, connection parameters tampered at every
 * character, truncated, and re-signed with every kind of bad content, and
 * the rules for updating a known peer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "ng_hex.h"
#include "ng_key.h"
#include "ng_parcel.h"
#include "ng_peer.h"
#include "ng_tenant.h"
#include "ng_vault.h"
#include "parcel_checks.h"

#define NOW       ((int64_t)1700000000)
#define OUTBOX    "https://a.example/outbox"
#define CANONICAL (JSON_COMPACT | JSON_SORT_KEYS)

enum { WHSEC_CAP = 128, SIGN_SK = crypto_sign_SECRETKEYBYTES, SIGN_PK = crypto_sign_PUBLICKEYBYTES };

static char g_dir[256];
static ng_vault_store *g_store[2];
static ng_vault *g_vault[2];
static ng_vault *g_v, *g_v2; /* g_vault[0] and g_vault[1] */

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* An Ed25519 encoding off the curve: y = 2, for which (y^2 - 1) / (d y^2 + 1) is not a square mod 2^255 - 19. */
static const uint8_t off_curve[32] = {2};

/* ---- vaults ---- */

static int
open_vault(int i)
{
    char path[300];
    uint8_t key[NG_VAULT_KEY_BYTES];
    ng_vault_secret s = {0, key, sizeof key, 0, 0};
    ng_err err;

    snprintf(path, sizeof path, "%s/vault%d", g_dir, i);
    randombytes_buf(key, sizeof key);
    err = ng_vault_store_file(&g_store[i], path);
    if (err == NG_OK)
        err = ng_vault_create(g_store[i], &s);
    if (err == NG_OK)
        err = ng_vault_open(&g_vault[i], g_store[i], &s);
    sodium_memzero(key, sizeof key);
    return err == NG_OK ? 0 : -1;
}

static int
setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "%s/ngtenant-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    if (open_vault(0) != 0 || open_vault(1) != 0)
        return -1;
    g_v = g_vault[0];
    g_v2 = g_vault[1];
    return 0;
}

static int
teardown(void **state)
{
    char cmd[400];
    int i;

    (void)state;
    for (i = 0; i < 2; i++) {
        ng_vault_close(g_vault[i]);
        ng_vault_store_free(g_store[i]);
        g_vault[i] = NULL;
        g_store[i] = NULL;
    }
    g_v = g_v2 = NULL;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- helpers ---- */

static int
has_entry(ng_vault *vault, const char *name)
{
    size_t i;

    for (i = 0; i < ng_vault_count(vault); i++)
        if (strcmp(ng_vault_name(vault, i), name) == 0)
            return 1;
    return 0;
}

static void
expect_entry(ng_vault *vault, const char *name)
{
    if (!has_entry(vault, name)) {
        print_error("entry %s is missing\n", name);
        fail();
    }
}

static void
expect_no_entry(ng_vault *vault, const char *name)
{
    if (has_entry(vault, name)) {
        print_error("entry %s should not exist\n", name);
        fail();
    }
}

static size_t
count_prefix(ng_vault *vault, const char *prefix)
{
    size_t i, n = 0;

    for (i = 0; i < ng_vault_count(vault); i++)
        if (strncmp(ng_vault_name(vault, i), prefix, strlen(prefix)) == 0)
            n++;
    return n;
}

static size_t
get_entry(ng_vault *vault, const char *name, uint8_t *out, size_t cap)
{
    size_t len = 0;
    ng_err err = ng_vault_get(vault, name, out, cap, &len);

    if (err != NG_OK) {
        print_error("entry %s: %s\n", name, ng_strerror(err));
        fail();
    }
    return len;
}

/* An entry that must hold exactly len bytes. */
static void
get_exact(ng_vault *vault, const char *name, uint8_t *out, size_t len)
{
    uint8_t buf[256];
    size_t got = get_entry(vault, name, buf, sizeof buf);

    if (got != len) {
        print_error("entry %s has %zu bytes, want %zu\n", name, got, len);
        fail();
    }
    memcpy(out, buf, len);
    sodium_memzero(buf, sizeof buf);
}

static void
put_text(ng_vault *vault, const char *name, const char *text)
{
    assert_int_equal(ng_vault_put(vault, name, (const uint8_t *)text, strlen(text)), NG_OK);
}

static json_t *
get_record(ng_vault *vault, const char *name)
{
    json_t *j = NULL;
    ng_err err = ng_tenant_get_json(vault, name, &j);

    if (err != NG_OK) {
        print_error("record %s: %s\n", name, ng_strerror(err));
        fail();
    }
    assert_non_null(j);
    return j;
}

static void
make_tenant(ng_vault *vault, const char *slug, int psk, int anon)
{
    ng_tenant_opts o;

    memset(&o, 0, sizeof o);
    o.psk = psk;
    o.allow_anonymous = anon;
    assert_int_equal(ng_tenant_create(vault, slug, &o, NOW), NG_OK);
}

static void
hex_of(char *out, size_t cap, const uint8_t *bytes, size_t len)
{
    assert_true(cap >= 2 * len + 1);
    sodium_bin2hex(out, cap, bytes, len);
}

static void
hex_bytes(json_t *obj, const char *key, uint8_t *out, size_t len)
{
    const char *s = json_string_value(json_object_get(obj, key));

    assert_non_null(s);
    assert_int_equal(ng_hex_decode(out, len, s, strlen(s)), NG_OK);
}

static void
expect_strings(json_t *array, const char *const *want, size_t n)
{
    size_t i;

    assert_true(json_is_array(array));
    assert_int_equal(json_array_size(array), n);
    for (i = 0; i < n; i++)
        assert_string_equal(json_string_value(json_array_get(array, i)), want[i]);
}

static json_int_t
int_field(json_t *obj, const char *key)
{
    json_t *j = json_object_get(obj, key);

    assert_true(json_is_integer(j));
    return json_integer_value(j);
}

static const char *
str_field(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));

    if (s == NULL) {
        print_error("no string field %s\n", key);
        fail();
    }
    return s;
}

/* The tenant's Ed25519 public key from its record. */
static void
signing_public(ng_vault *vault, const char *slug, uint8_t pk[SIGN_PK])
{
    json_t *rec = NULL;

    assert_int_equal(ng_tenant_record(vault, slug, &rec), NG_OK);
    hex_bytes(rec, "signing_public", pk, SIGN_PK);
    json_decref(rec);
}

/* "whpk_" and the standard base64 of pk. */
static void
whpk_of(char out[64], const uint8_t pk[SIGN_PK])
{
    char b64[sodium_base64_ENCODED_LEN(SIGN_PK, sodium_base64_VARIANT_ORIGINAL)];

    sodium_bin2base64(b64, sizeof b64, pk, SIGN_PK, sodium_base64_VARIANT_ORIGINAL);
    snprintf(out, 64, "whpk_%s", b64);
}

/* The 32 bytes behind a "whsec_" string. */
static void
whsec_bytes(const char *whsec, uint8_t out[NG_TENANT_SECRET_BYTES])
{
    size_t len = 0;
    const char *end = NULL;

    assert_int_equal(strncmp(whsec, "whsec_", 6), 0);
    assert_int_equal(sodium_base642bin(out, NG_TENANT_SECRET_BYTES, whsec + 6, strlen(whsec + 6), NULL, &len, &end,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(len, NG_TENANT_SECRET_BYTES);
    assert_true(*end == '\0');
}

/* The fingerprint computed here, independently of ng_peer_fingerprint. */
static void
own_fingerprint(char out[NG_PEER_FINGERPRINT_BYTES], const uint8_t pk[SIGN_PK])
{
    uint8_t h[32];
    char hex[65];
    int i, o = 0;

    crypto_generichash(h, sizeof h, pk, SIGN_PK, NULL, 0);
    sodium_bin2hex(hex, sizeof hex, h, 16);
    for (i = 0; i < 32; i++) {
        if (i > 0 && i % 4 == 0)
            out[o++] = '-';
        out[o++] = hex[i];
    }
    out[o] = '\0';
}

/* ---- no secret in JSON ---- */

static void
expect_absent(const char *text, const char *needle, const char *form, const char *name, const char *what)
{
    if (strstr(text, needle) != NULL) {
        print_error("%s: the %s of secret %s appears in the JSON\n", what, form, name);
        fail();
    }
}

/* Neither the hex (either case) nor the standard or URL-safe base64 of secret is in text. */
static void
expect_secret_absent(const char *text, const uint8_t *secret, size_t len, const char *name, const char *what)
{
    char hex[2 * 64 + 1], b64[128];
    size_t i, aligned = len / 3 * 3; /* base64 of whole groups: the same wherever it is embedded */

    assert_true(len <= 64);
    sodium_bin2hex(hex, sizeof hex, secret, len);
    expect_absent(text, hex, "hex", name, what);
    for (i = 0; hex[i] != '\0'; i++)
        if (hex[i] >= 'a' && hex[i] <= 'f')
            hex[i] = (char)(hex[i] - 'a' + 'A');
    expect_absent(text, hex, "upper-case hex", name, what);
    sodium_bin2base64(b64, sizeof b64, secret, aligned, sodium_base64_VARIANT_ORIGINAL);
    expect_absent(text, b64, "base64", name, what);
    sodium_bin2base64(b64, sizeof b64, secret, aligned, sodium_base64_VARIANT_URLSAFE);
    expect_absent(text, b64, "URL-safe base64", name, what);
}

/* 1 if an entry name is a secret: a private key, a sign key, a psk, a read token or a webhook secret. */
static int
is_secret(const char *name)
{
    const char *rest, *last;

    if (strncmp(name, "tenant/", 7) != 0 || (rest = strchr(name + 7, '/')) == NULL)
        return 0;
    rest++;
    last = strrchr(name, '/') + 1;
    return strncmp(rest, "key/", 4) == 0 || strcmp(last, "sign") == 0 || strcmp(last, "psk") == 0 ||
           strcmp(last, "read_token") == 0 || strcmp(last, "whsec") == 0 || strcmp(last, "whsec.prev") == 0;
}

/* Checks j against every secret entry of both vaults; returns how many secrets were checked. */
static size_t
expect_no_secrets(json_t *j, const char *what)
{
    char *text;
    uint8_t value[256];
    size_t i, len, checked = 0;
    int k;

    assert_non_null(j);
    text = json_dumps(j, JSON_COMPACT);
    assert_non_null(text);
    for (k = 0; k < 2; k++) {
        for (i = 0; i < ng_vault_count(g_vault[k]); i++) {
            const char *name = ng_vault_name(g_vault[k], i);
            if (!is_secret(name))
                continue;
            len = get_entry(g_vault[k], name, value, sizeof value);
            assert_true(len == 32 || len == 64);
            expect_secret_absent(text, value, len, name, what);
            /* The sign key is seed || public key: the seed half is the secret one. */
            if (len == 64)
                expect_secret_absent(text, value, 32, name, what);
            checked++;
        }
    }
    sodium_memzero(value, sizeof value);
    free(text);
    return checked;
}

/* ---- connection parameters by hand ---- */

/* "prefix" and the unpadded base64url of text and tail; malloc'd. */
static char *
frame(const char *prefix, const char *text, const char *tail)
{
    size_t tlen = strlen(text) + strlen(tail), plen = strlen(prefix), b64;
    char *joined = malloc(tlen + 1), *out;

    assert_non_null(joined);
    snprintf(joined, tlen + 1, "%s%s", text, tail);
    b64 = sodium_base64_ENCODED_LEN(tlen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    out = malloc(plen + b64);
    assert_non_null(out);
    memcpy(out, prefix, plen);
    sodium_bin2base64(out + plen, b64, (const uint8_t *)joined, tlen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    free(joined);
    return out;
}

/* The bytes after "ngcp1:" decoded, malloc'd and NUL-terminated; NULL if they are not base64url. */
static char *
unframe(const char *params, size_t *len)
{
    size_t plen = strlen(params);
    char *text;

    if (plen < 6)
        return NULL;
    text = malloc(plen + 1);
    assert_non_null(text);
    if (sodium_base642bin((uint8_t *)text, plen, params + 6, plen - 6, NULL, len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
        free(text);
        return NULL;
    }
    text[*len] = '\0';
    return text;
}

/* The JSON document inside an ngcp1 string. */
static json_t *
params_doc(const char *params)
{
    size_t len;
    char *text;
    json_t *doc;

    assert_int_equal(strncmp(params, "ngcp1:", 6), 0);
    text = unframe(params, &len);
    assert_non_null(text);
    doc = json_loadb(text, len, 0, NULL);
    sodium_memzero(text, len);
    free(text);
    assert_true(json_is_object(doc));
    return doc;
}

/*
 * Signs doc with sk as the export does (plain Ed25519 over "noisegate-cp-v1\n"
 * and the canonical text without "sig"), dumps it with
 * flags, appends tail and frames it as ngcp1. The caller frees the string.
 */
static char *
signed_params(json_t *doc, const uint8_t sk[SIGN_SK], size_t flags, const char *tail)
{
    static const char context[] = "noisegate-cp-v1\n";
    uint8_t sig[crypto_sign_BYTES];
    char hex[2 * crypto_sign_BYTES + 1], *canon, *text, *out, *msg;
    size_t len;

    json_object_del(doc, "sig");
    canon = json_dumps(doc, CANONICAL);
    assert_non_null(canon);
    len = strlen(context) + strlen(canon);
    msg = malloc(len);
    assert_non_null(msg);
    memcpy(msg, context, strlen(context));
    memcpy(msg + strlen(context), canon, strlen(canon));
    assert_int_equal(crypto_sign_detached(sig, NULL, (const uint8_t *)msg, len, sk), 0);
    free(msg);
    free(canon);
    sodium_bin2hex(hex, sizeof hex, sig, sizeof sig);
    assert_int_equal(json_object_set_new(doc, "sig", json_string(hex)), 0);
    text = json_dumps(doc, flags);
    assert_non_null(text);
    out = frame("ngcp1:", text, tail);
    free(text);
    return out;
}

static void
expect_decode(const char *params, ng_err want, const char *what)
{
    json_t *out = NULL;
    ng_err err = ng_peer_decode(params, &out);

    if (err != want) {
        print_error("%s: ng_peer_decode gave %d (%s), want %d (%s)\n", what, (int)err, ng_strerror(err), (int)want,
                    ng_strerror(want));
        json_decref(out);
        fail();
    }
    if (err == NG_OK)
        assert_non_null(out);
    else
        assert_null(out);
    json_decref(out);
}

/* Imports into tenant b of g_v2 as peer "a"; a refusal must leave no entry of that peer. */
static void
expect_import(const char *params, ng_err want, const char *what)
{
    char used[64] = "x";
    ng_err err = ng_peer_import(g_v2, "b", params, "a", NOW + 1, used);

    if (err != want) {
        print_error("%s: ng_peer_import gave %d (%s), want %d (%s)\n", what, (int)err, ng_strerror(err), (int)want,
                    ng_strerror(want));
        fail();
    }
    if (err != NG_OK) {
        assert_string_equal(used, "");
        if (count_prefix(g_v2, "tenant/b/peer/") != 0) {
            print_error("%s: a refused import left entries\n", what);
            fail();
        }
    }
}

static char *
export_ok(ng_vault *vault, const char *slug, int64_t now, char fp[NG_PEER_FINGERPRINT_BYTES])
{
    char *p = NULL;

    assert_int_equal(ng_peer_export(vault, slug, OUTBOX, now, &p, fp), NG_OK);
    assert_non_null(p);
    assert_int_equal(strncmp(p, "ngcp1:", 6), 0);
    return p;
}

static void
free_params(char *p)
{
    if (p != NULL) {
        sodium_memzero(p, strlen(p));
        free(p);
    }
}

/* ---- 1. slugs and URLs ---- */

static void
test_slug_ok(void **state)
{
    static const char *const good[] = {"a", "0", "acme", "a-b", "a-", "0abc", "abc-123-xyz", "9-9", NULL};
    static const char *const bad[] = {"",     "A",    "Acme", "acmE",        "-a",  "-",  "a/b", "/",
                                      "a/",   "a.b",  ".",    "..",          "a b", " a", "a ",  "a_b",
                                      "a\tb", "a\nb", "a:b",  "caf\xc3\xa9", "a@b", NULL};
    char s63[64], s64[65];
    size_t i;

    (void)state;
    for (i = 0; good[i] != NULL; i++)
        if (!ng_tenant_slug_ok(good[i])) {
            print_error("slug \"%s\" refused\n", good[i]);
            fail();
        }
    for (i = 0; bad[i] != NULL; i++)
        if (ng_tenant_slug_ok(bad[i])) {
            print_error("slug \"%s\" accepted\n", bad[i]);
            fail();
        }
    memset(s63, 'a', 63);
    s63[63] = '\0';
    memset(s64, 'a', 64);
    s64[64] = '\0';
    assert_true(ng_tenant_slug_ok(s63));
    assert_false(ng_tenant_slug_ok(s64));
    s63[0] = '7';
    s63[62] = '-';
    assert_true(ng_tenant_slug_ok(s63));
    s63[0] = '-';
    assert_false(ng_tenant_slug_ok(s63));
}

static void
test_url_ok(void **state)
{
    static const char *const good[] = {"http://h",
                                       "https://h",
                                       "http://h/",
                                       "https://example.com/hooks?x=1#f",
                                       "http://h:8080/p",
                                       "http://10.0.0.1/in",
                                       "http://[::1]:80/",
                                       "http://h/p@q",
                                       "https://h/a/b@c/d",
                                       "http://h/?a=b@c",
                                       NULL};
    static const char *const bad[] = {"",
                                      "h",
                                      "ftp://h/",
                                      "file:///etc/passwd",
                                      "http:/h",
                                      "http:h",
                                      "//h/",
                                      "http://",
                                      "https://",
                                      "http:///p",
                                      "http://:80",
                                      "http://:80/p",
                                      "http://u:p@h/",
                                      "http://u@h",
                                      "https://@h/",
                                      "http://h /",
                                      " http://h/",
                                      "http://h/ ",
                                      "http://h/a b",
                                      "http://h/\x01",
                                      "http://h/\t",
                                      "http://h/\n",
                                      "http://h/\r",
                                      "http://h/\x7f",
                                      "http://h/\"",
                                      "http://h/a\"b",
                                      "http://h/\\",
                                      "http://h\\@evil/",
                                      NULL};
    char url[NG_TENANT_MAX_URL + 2];
    size_t i;

    (void)state;
    for (i = 0; good[i] != NULL; i++)
        if (!ng_tenant_url_ok(good[i])) {
            print_error("URL \"%s\" refused\n", good[i]);
            fail();
        }
    for (i = 0; bad[i] != NULL; i++)
        if (ng_tenant_url_ok(bad[i])) {
            print_error("URL \"%s\" accepted\n", bad[i]);
            fail();
        }
    /* Exactly the limit, then one over. */
    memset(url, 'a', sizeof url);
    memcpy(url, "https://h/", 10);
    url[NG_TENANT_MAX_URL] = '\0';
    assert_int_equal(strlen(url), NG_TENANT_MAX_URL);
    assert_true(ng_tenant_url_ok(url));
    url[NG_TENANT_MAX_URL] = 'a';
    url[NG_TENANT_MAX_URL + 1] = '\0';
    assert_false(ng_tenant_url_ok(url));
}

/* A URL whose authority is empty, the path or query following "//" at once, names no host either. */
static void
test_url_empty_host_before_query(void **state)
{
    static const char *const bad[] = {"http://?q=1", "https://?", "http://#frag", "https://#", NULL};
    size_t i;
    int accepted = 0;

    (void)state;
    for (i = 0; bad[i] != NULL; i++)
        if (ng_tenant_url_ok(bad[i])) {
            print_error("URL \"%s\" (no host) accepted\n", bad[i]);
            accepted++;
        }
    assert_int_equal(accepted, 0);
}

/* A peer's outbox: what a webhook URL may be, or a Redis reachable over TCP, without user info. */
static void
test_peer_outbox_ok(void **state)
{
    static const char *const good[] = {"https://a.example/v1/outbox",   "http://127.0.0.1:8080/outbox",
                                       "redis://shared.example",        "redis://shared.example:6380",
                                       "redis://shared.example:6380/2", "redis://10.0.0.7/0",
                                       "redis://[::1]:6379/1",          NULL};
    static const char *const bad[] = {"redis://",
                                      "redis://:6379",
                                      "redis://user:secret@shared.example",
                                      "redis://:secret@shared.example:6379",
                                      "redis://h:0",
                                      "redis://h:65536",
                                      "redis://h:x",
                                      "redis://h/db",
                                      "redis://h/1/2",
                                      "redis://h/1?x=1",
                                      "redis://h /1",
                                      "redis://h\"/1",
                                      "redis://h\n",
                                      "redis://[::1",
                                      "rediss://shared.example",
                                      "REDIS://shared.example",
                                      "unix:/run/redis.sock",
                                      "unix:/run/redis.sock?db=1",
                                      "ftp://a.example/outbox",
                                      "http://user:pw@a.example/outbox",
                                      "",
                                      NULL};
    char url[NG_TENANT_MAX_URL + 2];
    size_t i;
    int wrong = 0;

    (void)state;
    for (i = 0; good[i] != NULL; i++)
        if (!ng_peer_outbox_ok(good[i])) {
            print_error("outbox \"%s\" refused\n", good[i]);
            wrong++;
        }
    for (i = 0; bad[i] != NULL; i++)
        if (ng_peer_outbox_ok(bad[i])) {
            print_error("outbox \"%s\" accepted\n", bad[i]);
            wrong++;
        }
    assert_int_equal(wrong, 0);
    /* The same length limit as any URL in the vault. */
    memset(url, 'a', sizeof url);
    memcpy(url, "redis://", 8);
    url[NG_TENANT_MAX_URL + 1] = '\0';
    assert_false(ng_peer_outbox_ok(url));
}

/* ---- 2. create ---- */

static void
test_create_entries(void **state)
{
    static const char *const xk[] = {"X", "K"};
    uint8_t priv[NG_KEY_BYTES], sign[SIGN_SK], pk[SIGN_PK], token[32], copy[64];
    char hex[2 * SIGN_PK + 1];
    ng_keypair kp, kp0;
    json_t *rec, *rec2 = NULL, *keys, *k;

    (void)state;
    make_tenant(g_v, "acme", 0, 0);
    expect_entry(g_v, "tenant/acme");
    expect_entry(g_v, "tenant/acme/key/1");
    expect_entry(g_v, "tenant/acme/sign");
    expect_entry(g_v, "tenant/acme/read_token");
    expect_no_entry(g_v, "tenant/acme/psk");
    assert_int_equal(count_prefix(g_v, "tenant/acme"), 4);
    assert_int_equal(ng_vault_count(g_v), 4);

    get_exact(g_v, "tenant/acme/key/1", priv, sizeof priv);
    get_exact(g_v, "tenant/acme/sign", sign, sizeof sign);
    get_exact(g_v, "tenant/acme/read_token", token, sizeof token);
    assert_false(sodium_is_zero(token, sizeof token));

    rec = get_record(g_v, "tenant/acme");
    assert_string_equal(str_field(rec, "slug"), "acme");
    assert_int_equal(int_field(rec, "created"), NOW);
    assert_true(json_is_false(json_object_get(rec, "psk")));
    expect_strings(json_object_get(rec, "patterns"), xk, 2);
    keys = json_object_get(rec, "keys");
    assert_int_equal(json_array_size(keys), 1);
    k = json_array_get(keys, 0);
    assert_int_equal(int_field(k, "epoch"), 1);
    assert_int_equal(int_field(k, "created"), NOW);
    /* The public key stored is the one of the private key stored. */
    assert_int_equal(ng_keypair_from_private(&kp, priv), NG_OK);
    hex_of(hex, sizeof hex, kp.pub, sizeof kp.pub);
    assert_string_equal(str_field(k, "public"), hex);
    /* The signing key recorded is the sign entry's. */
    assert_int_equal(crypto_sign_ed25519_sk_to_pk(pk, sign), 0);
    hex_of(hex, sizeof hex, pk, sizeof pk);
    assert_string_equal(str_field(rec, "signing_public"), hex);
    assert_memory_equal(sign + 32, pk, 32);

    assert_int_equal(ng_tenant_record(g_v, "acme", &rec2), NG_OK);
    assert_true(json_equal(rec, rec2));
    json_decref(rec2);
    json_decref(rec);

    assert_int_equal(ng_tenant_keypair(g_v, "acme", 0, &kp0), NG_OK);
    assert_memory_equal(kp0.pub, kp.pub, NG_KEY_BYTES);
    assert_memory_equal(kp0.priv, priv, NG_KEY_BYTES);
    assert_int_equal(ng_tenant_keypair(g_v, "acme", 1, &kp0), NG_OK);
    assert_memory_equal(kp0.pub, kp.pub, NG_KEY_BYTES);

    /* Secrets by name, and only by their documented sizes. */
    assert_int_equal(ng_tenant_secret(g_v, "acme", "read_token", copy, 32), NG_OK);
    assert_memory_equal(copy, token, 32);
    assert_int_equal(ng_tenant_secret(g_v, "acme", "sign", copy, 64), NG_OK);
    assert_memory_equal(copy, sign, 64);
    assert_int_equal(ng_tenant_secret(g_v, "acme", "psk", copy, 32), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_tenant_secret(g_v, "acme", "sign", copy, 32), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_tenant_secret(g_v, "acme", "read_token", copy, 64), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_tenant_secret(g_v, "acme", "key/1", copy, 32), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_tenant_secret(g_v, "nobody", "read_token", copy, 32), NG_ERR_NOT_FOUND);
    ng_keypair_wipe(&kp);
    ng_keypair_wipe(&kp0);
    sodium_memzero(sign, sizeof sign);
}

static void
test_create_options(void **state)
{
    static const char *const psk[] = {"Xpsk1", "Kpsk0"};
    static const char *const psk_anon[] = {"Xpsk1", "Kpsk0", "Npsk0"};
    static const char *const anon[] = {"X", "K", "N"};
    uint8_t secret[32], copy[32];
    ng_tenant_opts o;
    json_t *rec;

    (void)state;
    make_tenant(g_v, "p", 1, 0);
    rec = get_record(g_v, "tenant/p");
    expect_strings(json_object_get(rec, "patterns"), psk, 2);
    assert_true(json_is_true(json_object_get(rec, "psk")));
    json_decref(rec);
    get_exact(g_v, "tenant/p/psk", secret, sizeof secret);
    assert_false(sodium_is_zero(secret, sizeof secret));
    assert_int_equal(ng_tenant_secret(g_v, "p", "psk", copy, sizeof copy), NG_OK);
    assert_memory_equal(copy, secret, 32);
    assert_int_equal(count_prefix(g_v, "tenant/p"), 5);

    make_tenant(g_v, "pa", 1, 1);
    rec = get_record(g_v, "tenant/pa");
    expect_strings(json_object_get(rec, "patterns"), psk_anon, 3);
    json_decref(rec);
    expect_entry(g_v, "tenant/pa/psk");

    make_tenant(g_v, "na", 0, 1);
    rec = get_record(g_v, "tenant/na");
    expect_strings(json_object_get(rec, "patterns"), anon, 3);
    assert_true(json_is_false(json_object_get(rec, "psk")));
    json_decref(rec);
    expect_no_entry(g_v, "tenant/na/psk");

    memset(&o, 0, sizeof o);
    o.max_message = 1000;
    o.rate = 7;
    assert_int_equal(ng_tenant_create(g_v, "lim", &o, NOW), NG_OK);
    rec = get_record(g_v, "tenant/lim");
    assert_int_equal(int_field(json_object_get(rec, "limits"), "max_message"), 1000);
    assert_int_equal(int_field(json_object_get(rec, "limits"), "rate"), 7);
    json_decref(rec);
}

static void
test_create_twice_and_bad_slugs(void **state)
{
    static const char *const bad[] = {"", "Acme", "-a", "a/b", "a.b", "a b", "../x", NULL};
    uint8_t before[32], after[32];
    ng_tenant_opts o;
    char s64[65];
    size_t i, n;
    json_t *rec, *rec2;

    (void)state;
    memset(&o, 0, sizeof o);
    make_tenant(g_v, "acme", 0, 0);
    get_exact(g_v, "tenant/acme/key/1", before, sizeof before);
    rec = get_record(g_v, "tenant/acme");
    n = ng_vault_count(g_v);
    o.psk = 1;
    assert_int_equal(ng_tenant_create(g_v, "acme", &o, NOW + 5), NG_ERR_EXISTS);
    /* Nothing of the first one was touched. */
    assert_int_equal(ng_vault_count(g_v), n);
    get_exact(g_v, "tenant/acme/key/1", after, sizeof after);
    assert_memory_equal(before, after, 32);
    rec2 = get_record(g_v, "tenant/acme");
    assert_true(json_equal(rec, rec2));
    json_decref(rec);
    json_decref(rec2);
    expect_no_entry(g_v, "tenant/acme/psk");

    for (i = 0; bad[i] != NULL; i++) {
        ng_err err = ng_tenant_create(g_v, bad[i], &o, NOW);
        if (err != NG_ERR_INVALID_ARG) {
            print_error("create \"%s\": %d (%s)\n", bad[i], (int)err, ng_strerror(err));
            fail();
        }
    }
    memset(s64, 'a', 64);
    s64[64] = '\0';
    assert_int_equal(ng_tenant_create(g_v, s64, &o, NOW), NG_ERR_INVALID_ARG);
    s64[63] = '\0';
    assert_int_equal(ng_tenant_create(g_v, s64, &o, NOW), NG_OK);
    assert_int_equal(ng_vault_count(g_v), n + 5);
}

static void
test_create_removes_leftovers(void **state)
{
    (void)state;
    put_text(g_v, "tenant/ab/key/7", "old private key");
    put_text(g_v, "tenant/ab/key/1", "old key one");
    put_text(g_v, "tenant/ab/backend/b1/whsec", "old whsec");
    put_text(g_v, "tenant/ab/peer/z", "{}");
    put_text(g_v, "tenant/ab/peer/z/psk", "old psk");
    put_text(g_v, "tenant/ab/psk", "old tenant psk");
    /* Not leftovers of ab. */
    put_text(g_v, "tenant/abc/key/1", "abc's");
    put_text(g_v, "tenant/ab-x/psk", "ab-x's");
    put_text(g_v, "tenant/a/key/1", "a's");

    make_tenant(g_v, "ab", 0, 0);
    expect_no_entry(g_v, "tenant/ab/key/7");
    expect_no_entry(g_v, "tenant/ab/backend/b1/whsec");
    expect_no_entry(g_v, "tenant/ab/peer/z");
    expect_no_entry(g_v, "tenant/ab/peer/z/psk");
    expect_no_entry(g_v, "tenant/ab/psk");
    assert_int_equal(count_prefix(g_v, "tenant/ab/"), 3); /* key/1, sign, read_token */
    expect_entry(g_v, "tenant/abc/key/1");
    expect_entry(g_v, "tenant/ab-x/psk");
    expect_entry(g_v, "tenant/a/key/1");
    /* key/1 is a new key, not the leftover. */
    {
        uint8_t buf[64];
        size_t len = get_entry(g_v, "tenant/ab/key/1", buf, sizeof buf);
        assert_int_equal(len, 32);
    }
}

/* ---- 3. show and list ---- */

/* Tenant t: psk, two epochs, two backends (one with a rotated secret), a peer p imported. */
static void
busy_tenant(void)
{
    uint8_t pk[SIGN_PK], sk[SIGN_SK];
    char whpk[64], id[NG_TENANT_ID_BYTES], whsec[WHSEC_CAP], *p;
    uint32_t epoch;

    make_tenant(g_v, "t", 1, 0);
    make_tenant(g_v, "p", 1, 0);
    assert_int_equal(ng_tenant_key_rotate(g_v, "t", NOW + 1, &epoch), NG_OK);
    crypto_sign_keypair(pk, sk);
    whpk_of(whpk, pk);
    assert_int_equal(ng_tenant_backend_add(g_v, "t", "https://b1.example/in", whpk, NOW, id, whsec, sizeof whsec),
                     NG_OK);
    assert_int_equal(ng_tenant_backend_add(g_v, "t", "http://b2.example/in", NULL, NOW, id, whsec, sizeof whsec),
                     NG_OK);
    assert_int_equal(ng_tenant_backend_rotate_secret(g_v, "t", "b1", NOW + 2, whsec, sizeof whsec), NG_OK);
    p = export_ok(g_v, "p", NOW, NULL);
    assert_int_equal(ng_peer_import(g_v, "t", p, NULL, NOW, NULL), NG_OK);
    free_params(p);
    sodium_memzero(whsec, sizeof whsec);
}

static void
test_show_and_list_hold_no_secrets(void **state)
{
    json_t *j = NULL;
    char *p;

    (void)state;
    busy_tenant();
    expect_entry(g_v, "tenant/t/backend/b1/whsec.prev");
    expect_entry(g_v, "tenant/t/peer/p/psk");
    expect_entry(g_v, "tenant/t/peer/p/read_token");

    /* t: 2 keys, sign, psk, read token, 3 webhook secrets, 2 peer secrets; p: key, sign, psk, read token. */
    assert_int_equal(ng_tenant_show(g_v, "t", &j), NG_OK);
    assert_int_equal(expect_no_secrets(j, "show t"), 14);
    json_decref(j);
    assert_int_equal(ng_tenant_show(g_v, "p", &j), NG_OK);
    expect_no_secrets(j, "show p");
    json_decref(j);
    assert_int_equal(ng_tenant_list(g_v, &j), NG_OK);
    expect_no_secrets(j, "list");
    json_decref(j);
    assert_int_equal(ng_tenant_backend_list(g_v, "t", &j), NG_OK);
    expect_no_secrets(j, "backend list");
    json_decref(j);
    assert_int_equal(ng_peer_list(g_v, "t", &j), NG_OK);
    expect_no_secrets(j, "peer list");
    json_decref(j);
    assert_int_equal(ng_tenant_record(g_v, "t", &j), NG_OK);
    expect_no_secrets(j, "record");
    json_decref(j);
    p = export_ok(g_v, "t", NOW, NULL);
    assert_int_equal(ng_peer_decode(p, &j), NG_OK);
    expect_no_secrets(j, "decoded parameters");
    json_decref(j);
    free_params(p);
}

static void
test_show_keys_and_signing_key(void **state)
{
    uint8_t pub[NG_KEY_BYTES], id[NG_KEY_ID_BYTES], spk[SIGN_PK];
    char hex[65], whpk[64];
    json_t *j = NULL, *keys, *k;
    ng_keypair newest;
    size_t i;

    (void)state;
    busy_tenant();
    assert_int_equal(ng_tenant_show(g_v, "t", &j), NG_OK);
    assert_string_equal(str_field(j, "slug"), "t");
    keys = json_object_get(j, "keys");
    assert_int_equal(json_array_size(keys), 2);
    json_array_foreach(keys, i, k)
    {
        assert_int_equal(int_field(k, "epoch"), (json_int_t)i + 1);
        hex_bytes(k, "public", pub, sizeof pub);
        ng_key_id(id, pub);
        hex_of(hex, sizeof hex, id, sizeof id);
        assert_int_equal(strlen(str_field(k, "key_id")), 64);
        assert_string_equal(str_field(k, "key_id"), hex);
        assert_true(json_is_boolean(json_object_get(k, "sending")));
        assert_int_equal(json_is_true(json_object_get(k, "sending")), i == 1);
    }
    assert_int_equal(ng_tenant_keypair(g_v, "t", 0, &newest), NG_OK);
    hex_of(hex, sizeof hex, newest.pub, sizeof newest.pub);
    assert_string_equal(str_field(json_array_get(keys, 1), "public"), hex);
    ng_keypair_wipe(&newest);

    hex_bytes(j, "signing_public", spk, sizeof spk);
    whpk_of(whpk, spk);
    assert_string_equal(str_field(j, "signing_key"), whpk);
    assert_int_equal(json_array_size(json_object_get(j, "backends")), 2);
    assert_string_equal(str_field(json_array_get(json_object_get(j, "backends"), 0), "id"), "b1");
    assert_int_equal(json_array_size(json_object_get(j, "peers")), 1);
    assert_string_equal(str_field(json_array_get(json_object_get(j, "peers"), 0), "name"), "p");
    json_decref(j);

    assert_int_equal(ng_tenant_show(g_v, "nobody", &j), NG_ERR_NOT_FOUND);
    assert_null(j);
    assert_int_equal(ng_tenant_show(g_v, "No/body", &j), NG_ERR_INVALID_ARG);
    assert_null(j);
}

static void
test_list_counts(void **state)
{
    uint8_t id[NG_KEY_ID_BYTES];
    char hex[65];
    json_t *j = NULL, *t, *p;
    ng_keypair kp;

    (void)state;
    assert_int_equal(ng_tenant_list(g_v, &j), NG_OK);
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);
    busy_tenant();
    assert_int_equal(ng_tenant_list(g_v, &j), NG_OK);
    assert_int_equal(json_array_size(j), 2);
    p = json_array_get(j, 0);
    t = json_array_get(j, 1);
    assert_string_equal(str_field(p, "slug"), "p");
    assert_string_equal(str_field(t, "slug"), "t");
    assert_int_equal(int_field(t, "backends"), 2);
    assert_int_equal(int_field(t, "peers"), 1);
    assert_int_equal(int_field(t, "epoch"), 2);
    assert_int_equal(int_field(t, "created"), NOW);
    assert_int_equal(ng_tenant_keypair(g_v, "t", 2, &kp), NG_OK);
    ng_key_id(id, kp.pub);
    ng_keypair_wipe(&kp);
    hex_of(hex, sizeof hex, id, sizeof id);
    assert_string_equal(str_field(t, "key_id"), hex);
    assert_int_equal(int_field(p, "backends"), 0);
    assert_int_equal(int_field(p, "peers"), 0);
    assert_int_equal(int_field(p, "epoch"), 1);
    json_decref(j);
}

/* ---- 4. keys ---- */

static void
test_key_rotate_and_retire(void **state)
{
    uint8_t id1[NG_KEY_ID_BYTES], id2[NG_KEY_ID_BYTES], other[NG_KEY_ID_BYTES];
    ng_keypair k1, k2, kp;
    uint32_t epoch = 0;
    json_t *rec;

    (void)state;
    make_tenant(g_v, "t", 0, 0);
    assert_int_equal(ng_tenant_keypair(g_v, "t", 1, &k1), NG_OK);
    assert_int_equal(ng_tenant_key_rotate(g_v, "t", NOW + 1, &epoch), NG_OK);
    assert_int_equal(epoch, 2);
    expect_entry(g_v, "tenant/t/key/2");
    rec = get_record(g_v, "tenant/t");
    assert_int_equal(json_array_size(json_object_get(rec, "keys")), 2);
    assert_int_equal(int_field(json_array_get(json_object_get(rec, "keys"), 1), "epoch"), 2);
    assert_int_equal(int_field(json_array_get(json_object_get(rec, "keys"), 1), "created"), NOW + 1);
    json_decref(rec);

    assert_int_equal(ng_tenant_keypair(g_v, "t", 2, &k2), NG_OK);
    assert_memory_not_equal(k1.pub, k2.pub, NG_KEY_BYTES);
    assert_int_equal(ng_tenant_keypair(g_v, "t", 0, &kp), NG_OK);
    assert_memory_equal(kp.pub, k2.pub, NG_KEY_BYTES);
    assert_memory_equal(kp.priv, k2.priv, NG_KEY_BYTES);

    ng_key_id(id1, k1.pub);
    ng_key_id(id2, k2.pub);
    assert_int_equal(ng_tenant_keypair_for(g_v, "t", id1, &kp), NG_OK);
    assert_memory_equal(kp.pub, k1.pub, NG_KEY_BYTES);
    assert_memory_equal(kp.priv, k1.priv, NG_KEY_BYTES);
    assert_int_equal(ng_tenant_keypair_for(g_v, "t", id2, &kp), NG_OK);
    assert_memory_equal(kp.priv, k2.priv, NG_KEY_BYTES);
    randombytes_buf(other, sizeof other);
    assert_int_equal(ng_tenant_keypair_for(g_v, "t", other, &kp), NG_ERR_WRONG_RECIPIENT);
    assert_true(sodium_is_zero((const unsigned char *)&kp, sizeof kp));

    /* The sending key cannot go. */
    assert_int_equal(ng_tenant_key_retire(g_v, "t", 2), NG_ERR_INVALID_ARG);
    expect_entry(g_v, "tenant/t/key/2");
    rec = get_record(g_v, "tenant/t");
    assert_int_equal(json_array_size(json_object_get(rec, "keys")), 2);
    json_decref(rec);

    assert_int_equal(ng_tenant_key_retire(g_v, "t", 1), NG_OK);
    expect_no_entry(g_v, "tenant/t/key/1");
    rec = get_record(g_v, "tenant/t");
    assert_int_equal(json_array_size(json_object_get(rec, "keys")), 1);
    assert_int_equal(int_field(json_array_get(json_object_get(rec, "keys"), 0), "epoch"), 2);
    json_decref(rec);
    assert_int_equal(ng_tenant_keypair_for(g_v, "t", id1, &kp), NG_ERR_WRONG_RECIPIENT);
    assert_int_equal(ng_tenant_keypair(g_v, "t", 1, &kp), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_tenant_keypair_for(g_v, "t", id2, &kp), NG_OK);
    assert_memory_equal(kp.priv, k2.priv, NG_KEY_BYTES);

    assert_int_equal(ng_tenant_key_retire(g_v, "t", 1), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_tenant_key_retire(g_v, "t", 99), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_tenant_key_retire(g_v, "t", 0), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_tenant_key_retire(g_v, "nobody", 1), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_tenant_key_rotate(g_v, "nobody", NOW, &epoch), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_tenant_keypair(g_v, "nobody", 0, &kp), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_tenant_keypair_for(g_v, "nobody", id2, &kp), NG_ERR_NOT_FOUND);

    /* Epochs are not reused after a retirement. */
    assert_int_equal(ng_tenant_key_rotate(g_v, "t", NOW + 2, &epoch), NG_OK);
    assert_int_equal(epoch, 3);
    ng_keypair_wipe(&k1);
    ng_keypair_wipe(&k2);
    ng_keypair_wipe(&kp);
}

static void
test_key_limit(void **state)
{
    uint32_t epoch = 0, e;
    json_t *rec;
    size_t n;

    (void)state;
    make_tenant(g_v, "t", 0, 0);
    for (e = 2; e <= NG_TENANT_MAX_KEYS; e++) {
        assert_int_equal(ng_tenant_key_rotate(g_v, "t", NOW + e, &epoch), NG_OK);
        assert_int_equal(epoch, e);
    }
    n = ng_vault_count(g_v);
    epoch = 0;
    assert_int_equal(ng_tenant_key_rotate(g_v, "t", NOW + 100, &epoch), NG_ERR_TOO_LARGE);
    assert_int_equal(epoch, 0);
    assert_int_equal(ng_vault_count(g_v), n);
    expect_no_entry(g_v, "tenant/t/key/17");
    rec = get_record(g_v, "tenant/t");
    assert_int_equal(json_array_size(json_object_get(rec, "keys")), NG_TENANT_MAX_KEYS);
    json_decref(rec);

    assert_int_equal(ng_tenant_key_retire(g_v, "t", 1), NG_OK);
    assert_int_equal(ng_tenant_key_rotate(g_v, "t", NOW + 101, &epoch), NG_OK);
    assert_int_equal(epoch, 17);
    assert_int_equal(ng_tenant_key_rotate(g_v, "t", NOW + 102, &epoch), NG_ERR_TOO_LARGE);
}

static void
open_with(const uint8_t *parcel, size_t len, const ng_keypair *kp, const char *body)
{
    uint8_t *out = malloc(len);
    ng_open_params op;
    ng_opened o;

    assert_non_null(out);
    ng_open_params_init(&op);
    op.recipient = kp;
    assert_int_equal(ng_parcel_open(out, len, &o, parcel, len, &op), NG_OK);
    assert_int_equal(o.body_len, strlen(body));
    assert_memory_equal(o.body, body, strlen(body));
    free(out);
}

static void
test_rotation_parcel_end_to_end(void **state)
{
    static const char meta[] = "{\"content_type\":\"text/plain\"}";
    static const char body[] = "sealed to epoch 1";
    ng_keypair k1, kp;
    ng_seal_params sp;
    ng_parcel_header h;
    ng_open_params op;
    uint8_t *parcel, id1[NG_KEY_ID_BYTES];
    uint32_t epoch;
    size_t len;

    (void)state;
    make_tenant(g_v, "t", 0, 0);
    assert_int_equal(ng_tenant_keypair(g_v, "t", 1, &k1), NG_OK);
    memset(&sp, 0, sizeof sp);
    sp.pattern = NG_PATTERN_N;
    sp.recipient_pub = k1.pub;
    sp.meta = (const uint8_t *)meta;
    sp.meta_len = strlen(meta);
    sp.body = (const uint8_t *)body;
    sp.body_len = strlen(body);
    sp.ttl_ms = 3600 * 1000;
    parcel = seal_ok(&sp, &len);
    assert_int_equal(ng_parcel_inspect(&h, parcel, len, 0), NG_OK);
    ng_key_id(id1, k1.pub);
    assert_memory_equal(h.recipient_key_id, id1, NG_KEY_ID_BYTES);

    assert_int_equal(ng_tenant_keypair_for(g_v, "t", h.recipient_key_id, &kp), NG_OK);
    open_with(parcel, len, &kp, body);

    /* After a rotation the parcel still opens with the key its header names. */
    assert_int_equal(ng_tenant_key_rotate(g_v, "t", NOW + 1, &epoch), NG_OK);
    assert_int_equal(ng_tenant_keypair_for(g_v, "t", h.recipient_key_id, &kp), NG_OK);
    assert_memory_equal(kp.priv, k1.priv, NG_KEY_BYTES);
    open_with(parcel, len, &kp, body);

    /* After retiring epoch 1 it does not: no key for it, and the newest is another recipient. */
    assert_int_equal(ng_tenant_key_retire(g_v, "t", 1), NG_OK);
    assert_int_equal(ng_tenant_keypair_for(g_v, "t", h.recipient_key_id, &kp), NG_ERR_WRONG_RECIPIENT);
    assert_int_equal(ng_tenant_keypair(g_v, "t", 0, &kp), NG_OK);
    ng_open_params_init(&op);
    op.recipient = &kp;
    expect_refused(parcel, len, &op, NG_ERR_WRONG_RECIPIENT, "newest key after retire", 0);
    free(parcel);
    ng_keypair_wipe(&k1);
    ng_keypair_wipe(&kp);
}

/* ---- 4b. end-to-end: the backend holds the private key ---- */

/* The "keys" entry of epoch in slug's record (a new reference), or a failure. */
static json_t *
key_entry_of(ng_vault *vault, const char *slug, json_int_t epoch)
{
    json_t *rec = NULL, *k, *found = NULL;
    size_t i;

    assert_int_equal(ng_tenant_record(vault, slug, &rec), NG_OK);
    json_array_foreach(json_object_get(rec, "keys"), i, k) if (int_field(k, "epoch") == epoch) found = json_incref(k);
    json_decref(rec);
    if (found == NULL)
        fail_msg("tenant %s has no epoch %d", slug, (int)epoch);
    return found;
}

static void
test_key_export(void **state)
{
    uint8_t stored[NG_KEY_BYTES], id1[NG_KEY_ID_BYTES], pub[NG_KEY_BYTES];
    char hex[65], *p;
    ng_keypair k1, kp, xkp;
    uint32_t epoch = 99;
    json_t *k, *j = NULL;
    size_t n;

    (void)state;
    make_tenant(g_v, "t", 0, 0);
    make_tenant(g_v, "p", 0, 0);
    assert_int_equal(ng_tenant_keypair(g_v, "t", 1, &k1), NG_OK);
    get_exact(g_v, "tenant/t/key/1", stored, sizeof stored);
    assert_memory_equal(stored, k1.priv, NG_KEY_BYTES);

    /* What the vault had, handed over, and gone from the vault; the record keeps the public key. */
    assert_int_equal(ng_tenant_key_export(g_v, "t", &epoch, &xkp), NG_OK);
    assert_int_equal(epoch, 1);
    assert_memory_equal(xkp.priv, stored, NG_KEY_BYTES);
    assert_memory_equal(xkp.pub, k1.pub, NG_KEY_BYTES);
    expect_no_entry(g_v, "tenant/t/key/1");
    k = key_entry_of(g_v, "t", 1);
    assert_true(json_is_true(json_object_get(k, "held_by_backend")));
    hex_bytes(k, "public", pub, sizeof pub);
    assert_memory_equal(pub, k1.pub, NG_KEY_BYTES);
    json_decref(k);

    /* Once only: the gateway has nothing left to hand over, and says so without changing anything. */
    n = ng_vault_count(g_v);
    memset(&xkp, 0xa5, sizeof xkp);
    assert_int_equal(ng_tenant_key_export(g_v, "t", &epoch, &xkp), NG_ERR_KEY_ELSEWHERE);
    assert_int_equal(epoch, 0);
    assert_true(sodium_is_zero((const unsigned char *)&xkp, sizeof xkp));
    assert_int_equal(ng_vault_count(g_v), n);

    /* The gateway's own uses of the key say where it is. */
    ng_key_id(id1, k1.pub);
    assert_int_equal(ng_tenant_keypair(g_v, "t", 1, &kp), NG_ERR_KEY_ELSEWHERE);
    assert_true(sodium_is_zero((const unsigned char *)&kp, sizeof kp));
    assert_int_equal(ng_tenant_keypair(g_v, "t", 0, &kp), NG_ERR_KEY_ELSEWHERE);
    assert_int_equal(ng_tenant_keypair_for(g_v, "t", id1, &kp), NG_ERR_KEY_ELSEWHERE);

    /* Shown as held, and the exported key is in no JSON. */
    assert_int_equal(ng_tenant_show(g_v, "t", &j), NG_OK);
    k = json_array_get(json_object_get(j, "keys"), 0);
    assert_true(json_is_true(json_object_get(k, "held_by_backend")));
    assert_true(json_is_true(json_object_get(k, "sending")));
    hex_of(hex, sizeof hex, id1, sizeof id1);
    assert_string_equal(str_field(k, "key_id"), hex);
    p = json_dumps(j, CANONICAL);
    expect_secret_absent(p, stored, sizeof stored, "exported key", "show");
    free(p);
    json_decref(j);

    /* Peers can still be imported: their keys' check needs no private key of the tenant. */
    p = export_ok(g_v, "p", NOW, NULL);
    assert_int_equal(ng_peer_import(g_v, "t", p, NULL, NOW, NULL), NG_OK);
    free_params(p);

    /* A rotation makes a key the gateway holds again; that one can be exported in turn. */
    assert_int_equal(ng_tenant_key_rotate(g_v, "t", NOW + 1, &epoch), NG_OK);
    assert_int_equal(epoch, 2);
    expect_entry(g_v, "tenant/t/key/2");
    assert_int_equal(ng_tenant_show(g_v, "t", &j), NG_OK);
    k = json_array_get(json_object_get(j, "keys"), 1);
    assert_true(json_is_false(json_object_get(k, "held_by_backend")));
    json_decref(j);
    get_exact(g_v, "tenant/t/key/2", stored, sizeof stored);
    assert_int_equal(ng_tenant_key_export(g_v, "t", &epoch, &xkp), NG_OK);
    assert_int_equal(epoch, 2);
    assert_memory_equal(xkp.priv, stored, NG_KEY_BYTES);
    expect_no_entry(g_v, "tenant/t/key/2");

    /* A held epoch retires like any other, but never the newest. */
    assert_int_equal(ng_tenant_key_retire(g_v, "t", 2), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_tenant_key_retire(g_v, "t", 1), NG_OK);
    j = get_record(g_v, "tenant/t");
    assert_int_equal(json_array_size(json_object_get(j, "keys")), 1);
    assert_int_equal(int_field(json_array_get(json_object_get(j, "keys"), 0), "epoch"), 2);
    json_decref(j);

    assert_int_equal(ng_tenant_key_export(g_v, "nobody", &epoch, &xkp), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_tenant_key_export(g_v, "No/body", &epoch, &xkp), NG_ERR_INVALID_ARG);
    sodium_memzero(stored, sizeof stored);
    ng_keypair_wipe(&xkp);
    ng_keypair_wipe(&k1);
}

/* A vault whose key does not match its record is damage: nothing is handed over and nothing changes. */
static void
test_key_export_damage(void **state)
{
    uint8_t other[NG_KEY_BYTES];
    ng_keypair xkp;
    uint32_t epoch;
    json_t *k;
    size_t n;

    (void)state;
    make_tenant(g_v, "t", 0, 0);
    randombytes_buf(other, sizeof other);
    assert_int_equal(ng_vault_put(g_v, "tenant/t/key/1", other, sizeof other), NG_OK);
    n = ng_vault_count(g_v);
    memset(&xkp, 0xa5, sizeof xkp);
    assert_int_equal(ng_tenant_key_export(g_v, "t", &epoch, &xkp), NG_ERR_CORRUPT);
    assert_true(sodium_is_zero((const unsigned char *)&xkp, sizeof xkp));
    expect_entry(g_v, "tenant/t/key/1");
    k = key_entry_of(g_v, "t", 1);
    assert_false(json_is_true(json_object_get(k, "held_by_backend")));
    json_decref(k);
    assert_int_equal(ng_vault_delete(g_v, "tenant/t/key/1"), NG_OK);
    assert_int_equal(ng_tenant_key_export(g_v, "t", &epoch, &xkp), NG_ERR_CORRUPT);
    assert_int_equal(ng_vault_count(g_v), n - 1);
    sodium_memzero(other, sizeof other);
}

/* What ng_key_public_ok refuses, as a tenant's key or a peer's: all zero, of low order, and non-canonical encodings. */
static const char *const bad_public[] = {"0000000000000000000000000000000000000000000000000000000000000000",
                                         "0100000000000000000000000000000000000000000000000000000000000000",
                                         "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
                                         "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
                                         "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
                                         "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
                                         "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
                                         "f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
                                         NULL};

static void
test_key_import_public(void **state)
{
    uint8_t pub[NG_KEY_BYTES], id[NG_KEY_ID_BYTES];
    char hex[65];
    ng_keypair backend, kp, own;
    uint32_t epoch = 0, e;
    json_t *k, *j = NULL;
    size_t i, n;

    (void)state;
    make_tenant(g_v, "t", 0, 0);
    make_tenant(g_v, "u", 0, 0);
    ng_keypair_generate(&backend);
    assert_int_equal(ng_tenant_key_import_public(g_v, "t", backend.pub, NOW + 5, &epoch), NG_OK);
    assert_int_equal(epoch, 2);
    expect_no_entry(g_v, "tenant/t/key/2");
    k = key_entry_of(g_v, "t", 2);
    hex_of(hex, sizeof hex, backend.pub, sizeof backend.pub);
    assert_string_equal(str_field(k, "public"), hex);
    assert_true(json_is_true(json_object_get(k, "held_by_backend")));
    assert_int_equal(int_field(k, "created"), NOW + 5);
    json_decref(k);
    /* The new epoch sends; the gateway holds no private key for it, and still the old one's. */
    assert_int_equal(ng_tenant_keypair(g_v, "t", 0, &kp), NG_ERR_KEY_ELSEWHERE);
    assert_int_equal(ng_tenant_keypair(g_v, "t", 1, &kp), NG_OK);
    ng_key_id(id, backend.pub);
    assert_int_equal(ng_tenant_keypair_for(g_v, "t", id, &kp), NG_ERR_KEY_ELSEWHERE);
    assert_int_equal(ng_tenant_show(g_v, "t", &j), NG_OK);
    k = json_array_get(json_object_get(j, "keys"), 1);
    assert_true(json_is_true(json_object_get(k, "sending")));
    assert_true(json_is_true(json_object_get(k, "held_by_backend")));
    hex_of(hex, sizeof hex, id, sizeof id);
    assert_string_equal(str_field(k, "key_id"), hex);
    json_decref(j);

    /* Refusals change nothing. */
    n = ng_vault_count(g_v);
    for (i = 0; bad_public[i] != NULL; i++) {
        assert_int_equal(ng_hex_decode(pub, sizeof pub, bad_public[i], strlen(bad_public[i])), NG_OK);
        epoch = 99;
        if (ng_tenant_key_import_public(g_v, "t", pub, NOW, &epoch) != NG_ERR_BAD_KEY)
            fail_msg("key %s was not refused as bad", bad_public[i]);
        assert_int_equal(epoch, 0);
        assert_int_equal(ng_key_public_ok(pub), NG_ERR_BAD_KEY);
    }
    /* The high bit set: another encoding of a good key. */
    ng_keypair_generate(&kp);
    memcpy(pub, kp.pub, sizeof pub);
    assert_int_equal(ng_key_public_ok(pub), NG_OK);
    pub[31] |= 0x80;
    assert_int_equal(ng_tenant_key_import_public(g_v, "t", pub, NOW, &epoch), NG_ERR_BAD_KEY);

    /* A key id that is already a live key's, of this tenant or another: the directory could not tell them apart. */
    assert_int_equal(ng_tenant_key_import_public(g_v, "t", backend.pub, NOW, &epoch), NG_ERR_EXISTS);
    assert_int_equal(ng_tenant_key_import_public(g_v, "u", backend.pub, NOW, &epoch), NG_ERR_EXISTS);
    assert_int_equal(ng_tenant_keypair(g_v, "u", 1, &own), NG_OK);
    assert_int_equal(ng_tenant_key_import_public(g_v, "t", own.pub, NOW, &epoch), NG_ERR_EXISTS);
    assert_int_equal(ng_tenant_keypair(g_v, "t", 1, &own), NG_OK);
    assert_int_equal(ng_tenant_key_import_public(g_v, "t", own.pub, NOW, &epoch), NG_ERR_EXISTS);
    assert_int_equal(ng_tenant_key_import_public(g_v, "nobody", kp.pub, NOW, &epoch), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_vault_count(g_v), n);
    j = get_record(g_v, "tenant/t");
    assert_int_equal(json_array_size(json_object_get(j, "keys")), 2);
    json_decref(j);

    /* Once retired, its key id is free again. */
    assert_int_equal(ng_tenant_key_rotate(g_v, "t", NOW + 6, &epoch), NG_OK);
    assert_int_equal(epoch, 3);
    assert_int_equal(ng_tenant_key_retire(g_v, "t", 2), NG_OK);
    assert_int_equal(ng_tenant_key_import_public(g_v, "u", backend.pub, NOW + 7, &epoch), NG_OK);
    assert_int_equal(epoch, 2);

    /* At 16 live keys, as a rotation. */
    for (e = 3; e <= NG_TENANT_MAX_KEYS; e++)
        assert_int_equal(ng_tenant_key_rotate(g_v, "u", NOW, &epoch), NG_OK);
    n = ng_vault_count(g_v);
    assert_int_equal(ng_tenant_key_import_public(g_v, "u", kp.pub, NOW, &epoch), NG_ERR_TOO_LARGE);
    assert_int_equal(ng_vault_count(g_v), n);
    ng_keypair_wipe(&backend);
    ng_keypair_wipe(&kp);
    ng_keypair_wipe(&own);
}

/* ---- 5. backends ---- */

static void
test_backend_add(void **state)
{
    uint8_t pk[SIGN_PK], sk[SIGN_SK], shown[32], stored[32], shown2[32];
    char whpk[64], id[NG_TENANT_ID_BYTES], whsec[WHSEC_CAP], whsec2[WHSEC_CAP];
    json_t *b, *rec, *list = NULL;

    (void)state;
    make_tenant(g_v, "t", 0, 0);
    crypto_sign_keypair(pk, sk);
    whpk_of(whpk, pk);
    assert_int_equal(ng_tenant_backend_add(g_v, "t", "https://b.example/hook", whpk, NOW, id, whsec, sizeof whsec),
                     NG_OK);
    assert_string_equal(id, "b1");
    assert_int_equal(strncmp(whsec, "whsec_", 6), 0);
    whsec_bytes(whsec, shown);
    get_exact(g_v, "tenant/t/backend/b1/whsec", stored, sizeof stored);
    assert_memory_equal(shown, stored, 32);
    b = get_record(g_v, "tenant/t/backend/b1");
    assert_string_equal(str_field(b, "url"), "https://b.example/hook");
    assert_string_equal(str_field(b, "public_key"), whpk);
    assert_string_equal(str_field(b, "status"), "active");
    assert_int_equal(int_field(b, "created"), NOW);
    json_decref(b);

    assert_int_equal(ng_tenant_backend_add(g_v, "t", "http://c.example/", NULL, NOW + 1, id, whsec2, sizeof whsec2),
                     NG_OK);
    assert_string_equal(id, "b2");
    whsec_bytes(whsec2, shown2);
    assert_memory_not_equal(shown, shown2, 32);
    get_exact(g_v, "tenant/t/backend/b2/whsec", stored, sizeof stored);
    assert_memory_equal(shown2, stored, 32);
    b = get_record(g_v, "tenant/t/backend/b2");
    assert_string_equal(str_field(b, "public_key"), "");
    json_decref(b);

    /* No output wanted: the secret is still made. */
    assert_int_equal(ng_tenant_backend_add(g_v, "t", "http://d.example/", NULL, NOW, id, NULL, 0), NG_OK);
    assert_string_equal(id, "b3");
    expect_entry(g_v, "tenant/t/backend/b3/whsec");

    rec = get_record(g_v, "tenant/t");
    assert_int_equal(int_field(rec, "next_backend"), 4);
    json_decref(rec);
    assert_int_equal(ng_tenant_backend_list(g_v, "t", &list), NG_OK);
    assert_int_equal(json_array_size(list), 3);
    assert_string_equal(str_field(json_array_get(list, 0), "id"), "b1");
    assert_string_equal(str_field(json_array_get(list, 2), "id"), "b3");
    assert_string_equal(str_field(json_array_get(list, 1), "url"), "http://c.example/");
    json_decref(list);
    assert_int_equal(ng_tenant_backend_list(g_v, "nobody", &list), NG_ERR_NOT_FOUND);
    assert_null(list);
}

static void
test_backend_bad_input(void **state)
{
    struct {
        char whpk[128];
        ng_err want;
    } cases[16];
    uint8_t pk[SIGN_PK], sk[SIGN_SK], bytes[40];
    char good[64], b64[80], id[NG_TENANT_ID_BYTES], whsec[WHSEC_CAP];
    size_t n = 0, i, count;
    char *c;

    (void)state;
    make_tenant(g_v, "t", 0, 0);
    /* A key whose standard base64 has '+' or '/', so that the URL-safe alphabet differs. */
    do {
        crypto_sign_keypair(pk, sk);
        whpk_of(good, pk);
    } while (strpbrk(good + 5, "+/") == NULL);
    snprintf(cases[n].whpk, sizeof cases[n].whpk, "whpx_%s", good + 5);
    cases[n++].want = NG_ERR_PARSE;
    snprintf(cases[n].whpk, sizeof cases[n].whpk, "WHPK_%s", good + 5);
    cases[n++].want = NG_ERR_PARSE;
    snprintf(cases[n].whpk, sizeof cases[n].whpk, "%s", good + 5);
    cases[n++].want = NG_ERR_PARSE;
    snprintf(cases[n].whpk, sizeof cases[n].whpk, "whpk_");
    cases[n++].want = NG_ERR_PARSE;
    randombytes_buf(bytes, sizeof bytes);
    sodium_bin2base64(b64, sizeof b64, bytes, 31, sodium_base64_VARIANT_ORIGINAL);
    snprintf(cases[n].whpk, sizeof cases[n].whpk, "whpk_%s", b64);
    cases[n++].want = NG_ERR_PARSE;
    sodium_bin2base64(b64, sizeof b64, bytes, 33, sodium_base64_VARIANT_ORIGINAL);
    snprintf(cases[n].whpk, sizeof cases[n].whpk, "whpk_%s", b64);
    cases[n++].want = NG_ERR_PARSE;
    snprintf(cases[n].whpk, sizeof cases[n].whpk, "whpk_%s", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!=");
    cases[n++].want = NG_ERR_PARSE;
    snprintf(cases[n].whpk, sizeof cases[n].whpk, "%sAAAA", good);
    cases[n++].want = NG_ERR_PARSE;
    snprintf(cases[n].whpk, sizeof cases[n].whpk, "%s ", good);
    cases[n++].want = NG_ERR_PARSE;
    snprintf(cases[n].whpk, sizeof cases[n].whpk, "%s", good);
    for (c = cases[n].whpk; *c != '\0'; c++)
        *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
    cases[n++].want = NG_ERR_PARSE;
    sodium_bin2base64(b64, sizeof b64, off_curve, 32, sodium_base64_VARIANT_ORIGINAL);
    snprintf(cases[n].whpk, sizeof cases[n].whpk, "whpk_%s", b64);
    cases[n++].want = NG_ERR_BAD_KEY;
    memset(bytes, 0, sizeof bytes); /* y = 0: on the curve, of order 4 */
    sodium_bin2base64(b64, sizeof b64, bytes, 32, sodium_base64_VARIANT_ORIGINAL);
    snprintf(cases[n].whpk, sizeof cases[n].whpk, "whpk_%s", b64);
    cases[n++].want = NG_ERR_BAD_KEY;

    count = ng_vault_count(g_v);
    for (i = 0; i < n; i++) {
        ng_err err;
        memcpy(id, "zz", 3);
        err = ng_tenant_backend_add(g_v, "t", "https://b.example/", cases[i].whpk, NOW, id, whsec, sizeof whsec);
        if (err != cases[i].want) {
            print_error("whpk \"%s\": %d (%s), want %d (%s)\n", cases[i].whpk, (int)err, ng_strerror(err),
                        (int)cases[i].want, ng_strerror(cases[i].want));
            fail();
        }
        assert_string_equal(id, "");
        assert_int_equal(ng_vault_count(g_v), count);
    }
    assert_int_equal(ng_tenant_backend_add(g_v, "t", "ftp://b.example/", good, NOW, id, whsec, sizeof whsec),
                     NG_ERR_INVALID_ARG);
    assert_int_equal(ng_tenant_backend_add(g_v, "t", "http://u:p@b.example/", NULL, NOW, id, whsec, sizeof whsec),
                     NG_ERR_INVALID_ARG);
    assert_int_equal(ng_tenant_backend_add(g_v, "t", "", NULL, NOW, id, whsec, sizeof whsec), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_tenant_backend_add(g_v, "nobody", "https://b.example/", good, NOW, id, whsec, sizeof whsec),
                     NG_ERR_NOT_FOUND);
    assert_int_equal(ng_vault_count(g_v), count);
    assert_int_equal(count_prefix(g_v, "tenant/t/backend/"), 0);
    /* The good key itself goes in. */
    assert_int_equal(ng_tenant_backend_add(g_v, "t", "https://b.example/", good, NOW, id, whsec, sizeof whsec), NG_OK);
    assert_string_equal(id, "b1");
}

static void
test_backend_rotate_and_remove(void **state)
{
    uint8_t first[32], second[32], b2[32], now_stored[32], prev[32], shown[32];
    char id[NG_TENANT_ID_BYTES], whsec[WHSEC_CAP], whsec1[WHSEC_CAP];
    json_t *b;

    (void)state;
    make_tenant(g_v, "t", 0, 0);
    assert_int_equal(ng_tenant_backend_add(g_v, "t", "https://b.example/", NULL, NOW, id, whsec1, sizeof whsec1),
                     NG_OK);
    assert_int_equal(ng_tenant_backend_add(g_v, "t", "https://c.example/", NULL, NOW, id, whsec, sizeof whsec), NG_OK);
    get_exact(g_v, "tenant/t/backend/b1/whsec", first, sizeof first);
    get_exact(g_v, "tenant/t/backend/b2/whsec", b2, sizeof b2);

    assert_int_equal(ng_tenant_backend_rotate_secret(g_v, "t", "b1", NOW + 5, whsec, sizeof whsec), NG_OK);
    assert_string_not_equal(whsec, whsec1);
    whsec_bytes(whsec, shown);
    get_exact(g_v, "tenant/t/backend/b1/whsec", now_stored, sizeof now_stored);
    get_exact(g_v, "tenant/t/backend/b1/whsec.prev", prev, sizeof prev);
    assert_memory_equal(shown, now_stored, 32);
    assert_memory_equal(prev, first, 32);
    assert_memory_not_equal(now_stored, first, 32);
    b = get_record(g_v, "tenant/t/backend/b1");
    assert_int_equal(int_field(b, "secret_rotated"), NOW + 5);
    json_decref(b);
    /* The other backend is untouched. */
    get_exact(g_v, "tenant/t/backend/b2/whsec", now_stored, sizeof now_stored);
    assert_memory_equal(now_stored, b2, 32);
    expect_no_entry(g_v, "tenant/t/backend/b2/whsec.prev");

    /* A second rotation keeps the secret it replaces. */
    memcpy(second, shown, 32);
    assert_int_equal(ng_tenant_backend_rotate_secret(g_v, "t", "b1", NOW + 6, NULL, 0), NG_OK);
    get_exact(g_v, "tenant/t/backend/b1/whsec.prev", prev, sizeof prev);
    assert_memory_equal(prev, second, 32);

    assert_int_equal(ng_tenant_backend_remove(g_v, "t", "b1"), NG_OK);
    expect_no_entry(g_v, "tenant/t/backend/b1");
    expect_no_entry(g_v, "tenant/t/backend/b1/whsec");
    expect_no_entry(g_v, "tenant/t/backend/b1/whsec.prev");
    assert_int_equal(count_prefix(g_v, "tenant/t/backend/b1"), 0);
    expect_entry(g_v, "tenant/t/backend/b2");
    expect_entry(g_v, "tenant/t/backend/b2/whsec");

    assert_int_equal(ng_tenant_backend_remove(g_v, "t", "b1"), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_tenant_backend_rotate_secret(g_v, "t", "b1", NOW, whsec, sizeof whsec), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_tenant_backend_remove(g_v, "t", "b99"), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_tenant_backend_remove(g_v, "t", "x2"), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_tenant_backend_remove(g_v, "t", ""), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_tenant_backend_remove(g_v, "t", "b2/whsec"), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_tenant_backend_remove(g_v, "nobody", "b2"), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_tenant_backend_rotate_secret(g_v, "nobody", "b2", NOW, whsec, sizeof whsec), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_tenant_backend_rotate_secret(g_v, "t", "b7", NOW, whsec, sizeof whsec), NG_ERR_NOT_FOUND);
    expect_entry(g_v, "tenant/t/backend/b2/whsec");
    expect_no_entry(g_v, "tenant/t/backend/b7/whsec.prev");
}

static void
test_backend_limit(void **state)
{
    char id[NG_TENANT_ID_BYTES], want[NG_TENANT_ID_BYTES], name[64], whsec[WHSEC_CAP];
    json_t *rec;
    size_t n;
    int i;

    (void)state;
    make_tenant(g_v, "t", 0, 0);
    for (i = 1; i <= NG_TENANT_MAX_BACKENDS; i++) {
        assert_int_equal(ng_tenant_backend_add(g_v, "t", "https://b.example/", NULL, NOW, id, whsec, sizeof whsec),
                         NG_OK);
        snprintf(want, sizeof want, "b%d", i);
        assert_string_equal(id, want);
    }
    n = ng_vault_count(g_v);
    assert_int_equal(ng_tenant_backend_add(g_v, "t", "https://b.example/", NULL, NOW, id, whsec, sizeof whsec),
                     NG_ERR_TOO_LARGE);
    assert_string_equal(id, "");
    assert_int_equal(ng_vault_count(g_v), n);
    rec = get_record(g_v, "tenant/t");
    assert_int_equal(int_field(rec, "next_backend"), NG_TENANT_MAX_BACKENDS + 1);
    json_decref(rec);

    /* Removing b1 leaves b10..b19 alone, and frees a place; ids are not reused. */
    assert_int_equal(ng_tenant_backend_remove(g_v, "t", "b1"), NG_OK);
    for (i = 10; i <= 19; i++) {
        snprintf(name, sizeof name, "tenant/t/backend/b%d", i);
        expect_entry(g_v, name);
        snprintf(name, sizeof name, "tenant/t/backend/b%d/whsec", i);
        expect_entry(g_v, name);
    }
    assert_int_equal(ng_tenant_backend_add(g_v, "t", "https://b.example/", NULL, NOW, id, whsec, sizeof whsec), NG_OK);
    snprintf(want, sizeof want, "b%d", NG_TENANT_MAX_BACKENDS + 1);
    assert_string_equal(id, want);
    assert_int_equal(ng_tenant_backend_add(g_v, "t", "https://b.example/", NULL, NOW, id, whsec, sizeof whsec),
                     NG_ERR_TOO_LARGE);
}

/* ---- 6. delete ---- */

/* A tenant with everything under it: two epochs, a backend with a rotated secret, a peer. */
static void
furnish(const char *slug, const char *peer_params)
{
    char id[NG_TENANT_ID_BYTES], whsec[WHSEC_CAP];
    uint32_t epoch;

    make_tenant(g_v, slug, 1, 0);
    assert_int_equal(ng_tenant_key_rotate(g_v, slug, NOW + 1, &epoch), NG_OK);
    assert_int_equal(ng_tenant_backend_add(g_v, slug, "https://b.example/", NULL, NOW, id, whsec, sizeof whsec), NG_OK);
    assert_int_equal(ng_tenant_backend_rotate_secret(g_v, slug, id, NOW, whsec, sizeof whsec), NG_OK);
    if (peer_params != NULL)
        assert_int_equal(ng_peer_import(g_v, slug, peer_params, "friend", NOW, NULL), NG_OK);
}

static void
test_delete_spares_longer_slug(void **state)
{
    size_t n_abc, n_a, n_ab;
    json_t *j = NULL;
    char *p;

    (void)state;
    make_tenant(g_v2, "x", 1, 0);
    p = export_ok(g_v2, "x", NOW, NULL);
    furnish("a", p);
    furnish("ab", p);
    furnish("abc", p);
    free_params(p);
    n_a = count_prefix(g_v, "tenant/a/");
    n_ab = count_prefix(g_v, "tenant/ab/");
    n_abc = count_prefix(g_v, "tenant/abc/");
    assert_int_equal(n_abc, 11); /* 2 keys, sign, psk, read token, backend + 2 secrets, peer + 2 secrets */
    assert_int_equal(n_ab, n_abc);

    assert_int_equal(ng_tenant_delete(g_v, "ab"), NG_OK);
    expect_no_entry(g_v, "tenant/ab");
    assert_int_equal(count_prefix(g_v, "tenant/ab/"), 0);
    expect_entry(g_v, "tenant/abc");
    assert_int_equal(count_prefix(g_v, "tenant/abc/"), n_abc);
    expect_entry(g_v, "tenant/a");
    assert_int_equal(count_prefix(g_v, "tenant/a/"), n_a);
    assert_int_equal(ng_vault_count(g_v), 2 * (n_abc + 1));
    assert_int_equal(ng_tenant_show(g_v, "abc", &j), NG_OK);
    json_decref(j);
    assert_int_equal(ng_tenant_record(g_v, "ab", &j), NG_ERR_NOT_FOUND);
    assert_null(j);
    assert_int_equal(ng_tenant_delete(g_v, "ab"), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_tenant_delete(g_v, "Ab"), NG_ERR_INVALID_ARG);

    /* And the other way round: the shorter slug survives the longer one's deletion. */
    assert_int_equal(ng_tenant_delete(g_v, "abc"), NG_OK);
    assert_int_equal(count_prefix(g_v, "tenant/abc"), 0);
    expect_entry(g_v, "tenant/a");
    assert_int_equal(count_prefix(g_v, "tenant/a/"), n_a);
    assert_int_equal(ng_vault_count(g_v), n_a + 1);
    assert_int_equal(ng_tenant_delete(g_v, "a"), NG_OK);
    assert_int_equal(ng_vault_count(g_v), 0);
}

/* ---- 7. peers ---- */

static void
test_peer_export_import(void **state)
{
    static const char *const psk_patterns[] = {"Xpsk1", "Kpsk0"};
    static const char *const suites[] = {"25519_ChaChaPoly_BLAKE2b"};
    uint8_t spk[SIGN_PK], secret[32], stored[32];
    char fp[NG_PEER_FINGERPRINT_BYTES], fp2[NG_PEER_FINGERPRINT_BYTES], fp3[NG_PEER_FINGERPRINT_BYTES], used[64];
    char hex[2 * SIGN_PK + 1], *p, *pc;
    json_t *d = NULL, *rec, *src, *doc;

    (void)state;
    make_tenant(g_v, "a", 1, 0);
    make_tenant(g_v, "c", 0, 0);
    make_tenant(g_v2, "b", 0, 0);
    p = export_ok(g_v, "a", NOW, fp);
    signing_public(g_v, "a", spk);
    ng_peer_fingerprint(fp2, spk);
    own_fingerprint(fp3, spk);
    assert_string_equal(fp, fp2);
    assert_string_equal(fp, fp3);
    assert_int_equal(strlen(fp), NG_PEER_FINGERPRINT_BYTES - 1);

    assert_int_equal(ng_peer_decode(p, &d), NG_OK);
    assert_int_equal(int_field(d, "v"), 1);
    assert_string_equal(str_field(d, "name"), "a");
    assert_string_equal(str_field(d, "outbox"), OUTBOX);
    assert_int_equal(int_field(d, "created"), NOW);
    expect_strings(json_object_get(d, "patterns"), psk_patterns, 2);
    expect_strings(json_object_get(d, "suites"), suites, 1);
    assert_true(json_is_true(json_object_get(d, "psk")));
    assert_true(json_is_true(json_object_get(d, "read_token")));
    assert_string_equal(str_field(d, "fingerprint"), fp);
    assert_null(json_object_get(d, "sig"));
    hex_of(hex, sizeof hex, spk, sizeof spk);
    assert_string_equal(str_field(d, "signing_key"), hex);
    src = get_record(g_v, "tenant/a");
    assert_int_equal(json_array_size(json_object_get(d, "keys")), 1);
    assert_string_equal(str_field(json_array_get(json_object_get(d, "keys"), 0), "public"),
                        str_field(json_array_get(json_object_get(src, "keys"), 0), "public"));
    json_decref(src);
    json_decref(d);

    /* Into another vault. */
    assert_int_equal(ng_peer_import(g_v2, "b", p, NULL, NOW + 1, used), NG_OK);
    assert_string_equal(used, "a");
    rec = get_record(g_v2, "tenant/b/peer/a");
    doc = params_doc(p);
    assert_string_equal(str_field(rec, "peer_name"), "a");
    assert_true(json_equal(json_object_get(rec, "keys"), json_object_get(doc, "keys")));
    assert_true(json_equal(json_object_get(rec, "patterns"), json_object_get(doc, "patterns")));
    assert_true(json_equal(json_object_get(rec, "suites"), json_object_get(doc, "suites")));
    assert_string_equal(str_field(rec, "outbox"), OUTBOX);
    assert_string_equal(str_field(rec, "signing_key"), hex);
    assert_int_equal(int_field(rec, "created"), NOW);
    assert_int_equal(int_field(rec, "imported"), NOW + 1);
    assert_true(json_is_true(json_object_get(rec, "psk")));
    assert_null(json_object_get(rec, "read_token"));
    assert_null(json_object_get(rec, "sig"));
    json_decref(doc);
    json_decref(rec);
    assert_int_equal(ng_tenant_secret(g_v, "a", "psk", secret, sizeof secret), NG_OK);
    get_exact(g_v2, "tenant/b/peer/a/psk", stored, sizeof stored);
    assert_memory_equal(stored, secret, 32);
    assert_int_equal(ng_tenant_secret(g_v, "a", "read_token", secret, sizeof secret), NG_OK);
    get_exact(g_v2, "tenant/b/peer/a/read_token", stored, sizeof stored);
    assert_memory_equal(stored, secret, 32);
    assert_int_equal(count_prefix(g_v2, "tenant/b/peer/"), 3);

    /* Without a psk, under another name. */
    pc = export_ok(g_v, "c", NOW, NULL);
    assert_int_equal(ng_peer_decode(pc, &d), NG_OK);
    assert_true(json_is_false(json_object_get(d, "psk")));
    assert_true(json_is_true(json_object_get(d, "read_token")));
    json_decref(d);
    assert_int_equal(ng_peer_import(g_v2, "b", pc, "partner", NOW, used), NG_OK);
    assert_string_equal(used, "partner");
    expect_entry(g_v2, "tenant/b/peer/partner");
    expect_no_entry(g_v2, "tenant/b/peer/partner/psk");
    expect_no_entry(g_v2, "tenant/b/peer/c");
    assert_int_equal(ng_tenant_secret(g_v, "c", "read_token", secret, sizeof secret), NG_OK);
    get_exact(g_v2, "tenant/b/peer/partner/read_token", stored, sizeof stored);
    assert_memory_equal(stored, secret, 32);
    rec = get_record(g_v2, "tenant/b/peer/partner");
    assert_string_equal(str_field(rec, "peer_name"), "c");
    assert_true(json_is_false(json_object_get(rec, "psk")));
    json_decref(rec);

    /* Within one vault, into another tenant. */
    assert_int_equal(ng_peer_import(g_v, "c", p, NULL, NOW, NULL), NG_OK);
    assert_int_equal(ng_tenant_secret(g_v, "a", "read_token", secret, sizeof secret), NG_OK);
    get_exact(g_v, "tenant/c/peer/a/read_token", stored, sizeof stored);
    assert_memory_equal(stored, secret, 32);
    expect_entry(g_v, "tenant/c/peer/a/psk");
    free_params(p);
    free_params(pc);
}

static void
test_peer_import_errors(void **state)
{
    char used[64], s64[65], *p, *q = NULL;

    (void)state;
    make_tenant(g_v, "a", 0, 0);
    make_tenant(g_v2, "b", 0, 0);
    p = export_ok(g_v, "a", NOW, NULL);
    memset(s64, 'a', 64);
    s64[64] = '\0';
    memcpy(used, "x", 2);
    assert_int_equal(ng_peer_import(g_v2, "b", p, "Bad", NOW, used), NG_ERR_INVALID_ARG);
    assert_string_equal(used, "");
    assert_int_equal(ng_peer_import(g_v2, "b", p, "a/b", NOW, used), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_peer_import(g_v2, "b", p, "", NOW, used), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_peer_import(g_v2, "b", p, "-a", NOW, used), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_peer_import(g_v2, "b", p, s64, NOW, used), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_peer_import(g_v2, "nobody", p, NULL, NOW, used), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_peer_import(g_v2, "Bad", p, NULL, NOW, used), NG_ERR_INVALID_ARG);
    assert_int_equal(count_prefix(g_v2, "tenant/b/peer/"), 0);
    assert_int_equal(ng_vault_count(g_v2), 4);

    assert_int_equal(ng_peer_export(g_v, "nobody", OUTBOX, NOW, &q, NULL), NG_ERR_NOT_FOUND);
    assert_null(q);
    assert_int_equal(ng_peer_export(g_v, "a", "ftp://a.example/", NOW, &q, NULL), NG_ERR_INVALID_ARG);
    assert_null(q);
    assert_int_equal(ng_peer_export(g_v, "a", "http://u:p@a.example/", NOW, &q, NULL), NG_ERR_INVALID_ARG);
    assert_null(q);
    free_params(p);
}

/* Describes where a tampered string's text differs from the original's. */
static void
show_difference(const char *orig, size_t olen, const char *text, size_t len)
{
    size_t j = 0, from, n = olen < len ? olen : len;

    while (j < n && orig[j] == text[j])
        j++;
    from = j > 20 ? j - 20 : 0;
    print_error("    text offset %zu: ...%.40s... became ...%.40s...\n", j, orig + from, text + from);
}

static void
test_peer_tamper_every_char(void **state)
{
    char *p, *t, *orig, *text;
    size_t n, i, olen, len, tried = 0, padding_only = 0, accepted = 0;
    uint32_t epoch;
    json_t *out;
    int bit;

    (void)state;
    make_tenant(g_v, "a", 1, 0);
    assert_int_equal(ng_tenant_key_rotate(g_v, "a", NOW, &epoch), NG_OK);
    p = export_ok(g_v, "a", NOW, NULL);
    expect_decode(p, NG_OK, "untouched");
    orig = unframe(p, &olen);
    assert_non_null(orig);
    n = strlen(p);
    t = malloc(n + 1);
    assert_non_null(t);
    memcpy(t, p, n + 1);
    /* Every single-bit change of every character's 6-bit value: each is another base64url character. */
    for (i = 6; i < n; i++) {
        const char *at = strchr(b64url_alphabet, p[i]);
        assert_non_null(at);
        for (bit = 0; bit < 6; bit++) {
            t[i] = b64url_alphabet[(at - b64url_alphabet) ^ (1 << bit)];
            tried++;
            out = NULL;
            if (ng_peer_decode(t, &out) != NG_OK)
                continue;
            json_decref(out);
            text = unframe(t, &len);
            assert_non_null(text);
            if (len == olen && memcmp(text, orig, len) == 0) {
                padding_only++; /* only the unused low bits of the last character changed */
            } else {
                if (++accepted <= 5) {
                    print_error("tampered string accepted: position %zu, '%c' -> '%c'\n", i, p[i], t[i]);
                    show_difference(orig, olen, text, len);
                }
            }
            free(text);
        }
        t[i] = p[i];
    }
    free(t);
    sodium_memzero(orig, olen);
    free(orig);
    free_params(p);
    if (accepted > 0)
        print_error("%zu of %zu tampered strings decoded as valid\n", accepted, tried);
    assert_true(padding_only <= 6);
    assert_int_equal(accepted, 0);
}

static void
test_peer_truncations(void **state)
{
    char *p, *t;
    size_t n, len;
    json_t *out;

    (void)state;
    make_tenant(g_v, "a", 1, 0);
    p = export_ok(g_v, "a", NOW, NULL);
    n = strlen(p);
    t = malloc(n + 1);
    assert_non_null(t);
    for (len = 0; len < n; len++) {
        ng_err err;
        memcpy(t, p, len);
        t[len] = '\0';
        out = NULL;
        err = ng_peer_decode(t, &out);
        if (err == NG_OK) {
            print_error("truncated to %zu of %zu characters: decoded\n", len, n);
            json_decref(out);
            fail();
        }
        assert_null(out);
    }
    free(t);
    free_params(p);
}

/*
 * Found by tests/fuzz/fuzz_params (corpus: regress-non-ascii-base64url):
 * libsodium 1.0.18 decodes any byte over 0x7f as '_', so a string with one
 * in place of a '_' decoded as the original.
 */
static void
test_peer_non_ascii(void **state)
{
    char *p = NULL, *at;

    (void)state;
    make_tenant(g_v, "a", 1, 0);
    /* ASCII text encodes to '_' only where a '?' (0x3f) ends a 3-byte group: one of three in a row does. */
    assert_int_equal(ng_peer_export(g_v, "a", OUTBOX "???", NOW, &p, NULL), NG_OK);
    assert_non_null(strchr(p + 6, '_'));
    expect_decode(p, NG_OK, "untouched");
    for (at = strchr(p + 6, '_'); at != NULL; at = strchr(at + 1, '_')) {
        *at = (char)0xff;
        expect_decode(p, NG_ERR_PARSE, "a byte over 0x7f for '_'");
        *at = (char)0x80;
        expect_decode(p, NG_ERR_PARSE, "a byte over 0x7f for '_'");
        *at = '_';
    }
    free_params(p);
}

/* ---- re-signed documents ---- */

/* Tenant a (psk) in g_v, b in g_v2; a's export doc and a's sign key. */
static json_t *
resign_fixture(uint8_t sk[SIGN_SK], char **params)
{
    make_tenant(g_v, "a", 1, 0);
    make_tenant(g_v2, "b", 0, 0);
    *params = export_ok(g_v, "a", NOW, NULL);
    assert_int_equal(ng_tenant_secret(g_v, "a", "sign", sk, SIGN_SK), NG_OK);
    return params_doc(*params);
}

/* A copy of base, changed by the caller, then signed canonically and checked. */
static void
check_signed(json_t *doc, const uint8_t sk[SIGN_SK], ng_err want_decode, ng_err want_import, const char *what)
{
    char *s = signed_params(doc, sk, CANONICAL, "");

    expect_decode(s, want_decode, what);
    expect_import(s, want_import, what);
    free_params(s);
    json_decref(doc);
}

static json_t *
key_entry(uint32_t epoch, const char *hex)
{
    return json_pack("{s:I, s:s}", "epoch", (json_int_t)epoch, "public", hex);
}

static void
test_peer_resigned_documents(void **state)
{
    uint8_t sk[SIGN_SK], pk2[SIGN_PK], sk2[SIGN_SK];
    char hex[65], *p, *s, *big;
    json_t *base, *doc, *keys;
    ng_keypair kp;
    uint32_t i;

    (void)state;
    base = resign_fixture(sk, &p);

    /* The signing here is the export's: it reproduces the string byte for byte. */
    doc = json_deep_copy(base);
    s = signed_params(doc, sk, CANONICAL, "");
    assert_string_equal(s, p);
    free_params(s);
    json_decref(doc);
    /* A change signed again is valid: the refusals below are for their content. */
    doc = json_deep_copy(base);
    json_object_set_new(doc, "outbox", json_string("https://other.example/box"));
    json_object_set_new(doc, "created", json_integer(NOW + 3));
    check_signed(doc, sk, NG_OK, NG_OK, "re-signed valid change");
    assert_int_equal(ng_peer_remove(g_v2, "b", "a"), NG_OK);
    /* A shared Redis as the outbox is a valid one (tests/cli/test_e2e_redis.c reads it). */
    doc = json_deep_copy(base);
    json_object_set_new(doc, "outbox", json_string("redis://shared.example:6380/2"));
    check_signed(doc, sk, NG_OK, NG_OK, "redis outbox");
    assert_int_equal(ng_peer_remove(g_v2, "b", "a"), NG_OK);

    doc = json_deep_copy(base);
    json_object_set_new(doc, "v", json_integer(2));
    check_signed(doc, sk, NG_ERR_BAD_VERSION, NG_ERR_BAD_VERSION, "v 2");
    doc = json_deep_copy(base);
    json_object_set_new(doc, "v", json_integer(2));
    json_object_set_new(doc, "future", json_string("field"));
    check_signed(doc, sk, NG_ERR_BAD_VERSION, NG_ERR_BAD_VERSION, "v 2 with a new field");
    doc = json_deep_copy(base);
    json_object_set_new(doc, "v", json_string("1"));
    check_signed(doc, sk, NG_ERR_PARSE, NG_ERR_PARSE, "v as a string");
    doc = json_deep_copy(base);
    json_object_del(doc, "v");
    check_signed(doc, sk, NG_ERR_PARSE, NG_ERR_PARSE, "no v");

    doc = json_deep_copy(base);
    json_object_set_new(doc, "extra", json_string("x"));
    check_signed(doc, sk, NG_ERR_PARSE, NG_ERR_PARSE, "unknown field");
    doc = json_deep_copy(base);
    json_object_set_new(doc, "keys", json_array());
    check_signed(doc, sk, NG_ERR_PARSE, NG_ERR_PARSE, "keys empty");
    doc = json_deep_copy(base);
    keys = json_array();
    for (i = 1; i <= NG_TENANT_MAX_KEYS + 1; i++) {
        ng_keypair_generate(&kp);
        hex_of(hex, sizeof hex, kp.pub, sizeof kp.pub);
        json_array_append_new(keys, key_entry(i, hex));
    }
    ng_keypair_wipe(&kp);
    json_object_set_new(doc, "keys", keys);
    check_signed(doc, sk, NG_ERR_PARSE, NG_ERR_PARSE, "17 keys");
    doc = json_deep_copy(base);
    json_array_append_new(json_object_get(doc, "patterns"), json_string("Q"));
    check_signed(doc, sk, NG_ERR_PARSE, NG_ERR_PARSE, "bad pattern");
    doc = json_deep_copy(base);
    json_object_set_new(doc, "patterns", json_pack("[s]", "xpsk1"));
    check_signed(doc, sk, NG_ERR_PARSE, NG_ERR_PARSE, "pattern in the wrong case");
    doc = json_deep_copy(base);
    json_object_set_new(doc, "suites", json_pack("[s]", "25519_ChaChaPoly_MD5"));
    check_signed(doc, sk, NG_ERR_PARSE, NG_ERR_PARSE, "bad suite");
    doc = json_deep_copy(base);
    json_object_set_new(doc, "outbox", json_string("ftp://a.example/outbox"));
    check_signed(doc, sk, NG_ERR_PARSE, NG_ERR_PARSE, "outbox not http(s)");
    doc = json_deep_copy(base);
    json_object_set_new(doc, "outbox", json_string("redis://user:pw@shared.example:6379/0"));
    check_signed(doc, sk, NG_ERR_PARSE, NG_ERR_PARSE, "redis outbox with user info");
    doc = json_deep_copy(base);
    json_object_set_new(doc, "outbox", json_string("unix:/run/redis.sock"));
    check_signed(doc, sk, NG_ERR_PARSE, NG_ERR_PARSE, "outbox a unix socket");
    doc = json_deep_copy(base);
    hex_of(hex, sizeof hex, off_curve, sizeof off_curve);
    json_object_set_new(doc, "signing_key", json_string(hex));
    check_signed(doc, sk, NG_ERR_PARSE, NG_ERR_PARSE, "signing key off the curve");
    doc = json_deep_copy(base);
    json_object_set_new(doc, "name", json_string("A"));
    check_signed(doc, sk, NG_ERR_PARSE, NG_ERR_PARSE, "bad name");
    doc = json_deep_copy(base);
    json_object_set_new(doc, "created", json_integer(-1));
    check_signed(doc, sk, NG_ERR_PARSE, NG_ERR_PARSE, "negative created");
    doc = json_deep_copy(base);
    json_object_set_new(doc, "read_token", json_string("abcd"));
    check_signed(doc, sk, NG_ERR_PARSE, NG_ERR_PARSE, "short read token");

    /* A valid signature over text that is not canonical. */
    doc = json_deep_copy(base);
    s = signed_params(doc, sk, JSON_INDENT(2) | JSON_SORT_KEYS, "");
    expect_decode(s, NG_ERR_PARSE, "indented");
    expect_import(s, NG_ERR_PARSE, "indented");
    free_params(s);
    s = signed_params(doc, sk, JSON_SORT_KEYS, "");
    expect_decode(s, NG_ERR_PARSE, "spaces after separators");
    free_params(s);
    s = signed_params(doc, sk, CANONICAL, " ");
    expect_decode(s, NG_ERR_PARSE, "trailing space");
    free_params(s);
    s = signed_params(doc, sk, CANONICAL, "\n");
    expect_decode(s, NG_ERR_PARSE, "trailing newline");
    free_params(s);
    json_decref(doc);

    /* Signed by another key, signing_key left as it was. */
    crypto_sign_keypair(pk2, sk2);
    doc = json_deep_copy(base);
    check_signed(doc, sk2, NG_ERR_AUTH, NG_ERR_AUTH, "signed by another key");
    /* ... and with the other key named: valid, it is just another peer. */
    doc = json_deep_copy(base);
    hex_of(hex, sizeof hex, pk2, sizeof pk2);
    json_object_set_new(doc, "signing_key", json_string(hex));
    check_signed(doc, sk2, NG_OK, NG_OK, "signed by the key it names");
    assert_int_equal(ng_peer_remove(g_v2, "b", "a"), NG_OK);

    /* The version of the framing, and the size limit. */
    doc = json_deep_copy(base);
    s = signed_params(doc, sk, CANONICAL, "");
    json_decref(doc);
    s[4] = '2';
    expect_decode(s, NG_ERR_BAD_VERSION, "ngcp2 prefix");
    expect_import(s, NG_ERR_BAD_VERSION, "ngcp2 prefix");
    expect_decode("ngcp2:", NG_ERR_BAD_VERSION, "bare ngcp2:");
    free_params(s);
    expect_decode("", NG_ERR_PARSE, "empty");
    expect_decode("ngcp1:", NG_ERR_PARSE, "bare ngcp1:");
    expect_decode("ngcp1:!!!!", NG_ERR_PARSE, "not base64url");
    big = malloc(NG_PEER_MAX_PARAMS + 2);
    assert_non_null(big);
    memset(big, 'A', NG_PEER_MAX_PARAMS + 1);
    memcpy(big, "ngcp1:", 6);
    big[NG_PEER_MAX_PARAMS + 1] = '\0';
    expect_decode(big, NG_ERR_TOO_LARGE, "one byte over the limit");
    expect_import(big, NG_ERR_TOO_LARGE, "one byte over the limit");
    big[NG_PEER_MAX_PARAMS] = '\0';
    expect_decode(big, NG_ERR_PARSE, "at the limit");
    free(big);

    json_decref(base);
    free_params(p);
    sodium_memzero(sk, sizeof sk);
}

static void
test_peer_bad_keys(void **state)
{
    uint8_t sk[SIGN_SK];
    char *p, *s, what[96];
    json_t *base, *doc, *keys;
    size_t i;

    (void)state;
    base = resign_fixture(sk, &p);
    for (i = 0; bad_public[i] != NULL; i++) {
        /* As the only key, and as an older epoch beside a good one. */
        doc = json_deep_copy(base);
        keys = json_object_get(doc, "keys");
        json_object_set_new(json_array_get(keys, 0), "public", json_string(bad_public[i]));
        s = signed_params(doc, sk, CANONICAL, "");
        snprintf(what, sizeof what, "bad key %s", bad_public[i]);
        expect_import(s, NG_ERR_BAD_KEY, what);
        free_params(s);
        json_decref(doc);

        doc = json_deep_copy(base);
        keys = json_object_get(doc, "keys");
        json_object_set_new(json_array_get(keys, 0), "epoch", json_integer(2));
        json_array_insert_new(keys, 0, key_entry(1, bad_public[i]));
        s = signed_params(doc, sk, CANONICAL, "");
        snprintf(what, sizeof what, "bad epoch 1 %s", bad_public[i]);
        expect_import(s, NG_ERR_BAD_KEY, what);
        free_params(s);
        json_decref(doc);
    }
    json_decref(base);
    free_params(p);
    sodium_memzero(sk, sizeof sk);
}

static void
test_peer_update_rules(void **state)
{
    char *p1, *p2, *p0, *pc;
    json_t *before, *after;
    uint32_t epoch;
    uint8_t token[32];

    (void)state;
    make_tenant(g_v, "a", 0, 0);
    make_tenant(g_v, "c", 0, 0);
    make_tenant(g_v2, "b", 0, 0);
    p1 = export_ok(g_v, "a", NOW, NULL);
    assert_int_equal(ng_peer_import(g_v2, "b", p1, NULL, NOW, NULL), NG_OK);
    /* The same parameters again. */
    assert_int_equal(ng_peer_import(g_v2, "b", p1, NULL, NOW + 1, NULL), NG_OK);

    /* Newer ones, after a rotation: both keys arrive. */
    assert_int_equal(ng_tenant_key_rotate(g_v, "a", NOW + 5, &epoch), NG_OK);
    p2 = export_ok(g_v, "a", NOW + 10, NULL);
    assert_int_equal(ng_peer_import(g_v2, "b", p2, NULL, NOW + 11, NULL), NG_OK);
    before = get_record(g_v2, "tenant/b/peer/a");
    assert_int_equal(json_array_size(json_object_get(before, "keys")), 2);
    assert_int_equal(int_field(before, "created"), NOW + 10);

    /* Older ones: a rollback, refused, nothing changed. */
    p0 = export_ok(g_v, "a", NOW + 9, NULL);
    assert_int_equal(ng_peer_import(g_v2, "b", p0, NULL, NOW + 12, NULL), NG_ERR_EXISTS);
    after = get_record(g_v2, "tenant/b/peer/a");
    assert_true(json_equal(before, after));
    json_decref(after);
    assert_int_equal(ng_peer_import(g_v2, "b", p1, NULL, NOW + 12, NULL), NG_ERR_EXISTS);
    after = get_record(g_v2, "tenant/b/peer/a");
    assert_true(json_equal(before, after));
    json_decref(after);

    /* Another tenant's parameters under the same name: another signing key. */
    pc = export_ok(g_v, "c", NOW + 20, NULL);
    assert_int_equal(ng_peer_import(g_v2, "b", pc, "a", NOW + 21, NULL), NG_ERR_AUTH);
    after = get_record(g_v2, "tenant/b/peer/a");
    assert_true(json_equal(before, after));
    json_decref(after);
    assert_int_equal(ng_tenant_secret(g_v, "a", "read_token", token, sizeof token), NG_OK);
    {
        uint8_t stored[32];
        get_exact(g_v2, "tenant/b/peer/a/read_token", stored, sizeof stored);
        assert_memory_equal(stored, token, 32);
    }
    json_decref(before);
    /* Under its own name it goes in. */
    assert_int_equal(ng_peer_import(g_v2, "b", pc, NULL, NOW + 21, NULL), NG_OK);
    free_params(p0);
    free_params(p1);
    free_params(p2);
    free_params(pc);
}

static void
test_peer_psk_dropped(void **state)
{
    uint8_t sk[SIGN_SK];
    char *p, *s;
    json_t *base, *rec;

    (void)state;
    base = resign_fixture(sk, &p);
    assert_int_equal(ng_peer_import(g_v2, "b", p, NULL, NOW, NULL), NG_OK);
    expect_entry(g_v2, "tenant/b/peer/a/psk");
    json_object_del(base, "psk");
    json_object_set_new(base, "created", json_integer(NOW + 10));
    s = signed_params(base, sk, CANONICAL, "");
    expect_decode(s, NG_OK, "parameters without a psk");
    assert_int_equal(ng_peer_import(g_v2, "b", s, NULL, NOW + 11, NULL), NG_OK);
    expect_no_entry(g_v2, "tenant/b/peer/a/psk");
    expect_entry(g_v2, "tenant/b/peer/a/read_token");
    rec = get_record(g_v2, "tenant/b/peer/a");
    assert_true(json_is_false(json_object_get(rec, "psk")));
    json_decref(rec);
    free_params(s);
    json_decref(base);
    free_params(p);
    sodium_memzero(sk, sizeof sk);
}

static void
test_peer_remove_and_list(void **state)
{
    char fa[NG_PEER_FINGERPRINT_BYTES], fc[NG_PEER_FINGERPRINT_BYTES], *pa, *pc;
    json_t *l = NULL, *t = NULL;

    (void)state;
    make_tenant(g_v, "a", 1, 0);
    make_tenant(g_v, "c", 0, 0);
    make_tenant(g_v2, "b", 0, 0);
    pa = export_ok(g_v, "a", NOW, fa);
    pc = export_ok(g_v, "c", NOW, fc);
    assert_int_equal(ng_peer_import(g_v2, "b", pa, NULL, NOW, NULL), NG_OK);
    assert_int_equal(ng_peer_import(g_v2, "b", pc, NULL, NOW, NULL), NG_OK);

    assert_int_equal(ng_peer_list(g_v2, "b", &l), NG_OK);
    assert_int_equal(json_array_size(l), 2);
    assert_string_equal(str_field(json_array_get(l, 0), "name"), "a");
    assert_string_equal(str_field(json_array_get(l, 0), "fingerprint"), fa);
    assert_string_equal(str_field(json_array_get(l, 1), "name"), "c");
    assert_string_equal(str_field(json_array_get(l, 1), "fingerprint"), fc);
    expect_no_secrets(l, "peer list");
    json_decref(l);
    assert_int_equal(ng_tenant_list(g_v2, &t), NG_OK);
    assert_int_equal(int_field(json_array_get(t, 0), "peers"), 2);
    json_decref(t);

    assert_int_equal(ng_peer_remove(g_v2, "b", "a"), NG_OK);
    expect_no_entry(g_v2, "tenant/b/peer/a");
    expect_no_entry(g_v2, "tenant/b/peer/a/psk");
    expect_no_entry(g_v2, "tenant/b/peer/a/read_token");
    expect_entry(g_v2, "tenant/b/peer/c");
    expect_entry(g_v2, "tenant/b/peer/c/read_token");
    assert_int_equal(ng_peer_remove(g_v2, "b", "a"), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_peer_remove(g_v2, "nobody", "c"), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_peer_remove(g_v2, "b", "C"), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_peer_list(g_v2, "b", &l), NG_OK);
    assert_int_equal(json_array_size(l), 1);
    json_decref(l);
    assert_int_equal(ng_peer_list(g_v2, "nobody", &l), NG_ERR_NOT_FOUND);
    assert_null(l);
    free_params(pa);
    free_params(pc);
}

/* ---- 8. JSON entries and prefixes ---- */

static void
test_get_json(void **state)
{
    static const char *const bad[] = {"not json", "[1,2]", "\"s\"", "42", "null", "{\"a\":1,\"a\":2}", "{", NULL};
    char name[32];
    uint8_t raw[64];
    json_t *j;
    size_t i, len;

    (void)state;
    for (i = 0; bad[i] != NULL; i++) {
        ng_err err;
        snprintf(name, sizeof name, "x/%zu", i);
        put_text(g_v, name, bad[i]);
        j = (json_t *)&j; /* must come back NULL */
        err = ng_tenant_get_json(g_v, name, &j);
        if (err != NG_ERR_CORRUPT) {
            print_error("entry %s: %d (%s), want NG_ERR_CORRUPT\n", bad[i], (int)err, ng_strerror(err));
            fail();
        }
        assert_null(j);
    }
    assert_int_equal(ng_vault_put(g_v, "x/empty", (const uint8_t *)"", 0), NG_OK);
    assert_int_equal(ng_tenant_get_json(g_v, "x/empty", &j), NG_ERR_CORRUPT);
    assert_null(j);
    assert_int_equal(ng_tenant_get_json(g_v, "x/missing", &j), NG_ERR_NOT_FOUND);
    assert_null(j);

    j = json_pack("{s:i, s:[i,i]}", "b", 1, "a", 1, 2);
    assert_int_equal(ng_tenant_put_json(g_v, "x/obj", j), NG_OK);
    json_decref(j);
    len = get_entry(g_v, "x/obj", raw, sizeof raw);
    assert_int_equal(len, strlen("{\"a\":[1,2],\"b\":1}"));
    assert_memory_equal(raw, "{\"a\":[1,2],\"b\":1}", len);
    j = get_record(g_v, "x/obj");
    assert_int_equal(int_field(j, "b"), 1);
    json_decref(j);

    /* A tenant record that is not an object. */
    make_tenant(g_v, "t", 0, 0);
    put_text(g_v, "tenant/t", "[]");
    assert_int_equal(ng_tenant_record(g_v, "t", &j), NG_ERR_CORRUPT);
    assert_null(j);
    assert_int_equal(ng_tenant_show(g_v, "t", &j), NG_ERR_CORRUPT);
    assert_null(j);
    assert_int_equal(ng_tenant_list(g_v, &j), NG_ERR_CORRUPT);
    assert_null(j);
}

static void
test_delete_prefix(void **state)
{
    size_t n = 99;

    (void)state;
    put_text(g_v, "p/a", "1");
    put_text(g_v, "p/b", "2");
    put_text(g_v, "p/c/d", "3");
    put_text(g_v, "pp/a", "4");
    put_text(g_v, "q/a", "5");
    put_text(g_v, "p", "6");
    assert_int_equal(ng_tenant_delete_prefix(g_v, "p/", &n), NG_OK);
    assert_int_equal(n, 3);
    assert_int_equal(ng_vault_count(g_v), 3);
    expect_entry(g_v, "p");
    expect_entry(g_v, "pp/a");
    expect_entry(g_v, "q/a");
    n = 99;
    assert_int_equal(ng_tenant_delete_prefix(g_v, "none/", &n), NG_OK);
    assert_int_equal(n, 0);
    assert_int_equal(ng_tenant_delete_prefix(g_v, "pp/", NULL), NG_OK);
    expect_no_entry(g_v, "pp/a");
    assert_int_equal(ng_tenant_delete_prefix(g_v, "p", &n), NG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ng_tenant_delete_prefix(g_v, "", &n), NG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ng_vault_count(g_v), 0);
}

#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_slug_ok),
        T(test_url_ok),
        T(test_url_empty_host_before_query),
        T(test_peer_outbox_ok),
        T(test_create_entries),
        T(test_create_options),
        T(test_create_twice_and_bad_slugs),
        T(test_create_removes_leftovers),
        T(test_show_and_list_hold_no_secrets),
        T(test_show_keys_and_signing_key),
        T(test_list_counts),
        T(test_key_rotate_and_retire),
        T(test_key_limit),
        T(test_rotation_parcel_end_to_end),
        T(test_key_export),
        T(test_key_export_damage),
        T(test_key_import_public),
        T(test_backend_add),
        T(test_backend_bad_input),
        T(test_backend_rotate_and_remove),
        T(test_backend_limit),
        T(test_delete_spares_longer_slug),
        T(test_peer_export_import),
        T(test_peer_import_errors),
        T(test_peer_tamper_every_char),
        T(test_peer_truncations),
        T(test_peer_non_ascii),
        T(test_peer_resigned_documents),
        T(test_peer_bad_keys),
        T(test_peer_update_rules),
        T(test_peer_psk_dropped),
        T(test_peer_remove_and_list),
        T(test_get_json),
        T(test_delete_prefix),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests_name("tenants, backends and peers", tests, NULL, NULL);
}

/*
 * fuzz_params: ng_peer_decode on arbitrary text, as connection parameters
 * ("ngcp1:" base64url(canonical JSON)) pasted by an operator or posted to
 * the admin API.
 *
 * Two ways of reading the input:
 *   - raw: an input that does not start with '{' is the string itself (cut
 *     at a NUL, as a C string is), in an exact-size heap copy;
 *   - signed: an input that starts with '{' is a JSON document that this
 *     target signs as an exporter would (with the fixed key below, whose
 *     public half it adds as "signing_key" unless the document names one),
 *     encodes and prefixes. Without this only the seeds would ever verify,
 *     and the fuzzer would never see what a valid signature lets through.
 *
 * Either way a reference model written here from ng_peer.h (framing, every
 * field's type and form, the canonical encoding, the Ed25519 signature)
 * predicts the answer, and the target holds the decoder to it (a violation
 * aborts):
 *   - the error is exactly the model's: NG_OK, TOO_LARGE, BAD_VERSION, PARSE
 *     or AUTH; on failure *out is NULL;
 *   - on success the answer is the signed document with "sig" dropped, "psk"
 *     and "read_token" turned into booleans and "fingerprint" added: no
 *     secret is left in it (its text holds neither secret's hex), the name
 *     passes ng_tenant_slug_ok, the outbox ng_peer_outbox_ok;
 *   - a second decode of the same string gives the same answer;
 *   - a string signed here that decodes no longer does with a byte over 0x7f
 *     in place of one of its '_' (libsodium 1.0.18 reads any such byte as
 *     '_'; the model takes only the base64url alphabet).
 *
 * Set NG_FUZZ_STATS=1 to print at exit how many inputs decoded in each way.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "fuzz_check.h"
#include "ng_jsonmem.h"
#include "ng_peer.h"
#include "ng_tenant.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { SECRET_HEX = 64, SIG_HEX = 2 * crypto_sign_BYTES };

static const char prefix[] = "ngcp1:";
static const char context[] = "noisegate-cp-v1\n";
#define CANONICAL (JSON_COMPACT | JSON_SORT_KEYS)

static uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES], sign_sk[crypto_sign_SECRETKEYBYTES];
static char sign_pk_hex[2 * crypto_sign_PUBLICKEYBYTES + 1];
static unsigned long long n_runs, n_raw_ok, n_signed, n_signed_ok;

static void
print_stats(void)
{
    fprintf(stderr, "fuzz_params: %llu inputs, %llu raw decoded, %llu signed here, %llu of them decoded\n", n_runs,
            n_raw_ok, n_signed, n_signed_ok);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    uint8_t seed[crypto_sign_SEEDBYTES];

    (void)argc;
    (void)argv;
    ng_jsonmem_install(); /* as the gateway runs */
    if (sodium_init() < 0)
        abort();
    memset(seed, 0x5e, sizeof seed);
    crypto_sign_seed_keypair(sign_pk, sign_sk, seed);
    sodium_bin2hex(sign_pk_hex, sizeof sign_pk_hex, sign_pk, sizeof sign_pk);
    if (getenv("NG_FUZZ_STATS") != NULL)
        atexit(print_stats);
    return 0;
}

/* ---- the model ---- */

static int
lower_hex(const json_t *v, size_t chars)
{
    const char *s = json_string_value(v);
    size_t i;

    if (s == NULL || json_string_length(v) != chars)
        return 0;
    for (i = 0; i < chars; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int
model_slug(const json_t *v)
{
    const char *s = json_string_value(v);
    size_t i, n = json_string_length(v);

    if (s == NULL || n < 1 || n > 63 || s[0] == '-')
        return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

/* A non-empty array of at most max strings, each one of names. */
static int
name_list(const json_t *v, size_t max, const char *const *names)
{
    size_t i, j;

    if (!json_is_array(v) || json_array_size(v) < 1 || json_array_size(v) > max)
        return 0;
    for (i = 0; i < json_array_size(v); i++) {
        const char *s = json_string_value(json_array_get(v, i));

        if (s == NULL)
            return 0;
        for (j = 0; names[j] != NULL && strcmp(names[j], s) != 0; j++)
            ;
        if (names[j] == NULL)
            return 0;
    }
    return 1;
}

static int
model_keys(const json_t *v)
{
    size_t i;

    if (!json_is_array(v) || json_array_size(v) < 1 || json_array_size(v) > 16)
        return 0;
    for (i = 0; i < json_array_size(v); i++) {
        const json_t *k = json_array_get(v, i), *e = json_object_get(k, "epoch");

        if (!json_is_object(k) || json_object_size(k) != 2 || !json_is_integer(e) || json_integer_value(e) < 1 ||
            json_integer_value(e) > 0xffffffffll || !lower_hex(json_object_get(k, "public"), 64))
            return 0;
    }
    return 1;
}

/* What check_params must say of a document (ng_peer.h and DESIGN.md, "Peer pairing"). */
static ng_err
model_fields(const json_t *doc)
{
    static const char *const known[] = {"v",       "name", "keys",       "patterns",    "suites", "outbox",
                                        "created", "psk",  "read_token", "signing_key", "sig",    NULL};
    static const char *const patterns[] = {"N", "K", "X", "Npsk0", "Kpsk0", "Xpsk1", NULL};
    static const char *const suites[] = {"25519_ChaChaPoly_BLAKE2b",
                                         "25519_ChaChaPoly_SHA256",
                                         "25519_ChaChaPoly_SHA512",
                                         "25519_AESGCM_BLAKE2b",
                                         "25519_AESGCM_SHA256",
                                         "25519_AESGCM_SHA512",
                                         NULL};
    const json_t *v = json_object_get(doc, "v"), *val;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    const char *key;
    size_t j;

    if (!json_is_integer(v))
        return NG_ERR_PARSE;
    if (json_integer_value(v) != 1)
        return NG_ERR_BAD_VERSION;
    json_object_foreach((json_t *)doc, key, val)
    {
        for (j = 0; known[j] != NULL && strcmp(known[j], key) != 0; j++)
            ;
        if (known[j] == NULL)
            return NG_ERR_PARSE;
    }
    val = json_object_get(doc, "outbox");
    if (!model_slug(json_object_get(doc, "name")) || !json_is_string(val) || !ng_peer_outbox_ok(json_string_value(val)))
        return NG_ERR_PARSE;
    val = json_object_get(doc, "created");
    if (!json_is_integer(val) || json_integer_value(val) < 0)
        return NG_ERR_PARSE;
    if (!model_keys(json_object_get(doc, "keys")) || !name_list(json_object_get(doc, "patterns"), 6, patterns) ||
        !name_list(json_object_get(doc, "suites"), 6, suites))
        return NG_ERR_PARSE;
    if (!lower_hex(json_object_get(doc, "read_token"), SECRET_HEX) ||
        !lower_hex(json_object_get(doc, "signing_key"), 64))
        return NG_ERR_PARSE;
    CHECK(sodium_hex2bin(pk, sizeof pk, json_string_value(json_object_get(doc, "signing_key")), 64, NULL, NULL, NULL) ==
          0);
    if (!crypto_core_ed25519_is_valid_point(pk))
        return NG_ERR_PARSE;
    if (json_object_get(doc, "psk") != NULL && !lower_hex(json_object_get(doc, "psk"), SECRET_HEX))
        return NG_ERR_PARSE;
    return NG_OK;
}

/* "noisegate-cp-v1\n" and the canonical text of doc without "sig", malloc'd. */
static uint8_t *
signed_message(const json_t *doc, size_t *len)
{
    json_t *copy = json_deep_copy(doc);
    char *text;
    uint8_t *msg;

    CHECK(copy != NULL);
    json_object_del(copy, "sig");
    text = json_dumps(copy, CANONICAL);
    CHECK(text != NULL);
    *len = strlen(context) + strlen(text);
    msg = malloc(*len);
    CHECK(msg != NULL);
    memcpy(msg, context, strlen(context));
    memcpy(msg + strlen(context), text, strlen(text));
    free(text);
    json_decref(copy);
    return msg;
}

/*
 * The answer the model expects for a string; *doc gets the document it
 * carries when that much decodes (else NULL).
 */
static ng_err
model_decode(const char *params, json_t **doc)
{
    size_t plen = strlen(params), len, mlen, i;
    uint8_t *text, sig[crypto_sign_BYTES], pk[crypto_sign_PUBLICKEYBYTES], *msg;
    char *canon;
    ng_err err;

    *doc = NULL;
    if (plen > NG_PEER_MAX_PARAMS)
        return NG_ERR_TOO_LARGE;
    if (strncmp(params, prefix, 6) != 0)
        return strncmp(params, "ngcp", 4) == 0 && strchr(params, ':') != NULL ? NG_ERR_BAD_VERSION : NG_ERR_PARSE;
    /* base64url is ASCII letters, digits, '-' and '_' (libsodium 1.0.18 also takes any byte over 0x7f for '_'). */
    for (i = 6; i < plen; i++)
        if (!((params[i] >= 'A' && params[i] <= 'Z') || (params[i] >= 'a' && params[i] <= 'z') ||
              (params[i] >= '0' && params[i] <= '9') || params[i] == '-' || params[i] == '_'))
            return NG_ERR_PARSE;
    text = malloc(plen + 1);
    CHECK(text != NULL);
    if (sodium_base642bin(text, plen, params + 6, plen - 6, NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
        free(text);
        return NG_ERR_PARSE;
    }
    *doc = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, NULL);
    err = json_is_object(*doc) ? model_fields(*doc) : NG_ERR_PARSE;
    if (err == NG_OK) {
        canon = json_dumps(*doc, CANONICAL);
        CHECK(canon != NULL);
        if (strlen(canon) != len || memcmp(canon, text, len) != 0)
            err = NG_ERR_PARSE;
        free(canon);
    }
    if (err == NG_OK && !lower_hex(json_object_get(*doc, "sig"), SIG_HEX))
        err = NG_ERR_PARSE;
    if (err == NG_OK) {
        CHECK(sodium_hex2bin(sig, sizeof sig, json_string_value(json_object_get(*doc, "sig")), SIG_HEX, NULL, NULL,
                             NULL) == 0);
        CHECK(sodium_hex2bin(pk, sizeof pk, json_string_value(json_object_get(*doc, "signing_key")), 64, NULL, NULL,
                             NULL) == 0);
        msg = signed_message(*doc, &mlen);
        if (crypto_sign_verify_detached(sig, msg, mlen, pk) != 0)
            err = NG_ERR_AUTH;
        free(msg);
    }
    free(text);
    if (!json_is_object(*doc)) {
        json_decref(*doc);
        *doc = NULL;
    }
    return err;
}

/* ---- the checks ---- */

/* The decoded answer against the document it came from. */
static void
check_answer(const json_t *out, const json_t *doc)
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    char fp[NG_PEER_FINGERPRINT_BYTES], *text, *public_text;
    const char *key, *secret;
    json_t *val, *public;

    CHECK(json_is_object(out));
    CHECK(json_object_get(out, "sig") == NULL);
    CHECK(json_is_true(json_object_get(out, "read_token")));
    CHECK(json_is_boolean(json_object_get(out, "psk")));
    CHECK(json_is_true(json_object_get(out, "psk")) == (json_object_get(doc, "psk") != NULL));
    CHECK(ng_tenant_slug_ok(json_string_value(json_object_get(out, "name"))));
    CHECK(ng_peer_outbox_ok(json_string_value(json_object_get(out, "outbox"))));
    CHECK(sodium_hex2bin(pk, sizeof pk, json_string_value(json_object_get(doc, "signing_key")), 64, NULL, NULL, NULL) ==
          0);
    ng_peer_fingerprint(fp, pk);
    CHECK(json_is_string(json_object_get(out, "fingerprint")));
    CHECK(strcmp(json_string_value(json_object_get(out, "fingerprint")), fp) == 0);
    /* Every other field as signed; nothing added but the fingerprint. */
    json_object_foreach((json_t *)out, key, val)
    {
        if (strcmp(key, "psk") == 0 || strcmp(key, "read_token") == 0 || strcmp(key, "fingerprint") == 0)
            continue;
        CHECK(json_equal(val, json_object_get(doc, key)));
    }
    CHECK(json_object_size(out) == json_object_size(doc) - 1 /* sig */ + (json_object_get(doc, "psk") == NULL) + 1);
    /* No secret in the answer as shown, unless a public field holds the same text. */
    public = json_deep_copy(doc);
    CHECK(public != NULL);
    json_object_del(public, "read_token");
    json_object_del(public, "psk");
    text = json_dumps(out, JSON_COMPACT);
    public_text = json_dumps(public, JSON_COMPACT);
    CHECK(text != NULL && public_text != NULL);
    secret = json_string_value(json_object_get(doc, "read_token"));
    CHECK(strstr(text, secret) == NULL || strstr(public_text, secret) != NULL);
    secret = json_string_value(json_object_get(doc, "psk"));
    CHECK(secret == NULL || strstr(text, secret) == NULL || strstr(public_text, secret) != NULL);
    free(public_text);
    free(text);
    json_decref(public);
}

static int
decode_and_check(const char *params)
{
    json_t *out = (json_t *)1, *again = (json_t *)1, *doc;
    ng_err err, err2, want;

    err = ng_peer_decode(params, &out);
    want = model_decode(params, &doc);
    if (err != want)
        fprintf(stderr, "ng_peer_decode: %s, the model: %s\n", ng_strerror(err), ng_strerror(want));
    CHECK(err == want);
    if (err == NG_OK)
        check_answer(out, doc);
    else
        CHECK(out == NULL);
    err2 = ng_peer_decode(params, &again);
    CHECK(err2 == err);
    CHECK(err != NG_OK || json_equal(out, again));
    CHECK(err == NG_OK || again == NULL);
    json_decref(again);
    json_decref(out);
    json_decref(doc);
    return err == NG_OK;
}

/* The document signed here and encoded as an exporter would. */
static void
fuzz_signed(const uint8_t *data, size_t size)
{
    json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    uint8_t sig[crypto_sign_BYTES], *msg;
    char sig_hex[SIG_HEX + 1], *text, *params;
    size_t mlen, b64len;

    if (!json_is_object(doc)) {
        json_decref(doc);
        return;
    }
    n_signed++;
    if (json_object_get(doc, "signing_key") == NULL)
        CHECK(json_object_set_new(doc, "signing_key", json_string(sign_pk_hex)) == 0);
    msg = signed_message(doc, &mlen);
    crypto_sign_detached(sig, NULL, msg, mlen, sign_sk);
    free(msg);
    sodium_bin2hex(sig_hex, sizeof sig_hex, sig, sizeof sig);
    CHECK(json_object_set_new(doc, "sig", json_string(sig_hex)) == 0);
    text = json_dumps(doc, CANONICAL);
    CHECK(text != NULL);
    b64len = sodium_base64_ENCODED_LEN(strlen(text), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    params = malloc(6 + b64len);
    CHECK(params != NULL);
    memcpy(params, prefix, 6);
    sodium_bin2base64(params + 6, b64len, (const uint8_t *)text, strlen(text),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    if (decode_and_check(params)) {
        char *underscore = strchr(params + 6, '_');

        n_signed_ok++;
        /* A byte that is not base64url where a '_' was: refused, though one libsodium reads it as '_'. */
        if (underscore != NULL) {
            *underscore = (char)(0x80 | (strlen(text) & 0x7f));
            CHECK(decode_and_check(params) == 0);
        }
    }
    free(params);
    free(text);
    json_decref(doc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t n = nul != NULL ? (size_t)(nul - data) : size;
    char *params;

    n_runs++;
    if (size > 0 && data[0] == '{') {
        fuzz_signed(data, size);
        return 0;
    }
    params = malloc(n + 1);
    CHECK(params != NULL);
    memcpy(params, data, n);
    params[n] = '\0';
    n_raw_ok += (unsigned)decode_and_check(params);
    free(params);
    return 0;
}

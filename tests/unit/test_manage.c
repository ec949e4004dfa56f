/*
 * The operator's operations (ng_manage) on a file vault: every kind answers
 * in the shape ng_manage.h documents and really changes (or, for reads,
 * leaves) the vault; connection parameters make the round trip from one
 * tenant to another with the same fingerprint; and every refusal maps to
 * its status and code with a message that carries no secret, the vault file
 * left byte for byte as it was. A changing operation run again, as
 * ng_vault_update may do, replaces its answer without leaking it (ASan).
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
#include "ng_manage.h"
#include "ng_peer.h"
#include "ng_tenant.h"
#include "ng_vault.h"

#define NOW       ((int64_t)1700000000)
#define OUTBOX    "https://a.example/v1/outbox"
#define CANONICAL (JSON_COMPACT | JSON_SORT_KEYS)

enum { SIGN_SK = crypto_sign_SECRETKEYBYTES, SIGN_PK = crypto_sign_PUBLICKEYBYTES };

static char g_dir[256];
static char g_path[300];
static uint8_t g_key[NG_VAULT_KEY_BYTES];
static ng_vault_secret g_secret = {0, g_key, sizeof g_key, 0, 0};
static ng_vault_store *g_store;

/* ---- the vault ---- */

static int
setup(void **state)
{
    ng_err err;

    (void)state;
    snprintf(g_dir, sizeof g_dir, "%s/ngmanage-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    snprintf(g_path, sizeof g_path, "%s/vault", g_dir);
    randombytes_buf(g_key, sizeof g_key);
    err = ng_vault_store_file(&g_store, g_path);
    if (err == NG_OK)
        err = ng_vault_create(g_store, &g_secret);
    return err == NG_OK ? 0 : -1;
}

static int
teardown(void **state)
{
    char cmd[400];

    (void)state;
    ng_vault_store_free(g_store);
    g_store = NULL;
    sodium_memzero(g_key, sizeof g_key);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static ng_vault *
vopen(void)
{
    ng_vault *v = NULL;

    assert_int_equal(ng_vault_open(&v, g_store, &g_secret), NG_OK);
    return v;
}

/* The vault file's bytes (malloc'd). */
static uint8_t *
file_bytes(size_t *len)
{
    FILE *f = fopen(g_path, "rb");
    uint8_t *buf;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* ng_tenant_show of slug on a fresh open, as sorted compact text; NULL if there is no such tenant. */
static char *
shown(const char *slug)
{
    ng_vault *v = vopen();
    json_t *t = NULL;
    ng_err err = ng_tenant_show(v, slug, &t);
    char *text = NULL;

    ng_vault_close(v);
    if (err == NG_ERR_NOT_FOUND)
        return NULL;
    assert_int_equal(err, NG_OK);
    text = json_dumps(t, CANONICAL);
    json_decref(t);
    assert_non_null(text);
    return text;
}

/* The value of a vault entry (malloc'd, len in *len), or NULL if there is none. */
static uint8_t *
entry(const char *name, size_t *len)
{
    ng_vault *v = vopen();
    uint8_t *buf = malloc(NG_VAULT_MAX_VALUE);
    ng_err err;

    assert_non_null(buf);
    err = ng_vault_get(v, name, buf, NG_VAULT_MAX_VALUE, len);
    ng_vault_close(v);
    if (err == NG_ERR_NOT_FOUND) {
        free(buf);
        return NULL;
    }
    assert_int_equal(err, NG_OK);
    return buf;
}

/* How many entries start with prefix. */
static size_t
entries_under(const char *prefix)
{
    ng_vault *v = vopen();
    size_t i, n = 0;

    for (i = ng_vault_lower_bound(v, prefix); i < ng_vault_count(v); i++) {
        if (strncmp(ng_vault_name(v, i), prefix, strlen(prefix)) != 0)
            break;
        n++;
    }
    ng_vault_close(v);
    return n;
}

/* ---- running operations ---- */

static ng_manage_op
mk(ng_manage_kind kind, const char *slug)
{
    ng_manage_op op;

    memset(&op, 0, sizeof op);
    op.kind = kind;
    op.slug = slug;
    op.now = NOW;
    return op;
}

/* A changing kind as the update callback, a reading one on an opened vault, as the admin API runs them. */
static ng_err
run(ng_manage_op *op)
{
    ng_vault *v;
    ng_err err;

    if (ng_manage_changes(op->kind))
        return ng_vault_update(g_store, &g_secret, ng_manage_run, op);
    v = vopen();
    err = ng_manage_run(v, op);
    ng_vault_close(v);
    return err;
}

/* Runs op, which must succeed; its answer (the caller's to json_decref). */
static json_t *
answer(ng_manage_op *op)
{
    json_t *r;

    assert_int_equal(run(op), NG_OK);
    assert_non_null(op->result);
    assert_true(json_is_object(op->result));
    r = op->result;
    op->result = NULL;
    return r;
}

static const char *
jstr(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    assert_non_null(s);
    return s;
}

static void
create(const char *slug, int psk)
{
    ng_manage_op op = mk(NG_MANAGE_TENANT_CREATE, slug);

    op.opts.psk = psk;
    op.opts.allow_anonymous = 1;
    op.opts.max_message = 4096;
    op.opts.rate = 10;
    json_decref(answer(&op));
}

/* Exported connection parameters of slug (malloc'd), and their fingerprint. */
static char *export(const char *slug, int64_t now, char fp[NG_PEER_FINGERPRINT_BYTES])
{
    ng_manage_op op = mk(NG_MANAGE_PEER_EXPORT, slug);
    json_t *r;
    char *params;

    op.url = OUTBOX;
    op.now = now;
    r = answer(&op);
    params = strdup(jstr(r, "params"));
    assert_non_null(params);
    if (fp != NULL)
        snprintf(fp, NG_PEER_FINGERPRINT_BYTES, "%s", jstr(r, "fingerprint"));
    json_decref(r);
    return params;
}

static void
wipe_free(char *s)
{
    if (s != NULL) {
        sodium_memzero(s, strlen(s));
        free(s);
    }
}

/* 1 if s holds "ngcp1:" followed by base64url: connection parameters, not the word. */
static int
params_like(const char *s)
{
    const char *p;

    for (p = strstr(s, "ngcp1:"); p != NULL; p = strstr(p + 1, "ngcp1:"))
        if (p[6] != '\0' && strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", p[6]) != NULL)
            return 1;
    return 0;
}

/* 1 if message contains any 12 consecutive characters of text. */
static int
echoes(const char *message, const char *text)
{
    char window[13];
    size_t i, n = text != NULL ? strlen(text) : 0;

    for (i = 0; i + 12 <= n; i++) {
        memcpy(window, text + i, 12);
        window[12] = '\0';
        if (strstr(message, window) != NULL)
            return 1;
    }
    return 0;
}

/*
 * Runs op, which must be refused with status and code, and a message that
 * contains want (if not NULL), no secret and none of the operator's text;
 * the vault file must be byte for byte as it was and op->result NULL.
 */
#define REFUSED(op, status, code, want) refused_at(__LINE__, op, status, code, want)

static void
refused_at(int line, ng_manage_op *op, int want_status, const char *want_code, const char *want)
{
    uint8_t *before, *after;
    size_t blen, alen;
    const char *code = NULL, *message = NULL;
    int status = 0;
    ng_err err;

    before = file_bytes(&blen);
    err = run(op);
    after = file_bytes(&alen);
    if (err == NG_OK)
        fail_msg("line %d: the operation succeeded", line);
    if (op->result != NULL)
        fail_msg("line %d: a refusal left a result", line);
    if (blen != alen || memcmp(before, after, blen) != 0)
        fail_msg("line %d: the vault file changed", line);
    free(before);
    free(after);
    ng_manage_explain(op, err, &status, &code, &message);
    if (status != want_status || code == NULL || strcmp(code, want_code) != 0)
        fail_msg("line %d: %s (%d): got %d %s, expected %d %s", line, ng_strerror(err), (int)err, status,
                 code ? code : "(null)", want_status, want_code);
    if (message == NULL || message[0] == '\0')
        fail_msg("line %d: an empty message", line);
    if (want != NULL && strstr(message, want) == NULL)
        fail_msg("line %d: \"%s\" does not contain \"%s\"", line, message, want);
    if (strstr(message, "whsec_") != NULL || params_like(message))
        fail_msg("line %d: a secret in \"%s\"", line, message);
    if (echoes(message, op->text))
        fail_msg("line %d: the operator's text echoed in \"%s\"", line, message);
}

/* ---- connection parameters by hand (as tests/cli/test_operator.c builds them) ---- */

static json_t *
params_doc(const char *s)
{
    size_t len = strlen(s), got;
    uint8_t *buf;
    json_t *j;

    assert_true(strncmp(s, "ngcp1:", 6) == 0);
    buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(
        sodium_base642bin(buf, len, s + 6, len - 6, NULL, &got, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING), 0);
    j = json_loadb((const char *)buf, got, JSON_REJECT_DUPLICATES, NULL);
    sodium_memzero(buf, len);
    free(buf);
    assert_non_null(j);
    return j;
}

static char *
params_encode(json_t *doc)
{
    char *text = json_dumps(doc, CANONICAL), *out;
    size_t cap;

    assert_non_null(text);
    cap = sodium_base64_ENCODED_LEN(strlen(text), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    out = malloc(6 + cap);
    assert_non_null(out);
    memcpy(out, "ngcp1:", 6);
    sodium_bin2base64(out + 6, cap, (const uint8_t *)text, strlen(text), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    wipe_free(text);
    return out;
}

static void
params_sign(json_t *doc, const uint8_t sk[SIGN_SK])
{
    static const char context[] = "noisegate-cp-v1\n";
    uint8_t sig[crypto_sign_BYTES];
    char hex[2 * crypto_sign_BYTES + 1];
    json_t *copy = json_copy(doc);
    char *text, *msg;
    size_t n;

    assert_non_null(copy);
    json_object_del(copy, "sig");
    text = json_dumps(copy, CANONICAL);
    json_decref(copy);
    assert_non_null(text);
    n = strlen(context) + strlen(text);
    msg = malloc(n + 1);
    assert_non_null(msg);
    snprintf(msg, n + 1, "%s%s", context, text);
    crypto_sign_detached(sig, NULL, (const uint8_t *)msg, n, sk);
    wipe_free(msg);
    wipe_free(text);
    ng_hex_encode(hex, sizeof hex, sig, sizeof sig);
    json_object_set_new(doc, "sig", json_string(hex));
}

static void
signing_key(const char *slug, uint8_t sk[SIGN_SK])
{
    ng_vault *v = vopen();

    assert_int_equal(ng_tenant_secret(v, slug, "sign", sk, SIGN_SK), NG_OK);
    ng_vault_close(v);
}

/* ---- tests ---- */

static void
test_changes(void **state)
{
    (void)state;
    assert_int_equal(ng_manage_changes(NG_MANAGE_TENANT_LIST), 0);
    assert_int_equal(ng_manage_changes(NG_MANAGE_TENANT_SHOW), 0);
    assert_int_equal(ng_manage_changes(NG_MANAGE_BACKEND_LIST), 0);
    assert_int_equal(ng_manage_changes(NG_MANAGE_PEER_LIST), 0);
    assert_int_equal(ng_manage_changes(NG_MANAGE_PEER_EXPORT), 0);
    assert_int_equal(ng_manage_changes(NG_MANAGE_KEY_LIST), 0);
    assert_int_equal(ng_manage_changes(NG_MANAGE_TENANT_CREATE), 1);
    assert_int_equal(ng_manage_changes(NG_MANAGE_TENANT_DELETE), 1);
    assert_int_equal(ng_manage_changes(NG_MANAGE_BACKEND_ADD), 1);
    assert_int_equal(ng_manage_changes(NG_MANAGE_BACKEND_REMOVE), 1);
    assert_int_equal(ng_manage_changes(NG_MANAGE_BACKEND_ROTATE), 1);
    assert_int_equal(ng_manage_changes(NG_MANAGE_PEER_IMPORT), 1);
    assert_int_equal(ng_manage_changes(NG_MANAGE_PEER_REMOVE), 1);
    assert_int_equal(ng_manage_changes(NG_MANAGE_KEY_ROTATE), 1);
    assert_int_equal(ng_manage_changes(NG_MANAGE_KEY_RETIRE), 1);
    assert_int_equal(ng_manage_changes(NG_MANAGE_KEY_EXPORT), 1);
    assert_int_equal(ng_manage_changes(NG_MANAGE_KEY_IMPORT), 1);
}

static void
test_tenants(void **state)
{
    ng_manage_op op;
    json_t *r, *list;
    char *text, *before;
    uint8_t *b;
    size_t len;

    (void)state;
    op = mk(NG_MANAGE_TENANT_LIST, NULL);
    r = answer(&op);
    assert_int_equal(json_object_size(r), 1);
    assert_true(json_is_array(json_object_get(r, "tenants")));
    assert_int_equal(json_array_size(json_object_get(r, "tenants")), 0);
    json_decref(r);

    /* create answers the tenant as ng_tenant_show gives it */
    op = mk(NG_MANAGE_TENANT_CREATE, "acme");
    op.opts.psk = 1;
    op.opts.max_message = 4096;
    op.opts.rate = 7;
    r = answer(&op);
    text = json_dumps(r, CANONICAL);
    before = shown("acme");
    assert_non_null(before);
    assert_string_equal(text, before);
    free(text);
    free(before);
    assert_string_equal(jstr(r, "slug"), "acme");
    assert_true(json_is_true(json_object_get(r, "psk")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "limits"), "rate")), 7);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "limits"), "max_message")), 4096);
    assert_int_equal(json_array_size(json_object_get(r, "keys")), 1);
    assert_int_equal(json_array_size(json_object_get(r, "backends")), 0);
    assert_int_equal(json_array_size(json_object_get(r, "peers")), 0);
    json_decref(r);
    b = entry("tenant/acme/psk", &len);
    assert_non_null(b);
    assert_int_equal(len, NG_TENANT_SECRET_BYTES);
    free(b);
    create("zeta", 0);

    op = mk(NG_MANAGE_TENANT_LIST, NULL);
    r = answer(&op);
    list = json_object_get(r, "tenants");
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(jstr(json_array_get(list, 0), "slug"), "acme");
    assert_string_equal(jstr(json_array_get(list, 1), "slug"), "zeta");
    json_decref(r);

    /* show: the same as ng_tenant_show */
    op = mk(NG_MANAGE_TENANT_SHOW, "zeta");
    r = answer(&op);
    text = json_dumps(r, CANONICAL);
    before = shown("zeta");
    assert_string_equal(text, before);
    assert_false(json_is_true(json_object_get(r, "psk")));
    free(text);
    free(before);
    json_decref(r);

    /* delete: {"deleted": T}, and nothing of the tenant is left */
    assert_true(entries_under("tenant/acme/") > 0);
    op = mk(NG_MANAGE_TENANT_DELETE, "acme");
    r = answer(&op);
    assert_int_equal(json_object_size(r), 1);
    assert_string_equal(jstr(r, "deleted"), "acme");
    json_decref(r);
    assert_null(shown("acme"));
    assert_int_equal(entries_under("tenant/acme/"), 0);
    assert_int_equal(entries_under("tenant/acme"), 0);
    before = shown("zeta");
    assert_non_null(before);
    free(before);
    op = mk(NG_MANAGE_TENANT_LIST, NULL);
    r = answer(&op);
    assert_int_equal(json_array_size(json_object_get(r, "tenants")), 1);
    json_decref(r);
}

/* "whpk_" and the standard base64 of pk. */
static void
whpk_of(char out[64], const uint8_t pk[SIGN_PK])
{
    char b64[sodium_base64_ENCODED_LEN(SIGN_PK, sodium_base64_VARIANT_ORIGINAL)];

    sodium_bin2base64(b64, sizeof b64, pk, SIGN_PK, sodium_base64_VARIANT_ORIGINAL);
    snprintf(out, 64, "whpk_%s", b64);
}

/* The whsec of an answer is the secret stored under name. */
static void
whsec_is(const char *whsec, const char *name)
{
    uint8_t raw[NG_TENANT_SECRET_BYTES + 8], *stored;
    size_t len, slen;

    assert_true(strncmp(whsec, "whsec_", 6) == 0);
    assert_int_equal(sodium_base642bin(raw, sizeof raw, whsec + 6, strlen(whsec + 6), NULL, &len, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(len, NG_TENANT_SECRET_BYTES);
    stored = entry(name, &slen);
    assert_non_null(stored);
    assert_int_equal(slen, len);
    assert_memory_equal(stored, raw, len);
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(stored, slen);
    free(stored);
}

static void
test_backends(void **state)
{
    uint8_t pk[SIGN_PK], sk[SIGN_SK];
    char whpk[64], first[64];
    ng_manage_op op;
    json_t *r, *list;
    uint8_t *b;
    size_t len;

    (void)state;
    create("acme", 0);
    op = mk(NG_MANAGE_BACKEND_LIST, "acme");
    r = answer(&op);
    assert_int_equal(json_object_size(r), 1);
    assert_int_equal(json_array_size(json_object_get(r, "backends")), 0);
    json_decref(r);

    /* add: {"id", "url", "adapter", "mode", "whsec"}, the secret shown once and stored */
    op = mk(NG_MANAGE_BACKEND_ADD, "acme");
    op.url = "https://backend.example/hook";
    r = answer(&op);
    assert_int_equal(json_object_size(r), 5);
    assert_string_equal(jstr(r, "adapter"), "webhook");
    assert_string_equal(jstr(r, "mode"), "opened");
    assert_string_equal(jstr(r, "id"), "b1");
    assert_string_equal(jstr(r, "url"), "https://backend.example/hook");
    whsec_is(jstr(r, "whsec"), "tenant/acme/backend/b1/whsec");
    snprintf(first, sizeof first, "%s", jstr(r, "whsec"));
    json_decref(r);

    crypto_sign_keypair(pk, sk);
    sodium_memzero(sk, sizeof sk);
    whpk_of(whpk, pk);
    op = mk(NG_MANAGE_BACKEND_ADD, "acme");
    op.url = "http://127.0.0.1:8080/in";
    op.text = whpk;
    r = answer(&op);
    assert_int_equal(json_object_size(r), 5);
    assert_string_equal(jstr(r, "id"), "b2");
    assert_string_not_equal(jstr(r, "whsec"), first);
    whsec_is(jstr(r, "whsec"), "tenant/acme/backend/b2/whsec");
    json_decref(r);

    /* a NATS backend in end-to-end mode, with its own subject prefix */
    op = mk(NG_MANAGE_BACKEND_ADD, "acme");
    op.url = "nats://127.0.0.1:4222";
    op.backend.adapter = "nats";
    op.backend.mode = "sealed";
    op.backend.subject = "bus.acme";
    r = answer(&op);
    assert_string_equal(jstr(r, "id"), "b3");
    assert_string_equal(jstr(r, "adapter"), "nats");
    assert_string_equal(jstr(r, "mode"), "sealed");
    json_decref(r);

    /* what does not fit: each refused before the vault is touched */
    {
        static const struct {
            const char *url, *adapter, *mode, *subject, *why;
        } bad[] = {
            {"https://x.example/in", "smtp", NULL, NULL, "adapter: expected webhook or nats"},
            {"https://x.example/in", NULL, "open", NULL, "mode: expected opened or sealed"},
            {"nats://127.0.0.1:4222", NULL, NULL, NULL, "url: expected an http:// or https:// URL"},
            {"https://x.example/in", NULL, NULL, "a.b", "subject: only for the nats adapter"},
            {"https://x.example/in", "nats", NULL, NULL, "url: expected nats://host:port"},
            {"nats://u:p@127.0.0.1:4222", "nats", NULL, NULL, "url: expected nats://host:port"},
            {"nats://a:1,b:2", "nats", NULL, NULL, "url: expected nats://host:port"},
            {"nats://127.0.0.1:4222/x", "nats", NULL, NULL, "url: expected nats://host:port"},
            {"nats://127.0.0.1:4222", "nats", NULL, "a.*", "subject: expected"},
            {"nats://127.0.0.1:4222", "nats", NULL, "a..b", "subject: expected"},
            {"nats://127.0.0.1:4222", "nats", NULL, "a b", "subject: expected"},
        };
        size_t i;

        for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            ng_tenant_backend_opts bo = {bad[i].adapter, bad[i].mode, bad[i].subject};
            const char *why = ng_tenant_backend_problem(bad[i].url, &bo);

            assert_non_null(why);
            if (strncmp(why, bad[i].why, strlen(bad[i].why)) != 0)
                fail_msg("case %zu: \"%s\", want \"%s...\"", i, why, bad[i].why);
            op = mk(NG_MANAGE_BACKEND_ADD, "acme");
            op.url = bad[i].url;
            op.backend = bo;
            assert_int_equal(run(&op), NG_ERR_INVALID_ARG);
        }
    }

    /* list: all three, with their ids, URLs, keys, adapters and modes, and no secret */
    op = mk(NG_MANAGE_BACKEND_LIST, "acme");
    r = answer(&op);
    list = json_object_get(r, "backends");
    assert_int_equal(json_array_size(list), 3);
    assert_string_equal(jstr(json_array_get(list, 0), "adapter"), "webhook");
    assert_string_equal(jstr(json_array_get(list, 0), "mode"), "opened");
    assert_string_equal(jstr(json_array_get(list, 2), "url"), "nats://127.0.0.1:4222");
    assert_string_equal(jstr(json_array_get(list, 2), "adapter"), "nats");
    assert_string_equal(jstr(json_array_get(list, 2), "mode"), "sealed");
    assert_string_equal(jstr(json_array_get(list, 2), "subject"), "bus.acme");
    assert_string_equal(jstr(json_array_get(list, 0), "id"), "b1");
    assert_string_equal(jstr(json_array_get(list, 0), "url"), "https://backend.example/hook");
    assert_string_equal(jstr(json_array_get(list, 1), "id"), "b2");
    assert_string_equal(jstr(json_array_get(list, 1), "public_key"), whpk);
    {
        char *text = json_dumps(r, 0);
        assert_null(strstr(text, "whsec"));
        free(text);
    }
    json_decref(r);

    /* rotate: {"id", "whsec"}, a new secret, the old one kept as whsec.prev */
    op = mk(NG_MANAGE_BACKEND_ROTATE, "acme");
    op.id = "b1";
    r = answer(&op);
    assert_int_equal(json_object_size(r), 2);
    assert_string_equal(jstr(r, "id"), "b1");
    assert_string_not_equal(jstr(r, "whsec"), first);
    whsec_is(jstr(r, "whsec"), "tenant/acme/backend/b1/whsec");
    whsec_is(first, "tenant/acme/backend/b1/whsec.prev");
    json_decref(r);
    sodium_memzero(first, sizeof first);

    /* remove: {"removed": B}, its secrets with it */
    op = mk(NG_MANAGE_BACKEND_REMOVE, "acme");
    op.id = "b1";
    r = answer(&op);
    assert_int_equal(json_object_size(r), 1);
    assert_string_equal(jstr(r, "removed"), "b1");
    json_decref(r);
    assert_int_equal(entries_under("tenant/acme/backend/b1"), 0);
    b = entry("tenant/acme/backend/b2/whsec", &len);
    assert_non_null(b);
    free(b);
    op = mk(NG_MANAGE_BACKEND_LIST, "acme");
    r = answer(&op);
    list = json_object_get(r, "backends");
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(jstr(json_array_get(list, 0), "id"), "b2");
    assert_string_equal(jstr(json_array_get(list, 1), "id"), "b3");
    json_decref(r);
}

static void
test_keys(void **state)
{
    ng_manage_op op;
    json_t *r, *keys;
    uint8_t *b;
    size_t len;

    (void)state;
    create("acme", 0);
    op = mk(NG_MANAGE_KEY_LIST, "acme");
    r = answer(&op);
    assert_int_equal(json_object_size(r), 1);
    keys = json_object_get(r, "keys");
    assert_int_equal(json_array_size(keys), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(keys, 0), "epoch")), 1);
    assert_true(json_is_true(json_object_get(json_array_get(keys, 0), "sending")));
    json_decref(r);

    op = mk(NG_MANAGE_KEY_ROTATE, "acme");
    r = answer(&op);
    assert_int_equal(json_object_size(r), 1);
    assert_int_equal(json_integer_value(json_object_get(r, "epoch")), 2);
    json_decref(r);
    b = entry("tenant/acme/key/2", &len);
    assert_non_null(b);
    sodium_memzero(b, len);
    free(b);

    op = mk(NG_MANAGE_KEY_LIST, "acme");
    r = answer(&op);
    keys = json_object_get(r, "keys");
    assert_int_equal(json_array_size(keys), 2);
    assert_false(json_is_true(json_object_get(json_array_get(keys, 0), "sending")));
    assert_int_equal(json_integer_value(json_object_get(json_array_get(keys, 1), "epoch")), 2);
    assert_true(json_is_true(json_object_get(json_array_get(keys, 1), "sending")));
    json_decref(r);

    op = mk(NG_MANAGE_KEY_RETIRE, "acme");
    op.epoch = 1;
    r = answer(&op);
    assert_int_equal(json_object_size(r), 1);
    assert_int_equal(json_integer_value(json_object_get(r, "retired")), 1);
    json_decref(r);
    assert_null(entry("tenant/acme/key/1", &len));

    op = mk(NG_MANAGE_KEY_LIST, "acme");
    r = answer(&op);
    keys = json_object_get(r, "keys");
    assert_int_equal(json_array_size(keys), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(keys, 0), "epoch")), 2);
    json_decref(r);
}

/* A fresh X25519 public key as 64 hex characters, as a backend would make it. */
static void
backend_public(char hex[2 * NG_KEY_BYTES + 1])
{
    ng_keypair kp;

    ng_keypair_generate(&kp);
    ng_hex_encode(hex, 2 * NG_KEY_BYTES + 1, kp.pub, sizeof kp.pub);
    ng_keypair_wipe(&kp);
}

/* End-to-end mode: the newest private key handed over once, a backend's public key taken as a new epoch. */
static void
test_key_export_import(void **state)
{
    char pub_hex[2 * NG_KEY_BYTES + 1], id_hex[2 * NG_KEY_ID_BYTES + 1], other[2 * NG_KEY_BYTES + 1];
    uint8_t priv[NG_KEY_BYTES], id[NG_KEY_ID_BYTES], *b;
    ng_manage_op op;
    ng_keypair kp;
    json_t *r, *keys, *k;
    char *exported;
    size_t len;

    (void)state;
    create("acme", 0);
    create("zeta", 0);
    b = entry("tenant/acme/key/1", &len);
    assert_non_null(b);
    assert_int_equal(len, NG_KEY_BYTES);
    op = mk(NG_MANAGE_KEY_LIST, "acme");
    r = answer(&op);
    snprintf(pub_hex, sizeof pub_hex, "%s", jstr(json_array_get(json_object_get(r, "keys"), 0), "public"));
    assert_false(json_is_true(json_object_get(json_array_get(json_object_get(r, "keys"), 0), "held_by_backend")));
    json_decref(r);

    /* export: the vault's key, its public key and id; gone from the vault after */
    op = mk(NG_MANAGE_KEY_EXPORT, "acme");
    r = answer(&op);
    assert_int_equal(json_object_size(r), 4);
    assert_int_equal(json_integer_value(json_object_get(r, "epoch")), 1);
    assert_int_equal(strlen(jstr(r, "private_key")), 2 * NG_KEY_BYTES);
    assert_int_equal(ng_hex_decode(priv, sizeof priv, jstr(r, "private_key"), 2 * NG_KEY_BYTES), NG_OK);
    assert_memory_equal(priv, b, NG_KEY_BYTES);
    assert_int_equal(ng_keypair_from_private(&kp, priv), NG_OK);
    ng_hex_encode(other, sizeof other, kp.pub, sizeof kp.pub);
    assert_string_equal(jstr(r, "public_key"), pub_hex);
    assert_string_equal(other, pub_hex);
    ng_key_id(id, kp.pub);
    ng_hex_encode(id_hex, sizeof id_hex, id, sizeof id);
    assert_string_equal(jstr(r, "key_id"), id_hex);
    exported = strdup(jstr(r, "private_key"));
    assert_non_null(exported);
    json_decref(r);
    assert_null(entry("tenant/acme/key/1", &len));
    op = mk(NG_MANAGE_KEY_LIST, "acme");
    r = answer(&op);
    k = json_array_get(json_object_get(r, "keys"), 0);
    assert_true(json_is_true(json_object_get(k, "held_by_backend")));
    assert_string_equal(jstr(k, "public"), pub_hex);
    {
        char *text = json_dumps(r, CANONICAL);

        assert_non_null(text);
        assert_null(strstr(text, exported));
        free(text);
    }
    json_decref(r);

    /* once only: 409 and the reason, with no result (REFUSED: so not the key) and the vault unchanged */
    op = mk(NG_MANAGE_KEY_EXPORT, "acme");
    REFUSED(&op, 409, "key_held_by_backend", "rotate");

    /* import: a new sending epoch, held by the backend */
    backend_public(other);
    op = mk(NG_MANAGE_KEY_IMPORT, "acme");
    op.text = other;
    r = answer(&op);
    assert_int_equal(json_object_size(r), 2);
    assert_int_equal(json_integer_value(json_object_get(r, "epoch")), 2);
    assert_int_equal(ng_hex_decode(kp.pub, sizeof kp.pub, other, strlen(other)), NG_OK);
    ng_key_id(id, kp.pub);
    ng_hex_encode(id_hex, sizeof id_hex, id, sizeof id);
    assert_string_equal(jstr(r, "key_id"), id_hex);
    json_decref(r);
    assert_null(entry("tenant/acme/key/2", &len));
    op = mk(NG_MANAGE_KEY_LIST, "acme");
    r = answer(&op);
    keys = json_object_get(r, "keys");
    assert_int_equal(json_array_size(keys), 2);
    k = json_array_get(keys, 1);
    assert_string_equal(jstr(k, "public"), other);
    assert_true(json_is_true(json_object_get(k, "held_by_backend")));
    assert_true(json_is_true(json_object_get(k, "sending")));
    json_decref(r);

    /* refused: not hex, not 32 bytes, not a key peers can seal to, a live key's again */
    op = mk(NG_MANAGE_KEY_IMPORT, "acme");
    REFUSED(&op, 400, "bad_request", "public_key");
    op.text = "zz";
    REFUSED(&op, 400, "bad_request", "public_key");
    op.text = "00000000000000000000000000000000000000000000000000000000000000";
    REFUSED(&op, 400, "bad_request", "public_key");
    op.text = "000000000000000000000000000000000000000000000000000000000000000g";
    REFUSED(&op, 400, "bad_request", "public_key");
    op.text = "0000000000000000000000000000000000000000000000000000000000000000";
    REFUSED(&op, 400, "bad_request", "low-order");
    op.text = "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f";
    REFUSED(&op, 400, "bad_request", "public_key");
    op.text = other;
    REFUSED(&op, 409, "exists", "already a live key");
    op.slug = "zeta";
    REFUSED(&op, 409, "exists", "already a live key");
    op.text = pub_hex; /* acme's exported epoch 1: still live */
    REFUSED(&op, 409, "exists", "already a live key");
    op.slug = "nobody";
    backend_public(other);
    op.text = other;
    REFUSED(&op, 404, "not_found", "no such tenant");
    op = mk(NG_MANAGE_KEY_EXPORT, "nobody");
    REFUSED(&op, 404, "not_found", "no such tenant");

    /* a rotation gives the gateway a key again, which can be exported in turn; held epochs retire */
    op = mk(NG_MANAGE_KEY_ROTATE, "acme");
    json_decref(answer(&op));
    op = mk(NG_MANAGE_KEY_RETIRE, "acme");
    op.epoch = 2;
    json_decref(answer(&op));
    op.epoch = 1;
    json_decref(answer(&op));
    op = mk(NG_MANAGE_KEY_EXPORT, "acme");
    r = answer(&op);
    assert_int_equal(json_integer_value(json_object_get(r, "epoch")), 3);
    json_decref(r);

    /* 16 live keys: an import is refused as a rotation is */
    while (entries_under("tenant/zeta/key/") < NG_TENANT_MAX_KEYS) {
        op = mk(NG_MANAGE_KEY_ROTATE, "zeta");
        json_decref(answer(&op));
    }
    op = mk(NG_MANAGE_KEY_IMPORT, "zeta");
    op.text = other;
    REFUSED(&op, 409, "limit", "retire an old epoch before importing");

    sodium_memzero(priv, sizeof priv);
    sodium_memzero(b, NG_KEY_BYTES);
    free(b);
    wipe_free(exported);
    ng_keypair_wipe(&kp);
}

/* The fingerprint of slug's signing key, from what ng_tenant_show gives. */
static void
fingerprint_of(const char *slug, char fp[NG_PEER_FINGERPRINT_BYTES])
{
    uint8_t pk[SIGN_PK];
    char *text = shown(slug);
    json_t *t = json_loads(text, 0, NULL);
    const char *hex = jstr(t, "signing_public");

    assert_int_equal(ng_hex_decode(pk, sizeof pk, hex, strlen(hex)), NG_OK);
    ng_peer_fingerprint(fp, pk);
    json_decref(t);
    free(text);
}

static void
test_peers(void **state)
{
    char fp[NG_PEER_FINGERPRINT_BYTES], want[NG_PEER_FINGERPRINT_BYTES];
    uint8_t *before, *after, *b, secret[NG_TENANT_SECRET_BYTES];
    size_t blen, alen, len;
    ng_manage_op op;
    json_t *r, *list, *doc;
    char *params;
    ng_vault *v;

    (void)state;
    create("acme", 1);
    create("zeta", 0);
    op = mk(NG_MANAGE_PEER_LIST, "zeta");
    r = answer(&op);
    assert_int_equal(json_object_size(r), 1);
    assert_int_equal(json_array_size(json_object_get(r, "peers")), 0);
    json_decref(r);

    /* export: {"params", "fingerprint"}, and a read: the vault is not written */
    before = file_bytes(&blen);
    op = mk(NG_MANAGE_PEER_EXPORT, "acme");
    op.url = OUTBOX;
    op.now = NOW + 5;
    r = answer(&op);
    after = file_bytes(&alen);
    assert_int_equal(blen, alen);
    assert_memory_equal(before, after, blen);
    free(before);
    free(after);
    assert_int_equal(json_object_size(r), 2);
    params = strdup(jstr(r, "params"));
    assert_non_null(params);
    snprintf(fp, sizeof fp, "%s", jstr(r, "fingerprint"));
    json_decref(r);
    assert_true(strncmp(params, "ngcp1:", 6) == 0);
    fingerprint_of("acme", want);
    assert_string_equal(fp, want);
    assert_int_equal(ng_peer_decode(params, &doc), NG_OK);
    assert_string_equal(jstr(doc, "fingerprint"), fp);
    assert_string_equal(jstr(doc, "outbox"), OUTBOX);
    assert_string_equal(jstr(doc, "name"), "acme");
    assert_int_equal(json_integer_value(json_object_get(doc, "created")), NOW + 5);
    json_decref(doc);

    /* import under the name in the parameters: {"peer", "fingerprint"}, the same fingerprint */
    op = mk(NG_MANAGE_PEER_IMPORT, "zeta");
    op.text = params;
    r = answer(&op);
    assert_int_equal(op.decoded, 1);
    assert_int_equal(json_object_size(r), 2);
    assert_string_equal(jstr(r, "peer"), "acme");
    assert_string_equal(jstr(r, "fingerprint"), fp);
    json_decref(r);

    /* ... really stored: the record, and acme's psk and read token as zeta's copies */
    v = vopen();
    assert_int_equal(ng_peer_list(v, "zeta", &list), NG_OK);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(jstr(json_array_get(list, 0), "name"), "acme");
    assert_string_equal(jstr(json_array_get(list, 0), "fingerprint"), fp);
    json_decref(list);
    assert_int_equal(ng_tenant_secret(v, "acme", "psk", secret, sizeof secret), NG_OK);
    ng_vault_close(v);
    b = entry("tenant/zeta/peer/acme/psk", &len);
    assert_non_null(b);
    assert_int_equal(len, sizeof secret);
    assert_memory_equal(b, secret, len);
    sodium_memzero(b, len);
    free(b);
    v = vopen();
    assert_int_equal(ng_tenant_secret(v, "acme", "read_token", secret, sizeof secret), NG_OK);
    ng_vault_close(v);
    b = entry("tenant/zeta/peer/acme/read_token", &len);
    assert_non_null(b);
    assert_memory_equal(b, secret, sizeof secret);
    sodium_memzero(b, len);
    free(b);
    sodium_memzero(secret, sizeof secret);

    /* import under a name of the operator's */
    op = mk(NG_MANAGE_PEER_IMPORT, "zeta");
    op.text = params;
    op.id = "acme-too";
    r = answer(&op);
    assert_string_equal(jstr(r, "peer"), "acme-too");
    assert_string_equal(jstr(r, "fingerprint"), fp);
    json_decref(r);

    op = mk(NG_MANAGE_PEER_LIST, "zeta");
    r = answer(&op);
    list = json_object_get(r, "peers");
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(jstr(json_array_get(list, 0), "name"), "acme");
    assert_string_equal(jstr(json_array_get(list, 1), "name"), "acme-too");
    assert_string_equal(jstr(json_array_get(list, 1), "fingerprint"), fp);
    {
        char *text = json_dumps(r, 0);
        assert_null(strstr(text, "ngcp1:"));
        free(text);
    }
    json_decref(r);

    /* remove: {"removed": P}, its secrets with it */
    op = mk(NG_MANAGE_PEER_REMOVE, "zeta");
    op.id = "acme-too";
    r = answer(&op);
    assert_int_equal(json_object_size(r), 1);
    assert_string_equal(jstr(r, "removed"), "acme-too");
    json_decref(r);
    assert_int_equal(entries_under("tenant/zeta/peer/acme-too"), 0);
    assert_int_equal(entries_under("tenant/zeta/peer/acme/"), 2);
    v = vopen();
    assert_int_equal(ng_peer_list(v, "zeta", &list), NG_OK);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
    ng_vault_close(v);
    wipe_free(params);
}

static void
test_refused_arguments(void **state)
{
    static const char *const slugs[] = {"",
                                        "Acme",
                                        "-acme",
                                        "a b",
                                        "acme/x",
                                        "ac.me",
                                        "0123456789012345678901234567890123456789012345678901234567890123"};
    static const ng_manage_kind kinds[] = {
        NG_MANAGE_TENANT_SHOW, NG_MANAGE_TENANT_CREATE,  NG_MANAGE_TENANT_DELETE,  NG_MANAGE_BACKEND_LIST,
        NG_MANAGE_BACKEND_ADD, NG_MANAGE_BACKEND_REMOVE, NG_MANAGE_BACKEND_ROTATE, NG_MANAGE_PEER_LIST,
        NG_MANAGE_PEER_EXPORT, NG_MANAGE_PEER_IMPORT,    NG_MANAGE_PEER_REMOVE,    NG_MANAGE_KEY_LIST,
        NG_MANAGE_KEY_ROTATE,  NG_MANAGE_KEY_RETIRE,     NG_MANAGE_KEY_EXPORT,     NG_MANAGE_KEY_IMPORT,
    };
    static const char *const ids[] = {"x1", "b", "b1x", "B1", "1", "b-1", "b1/whsec", "b 1", "b123456789012345", ""};
    static const char *const urls[] = {"",
                                       "ftp://x.example/",
                                       "http://",
                                       "https://user:pw@x.example/",
                                       "https://x.example/a b",
                                       "https://x.example/\"",
                                       "x.example/hook",
                                       "https:///path"};
    static const char *const names[] = {"", "Bob", "-bob", "bob/psk", "b o b"};
    ng_manage_op op;
    char *before, *after;
    size_t i, j;

    (void)state;
    create("acme", 0);
    before = shown("acme");

    /* A bad slug for every kind that takes one (and a NULL one), whatever else is right. */
    for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        for (j = 0; j <= sizeof slugs / sizeof slugs[0]; j++) {
            op = mk(kinds[i], j < sizeof slugs / sizeof slugs[0] ? slugs[j] : NULL);
            op.id = kinds[i] == NG_MANAGE_PEER_REMOVE ? "bob" : kinds[i] == NG_MANAGE_PEER_IMPORT ? NULL : "b1";
            op.url = OUTBOX;
            op.text = kinds[i] == NG_MANAGE_PEER_IMPORT ? "ngcp1:AAAA" : NULL;
            op.epoch = 1;
            REFUSED(&op, 400, "bad_request", "tenant id");
        }
    }
    /* tenant list takes no slug */
    op = mk(NG_MANAGE_TENANT_LIST, "Not A Slug");
    json_decref(answer(&op));

    /* A backend id is b and digits. */
    for (i = 0; i <= sizeof ids / sizeof ids[0]; i++) {
        op = mk(NG_MANAGE_BACKEND_REMOVE, "acme");
        op.id = i < sizeof ids / sizeof ids[0] ? ids[i] : NULL;
        REFUSED(&op, 400, "bad_request", "backend id");
        op.kind = NG_MANAGE_BACKEND_ROTATE;
        REFUSED(&op, 400, "bad_request", "backend id");
    }

    /* URLs: a backend's, and the outbox of an export. */
    for (i = 0; i <= sizeof urls / sizeof urls[0]; i++) {
        op = mk(NG_MANAGE_BACKEND_ADD, "acme");
        op.url = i < sizeof urls / sizeof urls[0] ? urls[i] : NULL;
        REFUSED(&op, 400, "bad_request", "url");
        op.kind = NG_MANAGE_PEER_EXPORT;
        REFUSED(&op, 400, "bad_request", "outbox");
    }

    /* Peer names: to remove (required) and to import under (optional). */
    for (i = 0; i <= sizeof names / sizeof names[0]; i++) {
        op = mk(NG_MANAGE_PEER_REMOVE, "acme");
        op.id = i < sizeof names / sizeof names[0] ? names[i] : NULL;
        REFUSED(&op, 400, "bad_request", "peer name");
        if (op.id == NULL)
            continue;
        op.kind = NG_MANAGE_PEER_IMPORT;
        op.text = "ngcp1:AAAA";
        REFUSED(&op, 400, "bad_request", "peer name");
    }

    /* Epoch 0. */
    op = mk(NG_MANAGE_KEY_RETIRE, "acme");
    op.epoch = 0;
    REFUSED(&op, 400, "bad_request", "epoch");

    after = shown("acme");
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void
test_refused_not_found(void **state)
{
    static const ng_manage_kind kinds[] = {
        NG_MANAGE_TENANT_SHOW,    NG_MANAGE_TENANT_DELETE,  NG_MANAGE_BACKEND_LIST, NG_MANAGE_BACKEND_ADD,
        NG_MANAGE_BACKEND_REMOVE, NG_MANAGE_BACKEND_ROTATE, NG_MANAGE_PEER_LIST,    NG_MANAGE_PEER_EXPORT,
        NG_MANAGE_PEER_IMPORT,    NG_MANAGE_PEER_REMOVE,    NG_MANAGE_KEY_LIST,     NG_MANAGE_KEY_ROTATE,
        NG_MANAGE_KEY_RETIRE,     NG_MANAGE_KEY_EXPORT,     NG_MANAGE_KEY_IMPORT,
    };
    char key_hex[2 * NG_KEY_BYTES + 1];
    char *params, *before, *after;
    ng_manage_op op;
    size_t i;

    (void)state;
    create("acme", 0);
    create("zeta", 0);
    params = export("zeta", NOW, NULL);
    before = shown("acme");
    backend_public(key_hex);

    /* No such tenant, for every kind that names one. */
    for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        op = mk(kinds[i], "nobody");
        op.id = kinds[i] == NG_MANAGE_PEER_REMOVE ? "zeta" : kinds[i] == NG_MANAGE_PEER_IMPORT ? NULL : "b1";
        op.url = OUTBOX;
        op.text = kinds[i] == NG_MANAGE_PEER_IMPORT ? params : kinds[i] == NG_MANAGE_KEY_IMPORT ? key_hex : NULL;
        op.epoch = 1;
        REFUSED(&op, 404, "not_found", "no such tenant");
    }

    /* No such backend, peer or epoch of a tenant that exists. */
    op = mk(NG_MANAGE_BACKEND_REMOVE, "acme");
    op.id = "b1";
    REFUSED(&op, 404, "not_found", "backend");
    op.kind = NG_MANAGE_BACKEND_ROTATE;
    op.id = "b999";
    REFUSED(&op, 404, "not_found", "backend");
    op = mk(NG_MANAGE_PEER_REMOVE, "acme");
    op.id = "zeta";
    REFUSED(&op, 404, "not_found", "peer");
    op = mk(NG_MANAGE_KEY_RETIRE, "acme");
    op.epoch = 2;
    REFUSED(&op, 404, "not_found", "epoch");
    op.epoch = UINT32_MAX;
    REFUSED(&op, 404, "not_found", "epoch");

    after = shown("acme");
    assert_string_equal(before, after);
    free(before);
    free(after);
    wipe_free(params);
}

static void
test_refused_conflicts(void **state)
{
    ng_manage_op op;
    json_t *r;
    char *before, *after;
    int i;

    (void)state;
    create("acme", 0);

    op = mk(NG_MANAGE_TENANT_CREATE, "acme");
    op.opts.psk = 1;
    REFUSED(&op, 409, "exists", "already exists");

    /* The sending key cannot be retired, before and after a rotation. */
    op = mk(NG_MANAGE_KEY_RETIRE, "acme");
    op.epoch = 1;
    REFUSED(&op, 409, "sending_key", "rotate");
    op = mk(NG_MANAGE_KEY_ROTATE, "acme");
    json_decref(answer(&op));
    op = mk(NG_MANAGE_KEY_RETIRE, "acme");
    op.epoch = 2;
    REFUSED(&op, 409, "sending_key", "rotate");

    /* 16 live keys: the 17th is refused. */
    for (i = 3; i <= NG_TENANT_MAX_KEYS; i++) {
        op = mk(NG_MANAGE_KEY_ROTATE, "acme");
        r = answer(&op);
        assert_int_equal(json_integer_value(json_object_get(r, "epoch")), i);
        json_decref(r);
    }
    op = mk(NG_MANAGE_KEY_ROTATE, "acme");
    REFUSED(&op, 409, "limit", "16 live keys");
    /* ... until one is retired */
    op = mk(NG_MANAGE_KEY_RETIRE, "acme");
    op.epoch = 1;
    json_decref(answer(&op));
    op = mk(NG_MANAGE_KEY_ROTATE, "acme");
    r = answer(&op);
    assert_int_equal(json_integer_value(json_object_get(r, "epoch")), NG_TENANT_MAX_KEYS + 1);
    json_decref(r);

    /* 32 backends: the 33rd is refused. */
    for (i = 1; i <= NG_TENANT_MAX_BACKENDS; i++) {
        op = mk(NG_MANAGE_BACKEND_ADD, "acme");
        op.url = "https://backend.example/hook";
        json_decref(answer(&op));
    }
    before = shown("acme");
    op = mk(NG_MANAGE_BACKEND_ADD, "acme");
    op.url = "https://backend.example/hook";
    REFUSED(&op, 409, "limit", "32 backends");
    after = shown("acme");
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void
test_refused_public_key(void **state)
{
    uint8_t pk[SIGN_PK], sk[SIGN_SK], raw[40];
    char b64[80], whpk[96], good[64];
    const char *bad[8];
    ng_manage_op op;
    char *before, *after;
    size_t i;

    (void)state;
    create("acme", 0);
    before = shown("acme");
    crypto_sign_keypair(pk, sk);
    sodium_memzero(sk, sizeof sk);
    whpk_of(good, pk);

    bad[0] = "";
    bad[1] = "whpk_";
    bad[2] = "whpk_!!!!";
    bad[3] = good + 5; /* the base64 without its prefix */
    bad[4] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    /* 31 bytes */
    sodium_bin2base64(b64, sizeof b64, pk, SIGN_PK - 1, sodium_base64_VARIANT_ORIGINAL);
    snprintf(whpk, sizeof whpk, "whpk_%s", b64);
    bad[5] = strdup(whpk);
    /* 32 bytes, a small-order point (the identity) */
    memset(raw, 0, sizeof raw);
    raw[0] = 1;
    sodium_bin2base64(b64, sizeof b64, raw, SIGN_PK, sodium_base64_VARIANT_ORIGINAL);
    snprintf(whpk, sizeof whpk, "whpk_%s", b64);
    bad[6] = strdup(whpk);
    /* 32 bytes off the curve */
    memset(raw, 0, sizeof raw);
    raw[0] = 2;
    sodium_bin2base64(b64, sizeof b64, raw, SIGN_PK, sodium_base64_VARIANT_ORIGINAL);
    snprintf(whpk, sizeof whpk, "whpk_%s", b64);
    bad[7] = strdup(whpk);

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        op = mk(NG_MANAGE_BACKEND_ADD, "acme");
        op.url = "https://backend.example/hook";
        op.text = bad[i];
        REFUSED(&op, 400, "bad_request", "public_key");
    }
    free((char *)bad[5]);
    free((char *)bad[6]);
    free((char *)bad[7]);
    after = shown("acme");
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* The good key is taken. */
    op = mk(NG_MANAGE_BACKEND_ADD, "acme");
    op.url = "https://backend.example/hook";
    op.text = good;
    json_decref(answer(&op));
}

static void
test_refused_params(void **state)
{
    uint8_t sk[SIGN_SK];
    char *params, *t, *big, *before, *after;
    json_t *doc, *d;
    size_t len, i, cuts[5];
    ng_manage_op op;

    (void)state;
    create("acme", 1);
    create("zeta", 0);
    params = export("acme", NOW, NULL);
    len = strlen(params);
    before = shown("zeta");

    op = mk(NG_MANAGE_PEER_IMPORT, "zeta");
    op.text = "";
    REFUSED(&op, 400, "bad_params", "connection parameters");
    assert_int_equal(op.decoded, 0);
    op.text = "garbage%$#@1234567890";
    REFUSED(&op, 400, "bad_params", "connection parameters");
    op.text = "ngcp1:";
    REFUSED(&op, 400, "bad_params", "connection parameters");
    op.text = "ngcp1:!!!!";
    REFUSED(&op, 400, "bad_params", "connection parameters");
    op.text = "ngcp1:AAAA";
    REFUSED(&op, 400, "bad_params", "connection parameters");

    /* Truncated. */
    cuts[0] = 7, cuts[1] = 16, cuts[2] = len / 2, cuts[3] = len - 2, cuts[4] = len - 1;
    for (i = 0; i < 5; i++) {
        t = strndup(params, cuts[i]);
        assert_non_null(t);
        op.text = t;
        REFUSED(&op, 400, "bad_params", "connection parameters");
        wipe_free(t);
    }

    /* Another version. */
    t = strdup(params);
    assert_non_null(t);
    t[4] = '2';
    op.text = t;
    REFUSED(&op, 400, "bad_params", "unknown version");
    wipe_free(t);

    /* Tampered: a field changed after signing, then a character flipped in the signature's hex. */
    doc = params_doc(params);
    d = json_deep_copy(doc);
    json_object_set_new(d, "outbox", json_string("https://evil.example/outbox"));
    t = params_encode(d);
    op.text = t;
    REFUSED(&op, 400, "bad_params", "signature");
    wipe_free(t);
    json_decref(d);
    d = json_deep_copy(doc);
    {
        char sig[2 * crypto_sign_BYTES + 1];
        snprintf(sig, sizeof sig, "%s", jstr(d, "sig"));
        sig[10] = sig[10] == '0' ? '1' : '0';
        json_object_set_new(d, "sig", json_string(sig));
    }
    t = params_encode(d);
    op.text = t;
    REFUSED(&op, 400, "bad_params", "signature");
    wipe_free(t);
    json_decref(d);

    /* Correctly signed, with a static key of low order (all zero; u = 1, of order 4) or the good key with its top bit
     * set. */
    signing_key("acme", sk);
    {
        char high[2 * NG_KEY_BYTES + 1];
        const char *bad_pub[] = {"0000000000000000000000000000000000000000000000000000000000000000",
                                 "0100000000000000000000000000000000000000000000000000000000000000", high};
        size_t b;

        snprintf(high, sizeof high, "%s", jstr(json_array_get(json_object_get(doc, "keys"), 0), "public"));
        high[62] = "89abcdef89abcdef"[strchr("0123456789abcdef", high[62]) - "0123456789abcdef"];
        for (b = 0; b < sizeof bad_pub / sizeof bad_pub[0]; b++) {
            d = json_deep_copy(doc);
            json_object_set_new(json_array_get(json_object_get(d, "keys"), 0), "public", json_string(bad_pub[b]));
            params_sign(d, sk);
            t = params_encode(d);
            op.text = t;
            op.decoded = 0;
            REFUSED(&op, 400, "bad_params", "low-order");
            assert_int_equal(op.decoded, 1);
            wipe_free(t);
            json_decref(d);
        }
    }
    /* Correctly signed, with an unknown field. */
    d = json_deep_copy(doc);
    json_object_set_new(d, "zzz", json_integer(1));
    params_sign(d, sk);
    t = params_encode(d);
    op.text = t;
    REFUSED(&op, 400, "bad_params", "connection parameters");
    wipe_free(t);
    json_decref(d);
    sodium_memzero(sk, sizeof sk);
    json_decref(doc);

    /* Over 16384 bytes; at exactly 16384 the string is read (and is damaged). */
    big = malloc(NG_PEER_MAX_PARAMS + 2);
    assert_non_null(big);
    memcpy(big, "ngcp1:", 6);
    memset(big + 6, 'A', NG_PEER_MAX_PARAMS + 1 - 6);
    big[NG_PEER_MAX_PARAMS + 1] = '\0';
    op.text = big;
    REFUSED(&op, 400, "bad_request", "16384");
    big[NG_PEER_MAX_PARAMS] = '\0';
    REFUSED(&op, 400, "bad_params", "connection parameters");
    free(big);

    after = shown("zeta");
    assert_string_equal(before, after);
    free(before);
    free(after);
    /* After all that, the real string imports. */
    op = mk(NG_MANAGE_PEER_IMPORT, "zeta");
    op.text = params;
    json_decref(answer(&op));
    wipe_free(params);
}

static void
test_refused_params_update(void **state)
{
    char fp_acme[NG_PEER_FINGERPRINT_BYTES], fp_other[NG_PEER_FINGERPRINT_BYTES];
    char *e1, *e2, *px, *before, *after;
    ng_manage_op op;
    json_t *r, *list;
    ng_vault *v;

    (void)state;
    create("acme", 0);
    create("other", 0);
    create("zeta", 0);
    e1 = export("acme", NOW, fp_acme);
    e2 = export("acme", NOW + 60, NULL);
    px = export("other", NOW + 120, fp_other);
    assert_string_not_equal(fp_acme, fp_other);

    op = mk(NG_MANAGE_PEER_IMPORT, "zeta");
    op.text = e1;
    json_decref(answer(&op));
    /* The same string again is an update, accepted; then a newer one. */
    json_decref(answer(&op));
    op.text = e2;
    json_decref(answer(&op));

    before = shown("zeta");
    /* The older export after the newer one: a rollback. */
    op.text = e1;
    REFUSED(&op, 409, "exists", "older");
    assert_int_equal(op.decoded, 1);
    /* Another tenant's parameters under the name acme: another signing key. */
    op = mk(NG_MANAGE_PEER_IMPORT, "zeta");
    op.text = px;
    op.id = "acme";
    REFUSED(&op, 409, "signer_changed", "another key");
    assert_int_equal(op.decoded, 1);
    after = shown("zeta");
    assert_string_equal(before, after);
    free(before);
    free(after);

    v = vopen();
    assert_int_equal(ng_peer_list(v, "zeta", &list), NG_OK);
    ng_vault_close(v);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(jstr(json_array_get(list, 0), "fingerprint"), fp_acme);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "created")), NOW + 60);
    json_decref(list);

    /* Under its own name it is a new peer. */
    op = mk(NG_MANAGE_PEER_IMPORT, "zeta");
    op.text = px;
    r = answer(&op);
    assert_string_equal(jstr(r, "peer"), "other");
    assert_string_equal(jstr(r, "fingerprint"), fp_other);
    json_decref(r);
    wipe_free(e1);
    wipe_free(e2);
    wipe_free(px);
}

/* Runs op on an opened vault that is then closed unwritten: what a conflict's first attempt leaves. */
static ng_err
run_unwritten(ng_manage_op *op)
{
    ng_vault *v = vopen();
    ng_err err = ng_manage_run(v, op);

    ng_vault_close(v);
    return err;
}

static void
test_run_again(void **state)
{
    char first[80], *params;
    ng_manage_op op;
    json_t *r, *list;
    ng_vault *v;

    (void)state;
    create("acme", 0);
    create("zeta", 0);

    /* backend add: a first attempt's answer replaced by the second's, which is what was stored */
    op = mk(NG_MANAGE_BACKEND_ADD, "acme");
    op.url = "https://backend.example/hook";
    assert_int_equal(run_unwritten(&op), NG_OK);
    assert_non_null(op.result);
    snprintf(first, sizeof first, "%s", jstr(op.result, "whsec"));
    assert_int_equal(run(&op), NG_OK);
    r = op.result;
    assert_string_equal(jstr(r, "id"), "b1");
    assert_string_not_equal(jstr(r, "whsec"), first);
    whsec_is(jstr(r, "whsec"), "tenant/acme/backend/b1/whsec");
    json_decref(r);
    sodium_memzero(first, sizeof first);
    v = vopen();
    assert_int_equal(ng_tenant_backend_list(v, "acme", &list), NG_OK);
    ng_vault_close(v);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);

    /* every changing kind, twice */
    op = mk(NG_MANAGE_KEY_ROTATE, "acme");
    assert_int_equal(run_unwritten(&op), NG_OK);
    assert_int_equal(run(&op), NG_OK);
    assert_int_equal(json_integer_value(json_object_get(op.result, "epoch")), 2);
    json_decref(op.result);

    op = mk(NG_MANAGE_KEY_RETIRE, "acme");
    op.epoch = 1;
    assert_int_equal(run_unwritten(&op), NG_OK);
    assert_int_equal(run(&op), NG_OK);
    json_decref(op.result);

    /* an export's first attempt left the key in the vault: the second hands over the same one */
    op = mk(NG_MANAGE_KEY_EXPORT, "acme");
    assert_int_equal(run_unwritten(&op), NG_OK);
    snprintf(first, sizeof first, "%s", jstr(op.result, "private_key"));
    assert_int_equal(run(&op), NG_OK);
    assert_string_equal(jstr(op.result, "private_key"), first);
    json_decref(op.result);
    sodium_memzero(first, sizeof first);
    op = mk(NG_MANAGE_KEY_EXPORT, "acme");
    assert_int_equal(run(&op), NG_ERR_KEY_ELSEWHERE);
    assert_null(op.result);

    backend_public(first);
    op = mk(NG_MANAGE_KEY_IMPORT, "acme");
    op.text = first;
    assert_int_equal(run_unwritten(&op), NG_OK);
    assert_int_equal(run(&op), NG_OK);
    assert_int_equal(json_integer_value(json_object_get(op.result, "epoch")), 3);
    json_decref(op.result);

    op = mk(NG_MANAGE_BACKEND_ROTATE, "acme");
    op.id = "b1";
    assert_int_equal(run_unwritten(&op), NG_OK);
    assert_int_equal(run(&op), NG_OK);
    whsec_is(jstr(op.result, "whsec"), "tenant/acme/backend/b1/whsec");
    json_decref(op.result);

    params = export("acme", NOW, NULL);
    op = mk(NG_MANAGE_PEER_IMPORT, "zeta");
    op.text = params;
    assert_int_equal(run_unwritten(&op), NG_OK);
    assert_int_equal(run(&op), NG_OK);
    assert_string_equal(jstr(op.result, "peer"), "acme");
    json_decref(op.result);

    op = mk(NG_MANAGE_PEER_REMOVE, "zeta");
    op.id = "acme";
    assert_int_equal(run_unwritten(&op), NG_OK);
    assert_int_equal(run(&op), NG_OK);
    json_decref(op.result);

    op = mk(NG_MANAGE_BACKEND_REMOVE, "acme");
    op.id = "b1";
    assert_int_equal(run_unwritten(&op), NG_OK);
    assert_int_equal(run(&op), NG_OK);
    json_decref(op.result);

    op = mk(NG_MANAGE_TENANT_CREATE, "new");
    assert_int_equal(run_unwritten(&op), NG_OK);
    assert_int_equal(run(&op), NG_OK);
    assert_string_equal(jstr(op.result, "slug"), "new");
    json_decref(op.result);

    op = mk(NG_MANAGE_TENANT_DELETE, "new");
    assert_int_equal(run_unwritten(&op), NG_OK);
    assert_int_equal(run(&op), NG_OK);
    json_decref(op.result);

    /* a first attempt that succeeded, a second that is refused: no answer left, none leaked */
    op = mk(NG_MANAGE_TENANT_CREATE, "late");
    assert_int_equal(run_unwritten(&op), NG_OK);
    assert_non_null(op.result);
    create("late", 0);
    assert_int_equal(run(&op), NG_ERR_EXISTS);
    assert_null(op.result);

    /* the same for a refusal by the arguments' check */
    op = mk(NG_MANAGE_PEER_IMPORT, "zeta");
    op.text = params;
    assert_int_equal(run_unwritten(&op), NG_OK);
    assert_non_null(op.result);
    op.id = "Bad Name";
    assert_int_equal(run(&op), NG_ERR_INVALID_ARG);
    assert_null(op.result);
    wipe_free(params);
}

static void
test_explain(void **state)
{
    ng_manage_op op = mk(NG_MANAGE_TENANT_SHOW, "acme");
    const char *code, *message;
    int status;

    (void)state;
    ng_manage_explain(&op, NG_ERR_UNAVAILABLE, &status, &code, &message);
    assert_int_equal(status, 503);
    assert_string_equal(code, "store_unavailable");
    assert_true(message[0] != '\0');
    ng_manage_explain(&op, NG_ERR_CORRUPT, &status, &code, &message);
    assert_int_equal(status, 500);
    assert_string_equal(code, "internal");
    assert_string_equal(message, ng_strerror(NG_ERR_CORRUPT));
    ng_manage_explain(&op, NG_ERR_NOT_FOUND, &status, &code, &message);
    assert_int_equal(status, 404);
    assert_string_equal(code, "not_found");
    /* the arguments' check wins over the library's error */
    op.slug = "Bad";
    ng_manage_explain(&op, NG_ERR_INVALID_ARG, &status, &code, &message);
    assert_int_equal(status, 400);
    assert_string_equal(code, "bad_request");
    assert_non_null(strstr(message, "tenant id"));
}

/*
 * Regression: a peer import without parameters was refused as "over 16384
 * bytes"; it is refused as missing.
 */
static void
test_import_without_params(void **state)
{
    ng_manage_op op;

    (void)state;
    create("zeta", 0);
    op = mk(NG_MANAGE_PEER_IMPORT, "zeta");
    op.text = NULL;
    REFUSED(&op, 400, "bad_request", "connection parameters");
    {
        const char *code, *message;
        int status;

        ng_manage_explain(&op, NG_ERR_INVALID_ARG, &status, &code, &message);
        assert_null(strstr(message, "16384"));
    }
}

/* Fills the vault up to NG_VAULT_MAX_ENTRIES - room entries. */
static ng_err
fill(ng_vault *v, void *ctx)
{
    size_t i, room = *(size_t *)ctx;
    char name[32];
    ng_err err = NG_OK;

    for (i = ng_vault_count(v); err == NG_OK && i < NG_VAULT_MAX_ENTRIES - room; i++) {
        snprintf(name, sizeof name, "zz/%06zu", i);
        err = ng_vault_put(v, name, (const uint8_t *)"x", 1);
    }
    return err;
}

/*
 * Regression: a full vault (ng_vault_put's NG_ERR_TOO_LARGE) was explained
 * as a tenant's limit with a message about connection parameters; it is
 * 409 vault_full.
 */
static void
test_explain_vault_full(void **state)
{
    size_t room = 2;
    ng_manage_op op;

    (void)state;
    assert_int_equal(ng_vault_update(g_store, &g_secret, fill, &room), NG_OK);
    op = mk(NG_MANAGE_TENANT_CREATE, "acme");
    {
        const char *code, *message;
        int status;

        assert_int_equal(run(&op), NG_ERR_TOO_LARGE);
        ng_manage_explain(&op, NG_ERR_TOO_LARGE, &status, &code, &message);
        assert_int_equal(status, 409);
        assert_string_equal(code, "vault_full");
        assert_null(strstr(message, "connection parameters"));
    }
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_changes),
        T(test_tenants),
        T(test_backends),
        T(test_keys),
        T(test_key_export_import),
        T(test_peers),
        T(test_refused_arguments),
        T(test_refused_not_found),
        T(test_refused_conflicts),
        T(test_refused_public_key),
        T(test_refused_params),
        T(test_refused_params_update),
        T(test_run_again),
        cmocka_unit_test(test_explain),
        T(test_import_without_params),
        T(test_explain_vault_full),
    };
#undef T

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests_name("manage", tests, NULL, NULL);
}

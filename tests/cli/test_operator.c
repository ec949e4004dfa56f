/*
 * The operator commands of the noisegate CLI (vault, tenant, backend, peer,
 * key, and open --tenant) as an operator meets them: the real binary
 * (NG_BIN) started with posix_spawn, judged by its exit status, stdout,
 * stderr and the files it leaves, one temporary directory per test holding
 * one or two "gateways" (a configuration file and its data directory).
 *
 * The library is linked only to look behind the CLI's back: to open a vault
 * and read the secrets that must never be printed, to decode connection
 * parameters position by position, and to sign altered parameters so that
 * a refusal is known to come from the check under test and not from the
 * signature. The Redis tests start a private redis-server on a unix socket
 * (tests/unit/redis_server.h) and stop it by its PID.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "../unit/redis_server.h"
#include "cli_harness.h"
#include "ng_hex.h"
#include "ng_key.h"
#include "ng_peer.h"
#include "ng_tenant.h"
#include "ng_vault.h"

enum {
    EXIT_OK = 0,
    EXIT_FAILED = 1,
    EXIT_USAGE = 2,

    KEY_BYTES = 32,
    FP_LEN = NG_PEER_FINGERPRINT_BYTES - 1,
    WHSEC_LEN = 6 + 44, /* "whsec_" and the base64 of 32 bytes */
    LANE_ITEMS = 15,
    KILL_ROUNDS = 30,
    PAD_ENTRIES = 48, /* of 64 KiB: a 3 MiB vault */
    /* A Redis command timeout for the tests, and how long a refusal may take with it. */
    REDIS_TIMEOUT_MS = 200,
    QUICK_MS = 1500,
};

#define CANONICAL (JSON_COMPACT | JSON_SORT_KEYS)

static char home_dir[PATH_MAX];
static char work_dir[PATH_MAX];

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The variables a test may set; cleared between tests. */
static const char *const test_env[] = {
    "NOISEGATE_CONFIG",
    "NOISEGATE_VAULT_KEY",
    "NOISEGATE_VAULT_NEW_KEY",
    "NOISEGATE_VAULT_PASSPHRASE",
    "NOISEGATE_VAULT_NEW_PASSPHRASE",
    "NOISEGATE_LISTEN_PORT",
    NULL,
};

/* What the running test holds (and keep, of cli_harness.h), released by teardown even when an assertion jumped out. */
static struct redis_server redis;
static ng_vault_store *lib_store;
static ng_vault *lib_vault;

/* One gateway of a test: its configuration file and data directory, relative to the work dir. */
typedef struct gw {
    char name[16];
    char cfg[64];
    char data[64];
    char vault[96];
    char key[96];
    char key_new[104];
    char redis_key[64]; /* "" for the file store */
} gw;

typedef struct argv_buf {
    const char *v[MAX_ARGS + 1];
    size_t n;
} argv_buf;

/* ---- buffers, files, time ---- */

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* A file only its owner may read, as a master key file must be. */
static void
put_private(const char *name, const void *data, size_t len)
{
    put_file(name, data, len);
    assert_int_equal(chmod(name, 0600), 0);
}

static int
same_bytes(const blob *a, const blob *b)
{
    return a != NULL && b != NULL && a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/* The file still holds exactly these bytes. */
#define EXPECT_FILE(name, want) expect_file_at((name), (want), __LINE__)

static void
expect_file_at(const char *name, const blob *want, int line)
{
    if (!same_bytes(slurp(name), want))
        fail_msg("line %d: after `%s`: %s changed", line, last_cmd, name);
}

static void
rm_rf(const char *path)
{
    struct stat st;
    struct dirent *e;
    char child[PATH_MAX];
    DIR *d;

    if (lstat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    d = opendir(path);
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            rm_rf(child);
        }
        closedir(d);
    }
    rmdir(path);
}

static void
b64_key(char out[64], const uint8_t key[KEY_BYTES])
{
    sodium_bin2base64(out, 64, key, KEY_BYTES, sodium_base64_VARIANT_ORIGINAL);
}

/* A fresh master key as base64, the form of NOISEGATE_VAULT_KEY and of a key file. */
static void
random_b64_key(char out[64])
{
    uint8_t key[KEY_BYTES];

    randombytes_buf(key, sizeof key);
    b64_key(out, key);
}

/* The same as a key file holds it: base64 and a newline. */
static void
random_key_line(char out[64])
{
    size_t n;

    random_b64_key(out);
    n = strlen(out);
    assert_true(n + 2 <= 64);
    memcpy(out + n, "\n", 2);
}

/* ---- running the binary ---- */

static void
av_push(argv_buf *a, const char *const *args)
{
    size_t i;

    for (i = 0; args != NULL && args[i] != NULL; i++) {
        assert_true(a->n < MAX_ARGS);
        a->v[a->n++] = args[i];
    }
    a->v[a->n] = NULL;
}

#define AV(a, ...) av_push((a), ARGS(__VA_ARGS__))

/* A command of gateway g: args, then --config and g's file. */
static result
ngc(const gw *g, const blob *in, const char *const *args)
{
    argv_buf a = {{0}, 0};

    av_push(&a, args);
    AV(&a, "--config", g->cfg);
    return ng(in, a.v);
}

#define G(g, ...)       ngc((g), NULL, ARGS(__VA_ARGS__))
#define GIN(g, in, ...) ngc((g), (in), ARGS(__VA_ARGS__))

/* ---- judging a result ---- */

/* A refusal: the given status, not a byte on stdout, and a reason on stderr. */

#define EXPECT_STDERR(res, text)   expect_has_at((res).err, "stderr", (text), 1, __LINE__)
#define EXPECT_STDOUT(res, text)   expect_has_at((res).out, "stdout", (text), 1, __LINE__)
#define EXPECT_NO_STDERR(res, txt) expect_has_at((res).err, "stderr", (txt), 0, __LINE__)
#define EXPECT_NO_STDOUT(res, txt) expect_has_at((res).out, "stdout", (txt), 0, __LINE__)

static void
expect_has_at(const blob *b, const char *which, const char *text, int want, int line)
{
    int found = strstr(text_of(b), text) != NULL;

    if (found != want)
        fail_msg("line %d: `%s`: %s %s \"%s\": %.2000s", line, last_cmd, which, want ? "lacks" : "has", text,
                 text_of(b));
}

/*
 * Failures collected over a loop and reported together, so that one
 * message lists every case a loop found instead of only the first.
 */
typedef struct misses {
    blob *text;
    size_t n;
} misses;

static void
miss(misses *m, const char *fmt, ...)
{
    char line[600];
    va_list ap;
    size_t i;

    if (m->text == NULL)
        m->text = blob_new();
    if (m->n++ >= 40)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One line each: the commands' own newlines become spaces. */
    for (i = 0; line[i] != '\0'; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    blob_append(m->text, line, strlen(line));
    blob_append(m->text, "\n", 1);
}

#define EXPECT_NO_MISSES(m, what) expect_no_misses_at((m), (what), __LINE__)

static void
expect_no_misses_at(const misses *m, const char *what, int line)
{
    const char *p, *nl;

    if (m->n == 0)
        return;
    for (p = text_of(m->text); (nl = strchr(p, '\n')) != NULL; p = nl + 1)
        print_error("  %.*s\n", (int)(nl - p), p);
    fail_msg("line %d: %zu %s (listed above)", line, m->n, what);
}

/* Whether r is a refusal with this status and, if given, this text on stderr; a miss if not. */
static int
refused_as(misses *m, result r, int status, const char *text)
{
    if (r.sig == 0 && r.status == status && r.out->len == 0 && r.err->len > 0 &&
        (text == NULL || strstr(text_of(r.err), text) != NULL))
        return 1;
    miss(m, "`%s`: status %d (signal %d), expected %d%s%s; stdout %.200s; stderr: %.300s", last_cmd, r.status, r.sig,
         status, text ? " and stderr with " : "", text ? text : "", text_of(r.out), text_of(r.err));
    return 0;
}

/* Parsed JSON, released by teardown. */
static json_t *
parse_json(const blob *b)
{
    json_error_t jerr;
    json_t *j = json_loadb(text_of(b), b->len, 0, &jerr);

    if (j == NULL)
        fail_msg("`%s` printed no JSON (%s): %.2000s", last_cmd, jerr.text, text_of(b));
    json_array_append_new(keep, j);
    return j;
}

static const char *
jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));

    if (s == NULL)
        fail_msg("after `%s`: no string \"%s\" in the JSON", last_cmd, k);
    return s;
}

static json_int_t
jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);

    if (!json_is_integer(v))
        fail_msg("after `%s`: no integer \"%s\" in the JSON", last_cmd, k);
    return json_integer_value(v);
}

static json_t *
jarr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);

    if (!json_is_array(v))
        fail_msg("after `%s`: no array \"%s\" in the JSON", last_cmd, k);
    return v;
}

/* The element of array a whose string field k is v, or NULL. */
static json_t *
find_by(json_t *a, const char *k, const char *v)
{
    size_t i;
    json_t *e;

    json_array_foreach(a, i, e)
    {
        const char *s = json_string_value(json_object_get(e, k));
        if (s != NULL && strcmp(s, v) == 0)
            return e;
    }
    return NULL;
}

/* ---- gateways ---- */

static void
gw_init(gw *g, const char *name, const char *extra)
{
    char text[2048];

    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    snprintf(g->cfg, sizeof g->cfg, "%s/gw.json", name);
    snprintf(g->data, sizeof g->data, "%s/data", name);
    snprintf(g->vault, sizeof g->vault, "%s/data/vault.ngv", name);
    snprintf(g->key, sizeof g->key, "%s/data/vault.key", name);
    snprintf(g->key_new, sizeof g->key_new, "%s/data/vault.key.new", name);
    if (!exists(name))
        assert_int_equal(mkdir(name, 0700), 0);
    snprintf(text, sizeof text, "{\"data_dir\": \"data\"%s%s}\n", extra != NULL && *extra ? ", " : "",
             extra != NULL ? extra : "");
    put_text(g->cfg, text);
}

static void
start_redis(void)
{
    if (redis_server_start(&redis, NULL) != 0)
        fail_msg("could not start redis-server (Debian package redis-server)");
}

/* The raw bytes of a Redis key on the test's server (the sealed vault), or NULL. */
static blob *
redis_get(const char *key)
{
    redisContext *c = redisConnectUnix(redis.sock);
    redisReply *reply;
    blob *b = NULL;

    assert_true(c != NULL && !c->err);
    reply = redisCommand(c, "GET %s", key);
    assert_non_null(reply);
    if (reply->type == REDIS_REPLY_STRING)
        b = blob_of(reply->str, reply->len);
    else
        assert_int_equal(reply->type, REDIS_REPLY_NIL);
    freeReplyObject(reply);
    redisFree(c);
    return b;
}

/* A gateway whose vault is the Redis key ng:<name> on the test's server. */
static void
gw_init_redis(gw *g, const char *name, int timeout_ms)
{
    char extra[1024];

    snprintf(extra, sizeof extra,
             "\"vault\": {\"store\": \"redis\", \"redis_key\": \"ng:%s\"}, \"redis\": {\"url\": \"%s\", "
             "\"timeout_ms\": %d}",
             name, redis.url, timeout_ms);
    gw_init(g, name, extra);
    snprintf(g->redis_key, sizeof g->redis_key, "ng:%s", name);
}

static void
vault_init(const gw *g)
{
    result r = G(g, "vault", "init");

    EXPECT_EXIT(r, EXIT_OK);
    EXPECT_STDOUT(r, "created");
}

static json_t *
tenant_create(const gw *g, const char *slug, const char *const *opts)
{
    argv_buf a = {{0}, 0};
    result r;
    json_t *t;

    AV(&a, "tenant", "create", slug);
    av_push(&a, opts);
    r = ngc(g, NULL, a.v);
    EXPECT_EXIT(r, EXIT_OK);
    t = parse_json(r.out);
    assert_string_equal(jstr(t, "slug"), slug);
    return t;
}

static json_t *
tenant_list(const gw *g)
{
    result r = G(g, "tenant", "list", "--json");
    json_t *j;

    EXPECT_EXIT(r, EXIT_OK);
    j = parse_json(r.out);
    assert_true(json_is_array(j));
    return j;
}

static json_t *
json_of(result r)
{
    EXPECT_EXIT(r, EXIT_OK);
    return parse_json(r.out);
}

/* The public key (hex) of a tenant's epoch. */
static const char *
epoch_public(const gw *g, const char *slug, json_int_t epoch)
{
    json_t *keys = json_of(G(g, "key", "list", slug, "--json")), *k;
    size_t i;

    json_array_foreach(keys, i, k) if (jint(k, "epoch") == epoch) return jstr(k, "public");
    fail_msg("tenant %s has no epoch %d", slug, (int)epoch);
    return NULL;
}

static void
fingerprint_of(const blob *b, char out[NG_PEER_FINGERPRINT_BYTES])
{
    const char *p = strstr(text_of(b), "fingerprint ");
    int i;

    if (p == NULL)
        fail_msg("`%s` printed no fingerprint: %s", last_cmd, text_of(b));
    p += strlen("fingerprint ");
    for (i = 0; i < FP_LEN; i++) {
        int ok = i % 5 == 4 ? p[i] == '-' : ((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'));
        if (!ok)
            fail_msg("`%s`: not a fingerprint: %.60s", last_cmd, p);
    }
    memcpy(out, p, FP_LEN);
    out[FP_LEN] = '\0';
}

/* The parameters `peer export` prints (one line, without its newline), and the fingerprint on stderr. */
static blob *
export_params(const gw *g, const char *slug, char fp[NG_PEER_FINGERPRINT_BYTES])
{
    result r = G(g, "peer", "export", slug);
    const char *s = text_of(r.out);

    EXPECT_EXIT(r, EXIT_OK);
    if (strncmp(s, "ngcp1:", 6) != 0 || r.out->len < 100 || s[r.out->len - 1] != '\n' ||
        strchr(s, '\n') != s + r.out->len - 1)
        fail_msg("`%s`: expected one line \"ngcp1:...\" on stdout, got: %s", last_cmd, s);
    if (fp != NULL)
        fingerprint_of(r.err, fp);
    return blob_of(r.out->data, r.out->len - 1);
}

/* The one whsec_ secret a command printed. */
static void
whsec_of(const blob *b, char out[WHSEC_LEN + 1])
{
    const char *p = strstr(text_of(b), "whsec_");
    size_t n;

    if (p == NULL) {
        fail_msg("`%s` printed no whsec_: %s", last_cmd, text_of(b));
        return;
    }
    if (strstr(p + 1, "whsec_") != NULL)
        fail_msg("`%s` printed whsec_ twice: %s", last_cmd, text_of(b));
    n = strcspn(p, " \t\r\n");
    if (n != WHSEC_LEN)
        fail_msg("`%s`: a whsec_ of %zu characters: %s", last_cmd, n, text_of(b));
    memcpy(out, p, WHSEC_LEN);
    out[WHSEC_LEN] = '\0';
}

/* ---- the vault through the library ---- */

static void
lib_close(void)
{
    ng_vault_close(lib_vault);
    lib_vault = NULL;
    ng_vault_store_free(lib_store);
    lib_store = NULL;
}

/* Opens g's vault with the key in its key file, as the CLI would. */
static ng_vault *
lib_open(const gw *g)
{
    uint8_t key[KEY_BYTES];
    ng_vault_secret s;
    blob *k = slurp(g->key);
    size_t len, got;
    const char *end;

    lib_close();
    assert_non_null(k);
    len = k->len;
    while (len > 0 && (k->data[len - 1] == '\n' || k->data[len - 1] == '\r'))
        len--;
    assert_int_equal(
        sodium_base642bin(key, sizeof key, text_of(k), len, NULL, &got, &end, sodium_base64_VARIANT_ORIGINAL), 0);
    assert_int_equal(got, sizeof key);
    memset(&s, 0, sizeof s);
    s.data = key;
    s.len = sizeof key;
    if (g->redis_key[0] != '\0')
        assert_int_equal(ng_vault_store_redis(&lib_store, redis.url, g->redis_key, 5000), NG_OK);
    else
        assert_int_equal(ng_vault_store_file(&lib_store, g->vault), NG_OK);
    assert_int_equal(ng_vault_open(&lib_vault, lib_store, &s), NG_OK);
    sodium_memzero(key, sizeof key);
    return lib_vault;
}

/* A value of the open library vault; NULL if there is no such entry. */
static blob *
lib_get(const char *name)
{
    uint8_t buf[NG_VAULT_MAX_VALUE];
    size_t len;
    ng_err err = ng_vault_get(lib_vault, name, buf, sizeof buf, &len);
    blob *b;

    if (err == NG_ERR_NOT_FOUND)
        return NULL;
    assert_int_equal(err, NG_OK);
    b = blob_of(buf, len);
    sodium_memzero(buf, len);
    return b;
}

/* ---- connection parameters ---- */

/* "ngcp1:" and the base64url of exactly these bytes. */
static blob *
params_of_text(const char *text, size_t len)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    blob *b = blob_str("ngcp1:");

    blob_reserve(b, cap);
    sodium_bin2base64((char *)b->data + 6, cap, (const uint8_t *)text, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    b->len = strlen(text_of(b));
    return b;
}

/* A document encoded as the exporter encodes it, or with other dump flags. */
static blob *
params_encode(json_t *doc, size_t flags)
{
    char *text = json_dumps(doc, flags);
    blob *b;

    assert_non_null(text);
    b = params_of_text(text, strlen(text));
    free(text);
    return b;
}

/* Signs doc again ("sig") with sk as ng_peer_export does: Ed25519 over the context and the canonical text. */
static void
params_sign(json_t *doc, const uint8_t sk[crypto_sign_SECRETKEYBYTES])
{
    static const char context[] = "noisegate-cp-v1\n";
    uint8_t sig[crypto_sign_BYTES];
    char hex[2 * crypto_sign_BYTES + 1];
    json_t *copy = json_copy(doc);
    blob *msg = blob_str(context);
    char *text;

    assert_non_null(copy);
    json_object_del(copy, "sig");
    text = json_dumps(copy, CANONICAL);
    json_decref(copy);
    assert_non_null(text);
    blob_append(msg, text, strlen(text));
    free(text);
    crypto_sign_detached(sig, NULL, msg->data, msg->len, sk);
    ng_hex_encode(hex, sizeof hex, sig, sizeof sig);
    json_object_set_new(doc, "sig", json_string(hex));
}

/* The signing secret key of a tenant, read from its gateway's vault. */
static void
signing_key(const gw *g, const char *slug, uint8_t sk[crypto_sign_SECRETKEYBYTES])
{
    char name[128];
    blob *b;

    lib_open(g);
    snprintf(name, sizeof name, "tenant/%s/sign", slug);
    b = lib_get(name);
    assert_non_null(b);
    assert_int_equal(b->len, crypto_sign_SECRETKEYBYTES);
    memcpy(sk, b->data, crypto_sign_SECRETKEYBYTES);
    lib_close();
}

/* ---- setup ---- */

static void
clear_env(void)
{
    size_t i;

    for (i = 0; test_env[i] != NULL; i++)
        unsetenv(test_env[i]);
}

static int
setup(void **state)
{
    const char *tmp = getenv("TMPDIR");

    (void)state;
    clear_env();
    keep = json_array();
    memset(&redis, 0, sizeof redis);
    snprintf(work_dir, sizeof work_dir, "%s/ng-op-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (keep == NULL || mkdtemp(work_dir) == NULL || chdir(work_dir) != 0) {
        fprintf(stderr, "cannot create and enter %s: %s\n", work_dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    lib_close();
    if (redis.pid > 0 || redis.dir[0] != '\0')
        redis_server_stop(&redis);
    memset(&redis, 0, sizeof redis);
    blobs_free();
    json_decref(keep);
    keep = NULL;
    clear_env();
    if (chdir(home_dir) != 0)
        return -1;
    rm_rf(work_dir);
    return exists(work_dir) ? -1 : 0;
}

/* ==== 1, 2: the round trip ==== */

/* The checks of a tenant as `tenant create` and `tenant show` print it. */
static void
check_new_tenant(json_t *t, const char *slug, int psk)
{
    json_t *keys = jarr(t, "keys"), *k0 = json_array_get(keys, 0);
    uint8_t pub[NG_KEY_BYTES], id[NG_KEY_ID_BYTES], spk[crypto_sign_PUBLICKEYBYTES], wpk[crypto_sign_PUBLICKEYBYTES];
    char id_hex[2 * NG_KEY_ID_BYTES + 1];
    const char *whpk = jstr(t, "signing_key");
    size_t got;

    assert_string_equal(jstr(t, "slug"), slug);
    assert_int_equal(json_array_size(keys), 1);
    assert_int_equal(jint(k0, "epoch"), 1);
    assert_true(json_is_true(json_object_get(k0, "sending")));
    assert_true(is_lower_hex(jstr(k0, "public"), 64));
    assert_true(is_lower_hex(jstr(k0, "key_id"), 64));
    /* The key id is the one parcels carry: derived from the public key. */
    assert_int_equal(ng_hex_decode(pub, sizeof pub, jstr(k0, "public"), 64), NG_OK);
    ng_key_id(id, pub);
    ng_hex_encode(id_hex, sizeof id_hex, id, sizeof id);
    assert_string_equal(jstr(k0, "key_id"), id_hex);
    /* whpk_ is the signing public key in base64. */
    assert_true(strncmp(whpk, "whpk_", 5) == 0);
    assert_int_equal(sodium_base642bin(wpk, sizeof wpk, whpk + 5, strlen(whpk + 5), NULL, &got, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(got, sizeof wpk);
    assert_int_equal(ng_hex_decode(spk, sizeof spk, jstr(t, "signing_public"), 64), NG_OK);
    assert_memory_equal(spk, wpk, sizeof spk);
    assert_int_equal(json_is_true(json_object_get(t, "psk")), psk);
    assert_int_equal(json_array_size(jarr(t, "backends")), 0);
    assert_int_equal(json_array_size(jarr(t, "peers")), 0);
}

static void
roundtrip(const gw *a, const gw *b)
{
    char whsec1[WHSEC_LEN + 1], whsec2[WHSEC_LEN + 1], fp_export[NG_PEER_FINGERPRINT_BYTES],
        fp_import[NG_PEER_FINGERPRINT_BYTES];
    json_t *ta, *t2, *list, *j, *e;
    blob *params, *in;
    struct stat st;
    result r;
    size_t i;

    /* vault init: the key file is new and private; the vault is where the store says. */
    vault_init(a);
    assert_int_equal(stat(a->key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(exists(a->vault), a->redis_key[0] == '\0');
    vault_init(b);

    ta = tenant_create(a, "a", ARGS("--psk"));
    check_new_tenant(ta, "a", 1);
    assert_int_equal(json_array_size(jarr(ta, "patterns")), 2);
    assert_string_equal(json_string_value(json_array_get(jarr(ta, "patterns"), 0)), "Xpsk1");
    assert_string_equal(json_string_value(json_array_get(jarr(ta, "patterns"), 1)), "Kpsk0");
    t2 = tenant_create(a, "t2", ARGS("--allow-anonymous", "--max-message", "1000", "--rate", "5"));
    check_new_tenant(t2, "t2", 0);
    assert_int_equal(jint(json_object_get(t2, "limits"), "max_message"), 1000);
    assert_int_equal(jint(json_object_get(t2, "limits"), "rate"), 5);
    /* --allow-anonymous: N accepted besides X and K. */
    assert_int_equal(json_array_size(jarr(t2, "patterns")), 3);
    assert_string_equal(json_string_value(json_array_get(jarr(t2, "patterns"), 2)), "N");
    /* A slug is taken once. */
    r = G(a, "tenant", "create", "a");
    EXPECT_REFUSED(r, EXIT_FAILED);
    EXPECT_STDERR(r, "already exists");

    list = tenant_list(a);
    assert_int_equal(json_array_size(list), 2);
    e = find_by(list, "slug", "a");
    assert_non_null(e);
    assert_int_equal(jint(e, "epoch"), 1);
    assert_string_equal(jstr(e, "key_id"), jstr(json_array_get(jarr(ta, "keys"), 0), "key_id"));
    assert_non_null(find_by(list, "slug", "t2"));
    r = G(a, "tenant", "list");
    EXPECT_EXIT(r, EXIT_OK);
    EXPECT_STDOUT(r, jstr(e, "key_id"));
    EXPECT_STDOUT(r, "t2");
    j = json_of(G(a, "tenant", "show", "a"));
    check_new_tenant(j, "a", 1);
    assert_true(json_equal(j, ta));

    /* Backends: the webhook secret is printed once, by add and by rotate-secret, never by a listing. */
    r = G(a, "backend", "add", "a", "--url", "https://backend.example/hook");
    EXPECT_EXIT(r, EXIT_OK);
    EXPECT_STDOUT(r, "b1");
    whsec_of(r.out, whsec1);
    j = json_of(G(a, "backend", "list", "a", "--json"));
    assert_int_equal(json_array_size(j), 1);
    e = json_array_get(j, 0);
    assert_string_equal(jstr(e, "id"), "b1");
    assert_string_equal(jstr(e, "url"), "https://backend.example/hook");
    assert_string_equal(jstr(e, "status"), "active");
    r = G(a, "backend", "list", "a");
    EXPECT_EXIT(r, EXIT_OK);
    EXPECT_STDOUT(r, "https://backend.example/hook");
    EXPECT_NO_STDOUT(r, "whsec");
    r = G(a, "backend", "rotate-secret", "a", "b1");
    EXPECT_EXIT(r, EXIT_OK);
    whsec_of(r.out, whsec2);
    assert_string_not_equal(whsec1, whsec2);
    for (i = 0; i < 3; i++) {
        r = i == 0   ? G(a, "backend", "list", "a", "--json")
            : i == 1 ? G(a, "backend", "list", "a")
                     : G(a, "tenant", "show", "a");
        EXPECT_EXIT(r, EXIT_OK);
        EXPECT_NO_STDOUT(r, "whsec");
        EXPECT_NO_STDOUT(r, whsec1 + 6);
        EXPECT_NO_STDOUT(r, whsec2 + 6);
        EXPECT_NO_STDERR(r, "whsec");
    }
    r = G(a, "backend", "remove", "a", "b1");
    EXPECT_EXIT(r, EXIT_OK);
    assert_int_equal(json_array_size(json_of(G(a, "backend", "list", "a", "--json"))), 0);
    r = G(a, "backend", "remove", "a", "b1");
    EXPECT_REFUSED(r, EXIT_FAILED);
    EXPECT_STDERR(r, "not found");
    EXPECT_REFUSED(G(a, "backend", "list", "nosuch"), EXIT_FAILED);

    /* Peers: tenant a of gateway A becomes a peer of tenant b of gateway B, through stdin. */
    tenant_create(b, "b", NULL);
    params = export_params(a, "a", fp_export);
    in = blob_of(params->data, params->len);
    blob_append(in, "\n", 1);
    r = GIN(b, in, "peer", "import", "b", "-");
    EXPECT_EXIT(r, EXIT_OK);
    EXPECT_STDOUT(r, "imported peer a");
    fingerprint_of(r.out, fp_import);
    assert_string_equal(fp_import, fp_export);
    j = json_of(G(b, "peer", "list", "b", "--json"));
    assert_int_equal(json_array_size(j), 1);
    e = json_array_get(j, 0);
    assert_string_equal(jstr(e, "name"), "a");
    assert_string_equal(jstr(e, "fingerprint"), fp_export);
    assert_string_equal(jstr(e, "signing_key"), jstr(ta, "signing_public"));
    assert_true(json_is_true(json_object_get(e, "psk")));
    r = G(b, "peer", "list", "b");
    EXPECT_EXIT(r, EXIT_OK);
    EXPECT_STDOUT(r, fp_export);
    assert_int_equal(jint(json_array_get(tenant_list(b), 0), "peers"), 1);
    r = G(b, "peer", "remove", "b", "a");
    EXPECT_EXIT(r, EXIT_OK);
    assert_int_equal(json_array_size(json_of(G(b, "peer", "list", "b", "--json"))), 0);
    EXPECT_REFUSED(G(b, "peer", "remove", "b", "a"), EXIT_FAILED);

    /* Delete: gone from show and list, with every entry it had. */
    r = G(a, "tenant", "delete", "a");
    EXPECT_EXIT(r, EXIT_OK);
    r = G(a, "tenant", "show", "a");
    EXPECT_REFUSED(r, EXIT_FAILED);
    EXPECT_STDERR(r, "not found");
    EXPECT_REFUSED(G(a, "tenant", "delete", "a"), EXIT_FAILED);
    EXPECT_REFUSED(G(a, "peer", "export", "a"), EXIT_FAILED);
    list = tenant_list(a);
    assert_int_equal(json_array_size(list), 1);
    assert_non_null(find_by(list, "slug", "t2"));
    lib_open(a);
    for (i = 0; i < ng_vault_count(lib_vault); i++)
        if (strncmp(ng_vault_name(lib_vault, i), "tenant/a/", 9) == 0 ||
            strcmp(ng_vault_name(lib_vault, i), "tenant/a") == 0)
            fail_msg("tenant a deleted, but its entry %s is still in the vault", ng_vault_name(lib_vault, i));
    lib_close();
    r = G(a, "vault", "verify");
    EXPECT_EXIT(r, EXIT_OK);
    EXPECT_STDOUT(r, "ok");
    r = G(b, "vault", "verify");
    EXPECT_EXIT(r, EXIT_OK);
    EXPECT_STDOUT(r, "ok");
}

static void
test_roundtrip_file(void **state)
{
    gw a, b;

    (void)state;
    gw_init(&a, "A", "");
    gw_init(&b, "B", "");
    roundtrip(&a, &b);
}

static void
test_roundtrip_redis(void **state)
{
    blob *va, *vb;
    gw a, b;

    (void)state;
    start_redis();
    gw_init_redis(&a, "A", 2000);
    gw_init_redis(&b, "B", 2000);
    roundtrip(&a, &b);
    /* The vaults are the Redis keys, not files. */
    assert_false(exists(a.vault));
    assert_false(exists(b.vault));
    va = redis_get("ng:A");
    vb = redis_get("ng:B");
    assert_non_null(va);
    assert_non_null(vb);
    assert_memory_equal(va->data, "NGV1", 4);
    assert_memory_equal(vb->data, "NGV1", 4);
}

/* Every command refuses at once (status 1, "store unavailable") while Redis is hung or gone. */
static void
expect_store_unavailable(const gw *g)
{
    const char *const *cmds[] = {
        ARGS("tenant", "list"),      ARGS("tenant", "create", "late"), ARGS("vault", "verify"),
        ARGS("peer", "export", "t"), ARGS("key", "rotate", "t"),       ARGS("backend", "add", "t", "--url", "http://x"),
    };
    size_t i;
    result r;

    for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        r = ngc(g, NULL, cmds[i]);
        EXPECT_REFUSED(r, EXIT_FAILED);
        EXPECT_STDERR(r, "store unavailable");
        if (r.ms > QUICK_MS)
            fail_msg("`%s` took %ld ms to give up, with redis.timeout_ms %d", last_cmd, r.ms, REDIS_TIMEOUT_MS);
    }
}

static void
test_redis_unavailable(void **state)
{
    json_t *list;
    blob *vault;
    gw g;
    result r;

    (void)state;
    start_redis();
    gw_init_redis(&g, "A", REDIS_TIMEOUT_MS);
    vault_init(&g);
    tenant_create(&g, "t", NULL);
    assert_int_equal(json_array_size(json_of(G(&g, "backend", "list", "t", "--json"))), 0);
    vault = redis_get(g.redis_key);
    assert_non_null(vault);

    /* Hung: the socket still accepts connections, but nothing answers. */
    assert_int_equal(kill(redis.pid, SIGSTOP), 0);
    expect_store_unavailable(&g);
    assert_int_equal(kill(redis.pid, SIGCONT), 0);

    /* Back: everything as it was, and nothing of the refused commands happened. */
    assert_true(same_bytes(redis_get(g.redis_key), vault));
    r = G(&g, "vault", "verify");
    EXPECT_EXIT(r, EXIT_OK);
    list = tenant_list(&g);
    assert_int_equal(json_array_size(list), 1);
    assert_non_null(find_by(list, "slug", "t"));
    assert_int_equal(jint(json_array_get(list, 0), "epoch"), 1);
    assert_int_equal(json_array_size(json_of(G(&g, "backend", "list", "t", "--json"))), 0);
    tenant_create(&g, "late", NULL);
    assert_int_equal(json_array_size(tenant_list(&g)), 2);

    /* Gone: the server stopped and its socket removed. */
    redis_server_stop(&redis);
    memset(&redis.dir, 0, sizeof redis.dir);
    expect_store_unavailable(&g);
}

/* ==== 3: no private key is ever printed ==== */

/* An entry that holds a secret: anything under a tenant but its record, backend and peer records. */
static int
is_secret_entry(const char *name)
{
    const char *rest;

    if (strncmp(name, "tenant/", 7) != 0 || (rest = strchr(name + 7, '/')) == NULL)
        return 0;
    rest++;
    if ((strncmp(rest, "backend/", 8) == 0 || strncmp(rest, "peer/", 5) == 0) &&
        strchr(strchr(rest, '/') + 1, '/') == NULL)
        return 0;
    return 1;
}

/* Which printable form of the secret v occurs in text, or NULL. */
static const char *
leak_form(const char *text, const uint8_t *v, size_t len)
{
    char buf[4 * 64 + 8];
    size_t i;

    if (len == 0 || len > 64)
        return NULL;
    ng_hex_encode(buf, sizeof buf, v, len);
    if (strstr(text, buf) != NULL)
        return "hex";
    for (i = 0; buf[i]; i++)
        if (buf[i] >= 'a' && buf[i] <= 'f')
            buf[i] = (char)(buf[i] - 'a' + 'A');
    if (strstr(text, buf) != NULL)
        return "upper-case hex";
    sodium_bin2base64(buf, sizeof buf, v, len, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    if (strstr(text, buf) != NULL)
        return "base64";
    sodium_bin2base64(buf, sizeof buf, v, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    if (strstr(text, buf) != NULL)
        return "base64url";
    return NULL;
}

typedef struct secret {
    char name[NG_VAULT_MAX_NAME + 1];
    blob *value;
} secret;

enum { MAX_SECRETS = 64 };

/* Fails if any of the secrets (or the 32-byte seed of a signing key) occurs in text, but those in allowed
 * (NULL-terminated, or NULL). */
static void
expect_no_secret(const char *what, const char *text, const secret *s, size_t n, const blob *const *allowed)
{
    const char *form;
    size_t i, k;

    for (i = 0; i < n; i++) {
        int ok = 0;

        for (k = 0; allowed != NULL && allowed[k] != NULL; k++)
            ok |= same_bytes(allowed[k], s[i].value);
        if (ok)
            continue;
        form = leak_form(text, s[i].value->data, s[i].value->len);
        if (form == NULL && s[i].value->len == crypto_sign_SECRETKEYBYTES)
            form = leak_form(text, s[i].value->data, 32);
        if (form != NULL)
            fail_msg("%s shows the vault secret %s (%s): %.3000s", what, s[i].name, form, text);
    }
}

static void
test_no_private_key_printed(void **state)
{
    static const char *const required[] = {
        "tenant/s1/key/1",
        "tenant/s1/key/2",
        "tenant/s1/sign",
        "tenant/s1/psk",
        "tenant/s1/read_token",
        "tenant/s1/backend/b1/whsec",
        "tenant/s1/backend/b1/whsec.prev",
        "tenant/s2/key/1",
        "tenant/s2/sign",
        "tenant/s2/read_token",
        "tenant/s2/backend/b1/whsec",
        "tenant/s2/peer/s1/psk",
        "tenant/s2/peer/s1/read_token",
        NULL,
    };
    const char *const *cmds[] = {
        ARGS("tenant", "show", "s1"),
        ARGS("tenant", "show", "s2"),
        ARGS("tenant", "list"),
        ARGS("tenant", "list", "--json"),
        ARGS("backend", "list", "s1"),
        ARGS("backend", "list", "s1", "--json"),
        ARGS("backend", "list", "s2", "--json"),
        ARGS("key", "list", "s1"),
        ARGS("key", "list", "s1", "--json"),
        ARGS("peer", "list", "s2"),
        ARGS("peer", "list", "s2", "--json"),
        ARGS("vault", "verify"),
        ARGS("vault", "verify", "--json"),
        ARGS("key", "rotate", "s2"),
        ARGS("tenant", "create", "s3"),
    };
    secret s[MAX_SECRETS];
    blob *printed = blob_new(), *add_out, *rot_out, *params, *allowed[3];
    char *export_json;
    size_t n = 0, i;
    result r;
    gw g;

    (void)state;
    gw_init(&g, "A", "");
    vault_init(&g);
    r = G(&g, "tenant", "create", "s1", "--psk");
    EXPECT_EXIT(r, EXIT_OK);
    blob_append(printed, r.out->data, r.out->len);
    blob_append(printed, r.err->data, r.err->len);
    tenant_create(&g, "s2", NULL);
    r = G(&g, "backend", "add", "s1", "--url", "http://backend.example/a");
    EXPECT_EXIT(r, EXIT_OK);
    add_out = r.out;
    r = G(&g, "backend", "rotate-secret", "s1", "b1");
    EXPECT_EXIT(r, EXIT_OK);
    rot_out = r.out;
    EXPECT_EXIT(G(&g, "backend", "add", "s2", "--url", "http://backend.example/b"), EXIT_OK);
    r = G(&g, "key", "rotate", "s1");
    EXPECT_EXIT(r, EXIT_OK);
    blob_append(printed, r.out->data, r.out->len);
    params = export_params(&g, "s1", NULL);
    /* What export says on stderr is checked like the rest; its stdout below. */
    r = G(&g, "peer", "export", "s1");
    EXPECT_EXIT(r, EXIT_OK);
    blob_append(printed, r.err->data, r.err->len);
    r = GIN(&g, params, "peer", "import", "s2", "-");
    EXPECT_EXIT(r, EXIT_OK);
    blob_append(printed, r.out->data, r.out->len);
    blob_append(printed, r.err->data, r.err->len);
    for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        r = ngc(&g, NULL, cmds[i]);
        EXPECT_EXIT(r, EXIT_OK);
        blob_append(printed, r.out->data, r.out->len);
        blob_append(printed, r.err->data, r.err->len);
    }

    /* Every secret the vault holds, read with the library. */
    lib_open(&g);
    for (i = 0; i < ng_vault_count(lib_vault); i++) {
        const char *name = ng_vault_name(lib_vault, i);

        if (!is_secret_entry(name))
            continue;
        assert_true(n < MAX_SECRETS);
        snprintf(s[n].name, sizeof s[n].name, "%s", name);
        s[n].value = lib_get(name);
        assert_true(s[n].value->len >= 16);
        n++;
    }
    for (i = 0; required[i] != NULL; i++) {
        size_t k;
        for (k = 0; k < n && strcmp(s[k].name, required[i]) != 0; k++)
            ;
        if (k == n)
            fail_msg("the vault has no secret entry %s: the test no longer sees what it checks", required[i]);
    }
    /* The scanner finds what is there: add and rotate-secret show the secrets they made, in base64. */
    allowed[0] = lib_get("tenant/s1/backend/b1/whsec.prev");
    allowed[1] = lib_get("tenant/s1/backend/b1/whsec");
    allowed[2] = NULL;
    assert_non_null(leak_form(text_of(add_out), allowed[0]->data, allowed[0]->len));
    assert_non_null(leak_form(text_of(rot_out), allowed[1]->data, allowed[1]->len));
    expect_no_secret("backend add", text_of(add_out), s, n, (const blob *const *)allowed);
    expect_no_secret("backend rotate-secret", text_of(rot_out), s, n, (const blob *const *)allowed);
    expect_no_secret("show, list, verify, create, rotate and import", text_of(printed), s, n, NULL);

    /* Export carries s1's read token and psk by design, and nothing else secret. */
    allowed[0] = lib_get("tenant/s1/read_token");
    allowed[1] = lib_get("tenant/s1/psk");
    export_json = json_dumps(params_doc(text_of(params)), CANONICAL);
    assert_non_null(export_json);
    assert_non_null(leak_form(export_json, allowed[0]->data, allowed[0]->len));
    assert_non_null(leak_form(export_json, allowed[1]->data, allowed[1]->len));
    expect_no_secret("peer export (decoded)", export_json, s, n, (const blob *const *)allowed);
    expect_no_secret("peer export", text_of(params), s, n, (const blob *const *)allowed);
    free(export_json);
    lib_close();
}

/* ==== 4, 5: writers at once, writers killed ==== */

/* Two lanes of `tenant create`, each starting its next as soon as its last ended, so both always run. */
static void
concurrent_creates(const gw *g)
{
    pid_t lane[2] = {0, 0};
    int next[2] = {0, 0}, done = 0, l, st;
    const char *err_file[2] = {"lane0.err", "lane1.err"};
    char slug[2][16];
    json_t *list;
    result r;

    while (done < 2) {
        for (l = 0; l < 2; l++) {
            if (lane[l] != 0 || next[l] == LANE_ITEMS)
                continue;
            snprintf(slug[l], sizeof slug[l], "%c%d", l ? 'b' : 'a', next[l]++);
            lane[l] = spawn_bg(ARGS("tenant", "create", slug[l], "--config", g->cfg), err_file[l]);
        }
        for (l = 0; l < 2; l++) {
            pid_t w;

            if (lane[l] == 0 || (w = waitpid(lane[l], &st, WNOHANG)) == 0)
                continue;
            assert_int_equal(w, lane[l]);
            lane[l] = 0;
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                blob *err = slurp(err_file[l]);
                fail_msg("concurrent `tenant create %s` failed (status %#x): %s", slug[l], st, err ? text_of(err) : "");
            }
            if (next[l] == LANE_ITEMS)
                done++;
        }
        sleep_ms(1);
    }
    list = tenant_list(g);
    if (json_array_size(list) != 2 * LANE_ITEMS)
        fail_msg("%d tenants created by two concurrent writers, %zu listed", 2 * LANE_ITEMS, json_array_size(list));
    for (l = 0; l < 2 * LANE_ITEMS; l++) {
        snprintf(slug[0], sizeof slug[0], "%c%d", l % 2 ? 'b' : 'a', l / 2);
        if (find_by(list, "slug", slug[0]) == NULL)
            fail_msg("tenant %s was created but is not listed", slug[0]);
    }
    r = G(g, "vault", "verify");
    EXPECT_EXIT(r, EXIT_OK);
    EXPECT_STDOUT(r, "30 tenants");
}

static void
test_concurrent_creates_file(void **state)
{
    gw g;

    (void)state;
    gw_init(&g, "A", "");
    vault_init(&g);
    concurrent_creates(&g);
}

static void
test_concurrent_creates_redis(void **state)
{
    gw g;

    (void)state;
    start_redis();
    gw_init_redis(&g, "A", 2000);
    vault_init(&g);
    concurrent_creates(&g);
}

static ng_err
add_padding(ng_vault *v, void *ctx)
{
    uint8_t *value = malloc(NG_VAULT_MAX_VALUE);
    size_t i, n = *(const size_t *)ctx;
    char name[64];
    ng_err err = value == NULL ? NG_ERR_NOMEM : NG_OK;

    for (i = 0; i < n && err == NG_OK; i++) {
        randombytes_buf(value, NG_VAULT_MAX_VALUE);
        snprintf(name, sizeof name, "test/padding/%zu", i);
        err = ng_vault_put(v, name, value, NG_VAULT_MAX_VALUE);
    }
    free(value);
    return err;
}

/* Runs fn on g's file vault through the library, as another writer would (ng_vault_update). */
static void
vault_update_with(const gw *g, ng_vault_update_fn fn, void *ctx)
{
    uint8_t key[KEY_BYTES];
    ng_vault_secret s;
    blob *k = slurp(g->key);
    size_t got;

    assert_non_null(k);
    assert_int_equal(
        sodium_base642bin(key, sizeof key, text_of(k), k->len, "\n", &got, NULL, sodium_base64_VARIANT_ORIGINAL), 0);
    assert_int_equal(got, sizeof key);
    memset(&s, 0, sizeof s);
    s.data = key;
    s.len = sizeof key;
    lib_close();
    assert_int_equal(ng_vault_store_file(&lib_store, g->vault), NG_OK);
    assert_int_equal(ng_vault_update(lib_store, &s, fn, ctx), NG_OK);
    lib_close();
    sodium_memzero(key, sizeof key);
}

/*
 * Adds n entries of the largest size to g's vault through the library: a
 * vault of some megabytes takes a writer long enough to write that a kill
 * can land in the middle of it.
 */
static void
pad_vault(const gw *g, size_t n)
{
    vault_update_with(g, add_padding, &n);
}

struct planted {
    const char *name;
    uint8_t value[NG_KEY_BYTES];
};

static ng_err
plant(ng_vault *v, void *ctx)
{
    const struct planted *p = ctx;

    return ng_vault_put(v, p->name, p->value, sizeof p->value);
}

/* Writes one random 32-byte entry into g's vault, as damage or a stray copy would. */
static void
plant_entry(const gw *g, const char *name)
{
    struct planted p = {.name = name};

    randombytes_buf(p.value, sizeof p.value);
    vault_update_with(g, plant, &p);
    sodium_memzero(p.value, sizeof p.value);
}

/*
 * vault verify names the tenant keys that are not what the record says: a
 * private key left in the vault for an epoch its backend holds (end-to-end
 * mode would be a promise the vault breaks), and one that is another key.
 */
static void
test_verify_keys(void **state)
{
    result r;
    gw g;

    (void)state;
    gw_init(&g, "V", "");
    vault_init(&g);
    tenant_create(&g, "held", NULL);
    tenant_create(&g, "other", NULL);
    EXPECT_EXIT(G(&g, "key", "export", "held"), EXIT_OK);
    r = G(&g, "vault", "verify");
    EXPECT_EXIT(r, EXIT_OK);
    EXPECT_STDOUT(r, "ok");

    plant_entry(&g, "tenant/held/key/1");
    r = G(&g, "vault", "verify");
    EXPECT_EXIT(r, EXIT_FAILED);
    EXPECT_STDOUT(r, "PROBLEMS");
    EXPECT_STDERR(r, "tenant held: the vault still has a private key for epoch 1, which only its backend should hold");

    plant_entry(&g, "tenant/other/key/1");
    r = G(&g, "vault", "verify");
    EXPECT_EXIT(r, EXIT_FAILED);
    EXPECT_STDOUT(r, "PROBLEMS");
    EXPECT_STDERR(r, "tenant other: key of epoch 1 does not match its public key");
}

static void
test_killed_writers(void **state)
{
    size_t count = 0, landed = 0, round;
    long full, max_delay;
    char slug[16];
    int st;
    result r;
    gw g;

    (void)state;
    gw_init(&g, "A", "");
    vault_init(&g);
    pad_vault(&g, PAD_ENTRIES);
    /* How long one create takes here, so that the kills also fall after the write (an ASan build is slower). */
    r = G(&g, "tenant", "create", "probe");
    EXPECT_EXIT(r, EXIT_OK);
    full = r.ms;
    count = 1;
    max_delay = full * 3 / 2 > 30 ? full * 3 / 2 : 30;
    for (round = 0; round < KILL_ROUNDS; round++) {
        pid_t pid;
        json_t *list;

        snprintf(slug, sizeof slug, "k%zu", round);
        pid = spawn_bg(ARGS("tenant", "create", slug, "--config", g.cfg), NULL);
        sleep_ms((long)randombytes_uniform((uint32_t)max_delay + 1));
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &st, 0), pid);
        r = G(&g, "vault", "verify");
        EXPECT_EXIT(r, EXIT_OK);
        list = tenant_list(&g);
        if (json_array_size(list) < count)
            fail_msg("round %zu: %zu tenants after a killed writer, %zu before", round, json_array_size(list), count);
        if (json_array_size(list) > count + 1)
            fail_msg("round %zu: %zu tenants after one create, %zu before", round, json_array_size(list), count);
        if (json_array_size(list) == count + 1) {
            if (find_by(list, "slug", slug) == NULL)
                fail_msg("round %zu: a new tenant, but not %s", round, slug);
            landed++;
        }
        count = json_array_size(list);
    }
    if (landed == 0)
        fail_msg("none of %d killed creates landed (delays 0-%ld ms; one create takes %ld ms)", KILL_ROUNDS, max_delay,
                 full);
    /* No lock or temporary file left behind stops the next writer. */
    tenant_create(&g, "after", NULL);
    assert_int_equal(json_array_size(tenant_list(&g)), count + 1);
}

/* ==== 6: the vault ==== */

static void
test_vault_init_twice(void **state)
{
    blob *key, *vault;
    result r;
    gw g;

    (void)state;
    gw_init(&g, "A", "");
    vault_init(&g);
    tenant_create(&g, "t", NULL);
    key = slurp(g.key);
    vault = slurp(g.vault);
    r = G(&g, "vault", "init");
    EXPECT_REFUSED(r, EXIT_FAILED);
    EXPECT_STDERR(r, "already");
    EXPECT_FILE(g.key, key);
    EXPECT_FILE(g.vault, vault);
    assert_int_equal(json_array_size(tenant_list(&g)), 1);
}

static void
test_vault_wrong_key_file(void **state)
{
    char other[64];
    blob *key, *vault;
    result r;
    gw g;

    (void)state;
    gw_init(&g, "A", "");
    vault_init(&g);
    tenant_create(&g, "t", NULL);
    key = slurp(g.key);
    vault = slurp(g.vault);
    random_key_line(other);
    put_private(g.key, other, strlen(other));
    r = G(&g, "tenant", "list");
    EXPECT_REFUSED(r, EXIT_FAILED);
    EXPECT_STDERR(r, "master key");
    r = G(&g, "tenant", "create", "u");
    EXPECT_REFUSED(r, EXIT_FAILED);
    EXPECT_STDERR(r, "master key");
    r = G(&g, "vault", "verify");
    EXPECT_REFUSED(r, EXIT_FAILED);
    EXPECT_STDERR(r, "master key");
    EXPECT_FILE(g.vault, vault);
    /* Not a key at all. */
    put_private(g.key, "not a key\n", 10);
    r = G(&g, "tenant", "list");
    EXPECT_REFUSED(r, EXIT_FAILED);
    EXPECT_STDERR(r, "master key");
    put_private(g.key, key->data, key->len);
    assert_int_equal(json_array_size(tenant_list(&g)), 1);
}

static void
test_vault_key_file_mode(void **state)
{
    static const mode_t modes[] = {0644, 0640, 0604, 0660, 0606};
    size_t i;
    result r;
    gw g;

    (void)state;
    gw_init(&g, "A", "");
    vault_init(&g);
    tenant_create(&g, "t", NULL);
    for (i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        assert_int_equal(chmod(g.key, modes[i]), 0);
        r = G(&g, "tenant", "list");
        EXPECT_REFUSED(r, EXIT_FAILED);
        EXPECT_STDERR(r, "readable by others");
        r = G(&g, "tenant", "create", "u");
        EXPECT_REFUSED(r, EXIT_FAILED);
        EXPECT_STDERR(r, "readable by others");
    }
    assert_int_equal(chmod(g.key, 0400), 0);
    assert_int_equal(json_array_size(tenant_list(&g)), 1);
    assert_int_equal(chmod(g.key, 0600), 0);
    assert_int_equal(json_array_size(tenant_list(&g)), 1);
}

/* A vault with something in it: two tenants, one with a psk and a backend. */
static void
populate(const gw *g)
{
    tenant_create(g, "t", ARGS("--psk"));
    tenant_create(g, "u", NULL);
    EXPECT_EXIT(G(g, "backend", "add", "t", "--url", "https://b.example/"), EXIT_OK);
}

static void
test_vault_flipped_bytes(void **state)
{
    blob *orig, *bad;
    size_t i, tried = 0;
    result r;
    gw g;

    (void)state;
    gw_init(&g, "A", "");
    vault_init(&g);
    populate(&g);
    orig = slurp(g.vault);
    assert_true(orig->len > 256);
    bad = blob_of(orig->data, orig->len);
    for (i = 0; i < orig->len; i++) {
        if (!(i < 64 || i >= orig->len - 64 || i % 7 == 0))
            continue;
        bad->data[i] ^= 0xff;
        put_file(g.vault, bad->data, bad->len);
        r = G(&g, "vault", "verify");
        if (r.status != EXIT_FAILED || r.sig != 0)
            fail_msg("byte %zu of %zu flipped: `%s` exited %d (signal %d): %s", i, orig->len, last_cmd, r.status, r.sig,
                     text_of(r.out));
        EXPECT_REFUSED(r, EXIT_FAILED);
        EXPECT_FILE(g.vault, bad);
        bad->data[i] ^= 0xff;
        tried++;
    }
    /* One more reader of a damaged vault: a listing refuses too, and writes nothing. */
    bad->data[orig->len / 2] ^= 0x01;
    put_file(g.vault, bad->data, bad->len);
    EXPECT_REFUSED(G(&g, "tenant", "list"), EXIT_FAILED);
    r = G(&g, "tenant", "create", "v");
    EXPECT_REFUSED(r, EXIT_FAILED);
    EXPECT_STDERR(r, "integrity");
    EXPECT_FILE(g.vault, bad);
    put_file(g.vault, orig->data, orig->len);
    EXPECT_EXIT(G(&g, "vault", "verify"), EXIT_OK);
    assert_true(tried > 128);
}

static void
test_vault_truncated(void **state)
{
    blob *orig, *cut;
    size_t lens[12], i, n = 0;
    result r;
    gw g;

    (void)state;
    gw_init(&g, "A", "");
    vault_init(&g);
    populate(&g);
    orig = slurp(g.vault);
    lens[n++] = 0;
    lens[n++] = 1;
    lens[n++] = 4;
    lens[n++] = 63;
    lens[n++] = 64;
    lens[n++] = 104;
    lens[n++] = orig->len / 2;
    lens[n++] = orig->len - 33;
    lens[n++] = orig->len - 32;
    lens[n++] = orig->len - 1;
    for (i = 0; i < n; i++) {
        cut = blob_of(orig->data, lens[i]);
        put_file(g.vault, cut->data, cut->len);
        r = G(&g, "vault", "verify");
        EXPECT_REFUSED(r, EXIT_FAILED);
        EXPECT_REFUSED(G(&g, "tenant", "list"), EXIT_FAILED);
        EXPECT_FILE(g.vault, cut);
    }
    /* A byte too many is damage as well. */
    cut = blob_of(orig->data, orig->len);
    blob_append(cut, "", 1);
    put_file(g.vault, cut->data, cut->len);
    EXPECT_REFUSED(G(&g, "vault", "verify"), EXIT_FAILED);
    put_file(g.vault, orig->data, orig->len);
    EXPECT_EXIT(G(&g, "vault", "verify"), EXIT_OK);
}

/* A parcel sealed by the CLI to the given public key (pattern N). */
static blob *
seal_to(const char *pubhex, const blob *body)
{
    result r = ng(body, ARGS("seal", "--to", pubhex));

    EXPECT_EXIT(r, EXIT_OK);
    return r.out;
}

/* open --tenant prints the body. */
static void
expect_opens(const gw *g, const char *slug, const blob *parcel, const blob *body)
{
    result r;

    put_file("parcel.ngp", parcel->data, parcel->len);
    r = ng(NULL, ARGS("open", "--tenant", slug, "--config", g->cfg, "parcel.ngp"));
    EXPECT_EXIT(r, EXIT_OK);
    if (!same_bytes(r.out, body))
        fail_msg("`%s` printed %zu bytes, not the %zu of the body", last_cmd, r.out->len, body->len);
}

static void
test_vault_rekey_file(void **state)
{
    blob *old_key, *new_key, *body = blob_str("sealed before the rekey\n"), *parcel;
    struct stat st;
    result r;
    gw g;

    (void)state;
    gw_init(&g, "A", "");
    vault_init(&g);
    populate(&g);
    parcel = seal_to(epoch_public(&g, "t", 1), body);
    expect_opens(&g, "t", parcel, body);
    old_key = slurp(g.key);

    r = G(&g, "vault", "rekey");
    EXPECT_EXIT(r, EXIT_OK);
    EXPECT_STDOUT(r, "resealed");
    new_key = slurp(g.key);
    assert_non_null(new_key);
    assert_false(same_bytes(old_key, new_key));
    assert_int_equal(stat(g.key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_false(exists(g.key_new));
    r = G(&g, "vault", "verify");
    EXPECT_EXIT(r, EXIT_OK);
    EXPECT_STDOUT(r, "2 tenants");
    assert_int_equal(json_array_size(tenant_list(&g)), 2);
    assert_int_equal(json_array_size(json_of(G(&g, "backend", "list", "t", "--json"))), 1);
    expect_opens(&g, "t", parcel, body);

    /* The old key no longer opens it. */
    put_private(g.key, old_key->data, old_key->len);
    r = G(&g, "tenant", "list");
    EXPECT_REFUSED(r, EXIT_FAILED);
    EXPECT_STDERR(r, "master key");
    put_private(g.key, new_key->data, new_key->len);
    EXPECT_EXIT(G(&g, "vault", "verify"), EXIT_OK);
}

static void
test_vault_interrupted_rekey(void **state)
{
    blob *old_key, *new_key, *vault, *stale;
    char other[64];
    result r;
    gw g;

    (void)state;
    gw_init(&g, "A", "");
    vault_init(&g);
    populate(&g);
    old_key = slurp(g.key);
    EXPECT_EXIT(G(&g, "vault", "rekey"), EXIT_OK);
    new_key = slurp(g.key);
    vault = slurp(g.vault);
    assert_false(same_bytes(old_key, new_key));

    /* A rekey that stopped after resealing, before the rename: vault under KEY.new, KEY still old. */
    put_private(g.key_new, new_key->data, new_key->len);
    put_private(g.key, old_key->data, old_key->len);
    r = G(&g, "tenant", "list", "--json");
    EXPECT_EXIT(r, EXIT_OK);
    EXPECT_STDERR(r, "finished an interrupted rekey");
    assert_int_equal(json_array_size(parse_json(r.out)), 2);
    assert_false(exists(g.key_new));
    EXPECT_FILE(g.key, new_key);
    EXPECT_FILE(g.vault, vault);
    r = G(&g, "vault", "verify");
    EXPECT_EXIT(r, EXIT_OK);
    EXPECT_NO_STDERR(r, "interrupted");

    /* A rekey that stopped before resealing: KEY.new is a stranger, and KEY stays the key. */
    random_key_line(other);
    put_private(g.key_new, other, strlen(other));
    stale = slurp(g.key_new);
    r = G(&g, "tenant", "list", "--json");
    EXPECT_EXIT(r, EXIT_OK);
    EXPECT_NO_STDERR(r, "interrupted");
    assert_int_equal(json_array_size(parse_json(r.out)), 2);
    EXPECT_FILE(g.key, new_key);
    EXPECT_FILE(g.key_new, stale);
}

static void
test_vault_env_key(void **state)
{
    char k1[64], k2[64], short_key[64];
    uint8_t raw[31];
    result r;
    gw g;

    (void)state;
    gw_init(&g, "A", "\"vault\": {\"master_key\": \"env\"}");
    random_b64_key(k1);
    random_b64_key(k2);
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(short_key, sizeof short_key, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);

    r = G(&g, "vault", "init");
    EXPECT_REFUSED(r, EXIT_USAGE);
    EXPECT_STDERR(r, "NOISEGATE_VAULT_KEY");
    assert_false(exists(g.vault));
    setenv("NOISEGATE_VAULT_KEY", k1, 1);
    vault_init(&g);
    assert_false(exists(g.key));
    tenant_create(&g, "t", NULL);
    EXPECT_EXIT(G(&g, "vault", "verify"), EXIT_OK);

    setenv("NOISEGATE_VAULT_KEY", k2, 1);
    r = G(&g, "vault", "verify");
    EXPECT_REFUSED(r, EXIT_FAILED);
    EXPECT_STDERR(r, "master key");
    setenv("NOISEGATE_VAULT_KEY", "abc", 1);
    r = G(&g, "tenant", "list");
    EXPECT_REFUSED(r, EXIT_USAGE);
    EXPECT_STDERR(r, "NOISEGATE_VAULT_KEY");
    setenv("NOISEGATE_VAULT_KEY", short_key, 1);
    EXPECT_REFUSED(G(&g, "tenant", "list"), EXIT_USAGE);

    /* Rekey from NOISEGATE_VAULT_KEY to NOISEGATE_VAULT_NEW_KEY. */
    setenv("NOISEGATE_VAULT_KEY", k1, 1);
    r = G(&g, "vault", "rekey");
    EXPECT_REFUSED(r, EXIT_USAGE);
    EXPECT_STDERR(r, "NOISEGATE_VAULT_NEW_KEY");
    setenv("NOISEGATE_VAULT_NEW_KEY", "not base64!", 1);
    EXPECT_REFUSED(G(&g, "vault", "rekey"), EXIT_USAGE);
    setenv("NOISEGATE_VAULT_NEW_KEY", k2, 1);
    r = G(&g, "vault", "rekey");
    EXPECT_EXIT(r, EXIT_OK);
    EXPECT_STDOUT(r, "NOISEGATE_VAULT_NEW_KEY");
    unsetenv("NOISEGATE_VAULT_NEW_KEY");
    r = G(&g, "tenant", "list");
    EXPECT_REFUSED(r, EXIT_FAILED);
    EXPECT_STDERR(r, "master key");
    setenv("NOISEGATE_VAULT_KEY", k2, 1);
    assert_non_null(find_by(tenant_list(&g), "slug", "t"));
    EXPECT_EXIT(G(&g, "vault", "verify"), EXIT_OK);
    assert_false(exists(g.key));
}

static void
test_vault_passphrase(void **state)
{
    blob *v;
    uint64_t ops = 0, mem = 0;
    result r;
    gw g;
    int i;

    (void)state;
    gw_init(&g, "A", "\"vault\": {\"master_key\": \"passphrase\", \"argon2_ops\": 1, \"argon2_mem_mib\": 8}");
    setenv("NOISEGATE_VAULT_PASSPHRASE", "correct horse battery staple", 1);
    vault_init(&g);
    assert_false(exists(g.key));
    /* The configured Argon2id limits are the ones stored in the header. */
    v = slurp(g.vault);
    assert_non_null(v);
    assert_true(v->len > 24);
    assert_int_equal(v->data[4], 1);
    for (i = 0; i < 8; i++) {
        ops = ops << 8 | v->data[8 + i];
        mem = mem << 8 | v->data[16 + i];
    }
    assert_int_equal(ops, 1);
    assert_int_equal(mem, 8 * 1024 * 1024);
    tenant_create(&g, "t", NULL);
    EXPECT_EXIT(G(&g, "vault", "verify"), EXIT_OK);

    setenv("NOISEGATE_VAULT_PASSPHRASE", "correct horse battery stapler", 1);
    r = G(&g, "tenant", "list");
    EXPECT_REFUSED(r, EXIT_FAILED);
    EXPECT_STDERR(r, "passphrase");
    setenv("NOISEGATE_VAULT_PASSPHRASE", "", 1);
    EXPECT_REFUSED(G(&g, "tenant", "list"), EXIT_USAGE);

    setenv("NOISEGATE_VAULT_PASSPHRASE", "correct horse battery staple", 1);
    setenv("NOISEGATE_VAULT_NEW_PASSPHRASE", "tr0ub4dor&3", 1);
    r = G(&g, "vault", "rekey");
    EXPECT_EXIT(r, EXIT_OK);
    unsetenv("NOISEGATE_VAULT_NEW_PASSPHRASE");
    r = G(&g, "tenant", "list");
    EXPECT_REFUSED(r, EXIT_FAILED);
    EXPECT_STDERR(r, "passphrase");
    setenv("NOISEGATE_VAULT_PASSPHRASE", "tr0ub4dor&3", 1);
    assert_non_null(find_by(tenant_list(&g), "slug", "t"));
    EXPECT_EXIT(G(&g, "vault", "verify"), EXIT_OK);
}

/* Every vault command refuses with status 1 and points at `vault init`. */
static void
expect_no_vault(const gw *g, misses *m)
{
    const char *const *cmds[] = {
        ARGS("vault", "verify"),
        ARGS("tenant", "list"),
        ARGS("tenant", "create", "t"),
        ARGS("tenant", "show", "t"),
        ARGS("backend", "add", "t", "--url", "http://x"),
        ARGS("backend", "list", "t"),
        ARGS("peer", "export", "t"),
        ARGS("peer", "list", "t"),
        ARGS("key", "rotate", "t"),
        ARGS("key", "list", "t"),
        ARGS("vault", "rekey"),
    };
    size_t i;

    for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        refused_as(m, ngc(g, NULL, cmds[i]), EXIT_FAILED, "vault init");
    assert_false(exists(g->vault));
}

static void
test_vault_missing(void **state)
{
    misses m = {NULL, 0};
    char k[64];
    gw g, e;

    (void)state;
    /* Nothing at all yet. */
    gw_init(&g, "A", "");
    expect_no_vault(&g, &m);
    assert_false(exists(g.key));
    /* A key file, but the vault file gone. */
    vault_init(&g);
    assert_int_equal(unlink(g.vault), 0);
    expect_no_vault(&g, &m);
    /* The key from the environment, no vault. */
    gw_init(&e, "E", "\"vault\": {\"master_key\": \"env\"}");
    random_b64_key(k);
    setenv("NOISEGATE_VAULT_KEY", k, 1);
    setenv("NOISEGATE_VAULT_NEW_KEY", k, 1);
    expect_no_vault(&e, &m);
    EXPECT_NO_MISSES(&m, "commands on a missing vault did not refuse pointing at `vault init`");
}

/* ==== 7: configuration errors ==== */

/* Every command refuses the configuration with status 2 and a message naming file and field. */
static void
expect_config_error(const char *cfg, const char *name, const char *field)
{
    /* open --tenant is left out when the file comes from NOISEGATE_CONFIG: test_open_tenant_env_config. */
    int with_open = cfg != NULL;
    const char *const *cmds[] = {
        ARGS("vault", "init"),
        ARGS("vault", "verify"),
        ARGS("tenant", "list"),
        ARGS("tenant", "create", "t"),
        ARGS("backend", "list", "t"),
        ARGS("peer", "export", "t"),
        ARGS("peer", "import", "t", "ngcp1:x"),
        ARGS("key", "list", "t"),
        ARGS("key", "rotate", "t"),
    };
    size_t i;
    result r;

    for (i = 0; i < sizeof cmds / sizeof cmds[0] + (size_t)with_open; i++) {
        argv_buf a = {{0}, 0};

        if (i < sizeof cmds / sizeof cmds[0])
            av_push(&a, cmds[i]);
        else
            AV(&a, "open", "--tenant", "t", "parcel.ngp");
        if (cfg != NULL)
            AV(&a, "--config", cfg);
        r = ng(NULL, a.v);
        EXPECT_REFUSED(r, EXIT_USAGE);
        EXPECT_STDERR(r, name);
        if (field != NULL)
            EXPECT_STDERR(r, field);
    }
    assert_false(exists("data"));
}

static void
test_config_errors(void **state)
{
    blob *body = blob_str("x"), *p;
    gw g;

    (void)state;
    /* open --tenant gets as far as the configuration only with a parcel in hand. */
    gw_init(&g, "A", "");
    vault_init(&g);
    tenant_create(&g, "t", NULL);
    p = seal_to(epoch_public(&g, "t", 1), body);
    put_file("parcel.ngp", p->data, p->len);

    put_text("unknown.json", "{\"data_dir\": \"data\", \"listen\": {\"prot\": 80}}\n");
    expect_config_error("unknown.json", "unknown.json", "listen.prot: unknown key");
    put_text("top.json", "{\"data_dir\": \"data\", \"vualt\": {}}\n");
    expect_config_error("top.json", "top.json", "vualt: unknown key");
    put_text("port.json", "{\"data_dir\": \"data\", \"listen\": {\"port\": \"80a\"}}\n");
    expect_config_error("port.json", "port.json", "listen.port: expected an integer 1-65535");
    put_text("store.json", "{\"data_dir\": \"data\", \"vault\": {\"store\": \"floppy\"}}\n");
    expect_config_error("store.json", "store.json", "vault.store");
    put_text("redis.json", "{\"data_dir\": \"data\", \"vault\": {\"store\": \"redis\"}}\n");
    expect_config_error("redis.json", "redis.json", "redis.url");
    put_text("json.json", "{\"data_dir\": \"data\",\n \"listen\": {\"port\": 80,}}\n");
    expect_config_error("json.json", "json.json:2", "invalid JSON");
    expect_config_error("missing.json", "missing.json", "cannot read");

    /* The environment: a bad override, and NOISEGATE_CONFIG naming a missing or bad file. */
    put_text("good.json", "{\"data_dir\": \"data\"}\n");
    setenv("NOISEGATE_LISTEN_PORT", "abc", 1);
    expect_config_error("good.json", "NOISEGATE_LISTEN_PORT", "expected an integer 1-65535");
    unsetenv("NOISEGATE_LISTEN_PORT");
    setenv("NOISEGATE_CONFIG", "missing.json", 1);
    expect_config_error(NULL, "missing.json", "cannot read");
    setenv("NOISEGATE_CONFIG", "port.json", 1);
    expect_config_error(NULL, "port.json", "listen.port");
}

/* ==== 8: connection parameters ==== */

/* Gateway A with tenant a (psk) exporting; gateway B with tenant b importing. */
static blob *
two_gateways(gw *a, gw *b)
{
    gw_init(a, "A", "");
    gw_init(b, "B", "");
    vault_init(a);
    vault_init(b);
    tenant_create(a, "a", ARGS("--psk"));
    tenant_create(b, "b", NULL);
    return export_params(a, "a", NULL);
}

/* An import B must refuse: status 1, a reason, and its vault byte for byte as it was. */
#define EXPECT_IMPORT_REFUSED(b, params, why) expect_import_refused_at((b), (params), (why), __LINE__)

static void
expect_import_refused_at(const gw *b, const char *params, const char *why, int line)
{
    blob *vault = slurp(b->vault);
    result r = G(b, "peer", "import", "b", params);

    expect_refused_at(r, EXIT_FAILED, line);
    if (why != NULL)
        expect_has_at(r.err, "stderr", why, 1, line);
    if (!same_bytes(slurp(b->vault), vault))
        fail_msg("line %d: the refused `%s` changed the vault", line, last_cmd);
}

static void
test_params_every_char_lib(void **state)
{
    size_t i, len, bad = 0, first_pos = 0;
    char *copy, first[24] = "";
    json_t *out = NULL;
    blob *params;
    ng_err err;
    gw a, b;
    int k;

    (void)state;
    params = two_gateways(&a, &b);
    len = params->len;
    assert_int_equal(ng_peer_decode(text_of(params), &out), NG_OK);
    json_decref(out);
    copy = strdup(text_of(params));
    assert_non_null(copy);
    /* Every position of the base64 part, every other base64url character. */
    for (i = 6; i < len; i++) {
        char was = copy[i];

        for (k = 0; k < 64; k++) {
            if (b64url_alphabet[k] == was)
                continue;
            copy[i] = b64url_alphabet[k];
            out = NULL;
            err = ng_peer_decode(copy, &out);
            if (err == NG_OK) {
                json_decref(out);
                if (bad++ == 0) {
                    first_pos = i;
                    snprintf(first, sizeof first, "'%c' for '%c'", b64url_alphabet[k], was);
                }
            }
        }
        copy[i] = was;
    }
    /* Every prefix. */
    for (i = 0; i < len; i++) {
        char was = copy[i];

        copy[i] = '\0';
        out = NULL;
        if (ng_peer_decode(copy, &out) == NG_OK) {
            json_decref(out);
            free(copy);
            fail_msg("ng_peer_decode accepted the parameters cut to %zu of %zu characters", i, len);
        }
        copy[i] = was;
    }
    if (bad > 0) {
        /* Show it through the CLI as well. */
        result r;

        copy[first_pos] = first[1];
        r = G(&b, "peer", "import", "b", copy);
        free(copy);
        fail_msg("ng_peer_decode accepted %zu single-character changes of a %zu-character ngcp1 string, the first "
                 "%s at position %zu (`peer import` of it exited %d)",
                 bad, len, first, first_pos, r.status);
    }
    free(copy);
}

static void
test_params_tampered_cli(void **state)
{
    size_t i, len, tried = 0;
    misses m = {NULL, 0};
    blob *params, *t, *vault;
    result r;
    gw a, b;

    (void)state;
    params = two_gateways(&a, &b);
    len = params->len;
    t = blob_of(params->data, len);
    /* Every third position, the character with one of its six bits flipped (a different bit each time). */
    for (i = 6; i < len; i += 3) {
        const char *at = strchr(b64url_alphabet, (char)params->data[i]);
        int idx;

        assert_non_null(at);
        idx = (int)(at - b64url_alphabet) ^ (1 << ((i / 3) % 6));
        t->data[i] = (uint8_t)b64url_alphabet[idx];
        vault = slurp(b.vault);
        r = G(&b, "peer", "import", "b", text_of(t));
        if (r.status == EXIT_OK && r.sig == 0) {
            miss(&m, "position %zu, '%c' for '%c': imported", i, t->data[i], params->data[i]);
            /* Back to no peer, so that the next cases are judged on their own. */
            EXPECT_EXIT(G(&b, "peer", "remove", "b", "a"), EXIT_OK);
        } else if (refused_as(&m, r, EXIT_FAILED, "connection parameters") && !same_bytes(slurp(b.vault), vault)) {
            miss(&m, "position %zu: refused, but the vault changed", i);
        }
        t->data[i] = params->data[i];
        tried++;
    }
    assert_true(tried > 100);
    EXPECT_NO_MISSES(&m, "changed ngcp1 strings not refused");
    assert_int_equal(json_array_size(json_of(G(&b, "peer", "list", "b", "--json"))), 0);
    /* The untouched string still imports: the refusals were about the changes. */
    EXPECT_EXIT(G(&b, "peer", "import", "b", text_of(params)), EXIT_OK);
}

static void
test_params_malformed(void **state)
{
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    blob *params, *t, *big;
    json_t *doc, *d;
    const char *s;
    size_t len, cuts[6], i;
    result r;
    gw a, b;

    (void)state;
    params = two_gateways(&a, &b);
    s = text_of(params);
    len = params->len;
    doc = params_doc(s);
    signing_key(&a, "a", sk);
    /* The test's encoder and signer reproduce the export exactly, so what follows differs only where meant. */
    assert_true(same_bytes(params_encode(doc, CANONICAL), params));
    d = json_deep_copy(doc);
    json_array_append_new(keep, d);
    params_sign(d, sk);
    assert_true(same_bytes(params_encode(d, CANONICAL), params));

    EXPECT_IMPORT_REFUSED(&b, "", "connection parameters");
    EXPECT_IMPORT_REFUSED(&b, "garbage", "connection parameters");
    EXPECT_IMPORT_REFUSED(&b, "ngcp1:", "connection parameters");
    EXPECT_IMPORT_REFUSED(&b, "ngcp1:!!!!", "connection parameters");
    cuts[0] = 7, cuts[1] = 16, cuts[2] = len / 2, cuts[3] = len - 4, cuts[4] = len - 2, cuts[5] = len - 1;
    for (i = 0; i < 6; i++)
        EXPECT_IMPORT_REFUSED(&b, text_of(blob_of(s, cuts[i])), "connection parameters");
    /* Padding, trailing junk, a space inside. */
    t = blob_of(s, len);
    blob_append(t, "==", 2);
    EXPECT_IMPORT_REFUSED(&b, text_of(t), "connection parameters");
    t = blob_of(s, len);
    blob_append(t, "AAAA", 4);
    EXPECT_IMPORT_REFUSED(&b, text_of(t), "connection parameters");
    t = blob_of(s, len / 2);
    blob_append(t, " ", 1);
    blob_append(t, s + len / 2, len - len / 2);
    EXPECT_IMPORT_REFUSED(&b, text_of(t), "connection parameters");

    /* Another version: by its prefix, or inside (signed or not). */
    t = blob_str("ngcp2:");
    blob_append(t, s + 6, len - 6);
    EXPECT_IMPORT_REFUSED(&b, text_of(t), "unknown version");
    d = json_deep_copy(doc);
    json_array_append_new(keep, d);
    json_object_set_new(d, "v", json_integer(2));
    EXPECT_IMPORT_REFUSED(&b, text_of(params_encode(d, CANONICAL)), "unknown version");
    params_sign(d, sk);
    EXPECT_IMPORT_REFUSED(&b, text_of(params_encode(d, CANONICAL)), "unknown version");

    /* The same document, encoded otherwise: one encoding per document. */
    t = params_encode(doc, JSON_SORT_KEYS | JSON_INDENT(1));
    EXPECT_IMPORT_REFUSED(&b, text_of(t), "connection parameters");
    {
        char *text = json_dumps(doc, CANONICAL);
        blob *spaced = blob_str("{ ");

        assert_non_null(text);
        blob_append(spaced, text + 1, strlen(text) - 1);
        free(text);
        EXPECT_IMPORT_REFUSED(&b, text_of(params_of_text(text_of(spaced), spaced->len)), "connection parameters");
    }

    /* Correctly signed, but not what version 1 is. */
    d = json_deep_copy(doc);
    json_array_append_new(keep, d);
    json_object_set_new(d, "zzz", json_integer(1));
    EXPECT_IMPORT_REFUSED(&b, text_of(params_encode(d, CANONICAL)), "connection parameters");
    params_sign(d, sk);
    EXPECT_IMPORT_REFUSED(&b, text_of(params_encode(d, CANONICAL)), "connection parameters");
    d = json_deep_copy(doc);
    json_array_append_new(keep, d);
    json_object_del(d, "read_token");
    params_sign(d, sk);
    EXPECT_IMPORT_REFUSED(&b, text_of(params_encode(d, CANONICAL)), "connection parameters");
    d = json_deep_copy(doc);
    json_array_append_new(keep, d);
    json_object_set_new(d, "v", json_string("1"));
    params_sign(d, sk);
    EXPECT_IMPORT_REFUSED(&b, text_of(params_encode(d, CANONICAL)), "connection parameters");
    d = json_deep_copy(doc);
    json_array_append_new(keep, d);
    json_object_set_new(d, "name", json_string("Not A Slug"));
    params_sign(d, sk);
    EXPECT_IMPORT_REFUSED(&b, text_of(params_encode(d, CANONICAL)), "connection parameters");
    d = json_deep_copy(doc);
    json_array_append_new(keep, d);
    json_object_set_new(d, "psk", json_string("00112233"));
    params_sign(d, sk);
    EXPECT_IMPORT_REFUSED(&b, text_of(params_encode(d, CANONICAL)), "connection parameters");
    /* A static key that is a low-order point. */
    d = json_deep_copy(doc);
    json_array_append_new(keep, d);
    json_object_set_new(json_array_get(json_object_get(d, "keys"), 0), "public",
                        json_string("0000000000000000000000000000000000000000000000000000000000000000"));
    params_sign(d, sk);
    EXPECT_IMPORT_REFUSED(&b, text_of(params_encode(d, CANONICAL)), "key");

    /* Over 16 KiB, as an argument and on stdin. */
    big = blob_str("ngcp1:");
    while (big->len <= NG_PEER_MAX_PARAMS + 8)
        blob_append(big, "QUFB", 4);
    EXPECT_IMPORT_REFUSED(&b, text_of(big), "connection parameters");
    r = GIN(&b, big, "peer", "import", "b", "-");
    EXPECT_REFUSED(r, EXIT_FAILED);
    EXPECT_STDERR(r, "16384");

    assert_int_equal(json_array_size(json_of(G(&b, "peer", "list", "b", "--json"))), 0);
    /* After all that, the real string imports. */
    EXPECT_EXIT(G(&b, "peer", "import", "b", s), EXIT_OK);
    sodium_memzero(sk, sizeof sk);
}

static void
test_params_update_rules(void **state)
{
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    char fp_a[NG_PEER_FINGERPRINT_BYTES], fp_x[NG_PEER_FINGERPRINT_BYTES];
    blob *e1, *e2, *older, *newer, *px;
    json_t *doc, *list, *p;
    json_int_t created1;
    time_t t0;
    result r;
    gw a, b;

    (void)state;
    e1 = two_gateways(&a, &b);
    t0 = time(NULL);
    created1 = jint(params_doc(text_of(e1)), "created");
    EXPECT_EXIT(G(&b, "peer", "import", "b", text_of(e1)), EXIT_OK);
    /* The same string again: an update, accepted. */
    r = G(&b, "peer", "import", "b", text_of(e1));
    EXPECT_EXIT(r, EXIT_OK);
    EXPECT_STDOUT(r, "imported peer a");

    /* Exports of two different seconds: the earlier one after the later is a rollback. */
    while (time(NULL) == t0)
        sleep_ms(20);
    e2 = export_params(&a, "a", fp_a);
    assert_true(jint(params_doc(text_of(e2)), "created") > created1);
    EXPECT_EXIT(G(&b, "peer", "import", "b", text_of(e2)), EXIT_OK);
    EXPECT_IMPORT_REFUSED(&b, text_of(e1), "older");
    p = json_array_get(json_of(G(&b, "peer", "list", "b", "--json")), 0);
    assert_int_equal(jint(p, "created"), jint(params_doc(text_of(e2)), "created"));

    /* Properly signed by a, an hour older, and a minute newer. */
    signing_key(&a, "a", sk);
    doc = json_deep_copy(params_doc(text_of(e2)));
    json_array_append_new(keep, doc);
    json_object_set_new(doc, "created", json_integer(created1 - 3600));
    params_sign(doc, sk);
    older = params_encode(doc, CANONICAL);
    EXPECT_IMPORT_REFUSED(&b, text_of(older), "older");
    json_object_set_new(doc, "created", json_integer(created1 + 60));
    params_sign(doc, sk);
    newer = params_encode(doc, CANONICAL);
    EXPECT_EXIT(G(&b, "peer", "import", "b", text_of(newer)), EXIT_OK);
    sodium_memzero(sk, sizeof sk);

    /* Another tenant's parameters under the name a: another signing key, refused. */
    tenant_create(&a, "x", NULL);
    px = export_params(&a, "x", fp_x);
    assert_string_not_equal(fp_a, fp_x);
    r = G(&b, "peer", "import", "b", text_of(px), "--name", "a");
    EXPECT_REFUSED(r, EXIT_FAILED);
    EXPECT_STDERR(r, "another key");
    list = json_of(G(&b, "peer", "list", "b", "--json"));
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(jstr(json_array_get(list, 0), "fingerprint"), fp_a);
    assert_int_equal(jint(json_array_get(list, 0), "created"), created1 + 60);
    /* Under its own name it is a second peer. */
    r = G(&b, "peer", "import", "b", text_of(px));
    EXPECT_EXIT(r, EXIT_OK);
    EXPECT_STDOUT(r, fp_x);
    list = json_of(G(&b, "peer", "list", "b", "--json"));
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(jstr(find_by(list, "name", "x"), "fingerprint"), fp_x);
    /* --name gives the peer another name. */
    r = G(&b, "peer", "import", "b", text_of(px), "--name", "other-x");
    EXPECT_EXIT(r, EXIT_OK);
    assert_non_null(find_by(json_of(G(&b, "peer", "list", "b", "--json")), "name", "other-x"));
}

/* ==== 9: key rotation ==== */

static void
test_rotation(void **state)
{
    blob *body1 = blob_str("to epoch one\n"), *body2 = blob_str("to epoch two\n"), *p1, *p2;
    const char *pub1;
    json_t *keys, *k1, *k2;
    result r;
    gw g;

    (void)state;
    gw_init(&g, "A", "");
    vault_init(&g);
    tenant_create(&g, "t", NULL);
    tenant_create(&g, "other", NULL);
    pub1 = epoch_public(&g, "t", 1);
    p1 = seal_to(pub1, body1);
    expect_opens(&g, "t", p1, body1);
    /* Addressed to t, not to other. */
    put_file("parcel.ngp", p1->data, p1->len);
    r = ng(NULL, ARGS("open", "--tenant", "other", "--config", g.cfg, "parcel.ngp"));
    EXPECT_REFUSED(r, EXIT_FAILED);
    EXPECT_STDERR(r, "not addressed to a live key");

    r = G(&g, "key", "rotate", "t");
    EXPECT_EXIT(r, EXIT_OK);
    EXPECT_STDOUT(r, "epoch 2");
    keys = json_of(G(&g, "key", "list", "t", "--json"));
    assert_int_equal(json_array_size(keys), 2);
    k1 = json_array_get(keys, 0);
    k2 = json_array_get(keys, 1);
    assert_int_equal(jint(k1, "epoch"), 1);
    assert_int_equal(jint(k2, "epoch"), 2);
    assert_true(json_is_false(json_object_get(k1, "sending")));
    assert_true(json_is_true(json_object_get(k2, "sending")));
    assert_string_equal(jstr(k1, "public"), pub1);
    assert_string_not_equal(jstr(k2, "public"), pub1);
    r = G(&g, "key", "list", "t");
    EXPECT_EXIT(r, EXIT_OK);
    EXPECT_STDOUT(r, jstr(k2, "key_id"));
    assert_int_equal(jint(json_array_get(tenant_list(&g), 1), "epoch"), 2);

    expect_opens(&g, "t", p1, body1);
    p2 = seal_to(jstr(k2, "public"), body2);
    expect_opens(&g, "t", p2, body2);

    r = G(&g, "key", "retire", "t", "2");
    EXPECT_REFUSED(r, EXIT_FAILED);
    EXPECT_STDERR(r, "sending");
    r = G(&g, "key", "retire", "t", "9");
    EXPECT_REFUSED(r, EXIT_FAILED);
    EXPECT_STDERR(r, "not found");
    EXPECT_REFUSED(G(&g, "key", "retire", "t", "abc"), EXIT_USAGE);
    EXPECT_REFUSED(G(&g, "key", "retire", "t", "0"), EXIT_USAGE);
    EXPECT_REFUSED(G(&g, "key", "retire", "t", "-1"), EXIT_USAGE);
    EXPECT_REFUSED(G(&g, "key", "retire", "t", "99999999999"), EXIT_USAGE);
    EXPECT_REFUSED(G(&g, "key", "retire", "nosuch", "1"), EXIT_FAILED);
    r = G(&g, "key", "retire", "t", "1");
    EXPECT_EXIT(r, EXIT_OK);
    EXPECT_STDOUT(r, "retired epoch 1");
    keys = json_of(G(&g, "key", "list", "t", "--json"));
    assert_int_equal(json_array_size(keys), 1);
    assert_int_equal(jint(json_array_get(keys, 0), "epoch"), 2);
    EXPECT_REFUSED(G(&g, "key", "retire", "t", "1"), EXIT_FAILED);

    put_file("parcel.ngp", p1->data, p1->len);
    r = ng(NULL, ARGS("open", "--tenant", "t", "--config", g.cfg, "parcel.ngp"));
    EXPECT_REFUSED(r, EXIT_FAILED);
    EXPECT_STDERR(r, "not addressed to a live key");
    expect_opens(&g, "t", p2, body2);
    /* The retired private key is gone from the vault, not only from the record. */
    lib_open(&g);
    assert_null(lib_get("tenant/t/key/1"));
    assert_non_null(lib_get("tenant/t/key/2"));
    lib_close();
    EXPECT_EXIT(G(&g, "vault", "verify"), EXIT_OK);
}

/* open --tenant takes its configuration from NOISEGATE_CONFIG like every other vault command. */
static void
test_open_tenant_env_config(void **state)
{
    blob *body = blob_str("configured by the environment\n"), *p;
    result r;
    gw g;

    (void)state;
    gw_init(&g, "A", "");
    vault_init(&g);
    tenant_create(&g, "t", NULL);
    p = seal_to(epoch_public(&g, "t", 1), body);
    put_file("parcel.ngp", p->data, p->len);
    setenv("NOISEGATE_CONFIG", g.cfg, 1);
    /* The other commands do. */
    EXPECT_EXIT(ng(NULL, ARGS("key", "list", "t")), EXIT_OK);
    r = ng(NULL, ARGS("open", "--tenant", "t", "parcel.ngp"));
    EXPECT_EXIT(r, EXIT_OK);
    assert_true(same_bytes(r.out, body));
}

/* ==== 10: usage ==== */

static const char *const *const usage_cases[] = {
    ARGS("vault"),
    ARGS("vault", "frob"),
    ARGS("vault", "init", "extra"),
    ARGS("vault", "verify", "--frob"),
    ARGS("tenant"),
    ARGS("tenant", "create"),
    ARGS("tenant", "show"),
    ARGS("tenant", "delete"),
    ARGS("tenant", "list", "x"),
    ARGS("tenant", "create", "a", "b"),
    ARGS("tenant", "list", "--bogus"),
    ARGS("tenant", "frob", "x"),
    ARGS("tenant", "create", "x", "--max-message"),
    ARGS("tenant", "create", "x", "--max-message", "abc"),
    ARGS("tenant", "create", "x", "--max-message", "999999999999"),
    ARGS("tenant", "create", "x", "--rate", "-1"),
    ARGS("tenant", "create", ""),
    ARGS("tenant", "create", "-x"),
    ARGS("tenant", "create", "UPPER"),
    ARGS("tenant", "create", "a/b"),
    ARGS("tenant", "create", "a_b"),
    ARGS("tenant", "create", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
    ARGS("backend"),
    ARGS("backend", "add"),
    ARGS("backend", "add", "t"),
    ARGS("backend", "add", "t", "--url"),
    ARGS("backend", "list"),
    ARGS("backend", "remove", "t"),
    ARGS("backend", "rotate-secret", "t"),
    ARGS("backend", "frob", "t"),
    ARGS("backend", "add", "t", "--url", "ftp://x"),
    ARGS("backend", "add", "t", "--url", "http://user:pw@host/"),
    ARGS("backend", "add", "t", "--url", "http://"),
    ARGS("backend", "add", "t", "--url", "http://a b/"),
    ARGS("backend", "add", "t", "--url", "https://x/\"y"),
    ARGS("backend", "add", "t", "--url", "x"),
    ARGS("peer"),
    ARGS("peer", "export"),
    ARGS("peer", "import", "t"),
    ARGS("peer", "remove", "t"),
    ARGS("peer", "list"),
    ARGS("peer", "frob", "t"),
    ARGS("peer", "import", "t", "ngcp1:x", "--name", "Bad Name"),
    ARGS("peer", "export", "t", "--outbox", "ftp://x"),
    ARGS("peer", "list", "t", "--bogus"),
    ARGS("key"),
    ARGS("key", "rotate"),
    ARGS("key", "retire", "t"),
    ARGS("key", "retire", "t", "abc"),
    ARGS("key", "list"),
    ARGS("key", "frob", "t"),
    ARGS("key", "list", "t", "--frob"),
    ARGS("open", "--tenant", "t", "--key", "k.key"),
    NULL,
};

/* Status 2, nothing on stdout, and a hint naming the command on stderr; the vault untouched. */
static void
expect_usage_errors(const gw *g)
{
    blob *vault = exists(g->vault) ? slurp(g->vault) : NULL;
    misses m = {NULL, 0};
    char prefix[64];
    size_t i;
    result r;

    for (i = 0; usage_cases[i] != NULL; i++) {
        r = ngc(g, NULL, usage_cases[i]);
        if (!refused_as(&m, r, EXIT_USAGE, NULL))
            continue;
        /* "noisegate tenant: ..." and then what was wrong or what is expected. */
        snprintf(prefix, sizeof prefix, "noisegate %s: ", usage_cases[i][0]);
        if (strncmp(text_of(r.err), prefix, strlen(prefix)) != 0 || r.err->len < strlen(prefix) + 10)
            miss(&m, "`%s`: no usage hint: %s", last_cmd, text_of(r.err));
    }
    EXPECT_NO_MISSES(&m, "usage errors not refused with status 2 and a hint");
    if (vault != NULL)
        EXPECT_FILE(g->vault, vault);
}

static void
test_usage_errors(void **state)
{
    gw g;

    (void)state;
    gw_init(&g, "A", "");
    vault_init(&g);
    tenant_create(&g, "t", NULL);
    expect_usage_errors(&g);
    assert_int_equal(json_array_size(tenant_list(&g)), 1);
    assert_int_equal(json_array_size(json_of(G(&g, "backend", "list", "t", "--json"))), 0);
}

/* A usage error is one whatever state the vault is in: judged before the vault is opened. */
static void
test_usage_errors_without_vault(void **state)
{
    gw g;

    (void)state;
    gw_init(&g, "A", "");
    expect_usage_errors(&g);
    assert_false(exists(g.vault));
}

static void
test_backend_bad_public_key(void **state)
{
    uint8_t ff[32], pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    char b64[64], whpk[80], good[80];
    const char *bad[6];
    blob *vault;
    size_t i;
    json_t *list;
    result r;
    gw g;

    (void)state;
    gw_init(&g, "A", "");
    vault_init(&g);
    tenant_create(&g, "t", NULL);
    memset(ff, 0xff, sizeof ff);
    sodium_bin2base64(b64, sizeof b64, ff, sizeof ff, sodium_base64_VARIANT_ORIGINAL);
    snprintf(whpk, sizeof whpk, "whpk_%s", b64);
    crypto_sign_keypair(pk, sk);
    sodium_bin2base64(b64, sizeof b64, pk, sizeof pk, sodium_base64_VARIANT_ORIGINAL);
    snprintf(good, sizeof good, "whpk_%s", b64);
    bad[0] = whpk;        /* not a point */
    bad[1] = good + 5;    /* no whpk_ */
    bad[2] = "whpk_AAAA"; /* 3 bytes */
    bad[3] = "whpk_";
    bad[4] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    bad[5] = NULL;
    vault = slurp(g.vault);
    for (i = 0; bad[i] != NULL; i++) {
        r = G(&g, "backend", "add", "t", "--url", "https://b.example/", "--public-key", bad[i]);
        EXPECT_REFUSED(r, EXIT_FAILED);
        EXPECT_STDERR(r, "--public-key");
        EXPECT_FILE(g.vault, vault);
    }
    assert_int_equal(json_array_size(json_of(G(&g, "backend", "list", "t", "--json"))), 0);
    /* A good one is stored, and shown as given. */
    r = G(&g, "backend", "add", "t", "--url", "https://b.example/", "--public-key", good);
    EXPECT_EXIT(r, EXIT_OK);
    list = json_of(G(&g, "backend", "list", "t", "--json"));
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(jstr(json_array_get(list, 0), "public_key"), good);
}

/*
 * The outbox through the CLI, on the embedded redis-server that each
 * command starts under data_dir and stops again: what it stored survives
 * (AOF), comes back in order after a cursor, and no server is left behind.
 */
static void
test_outbox_embedded(void **state)
{
    char pubhex[65], kid[65], first[64], second[64];
    uint8_t id[NG_KEY_ID_BYTES];
    ng_keypair kp;
    blob *p[3], *pidfile;
    json_t *list;
    result r;
    gw g;
    int i;

    (void)state;
    gw_init(&g, "A", "");
    ng_keypair_generate(&kp);
    ng_hex_encode(pubhex, sizeof pubhex, kp.pub, sizeof kp.pub);
    ng_key_id(id, kp.pub);
    ng_hex_encode(kid, sizeof kid, id, sizeof id);
    ng_keypair_wipe(&kp);
    for (i = 0; i < 3; i++) {
        char body[32];
        snprintf(body, sizeof body, "parcel %d", i);
        p[i] = seal_to(pubhex, blob_str(body));
        r = GIN(&g, p[i], "outbox", "put", "t");
        EXPECT_EXIT(r, EXIT_OK);
    }
    r = GIN(&g, blob_str("not a parcel"), "outbox", "put", "t");
    EXPECT_REFUSED(r, EXIT_FAILED);
    EXPECT_STDERR(r, "not a valid parcel");

    list = jarr(json_of(G(&g, "outbox", "list", "t", kid, "--json")), "parcels");
    assert_int_equal(json_array_size(list), 3);
    snprintf(first, sizeof first, "%s", jstr(json_array_get(list, 0), "id"));
    snprintf(second, sizeof second, "%s", jstr(json_array_get(list, 1), "id"));
    assert_int_equal(jint(json_array_get(list, 2), "size"), (json_int_t)p[2]->len);
    list = jarr(json_of(G(&g, "outbox", "list", "t", kid, "--after", first, "--json")), "parcels");
    assert_int_equal(json_array_size(list), 2);
    r = G(&g, "outbox", "fetch", "t", kid, "--after", second, "--output", "got.ngp");
    EXPECT_EXIT(r, EXIT_OK);
    EXPECT_FILE("got.ngp", p[2]);
    r = G(&g, "outbox", "fetch", "t", kid, "--after", jstr(json_array_get(list, 1), "id"));
    EXPECT_REFUSED(r, EXIT_FAILED);
    EXPECT_STDERR(r, "nothing after");
    /* Another tenant's outbox for the same key is empty. */
    assert_int_equal(json_array_size(jarr(json_of(G(&g, "outbox", "list", "u", kid, "--json")), "parcels")), 0);

    EXPECT_REFUSED(G(&g, "outbox", "list", "t", "abc"), EXIT_USAGE);
    EXPECT_REFUSED(G(&g, "outbox", "list", "Bad", kid), EXIT_USAGE);
    EXPECT_REFUSED(G(&g, "outbox", "list", "t", kid, "--limit", "0"), EXIT_USAGE);
    EXPECT_REFUSED(G(&g, "outbox", "list", "t", kid, "--after", "nonsense"), EXIT_FAILED);
    EXPECT_REFUSED(G(&g, "outbox", "drop", "t"), EXIT_USAGE);

    /* Each command stopped its server: the pid it recorded is gone. */
    pidfile = exists("A/data/redis/redis.pid") ? slurp("A/data/redis/redis.pid") : NULL;
    if (pidfile != NULL) {
        long pid = strtol(text_of(pidfile), NULL, 10);
        assert_true(pid <= 0 || kill((pid_t)pid, 0) != 0);
    }
}

int
main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_roundtrip_file),
        T(test_roundtrip_redis),
        T(test_redis_unavailable),
        T(test_no_private_key_printed),
        T(test_concurrent_creates_file),
        T(test_concurrent_creates_redis),
        T(test_verify_keys),
        T(test_killed_writers),
        T(test_vault_init_twice),
        T(test_vault_wrong_key_file),
        T(test_vault_key_file_mode),
        T(test_vault_flipped_bytes),
        T(test_vault_truncated),
        T(test_vault_rekey_file),
        T(test_vault_interrupted_rekey),
        T(test_vault_env_key),
        T(test_vault_passphrase),
        T(test_vault_missing),
        T(test_config_errors),
        T(test_params_every_char_lib),
        T(test_params_tampered_cli),
        T(test_params_malformed),
        T(test_params_update_rules),
        T(test_rotation),
        T(test_outbox_embedded),
        T(test_open_tenant_env_config),
        T(test_usage_errors),
        T(test_usage_errors_without_vault),
        T(test_backend_bad_public_key),
    };
#undef T
    const char *bin = getenv("NG_BIN");
    int n, again = 1;

    if (bin == NULL || bin[0] == '\0') {
        fprintf(stderr, "test_operator: NG_BIN is not set; run `make test`, or set NG_BIN to the noisegate binary\n");
        return 2;
    }
    if (getcwd(home_dir, sizeof home_dir) == NULL || sodium_init() < 0)
        return 2;
    n = bin[0] == '/' ? snprintf(ng_bin, sizeof ng_bin, "%s", bin)
                      : snprintf(ng_bin, sizeof ng_bin, "%s/%s", home_dir, bin);
    if (n < 0 || (size_t)n >= sizeof ng_bin || access(ng_bin, X_OK) != 0) {
        fprintf(stderr, "test_operator: NG_BIN=%s is not an executable file: %s\n", bin, strerror(errno));
        return 2;
    }
    /* Nothing of the caller's NOISEGATE_* environment may reach the commands under test. */
    while (again) {
        char **e;

        again = 0;
        for (e = environ; *e != NULL; e++) {
            if (strncmp(*e, "NOISEGATE_", 10) == 0 && strchr(*e, '=') != NULL) {
                char name[256];
                size_t len = (size_t)(strchr(*e, '=') - *e);

                if (len >= sizeof name)
                    continue;
                memcpy(name, *e, len);
                name[len] = '\0';
                unsetenv(name);
                again = 1;
                break;
            }
        }
    }
    /* A fixed umask, so that a key file's mode is the program's doing. */
    umask(022);
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("operator", tests, NULL, NULL);
}

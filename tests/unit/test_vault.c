/*
 * The vault in both storage forms, a file and a key in a real redis-server
 * started for the suite: round trips, every byte flipped and every
 * truncation refused, wrong master key and passphrase, the Argon2id path,
 * concurrent writers in two processes, and a writer killed mid-write.
 * Every test runs once per form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "ng_io.h"
#include "ng_redis.h"
#include "ng_vault.h"
#include "redis_server.h"

static char dir[256], path[300];
static uint8_t master[NG_VAULT_KEY_BYTES];
static struct redis_server redis;
static int use_redis;
static const char redis_key[] = "ngtest:vault";
static ng_vault_store *store;

/* A store of the form under test; each process needs its own connection. */
static ng_vault_store *
new_store(void)
{
    ng_vault_store *st = NULL;
    ng_err err;

    if (use_redis)
        err = ng_vault_store_redis(&st, redis.url, redis_key, 5000);
    else
        err = ng_vault_store_file(&st, path);
    return err == NG_OK ? st : NULL;
}

static redisContext *
redis_raw(void)
{
    redisContext *c = redisConnectUnix(redis.sock);

    assert_non_null(c);
    assert_int_equal(c->err, 0);
    return c;
}

/* The stored bytes, read behind the vault's back. */
static void
raw_read(uint8_t **buf, size_t *len)
{
    redisContext *c;
    redisReply *r;

    if (!use_redis) {
        assert_int_equal(ng_io_read_all(path, 1 << 20, buf, len), NG_OK);
        return;
    }
    c = redis_raw();
    r = redisCommand(c, "GET %s", redis_key);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    *buf = malloc(r->len + 1);
    assert_non_null(*buf);
    memcpy(*buf, r->str, r->len);
    *len = r->len;
    freeReplyObject(r);
    redisFree(c);
}

/* Replaces the stored bytes behind the vault's back. */
static void
raw_write(const uint8_t *buf, size_t len)
{
    redisContext *c;
    redisReply *r;
    FILE *f;

    if (!use_redis) {
        f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(buf, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
        return;
    }
    c = redis_raw();
    r = redisCommand(c, "SET %s %b", redis_key, buf, len);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(c);
}

static ng_vault_secret
raw_key(const uint8_t *k)
{
    ng_vault_secret s = {0, k, NG_VAULT_KEY_BYTES, 0, 0};

    return s;
}

static ng_vault_secret
passphrase(const char *p)
{
    /* The smallest Argon2id limits keep the test fast; the file records them. */
    ng_vault_secret s = {1, (const uint8_t *)p, strlen(p), crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN};

    return s;
}

struct put_ctx {
    const char *name;
    const char *value;
};

static ng_err
put_one(ng_vault *v, void *ctx)
{
    const struct put_ctx *p = ctx;

    return ng_vault_put(v, p->name, (const uint8_t *)p->value, strlen(p->value));
}

static void
put(const ng_vault_secret *s, const char *name, const char *value)
{
    struct put_ctx c = {name, value};

    assert_int_equal(ng_vault_update(store, s, put_one, &c), NG_OK);
}

static void
expect_entry(ng_vault *v, const char *name, const char *value)
{
    uint8_t buf[256];
    size_t len;

    assert_int_equal(ng_vault_get(v, name, buf, sizeof buf, &len), NG_OK);
    assert_int_equal(len, strlen(value));
    assert_memory_equal(buf, value, len);
}

static int
setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s/ngvault-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof path, "%s/vault", dir);
    randombytes_buf(master, sizeof master);
    if (use_redis) {
        redisContext *c = redis_raw();
        freeReplyObject(redisCommand(c, "FLUSHALL"));
        redisFree(c);
    }
    store = new_store();
    return store != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
    char cmd[400];

    (void)state;
    if (use_redis)
        kill(redis.pid, SIGCONT); /* whatever a failed test left */
    ng_vault_store_free(store);
    store = NULL;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void
test_round_trip(void **state)
{
    ng_vault_secret s = raw_key(master);
    ng_vault *v;
    uint8_t small[2];
    size_t len;
    struct stat st;

    (void)state;
    assert_int_equal(ng_vault_create(store, &s), NG_OK);
    assert_int_equal(ng_vault_create(store, &s), NG_ERR_EXISTS);
    if (!use_redis) {
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
    }
    put(&s, "tenant/acme/noise/1", "secret-one");
    put(&s, "tenant/acme/psk", "secret-two");
    put(&s, "tenant/acme/noise/1", "replaced");
    assert_int_equal(ng_vault_open(&v, store, &s), NG_OK);
    assert_int_equal(ng_vault_count(v), 2);
    assert_string_equal(ng_vault_name(v, 0), "tenant/acme/noise/1");
    expect_entry(v, "tenant/acme/noise/1", "replaced");
    expect_entry(v, "tenant/acme/psk", "secret-two");
    assert_int_equal(ng_vault_get(v, "nope", small, sizeof small, &len), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_vault_get(v, "tenant/acme/psk", small, sizeof small, &len), NG_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(len, strlen("secret-two")); /* what it would take */
    assert_int_equal(ng_vault_lower_bound(v, "a"), 0);
    assert_int_equal(ng_vault_lower_bound(v, "tenant/acme/p"), 1);
    assert_int_equal(ng_vault_lower_bound(v, "tenant/acme/psk"), 1);
    assert_int_equal(ng_vault_lower_bound(v, "tenant/acme/psl"), 2);
    assert_int_equal(ng_vault_put(v, "bad name!", small, 1), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_vault_put(v, "", small, 1), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_vault_delete(v, "nope"), NG_ERR_NOT_FOUND);
    ng_vault_close(v);
}

/* The stamp tells versions apart without opening them, and an absent vault from a present one. */
static void
test_stamp(void **state)
{
    ng_vault_secret s = raw_key(master);
    uint8_t a[NG_VAULT_STORE_STAMP_BYTES], b[NG_VAULT_STORE_STAMP_BYTES], c[NG_VAULT_STORE_STAMP_BYTES];

    (void)state;
    assert_int_equal(ng_vault_store_stamp(store, a), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_vault_create(store, &s), NG_OK);
    assert_int_equal(ng_vault_store_stamp(store, a), NG_OK);
    assert_int_equal(ng_vault_store_stamp(store, b), NG_OK);
    assert_memory_equal(a, b, sizeof a);
    put(&s, "tenant/acme/psk", "one");
    assert_int_equal(ng_vault_store_stamp(store, b), NG_OK);
    assert_memory_not_equal(a, b, sizeof a);
    put(&s, "tenant/acme/psk", "one"); /* the same content sealed again is another version */
    assert_int_equal(ng_vault_store_stamp(store, c), NG_OK);
    assert_memory_not_equal(b, c, sizeof b);
}

static void
test_wrong_key_and_passphrase(void **state)
{
    ng_vault_secret s = raw_key(master), p = passphrase("correct horse"), bad = passphrase("wrong horse");
    uint8_t other[NG_VAULT_KEY_BYTES];
    ng_vault_secret o = raw_key(other);
    ng_vault *v;

    (void)state;
    memcpy(other, master, sizeof other);
    other[0] ^= 1;
    assert_int_equal(ng_vault_create(store, &s), NG_OK);
    put(&s, "k", "v");
    assert_int_equal(ng_vault_open(&v, store, &o), NG_ERR_VAULT_KEY);
    assert_null(v);
    assert_int_equal(ng_vault_open(&v, store, &p), NG_ERR_VAULT_KEY);

    /* Rekey to a passphrase: the old key stops working, the passphrase opens. */
    assert_int_equal(ng_vault_rekey(store, &s, &p), NG_OK);
    assert_int_equal(ng_vault_open(&v, store, &s), NG_ERR_VAULT_KEY);
    assert_int_equal(ng_vault_open(&v, store, &bad), NG_ERR_VAULT_KEY);
    assert_int_equal(ng_vault_open(&v, store, &p), NG_OK);
    expect_entry(v, "k", "v");
    ng_vault_close(v);
    /* And back to a raw key. */
    assert_int_equal(ng_vault_rekey(store, &p, &o), NG_OK);
    assert_int_equal(ng_vault_open(&v, store, &o), NG_OK);
    expect_entry(v, "k", "v");
    ng_vault_close(v);
}

static void
test_every_byte_and_truncation(void **state)
{
    ng_vault_secret s = raw_key(master);
    uint8_t *orig;
    size_t len, i;
    int bit;
    ng_vault *v;

    (void)state;
    assert_int_equal(ng_vault_create(store, &s), NG_OK);
    put(&s, "a", "first value");
    put(&s, "b", "second");
    raw_read(&orig, &len);
    for (i = 0; i < len; i++) {
        for (bit = 0; bit < 8; bit += 7) {
            orig[i] ^= (uint8_t)(1u << bit);
            raw_write(orig, len);
            if (ng_vault_open(&v, store, &s) == NG_OK)
                fail_msg("vault opened with byte %zu changed", i);
            orig[i] ^= (uint8_t)(1u << bit);
        }
    }
    for (i = 0; i < len; i++) {
        raw_write(orig, i);
        if (ng_vault_open(&v, store, &s) == NG_OK)
            fail_msg("vault opened truncated to %zu bytes", i);
    }
    orig = realloc(orig, len + 1);
    orig[len] = 0;
    raw_write(orig, len + 1);
    assert_int_equal(ng_vault_open(&v, store, &s), NG_ERR_CORRUPT);
    raw_write(orig, len);
    assert_int_equal(ng_vault_open(&v, store, &s), NG_OK);
    ng_vault_close(v);
    free(orig);
}

static void
adder(const ng_vault_secret *s, const char *prefix, int n)
{
    ng_vault_store *mine = new_store();
    char name[64];
    int i;

    for (i = 0; i < n; i++) {
        struct put_ctx c = {name, "value"};
        snprintf(name, sizeof name, "%s-%d", prefix, i);
        if (mine == NULL || ng_vault_update(mine, s, put_one, &c) != NG_OK)
            _exit(1);
    }
    _exit(0);
}

static void
two_writers(const ng_vault_secret *s, int each)
{
    pid_t a, b;
    int st;
    ng_vault *v;

    assert_int_equal(ng_vault_create(store, s), NG_OK);
    if ((a = fork()) == 0)
        adder(s, "alpha", each);
    if ((b = fork()) == 0)
        adder(s, "beta", each);
    assert_int_equal(waitpid(a, &st, 0), a);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(waitpid(b, &st, 0), b);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(ng_vault_open(&v, store, s), NG_OK);
    assert_int_equal(ng_vault_count(v), (size_t)(2 * each));
    ng_vault_close(v);
}

static void
test_two_writers(void **state)
{
    ng_vault_secret s = raw_key(master);

    (void)state;
    two_writers(&s, 25);
}

/* The same with a passphrase: a retried update (Redis form) reuses the keys it derived, and still lands. */
static void
test_two_writers_passphrase(void **state)
{
    ng_vault_secret p = passphrase("shared passphrase");

    (void)state;
    two_writers(&p, 10);
}

/* SIGKILL a writer at random moments: the file is always the old or the new state. */
static void
test_killed_writer(void **state)
{
    ng_vault_secret s = raw_key(master);
    ng_vault *v;
    size_t before = 0;
    int round;

    (void)state;
    assert_int_equal(ng_vault_create(store, &s), NG_OK);
    for (round = 0; round < 12; round++) {
        struct timespec ts = {0, (long)randombytes_uniform(20) * 1000000L};
        pid_t w = fork();
        size_t after;

        if (w == 0) {
            ng_vault_store *mine = new_store();
            char name[32];
            int i;
            for (i = 0;; i++) {
                struct put_ctx c = {name, "x"};
                snprintf(name, sizeof name, "r%d-%d", round, i);
                if (mine == NULL || ng_vault_update(mine, &s, put_one, &c) != NG_OK)
                    _exit(1);
            }
        }
        nanosleep(&ts, NULL);
        kill(w, SIGKILL);
        waitpid(w, NULL, 0);
        assert_int_equal(ng_vault_open(&v, store, &s), NG_OK);
        after = ng_vault_count(v);
        assert_true(after >= before);
        before = after;
        ng_vault_close(v);
    }
    /* Otherwise every kill landed before the first write and nothing was tested. */
    assert_true(before > 0);
}

/*
 * Each entry authenticates on its own, so only the whole-file MAC stops a
 * well-formed edit: here the last entry is cut out and the count lowered,
 * leaving a file in which every remaining entry still opens.
 */
static void
test_dropped_entry(void **state)
{
    ng_vault_secret s = raw_key(master);
    uint8_t *buf;
    size_t len, pos = 64 + 24 + 16, last = 0;
    uint32_t count, i;
    ng_vault *v;

    (void)state;
    assert_int_equal(ng_vault_create(store, &s), NG_OK);
    put(&s, "a", "kept");
    put(&s, "b", "dropped");
    raw_read(&buf, &len);
    count = (uint32_t)buf[40] << 24 | (uint32_t)buf[41] << 16 | (uint32_t)buf[42] << 8 | buf[43];
    assert_int_equal(count, 2);
    for (i = 0; i < count; i++) {
        size_t nlen = (size_t)buf[pos] << 8 | buf[pos + 1];
        size_t blen = (size_t)buf[pos + 2 + nlen] << 24 | (size_t)buf[pos + 3 + nlen] << 16 |
                      (size_t)buf[pos + 4 + nlen] << 8 | buf[pos + 5 + nlen];
        last = pos;
        pos += 2 + nlen + 4 + blen;
    }
    assert_int_equal(pos + 32, len);
    buf[43] = 1;
    memmove(buf + last, buf + pos, 32); /* the old MAC now ends the shorter file */
    raw_write(buf, last + 32);
    assert_int_equal(ng_vault_open(&v, store, &s), NG_ERR_CORRUPT);
    free(buf);
}

/* A passphrase vault's Argon2id limits come from the file: absurd ones are
 * refused before any memory is spent on them, and oversized values never
 * enter the vault. */
static void
test_hostile_limits_and_sizes(void **state)
{
    ng_vault_secret p = passphrase("pass");
    static uint8_t big[NG_VAULT_MAX_VALUE + 1];
    uint8_t *buf;
    size_t len;
    ng_vault *v;

    (void)state;
    assert_int_equal(ng_vault_create(store, &p), NG_OK);
    raw_read(&buf, &len);
    buf[16] = 0x7f; /* memlimit's top byte: about 9 EB */
    raw_write(buf, len);
    assert_int_equal(ng_vault_open(&v, store, &p), NG_ERR_CORRUPT);
    buf[16] = 0;
    buf[15] = 0xff; /* opslimit 255 */
    raw_write(buf, len);
    assert_int_equal(ng_vault_open(&v, store, &p), NG_ERR_CORRUPT);
    buf[15] = (uint8_t)crypto_pwhash_OPSLIMIT_MIN;
    raw_write(buf, len);
    assert_int_equal(ng_vault_open(&v, store, &p), NG_OK);
    assert_int_equal(ng_vault_put(v, "big", big, sizeof big), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_vault_put(v, "big", big, sizeof big - 1), NG_OK);
    ng_vault_close(v);
    free(buf);
}

/*
 * Values share one arena: churn through replacements and deletions (so
 * that it grows and compacts many times) and every surviving value must
 * read back, before and after a write and a reopen.
 */
static ng_err
churn(ng_vault *v, void *ctx)
{
    char name[32], value[96];
    int round, i;
    ng_err err;

    (void)ctx;
    for (round = 0; round < 20; round++) {
        for (i = 0; i < 50; i++) {
            snprintf(name, sizeof name, "k%02d", i);
            snprintf(value, sizeof value, "value %d of round %d%.*s", i, round, i % 30,
                     "..............................");
            if ((i + round) % 7 == 0) {
                err = ng_vault_delete(v, name);
                if (err != NG_OK && err != NG_ERR_NOT_FOUND)
                    return err;
            } else if ((err = ng_vault_put(v, name, (const uint8_t *)value, strlen(value))) != NG_OK) {
                return err;
            }
        }
    }
    return NG_OK;
}

static void
expect_churned(ng_vault *v)
{
    char name[32], value[96];
    uint8_t buf[96];
    size_t len, n = 0;
    int i;

    for (i = 0; i < 50; i++) {
        snprintf(name, sizeof name, "k%02d", i);
        if ((i + 19) % 7 == 0) {
            assert_int_equal(ng_vault_get(v, name, buf, sizeof buf, &len), NG_ERR_NOT_FOUND);
            continue;
        }
        snprintf(value, sizeof value, "value %d of round 19%.*s", i, i % 30, "..............................");
        expect_entry(v, name, value);
        n++;
    }
    assert_int_equal(ng_vault_count(v), n);
}

static void
test_arena_churn(void **state)
{
    ng_vault_secret s = raw_key(master);
    ng_vault *v;

    (void)state;
    assert_int_equal(ng_vault_create(store, &s), NG_OK);
    assert_int_equal(ng_vault_update(store, &s, churn, NULL), NG_OK);
    assert_int_equal(ng_vault_open(&v, store, &s), NG_OK);
    expect_churned(v);
    assert_int_equal(churn(v, NULL), NG_OK);
    expect_churned(v);
    ng_vault_close(v);
}

/* Redis stopped: every call fails fast with "store unavailable", and the
 * vault is intact once it is back. */
static void
test_redis_down(void **state)
{
    ng_vault_secret s = raw_key(master);
    struct put_ctx c = {"k", "v"};
    ng_vault_store *st;
    ng_vault *v;

    (void)state;
    assert_int_equal(ng_vault_create(store, &s), NG_OK);
    put(&s, "k", "before");
    kill(redis.pid, SIGSTOP); /* not answering at all, so the timeout is what ends the wait */
    ng_vault_store_free(store);
    store = NULL;
    assert_int_equal(ng_vault_store_redis(&st, redis.url, redis_key, 200), NG_ERR_UNAVAILABLE);
    assert_null(st);
    kill(redis.pid, SIGCONT);
    assert_int_equal(ng_vault_store_redis(&store, redis.url, redis_key, 200), NG_OK);
    kill(redis.pid, SIGSTOP);
    assert_int_equal(ng_vault_update(store, &s, put_one, &c), NG_ERR_UNAVAILABLE);
    assert_int_equal(ng_vault_open(&v, store, &s), NG_ERR_UNAVAILABLE);
    kill(redis.pid, SIGCONT);
    /* The broken connection is replaced on the next call. */
    assert_int_equal(ng_vault_open(&v, store, &s), NG_OK);
    expect_entry(v, "k", "before");
    ng_vault_close(v);
    assert_int_equal(ng_vault_store_redis(&st, "redis://127.0.0.1:1", redis_key, 200), NG_ERR_UNAVAILABLE);
    assert_int_equal(ng_vault_store_redis(&st, "http://127.0.0.1", redis_key, 200), NG_ERR_PARSE);
}

static void
test_redis_urls(void **state)
{
    ng_redis_url u;
    static const char *const bad[] = {"",
                                      "redis://",
                                      "redis://:6379",
                                      "redis://host:0",
                                      "redis://host:65536",
                                      "redis://host:12x",
                                      "redis://host/db",
                                      "redis://user:pw@host",
                                      "redis://[::1",
                                      "unix:",
                                      "unix:/x?db=",
                                      "unix:/x?foo=1",
                                      "tcp://host",
                                      NULL};
    int i;

    (void)state;
    assert_int_equal(ng_redis_parse_url(&u, "redis://127.0.0.1"), NG_OK);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(ng_redis_parse_url(&u, "redis://[::1]:7000/3"), NG_OK);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 3);
    assert_int_equal(ng_redis_parse_url(&u, "unix:/run/r.sock?db=2"), NG_OK);
    assert_string_equal(u.path, "/run/r.sock");
    assert_string_equal(u.host, "");
    assert_int_equal(u.db, 2);
    for (i = 0; bad[i] != NULL; i++)
        if (ng_redis_parse_url(&u, bad[i]) != NG_ERR_PARSE)
            fail_msg("accepted redis url \"%s\"", bad[i]);
}

static int
start_redis(void **state)
{
    (void)state;
    use_redis = 1;
    return redis_server_start(&redis, NULL);
}

static int
stop_redis(void **state)
{
    (void)state;
    redis_server_stop(&redis);
    return 0;
}

#define BOTH(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_round_trip),
        BOTH(test_stamp),
        BOTH(test_wrong_key_and_passphrase),
        BOTH(test_every_byte_and_truncation),
        BOTH(test_two_writers),
        BOTH(test_killed_writer),
        BOTH(test_dropped_entry),
        BOTH(test_hostile_limits_and_sizes),
        BOTH(test_arena_churn),
        BOTH(test_two_writers_passphrase),
    };
    const struct CMUnitTest redis_only[] = {
        BOTH(test_redis_down),
        cmocka_unit_test(test_redis_urls),
    };
    int failed;

    if (sodium_init() < 0)
        return 1;
    failed = cmocka_run_group_tests_name("vault, file form", tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("vault, redis form", tests, start_redis, stop_redis);
    failed += cmocka_run_group_tests_name("vault, redis only", redis_only, start_redis, stop_redis);
    return failed;
}

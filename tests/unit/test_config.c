/*
 * The configuration: defaults, the example files in config/ and the
 * generated example, comments, every error path (table-driven over the
 * schema, so a new field is covered without a new test), environment
 * overrides, path resolution, docs/config.md against the schema, and
 * `noisegate config` through the real binary (NG_BIN, skipped without it).
 *
 * Every test runs in its own temporary directory, which is the working
 * directory while it runs; the environment is cleared of every
 * configuration variable before and after each test.
 */
/* realpath is XSI. */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
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
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "ng_config.h"

extern char **environ;

#define MIB ((size_t)1024 * 1024)

/* The repository (config/, docs/): NG_SRC_DIR, else where `make test` runs us. */
static char src_dir[PATH_MAX];
static char start_dir[PATH_MAX];
static char tmp_dir[PATH_MAX];
static char errbuf[NG_CONFIG_ERR_BYTES];

static const ng_config_field *fields;
static size_t nfields;

/* Variables read elsewhere (the vault's secrets, the CLI's file); they must never be taken for fields. */
static const char *const secret_vars[] = {"NOISEGATE_VAULT_KEY", "NOISEGATE_VAULT_PASSPHRASE", "NOISEGATE_CONFIG"};

static void
clear_env(void)
{
    size_t i;

    for (i = 0; i < nfields; i++)
        unsetenv(fields[i].env);
    for (i = 0; i < sizeof secret_vars / sizeof secret_vars[0]; i++)
        unsetenv(secret_vars[i]);
}

static int
setup(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "%s/ngconfig-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(tmp_dir) == NULL || chdir(tmp_dir) != 0)
        return -1;
    /* Compare against the symlink-free name the loader computes. */
    if (getcwd(tmp_dir, sizeof tmp_dir) == NULL)
        return -1;
    clear_env();
    return 0;
}

static int
teardown(void **state)
{
    char cmd[PATH_MAX + 16];

    (void)state;
    clear_env();
    if (chdir(start_dir) != 0)
        return -1;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void
write_text(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void
write_str(const char *path, const char *text)
{
    write_text(path, text, strlen(text));
}

/* Reads a whole small file into a malloc'd, NUL-terminated string. */
static char *
read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        print_error("cannot open %s: %s\n", path, strerror(errno));
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* Loads path and returns the code; the message is in errbuf. */
static ng_err
load(ng_config *cfg, const char *path)
{
    ng_err err = ng_config_load(cfg, path, errbuf, sizeof errbuf);
    size_t i;

    if (err) {
        /* A failed load leaves nothing behind to free or to use by mistake. */
        for (i = 0; i < sizeof *cfg; i++)
            assert_int_equal(((unsigned char *)cfg)[i], 0);
    }
    return err;
}

static void
expect_ok(const char *text)
{
    ng_config cfg;

    write_str("c.json", text);
    if (load(&cfg, "c.json") != NG_OK)
        fail_msg("refused %s\n  with %s", text, errbuf);
    ng_config_free(&cfg);
}

/* The file text is refused with exactly this message. */
static void
expect_error(const char *text, ng_err code, const char *msg)
{
    ng_config cfg;
    ng_err err;

    write_str("c.json", text);
    err = load(&cfg, "c.json");
    if (err != code || strcmp(errbuf, msg) != 0)
        fail_msg("for %.200s\n  expected %d \"%s\"\n  got      %d \"%s\"", text, code, msg, err, errbuf);
}

/* c.json is refused with a message that starts with prefix and contains part. */
static void
expect_shape(const char *prefix, const char *part)
{
    ng_config cfg;
    ng_err err;

    err = load(&cfg, "c.json");
    if (err != NG_ERR_PARSE || strncmp(errbuf, prefix, strlen(prefix)) != 0 || strstr(errbuf, part) == NULL ||
        strchr(errbuf, '\n') != NULL)
        fail_msg("expected a message starting \"%s\" containing \"%s\"\n  got %d \"%s\"", prefix, part, err, errbuf);
}

static const ng_config_field *
field(const char *path)
{
    size_t i;

    for (i = 0; i < nfields; i++)
        if (strcmp(fields[i].path, path) == 0)
            return &fields[i];
    fail_msg("no field %s", path);
    return NULL;
}

/* Writes c.json setting one field to the JSON text value. */
static void
write_field(const char *path, const ng_config_field *f, const char *value)
{
    const char *dot = strchr(f->path, '.');
    FILE *out = fopen(path, "w");

    assert_non_null(out);
    if (dot)
        fprintf(out, "{\"%.*s\": {\"%s\": %s}}\n", (int)(dot - f->path), f->path, dot + 1, value);
    else
        fprintf(out, "{\"%s\": %s}\n", f->path, value);
    assert_int_equal(fclose(out), 0);
}

static char *
describe(const ng_config_field *f)
{
    static char buf[256];

    assert_int_equal(ng_config_describe(f, buf, sizeof buf), NG_OK);
    return buf;
}

static int
is_list(const ng_config_field *f)
{
    return f->type == NG_CONFIG_INT_LIST || f->type == NG_CONFIG_NET_LIST || f->type == NG_CONFIG_REDIS_LIST;
}

/* The effective configuration as jansson sees the dump. */
static json_t *
dump_json(const ng_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    json_error_t jerr;
    json_t *root;

    assert_non_null(mem);
    assert_int_equal(ng_config_dump(cfg, mem), NG_OK);
    assert_int_equal(fclose(mem), 0);
    root = json_loadb(text, len, 0, &jerr);
    if (root == NULL)
        fail_msg("dump is not JSON: %s\n%s", jerr.text, text);
    free(text);
    return root;
}

static char *
dump_text(const ng_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);

    assert_non_null(mem);
    assert_int_equal(ng_config_dump(cfg, mem), NG_OK);
    assert_int_equal(fclose(mem), 0);
    return text;
}

static json_t *
dumped_value(json_t *root, const ng_config_field *f)
{
    const char *dot = strchr(f->path, '.');
    char section[64];
    json_t *v;

    if (dot == NULL)
        return json_object_get(root, f->path);
    snprintf(section, sizeof section, "%.*s", (int)(dot - f->path), f->path);
    v = json_object_get(json_object_get(root, section), dot + 1);
    assert_non_null(v);
    return v;
}

static void
test_defaults(void **state)
{
    ng_config cfg, loaded;
    char *a, *b;

    (void)state;
    assert_int_equal(ng_config_defaults(&cfg), NG_OK);
    assert_string_equal(cfg.data_dir, "/var/lib/noisegate");
    assert_string_equal(cfg.public_url, "http://127.0.0.1:8080");
    assert_string_equal(cfg.listen.address, "127.0.0.1");
    assert_int_equal(cfg.listen.port, 8080);
    assert_int_equal(cfg.listen.max_body, 1048576);
    assert_int_equal(cfg.listen.timeout_s, 30);
    assert_int_equal(cfg.listen.threads, 0);
    assert_string_equal(cfg.admin.socket, "/var/lib/noisegate/admin.sock");
    assert_string_equal(cfg.admin.address, "127.0.0.1");
    assert_int_equal(cfg.admin.port, 0);
    assert_string_equal(cfg.admin.token_file, "/var/lib/noisegate/admin.token");
    assert_int_equal(cfg.vault.store, NG_CONFIG_VAULT_STORE_FILE);
    assert_string_equal(cfg.vault.path, "/var/lib/noisegate/vault.ngv");
    assert_string_equal(cfg.vault.redis_key, "noisegate:vault");
    assert_int_equal(cfg.vault.master_key, NG_CONFIG_MASTER_KEY_FILE);
    assert_string_equal(cfg.vault.key_file, "/var/lib/noisegate/vault.key");
    assert_int_equal(cfg.vault.argon2_ops, 0);
    assert_int_equal(cfg.vault.argon2_mem_mib, 0);
    assert_string_equal(cfg.redis.url, "");
    assert_int_equal(cfg.redis.timeout_ms, 2000);
    assert_int_equal(cfg.redis.appendfsync, NG_CONFIG_APPENDFSYNC_EVERYSEC);
    assert_int_equal(cfg.outbox.store, NG_CONFIG_OUTBOX_STORE_REDIS);
    assert_string_equal(cfg.outbox.http_url, "");
    assert_int_equal(cfg.outbox.http_timeout_ms, 5000);
    assert_int_equal(cfg.delivery.timeout_ms, 10000);
    assert_int_equal(cfg.delivery.retry_schedule_len, 6);
    assert_int_equal(cfg.delivery.retry_schedule_s[0], 5);
    assert_int_equal(cfg.delivery.retry_schedule_s[1], 300);
    assert_int_equal(cfg.delivery.retry_schedule_s[2], 1800);
    assert_int_equal(cfg.delivery.retry_schedule_s[3], 7200);
    assert_int_equal(cfg.delivery.retry_schedule_s[4], 18000);
    assert_int_equal(cfg.delivery.retry_schedule_s[5], 36000);
    assert_int_equal(cfg.delivery.max_attempts, 8);
    assert_int_equal(cfg.delivery.concurrency_per_endpoint, 8);
    assert_int_equal(cfg.delivery.allow_private_len, 0);
    assert_int_equal(cfg.poll.interval_ms, 1000);
    assert_int_equal(cfg.poll.max_interval_ms, 30000);
    assert_int_equal(cfg.poll.batch, 100);
    assert_int_equal(cfg.poll.peer_redis_len, 0);
    assert_int_equal(cfg.messages.max_body, 1048576);
    assert_int_equal(cfg.messages.default_ttl_s, 86400);
    assert_int_equal(cfg.messages.max_ttl_s, 604800);
    assert_int_equal(cfg.messages.clock_skew_s, 300);
    assert_int_equal(cfg.webhooks.tolerance_s, 300);
    assert_int_equal(cfg.log.level, NG_CONFIG_LOG_INFO);
    assert_int_equal(cfg.log.format, NG_CONFIG_LOG_JSON);

    /* No file and no environment: the same as the defaults. */
    assert_int_equal(load(&loaded, NULL), NG_OK);
    a = dump_text(&cfg);
    b = dump_text(&loaded);
    assert_string_equal(a, b);
    free(a);
    free(b);
    ng_config_free(&loaded);
    ng_config_free(&cfg);
    /* Freeing twice, or a zeroed struct, does nothing. */
    ng_config_free(&cfg);
    ng_config_free(NULL);
}

/* The table itself: names, environment variables, describable, no secret among them. */
static void
test_schema(void **state)
{
    char env[128], buf[256];
    size_t i, j, k;

    (void)state;
    assert_true(nfields >= 39);
    for (i = 0; i < nfields; i++) {
        const ng_config_field *f = &fields[i];

        snprintf(env, sizeof env, "NOISEGATE_%s", f->path);
        for (k = 10; env[k]; k++)
            env[k] = env[k] == '.' ? '_' : (char)(env[k] >= 'a' && env[k] <= 'z' ? env[k] - 32 : env[k]);
        assert_string_equal(f->env, env);
        for (j = 0; j < nfields; j++)
            if (j != i) {
                assert_string_not_equal(f->path, fields[j].path);
                assert_string_not_equal(f->env, fields[j].env);
            }
        for (k = 0; k < sizeof secret_vars / sizeof secret_vars[0]; k++)
            assert_string_not_equal(f->env, secret_vars[k]);
        assert_non_null(f->help);
        assert_true(strlen(f->help) > 10);
        (void)describe(f);
        /* Exactly enough room, then one byte less. */
        assert_int_equal(ng_config_describe(f, buf, strlen(describe(f)) + 1), NG_OK);
        assert_string_equal(buf, describe(f));
        assert_int_equal(ng_config_describe(f, buf, strlen(describe(f))), NG_ERR_BUFFER_TOO_SMALL);
        assert_int_equal(strlen(buf), strlen(describe(f)) - 1);
    }
    assert_int_equal(ng_config_describe(field("listen.port"), buf, 0), NG_ERR_BUFFER_TOO_SMALL);
}

/* A file of the repository: dir/name under src_dir. */
static void
src_path(char *buf, size_t len, const char *dir, const char *name)
{
    int n = snprintf(buf, len, "%s/%s/%s", src_dir, dir, name);

    assert_true(n > 0 && (size_t)n < len);
}

static void
test_example_files(void **state)
{
    static const char *const names[] = {"single.json", "two-gateways-a.json", "two-gateways-b.json",
                                        "http-outbox.json"};
    ng_config cfg[4];
    char path[PATH_MAX + 64], dir[PATH_MAX + 64], data[PATH_MAX], want[PATH_MAX + 64];
    size_t i;

    (void)state;
    for (i = 0; i < 4; i++) {
        src_path(path, sizeof path, "config", names[i]);
        if (load(&cfg[i], path) != NG_OK)
            fail_msg("%s: %s", path, errbuf);
    }
    src_path(dir, sizeof dir, "config", "");
    assert_non_null(realpath(dir, data));

    assert_string_equal(cfg[0].listen.address, "127.0.0.1");
    assert_int_equal(cfg[0].listen.port, 8080);
    assert_string_equal(cfg[0].redis.url, "");
    /* data_dir is relative to the file's directory, resolved without "..". */
    assert_non_null(strrchr(data, '/'));
    *strrchr(data, '/') = 0;
    snprintf(want, sizeof want, "%s/data/single", data);
    assert_string_equal(cfg[0].data_dir, want);

    assert_int_equal(cfg[1].listen.port, 8081);
    assert_int_equal(cfg[2].listen.port, 8082);
    assert_string_equal(cfg[1].public_url, "http://127.0.0.1:8081");
    assert_string_equal(cfg[2].public_url, "http://127.0.0.1:8082");
    assert_string_not_equal(cfg[1].data_dir, cfg[2].data_dir);
    assert_string_not_equal(cfg[1].vault.path, cfg[2].vault.path);
    assert_string_not_equal(cfg[1].admin.socket, cfg[2].admin.socket);
    for (i = 1; i <= 2; i++) {
        assert_int_equal(cfg[i].delivery.allow_private_len, 1);
        assert_string_equal(cfg[i].delivery.allow_private[0], "127.0.0.1");
    }

    assert_int_equal(cfg[3].outbox.store, NG_CONFIG_OUTBOX_STORE_HTTP);
    assert_true(strncmp(cfg[3].outbox.http_url, "http://127.0.0.1:", 17) == 0);
    for (i = 0; i < 4; i++)
        ng_config_free(&cfg[i]);
}

static char *
example_text(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);

    assert_non_null(mem);
    assert_int_equal(ng_config_example(mem), NG_OK);
    assert_int_equal(fclose(mem), 0);
    return text;
}

/* The generated reference parses, equals the defaults, and explains every field. */
static void
test_generated_example(void **state)
{
    ng_config def, ex;
    char *text = example_text(), *a, *b, key[128];
    size_t i;

    (void)state;
    write_str("example.json", text);
    if (load(&ex, "example.json") != NG_OK)
        fail_msg("example refused: %s", errbuf);
    assert_int_equal(ng_config_defaults(&def), NG_OK);
    a = dump_text(&def);
    b = dump_text(&ex);
    assert_string_equal(a, b);
    for (i = 0; i < nfields; i++) {
        const char *dot = strchr(fields[i].path, '.');

        snprintf(key, sizeof key, "\"%s\": %s", dot ? dot + 1 : fields[i].path, fields[i].def);
        if (strstr(text, key) == NULL || strstr(text, fields[i].env) == NULL || strstr(text, fields[i].help) == NULL)
            fail_msg("the example does not explain %s (%s)", fields[i].path, key);
    }
    free(a);
    free(b);
    free(text);
    ng_config_free(&def);
    ng_config_free(&ex);
}

/* What dump prints loads back to the same configuration. */
static void
test_dump_round_trip(void **state)
{
    ng_config a, b;
    char *ta, *tb;

    (void)state;
    write_str("c.json",
              "{\"data_dir\": \"state\", \"public_url\": \"https://gw.example.com/x/\","
              " \"listen\": {\"address\": \"::\", \"port\": 9000},"
              " \"admin\": {\"socket\": \"\", \"port\": 9001},"
              " \"vault\": {\"store\": \"redis\", \"master_key\": \"passphrase\", \"argon2_ops\": 3},"
              " \"redis\": {\"url\": \"unix:redis.sock?db=2\"},"
              " \"delivery\": {\"retry_schedule_s\": [1, 1, 2], \"allow_private\": [\"10.0.0.0/8\", \"::1\"]},"
              " \"poll\": {\"peer_redis\": [\"redis://[::1]:6380/2\", \"redis://redis.internal\"]},"
              " \"log\": {\"level\": \"debug\", \"format\": \"text\"}}");
    if (load(&a, "c.json") != NG_OK)
        fail_msg("%s", errbuf);
    ta = dump_text(&a);
    write_str("dump.json", ta);
    if (load(&b, "dump.json") != NG_OK)
        fail_msg("%s", errbuf);
    tb = dump_text(&b);
    assert_string_equal(ta, tb);
    assert_string_equal(a.admin.socket, "");
    assert_int_equal(a.vault.master_key, NG_CONFIG_MASTER_KEY_PASSPHRASE);
    assert_int_equal(a.log.level, NG_CONFIG_LOG_DEBUG);
    assert_int_equal(a.delivery.retry_schedule_len, 3);
    assert_int_equal(b.poll.peer_redis_len, 2);
    assert_string_equal(b.poll.peer_redis[0], "redis://[::1]:6380/2");
    assert_string_equal(b.poll.peer_redis[1], "redis://redis.internal");
    free(ta);
    free(tb);
    ng_config_free(&a);
    ng_config_free(&b);
}

static void
test_comments(void **state)
{
    ng_config cfg;

    (void)state;
    write_str("c.json", "// a comment before the object, with \"quotes\" and { braces\n"
                        "{ // after a brace\r\n"
                        "    \"vault\": {\n"
                        "        \"redis_key\": \"a//b \\\" // still in the string\", // a comment\n"
                        "        \"path\": \"x\" //no space\n"
                        "    },\n"
                        "    // \"listen\": {\"port\": 1},\n"
                        "    \"public_url\": \"http://host//path//\"\n"
                        "} // no newline at the end");
    if (load(&cfg, "c.json") != NG_OK)
        fail_msg("%s", errbuf);
    assert_string_equal(cfg.vault.redis_key, "a//b \" // still in the string");
    assert_int_equal(cfg.listen.port, 8080);
    assert_string_equal(cfg.public_url, "http://host//path");
    ng_config_free(&cfg);

    /* Blanked comments keep lines and columns where they were. */
    expect_error("// one\n// two\n  {\"a\": x}\n", NG_ERR_PARSE, "c.json:3:9: invalid JSON: invalid token near 'x'");
    expect_error("{\"listen\": {\"port\": 1} // fine\n, \"x\": 1 /* not a comment */}\n", NG_ERR_PARSE,
                 "c.json:2:10: invalid JSON: '}' expected near '/'");
    /* A single slash is not a comment either. */
    expect_error("{} /\n", NG_ERR_PARSE, "c.json:1:4: invalid JSON: end of file expected near '/'");
}

/* Wrong JSON types, for every field: the same message shape everywhere. */
static void
test_wrong_types(void **state)
{
    static const struct {
        const char *json, *got;
    } for_numbers[] = {{"\"80a\"", "\"80a\""},
                       {"3.5", "3.5"},
                       {"80.0", "80.0"},
                       {"null", "null"},
                       {"{}", "an object"},
                       {"true", "true"},
                       {"[1]", "an array of 1 item"}},
      for_text[] = {{"42", "42"},       {"null", "null"}, {"{}", "an object"}, {"[]", "an empty array"},
                    {"false", "false"}, {"1.5", "1.5"}},
      for_lists[] = {{"\"5\"", "\"5\""}, {"5", "5"}, {"{}", "an object"}, {"null", "null"}, {"true", "true"}};
    char msg[512];
    size_t i, j;

    (void)state;
    for (i = 0; i < nfields; i++) {
        const ng_config_field *f = &fields[i];
        int list = is_list(f);
        size_t n = f->type == NG_CONFIG_INT ? sizeof for_numbers / sizeof for_numbers[0]
                   : list                   ? sizeof for_lists / sizeof for_lists[0]
                                            : sizeof for_text / sizeof for_text[0];

        for (j = 0; j < n; j++) {
            const char *json = f->type == NG_CONFIG_INT ? for_numbers[j].json
                               : list                   ? for_lists[j].json
                                                        : for_text[j].json;
            const char *got = f->type == NG_CONFIG_INT ? for_numbers[j].got : list ? for_lists[j].got : for_text[j].got;
            char *text;

            write_field("c.json", f, json);
            text = read_text("c.json");
            text[strlen(text) - 1] = 0;
            snprintf(msg, sizeof msg, "c.json: %s: expected %s, got %s", f->path, describe(f), got);
            expect_error(text, NG_ERR_PARSE, msg);
            free(text);
        }
    }
}

/* "[x, x, ...]" with n items. */
static char *
repeat_json(const char *item, size_t n)
{
    size_t len = n * (strlen(item) + 2) + 3, used = 1, i;
    char *s = malloc(len);

    assert_non_null(s);
    s[0] = '[';
    for (i = 0; i < n; i++)
        used += (size_t)snprintf(s + used, len - used, "%s%s", i ? ", " : "", item);
    snprintf(s + used, len - used, "]");
    return s;
}

/* "\"aaa...\"" of n bytes. */
static char *
long_string(size_t n)
{
    char *s = malloc(n + 3);

    assert_non_null(s);
    s[0] = '"';
    memset(s + 1, 'a', n);
    s[n + 1] = '"';
    s[n + 2] = 0;
    return s;
}

static void
expect_field_ok(const ng_config_field *f, const char *value)
{
    ng_config cfg;

    write_field("c.json", f, value);
    if (load(&cfg, "c.json") != NG_OK)
        fail_msg("%s = %.80s refused: %s", f->path, value, errbuf);
    ng_config_free(&cfg);
}

static void
expect_long_data_dir(const char *value)
{
    FILE *out = fopen("c.json", "w");
    ng_config cfg;

    assert_non_null(out);
    fprintf(out,
            "{\"data_dir\": %s, \"admin\": {\"socket\": \"\", \"token_file\": \"/t\"},"
            " \"vault\": {\"path\": \"/v\", \"key_file\": \"/k\"}}",
            value);
    assert_int_equal(fclose(out), 0);
    if (load(&cfg, "c.json") != NG_OK)
        fail_msg("a data_dir of %zu bytes refused: %s", strlen(value) - 2, errbuf);
    assert_int_equal(strlen(cfg.data_dir), strlen(value) - 2);
    ng_config_free(&cfg);
    /* With the default relative paths under it, the first one is named. */
    write_str("c.json", "{\"data_dir\": \"/0123456789012345678901234567890123456789012345678901234567890123456789"
                        "0123456789012345678901234567890123456789\"}");
    expect_shape("c.json: admin.socket: expected a path of at most 107 bytes once resolved, got", "(122 bytes)");
}

static void
expect_field_bad(const ng_config_field *f, const char *value)
{
    char prefix[128];

    write_field("c.json", f, value);
    snprintf(prefix, sizeof prefix, "c.json: %s", f->path);
    expect_shape(prefix, ": expected ");
}

static const char *const good_urls[] = {"\"http://a\"",
                                        "\"https://gw-1.example.com\"",
                                        "\"http://127.0.0.1:1\"",
                                        "\"https://[::1]:8443/base/\"",
                                        "\"http://h:65535/a/b~c-d_e.f%20\"",
                                        "\"http://X.Example.COM\""};
static const char *const bad_urls[] = {"\"ftp://x\"",
                                       "\"http://\"",
                                       "\"http://a b\"",
                                       "\"http://user@h\"",
                                       "\"http://h:0\"",
                                       "\"http://h:\"",
                                       "\"http://h:65536\"",
                                       "\"http://h?q=1\"",
                                       "\"http://h/#f\"",
                                       "\"http://[::1\"",
                                       "\"HTTP://x\"",
                                       "\"http://-h\"",
                                       "\"http://h..x\"",
                                       "\"http://[1.2.3.4]\"",
                                       "\"http://h/\\u00e9\"",
                                       "\"http:/h\"",
                                       "\"http://h:80:80\"",
                                       "\"https://h:8x\"",
                                       "\"//h\"",
                                       "\"h\""};
static const char *const good_ips[] = {"\"127.0.0.1\"", "\"0.0.0.0\"", "\"::\"",
                                       "\"::1\"",       "\"fe80::1\"", "\"2001:db8::ffff:1.2.3.4\""};
static const char *const bad_ips[] = {"\"1.2.3\"",    "\"localhost\"", "\"::1%lo\"", "\"[::1]\"",     "\"\"",
                                      "\"1.2.3.4 \"", "\"1.2.3.256\"", "\"::1::\"",  "\"1.2.3.4/32\""};
static const char *const good_redis[] = {"\"\"",
                                         "\"redis://127.0.0.1:6379\"",
                                         "\"redis://[::1]:6379/15\"",
                                         "\"redis://cache.example:7000/0\"",
                                         "\"unix:/run/redis.sock\"",
                                         "\"unix:redis.sock?db=3\""};
static const char *const bad_redis[] = {"\"redis://h\"",       "\"redis://h:0\"",     "\"redis://h:6379/x\"",
                                        "\"redis://h:6379/\"", "\"rediss://h:6379\"", "\"unix:\"",
                                        "\"unix:?db=1\"",      "\"unix:/s?db=\"",     "\"unix:/s?x=1\"",
                                        "\"http://h:1\"",      "\"redis://:pw@h:1\"", "\"redis://h:1/99999999999\""};
static const char *const good_nets[] = {"[]", "[\"127.0.0.1\"]", "[\"0.0.0.0/0\", \"::/0\"]",
                                        "[\"10.0.0.0/8\", \"192.168.1.128/25\", \"172.16.0.0/12\"]",
                                        "[\"fe80::/10\", \"2001:db8::/32\", \"::1/128\", \"1.2.3.4/32\"]"};
static const char *const bad_nets[] = {
    "[\"10.0.0.1/8\"]",  "[\"1.2.3.4/33\"]", "[\"::1/129\"]",   "[\"1.2.3\"]", "[5]",
    "[\"10.0.0.0/8x\"]", "[\"fe80::1%lo\"]", "[\"10.0.0.0/\"]", "[\"/8\"]",    "[\"::1/64\"]",
    "[\"10.0.0.0/-8\"]", "[null]",           "[\"\"]"};
/* A peer's URL may leave the port out, so a listed server may too; no unix: socket, nothing else in the URL. */
static const char *const good_redis_lists[] = {
    "[]", "[\"redis://127.0.0.1:6379\"]", "[\"redis://[::1]:6380/2\", \"redis://redis.internal:6379/0\"]",
    "[\"redis://redis.internal\", \"redis://redis.internal/3\", \"redis://10.0.0.7:7000\"]"};
static const char *const bad_redis_lists[] = {"[\"\"]",
                                              "[\"unix:/x.sock\"]",
                                              "[\"redis://user:pw@h:1\"]",
                                              "[\"http://h/\"]",
                                              "[\"redis://\"]",
                                              "[5]",
                                              "[null]",
                                              "[[\"redis://h:1\"]]",
                                              "[\"redis://127.0.0.1:6379\", \"unix:/x.sock\"]",
                                              "[\"redis://h:0\"]",
                                              "[\"redis://h:6379/\"]",
                                              "[\"redis://h:6379/x\"]",
                                              "[\"redis://h:6379?db=1\"]",
                                              "[\"rediss://h:6379\"]",
                                              "[\"REDIS://h:6379\"]",
                                              "[\"redis://h:1,redis://g:1\"]"};

#define LOOP(arr, fn, f)                                                                                               \
    do {                                                                                                               \
        size_t k_;                                                                                                     \
        for (k_ = 0; k_ < sizeof(arr) / sizeof((arr)[0]); k_++)                                                        \
            fn(f, (arr)[k_]);                                                                                          \
    } while (0)

/* Out-of-range and malformed values for every field, and the edges that must pass. */
static void
test_ranges(void **state)
{
    static const struct {
        const char *var, *value;
    } permissive[] = {
        {"NOISEGATE_POLL_INTERVAL_MS", "10"},
        {"NOISEGATE_POLL_MAX_INTERVAL_MS", "3600000"},
        {"NOISEGATE_MESSAGES_DEFAULT_TTL_S", "1"},
        {"NOISEGATE_MESSAGES_MAX_TTL_S", "2592000"},
        {"NOISEGATE_REDIS_URL", "redis://127.0.0.1:6379"},
        {"NOISEGATE_OUTBOX_HTTP_URL", "http://127.0.0.1:8090/o"},
    };
    char value[64], *s;
    size_t i, j;

    (void)state;
    for (i = 0; i < nfields; i++) {
        const ng_config_field *f = &fields[i];
        const char *const *c;

        /* Every edge alone must load: the other fields of each cross-field rule give way. */
        for (j = 0; j < sizeof permissive / sizeof permissive[0]; j++)
            if (strcmp(permissive[j].var, f->env) == 0)
                unsetenv(permissive[j].var);
            else
                setenv(permissive[j].var, permissive[j].value, 1);
        switch (f->type) {
        case NG_CONFIG_INT:
            snprintf(value, sizeof value, "%ld", f->min);
            expect_field_ok(f, value);
            snprintf(value, sizeof value, "%ld", f->max);
            expect_field_ok(f, value);
            snprintf(value, sizeof value, "%ld", f->max + 1);
            expect_field_bad(f, value);
            expect_field_bad(f, "-1");
            expect_field_bad(f, "9223372036854775807");
            expect_field_bad(f, "-9223372036854775807");
            if (f->flags & NG_CONFIG_ZERO_OK)
                expect_field_ok(f, "0");
            if (f->min - 1 > 0 || (f->min - 1 == 0 && !(f->flags & NG_CONFIG_ZERO_OK))) {
                snprintf(value, sizeof value, "%ld", f->min - 1);
                expect_field_bad(f, value);
            }
            break;
        case NG_CONFIG_ENUM:
            for (c = f->choices; *c; c++) {
                snprintf(value, sizeof value, "\"%s\"", *c);
                expect_field_ok(f, value);
                /* Names are exact: no case folding, no spaces. */
                snprintf(value, sizeof value, "\"%c%s\"", (*c)[0] - 32, *c + 1);
                expect_field_bad(f, value);
                snprintf(value, sizeof value, "\" %s\"", *c);
                expect_field_bad(f, value);
            }
            expect_field_bad(f, "\"\"");
            break;
        case NG_CONFIG_STRING:
        case NG_CONFIG_PATH:
            /* The longest path is absolute, or resolving it would make it longer still. */
            s = long_string((f->flags & NG_CONFIG_SOCKET) ? NG_CONFIG_MAX_SOCKET_PATH : (size_t)f->max);
            if (f->type == NG_CONFIG_PATH)
                s[1] = '/';
            if (f->type == NG_CONFIG_PATH && !(f->flags & NG_CONFIG_IN_DATA_DIR)) {
                /* The paths under a data_dir this long would be too long themselves, unless absolute. */
                expect_long_data_dir(s);
            } else {
                expect_field_ok(f, s);
            }
            free(s);
            if (f->flags & NG_CONFIG_SOCKET) {
                s = long_string(NG_CONFIG_MAX_SOCKET_PATH + 1);
                s[1] = '/';
                expect_field_bad(f, s);
                free(s);
            }
            s = long_string((size_t)f->max + 1);
            expect_field_bad(f, s);
            free(s);
            if (f->min > 0)
                expect_field_bad(f, "\"\"");
            else
                expect_field_ok(f, "\"\"");
            break;
        case NG_CONFIG_URL:
            LOOP(good_urls, expect_field_ok, f);
            LOOP(bad_urls, expect_field_bad, f);
            s = long_string((size_t)f->max + 1);
            expect_field_bad(f, s);
            free(s);
            break;
        case NG_CONFIG_IP:
            LOOP(good_ips, expect_field_ok, f);
            LOOP(bad_ips, expect_field_bad, f);
            break;
        case NG_CONFIG_REDIS_URL:
            LOOP(good_redis, expect_field_ok, f);
            LOOP(bad_redis, expect_field_bad, f);
            break;
        case NG_CONFIG_INT_LIST:
            snprintf(value, sizeof value, "%ld", f->item_max);
            s = repeat_json(value, (size_t)f->max);
            expect_field_ok(f, s);
            free(s);
            s = repeat_json(value, (size_t)f->max + 1);
            expect_field_bad(f, s);
            free(s);
            snprintf(value, sizeof value, "[%ld, %ld]", f->item_min, f->item_max);
            expect_field_ok(f, value);
            snprintf(value, sizeof value, "[%ld]", f->item_min - 1);
            expect_field_bad(f, value);
            snprintf(value, sizeof value, "[%ld]", f->item_max + 1);
            expect_field_bad(f, value);
            expect_field_bad(f, "[\"5\"]");
            expect_field_bad(f, "[1.5]");
            expect_field_bad(f, "[null]");
            if (f->min > 0)
                expect_field_bad(f, "[]");
            if (f->flags & NG_CONFIG_NONDECREASING)
                expect_field_bad(f, "[5, 300, 299]");
            break;
        case NG_CONFIG_NET_LIST:
            LOOP(good_nets, expect_field_ok, f);
            LOOP(bad_nets, expect_field_bad, f);
            s = repeat_json("\"::1\"", (size_t)f->max);
            expect_field_ok(f, s);
            free(s);
            s = repeat_json("\"::1\"", (size_t)f->max + 1);
            expect_field_bad(f, s);
            free(s);
            break;
        case NG_CONFIG_REDIS_LIST:
            LOOP(good_redis_lists, expect_field_ok, f);
            LOOP(bad_redis_lists, expect_field_bad, f);
            s = repeat_json("\"redis://127.0.0.1:6379\"", (size_t)f->max);
            expect_field_ok(f, s);
            free(s);
            s = repeat_json("\"redis://127.0.0.1:6379\"", (size_t)f->max + 1);
            expect_field_bad(f, s);
            free(s);
            break;
        }
    }
}

/* Exact messages for a representative set. */
static void
test_messages(void **state)
{
    char msg[512], *s;

    (void)state;
    expect_error("{\"listen\": {\"port\": \"80a\"}}", NG_ERR_PARSE,
                 "c.json: listen.port: expected an integer 1-65535, got \"80a\"");
    expect_error("{\"listen\": {\"port\": 3.5}}", NG_ERR_PARSE,
                 "c.json: listen.port: expected an integer 1-65535, got 3.5");
    expect_error("{\"listen\": {\"port\": null}}", NG_ERR_PARSE,
                 "c.json: listen.port: expected an integer 1-65535, got null");
    expect_error("{\"listen\": {\"port\": 65536}}", NG_ERR_PARSE,
                 "c.json: listen.port: expected an integer 1-65535, got 65536");
    expect_error("{\"listen\": {\"address\": {}}}", NG_ERR_PARSE,
                 "c.json: listen.address: expected an IPv4 or IPv6 address, got an object");
    expect_error("{\"listen\": {\"address\": \"localhost\"}}", NG_ERR_PARSE,
                 "c.json: listen.address: expected an IPv4 or IPv6 address, got \"localhost\"");
    expect_error("{\"vault\": {\"argon2_mem_mib\": 7}}", NG_ERR_PARSE,
                 "c.json: vault.argon2_mem_mib: expected an integer 0 or 8-4096, got 7");
    expect_error("{\"vault\": {\"store\": \"s3\"}}", NG_ERR_PARSE,
                 "c.json: vault.store: expected one of \"file\", \"redis\", got \"s3\"");
    expect_error("{\"log\": {\"level\": \"verbose\"}}", NG_ERR_PARSE,
                 "c.json: log.level: expected one of \"debug\", \"info\", \"warn\", \"error\", got \"verbose\"");
    expect_error("{\"vault\": {\"redis_key\": \"\"}}", NG_ERR_PARSE,
                 "c.json: vault.redis_key: expected a string of 1-200 bytes, got \"\"");
    expect_error("{\"data_dir\": \"\"}", NG_ERR_PARSE, "c.json: data_dir: expected a path, got \"\"");
    expect_error("{\"public_url\": \"ftp://x\"}", NG_ERR_PARSE,
                 "c.json: public_url: expected an http:// or https:// URL or \"\", got \"ftp://x\"");
    expect_error("{\"redis\": {\"url\": \"redis://h\"}}", NG_ERR_PARSE,
                 "c.json: redis.url: expected \"\", redis://HOST:PORT[/DB] or unix:PATH[?db=N], got \"redis://h\"");
    expect_error("{\"delivery\": {\"retry_schedule_s\": []}}", NG_ERR_PARSE,
                 "c.json: delivery.retry_schedule_s: expected an array of 1-32 integers 1-604800 in non-decreasing "
                 "order, got an empty array");
    expect_error("{\"delivery\": {\"retry_schedule_s\": [5, 0]}}", NG_ERR_PARSE,
                 "c.json: delivery.retry_schedule_s[1]: expected an integer 1-604800, got 0");
    expect_error("{\"delivery\": {\"retry_schedule_s\": [5, 300, 299]}}", NG_ERR_PARSE,
                 "c.json: delivery.retry_schedule_s[2]: expected at least 300 (the item before it; the schedule never "
                 "shrinks), got 299");
    expect_error("{\"delivery\": {\"allow_private\": [\"::1\", \"10.0.0.1/8\"]}}", NG_ERR_PARSE,
                 "c.json: delivery.allow_private[1]: expected an IP address or CIDR with no host bits set (IPv4 or "
                 "IPv6), got \"10.0.0.1/8\"");
    s = repeat_json("\"::1\"", 65);
    snprintf(msg, sizeof msg, "{\"delivery\": {\"allow_private\": %s}}", s);
    expect_error(msg, NG_ERR_PARSE,
                 "c.json: delivery.allow_private: expected an array of 0-64 IP addresses or CIDRs, got an array of 65 "
                 "items");
    free(s);
    expect_error("{\"poll\": {\"peer_redis\": [\"redis://127.0.0.1:6379\", \"unix:/x.sock\"]}}", NG_ERR_PARSE,
                 "c.json: poll.peer_redis[1]: expected a redis://HOST[:PORT][/DB] URL, got \"unix:/x.sock\"");
    expect_error("{\"poll\": {\"peer_redis\": [null]}}", NG_ERR_PARSE,
                 "c.json: poll.peer_redis[0]: expected a redis://HOST[:PORT][/DB] URL, got null");
    s = repeat_json("\"redis://127.0.0.1:6379\"", 17);
    snprintf(msg, sizeof msg, "{\"poll\": {\"peer_redis\": %s}}", s);
    expect_error(msg, NG_ERR_PARSE,
                 "c.json: poll.peer_redis: expected an array of 0-16 redis://HOST[:PORT][/DB] URLs, got an array of 17 "
                 "items");
    free(s);

    /* Values are shown cut to 40 bytes, escaped, with their length. */
    s = long_string(201);
    snprintf(msg, sizeof msg, "{\"vault\": {\"redis_key\": %s}}", s);
    expect_error(msg, NG_ERR_PARSE,
                 "c.json: vault.redis_key: expected at most 200 bytes, got "
                 "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\" (201 bytes)");
    free(s);
    expect_error(
        "{\"listen\": {\"address\": \"1\\u0001\\n\\t\\\"\\\\\\u00e9\\u007f\"}}", NG_ERR_PARSE,
        "c.json: listen.address: expected an IPv4 or IPv6 address, got \"1\\x01\\n\\t\\\"\\\\\\xc3\\xa9\\x7f\"");
}

static void
test_unknown_keys(void **state)
{
    char msg[512];

    (void)state;
    expect_error("{\"listen\": {\"prot\": 80}}", NG_ERR_PARSE,
                 "c.json: listen.prot: unknown key (expected one of: address, port, max_body, timeout_s, threads)");
    expect_error("{\"port\": 80}", NG_ERR_PARSE,
                 "c.json: port: unknown key (expected one of: data_dir, public_url, listen, admin, vault, redis, "
                 "outbox, delivery, poll, messages, webhooks, log)");
    /* The vault's secrets are not configuration, in a file or anywhere. */
    expect_error("{\"vault\": {\"key\": \"00\"}}", NG_ERR_PARSE,
                 "c.json: vault.key: unknown key (expected one of: store, path, redis_key, master_key, key_file, "
                 "argon2_ops, argon2_mem_mib)");
    write_str("c.json", "{\"vault\": {\"passphrase\": \"x\"}}");
    expect_shape("c.json: vault.passphrase: unknown key", "(expected one of: store,");
    /* A dotted key at the top level is not a shortcut for a section. */
    write_str("c.json", "{\"listen.port\": 80}");
    expect_shape("c.json: listen.port: unknown key", "data_dir");
    /* The first unknown key in file order, after the good ones. */
    write_str("c.json", "{\"listen\": {\"port\": 80, \"zzz\": 1, \"aaa\": 2}}");
    expect_shape("c.json: listen.zzz: unknown key", "threads)");
    /* Keys are shown escaped and cut like values. */
    snprintf(msg, sizeof msg,
             "c.json: li\\nst\\x01en: unknown key (expected one of: data_dir, public_url, listen, "
             "admin, vault, redis, outbox, delivery, poll, messages, webhooks, log)");
    expect_error("{\"li\\nst\\u0001en\": 1}", NG_ERR_PARSE, msg);
    /* jansson refuses a key with a NUL byte before we could match its prefix. */
    write_str("c.json", "{\"listen\": {\"port\\u0000x\": 80}}");
    expect_shape("c.json:1:", "invalid JSON: ");
}

static void
test_section_not_object(void **state)
{
    static const struct {
        const char *json, *got;
    } values[] = {{"5", "5"}, {"[]", "an empty array"}, {"\"x\"", "\"x\""}, {"null", "null"}, {"true", "true"}};
    char text[256], msg[256], section[64];
    size_t i, j;

    (void)state;
    for (i = 0; i < nfields; i++) {
        const char *dot = strchr(fields[i].path, '.');

        if (dot == NULL ||
            (i > 0 && strncmp(fields[i - 1].path, fields[i].path, (size_t)(dot - fields[i].path) + 1) == 0))
            continue;
        snprintf(section, sizeof section, "%.*s", (int)(dot - fields[i].path), fields[i].path);
        for (j = 0; j < sizeof values / sizeof values[0]; j++) {
            snprintf(text, sizeof text, "{\"%s\": %s}", section, values[j].json);
            snprintf(msg, sizeof msg, "c.json: %s: expected an object, got %s", section, values[j].got);
            expect_error(text, NG_ERR_PARSE, msg);
        }
        /* An empty section is fine: all defaults. */
        snprintf(text, sizeof text, "{\"%s\": {}}", section);
        expect_ok(text);
    }
}

static void
test_invalid_json(void **state)
{
    (void)state;
    expect_error("{\n  \"listen\": {\n    \"port\": 80,\n  }\n}\n", NG_ERR_PARSE,
                 "c.json:4:3: invalid JSON: string or '}' expected near '}'");
    expect_error("{\"a\": 1,}", NG_ERR_PARSE, "c.json:1:9: invalid JSON: string or '}' expected near '}'");
    expect_error("{\"listen\": {}, \"listen\": {}}", NG_ERR_PARSE,
                 "c.json:1:23: invalid JSON: duplicate object key near '\"listen\"'");
    expect_error("{\"listen\": {\"port\": 99999999999999999999}}", NG_ERR_PARSE,
                 "c.json:1:40: invalid JSON: too big integer near '99999999999999999999'");
    expect_error("{\"data_dir\": \"a\\u0000b\"}", NG_ERR_PARSE,
                 "c.json:1:23: invalid JSON: \\u0000 is not allowed without JSON_ALLOW_NUL near '\"a\\u0000b\"'");
    expect_error("{} {}", NG_ERR_PARSE, "c.json:1:4: invalid JSON: end of file expected near '{'");
    write_text("c.json", "{\"data_dir\": \"\xff\"}", 17);
    expect_shape("c.json:1:", "invalid JSON: ");
    write_str("c.json", "{\"data_dir\": 'x'}");
    expect_shape("c.json:1:", "invalid JSON: ");
}

/* What tests/fuzz/fuzz_config found (its corpus keeps the inputs as regress-*). */
static void
test_fuzz_regressions(void **state)
{
    (void)state;
    /* jansson's message quotes the file: its bytes reached the one-line message unescaped. */
    expect_error("\x7f\"outbox\"", NG_ERR_PARSE, "c.json:1:1: invalid JSON: invalid token near '\\x7f'");
    expect_error("{\"a\": \x1b[2J}", NG_ERR_PARSE, "c.json:1:7: invalid JSON: invalid token near '\\x1b'");
    /* A '?' in data_dir cut a relative unix: socket's path short: the URL is read up to its first '?'. */
    expect_error("{\"data_dir\": \"/srv/d?x\", \"redis\": {\"url\": \"unix:redis.sock\"}}", NG_ERR_PARSE,
                 "c.json: redis.url: expected a unix: path with no '?' once resolved against data_dir, got "
                 "\"unix:/srv/d?x/redis.sock\"");
    expect_ok("{\"data_dir\": \"/srv/d?x\", \"redis\": {\"url\": \"unix:/run/redis.sock?db=1\"}}");
    expect_ok("{\"data_dir\": \"/srv/d?x\"}");
}

static void
test_empty_and_not_object(void **state)
{
    (void)state;
    expect_error("", NG_ERR_PARSE, "c.json: expected a JSON object, got an empty file");
    expect_error(" \n\t\r\n", NG_ERR_PARSE, "c.json: expected a JSON object, got an empty file");
    expect_error("// nothing but a comment\n", NG_ERR_PARSE, "c.json: expected a JSON object, got an empty file");
    expect_error("[]", NG_ERR_PARSE, "c.json: expected a JSON object at the top level, got an empty array");
    expect_error("[{}]", NG_ERR_PARSE, "c.json: expected a JSON object at the top level, got an array of 1 item");
    expect_error("3", NG_ERR_PARSE, "c.json: expected a JSON object at the top level, got 3");
    expect_error("\"x\"", NG_ERR_PARSE, "c.json: expected a JSON object at the top level, got \"x\"");
    expect_error("null", NG_ERR_PARSE, "c.json: expected a JSON object at the top level, got null");
    expect_ok("{}");
    expect_ok("  // leading comment\n{}\n// trailing comment");
}

static void
test_file_size(void **state)
{
    char *text = malloc(MIB + 1);

    (void)state;
    assert_non_null(text);
    /* Exactly 1 MiB is allowed... */
    memset(text, ' ', MIB);
    text[0] = '{';
    text[MIB - 1] = '}';
    write_text("c.json", text, MIB);
    expect_ok(text);
    /* ...one byte more is refused before it is parsed. */
    text[MIB - 1] = ' ';
    text[MIB] = '}';
    write_text("big.json", text, MIB + 1);
    free(text);
    {
        ng_config cfg;

        assert_int_equal(load(&cfg, "big.json"), NG_ERR_TOO_LARGE);
        assert_string_equal(errbuf, "big.json: too large: expected at most 1048576 bytes");
    }
}

static void
test_cannot_read(void **state)
{
    ng_config cfg;

    (void)state;
    assert_int_equal(load(&cfg, "missing.json"), NG_ERR_IO);
    assert_string_equal(errbuf, "missing.json: cannot read: No such file or directory");
    assert_int_equal(mkdir("dir.json", 0700), 0);
    assert_int_equal(load(&cfg, "dir.json"), NG_ERR_IO);
    assert_string_equal(errbuf, "dir.json: cannot read: Is a directory");
    if (geteuid() != 0) {
        write_str("locked.json", "{}");
        assert_int_equal(chmod("locked.json", 0), 0);
        assert_int_equal(load(&cfg, "locked.json"), NG_ERR_IO);
        assert_string_equal(errbuf, "locked.json: cannot read: Permission denied");
    }
}

static void
test_cross_fields(void **state)
{
    (void)state;
    expect_error("{\"poll\": {\"interval_ms\": 5000, \"max_interval_ms\": 1000}}", NG_ERR_PARSE,
                 "c.json: poll.interval_ms: expected at most poll.max_interval_ms (1000), got 5000");
    expect_ok("{\"poll\": {\"interval_ms\": 1000, \"max_interval_ms\": 1000}}");
    /* The default of one field against the file's value of the other. */
    expect_error("{\"poll\": {\"max_interval_ms\": 999}}", NG_ERR_PARSE,
                 "c.json: poll.interval_ms: expected at most poll.max_interval_ms (999), got 1000");
    expect_error("{\"messages\": {\"default_ttl_s\": 604801}}", NG_ERR_PARSE,
                 "c.json: messages.default_ttl_s: expected at most messages.max_ttl_s (604800), got 604801");
    expect_ok("{\"messages\": {\"default_ttl_s\": 60, \"max_ttl_s\": 60}}");
    expect_error("{\"outbox\": {\"store\": \"http\"}}", NG_ERR_PARSE,
                 "c.json: outbox.http_url: expected an http:// or https:// URL because outbox.store is \"http\", got "
                 "\"\"");
    expect_ok("{\"outbox\": {\"store\": \"http\", \"http_url\": \"http://127.0.0.1:8090/o\"}}");
    /* A URL without the http store is allowed (kept for switching back and forth). */
    expect_ok("{\"outbox\": {\"store\": \"redis\", \"http_url\": \"http://127.0.0.1:8090/o\"}}");
    expect_error("{\"vault\": {\"store\": \"redis\"}}", NG_ERR_PARSE,
                 "c.json: redis.url: expected a redis:// or unix: URL because vault.store is \"redis\", got \"\"");
    expect_ok("{\"vault\": {\"store\": \"redis\"}, \"redis\": {\"url\": \"redis://127.0.0.1:6379\"}}");

    /* A value from the environment is named by its variable. */
    setenv("NOISEGATE_POLL_MAX_INTERVAL_MS", "500", 1);
    expect_error("{}", NG_ERR_PARSE,
                 "c.json: poll.interval_ms: expected at most poll.max_interval_ms (500, from "
                 "NOISEGATE_POLL_MAX_INTERVAL_MS), got 1000");
    setenv("NOISEGATE_POLL_INTERVAL_MS", "600", 1);
    expect_error("{}", NG_ERR_PARSE,
                 "NOISEGATE_POLL_INTERVAL_MS: expected at most poll.max_interval_ms (500, from "
                 "NOISEGATE_POLL_MAX_INTERVAL_MS), got 600");
    unsetenv("NOISEGATE_POLL_INTERVAL_MS");
    unsetenv("NOISEGATE_POLL_MAX_INTERVAL_MS");
    setenv("NOISEGATE_OUTBOX_STORE", "http", 1);
    {
        ng_config cfg;

        assert_int_equal(load(&cfg, NULL), NG_ERR_PARSE);
        assert_string_equal(errbuf, "outbox.http_url: expected an http:// or https:// URL because outbox.store is "
                                    "\"http\", got \"\"");
    }
}

/* Two distinct good values per field, as JSON text and as the environment spells them. */
static void
good_values(const ng_config_field *f, char *file_json, char *env_text, char *env_json, size_t len)
{
    long d;
    size_t n;

    switch (f->type) {
    case NG_CONFIG_INT:
        d = strtol(f->def, NULL, 10);
        /* Next to the default, so that cross-field rules still hold. */
        if (d == 0 && (f->flags & NG_CONFIG_ZERO_OK))
            d = f->min - 1;
        if (d + 2 > f->max)
            d -= 3;
        snprintf(file_json, len, "%ld", d + 1);
        snprintf(env_text, len, "%ld", d + 2);
        snprintf(env_json, len, "%ld", d + 2);
        break;
    case NG_CONFIG_ENUM:
        for (n = 0; f->choices[n]; n++)
            ;
        snprintf(file_json, len, "\"%s\"", f->choices[n - 1]);
        snprintf(env_text, len, "%s", f->choices[0]);
        snprintf(env_json, len, "\"%s\"", f->choices[0]);
        break;
    case NG_CONFIG_STRING:
        snprintf(file_json, len, "\"file-key\"");
        snprintf(env_text, len, "env:key with spaces");
        snprintf(env_json, len, "\"env:key with spaces\"");
        break;
    case NG_CONFIG_PATH:
        snprintf(file_json, len, "\"/tmp/ng-file/%s\"", f->path);
        snprintf(env_text, len, "/tmp/ng-env/%s", f->path);
        snprintf(env_json, len, "\"/tmp/ng-env/%s\"", f->path);
        break;
    case NG_CONFIG_URL:
        snprintf(file_json, len, "\"http://file.example\"");
        snprintf(env_text, len, "https://env.example:8443/base/");
        snprintf(env_json, len, "\"https://env.example:8443/base\"");
        break;
    case NG_CONFIG_IP:
        snprintf(file_json, len, "\"10.1.2.3\"");
        snprintf(env_text, len, "::1");
        snprintf(env_json, len, "\"::1\"");
        break;
    case NG_CONFIG_REDIS_URL:
        snprintf(file_json, len, "\"redis://127.0.0.1:6391\"");
        snprintf(env_text, len, "unix:/run/ng-env.sock?db=2");
        snprintf(env_json, len, "\"unix:/run/ng-env.sock?db=2\"");
        break;
    case NG_CONFIG_INT_LIST:
        snprintf(file_json, len, "[10, 20]");
        snprintf(env_text, len, "1,2,3");
        snprintf(env_json, len, "[1, 2, 3]");
        break;
    case NG_CONFIG_NET_LIST:
        snprintf(file_json, len, "[\"192.168.0.0/16\"]");
        snprintf(env_text, len, "10.0.0.0/8,::1");
        snprintf(env_json, len, "[\"10.0.0.0/8\", \"::1\"]");
        break;
    case NG_CONFIG_REDIS_LIST:
        snprintf(file_json, len, "[\"redis://redis.internal:6379/0\"]");
        snprintf(env_text, len, "redis://127.0.0.1:6379,redis://[::1]:6380/2");
        snprintf(env_json, len, "[\"redis://127.0.0.1:6379\", \"redis://[::1]:6380/2\"]");
        break;
    }
}

/*
 * A file that sets f to file_json, plus what the cross-field rules need for
 * any value of f (a redis URL, an outbox URL).
 */
static void
write_env_base(const ng_config_field *f, const char *file_json)
{
    json_t *root = json_pack("{s:{s:s}, s:{s:s}}", "redis", "url", "redis://127.0.0.1:6379", "outbox", "http_url",
                             "http://127.0.0.1:8090/o");
    const char *dot = strchr(f->path, '.');
    json_error_t jerr;
    json_t *v = json_loads(file_json, JSON_DECODE_ANY, &jerr);
    char section[64];

    assert_non_null(root);
    assert_non_null(v);
    if (dot) {
        snprintf(section, sizeof section, "%.*s", (int)(dot - f->path), f->path);
        if (json_object_get(root, section) == NULL)
            json_object_set_new(root, section, json_object());
        json_object_set_new(json_object_get(root, section), dot + 1, v);
    } else {
        json_object_set_new(root, f->path, v);
    }
    assert_int_equal(json_dump_file(root, "c.json", 0), 0);
    json_decref(root);
}

/* For every field: the file's value wins over the default, the environment's over the file's. */
static void
test_env_overrides(void **state)
{
    char file_json[128], env_text[128], env_json[128];
    json_error_t jerr;
    size_t i;

    (void)state;
    for (i = 0; i < nfields; i++) {
        const ng_config_field *f = &fields[i];
        json_t *root, *want;
        ng_config cfg;

        good_values(f, file_json, env_text, env_json, sizeof file_json);
        write_env_base(f, file_json);

        if (load(&cfg, "c.json") != NG_OK)
            fail_msg("%s = %s: %s", f->path, file_json, errbuf);
        root = dump_json(&cfg);
        want = json_loads(file_json, JSON_DECODE_ANY, &jerr);
        if (f->type != NG_CONFIG_PATH && !json_equal(dumped_value(root, f), want))
            fail_msg("%s: the file's %s was not used", f->path, file_json);
        json_decref(want);
        json_decref(root);
        ng_config_free(&cfg);

        setenv(f->env, env_text, 1);
        if (load(&cfg, "c.json") != NG_OK)
            fail_msg("%s=%s: %s", f->env, env_text, errbuf);
        root = dump_json(&cfg);
        want = json_loads(env_json, JSON_DECODE_ANY, &jerr);
        if (!json_equal(dumped_value(root, f), want))
            fail_msg("%s=%s did not override %s", f->env, env_text, f->path);
        json_decref(want);
        json_decref(root);
        ng_config_free(&cfg);
        unsetenv(f->env);
    }
}

/* For every field, a bad environment value is an error that names the variable. */
static void
test_env_errors(void **state)
{
    char prefix[128], *big;
    size_t i;

    (void)state;
    big = malloc(NG_CONFIG_MAX_PATH + 2);
    assert_non_null(big);
    memset(big, 'x', NG_CONFIG_MAX_PATH + 1);
    big[NG_CONFIG_MAX_PATH + 1] = 0;
    write_str("c.json", "{}");
    for (i = 0; i < nfields; i++) {
        const ng_config_field *f = &fields[i];
        const char *bad = f->type == NG_CONFIG_INT          ? "80a"
                          : f->type == NG_CONFIG_ENUM       ? "nope"
                          : f->type == NG_CONFIG_INT_LIST   ? "5,x"
                          : f->type == NG_CONFIG_NET_LIST   ? "1.2.3"
                          : f->type == NG_CONFIG_REDIS_LIST ? "redis://127.0.0.1:6379,unix:/x.sock"
                          : f->type == NG_CONFIG_URL        ? "ftp://x"
                          : f->type == NG_CONFIG_IP         ? "nope"
                          : f->type == NG_CONFIG_REDIS_URL  ? "nope"
                          : f->min > 0                      ? ""
                                                            : big;

        setenv(f->env, bad, 1);
        snprintf(prefix, sizeof prefix, "%s", f->env);
        expect_shape(prefix, ": expected ");
        if (!is_list(f)) {
            snprintf(prefix, sizeof prefix, "%s: expected ", f->env);
            expect_shape(prefix, "got \"");
        }
        unsetenv(f->env);
    }
    free(big);
}

static void
expect_env_error(const char *var, const char *value, const char *msg)
{
    ng_config cfg;
    ng_err err;

    setenv(var, value, 1);
    err = load(&cfg, NULL);
    unsetenv(var);
    if (err != NG_ERR_PARSE || strcmp(errbuf, msg) != 0)
        fail_msg("%s=%s\n  expected \"%s\"\n  got      \"%s\"", var, value, msg, errbuf);
}

static void
expect_env_ok(const char *var, const char *value)
{
    ng_config cfg;

    setenv(var, value, 1);
    if (load(&cfg, NULL) != NG_OK)
        fail_msg("%s=%s refused: %s", var, value, errbuf);
    unsetenv(var);
    ng_config_free(&cfg);
}

/* Integers and lists from the environment are parsed strictly. */
static void
test_env_parsing(void **state)
{
    static const char *const junk[] = {"80a", " 80", "80 ", "+80", "0x50", "8e1", "80.0", "", "8_0", "- 80", "--80"};
    char msg[256], *dumped, *reloaded;
    size_t i;
    ng_config cfg;

    (void)state;
    for (i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        snprintf(msg, sizeof msg, "NOISEGATE_LISTEN_PORT: expected an integer 1-65535, got \"%s\"", junk[i]);
        expect_env_error("NOISEGATE_LISTEN_PORT", junk[i], msg);
    }
    expect_env_error("NOISEGATE_LISTEN_PORT", "-1", "NOISEGATE_LISTEN_PORT: expected an integer 1-65535, got -1");
    expect_env_error("NOISEGATE_LISTEN_PORT", "65536", "NOISEGATE_LISTEN_PORT: expected an integer 1-65535, got 65536");
    expect_env_error("NOISEGATE_LISTEN_PORT", "99999999999999999999",
                     "NOISEGATE_LISTEN_PORT: expected an integer 1-65535, got \"99999999999999999999\"");
    expect_env_error("NOISEGATE_LISTEN_PORT", "9223372036854775808",
                     "NOISEGATE_LISTEN_PORT: expected an integer 1-65535, got \"9223372036854775808\"");
    expect_env_ok("NOISEGATE_LISTEN_PORT", "00080");

    expect_env_error("NOISEGATE_DELIVERY_RETRY_SCHEDULE_S", "5,x",
                     "NOISEGATE_DELIVERY_RETRY_SCHEDULE_S[1]: expected an integer 1-604800, got \"x\"");
    expect_env_error("NOISEGATE_DELIVERY_RETRY_SCHEDULE_S", "5,,6",
                     "NOISEGATE_DELIVERY_RETRY_SCHEDULE_S[1]: expected an integer 1-604800, got \"\"");
    expect_env_error("NOISEGATE_DELIVERY_RETRY_SCHEDULE_S", "5,",
                     "NOISEGATE_DELIVERY_RETRY_SCHEDULE_S[1]: expected an integer 1-604800, got \"\"");
    expect_env_error("NOISEGATE_DELIVERY_RETRY_SCHEDULE_S", "5, 6",
                     "NOISEGATE_DELIVERY_RETRY_SCHEDULE_S[1]: expected an integer 1-604800, got \" 6\"");
    expect_env_error("NOISEGATE_DELIVERY_RETRY_SCHEDULE_S", "300,5",
                     "NOISEGATE_DELIVERY_RETRY_SCHEDULE_S[1]: expected at least 300 (the item before it; the schedule "
                     "never shrinks), got 5");
    expect_env_error("NOISEGATE_DELIVERY_RETRY_SCHEDULE_S", "",
                     "NOISEGATE_DELIVERY_RETRY_SCHEDULE_S: expected an array of 1-32 integers 1-604800 in "
                     "non-decreasing order, got an empty array");
    expect_env_error("NOISEGATE_DELIVERY_ALLOW_PRIVATE", "127.0.0.1,10.0.0.1/8",
                     "NOISEGATE_DELIVERY_ALLOW_PRIVATE[1]: expected an IP address or CIDR with no host bits set (IPv4 "
                     "or IPv6), got \"10.0.0.1/8\"");
    expect_env_error("NOISEGATE_POLL_PEER_REDIS", "redis://127.0.0.1:6379,unix:/x.sock",
                     "NOISEGATE_POLL_PEER_REDIS[1]: expected a redis://HOST[:PORT][/DB] URL, got \"unix:/x.sock\"");
    expect_env_error(
        "NOISEGATE_POLL_PEER_REDIS", "redis://127.0.0.1:6379, redis://[::1]:6380/2",
        "NOISEGATE_POLL_PEER_REDIS[1]: expected a redis://HOST[:PORT][/DB] URL, got \" redis://[::1]:6380/2\"");
    expect_env_error("NOISEGATE_POLL_PEER_REDIS", "redis://127.0.0.1:6379,",
                     "NOISEGATE_POLL_PEER_REDIS[1]: expected a redis://HOST[:PORT][/DB] URL, got \"\"");
    expect_env_error("NOISEGATE_PUBLIC_URL", "http://x\xff",
                     "NOISEGATE_PUBLIC_URL: expected UTF-8 text, got \"http://x\\xff\"");
    expect_env_error("NOISEGATE_LOG_LEVEL", "INFO",
                     "NOISEGATE_LOG_LEVEL: expected one of \"debug\", \"info\", \"warn\", \"error\", got \"INFO\"");

    /* A list of URLs from the environment is dumped as the array a file would hold, and loads back the same. */
    setenv("NOISEGATE_POLL_PEER_REDIS", "redis://127.0.0.1:6379,redis://[::1]:6380/2,redis://redis.internal:6379/0", 1);
    assert_int_equal(load(&cfg, NULL), NG_OK);
    unsetenv("NOISEGATE_POLL_PEER_REDIS");
    assert_int_equal(cfg.poll.peer_redis_len, 3);
    assert_string_equal(cfg.poll.peer_redis[0], "redis://127.0.0.1:6379");
    assert_string_equal(cfg.poll.peer_redis[1], "redis://[::1]:6380/2");
    assert_string_equal(cfg.poll.peer_redis[2], "redis://redis.internal:6379/0");
    dumped = dump_text(&cfg);
    ng_config_free(&cfg);
    write_str("dump.json", dumped);
    assert_int_equal(load(&cfg, "dump.json"), NG_OK);
    assert_int_equal(cfg.poll.peer_redis_len, 3);
    reloaded = dump_text(&cfg);
    assert_string_equal(dumped, reloaded);
    free(dumped);
    free(reloaded);
    ng_config_free(&cfg);

    /* An empty list clears the file's; an empty string is a value too. */
    write_str("c.json", "{\"delivery\": {\"allow_private\": [\"::1\"]}, \"admin\": {\"socket\": \"a.sock\"},"
                        " \"poll\": {\"peer_redis\": [\"redis://redis.internal\"]}}");
    setenv("NOISEGATE_DELIVERY_ALLOW_PRIVATE", "", 1);
    setenv("NOISEGATE_POLL_PEER_REDIS", "", 1);
    setenv("NOISEGATE_ADMIN_SOCKET", "", 1);
    setenv("NOISEGATE_DELIVERY_RETRY_SCHEDULE_S", "1,1,604800", 1);
    assert_int_equal(load(&cfg, "c.json"), NG_OK);
    assert_int_equal(cfg.delivery.allow_private_len, 0);
    assert_int_equal(cfg.poll.peer_redis_len, 0);
    assert_string_equal(cfg.admin.socket, "");
    assert_int_equal(cfg.delivery.retry_schedule_len, 3);
    assert_int_equal(cfg.delivery.retry_schedule_s[2], 604800);
    ng_config_free(&cfg);
}

/* NOISEGATE_VAULT_KEY and NOISEGATE_VAULT_PASSPHRASE belong to the vault, not to the configuration. */
static void
test_env_secrets_ignored(void **state)
{
    ng_config cfg, def;
    char *a, *b;

    (void)state;
    setenv("NOISEGATE_VAULT_KEY", "not a key, and not a field", 1);
    setenv("NOISEGATE_VAULT_PASSPHRASE", "\x01\xff secret", 1);
    setenv("NOISEGATE_NO_SUCH_FIELD", "x", 1);
    assert_int_equal(load(&cfg, NULL), NG_OK);
    assert_int_equal(ng_config_defaults(&def), NG_OK);
    a = dump_text(&cfg);
    b = dump_text(&def);
    assert_string_equal(a, b);
    /* Nothing of a secret ever reaches the effective configuration. */
    assert_null(strstr(a, "secret"));
    assert_null(strstr(a, "not a key"));
    free(a);
    free(b);
    ng_config_free(&cfg);
    ng_config_free(&def);
    unsetenv("NOISEGATE_NO_SUCH_FIELD");
}

static const char *
tmp_dir_gone(void)
{
    static char path[PATH_MAX + 8];

    snprintf(path, sizeof path, "%s/gone", tmp_dir);
    return path;
}

static void
test_paths(void **state)
{
    char want[PATH_MAX + 128], socket_name[200];
    ng_config cfg;

    (void)state;
    assert_int_equal(mkdir("etc", 0700), 0);
    assert_int_equal(mkdir("etc/ng", 0700), 0);
    write_str("etc/ng/c.json", "{\"data_dir\": \"../../state/./a//b/\", \"vault\": {\"path\": \"sub/../v.ngv\","
                               " \"key_file\": \"/abs/key\"}, \"admin\": {\"socket\": \"\"},"
                               " \"redis\": {\"url\": \"unix:run/redis.sock?db=1\"}}");
    assert_int_equal(load(&cfg, "etc/ng/c.json"), NG_OK);
    snprintf(want, sizeof want, "%s/state/a/b", tmp_dir);
    assert_string_equal(cfg.data_dir, want);
    /* ".." after a component of our own is kept: it may be a symbolic link. */
    snprintf(want, sizeof want, "%s/state/a/b/sub/../v.ngv", tmp_dir);
    assert_string_equal(cfg.vault.path, want);
    assert_string_equal(cfg.vault.key_file, "/abs/key");
    assert_string_equal(cfg.admin.socket, "");
    snprintf(want, sizeof want, "%s/state/a/b/admin.token", tmp_dir);
    assert_string_equal(cfg.admin.token_file, want);
    snprintf(want, sizeof want, "unix:%s/state/a/b/run/redis.sock?db=1", tmp_dir);
    assert_string_equal(cfg.redis.url, want);
    ng_config_free(&cfg);

    /* The same file through a path with a symbolic link in it resolves the same way. */
    assert_int_equal(symlink("etc/ng", "link"), 0);
    assert_int_equal(load(&cfg, "link/c.json"), NG_OK);
    snprintf(want, sizeof want, "%s/state/a/b", tmp_dir);
    assert_string_equal(cfg.data_dir, want);
    ng_config_free(&cfg);

    /* From the environment, a relative data_dir is relative to the working directory. */
    setenv("NOISEGATE_DATA_DIR", "env-state", 1);
    assert_int_equal(load(&cfg, "etc/ng/c.json"), NG_OK);
    snprintf(want, sizeof want, "%s/env-state", tmp_dir);
    assert_string_equal(cfg.data_dir, want);
    ng_config_free(&cfg);
    assert_int_equal(load(&cfg, NULL), NG_OK);
    assert_string_equal(cfg.data_dir, want);
    snprintf(want, sizeof want, "%s/env-state/vault.ngv", tmp_dir);
    assert_string_equal(cfg.vault.path, want);
    ng_config_free(&cfg);
    unsetenv("NOISEGATE_DATA_DIR");

    /* Without a working directory only a relative data_dir is a problem. */
    assert_int_equal(mkdir("gone", 0700), 0);
    assert_int_equal(chdir("gone"), 0);
    assert_int_equal(rmdir(tmp_dir_gone()), 0);
    assert_int_equal(load(&cfg, NULL), NG_OK);
    ng_config_free(&cfg);
    setenv("NOISEGATE_DATA_DIR", "rel", 1);
    assert_int_equal(load(&cfg, NULL), NG_ERR_IO);
    assert_string_equal(errbuf, "NOISEGATE_DATA_DIR: cannot resolve against the current directory: No such file or "
                                "directory");
    unsetenv("NOISEGATE_DATA_DIR");
    assert_int_equal(chdir(tmp_dir), 0);

    /* A file in the working directory, and data_dir "." */
    write_str("c.json", "{\"data_dir\": \".\"}");
    assert_int_equal(load(&cfg, "c.json"), NG_OK);
    assert_string_equal(cfg.data_dir, tmp_dir);
    ng_config_free(&cfg);

    /* A unix socket path must fit in sun_path once resolved. */
    memset(socket_name, 's', 100);
    socket_name[100] = 0;
    snprintf(want, sizeof want, "{\"data_dir\": \"/r\", \"admin\": {\"socket\": \"%s\"}}", socket_name);
    write_str("c.json", want);
    assert_int_equal(load(&cfg, "c.json"), NG_OK);
    assert_int_equal(strlen(cfg.admin.socket), 103);
    ng_config_free(&cfg);
    snprintf(want, sizeof want, "{\"data_dir\": \"/root/dir\", \"admin\": {\"socket\": \"%s\"}}", socket_name);
    write_str("c.json", want);
    expect_shape("c.json: admin.socket: expected a path of at most 107 bytes once resolved, got \"/root/dir/sss",
                 "...\" (110 bytes)");
}

static void
test_public_url(void **state)
{
    ng_config cfg;

    (void)state;
    write_str("c.json", "{\"listen\": {\"address\": \"::1\", \"port\": 9000}}");
    assert_int_equal(load(&cfg, "c.json"), NG_OK);
    assert_string_equal(cfg.public_url, "http://[::1]:9000");
    ng_config_free(&cfg);
    write_str("c.json", "{\"public_url\": \"https://gw.example.com/noisegate///\"}");
    assert_int_equal(load(&cfg, "c.json"), NG_OK);
    assert_string_equal(cfg.public_url, "https://gw.example.com/noisegate");
    ng_config_free(&cfg);
    write_str("c.json", "{\"public_url\": \"http://10.0.0.1:8081/\", \"outbox\": {\"http_url\": \"http://s/o/\"}}");
    assert_int_equal(load(&cfg, "c.json"), NG_OK);
    assert_string_equal(cfg.public_url, "http://10.0.0.1:8081");
    assert_string_equal(cfg.outbox.http_url, "http://s/o");
    ng_config_free(&cfg);
}

static void
test_error_buffer(void **state)
{
    char small[16];
    ng_config cfg;

    (void)state;
    write_str("c.json", "{\"listen\": {\"port\": \"80a\"}}");
    memset(small, 'x', sizeof small);
    assert_int_equal(ng_config_load(&cfg, "c.json", small, sizeof small), NG_ERR_PARSE);
    assert_string_equal(small, "c.json: listen.");
    assert_int_equal(ng_config_load(&cfg, "c.json", NULL, 0), NG_ERR_PARSE);
    write_str("c.json", "{}");
    memset(small, 'x', sizeof small);
    assert_int_equal(ng_config_load(&cfg, "c.json", small, sizeof small), NG_OK);
    assert_string_equal(small, "");
    ng_config_free(&cfg);
}

/* docs/config.md has a row for every field with its type, default and variable as the schema says. */
static void
test_docs(void **state)
{
    char path[PATH_MAX + 32], row[128];
    char *doc, *line, *end;
    size_t i;

    (void)state;
    src_path(path, sizeof path, "docs", "config.md");
    doc = read_text(path);
    for (i = 0; i < nfields; i++) {
        const ng_config_field *f = &fields[i];
        char def[128], env[128];

        snprintf(row, sizeof row, "\n| `%s` |", f->path);
        line = strstr(doc, row);
        if (line == NULL)
            fail_msg("docs/config.md has no row for %s", f->path);
        line++;
        end = strchr(line, '\n');
        assert_non_null(end);
        *end = 0;
        snprintf(def, sizeof def, "| `%s` |", f->def);
        snprintf(env, sizeof env, "| `%s` |", f->env);
        if (strstr(line, describe(f)) == NULL || strstr(line, def) == NULL || strstr(line, env) == NULL)
            fail_msg("docs/config.md, row of %s: want \"%s\", %s and %s in\n  %s", f->path, describe(f), def, env,
                     line);
        *end = '\n';
    }
    free(doc);
}

/* ---- the real binary ---- */

typedef struct run {
    int status;
    char *out, *err;
} run;

static const char *
ng_bin(void)
{
    const char *bin = getenv("NG_BIN");

    return bin && bin[0] ? bin : NULL;
}

/* Runs NG_BIN with args (NULL-terminated), stdout and stderr to files in the test's directory. */
static run
run_bin(const char *const *args)
{
    char *argv[16];
    posix_spawn_file_actions_t fa;
    run r = {0, NULL, NULL};
    pid_t pid;
    int st, n = 0;

    argv[n++] = (char *)ng_bin();
    while (args[n - 1] && n < 15) {
        argv[n] = (char *)args[n - 1];
        n++;
    }
    argv[n] = NULL;
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, 1, "out.txt", O_WRONLY | O_CREAT | O_TRUNC, 0600), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, 2, "err.txt", O_WRONLY | O_CREAT | O_TRUNC, 0600), 0);
    assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    r.status = WEXITSTATUS(st);
    r.out = read_text("out.txt");
    r.err = read_text("err.txt");
    return r;
}

static void
run_free(run *r)
{
    free(r->out);
    free(r->err);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void
test_cli_check(void **state)
{
    run r;

    (void)state;
    if (ng_bin() == NULL)
        skip();
    write_str("good.json", "// fine\n{\"listen\": {\"port\": 9000}}\n");
    r = run_bin(ARGS("config", "check", "good.json"));
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "good.json: ok\n");
    assert_string_equal(r.err, "");
    run_free(&r);

    write_str("bad.json", "{\"listen\": {\"port\": \"80a\"}}");
    r = run_bin(ARGS("config", "check", "bad.json"));
    assert_int_equal(r.status, 2);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, "noisegate config: bad.json: listen.port: expected an integer 1-65535, got \"80a\"\n");
    run_free(&r);

    /* Without FILE, $NOISEGATE_CONFIG, as for the operator commands. */
    setenv("NOISEGATE_CONFIG", "good.json", 1);
    r = run_bin(ARGS("config", "check"));
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "good.json: ok\n");
    run_free(&r);
    r = run_bin(ARGS("config", "show"));
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "\"port\": 9000"));
    run_free(&r);
    r = run_bin(ARGS("config", "check", "bad.json"));
    assert_int_equal(r.status, 2);
    run_free(&r);
    unsetenv("NOISEGATE_CONFIG");

    r = run_bin(ARGS("config", "check", "missing.json"));
    assert_int_equal(r.status, 2);
    assert_string_equal(r.err, "noisegate config: missing.json: cannot read: No such file or directory\n");
    run_free(&r);

    setenv("NOISEGATE_LISTEN_PORT", "0", 1);
    r = run_bin(ARGS("config", "check", "good.json"));
    assert_int_equal(r.status, 2);
    assert_string_equal(r.err, "noisegate config: NOISEGATE_LISTEN_PORT: expected an integer 1-65535, got 0\n");
    run_free(&r);
    unsetenv("NOISEGATE_LISTEN_PORT");
}

static void
test_cli_print(void **state)
{
    json_error_t jerr;
    json_t *root;
    run r;

    (void)state;
    if (ng_bin() == NULL)
        skip();
    write_str("good.json", "{\"data_dir\": \"st\", \"listen\": {\"port\": 9000}}");
    setenv("NOISEGATE_LOG_LEVEL", "debug", 1);
    r = run_bin(ARGS("config", "check", "--print", "good.json"));
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    root = json_loads(r.out, 0, &jerr);
    assert_non_null(root);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(root, "listen"), "port")), 9000);
    assert_string_equal(json_string_value(json_object_get(json_object_get(root, "log"), "level")), "debug");
    assert_non_null(strstr(json_string_value(json_object_get(root, "data_dir")), "/st"));
    json_decref(root);
    run_free(&r);

    /* show FILE prints the same; show alone is the defaults plus the environment. */
    r = run_bin(ARGS("config", "show", "good.json"));
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "\"port\": 9000"));
    run_free(&r);
    r = run_bin(ARGS("config", "show"));
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "\"port\": 8080"));
    assert_non_null(strstr(r.out, "\"level\": \"debug\""));
    run_free(&r);
    unsetenv("NOISEGATE_LOG_LEVEL");

    r = run_bin(ARGS("config", "show", "missing.json"));
    assert_int_equal(r.status, 2);
    assert_string_equal(r.out, "");
    run_free(&r);
}

static void
test_cli_example(void **state)
{
    char *text;
    run r;

    (void)state;
    if (ng_bin() == NULL)
        skip();
    r = run_bin(ARGS("config", "example"));
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    text = example_text();
    assert_string_equal(r.out, text);
    free(text);
    write_str("example.json", r.out);
    run_free(&r);
    r = run_bin(ARGS("config", "check", "example.json"));
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "example.json: ok\n");
    run_free(&r);
}

static void
test_cli_usage(void **state)
{
    const char *const *const cases[] = {
        ARGS("config"),
        ARGS("config", "check"),
        ARGS("config", "check", "a.json", "b.json"),
        ARGS("config", "check", "--bogus", "a.json"),
        ARGS("config", "check", "--print"),
        ARGS("config", "show", "a.json", "b.json"),
        ARGS("config", "example", "extra"),
        ARGS("config", "frobnicate"),
    };
    size_t i;
    run r;

    (void)state;
    if (ng_bin() == NULL)
        skip();
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = run_bin(cases[i]);
        assert_int_equal(r.status, 2);
        assert_string_equal(r.out, "");
        assert_true(strncmp(r.err, "noisegate config: ", 18) == 0);
        assert_non_null(strstr(r.err, "usage: noisegate config check"));
        run_free(&r);
    }
    /* The top-level usage mentions the command. */
    r = run_bin(ARGS("help"));
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "config check"));
    assert_non_null(strstr(r.err, "config show [FILE] | example"));
    run_free(&r);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_defaults),
        T(test_schema),
        T(test_example_files),
        T(test_generated_example),
        T(test_dump_round_trip),
        T(test_comments),
        T(test_wrong_types),
        T(test_ranges),
        T(test_messages),
        T(test_unknown_keys),
        T(test_section_not_object),
        T(test_invalid_json),
        T(test_fuzz_regressions),
        T(test_empty_and_not_object),
        T(test_file_size),
        T(test_cannot_read),
        T(test_cross_fields),
        T(test_env_overrides),
        T(test_env_errors),
        T(test_env_parsing),
        T(test_env_secrets_ignored),
        T(test_paths),
        T(test_public_url),
        T(test_error_buffer),
        T(test_docs),
        T(test_cli_check),
        T(test_cli_print),
        T(test_cli_example),
        T(test_cli_usage),
    };
    const char *src = getenv("NG_SRC_DIR");
    static char bin[PATH_MAX];
    int n;

    if (getcwd(start_dir, sizeof start_dir) == NULL)
        return 1;
    /* NG_SRC_DIR and NG_BIN may be relative to where we started; each test runs elsewhere. */
    if (src && src[0] == '/')
        n = snprintf(src_dir, sizeof src_dir, "%s", src);
    else if (src && src[0])
        n = snprintf(src_dir, sizeof src_dir, "%s/%s", start_dir, src);
    else
        n = snprintf(src_dir, sizeof src_dir, "%s", start_dir);
    if (n < 0 || (size_t)n >= sizeof src_dir)
        return 1;
    if (ng_bin() && ng_bin()[0] != '/') {
        n = snprintf(bin, sizeof bin, "%s/%s", start_dir, ng_bin());
        if (n < 0 || (size_t)n >= sizeof bin)
            return 1;
        setenv("NG_BIN", bin, 1);
    }
    fields = ng_config_schema(&nfields);
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}

/*
 * noisegate vault init|rekey|verify, and the context every vault-backed
 * command shares: configuration, store and master key.
 */
#include "ng_cli_vault.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "ng_b64.h"
#include "ng_cli.h"
#include "ng_io.h"
#include "ng_key.h"
#include "ng_hex.h"
#include "ng_tenant.h"

enum {
    KEY = NG_VAULT_KEY_BYTES,
    B64_KEY = sodium_base64_ENCODED_LEN(KEY, sodium_base64_VARIANT_ORIGINAL), /* with its NUL */
    MAX_PASSPHRASE = 1024,
};

int64_t
ng_cli_now(void)
{
    return (int64_t)time(NULL);
}

int
ng_cli_parse(const char *cmd, int argc, char **argv, const ng_cli_opt *opts, const char **config, const char **pos,
             int maxpos, int *npos)
{
    int i, j;

    *npos = 0;
    *config = getenv("NOISEGATE_CONFIG");
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--config") == 0) {
            if (++i == argc)
                return ng_cli_fail(NG_EXIT_USAGE, cmd, "--config needs a file");
            *config = argv[i];
            continue;
        }
        if (a[0] == '-' && a[1] == '-') {
            for (j = 0; opts != NULL && opts[j].name != NULL && strcmp(opts[j].name, a) != 0; j++)
                ;
            if (opts == NULL || opts[j].name == NULL)
                return ng_cli_fail(NG_EXIT_USAGE, cmd, "unknown option %s (noisegate help)", a);
            if (opts[j].flag != NULL) {
                *opts[j].flag = 1;
            } else {
                if (++i == argc)
                    return ng_cli_fail(NG_EXIT_USAGE, cmd, "%s needs a value", a);
                *opts[j].value = argv[i];
            }
            continue;
        }
        if (*npos == maxpos)
            return ng_cli_fail(NG_EXIT_USAGE, cmd, "unexpected argument '%s' (noisegate help)", a);
        pos[(*npos)++] = a;
    }
    return 0;
}

int
ng_cli_report(const ng_cli_ctx *c, ng_err err, const char *what)
{
    const char *where = c->store != NULL ? ng_vault_store_where(c->store) : "the vault";

    switch (err) {
    case NG_ERR_NOT_FOUND: return ng_cli_fail(NG_EXIT_FAILED, c->cmd, "%s: not found", what);
    case NG_ERR_EXISTS: return ng_cli_fail(NG_EXIT_FAILED, c->cmd, "%s: already exists", what);
    case NG_ERR_VAULT_KEY:
        return ng_cli_fail(NG_EXIT_FAILED, c->cmd, "%s: the master key or passphrase does not open it", where);
    case NG_ERR_CORRUPT:
        return ng_cli_fail(NG_EXIT_FAILED, c->cmd, "%s: integrity check failed (damaged or tampered); nothing changed",
                           where);
    case NG_ERR_UNAVAILABLE:
        return ng_cli_fail(NG_EXIT_FAILED, c->cmd, "%s: store unavailable (is Redis running?)", where);
    default: return ng_cli_fail(NG_EXIT_FAILED, c->cmd, "%s: %s", what, ng_strerror(err));
    }
}

/* A base64 master key: exactly 32 bytes, optionally followed by whitespace. */
static int
decode_key(const char *b64, size_t len, uint8_t out[KEY])
{
    size_t got;

    while (len > 0 && (b64[len - 1] == '\n' || b64[len - 1] == '\r' || b64[len - 1] == ' '))
        len--;
    return ng_b64_decode(out, KEY, &got, b64, len, sodium_base64_VARIANT_ORIGINAL) == NG_OK && got == KEY ? 0 : -1;
}

static int
read_key_file(ng_cli_ctx *c, const char *path, uint8_t out[KEY])
{
    struct stat st;
    uint8_t *buf;
    size_t len;
    ng_err err;
    int rc;

    if (stat(path, &st) != 0)
        return ng_cli_fail(NG_EXIT_FAILED, c->cmd, "%s: no master key file (noisegate vault init creates one)", path);
    /* Like ssh with its keys: a key others can read is already leaked. */
    if (st.st_mode & 077)
        return ng_cli_fail(NG_EXIT_FAILED, c->cmd, "%s: master key file is readable by others (chmod 600 it)", path);
    err = ng_io_read_all(path, 256, &buf, &len);
    if (err)
        return ng_cli_fail(NG_EXIT_FAILED, c->cmd, "%s: cannot read the master key file: %s", path, ng_strerror(err));
    rc = decode_key((const char *)buf, len, out);
    sodium_memzero(buf, len);
    free(buf);
    if (rc != 0)
        return ng_cli_fail(NG_EXIT_FAILED, c->cmd, "%s: not a master key file (expected base64 of 32 bytes)", path);
    return 0;
}

/* Reads a line from the terminal with echo off. */
static int
prompt(const char *cmd, const char *question, char *out, size_t cap)
{
    struct termios old, quiet;
    FILE *tty = fopen("/dev/tty", "r+");
    size_t len;
    int ok;

    if (tty == NULL)
        return ng_cli_fail(NG_EXIT_USAGE, cmd, "no terminal for the passphrase: set NOISEGATE_VAULT_PASSPHRASE");
    /* Unbuffered: a stdio buffer would keep a copy of the passphrase that nobody wipes. */
    setvbuf(tty, NULL, _IONBF, 0);
    fprintf(tty, "%s", question);
    fflush(tty);
    if (tcgetattr(fileno(tty), &old) == 0) {
        quiet = old;
        quiet.c_lflag &= (tcflag_t) ~(ECHO | ECHONL);
        tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
    }
    ok = fgets(out, (int)cap, tty) != NULL;
    tcsetattr(fileno(tty), TCSAFLUSH, &old);
    fputc('\n', tty);
    fclose(tty);
    len = ok ? strlen(out) : 0;
    if (len > 0 && out[len - 1] == '\n')
        out[--len] = '\0';
    if (!ok || len == 0)
        return ng_cli_fail(NG_EXIT_USAGE, cmd, "no passphrase given");
    return 0;
}

/*
 * A passphrase from env (if set) or the terminal, asked twice when it is
 * new. Into c->secret_mem, which holds MAX_PASSPHRASE + 1 bytes.
 */
static int
get_passphrase(ng_cli_ctx *c, const char *env, int confirm, uint8_t *mem, size_t *len)
{
    const char *s = getenv(env);
    char *again;
    int rc;

    if (s != NULL) {
        if (strlen(s) == 0 || strlen(s) > MAX_PASSPHRASE)
            return ng_cli_fail(NG_EXIT_USAGE, c->cmd, "%s: expected 1-%d bytes", env, MAX_PASSPHRASE);
        memcpy(mem, s, strlen(s));
        *len = strlen(s);
        return 0;
    }
    rc = prompt(c->cmd, confirm ? "New vault passphrase: " : "Vault passphrase: ", (char *)mem, MAX_PASSPHRASE + 1);
    if (rc != 0 || !confirm) {
        *len = strlen((char *)mem);
        return rc;
    }
    again = sodium_malloc(MAX_PASSPHRASE + 1);
    if (again == NULL)
        return ng_cli_fail(NG_EXIT_FAILED, c->cmd, "out of memory");
    rc = prompt(c->cmd, "Again: ", again, MAX_PASSPHRASE + 1);
    if (rc == 0 && strcmp(again, (char *)mem) != 0)
        rc = ng_cli_fail(NG_EXIT_USAGE, c->cmd, "the passphrases differ");
    sodium_free(again);
    *len = strlen((char *)mem);
    return rc;
}

/* Fills a secret (its data in mem) from the configured source; new: for init and rekey. */
static int
load_secret(ng_cli_ctx *c, ng_vault_secret *s, uint8_t *mem, int fresh)
{
    const char *env;
    int rc = 0;

    memset(s, 0, sizeof *s);
    s->data = mem;
    s->opslimit = (uint64_t)c->cfg.vault.argon2_ops;
    s->memlimit = (uint64_t)c->cfg.vault.argon2_mem_mib * 1024 * 1024;
    switch (c->cfg.vault.master_key) {
    case NG_CONFIG_MASTER_KEY_FILE:
        s->len = KEY;
        if (fresh) /* a key file is made by init and rekey themselves */
            randombytes_buf(mem, KEY);
        else
            rc = read_key_file(c, c->cfg.vault.key_file, mem);
        break;
    case NG_CONFIG_MASTER_KEY_ENV:
        env = fresh == 2 ? "NOISEGATE_VAULT_NEW_KEY" : "NOISEGATE_VAULT_KEY";
        s->len = KEY;
        if (getenv(env) == NULL)
            rc = ng_cli_fail(NG_EXIT_USAGE, c->cmd, "%s is not set (base64 of 32 random bytes)", env);
        else if (decode_key(getenv(env), strlen(getenv(env)), mem) != 0)
            rc = ng_cli_fail(NG_EXIT_USAGE, c->cmd, "%s: expected base64 of 32 bytes", env);
        break;
    case NG_CONFIG_MASTER_KEY_PASSPHRASE:
        s->passphrase = 1;
        rc = get_passphrase(c, fresh == 2 ? "NOISEGATE_VAULT_NEW_PASSPHRASE" : "NOISEGATE_VAULT_PASSPHRASE", fresh, mem,
                            &s->len);
        break;
    }
    return rc;
}

static int finish_rekey(ng_cli_ctx *c);

int
ng_cli_ctx_open(ng_cli_ctx *c, const char *cmd, const char *config, int with_key)
{
    char msg[NG_CONFIG_ERR_BYTES];
    ng_err err;

    memset(c, 0, sizeof *c);
    c->cmd = cmd;
    err = ng_config_load(&c->cfg, config, msg, sizeof msg);
    if (err)
        return ng_cli_fail(NG_EXIT_USAGE, cmd, "%s", msg);
    if (c->cfg.vault.store == NG_CONFIG_VAULT_STORE_REDIS)
        err = ng_vault_store_redis(&c->store, c->cfg.redis.url, c->cfg.vault.redis_key, c->cfg.redis.timeout_ms);
    else
        err = ng_vault_store_file(&c->store, c->cfg.vault.path);
    if (err == NG_ERR_UNAVAILABLE)
        return ng_cli_fail(NG_EXIT_FAILED, cmd, "vault key %s on %s: store unavailable (is Redis running?)",
                           c->cfg.vault.redis_key, c->cfg.redis.url);
    if (err)
        return ng_cli_fail(NG_EXIT_FAILED, cmd, "vault store: %s", ng_strerror(err));
    c->secret_mem = sodium_malloc(MAX_PASSPHRASE + 1);
    if (c->secret_mem == NULL)
        return ng_cli_fail(NG_EXIT_FAILED, cmd, "out of memory");
    memset(c->secret_mem, 0, MAX_PASSPHRASE + 1);
    return with_key ? ng_cli_ctx_key(c) : 0;
}

int
ng_cli_ctx_key(ng_cli_ctx *c)
{
    int rc = load_secret(c, &c->secret, c->secret_mem, 0);

    return rc != 0 ? rc : finish_rekey(c);
}

void
ng_cli_ctx_close(ng_cli_ctx *c)
{
    sodium_free(c->secret_mem); /* wipes */
    ng_vault_store_free(c->store);
    ng_config_free(&c->cfg);
    memset(c, 0, sizeof *c);
}

int
ng_cli_ctx_vault(ng_cli_ctx *c, ng_vault **v)
{
    ng_err err = ng_vault_open(v, c->store, &c->secret);

    if (err == NG_ERR_NOT_FOUND)
        return ng_cli_fail(NG_EXIT_FAILED, c->cmd, "%s: no vault (noisegate vault init creates one)",
                           ng_vault_store_where(c->store));
    return err ? ng_cli_report(c, err, ng_vault_store_where(c->store)) : 0;
}

/*
 * After a failed write: was there a vault at all? Without one, a store may
 * fail in other ways first (no directory for the lock file), and "run
 * vault init" is the message that helps.
 */
static int
no_vault(ng_cli_ctx *c)
{
    ng_vault *v = NULL;
    ng_err err = ng_vault_open(&v, c->store, &c->secret);

    ng_vault_close(v);
    if (err != NG_ERR_NOT_FOUND)
        return 0;
    ng_cli_fail(NG_EXIT_FAILED, c->cmd, "%s: no vault (noisegate vault init creates one)",
                ng_vault_store_where(c->store));
    return 1;
}

int
ng_cli_ctx_update(ng_cli_ctx *c, ng_vault_update_fn fn, void *arg, const char *what)
{
    ng_err err = ng_vault_update(c->store, &c->secret, fn, arg);

    return err == NG_OK ? 0 : ng_cli_ctx_fail(c, err, what);
}

int
ng_cli_ctx_fail(ng_cli_ctx *c, ng_err err, const char *what)
{
    return no_vault(c) ? NG_EXIT_FAILED : ng_cli_report(c, err, what);
}

/* mkdir -p for the directory that will hold path, private to the owner. */
static int
make_parent(const char *cmd, const char *path)
{
    char dir[NG_CONFIG_MAX_PATH + 1];
    size_t i;

    snprintf(dir, sizeof dir, "%s", path);
    for (i = 1; dir[i] != '\0'; i++) {
        if (dir[i] != '/')
            continue;
        dir[i] = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return ng_cli_fail(NG_EXIT_FAILED, cmd, "%s: cannot create the directory: %s", dir, strerror(errno));
        dir[i] = '/';
    }
    return 0;
}

/* Writes a key file (base64 and a newline), never over an existing one. */
static int
write_key_file(const char *cmd, const char *path, const uint8_t key[KEY])
{
    char text[B64_KEY + 1];
    ng_err err;

    sodium_bin2base64(text, B64_KEY, key, KEY, sodium_base64_VARIANT_ORIGINAL);
    memcpy(text + strlen(text), "\n", 2);
    err = ng_io_create_excl(path, (const uint8_t *)text, strlen(text), 0600);
    sodium_memzero(text, sizeof text);
    if (err == NG_ERR_EXISTS)
        return ng_cli_fail(NG_EXIT_FAILED, cmd, "%s: already exists, not overwritten", path);
    if (err)
        return ng_cli_fail(NG_EXIT_FAILED, cmd, "%s: cannot write the master key file: %s", path, ng_strerror(err));
    return 0;
}

static int
vault_init(ng_cli_ctx *c)
{
    struct stat st;
    ng_err err;
    int made_key = 0, rc;

    if (c->cfg.vault.store == NG_CONFIG_VAULT_STORE_FILE && (rc = make_parent(c->cmd, c->cfg.vault.path)) != 0)
        return rc;
    if (c->cfg.vault.master_key == NG_CONFIG_MASTER_KEY_FILE && stat(c->cfg.vault.key_file, &st) != 0) {
        rc = make_parent(c->cmd, c->cfg.vault.key_file);
        if (rc == 0)
            rc = load_secret(c, &c->secret, c->secret_mem, 1);
        if (rc == 0)
            rc = write_key_file(c->cmd, c->cfg.vault.key_file, c->secret_mem);
        made_key = rc == 0;
    } else {
        rc = load_secret(c, &c->secret, c->secret_mem, c->cfg.vault.master_key == NG_CONFIG_MASTER_KEY_PASSPHRASE);
    }
    if (rc != 0)
        return rc;
    err = ng_vault_create(c->store, &c->secret);
    if (err) {
        if (made_key)
            unlink(c->cfg.vault.key_file); /* a key for a vault that was not made */
        if (err == NG_ERR_EXISTS)
            return ng_cli_fail(NG_EXIT_FAILED, c->cmd, "%s: a vault is already there", ng_vault_store_where(c->store));
        return ng_cli_report(c, err, ng_vault_store_where(c->store));
    }
    printf("created %s", ng_vault_store_where(c->store));
    if (made_key)
        printf(", master key in %s (back it up: without it the vault cannot be opened)", c->cfg.vault.key_file);
    printf("\n");
    return NG_EXIT_OK;
}

static int
vault_rekey(ng_cli_ctx *c)
{
    char new_path[NG_CONFIG_MAX_PATH + 8];
    ng_vault_secret fresh;
    uint8_t *mem = sodium_malloc(MAX_PASSPHRASE + 1);
    int rc, file = c->cfg.vault.master_key == NG_CONFIG_MASTER_KEY_FILE;
    ng_err err;

    if (mem == NULL)
        return ng_cli_fail(NG_EXIT_FAILED, c->cmd, "out of memory");
    rc = load_secret(c, &fresh, mem, file ? 1 : 2);
    /*
     * The new key is on disk before the vault is resealed under it, and
     * replaces the old key file only after: a crash in between leaves
     * KEY.new beside the old key, and opening tries it (see key_for_open).
     */
    snprintf(new_path, sizeof new_path, "%s.new", c->cfg.vault.key_file);
    if (rc == 0 && file)
        rc = write_key_file(c->cmd, new_path, mem);
    if (rc == 0) {
        err = ng_vault_rekey(c->store, &c->secret, &fresh);
        if (err) {
            if (file)
                unlink(new_path);
            rc = no_vault(c) ? NG_EXIT_FAILED : ng_cli_report(c, err, ng_vault_store_where(c->store));
        }
    }
    if (rc == 0 && file && rename(new_path, c->cfg.vault.key_file) != 0)
        rc = ng_cli_fail(NG_EXIT_FAILED, c->cmd, "vault resealed, but %s could not replace %s: move it by hand",
                         new_path, c->cfg.vault.key_file);
    if (rc == 0) {
        printf("resealed %s under a new master key", ng_vault_store_where(c->store));
        if (c->cfg.vault.master_key == NG_CONFIG_MASTER_KEY_ENV)
            printf(": set NOISEGATE_VAULT_KEY to the value of NOISEGATE_VAULT_NEW_KEY");
        printf("\n");
    }
    sodium_free(mem);
    return rc;
}

/* Checks that one tenant's secrets are present and match its record; problems go to list. */
static void
verify_tenant(ng_vault *v, const char *slug, json_t *problems)
{
    uint8_t sk[crypto_sign_SECRETKEYBYTES], pk[crypto_sign_PUBLICKEYBYTES], tok[NG_TENANT_SECRET_BYTES];
    json_t *rec = NULL, *k;
    const char *want;
    char hex[65];
    size_t i;

    if (ng_tenant_record(v, slug, &rec) != NG_OK) {
        json_array_append_new(problems, json_sprintf("tenant %s: record does not parse", slug));
        return;
    }
    json_array_foreach(json_object_get(rec, "keys"), i, k)
    {
        ng_keypair kp;
        json_int_t epoch = json_integer_value(json_object_get(k, "epoch"));
        ng_err err;

        want = json_string_value(json_object_get(k, "public"));
        /* End-to-end: the backend holds this epoch's private key, the vault only its public one. */
        if (json_is_true(json_object_get(k, "held_by_backend"))) {
            uint8_t pub[NG_KEY_BYTES], priv[NG_KEY_BYTES];
            char name[128];
            size_t len;

            if (want == NULL || ng_hex_decode(pub, sizeof pub, want, strlen(want)) != NG_OK ||
                ng_key_public_ok(pub) != NG_OK)
                json_array_append_new(
                    problems, json_sprintf("tenant %s: public key of epoch %d (held by its backend) is not valid", slug,
                                           (int)epoch));
            /* A copy left behind would give the gateway what end-to-end mode promises it does not have. */
            snprintf(name, sizeof name, "tenant/%s/key/%d", slug, (int)epoch);
            err = ng_vault_get(v, name, priv, sizeof priv, &len);
            sodium_memzero(priv, sizeof priv);
            if (err == NG_OK || err == NG_ERR_BUFFER_TOO_SMALL)
                json_array_append_new(
                    problems, json_sprintf("tenant %s: the vault still has a private key for epoch %d, which only its "
                                           "backend should hold",
                                           slug, (int)epoch));
            continue;
        }
        err = ng_tenant_keypair(v, slug, (uint32_t)epoch, &kp);
        ng_keypair_wipe(&kp);
        if (err == NG_ERR_CORRUPT)
            json_array_append_new(
                problems, json_sprintf("tenant %s: key of epoch %d does not match its public key", slug, (int)epoch));
        else if (err != NG_OK)
            json_array_append_new(problems, json_sprintf("tenant %s: key of epoch %d missing", slug, (int)epoch));
    }
    want = json_string_value(json_object_get(rec, "signing_public"));
    if (ng_tenant_secret(v, slug, "sign", sk, sizeof sk) != NG_OK) {
        json_array_append_new(problems, json_sprintf("tenant %s: signing key missing", slug));
    } else {
        crypto_sign_ed25519_sk_to_pk(pk, sk);
        ng_hex_encode(hex, sizeof hex, pk, sizeof pk);
        if (want == NULL || strcmp(want, hex) != 0)
            json_array_append_new(problems, json_sprintf("tenant %s: signing key does not match", slug));
    }
    sodium_memzero(sk, sizeof sk);
    if (ng_tenant_secret(v, slug, "read_token", tok, sizeof tok) != NG_OK)
        json_array_append_new(problems, json_sprintf("tenant %s: read token missing", slug));
    if (json_is_true(json_object_get(rec, "psk")) && ng_tenant_secret(v, slug, "psk", tok, sizeof tok) != NG_OK)
        json_array_append_new(problems, json_sprintf("tenant %s: psk missing", slug));
    sodium_memzero(tok, sizeof tok);
    json_decref(rec);
}

static int
vault_verify(ng_cli_ctx *c, int as_json)
{
    json_t *tenants, *t, *problems = json_array();
    ng_vault *v;
    size_t i;
    int rc = ng_cli_ctx_vault(c, &v);

    if (rc != 0) {
        json_decref(problems);
        return rc;
    }
    if (ng_tenant_list(v, &tenants) != NG_OK) {
        json_array_append_new(problems, json_string("a tenant record does not parse"));
        tenants = json_array();
    }
    json_array_foreach(tenants, i, t) verify_tenant(v, json_string_value(json_object_get(t, "slug")), problems);
    if (as_json) {
        json_t *out = json_pack("{s:s, s:b, s:I, s:I, s:O}", "vault", ng_vault_store_where(c->store), "ok",
                                json_array_size(problems) == 0, "entries", (json_int_t)ng_vault_count(v), "tenants",
                                (json_int_t)json_array_size(tenants), "problems", problems);
        json_dumpf(out, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(out);
    } else {
        json_array_foreach(problems, i, t) fprintf(stderr, "noisegate vault: %s\n", json_string_value(t));
        printf("%s: %s, %zu entries, %zu tenants\n", ng_vault_store_where(c->store),
               json_array_size(problems) ? "PROBLEMS" : "ok", ng_vault_count(v), json_array_size(tenants));
    }
    rc = json_array_size(problems) ? NG_EXIT_FAILED : NG_EXIT_OK;
    json_decref(tenants);
    json_decref(problems);
    ng_vault_close(v);
    return rc;
}

/*
 * Finishes a rekey that a crash interrupted: the vault was resealed under
 * KEY.new but the old key file is still in place.
 */
static int
finish_rekey(ng_cli_ctx *c)
{
    char new_path[NG_CONFIG_MAX_PATH + 8];
    ng_vault_secret s = c->secret;
    uint8_t key[KEY];
    ng_vault *v;
    int rc;

    snprintf(new_path, sizeof new_path, "%s.new", c->cfg.vault.key_file);
    if (c->cfg.vault.master_key != NG_CONFIG_MASTER_KEY_FILE || access(new_path, F_OK) != 0)
        return 0;
    if (ng_vault_open(&v, c->store, &c->secret) != NG_ERR_VAULT_KEY) {
        ng_vault_close(v);
        return 0;
    }
    rc = read_key_file(c, new_path, key);
    s.data = key;
    if (rc == 0 && ng_vault_open(&v, c->store, &s) == NG_OK) {
        ng_vault_close(v);
        if (rename(new_path, c->cfg.vault.key_file) == 0) {
            memcpy(c->secret_mem, key, KEY);
            fprintf(stderr, "noisegate %s: finished an interrupted rekey: %s is now the master key\n", c->cmd,
                    c->cfg.vault.key_file);
        }
    }
    sodium_memzero(key, sizeof key);
    return 0;
}

int
ng_cli_vault(int argc, char **argv)
{
    const char *config, *pos[1];
    int npos, as_json = 0, rc;
    const ng_cli_opt opts[] = {{"--json", NULL, &as_json}, {NULL, NULL, NULL}};
    ng_cli_ctx c;

    rc = ng_cli_parse("vault", argc, argv, opts, &config, pos, 1, &npos);
    if (rc != 0)
        return rc;
    if (npos != 1 || (strcmp(pos[0], "init") != 0 && strcmp(pos[0], "rekey") != 0 && strcmp(pos[0], "verify") != 0))
        return ng_cli_fail(NG_EXIT_USAGE, "vault", "expected init, rekey or verify (noisegate help)");
    rc = ng_cli_ctx_open(&c, "vault", config, strcmp(pos[0], "init") != 0);
    if (rc == 0) {
        if (strcmp(pos[0], "init") == 0)
            rc = vault_init(&c);
        else if (strcmp(pos[0], "rekey") == 0)
            rc = vault_rekey(&c);
        else
            rc = vault_verify(&c, as_json);
    }
    ng_cli_ctx_close(&c);
    return rc;
}

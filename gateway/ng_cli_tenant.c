/*
 * noisegate tenant|backend|key: tenants, their backends and their keys;
 * through the running gateway, else on the vault (ng_cli_manage.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "ng_cli.h"
#include "ng_cli_manage.h"
#include "ng_webhook.h"

/* Usage is judged before the vault is opened, so its answer never depends on the vault's state. */
static int
check_usage(const char *cmd, const char *sub, const char *const *subs, const char *slug)
{
    size_t i;

    for (i = 0; subs[i] != NULL && strcmp(subs[i], sub) != 0; i++)
        ;
    if (subs[i] == NULL)
        return ng_cli_fail(NG_EXIT_USAGE, cmd, "unknown subcommand '%s' (noisegate help)", sub);
    if (slug != NULL && !ng_tenant_slug_ok(slug))
        return ng_cli_fail(NG_EXIT_USAGE, cmd, "'%s': a tenant id is 1-63 of a-z, 0-9 and '-', not starting with '-'",
                           slug);
    return 0;
}

/* Parses a decimal in [lo, hi]; -1 if it is not one. */
static int
parse_num(const char *s, unsigned long long hi, unsigned long long *out)
{
    unsigned long long v = 0;

    if (s == NULL || *s == '\0' || strlen(s) > 19)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (unsigned long long)(*s - '0');
    }
    if (v > hi)
        return -1;
    *out = v;
    return 0;
}

static void
tenant_table(const json_t *list)
{
    const json_t *t;
    size_t i;

    printf("%-24s %5s  %-64s %8s %5s\n", "TENANT", "EPOCH", "KEY ID", "BACKENDS", "PEERS");
    json_array_foreach(list, i, t) printf(
        "%-24s %5lld  %-64s %8lld %5lld\n", json_string_value(json_object_get(t, "slug")),
        (long long)json_integer_value(json_object_get(t, "epoch")), json_string_value(json_object_get(t, "key_id")),
        (long long)json_integer_value(json_object_get(t, "backends")),
        (long long)json_integer_value(json_object_get(t, "peers")));
}

static int
tenant_limits(ng_manage_op *o, const char *max_message, const char *rate)
{
    unsigned long long n;

    if (max_message != NULL) {
        if (parse_num(max_message, 64ull * 1024 * 1024, &n) != 0)
            return ng_cli_fail(NG_EXIT_USAGE, "tenant", "--max-message: expected bytes 0-67108864");
        o->opts.max_message = n;
    }
    if (rate != NULL) {
        if (parse_num(rate, 1000000, &n) != 0)
            return ng_cli_fail(NG_EXIT_USAGE, "tenant", "--rate: expected messages per second 0-1000000");
        o->opts.rate = (uint32_t)n;
    }
    return 0;
}

/* The kind at the index of sub in subs (which check_usage has found there). */
static ng_manage_kind
kind_at(const char *sub, const char *const *subs, const ng_manage_kind *kinds)
{
    size_t i;

    for (i = 0; strcmp(subs[i], sub) != 0; i++)
        ;
    return kinds[i];
}

int
ng_cli_tenant(int argc, char **argv)
{
    static const char *const subs[] = {"list", "create", "show", "delete", NULL};
    static const ng_manage_kind kinds[] = {NG_MANAGE_TENANT_LIST, NG_MANAGE_TENANT_CREATE, NG_MANAGE_TENANT_SHOW,
                                           NG_MANAGE_TENANT_DELETE};
    const char *config, *pos[2], *max_message = NULL, *rate = NULL;
    ng_manage_op o;
    int npos, as_json = 0, psk = 0, anon = 0, rc;
    const ng_cli_opt opts[] = {{"--json", NULL, &as_json},
                               {"--psk", NULL, &psk},
                               {"--allow-anonymous", NULL, &anon},
                               {"--max-message", &max_message, NULL},
                               {"--rate", &rate, NULL},
                               {NULL, NULL, NULL}};

    rc = ng_cli_parse("tenant", argc, argv, opts, &config, pos, 2, &npos);
    if (rc != 0)
        return rc;
    memset(&o, 0, sizeof o);
    o.opts.psk = psk;
    o.opts.allow_anonymous = anon;
    if (npos == 0 || (strcmp(pos[0], "list") == 0) != (npos == 1))
        return ng_cli_fail(NG_EXIT_USAGE, "tenant", "expected create|show|delete TENANT, or list (noisegate help)");
    o.slug = npos > 1 ? pos[1] : NULL;
    if ((rc = check_usage("tenant", pos[0], subs, o.slug)) != 0 || (rc = tenant_limits(&o, max_message, rate)) != 0)
        return rc;
    o.kind = kind_at(pos[0], subs, kinds);
    rc = ng_cli_manage("tenant", config, &o);
    if (rc != 0)
        return rc;
    if (o.kind == NG_MANAGE_TENANT_LIST && !as_json)
        tenant_table(json_object_get(o.result, "tenants"));
    else if (o.kind == NG_MANAGE_TENANT_LIST)
        ng_cli_print_json(json_object_get(o.result, "tenants"));
    else if (o.kind == NG_MANAGE_TENANT_DELETE)
        printf("deleted tenant %s and every key, backend and peer it had\n", o.slug);
    else
        ng_cli_print_json(o.result);
    json_decref(o.result);
    return NG_EXIT_OK;
}

static void
backend_table(const json_t *list)
{
    const json_t *b;
    size_t i;

    printf("%-6s %-8s %-7s %-6s %-50s %s\n", "ID", "STATUS", "ADAPTER", "MODE", "PUBLIC KEY", "URL");
    json_array_foreach(list, i, b)
    {
        const char *pk = json_string_value(json_object_get(b, "public_key"));
        const char *adapter = json_string_value(json_object_get(b, "adapter"));
        const char *mode = json_string_value(json_object_get(b, "mode"));

        printf("%-6s %-8s %-7s %-6s %-50s %s\n", json_string_value(json_object_get(b, "id")),
               json_string_value(json_object_get(b, "status")), adapter != NULL ? adapter : "webhook",
               mode != NULL ? mode : "opened", pk && *pk ? pk : "-", json_string_value(json_object_get(b, "url")));
    }
}

int
ng_cli_backend(int argc, char **argv)
{
    static const char *const subs[] = {"add", "list", "remove", "rotate-secret", NULL};
    static const ng_manage_kind kinds[] = {NG_MANAGE_BACKEND_ADD, NG_MANAGE_BACKEND_LIST, NG_MANAGE_BACKEND_REMOVE,
                                           NG_MANAGE_BACKEND_ROTATE};
    const char *config, *pos[3], *url = NULL, *whpk = NULL, *problem;
    uint8_t pk[NG_WEBHOOK_PK_BYTES];
    ng_manage_op o = {0};
    int npos, as_json = 0, rc;
    const ng_cli_opt opts[] = {{"--json", NULL, &as_json},
                               {"--url", &url, NULL},
                               {"--public-key", &whpk, NULL},
                               {"--adapter", &o.backend.adapter, NULL},
                               {"--mode", &o.backend.mode, NULL},
                               {"--subject", &o.backend.subject, NULL},
                               {NULL, NULL, NULL}};

    rc = ng_cli_parse("backend", argc, argv, opts, &config, pos, 3, &npos);
    if (rc != 0)
        return rc;
    if (npos < 2)
        return ng_cli_fail(NG_EXIT_USAGE, "backend", "expected add|list TENANT or remove|rotate-secret TENANT ID");
    o.slug = pos[1];
    o.id = npos > 2 ? pos[2] : NULL;
    o.url = url;
    o.text = whpk;
    if (strcmp(pos[0], "add") == 0 && (npos != 2 || url == NULL))
        return ng_cli_fail(
            NG_EXIT_USAGE, "backend",
            "add TENANT --url URL [--public-key whpk_...] [--adapter webhook|nats] [--mode opened|sealed] "
            "[--subject PREFIX]");
    if (strcmp(pos[0], "add") == 0 && (problem = ng_tenant_backend_problem(url, &o.backend)) != NULL)
        return ng_cli_fail(NG_EXIT_USAGE, "backend", "--%s", problem);
    if (strcmp(pos[0], "add") == 0 && whpk != NULL && ng_webhook_public_parse(whpk, pk) != NG_OK)
        return ng_cli_fail(NG_EXIT_FAILED, "backend",
                           "--public-key: expected whpk_ and the base64 of an Ed25519 public key");
    if ((strcmp(pos[0], "remove") == 0 || strcmp(pos[0], "rotate-secret") == 0) &&
        (npos != 3 || strlen(o.id) >= NG_TENANT_ID_BYTES || o.id[0] != 'b' || o.id[1] == '\0' ||
         strspn(o.id + 1, "0123456789") != strlen(o.id + 1)))
        return ng_cli_fail(NG_EXIT_USAGE, "backend", "%s TENANT ID (an id is b and digits: b1, b2, ...)", pos[0]);
    if (strcmp(pos[0], "list") == 0 && npos != 2)
        return ng_cli_fail(NG_EXIT_USAGE, "backend", "list TENANT");
    if ((rc = check_usage("backend", pos[0], subs, o.slug)) != 0)
        return rc;
    o.kind = kind_at(pos[0], subs, kinds);
    rc = ng_cli_manage("backend", config, &o);
    if (rc != 0)
        return rc;
    if (o.kind == NG_MANAGE_BACKEND_LIST && as_json)
        ng_cli_print_json(json_object_get(o.result, "backends"));
    else if (o.kind == NG_MANAGE_BACKEND_LIST)
        backend_table(json_object_get(o.result, "backends"));
    else if (o.kind == NG_MANAGE_BACKEND_ADD)
        printf("backend %s of tenant %s: %s (%s, %s)\nwebhook secret (shown once, give it to the backend): %s\n",
               json_string_value(json_object_get(o.result, "id")), o.slug, url,
               json_string_value(json_object_get(o.result, "adapter")),
               json_string_value(json_object_get(o.result, "mode")),
               json_string_value(json_object_get(o.result, "whsec")));
    else if (o.kind == NG_MANAGE_BACKEND_REMOVE)
        printf("removed backend %s of tenant %s\n", o.id, o.slug);
    else
        printf("new webhook secret of backend %s (shown once; the old one signs too until the gateway drops it): %s\n",
               o.id, json_string_value(json_object_get(o.result, "whsec")));
    json_decref(o.result); /* wipes the secret (ng_jsonmem) */
    return NG_EXIT_OK;
}

static void
key_table(const json_t *keys)
{
    const json_t *k;
    size_t i;

    printf("%5s  %-7s  %-7s  %-64s  %s\n", "EPOCH", "SENDING", "HELD BY", "PUBLIC KEY", "KEY ID");
    json_array_foreach(keys, i, k)
        printf("%5lld  %-7s  %-7s  %-64s  %s\n", (long long)json_integer_value(json_object_get(k, "epoch")),
               json_is_true(json_object_get(k, "sending")) ? "yes" : "no",
               json_is_true(json_object_get(k, "held_by_backend")) ? "backend" : "gateway",
               json_string_value(json_object_get(k, "public")), json_string_value(json_object_get(k, "key_id")));
}

/* `key export`'s answer: the private key once, and what handing it over means. */
static void
print_export(const char *slug, const json_t *r)
{
    long long epoch = (long long)json_integer_value(json_object_get(r, "epoch"));

    printf("private key of tenant %s, epoch %lld (shown once; give it to the backend): %s\n", slug, epoch,
           json_string_value(json_object_get(r, "private_key")));
    printf("public key %s, key id %s\n", json_string_value(json_object_get(r, "public_key")),
           json_string_value(json_object_get(r, "key_id")));
    printf("epoch %lld is now held only by the backend: the gateway can no longer open parcels sealed to it, nor "
           "seal K or X parcels with it\n",
           epoch);
}

/* 1 if s is 64 hex characters: an X25519 public key. */
static int
public_key_hex(const char *s)
{
    return s != NULL && strlen(s) == 2 * NG_KEY_BYTES && strspn(s, "0123456789abcdefABCDEF") == 2 * NG_KEY_BYTES;
}

int
ng_cli_key(int argc, char **argv)
{
    static const char *const subs[] = {"rotate", "retire", "list", "export", "import", NULL};
    static const ng_manage_kind kinds[] = {NG_MANAGE_KEY_ROTATE, NG_MANAGE_KEY_RETIRE, NG_MANAGE_KEY_LIST,
                                           NG_MANAGE_KEY_EXPORT, NG_MANAGE_KEY_IMPORT};
    const char *config, *pos[3], *public_key = NULL;
    unsigned long long epoch = 0;
    ng_manage_op o;
    int npos, as_json = 0, rc;
    const ng_cli_opt opts[] = {{"--json", NULL, &as_json}, {"--public-key", &public_key, NULL}, {NULL, NULL, NULL}};

    rc = ng_cli_parse("key", argc, argv, opts, &config, pos, 3, &npos);
    if (rc != 0)
        return rc;
    if (npos < 2 || (strcmp(pos[0], "retire") == 0) != (npos == 3) ||
        (npos == 3 && (parse_num(pos[2], UINT32_MAX, &epoch) != 0 || epoch == 0)) ||
        (strcmp(pos[0], "import") == 0) != (public_key != NULL))
        return ng_cli_fail(NG_EXIT_USAGE, "key",
                           "expected rotate|list|export TENANT, import TENANT --public-key HEX or retire TENANT EPOCH "
                           "(noisegate help)");
    if (public_key != NULL && !public_key_hex(public_key))
        return ng_cli_fail(NG_EXIT_USAGE, "key",
                           "--public-key: expected the 64 hex characters of an X25519 public key");
    memset(&o, 0, sizeof o);
    o.slug = pos[1];
    o.epoch = (uint32_t)epoch;
    o.text = public_key;
    if ((rc = check_usage("key", pos[0], subs, o.slug)) != 0)
        return rc;
    o.kind = kind_at(pos[0], subs, kinds);
    rc = ng_cli_manage("key", config, &o);
    if (rc != 0)
        return rc;
    if (o.kind == NG_MANAGE_KEY_LIST && as_json)
        ng_cli_print_json(json_object_get(o.result, "keys"));
    else if (o.kind == NG_MANAGE_KEY_LIST)
        key_table(json_object_get(o.result, "keys"));
    else if (o.kind == NG_MANAGE_KEY_ROTATE)
        printf("tenant %s now sends with epoch %lld; older keys still open parcels until retired\n", o.slug,
               (long long)json_integer_value(json_object_get(o.result, "epoch")));
    else if ((o.kind == NG_MANAGE_KEY_EXPORT || o.kind == NG_MANAGE_KEY_IMPORT) && as_json)
        ng_cli_print_json(o.result);
    else if (o.kind == NG_MANAGE_KEY_EXPORT)
        print_export(o.slug, o.result);
    else if (o.kind == NG_MANAGE_KEY_IMPORT)
        printf("tenant %s now sends with epoch %lld, key id %s, whose private key only the backend holds; peers seal "
               "to it once they import the tenant's parameters again (peer export)\n",
               o.slug, (long long)json_integer_value(json_object_get(o.result, "epoch")),
               json_string_value(json_object_get(o.result, "key_id")));
    else
        printf("retired epoch %u of tenant %s: parcels sealed to it no longer open\n", o.epoch, o.slug);
    json_decref(o.result); /* an export's private key is wiped with it (ng_jsonmem) */
    /* The vault no longer has the key: if this was its one showing, the operator must know it was not seen. */
    if (fflush(stdout) != 0 || ferror(stdout))
        return ng_cli_fail(NG_EXIT_USAGE, "key",
                           o.kind == NG_MANAGE_KEY_EXPORT
                               ? "the key was exported but could not be written out, so it is lost: run key rotate "
                                 "and export the new epoch"
                               : "could not write the answer out");
    return NG_EXIT_OK;
}

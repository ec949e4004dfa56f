/* noisegate tenant|backend|key: tenants, their backends and their keys, offline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "ng_cli.h"
#include "ng_cli_vault.h"
#include "ng_tenant.h"

enum { WHSEC_CAP = 64 };

/* What an update does; the callbacks read their arguments from here. */
struct op {
    const char *slug, *id, *url, *whpk;
    ng_tenant_opts opts;
    uint32_t epoch;
    int64_t now;
    char out_id[NG_TENANT_ID_BYTES];
    char whsec[WHSEC_CAP];
    ng_err err;    /* what the library said, for a more precise message */
    json_t *shown; /* tenant create: the new tenant, read while the vault is open */
};

static ng_err
do_create(ng_vault *v, void *arg)
{
    struct op *o = arg;
    ng_err err;

    /* Shown from inside the update: opening the vault again would derive a passphrase's key twice. */
    json_decref(o->shown);
    o->shown = NULL;
    err = ng_tenant_create(v, o->slug, &o->opts, o->now);
    return err ? err : ng_tenant_show(v, o->slug, &o->shown);
}

static ng_err
do_delete(ng_vault *v, void *arg)
{
    return ng_tenant_delete(v, ((struct op *)arg)->slug);
}

static ng_err
do_backend_add(ng_vault *v, void *arg)
{
    struct op *o = arg;

    o->err = ng_tenant_backend_add(v, o->slug, o->url, o->whpk, o->now, o->out_id, o->whsec, sizeof o->whsec);
    return o->err;
}

static ng_err
do_backend_remove(ng_vault *v, void *arg)
{
    struct op *o = arg;

    return ng_tenant_backend_remove(v, o->slug, o->id);
}

static ng_err
do_backend_rotate(ng_vault *v, void *arg)
{
    struct op *o = arg;

    return ng_tenant_backend_rotate_secret(v, o->slug, o->id, o->now, o->whsec, sizeof o->whsec);
}

static ng_err
do_key_rotate(ng_vault *v, void *arg)
{
    struct op *o = arg;

    return ng_tenant_key_rotate(v, o->slug, o->now, &o->epoch);
}

static ng_err
do_key_retire(ng_vault *v, void *arg)
{
    struct op *o = arg;

    o->err = ng_tenant_key_retire(v, o->slug, o->epoch);
    return o->err;
}

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

static void
print_json(json_t *j)
{
    json_dumpf(j, stdout, JSON_INDENT(2));
    putchar('\n');
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

static int
tenant_list(ng_cli_ctx *c, int as_json)
{
    json_t *list, *t;
    ng_vault *v;
    size_t i;
    ng_err err;
    int rc = ng_cli_ctx_vault(c, &v);

    if (rc != 0)
        return rc;
    err = ng_tenant_list(v, &list);
    ng_vault_close(v);
    if (err)
        return ng_cli_report(c, err, "tenants");
    if (as_json) {
        print_json(list);
    } else {
        printf("%-24s %5s  %-64s %8s %5s\n", "TENANT", "EPOCH", "KEY ID", "BACKENDS", "PEERS");
        json_array_foreach(list, i, t) printf(
            "%-24s %5lld  %-64s %8lld %5lld\n", json_string_value(json_object_get(t, "slug")),
            (long long)json_integer_value(json_object_get(t, "epoch")), json_string_value(json_object_get(t, "key_id")),
            (long long)json_integer_value(json_object_get(t, "backends")),
            (long long)json_integer_value(json_object_get(t, "peers")));
    }
    json_decref(list);
    return NG_EXIT_OK;
}

/* Runs a read-only query of one tenant and prints its JSON (or a table via fmt). */
static int
show(ng_cli_ctx *c, const char *slug, ng_err (*query)(ng_vault *, const char *, json_t **), json_t **keep)
{
    char what[96];
    json_t *out;
    ng_vault *v;
    ng_err err;
    int rc = ng_cli_ctx_vault(c, &v);

    if (rc != 0)
        return rc;
    err = query(v, slug, &out);
    ng_vault_close(v);
    snprintf(what, sizeof what, "tenant %s", slug);
    if (err)
        return ng_cli_report(c, err, what);
    if (keep != NULL)
        *keep = out;
    else {
        print_json(out);
        json_decref(out);
    }
    return NG_EXIT_OK;
}

static int
tenant_limits(struct op *o, const char *max_message, const char *rate)
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

static int
tenant_create(ng_cli_ctx *c, struct op *o)
{
    char what[96];
    int rc;

    snprintf(what, sizeof what, "tenant %s", o->slug);
    rc = ng_cli_ctx_update(c, do_create, o, what);
    if (rc == 0)
        print_json(o->shown);
    json_decref(o->shown);
    o->shown = NULL;
    return rc;
}

int
ng_cli_tenant(int argc, char **argv)
{
    const char *config, *pos[2], *max_message = NULL, *rate = NULL;
    struct op o;
    int npos, as_json = 0, psk = 0, anon = 0, rc;
    const ng_cli_opt opts[] = {{"--json", NULL, &as_json},
                               {"--psk", NULL, &psk},
                               {"--allow-anonymous", NULL, &anon},
                               {"--max-message", &max_message, NULL},
                               {"--rate", &rate, NULL},
                               {NULL, NULL, NULL}};
    ng_cli_ctx c;
    char what[96];

    rc = ng_cli_parse("tenant", argc, argv, opts, &config, pos, 2, &npos);
    if (rc != 0)
        return rc;
    memset(&o, 0, sizeof o);
    o.now = ng_cli_now();
    o.opts.psk = psk;
    o.opts.allow_anonymous = anon;
    if (npos == 0 || (strcmp(pos[0], "list") == 0) != (npos == 1))
        return ng_cli_fail(NG_EXIT_USAGE, "tenant", "expected create|show|delete TENANT, or list (noisegate help)");
    o.slug = npos > 1 ? pos[1] : NULL;
    {
        static const char *const subs[] = {"list", "create", "show", "delete", NULL};
        if ((rc = check_usage("tenant", pos[0], subs, o.slug)) != 0 || (rc = tenant_limits(&o, max_message, rate)) != 0)
            return rc;
    }
    rc = ng_cli_ctx_open(&c, "tenant", config, 1);
    if (rc == 0) {
        if (strcmp(pos[0], "list") == 0)
            rc = tenant_list(&c, as_json);
        else if (strcmp(pos[0], "create") == 0)
            rc = tenant_create(&c, &o);
        else if (strcmp(pos[0], "show") == 0)
            rc = show(&c, o.slug, ng_tenant_show, NULL);
        else if (strcmp(pos[0], "delete") == 0) {
            snprintf(what, sizeof what, "tenant %s", o.slug);
            rc = ng_cli_ctx_update(&c, do_delete, &o, what);
            if (rc == 0)
                printf("deleted tenant %s and every key, backend and peer it had\n", o.slug);
        } else
            rc = ng_cli_fail(NG_EXIT_USAGE, "tenant", "unknown subcommand '%s' (noisegate help)", pos[0]);
    }
    ng_cli_ctx_close(&c);
    return rc;
}

static int
backend_list(ng_cli_ctx *c, const char *slug, int as_json)
{
    json_t *list, *b;
    size_t i;
    int rc = show(c, slug, ng_tenant_backend_list, &list);

    if (rc != 0)
        return rc;
    if (as_json) {
        print_json(list);
    } else {
        printf("%-6s %-8s %-50s %s\n", "ID", "STATUS", "PUBLIC KEY", "URL");
        json_array_foreach(list, i, b)
        {
            const char *pk = json_string_value(json_object_get(b, "public_key"));
            printf("%-6s %-8s %-50s %s\n", json_string_value(json_object_get(b, "id")),
                   json_string_value(json_object_get(b, "status")), pk && *pk ? pk : "-",
                   json_string_value(json_object_get(b, "url")));
        }
    }
    json_decref(list);
    return NG_EXIT_OK;
}

int
ng_cli_backend(int argc, char **argv)
{
    const char *config, *pos[3], *url = NULL, *whpk = NULL;
    struct op o;
    int npos, as_json = 0, rc;
    const ng_cli_opt opts[] = {
        {"--json", NULL, &as_json}, {"--url", &url, NULL}, {"--public-key", &whpk, NULL}, {NULL, NULL, NULL}};
    ng_cli_ctx c;
    char what[128];

    rc = ng_cli_parse("backend", argc, argv, opts, &config, pos, 3, &npos);
    if (rc != 0)
        return rc;
    if (npos < 2)
        return ng_cli_fail(NG_EXIT_USAGE, "backend", "expected add|list TENANT or remove|rotate-secret TENANT ID");
    memset(&o, 0, sizeof o);
    o.now = ng_cli_now();
    o.slug = pos[1];
    o.id = npos > 2 ? pos[2] : NULL;
    o.url = url;
    o.whpk = whpk;
    if (strcmp(pos[0], "add") == 0 && (npos != 2 || url == NULL))
        return ng_cli_fail(NG_EXIT_USAGE, "backend", "add TENANT --url URL [--public-key whpk_...]");
    if (strcmp(pos[0], "add") == 0 && !ng_tenant_url_ok(url))
        return ng_cli_fail(NG_EXIT_USAGE, "backend", "--url: expected an http:// or https:// URL without user info");
    if ((strcmp(pos[0], "remove") == 0 || strcmp(pos[0], "rotate-secret") == 0) && npos != 3)
        return ng_cli_fail(NG_EXIT_USAGE, "backend", "%s TENANT ID", pos[0]);
    {
        static const char *const subs[] = {"add", "list", "remove", "rotate-secret", NULL};
        if ((rc = check_usage("backend", pos[0], subs, o.slug)) != 0)
            return rc;
    }
    rc = ng_cli_ctx_open(&c, "backend", config, 1);
    snprintf(what, sizeof what, o.id ? "backend %s of tenant %s" : "tenant %s", o.id ? o.id : o.slug, o.slug);
    if (rc == 0) {
        if (strcmp(pos[0], "list") == 0 && npos == 2) {
            rc = backend_list(&c, o.slug, as_json);
        } else if (strcmp(pos[0], "add") == 0) {
            rc = ng_cli_ctx_update(&c, do_backend_add, &o, what);
            if (rc == 0)
                printf("backend %s of tenant %s: %s\nwebhook secret (shown once, give it to the backend): %s\n",
                       o.out_id, o.slug, url, o.whsec);
        } else if (strcmp(pos[0], "remove") == 0) {
            rc = ng_cli_ctx_update(&c, do_backend_remove, &o, what);
            if (rc == 0)
                printf("removed backend %s of tenant %s\n", o.id, o.slug);
        } else if (strcmp(pos[0], "rotate-secret") == 0) {
            rc = ng_cli_ctx_update(&c, do_backend_rotate, &o, what);
            if (rc == 0)
                printf("new webhook secret of backend %s (shown once; the old one signs too until the gateway "
                       "drops it): %s\n",
                       o.id, o.whsec);
        } else {
            rc = ng_cli_fail(NG_EXIT_USAGE, "backend", "unknown subcommand '%s' (noisegate help)", pos[0]);
        }
    }
    if (o.err == NG_ERR_PARSE || o.err == NG_ERR_BAD_KEY)
        fprintf(stderr, "noisegate backend: --public-key: expected whpk_ and the base64 of an Ed25519 public key\n");
    sodium_memzero(o.whsec, sizeof o.whsec);
    ng_cli_ctx_close(&c);
    return rc;
}

static int
key_list(ng_cli_ctx *c, const char *slug, int as_json)
{
    json_t *t, *k;
    size_t i;
    int rc = show(c, slug, ng_tenant_show, &t);

    if (rc != 0)
        return rc;
    if (as_json) {
        print_json(json_object_get(t, "keys"));
    } else {
        printf("%5s  %-7s  %-64s  %s\n", "EPOCH", "SENDING", "PUBLIC KEY", "KEY ID");
        json_array_foreach(json_object_get(t, "keys"), i, k)
            printf("%5lld  %-7s  %-64s  %s\n", (long long)json_integer_value(json_object_get(k, "epoch")),
                   json_is_true(json_object_get(k, "sending")) ? "yes" : "no",
                   json_string_value(json_object_get(k, "public")), json_string_value(json_object_get(k, "key_id")));
    }
    json_decref(t);
    return NG_EXIT_OK;
}

int
ng_cli_key(int argc, char **argv)
{
    const char *config, *pos[3];
    unsigned long long epoch = 0;
    struct op o;
    int npos, as_json = 0, rc;
    const ng_cli_opt opts[] = {{"--json", NULL, &as_json}, {NULL, NULL, NULL}};
    ng_cli_ctx c;
    char what[128];

    rc = ng_cli_parse("key", argc, argv, opts, &config, pos, 3, &npos);
    if (rc != 0)
        return rc;
    if (npos < 2 || (strcmp(pos[0], "retire") == 0) != (npos == 3) ||
        (npos == 3 && (parse_num(pos[2], UINT32_MAX, &epoch) != 0 || epoch == 0)))
        return ng_cli_fail(NG_EXIT_USAGE, "key", "expected rotate|list TENANT or retire TENANT EPOCH (noisegate help)");
    memset(&o, 0, sizeof o);
    o.now = ng_cli_now();
    o.slug = pos[1];
    o.epoch = (uint32_t)epoch;
    {
        static const char *const subs[] = {"rotate", "retire", "list", NULL};
        if ((rc = check_usage("key", pos[0], subs, o.slug)) != 0)
            return rc;
    }
    rc = ng_cli_ctx_open(&c, "key", config, 1);
    if (rc == 0) {
        if (strcmp(pos[0], "list") == 0) {
            rc = key_list(&c, o.slug, as_json);
        } else if (strcmp(pos[0], "rotate") == 0) {
            snprintf(what, sizeof what, "tenant %s", o.slug);
            rc = ng_cli_ctx_update(&c, do_key_rotate, &o, what);
            if (rc == 0)
                printf("tenant %s now sends with epoch %u; older keys still open parcels until retired\n", o.slug,
                       o.epoch);
        } else if (strcmp(pos[0], "retire") == 0) {
            snprintf(what, sizeof what, "epoch %u of tenant %s", o.epoch, o.slug);
            rc = ng_cli_ctx_update(&c, do_key_retire, &o, what);
            if (o.err == NG_ERR_INVALID_ARG)
                fprintf(stderr, "noisegate key: the sending (newest) key cannot be retired: rotate first\n");
            if (rc == 0)
                printf("retired epoch %u of tenant %s: parcels sealed to it no longer open\n", o.epoch, o.slug);
        } else {
            rc = ng_cli_fail(NG_EXIT_USAGE, "key", "unknown subcommand '%s' (noisegate help)", pos[0]);
        }
    }
    ng_cli_ctx_close(&c);
    return rc;
}

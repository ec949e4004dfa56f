/* noisegate peer export|import|list|remove: connection parameters between tenants. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "ng_cli.h"
#include "ng_cli_vault.h"
#include "ng_io.h"
#include "ng_peer.h"
#include "ng_tenant.h"

struct op {
    const char *slug, *name, *params;
    int64_t now;
    char used[64];
    ng_err err;
};

static ng_err
do_import(ng_vault *v, void *arg)
{
    struct op *o = arg;

    o->err = ng_peer_import(v, o->slug, o->params, o->name, o->now, o->used);
    return o->err;
}

static ng_err
do_remove(ng_vault *v, void *arg)
{
    struct op *o = arg;

    return ng_peer_remove(v, o->slug, o->name);
}

/* The outbox URL peers read this tenant's parcels from. */
static void
default_outbox(const ng_config *cfg, char *out, size_t cap)
{
    if (cfg->outbox.store == NG_CONFIG_OUTBOX_STORE_HTTP)
        snprintf(out, cap, "%s", cfg->outbox.http_url);
    else
        snprintf(out, cap, "%s/v1/outbox", cfg->public_url);
}

static int
peer_export(ng_cli_ctx *c, const char *slug, const char *outbox)
{
    char url[NG_TENANT_MAX_URL + 1], fp[NG_PEER_FINGERPRINT_BYTES], what[96];
    ng_vault *v;
    char *params;
    ng_err err;
    int rc;

    if (outbox == NULL)
        default_outbox(&c->cfg, url, sizeof url);
    else
        snprintf(url, sizeof url, "%s", outbox);
    if (!ng_tenant_url_ok(url))
        return ng_cli_fail(NG_EXIT_USAGE, c->cmd, "outbox '%s': expected an http:// or https:// URL", url);
    rc = ng_cli_ctx_vault(c, &v);
    if (rc != 0)
        return rc;
    err = ng_peer_export(v, slug, url, ng_cli_now(), &params, fp);
    ng_vault_close(v);
    snprintf(what, sizeof what, "tenant %s", slug);
    if (err)
        return ng_cli_report(c, err, what);
    printf("%s\n", params);
    fprintf(stderr,
            "connection parameters of tenant %s (they carry its read token and psk: send them privately)\n"
            "fingerprint %s: compare it with what the importer sees\n",
            slug, fp);
    sodium_memzero(params, strlen(params));
    free(params);
    return NG_EXIT_OK;
}

/* The parameters from the argument, or standard input for "-" (keeps them out of the process list). */
static int
read_params(const char *cmd, const char *arg, char **out)
{
    uint8_t *buf;
    size_t len, start = 0;
    ng_err err;

    if (strcmp(arg, "-") != 0) {
        *out = strdup(arg);
        return *out == NULL ? ng_cli_fail(NG_EXIT_FAILED, cmd, "out of memory") : 0;
    }
    err = ng_io_read_all("-", NG_PEER_MAX_PARAMS + 2, &buf, &len);
    if (err == NG_ERR_TOO_LARGE)
        return ng_cli_fail(NG_EXIT_FAILED, cmd, "connection parameters: over %d bytes", NG_PEER_MAX_PARAMS);
    if (err)
        return ng_cli_fail(NG_EXIT_USAGE, cmd, "standard input: %s", ng_strerror(err));
    /* Copy and paste brings whitespace around the string. */
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
        len--;
    while (start < len && (buf[start] == ' ' || buf[start] == '\n'))
        start++;
    *out = malloc(len - start + 1);
    if (*out != NULL) {
        memcpy(*out, buf + start, len - start);
        (*out)[len - start] = '\0';
    }
    sodium_memzero(buf, len);
    free(buf);
    return *out == NULL ? ng_cli_fail(NG_EXIT_FAILED, cmd, "out of memory") : 0;
}

static const char *
params_error(ng_err err)
{
    switch (err) {
    case NG_ERR_BAD_VERSION: return "an unknown version (this gateway reads ngcp1)";
    case NG_ERR_AUTH: return "the signature does not verify (changed in transit?)";
    case NG_ERR_TOO_LARGE: return "too long";
    case NG_ERR_BAD_KEY: return "a static key is a low-order point";
    default: return "damaged or not connection parameters (expected ngcp1:...)";
    }
}

static int
peer_import(ng_cli_ctx *c, struct op *o, const char *arg)
{
    json_t *shown;
    char *params;
    char what[160];
    ng_err err;
    int rc = read_params(c->cmd, arg, &params);

    if (rc != 0)
        return rc;
    /* Checked before the vault is touched, for a message about the string itself. */
    err = ng_peer_decode(params, &shown);
    if (err) {
        rc = ng_cli_fail(NG_EXIT_FAILED, c->cmd, "connection parameters: %s", params_error(err));
    } else {
        o->params = params;
        snprintf(what, sizeof what, "peer %s of tenant %s",
                 o->name ? o->name : json_string_value(json_object_get(shown, "name")), o->slug);
        rc = ng_cli_ctx_update(c, do_import, o, what);
        if (o->err == NG_ERR_AUTH)
            fprintf(stderr, "noisegate peer: these parameters are signed by another key than the peer's we hold; "
                            "remove the peer first if it really changed its signing key\n");
        else if (o->err == NG_ERR_EXISTS)
            fprintf(stderr, "noisegate peer: these parameters are older than the ones held for this peer\n");
        if (rc == 0)
            printf("imported peer %s into tenant %s\nfingerprint %s: compare it with what the exporter saw\n", o->used,
                   o->slug, json_string_value(json_object_get(shown, "fingerprint")));
        json_decref(shown);
    }
    sodium_memzero(params, strlen(params));
    free(params);
    return rc;
}

static int
peer_list(ng_cli_ctx *c, const char *slug, int as_json)
{
    json_t *list, *p, *k;
    ng_vault *v;
    size_t i, n;
    char what[96];
    ng_err err;
    int rc = ng_cli_ctx_vault(c, &v);

    if (rc != 0)
        return rc;
    err = ng_peer_list(v, slug, &list);
    ng_vault_close(v);
    snprintf(what, sizeof what, "tenant %s", slug);
    if (err)
        return ng_cli_report(c, err, what);
    if (as_json) {
        json_dumpf(list, stdout, JSON_INDENT(2));
        putchar('\n');
    } else {
        printf("%-20s %-4s %-5s %-39s %s\n", "PEER", "KEYS", "PSK", "FINGERPRINT", "OUTBOX");
        json_array_foreach(list, i, p)
        {
            k = json_object_get(p, "keys");
            n = json_array_size(k);
            printf("%-20s %-4zu %-5s %-39s %s\n", json_string_value(json_object_get(p, "name")), n,
                   json_is_true(json_object_get(p, "psk")) ? "yes" : "no",
                   json_string_value(json_object_get(p, "fingerprint")),
                   json_string_value(json_object_get(p, "outbox")));
        }
    }
    json_decref(list);
    return NG_EXIT_OK;
}

int
ng_cli_peer(int argc, char **argv)
{
    const char *config, *pos[3], *name = NULL, *outbox = NULL;
    struct op o;
    int npos, as_json = 0, rc;
    const ng_cli_opt opts[] = {
        {"--json", NULL, &as_json}, {"--name", &name, NULL}, {"--outbox", &outbox, NULL}, {NULL, NULL, NULL}};
    ng_cli_ctx c;
    char what[160];

    rc = ng_cli_parse("peer", argc, argv, opts, &config, pos, 3, &npos);
    if (rc != 0)
        return rc;
    if (npos < 2 || ((strcmp(pos[0], "import") == 0 || strcmp(pos[0], "remove") == 0) != (npos == 3)))
        return ng_cli_fail(NG_EXIT_USAGE, "peer",
                           "expected export|list TENANT, import TENANT STRING|- or remove TENANT NAME");
    if (name != NULL && !ng_tenant_slug_ok(name))
        return ng_cli_fail(NG_EXIT_USAGE, "peer", "--name: 1-63 of a-z, 0-9 and '-'");
    memset(&o, 0, sizeof o);
    o.now = ng_cli_now();
    o.slug = pos[1];
    o.name = strcmp(pos[0], "remove") == 0 ? pos[2] : name;
    if (strcmp(pos[0], "export") != 0 && strcmp(pos[0], "import") != 0 && strcmp(pos[0], "list") != 0 &&
        strcmp(pos[0], "remove") != 0)
        return ng_cli_fail(NG_EXIT_USAGE, "peer", "unknown subcommand '%s' (noisegate help)", pos[0]);
    if (!ng_tenant_slug_ok(o.slug))
        return ng_cli_fail(NG_EXIT_USAGE, "peer", "'%s': a tenant id is 1-63 of a-z, 0-9 and '-'", o.slug);
    if (o.name != NULL && !ng_tenant_slug_ok(o.name))
        return ng_cli_fail(NG_EXIT_USAGE, "peer", "'%s': a peer name is 1-63 of a-z, 0-9 and '-'", o.name);
    if (outbox != NULL && !ng_tenant_url_ok(outbox))
        return ng_cli_fail(NG_EXIT_USAGE, "peer", "--outbox '%s': expected an http:// or https:// URL", outbox);
    rc = ng_cli_ctx_open(&c, "peer", config, 1);
    if (rc == 0) {
        if (strcmp(pos[0], "export") == 0) {
            rc = peer_export(&c, o.slug, outbox);
        } else if (strcmp(pos[0], "import") == 0) {
            rc = peer_import(&c, &o, pos[2]);
        } else if (strcmp(pos[0], "list") == 0) {
            rc = peer_list(&c, o.slug, as_json);
        } else if (strcmp(pos[0], "remove") == 0) {
            snprintf(what, sizeof what, "peer %s of tenant %s", o.name, o.slug);
            rc = ng_cli_ctx_update(&c, do_remove, &o, what);
            if (rc == 0)
                printf("removed peer %s of tenant %s\n", o.name, o.slug);
        } else {
            rc = ng_cli_fail(NG_EXIT_USAGE, "peer", "unknown subcommand '%s' (noisegate help)", pos[0]);
        }
    }
    ng_cli_ctx_close(&c);
    return rc;
}

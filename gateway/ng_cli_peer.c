/*
 * noisegate peer export|import|list|remove: connection parameters between
 * tenants; through the running gateway, else on the vault (ng_cli_manage.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "ng_cli.h"
#include "ng_cli_manage.h"
#include "ng_io.h"
#include "ng_peer.h"
#include "ng_tenant.h"

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

static void
peer_table(const json_t *list)
{
    const json_t *p;
    size_t i;

    printf("%-20s %-4s %-5s %-39s %s\n", "PEER", "KEYS", "PSK", "FINGERPRINT", "OUTBOX");
    json_array_foreach(list, i, p)
    {
        printf("%-20s %-4zu %-5s %-39s %s\n", json_string_value(json_object_get(p, "name")),
               json_array_size(json_object_get(p, "keys")), json_is_true(json_object_get(p, "psk")) ? "yes" : "no",
               json_string_value(json_object_get(p, "fingerprint")), json_string_value(json_object_get(p, "outbox")));
    }
}

static void
show(const ng_manage_op *o, int as_json)
{
    const json_t *r = o->result;

    switch (o->kind) {
    case NG_MANAGE_PEER_EXPORT:
        printf("%s\n", json_string_value(json_object_get(r, "params")));
        fprintf(stderr,
                "connection parameters of tenant %s (they carry its read token and psk: send them privately)\n"
                "fingerprint %s: compare it with what the importer sees\n",
                o->slug, json_string_value(json_object_get(r, "fingerprint")));
        break;
    case NG_MANAGE_PEER_IMPORT:
        printf("imported peer %s into tenant %s\nfingerprint %s: compare it with what the exporter saw\n",
               json_string_value(json_object_get(r, "peer")), o->slug,
               json_string_value(json_object_get(r, "fingerprint")));
        break;
    case NG_MANAGE_PEER_LIST:
        if (as_json)
            ng_cli_print_json(json_object_get(r, "peers"));
        else
            peer_table(json_object_get(r, "peers"));
        break;
    default: printf("removed peer %s of tenant %s\n", o->id, o->slug);
    }
}

int
ng_cli_peer(int argc, char **argv)
{
    const char *config, *pos[3], *name = NULL, *outbox = NULL;
    ng_manage_op o;
    char *params = NULL;
    int npos, as_json = 0, rc;
    const ng_cli_opt opts[] = {
        {"--json", NULL, &as_json}, {"--name", &name, NULL}, {"--outbox", &outbox, NULL}, {NULL, NULL, NULL}};

    rc = ng_cli_parse("peer", argc, argv, opts, &config, pos, 3, &npos);
    if (rc != 0)
        return rc;
    if (npos < 2 || ((strcmp(pos[0], "import") == 0 || strcmp(pos[0], "remove") == 0) != (npos == 3)))
        return ng_cli_fail(NG_EXIT_USAGE, "peer",
                           "expected export|list TENANT, import TENANT STRING|- or remove TENANT NAME");
    if (name != NULL && !ng_tenant_slug_ok(name))
        return ng_cli_fail(NG_EXIT_USAGE, "peer", "--name: 1-63 of a-z, 0-9 and '-'");
    memset(&o, 0, sizeof o);
    o.slug = pos[1];
    o.id = strcmp(pos[0], "remove") == 0 ? pos[2] : name;
    o.url = outbox;
    if (strcmp(pos[0], "export") == 0)
        o.kind = NG_MANAGE_PEER_EXPORT;
    else if (strcmp(pos[0], "import") == 0)
        o.kind = NG_MANAGE_PEER_IMPORT;
    else if (strcmp(pos[0], "list") == 0)
        o.kind = NG_MANAGE_PEER_LIST;
    else if (strcmp(pos[0], "remove") == 0)
        o.kind = NG_MANAGE_PEER_REMOVE;
    else
        return ng_cli_fail(NG_EXIT_USAGE, "peer", "unknown subcommand '%s' (noisegate help)", pos[0]);
    if (!ng_tenant_slug_ok(o.slug))
        return ng_cli_fail(NG_EXIT_USAGE, "peer", "'%s': a tenant id is 1-63 of a-z, 0-9 and '-'", o.slug);
    if (o.id != NULL && !ng_tenant_slug_ok(o.id))
        return ng_cli_fail(NG_EXIT_USAGE, "peer", "'%s': a peer name is 1-63 of a-z, 0-9 and '-'", o.id);
    if (outbox != NULL && !ng_peer_outbox_ok(outbox))
        return ng_cli_fail(NG_EXIT_USAGE, "peer",
                           "--outbox '%s': expected an http://, https:// or redis:// URL without user info", outbox);
    if (o.kind == NG_MANAGE_PEER_IMPORT) {
        if ((rc = read_params("peer", pos[2], &params)) != 0)
            return rc;
        o.text = params;
    }
    rc = ng_cli_manage("peer", config, &o);
    if (rc == 0)
        show(&o, as_json);
    json_decref(o.result); /* wipes what it held (ng_jsonmem): exported parameters carry secrets */
    if (params != NULL) {
        sodium_memzero(params, strlen(params));
        free(params);
    }
    return rc;
}

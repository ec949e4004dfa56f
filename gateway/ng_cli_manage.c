#include "ng_cli_manage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "ng_cli.h"
#include "ng_cli_admin.h"

enum { PATH_CAP = 4300 };

void
ng_cli_print_json(const json_t *j)
{
    json_dumpf(j, stdout, JSON_INDENT(2));
    putchar('\n');
}

/* The body of a request, or NULL; the caller wipes it (peer parameters carry secrets). */
static char *
body_of(const ng_manage_op *op)
{
    json_t *doc = NULL;
    char *text;

    switch (op->kind) {
    case NG_MANAGE_TENANT_CREATE:
        doc = json_pack("{s:s, s:b, s:b, s:I, s:I}", "tenant", op->slug, "psk", op->opts.psk, "allow_anonymous",
                        op->opts.allow_anonymous, "max_message", (json_int_t)op->opts.max_message, "rate",
                        (json_int_t)op->opts.rate);
        break;
    case NG_MANAGE_BACKEND_ADD:
        doc = json_pack("{s:s}", "url", op->url);
        if (doc != NULL && op->text != NULL)
            json_object_set_new(doc, "public_key", json_string(op->text));
        if (doc != NULL && op->backend.adapter != NULL)
            json_object_set_new(doc, "adapter", json_string(op->backend.adapter));
        if (doc != NULL && op->backend.mode != NULL)
            json_object_set_new(doc, "mode", json_string(op->backend.mode));
        if (doc != NULL && op->backend.subject != NULL)
            json_object_set_new(doc, "subject", json_string(op->backend.subject));
        break;
    case NG_MANAGE_PEER_IMPORT:
        doc = json_pack("{s:s}", "params", op->text);
        if (doc != NULL && op->id != NULL)
            json_object_set_new(doc, "name", json_string(op->id));
        break;
    case NG_MANAGE_KEY_IMPORT: doc = json_pack("{s:s}", "public_key", op->text); break;
    default: return NULL;
    }
    text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return text;
}

/*
 * The admin API request of op. Every part put in the path has passed the
 * commands' checks (slugs, backend ids, epochs), so it needs no escaping;
 * the outbox URL goes in the query, escaped.
 */
static int
request_of(const ng_manage_op *op, const char **method, char *path, size_t cap)
{
    static const struct {
        ng_manage_kind kind;
        const char *method, *suffix;
    } map[] = {
        {NG_MANAGE_TENANT_SHOW, "GET", ""},
        {NG_MANAGE_TENANT_DELETE, "DELETE", ""},
        {NG_MANAGE_BACKEND_LIST, "GET", "/backends"},
        {NG_MANAGE_BACKEND_ADD, "POST", "/backends"},
        {NG_MANAGE_BACKEND_REMOVE, "DELETE", "/backends/%s"},
        {NG_MANAGE_BACKEND_ROTATE, "POST", "/backends/%s/rotate-secret"},
        {NG_MANAGE_PEER_LIST, "GET", "/peers"},
        {NG_MANAGE_PEER_IMPORT, "POST", "/peers"},
        {NG_MANAGE_PEER_REMOVE, "DELETE", "/peers/%s"},
        {NG_MANAGE_PEER_EXPORT, "GET", "/params"},
        {NG_MANAGE_KEY_LIST, "GET", "/keys"},
        {NG_MANAGE_KEY_ROTATE, "POST", "/keys/rotate"},
        {NG_MANAGE_KEY_RETIRE, "POST", "/keys/%s/retire"},
        {NG_MANAGE_KEY_EXPORT, "POST", "/keys/export"},
        {NG_MANAGE_KEY_IMPORT, "POST", "/keys/import"},
    };
    char arg[32], tail[128];
    const char *id = op->id;
    size_t i;
    int n;

    if (op->kind == NG_MANAGE_TENANT_LIST || op->kind == NG_MANAGE_TENANT_CREATE) {
        *method = op->kind == NG_MANAGE_TENANT_LIST ? "GET" : "POST";
        n = snprintf(path, cap, "/v1/admin/tenants");
        return n > 0 && (size_t)n < cap ? 0 : -1;
    }
    for (i = 0; i < sizeof map / sizeof map[0] && map[i].kind != op->kind; i++)
        ;
    if (i == sizeof map / sizeof map[0])
        return -1;
    if (op->kind == NG_MANAGE_KEY_RETIRE) {
        snprintf(arg, sizeof arg, "%u", (unsigned)op->epoch);
        id = arg;
    }
    /* Only the map's own formats reach snprintf, with one string argument where they have %s. */
    n = strstr(map[i].suffix, "%s") != NULL ? snprintf(tail, sizeof tail, map[i].suffix, id != NULL ? id : "")
                                            : snprintf(tail, sizeof tail, "%s", map[i].suffix);
    if (n < 0 || (size_t)n >= sizeof tail)
        return -1;
    *method = map[i].method;
    n = snprintf(path, cap, "/v1/admin/tenants/%s%s", op->slug, tail);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    if (op->kind == NG_MANAGE_PEER_EXPORT && op->url != NULL) {
        char *q = curl_easy_escape(NULL, op->url, 0);

        if (q == NULL)
            return -1;
        n = snprintf(path + n, cap - (size_t)n, "?outbox=%s", q);
        curl_free(q);
        if (n < 0 || (size_t)n >= cap - strlen(path))
            return -1;
    }
    return 0;
}

/* The answer of the running gateway: op->result, or the refusal it explained, as our message. */
static int
online(ng_cli_ctx *c, ng_manage_op *op, int *rc)
{
    char path[PATH_CAP], *body, *reply = NULL;
    const char *method, *msg;
    json_t *doc;
    size_t len = 0;
    long status;
    int got;

    if (request_of(op, &method, path, sizeof path) != 0) {
        *rc = ng_cli_fail(NG_EXIT_USAGE, c->cmd, "an argument too long for a request");
        return 1;
    }
    body = body_of(op);
    got = ng_cli_admin_call(c->cmd, &c->cfg, method, path, body, &status, &reply, &len);
    if (body != NULL) {
        sodium_memzero(body, strlen(body));
        free(body);
    }
    if (got == NG_CLI_NO_GATEWAY)
        return 0;
    *rc = got;
    if (got != 0)
        return 1;
    doc = json_loadb(reply, len, 0, NULL);
    sodium_memzero(reply, len);
    free(reply);
    if (status >= 200 && status < 300 && json_is_object(doc)) {
        op->result = doc;
        return 1;
    }
    msg = json_string_value(json_object_get(json_object_get(doc, "error"), "message"));
    if (status == 401)
        *rc = ng_cli_fail(NG_EXIT_USAGE, c->cmd, "the gateway refused the admin token in %s", c->cfg.admin.token_file);
    else
        *rc = ng_cli_fail(NG_EXIT_FAILED, c->cmd, "%s (HTTP %ld)",
                          msg != NULL ? msg : "the gateway refused the request", status);
    json_decref(doc);
    return 1;
}

struct run {
    ng_manage_op *op;
    ng_err op_err;
};

static ng_err
run_op(ng_vault *v, void *arg)
{
    struct run *r = arg;

    r->op_err = ng_manage_run(v, r->op);
    return r->op_err;
}

static int
offline(ng_cli_ctx *c, ng_manage_op *op)
{
    char outbox[NG_TENANT_MAX_URL + 1];
    struct run r = {op, NG_OK};
    const char *code, *msg;
    ng_vault *v;
    ng_err err;
    int rc = ng_cli_ctx_key(c), status;

    if (rc != 0)
        return rc;
    if (op->kind == NG_MANAGE_PEER_EXPORT && op->url == NULL) {
        ng_config_outbox_url(&c->cfg, outbox, sizeof outbox);
        op->url = outbox;
    }
    if (ng_manage_changes(op->kind)) {
        err = ng_vault_update(c->store, &c->secret, run_op, &r);
    } else {
        if ((rc = ng_cli_ctx_vault(c, &v)) != 0) {
            op->url = op->url == outbox ? NULL : op->url;
            return rc;
        }
        err = run_op(v, &r);
        ng_vault_close(v);
    }
    if (err != NG_OK) {
        json_decref(op->result);
        op->result = NULL;
    }
    if (err == NG_OK) {
        rc = 0;
    } else if (r.op_err == NG_OK || err == NG_ERR_UNAVAILABLE || err == NG_ERR_CORRUPT || err == NG_ERR_VAULT_KEY) {
        rc = ng_cli_ctx_fail(c, err, ng_vault_store_where(c->store));
    } else {
        /* The commands checked their usage before: what is left is a refusal. */
        ng_manage_explain(op, err, &status, &code, &msg);
        rc = ng_cli_fail(NG_EXIT_FAILED, c->cmd, "%s", msg);
    }
    if (op->url == outbox)
        op->url = NULL;
    return rc;
}

int
ng_cli_manage(const char *cmd, const char *config, ng_manage_op *op)
{
    ng_cli_ctx c;
    int rc = ng_cli_ctx_open(&c, cmd, config, 0);

    op->now = ng_cli_now();
    op->result = NULL;
    if (rc == 0 && !online(&c, op, &rc))
        rc = offline(&c, op);
    ng_cli_ctx_close(&c);
    return rc;
}

#include "ng_api_manage.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ng_jsonbody.h"
#include "ng_log.h"
#include "ng_manage.h"
#include "ng_peer.h"

/*
 * Runs op on the gateway's vault, under the lock that keeps the gateway's
 * own writes (a 410 disabling a backend) from interleaving, and answers.
 * A change is in the directory before the answer, so the next request sees it.
 */
static void
run(ng_gateway *g, ng_response *res, ng_manage_op *op, int ok_status)
{
    const ng_vault_secret *secret;
    ng_vault_store *store;
    const char *code, *message;
    ng_vault *v;
    int status;
    ng_err err;

    op->now = (int64_t)time(NULL);
    ng_gateway_vault_lock(g, &store, &secret);
    if (ng_manage_changes(op->kind)) {
        err = ng_vault_update(store, secret, ng_manage_run, op);
    } else {
        err = ng_vault_open(&v, store, secret);
        if (err == NG_OK) {
            err = ng_manage_run(v, op);
            ng_vault_close(v);
        }
    }
    ng_gateway_vault_unlock(g);
    if (err) {
        json_decref(op->result);
        ng_manage_explain(op, err, &status, &code, &message);
        ng_response_error(res, status, code, message);
        return;
    }
    /* Stored whatever the reload says; the reload thread tries again within a second. */
    if (ng_manage_changes(op->kind) && ng_gateway_reload(g) != NG_OK)
        ng_log_event(ng_gateway_log(g), NG_LOG_WARN, "directory reload after an admin change failed", NULL);
    ng_response_json(res, ok_status, op->result);
}

static ng_manage_op
op_of(ng_manage_kind kind, const char *slug, const char *id)
{
    ng_manage_op op;

    memset(&op, 0, sizeof op);
    op.kind = kind;
    op.slug = slug;
    op.id = id;
    return op;
}

/* A route whose request has no body: the operation names all it needs. */
static void
simple(ng_gateway *g, const ng_request *req, ng_response *res, ng_manage_kind kind, const char *slug, const char *id)
{
    ng_manage_op op = op_of(kind, slug, id);

    (void)req;
    run(g, res, &op, 200);
}

void
ng_api_manage_tenants(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    (void)params;
    simple(g, req, res, NG_MANAGE_TENANT_LIST, NULL, NULL);
}

int
ng_api_manage_tenant_create_body(const ng_request *req, ng_response *res, ng_manage_op *op, json_t **doc)
{
    uint64_t max_message = op->opts.max_message, rate = op->opts.rate;
    const ng_jsonbody_field fields[] = {
        {"tenant", NG_JSONBODY_STRING, 1, &op->slug, NULL, NULL, 0},
        {"psk", NG_JSONBODY_BOOL, 0, NULL, &op->opts.psk, NULL, 0},
        {"allow_anonymous", NG_JSONBODY_BOOL, 0, NULL, &op->opts.allow_anonymous, NULL, 0},
        {"max_message", NG_JSONBODY_UINT, 0, NULL, NULL, &max_message, 64ull * 1024 * 1024},
        {"rate", NG_JSONBODY_UINT, 0, NULL, NULL, &rate, 1000000},
        {NULL, 0, 0, NULL, NULL, NULL, 0},
    };

    if (ng_jsonbody_parse(req, res, NG_API_MANAGE_MAX_BODY, fields, doc) != 0)
        return -1;
    op->opts.max_message = max_message;
    op->opts.rate = (uint32_t)rate;
    return 0;
}

void
ng_api_manage_tenant_create(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    ng_manage_op op = op_of(NG_MANAGE_TENANT_CREATE, NULL, NULL);
    json_t *doc;

    (void)params;
    if (ng_api_manage_tenant_create_body(req, res, &op, &doc) != 0)
        return;
    run(g, res, &op, 201);
    json_decref(doc);
}

void
ng_api_manage_tenant(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    simple(g, req, res, NG_MANAGE_TENANT_SHOW, params[0], NULL);
}

void
ng_api_manage_tenant_delete(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    simple(g, req, res, NG_MANAGE_TENANT_DELETE, params[0], NULL);
}

void
ng_api_manage_backends(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    simple(g, req, res, NG_MANAGE_BACKEND_LIST, params[0], NULL);
}

/* A body of one required and one optional string, into need and may. */
static int
two_strings(const ng_request *req, ng_response *res, const char *need_name, const char **need, const char *may_name,
            const char **may, json_t **doc)
{
    const ng_jsonbody_field fields[] = {
        {need_name, NG_JSONBODY_STRING, 1, need, NULL, NULL, 0},
        {may_name, NG_JSONBODY_STRING, 0, may, NULL, NULL, 0},
        {NULL, 0, 0, NULL, NULL, NULL, 0},
    };

    return ng_jsonbody_parse(req, res, NG_API_MANAGE_MAX_BODY, fields, doc);
}

int
ng_api_manage_backend_add_body(const ng_request *req, ng_response *res, ng_manage_op *op, json_t **doc)
{
    const ng_jsonbody_field fields[] = {
        {"url", NG_JSONBODY_STRING, 1, &op->url, NULL, NULL, 0},
        {"public_key", NG_JSONBODY_STRING, 0, &op->text, NULL, NULL, 0},
        {"adapter", NG_JSONBODY_STRING, 0, &op->backend.adapter, NULL, NULL, 0},
        {"mode", NG_JSONBODY_STRING, 0, &op->backend.mode, NULL, NULL, 0},
        {"subject", NG_JSONBODY_STRING, 0, &op->backend.subject, NULL, NULL, 0},
        {NULL, 0, 0, NULL, NULL, NULL, 0},
    };

    return ng_jsonbody_parse(req, res, NG_API_MANAGE_MAX_BODY, fields, doc);
}

int
ng_api_manage_peer_import_body(const ng_request *req, ng_response *res, ng_manage_op *op, json_t **doc)
{
    return two_strings(req, res, "params", &op->text, "name", &op->id, doc);
}

int
ng_api_manage_key_import_body(const ng_request *req, ng_response *res, ng_manage_op *op, json_t **doc)
{
    const ng_jsonbody_field fields[] = {
        {"public_key", NG_JSONBODY_STRING, 1, &op->text, NULL, NULL, 0},
        {NULL, 0, 0, NULL, NULL, NULL, 0},
    };

    return ng_jsonbody_parse(req, res, NG_API_MANAGE_MAX_BODY, fields, doc);
}

/* A route that adds something from its body; 201 once stored. */
static void
add(ng_gateway *g, const ng_request *req, ng_response *res, ng_manage_op *op,
    int (*body)(const ng_request *, ng_response *, ng_manage_op *, json_t **))
{
    json_t *doc;

    if (body(req, res, op, &doc) != 0)
        return;
    run(g, res, op, 201);
    json_decref(doc); /* wipes what it held (ng_jsonmem): connection parameters carry secrets */
}

void
ng_api_manage_backend_add(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    ng_manage_op op = op_of(NG_MANAGE_BACKEND_ADD, params[0], NULL);

    add(g, req, res, &op, ng_api_manage_backend_add_body);
}

void
ng_api_manage_backend_remove(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    simple(g, req, res, NG_MANAGE_BACKEND_REMOVE, params[0], params[1]);
}

void
ng_api_manage_backend_rotate(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    simple(g, req, res, NG_MANAGE_BACKEND_ROTATE, params[0], params[1]);
}

void
ng_api_manage_peers(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    simple(g, req, res, NG_MANAGE_PEER_LIST, params[0], NULL);
}

void
ng_api_manage_peer_import(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    ng_manage_op op = op_of(NG_MANAGE_PEER_IMPORT, params[0], NULL);

    add(g, req, res, &op, ng_api_manage_peer_import_body);
}

void
ng_api_manage_peer_remove(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    simple(g, req, res, NG_MANAGE_PEER_REMOVE, params[0], params[1]);
}

void
ng_api_manage_params(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    ng_manage_op op = op_of(NG_MANAGE_PEER_EXPORT, params[0], NULL);
    char outbox[NG_TENANT_MAX_URL + 1];

    op.url = ng_request_arg(req, "outbox");
    if (op.url == NULL) {
        ng_config_outbox_url(ng_gateway_config(g), outbox, sizeof outbox);
        op.url = outbox;
    }
    run(g, res, &op, 200);
}

void
ng_api_manage_keys(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    simple(g, req, res, NG_MANAGE_KEY_LIST, params[0], NULL);
}

void
ng_api_manage_key_rotate(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    simple(g, req, res, NG_MANAGE_KEY_ROTATE, params[0], NULL);
}

/* The answer carries the private key: the response body is wiped once sent (ng_server), op.result when dumped. */
void
ng_api_manage_key_export(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    simple(g, req, res, NG_MANAGE_KEY_EXPORT, params[0], NULL);
}

void
ng_api_manage_key_import(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    ng_manage_op op = op_of(NG_MANAGE_KEY_IMPORT, params[0], NULL);

    add(g, req, res, &op, ng_api_manage_key_import_body);
}

void
ng_api_manage_key_retire(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    ng_manage_op op = op_of(NG_MANAGE_KEY_RETIRE, params[0], NULL);
    const char *s = params[1];
    char *end;
    unsigned long e;

    (void)req;
    /* Anything but a plain decimal 1..2^32-1 leaves epoch 0, which the operation refuses with its reason. */
    if (strspn(s, "0123456789") == strlen(s) && strlen(s) <= 10) {
        e = strtoul(s, &end, 10);
        if (e <= UINT32_MAX)
            op.epoch = (uint32_t)e;
    }
    run(g, res, &op, 200);
}

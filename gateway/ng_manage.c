#include "ng_manage.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ng_hex.h"
#include "ng_peer.h"

enum { WHSEC_CAP = 64, USED_CAP = 64 };

int
ng_manage_changes(ng_manage_kind kind)
{
    switch (kind) {
    case NG_MANAGE_TENANT_LIST:
    case NG_MANAGE_TENANT_SHOW:
    case NG_MANAGE_BACKEND_LIST:
    case NG_MANAGE_PEER_LIST:
    case NG_MANAGE_KEY_LIST: return 0;
    /* An export signs with the current time but stores nothing: a read. */
    case NG_MANAGE_PEER_EXPORT: return 0;
    default: return 1;
    }
}

/* A backend id as ng_tenant makes them: "b" and digits. */
static int
backend_id_ok(const char *id)
{
    size_t n = id != NULL ? strlen(id) : 0;

    return n >= 2 && n < NG_TENANT_ID_BYTES && id[0] == 'b' && strspn(id + 1, "0123456789") == n - 1;
}

/* Why op cannot run whatever the vault holds, or NULL. */
static const char *
check(const ng_manage_op *op)
{
    if (op->kind != NG_MANAGE_TENANT_LIST && (op->slug == NULL || !ng_tenant_slug_ok(op->slug)))
        return "a tenant id is 1-63 of a-z, 0-9 and '-', not starting with '-'";
    switch (op->kind) {
    case NG_MANAGE_BACKEND_ADD: return ng_tenant_backend_problem(op->url, &op->backend);
    case NG_MANAGE_BACKEND_REMOVE:
    case NG_MANAGE_BACKEND_ROTATE:
        if (!backend_id_ok(op->id))
            return "a backend id is b and digits (b1, b2, ...)";
        break;
    case NG_MANAGE_PEER_EXPORT:
        if (op->url == NULL || !ng_peer_outbox_ok(op->url))
            return "outbox: expected an http://, https:// or redis:// URL without user info";
        break;
    case NG_MANAGE_PEER_IMPORT:
        if (op->text == NULL)
            return "connection parameters: missing";
        if (strlen(op->text) > NG_PEER_MAX_PARAMS)
            return "connection parameters: over 16384 bytes";
        if (op->id != NULL && !ng_tenant_slug_ok(op->id))
            return "a peer name is 1-63 of a-z, 0-9 and '-'";
        break;
    case NG_MANAGE_PEER_REMOVE:
        if (op->id == NULL || !ng_tenant_slug_ok(op->id))
            return "a peer name is 1-63 of a-z, 0-9 and '-'";
        break;
    case NG_MANAGE_KEY_RETIRE:
        if (op->epoch == 0)
            return "an epoch is a whole number from 1";
        break;
    case NG_MANAGE_KEY_IMPORT:
        if (op->text == NULL || strlen(op->text) != 2 * NG_KEY_BYTES ||
            strspn(op->text, "0123456789abcdefABCDEF") != 2 * NG_KEY_BYTES)
            return "public_key: expected the 64 hex characters of an X25519 public key";
        break;
    default: break;
    }
    return NULL;
}

/* {name: the list}, taking the list's reference. */
static ng_err
wrap(ng_manage_op *op, const char *name, ng_err err, json_t *list)
{
    if (err)
        return err;
    op->result = json_pack("{s:o}", name, list);
    return op->result != NULL ? NG_OK : NG_ERR_NOMEM;
}

static ng_err
tenant_create(ng_vault *v, ng_manage_op *op)
{
    ng_err err = ng_tenant_create(v, op->slug, &op->opts, op->now);

    /* Shown from inside the update: opening the vault again would derive a passphrase's key twice. */
    return err ? err : ng_tenant_show(v, op->slug, &op->result);
}

static ng_err
key_list(ng_vault *v, ng_manage_op *op)
{
    json_t *t;
    ng_err err = ng_tenant_show(v, op->slug, &t);

    if (err)
        return err;
    err = wrap(op, "keys", NG_OK, json_incref(json_object_get(t, "keys")));
    json_decref(t);
    return err;
}

static ng_err
backend_add(ng_vault *v, ng_manage_op *op)
{
    char id[NG_TENANT_ID_BYTES], whsec[WHSEC_CAP];
    ng_err err =
        ng_tenant_backend_add_with(v, op->slug, op->url, op->text, &op->backend, op->now, id, whsec, sizeof whsec);

    if (err == NG_OK) {
        op->result = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", id, "url", op->url, "adapter",
                               op->backend.adapter != NULL ? op->backend.adapter : "webhook", "mode",
                               op->backend.mode != NULL ? op->backend.mode : "opened", "whsec", whsec);
        err = op->result != NULL ? NG_OK : NG_ERR_NOMEM;
    }
    sodium_memzero(whsec, sizeof whsec);
    return err;
}

static ng_err
backend_rotate(ng_vault *v, ng_manage_op *op)
{
    char whsec[WHSEC_CAP];
    ng_err err = ng_tenant_backend_rotate_secret(v, op->slug, op->id, op->now, whsec, sizeof whsec);

    if (err == NG_OK) {
        op->result = json_pack("{s:s, s:s}", "id", op->id, "whsec", whsec);
        err = op->result != NULL ? NG_OK : NG_ERR_NOMEM;
    }
    sodium_memzero(whsec, sizeof whsec);
    return err;
}

static ng_err
peer_export(ng_vault *v, ng_manage_op *op)
{
    char fp[NG_PEER_FINGERPRINT_BYTES], *params = NULL;
    ng_err err = ng_peer_export(v, op->slug, op->url, op->now, &params, fp);

    if (err == NG_OK) {
        op->result = json_pack("{s:s, s:s}", "params", params, "fingerprint", fp);
        err = op->result != NULL ? NG_OK : NG_ERR_NOMEM;
        sodium_memzero(params, strlen(params));
    }
    free(params);
    return err;
}

static ng_err
peer_import(ng_vault *v, ng_manage_op *op)
{
    char used[USED_CAP];
    json_t *shown;
    ng_err err;

    /* Decoded first, for the fingerprint and for a refusal about the string rather than the vault. */
    op->decoded = 0;
    err = ng_peer_decode(op->text, &shown);
    if (err)
        return err;
    op->decoded = 1;
    err = ng_peer_import(v, op->slug, op->text, op->id, op->now, used);
    if (err == NG_OK) {
        op->result = json_pack("{s:s, s:O}", "peer", used, "fingerprint", json_object_get(shown, "fingerprint"));
        err = op->result != NULL ? NG_OK : NG_ERR_NOMEM;
    }
    json_decref(shown);
    return err;
}

static ng_err
key_export(ng_vault *v, ng_manage_op *op)
{
    char priv_hex[2 * NG_KEY_BYTES + 1], pub_hex[2 * NG_KEY_BYTES + 1], id_hex[2 * NG_KEY_ID_BYTES + 1];
    uint8_t id[NG_KEY_ID_BYTES];
    uint32_t epoch = 0;
    ng_keypair kp;
    ng_err err = ng_tenant_key_export(v, op->slug, &epoch, &kp);

    if (err == NG_OK) {
        ng_key_id(id, kp.pub);
        ng_hex_encode(priv_hex, sizeof priv_hex, kp.priv, sizeof kp.priv);
        ng_hex_encode(pub_hex, sizeof pub_hex, kp.pub, sizeof kp.pub);
        ng_hex_encode(id_hex, sizeof id_hex, id, sizeof id);
        /* The one copy left once the update is stored: jansson's frees wipe it (ng_jsonmem), as they do a whsec. */
        op->result = json_pack("{s:I, s:s, s:s, s:s}", "epoch", (json_int_t)epoch, "private_key", priv_hex,
                               "public_key", pub_hex, "key_id", id_hex);
        err = op->result != NULL ? NG_OK : NG_ERR_NOMEM;
    }
    ng_keypair_wipe(&kp);
    sodium_memzero(priv_hex, sizeof priv_hex);
    return err;
}

static ng_err
key_import(ng_vault *v, ng_manage_op *op)
{
    uint8_t pub[NG_KEY_BYTES], id[NG_KEY_ID_BYTES];
    char id_hex[2 * NG_KEY_ID_BYTES + 1];
    uint32_t epoch = 0;
    ng_err err = ng_hex_decode(pub, sizeof pub, op->text, strlen(op->text));

    if (err == NG_OK)
        err = ng_tenant_key_import_public(v, op->slug, pub, op->now, &epoch);
    if (err == NG_OK) {
        ng_key_id(id, pub);
        ng_hex_encode(id_hex, sizeof id_hex, id, sizeof id);
        op->result = json_pack("{s:I, s:s}", "epoch", (json_int_t)epoch, "key_id", id_hex);
        err = op->result != NULL ? NG_OK : NG_ERR_NOMEM;
    }
    return err;
}

static ng_err
removed(ng_manage_op *op, const char *name, const char *what, ng_err err)
{
    if (err)
        return err;
    op->result = json_pack("{s:s}", name, what);
    return op->result != NULL ? NG_OK : NG_ERR_NOMEM;
}

/*
 * After NG_ERR_TOO_LARGE from a key rotation or a backend add: was it the
 * tenant's own limit, or the vault (which says the same when it is full)?
 */
static int
tenant_at_limit(ng_vault *v, const ng_manage_op *op)
{
    json_t *t;
    int full = 0;

    if (ng_tenant_show(v, op->slug, &t) != NG_OK)
        return 0;
    if (op->kind == NG_MANAGE_KEY_ROTATE || op->kind == NG_MANAGE_KEY_IMPORT)
        full = json_array_size(json_object_get(t, "keys")) >= NG_TENANT_MAX_KEYS;
    else if (op->kind == NG_MANAGE_BACKEND_ADD)
        full = json_array_size(json_object_get(t, "backends")) >= NG_TENANT_MAX_BACKENDS;
    json_decref(t);
    return full;
}

static ng_err run(ng_vault *v, ng_manage_op *op);

ng_err
ng_manage_run(ng_vault *v, void *arg)
{
    ng_manage_op *op = arg;
    ng_err err = run(v, op);

    op->at_limit = err == NG_ERR_TOO_LARGE && tenant_at_limit(v, op);
    return err;
}

static ng_err
run(ng_vault *v, ng_manage_op *op)
{
    uint32_t epoch = 0;
    json_t *list = NULL;
    ng_err err;

    json_decref(op->result); /* an update may run the callback again after a conflict */
    op->result = NULL;
    if (check(op) != NULL)
        return NG_ERR_INVALID_ARG;
    switch (op->kind) {
    case NG_MANAGE_TENANT_LIST: err = ng_tenant_list(v, &list); return wrap(op, "tenants", err, list);
    case NG_MANAGE_TENANT_SHOW: return ng_tenant_show(v, op->slug, &op->result);
    case NG_MANAGE_TENANT_CREATE: return tenant_create(v, op);
    case NG_MANAGE_TENANT_DELETE: return removed(op, "deleted", op->slug, ng_tenant_delete(v, op->slug));
    case NG_MANAGE_BACKEND_LIST:
        err = ng_tenant_backend_list(v, op->slug, &list);
        return wrap(op, "backends", err, list);
    case NG_MANAGE_BACKEND_ADD: return backend_add(v, op);
    case NG_MANAGE_BACKEND_REMOVE: return removed(op, "removed", op->id, ng_tenant_backend_remove(v, op->slug, op->id));
    case NG_MANAGE_BACKEND_ROTATE: return backend_rotate(v, op);
    case NG_MANAGE_PEER_LIST: err = ng_peer_list(v, op->slug, &list); return wrap(op, "peers", err, list);
    case NG_MANAGE_PEER_EXPORT: return peer_export(v, op);
    case NG_MANAGE_PEER_IMPORT: return peer_import(v, op);
    case NG_MANAGE_PEER_REMOVE: return removed(op, "removed", op->id, ng_peer_remove(v, op->slug, op->id));
    case NG_MANAGE_KEY_LIST: return key_list(v, op);
    case NG_MANAGE_KEY_ROTATE:
        err = ng_tenant_key_rotate(v, op->slug, op->now, &epoch);
        if (err == NG_OK && (op->result = json_pack("{s:I}", "epoch", (json_int_t)epoch)) == NULL)
            err = NG_ERR_NOMEM;
        return err;
    case NG_MANAGE_KEY_RETIRE:
        err = ng_tenant_key_retire(v, op->slug, op->epoch);
        if (err == NG_OK && (op->result = json_pack("{s:I}", "retired", (json_int_t)op->epoch)) == NULL)
            err = NG_ERR_NOMEM;
        return err;
    case NG_MANAGE_KEY_EXPORT: return key_export(v, op);
    case NG_MANAGE_KEY_IMPORT: return key_import(v, op);
    }
    return NG_ERR_INVALID_ARG;
}

static const char *
not_found(ng_manage_kind kind)
{
    switch (kind) {
    case NG_MANAGE_BACKEND_REMOVE:
    case NG_MANAGE_BACKEND_ROTATE: return "no such tenant or backend: not found";
    case NG_MANAGE_PEER_REMOVE: return "no such tenant or peer: not found";
    case NG_MANAGE_KEY_RETIRE: return "no such tenant or live epoch: not found";
    default: return "no such tenant: not found";
    }
}

/* A refused value that the arguments' check could not see. */
static const char *
refused(ng_manage_kind kind)
{
    switch (kind) {
    case NG_MANAGE_BACKEND_ADD: return "public_key: expected whpk_ and the base64 of an Ed25519 public key";
    case NG_MANAGE_KEY_IMPORT:
        return "public_key: not a key peers can seal to (all zero, a low-order point, or not canonical): give the "
               "X25519 public key of a key pair the backend made";
    default: return "refused value";
    }
}

static const char *
params_error(ng_err err)
{
    switch (err) {
    case NG_ERR_BAD_VERSION: return "connection parameters: an unknown version (this gateway reads ngcp1)";
    case NG_ERR_AUTH: return "connection parameters: the signature does not verify (changed in transit?)";
    case NG_ERR_TOO_LARGE: return "connection parameters: too long";
    case NG_ERR_BAD_KEY: return "connection parameters: a static key is a low-order point or not canonical";
    default: return "connection parameters: damaged or not connection parameters (expected ngcp1:...)";
    }
}

void
ng_manage_explain(const ng_manage_op *op, ng_err err, int *status, const char **code, const char **message)
{
    const char *why = check(op);

    *status = 400;
    *code = "bad_request";
    if (err == NG_ERR_INVALID_ARG && why != NULL) {
        *message = why;
        return;
    }
    switch (err) {
    case NG_ERR_NOT_FOUND: *status = 404, *code = "not_found", *message = not_found(op->kind); return;
    case NG_ERR_EXISTS:
        *status = 409, *code = "exists";
        *message = op->kind == NG_MANAGE_PEER_IMPORT
                       ? "these parameters are older than the ones held for this peer: already exists"
                   : op->kind == NG_MANAGE_KEY_IMPORT
                       ? "public_key: already a live key of a tenant here (a backend must make a key pair of its own)"
                       : "the tenant already exists";
        return;
    case NG_ERR_KEY_ELSEWHERE:
        *status = 409, *code = "key_held_by_backend";
        *message = "the newest epoch's private key was exported before and is held by the tenant's backend only; "
                   "to hand over another, key rotate first";
        return;
    case NG_ERR_TOO_LARGE:
        if (op->kind == NG_MANAGE_PEER_IMPORT && !op->decoded)
            break; /* the string itself, explained below */
        *status = 409, *code = op->at_limit ? "limit" : "vault_full";
        *message = !op->at_limit ? "the vault is full (100000 entries): delete tenants or peers no longer used"
                   : op->kind == NG_MANAGE_KEY_ROTATE ? "16 live keys: retire an old epoch before rotating again"
                   : op->kind == NG_MANAGE_KEY_IMPORT ? "16 live keys: retire an old epoch before importing another"
                                                      : "32 backends: remove one before adding another";
        return;
    case NG_ERR_UNAVAILABLE:
        *status = 503, *code = "store_unavailable", *message = "the vault store does not answer; try again";
        return;
    default: break;
    }
    if (op->kind == NG_MANAGE_PEER_IMPORT &&
        (!op->decoded || err == NG_ERR_BAD_KEY || err == NG_ERR_PARSE || err == NG_ERR_MALFORMED))
        *code = "bad_params", *message = params_error(err);
    else if (op->kind == NG_MANAGE_PEER_IMPORT && err == NG_ERR_AUTH)
        *status = 409, *code = "signer_changed",
        *message = "these parameters are signed by another key than the peer's we hold; remove the peer first if it "
                   "really changed its signing key";
    else if (op->kind == NG_MANAGE_KEY_RETIRE && err == NG_ERR_INVALID_ARG)
        *status = 409, *code = "sending_key", *message = "the sending (newest) key cannot be retired: rotate first";
    else if (err == NG_ERR_INVALID_ARG || err == NG_ERR_PARSE || err == NG_ERR_BAD_KEY)
        *message = refused(op->kind);
    else
        *status = 500, *code = "internal", *message = ng_strerror(err);
}

/*
 * ng_manage.h: an operator's reads and changes of tenants, backends, peers
 * and keys, as one operation with a JSON answer. The admin API and the
 * offline CLI both run these, so the two do the same thing, answer in the
 * same shape and explain a refusal in the same words.
 *
 * An operation runs on an open vault: a reading one on ng_vault_open's, a
 * changing one as the callback of ng_vault_update (see ng_manage_changes).
 *
 * Answers (JSON objects; secrets appear only where named):
 *   tenant list        {"tenants": [summary...]}
 *   tenant show/create the tenant as ng_tenant_show gives it
 *   tenant delete      {"deleted": T}
 *   backend list       {"backends": [...]}
 *   backend add        {"id", "url", "whsec"}          whsec: shown once
 *   backend remove     {"removed": B}
 *   backend rotate     {"id", "whsec"}                 whsec: shown once
 *   peer list          {"peers": [...]}
 *   peer export        {"params", "fingerprint"}       params carry the read token and psk
 *   peer import        {"peer", "fingerprint"}
 *   peer remove        {"removed": P}
 *   key list           {"keys": [...]}
 *   key rotate         {"epoch": E}
 *   key retire         {"retired": E}
 *   key export         {"epoch", "private_key", "public_key", "key_id"}  private_key: shown once, then the
 *                      gateway holds no copy (end-to-end mode, ng_tenant_key_export)
 *   key import         {"epoch", "key_id"}   the backend's public key as the new newest epoch
 */
#ifndef NG_MANAGE_H
#define NG_MANAGE_H

#include <stdint.h>

#include <jansson.h>

#include "ng_error.h"
#include "ng_tenant.h"
#include "ng_vault.h"

typedef enum ng_manage_kind {
    NG_MANAGE_TENANT_LIST,
    NG_MANAGE_TENANT_SHOW,
    NG_MANAGE_TENANT_CREATE,
    NG_MANAGE_TENANT_DELETE,
    NG_MANAGE_BACKEND_LIST,
    NG_MANAGE_BACKEND_ADD,
    NG_MANAGE_BACKEND_REMOVE,
    NG_MANAGE_BACKEND_ROTATE,
    NG_MANAGE_PEER_LIST,
    NG_MANAGE_PEER_EXPORT,
    NG_MANAGE_PEER_IMPORT,
    NG_MANAGE_PEER_REMOVE,
    NG_MANAGE_KEY_LIST,
    NG_MANAGE_KEY_ROTATE,
    NG_MANAGE_KEY_RETIRE,
    NG_MANAGE_KEY_EXPORT,
    NG_MANAGE_KEY_IMPORT,
} ng_manage_kind;

typedef struct ng_manage_op {
    ng_manage_kind kind;
    const char *slug;    /* the tenant (every kind but tenant list) */
    const char *id;      /* backend remove/rotate: its id; peer remove: its name; peer import: a name or NULL */
    const char *url;     /* backend add: its URL; peer export: the outbox URL peers read */
    const char *text;    /* backend add: a whpk_ public key or NULL; peer import: the ngcp1 parameters;
                            key import: the X25519 public key, 64 hex characters */
    ng_tenant_opts opts; /* tenant create */
    ng_tenant_backend_opts backend; /* backend add: adapter, mode, subject */
    uint32_t epoch;                 /* key retire */
    int64_t now;                    /* unix seconds */
    json_t *result;                 /* the answer, after success; the caller json_decrefs it */
    int decoded;                    /* peer import: the parameters decoded (a refusal after is about the vault) */
    int at_limit; /* NG_ERR_TOO_LARGE was the tenant's own limit of keys or backends, not a full vault */
} ng_manage_op;

/* 1 if the kind changes the vault (run it through ng_vault_update). */
int ng_manage_changes(ng_manage_kind kind);

/*
 * Runs op (a void * so that it is an ng_vault_update_fn). Checks its
 * arguments first: NG_ERR_INVALID_ARG for a bad slug, id, URL or epoch.
 * Otherwise the library's error, the vault left as it was.
 */
NG_MUST_CHECK ng_err ng_manage_run(ng_vault *v, void *op);

/*
 * What err from running op means: an HTTP status, a short code and a
 * sentence for an operator (never a secret).
 */
void ng_manage_explain(const ng_manage_op *op, ng_err err, int *status, const char **code, const char **message);

#endif

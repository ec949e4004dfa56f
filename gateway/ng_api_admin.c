#include "ng_api_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "ng_hex.h"
#include "ng_parcel.h"
#include "ng_tenant.h"

enum { DEFAULT_LIMIT = 100, MAX_LIMIT = 1000 };

static void
vault_error(ng_response *res, ng_err err)
{
    if (err == NG_ERR_NOT_FOUND)
        ng_response_error(res, 404, "not_found", "no such tenant or backend");
    else
        ng_gateway_store_error(res, err, "vault");
}

static void
store_error(ng_response *res, ng_err err)
{
    if (err == NG_ERR_INVALID_ARG)
        ng_response_error(res, 400, "bad_request", "not a tenant or an id of this store");
    else if (err == NG_ERR_NOT_FOUND)
        ng_response_error(res, 404, "not_found", "no such dead letter");
    else
        ng_gateway_store_error(res, err, "queue");
}

void
ng_api_admin_queue(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    (void)req;
    uint64_t waiting = 0, dead = 0;
    ng_directory *dir;
    ng_queue *q;
    int known;
    ng_err err;

    dir = ng_gateway_directory(g);
    known = ng_directory_tenant(dir, params[0]) != NULL;
    ng_directory_release(dir);
    if (!known) {
        ng_response_error(res, 404, "not_found", "no such tenant");
        return;
    }
    err = ng_gateway_queue_take(g, &q);
    if (err == NG_OK) {
        err = ng_queue_inbox_depth(q, params[0], &waiting, &dead);
        ng_gateway_queue_give(g, q);
    }
    if (err)
        store_error(res, err);
    else
        ng_response_json(res, 200, json_pack("{s:I, s:I}", "waiting", (json_int_t)waiting, "dead", (json_int_t)dead));
}

/* What an operator needs to judge a dead letter, read from its record without opening it. */
static json_t *
dead_json(const ng_queue_item *it)
{
    char peer[NG_RECEIVE_PEER_BYTES], hex[2 * NG_PARCEL_MESSAGE_ID_BYTES + 1] = "";
    const uint8_t *parcel;
    ng_parcel_header h;
    size_t plen;

    peer[0] = '\0';
    if (ng_receive_unrecord(it->data, it->len, peer, &parcel, &plen) == NG_OK &&
        ng_parcel_inspect(&h, parcel, plen, plen) == NG_OK)
        ng_hex_encode(hex, sizeof hex, h.message_id, sizeof h.message_id);
    return json_pack("{s:s, s:s, s:s, s:s, s:i}", "id", it->id, "message_id", hex, "peer", peer, "reason", it->reason,
                     "last_status", it->last_status);
}

void
ng_api_admin_dead(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    const char *after = ng_request_arg(req, "after"), *ls = ng_request_arg(req, "limit");
    ng_queue_batch b;
    json_t *list;
    ng_queue *q;
    long limit = DEFAULT_LIMIT;
    size_t i;
    ng_err err;

    if (ls != NULL) {
        char *end;

        limit = strtol(ls, &end, 10);
        if (*ls == '\0' || *end != '\0' || limit < 1 || limit > MAX_LIMIT) {
            ng_response_error(res, 400, "bad_limit", "limit: expected an integer 1-1000");
            return;
        }
    }
    err = ng_gateway_queue_take(g, &q);
    if (err == NG_OK) {
        err = ng_queue_dead_list(q, params[0], after, (size_t)limit, &b);
        ng_gateway_queue_give(g, q);
    }
    if (err) {
        store_error(res, err);
        return;
    }
    list = json_array();
    for (i = 0; list != NULL && i < b.n; i++)
        json_array_append_new(list, dead_json(&b.items[i]));
    ng_response_json(res, 200,
                     list == NULL ? NULL
                                  : json_pack("{s:o, s:s}", "dead", list, "next",
                                              b.next[0] != '\0' ? b.next : (after != NULL ? after : "")));
    ng_queue_batch_free(&b);
}

void
ng_api_admin_replay(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    (void)req;
    ng_queue *q;
    ng_err err;

    err = ng_gateway_queue_take(g, &q);
    if (err == NG_OK) {
        err = ng_queue_dead_replay(q, params[0], params[1]);
        ng_gateway_queue_give(g, q);
    }
    if (err) {
        store_error(res, err);
        return;
    }
    ng_gateway_inbox_changed(g);
    ng_response_json(res, 200, json_pack("{s:s}", "replayed", params[1]));
}

struct set_active {
    const char *slug, *id;
    int active;
};

static ng_err
set_active(ng_vault *v, void *ctx)
{
    const struct set_active *s = ctx;

    return ng_tenant_backend_set_active(v, s->slug, s->id, s->active, (int64_t)(ng_parcel_now_ms() / 1000));
}

static void
backend_active(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params, int active)
{
    (void)req;
    struct set_active s = {params[0], params[1], active};
    const ng_vault_secret *secret;
    ng_vault_store *store;
    ng_err err;

    if (!ng_tenant_slug_ok(params[0])) {
        ng_response_error(res, 404, "not_found", "no such tenant");
        return;
    }
    ng_gateway_vault_lock(g, &store, &secret);
    err = ng_vault_update(store, secret, set_active, &s);
    ng_gateway_vault_unlock(g);
    if (err == NG_OK)
        err = ng_gateway_reload(g);
    if (err) {
        vault_error(res, err);
        return;
    }
    if (active)
        ng_gateway_inbox_changed(g);
    ng_response_json(res, 200, json_pack("{s:s, s:s}", "backend", params[1], "status", active ? "active" : "disabled"));
}

void
ng_api_admin_enable(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    backend_active(g, req, res, params, 1);
}

void
ng_api_admin_disable(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    backend_active(g, req, res, params, 0);
}

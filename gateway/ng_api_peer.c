#include "ng_api_peer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "ng_hex.h"
#include "ng_parcel.h"
#include "ng_receive.h"

enum { DEFAULT_LIMIT = 100, MAX_LIMIT = 1000, TOKEN_BYTES = 32 };

static int
parse_limit(const char *s, size_t *out)
{
    char *end;
    unsigned long v;

    if (s == NULL) {
        *out = DEFAULT_LIMIT;
        return 0;
    }
    if (s[0] < '0' || s[0] > '9')
        return -1;
    v = strtoul(s, &end, 10);
    if (*end != '\0' || v < 1 || v > MAX_LIMIT)
        return -1;
    *out = v;
    return 0;
}

static json_t *
parcels_json(const ng_queue_batch *b, uint64_t now, size_t *served)
{
    json_t *list = json_array();
    size_t i;

    *served = 0;
    for (i = 0; list != NULL && i < b->n; i++) {
        const ng_queue_item *it = &b->items[i];
        size_t cap = sodium_base64_encoded_len(it->len, sodium_base64_VARIANT_ORIGINAL);
        char *b64;

        if (it->expires_ms != 0 && it->expires_ms <= now)
            continue;
        b64 = malloc(cap);
        if (b64 == NULL) {
            json_decref(list);
            return NULL;
        }
        sodium_bin2base64(b64, cap, it->data, it->len, sodium_base64_VARIANT_ORIGINAL);
        if (json_array_append_new(list, json_pack("{s:s, s:s}", "id", it->id, "parcel", b64)) != 0) {
            free(b64);
            json_decref(list);
            return NULL;
        }
        free(b64);
        (*served)++;
    }
    return list;
}

void
ng_api_outbox(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    uint8_t kid[NG_KEY_ID_BYTES], token[TOKEN_BYTES];
    const char *after = ng_request_arg(req, "after");
    const ng_dir_tenant *t;
    ng_directory *dir;
    ng_queue_batch b;
    ng_queue *q;
    json_t *list;
    size_t limit, served;
    ng_err err;

    if (strlen(params[0]) != 2 * NG_KEY_ID_BYTES ||
        ng_hex_decode(kid, sizeof kid, params[0], 2 * NG_KEY_ID_BYTES) != NG_OK) {
        ng_response_error(res, 400, "bad_key_id", "expected the recipient's key id as 64 hex characters");
        return;
    }
    if (parse_limit(ng_request_arg(req, "limit"), &limit) != 0) {
        ng_response_error(res, 400, "bad_limit", "limit: expected an integer 1-1000");
        return;
    }
    if (after != NULL && strlen(after) >= NG_QUEUE_ID_BYTES) {
        ng_response_error(res, 400, "bad_cursor", "after: not a cursor this outbox gave");
        return;
    }
    if (ng_request_bearer(req, token, sizeof token) != 0) {
        ng_response_header(res, "WWW-Authenticate", "Bearer");
        ng_response_error(res, 401, "unauthorized", "expected Authorization: Bearer <read token, 64 hex characters>");
        return;
    }
    if (ng_gateway_outbox_take(g, &q) != NG_ERR_UNSUPPORTED) {
        ng_gateway_outbox_give(g, q);
        sodium_memzero(token, sizeof token);
        ng_response_error(res, 404, "not_served", "this gateway keeps its outboxes in HTTP storage: read them there");
        return;
    }
    dir = ng_gateway_directory(g);
    t = ng_directory_reader(dir, token, sizeof token);
    sodium_memzero(token, sizeof token);
    if (t == NULL) {
        ng_directory_release(dir);
        ng_response_header(res, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        ng_response_error(res, 401, "unauthorized", "the read token is not one of this gateway's");
        return;
    }
    err = ng_gateway_queue_take(g, &q);
    if (err == NG_OK) {
        err = ng_queue_outbox_read(q, t->slug, kid, after, limit, &b);
        ng_gateway_queue_give(g, q);
    }
    ng_directory_release(dir);
    if (err == NG_ERR_INVALID_ARG) {
        ng_response_error(res, 400, "bad_cursor", "after: not a cursor this outbox gave");
        return;
    }
    if (err) {
        ng_gateway_store_error(res, err, "queue");
        return;
    }
    list = parcels_json(&b, ng_parcel_now_ms(), &served);
    ng_response_json(res, 200,
                     list == NULL ? NULL
                                  : json_pack("{s:o, s:s}", "parcels", list, "next",
                                              b.next[0] != '\0' ? b.next : (after != NULL ? after : "")));
    ng_queue_batch_free(&b);
    ng_metrics_add(ng_gateway_metrics(g), "ng_parcels_served_total", NULL, (double)served);
}

int
ng_api_parcel_status(ng_err err, const char **code)
{
    *code = ng_receive_reason(err);
    switch (err) {
    case NG_ERR_NOT_FOUND:
    case NG_ERR_WRONG_RECIPIENT: return 404;
    case NG_ERR_BAD_PATTERN:
    case NG_ERR_WRONG_SENDER:
    case NG_ERR_SENDER_REQUIRED:
    case NG_ERR_BAD_KEY:
    case NG_ERR_PSK_REQUIRED:
    case NG_ERR_AUTH: return 403;
    case NG_ERR_TOO_LARGE: return 413;
    case NG_ERR_EXISTS: return 409;
    case NG_ERR_NOMEM: return 500;
    default: return 400;
    }
}

void
ng_api_parcels(ng_gateway *g, const ng_request *req, ng_response *res, const char *const *params)
{
    char id[NG_QUEUE_ID_BYTES], hex[2 * NG_PARCEL_MESSAGE_ID_BYTES + 1];
    ng_receive_opts o;
    ng_received r;
    ng_directory *dir;
    uint8_t *rec = NULL;
    size_t rec_len;
    const char *code;
    ng_queue *q;
    ng_err err;
    int status;

    (void)params;
    if (!ng_request_type_is(req, NG_PARCEL_CONTENT_TYPE)) {
        ng_response_error(res, 415, "unsupported_media_type", "expected content-type " NG_PARCEL_CONTENT_TYPE);
        return;
    }
    ng_gateway_receive_opts(g, &o);
    dir = ng_gateway_directory(g);
    ng_metrics_add(ng_gateway_metrics(g), "ng_parcels_polled_total", NULL, 1);
    err = ng_receive_check(dir, req->body, req->body_len, &o, &r);
    if (err == NG_OK)
        err = ng_receive_record(&rec, &rec_len, r.peer != NULL ? r.peer->name : "", req->body, req->body_len);
    if (err == NG_OK && (err = ng_gateway_queue_take(g, &q)) == NG_OK) {
        err = ng_queue_inbox_accept(q, r.tenant->slug, r.header.message_id, r.header.expires_ms, rec, rec_len, id);
        ng_gateway_queue_give(g, q);
    }
    free(rec);
    if (err == NG_OK) {
        ng_hex_encode(hex, sizeof hex, r.header.message_id, sizeof r.header.message_id);
        ng_metrics_add(ng_gateway_metrics(g), "ng_parcels_opened_total", NULL, 1);
        ng_gateway_inbox_changed(g);
        ng_response_json(res, 202, json_pack("{s:s, s:I}", "id", hex, "expires", (json_int_t)r.header.expires_ms));
    } else if (err == NG_ERR_UNAVAILABLE) {
        ng_gateway_store_error(res, err, "queue");
    } else {
        status = ng_api_parcel_status(err, &code);
        ng_metrics_add(ng_gateway_metrics(g), "ng_parcels_refused_total", (const char *[]){"reason", code, NULL}, 1);
        ng_response_error(res, status, code, status == 409 ? "this parcel was delivered before" : ng_strerror(err));
    }
    ng_directory_release(dir);
}

/*
 * fuzz_jsonbody: the JSON bodies of the API routes that take one, each
 * parsed against the route's own fields (ng_jsonbody through the routes'
 * body functions in ng_api_manage.h and ng_pairing.h):
 *
 *   0  POST /v1/admin/tenants                  tenant, psk?, allow_anonymous?, max_message?, rate?
 *   1  POST /v1/admin/tenants/{t}/backends     url, public_key?
 *   2  POST /v1/admin/tenants/{t}/peers        params, name?
 *   3  POST /v1/admin/tenants/{t}/pairings     url
 *   4  POST /v1/pairing/{code}                 public_key, gateway_key_digest
 *
 * The input: byte 0 picks the route (mod 5); byte 1 bit 0 marks the request
 * too large (as libmicrohttpd does past max_body), bit 1 pads the body with
 * spaces to exactly the route's limit, bit 2 to one byte over it; the rest
 * is the body, in an exact-size heap block.
 *
 * A model written here from ng_jsonbody.h and the route table above says
 * what each body must give, and the target holds the parser to it (a
 * violation aborts):
 *   - accepted exactly when the model accepts: at most the route's limit,
 *     one JSON object (empty body: {}), no duplicate or unknown key, every
 *     field of its type and range, the required ones present;
 *   - accepted: *doc is the object, the answer untouched, each field given
 *     is in its output (a string points into *doc), each field not given
 *     keeps its earlier value, and nothing else in the outputs changed;
 *   - refused: *doc NULL and every output untouched; the answer is 413
 *     too_large over the limit, else 400 bad_request, a JSON error whose
 *     message is one of the fixed ones and names a field (or "body") for a
 *     reason the model confirms, never the sender's text;
 *   - spaces up to the limit change nothing; one byte more is 413.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_check.h"
#include "ng_api_manage.h"
#include "ng_jsonmem.h"
#include "ng_pairing.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { N_ROUTES = 5, MAX_FIELDS = 5 };

typedef enum { STR, BOOL, UINT } type;

struct field {
    const char *name;
    type t;
    int required;
    uint64_t max;
};

/* One value per field, as the route's outputs hold it. */
struct values {
    const char *str[MAX_FIELDS];
    int flag[MAX_FIELDS];
    uint64_t num[MAX_FIELDS];
};

/* The outputs of every route, filled with sentinels before each call. */
struct outputs {
    ng_manage_op op;
    const char *url;
    const char *pair[2];
};

struct route {
    const char *name;
    size_t max_body;
    struct field fields[MAX_FIELDS + 1];
};

static const struct route routes[N_ROUTES] = {
    {"tenant create",
     NG_API_MANAGE_MAX_BODY,
     {{"tenant", STR, 1, 0},
      {"psk", BOOL, 0, 0},
      {"allow_anonymous", BOOL, 0, 0},
      {"max_message", UINT, 0, 64ull * 1024 * 1024},
      {"rate", UINT, 0, 1000000},
      {NULL, STR, 0, 0}}},
    {"backend add", NG_API_MANAGE_MAX_BODY, {{"url", STR, 1, 0}, {"public_key", STR, 0, 0}, {NULL, STR, 0, 0}}},
    {"peer import", NG_API_MANAGE_MAX_BODY, {{"params", STR, 1, 0}, {"name", STR, 0, 0}, {NULL, STR, 0, 0}}},
    {"pairing offer", NG_PAIRING_MAX_BODY, {{"url", STR, 1, 0}, {NULL, STR, 0, 0}}},
    {"pairing complete",
     NG_PAIRING_MAX_BODY,
     {{"public_key", STR, 1, 0}, {"gateway_key_digest", STR, 1, 0}, {NULL, STR, 0, 0}}},
};

static const char sentinel[] = "sentinel";
static unsigned long long n_runs, n_ok[N_ROUTES];

static void
print_stats(void)
{
    int r;

    fprintf(stderr, "fuzz_jsonbody: %llu inputs; accepted:", n_runs);
    for (r = 0; r < N_ROUTES; r++)
        fprintf(stderr, " %s %llu%s", routes[r].name, n_ok[r], r + 1 < N_ROUTES ? "," : "\n");
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ng_jsonmem_install(); /* as the gateway runs */
    if (getenv("NG_FUZZ_STATS") != NULL)
        atexit(print_stats);
    return 0;
}

static void
fill_sentinels(struct outputs *o)
{
    memset(o, 0, sizeof *o);
    o->op.kind = NG_MANAGE_KEY_RETIRE;
    o->op.slug = sentinel;
    o->op.id = sentinel;
    o->op.url = sentinel;
    o->op.text = sentinel;
    o->op.opts.psk = 7;
    o->op.opts.allow_anonymous = 9;
    o->op.opts.max_message = 123456789;
    o->op.opts.rate = 4242;
    o->op.epoch = 77;
    o->op.now = -5;
    o->op.decoded = 3;
    o->op.at_limit = 4;
    o->url = sentinel;
    o->pair[0] = sentinel;
    o->pair[1] = sentinel;
}

/* Where each route keeps each field: reads them out, or writes them in. */
static void
route_values(int r, struct outputs *o, struct values *v, int write)
{
#define SLOT(dst, src)                                                                                                 \
    do {                                                                                                               \
        if (write)                                                                                                     \
            dst = src;                                                                                                 \
        else                                                                                                           \
            src = dst;                                                                                                 \
    } while (0)
    switch (r) {
    case 0:
        SLOT(o->op.slug, v->str[0]);
        SLOT(o->op.opts.psk, v->flag[1]);
        SLOT(o->op.opts.allow_anonymous, v->flag[2]);
        SLOT(o->op.opts.max_message, v->num[3]);
        if (write)
            o->op.opts.rate = (uint32_t)v->num[4];
        else
            v->num[4] = o->op.opts.rate;
        break;
    case 1:
        SLOT(o->op.url, v->str[0]);
        SLOT(o->op.text, v->str[1]);
        break;
    case 2:
        SLOT(o->op.text, v->str[0]);
        SLOT(o->op.id, v->str[1]);
        break;
    case 3: SLOT(o->url, v->str[0]); break;
    default:
        SLOT(o->pair[0], v->str[0]);
        SLOT(o->pair[1], v->str[1]);
        break;
    }
#undef SLOT
}

static int
call(int r, const ng_request *req, ng_response *res, struct outputs *o, json_t **doc)
{
    switch (r) {
    case 0: return ng_api_manage_tenant_create_body(req, res, &o->op, doc);
    case 1: return ng_api_manage_backend_add_body(req, res, &o->op, doc);
    case 2: return ng_api_manage_peer_import_body(req, res, &o->op, doc);
    case 3: return ng_pairing_offer_body(req, res, &o->url, doc);
    default: return ng_pairing_complete_body(req, res, o->pair, doc);
    }
}

/* ---- the model ---- */

static const struct field *
field_of(const struct route *rt, const char *key, size_t *index)
{
    size_t i;

    for (i = 0; rt->fields[i].name != NULL; i++)
        if (strcmp(rt->fields[i].name, key) == 0) {
            *index = i;
            return &rt->fields[i];
        }
    return NULL;
}

static int
fits(const struct field *f, const json_t *v)
{
    switch (f->t) {
    case STR: return json_is_string(v);
    case BOOL: return json_is_true(v) || json_is_false(v);
    default: return json_is_integer(v) && json_integer_value(v) >= 0 && (uint64_t)json_integer_value(v) <= f->max;
    }
}

/* 0 (413), 1 (400) or 2 (accepted); *doc the document when it is one object. */
static int
model(const struct route *rt, const uint8_t *body, size_t len, int too_large, json_t **doc)
{
    const char *key;
    json_t *v;
    size_t i;

    *doc = NULL;
    if (too_large || len > rt->max_body)
        return 0;
    *doc = len == 0 ? json_object() : json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(*doc))
        return 1;
    json_object_foreach(*doc, key, v)
    {
        const struct field *f = field_of(rt, key, &i);

        if (f == NULL || !fits(f, v))
            return 1;
    }
    for (i = 0; rt->fields[i].name != NULL; i++)
        if (rt->fields[i].required && json_object_get(*doc, rt->fields[i].name) == NULL)
            return 1;
    return 2;
}

/* ---- the checks ---- */

/* A refusal's answer: its status and code, and a message the model agrees with. */
static void
check_refusal(const struct route *rt, const ng_response *res, int verdict, const json_t *doc)
{
    json_t *answer = json_loadb(res->body != NULL ? res->body : "", res->len, JSON_REJECT_DUPLICATES, NULL);
    const char *code, *message, *colon;
    const struct field *f;
    const json_t *v;
    size_t i;

    CHECK(res->body != NULL && strlen(res->body) == res->len);
    CHECK(json_object_size(answer) == 1 && json_object_size(json_object_get(answer, "error")) == 2);
    code = json_string_value(json_object_get(json_object_get(answer, "error"), "code"));
    message = json_string_value(json_object_get(json_object_get(answer, "error"), "message"));
    CHECK(code != NULL && message != NULL);
    if (verdict == 0) {
        CHECK(res->status == 413 && strcmp(code, "too_large") == 0);
        CHECK(strcmp(message, "request body over this route's limit") == 0);
        json_decref(answer);
        return;
    }
    CHECK(res->status == 400 && strcmp(code, "bad_request") == 0);
    if (!json_is_object(doc)) {
        CHECK(strcmp(message, "expected a JSON object (no duplicate keys)") == 0);
    } else if (strcmp(message, "body: an unknown field") == 0) {
        const char *key;
        json_t *val;
        int unknown = 0;

        json_object_foreach((json_t *)doc, key, val) unknown |= field_of(rt, key, &i) == NULL;
        CHECK(unknown);
    } else {
        /* "<field>: <why>", the field one of the route's, for a reason that holds. */
        colon = strchr(message, ':');
        CHECK(colon != NULL);
        f = NULL;
        for (i = 0; rt->fields[i].name != NULL; i++)
            if (strlen(rt->fields[i].name) == (size_t)(colon - message) &&
                memcmp(rt->fields[i].name, message, (size_t)(colon - message)) == 0)
                f = &rt->fields[i];
        CHECK(f != NULL);
        v = json_object_get(doc, f->name);
        if (strcmp(colon, ": missing") == 0)
            CHECK(f->required && v == NULL);
        else if (strcmp(colon, ": expected a string") == 0)
            CHECK(f->t == STR && v != NULL && !fits(f, v));
        else if (strcmp(colon, ": expected true or false") == 0)
            CHECK(f->t == BOOL && v != NULL && !fits(f, v));
        else
            CHECK(strcmp(colon, ": expected a whole number in range") == 0 && f->t == UINT && v != NULL && !fits(f, v));
    }
    json_decref(answer);
}

/* An acceptance: each field given in its output, the rest as it was. */
static void
check_accepted(int r, const struct outputs *before, const struct outputs *after, json_t *doc, const json_t *mdoc)
{
    const struct route *rt = &routes[r];
    struct outputs want;
    struct values v, got;
    size_t i;

    memcpy(&want, before, sizeof want);
    memset(&v, 0, sizeof v);
    route_values(r, &want, &v, 0);
    for (i = 0; rt->fields[i].name != NULL; i++) {
        const json_t *m = json_object_get(mdoc, rt->fields[i].name);

        CHECK((json_object_get(doc, rt->fields[i].name) == NULL) == (m == NULL));
        if (m == NULL)
            continue;
        if (rt->fields[i].t == STR)
            v.str[i] = json_string_value(json_object_get(doc, rt->fields[i].name));
        else if (rt->fields[i].t == BOOL)
            v.flag[i] = json_is_true(m);
        else
            v.num[i] = (uint64_t)json_integer_value(m);
    }
    route_values(r, &want, &v, 1);
    CHECK(memcmp(&want, after, sizeof want) == 0);
    /* The strings point into the document and say what the model read. */
    memset(&got, 0, sizeof got);
    route_values(r, (struct outputs *)after, &got, 0);
    for (i = 0; rt->fields[i].name != NULL; i++)
        if (rt->fields[i].t == STR && json_object_get(mdoc, rt->fields[i].name) != NULL)
            CHECK(strcmp(got.str[i], json_string_value(json_object_get(mdoc, rt->fields[i].name))) == 0);
}

/* One call on body (len bytes): returns the verdict, checked against the model. */
static int
run(int r, const uint8_t *data, size_t len, int too_large)
{
    uint8_t *body = malloc(len > 0 ? len : 1);
    struct outputs before, after;
    ng_request req;
    ng_response res;
    json_t *doc = (json_t *)&before, *mdoc;
    int rc, verdict;

    CHECK(body != NULL);
    if (len > 0)
        memcpy(body, data, len);
    memset(&req, 0, sizeof req);
    req.method = "POST";
    req.path = "/fuzz";
    req.request_id = "0123456789abcdef0123456789abcdef";
    req.body = body;
    req.body_len = len;
    req.too_large = too_large;
    memset(&res, 0, sizeof res);
    fill_sentinels(&before);
    memcpy(&after, &before, sizeof after);
    rc = call(r, &req, &res, &after, &doc);
    verdict = model(&routes[r], data, len, too_large, &mdoc);
    if ((rc == 0) != (verdict == 2))
        fprintf(stderr, "%s: the parser %s, the model %s\n", routes[r].name, rc == 0 ? "accepted" : "refused",
                verdict == 2 ? "accepts" : "refuses");
    CHECK((rc == 0) == (verdict == 2));
    if (rc == 0) {
        n_ok[r]++;
        CHECK(json_is_object(doc));
        CHECK(res.status == 0 && res.body == NULL && res.headers == 0);
        check_accepted(r, &before, &after, doc, mdoc);
    } else {
        CHECK(rc == -1 && doc == NULL);
        CHECK(memcmp(&before, &after, sizeof before) == 0);
        check_refusal(&routes[r], &res, verdict, mdoc);
    }
    json_decref(doc);
    json_decref(mdoc);
    ng_response_free(&res);
    free(body);
    return verdict;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct route *rt;
    size_t len;
    uint8_t *padded;
    int r, verdict;

    if (size < 2)
        return 0;
    n_runs++;
    r = data[0] % N_ROUTES;
    rt = &routes[r];
    len = size - 2;
    verdict = run(r, data + 2, len, data[1] & 1);
    if (!(data[1] & 1) && (data[1] & 6) && len > 0 && len <= rt->max_body) {
        size_t to = data[1] & 2 ? rt->max_body : rt->max_body + 1;

        padded = malloc(to);
        CHECK(padded != NULL);
        memcpy(padded, data + 2, len);
        memset(padded + len, ' ', to - len);
        CHECK(run(r, padded, to, 0) == (to > rt->max_body ? 0 : verdict));
        free(padded);
    }
    return 0;
}

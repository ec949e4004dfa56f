#include "ng_jsonbody.h"

#include <stdio.h>
#include <string.h>

static int
refuse(ng_response *res, json_t **doc, const char *name, const char *what)
{
    char msg[160];

    snprintf(msg, sizeof msg, "%s: %s", name, what);
    ng_response_error(res, 400, "bad_request", msg);
    json_decref(*doc);
    *doc = NULL;
    return -1;
}

/* Why v cannot be field f, or NULL. */
static const char *
wrong(const ng_jsonbody_field *f, const json_t *v)
{
    switch (f->type) {
    case NG_JSONBODY_STRING: return json_is_string(v) ? NULL : "expected a string";
    case NG_JSONBODY_BOOL: return json_is_boolean(v) ? NULL : "expected true or false";
    case NG_JSONBODY_UINT:
        return json_is_integer(v) && json_integer_value(v) >= 0 && (uint64_t)json_integer_value(v) <= f->max
                   ? NULL
                   : "expected a whole number in range";
    }
    return "unexpected";
}

static void
take(const ng_jsonbody_field *f, const json_t *v)
{
    if (f->type == NG_JSONBODY_STRING)
        *f->str = json_string_value(v);
    else if (f->type == NG_JSONBODY_BOOL)
        *f->flag = json_is_true(v);
    else
        *f->num = (uint64_t)json_integer_value(v);
}

int
ng_jsonbody_parse(const ng_request *req, ng_response *res, size_t max_body, const ng_jsonbody_field *fields,
                  json_t **doc)
{
    const ng_jsonbody_field *f;
    const char *key;
    json_t *v;

    *doc = NULL;
    if (req->too_large || req->body_len > max_body) {
        ng_response_error(res, 413, "too_large", "request body over this route's limit");
        return -1;
    }
    if (req->body_len == 0)
        *doc = json_object();
    else
        *doc = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(*doc)) {
        json_decref(*doc);
        *doc = NULL;
        ng_response_error(res, 400, "bad_request", "expected a JSON object (no duplicate keys)");
        return -1;
    }
    json_object_foreach(*doc, key, v)
    {
        for (f = fields; f->name != NULL && strcmp(f->name, key) != 0; f++)
            ;
        /* An unknown field's name is not echoed: it is the sender's text. */
        if (f->name == NULL)
            return refuse(res, doc, "body", "an unknown field");
        if (wrong(f, v) != NULL)
            return refuse(res, doc, f->name, wrong(f, v));
    }
    for (f = fields; f->name != NULL; f++)
        if (f->required && json_object_get(*doc, f->name) == NULL)
            return refuse(res, doc, f->name, "missing");
    /* Only a body accepted whole is written out: a refusal leaves every output as it was. */
    for (f = fields; f->name != NULL; f++)
        if ((v = json_object_get(*doc, f->name)) != NULL)
            take(f, v);
    return 0;
}

/*
 * ng_jsonbody.h: a request body that must be one JSON object of known
 * fields, as the admin and pairing routes take. Unknown fields, duplicate
 * keys and wrong types are refused rather than ignored, so that a typo in an
 * operator's request fails loudly instead of doing something else.
 */
#ifndef NG_JSONBODY_H
#define NG_JSONBODY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ng_server.h"

typedef enum ng_jsonbody_type {
    NG_JSONBODY_STRING, /* into *str, pointing into the document */
    NG_JSONBODY_BOOL,   /* into *flag, 0 or 1 */
    NG_JSONBODY_UINT,   /* into *num, 0..max */
} ng_jsonbody_type;

typedef struct ng_jsonbody_field {
    const char *name;
    ng_jsonbody_type type;
    int required;
    const char **str;
    int *flag;
    uint64_t *num;
    uint64_t max;
} ng_jsonbody_field;

/*
 * Parses req's body against fields (ended by a NULL name). Fields absent
 * and not required keep their values, and so does every field when the
 * body is refused. 0 with *doc to json_decref (strings
 * point into it), or -1 with the 400 or 413 answer already set in res.
 * An empty body is an empty object. The message names the field, never
 * echoes the sender's text.
 */
int ng_jsonbody_parse(const ng_request *req, ng_response *res, size_t max_body, const ng_jsonbody_field *fields,
                      json_t **doc);

#endif

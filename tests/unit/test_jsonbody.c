/*
 * Request bodies parsed into typed fields (ng_jsonbody): a good body of
 * every type, optional fields left as they were, and every refusal (a
 * missing field named, an unknown one not echoed, wrong types and ranges,
 * duplicate keys, anything but one JSON object, a body over the limit),
 * each answered 400 or 413 with *doc NULL. Bodies are copied to buffers of
 * their exact length, so that ASan sees any read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ng_jsonbody.h"
#include "ng_server.h"

enum { MAX_BODY = 1024 };

/* The outputs of the fields below. */
static const char *g_name, *g_note;
static int g_flag;
static uint64_t g_count, g_big;

static const ng_jsonbody_field fields[] = {
    {"name", NG_JSONBODY_STRING, 1, &g_name, NULL, NULL, 0},
    {"note", NG_JSONBODY_STRING, 0, &g_note, NULL, NULL, 0},
    {"flag", NG_JSONBODY_BOOL, 0, NULL, &g_flag, NULL, 0},
    {"count", NG_JSONBODY_UINT, 0, NULL, NULL, &g_count, 100},
    {"big", NG_JSONBODY_UINT, 0, NULL, NULL, &g_big, UINT64_MAX},
    {NULL, 0, 0, NULL, NULL, NULL, 0},
};

static const ng_jsonbody_field optional_only[] = {
    {"note", NG_JSONBODY_STRING, 0, &g_note, NULL, NULL, 0},
    {"flag", NG_JSONBODY_BOOL, 0, NULL, &g_flag, NULL, 0},
    {NULL, 0, 0, NULL, NULL, NULL, 0},
};

static const char prior_name[] = "prior-name", prior_note[] = "prior-note";

static void
reset(void)
{
    g_name = prior_name;
    g_note = prior_note;
    g_flag = 7;
    g_count = 42;
    g_big = 43;
}

/*
 * Parses body (len bytes, copied to a buffer of exactly that length) with
 * max as the limit. Returns what ng_jsonbody_parse returned; the answer's
 * status, code and message (the caller frees *message) when it refused.
 */
static int
parse_with(const ng_jsonbody_field *f, const char *body, size_t len, size_t max, json_t **doc, int *status, char **code,
           char **message)
{
    ng_request req;
    ng_response res;
    uint8_t *copy = malloc(len > 0 ? len : 1);
    json_t *answer, *error;
    int rc;

    assert_non_null(copy);
    memcpy(copy, body, len);
    memset(&req, 0, sizeof req);
    memset(&res, 0, sizeof res);
    req.body = copy;
    req.body_len = len;
    *doc = (json_t *)&req; /* anything but NULL: the parser must set it */
    rc = ng_jsonbody_parse(&req, &res, max, f, doc);
    free(copy);
    *status = res.status;
    *code = NULL;
    *message = NULL;
    if (rc == 0) {
        assert_null(res.body);
        return rc;
    }
    assert_int_equal(rc, -1);
    assert_non_null(res.body);
    answer = json_loadb(res.body, res.len, 0, NULL);
    assert_non_null(answer);
    error = json_object_get(answer, "error");
    assert_true(json_is_string(json_object_get(error, "code")));
    assert_true(json_is_string(json_object_get(error, "message")));
    *code = strdup(json_string_value(json_object_get(error, "code")));
    *message = strdup(json_string_value(json_object_get(error, "message")));
    json_decref(answer);
    free(res.body);
    return rc;
}

static json_t *
good(const char *body)
{
    char *code, *message;
    json_t *doc;
    int status;

    assert_int_equal(parse_with(fields, body, strlen(body), MAX_BODY, &doc, &status, &code, &message), 0);
    assert_non_null(doc);
    assert_true(json_is_object(doc));
    return doc;
}

/*
 * body (len bytes) must be refused with status and code, *doc NULL, and a
 * message that contains want (if not NULL), not shun (if not NULL) and not
 * the body.
 */

static void
refused_at(int line, const char *body, size_t len, size_t max, int want_status, const char *want_code, const char *want,
           const char *shun)
{
    char *code, *message;
    json_t *doc;
    int status;

    reset();
    if (parse_with(fields, body, len, max, &doc, &status, &code, &message) != -1)
        fail_msg("line %d: accepted", line);
    if (doc != NULL)
        fail_msg("line %d: *doc is not NULL after a refusal", line);
    if (status != want_status || strcmp(code, want_code) != 0)
        fail_msg("line %d: got %d %s, expected %d %s", line, status, code, want_status, want_code);
    if (message[0] == '\0')
        fail_msg("line %d: an empty message", line);
    if (want != NULL && strstr(message, want) == NULL)
        fail_msg("line %d: \"%s\" does not contain \"%s\"", line, message, want);
    if (shun != NULL && strstr(message, shun) != NULL)
        fail_msg("line %d: \"%s\" echoes \"%s\"", line, message, shun);
    if (len >= 4 && len < 200 && strstr(message, body) != NULL)
        fail_msg("line %d: \"%s\" echoes the body", line, message);
    free(code);
    free(message);
}

#define REFUSED_S(body, status, code, want, shun)                                                                      \
    refused_at(__LINE__, body, strlen(body), MAX_BODY, status, code, want, shun)

static void
test_good(void **state)
{
    json_t *doc;

    (void)state;
    reset();
    doc = good("{\"name\":\"acme\",\"note\":\"h\\u00e9llo\",\"flag\":true,\"count\":100,\"big\":9223372036854775807}");
    assert_string_equal(g_name, "acme");
    assert_string_equal(g_note, "h\xc3\xa9llo");
    assert_int_equal(g_flag, 1);
    assert_int_equal(g_count, 100);
    assert_true(g_big == (uint64_t)INT64_MAX);
    /* strings point into the document */
    assert_ptr_equal(g_name, json_string_value(json_object_get(doc, "name")));
    json_decref(doc);

    reset();
    doc = good(" {\n\t\"flag\" : false , \"count\" : 0, \"name\" : \"\", \"big\": 0 }\n");
    assert_string_equal(g_name, "");
    assert_int_equal(g_flag, 0);
    assert_int_equal(g_count, 0);
    assert_true(g_big == 0);
    assert_string_equal(g_note, "prior-note");
    json_decref(doc);
}

static void
test_optional_absent(void **state)
{
    char *code, *message;
    json_t *doc;
    int status;

    (void)state;
    reset();
    doc = good("{\"name\":\"x\"}");
    assert_string_equal(g_name, "x");
    assert_string_equal(g_note, "prior-note");
    assert_int_equal(g_flag, 7);
    assert_int_equal(g_count, 42);
    assert_true(g_big == 43);
    json_decref(doc);

    /* An empty body is an empty object: fine with no required field... */
    reset();
    assert_int_equal(parse_with(optional_only, "", 0, MAX_BODY, &doc, &status, &code, &message), 0);
    assert_non_null(doc);
    assert_true(json_is_object(doc));
    assert_int_equal(json_object_size(doc), 0);
    assert_string_equal(g_note, "prior-note");
    assert_int_equal(g_flag, 7);
    json_decref(doc);
    assert_int_equal(parse_with(optional_only, "{}", 2, MAX_BODY, &doc, &status, &code, &message), 0);
    assert_int_equal(json_object_size(doc), 0);
    json_decref(doc);
    /* ... and with no fields at all */
    assert_int_equal(parse_with(fields + 5, "{}", 2, MAX_BODY, &doc, &status, &code, &message), 0);
    json_decref(doc);
    assert_int_equal(parse_with(fields + 5, "{\"a\":1}", 7, MAX_BODY, &doc, &status, &code, &message), -1);
    assert_null(doc);
    free(code);
    free(message);
}

static void
test_missing(void **state)
{
    (void)state;
    /* the empty body and the empty object alike */
    refused_at(__LINE__, "", 0, MAX_BODY, 400, "bad_request", "name", NULL);
    REFUSED_S("{}", 400, "bad_request", "name", NULL);
    REFUSED_S("{\"note\":\"n\",\"flag\":true}", 400, "bad_request", "name", NULL);
    /* null is not absent */
    REFUSED_S("{\"name\":null}", 400, "bad_request", "name", NULL);
}

static void
test_unknown(void **state)
{
    (void)state;
    REFUSED_S("{\"name\":\"x\",\"sneakyfield\":1}", 400, "bad_request", "unknown", "sneakyfield");
    REFUSED_S("{\"sneakyfield\":\"whsec_c2VjcmV0\",\"name\":\"x\"}", 400, "bad_request", NULL, "whsec_");
    REFUSED_S("{\"sneakyfield\":\"whsec_c2VjcmV0\",\"name\":\"x\"}", 400, "bad_request", NULL, "sneakyfield");
    /* names are case-sensitive, and not prefixes */
    REFUSED_S("{\"Name\":\"x\"}", 400, "bad_request", NULL, "Name");
    REFUSED_S("{\"name\":\"x\",\"names\":\"y\"}", 400, "bad_request", NULL, "names");
    REFUSED_S("{\"name\":\"x\",\"\":\"y\"}", 400, "bad_request", "unknown", NULL);
}

static void
test_types(void **state)
{
    (void)state;
    /* a string */
    REFUSED_S("{\"name\":1}", 400, "bad_request", "name", NULL);
    REFUSED_S("{\"name\":true}", 400, "bad_request", "name", NULL);
    REFUSED_S("{\"name\":[\"secret-ish\"]}", 400, "bad_request", "name", "secret-ish");
    REFUSED_S("{\"name\":{\"a\":\"b\"}}", 400, "bad_request", "name", NULL);
    REFUSED_S("{\"name\":\"x\",\"note\":0}", 400, "bad_request", "note", NULL);
    /* a bool */
    REFUSED_S("{\"name\":\"x\",\"flag\":\"true\"}", 400, "bad_request", "flag", NULL);
    REFUSED_S("{\"name\":\"x\",\"flag\":1}", 400, "bad_request", "flag", NULL);
    REFUSED_S("{\"name\":\"x\",\"flag\":0}", 400, "bad_request", "flag", NULL);
    REFUSED_S("{\"name\":\"x\",\"flag\":null}", 400, "bad_request", "flag", NULL);
    /* a whole number from 0 to max */
    REFUSED_S("{\"name\":\"x\",\"count\":\"5\"}", 400, "bad_request", "count", NULL);
    REFUSED_S("{\"name\":\"x\",\"count\":true}", 400, "bad_request", "count", NULL);
    REFUSED_S("{\"name\":\"x\",\"count\":1.0}", 400, "bad_request", "count", NULL);
    REFUSED_S("{\"name\":\"x\",\"count\":1.5}", 400, "bad_request", "count", NULL);
    REFUSED_S("{\"name\":\"x\",\"count\":1e2}", 400, "bad_request", "count", NULL);
    REFUSED_S("{\"name\":\"x\",\"count\":-1}", 400, "bad_request", "count", NULL);
    REFUSED_S("{\"name\":\"x\",\"count\":-9223372036854775808}", 400, "bad_request", "count", NULL);
    REFUSED_S("{\"name\":\"x\",\"count\":101}", 400, "bad_request", "count", "101");
    REFUSED_S("{\"name\":\"x\",\"count\":9223372036854775807}", 400, "bad_request", "count", NULL);
    REFUSED_S("{\"name\":\"x\",\"count\":null}", 400, "bad_request", "count", NULL);
    REFUSED_S("{\"name\":\"x\",\"big\":-1}", 400, "bad_request", "big", NULL);
    /* past int64: jansson refuses the number, so the whole body is refused */
    REFUSED_S("{\"name\":\"x\",\"big\":18446744073709551615}", 400, "bad_request", NULL, NULL);
}

static void
test_not_an_object(void **state)
{
    static const char *const bodies[] = {
        "[]",
        "[{\"name\":\"x\"}]",
        "\"name\"",
        "42",
        "null",
        "true",
        " ",
        "{",
        "{\"name\":",
        "{\"name\":\"x\"",
        "{\"name\":\"x\"} {}",
        "{\"name\":\"x\"},",
        "{'name':'x'}",
        "{name:\"x\"}",
        "{\"name\":\"x\",}",
        "{\"name\":\"a\\u0000b\"}",
        "{\"name\":\"\xff\xfe\"}",
        "\xef\xbb\xbf{\"name\":\"x\"}",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        refused_at(__LINE__ + 10000 * (int)(i + 1), bodies[i], strlen(bodies[i]), MAX_BODY, 400, "bad_request",
                   "JSON object", NULL);
    /* a NUL byte inside the body, past a complete object */
    refused_at(__LINE__, "{\"name\":\"x\"}\0{}", 15, MAX_BODY, 400, "bad_request", "JSON object", NULL);
}

static void
test_duplicates(void **state)
{
    (void)state;
    REFUSED_S("{\"name\":\"x\",\"name\":\"y\"}", 400, "bad_request", "duplicate", NULL);
    REFUSED_S("{\"name\":\"x\",\"flag\":true,\"flag\":false}", 400, "bad_request", "duplicate", NULL);
    /* a duplicate unknown key too */
    REFUSED_S("{\"name\":\"x\",\"zz\":1,\"zz\":1}", 400, "bad_request", NULL, "zz");
}

static void
test_too_large(void **state)
{
    char body[64], *code, *message;
    json_t *doc;
    int status;

    (void)state;
    snprintf(body, sizeof body, "{\"name\":\"x\"}");
    /* at the limit: read */
    assert_int_equal(parse_with(fields, body, strlen(body), strlen(body), &doc, &status, &code, &message), 0);
    json_decref(doc);
    /* one byte over: 413, good JSON or not */
    refused_at(__LINE__, body, strlen(body), strlen(body) - 1, 413, "too_large", NULL, NULL);
    refused_at(__LINE__, "not json at all", 15, 8, 413, "too_large", NULL, NULL);
    /* a limit of 0 refuses any body, but an empty one is still the empty object */
    refused_at(__LINE__, "{}", 2, 0, 413, "too_large", NULL, NULL);
    assert_int_equal(parse_with(optional_only, "", 0, 0, &doc, &status, &code, &message), 0);
    json_decref(doc);
}

/*
 * A refusal after some fields would have been taken leaves every output as
 * it was (the header's contract): none points into the freed document.
 */
static void
test_refusal_leaves_outputs(void **state)
{
    char *code, *message;
    json_t *doc;
    int status;
    const char *body = "{\"note\":\"taken-then-freed\",\"flag\":true,\"count\":-1,\"name\":\"x\"}";

    (void)state;
    reset();
    assert_int_equal(parse_with(fields, body, strlen(body), MAX_BODY, &doc, &status, &code, &message), -1);
    free(code);
    free(message);
    /* Compared as pointers: g_note is not read, it may point into freed memory. */
    assert_ptr_equal(g_note, prior_note);
    assert_int_equal(g_flag, 7);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_optional_absent),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_refusal_leaves_outputs),
    };

    return cmocka_run_group_tests_name("jsonbody", tests, NULL, NULL);
}

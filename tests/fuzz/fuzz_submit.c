/*
 * fuzz_submit: ng_submit_parse_json and ng_submit_parse_binary on arbitrary
 * bytes.
 *
 * JSON: the whole input is the request body, given as an exact-size heap copy
 * that is wiped and freed before the result is checked, so ASan catches an
 * over-read and a body that still points into the request.
 *
 * Binary mode: the same input is also read as a request:
 *   byte 0      which headers are present (bit i: headers[i] below);
 *   byte 1      which of the present ones take a canned valid value instead
 *               of a fuzzed one, so the parser's later checks are reached;
 *   then        one fuzzed value per header, each ended by '\n' (cut at a NUL,
 *               since a header value is a C string);
 *   the rest    the body, passed as an exact-size heap block.
 *
 * What the target holds the parser to (a violation aborts):
 *   - on failure *out is empty, the code is PARSE, TOO_LARGE or NOMEM, and the
 *     message is one line of printable ASCII;
 *   - on success 1 <= n <= NG_SUBMIT_MAX_BATCH (n == 1 unless a batch), every
 *     field is NUL-terminated in its array and obeys its rule (checked here by
 *     code of our own), ttl_s is 0-2^31, the pattern is valid, the body is
 *     readable for body_len bytes, and meta is exactly what jansson writes for
 *     {content_type, type, subject} with JSON_ENSURE_ASCII;
 *   - JSON: the fields and bodies equal what jansson and libsodium read from
 *     the same document, and body_base64 is ASCII; whatever jansson refuses,
 *     the parser refuses;
 *   - binary: the body is the caller's, not a copy, and the fields equal the
 *     header values;
 *   - ng_submit_free leaves *out empty.
 *
 * Set NG_FUZZ_STATS=1 to print at exit how many inputs parsed in each mode:
 * a figure near zero means the seeds no longer reach the field checks.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>

#include "fuzz_check.h"
#include "ng_submit.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { N_HEADERS = 8, TTL_MAX_S = 2147483647 };

static const char *const header_names[N_HEADERS] = {"ce-specversion", "ce-recipient", "content-type", "ce-ttl",
                                                    "ce-pattern",     "ce-type",      "ce-subject",   "ce-id"};
static const char *const canned[N_HEADERS] = {"1.0", "bob", "text/plain", "60", "X", "com.example", "s\xc3\xa9", "1"};

struct request {
    char *value[N_HEADERS]; /* NULL: absent */
};

static unsigned long long n_runs, n_json_ok, n_binary_ok;

static void
print_stats(void)
{
    fprintf(stderr, "fuzz_submit: %llu inputs, %llu parsed as JSON, %llu in binary mode\n", n_runs, n_json_ok,
            n_binary_ok);
}

static const char *
header_of(void *ctx, const char *name)
{
    const struct request *r = ctx;
    size_t i;

    for (i = 0; i < N_HEADERS; i++)
        if (strcasecmp(header_names[i], name) == 0)
            return r->value[i];
    return NULL;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        abort();
    if (getenv("NG_FUZZ_STATS") != NULL)
        atexit(print_stats);
    return 0;
}

static int
is_empty(const ng_submit *s)
{
    return s->msgs == NULL && s->n == 0 && s->batch == 0 && s->private == NULL;
}

/* A string in an array of cap bytes: NUL-terminated inside it. Returns its length. */
static size_t
terminated(const char *s, size_t cap)
{
    const char *nul = memchr(s, 0, cap);

    CHECK(nul != NULL);
    return (size_t)(nul - s);
}

/* The field rules, written again here rather than borrowed from the parser. */
static int
model_recipient(const char *s)
{
    size_t i, n = strlen(s);

    if (n < 1 || n > 63 || s[0] == '-')
        return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

static int
model_ascii(const char *s)
{
    size_t i, n = strlen(s);

    if (n < 1 || n > 255)
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/* 1-255 bytes that jansson takes as UTF-8, with no code point below U+0020 or in U+007F-U+009F. */
static int
model_text(const char *s)
{
    size_t i, n = strlen(s);
    json_t *j;

    if (n < 1 || n > 255)
        return 0;
    j = json_stringn(s, n);
    if (j == NULL)
        return 0;
    json_decref(j);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c == 0x7f)
            return 0;
        if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9f)
            return 0;
    }
    return 1;
}

static void
check_meta(const ng_submit_msg *m)
{
    json_t *o = json_object();
    char *ref;

    CHECK(m->meta != NULL && strlen(m->meta) == m->meta_len);
    CHECK(o != NULL);
    CHECK(json_object_set_new(o, "content_type", json_string(m->content_type)) == 0);
    if (m->type[0] != '\0')
        CHECK(json_object_set_new(o, "type", json_string(m->type)) == 0);
    if (m->subject[0] != '\0')
        CHECK(json_object_set_new(o, "subject", json_string(m->subject)) == 0);
    ref = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    CHECK(ref != NULL);
    CHECK(strcmp(ref, m->meta) == 0);
    free(ref);
    json_decref(o);
}

/* What holds for every message, whatever its form. */
static void
check_message(const ng_submit_msg *m)
{
    volatile uint8_t sink = 0;
    size_t i;

    CHECK(terminated(m->recipient, sizeof m->recipient) <= NG_SUBMIT_MAX_NAME);
    CHECK(terminated(m->content_type, sizeof m->content_type) <= NG_SUBMIT_MAX_FIELD);
    CHECK(terminated(m->type, sizeof m->type) <= NG_SUBMIT_MAX_FIELD);
    CHECK(terminated(m->subject, sizeof m->subject) <= NG_SUBMIT_MAX_FIELD);
    CHECK(model_recipient(m->recipient));
    CHECK(model_ascii(m->content_type));
    CHECK(m->type[0] == '\0' || model_text(m->type));
    CHECK(m->subject[0] == '\0' || model_text(m->subject));
    CHECK(m->ttl_s >= 0 && m->ttl_s <= (int64_t)TTL_MAX_S + 1);
    CHECK(m->has_pattern == 0 || m->has_pattern == 1);
    CHECK(!m->has_pattern || ng_pattern_valid((unsigned)m->pattern));
    CHECK(m->body != NULL);
    for (i = 0; i < m->body_len; i++)
        sink ^= m->body[i];
    (void)sink;
    check_meta(m);
}

static void
check_success(const ng_submit *s)
{
    size_t i;

    CHECK(s->n >= 1 && s->n <= NG_SUBMIT_MAX_BATCH);
    CHECK(s->msgs != NULL && s->private != NULL);
    CHECK(s->batch || s->n == 1);
    for (i = 0; i < s->n; i++)
        check_message(&s->msgs[i]);
}

static void
check_failure(const ng_submit *s, ng_err err, const char *msg, size_t cap)
{
    size_t i, n;

    CHECK(err == NG_ERR_PARSE || err == NG_ERR_TOO_LARGE || err == NG_ERR_NOMEM);
    CHECK(is_empty(s));
    n = terminated(msg, cap);
    CHECK(n > 0);
    for (i = 0; i < n; i++)
        CHECK(msg[i] >= 0x20 && msg[i] <= 0x7e);
}

/* The message objects jansson finds in the document: the root, or the items of "messages". */
static json_t *
model_message(json_t *root, size_t i)
{
    json_t *list = json_object_get(root, "messages");

    return list != NULL ? json_array_get(list, i) : root;
}

/* The parsed fields against jansson's and libsodium's reading of the same document. */
static void
check_against_jansson(const ng_submit *s, json_t *root)
{
    size_t i, len;

    CHECK(s->batch == (json_object_get(root, "messages") != NULL));
    for (i = 0; i < s->n; i++) {
        const ng_submit_msg *m = &s->msgs[i];
        json_t *obj = model_message(root, i), *v;

        CHECK(json_is_object(obj));
        v = json_object_get(obj, "recipient");
        CHECK(json_is_string(v) && strcmp(json_string_value(v), m->recipient) == 0);
        v = json_object_get(obj, "ttl");
        CHECK(v == NULL ? m->ttl_s == 0 : json_integer_value(v) == m->ttl_s);
        v = json_object_get(obj, "pattern");
        CHECK((v != NULL) == m->has_pattern);
        CHECK(v == NULL || strcmp(json_string_value(v), ng_pattern_name(m->pattern)) == 0);
        v = json_object_get(obj, "type");
        CHECK(v == NULL ? m->type[0] == '\0' : strcmp(json_string_value(v), m->type) == 0);
        v = json_object_get(obj, "subject");
        CHECK(v == NULL ? m->subject[0] == '\0' : strcmp(json_string_value(v), m->subject) == 0);
        v = json_object_get(obj, "body");
        if (v != NULL) {
            CHECK(json_object_get(obj, "body_base64") == NULL);
            CHECK(json_string_length(v) == m->body_len);
            CHECK(m->body_len == 0 || memcmp(json_string_value(v), m->body, m->body_len) == 0);
            v = json_object_get(obj, "content_type");
            CHECK(strcmp(v != NULL ? json_string_value(v) : "text/plain; charset=utf-8", m->content_type) == 0);
        } else {
            uint8_t *raw;

            v = json_object_get(obj, "body_base64");
            CHECK(json_is_string(v));
            /* Standard base64 is ASCII (libsodium 1.0.18 would take any byte over 0x7f for '/'). */
            for (len = 0; len < json_string_length(v); len++)
                CHECK((unsigned char)json_string_value(v)[len] < 0x80);
            raw = malloc(json_string_length(v) + 1);
            CHECK(raw != NULL);
            CHECK(sodium_base642bin(raw, json_string_length(v), json_string_value(v), json_string_length(v), NULL, &len,
                                    NULL, sodium_base64_VARIANT_ORIGINAL) == 0);
            CHECK(len == m->body_len);
            CHECK(len == 0 || memcmp(raw, m->body, len) == 0);
            free(raw);
            v = json_object_get(obj, "content_type");
            CHECK(strcmp(v != NULL ? json_string_value(v) : "application/octet-stream", m->content_type) == 0);
        }
    }
}

static void
fuzz_json(const uint8_t *data, size_t size)
{
    char err[NG_SUBMIT_ERR_BYTES];
    uint8_t *copy = malloc(size > 0 ? size : 1);
    json_error_t jerr;
    json_t *root;
    ng_submit s;
    ng_err e;

    CHECK(copy != NULL);
    if (size > 0)
        memcpy(copy, data, size);
    memset(err, 'Z', sizeof err);
    memset(&s, 0xa5, sizeof s);
    e = ng_submit_parse_json(&s, copy, size, err, sizeof err);
    sodium_memzero(copy, size);
    free(copy);
    root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (e != NG_OK) {
        check_failure(&s, e, err, sizeof err);
    } else {
        n_json_ok++;
        CHECK(err[0] == '\0');
        CHECK(root != NULL && json_is_object(root));
        check_success(&s);
        check_against_jansson(&s, root);
    }
    json_decref(root);
    ng_submit_free(&s);
    CHECK(is_empty(&s));
}

static void
fuzz_binary(const uint8_t *data, size_t size)
{
    char err[NG_SUBMIT_ERR_BYTES];
    struct request r;
    const uint8_t *p = data + 2, *end = data + size, *nl;
    uint8_t *body;
    size_t i, blen;
    ng_submit s;
    ng_err e;

    if (size < 2)
        return;
    memset(&r, 0, sizeof r);
    for (i = 0; i < N_HEADERS; i++) {
        size_t n;

        nl = memchr(p, '\n', (size_t)(end - p));
        n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        if (data[0] & (1u << i)) {
            if (data[1] & (1u << i)) {
                r.value[i] = strdup(canned[i]);
            } else {
                r.value[i] = malloc(n + 1);
                CHECK(r.value[i] != NULL);
                memcpy(r.value[i], p, n);
                r.value[i][n] = '\0';
            }
            CHECK(r.value[i] != NULL);
        }
        p = nl != NULL ? nl + 1 : end;
    }
    blen = (size_t)(end - p);
    body = blen > 0 ? malloc(blen) : NULL;
    CHECK(blen == 0 || body != NULL);
    if (blen > 0)
        memcpy(body, p, blen);

    CHECK(ng_submit_is_binary(header_of, &r) == (r.value[0] != NULL));
    memset(err, 'Z', sizeof err);
    memset(&s, 0xa5, sizeof s);
    e = ng_submit_parse_binary(&s, header_of, &r, body, blen, err, sizeof err);
    if (e != NG_OK) {
        check_failure(&s, e, err, sizeof err);
        CHECK(e == NG_ERR_PARSE || e == NG_ERR_NOMEM);
    } else {
        const ng_submit_msg *m;

        n_binary_ok++;
        CHECK(err[0] == '\0');
        check_success(&s);
        CHECK(s.n == 1 && !s.batch);
        m = &s.msgs[0];
        CHECK(r.value[0] != NULL && strcmp(r.value[0], "1.0") == 0);
        CHECK(r.value[1] != NULL && strcmp(r.value[1], m->recipient) == 0);
        CHECK(strcmp(r.value[2] != NULL ? r.value[2] : "application/octet-stream", m->content_type) == 0);
        CHECK(r.value[3] == NULL ? m->ttl_s == 0
                                 : strspn(r.value[3], "0123456789") == strlen(r.value[3]) &&
                                       m->ttl_s == strtoll(r.value[3], NULL, 10) && m->ttl_s >= 1);
        CHECK((r.value[4] != NULL) == m->has_pattern);
        CHECK(r.value[4] == NULL || strcmp(r.value[4], ng_pattern_name(m->pattern)) == 0);
        CHECK(strcmp(r.value[5] != NULL ? r.value[5] : "", m->type) == 0);
        CHECK(strcmp(r.value[6] != NULL ? r.value[6] : "", m->subject) == 0);
        CHECK(m->body_len == blen && (blen == 0 || m->body == body));
    }
    ng_submit_free(&s);
    CHECK(is_empty(&s));
    free(body);
    for (i = 0; i < N_HEADERS; i++)
        free(r.value[i]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    n_runs++;
    fuzz_json(data, size);
    fuzz_binary(data, size);
    return 0;
}

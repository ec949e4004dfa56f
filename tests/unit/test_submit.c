/*
 * Submitted messages: every field at its bounds and just past them, in the
 * JSON form, the batch form and CloudEvents binary mode; the body in both
 * encodings, byte for byte; the meta text exactly; unknown and duplicate
 * keys; every prefix of a valid document; errors that name the field (and
 * the batch index) but never a value; and ng_submit_free on every outcome.
 *
 * JSON bodies are parsed from exact-size heap copies that are freed before
 * the result is looked at, so ASan catches an over-read and a body that
 * still points into the request.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "ng_submit.h"

#define TEXT_TYPE   "text/plain; charset=utf-8"
#define BINARY_TYPE "application/octet-stream"
#define TTL_ERR     "expected an integer 1-2147483648"
#define NAME_ERR    "expected 1-63 characters of a-z, 0-9 and '-', not starting with '-'"
#define CT_ERR      "expected 1-255 printable ASCII characters"
#define TEXT_ERR    "expected 1-255 bytes of UTF-8 without control characters"
#define PATTERN_ERR "expected one of N, K, X, Npsk0, Kpsk0, Xpsk1"
#define B64_ERR     "expected a string of standard base64 with padding"

/* Content that must never show up in an error message. */
#define MARK "Sekrit"

enum { DOC_BYTES = 1 << 17 };

static char errbuf[NG_SUBMIT_ERR_BYTES];

/* ---- helpers ---- */

static const char *doc_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Formats into a buffer of its own (one of four, so a call may take another's result). */
static const char *
doc_fmt(const char *fmt, ...)
{
    static char bufs[4][DOC_BYTES];
    static int next;
    char *b = bufs[next++ % 4];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(b, DOC_BYTES, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && n < DOC_BYTES);
    return b;
}

/* n copies of s, in a buffer of its own (one of four, so a call may use several). */
static const char *
repeat(const char *s, size_t n)
{
    static char bufs[4][2048];
    static int next;
    char *b = bufs[next++ % 4];
    size_t len = strlen(s), i;

    assert_true(len * n < sizeof bufs[0]);
    for (i = 0; i < n; i++)
        memcpy(b + i * len, s, len);
    b[len * n] = '\0';
    return b;
}

static int
is_empty(const ng_submit *s)
{
    return s->msgs == NULL && s->n == 0 && s->batch == 0 && s->private == NULL;
}

/* Parses len bytes of text from an exact-size heap copy, which is gone when this returns. */
static ng_err
parse_n(ng_submit *s, const char *text, size_t len)
{
    uint8_t *copy = malloc(len > 0 ? len : 1);
    ng_err err;

    assert_non_null(copy);
    memcpy(copy, text, len);
    memset(errbuf, 'Z', sizeof errbuf);
    memset(s, 0xa5, sizeof *s);
    err = ng_submit_parse_json(s, copy, len, errbuf, sizeof errbuf);
    sodium_memzero(copy, len);
    free(copy);
    assert_non_null(memchr(errbuf, 0, sizeof errbuf));
    return err;
}

static ng_err
parse(ng_submit *s, const char *text)
{
    return parse_n(s, text, strlen(text));
}

/* One message that must parse; the caller frees s. */
static const ng_submit_msg *
parse_one(ng_submit *s, const char *text)
{
    ng_err err = parse(s, text);

    if (err != NG_OK)
        fail_msg("refused (%d: %s): %s", err, errbuf, text);
    assert_string_equal(errbuf, "");
    assert_int_equal(s->n, 1);
    assert_non_null(s->msgs);
    assert_non_null(s->private);
    return &s->msgs[0];
}

/* text must fail with code and exactly the message msg (NULL: any message). */
static void
refuse(const char *text, ng_err code, const char *msg)
{
    ng_submit s;
    ng_err err = parse(&s, text);

    if (err != code)
        fail_msg("expected error %d, got %d (%s) for: %s", code, err, errbuf, text);
    assert_true(is_empty(&s));
    assert_true(errbuf[0] != '\0');
    if (msg != NULL && strcmp(errbuf, msg) != 0)
        fail_msg("message \"%s\", expected \"%s\", for: %s", errbuf, msg, text);
    assert_null(strstr(errbuf, MARK));
    ng_submit_free(&s);
    assert_true(is_empty(&s));
}

/* A message with one field set to raw JSON text, the rest minimal. */
static const char *
with(const char *field, const char *json)
{
    return doc_fmt("{\"recipient\":\"bob\",\"body\":\"" MARK "\",\"%s\":%s}", field, json);
}

/* Request headers for binary mode: names compared without regard to case. */
struct headers {
    const char *name[16];
    const char *value[16];
    size_t n;
};

static const char *
header_of(void *ctx, const char *name)
{
    const struct headers *h = ctx;
    size_t i;

    for (i = 0; i < h->n; i++)
        if (strcasecmp(h->name[i], name) == 0)
            return h->value[i];
    return NULL;
}

/* Sets (value not NULL) or removes a header. */
static void
hset(struct headers *h, const char *name, const char *value)
{
    size_t i;

    for (i = 0; i < h->n; i++)
        if (strcasecmp(h->name[i], name) == 0)
            break;
    if (value == NULL) {
        if (i < h->n) {
            h->name[i] = h->name[h->n - 1];
            h->value[i] = h->value[h->n - 1];
            h->n--;
        }
        return;
    }
    if (i == h->n) {
        assert_true(h->n < 16);
        h->n++;
    }
    h->name[i] = name;
    h->value[i] = value;
}

/* The two required headers, in the capitalisation a client might use. */
static struct headers
base_headers(void)
{
    struct headers h;

    memset(&h, 0, sizeof h);
    hset(&h, "Ce-Specversion", "1.0");
    hset(&h, "CE-Recipient", "bob");
    return h;
}

static ng_err
parse_bin(ng_submit *s, struct headers *h, const uint8_t *body, size_t len)
{
    ng_err err;

    memset(errbuf, 'Z', sizeof errbuf);
    memset(s, 0xa5, sizeof *s);
    err = ng_submit_parse_binary(s, header_of, h, body, len, errbuf, sizeof errbuf);
    assert_non_null(memchr(errbuf, 0, sizeof errbuf));
    return err;
}

/* One header set to value (NULL: removed) must fail with msg. */
static void
refuse_bin(const char *name, const char *value, const char *msg)
{
    struct headers h = base_headers();
    ng_submit s;
    ng_err err;

    hset(&h, name, value);
    err = parse_bin(&s, &h, (const uint8_t *)MARK, strlen(MARK));
    if (err != NG_ERR_PARSE)
        fail_msg("%s: \"%s\" accepted (%d)", name, value ? value : "(none)", err);
    assert_true(is_empty(&s));
    assert_string_equal(errbuf, msg);
    ng_submit_free(&s);
}

/* One header set to value must parse; the caller frees s. */
static const ng_submit_msg *
accept_bin(ng_submit *s, const char *name, const char *value)
{
    struct headers h = base_headers();
    ng_err err;

    hset(&h, name, value);
    err = parse_bin(s, &h, (const uint8_t *)"x", 1);
    if (err != NG_OK)
        fail_msg("%s: \"%s\" refused: %s", name, value, errbuf);
    assert_int_equal(s->n, 1);
    return &s->msgs[0];
}

/* What jansson writes for the same meta, as the reference for ours. */
static char *
jansson_meta(const char *content_type, const char *type, const char *subject)
{
    json_t *o = json_object();
    char *text;

    assert_int_equal(json_object_set_new(o, "content_type", json_string(content_type)), 0);
    if (type != NULL)
        assert_int_equal(json_object_set_new(o, "type", json_string(type)), 0);
    if (subject != NULL)
        assert_int_equal(json_object_set_new(o, "subject", json_string(subject)), 0);
    text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(o);
    assert_non_null(text);
    return text;
}

static void
check_meta(const ng_submit_msg *m, const char *expect)
{
    assert_non_null(m->meta);
    assert_string_equal(m->meta, expect);
    assert_int_equal(m->meta_len, strlen(expect));
}

/* ---- the single JSON form ---- */

static void
test_minimal_and_full(void **state)
{
    ng_submit s;
    const ng_submit_msg *m;

    (void)state;
    m = parse_one(&s, "{\"recipient\":\"bob\",\"body\":\"hi\"}");
    assert_int_equal(s.batch, 0);
    assert_string_equal(m->recipient, "bob");
    assert_string_equal(m->content_type, TEXT_TYPE);
    assert_string_equal(m->type, "");
    assert_string_equal(m->subject, "");
    assert_int_equal(m->ttl_s, 0);
    assert_int_equal(m->has_pattern, 0);
    assert_int_equal(m->body_len, 2);
    assert_memory_equal(m->body, "hi", 2);
    check_meta(m, "{\"content_type\":\"" TEXT_TYPE "\"}");
    ng_submit_free(&s);
    assert_true(is_empty(&s));

    /* Every field, in an order unlike the meta's, with whitespace around everything. */
    m = parse_one(&s, " {\n \"subject\" : \"s1\", \"type\":\"com.example.note\", \"pattern\":\"Xpsk1\",\n"
                      "  \"ttl\": 3600, \"body\":\"hello\", \"content_type\":\"text/markdown\",\n"
                      "  \"recipient\":\"bob-2\" }\n\t");
    assert_string_equal(m->recipient, "bob-2");
    assert_string_equal(m->content_type, "text/markdown");
    assert_string_equal(m->type, "com.example.note");
    assert_string_equal(m->subject, "s1");
    assert_int_equal(m->ttl_s, 3600);
    assert_int_equal(m->has_pattern, 1);
    assert_int_equal(m->pattern, NG_PATTERN_XPSK1);
    assert_int_equal(m->body_len, 5);
    assert_memory_equal(m->body, "hello", 5);
    check_meta(m, "{\"content_type\":\"text/markdown\",\"type\":\"com.example.note\",\"subject\":\"s1\"}");
    ng_submit_free(&s);

    /* Only subject: type is left out of the meta, not written empty. */
    m = parse_one(&s, "{\"recipient\":\"bob\",\"body_base64\":\"\",\"subject\":\"x\"}");
    assert_string_equal(m->content_type, BINARY_TYPE);
    check_meta(m, "{\"content_type\":\"" BINARY_TYPE "\",\"subject\":\"x\"}");
    assert_int_equal(m->body_len, 0);
    assert_non_null(m->body);
    ng_submit_free(&s);
}

static void
test_recipient(void **state)
{
    static const char *const good[] = {"a", "0", "a-", "a--b", "9lives", "abcdefghijklmnopqrstuvwxyz-0123456789", NULL};
    static const char *const bad[] = {"",     "-a",       "-",       "Bob",    "b_b",      "b.b",   "b b", " bob",
                                      "bob ", "b\\u00e9", "\\u00e9", "bob\\n", "b\\u0000", "b\\/b", "b+b", NULL};
    ng_submit s;
    const ng_submit_msg *m;
    size_t i;

    (void)state;
    for (i = 0; good[i] != NULL; i++) {
        m = parse_one(&s, doc_fmt("{\"recipient\":\"%s\",\"body\":\"\"}", good[i]));
        assert_string_equal(m->recipient, good[i]);
        ng_submit_free(&s);
    }
    m = parse_one(&s, doc_fmt("{\"recipient\":\"%s\",\"body\":\"\"}", repeat("a", 63)));
    assert_int_equal(strlen(m->recipient), 63);
    assert_string_equal(m->recipient, repeat("a", 63));
    ng_submit_free(&s);
    refuse(doc_fmt("{\"recipient\":\"%s\",\"body\":\"\"}", repeat("a", 64)), NG_ERR_PARSE, "recipient: " NAME_ERR);
    for (i = 0; bad[i] != NULL; i++)
        refuse(doc_fmt("{\"recipient\":\"%s\",\"body\":\"\"}", bad[i]), NG_ERR_PARSE, "recipient: " NAME_ERR);
    refuse("{\"recipient\":7,\"body\":\"\"}", NG_ERR_PARSE, "recipient: " NAME_ERR);
    refuse("{\"recipient\":null,\"body\":\"\"}", NG_ERR_PARSE, "recipient: " NAME_ERR);
    refuse("{\"recipient\":[\"bob\"],\"body\":\"\"}", NG_ERR_PARSE, "recipient: " NAME_ERR);
    refuse("{\"recipient\":{},\"body\":\"\"}", NG_ERR_PARSE, "recipient: " NAME_ERR);
    refuse("{\"body\":\"\"}", NG_ERR_PARSE, "recipient: required");
    refuse("{}", NG_ERR_PARSE, "recipient: required");
}

static void
test_content_type(void **state)
{
    char printable[0x7f - 0x20 + 1], json[200];
    ng_submit s;
    const ng_submit_msg *m;
    size_t i, j = 0;

    (void)state;
    m = parse_one(&s, with("content_type", doc_fmt("\"%s\"", repeat("c", 255))));
    assert_string_equal(m->content_type, repeat("c", 255));
    ng_submit_free(&s);
    refuse(with("content_type", doc_fmt("\"%s\"", repeat("c", 256))), NG_ERR_PARSE, "content_type: " CT_ERR);
    refuse(with("content_type", "\"\""), NG_ERR_PARSE, "content_type: " CT_ERR);
    refuse(with("content_type", "\"text/plain\\t\""), NG_ERR_PARSE, "content_type: " CT_ERR);
    refuse(with("content_type", "\"text/plain\\n\""), NG_ERR_PARSE, "content_type: " CT_ERR);
    refuse(with("content_type", "\"text/plain\\u007f\""), NG_ERR_PARSE, "content_type: " CT_ERR);
    refuse(with("content_type", "\"text/plain\\u0000\""), NG_ERR_PARSE, "content_type: " CT_ERR);
    refuse(with("content_type", "\"text/pl\\u00e4in\""), NG_ERR_PARSE, "content_type: " CT_ERR);
    refuse(with("content_type", "null"), NG_ERR_PARSE, "content_type: " CT_ERR);
    refuse(with("content_type", "1"), NG_ERR_PARSE, "content_type: " CT_ERR);

    /* Every printable character, '"' and '\\' escaped in the JSON and again in the meta. */
    for (i = 0x20; i < 0x7f; i++)
        printable[j++] = (char)i;
    printable[j] = '\0';
    json[0] = '"';
    for (i = 0, j = 1; printable[i] != '\0'; i++) {
        if (printable[i] == '"' || printable[i] == '\\')
            json[j++] = '\\';
        json[j++] = printable[i];
    }
    json[j++] = '"';
    json[j] = '\0';
    m = parse_one(&s, with("content_type", json));
    assert_string_equal(m->content_type, printable);
    check_meta(m, doc_fmt("{\"content_type\":%s}", json));
    ng_submit_free(&s);
}

static void
test_ttl(void **state)
{
    static const char *const bad[] = {"0",
                                      "-1",
                                      "2147483649",
                                      "-2147483648",
                                      "1.5",
                                      "1e3",
                                      "1.0",
                                      "3600.0",
                                      "\"10\"",
                                      "null",
                                      "true",
                                      "[10]",
                                      "{}",
                                      "-0",
                                      "9223372036854775807",
                                      "-9223372036854775808",
                                      "4294967297",
                                      NULL};
    ng_submit s;
    const ng_submit_msg *m;
    size_t i;

    (void)state;
    m = parse_one(&s, with("ttl", "1"));
    assert_int_equal(m->ttl_s, 1);
    ng_submit_free(&s);
    m = parse_one(&s, with("ttl", "2147483648"));
    assert_int_equal(m->ttl_s, 2147483648LL);
    ng_submit_free(&s);
    m = parse_one(&s, "{\"recipient\":\"bob\",\"body\":\"\"}");
    assert_int_equal(m->ttl_s, 0);
    ng_submit_free(&s);
    for (i = 0; bad[i] != NULL; i++)
        refuse(with("ttl", bad[i]), NG_ERR_PARSE, "ttl: " TTL_ERR);
    /* Past what jansson holds: a JSON error, still PARSE. */
    refuse(with("ttl", "99999999999999999999"), NG_ERR_PARSE, NULL);
}

static void
test_pattern(void **state)
{
    static const struct {
        const char *name;
        ng_pattern value;
    } good[] = {
        {"N", NG_PATTERN_N},         {"K", NG_PATTERN_K},         {"X", NG_PATTERN_X},
        {"Npsk0", NG_PATTERN_NPSK0}, {"Kpsk0", NG_PATTERN_KPSK0}, {"Xpsk1", NG_PATTERN_XPSK1},
    };
    static const char *const bad[] = {"\"XX\"",      "\"x\"",  "\"n\"",  "\"\"",         "\"Xpsk0\"",
                                      "\"npsk0\"",   "\"X \"", "\" X\"", "\"X\\u0000\"", "\"X\\u0000psk1\"",
                                      "\"Noise_X\"", "1",      "null",   "[\"X\"]",      "true",
                                      NULL};
    ng_submit s;
    const ng_submit_msg *m;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        m = parse_one(&s, with("pattern", doc_fmt("\"%s\"", good[i].name)));
        assert_int_equal(m->has_pattern, 1);
        assert_int_equal(m->pattern, good[i].value);
        ng_submit_free(&s);
    }
    for (i = 0; bad[i] != NULL; i++)
        refuse(with("pattern", bad[i]), NG_ERR_PARSE, "pattern: " PATTERN_ERR);
}

static void
test_type_subject(void **state)
{
    static const char *const fields[] = {"type", "subject"};
    static const char *const bad[] = {"\"\"",        "\"a\\nb\"",   "\"a\\tb\"",   "\"\\u001f\"", "\"\\u007f\"",
                                      "\"\\u0000\"", "\"\\u0080\"", "\"\\u0085\"", "\"\\u009f\"", "null",
                                      "1",           "[]",          "{}",          NULL};
    ng_submit s;
    const ng_submit_msg *m;
    char expect[128];
    size_t f, i;

    (void)state;
    for (f = 0; f < 2; f++) {
        const char *name = fields[f];

        snprintf(expect, sizeof expect, "%s: %s", name, TEXT_ERR);
        /* 255 bytes, in ASCII and in two-byte characters (with one ASCII to make it odd). */
        m = parse_one(&s, with(name, doc_fmt("\"%s\"", repeat("t", 255))));
        assert_string_equal(f == 0 ? m->type : m->subject, repeat("t", 255));
        ng_submit_free(&s);
        m = parse_one(&s, with(name, doc_fmt("\"a%s\"", repeat("\\u00e9", 127))));
        assert_int_equal(strlen(f == 0 ? m->type : m->subject), 255);
        ng_submit_free(&s);
        refuse(with(name, doc_fmt("\"%s\"", repeat("t", 256))), NG_ERR_PARSE, expect);
        refuse(with(name, doc_fmt("\"%s\"", repeat("\\u00e9", 128))), NG_ERR_PARSE, expect);
        /* Four-byte characters: 63 of them and 3 bytes more is 255; one more byte is over. */
        m = parse_one(&s, with(name, doc_fmt("\"abc%s\"", repeat("\\ud83d\\ude00", 63))));
        assert_int_equal(strlen(f == 0 ? m->type : m->subject), 255);
        ng_submit_free(&s);
        refuse(with(name, doc_fmt("\"abcd%s\"", repeat("\\ud83d\\ude00", 63))), NG_ERR_PARSE, expect);
        for (i = 0; bad[i] != NULL; i++)
            refuse(with(name, bad[i]), NG_ERR_PARSE, expect);
        /* Just past the controls: U+00A0 and U+2028 are text. */
        m = parse_one(&s, with(name, "\"a\\u00a0b\\u2028c\""));
        assert_string_equal(f == 0 ? m->type : m->subject, "a\xc2\xa0"
                                                           "b\xe2\x80\xa8"
                                                           "c");
        ng_submit_free(&s);
    }
}

static void
test_body_forms(void **state)
{
    static const char *const bad_b64[] = {"\"YQ\"",     "\"YQ=\"",     "\"YR==\"",  "\"YWJ\"",         "\" YQ==\"",
                                          "\"YQ== \"",  "\"YQ==\\n\"", "\"Y Q==\"", "\"YQ==YQ==\"",    "\"YQ==x\"",
                                          "\"====\"",   "\"!!!!\"",    "\"YQ-_\"",  "\"YWJj\\u0000\"", "\"Y\"",
                                          "\"YWJjZA\"", "\"YWJjZA=\"", NULL};
    ng_submit s;
    const ng_submit_msg *m;
    size_t i;

    (void)state;
    refuse("{\"recipient\":\"bob\",\"body\":\"a\",\"body_base64\":\"YQ==\"}", NG_ERR_PARSE,
           "body_base64: not allowed together with body");
    refuse("{\"recipient\":\"bob\",\"body\":\"\",\"body_base64\":\"\"}", NG_ERR_PARSE,
           "body_base64: not allowed together with body");
    refuse("{\"recipient\":\"bob\"}", NG_ERR_PARSE, "body: required (or body_base64)");
    refuse("{\"recipient\":\"bob\",\"content_type\":\"a/b\"}", NG_ERR_PARSE, "body: required (or body_base64)");
    refuse("{\"recipient\":\"bob\",\"body\":null}", NG_ERR_PARSE, "body: expected a string");
    refuse("{\"recipient\":\"bob\",\"body\":{\"a\":1}}", NG_ERR_PARSE, "body: expected a string");
    refuse("{\"recipient\":\"bob\",\"body\":[1,2]}", NG_ERR_PARSE, "body: expected a string");
    refuse("{\"recipient\":\"bob\",\"body_base64\":null}", NG_ERR_PARSE, "body_base64: " B64_ERR);
    refuse("{\"recipient\":\"bob\",\"body_base64\":12}", NG_ERR_PARSE, "body_base64: " B64_ERR);
    for (i = 0; bad_b64[i] != NULL; i++)
        refuse(doc_fmt("{\"recipient\":\"bob\",\"body_base64\":%s}", bad_b64[i]), NG_ERR_PARSE,
               "body_base64: " B64_ERR);
    /* Non-ASCII, which libsodium 1.0.18 takes for '/' (found by tests/fuzz/fuzz_submit). */
    refuse("{\"recipient\":\"bob\",\"body_base64\":\"YQ\xc3\xa9\"}", NG_ERR_PARSE, "body_base64: " B64_ERR);
    refuse("{\"recipient\":\"bob\",\"body_base64\":\"\\u00e9\\u00e9\"}", NG_ERR_PARSE, "body_base64: " B64_ERR);

    /* Empty, both ways; the defaults follow the form. */
    m = parse_one(&s, "{\"recipient\":\"bob\",\"body\":\"\"}");
    assert_int_equal(m->body_len, 0);
    assert_string_equal(m->content_type, TEXT_TYPE);
    ng_submit_free(&s);
    m = parse_one(&s, "{\"recipient\":\"bob\",\"body_base64\":\"\"}");
    assert_int_equal(m->body_len, 0);
    assert_string_equal(m->content_type, BINARY_TYPE);
    ng_submit_free(&s);
    /* Padding of one and two, and none needed. */
    m = parse_one(&s, "{\"recipient\":\"bob\",\"body_base64\":\"YQ==\"}");
    assert_int_equal(m->body_len, 1);
    assert_memory_equal(m->body, "a", 1);
    ng_submit_free(&s);
    m = parse_one(&s, "{\"recipient\":\"bob\",\"body_base64\":\"YWI=\"}");
    assert_int_equal(m->body_len, 2);
    assert_memory_equal(m->body, "ab", 2);
    ng_submit_free(&s);
    m = parse_one(&s, "{\"recipient\":\"bob\",\"body_base64\":\"YWJj\",\"content_type\":\"image/png\"}");
    assert_int_equal(m->body_len, 3);
    assert_memory_equal(m->body, "abc", 3);
    assert_string_equal(m->content_type, "image/png");
    ng_submit_free(&s);
    /* JSON's "\/" is a slash, so it is the base64 character '/'. */
    m = parse_one(&s, "{\"recipient\":\"bob\",\"body_base64\":\"\\/\\/8=\"}");
    assert_int_equal(m->body_len, 2);
    assert_memory_equal(m->body, "\xff\xff", 2);
    ng_submit_free(&s);
}

static void
test_body_bytes(void **state)
{
    static const uint8_t text[] = {'a', 0, 'b', 0xc3, 0xa9, 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80, '"', '\\', '\n'};
    uint8_t all[256 * 3];
    char b64[sizeof all * 4 / 3 + 8];
    ng_submit s;
    const ng_submit_msg *m;
    size_t i;

    (void)state;
    /* Every byte value, three times, through base64: NULs included. */
    for (i = 0; i < sizeof all; i++)
        all[i] = (uint8_t)(i * 7 + i / 256);
    sodium_bin2base64(b64, sizeof b64, all, sizeof all, sodium_base64_VARIANT_ORIGINAL);
    m = parse_one(&s, doc_fmt("{\"recipient\":\"bob\",\"body_base64\":\"%s\"}", b64));
    assert_int_equal(m->body_len, sizeof all);
    assert_memory_equal(m->body, all, sizeof all);
    ng_submit_free(&s);
    for (i = 0; i < 4; i++) {
        sodium_bin2base64(b64, sizeof b64, all + 100, i, sodium_base64_VARIANT_ORIGINAL);
        m = parse_one(&s, doc_fmt("{\"recipient\":\"bob\",\"body_base64\":\"%s\"}", b64));
        assert_int_equal(m->body_len, i);
        if (i > 0)
            assert_memory_equal(m->body, all + 100, i);
        ng_submit_free(&s);
    }

    /* A JSON string: escapes and raw UTF-8 decode to the same bytes, and \u0000 is a byte like any other. */
    m = parse_one(&s, "{\"recipient\":\"bob\",\"body\":\"a\\u0000b\\u00e9\xc3\xa9\\ud83d\\ude00\\\"\\\\\\n\"}");
    assert_int_equal(m->body_len, sizeof text);
    assert_memory_equal(m->body, text, sizeof text);
    ng_submit_free(&s);
    /* Not UTF-8, or a lone surrogate: the JSON does not parse. */
    refuse("{\"recipient\":\"bob\",\"body\":\"\xff\"}", NG_ERR_PARSE, NULL);
    refuse("{\"recipient\":\"bob\",\"body\":\"\\ud83d\"}", NG_ERR_PARSE, NULL);
}

static void
test_unknown_and_duplicate(void **state)
{
    (void)state;
    refuse(with("recpient", "\"bob\""), NG_ERR_PARSE, "recpient: unknown field");
    refuse(with("Recipient", "\"bob\""), NG_ERR_PARSE, "Recipient: unknown field");
    refuse(with("id", "\"x\""), NG_ERR_PARSE, "id: unknown field");
    refuse(with("specversion", "\"1.0\""), NG_ERR_PARSE, "specversion: unknown field");
    refuse(with("messages", "[]"), NG_ERR_PARSE, "recipient: unknown field");
    /* A key that could be content is not repeated back. */
    refuse(with(MARK " " MARK, "1"), NG_ERR_PARSE, "an unknown field (its name is not shown)");
    refuse(with(repeat(MARK, 6), "1"), NG_ERR_PARSE, "an unknown field (its name is not shown)");
    refuse(with("", "1"), NG_ERR_PARSE, "an unknown field (its name is not shown)");
    refuse(with("ttl\\u0000", "1"), NG_ERR_PARSE, NULL);

    refuse("{\"recipient\":\"bob\",\"body\":\"a\",\"recipient\":\"eve\"}", NG_ERR_PARSE, NULL);
    refuse("{\"recipient\":\"bob\",\"body\":\"a\",\"ttl\":1,\"ttl\":1}", NG_ERR_PARSE, NULL);
    refuse("{\"recipient\":\"bob\",\"body\":\"a\",\"bo\\u0064y\":\"b\"}", NG_ERR_PARSE,
           "duplicate key at line 1, column 41");
    refuse("{\"messages\":[{\"recipient\":\"bob\",\"body\":\"a\",\"body\":\"b\"}]}", NG_ERR_PARSE, NULL);
    refuse("{\"messages\":[],\"messages\":[]}", NG_ERR_PARSE, NULL);
}

static void
test_not_an_object(void **state)
{
    static const char *const bad[] = {"",
                                      " ",
                                      "[]",
                                      "[{\"recipient\":\"bob\",\"body\":\"a\"}]",
                                      "1",
                                      "\"" MARK "\"",
                                      "null",
                                      "true",
                                      "{",
                                      "}",
                                      "{\"recipient\":\"bob\",\"body\":" MARK "}",
                                      "{\"recipient\":\"bob\",\"body\":\"a\"} " MARK,
                                      "{\"recipient\":\"bob\",\"body\":\"a\"}{}",
                                      "\xef\xbb\xbf{\"recipient\":\"bob\",\"body\":\"a\"}",
                                      "{'recipient':'bob','body':'a'}",
                                      "{\"recipient\":\"bob\",\"body\":\"a\",}",
                                      "{\"recipient\":\"bob\" \"body\":\"a\"}",
                                      NULL};
    size_t i;

    (void)state;
    for (i = 0; bad[i] != NULL; i++)
        refuse(bad[i], NG_ERR_PARSE, NULL);
    refuse("[]", NG_ERR_PARSE, "expected a JSON object");
    refuse("{\"recipient\":\"bob\",\"body\":" MARK "}", NG_ERR_PARSE, "invalid JSON at line 1, column 32");
    refuse("{\"recipient\":\"bob\",\n\"body\":\"" MARK, NG_ERR_PARSE, "truncated JSON at line 2, column 14");
    /* A NUL byte in the request is not JSON (and not the end of it). */
    {
        ng_submit s;
        static const char nul[] = "{\"recipient\":\"bob\",\"body\":\"a\"}\0{}";

        assert_int_equal(parse_n(&s, nul, sizeof nul - 1), NG_ERR_PARSE);
        assert_true(is_empty(&s));
        assert_int_equal(parse_n(&s, nul, sizeof nul - 4), NG_OK);
        ng_submit_free(&s);
    }
    /* Deep nesting is refused by jansson's own depth limit, not a crash. */
    {
        static char deep[64 + 6000 + 2];
        int n = snprintf(deep, sizeof deep, "{\"recipient\":\"bob\",\"body\":\"a\",\"x\":");

        memset(deep + n, '[', 3000);
        memset(deep + n + 3000, ']', 3000);
        memcpy(deep + n + 6000, "}", 2);
        refuse(deep, NG_ERR_PARSE, NULL);
    }
}

static void
test_truncated(void **state)
{
    static const char *const docs[] = {
        "{\"recipient\":\"bob\",\"content_type\":\"text/x\",\"body\":\"" MARK "\\u00e9\\ud83d\\ude00\",\"ttl\":3600,"
        "\"pattern\":\"Xpsk1\",\"type\":\"com.example\",\"subject\":\"s\\\"1\"}",
        "{\"recipient\":\"bob\",\"body_base64\":\"U2Vrcml0IQ==\",\"ttl\":2147483648}",
        "{\"messages\":[{\"recipient\":\"a\",\"body\":\"" MARK "\"},{\"recipient\":\"b\",\"body_base64\":\"AA==\","
        "\"pattern\":\"N\"}]}",
        "{\"messages\":[{\"recipient\":\"a\",\"body\":\"x\"}]}",
    };
    ng_submit s;
    size_t d, len, full;
    ng_err err;

    (void)state;
    for (d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        full = strlen(docs[d]);
        assert_int_equal(parse_n(&s, docs[d], full), NG_OK);
        ng_submit_free(&s);
        for (len = 0; len < full; len++) {
            err = parse_n(&s, docs[d], len);
            if (err != NG_ERR_PARSE)
                fail_msg("document %zu cut to %zu of %zu bytes: %d (%s)", d, len, full, err, errbuf);
            assert_true(is_empty(&s));
            assert_true(errbuf[0] != '\0');
            assert_null(strstr(errbuf, MARK));
            ng_submit_free(&s);
        }
    }
}

/* ---- batches ---- */

static void
test_batch(void **state)
{
    static char big[DOC_BYTES];
    ng_submit s;
    size_t i, n;
    int len;

    (void)state;
    refuse("{\"messages\":[]}", NG_ERR_PARSE, "messages: expected an array of 1-1000 messages");
    refuse("{\"messages\":{}}", NG_ERR_PARSE, "messages: expected an array of 1-1000 messages");
    refuse("{\"messages\":null}", NG_ERR_PARSE, "messages: expected an array of 1-1000 messages");
    refuse("{\"messages\":{\"recipient\":\"bob\",\"body\":\"a\"}}", NG_ERR_PARSE,
           "messages: expected an array of 1-1000 messages");
    refuse("{\"messages\":[{\"recipient\":\"bob\",\"body\":\"a\"}],\"ttl\":5}", NG_ERR_PARSE, "ttl: unknown field");

    assert_int_equal(parse(&s, "{\"messages\":[{\"recipient\":\"bob\",\"body\":\"a\",\"ttl\":9}]}"), NG_OK);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.batch, 1);
    assert_string_equal(s.msgs[0].recipient, "bob");
    assert_int_equal(s.msgs[0].ttl_s, 9);
    ng_submit_free(&s);

    /* 1000 different messages, then 1001. */
    for (n = 1000; n <= 1001; n++) {
        len = snprintf(big, sizeof big, "{\"messages\":[");
        for (i = 0; i < n; i++)
            len += snprintf(big + len, sizeof big - (size_t)len,
                            "%s{\"recipient\":\"p%zu\",\"body%s\":\"%s\",\"ttl\":%zu,\"subject\":\"s%zu\"}",
                            i ? "," : "", i, i % 2 ? "_base64" : "", i % 2 ? "AAE=" : "m", i + 1, i);
        len += snprintf(big + len, sizeof big - (size_t)len, "]}");
        assert_true((size_t)len < sizeof big);
        if (n == 1001) {
            refuse(big, NG_ERR_TOO_LARGE, "messages: at most 1000 messages in one request");
            continue;
        }
        assert_int_equal(parse(&s, big), NG_OK);
        assert_int_equal(s.n, 1000);
        assert_int_equal(s.batch, 1);
        for (i = 0; i < n; i++) {
            const ng_submit_msg *m = &s.msgs[i];
            char name[16], meta[80];

            snprintf(name, sizeof name, "p%zu", i);
            assert_string_equal(m->recipient, name);
            assert_int_equal(m->ttl_s, (int64_t)i + 1);
            snprintf(meta, sizeof meta, "{\"content_type\":\"%s\",\"subject\":\"s%zu\"}",
                     i % 2 ? BINARY_TYPE : TEXT_TYPE, i);
            check_meta(m, meta);
            if (i % 2) {
                assert_int_equal(m->body_len, 2);
                assert_memory_equal(m->body, "\x00\x01", 2);
            } else {
                assert_int_equal(m->body_len, 1);
                assert_memory_equal(m->body, "m", 1);
            }
        }
        ng_submit_free(&s);
    }

    /* One bad element spoils the batch, and the message names it. */
    refuse("{\"messages\":[{\"recipient\":\"a\",\"body\":\"x\"},{\"recipient\":\"b\",\"body\":\"x\"},"
           "{\"recipient\":\"c\",\"body\":\"x\"},{\"recipient\":\"d\",\"body\":\"x\",\"ttl\":0}]}",
           NG_ERR_PARSE, "messages[3].ttl: " TTL_ERR);
    refuse("{\"messages\":[{\"recipient\":\"a\",\"body\":\"x\"},{\"recipient\":\"B\",\"body\":\"x\"}]}", NG_ERR_PARSE,
           "messages[1].recipient: " NAME_ERR);
    refuse("{\"messages\":[{\"recipient\":\"a\",\"body\":\"x\"},{\"body\":\"x\"}]}", NG_ERR_PARSE,
           "messages[1].recipient: required");
    refuse("{\"messages\":[{\"recipient\":\"a\",\"body\":\"x\"},\"" MARK "\"]}", NG_ERR_PARSE,
           "messages[1]: expected an object");
    refuse("{\"messages\":[{\"recipient\":\"a\",\"body\":\"x\"},[]]}", NG_ERR_PARSE, "messages[1]: expected an object");
    refuse("{\"messages\":[{\"recipient\":\"a\",\"body\":\"x\",\"colour\":1}]}", NG_ERR_PARSE,
           "messages[0].colour: unknown field");
    refuse("{\"messages\":[{\"recipient\":\"a\",\"body\":\"x\",\"" MARK "!\":1}]}", NG_ERR_PARSE,
           "messages[0]: an unknown field (its name is not shown)");
    refuse("{\"messages\":[{\"recipient\":\"a\",\"body\":\"x\"},{\"recipient\":\"a\",\"body\":\"x\"},"
           "{\"recipient\":\"a\",\"body_base64\":\"U2Vrcml0\"},{\"recipient\":\"a\",\"body_base64\":\"U2Vrcml\"}]}",
           NG_ERR_PARSE, "messages[3].body_base64: " B64_ERR);
    refuse("{\"messages\":[{\"recipient\":\"a\",\"body\":\"x\",\"subject\":\"\\u0007\"}]}", NG_ERR_PARSE,
           "messages[0].subject: " TEXT_ERR);
    refuse("{\"messages\":[{\"recipient\":\"a\",\"body\":\"x\"},{\"messages\":[]}]}", NG_ERR_PARSE,
           "messages[1].messages: unknown field");
}

/* ---- CloudEvents binary mode ---- */

static void
test_binary_mode(void **state)
{
    struct headers h = base_headers();
    uint8_t *body = malloc(5);
    ng_submit s;
    const ng_submit_msg *m;

    (void)state;
    assert_non_null(body);
    memcpy(body, "a\0b\xff\n", 5);
    assert_int_equal(parse_bin(&s, &h, body, 5), NG_OK);
    assert_string_equal(errbuf, "");
    assert_int_equal(s.n, 1);
    assert_int_equal(s.batch, 0);
    m = &s.msgs[0];
    assert_string_equal(m->recipient, "bob");
    assert_string_equal(m->content_type, BINARY_TYPE);
    assert_string_equal(m->type, "");
    assert_string_equal(m->subject, "");
    assert_int_equal(m->ttl_s, 0);
    assert_int_equal(m->has_pattern, 0);
    /* Not copied: the caller's body. */
    assert_ptr_equal(m->body, body);
    assert_int_equal(m->body_len, 5);
    check_meta(m, "{\"content_type\":\"" BINARY_TYPE "\"}");
    ng_submit_free(&s);
    assert_true(is_empty(&s));
    assert_memory_equal(body, "a\0b\xff\n", 5);
    free(body);

    hset(&h, "Content-Type", "application/json; charset=\"utf-8\"");
    hset(&h, "ce-type", "com.example.\xc3\xa9v\xc3\xa9nement");
    hset(&h, "ce-subject", "r\xc3\xa9sum\xc3\xa9 \xf0\x9f\x98\x80");
    hset(&h, "ce-ttl", "86400");
    hset(&h, "ce-pattern", "Kpsk0");
    /* Ignored whatever they hold: the gateway names the message. */
    hset(&h, "ce-id", "\x01\xff not an id " MARK);
    hset(&h, "ce-source", "");
    assert_int_equal(parse_bin(&s, &h, (const uint8_t *)"{}", 2), NG_OK);
    m = &s.msgs[0];
    assert_string_equal(m->content_type, "application/json; charset=\"utf-8\"");
    assert_string_equal(m->type, "com.example.\xc3\xa9v\xc3\xa9nement");
    assert_string_equal(m->subject, "r\xc3\xa9sum\xc3\xa9 \xf0\x9f\x98\x80");
    assert_int_equal(m->ttl_s, 86400);
    assert_int_equal(m->has_pattern, 1);
    assert_int_equal(m->pattern, NG_PATTERN_KPSK0);
    check_meta(m, "{\"content_type\":\"application/json; charset=\\\"utf-8\\\"\",\"type\":\"com.example."
                  "\\u00E9v\\u00E9nement\",\"subject\":\"r\\u00E9sum\\u00E9 \\uD83D\\uDE00\"}");
    ng_submit_free(&s);

    /* An empty body, also as NULL. */
    h = base_headers();
    assert_int_equal(parse_bin(&s, &h, (const uint8_t *)"", 0), NG_OK);
    assert_int_equal(s.msgs[0].body_len, 0);
    ng_submit_free(&s);
    assert_int_equal(parse_bin(&s, &h, NULL, 0), NG_OK);
    assert_int_equal(s.msgs[0].body_len, 0);
    assert_non_null(s.msgs[0].body);
    ng_submit_free(&s);
}

static void
test_binary_headers(void **state)
{
    static const char *const bad_ttl[] = {"0",
                                          "-1",
                                          "+5",
                                          " 5",
                                          "5 ",
                                          "1.5",
                                          "1e3",
                                          "abc",
                                          "",
                                          "0x10",
                                          "2147483649",
                                          "4294967297",
                                          "99999999999999999999999999",
                                          "18446744073709551617",
                                          NULL};
    static const char *const bad_text[] = {"",
                                           "\x01",
                                           "a\tb",
                                           "a\nb",
                                           "\x7f",
                                           "\xc2\x85",
                                           "\xc2\x9f",
                                           "\xff",
                                           "\xc3",
                                           "a\xc3",
                                           "\xc0\xaf",
                                           "\xe0\x80\xaf",
                                           "\xed\xa0\x80",
                                           "\xed\xbf\xbf",
                                           "\xf4\x90\x80\x80",
                                           "\xf8\x88\x80\x80\x80",
                                           "\xe2\x82",
                                           "\x80",
                                           "\xf0\x9f\x98",
                                           NULL};
    static const char *const good_text[] = {
        "a", "\xc2\xa0", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "\xef\xbf\xbd", "x y", NULL};
    static const char *const text_names[] = {"ce-type", "ce-subject"};
    char value[300], expect[128];
    ng_submit s;
    const ng_submit_msg *m;
    size_t i, k;

    (void)state;
    refuse_bin("ce-specversion", NULL, "ce-specversion: required");
    refuse_bin("ce-specversion", "0.3", "ce-specversion: expected \"1.0\"");
    refuse_bin("ce-specversion", "1.0 ", "ce-specversion: expected \"1.0\"");
    refuse_bin("ce-specversion", "1", "ce-specversion: expected \"1.0\"");
    refuse_bin("ce-specversion", "", "ce-specversion: expected \"1.0\"");
    refuse_bin("ce-recipient", NULL, "ce-recipient: required");
    refuse_bin("ce-recipient", "", "ce-recipient: " NAME_ERR);
    refuse_bin("ce-recipient", "-bob", "ce-recipient: " NAME_ERR);
    refuse_bin("ce-recipient", repeat("r", 64), "ce-recipient: " NAME_ERR);
    m = accept_bin(&s, "ce-recipient", repeat("r", 63));
    assert_string_equal(m->recipient, repeat("r", 63));
    ng_submit_free(&s);

    /* Every byte after a valid first one: exactly a-z, 0-9 and '-' pass. */
    for (i = 1; i < 256; i++) {
        int ok = (i >= 'a' && i <= 'z') || (i >= '0' && i <= '9') || i == '-';
        struct headers h = base_headers();
        ng_err err;

        value[0] = 'a';
        value[1] = (char)i;
        value[2] = '\0';
        hset(&h, "ce-recipient", value);
        err = parse_bin(&s, &h, NULL, 0);
        if ((err == NG_OK) != ok)
            fail_msg("recipient \"a\" + byte 0x%02zx: %d", i, err);
        if (ok)
            assert_string_equal(s.msgs[0].recipient, value);
        ng_submit_free(&s);
    }

    refuse_bin("content-type", "", "content-type: " CT_ERR);
    refuse_bin("content-type", "text/plain\t", "content-type: " CT_ERR);
    refuse_bin("content-type", "text/pl\xc3\xa4in", "content-type: " CT_ERR);
    refuse_bin("content-type", "a\x7f", "content-type: " CT_ERR);
    refuse_bin("content-type", repeat("c", 256), "content-type: " CT_ERR);
    m = accept_bin(&s, "content-type", repeat("c", 255));
    assert_string_equal(m->content_type, repeat("c", 255));
    ng_submit_free(&s);

    for (i = 0; bad_ttl[i] != NULL; i++)
        refuse_bin("ce-ttl", bad_ttl[i], "ce-ttl: " TTL_ERR);
    m = accept_bin(&s, "ce-ttl", "1");
    assert_int_equal(m->ttl_s, 1);
    ng_submit_free(&s);
    m = accept_bin(&s, "ce-ttl", "2147483648");
    assert_int_equal(m->ttl_s, 2147483648LL);
    ng_submit_free(&s);
    m = accept_bin(&s, "ce-ttl", "0000000000060");
    assert_int_equal(m->ttl_s, 60);
    ng_submit_free(&s);

    refuse_bin("ce-pattern", "XX", "ce-pattern: " PATTERN_ERR);
    refuse_bin("ce-pattern", "x", "ce-pattern: " PATTERN_ERR);
    refuse_bin("ce-pattern", "", "ce-pattern: " PATTERN_ERR);
    m = accept_bin(&s, "ce-pattern", "Npsk0");
    assert_int_equal(m->pattern, NG_PATTERN_NPSK0);
    ng_submit_free(&s);

    for (k = 0; k < 2; k++) {
        snprintf(expect, sizeof expect, "%s: %s", text_names[k], TEXT_ERR);
        for (i = 0; bad_text[i] != NULL; i++) {
            struct headers h = base_headers();

            hset(&h, text_names[k], bad_text[i]);
            if (parse_bin(&s, &h, NULL, 0) != NG_ERR_PARSE)
                fail_msg("%s: bad value %zu accepted", text_names[k], i);
            assert_true(is_empty(&s));
            assert_string_equal(errbuf, expect);
            /* After a valid prefix too, so the error is not only at the start. */
            if (bad_text[i][0] == '\0')
                continue;
            snprintf(value, sizeof value, "ok %s", bad_text[i]);
            hset(&h, text_names[k], value);
            if (parse_bin(&s, &h, NULL, 0) != NG_ERR_PARSE)
                fail_msg("%s: bad value %zu after a prefix accepted", text_names[k], i);
            ng_submit_free(&s);
        }
        for (i = 0; good_text[i] != NULL; i++) {
            m = accept_bin(&s, text_names[k], good_text[i]);
            assert_string_equal(k == 0 ? m->type : m->subject, good_text[i]);
            ng_submit_free(&s);
        }
        m = accept_bin(&s, text_names[k], repeat("\xe2\x82\xac", 85));
        assert_int_equal(strlen(k == 0 ? m->type : m->subject), 255);
        ng_submit_free(&s);
        refuse_bin(text_names[k], doc_fmt("a%s", repeat("\xe2\x82\xac", 85)), expect);
    }
}

static void
test_is_binary(void **state)
{
    struct headers h;

    (void)state;
    memset(&h, 0, sizeof h);
    assert_int_equal(ng_submit_is_binary(header_of, &h), 0);
    hset(&h, "ce-recipient", "bob");
    hset(&h, "content-type", "application/json");
    assert_int_equal(ng_submit_is_binary(header_of, &h), 0);
    hset(&h, "CE-SPECVERSION", "0.3");
    assert_int_equal(ng_submit_is_binary(header_of, &h), 1);
    hset(&h, "ce-specversion", "");
    assert_int_equal(ng_submit_is_binary(header_of, &h), 1);
}

/* ---- meta ---- */

static void
test_meta(void **state)
{
    static const struct {
        const char *json_ct, *ct, *json_type, *type, *json_subject, *subject, *meta;
    } cases[] = {
        {"a\\\"b\\\\c/d", "a\"b\\c/d", NULL, NULL, NULL, NULL, "{\"content_type\":\"a\\\"b\\\\c/d\"}"},
        {"t/x", "t/x", "\\u00e9\\u20ac\\ud83d\\ude00", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", NULL, NULL,
         "{\"content_type\":\"t/x\",\"type\":\"\\u00E9\\u20AC\\uD83D\\uDE00\"}"},
        {"t/x", "t/x", "q\\\"", "q\"", "\\\\ \\/ \\u2028", "\\ / \xe2\x80\xa8",
         "{\"content_type\":\"t/x\",\"type\":\"q\\\"\",\"subject\":\"\\\\ / \\u2028\"}"},
        {"t/x", "t/x", NULL, NULL, "\\uffff\\ud800\\udc00\\udbff\\udfff",
         "\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
         "{\"content_type\":\"t/x\",\"subject\":\"\\uFFFF\\uD800\\uDC00\\uDBFF\\uDFFF\"}"},
    };
    static char doc[1024];
    ng_submit s;
    const ng_submit_msg *m;
    char *ref;
    size_t i;
    int n;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        n = snprintf(doc, sizeof doc, "{\"recipient\":\"bob\",\"body\":\"\",\"content_type\":\"%s\"", cases[i].json_ct);
        if (cases[i].json_type != NULL)
            n += snprintf(doc + n, sizeof doc - (size_t)n, ",\"type\":\"%s\"", cases[i].json_type);
        if (cases[i].json_subject != NULL)
            n += snprintf(doc + n, sizeof doc - (size_t)n, ",\"subject\":\"%s\"", cases[i].json_subject);
        snprintf(doc + n, sizeof doc - (size_t)n, "}");
        m = parse_one(&s, doc);
        check_meta(m, cases[i].meta);
        /* The same text jansson writes, and it reads back as the fields. */
        ref = jansson_meta(cases[i].ct, cases[i].type, cases[i].subject);
        assert_string_equal(m->meta, ref);
        free(ref);
        ng_submit_free(&s);
    }
}

/* Random texts of every kind of character, against jansson's JSON_ENSURE_ASCII output. */
static void
test_meta_random(void **state)
{
    static const char *const pieces[] = {"a",
                                         "\"",
                                         "\\",
                                         "/",
                                         " ",
                                         "~",
                                         "\xc2\xa0",
                                         "\xc3\xa9",
                                         "\xdf\xbf",
                                         "\xe0\xa0\x80",
                                         "\xe2\x80\xa8",
                                         "\xef\xbf\xbd",
                                         "\xf0\x90\x80\x80",
                                         "\xf0\x9f\x98\x80",
                                         "\xf4\x8f\xbf\xbf"};
    char type[NG_SUBMIT_MAX_FIELD + 1], subject[NG_SUBMIT_MAX_FIELD + 1];
    struct headers h;
    ng_submit s;
    char *ref;
    int round;

    (void)state;
    for (round = 0; round < 300; round++) {
        size_t tl = 0, sl = 0, p;

        while (1) {
            p = randombytes_uniform(sizeof pieces / sizeof pieces[0]);
            if (tl + strlen(pieces[p]) > NG_SUBMIT_MAX_FIELD || randombytes_uniform(40) == 0)
                break;
            memcpy(type + tl, pieces[p], strlen(pieces[p]));
            tl += strlen(pieces[p]);
        }
        while (1) {
            p = randombytes_uniform(sizeof pieces / sizeof pieces[0]);
            if (sl + strlen(pieces[p]) > NG_SUBMIT_MAX_FIELD || randombytes_uniform(40) == 0)
                break;
            memcpy(subject + sl, pieces[p], strlen(pieces[p]));
            sl += strlen(pieces[p]);
        }
        type[tl] = '\0';
        subject[sl] = '\0';
        h = base_headers();
        hset(&h, "content-type", "x\"y\\z");
        if (tl > 0)
            hset(&h, "ce-type", type);
        if (sl > 0)
            hset(&h, "ce-subject", subject);
        assert_int_equal(parse_bin(&s, &h, NULL, 0), NG_OK);
        ref = jansson_meta("x\"y\\z", tl > 0 ? type : NULL, sl > 0 ? subject : NULL);
        assert_string_equal(s.msgs[0].meta, ref);
        assert_int_equal(s.msgs[0].meta_len, strlen(ref));
        free(ref);
        ng_submit_free(&s);
    }
}

/* ---- errors and freeing ---- */

static void
test_error_buffer(void **state)
{
    static const char text[] = "{\"recipient\":\"bob\",\"body\":\"a\",\"ttl\":0}";
    char small[10];
    ng_submit s;

    (void)state;
    memset(small, 'Z', sizeof small);
    assert_int_equal(ng_submit_parse_json(&s, (const uint8_t *)text, strlen(text), small, sizeof small), NG_ERR_PARSE);
    assert_string_equal(small, "ttl: expe");
    assert_true(is_empty(&s));
    memset(small, 'Z', sizeof small);
    assert_int_equal(ng_submit_parse_json(&s, (const uint8_t *)text, strlen(text), small, 3), NG_ERR_PARSE);
    assert_string_equal(small, "tt");
    assert_int_equal(ng_submit_parse_json(&s, (const uint8_t *)text, strlen(text), NULL, 0), NG_ERR_PARSE);
    assert_true(is_empty(&s));
    assert_int_equal(ng_submit_parse_json(&s, (const uint8_t *)"{}", 2, NULL, 0), NG_ERR_PARSE);
    /* A good parse leaves the message empty. */
    memset(small, 'Z', sizeof small);
    assert_int_equal(ng_submit_parse_json(&s, (const uint8_t *)text, strlen(text) - 3, small, sizeof small),
                     NG_ERR_PARSE);
    assert_int_equal(
        ng_submit_parse_json(&s, (const uint8_t *)"{\"recipient\":\"b\",\"body\":\"\"}", 27, small, sizeof small),
        NG_OK);
    assert_string_equal(small, "");
    ng_submit_free(&s);
    /* NULL with a length is the caller's mistake; NULL with none is an empty request. */
    assert_int_equal(ng_submit_parse_json(&s, NULL, 5, errbuf, sizeof errbuf), NG_ERR_INVALID_ARG);
    assert_true(is_empty(&s));
    assert_int_equal(ng_submit_parse_json(&s, NULL, 0, errbuf, sizeof errbuf), NG_ERR_PARSE);
    assert_true(is_empty(&s));
}

/* No error message repeats what a field held. */
static void
test_no_echo(void **state)
{
    static const char *const docs[] = {
        "{\"recipient\":\"" MARK "\",\"body\":\"a\"}",
        "{\"recipient\":\"bob\",\"body_base64\":\"" MARK "\"}",
        "{\"recipient\":\"bob\",\"body\":\"a\",\"content_type\":\"" MARK "\\n\"}",
        "{\"recipient\":\"bob\",\"body\":\"a\",\"type\":\"" MARK "\\u0001\"}",
        "{\"recipient\":\"bob\",\"body\":\"a\",\"subject\":\"" MARK "\\u007f\"}",
        "{\"recipient\":\"bob\",\"body\":\"a\",\"pattern\":\"" MARK "\"}",
        "{\"recipient\":\"bob\",\"body\":\"a\",\"ttl\":\"" MARK "\"}",
        "{\"recipient\":\"bob\",\"body\":\"" MARK "\",\"ttl\":" MARK "}",
        "{\"recipient\":\"bob\",\"body\":\"a\",\"" MARK "\":\"" MARK "\",\"" MARK "\":1}",
        "{\"recipient\":\"bob\",\"body\":\"" MARK "\xff\"}",
        "[\"" MARK "\"]",
        "\"" MARK "\"",
        MARK,
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof docs / sizeof docs[0]; i++)
        refuse(docs[i], NG_ERR_PARSE, NULL);
    refuse_bin("ce-recipient", MARK, "ce-recipient: " NAME_ERR);
    refuse_bin("ce-ttl", MARK, "ce-ttl: " TTL_ERR);
    refuse_bin("ce-pattern", MARK, "ce-pattern: " PATTERN_ERR);
    refuse_bin("ce-type", MARK "\n", "ce-type: " TEXT_ERR);
    refuse_bin("ce-specversion", MARK, "ce-specversion: expected \"1.0\"");
}

static void
test_free_any_outcome(void **state)
{
    ng_submit s;

    (void)state;
    ng_submit_free(NULL);
    memset(&s, 0, sizeof s);
    ng_submit_free(&s);
    assert_true(is_empty(&s));
    /* Failed: empty, and freeing it (twice) is harmless. */
    assert_int_equal(parse(&s, "{\"recipient\":\"bob\"}"), NG_ERR_PARSE);
    assert_true(is_empty(&s));
    ng_submit_free(&s);
    ng_submit_free(&s);
    assert_true(is_empty(&s));
    /* Failed in the second pass, after the arena was filled in part. */
    assert_int_equal(parse(&s, "{\"messages\":[{\"recipient\":\"a\",\"body\":\"" MARK "\"},"
                               "{\"recipient\":\"a\",\"body_base64\":\"!!!!\"}]}"),
                     NG_ERR_PARSE);
    assert_string_equal(errbuf, "messages[1].body_base64: " B64_ERR);
    assert_true(is_empty(&s));
    ng_submit_free(&s);
    /* Succeeded: emptied by the free, and a second free is a no-op. */
    (void)parse_one(&s, "{\"recipient\":\"bob\",\"body\":\"a\"}");
    ng_submit_free(&s);
    assert_true(is_empty(&s));
    ng_submit_free(&s);
    assert_true(is_empty(&s));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_and_full),
        cmocka_unit_test(test_recipient),
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_pattern),
        cmocka_unit_test(test_type_subject),
        cmocka_unit_test(test_body_forms),
        cmocka_unit_test(test_body_bytes),
        cmocka_unit_test(test_unknown_and_duplicate),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_binary_mode),
        cmocka_unit_test(test_binary_headers),
        cmocka_unit_test(test_is_binary),
        cmocka_unit_test(test_meta),
        cmocka_unit_test(test_meta_random),
        cmocka_unit_test(test_error_buffer),
        cmocka_unit_test(test_no_echo),
        cmocka_unit_test(test_free_any_outcome),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests_name("submitted messages", tests, NULL, NULL);
}

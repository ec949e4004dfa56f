/*
 * The JSON loader (ng_jsonload) against jansson: every document here goes
 * to both ng_jsonload and json_loadb with JSON_REJECT_DUPLICATES |
 * JSON_ALLOW_NUL, from a heap block of exactly its length, and the two must
 * agree on accept or refuse and, on accept, give equal values (the same
 * compact text, key order included, and the same types). On top of that
 * each case asserts what it must give: the values of good documents (all
 * whitespace kinds, every escape, U+0000 in a string, multi-byte UTF-8,
 * int64 limits, reals, long strings), the reason for each refusal, the
 * positions jansson reports, the depth limit at exactly jansson's, and
 * failed allocations at every point, which give NG_ERR_NOMEM and leak
 * nothing (ASan checks that).
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

#include "ng_jsonload.h"
#include "ng_jsonmem.h"

#define FLAGS (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

/* A string literal as bytes and length, embedded NULs included. */
#define T(s) (const uint8_t *)(s), sizeof(s) - 1

static const char *const why_names[] = {"INVALID",    "TRUNCATED",    "UTF8",     "DUPLICATE_KEY",
                                        "NUL_IN_KEY", "NUMBER_RANGE", "TOO_DEEP", "NOMEM"};

static const char *
why_name(ng_jsonload_why why)
{
    return (unsigned)why < sizeof why_names / sizeof why_names[0] ? why_names[why] : "?";
}

/* The bytes of in, printable, for a failure message. */
static const char *
shown(const uint8_t *in, size_t len)
{
    static char buf[200];
    size_t i, n = 0;

    for (i = 0; i < len && n + 8 < sizeof buf; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, in[i] >= 0x20 && in[i] < 0x7f ? "%c" : "\\x%02x", in[i]);
    if (i < len)
        snprintf(buf + n, sizeof buf - n, "...");
    return buf;
}

static char *
dump(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

    assert_non_null(s);
    return s;
}

/* a and b of the same type all the way down (json_equal already requires it; this says where it fails). */
static int
same_types(const json_t *a, const json_t *b)
{
    const char *key;
    json_t *va;
    size_t i;

    if (json_typeof(a) != json_typeof(b))
        return 0;
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (i = 0; i < json_array_size(a); i++)
            if (!same_types(json_array_get(a, i), json_array_get(b, i)))
                return 0;
    } else if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b))
            return 0;
        json_object_foreach((json_t *)a, key, va)
        {
            const json_t *vb = json_object_get(b, key);

            if (vb == NULL || !same_types(va, vb))
                return 0;
        }
    }
    return 1;
}

/*
 * ng_jsonload and json_loadb on an exact-size heap copy of in[0..len).
 * Fails the test unless they agree on accept or refuse and, on accept, on
 * the value; on refusal *out must be NULL. Returns ng_jsonload's answer,
 * with its value in *out (the caller's) and its error in *e; jansson's error
 * in *je if je is not NULL.
 */
static ng_err
load_both(const uint8_t *in, size_t len, json_t **out, ng_jsonload_error *e, json_error_t *je)
{
    uint8_t *copy = malloc(len > 0 ? len : 1);
    json_error_t jerr;
    json_t *ref;
    ng_err rc;

    assert_non_null(copy);
    if (len > 0)
        memcpy(copy, in, len);
    *out = (json_t *)copy; /* anything but NULL: the loader must set it */
    memset(e, 0xa5, sizeof *e);
    rc = ng_jsonload(copy, len, out, e);
    ref = json_loadb((const char *)copy, len, FLAGS, &jerr);
    free(copy);
    if (rc == NG_OK && ref == NULL)
        fail_msg("%s: ng_jsonload accepts, jansson refuses (%s at %d:%d)", shown(in, len), jerr.text, jerr.line,
                 jerr.column);
    if (rc != NG_OK && ref != NULL)
        fail_msg("%s: ng_jsonload refuses (%d, %s at %d:%d), jansson accepts", shown(in, len), rc, why_name(e->why),
                 e->line, e->column);
    if (rc == NG_OK) {
        char *a = dump(*out), *b = dump(ref);

        if (strcmp(a, b) != 0 || !json_equal(*out, ref) || !same_types(*out, ref))
            fail_msg("%s: ng_jsonload gives %s, jansson %s", shown(in, len), a, b);
        free(a);
        free(b);
    } else {
        assert_null(*out);
        assert_int_equal(rc, NG_ERR_PARSE);
        assert_true(e->line >= 1 && e->column >= 0);
    }
    json_decref(ref);
    if (je != NULL)
        *je = jerr;
    return rc;
}

/* in must load, to a value whose compact text is want; the caller frees what is returned. */
static json_t *
good(const uint8_t *in, size_t len, const char *want)
{
    ng_jsonload_error e;
    json_t *v;
    char *got;

    if (load_both(in, len, &v, &e, NULL) != NG_OK)
        fail_msg("%s: refused (%s at %d:%d)", shown(in, len), why_name(e.why), e.line, e.column);
    assert_true(json_is_object(v) || json_is_array(v));
    got = dump(v);
    if (strcmp(got, want) != 0)
        fail_msg("%s: gives %s, not %s", shown(in, len), got, want);
    free(got);
    return v;
}

/* ---- accepted documents ---- */

static const struct {
    const uint8_t *in;
    size_t len;
    const char *want;
} accepted[] = {
    {T("{}"), "{}"},
    {T("[]"), "[]"},
    {T("{\"a\":{\"b\":{\"c\":[[],{}]}},\"d\":[{\"e\":[1,[2]]}]}"),
     "{\"a\":{\"b\":{\"c\":[[],{}]}},\"d\":[{\"e\":[1,[2]]}]}"},
    /* Key order is the document's. */
    {T("{\"z\":1,\"a\":2,\"m\":3}"), "{\"z\":1,\"a\":2,\"m\":3}"},
    {T("[true,false,null,\"\",{\"\":0}]"), "[true,false,null,\"\",{\"\":0}]"},
    /* Space, tab, CR and LF around and between every token. */
    {T(" \t\r\n{ \t\r\n\"a\" \t\r\n: \t\r\n[ \t\r\n1 \t\r\n, \t\r\ntrue \t\r\n] \t\r\n, \t\r\n\"b\"\n:\r{}\t} \t\r\n"),
     "{\"a\":[1,true],\"b\":{}}"},
    {T("\n\n[\n]\n\n"), "[]"},
    /* Every short escape, \u escapes (one a surrogate pair), U+0000 in a value. */
    {T("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]"), "[\"\\\"\\\\/\\b\\f\\n\\r\\t\"]"},
    {T("[\"\\u0041\\u00e9\\u20AC\\ud83d\\ude00\"]"), "[\"A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]"},
    {T("{\"k\":\"a\\u0000b\"}"), "{\"k\":\"a\\u0000b\"}"},
    /* Raw UTF-8 of 2, 3 and 4 bytes, in keys and values; DEL as it is. */
    {T("{\"\xc3\xa9\":\"\xe2\x82\xac\xf0\x9f\x98\x80\x7f\"}"), "{\"\xc3\xa9\":\"\xe2\x82\xac\xf0\x9f\x98\x80\x7f\"}"},
    {T("[\"\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf\"]"), "[\"\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf\"]"},
    /* An escaped key equal to no other. */
    {T("{\"body\":1,\"bo\\u0064x\":2}"), "{\"body\":1,\"bodx\":2}"},
    /* Numbers: int64 limits, -0 an integer, reals whatever their form, underflow to 0. */
    {T("[-9223372036854775808,9223372036854775807,0,-0,10,-7]"),
     "[-9223372036854775808,9223372036854775807,0,0,10,-7]"},
    {T("[1.5,1e5,1E+2,1e-2,1e-400,-0.0,0e0,12.25E-1]"), "[1.5,100000.0,100.0,0.01,0.0,-0.0,0.0,1.2250000000000001]"},
    {T("[1.7976931348623157e308,-1.7976931348623157e308,4.9e-324]"),
     "[1.7976931348623157e308,-1.7976931348623157e308,4.9406564584124654e-324]"},
    /* Real text over 64 characters (read from a heap copy). */
    {T("[1.00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001]"), "[1.0]"},
    {T("[125000000000000000000000000000000000000000000000000000000000000000000e-68]"), "[1.25]"},
};

static void
test_accepted(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof accepted / sizeof accepted[0]; i++)
        json_decref(good(accepted[i].in, accepted[i].len, accepted[i].want));
}

/* The decoded bytes of strings, and their lengths, U+0000 included. */
static void
test_string_bytes(void **state)
{
    static const struct {
        const uint8_t *in;
        size_t len;
        const char *bytes;
        size_t n;
    } cases[] = {
        {T("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]"), "\"\\/\b\f\n\r\t", 8},
        {T("[\"a\\u0000b\"]"), "a\0b", 3},
        {T("[\"\\u0000\"]"), "\0", 1},
        {T("[\"\\u0000\\u0000x\\u0000\"]"), "\0\0x\0", 4},
        {T("[\"\\ud83d\\ude00\"]"), "\xf0\x9f\x98\x80", 4},
        {T("[\"\\uDBFF\\uDFFF\"]"), "\xf4\x8f\xbf\xbf", 4},
        {T("[\"\\u007f\\u0080\\u07ff\\u0800\\uffff\"]"), "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf", 11},
        {T("[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]"), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9},
        {T("[\"plain\"]"), "plain", 5},
        {T("[\"\"]"), "", 0},
    };
    ng_jsonload_error e;
    const json_t *s;
    json_t *v;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(load_both(cases[i].in, cases[i].len, &v, &e, NULL), NG_OK);
        s = json_array_get(v, 0);
        assert_true(json_is_string(s));
        if (json_string_length(s) != cases[i].n || memcmp(json_string_value(s), cases[i].bytes, cases[i].n) != 0)
            fail_msg("case %zu (%s): %zu bytes, not %zu", i, shown(cases[i].in, cases[i].len), json_string_length(s),
                     cases[i].n);
        assert_int_equal(json_string_value(s)[cases[i].n], '\0');
        json_decref(v);
    }
    /* U+0000 in a value of an object, under its key. */
    assert_int_equal(load_both(T("{\"body\":\"x\\u0000y\"}"), &v, &e, NULL), NG_OK);
    s = json_object_get(v, "body");
    assert_int_equal(json_string_length(s), 3);
    assert_memory_equal(json_string_value(s), "x\0y", 3);
    json_decref(v);
}

/* Types and values of numbers. */
static void
test_numbers(void **state)
{
    static const char *const reals[] = {"1.5", "1e5", "1E+2", "1e-400", "-0.0", "2.5e-3"};
    static const double real_values[] = {1.5, 1e5, 1e2, 0.0, -0.0, 2.5e-3};
    ng_jsonload_error e;
    char doc[256];
    json_t *v, *x;
    size_t i, n;

    (void)state;
    v = good(T("[-9223372036854775808,9223372036854775807,-0]"), "[-9223372036854775808,9223372036854775807,0]");
    assert_true(json_is_integer(json_array_get(v, 0)));
    assert_true(json_integer_value(json_array_get(v, 0)) == INT64_MIN);
    assert_true(json_integer_value(json_array_get(v, 1)) == INT64_MAX);
    assert_true(json_is_integer(json_array_get(v, 2)));
    assert_int_equal(json_integer_value(json_array_get(v, 2)), 0);
    json_decref(v);
    for (i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        snprintf(doc, sizeof doc, "{\"n\":%s}", reals[i]);
        assert_int_equal(load_both((const uint8_t *)doc, strlen(doc), &v, &e, NULL), NG_OK);
        x = json_object_get(v, "n");
        if (!json_is_real(x) || json_real_value(x) != real_values[i])
            fail_msg("%s: not the real %g", doc, real_values[i]);
        json_decref(v);
    }
    /* Reals of 60 to 70 characters, either side of the loader's 64-byte stack copy. */
    for (n = 60; n <= 70; n++) {
        size_t k;

        memcpy(doc, "[2.", 3);
        for (k = 3; k < n; k++)
            doc[k] = '0';
        doc[n] = '5';
        doc[n + 1] = ']';
        /* The number is doc[1..n], n characters: "2.000...05". */
        assert_int_equal(load_both((const uint8_t *)doc, n + 2, &v, &e, NULL), NG_OK);
        x = json_array_get(v, 0);
        assert_true(json_is_real(x));
        assert_true(json_real_value(x) == 2.0);
        json_decref(v);
    }
    /* A 19-digit integer and a 20-character negative one still fit. */
    v = good(T("[1000000000000000000,-1000000000000000000]"), "[1000000000000000000,-1000000000000000000]");
    json_decref(v);
}

/* Strings of 1 KiB and 64 KiB, plain and with escapes. */
static void
test_long_strings(void **state)
{
    static const size_t sizes[] = {1024, 65536};
    ng_jsonload_error e;
    size_t i, k, n;
    uint8_t *doc;
    char *want;
    json_t *v;
    const json_t *s;

    (void)state;
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        n = sizes[i];
        doc = malloc(6 * n + 8); /* room for every character escaped as \u0000 */
        want = malloc(n);
        assert_non_null(doc);
        assert_non_null(want);
        /* Plain: ["aaa...bbb"], n characters. */
        doc[0] = '[', doc[1] = '"';
        for (k = 0; k < n; k++)
            want[k] = (char)('a' + k % 26), doc[2 + k] = (uint8_t)want[k];
        memcpy(doc + 2 + n, "\"]", 2);
        assert_int_equal(load_both(doc, n + 4, &v, &e, NULL), NG_OK);
        s = json_array_get(v, 0);
        assert_int_equal(json_string_length(s), n);
        assert_memory_equal(json_string_value(s), want, n);
        json_decref(v);
        /* Escaped: every other character a \n, \u0000 or \", n characters decoded. */
        doc[0] = '[', doc[1] = '"';
        for (k = 0, n = 0; n < sizes[i]; n++) {
            if (n % 2 == 0) {
                want[n] = (char)('a' + n % 26);
                doc[2 + k++] = (uint8_t)want[n];
            } else if (n % 3 == 0) {
                want[n] = '\0';
                memcpy(doc + 2 + k, "\\u0000", 6);
                k += 6;
            } else {
                want[n] = n % 5 == 0 ? '\n' : '"';
                doc[2 + k++] = '\\';
                doc[2 + k++] = n % 5 == 0 ? 'n' : '"';
            }
        }
        memcpy(doc + 2 + k, "\"]", 2);
        assert_int_equal(load_both(doc, k + 4, &v, &e, NULL), NG_OK);
        s = json_array_get(v, 0);
        assert_int_equal(json_string_length(s), n);
        assert_memory_equal(json_string_value(s), want, n);
        json_decref(v);
        free(doc);
        free(want);
    }
}

/* ---- refusals ---- */

static const struct {
    const uint8_t *in;
    size_t len;
    ng_jsonload_why why;
} refused[] = {
    /* The input ends inside the document. */
    {T(""), NG_JSONLOAD_TRUNCATED},
    {T(" \t\r\n"), NG_JSONLOAD_TRUNCATED},
    {T("{"), NG_JSONLOAD_TRUNCATED},
    {T("["), NG_JSONLOAD_TRUNCATED},
    {T("{\"a\""), NG_JSONLOAD_TRUNCATED},
    {T("{\"a\":"), NG_JSONLOAD_TRUNCATED},
    {T("{\"a\":1"), NG_JSONLOAD_TRUNCATED},
    {T("{\"a\":1,"), NG_JSONLOAD_TRUNCATED},
    {T("[1"), NG_JSONLOAD_TRUNCATED},
    {T("[1,"), NG_JSONLOAD_TRUNCATED},
    {T("[-"), NG_JSONLOAD_TRUNCATED},
    {T("[1."), NG_JSONLOAD_TRUNCATED},
    {T("[1e"), NG_JSONLOAD_TRUNCATED},
    {T("[[[]]"), NG_JSONLOAD_TRUNCATED},
    {T("[\"abc"), NG_JSONLOAD_TRUNCATED},
    {T("{\"ab"), NG_JSONLOAD_TRUNCATED},
    {T("[\"ab\\"), NG_JSONLOAD_TRUNCATED},
    {T("[\"\\u12"), NG_JSONLOAD_TRUNCATED},
    {T("[\"\\u"), NG_JSONLOAD_TRUNCATED},
    /* Not JSON, or not an object or array at the top. */
    {T("1"), NG_JSONLOAD_INVALID},
    {T("\"a\""), NG_JSONLOAD_INVALID},
    {T("true"), NG_JSONLOAD_INVALID},
    {T("null"), NG_JSONLOAD_INVALID},
    {T("-1"), NG_JSONLOAD_INVALID},
    {T("{} x"), NG_JSONLOAD_INVALID},
    {T("[]]"), NG_JSONLOAD_INVALID},
    {T("{}{}"), NG_JSONLOAD_INVALID},
    {T("[] 1"), NG_JSONLOAD_INVALID},
    {T("{\"a\":1,}"), NG_JSONLOAD_INVALID},
    {T("[1,]"), NG_JSONLOAD_INVALID},
    {T("[,1]"), NG_JSONLOAD_INVALID},
    {T("[1,,2]"), NG_JSONLOAD_INVALID},
    {T("{,}"), NG_JSONLOAD_INVALID},
    {T("{\"a\" 1}"), NG_JSONLOAD_INVALID},
    {T("{\"a\"=1}"), NG_JSONLOAD_INVALID},
    {T("{\"a\":}"), NG_JSONLOAD_INVALID},
    {T("{\"a\":1 \"b\":2}"), NG_JSONLOAD_INVALID},
    {T("{a:1}"), NG_JSONLOAD_INVALID},
    {T("{1:1}"), NG_JSONLOAD_INVALID},
    {T("{'a':1}"), NG_JSONLOAD_INVALID},
    {T("['a']"), NG_JSONLOAD_INVALID},
    {T("[01]"), NG_JSONLOAD_INVALID},
    {T("[-01]"), NG_JSONLOAD_INVALID},
    {T("[00]"), NG_JSONLOAD_INVALID},
    {T("[1.]"), NG_JSONLOAD_INVALID},
    {T("[1.e5]"), NG_JSONLOAD_INVALID},
    {T("[1e]"), NG_JSONLOAD_INVALID},
    {T("[1e+]"), NG_JSONLOAD_INVALID},
    {T("[-]"), NG_JSONLOAD_INVALID},
    {T("[-a]"), NG_JSONLOAD_INVALID},
    {T("[.5]"), NG_JSONLOAD_INVALID},
    {T("[+1]"), NG_JSONLOAD_INVALID},
    {T("[0x10]"), NG_JSONLOAD_INVALID},
    {T("[1true]"), NG_JSONLOAD_INVALID},
    {T("[tru]"), NG_JSONLOAD_INVALID},
    {T("[nul]"), NG_JSONLOAD_INVALID},
    {T("[nulll]"), NG_JSONLOAD_INVALID},
    {T("[True]"), NG_JSONLOAD_INVALID},
    {T("[NaN]"), NG_JSONLOAD_INVALID},
    {T("[Infinity]"), NG_JSONLOAD_INVALID},
    {T("[\"a\x01\"]"), NG_JSONLOAD_INVALID},
    {T("[\"a\nb\"]"), NG_JSONLOAD_INVALID},
    {T("[\"a\tb\"]"), NG_JSONLOAD_INVALID},
    {T("[\"a\x1f\"]"), NG_JSONLOAD_INVALID},
    {T("[\"a\0\"]"), NG_JSONLOAD_INVALID},
    {T("[\0]"), NG_JSONLOAD_INVALID},
    {T("[]\0"), NG_JSONLOAD_INVALID},
    {T("\xef\xbb\xbf[]"), NG_JSONLOAD_INVALID},
    {T("[\f1]"), NG_JSONLOAD_INVALID},
    {T("[\v1]"), NG_JSONLOAD_INVALID},
    {T("[\xc2\xa0"
       "1]"),
     NG_JSONLOAD_INVALID},
    {T("[\"\\x\"]"), NG_JSONLOAD_INVALID},
    {T("[\"\\U0041\"]"), NG_JSONLOAD_INVALID},
    {T("[\"\\'\"]"), NG_JSONLOAD_INVALID},
    {T("[\"\\u12g4\"]"), NG_JSONLOAD_INVALID},
    {T("[\"\\u004G\"]"), NG_JSONLOAD_INVALID},
    {T("[\"\\u12\"]"), NG_JSONLOAD_INVALID},
    {T("[\"\\udc00\"]"), NG_JSONLOAD_INVALID},
    {T("[\"\\uDFFF\"]"), NG_JSONLOAD_INVALID},
    {T("[\"\\ud800\"]"), NG_JSONLOAD_INVALID},
    {T("[\"\\ud800x\"]"), NG_JSONLOAD_INVALID},
    {T("[\"\\ud800\\n\"]"), NG_JSONLOAD_INVALID},
    {T("[\"\\ud800\\u0041\"]"), NG_JSONLOAD_INVALID},
    {T("[\"\\ud83d\\ud83d\"]"), NG_JSONLOAD_INVALID},
    {T("{\"\\ud800\":1}"), NG_JSONLOAD_INVALID},
    /* Bytes that are not UTF-8, inside strings and between tokens. */
    {T("[\"\xff\"]"), NG_JSONLOAD_UTF8},
    {T("[\"\x80\"]"), NG_JSONLOAD_UTF8},
    {T("[\"\xc0\x80\"]"), NG_JSONLOAD_UTF8},
    {T("[\"\xc1\xbf\"]"), NG_JSONLOAD_UTF8},
    {T("[\"\xe0\x80\x80\"]"), NG_JSONLOAD_UTF8},
    {T("[\"\xf0\x80\x80\x80\"]"), NG_JSONLOAD_UTF8},
    {T("[\"\xed\xa0\x80\"]"), NG_JSONLOAD_UTF8},
    {T("[\"\xed\xbf\xbf\"]"), NG_JSONLOAD_UTF8},
    {T("[\"\xf4\x90\x80\x80\"]"), NG_JSONLOAD_UTF8},
    {T("[\"\xf5\x80\x80\x80\"]"), NG_JSONLOAD_UTF8},
    {T("[\"\xe2\x82\"]"), NG_JSONLOAD_UTF8},
    {T("[\"\xc3"), NG_JSONLOAD_UTF8},
    {T("[\"\xf0\x9f\x98"), NG_JSONLOAD_UTF8},
    {T("{\"\xff\":1}"), NG_JSONLOAD_UTF8},
    {T("\xff"), NG_JSONLOAD_UTF8},
    {T("[\xff]"), NG_JSONLOAD_UTF8},
    {T("[1 \xff]"), NG_JSONLOAD_UTF8},
    {T("[1\xff]"), NG_JSONLOAD_UTF8},
    {T("{\xff}"), NG_JSONLOAD_UTF8},
    {T("[] \xff"), NG_JSONLOAD_UTF8},
    /* A key twice in one object, however it is spelled. */
    {T("{\"a\":1,\"a\":2}"), NG_JSONLOAD_DUPLICATE_KEY},
    {T("{\"body\":1,\"bo\\u0064y\":2}"), NG_JSONLOAD_DUPLICATE_KEY},
    {T("{\"\\u00e9\":1,\"\xc3\xa9\":2}"), NG_JSONLOAD_DUPLICATE_KEY},
    {T("{\"\":1,\"\":1}"), NG_JSONLOAD_DUPLICATE_KEY},
    {T("[{\"x\":{\"k\":1,\"j\":2,\"k\":1}}]"), NG_JSONLOAD_DUPLICATE_KEY},
    /* U+0000 in a key. */
    {T("{\"a\\u0000b\":1}"), NG_JSONLOAD_NUL_IN_KEY},
    {T("{\"\\u0000\":1}"), NG_JSONLOAD_NUL_IN_KEY},
    {T("[{\"ok\":\"\\u0000\",\"\\u0000\":1}]"), NG_JSONLOAD_NUL_IN_KEY},
    /* Integers beyond int64, reals beyond double. */
    {T("[9223372036854775808]"), NG_JSONLOAD_NUMBER_RANGE},
    {T("[-9223372036854775809]"), NG_JSONLOAD_NUMBER_RANGE},
    {T("[10000000000000000000]"), NG_JSONLOAD_NUMBER_RANGE},
    {T("[1234567890123456789012345]"), NG_JSONLOAD_NUMBER_RANGE},
    {T("[-1234567890123456789012345]"), NG_JSONLOAD_NUMBER_RANGE},
    {T("[1e400]"), NG_JSONLOAD_NUMBER_RANGE},
    {T("[-1e400]"), NG_JSONLOAD_NUMBER_RANGE},
    {T("{\"n\":1.8e308}"), NG_JSONLOAD_NUMBER_RANGE},
};

static void
test_refused(void **state)
{
    ng_jsonload_error e;
    json_t *v;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        if (load_both(refused[i].in, refused[i].len, &v, &e, NULL) == NG_OK) {
            json_decref(v);
            fail_msg("refused[%zu] %s: accepted", i, shown(refused[i].in, refused[i].len));
        }
        if (e.why != refused[i].why)
            fail_msg("refused[%zu] %s: %s, not %s", i, shown(refused[i].in, refused[i].len), why_name(e.why),
                     why_name(refused[i].why));
    }
}

/* Where a refusal is, as jansson reports it. */
static void
test_positions(void **state)
{
    static const struct {
        const uint8_t *in;
        size_t len;
        ng_jsonload_why why;
        int line, column;
    } cases[] = {
        {T("{\"recipient\":\"bob\",\"body\":\"a\",\"bo\\u0064y\":\"b\"}"), NG_JSONLOAD_DUPLICATE_KEY, 1, 41},
        {T("{\"recipient\":\"bob\",\"body\":Sekrit}"), NG_JSONLOAD_INVALID, 1, 32},
        {T("{\"recipient\":\"bob\",\n\"body\":\"Sekrit"), NG_JSONLOAD_TRUNCATED, 2, 14},
        /* Columns count characters, not bytes. */
        {T("[\"\xc3\xa9\", x]"), NG_JSONLOAD_INVALID, 1, 7},
        {T("[\"\xe2\x82\xac\xf0\x9f\x98\x80\",\n\n  tru]"), NG_JSONLOAD_INVALID, 3, 5},
        {T("{\"a\":1,\"a\":2}"), NG_JSONLOAD_DUPLICATE_KEY, 1, 10},
        /* A refused key is placed at its end, not after the whitespace that follows it. */
        {T("{\"a\":1,\"a\"  :2}"), NG_JSONLOAD_DUPLICATE_KEY, 1, 10},
        {T("{\"a\\u0000\"\n:2}"), NG_JSONLOAD_NUL_IN_KEY, 1, 10},
        {T("[9223372036854775808]"), NG_JSONLOAD_NUMBER_RANGE, 1, 20},
        {T("[1\n,\n2\n"), NG_JSONLOAD_TRUNCATED, 4, 0},
        {T(""), NG_JSONLOAD_TRUNCATED, 1, 0},
    };
    ng_jsonload_error e;
    json_error_t je;
    json_t *v;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(load_both(cases[i].in, cases[i].len, &v, &e, &je), NG_ERR_PARSE);
        if (e.why != cases[i].why || e.line != cases[i].line || e.column != cases[i].column)
            fail_msg("%s: %s at %d:%d, not %s at %d:%d", shown(cases[i].in, cases[i].len), why_name(e.why), e.line,
                     e.column, why_name(cases[i].why), cases[i].line, cases[i].column);
        if (je.line != cases[i].line || je.column != cases[i].column)
            fail_msg("%s: jansson says %d:%d, not %d:%d", shown(cases[i].in, cases[i].len), je.line, je.column,
                     cases[i].line, cases[i].column);
    }
}

/* n arrays (or objects under "k") around inner; the caller frees it. */
static uint8_t *
nested(size_t n, int objects, const char *inner, size_t *len)
{
    size_t open = objects ? 5 : 1, k, at = 0, inner_len = strlen(inner);
    uint8_t *doc = malloc(n * (open + 1) + inner_len);

    assert_non_null(doc);
    for (k = 0; k < n; k++) {
        memcpy(doc + at, objects ? "{\"k\":" : "[", open);
        at += open;
    }
    memcpy(doc + at, inner, inner_len);
    at += inner_len;
    for (k = 0; k < n; k++)
        doc[at++] = objects ? '}' : ']';
    *len = at;
    return doc;
}

/* Every value counts towards the depth, the top one as 1: NG_JSONLOAD_MAX_DEPTH passes, one more does not. */
static void
test_depth(void **state)
{
    static const struct {
        int objects;
        const char *inner;
        size_t values; /* besides the n containers */
    } kinds[] = {{0, "1", 1}, {0, "[]", 1}, {1, "\"s\"", 1}, {1, "{}", 1}, {0, "", 0}};
    ng_jsonload_error e;
    json_error_t je;
    uint8_t *doc;
    size_t i, n, len;
    json_t *v;

    (void)state;
    for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        /* n containers and the inner value: NG_JSONLOAD_MAX_DEPTH values deep. */
        n = NG_JSONLOAD_MAX_DEPTH - kinds[i].values;
        doc = nested(n, kinds[i].objects, kinds[i].inner, &len);
        assert_int_equal(load_both(doc, len, &v, &e, NULL), NG_OK);
        json_decref(v);
        free(doc);
        doc = nested(n + 1, kinds[i].objects, kinds[i].inner, &len);
        assert_int_equal(load_both(doc, len, &v, &e, &je), NG_ERR_PARSE);
        assert_int_equal(e.why, NG_JSONLOAD_TOO_DEEP);
        assert_int_equal(json_error_code(&je), json_error_stack_overflow);
        free(doc);
    }
    /* Far too deep, and cut short: still refused, without running out of stack. */
    doc = nested(100000, 0, "", &len);
    assert_int_equal(load_both(doc, len, &v, &e, NULL), NG_ERR_PARSE);
    assert_int_equal(e.why, NG_JSONLOAD_TOO_DEEP);
    assert_int_equal(load_both(doc, 100000 / 2, &v, &e, NULL), NG_ERR_PARSE);
    assert_int_equal(e.why, NG_JSONLOAD_TOO_DEEP);
    free(doc);
}

/* The contract around the arguments. */
static void
test_arguments(void **state)
{
    ng_jsonload_error e;
    json_t *v;

    (void)state;
    /* No error block wanted, for a refusal and for a success. */
    v = (json_t *)&e;
    assert_int_equal(ng_jsonload(T("{\"a\":"), &v, NULL), NG_ERR_PARSE);
    assert_null(v);
    assert_int_equal(ng_jsonload(T("[\"\\u0000\"]"), &v, NULL), NG_OK);
    assert_int_equal(json_string_length(json_array_get(v, 0)), 1);
    json_decref(v);
    /* No buffer and no length: a document cut short, not a crash. */
    v = (json_t *)&e;
    memset(&e, 0xa5, sizeof e);
    assert_int_equal(ng_jsonload(NULL, 0, &v, &e), NG_ERR_PARSE);
    assert_null(v);
    assert_int_equal(e.why, NG_JSONLOAD_TRUNCATED);
    assert_int_equal(e.line, 1);
    assert_int_equal(e.column, 0);
    assert_null(json_loadb(NULL, 0, FLAGS, NULL));
    /* No buffer but a length: the caller's mistake. */
    v = (json_t *)&e;
    assert_int_equal(ng_jsonload(NULL, 5, &v, &e), NG_ERR_INVALID_ARG);
    assert_null(v);
    v = (json_t *)&e;
    assert_int_equal(ng_jsonload(NULL, 5, &v, NULL), NG_ERR_INVALID_ARG);
    assert_null(v);
    /* The length is what counts: what follows it is not read. */
    assert_int_equal(ng_jsonload((const uint8_t *)"{}garbage", 2, &v, &e), NG_OK);
    assert_int_equal(json_object_size(v), 0);
    json_decref(v);
}

/*
 * Where jansson and this loader part: jansson skips one NUL byte right after
 * a number or literal (its stream takes NUL for the end of its buffer), which
 * is not JSON; this loader refuses it (ng_jsonload.h).
 */
static void
test_jansson_nul_quirk(void **state)
{
    static const struct {
        const uint8_t *in;
        size_t len;
    } cases[] = {{T("[0\0]")}, {T("[1\0,2]")}, {T("{\"a\":1\0}")}, {T("[true\0]")}, {T("{\"ttl\":60\0}")}};
    ng_jsonload_error e;
    json_t *v, *ref;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ref = json_loadb((const char *)cases[i].in, cases[i].len, FLAGS, NULL);
        assert_non_null(ref);
        json_decref(ref);
        assert_int_equal(ng_jsonload(cases[i].in, cases[i].len, &v, &e), NG_ERR_PARSE);
        assert_null(v);
        assert_int_equal(e.why, NG_JSONLOAD_INVALID);
    }
}

/* A string cut off after a high surrogate is truncated, as jansson says: it pairs surrogates once a string ends. */
static void
test_cut_after_surrogate(void **state)
{
    static const struct {
        const uint8_t *in;
        size_t len;
    } cases[] = {{T("[\"\\ud800")}, {T("[\"\\ud800\\")}, {T("[\"\\ud800\\u")}, {T("[\"\\udc00x")}};
    ng_jsonload_error e;
    json_t *v;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(load_both(cases[i].in, cases[i].len, &v, &e, NULL), NG_ERR_PARSE);
        assert_int_equal(e.why, NG_JSONLOAD_TRUNCATED);
    }
}

/* ---- failed allocations ---- */

static long alloc_left; /* allocations that succeed before the next fails; < 0: all succeed */
static long alloc_count;

static void *
failing_malloc(size_t n)
{
    alloc_count++;
    if (alloc_left == 0)
        return NULL;
    if (alloc_left > 0)
        alloc_left--;
    return malloc(n);
}

/*
 * Each of jansson's allocations while loading fails in turn: the loader
 * answers NG_ERR_NOMEM with why NOMEM and *out NULL, and frees what it had
 * built (ASan's leak check sees the rest); with none failing it loads.
 */
static void
test_nomem(void **state)
{
    static const uint8_t doc[] =
        "{\"a\":[1,2.5,\"x\\n\",\"plain\",true,null,{}],\"b\\u00e9\":{\"c\":\"\\u0000\",\"d\":[[]]},\"e\":-3,"
        /* a real too long for the stack: its copy is allocated too */
        "\"f\":0.125000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000}";
    ng_jsonload_error e;
    json_t *v, *ref;
    char *a, *b;
    long k, needed;
    ng_err rc;

    (void)state;
    ref = json_loadb((const char *)doc, sizeof doc - 1, FLAGS, NULL);
    assert_non_null(ref);
    json_set_alloc_funcs(failing_malloc, free);
    alloc_left = -1;
    alloc_count = 0;
    assert_int_equal(ng_jsonload(doc, sizeof doc - 1, &v, &e), NG_OK);
    json_decref(v);
    needed = alloc_count;
    assert_true(needed > 10);
    for (k = 0; k < needed; k++) {
        alloc_left = k;
        v = (json_t *)&e;
        memset(&e, 0xa5, sizeof e);
        rc = ng_jsonload(doc, sizeof doc - 1, &v, &e);
        if (rc != NG_ERR_NOMEM || v != NULL || e.why != NG_JSONLOAD_NOMEM)
            fail_msg("allocation %ld failing: %d, %s, out %p", k, rc, why_name(e.why), (void *)v);
    }
    alloc_left = -1;
    assert_int_equal(ng_jsonload(doc, sizeof doc - 1, &v, &e), NG_OK);
    ng_jsonmem_install();
    a = dump(v);
    b = dump(ref);
    assert_string_equal(a, b);
    free(a);
    free(b);
    json_decref(v);
    json_decref(ref);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_string_bytes),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_long_strings),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_nomem),
        cmocka_unit_test(test_jansson_nul_quirk),
        cmocka_unit_test(test_cut_after_surrogate),
    };

    ng_jsonmem_install(); /* as the gateway runs */
    return cmocka_run_group_tests_name("jsonload", tests, NULL, NULL);
}

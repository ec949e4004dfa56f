/*
 * A recursive-descent JSON loader that builds jansson values (ng_jsonload.h).
 *
 * It mirrors jansson 2.14's load.c decision for decision, because whatever
 * it accepts a caller may rely on jansson to have accepted:
 *   - only an object or an array at the top, only whitespace (space, tab,
 *     CR, LF) around it;
 *   - every value counts towards the depth, the top one as 1;
 *   - strings: no byte below 0x20, the eight short escapes and \uXXXX, a
 *     high surrogate only with a low one after it, strict UTF-8 (no
 *     overlong forms, no surrogates, nothing above U+10FFFF), U+0000
 *     allowed except in keys;
 *   - numbers: RFC 8259's grammar; without '.', 'e' or 'E' an integer that
 *     must fit in int64, else a double that must not overflow (underflow
 *     is fine), read by strtod in the C locale the gateway never leaves;
 *   - true, false and null, and a run of letters is one token.
 * Error positions follow jansson where its tests and ours look (the end of
 * a bad token, the end of the input when it is cut short) and are close
 * elsewhere; they are only ever shown, never acted on.
 */
#include "ng_jsonload.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ng_utf8.h"

enum {
    INT_TEXT_MAX = 20,   /* "-9223372036854775808" */
    NUM_STACK_BYTES = 64 /* a real's text longer than this is copied to the heap for strtod */
};

struct parser {
    const uint8_t *start, *p, *end;
    int depth;
    ng_jsonload_why why;
    const uint8_t *err_at; /* just past what had been read when it failed */
};

static json_t *value(struct parser *ps);

/* Scratch memory from jansson's allocator, as the values are: one that fails (or wipes) does so for both. */
static void *
scratch_alloc(size_t n)
{
    json_malloc_t m;
    json_free_t f;

    json_get_alloc_funcs(&m, &f);
    return m(n);
}

static void
scratch_release(void *p)
{
    json_malloc_t m;
    json_free_t f;

    json_get_alloc_funcs(&m, &f);
    f(p);
}

static json_t *
fail(struct parser *ps, ng_jsonload_why why, const uint8_t *at)
{
    ps->why = why;
    ps->err_at = at;
    return NULL;
}

static void
skip_ws(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

/* The length of the well-formed UTF-8 sequence at p (jansson's utf8_check_full), 0 if there is none. */
static size_t
utf8_len(const uint8_t *p, const uint8_t *end)
{
    uint32_t cp;

    return ng_utf8_decode(p, (size_t)(end - p), &cp);
}

static int
hex4(const uint8_t *p, uint32_t *out)
{
    uint32_t v = 0;
    int i;

    for (i = 0; i < 4; i++) {
        uint8_t c = p[i];

        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/*
 * Checks the string whose opening quote is at ps->p and moves past its
 * closing one. Sets *raw and *raw_len to the text between the quotes and
 * *escaped if it holds a backslash. \u escapes are checked here in full, so
 * decode() cannot fail.
 */
static int
scan_string(struct parser *ps, const uint8_t **raw, size_t *raw_len, int *escaped)
{
    const uint8_t *p = ps->p + 1, *end = ps->end;
    int bad_surrogate = 0;

    *escaped = 0;
    *raw = p;
    for (;;) {
        uint8_t c;

        /* The common case first: printable ASCII that needs no attention. */
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p >= end)
            return fail(ps, NG_JSONLOAD_TRUNCATED, end), -1;
        c = *p;
        if (c == '"') {
            /* As jansson, which pairs surrogates once the string has ended (so a cut-off one is truncated). */
            if (bad_surrogate)
                return fail(ps, NG_JSONLOAD_INVALID, p + 1), -1;
            break;
        }
        if (c < 0x20)
            return fail(ps, NG_JSONLOAD_INVALID, p), -1;
        if (c >= 0x80) {
            size_t n = utf8_len(p, end);

            if (n == 0)
                return fail(ps, NG_JSONLOAD_UTF8, p), -1;
            p += n;
            continue;
        }
        /* A backslash. */
        *escaped = 1;
        if (++p >= end)
            return fail(ps, NG_JSONLOAD_TRUNCATED, end), -1;
        c = *p++;
        if (c == 'u') {
            uint32_t hi, lo;

            if (end - p < 4)
                return fail(ps, NG_JSONLOAD_TRUNCATED, end), -1;
            if (hex4(p, &hi) != 0)
                return fail(ps, NG_JSONLOAD_INVALID, p + 1), -1;
            p += 4;
            if (hi >= 0xdc00 && hi <= 0xdfff)
                bad_surrogate = 1;
            else if (hi >= 0xd800 && hi <= 0xdbff) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)
                    bad_surrogate = 1;
                else
                    p += 6;
            }
        } else if (c != '"' && c != '\\' && c != '/' && c != 'b' && c != 'f' && c != 'n' && c != 'r' && c != 't') {
            return fail(ps, NG_JSONLOAD_INVALID, p), -1;
        }
    }
    *raw_len = (size_t)(p - *raw);
    ps->p = p + 1;
    return 0;
}

static size_t
put_utf8(uint8_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xc0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xe0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (uint8_t)(0xf0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/* raw (checked by scan_string) with its escapes decoded into out, which has raw_len bytes; the length written. */
static size_t
decode(uint8_t *out, const uint8_t *raw, size_t raw_len)
{
    const uint8_t *p = raw, *end = raw + raw_len;
    size_t n = 0;

    while (p < end) {
        uint32_t cp, lo;

        if (*p != '\\') {
            out[n++] = *p++;
            continue;
        }
        p++;
        switch (*p++) {
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u':
            (void)hex4(p, &cp);
            p += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                (void)hex4(p + 2, &lo);
                p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            n += put_utf8(out + n, cp);
            break;
        default: out[n++] = p[-1]; break; /* '"', '\\' or '/' */
        }
    }
    return n;
}

/*
 * The string at ps->p, in *s and *len: the input itself when it has no
 * escapes, else a decoded copy in *scratch (scratch_alloc'd; the caller
 * gives it to scratch_free).
 */
static int
string(struct parser *ps, const uint8_t **s, size_t *len, uint8_t **scratch)
{
    const uint8_t *raw;
    size_t raw_len;
    int escaped;

    *scratch = NULL;
    if (scan_string(ps, &raw, &raw_len, &escaped) != 0)
        return -1;
    if (!escaped) {
        *s = raw, *len = raw_len;
        return 0;
    }
    /* Decoding never lengthens: \uXXXX is 6 bytes for at most 3, a pair 12 for 4. */
    *scratch = scratch_alloc(raw_len);
    if (*scratch == NULL)
        return fail(ps, NG_JSONLOAD_NOMEM, ps->p), -1;
    *len = decode(*scratch, raw, raw_len);
    *s = *scratch;
    return 0;
}

static void
scratch_free(uint8_t *scratch, size_t len)
{
    if (scratch != NULL) {
        sodium_memzero(scratch, len);
        scratch_release(scratch);
    }
}

static int
is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static json_t *
number(struct parser *ps)
{
    const uint8_t *start = ps->p, *p = ps->p, *end = ps->end;
    char stack[NUM_STACK_BYTES], *text = stack;
    int real = 0;
    size_t len;
    json_t *v;

    if (*p == '-')
        p++;
    if (p >= end)
        return fail(ps, NG_JSONLOAD_TRUNCATED, end);
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && is_digit(*p))
            p++;
    } else {
        return fail(ps, NG_JSONLOAD_INVALID, p);
    }
    if (p < end && *p == '.') {
        if (++p >= end)
            return fail(ps, NG_JSONLOAD_TRUNCATED, end);
        if (!is_digit(*p))
            return fail(ps, NG_JSONLOAD_INVALID, p);
        while (p < end && is_digit(*p))
            p++;
        real = 1;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end)
            return fail(ps, NG_JSONLOAD_TRUNCATED, end);
        if (!is_digit(*p))
            return fail(ps, NG_JSONLOAD_INVALID, p);
        while (p < end && is_digit(*p))
            p++;
        real = 1;
    }
    /* A number is never last: the object or array around it must still close. */
    if (p >= end)
        return fail(ps, NG_JSONLOAD_TRUNCATED, end);
    len = (size_t)(p - start);
    ps->p = p;
    if (!real) {
        long long i;

        /* No leading zeros, so a longer text is out of range whatever its digits. */
        if (len > INT_TEXT_MAX)
            return fail(ps, NG_JSONLOAD_NUMBER_RANGE, p);
        memcpy(stack, start, len);
        stack[len] = '\0';
        errno = 0;
        i = strtoll(stack, NULL, 10);
        if (errno == ERANGE)
            return fail(ps, NG_JSONLOAD_NUMBER_RANGE, p);
        v = json_integer((json_int_t)i);
    } else {
        double d;

        if (len >= sizeof stack && (text = scratch_alloc(len + 1)) == NULL)
            return fail(ps, NG_JSONLOAD_NOMEM, p);
        memcpy(text, start, len);
        text[len] = '\0';
        errno = 0;
        d = strtod(text, NULL);
        if (text != stack)
            scratch_release(text);
        if (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL))
            return fail(ps, NG_JSONLOAD_NUMBER_RANGE, p);
        v = json_real(d);
    }
    return v != NULL ? v : fail(ps, NG_JSONLOAD_NOMEM, p);
}

/* A run of letters, as jansson reads one: true, false, null or nothing. */
static json_t *
literal(struct parser *ps)
{
    const uint8_t *start = ps->p, *p = ps->p;
    size_t len;

    while (p < ps->end && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
        p++;
    len = (size_t)(p - start);
    ps->p = p;
    if (len == 4 && memcmp(start, "true", 4) == 0)
        return json_true();
    if (len == 5 && memcmp(start, "false", 5) == 0)
        return json_false();
    if (len == 4 && memcmp(start, "null", 4) == 0)
        return json_null();
    return fail(ps, NG_JSONLOAD_INVALID, p);
}

/* Something other than what was expected at ps->p: the end of the input, bytes that are not UTF-8, or a wrong token. */
static json_t *
unexpected(struct parser *ps)
{
    const uint8_t *p = ps->p;
    size_t n;

    if (p >= ps->end)
        return fail(ps, NG_JSONLOAD_TRUNCATED, ps->end);
    n = utf8_len(p, ps->end);
    return n == 0 ? fail(ps, NG_JSONLOAD_UTF8, p) : fail(ps, NG_JSONLOAD_INVALID, p + n);
}

/* Past c, and the whitespace after it, if c is next: 1; else 0, and nothing moves. */
static int
take(struct parser *ps, uint8_t c)
{
    if (ps->p >= ps->end || *ps->p != c)
        return 0;
    ps->p++;
    skip_ws(ps);
    return 1;
}

/* One "key": value at ps->p into obj; -1 once the failure is set. */
static int
member(struct parser *ps, json_t *obj)
{
    const uint8_t *key, *key_end;
    uint8_t *scratch;
    size_t key_len;
    json_t *v;
    int ret = -1;

    if (ps->p >= ps->end || *ps->p != '"')
        return unexpected(ps), -1;
    if (string(ps, &key, &key_len, &scratch) != 0)
        return -1;
    key_end = ps->p; /* where jansson places a refusal of the key */
    skip_ws(ps);
    if (memchr(key, '\0', key_len) != NULL)
        fail(ps, NG_JSONLOAD_NUL_IN_KEY, key_end);
    else if (json_object_getn(obj, (const char *)key, key_len) != NULL)
        fail(ps, NG_JSONLOAD_DUPLICATE_KEY, key_end);
    else if (!take(ps, ':'))
        unexpected(ps);
    else if ((v = value(ps)) == NULL)
        ; /* value() set the failure */
    else if (json_object_setn_new_nocheck(obj, (const char *)key, key_len, v) != 0)
        fail(ps, NG_JSONLOAD_NOMEM, ps->p); /* v is gone with it */
    else
        ret = 0;
    scratch_free(scratch, key_len);
    return ret;
}

/* One value at ps->p appended to arr; -1 once the failure is set. */
static int
element(struct parser *ps, json_t *arr)
{
    json_t *v = value(ps);

    if (v == NULL)
        return -1;
    if (json_array_append_new(arr, v) != 0)
        return fail(ps, NG_JSONLOAD_NOMEM, ps->p), -1;
    return 0;
}

/* The object or array (c, new and empty) whose opening bracket is at ps->p: items by item, up to close. */
static json_t *
container(struct parser *ps, json_t *c, uint8_t close, int (*item)(struct parser *, json_t *))
{
    if (c == NULL)
        return fail(ps, NG_JSONLOAD_NOMEM, ps->p);
    ps->p++;
    skip_ws(ps);
    if (take(ps, close))
        return c;
    for (;;) {
        if (item(ps, c) != 0)
            break;
        skip_ws(ps);
        if (take(ps, close))
            return c;
        if (!take(ps, ',')) {
            unexpected(ps);
            break;
        }
    }
    json_decref(c);
    return NULL;
}

/* The value at ps->p (whitespace before it already skipped). */
static json_t *
value(struct parser *ps)
{
    json_t *v;

    if (++ps->depth > NG_JSONLOAD_MAX_DEPTH)
        return fail(ps, NG_JSONLOAD_TOO_DEEP, ps->p);
    if (ps->p >= ps->end) {
        v = fail(ps, NG_JSONLOAD_TRUNCATED, ps->end);
    } else if (*ps->p == '{') {
        v = container(ps, json_object(), '}', member);
    } else if (*ps->p == '[') {
        v = container(ps, json_array(), ']', element);
    } else if (*ps->p == '"') {
        const uint8_t *s;
        uint8_t *scratch;
        size_t len;

        v = NULL;
        if (string(ps, &s, &len, &scratch) == 0) {
            v = json_stringn_nocheck((const char *)s, len);
            if (v == NULL)
                fail(ps, NG_JSONLOAD_NOMEM, ps->p);
            scratch_free(scratch, len);
        }
    } else if (*ps->p == '-' || is_digit(*ps->p)) {
        v = number(ps);
    } else if ((*ps->p >= 'a' && *ps->p <= 'z') || (*ps->p >= 'A' && *ps->p <= 'Z')) {
        v = literal(ps);
    } else {
        v = unexpected(ps);
    }
    ps->depth--;
    return v;
}

/* Where at is, as jansson counts: lines from 1, characters (not continuation bytes) from 1. */
static void
position(const struct parser *ps, ng_jsonload_error *e)
{
    const uint8_t *p;
    int line = 1, column = 0;

    for (p = ps->start; p < ps->err_at && p < ps->end; p++) {
        if (*p == '\n')
            line++, column = 0;
        else if (*p < 0x80 || (*p >= 0xc2 && *p <= 0xf4))
            column++;
    }
    e->line = line;
    e->column = column;
}

ng_err
ng_jsonload(const uint8_t *buf, size_t len, json_t **out, ng_jsonload_error *e)
{
    struct parser ps;
    json_t *v = NULL;

    *out = NULL;
    if (buf == NULL && len > 0)
        return NG_ERR_INVALID_ARG;
    if (buf == NULL)
        buf = (const uint8_t *)"";
    ps = (struct parser){buf, buf, buf + len, 0, NG_JSONLOAD_INVALID, buf};
    skip_ws(&ps);
    if (ps.p < ps.end && (*ps.p == '{' || *ps.p == '[')) {
        v = value(&ps);
        if (v != NULL) {
            skip_ws(&ps);
            if (ps.p < ps.end) {
                unexpected(&ps);
                json_decref(v);
                v = NULL;
            }
        }
    } else {
        unexpected(&ps);
    }
    if (v != NULL) {
        *out = v;
        return NG_OK;
    }
    if (e != NULL) {
        e->why = ps.why;
        position(&ps, e);
    }
    return ps.why == NG_JSONLOAD_NOMEM ? NG_ERR_NOMEM : NG_ERR_PARSE;
}

/*
 * Messages from backends: one JSON message, a JSON batch, or a CloudEvent in
 * binary mode, all checked by the same field rules (ng_submit.h).
 *
 * A JSON request is read in two passes. The first checks every field of every
 * message and adds up the room each one needs; the second copies or decodes
 * the bodies and writes the metas into one arena, which ng_submit_free wipes
 * whole. So a batch is all or nothing, and the plaintext is never spread over
 * many small blocks that each need wiping.
 *
 * Bad base64 is only found when it is decoded, in pass two: a request with
 * several errors reports the first of pass one, and its base64 only after.
 *
 * Error messages name the field and what it should be, never its value: the
 * text goes back to the client and into logs, and values are message content;
 * a document that does not parse is told by its kind of fault and its place.
 *
 * The document is read by ng_jsonload, not json_loadb: the same values, in a
 * tenth of the time for a 1 KiB body (ng_jsonload.h says why).
 */
#include "ng_submit.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "ng_b64.h"
#include "ng_jsonload.h"
#include "ng_utf8.h"

#define TTL_MAX             2147483648LL /* 2^31 seconds */
#define DEFAULT_TEXT_TYPE   "text/plain; charset=utf-8"
#define DEFAULT_BINARY_TYPE "application/octet-stream"
#define SPECVERSION         "1.0"

enum {
    AT_BYTES = 32,     /* "messages[N]" for any size_t N */
    SHOW_KEY_MAX = 32, /* an unknown key is named only if this short and plain */
};

/* The fields, in the order they are checked (and so in which errors are reported). */
enum field { F_RECIPIENT, F_CONTENT_TYPE, F_BODY, F_BODY_BASE64, F_TTL, F_PATTERN, F_TYPE, F_SUBJECT, F_COUNT };

static const char *const json_names[F_COUNT] = {"recipient", "content_type", "body", "body_base64",
                                                "ttl",       "pattern",      "type", "subject"};
/* Binary mode: the body is the request's body, not a header. */
static const char *const header_names[F_COUNT] = {"ce-recipient", "content-type", NULL,      NULL,
                                                  "ce-ttl",       "ce-pattern",   "ce-type", "ce-subject"};

static const char *const expected[F_COUNT] = {
    "1-63 characters of a-z, 0-9 and '-', not starting with '-'",
    "1-255 printable ASCII characters",
    "a string",
    "a string of standard base64 with padding",
    "an integer 1-2147483648",
    "one of N, K, X, Npsk0, Kpsk0, Xpsk1",
    "1-255 bytes of UTF-8 without control characters",
    "1-255 bytes of UTF-8 without control characters",
};

/* What the bodies and metas of one ng_submit live in; wiped whole when freed. */
struct arena {
    size_t cap;
    size_t used;
    unsigned char data[];
};

struct ctx {
    char *err;
    size_t errlen;
    const char *const *names;
    char at[AT_BYTES]; /* "messages[3]" inside a batch, else "" */
};

static ng_err fail(const struct ctx *c, ng_err code, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "AT.NAME: text", "NAME: text", "AT: text" or just "text", cut to fit. */
static ng_err
fail(const struct ctx *c, ng_err code, const char *name, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (c->err == NULL || c->errlen == 0)
        return code;
    if (c->at[0] != '\0' && name != NULL)
        n = snprintf(c->err, c->errlen, "%s.%s: ", c->at, name);
    else if (c->at[0] != '\0' || name != NULL)
        n = snprintf(c->err, c->errlen, "%s: ", c->at[0] != '\0' ? c->at : name);
    else
        n = 0;
    if (n < 0 || (size_t)n >= c->errlen)
        return code;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}

static ng_err
bad(const struct ctx *c, enum field f)
{
    return fail(c, NG_ERR_PARSE, c->names[f], "expected %s", expected[f]);
}

static ng_err
nomem(const struct ctx *c)
{
    return fail(c, NG_ERR_NOMEM, NULL, "out of memory");
}

/* One code point of strict UTF-8 at s[*i] (ng_utf8_decode), and past it; 0 if the bytes there are not one. */
static int
utf8_next(const unsigned char *s, size_t n, size_t *i, uint32_t *cp)
{
    size_t len = ng_utf8_decode(s + *i, n - *i, cp);

    *i += len;
    return len != 0;
}

static int
recipient_ok(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > NG_SUBMIT_MAX_NAME || s[0] == '-')
        return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

static int
ascii_ok(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > NG_SUBMIT_MAX_FIELD)
        return 0;
    for (i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return 0;
    return 1;
}

/* UTF-8 without C0, DEL or C1 controls: nothing that can steer a terminal or a log line. */
static int
text_ok(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    uint32_t cp;

    if (n == 0 || n > NG_SUBMIT_MAX_FIELD)
        return 0;
    while (i < n) {
        if (!utf8_next(u, n, &i, &cp))
            return 0;
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
            return 0;
    }
    return 1;
}

/* Decimal digits only, 1-2^31: no sign, no spaces, no overflow. */
static int
ttl_text(const char *s, int64_t *out)
{
    int64_t v = 0;
    size_t i;

    if (s[0] == '\0')
        return 0;
    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
        if (v > TTL_MAX)
            return 0;
    }
    if (v < 1)
        return 0;
    *out = v;
    return 1;
}

/* The setters check one field and store it; strings come with their length, as JSON allows NULs. */
static ng_err
set_recipient(const struct ctx *c, ng_submit_msg *m, const char *s, size_t n)
{
    if (!recipient_ok(s, n))
        return bad(c, F_RECIPIENT);
    memcpy(m->recipient, s, n);
    m->recipient[n] = '\0';
    return NG_OK;
}

static ng_err
set_content_type(const struct ctx *c, ng_submit_msg *m, const char *s, size_t n)
{
    if (!ascii_ok(s, n))
        return bad(c, F_CONTENT_TYPE);
    memcpy(m->content_type, s, n);
    m->content_type[n] = '\0';
    return NG_OK;
}

static ng_err
set_text(const struct ctx *c, ng_submit_msg *m, enum field f, const char *s, size_t n)
{
    char *dst = f == F_TYPE ? m->type : m->subject;

    if (!text_ok(s, n))
        return bad(c, f);
    memcpy(dst, s, n);
    dst[n] = '\0';
    return NG_OK;
}

static ng_err
set_pattern(const struct ctx *c, ng_submit_msg *m, const char *s, size_t n)
{
    ng_pattern p;

    /* The length check keeps "X\u0000..." from passing as "X". */
    if (strlen(s) != n || ng_pattern_parse(s, &p) != NG_OK)
        return bad(c, F_PATTERN);
    m->has_pattern = 1;
    m->pattern = p;
    return NG_OK;
}

/*
 * Writes `s` as the inside of a JSON string at w (when w is not NULL) and
 * returns its length: '"' and '\\' escaped, everything outside ASCII as
 * \uXXXX (a surrogate pair past the BMP), as jansson's JSON_ENSURE_ASCII
 * does. The input has passed ascii_ok or text_ok.
 */
static size_t
put_string(char *w, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, n = strlen(s), len = 0, k;
    uint32_t cp, units[2];
    int count;

    while (i < n) {
        if (!utf8_next(u, n, &i, &cp))
            abort(); /* checked before: a bug, not input */
        if (cp == '"' || cp == '\\') {
            if (w != NULL) {
                w[len] = '\\';
                w[len + 1] = (char)cp;
            }
            len += 2;
            continue;
        }
        if (cp < 0x80) {
            if (w != NULL)
                w[len] = (char)cp;
            len += 1;
            continue;
        }
        if (cp < 0x10000) {
            units[0] = cp;
            count = 1;
        } else {
            units[0] = 0xd800 | ((cp - 0x10000) >> 10);
            units[1] = 0xdc00 | ((cp - 0x10000) & 0x3ff);
            count = 2;
        }
        for (k = 0; k < (size_t)count; k++) {
            if (w != NULL) {
                w[len] = '\\';
                w[len + 1] = 'u';
                w[len + 2] = hex[(units[k] >> 12) & 0xf];
                w[len + 3] = hex[(units[k] >> 8) & 0xf];
                w[len + 4] = hex[(units[k] >> 4) & 0xf];
                w[len + 5] = hex[units[k] & 0xf];
            }
            len += 6;
        }
    }
    return len;
}

static size_t
put_raw(char *w, const char *s)
{
    size_t n = strlen(s);

    if (w != NULL)
        memcpy(w, s, n);
    return n;
}

/* {"content_type":"...","type":"...","subject":"..."} at w (NUL not included); returns the length. */
static size_t
put_meta(char *w, const ng_submit_msg *m)
{
    size_t len = 0;

    len += put_raw(w ? w + len : NULL, "{\"content_type\":\"");
    len += put_string(w ? w + len : NULL, m->content_type);
    if (m->type[0] != '\0') {
        len += put_raw(w ? w + len : NULL, "\",\"type\":\"");
        len += put_string(w ? w + len : NULL, m->type);
    }
    if (m->subject[0] != '\0') {
        len += put_raw(w ? w + len : NULL, "\",\"subject\":\"");
        len += put_string(w ? w + len : NULL, m->subject);
    }
    len += put_raw(w ? w + len : NULL, "\"}");
    return len;
}

/* One byte more than asked, so even an empty body at the very end points inside the block. */
static struct arena *
arena_new(size_t cap)
{
    struct arena *a;

    if (cap > SIZE_MAX - sizeof *a - 1)
        return NULL;
    a = malloc(sizeof *a + cap + 1);
    if (a == NULL)
        return NULL;
    a->cap = cap + 1;
    a->used = 0;
    return a;
}

/* Writes m's meta into the arena, which has room for it (put_meta measured it). */
static void
meta_into(struct arena *a, ng_submit_msg *m)
{
    m->meta = (char *)a->data + a->used;
    m->meta_len = put_meta(m->meta, m);
    m->meta[m->meta_len] = '\0';
    a->used += m->meta_len + 1;
}

void
ng_submit_free(ng_submit *s)
{
    struct arena *a;

    if (s == NULL)
        return;
    a = s->private;
    if (a != NULL) {
        sodium_memzero(a->data, a->cap);
        free(a);
    }
    if (s->msgs != NULL) {
        sodium_memzero(s->msgs, s->n * sizeof *s->msgs);
        free(s->msgs);
    }
    memset(s, 0, sizeof *s);
}

/* ---- JSON ---- */

static int
is_field(const char *key)
{
    size_t f;

    for (f = 0; f < F_COUNT; f++)
        if (strcmp(key, json_names[f]) == 0)
            return 1;
    return 0;
}

/* A key is shown only when short and made of name characters, so no content reaches the message. */
static ng_err
unknown_key(const struct ctx *c, const char *key)
{
    size_t i, n = strlen(key);
    int plain = n > 0 && n <= SHOW_KEY_MAX;

    for (i = 0; plain && i < n; i++)
        plain = (key[i] >= 'a' && key[i] <= 'z') || (key[i] >= 'A' && key[i] <= 'Z') ||
                (key[i] >= '0' && key[i] <= '9') || key[i] == '_' || key[i] == '-';
    if (plain)
        return fail(c, NG_ERR_PARSE, key, "unknown field");
    return fail(c, NG_ERR_PARSE, NULL, "an unknown field (its name is not shown)");
}

/* A string field of obj: 1 and its text, 0 if absent, -1 if present but not a string. */
static int
get_string(const json_t *obj, enum field f, const char **s, size_t *n)
{
    const json_t *v = json_object_get(obj, json_names[f]);

    if (v == NULL)
        return 0;
    if (!json_is_string(v))
        return -1;
    *s = json_string_value(v);
    *n = json_string_length(v);
    return 1;
}

/* The room a body needs in the arena: its length, or what its base64 can decode to at most. */
static size_t
body_room(const json_t *obj)
{
    const json_t *b = json_object_get(obj, json_names[F_BODY]);

    if (b != NULL)
        return json_string_length(b);
    return json_string_length(json_object_get(obj, json_names[F_BODY_BASE64])) / 4 * 3;
}

/* Pass one: checks every field of one message object into m; *room is what it needs in the arena. */
static ng_err
check_message(const struct ctx *c, json_t *obj, ng_submit_msg *m, size_t *room)
{
    const char *key, *s = NULL;
    json_t *v;
    size_t n = 0;
    json_int_t ttl;
    int got, text_body = 0;
    ng_err err;

    json_object_foreach(obj, key, v)
    {
        if (!is_field(key))
            return unknown_key(c, key);
    }

    got = get_string(obj, F_RECIPIENT, &s, &n);
    if (got == 0)
        return fail(c, NG_ERR_PARSE, json_names[F_RECIPIENT], "required");
    if (got < 0)
        return bad(c, F_RECIPIENT);
    if ((err = set_recipient(c, m, s, n)) != NG_OK)
        return err;

    got = get_string(obj, F_BODY, &s, &n);
    if (got < 0)
        return bad(c, F_BODY);
    text_body = got > 0;
    got = get_string(obj, F_BODY_BASE64, &s, &n);
    if (got < 0)
        return bad(c, F_BODY_BASE64);
    if (got > 0 && text_body)
        return fail(c, NG_ERR_PARSE, json_names[F_BODY_BASE64], "not allowed together with body");
    if (got == 0 && !text_body)
        return fail(c, NG_ERR_PARSE, json_names[F_BODY], "required (or body_base64)");

    got = get_string(obj, F_CONTENT_TYPE, &s, &n);
    if (got < 0)
        return bad(c, F_CONTENT_TYPE);
    if (got > 0) {
        if ((err = set_content_type(c, m, s, n)) != NG_OK)
            return err;
    } else {
        snprintf(m->content_type, sizeof m->content_type, "%s", text_body ? DEFAULT_TEXT_TYPE : DEFAULT_BINARY_TYPE);
    }

    v = json_object_get(obj, json_names[F_TTL]);
    if (v != NULL) {
        ttl = json_integer_value(v);
        if (!json_is_integer(v) || ttl < 1 || ttl > TTL_MAX)
            return bad(c, F_TTL);
        m->ttl_s = (int64_t)ttl;
    }

    got = get_string(obj, F_PATTERN, &s, &n);
    if (got < 0)
        return bad(c, F_PATTERN);
    if (got > 0 && (err = set_pattern(c, m, s, n)) != NG_OK)
        return err;

    got = get_string(obj, F_TYPE, &s, &n);
    if (got < 0)
        return bad(c, F_TYPE);
    if (got > 0 && (err = set_text(c, m, F_TYPE, s, n)) != NG_OK)
        return err;

    got = get_string(obj, F_SUBJECT, &s, &n);
    if (got < 0)
        return bad(c, F_SUBJECT);
    if (got > 0 && (err = set_text(c, m, F_SUBJECT, s, n)) != NG_OK)
        return err;

    *room = put_meta(NULL, m) + 1 + body_room(obj);
    return NG_OK;
}

/* Pass two: the meta and the body of a checked message into the arena. Only bad base64 can fail here. */
static ng_err
fill_message(const struct ctx *c, const json_t *obj, ng_submit_msg *m, struct arena *a)
{
    const char *s = "";
    size_t n = 0, room, len;
    unsigned char *dst;

    meta_into(a, m);
    dst = a->data + a->used;
    if (get_string(obj, F_BODY, &s, &n) > 0) {
        if (n > 0)
            memcpy(dst, s, n);
        len = n;
    } else {
        (void)get_string(obj, F_BODY_BASE64, &s, &n);
        room = n / 4 * 3;
        if (ng_b64_decode(dst, room, &len, s, n, sodium_base64_VARIANT_ORIGINAL) != NG_OK)
            return bad(c, F_BODY_BASE64);
    }
    m->body = dst;
    m->body_len = len;
    a->used += len;
    return NG_OK;
}

static ng_err
json_failure(const struct ctx *c, const ng_jsonload_error *e)
{
    static const char *const what[] = {
        [NG_JSONLOAD_INVALID] = "invalid JSON",
        [NG_JSONLOAD_TRUNCATED] = "truncated JSON",
        [NG_JSONLOAD_UTF8] = "invalid UTF-8",
        [NG_JSONLOAD_DUPLICATE_KEY] = "duplicate key",
        [NG_JSONLOAD_NUL_IN_KEY] = "NUL character in a key",
        [NG_JSONLOAD_NUMBER_RANGE] = "number out of range",
        [NG_JSONLOAD_TOO_DEEP] = "JSON nested too deeply",
    };

    const char *why = (size_t)e->why < sizeof what / sizeof what[0] ? what[e->why] : NULL;

    if (e->why == NG_JSONLOAD_NOMEM)
        return nomem(c);
    return fail(c, NG_ERR_PARSE, NULL, "%s at line %d, column %d", why != NULL ? why : "invalid JSON", e->line,
                e->column);
}

/* The message objects of root: root itself, or the items of "messages". Sets *count and *list. */
static ng_err
messages_of(const struct ctx *c, json_t *root, json_t **list, size_t *count)
{
    const char *key;
    json_t *v;

    *list = json_object_get(root, "messages");
    if (*list == NULL) {
        *count = 1;
        return NG_OK;
    }
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "messages") != 0)
            return unknown_key(c, key);
    }
    if (!json_is_array(*list) || json_array_size(*list) == 0)
        return fail(c, NG_ERR_PARSE, "messages", "expected an array of 1-%d messages", NG_SUBMIT_MAX_BATCH);
    if (json_array_size(*list) > NG_SUBMIT_MAX_BATCH)
        return fail(c, NG_ERR_TOO_LARGE, "messages", "at most %d messages in one request", NG_SUBMIT_MAX_BATCH);
    *count = json_array_size(*list);
    return NG_OK;
}

static void
set_at(struct ctx *c, const json_t *list, size_t i)
{
    if (list != NULL)
        snprintf(c->at, sizeof c->at, "messages[%zu]", i);
}

static ng_err
parse_root(struct ctx *c, json_t *root, ng_submit *out)
{
    json_t *list, *obj;
    ng_submit_msg *msgs;
    struct arena *a;
    size_t n = 0, i, room = 0, total = 0;
    ng_err err;

    if (!json_is_object(root))
        return fail(c, NG_ERR_PARSE, NULL, "expected a JSON object");
    if ((err = messages_of(c, root, &list, &n)) != NG_OK)
        return err;
    msgs = calloc(n, sizeof *msgs);
    if (msgs == NULL)
        return nomem(c);
    out->msgs = msgs;
    out->n = n;
    out->batch = list != NULL;
    for (i = 0; i < n; i++) {
        obj = list != NULL ? json_array_get(list, i) : root;
        set_at(c, list, i);
        if (!json_is_object(obj))
            return fail(c, NG_ERR_PARSE, NULL, "expected an object");
        if ((err = check_message(c, obj, &msgs[i], &room)) != NG_OK)
            return err;
        /* Each room is below the request's length plus a few KiB, so this never wraps in practice. */
        if (room > SIZE_MAX - total)
            return nomem(c);
        total += room;
    }
    c->at[0] = '\0';
    a = arena_new(total);
    if (a == NULL)
        return nomem(c);
    out->private = a;
    for (i = 0; i < n; i++) {
        set_at(c, list, i);
        obj = list != NULL ? json_array_get(list, i) : root;
        if ((err = fill_message(c, obj, &msgs[i], a)) != NG_OK)
            return err;
    }
    return NG_OK;
}

ng_err
ng_submit_parse_json(ng_submit *out, const uint8_t *body, size_t len, char *err, size_t errlen)
{
    struct ctx c = {err, errlen, json_names, ""};
    ng_jsonload_error jerr;
    json_t *root;
    ng_err ret;

    memset(out, 0, sizeof *out);
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (body == NULL && len > 0)
        return fail(&c, NG_ERR_INVALID_ARG, NULL, "no body");
    /*
     * ng_jsonload takes an object or an array, as json_loadb does with
     * JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL; parse_root wants an object. A
     * text body may hold U+0000 like any other character; the other fields
     * refuse it by their own rules.
     */
    if (ng_jsonload(body != NULL ? body : (const uint8_t *)"", len, &root, &jerr) != NG_OK)
        return json_failure(&c, &jerr);
    ret = parse_root(&c, root, out);
    json_decref(root);
    if (ret != NG_OK)
        ng_submit_free(out);
    return ret;
}

/* ---- CloudEvents binary mode ---- */

int
ng_submit_is_binary(ng_submit_header_fn header, void *ctx)
{
    return header(ctx, "ce-specversion") != NULL;
}

static ng_err
binary_fields(const struct ctx *c, ng_submit_header_fn header, void *hctx, ng_submit_msg *m)
{
    const char *v;
    ng_err err;

    v = header(hctx, "ce-specversion");
    if (v == NULL)
        return fail(c, NG_ERR_PARSE, "ce-specversion", "required");
    if (strcmp(v, SPECVERSION) != 0)
        return fail(c, NG_ERR_PARSE, "ce-specversion", "expected \"" SPECVERSION "\"");

    v = header(hctx, header_names[F_RECIPIENT]);
    if (v == NULL)
        return fail(c, NG_ERR_PARSE, header_names[F_RECIPIENT], "required");
    if ((err = set_recipient(c, m, v, strlen(v))) != NG_OK)
        return err;

    v = header(hctx, header_names[F_CONTENT_TYPE]);
    if (v == NULL)
        snprintf(m->content_type, sizeof m->content_type, "%s", DEFAULT_BINARY_TYPE);
    else if ((err = set_content_type(c, m, v, strlen(v))) != NG_OK)
        return err;

    v = header(hctx, header_names[F_TTL]);
    if (v != NULL && !ttl_text(v, &m->ttl_s))
        return bad(c, F_TTL);

    v = header(hctx, header_names[F_PATTERN]);
    if (v != NULL && (err = set_pattern(c, m, v, strlen(v))) != NG_OK)
        return err;

    v = header(hctx, header_names[F_TYPE]);
    if (v != NULL && (err = set_text(c, m, F_TYPE, v, strlen(v))) != NG_OK)
        return err;
    v = header(hctx, header_names[F_SUBJECT]);
    if (v != NULL && (err = set_text(c, m, F_SUBJECT, v, strlen(v))) != NG_OK)
        return err;
    return NG_OK;
}

ng_err
ng_submit_parse_binary(ng_submit *out, ng_submit_header_fn header, void *ctx, const uint8_t *body, size_t len,
                       char *err, size_t errlen)
{
    struct ctx c = {err, errlen, header_names, ""};
    ng_submit_msg m;
    struct arena *a;
    ng_err ret;

    memset(out, 0, sizeof *out);
    memset(&m, 0, sizeof m);
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (body == NULL && len > 0)
        return fail(&c, NG_ERR_INVALID_ARG, NULL, "no body");
    ret = binary_fields(&c, header, ctx, &m);
    if (ret == NG_OK) {
        out->msgs = malloc(sizeof *out->msgs);
        a = arena_new(put_meta(NULL, &m) + 1);
        out->private = a;
        if (out->msgs == NULL || a == NULL) {
            ret = nomem(&c);
        } else {
            out->n = 1;
            meta_into(a, &m);
            m.body = body != NULL ? body : (const uint8_t *)"";
            m.body_len = len;
            out->msgs[0] = m;
        }
    }
    sodium_memzero(&m, sizeof m);
    if (ret != NG_OK)
        ng_submit_free(out);
    return ret;
}

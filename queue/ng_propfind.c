/*
 * A strict, bounded reader of PROPFIND multistatus replies (ng_propfind.h).
 * One pass over the buffer with an explicit element stack; every read is
 * checked against len, so a truncated or hostile reply ends in an error,
 * never in a read past its end.
 */
#include "ng_propfind.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PARCEL_SUFFIX ".ngp"

struct span {
    size_t off, len;
};

struct reader {
    const char *p;
    size_t len, i;
    const char *parent;
    size_t max_entries, max_href;
    struct span stack[NG_PROPFIND_MAX_DEPTH]; /* qnames of the open elements */
    size_t depth;
    int root_done;
    size_t responses;
    int in_href; /* inside multistatus/response/href */
    char *href;  /* its text, entities decoded; max_href + 1 bytes */
    size_t href_len;
    ng_propfind_names *out;
    size_t cap;
};

static int
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int
is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int
is_lower_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f');
}

/* XML 1.0 allows no control characters but tab, LF and CR. */
static int
is_control(char c)
{
    return (unsigned char)c < 0x20 && !is_space(c);
}

static int
name_start(char c)
{
    return is_alpha(c) || c == '_' || c == ':' || (unsigned char)c >= 0x80;
}

static int
name_char(char c)
{
    return name_start(c) || is_digit(c) || c == '-' || c == '.';
}

static char
lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static int
same_ci(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t k;

    if (alen != blen)
        return 0;
    for (k = 0; k < alen; k++)
        if (lower(a[k]) != lower(b[k]))
            return 0;
    return 1;
}

int
ng_propfind_is_name(const char *s, size_t len)
{
    size_t k;

    if (s == NULL || len != NG_PROPFIND_NAME_LEN)
        return 0;
    for (k = 0; k < 13; k++)
        if (!is_digit(s[k]))
            return 0;
    if (s[13] != '-')
        return 0;
    /* Lowercase only: one spelling per message id, so one object per parcel. */
    for (k = 14; k < 46; k++)
        if (!is_lower_hex(s[k]))
            return 0;
    return memcmp(s + 46, PARCEL_SUFFIX, 4) == 0;
}

static int
starts(const struct reader *r, const char *lit)
{
    size_t n = strlen(lit);

    return r->len - r->i >= n && memcmp(r->p + r->i, lit, n) == 0;
}

/* Whether the local part (after the last ':') of a qname is lit. */
static int
local_is(const struct reader *r, struct span s, const char *lit)
{
    const char *q = r->p + s.off;
    size_t k = s.len;

    while (k > 0 && q[k - 1] != ':')
        k--;
    return same_ci(q + k, s.len - k, lit, strlen(lit));
}

static ng_err
read_name(struct reader *r, struct span *s)
{
    if (r->i >= r->len || !name_start(r->p[r->i]))
        return NG_ERR_PARSE;
    s->off = r->i;
    while (r->i < r->len && name_char(r->p[r->i]))
        r->i++;
    s->len = r->i - s->off;
    /* "D:" has no local part to match on. */
    if (r->p[r->i - 1] == ':')
        return NG_ERR_PARSE;
    return NG_OK;
}

static void
skip_space(struct reader *r)
{
    while (r->i < r->len && is_space(r->p[r->i]))
        r->i++;
}

/* One of the five predefined entities at r->i ('&'); anything else is refused. */
static ng_err
entity(struct reader *r, char *c)
{
    static const struct {
        const char *name;
        char c;
    } known[] = {{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t k;

    for (k = 0; k < sizeof known / sizeof known[0]; k++) {
        if (starts(r, known[k].name)) {
            r->i += strlen(known[k].name);
            *c = known[k].c;
            return NG_OK;
        }
    }
    return NG_ERR_PARSE;
}

/* Skips a comment or processing instruction up to and including end. */
static ng_err
skip_until(struct reader *r, const char *end)
{
    while (r->i < r->len) {
        if (starts(r, end)) {
            r->i += strlen(end);
            return NG_OK;
        }
        if (is_control(r->p[r->i]))
            return NG_ERR_PARSE;
        r->i++;
    }
    return NG_ERR_PARSE;
}

/* Attributes up to '>' (*empty = 0) or "/>" (*empty = 1); values are checked, not kept. */
static ng_err
attributes(struct reader *r, int *empty)
{
    for (;;) {
        size_t before = r->i;
        struct span name;
        char q, c;
        ng_err err;

        skip_space(r);
        if (starts(r, ">")) {
            r->i++;
            *empty = 0;
            return NG_OK;
        }
        if (starts(r, "/>")) {
            r->i += 2;
            *empty = 1;
            return NG_OK;
        }
        /* An attribute must be separated from what precedes it. */
        if (r->i == before)
            return NG_ERR_PARSE;
        err = read_name(r, &name);
        if (err)
            return err;
        skip_space(r);
        if (!starts(r, "="))
            return NG_ERR_PARSE;
        r->i++;
        skip_space(r);
        if (r->i >= r->len || (r->p[r->i] != '"' && r->p[r->i] != '\''))
            return NG_ERR_PARSE;
        q = r->p[r->i++];
        for (;;) {
            if (r->i >= r->len)
                return NG_ERR_PARSE;
            c = r->p[r->i];
            if (c == q)
                break;
            if (c == '<' || is_control(c))
                return NG_ERR_PARSE;
            if (c == '&') {
                err = entity(r, &c);
                if (err)
                    return err;
            } else {
                r->i++;
            }
        }
        r->i++;
    }
}

static ng_err
add_name(struct reader *r, const char *name)
{
    ng_propfind_names *out = r->out;

    if (out->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        char(*grown)[NG_PROPFIND_NAME_BYTES];

        if (cap > SIZE_MAX / NG_PROPFIND_NAME_BYTES)
            return NG_ERR_NOMEM;
        grown = realloc(out->name, cap * NG_PROPFIND_NAME_BYTES);
        if (grown == NULL)
            return NG_ERR_NOMEM;
        out->name = grown;
        r->cap = cap;
    }
    memcpy(out->name[out->n], name, NG_PROPFIND_NAME_LEN);
    out->name[out->n][NG_PROPFIND_NAME_LEN] = '\0';
    out->n++;
    return NG_OK;
}

static int
hex_value(char c)
{
    if (is_digit(c))
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/*
 * One finished href: keeps its last segment if it is a parcel name in the
 * expected parent, with no "." or ".." segment anywhere on the way.
 */
static ng_err
take_href(struct reader *r)
{
    char *s = r->href;
    size_t n = r->href_len, k, w, last, prev, seg;

    while (n > 0 && is_space(s[n - 1]))
        n--;
    while (n > 0 && is_space(s[0])) {
        s++;
        n--;
    }
    /* An absolute URL: keep its path. */
    if (n > 0 && is_alpha(s[0])) {
        for (k = 1; k < n && (is_alpha(s[k]) || is_digit(s[k]) || s[k] == '+' || s[k] == '-' || s[k] == '.'); k++)
            ;
        if (n - k >= 3 && memcmp(s + k, "://", 3) == 0) {
            for (k += 3; k < n && s[k] != '/'; k++)
                ;
            s += k;
            n -= k;
        }
    }
    /* Percent-decoding in place: the output never outruns the input. */
    for (k = 0, w = 0; k < n; k++) {
        if (s[k] == '%') {
            int hi = k + 2 < n ? hex_value(s[k + 1]) : -1, lo = k + 2 < n ? hex_value(s[k + 2]) : -1;

            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return NG_ERR_PARSE;
            s[w++] = (char)(hi * 16 + lo);
            k += 2;
        } else {
            s[w++] = s[k];
        }
    }
    n = w;
    for (last = n; last > 0 && s[last - 1] != '/'; last--)
        ;
    if (last == 0 || !ng_propfind_is_name(s + last, n - last))
        return NG_OK;
    for (prev = last - 1; prev > 0 && s[prev - 1] != '/'; prev--)
        ;
    if (r->parent != NULL && !same_ci(s + prev, last - 1 - prev, r->parent, strlen(r->parent)))
        return NG_OK;
    for (k = 0, seg = 0; k <= n; k++) {
        if (k == n || s[k] == '/') {
            if ((k - seg == 1 && s[seg] == '.') || (k - seg == 2 && s[seg] == '.' && s[seg + 1] == '.'))
                return NG_OK;
            seg = k + 1;
        }
    }
    return add_name(r, s + last);
}

static ng_err
start_tag(struct reader *r)
{
    struct span name;
    int empty, is_href;
    ng_err err;

    r->i++; /* '<' */
    err = read_name(r, &name);
    if (err)
        return err;
    err = attributes(r, &empty);
    if (err)
        return err;
    /* One root, a multistatus; nothing but the text inside an href. */
    if (r->root_done || r->in_href || r->depth == NG_PROPFIND_MAX_DEPTH)
        return NG_ERR_PARSE;
    if (r->depth == 0 && !local_is(r, name, "multistatus"))
        return NG_ERR_PARSE;
    if (r->depth == 1 && local_is(r, name, "response") && ++r->responses > r->max_entries)
        return NG_ERR_TOO_LARGE;
    is_href = r->depth == 2 && local_is(r, r->stack[1], "response") && local_is(r, name, "href");
    if (empty) {
        if (r->depth == 0)
            r->root_done = 1;
        return NG_OK;
    }
    r->stack[r->depth++] = name;
    if (is_href) {
        r->in_href = 1;
        r->href_len = 0;
    }
    return NG_OK;
}

static ng_err
end_tag(struct reader *r)
{
    struct span name, open;
    ng_err err;

    r->i += 2; /* "</" */
    err = read_name(r, &name);
    if (err)
        return err;
    skip_space(r);
    if (!starts(r, ">"))
        return NG_ERR_PARSE;
    r->i++;
    if (r->depth == 0)
        return NG_ERR_PARSE;
    open = r->stack[r->depth - 1];
    if (open.len != name.len || memcmp(r->p + open.off, r->p + name.off, name.len) != 0)
        return NG_ERR_PARSE;
    r->depth--;
    if (r->depth == 0)
        r->root_done = 1;
    if (r->in_href) {
        r->in_href = 0;
        return take_href(r);
    }
    return NG_OK;
}

static ng_err
markup(struct reader *r)
{
    if (r->in_href && !starts(r, "</"))
        return NG_ERR_PARSE;
    if (starts(r, "<?"))
        return skip_until(r, "?>");
    if (starts(r, "<!--"))
        return skip_until(r, "-->");
    /* DOCTYPE could define entities, CDATA could hide markup: neither belongs in a multistatus. */
    if (starts(r, "<!"))
        return NG_ERR_PARSE;
    if (starts(r, "</"))
        return end_tag(r);
    return start_tag(r);
}

static ng_err
text(struct reader *r)
{
    while (r->i < r->len && r->p[r->i] != '<') {
        char c = r->p[r->i];
        ng_err err;

        if (is_control(c))
            return NG_ERR_PARSE;
        /* Outside the root only whitespace may stand. */
        if (r->depth == 0 && !is_space(c))
            return NG_ERR_PARSE;
        if (c == '&') {
            err = entity(r, &c);
            if (err)
                return err;
        } else {
            r->i++;
        }
        if (r->in_href) {
            if (r->href_len == r->max_href)
                return NG_ERR_TOO_LARGE;
            r->href[r->href_len++] = c;
        }
    }
    return NG_OK;
}

static int
by_name(const void *a, const void *b)
{
    return memcmp(a, b, NG_PROPFIND_NAME_LEN);
}

ng_err
ng_propfind_parse(ng_propfind_names *out, const char *body, size_t len, const char *parent,
                  const ng_propfind_limits *lim)
{
    struct reader r;
    size_t max_bytes = NG_PROPFIND_DEFAULT_MAX_BYTES, k, w;
    ng_err err = NG_OK;

    out->name = NULL;
    out->n = 0;
    if (body == NULL && len > 0)
        return NG_ERR_INVALID_ARG;
    memset(&r, 0, sizeof r);
    r.p = body;
    r.len = len;
    r.parent = parent;
    r.out = out;
    r.max_entries = NG_PROPFIND_DEFAULT_MAX_ENTRIES;
    r.max_href = NG_PROPFIND_DEFAULT_MAX_HREF;
    if (lim != NULL) {
        max_bytes = lim->max_bytes ? lim->max_bytes : max_bytes;
        r.max_entries = lim->max_entries ? lim->max_entries : r.max_entries;
        r.max_href = lim->max_href ? lim->max_href : r.max_href;
    }
    if (len > max_bytes)
        return NG_ERR_TOO_LARGE;
    if (len > 0 && memchr(body, '\0', len) != NULL)
        return NG_ERR_PARSE;
    if (r.max_href == SIZE_MAX || (r.href = malloc(r.max_href + 1)) == NULL)
        return NG_ERR_NOMEM;
    /* A UTF-8 byte order mark. */
    if (starts(&r, "\xEF\xBB\xBF"))
        r.i = 3;
    while (err == NG_OK && r.i < r.len)
        err = r.p[r.i] == '<' ? markup(&r) : text(&r);
    if (err == NG_OK && !r.root_done)
        err = NG_ERR_PARSE;
    free(r.href);
    if (err) {
        ng_propfind_names_free(out);
        return err;
    }
    if (out->n > 1) {
        qsort(out->name, out->n, sizeof out->name[0], by_name);
        for (k = 1, w = 1; k < out->n; k++)
            if (by_name(out->name[k], out->name[w - 1]) != 0) {
                if (w != k)
                    memcpy(out->name[w], out->name[k], NG_PROPFIND_NAME_BYTES);
                w++;
            }
        out->n = w;
    }
    return NG_OK;
}

void
ng_propfind_names_free(ng_propfind_names *l)
{
    if (l == NULL)
        return;
    free(l->name);
    l->name = NULL;
    l->n = 0;
}

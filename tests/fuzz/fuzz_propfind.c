/*
 * fuzz_propfind: ng_propfind_parse on arbitrary bytes as the multistatus
 * reply of a WebDAV server (HTTP storage outboxes are listed with PROPFIND
 * Depth: 1, and the server is not ours).
 *
 * The input: byte 0 picks two small limits (max_entries 1-16 from its low
 * nibble, max_href 1-241 from its high one); the rest is the reply, in an
 * exact-size heap block, so ASan sees a read past its end.
 *
 * What the target holds the reader to (a violation aborts), with the parent
 * fixed to a recipient key id as the queue passes it:
 *   - failure is PARSE or TOO_LARGE and leaves the list empty; the same
 *     reply gives the same answer every time;
 *   - success gives names that are parcel names (checked by a model of the
 *     name written here), NUL-terminated, strictly ascending (sorted, no
 *     duplicates) and no more than the reply has href end tags;
 *   - the parent matches ASCII case-insensitively (an upper-case parent
 *     gives the same answer), and with no parent at all the reply parses or
 *     fails alike and the names are a superset;
 *   - limits: max_bytes of exactly the length changes nothing and one less
 *     is TOO_LARGE; small max_entries and max_href give the same answer or
 *     TOO_LARGE, never another one;
 *   - a reply that parses still does after a byte order mark before it or
 *     whitespace after it (with the same names), and not with text or a
 *     second element after its root.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "ng_propfind.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PARENT       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define PARENT_UPPER "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"

static unsigned long long n_runs, n_ok, n_names;

static void
print_stats(void)
{
    fprintf(stderr, "fuzz_propfind: %llu inputs, %llu parsed, %llu names\n", n_runs, n_ok, n_names);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (getenv("NG_FUZZ_STATS") != NULL)
        atexit(print_stats);
    return 0;
}

/* `<13 digits>-<32 lower-case hex>.ngp`, written again here. */
static int
model_name(const char *s)
{
    size_t i;

    if (strlen(s) != 50 || s[13] != '-' || strcmp(s + 46, ".ngp") != 0)
        return 0;
    for (i = 0; i < 13; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    for (i = 14; i < 46; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* Parses len bytes from an exact-size heap copy. */
static ng_err
parse(ng_propfind_names *out, const uint8_t *body, size_t len, const char *parent, const ng_propfind_limits *lim)
{
    char *copy = malloc(len > 0 ? len : 1);
    ng_err err;

    CHECK(copy != NULL);
    if (len > 0)
        memcpy(copy, body, len);
    memset(out, 0xa5, sizeof *out);
    err = ng_propfind_parse(out, len > 0 ? copy : NULL, len, parent, lim);
    free(copy);
    if (err != NG_OK) {
        CHECK(err == NG_ERR_PARSE || err == NG_ERR_TOO_LARGE);
        CHECK(out->name == NULL && out->n == 0);
    }
    return err;
}

static int
same(ng_err e1, const ng_propfind_names *a, ng_err e2, const ng_propfind_names *b)
{
    return e1 == e2 && a->n == b->n && (a->n == 0 || memcmp(a->name, b->name, a->n * sizeof a->name[0]) == 0);
}

/* Whether every name of a is in b (both sorted). */
static int
subset(const ng_propfind_names *a, const ng_propfind_names *b)
{
    size_t i, j = 0;

    for (i = 0; i < a->n; i++) {
        while (j < b->n && strcmp(b->name[j], a->name[i]) < 0)
            j++;
        if (j == b->n || strcmp(b->name[j], a->name[i]) != 0)
            return 0;
    }
    return 1;
}

static size_t
count(const uint8_t *s, size_t len, const char *needle)
{
    size_t i, n = 0, k = strlen(needle);

    for (i = 0; i + k <= len; i++)
        if (memcmp(s + i, needle, k) == 0)
            n++;
    return n;
}

static void
check_names(const ng_propfind_names *l, const uint8_t *body, size_t len)
{
    size_t i;

    /* Each name came from its own href element, which ends with "</" and "href" somewhere after. */
    CHECK(l->n <= count(body, len, "</"));
    for (i = 0; i < l->n; i++) {
        CHECK(memchr(l->name[i], 0, NG_PROPFIND_NAME_BYTES) != NULL);
        CHECK(model_name(l->name[i]));
        CHECK(ng_propfind_is_name(l->name[i], strlen(l->name[i])));
        if (i > 0)
            CHECK(strcmp(l->name[i - 1], l->name[i]) < 0);
    }
}

/* body with extra bytes before and after it. */
static ng_err
parse_wrapped(ng_propfind_names *out, const char *before, const uint8_t *body, size_t len, const char *after)
{
    size_t b = strlen(before), a = strlen(after);
    uint8_t *w = malloc(b + len + a + 1);
    ng_err err;

    CHECK(w != NULL);
    memcpy(w, before, b);
    if (len > 0)
        memcpy(w + b, body, len);
    memcpy(w + b + len, after, a);
    err = parse(out, w, b + len + a, PARENT, NULL);
    free(w);
    return err;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ng_propfind_names l, again, other;
    ng_propfind_limits lim;
    const uint8_t *body = data + 1;
    size_t len;
    ng_err err, e;

    if (size < 1)
        return 0;
    n_runs++;
    len = size - 1;
    err = parse(&l, body, len, PARENT, NULL);
    if (err == NG_OK) {
        n_ok++;
        n_names += l.n;
        check_names(&l, body, len);
    }
    e = parse(&again, body, len, PARENT, NULL);
    CHECK(same(err, &l, e, &again));
    ng_propfind_names_free(&again);
    CHECK(again.name == NULL && again.n == 0);

    /* The parent, case-insensitively; no parent: a superset. */
    e = parse(&other, body, len, PARENT_UPPER, NULL);
    CHECK(same(err, &l, e, &other));
    ng_propfind_names_free(&other);
    e = parse(&other, body, len, NULL, NULL);
    CHECK(e == err);
    if (e == NG_OK) {
        check_names(&other, body, len);
        CHECK(subset(&l, &other));
    }
    ng_propfind_names_free(&other);

    /* Limits. */
    memset(&lim, 0, sizeof lim);
    lim.max_bytes = len;
    e = parse(&other, body, len, PARENT, len > 0 ? &lim : NULL);
    CHECK(same(err, &l, e, &other));
    ng_propfind_names_free(&other);
    if (len > 1) {
        lim.max_bytes = len - 1;
        CHECK(parse(&other, body, len, PARENT, &lim) == NG_ERR_TOO_LARGE);
    }
    memset(&lim, 0, sizeof lim);
    lim.max_entries = (size_t)(data[0] & 15) + 1;
    e = parse(&other, body, len, PARENT, &lim);
    CHECK(e == NG_ERR_TOO_LARGE || same(err, &l, e, &other));
    ng_propfind_names_free(&other);
    memset(&lim, 0, sizeof lim);
    lim.max_href = (size_t)(data[0] >> 4) * 16 + 1;
    e = parse(&other, body, len, PARENT, &lim);
    CHECK(e == NG_ERR_TOO_LARGE || same(err, &l, e, &other));
    ng_propfind_names_free(&other);

    /* What may and may not stand around the root. */
    if (err == NG_OK) {
        e = parse_wrapped(&other, len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0 ? "" : "\xEF\xBB\xBF", body, len,
                          " \r\n\t");
        CHECK(same(err, &l, e, &other));
        ng_propfind_names_free(&other);
        CHECK(parse_wrapped(&other, "", body, len, "x") == NG_ERR_PARSE);
        CHECK(parse_wrapped(&other, "", body, len, "<multistatus/>") == NG_ERR_PARSE);
    }
    ng_propfind_names_free(&l);
    return 0;
}

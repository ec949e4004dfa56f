/*
 * The HTTP storage backend of the outbox and its PROPFIND reader.
 *
 * The reader is tested on its own: replies of nginx, Apache-style and other
 * servers, every truncation and thousands of byte mutations of a valid
 * reply (under ASan, each input in a buffer of exactly its size, so a read
 * past the end is caught), hostile documents, limits, names and paths that
 * must be ignored.
 *
 * The backend runs against a real nginx (dav + dav-ext) started for the
 * suite: order and cursors, a restart and a new handle, trim, nginx down
 * and hung, 5xx retried and 4xx not, no redirects, size limits, a garbage
 * listing, an object gone between listing and GET, MKCOL after a 409,
 * one reused connection, and the caller's hooks (an address guard that
 * refuses 127.0.0.1 fails each operation at once, sends nothing, and lets
 * the next request through once it allows it). Each test works in an
 * outbox of its own (a random key id).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>
#include <sodium.h>

#include "ng_deliver.h"
#include "ng_hex.h"
#include "ng_parcel.h"
#include "ng_propfind.h"
#include "ng_queue.h"
#include "ng_queue_http.h"
#include "nginx_server.h"

#define HEX   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define OTHER "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define N1    "1700000000000-00112233445566778899aabbccddeeff.ngp"
#define N2    "1700000000001-00112233445566778899aabbccddeeff.ngp"
#define N3    "1700000000002-ffeeddccbbaa99887766554433221100.ngp"
#define META  "{\"content_type\":\"text/plain\"}"

/* The ghost location lists GHOST_A, which exists, and GHOST_B, which does not. */
#define GHOST_HEX "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define GHOST_A   "1700000000000-0000000000000000000000000000000a.ngp"
#define GHOST_B   "1700000000001-0000000000000000000000000000000b.ngp"
#define GHOST_LISTING                                                                                                  \
    "<?xml version=\"1.0\" encoding=\"utf-8\" ?><D:multistatus xmlns:D=\"DAV:\">"                                      \
    "<D:response><D:href>/ghost/" GHOST_HEX "/</D:href></D:response>"                                                  \
    "<D:response><D:href>/ghost/" GHOST_HEX "/" GHOST_B "</D:href></D:response>"                                       \
    "<D:response><D:href>/ghost/" GHOST_HEX "/" GHOST_A "</D:href></D:response>"                                       \
    "</D:multistatus>"

static struct nginx_server ngx;
static ng_keypair g_recipient;

/* ------------------------------------------------------------------ */
/* The PROPFIND reader                                                 */

/* nginx 1.22 with dav-ext 3.0, as captured (allprop). */
static const char nginx_reply[] =
    "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n"
    "<D:multistatus xmlns:D=\"DAV:\">\n"
    "<D:response>\n"
    "<D:href>/outbox/" HEX "/</D:href>\n"
    "<D:propstat>\n<D:prop>\n<D:displayname>" HEX "</D:displayname>\n"
    "<D:getlastmodified>Tue, 24 Nov 2026 04:18:07 GMT</D:getlastmodified>\n"
    "<D:resourcetype><D:collection/></D:resourcetype>\n<D:lockdiscovery/>\n<D:supportedlock>\n</D:supportedlock>\n"
    "</D:prop>\n<D:status>HTTP/1.1 200 OK</D:status>\n</D:propstat>\n"
    "</D:response>\n"
    "<D:response>\n"
    "<D:href>/outbox/" HEX "/" N2 "</D:href>\n"
    "<D:propstat>\n<D:prop>\n<D:displayname>" N2 "</D:displayname>\n"
    "<D:getcontentlength>3</D:getcontentlength>\n"
    "<D:getlastmodified>Tue, 24 Nov 2026 04:18:07 GMT</D:getlastmodified>\n"
    "<D:resourcetype></D:resourcetype>\n<D:lockdiscovery/>\n<D:supportedlock>\n</D:supportedlock>\n"
    "</D:prop>\n<D:status>HTTP/1.1 200 OK</D:status>\n</D:propstat>\n"
    "</D:response>\n"
    "<D:response>\n"
    "<D:href>/outbox/" HEX "/a%20b&amp;c.ngp</D:href>\n"
    "<D:propstat>\n<D:prop>\n<D:displayname>a b&amp;c.ngp</D:displayname>\n"
    "<D:resourcetype></D:resourcetype>\n</D:prop>\n<D:status>HTTP/1.1 200 OK</D:status>\n</D:propstat>\n"
    "</D:response>\n"
    "<D:response>\n"
    "<D:href>/outbox/" HEX "/" N1 "</D:href>\n"
    "<D:propstat>\n<D:prop>\n<D:resourcetype></D:resourcetype>\n</D:prop>\n"
    "<D:status>HTTP/1.1 200 OK</D:status>\n</D:propstat>\n"
    "</D:response>\n"
    "</D:multistatus>\n";

/* Apache mod_dav: D: prefix, other namespaces on the responses, absolute paths. */
static const char apache_reply[] =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
    "<D:multistatus xmlns:D=\"DAV:\" xmlns:ns0=\"DAV:\">\n"
    "<D:response xmlns:lp1=\"DAV:\" xmlns:lp2=\"http://apache.org/dav/props/\">\n"
    "<D:href>/dav/outbox/" HEX "/</D:href>\n"
    "<D:propstat>\n<D:prop>\n<lp1:resourcetype><D:collection/></lp1:resourcetype>\n</D:prop>\n"
    "<D:status>HTTP/1.1 200 OK</D:status>\n</D:propstat>\n"
    "</D:response>\n"
    "<D:response xmlns:lp1=\"DAV:\" xmlns:lp2=\"http://apache.org/dav/props/\">\n"
    "<D:href>/dav/outbox/" HEX "/" N3 "</D:href>\n"
    "<D:propstat>\n<D:prop>\n<lp1:resourcetype/>\n<lp2:executable>F</lp2:executable>\n</D:prop>\n"
    "<D:status>HTTP/1.1 200 OK</D:status>\n</D:propstat>\n"
    "</D:response>\n"
    "<D:response xmlns:lp1=\"DAV:\" xmlns:lp2=\"http://apache.org/dav/props/\">\n"
    "<D:href>/dav/outbox/" HEX "/" N1 "</D:href>\n"
    "<D:propstat>\n<D:prop>\n<lp1:resourcetype/>\n</D:prop>\n"
    "<D:status>HTTP/1.1 200 OK</D:status>\n</D:propstat>\n"
    "</D:response>\n"
    "</D:multistatus>\n";

/* A sabre/dav-like server: lowercase d: prefix, full URLs, percent-encoded names. */
static const char lower_reply[] =
    "<?xml version=\"1.0\"?>\n"
    "<d:multistatus xmlns:d=\"DAV:\" xmlns:s=\"http://sabredav.org/ns\">\n"
    " <d:response>\n  <d:href>https://store.example:8443/remote.php/dav/outbox/" HEX "/</d:href>\n"
    "  <d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop>"
    "<d:status>HTTP/1.1 200 OK</d:status></d:propstat>\n </d:response>\n"
    " <d:response>\n  <d:href>https://store.example:8443/remote.php/dav/outbox/" HEX
    "/1700000000001%2D00112233445566778899aabbccddeeff%2Engp</d:href>\n"
    "  <d:propstat><d:prop><d:resourcetype/></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>\n"
    " </d:response>\n"
    "</d:multistatus>\n";

/* No prefix at all: DAV: as the default namespace, single-quoted attributes, a comment. */
static const char bare_reply[] = "<?xml version='1.0' encoding='UTF-8'?>\n"
                                 "<!-- listing -->\n"
                                 "<multistatus xmlns='DAV:'>"
                                 "<response><href>/o/" HEX "/</href></response>"
                                 "<response><href>\n  /o/" HEX "/" N3 "\n</href>"
                                 "<propstat><prop><resourcetype/></prop></propstat></response>"
                                 "</multistatus>";

/* Parses exactly len bytes from a heap copy of their size, so ASan sees any read past the end. */
static ng_err
parse_n(ng_propfind_names *out, const char *body, size_t len, const char *parent, const ng_propfind_limits *lim)
{
    char *copy = malloc(len > 0 ? len : 1);
    ng_err err;

    assert_non_null(copy);
    memcpy(copy, body, len);
    err = ng_propfind_parse(out, copy, len, parent, lim);
    free(copy);
    return err;
}

static ng_err
parse(ng_propfind_names *out, const char *body, const char *parent)
{
    return parse_n(out, body, strlen(body), parent, NULL);
}

static void
expect_names(const char *body, const char *parent, const char *const *want, size_t n_want)
{
    ng_propfind_names names;
    size_t i;

    assert_int_equal(parse(&names, body, parent), NG_OK);
    assert_int_equal(names.n, n_want);
    for (i = 0; i < n_want; i++)
        assert_string_equal(names.name[i], want[i]);
    ng_propfind_names_free(&names);
}

static void
test_propfind_servers(void **state)
{
    const char *const nginx_want[] = {N1, N2};
    const char *const apache_want[] = {N1, N3};
    const char *const lower_want[] = {N2};
    const char *const bare_want[] = {N3};

    (void)state;
    expect_names(nginx_reply, HEX, nginx_want, 2);
    expect_names(apache_reply, HEX, apache_want, 2);
    expect_names(lower_reply, HEX, lower_want, 1);
    expect_names(bare_reply, HEX, bare_want, 1);
    /* Without a parent, any directory will do. */
    expect_names(nginx_reply, NULL, nginx_want, 2);
    /* With another parent, nothing. */
    expect_names(nginx_reply, OTHER, NULL, 0);
}

static void
test_propfind_names_and_paths_ignored(void **state)
{
    static const char *const ignored[] = {
        "/o/" HEX "/1700000000000-00112233445566778899AABBCCDDEEFF.ngp", /* uppercase hex */
        "/o/" HEX "/170000000000-00112233445566778899aabbccddeeff.ngp",  /* 12 digits */
        "/o/" HEX "/17000000000000-00112233445566778899aabbccddeeff.ngp",
        "/o/" HEX "/1700000000000_00112233445566778899aabbccddeeff.ngp",
        "/o/" HEX "/1700000000000-00112233445566778899aabbccddeeff.NGP",
        "/o/" HEX "/1700000000000-00112233445566778899aabbccddeeff.ngp.tmp",
        "/o/" HEX "/x1700000000000-00112233445566778899aabbccddeeff.ngp",
        "/o/" HEX "/1700000000000-00112233445566778899aabbccddeeff0.ngp",
        "/o/" HEX "/1700000000000-00112233445566778899aabbccddeef.ngp",
        "/o/" HEX "/1700000000000-00112233445566778899aabbccddeeff.ngp/",
        "/o/" HEX "/" N1 "?x=1",
        "/o/" HEX "/" N1 "%20",
        "/o/" HEX "/sub/" N1,              /* a subdirectory */
        "/o/" OTHER "/" N1,                /* another key id */
        "/o/" HEX "/../" HEX "/" N1,       /* dot segments, however spelled */
        "/o/../" HEX "/" N1,               /* dot segments, however spelled */
        "/o/%2e%2E/" HEX "/" N1,           /* dot segments, however spelled */
        "/o/" HEX "/%2e/" N1,              /* a "." parent */
        "/o/" HEX "%2F..%2F" OTHER "/" N1, /* an encoded slash */
        N1,                                /* relative, no parent */
        "/" N1,                            /* no parent */
        "http://h",                        /* no path */
        "/o/" HEX "/",                     /* the collection */
        "",
    };
    ng_propfind_names names;
    char body[1024];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
        snprintf(body, sizeof body,
                 "<D:multistatus xmlns:D=\"DAV:\"><D:response><D:href>%s</D:href></D:response>"
                 "<D:response><D:href>/o/" HEX "/" N2 "</D:href></D:response></D:multistatus>",
                 ignored[i]);
        assert_int_equal(parse(&names, body, HEX), NG_OK);
        if (names.n != 1 || strcmp(names.name[0], N2) != 0)
            fail_msg("href \"%s\" was not ignored", ignored[i]);
        ng_propfind_names_free(&names);
    }
    /* An href below the response (a lock owner, a principal) is not the response's. */
    expect_names("<D:multistatus xmlns:D=\"DAV:\"><D:response><D:href>/o/" HEX "/</D:href>"
                 "<D:propstat><D:prop><D:owner><D:href>/o/" HEX "/" N1 "</D:href></D:owner></D:prop></D:propstat>"
                 "</D:response></D:multistatus>",
                 HEX, NULL, 0);
    /* An href directly under multistatus is not in a response. */
    expect_names("<D:multistatus xmlns:D=\"DAV:\"><D:href>/o/" HEX "/" N1 "</D:href></D:multistatus>", HEX, NULL, 0);
}

static void
test_propfind_sorted_unique(void **state)
{
    const char *const want[] = {N1, N2, N3};
    const char *const want_one[] = {N1};

    (void)state;
    expect_names("<multistatus>"
                 "<response><href>/o/" HEX "/" N3 "</href></response>"
                 "<response><href>/o/" HEX "/" N1 "</href></response>"
                 "<response><href>/o/" HEX "/" N2 "</href></response>"
                 "<response><href>/o/" HEX "/" N1 "</href></response>"
                 "</multistatus>",
                 HEX, want, 3);
    /* Several hrefs in one response (the href* + status form) are all taken. */
    expect_names("<multistatus><response><href>/o/" HEX "/" N1 "</href><href>/o/" HEX "/" N1
                 "</href><status>HTTP/1.1 200 OK</status></response></multistatus>",
                 HEX, want_one, 1);
    /* Empty and self-closed documents list nothing. */
    expect_names("<D:multistatus xmlns:D=\"DAV:\"/>", HEX, NULL, 0);
    expect_names("\xEF\xBB\xBF<D:multistatus xmlns:D=\"DAV:\"></D:multistatus >\n\n", HEX, NULL, 0);
    expect_names("<multistatus><response><href/></response></multistatus>", HEX, NULL, 0);
}

static void
test_propfind_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "   ",
        "<D:multistatus xmlns:D=\"DAV:\">",
        "<D:multistatus xmlns:D=\"DAV:\"><D:response><D:href>/o/" HEX "/" N1 "</D:href></D:response>",
        "<D:multistatus",
        "<D:multistatus xmlns:D=\"DAV:></D:multistatus>",
        "<D:multistatus xmlns:D='DAV:\"></D:multistatus>",
        "<D:multistatus xmlns:D></D:multistatus>",
        "<D:multistatus xmlns:D=DAV:></D:multistatus>",
        "<D:multistatus a='1'b='2'></D:multistatus>",
        "<D:multistatus a='<'></D:multistatus>",
        "<D:multistatus a='&bogus;'></D:multistatus>",
        "<D:multistatus><D:response></D:multistatus></D:response>",
        "<D:multistatus></d:multistatus>",
        "<D:multistatus></D:multistatus></D:multistatus>",
        "</D:multistatus>",
        "<D:multistatus><D:response><D:href>/o/" HEX "/<b/>" N1 "</D:href></D:response></D:multistatus>",
        "<D:multistatus><D:response><D:href>/o/" HEX "/<!-- x -->" N1 "</D:href></D:response></D:multistatus>",
        "<D:multistatus><D:response><D:href><![CDATA[/o/" HEX "/" N1 "]]></D:href></D:response></D:multistatus>",
        "<D:multistatus><![CDATA[x]]></D:multistatus>",
        "<!DOCTYPE m [<!ENTITY e \"/o/" HEX "/" N1 "\">]><multistatus><response><href>&e;</href></response>"
        "</multistatus>",
        "<multistatus><response><href>/o/" HEX "/&#49;700000000000-00112233445566778899aabbccddeeff.ngp</href>"
        "</response></multistatus>",
        "<multistatus><response><href>/o/" HEX "/&#x31;700000000000-00112233445566778899aabbccddeeff.ngp</href>"
        "</response></multistatus>",
        "<multistatus>&amp</multistatus>",
        "<multistatus>&nbsp;</multistatus>",
        "<multistatus>\x01</multistatus>",
        "<multistatus><response><href>/o/" HEX "/%zz</href></response></multistatus>",
        "<multistatus><response><href>/o/" HEX "/%2</href></response></multistatus>",
        "<multistatus><response><href>/o/" HEX "/%00" N1 "</href></response></multistatus>",
        "<D:multistatus/><D:multistatus/>",
        "<D:multistatus/>junk",
        "junk<D:multistatus/>",
        "&amp;<D:multistatus/>",
        "<html><body>404</body></html>",
        "<D:response><D:href>/o/" HEX "/" N1 "</D:href></D:response>",
        "<D:></D:>",
        "<1multistatus/>",
        "< multistatus/>",
        "<multistatus><!-- unterminated </multistatus>",
        "<?xml version='1.0'",
        "<multistatus><!x></multistatus>",
        "<multistatus",
        "<multistatus/",
        "<multistatus></multistatus",
        "<multistatus></>",
    };
    ng_propfind_names names;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ng_err err = parse(&names, bad[i], HEX);

        if (err != NG_ERR_PARSE)
            fail_msg("\"%s\": %s, not a parse error", bad[i], ng_strerror(err));
        assert_int_equal(names.n, 0);
        assert_null(names.name);
    }
    {
        /* A NUL byte anywhere. */
        static const char with_nul[] = "<multistatus><response><href>/o/" HEX "/" N1 "\0</href></response>"
                                       "</multistatus>";

        assert_int_equal(parse_n(&names, with_nul, sizeof with_nul - 1, HEX, NULL), NG_ERR_PARSE);
    }
    {
        /* Nesting: up to NG_PROPFIND_MAX_DEPTH elements, the root included, and not one more. */
        char deep[2048];
        int d, inner, off;

        for (inner = NG_PROPFIND_MAX_DEPTH - 1; inner <= NG_PROPFIND_MAX_DEPTH; inner++) {
            off = snprintf(deep, sizeof deep, "<multistatus>");
            for (d = 0; d < inner; d++)
                off += snprintf(deep + off, sizeof deep - (size_t)off, "<a>");
            for (d = 0; d < inner; d++)
                off += snprintf(deep + off, sizeof deep - (size_t)off, "</a>");
            snprintf(deep + off, sizeof deep - (size_t)off, "</multistatus>");
            assert_int_equal(parse(&names, deep, HEX), inner < NG_PROPFIND_MAX_DEPTH ? NG_OK : NG_ERR_PARSE);
            ng_propfind_names_free(&names);
        }
    }
}

/* Whether every name of got is one of the n names in want. */
static int
subset(const ng_propfind_names *got, const char *const *want, size_t n)
{
    size_t i, j;

    for (i = 0; i < got->n; i++) {
        for (j = 0; j < n && strcmp(got->name[i], want[j]) != 0; j++)
            ;
        if (j == n)
            return 0;
    }
    return 1;
}

static void
test_propfind_every_truncation(void **state)
{
    const char *const bodies[] = {nginx_reply, apache_reply, lower_reply, bare_reply};
    const char *const known[] = {N1, N2, N3};
    size_t b, len;

    (void)state;
    for (b = 0; b < sizeof bodies / sizeof bodies[0]; b++) {
        size_t full = strlen(bodies[b]);

        for (len = 0; len < full; len++) {
            ng_propfind_names names;
            ng_err err = parse_n(&names, bodies[b], len, HEX, NULL);

            if (err == NG_OK) {
                /* Only trailing whitespace can go without the document changing. */
                if (!subset(&names, known, 3))
                    fail_msg("body %zu cut at %zu lists a name it does not have", b, len);
                ng_propfind_names_free(&names);
            } else if (err != NG_ERR_PARSE) {
                fail_msg("body %zu cut at %zu: %s", b, len, ng_strerror(err));
            }
        }
    }
}

/* Every byte of a valid reply replaced by characters that matter to the reader: no crash, no bad name. */
static void
test_propfind_mutations(void **state)
{
    static const char subst[] = {'<', '>', '/', '&', ';', '"', '\'', '=', ':', '%', '!', '?', '-', ' ', '\0', 'x'};
    size_t len = strlen(nginx_reply), pos, s, i, parsed = 0;
    char *copy = malloc(len);

    (void)state;
    assert_non_null(copy);
    for (pos = 0; pos < len; pos++) {
        for (s = 0; s < sizeof subst; s++) {
            ng_propfind_names names;
            ng_err err;

            memcpy(copy, nginx_reply, len);
            copy[pos] = subst[s];
            err = ng_propfind_parse(&names, copy, len, HEX, NULL);
            if (err == NG_OK) {
                parsed++;
                for (i = 0; i < names.n; i++) {
                    assert_true(ng_propfind_is_name(names.name[i], strlen(names.name[i])));
                    if (i > 0)
                        assert_true(strcmp(names.name[i - 1], names.name[i]) < 0);
                }
                ng_propfind_names_free(&names);
            } else {
                assert_true(err == NG_ERR_PARSE);
                assert_int_equal(names.n, 0);
            }
        }
    }
    /* Mutations in text or attribute values still parse. */
    assert_true(parsed > 0);
    free(copy);
}

static void
test_propfind_limits(void **state)
{
    const size_t len = strlen(nginx_reply);
    ng_propfind_limits lim = {len, 0, 0};
    ng_propfind_names names;
    char body[1024];
    char *big;
    size_t i, off;

    (void)state;
    /* Size: at the limit accepted, one byte over refused before anything is read. */
    assert_int_equal(parse_n(&names, nginx_reply, len, HEX, &lim), NG_OK);
    assert_int_equal(names.n, 2);
    ng_propfind_names_free(&names);
    lim.max_bytes = len - 1;
    assert_int_equal(parse_n(&names, nginx_reply, len, HEX, &lim), NG_ERR_TOO_LARGE);
    assert_null(names.name);

    /* Responses: the nginx reply has four. */
    lim.max_bytes = 0;
    lim.max_entries = 4;
    assert_int_equal(parse_n(&names, nginx_reply, len, HEX, &lim), NG_OK);
    ng_propfind_names_free(&names);
    lim.max_entries = 3;
    assert_int_equal(parse_n(&names, nginx_reply, len, HEX, &lim), NG_ERR_TOO_LARGE);
    assert_int_equal(names.n, 0);

    /* One href: its length after entities. */
    lim.max_entries = 0;
    lim.max_href = strlen("/o/" HEX "/" N1);
    snprintf(body, sizeof body, "<multistatus><response><href>%s</href></response></multistatus>", "/o/" HEX "/" N1);
    assert_int_equal(parse(&names, body, HEX), NG_OK);
    ng_propfind_names_free(&names);
    assert_int_equal(parse_n(&names, body, strlen(body), HEX, &lim), NG_OK);
    ng_propfind_names_free(&names);
    lim.max_href--;
    assert_int_equal(parse_n(&names, body, strlen(body), HEX, &lim), NG_ERR_TOO_LARGE);

    /* The default entry limit, NG_PROPFIND_DEFAULT_MAX_ENTRIES, on a reply past the default size, in reverse order. */
    {
        const size_t per = strlen("<response><href>/o/" HEX "/" N1 "</href></response>");
        const size_t n = NG_PROPFIND_DEFAULT_MAX_ENTRIES + 1;
        const size_t cap = 64 + n * per;
        ng_propfind_limits roomy = {cap, 0, 0};

        big = malloc(cap);
        assert_non_null(big);
        off = (size_t)snprintf(big, cap, "<multistatus>");
        for (i = 0; i < n - 1; i++)
            off += (size_t)snprintf(big + off, cap - off,
                                    "<response><href>/o/" HEX "/%013zu-00112233445566778899aabbccddeeff.ngp</href>"
                                    "</response>",
                                    (size_t)1700000000000 + (n - i));
        off += (size_t)snprintf(big + off, cap - off, "</multistatus>");
        assert_int_equal(parse_n(&names, big, off, HEX, &roomy), NG_OK);
        assert_int_equal(names.n, n - 1);
        assert_string_equal(names.name[0], "1700000000002-00112233445566778899aabbccddeeff.ngp");
        for (i = 1; i < names.n; i++)
            assert_true(strcmp(names.name[i - 1], names.name[i]) < 0);
        ng_propfind_names_free(&names);
        /* The default size limit alone refuses it. */
        assert_int_equal(parse_n(&names, big, off, HEX, NULL), NG_ERR_TOO_LARGE);
        /* One more response is one too many. */
        off -= strlen("</multistatus>");
        off += (size_t)snprintf(big + off, cap - off, "<response><href>/o/</href></response></multistatus>");
        assert_int_equal(parse_n(&names, big, off, HEX, &roomy), NG_ERR_TOO_LARGE);
        assert_int_equal(names.n, 0);
        free(big);
    }
}

static void
test_propfind_is_name(void **state)
{
    (void)state;
    assert_true(ng_propfind_is_name(N1, strlen(N1)));
    assert_true(ng_propfind_is_name("0000000000000-00000000000000000000000000000000.ngp", NG_PROPFIND_NAME_LEN));
    assert_false(ng_propfind_is_name(N1, strlen(N1) - 1));
    assert_false(ng_propfind_is_name("", 0));
    assert_false(ng_propfind_is_name(NULL, 0));
    assert_false(ng_propfind_is_name("1700000000000-00112233445566778899aabbccddeeFF.ngp", NG_PROPFIND_NAME_LEN));
    assert_false(ng_propfind_is_name("17000000000a0-00112233445566778899aabbccddeeff.ngp", NG_PROPFIND_NAME_LEN));
    assert_false(ng_propfind_is_name("1700000000000-00112233445566778899aabbccddeeff.ngq", NG_PROPFIND_NAME_LEN));
}

/* ------------------------------------------------------------------ */
/* The backend against nginx                                           */

struct sealed {
    uint8_t bytes[512];
    size_t len;
    uint8_t msg_id[NG_QUEUE_MSG_ID_BYTES];
    uint64_t created, expires;
};

static void
seal(struct sealed *s, uint64_t created, uint64_t ttl)
{
    ng_seal_params sp;

    memset(&sp, 0, sizeof sp);
    sp.pattern = NG_PATTERN_N;
    sp.recipient_pub = g_recipient.pub;
    sp.meta = (const uint8_t *)META;
    sp.meta_len = strlen(META);
    sp.body = (const uint8_t *)"hello";
    sp.body_len = 5;
    sp.created_ms = created;
    sp.ttl_ms = ttl;
    assert_int_equal(ng_parcel_seal(s->bytes, sizeof s->bytes, &s->len, &sp), NG_OK);
    memcpy(s->msg_id, s->bytes + 8, NG_QUEUE_MSG_ID_BYTES);
    s->created = created;
    s->expires = created + ttl;
}

static ng_err
append(ng_queue *q, const uint8_t *key, const struct sealed *s, char id[NG_QUEUE_ID_BYTES])
{
    return ng_queue_outbox_append(q, "t1", key, s->msg_id, s->created, s->expires, s->bytes, s->len, id);
}

static ng_queue *
open_queue(const char *path, int timeout_ms)
{
    char url[256];
    ng_queue *q = NULL;

    snprintf(url, sizeof url, "%s%s", ngx.url, path);
    assert_int_equal(ng_queue_http_new(&q, url, timeout_ms), NG_OK);
    assert_non_null(q);
    return q;
}

static ng_queue *
open_queue_with(const char *path, const ng_queue_http_options *o)
{
    char url[256];
    ng_queue *q = NULL;

    snprintf(url, sizeof url, "%s%s", ngx.url, path);
    assert_int_equal(ng_queue_http_new_with(&q, url, o), NG_OK);
    return q;
}

static void
new_key(uint8_t key[NG_QUEUE_KEY_ID_BYTES], char hex[2 * NG_QUEUE_KEY_ID_BYTES + 1])
{
    randombytes_buf(key, NG_QUEUE_KEY_ID_BYTES);
    ng_hex_encode(hex, 2 * NG_QUEUE_KEY_ID_BYTES + 1, key, NG_QUEUE_KEY_ID_BYTES);
}

/* An object written behind the queue's back, straight into nginx's root. */
static void
write_object(const char *dir, const char *key_hex, const char *name, const uint8_t *data, size_t len)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof path, "mkdir -p '%s/%s/%s'", ngx.root, dir, key_hex);
    assert_int_equal(system(path), 0);
    snprintf(path, sizeof path, "%s/%s/%s/%s", ngx.root, dir, key_hex, name);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static int
object_exists(const char *dir, const char *key_hex, const char *name)
{
    char path[1024];
    struct stat st;

    snprintf(path, sizeof path, "%s/%s/%s/%s", ngx.root, dir, key_hex, name);
    return stat(path, &st) == 0;
}

static uint64_t
elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (uint64_t)((t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000);
}

/* The access log is written after the reply is sent: wait for it to catch up. */
static int
count_requests(const char *needle, int want)
{
    int i, n = 0;

    for (i = 0; i < 40 && (n = nginx_server_count(&ngx, needle)) < want; i++)
        loopback_nap(25);
    loopback_nap(50);
    return nginx_server_count(&ngx, needle);
}

static void
test_append_read_order(void **state)
{
    static const uint64_t created[] = {1700000000003, 1700000000001, 1700000000005, 1700000000002, 1700000000004};
    struct sealed s[5];
    char id[5][NG_QUEUE_ID_BYTES], key_hex[65], msg_hex[33], want[NG_QUEUE_ID_BYTES];
    uint8_t key[NG_QUEUE_KEY_ID_BYTES];
    ng_queue *q = open_queue("/outbox", 5000);
    ng_queue_batch b;
    size_t i, j;

    (void)state;
    new_key(key, key_hex);
    for (i = 0; i < 5; i++) {
        seal(&s[i], created[i], 60000);
        assert_int_equal(append(q, key, &s[i], id[i]), NG_OK);
        ng_hex_encode(msg_hex, sizeof msg_hex, s[i].msg_id, sizeof s[i].msg_id);
        snprintf(want, sizeof want, "%013llu-%s.ngp", (unsigned long long)created[i], msg_hex);
        assert_string_equal(id[i], want);
        assert_true(object_exists("outbox", key_hex, id[i]));
    }
    /* The same parcel again: the same object, not a second one. */
    assert_int_equal(append(q, key, &s[0], id[0]), NG_OK);

    assert_int_equal(ng_queue_outbox_read(q, "t1", key, NULL, 10, &b), NG_OK);
    assert_int_equal(b.n, 5);
    for (i = 0; i < 5; i++) {
        /* Oldest first: find which append this is. */
        for (j = 0; j < 5 && s[j].created != 1700000000001 + i; j++)
            ;
        assert_true(j < 5);
        assert_string_equal(b.items[i].id, id[j]);
        assert_int_equal(b.items[i].len, s[j].len);
        assert_memory_equal(b.items[i].data, s[j].bytes, s[j].len);
        assert_int_equal(b.items[i].expires_ms, s[j].expires);
    }
    assert_string_equal(b.next, b.items[4].id);
    ng_queue_batch_free(&b);
    ng_queue_free(q);
}

static void
read_ids(ng_queue *q, const uint8_t *key, const char *after, size_t limit, size_t n_want, char next[NG_QUEUE_ID_BYTES],
         char (*ids)[NG_QUEUE_ID_BYTES])
{
    ng_queue_batch b;
    size_t i;

    assert_int_equal(ng_queue_outbox_read(q, "t1", key, after, limit, &b), NG_OK);
    assert_int_equal(b.n, n_want);
    for (i = 0; i < b.n; i++)
        memcpy(ids[i], b.items[i].id, NG_QUEUE_ID_BYTES);
    memcpy(next, b.next, NG_QUEUE_ID_BYTES);
    ng_queue_batch_free(&b);
}

static void
test_cursor_resume(void **state)
{
    struct sealed s;
    char ids[6][NG_QUEUE_ID_BYTES], all[6][NG_QUEUE_ID_BYTES], got[2][NG_QUEUE_ID_BYTES];
    char cursor[NG_QUEUE_ID_BYTES] = "", key_hex[65];
    uint8_t key[NG_QUEUE_KEY_ID_BYTES];
    ng_queue *q = open_queue("/outbox", 5000);
    size_t round;

    (void)state;
    new_key(key, key_hex);
    for (round = 0; round < 6; round++) {
        seal(&s, 1700000000000 + round, 60000);
        assert_int_equal(append(q, key, &s, ids[round]), NG_OK);
    }
    for (round = 0; round < 3; round++) {
        read_ids(q, key, cursor, 2, 2, cursor, got);
        assert_string_equal(got[0], ids[2 * round]);
        assert_string_equal(got[1], ids[2 * round + 1]);
        assert_string_equal(cursor, ids[2 * round + 1]);
    }
    /* After the last one: an empty batch and no cursor. */
    read_ids(q, key, cursor, 2, 0, cursor, got);
    assert_string_equal(cursor, "");
    read_ids(q, key, ids[5], 100, 0, cursor, got);
    assert_string_equal(cursor, "");
    /* A cursor between names works too (names need not exist). */
    read_ids(q, key, "1700000000002-00000000000000000000000000000000.ngp", 100, 4, cursor, all);
    assert_string_equal(all[0], ids[2]);
    assert_string_equal(cursor, ids[5]);
    /* An outbox nobody wrote to is empty, not an error. */
    new_key(key, key_hex);
    read_ids(q, key, "", 10, 0, cursor, got);
    assert_string_equal(cursor, "");
    ng_queue_free(q);
}

static void
test_restart_and_new_handle(void **state)
{
    struct sealed s;
    char ids[3][NG_QUEUE_ID_BYTES], all[3][NG_QUEUE_ID_BYTES], got[2][NG_QUEUE_ID_BYTES], cursor[NG_QUEUE_ID_BYTES];
    char key_hex[65];
    uint8_t key[NG_QUEUE_KEY_ID_BYTES];
    ng_queue *q = open_queue("/outbox", 5000), *q2;
    size_t i;

    (void)state;
    new_key(key, key_hex);
    for (i = 0; i < 3; i++) {
        seal(&s, 1700000000100 + i, 60000);
        assert_int_equal(append(q, key, &s, ids[i]), NG_OK);
    }
    read_ids(q, key, "", 2, 2, cursor, got);
    assert_string_equal(cursor, ids[1]);

    assert_int_equal(nginx_server_restart(&ngx), 0);
    /* The old handle's connection died with nginx: it reconnects. */
    read_ids(q, key, cursor, 2, 1, cursor, got);
    assert_string_equal(got[0], ids[2]);
    /* A new handle resumes from a saved cursor. */
    q2 = open_queue("/outbox/", 5000);
    read_ids(q2, key, ids[1], 2, 1, cursor, got);
    assert_string_equal(got[0], ids[2]);
    read_ids(q2, key, "", 10, 3, cursor, all);
    for (i = 0; i < 3; i++)
        assert_string_equal(all[i], ids[i]);
    assert_string_equal(cursor, ids[2]);
    ng_queue_free(q2);
    ng_queue_free(q);
}

/* A parcel header (through expires) with a body of filler: all trim reads. */
static void
crafted(uint8_t *buf, size_t len, uint64_t created, uint64_t expires)
{
    int k;

    memset(buf, 0x5a, len);
    memcpy(buf, NG_PARCEL_MAGIC, 4);
    for (k = 0; k < 8; k++) {
        buf[24 + k] = (uint8_t)(created >> (56 - 8 * k));
        buf[32 + k] = (uint8_t)(expires >> (56 - 8 * k));
    }
}

static void
test_trim(void **state)
{
    const uint64_t now = 1700000100000;
    struct sealed old1, old2, edge, live, future;
    char id_old1[NG_QUEUE_ID_BYTES], id_old2[NG_QUEUE_ID_BYTES], id_edge[NG_QUEUE_ID_BYTES];
    char id_live[NG_QUEUE_ID_BYTES], id_future[NG_QUEUE_ID_BYTES], key_hex[65], line[300];
    static const char garbage_name[] = "1600000000000-000000000000000000000000000000aa.ngp";
    static const char short_name[] = "1600000000001-000000000000000000000000000000bb.ngp";
    static const char big_name[] = "1600000000002-000000000000000000000000000000cc.ngp";
    uint8_t key[NG_QUEUE_KEY_ID_BYTES];
    uint8_t *big = malloc(100000);
    ng_queue *q = open_queue("/outbox", 5000);
    ng_queue_batch b;
    size_t removed = 99;

    (void)state;
    assert_non_null(big);
    new_key(key, key_hex);
    seal(&old1, now - 50000, 10000); /* expired 40 s ago */
    seal(&old2, now - 40000, 39999); /* expired 1 ms ago */
    seal(&edge, now - 30000, 30000); /* expires now: expired (valid only while now < expires) */
    seal(&live, now - 20000, 20001); /* 1 ms to go */
    seal(&future, now + 1000, 1000); /* created after now */
    assert_int_equal(append(q, key, &old1, id_old1), NG_OK);
    assert_int_equal(append(q, key, &old2, id_old2), NG_OK);
    assert_int_equal(append(q, key, &edge, id_edge), NG_OK);
    assert_int_equal(append(q, key, &live, id_live), NG_OK);
    assert_int_equal(append(q, key, &future, id_future), NG_OK);
    /* Old names whose expiry cannot be read stay; a long expired one goes, read through a Range. */
    write_object("outbox", key_hex, garbage_name, (const uint8_t *)"not a parcel at all, not even close", 35);
    write_object("outbox", key_hex, short_name, (const uint8_t *)"NGP1\x01\x01", 6);
    crafted(big, 100000, 1600000000002, 1600000001000);
    write_object("outbox", key_hex, big_name, big, 100000);

    assert_int_equal(ng_queue_outbox_trim(q, "t1", key, now, &removed), NG_OK);
    assert_int_equal(removed, 4);
    assert_false(object_exists("outbox", key_hex, id_old1));
    assert_false(object_exists("outbox", key_hex, id_old2));
    assert_false(object_exists("outbox", key_hex, id_edge));
    assert_false(object_exists("outbox", key_hex, big_name));
    assert_true(object_exists("outbox", key_hex, id_live));
    assert_true(object_exists("outbox", key_hex, id_future));
    assert_true(object_exists("outbox", key_hex, garbage_name));
    assert_true(object_exists("outbox", key_hex, short_name));
    snprintf(line, sizeof line, "GET /outbox/%s/%s 206", key_hex, big_name);
    assert_int_equal(count_requests(line, 1), 1);
    /* Nothing was fetched of what was created after now. */
    snprintf(line, sizeof line, "GET /outbox/%s/%s", key_hex, id_future);
    assert_int_equal(nginx_server_count(&ngx, line), 0);

    assert_int_equal(ng_queue_outbox_trim(q, "t1", key, now, &removed), NG_OK);
    assert_int_equal(removed, 0);
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 100, &b), NG_OK);
    assert_int_equal(b.n, 4);
    assert_string_equal(b.items[0].id, garbage_name);
    assert_int_equal(b.items[0].expires_ms, 0);
    assert_string_equal(b.items[2].id, id_live);
    assert_int_equal(b.items[2].expires_ms, live.expires);
    ng_queue_batch_free(&b);
    /* Much later: the parcels go, what has no readable expiry stays. */
    assert_int_equal(ng_queue_outbox_trim(q, "t1", key, now + 1000000, &removed), NG_OK);
    assert_int_equal(removed, 2);
    assert_true(object_exists("outbox", key_hex, garbage_name));
    /* Trimming an outbox that does not exist removes nothing. */
    new_key(key, key_hex);
    assert_int_equal(ng_queue_outbox_trim(q, "t1", key, now, &removed), NG_OK);
    assert_int_equal(removed, 0);
    free(big);
    ng_queue_free(q);
}

static void
test_arguments(void **state)
{
    static const char *const bad_urls[] = {"ftp://127.0.0.1/x", "http://",      "http:///x",   "http://h/a?b",
                                           "http://h/a#f",      "http://h/a b", "127.0.0.1/x", "",
                                           "http://h/\x7f",     "https:/h/x",   "http//h/x"};
    struct sealed s;
    char id[NG_QUEUE_ID_BYTES], key_hex[65];
    uint8_t key[NG_QUEUE_KEY_ID_BYTES], other_id[NG_QUEUE_MSG_ID_BYTES] = {0};
    ng_queue_http_options o;
    ng_queue *q = open_queue("/outbox", 5000), *small;
    ng_queue_batch b;
    uint64_t w, d;
    size_t i, removed;

    (void)state;
    new_key(key, key_hex);
    seal(&s, 1700000000000, 60000);
    /* The header must agree with the arguments: trim relies on it. */
    assert_int_equal(ng_queue_outbox_append(q, "t1", key, s.msg_id, s.created, s.expires + 1, s.bytes, s.len, id),
                     NG_ERR_INVALID_ARG);
    assert_string_equal(id, "");
    assert_int_equal(ng_queue_outbox_append(q, "t1", key, s.msg_id, s.created + 1, s.expires, s.bytes, s.len, id),
                     NG_ERR_INVALID_ARG);
    assert_int_equal(ng_queue_outbox_append(q, "t1", key, other_id, s.created, s.expires, s.bytes, s.len, id),
                     NG_ERR_INVALID_ARG);
    assert_int_equal(ng_queue_outbox_append(q, "t1", key, s.msg_id, s.created, s.expires, s.bytes, 39, id),
                     NG_ERR_INVALID_ARG);
    assert_int_equal(ng_queue_outbox_append(q, "t1", NULL, s.msg_id, s.created, s.expires, s.bytes, s.len, id),
                     NG_ERR_INVALID_ARG);
    assert_int_equal(ng_queue_outbox_append(q, "t1", key, s.msg_id, 10000000000000ULL, s.expires, s.bytes, s.len, id),
                     NG_ERR_INVALID_ARG);
    /* Nothing reached the store. */
    assert_false(object_exists("outbox", key_hex, ""));

    /* Cursors are names this backend gave. */
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "0-1", 10, &b), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "1700000000000-00112233445566778899AABBCCDDEEFF.ngp", 10, &b),
                     NG_ERR_INVALID_ARG);
    assert_int_equal(ng_queue_outbox_read(q, "t1", NULL, "", 10, &b), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 0, &b), NG_OK);
    assert_int_equal(b.n, 0);
    assert_string_equal(b.next, "");
    assert_int_equal(ng_queue_outbox_trim(q, "t1", key, 1, NULL), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_queue_outbox_trim(q, "t1", NULL, 1, &removed), NG_ERR_INVALID_ARG);

    /* The other operations are not this backend's. */
    assert_int_equal(ng_queue_inbox_accept(q, "t1", s.msg_id, 1, s.bytes, 1, id), NG_ERR_UNSUPPORTED);
    assert_int_equal(ng_queue_inbox_claim(q, "t1", "c", 1, 1, &b), NG_ERR_UNSUPPORTED);
    assert_int_equal(ng_queue_inbox_depth(q, "t1", &w, &d), NG_ERR_UNSUPPORTED);
    assert_int_equal(ng_queue_replay_check(q, "t1", s.msg_id, 1), NG_ERR_UNSUPPORTED);
    assert_int_equal(ng_queue_cursor_get(q, "t1", "p", id), NG_ERR_UNSUPPORTED);
    assert_int_equal(ng_queue_lease_take(q, "t1", "p", "o", 1), NG_ERR_UNSUPPORTED);
    ng_queue_free(q);

    /* A parcel over the ceiling is refused before anything is sent. */
    ng_queue_http_options_init(&o, 5000);
    o.max_parcel_bytes = s.len - 1;
    small = open_queue_with("/outbox", &o);
    assert_int_equal(append(small, key, &s, id), NG_ERR_TOO_LARGE);
    ng_queue_free(small);

    for (i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        q = (ng_queue *)&q;
        if (ng_queue_http_new(&q, bad_urls[i], 1000) != NG_ERR_PARSE)
            fail_msg("accepted base URL \"%s\"", bad_urls[i]);
        assert_null(q);
    }
    assert_int_equal(ng_queue_http_new(&q, NULL, 1000), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_queue_http_new(&q, "http://h/x", 0), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_queue_http_new(NULL, "http://h/x", 1000), NG_ERR_INVALID_ARG);
    o.retries = 11;
    assert_int_equal(ng_queue_http_new_with(&q, "http://h/x", &o), NG_ERR_INVALID_ARG);
    o.retries = 0;
    o.backoff_ms = -1;
    assert_int_equal(ng_queue_http_new_with(&q, "http://h/x", &o), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_queue_http_new(&q, "HTTPS://h:1/x//", 1000), NG_OK);
    ng_queue_free(q);
    ng_queue_free(NULL);
}

static void
test_nginx_down(void **state)
{
    struct sealed s, s2;
    char id[NG_QUEUE_ID_BYTES], key_hex[65];
    uint8_t key[NG_QUEUE_KEY_ID_BYTES];
    ng_queue *q = open_queue("/outbox", 500);
    struct timespec t0;
    ng_queue_batch b;
    size_t removed = 7;

    (void)state;
    new_key(key, key_hex);
    seal(&s, 1700000000000, 60000);
    seal(&s2, 1700000000001, 60000);
    assert_int_equal(append(q, key, &s, id), NG_OK);

    nginx_server_halt(&ngx);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_ERR_UNAVAILABLE);
    assert_int_equal(b.n, 0);
    assert_null(b.items);
    assert_int_equal(append(q, key, &s2, id), NG_ERR_UNAVAILABLE);
    assert_string_equal(id, "");
    assert_int_equal(ng_queue_outbox_trim(q, "t1", key, 1800000000000, &removed), NG_ERR_UNAVAILABLE);
    assert_int_equal(removed, 0);
    /* Refused connections are retried briefly, not for the whole timeout each. */
    assert_true(elapsed_ms(&t0) < 1500);

    assert_int_equal(nginx_server_run(&ngx), 0);
    assert_int_equal(append(q, key, &s2, id), NG_OK);
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_OK);
    assert_int_equal(b.n, 2);
    ng_queue_batch_free(&b);
    ng_queue_free(q);
}

static void
test_nginx_hung(void **state)
{
    struct sealed s;
    char id[NG_QUEUE_ID_BYTES], key_hex[65];
    uint8_t key[NG_QUEUE_KEY_ID_BYTES];
    ng_queue *q = open_queue("/outbox", 300);
    struct timespec t0;
    ng_queue_batch b;

    (void)state;
    new_key(key, key_hex);
    seal(&s, 1700000000000, 60000);
    assert_int_equal(append(q, key, &s, id), NG_OK);

    /* Stopped, nginx still has its socket: connections are accepted by the kernel, never answered. */
    assert_int_equal(kill(ngx.pid, SIGSTOP), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_ERR_UNAVAILABLE);
    assert_int_equal(append(q, key, &s, id), NG_ERR_UNAVAILABLE);
    /* Each request within its timeout, retries included. */
    assert_true(elapsed_ms(&t0) < 1500);
    assert_int_equal(kill(ngx.pid, SIGCONT), 0);

    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_OK);
    assert_int_equal(b.n, 1);
    ng_queue_batch_free(&b);
    ng_queue_free(q);
}

static void
test_5xx_retried_4xx_not(void **state)
{
    struct sealed s;
    char id[NG_QUEUE_ID_BYTES], key_hex[65], line[300];
    uint8_t key[NG_QUEUE_KEY_ID_BYTES];
    ng_queue_http_options o;
    ng_queue *q;
    ng_queue_batch b;

    (void)state;
    new_key(key, key_hex);
    seal(&s, 1700000000000, 60000);

    q = open_queue("/fail", 5000);
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_ERR_UNAVAILABLE);
    snprintf(line, sizeof line, "PROPFIND /fail/%s/ 503", key_hex);
    assert_int_equal(count_requests(line, 1 + NG_QUEUE_HTTP_DEFAULT_RETRIES), 1 + NG_QUEUE_HTTP_DEFAULT_RETRIES);
    assert_int_equal(append(q, key, &s, id), NG_ERR_UNAVAILABLE);
    ng_queue_free(q);

    ng_queue_http_options_init(&o, 5000);
    o.retries = 0;
    new_key(key, key_hex);
    q = open_queue_with("/fail", &o);
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_ERR_UNAVAILABLE);
    snprintf(line, sizeof line, "PROPFIND /fail/%s/ 503", key_hex);
    assert_int_equal(count_requests(line, 1), 1);
    ng_queue_free(q);

    q = open_queue("/deny", 5000);
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_ERR_IO);
    snprintf(line, sizeof line, "PROPFIND /deny/%s/ 403", key_hex);
    assert_int_equal(count_requests(line, 1), 1);
    assert_int_equal(append(q, key, &s, id), NG_ERR_IO);
    snprintf(line, sizeof line, "PUT /deny/%s/", key_hex);
    assert_int_equal(count_requests(line, 1), 1);
    ng_queue_free(q);
}

static void
test_redirect_not_followed(void **state)
{
    char key_hex[65], line[300];
    uint8_t key[NG_QUEUE_KEY_ID_BYTES];
    ng_queue *q = open_queue("/moved", 5000);
    ng_queue_batch b;

    (void)state;
    new_key(key, key_hex);
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_ERR_IO);
    snprintf(line, sizeof line, "PROPFIND /moved/%s/ 301", key_hex);
    assert_int_equal(count_requests(line, 1), 1);
    assert_int_equal(nginx_server_count(&ngx, "/outbox/moved-here"), 0);
    ng_queue_free(q);
}

static void
test_bad_listing(void **state)
{
    char key_hex[65];
    uint8_t key[NG_QUEUE_KEY_ID_BYTES];
    ng_queue *q = open_queue("/bad", 5000);
    ng_queue_batch b;
    size_t removed;

    (void)state;
    new_key(key, key_hex);
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_ERR_PARSE);
    assert_int_equal(b.n, 0);
    assert_int_equal(ng_queue_outbox_trim(q, "t1", key, 1800000000000, &removed), NG_ERR_PARSE);
    ng_queue_free(q);
    q = open_queue("/html", 5000);
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_ERR_PARSE);
    ng_queue_free(q);
}

static void
test_size_limits(void **state)
{
    struct sealed s;
    char id[NG_QUEUE_ID_BYTES], key_hex[65];
    static const char big_name[] = "1700000000009-000000000000000000000000000000dd.ngp";
    uint8_t key[NG_QUEUE_KEY_ID_BYTES], big[4096];
    ng_queue_http_options o;
    ng_queue *q;
    ng_queue_batch b;
    size_t i;

    (void)state;
    new_key(key, key_hex);
    q = open_queue("/outbox", 5000);
    for (i = 0; i < 5; i++) {
        seal(&s, 1700000000000 + i, 60000);
        assert_int_equal(append(q, key, &s, id), NG_OK);
    }
    ng_queue_free(q);

    /* A listing over the limit. */
    ng_queue_http_options_init(&o, 5000);
    o.max_listing_bytes = 1024;
    q = open_queue_with("/outbox", &o);
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_ERR_TOO_LARGE);
    ng_queue_free(q);
    /* Too many entries (the collection is one of them). */
    ng_queue_http_options_init(&o, 5000);
    o.max_entries = 5;
    q = open_queue_with("/outbox", &o);
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_ERR_TOO_LARGE);
    ng_queue_free(q);

    /* An object over the parcel ceiling. */
    ng_queue_http_options_init(&o, 5000);
    o.max_parcel_bytes = 1024;
    q = open_queue_with("/outbox", &o);
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_OK);
    assert_int_equal(b.n, 5);
    ng_queue_batch_free(&b);
    crafted(big, sizeof big, 1700000000009, 1800000000000);
    write_object("outbox", key_hex, big_name, big, sizeof big);
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_ERR_TOO_LARGE);
    assert_int_equal(b.n, 0);
    assert_null(b.items);
    /* The ones before it are still readable in a batch that stops short of it. */
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 5, &b), NG_OK);
    assert_int_equal(b.n, 5);
    ng_queue_batch_free(&b);
    ng_queue_free(q);
}

static void
test_vanished_object_skipped(void **state)
{
    uint8_t key[NG_QUEUE_KEY_ID_BYTES], head[200];
    ng_queue *q = open_queue("/ghost", 5000);
    ng_queue_batch b;
    size_t removed;

    (void)state;
    assert_int_equal(ng_hex_decode(key, sizeof key, GHOST_HEX, strlen(GHOST_HEX)), NG_OK);
    crafted(head, sizeof head, 1700000000000, 1700000001000);
    write_object("ghost", GHOST_HEX, GHOST_A, head, sizeof head);
    /* The listing names A and B; B is not there. */
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_OK);
    assert_int_equal(b.n, 1);
    assert_string_equal(b.items[0].id, GHOST_A);
    assert_int_equal(b.items[0].expires_ms, 1700000001000);
    assert_string_equal(b.next, GHOST_A);
    ng_queue_batch_free(&b);
    /* After A, only B is listed, and it is gone: nothing to read, no cursor. */
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, GHOST_A, 10, &b), NG_OK);
    assert_int_equal(b.n, 0);
    assert_string_equal(b.next, "");
    ng_queue_batch_free(&b);
    assert_int_equal(ng_queue_outbox_trim(q, "t1", key, 1800000000000, &removed), NG_OK);
    assert_int_equal(removed, 1);
    assert_false(object_exists("ghost", GHOST_HEX, GHOST_A));
    ng_queue_free(q);
}

/* Without a Content-Length, the limits hold while the body arrives. */
static void
test_limits_while_streaming(void **state)
{
    uint8_t key[NG_QUEUE_KEY_ID_BYTES], head[2000];
    ng_queue_http_options o;
    ng_queue *q;
    ng_queue_batch b;
    char path[600];

    (void)state;
    assert_int_equal(ng_hex_decode(key, sizeof key, GHOST_HEX, strlen(GHOST_HEX)), NG_OK);
    crafted(head, sizeof head, 1700000000000, 1700000001000);
    write_object("ghost", GHOST_HEX, GHOST_A, head, sizeof head);

    ng_queue_http_options_init(&o, 5000);
    o.max_listing_bytes = strlen(GHOST_LISTING) - 1;
    q = open_queue_with("/ghost", &o);
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_ERR_TOO_LARGE);
    ng_queue_free(q);
    o.max_listing_bytes = strlen(GHOST_LISTING);
    o.max_parcel_bytes = sizeof head - 1;
    q = open_queue_with("/ghost", &o);
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_ERR_TOO_LARGE);
    ng_queue_free(q);
    o.max_parcel_bytes = sizeof head;
    q = open_queue_with("/ghost", &o);
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_OK);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.items[0].len, sizeof head);
    ng_queue_batch_free(&b);
    ng_queue_free(q);
    snprintf(path, sizeof path, "%s/ghost/%s/%s", ngx.root, GHOST_HEX, GHOST_A);
    assert_int_equal(unlink(path), 0);
}

static void
test_mkcol_after_409(void **state)
{
    struct sealed s1, s2;
    char id[NG_QUEUE_ID_BYTES], key_hex[65], line[600];
    uint8_t key[NG_QUEUE_KEY_ID_BYTES];
    ng_queue *q = open_queue("/strict", 5000);
    ng_queue_batch b;

    (void)state;
    new_key(key, key_hex);
    seal(&s1, 1700000000000, 60000);
    seal(&s2, 1700000000001, 60000);
    /* This location has no create_full_put_path and answers 409 for a PUT without its collection. */
    assert_int_equal(append(q, key, &s1, id), NG_OK);
    assert_true(object_exists("strict", key_hex, id));
    /* The collection goes away behind the handle's back: 409, MKCOL, PUT again. */
    snprintf(line, sizeof line, "rm -rf '%s/strict/%s'", ngx.root, key_hex);
    assert_int_equal(system(line), 0);
    assert_int_equal(append(q, key, &s2, id), NG_OK);
    assert_true(object_exists("strict", key_hex, id));
    snprintf(line, sizeof line, "MKCOL /strict/%s/ 201", key_hex);
    assert_int_equal(count_requests(line, 2), 2);
    snprintf(line, sizeof line, "PUT /strict/%s/", key_hex);
    assert_int_equal(count_requests(line, 3), 3);
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_OK);
    assert_int_equal(b.n, 1);
    ng_queue_batch_free(&b);
    ng_queue_free(q);

    /* No parent collection at all: MKCOL and PUT both answer 409. */
    q = open_queue("/strict/nowhere", 5000);
    assert_int_equal(append(q, key, &s1, id), NG_ERR_IO);
    ng_queue_free(q);
}

static void
test_one_connection(void **state)
{
    struct sealed s;
    char id[NG_QUEUE_ID_BYTES], key_hex[65], line[1024], conn[32] = "";
    uint8_t key[NG_QUEUE_KEY_ID_BYTES];
    ng_queue *q = open_queue("/outbox", 5000);
    ng_queue_batch b;
    size_t i, removed, lines = 0;
    FILE *f;

    (void)state;
    new_key(key, key_hex);
    for (i = 0; i < 4; i++) {
        seal(&s, 1700000000000 + i, 1000);
        assert_int_equal(append(q, key, &s, id), NG_OK);
    }
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_OK);
    assert_int_equal(b.n, 4);
    ng_queue_batch_free(&b);
    assert_int_equal(ng_queue_outbox_trim(q, "t1", key, 1800000000000, &removed), NG_OK);
    assert_int_equal(removed, 4);
    ng_queue_free(q);
    /* MKCOL, 4 PUT, PROPFIND, 4 GET, PROPFIND, 4 GET, 4 DELETE */
    snprintf(line, sizeof line, "/outbox/%s/", key_hex);
    assert_int_equal(count_requests(line, 19), 19);
    f = fopen(ngx.access, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f) != NULL) {
        char *last;

        if (strstr(line, key_hex) == NULL)
            continue;
        line[strcspn(line, "\n")] = '\0';
        last = strrchr(line, ' ');
        assert_non_null(last);
        if (conn[0] == '\0')
            snprintf(conn, sizeof conn, "%s", last + 1);
        assert_string_equal(last + 1, conn);
        lines++;
    }
    fclose(f);
    assert_int_equal(lines, 19);
}

/* What the poller does for a peer's storage: the delivery adapter's address guard, through the hooks. */
struct hook_ctx {
    ng_deliver_guard guard;
    const char *allow[1];
    size_t allow_len;
    ng_err prepare_err; /* what prepare answers instead of installing the guard; NG_OK: install it */
    int prepared, failures;
};

static ng_err
hook_prepare(void *curl, void *user)
{
    struct hook_ctx *h = user;

    h->prepared++;
    if (h->prepare_err != NG_OK)
        return h->prepare_err;
    h->guard.allow = h->allow;
    h->guard.allow_len = h->allow_len;
    return ng_deliver_guard_install(curl, &h->guard) == 0 ? NG_OK : NG_ERR_IO;
}

static ng_err
hook_failed(void *curl, int curl_code, void *user)
{
    struct hook_ctx *h = user;

    assert_non_null(curl);
    assert_int_not_equal(curl_code, 0);
    h->failures++;
    return h->guard.refused ? NG_ERR_IO : NG_OK;
}

static ng_queue *
open_hooked(const char *base, struct hook_ctx *h)
{
    ng_queue_http_options o;
    ng_queue *q = NULL;

    ng_queue_http_options_init(&o, 5000);
    o.prepare = hook_prepare;
    o.failed = hook_failed;
    o.hook_user = h;
    assert_int_equal(ng_queue_http_new_with(&q, base, &o), NG_OK);
    return q;
}

static void
test_hooks_guard(void **state)
{
    struct sealed s;
    char id[NG_QUEUE_ID_BYTES], key_hex[65], url[256], line[300];
    uint8_t key[NG_QUEUE_KEY_ID_BYTES];
    struct hook_ctx h;
    struct timespec t0;
    ng_queue *q;
    ng_queue_batch b;
    size_t removed = 7;
    int port;

    (void)state;
    memset(&h, 0, sizeof h);
    h.allow[0] = "127.0.0.1";
    new_key(key, key_hex);
    seal(&s, 1700000000000, 60000);
    snprintf(url, sizeof url, "%s/outbox", ngx.url);
    q = open_hooked(url, &h);

    /* Refused at connect time: each operation fails with the hook's code, at once, not retried. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_ERR_IO);
    assert_int_equal(b.n, 0);
    assert_null(b.items);
    assert_int_equal(h.prepared, 1);
    assert_int_equal(h.failures, 1);
    assert_true(h.guard.refused);
    assert_string_equal(h.guard.refused_addr, "127.0.0.1");
    assert_int_equal(append(q, key, &s, id), NG_ERR_IO);
    assert_string_equal(id, "");
    assert_int_equal(ng_queue_outbox_trim(q, "t1", key, 1800000000000, &removed), NG_ERR_IO);
    assert_int_equal(removed, 0);
    assert_int_equal(h.prepared, 3);
    assert_int_equal(h.failures, 3);
    assert_true(elapsed_ms(&t0) < 1000);
    /* Nothing reached the store. */
    loopback_nap(100);
    assert_int_equal(nginx_server_count(&ngx, key_hex), 0);
    assert_false(object_exists("outbox", key_hex, ""));

    /* Allowed now: the same handle works, the guard set again on each request (MKCOL, PUT, PROPFIND, GET). */
    h.allow_len = 1;
    assert_int_equal(append(q, key, &s, id), NG_OK);
    assert_true(object_exists("outbox", key_hex, id));
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_OK);
    assert_int_equal(b.n, 1);
    assert_string_equal(b.items[0].id, id);
    ng_queue_batch_free(&b);
    assert_int_equal(h.prepared, 7);
    assert_int_equal(h.failures, 3);
    assert_false(h.guard.refused);

    /* prepare says no: its code, and the request is not sent. */
    h.prepare_err = NG_ERR_UNSUPPORTED;
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_ERR_UNSUPPORTED);
    assert_int_equal(b.n, 0);
    snprintf(line, sizeof line, "PROPFIND /outbox/%s/", key_hex);
    assert_int_equal(count_requests(line, 2), 1);
    assert_int_equal(h.failures, 3);
    ng_queue_free(q);

    /* A failure that is not the hook's is the queue's as before: a refused connection, retried. */
    h.prepare_err = NG_OK;
    h.prepared = h.failures = 0;
    port = loopback_free_port();
    assert_true(port > 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/outbox", port);
    q = open_hooked(url, &h);
    assert_int_equal(ng_queue_outbox_read(q, "t1", key, "", 10, &b), NG_ERR_UNAVAILABLE);
    assert_int_equal(h.prepared, 1);
    assert_int_equal(h.failures, 1 + NG_QUEUE_HTTP_DEFAULT_RETRIES);
    assert_false(h.guard.refused);
    ng_queue_free(q);
}

/* Locations beside the WebDAV one at /. */
static const char locations[] =
    "    location /fail/ { return 503; }\n"
    "    location /deny/ { return 403; }\n"
    "    location /moved/ { return 301 /outbox/moved-here/; }\n"
    "    location /bad/ { default_type application/xml; return 207 '<garbage'; }\n"
    "    location /html/ { default_type text/html; return 207 '<html><body>hello</body></html>'; }\n"
    "    location /strict/ { dav_methods PUT DELETE MKCOL; dav_ext_methods PROPFIND; }\n"
    /* nginx answers a PUT into a missing directory with 500; Apache and RFC 4918 say 409. */
    "    location ~ ^/strict/(.+)/[^/]+$ {\n"
    "      if (!-d $document_root/strict/$1) { return 409; }\n"
    "      dav_methods PUT DELETE MKCOL;\n"
    "    }\n"
    /*
     * sub_filter drops Content-Length and Range support: these replies come
     * chunked, their size unknown up front, and trim's Range is answered 200.
     */
    "    location /ghost/ {\n"
    "      dav_methods DELETE;\n"
    "      sub_filter_types *;\n"
    "      sub_filter 'no such text' 'none';\n"
    "      if ($request_method = PROPFIND) { return 207 '" GHOST_LISTING "'; }\n"
    "    }\n";

static int
start_nginx(void **state)
{
    char path[400];

    (void)state;
    if (nginx_server_start(&ngx, locations) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/strict", ngx.root);
    return mkdir(path, 0700);
}

static int
stop_nginx(void **state)
{
    (void)state;
    nginx_server_stop(&ngx);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest parser[] = {
        cmocka_unit_test(test_propfind_servers),          cmocka_unit_test(test_propfind_names_and_paths_ignored),
        cmocka_unit_test(test_propfind_sorted_unique),    cmocka_unit_test(test_propfind_malformed),
        cmocka_unit_test(test_propfind_every_truncation), cmocka_unit_test(test_propfind_mutations),
        cmocka_unit_test(test_propfind_limits),           cmocka_unit_test(test_propfind_is_name),
    };
    const struct CMUnitTest backend[] = {
        cmocka_unit_test(test_append_read_order),
        cmocka_unit_test(test_cursor_resume),
        cmocka_unit_test(test_restart_and_new_handle),
        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_nginx_down),
        cmocka_unit_test(test_nginx_hung),
        cmocka_unit_test(test_5xx_retried_4xx_not),
        cmocka_unit_test(test_redirect_not_followed),
        cmocka_unit_test(test_bad_listing),
        cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_vanished_object_skipped),
        cmocka_unit_test(test_limits_while_streaming),
        cmocka_unit_test(test_mkcol_after_409),
        cmocka_unit_test(test_one_connection),
        cmocka_unit_test(test_hooks_guard),
    };
    int failed;

    if (sodium_init() < 0)
        return 1;
    ng_keypair_generate(&g_recipient);
    failed = cmocka_run_group_tests_name("propfind reader", parser, NULL, NULL);
    failed += cmocka_run_group_tests_name("queue, http storage (nginx)", backend, start_nginx, stop_nginx);
    ng_keypair_wipe(&g_recipient);
    return failed;
}

/*
 * ng_propfind.h: the parcel names in a WebDAV PROPFIND (Depth: 1) reply.
 *
 * The reply is a `multistatus` document (RFC 4918, 14.16). We need only the
 * `href` of each `response`, so instead of an XML library this is a small,
 * strict reader over a buffer: well-formed elements, attributes, comments
 * and processing instructions; the five predefined entities and nothing
 * else. DOCTYPE (entity definitions), CDATA, character references, NUL and
 * control bytes, mismatched or unterminated tags are refused with
 * NG_ERR_PARSE. Element names match on their local part, whatever the
 * prefix (`D:href`, `d:href`, `href`), ASCII case-insensitively: servers
 * differ in prefixes, and no server gives two elements of a multistatus
 * the same local name in different namespaces.
 *
 * Of each `multistatus/response/href` (percent-decoded, after the scheme and
 * authority of an absolute URL) only a last path segment that is a parcel
 * name is kept, and only when the segment before it is the expected parent
 * (the recipient key id in hex): the collection itself, other files, "." and
 * ".." segments and other directories are ignored.
 *
 * No I/O, no global state: a pure function of its input, safe to fuzz.
 * THREAD SAFETY: reentrant.
 */
#ifndef NG_PROPFIND_H
#define NG_PROPFIND_H

#include <stddef.h>

#include "ng_error.h"

enum {
    /* `<created ms, 13 digits>-<message id, 32 hex>.ngp` */
    NG_PROPFIND_NAME_LEN = 13 + 1 + 32 + 4,
    NG_PROPFIND_NAME_BYTES = NG_PROPFIND_NAME_LEN + 1, /* NUL included */
    NG_PROPFIND_MAX_DEPTH = 32,                        /* element nesting */
    NG_PROPFIND_DEFAULT_MAX_ENTRIES = 100000,          /* response elements */
    NG_PROPFIND_DEFAULT_MAX_HREF = 4096,               /* bytes of one href, as sent */
};

/* Default ceiling on a whole reply. */
#define NG_PROPFIND_DEFAULT_MAX_BYTES ((size_t)4 * 1024 * 1024)

/* Limits on untrusted input; a 0 field takes its default. */
typedef struct ng_propfind_limits {
    size_t max_bytes;
    size_t max_entries;
    size_t max_href;
} ng_propfind_limits;

/* Parcel names, sorted (byte order, which is time order), no duplicates. */
typedef struct ng_propfind_names {
    char (*name)[NG_PROPFIND_NAME_BYTES]; /* malloc'd, freed by ng_propfind_names_free */
    size_t n;
} ng_propfind_names;

/* Whether s (len bytes, no NUL needed) is exactly a parcel name. */
int ng_propfind_is_name(const char *s, size_t len);

/*
 * Parses body (len bytes, no NUL needed; never read past len) into *out,
 * keeping the names whose parent segment is parent (ASCII case-insensitive;
 * NULL: any parent). lim may be NULL for the defaults.
 *
 * NG_OK; NG_ERR_TOO_LARGE over max_bytes, max_entries responses or an href
 * over max_href; NG_ERR_PARSE for a body that is not a well-formed
 * multistatus as described above (an invalid percent escape included);
 * NG_ERR_NOMEM. On error *out is empty.
 */
NG_MUST_CHECK ng_err ng_propfind_parse(ng_propfind_names *out, const char *body, size_t len, const char *parent,
                                       const ng_propfind_limits *lim) NG_NONNULL(1);

/* NULL is a no-op; leaves *l empty. */
void ng_propfind_names_free(ng_propfind_names *l);

#endif

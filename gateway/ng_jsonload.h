/*
 * ng_jsonload.h: a JSON document into jansson values, in one pass over the
 * bytes. jansson's own loader reads a string one byte at a time through its
 * stream and buffer layers, about 10 ns a byte: for a 1 KiB message body
 * that is more than the rest of parsing a request, and for large bodies more
 * than sealing them. This loader accepts what json_loadb accepts with
 * JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL and builds the same values, so
 * callers keep using jansson's API (fuzz_jsonload holds it to that). One
 * exception: jansson skips a single NUL byte right after a number or a
 * literal ("[0\0]"), a quirk of its stream, which treats NUL as the end of
 * its buffer; that is not JSON, and this loader refuses it.
 *
 * Strings go through jansson's allocator (ng_jsonmem wipes them when freed);
 * an escaped string is decoded in a scratch block that is wiped here.
 */
#ifndef NG_JSONLOAD_H
#define NG_JSONLOAD_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ng_error.h"

/* jansson's JSON_PARSER_MAX_DEPTH: every value counts, the top one is 1. */
#define NG_JSONLOAD_MAX_DEPTH 2048

typedef enum ng_jsonload_why {
    NG_JSONLOAD_INVALID = 0,   /* not JSON, or not an object or array at the top */
    NG_JSONLOAD_TRUNCATED,     /* the input ended inside the document */
    NG_JSONLOAD_UTF8,          /* a byte sequence that is not UTF-8 */
    NG_JSONLOAD_DUPLICATE_KEY, /* a key twice in one object */
    NG_JSONLOAD_NUL_IN_KEY,    /* \u0000 in a key */
    NG_JSONLOAD_NUMBER_RANGE,  /* an integer beyond int64, a real beyond double */
    NG_JSONLOAD_TOO_DEEP,      /* over NG_JSONLOAD_MAX_DEPTH */
    NG_JSONLOAD_NOMEM,
} ng_jsonload_why;

/*
 * Where a document failed, as jansson counts: lines from 1; the column is
 * the characters read on that line up to the failure (0 before any).
 */
typedef struct ng_jsonload_error {
    ng_jsonload_why why;
    int line;
    int column;
} ng_jsonload_error;

/*
 * buf[0..len) must be one JSON object or array, with only whitespace around
 * it. On success *out holds a new reference. On failure *out is NULL, *e
 * (if not NULL) says why and where, and the result is NG_ERR_NOMEM or
 * NG_ERR_PARSE; NG_ERR_INVALID_ARG for a NULL buf with len > 0.
 */
NG_MUST_CHECK ng_err ng_jsonload(const uint8_t *buf, size_t len, json_t **out, ng_jsonload_error *e);

#endif

/*
 * ng_utf8.h: strict UTF-8, as RFC 3629 and jansson have it: no overlong
 * forms, no surrogates, nothing past U+10FFFF.
 */
#ifndef NG_UTF8_H
#define NG_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * The length (1-4) of the well-formed sequence at p, which has avail bytes
 * (at least 1), with its code point in *cp; 0 if there is none.
 */
size_t ng_utf8_decode(const uint8_t *p, size_t avail, uint32_t *cp);

#endif

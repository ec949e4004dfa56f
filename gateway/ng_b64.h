/*
 * ng_b64.h: base64 text from outside, decoded strictly. libsodium 1.0.18
 * (Debian 12's) decodes every byte over 0x7f as '/' (as '_' in the URL-safe
 * variants) where later releases refuse it, so many texts would decode to
 * the same bytes and smuggle what a check on the text never saw. Such bytes
 * are refused first; nothing is ignored (no whitespace), and the whole of
 * the text must decode.
 */
#ifndef NG_B64_H
#define NG_B64_H

#include <stddef.h>
#include <stdint.h>

#include "ng_error.h"

/*
 * in[0..in_len) into out (cap bytes); the length in *out_len. variant is a
 * sodium_base64_VARIANT_*. NG_ERR_PARSE for text that is not all base64 of
 * that variant or does not fit in cap; out is then all zero, whatever had
 * decoded before the error (it may have been most of a secret).
 */
NG_MUST_CHECK ng_err ng_b64_decode(uint8_t *out, size_t cap, size_t *out_len, const char *in, size_t in_len,
                                   int variant);

#endif

/*
 * ng_hex.h: lowercase hex for keys, key ids and message ids, in constant
 * time (libsodium's codec), since the bytes are often secret.
 */
#ifndef NG_HEX_H
#define NG_HEX_H

#include <stddef.h>
#include <stdint.h>

#include "ng_error.h"

/* Writes 2 * len characters and a NUL to out (cap >= 2 * len + 1). */
void ng_hex_encode(char *out, size_t cap, const uint8_t *in, size_t len);
/* Exactly outlen bytes from exactly 2 * outlen hex characters, else NG_ERR_PARSE. */
NG_MUST_CHECK ng_err ng_hex_decode(uint8_t *out, size_t outlen, const char *in, size_t inlen);

#endif

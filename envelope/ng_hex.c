#include "ng_hex.h"

#include <sodium.h>

void
ng_hex_encode(char *out, size_t cap, const uint8_t *in, size_t len)
{
    sodium_bin2hex(out, cap, in, len);
}

ng_err
ng_hex_decode(uint8_t *out, size_t outlen, const char *in, size_t inlen)
{
    size_t got = 0;
    const char *end = NULL;

    if (inlen != 2 * outlen || sodium_hex2bin(out, outlen, in, inlen, NULL, &got, &end) != 0 || got != outlen ||
        end != in + inlen) {
        sodium_memzero(out, outlen);
        return NG_ERR_PARSE;
    }
    return NG_OK;
}

#include "ng_b64.h"

#include <sodium.h>

ng_err
ng_b64_decode(uint8_t *out, size_t cap, size_t *out_len, const char *in, size_t in_len, int variant)
{
    const char *end = NULL;
    size_t i;

    *out_len = 0;
    for (i = 0; i < in_len; i++)
        if ((unsigned char)in[i] > 0x7f)
            return NG_ERR_PARSE;
    if (sodium_base642bin(out, cap, in, in_len, NULL, out_len, &end, variant) != 0 || end != in + in_len) {
        /* What decoded before the error may be most of a key or a secret: no caller has to wipe it. */
        sodium_memzero(out, cap);
        *out_len = 0;
        return NG_ERR_PARSE;
    }
    return NG_OK;
}

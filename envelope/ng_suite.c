#include "ng_suite.h"

#include <stdio.h>
#include <string.h>

#include "ng_cipher.h"

static const struct {
    ng_pattern value;
    const char *name;
} patterns[] = {
    {NG_PATTERN_N, "N"},         {NG_PATTERN_K, "K"},         {NG_PATTERN_X, "X"},
    {NG_PATTERN_NPSK0, "Npsk0"}, {NG_PATTERN_KPSK0, "Kpsk0"}, {NG_PATTERN_XPSK1, "Xpsk1"},
};

static const char *const suite_names[] = {
    NULL,
    "25519_ChaChaPoly_BLAKE2b",
    "25519_ChaChaPoly_SHA256",
    "25519_ChaChaPoly_SHA512",
    "25519_AESGCM_BLAKE2b",
    "25519_AESGCM_SHA256",
    "25519_AESGCM_SHA512",
};

int
ng_pattern_valid(unsigned value)
{
    size_t i;

    for (i = 0; i < sizeof patterns / sizeof patterns[0]; i++)
        if ((unsigned)patterns[i].value == value)
            return 1;
    return 0;
}

ng_pattern
ng_pattern_base(ng_pattern p)
{
    return (ng_pattern)(p & ~NG_PATTERN_PSK_BIT);
}

int
ng_pattern_has_psk(ng_pattern p)
{
    return (p & NG_PATTERN_PSK_BIT) != 0;
}

const char *
ng_pattern_name(ng_pattern p)
{
    size_t i;

    for (i = 0; i < sizeof patterns / sizeof patterns[0]; i++)
        if (patterns[i].value == p)
            return patterns[i].name;
    return "?";
}

ng_err
ng_pattern_parse(const char *name, ng_pattern *out)
{
    size_t i;

    for (i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        if (strcmp(patterns[i].name, name) == 0) {
            *out = patterns[i].value;
            return NG_OK;
        }
    }
    return NG_ERR_BAD_PATTERN;
}

int
ng_suite_valid(unsigned value)
{
    return value >= NG_SUITE_CHACHAPOLY_BLAKE2B && value <= NG_SUITE_AESGCM_SHA512;
}

int
ng_suite_available(ng_suite s)
{
    if (!ng_suite_valid(s))
        return 0;
    return s < NG_SUITE_AESGCM_BLAKE2B || ng_cipher_available(NG_CIPHER_AESGCM);
}

const char *
ng_suite_name(ng_suite s)
{
    return ng_suite_valid(s) ? suite_names[s] : "?";
}

ng_err
ng_suite_parse(const char *name, ng_suite *out)
{
    unsigned i;

    for (i = NG_SUITE_CHACHAPOLY_BLAKE2B; i <= NG_SUITE_AESGCM_SHA512; i++) {
        if (strcmp(suite_names[i], name) == 0) {
            *out = (ng_suite)i;
            return NG_OK;
        }
    }
    return NG_ERR_BAD_SUITE;
}

size_t
ng_protocol_name(char *buf, size_t cap, ng_pattern p, ng_suite s)
{
    int n = snprintf(buf, cap, "Noise_%s_%s", ng_pattern_name(p), ng_suite_name(s));

    return n < 0 ? 0 : (size_t)n;
}

ng_err
ng_protocol_parse(const char *name, ng_pattern *p, ng_suite *s)
{
    char pat[8];
    const char *rest;
    size_t len;

    if (strncmp(name, "Noise_", 6) != 0)
        return NG_ERR_BAD_PATTERN;
    name += 6;
    rest = strchr(name, '_');
    if (rest == NULL)
        return NG_ERR_BAD_PATTERN;
    len = (size_t)(rest - name);
    if (len == 0 || len >= sizeof pat)
        return NG_ERR_BAD_PATTERN;
    memcpy(pat, name, len);
    pat[len] = '\0';
    if (ng_pattern_parse(pat, p) != NG_OK)
        return NG_ERR_BAD_PATTERN;
    return ng_suite_parse(rest + 1, s);
}

/*
 * ng_suite.h: Noise one-way patterns and cipher suites, with the byte values
 * of the parcel header (DESIGN.md, "Parcel, version 1") and the names used
 * in Noise protocol names (revision 34).
 */
#ifndef NG_SUITE_H
#define NG_SUITE_H

#include <stddef.h>
#include <stdint.h>

#include "ng_error.h"

/* The psk forms set the high bit: 0x80 | base pattern. */
typedef enum ng_pattern {
    NG_PATTERN_N = 0x01,
    NG_PATTERN_K = 0x02,
    NG_PATTERN_X = 0x03,
    NG_PATTERN_NPSK0 = 0x81,
    NG_PATTERN_KPSK0 = 0x82,
    NG_PATTERN_XPSK1 = 0x83,
} ng_pattern;

enum { NG_PATTERN_PSK_BIT = 0x80 };

typedef enum ng_suite {
    NG_SUITE_CHACHAPOLY_BLAKE2B = 1,
    NG_SUITE_CHACHAPOLY_SHA256 = 2,
    NG_SUITE_CHACHAPOLY_SHA512 = 3,
    NG_SUITE_AESGCM_BLAKE2B = 4,
    NG_SUITE_AESGCM_SHA256 = 5,
    NG_SUITE_AESGCM_SHA512 = 6,
} ng_suite;

#define NG_SUITE_DEFAULT NG_SUITE_CHACHAPOLY_BLAKE2B

enum { NG_PROTOCOL_NAME_MAX = 64 }; /* the longest name has 37 characters */

int ng_pattern_valid(unsigned value);
/* The pattern with the psk bit cleared: N, K or X. */
ng_pattern ng_pattern_base(ng_pattern p);
int ng_pattern_has_psk(ng_pattern p);
/* "N", "Kpsk0", ...; "?" for an invalid value. */
const char *ng_pattern_name(ng_pattern p);
NG_MUST_CHECK ng_err ng_pattern_parse(const char *name, ng_pattern *out);

int ng_suite_valid(unsigned value);
/* Whether this machine can run it (AESGCM needs AES-NI and PCLMUL). */
int ng_suite_available(ng_suite s);
/* "25519_ChaChaPoly_BLAKE2b", ...; "?" for an invalid value. */
const char *ng_suite_name(ng_suite s);
NG_MUST_CHECK ng_err ng_suite_parse(const char *name, ng_suite *out);

/* "Noise_<pattern>_<suite>" into buf (NUL-terminated); returns its length. */
size_t ng_protocol_name(char *buf, size_t cap, ng_pattern p, ng_suite s);
/* Parses a full protocol name such as "Noise_Xpsk1_25519_AESGCM_SHA512". */
NG_MUST_CHECK ng_err ng_protocol_parse(const char *name, ng_pattern *p, ng_suite *s);

#endif

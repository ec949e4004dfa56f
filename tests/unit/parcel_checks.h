/*
 * parcel_checks.h: checks shared by the parcel test suites (each suite is
 * its own binary, so these are static inline; include after cmocka.h).
 */
#ifndef PARCEL_CHECKS_H
#define PARCEL_CHECKS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ng_parcel.h"

enum { ANY_ERROR = -1 }; /* for expect_refused: any code but NG_OK */

/* Seals, asserting success and that the size matches ng_parcel_sealed_size; the caller frees. */
static inline uint8_t *
seal_ok(const ng_seal_params *sp, size_t *len)
{
    size_t size = ng_parcel_sealed_size(sp);
    uint8_t *parcel;

    assert_true(size > NG_PARCEL_HEADER_BYTES);
    parcel = malloc(size);
    assert_non_null(parcel);
    assert_int_equal(ng_parcel_seal(parcel, size, len, sp), NG_OK);
    assert_int_equal(*len, size);
    return parcel;
}

/*
 * Opens a parcel that must be refused with `want` (or any error for
 * ANY_ERROR), and checks what every refusal must leave behind: an output
 * buffer without a byte of plaintext, a zeroed ng_opened and the parcel as
 * it was. `what` and `where` name the case in a failure message.
 */
static inline ng_err
expect_refused(const uint8_t *parcel, size_t len, const ng_open_params *op, int want, const char *what, size_t where)
{
    size_t cap = len + 1;
    uint8_t *out = calloc(1, cap), *copy = malloc(len + 1);
    ng_opened o;
    ng_err err;

    assert_non_null(out);
    assert_non_null(copy);
    if (len > 0)
        memcpy(copy, parcel, len);
    memset(&o, 0xa5, sizeof o);
    err = ng_parcel_open(out, cap, &o, parcel, len, op);
    if ((want == ANY_ERROR && err == NG_OK) || (want != ANY_ERROR && (int)err != want)) {
        print_error("%s at %zu: got %d (%s), want %d\n", what, where, (int)err, ng_strerror(err), want);
        fail();
    }
    if (!sodium_is_zero(out, cap)) {
        print_error("%s at %zu: plaintext left in the output after %s\n", what, where, ng_strerror(err));
        fail();
    }
    if (!sodium_is_zero((const unsigned char *)&o, sizeof o)) {
        print_error("%s at %zu: ng_opened not zeroed after %s\n", what, where, ng_strerror(err));
        fail();
    }
    if (len > 0 && memcmp(copy, parcel, len) != 0) {
        print_error("%s at %zu: open wrote to the parcel\n", what, where);
        fail();
    }
    free(out);
    free(copy);
    return err;
}

#endif

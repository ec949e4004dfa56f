/*
 * The string slot hash (ng_slot.h). FNV-1a rather than a keyed hash: the
 * tables it serves tolerate collisions, and it costs a multiply per byte.
 */
#include "ng_slot.h"

#include <assert.h>

/* Not an enum: the offset basis does not fit in an int. */
static const uint32_t fnv_offset = 2166136261u, fnv_prime = 16777619u;

uint32_t
ng_slot_hash(const char *key)
{
    uint32_t h = fnv_offset;

    while (*key != '\0')
        h = (h ^ (uint8_t)*key++) * fnv_prime;
    return h;
}

unsigned
ng_slot_of(const char *key, unsigned slots)
{
    assert(slots > 0);
    return (unsigned)(ng_slot_hash(key) % slots);
}

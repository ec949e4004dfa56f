/*
 * ng_slot.h: which slot of a fixed-size table a string key falls in, for
 * the gateway's per-tenant tables (the rate limiter's buckets, the
 * deliverer's in-flight counts). One hash, so that the tables agree on
 * what a collision is and a fix to it lands everywhere.
 *
 * The hash is 32-bit FNV-1a over the key's bytes up to its NUL: fast,
 * stable across runs and processes, and not keyed. That is enough only
 * where a collision is harmless by design (two tenants share a bucket or a
 * count, which loosens or tightens a limit a little); do not use it where
 * someone who picks keys must not be able to pick collisions.
 */
#ifndef NG_SLOT_H
#define NG_SLOT_H

#include <stdint.h>

#include "ng_error.h"

/* 32-bit FNV-1a of key ("" gives the offset basis, 2166136261). */
uint32_t ng_slot_hash(const char *key) NG_NONNULL(1);

/* ng_slot_hash(key) % slots, so 0..slots-1; slots must not be 0. */
unsigned ng_slot_of(const char *key, unsigned slots) NG_NONNULL(1);

#endif

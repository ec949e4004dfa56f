/*
 * ng_sscache.h: a bounded cache of static-static DH results.
 *
 * In K and X the `ss` token is X25519(local static, remote static): the same
 * for every parcel between the same two keys. Caching it halves the DH work
 * of K and X after the first parcel to a peer. The cached values are as
 * sensitive as the private keys they came from, so they live in
 * sodium_malloc memory (guard pages, mlock, no swap) and are wiped on
 * eviction, on ng_ss_cache_forget and on ng_ss_cache_free.
 *
 * Entries are keyed by (local public key, remote public key). The local key
 * pair passed in must be consistent (as ng_keypair_from_private makes it).
 *
 * THREAD SAFETY: one cache may be shared by many threads.
 */
#ifndef NG_SSCACHE_H
#define NG_SSCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "ng_error.h"
#include "ng_key.h"

typedef struct ng_ss_cache ng_ss_cache;

enum { NG_SS_CACHE_DEFAULT_ENTRIES = 4096 };

/* capacity is rounded up to a multiple of the associativity (4). */
NG_MUST_CHECK ng_err ng_ss_cache_new(ng_ss_cache **out, size_t capacity) NG_NONNULL(1);
/* Wipes and frees; NULL is a no-op. */
void ng_ss_cache_free(ng_ss_cache *c);

/*
 * out = X25519(local->priv, remote_pub), from the cache when present.
 * cache may be NULL (then it only computes). NG_ERR_BAD_KEY for a
 * small-order remote key; such results are never cached.
 */
NG_MUST_CHECK ng_err ng_ss_cache_dh(ng_ss_cache *cache, uint8_t out[NG_DH_BYTES], const ng_keypair *local,
                                    const uint8_t remote_pub[NG_KEY_BYTES]) NG_NONNULL(2, 3, 4);

/*
 * The two halves of ng_ss_cache_dh, for a reader who must not cache a DH
 * with a key it has not yet authenticated (an X sender's static key is
 * only proven by the handshake tag): lookup returns 1 and fills out on a
 * hit, 0 on a miss (or a NULL cache); insert stores a computed result.
 */
int ng_ss_cache_lookup(ng_ss_cache *cache, uint8_t out[NG_DH_BYTES], const uint8_t local_pub[NG_KEY_BYTES],
                       const uint8_t remote_pub[NG_KEY_BYTES]);
void ng_ss_cache_insert(ng_ss_cache *cache, const uint8_t local_pub[NG_KEY_BYTES],
                        const uint8_t remote_pub[NG_KEY_BYTES], const uint8_t ss[NG_DH_BYTES]);

/* Wipes every entry in which pub is the local or the remote key (key retirement). */
void ng_ss_cache_forget(ng_ss_cache *c, const uint8_t pub[NG_KEY_BYTES]);

/* Counters for benchmarks and metrics. */
void ng_ss_cache_stats(ng_ss_cache *c, uint64_t *hits, uint64_t *misses);

#endif

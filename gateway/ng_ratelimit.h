/*
 * ng_ratelimit.h: a token bucket per tenant, in this process: a tenant
 * whose limits.rate is R may submit R messages a second on average, in
 * bursts of up to R (at least 1). Several gateway processes each apply the
 * limit on their own.
 *
 * The table has a fixed number of slots, found by a hash of the slug
 * (ng_slot.h); two tenants that share a slot take turns at it, each
 * starting a full bucket, so a collision can only loosen a limit, never
 * refuse a tenant more.
 *
 * THREAD SAFETY: any thread; one mutex.
 */
#ifndef NG_RATELIMIT_H
#define NG_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "ng_error.h"

typedef struct ng_ratelimit ng_ratelimit;

NG_MUST_CHECK ng_err ng_ratelimit_new(ng_ratelimit **out);
void ng_ratelimit_free(ng_ratelimit *r);
/*
 * Takes n tokens for slug at rate per second (0: unlimited, always 1).
 * 1 if allowed; 0 if not, with *retry_after_s the whole seconds until n
 * tokens will be there (n over the burst: never, reported as 0).
 */
int ng_ratelimit_take(ng_ratelimit *r, const char *slug, uint32_t rate, size_t n, uint64_t now_ms,
                      uint32_t *retry_after_s);

#endif

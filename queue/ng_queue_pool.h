/*
 * ng_queue_pool.h: queue handles shared by the threads of a server. A
 * handle is used by one thread at a time (ng_queue.h), and one connection
 * serialises every request behind it; the pool hands each thread its own
 * for the length of a request, making new ones up to a bound and making
 * the rest wait.
 *
 * THREAD SAFETY: take and give from any thread.
 */
#ifndef NG_QUEUE_POOL_H
#define NG_QUEUE_POOL_H

#include <stddef.h>

#include "ng_error.h"
#include "ng_queue.h"

typedef struct ng_queue_pool ng_queue_pool;

/* Makes one handle; called with no lock held. */
typedef ng_err (*ng_queue_pool_make)(void *ctx, ng_queue **out);

/* A pool of at most max handles made by make(ctx). NG_ERR_INVALID_ARG for max 0, NG_ERR_NOMEM. */
NG_MUST_CHECK ng_err ng_queue_pool_new(ng_queue_pool **out, size_t max, ng_queue_pool_make make, void *ctx);
/* Frees the pool and its handles; all must have been given back. NULL is a no-op. */
void ng_queue_pool_free(ng_queue_pool *p);
/*
 * A handle for the caller alone: an idle one, a new one while fewer than
 * max exist, else the next one given back. The maker's error if it fails.
 */
NG_MUST_CHECK ng_err ng_queue_pool_take(ng_queue_pool *p, ng_queue **out);
void ng_queue_pool_give(ng_queue_pool *p, ng_queue *q);

#endif

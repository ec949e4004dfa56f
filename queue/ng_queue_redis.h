/*
 * ng_queue_redis.h: the queues on Redis Streams.
 *
 * Keys of tenant T, all with the hash tag {T} so that one tenant's keys
 * live on one Redis Cluster slot and its scripts may touch them together:
 *
 *   ng:{T}:out:<key id hex>   stream  outbox for a recipient: p parcel, e expires ms
 *   ng:{T}:in                 stream  inbox, consumer group "ng": d data, a attempts
 *   ng:{T}:retry              zset    inbox ids waiting for a later attempt, by due time
 *   ng:{T}:dead               stream  dead letters: d, a, r reason, s last status
 *   ng:{T}:seen:<msg id hex>  string  replay window, expires with the parcel
 *   ng:{T}:cursor             hash    peer -> cursor
 *   ng:{T}:lease:<peer>       string  poller lease: owner, with a TTL
 *
 * Steps that touch more than one key (accept, retry, dead-letter, replay)
 * are Lua scripts, so a crash or a lost connection leaves no half-done
 * state. Nothing is ever trimmed from the inbox: acked entries are deleted
 * one by one, so no pending entry can be lost to XTRIM.
 */
#ifndef NG_QUEUE_REDIS_H
#define NG_QUEUE_REDIS_H

#include "ng_queue.h"

/*
 * A handle on the Redis at url (see ng_redis.h), every command bounded by
 * timeout_ms. Connects lazily: a Redis that is down now is not an error
 * until an operation needs it; after a failure, reconnection is tried with
 * a backoff from 50 ms to 2 s, and calls in between fail at once. The
 * process must ignore SIGPIPE (noisegate does), or a write to a Redis that
 * just died kills it.
 */
NG_MUST_CHECK ng_err ng_queue_redis_new(ng_queue **out, const char *url, int timeout_ms);

#endif

/*
 * ng_redis.h: reaching Redis from a URL, and the one way noisegate sends it
 * commands (argv form, so binary values pass unharmed).
 *
 * URLs: "redis://HOST[:PORT][/DB]" (HOST a name, an IPv4 literal or an
 * IPv6 literal in brackets; PORT 6379 by default) or "unix:PATH[?db=N]".
 */
#ifndef NG_REDIS_H
#define NG_REDIS_H

#include <limits.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

#include "ng_error.h"

typedef struct ng_redis_url {
    char host[256]; /* "" for a unix socket */
    int port;
    char path[PATH_MAX]; /* the socket, for "unix:" */
    int db;
} ng_redis_url;

/* NG_ERR_PARSE for anything but the two forms above. */
NG_MUST_CHECK ng_err ng_redis_parse_url(ng_redis_url *out, const char *url);

/*
 * Connects, applies timeout_ms to the connection and to every command,
 * and selects the database. NG_ERR_UNAVAILABLE if Redis does not answer.
 */
NG_MUST_CHECK ng_err ng_redis_connect(redisContext **out, const char *url, int timeout_ms);

/*
 * Runs one command. *reply is NULL or a reply to free with freeReplyObject.
 * NG_ERR_UNAVAILABLE when the connection failed (the context is then
 * unusable: free it and connect again); NG_ERR_IO for an error reply.
 */
NG_MUST_CHECK ng_err ng_redis_command(redisContext *c, redisReply **reply, int argc, const char **argv,
                                      const size_t *lens);

#endif

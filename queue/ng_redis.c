#include "ng_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static int
parse_int(const char *s, size_t len, long lo, long hi, int *out)
{
    long v = 0;
    size_t i;

    if (len == 0 || len > 9)
        return -1;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static ng_err
parse_unix(ng_redis_url *out, const char *rest)
{
    const char *q = strchr(rest, '?');
    size_t plen = q ? (size_t)(q - rest) : strlen(rest);

    if (plen == 0 || plen >= sizeof out->path)
        return NG_ERR_PARSE;
    memcpy(out->path, rest, plen);
    out->path[plen] = '\0';
    if (q != NULL && (strncmp(q, "?db=", 4) != 0 || parse_int(q + 4, strlen(q + 4), 0, 1000000, &out->db) != 0))
        return NG_ERR_PARSE;
    return NG_OK;
}

static ng_err
parse_tcp(ng_redis_url *out, const char *rest)
{
    const char *host = rest, *end, *p;
    size_t hlen;

    if (*rest == '[') {
        host = rest + 1;
        end = strchr(host, ']');
        if (end == NULL)
            return NG_ERR_PARSE;
        hlen = (size_t)(end - host);
        p = end + 1;
    } else {
        hlen = strcspn(rest, ":/");
        p = rest + hlen;
    }
    if (hlen == 0 || hlen >= sizeof out->host)
        return NG_ERR_PARSE;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    if (strcspn(out->host, "@?#% ") != hlen)
        return NG_ERR_PARSE;
    out->port = 6379;
    if (*p == ':') {
        size_t n = strcspn(p + 1, "/");
        if (parse_int(p + 1, n, 1, 65535, &out->port) != 0)
            return NG_ERR_PARSE;
        p += 1 + n;
    }
    if (*p == '/' && p[1] != '\0')
        return parse_int(p + 1, strlen(p + 1), 0, 1000000, &out->db) == 0 ? NG_OK : NG_ERR_PARSE;
    return *p == '\0' || (p[0] == '/' && p[1] == '\0') ? NG_OK : NG_ERR_PARSE;
}

ng_err
ng_redis_parse_url(ng_redis_url *out, const char *url)
{
    memset(out, 0, sizeof *out);
    if (url == NULL)
        return NG_ERR_PARSE;
    if (strncmp(url, "unix:", 5) == 0)
        return parse_unix(out, url + 5);
    if (strncmp(url, "redis://", 8) == 0)
        return parse_tcp(out, url + 8);
    return NG_ERR_PARSE;
}

ng_err
ng_redis_command(redisContext *c, redisReply **reply, int argc, const char **argv, const size_t *lens)
{
    redisReply *r;

    *reply = NULL;
    if (c == NULL || c->err)
        return NG_ERR_UNAVAILABLE;
    r = redisCommandArgv(c, argc, argv, lens);
    if (r == NULL)
        return NG_ERR_UNAVAILABLE;
    if (r->type == REDIS_REPLY_ERROR) {
        freeReplyObject(r);
        return NG_ERR_IO;
    }
    *reply = r;
    return NG_OK;
}

ng_err
ng_redis_connect(redisContext **out, const char *url, int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ng_redis_url u;
    redisContext *c;
    redisReply *r;
    ng_err err;

    *out = NULL;
    err = ng_redis_parse_url(&u, url);
    if (err)
        return err;
    c = u.host[0] ? redisConnectWithTimeout(u.host, u.port, tv) : redisConnectUnixWithTimeout(u.path, tv);
    if (c == NULL)
        return NG_ERR_NOMEM;
    if (c->err || redisSetTimeout(c, tv) != REDIS_OK) {
        redisFree(c);
        return NG_ERR_UNAVAILABLE;
    }
    /* A unix socket connects even to a server that is hung: ask it something. */
    {
        char db[16];
        const char *argv[] = {"SELECT", db};
        size_t lens[] = {6, 0};

        lens[1] = (size_t)snprintf(db, sizeof db, "%d", u.db);
        err = ng_redis_command(c, &r, 2, argv, lens);
        freeReplyObject(r);
        if (err) {
            redisFree(c);
            return err;
        }
    }
    *out = c;
    return NG_OK;
}

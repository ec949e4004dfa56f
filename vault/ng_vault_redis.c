/*
 * The Redis form of the vault store: the sealed vault is one string key.
 * Readers GET it; writers WATCH it, read, and replace it in MULTI/EXEC, so a
 * write that raced another one is refused by Redis itself (EXEC answers
 * nil) and nothing is half-written. A killed writer leaves no lock behind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ng_redis.h"
#include "ng_vault_store.h"

struct redis_store {
    struct ng_vault_store base;
    redisContext *c;
    int timeout_ms;
    char url[PATH_MAX + 64];
    char key[256];
};

/* A connection lost by an earlier call is replaced before the next one. */
static ng_err
connected(struct redis_store *r)
{
    if (r->c != NULL && !r->c->err)
        return NG_OK;
    if (r->c != NULL)
        redisFree(r->c);
    r->c = NULL;
    return ng_redis_connect(&r->c, r->url, r->timeout_ms);
}

static ng_err
run(struct redis_store *r, redisReply **reply, int argc, const char **argv, const size_t *lens)
{
    ng_err err = connected(r);

    if (err)
        return err;
    return ng_redis_command(r->c, reply, argc, argv, lens);
}

static ng_err
simple(struct redis_store *r, const char *cmd)
{
    const char *argv[] = {cmd};
    size_t lens[] = {strlen(cmd)};
    redisReply *reply;
    ng_err err = run(r, &reply, 1, argv, lens);

    freeReplyObject(reply);
    return err;
}

static ng_err
redis_begin(ng_vault_store *s)
{
    struct redis_store *r = (struct redis_store *)s;
    const char *argv[] = {"WATCH", r->key};
    size_t lens[] = {5, strlen(r->key)};
    redisReply *reply;
    ng_err err = run(r, &reply, 2, argv, lens);

    freeReplyObject(reply);
    return err;
}

static ng_err
redis_read(ng_vault_store *s, size_t max, uint8_t **buf, size_t *len)
{
    struct redis_store *r = (struct redis_store *)s;
    const char *argv[] = {"GET", r->key};
    size_t lens[] = {3, strlen(r->key)};
    redisReply *reply;
    ng_err err = run(r, &reply, 2, argv, lens);

    *buf = NULL;
    *len = 0;
    if (err)
        return err;
    if (reply->type == REDIS_REPLY_NIL)
        err = NG_ERR_NOT_FOUND;
    else if (reply->type != REDIS_REPLY_STRING || reply->len > max)
        err = NG_ERR_CORRUPT;
    else if ((*buf = malloc(reply->len > 0 ? reply->len : 1)) == NULL)
        err = NG_ERR_NOMEM;
    else {
        memcpy(*buf, reply->str, reply->len);
        *len = reply->len;
    }
    freeReplyObject(reply);
    return err;
}

static ng_err
redis_write(ng_vault_store *s, const uint8_t *buf, size_t len, int create)
{
    struct redis_store *r = (struct redis_store *)s;
    const char *set[] = {"SET", r->key, (const char *)buf, "NX"};
    size_t lens[] = {3, strlen(r->key), len, 2};
    redisReply *reply;
    ng_err err;

    if (create) {
        err = run(r, &reply, 4, set, lens);
        if (err == NG_OK && reply->type == REDIS_REPLY_NIL)
            err = NG_ERR_EXISTS;
        freeReplyObject(reply);
        return err;
    }
    err = simple(r, "MULTI");
    if (err)
        return err;
    err = run(r, &reply, 3, set, lens);
    freeReplyObject(reply);
    if (err) {
        (void)simple(r, "DISCARD");
        return err;
    }
    {
        const char *exec[] = {"EXEC"};
        size_t elen[] = {4};

        err = run(r, &reply, 1, exec, elen);
    }
    /* A nil EXEC: the key changed after WATCH, and nothing was written. */
    if (err == NG_OK && reply->type == REDIS_REPLY_NIL)
        err = NG_ERR_CONFLICT;
    else if (err == NG_OK && (reply->type != REDIS_REPLY_ARRAY || reply->elements != 1 ||
                              reply->element[0]->type != REDIS_REPLY_STATUS))
        err = NG_ERR_IO;
    freeReplyObject(reply);
    return err;
}

static void
redis_end(ng_vault_store *s)
{
    struct redis_store *r = (struct redis_store *)s;

    if (r->c != NULL && !r->c->err)
        (void)simple(r, "UNWATCH");
}

static void
redis_destroy(ng_vault_store *s)
{
    struct redis_store *r = (struct redis_store *)s;

    if (r->c != NULL)
        redisFree(r->c);
    free(r);
}

static ng_err
redis_stamp(ng_vault_store *s, uint8_t *out)
{
    struct redis_store *r = (struct redis_store *)s;
    const char *argv[] = {"GETRANGE", r->key, "-32", "-1"};
    size_t lens[] = {8, strlen(r->key), 3, 2};
    redisReply *reply;
    ng_err err = run(r, &reply, 4, argv, lens);

    if (err)
        return err;
    /* A missing key reads as "", as does an empty one; neither is a vault. */
    if (reply->type != REDIS_REPLY_STRING)
        err = NG_ERR_IO;
    else if (reply->len == 0)
        err = NG_ERR_NOT_FOUND;
    else if (reply->len != NG_VAULT_STORE_STAMP_BYTES)
        err = NG_ERR_CORRUPT;
    else
        memcpy(out, reply->str, NG_VAULT_STORE_STAMP_BYTES);
    freeReplyObject(reply);
    return err;
}

static const struct ng_vault_store_ops redis_ops = {redis_begin, redis_read,    redis_write,
                                                    redis_end,   redis_destroy, redis_stamp};

ng_err
ng_vault_store_redis(ng_vault_store **out, const char *url, const char *key, int timeout_ms)
{
    struct redis_store *r;
    ng_redis_url parsed;
    ng_err err;

    *out = NULL;
    if (url == NULL || key == NULL || key[0] == '\0' || strlen(key) >= sizeof r->key || strlen(url) >= sizeof r->url ||
        timeout_ms <= 0)
        return NG_ERR_INVALID_ARG;
    err = ng_redis_parse_url(&parsed, url);
    if (err)
        return err;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return NG_ERR_NOMEM;
    r->base.ops = &redis_ops;
    r->timeout_ms = timeout_ms;
    snprintf(r->url, sizeof r->url, "%s", url);
    snprintf(r->key, sizeof r->key, "%s", key);
    snprintf(r->base.where, sizeof r->base.where, "vault key %.200s on %.100s", key, url);
    err = connected(r);
    if (err) {
        redis_destroy(&r->base);
        return err;
    }
    *out = &r->base;
    return NG_OK;
}

#include "ng_queue_redis.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "ng_redis.h"

enum {
    KEY_BYTES = 256,
    MAX_ARGS = 16,
    BACKOFF_MIN_MS = 50,
    BACKOFF_MAX_MS = 2000,
    MAX_LIMIT = 10000,
    TRIM_BATCH = 256,
};

enum { SCRIPTS = 9, SHA_HEX = 41 };

struct redis_queue {
    struct ng_queue base;
    redisContext *c;
    /* SHA1 of each script as the server knows it ("" until loaded on this connection). */
    const char *script[SCRIPTS];
    char sha[SCRIPTS][SHA_HEX];
    int timeout_ms;
    uint64_t retry_at_ms; /* no reconnection attempt before this */
    uint64_t backoff_ms;
    char url[PATH_MAX + 64];
};

/*
 * The scripts. KEYS and ARGV are documented per script; each returns what
 * the C side needs to tell the outcomes apart.
 */

/*
 * KEYS in, then one seen key per message; ARGV expires_ms and data per
 * message. For each message its new id, or false if it was seen before.
 * The message is queued before it is marked seen: Redis does not roll back
 * a script that fails halfway (out of memory), and a mark without its
 * message would turn the sender's retry away as a replay and lose it.
 */
static const char accept_lua[] = "local out = {}\n"
                                 "for i = 2, #KEYS do\n"
                                 "  if redis.call('EXISTS', KEYS[i]) == 1 then out[i-1] = false else\n"
                                 "    out[i-1] = redis.call('XADD', KEYS[1], '*', 'd', ARGV[2*i-2], 'a', '0')\n"
                                 "    redis.call('SET', KEYS[i], '1', 'PXAT', ARGV[2*i-3])\n"
                                 "  end\n"
                                 "end\n"
                                 "return out\n";

/*
 * KEYS request guard, idem guard, then one outbox per parcel; ARGV request
 * expiry ('0': no guard), idem expiry ('0': none), the answer ('' keeps
 * none), then parcel and expiry per parcel. {0} for a replayed request,
 * {1, answer} for an idempotent repeat, {2, ids} once stored. Parcels are
 * appended before the guards are set, for the reason given above accept.
 */
static const char submit_lua[] =
    "if ARGV[2] ~= '0' then\n"
    "  local prev = redis.call('GET', KEYS[2])\n"
    "  if prev then return {1, prev} end\n"
    "end\n"
    "if ARGV[1] ~= '0' and redis.call('EXISTS', KEYS[1]) == 1 then return {0} end\n"
    "local ids = {}\n"
    "for i = 3, #KEYS do\n"
    "  ids[i-2] = redis.call('XADD', KEYS[i], '*', 'p', ARGV[2*i-2], 'e', ARGV[2*i-1])\n"
    "end\n"
    "if ARGV[2] ~= '0' and ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3], 'PXAT', ARGV[2]) end\n"
    "if ARGV[1] ~= '0' then redis.call('SET', KEYS[1], '1', 'PXAT', ARGV[1]) end\n"
    "return {2, ids}\n";

/*
 * KEYS in, retry; ARGV id, due_ms. 1, or 0 if no such pending entry.
 * Scheduled before it is acked: a script that fails halfway (Redis out of
 * memory) does not roll back, and the other order could leave an entry
 * neither pending nor scheduled, so never delivered again.
 */
static const char retry_lua[] =
    "if #redis.call('XPENDING', KEYS[1], 'ng', ARGV[1], ARGV[1], 1) == 0 then return 0 end\n"
    "redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])\n"
    "redis.call('XACK', KEYS[1], 'ng', ARGV[1])\n"
    "return 1\n";

/*
 * KEYS in, retry; ARGV now_ms, limit. Moves due retries back to the tail
 * of the inbox with one more attempt; returns how many.
 */
static const char promote_lua[] =
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])\n"
    "for _, id in ipairs(ids) do\n"
    "  local e = redis.call('XRANGE', KEYS[1], id, id)\n"
    "  if #e == 1 then\n"
    "    local f = e[1][2]; local d, a = nil, 0\n"
    "    for i = 1, #f, 2 do if f[i] == 'd' then d = f[i+1] elseif f[i] == 'a' then a = tonumber(f[i+1]) end end\n"
    "    if d then redis.call('XADD', KEYS[1], '*', 'd', d, 'a', tostring(a + 1)) end\n"
    "    redis.call('XDEL', KEYS[1], id)\n"
    "  end\n"
    "  redis.call('ZREM', KEYS[2], id)\n"
    "end\n"
    "return #ids\n";

/* KEYS in, retry, dead; ARGV id, reason, status. 1, or 0 if no such entry. */
static const char dead_lua[] =
    "local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])\n"
    "if #e == 0 then return 0 end\n"
    "local f = e[1][2]; local d, a = '', 0\n"
    "for i = 1, #f, 2 do if f[i] == 'd' then d = f[i+1] elseif f[i] == 'a' then a = tonumber(f[i+1]) end end\n"
    "redis.call('XADD', KEYS[3], '*', 'd', d, 'a', tostring(a + 1), 'r', ARGV[2], 's', ARGV[3])\n"
    "redis.call('XACK', KEYS[1], 'ng', ARGV[1])\n"
    "redis.call('XDEL', KEYS[1], ARGV[1])\n"
    "redis.call('ZREM', KEYS[2], ARGV[1])\n"
    "return 1\n";

/* KEYS in, dead; ARGV id. The new inbox id, or false if no such dead letter. */
static const char replay_lua[] = "local e = redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1])\n"
                                 "if #e == 0 then return false end\n"
                                 "local f = e[1][2]; local d = ''\n"
                                 "for i = 1, #f, 2 do if f[i] == 'd' then d = f[i+1] end end\n"
                                 "local id = redis.call('XADD', KEYS[1], '*', 'd', d, 'a', '0')\n"
                                 "redis.call('XDEL', KEYS[2], ARGV[1])\n"
                                 "return id\n";

/*
 * KEYS in; ARGV ids. Deletes only what was pending: an id that was
 * retried meanwhile still holds the data its next attempt needs. Returns
 * how many were acked.
 */
static const char ack_lua[] = "local n = 0\n"
                              "for _, id in ipairs(ARGV) do\n"
                              "  if redis.call('XACK', KEYS[1], 'ng', id) == 1 then\n"
                              "    redis.call('XDEL', KEYS[1], id); n = n + 1\n"
                              "  end\n"
                              "end\n"
                              "return n\n";

/* KEYS lease; ARGV owner, ttl_ms. 1 if owner holds it now. */
static const char lease_lua[] = "local v = redis.call('GET', KEYS[1])\n"
                                "if v == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end\n"
                                "if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end\n"
                                "return 0\n";

/* KEYS lease; ARGV owner. */
static const char release_lua[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end\n"
                                  "return 1\n";

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Slugs only: they become part of key names. */
static int
name_ok(const char *s)
{
    size_t i, len = s != NULL ? strlen(s) : 0;

    if (len == 0 || len >= NG_QUEUE_NAME_BYTES || s[0] == '-')
        return 0;
    for (i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

/* A stream id "ms-seq", as Redis gives them. */
static int
stream_id_ok(const char *s)
{
    size_t i, len = s != NULL ? strlen(s) : 0, dash = 0;

    if (len < 3 || len > 41)
        return 0;
    for (i = 0; i < len; i++) {
        if (s[i] == '-' && i > 0 && i + 1 < len && dash == 0)
            dash = i;
        else if (s[i] < '0' || s[i] > '9')
            return 0;
    }
    return dash != 0;
}

static int
consumer_ok(const char *s)
{
    size_t i, len = s != NULL ? strlen(s) : 0;

    if (len == 0 || len > 64)
        return 0;
    for (i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              strchr("._:-", s[i]) != NULL))
            return 0;
    return 1;
}

static void
key(char out[KEY_BYTES], const char *tenant, const char *suffix)
{
    snprintf(out, KEY_BYTES, "ng:{%s}:%s", tenant, suffix);
}

static void
hex_key(char out[KEY_BYTES], const char *tenant, const char *kind, const uint8_t *bytes, size_t len)
{
    char hex[2 * NG_QUEUE_KEY_ID_BYTES + 1];

    sodium_bin2hex(hex, sizeof hex, bytes, len);
    snprintf(out, KEY_BYTES, "ng:{%s}:%s:%s", tenant, kind, hex);
}

static void
drop_connection(struct redis_queue *r)
{
    if (r->c != NULL)
        redisFree(r->c);
    r->c = NULL;
    r->backoff_ms = r->backoff_ms == 0 ? BACKOFF_MIN_MS : r->backoff_ms * 2;
    if (r->backoff_ms > BACKOFF_MAX_MS)
        r->backoff_ms = BACKOFF_MAX_MS;
    r->retry_at_ms = mono_ms() + r->backoff_ms;
}

static ng_err
connected(struct redis_queue *r)
{
    ng_err err;

    if (r->c != NULL && !r->c->err)
        return NG_OK;
    if (r->c != NULL) {
        drop_connection(r);
        return NG_ERR_UNAVAILABLE;
    }
    /* Fail fast while backing off: a caller in a loop must not hammer a dead Redis. */
    if (mono_ms() < r->retry_at_ms)
        return NG_ERR_UNAVAILABLE;
    err = ng_redis_connect(&r->c, r->url, r->timeout_ms);
    if (err == NG_OK) {
        r->backoff_ms = 0;
        memset(r->sha, 0, sizeof r->sha); /* a restarted server has forgotten them */
        return NG_OK;
    }
    drop_connection(r);
    return err == NG_ERR_PARSE ? err : NG_ERR_UNAVAILABLE;
}

/*
 * Runs a command. Error replies come back as replies (type ERROR) so that
 * callers can react to NOGROUP; only a lost connection and a server that
 * cannot take commands yet (LOADING, BUSY) are errors here.
 */
static ng_err
command(struct redis_queue *r, redisReply **reply, int argc, const char **argv, const size_t *lens)
{
    ng_err err = connected(r);

    *reply = NULL;
    if (err)
        return err;
    *reply = redisCommandArgv(r->c, argc, argv, lens);
    /*
     * EPIPE: the command never left, because the server we were connected
     * to is gone (restarted, say). Safe to send again once on a fresh
     * connection; after any other failure it may have run, so the caller
     * hears "unavailable" and decides.
     */
    if (*reply == NULL && r->c->err == REDIS_ERR_IO && errno == EPIPE) {
        redisFree(r->c);
        r->c = NULL;
        r->retry_at_ms = 0;
        if (connected(r) == NG_OK)
            *reply = redisCommandArgv(r->c, argc, argv, lens);
    }
    if (*reply == NULL) {
        drop_connection(r);
        return NG_ERR_UNAVAILABLE;
    }
    /*
     * A server that just restarted answers LOADING while it reads its AOF
     * (and BUSY while a script runs too long): it did nothing, and is not
     * ours to call broken. Unavailable, so that a request gets 503, not 500.
     */
    if ((*reply)->type == REDIS_REPLY_ERROR &&
        (strncmp((*reply)->str, "LOADING", 7) == 0 || strncmp((*reply)->str, "BUSY ", 5) == 0)) {
        freeReplyObject(*reply);
        *reply = NULL;
        return NG_ERR_UNAVAILABLE;
    }
    return NG_OK;
}

/* argv from NUL-terminated strings, with binary ones given by (ptr, len) pairs at the end. */
struct args {
    const char *v[MAX_ARGS];
    size_t len[MAX_ARGS];
    int n;
};

static void
arg(struct args *a, const char *s)
{
    a->v[a->n] = s;
    a->len[a->n++] = strlen(s);
}

static void
arg_bin(struct args *a, const void *p, size_t len)
{
    a->v[a->n] = p;
    a->len[a->n++] = len;
}

static ng_err
run(struct redis_queue *r, struct args *a, redisReply **reply)
{
    ng_err err = command(r, reply, a->n, a->v, a->len);

    if (err == NG_OK && (*reply)->type == REDIS_REPLY_ERROR) {
        freeReplyObject(*reply);
        *reply = NULL;
        return NG_ERR_IO;
    }
    return err;
}

/* The slot of a script in the SHA cache, loading it into the server when it is not there yet. */
static int
script_sha(struct redis_queue *r, const char *script)
{
    const char *argv[] = {"SCRIPT", "LOAD", script};
    size_t lens[] = {6, 4, strlen(script)};
    redisReply *reply;
    int i;

    for (i = 0; i < SCRIPTS && r->script[i] != NULL && r->script[i] != script; i++)
        ;
    if (i == SCRIPTS)
        return -1;
    r->script[i] = script;
    if (r->sha[i][0] != '\0')
        return i;
    if (command(r, &reply, 3, argv, lens) != NG_OK)
        return -1;
    if (reply->type == REDIS_REPLY_STRING && reply->len == SHA_HEX - 1)
        memcpy(r->sha[i], reply->str, SHA_HEX);
    freeReplyObject(reply);
    return r->sha[i][0] != '\0' ? i : -1;
}

/*
 * Runs a script: argv[0] and argv[1] are filled here, the number of keys,
 * the keys and the arguments follow. By EVALSHA, which spares sending and
 * hashing the text on every call, and by EVAL if the server does not know
 * it (a restart, SCRIPT FLUSH, a failover). An error reply is NG_ERR_IO.
 */
static ng_err
eval_argv(struct redis_queue *r, const char *script, int argc, const char **argv, size_t *lens, redisReply **reply)
{
    int slot = script_sha(r, script);
    ng_err err;

    argv[0] = slot >= 0 ? "EVALSHA" : "EVAL";
    argv[1] = slot >= 0 ? r->sha[slot] : script;
    lens[0] = strlen(argv[0]);
    lens[1] = strlen(argv[1]);
    err = command(r, reply, argc, argv, lens);
    /* The connection may have been replaced inside command(): look the slot up again. */
    if (err == NG_OK && (*reply)->type == REDIS_REPLY_ERROR && strncmp((*reply)->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(*reply);
        if (slot >= 0)
            r->sha[slot][0] = '\0';
        argv[0] = "EVAL";
        argv[1] = script;
        lens[0] = 4;
        lens[1] = strlen(script);
        err = command(r, reply, argc, argv, lens);
    }
    if (err == NG_OK && (*reply)->type == REDIS_REPLY_ERROR) {
        freeReplyObject(*reply);
        *reply = NULL;
        return NG_ERR_IO;
    }
    return err;
}

/* A script over nkeys keys and the args already in a after them. */
static ng_err
eval(struct redis_queue *r, const char *script, struct args *a, int nkeys, redisReply **reply)
{
    struct args full;
    char num[8];
    int i;

    full.n = 0;
    arg(&full, "");
    arg(&full, "");
    snprintf(num, sizeof num, "%d", nkeys);
    arg(&full, num);
    for (i = 0; i < a->n; i++)
        arg_bin(&full, a->v[i], a->len[i]);
    return eval_argv(r, script, full.n, full.v, full.len, reply);
}

static int
field_u64(const redisReply *v, uint64_t *out)
{
    char buf[24];

    if (v->type != REDIS_REPLY_STRING || v->len == 0 || v->len >= sizeof buf)
        return -1;
    memcpy(buf, v->str, v->len);
    buf[v->len] = '\0';
    *out = strtoull(buf, NULL, 10);
    return 0;
}

/* Appends the entries of an XRANGE-shaped reply ([[id, [f, v, ...]], ...]) to b. */
static ng_err
add_entries(const redisReply *arr, ng_queue_batch *b, const char *data_field)
{
    size_t i, j;
    ng_queue_item *more;

    if (arr->type != REDIS_REPLY_ARRAY)
        return NG_ERR_IO;
    if (arr->elements == 0)
        return NG_OK;
    more = realloc(b->items, (b->n + arr->elements) * sizeof *more);
    if (more == NULL)
        return NG_ERR_NOMEM;
    b->items = more;
    for (i = 0; i < arr->elements; i++) {
        const redisReply *e = arr->element[i], *f;
        ng_queue_item *it = &b->items[b->n];
        uint64_t v;

        /* XAUTOCLAIM may list an entry deleted meanwhile as nil. */
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING ||
            e->element[0]->len >= NG_QUEUE_ID_BYTES || e->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        memset(it, 0, sizeof *it);
        memcpy(it->id, e->element[0]->str, e->element[0]->len);
        /* It becomes a cursor: one that a later XRANGE would refuse would stop the reader for good. */
        if (!stream_id_ok(it->id))
            continue;
        f = e->element[1];
        for (j = 0; j + 1 < f->elements; j += 2) {
            const redisReply *name = f->element[j], *val = f->element[j + 1];

            if (name->type != REDIS_REPLY_STRING || name->len != 1)
                continue;
            if (name->str[0] == data_field[0] && val->type == REDIS_REPLY_STRING && it->data == NULL) {
                it->data = malloc(val->len > 0 ? val->len : 1);
                if (it->data == NULL)
                    return NG_ERR_NOMEM;
                memcpy(it->data, val->str, val->len);
                it->len = val->len;
            } else if (name->str[0] == 'e' && field_u64(val, &v) == 0) {
                it->expires_ms = v;
            } else if (name->str[0] == 'a' && field_u64(val, &v) == 0) {
                it->attempts = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
            } else if (name->str[0] == 's' && field_u64(val, &v) == 0) {
                it->last_status = v > 999 ? 0 : (int)v;
            } else if (name->str[0] == 'r' && val->type == REDIS_REPLY_STRING) {
                size_t n = val->len < sizeof it->reason - 1 ? val->len : sizeof it->reason - 1;
                memcpy(it->reason, val->str, n);
            }
        }
        if (it->data == NULL) /* not one of ours: skip rather than hand out nothing */
            continue;
        snprintf(b->next, sizeof b->next, "%s", it->id);
        b->n++;
    }
    return NG_OK;
}

static ng_err
r_outbox_append(ng_queue *q, const char *tenant, const uint8_t key_id[NG_QUEUE_KEY_ID_BYTES],
                const uint8_t msg_id[NG_QUEUE_MSG_ID_BYTES], uint64_t created_ms, uint64_t expires_ms,
                const uint8_t *parcel, size_t len, char id[NG_QUEUE_ID_BYTES])
{
    struct redis_queue *r = (struct redis_queue *)q;
    char k[KEY_BYTES], exp[24];
    struct args a = {.n = 0};
    redisReply *reply;
    ng_err err;

    (void)msg_id;
    (void)created_ms;
    id[0] = '\0';
    if (!name_ok(tenant) || parcel == NULL || len == 0)
        return NG_ERR_INVALID_ARG;
    hex_key(k, tenant, "out", key_id, NG_QUEUE_KEY_ID_BYTES);
    snprintf(exp, sizeof exp, "%llu", (unsigned long long)expires_ms);
    arg(&a, "XADD");
    arg(&a, k);
    arg(&a, "*");
    arg(&a, "p");
    arg_bin(&a, parcel, len);
    arg(&a, "e");
    arg(&a, exp);
    err = run(r, &a, &reply);
    if (err)
        return err;
    if (reply->type == REDIS_REPLY_STRING && reply->len < NG_QUEUE_ID_BYTES)
        memcpy(id, reply->str, reply->len + 1);
    else
        err = NG_ERR_IO;
    freeReplyObject(reply);
    return err;
}

static ng_err
submit_reply(const redisReply *reply, ng_queue_submit *s)
{
    size_t i;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 || reply->element[0]->type != REDIS_REPLY_INTEGER)
        return NG_ERR_IO;
    switch (reply->element[0]->integer) {
    case 0: return NG_ERR_EXISTS;
    case 1:
        if (reply->elements != 2 || reply->element[1]->type != REDIS_REPLY_STRING)
            return NG_ERR_IO;
        s->previous = malloc(reply->element[1]->len > 0 ? reply->element[1]->len : 1);
        if (s->previous == NULL)
            return NG_ERR_NOMEM;
        memcpy(s->previous, reply->element[1]->str, reply->element[1]->len);
        s->previous_len = reply->element[1]->len;
        return NG_OK;
    case 2:
        /* An empty Lua table comes back as an empty array. */
        if (reply->elements != 2 || reply->element[1]->type != REDIS_REPLY_ARRAY || reply->element[1]->elements != s->n)
            return NG_ERR_IO;
        for (i = 0; i < s->n; i++) {
            const redisReply *e = reply->element[1]->element[i];

            if (e->type != REDIS_REPLY_STRING || e->len >= NG_QUEUE_ID_BYTES)
                return NG_ERR_IO;
            memcpy(s->parcels[i].id, e->str, e->len + 1);
        }
        return NG_OK;
    default: return NG_ERR_IO;
    }
}

static ng_err
r_outbox_submit(ng_queue *q, const char *tenant, ng_queue_submit *s)
{
    struct redis_queue *r = (struct redis_queue *)q;
    size_t i, nkeys = 2 + s->n, argc = 3 + nkeys + 3 + 2 * s->n, *lens = NULL;
    const char **argv = NULL;
    char(*keys)[KEY_BYTES] = NULL, (*exp)[24] = NULL, count[16], req_exp[24], idem_exp[24];
    redisReply *reply = NULL;
    ng_err err = NG_ERR_NOMEM;

    if (!name_ok(tenant) || (s->n > 0 && s->parcels == NULL) || s->n > NG_QUEUE_ACCEPT_MAX)
        return NG_ERR_INVALID_ARG;
    for (i = 0; i < s->n; i++)
        if (s->parcels[i].data == NULL || s->parcels[i].len == 0)
            return NG_ERR_INVALID_ARG;
    argv = malloc(argc * sizeof *argv);
    lens = malloc(argc * sizeof *lens);
    keys = malloc(nkeys * sizeof *keys);
    exp = malloc((s->n ? s->n : 1) * sizeof *exp);
    if (argv == NULL || lens == NULL || keys == NULL || exp == NULL)
        goto out;
    /* Absent guards still need key names in the same slot; the script ignores them. */
    if (s->request != NULL)
        hex_key(keys[0], tenant, "req", s->request, NG_QUEUE_GUARD_BYTES);
    else
        key(keys[0], tenant, "req");
    if (s->idem != NULL)
        hex_key(keys[1], tenant, "idem", s->idem, NG_QUEUE_GUARD_BYTES);
    else
        key(keys[1], tenant, "idem");
    snprintf(req_exp, sizeof req_exp, "%llu", s->request != NULL ? (unsigned long long)s->request_expires_ms : 0ull);
    snprintf(idem_exp, sizeof idem_exp, "%llu", s->idem != NULL ? (unsigned long long)s->idem_expires_ms : 0ull);
    snprintf(count, sizeof count, "%zu", nkeys);
    argv[0] = argv[1] = "";
    argv[2] = count;
    argv[3] = keys[0];
    argv[4] = keys[1];
    argv[3 + nkeys] = req_exp;
    argv[4 + nkeys] = idem_exp;
    argv[5 + nkeys] = s->answer != NULL ? (const char *)s->answer : "";
    for (i = 0; i < s->n; i++) {
        hex_key(keys[2 + i], tenant, "out", s->parcels[i].key_id, NG_QUEUE_KEY_ID_BYTES);
        snprintf(exp[i], sizeof exp[i], "%llu", (unsigned long long)s->parcels[i].expires_ms);
        argv[5 + i] = keys[2 + i];
        argv[6 + nkeys + 2 * i] = (const char *)s->parcels[i].data;
        argv[7 + nkeys + 2 * i] = exp[i];
    }
    /* The binary arguments have their lengths; strlen() is only for the text ones. */
    for (i = 0; i < argc; i++)
        lens[i] = (size_t)-1;
    lens[5 + nkeys] = s->answer != NULL ? s->answer_len : 0;
    for (i = 0; i < s->n; i++)
        lens[6 + nkeys + 2 * i] = s->parcels[i].len;
    for (i = 0; i < argc; i++)
        if (lens[i] == (size_t)-1)
            lens[i] = strlen(argv[i]);
    err = eval_argv(r, submit_lua, (int)argc, argv, lens, &reply);
    if (err == NG_OK)
        err = submit_reply(reply, s);
out:
    freeReplyObject(reply);
    free(argv);
    free(lens);
    free(keys);
    free(exp);
    return err;
}

/* XRANGE key (after + COUNT limit, into out. */
static ng_err
range_after(struct redis_queue *r, const char *k, const char *after, size_t limit, const char *data_field,
            ng_queue_batch *out)
{
    char start[NG_QUEUE_ID_BYTES + 1], count[24];
    struct args a = {.n = 0};
    redisReply *reply;
    ng_err err;

    memset(out, 0, sizeof *out);
    if (limit == 0 || limit > MAX_LIMIT)
        return NG_ERR_INVALID_ARG;
    if (after != NULL && after[0] != '\0' && !stream_id_ok(after))
        return NG_ERR_INVALID_ARG;
    snprintf(start, sizeof start, "%s%s", after != NULL && after[0] ? "(" : "-", after != NULL ? after : "");
    snprintf(count, sizeof count, "%zu", limit);
    arg(&a, "XRANGE");
    arg(&a, k);
    arg(&a, start);
    arg(&a, "+");
    arg(&a, "COUNT");
    arg(&a, count);
    err = run(r, &a, &reply);
    /* More than COUNT is no answer Redis gives: a peer's outbox may be on a server we do not run. */
    if (err == NG_OK && reply->type == REDIS_REPLY_ARRAY && reply->elements > limit)
        err = NG_ERR_IO;
    if (err == NG_OK)
        err = add_entries(reply, out, data_field);
    freeReplyObject(reply);
    if (err)
        ng_queue_batch_free(out);
    return err;
}

static ng_err
r_outbox_read(ng_queue *q, const char *tenant, const uint8_t key_id[NG_QUEUE_KEY_ID_BYTES], const char *after,
              size_t limit, ng_queue_batch *out)
{
    char k[KEY_BYTES];

    memset(out, 0, sizeof *out);
    if (!name_ok(tenant))
        return NG_ERR_INVALID_ARG;
    hex_key(k, tenant, "out", key_id, NG_QUEUE_KEY_ID_BYTES);
    return range_after((struct redis_queue *)q, k, after, limit, "p", out);
}

/*
 * Deletes expired entries from the head of the outbox, stopping at the
 * first one still valid: a parcel with a long ttl holds back shorter ones
 * behind it until it expires too, which wastes space but never drops a
 * parcel a peer could still read.
 */
static ng_err
r_outbox_trim(ng_queue *q, const char *tenant, const uint8_t key_id[NG_QUEUE_KEY_ID_BYTES], uint64_t now,
              size_t *removed)
{
    struct redis_queue *r = (struct redis_queue *)q;
    char k[KEY_BYTES], cursor[NG_QUEUE_ID_BYTES] = "";
    ng_queue_batch b;
    ng_err err;
    size_t i;

    *removed = 0;
    if (!name_ok(tenant))
        return NG_ERR_INVALID_ARG;
    hex_key(k, tenant, "out", key_id, NG_QUEUE_KEY_ID_BYTES);
    for (;;) {
        struct args a = {.n = 0};
        redisReply *reply;
        size_t expired = 0;

        err = range_after(r, k, cursor, TRIM_BATCH, "p", &b);
        if (err)
            return err;
        arg(&a, "XDEL");
        arg(&a, k);
        for (i = 0; i < b.n && b.items[i].expires_ms != 0 && b.items[i].expires_ms <= now && a.n < MAX_ARGS; i++) {
            arg(&a, b.items[i].id);
            expired++;
        }
        if (expired > 0) {
            snprintf(cursor, sizeof cursor, "%s", b.items[expired - 1].id);
            err = run(r, &a, &reply);
            freeReplyObject(reply);
        }
        ng_queue_batch_free(&b);
        if (err)
            return err;
        *removed += expired;
        if (expired == 0 || expired < (size_t)(MAX_ARGS - 2))
            return NG_OK;
    }
}

static ng_err
r_inbox_accept(ng_queue *q, const char *tenant, ng_queue_msg *msgs, size_t n)
{
    struct redis_queue *r = (struct redis_queue *)q;
    size_t i, argc = 4 + 3 * n, *lens = NULL;
    const char **argv = NULL;
    char in[KEY_BYTES], count[16], (*seen)[KEY_BYTES] = NULL, (*exp)[24] = NULL;
    redisReply *reply = NULL;
    ng_err err = NG_ERR_NOMEM;

    if (!name_ok(tenant))
        return NG_ERR_INVALID_ARG;
    key(in, tenant, "in");
    argv = malloc(argc * sizeof *argv);
    lens = malloc(argc * sizeof *lens);
    seen = malloc(n * sizeof *seen);
    exp = malloc(n * sizeof *exp);
    if (argv == NULL || lens == NULL || seen == NULL || exp == NULL)
        goto out;
    /* One script for the batch: the replay checks and the enqueues happen together or not at all. */
    argv[0] = argv[1] = "";
    snprintf(count, sizeof count, "%zu", n + 1);
    argv[2] = count;
    argv[3] = in;
    for (i = 0; i < n; i++) {
        hex_key(seen[i], tenant, "seen", msgs[i].msg_id, NG_QUEUE_MSG_ID_BYTES);
        snprintf(exp[i], sizeof exp[i], "%llu", (unsigned long long)msgs[i].expires_ms);
        argv[4 + i] = seen[i];
        argv[4 + n + 2 * i] = exp[i];
        argv[4 + n + 2 * i + 1] = (const char *)msgs[i].data;
    }
    for (i = 0; i < argc; i++)
        lens[i] = (size_t)-1;
    for (i = 0; i < n; i++)
        lens[4 + n + 2 * i + 1] = msgs[i].len;
    for (i = 0; i < argc; i++)
        if (lens[i] == (size_t)-1)
            lens[i] = strlen(argv[i]);
    err = eval_argv(r, accept_lua, (int)argc, argv, lens, &reply);
    if (err)
        goto out;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != n) {
        err = NG_ERR_IO;
        goto out;
    }
    for (i = 0; i < n; i++) {
        const redisReply *e = reply->element[i];

        if (e->type == REDIS_REPLY_STRING && e->len < NG_QUEUE_ID_BYTES) {
            memcpy(msgs[i].id, e->str, e->len + 1);
            msgs[i].result = NG_OK;
        } else {
            msgs[i].result = NG_ERR_EXISTS;
        }
    }
out:
    freeReplyObject(reply);
    free(argv);
    free(lens);
    free(seen);
    free(exp);
    return err;
}

/* The consumer group, made on first use; an existing one is fine. */
static ng_err
ensure_group(struct redis_queue *r, const char *in)
{
    const char *argv[] = {"XGROUP", "CREATE", in, "ng", "0", "MKSTREAM"};
    size_t lens[] = {6, 6, strlen(in), 2, 1, 8};
    redisReply *reply;
    ng_err err = command(r, &reply, 6, argv, lens);

    if (err)
        return err;
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "BUSYGROUP", 9) != 0)
        err = NG_ERR_IO;
    freeReplyObject(reply);
    return err;
}

/* XAUTOCLAIM or XREADGROUP; retried once after making the group when Redis says NOGROUP. */
static ng_err
group_command(struct redis_queue *r, const char *in, struct args *a, redisReply **reply)
{
    ng_err err = command(r, reply, a->n, a->v, a->len);

    if (err == NG_OK && (*reply)->type == REDIS_REPLY_ERROR && strncmp((*reply)->str, "NOGROUP", 7) == 0) {
        freeReplyObject(*reply);
        *reply = NULL;
        err = ensure_group(r, in);
        if (err == NG_OK)
            err = command(r, reply, a->n, a->v, a->len);
    }
    if (err == NG_OK && (*reply)->type == REDIS_REPLY_ERROR) {
        freeReplyObject(*reply);
        *reply = NULL;
        err = NG_ERR_IO;
    }
    return err;
}

static ng_err
r_inbox_claim(ng_queue *q, const char *tenant, const char *consumer, size_t limit, uint64_t lease_ms,
              ng_queue_batch *out)
{
    struct redis_queue *r = (struct redis_queue *)q;
    char in[KEY_BYTES], retry[KEY_BYTES], now[24], count[24], idle[24];
    struct args a = {.n = 0};
    redisReply *reply;
    ng_err err;

    memset(out, 0, sizeof *out);
    if (!name_ok(tenant) || !consumer_ok(consumer) || limit == 0 || limit > MAX_LIMIT || lease_ms == 0)
        return NG_ERR_INVALID_ARG;
    key(in, tenant, "in");
    key(retry, tenant, "retry");
    snprintf(now, sizeof now, "%llu", (unsigned long long)now_ms());
    snprintf(count, sizeof count, "%zu", limit);
    snprintf(idle, sizeof idle, "%llu", (unsigned long long)lease_ms);

    /* Due retries first go back to the tail of the stream. */
    arg(&a, in);
    arg(&a, retry);
    arg(&a, now);
    arg(&a, count);
    err = eval(r, promote_lua, &a, 2, &reply);
    freeReplyObject(reply);
    if (err)
        return err;

    /* Then what a dead consumer held longer than a lease. */
    a.n = 0;
    arg(&a, "XAUTOCLAIM");
    arg(&a, in);
    arg(&a, "ng");
    arg(&a, consumer);
    arg(&a, idle);
    arg(&a, "0-0");
    arg(&a, "COUNT");
    arg(&a, count);
    err = group_command(r, in, &a, &reply);
    if (err == NG_OK && (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2))
        err = NG_ERR_IO;
    if (err == NG_OK)
        err = add_entries(reply->element[1], out, "d");
    freeReplyObject(reply);

    /* Then new entries, as many as still fit. */
    if (err == NG_OK && out->n < limit) {
        snprintf(count, sizeof count, "%zu", limit - out->n);
        a.n = 0;
        arg(&a, "XREADGROUP");
        arg(&a, "GROUP");
        arg(&a, "ng");
        arg(&a, consumer);
        arg(&a, "COUNT");
        arg(&a, count);
        arg(&a, "STREAMS");
        arg(&a, in);
        arg(&a, ">");
        err = group_command(r, in, &a, &reply);
        if (err == NG_OK && reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
            reply->element[0]->type == REDIS_REPLY_ARRAY && reply->element[0]->elements == 2)
            err = add_entries(reply->element[0]->element[1], out, "d");
        else if (err == NG_OK && reply->type != REDIS_REPLY_NIL)
            err = NG_ERR_IO;
        freeReplyObject(reply);
    }
    if (err)
        ng_queue_batch_free(out);
    return err;
}

/* Runs a script whose integer answer is 1 for done and 0 for "no such entry". */
static ng_err
eval_found(struct redis_queue *r, const char *script, struct args *a, int nkeys)
{
    redisReply *reply;
    ng_err err = eval(r, script, a, nkeys, &reply);

    if (err)
        return err;
    if (reply->type != REDIS_REPLY_INTEGER)
        err = NG_ERR_IO;
    else if (reply->integer == 0)
        err = NG_ERR_NOT_FOUND;
    freeReplyObject(reply);
    return err;
}

static ng_err
r_inbox_ack(ng_queue *q, const char *tenant, const char *const *ids, size_t n, size_t *acked)
{
    struct redis_queue *r = (struct redis_queue *)q;
    const char **argv;
    size_t *lens, i;
    char in[KEY_BYTES];
    redisReply *reply;
    ng_err err;

    *acked = 0;
    if (!name_ok(tenant))
        return NG_ERR_INVALID_ARG;
    for (i = 0; i < n; i++)
        if (!stream_id_ok(ids[i]))
            return NG_ERR_INVALID_ARG;
    key(in, tenant, "in");
    /* One script call for the whole batch: one round trip however many deliveries finished. */
    argv = malloc((n + 4) * sizeof *argv);
    lens = malloc((n + 4) * sizeof *lens);
    if (argv == NULL || lens == NULL) {
        free(argv);
        free(lens);
        return NG_ERR_NOMEM;
    }
    argv[0] = argv[1] = "";
    argv[2] = "1";
    argv[3] = in;
    for (i = 0; i < 4; i++)
        lens[i] = strlen(argv[i]);
    for (i = 0; i < n; i++) {
        argv[4 + i] = ids[i];
        lens[4 + i] = strlen(ids[i]);
    }
    err = eval_argv(r, ack_lua, (int)(n + 4), argv, lens, &reply);
    free(argv);
    free(lens);
    if (err)
        return err;
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer >= 0)
        *acked = (size_t)reply->integer;
    else
        err = NG_ERR_IO;
    freeReplyObject(reply);
    return err;
}

static ng_err
r_inbox_retry(ng_queue *q, const char *tenant, const char *id, uint64_t at_ms)
{
    char in[KEY_BYTES], retry[KEY_BYTES], at[24];
    struct args a = {.n = 0};

    if (!name_ok(tenant) || !stream_id_ok(id))
        return NG_ERR_INVALID_ARG;
    key(in, tenant, "in");
    key(retry, tenant, "retry");
    snprintf(at, sizeof at, "%llu", (unsigned long long)at_ms);
    arg(&a, in);
    arg(&a, retry);
    arg(&a, id);
    arg(&a, at);
    return eval_found((struct redis_queue *)q, retry_lua, &a, 2);
}

static ng_err
r_inbox_dead(ng_queue *q, const char *tenant, const char *id, const char *reason, int last_status)
{
    char in[KEY_BYTES], retry[KEY_BYTES], dead[KEY_BYTES], status[16];
    struct args a = {.n = 0};

    if (!name_ok(tenant) || !stream_id_ok(id) || reason == NULL || strlen(reason) >= NG_QUEUE_REASON_BYTES)
        return NG_ERR_INVALID_ARG;
    key(in, tenant, "in");
    key(retry, tenant, "retry");
    key(dead, tenant, "dead");
    snprintf(status, sizeof status, "%d", last_status < 0 || last_status > 999 ? 0 : last_status);
    arg(&a, in);
    arg(&a, retry);
    arg(&a, dead);
    arg(&a, id);
    arg(&a, reason);
    arg(&a, status);
    return eval_found((struct redis_queue *)q, dead_lua, &a, 3);
}

static ng_err
length(struct redis_queue *r, const char *k, uint64_t *n)
{
    struct args a = {.n = 0};
    redisReply *reply;
    ng_err err;

    arg(&a, "XLEN");
    arg(&a, k);
    err = run(r, &a, &reply);
    if (err == NG_OK)
        *n = reply->type == REDIS_REPLY_INTEGER && reply->integer >= 0 ? (uint64_t)reply->integer : 0;
    freeReplyObject(reply);
    return err;
}

static ng_err
r_inbox_depth(ng_queue *q, const char *tenant, uint64_t *waiting, uint64_t *dead)
{
    struct redis_queue *r = (struct redis_queue *)q;
    char in[KEY_BYTES], dk[KEY_BYTES];
    ng_err err;

    *waiting = *dead = 0;
    if (!name_ok(tenant))
        return NG_ERR_INVALID_ARG;
    key(in, tenant, "in");
    key(dk, tenant, "dead");
    err = length(r, in, waiting);
    return err ? err : length(r, dk, dead);
}

static ng_err
r_dead_list(ng_queue *q, const char *tenant, const char *after, size_t limit, ng_queue_batch *out)
{
    char dk[KEY_BYTES];

    memset(out, 0, sizeof *out);
    if (!name_ok(tenant))
        return NG_ERR_INVALID_ARG;
    key(dk, tenant, "dead");
    return range_after((struct redis_queue *)q, dk, after, limit, "d", out);
}

static ng_err
r_dead_replay(ng_queue *q, const char *tenant, const char *id)
{
    char in[KEY_BYTES], dk[KEY_BYTES];
    struct args a = {.n = 0};
    redisReply *reply;
    ng_err err;

    if (!name_ok(tenant) || !stream_id_ok(id))
        return NG_ERR_INVALID_ARG;
    key(in, tenant, "in");
    key(dk, tenant, "dead");
    arg(&a, in);
    arg(&a, dk);
    arg(&a, id);
    err = eval((struct redis_queue *)q, replay_lua, &a, 2, &reply);
    if (err)
        return err;
    if (reply->type == REDIS_REPLY_NIL)
        err = NG_ERR_NOT_FOUND;
    else if (reply->type != REDIS_REPLY_STRING)
        err = NG_ERR_IO;
    freeReplyObject(reply);
    return err;
}

static ng_err
r_replay_check(ng_queue *q, const char *tenant, const uint8_t msg_id[NG_QUEUE_MSG_ID_BYTES], uint64_t expires_ms)
{
    char seen[KEY_BYTES], exp[24];
    struct args a = {.n = 0};
    redisReply *reply;
    ng_err err;

    if (!name_ok(tenant) || expires_ms == 0)
        return NG_ERR_INVALID_ARG;
    hex_key(seen, tenant, "seen", msg_id, NG_QUEUE_MSG_ID_BYTES);
    snprintf(exp, sizeof exp, "%llu", (unsigned long long)expires_ms);
    arg(&a, "SET");
    arg(&a, seen);
    arg(&a, "1");
    arg(&a, "NX");
    arg(&a, "PXAT");
    arg(&a, exp);
    err = run((struct redis_queue *)q, &a, &reply);
    if (err == NG_OK && reply->type == REDIS_REPLY_NIL)
        err = NG_ERR_EXISTS;
    freeReplyObject(reply);
    return err;
}

static ng_err
r_cursor_get(ng_queue *q, const char *tenant, const char *peer, char cursor[NG_QUEUE_ID_BYTES])
{
    char k[KEY_BYTES];
    struct args a = {.n = 0};
    redisReply *reply;
    ng_err err;

    cursor[0] = '\0';
    if (!name_ok(tenant) || !name_ok(peer))
        return NG_ERR_INVALID_ARG;
    key(k, tenant, "cursor");
    arg(&a, "HGET");
    arg(&a, k);
    arg(&a, peer);
    err = run((struct redis_queue *)q, &a, &reply);
    if (err == NG_OK && reply->type == REDIS_REPLY_STRING) {
        if (reply->len < NG_QUEUE_ID_BYTES)
            memcpy(cursor, reply->str, reply->len + 1);
        else
            err = NG_ERR_CORRUPT;
    }
    freeReplyObject(reply);
    return err;
}

static ng_err
r_cursor_set(ng_queue *q, const char *tenant, const char *peer, const char *cursor)
{
    char k[KEY_BYTES];
    struct args a = {.n = 0};
    redisReply *reply;
    ng_err err;

    if (!name_ok(tenant) || !name_ok(peer) || cursor == NULL || strlen(cursor) >= NG_QUEUE_ID_BYTES)
        return NG_ERR_INVALID_ARG;
    key(k, tenant, "cursor");
    arg(&a, "HSET");
    arg(&a, k);
    arg(&a, peer);
    arg(&a, cursor);
    err = run((struct redis_queue *)q, &a, &reply);
    freeReplyObject(reply);
    return err;
}

static ng_err
r_lease_take(ng_queue *q, const char *tenant, const char *peer, const char *owner, uint64_t ttl_ms)
{
    char k[KEY_BYTES], ttl[24];
    struct args a = {.n = 0};
    ng_err err;

    if (!name_ok(tenant) || !name_ok(peer) || !consumer_ok(owner) || ttl_ms == 0)
        return NG_ERR_INVALID_ARG;
    snprintf(k, sizeof k, "ng:{%s}:lease:%s", tenant, peer);
    snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)ttl_ms);
    arg(&a, k);
    arg(&a, owner);
    arg(&a, ttl);
    err = eval_found((struct redis_queue *)q, lease_lua, &a, 1);
    return err == NG_ERR_NOT_FOUND ? NG_ERR_CONFLICT : err;
}

static ng_err
r_lease_release(ng_queue *q, const char *tenant, const char *peer, const char *owner)
{
    char k[KEY_BYTES];
    struct args a = {.n = 0};

    if (!name_ok(tenant) || !name_ok(peer) || !consumer_ok(owner))
        return NG_ERR_INVALID_ARG;
    snprintf(k, sizeof k, "ng:{%s}:lease:%s", tenant, peer);
    arg(&a, k);
    arg(&a, owner);
    return eval_found((struct redis_queue *)q, release_lua, &a, 1);
}

/* ng:{T}:once:<digest hex>, SET NX with a TTL; the value goes as bytes with its length. */
static ng_err
r_once_put(ng_queue *q, const char *tenant, const uint8_t digest[NG_QUEUE_GUARD_BYTES], const uint8_t *value,
           size_t len, uint64_t ttl_ms)
{
    char k[KEY_BYTES], ttl[24];
    struct args a = {.n = 0};
    redisReply *reply;
    ng_err err;

    if (!name_ok(tenant))
        return NG_ERR_INVALID_ARG;
    hex_key(k, tenant, "once", digest, NG_QUEUE_GUARD_BYTES);
    snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)ttl_ms);
    arg(&a, "SET");
    arg(&a, k);
    arg_bin(&a, value, len);
    arg(&a, "NX");
    arg(&a, "PX");
    arg(&a, ttl);
    err = run((struct redis_queue *)q, &a, &reply);
    if (err == NG_OK && reply->type == REDIS_REPLY_NIL)
        err = NG_ERR_EXISTS;
    else if (err == NG_OK && reply->type != REDIS_REPLY_STATUS)
        err = NG_ERR_IO;
    freeReplyObject(reply);
    return err;
}

/* GETDEL: one command, so two takers can never both get the value. */
static ng_err
r_once_take(ng_queue *q, const char *tenant, const uint8_t digest[NG_QUEUE_GUARD_BYTES], uint8_t **value, size_t *len)
{
    char k[KEY_BYTES];
    struct args a = {.n = 0};
    redisReply *reply;
    ng_err err;

    if (!name_ok(tenant))
        return NG_ERR_INVALID_ARG;
    hex_key(k, tenant, "once", digest, NG_QUEUE_GUARD_BYTES);
    arg(&a, "GETDEL");
    arg(&a, k);
    err = run((struct redis_queue *)q, &a, &reply);
    if (err)
        return err;
    if (reply->type == REDIS_REPLY_NIL) {
        err = NG_ERR_NOT_FOUND;
    } else if (reply->type != REDIS_REPLY_STRING) {
        err = NG_ERR_IO;
    } else if ((*value = malloc(reply->len > 0 ? reply->len : 1)) == NULL) {
        err = NG_ERR_NOMEM;
    } else {
        memcpy(*value, reply->str, reply->len);
        *len = reply->len;
    }
    freeReplyObject(reply);
    return err;
}

static ng_err
r_ping(ng_queue *q)
{
    struct args a = {.n = 0};
    redisReply *reply;
    ng_err err;

    arg(&a, "PING");
    err = run((struct redis_queue *)q, &a, &reply);
    freeReplyObject(reply);
    return err;
}

static void
r_destroy(ng_queue *q)
{
    struct redis_queue *r = (struct redis_queue *)q;

    if (r->c != NULL)
        redisFree(r->c);
    free(r);
}

static const struct ng_queue_ops redis_ops = {
    .name = "redis",
    .outbox_append = r_outbox_append,
    .outbox_submit = r_outbox_submit,
    .outbox_read = r_outbox_read,
    .outbox_trim = r_outbox_trim,
    .inbox_accept = r_inbox_accept,
    .inbox_claim = r_inbox_claim,
    .inbox_ack = r_inbox_ack,
    .inbox_retry = r_inbox_retry,
    .inbox_dead = r_inbox_dead,
    .inbox_depth = r_inbox_depth,
    .dead_list = r_dead_list,
    .dead_replay = r_dead_replay,
    .replay_check = r_replay_check,
    .cursor_get = r_cursor_get,
    .cursor_set = r_cursor_set,
    .lease_take = r_lease_take,
    .lease_release = r_lease_release,
    .once_put = r_once_put,
    .once_take = r_once_take,
    .ping = r_ping,
    .destroy = r_destroy,
};

ng_err
ng_queue_redis_new(ng_queue **out, const char *url, int timeout_ms)
{
    struct redis_queue *r;
    ng_redis_url parsed;

    *out = NULL;
    if (url == NULL || strlen(url) >= sizeof r->url || timeout_ms <= 0)
        return NG_ERR_INVALID_ARG;
    if (ng_redis_parse_url(&parsed, url) != NG_OK)
        return NG_ERR_PARSE;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return NG_ERR_NOMEM;
    r->base.ops = &redis_ops;
    r->timeout_ms = timeout_ms;
    snprintf(r->url, sizeof r->url, "%s", url);
    *out = &r->base;
    return NG_OK;
}

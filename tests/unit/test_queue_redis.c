/*
 * The queues on a real redis-server started for the suite (unix socket,
 * AOF with appendfsync always): outbox order, cursors and trimming; inbox
 * claim, lease takeover after a dead consumer, ack, retry, dead letters and
 * their replay; the replay window per tenant; leases; Redis killed and
 * restarted under the queue with nothing lost.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sodium.h>

#include "ng_queue.h"
#include "ng_queue_http.h"
#include "ng_queue_redis.h"
#include "redis_server.h"

static struct redis_server redis;
static ng_queue *q;
static const char *const aof[] = {"--appendonly", "yes", "--appendfsync", "always", NULL};

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static void
msg_id(uint8_t id[NG_QUEUE_MSG_ID_BYTES], unsigned n)
{
    memset(id, 0, NG_QUEUE_MSG_ID_BYTES);
    id[0] = (uint8_t)(n >> 8);
    id[1] = (uint8_t)n;
    id[15] = 0xaa;
}

static int
setup(void **state)
{
    redisContext *c = redisConnectUnix(redis.sock);

    (void)state;
    if (c == NULL || c->err)
        return -1;
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    redisFree(c);
    return ng_queue_redis_new(&q, redis.url, 2000) == NG_OK ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    ng_queue_free(q);
    q = NULL;
    return 0;
}

/* Accepts a message whose body is "m<n>" into tenant's inbox. */
static void
accept_n(const char *tenant, unsigned n)
{
    uint8_t id[NG_QUEUE_MSG_ID_BYTES];
    char body[32], qid[NG_QUEUE_ID_BYTES];

    msg_id(id, n);
    snprintf(body, sizeof body, "m%u", n);
    assert_int_equal(ng_queue_inbox_accept(q, tenant, id, now_ms() + 60000, (const uint8_t *)body, strlen(body), qid),
                     NG_OK);
    assert_true(qid[0] != '\0');
}

static int
body_is(const ng_queue_item *it, unsigned n)
{
    char body[32];

    snprintf(body, sizeof body, "m%u", n);
    return it->len == strlen(body) && memcmp(it->data, body, it->len) == 0;
}

static void
test_outbox_order_cursor_trim(void **state)
{
    uint8_t kid[NG_QUEUE_KEY_ID_BYTES], other[NG_QUEUE_KEY_ID_BYTES], mid[NG_QUEUE_MSG_ID_BYTES], parcel[300];
    char id[NG_QUEUE_ID_BYTES], cursor[NG_QUEUE_ID_BYTES] = "";
    uint64_t now = now_ms();
    ng_queue_batch b;
    size_t removed, seen = 0;
    unsigned i;

    (void)state;
    memset(kid, 0x11, sizeof kid);
    memset(other, 0x22, sizeof other);
    /* Binary parcels, NULs included; the first three expire before "now + 1 s". */
    for (i = 0; i < 7; i++) {
        memset(parcel, 0, sizeof parcel);
        parcel[0] = (uint8_t)i;
        msg_id(mid, i);
        assert_int_equal(
            ng_queue_outbox_append(q, "acme", kid, mid, now, now + (i < 3 ? 500 : 60000), parcel, sizeof parcel, id),
            NG_OK);
    }
    assert_int_equal(ng_queue_outbox_append(q, "acme", other, mid, now, now + 60000, parcel, 10, id), NG_OK);
    /* Read two at a time from the cursor: every parcel once, in order. */
    do {
        assert_int_equal(ng_queue_outbox_read(q, "acme", kid, cursor, 2, &b), NG_OK);
        for (i = 0; i < b.n; i++) {
            assert_int_equal(b.items[i].len, sizeof parcel);
            assert_int_equal(b.items[i].data[0], seen + i);
            assert_int_equal(b.items[i].data[299], 0);
        }
        seen += b.n;
        if (b.n > 0)
            snprintf(cursor, sizeof cursor, "%s", b.next);
        ng_queue_batch_free(&b);
    } while (seen < 7 && seen > 0);
    assert_int_equal(seen, 7);
    assert_int_equal(ng_queue_outbox_read(q, "acme", kid, cursor, 10, &b), NG_OK);
    assert_int_equal(b.n, 0);
    assert_string_equal(b.next, "");
    ng_queue_batch_free(&b);
    /* Another tenant's outbox for the same key id is its own. */
    assert_int_equal(ng_queue_outbox_read(q, "other", kid, NULL, 10, &b), NG_OK);
    assert_int_equal(b.n, 0);
    ng_queue_batch_free(&b);

    /* Trim at "now + 1 s": exactly the three expired ones go. */
    assert_int_equal(ng_queue_outbox_trim(q, "acme", kid, now + 1000, &removed), NG_OK);
    assert_int_equal(removed, 3);
    assert_int_equal(ng_queue_outbox_read(q, "acme", kid, NULL, 10, &b), NG_OK);
    assert_int_equal(b.n, 4);
    assert_int_equal(b.items[0].data[0], 3);
    assert_int_equal(b.items[0].expires_ms, now + 60000);
    ng_queue_batch_free(&b);
    assert_int_equal(ng_queue_outbox_trim(q, "acme", kid, now + 1000, &removed), NG_OK);
    assert_int_equal(removed, 0);
    assert_int_equal(ng_queue_outbox_read(q, "acme", other, NULL, 10, &b), NG_OK);
    assert_int_equal(b.n, 1);
    ng_queue_batch_free(&b);
}

/* A consumer claims and dies without acking: after the lease, another gets the same items; once acked, nobody. */
static void
test_claim_crash_redeliver_ack(void **state)
{
    ng_queue_batch a, b;
    unsigned i;

    (void)state;
    for (i = 0; i < 5; i++)
        accept_n("acme", i);
    assert_int_equal(ng_queue_inbox_claim(q, "acme", "worker-a", 10, 300, &a), NG_OK);
    assert_int_equal(a.n, 5);
    for (i = 0; i < 5; i++)
        assert_true(body_is(&a.items[i], i));
    /* Within the lease nobody else gets them. */
    assert_int_equal(ng_queue_inbox_claim(q, "acme", "worker-b", 10, 300, &b), NG_OK);
    assert_int_equal(b.n, 0);
    ng_queue_batch_free(&b);
    /* worker-a acks two and dies. */
    assert_int_equal(ng_queue_inbox_ack(q, "acme", a.items[0].id), NG_OK);
    assert_int_equal(ng_queue_inbox_ack(q, "acme", a.items[1].id), NG_OK);
    sleep_ms(400);
    assert_int_equal(ng_queue_inbox_claim(q, "acme", "worker-b", 10, 300, &b), NG_OK);
    assert_int_equal(b.n, 3);
    for (i = 0; i < 3; i++) {
        assert_string_equal(b.items[i].id, a.items[i + 2].id);
        assert_true(body_is(&b.items[i], i + 2));
        assert_int_equal(ng_queue_inbox_ack(q, "acme", b.items[i].id), NG_OK);
    }
    /* Acked: never again, and a second ack finds nothing. */
    assert_int_equal(ng_queue_inbox_ack(q, "acme", a.items[0].id), NG_ERR_NOT_FOUND);
    ng_queue_batch_free(&b);
    sleep_ms(400);
    assert_int_equal(ng_queue_inbox_claim(q, "acme", "worker-c", 10, 300, &b), NG_OK);
    assert_int_equal(b.n, 0);
    ng_queue_batch_free(&b);
    ng_queue_batch_free(&a);
}

/* A batch ack removes what was claimed and nothing else: a retried item keeps its data for the next attempt. */
static void
test_ack_many(void **state)
{
    const char *ids[3];
    ng_queue_batch b, again;
    size_t acked;
    unsigned i;

    (void)state;
    for (i = 0; i < 3; i++)
        accept_n("acme", i);
    assert_int_equal(ng_queue_inbox_claim(q, "acme", "w", 10, 60000, &b), NG_OK);
    assert_int_equal(b.n, 3);
    for (i = 0; i < 3; i++)
        ids[i] = b.items[i].id;
    assert_int_equal(ng_queue_inbox_retry(q, "acme", ids[1], 0), NG_OK);
    assert_int_equal(ng_queue_inbox_ack_many(q, "acme", ids, 3, &acked), NG_OK);
    assert_int_equal(acked, 2);
    assert_int_equal(ng_queue_inbox_ack_many(q, "acme", ids, 3, &acked), NG_OK);
    assert_int_equal(acked, 0);
    assert_int_equal(ng_queue_inbox_ack_many(q, "acme", ids, NG_QUEUE_ACK_MAX + 1, &acked), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_queue_inbox_claim(q, "acme", "w", 10, 60000, &again), NG_OK);
    assert_int_equal(again.n, 1);
    assert_true(body_is(&again.items[0], 1));
    assert_int_equal(again.items[0].attempts, 1);
    ng_queue_batch_free(&again);
    ng_queue_batch_free(&b);
}

/* A poller's batch: one round trip, each message judged on its own, a replay inside the batch included. */
static void
test_accept_many(void **state)
{
    ng_queue_msg m[4];
    ng_queue_batch b;
    unsigned i;

    (void)state;
    accept_n("acme", 2);
    memset(m, 0, sizeof m);
    for (i = 0; i < 4; i++) {
        msg_id(m[i].msg_id, i < 3 ? i + 1 : 1); /* 2 was accepted before, the last repeats 1 */
        m[i].expires_ms = now_ms() + 60000;
        m[i].data = (const uint8_t *)"body\0with NUL";
        m[i].len = 14;
    }
    assert_int_equal(ng_queue_inbox_accept_many(q, "acme", m, 4), NG_OK);
    assert_int_equal(m[0].result, NG_OK);
    assert_int_equal(m[1].result, NG_ERR_EXISTS);
    assert_int_equal(m[2].result, NG_OK);
    assert_int_equal(m[3].result, NG_ERR_EXISTS);
    assert_string_equal(m[1].id, "");
    assert_true(m[0].id[0] != '\0' && strcmp(m[0].id, m[2].id) < 0);
    assert_int_equal(ng_queue_inbox_claim(q, "acme", "w", 10, 60000, &b), NG_OK);
    assert_int_equal(b.n, 3);
    assert_int_equal(b.items[1].len, 14);
    assert_memory_equal(b.items[1].data, "body\0with NUL", 14);
    ng_queue_batch_free(&b);
    assert_int_equal(ng_queue_inbox_accept_many(q, "acme", m, NG_QUEUE_ACCEPT_MAX + 1), NG_ERR_INVALID_ARG);
    m[0].data = NULL;
    assert_int_equal(ng_queue_inbox_accept_many(q, "acme", m, 1), NG_ERR_INVALID_ARG);
}

static void
test_replay_window(void **state)
{
    uint8_t id[NG_QUEUE_MSG_ID_BYTES];
    char qid[NG_QUEUE_ID_BYTES];
    uint64_t waiting, dead;

    (void)state;
    msg_id(id, 7);
    accept_n("acme", 7);
    /* The same message id again: refused, nothing queued. */
    assert_int_equal(ng_queue_inbox_accept(q, "acme", id, now_ms() + 60000, (const uint8_t *)"x", 1, qid),
                     NG_ERR_EXISTS);
    assert_string_equal(qid, "");
    assert_int_equal(ng_queue_inbox_depth(q, "acme", &waiting, &dead), NG_OK);
    assert_int_equal(waiting, 1);
    /* Another tenant is unaffected. */
    accept_n("globex", 7);
    /* The bare check shares the window. */
    assert_int_equal(ng_queue_replay_check(q, "acme", id, now_ms() + 60000), NG_ERR_EXISTS);
    msg_id(id, 8);
    assert_int_equal(ng_queue_replay_check(q, "acme", id, now_ms() + 300), NG_OK);
    assert_int_equal(ng_queue_replay_check(q, "acme", id, now_ms() + 300), NG_ERR_EXISTS);
    /* The window lasts until the parcel expires, then the id is forgotten. */
    sleep_ms(450);
    assert_int_equal(ng_queue_replay_check(q, "acme", id, now_ms() + 300), NG_OK);
}

/* Retry schedules, dead-lettering after N attempts, and replay from the dead letters. */
static void
test_retry_dead_letter_replay(void **state)
{
    ng_queue_batch b;
    uint64_t waiting, dead;
    unsigned attempt;
    char id[NG_QUEUE_ID_BYTES];

    (void)state;
    accept_n("acme", 1);
    for (attempt = 0; attempt < 3; attempt++) {
        assert_int_equal(ng_queue_inbox_claim(q, "acme", "w", 10, 60000, &b), NG_OK);
        assert_int_equal(b.n, 1);
        assert_int_equal(b.items[0].attempts, attempt);
        assert_true(body_is(&b.items[0], 1));
        snprintf(id, sizeof id, "%s", b.items[0].id);
        ng_queue_batch_free(&b);
        assert_int_equal(ng_queue_inbox_retry(q, "acme", id, now_ms() + 250), NG_OK);
        /* Not before it is due. */
        assert_int_equal(ng_queue_inbox_claim(q, "acme", "w", 10, 60000, &b), NG_OK);
        assert_int_equal(b.n, 0);
        ng_queue_batch_free(&b);
        assert_int_equal(ng_queue_inbox_depth(q, "acme", &waiting, &dead), NG_OK);
        assert_int_equal(waiting, 1);
        sleep_ms(300);
    }
    assert_int_equal(ng_queue_inbox_claim(q, "acme", "w", 10, 60000, &b), NG_OK);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.items[0].attempts, 3);
    assert_int_equal(ng_queue_inbox_dead(q, "acme", b.items[0].id, "HTTP 500 after 4 attempts", 500), NG_OK);
    assert_int_equal(ng_queue_inbox_dead(q, "acme", b.items[0].id, "again", 500), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_queue_inbox_retry(q, "acme", b.items[0].id, 0), NG_ERR_NOT_FOUND);
    ng_queue_batch_free(&b);
    assert_int_equal(ng_queue_inbox_depth(q, "acme", &waiting, &dead), NG_OK);
    assert_int_equal(waiting, 0);
    assert_int_equal(dead, 1);

    assert_int_equal(ng_queue_dead_list(q, "acme", NULL, 10, &b), NG_OK);
    assert_int_equal(b.n, 1);
    assert_string_equal(b.items[0].reason, "HTTP 500 after 4 attempts");
    assert_int_equal(b.items[0].last_status, 500);
    assert_int_equal(b.items[0].attempts, 4);
    assert_true(body_is(&b.items[0], 1));
    snprintf(id, sizeof id, "%s", b.items[0].id);
    ng_queue_batch_free(&b);

    assert_int_equal(ng_queue_dead_replay(q, "acme", id), NG_OK);
    assert_int_equal(ng_queue_dead_replay(q, "acme", id), NG_ERR_NOT_FOUND);
    assert_int_equal(ng_queue_inbox_depth(q, "acme", &waiting, &dead), NG_OK);
    assert_int_equal(waiting, 1);
    assert_int_equal(dead, 0);
    assert_int_equal(ng_queue_inbox_claim(q, "acme", "w", 10, 60000, &b), NG_OK);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.items[0].attempts, 0);
    assert_true(body_is(&b.items[0], 1));
    assert_int_equal(ng_queue_inbox_ack(q, "acme", b.items[0].id), NG_OK);
    ng_queue_batch_free(&b);
}

/* Entries claimed but not acked survive outbox trimming and a Redis crash; nothing is trimmed from the inbox. */
static void
test_pending_survive(void **state)
{
    uint8_t kid[NG_QUEUE_KEY_ID_BYTES], mid[NG_QUEUE_MSG_ID_BYTES];
    char id[NG_QUEUE_ID_BYTES];
    ng_queue_batch b;
    size_t removed;
    unsigned i;

    (void)state;
    memset(kid, 0x33, sizeof kid);
    msg_id(mid, 1);
    for (i = 0; i < 20; i++)
        accept_n("acme", i);
    assert_int_equal(ng_queue_inbox_claim(q, "acme", "w", 20, 200, &b), NG_OK);
    assert_int_equal(b.n, 20);
    ng_queue_batch_free(&b);
    assert_int_equal(ng_queue_outbox_append(q, "acme", kid, mid, now_ms(), now_ms() + 1, (const uint8_t *)"p", 1, id),
                     NG_OK);
    assert_int_equal(ng_queue_outbox_trim(q, "acme", kid, now_ms() + 10, &removed), NG_OK);
    assert_int_equal(removed, 1);
    redis_server_kill(&redis, SIGKILL);
    assert_int_equal(redis_server_spawn(&redis, aof), 0);
    sleep_ms(300); /* idle times restart with the server: wait out the lease */
    assert_int_equal(ng_queue_inbox_claim(q, "acme", "w2", 50, 200, &b), NG_OK);
    assert_int_equal(b.n, 20);
    for (i = 0; i < 20; i++)
        assert_true(body_is(&b.items[i], i));
    ng_queue_batch_free(&b);
}

static ng_err
try_accept(unsigned n)
{
    uint8_t id[NG_QUEUE_MSG_ID_BYTES];
    char body[32], qid[NG_QUEUE_ID_BYTES];

    msg_id(id, n);
    snprintf(body, sizeof body, "m%u", n);
    return ng_queue_inbox_accept(q, "acme", id, now_ms() + 60000, (const uint8_t *)body, strlen(body), qid);
}

/*
 * Redis dies mid-stream (SIGKILL, appendfsync always): while it is down
 * every call fails fast with "store unavailable"; once it is back the
 * queue reconnects by itself, and every message it accepted is there.
 */
static void
test_redis_restart(void **state)
{
    ng_queue_batch b;
    unsigned i, seen[60] = {0};
    uint64_t waiting, dead, t0;
    int tries;

    (void)state;
    for (i = 0; i < 20; i++)
        assert_int_equal(try_accept(i), NG_OK);
    redis_server_kill(&redis, SIGKILL);
    t0 = now_ms();
    for (i = 20; i < 40; i++)
        assert_int_equal(try_accept(i), NG_ERR_UNAVAILABLE);
    assert_true(now_ms() - t0 < 5000); /* fast: no call waits out more than the timeout */
    assert_int_equal(redis_server_spawn(&redis, aof), 0);
    for (i = 40; i < 60; i++) {
        ng_err err = NG_ERR_UNAVAILABLE;
        for (tries = 0; tries < 100 && err == NG_ERR_UNAVAILABLE; tries++) {
            err = try_accept(i);
            if (err == NG_ERR_UNAVAILABLE)
                sleep_ms(50);
        }
        assert_int_equal(err, NG_OK);
    }
    assert_int_equal(ng_queue_inbox_depth(q, "acme", &waiting, &dead), NG_OK);
    assert_int_equal(waiting, 40);
    assert_int_equal(ng_queue_inbox_claim(q, "acme", "w", 100, 60000, &b), NG_OK);
    assert_int_equal(b.n, 40);
    for (i = 0; i < b.n; i++) {
        unsigned n = (unsigned)strtoul((const char *)b.items[i].data + 1, NULL, 10);
        assert_true(n < 60 && seen[n] == 0 && (n < 20 || n >= 40));
        seen[n] = 1;
    }
    ng_queue_batch_free(&b);
}

static void
test_leases_and_cursors(void **state)
{
    char cursor[NG_QUEUE_ID_BYTES];

    (void)state;
    assert_int_equal(ng_queue_lease_take(q, "acme", "bob", "gw-1", 300), NG_OK);
    assert_int_equal(ng_queue_lease_take(q, "acme", "bob", "gw-2", 300), NG_ERR_CONFLICT);
    assert_int_equal(ng_queue_lease_take(q, "acme", "carol", "gw-2", 300), NG_OK);
    assert_int_equal(ng_queue_lease_take(q, "acme", "bob", "gw-1", 300), NG_OK); /* renewal */
    assert_int_equal(ng_queue_lease_release(q, "acme", "bob", "gw-2"), NG_OK);   /* not its lease: no effect */
    assert_int_equal(ng_queue_lease_take(q, "acme", "bob", "gw-2", 300), NG_ERR_CONFLICT);
    assert_int_equal(ng_queue_lease_release(q, "acme", "bob", "gw-1"), NG_OK);
    assert_int_equal(ng_queue_lease_take(q, "acme", "bob", "gw-2", 300), NG_OK);
    sleep_ms(400); /* the holder died: the lease runs out */
    assert_int_equal(ng_queue_lease_take(q, "acme", "bob", "gw-1", 300), NG_OK);

    assert_int_equal(ng_queue_cursor_get(q, "acme", "bob", cursor), NG_OK);
    assert_string_equal(cursor, "");
    assert_int_equal(ng_queue_cursor_set(q, "acme", "bob", "1700000000000-3"), NG_OK);
    assert_int_equal(ng_queue_cursor_get(q, "acme", "bob", cursor), NG_OK);
    assert_string_equal(cursor, "1700000000000-3");
    assert_int_equal(ng_queue_cursor_get(q, "globex", "bob", cursor), NG_OK);
    assert_string_equal(cursor, "");
}

static void
test_bad_arguments(void **state)
{
    static const char *const bad_names[] = {"", "UPPER", "a/b", "a}b", "-x", "a b", NULL};
    static const char *const bad_ids[] = {
        "", "1", "-1", "1-", "x-1", "1-2-3", "123456789012345678901234567890-123456789012", NULL};
    uint8_t kid[NG_QUEUE_KEY_ID_BYTES] = {0}, mid[NG_QUEUE_MSG_ID_BYTES] = {0};
    char id[NG_QUEUE_ID_BYTES];
    ng_queue_batch b;
    int i;

    (void)state;
    for (i = 0; bad_names[i] != NULL; i++) {
        assert_int_equal(ng_queue_outbox_append(q, bad_names[i], kid, mid, 1, 2, (const uint8_t *)"p", 1, id),
                         NG_ERR_INVALID_ARG);
        assert_int_equal(ng_queue_inbox_accept(q, bad_names[i], mid, 2, (const uint8_t *)"p", 1, id),
                         NG_ERR_INVALID_ARG);
        assert_int_equal(ng_queue_cursor_set(q, "acme", bad_names[i], "1-1"), NG_ERR_INVALID_ARG);
    }
    for (i = 0; bad_ids[i] != NULL; i++) {
        assert_int_equal(ng_queue_inbox_ack(q, "acme", bad_ids[i]), NG_ERR_INVALID_ARG);
        assert_int_equal(ng_queue_dead_replay(q, "acme", bad_ids[i]), NG_ERR_INVALID_ARG);
        if (bad_ids[i][0] != '\0')
            assert_int_equal(ng_queue_outbox_read(q, "acme", kid, bad_ids[i], 10, &b), NG_ERR_INVALID_ARG);
    }
    assert_int_equal(ng_queue_inbox_claim(q, "acme", "bad consumer", 10, 100, &b), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_queue_inbox_claim(q, "acme", "w", 0, 100, &b), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_queue_outbox_read(q, "acme", kid, NULL, 0, &b), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_queue_inbox_ack(q, "acme", "1-1"), NG_ERR_NOT_FOUND);
    {
        ng_queue *other;
        assert_int_equal(ng_queue_redis_new(&other, "http://x", 100), NG_ERR_PARSE);
        assert_null(other);
    }
}

/* Nobody listening at all: every call fails fast, and again without waiting while backing off. */
static void
test_no_redis(void **state)
{
    ng_queue *none;
    uint8_t mid[NG_QUEUE_MSG_ID_BYTES] = {0};
    char id[NG_QUEUE_ID_BYTES], path[400];
    ng_queue_batch b;

    (void)state;
    snprintf(path, sizeof path, "unix:%s/nobody.sock", redis.dir);
    assert_int_equal(ng_queue_redis_new(&none, path, 200), NG_OK);
    assert_int_equal(ng_queue_inbox_accept(none, "acme", mid, now_ms() + 1000, (const uint8_t *)"x", 1, id),
                     NG_ERR_UNAVAILABLE);
    assert_int_equal(ng_queue_inbox_claim(none, "acme", "w", 1, 100, &b), NG_ERR_UNAVAILABLE);
    assert_int_equal(b.n, 0);
    ng_queue_free(none);
}

static void
parcel_of(ng_queue_parcel *p, unsigned n, const char *text, uint64_t expires)
{
    memset(p, 0, sizeof *p);
    memset(p->key_id, (int)(n % 2), sizeof p->key_id); /* two recipients */
    msg_id(p->msg_id, n);
    p->created_ms = now_ms();
    p->expires_ms = expires;
    p->data = (const uint8_t *)text;
    p->len = strlen(text);
}

/*
 * A request's parcels are stored together with its guards: a repeat with
 * the idempotency key gets the first answer and stores nothing, a replayed
 * request id stores nothing, and the check-only form (n == 0) keeps its
 * promises too.
 */
static void
test_submit(void **state)
{
    uint8_t req[NG_QUEUE_GUARD_BYTES], req2[NG_QUEUE_GUARD_BYTES], idem[NG_QUEUE_GUARD_BYTES];
    ng_queue_parcel p[3];
    ng_queue_submit s;
    ng_queue_batch b;
    uint64_t later = now_ms() + 60000;

    (void)state;
    memset(req, 1, sizeof req);
    memset(req2, 2, sizeof req2);
    memset(idem, 3, sizeof idem);
    parcel_of(&p[0], 0, "p0", later);
    parcel_of(&p[1], 1, "p1", later);
    parcel_of(&p[2], 2, "p2", later);
    memset(&s, 0, sizeof s);
    s.request = req;
    s.request_expires_ms = later;
    s.idem = idem;
    s.idem_expires_ms = later;
    s.answer = (const uint8_t *)"first\0answer";
    s.answer_len = 12;
    s.parcels = p;
    s.n = 3;
    assert_int_equal(ng_queue_outbox_submit(q, "acme", &s), NG_OK);
    assert_null(s.previous);
    assert_true(p[0].id[0] != '\0' && p[1].id[0] != '\0' && p[2].id[0] != '\0');
    assert_int_equal(ng_queue_outbox_read(q, "acme", p[0].key_id, NULL, 10, &b), NG_OK);
    assert_int_equal(b.n, 2); /* p0 and p2 share a recipient */
    assert_memory_equal(b.items[0].data, "p0", 2);
    assert_memory_equal(b.items[1].data, "p2", 2);
    assert_string_equal(b.items[1].id, p[2].id);
    ng_queue_batch_free(&b);

    /* the same idempotency key, even under a new request id: the first answer, byte for byte, nothing stored */
    s.request = req2;
    assert_int_equal(ng_queue_outbox_submit(q, "acme", &s), NG_OK);
    assert_non_null(s.previous);
    assert_int_equal(s.previous_len, 12);
    assert_memory_equal(s.previous, "first\0answer", 12);
    free(s.previous);
    assert_int_equal(ng_queue_outbox_read(q, "acme", p[1].key_id, NULL, 10, &b), NG_OK);
    assert_int_equal(b.n, 1);
    ng_queue_batch_free(&b);

    /* the first request id again, without the key: a replay, nothing stored */
    s.request = req;
    s.idem = NULL;
    assert_int_equal(ng_queue_outbox_submit(q, "acme", &s), NG_ERR_EXISTS);
    assert_null(s.previous);
    assert_int_equal(ng_queue_outbox_read(q, "acme", p[0].key_id, NULL, 10, &b), NG_OK);
    assert_int_equal(b.n, 2);
    ng_queue_batch_free(&b);
    /* guards are per tenant */
    s.n = 1;
    assert_int_equal(ng_queue_outbox_submit(q, "other", &s), NG_OK);

    /* check only: the request is marked, the answer kept only when given */
    memset(idem, 4, sizeof idem);
    memset(req, 5, sizeof req);
    s.request = req;
    s.idem = idem;
    s.answer = NULL;
    s.n = 0;
    assert_int_equal(ng_queue_outbox_submit(q, "acme", &s), NG_OK);
    assert_null(s.previous);
    assert_int_equal(ng_queue_outbox_submit(q, "acme", &s), NG_ERR_EXISTS);
    s.request = NULL;
    s.answer = (const uint8_t *)"kept";
    s.answer_len = 4;
    assert_int_equal(ng_queue_outbox_submit(q, "acme", &s), NG_OK);
    assert_null(s.previous);
    assert_int_equal(ng_queue_outbox_submit(q, "acme", &s), NG_OK);
    assert_non_null(s.previous);
    assert_memory_equal(s.previous, "kept", 4);
    free(s.previous);

    /* no guards at all: stored every time */
    memset(&s, 0, sizeof s);
    s.parcels = p;
    s.n = 1;
    assert_int_equal(ng_queue_outbox_submit(q, "acme", &s), NG_OK);
    assert_int_equal(ng_queue_outbox_submit(q, "acme", &s), NG_OK);
    assert_int_equal(ng_queue_outbox_read(q, "acme", p[0].key_id, NULL, 10, &b), NG_OK);
    assert_int_equal(b.n, 4);
    ng_queue_batch_free(&b);

    /* bad arguments */
    assert_int_equal(ng_queue_outbox_submit(q, "Bad Tenant", &s), NG_ERR_INVALID_ARG);
    p[0].len = 0;
    assert_int_equal(ng_queue_outbox_submit(q, "acme", &s), NG_ERR_INVALID_ARG);
}

/*
 * The single-use store: a value is taken once, whoever asks first; a second
 * put under the same digest is refused; an expired value is gone; tenants
 * have their own namespaces; binary values keep their NULs.
 */
static void
test_once(void **state)
{
    const uint8_t value[] = {'v', 0, 'a', 0, 0, 'l', 0xff};
    uint8_t d[NG_QUEUE_GUARD_BYTES], d2[NG_QUEUE_GUARD_BYTES], *got;
    char hex[2 * NG_QUEUE_GUARD_BYTES + 1], name[128];
    redisContext *c;
    redisReply *r;
    ng_queue *http;
    size_t len;

    (void)state;
    memset(d, 0x5a, sizeof d);
    memset(d2, 0xa5, sizeof d2);
    assert_int_equal(ng_queue_once_put(q, "pairing", d, value, sizeof value, 60000), NG_OK);
    assert_int_equal(ng_queue_once_put(q, "pairing", d, (const uint8_t *)"other", 5, 60000), NG_ERR_EXISTS);
    /* The key is ng:{T}:once:<hex>, with the TTL asked for. */
    sodium_bin2hex(hex, sizeof hex, d, sizeof d);
    snprintf(name, sizeof name, "ng:{pairing}:once:%s", hex);
    c = redisConnectUnix(redis.sock);
    assert_true(c != NULL && !c->err);
    r = redisCommand(c, "PTTL %s", name);
    assert_true(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer > 55000 && r->integer <= 60000);
    freeReplyObject(r);
    /* Another tenant's namespace does not have it. */
    assert_int_equal(ng_queue_once_take(q, "acme", d, &got, &len), NG_ERR_NOT_FOUND);
    assert_null(got);
    assert_int_equal(len, 0);
    /* Taken once, with its bytes and length, then gone. */
    assert_int_equal(ng_queue_once_take(q, "pairing", d, &got, &len), NG_OK);
    assert_int_equal(len, sizeof value);
    assert_memory_equal(got, value, sizeof value);
    free(got);
    assert_int_equal(ng_queue_once_take(q, "pairing", d, &got, &len), NG_ERR_NOT_FOUND);
    assert_null(got);
    r = redisCommand(c, "EXISTS %s", name);
    assert_true(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 0);
    freeReplyObject(r);
    redisFree(c);
    /* Taken, the digest may be used again. An empty value is a value. */
    assert_int_equal(ng_queue_once_put(q, "pairing", d, NULL, 0, 60000), NG_OK);
    assert_int_equal(ng_queue_once_take(q, "pairing", d, &got, &len), NG_OK);
    assert_int_equal(len, 0);
    free(got);

    /* Expired: not found, although nobody took it. */
    assert_int_equal(ng_queue_once_put(q, "pairing", d2, value, sizeof value, 100), NG_OK);
    sleep_ms(250);
    assert_int_equal(ng_queue_once_take(q, "pairing", d2, &got, &len), NG_ERR_NOT_FOUND);
    assert_null(got);

    /* Bad arguments; HTTP storage has no such store. */
    assert_int_equal(ng_queue_once_put(q, "Bad Tenant", d, value, sizeof value, 1000), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_queue_once_put(q, "pairing", d, value, sizeof value, 0), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_queue_once_put(q, "pairing", d, NULL, 1, 1000), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_queue_once_put(q, "pairing", d, value, NG_QUEUE_ONCE_MAX + 1, 1000), NG_ERR_TOO_LARGE);
    assert_int_equal(ng_queue_once_take(q, "Bad Tenant", d, &got, &len), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_queue_http_new(&http, "http://127.0.0.1:9/dav", 1000), NG_OK);
    assert_int_equal(ng_queue_once_put(http, "pairing", d, value, sizeof value, 1000), NG_ERR_UNSUPPORTED);
    assert_int_equal(ng_queue_once_take(http, "pairing", d, &got, &len), NG_ERR_UNSUPPORTED);
    ng_queue_free(http);
}

static int
start(void **state)
{
    (void)state;
    return redis_server_start(&redis, aof);
}

static int
stop(void **state)
{
    (void)state;
    redis_server_stop(&redis);
    return 0;
}

#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_outbox_order_cursor_trim),
        T(test_claim_crash_redeliver_ack),
        T(test_ack_many),
        T(test_accept_many),
        T(test_submit),
        T(test_once),
        T(test_replay_window),
        T(test_retry_dead_letter_replay),
        T(test_pending_survive),
        T(test_redis_restart),
        T(test_leases_and_cursors),
        T(test_bad_arguments),
        T(test_no_redis),
    };

    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN); /* as noisegate does: a dead Redis is an error, not a death */
    return cmocka_run_group_tests_name("queue, redis", tests, start, stop);
}

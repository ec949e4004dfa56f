#include "ng_queue.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

void
ng_queue_batch_free(ng_queue_batch *b)
{
    size_t i;

    if (b == NULL)
        return;
    for (i = 0; i < b->n; i++) {
        /* Inbox items are opened messages: wipe them before the heap reuses them. */
        if (b->items[i].data != NULL)
            sodium_memzero(b->items[i].data, b->items[i].len);
        free(b->items[i].data);
    }
    free(b->items);
    memset(b, 0, sizeof *b);
}

void
ng_queue_free(ng_queue *q)
{
    if (q != NULL)
        q->ops->destroy(q);
}

ng_err
ng_queue_outbox_append(ng_queue *q, const char *tenant, const uint8_t key_id[NG_QUEUE_KEY_ID_BYTES],
                       const uint8_t msg_id[NG_QUEUE_MSG_ID_BYTES], uint64_t created_ms, uint64_t expires_ms,
                       const uint8_t *parcel, size_t len, char id[NG_QUEUE_ID_BYTES])
{
    if (q == NULL || q->ops->outbox_append == NULL)
        return NG_ERR_UNSUPPORTED;
    return q->ops->outbox_append(q, tenant, key_id, msg_id, created_ms, expires_ms, parcel, len, id);
}

ng_err
ng_queue_outbox_submit(ng_queue *q, const char *tenant, ng_queue_submit *s)
{
    s->previous = NULL;
    s->previous_len = 0;
    if (q == NULL || q->ops->outbox_submit == NULL)
        return NG_ERR_UNSUPPORTED;
    return q->ops->outbox_submit(q, tenant, s);
}

ng_err
ng_queue_outbox_read(ng_queue *q, const char *tenant, const uint8_t key_id[NG_QUEUE_KEY_ID_BYTES], const char *after,
                     size_t limit, ng_queue_batch *out)
{
    if (q == NULL || q->ops->outbox_read == NULL)
        return NG_ERR_UNSUPPORTED;
    return q->ops->outbox_read(q, tenant, key_id, after, limit, out);
}

ng_err
ng_queue_outbox_trim(ng_queue *q, const char *tenant, const uint8_t key_id[NG_QUEUE_KEY_ID_BYTES], uint64_t now_ms,
                     size_t *removed)
{
    if (q == NULL || q->ops->outbox_trim == NULL)
        return NG_ERR_UNSUPPORTED;
    return q->ops->outbox_trim(q, tenant, key_id, now_ms, removed);
}

ng_err
ng_queue_inbox_accept(ng_queue *q, const char *tenant, const uint8_t msg_id[NG_QUEUE_MSG_ID_BYTES], uint64_t expires_ms,
                      const uint8_t *data, size_t len, char id[NG_QUEUE_ID_BYTES])
{
    ng_queue_msg m;
    ng_err err;

    id[0] = '\0';
    memset(&m, 0, sizeof m);
    memcpy(m.msg_id, msg_id, sizeof m.msg_id);
    m.expires_ms = expires_ms;
    m.data = data;
    m.len = len;
    err = ng_queue_inbox_accept_many(q, tenant, &m, 1);
    if (err == NG_OK && m.result == NG_OK)
        memcpy(id, m.id, sizeof m.id);
    return err ? err : m.result;
}

ng_err
ng_queue_inbox_accept_many(ng_queue *q, const char *tenant, ng_queue_msg *msgs, size_t n)
{
    size_t i;

    if (q == NULL || q->ops->inbox_accept == NULL)
        return NG_ERR_UNSUPPORTED;
    if (n == 0)
        return NG_OK;
    if (msgs == NULL || n > NG_QUEUE_ACCEPT_MAX)
        return NG_ERR_INVALID_ARG;
    for (i = 0; i < n; i++) {
        if (msgs[i].data == NULL || msgs[i].expires_ms == 0)
            return NG_ERR_INVALID_ARG;
        msgs[i].result = NG_ERR_IO;
        msgs[i].id[0] = '\0';
    }
    return q->ops->inbox_accept(q, tenant, msgs, n);
}

ng_err
ng_queue_inbox_claim(ng_queue *q, const char *tenant, const char *consumer, size_t limit, uint64_t lease_ms,
                     ng_queue_batch *out)
{
    if (q == NULL || q->ops->inbox_claim == NULL)
        return NG_ERR_UNSUPPORTED;
    return q->ops->inbox_claim(q, tenant, consumer, limit, lease_ms, out);
}

ng_err
ng_queue_inbox_ack(ng_queue *q, const char *tenant, const char *id)
{
    size_t acked = 0;
    ng_err err;

    if (q == NULL || q->ops->inbox_ack == NULL)
        return NG_ERR_UNSUPPORTED;
    err = q->ops->inbox_ack(q, tenant, &id, 1, &acked);
    return err == NG_OK && acked == 0 ? NG_ERR_NOT_FOUND : err;
}

ng_err
ng_queue_inbox_ack_many(ng_queue *q, const char *tenant, const char *const *ids, size_t n, size_t *acked)
{
    *acked = 0;
    if (q == NULL || q->ops->inbox_ack == NULL)
        return NG_ERR_UNSUPPORTED;
    if (n == 0)
        return NG_OK;
    if (ids == NULL || n > NG_QUEUE_ACK_MAX)
        return NG_ERR_INVALID_ARG;
    return q->ops->inbox_ack(q, tenant, ids, n, acked);
}

ng_err
ng_queue_inbox_retry(ng_queue *q, const char *tenant, const char *id, uint64_t at_ms)
{
    if (q == NULL || q->ops->inbox_retry == NULL)
        return NG_ERR_UNSUPPORTED;
    return q->ops->inbox_retry(q, tenant, id, at_ms);
}

ng_err
ng_queue_inbox_dead(ng_queue *q, const char *tenant, const char *id, const char *reason, int last_status)
{
    if (q == NULL || q->ops->inbox_dead == NULL)
        return NG_ERR_UNSUPPORTED;
    return q->ops->inbox_dead(q, tenant, id, reason, last_status);
}

ng_err
ng_queue_inbox_depth(ng_queue *q, const char *tenant, uint64_t *waiting, uint64_t *dead)
{
    if (q == NULL || q->ops->inbox_depth == NULL)
        return NG_ERR_UNSUPPORTED;
    return q->ops->inbox_depth(q, tenant, waiting, dead);
}

ng_err
ng_queue_dead_list(ng_queue *q, const char *tenant, const char *after, size_t limit, ng_queue_batch *out)
{
    if (q == NULL || q->ops->dead_list == NULL)
        return NG_ERR_UNSUPPORTED;
    return q->ops->dead_list(q, tenant, after, limit, out);
}

ng_err
ng_queue_dead_replay(ng_queue *q, const char *tenant, const char *id)
{
    if (q == NULL || q->ops->dead_replay == NULL)
        return NG_ERR_UNSUPPORTED;
    return q->ops->dead_replay(q, tenant, id);
}

ng_err
ng_queue_replay_check(ng_queue *q, const char *tenant, const uint8_t msg_id[NG_QUEUE_MSG_ID_BYTES], uint64_t expires_ms)
{
    if (q == NULL || q->ops->replay_check == NULL)
        return NG_ERR_UNSUPPORTED;
    return q->ops->replay_check(q, tenant, msg_id, expires_ms);
}

ng_err
ng_queue_cursor_get(ng_queue *q, const char *tenant, const char *peer, char cursor[NG_QUEUE_ID_BYTES])
{
    if (q == NULL || q->ops->cursor_get == NULL)
        return NG_ERR_UNSUPPORTED;
    return q->ops->cursor_get(q, tenant, peer, cursor);
}

ng_err
ng_queue_cursor_set(ng_queue *q, const char *tenant, const char *peer, const char *cursor)
{
    if (q == NULL || q->ops->cursor_set == NULL)
        return NG_ERR_UNSUPPORTED;
    return q->ops->cursor_set(q, tenant, peer, cursor);
}

ng_err
ng_queue_lease_take(ng_queue *q, const char *tenant, const char *peer, const char *owner, uint64_t ttl_ms)
{
    if (q == NULL || q->ops->lease_take == NULL)
        return NG_ERR_UNSUPPORTED;
    return q->ops->lease_take(q, tenant, peer, owner, ttl_ms);
}

ng_err
ng_queue_lease_release(ng_queue *q, const char *tenant, const char *peer, const char *owner)
{
    if (q == NULL || q->ops->lease_release == NULL)
        return NG_ERR_UNSUPPORTED;
    return q->ops->lease_release(q, tenant, peer, owner);
}

ng_err
ng_queue_once_put(ng_queue *q, const char *tenant, const uint8_t digest[NG_QUEUE_GUARD_BYTES], const uint8_t *value,
                  size_t len, uint64_t ttl_ms)
{
    if (q == NULL || q->ops->once_put == NULL)
        return NG_ERR_UNSUPPORTED;
    if (digest == NULL || (value == NULL && len > 0) || ttl_ms == 0)
        return NG_ERR_INVALID_ARG;
    if (len > NG_QUEUE_ONCE_MAX)
        return NG_ERR_TOO_LARGE;
    return q->ops->once_put(q, tenant, digest, value != NULL ? value : (const uint8_t *)"", len, ttl_ms);
}

ng_err
ng_queue_once_take(ng_queue *q, const char *tenant, const uint8_t digest[NG_QUEUE_GUARD_BYTES], uint8_t **value,
                   size_t *len)
{
    *value = NULL;
    *len = 0;
    if (q == NULL || q->ops->once_take == NULL)
        return NG_ERR_UNSUPPORTED;
    if (digest == NULL)
        return NG_ERR_INVALID_ARG;
    return q->ops->once_take(q, tenant, digest, value, len);
}

ng_err
ng_queue_ping(ng_queue *q)
{
    if (q == NULL || q->ops->ping == NULL)
        return NG_ERR_UNSUPPORTED;
    return q->ops->ping(q);
}

#include "ng_queue_pool.h"

#include <pthread.h>
#include <stdlib.h>

struct ng_queue_pool {
    pthread_mutex_t lock;
    pthread_cond_t returned;
    ng_queue **idle;
    size_t nidle, made, max;
    ng_queue_pool_make make;
    void *ctx;
};

ng_err
ng_queue_pool_new(ng_queue_pool **out, size_t max, ng_queue_pool_make make, void *ctx)
{
    ng_queue_pool *p;

    *out = NULL;
    if (max == 0 || make == NULL)
        return NG_ERR_INVALID_ARG;
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return NG_ERR_NOMEM;
    p->idle = calloc(max, sizeof *p->idle);
    if (p->idle == NULL) {
        free(p);
        return NG_ERR_NOMEM;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->returned, NULL);
    p->max = max;
    p->make = make;
    p->ctx = ctx;
    *out = p;
    return NG_OK;
}

void
ng_queue_pool_free(ng_queue_pool *p)
{
    size_t i;

    if (p == NULL)
        return;
    for (i = 0; i < p->nidle; i++)
        ng_queue_free(p->idle[i]);
    pthread_cond_destroy(&p->returned);
    pthread_mutex_destroy(&p->lock);
    free(p->idle);
    free(p);
}

ng_err
ng_queue_pool_take(ng_queue_pool *p, ng_queue **out)
{
    ng_err err;

    *out = NULL;
    pthread_mutex_lock(&p->lock);
    while (p->nidle == 0 && p->made == p->max)
        pthread_cond_wait(&p->returned, &p->lock);
    if (p->nidle > 0) {
        *out = p->idle[--p->nidle];
        pthread_mutex_unlock(&p->lock);
        return NG_OK;
    }
    /* Counted before it exists, so that a slow connect does not let others overshoot max. */
    p->made++;
    pthread_mutex_unlock(&p->lock);
    err = p->make(p->ctx, out);
    if (err) {
        pthread_mutex_lock(&p->lock);
        p->made--;
        pthread_cond_signal(&p->returned);
        pthread_mutex_unlock(&p->lock);
        *out = NULL;
    }
    return err;
}

void
ng_queue_pool_give(ng_queue_pool *p, ng_queue *q)
{
    if (q == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->idle[p->nidle++] = q;
    pthread_cond_signal(&p->returned);
    pthread_mutex_unlock(&p->lock);
}

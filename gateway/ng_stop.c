#include "ng_stop.h"

#include <time.h>

uint64_t
ng_stop_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

ng_err
ng_stop_init(ng_stop *s)
{
    pthread_condattr_t ca;
    int rc;

    s->requested = 0;
    if (pthread_condattr_init(&ca) != 0)
        return NG_ERR_NOMEM;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0)
        return NG_ERR_NOMEM;
    pthread_mutex_init(&s->lock, NULL);
    return NG_OK;
}

void
ng_stop_destroy(ng_stop *s)
{
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
}

void
ng_stop_request(ng_stop *s)
{
    pthread_mutex_lock(&s->lock);
    s->requested = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

int
ng_stop_requested(ng_stop *s)
{
    int r;

    pthread_mutex_lock(&s->lock);
    r = s->requested;
    pthread_mutex_unlock(&s->lock);
    return r;
}

int
ng_stop_sleep(ng_stop *s, uint64_t ms)
{
    struct timespec until;
    int r;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->lock);
    /* Spurious wake-ups loop; only the deadline (non-zero) or a request ends the wait. */
    while (!s->requested && pthread_cond_timedwait(&s->cond, &s->lock, &until) == 0)
        ;
    r = s->requested;
    pthread_mutex_unlock(&s->lock);
    return r;
}

/*
 * ng_stop.h: what a worker thread sleeps on between rounds: it wakes at its
 * deadline, or at once when it is asked to stop. Sleeps are measured on the
 * monotonic clock, so that a step of the wall clock (NTP, an operator)
 * neither stalls a worker nor hurries it. Shared by the directory reloader,
 * the pollers and the trimmer.
 */
#ifndef NG_STOP_H
#define NG_STOP_H

#include <pthread.h>
#include <stdint.h>

#include "ng_error.h"

typedef struct ng_stop {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int requested;
} ng_stop;

/* NG_ERR_NOMEM if the condition variable cannot be made. */
NG_MUST_CHECK ng_err ng_stop_init(ng_stop *s);
void ng_stop_destroy(ng_stop *s);
/* Wakes every sleeper; from now on each sleep returns at once. */
void ng_stop_request(ng_stop *s);
int ng_stop_requested(ng_stop *s);
/* Sleeps ms milliseconds or until a stop is requested: 1 if it was. */
int ng_stop_sleep(ng_stop *s, uint64_t ms);

/* Milliseconds on the monotonic clock: for deadlines and durations, never for dates. */
uint64_t ng_stop_mono_ms(void);

#endif

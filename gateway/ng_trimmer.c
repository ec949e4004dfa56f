#include "ng_trimmer.h"

#include <pthread.h>
#include <stdlib.h>

#include "ng_directory.h"
#include "ng_log.h"
#include "ng_metrics.h"
#include "ng_parcel.h"
#include "ng_stop.h"

struct ng_trimmer {
    ng_gateway *g;
    pthread_t thread;
    ng_stop stop;
};

/* One pass over every outbox this gateway writes to; the first store failure ends it (the next pass retries). */
static void
trim_all(ng_trimmer *t)
{
    ng_directory *dir = ng_gateway_directory(t->g);
    ng_queue *q = NULL, *http = NULL;
    size_t i, j, k, removed, total = 0;
    ng_err err;

    err = ng_gateway_outbox_take(t->g, &http);
    if (err == NG_ERR_UNSUPPORTED)
        err = NG_OK; /* no HTTP storage: the outboxes are in the queue store */
    if (err == NG_OK && http == NULL)
        err = ng_gateway_queue_take(t->g, &q);
    for (i = 0; err == NG_OK && i < ng_directory_count(dir) && !ng_stop_requested(&t->stop); i++) {
        const ng_dir_tenant *tn = ng_directory_at(dir, i);

        for (j = 0; err == NG_OK && j < tn->npeers; j++)
            for (k = 0; err == NG_OK && k < tn->peers[j].nkeys; k++) {
                removed = 0;
                err = ng_queue_outbox_trim(http != NULL ? http : q, tn->slug, tn->peers[j].keys[k].id,
                                           ng_parcel_now_ms(), &removed);
                total += removed; /* a trim stopped partway still removed what it says */
            }
    }
    if (q != NULL)
        ng_gateway_queue_give(t->g, q);
    if (http != NULL)
        ng_gateway_outbox_give(t->g, http);
    ng_directory_release(dir);
    if (total > 0)
        ng_metrics_add(ng_gateway_metrics(t->g), "ng_parcels_trimmed_total", NULL, (double)total);
    if (err)
        ng_log_event(ng_gateway_log(t->g), NG_LOG_WARN, "trimming expired parcels from the outboxes failed", "error",
                     ng_strerror(err), NULL);
}

static void *
run(void *arg)
{
    ng_trimmer *t = arg;
    uint64_t every = 1000u * (uint64_t)ng_gateway_config(t->g)->outbox.trim_interval_s;

    while (!ng_stop_sleep(&t->stop, every))
        trim_all(t);
    return NULL;
}

ng_err
ng_trimmer_start(ng_trimmer **out, ng_gateway *g)
{
    ng_trimmer *t = calloc(1, sizeof *t);

    *out = NULL;
    if (t == NULL)
        return NG_ERR_NOMEM;
    t->g = g;
    if (ng_stop_init(&t->stop) != NG_OK) {
        free(t);
        return NG_ERR_NOMEM;
    }
    if (pthread_create(&t->thread, NULL, run, t) != 0) {
        ng_stop_destroy(&t->stop);
        free(t);
        return NG_ERR_NOMEM;
    }
    *out = t;
    return NG_OK;
}

void
ng_trimmer_stop(ng_trimmer *t)
{
    if (t == NULL)
        return;
    ng_stop_request(&t->stop);
    pthread_join(t->thread, NULL);
    ng_stop_destroy(&t->stop);
    free(t);
}

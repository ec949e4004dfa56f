#include "ng_ratelimit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ng_slot.h"

enum { SLOTS = 4096, SLUG_BYTES = 64 };

struct slot {
    char slug[SLUG_BYTES];
    double tokens;
    uint64_t at_ms;
};

struct ng_ratelimit {
    pthread_mutex_t lock;
    struct slot slots[SLOTS];
};

ng_err
ng_ratelimit_new(ng_ratelimit **out)
{
    ng_ratelimit *r = calloc(1, sizeof *r);

    *out = NULL;
    if (r == NULL)
        return NG_ERR_NOMEM;
    pthread_mutex_init(&r->lock, NULL);
    *out = r;
    return NG_OK;
}

void
ng_ratelimit_free(ng_ratelimit *r)
{
    if (r == NULL)
        return;
    pthread_mutex_destroy(&r->lock);
    free(r);
}

int
ng_ratelimit_take(ng_ratelimit *r, const char *slug, uint32_t rate, size_t n, uint64_t now_ms, uint32_t *retry_after_s)
{
    struct slot *s;
    double burst = rate > 0 ? (double)rate : 1.0, need = (double)n;
    int ok;

    *retry_after_s = 0;
    if (rate == 0)
        return 1;
    pthread_mutex_lock(&r->lock);
    s = &r->slots[ng_slot_of(slug, SLOTS)];
    if (strncmp(s->slug, slug, sizeof s->slug) != 0) {
        snprintf(s->slug, sizeof s->slug, "%s", slug);
        s->tokens = burst;
        s->at_ms = now_ms;
    }
    if (now_ms > s->at_ms) {
        s->tokens += (double)(now_ms - s->at_ms) / 1000.0 * (double)rate;
        if (s->tokens > burst)
            s->tokens = burst;
        s->at_ms = now_ms;
    }
    ok = s->tokens >= need;
    if (ok)
        s->tokens -= need;
    else if (need <= burst)
        *retry_after_s = (uint32_t)((need - s->tokens) / (double)rate) + 1;
    pthread_mutex_unlock(&r->lock);
    return ok;
}

#include "ng_deliverer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "ng_bus.h"
#include "ng_deliver.h"
#include "ng_hex.h"
#include "ng_nats.h"
#include "ng_parcel.h"
#include "ng_slot.h"
#include "ng_stop.h"
#include "ng_tenant.h"

enum {
    BUCKETS = 4096,     /* in-flight counts by hash of tenant: a collision only makes a cap tighter */
    IDLE_MIN_MS = 100,  /* claim rounds while nothing comes, doubling ... */
    IDLE_MAX_MS = 1000, /* ... to this: how late a due retry may start */
    RETRY_MIN_MS = 1000,
    BUS_SYNC_MS = 1000, /* how soon a NATS backend's submissions are consumed after it is added */
    NATS_TIMEOUT_MAX_MS = 10000,
    FIELD_MAX = 255,
    MAX_QUEUED = NG_DELIVER_DEFAULT_MAX_QUEUED, /* the adapter's bound, which claim rounds stay under */
};

struct flight {
    struct flight *prev, *next; /* the deliverer's list, so that stop frees what never finished */
    char slug[NG_QUEUE_NAME_BYTES];
    char id[NG_QUEUE_ID_BYTES];
    char backend[NG_TENANT_ID_BYTES];
    char msg[2 * NG_PARCEL_MESSAGE_ID_BYTES + 1];
    uint32_t attempts;
    uint64_t expires_ms;
    unsigned bucket;
};

struct ng_deliverer {
    ng_gateway *g;
    ng_deliver *dv;
    ng_nats *nats; /* backends on NATS JetStream */
    ng_bus *bus;   /* their submissions */
    uint64_t bus_synced;
    ng_queue *q; /* this thread's for its whole life */
    pthread_t thread;
    pthread_mutex_t lock;
    int stopping, kicked;
    unsigned cap;    /* claimed and unfinished per tenant */
    size_t finished; /* deliveries ended since the last claim round; this thread's only */
    size_t first;    /* the tenant the next claim round starts with */
    unsigned inflight[BUCKETS];
    struct flight *flights;
};

static void
flight_link(ng_deliverer *d, struct flight *f)
{
    f->next = d->flights;
    if (d->flights != NULL)
        d->flights->prev = f;
    d->flights = f;
    d->inflight[f->bucket]++;
}

/* Unlinks and frees a flight that ended. */
static void
flight_done(ng_deliverer *d, struct flight *f)
{
    d->finished++;
    if (f->prev != NULL)
        f->prev->next = f->next;
    else
        d->flights = f->next;
    if (f->next != NULL)
        f->next->prev = f->prev;
    d->inflight[f->bucket]--;
    free(f);
}

static const ng_dir_backend *
first_active(const ng_dir_tenant *t)
{
    size_t i;

    for (i = 0; i < t->nbackends; i++)
        if (t->backends[i].active)
            return &t->backends[i];
    return NULL;
}

static void
dead(ng_deliverer *d, const char *slug, const char *id, const char *msg, const char *reason, const char *label,
     int status)
{
    ng_err err = ng_queue_inbox_dead(d->q, slug, id, reason, status);

    ng_metrics_add(ng_gateway_metrics(d->g), "ng_dead_letters_total", (const char *[]){"reason", label, NULL}, 1);
    ng_log_event(ng_gateway_log(d->g), NG_LOG_WARN, "message dead-lettered", "tenant", slug, "message_id", msg,
                 "reason", reason, "store", err == NG_OK ? "ok" : ng_strerror(err), NULL);
}

/* A meta string the sender chose: bounded, no control characters (it becomes a header). */
static const char *
meta_text(json_t *meta, const char *field, int ascii)
{
    const char *s = json_string_value(json_object_get(meta, field));
    size_t i;

    if (s == NULL || s[0] == '\0' || strlen(s) > FIELD_MAX)
        return NULL;
    for (i = 0; s[i] != '\0'; i++)
        if ((uint8_t)s[i] < 0x20 || s[i] == 0x7f || (ascii && (uint8_t)s[i] > 0x7e))
            return NULL;
    return s;
}

/* Hands a job to the backend's adapter; on refusal, the message is dead-lettered or comes back in a second. */
static void
submit_job(ng_deliverer *d, const ng_dir_tenant *t, const ng_dir_backend *b, ng_deliver_job *job, struct flight **fp)
{
    struct flight *f = *fp;
    char name[NG_BUS_NAME_BYTES], subjects[NG_BUS_NAME_BYTES], subject[NG_BUS_NAME_BYTES];
    ng_nats_stream s;
    ng_err err;

    job->user = f;
    if (b->nats) {
        ng_bus_stream(t, b, &s, name, subjects);
        ng_bus_subject(b, "deliver", subject);
        err = ng_nats_publish(d->nats, &s, subject, job);
    } else {
        err = ng_deliver_submit(d->dv, job);
    }
    if (err == NG_OK) {
        flight_link(d, f);
        *fp = NULL;
    } else if (err == NG_ERR_INVALID_ARG) {
        /* The message itself cannot be sent this way (an attribute the adapter refuses): retrying will not help. */
        dead(d, t->slug, f->id, f->msg, b->nats ? "cannot be sent to NATS" : "cannot be sent as a webhook", "malformed",
             0);
    } else {
        /* The adapter is full: try again in a second, counted as an attempt so that it cannot loop forever. */
        if (ng_queue_inbox_retry(d->q, t->slug, f->id, ng_parcel_now_ms() + 1000) != NG_OK)
            ng_log_event(ng_gateway_log(d->g), NG_LOG_WARN, "cannot reschedule; it comes back after its lease",
                         "tenant", t->slug, "message_id", f->msg, NULL);
    }
}

/* The CloudEvents attributes a parcel's header gives, for either mode. */
struct attrs {
    char source[256], expires[32], recipient[2 * NG_KEY_ID_BYTES + 1], sender[2 * NG_KEY_ID_BYTES + 1];
    const char *names[4], *values[4];
};

/*
 * What came of reading the parcel: its message id and expiry go on f
 * (for the log and the retry bound), and a refusal goes to the dead
 * letters as `what: why`. NG_OK if it may be delivered.
 */
static ng_err
admitted(ng_deliverer *d, const ng_dir_tenant *t, struct flight *f, const ng_received *r, ng_err err, const char *what)
{
    char reason[NG_QUEUE_REASON_BYTES];

    if (r->header.n_messages > 0) {
        ng_hex_encode(f->msg, sizeof f->msg, r->header.message_id, NG_PARCEL_MESSAGE_ID_BYTES);
        f->expires_ms = r->header.expires_ms;
    }
    if (err == NG_OK && r->tenant != t)
        err = NG_ERR_WRONG_RECIPIENT;
    if (err) {
        snprintf(reason, sizeof reason, "%s: %s", err == NG_ERR_EXPIRED ? "expired before delivery" : what,
                 ng_strerror(err));
        dead(d, t->slug, f->id, f->msg, reason, ng_receive_reason(err), 0);
    }
    return err;
}

/*
 * The job's fields both modes share: where, who signs, the id, time and
 * source, and the header's attributes (with sealed, also the key ids a
 * backend needs to pick its key and check a K sender).
 */
static void
job_init(ng_deliver_job *job, struct attrs *a, const ng_dir_tenant *t, const ng_dir_backend *b, const struct flight *f,
         const ng_received *r, const char *from, int sealed)
{
    size_t n = 0;

    snprintf(a->source, sizeof a->source, "urn:noisegate:%s:%s", t->slug, from);
    snprintf(a->expires, sizeof a->expires, "%llu", (unsigned long long)r->header.expires_ms);
    a->names[n] = "ce-ngpattern";
    a->values[n++] = ng_pattern_name(r->header.pattern);
    a->names[n] = "ce-ngexpires";
    a->values[n++] = a->expires;
    if (sealed) {
        ng_hex_encode(a->recipient, sizeof a->recipient, r->header.recipient_key_id, NG_KEY_ID_BYTES);
        a->names[n] = "ce-ngrecipient";
        a->values[n++] = a->recipient;
        if (ng_pattern_base(r->header.pattern) == NG_PATTERN_K) {
            ng_hex_encode(a->sender, sizeof a->sender, r->header.sender_key_id, NG_KEY_ID_BYTES);
            a->names[n] = "ce-ngsender";
            a->values[n++] = a->sender;
        }
    }
    memset(job, 0, sizeof *job);
    job->url = b->url;
    job->id = f->msg;
    job->source = a->source;
    job->time_ms = (int64_t)r->header.created_ms;
    job->extra_names = a->names;
    job->extra_values = a->values;
    job->extras = n;
    job->secret = b->whsec;
    job->secret_len = b->whsec_len;
    job->secret_prev = b->whsec_prev;
    job->secret_prev_len = b->whsec_prev_len;
    job->sk = t->sign_sk;
}

/*
 * End-to-end mode: the parcel goes as it came, checked by its header only
 * (the gateway may not even hold the key that opens it).
 */
static void
start_sealed(ng_deliverer *d, ng_directory *dir, const ng_dir_tenant *t, const ng_dir_backend *b, struct flight **fp,
             const char *peer, const uint8_t *parcel, size_t plen)
{
    ng_receive_opts o;
    ng_received r;
    ng_deliver_job job;
    struct attrs a;

    ng_gateway_receive_opts(d->g, &o);
    o.from_peer = peer[0] != '\0' ? peer : NULL;
    if (admitted(d, t, *fp, &r, ng_receive_inspect(dir, parcel, plen, &o, &r), "refused") != NG_OK)
        return;
    /* An X sender is inside the sealed part: the source names the peer it was fetched from, if any. */
    job_init(&job, &a, t, b, *fp, &r, r.peer != NULL ? r.peer->name : (peer[0] != '\0' ? peer : "anonymous"), 1);
    job.type = "org.noisegate.parcel";
    job.content_type = NG_PARCEL_CONTENT_TYPE;
    job.body = parcel;
    job.body_len = plen;
    submit_job(d, t, b, &job, fp);
}

static void
start_one(ng_deliverer *d, ng_directory *dir, const ng_dir_tenant *t, const ng_dir_backend *b, const ng_queue_item *it)
{
    char peer[NG_RECEIVE_PEER_BYTES];
    const uint8_t *parcel;
    ng_receive_opts o;
    ng_received r;
    ng_opened op;
    ng_deliver_job job;
    struct attrs a;
    struct flight *f;
    uint8_t *plain = NULL;
    size_t plain_len = 0, plen;
    json_t *meta = NULL;
    ng_err err;

    f = calloc(1, sizeof *f);
    if (f == NULL)
        return; /* stays claimed: its lease ends and it comes back */
    snprintf(f->slug, sizeof f->slug, "%s", t->slug);
    snprintf(f->id, sizeof f->id, "%s", it->id);
    snprintf(f->backend, sizeof f->backend, "%s", b->id);
    f->attempts = it->attempts;
    f->bucket = ng_slot_of(t->slug, BUCKETS);
    if (ng_receive_unrecord(it->data, it->len, peer, &parcel, &plen) != NG_OK) {
        dead(d, t->slug, it->id, "", "not a delivery record", "malformed", 0);
        free(f);
        return;
    }
    if (b->sealed) {
        start_sealed(d, dir, t, b, &f, peer, parcel, plen);
        free(f);
        return;
    }
    memset(&op, 0, sizeof op);
    ng_gateway_receive_opts(d->g, &o);
    o.from_peer = peer[0] != '\0' ? peer : NULL;
    err = ng_receive_open(dir, parcel, plen, &o, &r, &op, &plain, &plain_len);
    if (err == NG_OK) {
        meta = json_loadb((const char *)op.meta, op.meta_len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(meta) || meta_text(meta, "content_type", 1) == NULL)
            err = NG_ERR_MALFORMED;
    }
    if (admitted(d, t, f, &r, err, "cannot open") != NG_OK)
        goto out;
    job_init(&job, &a, t, b, f, &r, r.peer != NULL ? r.peer->name : "anonymous", 0);
    job.type = meta_text(meta, "type", 0) != NULL ? meta_text(meta, "type", 0) : "org.noisegate.message";
    job.subject = meta_text(meta, "subject", 0);
    job.content_type = meta_text(meta, "content_type", 1);
    job.body = op.body;
    job.body_len = op.body_len;
    submit_job(d, t, b, &job, &f);
out:
    json_decref(meta);
    if (plain != NULL) {
        sodium_memzero(plain, plain_len);
        free(plain);
    }
    sodium_memzero(&op, sizeof op);
    free(f);
}

/* One claim round over the tenants with a backend; how many messages started. */
static size_t
claim_round(ng_deliverer *d)
{
    const ng_config *cfg = ng_gateway_config(d->g);
    ng_directory *dir = ng_gateway_directory(d->g);
    uint64_t lease = 2u * (uint64_t)cfg->delivery.timeout_ms + 10000u;
    size_t i, j, started = 0;

    /*
     * Each round starts one tenant further, and stops while the adapter has
     * no room for a full claim: a claim it refused would be retried, and
     * counted as an attempt, and the tenants at the end would pay for it.
     */
    d->first = ng_directory_count(dir) > 0 ? (d->first + 1) % ng_directory_count(dir) : 0;
    for (i = 0; i < ng_directory_count(dir); i++) {
        const ng_dir_tenant *t = ng_directory_at(dir, (d->first + i) % ng_directory_count(dir));
        const ng_dir_backend *b = first_active(t);
        unsigned room, used = d->inflight[ng_slot_of(t->slug, BUCKETS)];
        ng_queue_batch batch;

        if (ng_deliver_pending(d->dv) + ng_nats_pending(d->nats) + d->cap > MAX_QUEUED)
            break;
        if (b == NULL || used >= d->cap)
            continue;
        room = d->cap - used;
        if (ng_queue_inbox_claim(d->q, t->slug, ng_gateway_owner(d->g), room, lease, &batch) != NG_OK)
            continue; /* Redis down: the next round tries again */
        for (j = 0; j < batch.n; j++)
            start_one(d, dir, t, b, &batch.items[j]);
        started += batch.n;
        ng_queue_batch_free(&batch);
    }
    ng_directory_release(dir);
    return started;
}

static ng_err
disable(ng_vault *v, void *ctx)
{
    const struct flight *f = ctx;

    return ng_tenant_backend_set_active(v, f->slug, f->backend, 0, (int64_t)(ng_parcel_now_ms() / 1000));
}

/* A 410: the backend is gone; deliveries wait until an operator enables it again. */
static void
disable_backend(ng_deliverer *d, struct flight *f)
{
    const ng_vault_secret *secret;
    ng_vault_store *store;
    ng_err err;

    ng_gateway_vault_lock(d->g, &store, &secret);
    err = ng_vault_update(store, secret, disable, f);
    ng_gateway_vault_unlock(d->g);
    ng_log_event(ng_gateway_log(d->g), NG_LOG_WARN, "backend answered 410 Gone: disabled", "tenant", f->slug, "backend",
                 f->backend, "vault", err == NG_OK ? "updated" : ng_strerror(err), NULL);
    if (err == NG_OK && ng_gateway_reload(d->g) != NG_OK)
        return; /* the reload logged why; the next vault check tries again */
}

static void
on_result(void *ctx, const ng_deliver_result *r)
{
    ng_deliverer *d = ctx;
    struct flight *f = r->user;
    const ng_config *cfg = ng_gateway_config(d->g);
    ng_metrics *m = ng_gateway_metrics(d->g);
    static const char *const outcome[] = {"acked", "gone", "retry", "refused"};
    char status[8], reason[NG_QUEUE_REASON_BYTES];
    uint64_t now = ng_parcel_now_ms(), at, delay;
    ng_err err = NG_OK;

    snprintf(status, sizeof status, "%d", r->status);
    ng_metrics_add(m, "ng_deliveries_total", (const char *[]){"outcome", outcome[r->outcome], NULL}, 1);
    ng_metrics_observe(m, "ng_delivery_seconds", NULL, r->seconds);
    if (r->outcome == NG_DELIVER_ACKED) {
        err = ng_queue_inbox_ack(d->q, f->slug, f->id);
        if (err && err != NG_ERR_NOT_FOUND)
            ng_log_event(ng_gateway_log(d->g), NG_LOG_WARN,
                         "delivered but not acked: it will be delivered again after its lease", "tenant", f->slug,
                         "message_id", f->msg, "error", ng_strerror(err), NULL);
        flight_done(d, f);
        return;
    }
    ng_log_event(ng_gateway_log(d->g), NG_LOG_INFO, "delivery failed", "tenant", f->slug, "message_id", f->msg,
                 "status", status, "error", r->error, NULL);
    if (r->outcome == NG_DELIVER_REFUSED) {
        snprintf(reason, sizeof reason, "refused: %s", r->error);
        dead(d, f->slug, f->id, f->msg, reason, "refused", r->status);
        flight_done(d, f);
        return;
    }
    if (r->outcome == NG_DELIVER_GONE)
        disable_backend(d, f);
    if (f->attempts + 1 >= (uint32_t)cfg->delivery.max_attempts) {
        snprintf(reason, sizeof reason, "%d attempts failed, the last: %s", f->attempts + 1, r->error);
        dead(d, f->slug, f->id, f->msg, reason, "attempts", r->status);
        flight_done(d, f);
        return;
    }
    if (r->retry_after_ms >= 0)
        delay = (uint64_t)r->retry_after_ms;
    else
        delay = (uint64_t)ng_deliver_backoff_ms(cfg->delivery.retry_schedule_s, cfg->delivery.retry_schedule_len,
                                                f->attempts, randombytes_random());
    /* "Retry-After: 0" (or a date already past) would spend every attempt in a moment: a second at least. */
    at = now + (delay < RETRY_MIN_MS ? RETRY_MIN_MS : delay);
    if (f->expires_ms != 0 && at >= f->expires_ms) {
        snprintf(reason, sizeof reason, "expires before the next attempt; the last: %s", r->error);
        dead(d, f->slug, f->id, f->msg, reason, "expired", r->status);
        flight_done(d, f);
        return;
    }
    err = ng_queue_inbox_retry(d->q, f->slug, f->id, at);
    if (err == NG_OK)
        ng_metrics_add(m, "ng_delivery_retries_total", NULL, 1);
    flight_done(d, f);
}

static void *
run(void *arg)
{
    ng_deliverer *d = arg;
    const ng_config *cfg = ng_gateway_config(d->g);
    uint64_t idle = IDLE_MIN_MS, next_claim = 0, deadline = 0;
    size_t last = 0; /* what the last claim round started */

    for (;;) {
        int stopping, kicked;
        uint64_t now = ng_stop_mono_ms();

        pthread_mutex_lock(&d->lock);
        stopping = d->stopping;
        kicked = d->kicked;
        d->kicked = 0;
        pthread_mutex_unlock(&d->lock);
        if (stopping) {
            if (deadline == 0)
                deadline = now + (uint64_t)cfg->delivery.timeout_ms + 1000;
            if (ng_deliver_pending(d->dv) + ng_nats_pending(d->nats) == 0 || now >= deadline)
                return NULL;
        } else if (kicked || now >= next_claim || (last > 0 && 2 * d->finished >= last)) {
            /*
             * A round that found work may have left more behind: once half
             * of it has finished, claim again rather than wait for the
             * timer, or the timer would set the pace (16 per 100 ms).
             */
            d->finished = 0;
            last = claim_round(d);
            idle = last > 0 || kicked ? IDLE_MIN_MS : (idle * 2 > IDLE_MAX_MS ? IDLE_MAX_MS : idle * 2);
            next_claim = ng_stop_mono_ms() + idle;
        }
        if (!stopping && now >= d->bus_synced + BUS_SYNC_MS) {
            ng_directory *dir = ng_gateway_directory(d->g);

            ng_bus_sync(d->bus, dir);
            ng_directory_release(dir);
            d->bus_synced = now;
        }
        if (ng_deliver_run(d->dv, 100, on_result, d) != NG_OK) {
            struct timespec ts = {0, 100 * 1000000L};

            nanosleep(&ts, NULL);
        }
        ng_nats_collect(d->nats, on_result, d);
    }
}

/* A NATS publish finished: the thread waiting in ng_deliver_run collects it. */
static void
nats_wakeup(void *ctx)
{
    ng_deliverer *d = ctx;

    ng_deliver_wakeup(d->dv);
}

static void
nats_log(void *ctx, int warn, const char *event, const char *url, const char *detail)
{
    ng_deliverer *d = ctx;

    ng_log_event(ng_gateway_log(d->g), warn ? NG_LOG_WARN : NG_LOG_INFO, event, "url", url, "detail", detail, NULL);
}

/* The adapters and the bus, or NG_ERR_NOMEM with none of them. */
static ng_err
adapters_new(ng_deliverer *d, const ng_config *cfg)
{
    ng_deliver_opts o;
    ng_nats_opts no;
    ng_err err;

    memset(&o, 0, sizeof o);
    o.timeout_ms = (unsigned)cfg->delivery.timeout_ms;
    o.per_endpoint = (unsigned)cfg->delivery.concurrency_per_endpoint;
    o.max_queued = MAX_QUEUED;
    o.allow_private = (const char *const *)cfg->delivery.allow_private;
    o.allow_private_len = cfg->delivery.allow_private_len;
    memset(&no, 0, sizeof no);
    /* A publish ack comes in milliseconds or not at all: waiting as long as for a webhook would hold the queue. */
    no.timeout_ms =
        cfg->delivery.timeout_ms < NATS_TIMEOUT_MAX_MS ? (unsigned)cfg->delivery.timeout_ms : NATS_TIMEOUT_MAX_MS;
    no.max_queued = MAX_QUEUED;
    no.wakeup = nats_wakeup;
    no.wakeup_ctx = d;
    no.log = nats_log;
    no.log_ctx = d;
    err = ng_deliver_new(&d->dv, &o);
    if (err == NG_OK)
        err = ng_nats_new(&d->nats, &no);
    if (err == NG_OK)
        err = ng_bus_new(&d->bus, d->g, d->nats);
    if (err) {
        ng_nats_free(d->nats);
        ng_deliver_free(d->dv);
    }
    return err;
}

static void
adapters_free(ng_deliverer *d)
{
    /* The NATS threads wake the webhook engine up: they go first. */
    ng_bus_free(d->bus);
    ng_nats_free(d->nats);
    ng_deliver_free(d->dv);
}

ng_err
ng_deliverer_start(ng_deliverer **out, ng_gateway *g)
{
    const ng_config *cfg = ng_gateway_config(g);
    ng_deliverer *d;
    ng_err err;

    *out = NULL;
    d = calloc(1, sizeof *d);
    if (d == NULL)
        return NG_ERR_NOMEM;
    d->g = g;
    /* Twice what an endpoint may run at once: the rest wait their turn inside their lease. */
    d->cap = 2u * (unsigned)cfg->delivery.concurrency_per_endpoint;
    err = adapters_new(d, cfg);
    if (err == NG_OK && (err = ng_gateway_queue_take(g, &d->q)) != NG_OK)
        adapters_free(d);
    if (err) {
        free(d);
        return err;
    }
    pthread_mutex_init(&d->lock, NULL);
    if (pthread_create(&d->thread, NULL, run, d) != 0) {
        pthread_mutex_destroy(&d->lock);
        ng_gateway_queue_give(g, d->q);
        adapters_free(d);
        free(d);
        return NG_ERR_NOMEM;
    }
    *out = d;
    return NG_OK;
}

void
ng_deliverer_kick(void *arg)
{
    ng_deliverer *d = arg;

    pthread_mutex_lock(&d->lock);
    d->kicked = 1;
    pthread_mutex_unlock(&d->lock);
    ng_deliver_wakeup(d->dv);
}

void
ng_deliverer_stop(ng_deliverer *d)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    d->stopping = 1;
    pthread_mutex_unlock(&d->lock);
    ng_deliver_wakeup(d->dv);
    pthread_join(d->thread, NULL);
    adapters_free(d); /* what did not finish stays claimed and comes back after its lease */
    while (d->flights != NULL)
        flight_done(d, d->flights);
    ng_gateway_queue_give(d->g, d->q);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

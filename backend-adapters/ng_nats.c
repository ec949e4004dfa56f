/*
 * NATS JetStream for backends (ng_nats.h). Each URL has a connection and a
 * thread that publishes its jobs one at a time, waiting for each ack, and
 * binds its consumers whenever they are not bound. Finished jobs go to one
 * done list that the caller collects. Consumers whose owner let go are
 * kept (unbound) until ng_nats_free, because libnats may still hold a
 * message for their callback.
 */
#include "ng_nats.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <nats/nats.h>
#include <sodium.h>

#include "ng_stop.h"
#include "ng_webhook.h"

enum {
    HEADERS_MAX = 8 + NG_DELIVER_MAX_EXTRAS,
    TICK_MS = 500,          /* how often an idle connection thread looks at its consumers */
    RECONNECT_MIN_MS = 250, /* the first reconnect delay, doubling ... */
    RECONNECT_MAX_MS = 5000,
    CONNECT_TIMEOUT_MS = 2000,
    DRAIN_MS = 5000, /* a consumer let go of: how long its messages in hand may take */
    /*
     * A consumer let go of keeps its subscription this long, handing back
     * what comes (after NAK_DEAD_MS), so that one taken up again at once
     * (a backend's settings changed) loses nothing: a subscription torn
     * down while JetStream pushes to it leaves that message to the ack
     * wait (30 s), as JetStream learns of lost interest only later.
     */
    UNBIND_GRACE_MS = 2000,
    DELIVERY_THREADS = 4, /* libnats's pool for submissions: one tenant's slow store does not hold the others' */
    NAK_DEAD_MS = 200,
};

struct job {
    struct job *next;
    char *subject, *id;
    const struct stream *stream;
    char *names[HEADERS_MAX], *values[HEADERS_MAX];
    size_t nheaders;
    uint8_t *body;
    size_t body_len;
    ng_deliver_keys keys;
    uint64_t queued_ms, started_ms; /* monotonic */
    ng_deliver_result r;
};

struct stream {
    struct stream *next;
    char name[NG_NATS_NAME_MAX + 1], subjects[NG_NATS_NAME_MAX + 1];
    char actual[NG_NATS_NAME_MAX + 1]; /* the stream that takes the subjects: ours, or the operator's */
    int ensured;                       /* on this connection */
    int complained;                    /* a failure to make it was logged; the connection thread's */
};

struct consumer {
    struct consumer *next; /* of its connection */
    struct conn *conn;
    struct stream *stream;
    char subject[NG_NATS_NAME_MAX + 1], durable[NG_NATS_NAME_MAX + 1], deliver[NG_NATS_NAME_MAX + 16];
    natsSubscription *sub; /* the connection thread's */
    ng_nats_submit_cb cb;
    void *ctx;
    pthread_mutex_t lock; /* the fields below */
    pthread_cond_t idle;
    int dead, running;
    uint64_t dead_at_ms; /* monotonic: when it was let go of */
    atomic_int bound;
    int complained; /* a failure to bind was logged; the connection thread's */
};

struct conn {
    struct conn *next;
    ng_nats *n;
    char url[NG_NATS_URL_MAX + 1];
    natsConnection *nc;
    jsCtx *js;
    pthread_t thread;
    uint64_t upkeep_ms; /* monotonic: when its consumers are next looked at; the connection thread's */
    int closed;         /* libnats made its last callback (under n->lock) */
    /* Under n->lock. */
    struct job *head, *tail;
    struct stream *streams;
    struct consumer *consumers;
    int rebind; /* a consumer was added, or the connection came back */
    pthread_cond_t work;
};

struct ng_nats {
    ng_nats_opts o;
    pthread_mutex_t lock;
    struct conn *conns;
    struct job *done_head, *done_tail;
    size_t pending;
    int stopping;
};

struct ng_nats_msg {
    natsMsg *msg;
    int64_t stored_ms;
    uint64_t deliveries;
};

/* ------------------------------------------------------------------ */
/* Names                                                               */

static int
name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

int
ng_nats_name_ok(const char *name)
{
    size_t i;

    for (i = 0; name[i] != '\0'; i++)
        if (!name_char(name[i]) || i >= NG_NATS_NAME_MAX)
            return 0;
    return i > 0;
}

/* Tokens joined by '.'; with wild, the last token may be '>' (a stream's subjects). */
static int
subject_ok(const char *s, int wild)
{
    size_t i, token = 0, len = strlen(s);

    if (len == 0 || len > NG_NATS_NAME_MAX)
        return 0;
    for (i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (token == 0)
                return 0;
            token = 0;
        } else if (wild && s[i] == '>' && token == 0 && i == len - 1) {
            token = 1;
        } else if (name_char(s[i])) {
            token++;
        } else {
            return 0;
        }
    }
    return token > 0;
}

int
ng_nats_subject_ok(const char *s)
{
    return subject_ok(s, 0);
}

static int
stream_ok(const ng_nats_stream *s)
{
    return s->url != NULL && strlen(s->url) <= NG_NATS_URL_MAX && strncmp(s->url, "nats://", 7) == 0 &&
           s->name != NULL && ng_nats_name_ok(s->name) && s->subjects != NULL && subject_ok(s->subjects, 1);
}

/* ------------------------------------------------------------------ */
/* Jobs                                                                */

static void
job_free(struct job *j)
{
    size_t i;

    ng_deliver_keys_wipe(&j->keys);
    for (i = 0; i < j->nheaders; i++) {
        free(j->names[i]);
        free(j->values[i]);
    }
    /* The body may be a message in clear. */
    if (j->body != NULL)
        sodium_memzero(j->body, j->body_len);
    free(j->body);
    free(j->subject);
    free(j->id);
    free(j);
}

static int
keep_header(void *ctx, const char *name, const char *value)
{
    struct job *j = ctx;

    /* libnats 3.4 cannot read a header with an empty value back (it takes the next line for it). */
    if (value[0] == '\0')
        return 0;
    if (j->nheaders == HEADERS_MAX)
        return -1;
    j->names[j->nheaders] = strdup(name);
    j->values[j->nheaders] = strdup(value);
    j->nheaders++;
    return j->names[j->nheaders - 1] == NULL || j->values[j->nheaders - 1] == NULL;
}

/* The monotonic clock, ms from now, for a wait on a condition made by cond_init. */
static void
deadline_in(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    ts->tv_sec += ts->tv_nsec / 1000000000L;
    ts->tv_nsec %= 1000000000L;
}

/* A condition whose timed waits go by the monotonic clock, which a change of the time of day does not move. */
static int
cond_init(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    int rc;

    if (pthread_condattr_init(&ca) != 0)
        return -1;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
    return rc == 0 ? 0 : -1;
}

/* Under n->lock. */
static void
done_push(ng_nats *n, struct job *j)
{
    j->next = NULL;
    if (n->done_tail != NULL)
        n->done_tail->next = j;
    else
        n->done_head = j;
    n->done_tail = j;
}

static void
finish(ng_nats *n, struct job *j, ng_deliver_outcome outcome, const char *fmt, const char *arg)
{
    j->r.outcome = outcome;
    j->r.seconds = (double)(ng_stop_mono_ms() - j->started_ms) / 1000.0;
    snprintf(j->r.error, sizeof j->r.error, fmt, arg);
    ng_deliver_keys_wipe(&j->keys);
    pthread_mutex_lock(&n->lock);
    done_push(n, j);
    pthread_mutex_unlock(&n->lock);
    if (n->o.wakeup != NULL)
        n->o.wakeup(n->o.wakeup_ctx);
}

/*
 * natsMsg_Destroy without wiping: libnats keeps its own copy of the data,
 * which is a message in clear (an opened delivery, a submission).
 */
static void
msg_destroy(natsMsg *m)
{
    if (m != NULL && natsMsg_GetDataLength(m) > 0)
        sodium_memzero((void *)(uintptr_t)natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
    natsMsg_Destroy(m);
}

/* ------------------------------------------------------------------ */
/* Connections                                                         */

static void
log_event(struct conn *c, const char *event, const char *detail)
{
    if (c->n->o.log != NULL)
        c->n->o.log(c->n->o.log_ctx, strcmp(event, "NATS connected") != 0, event, c->url, detail);
}

static void
on_disconnected(natsConnection *nc, void *closure)
{
    struct conn *c = closure;
    int stopping;

    (void)nc;
    pthread_mutex_lock(&c->n->lock);
    stopping = c->n->stopping;
    pthread_mutex_unlock(&c->n->lock);
    if (!stopping) /* closing it ourselves is not news */
        log_event(c, "NATS disconnected", "");
}

/* libnats's last callback for the connection: after it, c may be freed. */
static void
on_closed(natsConnection *nc, void *closure)
{
    struct conn *c = closure;
    ng_nats *n = c->n;

    (void)nc;
    pthread_mutex_lock(&n->lock);
    c->closed = 1;
    pthread_cond_broadcast(&c->work);
    pthread_mutex_unlock(&n->lock);
}

static void
on_reconnected(natsConnection *nc, void *closure)
{
    struct conn *c = closure;

    (void)nc;
    pthread_mutex_lock(&c->n->lock);
    c->rebind = 1;
    pthread_cond_signal(&c->work);
    pthread_mutex_unlock(&c->n->lock);
    log_event(c, "NATS connected", "");
}

/* 250 ms doubling to 5 s, +-20%: many gateways that lost one server do not come back in step. */
static int64_t
reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
    int64_t ms = RECONNECT_MIN_MS;

    (void)nc;
    (void)closure;
    while (attempts-- > 1 && ms < RECONNECT_MAX_MS)
        ms *= 2;
    if (ms > RECONNECT_MAX_MS)
        ms = RECONNECT_MAX_MS;
    return ms * 8 / 10 + (int64_t)randombytes_uniform((uint32_t)(ms * 4 / 10 + 1));
}

static natsStatus
conn_open(struct conn *c)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);

    if (s == NATS_OK)
        s = natsOptions_SetURL(o, c->url);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, "noisegate");
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, CONNECT_TIMEOUT_MS);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetCustomReconnectDelay(o, reconnect_delay, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(o, true, on_reconnected, c);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_reconnected, c);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, on_disconnected, c);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(o, on_closed, c);
    if (s == NATS_OK)
        s = natsOptions_UseGlobalMessageDelivery(o, true);
    if (s == NATS_OK) {
        s = natsConnection_Connect(&c->nc, o);
        if (s == NATS_NOT_YET_CONNECTED)
            s = NATS_OK;
        else if (s == NATS_OK)
            log_event(c, "NATS connected", "");
    }
    if (s == NATS_OK)
        s = natsConnection_JetStream(&c->js, c->nc, NULL);
    natsOptions_Destroy(o);
    return s;
}

static int
connected(struct conn *c)
{
    return c->nc != NULL && natsConnection_Status(c->nc) == NATS_CONN_STATUS_CONNECTED;
}

/*
 * The name of the stream that takes subject, asked of the JetStream API
 * ($JS.API.STREAM.NAMES with a subject filter, which libnats does not
 * expose); -1 if none or no answer.
 */
static int
stream_for(struct conn *c, const char *subject, char out[NG_NATS_NAME_MAX + 1])
{
    char req[NG_NATS_NAME_MAX + 32];
    natsMsg *reply = NULL;
    json_t *doc = NULL;
    const char *name;
    int rc = -1;

    snprintf(req, sizeof req, "{\"subject\":\"%s\"}", subject);
    if (natsConnection_RequestString(&reply, c->nc, "$JS.API.STREAM.NAMES", req, CONNECT_TIMEOUT_MS) != NATS_OK)
        return -1;
    doc = json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, NULL);
    name = json_string_value(json_array_get(json_object_get(doc, "streams"), 0));
    if (name != NULL && ng_nats_name_ok(name)) {
        snprintf(out, NG_NATS_NAME_MAX + 1, "%s", name);
        rc = 0;
    }
    json_decref(doc);
    natsMsg_Destroy(reply);
    return rc;
}

/* Creates the stream unless it, or another that takes its subjects, exists. */
static int
ensure_stream(struct conn *c, struct stream *st)
{
    jsStreamConfig cfg;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    const char *subjects[1] = {st->subjects};
    natsStatus s;
    char detail[2 * NG_NATS_NAME_MAX + 64];

    if (st->ensured)
        return 0;
    jsStreamConfig_Init(&cfg);
    cfg.Name = st->name;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    s = js_AddStream(&si, c->js, &cfg, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    if (s == NATS_OK) {
        snprintf(st->actual, sizeof st->actual, "%s", st->name);
        st->ensured = 1;
        st->complained = 0;
        return 0;
    }
    /* Ours from before, or the operator's under any name; a stream of our name that takes other subjects is not. */
    if ((jerr == JSStreamNameExistErr || jerr == JSStreamSubjectOverlapErr) &&
        stream_for(c, st->subjects, st->actual) == 0) {
        st->ensured = 1;
        st->complained = 0;
        return 0;
    }
    if (!st->complained) {
        snprintf(detail, sizeof detail, "stream %s for %s: %s (%d)", st->name, st->subjects, natsStatus_GetText(s),
                 (int)jerr);
        log_event(c, "NATS stream not created", detail);
        st->complained = 1;
    }
    return -1;
}

static void
publish(struct conn *c, struct job *j)
{
    char header[NG_WEBHOOK_SIGNERS_BYTES], ts[24], code[32];
    int64_t now = (int64_t)time(NULL);
    natsMsg *m = NULL;
    jsPubOptions po;
    jsPubAck *ack = NULL;
    jsErrCode jerr = 0;
    natsStatus s;
    size_t i;

    j->started_ms = ng_stop_mono_ms();
    if (!connected(c)) {
        finish(c->n, j, NG_DELIVER_RETRY, "%s", "NATS not connected");
        return;
    }
    /*
     * Publishes on a connection go one at a time: behind slow ones (a server
     * that stopped acking), a job would outlive the deliverer's lease on it
     * and be handed out again while still queued here.
     */
    if (j->started_ms - j->queued_ms > c->n->o.timeout_ms) {
        finish(c->n, j, NG_DELIVER_RETRY, "%s", "waited too long behind slow publishes on this connection");
        return;
    }
    if (ensure_stream(c, (struct stream *)j->stream) != 0) {
        finish(c->n, j, NG_DELIVER_RETRY, "%s", "NATS stream not available");
        return;
    }
    if (ng_deliver_keys_sign(&j->keys, header, j->id, now, j->body, j->body_len) != NG_OK) {
        finish(c->n, j, NG_DELIVER_RETRY, "%s", "cannot sign");
        return;
    }
    snprintf(ts, sizeof ts, "%lld", (long long)now);
    s = natsMsg_Create(&m, j->subject, NULL, (const char *)j->body, (int)j->body_len);
    for (i = 0; i < j->nheaders && s == NATS_OK; i++)
        s = natsMsgHeader_Set(m, j->names[i], j->values[i]);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "webhook-timestamp", ts);
    if (s == NATS_OK && header[0] != '\0')
        s = natsMsgHeader_Set(m, "webhook-signature", header);
    if (s != NATS_OK) {
        msg_destroy(m);
        finish(c->n, j, NG_DELIVER_RETRY, "cannot build the message: %s", natsStatus_GetText(s));
        return;
    }
    jsPubOptions_Init(&po);
    po.MsgId = j->id;
    po.ExpectStream = j->stream->actual;
    po.MaxWait = (int64_t)c->n->o.timeout_ms;
    s = js_PublishMsg(&ack, c->js, m, &po, &jerr);
    msg_destroy(m);
    jsPubAck_Destroy(ack);
    if (s == NATS_OK) {
        finish(c->n, j, NG_DELIVER_ACKED, "%s", "");
        return;
    }
    if (s == NATS_NO_RESPONDERS)
        ((struct stream *)j->stream)->ensured = 0; /* gone from the server: create it again next time */
    if (jerr != 0) {
        snprintf(code, sizeof code, "%d", (int)jerr);
        finish(c->n, j, NG_DELIVER_RETRY, "JetStream refused the publish: error %s", code);
    } else if (s == NATS_TIMEOUT) {
        finish(c->n, j, NG_DELIVER_RETRY, "%s", "no ack from JetStream in time");
    } else {
        finish(c->n, j, NG_DELIVER_RETRY, "NATS: %s", natsStatus_GetText(s));
    }
}

/* ------------------------------------------------------------------ */
/* Consumers                                                           */

const char *
ng_nats_msg_header(const ng_nats_msg *m, const char *name)
{
    const char **keys = NULL, *v = NULL;
    int n = 0, i;

    /* The spelling asked for first: libnats matches case, and backends mostly write what the API says. */
    if (natsMsgHeader_Get(m->msg, name, &v) == NATS_OK)
        return v;
    if (natsMsgHeader_Keys(m->msg, &keys, &n) != NATS_OK)
        return NULL;
    for (i = 0; i < n; i++)
        if (strcasecmp(keys[i], name) == 0) {
            if (natsMsgHeader_Get(m->msg, keys[i], &v) != NATS_OK)
                v = NULL;
            break;
        }
    free((void *)keys);
    return v;
}

const uint8_t *
ng_nats_msg_body(const ng_nats_msg *m, size_t *len)
{
    *len = (size_t)natsMsg_GetDataLength(m->msg);
    return (const uint8_t *)natsMsg_GetData(m->msg);
}

int64_t
ng_nats_msg_stored_ms(const ng_nats_msg *m)
{
    return m->stored_ms;
}

uint64_t
ng_nats_msg_deliveries(const ng_nats_msg *m)
{
    return m->deliveries;
}

static void
on_message(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    struct consumer *k = closure;
    jsMsgMetaData *meta = NULL;
    ng_nats_msg m = {msg, 0, 0};
    ng_nats_verdict v;
    int64_t retry_ms = 1000;

    (void)nc;
    (void)sub;
    pthread_mutex_lock(&k->lock);
    if (k->dead) {
        pthread_mutex_unlock(&k->lock);
        /* Handed back soon, to whoever consumes it next (this one again, if taken up), not after the ack wait. */
        natsMsg_NakWithDelay(msg, NAK_DEAD_MS, NULL);
        msg_destroy(msg);
        return;
    }
    k->running++;
    pthread_mutex_unlock(&k->lock);
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
        m.stored_ms = meta->Timestamp / 1000000;
        m.deliveries = meta->NumDelivered;
        jsMsgMetaData_Destroy(meta);
    }
    v = k->cb(k->ctx, &m, &retry_ms);
    if (v == NG_NATS_ACK)
        natsMsg_Ack(msg, NULL);
    else if (v == NG_NATS_TERM)
        natsMsg_Term(msg, NULL);
    else
        natsMsg_NakWithDelay(msg, retry_ms > 0 ? retry_ms : 1000, NULL);
    msg_destroy(msg);
    pthread_mutex_lock(&k->lock);
    if (--k->running == 0)
        pthread_cond_broadcast(&k->idle);
    pthread_mutex_unlock(&k->lock);
}

/* Creates the durable unless it exists, and subscribes to it; on the connection thread. */
static void
bind(struct conn *c, struct consumer *k)
{
    jsConsumerConfig cc;
    jsConsumerInfo *ci = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    natsStatus s;
    char detail[NG_NATS_NAME_MAX + 64];

    if (k->sub != NULL || ensure_stream(c, k->stream) != 0)
        return;
    jsConsumerConfig_Init(&cc);
    cc.Durable = k->durable;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = (int64_t)NG_NATS_ACK_WAIT_MS * 1000000;
    cc.MaxAckPending = NG_NATS_MAX_ACK_PENDING;
    cc.MaxDeliver = -1;
    cc.FilterSubject = k->subject;
    cc.DeliverSubject = k->deliver;
    cc.DeliverGroup = k->durable;
    s = js_AddConsumer(&ci, c->js, k->stream->actual, &cc, NULL, &jerr);
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK && jerr != JSConsumerNameExistErr) {
        snprintf(detail, sizeof detail, "consumer %s: %s (%d)", k->durable, natsStatus_GetText(s), (int)jerr);
        if (!k->complained++) /* tried again every tick: once in the log is enough */
            log_event(c, "NATS consumer not created", detail);
        return;
    }
    jsSubOptions_Init(&so);
    so.Stream = k->stream->actual;
    so.Consumer = k->durable;
    so.Queue = k->durable;
    so.ManualAck = true;
    jerr = 0;
    s = js_Subscribe(&k->sub, c->js, k->subject, on_message, k, NULL, &so, &jerr);
    if (s != NATS_OK) {
        k->sub = NULL;
        snprintf(detail, sizeof detail, "consumer %s: %s (%d)", k->durable, natsStatus_GetText(s), (int)jerr);
        if (!k->complained++)
            log_event(c, "NATS consumer not bound", detail);
        return;
    }
    k->complained = 0;
    atomic_store(&k->bound, 1);
}

/*
 * The consumer's subscription: a bound one leaves the durable on the
 * server. Drained, not dropped: what libnats already holds for it still
 * reaches on_message, which hands it back (nak) once the consumer is dead,
 * instead of leaving it to the ack wait.
 */
static void
unbind(struct consumer *k)
{
    if (k->sub == NULL)
        return;
    atomic_store(&k->bound, 0);
    if (natsSubscription_Drain(k->sub) == NATS_OK)
        natsSubscription_WaitForDrainCompletion(k->sub, DRAIN_MS);
    else
        natsSubscription_Unsubscribe(k->sub);
    natsSubscription_Destroy(k->sub);
    k->sub = NULL;
}

static void *
conn_run(void *arg)
{
    struct conn *c = arg;
    ng_nats *n = c->n;

    if (conn_open(c) != NATS_OK)
        log_event(c, "NATS connection failed", "a bad URL, or out of memory");
    for (;;) {
        struct job *j = NULL;
        struct consumer *k;
        int rebind;

        pthread_mutex_lock(&n->lock);
        while (!n->stopping && c->head == NULL && !c->rebind) {
            struct timespec ts;

            deadline_in(&ts, TICK_MS);
            if (pthread_cond_timedwait(&c->work, &n->lock, &ts) != 0)
                break;
        }
        if (n->stopping) {
            pthread_mutex_unlock(&n->lock);
            break;
        }
        j = c->head;
        if (j != NULL) {
            c->head = j->next;
            if (c->head == NULL)
                c->tail = NULL;
        }
        rebind = c->rebind;
        c->rebind = 0;
        pthread_mutex_unlock(&n->lock);
        if (j != NULL)
            publish(c, j);
        /* Each consumer costs a look (and, unbound, a JetStream request): not after every publish. */
        if (c->js == NULL || !connected(c) || (!rebind && ng_stop_mono_ms() < c->upkeep_ms))
            continue;
        c->upkeep_ms = ng_stop_mono_ms() + TICK_MS;
        /* Consumers not bound yet, or whose subscription a lost server took with it. */
        pthread_mutex_lock(&n->lock);
        k = c->consumers;
        pthread_mutex_unlock(&n->lock);
        for (; k != NULL; k = k->next) {
            int dead;
            uint64_t since;

            pthread_mutex_lock(&k->lock);
            dead = k->dead;
            since = k->dead_at_ms;
            pthread_mutex_unlock(&k->lock);
            if (dead && ng_stop_mono_ms() - since >= UNBIND_GRACE_MS)
                unbind(k);
            else if (rebind && k->sub != NULL && !natsSubscription_IsValid(k->sub))
                unbind(k);
            if (!dead && k->sub == NULL)
                bind(c, k);
        }
    }
    return NULL;
}

/* The connection for url, started if new; under n->lock. */
static struct conn *
conn_get(ng_nats *n, const char *url)
{
    struct conn *c;

    for (c = n->conns; c != NULL; c = c->next)
        if (strcmp(c->url, url) == 0)
            return c;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->n = n;
    snprintf(c->url, sizeof c->url, "%s", url);
    if (cond_init(&c->work) != 0) {
        free(c);
        return NULL;
    }
    if (pthread_create(&c->thread, NULL, conn_run, c) != 0) {
        pthread_cond_destroy(&c->work);
        free(c);
        return NULL;
    }
    c->next = n->conns;
    n->conns = c;
    return c;
}

/* The connection's record of a stream; under n->lock. */
static struct stream *
stream_get(struct conn *c, const ng_nats_stream *s)
{
    struct stream *st;

    for (st = c->streams; st != NULL; st = st->next)
        if (strcmp(st->name, s->name) == 0)
            return st;
    st = calloc(1, sizeof *st);
    if (st == NULL)
        return NULL;
    snprintf(st->name, sizeof st->name, "%s", s->name);
    snprintf(st->subjects, sizeof st->subjects, "%s", s->subjects);
    st->next = c->streams;
    c->streams = st;
    return st;
}

/* ------------------------------------------------------------------ */
/* The handle                                                          */

ng_err
ng_nats_new(ng_nats **out, const ng_nats_opts *o)
{
    ng_nats *n = calloc(1, sizeof *n);

    *out = NULL;
    if (n == NULL)
        return NG_ERR_NOMEM;
    if (o != NULL)
        n->o = *o;
    if (n->o.timeout_ms == 0)
        n->o.timeout_ms = NG_NATS_DEFAULT_TIMEOUT_MS;
    if (n->o.max_queued == 0)
        n->o.max_queued = NG_DELIVER_DEFAULT_MAX_QUEUED;
    /* libnats's default pool has one thread for every subscription of the process. */
    if (nats_SetMessageDeliveryPoolSize(DELIVERY_THREADS) != NATS_OK) {
        free(n);
        return NG_ERR_NOMEM;
    }
    pthread_mutex_init(&n->lock, NULL);
    *out = n;
    return NG_OK;
}

void
ng_nats_free(ng_nats *n)
{
    struct conn *c, *cn;
    struct job *j, *jn;

    if (n == NULL)
        return;
    pthread_mutex_lock(&n->lock);
    n->stopping = 1;
    for (c = n->conns; c != NULL; c = c->next)
        pthread_cond_signal(&c->work);
    pthread_mutex_unlock(&n->lock);
    for (c = n->conns; c != NULL; c = c->next) {
        struct consumer *k;

        pthread_join(c->thread, NULL);
        for (k = c->consumers; k != NULL; k = k->next) {
            pthread_mutex_lock(&k->lock);
            k->dead = 1;
            while (k->running > 0)
                pthread_cond_wait(&k->idle, &k->lock);
            pthread_mutex_unlock(&k->lock);
            unbind(k);
        }
        if (c->nc != NULL) {
            struct timespec ts;

            natsConnection_Close(c->nc);
            /* Its callbacks run on libnats's threads and use c: wait for the last one (5 s at most). */
            deadline_in(&ts, 5000);
            pthread_mutex_lock(&n->lock);
            while (!c->closed && pthread_cond_timedwait(&c->work, &n->lock, &ts) == 0)
                ;
            pthread_mutex_unlock(&n->lock);
        }
    }
    for (c = n->conns; c != NULL; c = cn) {
        struct stream *st, *sn;
        struct consumer *k, *kn;

        cn = c->next;
        jsCtx_Destroy(c->js);
        natsConnection_Destroy(c->nc);
        for (j = c->head; j != NULL; j = jn) {
            jn = j->next;
            job_free(j);
        }
        for (k = c->consumers; k != NULL; k = kn) {
            kn = k->next;
            pthread_mutex_destroy(&k->lock);
            pthread_cond_destroy(&k->idle);
            free(k);
        }
        for (st = c->streams; st != NULL; st = sn) {
            sn = st->next;
            free(st);
        }
        pthread_cond_destroy(&c->work);
        free(c);
    }
    for (j = n->done_head; j != NULL; j = jn) {
        jn = j->next;
        job_free(j);
    }
    pthread_mutex_destroy(&n->lock);
    free(n);
}

ng_err
ng_nats_publish(ng_nats *n, const ng_nats_stream *s, const char *subject, const ng_deliver_job *job)
{
    struct job *j;
    struct conn *c;
    ng_err err;

    /* libnats takes a length as an int; the job itself ng_deliver_headers checks. */
    if (!stream_ok(s) || !ng_nats_subject_ok(subject) || job->body_len > INT_MAX)
        return NG_ERR_INVALID_ARG;
    if (n->pending >= n->o.max_queued)
        return NG_ERR_TOO_LARGE;
    j = calloc(1, sizeof *j);
    if (j == NULL)
        return NG_ERR_NOMEM;
    err = ng_deliver_headers(job, keep_header, j);
    if (err) {
        job_free(j);
        return err;
    }
    j->r.user = job->user;
    j->r.retry_after_ms = -1;
    j->subject = strdup(subject);
    j->id = strdup(job->id);
    j->body_len = job->body_len;
    j->body = malloc(job->body_len > 0 ? job->body_len : 1);
    if (j->subject == NULL || j->id == NULL || j->body == NULL) {
        job_free(j);
        return NG_ERR_NOMEM;
    }
    if (job->body_len > 0)
        memcpy(j->body, job->body, job->body_len);
    ng_deliver_keys_copy(&j->keys, job);
    pthread_mutex_lock(&n->lock);
    c = conn_get(n, s->url);
    j->stream = c != NULL ? stream_get(c, s) : NULL;
    if (j->stream == NULL) {
        pthread_mutex_unlock(&n->lock);
        job_free(j);
        return NG_ERR_NOMEM;
    }
    j->queued_ms = ng_stop_mono_ms();
    if (c->tail != NULL)
        c->tail->next = j;
    else
        c->head = j;
    c->tail = j;
    n->pending++;
    pthread_cond_signal(&c->work);
    pthread_mutex_unlock(&n->lock);
    return NG_OK;
}

size_t
ng_nats_pending(ng_nats *n)
{
    size_t p;

    pthread_mutex_lock(&n->lock);
    p = n->pending;
    pthread_mutex_unlock(&n->lock);
    return p;
}

void
ng_nats_collect(ng_nats *n, ng_deliver_cb cb, void *ctx)
{
    struct job *j, *next;

    pthread_mutex_lock(&n->lock);
    j = n->done_head;
    n->done_head = n->done_tail = NULL;
    pthread_mutex_unlock(&n->lock);
    for (; j != NULL; j = next) {
        next = j->next;
        pthread_mutex_lock(&n->lock);
        n->pending--;
        pthread_mutex_unlock(&n->lock);
        cb(ctx, &j->r);
        job_free(j);
    }
}

/* The newest consumer named durable on any connection (with_dead: also one let go of); under n->lock. */
static struct consumer *
consumer_find(ng_nats *n, const char *durable, int with_dead)
{
    struct conn *c;
    struct consumer *k;

    for (c = n->conns; c != NULL; c = c->next)
        for (k = c->consumers; k != NULL; k = k->next)
            if ((with_dead || !k->dead) && strcmp(k->durable, durable) == 0)
                return k;
    return NULL;
}

ng_err
ng_nats_consume(ng_nats *n, const ng_nats_stream *s, const char *subject, const char *durable, ng_nats_submit_cb cb,
                void *ctx)
{
    struct consumer *k;
    struct conn *c;

    if (!stream_ok(s) || !ng_nats_subject_ok(subject) || !ng_nats_name_ok(durable))
        return NG_ERR_INVALID_ARG;
    pthread_mutex_lock(&n->lock);
    k = consumer_find(n, durable, 1);
    /* Taken up again as it was: the same subscription, if it still has one (see UNBIND_GRACE_MS). */
    if (k != NULL && k->dead && strcmp(k->subject, subject) == 0 && strcmp(k->conn->url, s->url) == 0 &&
        strcmp(k->stream->name, s->name) == 0) {
        pthread_mutex_lock(&k->lock);
        k->cb = cb;
        k->ctx = ctx;
        k->dead = 0;
        pthread_mutex_unlock(&k->lock);
        k->conn->rebind = 1;
        pthread_cond_signal(&k->conn->work);
    }
    if (k != NULL && !k->dead) {
        pthread_mutex_unlock(&n->lock);
        return NG_OK;
    }
    k = calloc(1, sizeof *k);
    c = k != NULL ? conn_get(n, s->url) : NULL;
    k != NULL &&c != NULL ? (void)(k->stream = stream_get(c, s)) : (void)0;
    if (k == NULL || k->stream == NULL) {
        pthread_mutex_unlock(&n->lock);
        free(k);
        return NG_ERR_NOMEM;
    }
    k->conn = c;
    snprintf(k->subject, sizeof k->subject, "%s", subject);
    snprintf(k->durable, sizeof k->durable, "%s", durable);
    /* Where the server pushes the durable's messages: outside any stream's subjects that we create. */
    snprintf(k->deliver, sizeof k->deliver, "_NG_PUSH.%s", durable);
    k->cb = cb;
    k->ctx = ctx;
    pthread_mutex_init(&k->lock, NULL);
    pthread_cond_init(&k->idle, NULL);
    k->next = c->consumers;
    c->consumers = k;
    c->rebind = 1;
    pthread_cond_signal(&c->work);
    pthread_mutex_unlock(&n->lock);
    return NG_OK;
}

void
ng_nats_unconsume(ng_nats *n, const char *durable)
{
    struct consumer *k;

    pthread_mutex_lock(&n->lock);
    k = consumer_find(n, durable, 0);
    if (k != NULL) {
        pthread_mutex_lock(&k->lock);
        k->dead = 1;
        k->dead_at_ms = ng_stop_mono_ms();
        pthread_mutex_unlock(&k->lock);
        k->conn->rebind = 1;
        pthread_cond_signal(&k->conn->work);
    }
    pthread_mutex_unlock(&n->lock);
    if (k == NULL)
        return;
    /*
     * The connection thread unsubscribes it; no callback reaches the owner
     * after this. Waited for without n->lock, which publishes and libnats's
     * callbacks need meanwhile; k lives until ng_nats_free.
     */
    pthread_mutex_lock(&k->lock);
    while (k->running > 0)
        pthread_cond_wait(&k->idle, &k->lock);
    pthread_mutex_unlock(&k->lock);
}

void
ng_nats_library_close(void)
{
    nats_CloseAndWait(2000);
}

int
ng_nats_consuming(ng_nats *n, const char *durable)
{
    struct consumer *k;
    int bound;

    pthread_mutex_lock(&n->lock);
    k = consumer_find(n, durable, 0);
    bound = k != NULL && atomic_load(&k->bound);
    pthread_mutex_unlock(&n->lock);
    return bound;
}

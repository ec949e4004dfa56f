/*
 * The NATS JetStream adapter against a real nats-server started for the
 * suite (nats_server.h): what a published job looks like in the stream,
 * read back with libnats directly; streams created or borrowed; dedupe by
 * job id; an outage and its end; submissions through a durable consumer
 * with each verdict, unbinding and binding again, and across a restart;
 * bad arguments; freeing a busy handle.
 *
 * Each test uses its own stream and subjects, so the server's state from
 * one test does not leak into the next one's assertions.
 *
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cmocka.h>
#include <nats/nats.h>
#include <sodium.h>

#include "nats_server.h"
#include "ng_nats.h"
#include "ng_webhook.h"

#define CE_TIME_MS   1795514400123LL
#define CE_TIME_TEXT "2026-11-24T10:00:00.123Z"

enum {
    MAX_RESULTS = 64,
    MAX_SEEN = 64,
    BODY_TEXT = 64,
};

static struct nats_server srv;

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(long ms)
{
    loopback_nap(ms);
}

/* ------------------------------------------------------------------ */
/* Results, through opts.wakeup                                        */

static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cond = PTHREAD_COND_INITIALIZER;
static unsigned wakeups;

static void
on_wakeup(void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&wake_lock);
    wakeups++;
    pthread_cond_broadcast(&wake_cond);
    pthread_mutex_unlock(&wake_lock);
}

struct results {
    ng_deliver_result r[MAX_RESULTS];
    size_t n;
};

static void
on_result(void *ctx, const ng_deliver_result *r)
{
    struct results *rs = ctx;

    assert_true(rs->n < MAX_RESULTS);
    rs->r[rs->n++] = *r;
}

/*
 * Collects until want results have come or timeout_ms has passed, sleeping
 * on the wakeup in between: a result that is never signalled makes this
 * time out, so the wakeup is tested too.
 */
static size_t
collect(ng_nats *n, struct results *rs, size_t want, int64_t timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;

    for (;;) {
        unsigned seen;

        pthread_mutex_lock(&wake_lock);
        seen = wakeups;
        pthread_mutex_unlock(&wake_lock);
        ng_nats_collect(n, on_result, rs);
        if (rs->n >= want || mono_ms() >= deadline)
            return rs->n;
        pthread_mutex_lock(&wake_lock);
        while (wakeups == seen && mono_ms() < deadline) {
            struct timespec ts;

            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 20 * 1000000L;
            ts.tv_sec += ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&wake_cond, &wake_lock, &ts);
        }
        pthread_mutex_unlock(&wake_lock);
    }
}

/* One job's result; fails the test if none comes in timeout_ms. */
static ng_deliver_result
publish_one(ng_nats *n, const ng_nats_stream *s, const char *subject, const ng_deliver_job *job, int64_t timeout_ms)
{
    struct results rs = {.n = 0};

    assert_int_equal(ng_nats_publish(n, s, subject, job), NG_OK);
    assert_int_equal(collect(n, &rs, 1, timeout_ms), 1);
    return rs.r[0];
}

/* ------------------------------------------------------------------ */
/* Connection events                                                   */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned log_disconnected, log_connected, log_bad;

/* Counts rather than asserts: it runs on libnats's threads, where a cmocka failure cannot unwind. */
static void
on_log(void *ctx, int warn, const char *event, const char *url, const char *detail)
{
    (void)ctx;
    (void)detail;
    pthread_mutex_lock(&log_lock);
    if (url == NULL || strncmp(url, "nats://127.0.0.1:", 17) != 0 || event == NULL)
        log_bad++;
    else if (strcmp(event, "NATS disconnected") == 0 && warn)
        log_disconnected++;
    else if (strcmp(event, "NATS connected") == 0 && !warn)
        log_connected++;
    pthread_mutex_unlock(&log_lock);
}

static unsigned
log_count(const unsigned *counter)
{
    unsigned v;

    pthread_mutex_lock(&log_lock);
    v = *counter;
    pthread_mutex_unlock(&log_lock);
    return v;
}

/*
 * Handles and probes live in slots, not only on a test's stack, so that
 * the teardown can close what a failed assertion left open: a libnats
 * object left behind makes the next ng_nats_free wait for it.
 */
static ng_nats *handles[4];

static ng_nats *
nats_new(unsigned timeout_ms, size_t max_queued)
{
    ng_nats_opts o;
    ng_nats *n = NULL;
    size_t i;

    memset(&o, 0, sizeof o);
    o.timeout_ms = timeout_ms;
    o.max_queued = max_queued;
    o.wakeup = on_wakeup;
    o.log = on_log;
    assert_int_equal(ng_nats_new(&n, &o), NG_OK);
    assert_non_null(n);
    for (i = 0; i < sizeof handles / sizeof handles[0] && handles[i] != NULL; i++)
        ;
    assert_true(i < sizeof handles / sizeof handles[0]);
    handles[i] = n;
    return n;
}

static void
nats_free(ng_nats *n)
{
    size_t i;

    for (i = 0; i < sizeof handles / sizeof handles[0]; i++)
        if (handles[i] == n)
            handles[i] = NULL;
    ng_nats_free(n);
}

/* ------------------------------------------------------------------ */
/* libnats on the test's side                                          */

/*
 * The test's own connection, to look at what the adapter did. Closed
 * before ng_nats_free, which tears libnats down and would otherwise wait
 * for this connection to go.
 */
struct probe {
    natsConnection *nc;
    jsCtx *js;
};

static struct probe probes[4];

static struct probe *
probe_open(void)
{
    int64_t deadline = mono_ms() + 5000;
    struct probe *p = probes;
    natsStatus s;

    while (p < probes + sizeof probes / sizeof probes[0] && p->nc != NULL)
        p++;
    assert_true(p < probes + sizeof probes / sizeof probes[0]);
    do {
        s = natsConnection_ConnectTo(&p->nc, srv.url);
        if (s != NATS_OK)
            sleep_ms(50);
    } while (s != NATS_OK && mono_ms() < deadline);
    assert_int_equal(s, NATS_OK);
    assert_int_equal(natsConnection_JetStream(&p->js, p->nc, NULL), NATS_OK);
    return p;
}

static void
probe_close(struct probe *p)
{
    jsCtx_Destroy(p->js);
    natsConnection_Destroy(p->nc);
    p->js = NULL;
    p->nc = NULL;
}

/* What a failed test left open: probes first, as ng_nats_free tears libnats down. */
static int
teardown(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof probes / sizeof probes[0]; i++)
        if (probes[i].nc != NULL)
            probe_close(&probes[i]);
    for (i = 0; i < sizeof handles / sizeof handles[0]; i++)
        if (handles[i] != NULL)
            nats_free(handles[i]);
    return 0;
}

/* The stream's message count, or -1 if there is no such stream. */
static int64_t
stream_msgs(struct probe *p, const char *stream)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    int64_t msgs;

    if (js_GetStreamInfo(&si, p->js, stream, NULL, &jerr) != NATS_OK) {
        assert_int_equal(jerr, JSStreamNotFoundErr);
        return -1;
    }
    msgs = (int64_t)si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return msgs;
}

/*
 * Publishes body with an "X-Tenant" header to subject, retrying while
 * JetStream is not there yet (just after a restart).
 */
static void
probe_publish(struct probe *p, const char *subject, const char *body, const char *tenant)
{
    int64_t deadline = mono_ms() + 8000;
    natsStatus s;

    do {
        natsMsg *m = NULL;
        jsPubAck *ack = NULL;
        jsErrCode jerr = 0;

        assert_int_equal(natsMsg_Create(&m, subject, NULL, body, (int)strlen(body)), NATS_OK);
        assert_int_equal(natsMsgHeader_Set(m, "X-Tenant", tenant), NATS_OK);
        s = js_PublishMsg(&ack, p->js, m, NULL, &jerr);
        jsPubAck_Destroy(ack);
        natsMsg_Destroy(m);
        if (s != NATS_OK)
            sleep_ms(100);
    } while (s != NATS_OK && mono_ms() < deadline);
    assert_int_equal(s, NATS_OK);
}

/* The only value of header name (any case) in m; fails if it is there more than once. */
static const char *
msg_header(natsMsg *m, const char *name)
{
    const char **keys = NULL, **values = NULL, *v = NULL;
    int n = 0, i, count = 0;

    if (natsMsgHeader_Keys(m, &keys, &n) != NATS_OK)
        return NULL;
    for (i = 0; i < n; i++) {
        if (strcasecmp(keys[i], name) != 0)
            continue;
        assert_null(v);
        assert_int_equal(natsMsgHeader_Values(m, keys[i], &values, &count), NATS_OK);
        assert_int_equal(count, 1);
        v = values[0];
        free((void *)values);
    }
    free((void *)keys);
    return v;
}

static void
assert_msg_header(natsMsg *m, const char *name, const char *want)
{
    const char *v = msg_header(m, name);

    if (v == NULL)
        fail_msg("header %s missing", name);
    assert_string_equal(v, want);
}

/* ------------------------------------------------------------------ */
/* Jobs                                                                */

static ng_deliver_job
job_base(const char *id)
{
    static const uint8_t body[] = "{\"hello\":1}";
    ng_deliver_job j;

    memset(&j, 0, sizeof j);
    /* ng_nats.h says it is not used, but ng_nats_publish refuses NULL: see test_publish_url_unused. */
    j.url = "not-used";
    j.id = id;
    j.source = "https://gw.example/tenants/t1";
    j.type = "com.example.ping";
    j.content_type = "application/json";
    j.time_ms = CE_TIME_MS;
    j.body = body;
    j.body_len = sizeof body - 1;
    return j;
}

static ng_nats_stream
stream_of(const char *name, const char *subjects)
{
    ng_nats_stream s = {srv.url, name, subjects};

    return s;
}

/* ------------------------------------------------------------------ */
/* Deliver                                                             */

static void
test_publish_shape(void **state)
{
    static const char *const names[] = {"ce-partitionkey", "ce-traceparent"};
    static const char *const values[] = {"k1", "v\r\nx-evil: 1"};
    uint8_t secret[NG_WEBHOOK_SECRET_MAX], raw[32], other[32], pk[32], sk[64], body[4000];
    ng_nats_stream st = stream_of("NG_PUB", "ng.pub.>");
    ng_webhook_keys k = {NULL, 0, NULL, 0, NULL};
    char whsec[80];
    const char *ts, *sig;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    ng_deliver_result r;
    ng_deliver_job job;
    struct probe *p;
    natsMsg *m = NULL;
    size_t secret_len;
    unsigned woke;
    int64_t now;
    int marker;
    ng_nats *n;

    (void)state;
    randombytes_buf(body, sizeof body);
    body[0] = 0;
    body[sizeof body - 1] = 0;
    randombytes_buf(raw, sizeof raw);
    randombytes_buf(other, sizeof other);
    memcpy(whsec, "whsec_", 6);
    sodium_bin2base64(whsec + 6, sizeof whsec - 6, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
    assert_int_equal(ng_webhook_secret_parse(whsec, secret, sizeof secret, &secret_len), NG_OK);
    crypto_sign_keypair(pk, sk);

    n = nats_new(0, 0);
    job = job_base("msg_2mZ3Yc8Q");
    job.subject = "a b\"c%d \xc3\xa9";
    job.content_type = "application/octet-stream; x=1";
    job.extra_names = names;
    job.extra_values = values;
    job.extras = 2;
    job.body = body;
    job.body_len = sizeof body;
    job.secret = secret;
    job.secret_len = secret_len;
    job.sk = sk;
    job.user = &marker;
    pthread_mutex_lock(&wake_lock);
    woke = wakeups;
    pthread_mutex_unlock(&wake_lock);
    assert_int_equal(ng_nats_publish(n, &st, "ng.pub.alice.out", &job), NG_OK);
    assert_int_equal(ng_nats_pending(n), 1);
    {
        struct results rs = {.n = 0};

        assert_int_equal(collect(n, &rs, 1, 5000), 1);
        r = rs.r[0];
    }
    assert_int_equal(r.outcome, NG_DELIVER_ACKED);
    assert_string_equal(r.error, "");
    assert_ptr_equal(r.user, &marker);
    assert_int_equal(r.retry_after_ms, -1);
    assert_true(r.seconds > 0 && r.seconds < 5);
    assert_int_equal(ng_nats_pending(n), 0);
    pthread_mutex_lock(&wake_lock);
    assert_true(wakeups > woke);
    pthread_mutex_unlock(&wake_lock);

    /* The stream the adapter made: the name and subjects given, on disk. */
    p = probe_open();
    assert_int_equal(js_GetStreamInfo(&si, p->js, "NG_PUB", NULL, &jerr), NATS_OK);
    assert_int_equal(si->Config->SubjectsLen, 1);
    assert_string_equal(si->Config->Subjects[0], "ng.pub.>");
    assert_int_equal(si->Config->Storage, js_FileStorage);
    assert_int_equal(si->State.Msgs, 1);
    jsStreamInfo_Destroy(si);

    assert_int_equal(js_GetMsg(&m, p->js, "NG_PUB", 1, NULL, &jerr), NATS_OK);
    assert_string_equal(natsMsg_GetSubject(m), "ng.pub.alice.out");
    assert_msg_header(m, "ce-specversion", "1.0");
    assert_msg_header(m, "ce-id", "msg_2mZ3Yc8Q");
    assert_msg_header(m, "webhook-id", "msg_2mZ3Yc8Q");
    assert_msg_header(m, "Nats-Msg-Id", "msg_2mZ3Yc8Q");
    assert_msg_header(m, "ce-source", "https://gw.example/tenants/t1");
    assert_msg_header(m, "ce-type", "com.example.ping");
    assert_msg_header(m, "ce-time", CE_TIME_TEXT);
    assert_msg_header(m, "ce-subject", "a%20b%22c%25d%20%C3%A9");
    assert_msg_header(m, "ce-partitionkey", "k1");
    assert_msg_header(m, "ce-traceparent", "v%0D%0Ax-evil:%201");
    assert_null(msg_header(m, "x-evil"));
    assert_msg_header(m, "content-type", "application/octet-stream; x=1");
    assert_int_equal(natsMsg_GetDataLength(m), sizeof body);
    assert_memory_equal(natsMsg_GetData(m), body, sizeof body);

    ts = msg_header(m, "webhook-timestamp");
    assert_non_null(ts);
    now = (int64_t)time(NULL);
    assert_true(llabs(strtoll(ts, NULL, 10) - now) <= 5);
    sig = msg_header(m, "webhook-signature");
    assert_non_null(sig);
    assert_memory_equal(sig, "v1,", 3);
    assert_non_null(strstr(sig, " v1a,"));
    /* Each scheme verifies on its own against the stored body; a wrong key does not. */
    k.secret = secret;
    k.secret_len = secret_len;
    assert_int_equal(ng_webhook_verify(&k, "msg_2mZ3Yc8Q", ts, sig, body, sizeof body, now, 300), NG_OK);
    k.secret = other;
    k.secret_len = sizeof other;
    assert_int_equal(ng_webhook_verify(&k, "msg_2mZ3Yc8Q", ts, sig, body, sizeof body, now, 300), NG_ERR_AUTH);
    k.secret = NULL;
    k.secret_len = 0;
    k.pk = pk;
    assert_int_equal(ng_webhook_verify(&k, "msg_2mZ3Yc8Q", ts, sig, body, sizeof body, now, 300), NG_OK);
    body[7] ^= 1;
    assert_int_equal(ng_webhook_verify(&k, "msg_2mZ3Yc8Q", ts, sig, body, sizeof body, now, 300), NG_ERR_AUTH);
    natsMsg_Destroy(m);
    m = NULL;

    /* No subject, no keys, an empty body: no such headers, nothing invented. */
    job = job_base("msg_plain");
    job.body = NULL;
    job.body_len = 0;
    job.content_type = NULL;
    r = publish_one(n, &st, "ng.pub.bob.out", &job, 5000);
    assert_int_equal(r.outcome, NG_DELIVER_ACKED);
    assert_int_equal(js_GetMsg(&m, p->js, "NG_PUB", 2, NULL, &jerr), NATS_OK);
    assert_string_equal(natsMsg_GetSubject(m), "ng.pub.bob.out");
    assert_msg_header(m, "ce-id", "msg_plain");
    assert_msg_header(m, "content-type", "application/octet-stream");
    assert_null(msg_header(m, "ce-subject"));
    assert_null(msg_header(m, "webhook-signature"));
    assert_non_null(msg_header(m, "webhook-timestamp"));
    assert_int_equal(natsMsg_GetDataLength(m), 0);
    natsMsg_Destroy(m);
    probe_close(p);
    nats_free(n);

    /* A new handle finds the stream it made before: no error, and it appends. */
    n = nats_new(0, 0);
    job.id = "msg_plain_2";
    r = publish_one(n, &st, "ng.pub.carol.out", &job, 5000);
    assert_int_equal(r.outcome, NG_DELIVER_ACKED);
    nats_free(n);
    p = probe_open();
    assert_int_equal(stream_msgs(p, "NG_PUB"), 3);
    probe_close(p);
}

/*
 * An extension whose value is empty ("values any text"): libnats 3.4.1
 * cannot parse an empty header value back (a reader takes the next line
 * for it and loses that header), so it is left out and every other header
 * arrives as sent.
 */
static void
test_publish_empty_extension(void **state)
{
    static const char *const names[] = {"ce-empty", "ce-after"};
    static const char *const values[] = {"", "z"};
    ng_nats_stream st = stream_of("NG_EMPTY", "ng.empty.>");
    ng_deliver_job job = job_base("msg_empty");
    jsErrCode jerr = 0;
    struct probe *p;
    natsMsg *m = NULL;
    ng_nats *n;

    (void)state;
    job.extra_names = names;
    job.extra_values = values;
    job.extras = 2;
    n = nats_new(0, 0);
    assert_int_equal(publish_one(n, &st, "ng.empty.a", &job, 5000).outcome, NG_DELIVER_ACKED);
    p = probe_open();
    assert_int_equal(js_GetMsg(&m, p->js, "NG_EMPTY", 1, NULL, &jerr), NATS_OK);
    {
        const char *v = NULL;

        assert_int_equal(natsMsgHeader_Get(m, "ce-empty", &v), NATS_NOT_FOUND);
    }
    assert_msg_header(m, "ce-after", "z");
    assert_msg_header(m, "webhook-id", "msg_empty");
    natsMsg_Destroy(m);
    probe_close(p);
    nats_free(n);
}

/* ng_nats.h: "job->url is not used", so a job made for NATS has none. */
static void
test_publish_url_unused(void **state)
{
    ng_nats_stream st = stream_of("NG_NOURL", "ng.nourl.>");
    ng_deliver_job job = job_base("msg_nourl");
    ng_nats *n;

    (void)state;
    job.url = NULL;
    n = nats_new(0, 0);
    assert_int_equal(publish_one(n, &st, "ng.nourl.a", &job, 5000).outcome, NG_DELIVER_ACKED);
    nats_free(n);
}

/* A retried publish (same job id) is stored once; another id is not taken for it. */
static void
test_publish_dedupe(void **state)
{
    ng_nats_stream st = stream_of("NG_DUP", "ng.dup.>");
    ng_deliver_job job = job_base("msg_dup_1");
    struct results rs = {.n = 0};
    struct probe *p;
    ng_nats *n;
    size_t i;

    (void)state;
    n = nats_new(0, 0);
    assert_int_equal(publish_one(n, &st, "ng.dup.a", &job, 5000).outcome, NG_DELIVER_ACKED);
    assert_int_equal(publish_one(n, &st, "ng.dup.a", &job, 5000).outcome, NG_DELIVER_ACKED);
    /* Queued back to back too, as a retry after a lost ack may be. */
    assert_int_equal(ng_nats_publish(n, &st, "ng.dup.a", &job), NG_OK);
    assert_int_equal(ng_nats_publish(n, &st, "ng.dup.a", &job), NG_OK);
    assert_int_equal(collect(n, &rs, 2, 5000), 2);
    for (i = 0; i < rs.n; i++)
        assert_int_equal(rs.r[i].outcome, NG_DELIVER_ACKED);
    p = probe_open();
    assert_int_equal(stream_msgs(p, "NG_DUP"), 1);
    probe_close(p);

    job.id = "msg_dup_2";
    assert_int_equal(publish_one(n, &st, "ng.dup.a", &job, 5000).outcome, NG_DELIVER_ACKED);
    nats_free(n);
    p = probe_open();
    assert_int_equal(stream_msgs(p, "NG_DUP"), 2);
    probe_close(p);
}

/*
 * The server stops answering but the connection stays up (stopped with
 * SIGSTOP): publishes go one at a time, each waits out its timeout, and
 * those queued behind are handed back at once rather than after their
 * turn, so no job outlives the deliverer's lease on it (twice the timeout).
 */
static void
test_publish_stalled(void **state)
{
    ng_nats_stream st = stream_of("NG_STALL", "ng.stall.>");
    ng_deliver_job job = job_base("msg_stall_0");
    struct results rs = {.n = 0};
    char ids[6][16];
    size_t i, timed_out = 0, waited = 0;
    int64_t start;
    ng_nats *n;

    (void)state;
    n = nats_new(400, 0);
    assert_int_equal(publish_one(n, &st, "ng.stall.a", &job, 5000).outcome, NG_DELIVER_ACKED);
    assert_int_equal(kill(srv.pid, SIGSTOP), 0);
    start = mono_ms();
    for (i = 0; i < 6; i++) {
        snprintf(ids[i], sizeof ids[i], "msg_stall_%zu", i + 1);
        job.id = ids[i];
        assert_int_equal(ng_nats_publish(n, &st, "ng.stall.a", &job), NG_OK);
    }
    assert_int_equal(collect(n, &rs, 6, 10000), 6);
    assert_int_equal(kill(srv.pid, SIGCONT), 0);
    for (i = 0; i < rs.n; i++) {
        assert_int_equal(rs.r[i].outcome, NG_DELIVER_RETRY);
        assert_true(rs.r[i].seconds < 0.8);
        timed_out += strcmp(rs.r[i].error, "no ack from JetStream in time") == 0;
        waited += strcmp(rs.r[i].error, "waited too long behind slow publishes on this connection") == 0;
    }
    assert_int_equal(timed_out + waited, 6);
    assert_true(waited >= 3);
    /* Six in turn would take 2.4 s. */
    assert_true(mono_ms() - start < 2000);
    nats_free(n);
}

/*
 * The server goes away: publishes fail at once, not after the timeout.
 * It comes back on the same port and store: publishes succeed again, and
 * what was stored before is still there.
 */
static void
test_publish_outage(void **state)
{
    ng_nats_stream st = stream_of("NG_OUT", "ng.out.>");
    ng_deliver_job job = job_base("msg_out_before");
    unsigned disconnected, connected;
    ng_deliver_result r;
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    struct probe *p;
    int64_t start, deadline;
    int not_connected = 0;
    ng_nats *n;

    (void)state;
    n = nats_new(3000, 0);
    assert_int_equal(publish_one(n, &st, "ng.out.a", &job, 5000).outcome, NG_DELIVER_ACKED);
    disconnected = log_count(&log_disconnected);
    connected = log_count(&log_connected);

    nats_server_halt(&srv);
    /* Until the client notices, a publish may fail otherwise; each fails well before the timeout. */
    job.id = "msg_out_during";
    deadline = mono_ms() + 5000;
    while (!not_connected && mono_ms() < deadline) {
        start = mono_ms();
        r = publish_one(n, &st, "ng.out.a", &job, 5000);
        assert_int_equal(r.outcome, NG_DELIVER_RETRY);
        assert_true(mono_ms() - start < 1500);
        not_connected = strcmp(r.error, "NATS not connected") == 0;
        if (!not_connected)
            sleep_ms(20);
    }
    assert_true(not_connected);
    assert_true(log_count(&log_disconnected) > disconnected);
    /* Now it is known: at once, every time. */
    start = mono_ms();
    r = publish_one(n, &st, "ng.out.a", &job, 5000);
    assert_int_equal(r.outcome, NG_DELIVER_RETRY);
    assert_string_equal(r.error, "NATS not connected");
    assert_true(mono_ms() - start < 300);
    assert_true(r.seconds < 0.3);

    assert_int_equal(nats_server_run(&srv), 0);
    job.id = "msg_out_after";
    deadline = mono_ms() + 8000;
    do {
        r = publish_one(n, &st, "ng.out.a", &job, 5000);
        if (r.outcome != NG_DELIVER_ACKED)
            sleep_ms(100);
    } while (r.outcome != NG_DELIVER_ACKED && mono_ms() < deadline);
    assert_int_equal(r.outcome, NG_DELIVER_ACKED);
    assert_true(log_count(&log_connected) > connected);
    assert_int_equal(log_count(&log_bad), 0);
    nats_free(n);

    p = probe_open();
    assert_int_equal(stream_msgs(p, "NG_OUT"), 2);
    assert_int_equal(js_GetMsg(&m, p->js, "NG_OUT", 1, NULL, &jerr), NATS_OK);
    assert_msg_header(m, "ce-id", "msg_out_before");
    natsMsg_Destroy(m);
    assert_int_equal(js_GetMsg(&m, p->js, "NG_OUT", 2, NULL, &jerr), NATS_OK);
    assert_msg_header(m, "ce-id", "msg_out_after");
    natsMsg_Destroy(m);
    probe_close(p);
}

/* ------------------------------------------------------------------ */
/* Submit                                                              */

struct seen_msg {
    char body[BODY_TEXT];
    char tenant[BODY_TEXT]; /* X-Tenant asked for as "x-tenant" */
    int other_case_ok;      /* "X-TENANT" finds it too */
    int absent_null;        /* a header not sent is NULL */
    int64_t stored_ms, at_ms;
    uint64_t deliveries;
};

struct seen {
    pthread_mutex_t lock;
    struct seen_msg m[MAX_SEEN];
    size_t n;
    unsigned slow_ms; /* how long a "slow" message's callback takes */
    int slow_done;
};

static struct seen seen_a = {.lock = PTHREAD_MUTEX_INITIALIZER}, seen_b = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Static, not on a test's stack: after a failed assertion the teardown's ng_nats_free may still run callbacks. */
static void
seen_init(struct seen *s)
{
    pthread_mutex_lock(&s->lock);
    memset(s->m, 0, sizeof s->m);
    s->n = 0;
    s->slow_ms = 0;
    s->slow_done = 0;
    pthread_mutex_unlock(&s->lock);
}

/*
 * The verdict is in the body: "ack..." ACK, "term..." TERM, "retry..."
 * RETRY in 200 ms the first time then ACK, "slow..." ACK after slow_ms.
 */
static ng_nats_verdict
on_submit(void *ctx, const ng_nats_msg *m, int64_t *retry_ms)
{
    struct seen *s = ctx;
    struct seen_msg e;
    const uint8_t *body;
    const char *v;
    size_t len;

    memset(&e, 0, sizeof e);
    body = ng_nats_msg_body(m, &len);
    snprintf(e.body, sizeof e.body, "%.*s", (int)len, (const char *)body);
    v = ng_nats_msg_header(m, "x-tenant");
    snprintf(e.tenant, sizeof e.tenant, "%s", v != NULL ? v : "");
    v = ng_nats_msg_header(m, "X-TENANT");
    e.other_case_ok = v != NULL && strcmp(v, e.tenant) == 0;
    e.absent_null = ng_nats_msg_header(m, "ce-id") == NULL;
    e.stored_ms = ng_nats_msg_stored_ms(m);
    e.deliveries = ng_nats_msg_deliveries(m);
    e.at_ms = now_ms();
    if (strncmp(e.body, "slow", 4) == 0) {
        sleep_ms(s->slow_ms);
        pthread_mutex_lock(&s->lock);
        s->slow_done = 1;
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_lock(&s->lock);
    if (s->n < MAX_SEEN)
        s->m[s->n++] = e;
    pthread_mutex_unlock(&s->lock);
    if (strncmp(e.body, "term", 4) == 0)
        return NG_NATS_TERM;
    if (strncmp(e.body, "retry", 5) == 0 && e.deliveries < 2) {
        *retry_ms = 200;
        return NG_NATS_RETRY;
    }
    return NG_NATS_ACK;
}

/* How many deliveries of body the callback has seen; *last gets the latest. */
static unsigned
seen_count(struct seen *s, const char *body, struct seen_msg *last)
{
    unsigned c = 0;
    size_t i;

    pthread_mutex_lock(&s->lock);
    for (i = 0; i < s->n; i++)
        if (strcmp(s->m[i].body, body) == 0) {
            c++;
            if (last != NULL)
                *last = s->m[i];
        }
    pthread_mutex_unlock(&s->lock);
    return c;
}

static size_t
seen_total(struct seen *s)
{
    size_t n;

    pthread_mutex_lock(&s->lock);
    n = s->n;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* Waits up to timeout_ms for body's count to reach want; the count. */
static unsigned
seen_wait(struct seen *s, const char *body, unsigned want, int64_t timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    unsigned c;

    while ((c = seen_count(s, body, NULL)) < want && mono_ms() < deadline)
        sleep_ms(10);
    return c;
}

static void
wait_consuming(ng_nats *n, const char *durable, int want, int64_t timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;

    while (ng_nats_consuming(n, durable) != want && mono_ms() < deadline)
        sleep_ms(10);
    assert_int_equal(ng_nats_consuming(n, durable), want);
}

/* Makes a stream as an operator would: their name, their limits (memory, 1000 messages). */
static void
operator_stream(const char *name, const char *subject)
{
    const char *subjects[] = {subject};
    struct probe *p = probe_open();
    jsStreamConfig cfg;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;

    jsStreamConfig_Init(&cfg);
    cfg.Name = name;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_MemoryStorage;
    cfg.MaxMsgs = 1000;
    assert_int_equal(js_AddStream(&si, p->js, &cfg, NULL, &jerr), NATS_OK);
    jsStreamInfo_Destroy(si);
    probe_close(p);
}

/* The operator made the stream under the configured name, with other limits: used as it is. */
static void
test_operator_stream_same_name(void **state)
{
    ng_nats_stream st = stream_of("NG_OPSN", "ng.opsn.>");
    ng_deliver_job job = job_base("msg_opsn_1");
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    struct probe *p;
    struct seen *s = &seen_a;
    ng_nats *n;

    (void)state;
    seen_init(s);
    operator_stream("NG_OPSN", "ng.opsn.>");
    n = nats_new(0, 0);
    assert_int_equal(publish_one(n, &st, "ng.opsn.alice.out", &job, 5000).outcome, NG_DELIVER_ACKED);
    assert_int_equal(ng_nats_consume(n, &st, "ng.opsn.alice.in", "opsn", on_submit, s), NG_OK);
    wait_consuming(n, "opsn", 1, 5000);
    p = probe_open();
    probe_publish(p, "ng.opsn.alice.in", "ack-opsn", "alice");
    assert_int_equal(seen_wait(s, "ack-opsn", 1, 5000), 1);
    assert_int_equal(js_GetStreamInfo(&si, p->js, "NG_OPSN", NULL, &jerr), NATS_OK);
    assert_int_equal(si->Config->Storage, js_MemoryStorage);
    assert_int_equal(si->Config->MaxMsgs, 1000);
    assert_int_equal(si->State.Msgs, 2);
    jsStreamInfo_Destroy(si);
    probe_close(p);
    nats_free(n);
}

/*
 * The operator made a stream of another name that takes the subjects: the
 * adapter publishes into it and consumes from it, and makes none (the
 * configured name is only what it would create).
 */
static void
test_operator_stream_other_name(void **state)
{
    ng_nats_stream st = stream_of("NG_OPS_MINE", "ng.ops.>");
    ng_deliver_job job = job_base("msg_ops_1");
    ng_deliver_result r;
    struct seen *s = &seen_a;
    struct probe *p;
    ng_nats *n;

    (void)state;
    seen_init(s);
    operator_stream("OPERATOR_OPS", "ng.ops.>");
    n = nats_new(0, 0);
    r = publish_one(n, &st, "ng.ops.alice.out", &job, 5000);
    assert_string_equal(r.error, "");
    assert_int_equal(r.outcome, NG_DELIVER_ACKED);
    assert_int_equal(ng_nats_consume(n, &st, "ng.ops.alice.in", "ops", on_submit, s), NG_OK);
    wait_consuming(n, "ops", 1, 5000);
    p = probe_open();
    probe_publish(p, "ng.ops.alice.in", "ack-ops", "alice");
    assert_int_equal(seen_wait(s, "ack-ops", 1, 5000), 1);
    assert_int_equal(stream_msgs(p, "OPERATOR_OPS"), 2);
    assert_int_equal(stream_msgs(p, "NG_OPS_MINE"), -1);
    probe_close(p);
    nats_free(n);
}

/*
 * A stream of the configured name that takes other subjects (a second
 * prefix given that name, or the operator's) is not used: the publish is
 * not acked, rather than acked by a stream that never holds the message.
 */
static void
test_stream_name_other_subjects(void **state)
{
    ng_nats_stream st = stream_of("NG_TAKEN", "ng.taken.>");
    ng_deliver_job job = job_base("msg_taken_1");
    ng_deliver_result r;
    struct probe *p;
    ng_nats *n;

    (void)state;
    operator_stream("NG_TAKEN", "ng.elsewhere.>");
    n = nats_new(0, 0);
    r = publish_one(n, &st, "ng.taken.alice.out", &job, 5000);
    assert_int_equal(r.outcome, NG_DELIVER_RETRY);
    assert_string_equal(r.error, "NATS stream not available");
    p = probe_open();
    assert_int_equal(stream_msgs(p, "NG_TAKEN"), 0);
    probe_close(p);
    nats_free(n);
}

static void
test_consume_verdicts(void **state)
{
    ng_nats_stream st = stream_of("NG_SUB", "ng.sub.>");
    struct seen *s = &seen_a, *s2 = &seen_b;
    struct seen_msg e, first;
    struct probe *p;
    int64_t t0;
    size_t i, total;
    ng_nats *n;

    (void)state;
    seen_init(s);
    seen_init(s2);
    n = nats_new(0, 0);
    assert_int_equal(ng_nats_consuming(n, "sub_alice"), 0);
    assert_int_equal(ng_nats_consume(n, &st, "ng.sub.alice.in", "sub_alice", on_submit, s), NG_OK);
    /* The same durable again while it is consumed: left as it is. */
    assert_int_equal(ng_nats_consume(n, &st, "ng.sub.alice.in", "sub_alice", on_submit, s2), NG_OK);
    wait_consuming(n, "sub_alice", 1, 5000);

    p = probe_open();
    t0 = now_ms();
    probe_publish(p, "ng.sub.alice.in", "ack-1", "alice");
    probe_publish(p, "ng.sub.alice.in", "term-1", "alice");
    probe_publish(p, "ng.sub.alice.in", "retry-1", "alice");
    /* Another subject of the stream is not this consumer's. */
    probe_publish(p, "ng.sub.bob.in", "ack-bob", "bob");
    assert_int_equal(seen_wait(s, "ack-1", 1, 5000), 1);
    assert_int_equal(seen_wait(s, "term-1", 1, 5000), 1);
    assert_int_equal(seen_wait(s, "retry-1", 2, 5000), 2);

    seen_count(s, "ack-1", &e);
    assert_string_equal(e.tenant, "alice");
    assert_true(e.other_case_ok);
    assert_true(e.absent_null);
    assert_int_equal(e.deliveries, 1);
    assert_true(e.stored_ms >= t0 - 1000 && e.stored_ms <= e.at_ms + 1000);
    seen_count(s, "term-1", &e);
    assert_int_equal(e.deliveries, 1);

    pthread_mutex_lock(&s->lock);
    memset(&first, 0, sizeof first);
    for (i = 0; i < s->n; i++)
        if (strcmp(s->m[i].body, "retry-1") == 0 && s->m[i].deliveries == 1)
            first = s->m[i];
    pthread_mutex_unlock(&s->lock);
    assert_int_equal(first.deliveries, 1);
    seen_count(s, "retry-1", &e);
    assert_int_equal(e.deliveries, 2);
    /* Not before the delay the callback asked for (less a little for clocks). */
    assert_true(e.at_ms - first.at_ms >= 150);

    /* Acked, terminated, and the retry acked the second time: none comes again. */
    sleep_ms(700);
    assert_int_equal(seen_count(s, "ack-1", NULL), 1);
    assert_int_equal(seen_count(s, "term-1", NULL), 1);
    assert_int_equal(seen_count(s, "retry-1", NULL), 2);
    assert_int_equal(seen_count(s, "ack-bob", NULL), 0);
    assert_int_equal(seen_total(s2), 0);

    /* Let go: no callback after unconsume returns, even for a message published now. */
    ng_nats_unconsume(n, "sub_alice");
    assert_int_equal(ng_nats_consuming(n, "sub_alice"), 0);
    total = seen_total(s);
    /* For UNBIND_GRACE_MS the old subscription still takes what comes and hands it back (nak): nothing of it
       reaches the old callback. */
    sleep_ms(300);
    probe_publish(p, "ng.sub.alice.in", "ack-2", "alice");
    sleep_ms(700);
    assert_int_equal(seen_total(s), total);

    /* Bound again, to another ctx: the durable kept its place, so only ack-2 comes, once (after the naks of the
       grace, as its delivery count says). */
    assert_int_equal(ng_nats_consume(n, &st, "ng.sub.alice.in", "sub_alice", on_submit, s2), NG_OK);
    wait_consuming(n, "sub_alice", 1, 5000);
    assert_int_equal(seen_wait(s2, "ack-2", 1, 5000), 1);
    seen_count(s2, "ack-2", &e);
    assert_true(e.deliveries >= 1);
    sleep_ms(300);
    assert_int_equal(seen_total(s2), 1);
    assert_int_equal(seen_total(s), total);
    probe_close(p);
    nats_free(n);
}

/* The consumer is bound again after the server restarts, and takes what is published then. */
/*
 * Let go and bound again at once (a backend's settings changed): a message
 * published in between comes promptly, not after the ack wait (the old
 * subscription, still live until the connection thread unbinds it, hands
 * it back with a nak).
 */
static void
test_unconsume_consume_prompt(void **state)
{
    ng_nats_stream st = stream_of("NG_RACE", "ng.race.>");
    struct seen *s = &seen_a;
    struct probe *p;
    ng_nats *n;

    (void)state;
    seen_init(s);
    n = nats_new(0, 0);
    assert_int_equal(ng_nats_consume(n, &st, "ng.race.in", "race", on_submit, s), NG_OK);
    wait_consuming(n, "race", 1, 5000);
    p = probe_open();
    ng_nats_unconsume(n, "race");
    probe_publish(p, "ng.race.in", "ack-race", "t");
    assert_int_equal(ng_nats_consume(n, &st, "ng.race.in", "race", on_submit, s), NG_OK);
    assert_int_equal(seen_wait(s, "ack-race", 1, 5000), 1);
    probe_close(p);
    nats_free(n);
}

static void
test_consume_restart(void **state)
{
    ng_nats_stream st = stream_of("NG_SUBR", "ng.subr.>");
    struct seen *s = &seen_a;
    struct probe *p;
    ng_nats *n;

    (void)state;
    seen_init(s);
    n = nats_new(0, 0);
    assert_int_equal(ng_nats_consume(n, &st, "ng.subr.in", "subr", on_submit, s), NG_OK);
    wait_consuming(n, "subr", 1, 5000);
    p = probe_open();
    probe_publish(p, "ng.subr.in", "ack-before", "t");
    assert_int_equal(seen_wait(s, "ack-before", 1, 5000), 1);
    probe_close(p);

    assert_int_equal(nats_server_restart(&srv), 0);
    p = probe_open();
    probe_publish(p, "ng.subr.in", "ack-after", "t");
    assert_int_equal(seen_wait(s, "ack-after", 1, 10000), 1);
    assert_int_equal(seen_count(s, "ack-before", NULL), 1);
    assert_int_equal(ng_nats_consuming(n, "subr"), 1);
    probe_close(p);
    nats_free(n);
}

/* ------------------------------------------------------------------ */
/* Arguments and teardown                                              */

static void
test_bad_arguments(void **state)
{
    char long_name[NG_NATS_NAME_MAX + 2], dead_url[64];
    ng_deliver_job job = job_base("msg_args");
    ng_nats_stream st = stream_of("NG_ARGS", "ng.args.>"), bad;
    struct results rs = {.n = 0};
    struct seen *s = &seen_a;
    ng_nats *n;
    size_t i;

    (void)state;
    seen_init(s);
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    n = nats_new(0, 2);

#define BAD_STREAM(u, nm, sj)                                                                                          \
    do {                                                                                                               \
        bad = st;                                                                                                      \
        bad.url = (u);                                                                                                 \
        bad.name = (nm);                                                                                               \
        bad.subjects = (sj);                                                                                           \
        assert_int_equal(ng_nats_publish(n, &bad, "ng.args.a", &job), NG_ERR_INVALID_ARG);                             \
        assert_int_equal(ng_nats_consume(n, &bad, "ng.args.a", "args", on_submit, s), NG_ERR_INVALID_ARG);             \
    } while (0)
    BAD_STREAM(st.url, "bad name", st.subjects);
    BAD_STREAM(st.url, "a.b", st.subjects);
    BAD_STREAM(st.url, "", st.subjects);
    BAD_STREAM(st.url, long_name, st.subjects);
    BAD_STREAM(st.url, NULL, st.subjects);
    BAD_STREAM(st.url, st.name, "ng args.>");
    BAD_STREAM(st.url, st.name, "ng.>.x");
    BAD_STREAM(st.url, st.name, "");
    BAD_STREAM(st.url, st.name, NULL);
    BAD_STREAM("http://127.0.0.1:4222", st.name, st.subjects);
    BAD_STREAM("tls://127.0.0.1:4222", st.name, st.subjects);
    BAD_STREAM("127.0.0.1:4222", st.name, st.subjects);
    BAD_STREAM(NULL, st.name, st.subjects);
#undef BAD_STREAM

    {
        static const char *const subjects[] = {"ng.args.a b", "ng.args.*", "ng.args.>", "ng.args.a.",
                                               ".ng",         "ng..args",  "",          "ng.args.\xc3\xa9"};

        for (i = 0; i < sizeof subjects / sizeof subjects[0]; i++) {
            assert_int_equal(ng_nats_publish(n, &st, subjects[i], &job), NG_ERR_INVALID_ARG);
            assert_int_equal(ng_nats_consume(n, &st, subjects[i], "args", on_submit, s), NG_ERR_INVALID_ARG);
        }
        assert_int_equal(ng_nats_subject_ok("ng.args.a_b-1"), 1);
        assert_int_equal(ng_nats_name_ok("A_b-1"), 1);
        assert_int_equal(ng_nats_name_ok(long_name), 0);
        long_name[NG_NATS_NAME_MAX] = '\0';
        assert_int_equal(ng_nats_name_ok(long_name), 1);
    }
    assert_int_equal(ng_nats_consume(n, &st, "ng.args.a", "a.b", on_submit, s), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_nats_consume(n, &st, "ng.args.a", "", on_submit, s), NG_ERR_INVALID_ARG);

    /* Jobs ng_deliver_submit would refuse. */
    job.id = "bad id";
    assert_int_equal(ng_nats_publish(n, &st, "ng.args.a", &job), NG_ERR_INVALID_ARG);
    job.id = NULL;
    assert_int_equal(ng_nats_publish(n, &st, "ng.args.a", &job), NG_ERR_INVALID_ARG);
    job = job_base("msg_args");
    job.source = NULL;
    assert_int_equal(ng_nats_publish(n, &st, "ng.args.a", &job), NG_ERR_INVALID_ARG);
    job = job_base("msg_args");
    job.secret = (const uint8_t *)long_name;
    job.secret_len = NG_WEBHOOK_SECRET_MAX + 1;
    assert_int_equal(ng_nats_publish(n, &st, "ng.args.a", &job), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_nats_pending(n), 0);

    /* max_queued counts what is not collected yet, finished or not. A server nobody runs:
       both fail at once, and still hold their places until collected. */
    job = job_base("msg_args");
    snprintf(dead_url, sizeof dead_url, "nats://127.0.0.1:%d", loopback_free_port());
    bad = st;
    bad.url = dead_url;
    assert_int_equal(ng_nats_publish(n, &bad, "ng.args.a", &job), NG_OK);
    assert_int_equal(ng_nats_publish(n, &bad, "ng.args.a", &job), NG_OK);
    assert_int_equal(ng_nats_publish(n, &st, "ng.args.a", &job), NG_ERR_TOO_LARGE);
    sleep_ms(300);
    assert_int_equal(ng_nats_publish(n, &bad, "ng.args.a", &job), NG_ERR_TOO_LARGE);
    assert_int_equal(collect(n, &rs, 2, 5000), 2);
    for (i = 0; i < rs.n; i++) {
        assert_int_equal(rs.r[i].outcome, NG_DELIVER_RETRY);
        assert_string_equal(rs.r[i].error, "NATS not connected");
    }
    assert_int_equal(ng_nats_pending(n), 0);
    assert_int_equal(publish_one(n, &st, "ng.args.a", &job, 5000).outcome, NG_DELIVER_ACKED);
    nats_free(n);
    ng_nats_free(NULL);
}

/*
 * Freed with jobs queued and not collected, a consumer bound and its
 * callback running: it waits for the callback, returns, and leaks nothing
 * (the sanitizer build checks at exit).
 */
static void
test_free_busy(void **state)
{
    ng_nats_stream st = stream_of("NG_BUSY", "ng.busy.>");
    static uint8_t body[16 * 1024];
    uint8_t secret[32], pk[32], sk[64];
    char id[32];
    ng_deliver_job job;
    struct seen *s = &seen_a;
    struct probe *p;
    int64_t start;
    int i, done;
    ng_nats *n;

    (void)state;
    seen_init(s);
    s->slow_ms = 400;
    randombytes_buf(body, sizeof body);
    randombytes_buf(secret, sizeof secret);
    crypto_sign_keypair(pk, sk);
    n = nats_new(0, 0);
    assert_int_equal(ng_nats_consume(n, &st, "ng.busy.in", "busy", on_submit, s), NG_OK);
    wait_consuming(n, "busy", 1, 5000);
    p = probe_open();
    probe_publish(p, "ng.busy.in", "slow-1", "t");
    probe_close(p);
    /* Its callback is running now, for 400 ms. */
    sleep_ms(100);

    job = job_base("x");
    job.body = body;
    job.body_len = sizeof body;
    job.secret = secret;
    job.secret_len = sizeof secret;
    job.sk = sk;
    for (i = 0; i < 300; i++) {
        snprintf(id, sizeof id, "msg_busy_%d", i);
        job.id = id;
        assert_int_equal(ng_nats_publish(n, &st, "ng.busy.out", &job), NG_OK);
    }
    start = mono_ms();
    nats_free(n);
    pthread_mutex_lock(&s->lock);
    done = s->slow_done;
    pthread_mutex_unlock(&s->lock);
    assert_true(done);
    assert_int_equal(seen_count(s, "slow-1", NULL), 1);
    assert_true(mono_ms() - start < 5000);
}

/* Two handles in one process (two gateways in a test, a reload): freeing one leaves the other working. */
/*
 * Freed right after it connected, many times: nothing of the handle is
 * touched after ng_nats_free returns (libnats calls back on its own
 * threads after natsConnection_Close). Only the sanitizer build can tell.
 */
static void
test_free_right_after_connect(void **state)
{
    ng_nats_stream st = stream_of("NG_FREE", "ng.free.>");
    ng_deliver_job job = job_base("msg_free");
    ng_nats *n;
    int i;

    (void)state;
    for (i = 0; i < 10; i++) {
        n = nats_new(0, 0);
        assert_int_equal(publish_one(n, &st, "ng.free.a", &job, 5000).outcome, NG_DELIVER_ACKED);
        nats_free(n);
    }
}

/*
 * Two handles in one process (two gateways in a test, a reload): freeing
 * one neither waits on nor breaks the other, and a handle made afterwards
 * connects (ng_nats_free leaves libnats itself alone: ng_nats_library_close
 * is for the end of the process).
 */
static void
test_two_handles(void **state)
{
    ng_nats_stream st = stream_of("NG_TWO", "ng.two.>");
    ng_deliver_job job = job_base("msg_two_1");
    ng_nats *a, *b, *c;
    int64_t start;

    (void)state;
    a = nats_new(0, 0);
    b = nats_new(0, 0);
    assert_int_equal(publish_one(a, &st, "ng.two.a", &job, 5000).outcome, NG_DELIVER_ACKED);
    job.id = "msg_two_2";
    assert_int_equal(publish_one(b, &st, "ng.two.b", &job, 5000).outcome, NG_DELIVER_ACKED);
    start = mono_ms();
    nats_free(a);
    assert_true(mono_ms() - start < 1000);
    job.id = "msg_two_3";
    assert_int_equal(publish_one(b, &st, "ng.two.b", &job, 5000).outcome, NG_DELIVER_ACKED);
    c = nats_new(0, 0);
    job.id = "msg_two_4";
    assert_int_equal(publish_one(c, &st, "ng.two.c", &job, 5000).outcome, NG_DELIVER_ACKED);
    nats_free(b);
    nats_free(c);
}

static int
start(void **state)
{
    (void)state;
    return nats_server_start(&srv);
}

static int
stop(void **state)
{
    (void)state;
    nats_server_stop(&srv);
    /* libnats's own threads and memory, so that the leak check sees none. */
    ng_nats_library_close();
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_publish_shape, teardown),
        cmocka_unit_test_teardown(test_publish_empty_extension, teardown),
        cmocka_unit_test_teardown(test_publish_url_unused, teardown),
        cmocka_unit_test_teardown(test_operator_stream_same_name, teardown),
        cmocka_unit_test_teardown(test_operator_stream_other_name, teardown),
        cmocka_unit_test_teardown(test_stream_name_other_subjects, teardown),
        cmocka_unit_test_teardown(test_publish_stalled, teardown),
        cmocka_unit_test_teardown(test_publish_dedupe, teardown),
        cmocka_unit_test_teardown(test_consume_verdicts, teardown),
        cmocka_unit_test_teardown(test_unconsume_consume_prompt, teardown),
        cmocka_unit_test_teardown(test_bad_arguments, teardown),
        cmocka_unit_test_teardown(test_free_busy, teardown),
        cmocka_unit_test_teardown(test_free_right_after_connect, teardown),
        cmocka_unit_test_teardown(test_two_handles, teardown),
        cmocka_unit_test_teardown(test_publish_outage, teardown),
        cmocka_unit_test_teardown(test_consume_restart, teardown),
    };

    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("nats", tests, start, stop);
}

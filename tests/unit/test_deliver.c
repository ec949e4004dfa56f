/*
 * The webhook delivery engine against real HTTP sinks: libmicrohttpd on
 * 127.0.0.1, one thread per connection so that a sink that sleeps holds
 * only its own connection and counts true concurrency.
 *
 * What arrives (headers, percent-encoding, body byte for byte, signatures
 * that verify and stop verifying when the body changes, key rotation), how
 * each answer maps to an outcome (2xx, 410, 5xx, Retry-After in both
 * forms, a redirect not followed), timeouts and refused connections, the
 * SSRF guard at connect time and its address table, the per-endpoint limit
 * and the isolation of a hung endpoint, 200 jobs at once, the limits and
 * bad input of submit, wakeup from another thread, backoff, and free with
 * work in flight.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <microhttpd.h>
#include <sodium.h>

#include "ng_deliver.h"
#include "ng_webhook.h"

#define CE_TIME_MS   1795514400123LL
#define CE_TIME_TEXT "2026-11-24T10:00:00.123Z"

enum {
    SEEN_HEADERS = 48,
    MAX_RESULTS = 256,
};

/* ------------------------------------------------------------------ */
/* The sink                                                            */

/* The last request a sink answered. */
struct seen {
    char path[128];
    int n;
    char name[SEEN_HEADERS][64];
    char value[SEEN_HEADERS][640];
    uint8_t *body;
    size_t body_len;
};

struct sink {
    struct MHD_Daemon *d;
    int port;
    char url[64]; /* http://127.0.0.1:PORT */
    pthread_mutex_t mu;
    /* How to answer, set by the test. */
    int status;
    char retry_after[64];
    char location[128];
    int delay_ms;
    /* What happened. */
    int hits, target_hits, active, max_active;
    unsigned gen; /* bumped by each reset: a request still sleeping from an earlier test stops */
    struct seen last;
    atomic_int stopping;
};

/* A request's body as it arrives in pieces. */
struct upload {
    uint8_t *data;
    size_t len, cap;
};

static struct sink fast, slow;

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

static enum MHD_Result
keep_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct seen *s = cls;

    (void)kind;
    if (s->n < SEEN_HEADERS) {
        snprintf(s->name[s->n], sizeof s->name[0], "%s", key);
        snprintf(s->value[s->n], sizeof s->value[0], "%s", value != NULL ? value : "");
        s->n++;
    }
    return MHD_YES;
}

static enum MHD_Result
sink_answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
            const char *upload, size_t *upload_size, void **state)
{
    static char ok[] = "ok";
    struct sink *s = cls;
    struct upload *u = *state;
    struct MHD_Response *r;
    char ra[64], loc[128];
    int status, delay, i;
    enum MHD_Result rc;
    unsigned gen;

    (void)method;
    (void)version;
    if (u == NULL) {
        u = calloc(1, sizeof *u);
        if (u == NULL)
            return MHD_NO;
        *state = u;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (u->len + *upload_size > u->cap) {
            size_t cap = u->cap > 0 ? u->cap * 2 : 65536;
            uint8_t *more;
            while (cap < u->len + *upload_size)
                cap *= 2;
            more = realloc(u->data, cap);
            if (more == NULL)
                return MHD_NO;
            u->data = more;
            u->cap = cap;
        }
        memcpy(u->data + u->len, upload, *upload_size);
        u->len += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&s->mu);
    s->hits++;
    if (strcmp(url, "/target") == 0)
        s->target_hits++;
    if (++s->active > s->max_active)
        s->max_active = s->active;
    free(s->last.body);
    memset(&s->last, 0, sizeof s->last);
    snprintf(s->last.path, sizeof s->last.path, "%s", url);
    MHD_get_connection_values(conn, MHD_HEADER_KIND, keep_header, &s->last);
    s->last.body = u->data;
    s->last.body_len = u->len;
    u->data = NULL;
    status = s->status;
    delay = s->delay_ms;
    gen = s->gen;
    memcpy(ra, s->retry_after, sizeof ra);
    memcpy(loc, s->location, sizeof loc);
    pthread_mutex_unlock(&s->mu);

    for (i = 0; i < delay / 10 && !atomic_load(&s->stopping); i++) {
        nap_ms(10);
        pthread_mutex_lock(&s->mu);
        if (s->gen != gen)
            i = delay;
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_lock(&s->mu);
    if (s->gen == gen)
        s->active--;
    pthread_mutex_unlock(&s->mu);

    r = MHD_create_response_from_buffer(sizeof ok - 1, ok, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    if (ra[0] != '\0')
        MHD_add_response_header(r, "Retry-After", ra);
    if (loc[0] != '\0')
        MHD_add_response_header(r, "Location", loc);
    rc = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

static void
sink_completed(void *cls, struct MHD_Connection *conn, void **state, enum MHD_RequestTerminationCode code)
{
    struct upload *u = *state;

    (void)cls;
    (void)conn;
    (void)code;
    if (u != NULL) {
        free(u->data);
        free(u);
        *state = NULL;
    }
}

static int
sink_start(struct sink *s)
{
    const union MHD_DaemonInfo *info;
    struct sockaddr_in sa;

    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    atomic_init(&s->stopping, 0);
    s->status = 200;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL, 0, NULL,
                            NULL, sink_answer, s, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED,
                            sink_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (s->d == NULL)
        return -1;
    info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL)
        return -1;
    s->port = info->port;
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
    return 0;
}

static void
sink_stop(struct sink *s)
{
    atomic_store(&s->stopping, 1);
    if (s->d != NULL)
        MHD_stop_daemon(s->d);
    free(s->last.body);
    pthread_mutex_destroy(&s->mu);
}

static void
sink_reset(struct sink *s)
{
    pthread_mutex_lock(&s->mu);
    s->gen++;
    s->status = 200;
    s->retry_after[0] = '\0';
    s->location[0] = '\0';
    s->delay_ms = 0;
    s->hits = s->target_hits = s->active = s->max_active = 0;
    free(s->last.body);
    memset(&s->last, 0, sizeof s->last);
    pthread_mutex_unlock(&s->mu);
}

/* A counter of s, read under its lock; tests never assert while holding it (a failure would leave it locked). */
static int
sink_read(struct sink *s, const int *field)
{
    int n;

    pthread_mutex_lock(&s->mu);
    n = *field;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static int
sink_hits(struct sink *s)
{
    return sink_read(s, &s->hits);
}

/* The first value of header name in the last request, or NULL; count gets how many there were. */
static const char *
seen_header(const struct seen *s, const char *name, int *count)
{
    const char *v = NULL;
    int i, n = 0;

    for (i = 0; i < s->n; i++) {
        if (strcasecmp(s->name[i], name) == 0) {
            if (v == NULL)
                v = s->value[i];
            n++;
        }
    }
    if (count != NULL)
        *count = n;
    return v;
}

/* A header of the last request, copied under the lock. */
static void
sink_last_header(struct sink *s, const char *name, char *out, size_t cap)
{
    const char *v;

    pthread_mutex_lock(&s->mu);
    v = seen_header(&s->last, name, NULL);
    snprintf(out, cap, "%s", v != NULL ? v : "");
    pthread_mutex_unlock(&s->mu);
}

static void
sink_delay(struct sink *s, int ms)
{
    pthread_mutex_lock(&s->mu);
    s->delay_ms = ms;
    pthread_mutex_unlock(&s->mu);
}

static void
assert_header(const struct seen *s, const char *name, const char *want)
{
    int count;
    const char *v = seen_header(s, name, &count);

    if (v == NULL)
        fail_msg("header %s missing", name);
    if (count != 1)
        fail_msg("header %s sent %d times", name, count);
    if (strcmp(v, want) != 0)
        fail_msg("header %s is \"%s\", not \"%s\"", name, v, want);
}

/* ------------------------------------------------------------------ */
/* Driving the engine                                                  */

struct collect {
    int n;
    ng_deliver_result r[MAX_RESULTS];
    uint64_t at_ms[MAX_RESULTS];
};

static void
on_result(void *ctx, const ng_deliver_result *r)
{
    struct collect *c = ctx;

    if (c->n < MAX_RESULTS) {
        c->r[c->n] = *r;
        c->at_ms[c->n] = now_ms();
    }
    c->n++;
}

static struct collect *
collect_new(void)
{
    struct collect *c = calloc(1, sizeof *c);

    assert_non_null(c);
    return c;
}

/* Runs d until want results came, or max_ms passed. */
static void
drive(ng_deliver *d, struct collect *c, int want, int max_ms)
{
    uint64_t end = now_ms() + (uint64_t)max_ms;

    while (c->n < want && now_ms() < end)
        assert_int_equal(ng_deliver_run(d, 50, on_result, c), NG_OK);
    if (c->n != want)
        fail_msg("%d results, not %d, after %d ms", c->n, want, max_ms);
}

static ng_deliver *
deliver_new(unsigned timeout_ms, unsigned per_endpoint, unsigned max_in_flight, size_t max_queued, const char *allow)
{
    const char *list[1] = {allow};
    ng_deliver_opts o;
    ng_deliver *d;

    memset(&o, 0, sizeof o);
    o.timeout_ms = timeout_ms;
    o.per_endpoint = per_endpoint;
    o.max_in_flight = max_in_flight;
    o.max_queued = max_queued;
    if (allow != NULL) {
        o.allow_private = list;
        o.allow_private_len = 1;
    }
    assert_int_equal(ng_deliver_new(&d, &o), NG_OK);
    assert_non_null(d);
    return d;
}

static ng_deliver_job
job_to(const char *url)
{
    static const uint8_t body[] = "{\"hello\":1}";
    ng_deliver_job j;

    memset(&j, 0, sizeof j);
    j.url = url;
    j.id = "evt_1";
    j.source = "https://gw.example/tenants/t1";
    j.type = "com.example.ping";
    j.content_type = "application/json";
    j.time_ms = CE_TIME_MS;
    j.body = body;
    j.body_len = sizeof body - 1;
    return j;
}

/* One job, delivered; its result. */
static ng_deliver_result
deliver_one(ng_deliver *d, const ng_deliver_job *job)
{
    struct collect *c = collect_new();
    ng_deliver_result r;

    assert_int_equal(ng_deliver_submit(d, job), NG_OK);
    drive(d, c, 1, 5000);
    r = c->r[0];
    free(c);
    return r;
}

static int
reset_sinks(void **state)
{
    (void)state;
    sink_reset(&fast);
    sink_reset(&slow);
    return 0;
}

/* ------------------------------------------------------------------ */
/* What arrives                                                        */

static void
test_request_shape(void **state)
{
    static const char *const names[] = {"ce-partitionkey", "ce-traceparent", "ce-empty"};
    static const char *const values[] = {"k1", "v\r\nx-evil: 1", ""};
    uint8_t secret[NG_WEBHOOK_SECRET_MAX], raw[32], other[32], pk[32], sk[64], *body;
    const size_t body_len = 1200 * 1024; /* over libcurl's threshold for Expect: 100-continue */
    char whsec[80], url[96];
    ng_webhook_keys k = {NULL, 0, NULL, 0, NULL};
    struct seen *s = &fast.last;
    const char *ts, *sig;
    ng_deliver_result r;
    ng_deliver_job job;
    ng_deliver *d;
    size_t secret_len;
    int64_t now;
    int count;

    (void)state;
    body = malloc(body_len);
    assert_non_null(body);
    randombytes_buf(body, body_len);
    body[0] = 0;
    body[body_len - 1] = 0;
    randombytes_buf(raw, sizeof raw);
    randombytes_buf(other, sizeof other);
    memcpy(whsec, "whsec_", 6);
    sodium_bin2base64(whsec + 6, sizeof whsec - 6, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
    assert_int_equal(ng_webhook_secret_parse(whsec, secret, sizeof secret, &secret_len), NG_OK);
    crypto_sign_keypair(pk, sk);

    d = deliver_new(5000, 0, 0, 0, "127.0.0.1");
    snprintf(url, sizeof url, "%s/hook?tenant=t1", fast.url);
    job = job_to(url);
    job.id = "msg_2mZ3Yc8Q";
    job.subject = "a b\"c%d \xc3\xa9";
    job.content_type = "application/octet-stream; x=1";
    job.extra_names = names;
    job.extra_values = values;
    job.extras = 3;
    job.body = body;
    job.body_len = body_len;
    job.secret = secret;
    job.secret_len = secret_len;
    job.sk = sk;
    r = deliver_one(d, &job);
    assert_int_equal(r.outcome, NG_DELIVER_ACKED);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.error, "");
    assert_true(r.seconds > 0);

    assert_string_equal(s->path, "/hook");
    assert_header(s, "ce-specversion", "1.0");
    assert_header(s, "ce-id", "msg_2mZ3Yc8Q");
    assert_header(s, "webhook-id", "msg_2mZ3Yc8Q");
    assert_header(s, "ce-source", "https://gw.example/tenants/t1");
    assert_header(s, "ce-type", "com.example.ping");
    assert_header(s, "ce-time", CE_TIME_TEXT);
    assert_header(s, "ce-subject", "a%20b%22c%25d%20%C3%A9");
    assert_header(s, "ce-partitionkey", "k1");
    assert_header(s, "ce-traceparent", "v%0D%0Ax-evil:%201");
    assert_header(s, "ce-empty", "");
    assert_null(seen_header(s, "x-evil", NULL));
    assert_header(s, "content-type", "application/octet-stream; x=1");
    assert_header(s, "user-agent", "noisegate/0.1");
    assert_null(seen_header(s, "expect", NULL));
    assert_int_equal(s->body_len, body_len);
    assert_memory_equal(s->body, body, body_len);

    ts = seen_header(s, "webhook-timestamp", &count);
    assert_non_null(ts);
    assert_int_equal(count, 1);
    now = (int64_t)time(NULL);
    assert_true(llabs(strtoll(ts, NULL, 10) - now) <= 5);
    sig = seen_header(s, "webhook-signature", &count);
    assert_non_null(sig);
    assert_int_equal(count, 1);
    assert_memory_equal(sig, "v1,", 3);
    assert_non_null(strstr(sig, " v1a,"));

    /* Each scheme verifies on its own; wrong keys and a changed body do not. */
    k.secret = secret;
    k.secret_len = secret_len;
    assert_int_equal(ng_webhook_verify(&k, "msg_2mZ3Yc8Q", ts, sig, s->body, s->body_len, now, 300), NG_OK);
    k.secret = other;
    k.secret_len = sizeof other;
    assert_int_equal(ng_webhook_verify(&k, "msg_2mZ3Yc8Q", ts, sig, s->body, s->body_len, now, 300), NG_ERR_AUTH);
    k.secret = NULL;
    k.secret_len = 0;
    k.pk = pk;
    assert_int_equal(ng_webhook_verify(&k, "msg_2mZ3Yc8Q", ts, sig, s->body, s->body_len, now, 300), NG_OK);
    s->body[body_len / 2] ^= 1;
    assert_int_equal(ng_webhook_verify(&k, "msg_2mZ3Yc8Q", ts, sig, s->body, s->body_len, now, 300), NG_ERR_AUTH);
    k.pk = NULL;
    k.secret = secret;
    k.secret_len = secret_len;
    assert_int_equal(ng_webhook_verify(&k, "msg_2mZ3Yc8Q", ts, sig, s->body, s->body_len, now, 300), NG_ERR_AUTH);

    /* No subject, no keys, an empty body: no such headers, nothing invented. */
    job = job_to(url);
    job.body = NULL;
    job.body_len = 0;
    job.content_type = NULL;
    job.secret = secret; /* length 0: no key, as in ng_webhook_keys */
    r = deliver_one(d, &job);
    assert_int_equal(r.outcome, NG_DELIVER_ACKED);
    assert_null(seen_header(s, "ce-subject", NULL));
    assert_null(seen_header(s, "webhook-signature", NULL));
    assert_non_null(seen_header(s, "webhook-timestamp", NULL));
    assert_header(s, "content-type", "application/octet-stream");
    assert_int_equal(s->body_len, 0);

    ng_deliver_free(d);
    sodium_memzero(secret, sizeof secret);
    free(body);
}

static void
test_rotation(void **state)
{
    uint8_t s_new[32], s_old[32], s_other[32], pk_new[32], sk_new[64], pk_old[32], sk_old[64], pk_other[32],
        sk_other[64];
    const struct seen *s = &fast.last;
    ng_webhook_keys k = {NULL, 0, NULL, 0, NULL};
    const char *ts, *sig, *p;
    ng_deliver_result r;
    ng_deliver_job job;
    ng_deliver *d;
    char url[96];
    int64_t now;
    int entries;

    (void)state;
    randombytes_buf(s_new, sizeof s_new);
    randombytes_buf(s_old, sizeof s_old);
    randombytes_buf(s_other, sizeof s_other);
    crypto_sign_keypair(pk_new, sk_new);
    crypto_sign_keypair(pk_old, sk_old);
    crypto_sign_keypair(pk_other, sk_other);
    d = deliver_new(5000, 0, 0, 0, "127.0.0.1");
    snprintf(url, sizeof url, "%s/hook", fast.url);
    job = job_to(url);
    job.secret = s_new;
    job.secret_len = sizeof s_new;
    job.secret_prev = s_old;
    job.secret_prev_len = sizeof s_old;
    job.sk = sk_new;
    job.sk_prev = sk_old;
    r = deliver_one(d, &job);
    assert_int_equal(r.outcome, NG_DELIVER_ACKED);

    ts = seen_header(s, "webhook-timestamp", NULL);
    sig = seen_header(s, "webhook-signature", NULL);
    assert_non_null(ts);
    assert_non_null(sig);
    for (entries = 1, p = sig; (p = strchr(p, ' ')) != NULL; p++)
        entries++;
    assert_int_equal(entries, 4);
    now = (int64_t)time(NULL);
#define VERIFY(want) assert_int_equal(ng_webhook_verify(&k, "evt_1", ts, sig, s->body, s->body_len, now, 300), want)
    k.secret = s_new;
    k.secret_len = 32;
    VERIFY(NG_OK);
    k.secret = s_old;
    VERIFY(NG_OK);
    k.secret = s_other;
    VERIFY(NG_ERR_AUTH);
    k.secret = NULL;
    k.secret_len = 0;
    k.pk = pk_new;
    VERIFY(NG_OK);
    k.pk = pk_old;
    VERIFY(NG_OK);
    k.pk = pk_other;
    VERIFY(NG_ERR_AUTH);
#undef VERIFY
    ng_deliver_free(d);
}

/* ------------------------------------------------------------------ */
/* Answers and failures                                                */

static ng_deliver_result
answer(ng_deliver *d, int status, const char *retry_after)
{
    char url[96];
    ng_deliver_job job;

    pthread_mutex_lock(&fast.mu);
    fast.status = status;
    snprintf(fast.retry_after, sizeof fast.retry_after, "%s", retry_after != NULL ? retry_after : "");
    pthread_mutex_unlock(&fast.mu);
    snprintf(url, sizeof url, "%s/hook", fast.url);
    job = job_to(url);
    return deliver_one(d, &job);
}

static void
test_status_outcomes(void **state)
{
    ng_deliver *d = deliver_new(5000, 0, 0, 0, "127.0.0.1");
    char date[64];
    ng_deliver_result r;
    struct tm tm;
    time_t t;

    (void)state;
    r = answer(d, 200, NULL);
    assert_int_equal(r.outcome, NG_DELIVER_ACKED);
    assert_int_equal(r.retry_after_ms, -1);
    r = answer(d, 204, NULL);
    assert_int_equal(r.outcome, NG_DELIVER_ACKED);
    assert_int_equal(r.status, 204);
    r = answer(d, 410, NULL);
    assert_int_equal(r.outcome, NG_DELIVER_GONE);
    assert_int_equal(r.status, 410);
    r = answer(d, 500, "7");
    assert_int_equal(r.outcome, NG_DELIVER_RETRY);
    assert_int_equal(r.status, 500);
    assert_string_equal(r.error, "status 500");
    assert_int_equal(r.retry_after_ms, -1); /* only 429 and 503 carry one */
    r = answer(d, 404, NULL);
    assert_int_equal(r.outcome, NG_DELIVER_RETRY);
    assert_int_equal(r.status, 404);
    r = answer(d, 429, "7");
    assert_int_equal(r.outcome, NG_DELIVER_RETRY);
    assert_int_equal(r.status, 429);
    assert_int_equal(r.retry_after_ms, 7000);
    r = answer(d, 503, "7");
    assert_int_equal(r.outcome, NG_DELIVER_RETRY);
    assert_int_equal(r.retry_after_ms, 7000);
    r = answer(d, 429, NULL);
    assert_int_equal(r.retry_after_ms, -1);
    r = answer(d, 429, "soon");
    assert_int_equal(r.retry_after_ms, -1);
    r = answer(d, 503, "999999999999");
    assert_int_equal(r.retry_after_ms, (int64_t)NG_DELIVER_RETRY_AFTER_MAX_S * 1000);

    /* The HTTP-date form, a minute ahead, and one already past. */
    t = time(NULL) + 60;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    r = answer(d, 503, date);
    assert_int_equal(r.outcome, NG_DELIVER_RETRY);
    assert_in_range(r.retry_after_ms, 57000, 60000);
    t = time(NULL) - 3600;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    r = answer(d, 429, date);
    assert_int_equal(r.retry_after_ms, 0);
    ng_deliver_free(d);
}

static void
test_redirect_not_followed(void **state)
{
    ng_deliver *d = deliver_new(5000, 0, 0, 0, "127.0.0.1");
    ng_deliver_result r;

    (void)state;
    pthread_mutex_lock(&fast.mu);
    snprintf(fast.location, sizeof fast.location, "%s/target", fast.url);
    pthread_mutex_unlock(&fast.mu);
    r = answer(d, 302, NULL);
    assert_int_equal(r.outcome, NG_DELIVER_RETRY);
    assert_int_equal(r.status, 302);
    assert_int_equal(sink_hits(&fast), 1);
    assert_int_equal(sink_read(&fast, &fast.target_hits), 0);
    ng_deliver_free(d);
}

static void
test_timeout(void **state)
{
    ng_deliver *d = deliver_new(300, 0, 0, 0, "127.0.0.1");
    ng_deliver_result r;
    ng_deliver_job job;
    char url[96];
    uint64_t t0;

    (void)state;
    sink_delay(&slow, 5000);
    snprintf(url, sizeof url, "%s/hook", slow.url);
    job = job_to(url);
    t0 = now_ms();
    r = deliver_one(d, &job);
    assert_in_range(now_ms() - t0, 280, 1500);
    assert_int_equal(r.outcome, NG_DELIVER_RETRY);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.retry_after_ms, -1);
    assert_non_null(strstr(r.error, "timed out"));
    assert_true(r.seconds >= 0.28 && r.seconds < 1.5);
    assert_int_equal(sink_hits(&slow), 1);
    ng_deliver_free(d);
}

static void
test_connection_refused(void **state)
{
    ng_deliver *d = deliver_new(5000, 0, 0, 0, "127.0.0.1");
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    ng_deliver_result r;
    ng_deliver_job job;
    char url[96];
    uint64_t t0;
    int fd;

    (void)state;
    /* Bound and not listening: a port nothing else can take while the test runs, and that refuses. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", ntohs(sa.sin_port));
    job = job_to(url);
    t0 = now_ms();
    r = deliver_one(d, &job);
    assert_true(now_ms() - t0 < 2000);
    assert_int_equal(r.outcome, NG_DELIVER_RETRY);
    assert_int_equal(r.status, 0);
    assert_true(r.error[0] != '\0');
    assert_null(strchr(r.error, '\n'));
    close(fd);
    ng_deliver_free(d);
}

/* ------------------------------------------------------------------ */
/* The SSRF guard                                                      */

static void
test_ssrf_guard(void **state)
{
    static const char *const bad_allow[] = {"127.0.0.1", "localhost"};
    ng_deliver_opts o;
    ng_deliver_result r;
    ng_deliver_job job;
    ng_deliver *d;
    char url[96];

    (void)state;
    snprintf(url, sizeof url, "%s/hook", fast.url);
    job = job_to(url);

    d = deliver_new(5000, 0, 0, 0, NULL);
    r = deliver_one(d, &job);
    assert_int_equal(r.outcome, NG_DELIVER_REFUSED);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.error, "address 127.0.0.1 not allowed");
    /* A name is checked on the address it resolves to. */
    snprintf(url, sizeof url, "http://localhost:%d/hook", fast.port);
    r = deliver_one(d, &job);
    assert_int_equal(r.outcome, NG_DELIVER_REFUSED);
    assert_non_null(strstr(r.error, "not allowed"));
    assert_int_equal(sink_hits(&fast), 0);
    ng_deliver_free(d);

    d = deliver_new(5000, 0, 0, 0, "10.0.0.0/8");
    snprintf(url, sizeof url, "%s/hook", fast.url);
    r = deliver_one(d, &job);
    assert_int_equal(r.outcome, NG_DELIVER_REFUSED);
    assert_int_equal(sink_hits(&fast), 0);
    ng_deliver_free(d);

    d = deliver_new(5000, 0, 0, 0, "127.0.0.1");
    r = deliver_one(d, &job);
    assert_int_equal(r.outcome, NG_DELIVER_ACKED);
    assert_int_equal(sink_hits(&fast), 1);
    ng_deliver_free(d);

    d = deliver_new(5000, 0, 0, 0, "127.0.0.0/8");
    r = deliver_one(d, &job);
    assert_int_equal(r.outcome, NG_DELIVER_ACKED);
    assert_int_equal(sink_hits(&fast), 2);
    ng_deliver_free(d);

    /* A proxy from the environment would connect where the guard never looks: it is ignored. */
    setenv("http_proxy", "http://127.0.0.1:1", 1);
    setenv("HTTP_PROXY", "http://127.0.0.1:1", 1);
    setenv("ALL_PROXY", "http://127.0.0.1:1", 1);
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    d = deliver_new(5000, 0, 0, 0, "127.0.0.1");
    r = deliver_one(d, &job);
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("ALL_PROXY");
    assert_int_equal(r.outcome, NG_DELIVER_ACKED);
    assert_int_equal(sink_hits(&fast), 3);
    ng_deliver_free(d);

    /* A typo in the allow list is a configuration error, not a silent "allow nothing". */
    memset(&o, 0, sizeof o);
    o.allow_private = bad_allow;
    o.allow_private_len = 2;
    d = (ng_deliver *)(uintptr_t)1; /* to see *out cleared */
    assert_int_equal(ng_deliver_new(&d, &o), NG_ERR_INVALID_ARG);
    assert_null(d);
}

static void
test_address_table(void **state)
{
    static const char *const blocked[] = {
        "127.0.0.1", "127.255.255.254", "10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.255", "192.168.0.1",
        "192.168.255.255", "169.254.169.254", "169.254.0.1", "100.64.0.1", "100.127.255.255", "0.0.0.0", "0.1.2.3",
        "224.0.0.1", "239.255.255.255", "240.0.0.1", "255.255.255.255", "::1", "::", "fc00::1", "fdff:ffff::1",
        "fe80::1", "febf:ffff::1", "fec0::1", "ff02::1", "ff0e::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1",
        "::ffff:169.254.169.254", "::FFFF:192.168.1.1", "::10.0.0.1", "::127.0.0.1", "64:ff9b::10.0.0.1",
        "64:ff9b::7f00:1", "2002:a00:1::", "2002:7f00:1::1",
        /* Not IP literals: blocked, whatever they might mean to a resolver. */
        "", "localhost", "10.0.0", "10.0.0.256", "127.1", "0x7f000001", "2130706433", "010.0.0.1", " 10.0.0.1",
        "10.0.0.1 ", "fe80::1%eth0", "1::2::3", "::ffff:10.0.0.1x", "[::1]", "10.0.0.1/32", NULL};
    static const char *const open[] = {"8.8.8.8",
                                       "1.1.1.1",
                                       "11.0.0.1",
                                       "9.255.255.255",
                                       "172.15.255.255",
                                       "172.32.0.0",
                                       "192.167.255.255",
                                       "192.169.0.0",
                                       "169.253.255.255",
                                       "169.255.0.0",
                                       "100.63.255.255",
                                       "100.128.0.0",
                                       "126.255.255.255",
                                       "128.0.0.0",
                                       "223.255.255.255",
                                       "1.0.0.0",
                                       "2001:4860:4860::8888",
                                       "2606:4700::1111",
                                       "fbff::1",
                                       "fe7f::1",
                                       "::ffff:8.8.8.8",
                                       "::8.8.8.8",
                                       "64:ff9b::8.8.8.8",
                                       "2002:808:808::",
                                       NULL};
    static const char *const lo[] = {"127.0.0.1"};
    static const char *const net8[] = {"10.0.0.0/8"};
    static const char *const net16[] = {"10.0.0.0/16", "fd00::/8"};
    static const char *const odd[] = {"10.0.0.1/", "10.0.0.0/33", "fd00::/129", "bogus", "", "10.0.0.1/3x"};
    static const char *const all[] = {"0.0.0.0/0", "::/0"};
    static const char *const mapped[] = {"::ffff:10.0.0.0/104"};
    static const char *const ll[] = {"fe80::/10"};
    int i;

    (void)state;
    for (i = 0; blocked[i] != NULL; i++)
        if (!ng_deliver_address_blocked(blocked[i], NULL, 0))
            fail_msg("\"%s\" not blocked", blocked[i]);
    for (i = 0; open[i] != NULL; i++)
        if (ng_deliver_address_blocked(open[i], NULL, 0))
            fail_msg("\"%s\" blocked", open[i]);
    assert_true(ng_deliver_address_blocked(NULL, NULL, 0));

    assert_false(ng_deliver_address_blocked("127.0.0.1", lo, 1));
    assert_false(ng_deliver_address_blocked("::ffff:127.0.0.1", lo, 1));
    assert_true(ng_deliver_address_blocked("127.0.0.2", lo, 1));
    assert_true(ng_deliver_address_blocked("::1", lo, 1));
    assert_false(ng_deliver_address_blocked("10.200.3.4", net8, 1));
    assert_true(ng_deliver_address_blocked("192.168.1.1", net8, 1));
    assert_false(ng_deliver_address_blocked("10.0.255.255", net16, 2));
    assert_true(ng_deliver_address_blocked("10.1.0.0", net16, 2));
    assert_false(ng_deliver_address_blocked("fd00::5", net16, 2));
    assert_true(ng_deliver_address_blocked("fc00::5", net16, 2));
    assert_true(ng_deliver_address_blocked("10.0.0.1", odd, 6));
    assert_true(ng_deliver_address_blocked("fd00::1", odd, 6));
    assert_false(ng_deliver_address_blocked("127.0.0.1", all, 2));
    assert_false(ng_deliver_address_blocked("fe80::1", all, 2));
    assert_false(ng_deliver_address_blocked("10.9.9.9", mapped, 1));
    assert_false(ng_deliver_address_blocked("fe80::abcd", ll, 1));
    assert_true(ng_deliver_address_blocked("fec0::1", ll, 1));
    /* An allow list does not make a malformed address acceptable. */
    assert_true(ng_deliver_address_blocked("localhost", all, 2));
}

/* ------------------------------------------------------------------ */
/* Concurrency                                                         */

static void
test_per_endpoint_limit(void **state)
{
    ng_deliver *d = deliver_new(5000, 2, 64, 0, "127.0.0.1");
    struct collect *c = collect_new();
    ng_deliver_job job;
    char url[96];
    int i;

    (void)state;
    sink_delay(&fast, 100);
    snprintf(url, sizeof url, "%s/hook", fast.url);
    job = job_to(url);
    for (i = 0; i < 10; i++)
        assert_int_equal(ng_deliver_submit(d, &job), NG_OK);
    assert_int_equal(ng_deliver_pending(d), 10);
    drive(d, c, 10, 5000);
    for (i = 0; i < 10; i++)
        assert_int_equal(c->r[i].outcome, NG_DELIVER_ACKED);
    /* Exactly 2: fewer would mean the jobs ran one by one and the test proved nothing. */
    assert_int_equal(sink_read(&fast, &fast.max_active), 2);
    assert_int_equal(sink_hits(&fast), 10);
    assert_int_equal(ng_deliver_pending(d), 0);
    ng_deliver_free(d);

    /* The total limit holds when the endpoint's own would allow more. */
    sink_reset(&fast);
    sink_delay(&fast, 100);
    d = deliver_new(5000, 8, 3, 0, "127.0.0.1");
    c->n = 0;
    for (i = 0; i < 9; i++)
        assert_int_equal(ng_deliver_submit(d, &job), NG_OK);
    drive(d, c, 9, 5000);
    for (i = 0; i < 9; i++)
        assert_int_equal(c->r[i].outcome, NG_DELIVER_ACKED);
    assert_int_equal(sink_read(&fast, &fast.max_active), 3);
    free(c);
    ng_deliver_free(d);
}

static void
test_slow_endpoint_isolated(void **state)
{
    /* Two slots of four for the hung endpoint, however many of its jobs wait. */
    ng_deliver *d = deliver_new(1000, 2, 4, 0, "127.0.0.1");
    struct collect *c = collect_new();
    int tag_fast, tag_slow, n_fast = 0, n_slow = 0, i;
    char url_fast[96], url_slow[96], ts[24];
    uint64_t t0, last_fast = 0;
    ng_deliver_job job;
    time_t submitted;

    (void)state;
    sink_delay(&slow, 5000);
    snprintf(url_fast, sizeof url_fast, "%s/hook", fast.url);
    snprintf(url_slow, sizeof url_slow, "%s/hook", slow.url);
    t0 = now_ms();
    submitted = time(NULL);
    job = job_to(url_slow);
    job.user = &tag_slow;
    for (i = 0; i < 4; i++)
        assert_int_equal(ng_deliver_submit(d, &job), NG_OK);
    job = job_to(url_fast);
    job.user = &tag_fast;
    for (i = 0; i < 20; i++)
        assert_int_equal(ng_deliver_submit(d, &job), NG_OK);
    drive(d, c, 24, 5000);
    for (i = 0; i < c->n; i++) {
        if (c->r[i].user == &tag_fast) {
            assert_int_equal(c->r[i].outcome, NG_DELIVER_ACKED);
            last_fast = c->at_ms[i];
            n_fast++;
            /* Every fast job before the first slow one has timed out. */
            assert_int_equal(n_slow, 0);
        } else {
            assert_ptr_equal(c->r[i].user, &tag_slow);
            assert_int_equal(c->r[i].outcome, NG_DELIVER_RETRY);
            assert_int_equal(c->r[i].status, 0);
            n_slow++;
        }
    }
    assert_int_equal(n_fast, 20);
    assert_int_equal(n_slow, 4);
    if (last_fast - t0 > 600)
        fail_msg("the fast endpoint's jobs took %llu ms next to a hung one", (unsigned long long)(last_fast - t0));
    /* The slow FIFO ran two at a time: two timeouts back to back. */
    assert_true(c->at_ms[23] - t0 >= 1900);
    /* The last two waited a timeout (>= 1 s) in the FIFO: signed when they started, not when submitted. */
    sink_last_header(&slow, "webhook-timestamp", ts, sizeof ts);
    assert_true(strtoll(ts, NULL, 10) >= (long long)submitted + 1);
    free(c);
    ng_deliver_free(d);
}

static void
test_many_in_flight(void **state)
{
    ng_deliver *d = deliver_new(10000, 32, 64, 0, "127.0.0.1");
    struct collect *c = collect_new();
    static int users[200], seen_count[200];
    ng_deliver_job job;
    char url[96];
    int i;

    (void)state;
    snprintf(url, sizeof url, "%s/hook", fast.url);
    job = job_to(url);
    memset(seen_count, 0, sizeof seen_count);
    for (i = 0; i < 200; i++) {
        job.user = &users[i];
        assert_int_equal(ng_deliver_submit(d, &job), NG_OK);
    }
    assert_int_equal(ng_deliver_pending(d), 200);
    drive(d, c, 200, 10000);
    for (i = 0; i < 200; i++) {
        int *u = c->r[i].user;
        assert_int_equal(c->r[i].outcome, NG_DELIVER_ACKED);
        assert_true(u >= users && u < users + 200);
        seen_count[u - users]++;
    }
    for (i = 0; i < 200; i++)
        if (seen_count[i] != 1)
            fail_msg("job %d reported %d times", i, seen_count[i]);
    assert_int_equal(sink_hits(&fast), 200);
    assert_int_equal(ng_deliver_pending(d), 0);
    /* Nothing more comes. */
    assert_int_equal(ng_deliver_run(d, 0, on_result, c), NG_OK);
    assert_int_equal(c->n, 200);
    free(c);
    ng_deliver_free(d);
}

/* ------------------------------------------------------------------ */
/* Limits and bad input                                                */

static void
test_limits_and_bad_input(void **state)
{
    static const char *const bad_urls[] = {"not a url",          "ftp://127.0.0.1/x",      "http://",
                                           "file:///etc/passwd", "gopher://127.0.0.1:70/", "http://127.0.0.1:99999/",
                                           "//127.0.0.1/x",      "http://127.0.0.1/a b"};
    static const char *const good_name[] = {"ce-ok"}, *const good_value[] = {"x"};
    static const char *const bad_names[] = {"x-foo", "ce-", "ce-bad name", "ce-id", "CE-Source", "ce-a:b", "ce-a\r"};
    uint8_t key[65] = {0};
    ng_deliver *d = deliver_new(5000, 0, 0, 3, "127.0.0.1");
    struct collect *c = collect_new();
    char url[96], *long_url;
    ng_deliver_job job, bad;
    size_t i;

    (void)state;
    snprintf(url, sizeof url, "%s/hook", fast.url);
    job = job_to(url);
    for (i = 0; i < 3; i++)
        assert_int_equal(ng_deliver_submit(d, &job), NG_OK);
    assert_int_equal(ng_deliver_submit(d, &job), NG_ERR_TOO_LARGE);
    assert_int_equal(ng_deliver_pending(d), 3);
    drive(d, c, 3, 5000);
    assert_int_equal(ng_deliver_pending(d), 0);
    assert_int_equal(ng_deliver_submit(d, &job), NG_OK);
    drive(d, c, 4, 5000);
    assert_int_equal(sink_hits(&fast), 4);

    /* Refused, reported by run, never sent. */
    for (i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        bad = job;
        bad.url = bad_urls[i];
        c->n = 0;
        assert_int_equal(ng_deliver_submit(d, &bad), NG_OK);
        drive(d, c, 1, 1000);
        if (c->r[0].outcome != NG_DELIVER_REFUSED)
            fail_msg("URL \"%s\" not refused (outcome %d, %s)", bad_urls[i], c->r[0].outcome, c->r[0].error);
        assert_int_equal(c->r[0].status, 0);
        assert_true(c->r[0].seconds == 0);
        assert_null(strstr(c->r[0].error, bad_urls[i]));
    }
    c->n = 0;
    bad.url = "ftp://127.0.0.1/x";
    assert_int_equal(ng_deliver_submit(d, &bad), NG_OK);
    drive(d, c, 1, 1000);
    assert_string_equal(c->r[0].error, "scheme not http or https");
    long_url = malloc(NG_DELIVER_URL_MAX + 100);
    assert_non_null(long_url);
    memset(long_url, 'a', NG_DELIVER_URL_MAX + 99);
    memcpy(long_url, "http://127.0.0.1/", 17);
    long_url[NG_DELIVER_URL_MAX + 99] = '\0';
    bad.url = long_url;
    c->n = 0;
    assert_int_equal(ng_deliver_submit(d, &bad), NG_OK);
    drive(d, c, 1, 1000);
    assert_int_equal(c->r[0].outcome, NG_DELIVER_REFUSED);
    free(long_url);
    assert_int_equal(sink_hits(&fast), 4);

    /* Contract violations: refused at submit, nothing queued. */
#define INVALID(field, value)                                                                                          \
    do {                                                                                                               \
        bad = job;                                                                                                     \
        bad.field = value;                                                                                             \
        assert_int_equal(ng_deliver_submit(d, &bad), NG_ERR_INVALID_ARG);                                              \
    } while (0)
    INVALID(url, NULL);
    INVALID(id, NULL);
    INVALID(id, "a.b");
    INVALID(id, "");
    INVALID(source, NULL);
    INVALID(source, "");
    INVALID(type, NULL);
    INVALID(content_type, "text/plain\r\nx-evil: 1");
    INVALID(content_type, "");
    INVALID(time_ms, -1);
    INVALID(time_ms, INT64_MAX);
    INVALID(body, NULL);
    INVALID(extras, NG_DELIVER_MAX_EXTRAS + 1);
    bad = job;
    bad.secret = key;
    bad.secret_len = sizeof key; /* over NG_WEBHOOK_SECRET_MAX */
    assert_int_equal(ng_deliver_submit(d, &bad), NG_ERR_INVALID_ARG);
    bad.secret_len = 0;
    bad.secret_prev = key;
    bad.secret_prev_len = sizeof key;
    assert_int_equal(ng_deliver_submit(d, &bad), NG_ERR_INVALID_ARG);
    bad = job;
    bad.extra_values = good_value;
    bad.extras = 1;
    for (i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        bad.extra_names = &bad_names[i];
        if (ng_deliver_submit(d, &bad) != NG_ERR_INVALID_ARG)
            fail_msg("extension name \"%s\" accepted", bad_names[i]);
    }
    bad.extra_names = good_name;
    assert_int_equal(ng_deliver_submit(d, &bad), NG_OK);
#undef INVALID
    assert_int_equal(ng_deliver_pending(d), 1);
    c->n = 0;
    drive(d, c, 1, 5000);
    assert_int_equal(c->r[0].outcome, NG_DELIVER_ACKED);
    free(c);
    ng_deliver_free(d);
}

struct reentry {
    ng_deliver *d;
    ng_err inner;
    int calls;
};

static void
on_result_reenter(void *ctx, const ng_deliver_result *r)
{
    struct reentry *re = ctx;

    (void)r;
    re->calls++;
    re->inner = ng_deliver_run(re->d, 0, on_result_reenter, re);
}

/* A run from inside a callback is refused rather than re-entered. */
static void
test_callback_reentry(void **state)
{
    struct reentry re = {NULL, NG_OK, 0};
    ng_deliver_job job = job_to("ftp://127.0.0.1/");

    (void)state;
    re.d = deliver_new(5000, 0, 0, 0, NULL);
    assert_int_equal(ng_deliver_submit(re.d, &job), NG_OK);
    assert_int_equal(ng_deliver_run(re.d, 1000, on_result_reenter, &re), NG_OK);
    assert_int_equal(re.calls, 1);
    assert_int_equal(re.inner, NG_ERR_INVALID_ARG);
    ng_deliver_free(re.d);
}

/* ------------------------------------------------------------------ */
/* Wakeup, backoff, free                                               */

static void *
wake_later(void *arg)
{
    nap_ms(150);
    ng_deliver_wakeup(arg);
    return NULL;
}

static void
test_wakeup(void **state)
{
    ng_deliver *d = deliver_new(0, 0, 0, 0, NULL);
    struct collect *c = collect_new();
    pthread_t t;
    uint64_t t0, took;

    (void)state;
    /* Without a wakeup an idle run waits out its timeout: otherwise the test below proves nothing. */
    t0 = now_ms();
    assert_int_equal(ng_deliver_run(d, 200, on_result, c), NG_OK);
    assert_true(now_ms() - t0 >= 190);

    t0 = now_ms();
    assert_int_equal(pthread_create(&t, NULL, wake_later, d), 0);
    assert_int_equal(ng_deliver_run(d, 5000, on_result, c), NG_OK);
    took = now_ms() - t0;
    assert_int_equal(pthread_join(t, NULL), 0);
    if (took < 140 || took > 2000)
        fail_msg("run returned after %llu ms, woken at 150", (unsigned long long)took);
    /* A wakeup before the run: it returns at once. */
    ng_deliver_wakeup(d);
    t0 = now_ms();
    assert_int_equal(ng_deliver_run(d, 5000, on_result, c), NG_OK);
    assert_true(now_ms() - t0 < 1000);
    assert_int_equal(c->n, 0);
    free(c);
    ng_deliver_free(d);
}

static void
test_backoff(void **state)
{
    static const int schedule[] = {5, 300, 1800};
    static const int odd[] = {-5, 0, 2147483647};
    uint32_t i, r;

    (void)state;
    assert_int_equal(ng_deliver_backoff_ms(schedule, 3, 0, 0), 4000);
    assert_int_equal(ng_deliver_backoff_ms(schedule, 3, 0, UINT32_MAX), 6000);
    assert_in_range(ng_deliver_backoff_ms(schedule, 3, 0, UINT32_MAX / 2), 4999, 5001);
    for (i = 0; i < 1000; i++) {
        r = randombytes_random();
        assert_in_range(ng_deliver_backoff_ms(schedule, 3, 0, r), 4000, 6000);
        assert_in_range(ng_deliver_backoff_ms(schedule, 3, 1, r), 240000, 360000);
        assert_in_range(ng_deliver_backoff_ms(schedule, 3, 7, r), 1440000, 2160000);
        assert_in_range(ng_deliver_backoff_ms(schedule, 3, UINT32_MAX, r), 1440000, 2160000);
    }
    assert_int_equal(ng_deliver_backoff_ms(schedule, 3, 7, 0), 1440000);
    assert_int_equal(ng_deliver_backoff_ms(schedule, 3, 7, UINT32_MAX), 2160000);
    assert_int_equal(ng_deliver_backoff_ms(schedule, 0, 0, 12345), 0);
    assert_int_equal(ng_deliver_backoff_ms(NULL, 0, 3, 12345), 0);
    assert_int_equal(ng_deliver_backoff_ms(odd, 3, 0, UINT32_MAX), 0);
    assert_int_equal(ng_deliver_backoff_ms(odd, 3, 1, UINT32_MAX), 0);
    assert_true(ng_deliver_backoff_ms(odd, 3, 2, UINT32_MAX) == (int64_t)2147483647 * 1200);
}

static void
test_free_in_flight(void **state)
{
    ng_deliver *d = deliver_new(10000, 1, 0, 0, "127.0.0.1");
    struct collect *c = collect_new();
    uint8_t secret[32], pk[32], sk[64];
    ng_deliver_job job;
    char url[96];
    uint64_t t0;
    int i;

    (void)state;
    randombytes_buf(secret, sizeof secret);
    crypto_sign_keypair(pk, sk);
    sink_delay(&slow, 5000);
    snprintf(url, sizeof url, "%s/hook", slow.url);
    job = job_to(url);
    job.secret = secret;
    job.secret_len = sizeof secret;
    job.sk = sk;
    for (i = 0; i < 3; i++)
        assert_int_equal(ng_deliver_submit(d, &job), NG_OK);
    assert_int_equal(ng_deliver_run(d, 200, on_result, c), NG_OK);
    assert_int_equal(sink_hits(&slow), 1);
    /* One in flight, two waiting, one finished and not reported: all dropped, quickly, without a callback. */
    job.url = "ftp://127.0.0.1/";
    assert_int_equal(ng_deliver_submit(d, &job), NG_OK);
    assert_int_equal(ng_deliver_pending(d), 4);
    t0 = now_ms();
    ng_deliver_free(d);
    assert_true(now_ms() - t0 < 1000);
    assert_int_equal(c->n, 0);
    ng_deliver_free(NULL);
    free(c);
}

static int
group_setup(void **state)
{
    (void)state;
    if (sodium_init() < 0 || sink_start(&fast) != 0 || sink_start(&slow) != 0)
        return -1;
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    sink_stop(&fast);
    sink_stop(&slow);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_request_shape, reset_sinks),
        cmocka_unit_test_setup(test_rotation, reset_sinks),
        cmocka_unit_test_setup(test_status_outcomes, reset_sinks),
        cmocka_unit_test_setup(test_redirect_not_followed, reset_sinks),
        cmocka_unit_test_setup(test_timeout, reset_sinks),
        cmocka_unit_test_setup(test_connection_refused, reset_sinks),
        cmocka_unit_test_setup(test_ssrf_guard, reset_sinks),
        cmocka_unit_test(test_address_table),
        cmocka_unit_test_setup(test_per_endpoint_limit, reset_sinks),
        cmocka_unit_test_setup(test_slow_endpoint_isolated, reset_sinks),
        cmocka_unit_test_setup(test_many_in_flight, reset_sinks),
        cmocka_unit_test_setup(test_limits_and_bad_input, reset_sinks),
        cmocka_unit_test(test_callback_reentry),
        cmocka_unit_test(test_wakeup),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test_setup(test_free_in_flight, reset_sinks),
    };

    return cmocka_run_group_tests_name("webhook delivery", tests, group_setup, group_teardown);
}

/*
 * End to end: two real gateways (NG_BIN), "a" with tenant alice and "b"
 * with tenants bob (X, K), bob2, bobn (--allow-anonymous: also N) and
 * bobpsk (--psk --allow-anonymous: Xpsk1, Kpsk0, Npsk0), each gateway with
 * its own data_dir, vault and embedded Redis on its own loopback port. The
 * tenants exchanged connection parameters with the CLI; alice's backend
 * posts signed messages to gateway a, gateway b polls alice's outboxes and
 * delivers to the recipients' backends: sinks in this file (libmicrohttpd
 * on 127.0.0.1) that record every request and answer as each test tells
 * them (a status N times, or hang).
 *
 * Webhooks are checked the way a backend would check them, with a
 * Standard Webhooks verifier written here (HMAC-SHA256 under the whsec_
 * secret, Ed25519 under the tenant's published signing key), not the
 * gateway's own code, so that a bug shared by signer and verifier shows.
 *
 * Beyond the happy path: retries on the schedule and after Retry-After,
 * dead letters and their replay (attempts counted afresh), a 410 that
 * disables the backend until an operator enables it, a message that
 * expires between retries, gateway b killed with an attempt in flight
 * (its orphaned redis-server, the lease, a message sent while it was down)
 * and SIGTERM with an attempt in flight.
 *
 * The tests run in order on the same two gateways. A ledger records every
 * message the gateways accepted and, once its test has settled it, how
 * many attempts and how many 2xx answers it must have had; after both
 * gateways stopped, every sink is compared with the ledger, which catches
 * a late duplicate, an attempt past max_attempts, a delivery after expiry
 * and a message at the wrong tenant's backend, whichever test sent it.
 * NG_KEEP=1 keeps the temporary directory (configurations, data, logs).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/socket.h>

#include "cli_harness.h"

#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <sodium.h>

#include "ng_webhook.h"

enum {
    /* Generous: the binary may be an ASan build on a loaded 2-core machine. */
    HTTP_TIMEOUT_MS = 20000,
    START_TIMEOUT_MS = 30000,
    STOP_TIMEOUT_MS = 20000,
    DELIVERY_WAIT_MS = 20000,
    /* The configuration both gateways share (see write_config). */
    DELIVERY_TIMEOUT_MS = 500,
    MAX_ATTEMPTS = 3,
    TTL_S = 600,
    /* The claim lease of ng_deliverer.c: 2 * delivery.timeout_ms + 10 s. */
    LEASE_MS = 2 * DELIVERY_TIMEOUT_MS + 10000,
    /* How late a due retry may start: the deliverer's idle claim round. */
    CLAIM_IDLE_MS = 1000,
    ID_HEX = 32,
    MAX_HITS = 1024,
    MAX_HEADERS = 48,
    MAX_RULES = 32,
    MAX_SEQ = 8,
    MAX_SENT = 512,
    /* A sink's answer for a request that must hang until released. */
    HANG = -1,
};

/* delivery.retry_schedule_s; the third entry is long enough to outlive the ttl of test_expiry. */
static const int schedule_s[] = {1, 1, 4};

/* ---- time ---- */

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static uint64_t
wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the sinks: a tenant's backend ---- */

typedef struct hit {
    char path[128];
    int nh;
    char *name[MAX_HEADERS], *value[MAX_HEADERS];
    uint8_t *body;
    size_t body_len;
    char wid[NG_WEBHOOK_ID_MAX + 1]; /* webhook-id as received */
    char subject[256];               /* ce-subject, percent-decoded */
    long t_ms;                       /* monotonic arrival */
    uint64_t wall;                   /* wall-clock arrival, ms */
    int status;                      /* the answer; HANG for one that never got one the gateway could read */
} hit;

/* How to answer the requests whose ce-subject is subject: seq in order, then `then`. */
typedef struct rule {
    char subject[64];
    int seq[MAX_SEQ];
    int nseq, used, then;
    char retry_after[16]; /* sent with a 429 or 503 when not empty */
} rule;

typedef struct sink {
    const char *name;
    struct MHD_Daemon *d;
    char url[96];
    pthread_mutex_t mu;
    rule rules[MAX_RULES];
    int nrules;
    int released; /* hanging requests may answer */
    int hanging;
    hit *hits[MAX_HITS];
    int nhits, dropped;
    atomic_int stopping;
} sink;

/* A request's body as it arrives in pieces. */
struct upload {
    uint8_t *data;
    size_t len, cap;
};

static int
unhex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The CloudEvents HTTP binding percent-encodes attribute values; out gets the text as the sender gave it. */
static void
pct_decode(char *out, size_t cap, const char *in)
{
    size_t o = 0;

    while (*in != '\0' && o + 1 < cap) {
        if (in[0] == '%' && unhex(in[1]) >= 0 && unhex(in[2]) >= 0) {
            out[o++] = (char)(unhex(in[1]) * 16 + unhex(in[2]));
            in += 3;
        } else {
            out[o++] = *in++;
        }
    }
    out[o] = '\0';
}

static enum MHD_Result
keep_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    hit *h = cls;

    (void)kind;
    if (h->nh < MAX_HEADERS) {
        h->name[h->nh] = strdup(key);
        h->value[h->nh] = strdup(value != NULL ? value : "");
        h->nh++;
    }
    return MHD_YES;
}

/* The first value of a header of h, or NULL; count (if given) gets how many there were. */
static const char *
hit_header(const hit *h, const char *name, int *count)
{
    const char *v = NULL;
    int i, n = 0;

    for (i = 0; i < h->nh; i++) {
        if (h->name[i] != NULL && strcasecmp(h->name[i], name) == 0) {
            if (v == NULL)
                v = h->value[i];
            n++;
        }
    }
    if (count != NULL)
        *count = n;
    return v;
}

static void
hit_free(hit *h)
{
    int i;

    for (i = 0; i < h->nh; i++) {
        free(h->name[i]);
        free(h->value[i]);
    }
    free(h->body);
    free(h);
}

/* Called under the sink's lock. */
static int
decide(sink *s, const char *subject, char retry_after[16])
{
    int i;

    retry_after[0] = '\0';
    for (i = 0; i < s->nrules; i++) {
        rule *r = &s->rules[i];

        if (strcmp(r->subject, subject) == 0) {
            memcpy(retry_after, r->retry_after, sizeof r->retry_after);
            return r->used < r->nseq ? r->seq[r->used++] : r->then;
        }
    }
    return 204;
}

static enum MHD_Result
sink_answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
            const char *upload, size_t *upload_size, void **state)
{
    static char empty[] = "";
    sink *s = cls;
    struct upload *u = *state;
    struct MHD_Response *r;
    enum MHD_Result rc;
    char retry_after[16];
    const char *v;
    hit *h;
    int status;

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
    h = calloc(1, sizeof *h);
    if (h == NULL)
        return MHD_NO;
    h->t_ms = now_ms();
    h->wall = wall_ms();
    snprintf(h->path, sizeof h->path, "%s %s", method, url);
    MHD_get_connection_values(conn, MHD_HEADER_KIND, keep_header, h);
    h->body = u->data;
    h->body_len = u->len;
    u->data = NULL;
    v = hit_header(h, "webhook-id", NULL);
    snprintf(h->wid, sizeof h->wid, "%s", v != NULL ? v : "");
    v = hit_header(h, "ce-subject", NULL);
    pct_decode(h->subject, sizeof h->subject, v != NULL ? v : "");

    pthread_mutex_lock(&s->mu);
    status = decide(s, h->subject, retry_after);
    h->status = status;
    if (s->nhits < MAX_HITS) {
        s->hits[s->nhits++] = h;
    } else {
        s->dropped++;
        hit_free(h);
    }
    if (status == HANG)
        s->hanging++;
    pthread_mutex_unlock(&s->mu);

    if (status == HANG) {
        /* Until the test lets go (it kills the gateway first), or a minute, so that a failed test cannot wedge. */
        long until = now_ms() + 60000;
        int go = 0;

        while (!go && !atomic_load(&s->stopping) && now_ms() < until) {
            sleep_ms(10);
            pthread_mutex_lock(&s->mu);
            go = s->released;
            pthread_mutex_unlock(&s->mu);
        }
        pthread_mutex_lock(&s->mu);
        s->hanging--;
        pthread_mutex_unlock(&s->mu);
        status = 503;
    }
    r = MHD_create_response_from_buffer(0, empty, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    if ((status == 429 || status == 503) && retry_after[0] != '\0')
        MHD_add_response_header(r, "Retry-After", retry_after);
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
sink_start(sink *s, const char *name)
{
    const union MHD_DaemonInfo *info;
    struct sockaddr_in sa;

    s->name = name;
    pthread_mutex_init(&s->mu, NULL);
    atomic_init(&s->stopping, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    /* A thread per connection: a hanging answer holds only its own connection. */
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL, 0, NULL,
                            NULL, sink_answer, s, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED,
                            sink_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (s->d == NULL)
        return -1;
    info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL)
        return -1;
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d/hook/%s", info->port, name);
    return 0;
}

static void
sink_stop(sink *s)
{
    int i;

    if (s->d == NULL)
        return;
    atomic_store(&s->stopping, 1);
    MHD_stop_daemon(s->d);
    s->d = NULL;
    for (i = 0; i < s->nhits; i++)
        hit_free(s->hits[i]);
    s->nhits = 0;
    pthread_mutex_destroy(&s->mu);
}

/* Requests with ce-subject `subject` are answered seq[0], seq[1], ..., then `then`. */
static void
sink_rule(sink *s, const char *subject, int then, const int *seq, int nseq)
{
    rule *r = NULL;
    int i;

    assert_true(nseq <= MAX_SEQ);
    pthread_mutex_lock(&s->mu);
    for (i = 0; i < s->nrules && r == NULL; i++)
        if (strcmp(s->rules[i].subject, subject) == 0)
            r = &s->rules[i];
    if (r == NULL && s->nrules < MAX_RULES)
        r = &s->rules[s->nrules++];
    if (r != NULL) {
        memset(r, 0, sizeof *r);
        snprintf(r->subject, sizeof r->subject, "%s", subject);
        if (nseq > 0)
            memcpy(r->seq, seq, sizeof r->seq[0] * (size_t)nseq);
        r->nseq = nseq;
        r->then = then;
        /* A new hang holds until the test lets go of it, whatever it let go of before. */
        for (i = 0; i < nseq; i++)
            if (seq[i] == HANG)
                s->released = 0;
    }
    pthread_mutex_unlock(&s->mu);
    assert_non_null(r);
}

#define RULE(s, subject, then, ...)                                                                                    \
    sink_rule((s), (subject), (then), (const int[]){__VA_ARGS__}, (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)))

static void
sink_retry_after(sink *s, const char *subject, const char *seconds)
{
    int i;

    pthread_mutex_lock(&s->mu);
    for (i = 0; i < s->nrules; i++)
        if (strcmp(s->rules[i].subject, subject) == 0)
            snprintf(s->rules[i].retry_after, sizeof s->rules[i].retry_after, "%s", seconds);
    pthread_mutex_unlock(&s->mu);
}

static void
sink_release(sink *s)
{
    pthread_mutex_lock(&s->mu);
    s->released = 1;
    pthread_mutex_unlock(&s->mu);
}

/*
 * The requests s received for webhook-id id, oldest first, into out (up to
 * max); how many there were. A hit never changes once recorded and is freed
 * only when the sink stops, so the pointers stay valid outside the lock.
 */
static int
sink_find(sink *s, const char *id, const hit **out, int max)
{
    int i, n = 0;

    pthread_mutex_lock(&s->mu);
    for (i = 0; i < s->nhits; i++) {
        if (strcmp(s->hits[i]->wid, id) == 0) {
            if (n < max)
                out[n] = s->hits[i];
            n++;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

static int
sink_count(sink *s, const char *id)
{
    return sink_find(s, id, NULL, 0);
}

static int
sink_total(sink *s)
{
    int n;

    pthread_mutex_lock(&s->mu);
    n = s->nhits;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static const hit *
sink_at(sink *s, int i)
{
    const hit *h;

    pthread_mutex_lock(&s->mu);
    h = i < s->nhits ? s->hits[i] : NULL;
    pthread_mutex_unlock(&s->mu);
    return h;
}

static int
sink_hanging(sink *s)
{
    int n;

    pthread_mutex_lock(&s->mu);
    n = s->hanging;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Requests s received whose ce-id is id whatever their webhook-id: what a wrong webhook-id hides. */
static int
sink_count_ce(sink *s, const char *id)
{
    int i, n = 0;

    pthread_mutex_lock(&s->mu);
    for (i = 0; i < s->nhits; i++) {
        const char *v = hit_header(s->hits[i], "ce-id", NULL);

        n += v != NULL && strcmp(v, id) == 0;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Waits until s has received at least n requests for id; fails after ms. */
static void
wait_hits_at(sink *s, const char *id, int n, long ms, int line)
{
    long t0 = now_ms();

    while (sink_count(s, id) < n) {
        if (now_ms() - t0 > ms)
            fail_msg("line %d: %s's backend got %d requests with webhook-id %s in %ld ms, expected %d (%d with that "
                     "ce-id)",
                     line, s->name, sink_count(s, id), id, ms, n, sink_count_ce(s, id));
        sleep_ms(10);
    }
}

#define WAIT_HITS(s, id, n, ms) wait_hits_at((s), (id), (n), (ms), __LINE__)

/* ---- gateways, tenants ---- */

typedef struct gateway {
    const char *name;
    char cfg[PATH_MAX], data[PATH_MAX / 2 + 16], log[PATH_MAX], sock[PATH_MAX];
    int port;
    pid_t pid;
    char token[80];
} gateway;

typedef struct tenant {
    const char *slug;
    gateway *g;
    sink sink;
    char backend[16];
    char whsec[96];
    uint8_t secret[64]; /* the whsec_ secret, decoded here */
    size_t secret_len;
    uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES]; /* signing_public of `tenant show` */
} tenant;

static char dir[PATH_MAX / 2];
static gateway gw_a = {.name = "a"}, gw_b = {.name = "b"};
static tenant alice = {.slug = "alice", .g = &gw_a}, bob = {.slug = "bob", .g = &gw_b},
              bob2 = {.slug = "bob2", .g = &gw_b}, bobn = {.slug = "bobn", .g = &gw_b},
              bobpsk = {.slug = "bobpsk", .g = &gw_b};
static tenant *const tenants[] = {&alice, &bob, &bob2, &bobn, &bobpsk};
/* JSON documents of the running test, released by its teardown. */
static json_t *keep;
/* A random tag in every body, so that bodies of different runs cannot be confused. */
static char tag[17];

static json_t *
kept(json_t *j)
{
    if (j != NULL)
        json_array_append_new(keep, j);
    return j;
}

static blob *
gcli(const gateway *g, const char *const *args)
{
    const char *argv[MAX_ARGS + 1];
    size_t n = 0;
    result r;

    while (args[n] != NULL) {
        assert_true(n + 3 < MAX_ARGS);
        argv[n] = args[n];
        n++;
    }
    argv[n++] = "--config";
    argv[n++] = g->cfg;
    argv[n] = NULL;
    r = ng(NULL, argv);
    EXPECT_EXIT(r, 0);
    return r.out;
}

#define CLI(g, ...) gcli((g), ARGS(__VA_ARGS__))

/* 1 if nothing listens on 127.0.0.1:port now. */
static int
port_free(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

    if (fd < 0)
        return 0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/*
 * A port for a gateway, below the kernel's ephemeral range: the sinks'
 * port 0 and every outgoing connection take ports from that range, and one
 * of them could otherwise land on the port before the gateway binds it.
 * It must stay fixed from the start, since public_url travels in the
 * connection parameters. -1 if none is found.
 */
static int
gateway_port(int not )
{
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    int low = 32768, high = 60999, i, p;

    if (f != NULL) {
        if (fscanf(f, "%d %d", &low, &high) != 2)
            low = 32768;
        fclose(f);
    }
    for (i = 0; i < 200; i++) {
        p = low > 11024 ? 10000 + (int)randombytes_uniform((uint32_t)(low - 10000))
                        : 1024 + (int)randombytes_uniform(64000);
        if (p != not &&(p < low || p > high) && port_free(p))
            return p;
    }
    return -1;
}

static int
write_config(gateway *g, int not )
{
    FILE *f;

    snprintf(g->cfg, sizeof g->cfg, "%s/%s.json", dir, g->name);
    snprintf(g->data, sizeof g->data, "%s/%s", dir, g->name);
    snprintf(g->log, sizeof g->log, "%s/%s.log", dir, g->name);
    snprintf(g->sock, sizeof g->sock, "%s/admin.sock", g->data);
    g->port = gateway_port(not );
    if (g->port <= 0 || (f = fopen(g->cfg, "w")) == NULL)
        return -1;
    /* Polling every 50-200 ms so that a message crosses in well under a second. */
    fprintf(f,
            "{\"data_dir\": \"%s\", \"public_url\": \"http://127.0.0.1:%d\",\n"
            " \"listen\": {\"address\": \"127.0.0.1\", \"port\": %d, \"timeout_s\": 5},\n"
            " \"admin\": {\"socket\": \"admin.sock\"},\n"
            " \"delivery\": {\"allow_private\": [\"127.0.0.1\"], \"retry_schedule_s\": [%d, %d, %d],\n"
            "              \"max_attempts\": %d, \"timeout_ms\": %d},\n"
            " \"poll\": {\"interval_ms\": 50, \"max_interval_ms\": 200},\n"
            " \"messages\": {\"default_ttl_s\": %d},\n"
            " \"log\": {\"format\": \"json\"}}\n",
            g->name, g->port, g->port, schedule_s[0], schedule_s[1], schedule_s[2], MAX_ATTEMPTS, DELIVERY_TIMEOUT_MS,
            TTL_S);
    return fclose(f) == 0 ? 0 : -1;
}

/* ---- HTTP ---- */

typedef struct reply {
    long status; /* -1: nothing answered */
    blob *body;
    json_t *json;
} reply;

static char last_req[256];

static size_t
collect(char *p, size_t size, size_t n, void *ctx)
{
    blob_append(ctx, p, size * n);
    return size * n;
}

/* One request to g's public listener, or with unix_sock to its admin socket. */
static reply
http(const gateway *g, const char *unix_sock, const char *method, const char *path, const char *const *headers,
     const void *data, size_t len)
{
    char url[512], auth[128];
    struct curl_slist *h = NULL;
    reply r = {-1, blob_new(), NULL};
    CURL *c = curl_easy_init();
    size_t i;

    assert_non_null(c);
    snprintf(last_req, sizeof last_req, "%s %s%.200s", method, unix_sock != NULL ? "admin " : "", path);
    if (unix_sock != NULL) {
        snprintf(url, sizeof url, "http://localhost%s", path);
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", g->token);
        h = curl_slist_append(h, auth);
        curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, unix_sock);
    } else {
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", g->port, path);
    }
    h = curl_slist_append(h, "Expect:");
    for (i = 0; headers != NULL && headers[i] != NULL; i++)
        h = curl_slist_append(h, headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)HTTP_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r.body);
    if (data != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, data);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    r.json = kept(json_loadb(text_of(r.body), r.body->len, 0, NULL));
    return r;
}

static reply
admin(const gateway *g, const char *method, const char *path)
{
    return http(g, g->sock, method, path, NULL, method[0] == 'P' ? "" : NULL, 0);
}

static void
expect_status_at(reply r, long status, int line)
{
    if (r.status != status)
        fail_msg("line %d: %s: got %ld, expected %ld; body: %.300s", line, last_req, r.status, status, text_of(r.body));
}

#define EXPECT_STATUS(r, status) expect_status_at((r), (status), __LINE__)

static const char *
jstr(const json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));

    if (s == NULL)
        fail_msg("%s: no string \"%s\" in the answer", last_req, key);
    return s;
}

/* {"waiting", "dead"} of a tenant's inbox, from the admin API. */
static void
queue_of(const tenant *t, long *waiting, long *dead)
{
    char path[128];
    reply r;

    snprintf(path, sizeof path, "/v1/admin/tenants/%s/queue", t->slug);
    r = admin(t->g, "GET", path);
    EXPECT_STATUS(r, 200);
    assert_true(json_is_integer(json_object_get(r.json, "waiting")));
    assert_true(json_is_integer(json_object_get(r.json, "dead")));
    *waiting = (long)json_integer_value(json_object_get(r.json, "waiting"));
    *dead = (long)json_integer_value(json_object_get(r.json, "dead"));
}

static void
wait_queue_at(const tenant *t, long want_waiting, long want_dead, long ms, int line)
{
    long t0 = now_ms(), waiting, dead;

    for (;;) {
        queue_of(t, &waiting, &dead);
        if (waiting == want_waiting && (want_dead < 0 || dead == want_dead))
            return;
        if (now_ms() - t0 > ms)
            fail_msg("line %d: %s's queue has waiting %ld, dead %ld after %ld ms; expected %ld, %ld", line, t->slug,
                     waiting, dead, ms, want_waiting, want_dead);
        sleep_ms(50);
    }
}

#define WAIT_QUEUE(t, waiting, dead, ms) wait_queue_at((t), (waiting), (dead), (ms), __LINE__)

/* The dead letter of message id in t's list, or NULL. */
static json_t *
dead_letter(const tenant *t, const char *id)
{
    char path[128];
    json_t *list;
    reply r;
    size_t i;

    snprintf(path, sizeof path, "/v1/admin/tenants/%s/dead?limit=1000", t->slug);
    r = admin(t->g, "GET", path);
    EXPECT_STATUS(r, 200);
    list = json_object_get(r.json, "dead");
    assert_true(json_is_array(list));
    for (i = 0; i < json_array_size(list); i++)
        if (strcmp(jstr(json_array_get(list, i), "message_id"), id) == 0)
            return json_array_get(list, i);
    return NULL;
}

static size_t
dead_count(const tenant *t)
{
    char path[128];
    reply r;

    snprintf(path, sizeof path, "/v1/admin/tenants/%s/dead?limit=1000", t->slug);
    r = admin(t->g, "GET", path);
    EXPECT_STATUS(r, 200);
    assert_true(json_is_array(json_object_get(r.json, "dead")));
    return json_array_size(json_object_get(r.json, "dead"));
}

/* The status of t's backend in GET /v1/admin/tenants/{t}. */
static const char *
backend_status(const tenant *t)
{
    char path[128];
    json_t *list;
    reply r;
    size_t i;

    snprintf(path, sizeof path, "/v1/admin/tenants/%s", t->slug);
    r = admin(t->g, "GET", path);
    EXPECT_STATUS(r, 200);
    list = json_object_get(r.json, "backends");
    assert_true(json_is_array(list));
    for (i = 0; i < json_array_size(list); i++)
        if (strcmp(jstr(json_array_get(list, i), "id"), t->backend) == 0)
            return jstr(json_array_get(list, i), "status");
    fail_msg("backend %s of %s is not in %s", t->backend, t->slug, text_of(r.body));
    return NULL;
}

/* ---- processes ---- */

static int
alive(pid_t pid)
{
    char path[64], buf[512];
    FILE *f;
    char *p;

    if (pid <= 0 || kill(pid, 0) != 0)
        return 0;
    /* A zombie nobody reaps (an orphan in a container without init) is gone for our purposes. */
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    p = fgets(buf, sizeof buf, f);
    fclose(f);
    p = p != NULL ? strrchr(buf, ')') : NULL;
    return p == NULL || p[2] != 'Z';
}

/* The embedded redis-server of g's data_dir, if one runs; 0 otherwise. */
static pid_t
redis_of(const gateway *g)
{
    char path[PATH_MAX + 32], cmd[64];
    blob *b, *c;
    pid_t pid;

    snprintf(path, sizeof path, "%s/redis/redis.pid", g->data);
    b = slurp(path);
    if (b == NULL)
        return 0;
    pid = (pid_t)strtol(text_of(b), NULL, 10);
    if (!alive(pid))
        return 0;
    /* The pid may have been reused since: only a redis-server is ours to stop. */
    snprintf(cmd, sizeof cmd, "/proc/%ld/cmdline", (long)pid);
    c = slurp(cmd);
    return c != NULL && strstr(text_of(c), "redis-server") != NULL ? pid : 0;
}

static void
stop_pid(pid_t pid, int sig, long ms)
{
    long t0 = now_ms();

    if (pid <= 0 || kill(pid, sig) != 0)
        return;
    while (alive(pid) && now_ms() - t0 < ms)
        sleep_ms(20);
    if (alive(pid))
        kill(pid, SIGKILL);
}

static pid_t
spawn_serve(const gateway *g)
{
    const char *argv[] = {ng_bin, "serve", "--config", g->cfg, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    pid_t pid;
    int rc;

    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, 2, g->log, O_WRONLY | O_CREAT | O_APPEND, 0600), 0);
    spawn_attr(&attr);
    rc = posix_spawn(&pid, ng_bin, &fa, &attr, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
        fail_msg("posix_spawn %s: %s", ng_bin, strerror(rc));
    return pid;
}

static void
start_gateway(gateway *g)
{
    char path[PATH_MAX + 32];
    long t0 = now_ms();
    blob *tok;

    g->pid = spawn_serve(g);
    for (;;) {
        reply r = http(g, NULL, "GET", "/readyz", NULL, NULL, 0);

        if (r.status == 200)
            break;
        if (waitpid(g->pid, NULL, WNOHANG) == g->pid) {
            blob *log = slurp(g->log);
            size_t len = log != NULL ? log->len : 0;

            g->pid = 0;
            fail_msg("gateway %s exited at start; the end of %s: %s", g->name, g->log,
                     log != NULL ? text_of(log) + (len > 1500 ? len - 1500 : 0) : "(none)");
        }
        if (now_ms() - t0 > START_TIMEOUT_MS)
            fail_msg("gateway %s is not ready after %d ms; see %s", g->name, START_TIMEOUT_MS, g->log);
        sleep_ms(50);
    }
    snprintf(path, sizeof path, "%s/admin.token", g->data);
    tok = slurp(path);
    assert_non_null(tok);
    snprintf(g->token, sizeof g->token, "%.*s", (int)strcspn(text_of(tok), " \r\n"), text_of(tok));
    assert_true(is_lower_hex(g->token, 64));
}

/* SIGTERM drains and exits 0; how long it took. */
static long
stop_gateway(gateway *g)
{
    long t0 = now_ms();
    int st = 0;
    pid_t pid = g->pid;

    assert_true(pid > 0);
    assert_int_equal(kill(pid, SIGTERM), 0);
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (now_ms() - t0 > STOP_TIMEOUT_MS) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            g->pid = 0;
            fail_msg("gateway %s did not stop within %d ms of SIGTERM", g->name, STOP_TIMEOUT_MS);
        }
        sleep_ms(10);
    }
    g->pid = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("gateway %s stopped with %s %d; see %s", g->name, WIFEXITED(st) ? "status" : "signal",
                 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), g->log);
    return now_ms() - t0;
}

/* ---- the tenants' setup ---- */

static void
add_backend(tenant *t)
{
    blob *out = CLI(t->g, "backend", "add", t->slug, "--url", t->sink.url);
    const char *p = strstr(text_of(out), "whsec_"), *b = strstr(text_of(out), "backend ");
    size_t n;

    assert_non_null(p);
    assert_non_null(b);
    n = strcspn(p, " \t\r\n");
    assert_true(n < sizeof t->whsec);
    memcpy(t->whsec, p, n);
    t->whsec[n] = '\0';
    b += strlen("backend ");
    n = strcspn(b, " ");
    assert_true(n > 0 && n < sizeof t->backend);
    memcpy(t->backend, b, n);
    t->backend[n] = '\0';
    /* Decoded as a backend developer would: base64 after the prefix. */
    if (sodium_base642bin(t->secret, sizeof t->secret, t->whsec + 6, strlen(t->whsec + 6), NULL, &t->secret_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        t->secret_len < 24)
        fail_msg("`backend add` printed %s, not a whsec_ secret", t->whsec);
}

static void
signing_key(tenant *t)
{
    blob *out = CLI(t->g, "tenant", "show", t->slug, "--json");
    json_t *j = kept(json_loadb(text_of(out), out->len, 0, NULL));
    const char *hex, *whpk;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    size_t len;

    assert_non_null(j);
    hex = jstr(j, "signing_public");
    whpk = jstr(j, "signing_key");
    assert_true(is_lower_hex(hex, 2 * crypto_sign_PUBLICKEYBYTES));
    assert_int_equal(sodium_hex2bin(t->sign_pk, sizeof t->sign_pk, hex, strlen(hex), NULL, &len, NULL), 0);
    assert_int_equal(len, sizeof t->sign_pk);
    /* The whpk_ form a Standard Webhooks library takes is the same key. */
    assert_true(strncmp(whpk, "whpk_", 5) == 0);
    assert_int_equal(
        sodium_base642bin(pk, sizeof pk, whpk + 5, strlen(whpk + 5), NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL),
        0);
    assert_int_equal(len, sizeof pk);
    assert_memory_equal(pk, t->sign_pk, sizeof pk);
}

static const char *
export_params(const tenant *t)
{
    blob *out = CLI(t->g, "peer", "export", t->slug);

    assert_true(strncmp(text_of(out), "ngcp1:", 6) == 0);
    return text_of(blob_of(out->data, strcspn(text_of(out), "\r\n")));
}

static void
kill_leftovers(void)
{
    size_t i;

    for (i = 0; i < 2; i++) {
        gateway *g = i == 0 ? &gw_a : &gw_b;

        if (g->pid > 0) {
            kill(g->pid, SIGKILL);
            waitpid(g->pid, NULL, 0);
            g->pid = 0;
        }
        if (g->data[0] != '\0')
            stop_pid(redis_of(g), SIGTERM, 5000);
    }
}

static int
group_setup(void **state)
{
    const char *base = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    const char *alice_params;
    uint8_t t[8];
    size_t i;

    (void)state;
    keep = json_array();
    randombytes_buf(t, sizeof t);
    sodium_bin2hex(tag, sizeof tag, t, sizeof t);
    snprintf(dir, sizeof dir, "%s/nge2e-XXXXXX", base);
    if (mkdtemp(dir) == NULL || write_config(&gw_a, 0) != 0 || write_config(&gw_b, gw_a.port) != 0)
        return -1;
    for (i = 0; i < sizeof tenants / sizeof tenants[0]; i++)
        if (sink_start(&tenants[i]->sink, tenants[i]->slug) != 0)
            return -1;
    CLI(&gw_a, "vault", "init");
    CLI(&gw_b, "vault", "init");
    CLI(&gw_a, "tenant", "create", "alice");
    CLI(&gw_b, "tenant", "create", "bob");
    CLI(&gw_b, "tenant", "create", "bob2");
    CLI(&gw_b, "tenant", "create", "bobn", "--allow-anonymous");
    CLI(&gw_b, "tenant", "create", "bobpsk", "--psk", "--allow-anonymous");
    alice_params = export_params(&alice);
    for (i = 0; i < sizeof tenants / sizeof tenants[0]; i++) {
        tenant *x = tenants[i];

        add_backend(x);
        signing_key(x);
        if (x == &alice)
            continue;
        CLI(&gw_a, "peer", "import", "alice", export_params(x), "--name", x->slug);
        CLI(&gw_b, "peer", "import", x->slug, alice_params, "--name", "alice");
    }
    start_gateway(&gw_a);
    start_gateway(&gw_b);
    blobs_free();
    json_array_clear(keep);
    return 0;
}

static int
group_teardown(void **state)
{
    char cmd[PATH_MAX + 32];
    size_t i;

    (void)state;
    kill_leftovers();
    for (i = 0; i < sizeof tenants / sizeof tenants[0]; i++) {
        sink_release(&tenants[i]->sink);
        sink_stop(&tenants[i]->sink);
    }
    blobs_free();
    json_decref(keep);
    keep = NULL;
    if (getenv("NG_KEEP") != NULL) {
        fprintf(stderr, "kept %s\n", dir);
        return 0;
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int
test_teardown(void **state)
{
    (void)state;
    blobs_free();
    json_array_clear(keep);
    return 0;
}

/* A failed test_gone must not leave bob's backend disabled for the tests after it. */
static int
gone_teardown(void **state)
{
    char path[128];

    snprintf(path, sizeof path, "/v1/admin/tenants/bob/backends/%s/enable", bob.backend);
    if (gw_b.pid > 0)
        http(&gw_b, gw_b.sock, "POST", path, NULL, "", 0);
    return test_teardown(state);
}

/* ---- sending, and the ledger ---- */

typedef struct sent {
    char id[ID_HEX + 1];
    tenant *to;
    int hits; /* requests its backend must have received in all; -1 until its test settles it */
    int acks; /* of which answered 2xx */
} sent;

static sent ledger[MAX_SENT];
static size_t nsent;

static sent *
ledger_add(tenant *to, const char *id)
{
    sent *s;

    assert_true(nsent < MAX_SENT);
    assert_true(is_lower_hex(id, ID_HEX));
    s = &ledger[nsent++];
    snprintf(s->id, sizeof s->id, "%s", id);
    s->to = to;
    s->hits = -1;
    s->acks = -1;
    return s;
}

static sent *
ledger_find(const char *id)
{
    size_t i;

    for (i = 0; i < nsent; i++)
        if (strcmp(ledger[i].id, id) == 0)
            return &ledger[i];
    return NULL;
}

static void
settle(const char *id, int hits, int acks)
{
    sent *s = ledger_find(id);

    assert_non_null(s);
    s->hits = hits;
    s->acks = acks;
}

static const char *
dump(json_t *doc)
{
    char *s;
    const char *t;

    assert_non_null(doc);
    s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    assert_non_null(s);
    t = text_of(blob_str(s));
    free(s);
    return t;
}

static void
fresh_id(char out[40])
{
    uint8_t r[12];
    char hex[25];

    randombytes_buf(r, sizeof r);
    sodium_bin2hex(hex, sizeof hex, r, sizeof r);
    snprintf(out, 40, "msg_%s", hex);
}

/* POST /v1/tenants/{from}/messages, signed v1 by from's backend; extra headers "Name: value". */
static reply
submit(const tenant *from, const char *content_type, const void *body, size_t len, const char *const *extra)
{
    char id[40], sig[NG_WEBHOOK_SIGNATURE_BYTES], path[128], l_ct[300], l_id[80], l_ts[64], l_sig[160];
    const char *h[16];
    int64_t ts = (int64_t)(wall_ms() / 1000);
    size_t n = 0, i;

    fresh_id(id);
    assert_int_equal(ng_webhook_sign_v1(sig, from->secret, from->secret_len, id, ts, body, len), NG_OK);
    snprintf(l_ct, sizeof l_ct, "Content-Type: %s", content_type);
    snprintf(l_id, sizeof l_id, "webhook-id: %s", id);
    snprintf(l_ts, sizeof l_ts, "webhook-timestamp: %lld", (long long)ts);
    snprintf(l_sig, sizeof l_sig, "webhook-signature: %s", sig);
    h[n++] = l_ct;
    h[n++] = l_id;
    h[n++] = l_ts;
    h[n++] = l_sig;
    for (i = 0; extra != NULL && extra[i] != NULL; i++) {
        assert_true(n < sizeof h / sizeof h[0] - 1);
        h[n++] = extra[i];
    }
    h[n] = NULL;
    snprintf(path, sizeof path, "/v1/tenants/%s/messages", from->slug);
    return http(from->g, NULL, "POST", path, h, body, len);
}

/* What a test sent and expects to arrive. */
typedef struct msg {
    tenant *from, *to;
    const char *pattern; /* NULL: the peer's choice */
    const char *content_type;
    const uint8_t *body;
    size_t len;
    int binary; /* sent as body_base64 */
    const char *type, *subject;
    int ttl;
    char id[ID_HEX + 1]; /* from the 202 */
    long long expires;   /* from the 202 */
    long sent_ms;
    uint64_t sent_wall;
} msg;

/* The JSON form of m, one message. */
static json_t *
msg_json(const msg *m)
{
    json_t *j = json_pack("{s:s, s:s, s:i}", "recipient", m->to->slug, "content_type", m->content_type, "ttl",
                          m->ttl > 0 ? m->ttl : TTL_S);

    assert_non_null(j);
    if (m->binary) {
        size_t cap = sodium_base64_ENCODED_LEN(m->len, sodium_base64_VARIANT_ORIGINAL);
        char *b64 = malloc(cap);

        assert_non_null(b64);
        sodium_bin2base64(b64, cap, m->body, m->len, sodium_base64_VARIANT_ORIGINAL);
        json_object_set_new(j, "body_base64", json_string(b64));
        free(b64);
    } else {
        json_object_set_new(j, "body", json_stringn((const char *)m->body, m->len));
    }
    if (m->pattern != NULL)
        json_object_set_new(j, "pattern", json_string(m->pattern));
    if (m->type != NULL)
        json_object_set_new(j, "type", json_string(m->type));
    if (m->subject != NULL)
        json_object_set_new(j, "subject", json_string(m->subject));
    return j;
}

static void
send_msg(msg *m)
{
    const char *body = dump(msg_json(m));
    reply r;

    if (m->from == NULL)
        m->from = &alice;
    m->sent_ms = now_ms();
    m->sent_wall = wall_ms();
    r = submit(m->from, "application/json", body, strlen(body), NULL);
    EXPECT_STATUS(r, 202);
    snprintf(m->id, sizeof m->id, "%s", jstr(r.json, "id"));
    m->expires = (long long)json_integer_value(json_object_get(r.json, "expires"));
    assert_string_equal(jstr(r.json, "recipient"), m->to->slug);
    ledger_add(m->to, m->id);
}

/* A text body of a test, unique to this run, with UTF-8 and the characters JSON escapes. */
static void
text_body(msg *m, const char *what)
{
    char buf[512];
    const char *b;

    snprintf(buf, sizeof buf, "%s \xc3\xa9t\xc3\xa9 \xe2\x82\xac %s \"quoted\" \\ end", what, tag);
    b = text_of(blob_str(buf));
    m->body = (const uint8_t *)b;
    m->len = strlen(b);
    m->binary = 0;
}

/* A binary body: every byte value, NULs first and inside, then random bytes. */
static void
binary_body(msg *m, size_t len)
{
    blob *b = blob_new();
    uint8_t x;
    size_t i;

    for (i = 0; i < len; i++) {
        if (i < 256)
            x = (uint8_t)i;
        else if (i % 7 == 0)
            x = 0;
        else
            x = (uint8_t)randombytes_uniform(256);
        blob_append(b, &x, 1);
    }
    m->body = b->data;
    m->len = b->len;
    m->binary = 1;
}

/* ---- the Standard Webhooks verifier of a backend, written here ---- */

/* "<id>.<timestamp>.<body>", the signed content. */
static blob *
signed_content(const char *id, const char *ts, const uint8_t *body, size_t len)
{
    blob *b = blob_new();

    blob_append(b, id, strlen(id));
    blob_append(b, ".", 1);
    blob_append(b, ts, strlen(ts));
    blob_append(b, ".", 1);
    blob_append(b, body, len);
    return b;
}

static int
verify_v1(const uint8_t *key, size_t key_len, const blob *content, const char *b64)
{
    crypto_auth_hmacsha256_state st;
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    char want[sodium_base64_ENCODED_LEN(crypto_auth_hmacsha256_BYTES, sodium_base64_VARIANT_ORIGINAL)];

    crypto_auth_hmacsha256_init(&st, key, key_len);
    crypto_auth_hmacsha256_update(&st, content->data, content->len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2base64(want, sizeof want, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    return strcmp(want, b64) == 0;
}

static int
verify_v1a(const uint8_t pk[crypto_sign_PUBLICKEYBYTES], const blob *content, const char *b64)
{
    uint8_t sig[crypto_sign_BYTES];
    size_t len;

    if (sodium_base642bin(sig, sizeof sig, b64, strlen(b64), NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        len != sizeof sig)
        return 0;
    return crypto_sign_verify_detached(sig, content->data, content->len, pk) == 0;
}

/*
 * 1 if webhook-signature holds exactly one v1 and one v1a entry, and both
 * verify over body (which a test may change to see them fail).
 */
static int
signatures_ok(const hit *h, const tenant *t, const uint8_t *body, size_t len, char *why, size_t why_cap)
{
    const char *id = hit_header(h, "webhook-id", NULL), *ts = hit_header(h, "webhook-timestamp", NULL);
    const char *sig = hit_header(h, "webhook-signature", NULL);
    char entries[NG_WEBHOOK_HEADER_MAX + 1], *save = NULL, *e;
    int v1 = 0, v1a = 0, ok1 = 0, ok1a = 0;
    blob *content;

    if (id == NULL || ts == NULL || sig == NULL) {
        snprintf(why, why_cap, "webhook-id, -timestamp or -signature missing");
        return 0;
    }
    content = signed_content(id, ts, body, len);
    snprintf(entries, sizeof entries, "%s", sig);
    for (e = strtok_r(entries, " ", &save); e != NULL; e = strtok_r(NULL, " ", &save)) {
        if (strncmp(e, "v1,", 3) == 0) {
            v1++;
            ok1 |= verify_v1(t->secret, t->secret_len, content, e + 3);
        } else if (strncmp(e, "v1a,", 4) == 0) {
            v1a++;
            ok1a |= verify_v1a(t->sign_pk, content, e + 4);
        }
    }
    snprintf(why, why_cap, "webhook-signature \"%.300s\": %d v1 (%s), %d v1a (%s)", sig, v1,
             ok1 ? "verifies" : "does not verify", v1a, ok1a ? "verifies" : "does not verify");
    return v1 == 1 && v1a == 1 && ok1 && ok1a;
}

static void
expect_header_at(const hit *h, const char *name, const char *want, int line)
{
    int count;
    const char *v = hit_header(h, name, &count);

    if (v == NULL)
        fail_msg("line %d: the webhook has no %s header", line, name);
    if (count != 1)
        fail_msg("line %d: the webhook has %d %s headers", line, count, name);
    if (strcmp(v, want) != 0)
        fail_msg("line %d: the webhook's %s is \"%s\", expected \"%s\"", line, name, v, want);
}

#define EXPECT_HEADER(h, name, want) expect_header_at((h), (name), (want), __LINE__)

/* Unix ms of "YYYY-MM-DDTHH:MM:SS.mmmZ", or -1. */
static long long
rfc3339_ms(const char *s)
{
    int y, mo, d, h, mi, sec, ms, n = 0;
    long long days;

    if (strlen(s) != 24 || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &y, &mo, &d, &h, &mi, &sec, &ms, &n) != 7 ||
        n != 24 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    /* Days from the civil date (Howard Hinnant's algorithm), so no timegm is needed. */
    y -= mo <= 2;
    {
        long long era = (y >= 0 ? y : y - 399) / 400;
        long long yoe = y - era * 400;
        long long doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

        days = era * 146097 + doe - 719468;
    }
    return ((days * 24 + h) * 60 + mi) * 60000LL + sec * 1000LL + ms;
}

/* One attempt of m as its backend must see it: CloudEvents binary mode, signed both ways, the body as sent. */
static void
expect_webhook_at(const hit *h, const msg *m, int line)
{
    char path[160], source[128], why[600], decoded[512];
    const char *ts = hit_header(h, "webhook-timestamp", NULL), *v;
    long long tsv;

    snprintf(path, sizeof path, "POST /hook/%s", m->to->slug);
    if (strcmp(h->path, path) != 0)
        fail_msg("line %d: message %s came as \"%s\", expected \"%s\"", line, m->id, h->path, path);
    if (h->body_len != m->len || (m->len > 0 && memcmp(h->body, m->body, m->len) != 0))
        fail_msg("line %d: message %s arrived with a body of %zu bytes that differs from the %zu sent", line, m->id,
                 h->body_len, m->len);
    EXPECT_HEADER(h, "content-type", m->content_type);
    EXPECT_HEADER(h, "ce-specversion", "1.0");
    EXPECT_HEADER(h, "ce-id", m->id);
    EXPECT_HEADER(h, "webhook-id", m->id);
    if (m->pattern != NULL)
        EXPECT_HEADER(h, "ce-ngpattern", m->pattern);
    v = hit_header(h, "ce-type", NULL);
    pct_decode(decoded, sizeof decoded, v != NULL ? v : "");
    if (v == NULL || strcmp(decoded, m->type != NULL ? m->type : "org.noisegate.message") != 0)
        fail_msg("line %d: ce-type \"%s\", expected \"%s\"", line, v != NULL ? v : "(none)",
                 m->type != NULL ? m->type : "org.noisegate.message");
    if (m->subject != NULL && strcmp(h->subject, m->subject) != 0)
        fail_msg("line %d: ce-subject decodes to \"%s\", expected \"%s\"", line, h->subject, m->subject);
    /* The sending peer; an N parcel authenticates no sender, so it may not name one. */
    snprintf(source, sizeof source, "urn:noisegate:%s:%s", m->to->slug,
             m->pattern != NULL && m->pattern[0] == 'N' ? "anonymous" : m->from->slug);
    EXPECT_HEADER(h, "ce-source", source);
    v = hit_header(h, "ce-time", NULL);
    if (v == NULL || rfc3339_ms(v) < 0)
        fail_msg("line %d: ce-time \"%s\" is not RFC 3339 UTC with milliseconds", line, v != NULL ? v : "(none)");
    /* When the message was made: at its submission, not at an attempt. */
    if (m->sent_wall != 0 &&
        (rfc3339_ms(v) + 2000 < (long long)m->sent_wall || rfc3339_ms(v) > (long long)m->sent_wall + 2000))
        fail_msg("line %d: ce-time %s, but the message was sent at %llu ms", line, v, (unsigned long long)m->sent_wall);
    if (m->expires != 0) {
        char want[32];

        snprintf(want, sizeof want, "%lld", m->expires);
        EXPECT_HEADER(h, "ce-ngexpires", want);
    }
    /* Fresh per attempt: the time it was sent, not the time the message was made. */
    if (ts == NULL || sscanf(ts, "%lld", &tsv) != 1 || tsv < (long long)(h->wall / 1000) - 2 ||
        tsv > (long long)(h->wall / 1000) + 1)
        fail_msg("line %d: webhook-timestamp \"%s\" is not the time of the attempt (%llu)", line,
                 ts != NULL ? ts : "(none)", (unsigned long long)(h->wall / 1000));
    if (!signatures_ok(h, m->to, h->body, h->body_len, why, sizeof why))
        fail_msg("line %d: message %s: %s", line, m->id, why);
}

#define EXPECT_WEBHOOK(h, m) expect_webhook_at((h), (m), __LINE__)

/* Exactly one attempt of m, answered 2xx, as its backend must see it. */
static const hit *
expect_once_at(const msg *m, int line)
{
    const hit *h[4];
    int n = sink_find(&m->to->sink, m->id, h, 4);

    if (n != 1)
        fail_msg("line %d: message %s reached %s's backend %d times, expected once", line, m->id, m->to->slug, n);
    if (h[0]->status < 200 || h[0]->status > 299)
        fail_msg("line %d: message %s was answered %d", line, m->id, h[0]->status);
    expect_webhook_at(h[0], m, line);
    return h[0];
}

#define EXPECT_ONCE(m) expect_once_at((m), __LINE__)

/* ==== 1. every pattern, byte for byte, signed both ways ==== */

static void
test_patterns(void **state)
{
    static const struct {
        tenant *to;
        const char *pattern;
    } cases[] = {{&bob, "X"},        {&bob, "K"},        {&bobn, "N"},      {&bobn, "X"},
                 {&bobpsk, "Xpsk1"}, {&bobpsk, "Kpsk0"}, {&bobpsk, "Npsk0"}};
    enum { N_CASES = sizeof cases / sizeof cases[0] };
    msg m[2 * N_CASES + 1];
    const hit *h;
    long worst = 0;
    size_t i;
    char why[600];

    (void)state;
    memset(m, 0, sizeof m);
    for (i = 0; i < N_CASES; i++) {
        msg *t = &m[2 * i], *b = &m[2 * i + 1];
        char what[64];

        t->to = b->to = cases[i].to;
        t->pattern = b->pattern = cases[i].pattern;
        snprintf(what, sizeof what, "a note sealed %s", cases[i].pattern);
        text_body(t, what);
        t->content_type = "text/plain; charset=utf-8";
        t->type = "com.example.note";
        /* A space, a quote, a percent sign and UTF-8: all percent-encoded on the way, all restored here. */
        t->subject = text_of(blob_str("order 17 \"r\xc3\xa9sum\xc3\xa9\" 100%"));
        binary_body(b, 700 + 13 * i);
        b->content_type = "application/x-noisegate-test; v=1";
        b->type = "com.example.blob";
        b->subject = "blob-1";
        send_msg(t);
        send_msg(b);
    }
    /* One more in CloudEvents binary mode: the raw body and its own content type. */
    {
        msg *c = &m[2 * N_CASES];
        reply r;

        c->from = &alice;
        c->to = &bob;
        c->pattern = "X";
        binary_body(c, 300);
        c->content_type = "application/cbor";
        c->type = "com.example.ce";
        c->subject = "ce-1";
        c->sent_ms = now_ms();
        c->sent_wall = wall_ms();
        r = submit(&alice, c->content_type, c->body, c->len,
                   ARGS("ce-specversion: 1.0", "ce-recipient: bob", "ce-type: com.example.ce", "ce-subject: ce-1",
                        "ce-pattern: X"));
        EXPECT_STATUS(r, 202);
        snprintf(c->id, sizeof c->id, "%s", jstr(r.json, "id"));
        c->expires = (long long)json_integer_value(json_object_get(r.json, "expires"));
        ledger_add(&bob, c->id);
    }
    for (i = 0; i < 2 * N_CASES + 1; i++) {
        const hit *first[1];

        WAIT_HITS(&m[i].to->sink, m[i].id, 1, DELIVERY_WAIT_MS);
        sink_find(&m[i].to->sink, m[i].id, first, 1);
        if (first[0]->t_ms - m[i].sent_ms > worst)
            worst = first[0]->t_ms - m[i].sent_ms;
    }
    print_message("slowest of %d messages crossed in %ld ms\n", 2 * N_CASES + 1, worst);
    if (worst > 5000)
        fail_msg("a message took %ld ms from alice's backend to bob's; polling every 50-200 ms", worst);
    /* Late duplicates would show by now. */
    sleep_ms(2000);
    for (i = 0; i < 2 * N_CASES + 1; i++) {
        h = EXPECT_ONCE(&m[i]);
        settle(m[i].id, 1, 1);
    }

    /* The verifier is not a rubber stamp: one changed byte of the body, or another key, and it refuses. */
    h = EXPECT_ONCE(&m[1]);
    {
        blob *b = blob_of(h->body, h->body_len);

        b->data[b->len / 2] ^= 0x01;
        assert_false(signatures_ok(h, m[1].to, b->data, b->len, why, sizeof why));
        assert_false(signatures_ok(h, &bob2, h->body, h->body_len, why, sizeof why));
        assert_true(signatures_ok(h, m[1].to, h->body, h->body_len, why, sizeof why));
    }
    /* Each tenant signs with its own key: bob's webhook does not verify under bobn's. */
    assert_false(verify_v1a(bobn.sign_pk,
                            signed_content(hit_header(h, "webhook-id", NULL), hit_header(h, "webhook-timestamp", NULL),
                                           h->body, h->body_len),
                            strstr(hit_header(h, "webhook-signature", NULL), "v1a,") + 4));
}

/* ==== 2. many at once: each exactly once ==== */

static void
test_many(void **state)
{
    enum { BATCH = 50, SINGLES = 50, ALL = BATCH + SINGLES };
    static msg m[ALL];
    json_t *list = json_array(), *ids;
    const char *body;
    long t0;
    reply r;
    size_t i;
    int distinct, raw;

    (void)state;
    memset(m, 0, sizeof m);
    for (i = 0; i < ALL; i++) {
        char what[64];

        m[i].from = &alice;
        m[i].to = &bob;
        if (i % 3 == 2) {
            binary_body(&m[i], 64 + i);
            m[i].content_type = "application/octet-stream";
        } else {
            snprintf(what, sizeof what, "many #%zu", i);
            text_body(&m[i], what);
            m[i].content_type = "text/plain; charset=utf-8";
        }
        m[i].subject = "many";
    }
    for (i = 0; i < BATCH; i++)
        json_array_append_new(list, msg_json(&m[i]));
    body = dump(json_pack("{s:o}", "messages", list));
    t0 = now_ms();
    r = submit(&alice, "application/json", body, strlen(body), NULL);
    EXPECT_STATUS(r, 202);
    ids = json_object_get(r.json, "messages");
    assert_true(json_is_array(ids));
    assert_int_equal(json_array_size(ids), BATCH);
    for (i = 0; i < BATCH; i++) {
        snprintf(m[i].id, sizeof m[i].id, "%s", jstr(json_array_get(ids, i), "id"));
        m[i].expires = (long long)json_integer_value(json_object_get(json_array_get(ids, i), "expires"));
        m[i].sent_ms = t0;
        m[i].sent_wall = wall_ms();
        ledger_add(&bob, m[i].id);
    }
    for (i = BATCH; i < ALL; i++)
        send_msg(&m[i]);
    for (i = 0; i < ALL; i++) {
        if (ledger_find(m[i].id) != &ledger[nsent - ALL + i])
            fail_msg("message id %s was given twice", m[i].id);
        WAIT_HITS(&bob.sink, m[i].id, 1, DELIVERY_WAIT_MS);
    }
    print_message("%d messages delivered %ld ms after the batch was sent\n", ALL, now_ms() - t0);
    if (now_ms() - t0 > 15000)
        fail_msg("%d messages took %ld ms to cross", ALL, now_ms() - t0);
    sleep_ms(1000);
    distinct = 0;
    raw = 0;
    for (i = 0; i < ALL; i++) {
        int n = sink_count(&bob.sink, m[i].id);

        distinct += n > 0;
        raw += n;
    }
    if (raw != distinct || distinct != ALL)
        fail_msg("%d messages: %d distinct webhook-ids arrived in %d requests", ALL, distinct, raw);
    for (i = 0; i < ALL; i++) {
        EXPECT_ONCE(&m[i]);
        settle(m[i].id, 1, 1);
    }
    WAIT_QUEUE(&bob, 0, -1, 5000);
}

/* ==== 3. retries follow the schedule ==== */

static void
test_retry(void **state)
{
    msg m = {.from = &alice, .to = &bob, .content_type = "text/plain", .subject = "retry-1"};
    msg ra = {.from = &alice, .to = &bob, .content_type = "text/plain", .subject = "retry-after-1"};
    const hit *h[4];
    long long ts[3];
    long gap;
    int i;

    (void)state;
    RULE(&bob.sink, "retry-1", 204, 500, 500);
    /* A 503 with Retry-After: 3 overrides the 1 s of the schedule. */
    RULE(&bob.sink, "retry-after-1", 204, 503);
    sink_retry_after(&bob.sink, "retry-after-1", "3");
    text_body(&m, "retried");
    text_body(&ra, "retried after");
    send_msg(&m);
    send_msg(&ra);
    WAIT_HITS(&bob.sink, m.id, 3, DELIVERY_WAIT_MS + 10000);
    WAIT_HITS(&bob.sink, ra.id, 2, DELIVERY_WAIT_MS + 10000);
    WAIT_QUEUE(&bob, 0, -1, 5000);
    assert_int_equal(sink_find(&bob.sink, m.id, h, 4), 3);
    assert_int_equal(h[0]->status, 500);
    assert_int_equal(h[1]->status, 500);
    assert_int_equal(h[2]->status, 204);
    for (i = 0; i < 3; i++) {
        /* Same webhook-id and ce-id each time (so the backend can dedupe), each signed afresh. */
        EXPECT_WEBHOOK(h[i], &m);
        ts[i] = strtoll(hit_header(h[i], "webhook-timestamp", NULL), NULL, 10);
    }
    for (i = 1; i < 3; i++) {
        long lo = schedule_s[i - 1] * 800L, hi = schedule_s[i - 1] * 1200L + CLAIM_IDLE_MS + 800;

        gap = h[i]->t_ms - h[i - 1]->t_ms;
        print_message("retry %d came %ld ms after the attempt before (schedule %d s)\n", i, gap, schedule_s[i - 1]);
        if (gap < lo || gap > hi)
            fail_msg("retry %d came %ld ms after the attempt before; schedule %d s +-20%% allows %ld-%ld ms", i, gap,
                     schedule_s[i - 1], lo, hi);
        if (ts[i] < ts[i - 1])
            fail_msg("webhook-timestamp went back from %lld to %lld", ts[i - 1], ts[i]);
    }
    if (ts[2] <= ts[0])
        fail_msg("webhook-timestamp %lld on the first attempt and %lld on the third, %ld ms later: not fresh", ts[0],
                 ts[2], h[2]->t_ms - h[0]->t_ms);
    settle(m.id, 3, 1);

    assert_int_equal(sink_find(&bob.sink, ra.id, h, 4), 2);
    assert_int_equal(h[0]->status, 503);
    assert_int_equal(h[1]->status, 204);
    EXPECT_WEBHOOK(h[0], &ra);
    EXPECT_WEBHOOK(h[1], &ra);
    gap = h[1]->t_ms - h[0]->t_ms;
    print_message("after a 503 with Retry-After: 3, the retry came %ld ms later\n", gap);
    if (gap < 2950 || gap > 3000 + CLAIM_IDLE_MS + 800)
        fail_msg("after a 503 with Retry-After: 3, the retry came %ld ms later", gap);
    settle(ra.id, 2, 1);
}

/* ==== 4. dead letters, and their replay ==== */

/* Waits for message id to be in t's dead letters; the entry. */
static json_t *
wait_dead_at(const tenant *t, const char *id, long ms, int line)
{
    long t0 = now_ms();
    json_t *d;

    while ((d = dead_letter(t, id)) == NULL) {
        if (now_ms() - t0 > ms)
            fail_msg("line %d: message %s is not among %s's dead letters after %ld ms", line, id, t->slug, ms);
        sleep_ms(50);
    }
    print_message("dead letter: %s\n", dump(json_incref(d)));
    return d;
}

#define WAIT_DEAD(t, id, ms) wait_dead_at((t), (id), (ms), __LINE__)

static void
replay(const tenant *t, const json_t *d, long want)
{
    char path[256];

    snprintf(path, sizeof path, "/v1/admin/tenants/%s/dead/%s/replay", t->slug, jstr(d, "id"));
    EXPECT_STATUS(admin(t->g, "POST", path), want);
}

static void
test_dead_letter(void **state)
{
    msg m = {.from = &alice, .to = &bob, .content_type = "text/plain", .subject = "dead-1"};
    const hit *h[16];
    json_t *d;
    long waiting, dead, dead0;
    size_t before = dead_count(&bob);
    int i, n;

    (void)state;
    queue_of(&bob, &waiting, &dead0);
    assert_int_equal(dead0, (long)before);
    sink_rule(&bob.sink, "dead-1", 500, NULL, 0);
    text_body(&m, "to the dead letters");
    send_msg(&m);
    WAIT_HITS(&bob.sink, m.id, MAX_ATTEMPTS, DELIVERY_WAIT_MS + 10000);
    d = WAIT_DEAD(&bob, m.id, 10000);
    assert_int_equal(json_integer_value(json_object_get(d, "last_status")), 500);
    assert_string_equal(jstr(d, "peer"), "alice");
    assert_true(strlen(jstr(d, "reason")) > 0);
    assert_true(strlen(jstr(d, "id")) > 0);
    queue_of(&bob, &waiting, &dead);
    assert_int_equal(waiting, 0);
    assert_int_equal(dead, dead0 + 1);

    /* Replayed while the backend still fails: the attempts start again from zero, then it is dead again. */
    replay(&bob, d, 200);
    WAIT_HITS(&bob.sink, m.id, 2 * MAX_ATTEMPTS, DELIVERY_WAIT_MS + 10000);
    d = WAIT_DEAD(&bob, m.id, 10000);
    assert_int_equal(json_integer_value(json_object_get(d, "last_status")), 500);
    assert_int_equal(dead_count(&bob), before + 1);
    n = sink_find(&bob.sink, m.id, h, 16);
    assert_int_equal(n, 2 * MAX_ATTEMPTS);
    for (i = 0; i < n; i++) {
        assert_int_equal(h[i]->status, 500);
        EXPECT_WEBHOOK(h[i], &m);
    }

    /* The backend is fixed; the operator replays: delivered once more, and the dead letter is gone. */
    sink_rule(&bob.sink, "dead-1", 204, NULL, 0);
    replay(&bob, d, 200);
    WAIT_HITS(&bob.sink, m.id, 2 * MAX_ATTEMPTS + 1, DELIVERY_WAIT_MS);
    WAIT_QUEUE(&bob, 0, dead0, 5000);
    assert_null(dead_letter(&bob, m.id));
    assert_int_equal(dead_count(&bob), before);
    n = sink_find(&bob.sink, m.id, h, 16);
    assert_int_equal(n, 2 * MAX_ATTEMPTS + 1);
    assert_int_equal(h[n - 1]->status, 204);
    EXPECT_WEBHOOK(h[n - 1], &m);
    /* A replayed dead letter is no longer one: a second replay finds nothing. */
    replay(&bob, d, 404);
    settle(m.id, 2 * MAX_ATTEMPTS + 1, 1);
}

/* ==== 5. 410 disables the backend until an operator enables it ==== */

static void
test_gone(void **state)
{
    msg m[3];
    char path[256];
    long t0;
    int i;

    (void)state;
    memset(m, 0, sizeof m);
    for (i = 0; i < 3; i++) {
        char what[32];

        m[i].from = &alice;
        m[i].to = &bob;
        m[i].content_type = "text/plain";
        snprintf(what, sizeof what, "gone %d", i);
        text_body(&m[i], what);
    }
    m[0].subject = "gone-1";
    m[1].subject = "gone-2";
    m[2].subject = "gone-3";
    RULE(&bob.sink, "gone-1", 204, 410);
    assert_string_equal(backend_status(&bob), "active");
    send_msg(&m[0]);
    WAIT_HITS(&bob.sink, m[0].id, 1, DELIVERY_WAIT_MS);
    t0 = now_ms();
    while (strcmp(backend_status(&bob), "disabled") != 0) {
        if (now_ms() - t0 > 5000)
            fail_msg("bob's backend is \"%s\" 5 s after it answered 410", backend_status(&bob));
        sleep_ms(50);
    }
    send_msg(&m[1]);
    send_msg(&m[2]);
    /* Received and waiting, but not attempted: the 410'd one and the two new ones. */
    WAIT_QUEUE(&bob, 3, -1, 5000);
    sleep_ms(2500);
    for (i = 0; i < 3; i++)
        if (sink_count(&bob.sink, m[i].id) != (i == 0))
            fail_msg("message %d was attempted %d times while the backend was disabled", i,
                     sink_count(&bob.sink, m[i].id) - (i == 0));
    WAIT_QUEUE(&bob, 3, -1, 100);

    snprintf(path, sizeof path, "/v1/admin/tenants/bob/backends/%s/enable", bob.backend);
    EXPECT_STATUS(admin(&gw_b, "POST", path), 200);
    assert_string_equal(backend_status(&bob), "active");
    WAIT_HITS(&bob.sink, m[0].id, 2, DELIVERY_WAIT_MS);
    WAIT_HITS(&bob.sink, m[1].id, 1, DELIVERY_WAIT_MS);
    WAIT_HITS(&bob.sink, m[2].id, 1, DELIVERY_WAIT_MS);
    WAIT_QUEUE(&bob, 0, -1, 5000);
    EXPECT_ONCE(&m[1]);
    EXPECT_ONCE(&m[2]);
    {
        const hit *h[4];

        assert_int_equal(sink_find(&bob.sink, m[0].id, h, 4), 2);
        assert_int_equal(h[0]->status, 410);
        assert_int_equal(h[1]->status, 204);
        EXPECT_WEBHOOK(h[1], &m[0]);
    }
    settle(m[0].id, 2, 1);
    settle(m[1].id, 1, 1);
    settle(m[2].id, 1, 1);
}

/* ==== 6. a message that expires while it waits for a retry ==== */

static void
test_expiry(void **state)
{
    msg m = {.from = &alice, .to = &bob, .content_type = "text/plain", .subject = "expire-1", .ttl = 2};
    const hit *h[8];
    json_t *d;
    long waiting, dead0;
    int i, n;

    (void)state;
    queue_of(&bob, &waiting, &dead0);
    /* Should a retry come after all, it would be acked: the 2xx that must not happen would show. */
    RULE(&bob.sink, "expire-1", 204, 500, 500);
    text_body(&m, "short-lived");
    send_msg(&m);
    WAIT_HITS(&bob.sink, m.id, 1, DELIVERY_WAIT_MS);
    d = WAIT_DEAD(&bob, m.id, 15000);
    if (strstr(jstr(d, "reason"), "expir") == NULL)
        fail_msg("dead letter of an expired message with reason \"%s\"", jstr(d, "reason"));
    assert_string_equal(jstr(d, "peer"), "alice");
    n = sink_find(&bob.sink, m.id, h, 8);
    assert_true(n >= 1 && n <= 2);
    for (i = 0; i < n; i++) {
        assert_int_equal(h[i]->status, 500);
        EXPECT_WEBHOOK(h[i], &m);
        if ((long long)h[i]->wall >= m.expires)
            fail_msg("attempt %d came %lld ms after the message expired", i, (long long)h[i]->wall - m.expires);
    }
    WAIT_QUEUE(&bob, 0, dead0 + 1, 2000);
    settle(m.id, n, 0);
}

/* ==== 8. one tenant's messages never reach another's backend ==== */

static void
test_isolation(void **state)
{
    enum { EACH = 4 };
    msg m[2 * EACH + 2];
    int i, j;

    (void)state;
    memset(m, 0, sizeof m);
    for (i = 0; i < 2 * EACH; i++) {
        char what[32];

        m[i].from = &alice;
        m[i].to = i % 2 ? &bob2 : &bob;
        m[i].content_type = "text/plain";
        m[i].subject = "isolation";
        snprintf(what, sizeof what, "for %s #%d", m[i].to->slug, i);
        text_body(&m[i], what);
        send_msg(&m[i]);
    }
    /* And the other way, from gateway b to alice on gateway a. */
    for (i = 2 * EACH; i < 2 * EACH + 2; i++) {
        m[i].from = i % 2 ? &bob2 : &bob;
        m[i].to = &alice;
        m[i].content_type = "text/plain";
        m[i].subject = "reply";
        text_body(&m[i], "a reply to alice");
        send_msg(&m[i]);
    }
    for (i = 0; i < 2 * EACH + 2; i++)
        WAIT_HITS(&m[i].to->sink, m[i].id, 1, DELIVERY_WAIT_MS);
    sleep_ms(500);
    for (i = 0; i < 2 * EACH + 2; i++) {
        EXPECT_ONCE(&m[i]);
        for (j = 0; j < (int)(sizeof tenants / sizeof tenants[0]); j++)
            if (tenants[j] != m[i].to && sink_count(&tenants[j]->sink, m[i].id) != 0)
                fail_msg("message %s for %s reached %s's backend", m[i].id, m[i].to->slug, tenants[j]->slug);
        settle(m[i].id, 1, 1);
    }
}

/* ==== 7. gateway b killed while an attempt is in flight ==== */

static void
test_killed(void **state)
{
    msg m = {.from = &alice, .to = &bob, .content_type = "text/plain", .subject = "killed-1"};
    msg later = {.from = &alice, .to = &bob, .content_type = "text/plain", .subject = "while-down"};
    const hit *h[4];
    long t_claim, t_restart, t0;
    pid_t redis, failed;
    int st = 0, n;

    (void)state;
    RULE(&bob.sink, "killed-1", 204, HANG);
    text_body(&m, "in flight when the gateway died");
    send_msg(&m);
    WAIT_HITS(&bob.sink, m.id, 1, DELIVERY_WAIT_MS);
    assert_int_equal(sink_find(&bob.sink, m.id, h, 4), 1);
    t_claim = h[0]->t_ms;
    assert_int_equal(sink_hanging(&bob.sink), 1);
    assert_int_equal(kill(gw_b.pid, SIGKILL), 0);
    /* Past delivery.timeout_ms the attempt would have ended as a plain failure, and this test would test nothing. */
    if (now_ms() - t_claim >= DELIVERY_TIMEOUT_MS)
        fail_msg("gateway b was killed %ld ms into the attempt, after delivery.timeout_ms", now_ms() - t_claim);
    assert_int_equal(waitpid(gw_b.pid, &st, 0), gw_b.pid);
    gw_b.pid = 0;
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    sink_release(&bob.sink);

    /* Store and forward: alice's gateway takes a message while bob's is down. */
    text_body(&later, "sent while bob's gateway was down");
    send_msg(&later);

    /*
     * The killed gateway's redis-server outlives it and still holds the data
     * directory's lock: a new gateway must refuse to start a second server on
     * the same AOF, and say which process to stop.
     */
    redis = redis_of(&gw_b);
    if (redis > 0) {
        blob *before = slurp(gw_b.log), *after;
        char pid_text[32];
        const char *said;

        failed = spawn_serve(&gw_b);
        t0 = now_ms();
        while (waitpid(failed, &st, WNOHANG) == 0) {
            if (now_ms() - t0 > START_TIMEOUT_MS) {
                kill(failed, SIGKILL);
                waitpid(failed, &st, 0);
                fail_msg("a gateway started beside the orphaned redis-server %ld", (long)redis);
            }
            sleep_ms(20);
        }
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
        after = slurp(gw_b.log);
        said = text_of(after) + (before != NULL ? before->len : 0);
        snprintf(pid_text, sizeof pid_text, "pid %ld ", (long)redis);
        if (strstr(said, pid_text) == NULL)
            fail_msg("the refusal to start does not name redis-server %ld: %s", (long)redis, said);
        stop_pid(redis, SIGTERM, 10000);
        assert_false(alive(redis));
    } else {
        print_message("the killed gateway's redis-server did not outlive it\n");
    }
    t_restart = now_ms();
    start_gateway(&gw_b);

    /* Claimed by a dead process: back once the lease ends, with the same webhook-id. */
    WAIT_HITS(&bob.sink, m.id, 2, LEASE_MS + DELIVERY_WAIT_MS);
    assert_int_equal(sink_find(&bob.sink, m.id, h, 4), 2);
    print_message("delivered again %ld ms after the attempt the kill cut (lease %d ms)\n", h[1]->t_ms - t_claim,
                  LEASE_MS);
    assert_int_equal(h[0]->status, HANG);
    assert_int_equal(h[1]->status, 204);
    /* Not before: a claim still leased may belong to a live worker that is only slow. */
    if (h[1]->t_ms - t_claim < LEASE_MS - 500)
        fail_msg("delivered again %ld ms after the cut attempt, before the lease of %d ms ended", h[1]->t_ms - t_claim,
                 LEASE_MS);
    EXPECT_WEBHOOK(h[0], &m);
    EXPECT_WEBHOOK(h[1], &m);
    /*
     * Polled from alice's outbox once bob's gateway is back; allowing for the
     * 30 s poll lease the killed process may have held, should it have died
     * in the middle of a poll.
     */
    WAIT_HITS(&bob.sink, later.id, 1, 30000 + DELIVERY_WAIT_MS);
    {
        const hit *first[1];

        sink_find(&bob.sink, later.id, first, 1);
        print_message("the message sent while gateway b was down arrived %ld ms after its restart\n",
                      first[0]->t_ms - t_restart);
    }
    WAIT_QUEUE(&bob, 0, -1, 5000);
    sleep_ms(2000);
    n = sink_count(&bob.sink, m.id);
    if (n != 2)
        fail_msg("message %s reached the backend %d times after it was acked", m.id, n - 2);
    EXPECT_ONCE(&later);
    settle(m.id, 2, 1);
    settle(later.id, 1, 1);
}

/* ==== 9. SIGTERM, and the whole run against the ledger ==== */

static void
test_stop(void **state)
{
    msg m = {.from = &alice, .to = &bob, .content_type = "text/plain", .subject = "at-sigterm"};
    long ms_b, ms_a;
    size_t i, t, unsettled = 0;

    (void)state;
    /* An attempt still in flight at SIGTERM: the drain waits for it, up to delivery.timeout_ms. */
    RULE(&bob.sink, "at-sigterm", 204, HANG);
    text_body(&m, "in flight at SIGTERM");
    send_msg(&m);
    WAIT_HITS(&bob.sink, m.id, 1, DELIVERY_WAIT_MS);
    ms_b = stop_gateway(&gw_b);
    sink_release(&bob.sink);
    ms_a = stop_gateway(&gw_a);
    print_message("SIGTERM to exit: gateway b %ld ms (an attempt in flight), gateway a %ld ms\n", ms_b, ms_a);
    if (ms_b > DELIVERY_TIMEOUT_MS + 1000 + 3000)
        fail_msg("gateway b took %ld ms to drain with delivery.timeout_ms %d", ms_b, DELIVERY_TIMEOUT_MS);
    assert_int_equal(redis_of(&gw_a), 0);
    assert_int_equal(redis_of(&gw_b), 0);
    settle(m.id, 1, 0);

    /* Nothing can arrive any more: every request any backend ever got, against the ledger. */
    for (t = 0; t < sizeof tenants / sizeof tenants[0]; t++) {
        sink *s = &tenants[t]->sink;
        int n = sink_total(s), k;

        assert_int_equal(s->dropped, 0);
        for (k = 0; k < n; k++) {
            const hit *h = sink_at(s, k);
            sent *e = ledger_find(h->wid);

            if (e == NULL)
                fail_msg("%s's backend got webhook-id \"%s\", which no test sent", s->name, h->wid);
            if (e->to != tenants[t])
                fail_msg("message %s for %s reached %s's backend", e->id, e->to->slug, s->name);
        }
    }
    for (i = 0; i < nsent; i++) {
        const hit *h[16];
        int n = sink_find(&ledger[i].to->sink, ledger[i].id, h, 16), acks = 0, k;

        /* A test that failed left its messages unsettled; its own failure says why. */
        if (ledger[i].hits < 0) {
            unsettled++;
            continue;
        }
        for (k = 0; k < n && k < 16; k++)
            acks += h[k]->status >= 200 && h[k]->status <= 299;
        if (n != ledger[i].hits || acks != ledger[i].acks)
            fail_msg("message %s for %s: %d attempts and %d acks by the end, %d and %d when its test ended",
                     ledger[i].id, ledger[i].to->slug, n, acks, ledger[i].hits, ledger[i].acks);
    }
    print_message("%zu messages checked against what the backends received (%zu left unsettled by failed tests)\n",
                  nsent - unsettled, unsettled);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_patterns, test_teardown),
        cmocka_unit_test_teardown(test_many, test_teardown),
        cmocka_unit_test_teardown(test_retry, test_teardown),
        cmocka_unit_test_teardown(test_dead_letter, test_teardown),
        cmocka_unit_test_teardown(test_gone, gone_teardown),
        cmocka_unit_test_teardown(test_expiry, test_teardown),
        /* Before the kill: a poller killed mid-poll holds its lease for 30 s, which would stall later sends. */
        cmocka_unit_test_teardown(test_isolation, test_teardown),
        cmocka_unit_test_teardown(test_killed, test_teardown),
        cmocka_unit_test_teardown(test_stop, test_teardown),
    };
    const char *b = getenv("NG_BIN");

    if (b == NULL) {
        fprintf(stderr, "NG_BIN is not set: run through make test\n");
        return 1;
    }
    snprintf(ng_bin, sizeof ng_bin, "%s", b);
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return cmocka_run_group_tests_name("e2e", tests, group_setup, group_teardown);
}

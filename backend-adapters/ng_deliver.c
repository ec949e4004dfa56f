/*
 * The webhook delivery engine (ng_deliver.h): jobs wait in per-endpoint
 * FIFOs, endpoints with room take turns on a ready ring, and started jobs
 * run as easy handles of one multi handle. A finished job goes to the done
 * list, which ng_deliver_run hands to the callback after libcurl is left
 * alone, so a callback may submit.
 */
#include "ng_deliver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "ng_webhook.h"

enum {
    KEY_MAX = 300,        /* "https://" host ":" port */
    TIME_BYTES = 32,      /* 2026-11-24T10:00:00.123Z */
    RETRY_AFTER_MAX = 64, /* characters of a Retry-After value kept */
    ADDR_TEXT = INET6_ADDRSTRLEN,
    FIRST_BUCKETS = 64,
    IDLE_MAX = 64, /* easy handles kept for reuse (each holds its buffers) */
};

/* An address as compared: IPv4 in a[0..3], or IPv6 (v4-mapped ones are turned into IPv4). */
struct ip {
    int v4;
    uint8_t a[16];
};

struct cidr {
    struct ip ip;
    unsigned bits;
};

struct endpoint;

struct job {
    struct job *next;                /* in its endpoint's FIFO, or in the done list */
    struct job *run_prev, *run_next; /* in flight */
    struct ng_deliver *d;
    struct endpoint *ep; /* NULL for a job refused at submit */
    CURL *easy;
    struct curl_slist *headers;
    char *url;
    char *id;
    uint8_t *body;
    size_t body_len;
    ng_deliver_keys keys;
    /* What the transfer saw. */
    struct timespec started;
    int refused, opened; /* connects refused by the guard, sockets opened */
    char refused_addr[ADDR_TEXT];
    char retry_after[RETRY_AFTER_MAX];
    size_t reply_bytes;
    char errbuf[CURL_ERROR_SIZE];
    ng_deliver_result r;
};

struct endpoint {
    struct endpoint *hnext;      /* hash chain */
    struct endpoint *ready_next; /* the ready ring */
    int in_ready;
    unsigned in_flight;
    struct job *head, *tail; /* waiting */
    uint64_t hash;
    char key[];
};

struct ng_deliver {
    CURLM *multi;
    unsigned timeout_ms, per_endpoint, max_in_flight;
    size_t max_queued;
    struct cidr *allow;
    size_t allow_len;
    struct endpoint **buckets;
    size_t n_buckets, n_endpoints;
    struct endpoint *ready_head, *ready_tail; /* endpoints with jobs waiting and room */
    struct job *done_head, *done_tail;
    struct job *running; /* in flight, so that free can abort them */
    CURL **idle;         /* easy handles kept for reuse */
    size_t n_idle, idle_cap;
    unsigned in_flight;
    size_t queued;
    int in_run;
    atomic_int woken;
};

/* ------------------------------------------------------------------ */
/* Addresses                                                           */

static int
ip_from_v6(struct ip *ip, const uint8_t a[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    memset(ip, 0, sizeof *ip);
    if (memcmp(a, mapped, sizeof mapped) == 0) {
        ip->v4 = 1;
        memcpy(ip->a, a + 12, 4);
    } else {
        memcpy(ip->a, a, 16);
    }
    return 0;
}

static int
ip_parse(const char *s, struct ip *ip)
{
    uint8_t a[16];

    memset(ip, 0, sizeof *ip);
    if (s == NULL)
        return -1;
    if (inet_pton(AF_INET, s, a) == 1) {
        ip->v4 = 1;
        memcpy(ip->a, a, 4);
        return 0;
    }
    if (inet_pton(AF_INET6, s, a) == 1)
        return ip_from_v6(ip, a);
    return -1;
}

static int
v4_special(const uint8_t a[4])
{
    return a[0] == 0 ||                            /* "this network", 0.0.0.0 */
           a[0] == 10 || a[0] == 127 ||            /* private, loopback */
           (a[0] == 100 && (a[1] & 0xc0) == 64) || /* CGNAT 100.64/10 */
           (a[0] == 169 && a[1] == 254) ||         /* link-local */
           (a[0] == 172 && (a[1] & 0xf0) == 16) || /* private 172.16/12 */
           (a[0] == 192 && a[1] == 168) ||         /* private */
           a[0] >= 224;                            /* multicast, reserved, broadcast */
}

static int
v6_special(const uint8_t a[16])
{
    static const uint8_t zero[16];
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b};

    if (memcmp(a, zero, 15) == 0 && a[15] <= 1) /* ::, ::1 */
        return 1;
    if ((a[0] & 0xfe) == 0xfc || a[0] == 0xff) /* unique local, multicast */
        return 1;
    if (a[0] == 0xfe && (a[1] & 0x80) == 0x80) /* link-local fe80::/10, site-local fec0::/10 */
        return 1;
    /* Forms that reach an IPv4 address: compatible, NAT64 (a gateway translates it), 6to4. */
    if (memcmp(a, zero, 12) == 0 || memcmp(a, nat64, 12) == 0)
        return v4_special(a + 12);
    if (a[0] == 0x20 && a[1] == 0x02)
        return v4_special(a + 2);
    return 0;
}

static int
ip_special(const struct ip *ip)
{
    return ip->v4 ? v4_special(ip->a) : v6_special(ip->a);
}

static int
cidr_parse(const char *s, struct cidr *c)
{
    char text[INET6_ADDRSTRLEN + 8];
    const char *slash = s != NULL ? strchr(s, '/') : NULL;
    size_t len = s != NULL ? strlen(s) : 0;
    unsigned bits = 0, max;
    const char *p;

    if (len == 0 || len >= sizeof text)
        return -1;
    memcpy(text, s, len + 1);
    if (slash != NULL) {
        text[slash - s] = '\0';
        p = slash + 1;
        if (*p == '\0' || strlen(p) > 3)
            return -1;
        for (; *p != '\0'; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            bits = bits * 10 + (unsigned)(*p - '0');
        }
    }
    if (ip_parse(text, &c->ip) != 0)
        return -1;
    /* A mapped network ("::ffff:10.0.0.0/104") was turned into IPv4: its prefix is 96 bits shorter. */
    max = c->ip.v4 ? 32 : 128;
    if (slash != NULL && c->ip.v4 && strchr(text, ':') != NULL) {
        if (bits < 96)
            return -1;
        bits -= 96;
    }
    if (slash == NULL)
        bits = max;
    if (bits > max)
        return -1;
    c->bits = bits;
    return 0;
}

static int
cidr_covers(const struct cidr *c, const struct ip *ip)
{
    unsigned whole = c->bits / 8, rest = c->bits % 8;

    if (c->ip.v4 != ip->v4)
        return 0;
    if (memcmp(c->ip.a, ip->a, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    return ((c->ip.a[whole] ^ ip->a[whole]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

int
ng_deliver_address_blocked(const char *addr, const char *const *allow, size_t allow_len)
{
    struct cidr c;
    struct ip ip;
    size_t i;

    if (ip_parse(addr, &ip) != 0)
        return 1;
    if (!ip_special(&ip))
        return 0;
    for (i = 0; allow != NULL && i < allow_len; i++)
        if (cidr_parse(allow[i], &c) == 0 && cidr_covers(&c, &ip))
            return 0;
    return 1;
}

static int
blocked(const struct ng_deliver *d, const struct ip *ip)
{
    size_t i;

    if (!ip_special(ip))
        return 0;
    for (i = 0; i < d->allow_len; i++)
        if (cidr_covers(&d->allow[i], ip))
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static double
elapsed_s(const struct timespec *since)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) + (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

static uint64_t
clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static char *
dup_str(const char *s)
{
    size_t len = strlen(s);
    char *c = malloc(len + 1);

    if (c != NULL)
        memcpy(c, s, len + 1);
    return c;
}

static int
token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int
has_control(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return 1;
    return 0;
}

static int
format_time(char out[TIME_BYTES], int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    size_t n;

    if (ms < 0 || gmtime_r(&t, &tm) == NULL || tm.tm_year > 9999 - 1900)
        return -1;
    n = strftime(out, TIME_BYTES, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n == 0 || n + 6 > TIME_BYTES)
        return -1;
    snprintf(out + n, TIME_BYTES - n, ".%03dZ", (int)(ms % 1000));
    return 0;
}

/* Appends "name: value" to list. */
static struct curl_slist *
add_header(struct curl_slist *list, const char *name, const char *value, int *failed)
{
    size_t nlen = strlen(name), vlen = strlen(value);
    struct curl_slist *next;
    char *line;

    if (*failed)
        return list;
    line = malloc(nlen + 2 + vlen + 1);
    if (line == NULL) {
        *failed = 1;
        return list;
    }
    memcpy(line, name, nlen);
    /* libcurl drops "name:" with nothing after it; "name;" is how it sends an empty value. */
    memcpy(line + nlen, vlen > 0 ? ": " : ";", vlen > 0 ? 2 : 1);
    memcpy(line + nlen + (vlen > 0 ? 2 : 1), value, vlen + 1);
    next = curl_slist_append(list, line);
    free(line);
    if (next == NULL) {
        *failed = 1;
        return list;
    }
    return next;
}

/* The value percent-encoded as the CloudEvents HTTP binding says, which also keeps CR and LF out; malloc'd. */
static char *
ce_encode(const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t vlen = strlen(value), i, o = 0;
    char *out = malloc(3 * vlen + 1);

    if (out == NULL)
        return NULL;
    for (i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '%') {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return out;
}

/* ------------------------------------------------------------------ */
/* Jobs and endpoints                                                  */

void
ng_deliver_keys_wipe(ng_deliver_keys *k)
{
    sodium_memzero(k, sizeof *k);
}

void
ng_deliver_keys_copy(ng_deliver_keys *k, const ng_deliver_job *job)
{
    memset(k, 0, sizeof *k);
    /* As in ng_webhook_keys: NULL or length 0 is no key. */
    if (job->secret != NULL && job->secret_len <= sizeof k->secret) {
        memcpy(k->secret, job->secret, job->secret_len);
        k->secret_len = job->secret_len;
    }
    if (job->secret_prev != NULL && job->secret_prev_len <= sizeof k->secret_prev) {
        memcpy(k->secret_prev, job->secret_prev, job->secret_prev_len);
        k->secret_prev_len = job->secret_prev_len;
    }
    if (job->sk != NULL) {
        memcpy(k->sk, job->sk, sizeof k->sk);
        k->has_sk = 1;
    }
    if (job->sk_prev != NULL) {
        memcpy(k->sk_prev, job->sk_prev, sizeof k->sk_prev);
        k->has_sk_prev = 1;
    }
}

ng_err
ng_deliver_keys_sign(ng_deliver_keys *k, char out[NG_WEBHOOK_SIGNERS_BYTES], const char *id, int64_t timestamp,
                     const uint8_t *body, size_t body_len)
{
    ng_webhook_signers s = {k->secret,
                            k->secret_len,
                            k->secret_prev,
                            k->secret_prev_len,
                            k->has_sk ? k->sk : NULL,
                            k->has_sk_prev ? k->sk_prev : NULL};
    ng_err err = ng_webhook_sign_all(out, &s, id, timestamp, body, body_len);

    ng_deliver_keys_wipe(k);
    return err;
}

static void
job_free(struct job *j)
{
    if (j == NULL)
        return;
    ng_deliver_keys_wipe(&j->keys);
    /* The body is a message in clear. */
    if (j->body != NULL)
        sodium_memzero(j->body, j->body_len);
    free(j->body);
    free(j->url);
    free(j->id);
    curl_slist_free_all(j->headers);
    free(j);
}

static void
done_push(struct ng_deliver *d, struct job *j)
{
    j->next = NULL;
    if (d->done_tail != NULL)
        d->done_tail->next = j;
    else
        d->done_head = j;
    d->done_tail = j;
}

static uint64_t
hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static struct endpoint *
endpoint_get(struct ng_deliver *d, const char *key)
{
    uint64_t h = hash_key(key);
    struct endpoint *e;
    size_t len;

    for (e = d->buckets[h % d->n_buckets]; e != NULL; e = e->hnext)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    if (d->n_endpoints >= d->n_buckets) {
        size_t n = d->n_buckets * 2, i;
        struct endpoint **b = calloc(n, sizeof *b);

        if (b != NULL) {
            for (i = 0; i < d->n_buckets; i++) {
                while (d->buckets[i] != NULL) {
                    e = d->buckets[i];
                    d->buckets[i] = e->hnext;
                    e->hnext = b[e->hash % n];
                    b[e->hash % n] = e;
                }
            }
            free(d->buckets);
            d->buckets = b;
            d->n_buckets = n;
        }
    }
    len = strlen(key);
    e = calloc(1, sizeof *e + len + 1);
    if (e == NULL)
        return NULL;
    memcpy(e->key, key, len + 1);
    e->hash = h;
    e->hnext = d->buckets[h % d->n_buckets];
    d->buckets[h % d->n_buckets] = e;
    d->n_endpoints++;
    return e;
}

/* Forgets an endpoint with nothing in flight or waiting, so that the table does not only grow. */
static void
endpoint_release(struct ng_deliver *d, struct endpoint *e)
{
    struct endpoint **p;

    if (e->in_flight > 0 || e->head != NULL || e->in_ready)
        return;
    for (p = &d->buckets[e->hash % d->n_buckets]; *p != NULL; p = &(*p)->hnext) {
        if (*p == e) {
            *p = e->hnext;
            d->n_endpoints--;
            free(e);
            return;
        }
    }
}

static void
ready_push(struct ng_deliver *d, struct endpoint *e)
{
    if (e->in_ready || e->head == NULL || e->in_flight >= d->per_endpoint)
        return;
    e->in_ready = 1;
    e->ready_next = NULL;
    if (d->ready_tail != NULL)
        d->ready_tail->ready_next = e;
    else
        d->ready_head = e;
    d->ready_tail = e;
}

static struct endpoint *
ready_pop(struct ng_deliver *d)
{
    struct endpoint *e = d->ready_head;

    if (e == NULL)
        return NULL;
    d->ready_head = e->ready_next;
    if (d->ready_head == NULL)
        d->ready_tail = NULL;
    e->in_ready = 0;
    e->ready_next = NULL;
    return e;
}

/*
 * The endpoint key of url, and the URL as libcurl normalised it. 0, or -1
 * for a URL that does not parse, -2 for another scheme, -3 for no memory.
 */
static int
parse_url(const char *url, char **norm, char key[KEY_MAX])
{
    char *scheme = NULL, *host = NULL, *port = NULL;
    CURLU *u = curl_url();
    CURLUcode uc;
    int rc = -1, n;
    size_t i;

    *norm = NULL;
    if (u == NULL)
        return -3;
    uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc == CURLUE_OUT_OF_MEMORY)
        rc = -3;
    if (uc != CURLUE_OK)
        goto out;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
        goto out;
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        rc = -2;
        goto out;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, norm, 0) != CURLUE_OK)
        goto out;
    for (i = 0; host[i] != '\0'; i++)
        if (host[i] >= 'A' && host[i] <= 'Z')
            host[i] = (char)(host[i] - 'A' + 'a');
    n = snprintf(key, KEY_MAX, "%s://%s:%s", scheme, host, port);
    if (n > 0 && n < KEY_MAX)
        rc = 0;
out:
    if (rc != 0 && *norm != NULL) {
        curl_free(*norm);
        *norm = NULL;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

/* ------------------------------------------------------------------ */
/* libcurl callbacks                                                   */

/* The address curl is about to connect to, as bytes in ss (NULL if not IPv4 or IPv6). */
static const void *
sock_raw(const struct curl_sockaddr *a, struct sockaddr_storage *ss)
{
    if (a->addrlen > sizeof *ss)
        return NULL;
    memset(ss, 0, sizeof *ss);
    memcpy(ss, &a->addr, a->addrlen);
    if (a->family == AF_INET && a->addrlen >= sizeof(struct sockaddr_in))
        return &((struct sockaddr_in *)ss)->sin_addr;
    if (a->family == AF_INET6 && a->addrlen >= sizeof(struct sockaddr_in6))
        return &((struct sockaddr_in6 *)ss)->sin6_addr;
    return NULL;
}

static curl_socket_t
open_allowed(const struct curl_sockaddr *a)
{
#ifdef SOCK_CLOEXEC
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
#else
    return socket(a->family, a->socktype, a->protocol);
#endif
}

static void
note_refused(char *out, size_t cap, int family, const void *raw)
{
    if (raw == NULL || inet_ntop(family, raw, out, (socklen_t)cap) == NULL)
        snprintf(out, cap, "of family %d", family);
}

static curl_socket_t
open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct job *j = clientp;
    struct sockaddr_storage ss;
    const void *raw = purpose == CURLSOCKTYPE_IPCXN ? sock_raw(a, &ss) : NULL;
    struct ip ip;

    memset(&ip, 0, sizeof ip);
    if (raw != NULL && a->family == AF_INET) {
        ip.v4 = 1;
        memcpy(ip.a, raw, 4);
    } else if (raw != NULL) {
        ip_from_v6(&ip, raw);
    }
    if (raw == NULL || blocked(j->d, &ip)) {
        j->refused++;
        note_refused(j->refused_addr, sizeof j->refused_addr, a->family, raw);
        return CURL_SOCKET_BAD;
    }
    j->opened++;
    return open_allowed(a);
}

static curl_socket_t
guard_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    ng_deliver_guard *g = clientp;
    struct sockaddr_storage ss;
    const void *raw = purpose == CURLSOCKTYPE_IPCXN ? sock_raw(a, &ss) : NULL;
    char text[INET6_ADDRSTRLEN] = "";

    if (raw == NULL || inet_ntop(a->family, raw, text, sizeof text) == NULL ||
        ng_deliver_address_blocked(text, g->allow, g->allow_len)) {
        g->refused = 1;
        note_refused(g->refused_addr, sizeof g->refused_addr, a->family, raw);
        return CURL_SOCKET_BAD;
    }
    return open_allowed(a);
}

int
ng_deliver_guard_install(void *curl, ng_deliver_guard *g)
{
    CURLcode rc = curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");

    g->refused = 0;
    g->refused_addr[0] = '\0';
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    if (rc == CURLE_OK) /* the environment's proxy would connect where the check never looks */
        rc = curl_easy_setopt(curl, CURLOPT_PROXY, "");
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, guard_socket);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, g);
    return (int)rc;
}

/* Read so that the connection can be reused, and dropped; a backend that talks on is cut off. */
static size_t
on_reply(char *data, size_t size, size_t n, void *userp)
{
    struct job *j = userp;

    (void)data;
    j->reply_bytes += size * n;
    return j->reply_bytes <= NG_DELIVER_REPLY_MAX ? size * n : 0;
}

static size_t
on_header(char *line, size_t size, size_t n, void *userp)
{
    static const char name[] = "retry-after:";
    struct job *j = userp;
    size_t len = size * n, i, vlen;
    const char *v;

    /* A new status line (after a 1xx) starts a new set of headers. */
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        j->retry_after[0] = '\0';
        return len;
    }
    if (len < sizeof name - 1)
        return len;
    for (i = 0; i < sizeof name - 1; i++) {
        char c = line[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != name[i])
            return len;
    }
    v = line + sizeof name - 1;
    vlen = len - (sizeof name - 1);
    while (vlen > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vlen--;
    }
    while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    if (vlen >= sizeof j->retry_after)
        vlen = 0;
    memcpy(j->retry_after, v, vlen);
    j->retry_after[vlen] = '\0';
    return len;
}

/* Retry-After in ms: delta-seconds or an HTTP-date, capped; -1 if absent or unreadable. */
static int64_t
retry_after_ms(const char *v)
{
    int64_t s = 0;
    size_t i;

    if (v[0] == '\0')
        return -1;
    for (i = 0; v[i] >= '0' && v[i] <= '9'; i++)
        if (s <= NG_DELIVER_RETRY_AFTER_MAX_S)
            s = s * 10 + (v[i] - '0');
    if (v[i] != '\0') {
        /* Not all digits: curl_getdate reads the three HTTP-date forms (RFC 9110 5.6.7). */
        time_t t = curl_getdate(v, NULL), now = time(NULL);
        if (i > 0 || t == (time_t)-1)
            return -1;
        s = t > now ? (int64_t)(t - now) : 0;
    }
    if (s > NG_DELIVER_RETRY_AFTER_MAX_S)
        s = NG_DELIVER_RETRY_AFTER_MAX_S;
    return s * 1000;
}

/* ------------------------------------------------------------------ */
/* Starting and finishing                                              */

static ng_err
sign(struct job *j, int64_t now)
{
    char header[NG_WEBHOOK_SIGNERS_BYTES], ts[24];
    int failed = 0;
    ng_err err = ng_deliver_keys_sign(&j->keys, header, j->id, now, j->body, j->body_len);

    if (err)
        return err;
    snprintf(ts, sizeof ts, "%lld", (long long)now);
    j->headers = add_header(j->headers, "webhook-timestamp", ts, &failed);
    if (header[0] != '\0')
        j->headers = add_header(j->headers, "webhook-signature", header, &failed);
    return failed ? NG_ERR_NOMEM : NG_OK;
}

#define SET(opt, val)                                                                                                  \
    do {                                                                                                               \
        if (rc == CURLE_OK)                                                                                            \
            rc = curl_easy_setopt(c, opt, val);                                                                        \
    } while (0)

static CURLcode
setup(struct ng_deliver *d, struct job *j, CURL *c)
{
    CURLcode rc = CURLE_OK;

    SET(CURLOPT_URL, j->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    /* The environment's http_proxy would connect somewhere the guard never sees. */
    SET(CURLOPT_PROXY, "");
    /* No SIGALRM for timeouts: the gateway's other threads own the process's signals. */
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TIMEOUT_MS, (long)d->timeout_ms);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->body_len);
    SET(CURLOPT_POSTFIELDS, j->body != NULL ? (const char *)j->body : "");
    SET(CURLOPT_HTTPHEADER, j->headers);
    SET(CURLOPT_OPENSOCKETFUNCTION, open_socket);
    SET(CURLOPT_OPENSOCKETDATA, j);
    SET(CURLOPT_WRITEFUNCTION, on_reply);
    SET(CURLOPT_WRITEDATA, j);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, j);
    SET(CURLOPT_ERRORBUFFER, j->errbuf);
    SET(CURLOPT_PRIVATE, j);
    return rc;
}

#undef SET

/* The error text with arg in place of its one %s, cut to fit. */
static void
set_error(struct job *j, const char *fmt, const char *arg)
{
    const char *at = strstr(fmt, "%s");
    size_t cap = sizeof j->r.error, o = 0, n;

    n = at != NULL ? (size_t)(at - fmt) : strlen(fmt);
    n = n < cap - 1 ? n : cap - 1;
    memcpy(j->r.error, fmt, n);
    o = n;
    if (at != NULL) {
        n = strlen(arg);
        n = n < cap - 1 - o ? n : cap - 1 - o;
        memcpy(j->r.error + o, arg, n);
        o += n;
        n = strlen(at + 2);
        n = n < cap - 1 - o ? n : cap - 1 - o;
        memcpy(j->r.error + o, at + 2, n);
        o += n;
    }
    /* libcurl's texts may end in a newline; one line it is. */
    while (o > 0 && (j->r.error[o - 1] == '\n' || j->r.error[o - 1] == '\r'))
        o--;
    j->r.error[o] = '\0';
}

static void
easy_release(struct ng_deliver *d, CURL *c)
{
    if (d->n_idle < d->idle_cap) {
        /* A reset keeps the handle's caches; the connections belong to the multi handle. */
        curl_easy_reset(c);
        d->idle[d->n_idle++] = c;
    } else {
        curl_easy_cleanup(c);
    }
}

/* Signs j and adds it to the multi handle; on failure j is finished as RETRY. */
static void
start(struct ng_deliver *d, struct job *j)
{
    CURL *c = d->n_idle > 0 ? d->idle[--d->n_idle] : curl_easy_init();
    ng_err err = c != NULL ? sign(j, (int64_t)time(NULL)) : NG_ERR_NOMEM;

    clock_gettime(CLOCK_MONOTONIC, &j->started);
    if (err == NG_OK && setup(d, j, c) != CURLE_OK)
        err = NG_ERR_NOMEM;
    if (err == NG_OK && curl_multi_add_handle(d->multi, c) != CURLM_OK)
        err = NG_ERR_NOMEM;
    if (err) {
        if (c != NULL)
            easy_release(d, c);
        j->ep = NULL;
        j->r.outcome = NG_DELIVER_RETRY;
        set_error(j, "not started: %s", ng_strerror(err));
        done_push(d, j);
        return;
    }
    j->easy = c;
    j->ep->in_flight++;
    d->in_flight++;
    j->run_prev = NULL;
    j->run_next = d->running;
    if (d->running != NULL)
        d->running->run_prev = j;
    d->running = j;
}

/* Starts waiting jobs while there is room, endpoints taking turns. Returns how many started. */
static unsigned
schedule(struct ng_deliver *d)
{
    unsigned started = 0;
    struct endpoint *e;

    while (d->in_flight < d->max_in_flight && (e = ready_pop(d)) != NULL) {
        struct job *j = e->head;

        e->head = j->next;
        if (e->head == NULL)
            e->tail = NULL;
        j->next = NULL;
        start(d, j);
        started++;
        ready_push(d, e);
        endpoint_release(d, e);
    }
    return started;
}

static void
outcome_of_status(struct job *j, long status)
{
    char text[16];

    j->r.status = (int)status;
    if (status >= 200 && status < 300) {
        j->r.outcome = NG_DELIVER_ACKED;
        return;
    }
    j->r.outcome = status == 410 ? NG_DELIVER_GONE : NG_DELIVER_RETRY;
    if (status == 429 || status == 503)
        j->r.retry_after_ms = retry_after_ms(j->retry_after);
    snprintf(text, sizeof text, "%ld", status);
    set_error(j, "status %s", text);
}

static void
finish(struct ng_deliver *d, struct job *j, CURLcode rc)
{
    struct endpoint *e = j->ep;
    long status = 0;

    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
    j->r.seconds = elapsed_s(&j->started);
    /* A final status is the backend's answer, even if reading the rest of the reply then failed. */
    if (status >= 200 && status <= 999) {
        outcome_of_status(j, status);
    } else if (j->refused > 0 && j->opened == 0) {
        j->r.outcome = NG_DELIVER_REFUSED;
        set_error(j, "address %s not allowed", j->refused_addr);
    } else {
        j->r.outcome =
            rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT ? NG_DELIVER_REFUSED : NG_DELIVER_RETRY;
        set_error(j, "%s", j->errbuf[0] != '\0' ? j->errbuf : curl_easy_strerror(rc));
    }
    curl_multi_remove_handle(d->multi, j->easy);
    easy_release(d, j->easy);
    j->easy = NULL;
    if (j->run_prev != NULL)
        j->run_prev->run_next = j->run_next;
    else
        d->running = j->run_next;
    if (j->run_next != NULL)
        j->run_next->run_prev = j->run_prev;
    e->in_flight--;
    d->in_flight--;
    j->ep = NULL;
    ready_push(d, e);
    endpoint_release(d, e);
    done_push(d, j);
}

/* Moves what libcurl finished to the done list; returns how many jobs that started in their place. */
static unsigned
collect(struct ng_deliver *d)
{
    struct CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(d->multi, &left)) != NULL) {
        char *priv = NULL;

        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        if (priv != NULL)
            finish(d, (struct job *)priv, m->data.result);
    }
    /* Not inside the loop above: libcurl would not start those handles before the next perform. */
    return schedule(d);
}

/* ------------------------------------------------------------------ */
/* The API                                                             */

ng_err
ng_deliver_new(ng_deliver **out, const ng_deliver_opts *o)
{
    static const ng_deliver_opts none;
    struct ng_deliver *d;
    size_t i;

    *out = NULL;
    if (o == NULL)
        o = &none;
    if (o->allow_private_len > 0 && o->allow_private == NULL)
        return NG_ERR_INVALID_ARG;
    if (sodium_init() < 0)
        return NG_ERR_UNSUPPORTED;
    d = calloc(1, sizeof *d);
    if (d == NULL)
        return NG_ERR_NOMEM;
    d->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : NG_DELIVER_DEFAULT_TIMEOUT_MS;
    d->per_endpoint = o->per_endpoint > 0 ? o->per_endpoint : NG_DELIVER_DEFAULT_PER_ENDPOINT;
    d->max_in_flight = o->max_in_flight > 0 ? o->max_in_flight : NG_DELIVER_DEFAULT_MAX_IN_FLIGHT;
    d->max_queued = o->max_queued > 0 ? o->max_queued : NG_DELIVER_DEFAULT_MAX_QUEUED;
    atomic_init(&d->woken, 0);
    if (o->allow_private_len > 0) {
        d->allow = calloc(o->allow_private_len, sizeof *d->allow);
        if (d->allow == NULL) {
            free(d);
            return NG_ERR_NOMEM;
        }
        for (i = 0; i < o->allow_private_len; i++) {
            if (cidr_parse(o->allow_private[i], &d->allow[i]) != 0) {
                free(d->allow);
                free(d);
                return NG_ERR_INVALID_ARG;
            }
        }
        d->allow_len = o->allow_private_len;
    }
    /* Reference-counted and thread-safe since libcurl 7.84; paired with the cleanup in free. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(d->allow);
        free(d);
        return NG_ERR_NOMEM;
    }
    d->n_buckets = FIRST_BUCKETS;
    d->buckets = calloc(d->n_buckets, sizeof *d->buckets);
    d->idle_cap = d->max_in_flight < IDLE_MAX ? d->max_in_flight : IDLE_MAX;
    d->idle = calloc(d->idle_cap, sizeof *d->idle);
    d->multi = curl_multi_init();
    if (d->buckets == NULL || d->idle == NULL || d->multi == NULL) {
        ng_deliver_free(d);
        return NG_ERR_NOMEM;
    }
    *out = d;
    return NG_OK;
}

static void
job_list_free(struct job *j)
{
    while (j != NULL) {
        struct job *next = j->next;
        job_free(j);
        j = next;
    }
}

void
ng_deliver_free(ng_deliver *d)
{
    size_t i;

    if (d == NULL)
        return;
    while (d->running != NULL) {
        struct job *j = d->running;
        d->running = j->run_next;
        curl_multi_remove_handle(d->multi, j->easy);
        curl_easy_cleanup(j->easy);
        job_free(j);
    }
    for (i = 0; d->buckets != NULL && i < d->n_buckets; i++) {
        while (d->buckets[i] != NULL) {
            struct endpoint *e = d->buckets[i];
            d->buckets[i] = e->hnext;
            job_list_free(e->head);
            free(e);
        }
    }
    job_list_free(d->done_head);
    for (i = 0; i < d->n_idle; i++)
        curl_easy_cleanup(d->idle[i]);
    curl_multi_cleanup(d->multi);
    free(d->idle);
    free(d->buckets);
    free(d->allow);
    free(d);
    curl_global_cleanup();
}

/* The checks of the job contract that do not need the URL. */
static int
job_ok(const ng_deliver_job *job)
{
    static const char *const reserved[] = {"specversion", "id", "source", "type", "time", "subject", "datacontenttype"};
    size_t i, k;

    if (job->source == NULL || job->source[0] == '\0' || job->type == NULL || job->type[0] == '\0' ||
        !ng_webhook_id_ok(job->id))
        return 0;
    if (job->body == NULL && job->body_len > 0)
        return 0;
    if ((job->secret != NULL && job->secret_len > NG_WEBHOOK_SECRET_MAX) ||
        (job->secret_prev != NULL && job->secret_prev_len > NG_WEBHOOK_SECRET_MAX))
        return 0;
    if (job->content_type != NULL && (job->content_type[0] == '\0' || has_control(job->content_type)))
        return 0;
    if (job->extras > NG_DELIVER_MAX_EXTRAS ||
        (job->extras > 0 && (job->extra_names == NULL || job->extra_values == NULL)))
        return 0;
    for (i = 0; i < job->extras; i++) {
        const char *n = job->extra_names[i];
        size_t len = n != NULL ? strlen(n) : 0;

        if (job->extra_values[i] == NULL || len <= 3 || len > NG_DELIVER_EXTRA_NAME_MAX ||
            strncasecmp(n, "ce-", 3) != 0)
            return 0;
        for (k = 3; k < len; k++)
            if (!token_char((unsigned char)n[k]))
                return 0;
        for (k = 0; k < sizeof reserved / sizeof reserved[0]; k++)
            if (strcasecmp(n + 3, reserved[k]) == 0)
                return 0;
    }
    return 1;
}

/* Emits one header, its value percent-encoded with encode; nonzero once something failed. */
static int
emit_one(ng_deliver_emit emit, void *ctx, const char *name, const char *value, int encode)
{
    char *v = encode ? ce_encode(value) : NULL;
    int rc;

    if (encode && v == NULL)
        return -1;
    rc = emit(ctx, name, v != NULL ? v : value);
    free(v);
    return rc;
}

ng_err
ng_deliver_headers(const ng_deliver_job *job, ng_deliver_emit emit, void *ctx)
{
    char ce_time[TIME_BYTES];
    int rc;
    size_t i;

    if (!job_ok(job) || format_time(ce_time, job->time_ms) != 0)
        return NG_ERR_INVALID_ARG;
    rc = emit_one(emit, ctx, "ce-specversion", "1.0", 0);
    rc = rc ? rc : emit_one(emit, ctx, "ce-id", job->id, 1);
    rc = rc ? rc : emit_one(emit, ctx, "ce-source", job->source, 1);
    rc = rc ? rc : emit_one(emit, ctx, "ce-type", job->type, 1);
    rc = rc ? rc : emit_one(emit, ctx, "ce-time", ce_time, 1);
    if (job->subject != NULL)
        rc = rc ? rc : emit_one(emit, ctx, "ce-subject", job->subject, 1);
    for (i = 0; i < job->extras; i++)
        rc = rc ? rc : emit_one(emit, ctx, job->extra_names[i], job->extra_values[i], 1);
    rc = rc ? rc
            : emit_one(emit, ctx, "content-type",
                       job->content_type != NULL ? job->content_type : "application/octet-stream", 0);
    rc = rc ? rc : emit_one(emit, ctx, "webhook-id", job->id, 0);
    return rc ? NG_ERR_NOMEM : NG_OK;
}

struct slist_ctx {
    struct curl_slist *h;
    int failed;
};

static int
emit_curl(void *ctx, const char *name, const char *value)
{
    struct slist_ctx *c = ctx;

    c->h = add_header(c->h, name, value, &c->failed);
    return c->failed;
}

/* The headers that do not change at the start of the transfer. */
static struct curl_slist *
fixed_headers(const ng_deliver_job *job, int *failed)
{
    struct slist_ctx c = {NULL, 0};

    if (ng_deliver_headers(job, emit_curl, &c) != NG_OK)
        c.failed = 1;
    c.h = add_header(c.h, "user-agent", "noisegate/0.1", &c.failed);
    if (!c.failed) {
        /* Nothing after the colon: libcurl leaves the header out, so no 100-continue round trip. */
        struct curl_slist *next = curl_slist_append(c.h, "Expect:");
        if (next == NULL)
            c.failed = 1;
        else
            c.h = next;
    }
    *failed = c.failed;
    return c.h;
}

ng_err
ng_deliver_submit(ng_deliver *d, const ng_deliver_job *job)
{
    char ce_time[TIME_BYTES], key[KEY_MAX], *norm = NULL;
    struct endpoint *e = NULL;
    struct job *j;
    int failed = 0, urc;

    if (job->url == NULL || !job_ok(job) || format_time(ce_time, job->time_ms) != 0)
        return NG_ERR_INVALID_ARG;
    if (d->queued >= d->max_queued)
        return NG_ERR_TOO_LARGE;
    j = calloc(1, sizeof *j);
    if (j == NULL)
        return NG_ERR_NOMEM;
    j->d = d;
    j->r.user = job->user;
    j->r.retry_after_ms = -1;
    j->id = dup_str(job->id);
    j->body_len = job->body_len;
    j->body = malloc(job->body_len > 0 ? job->body_len : 1);
    j->headers = fixed_headers(job, &failed);
    if (j->id == NULL || j->body == NULL || failed) {
        job_free(j);
        return NG_ERR_NOMEM;
    }
    if (job->body_len > 0)
        memcpy(j->body, job->body, job->body_len);
    ng_deliver_keys_copy(&j->keys, job);
    urc = strlen(job->url) < NG_DELIVER_URL_MAX ? parse_url(job->url, &norm, key) : -1;
    if (urc == 0) {
        j->url = dup_str(norm);
        curl_free(norm);
        e = j->url != NULL ? endpoint_get(d, key) : NULL;
        if (e == NULL)
            urc = -3;
    }
    if (urc == -3) {
        job_free(j);
        return NG_ERR_NOMEM;
    }
    d->queued++;
    if (urc != 0) {
        /* Reported by the next run, like every other outcome; the URL stays out of the text, it may hold a token. */
        j->r.outcome = NG_DELIVER_REFUSED;
        snprintf(j->r.error, sizeof j->r.error, "%s", urc == -2 ? "scheme not http or https" : "bad URL");
        ng_deliver_keys_wipe(&j->keys);
        done_push(d, j);
        return NG_OK;
    }
    j->ep = e;
    if (e->tail != NULL)
        e->tail->next = j;
    else
        e->head = j;
    e->tail = j;
    ready_push(d, e);
    schedule(d);
    return NG_OK;
}

size_t
ng_deliver_pending(const ng_deliver *d)
{
    return d->queued;
}

void
ng_deliver_wakeup(ng_deliver *d)
{
    atomic_store(&d->woken, 1);
    curl_multi_wakeup(d->multi);
}

static ng_err
multi_err(CURLMcode mc)
{
    return mc == CURLM_OUT_OF_MEMORY ? NG_ERR_NOMEM : NG_ERR_IO;
}

ng_err
ng_deliver_run(ng_deliver *d, int timeout_ms, ng_deliver_cb cb, void *ctx)
{
    const uint64_t deadline = clock_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    ng_err err = NG_OK;
    struct job *j;

    if (d->in_run)
        return NG_ERR_INVALID_ARG;
    d->in_run = 1;
    for (;;) {
        CURLMcode mc;
        uint64_t now;
        int running;

        mc = curl_multi_perform(d->multi, &running);
        if (mc != CURLM_OK) {
            err = multi_err(mc);
            break;
        }
        /* Handles just added are started by a perform, not by a poll: go round once more. */
        if (collect(d) > 0)
            continue;
        now = clock_ms();
        if (d->done_head != NULL || atomic_exchange(&d->woken, 0) || now >= deadline)
            break;
        mc = curl_multi_poll(d->multi, NULL, 0, (int)(deadline - now), NULL);
        if (mc != CURLM_OK) {
            err = multi_err(mc);
            break;
        }
    }
    /* Detached first: a callback may submit, and a job refused at once lands on the new list. */
    j = d->done_head;
    d->done_head = d->done_tail = NULL;
    while (j != NULL) {
        struct job *next = j->next;

        d->queued--;
        cb(ctx, &j->r);
        job_free(j);
        j = next;
    }
    d->in_run = 0;
    return err;
}

int64_t
ng_deliver_backoff_ms(const int *schedule_s, size_t n, uint32_t attempt, uint32_t random32)
{
    double base, ms;
    int s;

    if (schedule_s == NULL || n == 0)
        return 0;
    s = schedule_s[attempt < n ? attempt : n - 1];
    if (s <= 0)
        return 0;
    base = (double)s * 1000.0;
    /* random32 spread evenly over [-20%, +20%]. */
    ms = base * (0.8 + 0.4 * ((double)random32 / (double)UINT32_MAX));
    return (int64_t)(ms + 0.5);
}

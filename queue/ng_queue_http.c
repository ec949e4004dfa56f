/*
 * The HTTP storage backend of the outbox (ng_queue_http.h): WebDAV verbs over
 * one reused libcurl easy handle. Each operation is a few requests through
 * one function, perform(), which owns the timeouts, the retries, the size
 * limits and the caller's hooks, so that every request gets the same
 * treatment.
 */
#include "ng_queue_http.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "ng_hex.h"
#include "ng_parcel.h"
#include "ng_propfind.h"

enum {
    KEY_HEX_BYTES = 2 * NG_QUEUE_KEY_ID_BYTES + 1,
    URL_BYTES = NG_QUEUE_HTTP_URL_BYTES + KEY_HEX_BYTES + NG_PROPFIND_NAME_BYTES + 8,
    EXPIRES_END = 40,       /* the parcel header up to and including expires: all trim reads */
    KNOWN_COLLECTIONS = 16, /* key id collections this handle made, remembered */
    MAX_RETRIES = 10,
    MAX_BACKOFF_MS = 10000,
};

_Static_assert((int)NG_PROPFIND_NAME_BYTES <= (int)NG_QUEUE_ID_BYTES, "an object name is an item id");
_Static_assert((int)NG_PARCEL_MESSAGE_ID_BYTES == (int)NG_QUEUE_MSG_ID_BYTES, "one message id size");

/* The largest created time a 13-digit name can hold (the year 2286). */
#define MAX_CREATED_MS 9999999999999ULL

/* Only what a listing needs: the href of each response comes whatever we ask for. */
static const char propfind_body[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                                    "<D:propfind xmlns:D=\"DAV:\"><D:prop><D:resourcetype/></D:prop></D:propfind>\n";

struct http_queue {
    struct ng_queue base;
    CURL *curl;
    ng_queue_http_options opt;
    char base_url[NG_QUEUE_HTTP_URL_BYTES];
    uint8_t known[KNOWN_COLLECTIONS][NG_QUEUE_KEY_ID_BYTES];
    size_t n_known, next_known;
};

/* One request and its reply. */
struct request {
    const char *method; /* GET, PUT, DELETE, MKCOL, PROPFIND */
    const char *url;
    const char *range;     /* GET: "0-39" or NULL */
    const uint8_t *upload; /* PUT */
    size_t upload_len, upload_pos;
    size_t max_reply;  /* a longer reply body is NG_ERR_TOO_LARGE */
    int keep_reply;    /* 0: the body is read and dropped (error pages) */
    size_t stop_after; /* 0, or how much of a body ignoring our Range we read */
    long status;
    uint8_t *reply;
    size_t reply_len, reply_cap;
    int too_large, enough;
};

static uint64_t
clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

static uint64_t
be64(const uint8_t *p)
{
    uint64_t v = 0;
    int k;

    for (k = 0; k < 8; k++)
        v = (v << 8) | p[k];
    return v;
}

static size_t
on_reply(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct request *q = userdata;
    size_t n = size * nmemb;

    if (!q->keep_reply)
        return n;
    if (n > q->max_reply - q->reply_len) {
        q->too_large = 1;
        return 0;
    }
    if (n > q->reply_cap - q->reply_len) {
        size_t cap = q->reply_cap ? q->reply_cap : 4096;
        uint8_t *grown;

        while (cap - q->reply_len < n)
            cap = cap > q->max_reply / 2 ? q->max_reply : cap * 2;
        grown = realloc(q->reply, cap);
        if (grown == NULL)
            return 0;
        q->reply = grown;
        q->reply_cap = cap;
    }
    memcpy(q->reply + q->reply_len, data, n);
    q->reply_len += n;
    /* More than we asked for: the server ignored Range; what we have is enough. */
    if (q->stop_after != 0 && q->reply_len > q->stop_after) {
        q->enough = 1;
        return 0;
    }
    return n;
}

static size_t
on_send(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct request *q = userdata;
    size_t n = size * nitems;

    if (n > q->upload_len - q->upload_pos)
        n = q->upload_len - q->upload_pos;
    memcpy(buf, q->upload + q->upload_pos, n);
    q->upload_pos += n;
    return n;
}

/* libcurl rewinds the upload when it resends it on a fresh connection. */
static int
on_seek(void *userdata, curl_off_t offset, int origin)
{
    struct request *q = userdata;

    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > q->upload_len)
        return CURL_SEEKFUNC_FAIL;
    q->upload_pos = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

/* The failures a later attempt may not meet: the network, not the request. */
static int
transient(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE: return 1;
    default: return 0;
    }
}

#define SET(opt, val)                                                                                                  \
    do {                                                                                                               \
        if (rc == CURLE_OK)                                                                                            \
            rc = curl_easy_setopt(c, opt, val);                                                                        \
    } while (0)

/* Everything but the timeouts, which shrink from one attempt to the next. */
static CURLcode
setup(struct http_queue *h, struct request *q, struct curl_slist *headers)
{
    CURL *c = h->curl;
    CURLcode rc = CURLE_OK;

    /* A reset keeps the open connections; it drops the options of the last request. */
    curl_easy_reset(c);
    SET(CURLOPT_URL, q->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    /* No SIGALRM for timeouts: other threads of the gateway use the process's signals. */
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_HTTPHEADER, headers);
    SET(CURLOPT_WRITEFUNCTION, on_reply);
    SET(CURLOPT_WRITEDATA, q);
    /* Refused from Content-Length before any of it is read; not for a Range, whose body we cut short. */
    if (q->keep_reply && q->stop_after == 0)
        SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)q->max_reply);
    if (strcmp(q->method, "GET") == 0) {
        SET(CURLOPT_HTTPGET, 1L);
        if (q->range != NULL)
            SET(CURLOPT_RANGE, q->range);
    } else if (strcmp(q->method, "PUT") == 0) {
        SET(CURLOPT_UPLOAD, 1L);
        SET(CURLOPT_READFUNCTION, on_send);
        SET(CURLOPT_READDATA, q);
        SET(CURLOPT_SEEKFUNCTION, on_seek);
        SET(CURLOPT_SEEKDATA, q);
        SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->upload_len);
    } else if (strcmp(q->method, "PROPFIND") == 0) {
        SET(CURLOPT_CUSTOMREQUEST, "PROPFIND");
        SET(CURLOPT_POSTFIELDS, propfind_body);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(sizeof propfind_body - 1));
    } else {
        SET(CURLOPT_CUSTOMREQUEST, q->method);
    }
    return rc;
}

static struct curl_slist *
add_header(struct curl_slist *list, const char *header, int *failed)
{
    struct curl_slist *next = *failed ? NULL : curl_slist_append(list, header);

    if (next == NULL)
        *failed = 1;
    return next != NULL ? next : list;
}

/*
 * Runs q until it gets an answer below 500, retrying network errors and
 * 5xx with exponential backoff and jitter within timeout_ms. NG_OK with
 * q->status set, or NG_ERR_UNAVAILABLE, NG_ERR_TOO_LARGE, NG_ERR_IO,
 * NG_ERR_NOMEM, or what a hook returned.
 */
static ng_err
perform(struct http_queue *h, struct request *q)
{
    const uint64_t start = clock_ms(), budget = (uint64_t)h->opt.timeout_ms;
    struct curl_slist *headers = NULL;
    int failed = 0, attempt;
    ng_err err = NG_ERR_UNAVAILABLE;

    /* No 100-continue round trip before each upload. */
    headers = add_header(headers, "Expect:", &failed);
    if (strcmp(q->method, "PROPFIND") == 0) {
        headers = add_header(headers, "Depth: 1", &failed);
        headers = add_header(headers, "Content-Type: application/xml; charset=utf-8", &failed);
    } else if (strcmp(q->method, "PUT") == 0) {
        headers = add_header(headers, "Content-Type: application/octet-stream", &failed);
    }
    if (failed || setup(h, q, headers) != CURLE_OK) {
        curl_slist_free_all(headers);
        return NG_ERR_NOMEM;
    }
    /* After setup, so that the caller's rules win over ours and survive nothing but the next reset. */
    if (h->opt.prepare != NULL && (err = h->opt.prepare(h->curl, h->opt.hook_user)) != NG_OK) {
        curl_slist_free_all(headers);
        return err;
    }
    for (attempt = 0;; attempt++) {
        uint64_t spent = clock_ms() - start, left = spent < budget ? budget - spent : 1, delay;
        long connect_ms = h->opt.connect_timeout_ms > 0 ? h->opt.connect_timeout_ms : h->opt.timeout_ms;
        CURLcode rc;

        q->reply_len = 0;
        q->upload_pos = 0;
        q->too_large = q->enough = 0;
        q->status = 0;
        if ((uint64_t)connect_ms > left)
            connect_ms = (long)left;
        if (curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, (long)left) != CURLE_OK ||
            curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS, connect_ms) != CURLE_OK) {
            err = NG_ERR_IO;
            break;
        }
        rc = curl_easy_perform(h->curl);
        if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && q->enough)) {
            curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &q->status);
            if (q->status < 500) {
                err = NG_OK;
                break;
            }
            err = NG_ERR_UNAVAILABLE;
        } else if (q->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
            err = NG_ERR_TOO_LARGE;
            break;
        } else if (rc == CURLE_WRITE_ERROR || rc == CURLE_OUT_OF_MEMORY) {
            err = NG_ERR_NOMEM;
            break;
        } else if (h->opt.failed != NULL && (err = h->opt.failed(h->curl, (int)rc, h->opt.hook_user)) != NG_OK) {
            /* The hook's own refusal (say, of an address) looks like a failed connect: not worth a retry. */
            break;
        } else if (transient(rc)) {
            err = NG_ERR_UNAVAILABLE;
        } else {
            /* A reply that is not HTTP, a refused protocol, a TLS certificate: retrying will not help. */
            err = NG_ERR_IO;
            break;
        }
        if (attempt >= h->opt.retries)
            break;
        /* Exponential, with jitter in its upper half, so that many gateways do not retry in step. */
        delay = (uint64_t)h->opt.backoff_ms << attempt;
        delay = delay / 2 + randombytes_uniform((uint32_t)(delay / 2 + 1));
        if (clock_ms() - start + delay >= budget)
            break;
        sleep_ms(delay);
    }
    curl_slist_free_all(headers);
    return err;
}

static void
request_init(struct request *q, const char *method, const char *url)
{
    memset(q, 0, sizeof *q);
    q->method = method;
    q->url = url;
}

static void
request_free(struct request *q)
{
    free(q->reply);
    q->reply = NULL;
    q->reply_len = q->reply_cap = 0;
}

/* 4xx other than those an operation expects, a redirect we do not follow, an odd 2xx. */
static ng_err
unexpected(long status)
{
    return status >= 500 ? NG_ERR_UNAVAILABLE : NG_ERR_IO;
}

static void
collection_url(struct http_queue *h, char url[URL_BYTES], const char key_hex[KEY_HEX_BYTES])
{
    snprintf(url, URL_BYTES, "%s/%s/", h->base_url, key_hex);
}

static void
object_url(struct http_queue *h, char url[URL_BYTES], const char key_hex[KEY_HEX_BYTES], const char *name)
{
    snprintf(url, URL_BYTES, "%s/%s/%s", h->base_url, key_hex, name);
}

static int
is_known(const struct http_queue *h, const uint8_t key_id[NG_QUEUE_KEY_ID_BYTES])
{
    size_t k;

    for (k = 0; k < h->n_known; k++)
        if (memcmp(h->known[k], key_id, NG_QUEUE_KEY_ID_BYTES) == 0)
            return 1;
    return 0;
}

/*
 * MKCOL of the key id's collection. Only a failure to reach the server is
 * an error: a server that refuses MKCOL may still create the path on PUT
 * (nginx with create_full_put_path), so the PUT has the last word.
 */
static ng_err
make_collection(struct http_queue *h, const uint8_t key_id[NG_QUEUE_KEY_ID_BYTES], const char key_hex[KEY_HEX_BYTES])
{
    char url[URL_BYTES];
    struct request q;
    ng_err err;

    collection_url(h, url, key_hex);
    request_init(&q, "MKCOL", url);
    err = perform(h, &q);
    request_free(&q);
    if (err)
        return err;
    /* 201 made, 405 already there (nginx and Apache both answer so). */
    if ((q.status >= 200 && q.status < 300) || q.status == 405) {
        memcpy(h->known[h->next_known], key_id, NG_QUEUE_KEY_ID_BYTES);
        h->next_known = (h->next_known + 1) % KNOWN_COLLECTIONS;
        if (h->n_known < KNOWN_COLLECTIONS)
            h->n_known++;
    }
    return NG_OK;
}

static ng_err
put(struct http_queue *h, const char *url, const uint8_t *parcel, size_t len, long *status)
{
    struct request q;
    ng_err err;

    request_init(&q, "PUT", url);
    q.upload = parcel;
    q.upload_len = len;
    err = perform(h, &q);
    request_free(&q);
    *status = q.status;
    return err;
}

/* GET into a malloc'd buffer; NG_ERR_NOT_FOUND for a 404. */
static ng_err
get(struct http_queue *h, const char *url, const char *range, size_t stop_after, uint8_t **data, size_t *len)
{
    struct request q;
    ng_err err;

    *data = NULL;
    *len = 0;
    request_init(&q, "GET", url);
    q.range = range;
    q.stop_after = stop_after;
    q.keep_reply = 1;
    q.max_reply = h->opt.max_parcel_bytes;
    err = perform(h, &q);
    if (err == NG_OK && q.status == 404)
        err = NG_ERR_NOT_FOUND;
    else if (err == NG_OK && q.status != 200 && !(range != NULL && q.status == 206))
        err = unexpected(q.status);
    if (err == NG_OK && q.reply == NULL && (q.reply = malloc(1)) == NULL)
        err = NG_ERR_NOMEM;
    if (err) {
        request_free(&q);
        return err;
    }
    *data = q.reply;
    *len = q.reply_len;
    return NG_OK;
}

/* The parcel names in the key id's collection, sorted; none if it does not exist. */
static ng_err
list(struct http_queue *h, const char key_hex[KEY_HEX_BYTES], ng_propfind_names *names)
{
    ng_propfind_limits lim = {h->opt.max_listing_bytes, h->opt.max_entries, 0};
    char url[URL_BYTES];
    struct request q;
    ng_err err;

    names->name = NULL;
    names->n = 0;
    collection_url(h, url, key_hex);
    request_init(&q, "PROPFIND", url);
    q.keep_reply = 1;
    q.max_reply = h->opt.max_listing_bytes;
    err = perform(h, &q);
    if (err == NG_OK && q.status == 207)
        err = ng_propfind_parse(names, (const char *)q.reply, q.reply_len, key_hex, &lim);
    else if (err == NG_OK && q.status != 404)
        err = unexpected(q.status);
    request_free(&q);
    return err;
}

static ng_err
http_outbox_append(ng_queue *base, const char *tenant, const uint8_t key_id[NG_QUEUE_KEY_ID_BYTES],
                   const uint8_t msg_id[NG_QUEUE_MSG_ID_BYTES], uint64_t created_ms, uint64_t expires_ms,
                   const uint8_t *parcel, size_t len, char id[NG_QUEUE_ID_BYTES])
{
    struct http_queue *h = (struct http_queue *)base;
    char key_hex[KEY_HEX_BYTES], msg_hex[2 * NG_QUEUE_MSG_ID_BYTES + 1], name[NG_PROPFIND_NAME_BYTES], url[URL_BYTES];
    long status;
    int fresh;
    ng_err err;

    (void)tenant;
    if (id != NULL)
        id[0] = '\0';
    if (key_id == NULL || msg_id == NULL || parcel == NULL || id == NULL || created_ms > MAX_CREATED_MS)
        return NG_ERR_INVALID_ARG;
    if (len > h->opt.max_parcel_bytes)
        return NG_ERR_TOO_LARGE;
    /* Trim trusts the stored header for the expiry: it must be the one the caller names. */
    if (len < EXPIRES_END || memcmp(parcel, NG_PARCEL_MAGIC, 4) != 0 ||
        memcmp(parcel + 8, msg_id, NG_QUEUE_MSG_ID_BYTES) != 0 || be64(parcel + 24) != created_ms ||
        be64(parcel + 32) != expires_ms)
        return NG_ERR_INVALID_ARG;
    ng_hex_encode(key_hex, sizeof key_hex, key_id, NG_QUEUE_KEY_ID_BYTES);
    ng_hex_encode(msg_hex, sizeof msg_hex, msg_id, NG_QUEUE_MSG_ID_BYTES);
    snprintf(name, sizeof name, "%013llu-%s.ngp", (unsigned long long)created_ms, msg_hex);
    object_url(h, url, key_hex, name);
    fresh = !is_known(h, key_id);
    if (fresh) {
        err = make_collection(h, key_id, key_hex);
        if (err)
            return err;
    }
    err = put(h, url, parcel, len, &status);
    /* 409: no collection (removed since, or a server that needs MKCOL first). */
    if (err == NG_OK && status == 409 && !fresh) {
        h->n_known = h->next_known = 0;
        err = make_collection(h, key_id, key_hex);
        if (err == NG_OK)
            err = put(h, url, parcel, len, &status);
    }
    if (err)
        return err;
    if (status < 200 || status >= 300)
        return unexpected(status);
    memcpy(id, name, NG_PROPFIND_NAME_BYTES);
    return NG_OK;
}

static ng_err
http_outbox_read(ng_queue *base, const char *tenant, const uint8_t key_id[NG_QUEUE_KEY_ID_BYTES], const char *after,
                 size_t limit, ng_queue_batch *out)
{
    struct http_queue *h = (struct http_queue *)base;
    char key_hex[KEY_HEX_BYTES], url[URL_BYTES];
    ng_propfind_names names;
    size_t k, want;
    ng_err err;

    (void)tenant;
    if (out == NULL)
        return NG_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    if (after == NULL)
        after = "";
    /* A cursor is a name this backend gave, or nothing. */
    if (key_id == NULL || (after[0] != '\0' && !ng_propfind_is_name(after, strlen(after))))
        return NG_ERR_INVALID_ARG;
    if (limit == 0)
        return NG_OK;
    ng_hex_encode(key_hex, sizeof key_hex, key_id, NG_QUEUE_KEY_ID_BYTES);
    err = list(h, key_hex, &names);
    if (err)
        return err;
    for (k = 0; k < names.n && strcmp(names.name[k], after) <= 0; k++)
        ;
    want = names.n - k < limit ? names.n - k : limit;
    if (want > 0 && (out->items = calloc(want, sizeof *out->items)) == NULL)
        err = NG_ERR_NOMEM;
    for (; err == NG_OK && k < names.n && out->n < want; k++) {
        ng_queue_item *it = &out->items[out->n];

        object_url(h, url, key_hex, names.name[k]);
        err = get(h, url, NULL, 0, &it->data, &it->len);
        /* Trimmed or taken away since the listing: nothing to read. */
        if (err == NG_ERR_NOT_FOUND) {
            err = NG_OK;
            continue;
        }
        if (err)
            break;
        memcpy(it->id, names.name[k], NG_PROPFIND_NAME_BYTES);
        if (it->len >= EXPIRES_END && memcmp(it->data, NG_PARCEL_MAGIC, 4) == 0)
            it->expires_ms = be64(it->data + 32);
        out->n++;
    }
    ng_propfind_names_free(&names);
    if (err) {
        ng_queue_batch_free(out);
        return err;
    }
    if (out->n > 0)
        memcpy(out->next, out->items[out->n - 1].id, NG_QUEUE_ID_BYTES);
    return NG_OK;
}

static ng_err
http_outbox_trim(ng_queue *base, const char *tenant, const uint8_t key_id[NG_QUEUE_KEY_ID_BYTES], uint64_t now_ms,
                 size_t *removed)
{
    struct http_queue *h = (struct http_queue *)base;
    char key_hex[KEY_HEX_BYTES], url[URL_BYTES];
    ng_propfind_names names;
    size_t k;
    ng_err err;

    (void)tenant;
    if (removed != NULL)
        *removed = 0;
    if (key_id == NULL || removed == NULL)
        return NG_ERR_INVALID_ARG;
    ng_hex_encode(key_hex, sizeof key_hex, key_id, NG_QUEUE_KEY_ID_BYTES);
    err = list(h, key_hex, &names);
    if (err)
        return err;
    for (k = 0; err == NG_OK && k < names.n; k++) {
        uint64_t created = 0, expires;
        struct request q;
        uint8_t *head;
        size_t len, d;

        for (d = 0; d < 13; d++)
            created = created * 10 + (uint64_t)(names.name[k][d] - '0');
        /* expires > created, and names sort by created: nothing from here on has expired. */
        if (created >= now_ms)
            break;
        object_url(h, url, key_hex, names.name[k]);
        err = get(h, url, "0-39", EXPIRES_END, &head, &len);
        if (err == NG_ERR_NOT_FOUND) {
            err = NG_OK;
            continue;
        }
        if (err)
            break;
        /* Not a parcel header we can read: its expiry is unknown, so it stays. */
        expires = len >= EXPIRES_END && memcmp(head, NG_PARCEL_MAGIC, 4) == 0 ? be64(head + 32) : UINT64_MAX;
        free(head);
        if (expires > now_ms)
            continue;
        request_init(&q, "DELETE", url);
        err = perform(h, &q);
        request_free(&q);
        if (err)
            break;
        if (q.status >= 200 && q.status < 300)
            (*removed)++;
        else if (q.status != 404) /* 404: someone else trimmed it first */
            err = unexpected(q.status);
    }
    ng_propfind_names_free(&names);
    return err;
}

static void
http_destroy(ng_queue *base)
{
    struct http_queue *h = (struct http_queue *)base;

    curl_easy_cleanup(h->curl);
    free(h);
    curl_global_cleanup();
}

static const struct ng_queue_ops http_ops = {
    .name = "http",
    .outbox_append = http_outbox_append,
    .outbox_read = http_outbox_read,
    .outbox_trim = http_outbox_trim,
    .destroy = http_destroy,
};

void
ng_queue_http_options_init(ng_queue_http_options *o, int timeout_ms)
{
    memset(o, 0, sizeof *o);
    o->timeout_ms = timeout_ms;
    o->retries = NG_QUEUE_HTTP_DEFAULT_RETRIES;
    o->backoff_ms = NG_QUEUE_HTTP_DEFAULT_BACKOFF_MS;
}

static int
starts_ci(const char *s, const char *prefix)
{
    size_t k;

    for (k = 0; prefix[k] != '\0'; k++) {
        char c = s[k];

        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != prefix[k])
            return 0;
    }
    return 1;
}

/* Copies base_url without its trailing slashes, if it is an http(s) URL we can append paths to. */
static ng_err
parse_base(char out[NG_QUEUE_HTTP_URL_BYTES], const char *url)
{
    size_t n = strlen(url), host, k;

    if (n >= NG_QUEUE_HTTP_URL_BYTES)
        return NG_ERR_PARSE;
    if (starts_ci(url, "http://"))
        host = 7;
    else if (starts_ci(url, "https://"))
        host = 8;
    else
        return NG_ERR_PARSE;
    if (url[host] == '\0' || url[host] == '/')
        return NG_ERR_PARSE;
    for (k = 0; k < n; k++)
        if ((unsigned char)url[k] <= 0x20 || (unsigned char)url[k] >= 0x7f || url[k] == '?' || url[k] == '#')
            return NG_ERR_PARSE;
    while (n > host && url[n - 1] == '/')
        n--;
    memcpy(out, url, n);
    out[n] = '\0';
    return NG_OK;
}

ng_err
ng_queue_http_new_with(ng_queue **out, const char *base_url, const ng_queue_http_options *o)
{
    struct http_queue *h;
    ng_err err;

    if (out == NULL)
        return NG_ERR_INVALID_ARG;
    *out = NULL;
    if (base_url == NULL || o == NULL || o->timeout_ms <= 0 || o->connect_timeout_ms < 0 || o->retries < 0 ||
        o->retries > MAX_RETRIES || o->backoff_ms < 0 || o->backoff_ms > MAX_BACKOFF_MS)
        return NG_ERR_INVALID_ARG;
    h = calloc(1, sizeof *h);
    if (h == NULL)
        return NG_ERR_NOMEM;
    err = parse_base(h->base_url, base_url);
    if (err) {
        free(h);
        return err;
    }
    h->base.ops = &http_ops;
    h->opt = *o;
    if (h->opt.max_listing_bytes == 0)
        h->opt.max_listing_bytes = NG_PROPFIND_DEFAULT_MAX_BYTES;
    if (h->opt.max_entries == 0)
        h->opt.max_entries = NG_PROPFIND_DEFAULT_MAX_ENTRIES;
    if (h->opt.max_parcel_bytes == 0)
        h->opt.max_parcel_bytes = NG_PARCEL_DEFAULT_MAX_BYTES;
    /* The jitter comes from libsodium; sodium_init is idempotent and thread-safe. */
    if (sodium_init() < 0) {
        free(h);
        return NG_ERR_IO;
    }
    /* Reference-counted and thread-safe since libcurl 7.84; paired with the cleanup in destroy. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(h);
        return NG_ERR_NOMEM;
    }
    h->curl = curl_easy_init();
    if (h->curl == NULL) {
        free(h);
        curl_global_cleanup();
        return NG_ERR_NOMEM;
    }
    *out = &h->base;
    return NG_OK;
}

ng_err
ng_queue_http_new(ng_queue **out, const char *base_url, int timeout_ms)
{
    ng_queue_http_options o;

    ng_queue_http_options_init(&o, timeout_ms);
    return ng_queue_http_new_with(out, base_url, &o);
}

/*
 * ng_queue_http.h: outboxes in HTTP storage that speaks WebDAV (nginx with
 * the dav and dav-ext modules, Apache mod_dav, ...). Only the outbox
 * operations exist; the others answer NG_ERR_UNSUPPORTED.
 *
 * A parcel is the object <base>/<recipient key id hex>/<name>, name being
 * `<created ms, 13 digits>-<message id hex>.ngp`, so that names sort by time
 * and the name is the item id and the cursor. The tenant is not part of the
 * path: the base URL already belongs to one gateway or tenant.
 *
 *   append  MKCOL the key id's collection (once per handle, and again on a
 *           409), then PUT the object. The parcel's header must agree with
 *           the arguments (magic, message id, created, expires): trim reads
 *           the expiry back from it, since the name has no room for it.
 *           nginx answers a PUT into a missing directory with 500, not 409:
 *           configure it with create_full_put_path on.
 *   read    PROPFIND Depth: 1, then GET each name after the cursor, oldest
 *           first; an object gone between the listing and its GET is skipped.
 *           A missing collection is an empty outbox.
 *   trim    PROPFIND, then for each name created before now_ms a GET of the
 *           first 40 bytes (Range) and a DELETE when expires <= now_ms. An
 *           object whose header cannot be read is left alone.
 *
 * HTTP: one libcurl easy handle per queue, so connections are reused; no
 * redirects; http and https only; no compressed replies. Each request is
 * bounded by timeout_ms, its retries included. Network errors and 5xx are
 * retried a few times with exponential backoff and jitter; 4xx are not.
 * Errors: NG_ERR_UNAVAILABLE (no answer, timeout, 5xx after the retries);
 * NG_ERR_IO (another status: 4xx, 3xx, an unexpected 2xx); NG_ERR_TOO_LARGE
 * (a listing over max_listing_bytes, a parcel over max_parcel_bytes);
 * NG_ERR_PARSE (a listing that is not a multistatus, see ng_propfind.h).
 *
 * Hooks. A caller may add rules of its own to every request through the
 * prepare and failed options: an address guard when the base URL came from
 * someone else (the poller reading a peer's storage), a client
 * certificate, a source address. queue/ knows nothing of what they do.
 *   prepare  runs for each request, after the queue has set its own
 *            options on the libcurl easy handle (a CURL *; the handle is
 *            reset between requests, so anything set earlier is gone).
 *            What it sets wins, and stays for that request's retries. It
 *            must leave the URL, method, headers, callbacks and their data,
 *            and the timeouts alone. Anything but NG_OK ends the operation
 *            with that code before the request is sent.
 *   failed   runs after each attempt that got no HTTP answer (a libcurl
 *            error other than the queue's own limits: too large, out of
 *            memory), with the CURLcode, never CURLE_OK, so that a refusal
 *            of the hook's own (its socket callback said no) is not taken
 *            for a network error. NG_OK leaves the failure to the queue
 *            (retried if it looks transient); anything else ends the
 *            operation with that code at once, without retries.
 * Both get hook_user and run on the thread that called the operation.
 *
 * THREAD SAFETY: a handle is used by one thread at a time (ng_queue.h).
 */
#ifndef NG_QUEUE_HTTP_H
#define NG_QUEUE_HTTP_H

#include <stddef.h>

#include "ng_error.h"
#include "ng_queue.h"

enum {
    NG_QUEUE_HTTP_URL_BYTES = 2048, /* the base URL, NUL included */
    NG_QUEUE_HTTP_DEFAULT_RETRIES = 2,
    NG_QUEUE_HTTP_DEFAULT_BACKOFF_MS = 50,
};

/* See "Hooks" above. curl is the CURL * of the request. */
typedef ng_err (*ng_queue_http_prepare_fn)(void *curl, void *user);
typedef ng_err (*ng_queue_http_failed_fn)(void *curl, int curl_code, void *user);

typedef struct ng_queue_http_options {
    int timeout_ms;                   /* > 0: each request, retries and backoff included */
    int connect_timeout_ms;           /* 0: timeout_ms */
    int retries;                      /* further attempts after a network error or a 5xx, 0..10 */
    int backoff_ms;                   /* before the first retry, doubled for each next one, jittered */
    size_t max_listing_bytes;         /* a PROPFIND reply; 0: NG_PROPFIND_DEFAULT_MAX_BYTES */
    size_t max_entries;               /* responses in a listing; 0: NG_PROPFIND_DEFAULT_MAX_ENTRIES */
    size_t max_parcel_bytes;          /* one object; 0: NG_PARCEL_DEFAULT_MAX_BYTES */
    ng_queue_http_prepare_fn prepare; /* NULL: none */
    ng_queue_http_failed_fn failed;   /* NULL: none */
    void *hook_user;                  /* handed to both; must outlive the queue */
} ng_queue_http_options;

/* The defaults, with timeout_ms, and no hooks. */
void ng_queue_http_options_init(ng_queue_http_options *o, int timeout_ms) NG_NONNULL(1);

/*
 * A queue on the WebDAV collection base_url ("http[s]://host[:port]/path",
 * trailing slashes ignored; no query, fragment, spaces or control bytes).
 * Nothing is sent yet. NG_ERR_INVALID_ARG for a NULL argument or a bad
 * option, NG_ERR_PARSE for a base URL not of that form, NG_ERR_NOMEM.
 * Free with ng_queue_free.
 */
NG_MUST_CHECK ng_err ng_queue_http_new(ng_queue **out, const char *base_url, int timeout_ms);
NG_MUST_CHECK ng_err ng_queue_http_new_with(ng_queue **out, const char *base_url, const ng_queue_http_options *o);

#endif

/*
 * ng_curlbuf.h: the body of a libcurl reply, collected into one malloc'd
 * buffer with a cap. The other end decides how much it sends; the cap is
 * how much we keep: a reply over it fails the transfer (CURLE_WRITE_ERROR
 * from the write callback, or CURLE_FILESIZE_EXCEEDED before any of it is
 * read when its Content-Length already says so) instead of growing the
 * buffer without limit.
 *
 *   ng_curlbuf b;
 *
 *   ng_curlbuf_init(&b, 1 << 20);
 *   rc = ng_curlbuf_attach(curl, &b);
 *   if (rc == CURLE_OK)
 *       rc = curl_easy_perform(curl);
 *   ... b.data, b.len: what came, even after a failed transfer ...
 *   ng_curlbuf_free(&b);
 *
 * The buffer grows by doubling up to max, and each copy it leaves behind is
 * wiped, as is the buffer on free: a reply may carry a secret (a webhook
 * secret coming back from a pairing, a token in an admin reply).
 *
 * THREAD SAFETY: a buffer belongs to one transfer at a time.
 */
#ifndef NG_CURLBUF_H
#define NG_CURLBUF_H

#include <stddef.h>

#include "ng_error.h"

typedef struct ng_curlbuf {
    char *data;    /* what came so far, NUL-terminated; NULL until a byte came */
    size_t len;    /* bytes in data, the NUL not counted */
    size_t max;    /* the most kept; 0 keeps nothing, so any body fails the transfer */
    int too_large; /* set once a reply went over max (not for a Content-Length refused up front) */
    int nomem;     /* set once growing failed; the transfer failed with CURLE_WRITE_ERROR */
    size_t _cap;   /* bytes data has room for, the NUL not counted */
} ng_curlbuf;

/* An empty buffer that keeps at most max bytes. Nothing is allocated yet. */
void ng_curlbuf_init(ng_curlbuf *b, size_t max) NG_NONNULL(1);

/*
 * The CURLOPT_WRITEFUNCTION, with a ng_curlbuf * as CURLOPT_WRITEDATA.
 * Returns what it kept, or 0 (the transfer fails) when the body would go
 * over max or memory runs out.
 */
size_t ng_curlbuf_write(char *ptr, size_t size, size_t nmemb, void *userdata);

/*
 * Sets on a libcurl easy handle (a CURL *) CURLOPT_WRITEFUNCTION and
 * CURLOPT_WRITEDATA to b, and CURLOPT_MAXFILESIZE_LARGE to b->max, so that
 * a reply that announces more is refused before it is read. b must outlive
 * the transfer. CURLE_OK (0) or the CURLcode of the option that failed.
 */
int ng_curlbuf_attach(void *curl, ng_curlbuf *b) NG_NONNULL(1, 2);

/* Wipes and frees what was collected; b is then empty, with the same max. NULL: nothing. */
void ng_curlbuf_free(ng_curlbuf *b);

#endif

/*
 * A capped reply buffer for libcurl (ng_curlbuf.h). Growth is by doubling,
 * clamped to max, so a long reply costs O(log n) copies and never more than
 * max + 1 bytes; each copy is wiped before it is freed, not realloc'd away.
 */
#include "ng_curlbuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

enum { FIRST_CAP = 4096 };

void
ng_curlbuf_init(ng_curlbuf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

/* Room for need bytes in all, need <= max; 0 or -1. */
static int
grow(ng_curlbuf *b, size_t need)
{
    size_t cap = b->_cap != 0 ? b->_cap : FIRST_CAP;
    char *more;

    while (cap < need)
        cap = cap > b->max / 2 ? b->max : cap * 2;
    if (cap > b->max)
        cap = b->max;
    if (cap == SIZE_MAX) /* no room left for the NUL */
        return -1;
    more = malloc(cap + 1);
    if (more == NULL)
        return -1;
    if (b->data != NULL) {
        memcpy(more, b->data, b->len + 1);
        sodium_memzero(b->data, b->_cap + 1);
        free(b->data);
    }
    b->data = more;
    b->_cap = cap;
    return 0;
}

size_t
ng_curlbuf_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    ng_curlbuf *b = userdata;
    size_t n;

    /* libcurl passes size 1; a product that overflows is over any cap. */
    if (nmemb != 0 && size > SIZE_MAX / nmemb) {
        b->too_large = 1;
        return 0;
    }
    n = size * nmemb;
    if (n > b->max - b->len) {
        b->too_large = 1;
        return 0;
    }
    if (n == 0)
        return 0;
    if ((b->data == NULL || n > b->_cap - b->len) && grow(b, b->len + n) != 0) {
        b->nomem = 1;
        return 0;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

int
ng_curlbuf_attach(void *curl, ng_curlbuf *b)
{
    CURLcode rc = curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, ng_curlbuf_write);
    curl_off_t limit = (uint64_t)b->max > (uint64_t)INT64_MAX ? INT64_MAX : (curl_off_t)b->max;

    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_WRITEDATA, b);
    /* 0 would mean no limit to libcurl; the write callback still refuses the first byte. */
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, limit > 0 ? limit : (curl_off_t)1);
    return (int)rc;
}

void
ng_curlbuf_free(ng_curlbuf *b)
{
    if (b == NULL)
        return;
    if (b->data != NULL) {
        sodium_memzero(b->data, b->_cap + 1);
        free(b->data);
    }
    b->data = NULL;
    b->len = b->_cap = 0;
}

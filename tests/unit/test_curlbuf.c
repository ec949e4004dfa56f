/*
 * The capped libcurl reply buffer: the write callback on its own (exactly
 * the cap fits, one byte more fails and keeps what came, growth over many
 * small writes, a cap of 0, free and reuse), then real transfers from a
 * libmicrohttpd server on 127.0.0.1: a body that fits, one over the cap
 * refused from its Content-Length before it is read, and one over the cap
 * without a Content-Length (chunked) cut off while it streams.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <microhttpd.h>

#include "ng_curlbuf.h"

enum { BODY_BYTES = 100000 };

static struct MHD_Daemon *server;
static char base_url[64];
static char body[BODY_BYTES];

static void
test_cap_exact(void **state)
{
    ng_curlbuf b;

    (void)state;
    ng_curlbuf_init(&b, 10);
    assert_null(b.data);
    assert_int_equal(ng_curlbuf_write((char *)"hello", 1, 5, &b), 5);
    assert_string_equal(b.data, "hello");
    assert_int_equal(ng_curlbuf_write((char *)"world", 1, 5, &b), 5);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "helloworld");
    assert_false(b.too_large);
    /* One byte over: refused, and what came before stays as it was. */
    assert_int_equal(ng_curlbuf_write((char *)"!", 1, 1, &b), 0);
    assert_true(b.too_large);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "helloworld");
    /* An empty write is all of nothing. */
    assert_int_equal(ng_curlbuf_write((char *)"", 1, 0, &b), 0);
    ng_curlbuf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 10);
    ng_curlbuf_free(&b);
    ng_curlbuf_free(NULL);

    /* A single write larger than the cap keeps nothing. */
    ng_curlbuf_init(&b, 4);
    assert_int_equal(ng_curlbuf_write((char *)"hello", 1, 5, &b), 0);
    assert_true(b.too_large);
    assert_null(b.data);
    ng_curlbuf_free(&b);

    /* A cap of 0 keeps nothing at all. */
    ng_curlbuf_init(&b, 0);
    assert_int_equal(ng_curlbuf_write((char *)"x", 1, 1, &b), 0);
    assert_true(b.too_large);
    ng_curlbuf_free(&b);

    /* A size times count that overflows is over any cap. */
    ng_curlbuf_init(&b, SIZE_MAX);
    assert_int_equal(ng_curlbuf_write((char *)"x", SIZE_MAX / 2, 3, &b), 0);
    assert_true(b.too_large);
    ng_curlbuf_free(&b);
}

static void
test_growth(void **state)
{
    ng_curlbuf b;
    size_t i;

    (void)state;
    /* Many small writes, past several doublings, up to a cap that is no power of two. */
    ng_curlbuf_init(&b, BODY_BYTES);
    for (i = 0; i < BODY_BYTES; i += 7) {
        size_t n = BODY_BYTES - i < 7 ? BODY_BYTES - i : 7;

        assert_int_equal(ng_curlbuf_write(body + i, 1, n, &b), n);
    }
    assert_int_equal(b.len, BODY_BYTES);
    assert_memory_equal(b.data, body, BODY_BYTES);
    assert_int_equal(b.data[BODY_BYTES], '\0');
    assert_int_equal(ng_curlbuf_write(body, 1, 1, &b), 0);
    assert_true(b.too_large);
    ng_curlbuf_free(&b);
}

static ng_curlbuf *
get(const char *path, size_t max, CURLcode *rc)
{
    static ng_curlbuf b;
    char url[128];
    CURL *c = curl_easy_init();

    assert_non_null(c);
    ng_curlbuf_init(&b, max);
    snprintf(url, sizeof url, "%s%s", base_url, path);
    assert_int_equal(curl_easy_setopt(c, CURLOPT_URL, url), CURLE_OK);
    assert_int_equal(curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L), CURLE_OK);
    assert_int_equal(ng_curlbuf_attach(c, &b), CURLE_OK);
    *rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    return &b;
}

static void
test_transfer(void **state)
{
    CURLcode rc;
    ng_curlbuf *b;

    (void)state;
    b = get("/fixed", BODY_BYTES, &rc);
    assert_int_equal(rc, CURLE_OK);
    assert_int_equal(b->len, BODY_BYTES);
    assert_memory_equal(b->data, body, BODY_BYTES);
    ng_curlbuf_free(b);
    b = get("/chunked", BODY_BYTES, &rc);
    assert_int_equal(rc, CURLE_OK);
    assert_int_equal(b->len, BODY_BYTES);
    assert_memory_equal(b->data, body, BODY_BYTES);
    ng_curlbuf_free(b);

    /* Announced over the cap: refused before a byte of it is kept. */
    b = get("/fixed", BODY_BYTES - 1, &rc);
    assert_int_equal(rc, CURLE_FILESIZE_EXCEEDED);
    assert_int_equal(b->len, 0);
    ng_curlbuf_free(b);
    /* Not announced: cut off once it goes over, never more than the cap kept. */
    b = get("/chunked", BODY_BYTES - 1, &rc);
    assert_int_equal(rc, CURLE_WRITE_ERROR);
    assert_true(b->too_large);
    assert_true(b->len <= BODY_BYTES - 1);
    assert_memory_equal(b->data, body, b->len);
    ng_curlbuf_free(b);
}

static ssize_t
chunk(void *cls, uint64_t pos, char *buf, size_t max)
{
    size_t n = BODY_BYTES - (size_t)pos;

    (void)cls;
    if (pos >= BODY_BYTES)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n > max)
        n = max;
    if (n > 1000) /* small pieces, so the cut comes mid-stream */
        n = 1000;
    memcpy(buf, body + pos, n);
    return (ssize_t)n;
}

static enum MHD_Result
answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
       const char *upload, size_t *upload_len, void **con_cls)
{
    struct MHD_Response *r;
    enum MHD_Result rc;

    (void)cls;
    (void)method;
    (void)version;
    (void)upload;
    (void)upload_len;
    (void)con_cls;
    if (strcmp(url, "/chunked") == 0)
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1000, chunk, NULL, NULL);
    else
        r = MHD_create_response_from_buffer(BODY_BYTES, body, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

static int
start_server(void **state)
{
    const union MHD_DaemonInfo *info;
    struct sockaddr_in sa;

    (void)state;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    server = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL, answer, NULL,
                              MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (server == NULL)
        return -1;
    info = MHD_get_daemon_info(server, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL)
        return -1;
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%u", (unsigned)info->port);
    return 0;
}

static int
stop_server(void **state)
{
    (void)state;
    MHD_stop_daemon(server);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest alone[] = {
        cmocka_unit_test(test_cap_exact),
        cmocka_unit_test(test_growth),
    };
    const struct CMUnitTest transfers[] = {
        cmocka_unit_test(test_transfer),
    };
    size_t i;
    int failed;

    for (i = 0; i < BODY_BYTES; i++)
        body[i] = (char)('a' + i * 7 % 26);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    failed = cmocka_run_group_tests_name("curlbuf", alone, NULL, NULL);
    failed += cmocka_run_group_tests_name("curlbuf, transfers (libmicrohttpd)", transfers, start_server, stop_server);
    curl_global_cleanup();
    return failed;
}

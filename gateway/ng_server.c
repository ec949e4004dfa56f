#include "ng_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <sodium.h>

#include "ng_hex.h"

struct ng_server {
    struct MHD_Daemon *d;
    atomic_uint requests; /* begun and not completed */
    atomic_int draining;  /* quiesced: each answer closes its connection */
    ng_server_opts o;
    int unix_fd;
    int quiesced_fd; /* the listening socket quiesce handed back to us, or -1 */
    char unix_path[108];
    int port;
};

/* What a connection accumulates between libmicrohttpd's calls for one request. */
struct pending {
    uint8_t *body;
    size_t len, cap;
    int too_large;
    char id[NG_SERVER_REQUEST_ID_BYTES];
};

int
ng_request_type_is(const ng_request *req, const char *type)
{
    const char *ct = ng_request_header(req, "Content-Type");
    size_t n = strlen(type);

    if (ct == NULL || strncasecmp(ct, type, n) != 0)
        return 0;
    ct += n + strspn(ct + n, " \t"); /* RFC 9110: optional white space before the parameters */
    return *ct == '\0' || *ct == ';';
}

const char *
ng_request_header(const ng_request *req, const char *name)
{
    if (req->header != NULL)
        return req->header(req->header_ctx, name);
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

int
ng_request_bearer(const ng_request *req, uint8_t *out, size_t len)
{
    const char *h = ng_request_header(req, "Authorization");

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0 || strlen(h + 7) != 2 * len ||
        ng_hex_decode(out, len, h + 7, 2 * len) != NG_OK) {
        sodium_memzero(out, len);
        return -1;
    }
    return 0;
}

const char *
ng_request_arg(const ng_request *req, const char *name)
{
    return req->conn != NULL ? MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name) : NULL;
}

void
ng_response_text(ng_response *res, int status, const char *content_type, const char *text)
{
    free(res->body);
    res->status = status;
    res->content_type = content_type;
    res->body = strdup(text);
    res->len = res->body != NULL ? strlen(res->body) : 0;
}

void
ng_response_error(ng_response *res, int status, const char *code, const char *message)
{
    json_t *j = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

    ng_response_text(res, status, NULL, text != NULL ? text : "{\"error\":{\"code\":\"internal\",\"message\":\"\"}}");
    free(text);
    json_decref(j);
}

void
ng_response_json(ng_response *res, int status, json_t *obj)
{
    char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;

    json_decref(obj);
    if (text == NULL) {
        ng_response_error(res, 500, "internal", "out of memory");
        return;
    }
    free(res->body);
    res->status = status;
    res->content_type = NULL;
    res->body = text;
    res->len = strlen(text);
}

void
ng_response_header(ng_response *res, const char *name, const char *value)
{
    if (res->headers == NG_SERVER_MAX_HEADERS)
        return;
    res->header_name[res->headers] = name;
    res->header_value[res->headers] = strdup(value);
    if (res->header_value[res->headers] != NULL)
        res->headers++;
}

void
ng_request_id_new(char id[NG_SERVER_REQUEST_ID_BYTES])
{
    uint8_t raw[(NG_SERVER_REQUEST_ID_BYTES - 1) / 2];

    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(id, NG_SERVER_REQUEST_ID_BYTES, raw, sizeof raw);
}

void
ng_response_free(ng_response *res)
{
    int i;

    if (res->body != NULL)
        sodium_memzero(res->body, res->len);
    free(res->body);
    for (i = 0; i < res->headers; i++)
        free(res->header_value[i]);
    memset(res, 0, sizeof *res);
}

/* Answers may carry secrets (a whsec_ made by pairing): wiped before the heap reuses them. */
struct wipe {
    void *p;
    size_t len;
};

static void
wipe_free(void *cls)
{
    struct wipe *w = cls;

    sodium_memzero(w->p, w->len);
    free(w->p);
    free(w);
}

static enum MHD_Result
respond(struct ng_server *s, struct MHD_Connection *conn, const struct pending *p, ng_response *res)
{
    struct MHD_Response *r;
    struct wipe *w;
    enum MHD_Result rc;
    int i;

    w = malloc(sizeof *w);
    if (w == NULL) {
        ng_response_free(res);
        return MHD_NO;
    }
    w->p = res->body;
    w->len = res->len;
    r = MHD_create_response_from_buffer_with_free_callback_cls(res->len, res->body, wipe_free, w);
    if (r == NULL) {
        free(w);
        ng_response_free(res);
        return MHD_NO;
    }
    res->body = NULL; /* libmicrohttpd owns it now */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            res->content_type != NULL ? res->content_type : "application/json");
    MHD_add_response_header(r, "x-request-id", p->id);
    if (atomic_load(&s->draining))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    for (i = 0; i < res->headers; i++)
        MHD_add_response_header(r, res->header_name[i], res->header_value[i]);
    rc = MHD_queue_response(conn, (unsigned)res->status, r);
    MHD_destroy_response(r);
    ng_response_free(res);
    return rc;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
           const char *upload, size_t *upload_size, void **state)
{
    struct ng_server *s = cls;
    struct pending *p = *state;
    ng_response res;
    ng_request req;

    (void)version;
    if (p == NULL) {
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

        p = calloc(1, sizeof *p);
        if (p == NULL)
            return MHD_NO;
        atomic_fetch_add(&s->requests, 1);
        ng_request_id_new(p->id);
        /* A declared length over the limit is refused before a byte of it is read. */
        if (cl != NULL && strtoull(cl, NULL, 10) > s->o.max_body)
            p->too_large = 1;
        *state = p;
        return MHD_YES; /* answer on a later call: see the header */
    }
    if (*upload_size > 0) {
        if (!p->too_large && p->len + *upload_size > s->o.max_body)
            p->too_large = 1;
        if (!p->too_large) {
            if (p->len + *upload_size > p->cap) {
                size_t cap = p->cap ? p->cap : 4096;
                uint8_t *more;
                while (cap < p->len + *upload_size)
                    cap *= 2;
                more = realloc(p->body, cap);
                if (more == NULL)
                    return MHD_NO;
                p->body = more;
                p->cap = cap;
            }
            memcpy(p->body + p->len, upload, *upload_size);
            p->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    memset(&res, 0, sizeof res);
    memset(&req, 0, sizeof req);
    req.too_large = p->too_large;
    req.method = method;
    req.path = url;
    req.request_id = p->id;
    req.body = p->body != NULL && !p->too_large ? p->body : (const uint8_t *)"";
    req.body_len = p->too_large ? 0 : p->len;
    req.conn = conn;
    res.status = 500;
    s->o.handler(s->o.ctx, &req, &res);
    if (p->too_large && res.status != 413) {
        char msg[96];
        snprintf(msg, sizeof msg, "request body over the limit of %zu bytes", s->o.max_body);
        ng_response_error(&res, 413, "too_large", msg);
    }
    if (res.body == NULL)
        ng_response_text(&res, res.status, res.content_type, "");
    return respond(s, conn, p, &res);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **state, enum MHD_RequestTerminationCode code)
{
    struct ng_server *s = cls;
    struct pending *p = *state;

    (void)conn;
    (void)code;
    if (p == NULL)
        return;
    atomic_fetch_sub(&s->requests, 1);
    /* Bodies are messages in clear: wipe them before the heap reuses the memory. */
    if (p->body != NULL)
        sodium_memzero(p->body, p->cap);
    free(p->body);
    free(p);
    *state = NULL;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct ng_server *s = cls;
    char line[512];
    size_t n;

    if (s->o.error_log == NULL)
        return;
    vsnprintf(line, sizeof line, fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    s->o.error_log(s->o.ctx, line);
}

static int
listen_unix(struct ng_server *s, const char *path)
{
    struct sockaddr_un sa;
    int fd;

    if (strlen(path) >= sizeof sa.sun_path)
        return -1;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    unlink(path); /* a socket left by a killed process */
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || chmod(path, 0600) != 0 || listen(fd, 128) != 0) {
        close(fd);
        return -1;
    }
    snprintf(s->unix_path, sizeof s->unix_path, "%s", path);
    return fd;
}

unsigned
ng_server_threads(unsigned configured)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (configured > 0)
        return configured;
    /* No more than listen.threads may say. */
    return n > 64 ? 256u : n > 1 ? 4u * (unsigned)n : 4u;
}

ng_err
ng_server_start(ng_server **out, const ng_server_opts *o)
{
    struct ng_server *s;
    unsigned threads = o->threads;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    const union MHD_DaemonInfo *info;
    enum MHD_OPTION pool_opt = MHD_OPTION_THREAD_POOL_SIZE;
    unsigned pool_val;

    *out = NULL;
    if (o->handler == NULL || o->max_body == 0 || (o->unix_path == NULL && o->address == NULL))
        return NG_ERR_INVALID_ARG;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return NG_ERR_NOMEM;
    s->o = *o;
    s->unix_fd = -1;
    s->quiesced_fd = -1;
    threads = ng_server_threads(threads);
    /*
     * A pool of one is no pool: libmicrohttpd warns about the option then,
     * so it is replaced by a repeat of the timeout.
     */
    if (threads < 2) {
        pool_opt = MHD_OPTION_CONNECTION_TIMEOUT;
        pool_val = o->timeout_s;
    } else
        pool_val = threads;
    if (o->unix_path != NULL) {
        s->unix_fd = listen_unix(s, o->unix_path);
        if (s->unix_fd < 0) {
            free(s);
            return NG_ERR_IO;
        }
        s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                                MHD_OPTION_LISTEN_SOCKET, s->unix_fd, pool_opt, pool_val, MHD_OPTION_CONNECTION_TIMEOUT,
                                o->timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
    } else {
        struct sockaddr_storage ss;
        socklen_t sl;

        memset(&ss, 0, sizeof ss);
        if (strchr(o->address, ':') != NULL) {
            struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
            a6->sin6_family = AF_INET6;
            a6->sin6_port = htons((uint16_t)o->port);
            if (inet_pton(AF_INET6, o->address, &a6->sin6_addr) != 1) {
                free(s);
                return NG_ERR_INVALID_ARG;
            }
            sl = sizeof *a6;
            flags |= MHD_USE_IPv6;
        } else {
            struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
            a4->sin_family = AF_INET;
            a4->sin_port = htons((uint16_t)o->port);
            if (inet_pton(AF_INET, o->address, &a4->sin_addr) != 1) {
                free(s);
                return NG_ERR_INVALID_ARG;
            }
            sl = sizeof *a4;
        }
        (void)sl;
        s->d =
            MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
                             s, MHD_OPTION_SOCK_ADDR, &ss, pool_opt, pool_val, MHD_OPTION_CONNECTION_TIMEOUT,
                             o->timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
    }
    if (s->d == NULL) {
        if (s->unix_fd >= 0) {
            close(s->unix_fd);
            unlink(s->unix_path);
        }
        free(s);
        return NG_ERR_IO;
    }
    info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info != NULL ? info->port : o->port;
    *out = s;
    return NG_OK;
}

void
ng_server_quiesce(ng_server *s)
{
    if (s != NULL && s->d != NULL && s->quiesced_fd < 0) {
        int fd;

        atomic_store(&s->draining, 1);
        fd = MHD_quiesce_daemon(s->d);
        /* Ours to close; for the unix socket it is unix_fd, closed at stop. */
        s->quiesced_fd = fd != s->unix_fd ? fd : -1;
    }
}

unsigned
ng_server_requests(ng_server *s)
{
    return atomic_load(&s->requests);
}

unsigned
ng_server_connections(ng_server *s)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

    return info != NULL ? info->num_connections : 0;
}

int
ng_server_port(const ng_server *s)
{
    return s->port;
}

void
ng_server_stop(ng_server *s)
{
    if (s == NULL)
        return;
    MHD_stop_daemon(s->d);
    if (s->quiesced_fd >= 0)
        close(s->quiesced_fd);
    if (s->unix_fd >= 0) {
        close(s->unix_fd);
        unlink(s->unix_path);
    }
    free(s);
}

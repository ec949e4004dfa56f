/*
 * ng_server.h: an HTTP listener on libmicrohttpd that hands each request,
 * body read whole (up to a limit), to one handler, and sends its answer.
 *
 * The listener runs epoll with a thread pool; handlers run on the pool's
 * threads, so they must be thread-safe. A body over max_body is answered
 * 413 (the handler is told, to answer and count it) without being read; the response is always queued once the upload
 * is consumed (libmicrohttpd drops keep-alive for a response queued on the first call). Every request gets a random id,
 * passed to the handler and returned in "x-request-id".
 */
#ifndef NG_SERVER_H
#define NG_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ng_error.h"

enum {
    NG_SERVER_REQUEST_ID_BYTES = 33, /* 32 hex characters and a NUL */
    NG_SERVER_MAX_HEADERS = 8,
};

typedef struct ng_server ng_server;

typedef struct ng_request {
    const char *method;
    const char *path; /* without the query */
    const char *request_id;
    const uint8_t *body;
    size_t body_len;
    int too_large; /* the body went over max_body and was not read: answer 413 */
    void *conn;    /* for ng_request_header and ng_request_arg */
    /* A request that did not come over HTTP (a NATS submission): its headers, and the time its signature's age is
       measured at (when the bus stored it); 0: now. */
    const char *(*header)(const void *ctx, const char *name);
    const void *header_ctx;
    uint64_t signed_at_ms;
    /* Sent again as it was until stored (a bus redelivers), always with an Idempotency-Key: its webhook-id is not
       marked seen, or a redelivery after a failed store would be refused as a replay and lost. */
    int redelivered_until_stored;
} ng_request;

typedef struct ng_response {
    int status;
    const char *content_type; /* static; "application/json" when NULL */
    char *body;               /* malloc'd, freed by the server */
    size_t len;
    const char *header_name[NG_SERVER_MAX_HEADERS]; /* static names */
    char *header_value[NG_SERVER_MAX_HEADERS];      /* malloc'd, freed by the server */
    int headers;
} ng_response;

typedef void (*ng_server_handler)(void *ctx, const ng_request *req, ng_response *res);

typedef struct ng_server_opts {
    const char *address; /* IP literal; NULL with unix_path */
    int port;
    const char *unix_path; /* listen on this unix socket instead (created mode 0600) */
    unsigned threads;      /* 0: ng_server_threads(0) */
    size_t max_body;
    unsigned timeout_s;
    ng_server_handler handler;
    void *ctx;
    /* libmicrohttpd's own complaints, one line each (NULL: dropped). */
    void (*error_log)(void *ctx, const char *line);
} ng_server_opts;

/*
 * The worker threads a listener runs for configured (0: the default). A
 * handler waits on Redis for every request (and on its fsync with
 * appendfsync always), so a thread per core would leave cores idle: the
 * default is four per core, at least four.
 */
unsigned ng_server_threads(unsigned configured);

/* Binds and starts serving. NG_ERR_IO if the address cannot be bound. */
NG_MUST_CHECK ng_err ng_server_start(ng_server **out, const ng_server_opts *o);
/* Stops accepting new connections; requests in flight go on, and each answer from now on closes its connection. */
void ng_server_quiesce(ng_server *s);
/* Requests begun and not yet answered: what a drain waits for. */
unsigned ng_server_requests(ng_server *s);
/* Connections still open. */
unsigned ng_server_connections(ng_server *s);
/* Closes everything and frees; NULL is a no-op. */
void ng_server_stop(ng_server *s);
/* The port actually bound (useful with port 0). */
int ng_server_port(const ng_server *s);

/* A request header (case-insensitive), or NULL. */
const char *ng_request_header(const ng_request *req, const char *name);
/* 1 if the request's Content-Type is type (case aside), alone or before ";" and parameters. */
int ng_request_type_is(const ng_request *req, const char *type);
/* A fresh request id: 32 random hex characters, for the logs and x-request-id. */
void ng_request_id_new(char id[NG_SERVER_REQUEST_ID_BYTES]);
/* Frees what an answer holds, its body wiped first (answers may carry secrets), and clears it. */
void ng_response_free(ng_response *res);
/*
 * "Authorization: Bearer <2 * len hex characters>" decoded into out: 0, or
 * -1 (out zeroed) if the header is missing or not of that form. The caller
 * compares out in constant time and wipes it.
 */
int ng_request_bearer(const ng_request *req, uint8_t *out, size_t len);
/* A query argument, or NULL. */
const char *ng_request_arg(const ng_request *req, const char *name);

/* Sets a JSON body: {"error": {"code": code, "message": message}}. */
void ng_response_error(ng_response *res, int status, const char *code, const char *message);
/* Sets a body copied from text (content type as given, or JSON). */
void ng_response_text(ng_response *res, int status, const char *content_type, const char *text);
/* Sets obj, compact, as the JSON body, and drops the reference (NULL: a 500). */
void ng_response_json(ng_response *res, int status, json_t *obj);
/* Adds a header (the value is copied). */
void ng_response_header(ng_response *res, const char *name, const char *value);

#endif

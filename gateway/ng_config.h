/*
 * ng_config.h: the gateway's configuration, one JSON file plus environment
 * overrides, validated completely before anything starts.
 *
 * The file is JSON with `//` line comments. Every field is optional and has
 * a default; unknown keys are refused, so a typo never silently becomes a
 * default. Precedence: defaults < file < environment, where each field
 * `section.key` is overridden by NOISEGATE_<SECTION>_<KEY> (top-level
 * `data_dir` by NOISEGATE_DATA_DIR). NOISEGATE_VAULT_KEY and
 * NOISEGATE_VAULT_PASSPHRASE are master-key secrets read by the vault code,
 * not configuration fields: there is no vault.key or vault.passphrase here.
 *
 * All fields are described by one table (ng_config_schema), which drives
 * parsing, defaults, environment overrides, the dump, the commented example
 * and the tests; docs/config.md is checked against it. The reference is
 * docs/config.md.
 */
#ifndef NG_CONFIG_H
#define NG_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "ng_error.h"

enum {
    NG_CONFIG_MAX_FILE = 1024 * 1024, /* a larger file is refused before it is parsed */
    NG_CONFIG_MAX_RETRIES = 32,       /* entries of delivery.retry_schedule_s */
    NG_CONFIG_MAX_ALLOW = 64,         /* entries of delivery.allow_private and poll.peer_redis */
    NG_CONFIG_MAX_PATH = 4095,        /* bytes of a resolved path */
    NG_CONFIG_MAX_SOCKET_PATH = 107,  /* bytes of a unix socket path (sun_path less its NUL) */
    NG_CONFIG_ERR_BYTES = 1024,       /* room for any message, unless the file's name is very long */
};

/* The values of the enum fields are the indexes of their names in the schema. */
typedef enum ng_config_vault_store {
    NG_CONFIG_VAULT_STORE_FILE = 0,
    NG_CONFIG_VAULT_STORE_REDIS = 1,
} ng_config_vault_store;

typedef enum ng_config_master_key {
    NG_CONFIG_MASTER_KEY_FILE = 0,       /* vault.key_file */
    NG_CONFIG_MASTER_KEY_ENV = 1,        /* NOISEGATE_VAULT_KEY */
    NG_CONFIG_MASTER_KEY_PASSPHRASE = 2, /* NOISEGATE_VAULT_PASSPHRASE, else a prompt */
} ng_config_master_key;

typedef enum ng_config_appendfsync {
    NG_CONFIG_APPENDFSYNC_EVERYSEC = 0,
    NG_CONFIG_APPENDFSYNC_ALWAYS = 1,
    NG_CONFIG_APPENDFSYNC_NO = 2,
} ng_config_appendfsync;

typedef enum ng_config_outbox_store {
    NG_CONFIG_OUTBOX_STORE_REDIS = 0,
    NG_CONFIG_OUTBOX_STORE_HTTP = 1,
} ng_config_outbox_store;

typedef enum ng_config_log_level {
    NG_CONFIG_LOG_DEBUG = 0,
    NG_CONFIG_LOG_INFO = 1,
    NG_CONFIG_LOG_WARN = 2,
    NG_CONFIG_LOG_ERROR = 3,
} ng_config_log_level;

typedef enum ng_config_log_format {
    NG_CONFIG_LOG_JSON = 0,
    NG_CONFIG_LOG_TEXT = 1,
} ng_config_log_format;

/*
 * The effective configuration. Strings are malloc'd and never NULL after a
 * successful load (an unset optional string is ""); paths are absolute;
 * public_url is never empty and has no trailing slash. Meanings, units and
 * ranges: docs/config.md.
 */
typedef struct ng_config {
    char *data_dir;
    char *public_url;
    struct {
        char *address;
        int port;
        int max_body;
        int timeout_s;
        int threads; /* 0: one per core */
    } listen;
    struct {
        char *socket; /* "": no unix socket */
        char *address;
        int port; /* 0: no TCP listener */
        char *token_file;
    } admin;
    struct {
        ng_config_vault_store store;
        char *path;
        char *redis_key;
        ng_config_master_key master_key;
        char *key_file;
        int argon2_ops;     /* 0: libsodium's moderate limit */
        int argon2_mem_mib; /* 0: libsodium's moderate limit */
    } vault;
    struct {
        char *url; /* "": the embedded redis-server under data_dir */
        int timeout_ms;
        ng_config_appendfsync appendfsync;
    } redis;
    struct {
        ng_config_outbox_store store;
        char *http_url;
        int http_timeout_ms;
        int trim_interval_s;
    } outbox;
    struct {
        int timeout_ms;
        int retry_schedule_s[NG_CONFIG_MAX_RETRIES];
        size_t retry_schedule_len;
        int max_attempts;
        int concurrency_per_endpoint;
        char *allow_private[NG_CONFIG_MAX_ALLOW]; /* IP literals or CIDRs */
        size_t allow_private_len;
    } delivery;
    struct {
        int interval_ms;
        int max_interval_ms;
        int batch;
        char *peer_redis[NG_CONFIG_MAX_ALLOW]; /* redis://HOST[:PORT][/DB] URLs */
        size_t peer_redis_len;
    } poll;
    struct {
        int max_body; /* 0: only listen.max_body limits it */
        int default_ttl_s;
        int max_ttl_s;
        int clock_skew_s;
    } messages;
    struct {
        int tolerance_s;
    } webhooks;
    struct {
        ng_config_log_level level;
        ng_config_log_format format;
    } log;
} ng_config;

/* The kinds of value a field holds; each has its own checks. */
typedef enum ng_config_type {
    NG_CONFIG_INT,        /* int, min-max (or 0 with NG_CONFIG_ZERO_OK) */
    NG_CONFIG_ENUM,       /* one of `choices`; stored as the index */
    NG_CONFIG_STRING,     /* min-max bytes, no NUL */
    NG_CONFIG_PATH,       /* min-max bytes before resolution; resolved at load */
    NG_CONFIG_URL,        /* http:// or https:// URL, trailing slashes dropped; "" if min is 0 */
    NG_CONFIG_IP,         /* IPv4 or IPv6 literal */
    NG_CONFIG_REDIS_URL,  /* "", redis://HOST:PORT[/DB] or unix:PATH[?db=N] */
    NG_CONFIG_INT_LIST,   /* min-max ints, each item_min-item_max */
    NG_CONFIG_NET_LIST,   /* min-max strings, each an IP literal or CIDR */
    NG_CONFIG_REDIS_LIST, /* min-max strings, each a redis://HOST[:PORT][/DB] URL */
} ng_config_type;

enum {
    NG_CONFIG_ZERO_OK = 1 << 0,       /* INT: 0 is allowed besides min-max */
    NG_CONFIG_IN_DATA_DIR = 1 << 1,   /* PATH: relative to data_dir (else to the file's directory) */
    NG_CONFIG_SOCKET = 1 << 2,        /* PATH: a unix socket, NG_CONFIG_MAX_SOCKET_PATH once resolved */
    NG_CONFIG_NONDECREASING = 1 << 3, /* INT_LIST: each item at least the one before */
};

/* One row of the schema. */
typedef struct ng_config_field {
    const char *path; /* "listen.port"; top-level fields have no dot */
    const char *env;  /* "NOISEGATE_LISTEN_PORT" */
    ng_config_type type;
    unsigned flags;
    long min, max;              /* INT: the value; strings: bytes; lists: items */
    long item_min, item_max;    /* INT_LIST: each item */
    const char *const *choices; /* ENUM: NULL-terminated */
    const char *def;            /* the default, as JSON text (also what docs/config.md shows) */
    const char *help;           /* one line, for the example and the docs */
    size_t offset;              /* of the value in ng_config */
    size_t count_offset;        /* lists: of the size_t item count */
} ng_config_field;

/* The schema, in file order: top-level fields first, then each section's. */
const ng_config_field *ng_config_schema(size_t *count);

/*
 * What a field accepts, as an error message says it: "an integer 1-65535".
 * NG_ERR_BUFFER_TOO_SMALL if it was truncated to fit.
 */
ng_err ng_config_describe(const ng_config_field *f, char *buf, size_t len);

/* Every field at its default, paths resolved. NG_ERR_NOMEM. Free with ng_config_free. */
NG_MUST_CHECK ng_err ng_config_defaults(ng_config *cfg);

/*
 * Defaults, then the file at path (NULL: none), then the environment; paths
 * resolved, cross-field rules checked. On failure cfg is left empty (safe to
 * ng_config_free) and err holds one line, NUL-terminated, naming the file or
 * environment variable, the field and what was expected, e.g.
 *   "gw.json: listen.port: expected an integer 1-65535, got \"80a\"".
 * NG_ERR_IO cannot read the file (or find the directory a relative data_dir
 * starts from), NG_ERR_TOO_LARGE over NG_CONFIG_MAX_FILE,
 * NG_ERR_PARSE invalid content or environment value, NG_ERR_NOMEM.
 */
NG_MUST_CHECK ng_err ng_config_load(ng_config *cfg, const char *path, char *err, size_t errlen);

/* Frees the strings and zeroes cfg; a zeroed cfg is a no-op. */
void ng_config_free(ng_config *cfg);

/*
 * The outbox URL peers read this gateway's parcels from, as exported in
 * connection parameters: outbox.http_url for HTTP storage, else
 * public_url + "/v1/outbox". Truncated to cap (NUL included).
 */
void ng_config_outbox_url(const ng_config *cfg, char *out, size_t cap);

/* The configuration as JSON (one object, a newline after it), loadable as is. NG_ERR_IO, NG_ERR_NOMEM. */
NG_MUST_CHECK ng_err ng_config_dump(const ng_config *cfg, FILE *out);

/* A commented configuration with every field at its default. NG_ERR_IO. */
NG_MUST_CHECK ng_err ng_config_example(FILE *out);

#endif

/* realpath is XSI, beyond the POSIX base the Makefile asks for. */
#define _XOPEN_SOURCE 700

#include "ng_config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ng_io.h"

/* Enum fields are written through an int pointer by the table-driven code. */
_Static_assert(sizeof(ng_config_vault_store) == sizeof(int), "enum size");
_Static_assert(sizeof(ng_config_master_key) == sizeof(int), "enum size");
_Static_assert(sizeof(ng_config_appendfsync) == sizeof(int), "enum size");
_Static_assert(sizeof(ng_config_outbox_store) == sizeof(int), "enum size");
_Static_assert(sizeof(ng_config_log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(ng_config_log_format) == sizeof(int), "enum size");

/* A value shown in a message is cut here, so a huge value never floods a log. */
#define SHOW_CHARS 40
/* "FILE: section.key[i]" for any file name a path can be. */
#define AT_BYTES (PATH_MAX + 128)

#define OFF(member) offsetof(ng_config, member)

static const char *const vault_stores[] = {"file", "redis", NULL};
static const char *const master_keys[] = {"file", "env", "passphrase", NULL};
static const char *const appendfsyncs[] = {"everysec", "always", "no", NULL};
static const char *const outbox_stores[] = {"redis", "http", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_formats[] = {"json", "text", NULL};

static const struct section {
    const char *name; /* "" for the top level */
    const char *help;
} sections[] = {
    {"", NULL},
    {"listen", "The HTTP API for backends and peers."},
    {"admin", "The admin API: a unix socket, a TCP listener, or both; every request carries the admin token."},
    {"vault", "The sealed key store and where its master key comes from."},
    {"redis", "The Redis server behind the queues (and behind the vault when vault.store is \"redis\")."},
    {"outbox", "Where this gateway's outgoing parcels wait for peers to fetch them."},
    {"delivery", "Webhook deliveries to backends."},
    {"poll", "Polling peers' outboxes."},
    {"messages", "Limits on messages from backends and parcels from peers."},
    {"webhooks", "Signed requests from backends."},
    {"log", "Logging to standard error."},
};

/*
 * One row per field. INT: min-max values; TEXT: min-max bytes; LIST: min-max
 * items of item_min-item_max. The default is JSON text, parsed by the same
 * code as the file, so a default obeys the same rules as a value.
 */
#define INT(path, env, flags, min, max, def, member, help)                                                             \
    {                                                                                                                  \
        path, env, NG_CONFIG_INT, flags, min, max, 0, 0, NULL, def, help, OFF(member), 0                               \
    }
#define ENUM(path, env, choices, def, member, help)                                                                    \
    {                                                                                                                  \
        path, env, NG_CONFIG_ENUM, 0, 0, 0, 0, 0, choices, def, help, OFF(member), 0                                   \
    }
#define TEXT(path, env, type, flags, min, max, def, member, help)                                                      \
    {                                                                                                                  \
        path, env, type, flags, min, max, 0, 0, NULL, def, help, OFF(member), 0                                        \
    }
#define LIST(path, env, type, flags, min, max, item_min, item_max, def, member, count, help)                           \
    {                                                                                                                  \
        path, env, type, flags, min, max, item_min, item_max, NULL, def, help, OFF(member), OFF(count)                 \
    }

static const ng_config_field fields[] = {
    TEXT("data_dir", "NOISEGATE_DATA_DIR", NG_CONFIG_PATH, 0, 1, NG_CONFIG_MAX_PATH, "\"/var/lib/noisegate\"", data_dir,
         "The gateway's state: vault, admin socket and token, embedded Redis. Relative: to this file's directory."),
    TEXT("public_url", "NOISEGATE_PUBLIC_URL", NG_CONFIG_URL, 0, 0, 2048, "\"\"", public_url,
         "The base URL peers use to reach this gateway; \"\" means http://<listen.address>:<listen.port>."),

    TEXT("listen.address", "NOISEGATE_LISTEN_ADDRESS", NG_CONFIG_IP, 0, 1, 64, "\"127.0.0.1\"", listen.address,
         "The address the HTTP API listens on; 0.0.0.0 or :: for every interface."),
    INT("listen.port", "NOISEGATE_LISTEN_PORT", 0, 1, 65535, "8080", listen.port, "The TCP port of the HTTP API."),
    INT("listen.max_body", "NOISEGATE_LISTEN_MAX_BODY", 0, 1024, 67108864, "1048576", listen.max_body,
        "The largest request body accepted, in bytes; a larger one is answered 413 before it is read."),
    INT("listen.timeout_s", "NOISEGATE_LISTEN_TIMEOUT_S", 0, 1, 3600, "30", listen.timeout_s,
        "Seconds a client connection may stay idle before it is closed."),
    INT("listen.threads", "NOISEGATE_LISTEN_THREADS", 0, 0, 256, "0", listen.threads,
        "HTTP worker threads; 0 means four per CPU core (each waits on Redis for every request)."),

    TEXT("admin.socket", "NOISEGATE_ADMIN_SOCKET", NG_CONFIG_PATH, NG_CONFIG_IN_DATA_DIR | NG_CONFIG_SOCKET, 0,
         NG_CONFIG_MAX_PATH, "\"admin.sock\"", admin.socket,
         "The admin API's unix socket; \"\" for none. Relative: to data_dir."),
    TEXT("admin.address", "NOISEGATE_ADMIN_ADDRESS", NG_CONFIG_IP, 0, 1, 64, "\"127.0.0.1\"", admin.address,
         "The address of the admin API's TCP listener, when admin.port is not 0."),
    INT("admin.port", "NOISEGATE_ADMIN_PORT", 0, 0, 65535, "0", admin.port,
        "The TCP port of the admin API; 0 for no TCP listener."),
    TEXT("admin.token_file", "NOISEGATE_ADMIN_TOKEN_FILE", NG_CONFIG_PATH, NG_CONFIG_IN_DATA_DIR, 1, NG_CONFIG_MAX_PATH,
         "\"admin.token\"", admin.token_file, "The file holding the admin API's bearer token. Relative: to data_dir."),

    ENUM("vault.store", "NOISEGATE_VAULT_STORE", vault_stores, "\"file\"", vault.store,
         "Where the vault lives: \"file\" (vault.path) or \"redis\" (vault.redis_key, shared by gateways)."),
    TEXT("vault.path", "NOISEGATE_VAULT_PATH", NG_CONFIG_PATH, NG_CONFIG_IN_DATA_DIR, 1, NG_CONFIG_MAX_PATH,
         "\"vault.ngv\"", vault.path, "The vault file when vault.store is \"file\". Relative: to data_dir."),
    TEXT("vault.redis_key", "NOISEGATE_VAULT_REDIS_KEY", NG_CONFIG_STRING, 0, 1, 200, "\"noisegate:vault\"",
         vault.redis_key, "The Redis key holding the vault when vault.store is \"redis\"."),
    ENUM("vault.master_key", "NOISEGATE_VAULT_MASTER_KEY", master_keys, "\"file\"", vault.master_key,
         "The master key comes from \"file\" (vault.key_file), \"env\" (NOISEGATE_VAULT_KEY) or \"passphrase\" "
         "(NOISEGATE_VAULT_PASSPHRASE, else a prompt)."),
    TEXT("vault.key_file", "NOISEGATE_VAULT_KEY_FILE", NG_CONFIG_PATH, NG_CONFIG_IN_DATA_DIR, 1, NG_CONFIG_MAX_PATH,
         "\"vault.key\"", vault.key_file,
         "The master key file (base64 of 32 bytes, mode 0600) when vault.master_key is \"file\". Relative: to "
         "data_dir."),
    INT("vault.argon2_ops", "NOISEGATE_VAULT_ARGON2_OPS", NG_CONFIG_ZERO_OK, 1, 16, "0", vault.argon2_ops,
        "Argon2id passes when a passphrase vault is created or rekeyed; 0 means libsodium's moderate limit."),
    INT("vault.argon2_mem_mib", "NOISEGATE_VAULT_ARGON2_MEM_MIB", NG_CONFIG_ZERO_OK, 8, 4096, "0", vault.argon2_mem_mib,
        "Argon2id memory in MiB when a passphrase vault is created or rekeyed; 0 means libsodium's moderate limit."),

    TEXT("redis.url", "NOISEGATE_REDIS_URL", NG_CONFIG_REDIS_URL, 0, 0, NG_CONFIG_MAX_PATH, "\"\"", redis.url,
         "\"\" runs a private redis-server under data_dir; else redis://HOST:PORT[/DB] or unix:PATH[?db=N] (PATH "
         "relative to data_dir)."),
    INT("redis.timeout_ms", "NOISEGATE_REDIS_TIMEOUT_MS", 0, 10, 60000, "2000", redis.timeout_ms,
        "Connect and command timeout for Redis, in milliseconds."),
    ENUM("redis.appendfsync", "NOISEGATE_REDIS_APPENDFSYNC", appendfsyncs, "\"everysec\"", redis.appendfsync,
         "The AOF fsync policy of the embedded redis-server; ignored when redis.url is set."),

    ENUM("outbox.store", "NOISEGATE_OUTBOX_STORE", outbox_stores, "\"redis\"", outbox.store,
         "Where outgoing parcels go: \"redis\" (served to peers by this gateway) or \"http\" (outbox.http_url)."),
    TEXT("outbox.http_url", "NOISEGATE_OUTBOX_HTTP_URL", NG_CONFIG_URL, 0, 0, 2048, "\"\"", outbox.http_url,
         "The base URL of the HTTP (WebDAV) storage when outbox.store is \"http\"."),
    INT("outbox.http_timeout_ms", "NOISEGATE_OUTBOX_HTTP_TIMEOUT_MS", 0, 10, 600000, "5000", outbox.http_timeout_ms,
        "Timeout of one request to the HTTP storage, in milliseconds."),
    INT("outbox.trim_interval_s", "NOISEGATE_OUTBOX_TRIM_INTERVAL_S", 0, 1, 86400, "60", outbox.trim_interval_s,
        "How often expired parcels are removed from this gateway's outboxes, in seconds."),

    INT("delivery.timeout_ms", "NOISEGATE_DELIVERY_TIMEOUT_MS", 0, 100, 600000, "10000", delivery.timeout_ms,
        "Timeout of one webhook request to a backend, in milliseconds."),
    LIST("delivery.retry_schedule_s", "NOISEGATE_DELIVERY_RETRY_SCHEDULE_S", NG_CONFIG_INT_LIST,
         NG_CONFIG_NONDECREASING, 1, NG_CONFIG_MAX_RETRIES, 1, 604800, "[5, 300, 1800, 7200, 18000, 36000]",
         delivery.retry_schedule_s, delivery.retry_schedule_len,
         "Seconds before each retry of a failed delivery (with jitter); the last one repeats."),
    INT("delivery.max_attempts", "NOISEGATE_DELIVERY_MAX_ATTEMPTS", 0, 1, 100, "8", delivery.max_attempts,
        "Attempts before a message goes to the dead letters (sooner if it expires)."),
    INT("delivery.concurrency_per_endpoint", "NOISEGATE_DELIVERY_CONCURRENCY_PER_ENDPOINT", 0, 1, 1024, "8",
        delivery.concurrency_per_endpoint, "Webhook requests in flight to one backend URL at most."),
    LIST("delivery.allow_private", "NOISEGATE_DELIVERY_ALLOW_PRIVATE", NG_CONFIG_NET_LIST, 0, 0, NG_CONFIG_MAX_ALLOW, 0,
         0, "[]", delivery.allow_private, delivery.allow_private_len,
         "Loopback, private or link-local webhook addresses allowed all the same (IP literals or CIDRs)."),

    INT("poll.interval_ms", "NOISEGATE_POLL_INTERVAL_MS", 0, 10, 3600000, "1000", poll.interval_ms,
        "Time between polls of a peer's outbox while parcels keep arriving, in milliseconds."),
    INT("poll.max_interval_ms", "NOISEGATE_POLL_MAX_INTERVAL_MS", 0, 10, 3600000, "30000", poll.max_interval_ms,
        "The longest backoff between polls of an idle or failing outbox, in milliseconds."),
    INT("poll.batch", "NOISEGATE_POLL_BATCH", 0, 1, 1000, "100", poll.batch, "Parcels fetched per poll at most."),
    LIST("poll.peer_redis", "NOISEGATE_POLL_PEER_REDIS", NG_CONFIG_REDIS_LIST, 0, 0, 16, 0, 0, "[]", poll.peer_redis,
         poll.peer_redis_len,
         "Redis servers where this gateway may read peers' outboxes when their connection parameters name one "
         "(redis://HOST[:PORT][/DB]); this gateway's own redis.url is always allowed. A peer naming any other Redis "
         "is refused."),

    INT("messages.max_body", "NOISEGATE_MESSAGES_MAX_BODY", 0, 0, 67108864, "1048576", messages.max_body,
        "The largest message body a backend may submit, in bytes; 0 means only listen.max_body limits it."),
    INT("messages.default_ttl_s", "NOISEGATE_MESSAGES_DEFAULT_TTL_S", 0, 1, 2592000, "86400", messages.default_ttl_s,
        "The lifetime of a message whose sender gives no ttl, in seconds."),
    INT("messages.max_ttl_s", "NOISEGATE_MESSAGES_MAX_TTL_S", 0, 1, 2592000, "604800", messages.max_ttl_s,
        "The longest lifetime (expires - created) of a message or an incoming parcel, in seconds."),
    INT("messages.clock_skew_s", "NOISEGATE_MESSAGES_CLOCK_SKEW_S", 0, 0, 3600, "300", messages.clock_skew_s,
        "How far in the future an incoming parcel's created time may be, in seconds."),

    INT("webhooks.tolerance_s", "NOISEGATE_WEBHOOKS_TOLERANCE_S", 0, 1, 86400, "300", webhooks.tolerance_s,
        "How far a signed request's webhook-timestamp may be from now, in seconds."),

    ENUM("log.level", "NOISEGATE_LOG_LEVEL", log_levels, "\"info\"", log.level,
         "The least severe messages that are logged."),
    ENUM("log.format", "NOISEGATE_LOG_FORMAT", log_formats, "\"json\"", log.format,
         "\"json\": one JSON object per line, for collectors; \"text\": for people."),
};

enum {
    FIELD_COUNT = sizeof fields / sizeof fields[0],
    SECTION_COUNT = sizeof sections / sizeof sections[0],
};

/* Where each value came from, for messages that name the right source. */
enum source { FROM_DEFAULT, FROM_FILE, FROM_ENV };

struct loader {
    ng_config *cfg;
    const char *file; /* NULL: no file */
    unsigned char src[FIELD_COUNT];
    char *err;
    size_t errlen;
};

const ng_config_field *
ng_config_schema(size_t *count)
{
    *count = FIELD_COUNT;
    return fields;
}

static int
is_string(const ng_config_field *f)
{
    return f->type == NG_CONFIG_STRING || f->type == NG_CONFIG_PATH || f->type == NG_CONFIG_URL ||
           f->type == NG_CONFIG_IP || f->type == NG_CONFIG_REDIS_URL;
}

static int
is_string_list(const ng_config_field *f)
{
    return f->type == NG_CONFIG_NET_LIST || f->type == NG_CONFIG_REDIS_LIST;
}

static void *
slot(ng_config *cfg, const ng_config_field *f)
{
    return (char *)cfg + f->offset;
}

static const void *
cslot(const ng_config *cfg, const ng_config_field *f)
{
    return (const char *)cfg + f->offset;
}

static size_t *
count_slot(ng_config *cfg, const ng_config_field *f)
{
    return (size_t *)((char *)cfg + f->count_offset);
}

/* The section part of a path ("listen" of "listen.port"; "" at the top level). */
static size_t
section_len(const char *path)
{
    const char *dot = strchr(path, '.');

    return dot ? (size_t)(dot - path) : 0;
}

static const char *
key_of(const char *path)
{
    const char *dot = strchr(path, '.');

    return dot ? dot + 1 : path;
}

static int
in_section(const ng_config_field *f, const char *section)
{
    size_t n = section_len(f->path);

    return n == strlen(section) && strncmp(f->path, section, n) == 0;
}

/* appends to a fixed buffer, always NUL-terminated; returns 0 once it had to cut */
static int append(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
append(char *buf, size_t len, const char *fmt, ...)
{
    size_t used = strnlen(buf, len);
    va_list ap;
    int n;

    if (used + 1 >= len)
        return 0;
    va_start(ap, fmt);
    n = vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < len - used;
}

/*
 * Text from a file or the environment, made safe to print: at most
 * SHOW_CHARS bytes, quotes, backslashes and every byte outside printable
 * ASCII escaped (non-ASCII too, so a C1 control in UTF-8 cannot reach a
 * terminal).
 */
static void
show_text(char *buf, size_t len, const char *s, size_t n, int quote)
{
    size_t i;

    if (len == 0)
        return;
    buf[0] = 0;
    if (quote)
        append(buf, len, "\"");
    for (i = 0; i < n && i < SHOW_CHARS; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '"' || c == '\\')
            append(buf, len, "\\%c", c);
        else if (c == '\n')
            append(buf, len, "\\n");
        else if (c == '\t')
            append(buf, len, "\\t");
        else if (c < 0x20 || c > 0x7e)
            append(buf, len, "\\x%02x", c);
        else
            append(buf, len, "%c", c);
    }
    if (n > SHOW_CHARS)
        append(buf, len, "...");
    if (quote)
        append(buf, len, "\"");
    if (n > SHOW_CHARS)
        append(buf, len, " (%zu bytes)", n);
}

/* A JSON value as "got ..." shows it. */
static void
show_json(char *buf, size_t len, const json_t *v)
{
    char *text;

    if (len == 0)
        return;
    buf[0] = 0;
    switch (json_typeof(v)) {
    case JSON_STRING: show_text(buf, len, json_string_value(v), json_string_length(v), 1); break;
    case JSON_OBJECT: append(buf, len, "an object"); break;
    case JSON_ARRAY:
        if (json_array_size(v) == 0)
            append(buf, len, "an empty array");
        else
            append(buf, len, "an array of %zu item%s", json_array_size(v), json_array_size(v) == 1 ? "" : "s");
        break;
    case JSON_INTEGER: append(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
    case JSON_TRUE: append(buf, len, "true"); break;
    case JSON_FALSE: append(buf, len, "false"); break;
    case JSON_NULL: append(buf, len, "null"); break;
    case JSON_REAL:
        /* jansson keeps the ".0" of 80.0, so a real never looks like an integer. */
        text = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
        append(buf, len, "%s", text ? text : "a number");
        free(text);
        break;
    }
}

ng_err
ng_config_describe(const ng_config_field *f, char *buf, size_t len)
{
    const char *const *c;
    int ok = 1;

    if (len == 0)
        return NG_ERR_BUFFER_TOO_SMALL;
    buf[0] = 0;
    switch (f->type) {
    case NG_CONFIG_INT:
        if (f->flags & NG_CONFIG_ZERO_OK)
            ok = append(buf, len, "an integer 0 or %ld-%ld", f->min, f->max);
        else
            ok = append(buf, len, "an integer %ld-%ld", f->min, f->max);
        break;
    case NG_CONFIG_ENUM:
        ok = append(buf, len, "one of");
        for (c = f->choices; *c; c++)
            ok &= append(buf, len, "%s \"%s\"", c == f->choices ? "" : ",", *c);
        break;
    case NG_CONFIG_STRING: ok = append(buf, len, "a string of %ld-%ld bytes", f->min, f->max); break;
    case NG_CONFIG_PATH: ok = append(buf, len, f->min == 0 ? "a path or \"\"" : "a path"); break;
    case NG_CONFIG_URL:
        ok = append(buf, len, f->min == 0 ? "an http:// or https:// URL or \"\"" : "an http:// or https:// URL");
        break;
    case NG_CONFIG_IP: ok = append(buf, len, "an IPv4 or IPv6 address"); break;
    case NG_CONFIG_REDIS_URL: ok = append(buf, len, "\"\", redis://HOST:PORT[/DB] or unix:PATH[?db=N]"); break;
    case NG_CONFIG_INT_LIST:
        ok = append(buf, len, "an array of %ld-%ld integers %ld-%ld", f->min, f->max, f->item_min, f->item_max);
        if (f->flags & NG_CONFIG_NONDECREASING)
            ok &= append(buf, len, " in non-decreasing order");
        break;
    case NG_CONFIG_NET_LIST: ok = append(buf, len, "an array of %ld-%ld IP addresses or CIDRs", f->min, f->max); break;
    case NG_CONFIG_REDIS_LIST:
        ok = append(buf, len, "an array of %ld-%ld redis://HOST[:PORT][/DB] URLs", f->min, f->max);
        break;
    }
    return ok ? NG_OK : NG_ERR_BUFFER_TOO_SMALL;
}

static ng_err fail(struct loader *L, ng_err code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static ng_err
fail(struct loader *L, ng_err code, const char *fmt, ...)
{
    va_list ap;

    if (L->errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(L->err, L->errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* "FILE: listen.port", "listen.port" without a file, or "NOISEGATE_LISTEN_PORT". */
static void
where(const struct loader *L, size_t i, char *buf, size_t len)
{
    buf[0] = 0;
    if (L->src[i] == FROM_ENV)
        append(buf, len, "%s", fields[i].env);
    else if (L->file)
        append(buf, len, "%s: %s", L->file, fields[i].path);
    else
        append(buf, len, "%s", fields[i].path);
}

/* "WHERE: expected WHAT, got VALUE", WHAT being the field's description unless given. */
static ng_err
bad_value(struct loader *L, const char *at, const ng_config_field *f, const char *what, const json_t *v)
{
    char desc[256], got[256];

    if (what == NULL) {
        (void)ng_config_describe(f, desc, sizeof desc);
        what = desc;
    }
    show_json(got, sizeof got, v);
    return fail(L, NG_ERR_PARSE, "%s: expected %s, got %s", at, what, got);
}

static int
all_digits(const char *s, size_t n)
{
    size_t i;

    if (n == 0)
        return 0;
    for (i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* Decimal digits only, within lo-hi: no sign, no spaces, no overflow. */
static int
parse_uint(const char *s, size_t n, long lo, long hi, long *out)
{
    long v = 0;
    size_t i;

    if (!all_digits(s, n))
        return 0;
    for (i = 0; i < n; i++) {
        if (v > (hi - (s[i] - '0')) / 10)
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo)
        return 0;
    *out = v;
    return 1;
}

/* An IPv4 or IPv6 literal (no zone id, no brackets) of n bytes; family in *af. */
static int
ip_literal(const char *s, size_t n, int *af, unsigned char addr[16])
{
    char tmp[INET6_ADDRSTRLEN];

    if (n == 0 || n >= sizeof tmp)
        return 0;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    if (inet_pton(AF_INET, tmp, addr) == 1) {
        *af = AF_INET;
        return 1;
    }
    if (inet_pton(AF_INET6, tmp, addr) == 1) {
        *af = AF_INET6;
        return 1;
    }
    return 0;
}

/* A CIDR must name a network: host bits set are almost always a typo for another prefix. */
static int
net_ok(const char *s, size_t n)
{
    const char *slash = memchr(s, '/', n);
    unsigned char addr[16];
    long prefix;
    size_t i;
    int af;

    if (slash == NULL)
        return ip_literal(s, n, &af, addr);
    if (!ip_literal(s, (size_t)(slash - s), &af, addr))
        return 0;
    if (!parse_uint(slash + 1, n - (size_t)(slash - s) - 1, 0, af == AF_INET ? 32 : 128, &prefix))
        return 0;
    for (i = 0; i < (af == AF_INET ? 4u : 16u); i++) {
        long bit = (long)i * 8;
        unsigned char keep = prefix >= bit + 8 ? 0xff
                             : prefix <= bit   ? 0
                                               : (unsigned char)(0xff << (8 - (prefix - bit)));

        if (addr[i] & ~keep)
            return 0;
    }
    return 1;
}

/* A DNS name or IPv4 literal, or a bracketed IPv6 literal. */
static int
host_ok(const char *s, size_t n)
{
    unsigned char addr[16];
    size_t i;
    int af;

    if (n >= 2 && s[0] == '[' && s[n - 1] == ']')
        return ip_literal(s + 1, n - 2, &af, addr) && af == AF_INET6;
    if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-' || s[n - 1] == '.' || s[n - 1] == '-')
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];

        if (c == '.' && s[i + 1] == '.')
            return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

/* HOST[:PORT], the port 1-65535 and required when need_port. */
static int
authority_ok(const char *s, size_t n, int need_port)
{
    const char *colon = NULL;
    long port;
    size_t i;

    /* The last colon outside brackets starts the port. */
    for (i = n; i > 0; i--) {
        if (s[i - 1] == ']')
            break;
        if (s[i - 1] == ':') {
            colon = s + i - 1;
            break;
        }
    }
    if (colon == NULL)
        return !need_port && host_ok(s, n);
    return host_ok(s, (size_t)(colon - s)) && parse_uint(colon + 1, n - (size_t)(colon - s) - 1, 1, 65535, &port);
}

/*
 * http(s)://HOST[:PORT][/PATH]. No user info (credentials do not belong in
 * a config file that is printed), no query or fragment (paths are appended).
 */
static int
url_ok(const char *s, size_t n)
{
    size_t skip, i, auth;

    if (n >= 7 && strncmp(s, "http://", 7) == 0)
        skip = 7;
    else if (n >= 8 && strncmp(s, "https://", 8) == 0)
        skip = 8;
    else
        return 0;
    s += skip;
    n -= skip;
    for (auth = 0; auth < n && s[auth] != '/'; auth++)
        ;
    if (!authority_ok(s, auth, 0))
        return 0;
    for (i = auth; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c <= 0x20 || c > 0x7e || c == '?' || c == '#')
            return 0;
    }
    return 1;
}

/*
 * redis://HOST[:PORT][/DB]. Our own server's port is required, but a peer's
 * URL may leave it out (6379), so a server listed for peers may too.
 */
static int
redis_tcp_ok(const char *s, size_t n, int need_port)
{
    size_t auth;
    long db;

    if (n <= 8 || strncmp(s, "redis://", 8) != 0)
        return 0;
    s += 8;
    n -= 8;
    for (auth = 0; auth < n && s[auth] != '/'; auth++)
        ;
    if (!authority_ok(s, auth, need_port))
        return 0;
    return auth == n || parse_uint(s + auth + 1, n - auth - 1, 0, INT_MAX, &db);
}

/* "", redis://HOST:PORT[/DB] or unix:PATH[?db=N]. */
static int
redis_url_ok(const char *s, size_t n)
{
    const char *q;
    long db;

    if (n == 0)
        return 1;
    if (n > 8 && strncmp(s, "redis://", 8) == 0)
        return redis_tcp_ok(s, n, 1);
    if (n > 5 && strncmp(s, "unix:", 5) == 0) {
        s += 5;
        n -= 5;
        q = memchr(s, '?', n);
        if (q == s)
            return 0;
        return q == NULL || (n - (size_t)(q - s) > 4 && strncmp(q, "?db=", 4) == 0 &&
                             parse_uint(q + 4, n - (size_t)(q - s) - 4, 0, INT_MAX, &db));
    }
    return 0;
}

static ng_err
set_string(struct loader *L, const char *at, const ng_config_field *f, const json_t *v)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    char **dst = slot(L->cfg, f), *copy;
    char what[128];
    int af;
    unsigned char addr[16];

    if (!json_is_string(v))
        return bad_value(L, at, f, NULL, v);
    if ((long)n < f->min)
        return bad_value(L, at, f, NULL, v);
    if ((long)n > f->max) {
        snprintf(what, sizeof what, "at most %ld bytes", f->max);
        return bad_value(L, at, f, what, v);
    }
    if (memchr(s, 0, n))
        return bad_value(L, at, f, "a string without NUL characters", v);
    if ((f->type == NG_CONFIG_URL && n > 0 && !url_ok(s, n)) ||
        (f->type == NG_CONFIG_IP && !ip_literal(s, n, &af, addr)) ||
        (f->type == NG_CONFIG_REDIS_URL && !redis_url_ok(s, n)))
        return bad_value(L, at, f, NULL, v);
    /* A base URL without its trailing slashes, so "BASE/v1/..." never doubles one. */
    if (f->type == NG_CONFIG_URL)
        while (n > 0 && s[n - 1] == '/')
            n--;
    copy = strndup(s, n);
    if (copy == NULL)
        return fail(L, NG_ERR_NOMEM, "%s: out of memory", at);
    free(*dst);
    *dst = copy;
    return NG_OK;
}

static ng_err
set_int_list(struct loader *L, const char *at, const ng_config_field *f, const json_t *v)
{
    int *dst = slot(L->cfg, f), items[NG_CONFIG_MAX_RETRIES];
    char item_at[AT_BYTES], what[128];
    size_t i, n = json_array_size(v);

    assert(f->max <= NG_CONFIG_MAX_RETRIES);
    if (!json_is_array(v) || (long)n < f->min || (long)n > f->max)
        return bad_value(L, at, f, NULL, v);
    for (i = 0; i < n; i++) {
        const json_t *item = json_array_get(v, i);
        json_int_t x = json_integer_value(item);

        snprintf(item_at, sizeof item_at, "%s[%zu]", at, i);
        if (!json_is_integer(item) || x < f->item_min || x > f->item_max) {
            snprintf(what, sizeof what, "an integer %ld-%ld", f->item_min, f->item_max);
            return bad_value(L, item_at, f, what, item);
        }
        if ((f->flags & NG_CONFIG_NONDECREASING) && i > 0 && x < items[i - 1]) {
            snprintf(what, sizeof what, "at least %d (the item before it; the schedule never shrinks)", items[i - 1]);
            return bad_value(L, item_at, f, what, item);
        }
        items[i] = (int)x;
    }
    memcpy(dst, items, n * sizeof items[0]);
    *count_slot(L->cfg, f) = n;
    return NG_OK;
}

static void
free_strings(char **items, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(items[i]);
        items[i] = NULL;
    }
}

/* NET_LIST and REDIS_LIST; a bad item leaves the old list as it was. */
static ng_err
set_string_list(struct loader *L, const char *at, const ng_config_field *f, const json_t *v)
{
    const char *what = f->type == NG_CONFIG_NET_LIST ? "an IP address or CIDR with no host bits set (IPv4 or IPv6)"
                                                     : "a redis://HOST[:PORT][/DB] URL";
    char **dst = slot(L->cfg, f), *items[NG_CONFIG_MAX_ALLOW];
    char item_at[AT_BYTES];
    size_t i, n = json_array_size(v);

    assert(f->max <= NG_CONFIG_MAX_ALLOW);
    if (!json_is_array(v) || (long)n < f->min || (long)n > f->max)
        return bad_value(L, at, f, NULL, v);
    for (i = 0; i < n; i++) {
        const json_t *item = json_array_get(v, i);
        const char *s = json_string_value(item);
        size_t len = json_string_length(item);

        snprintf(item_at, sizeof item_at, "%s[%zu]", at, i);
        if (!json_is_string(item) || !(f->type == NG_CONFIG_NET_LIST ? net_ok(s, len) : redis_tcp_ok(s, len, 0))) {
            free_strings(items, i);
            return bad_value(L, item_at, f, what, item);
        }
        items[i] = strdup(s);
        if (items[i] == NULL) {
            free_strings(items, i);
            return fail(L, NG_ERR_NOMEM, "%s: out of memory", at);
        }
    }
    free_strings(dst, *count_slot(L->cfg, f));
    memcpy(dst, items, n * sizeof items[0]);
    *count_slot(L->cfg, f) = n;
    return NG_OK;
}

/* Checks v against field i and stores it; at names the source in a message. */
static ng_err
set_field(struct loader *L, size_t i, const json_t *v, const char *at)
{
    const ng_config_field *f = &fields[i];
    const char *const *c;
    json_int_t x;

    switch (f->type) {
    case NG_CONFIG_INT:
        x = json_integer_value(v);
        if (!json_is_integer(v) || ((x < f->min || x > f->max) && !(x == 0 && (f->flags & NG_CONFIG_ZERO_OK))))
            return bad_value(L, at, f, NULL, v);
        *(int *)slot(L->cfg, f) = (int)x;
        return NG_OK;
    case NG_CONFIG_ENUM:
        if (json_is_string(v))
            for (c = f->choices; *c; c++)
                if (strlen(*c) == json_string_length(v) && strcmp(*c, json_string_value(v)) == 0) {
                    *(int *)slot(L->cfg, f) = (int)(c - f->choices);
                    return NG_OK;
                }
        return bad_value(L, at, f, NULL, v);
    case NG_CONFIG_INT_LIST: return set_int_list(L, at, f, v);
    case NG_CONFIG_NET_LIST:
    case NG_CONFIG_REDIS_LIST: return set_string_list(L, at, f, v);
    default: return set_string(L, at, f, v);
    }
}

static ng_err
apply_defaults(struct loader *L)
{
    json_error_t jerr;
    ng_err err = NG_OK;
    size_t i;

    for (i = 0; i < FIELD_COUNT && !err; i++) {
        json_t *v = json_loads(fields[i].def, JSON_DECODE_ANY, &jerr);

        if (v == NULL)
            return fail(L, NG_ERR_NOMEM, "out of memory");
        err = set_field(L, i, v, fields[i].path);
        /* The table's defaults are checked by the tests; a bad one is a programming error. */
        assert(err != NG_ERR_PARSE);
        json_decref(v);
    }
    return err;
}

static long
find_field(const char *section, const char *key)
{
    size_t i;

    for (i = 0; i < FIELD_COUNT; i++)
        if (in_section(&fields[i], section) && strcmp(key_of(fields[i].path), key) == 0)
            return (long)i;
    return -1;
}

static int
is_section(const char *name)
{
    size_t i;

    for (i = 1; i < SECTION_COUNT; i++)
        if (strcmp(sections[i].name, name) == 0)
            return 1;
    return 0;
}

/* "unknown key (expected one of: address, port, ...)" for a section, or the top level's keys. */
static ng_err
unknown_key(struct loader *L, const char *section, const char *key)
{
    char shown[200], list[600] = "";
    size_t i;

    show_text(shown, sizeof shown, key, strlen(key), 0);
    for (i = 0; i < FIELD_COUNT; i++)
        if (in_section(&fields[i], section))
            append(list, sizeof list, "%s%s", list[0] ? ", " : "", key_of(fields[i].path));
    if (section[0] == 0)
        for (i = 1; i < SECTION_COUNT; i++)
            append(list, sizeof list, ", %s", sections[i].name);
    return fail(L, NG_ERR_PARSE, "%s: %s%s%s: unknown key (expected one of: %s)", L->file, section,
                section[0] ? "." : "", shown, list);
}

static ng_err
apply_object(struct loader *L, const char *section, json_t *obj)
{
    char at[AT_BYTES];
    const char *key;
    size_t keylen;
    json_t *v;
    long i;
    ng_err err;

    json_object_keylen_foreach(obj, key, keylen, v)
    {
        /* A key with a NUL inside would otherwise match the field named by its prefix. */
        if (strlen(key) != keylen)
            return unknown_key(L, section, key);
        if (section[0] == 0 && is_section(key)) {
            if (!json_is_object(v)) {
                char got[256];

                show_json(got, sizeof got, v);
                return fail(L, NG_ERR_PARSE, "%s: %s: expected an object, got %s", L->file, key, got);
            }
            err = apply_object(L, key, v);
            if (err)
                return err;
            continue;
        }
        i = find_field(section, key);
        if (i < 0)
            return unknown_key(L, section, key);
        L->src[i] = FROM_FILE;
        snprintf(at, sizeof at, "%s: %s", L->file, fields[i].path);
        err = set_field(L, (size_t)i, v, at);
        if (err)
            return err;
    }
    return NG_OK;
}

/*
 * Blanks `//` comments outside strings with spaces, keeping every newline,
 * so jansson's line and column still point into the file as written.
 */
static void
strip_comments(char *s, size_t n)
{
    int in_string = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        if (in_string) {
            if (s[i] == '\\' && i + 1 < n)
                i++;
            else if (s[i] == '"')
                in_string = 0;
        } else if (s[i] == '"') {
            in_string = 1;
        } else if (s[i] == '/' && i + 1 < n && s[i + 1] == '/') {
            for (; i < n && s[i] != '\n'; i++)
                s[i] = ' ';
        }
    }
}

/* jansson's message quotes the file's bytes: those outside printable ASCII are shown as \xNN (one line of text). */
static void
printable(char *buf, size_t len, const char *s)
{
    buf[0] = 0;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c < 0x20 || c > 0x7e)
            append(buf, len, "\\x%02x", c);
        else
            append(buf, len, "%c", c);
    }
}

static ng_err
apply_file(struct loader *L)
{
    uint8_t *buf = NULL;
    size_t len, i;
    json_error_t jerr;
    json_t *root;
    ng_err err;
    int saved;

    errno = 0;
    err = ng_io_read_all(L->file, NG_CONFIG_MAX_FILE, &buf, &len);
    saved = errno;
    if (err == NG_ERR_TOO_LARGE)
        return fail(L, err, "%s: too large: expected at most %d bytes", L->file, NG_CONFIG_MAX_FILE);
    if (err == NG_ERR_NOMEM)
        return fail(L, err, "%s: cannot read: %s", L->file, ng_strerror(err));
    if (err)
        return fail(L, NG_ERR_IO, "%s: cannot read: %s", L->file, saved ? strerror(saved) : ng_strerror(err));
    strip_comments((char *)buf, len);
    for (i = 0; i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'); i++)
        ;
    if (i == len) {
        free(buf);
        return fail(L, NG_ERR_PARSE, "%s: expected a JSON object, got an empty file", L->file);
    }
    root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    free(buf);
    if (root == NULL) {
        char why[4 * JSON_ERROR_TEXT_LENGTH];

        printable(why, sizeof why, jerr.text);
        return fail(L, NG_ERR_PARSE, "%s:%d:%d: invalid JSON: %s", L->file, jerr.line, jerr.column, why);
    }
    if (!json_is_object(root)) {
        char got[256];

        show_json(got, sizeof got, root);
        json_decref(root);
        return fail(L, NG_ERR_PARSE, "%s: expected a JSON object at the top level, got %s", L->file, got);
    }
    err = apply_object(L, "", root);
    json_decref(root);
    return err;
}

/* An integer as the environment spells it, else NULL. */
static json_t *
env_int(const char *s, size_t n)
{
    long v;
    int neg = n > 0 && s[0] == '-';

    /* Negative numbers parse, so that the message says "got -1" like the file's would. */
    if (!parse_uint(s + neg, n - (size_t)neg, 0, LONG_MAX, &v))
        return NULL;
    return json_integer(neg ? -(json_int_t)v : (json_int_t)v);
}

/* The environment's text as the JSON value the field would have in a file. */
static json_t *
env_value(const ng_config_field *f, const char *s)
{
    json_t *v, *arr, *item;
    const char *end;
    size_t n = strlen(s);

    switch (f->type) {
    case NG_CONFIG_INT: v = env_int(s, n); return v ? v : json_stringn(s, n);
    case NG_CONFIG_INT_LIST:
    case NG_CONFIG_NET_LIST:
    case NG_CONFIG_REDIS_LIST:
        arr = json_array();
        while (arr && n > 0) {
            end = memchr(s, ',', n);
            end = end ? end : s + n;
            item = f->type == NG_CONFIG_INT_LIST ? env_int(s, (size_t)(end - s)) : NULL;
            if (item == NULL)
                item = json_stringn(s, (size_t)(end - s));
            if (json_array_append_new(arr, item) != 0) {
                json_decref(arr);
                return NULL;
            }
            if (end == s + n)
                break;
            n -= (size_t)(end - s) + 1;
            s = end + 1;
            /* "5," has an empty last item, not none. */
            if (n == 0 && json_array_append_new(arr, json_string("")) != 0) {
                json_decref(arr);
                return NULL;
            }
        }
        return arr;
    default: return json_stringn(s, n);
    }
}

static ng_err
apply_env(struct loader *L)
{
    size_t i;

    for (i = 0; i < FIELD_COUNT; i++) {
        const char *s = getenv(fields[i].env);
        json_t *v;
        ng_err err;

        if (s == NULL)
            continue;
        /* Only UTF-8 can be dumped as JSON again; the rest is shown escaped and refused. */
        v = json_string(s);
        if (v == NULL) {
            v = json_stringn_nocheck(s, strlen(s));
            if (v == NULL)
                return fail(L, NG_ERR_NOMEM, "%s: out of memory", fields[i].env);
            err = bad_value(L, fields[i].env, &fields[i], "UTF-8 text", v);
            json_decref(v);
            return err;
        }
        json_decref(v);
        v = env_value(&fields[i], s);
        if (v == NULL)
            return fail(L, NG_ERR_NOMEM, "%s: out of memory", fields[i].env);
        L->src[i] = FROM_ENV;
        err = set_field(L, i, v, fields[i].env);
        json_decref(v);
        if (err)
            return err;
    }
    return NG_OK;
}

/*
 * base + "/" + rel (rel alone when it is absolute), with "." components and
 * repeated slashes removed. A ".." is removed with the component before it
 * only while that component belongs to base and base_is_real says base has
 * no symbolic links (it came from getcwd or realpath): anywhere else "a/.."
 * need not be where "a" is, so it stays for the kernel to resolve.
 */
static char *
join_path(const char *base, const char *rel, int base_is_real)
{
    size_t blen = rel[0] == '/' ? 0 : strlen(base), i, o = 0;
    char *out;

    while (base_is_real && blen > 0 && rel[0] == '.') {
        if (rel[1] == '/' || rel[1] == 0) {
            rel++;
        } else if (rel[1] == '.' && (rel[2] == '/' || rel[2] == 0)) {
            while (blen > 1 && base[blen - 1] == '/')
                blen--;
            while (blen > 0 && base[blen - 1] != '/')
                blen--;
            while (blen > 1 && base[blen - 1] == '/')
                blen--;
            rel += 2;
        } else {
            break;
        }
        while (rel[0] == '/')
            rel++;
    }
    out = malloc(blen + strlen(rel) + 2);
    if (out == NULL)
        return NULL;
    memcpy(out, base, blen);
    out[blen] = '/';
    memcpy(out + blen + 1, rel, strlen(rel) + 1);
    /* In place: the write index never passes the read index. */
    for (i = 0; out[i]; i++) {
        if (out[i] == '/' && o > 0 && out[o - 1] == '/')
            continue;
        if (out[i] == '.' && o > 0 && out[o - 1] == '/' && (out[i + 1] == '/' || out[i + 1] == 0))
            continue;
        out[o++] = out[i];
    }
    while (o > 1 && out[o - 1] == '/')
        o--;
    out[o] = 0;
    return out;
}

/* The directory of the config file, absolute and without symbolic links (it exists: the file was just read). */
static char *
file_dir(const char *file)
{
    const char *slash = strrchr(file, '/');
    char *dir, *real;

    if (slash == NULL)
        return realpath(".", NULL);
    dir = slash == file ? strdup("/") : strndup(file, (size_t)(slash - file));
    if (dir == NULL)
        return NULL;
    real = realpath(dir, NULL);
    free(dir);
    return real;
}

static ng_err
resolve_one(struct loader *L, size_t i, const char *base, int base_is_real)
{
    const ng_config_field *f = &fields[i];
    char **dst = slot(L->cfg, f), *abs, at[AT_BYTES];
    size_t max = (f->flags & NG_CONFIG_SOCKET) ? NG_CONFIG_MAX_SOCKET_PATH : NG_CONFIG_MAX_PATH;
    ng_err err;

    if ((*dst)[0] == 0)
        return NG_OK;
    abs = join_path(base, *dst, base_is_real);
    if (abs == NULL)
        return fail(L, NG_ERR_NOMEM, "out of memory");
    if (strlen(abs) > max) {
        char what[128];
        json_t *v = json_string(abs);

        free(abs);
        if (v == NULL)
            return fail(L, NG_ERR_NOMEM, "out of memory");
        where(L, i, at, sizeof at);
        snprintf(what, sizeof what, "a path of at most %zu bytes once resolved", max);
        err = bad_value(L, at, f, what, v);
        json_decref(v);
        return err;
    }
    free(*dst);
    *dst = abs;
    return NG_OK;
}

static long
field_index(const char *path)
{
    size_t i;

    for (i = 0; i < FIELD_COUNT; i++)
        if (strcmp(fields[i].path, path) == 0)
            return (long)i;
    return -1;
}

/*
 * data_dir against the file's directory when the file gave it, else the
 * current directory; the other paths, and a unix: redis URL, against data_dir.
 */
static ng_err
resolve_paths(struct loader *L)
{
    char cwd[PATH_MAX], at[AT_BYTES], *base = NULL, *url;
    ng_config *cfg = L->cfg;
    size_t i, dd = (size_t)field_index("data_dir");
    ng_err err;

    /* Only a relative data_dir needs a directory to start from; an absolute one is only cleaned. */
    if (cfg->data_dir[0] != '/' && L->file && L->src[dd] == FROM_FILE) {
        base = file_dir(L->file);
        if (base == NULL)
            return fail(L, errno == ENOMEM ? NG_ERR_NOMEM : NG_ERR_IO,
                        "%s: data_dir: cannot resolve the file's directory: %s", L->file, strerror(errno));
    } else if (cfg->data_dir[0] != '/' && getcwd(cwd, sizeof cwd) == NULL) {
        where(L, dd, at, sizeof at);
        return fail(L, NG_ERR_IO, "%s: cannot resolve against the current directory: %s", at, strerror(errno));
    }
    err = resolve_one(L, dd, base ? base : cfg->data_dir[0] == '/' ? "/" : cwd, 1);
    free(base);
    for (i = 0; i < FIELD_COUNT && !err; i++)
        if (fields[i].type == NG_CONFIG_PATH && (fields[i].flags & NG_CONFIG_IN_DATA_DIR))
            err = resolve_one(L, i, cfg->data_dir, 0);
    if (err)
        return err;
    if (strncmp(cfg->redis.url, "unix:", 5) == 0 && cfg->redis.url[5] != '/') {
        char *path = join_path(cfg->data_dir, cfg->redis.url + 5, 0);
        size_t n = path ? strlen(path) + 6 : 0;

        url = path ? malloc(n) : NULL;
        if (url == NULL) {
            free(path);
            return fail(L, NG_ERR_NOMEM, "out of memory");
        }
        snprintf(url, n, "unix:%s", path);
        free(path);
        /* A '?' in data_dir would end the socket's path early: the URL is read up to its first '?'. */
        if (!redis_url_ok(url, strlen(url))) {
            json_t *v = json_stringn_nocheck(url, strlen(url));
            long r = field_index("redis.url");

            free(url);
            if (v == NULL)
                return fail(L, NG_ERR_NOMEM, "out of memory");
            where(L, (size_t)r, at, sizeof at);
            err = bad_value(L, at, &fields[r], "a unix: path with no '?' once resolved against data_dir", v);
            json_decref(v);
            return err;
        }
        free(cfg->redis.url);
        cfg->redis.url = url;
    }
    return NG_OK;
}

/* "" means peers reach this gateway where it listens. */
static ng_err
derive_public_url(struct loader *L)
{
    ng_config *cfg = L->cfg;
    int v6 = strchr(cfg->listen.address, ':') != NULL;
    size_t n = strlen(cfg->listen.address) + 32;
    char *url;

    if (cfg->public_url[0])
        return NG_OK;
    url = malloc(n);
    if (url == NULL)
        return fail(L, NG_ERR_NOMEM, "out of memory");
    snprintf(url, n, v6 ? "http://[%s]:%d" : "http://%s:%d", cfg->listen.address, cfg->listen.port);
    free(cfg->public_url);
    cfg->public_url = url;
    return NG_OK;
}

/* Blames field a, naming field b, in the usual "WHERE: expected ..., got ..." shape. */
static ng_err
cross_fail(struct loader *L, const char *a, const char *what, const json_t *got)
{
    long i = field_index(a);
    char at[AT_BYTES];

    where(L, (size_t)i, at, sizeof at);
    return bad_value(L, at, &fields[i], what, got);
}

static ng_err
cross_check_ints(struct loader *L, const char *lo, int lo_value, const char *hi, int hi_value)
{
    char what[200];
    json_t *v;
    ng_err err;

    if (lo_value <= hi_value)
        return NG_OK;
    /* The other field may have come from the environment, where the file cannot show it. */
    if (L->src[field_index(hi)] == FROM_ENV)
        snprintf(what, sizeof what, "at most %s (%d, from %s)", hi, hi_value, fields[field_index(hi)].env);
    else
        snprintf(what, sizeof what, "at most %s (%d)", hi, hi_value);
    v = json_integer(lo_value);
    if (v == NULL)
        return fail(L, NG_ERR_NOMEM, "out of memory");
    err = cross_fail(L, lo, what, v);
    json_decref(v);
    return err;
}

static ng_err
cross_check(struct loader *L)
{
    const ng_config *cfg = L->cfg;
    json_t *empty;
    ng_err err;

    err = cross_check_ints(L, "poll.interval_ms", cfg->poll.interval_ms, "poll.max_interval_ms",
                           cfg->poll.max_interval_ms);
    if (!err)
        err = cross_check_ints(L, "messages.default_ttl_s", cfg->messages.default_ttl_s, "messages.max_ttl_s",
                               cfg->messages.max_ttl_s);
    if (err)
        return err;
    empty = json_string("");
    if (empty == NULL)
        return fail(L, NG_ERR_NOMEM, "out of memory");
    if (cfg->outbox.store == NG_CONFIG_OUTBOX_STORE_HTTP && cfg->outbox.http_url[0] == 0)
        err = cross_fail(L, "outbox.http_url", "an http:// or https:// URL because outbox.store is \"http\"", empty);
    else if (cfg->vault.store == NG_CONFIG_VAULT_STORE_REDIS && cfg->redis.url[0] == 0)
        /* The embedded server is private to one process; a shared vault needs a shared server. */
        err = cross_fail(L, "redis.url", "a redis:// or unix: URL because vault.store is \"redis\"", empty);
    json_decref(empty);
    return err;
}

void
ng_config_free(ng_config *cfg)
{
    size_t i;

    if (cfg == NULL)
        return;
    for (i = 0; i < FIELD_COUNT; i++) {
        if (is_string(&fields[i]))
            free(*(char **)slot(cfg, &fields[i]));
        else if (is_string_list(&fields[i]))
            free_strings(slot(cfg, &fields[i]), *count_slot(cfg, &fields[i]));
    }
    memset(cfg, 0, sizeof *cfg);
}

static ng_err
load(struct loader *L)
{
    ng_err err;

    err = apply_defaults(L);
    if (!err && L->file)
        err = apply_file(L);
    if (!err)
        err = apply_env(L);
    if (!err)
        err = resolve_paths(L);
    if (!err)
        err = derive_public_url(L);
    if (!err)
        err = cross_check(L);
    return err;
}

ng_err
ng_config_defaults(ng_config *cfg)
{
    char err[NG_CONFIG_ERR_BYTES];
    struct loader L = {cfg, NULL, {0}, err, sizeof err};
    ng_err e;

    memset(cfg, 0, sizeof *cfg);
    e = apply_defaults(&L);
    if (!e)
        e = resolve_paths(&L);
    if (!e)
        e = derive_public_url(&L);
    if (e)
        ng_config_free(cfg);
    return e;
}

ng_err
ng_config_load(ng_config *cfg, const char *path, char *err, size_t errlen)
{
    ng_config tmp;
    struct loader L = {&tmp, path, {0}, err, errlen};
    ng_err e;

    memset(&tmp, 0, sizeof tmp);
    memset(cfg, 0, sizeof *cfg);
    if (errlen > 0)
        err[0] = 0;
    e = load(&L);
    if (e) {
        ng_config_free(&tmp);
        return e;
    }
    *cfg = tmp;
    return NG_OK;
}

static json_t *
field_json(const ng_config *cfg, const ng_config_field *f)
{
    const void *p = cslot(cfg, f);
    size_t i, n;
    json_t *arr;

    switch (f->type) {
    case NG_CONFIG_INT: return json_integer(*(const int *)p);
    case NG_CONFIG_ENUM: return json_string(f->choices[*(const int *)p]);
    case NG_CONFIG_INT_LIST:
    case NG_CONFIG_NET_LIST:
    case NG_CONFIG_REDIS_LIST:
        n = *(const size_t *)((const char *)cfg + f->count_offset);
        arr = json_array();
        for (i = 0; arr && i < n; i++) {
            json_t *item =
                f->type == NG_CONFIG_INT_LIST ? json_integer(((const int *)p)[i]) : json_string(((char *const *)p)[i]);
            if (json_array_append_new(arr, item) != 0) {
                json_decref(arr);
                arr = NULL;
            }
        }
        return arr;
    default: return json_string(*(char *const *)p);
    }
}

ng_err
ng_config_dump(const ng_config *cfg, FILE *out)
{
    json_t *root = json_object(), *obj;
    size_t s, i;
    int rc;

    for (s = 0; root && s < SECTION_COUNT; s++) {
        obj = s == 0 ? root : json_object();
        if (obj == NULL || (s > 0 && json_object_set_new(root, sections[s].name, obj) != 0)) {
            json_decref(root);
            return NG_ERR_NOMEM;
        }
        for (i = 0; i < FIELD_COUNT; i++)
            if (in_section(&fields[i], sections[s].name) &&
                json_object_set_new(obj, key_of(fields[i].path), field_json(cfg, &fields[i])) != 0) {
                json_decref(root);
                return NG_ERR_NOMEM;
            }
    }
    if (root == NULL)
        return NG_ERR_NOMEM;
    rc = json_dumpf(root, out, JSON_INDENT(4));
    json_decref(root);
    if (rc != 0 || fputc('\n', out) == EOF || fflush(out) != 0)
        return NG_ERR_IO;
    return NG_OK;
}

ng_err
ng_config_example(FILE *out)
{
    char desc[256];
    size_t s, i, last;

    fputs("// noisegate configuration: every field, at its default value.\n"
          "//\n"
          "// JSON with // line comments. Every section and field is optional; an unknown key is an error.\n"
          "// Precedence: defaults < this file < environment (NOISEGATE_<SECTION>_<KEY>).\n"
          "// A relative data_dir is relative to this file's directory; other relative paths to data_dir.\n"
          "// Check a file with `noisegate config check FILE`. Reference: docs/config.md.\n"
          "{\n",
          out);
    for (s = 0; s < SECTION_COUNT; s++) {
        const char *indent = s == 0 ? "    " : "        ";

        if (s > 0)
            fprintf(out, "\n    // %s\n    \"%s\": {\n", sections[s].help, sections[s].name);
        for (last = FIELD_COUNT, i = 0; i < FIELD_COUNT; i++)
            if (in_section(&fields[i], sections[s].name))
                last = i;
        for (i = 0; i < FIELD_COUNT; i++) {
            if (!in_section(&fields[i], sections[s].name))
                continue;
            (void)ng_config_describe(&fields[i], desc, sizeof desc);
            fprintf(out, "%s// %s\n%s// Value: %s. Environment: %s.\n%s\"%s\": %s%s\n", indent, fields[i].help, indent,
                    desc, fields[i].env, indent, key_of(fields[i].path), fields[i].def, i == last && s > 0 ? "" : ",");
        }
        if (s > 0)
            fprintf(out, "    }%s\n", s + 1 == SECTION_COUNT ? "" : ",");
    }
    fputs("}\n", out);
    return fflush(out) == 0 && !ferror(out) ? NG_OK : NG_ERR_IO;
}

void
ng_config_outbox_url(const ng_config *cfg, char *out, size_t cap)
{
    if (cfg->outbox.store == NG_CONFIG_OUTBOX_STORE_HTTP)
        snprintf(out, cap, "%s", cfg->outbox.http_url);
    else
        snprintf(out, cap, "%s/v1/outbox", cfg->public_url);
}

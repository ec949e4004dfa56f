/*
 * sealed_backend: a backend for a tenant in end-to-end ("sealed") mode, as a
 * third party would write it: it links libnoisegate-envelope, libsodium,
 * libmicrohttpd and libcurl, and nothing of the gateway.
 *
 *   sealed_backend keygen --state DIR
 *       A new X25519 static key pair; the private key goes to DIR/static_key
 *       (hex, mode 0600), the public key to stdout. The operator imports it:
 *       `noisegate key import T --public-key HEX`.
 *   sealed_backend import-key --state DIR  < PRIVHEX
 *       Stores a private key the operator exported (`noisegate key export T`).
 *   sealed_backend serve --port PORT --state DIR --whsec whsec_...
 *                        [--peer NAME=PUBHEX ...] [--psk HEX]
 *       Listens on 127.0.0.1:PORT for the gateway's webhooks and prints
 *       `message <id> from <peer> (<pattern>): <body>` for each new message.
 *   sealed_backend send --gateway URL --tenant T --state DIR --whsec whsec_...
 *                       --to-key PUBHEX [--pattern X|K|N] [--ttl SECONDS] [--psk HEX] TEXT
 *       Seals TEXT for PUBHEX and posts the parcel to URL/v1/tenants/T/parcels.
 *
 * Trust model. In sealed mode the gateway never holds the tenant's private
 * key: it stores, forwards and delivers parcels and sees only their headers
 * (pattern, times, key ids, message id, length). This program holds the key,
 * so the checks a receiver of one-way Noise must make are its own:
 *   - the webhook signature (Standard Webhooks `v1`, HMAC-SHA256 under the
 *     whsec_ secret) and its timestamp: only the gateway may post here. It
 *     says who delivered the parcel, not who wrote it;
 *   - opening the parcel: its tag authenticates the header (the Noise
 *     prologue) and the body; ng_parcel_open also checks that it is addressed
 *     to our key and has not expired;
 *   - who may write: K and X parcels only from the --peer keys (for X, the
 *     key the parcel reveals), N from anyone (anonymous); with --psk, only
 *     parcels that use it;
 *   - replays: one-way Noise has no replay protection and the gateway
 *     delivers at least once, so message ids are remembered (DIR/seen) until
 *     their parcel expires, after which ng_parcel_open refuses it anyway.
 *
 * State in DIR: static_key (private key hex) and seen (one line per message
 * delivered: message id hex and expiry in unix ms).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <microhttpd.h>
#include <sodium.h>

#include "ng_envelope.h"

enum {
    MAX_PARCEL = 1 << 20, /* what we accept in a webhook; the gateway's own limit is its config */
    TOLERANCE_S = 300,    /* webhook-timestamp may be this far from our clock */
    MAX_PEERS = 64,
    SECRET_MAX = 128,
    REPLY_MAX = 64 * 1024,
    DEFAULT_TTL_S = 24 * 60 * 60,
    ID_HEX = 2 * NG_PARCEL_MESSAGE_ID_BYTES + 1,
};

#define VARIANT sodium_base64_VARIANT_ORIGINAL /* Standard Webhooks' base64: with padding */

struct args {
    const char *port, *state, *whsec, *gateway, *tenant, *to_key, *pattern, *ttl, *psk, *text;
    const char *peers[MAX_PEERS];
    size_t n_peers;
};

struct peer {
    char name[64];
    uint8_t pub[NG_KEY_BYTES];
    uint8_t key_id[NG_KEY_ID_BYTES];
};

struct seen {
    uint8_t id[NG_PARCEL_MESSAGE_ID_BYTES];
    uint64_t expires_ms;
};

/* What serve works with. Only the one MHD thread touches it after start-up. */
static struct {
    ng_keypair kp;
    struct peer peers[MAX_PEERS];
    size_t n_peers;
    uint8_t psk[NG_PSK_BYTES];
    int has_psk;
    uint8_t secret[SECRET_MAX];
    size_t secret_len;
    struct seen *seen;
    size_t n_seen, cap_seen;
    FILE *seen_log;
} srv;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line on stderr; returns 1, the exit status of a refused command. */
static int
fail(const char *fmt, ...)
{
    va_list ap;

    fputs("sealed_backend: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

static int
path_in(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);

    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* ---- keys and secrets ---- */

/* Writes DIR/static_key once (never overwrites): hex, a newline, mode 0600. */
static int
store_key(const char *dir, const ng_keypair *kp)
{
    char path[4096], hex[2 * NG_KEY_BYTES + 2];
    int fd, ok;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return fail("cannot create %s", dir);
    if (path_in(path, sizeof path, dir, "static_key") != 0)
        return fail("%s: path too long", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return fail(errno == EEXIST ? "%s exists: not overwriting it" : "cannot create %s", path);
    ng_hex_encode(hex, sizeof hex, kp->priv, NG_KEY_BYTES);
    hex[2 * NG_KEY_BYTES] = '\n';
    hex[2 * NG_KEY_BYTES + 1] = '\0';
    ok = write(fd, hex, strlen(hex)) == (ssize_t)strlen(hex) && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    sodium_memzero(hex, sizeof hex);
    if (!ok)
        return fail("cannot write %s", path);
    ng_hex_encode(hex, sizeof hex, kp->pub, NG_KEY_BYTES);
    printf("%s\n", hex);
    return 0;
}

/* Reads 64 hex characters (then optional whitespace) into a key pair. */
static int
parse_private(ng_keypair *kp, const char *text, size_t len)
{
    uint8_t priv[NG_KEY_BYTES];
    ng_err err;

    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    err = ng_hex_decode(priv, sizeof priv, text, len);
    if (err == NG_OK)
        err = ng_keypair_from_private(kp, priv);
    sodium_memzero(priv, sizeof priv);
    return err == NG_OK ? 0 : -1;
}

static int
load_key(const char *dir, ng_keypair *kp)
{
    char path[4096], text[2 * NG_KEY_BYTES + 8];
    size_t len = 0;
    FILE *f;
    int rc;

    if (path_in(path, sizeof path, dir, "static_key") != 0 || (f = fopen(path, "r")) == NULL)
        return fail("no key in %s/static_key: run keygen or import-key first", dir);
    len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    rc = parse_private(kp, text, len);
    sodium_memzero(text, sizeof text);
    return rc == 0 ? 0 : fail("%s: not a private key (64 hex characters)", path);
}

/* "whsec_" and base64: the HMAC key is the decoded bytes. */
static int
parse_whsec(const char *s, uint8_t *out, size_t *len)
{
    if (s == NULL || strncmp(s, "whsec_", 6) != 0)
        return -1;
    if (sodium_base642bin(out, SECRET_MAX, s + 6, strlen(s + 6), NULL, len, NULL, VARIANT) != 0)
        return -1;
    return *len > 0 ? 0 : -1;
}

/* Standard Webhooks v1: HMAC-SHA256 of "id.timestamp.body". */
static void
sign_v1(uint8_t mac[crypto_auth_hmacsha256_BYTES], const uint8_t *key, size_t key_len, const char *id, const char *ts,
        const uint8_t *body, size_t body_len)
{
    crypto_auth_hmacsha256_state st;

    crypto_auth_hmacsha256_init(&st, key, key_len);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)id, strlen(id));
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)ts, strlen(ts));
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)".", 1);
    crypto_auth_hmacsha256_update(&st, body, body_len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
}

/* 0 when one `v1,` entry of sig verifies and ts is within TOLERANCE_S of now. */
static int
verify_v1(const char *id, const char *ts, const char *sig, const uint8_t *body, size_t len)
{
    uint8_t want[crypto_auth_hmacsha256_BYTES], got[crypto_auth_hmacsha256_BYTES];
    long long t;
    char *end;
    size_t n, got_len;
    int ok = 0;

    if (id == NULL || id[0] == '\0' || ts == NULL || sig == NULL || ts[0] < '0' || ts[0] > '9')
        return -1;
    errno = 0;
    t = strtoll(ts, &end, 10);
    if (errno != 0 || *end != '\0' || llabs(t - (long long)time(NULL)) > TOLERANCE_S)
        return -1;
    sign_v1(want, srv.secret, srv.secret_len, id, ts, body, len);
    /* Space-separated entries; v1a (Ed25519) and unknown versions are skipped. */
    while (*sig != '\0') {
        n = strcspn(sig, " ");
        if (n > 3 && strncmp(sig, "v1,", 3) == 0 &&
            sodium_base642bin(got, sizeof got, sig + 3, n - 3, NULL, &got_len, NULL, VARIANT) == 0 &&
            got_len == sizeof got && sodium_memcmp(got, want, sizeof want) == 0)
            ok = 1;
        sig += n;
        sig += strspn(sig, " ");
    }
    sodium_memzero(want, sizeof want);
    return ok ? 0 : -1;
}

/* ---- the replay set: message ids until their parcel expires ---- */

static int
seen_add_memory(const uint8_t *id, uint64_t expires_ms)
{
    if (srv.n_seen == srv.cap_seen) {
        size_t cap = srv.cap_seen ? 2 * srv.cap_seen : 64;
        struct seen *s = realloc(srv.seen, cap * sizeof *s);

        if (s == NULL)
            return -1;
        srv.seen = s;
        srv.cap_seen = cap;
    }
    memcpy(srv.seen[srv.n_seen].id, id, NG_PARCEL_MESSAGE_ID_BYTES);
    srv.seen[srv.n_seen++].expires_ms = expires_ms;
    return 0;
}

/* Forgets what expired: such a parcel would not open any more. */
static void
seen_prune(uint64_t now)
{
    size_t i, kept = 0;

    for (i = 0; i < srv.n_seen; i++)
        if (srv.seen[i].expires_ms > now)
            srv.seen[kept++] = srv.seen[i];
    srv.n_seen = kept;
}

static int
seen_has(const uint8_t *id)
{
    size_t i;

    seen_prune(ng_parcel_now_ms());
    for (i = 0; i < srv.n_seen; i++)
        if (memcmp(srv.seen[i].id, id, NG_PARCEL_MESSAGE_ID_BYTES) == 0)
            return 1;
    return 0;
}

/* On disk before the message is printed, so that a crash never prints it twice. */
static int
seen_add(const uint8_t *id, uint64_t expires_ms)
{
    char hex[ID_HEX];

    ng_hex_encode(hex, sizeof hex, id, NG_PARCEL_MESSAGE_ID_BYTES);
    if (fprintf(srv.seen_log, "%s %llu\n", hex, (unsigned long long)expires_ms) < 0 || fflush(srv.seen_log) != 0 ||
        fsync(fileno(srv.seen_log)) != 0)
        return -1;
    return seen_add_memory(id, expires_ms);
}

/* Reads DIR/seen, keeps the live entries, rewrites it with those only and opens it for appending. */
static int
seen_load(const char *dir)
{
    char path[4096], tmp[4096], hex[ID_HEX + 1];
    uint8_t id[NG_PARCEL_MESSAGE_ID_BYTES];
    unsigned long long expires;
    uint64_t now = ng_parcel_now_ms();
    size_t i;
    FILE *f;

    if (path_in(path, sizeof path, dir, "seen") != 0 || path_in(tmp, sizeof tmp, dir, "seen.tmp") != 0)
        return fail("%s: path too long", dir);
    if ((f = fopen(path, "r")) != NULL) {
        while (fscanf(f, "%32s %llu", hex, &expires) == 2)
            if (expires > now && ng_hex_decode(id, sizeof id, hex, strlen(hex)) == NG_OK &&
                seen_add_memory(id, expires))
                break;
        fclose(f);
    }
    if ((f = fopen(tmp, "w")) == NULL)
        return fail("cannot write %s", tmp);
    for (i = 0; i < srv.n_seen; i++) {
        ng_hex_encode(hex, sizeof hex, srv.seen[i].id, NG_PARCEL_MESSAGE_ID_BYTES);
        fprintf(f, "%s %llu\n", hex, (unsigned long long)srv.seen[i].expires_ms);
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0 || rename(tmp, path) != 0)
        return fail("cannot write %s", path);
    srv.seen_log = fopen(path, "a");
    return srv.seen_log != NULL ? 0 : fail("cannot open %s", path);
}

/* ---- receiving ---- */

static const struct peer *
peer_by_key_id(const uint8_t *key_id)
{
    size_t i;

    for (i = 0; i < srv.n_peers; i++)
        if (memcmp(srv.peers[i].key_id, key_id, NG_KEY_ID_BYTES) == 0)
            return &srv.peers[i];
    return NULL;
}

/* Escapes what is not printable ASCII (and the backslash), so that a body cannot forge output lines. */
static void
print_escaped(FILE *f, const uint8_t *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (s[i] == '\\')
            fputs("\\\\", f);
        else if (s[i] >= 0x20 && s[i] < 0x7f)
            fputc(s[i], f);
        else
            fprintf(f, "\\x%02x", s[i]);
    }
}

struct verdict {
    unsigned status;
    const char *code, *message;
};

/* Opens one parcel. The header is not trusted until ng_parcel_open authenticated it. */
static struct verdict
receive(const uint8_t *parcel, size_t len, char id[ID_HEX])
{
    const struct peer *from = NULL;
    ng_parcel_header h;
    ng_open_params p;
    ng_opened o;
    uint8_t *plain;
    ng_err err;
    struct verdict v = {204, NULL, NULL};

    if (ng_parcel_inspect(&h, parcel, len, MAX_PARCEL) != NG_OK)
        return (struct verdict){400, "malformed_parcel", "not a parcel"};
    ng_hex_encode(id, ID_HEX, h.message_id, sizeof h.message_id);
    ng_open_params_init(&p); /* now: the clock; skew: 5 minutes */
    p.recipient = &srv.kp;
    p.max_bytes = MAX_PARCEL;
    if (srv.has_psk && !ng_pattern_has_psk(h.pattern))
        return (struct verdict){400, "psk_required", "parcels to this backend must use the psk"};
    if (srv.has_psk)
        p.psk = srv.psk;
    /* K: the sender key id (also in ce-ngsender) picks the pre-known key; the tag then proves it. */
    if (ng_pattern_base(h.pattern) == NG_PATTERN_K) {
        if ((from = peer_by_key_id(h.sender_key_id)) == NULL)
            return (struct verdict){400, "unknown_sender", "a K parcel from a key that is not a --peer"};
        p.sender_pub = from->pub;
    }
    plain = malloc(h.plaintext_len);
    if (plain == NULL)
        return (struct verdict){500, "internal", "out of memory"};
    err = ng_parcel_open(plain, h.plaintext_len, &o, parcel, len, &p);
    if (err != NG_OK) {
        v = (struct verdict){400, "cannot_open", ng_strerror(err)};
        goto out;
    }
    /* X: the parcel revealed its sender's static key; it must be a peer's. */
    if (ng_pattern_base(h.pattern) == NG_PATTERN_X) {
        uint8_t key_id[NG_KEY_ID_BYTES];

        ng_key_id(key_id, o.sender_pub);
        from = peer_by_key_id(key_id);
        if (from == NULL || sodium_memcmp(from->pub, o.sender_pub, NG_KEY_BYTES) != 0) {
            v = (struct verdict){400, "unknown_sender", "an X parcel from a key that is not a --peer"};
            goto out;
        }
    }
    if (seen_has(h.message_id)) {
        v = (struct verdict){200, NULL, NULL}; /* delivered before: acknowledge, do not print */
        goto out;
    }
    if (seen_add(h.message_id, h.expires_ms) != 0) {
        v = (struct verdict){500, "state", "cannot record the message id"}; /* the gateway retries */
        goto out;
    }
    printf("message %s from %s (%s): ", id, from != NULL ? from->name : "anonymous", ng_pattern_name(h.pattern));
    print_escaped(stdout, o.body, o.body_len);
    putchar('\n');
    fflush(stdout);
out:
    sodium_memzero(plain, h.plaintext_len);
    sodium_memzero(&o, sizeof o);
    free(plain);
    return v;
}

static int
is_parcel_type(const char *ct)
{
    size_t n = strlen(NG_PARCEL_CONTENT_TYPE);

    return ct != NULL && strncasecmp(ct, NG_PARCEL_CONTENT_TYPE, n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

struct upload {
    uint8_t *data;
    size_t len, cap;
    int too_large;
};

static enum MHD_Result
answer(struct MHD_Connection *conn, const struct verdict *v)
{
    char body[256] = "";
    struct MHD_Response *r;
    enum MHD_Result ret;

    if (v->code != NULL)
        snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", v->code, v->message);
    r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    if (v->code != NULL)
        MHD_add_response_header(r, "content-type", "application/json");
    ret = MHD_queue_response(conn, v->status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
           const char *data, size_t *data_size, void **con_cls)
{
    struct upload *u = *con_cls;
    struct verdict v;
    char id[ID_HEX] = "-";
    const uint8_t *body;

    (void)cls, (void)url, (void)version;
    if (u == NULL) {
        /* Answer only once the body is in: answering now would cost the keep-alive. */
        *con_cls = u = calloc(1, sizeof *u);
        return u != NULL ? MHD_YES : MHD_NO;
    }
    if (*data_size > 0) {
        if (u->len + *data_size > MAX_PARCEL)
            u->too_large = 1;
        if (!u->too_large && u->len + *data_size > u->cap) {
            size_t cap = u->cap ? u->cap : 4096;
            uint8_t *d;

            while (cap < u->len + *data_size)
                cap *= 2;
            if ((d = realloc(u->data, cap)) == NULL)
                return MHD_NO;
            u->data = d;
            u->cap = cap;
        }
        if (!u->too_large)
            memcpy(u->data + u->len, data, *data_size);
        u->len += *data_size;
        *data_size = 0;
        return MHD_YES;
    }
    body = u->data != NULL ? u->data : (const uint8_t *)"";
    if (strcmp(method, "POST") != 0)
        v = (struct verdict){405, "method_not_allowed", "POST parcels here"};
    else if (u->too_large) /* cannot even check its signature */
        v = (struct verdict){413, "too_large", "over the parcel size limit"};
    else if (verify_v1(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "webhook-id"),
                       MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "webhook-timestamp"),
                       MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "webhook-signature"), body, u->len) != 0)
        v = (struct verdict){401, "bad_signature", "bad or missing webhook signature"};
    else if (!is_parcel_type(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "content-type")))
        v = (struct verdict){415, "unsupported_media_type", "expected " NG_PARCEL_CONTENT_TYPE};
    else
        v = receive(body, u->len, id);
    if (v.code != NULL)
        fprintf(stderr, "refused %s: %s\n", id, v.message);
    return answer(conn, &v);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    struct upload *u = *con_cls;

    (void)cls, (void)conn, (void)toe;
    if (u != NULL) {
        free(u->data);
        free(u);
        *con_cls = NULL;
    }
}

static int
parse_peer(const char *arg, struct peer *p)
{
    const char *eq = strchr(arg, '=');

    if (eq == NULL || eq == arg || (size_t)(eq - arg) >= sizeof p->name ||
        ng_hex_decode(p->pub, sizeof p->pub, eq + 1, strlen(eq + 1)) != NG_OK)
        return -1;
    memcpy(p->name, arg, (size_t)(eq - arg));
    p->name[eq - arg] = '\0';
    ng_key_id(p->key_id, p->pub);
    return 0;
}

static int
serve(const struct args *a)
{
    struct sockaddr_in addr;
    struct MHD_Daemon *d;
    sigset_t stop;
    unsigned long port;
    char *end;
    int sig, rc = 1;
    size_t i;

    if (a->port == NULL || a->whsec == NULL)
        return fail("%s", "serve needs --port, --state and --whsec");
    port = strtoul(a->port, &end, 10);
    if (*end != '\0' || port == 0 || port > 65535)
        return fail("--port %s: expected 1 to 65535", a->port);
    if (parse_whsec(a->whsec, srv.secret, &srv.secret_len) != 0)
        return fail("%s", "--whsec: expected whsec_ and base64");
    for (i = 0; i < a->n_peers; i++)
        if (parse_peer(a->peers[i], &srv.peers[srv.n_peers++]) != 0)
            return fail("--peer %s: expected NAME=PUBHEX (64 hex characters)", a->peers[i]);
    if (a->psk != NULL && ng_hex_decode(srv.psk, sizeof srv.psk, a->psk, strlen(a->psk)) != NG_OK)
        return fail("%s", "--psk: expected 64 hex characters");
    srv.has_psk = a->psk != NULL;
    if (load_key(a->state, &srv.kp) != 0 || seen_load(a->state) != 0)
        goto out;

    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Blocked before MHD starts its thread, so that only sigwait below sees them. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    /* One internal thread: requests are handled one at a time, so srv needs no lock. */
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, NULL,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                         NULL, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (d == NULL) {
        fail("cannot listen on 127.0.0.1:%s", a->port);
        goto out;
    }
    printf("sealed backend listening on 127.0.0.1:%s\n", a->port);
    fflush(stdout);
    sigwait(&stop, &sig);
    MHD_stop_daemon(d); /* waits for the request in progress */
    rc = 0;
out:
    if (srv.seen_log != NULL)
        fclose(srv.seen_log);
    free(srv.seen);
    ng_keypair_wipe(&srv.kp);
    sodium_memzero(srv.psk, sizeof srv.psk);
    sodium_memzero(srv.secret, sizeof srv.secret);
    return rc;
}

/* ---- sending ---- */

struct reply {
    char data[REPLY_MAX];
    size_t len;
};

static size_t
on_reply(char *p, size_t size, size_t n, void *ctx)
{
    struct reply *r = ctx;
    size_t take = size * n;

    if (take > sizeof r->data - 1 - r->len)
        return 0; /* not an answer of the gateway: stop */
    memcpy(r->data + r->len, p, take);
    r->len += take;
    r->data[r->len] = '\0';
    return size * n;
}

/* Signs (v1, fresh id, current time) and posts the parcel; the HTTP status, or 0 if none came. */
static long
post_parcel(const char *url, const uint8_t *secret, size_t secret_len, const uint8_t *parcel, size_t len,
            struct reply *r)
{
    char id[64], ts[24], b64[sodium_base64_ENCODED_LEN(crypto_auth_hmacsha256_BYTES, VARIANT)];
    char h[3][160];
    uint8_t raw[16], mac[crypto_auth_hmacsha256_BYTES];
    struct curl_slist *hdrs = NULL;
    CURL *c = curl_easy_init();
    CURLcode res;
    long status = 0;

    if (c == NULL)
        return 0;
    randombytes_buf(raw, sizeof raw);
    memcpy(id, "msg_", 5);
    ng_hex_encode(id + 4, sizeof id - 4, raw, sizeof raw);
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    sign_v1(mac, secret, secret_len, id, ts, parcel, len);
    sodium_bin2base64(b64, sizeof b64, mac, sizeof mac, VARIANT);
    snprintf(h[0], sizeof h[0], "webhook-id: %s", id);
    snprintf(h[1], sizeof h[1], "webhook-timestamp: %s", ts);
    snprintf(h[2], sizeof h[2], "webhook-signature: v1,%s", b64);
    hdrs = curl_slist_append(hdrs, "content-type: " NG_PARCEL_CONTENT_TYPE);
    hdrs = curl_slist_append(hdrs, h[0]);
    hdrs = curl_slist_append(hdrs, h[1]);
    hdrs = curl_slist_append(hdrs, h[2]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, parcel);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_reply);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    res = curl_easy_perform(c);
    if (res == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else
        fail("%s", curl_easy_strerror(res));
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return status;
}

static int
send_text(const struct args *a)
{
    static const char meta[] = "{\"content_type\":\"text/plain\"}";
    static struct reply r;
    uint8_t to[NG_KEY_BYTES], psk[NG_PSK_BYTES], secret[SECRET_MAX], *parcel = NULL;
    ng_pattern pattern = NG_PATTERN_X;
    ng_keypair me;
    ng_seal_params p;
    size_t secret_len, size = 0, len;
    char url[2048], *end;
    unsigned long long ttl = DEFAULT_TTL_S;
    long status;
    int rc = 1;

    memset(&me, 0, sizeof me);
    memset(&p, 0, sizeof p);
    if (a->gateway == NULL || a->tenant == NULL || a->whsec == NULL || a->to_key == NULL || a->text == NULL)
        return fail("%s", "send needs --gateway, --tenant, --state, --whsec, --to-key and TEXT");
    if (parse_whsec(a->whsec, secret, &secret_len) != 0)
        return fail("%s", "--whsec: expected whsec_ and base64");
    if (ng_hex_decode(to, sizeof to, a->to_key, strlen(a->to_key)) != NG_OK)
        return fail("%s", "--to-key: expected 64 hex characters");
    if (a->pattern != NULL && (ng_pattern_parse(a->pattern, &pattern) != NG_OK || ng_pattern_has_psk(pattern)))
        return fail("%s", "--pattern: expected X, K or N (--psk makes the psk forms)");
    if (a->ttl != NULL && ((ttl = strtoull(a->ttl, &end, 10)) == 0 || *end != '\0' || ttl > 10ull * 366 * 86400))
        return fail("%s", "--ttl: expected whole seconds");
    if (a->psk != NULL && ng_hex_decode(psk, sizeof psk, a->psk, strlen(a->psk)) != NG_OK)
        return fail("%s", "--psk: expected 64 hex characters");
    /* K and X carry our static key: the gateway only takes K parcels sealed with the tenant's key. */
    if (pattern != NG_PATTERN_N && load_key(a->state, &me) != 0)
        goto out;
    p.pattern = a->psk != NULL ? (ng_pattern)(pattern | NG_PATTERN_PSK_BIT) : pattern;
    p.recipient_pub = to;
    p.sender = pattern != NG_PATTERN_N ? &me : NULL;
    p.psk = a->psk != NULL ? psk : NULL;
    p.meta = (const uint8_t *)meta;
    p.meta_len = strlen(meta);
    p.body = (const uint8_t *)a->text;
    p.body_len = strlen(a->text);
    p.ttl_ms = ttl * 1000u;
    if ((size = ng_parcel_sealed_size(&p)) == 0 || (parcel = malloc(size)) == NULL) {
        fail("%s", "the text does not fit a parcel");
        goto out;
    }
    if (ng_parcel_seal(parcel, size, &len, &p) != NG_OK) {
        fail("%s", "--to-key: refused (not a usable public key)");
        goto out;
    }
    if (snprintf(url, sizeof url, "%s/v1/tenants/%s/parcels", a->gateway, a->tenant) >= (int)sizeof url) {
        fail("%s", "--gateway: URL too long");
        goto out;
    }
    status = post_parcel(url, secret, secret_len, parcel, len, &r);
    if (status == 202) {
        printf("%s\n", r.data);
        rc = 0;
    } else if (status != 0) {
        fprintf(stderr, "sealed_backend: the gateway answered %ld: %s\n", status, r.data);
    }
out:
    ng_keypair_wipe(&me);
    sodium_memzero(psk, sizeof psk);
    sodium_memzero(secret, sizeof secret);
    free(parcel);
    return rc;
}

/* ---- main ---- */

static int
usage(void)
{
    fputs("usage: sealed_backend keygen --state DIR\n"
          "       sealed_backend import-key --state DIR < PRIVHEX\n"
          "       sealed_backend serve --port PORT --state DIR --whsec whsec_... [--peer NAME=PUBHEX ...] [--psk HEX]\n"
          "       sealed_backend send --gateway URL --tenant T --state DIR --whsec whsec_... --to-key PUBHEX\n"
          "                           [--pattern X|K|N] [--ttl SECONDS] [--psk HEX] TEXT\n",
          stderr);
    return 2;
}

/* Every option takes a value; one argument without "--" is TEXT. */
static int
parse_args(int argc, char **argv, struct args *a)
{
    static const char *const names[] = {"--port",   "--state",   "--whsec", "--gateway", "--tenant",
                                        "--to-key", "--pattern", "--ttl",   "--psk"};
    const char **slots[] = {&a->port,   &a->state,   &a->whsec, &a->gateway, &a->tenant,
                            &a->to_key, &a->pattern, &a->ttl,   &a->psk};
    int i;
    size_t k;

    memset(a, 0, sizeof *a);
    for (i = 2; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0) {
            if (a->text != NULL)
                return -1;
            a->text = argv[i];
            continue;
        }
        if (i + 1 >= argc)
            return -1;
        if (strcmp(argv[i], "--peer") == 0) {
            if (a->n_peers == MAX_PEERS)
                return -1;
            a->peers[a->n_peers++] = argv[++i];
            continue;
        }
        for (k = 0; k < sizeof names / sizeof names[0] && strcmp(argv[i], names[k]) != 0; k++)
            ;
        if (k == sizeof names / sizeof names[0])
            return -1;
        *slots[k] = argv[++i];
    }
    return a->state != NULL ? 0 : -1;
}

int
main(int argc, char **argv)
{
    struct args a;
    ng_keypair kp;
    char text[256];
    size_t len;
    int rc;

    if (argc < 2 || parse_args(argc, argv, &a) != 0)
        return usage();
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(argv[1], "keygen") == 0) {
        ng_keypair_generate(&kp);
        rc = store_key(a.state, &kp);
        ng_keypair_wipe(&kp);
    } else if (strcmp(argv[1], "import-key") == 0) {
        len = fread(text, 1, sizeof text - 1, stdin);
        rc = parse_private(&kp, text, len) == 0
                 ? store_key(a.state, &kp)
                 : fail("%s", "standard input: expected a private key, 64 hex characters");
        sodium_memzero(text, sizeof text);
        ng_keypair_wipe(&kp);
    } else if (strcmp(argv[1], "serve") == 0) {
        rc = serve(&a);
    } else if (strcmp(argv[1], "send") == 0) {
        rc = send_text(&a);
    } else {
        rc = usage();
    }
    curl_global_cleanup();
    return rc;
}

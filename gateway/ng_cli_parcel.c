/* noisegate seal, open and inspect. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "ng_cli.h"
#include "ng_hex.h"
#include "ng_io.h"
#include "ng_cli_vault.h"
#include "ng_key.h"
#include "ng_tenant.h"
#include "ng_parcel.h"

enum {
    DEFAULT_TTL_S = 24 * 60 * 60,
    MAX_TTL_S = 10 * 366 * 24 * 60 * 60,
    MAX_CONTENT_TYPE = 255,
};

static const char default_content_type[] = "application/octet-stream";

static json_t *
hex_json(const uint8_t *b, size_t len)
{
    char hex[2 * 32 + 1];

    ng_hex_encode(hex, sizeof hex, b, len);
    return json_string(hex);
}

static json_t *
time_json(uint64_t ms)
{
    char buf[32];
    struct tm tm;
    time_t t = (time_t)(ms / 1000);

    if (gmtime_r(&t, &tm) == NULL || strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        return json_null();
    snprintf(buf + strlen(buf), sizeof buf - strlen(buf), ".%03uZ", (unsigned)(ms % 1000));
    return json_string(buf);
}

/* The header fields shared by inspect and open --json. */
static json_t *
header_json(const ng_parcel_header *h)
{
    json_t *o = json_object();
    int k = ng_pattern_base(h->pattern) == NG_PATTERN_K;

    json_object_set_new(o, "pattern", json_string(ng_pattern_name(h->pattern)));
    json_object_set_new(o, "suite", json_string(ng_suite_name(h->suite)));
    json_object_set_new(o, "flags", json_integer(h->flags));
    json_object_set_new(o, "message_id", hex_json(h->message_id, sizeof h->message_id));
    json_object_set_new(o, "created", json_integer((json_int_t)h->created_ms));
    json_object_set_new(o, "created_at", time_json(h->created_ms));
    json_object_set_new(o, "expires", json_integer((json_int_t)h->expires_ms));
    json_object_set_new(o, "expires_at", time_json(h->expires_ms));
    json_object_set_new(o, "recipient_key_id", hex_json(h->recipient_key_id, NG_KEY_ID_BYTES));
    json_object_set_new(o, "sender_key_id", k ? hex_json(h->sender_key_id, NG_KEY_ID_BYTES) : json_null());
    json_object_set_new(o, "messages", json_integer(h->n_messages));
    return o;
}

static int
print_json(FILE *f, json_t *o)
{
    int rc = json_dumpf(o, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0 && fputc('\n', f) != EOF;

    json_decref(o);
    return rc && fflush(f) == 0 ? 0 : -1;
}

static int
parse_ttl(const char *s, uint64_t *ms)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v == 0 || v > MAX_TTL_S)
        return -1;
    *ms = (uint64_t)v * 1000u;
    return 0;
}

struct seal_args {
    const char *to, *from, *pattern, *psk, *suite, *content_type, *ttl, *out, *in;
};

static int
seal_usage(void)
{
    return ng_cli_fail(NG_EXIT_USAGE, "seal",
                       "usage: noisegate seal --to PUBHEX [--from KEYFILE] [--pattern N|K|X] [--psk PSKFILE] "
                       "[--suite SUITE] [--content-type T] [--ttl SECONDS] [-o OUT] [IN]");
}

static int
seal_parse(int argc, char **argv, struct seal_args *a)
{
    static const struct option opts[] = {
        {"to", required_argument, NULL, 't'},
        {"from", required_argument, NULL, 'f'},
        {"pattern", required_argument, NULL, 'p'},
        {"psk", required_argument, NULL, 'k'},
        {"suite", required_argument, NULL, 's'},
        {"content-type", required_argument, NULL, 'c'},
        {"ttl", required_argument, NULL, 'l'},
        {"output", required_argument, NULL, 'o'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(a, 0, sizeof *a);
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case 't': a->to = optarg; break;
        case 'f': a->from = optarg; break;
        case 'p': a->pattern = optarg; break;
        case 'k': a->psk = optarg; break;
        case 's': a->suite = optarg; break;
        case 'c': a->content_type = optarg; break;
        case 'l': a->ttl = optarg; break;
        case 'o': a->out = optarg; break;
        default: return seal_usage();
        }
    }
    if (optind < argc - 1 || a->to == NULL)
        return seal_usage();
    a->in = optind < argc ? argv[optind] : NULL;
    return 0;
}

/* Fills the pattern, suite, ttl and meta of p from the arguments. */
static int
seal_settings(const struct seal_args *a, ng_seal_params *p, char **meta)
{
    const char *ct = a->content_type != NULL ? a->content_type : default_content_type;
    ng_pattern base = a->from != NULL ? NG_PATTERN_X : NG_PATTERN_N;
    json_t *m;

    if (a->pattern != NULL && (ng_pattern_parse(a->pattern, &base) != NG_OK || ng_pattern_has_psk(base)))
        return ng_cli_fail(NG_EXIT_USAGE, "seal", "--pattern: expected N, K or X (--psk makes the psk forms)");
    if (base == NG_PATTERN_N && a->from != NULL)
        return ng_cli_fail(NG_EXIT_USAGE, "seal", "pattern N has no sender key: drop --from, or use K or X");
    if (base != NG_PATTERN_N && a->from == NULL)
        return ng_cli_fail(NG_EXIT_USAGE, "seal", "pattern %s needs the sender's key: --from KEYFILE",
                           ng_pattern_name(base));
    p->pattern = a->psk != NULL ? (ng_pattern)(base | NG_PATTERN_PSK_BIT) : base;
    p->suite = NG_SUITE_DEFAULT;
    if (a->suite != NULL && ng_suite_parse(a->suite, &p->suite) != NG_OK)
        return ng_cli_fail(NG_EXIT_USAGE, "seal", "--suite %s: unknown (see noisegate help)", a->suite);
    if (!ng_suite_available(p->suite))
        return ng_cli_fail(NG_EXIT_USAGE, "seal", "--suite %s: %s", a->suite, ng_strerror(NG_ERR_UNSUPPORTED));
    p->ttl_ms = (uint64_t)DEFAULT_TTL_S * 1000u;
    if (a->ttl != NULL && parse_ttl(a->ttl, &p->ttl_ms) != 0)
        return ng_cli_fail(NG_EXIT_USAGE, "seal", "--ttl %s: expected whole seconds from 1 to %d", a->ttl, MAX_TTL_S);
    if (ct[0] == '\0' || strlen(ct) > MAX_CONTENT_TYPE)
        return ng_cli_fail(NG_EXIT_USAGE, "seal", "--content-type: expected 1 to %d characters", MAX_CONTENT_TYPE);
    m = json_pack("{s:s}", "content_type", ct);
    *meta = m != NULL ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    if (*meta == NULL)
        return ng_cli_fail(NG_EXIT_USAGE, "seal", "--content-type: not valid UTF-8");
    return 0;
}

int
ng_cli_seal(int argc, char **argv)
{
    struct seal_args a;
    ng_seal_params p;
    ng_keypair sender;
    uint8_t to[NG_KEY_BYTES], priv[NG_KEY_BYTES], psk[NG_PSK_BYTES];
    uint8_t *body = NULL, *parcel = NULL;
    char *meta = NULL;
    size_t body_len = 0, size, out_len;
    ng_err err;
    int rc;

    memset(&p, 0, sizeof p);
    memset(&sender, 0, sizeof sender);
    if ((rc = seal_parse(argc, argv, &a)) != 0 || (rc = seal_settings(&a, &p, &meta)) != 0 ||
        (rc = ng_cli_parse_pub("seal", "--to", a.to, to)) != 0)
        goto out;
    p.recipient_pub = to;
    if (a.from != NULL) {
        if ((rc = ng_cli_read_secret("seal", "key", a.from, priv, sizeof priv)) != 0)
            goto out;
        err = ng_keypair_from_private(&sender, priv);
        sodium_memzero(priv, sizeof priv);
        if (err) {
            rc = ng_cli_fail(NG_EXIT_USAGE, "seal", "%s: not a usable private key", a.from);
            goto out;
        }
        p.sender = &sender;
    }
    if (a.psk != NULL) {
        if ((rc = ng_cli_read_secret("seal", "psk", a.psk, psk, sizeof psk)) != 0)
            goto out;
        p.psk = psk;
    }
    if ((rc = ng_cli_read_input("seal", a.in, &body, &body_len)) != 0)
        goto out;
    p.meta = (const uint8_t *)meta;
    p.meta_len = strlen(meta);
    p.body = body;
    p.body_len = body_len;

    size = ng_parcel_sealed_size(&p);
    if (size == 0 || size > NG_PARCEL_DEFAULT_MAX_BYTES) {
        rc = ng_cli_fail(NG_EXIT_USAGE, "seal", "input too large: the parcel would exceed %zu bytes",
                         NG_PARCEL_DEFAULT_MAX_BYTES);
        goto out;
    }
    parcel = malloc(size);
    if (parcel == NULL) {
        rc = ng_cli_fail(NG_EXIT_USAGE, "seal", "%s", ng_strerror(NG_ERR_NOMEM));
        goto out;
    }
    err = ng_parcel_seal(parcel, size, &out_len, &p);
    if (err == NG_ERR_BAD_KEY) {
        rc = ng_cli_fail(NG_EXIT_USAGE, "seal", "--to: public key refused (%s)", ng_strerror(err));
        goto out;
    }
    if (err) {
        rc = ng_cli_fail(NG_EXIT_USAGE, "seal", "%s", ng_strerror(err));
        goto out;
    }
    if (ng_io_write_all(a.out, parcel, out_len, 0644) != NG_OK)
        rc = ng_cli_fail(NG_EXIT_USAGE, "seal", "%s: cannot write", a.out ? a.out : "standard output");

out:
    ng_keypair_wipe(&sender);
    sodium_memzero(psk, sizeof psk);
    if (body != NULL) {
        sodium_memzero(body, body_len);
        free(body);
    }
    free(parcel);
    free(meta);
    return rc;
}

struct open_args {
    const char *key, *tenant, *config, *from, *psk, *out, *in;
    int ignore_expiry, json;
};

static int
open_usage(void)
{
    return ng_cli_fail(NG_EXIT_USAGE, "open",
                       "usage: noisegate open --key KEYFILE | --tenant TENANT [--config FILE] [--from PUBHEX] "
                       "[--psk PSKFILE] [--ignore-expiry] [--json] [-o OUT] [IN]");
}

static int
open_parse(int argc, char **argv, struct open_args *a)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"tenant", required_argument, NULL, 't'},
        {"config", required_argument, NULL, 'c'},
        {"from", required_argument, NULL, 'f'},
        {"psk", required_argument, NULL, 'p'},
        {"ignore-expiry", no_argument, NULL, 'i'},
        {"json", no_argument, NULL, 'j'},
        {"output", required_argument, NULL, 'o'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(a, 0, sizeof *a);
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case 'k': a->key = optarg; break;
        case 't': a->tenant = optarg; break;
        case 'c': a->config = optarg; break;
        case 'f': a->from = optarg; break;
        case 'p': a->psk = optarg; break;
        case 'i': a->ignore_expiry = 1; break;
        case 'j': a->json = 1; break;
        case 'o': a->out = optarg; break;
        default: return open_usage();
        }
    }
    if (optind < argc - 1 || (a->key == NULL) == (a->tenant == NULL))
        return open_usage();
    if (a->config == NULL)
        a->config = getenv("NOISEGATE_CONFIG");
    a->in = optind < argc ? argv[optind] : NULL;
    return 0;
}

/* The contract says meta is a JSON object with a content_type; a sender that
 * breaks it gets its parcel refused, as any other malformed parcel. */
static json_t *
parse_meta(const ng_opened *o)
{
    json_error_t jerr;
    json_t *m = json_loadb((const char *)o->meta, o->meta_len, JSON_REJECT_DUPLICATES, &jerr);

    if (m == NULL || !json_is_object(m) || !json_is_string(json_object_get(m, "content_type"))) {
        json_decref(m);
        return NULL;
    }
    return m;
}

static int
open_report(const ng_opened *o, json_t *meta)
{
    json_t *j = header_json(&o->header);

    json_object_set(j, "meta", meta);
    json_object_set_new(j, "sender", o->has_sender ? hex_json(o->sender_pub, NG_KEY_BYTES) : json_null());
    return print_json(stderr, j);
}

/* The key pair of the tenant's live epoch the parcel is addressed to; its psk for a psk pattern. */
static int
tenant_keys(const struct open_args *a, const ng_parcel_header *h, ng_keypair *me, uint8_t psk[NG_PSK_BYTES],
            const uint8_t **psk_out)
{
    char what[96];
    ng_cli_ctx c;
    ng_vault *v = NULL;
    ng_err err;
    int rc = ng_cli_ctx_open(&c, "open", a->config, 1);

    if (rc == 0)
        rc = ng_cli_ctx_vault(&c, &v);
    if (rc == 0) {
        snprintf(what, sizeof what, "tenant %s", a->tenant);
        err = ng_tenant_keypair_for(v, a->tenant, h->recipient_key_id, me);
        if (err == NG_ERR_WRONG_RECIPIENT)
            rc = ng_cli_fail(NG_EXIT_NOT_OPENED, "open",
                             "parcel did not open: not addressed to a live key of tenant %s", a->tenant);
        else if (err)
            rc = ng_cli_report(&c, err, what);
        if (rc == 0 && ng_pattern_has_psk(h->pattern) && a->psk == NULL &&
            ng_tenant_secret(v, a->tenant, "psk", psk, NG_PSK_BYTES) == NG_OK)
            *psk_out = psk;
    }
    ng_vault_close(v);
    ng_cli_ctx_close(&c);
    return rc;
}

int
ng_cli_open(int argc, char **argv)
{
    struct open_args a;
    ng_open_params p;
    ng_parcel_header h;
    ng_opened o;
    ng_keypair me;
    uint8_t from[NG_KEY_BYTES], priv[NG_KEY_BYTES], psk[NG_PSK_BYTES];
    uint8_t *parcel = NULL, *plain = NULL;
    size_t len = 0;
    json_t *meta = NULL;
    ng_err err;
    int rc;

    ng_open_params_init(&p);
    memset(&me, 0, sizeof me);
    memset(&h, 0, sizeof h);
    if ((rc = open_parse(argc, argv, &a)) != 0)
        goto out;
    if (a.from != NULL) {
        if ((rc = ng_cli_parse_pub("open", "--from", a.from, from)) != 0)
            goto out;
        p.sender_pub = from;
    }
    if ((rc = ng_cli_read_input("open", a.in, &parcel, &len)) != 0)
        goto out;
    err = ng_parcel_inspect(&h, parcel, len, 0);
    if (a.tenant != NULL) {
        /* The tenant's live key the parcel is addressed to, and its psk. */
        if (err == NG_OK && (rc = tenant_keys(&a, &h, &me, psk, &p.psk)) != 0)
            goto out;
    } else {
        if ((rc = ng_cli_read_secret("open", "key", a.key, priv, sizeof priv)) != 0)
            goto out;
        err = ng_keypair_from_private(&me, priv);
        sodium_memzero(priv, sizeof priv);
        if (err) {
            rc = ng_cli_fail(NG_EXIT_USAGE, "open", "%s: not a usable private key", a.key);
            goto out;
        }
        err = ng_parcel_inspect(&h, parcel, len, 0);
    }
    p.recipient = &me;
    if (a.psk != NULL) {
        if ((rc = ng_cli_read_secret("open", "psk", a.psk, psk, sizeof psk)) != 0)
            goto out;
        p.psk = psk;
    }
    p.ignore_expiry = a.ignore_expiry;

    if (err == NG_OK) {
        plain = malloc(h.plaintext_len);
        err = plain == NULL ? NG_ERR_NOMEM : ng_parcel_open(plain, h.plaintext_len, &o, parcel, len, &p);
    }
    if (err == NG_ERR_SENDER_REQUIRED) {
        rc = ng_cli_fail(NG_EXIT_USAGE, "open", "pattern %s: give the sender's public key with --from",
                         ng_pattern_name(h.pattern));
        goto out;
    }
    if (err) {
        rc = ng_cli_fail(err == NG_ERR_NOMEM ? NG_EXIT_USAGE : NG_EXIT_NOT_OPENED, "open", "parcel did not open: %s",
                         ng_strerror(err));
        goto out;
    }
    meta = parse_meta(&o);
    if (meta == NULL) {
        rc =
            ng_cli_fail(NG_EXIT_NOT_OPENED, "open", "parcel did not open: meta is not a JSON object with content_type");
        goto out;
    }
    if (ng_io_write_all(a.out, o.body, o.body_len, 0600) != NG_OK) {
        rc = ng_cli_fail(NG_EXIT_USAGE, "open", "%s: cannot write", a.out ? a.out : "standard output");
        goto out;
    }
    if (a.json && open_report(&o, meta) != 0)
        rc = NG_EXIT_USAGE;

out:
    json_decref(meta);
    ng_keypair_wipe(&me);
    sodium_memzero(psk, sizeof psk);
    if (plain != NULL) {
        sodium_memzero(plain, h.plaintext_len);
        free(plain);
    }
    free(parcel);
    return rc;
}

int
ng_cli_inspect(int argc, char **argv)
{
    ng_parcel_header h;
    uint8_t *parcel = NULL;
    size_t len = 0;
    json_t *j;
    ng_err err;
    int rc;

    if (argc > 2 || (argc == 2 && argv[1][0] == '-' && argv[1][1] != '\0'))
        return ng_cli_fail(NG_EXIT_USAGE, "inspect", "usage: noisegate inspect [IN]");
    if ((rc = ng_cli_read_input("inspect", argc == 2 ? argv[1] : NULL, &parcel, &len)) != 0)
        return rc;
    err = ng_parcel_inspect(&h, parcel, len, 0);
    free(parcel);
    if (err)
        return ng_cli_fail(NG_EXIT_NOT_OPENED, "inspect", "not a valid parcel: %s", ng_strerror(err));
    j = header_json(&h);
    json_object_set_new(j, "size", json_integer((json_int_t)len));
    json_object_set_new(j, "plaintext_bytes", json_integer((json_int_t)h.plaintext_len));
    return print_json(stdout, j) == 0 ? NG_EXIT_OK : NG_EXIT_USAGE;
}
